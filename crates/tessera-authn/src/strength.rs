//! Authentication strengths: which combinations of methods a sign-in must have used.
//!
//! Method names follow Entra ID's `authenticationMethodModes` so that policies read
//! the same (`password,softwareOath`, `fido2`, `x509CertificateMultiFactor`...). A
//! combination is satisfied when every method in it was used; a strength when any of
//! its combinations is. A strength may also restrict which passkey models (AAGUIDs)
//! or which certificate issuers and policy OIDs count, e.g. "DoD CAC": certificate
//! multi-factor from the DoD issuing CAs only.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One way of proving who one is, as a strength counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    Password,
    SoftwareOath,
    Fido2,
    TemporaryAccessPassOneTime,
    TemporaryAccessPassMultiUse,
    X509CertificateSingleFactor,
    X509CertificateMultiFactor,
}

impl Mode {
    pub const ALL: [Mode; 7] = [
        Mode::Password,
        Mode::SoftwareOath,
        Mode::Fido2,
        Mode::TemporaryAccessPassOneTime,
        Mode::TemporaryAccessPassMultiUse,
        Mode::X509CertificateSingleFactor,
        Mode::X509CertificateMultiFactor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Password => "password",
            Mode::SoftwareOath => "softwareOath",
            Mode::Fido2 => "fido2",
            Mode::TemporaryAccessPassOneTime => "temporaryAccessPassOneTime",
            Mode::TemporaryAccessPassMultiUse => "temporaryAccessPassMultiUse",
            Mode::X509CertificateSingleFactor => "x509CertificateSingleFactor",
            Mode::X509CertificateMultiFactor => "x509CertificateMultiFactor",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// Whether this method alone proves two factors (something held, plus a PIN or
    /// biometric checked by the authenticator, or an administrator's vouching).
    pub fn is_multi_factor(self) -> bool {
        matches!(
            self,
            Mode::Fido2
                | Mode::X509CertificateMultiFactor
                | Mode::TemporaryAccessPassOneTime
                | Mode::TemporaryAccessPassMultiUse
        )
    }

    pub fn is_temporary_access_pass(self) -> bool {
        matches!(
            self,
            Mode::TemporaryAccessPassOneTime | Mode::TemporaryAccessPassMultiUse
        )
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A method as used in one sign-in, with the facts restrictions look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsedMethod {
    pub mode: Mode,
    /// The passkey's authenticator model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aaguid: Option<Uuid>,
    /// The certificate's issuer (distinguished name, RFC 4514 form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_issuer: Option<String>,
    /// The certificate's policy OIDs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_policies: Vec<String>,
}

impl UsedMethod {
    pub fn plain(mode: Mode) -> UsedMethod {
        UsedMethod {
            mode,
            aaguid: None,
            certificate_issuer: None,
            certificate_policies: Vec::new(),
        }
    }
}

/// A set of methods used together, written `password,softwareOath`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Combination(pub BTreeSet<Mode>);

impl Combination {
    pub fn of(modes: &[Mode]) -> Combination {
        Combination(modes.iter().copied().collect())
    }

    pub fn parse(text: &str) -> Result<Combination, String> {
        let mut modes = BTreeSet::new();
        for part in text.split(',') {
            let part = part.trim();
            let mode = Mode::parse(part).ok_or_else(|| {
                format!(
                    "unknown method {part:?}; known: {}",
                    Mode::ALL.map(Mode::as_str).join(", ")
                )
            })?;
            if !modes.insert(mode) {
                return Err(format!("{part} appears twice"));
            }
        }
        Ok(Combination(modes))
    }
}

impl fmt::Display for Combination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = self.0.iter().map(|m| m.as_str()).collect();
        f.write_str(&parts.join(","))
    }
}

impl Serialize for Combination {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Combination {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Combination::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Extra conditions on one method within a strength.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Restrictions {
    /// Passkeys count only from these authenticator models (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_aaguids: Vec<Uuid>,
    /// Certificates count only from these issuers (empty: any trusted issuer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_issuers: Vec<String>,
    /// Certificates count only with one of these policy OIDs (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_policy_oids: Vec<String>,
}

impl Restrictions {
    fn is_empty(&self) -> bool {
        self.allowed_aaguids.is_empty()
            && self.allowed_issuers.is_empty()
            && self.allowed_policy_oids.is_empty()
    }

    fn admits(&self, used: &UsedMethod) -> bool {
        let aaguid_ok = self.allowed_aaguids.is_empty()
            || used
                .aaguid
                .is_some_and(|a| self.allowed_aaguids.contains(&a));
        let issuer_ok = self.allowed_issuers.is_empty()
            || used.certificate_issuer.as_ref().is_some_and(|issuer| {
                self.allowed_issuers
                    .iter()
                    .any(|allowed| crate::cba::same_dn(allowed, issuer))
            });
        let policy_ok = self.allowed_policy_oids.is_empty()
            || used
                .certificate_policies
                .iter()
                .any(|p| self.allowed_policy_oids.contains(p));
        aaguid_ok && issuer_ok && policy_ok
    }
}

/// An authentication strength.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strength {
    pub id: Uuid,
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    /// `builtIn` or `custom`.
    pub policy_type: String,
    pub allowed_combinations: Vec<Combination>,
    /// Restrictions per method (`fido2`, `x509CertificateMultiFactor`...).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub combination_configurations: std::collections::BTreeMap<Mode, Restrictions>,
}

/// Entra ID's ids for the built-in strengths, so exported policies keep working.
pub const MFA: Uuid = Uuid::from_u128(2);
pub const PASSWORDLESS_MFA: Uuid = Uuid::from_u128(3);
pub const PHISHING_RESISTANT_MFA: Uuid = Uuid::from_u128(4);

fn combos(list: &[&[Mode]]) -> Vec<Combination> {
    list.iter().map(|modes| Combination::of(modes)).collect()
}

/// The three built-in strengths.
pub fn built_in() -> Vec<Strength> {
    use Mode::*;
    vec![
        Strength {
            id: MFA,
            display_name: "Multifactor authentication".to_string(),
            description: "Combinations of methods that satisfy strong authentication".to_string(),
            policy_type: "builtIn".to_string(),
            allowed_combinations: combos(&[
                &[Fido2],
                &[X509CertificateMultiFactor],
                &[TemporaryAccessPassOneTime],
                &[TemporaryAccessPassMultiUse],
                &[Password, SoftwareOath],
                &[Password, Fido2],
                &[X509CertificateSingleFactor, SoftwareOath],
            ]),
            combination_configurations: Default::default(),
        },
        Strength {
            id: PASSWORDLESS_MFA,
            display_name: "Passwordless MFA".to_string(),
            description: "Passwordless methods that satisfy strong authentication".to_string(),
            policy_type: "builtIn".to_string(),
            allowed_combinations: combos(&[&[Fido2], &[X509CertificateMultiFactor]]),
            combination_configurations: Default::default(),
        },
        Strength {
            id: PHISHING_RESISTANT_MFA,
            display_name: "Phishing-resistant MFA".to_string(),
            description:
                "Phishing-resistant, passwordless methods for the strongest authentication"
                    .to_string(),
            policy_type: "builtIn".to_string(),
            allowed_combinations: combos(&[&[Fido2], &[X509CertificateMultiFactor]]),
            combination_configurations: Default::default(),
        },
    ]
}

impl Strength {
    /// Whether the methods used satisfy this strength.
    pub fn satisfied_by(&self, used: &[UsedMethod]) -> bool {
        self.allowed_combinations.iter().any(|combination| {
            combination.0.iter().all(|mode| {
                let restrictions = self.combination_configurations.get(mode);
                used.iter()
                    .any(|u| u.mode == *mode && restrictions.is_none_or(|r| r.admits(u)))
            })
        })
    }

    /// Checks a custom strength's definition.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.display_name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err("displayName must be 1 to 100 characters".to_string());
        }
        if self.allowed_combinations.is_empty() {
            return Err("allowedCombinations must name at least one combination".to_string());
        }
        if self.allowed_combinations.len() > 32 {
            return Err("allowedCombinations may name at most 32 combinations".to_string());
        }
        for (mode, restrictions) in &self.combination_configurations {
            if restrictions.is_empty() {
                return Err(format!(
                    "combinationConfigurations.{mode} restricts nothing"
                ));
            }
            let used = self.allowed_combinations.iter().any(|c| c.0.contains(mode));
            if !used {
                return Err(format!(
                    "combinationConfigurations.{mode}: no allowed combination uses {mode}"
                ));
            }
            let passkey = *mode == Mode::Fido2;
            if passkey
                && (!restrictions.allowed_issuers.is_empty()
                    || !restrictions.allowed_policy_oids.is_empty())
            {
                return Err("combinationConfigurations.fido2 may restrict AAGUIDs only".to_string());
            }
            let certificate = matches!(
                mode,
                Mode::X509CertificateMultiFactor | Mode::X509CertificateSingleFactor
            );
            if certificate && !restrictions.allowed_aaguids.is_empty() {
                return Err(format!(
                    "combinationConfigurations.{mode} may restrict issuers and policy OIDs only"
                ));
            }
            if !passkey && !certificate {
                return Err(format!(
                    "combinationConfigurations.{mode}: {mode} has no restrictions"
                ));
            }
            for oid in &restrictions.allowed_policy_oids {
                if !is_oid(oid) {
                    return Err(format!("{oid:?} is not an object identifier"));
                }
            }
        }
        Ok(())
    }
}

/// The strengths (of `strengths`) that the methods a sign-in used reach: what a
/// sign-in satisfies, for Conditional Access and tokens' `acr`.
pub fn reached(strengths: &[Strength], used: &[UsedMethod]) -> Vec<Uuid> {
    strengths
        .iter()
        .filter(|s| s.satisfied_by(used))
        .map(|s| s.id)
        .collect()
}

/// The strengths a sign-in reaches when all that is known is that it met each of
/// `met` (What-If): each met strength, and every strength that each of a met
/// strength's allowed combinations reaches (phishing-resistant MFA implies MFA).
/// A met strength's own restrictions (passkey models, issuers) are not assumed of
/// others. `Err` names an id that is not among `strengths`.
pub fn implied(strengths: &[Strength], met: &[Uuid]) -> Result<Vec<Uuid>, Uuid> {
    let mut out: Vec<Uuid> = Vec::new();
    for id in met {
        let strength = strengths.iter().find(|s| s.id == *id).ok_or(*id)?;
        if !out.contains(id) {
            out.push(*id);
        }
        let mut common: Option<Vec<Uuid>> = None;
        for combination in &strength.allowed_combinations {
            let used: Vec<UsedMethod> = combination
                .0
                .iter()
                .map(|m| UsedMethod::plain(*m))
                .collect();
            let here = reached(strengths, &used);
            common = Some(match common {
                None => here,
                Some(before) => before.into_iter().filter(|s| here.contains(s)).collect(),
            });
        }
        for other in common.unwrap_or_default() {
            if !out.contains(&other) {
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// Dotted-decimal object identifier, e.g. `2.16.840.1.101.2.1.11.42`.
pub fn is_oid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() >= 2
        && text.len() <= 200
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strength_met_implies_the_strengths_all_its_combinations_reach() {
        let all = built_in();
        let implied_by = |met: &[Uuid]| {
            let mut ids = implied(&all, met).unwrap();
            ids.sort();
            ids
        };
        assert_eq!(
            implied_by(&[PHISHING_RESISTANT_MFA]),
            vec![MFA, PASSWORDLESS_MFA, PHISHING_RESISTANT_MFA]
        );
        assert_eq!(implied_by(&[MFA]), vec![MFA]);
        assert_eq!(implied_by(&[]), Vec::<Uuid>::new());
        let unknown = Uuid::from_u128(99);
        assert_eq!(implied(&all, &[MFA, unknown]), Err(unknown));
        // The same as what methods reach: a passkey reaches all three.
        let mut by_methods = reached(&all, &[UsedMethod::plain(Mode::Fido2)]);
        by_methods.sort();
        assert_eq!(by_methods, implied_by(&[PHISHING_RESISTANT_MFA]));
    }

    fn strength(id: Uuid) -> Strength {
        built_in().into_iter().find(|s| s.id == id).unwrap()
    }

    #[test]
    fn built_in_strengths_accept_the_right_combinations() {
        let mfa = strength(MFA);
        let phishing_resistant = strength(PHISHING_RESISTANT_MFA);
        let password = UsedMethod::plain(Mode::Password);
        let otp = UsedMethod::plain(Mode::SoftwareOath);
        let passkey = UsedMethod::plain(Mode::Fido2);
        assert!(!mfa.satisfied_by(std::slice::from_ref(&password)));
        assert!(mfa.satisfied_by(&[password.clone(), otp.clone()]));
        assert!(mfa.satisfied_by(std::slice::from_ref(&passkey)));
        assert!(!phishing_resistant.satisfied_by(&[password, otp]));
        assert!(phishing_resistant.satisfied_by(&[passkey]));
        assert!(mfa.satisfied_by(&[UsedMethod::plain(Mode::TemporaryAccessPassOneTime)]));
        assert!(
            !phishing_resistant
                .satisfied_by(&[UsedMethod::plain(Mode::TemporaryAccessPassOneTime)])
        );
    }

    #[test]
    fn a_dod_cac_strength_counts_chosen_issuers_only() {
        let mut configurations = std::collections::BTreeMap::new();
        configurations.insert(
            Mode::X509CertificateMultiFactor,
            Restrictions {
                allowed_issuers: vec![
                    "CN=DOD ID CA-59,OU=PKI,OU=DoD,O=U.S. Government,C=US".into(),
                ],
                ..Default::default()
            },
        );
        let cac = Strength {
            id: Uuid::new_v4(),
            display_name: "DoD CAC".to_string(),
            description: String::new(),
            policy_type: "custom".to_string(),
            allowed_combinations: vec![Combination::parse("x509CertificateMultiFactor").unwrap()],
            combination_configurations: configurations,
        };
        cac.validate().unwrap();
        let mut used = UsedMethod::plain(Mode::X509CertificateMultiFactor);
        used.certificate_issuer = Some("CN=Other CA".to_string());
        assert!(!cac.satisfied_by(std::slice::from_ref(&used)));
        used.certificate_issuer =
            Some("cn=DOD ID CA-59,OU=PKI,OU=DoD,O=U.S. Government,C=US".to_string());
        assert!(cac.satisfied_by(&[used]));
        assert!(!cac.satisfied_by(&[UsedMethod::plain(Mode::Fido2)]));
    }

    #[test]
    fn combinations_parse_and_print() {
        let c = Combination::parse("softwareOath, password").unwrap();
        assert_eq!(c.to_string(), "password,softwareOath");
        assert!(Combination::parse("password,password").is_err());
        assert!(Combination::parse("sms").is_err());
        assert!(Combination::parse("").is_err());
    }

    #[test]
    fn bad_custom_strengths_are_refused() {
        let mut s = Strength {
            id: Uuid::new_v4(),
            display_name: "x".to_string(),
            description: String::new(),
            policy_type: "custom".to_string(),
            allowed_combinations: vec![],
            combination_configurations: Default::default(),
        };
        assert!(s.validate().is_err());
        s.allowed_combinations = vec![Combination::of(&[Mode::Password])];
        s.validate().unwrap();
        s.combination_configurations.insert(
            Mode::Fido2,
            Restrictions {
                allowed_aaguids: vec![Uuid::nil()],
                ..Default::default()
            },
        );
        assert!(
            s.validate()
                .unwrap_err()
                .contains("no allowed combination uses fido2")
        );
        assert!(is_oid("2.16.840.1.101.2.1.11.42"));
        assert!(!is_oid("2..1") && !is_oid("abc") && !is_oid("1"));
    }
}

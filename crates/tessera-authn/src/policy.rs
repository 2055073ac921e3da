//! The tenant's authentication methods policy: which methods are on, for whom, with
//! which settings; the smart lockout thresholds; the custom banned password terms; and
//! the strength required to change one's security info.
//!
//! The whole policy is one document, validated as a whole; unknown fields are refused.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::strength::Mode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MethodsPolicy {
    pub password: MethodConfig<PasswordSettings>,
    pub software_oath: MethodConfig<NoSettings>,
    pub fido2: MethodConfig<Fido2Settings>,
    pub temporary_access_pass: MethodConfig<TapSettings>,
    pub x509_certificate: MethodConfig<crate::cba::X509Settings>,
    /// Adding or removing a method needs a sign-in of this strength within
    /// `registrationMaxAgeMinutes`, or a temporary access pass. Unset: multifactor.
    #[serde(default)]
    pub registration_strength: Option<Uuid>,
    #[serde(default = "default_registration_age")]
    pub registration_max_age_minutes: u32,
    pub lockout: LockoutSettings,
    pub sessions: SessionSettings,
}

fn default_registration_age() -> u32 {
    15
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    Enabled,
    Disabled,
}

/// Who a method is for: everyone, or members of the named groups; minus the excluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MethodConfig<S> {
    pub state: State,
    /// Empty: all users.
    #[serde(default)]
    pub include_groups: Vec<Uuid>,
    #[serde(default)]
    pub exclude_groups: Vec<Uuid>,
    #[serde(default)]
    pub settings: S,
}

impl<S> MethodConfig<S> {
    /// Whether the method is on for a user in `groups` (transitive group ids).
    pub fn applies_to(&self, groups: &[Uuid]) -> bool {
        self.state == State::Enabled
            && !self.exclude_groups.iter().any(|g| groups.contains(g))
            && (self.include_groups.is_empty()
                || self.include_groups.iter().any(|g| groups.contains(g)))
    }

    fn groups(&self) -> impl Iterator<Item = &Uuid> {
        self.include_groups.iter().chain(&self.exclude_groups)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordSettings {
    /// The tenant's own banned terms (company, product and place names...).
    #[serde(default)]
    pub custom_banned_terms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Enforcement {
    Allow,
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRestrictions {
    pub enforcement: Enforcement,
    pub aaguids: Vec<Uuid>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fido2Settings {
    /// Which authenticator models may be registered (e.g. FIPS 140-certified keys
    /// only). The AAGUID is the authenticator's claim, verified only as far as its
    /// attestation is.
    #[serde(default)]
    pub key_restrictions: Option<KeyRestrictions>,
}

impl Fido2Settings {
    pub fn admits(&self, aaguid: Uuid) -> bool {
        match &self.key_restrictions {
            None => true,
            Some(r) => match r.enforcement {
                Enforcement::Allow => r.aaguids.contains(&aaguid),
                Enforcement::Block => !r.aaguids.contains(&aaguid),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TapSettings {
    pub default_lifetime_minutes: u32,
    pub minimum_lifetime_minutes: u32,
    pub maximum_lifetime_minutes: u32,
    pub default_length: u32,
    pub is_usable_once: bool,
}

impl Default for TapSettings {
    fn default() -> TapSettings {
        TapSettings {
            default_lifetime_minutes: 60,
            minimum_lifetime_minutes: 10,
            maximum_lifetime_minutes: 480,
            default_length: 12,
            is_usable_once: false,
        }
    }
}

pub const TAP_MIN_LENGTH: u32 = 8;
pub const TAP_MAX_LENGTH: u32 = 48;
pub const TAP_MAX_LIFETIME_MINUTES: u32 = 30 * 24 * 60;

/// Smart lockout: after `threshold` failed sign-ins a user is locked for
/// `durationSeconds`, counted separately for familiar and unfamiliar client
/// addresses so that an attacker elsewhere does not lock the real user out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockoutSettings {
    pub threshold: u32,
    pub duration_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionSettings {
    /// A session unused this long ends.
    pub idle_minutes: u32,
    /// A session ends this long after sign-in, used or not.
    pub absolute_hours: u32,
}

impl Default for MethodsPolicy {
    fn default() -> MethodsPolicy {
        fn on<S: Default>() -> MethodConfig<S> {
            MethodConfig {
                state: State::Enabled,
                include_groups: Vec::new(),
                exclude_groups: Vec::new(),
                settings: S::default(),
            }
        }
        MethodsPolicy {
            password: on(),
            software_oath: on(),
            fido2: on(),
            temporary_access_pass: MethodConfig {
                state: State::Enabled,
                include_groups: Vec::new(),
                exclude_groups: Vec::new(),
                settings: TapSettings::default(),
            },
            x509_certificate: MethodConfig {
                state: State::Disabled,
                include_groups: Vec::new(),
                exclude_groups: Vec::new(),
                settings: crate::cba::X509Settings::default(),
            },
            registration_strength: None,
            registration_max_age_minutes: default_registration_age(),
            lockout: LockoutSettings {
                threshold: 10,
                duration_seconds: 60,
            },
            sessions: SessionSettings {
                idle_minutes: 60,
                absolute_hours: 12,
            },
        }
    }
}

impl MethodsPolicy {
    /// Checks the policy; the message names the offending field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |field: &str, message: &str| Err((field.to_string(), message.to_string()));
        let tap = &self.temporary_access_pass.settings;
        if tap.minimum_lifetime_minutes < 10 {
            return err(
                "temporaryAccessPass.settings.minimumLifetimeMinutes",
                "must be at least 10",
            );
        }
        if tap.maximum_lifetime_minutes > TAP_MAX_LIFETIME_MINUTES {
            return err(
                "temporaryAccessPass.settings.maximumLifetimeMinutes",
                "must be at most 43200 (30 days)",
            );
        }
        if !(tap.minimum_lifetime_minutes..=tap.maximum_lifetime_minutes)
            .contains(&tap.default_lifetime_minutes)
        {
            return err(
                "temporaryAccessPass.settings.defaultLifetimeMinutes",
                "must lie between the minimum and maximum lifetimes",
            );
        }
        if !(TAP_MIN_LENGTH..=TAP_MAX_LENGTH).contains(&tap.default_length) {
            return err(
                "temporaryAccessPass.settings.defaultLength",
                "must be between 8 and 48",
            );
        }
        if !(1..=100).contains(&self.lockout.threshold) {
            return err("lockout.threshold", "must be between 1 and 100");
        }
        if !(5..=86_400).contains(&self.lockout.duration_seconds) {
            return err("lockout.durationSeconds", "must be between 5 and 86400");
        }
        if !(5..=24 * 60).contains(&self.sessions.idle_minutes) {
            return err("sessions.idleMinutes", "must be between 5 and 1440");
        }
        if !(1..=24 * 30).contains(&self.sessions.absolute_hours) {
            return err("sessions.absoluteHours", "must be between 1 and 720");
        }
        if !(1..=24 * 60).contains(&self.registration_max_age_minutes) {
            return err("registrationMaxAgeMinutes", "must be between 1 and 1440");
        }
        let terms = &self.password.settings.custom_banned_terms;
        if terms.len() > 1000 {
            return err(
                "password.settings.customBannedTerms",
                "may hold at most 1000 terms",
            );
        }
        for term in terms {
            let length = term.chars().count();
            if !(crate::password::MIN_TERM_LENGTH..=64).contains(&length) {
                return err(
                    "password.settings.customBannedTerms",
                    "terms must be 4 to 64 characters",
                );
            }
        }
        if let Some(restrictions) = &self.fido2.settings.key_restrictions
            && restrictions.enforcement == Enforcement::Allow
            && restrictions.aaguids.is_empty()
        {
            return err(
                "fido2.settings.keyRestrictions.aaguids",
                "an allow list must name at least one AAGUID",
            );
        }
        self.x509_certificate.settings.validate()?;
        if self.password.state == State::Disabled
            && self.fido2.state == State::Disabled
            && self.x509_certificate.state == State::Disabled
            && self.temporary_access_pass.state == State::Disabled
        {
            return err(
                "password.state",
                "at least one first-factor method must stay enabled, or nobody can sign in",
            );
        }
        Ok(())
    }

    /// Every group the policy names, for the caller to check they exist.
    pub fn referenced_groups(&self) -> Vec<Uuid> {
        let mut groups: Vec<Uuid> = self
            .password
            .groups()
            .chain(self.software_oath.groups())
            .chain(self.fido2.groups())
            .chain(self.temporary_access_pass.groups())
            .chain(self.x509_certificate.groups())
            .copied()
            .collect();
        groups.sort();
        groups.dedup();
        groups
    }

    /// Whether a method mode is enabled for a user in `groups`.
    pub fn allows(&self, mode: Mode, groups: &[Uuid]) -> bool {
        match mode {
            Mode::Password => self.password.applies_to(groups),
            Mode::SoftwareOath => self.software_oath.applies_to(groups),
            Mode::Fido2 => self.fido2.applies_to(groups),
            Mode::TemporaryAccessPassOneTime | Mode::TemporaryAccessPassMultiUse => {
                self.temporary_access_pass.applies_to(groups)
            }
            Mode::X509CertificateSingleFactor | Mode::X509CertificateMultiFactor => {
                self.x509_certificate.applies_to(groups)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_valid_and_round_trips() {
        let policy = MethodsPolicy::default();
        policy.validate().unwrap();
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(json["temporaryAccessPass"]["settings"]["defaultLength"], 12);
        let back: MethodsPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(back, policy);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let mut json = serde_json::to_value(MethodsPolicy::default()).unwrap();
        json["fido2"]["colour"] = serde_json::json!("blue");
        assert!(serde_json::from_value::<MethodsPolicy>(json).is_err());
        let mut policy = MethodsPolicy::default();
        policy.lockout.threshold = 0;
        assert_eq!(policy.validate().unwrap_err().0, "lockout.threshold");
        let mut policy = MethodsPolicy::default();
        policy.fido2.settings.key_restrictions = Some(KeyRestrictions {
            enforcement: Enforcement::Allow,
            aaguids: vec![],
        });
        assert!(policy.validate().is_err());
    }

    #[test]
    fn groups_scope_methods() {
        let pilots = Uuid::new_v4();
        let contractors = Uuid::new_v4();
        let mut policy = MethodsPolicy::default();
        policy.fido2.include_groups = vec![pilots];
        policy.fido2.exclude_groups = vec![contractors];
        assert!(!policy.allows(Mode::Fido2, &[]));
        assert!(policy.allows(Mode::Fido2, &[pilots]));
        assert!(!policy.allows(Mode::Fido2, &[pilots, contractors]));
        assert!(policy.allows(Mode::Password, &[]));
        assert!(!policy.allows(Mode::X509CertificateMultiFactor, &[pilots]));
        assert_eq!(policy.referenced_groups().len(), 2);
    }

    #[test]
    fn key_restrictions_allow_or_block() {
        let yubikey = Uuid::new_v4();
        let other = Uuid::new_v4();
        let mut settings = Fido2Settings::default();
        assert!(settings.admits(other));
        settings.key_restrictions = Some(KeyRestrictions {
            enforcement: Enforcement::Allow,
            aaguids: vec![yubikey],
        });
        assert!(settings.admits(yubikey) && !settings.admits(other));
        settings.key_restrictions = Some(KeyRestrictions {
            enforcement: Enforcement::Block,
            aaguids: vec![yubikey],
        });
        assert!(!settings.admits(yubikey) && settings.admits(other));
    }
}

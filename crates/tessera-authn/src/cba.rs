//! Certificate-based authentication settings: which certificate field identifies
//! which user (username bindings), and which certificates count as one factor or two
//! (authentication bindings), modelled on Entra ID's x509CertificateAuthenticationMethodConfiguration.

use serde::{Deserialize, Serialize};

use crate::strength::Mode;
use crate::x509::Validated;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertificateField {
    PrincipalName,
    #[serde(rename = "RFC822Name")]
    Rfc822Name,
    Subject,
    SubjectKeyIdentifier,
    IssuerAndSerialNumber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserProperty {
    /// The user's sign-in name.
    UserPrincipalName,
    /// Values an administrator bound to the user (`X509:<PN>...`, `X509:<SKI>...`).
    CertificateUserIds,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserBinding {
    pub x509_certificate_field: CertificateField,
    pub user_property: UserProperty,
    /// Lower first.
    pub priority: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RuleType {
    IssuerSubject,
    #[serde(rename = "policyOID")]
    PolicyOid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationRule {
    pub x509_certificate_rule_type: RuleType,
    /// The issuer's distinguished name, or a policy OID.
    pub identifier: String,
    /// `x509CertificateSingleFactor` or `x509CertificateMultiFactor`.
    pub x509_certificate_authentication_mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationModeConfiguration {
    pub x509_certificate_authentication_default_mode: Mode,
    #[serde(default)]
    pub rules: Vec<AuthenticationRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct X509Settings {
    pub certificate_user_bindings: Vec<UserBinding>,
    pub authentication_mode_configuration: AuthenticationModeConfiguration,
}

impl Default for X509Settings {
    fn default() -> X509Settings {
        X509Settings {
            certificate_user_bindings: vec![
                UserBinding {
                    x509_certificate_field: CertificateField::PrincipalName,
                    user_property: UserProperty::UserPrincipalName,
                    priority: 1,
                },
                UserBinding {
                    x509_certificate_field: CertificateField::Rfc822Name,
                    user_property: UserProperty::UserPrincipalName,
                    priority: 2,
                },
                UserBinding {
                    x509_certificate_field: CertificateField::SubjectKeyIdentifier,
                    user_property: UserProperty::CertificateUserIds,
                    priority: 3,
                },
            ],
            authentication_mode_configuration: AuthenticationModeConfiguration {
                x509_certificate_authentication_default_mode: Mode::X509CertificateSingleFactor,
                rules: Vec::new(),
            },
        }
    }
}

fn is_certificate_mode(mode: Mode) -> bool {
    matches!(
        mode,
        Mode::X509CertificateSingleFactor | Mode::X509CertificateMultiFactor
    )
}

impl X509Settings {
    pub fn validate(&self) -> Result<(), (String, String)> {
        let field = "x509Certificate.settings";
        if self.certificate_user_bindings.is_empty() || self.certificate_user_bindings.len() > 16 {
            return Err((
                format!("{field}.certificateUserBindings"),
                "give 1 to 16 bindings".to_string(),
            ));
        }
        for binding in &self.certificate_user_bindings {
            let names_only = matches!(
                binding.x509_certificate_field,
                CertificateField::PrincipalName | CertificateField::Rfc822Name
            );
            if binding.user_property == UserProperty::UserPrincipalName && !names_only {
                return Err((
                    format!("{field}.certificateUserBindings"),
                    "only PrincipalName and RFC822Name can be matched to userPrincipalName"
                        .to_string(),
                ));
            }
        }
        let config = &self.authentication_mode_configuration;
        if !is_certificate_mode(config.x509_certificate_authentication_default_mode) {
            return Err((
                format!(
                    "{field}.authenticationModeConfiguration.x509CertificateAuthenticationDefaultMode"
                ),
                "must be x509CertificateSingleFactor or x509CertificateMultiFactor".to_string(),
            ));
        }
        if config.rules.len() > 100 {
            return Err((
                format!("{field}.authenticationModeConfiguration.rules"),
                "at most 100 rules".to_string(),
            ));
        }
        for rule in &config.rules {
            if !is_certificate_mode(rule.x509_certificate_authentication_mode) {
                return Err((
                    format!("{field}.authenticationModeConfiguration.rules"),
                    "x509CertificateAuthenticationMode must be x509CertificateSingleFactor or x509CertificateMultiFactor".to_string(),
                ));
            }
            let identifier_ok = match rule.x509_certificate_rule_type {
                RuleType::PolicyOid => crate::strength::is_oid(&rule.identifier),
                RuleType::IssuerSubject => {
                    !rule.identifier.trim().is_empty() && rule.identifier.len() <= 1024
                }
            };
            if !identifier_ok {
                return Err((
                    format!("{field}.authenticationModeConfiguration.rules"),
                    format!(
                        "{:?} is not a valid identifier for its rule type",
                        rule.identifier
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether a certificate counts as one factor or two: a matching policy-OID rule
    /// wins over a matching issuer rule, which wins over the default.
    pub fn mode_for(&self, certificate: &Validated) -> Mode {
        let config = &self.authentication_mode_configuration;
        let by_policy = config.rules.iter().find(|r| {
            r.x509_certificate_rule_type == RuleType::PolicyOid
                && certificate.policies.contains(&r.identifier)
        });
        let by_issuer = || {
            config.rules.iter().find(|r| {
                r.x509_certificate_rule_type == RuleType::IssuerSubject
                    && same_dn(&r.identifier, &certificate.issuer)
            })
        };
        by_policy
            .or_else(by_issuer)
            .map(|r| r.x509_certificate_authentication_mode)
            .unwrap_or(config.x509_certificate_authentication_default_mode)
    }

    /// The lookups to try, in priority order: a user property and the value to find.
    /// Values for `certificateUserIds` use Entra's `X509:<tag>value` form.
    pub fn lookups(&self, certificate: &Validated) -> Vec<(UserProperty, String)> {
        let mut bindings = self.certificate_user_bindings.clone();
        bindings.sort_by_key(|b| b.priority);
        let mut out = Vec::new();
        for binding in bindings {
            let values: Vec<String> = match binding.x509_certificate_field {
                CertificateField::PrincipalName => certificate.principal_names.clone(),
                CertificateField::Rfc822Name => certificate.rfc822_names.clone(),
                CertificateField::Subject => vec![certificate.subject.clone()],
                CertificateField::SubjectKeyIdentifier => {
                    certificate.subject_key_id.iter().cloned().collect()
                }
                CertificateField::IssuerAndSerialNumber => {
                    vec![format!("{}<SR>{}", certificate.issuer, certificate.serial)]
                }
            };
            for value in values {
                let value = match binding.user_property {
                    UserProperty::UserPrincipalName => value,
                    UserProperty::CertificateUserIds => {
                        certificate_user_id(binding.x509_certificate_field, &value)
                    }
                };
                out.push((binding.user_property, value));
            }
        }
        out
    }
}

/// `X509:<PN>adele@contoso.com` and friends.
pub fn certificate_user_id(field: CertificateField, value: &str) -> String {
    let tag = match field {
        CertificateField::PrincipalName => "<PN>",
        CertificateField::Rfc822Name => "<RFC822>",
        CertificateField::Subject => "<S>",
        CertificateField::SubjectKeyIdentifier => "<SKI>",
        CertificateField::IssuerAndSerialNumber => "<I>",
    };
    format!("X509:{tag}{value}")
}

/// Checks an administrator-given certificate user id.
pub fn valid_certificate_user_id(value: &str) -> bool {
    let Some(rest) = value.strip_prefix("X509:") else {
        return false;
    };
    ["<PN>", "<RFC822>", "<S>", "<SKI>", "<I>"]
        .iter()
        .any(|tag| rest.strip_prefix(tag).is_some_and(|v| !v.trim().is_empty()))
        && value.len() <= 1024
        && !value.chars().any(char::is_control)
}

/// The components of a distinguished name, split on unescaped commas, without case
/// and spacing around separators.
fn dn_parts(dn: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == ',' {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
        .iter()
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            format!(
                "{}={}",
                key.trim().to_ascii_uppercase(),
                value.trim().to_lowercase()
            )
        })
        .collect()
}

/// Whether two distinguished names are the same: component by component (escapes
/// respected), case-insensitively, in either written order (RFC 4514 writes the
/// most specific component first; many tools write the certificate's order).
pub fn same_dn(a: &str, b: &str) -> bool {
    let a = dn_parts(a);
    let mut b = dn_parts(b);
    if a == b {
        return true;
    }
    b.reverse();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate() -> Validated {
        Validated {
            subject: "CN=Adele Vance".to_string(),
            issuer: "CN=DOD ID CA-59, OU=PKI, O=U.S. Government, C=US".to_string(),
            serial: "1A2B".to_string(),
            subject_key_id: Some("ABCD".to_string()),
            principal_names: vec!["1234567890@mil".to_string()],
            rfc822_names: vec!["adele.vance@mail.mil".to_string()],
            policies: vec!["2.16.840.1.101.2.1.11.42".to_string()],
            ..Validated::default()
        }
    }

    #[test]
    fn lookups_follow_priority_and_entra_formats() {
        let settings = X509Settings::default();
        let lookups = settings.lookups(&certificate());
        assert_eq!(
            lookups,
            vec![
                (
                    UserProperty::UserPrincipalName,
                    "1234567890@mil".to_string()
                ),
                (
                    UserProperty::UserPrincipalName,
                    "adele.vance@mail.mil".to_string()
                ),
                (
                    UserProperty::CertificateUserIds,
                    "X509:<SKI>ABCD".to_string()
                ),
            ]
        );
        assert!(valid_certificate_user_id("X509:<PN>1234567890@mil"));
        assert!(!valid_certificate_user_id("X509:<XX>1"));
        assert!(!valid_certificate_user_id("X509:<PN>"));
    }

    #[test]
    fn policy_rules_win_over_issuer_rules_over_the_default() {
        let mut settings = X509Settings::default();
        assert_eq!(
            settings.mode_for(&certificate()),
            Mode::X509CertificateSingleFactor
        );
        settings
            .authentication_mode_configuration
            .rules
            .push(AuthenticationRule {
                x509_certificate_rule_type: RuleType::IssuerSubject,
                identifier: "cn=DOD ID CA-59,ou=PKI,o=U.S. Government,c=US".to_string(),
                x509_certificate_authentication_mode: Mode::X509CertificateSingleFactor,
            });
        settings
            .authentication_mode_configuration
            .x509_certificate_authentication_default_mode = Mode::X509CertificateMultiFactor;
        assert_eq!(
            settings.mode_for(&certificate()),
            Mode::X509CertificateSingleFactor
        );
        settings
            .authentication_mode_configuration
            .rules
            .push(AuthenticationRule {
                x509_certificate_rule_type: RuleType::PolicyOid,
                identifier: "2.16.840.1.101.2.1.11.42".to_string(),
                x509_certificate_authentication_mode: Mode::X509CertificateMultiFactor,
            });
        assert_eq!(
            settings.mode_for(&certificate()),
            Mode::X509CertificateMultiFactor
        );
        settings.validate().unwrap();
    }

    #[test]
    fn distinguished_names_compare_by_component() {
        assert!(same_dn(
            "CN=DOD ID CA-59, OU=PKI, O=U.S. Government, C=US",
            "c=US,o=U.S. Government,ou=PKI,cn=DOD ID CA-59"
        ));
        assert!(same_dn("CN=A, O=B", "cn=a,o=b"));
        // An escaped comma is part of a value, not a separator.
        assert!(!same_dn(
            "CN=x\\, O=U.S. Government",
            "CN=x, O=U.S. Government"
        ));
        assert!(!same_dn("CN=A, O=B", "CN=A, O=C"));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut settings = X509Settings::default();
        settings.certificate_user_bindings[2].user_property = UserProperty::UserPrincipalName;
        assert!(settings.validate().is_err());
        let mut settings = X509Settings::default();
        settings
            .authentication_mode_configuration
            .x509_certificate_authentication_default_mode = Mode::Password;
        assert!(settings.validate().is_err());
        let json = serde_json::json!({
            "certificateUserBindings": [{"x509CertificateField": "RFC822Name", "userProperty": "userPrincipalName", "priority": 1}],
            "authenticationModeConfiguration": {
                "x509CertificateAuthenticationDefaultMode": "x509CertificateSingleFactor",
                "rules": [{"x509CertificateRuleType": "policyOID", "identifier": "1.2.3", "x509CertificateAuthenticationMode": "x509CertificateMultiFactor"}]
            }
        });
        let parsed: X509Settings = serde_json::from_value(json).unwrap();
        parsed.validate().unwrap();
    }
}

//! An application's SAML configuration, as stored and as the API takes it, and
//! the pure rules that turn a user into what the assertion says: the NameID (per
//! format and source attribute; persistent identifiers pairwise per application),
//! and the attribute statement (user attributes, groups with a filter and an
//! overage rule, app roles, constants).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::idp::{NAME_ID_EMAIL, NAME_ID_PERSISTENT, NAME_ID_TRANSIENT, NAME_ID_UNSPECIFIED};
use crate::metadata::{HTTP_POST, HTTP_REDIRECT, ServiceProvider};
use crate::response::{
    ATTRIBUTE_BASIC, ATTRIBUTE_UNSPECIFIED, ATTRIBUTE_URI, NameId, SamlAttribute,
};

/// The most groups an assertion lists before the overage rule applies (Entra's
/// limit for SAML tokens).
pub const GROUP_LIMIT: usize = 150;
const MAX_CONSUMERS: usize = 32;
const MAX_ATTRIBUTES: usize = 64;
const MAX_CERTIFICATES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsumerService {
    pub url: String,
    pub index: u16,
    #[serde(default)]
    pub is_default: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CertificateUse {
    Signing,
    Encryption,
    Both,
}

/// A certificate of the service provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpCertificate {
    #[serde(rename = "use")]
    pub key_use: CertificateUse,
    /// DER, base64.
    pub certificate: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum NameIdFormat {
    /// Pairwise: the same for this user and application, different per application.
    #[default]
    Persistent,
    EmailAddress,
    Unspecified,
    /// New for every assertion.
    Transient,
}

impl NameIdFormat {
    pub fn uri(self) -> &'static str {
        match self {
            NameIdFormat::Persistent => NAME_ID_PERSISTENT,
            NameIdFormat::EmailAddress => NAME_ID_EMAIL,
            NameIdFormat::Unspecified => NAME_ID_UNSPECIFIED,
            NameIdFormat::Transient => NAME_ID_TRANSIENT,
        }
    }

    pub fn from_uri(uri: &str) -> Option<NameIdFormat> {
        [
            NameIdFormat::Persistent,
            NameIdFormat::EmailAddress,
            NameIdFormat::Unspecified,
            NameIdFormat::Transient,
        ]
        .into_iter()
        .find(|f| f.uri() == uri)
    }
}

/// A user attribute a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserAttribute {
    UserPrincipalName,
    Mail,
    DisplayName,
    GivenName,
    Surname,
    ObjectId,
    EmployeeId,
    Department,
    JobTitle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameIdRule {
    #[serde(default)]
    pub format: NameIdFormat,
    /// For emailAddress and unspecified: where the value comes from (persistent and
    /// transient identifiers are made by Tessera).
    #[serde(default = "default_source")]
    pub source: UserAttribute,
}

fn default_source() -> UserAttribute {
    UserAttribute::UserPrincipalName
}

impl Default for NameIdRule {
    fn default() -> Self {
        NameIdRule {
            format: NameIdFormat::Persistent,
            source: UserAttribute::UserPrincipalName,
        }
    }
}

/// Which groups an assertion lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum GroupFilter {
    /// Every group the user is in, directly or through nesting.
    #[default]
    All,
    /// Only the groups assigned to the application.
    AssignedToApplication,
}

/// How a group is named in the assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum GroupName {
    #[default]
    ObjectId,
    DisplayName,
}

/// Where an attribute's values come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", deny_unknown_fields)]
pub enum Source {
    User {
        attribute: UserAttribute,
    },
    Groups {
        #[serde(default)]
        filter: GroupFilter,
        #[serde(default)]
        name: GroupName,
    },
    /// The user's app roles in this application (their values).
    Roles,
    Constant {
        value: String,
    },
    /// A custom security attribute of the user (a list gives a value each).
    CustomSecurityAttribute {
        set: String,
        name: String,
    },
    /// A value computed from the user's attributes.
    Expression {
        expression: Expression,
    },
}

impl Source {
    /// Whether the source reads custom security attributes (which only those
    /// who may read them may map into assertions).
    pub fn reads_custom_security_attributes(&self) -> bool {
        match self {
            Source::CustomSecurityAttribute { .. } => true,
            Source::Expression { expression } => expression.reads_custom_security_attributes(),
            _ => false,
        }
    }

    /// The custom security attributes (set, name) the source reads.
    pub fn custom_security_attributes(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match self {
            Source::CustomSecurityAttribute { set, name } => out.push((set.clone(), name.clone())),
            Source::Expression { expression } => expression.collect_custom(&mut out),
            _ => {}
        }
        out
    }
}

/// A claim transformation (as Entra's): a user attribute, a custom security
/// attribute or a constant, joined, lower- or upper-cased, cut to a mail
/// address's local part, or a fallback when empty. An expression gives one value
/// or none (a missing attribute); a list attribute gives its values joined by
/// commas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
pub enum Expression {
    Attribute {
        attribute: UserAttribute,
    },
    CustomSecurityAttribute {
        set: String,
        name: String,
    },
    Constant {
        value: String,
    },
    Join {
        separator: String,
        parts: Vec<Expression>,
    },
    Lowercase {
        of: Box<Expression>,
    },
    Uppercase {
        of: Box<Expression>,
    },
    /// The part of a mail address before `@` (the whole value without one).
    MailPrefix {
        of: Box<Expression>,
    },
    /// `of`, or `otherwise` when `of` is missing or empty.
    IfEmpty {
        of: Box<Expression>,
        otherwise: Box<Expression>,
    },
}

/// Bounds on an expression: how deep, how many nodes.
const MAX_EXPRESSION_DEPTH: usize = 6;
const MAX_EXPRESSION_NODES: usize = 32;

impl Expression {
    fn children(&self) -> Vec<&Expression> {
        match self {
            Expression::Join { parts, .. } => parts.iter().collect(),
            Expression::Lowercase { of }
            | Expression::Uppercase { of }
            | Expression::MailPrefix { of } => vec![of.as_ref()],
            Expression::IfEmpty { of, otherwise } => vec![of.as_ref(), otherwise.as_ref()],
            _ => Vec::new(),
        }
    }

    fn reads_custom_security_attributes(&self) -> bool {
        matches!(self, Expression::CustomSecurityAttribute { .. })
            || self
                .children()
                .iter()
                .any(|child| child.reads_custom_security_attributes())
    }

    fn collect_custom(&self, out: &mut Vec<(String, String)>) {
        if let Expression::CustomSecurityAttribute { set, name } = self {
            out.push((set.clone(), name.clone()));
        }
        for child in self.children() {
            child.collect_custom(out);
        }
    }

    /// Checks the expression's size and texts; `nodes` counts across it.
    fn check(&self, depth: usize, nodes: &mut usize) -> Result<(), ConfigError> {
        *nodes += 1;
        if depth > MAX_EXPRESSION_DEPTH || *nodes > MAX_EXPRESSION_NODES {
            return refuse(format!(
                "an expression is at most {MAX_EXPRESSION_DEPTH} deep and {MAX_EXPRESSION_NODES} operations"
            ));
        }
        match self {
            Expression::Constant { value } if value.len() > 256 || !plain_text(value) => {
                return refuse(
                    "an expression's constant is at most 256 characters, without control characters",
                );
            }
            Expression::Join { separator, parts } => {
                if separator.len() > 16 || !plain_text(separator) {
                    return refuse("a join's separator is at most 16 characters");
                }
                if parts.is_empty() {
                    return refuse("a join needs parts");
                }
            }
            Expression::CustomSecurityAttribute { set, name } => check_custom_name(set, name)?,
            _ => {}
        }
        for child in self.children() {
            child.check(depth + 1, nodes)?;
        }
        Ok(())
    }

    /// The value for a user (none: an attribute it reads is missing).
    pub fn evaluate(&self, user: &UserFacts) -> Option<String> {
        let value = match self {
            Expression::Attribute { attribute } => user.attribute(*attribute).map(str::to_string),
            Expression::CustomSecurityAttribute { set, name } => user
                .custom_values(set, name)
                .filter(|values| !values.is_empty())
                .map(|values| values.join(",")),
            Expression::Constant { value } => Some(value.clone()),
            Expression::Join { separator, parts } => {
                let present: Vec<String> = parts
                    .iter()
                    .filter_map(|part| part.evaluate(user))
                    .filter(|part| !part.is_empty())
                    .collect();
                (!present.is_empty()).then(|| present.join(separator))
            }
            Expression::Lowercase { of } => of.evaluate(user).map(|v| v.to_lowercase()),
            Expression::Uppercase { of } => of.evaluate(user).map(|v| v.to_uppercase()),
            Expression::MailPrefix { of } => of
                .evaluate(user)
                .map(|v| v.split('@').next().unwrap_or_default().to_string()),
            Expression::IfEmpty { of, otherwise } => match of.evaluate(user) {
                Some(value) if !value.is_empty() => Some(value),
                _ => otherwise.evaluate(user),
            },
        };
        // Bounded whatever the attributes hold.
        value.map(|v| v.chars().take(MAX_VALUE_CHARS).collect())
    }
}

/// The longest value an expression gives.
const MAX_VALUE_CHARS: usize = 4096;

/// A custom security attribute's set and name: letters, digits and `_`, 1 to 32
/// characters each (as Entra names them).
fn check_custom_name(set: &str, name: &str) -> Result<(), ConfigError> {
    let ok = |text: &str| {
        (1..=32).contains(&text.len())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if ok(set) && ok(name) {
        Ok(())
    } else {
        refuse(
            "a custom security attribute is named by its set and name: letters, digits and _, 1 to 32 each",
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeRule {
    pub name: String,
    #[serde(default = "default_name_format")]
    pub name_format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    pub source: Source,
}

fn default_name_format() -> String {
    ATTRIBUTE_URI.to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum SignatureAlgorithm {
    #[default]
    RsaSha256,
    EcdsaSha256,
}

/// What Tessera signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signing {
    #[serde(default = "yes")]
    pub assertion: bool,
    #[serde(default)]
    pub response: bool,
}

fn yes() -> bool {
    true
}

impl Default for Signing {
    fn default() -> Self {
        Signing {
            assertion: true,
            response: false,
        }
    }
}

/// The binding of the application's single logout service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogoutBinding {
    /// HTTP-Redirect: the message in the query, its signature detached.
    #[default]
    Redirect,
    /// HTTP-POST: an auto-submitted form, the signature enveloped.
    Post,
}

/// An application's SAML configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SamlSettings {
    pub entity_id: String,
    pub consumer_services: Vec<ConsumerService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_url: Option<String>,
    /// How logout messages go to `logoutUrl`.
    #[serde(default)]
    pub logout_binding: LogoutBinding,
    #[serde(default)]
    pub certificates: Vec<SpCertificate>,
    /// Requests must be signed with one of the signing certificates.
    #[serde(default)]
    pub require_signed_requests: bool,
    #[serde(default)]
    pub name_id: NameIdRule,
    #[serde(default)]
    pub attributes: Vec<AttributeRule>,
    #[serde(default)]
    pub signing: Signing,
    /// The algorithm of the application's own IdP certificate, when it has one.
    #[serde(default)]
    pub signature_algorithm: SignatureAlgorithm,
    /// Encrypt assertions to the encryption certificate.
    #[serde(default)]
    pub encrypt_assertions: bool,
    /// How long an assertion's conditions hold (seconds).
    #[serde(default = "default_lifetime")]
    pub assertion_lifetime_seconds: u32,
    /// The RelayState of an IdP-initiated sign-on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_state: Option<String>,
}

fn default_lifetime() -> u32 {
    3600
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(message.into()))
}

/// Text without control characters (which XML either forbids or would not keep).
fn plain_text(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

/// Whether `url` may receive assertions or logout messages: https, or http to an
/// exact loopback host; no user info, no fragment.
pub fn endpoint_allowed(url: &str) -> bool {
    crate::metadata::location_allowed(url)
}

impl SamlSettings {
    /// The settings a service provider's metadata gives (the rest default).
    pub fn from_metadata(sp: &ServiceProvider) -> SamlSettings {
        let consumer_services = sp
            .consumer_services
            .iter()
            .filter(|c| c.binding == HTTP_POST)
            .enumerate()
            .map(|(position, c)| ConsumerService {
                url: c.location.clone(),
                index: c.index.unwrap_or(position as u16),
                is_default: c.is_default,
            })
            .collect();
        let certificates = sp
            .certificates
            .iter()
            .map(|c| SpCertificate {
                key_use: match c.key_use {
                    crate::metadata::KeyUse::Signing => CertificateUse::Signing,
                    crate::metadata::KeyUse::Encryption => CertificateUse::Encryption,
                    crate::metadata::KeyUse::Both => CertificateUse::Both,
                },
                certificate: STANDARD.encode(&c.der),
            })
            .collect();
        let format = sp
            .name_id_formats
            .iter()
            .find_map(|f| NameIdFormat::from_uri(f))
            .unwrap_or_default();
        // A single logout service over a binding Tessera speaks (not SOAP).
        let logout = [HTTP_REDIRECT, HTTP_POST].iter().find_map(|binding| {
            sp.logout_services
                .iter()
                .find(|service| service.binding == *binding)
        });
        SamlSettings {
            entity_id: sp.entity_id.clone(),
            consumer_services,
            logout_url: logout.map(|s| s.location.clone()),
            logout_binding: match logout {
                Some(service) if service.binding == HTTP_POST => LogoutBinding::Post,
                _ => LogoutBinding::Redirect,
            },
            certificates,
            require_signed_requests: sp.authn_requests_signed,
            name_id: NameIdRule {
                format,
                source: if format == NameIdFormat::EmailAddress {
                    UserAttribute::Mail
                } else {
                    UserAttribute::UserPrincipalName
                },
            },
            attributes: Vec::new(),
            signing: Signing::default(),
            signature_algorithm: SignatureAlgorithm::default(),
            encrypt_assertions: false,
            assertion_lifetime_seconds: default_lifetime(),
            relay_state: None,
        }
    }

    /// Checks the settings; a bad one is named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.entity_id.trim().is_empty() || self.entity_id.len() > 1024 {
            return refuse("entityId must be 1 to 1024 characters");
        }
        if !plain_text(&self.entity_id) {
            return refuse("entityId holds control characters");
        }
        if self.consumer_services.is_empty() || self.consumer_services.len() > MAX_CONSUMERS {
            return refuse(format!(
                "between 1 and {MAX_CONSUMERS} consumerServices are required"
            ));
        }
        let mut indexes = std::collections::HashSet::new();
        for consumer in &self.consumer_services {
            if !endpoint_allowed(&consumer.url) {
                return refuse(format!(
                    "consumer service {} must be an https URL (http only to a loopback host)",
                    consumer.url.chars().take(200).collect::<String>()
                ));
            }
            if !indexes.insert(consumer.index) {
                return refuse(format!(
                    "consumer service index {} is given twice",
                    consumer.index
                ));
            }
        }
        if self
            .consumer_services
            .iter()
            .filter(|c| c.is_default)
            .count()
            > 1
        {
            return refuse("at most one consumer service is the default");
        }
        if let Some(url) = &self.logout_url
            && !endpoint_allowed(url)
        {
            return refuse("logoutUrl must be an https URL (http only to a loopback host)");
        }
        if self.certificates.len() > MAX_CERTIFICATES {
            return refuse(format!("at most {MAX_CERTIFICATES} certificates"));
        }
        for certificate in &self.certificates {
            let der = STANDARD
                .decode(&certificate.certificate)
                .map_err(|_| ConfigError("a certificate is not base64 DER".to_string()))?;
            crate::dsig::public_key_of(&der)
                .map_err(|e| ConfigError(format!("a certificate cannot be used: {e}")))?;
        }
        if self.require_signed_requests && self.signing_keys().is_empty() {
            return refuse("requireSignedRequests needs a signing certificate");
        }
        if self.encrypt_assertions && self.encryption_certificate().is_none() {
            return refuse("encryptAssertions needs an encryption certificate");
        }
        if !self.signing.assertion && !self.signing.response {
            return refuse("the assertion or the response (or both) must be signed");
        }
        if !(60..=86_400).contains(&self.assertion_lifetime_seconds) {
            return refuse("assertionLifetimeSeconds must be between 60 and 86400");
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            return refuse(format!("at most {MAX_ATTRIBUTES} attributes"));
        }
        let mut names = std::collections::HashSet::new();
        for attribute in &self.attributes {
            if attribute.name.trim().is_empty() || attribute.name.len() > 256 {
                return refuse("an attribute name must be 1 to 256 characters");
            }
            if !plain_text(&attribute.name)
                || attribute
                    .friendly_name
                    .as_deref()
                    .is_some_and(|f| f.len() > 256 || !plain_text(f))
            {
                return refuse(format!(
                    "the attribute {} has control characters or a friendlyName over 256 characters",
                    attribute.name.chars().take(100).collect::<String>()
                ));
            }
            if !names.insert(attribute.name.as_str()) {
                return refuse(format!("the attribute {} is given twice", attribute.name));
            }
            if ![ATTRIBUTE_URI, ATTRIBUTE_BASIC, ATTRIBUTE_UNSPECIFIED]
                .contains(&attribute.name_format.as_str())
            {
                return refuse(format!(
                    "the attribute {} has an unknown nameFormat",
                    attribute.name
                ));
            }
            match &attribute.source {
                Source::Constant { value } if value.len() > 1024 || !plain_text(value) => {
                    return refuse(
                        "a constant is at most 1024 characters, without control characters",
                    );
                }
                Source::CustomSecurityAttribute { set, name } => check_custom_name(set, name)?,
                Source::Expression { expression } => expression.check(1, &mut 0)?,
                _ => {}
            }
        }
        if let Some(relay) = &self.relay_state
            && (relay.len() > 80 || !plain_text(relay))
        {
            // SAML bindings §3.4.3: RelayState is at most 80 bytes.
            return refuse("relayState is at most 80 bytes");
        }
        Ok(())
    }

    /// The consumer service a request names: by exact URL, by index, or the
    /// default (the one marked so, else the lowest index).
    pub fn consumer(&self, url: Option<&str>, index: Option<u16>) -> Option<&ConsumerService> {
        match (url, index) {
            (Some(url), _) => self.consumer_services.iter().find(|c| c.url == url),
            (None, Some(index)) => self.consumer_services.iter().find(|c| c.index == index),
            (None, None) => self
                .consumer_services
                .iter()
                .find(|c| c.is_default)
                .or_else(|| self.consumer_services.iter().min_by_key(|c| c.index)),
        }
    }

    /// The DER certificates requests are signed with.
    pub fn signing_keys(&self) -> Vec<crate::binding::PublicKey> {
        self.certificates
            .iter()
            .filter(|c| c.key_use != CertificateUse::Encryption)
            .filter_map(|c| STANDARD.decode(&c.certificate).ok())
            .filter_map(|der| crate::dsig::public_key_of(&der).ok())
            .collect()
    }

    /// The DER certificate assertions are encrypted to.
    pub fn encryption_certificate(&self) -> Option<Vec<u8>> {
        self.certificates
            .iter()
            .filter(|c| c.key_use != CertificateUse::Signing)
            .filter_map(|c| STANDARD.decode(&c.certificate).ok())
            .find(|der| {
                matches!(
                    crate::dsig::public_key_of(der),
                    Ok(crate::binding::PublicKey::Rsa(_))
                )
            })
    }
}

/// What the assertion may say about a user.
#[derive(Debug, Clone, Default)]
pub struct UserFacts {
    pub id: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub employee_id: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    /// Every group (id, display name), nesting resolved.
    pub groups: Vec<(String, String)>,
    /// The ids of the groups assigned to the application.
    pub app_groups: Vec<String>,
    /// The values of the user's app roles in this application.
    pub roles: Vec<String>,
    /// The custom security attributes the mapping reads: (set, name) and the
    /// values as text.
    pub custom: Vec<((String, String), Vec<String>)>,
}

impl UserFacts {
    /// A custom security attribute's values, if the user has it.
    pub fn custom_values(&self, set: &str, name: &str) -> Option<&Vec<String>> {
        self.custom
            .iter()
            .find(|((s, n), _)| s == set && n == name)
            .map(|(_, values)| values)
    }

    pub fn attribute(&self, attribute: UserAttribute) -> Option<&str> {
        match attribute {
            UserAttribute::UserPrincipalName => Some(self.user_principal_name.as_str()),
            UserAttribute::Mail => self.mail.as_deref(),
            UserAttribute::DisplayName => Some(self.display_name.as_str()),
            UserAttribute::GivenName => self.given_name.as_deref(),
            UserAttribute::Surname => self.surname.as_deref(),
            UserAttribute::ObjectId => Some(self.id.as_str()),
            UserAttribute::EmployeeId => self.employee_id.as_deref(),
            UserAttribute::Department => self.department.as_deref(),
            UserAttribute::JobTitle => self.job_title.as_deref(),
        }
        .filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameIdError {
    #[error("the user has no {0:?} for the NameID")]
    Missing(UserAttribute),
    #[error("the pairwise secret is shorter than 32 bytes")]
    WeakSecret,
}

/// Who a NameID is for.
#[derive(Debug, Clone, Copy)]
pub struct Pairwise<'a> {
    /// The application's stable id (its appId): persistent identifiers are derived
    /// from it, so they survive a change of entity id.
    pub application: &'a str,
    /// The SP's entity id (the SPNameQualifier).
    pub audience: &'a str,
    /// The IdP's entity id (the NameQualifier).
    pub idp: &'a str,
    /// At least 32 bytes, derived for this purpose only.
    pub secret: &'a [u8],
}

/// The NameID of `user` for an application. Persistent identifiers are the same
/// for one user and application and unlinkable across applications; `random`
/// makes a transient one.
pub fn name_id(
    rule: &NameIdRule,
    user: &UserFacts,
    pairwise: Pairwise<'_>,
    random: &[u8; 16],
) -> Result<NameId, NameIdError> {
    let Pairwise {
        application,
        audience,
        idp: idp_entity_id,
        secret,
    } = pairwise;
    if secret.len() < 32 {
        return Err(NameIdError::WeakSecret);
    }
    let (value, qualified) = match rule.format {
        NameIdFormat::Persistent => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
            // Length-prefixed, so no two (application, user) pairs share an input.
            let input = format!(
                "{}:{application}{}:{}",
                application.len(),
                user.id.len(),
                user.id
            );
            let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
            (URL_SAFE_NO_PAD.encode(&tag.as_ref()[..24]), true)
        }
        NameIdFormat::Transient => (crate::response::identifier(random), true),
        NameIdFormat::EmailAddress | NameIdFormat::Unspecified => (
            user.attribute(rule.source)
                .ok_or(NameIdError::Missing(rule.source))?
                .to_string(),
            false,
        ),
    };
    Ok(NameId {
        format: rule.format.uri().to_string(),
        value,
        name_qualifier: qualified.then(|| idp_entity_id.to_string()),
        sp_name_qualifier: qualified.then(|| audience.to_string()),
    })
}

/// Entra's claim for a group list too long for the token.
pub const GROUPS_LINK: &str = "http://schemas.microsoft.com/claims/groups.link";

/// The attribute statement for `user`. Attributes without a value are left out.
/// Past [`GROUP_LIMIT`] groups, the groups attribute is replaced by a
/// `groups.link` naming where to read them (`groups_link`).
pub fn attributes(
    rules: &[AttributeRule],
    user: &UserFacts,
    groups_link: &str,
) -> Vec<SamlAttribute> {
    let mut out = Vec::new();
    for rule in rules {
        let values: Vec<String> = match &rule.source {
            Source::User { attribute } => user
                .attribute(*attribute)
                .map(str::to_string)
                .into_iter()
                .collect(),
            Source::Constant { value } => vec![value.clone()],
            Source::Roles => user.roles.clone(),
            Source::CustomSecurityAttribute { set, name } => {
                user.custom_values(set, name).cloned().unwrap_or_default()
            }
            Source::Expression { expression } => expression.evaluate(user).into_iter().collect(),
            Source::Groups { filter, name } => {
                let listed: Vec<&(String, String)> = user
                    .groups
                    .iter()
                    .filter(|(id, _)| *filter == GroupFilter::All || user.app_groups.contains(id))
                    .collect();
                if listed.len() > GROUP_LIMIT {
                    out.push(SamlAttribute {
                        name: GROUPS_LINK.to_string(),
                        name_format: ATTRIBUTE_URI.to_string(),
                        friendly_name: None,
                        values: vec![groups_link.to_string()],
                    });
                    continue;
                }
                listed
                    .into_iter()
                    .map(|(id, display)| match name {
                        GroupName::ObjectId => id.clone(),
                        GroupName::DisplayName => display.clone(),
                    })
                    .collect()
            }
        };
        if !values.is_empty() {
            out.push(SamlAttribute {
                name: rule.name.clone(),
                name_format: rule.name_format.clone(),
                friendly_name: rule.friendly_name.clone(),
                values,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserFacts {
        UserFacts {
            id: "u1".into(),
            user_principal_name: "ada@contoso.com".into(),
            mail: Some("ada@contoso.com".into()),
            display_name: "Ada".into(),
            groups: (0..3)
                .map(|i| (format!("g{i}"), format!("Group {i}")))
                .collect(),
            app_groups: vec!["g1".into()],
            roles: vec!["Admin".into()],
            ..UserFacts::default()
        }
    }

    fn to(application: &'static str) -> Pairwise<'static> {
        Pairwise {
            application,
            audience: "https://a",
            idp: "https://idp",
            secret: &[7; 32],
        }
    }

    #[test]
    fn persistent_ids_are_pairwise_and_stable() {
        let rule = NameIdRule::default();
        let a = name_id(&rule, &user(), to("app-a"), &[0; 16]).unwrap();
        let again = name_id(&rule, &user(), to("app-a"), &[1; 16]).unwrap();
        let b = name_id(&rule, &user(), to("app-b"), &[0; 16]).unwrap();
        let weak = Pairwise {
            secret: b"short",
            ..to("app-a")
        };
        assert_eq!(
            name_id(&rule, &user(), weak, &[0; 16]).unwrap_err(),
            NameIdError::WeakSecret
        );
        assert_eq!(a, again);
        assert_ne!(a.value, b.value);
        assert_eq!(a.sp_name_qualifier.as_deref(), Some("https://a"));
        let email = NameIdRule {
            format: NameIdFormat::EmailAddress,
            source: UserAttribute::GivenName,
        };
        assert_eq!(
            name_id(&email, &user(), to("app-a"), &[0; 16]).unwrap_err(),
            NameIdError::Missing(UserAttribute::GivenName)
        );
    }

    #[test]
    fn groups_filter_name_and_overflow() {
        let rules = vec![
            AttributeRule {
                name: "groups".into(),
                name_format: ATTRIBUTE_BASIC.into(),
                friendly_name: None,
                source: Source::Groups {
                    filter: GroupFilter::AssignedToApplication,
                    name: GroupName::DisplayName,
                },
            },
            AttributeRule {
                name: "given".into(),
                name_format: ATTRIBUTE_BASIC.into(),
                friendly_name: None,
                source: Source::User {
                    attribute: UserAttribute::GivenName,
                },
            },
        ];
        let out = attributes(&rules, &user(), "https://idp/link");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].values, vec!["Group 1".to_string()]);
        let mut many = user();
        many.groups = (0..200).map(|i| (format!("g{i}"), String::new())).collect();
        let all = vec![AttributeRule {
            source: Source::Groups {
                filter: GroupFilter::All,
                name: GroupName::ObjectId,
            },
            ..rules[0].clone()
        }];
        let out = attributes(&all, &many, "https://idp/link");
        assert_eq!(out[0].name, GROUPS_LINK);
    }

    #[test]
    fn expressions_and_custom_security_attributes() {
        let mut ada = user();
        ada.given_name = Some("Ada".into());
        ada.surname = Some("Lovelace".into());
        ada.custom = vec![
            (("hr".into(), "costCenter".into()), vec!["4711".into()]),
            (("hr".into(), "badges".into()), vec!["a".into(), "b".into()]),
        ];
        let rule = |name: &str, source: serde_json::Value| AttributeRule {
            name: name.into(),
            name_format: ATTRIBUTE_BASIC.into(),
            friendly_name: None,
            source: serde_json::from_value(source).unwrap(),
        };
        let rules = vec![
            rule(
                "login",
                serde_json::json!({"kind": "expression", "expression": {"op": "lowercase", "of": {"op": "join", "separator": ".", "parts": [
                    {"op": "attribute", "attribute": "givenName"},
                    {"op": "attribute", "attribute": "surname"}
                ]}}}),
            ),
            rule(
                "short",
                serde_json::json!({"kind": "expression", "expression": {"op": "mailPrefix", "of": {"op": "attribute", "attribute": "mail"}}}),
            ),
            rule(
                "dept",
                serde_json::json!({"kind": "expression", "expression": {"op": "ifEmpty",
                    "of": {"op": "attribute", "attribute": "department"},
                    "otherwise": {"op": "constant", "value": "none"}}}),
            ),
            rule(
                "costCenter",
                serde_json::json!({"kind": "customSecurityAttribute", "set": "hr", "name": "costCenter"}),
            ),
            rule(
                "badges",
                serde_json::json!({"kind": "customSecurityAttribute", "set": "hr", "name": "badges"}),
            ),
            rule(
                "missing",
                serde_json::json!({"kind": "customSecurityAttribute", "set": "hr", "name": "nothing"}),
            ),
        ];
        let out = attributes(&rules, &ada, "l");
        let value = |name: &str| {
            out.iter()
                .find(|a| a.name == name)
                .map(|a| a.values.clone())
        };
        assert_eq!(value("login"), Some(vec!["ada.lovelace".to_string()]));
        assert_eq!(value("short"), Some(vec!["ada".to_string()]));
        assert_eq!(value("dept"), Some(vec!["none".to_string()]));
        assert_eq!(value("costCenter"), Some(vec!["4711".to_string()]));
        assert_eq!(
            value("badges"),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(value("missing"), None, "a missing attribute is left out");
        assert!(rules[3].source.reads_custom_security_attributes());
        assert!(!rules[0].source.reads_custom_security_attributes());
        // Checked: depth, size, names.
        let mut deep = serde_json::json!({"op": "attribute", "attribute": "mail"});
        for _ in 0..8 {
            deep = serde_json::json!({"op": "lowercase", "of": deep});
        }
        let mut settings: SamlSettings = serde_json::from_value(serde_json::json!({
            "entityId": "https://sp.example",
            "consumerServices": [{"url": "https://sp.example/acs", "index": 0}],
            "attributes": [{"name": "x", "source": {"kind": "expression", "expression": deep}}]
        }))
        .unwrap();
        assert!(settings.validate().unwrap_err().0.contains("deep"));
        settings.attributes[0].source = Source::CustomSecurityAttribute {
            set: "hr set".into(),
            name: "x".into(),
        };
        assert!(settings.validate().is_err());
        settings.attributes[0].source = serde_json::from_value(serde_json::json!(
            {"kind": "expression", "expression": {"op": "join", "separator": "-", "parts": []}}
        ))
        .unwrap();
        assert!(settings.validate().is_err());
    }

    #[test]
    fn settings_are_checked() {
        let mut settings: SamlSettings = serde_json::from_value(serde_json::json!({
            "entityId": "https://sp.example",
            "consumerServices": [{"url": "https://sp.example/acs", "index": 0}]
        }))
        .unwrap();
        settings.validate().unwrap();
        settings.consumer_services[0].url = "http://sp.example/acs".into();
        assert!(settings.validate().is_err());
        settings.consumer_services[0].url = "https://sp.example/acs".into();
        settings.encrypt_assertions = true;
        assert!(
            settings
                .validate()
                .unwrap_err()
                .0
                .contains("encryption certificate")
        );
        assert!(
            serde_json::from_value::<SamlSettings>(serde_json::json!({
                "entityId": "x", "consumerServices": [], "surprise": 1
            }))
            .is_err()
        );
    }
}

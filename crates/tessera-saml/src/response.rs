//! What the IdP writes: a `Response` (success with an assertion, or a status
//! saying why not) and its `Assertion`, built from fixed element templates and
//! written in canonical form (exclusive canonicalization of the root), so what is
//! signed is exactly what is sent. Values are escaped by the writer; nothing is
//! pasted into markup.

use crate::c14n::{self, Options};
use crate::request::{ASSERTION, PROTOCOL};
use crate::xml::Element;

pub const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
pub const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
pub const RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
pub const AUTHN_FAILED: &str = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed";
pub const NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";
pub const REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
pub const NO_AUTHN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext";
pub const INVALID_NAME_ID_POLICY: &str = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy";
pub const PARTIAL_LOGOUT: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";
pub const REQUEST_UNSUPPORTED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported";
pub const ATTRIBUTE_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
pub const ATTRIBUTE_BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
pub const ATTRIBUTE_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified";

/// An instant as `xs:dateTime` in UTC, to the second.
pub fn instant(unix_seconds: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let d = at.date();
    let t = at.time();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A SAML identifier: `_` and 32 hex digits of `random` (an NCName, as `ID`
/// must be).
pub fn identifier(random: &[u8; 16]) -> String {
    let mut out = String::with_capacity(33);
    out.push('_');
    for byte in random {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameId {
    pub format: String,
    pub value: String,
    pub name_qualifier: Option<String>,
    pub sp_name_qualifier: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlAttribute {
    pub name: String,
    pub name_format: String,
    pub friendly_name: Option<String>,
    pub values: Vec<String>,
}

/// What an assertion says.
#[derive(Debug, Clone)]
pub struct AssertionContent {
    pub id: String,
    pub issue_instant: i64,
    /// The IdP's entity id.
    pub issuer: String,
    pub name_id: NameId,
    /// The consumer service the response goes to.
    pub recipient: String,
    /// The request answered (none for an IdP-initiated sign-on).
    pub in_response_to: Option<String>,
    /// The bearer confirmation's end (a few minutes).
    pub confirmation_not_on_or_after: i64,
    pub not_before: i64,
    pub not_on_or_after: i64,
    /// The service provider's entity id.
    pub audience: String,
    pub authn_instant: i64,
    pub session_index: String,
    pub session_not_on_or_after: Option<i64>,
    pub authn_context_class: String,
    pub attributes: Vec<SamlAttribute>,
}

fn saml(local: &str) -> Element {
    Element::new(ASSERTION, "saml", local)
}

fn samlp(local: &str) -> Element {
    Element::new(PROTOCOL, "samlp", local)
}

/// The `NameID` element (in an assertion's subject, a LogoutRequest).
pub fn name_id_element(name_id: &NameId) -> Element {
    saml("NameID")
        .with_attribute("Format", name_id.format.clone())
        .with_optional("NameQualifier", name_id.name_qualifier.clone())
        .with_optional("SPNameQualifier", name_id.sp_name_qualifier.clone())
        .with_text(name_id.value.clone())
}

/// Where a signature goes in an assertion or a response: after the `Issuer`.
pub const SIGNATURE_POSITION: usize = 1;

/// The assertion, unsigned.
pub fn assertion(content: &AssertionContent) -> Element {
    let name_id = name_id_element(&content.name_id);
    let confirmation = saml("SubjectConfirmation")
        .with_attribute("Method", BEARER)
        .with_child(
            saml("SubjectConfirmationData")
                .with_optional("InResponseTo", content.in_response_to.clone())
                .with_attribute(
                    "NotOnOrAfter",
                    instant(content.confirmation_not_on_or_after),
                )
                .with_attribute("Recipient", content.recipient.clone()),
        );
    let conditions = saml("Conditions")
        .with_attribute("NotBefore", instant(content.not_before))
        .with_attribute("NotOnOrAfter", instant(content.not_on_or_after))
        .with_child(
            saml("AudienceRestriction")
                .with_child(saml("Audience").with_text(content.audience.clone())),
        );
    let authn = saml("AuthnStatement")
        .with_attribute("AuthnInstant", instant(content.authn_instant))
        .with_attribute("SessionIndex", content.session_index.clone())
        .with_optional(
            "SessionNotOnOrAfter",
            content.session_not_on_or_after.map(instant),
        )
        .with_child(saml("AuthnContext").with_child(
            saml("AuthnContextClassRef").with_text(content.authn_context_class.clone()),
        ));
    let mut out = saml("Assertion")
        .with_attribute("ID", content.id.clone())
        .with_attribute("IssueInstant", instant(content.issue_instant))
        .with_attribute("Version", "2.0")
        .with_child(saml("Issuer").with_text(content.issuer.clone()))
        .with_child(saml("Subject").with_child(name_id).with_child(confirmation))
        .with_child(conditions)
        .with_child(authn);
    if !content.attributes.is_empty() {
        let mut statement = saml("AttributeStatement");
        for attribute in &content.attributes {
            let mut element = saml("Attribute")
                .with_attribute("Name", attribute.name.clone())
                .with_attribute("NameFormat", attribute.name_format.clone())
                .with_optional("FriendlyName", attribute.friendly_name.clone());
            for value in &attribute.values {
                element = element.with_child(saml("AttributeValue").with_text(value.clone()));
            }
            statement = statement.with_child(element);
        }
        out = out.with_child(statement);
    }
    out
}

/// A response's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Success,
    /// Success with a second-level code (`PARTIAL_LOGOUT`).
    SuccessWith(&'static str),
    /// A failure: the top-level code (`REQUESTER` or `RESPONDER`), the
    /// second-level one, and a message.
    Failure {
        top: &'static str,
        second: &'static str,
        message: String,
    },
}

/// The response's envelope.
#[derive(Debug, Clone)]
pub struct ResponseContent {
    pub id: String,
    pub in_response_to: Option<String>,
    pub issue_instant: i64,
    pub destination: String,
    pub issuer: String,
    pub status: Status,
}

/// The status element.
pub fn status(status: &Status) -> Element {
    match status {
        Status::Success => {
            samlp("Status").with_child(samlp("StatusCode").with_attribute("Value", SUCCESS))
        }
        Status::SuccessWith(second) => samlp("Status").with_child(
            samlp("StatusCode")
                .with_attribute("Value", SUCCESS)
                .with_child(samlp("StatusCode").with_attribute("Value", *second)),
        ),
        Status::Failure {
            top,
            second,
            message,
        } => samlp("Status")
            .with_child(
                samlp("StatusCode")
                    .with_attribute("Value", *top)
                    .with_child(samlp("StatusCode").with_attribute("Value", *second)),
            )
            .with_child(samlp("StatusMessage").with_text(message.clone())),
    }
}

/// The response, unsigned, holding `assertion` (signed, or an encrypted one) when
/// there is one.
pub fn response(content: &ResponseContent, assertion: Option<Element>) -> Element {
    let mut out = samlp("Response")
        .with_attribute("Destination", content.destination.clone())
        .with_attribute("ID", content.id.clone())
        .with_optional("InResponseTo", content.in_response_to.clone())
        .with_attribute("IssueInstant", instant(content.issue_instant))
        .with_attribute("Version", "2.0")
        .with_child(saml("Issuer").with_text(content.issuer.clone()))
        .with_child(status(&content.status));
    if let Some(assertion) = assertion {
        out = out.with_child(assertion);
    }
    out
}

/// The document as sent: the canonical form of its root.
pub fn serialize(root: &Element) -> String {
    c14n::canonicalize(root, Options::default())
}

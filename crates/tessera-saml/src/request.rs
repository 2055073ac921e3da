//! An `<samlp:AuthnRequest>` (SAML core §3.4.1) read from a strictly parsed
//! document into what the identity provider acts on, or refused with the reason.
//! Whether the request is signed, recent, for this IdP and from a known SP is for
//! the caller, which has the keys, the clock and the configuration.

use crate::xml::{Document, Element};

pub const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const ENTITY_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";

/// How requested authentication contexts compare (§3.3.2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Exact,
    Minimum,
    Maximum,
    Better,
}

/// What the service provider asks about the authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedContext {
    pub comparison: Comparison,
    pub class_refs: Vec<String>,
}

/// The name identifier the service provider asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameIdPolicy {
    pub format: Option<String>,
    pub allow_create: Option<bool>,
    pub sp_name_qualifier: Option<String>,
}

/// Where the response is to go, as the request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerService {
    /// The SP's default endpoint.
    Default,
    Url(String),
    Index(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnRequest {
    pub id: String,
    pub issue_instant: String,
    pub destination: Option<String>,
    /// The SP's entity id.
    pub issuer: String,
    pub consumer: ConsumerService,
    pub protocol_binding: Option<String>,
    pub force_authn: bool,
    pub is_passive: bool,
    pub name_id_policy: NameIdPolicy,
    pub requested_context: Option<RequestedContext>,
    /// Whether the request carries an enveloped `<ds:Signature>` (POST binding).
    pub enveloped_signature: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("this is not a SAML 2.0 AuthnRequest")]
    NotAnAuthnRequest,
    #[error("the attribute {0} is missing")]
    Missing(&'static str),
    #[error("{0} is not acceptable: {1}")]
    Invalid(&'static str, &'static str),
    #[error("{0} is not supported")]
    Unsupported(&'static str),
}

pub(crate) fn boolean(element: &Element, name: &'static str) -> Result<Option<bool>, RequestError> {
    match element.attribute(name) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(_) => Err(RequestError::Invalid(name, "not a boolean")),
    }
}

/// Text that may go into an answer or a log: bounded, without control characters.
pub(crate) fn plain(value: &str, name: &'static str, max: usize) -> Result<String, RequestError> {
    if value.is_empty() {
        return Err(RequestError::Invalid(name, "empty"));
    }
    if value.len() > max {
        return Err(RequestError::Invalid(name, "too long"));
    }
    if value.chars().any(char::is_control) {
        return Err(RequestError::Invalid(name, "holds control characters"));
    }
    Ok(value.to_string())
}

/// An element's text, which must be text only, trimmed of XML white space.
pub(crate) fn text_of(element: &Element, name: &'static str) -> Result<String, RequestError> {
    element
        .only_text()
        .map(|text| text.trim_matches([' ', '\t', '\r', '\n']).to_string())
        .ok_or(RequestError::Invalid(
            name,
            "holds an element where text belongs",
        ))
}

pub(crate) fn one_child<'a>(
    element: &'a Element,
    namespace: &'a str,
    local: &'static str,
) -> Result<Option<&'a Element>, RequestError> {
    let mut found = element.children_named(namespace, local);
    let first = found.next();
    if found.next().is_some() {
        return Err(RequestError::Invalid(local, "given twice"));
    }
    Ok(first)
}

/// An `xs:dateTime` with its zone as seconds since the epoch.
pub fn unix_instant(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// What every request an SP sends carries (SAML core §3.2.1): its version (2.0),
/// `ID`, `IssueInstant`, `Destination`, and an `Issuer` that is an entity id.
pub(crate) struct Header {
    pub id: String,
    pub issue_instant: String,
    pub destination: Option<String>,
    pub issuer: String,
}

pub(crate) fn read_header(root: &Element) -> Result<Header, RequestError> {
    match root.attribute("Version") {
        Some("2.0") => {}
        Some(_) => return Err(RequestError::Invalid("Version", "only 2.0")),
        None => return Err(RequestError::Missing("Version")),
    }
    let id = plain(
        root.attribute("ID").ok_or(RequestError::Missing("ID"))?,
        "ID",
        256,
    )?;
    let issue_instant = plain(
        root.attribute("IssueInstant")
            .ok_or(RequestError::Missing("IssueInstant"))?,
        "IssueInstant",
        64,
    )?;
    let destination = root
        .attribute("Destination")
        .map(|d| plain(d, "Destination", 2048))
        .transpose()?;
    let issuer = one_child(root, ASSERTION, "Issuer")?.ok_or(RequestError::Missing("Issuer"))?;
    if issuer
        .attribute("Format")
        .is_some_and(|format| format != ENTITY_FORMAT)
    {
        return Err(RequestError::Invalid("Issuer", "not an entity id"));
    }
    let issuer = plain(&text_of(issuer, "Issuer")?, "Issuer", 1024)?;
    Ok(Header {
        id,
        issue_instant,
        destination,
        issuer,
    })
}

impl AuthnRequest {
    /// `IssueInstant` in seconds since the epoch, if it is a UTC `xs:dateTime`.
    pub fn issue_instant_unix(&self) -> Option<i64> {
        unix_instant(&self.issue_instant)
    }

    pub fn from_document(document: &Document) -> Result<AuthnRequest, RequestError> {
        let root = &document.root;
        if !root.is(PROTOCOL, "AuthnRequest") {
            return Err(RequestError::NotAnAuthnRequest);
        }
        let Header {
            id,
            issue_instant,
            destination,
            issuer,
        } = read_header(root)?;
        let consumer = match (
            root.attribute("AssertionConsumerServiceURL"),
            root.attribute("AssertionConsumerServiceIndex"),
        ) {
            (Some(_), Some(_)) => {
                return Err(RequestError::Invalid(
                    "AssertionConsumerServiceURL",
                    "given with AssertionConsumerServiceIndex",
                ));
            }
            (Some(url), None) => {
                ConsumerService::Url(plain(url, "AssertionConsumerServiceURL", 2048)?)
            }
            (None, Some(index)) => ConsumerService::Index(index.parse().map_err(|_| {
                RequestError::Invalid("AssertionConsumerServiceIndex", "not 0 to 65535")
            })?),
            (None, None) => ConsumerService::Default,
        };
        let protocol_binding = root
            .attribute("ProtocolBinding")
            .map(|b| plain(b, "ProtocolBinding", 256))
            .transpose()?;
        let force_authn = boolean(root, "ForceAuthn")?.unwrap_or(false);
        let is_passive = boolean(root, "IsPassive")?.unwrap_or(false);
        if root.attribute("AttributeConsumingServiceIndex").is_some() {
            return Err(RequestError::Unsupported("AttributeConsumingServiceIndex"));
        }
        if one_child(root, ASSERTION, "Subject")?.is_some() {
            return Err(RequestError::Unsupported("Subject"));
        }
        let name_id_policy = match one_child(root, PROTOCOL, "NameIDPolicy")? {
            None => NameIdPolicy::default(),
            Some(policy) => NameIdPolicy {
                format: policy
                    .attribute("Format")
                    .map(|f| plain(f, "NameIDPolicy Format", 256))
                    .transpose()?,
                allow_create: boolean(policy, "AllowCreate")?,
                sp_name_qualifier: policy
                    .attribute("SPNameQualifier")
                    .map(|q| plain(q, "SPNameQualifier", 1024))
                    .transpose()?,
            },
        };
        let requested_context = match one_child(root, PROTOCOL, "RequestedAuthnContext")? {
            None => None,
            Some(context) => {
                let comparison = match context.attribute("Comparison") {
                    None | Some("exact") => Comparison::Exact,
                    Some("minimum") => Comparison::Minimum,
                    Some("maximum") => Comparison::Maximum,
                    Some("better") => Comparison::Better,
                    Some(_) => return Err(RequestError::Invalid("Comparison", "unknown")),
                };
                if context
                    .children_named(ASSERTION, "AuthnContextDeclRef")
                    .next()
                    .is_some()
                {
                    return Err(RequestError::Unsupported("AuthnContextDeclRef"));
                }
                let class_refs = context
                    .children_named(ASSERTION, "AuthnContextClassRef")
                    .map(|r| {
                        plain(
                            &text_of(r, "AuthnContextClassRef")?,
                            "AuthnContextClassRef",
                            256,
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if class_refs.is_empty() || class_refs.len() > 16 {
                    return Err(RequestError::Invalid(
                        "RequestedAuthnContext",
                        "needs 1 to 16 AuthnContextClassRef",
                    ));
                }
                Some(RequestedContext {
                    comparison,
                    class_refs,
                })
            }
        };
        let enveloped_signature = one_child(root, DSIG, "Signature")?.is_some();
        Ok(AuthnRequest {
            id,
            issue_instant,
            destination,
            issuer,
            consumer,
            protocol_binding,
            force_authn,
            is_passive,
            name_id_policy,
            requested_context,
            enveloped_signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{Limits, parse};

    fn read(text: &str) -> Result<AuthnRequest, RequestError> {
        AuthnRequest::from_document(&parse(text, Limits::default()).unwrap())
    }

    const FULL: &str = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
  xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-7c0a" Version="2.0"
  IssueInstant="2026-12-04T10:00:00Z" Destination="https://idp.example/saml2/sso"
  AssertionConsumerServiceURL="https://sp.example/acs" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
  ForceAuthn="true">
  <saml:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity"> https://sp.example/metadata </saml:Issuer>
  <samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/>
  <samlp:RequestedAuthnContext Comparison="minimum">
    <saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:X509</saml:AuthnContextClassRef>
  </samlp:RequestedAuthnContext>
</samlp:AuthnRequest>"#;

    #[test]
    fn a_full_request_is_read() {
        let request = read(FULL).unwrap();
        assert_eq!(request.id, "id-7c0a");
        assert_eq!(request.issuer, "https://sp.example/metadata");
        assert_eq!(
            request.consumer,
            ConsumerService::Url("https://sp.example/acs".to_string())
        );
        assert!(request.force_authn && !request.is_passive);
        assert_eq!(request.name_id_policy.allow_create, Some(true));
        let context = request.requested_context.unwrap();
        assert_eq!(context.comparison, Comparison::Minimum);
        assert_eq!(
            context.class_refs,
            ["urn:oasis:names:tc:SAML:2.0:ac:classes:X509"]
        );
        assert!(!request.enveloped_signature);
    }

    #[test]
    fn a_minimal_request_takes_the_defaults() {
        let request = read(r#"<p:AuthnRequest xmlns:p="urn:oasis:names:tc:SAML:2.0:protocol" ID="_1" Version="2.0" IssueInstant="2026-12-04T10:00:00Z" AssertionConsumerServiceIndex="2"><Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">sp</Issuer></p:AuthnRequest>"#).unwrap();
        assert_eq!(request.consumer, ConsumerService::Index(2));
        assert_eq!(request.name_id_policy, NameIdPolicy::default());
        assert!(request.requested_context.is_none());
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let cases = [
            (
                FULL.replace("Version=\"2.0\"", "Version=\"1.1\""),
                RequestError::Invalid("Version", "only 2.0"),
            ),
            (
                FULL.replace("ID=\"id-7c0a\" ", ""),
                RequestError::Missing("ID"),
            ),
            (
                FULL.replace("ForceAuthn=\"true\"", "ForceAuthn=\"yes\""),
                RequestError::Invalid("ForceAuthn", "not a boolean"),
            ),
            (
                FULL.replace(
                    "ProtocolBinding",
                    "AssertionConsumerServiceIndex=\"1\" ProtocolBinding",
                ),
                RequestError::Invalid(
                    "AssertionConsumerServiceURL",
                    "given with AssertionConsumerServiceIndex",
                ),
            ),
            (
                FULL.replace("Comparison=\"minimum\"", "Comparison=\"most\""),
                RequestError::Invalid("Comparison", "unknown"),
            ),
            (
                FULL.replace("nameid-format:entity", "nameid-format:transient"),
                RequestError::Invalid("Issuer", "not an entity id"),
            ),
            (
                FULL.replace("samlp:AuthnRequest", "samlp:LogoutRequest"),
                RequestError::NotAnAuthnRequest,
            ),
            (
                FULL.replace(
                    "<samlp:NameIDPolicy",
                    "<saml:Issuer>again</saml:Issuer><samlp:NameIDPolicy",
                ),
                RequestError::Invalid("Issuer", "given twice"),
            ),
            (
                FULL.replace("<samlp:NameIDPolicy", "<saml:Subject/><samlp:NameIDPolicy"),
                RequestError::Unsupported("Subject"),
            ),
            (
                FULL.replace(" https://sp.example/metadata ", "https://sp<x/>.example"),
                RequestError::Invalid("Issuer", "holds an element where text belongs"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(read(&text).unwrap_err(), expected, "{text}");
        }
    }
}

//! Single Logout (SAML profiles §4.4): a service provider's `LogoutRequest` read
//! strictly into what the IdP acts on (who asks, for which NameID and sessions),
//! and the IdP's `LogoutResponse` written from a fixed template.

use crate::request::{
    ASSERTION, Header, PROTOCOL, RequestError, one_child, plain, read_header, text_of, unix_instant,
};
use crate::response::{Status, instant, status};
use crate::xml::{Document, Element};

/// The most SessionIndex elements read from one request.
const MAX_SESSION_INDEXES: usize = 16;

/// What a LogoutRequest asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    pub id: String,
    pub issue_instant: String,
    pub destination: Option<String>,
    pub issuer: String,
    /// The NameID as the IdP issued it (text joined across comments).
    pub name_id: String,
    pub session_indexes: Vec<String>,
}

impl LogoutRequest {
    /// `IssueInstant` in seconds since the epoch, if it is a UTC `xs:dateTime`.
    pub fn issue_instant_unix(&self) -> Option<i64> {
        unix_instant(&self.issue_instant)
    }

    pub fn from_document(document: &Document) -> Result<LogoutRequest, RequestError> {
        let root = &document.root;
        if !root.is(PROTOCOL, "LogoutRequest") {
            return Err(RequestError::Invalid("the message", "not a LogoutRequest"));
        }
        let Header {
            id,
            issue_instant,
            destination,
            issuer,
        } = read_header(root)?;
        if one_child(root, ASSERTION, "EncryptedID")?.is_some()
            || one_child(root, ASSERTION, "BaseID")?.is_some()
        {
            return Err(RequestError::Unsupported("an encrypted or base identifier"));
        }
        let name_id =
            one_child(root, ASSERTION, "NameID")?.ok_or(RequestError::Missing("NameID"))?;
        let name_id = plain(&text_of(name_id, "NameID")?, "NameID", 1024)?;
        let mut session_indexes = Vec::new();
        for index in root.children_named(PROTOCOL, "SessionIndex") {
            if session_indexes.len() == MAX_SESSION_INDEXES {
                return Err(RequestError::Invalid("SessionIndex", "given too often"));
            }
            session_indexes.push(plain(
                &text_of(index, "SessionIndex")?,
                "SessionIndex",
                256,
            )?);
        }
        Ok(LogoutRequest {
            id,
            issue_instant,
            destination,
            issuer,
            name_id,
            session_indexes,
        })
    }
}

/// The IdP's answer to a LogoutRequest.
#[derive(Debug, Clone)]
pub struct LogoutResponseContent {
    pub id: String,
    pub in_response_to: String,
    pub issue_instant: i64,
    pub destination: String,
    pub issuer: String,
    pub status: Status,
}

/// The LogoutResponse, unsigned (the redirect binding signs the query; for the
/// POST binding sign it with `dsig::sign_enveloped` at `SIGNATURE_POSITION`).
pub fn logout_response(content: &LogoutResponseContent) -> Element {
    Element::new(PROTOCOL, "samlp", "LogoutResponse")
        .with_attribute("Destination", content.destination.clone())
        .with_attribute("ID", content.id.clone())
        .with_attribute("InResponseTo", content.in_response_to.clone())
        .with_attribute("IssueInstant", instant(content.issue_instant))
        .with_attribute("Version", "2.0")
        .with_child(Element::new(ASSERTION, "saml", "Issuer").with_text(content.issuer.clone()))
        .with_child(status(&content.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{Limits, parse};

    #[test]
    fn a_logout_request_is_read_strictly() {
        let text = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_l1" Version="2.0" IssueInstant="2026-12-04T10:00:00Z" Destination="https://idp.example/saml2/slo"><saml:Issuer>https://sp.example</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">abc<!-- -->def</saml:NameID><samlp:SessionIndex>s1</samlp:SessionIndex></samlp:LogoutRequest>"#;
        let request =
            LogoutRequest::from_document(&parse(text, Limits::default()).unwrap()).unwrap();
        assert_eq!(request.issuer, "https://sp.example");
        assert_eq!(
            request.name_id, "abcdef",
            "a comment does not cut the NameID short"
        );
        assert_eq!(request.session_indexes, vec!["s1".to_string()]);
        assert!(request.issue_instant_unix().is_some());
        let two_names = text.replace(
            "<samlp:SessionIndex>",
            "<saml:NameID>x</saml:NameID><samlp:SessionIndex>",
        );
        assert!(
            LogoutRequest::from_document(&parse(&two_names, Limits::default()).unwrap()).is_err()
        );
        let authn = text.replace("LogoutRequest", "AuthnRequest");
        assert!(LogoutRequest::from_document(&parse(&authn, Limits::default()).unwrap()).is_err());
    }
}

//! Single Logout (SAML profiles §4.4): a service provider's `LogoutRequest` read
//! strictly into what the IdP acts on (who asks, for which NameID and sessions),
//! the IdP's own `LogoutRequest` to the other service providers of the session and
//! its `LogoutResponse`, both written from fixed templates, and a service
//! provider's `LogoutResponse` read strictly.

use crate::request::{
    ASSERTION, Header, PROTOCOL, RequestError, one_child, plain, read_header, text_of, unix_instant,
};
use crate::response::{NameId, SUCCESS, Status, instant, name_id_element, status};
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
    /// Until when the request may be acted on, when it says.
    pub not_on_or_after: Option<String>,
}

impl LogoutRequest {
    /// `IssueInstant` in seconds since the epoch, if it is a UTC `xs:dateTime`.
    pub fn issue_instant_unix(&self) -> Option<i64> {
        unix_instant(&self.issue_instant)
    }

    /// Whether the request may still be acted on at `now` (with `skew` seconds
    /// of tolerance): no `NotOnOrAfter`, or one not passed. One that is not a
    /// date counts as passed.
    pub fn in_time(&self, now: i64, skew: i64) -> bool {
        match &self.not_on_or_after {
            None => true,
            Some(text) => unix_instant(text).is_some_and(|end| now < end + skew),
        }
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
        let not_on_or_after = root
            .attribute("NotOnOrAfter")
            .map(|value| plain(value, "NotOnOrAfter", 64))
            .transpose()?;
        Ok(LogoutRequest {
            id,
            issue_instant,
            destination,
            issuer,
            name_id,
            session_indexes,
            not_on_or_after,
        })
    }
}

/// A LogoutRequest the IdP sends to a service provider (IdP-initiated, or passing
/// on one service provider's logout to the others).
#[derive(Debug, Clone)]
pub struct LogoutRequestContent {
    pub id: String,
    pub issue_instant: i64,
    pub destination: String,
    pub issuer: String,
    /// The NameID as the assertion to this service provider gave it.
    pub name_id: NameId,
    pub session_index: String,
    /// Until when the request may be acted on.
    pub not_on_or_after: i64,
}

/// The LogoutRequest, unsigned (as `logout_response`).
pub fn logout_request(content: &LogoutRequestContent) -> Element {
    Element::new(PROTOCOL, "samlp", "LogoutRequest")
        .with_attribute("Destination", content.destination.clone())
        .with_attribute("ID", content.id.clone())
        .with_attribute("IssueInstant", instant(content.issue_instant))
        .with_attribute("NotOnOrAfter", instant(content.not_on_or_after))
        .with_attribute("Version", "2.0")
        .with_child(Element::new(ASSERTION, "saml", "Issuer").with_text(content.issuer.clone()))
        .with_child(name_id_element(&content.name_id))
        .with_child(
            Element::new(PROTOCOL, "samlp", "SessionIndex")
                .with_text(content.session_index.clone()),
        )
}

/// What a service provider's LogoutResponse says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponse {
    pub id: String,
    pub in_response_to: Option<String>,
    pub issue_instant: String,
    pub destination: Option<String>,
    pub issuer: String,
    /// The top-level status code.
    pub status: String,
}

impl LogoutResponse {
    pub fn succeeded(&self) -> bool {
        self.status == SUCCESS
    }

    pub fn from_document(document: &Document) -> Result<LogoutResponse, RequestError> {
        let root = &document.root;
        if !root.is(PROTOCOL, "LogoutResponse") {
            return Err(RequestError::Invalid("the message", "not a LogoutResponse"));
        }
        let Header {
            id,
            issue_instant,
            destination,
            issuer,
        } = read_header(root)?;
        let in_response_to = root
            .attribute("InResponseTo")
            .map(|value| plain(value, "InResponseTo", 256))
            .transpose()?;
        let status = one_child(root, PROTOCOL, "Status")?.ok_or(RequestError::Missing("Status"))?;
        let code = one_child(status, PROTOCOL, "StatusCode")?
            .ok_or(RequestError::Missing("StatusCode"))?;
        let status = plain(
            code.attribute("Value")
                .ok_or(RequestError::Missing("StatusCode Value"))?,
            "StatusCode",
            256,
        )?;
        Ok(LogoutResponse {
            id,
            in_response_to,
            issue_instant,
            destination,
            issuer,
            status,
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

    #[test]
    fn what_the_idp_writes_reads_back() {
        let request = logout_request(&LogoutRequestContent {
            id: "_q1".into(),
            issue_instant: 1_800_000_000,
            destination: "https://sp.example/slo".into(),
            issuer: "https://idp.example".into(),
            name_id: NameId {
                format: crate::idp::NAME_ID_PERSISTENT.into(),
                value: "abc".into(),
                name_qualifier: Some("https://idp.example".into()),
                sp_name_qualifier: Some("https://sp.example".into()),
            },
            session_index: "s1".into(),
            not_on_or_after: 1_800_000_300,
        });
        let text = crate::response::serialize(&request);
        let read = LogoutRequest::from_document(&parse(&text, Limits::default()).unwrap()).unwrap();
        assert_eq!(read.name_id, "abc");
        assert_eq!(read.session_indexes, vec!["s1".to_string()]);
        assert_eq!(read.destination.as_deref(), Some("https://sp.example/slo"));
        assert!(read.in_time(1_800_000_299, 0));
        assert!(!read.in_time(1_800_000_300, 0), "NotOnOrAfter is exclusive");
        assert!(read.in_time(1_800_000_300, 60), "within the skew");
        for status in [
            Status::Success,
            Status::SuccessWith(crate::response::PARTIAL_LOGOUT),
        ] {
            let response = logout_response(&LogoutResponseContent {
                id: "_p1".into(),
                in_response_to: "_q1".into(),
                issue_instant: 1_800_000_000,
                destination: "https://idp.example/saml2/slo".into(),
                issuer: "https://sp.example".into(),
                status,
            });
            let text = crate::response::serialize(&response);
            let read =
                LogoutResponse::from_document(&parse(&text, Limits::default()).unwrap()).unwrap();
            assert!(read.succeeded());
            assert_eq!(read.in_response_to.as_deref(), Some("_q1"));
            assert_eq!(read.issuer, "https://sp.example");
        }
        let failed = r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_p2" Version="2.0" IssueInstant="2026-12-04T10:00:00Z" InResponseTo="_q1"><saml:Issuer>https://sp.example</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"/></samlp:Status></samlp:LogoutResponse>"#;
        let read =
            LogoutResponse::from_document(&parse(failed, Limits::default()).unwrap()).unwrap();
        assert!(!read.succeeded());
        let no_status = failed.replace(
            r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"/></samlp:Status>"#,
            "",
        );
        assert!(
            LogoutResponse::from_document(&parse(&no_status, Limits::default()).unwrap()).is_err()
        );
    }
}

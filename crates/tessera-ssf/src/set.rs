//! Security Event Tokens (RFC 8417) as SSF 1.0 profiles them: header `typ`
//! `secevent+jwt`; claims `iss`, `aud`, `jti`, `iat`, `txn`, a top-level
//! `sub_id`, and `events` holding one event; no `sub`, no `exp`.

use serde_json::{Map, Value, json};
use tessera_core::Timestamp;

use crate::SsfError;
use crate::events::EventType;
use crate::subject::SubjectId;

/// The JOSE `typ` of a SET.
pub const TYP: &str = "secevent+jwt";
/// How far in the future a SET's `iat` may be (clock skew).
pub const SKEW_SECONDS: i64 = 300;
/// How old a received SET may be: older ones are refused, so the `jti`s
/// remembered against replay need only be kept this long.
pub const MAX_AGE_SECONDS: i64 = 7 * 86_400;
/// Longest `jti` or `txn` taken.
const MAX_ID: usize = 256;

/// A SET to sign.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub iss: &'a str,
    pub aud: &'a str,
    pub jti: &'a str,
    pub iat: Timestamp,
    /// The change it tells of (the same for every SET of one change).
    pub txn: Option<&'a str>,
    pub sub_id: &'a SubjectId,
    pub event: EventType,
    pub members: &'a Map<String, Value>,
}

impl Outgoing<'_> {
    /// Its claims.
    pub fn claims(&self) -> Value {
        let mut claims = json!({
            "iss": self.iss,
            "aud": self.aud,
            "jti": self.jti,
            "iat": self.iat.unix_seconds(),
            "sub_id": self.sub_id.to_json(),
            "events": { self.event.uri(): Value::Object(self.members.clone()) },
        });
        if let Some(txn) = self.txn {
            claims["txn"] = Value::from(txn);
        }
        claims
    }
}

/// What a received SET says, once its claims passed [`check`].
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub jti: String,
    pub iat: i64,
    pub txn: Option<String>,
    pub subject: SubjectId,
    /// The event's URI, and its type when Tessera knows it.
    pub event_uri: String,
    pub event: Option<EventType>,
    pub members: Map<String, Value>,
}

/// What a receiver expects of every SET of a stream.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub now: Timestamp,
}

/// Checks a SET's verified header and claims against what the stream
/// expects. The error's code is RFC 8935's (`invalid_request`,
/// `invalid_issuer`, `invalid_audience`).
pub fn check(header: &Value, claims: &Value, expected: Expected<'_>) -> Result<Received, SsfError> {
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    let typ = typ.strip_prefix("application/").unwrap_or(typ);
    if !typ.eq_ignore_ascii_case(TYP) {
        return Err(SsfError::invalid("the token's typ is not secevent+jwt"));
    }
    let claims = claims
        .as_object()
        .ok_or_else(|| SsfError::invalid("the claims are not an object"))?;
    // An issuer is compared without a trailing slash on either side.
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .map(|i| i.trim_end_matches('/'));
    if issuer != Some(expected.issuer.trim_end_matches('/')) {
        return Err(SsfError::new(
            "invalid_issuer",
            "the SET's issuer is not the stream's transmitter",
        ));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == expected.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expected.audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(SsfError::new(
            "invalid_audience",
            "the SET is not addressed to this receiver",
        ));
    }
    let id = |name: &str| -> Result<Option<String>, SsfError> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if !text.is_empty() && text.len() <= MAX_ID => {
                Ok(Some(text.clone()))
            }
            Some(_) => Err(SsfError::invalid(format!(
                "`{name}` must be a string of 1 to {MAX_ID} characters"
            ))),
        }
    };
    let jti = id("jti")?.ok_or_else(|| SsfError::invalid("the SET has no jti"))?;
    let txn = id("txn")?;
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| SsfError::invalid("the SET has no iat"))?;
    let now = expected.now.unix_seconds();
    if iat > now.saturating_add(SKEW_SECONDS) {
        return Err(SsfError::invalid("the SET is issued in the future"));
    }
    if iat < now.saturating_sub(MAX_AGE_SECONDS) {
        return Err(SsfError::invalid("the SET is too old"));
    }
    if let Some(exp) = claims.get("exp") {
        // SSF forbids exp; an expired one is not taken either way.
        if exp.as_i64().is_none_or(|exp| exp <= now) {
            return Err(SsfError::invalid("the SET has expired"));
        }
    }
    let events = claims
        .get("events")
        .and_then(Value::as_object)
        .ok_or_else(|| SsfError::invalid("the SET has no events"))?;
    if events.len() != 1 {
        return Err(SsfError::invalid("a SET holds exactly one event"));
    }
    let Some((event_uri, payload)) = events.iter().next() else {
        return Err(SsfError::invalid("the SET has no events"));
    };
    let members = payload
        .as_object()
        .cloned()
        .ok_or_else(|| SsfError::invalid("the event is not an object"))?;
    // The subject: SSF's top-level sub_id, or the older in-event `subject`.
    let subject = claims
        .get("sub_id")
        .or_else(|| members.get("subject"))
        .ok_or_else(|| SsfError::invalid("the SET names no subject (sub_id)"))?;
    let subject = SubjectId::parse(subject)?;
    Ok(Received {
        jti,
        iat,
        txn,
        subject,
        event: EventType::parse(event_uri),
        event_uri: event_uri.clone(),
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://tx.example",
            audience: "https://rx.example",
            now: Timestamp::from_unix_micros(NOW * 1_000_000),
        }
    }

    fn outgoing_claims() -> Value {
        let subject = SubjectId::Opaque("user-1".into());
        let members = Map::new();
        Outgoing {
            iss: "https://tx.example",
            aud: "https://rx.example",
            jti: "j-1",
            iat: Timestamp::from_unix_micros(NOW * 1_000_000),
            txn: Some("t-1"),
            sub_id: &subject,
            event: EventType::SessionRevoked,
            members: &members,
        }
        .claims()
    }

    #[test]
    fn what_is_signed_is_taken() {
        let claims = outgoing_claims();
        assert!(claims.get("sub").is_none() && claims.get("exp").is_none());
        let header = json!({ "alg": "RS256", "typ": "secevent+jwt" });
        let received = check(&header, &claims, expected()).unwrap();
        assert_eq!(received.event, Some(EventType::SessionRevoked));
        assert_eq!(received.subject, SubjectId::Opaque("user-1".into()));
        assert_eq!(received.txn.as_deref(), Some("t-1"));
    }

    #[test]
    fn what_is_refused() {
        let header = json!({ "alg": "RS256", "typ": "secevent+jwt" });
        let base = outgoing_claims();
        let with = |name: &str, value: Value| {
            let mut claims = base.clone();
            claims[name] = value;
            claims
        };
        let code =
            |header: &Value, claims: &Value| check(header, claims, expected()).unwrap_err().code;
        assert_eq!(
            code(&json!({ "alg": "RS256", "typ": "JWT" }), &base),
            "invalid_request"
        );
        assert_eq!(
            code(&header, &with("iss", json!("https://evil"))),
            "invalid_issuer"
        );
        assert_eq!(
            code(&header, &with("aud", json!("https://other"))),
            "invalid_audience"
        );
        assert_eq!(
            code(&header, &with("aud", json!(["a", "b"]))),
            "invalid_audience"
        );
        assert_eq!(
            code(&header, &with("iat", json!(NOW + 3600))),
            "invalid_request"
        );
        assert_eq!(
            code(&header, &with("iat", json!(NOW - MAX_AGE_SECONDS - 1))),
            "invalid_request"
        );
        assert_eq!(
            code(&header, &with("exp", json!(NOW - 1))),
            "invalid_request"
        );
        assert_eq!(code(&header, &with("jti", json!(""))), "invalid_request");
        assert_eq!(code(&header, &with("events", json!({}))), "invalid_request");
        assert_eq!(
            code(&header, &with("events", json!({ "a": {}, "b": {} }))),
            "invalid_request"
        );
        let mut no_subject = base.clone();
        no_subject.as_object_mut().unwrap().remove("sub_id");
        assert_eq!(code(&header, &no_subject), "invalid_request");
        assert!(
            check(
                &header,
                &with("aud", json!(["x", "https://rx.example"])),
                expected()
            )
            .is_ok()
        );
    }
}

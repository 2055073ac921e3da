//! Streams: what a receiver asks for when it creates or changes one, what
//! the transmitter answers, and a stream's status (SSF 1.0 §8).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::SsfError;
use crate::events::EventType;

/// Most event types a stream may ask for.
pub const MAX_EVENTS_REQUESTED: usize = 32;
/// Longest event type URI, description or status reason.
pub const MAX_TEXT: usize = 256;
/// Longest push endpoint.
pub const MAX_URL: usize = 2048;
/// Longest `authorization_header` a receiver may give.
pub const MAX_AUTHORIZATION: usize = 4096;

/// How a stream's events travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Method {
    /// The transmitter POSTs each SET to the receiver (RFC 8935).
    Push,
    /// The receiver asks the transmitter for them (RFC 8936).
    Poll,
}

impl Method {
    pub fn uri(self) -> &'static str {
        match self {
            Method::Push => crate::PUSH,
            Method::Poll => crate::POLL,
        }
    }

    pub fn parse(uri: &str) -> Option<Method> {
        match uri {
            crate::PUSH => Some(Method::Push),
            crate::POLL => Some(Method::Poll),
            _ => None,
        }
    }
}

/// A stream's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Events are sent.
    Enabled,
    /// None is sent; they are held and sent, in order, when enabled again.
    Paused,
    /// None is sent and none held.
    Disabled,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Enabled => "enabled",
            Status::Paused => "paused",
            Status::Disabled => "disabled",
        }
    }

    pub fn parse(name: &str) -> Option<Status> {
        [Status::Enabled, Status::Paused, Status::Disabled]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// Where a push stream's events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub endpoint_url: String,
    /// Sent as `Authorization` with every push; a secret of the receiver's.
    pub authorization_header: Option<String>,
}

/// What the receiver asked for in a create, update or replace (the fields a
/// receiver supplies); `None` where the request did not say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requested {
    pub events_requested: Option<Vec<String>>,
    /// `Some(None)`: poll; `Some(Some(..))`: push there.
    pub delivery: Option<Option<PushTarget>>,
    pub description: Option<Option<String>>,
    /// How users are named in the stream's SETs (a Tessera extension member,
    /// `subject_format`): `iss_sub` (the default) or `email`.
    pub subject_format: Option<SubjectFormat>,
}

/// How a stream names users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectFormat {
    /// `iss_sub`: the issuer and the user's object id.
    #[default]
    IssSub,
    /// `email`: the user's principal name.
    Email,
}

impl SubjectFormat {
    pub fn name(self) -> &'static str {
        match self {
            SubjectFormat::IssSub => "iss_sub",
            SubjectFormat::Email => "email",
        }
    }
}

/// Which endpoints a push stream may name: `https` ones, and `http` ones
/// at a loopback host when `http_loopback` (a node's own tests and sidecars).
pub fn endpoint_allowed(text: &str, http_loopback: bool) -> bool {
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let scheme_ok =
        url.scheme() == "https" || (http_loopback && url.scheme() == "http" && loopback);
    scheme_ok
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none()
        && text.len() <= MAX_URL
}

fn text(value: &Value, name: &str, max: usize) -> Result<String, SsfError> {
    let text = value
        .as_str()
        .ok_or_else(|| SsfError::invalid(format!("`{name}` must be a string")))?;
    if text.len() > max || text.chars().any(char::is_control) {
        return Err(SsfError::invalid(format!(
            "`{name}` must be at most {max} characters, none a control character"
        )));
    }
    Ok(text.to_string())
}

/// Reads what a receiver asks for. `poll_endpoint` is the endpoint Tessera
/// gives a poll stream: a receiver may repeat it, not choose another.
pub fn parse_request(
    body: &Value,
    poll_endpoint: Option<&str>,
    http_loopback: bool,
) -> Result<Requested, SsfError> {
    let object = body
        .as_object()
        .ok_or_else(|| SsfError::invalid("the body must be a JSON object"))?;
    let mut requested = Requested::default();
    if let Some(events) = object.get("events_requested") {
        let list = events
            .as_array()
            .ok_or_else(|| SsfError::invalid("`events_requested` must be an array"))?;
        if list.len() > MAX_EVENTS_REQUESTED {
            return Err(SsfError::invalid(format!(
                "`events_requested` holds at most {MAX_EVENTS_REQUESTED} event types"
            )));
        }
        let mut uris = Vec::with_capacity(list.len());
        for item in list {
            let uri = text(item, "events_requested", MAX_TEXT)?;
            if !uris.contains(&uri) {
                uris.push(uri);
            }
        }
        requested.events_requested = Some(uris);
    }
    if let Some(delivery) = object.get("delivery") {
        let delivery = delivery
            .as_object()
            .ok_or_else(|| SsfError::invalid("`delivery` must be an object"))?;
        let method = delivery
            .get("method")
            .and_then(Value::as_str)
            .and_then(Method::parse)
            .ok_or_else(|| {
                SsfError::invalid(format!(
                    "`delivery.method` must be {} (push) or {} (poll)",
                    crate::PUSH,
                    crate::POLL
                ))
            })?;
        let endpoint = delivery
            .get("endpoint_url")
            .filter(|v| !v.is_null())
            .map(|v| text(v, "delivery.endpoint_url", MAX_URL))
            .transpose()?;
        requested.delivery = Some(match method {
            Method::Poll => {
                if let Some(endpoint) = endpoint
                    && Some(endpoint.as_str()) != poll_endpoint
                {
                    return Err(SsfError::invalid(
                        "a poll stream's `endpoint_url` is the transmitter's to give",
                    ));
                }
                None
            }
            Method::Push => {
                let endpoint = endpoint.ok_or_else(|| {
                    SsfError::invalid("a push stream needs `delivery.endpoint_url`")
                })?;
                if !endpoint_allowed(&endpoint, http_loopback) {
                    return Err(SsfError::invalid(
                        "`delivery.endpoint_url` must be an absolute https URL without credentials or fragment",
                    ));
                }
                let authorization_header = delivery
                    .get("authorization_header")
                    .filter(|v| !v.is_null())
                    .map(|v| text(v, "delivery.authorization_header", MAX_AUTHORIZATION))
                    .transpose()?
                    .filter(|h| !h.is_empty());
                Some(PushTarget {
                    endpoint_url: endpoint,
                    authorization_header,
                })
            }
        });
    }
    if let Some(format) = object.get("subject_format").filter(|v| !v.is_null()) {
        requested.subject_format = Some(match format.as_str() {
            Some("iss_sub") => SubjectFormat::IssSub,
            Some("email") => SubjectFormat::Email,
            _ => {
                return Err(SsfError::invalid(
                    "`subject_format` must be iss_sub or email",
                ));
            }
        });
    }
    if let Some(description) = object.get("description") {
        requested.description = Some(match description {
            Value::Null => None,
            other => Some(text(other, "description", MAX_TEXT)?),
        });
    }
    Ok(requested)
}

/// Fails when `body` holds a transmitter-supplied field whose value is not
/// `current`'s (SSF 1.0 §8.1.1: a receiver may repeat them, not change them).
pub fn check_transmitter_fields(body: &Value, current: &Value) -> Result<(), SsfError> {
    for field in [
        "stream_id",
        "iss",
        "aud",
        "events_supported",
        "events_delivered",
        "min_verification_interval",
        "inactivity_timeout",
    ] {
        if let Some(given) = body.get(field)
            && Some(given) != current.get(field)
        {
            return Err(SsfError::invalid(format!(
                "`{field}` is the transmitter's and cannot be changed"
            )));
        }
    }
    Ok(())
}

/// The event types Tessera delivers on a stream that asked for `requested`:
/// those it asked for that Tessera sends, in Tessera's order.
pub fn delivered(requested: &[String]) -> Vec<EventType> {
    EventType::DELIVERABLE
        .into_iter()
        .filter(|t| requested.iter().any(|r| EventType::parse(r) == Some(*t)))
        .collect()
}

/// What a stream's configuration says, as SSF's JSON.
pub struct Config<'a> {
    pub stream_id: &'a str,
    pub iss: &'a str,
    pub aud: &'a str,
    pub events_requested: &'a [String],
    pub push: Option<&'a PushTarget>,
    pub poll_endpoint: &'a str,
    pub description: Option<&'a str>,
    pub min_verification_interval: u32,
    pub inactivity_timeout: Option<u32>,
    pub subject_format: SubjectFormat,
}

impl Config<'_> {
    /// The configuration object. A push stream's authorization header is the
    /// receiver's secret: it is not echoed.
    pub fn to_json(&self) -> Value {
        let uris =
            |types: Vec<EventType>| types.into_iter().map(EventType::uri).collect::<Vec<_>>();
        let delivery = match self.push {
            Some(push) => json!({ "method": crate::PUSH, "endpoint_url": push.endpoint_url }),
            None => json!({ "method": crate::POLL, "endpoint_url": self.poll_endpoint }),
        };
        let mut object = Map::new();
        object.insert("stream_id".into(), Value::from(self.stream_id));
        object.insert("iss".into(), Value::from(self.iss));
        object.insert("aud".into(), Value::from(self.aud));
        object.insert(
            "events_supported".into(),
            json!(uris(EventType::DELIVERABLE.to_vec())),
        );
        object.insert("events_requested".into(), json!(self.events_requested));
        object.insert(
            "events_delivered".into(),
            json!(uris(delivered(self.events_requested))),
        );
        object.insert("delivery".into(), delivery);
        object.insert(
            "min_verification_interval".into(),
            Value::from(self.min_verification_interval),
        );
        if let Some(timeout) = self.inactivity_timeout {
            object.insert("inactivity_timeout".into(), Value::from(timeout));
        }
        if let Some(description) = self.description {
            object.insert("description".into(), Value::from(description));
        }
        object.insert(
            "subject_format".into(),
            Value::from(self.subject_format.name()),
        );
        Value::Object(object)
    }
}

/// A status change a receiver asks for: the status and why.
pub fn parse_status(body: &Value) -> Result<(Status, Option<String>), SsfError> {
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .and_then(Status::parse)
        .ok_or_else(|| SsfError::invalid("`status` must be enabled, paused or disabled"))?;
    let reason = body
        .get("reason")
        .filter(|v| !v.is_null())
        .map(|v| text(v, "reason", MAX_TEXT))
        .transpose()?;
    Ok((status, reason))
}

/// The `stream_id` a body names.
pub fn stream_id(body: &Value) -> Result<String, SsfError> {
    let id = body
        .get("stream_id")
        .ok_or_else(|| SsfError::invalid("`stream_id` is required"))?;
    let id = text(id, "stream_id", 64)?;
    if id.is_empty() {
        return Err(SsfError::invalid("`stream_id` is required"));
    }
    Ok(id)
}

/// The verification `state` a receiver gives.
pub fn verification_state(body: &Value) -> Result<Option<String>, SsfError> {
    body.get("state")
        .filter(|v| !v.is_null())
        .map(|v| text(v, "state", MAX_TEXT))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL_AT: &str = "https://id.contoso.com/ssf/poll/s1";

    #[test]
    fn push_and_poll_requests() {
        let push = parse_request(
            &json!({
                "events_requested": [EventType::SessionRevoked.uri(), "urn:x", EventType::SessionRevoked.uri()],
                "delivery": { "method": crate::PUSH, "endpoint_url": "https://rp.example/ssf",
                              "authorization_header": "Bearer abc" },
                "description": "mail",
            }),
            Some(POLL_AT),
            false,
        )
        .unwrap();
        assert_eq!(push.events_requested.as_ref().unwrap().len(), 2);
        assert_eq!(
            push.delivery,
            Some(Some(PushTarget {
                endpoint_url: "https://rp.example/ssf".into(),
                authorization_header: Some("Bearer abc".into())
            }))
        );
        assert_eq!(
            delivered(push.events_requested.as_ref().unwrap()),
            [EventType::SessionRevoked]
        );
        let poll = parse_request(
            &json!({ "delivery": { "method": crate::POLL, "endpoint_url": POLL_AT } }),
            Some(POLL_AT),
            false,
        )
        .unwrap();
        assert_eq!(poll.delivery, Some(None));
        assert_eq!(poll.events_requested, None);
    }

    #[test]
    fn bad_requests() {
        for (body, loopback) in [
            (json!([]), false),
            (json!({ "events_requested": "x" }), false),
            (json!({ "events_requested": vec!["u"; 33] }), false),
            (json!({ "delivery": { "method": "urn:x" } }), false),
            (json!({ "delivery": { "method": crate::PUSH } }), false),
            (
                json!({ "delivery": { "method": crate::PUSH, "endpoint_url": "http://rp.example/" } }),
                true,
            ),
            (
                json!({ "delivery": { "method": crate::PUSH, "endpoint_url": "http://127.0.0.1:9/" } }),
                false,
            ),
            (
                json!({ "delivery": { "method": crate::PUSH, "endpoint_url": "https://u:p@rp.example/" } }),
                false,
            ),
            (
                json!({ "delivery": { "method": crate::POLL, "endpoint_url": "https://evil.example/" } }),
                false,
            ),
            (json!({ "description": "a\nb" }), false),
        ] {
            assert!(
                parse_request(&body, Some(POLL_AT), loopback).is_err(),
                "{body}"
            );
        }
        assert!(
            parse_request(
                &json!({ "delivery": { "method": crate::PUSH, "endpoint_url": "http://127.0.0.1:9/" } }),
                None,
                true
            )
            .is_ok()
        );
    }

    #[test]
    fn transmitter_fields_may_be_repeated_not_changed() {
        let target = PushTarget {
            endpoint_url: "https://rp.example/ssf".into(),
            authorization_header: Some("Bearer secret".into()),
        };
        let requested = vec![EventType::AccountDisabled.uri()];
        let config = Config {
            stream_id: "s1",
            iss: "https://id.contoso.com",
            aud: "app-1",
            events_requested: &requested,
            push: Some(&target),
            poll_endpoint: POLL_AT,
            description: None,
            min_verification_interval: 10,
            inactivity_timeout: None,
            subject_format: SubjectFormat::IssSub,
        }
        .to_json();
        assert!(
            !config.to_string().contains("secret"),
            "the header is not echoed"
        );
        assert!(check_transmitter_fields(&config, &config).is_ok());
        assert!(check_transmitter_fields(&json!({ "aud": "other" }), &config).is_err());
        assert!(check_transmitter_fields(&json!({ "description": "x" }), &config).is_ok());
    }

    #[test]
    fn statuses() {
        assert_eq!(
            parse_status(&json!({ "stream_id": "s", "status": "paused", "reason": "maintenance" }))
                .unwrap(),
            (Status::Paused, Some("maintenance".into()))
        );
        assert!(parse_status(&json!({ "status": "stopped" })).is_err());
        assert!(stream_id(&json!({})).is_err());
        assert!(stream_id(&json!({ "stream_id": 5 })).is_err());
    }
}

//! Poll delivery (RFC 8936): the receiver POSTs what it acknowledges, what
//! it could not take, and how many SETs it wants; the transmitter answers
//! with SETs by `jti` and whether more wait.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::SsfError;

/// Most SETs one answer holds, whatever the receiver asks.
pub const MAX_EVENTS: u32 = 100;
/// Most acknowledgements or errors one request may carry.
pub const MAX_ACKS: usize = 1000;
const MAX_ID: usize = 256;

/// A poll request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRequest {
    /// How many SETs to return (0: acknowledge only), at most [`MAX_EVENTS`].
    pub max_events: u32,
    pub return_immediately: bool,
    pub ack: Vec<String>,
    /// SETs the receiver could not take: `jti` → (`err`, `description`).
    pub set_errs: BTreeMap<String, (String, String)>,
}

fn id(value: &Value, what: &str) -> Result<String, SsfError> {
    match value.as_str() {
        Some(text) if !text.is_empty() && text.len() <= MAX_ID => Ok(text.to_string()),
        _ => Err(SsfError::invalid(format!(
            "{what} must be strings of 1 to {MAX_ID} characters"
        ))),
    }
}

/// Reads a poll request (an empty body is a plain poll).
pub fn parse_request(body: &Value) -> Result<PollRequest, SsfError> {
    let empty = Map::new();
    let object = match body {
        Value::Null => &empty,
        Value::Object(object) => object,
        _ => return Err(SsfError::invalid("the body must be a JSON object")),
    };
    let max_events = match object.get("maxEvents") {
        None | Some(Value::Null) => MAX_EVENTS,
        Some(value) => {
            let asked = value
                .as_u64()
                .ok_or_else(|| SsfError::invalid("`maxEvents` must be a whole number"))?;
            u32::try_from(asked.min(u64::from(MAX_EVENTS))).unwrap_or(MAX_EVENTS)
        }
    };
    let return_immediately = match object.get("returnImmediately") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => {
            return Err(SsfError::invalid(
                "`returnImmediately` must be true or false",
            ));
        }
    };
    let mut ack = Vec::new();
    if let Some(list) = object.get("ack").filter(|v| !v.is_null()) {
        let list = list
            .as_array()
            .ok_or_else(|| SsfError::invalid("`ack` must be an array"))?;
        if list.len() > MAX_ACKS {
            return Err(SsfError::invalid(format!(
                "at most {MAX_ACKS} acknowledgements at once"
            )));
        }
        for item in list {
            ack.push(id(item, "`ack` entries")?);
        }
    }
    let mut set_errs = BTreeMap::new();
    if let Some(errors) = object.get("setErrs").filter(|v| !v.is_null()) {
        let errors = errors
            .as_object()
            .ok_or_else(|| SsfError::invalid("`setErrs` must be an object"))?;
        if errors.len() > MAX_ACKS {
            return Err(SsfError::invalid(format!(
                "at most {MAX_ACKS} errors at once"
            )));
        }
        for (jti, error) in errors {
            let jti = id(&Value::from(jti.as_str()), "`setErrs` keys")?;
            let text = |name: &str| {
                error
                    .get(name)
                    .and_then(Value::as_str)
                    .map(|t| t.chars().filter(|c| !c.is_control()).take(200).collect())
                    .unwrap_or_default()
            };
            set_errs.insert(jti, (text("err"), text("description")));
        }
    }
    Ok(PollRequest {
        max_events,
        return_immediately,
        ack,
        set_errs,
    })
}

/// The answer: SETs by `jti`, and whether more wait.
pub fn response(sets: &[(String, String)], more_available: bool) -> Value {
    let sets: Map<String, Value> = sets
        .iter()
        .map(|(jti, token)| (jti.clone(), Value::from(token.as_str())))
        .collect();
    json!({ "sets": sets, "moreAvailable": more_available })
}

/// What a transmitter answered to a poll, as a receiver reads it: SETs by
/// `jti`, and whether more wait.
pub fn parse_response(body: &Value) -> Result<(Vec<(String, String)>, bool), SsfError> {
    let sets = body
        .get("sets")
        .and_then(Value::as_object)
        .ok_or_else(|| SsfError::invalid("the poll answer has no `sets`"))?;
    let mut out = Vec::with_capacity(sets.len());
    for (jti, token) in sets {
        let token = token
            .as_str()
            .ok_or_else(|| SsfError::invalid("a polled SET is not a string"))?;
        out.push((jti.clone(), token.to_string()));
    }
    let more = body
        .get("moreAvailable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((out, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let plain = parse_request(&Value::Null).unwrap();
        assert_eq!(plain.max_events, MAX_EVENTS);
        assert!(!plain.return_immediately);
        let full = parse_request(&json!({
            "maxEvents": 5000, "returnImmediately": true, "ack": ["a", "b"],
            "setErrs": { "c": { "err": "invalid_key", "description": "bad\nkey" } }
        }))
        .unwrap();
        assert_eq!(full.max_events, MAX_EVENTS);
        assert_eq!(full.ack, ["a", "b"]);
        assert_eq!(full.set_errs["c"], ("invalid_key".into(), "badkey".into()));
        let only_acks = parse_request(&json!({ "maxEvents": 0, "ack": ["a"] })).unwrap();
        assert_eq!(only_acks.max_events, 0);
        for bad in [
            json!([]),
            json!({ "maxEvents": -1 }),
            json!({ "maxEvents": "5" }),
            json!({ "returnImmediately": "yes" }),
            json!({ "ack": "a" }),
            json!({ "ack": [""] }),
            json!({ "ack": [1] }),
            json!({ "setErrs": [] }),
        ] {
            assert!(parse_request(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_round_trip() {
        let sets = vec![("j1".to_string(), "a.b.c".to_string())];
        let answer = response(&sets, true);
        assert_eq!(parse_response(&answer).unwrap(), (sets, true));
        assert!(parse_response(&json!({})).is_err());
    }
}

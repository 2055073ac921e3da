//! Request extractors that refuse bad input with problem details: JSON bodies (with
//! the path of the offending field), query strings, path ids, `If-Match`, and the
//! authenticated caller.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tessera_service::{Context, ServiceError};

use crate::error::ApiError;
use crate::state::AppState;

/// The request's correlation id, set by the correlation middleware.
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

pub(crate) fn correlation_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<CorrelationId>()
        .map(|c| c.0.clone())
        .unwrap_or_default()
}

/// A JSON object body. Content type must be JSON (`application/json` or
/// `application/merge-patch+json`); the body must be one JSON object.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media_type != "application/json" && media_type != "application/merge-patch+json" {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                ApiError::new(rejection.status(), "body_unreadable", rejection.body_text())
            })?;
        parse_json_object(&bytes).map(JsonBody)
    }
}

/// A JSON object body that may be left out (an empty body is `None`); a body
/// that is sent is held to `JsonBody`'s rules.
pub struct OptionalJsonBody(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let has_type = request.headers().contains_key(header::CONTENT_TYPE);
        if declared == Some(0) || (declared.is_none() && !has_type) {
            return Ok(OptionalJsonBody(None));
        }
        JsonBody::from_request(request, state)
            .await
            .map(|body| OptionalJsonBody(Some(body.0)))
    }
}

/// Parses a request body that must be one JSON object. Duplicate keys are refused
/// (RFC 8259 leaves their meaning open, and two readers taking different ones is how
/// a checked value and a used value come apart), naming the duplicated field.
pub fn parse_json_object(bytes: &[u8]) -> Result<Value, ApiError> {
    let duplicate = std::cell::RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde::de::DeserializeSeed::deserialize(
        StrictValue {
            path: String::new(),
            duplicate: &duplicate,
        },
        &mut deserializer,
    )
    .and_then(|value| deserializer.end().map(|()| value));
    let value = match parsed {
        Ok(value) => value,
        Err(error) => {
            return Err(match duplicate.into_inner() {
                Some(field) => ApiError::bad_request(field, "this key appears more than once"),
                None => ApiError::bad_request("", format!("the body is not valid JSON: {error}")),
            });
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("", "the body must be a JSON object"));
    }
    Ok(value)
}

/// A JSON value read with its path, refusing duplicate keys (the path of the first
/// duplicate is left in `duplicate`). Paths are written as the body's field errors
/// are: `users[0].displayName`.
struct StrictValue<'a> {
    path: String,
    duplicate: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        // A number without a fraction is an integer, as JSON Schema counts: `2.0` is
        // read like `2` where an integer is expected.
        if value.fract() == 0.0 && value >= i64::MIN as f64 && value < i64::MAX as f64 {
            return Ok(Value::from(value as i64));
        }
        // serde_json never reads a non-finite number, so this is never null.
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = StrictValue {
                path: format!("{}[{}]", self.path, items.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(path);
                return Err(serde::de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(StrictValue {
                path,
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Query parameters; unknown parameters are refused like unknown fields.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::bad_request("query", rejection.body_text())),
        }
    }
}

/// A path with object ids; a malformed id is a 400, not a 404 or a 500.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(ApiError::bad_request(
                "path",
                format!("malformed path parameter: {}", rejection.body_text()),
            )),
        }
    }
}

/// `If-Match: W/"<version>"` (or `"<version>"`, or `*`).
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let inner = text.strip_prefix("W/").unwrap_or(text);
        let version = inner
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .and_then(|v| v.parse::<i64>().ok());
        match version {
            Some(version) => Ok(IfMatch(Some(version))),
            None => Err(ApiError::bad_request(
                "If-Match",
                "must be an ETag returned by this API, e.g. W/\"3\"",
            )),
        }
    }
}

/// The object named by the path's one parameter, with the `If-Match` version the
/// client sent (a change or removal is refused if the object moved on since).
pub struct PathAt<T = uuid::Uuid>(pub tessera_service::Versioned<T>);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathAt<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<T>::from_request_parts(parts, state).await?;
        let IfMatch(if_match) = IfMatch::from_request_parts(parts, state).await?;
        Ok(PathAt(tessera_service::Versioned::new(id, if_match)))
    }
}

/// The authenticated caller and the request's context. Missing or bad credentials
/// give 401 with one message that does not say which check failed.
pub struct Caller(pub Context);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let correlation_id = correlation_of(parts);
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '));
        let (scheme, token) = match authorization {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => (false, token.trim()),
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("dpop") => (true, token.trim()),
            _ => return Err(ApiError::from(ServiceError::Unauthenticated)),
        };
        // Personal access tokens, or Tessera access tokens for the management API
        // (RFC 9068 JWTs, bearer or DPoP-bound).
        let (tenant, caller) = if !scheme && token.starts_with("tsr_pat_") {
            state
                .app
                .directory
                .authenticate_token(token)
                .await
                .map_err(ApiError::from)?
        } else {
            let proof = parts.headers.get("dpop").and_then(|v| v.to_str().ok());
            let issuer = state.app.directory.public_url().to_string();
            let url = format!("{issuer}{}", parts.uri.path());
            let chain = crate::pages::ClientChain::of(state, parts).0;
            let address = client_address(state, parts);
            let presented = tessera_service::oauth::Presented {
                token,
                dpop_scheme: scheme,
                proof,
                method: parts.method.as_str(),
                url: &url,
                client_certificate: chain.first().map(Vec::as_slice),
                client_address: address.as_deref(),
            };
            state
                .app
                .oidc
                .authenticate_management_token(&issuer, &presented)
                .await
                .map_err(ApiError::from)?
        };
        let client_address = client_address(state, parts);
        Ok(Caller(Context {
            tenant,
            caller,
            correlation_id,
            client_address,
        }))
    }
}

/// Decodes a JSON object body into a request type, naming the offending field.
pub fn parse_body<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body)
        .map_err(|e| ApiError::bad_request(e.path().to_string(), e.inner().to_string()))
}

/// The client's address: the TCP peer's, or, when the peer is one of the trusted
/// proxies, the last address in `X-Forwarded-For` that is not one of them (the
/// addresses before it are the client's word only). IPv4-mapped IPv6 addresses are
/// given as IPv4. Entries with a port (`192.0.2.1:443`, `[2001:db8::1]:443`, as
/// some proxies write them) count as their address; an entry that is no
/// address at all, met before the client's, leaves the address unknown (none):
/// what lies to its left is not the proxies' word.
pub fn forwarded_address(
    trusted: &[std::net::IpAddr],
    peer: Option<std::net::IpAddr>,
    headers: &axum::http::HeaderMap,
) -> Option<String> {
    let peer = peer?.to_canonical();
    if !trusted.contains(&peer) {
        return Some(peer.to_string());
    }
    // Split as bytes: a client's own bytes that are not text make only
    // its own entry garbage, not the one a proxy appended to the same line.
    let entries: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty())
        .collect();
    let mut leftmost = peer;
    for entry in entries.iter().rev() {
        let address = forwarded_entry(std::str::from_utf8(entry).ok()?)?.to_canonical();
        if !trusted.contains(&address) {
            return Some(address.to_string());
        }
        leftmost = address;
    }
    // Every entry is a trusted proxy: the first names the client.
    Some(leftmost.to_string())
}

/// One `X-Forwarded-For` entry's address: bare, or with a port.
fn forwarded_entry(entry: &str) -> Option<std::net::IpAddr> {
    if let Ok(address) = entry.parse() {
        return Some(address);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (address, port) = rest.split_once(']')?;
        if !(port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok()))
        {
            return None;
        }
        return address.parse::<std::net::Ipv6Addr>().ok().map(Into::into);
    }
    let (address, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse::<std::net::Ipv4Addr>().ok().map(Into::into)
}

/// [`forwarded_address`] for a request.
pub fn client_address(state: &AppState, parts: &axum::http::request::Parts) -> Option<String> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    forwarded_address(&state.trusted_proxies, peer, &parts.headers)
}

#[cfg(test)]
mod json_body_tests {
    use super::parse_json_object;

    fn refused_field(body: &str) -> Option<String> {
        parse_json_object(body.as_bytes()).err().map(|error| {
            error
                .errors
                .first()
                .map(|e| e.field.clone())
                .unwrap_or_default()
        })
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        assert_eq!(
            refused_field(r#"{"displayName":"a","displayName":"b"}"#).as_deref(),
            Some("displayName")
        );
        assert_eq!(
            refused_field(r#"{"users":[{"a":1},{"a":1,"b":2,"a":3}]}"#).as_deref(),
            Some("users[1].a")
        );
        assert_eq!(
            refused_field(r#"{"a":{"b":{"c":1,"c":1}}}"#).as_deref(),
            Some("a.b.c")
        );
        // The same key in different objects is not a duplicate.
        let value = parse_json_object(br#"{"a":{"x":1},"b":{"x":[1.5,true,null,"s"]}}"#).unwrap();
        assert_eq!(value["b"]["x"][0], serde_json::json!(1.5));
    }

    #[test]
    fn numbers_without_a_fraction_are_integers() {
        let value =
            parse_json_object(br#"{"a": 2.0, "b": -0.0, "c": 1e3, "d": 2.5, "e": 1e300}"#).unwrap();
        assert_eq!(value["a"].as_i64(), Some(2));
        assert_eq!(value["b"].as_i64(), Some(0));
        assert_eq!(value["c"].as_i64(), Some(1000));
        assert_eq!(value["d"].as_f64(), Some(2.5));
        assert_eq!(value["e"].as_i64(), None);
    }

    #[test]
    fn only_one_json_object_is_a_body() {
        assert_eq!(refused_field("[]").as_deref(), Some(""));
        assert_eq!(refused_field("{} {}").as_deref(), Some(""));
        assert_eq!(refused_field("{\"a\":").as_deref(), Some(""));
        assert_eq!(refused_field("\u{0}").as_deref(), Some(""));
        assert!(parse_json_object(b" {\"a\": -1} ").is_ok());
    }
}

#[cfg(test)]
mod forwarded_tests {
    use super::forwarded_address;

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let proxy: std::net::IpAddr = "10.0.0.5".parse().unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.9".parse().unwrap(),
        );
        // From the proxy: the last address it did not add itself.
        assert_eq!(
            forwarded_address(&[proxy], Some(proxy), &headers).as_deref(),
            Some("203.0.113.9")
        );
        // From anyone else: the header is ignored.
        let stranger = "192.0.2.7".parse().ok();
        assert_eq!(
            forwarded_address(&[proxy], stranger, &headers).as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            forwarded_address(&[], Some(proxy), &headers).as_deref(),
            Some("10.0.0.5")
        );
        // A chain of trusted proxies is skipped.
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.6".parse().unwrap());
        let second: std::net::IpAddr = "10.0.0.6".parse().unwrap();
        assert_eq!(
            forwarded_address(&[proxy, second], Some(proxy), &headers).as_deref(),
            Some("203.0.113.9")
        );
        // IPv4-mapped peers are IPv4.
        let mapped = "::ffff:192.0.2.8".parse().ok();
        assert_eq!(
            forwarded_address(&[], mapped, &headers).as_deref(),
            Some("192.0.2.8")
        );
    }

    #[test]
    fn ports_are_read_and_garbage_leaves_the_address_unknown() {
        let proxy: std::net::IpAddr = "10.0.0.5".parse().unwrap();
        let from = |header: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("x-forwarded-for", header.parse().unwrap());
            forwarded_address(&[proxy], Some(proxy), &headers)
        };
        assert_eq!(
            from("192.0.2.1, 203.0.113.9:4431").as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(from("[2001:db8::7]:443").as_deref(), Some("2001:db8::7"));
        assert_eq!(from("[2001:db8::7]").as_deref(), Some("2001:db8::7"));
        assert_eq!(from("::ffff:203.0.113.9").as_deref(), Some("203.0.113.9"));
        // The client's own word left of garbage does not count.
        assert_eq!(from("192.0.2.1, unknown").as_deref(), None);
        // A client's bytes that are not text spoil only its own entry.
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.9").unwrap(),
        );
        assert_eq!(
            forwarded_address(&[proxy], Some(proxy), &headers).as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(from("192.0.2.1, 203.0.113.9:x").as_deref(), None);
        assert_eq!(from("[2001:db8::7]:99999").as_deref(), None);
        // Only trusted proxies: the first names the client; none: the peer.
        assert_eq!(from("10.0.0.5").as_deref(), Some("10.0.0.5"));
        assert_eq!(from(" , ").as_deref(), Some("10.0.0.5"));
    }
}

/// Whether a JWT's payload names `api` as its audience (read without checking
/// anything: it only chooses which check the token gets).
pub fn audience_is(token: &str, api: &str) -> bool {
    use base64::Engine as _;
    let Some(payload) = token.split('.').nth(1) else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return false;
    };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    match &claims["aud"] {
        serde_json::Value::String(aud) => aud == api,
        serde_json::Value::Array(auds) => auds.iter().any(|a| a == api),
        _ => false,
    }
}

/// The caller of the device compliance API: a device manager's workload
/// token for the SSF API (`DeviceCompliance.ReadWrite.All`), or whatever the
/// management API accepts.
pub struct ComplianceCaller(pub tessera_service::Context);

impl axum::extract::FromRequestParts<AppState> for ComplianceCaller {
    type Rejection = crate::error::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| audience_is(t, tessera_service::signals::SIGNALS_API_ID))
            .map(str::to_string);
        let Some(token) = bearer else {
            return Caller::from_request_parts(parts, state)
                .await
                .map(|Caller(ctx)| ComplianceCaller(ctx));
        };
        let issuer = state.app.signals.issuer();
        let url = format!("{issuer}{}", parts.uri.path());
        let correlation = correlation_of(parts);
        let address = client_address(state, parts);
        let presented = tessera_service::oauth::Presented {
            token: &token,
            dpop_scheme: false,
            proof: None,
            method: parts.method.as_str(),
            url: &url,
            client_certificate: None,
            client_address: address.as_deref(),
        };
        state
            .app
            .signals
            .authenticate_device_manager(&presented, &correlation, address.as_deref())
            .await
            .map(ComplianceCaller)
            .map_err(crate::error::ApiError::from)
    }
}

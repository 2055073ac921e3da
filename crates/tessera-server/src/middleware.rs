//! Cross-cutting request handling: correlation ids, access logs and metrics,
//! security headers, and turning a panic into a 500 with a correlation id.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::CorrelationId;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn acceptable_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The correlation id of the request being handled, for error documents.
pub fn current_correlation() -> Option<String> {
    CURRENT_CORRELATION.try_with(|id| id.clone()).ok()
}

tokio::task_local! {
    static CURRENT_CORRELATION: String;
}

/// Takes the caller's `X-Request-Id` when it is a plain token (so it cannot inject
/// into logs), else makes one, and echoes it on the response. Problem documents take
/// it from the task-local scope set here.
pub async fn correlate(mut request: Request, next: Next) -> Response {
    let supplied = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v));
    let id = supplied
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    request.extensions_mut().insert(CorrelationId(id.clone()));
    let mut response = CURRENT_CORRELATION
        .scope(id.clone(), next.run(request))
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// One structured access-log line and request metrics per request. Never logs
/// headers or bodies (they carry credentials and personal data).
pub async fn observe(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let correlation = request
        .extensions()
        .get::<CorrelationId>()
        .map(|c| c.0.clone())
        .unwrap_or_default();
    let response = next.run(request).await;
    let seconds = start.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    metrics::counter!("tessera_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!("tessera_http_request_duration_seconds", "method" => method.to_string(), "route" => route.clone()).record(seconds);
    tracing::info!(method = %method, route = %route, status, duration_ms = seconds * 1000.0, correlation_id = %correlation, "request");
    response
}

/// Headers for an API that serves credentials and personal data: never cached,
/// never framed, never sniffed; HSTS only where the client reached us over HTTPS
/// (RFC 6797 §7.2: not over plain HTTP).
pub async fn security_headers(
    axum::extract::State(https_public_url): axum::extract::State<bool>,
    request: Request,
    next: Next,
) -> Response {
    let over_tls = https_public_url
        || request
            .extensions()
            .get::<crate::tls::PeerCertificates>()
            .is_some();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    if over_tls {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000",
        );
    }
    response
}

pub fn on_panic(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    let correlation = current_correlation();
    tracing::error!(panic = message, correlation_id = ?correlation, "a request handler panicked");
    ApiError::internal(correlation).into_response()
}

/// Deadlines and bounds on reading a request: the body must arrive whole within
/// `body_timeout` (a client that sends a few bytes and stalls is answered 408 and
/// its connection closed), and no part of a request may carry a NUL character,
/// which PostgreSQL cannot store and no identifier, name or parameter needs.
#[derive(Debug, Clone, Copy)]
pub struct InputLimits {
    pub body_timeout: Duration,
    pub max_body_bytes: usize,
}

/// Reads the whole body first (so every handler, HTTP/2 included, has read its
/// request before it answers), within the deadline, and refuses NUL characters in
/// the path, the query and form or JSON bodies, the same on every backend.
/// The routes that take files as they are (the console's imports: an Entra export,
/// a bulk-create file of users).
const UPLOAD_PATHS: [&str; 2] = ["/admin/conditional-access/import", "/admin/users/import"];

pub async fn guard_input(
    axum::extract::State(limits): axum::extract::State<InputLimits>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if has_encoded_nul(request.uri().path()) || request.uri().query().is_some_and(has_encoded_nul) {
        return refuse(
            &path,
            StatusCode::BAD_REQUEST,
            "the request URL holds a NUL character",
        );
    }
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limits.max_body_bytes) {
        return refuse(
            &path,
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        );
    }
    let bytes = match tokio::time::timeout(
        limits.body_timeout,
        axum::body::to_bytes(body, limits.max_body_bytes),
    )
    .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            return if too_large {
                refuse(
                    &path,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is too large",
                )
            } else {
                refuse(
                    &path,
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                )
            };
        }
        Err(_) => {
            let mut response = refuse(
                &path,
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // Some handlers read JSON or forms whatever the declared type: a form is
    // checked as a form, any other body as JSON (the escape, and the raw byte). A
    // file upload (the console's imports) carries files as they are, UTF-16 ones
    // with NUL bytes: its handler checks what it decodes.
    let upload =
        content_type.starts_with("multipart/form-data") && UPLOAD_PATHS.contains(&path.as_str());
    let nul = (!upload && bytes.contains(&0))
        || if upload {
            false
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            has_encoded_nul_bytes(&bytes)
        } else {
            has_json_nul(&bytes)
        };
    if nul {
        return refuse(
            &path,
            StatusCode::BAD_REQUEST,
            "the request body holds a NUL character",
        );
    }
    // From here until its answer is sent the request is in flight: its connection
    // is not evicted for newcomers (see `connections`), so the answer is not lost.
    let slot = parts
        .extensions
        .get::<crate::connections::ConnectionSlot>()
        .cloned();
    let handling = slot
        .as_ref()
        .map(crate::connections::ConnectionSlot::handling);
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let response = match &slot {
        Some(slot) => slot.in_flight(response),
        None => response,
    };
    drop(handling);
    response
}

fn has_encoded_nul(text: &str) -> bool {
    has_encoded_nul_bytes(text.as_bytes())
}

/// `%00` in a URL-encoded text (a raw NUL cannot be in a URI at all).
fn has_encoded_nul_bytes(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| w == b"%00")
}

/// A `\u0000` escape in JSON text, not preceded by an escaping backslash.
fn has_json_nul(bytes: &[u8]) -> bool {
    bytes.windows(6).enumerate().any(|(at, w)| {
        w[0] == b'\\'
            && w[1] == b'u'
            && &w[2..] == b"0000"
            && bytes[..at]
                .iter()
                .rev()
                .take_while(|b| **b == b'\\')
                .count()
                % 2
                == 0
    })
}

/// The refusal in the form the endpoint's clients read: an OAuth error for the
/// OAuth endpoints, a SCIM error for SCIM, a page for the pages, a problem
/// document for the API.
fn refuse(path: &str, status: StatusCode, message: &str) -> Response {
    const OAUTH_JSON: [&str; 7] = [
        "/oauth2/token",
        "/oauth2/introspect",
        "/oauth2/revoke",
        "/oauth2/par",
        "/oauth2/register",
        "/oauth2/devicecode",
        "/oauth2/userinfo",
    ];
    if OAUTH_JSON.contains(&path) {
        crate::wire::oauth::error(&tessera_oauth::token::OAuthError {
            status: status.as_u16(),
            ..tessera_oauth::token::OAuthError::new(
                tessera_oauth::error::ErrorCode::InvalidRequest,
                message,
            )
        })
    } else if path == "/scim/v2" || path.starts_with("/scim/") {
        crate::wire::scim::refusal(status, message)
    } else if path.starts_with("/api/") || path.starts_with("/.well-known/") {
        let code = if status == StatusCode::BAD_REQUEST && message.contains("NUL") {
            "validation_failed"
        } else {
            "body_unreadable"
        };
        ApiError::new(status, code, message).into_response()
    } else {
        crate::pages::error_page(status, message)
    }
}

/// CORS for browser applications on other origins (single-page applications):
/// the discovery documents and the key set to any origin; the token, userinfo and
/// revocation endpoints only to the origins of registered SPA redirect URIs. Never
/// with credentials (cookies): these endpoints authenticate by what the request
/// carries. Every other path gets no CORS headers at all.
pub async fn cors(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    request: Request,
    next: Next,
) -> Response {
    const PUBLIC: [&str; 3] = [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    ];
    const FOR_SPAS: [(&str, &str); 3] = [
        ("/oauth2/token", "POST"),
        ("/oauth2/userinfo", "GET, POST"),
        ("/oauth2/revoke", "POST"),
    ];
    let path = request.uri().path().to_string();
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let preflight = request.method() == axum::http::Method::OPTIONS;
    let (allowed, methods) = if PUBLIC.contains(&path.as_str()) {
        (Some(HeaderValue::from_static("*")), "GET")
    } else if let Some((_, methods)) = FOR_SPAS.iter().find(|(p, _)| *p == path) {
        let allowed = match &origin {
            Some(origin) => match state.app.directory.default_tenant().await {
                Ok(Some(tenant)) => state
                    .app
                    .oidc
                    .cors_origin_allowed(tenant, origin)
                    .await
                    .unwrap_or(false),
                _ => false,
            },
            None => false,
        };
        (
            allowed
                .then(|| {
                    origin
                        .as_deref()
                        .and_then(|o| HeaderValue::from_str(o).ok())
                })
                .flatten(),
            *methods,
        )
    } else {
        return next.run(request).await;
    };
    let mut response = if preflight && origin.is_some() {
        if allowed.is_none() {
            let mut refused = StatusCode::FORBIDDEN.into_response();
            refused
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Origin"));
            return refused;
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, dpop"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        response
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(allowed) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("www-authenticate, dpop-nonce"),
        );
    }
    response
}

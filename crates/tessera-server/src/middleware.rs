//! Cross-cutting request handling: correlation ids, access logs and metrics,
//! security headers, and turning a panic into a 500 with a correlation id.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
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
/// never framed, never sniffed.
pub async fn security_headers(request: Request, next: Next) -> Response {
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
    set(
        headers,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000",
    );
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

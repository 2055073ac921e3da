//! SCIM errors to the wire (RFC 7644 §3.12): `application/scim+json` bodies with
//! the error schema, `status` as a string and a `scimType` where the RFC has one.
//! The directory's errors map here; an internal error says nothing of its cause.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tessera_scim::{ScimError, ScimType};
use tessera_service::provisioning::ScimFailure;

pub const MEDIA_TYPE: &str = "application/scim+json";

/// A SCIM JSON response.
pub fn json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    response
}

/// The error as SCIM says it.
pub fn error(failure: ScimFailure) -> Response {
    let scim = failure.into_scim();
    let status = StatusCode::from_u16(scim.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json(status, &scim.body());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"scim\""),
        );
    }
    response
}

/// A SCIM error with only a status and what went wrong (a refusal made before
/// any SCIM handler ran: the body's size or arrival, the method).
pub fn refusal(status: StatusCode, detail: &str) -> Response {
    error(ScimFailure::Scim(ScimError::new(
        status.as_u16(),
        None,
        detail,
    )))
}

/// A SCIM error for a type the RFC names.
pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Response {
    error(ScimFailure::Scim(ScimError::bad(scim_type, detail)))
}

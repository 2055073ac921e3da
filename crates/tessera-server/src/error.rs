//! The one place errors become HTTP: RFC 9457 problem details with a stable `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_directory::FieldError;
use tessera_oauth::error::ErrorCode;
use tessera_service::ServiceError;
use utoipa::ToSchema;

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// `urn:tessera:error:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable error code, e.g. `validation_failed`, `forbidden`.
    pub code: String,
    /// Correlates the response with server logs and audit events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// For `validation_failed`: every problem found, by field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub correlation_id: Option<String>,
    /// The `WWW-Authenticate` challenge of a 401 (default `Bearer`).
    pub challenge: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            correlation_id: None,
            challenge: None,
        }
    }

    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let message = message.into();
        let mut error = ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            message.clone(),
        );
        error.errors.push(FieldError {
            field: field.into(),
            message,
        });
        error
    }

    pub fn internal(correlation_id: Option<String>) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; quote the correlation id when reporting it",
        );
        error.correlation_id = correlation_id;
        error
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let code = error.code();
        let status = match &error {
            ServiceError::Validation(_) => StatusCode::BAD_REQUEST,
            ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
            ServiceError::Conflict { .. } => StatusCode::CONFLICT,
            ServiceError::VersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
            ServiceError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ServiceError::Unauthenticated
            | ServiceError::DpopBoundSentAsBearer
            | ServiceError::ClaimsChallenge { .. }
            | ServiceError::InsufficientAuthentication { .. } => StatusCode::UNAUTHORIZED,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match error {
            ServiceError::Validation(errors) => ApiError {
                status,
                code,
                detail: format!("the request is invalid: {errors}"),
                errors: errors.errors,
                correlation_id: None,
                challenge: None,
            },
            ServiceError::DpopBoundSentAsBearer => {
                let mut refused = ApiError::new(status, code, error.to_string());
                refused.challenge = Some(crate::wire::oauth::dpop_challenge(
                    ErrorCode::InvalidToken,
                    crate::wire::oauth::DPOP_BOUND_DESCRIPTION,
                ));
                refused
            }
            ServiceError::ClaimsChallenge { claims, dpop } => {
                let mut refused = ApiError::new(
                    status,
                    code,
                    crate::wire::oauth::CLAIMS_CHALLENGE_DESCRIPTION,
                );
                let scheme = if dpop {
                    crate::wire::oauth::Scheme::DPoP
                } else {
                    crate::wire::oauth::Scheme::Bearer
                };
                refused.challenge = Some(crate::wire::oauth::claims_challenge_value(
                    scheme,
                    &challenge_text(&claims),
                ));
                refused
            }
            ServiceError::InsufficientAuthentication {
                acr_values,
                message,
            } => {
                // RFC 9470 section 3: the challenge names what would satisfy it.
                let mut refused = ApiError::new(status, code, message.clone());
                refused.challenge = Some(format!(
                    "Bearer error=\"insufficient_user_authentication\", error_description=\"{}\", acr_values=\"{}\"",
                    challenge_text(&message),
                    challenge_text(&acr_values)
                ));
                refused
            }
            ServiceError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                ApiError::internal(None)
            }
            other => ApiError::new(status, code, other.to_string()),
        }
    }
}

/// Text safe inside a quoted challenge parameter (RFC 9110 quoted-string without
/// escapes): printable ASCII other than `"` and `\\`.
fn challenge_text(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| *c != '"' && *c != '\\')
        .collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            problem_type: format!("urn:tessera:error:{}", self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_string(),
            correlation_id: self
                .correlation_id
                .or_else(crate::middleware::current_correlation),
            errors: self.errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = self
                .challenge
                .as_deref()
                .and_then(|value| HeaderValue::from_str(value).ok())
                .unwrap_or(HeaderValue::from_static("Bearer"));
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claims_challenge_is_a_401_that_names_the_claims() {
        let response = ApiError::from(ServiceError::ClaimsChallenge {
            claims: "eyJhY2Nlc3NfdG9rZW4iOnt9fQ==".to_string(),
            dpop: false,
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(
            challenge.contains("error=\"insufficient_claims\""),
            "{challenge}"
        );
        assert!(
            challenge.contains("claims=\"eyJhY2Nlc3NfdG9rZW4iOnt9fQ==\""),
            "{challenge}"
        );
        let dpop = ApiError::from(ServiceError::ClaimsChallenge {
            claims: "e30=".to_string(),
            dpop: true,
        })
        .into_response();
        let challenge = dpop.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with("DPoP "), "{challenge}");
    }
}

//! OAuth errors as clients read them: the JSON error response of the token-style
//! endpoints (RFC 6749 §5.2: token, PAR, device authorization, introspection,
//! revocation, registration) and the `WWW-Authenticate` challenges of the resource
//! endpoints (RFC 6750 §3, RFC 9449 §7.1).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_oauth::error::ErrorCode;
use tessera_oauth::token::OAuthError;

/// The description of a DPoP-bound token sent with the Bearer scheme.
pub const DPOP_BOUND_DESCRIPTION: &str =
    "the access token is DPoP-bound: send it with the DPoP scheme and a DPoP proof";

/// A JSON answer of an OAuth endpoint; never cached (RFC 6749 §5.1).
pub fn json(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An OAuth error response: its status, and `WWW-Authenticate: Basic` when the
/// client tried HTTP Basic authentication and failed it (RFC 6749 §5.2).
pub fn error(error: &OAuthError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = json(status, error.body().to_string());
    if error.basic_challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tessera\""),
        );
    }
    response
}

/// An error response with the code's own status.
pub fn error_of(code: ErrorCode, description: &str) -> Response {
    error(&OAuthError::new(code, description))
}

/// The authentication scheme a resource request used (and its challenge names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    DPoP,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Bearer => "Bearer",
            Scheme::DPoP => "DPoP",
        }
    }
}

/// The `WWW-Authenticate` value of a DPoP challenge, with the algorithms proofs may
/// use (RFC 9449 §7.1).
pub fn dpop_challenge(code: ErrorCode, description: &str) -> String {
    let algs: Vec<&str> = tessera_oauth::keys::Algorithm::ALL
        .iter()
        .map(|alg| alg.as_str())
        .collect();
    format!(
        "DPoP error=\"{code}\", error_description=\"{description}\", algs=\"{}\"",
        algs.join(" ")
    )
}

/// A resource endpoint's refusal: the error as JSON and as a challenge in the
/// scheme the request used.
pub fn challenge(
    status: StatusCode,
    scheme: Scheme,
    code: ErrorCode,
    description: &str,
) -> Response {
    let mut response = json(
        status,
        serde_json::json!({ "error": code, "error_description": description }).to_string(),
    );
    let value = format!(
        "{} realm=\"tessera\", error=\"{code}\", error_description=\"{description}\"",
        scheme.as_str()
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Why a token of a client that handles claims challenges was refused.
pub const CLAIMS_CHALLENGE_DESCRIPTION: &str =
    "the token is no longer accepted here: sign in again with the claims challenge";

/// The `WWW-Authenticate` value of a claims challenge (continuous access
/// evaluation): `insufficient_claims` with the `claims` (base64) to send to
/// the authorization endpoint, as Entra answers.
pub fn claims_challenge_value(scheme: Scheme, claims: &str) -> String {
    format!(
        "{} realm=\"tessera\", error=\"insufficient_claims\", error_description=\"{CLAIMS_CHALLENGE_DESCRIPTION}\", claims=\"{claims}\"",
        scheme.as_str()
    )
}

/// A token of a client that handles claims challenges that a change or its
/// location ended (continuous access evaluation): 401 `insufficient_claims`.
pub fn claims_challenge(scheme: Scheme, claims: &str) -> Response {
    let mut response = json(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({ "error": "insufficient_claims", "error_description": CLAIMS_CHALLENGE_DESCRIPTION })
            .to_string(),
    );
    let value = claims_challenge_value(scheme, claims);
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// A DPoP-bound token sent with the Bearer scheme: `invalid_token` with a DPoP
/// challenge (the client must switch schemes).
pub fn dpop_bound_sent_as_bearer() -> Response {
    let mut response = json(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({ "error": ErrorCode::InvalidToken, "error_description": DPOP_BOUND_DESCRIPTION })
            .to_string(),
    );
    if let Ok(value) = HeaderValue::from_str(&dpop_challenge(
        ErrorCode::InvalidToken,
        DPOP_BOUND_DESCRIPTION,
    )) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// No token at all: 401 with the schemes and DPoP algorithms accepted, no error
/// code (RFC 6750 §3.1).
pub fn token_required() -> Response {
    let mut response = json(StatusCode::UNAUTHORIZED, String::new());
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tessera\", DPoP algs=\"ES256 RS256 PS256 EdDSA\""),
    );
    response
}

//! `/.well-known/` documents of the default tenant's issuer (the server's base URL).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The JSON Web Key Set relying parties verify Tessera's tokens with: current,
/// next and recently retired keys, public parts only.
pub async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let tenant = state
        .app
        .directory
        .default_tenant()
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Tessera is not set up yet",
            )
        })?;
    let jwks = state.app.oidc.jwks(tenant).await.map_err(ApiError::from)?;
    let mut response = (StatusCode::OK, jwks.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    // Keys are published a day before they sign, so a few minutes of caching is safe.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}

/// `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`:
/// the provider metadata of the default tenant's issuer.
pub async fn metadata(State(state): State<AppState>) -> Response {
    let issuer = state.app.directory.public_url();
    let document = tessera_oauth::metadata::document(issuer, &tessera_oauth::keys::Algorithm::ALL);
    let mut response = (StatusCode::OK, document.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

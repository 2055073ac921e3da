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
        .directory
        .store()
        .default_tenant()
        .await
        .map_err(|e| ApiError::from(tessera_service::ServiceError::from(e)))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Tessera is not set up yet",
            )
        })?;
    let jwks = state.directory.jwks(tenant).await.map_err(ApiError::from)?;
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

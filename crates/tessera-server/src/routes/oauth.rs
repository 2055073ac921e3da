//! The OAuth 2.x endpoints of the default tenant's issuer.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_oauth::token::{self, OAuthError};
use tessera_service::oauth::TokenContext;

use crate::extract::CorrelationId;
use crate::state::AppState;

fn json(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // RFC 6749 §5.1: token responses are never cached.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn error_response(error: &OAuthError) -> Response {
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

/// `POST /oauth2/token`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    correlation: Option<axum::Extension<CorrelationId>>,
    address: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Response {
    let form = match token::parse_form(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        &body,
    ) {
        Ok(form) => form,
        Err(error) => return error_response(&error),
    };
    let tenant = match state.directory.store().default_tenant().await {
        Ok(Some(tenant)) => tenant,
        _ => {
            return error_response(&OAuthError::new(
                "server_error",
                "Tessera is not set up yet",
            ));
        }
    };
    let ctx = TokenContext {
        tenant,
        issuer: state.directory.public_url().to_string(),
        correlation_id: correlation.map(|c| c.0.0.clone()).unwrap_or_default(),
        client_address: address.map(|a| a.0.0.ip().to_string()),
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state
        .directory
        .token_request(&ctx, authorization, &form)
        .await
    {
        Ok(issued) => json(
            StatusCode::OK,
            serde_json::to_string(&issued).unwrap_or_default(),
        ),
        Err(error) => error_response(&error),
    }
}

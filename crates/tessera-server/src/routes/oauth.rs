//! The OAuth 2.x endpoints of the default tenant's issuer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use tessera_oauth::error::ErrorCode;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use tessera_oauth::token::{self, OAuthError};
use tessera_service::oauth::{BearerError, Presented, TokenContext};

use crate::extract::CorrelationId;
use crate::pages::ClientChain;
use crate::state::AppState;
use crate::wire::oauth::{self as wire, Scheme, error as error_response, json};

/// The token context of a request to the default tenant's issuer.
async fn token_context(
    state: &AppState,
    correlation: Option<axum::Extension<CorrelationId>>,
    client_address: Option<String>,
) -> Result<TokenContext, Response> {
    let tenant = match state.app.directory.default_tenant().await {
        Ok(Some(tenant)) => tenant,
        _ => {
            // Not bootstrapped yet, or the database cannot be reached: try later.
            return Err(error_response(&OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "Tessera is not set up yet or cannot reach its database",
            )));
        }
    };
    Ok(TokenContext {
        tenant,
        issuer: state.app.directory.public_url().to_string(),
        correlation_id: correlation.map(|c| c.0.0.clone()).unwrap_or_default(),
        client_address,
        dpop: None,
        client_certificates: Vec::new(),
    })
}

/// A form request to one of the client-facing endpoints (token, PAR, device
/// authorization, introspection, revocation): its context (with the DPoP header and
/// the client certificate chain), its form, and its `Authorization` header. Bad
/// input is answered with the OAuth error.
pub struct FormRequest(TokenContext, BTreeMap<String, String>, Option<String>);

impl axum::extract::FromRequest<AppState> for FormRequest {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let chain = ClientChain::of(state, &parts);
        let body = axum::body::to_bytes(body, token::MAX_REQUEST_BYTES + 1)
            .await
            .map_err(|_| {
                error_response(&OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "the request is too large",
                ))
            })?;
        let headers = &parts.headers;
        let form = token::parse_form(
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            &body,
        )
        .map_err(|error| error_response(&error))?;
        let correlation = parts.extensions.get::<CorrelationId>().cloned();
        let address = crate::extract::client_address(state, &parts);
        let mut ctx = token_context(state, correlation.map(axum::Extension), address).await?;
        ctx.dpop = dpop_header(headers).map_err(|error| error_response(&error))?;
        ctx.client_certificates = chain.0;
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(FormRequest(ctx, form, authorization))
    }
}

/// A JSON answer with `status`, or the OAuth error.
fn answer<T: serde::Serialize>(status: StatusCode, result: Result<T, OAuthError>) -> Response {
    match result {
        Ok(value) => json(status, serde_json::to_string(&value).unwrap_or_default()),
        Err(error) => error_response(&error),
    }
}

/// The one `DPoP` header of a request, if any (RFC 9449 §4.3: exactly one).
fn dpop_header(headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    let mut values = headers.get_all("dpop").iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "send one DPoP header",
        ));
    }
    match first.map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(value)) => Ok(Some(value.to_string())),
        Some(Err(_)) => Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "the DPoP header is not text",
        )),
    }
}

/// `POST /oauth2/token`.
pub async fn token(State(state): State<AppState>, request: FormRequest) -> Response {
    let FormRequest(ctx, form, authorization) = request;
    let result = state
        .app
        .oidc
        .token_request(&ctx, authorization.as_deref(), &form)
        .await;
    answer(StatusCode::OK, result)
}

/// `POST /oauth2/par` (RFC 9126): 201 with the `request_uri`.
pub async fn par(State(state): State<AppState>, request: FormRequest) -> Response {
    let FormRequest(ctx, form, authorization) = request;
    let result = state
        .app
        .oidc
        .push_authorization_request(&ctx, authorization.as_deref(), &form)
        .await;
    answer(StatusCode::CREATED, result)
}

/// `POST /oauth2/devicecode` (RFC 8628 §3.1).
pub async fn device_authorization(State(state): State<AppState>, request: FormRequest) -> Response {
    let FormRequest(ctx, form, authorization) = request;
    let result = state
        .app
        .oidc
        .device_authorization(&ctx, authorization.as_deref(), &form)
        .await;
    answer(StatusCode::OK, result)
}

/// `POST /oauth2/introspect` (RFC 7662).
pub async fn introspect(State(state): State<AppState>, request: FormRequest) -> Response {
    let FormRequest(ctx, form, authorization) = request;
    let result = state
        .app
        .oidc
        .introspect(&ctx, authorization.as_deref(), &form)
        .await;
    answer(StatusCode::OK, result)
}

/// `POST /oauth2/revoke` (RFC 7009): an empty 200.
pub async fn revoke(State(state): State<AppState>, request: FormRequest) -> Response {
    let FormRequest(ctx, form, authorization) = request;
    match state
        .app
        .oidc
        .revoke(&ctx, authorization.as_deref(), &form)
        .await
    {
        Ok(()) => json(StatusCode::OK, String::new()),
        Err(error) => error_response(&error),
    }
}

/// `POST /oauth2/register` (RFC 7591), when the tenant allows it: 201 with the
/// client's id and secret.
pub async fn register(
    State(state): State<AppState>,
    correlation: Option<axum::Extension<CorrelationId>>,
    address: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_body || body.len() > token::MAX_REQUEST_BYTES {
        return error_response(&OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "send the metadata as application/json (at most 64 KiB)",
        ));
    }
    let peer = address.map(|a| a.0.0.ip());
    let client = crate::extract::forwarded_address(&state.trusted_proxies, peer, &headers);
    let ctx = match token_context(&state, correlation, client).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let result = state
        .app
        .oidc
        .register_client(
            ctx.tenant,
            &body,
            &ctx.correlation_id,
            ctx.client_address.clone(),
        )
        .await;
    answer(StatusCode::CREATED, result)
}

/// The `access_token` of a POST form body (RFC 6750 §2.2), if that is how it came.
fn form_access_token(
    method: &axum::http::Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<String>, &'static str> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if method != axum::http::Method::POST || !form || body.is_empty() {
        return Ok(None);
    }
    let mut token = None;
    for (name, value) in form_urlencoded::parse(body) {
        if name == "access_token" {
            if token.is_some() {
                return Err("access_token is repeated");
            }
            token = Some(value.into_owned());
        }
    }
    Ok(token)
}

/// `GET|POST /oauth2/userinfo` with `Authorization: Bearer` (RFC 6750 §2.1),
/// `Authorization: DPoP` with a proof (RFC 9449 §7.1), or a POST form's
/// `access_token` (RFC 6750 §2.2).
pub async fn userinfo(
    State(state): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    method: axum::http::Method,
    chain: ClientChain,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let form_token = match form_access_token(&method, &headers, &body) {
        Ok(token) => token,
        Err(description) => return wire::error_of(ErrorCode::InvalidRequest, description),
    };
    let from_header = authorization.and_then(|v| v.split_once(' '));
    if from_header.is_some() && form_token.is_some() {
        // RFC 6750 §2: one way of sending the token, not two.
        return wire::error_of(
            ErrorCode::InvalidRequest,
            "send the access token in the Authorization header or in the form, not both",
        );
    }
    let (scheme, token) = match (from_header, form_token.as_deref()) {
        (None, Some(token)) => (Scheme::Bearer, token),
        (Some((scheme, token)), _) if scheme.eq_ignore_ascii_case("bearer") => {
            (Scheme::Bearer, token.trim())
        }
        (Some((scheme, token)), _) if scheme.eq_ignore_ascii_case("dpop") => {
            (Scheme::DPoP, token.trim())
        }
        _ => return wire::token_required(),
    };
    let proof = match dpop_header(&headers) {
        Ok(proof) => proof,
        Err(_) => {
            return wire::challenge(
                StatusCode::UNAUTHORIZED,
                scheme,
                ErrorCode::InvalidDpopProof,
                "send one DPoP proof",
            );
        }
    };
    let ctx = match token_context(&state, None, None).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let url = format!("{}/oauth2/userinfo", ctx.issuer);
    let address = crate::extract::forwarded_address(
        &state.trusted_proxies,
        peer.map(|p| p.0.0.ip()),
        &headers,
    );
    let presented = Presented {
        token,
        dpop_scheme: scheme == Scheme::DPoP,
        proof: proof.as_deref(),
        method: method.as_str(),
        url: &url,
        client_certificate: chain.0.first().map(Vec::as_slice),
        client_address: address.as_deref(),
    };
    match state
        .app
        .oidc
        .userinfo(ctx.tenant, &ctx.issuer, &presented)
        .await
    {
        Ok(claims) => json(StatusCode::OK, claims.to_string()),
        Err(BearerError::InsufficientScope(scope)) => wire::challenge(
            StatusCode::FORBIDDEN,
            scheme,
            ErrorCode::InsufficientScope,
            &format!("the token lacks the {scope} scope"),
        ),
        Err(BearerError::InvalidToken) => wire::challenge(
            StatusCode::UNAUTHORIZED,
            scheme,
            ErrorCode::InvalidToken,
            "the access token is invalid or expired",
        ),
        Err(BearerError::DpopBoundSentAsBearer) => wire::dpop_bound_sent_as_bearer(),
        Err(BearerError::InsufficientClaims(claims)) => wire::claims_challenge(scheme, &claims),
        Err(BearerError::InvalidDpopProof) => wire::challenge(
            StatusCode::UNAUTHORIZED,
            scheme,
            ErrorCode::InvalidDpopProof,
            "the DPoP proof is missing or invalid",
        ),
        Err(BearerError::Server) => {
            wire::error_of(ErrorCode::ServerError, "the request could not be completed")
        }
    }
}

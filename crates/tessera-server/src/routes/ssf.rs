//! Shared Signals (OpenID SSF 1.0): the transmitter's metadata
//! (`/.well-known/ssf-configuration`), its stream management API for
//! receivers (`/ssf/streams`, `/ssf/status`, `/ssf/subjects:add`,
//! `/ssf/subjects:remove`, `/ssf/verify`) and poll endpoint
//! (`/ssf/poll/{stream_id}`, RFC 8936), all authorized by a receiver's
//! client-credentials token (`ssf.manage` or `ssf.read`); the push endpoint
//! where transmitters Tessera receives from deliver (`/ssf/receive/{id}`,
//! RFC 8935); and the administrators' API (`/api/v1/signals/...`). The
//! rules are the signals context's.

// Handlers answer with a whole response on every path.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tessera_service::ServiceError;
use tessera_service::signals::{ReceiverCaller, SignalsError};
use uuid::Uuid;

use super::{ValueList, created, no_content, ok};
use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, PathAt};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/ssf-configuration", get(configuration))
        .route(
            "/ssf/streams",
            get(get_streams)
                .post(create_stream)
                .patch(update_stream)
                .put(replace_stream)
                .delete(delete_stream),
        )
        .route("/ssf/status", get(get_status).post(set_status))
        .route("/ssf/subjects:add", post(add_subject))
        .route("/ssf/subjects:remove", post(remove_subject))
        .route("/ssf/verify", post(verify))
        .route("/ssf/poll/{stream_id}", post(poll))
        .route("/ssf/receive/{id}", post(receive))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error_response(error: SignalsError) -> Response {
    let (status, err, description) = match error {
        SignalsError::Protocol(error) => (StatusCode::BAD_REQUEST, error.code, error.description),
        SignalsError::TooSoon { retry_after } => {
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({ "err": "too_many_requests",
                         "description": "a verification was asked for moments ago" }),
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
        SignalsError::Service(error) => match error {
            ServiceError::Validation(errors) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                errors.to_string(),
            ),
            ServiceError::NotFound { .. } => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such stream".to_string(),
            ),
            ServiceError::Conflict { message } => (StatusCode::CONFLICT, "conflict", message),
            ServiceError::Forbidden { reason } => (StatusCode::FORBIDDEN, "access_denied", reason),
            ServiceError::Unauthenticated
            | ServiceError::DpopBoundSentAsBearer
            | ServiceError::ClaimsChallenge { .. } => {
                let mut response = json_response(
                    StatusCode::UNAUTHORIZED,
                    &json!({ "err": "authentication_failed",
                             "description": "a receiver's access token for the SSF API is required" }),
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
                return response;
            }
            ServiceError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again shortly".to_string(),
            ),
            other => {
                tracing::error!(error = %other, "shared signals request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the request could not be handled".to_string(),
                )
            }
        },
    };
    json_response(status, &json!({ "err": err, "description": description }))
}

/// A receiver holding its access token for the SSF API.
pub struct Receiver(pub ReceiverCaller);

impl FromRequestParts<AppState> for Receiver {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(scheme, token)| (scheme.to_ascii_lowercase(), token.trim().to_string()));
        let Some((scheme, token)) = authorization.filter(|(s, _)| s == "bearer" || s == "dpop")
        else {
            return Err(error_response(ServiceError::Unauthenticated.into()));
        };
        let issuer = state.app.signals.issuer();
        let url = format!("{issuer}{}", parts.uri.path());
        let chain = crate::pages::ClientChain::of(state, parts).0;
        let correlation = crate::extract::correlation_of(parts);
        let address = crate::extract::client_address(state, parts);
        let presented = tessera_service::oauth::Presented {
            token: &token,
            dpop_scheme: scheme == "dpop",
            proof: parts.headers.get("dpop").and_then(|v| v.to_str().ok()),
            method: parts.method.as_str(),
            url: &url,
            client_certificate: chain.first().map(Vec::as_slice),
            client_address: address.as_deref(),
        };
        state
            .app
            .signals
            .authenticate_receiver(&presented, &correlation, address.as_deref())
            .await
            .map(Receiver)
            .map_err(|e| error_response(e.into()))
    }
}

/// A JSON body, or a protocol error.
fn body_json(body: &Bytes) -> Result<Value, Response> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|_| {
        error_response(SignalsError::Protocol(tessera_ssf_error(
            "the body is not JSON",
        )))
    })
}

fn tessera_ssf_error(description: &str) -> tessera_service::signals::ProtocolError {
    tessera_service::signals::ProtocolError::invalid(description)
}

fn answer(result: Result<Value, SignalsError>, status: StatusCode) -> Response {
    match result {
        Ok(value) => json_response(status, &value),
        Err(error) => error_response(error),
    }
}

#[derive(serde::Deserialize)]
struct StreamQuery {
    stream_id: Option<String>,
}

async fn configuration(State(state): State<AppState>) -> Response {
    let mut response = json_response(StatusCode::OK, &state.app.signals.configuration());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

async fn get_streams(
    State(state): State<AppState>,
    Receiver(caller): Receiver,
    Query(query): Query<StreamQuery>,
) -> Response {
    let result = state
        .app
        .signals
        .get_streams(&caller, query.stream_id.as_deref())
        .await;
    answer(result, StatusCode::OK)
}

async fn create_stream(
    State(state): State<AppState>,
    Receiver(caller): Receiver,
    body: Bytes,
) -> Response {
    let body = match body_json(&body) {
        Ok(Value::Null) => json!({}),
        Ok(body) => body,
        Err(response) => return response,
    };
    answer(
        state.app.signals.create_stream(&caller, &body).await,
        StatusCode::CREATED,
    )
}

async fn change_stream(
    state: &AppState,
    caller: &ReceiverCaller,
    body: &Bytes,
    replace: bool,
) -> Response {
    let body = match body_json(body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    answer(
        state
            .app
            .signals
            .update_stream(caller, &body, replace)
            .await,
        StatusCode::OK,
    )
}

async fn update_stream(
    State(state): State<AppState>,
    Receiver(caller): Receiver,
    body: Bytes,
) -> Response {
    change_stream(&state, &caller, &body, false).await
}

async fn replace_stream(
    State(state): State<AppState>,
    Receiver(caller): Receiver,
    body: Bytes,
) -> Response {
    change_stream(&state, &caller, &body, true).await
}

fn required_stream(query: &StreamQuery) -> Result<&str, Response> {
    query
        .stream_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            error_response(SignalsError::Protocol(tessera_ssf_error(
                "`stream_id` is required",
            )))
        })
}

async fn delete_stream(
    State(state): State<AppState>,
    Receiver(caller): Receiver,
    Query(query): Query<StreamQuery>,
) -> Response {
    let stream = match required_stream(&query) {
        Ok(stream) => stream,
        Err(response) => return response,
    };
    match state.app.signals.delete_stream(&caller, stream).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error_response(error),
    }
}

async fn get_status(
    State(state): State<AppState>,
    Receiver(caller): Receiver,
    Query(query): Query<StreamQuery>,
) -> Response {
    let stream = match required_stream(&query) {
        Ok(stream) => stream,
        Err(response) => return response,
    };
    answer(
        state.app.signals.get_status(&caller, stream).await,
        StatusCode::OK,
    )
}

async fn set_status(
    State(state): State<AppState>,
    Receiver(caller): Receiver,
    body: Bytes,
) -> Response {
    let body = match body_json(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    answer(
        state.app.signals.set_status(&caller, &body).await,
        StatusCode::OK,
    )
}

async fn change_subject(
    state: &AppState,
    caller: &ReceiverCaller,
    body: &Bytes,
    add: bool,
) -> Response {
    let body = match body_json(body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    match state.app.signals.change_subject(caller, &body, add).await {
        Ok(()) if add => StatusCode::OK.into_response(),
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error_response(error),
    }
}

async fn add_subject(
    State(state): State<AppState>,
    Receiver(caller): Receiver,
    body: Bytes,
) -> Response {
    change_subject(&state, &caller, &body, true).await
}

async fn remove_subject(
    State(state): State<AppState>,
    Receiver(caller): Receiver,
    body: Bytes,
) -> Response {
    change_subject(&state, &caller, &body, false).await
}

async fn verify(
    State(state): State<AppState>,
    Receiver(caller): Receiver,
    body: Bytes,
) -> Response {
    let body = match body_json(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    match state.app.signals.verify(&caller, &body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error_response(error),
    }
}

async fn poll(
    State(state): State<AppState>,
    Receiver(caller): Receiver,
    Path(stream_id): Path<String>,
    body: Bytes,
) -> Response {
    let body = match body_json(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    answer(
        state.app.signals.poll(&caller, &stream_id, &body).await,
        StatusCode::OK,
    )
}

/// A SET pushed by a transmitter Tessera receives from (RFC 8935): 202 when
/// taken, else 400 (401 for a wrong credential) with `err` and
/// `description`.
async fn receive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refuse = |status: StatusCode, err: &str, description: &str| {
        json_response(status, &json!({ "err": err, "description": description }))
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "unknown receiver or wrong credential",
        );
    };
    let Ok(token) = std::str::from_utf8(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not a SET",
        );
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state
        .app
        .signals
        .receive_push(id, authorization, token.trim())
        .await
    {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(error) => {
            let status = match error.code {
                "authentication_failed" => StatusCode::UNAUTHORIZED,
                "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            // A replay is an invalid request on the wire.
            let code = if error.code == tessera_service::signals::REPLAYED {
                "invalid_request"
            } else {
                error.code
            };
            refuse(status, code, &error.description)
        }
    }
}

// ---- administrators -------------------------------------------------------------

crate::setting_handlers! {
    tag: "signals", path: "/api/v1/signals/settings",
    schema: tessera_service::signals::SignalsSettings, change: put,
    get: get_signals_settings => signals.settings,
    set: /// The applications that may receive shared signals (`receivers`: `appId`,
        /// `readOnly`); they get `ssf.manage` (or only `ssf.read`) by client credentials.
        set_signals_settings => signals.set_settings,
}

/// The streams Tessera transmits on, each with its state: queued SETs, lag,
/// deliveries, the last error.
#[utoipa::path(get, path = "/api/v1/signals/streams", tag = "signals",
    responses((status = 200, body = ValueList<tessera_service::signals::StreamView>)),
    security(("bearer" = [])))]
pub async fn list_signal_streams(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    let value = state.app.signals.list_streams(&ctx).await?;
    Ok(ok(&json!({ "value": value })))
}

/// Sends a verification event on a stream (no `state`).
#[utoipa::path(post, path = "/api/v1/signals/streams/{streamId}/verify", tag = "signals",
    params(("streamId" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn verify_signal_stream(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    crate::extract::Path(stream_id): crate::extract::Path<String>,
) -> ApiResult<Response> {
    state
        .app
        .signals
        .send_verification(&ctx, &stream_id)
        .await?;
    Ok(no_content())
}

/// The transmitters Tessera receives from, each with its counts and last error.
#[utoipa::path(get, path = "/api/v1/signals/receivers", tag = "signals",
    responses((status = 200, body = ValueList<tessera_service::signals::ReceivedStreamView>)),
    security(("bearer" = [])))]
pub async fn list_signal_receivers(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    let value = state.app.signals.list_receivers(&ctx).await?;
    Ok(ok(&json!({ "value": value })))
}

/// Receives from a transmitter: `displayName`, `issuer`, `delivery` (`push` or
/// `poll`), `audience`, and a credential for its API (`bearerToken`, or
/// `clientCredentials` with `tokenEndpoint`, `clientId`, `clientSecret`,
/// `scope`) to create the stream there; or `pollEndpoint` of a stream made
/// for Tessera. A push receiver's `pushSecret` is shown this once.
#[utoipa::path(post, path = "/api/v1/signals/receivers", tag = "signals",
    request_body = Object,
    responses((status = 201, body = tessera_service::signals::ReceivedStreamView), (status = 400, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_signal_receiver(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let view = state.app.signals.create_receiver(&ctx, body).await?;
    Ok(created(&view))
}

#[utoipa::path(delete, path = "/api/v1/signals/receivers/{id}", tag = "signals",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete_signal_receiver(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PathAt(at): PathAt,
) -> ApiResult<Response> {
    state.app.signals.delete_receiver(&ctx, at).await?;
    Ok(no_content())
}

/// A user's revocation timeline: the changes that ended or changed their
/// access, newest first (from the audit trail).
#[utoipa::path(get, path = "/api/v1/signals/users/{id}/timeline", tag = "signals",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ValueList<tessera_service::signals::TimelineEntry>)),
    security(("bearer" = [])))]
pub async fn user_revocation_timeline(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    crate::extract::Path(id): crate::extract::Path<Uuid>,
) -> ApiResult<Response> {
    let value = state.app.signals.revocation_timeline(&ctx, id).await?;
    Ok(ok(&json!({ "value": value })))
}

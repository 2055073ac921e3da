//! The SIEM export's sinks: `siem/sinks` (list, create) and `siem/sinks/{id}`
//! (get with its lag, change, remove).

use axum::extract::State;
use axum::response::Response;
use uuid::Uuid;

use crate::error::{ApiResult, Problem};
use crate::extract::{Caller, JsonBody, Path, PathAt};
use crate::routes::{no_content, ok, ok_versioned};
use crate::state::AppState;

/// The list of sinks, as `{"value": [...]}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SinkList {
    pub value: Vec<tessera_service::siem::SinkView>,
}

/// The tenant's SIEM sinks, each with how far it is behind.
#[utoipa::path(get, path = "/api/v1/siem/sinks", tag = "siem",
    responses((status = 200, body = SinkList)), security(("bearer" = [])))]
pub async fn list_sinks(State(state): State<AppState>, Caller(ctx): Caller) -> ApiResult<Response> {
    let value = state.app.siem.list_sinks(&ctx).await?;
    Ok(ok(&SinkList { value }))
}

/// A sink: `type` `syslog` (`host`, `port` (6514), `format` `json` or `cef`,
/// `serverName`), `https` (`url`, `secret` of 32 to 256 characters; each batch
/// is signed `Tessera-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`)
/// or `otlp` (`url` of the collector's `/v1/logs`, `authorization`); with
/// `displayName`, `streams` (`signIns`, `auditLogs`, `riskDetections`; all by
/// default), `enabled` and `caCertificate` (PEM: the only roots the receiver is
/// checked against). Secrets are write-only. The sink starts at the streams'
/// current ends.
#[utoipa::path(post, path = "/api/v1/siem/sinks", tag = "siem",
    request_body = Object,
    responses((status = 201, body = tessera_service::siem::SinkView), (status = 400, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_sink(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let sink = state.app.siem.create_sink(&ctx, body).await?;
    Ok(crate::routes::created_versioned(
        format!("/api/v1/siem/sinks/{}", sink.id),
        &sink,
        sink.version,
    ))
}

#[utoipa::path(get, path = "/api/v1/siem/sinks/{id}", tag = "siem",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = tessera_service::siem::SinkView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_sink(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let sink = state.app.siem.get_sink(&ctx, id).await?;
    let version = sink.version;
    Ok(ok_versioned(&sink, version))
}

/// Changes the members given (not the `type`); a secret left out stays.
#[utoipa::path(patch, path = "/api/v1/siem/sinks/{id}", tag = "siem",
    params(("id" = Uuid, Path)), request_body = Object,
    responses((status = 200, body = tessera_service::siem::SinkView), (status = 400, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_sink(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PathAt(at): PathAt,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let sink = state.app.siem.update_sink(&ctx, at.patch(body)).await?;
    let version = sink.version;
    Ok(ok_versioned(&sink, version))
}

/// Removes the sink and its cursors.
#[utoipa::path(delete, path = "/api/v1/siem/sinks/{id}", tag = "siem",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_sink(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PathAt(at): PathAt,
) -> ApiResult<Response> {
    state.app.siem.delete_sink(&ctx, at).await?;
    Ok(no_content())
}

//! The audit trail.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use tessera_core::Timestamp;
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{Caller, Query};
use crate::routes::{PageOf, ok};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditParams {
    /// Only events by this actor (object id).
    pub actor_id: Option<String>,
    /// Only events about this object (id).
    pub target_id: Option<String>,
    /// Only events of this action, e.g. `user.update`.
    pub action: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
    /// Only events at or before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/auditLogs/directoryAudits", tag = "audit", params(AuditParams),
    responses((status = 200, body = PageOf<tessera_service::AuditEntry>)),
    security(("bearer" = [])))]
pub async fn query_audit(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<AuditParams>,
) -> ApiResult<Response> {
    let filter = tessera_service::AuditFilter {
        actor_id: params.actor_id,
        target_id: params.target_id,
        action: params.action,
        since: params.since,
        until: params.until,
        cursor: params.cursor,
        limit: params.limit,
    };
    Ok(ok(&state.app.directory.query_audit(&ctx, &filter).await?))
}

#[utoipa::path(post, path = "/api/v1/auditLogs/verify", tag = "audit",
    responses((status = 200, body = tessera_service::VerifyReport, description = "whether the tenant's hash chain is intact, and the first problem if not")),
    security(("bearer" = [])))]
pub async fn verify_audit(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    Ok(ok(&state.app.directory.verify_audit(&ctx).await?))
}

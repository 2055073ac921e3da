//! Identity Protection: `identityProtection/riskDetections`, `riskyUsers`
//! and `riskyServicePrincipals` (with their history, `confirmCompromised` and
//! `dismiss`).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use tessera_core::Timestamp;
use tessera_service::risk::PrincipalKind;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiResult, Problem};
use crate::extract::{Caller, JsonBody, Path, Query};
use crate::routes::{PageOf, no_content, ok};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetectionParams {
    /// Users' detections only.
    pub user_id: Option<Uuid>,
    /// Workloads' detections only.
    pub service_principal_id: Option<Uuid>,
    /// A `riskEventType`, e.g. `anonymizedIPAddress`.
    pub risk_event_type: Option<String>,
    /// `low`, `medium` or `high`.
    pub risk_level: Option<String>,
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

impl From<DetectionParams> for tessera_service::risk::DetectionFilter {
    fn from(params: DetectionParams) -> Self {
        tessera_service::risk::DetectionFilter {
            user_id: params.user_id,
            service_principal_id: params.service_principal_id,
            risk_event_type: params.risk_event_type,
            risk_level: params.risk_level,
            since: params.since,
            until: params.until,
            cursor: params.cursor,
            limit: params.limit,
        }
    }
}

/// Risk detections, newest first: what Identity Protection found in sign-ins.
#[utoipa::path(get, path = "/api/v1/identityProtection/riskDetections", tag = "identityProtection",
    params(DetectionParams),
    responses((status = 200, body = PageOf<tessera_service::risk::RiskDetectionView>)),
    security(("bearer" = [])))]
pub async fn list_risk_detections(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<DetectionParams>,
) -> ApiResult<Response> {
    let filter = params.into();
    Ok(ok(&state.app.risk.list_detections(&ctx, &filter).await?))
}

/// Workloads' risk detections, newest first: a leaked client secret, a
/// replayed client assertion or unbound token, a source unlike the
/// workload's own.
#[utoipa::path(get, path = "/api/v1/identityProtection/servicePrincipalRiskDetections", tag = "identityProtection",
    params(DetectionParams),
    responses((status = 200, body = PageOf<tessera_service::risk::ServicePrincipalRiskDetectionView>)),
    security(("bearer" = [])))]
pub async fn list_service_principal_risk_detections(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<DetectionParams>,
) -> ApiResult<Response> {
    let filter = params.into();
    Ok(ok(&state
        .app
        .risk
        .list_service_principal_detections(&ctx, &filter)
        .await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RiskyParams {
    /// `none`, `low`, `medium` or `high`.
    #[param(value_type = Option<String>)]
    pub risk_level: Option<tessera_service::risk::RiskLevel>,
    /// `none`, `atRisk`, `remediated`, `dismissed` or `confirmedCompromised`.
    #[param(value_type = Option<String>)]
    pub risk_state: Option<tessera_service::risk::RiskyState>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

impl From<RiskyParams> for tessera_service::risk::RiskyFilter {
    fn from(params: RiskyParams) -> Self {
        tessera_service::risk::RiskyFilter {
            risk_level: params.risk_level,
            risk_state: params.risk_state,
            cursor: params.cursor,
            limit: params.limit,
        }
    }
}

/// `{"userIds": [...]}`: 1 to 60 users.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserIds {
    pub user_ids: Vec<Uuid>,
}

/// `{"servicePrincipalIds": [...]}`: 1 to 60 workloads.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipalIds {
    pub service_principal_ids: Vec<Uuid>,
}

fn body_of<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> ApiResult<T> {
    tessera_directory::patch::parse_spec(body)
        .map_err(|errors| crate::error::ApiError::from(tessera_service::ServiceError::from(errors)))
}

/// Users that have or had risk, by id. A page filtered by level or state may
/// hold fewer items than asked: follow `nextCursor`.
#[utoipa::path(get, path = "/api/v1/identityProtection/riskyUsers", tag = "identityProtection",
    params(RiskyParams),
    responses((status = 200, body = PageOf<tessera_service::risk::RiskyUserView>)),
    security(("bearer" = [])))]
pub async fn list_risky_users(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<RiskyParams>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .risk
        .list_risky_users(&ctx, &params.into())
        .await?))
}

#[utoipa::path(get, path = "/api/v1/identityProtection/riskyUsers/{id}", tag = "identityProtection",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = tessera_service::risk::RiskyUserView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_risky_user(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(ok(&state.app.risk.get_risky_user(&ctx, id).await?))
}

/// The changes of a user's risk, newest first.
#[utoipa::path(get, path = "/api/v1/identityProtection/riskyUsers/{id}/history", tag = "identityProtection",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Object, description = "{\"value\": [riskyUserHistoryItem]}"), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn risky_user_history(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let value = state
        .app
        .risk
        .risk_history(&ctx, PrincipalKind::User, id)
        .await?;
    Ok(ok(&serde_json::json!({ "value": value })))
}

/// Confirms users compromised: high risk until remediated or dismissed, and
/// their sessions and tokens end. All or nothing.
#[utoipa::path(post, path = "/api/v1/identityProtection/riskyUsers/confirmCompromised", tag = "identityProtection",
    request_body = UserIds,
    responses((status = 204), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn confirm_users_compromised(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let ids: UserIds = body_of(body)?;
    state
        .app
        .risk
        .confirm_compromised(&ctx, PrincipalKind::User, &ids.user_ids)
        .await?;
    Ok(no_content())
}

/// Dismisses every risk of the users (none until the next detection). All or
/// nothing.
#[utoipa::path(post, path = "/api/v1/identityProtection/riskyUsers/dismiss", tag = "identityProtection",
    request_body = UserIds,
    responses((status = 204), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn dismiss_risky_users(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let ids: UserIds = body_of(body)?;
    state
        .app
        .risk
        .dismiss(&ctx, PrincipalKind::User, &ids.user_ids)
        .await?;
    Ok(no_content())
}

/// Workloads that have or had risk, by id.
#[utoipa::path(get, path = "/api/v1/identityProtection/riskyServicePrincipals", tag = "identityProtection",
    params(RiskyParams),
    responses((status = 200, body = PageOf<tessera_service::risk::RiskyServicePrincipalView>)),
    security(("bearer" = [])))]
pub async fn list_risky_service_principals(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<RiskyParams>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .risk
        .list_risky_service_principals(&ctx, &params.into())
        .await?))
}

#[utoipa::path(get, path = "/api/v1/identityProtection/riskyServicePrincipals/{id}", tag = "identityProtection",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = tessera_service::risk::RiskyServicePrincipalView), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_risky_service_principal(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .risk
        .get_risky_service_principal(&ctx, id)
        .await?))
}

#[utoipa::path(get, path = "/api/v1/identityProtection/riskyServicePrincipals/{id}/history", tag = "identityProtection",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Object, description = "{\"value\": [riskyServicePrincipalHistoryItem]}"), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn risky_service_principal_history(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let value = state
        .app
        .risk
        .risk_history(&ctx, PrincipalKind::ServicePrincipal, id)
        .await?;
    Ok(ok(&serde_json::json!({ "value": value })))
}

/// Confirms workloads compromised (high risk until dismissed). All or nothing.
#[utoipa::path(post, path = "/api/v1/identityProtection/riskyServicePrincipals/confirmCompromised", tag = "identityProtection",
    request_body = ServicePrincipalIds,
    responses((status = 204), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn confirm_service_principals_compromised(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let ids: ServicePrincipalIds = body_of(body)?;
    state
        .app
        .risk
        .confirm_compromised(
            &ctx,
            PrincipalKind::ServicePrincipal,
            &ids.service_principal_ids,
        )
        .await?;
    Ok(no_content())
}

/// Dismisses every risk of the workloads. All or nothing.
#[utoipa::path(post, path = "/api/v1/identityProtection/riskyServicePrincipals/dismiss", tag = "identityProtection",
    request_body = ServicePrincipalIds,
    responses((status = 204), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn dismiss_risky_service_principals(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let ids: ServicePrincipalIds = body_of(body)?;
    state
        .app
        .risk
        .dismiss(
            &ctx,
            PrincipalKind::ServicePrincipal,
            &ids.service_principal_ids,
        )
        .await?;
    Ok(no_content())
}

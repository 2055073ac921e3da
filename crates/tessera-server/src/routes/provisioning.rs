//! Provisioning's management API: the tenant's provisioning settings and the
//! provisioning tokens for the SCIM API (`/scim/v2`, in `routes::scim`).

use axum::extract::State;
use axum::response::Response;
use uuid::Uuid;

use super::{ValueList, created, no_content, ok};
use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, Path};
use crate::state::AppState;

crate::setting_handlers! {
    tag: "provisioning", path: "/api/v1/provisioning/settings",
    schema: tessera_service::provisioning::ProvisioningSettings, change: put,
    get: get_provisioning_settings => provisioning.settings,
    set: /// How provisioned users are made: `defaultDomain`, added to a SCIM userName
        /// without `@` to make the user principal name.
        set_provisioning_settings => provisioning.set_settings,
}

#[utoipa::path(get, path = "/api/v1/provisioning/tokens", tag = "provisioning",
    responses((status = 200, body = ValueList<tessera_service::provisioning::ProvisioningToken>)),
    security(("bearer" = [])))]
pub async fn list_provisioning_tokens(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    let value = state.app.provisioning.list_tokens(&ctx).await?;
    Ok(ok(&serde_json::json!({ "value": value })))
}

/// A long-lived bearer token for the SCIM API (`/scim/v2`), with User Administrator
/// and Groups Administrator rights there and nowhere else. Whoever makes one must
/// hold what the SCIM API does.
#[utoipa::path(post, path = "/api/v1/provisioning/tokens", tag = "provisioning",
    request_body = tessera_service::provisioning::NewProvisioningToken,
    responses((status = 201, body = tessera_service::provisioning::CreatedProvisioningToken,
        description = "the token, shown this once")),
    security(("bearer" = [])))]
pub async fn create_provisioning_token(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(created(
        &state.app.provisioning.create_token(&ctx, body).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/provisioning/tokens/{id}", tag = "provisioning",
    params(("id" = Uuid, Path)), responses((status = 204)), security(("bearer" = [])))]
pub async fn delete_provisioning_token(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    state.app.provisioning.delete_token(&ctx, id).await?;
    Ok(no_content())
}

/// The attribute mapping from SCIM users to the directory's users in effect (the
/// default when the tenant has none; change it with `userMapping` in the
/// settings), with the functions and target attributes a mapping may use.
#[utoipa::path(get, path = "/api/v1/provisioning/mapping", tag = "provisioning",
    responses((status = 200, body = tessera_service::provisioning::mapping::UserMappingView)),
    security(("bearer" = [])))]
pub async fn get_user_mapping(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    Ok(ok(&state.app.provisioning.user_mapping(&ctx).await?))
}

/// What a mapping (`mapping`, else the tenant's) makes of a SCIM user
/// (`resource`), without writing anything: the directory attributes it sets.
#[utoipa::path(post, path = "/api/v1/provisioning/mapping/preview", tag = "provisioning",
    request_body = Object, responses((status = 200, body = Object)),
    security(("bearer" = [])))]
pub async fn preview_user_mapping(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .provisioning
        .preview_user_mapping(&ctx, body)
        .await?))
}

/// What an HR file (`content`, the file's text; `format` to override the
/// settings') would do, changing nothing: each row's action (create, update with
/// each attribute's before and after, unchanged, failed and why), the counts,
/// and whether a run would be held.
#[utoipa::path(post, path = "/api/v1/provisioning/hr/preview", tag = "provisioning",
    request_body = Object, responses((status = 200, body = Object)),
    security(("bearer" = [])))]
pub async fn preview_hr_import(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .provisioning
        .preview_hr_import(&ctx, body)
        .await?))
}

#[utoipa::path(get, path = "/api/v1/provisioning/hr/runs", tag = "provisioning",
    responses((status = 200, body = ValueList<tessera_service::provisioning::HrRun>)),
    security(("bearer" = [])))]
pub async fn list_hr_runs(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    let value = state.app.provisioning.hr_runs(&ctx).await?;
    Ok(ok(&serde_json::json!({ "value": value })))
}

/// Runs an HR file: applied at once, row by row, or held with its file when it
/// would change more than `maxChangedPercent` of the users with an anchor.
#[utoipa::path(post, path = "/api/v1/provisioning/hr/runs", tag = "provisioning",
    request_body = Object,
    responses((status = 201, body = tessera_service::provisioning::HrRun)),
    security(("bearer" = [])))]
pub async fn run_hr_import(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(created(
        &state.app.provisioning.run_hr_import(&ctx, body).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/provisioning/hr/runs/{id}", tag = "provisioning",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = tessera_service::provisioning::HrRun)),
    security(("bearer" = [])))]
pub async fn get_hr_run(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(ok(&state.app.provisioning.hr_run(&ctx, id).await?))
}

/// Approves a held run: planned again against the directory as it is, and
/// applied.
#[utoipa::path(post, path = "/api/v1/provisioning/hr/runs/{id}/approve", tag = "provisioning",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = tessera_service::provisioning::HrRun)),
    security(("bearer" = [])))]
pub async fn approve_hr_run(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(ok(&state.app.provisioning.approve_hr_run(&ctx, id).await?))
}

/// Rejects a held run: nothing of it is applied, and its file is dropped.
#[utoipa::path(post, path = "/api/v1/provisioning/hr/runs/{id}/reject", tag = "provisioning",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = tessera_service::provisioning::HrRun)),
    security(("bearer" = [])))]
pub async fn reject_hr_run(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(ok(&state.app.provisioning.reject_hr_run(&ctx, id).await?))
}

/// Lifecycle workflows (joiner, mover, leaver): a trigger, a scope and ordered
/// tasks; run by the `lifecycle` job, once per event.
#[utoipa::path(get, path = "/api/v1/lifecycle/workflows", tag = "provisioning",
    responses((status = 200, body = ValueList<tessera_service::lifecycle::WorkflowView>)),
    security(("bearer" = [])))]
pub async fn list_lifecycle_workflows(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    let value = state.app.lifecycle.list_workflows(&ctx).await?;
    Ok(ok(&serde_json::json!({ "value": value })))
}

/// Creates a workflow, checked whole; whoever creates it must be allowed its
/// tasks.
#[utoipa::path(post, path = "/api/v1/lifecycle/workflows", tag = "provisioning",
    request_body = Object,
    responses((status = 201, body = tessera_service::lifecycle::WorkflowView)),
    security(("bearer" = [])))]
pub async fn create_lifecycle_workflow(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(created(
        &state.app.lifecycle.create_workflow(&ctx, body).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/lifecycle/workflows/{id}", tag = "provisioning",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = tessera_service::lifecycle::WorkflowView)),
    security(("bearer" = [])))]
pub async fn get_lifecycle_workflow(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let workflow = state.app.lifecycle.get_workflow(&ctx, id).await?;
    Ok(super::ok_versioned(&workflow, workflow.version))
}

#[utoipa::path(put, path = "/api/v1/lifecycle/workflows/{id}", tag = "provisioning",
    params(("id" = Uuid, Path)), request_body = Object,
    responses((status = 200, body = tessera_service::lifecycle::WorkflowView)),
    security(("bearer" = [])))]
pub async fn replace_lifecycle_workflow(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    crate::extract::IfMatch(if_match): crate::extract::IfMatch,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .lifecycle
        .replace_workflow(&ctx, id, tessera_service::Replacement::new(body, if_match))
        .await?))
}

#[utoipa::path(delete, path = "/api/v1/lifecycle/workflows/{id}", tag = "provisioning",
    params(("id" = Uuid, Path)), responses((status = 204)), security(("bearer" = [])))]
pub async fn delete_lifecycle_workflow(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    state.app.lifecycle.delete_workflow(&ctx, id).await?;
    Ok(no_content())
}

/// A workflow's runs, newest first: the user, what fired it, each task's result.
#[utoipa::path(get, path = "/api/v1/lifecycle/workflows/{id}/runs", tag = "provisioning",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ValueList<tessera_service::lifecycle::LifecycleRun>)),
    security(("bearer" = [])))]
pub async fn list_lifecycle_runs(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let value = state.app.lifecycle.lifecycle_runs(&ctx, Some(id)).await?;
    Ok(ok(&serde_json::json!({ "value": value })))
}

/// An application's outbound provisioning settings (its SCIM endpoint, scope,
/// mapping; the token is never shown, only whether there is one).
#[utoipa::path(get, path = "/api/v1/servicePrincipals/{id}/provisioning", tag = "provisioning",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = tessera_service::provisioning::outbound::OutboundSettings)),
    security(("bearer" = [])))]
pub async fn get_outbound_provisioning(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let settings = state.app.provisioning.outbound_settings(&ctx, id).await?;
    Ok(super::ok_versioned(&settings, settings.version))
}

/// Sets an application's outbound provisioning whole, checked (the mapping
/// compiled, the endpoint an https URL). A change of reach makes the next cycle
/// a full one.
#[utoipa::path(put, path = "/api/v1/servicePrincipals/{id}/provisioning", tag = "provisioning",
    params(("id" = Uuid, Path)),
    request_body = tessera_service::provisioning::outbound::OutboundSettingsBody,
    responses((status = 200, body = tessera_service::provisioning::outbound::OutboundSettings)),
    security(("bearer" = [])))]
pub async fn set_outbound_provisioning(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    crate::extract::PathAt(at): crate::extract::PathAt,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let settings = state
        .app
        .provisioning
        .set_outbound_settings(&ctx, at, body)
        .await?;
    Ok(super::ok_versioned(&settings, settings.version))
}

/// Stops an application's outbound provisioning; what it holds stays there.
#[utoipa::path(delete, path = "/api/v1/servicePrincipals/{id}/provisioning", tag = "provisioning",
    params(("id" = Uuid, Path)), responses((status = 204)), security(("bearer" = [])))]
pub async fn delete_outbound_provisioning(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    state
        .app
        .provisioning
        .delete_outbound_settings(&ctx, id)
        .await?;
    Ok(no_content())
}

/// How an application's provisioning is going: active, paused or quarantined,
/// what it holds, the last cycle.
#[utoipa::path(get, path = "/api/v1/servicePrincipals/{id}/provisioning/status", tag = "provisioning",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = tessera_service::provisioning::outbound::OutboundStatus)),
    security(("bearer" = [])))]
pub async fn outbound_provisioning_status(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .provisioning
        .outbound_status(&ctx, id)
        .await?))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunBody {
    /// Every object, not only those changed since the last cycle.
    #[serde(default)]
    pub full: bool,
}

/// Runs a cycle now (a quarantine is lifted first) and answers with how it went.
#[utoipa::path(post, path = "/api/v1/servicePrincipals/{id}/provisioning/run", tag = "provisioning",
    params(("id" = Uuid, Path)), request_body = RunBody,
    responses((status = 200, body = tessera_service::provisioning::outbound::CycleSummary)),
    security(("bearer" = [])))]
pub async fn run_outbound_provisioning(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    crate::extract::OptionalJsonBody(body): crate::extract::OptionalJsonBody,
) -> ApiResult<Response> {
    let body: RunBody = match body {
        Some(body) => tessera_directory::patch::parse_spec(body)
            .map_err(tessera_service::ServiceError::from)?,
        None => RunBody::default(),
    };
    Ok(ok(&state
        .app
        .provisioning
        .run_outbound_now(&ctx, id, body.full)
        .await?))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OnDemandBody {
    pub user_id: Uuid,
}

/// Provisions one user now, whatever the schedule, and tells each step.
#[utoipa::path(post, path = "/api/v1/servicePrincipals/{id}/provisioning/provisionOnDemand", tag = "provisioning",
    params(("id" = Uuid, Path)), request_body = OnDemandBody,
    responses((status = 200, body = tessera_service::provisioning::outbound::OnDemandReport)),
    security(("bearer" = [])))]
pub async fn provision_on_demand(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let body: OnDemandBody =
        tessera_directory::patch::parse_spec(body).map_err(tessera_service::ServiceError::from)?;
    Ok(ok(&state
        .app
        .provisioning
        .provision_on_demand(&ctx, id, body.user_id)
        .await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogParams {
    /// One object's entries only.
    pub object_id: Option<Uuid>,
    /// At most this many (1 to 500, default 100).
    pub limit: Option<u32>,
    /// Entries older than this `seq` (the cursor).
    pub before: Option<i64>,
}

/// The provisioning log, newest first: one entry per object and attempt (what
/// was done, success or failure with the application's words, the attributes
/// changed).
#[utoipa::path(get, path = "/api/v1/servicePrincipals/{id}/provisioning/log", tag = "provisioning",
    params(("id" = Uuid, Path), LogParams),
    responses((status = 200, body = ValueList<Object>)),
    security(("bearer" = [])))]
pub async fn outbound_provisioning_log(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    crate::extract::Query(params): crate::extract::Query<LogParams>,
) -> ApiResult<Response> {
    let value = state
        .app
        .provisioning
        .outbound_log(
            &ctx,
            id,
            params.object_id,
            params.limit.unwrap_or(100),
            params.before,
        )
        .await?;
    Ok(ok(&serde_json::json!({ "value": value })))
}

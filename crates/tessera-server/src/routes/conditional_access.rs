//! Conditional Access: policies, named locations and terms of use in Graph's JSON,
//! the import of Entra exports, What-If, security defaults and risk.

use axum::extract::State;
use axum::response::Response;
use tessera_service::conditional_access::{ImportRequest, WhatIf};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Caller, JsonBody, Path, PathAt};
use crate::routes::{no_content, ok, ok_versioned};
use crate::setting_handlers;
use crate::state::AppState;

fn list<T: serde::Serialize>(items: Vec<T>) -> Response {
    ok(&serde_json::json!({ "value": items }))
}

fn typed<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> ApiResult<T> {
    tessera_directory::patch::parse_spec(body)
        .map_err(|errors| ApiError::from(tessera_service::ServiceError::from(errors)))
}

#[utoipa::path(get, path = "/api/v1/identity/conditionalAccess/policies", tag = "conditionalAccess",
    responses((status = 200, body = Object, description = "{\"value\": [conditionalAccessPolicy]}"), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_policies(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    Ok(list(state.app.access.list_policies(&ctx).await?))
}

/// Creates a policy from Graph's `conditionalAccessPolicy` JSON (OData annotations
/// and read-only fields are ignored; unsupported features are refused).
#[utoipa::path(post, path = "/api/v1/identity/conditionalAccess/policies", tag = "conditionalAccess",
    request_body = Object,
    responses((status = 201, body = Object), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_policy(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let policy = state.app.access.create_policy(&ctx, body).await?;
    Ok(crate::routes::created_versioned(
        format!("/api/v1/identity/conditionalAccess/policies/{}", policy.id),
        &policy,
        1,
    ))
}

#[utoipa::path(get, path = "/api/v1/identity/conditionalAccess/policies/{id}", tag = "conditionalAccess",
    params(("id" = Uuid, Path)), responses((status = 200, body = Object), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_policy(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let (policy, version) = state.app.access.get_policy(&ctx, id).await?;
    Ok(ok_versioned(&policy, version))
}

/// A JSON merge patch; `If-Match` with the ETag guards against lost updates.
#[utoipa::path(patch, path = "/api/v1/identity/conditionalAccess/policies/{id}", tag = "conditionalAccess",
    params(("id" = Uuid, Path)), request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = Problem), (status = 404, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_policy(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PathAt(at): PathAt,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .access
        .update_policy(&ctx, at.patch(body))
        .await?))
}

#[utoipa::path(delete, path = "/api/v1/identity/conditionalAccess/policies/{id}", tag = "conditionalAccess",
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete_policy(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    state.app.access.delete_policy(&ctx, id).await?;
    Ok(no_content())
}

#[utoipa::path(get, path = "/api/v1/identity/conditionalAccess/namedLocations", tag = "conditionalAccess",
    responses((status = 200, body = Object, description = "{\"value\": [namedLocation]}")), security(("bearer" = [])))]
pub async fn list_locations(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    Ok(list(state.app.access.list_named_locations(&ctx).await?))
}

/// `#microsoft.graph.ipNamedLocation` (IP ranges, trusted or not) or
/// `#microsoft.graph.countryNamedLocation` (countries, with or without unknown ones).
#[utoipa::path(post, path = "/api/v1/identity/conditionalAccess/namedLocations", tag = "conditionalAccess",
    request_body = Object, responses((status = 201, body = Object), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn create_location(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let location = state.app.access.create_named_location(&ctx, body).await?;
    Ok(crate::routes::created_versioned(
        format!(
            "/api/v1/identity/conditionalAccess/namedLocations/{}",
            location.id
        ),
        &location,
        1,
    ))
}

#[utoipa::path(get, path = "/api/v1/identity/conditionalAccess/namedLocations/{id}", tag = "conditionalAccess",
    params(("id" = Uuid, Path)), responses((status = 200, body = Object), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_location(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let (location, version) = state.app.access.get_named_location(&ctx, id).await?;
    Ok(ok_versioned(&location, version))
}

#[utoipa::path(patch, path = "/api/v1/identity/conditionalAccess/namedLocations/{id}", tag = "conditionalAccess",
    params(("id" = Uuid, Path)), request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = Problem), (status = 412, body = Problem)), security(("bearer" = [])))]
pub async fn update_location(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PathAt(at): PathAt,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .access
        .update_named_location(&ctx, at.patch(body))
        .await?))
}

/// Refused (409) while a policy names the location.
#[utoipa::path(delete, path = "/api/v1/identity/conditionalAccess/namedLocations/{id}", tag = "conditionalAccess",
    params(("id" = Uuid, Path)), responses((status = 204), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn delete_location(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    state.app.access.delete_named_location(&ctx, id).await?;
    Ok(no_content())
}

#[utoipa::path(get, path = "/api/v1/identity/conditionalAccess/termsOfUse", tag = "conditionalAccess",
    responses((status = 200, body = Object)), security(("bearer" = [])))]
pub async fn list_terms(State(state): State<AppState>, Caller(ctx): Caller) -> ApiResult<Response> {
    Ok(list(state.app.access.list_terms_of_use(&ctx).await?))
}

/// `{"displayName": ..., "content": ...}`: terms a policy can require users to accept.
#[utoipa::path(post, path = "/api/v1/identity/conditionalAccess/termsOfUse", tag = "conditionalAccess",
    request_body = Object, responses((status = 201, body = Object), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn create_terms(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let terms = state.app.access.create_terms_of_use(&ctx, body).await?;
    Ok(crate::routes::created(&terms))
}

/// New text must be accepted again.
#[utoipa::path(patch, path = "/api/v1/identity/conditionalAccess/termsOfUse/{id}", tag = "conditionalAccess",
    params(("id" = Uuid, Path)), request_body = Object, responses((status = 200, body = Object), (status = 400, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_terms(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PathAt(at): PathAt,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .access
        .update_terms_of_use(&ctx, at.patch(body))
        .await?))
}

#[utoipa::path(delete, path = "/api/v1/identity/conditionalAccess/termsOfUse/{id}", tag = "conditionalAccess",
    params(("id" = Uuid, Path)), responses((status = 204), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn delete_terms(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    state.app.access.delete_terms_of_use(&ctx, id).await?;
    Ok(no_content())
}

/// Imports an export: `{"policies": [{"file", "document"}], "namedLocations": [...],
/// "groups": [...], "migrationTable": ..., "skipErrors": false, "dryRun": false,
/// "state": null}`. Nothing is written when any item has an error, unless
/// `skipErrors`; the report says what was mapped, warned and refused, per item.
/// `plannedPolicies` and `plannedNamedLocations` say what the import writes (for a
/// dry run: would write); `warnings` what concerns the tenant (security defaults
/// staying on beside the imported policies).
#[utoipa::path(post, path = "/api/v1/identity/conditionalAccess/import", tag = "conditionalAccess",
    request_body = Object, responses((status = 200, body = tessera_service::conditional_access::ImportResult), (status = 400, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let request: ImportRequest = typed(body)?;
    Ok(ok(&state.app.access.import(&ctx, request).await?))
}

/// What-If: which policies would apply to a described sign-in, and why. The
/// application may be named by application (client) id, object id or display name;
/// one that does not exist (or a name two applications share) is a 400 naming it.
/// The answer is the explanation the sign-in log keeps, with `warnings` (e.g. no
/// country database while a country location was evaluated).
#[utoipa::path(post, path = "/api/v1/identity/conditionalAccess/evaluate", tag = "conditionalAccess",
    request_body = WhatIf,
    responses((status = 200, body = Object, description = "{\"result\", \"policies\": [...], \"sessionControls\", \"remedy\", \"warnings\": [string]}"), (status = 400, body = Problem)),
    security(("bearer" = [])))]
pub async fn evaluate(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let question: WhatIf = typed(body)?;
    Ok(ok(&state.app.access.what_if(&ctx, question).await?))
}

setting_handlers! {
    tag: "conditionalAccess", path: "/api/v1/policies/identitySecurityDefaultsEnforcementPolicy",
    schema: Object, change: patch,
    get: get_security_defaults => access.get_setting_versioned::<tessera_service::conditional_access::SecurityDefaults>,
    set: /// `{"isEnabled": false}` turns security defaults off.
        set_security_defaults => access.set_security_defaults,
}

#[utoipa::path(get, path = "/api/v1/identityProtection/risk/{id}", tag = "conditionalAccess",
    params(("id" = Uuid, Path)), responses((status = 200, body = Object)), security(("bearer" = [])))]
pub async fn get_risk(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(ok(&state.app.risk.get_risk(&ctx, id).await?))
}

/// Reports a user's (or workload's) risk, as another identity protection
/// source would: `{"riskLevel": "high"}` counts like a detection of that level
/// (`none` dismisses), and the risk of their sign-ins for a while:
/// `{"signInRiskLevel": "medium", "signInRiskSeconds": 3600}`.
#[utoipa::path(put, path = "/api/v1/identityProtection/risk/{id}", tag = "conditionalAccess",
    params(("id" = Uuid, Path)), request_body = Object,
    responses((status = 200, body = Object), (status = 400, body = Problem), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn set_risk(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(ok(&state.app.risk.report_risk(&ctx, id, body).await?))
}

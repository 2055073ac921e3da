//! Role definitions, role assignments and custom security attribute definitions.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use tessera_directory::model::{
    AttributeDefinition, AttributeDefinitionSpec, RoleAssignment, RoleAssignmentSpec,
};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, Path, PathAt, Query};
use crate::routes::{PageOf, PageParams, created_versioned, no_content, ok, ok_versioned};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/roleManagement/directory/roleDefinitions", tag = "roles",
    responses((status = 200, body = PageOf<tessera_service::RoleDefinitionView>)), security(("bearer" = [])))]
pub async fn list_role_definitions(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    Ok(ok(&state.app.directory.list_role_definitions(&ctx).await?))
}

#[utoipa::path(get, path = "/api/v1/roleManagement/directory/roleDefinitions/{id}", tag = "roles",
    params(("id" = String, Path, description = "role template id or display name")),
    responses((status = 200, body = tessera_service::RoleDefinitionView)), security(("bearer" = [])))]
pub async fn get_role_definition(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .directory
        .get_role_definition(&ctx, &id)
        .await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentParams {
    /// Only assignments held by this principal.
    pub principal_id: Option<Uuid>,
    /// Only assignments of this role.
    pub role_definition_id: Option<Uuid>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/roleManagement/directory/roleAssignments", tag = "roles", params(AssignmentParams),
    responses((status = 200, body = PageOf<RoleAssignment>)), security(("bearer" = [])))]
pub async fn list_role_assignments(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<AssignmentParams>,
) -> ApiResult<Response> {
    let request = tessera_service::PageRequest {
        cursor: params.cursor,
        limit: params.limit,
        search: None,
    };
    Ok(ok(&state
        .app
        .directory
        .list_role_assignments(
            &ctx,
            params.principal_id,
            params.role_definition_id,
            &request,
        )
        .await?))
}

#[utoipa::path(post, path = "/api/v1/roleManagement/directory/roleAssignments", tag = "roles", request_body = RoleAssignmentSpec,
    responses((status = 201, body = RoleAssignment)),
    security(("bearer" = [])))]
pub async fn create_role_assignment(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let assignment = state
        .app
        .directory
        .create_role_assignment(&ctx, body)
        .await?;
    let location = format!(
        "/api/v1/roleManagement/directory/roleAssignments/{}",
        assignment.id
    );
    Ok(created_versioned(location, &assignment, assignment.version))
}

#[utoipa::path(get, path = "/api/v1/roleManagement/directory/roleAssignments/{id}", tag = "roles", params(("id" = Uuid, Path)),
    responses((status = 200, body = RoleAssignment)), security(("bearer" = [])))]
pub async fn get_role_assignment(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let assignment = state.app.directory.get_role_assignment(&ctx, id).await?;
    Ok(ok_versioned(&assignment, assignment.version))
}

#[utoipa::path(delete, path = "/api/v1/roleManagement/directory/roleAssignments/{id}", tag = "roles", params(("id" = Uuid, Path)),
    responses((status = 204)), security(("bearer" = [])))]
pub async fn delete_role_assignment(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    state.app.directory.delete_role_assignment(&ctx, id).await?;
    Ok(no_content())
}

#[utoipa::path(get, path = "/api/v1/directory/customSecurityAttributeDefinitions", tag = "customSecurityAttributes", params(PageParams),
    responses((status = 200, body = PageOf<AttributeDefinition>)), security(("bearer" = [])))]
pub async fn list_attribute_definitions(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .directory
        .list_attribute_definitions(&ctx, &params.request())
        .await?))
}

#[utoipa::path(post, path = "/api/v1/directory/customSecurityAttributeDefinitions", tag = "customSecurityAttributes",
    request_body = AttributeDefinitionSpec,
    responses((status = 201, body = AttributeDefinition)),
    security(("bearer" = [])))]
pub async fn create_attribute_definition(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let definition = state
        .app
        .directory
        .create_attribute_definition(&ctx, body)
        .await?;
    let location = format!(
        "/api/v1/directory/customSecurityAttributeDefinitions/{}",
        definition.id
    );
    Ok(created_versioned(location, &definition, definition.version))
}

#[utoipa::path(get, path = "/api/v1/directory/customSecurityAttributeDefinitions/{id}", tag = "customSecurityAttributes",
    params(("id" = String, Path, description = "{attributeSet}_{name}")),
    responses((status = 200, body = AttributeDefinition)), security(("bearer" = [])))]
pub async fn get_attribute_definition(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let definition = state
        .app
        .directory
        .get_attribute_definition(&ctx, &id)
        .await?;
    Ok(ok_versioned(&definition, definition.version))
}

#[utoipa::path(patch, path = "/api/v1/directory/customSecurityAttributeDefinitions/{id}", tag = "customSecurityAttributes",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Object, description = "JSON merge patch: description, status, allowedValues (add only), usePreDefinedValuesOnly (true to false)"),
    responses((status = 200, body = AttributeDefinition)),
    security(("bearer" = [])))]
pub async fn update_attribute_definition(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    PathAt(at): PathAt<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let definition = state
        .app
        .directory
        .update_attribute_definition(&ctx, at.as_deref().patch(body))
        .await?;
    Ok(ok_versioned(&definition, definition.version))
}

//! Users, groups, devices and administrative units.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tessera_directory::model::{
    AdministrativeUnit, AdministrativeUnitSpec, Device, DeviceSpec, DirectoryObjectRef, Group,
    GroupSpec, User, UserSpec,
};
use tessera_store::Kind;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, Path, Query};
use crate::routes::{PageOf, PageParams, no_content, ok};
use crate::state::AppState;
use crate::{crud_handlers, owner_handlers};

/// A reference to a directory object, the body of membership and ownership requests.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub id: Uuid,
}

crud_handlers! {
    tag: "users", collection: "/api/v1/users", item: "/api/v1/users/{id}",
    spec: UserSpec, object: User,
    list: list_users => list::<UserSpec>, create: create_user => create_user, get: get_user => get::<UserSpec>,
    update: update_user => update_user, delete: delete_user => delete_user,
}

crud_handlers! {
    tag: "groups", collection: "/api/v1/groups", item: "/api/v1/groups/{id}",
    spec: GroupSpec, object: Group,
    list: list_groups => list::<GroupSpec>, create: create_group => create_group, get: get_group => get::<GroupSpec>,
    update: update_group => update_group, delete: delete_group => delete_group,
}

crud_handlers! {
    tag: "devices", collection: "/api/v1/devices", item: "/api/v1/devices/{id}",
    spec: DeviceSpec, object: Device,
    list: list_devices => list::<DeviceSpec>, create: create_device => create_device, get: get_device => get::<DeviceSpec>,
    update: update_device => update_device, delete: delete_device => delete_device,
}

crud_handlers! {
    tag: "administrativeUnits", collection: "/api/v1/administrativeUnits", item: "/api/v1/administrativeUnits/{id}",
    spec: AdministrativeUnitSpec, object: AdministrativeUnit,
    list: list_units => list::<AdministrativeUnitSpec>, create: create_unit => create_administrative_unit,
    get: get_unit => get::<AdministrativeUnitSpec>, update: update_unit => update_administrative_unit,
    delete: delete_unit => delete_administrative_unit,
}

owner_handlers! {
    tag: "groups", kind: Kind::Group, path: "/api/v1/groups/{id}/owners", item: "/api/v1/groups/{id}/owners/{ownerId}",
    list: list_group_owners, add: add_group_owner, remove: remove_group_owner,
}

/// Users to create all together or not at all (documentation type; the service reads
/// the body).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UserImport {
    #[schema(min_items = 1, max_items = 1000)]
    users: Vec<UserSpec>,
}

/// The users an import created.
#[derive(Serialize, ToSchema)]
pub struct ImportedUsers {
    pub created: usize,
    /// Their ids, in the order of the request.
    pub ids: Vec<Uuid>,
}

#[utoipa::path(post, path = "/api/v1/users/import", tag = "users",
    request_body = UserImport,
    responses((status = 200, body = ImportedUsers)),
    security(("bearer" = [])))]
pub async fn import_users(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let ids = state.app.directory.import_users(&ctx, body).await?;
    Ok(ok(&ImportedUsers {
        created: ids.len(),
        ids,
    }))
}

#[utoipa::path(get, path = "/api/v1/users/byPrincipalName/{userPrincipalName}", tag = "users",
    params(("userPrincipalName" = String, Path)),
    responses((status = 200, body = User)), security(("bearer" = [])))]
pub async fn get_user_by_principal_name(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(upn): Path<String>,
) -> ApiResult<Response> {
    let user = state
        .app
        .directory
        .get_user_by_principal_name(&ctx, &upn)
        .await?;
    Ok(crate::routes::ok_versioned(&user, user.version))
}

#[utoipa::path(get, path = "/api/v1/users/{id}/memberOf", tag = "users", params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = PageOf<DirectoryObjectRef>)), security(("bearer" = [])))]
pub async fn user_member_of(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .directory
        .user_member_of(&ctx, id, false, &params.request())
        .await?))
}

#[utoipa::path(get, path = "/api/v1/users/{id}/transitiveMemberOf", tag = "users", params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = PageOf<DirectoryObjectRef>)), security(("bearer" = [])))]
pub async fn user_transitive_member_of(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .directory
        .user_member_of(&ctx, id, true, &params.request())
        .await?))
}

#[utoipa::path(get, path = "/api/v1/groups/{id}/members", tag = "groups", params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = PageOf<DirectoryObjectRef>)), security(("bearer" = [])))]
pub async fn list_group_members(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .directory
        .list_group_members(&ctx, id, false, &params.request())
        .await?))
}

#[utoipa::path(get, path = "/api/v1/groups/{id}/transitiveMembers", tag = "groups", params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = PageOf<DirectoryObjectRef>)), security(("bearer" = [])))]
pub async fn list_group_transitive_members(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .directory
        .list_group_members(&ctx, id, true, &params.request())
        .await?))
}

#[utoipa::path(post, path = "/api/v1/groups/{id}/members", tag = "groups", params(("id" = Uuid, Path)), request_body = Reference,
    responses((status = 204)),
    security(("bearer" = [])))]
pub async fn add_group_member(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    state.app.directory.add_group_member(&ctx, id, body).await?;
    Ok(no_content())
}

#[utoipa::path(delete, path = "/api/v1/groups/{id}/members/{memberId}", tag = "groups", params(("id" = Uuid, Path), ("memberId" = Uuid, Path)),
    responses((status = 204)), security(("bearer" = [])))]
pub async fn remove_group_member(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((id, member)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    state
        .app
        .directory
        .remove_group_member(&ctx, id, member)
        .await?;
    Ok(no_content())
}

#[utoipa::path(get, path = "/api/v1/administrativeUnits/{id}/members", tag = "administrativeUnits", params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = PageOf<DirectoryObjectRef>)), security(("bearer" = [])))]
pub async fn list_unit_members(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .directory
        .list_administrative_unit_members(&ctx, id, &params.request())
        .await?))
}

#[utoipa::path(post, path = "/api/v1/administrativeUnits/{id}/members", tag = "administrativeUnits", params(("id" = Uuid, Path)),
    request_body = Reference, responses((status = 204)),
    security(("bearer" = [])))]
pub async fn add_unit_member(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    state
        .app
        .directory
        .add_administrative_unit_member(&ctx, id, body)
        .await?;
    Ok(no_content())
}

#[utoipa::path(delete, path = "/api/v1/administrativeUnits/{id}/members/{memberId}", tag = "administrativeUnits",
    params(("id" = Uuid, Path), ("memberId" = Uuid, Path)), responses((status = 204)),
    security(("bearer" = [])))]
pub async fn remove_unit_member(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((id, member)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    state
        .app
        .directory
        .remove_administrative_unit_member(&ctx, id, member)
        .await?;
    Ok(no_content())
}

/// The device compliance API, for a device manager that does not speak
/// Shared Signals: `{"value": [{deviceId, isCompliant, isManaged,
/// complianceGracePeriodExpirationDateTime, complianceReason}]}` (up to 1000),
/// all or nothing. A device manager the signals settings name
/// (`deviceManagers`) calls it with a client-credentials token for
/// `urn:tessera:ssf` holding `DeviceCompliance.ReadWrite.All`; an
/// administrator needs the compliance permission (Intune Administrator).
/// Answers how many devices changed.
#[utoipa::path(post, path = "/api/v1/devices/compliance", tag = "devices",
    request_body = tessera_service::directory::devices::ComplianceReports,
    responses((status = 200, body = Object, description = "{\"changed\": number}"),
        (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn report_device_compliance(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    crate::extract::ComplianceCaller(ctx): crate::extract::ComplianceCaller,
    crate::extract::JsonBody(body): crate::extract::JsonBody,
) -> crate::error::ApiResult<axum::response::Response> {
    let changed = state.app.directory.report_compliance(&ctx, body).await?;
    Ok(super::ok(&serde_json::json!({ "changed": changed })))
}

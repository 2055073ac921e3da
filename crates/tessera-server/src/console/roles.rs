//! Directory roles and administrative units in the console: the built-in roles,
//! who holds each (tenant-wide or in a unit) with assigning and removing, and the
//! units with their members.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tessera_directory::model::{
    AdministrativeUnit, AdministrativeUnitSpec, GroupSpec, ObjectType, RoleAssignment, UserSpec,
};
use tessera_directory::roles::action;
use tessera_service::{PageRequest, RoleDefinitionView, ServiceError};
use uuid::Uuid;

use super::{
    Admin, ListQuery, Listing, Posted, confirm_delete_of, delete_at, done, holds, named_object,
    refused,
};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/roles", get(roles))
        .route("/admin/roles/{id}", get(role))
        .route("/admin/roles/{id}/assignments", post(assign))
        .route(
            "/admin/roles/{id}/assignments/{assignment}/remove",
            post(unassign),
        )
        .route("/admin/units", get(units).post(create_unit))
        .route("/admin/units/{id}", get(unit))
        .route("/admin/units/{id}/members", post(add_member))
        .route(
            "/admin/units/{id}/members/{member}/remove",
            post(remove_member),
        )
        .route(
            "/admin/units/{id}/delete",
            get(confirm_delete_unit).post(delete_unit),
        )
}

const FIRST_PAGE: PageRequest = PageRequest {
    cursor: None,
    limit: Some(200),
    search: None,
};

#[derive(Template)]
#[template(path = "console/roles.html")]
struct RolesPage<'a> {
    admin: &'a Admin,
    roles: Vec<RoleDefinitionView>,
}

async fn roles(State(state): State<AppState>, admin: Admin) -> Response {
    match state.app.directory.list_role_definitions(&admin.ctx).await {
        Ok(page) => pages::page(
            StatusCode::OK,
            &RolesPage {
                admin: &admin,
                roles: page.value,
            },
        ),
        Err(error) => refused(error),
    }
}

/// One assignment as the role's page lists it.
struct Holder {
    assignment: Uuid,
    name: String,
    scope: String,
    /// Given by PIM (an activation or a time-bound assignment): until when.
    pim_until: Option<String>,
}

#[derive(Template)]
#[template(path = "console/role.html")]
struct RolePage<'a> {
    admin: &'a Admin,
    role: RoleDefinitionView,
    holders: Option<Vec<Holder>>,
    /// Who may activate the role (PIM eligibility), when the caller may see it.
    eligible: Vec<Holder>,
    units: Vec<AdministrativeUnit>,
    notice: Option<&'static str>,
    error: Option<String>,
    may_assign: bool,
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn role(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let notice = match query.done.as_deref() {
        Some("assigned") => Some("The role was assigned."),
        Some("removed") => Some("The assignment was removed."),
        _ => None,
    };
    role_page(&state, &admin, &id, notice, None, StatusCode::OK).await
}

/// The name of an assignment's principal, as the caller may read it.
async fn principal_name(state: &AppState, admin: &Admin, id: Uuid) -> String {
    let directory = &state.app.directory;
    if let Ok(user) = directory.get::<UserSpec>(&admin.ctx, id).await {
        return user.spec.user_principal_name;
    }
    if let Ok(group) = directory.get::<GroupSpec>(&admin.ctx, id).await {
        return format!("{} (group)", group.spec.display_name);
    }
    id.to_string()
}

async fn role_page(
    state: &AppState,
    admin: &Admin,
    id: &str,
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let directory = &state.app.directory;
    let role = match directory.get_role_definition(&admin.ctx, id).await {
        Ok(role) => role,
        Err(error) => return refused(error),
    };
    let holders = match directory
        .list_role_assignments(&admin.ctx, None, Some(role.id), &FIRST_PAGE)
        .await
    {
        Ok(page) => {
            let mut holders = Vec::new();
            for RoleAssignment {
                id,
                spec,
                managed_by_pim,
                end_date_time,
                ..
            } in page.value
            {
                holders.push(Holder {
                    assignment: id,
                    name: principal_name(state, admin, spec.principal_id).await,
                    scope: scope_name(state, admin, &spec.directory_scope_id).await,
                    pim_until: managed_by_pim.then(|| {
                        end_date_time
                            .map(|end| end.to_string())
                            .unwrap_or_else(|| "no end".to_string())
                    }),
                });
            }
            Some(holders)
        }
        Err(ServiceError::Forbidden { .. }) => None,
        Err(error) => return refused(error),
    };
    let mut eligible = Vec::new();
    if let Ok(page) = state
        .app
        .pim
        .list_instances(
            &admin.ctx,
            tessera_service::pim::Family::Roles,
            tessera_service::pim::ScheduleKind::Eligibility,
            None,
            Some(role.id),
        )
        .await
    {
        // Those eligible now (an ended or future eligibility is not listed).
        for instance in page.value {
            eligible.push(Holder {
                assignment: instance.id,
                name: principal_name(state, admin, instance.principal_id).await,
                scope: scope_name(
                    state,
                    admin,
                    instance.directory_scope_id.as_deref().unwrap_or("/"),
                )
                .await,
                pim_until: Some(
                    instance
                        .end_date_time
                        .map(|end| end.to_string())
                        .unwrap_or_else(|| "no end".to_string()),
                ),
            });
        }
    }
    let units = directory
        .list::<AdministrativeUnitSpec>(&admin.ctx, &FIRST_PAGE)
        .await
        .map(|page| page.value)
        .unwrap_or_default();
    pages::page(
        status,
        &RolePage {
            admin,
            role,
            holders,
            eligible,
            units,
            notice,
            error,
            may_assign: holds(&admin.ctx, action::ROLE_ASSIGNMENTS_MANAGE),
        },
    )
}

async fn scope_name(state: &AppState, admin: &Admin, scope: &str) -> String {
    match scope
        .strip_prefix("/administrativeUnits/")
        .and_then(|id| Uuid::parse_str(id).ok())
    {
        None => "Whole directory".to_string(),
        Some(unit) => match state
            .app
            .directory
            .get::<AdministrativeUnitSpec>(&admin.ctx, unit)
            .await
        {
            Ok(unit) => format!("Unit {}", unit.spec.display_name),
            Err(_) => format!("Unit {unit}"),
        },
    }
}

async fn assign(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { admin, form }: Posted,
) -> Response {
    let directory = &state.app.directory;
    let role = match directory.get_role_definition(&admin.ctx, &id).await {
        Ok(role) => role,
        Err(error) => return refused(error),
    };
    let Some(named) = form.get("principal") else {
        return role_page(
            &state,
            &admin,
            &id,
            None,
            Some("Name who gets the role.".to_string()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let principal = match named_object(&state, &admin, named).await {
        Ok(id) => id,
        Err(Ok(message)) => {
            return role_page(
                &state,
                &admin,
                &id,
                None,
                Some(message),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        Err(Err(page)) => return page,
    };

    let scope = match form.get("scope") {
        Some(unit) if unit != "/" => format!("/administrativeUnits/{unit}"),
        _ => "/".to_string(),
    };
    let body = json!({
        "principalId": principal,
        "roleDefinitionId": role.id,
        "directoryScopeId": scope,
    });
    match directory.create_role_assignment(&admin.ctx, body).await {
        Ok(_) => pages::redirect(&format!("/admin/roles/{}?done=assigned", role.id)),
        Err(error @ (ServiceError::Validation(_) | ServiceError::Conflict { .. })) => {
            role_page(
                &state,
                &admin,
                &id,
                None,
                Some(error.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(error) => refused(error),
    }
}

async fn unassign(
    State(state): State<AppState>,
    Path((id, assignment)): Path<(Uuid, Uuid)>,
    Posted { admin, .. }: Posted,
) -> Response {
    // The assignment must be one of this role's (the page it came from).
    match state
        .app
        .directory
        .get_role_assignment(&admin.ctx, assignment)
        .await
    {
        Ok(found) if found.spec.role_definition_id == id => {}
        Ok(_) => {
            return pages::error_page(
                StatusCode::NOT_FOUND,
                "That assignment is not one of this role's.",
            );
        }
        Err(error) => return refused(error),
    }
    let result = state
        .app
        .directory
        .delete_role_assignment(&admin.ctx, assignment)
        .await;
    match result {
        Err(error @ ServiceError::Conflict { .. }) => {
            role_page(
                &state,
                &admin,
                &id.to_string(),
                None,
                Some(error.to_string()),
                StatusCode::CONFLICT,
            )
            .await
        }
        other => done(other, &format!("/admin/roles/{id}?done=removed")),
    }
}

#[derive(Template)]
#[template(path = "console/units.html")]
struct UnitsPage<'a> {
    admin: &'a Admin,
    listing: Listing<AdministrativeUnit>,
    notice: Option<&'static str>,
    may_create: bool,
}

async fn units(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Response {
    let listing = match state
        .app
        .directory
        .list::<AdministrativeUnitSpec>(&admin.ctx, &query.request())
        .await
    {
        Ok(page) => query.listing(page),
        Err(error) => return refused(error),
    };
    let notice = match query.done.as_deref() {
        Some("deleted") => Some("The unit was deleted."),
        _ => None,
    };
    pages::page(
        StatusCode::OK,
        &UnitsPage {
            admin: &admin,
            listing,
            notice,
            may_create: holds(&admin.ctx, action::AUS_CREATE),
        },
    )
}

async fn create_unit(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let body = json!({ "displayName": form.get("displayName").unwrap_or("") });
    match state
        .app
        .directory
        .create_administrative_unit(&admin.ctx, body)
        .await
    {
        Ok(unit) => pages::redirect(&format!("/admin/units/{}", unit.id)),
        Err(error) => refused(error),
    }
}

/// One member of a unit as its page lists it.
struct UnitMember {
    id: Uuid,
    name: String,
    kind: &'static str,
}

#[derive(Template)]
#[template(path = "console/unit.html")]
struct UnitPage<'a> {
    admin: &'a Admin,
    unit: AdministrativeUnit,
    members: Vec<UnitMember>,
    error: Option<String>,
    may_change: bool,
    may_delete: bool,
}

async fn unit(State(state): State<AppState>, admin: Admin, Path(id): Path<Uuid>) -> Response {
    unit_page(&state, &admin, id, None, StatusCode::OK).await
}

async fn unit_page(
    state: &AppState,
    admin: &Admin,
    id: Uuid,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let directory = &state.app.directory;
    let unit = match directory
        .get::<AdministrativeUnitSpec>(&admin.ctx, id)
        .await
    {
        Ok(unit) => unit,
        Err(error) => return refused(error),
    };
    let members = match directory
        .list_administrative_unit_members(&admin.ctx, id, &FIRST_PAGE)
        .await
    {
        Ok(page) => page
            .value
            .into_iter()
            .map(|m| UnitMember {
                id: m.id,
                name: m.display_name,
                kind: match m.object_type {
                    ObjectType::User => "User",
                    ObjectType::Group => "Group",
                    ObjectType::Device => "Device",
                    ObjectType::ServicePrincipal => "Service principal",
                },
            })
            .collect(),
        Err(ServiceError::Forbidden { .. }) => Vec::new(),
        Err(error) => return refused(error),
    };
    pages::page(
        status,
        &UnitPage {
            admin,
            unit,
            members,
            error,
            may_change: holds(&admin.ctx, action::AUS_MEMBERS_UPDATE),
            may_delete: holds(&admin.ctx, action::AUS_DELETE),
        },
    )
}

async fn add_member(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let directory = &state.app.directory;
    let Some(named) = form.get("member") else {
        return unit_page(
            &state,
            &admin,
            id,
            Some("Name the member to add.".to_string()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let member = match named_object(&state, &admin, named).await {
        Ok(id) => id,
        Err(Ok(message)) => {
            return unit_page(&state, &admin, id, Some(message), StatusCode::BAD_REQUEST).await;
        }
        Err(Err(page)) => return page,
    };

    match directory
        .add_administrative_unit_member(&admin.ctx, id, json!({ "id": member }))
        .await
    {
        Ok(()) => pages::redirect(&format!("/admin/units/{id}")),
        Err(error @ (ServiceError::Validation(_) | ServiceError::Conflict { .. })) => {
            unit_page(
                &state,
                &admin,
                id,
                Some(error.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(error) => refused(error),
    }
}

async fn remove_member(
    State(state): State<AppState>,
    Path((id, member)): Path<(Uuid, Uuid)>,
    Posted { admin, .. }: Posted,
) -> Response {
    done(
        state
            .app
            .directory
            .remove_administrative_unit_member(&admin.ctx, id, member)
            .await,
        &format!("/admin/units/{id}"),
    )
}

async fn confirm_delete_unit(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> Response {
    let found = state
        .app
        .directory
        .get::<AdministrativeUnitSpec>(&admin.ctx, id)
        .await;
    confirm_delete_of(
        &admin,
        found,
        "administrative unit",
        |unit| (&unit.spec.display_name, unit.version),
        "Its members stay in the directory; the role assignments scoped to it go.",
        &format!("/admin/units/{id}"),
    )
}

async fn delete_unit(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let directory = &state.app.directory;
    delete_at(&form, id, "/admin/units?done=deleted", |at| {
        directory.delete_administrative_unit(&admin.ctx, at)
    })
    .await
}

//! App role assignments: which users, groups and workloads an application admits,
//! and with which of its app roles. An application whose service principal
//! requires assignment admits no one else (deny by default); the roles assigned
//! (directly or through a group, nested) go into tokens as `roles`.
//!
//! Records: key1 `<resource>:<principal>:<role>` (one assignment per triple), key2
//! the resource service principal, sort key `<principal>:<role>`, so the
//! assignments of one principal to one resource are one prefix query.

use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::{
    AllowedMemberType, AppRoleAssignment, AppRoleAssignmentSpec, ApplicationData,
    ServicePrincipalData,
};
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_store::{Kind, ListQuery, Reader, Record};
use uuid::Uuid;

use super::groups::display_name_of;
use crate::codec::{self, Keys, Page, PageRequest};
use crate::error::{OrConflict, ServiceError, ServiceResult};
use crate::{Context, Directory, EventDraft};

/// The app role id of "default access" (assigned to the app, no particular role).
pub const DEFAULT_ACCESS: Uuid = Uuid::nil();
const MAX_ASSIGNMENTS_PER_PRINCIPAL: u32 = 100;

fn assignment_from(record: &Record) -> ServiceResult<AppRoleAssignment> {
    codec::data(record)
}

/// The application behind a service principal.
async fn application_of(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: &ServicePrincipalData,
) -> ServiceResult<Option<ApplicationData>> {
    match reader
        .get_by_key1(
            tenant,
            Kind::Application,
            &principal.spec.app_id.to_string(),
        )
        .await?
    {
        Some(record) => Ok(Some(codec::data(&record)?)),
        None => Ok(None),
    }
}

/// The app role ids `principals` (a user and their groups, or a workload) hold on
/// the resource service principal.
pub(crate) async fn assigned_roles(
    reader: &mut dyn Reader,
    tenant: TenantId,
    resource: Uuid,
    principals: &[Uuid],
) -> ServiceResult<Vec<Uuid>> {
    let mut roles = Vec::new();
    for principal in principals {
        let query = ListQuery {
            after: None,
            limit: MAX_ASSIGNMENTS_PER_PRINCIPAL,
            prefix: Some(format!("{principal}:")),
            key2: Some(resource.to_string()),
        };
        for record in reader.list(tenant, Kind::AppRoleAssignment, &query).await? {
            let assignment = assignment_from(&record)?;
            if !roles.contains(&assignment.app_role_id) {
                roles.push(assignment.app_role_id);
            }
        }
    }
    Ok(roles)
}

/// Those of `groups` assigned to the application (any role).
pub(crate) async fn assigned_groups(
    reader: &mut dyn Reader,
    tenant: TenantId,
    app: &ApplicationData,
    groups: &[Uuid],
) -> ServiceResult<Vec<Uuid>> {
    let Some(principal) = reader
        .get_by_key1(tenant, Kind::ServicePrincipal, &app.app_id.to_string())
        .await?
    else {
        return Ok(Vec::new());
    };
    let mut assigned = Vec::new();
    for group in groups {
        if !assigned_roles(reader, tenant, principal.id, std::slice::from_ref(group))
            .await?
            .is_empty()
        {
            assigned.push(*group);
        }
    }
    Ok(assigned)
}

/// A user's standing with an application: whether its service principal requires
/// assignment, and the app role ids the user holds on it, directly or through
/// groups (nested). `None` when the application has no service principal here.
pub(crate) struct UserAssignment {
    pub required: bool,
    pub roles: Vec<Uuid>,
}

impl UserAssignment {
    /// Deny by default: an application that requires assignment admits only the
    /// users assigned to it.
    pub fn admits(&self) -> bool {
        !self.required || !self.roles.is_empty()
    }
}

pub(crate) async fn user_assignment(
    reader: &mut dyn Reader,
    tenant: TenantId,
    app: &ApplicationData,
    user: Uuid,
    now: Timestamp,
) -> ServiceResult<Option<UserAssignment>> {
    let Some(principal) = reader
        .get_by_key1(tenant, Kind::ServicePrincipal, &app.app_id.to_string())
        .await?
    else {
        return Ok(None);
    };
    let spec: ServicePrincipalData = codec::data(&principal)?;
    let mut principals = vec![user];
    principals.extend(super::groups::containing_groups(reader, tenant, user, true, now).await?);
    let roles = assigned_roles(reader, tenant, principal.id, &principals).await?;
    Ok(Some(UserAssignment {
        required: spec.spec.app_role_assignment_required,
        roles,
    }))
}

/// The `roles` claim values for role ids on an application (enabled roles only).
pub(crate) fn role_values(app: &ApplicationData, role_ids: &[Uuid]) -> Vec<String> {
    app.spec
        .app_roles
        .iter()
        .filter(|r| r.is_enabled && role_ids.contains(&r.id))
        .map(|r| r.value.clone())
        .collect()
}

impl Directory {
    /// Opens a change to who is assigned the roles of the resource `resource_id`.
    async fn open_assignments(
        &self,
        ctx: &Context,
        resource_id: Uuid,
    ) -> ServiceResult<(Box<dyn tessera_store::WriteTx>, tessera_store::Record)> {
        let (tx, resource, _) = self
            .open_authorized(
                ctx,
                Kind::ServicePrincipal,
                resource_id,
                action::SPS_APP_ROLE_ASSIGNED_TO_UPDATE,
            )
            .await?;
        Ok((tx, resource))
    }

    /// `POST /servicePrincipals/{id}/appRoleAssignedTo`.
    pub async fn assign_app_role(
        &self,
        ctx: &Context,
        resource_id: Uuid,
        body: Value,
    ) -> ServiceResult<AppRoleAssignment> {
        let spec: AppRoleAssignmentSpec = patch::parse_spec(body)?;
        if spec.resource_id.is_some_and(|named| named != resource_id) {
            return Err(ServiceError::invalid(
                "resourceId",
                "must be the service principal the assignment is made on",
            ));
        }
        let (mut tx, resource) = self.open_assignments(ctx, resource_id).await?;
        let resource_data: ServicePrincipalData = codec::data(&resource)?;
        let principal = super::users::find_object(
            tx.as_mut(),
            ctx.tenant,
            spec.principal_id,
            &[Kind::User, Kind::Group, Kind::ServicePrincipal],
        )
        .await?
        .ok_or_else(|| {
            ServiceError::invalid(
                "principalId",
                "no user, group or service principal has this id",
            )
        })?;
        let principal_type = match principal.kind {
            Kind::User => "User",
            Kind::Group => "Group",
            _ => "ServicePrincipal",
        };
        let role_id = spec.app_role_id.unwrap_or(DEFAULT_ACCESS);
        if role_id == DEFAULT_ACCESS {
            if principal.kind == Kind::ServicePrincipal {
                return Err(ServiceError::invalid(
                    "appRoleId",
                    "a workload must be given an app role that allows applications",
                ));
            }
        } else {
            let app = application_of(tx.as_mut(), ctx.tenant, &resource_data)
                .await?
                .ok_or_else(|| {
                    ServiceError::invalid("appRoleId", "the application has no app roles")
                })?;
            let role = app
                .spec
                .app_roles
                .iter()
                .find(|r| r.id == role_id)
                .ok_or_else(|| {
                    ServiceError::invalid("appRoleId", "is not an app role of this application")
                })?;
            let wanted = if principal.kind == Kind::ServicePrincipal {
                AllowedMemberType::Application
            } else {
                AllowedMemberType::User
            };
            if !role.is_enabled || !role.allowed_member_types.contains(&wanted) {
                return Err(ServiceError::invalid(
                    "appRoleId",
                    "this app role is disabled or not for this kind of principal",
                ));
            }
        }
        let now = self.now();
        let assignment = AppRoleAssignment {
            id: Uuid::new_v4(),
            principal_id: principal.id,
            principal_type: principal_type.to_string(),
            principal_display_name: display_name_of(&principal),
            resource_id,
            resource_display_name: display_name_of(&resource),
            app_role_id: role_id,
            created_date_time: now,
        };
        let keys = Keys {
            key1: Some(format!("{resource_id}:{}:{role_id}", principal.id)),
            key2: Some(resource_id.to_string()),
            sort_key: format!("{}:{role_id}", principal.id),
        };
        let record = codec::new_record(
            Kind::AppRoleAssignment,
            assignment.id,
            now,
            keys,
            &assignment,
        )?;
        tx.insert(ctx.tenant, &record)
            .await
            .or_conflict("this principal already has this app role")?;
        let event = EventDraft::new(AuditAction::ServicePrincipalAppRoleAssignmentAdd)
            .on(
                Kind::ServicePrincipal,
                resource_id,
                &assignment.resource_display_name,
            )
            .details(json!({
                "assignmentId": assignment.id,
                "principalId": assignment.principal_id,
                "principalType": assignment.principal_type,
                "appRoleId": role_id,
            }));
        self.commit(tx, ctx, event).await?;
        Ok(assignment)
    }

    /// `GET /servicePrincipals/{id}/appRoleAssignedTo`.
    pub async fn list_app_role_assigned_to(
        &self,
        ctx: &Context,
        resource_id: Uuid,
        page: &PageRequest,
    ) -> ServiceResult<Page<AppRoleAssignment>> {
        self.require(ctx, action::SPS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        codec::load(
            reader.as_mut(),
            ctx.tenant,
            Kind::ServicePrincipal,
            resource_id,
        )
        .await?;
        let request = PageRequest {
            search: None,
            ..page.clone()
        };
        let (records, next_cursor) = codec::list_page(
            reader.as_mut(),
            ctx.tenant,
            Kind::AppRoleAssignment,
            &request,
            Some(resource_id.to_string()),
        )
        .await?;
        Ok(Page {
            value: records
                .iter()
                .map(assignment_from)
                .collect::<ServiceResult<_>>()?,
            next_cursor,
        })
    }

    /// Ends, once `tx` commits, the tokens an assignment removed was given
    /// for: a user's (and a group's members') tokens for the resource
    /// application, a service principal's own tokens.
    async fn end_assigned_tokens(
        &self,
        tx: &mut dyn tessera_store::WriteTx,
        ctx: &Context,
        resource: &tessera_store::Record,
        assignment: &AppRoleAssignment,
    ) -> ServiceResult<()> {
        let client = codec::data::<ServicePrincipalData>(resource)?
            .spec
            .app_id
            .to_string();
        let users = match assignment.principal_type.as_str() {
            "User" => vec![assignment.principal_id],
            "Group" => {
                match super::groups::transitive_member_links(
                    tx,
                    ctx.tenant,
                    assignment.principal_id,
                )
                .await
                {
                    Ok(links) => links
                        .into_iter()
                        .filter(|link| link.target_kind == Kind::User)
                        .map(|link| link.target)
                        .collect(),
                    Err(ServiceError::Conflict { .. }) => {
                        // Past the transitive limit the members keep their
                        // tokens until these expire (documented).
                        tracing::warn!(tenant = %ctx.tenant, group = %assignment.principal_id, "too many members to end their tokens for a removed assignment");
                        Vec::new()
                    }
                    Err(error) => return Err(error),
                }
            }
            _ => {
                let Some(principal) = tx
                    .get(ctx.tenant, Kind::ServicePrincipal, assignment.principal_id)
                    .await?
                else {
                    return Ok(());
                };
                let app_id = codec::data::<ServicePrincipalData>(&principal)?.spec.app_id;
                return super::apps::end_workload_tokens(self, tx, ctx.tenant, app_id).await;
            }
        };
        let targets: Vec<tessera_cae::Target> = users
            .into_iter()
            .map(|user| tessera_cae::Target::UserApp(user, client.clone()))
            .collect();
        self.revocations()
            .revoke_in(
                tx,
                ctx.tenant,
                &targets,
                tessera_cae::Reason::AssignmentRemoved,
            )
            .await
    }

    /// `DELETE /servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}`.
    pub async fn remove_app_role_assignment(
        &self,
        ctx: &Context,
        resource_id: Uuid,
        assignment_id: Uuid,
    ) -> ServiceResult<()> {
        let (mut tx, resource) = self.open_assignments(ctx, resource_id).await?;
        let record = tx
            .get(ctx.tenant, Kind::AppRoleAssignment, assignment_id)
            .await?
            .filter(|r| r.key2.as_deref() == Some(resource_id.to_string().as_str()))
            .ok_or_else(|| ServiceError::NotFound {
                kind: "appRoleAssignment",
                id: assignment_id.to_string(),
            })?;
        let assignment = assignment_from(&record)?;
        tx.delete(ctx.tenant, Kind::AppRoleAssignment, assignment_id, None)
            .await?;
        self.end_assigned_tokens(tx.as_mut(), ctx, &resource, &assignment)
            .await?;
        let event = EventDraft::new(AuditAction::ServicePrincipalAppRoleAssignmentRemove)
            .on(
                Kind::ServicePrincipal,
                resource_id,
                &display_name_of(&resource),
            )
            .details(json!({
                "assignmentId": assignment_id,
                "principalId": assignment.principal_id,
                "principalType": assignment.principal_type,
                "appRoleId": assignment.app_role_id,
            }));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }
}

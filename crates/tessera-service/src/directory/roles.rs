//! Role definitions (the built-in catalog) and role assignments.

use serde::Serialize;
use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::{Grant, Target};
use tessera_directory::model::{DirectoryScope, GroupSpec, RoleAssignment, RoleAssignmentSpec};
use tessera_directory::patch;
use tessera_directory::roles::{self, RoleDefinition, action};
use tessera_directory::validate;
use tessera_pim::GroupAccess;
use tessera_store::{Kind, Reader, Record, Rel, WriteTx};
use uuid::Uuid;

use super::users::find_object;
use crate::codec::{self, Keys, Page, PageRequest};
use crate::error::{OrConflict, ServiceError, ServiceResult};
use crate::{Context, Directory, EventDraft};

/// A role definition as the API shows it (Graph's `unifiedRoleDefinition`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinitionView {
    pub id: Uuid,
    pub template_id: Uuid,
    pub display_name: &'static str,
    pub description: &'static str,
    pub is_built_in: bool,
    pub is_enabled: bool,
    pub is_privileged: bool,
    pub is_au_scopable: bool,
    pub role_permissions: Vec<RolePermission>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RolePermission {
    pub allowed_resource_actions: Vec<&'static str>,
}

fn view(role: &RoleDefinition) -> RoleDefinitionView {
    RoleDefinitionView {
        id: role.id,
        template_id: role.id,
        display_name: role.display_name,
        description: role.description,
        is_built_in: true,
        is_enabled: true,
        is_privileged: role.is_privileged,
        is_au_scopable: role.is_au_scopable,
        role_permissions: vec![RolePermission {
            allowed_resource_actions: role.allowed_resource_actions.to_vec(),
        }],
    }
}

fn assignment_keys(spec: &RoleAssignmentSpec) -> Keys {
    Keys {
        key1: Some(format!(
            "{}|{}|{}",
            spec.principal_id, spec.role_definition_id, spec.directory_scope_id
        )),
        key2: Some(spec.principal_id.to_string()),
        sort_key: format!("{}|{}", spec.role_definition_id, spec.principal_id),
    }
}

fn assignment_from(record: &Record) -> ServiceResult<RoleAssignment> {
    Ok(RoleAssignment {
        id: record.id,
        spec: codec::data(record)?,
        created_date_time: record.created,
        version: record.version,
        managed_by_pim: false,
        end_date_time: None,
    })
}

fn grant_of(record: &Record) -> ServiceResult<Option<Grant>> {
    let spec: RoleAssignmentSpec = codec::data(record)?;
    Ok(
        DirectoryScope::parse(&spec.directory_scope_id).map(|scope| Grant {
            assignment_id: record.id,
            role_id: spec.role_definition_id,
            scope,
        }),
    )
}

/// The grants a principal holds at `now`: its own role assignments and those of
/// the role-assignable groups it is a direct member of (they cannot be nested),
/// standing ones and those PIM schedules give at this moment (an activation past
/// its end gives nothing, whether or not a job has removed it yet).
pub(crate) async fn grants_of(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
    now: Timestamp,
) -> ServiceResult<Vec<Grant>> {
    Ok(grants_of_timed(reader, tenant, principal, now).await?.0)
}

/// [`grants_of`], and whether they may change with time alone (the principal
/// or one of its groups has a PIM schedule).
pub(crate) async fn grants_of_timed(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
    now: Timestamp,
) -> ServiceResult<(Vec<Grant>, bool)> {
    let mut holders = vec![principal];
    holders.extend(
        reader
            .links_to(tenant, Rel::Member, principal)
            .await?
            .into_iter()
            .map(|link| link.source),
    );
    // The principal's own schedules, read once: the roles they give now, and
    // the memberships (which count as standing ones while they last).
    let (mut grants, pim_groups, mut timed) =
        super::role_schedules::held_at(reader, tenant, principal, GroupAccess::Member, now).await?;
    for group in pim_groups {
        if !holders.contains(&group) {
            holders.push(group);
        }
    }
    for holder in holders {
        for record in codec::list_all(
            reader,
            tenant,
            Kind::RoleAssignment,
            Some(holder.to_string()),
        )
        .await?
        {
            grants.extend(grant_of(&record)?);
        }
        if holder != principal {
            let (held, holder_timed) =
                super::role_schedules::grants_at_timed(reader, tenant, holder, now).await?;
            grants.extend(held);
            timed |= holder_timed;
        }
    }
    Ok((grants, timed))
}

/// The roles a principal holds or may hold (standing, or through any PIM
/// schedule), each once.
pub(crate) async fn roles_held_by(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
) -> ServiceResult<Vec<Uuid>> {
    let mut held: Vec<Uuid> = Vec::new();
    for record in codec::list_all(
        reader,
        tenant,
        Kind::RoleAssignment,
        Some(principal.to_string()),
    )
    .await?
    {
        held.push(codec::data::<RoleAssignmentSpec>(&record)?.role_definition_id);
    }
    for record in codec::list_all(
        reader,
        tenant,
        Kind::PimSchedule,
        Some(principal.to_string()),
    )
    .await?
    {
        if let Some(role) = super::role_schedules::read(&record)?.target.role() {
            held.push(role);
        }
    }
    held.sort_unstable();
    held.dedup();
    Ok(held)
}

/// Whether a principal holds a directory role assignment itself, or is eligible
/// for one (an eligible administrator is one activation away from the role).
pub(crate) async fn holds_roles(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
) -> ServiceResult<bool> {
    if super::role_schedules::any_of(reader, tenant, Kind::RoleAssignment, principal).await? {
        return Ok(true);
    }
    // Any role schedule, or one for a role-assignable group (whose members hold
    // its roles); an ordinary group's does not make its holder privileged.
    for record in codec::list_all(
        reader,
        tenant,
        Kind::PimSchedule,
        Some(principal.to_string()),
    )
    .await?
    {
        match super::role_schedules::read(&record)?.target.group() {
            None => return Ok(true),
            Some((group, _)) => {
                if let Some(found) = reader.get(tenant, Kind::Group, group).await?
                    && codec::data::<GroupSpec>(&found)?.is_assignable_to_role
                {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// The service principal of an application, if it has one.
pub(crate) async fn service_principal_of_application(
    reader: &mut dyn Reader,
    tenant: TenantId,
    application: Uuid,
) -> ServiceResult<Option<Uuid>> {
    let Some(record) = reader.get(tenant, Kind::Application, application).await? else {
        return Ok(None);
    };
    let data: tessera_directory::model::ApplicationData = codec::data(&record)?;
    Ok(reader
        .get_by_key1(tenant, Kind::ServicePrincipal, &data.app_id.to_string())
        .await?
        .map(|sp| sp.id))
}

/// Whether a user holds a directory role, directly or through a role-assignable group
/// (members of role-assignable groups are protected like role holders, as in Entra).
pub(crate) async fn is_privileged(
    reader: &mut dyn Reader,
    tenant: TenantId,
    user: Uuid,
) -> ServiceResult<bool> {
    if holds_roles(reader, tenant, user).await? {
        return Ok(true);
    }
    // Owners of a role-assignable group decide who is in it.
    let mut links = reader.links_to(tenant, Rel::Member, user).await?;
    links.extend(reader.links_to(tenant, Rel::Owner, user).await?);
    for link in links {
        if let Some(group) = reader.get(tenant, Kind::Group, link.source).await? {
            let spec: GroupSpec = codec::data(&group)?;
            if spec.is_assignable_to_role {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

impl Directory {
    pub async fn list_role_definitions(
        &self,
        ctx: &Context,
    ) -> ServiceResult<Page<RoleDefinitionView>> {
        self.require(ctx, action::ROLE_DEFINITIONS_READ, &Target::Tenant)?;
        Ok(Page {
            value: roles::BUILT_IN_ROLES.iter().map(view).collect(),
            next_cursor: None,
        })
    }

    /// A role by template id or display name.
    pub async fn get_role_definition(
        &self,
        ctx: &Context,
        id_or_name: &str,
    ) -> ServiceResult<RoleDefinitionView> {
        self.require(ctx, action::ROLE_DEFINITIONS_READ, &Target::Tenant)?;
        roles::find(id_or_name)
            .map(view)
            .ok_or_else(|| ServiceError::NotFound {
                kind: "roleDefinition",
                id: id_or_name.to_string(),
            })
    }

    pub async fn create_role_assignment(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<RoleAssignment> {
        let mut spec: RoleAssignmentSpec = patch::parse_spec(body)?;
        let scope = validate::role_assignment_spec(&spec)?;
        spec.directory_scope_id = scope.render();
        self.require(ctx, action::ROLE_ASSIGNMENTS_MANAGE, &Target::Tenant)?;
        self.protect(
            ctx,
            tessera_pim::protected::ROLE_ASSIGNMENT_CREATE,
            Some(spec.role_definition_id),
        )?;
        let Some(role) = roles::built_in(spec.role_definition_id) else {
            return Err(ServiceError::invalid(
                "roleDefinitionId",
                format!(
                    "no role definition with id {} exists",
                    spec.role_definition_id
                ),
            ));
        };
        let mut tx = self.write(ctx).await?;
        if let DirectoryScope::AdministrativeUnit(unit) = scope {
            if !role.is_au_scopable {
                return Err(ServiceError::invalid(
                    "directoryScopeId",
                    format!(
                        "{} cannot be scoped to an administrative unit",
                        role.display_name
                    ),
                ));
            }
            if tx
                .get(ctx.tenant, Kind::AdministrativeUnit, unit)
                .await?
                .is_none()
            {
                return Err(ServiceError::invalid(
                    "directoryScopeId",
                    format!("no administrative unit with id {unit} exists"),
                ));
            }
        }
        let principal = find_object(
            tx.as_mut(),
            ctx.tenant,
            spec.principal_id,
            &[Kind::User, Kind::Group, Kind::ServicePrincipal],
        )
        .await?;
        let Some(principal) = principal else {
            return Err(ServiceError::invalid(
                "principalId",
                format!(
                    "no user, group or service principal with id {} exists",
                    spec.principal_id
                ),
            ));
        };
        if principal.kind == Kind::Group {
            let group: GroupSpec = codec::data(&principal)?;
            if !group.is_assignable_to_role {
                return Err(ServiceError::invalid(
                    "principalId",
                    "roles can be assigned only to groups created with isAssignableToRole: true",
                ));
            }
        }
        let id = Uuid::new_v4();
        let record = codec::new_record(
            Kind::RoleAssignment,
            id,
            self.now(),
            assignment_keys(&spec),
            &spec,
        )?;
        tx.insert(ctx.tenant, &record)
            .await
            .or_conflict("the principal already holds this role at this scope")?;
        let spec_json = serde_json::to_value(&spec).unwrap_or(Value::Null);
        let event = EventDraft::new(AuditAction::RoleAssignmentCreate)
            .on(Kind::RoleAssignment, id, role.display_name)
            .changes(patch::changes(&Value::Null, &spec_json))
            .details(json!({
                "role": role.display_name,
                "principal": super::groups::object_ref(&principal),
            }));
        self.commit(tx, ctx, event).await?;
        assignment_from(&record)
    }

    pub async fn list_role_assignments(
        &self,
        ctx: &Context,
        principal: Option<Uuid>,
        role: Option<Uuid>,
        request: &PageRequest,
    ) -> ServiceResult<Page<RoleAssignment>> {
        self.require(ctx, action::ROLE_ASSIGNMENTS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let mut page_request = request.clone();
        if let Some(role) = role {
            page_request.search = Some(format!("{role}|"));
        }
        let (records, next_cursor) = codec::list_page(
            reader.as_mut(),
            ctx.tenant,
            Kind::RoleAssignment,
            &page_request,
            principal.map(|p| p.to_string()),
        )
        .await?;
        let mut page = Page::of(&records, next_cursor, assignment_from)?;
        // The assignments PIM gives now follow the standing ones, on the last
        // page (as in Entra, an activated role is a role assignment while it
        // lasts).
        if page.next_cursor.is_none() {
            page.value.extend(
                super::role_schedules::assignments_at(
                    reader.as_mut(),
                    ctx.tenant,
                    principal,
                    role,
                    self.now(),
                )
                .await?,
            );
        }
        Ok(page)
    }

    pub async fn get_role_assignment(
        &self,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<RoleAssignment> {
        self.require(ctx, action::ROLE_ASSIGNMENTS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        // One PIM gives now is an assignment while it lasts.
        if reader
            .get(ctx.tenant, Kind::RoleAssignment, id)
            .await?
            .is_none()
            && let Some(found) =
                super::role_schedules::assignment_now(reader.as_mut(), ctx.tenant, id, self.now())
                    .await?
        {
            return Ok(found);
        }
        let record = codec::load(reader.as_mut(), ctx.tenant, Kind::RoleAssignment, id).await?;
        assignment_from(&record)
    }

    pub async fn delete_role_assignment(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        self.require(ctx, action::ROLE_ASSIGNMENTS_MANAGE, &Target::Tenant)?;
        {
            let mut reader = self.reader().await?;
            if reader
                .get(ctx.tenant, Kind::RoleAssignment, id)
                .await?
                .is_none()
                && super::role_schedules::assignment_now(
                    reader.as_mut(),
                    ctx.tenant,
                    id,
                    self.now(),
                )
                .await?
                .is_some()
            {
                return Err(ServiceError::Conflict {
                    message: "this assignment is managed by PIM: end it with a roleAssignmentScheduleRequest (adminRemove, or selfDeactivate)".to_string(),
                });
            }
        }
        let (mut tx, record) = self
            .open_tenant_record(
                ctx,
                action::ROLE_ASSIGNMENTS_MANAGE,
                Kind::RoleAssignment,
                id,
            )
            .await?;
        let spec: RoleAssignmentSpec = codec::data(&record)?;
        if spec.role_definition_id == roles::GLOBAL_ADMINISTRATOR && spec.directory_scope_id == "/"
        {
            let remaining = self
                .active_global_administrators(tx.as_mut(), ctx.tenant, Some(id), None)
                .await?;
            if remaining == 0 {
                return Err(ServiceError::Conflict { message: "this is the last Global Administrator assignment of an enabled account; assign another first".to_string() });
            }
        }
        tx.delete(ctx.tenant, Kind::RoleAssignment, id, Some(record.version))
            .await?;
        let role_name = roles::built_in(spec.role_definition_id)
            .map(|r| r.display_name)
            .unwrap_or("role");
        let event = EventDraft::new(AuditAction::RoleAssignmentDelete)
            .on(Kind::RoleAssignment, id, role_name)
            .changes(patch::changes(
                &serde_json::to_value(&spec).unwrap_or(Value::Null),
                &Value::Null,
            ));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }

    /// Counts the enabled users holding Global Administrator at tenant scope directly,
    /// leaving out one assignment or one principal. Service principals do not count:
    /// no one can sign in as them to recover the tenant.
    async fn active_global_administrators(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        without_assignment: Option<Uuid>,
        without_principal: Option<Uuid>,
    ) -> ServiceResult<usize> {
        let request = PageRequest {
            search: Some(format!("{}|", roles::GLOBAL_ADMINISTRATOR)),
            limit: Some(1000),
            cursor: None,
        };
        let (records, _) =
            codec::list_page(tx, tenant, Kind::RoleAssignment, &request, None).await?;
        let mut count = 0;
        for record in records {
            let spec: RoleAssignmentSpec = codec::data(&record)?;
            if Some(record.id) == without_assignment
                || Some(spec.principal_id) == without_principal
                || spec.directory_scope_id != "/"
            {
                continue;
            }
            if let Some(user) = tx.get(tenant, Kind::User, spec.principal_id).await? {
                let value: Value = codec::data(&user)?;
                if value
                    .get("accountEnabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(true)
                {
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// Refuses to delete or disable the last principal holding Global Administrator, so
    /// that a tenant cannot lock itself out.
    pub(crate) async fn refuse_losing_last_global_administrator(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        principal: Uuid,
    ) -> ServiceResult<()> {
        let query = tessera_store::ListQuery {
            limit: 1000,
            key2: Some(principal.to_string()),
            ..Default::default()
        };
        let holds = tx
            .list(ctx.tenant, Kind::RoleAssignment, &query)
            .await?
            .iter()
            .any(|r| {
                codec::data::<RoleAssignmentSpec>(r)
                    .map(|s| {
                        s.role_definition_id == roles::GLOBAL_ADMINISTRATOR
                            && s.directory_scope_id == "/"
                    })
                    .unwrap_or(false)
            });
        if holds
            && self
                .active_global_administrators(tx, ctx.tenant, None, Some(principal))
                .await?
                == 0
        {
            return Err(ServiceError::Conflict {
                message: "this is the last enabled Global Administrator; assign the role to another account first".to_string(),
            });
        }
        Ok(())
    }
}

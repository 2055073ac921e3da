//! Administrative units: containers of users, groups and devices that scope
//! delegated administration.

use serde_json::{Value, json};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::{AdministrativeUnit, AdministrativeUnitSpec, DirectoryObjectRef};
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_directory::validate;
use tessera_store::{Kind, Rel};
use uuid::Uuid;

use super::groups::{object_ref, reference_id};
use super::resource::resource;
use super::users::find_object;
use crate::codec::{self, Keys, Page, PageRequest};
use crate::codec::{Patch, Versioned};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, Directory};

const READ_ONLY: &[&str] = &["id", "createdDateTime", "modifiedDateTime", "version"];

resource!(AdministrativeUnitSpec => AdministrativeUnit, AdministrativeUnit, "administrative unit", AUS_READ,
    [AdministrativeUnitCreate, AdministrativeUnitUpdate, AdministrativeUnitDelete],
    name: display_name, keys: unit_keys,
    read_only: READ_ONLY, validate: validate::administrative_unit_spec);

fn unit_keys(spec: &AdministrativeUnitSpec) -> Keys {
    Keys::named(&spec.display_name)
}

impl Directory {
    pub async fn create_administrative_unit(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<AdministrativeUnit> {
        let spec: AdministrativeUnitSpec = patch::parse_spec(body)?;
        validate::administrative_unit_spec(&spec)?;
        self.require(ctx, action::AUS_CREATE, &Target::Tenant)?;
        let tx = self.write(ctx).await?;
        self.create_resource(ctx, tx, &spec).await
    }

    pub async fn update_administrative_unit(
        &self,
        ctx: &Context,
        patch: Patch,
    ) -> ServiceResult<AdministrativeUnit> {
        let (editing, after) = self
            .patch_resource::<AdministrativeUnitSpec>(ctx, &patch, |_| action::AUS_BASIC_UPDATE)
            .await?;
        self.save_resource(ctx, editing, &after).await
    }

    /// Deletes the unit, its memberships and the role assignments scoped to it.
    pub async fn delete_administrative_unit(
        &self,
        ctx: &Context,
        at: Versioned,
    ) -> ServiceResult<()> {
        let id = at.id;
        self.require(ctx, action::AUS_DELETE, &Target::Tenant)?;
        let mut editing = self
            .edit_resource::<AdministrativeUnitSpec>(ctx, at, |_| action::AUS_DELETE)
            .await?;
        let tx = editing.tx.as_mut();
        let scope = format!("/administrativeUnits/{id}");
        let mut removed_assignments = Vec::new();
        for assignment in codec::list_all(tx, ctx.tenant, Kind::RoleAssignment, None).await? {
            let value: Value = codec::data(&assignment)?;
            if value.get("directoryScopeId").and_then(Value::as_str) == Some(scope.as_str()) {
                tx.delete(ctx.tenant, Kind::RoleAssignment, assignment.id, None)
                    .await?;
                removed_assignments.push(json!({ "id": assignment.id, "assignment": value }));
            }
        }
        let members = super::groups::all_links_from(tx, ctx.tenant, Rel::UnitMember, id).await?;
        let details =
            json!({ "memberCount": members.len(), "roleAssignmentsRemoved": removed_assignments });
        self.remove_resource(ctx, editing, details).await
    }

    pub async fn list_administrative_unit_members(
        &self,
        ctx: &Context,
        id: Uuid,
        request: &PageRequest,
    ) -> ServiceResult<Page<DirectoryObjectRef>> {
        let mut reader = self
            .reader_for(ctx, Kind::AdministrativeUnit, id, action::AUS_MEMBERS_READ)
            .await?;
        let (links, next_cursor) =
            codec::links_page(reader.as_mut(), ctx.tenant, Rel::UnitMember, id, request).await?;
        let mut value = Vec::with_capacity(links.len());
        for link in &links {
            if let Some(record) = reader
                .get(ctx.tenant, link.target_kind, link.target)
                .await?
            {
                value.push(object_ref(&record));
            }
        }
        Ok(Page { value, next_cursor })
    }

    pub async fn add_administrative_unit_member(
        &self,
        ctx: &Context,
        id: Uuid,
        body: Value,
    ) -> ServiceResult<()> {
        let member = reference_id(&body)?;
        let mut editing = self
            .edit_resource::<AdministrativeUnitSpec>(ctx, Versioned::any(id), |_| {
                action::AUS_MEMBERS_UPDATE
            })
            .await?;
        let kinds = [Kind::User, Kind::Group, Kind::Device];
        let Some(member_record) =
            find_object(editing.tx.as_mut(), ctx.tenant, member, &kinds).await?
        else {
            return Err(ServiceError::invalid(
                "id",
                format!("no user, group or device with id {member} exists"),
            ));
        };
        let action = AuditAction::AdministrativeUnitMemberAdd;
        self.link_member(ctx, editing, Rel::UnitMember, &member_record, action)
            .await
    }

    pub async fn remove_administrative_unit_member(
        &self,
        ctx: &Context,
        id: Uuid,
        member: Uuid,
    ) -> ServiceResult<()> {
        let editing = self
            .edit_resource::<AdministrativeUnitSpec>(ctx, Versioned::any(id), |_| {
                action::AUS_MEMBERS_UPDATE
            })
            .await?;
        let action = AuditAction::AdministrativeUnitMemberRemove;
        self.unlink_member(ctx, editing, Rel::UnitMember, member, action)
            .await
    }
}

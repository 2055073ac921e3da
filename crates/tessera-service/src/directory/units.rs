//! Administrative units: containers of users, groups and devices that scope
//! delegated administration.

use serde_json::{Value, json};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::{AdministrativeUnit, AdministrativeUnitSpec, DirectoryObjectRef};
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_directory::validate;
use tessera_store::{Kind, Link, Record, Rel};
use uuid::Uuid;

use super::groups::{object_ref, reference_id};
use super::users::find_object;
use crate::codec::{self, Keys, Page, PageRequest};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, Directory, EventDraft, target_facts};

const READ_ONLY: &[&str] = &["id", "createdDateTime", "modifiedDateTime", "version"];

fn unit_keys(spec: &AdministrativeUnitSpec) -> Keys {
    Keys {
        key1: None,
        key2: None,
        sort_key: codec::sort_key(&spec.display_name),
    }
}

fn unit_from(record: &Record) -> ServiceResult<AdministrativeUnit> {
    Ok(AdministrativeUnit {
        id: record.id,
        spec: codec::data(record)?,
        created_date_time: record.created,
        modified_date_time: record.modified,
        version: record.version,
    })
}

fn spec_json(spec: &AdministrativeUnitSpec) -> Value {
    serde_json::to_value(spec).unwrap_or(Value::Null)
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
        let id = Uuid::new_v4();
        let mut tx = self.write(ctx).await?;
        let record = codec::new_record(
            Kind::AdministrativeUnit,
            id,
            self.now(),
            unit_keys(&spec),
            &spec,
        )?;
        tx.insert(ctx.tenant, &record).await?;
        let event = EventDraft::new(
            AuditAction::AdministrativeUnitCreate,
            Kind::AdministrativeUnit,
            id,
            &spec.display_name,
        )
        .changes(patch::changes(&Value::Null, &spec_json(&spec)));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        unit_from(&record)
    }

    pub async fn get_administrative_unit(
        &self,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<AdministrativeUnit> {
        let mut reader = self.reader().await?;
        let (record, _) = self
            .load_authorized(
                reader.as_mut(),
                ctx,
                Kind::AdministrativeUnit,
                id,
                action::AUS_READ,
            )
            .await?;
        unit_from(&record)
    }

    pub async fn list_administrative_units(
        &self,
        ctx: &Context,
        request: &PageRequest,
    ) -> ServiceResult<Page<AdministrativeUnit>> {
        self.require(ctx, action::AUS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let (records, next_cursor) = codec::list_page(
            reader.as_mut(),
            ctx.tenant,
            Kind::AdministrativeUnit,
            request,
            None,
        )
        .await?;
        let value = records
            .iter()
            .map(unit_from)
            .collect::<ServiceResult<Vec<_>>>()?;
        Ok(Page { value, next_cursor })
    }

    pub async fn update_administrative_unit(
        &self,
        ctx: &Context,
        id: Uuid,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<AdministrativeUnit> {
        let mut tx = self.write(ctx).await?;
        let (record, _) = self
            .load_authorized(
                tx.as_mut(),
                ctx,
                Kind::AdministrativeUnit,
                id,
                action::AUS_BASIC_UPDATE,
            )
            .await?;
        codec::check_if_match(&record, if_match)?;
        let before: AdministrativeUnitSpec = codec::data(&record)?;
        let after: AdministrativeUnitSpec = patch::merge_patch(&before, &body, READ_ONLY)?;
        validate::administrative_unit_spec(&after)?;
        let changes = patch::changes(&spec_json(&before), &spec_json(&after));
        if changes.is_empty() {
            return unit_from(&record);
        }
        let updated = codec::next_version(&record, self.now(), unit_keys(&after), &after)?;
        tx.update(ctx.tenant, &updated).await?;
        let event = EventDraft::new(
            AuditAction::AdministrativeUnitUpdate,
            Kind::AdministrativeUnit,
            id,
            &after.display_name,
        )
        .changes(changes);
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        unit_from(&updated)
    }

    /// Deletes the unit, its memberships and the role assignments scoped to it.
    pub async fn delete_administrative_unit(
        &self,
        ctx: &Context,
        id: Uuid,
        if_match: Option<i64>,
    ) -> ServiceResult<()> {
        self.require(ctx, action::AUS_DELETE, &Target::Tenant)?;
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, Kind::AdministrativeUnit, id).await?;
        codec::check_if_match(&record, if_match)?;
        let spec: AdministrativeUnitSpec = codec::data(&record)?;
        let scope = format!("/administrativeUnits/{id}");
        let mut removed_assignments = Vec::new();
        for assignment in
            codec::list_all(tx.as_mut(), ctx.tenant, Kind::RoleAssignment, None).await?
        {
            let value: Value = codec::data(&assignment)?;
            if value.get("directoryScopeId").and_then(Value::as_str) == Some(scope.as_str()) {
                tx.delete(ctx.tenant, Kind::RoleAssignment, assignment.id, None)
                    .await?;
                removed_assignments.push(json!({ "id": assignment.id, "assignment": value }));
            }
        }
        let members =
            super::groups::all_links_from(tx.as_mut(), ctx.tenant, Rel::UnitMember, id).await?;
        tx.delete(
            ctx.tenant,
            Kind::AdministrativeUnit,
            id,
            Some(record.version),
        )
        .await?;
        let event = EventDraft::new(
            AuditAction::AdministrativeUnitDelete,
            Kind::AdministrativeUnit,
            id,
            &spec.display_name,
        )
        .changes(patch::changes(&spec_json(&spec), &Value::Null))
        .details(
            json!({ "memberCount": members.len(), "roleAssignmentsRemoved": removed_assignments }),
        );
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_administrative_unit_members(
        &self,
        ctx: &Context,
        id: Uuid,
        request: &PageRequest,
    ) -> ServiceResult<Page<DirectoryObjectRef>> {
        let mut reader = self.reader().await?;
        codec::load(reader.as_mut(), ctx.tenant, Kind::AdministrativeUnit, id).await?;
        let facts = target_facts(reader.as_mut(), ctx.tenant, Kind::AdministrativeUnit, id).await?;
        self.require(ctx, action::AUS_MEMBERS_READ, &facts)?;
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
        let mut tx = self.write(ctx).await?;
        let (record, _) = self
            .load_authorized(
                tx.as_mut(),
                ctx,
                Kind::AdministrativeUnit,
                id,
                action::AUS_MEMBERS_UPDATE,
            )
            .await?;
        let Some(member_record) = find_object(
            tx.as_mut(),
            ctx.tenant,
            member,
            &[Kind::User, Kind::Group, Kind::Device],
        )
        .await?
        else {
            return Err(ServiceError::invalid(
                "id",
                format!("no user, group or device with id {member} exists"),
            ));
        };
        let link = Link {
            rel: Rel::UnitMember,
            source: id,
            source_kind: Kind::AdministrativeUnit,
            target: member,
            target_kind: member_record.kind,
        };
        if !tx.link(ctx.tenant, &link, self.now()).await? {
            return Err(ServiceError::Conflict {
                message: "the object is already a member of the administrative unit".to_string(),
            });
        }
        let spec: AdministrativeUnitSpec = codec::data(&record)?;
        let event = EventDraft::new(
            AuditAction::AdministrativeUnitMemberAdd,
            Kind::AdministrativeUnit,
            id,
            &spec.display_name,
        )
        .details(json!({ "member": object_ref(&member_record) }));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_administrative_unit_member(
        &self,
        ctx: &Context,
        id: Uuid,
        member: Uuid,
    ) -> ServiceResult<()> {
        let mut tx = self.write(ctx).await?;
        let (record, _) = self
            .load_authorized(
                tx.as_mut(),
                ctx,
                Kind::AdministrativeUnit,
                id,
                action::AUS_MEMBERS_UPDATE,
            )
            .await?;
        if !tx.unlink(ctx.tenant, Rel::UnitMember, id, member).await? {
            return Err(ServiceError::NotFound {
                kind: "member",
                id: member.to_string(),
            });
        }
        let spec: AdministrativeUnitSpec = codec::data(&record)?;
        let event = EventDraft::new(
            AuditAction::AdministrativeUnitMemberRemove,
            Kind::AdministrativeUnit,
            id,
            &spec.display_name,
        )
        .details(json!({ "memberId": member }));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        Ok(())
    }
}

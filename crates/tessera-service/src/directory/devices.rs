//! Devices: their trust type, compliance and management state, owner and extension
//! attributes (the inputs of device filters in Conditional Access).

use serde_json::{Value, json};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::{Device, DeviceSpec};
use tessera_directory::patch::{self, Change};
use tessera_directory::roles::action;
use tessera_directory::validate;
use tessera_store::{Kind, Record, WriteTx};
use uuid::Uuid;

use crate::codec::{self, Keys, Page, PageRequest};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, Directory, EventDraft};

const READ_ONLY: &[&str] = &["id", "createdDateTime", "modifiedDateTime", "version"];

fn device_keys(spec: &DeviceSpec) -> Keys {
    Keys {
        key1: spec
            .certificate_thumbprint
            .as_ref()
            .map(|t| format!("cert:{}", t.to_ascii_lowercase())),
        key2: spec.owner_id.map(|o| o.to_string()),
        sort_key: codec::sort_key(&spec.display_name),
    }
}

fn device_from(record: &Record) -> ServiceResult<Device> {
    Ok(Device {
        id: record.id,
        spec: codec::data(record)?,
        created_date_time: record.created,
        modified_date_time: record.modified,
        version: record.version,
    })
}

fn spec_json(spec: &DeviceSpec) -> Value {
    serde_json::to_value(spec).unwrap_or(Value::Null)
}

/// Compliance and management state come from the MDM, and trust type and the
/// certificate binding decide Conditional Access device controls: they need the
/// compliance permission.
fn actions_for(changes: &[Change]) -> Vec<&'static str> {
    let mut actions = Vec::new();
    for change in changes {
        let needed = match change.attribute.as_str() {
            "isCompliant" | "isManaged" | "trustType" | "certificateThumbprint" => {
                action::DEVICES_COMPLIANCE_UPDATE
            }
            "accountEnabled" if change.new_value == Value::Bool(false) => action::DEVICES_DISABLE,
            "accountEnabled" => action::DEVICES_ENABLE,
            _ => action::DEVICES_BASIC_UPDATE,
        };
        if !actions.contains(&needed) {
            actions.push(needed);
        }
    }
    actions
}

async fn check_owner(tx: &mut dyn WriteTx, ctx: &Context, spec: &DeviceSpec) -> ServiceResult<()> {
    if let Some(owner) = spec.owner_id
        && tx.get(ctx.tenant, Kind::User, owner).await?.is_none()
    {
        return Err(ServiceError::invalid(
            "ownerId",
            format!("no user with id {owner} exists"),
        ));
    }
    Ok(())
}

impl Directory {
    pub async fn create_device(&self, ctx: &Context, body: Value) -> ServiceResult<Device> {
        let spec: DeviceSpec = patch::parse_spec(body)?;
        validate::device_spec(&spec)?;
        self.require(ctx, action::DEVICES_CREATE, &Target::Tenant)?;
        if spec.is_compliant
            || spec.is_managed
            || spec.trust_type.is_some()
            || spec.certificate_thumbprint.is_some()
        {
            self.require(ctx, action::DEVICES_COMPLIANCE_UPDATE, &Target::Tenant)?;
        }
        let id = Uuid::new_v4();
        let mut tx = self.write(ctx).await?;
        check_owner(tx.as_mut(), ctx, &spec).await?;
        let record = codec::new_record(Kind::Device, id, self.now(), device_keys(&spec), &spec)?;
        tx.insert(ctx.tenant, &record).await?;
        let event = EventDraft::new(
            AuditAction::DeviceCreate,
            Kind::Device,
            id,
            &spec.display_name,
        )
        .changes(patch::changes(&Value::Null, &spec_json(&spec)));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        device_from(&record)
    }

    pub async fn get_device(&self, ctx: &Context, id: Uuid) -> ServiceResult<Device> {
        let mut reader = self.reader().await?;
        let (record, _) = self
            .load_authorized(reader.as_mut(), ctx, Kind::Device, id, action::DEVICES_READ)
            .await?;
        device_from(&record)
    }

    pub async fn list_devices(
        &self,
        ctx: &Context,
        request: &PageRequest,
    ) -> ServiceResult<Page<Device>> {
        self.require(ctx, action::DEVICES_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let (records, next_cursor) =
            codec::list_page(reader.as_mut(), ctx.tenant, Kind::Device, request, None).await?;
        let value = records
            .iter()
            .map(device_from)
            .collect::<ServiceResult<Vec<_>>>()?;
        Ok(Page { value, next_cursor })
    }

    pub async fn update_device(
        &self,
        ctx: &Context,
        id: Uuid,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<Device> {
        let mut tx = self.write(ctx).await?;
        let (record, facts) = self
            .load_authorized(tx.as_mut(), ctx, Kind::Device, id, action::DEVICES_READ)
            .await?;
        codec::check_if_match(&record, if_match)?;
        let before: DeviceSpec = codec::data(&record)?;
        let after: DeviceSpec = patch::merge_patch(&before, &body, READ_ONLY)?;
        validate::device_spec(&after)?;
        let changes = patch::changes(&spec_json(&before), &spec_json(&after));
        for needed in actions_for(&patch::named(&body)) {
            self.require(ctx, needed, &facts)?;
        }
        if changes.is_empty() {
            return device_from(&record);
        }
        check_owner(tx.as_mut(), ctx, &after).await?;
        let updated = codec::next_version(&record, self.now(), device_keys(&after), &after)?;
        tx.update(ctx.tenant, &updated).await?;
        let event = EventDraft::new(
            AuditAction::DeviceUpdate,
            Kind::Device,
            id,
            &after.display_name,
        )
        .changes(changes);
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        device_from(&updated)
    }

    pub async fn delete_device(
        &self,
        ctx: &Context,
        id: Uuid,
        if_match: Option<i64>,
    ) -> ServiceResult<()> {
        let mut tx = self.write(ctx).await?;
        let (record, _) = self
            .load_authorized(tx.as_mut(), ctx, Kind::Device, id, action::DEVICES_DELETE)
            .await?;
        codec::check_if_match(&record, if_match)?;
        let spec: DeviceSpec = codec::data(&record)?;
        let cleanup = self
            .remove_principal_everywhere(tx.as_mut(), ctx, id)
            .await?;
        tx.delete(ctx.tenant, Kind::Device, id, Some(record.version))
            .await?;
        let event = EventDraft::new(
            AuditAction::DeviceDelete,
            Kind::Device,
            id,
            &spec.display_name,
        )
        .changes(patch::changes(&spec_json(&spec), &Value::Null))
        .details(json!({ "removedFrom": cleanup }));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Clears the owner of every device owned by `user` (who is being deleted).
pub(crate) async fn clear_owner(
    directory: &Directory,
    tx: &mut dyn WriteTx,
    ctx: &Context,
    user: Uuid,
) -> ServiceResult<Vec<Uuid>> {
    let mut cleared = Vec::new();
    for device in codec::list_all(tx, ctx.tenant, Kind::Device, Some(user.to_string())).await? {
        let mut spec: DeviceSpec = codec::data(&device)?;
        spec.owner_id = None;
        let updated = codec::next_version(&device, directory.now(), device_keys(&spec), &spec)?;
        tx.update(ctx.tenant, &updated).await?;
        cleared.push(device.id);
    }
    Ok(cleared)
}

//! Devices: their trust type, compliance and management state, owner and extension
//! attributes (the inputs of device filters in Conditional Access).

use serde_json::{Value, json};
use tessera_directory::authz::Target;
use tessera_directory::model::{Device, DeviceSpec};
use tessera_directory::patch::{self, Change};
use tessera_directory::roles::action;
use tessera_directory::validate;
use tessera_store::{Kind, WriteTx};
use uuid::Uuid;

use super::resource::{Resource, resource};
use crate::codec::{self, Keys};
use crate::codec::{Patch, Versioned};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, Directory};

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

resource!(DeviceSpec => Device, Device, "device", DEVICES_READ, [DeviceCreate, DeviceUpdate, DeviceDelete],
    name: display_name, keys: device_keys,
    read_only: READ_ONLY, validate: validate::device_spec);

/// Compliance and management state come from the MDM, and trust type and the
/// certificate binding decide Conditional Access device controls: they need the
/// compliance permission.
fn device_action(change: &Change) -> &'static str {
    match change.attribute.as_str() {
        "isCompliant"
        | "isManaged"
        | "complianceGracePeriodExpirationDateTime"
        | "complianceReason"
        | "trustType"
        | "certificateThumbprint" => action::DEVICES_COMPLIANCE_UPDATE,
        "accountEnabled" if change.new_value == Value::Bool(false) => action::DEVICES_DISABLE,
        "accountEnabled" => action::DEVICES_ENABLE,
        _ => action::DEVICES_BASIC_UPDATE,
    }
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
            || spec.compliance_grace_period_expiration_date_time.is_some()
            || spec.compliance_reason.is_some()
        {
            self.require(ctx, action::DEVICES_COMPLIANCE_UPDATE, &Target::Tenant)?;
        }
        let mut tx = self.write(ctx).await?;
        check_owner(tx.as_mut(), ctx, &spec).await?;
        self.create_resource(ctx, tx, &spec).await
    }

    pub async fn update_device(&self, ctx: &Context, patch: Patch) -> ServiceResult<Device> {
        let (mut editing, mut after) = self
            .patch_resource::<DeviceSpec>(ctx, &patch, |_| action::DEVICES_READ)
            .await?;
        // A new compliance state ends a grace period, and the reason given
        // for the state before, that the change does not give again.
        if after.is_compliant != editing.spec.is_compliant {
            if patch
                .body
                .get("complianceGracePeriodExpirationDateTime")
                .is_none()
            {
                after.compliance_grace_period_expiration_date_time = None;
            }
            if patch.body.get("complianceReason").is_none() {
                after.compliance_reason = None;
            }
        }
        self.require_for_patch(ctx, &editing.facts, &patch.body, device_action)?;
        // An update that changes nothing writes nothing and checks nothing more.
        if after.json() != editing.spec.json() {
            check_owner(editing.tx.as_mut(), ctx, &after).await?;
        }
        self.save_resource(ctx, editing, &after).await
    }

    pub async fn delete_device(&self, ctx: &Context, at: Versioned) -> ServiceResult<()> {
        let id = at.id;
        let mut editing = self
            .edit_resource::<DeviceSpec>(ctx, at, |_| action::DEVICES_DELETE)
            .await?;
        let cleanup = self
            .remove_principal_everywhere(editing.tx.as_mut(), ctx, id)
            .await?;
        self.remove_resource(ctx, editing, json!({ "removedFrom": cleanup }))
            .await
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
        let updated = codec::next_version(&device, directory.now(), spec.keys(), &spec)?;
        tx.update(ctx.tenant, &updated).await?;
        cleared.push(device.id);
    }
    Ok(cleared)
}

/// Most devices one compliance report may name.
pub const MAX_COMPLIANCE_REPORT: usize = 1000;
/// The longest grace period a report may give (days from now).
pub const MAX_GRACE_DAYS: i64 = 90;

/// One device's state as a device manager reports it.
#[derive(Debug, Clone, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComplianceReport {
    pub device_id: Uuid,
    pub is_compliant: bool,
    /// Left as it is when not given.
    #[serde(default)]
    pub is_managed: Option<bool>,
    /// Until then the device counts as compliant even when it is not; `null`
    /// (or absent) ends a grace period.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub compliance_grace_period_expiration_date_time: Option<tessera_core::Timestamp>,
    #[serde(default)]
    pub compliance_reason: Option<String>,
}

/// A compliance report's body: `{"value": [...]}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ComplianceReports {
    pub value: Vec<ComplianceReport>,
}

impl Directory {
    /// A device manager's report of devices' compliance (the device
    /// compliance API): all or nothing, one audited change per device whose
    /// state moved, so Conditional Access sees it at the next decision on
    /// every node and Shared Signals tell applications. Needs the permission
    /// to update compliance (Intune Administrator, for a workload or a user).
    /// How many devices changed.
    pub async fn report_compliance(&self, ctx: &Context, body: Value) -> ServiceResult<usize> {
        self.require(ctx, action::DEVICES_COMPLIANCE_UPDATE, &Target::Tenant)?;
        let reports: ComplianceReports = patch::parse_spec(body)?;
        if reports.value.is_empty() || reports.value.len() > MAX_COMPLIANCE_REPORT {
            return Err(ServiceError::invalid(
                "value",
                format!("must name 1 to {MAX_COMPLIANCE_REPORT} devices"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = reports.value.iter().find(|r| !seen.insert(r.device_id)) {
            return Err(ServiceError::invalid(
                "value",
                format!("names device {} twice", twice.device_id),
            ));
        }
        let mut tx = self.write(ctx).await?;
        let mut missing = Vec::new();
        let mut changed = 0;
        for report in &reports.value {
            let Some(record) = tx.get(ctx.tenant, Kind::Device, report.device_id).await? else {
                missing.push(report.device_id.to_string());
                continue;
            };
            let before: DeviceSpec = codec::data(&record)?;
            let mut after = before.clone();
            after.is_compliant = report.is_compliant;
            if let Some(managed) = report.is_managed {
                after.is_managed = managed;
            }
            if let Some(until) = report.compliance_grace_period_expiration_date_time {
                if report.is_compliant {
                    return Err(ServiceError::invalid(
                        "complianceGracePeriodExpirationDateTime",
                        format!(
                            "device {}: a compliant device has no grace period",
                            report.device_id
                        ),
                    ));
                }
                if until > self.now().plus_seconds(MAX_GRACE_DAYS * 86_400) {
                    return Err(ServiceError::invalid(
                        "complianceGracePeriodExpirationDateTime",
                        format!(
                            "device {}: at most {MAX_GRACE_DAYS} days ahead",
                            report.device_id
                        ),
                    ));
                }
            }
            after.compliance_grace_period_expiration_date_time =
                report.compliance_grace_period_expiration_date_time;
            after.compliance_reason = report.compliance_reason.clone();
            validate::device_spec(&after)?;
            let changes = patch::changes(&before.json(), &after.json());
            if changes.is_empty() {
                continue;
            }
            let updated = codec::next_version(&record, self.now(), device_keys(&after), &after)?;
            tx.update(ctx.tenant, &updated).await?;
            let event =
                crate::EventDraft::new(tessera_directory::audit_action::AuditAction::DeviceUpdate)
                    .on(Kind::Device, record.id, &after.display_name)
                    .changes(changes);
            self.audit(tx.as_mut(), ctx, event).await?;
            changed += 1;
        }
        if !missing.is_empty() {
            // Nothing is written: the transaction is dropped.
            return Err(ServiceError::invalid(
                "value",
                format!("no such device: {}", missing.join(", ")),
            ));
        }
        if changed > 0 {
            tx.commit().await?;
        }
        Ok(changed)
    }
}

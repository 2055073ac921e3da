//! A role's PIM settings (Graph's role management policy): stored per role as
//! `Kind::PimPolicy` (key1 `role:<role id>`), applying at every scope; a role
//! never changed has `tessera_pim::Settings::default()` (MFA and a justification
//! to activate, for at most eight hours).

use serde::Serialize;
use serde_json::Value;
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_pim::{Approver, Settings};
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use super::{Pim, role_named};
use crate::codec::{self, Keys};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

/// A role's settings as the API shows them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub role_definition_id: Uuid,
    pub role: &'static str,
    /// Whether these are the defaults (the role's settings were never changed).
    pub is_default: bool,
    /// The version to send as `If-Match` when replacing them (0: never stored).
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified_date_time: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: Settings,
}

fn key(role: Uuid) -> String {
    format!("role:{role}")
}

/// The settings governing a role's schedules, with the record holding them.
pub(crate) async fn load(
    reader: &mut dyn Reader,
    tenant: TenantId,
    role: Uuid,
) -> ServiceResult<(Option<tessera_store::Record>, Settings)> {
    match reader
        .get_by_key1(tenant, Kind::PimPolicy, &key(role))
        .await?
    {
        Some(record) => {
            let settings: Settings = codec::data(&record)?;
            // Stored settings were checked when written; a record that no longer
            // passes is not used to decide anything.
            settings.check().map_err(|problem| {
                ServiceError::Internal(format!("stored PIM settings of role {role}: {problem}"))
            })?;
            Ok((Some(record), settings))
        }
        None => Ok((None, Settings::default())),
    }
}

fn view(role: Uuid, record: Option<&tessera_store::Record>, settings: Settings) -> SettingsView {
    SettingsView {
        role_definition_id: role,
        role: tessera_directory::roles::built_in(role)
            .map(|r| r.display_name)
            .unwrap_or("role"),
        is_default: record.is_none(),
        version: record.map(|r| r.version).unwrap_or(0),
        modified_date_time: record.map(|r| r.modified),
        settings,
    }
}

impl Pim {
    /// Writes one PIM policy record (a role's settings, the alert thresholds)
    /// under `key` with its audit event, and commits.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn save_policy<P: Serialize>(
        &self,
        mut tx: Box<dyn tessera_store::WriteTx>,
        ctx: &Context,
        key: &str,
        record: Option<&tessera_store::Record>,
        name: &str,
        before: &P,
        after: &P,
    ) -> ServiceResult<()> {
        let keys = Keys {
            key1: Some(key.to_string()),
            key2: None,
            sort_key: key.to_string(),
        };
        codec::put(
            tx.as_mut(),
            ctx.tenant,
            Kind::PimPolicy,
            record,
            Uuid::new_v4(),
            self.now(),
            keys,
            after,
        )
        .await?;
        let event = EventDraft::new(AuditAction::RoleManagementPolicyUpdate)
            .on(Kind::PimPolicy, key, name)
            .changes(patch::changes(
                &serde_json::to_value(before).unwrap_or(Value::Null),
                &serde_json::to_value(after).unwrap_or(Value::Null),
            ));
        self.commit(tx, ctx, event).await
    }

    /// A role's settings.
    pub async fn role_settings(&self, ctx: &Context, role: Uuid) -> ServiceResult<SettingsView> {
        self.require(ctx, action::ROLE_ASSIGNMENTS_READ, &Target::Tenant)?;
        role_named(role)?;
        let mut reader = self.reader().await?;
        let (record, settings) = load(reader.as_mut(), ctx.tenant, role).await?;
        Ok(view(role, record.as_ref(), settings))
    }

    /// Replaces a role's settings (the whole document; members left out take their
    /// defaults). `if_match` is the version last read (0: the defaults).
    pub async fn replace_role_settings(
        &self,
        ctx: &Context,
        role: Uuid,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<SettingsView> {
        self.require(ctx, action::ROLE_ASSIGNMENTS_MANAGE, &Target::Tenant)?;
        let definition = role_named(role)?;
        let settings: Settings = patch::parse_spec(body)?;
        settings
            .check()
            .map_err(|problem| ServiceError::invalid("settings", problem))?;
        let mut tx = self.write(ctx).await?;
        let (record, before) = load(tx.as_mut(), ctx.tenant, role).await?;
        if let Some(sent) = if_match {
            let current = record.as_ref().map(|r| r.version).unwrap_or(0);
            if sent != current {
                return Err(ServiceError::VersionMismatch { sent, current });
            }
        }
        for approver in &settings.approvers {
            let (kind, id) = match approver {
                Approver::User(id) => (Kind::User, *id),
                Approver::Group(id) => (Kind::Group, *id),
            };
            let Some(found) = tx.get(ctx.tenant, kind, id).await? else {
                return Err(ServiceError::invalid(
                    "approvers",
                    format!("no {} with id {id} exists", kind.as_str()),
                ));
            };
            // A group approves through its members: only a role-assignable
            // group, whose membership only privileged administrators change.
            if kind == Kind::Group {
                let group: tessera_directory::model::GroupSpec = codec::data(&found)?;
                if !group.is_assignable_to_role {
                    return Err(ServiceError::invalid(
                        "approvers",
                        format!(
                            "group {id} is not role-assignable: only a role-assignable group can approve"
                        ),
                    ));
                }
            }
        }
        if let Some(context) = &settings.activation_authentication_context {
            let contexts =
                crate::directory::consent::auth_contexts(tx.as_mut(), ctx.tenant).await?;
            if !contexts.contexts.iter().any(|c| &c.id == context) {
                return Err(ServiceError::invalid(
                    "activationAuthenticationContext",
                    format!("the tenant has no authentication context {context}"),
                ));
            }
        }
        if settings == before && record.is_some() {
            return Ok(view(role, record.as_ref(), before));
        }
        self.save_policy(
            tx,
            ctx,
            &key(role),
            record.as_ref(),
            definition.display_name,
            &before,
            &settings,
        )
        .await?;
        let mut reader = self.reader().await?;
        let (record, settings) = load(reader.as_mut(), ctx.tenant, role).await?;
        Ok(view(role, record.as_ref(), settings))
    }
}

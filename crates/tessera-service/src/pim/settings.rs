//! A role's or a group's PIM settings (Graph's role management policy): stored
//! per role as `Kind::PimPolicy` (key1 `role:<role id>`), applying at every
//! scope, and per group and access (`group:<group id>:member` or `...:owner`); a
//! target never changed has `tessera_pim::Settings::default()` (MFA and a
//! justification to activate, for at most eight hours).

use serde::Serialize;
use serde_json::Value;
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_pim::{Approver, GroupAccess, Settings, Target as PimTarget};
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
    /// For a role's settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_definition_id: Option<Uuid>,
    /// For a group's settings: the group and `member` or `owner`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub access_id: Option<GroupAccess>,
    /// The role's or the group's name.
    pub role: String,
    pub is_default: bool,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub modified_date_time: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: Settings,
}

/// A target's settings and their record (none: the defaults).
pub(crate) async fn load(
    reader: &mut dyn Reader,
    tenant: TenantId,
    target: &PimTarget,
) -> ServiceResult<(Option<tessera_store::Record>, Settings)> {
    let key = target.settings_key();
    match reader.get_by_key1(tenant, Kind::PimPolicy, &key).await? {
        Some(record) => {
            let settings: Settings = codec::data(&record)?;
            // Stored settings were checked when written; a record that no longer
            // passes is not used to decide anything.
            settings.check().map_err(|problem| {
                ServiceError::Internal(format!("stored PIM settings {key}: {problem}"))
            })?;
            Ok((Some(record), settings))
        }
        None => Ok((None, Settings::default())),
    }
}

/// A role's settings apply at every scope: they are the tenant scope's.
pub(crate) fn role_target(role: Uuid) -> PimTarget {
    PimTarget::Role {
        role_definition_id: role,
        directory_scope_id: "/".to_string(),
    }
}

fn view(
    target: &PimTarget,
    name: String,
    record: Option<&tessera_store::Record>,
    settings: Settings,
) -> SettingsView {
    SettingsView {
        role_definition_id: target.role(),
        group_id: target.group().map(|(group, _)| group),
        access_id: target.group().map(|(_, access)| access),
        role: name,
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
        self.target_settings(ctx, &role_target(role)).await
    }

    /// A group's settings for membership or ownership (readers of the group's
    /// members).
    pub async fn group_settings(
        &self,
        ctx: &Context,
        group: Uuid,
        access: GroupAccess,
    ) -> ServiceResult<SettingsView> {
        self.require(ctx, action::GROUPS_MEMBERS_READ, &Target::Tenant)?;
        self.target_settings(
            ctx,
            &PimTarget::Group {
                group_id: group,
                access_id: access,
            },
        )
        .await
    }

    async fn target_settings(
        &self,
        ctx: &Context,
        target: &PimTarget,
    ) -> ServiceResult<SettingsView> {
        let mut reader = self.reader().await?;
        let resolved = super::requests::resolve(reader.as_mut(), ctx.tenant, target).await?;
        let (record, settings) = load(reader.as_mut(), ctx.tenant, target).await?;
        Ok(view(target, resolved.name, record.as_ref(), settings))
    }

    pub async fn replace_role_settings(
        &self,
        ctx: &Context,
        role: Uuid,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<SettingsView> {
        self.require(ctx, action::ROLE_ASSIGNMENTS_MANAGE, &Target::Tenant)?;
        role_named(role)?;
        self.replace_settings(ctx, &role_target(role), body, if_match)
            .await
    }

    /// Replaces a group's settings for membership or ownership (those who
    /// manage its assignments).
    pub async fn replace_group_settings(
        &self,
        ctx: &Context,
        group: Uuid,
        access: GroupAccess,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<SettingsView> {
        let target = PimTarget::Group {
            group_id: group,
            access_id: access,
        };
        let mut reader = self.reader().await?;
        super::requests::resolve(reader.as_mut(), ctx.tenant, &target).await?;
        if !self
            .administers_target(reader.as_mut(), ctx, &target)
            .await?
        {
            return Err(ServiceError::Forbidden {
                reason: "changing a group's PIM settings needs the permission to change its members (or owners)".to_string(),
            });
        }
        drop(reader);
        self.replace_settings(ctx, &target, body, if_match).await
    }

    async fn replace_settings(
        &self,
        ctx: &Context,
        target: &PimTarget,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<SettingsView> {
        let settings: Settings = patch::parse_spec(body)?;
        settings
            .check()
            .map_err(|problem| ServiceError::invalid("settings", problem))?;
        let mut tx = self.write(ctx).await?;
        let resolved = super::requests::resolve(tx.as_mut(), ctx.tenant, target).await?;
        let (record, before) = load(tx.as_mut(), ctx.tenant, target).await?;
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
            return Ok(view(target, resolved.name, record.as_ref(), before));
        }
        self.save_policy(
            tx,
            ctx,
            &target.settings_key(),
            record.as_ref(),
            &resolved.name,
            &before,
            &settings,
        )
        .await?;
        let mut reader = self.reader().await?;
        let (record, settings) = load(reader.as_mut(), ctx.tenant, target).await?;
        Ok(view(target, resolved.name, record.as_ref(), settings))
    }
}

//! Discovery and alerts (the rules are `tessera_pim::alerts`): standing and
//! permanent privilege, roles assigned outside PIM, too many Global
//! Administrators, unused eligibilities, activations without MFA; the alert
//! thresholds (`Kind::PimPolicy`, key1 `alerts`); and the one action that turns a
//! standing or permanent assignment into an eligibility.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::patch;
use tessera_directory::roles::{self, action};
use tessera_pim::alerts::{self, Alert, AlertKind, AlertSettings, Held, Holding};
use tessera_pim::{Kind as ScheduleKind, Schedule, Window};
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use super::{Pim, settings};
use crate::codec;
use crate::directory::role_schedules::{self, RoleSchedule};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

const KEY: &str = "alerts";

/// An alert as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: AlertKind,
    pub description: &'static str,
    /// What to do about it.
    pub remediation: &'static str,
    pub severity: &'static str,
    pub incident_count: usize,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub incidents: Vec<alerts::Incident>,
}

fn view(alert: Alert) -> AlertView {
    let (description, remediation, severity) = match alert.kind {
        AlertKind::PermanentPrivilegedAssignment => (
            "privileged roles are held active with no end",
            "convert them to eligible (convertToEligible) so they are activated when needed",
            "high",
        ),
        AlertKind::AssignedOutsidePim => (
            "roles are assigned directly, outside PIM: no rule governs them",
            "convert them to eligible, or assign them through PIM with an end",
            "medium",
        ),
        AlertKind::TooManyGlobalAdministrators => (
            "more principals hold Global Administrator than the tenant's threshold",
            "remove the ones not needed, or give them a less privileged role",
            "high",
        ),
        AlertKind::UnusedEligibility => (
            "administrators eligible for a privileged role have not activated it recently",
            "remove eligibilities nobody uses",
            "low",
        ),
        AlertKind::ActivationWithoutMfa => (
            "privileged roles were activated without multifactor authentication",
            "require MFA (or an authentication context) in the role's settings",
            "medium",
        ),
    };
    AlertView {
        kind: alert.kind,
        description,
        remediation,
        severity,
        incident_count: alert.incidents.len(),
        incidents: alert.incidents,
    }
}

/// Alert thresholds as the API shows them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AlertSettingsView {
    pub version: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: AlertSettings,
}

async fn load_settings(
    reader: &mut dyn Reader,
    tenant: tessera_core::TenantId,
) -> ServiceResult<(Option<tessera_store::Record>, AlertSettings)> {
    match reader.get_by_key1(tenant, Kind::PimPolicy, KEY).await? {
        Some(record) => {
            let settings = codec::data(&record)?;
            Ok((Some(record), settings))
        }
        None => Ok((None, AlertSettings::default())),
    }
}

/// What a conversion asks for.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConvertBody {
    #[serde(default)]
    justification: Option<String>,
}

impl Pim {
    /// The alerts that fire now.
    pub async fn alerts(&self, ctx: &Context) -> ServiceResult<Vec<AlertView>> {
        self.require(ctx, action::ROLE_ASSIGNMENTS_READ, &Target::Tenant)?;
        let now = self.now();
        let mut reader = self.reader().await?;
        let (_, thresholds) = load_settings(reader.as_mut(), ctx.tenant).await?;
        let mut holdings = Vec::new();
        for record in
            codec::list_all(reader.as_mut(), ctx.tenant, Kind::RoleAssignment, None).await?
        {
            let spec = role_schedules::standing_spec(&record)?;
            holdings.push(Held {
                id: record.id,
                principal: spec.principal_id,
                role: spec.role_definition_id,
                scope: spec.directory_scope_id,
                privileged: is_privileged(spec.role_definition_id),
                holding: Holding::Standing,
                window: role_schedules::standing_schedule(&record).window,
            });
        }
        for record in codec::list_all(reader.as_mut(), ctx.tenant, Kind::PimSchedule, None).await? {
            let stored = role_schedules::read(&record)?;
            // The alerts are about directory roles.
            let tessera_pim::Target::Role {
                role_definition_id: role,
                directory_scope_id: scope,
            } = stored.target.clone()
            else {
                continue;
            };
            holdings.push(Held {
                id: record.id,
                principal: stored.principal_id,
                role,
                scope,
                privileged: is_privileged(role),
                holding: match (stored.schedule.kind, stored.schedule.activated_from) {
                    (ScheduleKind::Eligibility, _) => Holding::Eligible,
                    (ScheduleKind::Assignment, Some(_)) => Holding::Activated,
                    (ScheduleKind::Assignment, None) => Holding::Assigned,
                },
                window: stored.schedule.window,
            });
        }
        let activations = super::requests::activations(reader.as_mut(), ctx.tenant).await?;
        Ok(alerts::alerts(
            &holdings,
            &activations,
            roles::GLOBAL_ADMINISTRATOR,
            now,
            &thresholds,
        )
        .into_iter()
        .map(view)
        .collect())
    }

    pub async fn alert_settings(&self, ctx: &Context) -> ServiceResult<AlertSettingsView> {
        self.require(ctx, action::ROLE_ASSIGNMENTS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let (record, settings) = load_settings(reader.as_mut(), ctx.tenant).await?;
        Ok(AlertSettingsView {
            version: record.map(|r| r.version).unwrap_or(0),
            settings,
        })
    }

    pub async fn replace_alert_settings(
        &self,
        ctx: &Context,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<AlertSettingsView> {
        self.require(ctx, action::ROLE_ASSIGNMENTS_MANAGE, &Target::Tenant)?;
        let settings: AlertSettings = patch::parse_spec(body)?;
        settings
            .check()
            .map_err(|problem| ServiceError::invalid("settings", problem))?;
        let mut tx = self.write(ctx).await?;
        let (record, before) = load_settings(tx.as_mut(), ctx.tenant).await?;
        let current = record.as_ref().map(|r| r.version).unwrap_or(0);
        if let Some(sent) = if_match
            && sent != current
        {
            return Err(ServiceError::VersionMismatch { sent, current });
        }
        if record.is_some() && before == settings {
            return Ok(AlertSettingsView {
                version: current,
                settings,
            });
        }
        self.save_policy(
            tx,
            ctx,
            KEY,
            record.as_ref(),
            "PIM alerts",
            &before,
            &settings,
        )
        .await?;
        Ok(AlertSettingsView {
            version: current + 1,
            settings,
        })
    }

    /// Turns a standing role assignment, or a permanent one made through PIM, into
    /// an eligibility for the same role and scope (within the role's maximum
    /// eligibility): the privilege is then activated when needed. The tenant's
    /// last standing Global Administrator is kept (the way back in).
    pub async fn convert_to_eligible(
        &self,
        ctx: &Context,
        id: Uuid,
        body: Option<Value>,
    ) -> ServiceResult<super::ScheduleView> {
        self.require(ctx, action::ROLE_ASSIGNMENTS_MANAGE, &Target::Tenant)?;
        let body: ConvertBody = match body {
            Some(body) => patch::parse_spec(body)?,
            None => ConvertBody::default(),
        };
        super::check_justification(body.justification.as_deref())?;
        let now = self.now();
        let mut tx = self.write(ctx).await?;
        let (principal, role, scope, removed) = if let Some(record) =
            tx.get(ctx.tenant, Kind::RoleAssignment, id).await?
        {
            let spec = role_schedules::standing_spec(&record)?;
            if spec.role_definition_id == roles::GLOBAL_ADMINISTRATOR
                && spec.directory_scope_id == "/"
            {
                self.directory
                    .refuse_losing_last_global_administrator(tx.as_mut(), ctx, spec.principal_id)
                    .await?;
            }
            tx.delete(ctx.tenant, Kind::RoleAssignment, id, Some(record.version))
                .await?;
            (
                spec.principal_id,
                spec.role_definition_id,
                spec.directory_scope_id,
                "standing",
            )
        } else if let Some(record) = tx.get(ctx.tenant, Kind::PimSchedule, id).await? {
            let stored = role_schedules::read(&record)?;
            let tessera_pim::Target::Role {
                role_definition_id,
                directory_scope_id,
            } = stored.target.clone()
            else {
                return Err(ServiceError::NotFound {
                    kind: "roleAssignment",
                    id: id.to_string(),
                });
            };
            if stored.schedule.kind != ScheduleKind::Assignment
                || stored.schedule.activated_from.is_some()
                || stored.schedule.window.end.is_some()
            {
                return Err(ServiceError::Conflict {
                        message: "only a standing or permanent assignment is converted; this one already ends".to_string(),
                    });
            }
            tx.delete(ctx.tenant, Kind::PimSchedule, id, Some(record.version))
                .await?;
            (
                stored.principal_id,
                role_definition_id,
                directory_scope_id,
                "permanent",
            )
        } else {
            return Err(ServiceError::NotFound {
                kind: "roleAssignment",
                id: id.to_string(),
            });
        };
        if tx.get(ctx.tenant, Kind::Group, principal).await?.is_some() {
            return Err(ServiceError::Conflict {
                message: "a group's role assignment is not converted: its members could not activate an eligibility; make the members eligible instead".to_string(),
            });
        }
        let target = tessera_pim::Target::Role {
            role_definition_id: role,
            directory_scope_id: scope.clone(),
        };
        let (_, role_settings) =
            settings::load(tx.as_mut(), ctx.tenant, &settings::role_target(role)).await?;
        // An eligibility the principal already has is kept as it is.
        let existing = role_schedules::of_principal(tx.as_mut(), ctx.tenant, principal, &target)
            .await?
            .into_iter()
            .find(|(_, s)| {
                s.schedule.kind == ScheduleKind::Eligibility
                    && tessera_pim::active_at(&s.schedule, now)
            });
        let (record, stored) = match existing {
            Some(found) => found,
            None => {
                let stored = RoleSchedule {
                    principal_id: principal,
                    target: target.clone(),
                    schedule: Schedule {
                        id: Uuid::new_v4(),
                        kind: ScheduleKind::Eligibility,
                        window: Window {
                            start: now,
                            end: role_settings
                                .max_eligibility_seconds
                                .map(|seconds| now.plus_seconds(seconds)),
                        },
                        activated_from: None,
                    },
                    created_using: id,
                    end_recorded: false,
                };
                let record = codec::new_record(
                    Kind::PimSchedule,
                    stored.schedule.id,
                    now,
                    role_schedules::keys(&stored),
                    &stored,
                )?;
                tx.insert(ctx.tenant, &record).await?;
                (record, stored)
            }
        };
        let role_name = roles::built_in(role)
            .map(|r| r.display_name)
            .unwrap_or("role");
        let event = EventDraft::new(AuditAction::RoleScheduleConvert)
            .on(Kind::PimSchedule, record.id, role_name)
            .details(json!({
                "from": removed,
                "assignmentId": id,
                "eligibilityScheduleId": record.id,
                "principalId": principal,
                "role": role_name,
                "directoryScopeId": scope,
                "justification": body.justification,
            }));
        self.commit(tx, ctx, event).await?;
        Ok(super::requests::schedule_view_of(&record, &stored, now))
    }
}

fn is_privileged(role: Uuid) -> bool {
    roles::built_in(role).is_some_and(|r| r.is_privileged)
}

//! Role schedules (`Kind::PimSchedule`): a principal's eligibility for a directory
//! role, or its assignment for a time (an activation, or an administrator's
//! time-bound or permanent assignment made through PIM).
//!
//! The directory owns these records because it answers, at every use, which role
//! grants a principal holds (`roles::grants_of`): a schedule grants only while
//! `tessera_pim::granted_at` says so at that moment, so an activation past its end
//! grants nothing on any node whether or not a job has removed it yet. The PIM
//! context (`crate::pim`) owns everything else: the requests, the rules, the
//! settings, approvals and notifications; it writes the records through this
//! module so their layout lives in one place.
//!
//! Keys: key2 is the principal; the sort key is `role|scope|principal|kind`, so a
//! principal's schedules for one role and scope are one prefix under its key2, and
//! a role's schedules one prefix of the kind.

use serde::{Deserialize, Serialize};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::authz::Grant;
use tessera_directory::model::{DirectoryScope, RoleAssignmentSpec};
use tessera_pim::{Kind as ScheduleKind, Schedule, Window};
use tessera_store::{Kind, Reader, Record};
use uuid::Uuid;

use crate::codec::{self, Keys};
use crate::error::ServiceResult;

/// A stored schedule: whose, for which role at which scope, and its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoleSchedule {
    pub principal_id: Uuid,
    pub role_definition_id: Uuid,
    pub directory_scope_id: String,
    /// Its `id` is the record's id.
    pub schedule: Schedule,
    /// The request that made it, or last changed it.
    pub created_using: Uuid,
    /// Set once the expiry job has recorded the schedule's end in the audit trail.
    #[serde(default)]
    pub end_recorded: bool,
}

/// The sort-key prefix of one role at one scope (`role|scope|`).
pub(crate) fn target_prefix(role: Uuid, scope: &str) -> String {
    format!("{role}|{scope}|")
}

pub(crate) fn keys(schedule: &RoleSchedule) -> Keys {
    let kind = match schedule.schedule.kind {
        ScheduleKind::Eligibility => "eligibility",
        ScheduleKind::Assignment => "assignment",
    };
    Keys {
        key1: None,
        key2: Some(schedule.principal_id.to_string()),
        sort_key: format!(
            "{}{}|{kind}",
            target_prefix(schedule.role_definition_id, &schedule.directory_scope_id),
            schedule.principal_id
        ),
    }
}

pub(crate) fn read(record: &Record) -> ServiceResult<RoleSchedule> {
    codec::data(record)
}

/// A principal's schedules for one role at one scope, with their records.
pub(crate) async fn of_principal(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
    role: Uuid,
    scope: &str,
) -> ServiceResult<Vec<(Record, RoleSchedule)>> {
    let records = codec::list_all_prefixed(
        reader,
        tenant,
        Kind::PimSchedule,
        Some(principal.to_string()),
        Some(target_prefix(role, scope)),
    )
    .await?;
    records
        .into_iter()
        .map(|record| {
            let schedule = read(&record)?;
            Ok((record, schedule))
        })
        .collect()
}

/// A principal's standing role assignment (one made outside PIM) for one role at
/// one scope: to PIM's rules, a permanent active assignment.
pub(crate) async fn standing(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
    role: Uuid,
    scope: &str,
) -> ServiceResult<Option<Record>> {
    Ok(reader
        .get_by_key1(
            tenant,
            Kind::RoleAssignment,
            &format!("{principal}|{role}|{scope}"),
        )
        .await?)
}

/// A standing assignment seen as a schedule: active, permanent, since it was made.
pub(crate) fn standing_schedule(record: &Record) -> Schedule {
    Schedule {
        id: record.id,
        kind: ScheduleKind::Assignment,
        window: Window {
            start: record.created,
            end: None,
        },
        activated_from: None,
    }
}

/// The role grants a principal's own schedules give at `now`.
pub(crate) async fn grants_at(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
    now: Timestamp,
) -> ServiceResult<Vec<Grant>> {
    let records = codec::list_all(
        reader,
        tenant,
        Kind::PimSchedule,
        Some(principal.to_string()),
    )
    .await?;
    let stored: Vec<RoleSchedule> = records.iter().map(read).collect::<ServiceResult<_>>()?;
    let mut grants = Vec::new();
    for held in &stored {
        let same_target: Vec<Schedule> = stored
            .iter()
            .filter(|s| {
                s.role_definition_id == held.role_definition_id
                    && s.directory_scope_id == held.directory_scope_id
            })
            .map(|s| s.schedule.clone())
            .collect();
        if !tessera_pim::granted_at(&same_target, &held.schedule, now) {
            continue;
        }
        if let Some(scope) = DirectoryScope::parse(&held.directory_scope_id) {
            grants.push(Grant {
                assignment_id: held.schedule.id,
                role_id: held.role_definition_id,
                scope,
            });
        }
    }
    Ok(grants)
}

/// Whether a principal has any record of `kind` under its key2: a standing role
/// assignment, or a role schedule (eligible or assigned, current or recently
/// ended), either of which makes it protected like a role holder.
pub(crate) async fn any_of(
    reader: &mut dyn Reader,
    tenant: TenantId,
    kind: Kind,
    principal: Uuid,
) -> ServiceResult<bool> {
    let query = tessera_store::ListQuery {
        limit: 1,
        key2: Some(principal.to_string()),
        ..Default::default()
    };
    Ok(!reader.list(tenant, kind, &query).await?.is_empty())
}

/// The spec a standing assignment record holds.
pub(crate) fn standing_spec(record: &Record) -> ServiceResult<RoleAssignmentSpec> {
    codec::data(record)
}

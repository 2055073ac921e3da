//! PIM schedules (`Kind::PimSchedule`): a principal's eligibility for a directory
//! role or for membership or ownership of a group, or its assignment for a time
//! (an activation, or an administrator's time-bound or permanent assignment made
//! through PIM).
//!
//! The directory owns these records because it answers, at every use, which role
//! grants a principal holds (`roles::grants_of`) and which groups it is in
//! (`groups::containing_groups`) or owns: a schedule grants only while
//! `tessera_pim::granted_at` says so at that moment, so an activation past its end
//! grants nothing on any node whether or not a job has removed it yet. The PIM
//! context (`crate::pim`) owns everything else: the requests, the rules, the
//! settings, approvals and notifications; it writes the records through this
//! module so their layout lives in one place.
//!
//! Keys: key2 is the principal; the sort key is the target's prefix
//! (`role|scope|`, or `group|<id>|member|` and `...|owner|`) then
//! `principal|kind`, so a principal's schedules for one target are one prefix
//! under its key2, and a role's or a group's schedules one prefix of the kind.

use serde::{Deserialize, Serialize};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::authz::Grant;
use tessera_directory::model::{DirectoryScope, RoleAssignment, RoleAssignmentSpec};
use tessera_pim::{GroupAccess, Kind as ScheduleKind, Schedule, Target, Window};
use tessera_store::{Kind, Reader, Record};
use uuid::Uuid;

use crate::codec::{self, Keys};
use crate::error::ServiceResult;

/// A stored schedule: whose, for which target, and its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoleSchedule {
    pub principal_id: Uuid,
    #[serde(flatten)]
    pub target: Target,
    /// Its `id` is the record's id.
    pub schedule: Schedule,
    /// The request that made it, or last changed it.
    pub created_using: Uuid,
    /// Set once the expiry job has recorded the schedule's end in the audit trail.
    #[serde(default)]
    pub end_recorded: bool,
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
            schedule.target.sort_prefix(),
            schedule.principal_id
        ),
    }
}

pub(crate) fn read(record: &Record) -> ServiceResult<RoleSchedule> {
    codec::data(record)
}

/// A principal's schedules for one target, with their records.
pub(crate) async fn of_principal(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
    target: &Target,
) -> ServiceResult<Vec<(Record, RoleSchedule)>> {
    let records = codec::list_all_prefixed(
        reader,
        tenant,
        Kind::PimSchedule,
        Some(principal.to_string()),
        Some(target.sort_prefix()),
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

/// A principal's own schedules, all targets.
async fn all_of(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
) -> ServiceResult<Vec<RoleSchedule>> {
    let records = codec::list_all(
        reader,
        tenant,
        Kind::PimSchedule,
        Some(principal.to_string()),
    )
    .await?;
    records.iter().map(read).collect()
}

/// The schedules among `stored` that grant at `now`, each judged with the
/// others for the same target (an activation needs its eligibility).
fn granting(stored: &[RoleSchedule], now: Timestamp) -> impl Iterator<Item = &RoleSchedule> {
    stored.iter().filter(move |held| {
        let same_target: Vec<Schedule> = stored
            .iter()
            .filter(|s| s.target == held.target)
            .map(|s| s.schedule.clone())
            .collect();
        tessera_pim::granted_at(&same_target, &held.schedule, now)
    })
}

/// The role grants a principal's own schedules give at `now`, and whether it
/// has any schedule at all (what it holds may then change with time alone).
pub(crate) async fn grants_at_timed(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
    now: Timestamp,
) -> ServiceResult<(Vec<Grant>, bool)> {
    let stored = all_of(reader, tenant, principal).await?;
    Ok((role_grants(&stored, now), !stored.is_empty()))
}

/// Both at once, from one read: the role grants a principal's schedules give
/// at `now`, and the groups they make it a member (or owner) of.
pub(crate) async fn held_at(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
    access: GroupAccess,
    now: Timestamp,
) -> ServiceResult<(Vec<Grant>, Vec<Uuid>, bool)> {
    let stored = all_of(reader, tenant, principal).await?;
    Ok((
        role_grants(&stored, now),
        group_ids(&stored, access, now),
        !stored.is_empty(),
    ))
}

fn role_grants(stored: &[RoleSchedule], now: Timestamp) -> Vec<Grant> {
    let mut grants = Vec::new();
    for held in granting(stored, now) {
        if let Target::Role {
            role_definition_id,
            directory_scope_id,
        } = &held.target
            && let Some(scope) = DirectoryScope::parse(directory_scope_id)
        {
            grants.push(Grant {
                assignment_id: held.schedule.id,
                role_id: *role_definition_id,
                scope,
            });
        }
    }
    grants
}

/// When the first of the assignments a principal's own schedules give at `now`
/// (roles, group memberships and ownerships) ends (none: none ends).
pub(crate) async fn earliest_end_at(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
    now: Timestamp,
) -> ServiceResult<Option<Timestamp>> {
    let stored = all_of(reader, tenant, principal).await?;
    let schedules: Vec<Schedule> = stored.iter().map(|s| s.schedule.clone()).collect();
    Ok(granting(&stored, now)
        .filter_map(|held| ends(&held.schedule, &schedules))
        .min())
}

/// When an assignment stops granting, as scheduled: at its end, or at its
/// eligibility's if an activation's eligibility ends first (none: never).
fn ends(schedule: &Schedule, schedules: &[Schedule]) -> Option<Timestamp> {
    let eligibility = schedule.activated_from.and_then(|from| {
        schedules
            .iter()
            .find(|s| s.id == from)
            .and_then(|s| s.window.end)
    });
    match (schedule.window.end, eligibility) {
        (Some(own), Some(theirs)) => Some(own.min(theirs)),
        (own, theirs) => own.or(theirs),
    }
}

/// The role assignment the PIM schedule `id` gives at `now`, if it gives one.
pub(crate) async fn assignment_now(
    reader: &mut dyn Reader,
    tenant: TenantId,
    id: Uuid,
    now: Timestamp,
) -> ServiceResult<Option<RoleAssignment>> {
    let Some(record) = reader.get(tenant, Kind::PimSchedule, id).await? else {
        return Ok(None);
    };
    let principal = read(&record)?.principal_id;
    Ok(assignments_at(reader, tenant, Some(principal), None, now)
        .await?
        .into_iter()
        .find(|a| a.id == id))
}

/// The role assignments PIM schedules give at `now` (a principal's, or all;
/// one role's, or all), as role assignments managed by PIM.
pub(crate) async fn assignments_at(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Option<Uuid>,
    role: Option<Uuid>,
    now: Timestamp,
) -> ServiceResult<Vec<RoleAssignment>> {
    let records = codec::list_all_prefixed(
        reader,
        tenant,
        Kind::PimSchedule,
        principal.map(|p| p.to_string()),
        role.map(|r| format!("{r}|")),
    )
    .await?;
    // Each principal's schedules for each role and scope, together (an
    // activation is judged with its eligibility).
    let mut by_target: std::collections::HashMap<(Uuid, Target), Vec<(&Record, RoleSchedule)>> =
        std::collections::HashMap::new();
    for record in &records {
        let held = read(record)?;
        if matches!(held.target, Target::Role { .. }) {
            by_target
                .entry((held.principal_id, held.target.clone()))
                .or_default()
                .push((record, held));
        }
    }
    let mut found = Vec::new();
    for together in by_target.values() {
        let same: Vec<Schedule> = together.iter().map(|(_, s)| s.schedule.clone()).collect();

        for (record, held) in together {
            let Target::Role {
                role_definition_id,
                directory_scope_id,
            } = &held.target
            else {
                continue;
            };
            if !tessera_pim::granted_at(&same, &held.schedule, now) {
                continue;
            }
            found.push(RoleAssignment {
                id: record.id,
                spec: RoleAssignmentSpec {
                    principal_id: held.principal_id,
                    role_definition_id: *role_definition_id,
                    directory_scope_id: directory_scope_id.clone(),
                },
                created_date_time: held.schedule.window.start,
                version: record.version,
                managed_by_pim: true,
                end_date_time: ends(&held.schedule, &same),
            });
        }
    }
    found.sort_by_key(|a| (a.created_date_time, a.id));
    Ok(found)
}

/// The groups a principal's own schedules make it a member (or an owner) of at
/// `now`.
pub(crate) async fn groups_at(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
    access: GroupAccess,
    now: Timestamp,
) -> ServiceResult<Vec<Uuid>> {
    let stored = all_of(reader, tenant, principal).await?;
    Ok(group_ids(&stored, access, now))
}

fn group_ids(stored: &[RoleSchedule], access: GroupAccess, now: Timestamp) -> Vec<Uuid> {
    let mut groups: Vec<Uuid> = granting(stored, now)
        .filter_map(|held| held.target.group())
        .filter(|(_, a)| *a == access)
        .map(|(group, _)| group)
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// The principals a group's membership schedules make members at `now`.
pub(crate) async fn members_at(
    reader: &mut dyn Reader,
    tenant: TenantId,
    group: Uuid,
    now: Timestamp,
) -> ServiceResult<Vec<Uuid>> {
    let prefix = Target::Group {
        group_id: group,
        access_id: GroupAccess::Member,
    }
    .sort_prefix();
    let records =
        codec::list_all_prefixed(reader, tenant, Kind::PimSchedule, None, Some(prefix)).await?;
    let stored: Vec<RoleSchedule> = records.iter().map(read).collect::<ServiceResult<_>>()?;
    let mut members = Vec::new();
    for held in &stored {
        let own: Vec<Schedule> = stored
            .iter()
            .filter(|s| s.principal_id == held.principal_id)
            .map(|s| s.schedule.clone())
            .collect();
        if tessera_pim::granted_at(&own, &held.schedule, now)
            && !members.contains(&held.principal_id)
        {
            members.push(held.principal_id);
        }
    }
    Ok(members)
}

/// Whether a principal's schedules make it an owner of `group` at `now`.
pub(crate) async fn owns_at(
    reader: &mut dyn Reader,
    tenant: TenantId,
    principal: Uuid,
    group: Uuid,
    now: Timestamp,
) -> ServiceResult<bool> {
    Ok(
        groups_at(reader, tenant, principal, GroupAccess::Owner, now)
            .await?
            .contains(&group),
    )
}

/// Whether any schedule (current or not) assigns membership of `group`.
pub(crate) async fn has_member_schedules(
    reader: &mut dyn Reader,
    tenant: TenantId,
    group: Uuid,
) -> ServiceResult<bool> {
    let query = tessera_store::ListQuery {
        limit: 1,
        prefix: Some(
            Target::Group {
                group_id: group,
                access_id: GroupAccess::Member,
            }
            .sort_prefix(),
        ),
        ..Default::default()
    };
    Ok(!reader
        .list(tenant, Kind::PimSchedule, &query)
        .await?
        .is_empty())
}

/// Removes every schedule for a group (the group is being deleted), returning
/// how many there were.
pub(crate) async fn remove_for_group(
    tx: &mut dyn tessera_store::WriteTx,
    tenant: TenantId,
    group: Uuid,
) -> ServiceResult<usize> {
    let records = codec::list_all_prefixed(
        tx,
        tenant,
        Kind::PimSchedule,
        None,
        Some(format!("group|{group}|")),
    )
    .await?;
    for record in &records {
        tx.delete(tenant, Kind::PimSchedule, record.id, Some(record.version))
            .await?;
    }
    Ok(records.len())
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

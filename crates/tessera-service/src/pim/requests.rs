//! Schedule requests for directory roles (Graph's `unifiedRoleAssignmentScheduleRequest`
//! and `unifiedRoleEligibilityScheduleRequest`) and for membership and ownership
//! of groups (Graph's `privilegedAccessGroup...ScheduleRequest`), their answers,
//! and the schedules and instances they leave.
//!
//! A request is decided in the write transaction that applies it (writes are
//! serialized per tenant), on the principal's schedules for the target as they
//! are then: its standing role assignment or group membership or ownership, if
//! any, counts as a permanent active assignment. Every request that is taken is stored (`Kind::PimRequest`, sort key
//! `p|` while it waits for approval, `d|` once answered, then the time it was
//! made) with its audit event; a refused one changes nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz;
use tessera_directory::model::{DirectoryScope, GroupSpec};
use tessera_directory::patch;
use tessera_directory::roles::{self, RoleDefinition};
use tessera_pim::{
    Action, Decision, Expiration, GroupAccess, Kind as ScheduleKind, Pending, Schedule,
    Target as PimTarget, Ticket, Window,
};
use tessera_store::{Kind, Record, Rel, WriteTx};
use uuid::Uuid;

use super::{Pim, caller_id, refused, role_named, settings};
use crate::codec::{self, Keys, Page};
use crate::directory::role_schedules::{self, RoleSchedule};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

/// How long an ended schedule is kept, so it can be renewed (the rules' window).
pub(crate) const KEPT_AFTER_END_SECONDS: i64 = 90 * 86_400;

/// A request's `scheduleInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub start_date_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<ExpirationInfo>,
    /// Recurring schedules are not supported; only `null` is accepted.
    #[serde(default, skip_serializing)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub recurrence: Option<Value>,
}

/// Graph's `expirationPattern`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpirationInfo {
    /// `noExpiration`, `afterDateTime` or `afterDuration` (`notSpecified`: the
    /// longest allowed).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub end_date_time: Option<Timestamp>,
    /// ISO 8601 (`PT8H`, `P90D`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequestBody {
    action: Action,
    principal_id: Uuid,
    #[serde(default)]
    role_definition_id: Option<Uuid>,
    #[serde(default)]
    directory_scope_id: Option<String>,
    #[serde(default)]
    app_scope_id: Option<String>,
    #[serde(default)]
    group_id: Option<Uuid>,
    #[serde(default)]
    access_id: Option<String>,
    #[serde(default)]
    justification: Option<String>,
    #[serde(default)]
    ticket_info: Option<Ticket>,
    #[serde(default)]
    schedule_info: Option<ScheduleInfo>,
    #[serde(default)]
    target_schedule_id: Option<Uuid>,
    #[serde(default)]
    is_validation_only: bool,
}

/// Which requests an endpoint takes: directory roles'
/// (`roleManagement/directory/...`) or groups' (`identityGovernance/privilegedAccess/group/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Roles,
    Groups,
}

impl Family {
    fn of(target: &PimTarget) -> Family {
        match target {
            PimTarget::Role { .. } => Family::Roles,
            PimTarget::Group { .. } => Family::Groups,
        }
    }
}

/// A target's Graph fields: `roleDefinitionId` and `directoryScopeId`, or
/// `groupId` and `accessId`.
type TargetFields = (
    Option<Uuid>,
    Option<String>,
    Option<Uuid>,
    Option<GroupAccess>,
);

fn fields_of(target: &PimTarget) -> TargetFields {
    match target {
        PimTarget::Role {
            role_definition_id,
            directory_scope_id,
        } => (
            Some(*role_definition_id),
            Some(directory_scope_id.clone()),
            None,
            None,
        ),
        PimTarget::Group {
            group_id,
            access_id,
        } => (None, None, Some(*group_id), Some(*access_id)),
    }
}

/// Where a request stands (Graph's status strings; `TimedOut`: no approver
/// answered in time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Status {
    Provisioned,
    PendingApproval,
    Denied,
    Canceled,
    Revoked,
    TimedOut,
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    by: Uuid,
    /// `Approve` or `Deny`.
    review_result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    justification: Option<String>,
    at: Timestamp,
}

/// A stored request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRequest {
    kind: ScheduleKind,
    action: Action,
    principal_id: Uuid,
    #[serde(flatten)]
    target: PimTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    justification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ticket_info: Option<Ticket>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule_info: Option<ScheduleInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_schedule_id: Option<Uuid>,
    created_by: Uuid,
    status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    completed_date_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<Pending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer: Option<Answer>,
    /// Whether the requester's sign-in had proved MFA (for the alerts).
    #[serde(default)]
    mfa: bool,
}

/// A schedule request as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub action: Action,
    /// `eligibility` or `assignment`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: ScheduleKind,
    pub principal_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_definition_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_scope_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Uuid>,
    /// `member` or `owner`, for a group's schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub access_id: Option<GroupAccess>,
    /// For a group's request in a listing: the group's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_display_name: Option<String>,
    pub app_scope_id: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub ticket_info: Option<Ticket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_info: Option<ScheduleInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_schedule_id: Option<Uuid>,
    /// Set when the request needed approval (the request's own id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<Uuid>,
    /// Until when an approver may answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub approval_expires_date_time: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub created_by: Value,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_date_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub completed_date_time: Option<Timestamp>,
    /// The approver's answer, once given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub review: Option<Value>,
    /// For an approver: who the principal is (`userPrincipalName`,
    /// `displayName`), whom they may not otherwise be allowed to read.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub principal: Option<Value>,
    pub is_validation_only: bool,
}

/// A schedule as the API shows it (Graph's `unifiedRoleAssignmentSchedule` and
/// `unifiedRoleEligibilitySchedule`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub id: Uuid,
    pub principal_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_definition_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_scope_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Uuid>,
    /// `member` or `owner`, for a group's schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub access_id: Option<GroupAccess>,
    pub app_scope_id: Option<String>,
    /// For assignments: `Activated` (from an eligibility) or `Assigned`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment_type: Option<&'static str>,
    /// `Direct`: made for the principal itself.
    pub member_type: &'static str,
    /// For an activation: the eligibility it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_eligibility_schedule_id: Option<Uuid>,
    /// The request that made it (none: a role assignment made outside PIM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_using: Option<Uuid>,
    /// `Provisioned` while it is current or ahead; `Expired` once ended.
    pub status: &'static str,
    pub schedule_info: ScheduleInfo,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_date_time: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub modified_date_time: Timestamp,
}

/// An instance: a schedule granting at this moment (Graph's
/// `unifiedRoleAssignmentScheduleInstance` and `...EligibilityScheduleInstance`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub id: Uuid,
    pub principal_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_definition_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_scope_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Uuid>,
    /// `member` or `owner`, for a group's schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub access_id: Option<GroupAccess>,
    /// For a group's instance: the group's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment_type: Option<&'static str>,
    pub member_type: &'static str,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub start_date_time: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub end_date_time: Option<Timestamp>,
    /// The schedule this instance is of.
    pub schedule_id: Uuid,
}

/// Which requests to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestFilter {
    /// All (administrators; a principal sees their own).
    #[default]
    All,
    /// The caller's own.
    MadeByMe,
    /// Those waiting for the caller's approval.
    AwaitingMe,
}

fn request_keys(id: Uuid, data: &StoredRequest, created: Timestamp) -> Keys {
    let state = if data.status == Status::PendingApproval {
        "p"
    } else {
        "d"
    };
    Keys {
        key1: None,
        key2: Some(data.principal_id.to_string()),
        sort_key: format!("{state}|{}|{id}", created.to_rfc3339()),
    }
}

fn kind_name(kind: ScheduleKind) -> &'static str {
    match kind {
        ScheduleKind::Eligibility => "eligibility",
        ScheduleKind::Assignment => "assignment",
    }
}

/// A request's status as of `now`: a wait past its time-out has timed out even
/// before the job records it.
fn status_at(data: &StoredRequest, now: Timestamp) -> Status {
    match (&data.status, &data.pending) {
        (Status::PendingApproval, Some(pending)) if now >= pending.expires => Status::TimedOut,
        (status, _) => *status,
    }
}

fn request_view(record: &Record, now: Timestamp) -> ServiceResult<RequestView> {
    let data: StoredRequest = codec::data(record)?;
    Ok(view_of(record.id, record.created, &data, now, false))
}

fn view_of(
    id: Uuid,
    created: Timestamp,
    data: &StoredRequest,
    now: Timestamp,
    validation_only: bool,
) -> RequestView {
    let (role_definition_id, directory_scope_id, group_id, access_id) = fields_of(&data.target);
    RequestView {
        id,
        action: data.action,
        kind: data.kind,
        principal_id: data.principal_id,
        role_definition_id,
        directory_scope_id,
        group_id,
        access_id,
        group_display_name: None,
        app_scope_id: None,
        status: status_at(data, now),
        justification: data.justification.clone(),
        ticket_info: data.ticket_info.clone(),
        schedule_info: data.schedule_info.clone(),
        target_schedule_id: data.target_schedule_id,
        approval_id: data.pending.as_ref().map(|_| id),
        approval_expires_date_time: data.pending.as_ref().map(|p| p.expires),
        created_by: json!({ "user": { "id": data.created_by } }),
        created_date_time: created,
        completed_date_time: data.completed_date_time,
        review: data.answer.as_ref().map(|answer| {
            json!({
                "reviewedBy": { "user": { "id": answer.by } },
                "reviewResult": answer.review_result,
                "justification": answer.justification,
                "reviewedDateTime": answer.at,
            })
        }),
        is_validation_only: validation_only,
        principal: None,
    }
}

fn schedule_info_of(window: &Window) -> ScheduleInfo {
    ScheduleInfo {
        start_date_time: Some(window.start),
        expiration: Some(match window.end {
            Some(end) => ExpirationInfo {
                kind: "afterDateTime".to_string(),
                end_date_time: Some(end),
                duration: None,
            },
            None => ExpirationInfo {
                kind: "noExpiration".to_string(),
                end_date_time: None,
                duration: None,
            },
        }),
        recurrence: None,
    }
}

pub(crate) fn schedule_view_of(
    record: &Record,
    stored: &RoleSchedule,
    now: Timestamp,
) -> ScheduleView {
    let schedule = &stored.schedule;
    let (role_definition_id, directory_scope_id, group_id, access_id) = fields_of(&stored.target);
    ScheduleView {
        id: record.id,
        principal_id: stored.principal_id,
        role_definition_id,
        directory_scope_id,
        group_id,
        access_id,
        app_scope_id: None,
        assignment_type: assignment_type(schedule),
        member_type: "Direct",
        role_eligibility_schedule_id: schedule.activated_from,
        created_using: Some(stored.created_using),
        status: if schedule.window.end.is_some_and(|end| end <= now) {
            "Expired"
        } else {
            "Provisioned"
        },
        schedule_info: schedule_info_of(&schedule.window),
        created_date_time: record.created,
        modified_date_time: record.modified,
    }
}

fn assignment_type(schedule: &Schedule) -> Option<&'static str> {
    match (schedule.kind, schedule.activated_from) {
        (ScheduleKind::Eligibility, _) => None,
        (ScheduleKind::Assignment, Some(_)) => Some("Activated"),
        (ScheduleKind::Assignment, None) => Some("Assigned"),
    }
}

/// A standing role assignment, seen as a permanent assignment schedule.
fn standing_view(record: &Record) -> ServiceResult<ScheduleView> {
    let spec = role_schedules::standing_spec(record)?;
    Ok(ScheduleView {
        id: record.id,
        principal_id: spec.principal_id,
        role_definition_id: Some(spec.role_definition_id),
        directory_scope_id: Some(spec.directory_scope_id),
        group_id: None,
        access_id: None,
        app_scope_id: None,
        assignment_type: Some("Assigned"),
        member_type: "Direct",
        role_eligibility_schedule_id: None,
        created_using: None,
        status: "Provisioned",
        schedule_info: schedule_info_of(&role_schedules::standing_schedule(record).window),
        created_date_time: record.created,
        modified_date_time: record.modified,
    })
}

/// The request's `Expiration` for the rules.
fn expiration_of(info: Option<&ScheduleInfo>) -> ServiceResult<Expiration> {
    let Some(expiration) = info.and_then(|i| i.expiration.as_ref()) else {
        return Ok(Expiration::NoExpiration);
    };
    let field = "scheduleInfo.expiration";
    match expiration.kind.as_str() {
        "noExpiration" | "notSpecified" => {
            if expiration.end_date_time.is_some() || expiration.duration.is_some() {
                return Err(ServiceError::invalid(
                    field,
                    "an expiration of this type has no endDateTime or duration",
                ));
            }
            Ok(Expiration::NoExpiration)
        }
        "afterDateTime" => match (expiration.end_date_time, &expiration.duration) {
            (Some(end), None) => Ok(Expiration::AfterDateTime(end)),
            _ => Err(ServiceError::invalid(
                field,
                "afterDateTime needs endDateTime (and no duration)",
            )),
        },
        "afterDuration" => match (expiration.end_date_time, &expiration.duration) {
            (None, Some(duration)) => tessera_pim::duration::parse(duration)
                .map(Expiration::AfterDuration)
                .map_err(|problem| ServiceError::invalid(format!("{field}.duration"), problem)),
            _ => Err(ServiceError::invalid(
                field,
                "afterDuration needs duration (and no endDateTime)",
            )),
        },
        other => Err(ServiceError::invalid(
            format!("{field}.type"),
            format!(
                "{other:?} is not an expiration type (noExpiration, afterDateTime, afterDuration)"
            ),
        )),
    }
}

/// A principal's schedules for one target: the stored ones, and its standing
/// role assignment, group membership or ownership as a permanent one.
pub(super) struct Held {
    pub(super) stored: Vec<(Record, RoleSchedule)>,
    pub(super) standing: Option<Record>,
    /// A standing group membership or ownership (its schedule's id is the
    /// principal's, as a link has none of its own).
    standing_link: Option<Uuid>,
}

impl Held {
    pub(super) async fn read(
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        principal: Uuid,
        target: &PimTarget,
    ) -> ServiceResult<Held> {
        let stored = role_schedules::of_principal(tx, tenant, principal, target).await?;
        Ok(match target {
            PimTarget::Role {
                role_definition_id,
                directory_scope_id,
            } => Held {
                stored,
                standing: role_schedules::standing(
                    tx,
                    tenant,
                    principal,
                    *role_definition_id,
                    directory_scope_id,
                )
                .await?,
                standing_link: None,
            },
            PimTarget::Group {
                group_id,
                access_id,
            } => {
                let rel = match access_id {
                    GroupAccess::Member => Rel::Member,
                    GroupAccess::Owner => Rel::Owner,
                };
                let linked = tx
                    .links_to(tenant, rel, principal)
                    .await?
                    .iter()
                    .any(|link| link.source == *group_id);
                Held {
                    stored,
                    standing: None,
                    standing_link: linked.then_some(principal),
                }
            }
        })
    }

    fn schedules(&self) -> Vec<Schedule> {
        let mut all: Vec<Schedule> = self
            .stored
            .iter()
            .map(|(_, s)| s.schedule.clone())
            .collect();
        all.extend(self.standing.iter().map(role_schedules::standing_schedule));
        all.extend(self.standing_link.map(|id| Schedule {
            id,
            kind: ScheduleKind::Assignment,
            window: Window {
                start: Timestamp::from_unix_micros(0),
                end: None,
            },
            activated_from: None,
        }));
        all
    }

    /// The schedule a request without `targetScheduleId` is about: for a
    /// deactivation the activation granting now; else the one schedule of the
    /// kind the action can be about (none when there are several: the client
    /// names one).
    fn default_target(&self, action: Action, kind: ScheduleKind, now: Timestamp) -> Option<Uuid> {
        let all = self.schedules();
        let of_kind = all.iter().filter(|s| s.kind == kind);
        if action == Action::SelfDeactivate {
            return of_kind
                .filter(|s| s.activated_from.is_some() && tessera_pim::active_at(s, now))
                .map(|s| s.id)
                .next();
        }
        let candidates: Vec<Uuid> = of_kind
            .filter(|s| action == Action::AdminRemove || s.activated_from.is_none())
            .map(|s| s.id)
            .collect();
        match candidates.as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    }

    /// Refuses to change or end a standing group membership or ownership: it is
    /// changed on the group itself.
    fn refuse_standing_link(&self, schedule: Uuid) -> ServiceResult<()> {
        if self.standing_link == Some(schedule) {
            return Err(ServiceError::Conflict {
                message: "this is a standing membership or ownership of the group; change it on the group (members or owners), or remove it there and make the principal eligible".to_string(),
            });
        }
        Ok(())
    }
}

/// What a decision reads: the target's settings and the principal's schedules
/// for it.
async fn situation(
    tx: &mut dyn WriteTx,
    tenant: TenantId,
    principal: Uuid,
    target: &Resolved,
) -> ServiceResult<(tessera_pim::Settings, Held)> {
    let (_, target_settings) = settings::load(tx, tenant, &target.target).await?;
    let held = Held::read(tx, tenant, principal, &target.target).await?;
    Ok((target_settings, held))
}

/// What a request is about, checked, with what the rest needs to know of it.
pub(crate) struct Resolved {
    pub(crate) target: PimTarget,
    /// The role's or the group's name (audit trail, notifications).
    pub(crate) name: String,
    /// For a role: its definition.
    role: Option<&'static RoleDefinition>,
    /// Whether holding it is privileged: a privileged role, or a role-assignable
    /// group.
    pub(crate) privileged: bool,
    /// The roles an assignment to it gives (the role; a role-assignable group's
    /// roles), each a protected role assignment.
    roles: Vec<Uuid>,
    /// For a group: whether its members are computed from a rule.
    dynamic: bool,
}

impl Resolved {
    /// The target's fields for an audit event's details.
    fn details(&self) -> Value {
        match &self.target {
            PimTarget::Role {
                role_definition_id,
                directory_scope_id,
            } => json!({
                "role": self.name,
                "roleDefinitionId": role_definition_id,
                "directoryScopeId": directory_scope_id,
            }),
            PimTarget::Group {
                group_id,
                access_id,
            } => json!({
                "group": self.name,
                "groupId": group_id,
                "accessId": access_id,
            }),
        }
    }
}

/// A target whose group has been removed, as the answers and notices name it.
fn gone(target: &PimTarget) -> Resolved {
    Resolved {
        target: target.clone(),
        name: "a removed group".to_string(),
        role: None,
        privileged: false,
        roles: Vec::new(),
        dynamic: false,
    }
}

/// Merges a target's details into an event's.
fn with_target(resolved: &Resolved, mut details: Value) -> Value {
    if let (Some(into), Value::Object(from)) = (details.as_object_mut(), resolved.details()) {
        into.extend(from);
    }
    details
}

/// The target a request names, in the endpoint's family: `roleDefinitionId`
/// (and `directoryScopeId`, `/` when left out), or `groupId` and `accessId`.
fn requested_target(body: &RequestBody, family: Family) -> ServiceResult<PimTarget> {
    match family {
        Family::Roles => {
            if body.group_id.is_some() || body.access_id.is_some() {
                return Err(ServiceError::invalid(
                    "groupId",
                    "group requests go to identityGovernance/privilegedAccess/group/...",
                ));
            }
            let role = body
                .role_definition_id
                .ok_or_else(|| ServiceError::invalid("roleDefinitionId", "is required"))?;
            let definition = role_named(role)?;
            let scope = DirectoryScope::parse(body.directory_scope_id.as_deref().unwrap_or("/"))
                .ok_or_else(|| {
                    ServiceError::invalid(
                        "directoryScopeId",
                        "a directory scope is / or /administrativeUnits/<id>",
                    )
                })?;
            if matches!(scope, DirectoryScope::AdministrativeUnit(_)) && !definition.is_au_scopable
            {
                return Err(ServiceError::invalid(
                    "directoryScopeId",
                    format!(
                        "{} cannot be scoped to an administrative unit",
                        definition.display_name
                    ),
                ));
            }
            Ok(PimTarget::Role {
                role_definition_id: role,
                directory_scope_id: scope.render(),
            })
        }
        Family::Groups => {
            if body.role_definition_id.is_some() || body.directory_scope_id.is_some() {
                return Err(ServiceError::invalid(
                    "roleDefinitionId",
                    "role requests go to roleManagement/directory/...",
                ));
            }
            let group_id = body
                .group_id
                .ok_or_else(|| ServiceError::invalid("groupId", "is required"))?;
            let access = body.access_id.as_deref().ok_or_else(|| {
                ServiceError::invalid("accessId", "is required (member or owner)")
            })?;
            let access_id = GroupAccess::parse(access)
                .ok_or_else(|| ServiceError::invalid("accessId", "must be member or owner"))?;
            Ok(PimTarget::Group {
                group_id,
                access_id,
            })
        }
    }
}

/// Resolves a stored or requested target: a role of the catalog (its scope's
/// administrative unit must exist), or a group that exists.
pub(crate) async fn resolve(
    reader: &mut dyn tessera_store::Reader,
    tenant: TenantId,
    target: &PimTarget,
) -> ServiceResult<Resolved> {
    match target {
        PimTarget::Role {
            role_definition_id, ..
        } => {
            let role = role_named(*role_definition_id)?;
            Ok(Resolved {
                target: target.clone(),
                name: role.display_name.to_string(),
                role: Some(role),
                privileged: role.is_privileged,
                roles: vec![role.id],
                dynamic: false,
            })
        }
        PimTarget::Group { group_id, .. } => {
            let Some(record) = reader.get(tenant, Kind::Group, *group_id).await? else {
                return Err(ServiceError::invalid(
                    "groupId",
                    format!("no group with id {group_id} exists"),
                ));
            };
            let spec: GroupSpec = codec::data(&record)?;
            let roles = if spec.is_assignable_to_role {
                crate::directory::roles::roles_held_by(reader, tenant, *group_id).await?
            } else {
                Vec::new()
            };
            Ok(Resolved {
                target: target.clone(),
                name: spec.display_name.clone(),
                role: None,
                privileged: spec.is_assignable_to_role,
                roles,
                dynamic: spec.is_dynamic(),
            })
        }
    }
}

impl Pim {
    /// `POST roleManagement/directory/role{Eligibility,Assignment}ScheduleRequests`
    /// and `POST identityGovernance/privilegedAccess/group/{eligibility,assignment}ScheduleRequests`:
    /// one of the nine actions, decided by the rules and applied, or left waiting
    /// for approval, or refused with nothing changed.
    pub async fn create_request(
        &self,
        ctx: &Context,
        family: Family,
        kind: ScheduleKind,
        body: Value,
    ) -> ServiceResult<RequestView> {
        let caller = caller_id(ctx)?;
        let body: RequestBody = patch::parse_spec(body)?;
        if body.app_scope_id.is_some() {
            return Err(ServiceError::invalid(
                "appScopeId",
                "application scopes are not supported; use directoryScopeId",
            ));
        }
        if body
            .schedule_info
            .as_ref()
            .is_some_and(|i| i.recurrence.as_ref().is_some_and(|r| !r.is_null()))
        {
            return Err(ServiceError::invalid(
                "scheduleInfo.recurrence",
                "recurring schedules are not supported",
            ));
        }
        let requested = requested_target(&body, family)?;
        let expiration = expiration_of(body.schedule_info.as_ref())?;
        // Who may ask at all is settled before anything is looked up, where
        // that can be known without reading (a role's administrators).
        if !body.action.is_admin() && body.principal_id != caller {
            return Err(refused(tessera_pim::Refusal::NotThePrincipal));
        }
        if body.action.is_admin() && family == Family::Roles && !self.administers(ctx) {
            return Err(refused(tessera_pim::Refusal::NotPermitted));
        }
        let mut tx = self.write(ctx).await?;
        let now = self.now();
        let target = resolve(tx.as_mut(), ctx.tenant, &requested).await?;
        let administers = self
            .administers_target(tx.as_mut(), ctx, &target.target)
            .await?;
        if body.action.is_admin() {
            if !administers {
                return Err(refused(tessera_pim::Refusal::NotPermitted));
            }
            if matches!(
                body.action,
                Action::AdminAssign
                    | Action::AdminUpdate
                    | Action::AdminExtend
                    | Action::AdminRenew
            ) {
                self.protect_assignment(ctx, &target)?;
            }
        }
        let principal_kind = self
            .check_principal(tx.as_mut(), ctx.tenant, body.principal_id, &target)
            .await?;
        if principal_kind == Kind::Group && kind == ScheduleKind::Eligibility {
            // Its members could not activate it: a group's roles are assigned.
            return Err(ServiceError::invalid(
                "principalId",
                "a group cannot be made eligible for a role (its members could not activate it); assign the role to the group, or make the members eligible",
            ));
        }
        self.refuse_second_pending(tx.as_mut(), ctx.tenant, &body, &target, kind, now)
            .await?;
        if let PimTarget::Role {
            directory_scope_id, ..
        } = &target.target
            && let Some(DirectoryScope::AdministrativeUnit(unit)) =
                DirectoryScope::parse(directory_scope_id)
            && tx
                .get(ctx.tenant, Kind::AdministrativeUnit, unit)
                .await?
                .is_none()
        {
            return Err(ServiceError::invalid(
                "directoryScopeId",
                format!("no administrative unit with id {unit} exists"),
            ));
        }
        let mut rules_caller = self.rules_caller(tx.as_mut(), ctx).await?;
        rules_caller.administers = administers;
        let (target_settings, held) =
            situation(tx.as_mut(), ctx.tenant, body.principal_id, &target).await?;
        let schedules = held.schedules();
        let target_schedule = body
            .target_schedule_id
            .or_else(|| held.default_target(body.action, kind, now));
        let request = tessera_pim::Request {
            action: body.action,
            kind,
            principal: body.principal_id,
            justification: body.justification.clone(),
            ticket: body.ticket_info.clone(),
            start: body.schedule_info.as_ref().and_then(|i| i.start_date_time),
            expiration,
            schedule: target_schedule,
        };
        let facts = tessera_pim::Facts {
            now,
            settings: &target_settings,
            schedules: &schedules,
        };
        let decision = tessera_pim::decide(&request, &rules_caller, facts)
            .map_err(|refusal| super::refused_for(ctx, refusal))?;
        let id = Uuid::new_v4();
        let mut data = StoredRequest {
            kind,
            action: body.action,
            principal_id: body.principal_id,
            target: target.target.clone(),
            justification: body.justification,
            ticket_info: body.ticket_info,
            schedule_info: body.schedule_info,
            target_schedule_id: target_schedule,
            created_by: caller,
            status: Status::Provisioned,
            completed_date_time: Some(now),
            pending: None,
            answer: None,
            mfa: rules_caller.mfa,
        };
        if body.is_validation_only {
            if let Decision::Pending(pending) = decision {
                data.status = Status::PendingApproval;
                data.completed_date_time = None;
                data.pending = Some(pending);
            }
            return Ok(view_of(id, now, &data, now, true));
        }
        let outcome = self
            .apply(
                tx.as_mut(),
                ctx,
                &target,
                &held,
                kind,
                id,
                decision,
                &mut data,
            )
            .await?;
        self.tell(
            tx.as_mut(),
            ctx.tenant,
            id,
            &data,
            &target,
            &target_settings.approvers,
            None,
        )
        .await?;
        let record = codec::new_record(
            Kind::PimRequest,
            id,
            now,
            request_keys(id, &data, now),
            &data,
        )?;
        tx.insert(ctx.tenant, &record).await?;
        let event = EventDraft::new(AuditAction::RoleScheduleRequestCreate)
            .on(Kind::PimRequest, id, &target.name)
            .details(with_target(
                &target,
                json!({
                    "action": data.action,
                    "kind": kind_name(kind),
                    "principalId": data.principal_id,
                    "status": data.status,
                    "justification": data.justification,
                    "ticketInfo": data.ticket_info,
                    "outcome": outcome,
                    "mfa": data.mfa,
                }),
            ));
        self.commit(tx, ctx, event).await?;
        request_view(&record, now)
    }

    /// An assignment to the target is a role assignment of each role it gives,
    /// protected as such.
    fn protect_assignment(&self, ctx: &Context, target: &Resolved) -> ServiceResult<()> {
        for role in &target.roles {
            self.protect(
                ctx,
                tessera_pim::protected::ROLE_ASSIGNMENT_CREATE,
                Some(*role),
            )?;
        }
        Ok(())
    }

    /// Whether the caller manages the target's assignments: a role's, with the
    /// role-management permission tenant-wide; a group's members or owners, with
    /// the permission to change them on that group (role-assignable groups: the
    /// role-management permission).
    pub(crate) async fn administers_target(
        &self,
        reader: &mut dyn tessera_store::Reader,
        ctx: &Context,
        target: &PimTarget,
    ) -> ServiceResult<bool> {
        let PimTarget::Group {
            group_id,
            access_id,
        } = target
        else {
            return Ok(self.administers(ctx));
        };
        let Some(record) = reader.get(ctx.tenant, Kind::Group, *group_id).await? else {
            return Ok(false);
        };
        let spec: GroupSpec = codec::data(&record)?;
        let wanted = match access_id {
            GroupAccess::Member => crate::directory::groups::group_action(
                &spec,
                tessera_directory::roles::action::GROUPS_MEMBERS_UPDATE,
            ),
            GroupAccess::Owner => {
                crate::directory::groups::owner_update_action(Kind::Group, &record)?
            }
        };
        let facts = crate::target_facts(reader, ctx.tenant, Kind::Group, *group_id).await?;
        Ok(matches!(
            authz::authorize(&ctx.caller.grants, wanted, &facts),
            authz::Decision::Allow { .. }
        ))
    }

    /// One request at a time waits for approval per principal and target (as
    /// in Graph): a second is refused while the first waits.
    async fn refuse_second_pending(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        body: &RequestBody,
        target: &Resolved,
        kind: ScheduleKind,
        now: Timestamp,
    ) -> ServiceResult<()> {
        let waiting = codec::list_all_prefixed(
            tx,
            tenant,
            Kind::PimRequest,
            Some(body.principal_id.to_string()),
            Some("p|".to_string()),
        )
        .await?;
        for record in waiting {
            let data: StoredRequest = codec::data(&record)?;
            if data.kind == kind
                && data.target == target.target
                && status_at(&data, now) == Status::PendingApproval
            {
                return Err(ServiceError::Conflict {
                    message: format!(
                        "request {} for this target is waiting for approval; cancel it or wait for the answer",
                        record.id
                    ),
                });
            }
        }
        Ok(())
    }

    /// The principal must exist and may hold the target: for a role, a user, a
    /// service principal or a role-assignable group; for a group, a user (and
    /// membership of a dynamic group is computed, never assigned).
    async fn check_principal(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        principal: Uuid,
        target: &Resolved,
    ) -> ServiceResult<Kind> {
        if let PimTarget::Group { access_id, .. } = target.target {
            if access_id == GroupAccess::Member && target.dynamic {
                return Err(ServiceError::Conflict {
                    message: "the members of a dynamic group are computed from its rule and cannot be assigned".to_string(),
                });
            }
            if tx.get(tenant, Kind::User, principal).await?.is_none() {
                return Err(ServiceError::invalid(
                    "principalId",
                    format!(
                        "no user with id {principal} exists (group membership and ownership through PIM are for users)"
                    ),
                ));
            }
            return Ok(Kind::User);
        }
        let found = crate::directory::users::find_object(
            tx,
            tenant,
            principal,
            &[Kind::User, Kind::Group, Kind::ServicePrincipal],
        )
        .await?;
        let Some(found) = found else {
            return Err(ServiceError::invalid(
                "principalId",
                format!("no user, group or service principal with id {principal} exists"),
            ));
        };
        if found.kind == Kind::Group {
            let group: GroupSpec = codec::data(&found)?;
            if !group.is_assignable_to_role {
                return Err(ServiceError::invalid(
                    "principalId",
                    "roles can be assigned only to groups created with isAssignableToRole: true",
                ));
            }
        }
        Ok(found.kind)
    }

    /// Applies a decision: creates, changes or ends a schedule, or records the
    /// wait for approval. Says what happened, for the audit event.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        target: &Resolved,
        held: &Held,
        kind: ScheduleKind,
        request: Uuid,
        decision: Decision,
        data: &mut StoredRequest,
    ) -> ServiceResult<Value> {
        let now = self.now();
        match decision {
            Decision::Create {
                kind,
                window,
                activated_from,
            } => {
                let schedule = RoleSchedule {
                    principal_id: data.principal_id,
                    target: target.target.clone(),
                    schedule: Schedule {
                        id: Uuid::new_v4(),
                        kind,
                        window,
                        activated_from,
                    },
                    created_using: request,
                    end_recorded: false,
                };
                let record = codec::new_record(
                    Kind::PimSchedule,
                    schedule.schedule.id,
                    now,
                    role_schedules::keys(&schedule),
                    &schedule,
                )?;
                tx.insert(ctx.tenant, &record).await?;
                data.target_schedule_id = Some(schedule.schedule.id);
                Ok(json!({ "created": schedule.schedule.id, "window": window }))
            }
            Decision::Change { schedule, window } => {
                held.refuse_standing_link(schedule)?;
                if let Some((record, stored)) = held.stored.iter().find(|(r, _)| r.id == schedule) {
                    if stored.schedule.kind == ScheduleKind::Eligibility {
                        self.keep_activations_within(tx, ctx, held, schedule, &window, now)
                            .await?;
                    }
                    let mut changed = stored.clone();
                    changed.schedule.window = window;
                    changed.created_using = request;
                    changed.end_recorded = false;
                    let next =
                        codec::next_version(record, now, role_schedules::keys(&changed), &changed)?;
                    tx.update(ctx.tenant, &next).await?;
                } else if let Some(standing) = held.standing.as_ref().filter(|r| r.id == schedule) {
                    // A standing assignment given an end becomes a PIM schedule
                    // (under the same id); the tenant's last standing Global
                    // Administrator stays standing.
                    self.remove_standing(tx, ctx, target, standing).await?;
                    let changed = RoleSchedule {
                        principal_id: data.principal_id,
                        target: target.target.clone(),
                        schedule: Schedule {
                            id: standing.id,
                            kind: ScheduleKind::Assignment,
                            window,
                            activated_from: None,
                        },
                        created_using: request,
                        end_recorded: false,
                    };
                    let record = codec::new_record(
                        Kind::PimSchedule,
                        standing.id,
                        now,
                        role_schedules::keys(&changed),
                        &changed,
                    )?;
                    tx.insert(ctx.tenant, &record).await?;
                } else {
                    return Err(refused(tessera_pim::Refusal::NoSuchSchedule));
                }
                data.target_schedule_id = Some(schedule);
                Ok(json!({ "changed": schedule, "window": window }))
            }
            Decision::End { schedule } => {
                held.refuse_standing_link(schedule)?;
                self.end_schedule(tx, ctx, target, held, schedule).await?;
                data.target_schedule_id = Some(schedule);
                data.status = Status::Revoked;
                Ok(json!({ "ended": schedule, "kind": kind_name(kind) }))
            }
            Decision::Pending(pending) => {
                data.status = Status::PendingApproval;
                data.completed_date_time = None;
                let expires = pending.expires;
                data.pending = Some(pending);
                Ok(json!({ "pendingApprovalUntil": expires }))
            }
        }
    }

    /// Before an eligibility's window changes: an activation made from it that
    /// grants now keeps going, but not past the new end; one that does not grant
    /// now (its eligibility had been cut short) is removed, so prolonging the
    /// eligibility again does not bring it back.
    async fn keep_activations_within(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        held: &Held,
        eligibility: Uuid,
        window: &Window,
        now: Timestamp,
    ) -> ServiceResult<()> {
        let schedules = held.schedules();
        for (record, stored) in held
            .stored
            .iter()
            .filter(|(_, s)| s.schedule.activated_from == Some(eligibility))
        {
            let granting = tessera_pim::granted_at(&schedules, &stored.schedule, now);
            if !granting || !window.covers(now) {
                tx.delete(
                    ctx.tenant,
                    Kind::PimSchedule,
                    record.id,
                    Some(record.version),
                )
                .await?;
                continue;
            }
            let capped = match (stored.schedule.window.end, window.end) {
                (Some(end), Some(limit)) => Some(end.min(limit)),
                (None, limit) => limit,
                (end, None) => end,
            };
            if capped != stored.schedule.window.end {
                let mut changed = stored.clone();
                changed.schedule.window.end = capped;
                let next =
                    codec::next_version(record, now, role_schedules::keys(&changed), &changed)?;
                tx.update(ctx.tenant, &next).await?;
            }
        }
        Ok(())
    }

    /// Tells who should hear of a request (through the outbox, in `tx`): the
    /// approvers of one that waits, the requester of one answered, the
    /// administrators of a privileged role's activation.
    #[allow(clippy::too_many_arguments)]
    async fn tell(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        id: Uuid,
        data: &StoredRequest,
        target: &Resolved,
        approvers: &[tessera_pim::Approver],
        answered: Option<&str>,
    ) -> ServiceResult<()> {
        let action = serde_json::to_value(data.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let about = super::notify::About {
            request: id,
            action: &action,
            role: &target.name,
            role_id: target
                .target
                .role()
                .or(target.target.group().map(|(group, _)| group))
                .unwrap_or_default(),
            privileged: target.privileged,
            principal: data.principal_id,
            justification: data.justification.as_deref(),
        };
        if let Some(outcome) = answered {
            self.notify_answered(tx, tenant, &about, data.created_by, outcome)
                .await?;
        }
        match (data.status, &data.pending) {
            (Status::PendingApproval, Some(pending)) => {
                // Named approvers answer activations; the rest is an
                // administrator's (the tenant's administrator addresses).
                let named = if data.action == Action::SelfActivate {
                    approvers
                } else {
                    &[]
                };
                self.notify_waiting(tx, tenant, &about, named, pending.expires)
                    .await
            }
            (Status::Provisioned, _) if data.action == Action::SelfActivate => {
                let end = match data.target_schedule_id {
                    Some(schedule) => match tx.get(tenant, Kind::PimSchedule, schedule).await? {
                        Some(record) => role_schedules::read(&record)?.schedule.window.end,
                        None => None,
                    },
                    None => None,
                };
                self.notify_activated(tx, tenant, &about, end).await
            }
            _ => Ok(()),
        }
    }

    /// Ends a schedule now: removes its record (an eligibility takes the
    /// activations made from it along), or a standing assignment, which may not
    /// be the tenant's last Global Administrator.
    pub(super) async fn end_schedule(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        target: &Resolved,
        held: &Held,
        schedule: Uuid,
    ) -> ServiceResult<()> {
        if let Some((record, stored)) = held.stored.iter().find(|(r, _)| r.id == schedule) {
            tx.delete(
                ctx.tenant,
                Kind::PimSchedule,
                record.id,
                Some(record.version),
            )
            .await?;
            if stored.schedule.kind == ScheduleKind::Eligibility {
                for (activation, _) in held
                    .stored
                    .iter()
                    .filter(|(_, s)| s.schedule.activated_from == Some(schedule))
                {
                    tx.delete(
                        ctx.tenant,
                        Kind::PimSchedule,
                        activation.id,
                        Some(activation.version),
                    )
                    .await?;
                }
            }
            return Ok(());
        }
        if let Some(standing) = held.standing.as_ref().filter(|r| r.id == schedule) {
            return self.remove_standing(tx, ctx, target, standing).await;
        }
        Err(refused(tessera_pim::Refusal::NoSuchSchedule))
    }

    /// Removes a standing role assignment (ended, or become a PIM schedule); the
    /// tenant's last standing Global Administrator stays.
    async fn remove_standing(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        target: &Resolved,
        standing: &Record,
    ) -> ServiceResult<()> {
        if target
            .role
            .is_some_and(|r| r.id == roles::GLOBAL_ADMINISTRATOR)
            && target.target
                == (PimTarget::Role {
                    role_definition_id: roles::GLOBAL_ADMINISTRATOR,
                    directory_scope_id: "/".to_string(),
                })
        {
            let spec = role_schedules::standing_spec(standing)?;
            self.directory
                .refuse_losing_last_global_administrator(tx, ctx, spec.principal_id)
                .await?;
        }
        tx.delete(
            ctx.tenant,
            Kind::RoleAssignment,
            standing.id,
            Some(standing.version),
        )
        .await?;
        Ok(())
    }

    /// Approves or denies a request waiting for approval.
    pub async fn answer_request(
        &self,
        ctx: &Context,
        family: Family,
        kind: ScheduleKind,
        id: Uuid,
        approve: bool,
        justification: Option<String>,
    ) -> ServiceResult<RequestView> {
        let caller = caller_id(ctx)?;
        super::check_justification(justification.as_deref())?;
        let now = self.now();
        let mut tx = self.write(ctx).await?;
        let record = tx
            .get(ctx.tenant, Kind::PimRequest, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let mut data: StoredRequest = codec::data(&record)?;
        if data.kind != kind || Family::of(&data.target) != family {
            return Err(not_found(id));
        }
        let mut rules_caller = self.rules_caller(tx.as_mut(), ctx).await?;
        rules_caller.administers = self
            .administers_target(tx.as_mut(), ctx, &data.target)
            .await?;
        let pending = match (&data.status, &data.pending) {
            (Status::PendingApproval, Some(pending)) => pending.clone(),
            _ => {
                // Someone who could not see the request learns nothing of it.
                if !self.may_see(ctx, &data, &rules_caller)
                    && !self
                        .is_approver_of(tx.as_mut(), ctx, &data, &rules_caller)
                        .await?
                {
                    return Err(not_found(id));
                }
                return Err(ServiceError::Conflict {
                    message: format!(
                        "the request is not waiting for approval (it is {:?})",
                        data.status
                    ),
                });
            }
        };
        // A request whose group has gone since can still be denied (by a
        // named approver, or whoever manages group members tenant-wide).
        let target = match resolve(tx.as_mut(), ctx.tenant, &data.target).await {
            Ok(target) => target,
            Err(ServiceError::Validation(_)) if !approve => {
                rules_caller.administers = self.administers(ctx) || self.manages_group_members(ctx);
                gone(&data.target)
            }
            Err(ServiceError::Validation(_)) => {
                return Err(ServiceError::Conflict {
                    message: "the group of this request no longer exists; deny the request or let it time out".to_string(),
                });
            }
            Err(other) => return Err(other),
        };
        let (target_settings, held) =
            situation(tx.as_mut(), ctx.tenant, data.principal_id, &target).await?;
        let schedules = held.schedules();
        let facts = tessera_pim::Facts {
            now,
            settings: &target_settings,
            schedules: &schedules,
        };
        let answered = if approve {
            if matches!(pending.action, Action::SelfExtend | Action::SelfRenew) {
                // Granting more time is assigning, as an administrator's
                // extension or renewal would be.
                self.protect_assignment(ctx, &target)?;
            }
            let decision = tessera_pim::approve(&pending, &rules_caller, facts).map_err(refused)?;
            let outcome = self
                .apply(
                    tx.as_mut(),
                    ctx,
                    &target,
                    &held,
                    pending.kind,
                    id,
                    decision,
                    &mut data,
                )
                .await?;
            data.status = Status::Provisioned;
            outcome
        } else {
            tessera_pim::deny(&pending, &rules_caller, facts).map_err(refused)?;
            data.status = Status::Denied;
            Value::Null
        };
        data.completed_date_time = Some(now);
        data.answer = Some(Answer {
            by: caller,
            review_result: if approve { "Approve" } else { "Deny" }.to_string(),
            justification: justification.clone(),
            at: now,
        });
        let said = if approve { "approved" } else { "denied" };
        self.tell(tx.as_mut(), ctx.tenant, id, &data, &target, &[], Some(said))
            .await?;
        let next =
            codec::next_version(&record, now, request_keys(id, &data, record.created), &data)?;
        tx.update(ctx.tenant, &next).await?;
        let action = if approve {
            AuditAction::RoleScheduleRequestApprove
        } else {
            AuditAction::RoleScheduleRequestDeny
        };
        let event = EventDraft::new(action)
            .on(Kind::PimRequest, id, &target.name)
            .details(with_target(
                &target,
                json!({
                    "requestAction": data.action,
                    "principalId": data.principal_id,
                    "justification": justification,
                    "outcome": answered,
                }),
            ));
        self.commit(tx, ctx, event).await?;
        request_view(&next, now)
    }

    /// Withdraws a request still waiting for approval (its requester, or an
    /// administrator).
    pub async fn cancel_request(
        &self,
        ctx: &Context,
        family: Family,
        kind: ScheduleKind,
        id: Uuid,
    ) -> ServiceResult<RequestView> {
        let caller = caller_id(ctx)?;
        let now = self.now();
        let mut tx = self.write(ctx).await?;
        let record = tx
            .get(ctx.tenant, Kind::PimRequest, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let mut data: StoredRequest = codec::data(&record)?;
        if data.kind != kind || Family::of(&data.target) != family {
            return Err(not_found(id));
        }
        if data.created_by != caller
            && !self
                .administers_target(tx.as_mut(), ctx, &data.target)
                .await?
        {
            return Err(not_found(id));
        }
        if status_at(&data, now) != Status::PendingApproval {
            return Err(ServiceError::Conflict {
                message: "only a request waiting for approval can be canceled".to_string(),
            });
        }
        data.status = Status::Canceled;
        data.completed_date_time = Some(now);
        let next =
            codec::next_version(&record, now, request_keys(id, &data, record.created), &data)?;
        tx.update(ctx.tenant, &next).await?;
        let name = target_name(tx.as_mut(), ctx.tenant, &data.target).await?;
        let event = EventDraft::new(AuditAction::RoleScheduleRequestCancel)
            .on(Kind::PimRequest, id, &name)
            .details(json!({ "requestAction": data.action, "principalId": data.principal_id }));
        self.commit(tx, ctx, event).await?;
        request_view(&next, now)
    }

    /// Whether the caller may see a request: their own, one they may approve,
    /// or any for a reader of role assignments.
    fn may_see(&self, ctx: &Context, data: &StoredRequest, caller: &tessera_pim::Caller) -> bool {
        Some(data.created_by) == ctx.caller.user_id()
            || Some(data.principal_id) == ctx.caller.user_id()
            || self.reads_family(ctx, Family::of(&data.target))
            || data.pending.as_ref().is_some_and(|_| caller.administers)
    }

    /// Whether the caller reads every schedule and request of a family: role
    /// assignments', or group memberships' (tenant-wide).
    fn reads_family(&self, ctx: &Context, family: Family) -> bool {
        match family {
            Family::Roles => self.reads_assignments(ctx),
            Family::Groups => matches!(
                authz::authorize(
                    &ctx.caller.grants,
                    tessera_directory::roles::action::GROUPS_MEMBERS_READ,
                    &authz::Target::Tenant
                ),
                authz::Decision::Allow { .. }
            ),
        }
    }

    /// Whether the caller manages group members tenant-wide.
    fn manages_group_members(&self, ctx: &Context) -> bool {
        matches!(
            authz::authorize(
                &ctx.caller.grants,
                tessera_directory::roles::action::GROUPS_MEMBERS_UPDATE,
                &authz::Target::Tenant
            ),
            authz::Decision::Allow { .. }
        )
    }

    fn require_reads_family(&self, ctx: &Context, family: Family) -> ServiceResult<()> {
        if self.reads_family(ctx, family) {
            return Ok(());
        }
        Err(ServiceError::Forbidden {
            reason: match family {
                Family::Roles => {
                    "reading others' role schedules needs the permission to read role assignments"
                }
                Family::Groups => {
                    "reading others' group schedules needs the permission to read group members"
                }
            }
            .to_string(),
        })
    }

    /// One request.
    pub async fn get_request(
        &self,
        ctx: &Context,
        family: Family,
        kind: ScheduleKind,
        id: Uuid,
    ) -> ServiceResult<RequestView> {
        let now = self.now();
        let mut reader = self.reader().await?;
        let record = reader
            .get(ctx.tenant, Kind::PimRequest, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let data: StoredRequest = codec::data(&record)?;
        if data.kind != kind || Family::of(&data.target) != family {
            return Err(not_found(id));
        }
        let mut rules_caller = self.rules_caller(reader.as_mut(), ctx).await?;
        rules_caller.administers = self
            .administers_target(reader.as_mut(), ctx, &data.target)
            .await?;
        if !self.may_see(ctx, &data, &rules_caller)
            && !self
                .is_approver_of(reader.as_mut(), ctx, &data, &rules_caller)
                .await?
        {
            return Err(not_found(id));
        }
        request_view(&record, now)
    }

    /// Whether a request waits for the caller's answer: waiting, not theirs, and
    /// the caller one who may answer it.
    async fn awaits(
        &self,
        reader: &mut dyn tessera_store::Reader,
        ctx: &Context,
        data: &StoredRequest,
        caller: &tessera_pim::Caller,
        now: Timestamp,
        read: &mut std::collections::HashMap<String, (tessera_pim::Settings, bool)>,
    ) -> ServiceResult<bool> {
        if status_at(data, now) != Status::PendingApproval || data.created_by == caller.id {
            return Ok(false);
        }
        // Each target's settings, and whether the caller administers it, are
        // read once per listing.
        let (target_settings, administers) = match read.entry(data.target.settings_key()) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(empty) => {
                let loaded = settings::load(reader, ctx.tenant, &data.target).await?.1;
                let administers = self.administers_target(reader, ctx, &data.target).await?;
                empty.insert((loaded, administers))
            }
        };
        let caller = tessera_pim::Caller {
            administers: *administers,
            ..caller.clone()
        };
        Ok(tessera_pim::answers(data.action, target_settings, &caller))
    }

    /// Whether the caller is a named approver of a request's role.
    async fn is_approver_of(
        &self,
        reader: &mut dyn tessera_store::Reader,
        ctx: &Context,
        data: &StoredRequest,
        caller: &tessera_pim::Caller,
    ) -> ServiceResult<bool> {
        let (_, target_settings) = settings::load(reader, ctx.tenant, &data.target).await?;
        Ok(tessera_pim::names_approver(&target_settings, caller))
    }

    /// Requests of one kind, newest first within waiting and answered ones.
    pub async fn list_requests(
        &self,
        ctx: &Context,
        family: Family,
        kind: ScheduleKind,
        filter: RequestFilter,
        principal: Option<Uuid>,
    ) -> ServiceResult<Page<RequestView>> {
        let caller = caller_id(ctx)?;
        let now = self.now();
        let mut reader = self.reader().await?;
        let rules_caller = self.rules_caller(reader.as_mut(), ctx).await?;
        let (key2, prefix) = match filter {
            RequestFilter::MadeByMe => (Some(caller.to_string()), None),
            RequestFilter::AwaitingMe => (None, Some("p|".to_string())),
            RequestFilter::All => {
                if principal != Some(caller) {
                    self.require_reads_family(ctx, family)?;
                }
                (principal.map(|p| p.to_string()), None)
            }
        };
        let records =
            codec::list_all_prefixed(reader.as_mut(), ctx.tenant, Kind::PimRequest, key2, prefix)
                .await?;
        let mut value = Vec::new();
        let mut read = std::collections::HashMap::new();
        for record in records.iter().rev() {
            let data: StoredRequest = codec::data(record)?;
            if data.kind != kind || Family::of(&data.target) != family {
                continue;
            }
            if filter == RequestFilter::AwaitingMe
                && !self
                    .awaits(reader.as_mut(), ctx, &data, &rules_caller, now, &mut read)
                    .await?
            {
                continue;
            }
            let mut view = view_of(record.id, record.created, &data, now, false);
            if let PimTarget::Group { .. } = &data.target {
                view.group_display_name =
                    Some(target_name(reader.as_mut(), ctx.tenant, &data.target).await?);
            }
            if filter == RequestFilter::AwaitingMe {
                view.principal = who(reader.as_mut(), ctx.tenant, data.principal_id).await?;
            }
            value.push(view);
        }
        Ok(Page {
            value,
            next_cursor: None,
        })
    }

    /// Schedules of one kind (with the standing role assignments as permanent
    /// assignments), for a principal or a role, or all; a principal may list
    /// their own.
    pub async fn list_schedules(
        &self,
        ctx: &Context,
        family: Family,
        kind: ScheduleKind,
        principal: Option<Uuid>,
        target: Option<Uuid>,
    ) -> ServiceResult<Page<ScheduleView>> {
        let (records, standing) = self
            .schedules_of(ctx, family, kind, principal, target)
            .await?;
        let now = self.now();
        let mut value = Vec::new();
        for (record, stored) in records.iter().filter(|(_, s)| s.schedule.kind == kind) {
            value.push(schedule_view_of(record, stored, now));
        }
        for record in &standing {
            value.push(standing_view(record)?);
        }
        Ok(Page {
            value,
            next_cursor: None,
        })
    }

    /// The instances of one kind granting now.
    pub async fn list_instances(
        &self,
        ctx: &Context,
        family: Family,
        kind: ScheduleKind,
        principal: Option<Uuid>,
        target: Option<Uuid>,
    ) -> ServiceResult<Page<InstanceView>> {
        let (records, standing) = self
            .schedules_of(ctx, family, kind, principal, target)
            .await?;
        let now = self.now();
        let mut reader = self.reader().await?;
        let mut value = Vec::new();
        for (_, stored) in records.iter().filter(|(_, s)| s.schedule.kind == kind) {
            let same_target: Vec<Schedule> = records
                .iter()
                .map(|(_, s)| s)
                .filter(|s| s.principal_id == stored.principal_id && s.target == stored.target)
                .map(|s| s.schedule.clone())
                .collect();
            let current = match kind {
                ScheduleKind::Eligibility => tessera_pim::active_at(&stored.schedule, now),
                ScheduleKind::Assignment => {
                    tessera_pim::granted_at(&same_target, &stored.schedule, now)
                }
            };
            if current {
                let (role_definition_id, directory_scope_id, group_id, access_id) =
                    fields_of(&stored.target);
                value.push(InstanceView {
                    id: stored.schedule.id,
                    principal_id: stored.principal_id,
                    role_definition_id,
                    directory_scope_id,
                    group_display_name: match &stored.target {
                        PimTarget::Group { .. } => {
                            Some(target_name(reader.as_mut(), ctx.tenant, &stored.target).await?)
                        }
                        PimTarget::Role { .. } => None,
                    },
                    group_id,
                    access_id,
                    assignment_type: assignment_type(&stored.schedule),
                    member_type: "Direct",
                    start_date_time: stored.schedule.window.start,
                    end_date_time: stored.schedule.window.end,
                    schedule_id: stored.schedule.id,
                });
            }
        }
        for record in &standing {
            let view = standing_view(record)?;
            value.push(InstanceView {
                id: view.id,
                principal_id: view.principal_id,
                role_definition_id: view.role_definition_id,
                directory_scope_id: view.directory_scope_id,
                group_id: None,
                access_id: None,
                group_display_name: None,
                assignment_type: Some("Assigned"),
                member_type: "Direct",
                start_date_time: record.created,
                end_date_time: None,
                schedule_id: view.id,
            });
        }
        Ok(Page {
            value,
            next_cursor: None,
        })
    }

    /// The stored schedules of both kinds for a principal or a role or group
    /// (the family's), or all (an activation is checked against its
    /// eligibility), and, when role assignments are asked for, the standing
    /// role assignments.
    #[allow(clippy::type_complexity)]
    async fn schedules_of(
        &self,
        ctx: &Context,
        family: Family,
        kind: ScheduleKind,
        principal: Option<Uuid>,
        target: Option<Uuid>,
    ) -> ServiceResult<(Vec<(Record, RoleSchedule)>, Vec<Record>)> {
        let caller = caller_id(ctx)?;
        if principal != Some(caller) {
            self.require_reads_family(ctx, family)?;
        }
        let mut reader = self.reader().await?;
        let prefix = match family {
            Family::Roles => target.map(|r| format!("{r}|")),
            Family::Groups => Some(match target {
                Some(group) => format!("group|{group}|"),
                None => "group|".to_string(),
            }),
        };
        let key2 = principal.map(|p| p.to_string());
        let records = codec::list_all_prefixed(
            reader.as_mut(),
            ctx.tenant,
            Kind::PimSchedule,
            key2.clone(),
            prefix.clone(),
        )
        .await?;
        let mut all = Vec::new();
        for record in records {
            let stored = role_schedules::read(&record)?;
            if Family::of(&stored.target) == family {
                all.push((record, stored));
            }
        }
        let standing = if kind == ScheduleKind::Assignment && family == Family::Roles {
            codec::list_all_prefixed(
                reader.as_mut(),
                ctx.tenant,
                Kind::RoleAssignment,
                key2,
                prefix,
            )
            .await?
        } else {
            Vec::new()
        };
        Ok((all, standing))
    }
}

/// Records that a request's wait for approval ended unanswered (the round's
/// part): whether it did now.
pub(crate) async fn time_out(
    pim: &Pim,
    ctx: &Context,
    id: Uuid,
    now: Timestamp,
) -> ServiceResult<bool> {
    let mut tx = pim.write(ctx).await?;
    let Some(record) = tx.get(ctx.tenant, Kind::PimRequest, id).await? else {
        return Ok(false);
    };
    let mut data: StoredRequest = codec::data(&record)?;
    if data.status != Status::PendingApproval || status_at(&data, now) != Status::TimedOut {
        return Ok(false);
    }
    data.status = Status::TimedOut;
    data.completed_date_time = Some(now);
    let target = match resolve(tx.as_mut(), ctx.tenant, &data.target).await {
        Ok(target) => target,
        // The group has gone since: the requester still hears, by the id.
        Err(ServiceError::Validation(_)) => gone(&data.target),
        Err(other) => return Err(other),
    };
    pim.tell(
        tx.as_mut(),
        ctx.tenant,
        id,
        &data,
        &target,
        &[],
        Some("not answered in time"),
    )
    .await?;
    let next = codec::next_version(&record, now, request_keys(id, &data, record.created), &data)?;
    tx.update(ctx.tenant, &next).await?;
    let event = EventDraft::new(AuditAction::RoleScheduleRequestTimeOut)
        .on(Kind::PimRequest, id, &target.name)
        .details(json!({ "requestAction": data.action, "principalId": data.principal_id }));
    pim.commit(tx, ctx, event).await?;
    Ok(true)
}

/// The activations made (for the alerts): each activation request that was
/// provisioned, when, and whether its sign-in proved MFA.
pub(crate) async fn activations(
    reader: &mut dyn tessera_store::Reader,
    tenant: TenantId,
) -> ServiceResult<Vec<tessera_pim::alerts::Activation>> {
    let records = codec::list_all_prefixed(
        reader,
        tenant,
        Kind::PimRequest,
        None,
        Some("d|".to_string()),
    )
    .await?;
    let mut found = Vec::new();
    for record in records {
        let data: StoredRequest = codec::data(&record)?;
        if data.action == Action::SelfActivate
            && data.status == Status::Provisioned
            && let Some(role) = data.target.role()
        {
            found.push(tessera_pim::alerts::Activation {
                request: record.id,
                principal: data.principal_id,
                role,
                at: data.completed_date_time.unwrap_or(record.created),
                mfa: data.mfa,
            });
        }
    }
    Ok(found)
}

/// A principal as an approver sees it: user principal name and display name.
async fn who(
    reader: &mut dyn tessera_store::Reader,
    tenant: TenantId,
    principal: Uuid,
) -> ServiceResult<Option<Value>> {
    let Some(record) = reader.get(tenant, Kind::User, principal).await? else {
        return Ok(None);
    };
    let spec: tessera_directory::model::UserSpec = codec::data(&record)?;
    Ok(Some(json!({
        "userPrincipalName": spec.user_principal_name,
        "displayName": spec.display_name,
    })))
}

/// A stored target's name: the role's, or the group's (if it is still there).
pub(crate) async fn target_name(
    reader: &mut dyn tessera_store::Reader,
    tenant: TenantId,
    target: &PimTarget,
) -> ServiceResult<String> {
    Ok(match target {
        PimTarget::Role {
            role_definition_id, ..
        } => roles::built_in(*role_definition_id)
            .map(|r| r.display_name)
            .unwrap_or("role")
            .to_string(),
        PimTarget::Group { group_id, .. } => {
            match reader.get(tenant, Kind::Group, *group_id).await? {
                Some(record) => codec::data::<GroupSpec>(&record)?.display_name,
                None => "a removed group".to_string(),
            }
        }
    })
}

fn not_found(id: Uuid) -> ServiceError {
    ServiceError::NotFound {
        kind: "roleScheduleRequest",
        id: id.to_string(),
    }
}

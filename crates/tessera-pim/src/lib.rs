//! Privileged Identity Management rules (issue 15), pure: no storage, no clock, no
//! HTTP. What a schedule request (Graph's `roleAssignmentScheduleRequest` and
//! `roleEligibilityScheduleRequest` actions) does to a principal's schedules for
//! one target (a directory role at a scope, or membership or ownership of a
//! group), under that target's settings (Graph's role management policy rules),
//! and when a schedule grants anything at all.
//!
//! - An **eligibility** schedule grants the right to activate; an **assignment**
//!   schedule grants the privilege itself, from its start until its end
//!   (`active_at`: the end time is checked at use, so a missed expiry job never
//!   extends privilege).
//! - `decide` takes a request, who asks, and the facts (now, the settings, the
//!   principal's schedules for the target) and answers what to do: create a
//!   schedule, change one, end one, or wait for approval; or why not.
//! - `approve` and `deny` answer a pending request: never by the requester, only
//!   by an approver the settings name (or, where none are named, by an
//!   administrator), and only before it times out. An approved activation starts
//!   when it is approved and is bounded again by the settings and the eligibility
//!   as they are then.

pub mod alerts;
pub mod duration;
pub mod graph;
pub mod protected;

use serde::{Deserialize, Serialize};
use tessera_core::Timestamp;
use uuid::Uuid;

/// What a schedule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// The right to activate.
    Eligibility,
    /// The privilege (a role assignment, a group membership or ownership).
    Assignment,
}

/// What a group schedule grants: membership of the group or its ownership
/// (Graph's `privilegedAccessGroupRelationships`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupAccess {
    Member,
    Owner,
}

impl GroupAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupAccess::Member => "member",
            GroupAccess::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<GroupAccess> {
        match text {
            "member" => Some(GroupAccess::Member),
            "owner" => Some(GroupAccess::Owner),
            _ => None,
        }
    }
}

/// What a schedule is for: a directory role at a scope, or membership or
/// ownership of a group. Stored and shown with Graph's field names
/// (`roleDefinitionId` and `directoryScopeId`, or `groupId` and `accessId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum Target {
    Role {
        role_definition_id: Uuid,
        directory_scope_id: String,
    },
    Group {
        group_id: Uuid,
        access_id: GroupAccess,
    },
}

impl Target {
    /// The key of the target's settings.
    pub fn settings_key(&self) -> String {
        match self {
            Target::Role {
                role_definition_id, ..
            } => format!("role:{role_definition_id}"),
            Target::Group {
                group_id,
                access_id,
            } => format!("group:{group_id}:{}", access_id.as_str()),
        }
    }

    /// The prefix under which the target's schedules sort (ending in `|`).
    pub fn sort_prefix(&self) -> String {
        match self {
            Target::Role {
                role_definition_id,
                directory_scope_id,
            } => format!("{role_definition_id}|{directory_scope_id}|"),
            Target::Group {
                group_id,
                access_id,
            } => format!("group|{group_id}|{}|", access_id.as_str()),
        }
    }

    /// The role, for a role target.
    pub fn role(&self) -> Option<Uuid> {
        match self {
            Target::Role {
                role_definition_id, ..
            } => Some(*role_definition_id),
            Target::Group { .. } => None,
        }
    }

    /// The group and access, for a group target.
    pub fn group(&self) -> Option<(Uuid, GroupAccess)> {
        match self {
            Target::Group {
                group_id,
                access_id,
            } => Some((*group_id, *access_id)),
            Target::Role { .. } => None,
        }
    }
}

/// A schedule request's action (Graph's `unifiedRoleScheduleRequestActions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    AdminAssign,
    AdminRemove,
    AdminUpdate,
    AdminExtend,
    AdminRenew,
    SelfActivate,
    SelfDeactivate,
    SelfExtend,
    SelfRenew,
}

impl Action {
    pub fn is_admin(self) -> bool {
        matches!(
            self,
            Action::AdminAssign
                | Action::AdminRemove
                | Action::AdminUpdate
                | Action::AdminExtend
                | Action::AdminRenew
        )
    }
}

/// When a requested schedule ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiration {
    NoExpiration,
    AfterDateTime(Timestamp),
    /// Seconds after the start (for an extension or renewal: after now, when
    /// the prolonged schedule starts).
    AfterDuration(i64),
}

/// A schedule's time: from `start`, until `end` (none: permanent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub start: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Timestamp>,
}

impl Window {
    /// Whether the window covers `now` (the end is exclusive).
    pub fn covers(&self, now: Timestamp) -> bool {
        self.start <= now && self.end.is_none_or(|end| now < end)
    }

    /// The window's length in microseconds (none: permanent).
    fn micros(&self) -> Option<i64> {
        self.end
            .map(|end| end.unix_micros().saturating_sub(self.start.unix_micros()))
    }
}

/// A principal's schedule for the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub id: Uuid,
    pub kind: Kind,
    pub window: Window,
    /// For an activation: the eligibility it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_from: Option<Uuid>,
}

/// Whether a schedule grants what it grants at `now`.
pub fn active_at(schedule: &Schedule, now: Timestamp) -> bool {
    schedule.window.covers(now)
}

/// Whether the schedules grant the privilege itself at `now`: an assignment
/// covering now; an activation only while the eligibility it came from is there
/// and covers now too (an eligibility removed or shortened takes its activation
/// with it).
pub fn holds(schedules: &[Schedule], now: Timestamp) -> bool {
    schedules.iter().any(|s| granted_at(schedules, s, now))
}

/// Whether one assignment grants at `now` (see `holds`).
pub fn granted_at(schedules: &[Schedule], schedule: &Schedule, now: Timestamp) -> bool {
    schedule.kind == Kind::Assignment
        && active_at(schedule, now)
        && schedule.activated_from.is_none_or(|eligibility| {
            schedules
                .iter()
                .any(|e| e.id == eligibility && e.kind == Kind::Eligibility && active_at(e, now))
        })
}

/// Who may approve a target's activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", content = "id")]
pub enum Approver {
    User(Uuid),
    /// Any member of the group.
    Group(Uuid),
}

/// A target's settings (Graph's role management policy rules), checked by
/// `Settings::check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// The longest activation (seconds).
    #[serde(default = "default_activation")]
    pub max_activation_seconds: i64,
    /// Activation needs multifactor authentication.
    #[serde(default = "yes")]
    pub activation_requires_mfa: bool,
    /// Activation needs this authentication context (a step-up to its strength).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_authentication_context: Option<String>,
    #[serde(default = "yes")]
    pub activation_requires_justification: bool,
    #[serde(default)]
    pub activation_requires_ticket: bool,
    #[serde(default)]
    pub activation_requires_approval: bool,
    /// Who approves (none: any administrator of the target).
    #[serde(default)]
    pub approvers: Vec<Approver>,
    /// How long a request waits for approval (seconds).
    #[serde(default = "default_approval_timeout")]
    pub approval_timeout_seconds: i64,
    /// The longest eligibility an administrator assigns (none: permanent allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_eligibility_seconds: Option<i64>,
    /// The longest active assignment an administrator makes (none: permanent
    /// allowed).
    #[serde(default = "default_max_assignment")]
    pub max_assignment_seconds: Option<i64>,
    /// An administrator's assignment needs a justification.
    #[serde(default = "yes")]
    pub assignment_requires_justification: bool,
}

fn yes() -> bool {
    true
}
fn default_activation() -> i64 {
    8 * 3600
}
fn default_approval_timeout() -> i64 {
    24 * 3600
}
fn default_max_assignment() -> Option<i64> {
    Some(180 * 86_400)
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_activation_seconds: default_activation(),
            activation_requires_mfa: true,
            activation_authentication_context: None,
            activation_requires_justification: true,
            activation_requires_ticket: false,
            activation_requires_approval: false,
            approvers: Vec::new(),
            approval_timeout_seconds: default_approval_timeout(),
            max_eligibility_seconds: None,
            max_assignment_seconds: default_max_assignment(),
            assignment_requires_justification: true,
        }
    }
}

/// Bounds on settings (as Entra's): activations of 30 minutes to 24 hours,
/// approval waits of one hour to seven days.
const MIN_ACTIVATION: i64 = 30 * 60;
const MAX_ACTIVATION: i64 = 24 * 3600;
const MIN_TIMEOUT: i64 = 3600;
const MAX_TIMEOUT: i64 = 7 * 86_400;
/// How far in the past a requested start may lie (clock skew).
const START_SKEW: i64 = 5 * 60;
/// Extension is for schedules ending within this; renewal for those ended
/// within the second.
const EXTEND_WITHIN: i64 = 14 * 86_400;
const RENEW_WITHIN: i64 = 90 * 86_400;
/// How far ahead a schedule may start.
const MAX_AHEAD: i64 = 366 * 86_400;
/// The longest justification and ticket texts.
const MAX_TEXT: usize = 500;
const MAX_APPROVERS: usize = 25;

impl Settings {
    /// Checks the settings; a bad one is named.
    pub fn check(&self) -> Result<(), String> {
        if !(MIN_ACTIVATION..=MAX_ACTIVATION).contains(&self.max_activation_seconds) {
            return Err("maxActivationSeconds must be between 1800 and 86400".into());
        }
        if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&self.approval_timeout_seconds) {
            return Err("approvalTimeoutSeconds must be between 3600 and 604800".into());
        }
        for (name, value) in [
            ("maxEligibilitySeconds", self.max_eligibility_seconds),
            ("maxAssignmentSeconds", self.max_assignment_seconds),
        ] {
            if value.is_some_and(|v| !(MIN_ACTIVATION..=10 * 365 * 86_400).contains(&v)) {
                return Err(format!("{name} must be between 1800 seconds and ten years"));
            }
        }
        if self.approvers.len() > MAX_APPROVERS {
            return Err(format!("at most {MAX_APPROVERS} approvers"));
        }
        if let Some(context) = &self.activation_authentication_context
            && (context.is_empty()
                || context.len() > 64
                || !context
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(
                "activationAuthenticationContext must be an authentication context id (c1...)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// A ticket a request names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ticket {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_system: Option<String>,
}

/// A schedule request for one principal and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    pub kind: Kind,
    pub principal: Uuid,
    pub justification: Option<String>,
    pub ticket: Option<Ticket>,
    /// When the schedule starts (none: now).
    pub start: Option<Timestamp>,
    pub expiration: Expiration,
    /// The schedule a remove, update, extend, renew or deactivation is about.
    pub schedule: Option<Uuid>,
}

/// Who asks, as far as the rules care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub id: Uuid,
    /// Holds the permission to manage this target's assignments.
    pub administers: bool,
    /// The session's sign-in used multifactor authentication.
    pub mfa: bool,
    /// The authentication contexts the session satisfies.
    pub authentication_contexts: Vec<String>,
    /// The groups the caller is a member of (for group approvers).
    pub groups: Vec<Uuid>,
}

/// What the rules see.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub now: Timestamp,
    pub settings: &'a Settings,
    /// The principal's schedules for the target.
    pub schedules: &'a [Schedule],
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new schedule (an activation names its eligibility).
    Create {
        kind: Kind,
        window: Window,
        activated_from: Option<Uuid>,
    },
    /// A schedule's new window.
    Change { schedule: Uuid, window: Window },
    /// The schedule ends now.
    End { schedule: Uuid },
    /// The request waits for an approver until `expires`.
    Pending(Pending),
}

/// A request waiting for approval, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub action: Action,
    pub kind: Kind,
    pub requester: Uuid,
    /// The schedule it is about (an activation: the eligibility).
    pub schedule: Uuid,
    /// How long the activation asks for (seconds; none: as long as allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<i64>,
    /// Until when an extension or renewal asks (none: no end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// Until when it may be approved.
    pub expires: Timestamp,
}

/// Why a request or an answer is refused (each maps to one error code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the caller may not manage this target's assignments")]
    NotPermitted,
    #[error("this action is for the principal themself")]
    NotThePrincipal,
    #[error("the principal is not eligible (or the eligibility has expired)")]
    NotEligible,
    #[error("the privilege is active already")]
    AlreadyActive,
    #[error("a schedule of this kind exists already for this principal and target")]
    AlreadyAssigned,
    #[error("there is no such schedule (or it is not of this kind)")]
    NoSuchSchedule,
    #[error("this schedule is permanent, or not near its end")]
    NotExtensible,
    #[error("this schedule has not ended, or ended too long ago")]
    NotRenewable,
    #[error("the schedule must end: permanent ones are not allowed here")]
    PermanentNotAllowed,
    #[error("the schedule is longer than the {0} seconds allowed")]
    TooLong(i64),
    #[error("the schedule's start or end is not acceptable")]
    BadWindow,
    #[error("a justification is required")]
    JustificationRequired,
    #[error("ticket information is required")]
    TicketRequired,
    #[error("the text given is longer than 500 characters")]
    TextTooLong,
    #[error("multifactor authentication is required")]
    MfaRequired,
    #[error("the authentication context {0} is required")]
    AuthenticationContextRequired(String),
    #[error("the requester cannot approve their own request")]
    SelfApproval,
    #[error("the caller is not an approver of this request")]
    NotAnApprover,
    #[error("the request is no longer waiting (it timed out)")]
    TimedOut,
}

/// Decides a schedule request.
pub fn decide(request: &Request, caller: &Caller, facts: Facts<'_>) -> Result<Decision, Refusal> {
    let now = facts.now;
    let settings = facts.settings;
    for text in [
        request.justification.as_deref(),
        request
            .ticket
            .as_ref()
            .and_then(|t| t.ticket_number.as_deref()),
        request
            .ticket
            .as_ref()
            .and_then(|t| t.ticket_system.as_deref()),
    ]
    .into_iter()
    .flatten()
    {
        if text.chars().count() > MAX_TEXT {
            return Err(Refusal::TextTooLong);
        }
    }
    if request.action.is_admin() {
        if !caller.administers {
            return Err(Refusal::NotPermitted);
        }
    } else if caller.id != request.principal {
        return Err(Refusal::NotThePrincipal);
    }
    let of_kind = |id: Option<Uuid>| {
        facts
            .schedules
            .iter()
            .find(|s| Some(s.id) == id && s.kind == request.kind)
            .ok_or(Refusal::NoSuchSchedule)
    };
    let limit = match request.kind {
        Kind::Eligibility => settings.max_eligibility_seconds,
        Kind::Assignment => settings.max_assignment_seconds,
    };
    match request.action {
        Action::AdminAssign => {
            if settings.assignment_requires_justification && !given(&request.justification) {
                return Err(Refusal::JustificationRequired);
            }
            let window = window_of(request, now, limit)?;
            if overlaps(facts.schedules, request.kind, &window, None) {
                return Err(Refusal::AlreadyAssigned);
            }
            Ok(Decision::Create {
                kind: request.kind,
                window,
                activated_from: None,
            })
        }
        Action::AdminRemove => Ok(Decision::End {
            schedule: of_kind(request.schedule)?.id,
        }),
        Action::AdminUpdate | Action::AdminExtend | Action::AdminRenew => {
            let schedule = administered(of_kind(request.schedule)?)?;
            if settings.assignment_requires_justification && !given(&request.justification) {
                return Err(Refusal::JustificationRequired);
            }
            let window = if request.action == Action::AdminUpdate {
                // A running schedule keeps its start when the request gives it.
                let keeps_start = request.start == Some(schedule.window.start);
                let mut asked = request.clone();
                if keeps_start {
                    asked.start = None;
                }
                let mut window = window_of(&asked, now, None)?;
                if keeps_start {
                    window.start = schedule.window.start;
                }
                check_length(&window, limit)?;
                window
            } else {
                prolonged(schedule, request, now, limit)?
            };
            if overlaps(facts.schedules, request.kind, &window, Some(schedule.id)) {
                return Err(Refusal::AlreadyAssigned);
            }
            Ok(Decision::Change {
                schedule: schedule.id,
                window,
            })
        }
        Action::SelfExtend | Action::SelfRenew => {
            let schedule = of_kind(request.schedule)?;
            if schedule.activated_from.is_some() {
                // An activation is not extended: the principal activates again.
                return Err(Refusal::NotExtensible);
            }
            let window = prolonged(schedule, request, now, limit)?;
            if settings.assignment_requires_justification && !given(&request.justification) {
                return Err(Refusal::JustificationRequired);
            }
            Ok(Decision::Pending(Pending {
                action: request.action,
                kind: request.kind,
                requester: caller.id,
                schedule: schedule.id,
                seconds: None,
                until: window.end,
                expires: now.plus_seconds(settings.approval_timeout_seconds),
            }))
        }
        Action::SelfActivate => {
            if request.kind != Kind::Assignment {
                return Err(Refusal::NoSuchSchedule);
            }
            let eligibility = eligibility_at(facts.schedules, now)?;
            if holds(facts.schedules, now) {
                return Err(Refusal::AlreadyActive);
            }
            if settings.activation_requires_justification && !given(&request.justification) {
                return Err(Refusal::JustificationRequired);
            }
            if settings.activation_requires_ticket
                && !request
                    .ticket
                    .as_ref()
                    .is_some_and(|t| given(&t.ticket_number))
            {
                return Err(Refusal::TicketRequired);
            }
            // Both, where both are asked: a context does not stand in for MFA.
            if settings.activation_requires_mfa && !caller.mfa {
                return Err(Refusal::MfaRequired);
            }
            if let Some(context) = &settings.activation_authentication_context
                && !caller.authentication_contexts.contains(context)
            {
                return Err(Refusal::AuthenticationContextRequired(context.clone()));
            }
            // Activations start now (scheduled activation is not offered).
            if request
                .start
                .is_some_and(|start| start > now.plus_seconds(START_SKEW))
            {
                return Err(Refusal::BadWindow);
            }
            let seconds = requested_seconds(request, now)?;
            // Bounded before anyone is asked to approve it.
            activation(eligibility, seconds, now, settings)?;
            if settings.activation_requires_approval {
                return Ok(Decision::Pending(Pending {
                    action: Action::SelfActivate,
                    kind: Kind::Assignment,
                    requester: caller.id,
                    schedule: eligibility.id,
                    seconds,
                    until: None,
                    expires: now.plus_seconds(settings.approval_timeout_seconds),
                }));
            }
            activation(eligibility, seconds, now, settings)
        }
        Action::SelfDeactivate => {
            let schedule = of_kind(request.schedule)?;
            if schedule.activated_from.is_none() || !active_at(schedule, now) {
                return Err(Refusal::NoSuchSchedule);
            }
            Ok(Decision::End {
                schedule: schedule.id,
            })
        }
    }
}

/// The activation an eligibility allows now: from now, for what was asked (at
/// most the settings' maximum), never past the eligibility's end.
fn activation(
    eligibility: &Schedule,
    seconds: Option<i64>,
    now: Timestamp,
    settings: &Settings,
) -> Result<Decision, Refusal> {
    let max = settings.max_activation_seconds;
    let seconds = seconds.unwrap_or(max);
    if seconds <= 0 {
        return Err(Refusal::BadWindow);
    }
    if seconds > max {
        return Err(Refusal::TooLong(max));
    }
    let mut end = now.plus_seconds(seconds);
    if let Some(limit) = eligibility.window.end {
        end = end.min(limit);
    }
    Ok(Decision::Create {
        kind: Kind::Assignment,
        window: Window {
            start: now,
            end: Some(end),
        },
        activated_from: Some(eligibility.id),
    })
}

/// Answers a pending request with an approval: what then happens.
pub fn approve(
    pending: &Pending,
    approver: &Caller,
    facts: Facts<'_>,
) -> Result<Decision, Refusal> {
    may_answer(pending, approver, facts)?;
    let now = facts.now;
    match pending.action {
        Action::SelfActivate => {
            // Bounded again as things are now: the eligibility must still hold.
            let eligibility = facts
                .schedules
                .iter()
                .find(|s| s.id == pending.schedule && s.kind == Kind::Eligibility)
                .filter(|s| active_at(s, now))
                .ok_or(Refusal::NotEligible)?;
            if holds(facts.schedules, now) {
                return Err(Refusal::AlreadyActive);
            }
            activation(eligibility, pending.seconds, now, facts.settings)
        }
        Action::SelfExtend | Action::SelfRenew => {
            let schedule = facts
                .schedules
                .iter()
                .find(|s| s.id == pending.schedule && s.kind == pending.kind)
                .ok_or(Refusal::NoSuchSchedule)
                .and_then(administered)?;
            let limit = match pending.kind {
                Kind::Eligibility => facts.settings.max_eligibility_seconds,
                Kind::Assignment => facts.settings.max_assignment_seconds,
            };
            let request = Request {
                action: pending.action,
                kind: pending.kind,
                principal: pending.requester,
                justification: None,
                ticket: None,
                start: None,
                expiration: match pending.until {
                    Some(until) => Expiration::AfterDateTime(until),
                    None => Expiration::NoExpiration,
                },
                schedule: Some(schedule.id),
            };
            let window = prolonged(schedule, &request, now, limit)?;
            if overlaps(facts.schedules, pending.kind, &window, Some(schedule.id)) {
                return Err(Refusal::AlreadyAssigned);
            }
            Ok(Decision::Change {
                schedule: schedule.id,
                window,
            })
        }
        _ => Err(Refusal::NoSuchSchedule),
    }
}

/// Answers a pending request with a denial: refused as an approval would be
/// (only an approver, not the requester, before it times out).
pub fn deny(pending: &Pending, approver: &Caller, facts: Facts<'_>) -> Result<(), Refusal> {
    may_answer(pending, approver, facts)
}

fn may_answer(pending: &Pending, approver: &Caller, facts: Facts<'_>) -> Result<(), Refusal> {
    if approver.id == pending.requester {
        return Err(Refusal::SelfApproval);
    }
    if facts.now >= pending.expires {
        return Err(Refusal::TimedOut);
    }
    if answers(pending.action, facts.settings, approver) {
        Ok(())
    } else {
        Err(Refusal::NotAnApprover)
    }
}

/// Whether the settings name `caller` among the approvers (as a user, or as a
/// member of a named group).
pub fn names_approver(settings: &Settings, caller: &Caller) -> bool {
    settings.approvers.iter().any(|a| match a {
        Approver::User(id) => *id == caller.id,
        Approver::Group(group) => caller.groups.contains(group),
    })
}

/// Whether `caller` is the one to answer a request for `action` under these
/// settings (before who asked and when are checked): a named approver for an
/// activation where approvers are named, else an administrator of the target.
pub fn answers(action: Action, settings: &Settings, caller: &Caller) -> bool {
    if action == Action::SelfActivate && !settings.approvers.is_empty() {
        names_approver(settings, caller)
    } else {
        caller.administers
    }
}

/// A schedule an administrator made: an activation keeps to the activation
/// settings (it is ended, not stretched).
fn administered(schedule: &Schedule) -> Result<&Schedule, Refusal> {
    if schedule.activated_from.is_some() {
        return Err(Refusal::NotExtensible);
    }
    Ok(schedule)
}

/// The active eligibility at `now`.
fn eligibility_at(schedules: &[Schedule], now: Timestamp) -> Result<&Schedule, Refusal> {
    schedules
        .iter()
        .find(|s| s.kind == Kind::Eligibility && active_at(s, now))
        .ok_or(Refusal::NotEligible)
}

fn given(text: &Option<String>) -> bool {
    text.as_deref().is_some_and(|t| !t.trim().is_empty())
}

/// The duration a request asks for, from now (none: no end asked).
fn requested_seconds(request: &Request, now: Timestamp) -> Result<Option<i64>, Refusal> {
    match request.expiration {
        Expiration::NoExpiration => Ok(None),
        Expiration::AfterDuration(seconds) if seconds > 0 => Ok(Some(seconds)),
        // Whole seconds, rounded down: never past the end asked for.
        Expiration::AfterDateTime(end) if end.unix_micros() - now.unix_micros() >= 1_000_000 => {
            Ok(Some((end.unix_micros() - now.unix_micros()) / 1_000_000))
        }
        _ => Err(Refusal::BadWindow),
    }
}

/// The window a request asks for, within `limit` (none: permanent allowed).
fn window_of(request: &Request, now: Timestamp, limit: Option<i64>) -> Result<Window, Refusal> {
    let start = request.start.unwrap_or(now);
    if start < now.plus_seconds(-START_SKEW) {
        return Err(Refusal::BadWindow);
    }
    let end = match request.expiration {
        Expiration::NoExpiration => None,
        Expiration::AfterDateTime(end) => Some(end),
        Expiration::AfterDuration(seconds) => Some(start.plus_seconds(seconds)),
    };
    let window = Window { start, end };
    if end.is_some_and(|end| end <= now) {
        return Err(Refusal::BadWindow);
    }
    within_reach(&window, now)?;
    check_length(&window, limit)?;
    Ok(window)
}

/// A schedule starts within a year and ends within about ten: nothing is
/// scheduled so far ahead that its times stop being ordinary dates.
fn within_reach(window: &Window, now: Timestamp) -> Result<(), Refusal> {
    if window.start > now.plus_seconds(MAX_AHEAD)
        || window
            .end
            .is_some_and(|end| end > now.plus_seconds(MAX_AHEAD + 10 * 366 * 86_400))
    {
        return Err(Refusal::BadWindow);
    }
    Ok(())
}

fn check_length(window: &Window, limit: Option<i64>) -> Result<(), Refusal> {
    match (window.micros(), limit) {
        (Some(micros), _) if micros <= 0 => Err(Refusal::BadWindow),
        (None, Some(_)) => Err(Refusal::PermanentNotAllowed),
        (Some(micros), Some(max)) if micros > max.saturating_mul(1_000_000) => {
            Err(Refusal::TooLong(max))
        }
        _ => Ok(()),
    }
}

/// Whether a window overlaps another schedule of the kind an administrator made
/// (but `except`).
fn overlaps(schedules: &[Schedule], kind: Kind, window: &Window, except: Option<Uuid>) -> bool {
    schedules.iter().any(|s| {
        s.kind == kind
            && Some(s.id) != except
            && s.activated_from.is_none()
            && s.window.end.is_none_or(|end| end > window.start)
            && window.end.is_none_or(|end| end > s.window.start)
    })
}

/// An extension (a schedule near its end) or a renewal (one ended recently): the
/// new window runs from now to the end asked for, within the maximum length.
fn prolonged(
    schedule: &Schedule,
    request: &Request,
    now: Timestamp,
    limit: Option<i64>,
) -> Result<Window, Refusal> {
    let Some(end) = schedule.window.end else {
        return Err(Refusal::NotExtensible);
    };
    let renewing = matches!(request.action, Action::AdminRenew | Action::SelfRenew);
    if renewing {
        if end > now || end.plus_seconds(RENEW_WITHIN) < now {
            return Err(Refusal::NotRenewable);
        }
    } else if end <= now || end > now.plus_seconds(EXTEND_WITHIN) {
        return Err(Refusal::NotExtensible);
    }
    // The prolonged schedule runs from now: its length is measured from here.
    let start = now;
    let new_end = match request.expiration {
        Expiration::NoExpiration => None,
        Expiration::AfterDateTime(at) => Some(at),
        Expiration::AfterDuration(seconds) => Some(now.plus_seconds(seconds)),
    };
    if new_end.is_some_and(|new_end| new_end <= end.max(now)) {
        return Err(Refusal::BadWindow);
    }
    let window = Window {
        start,
        end: new_end,
    };
    within_reach(&window, now)?;
    check_length(&window, limit)?;
    Ok(window)
}

#[cfg(test)]
mod tests;

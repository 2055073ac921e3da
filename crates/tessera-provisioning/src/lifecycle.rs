//! Lifecycle workflows (as Entra's): what happens to people when they join,
//! move and leave, as per-tenant records with a trigger, a scope and ordered
//! tasks.
//!
//! - A **trigger** is a date of the user with an offset (`employeeHireDate`
//!   minus 7 days for pre-hire, `employeeLeaveDateTime` plus 30 days for
//!   deletion), or a change of attributes (a mover's `department`).
//! - The **scope** is a rule in the membership-rule syntax
//!   (`user.department -eq "Sales"`); no rule means every member user.
//! - **Tasks** run in order; one that fails stops the rest unless it may be
//!   passed over (`continueOnError`).
//!
//! Every firing is an *event* with a key (the workflow, the user, and the date
//! or the change that fired it), so a workflow runs once per event whichever
//! node or round sees it. A date fires once it has come, for `windowDays`
//! after (a node down for a day still runs the joiner of yesterday's hire, and
//! a hire entered three weeks late does not run a day-one joiner).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// What kind of change a workflow is for; it limits which tasks it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Category {
    Joiner,
    Mover,
    Leaver,
}

/// A date of the user a time-based trigger reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DateAttribute {
    EmployeeHireDate,
    EmployeeLeaveDateTime,
    CreatedDateTime,
}

impl DateAttribute {
    pub fn name(self) -> &'static str {
        match self {
            DateAttribute::EmployeeHireDate => "employeeHireDate",
            DateAttribute::EmployeeLeaveDateTime => "employeeLeaveDateTime",
            DateAttribute::CreatedDateTime => "createdDateTime",
        }
    }
}

/// The user attributes whose change can trigger a mover workflow.
pub const WATCHED_ATTRIBUTES: [&str; 8] = [
    "department",
    "jobTitle",
    "companyName",
    "employeeType",
    "managerId",
    "employeeOrgData",
    "usageLocation",
    "employeeId",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind",
    deny_unknown_fields
)]
pub enum Trigger {
    /// `offsetDays` after (or, negative, before) the date.
    TimeBased {
        attribute: DateAttribute,
        #[serde(default)]
        offset_days: i32,
    },
    /// One of these attributes changed.
    AttributeChange { attributes: Vec<String> },
}

/// One task, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "task",
    deny_unknown_fields
)]
pub enum Task {
    EnableUser,
    DisableUser,
    /// A Temporary Access Pass for the first sign-in, sent to the manager.
    GenerateTemporaryAccessPass {
        #[serde(default = "tap_minutes")]
        lifetime_minutes: u32,
    },
    AddToGroups {
        groups: Vec<Uuid>,
    },
    RemoveFromGroups {
        groups: Vec<Uuid>,
    },
    RemoveFromAllGroups,
    /// Every directory role the user holds, at every scope: eligibilities (with
    /// their activations), assignments made through PIM, standing assignments.
    RemoveAllRoles,
    /// The same for the roles named (by role definition id): a mover's roles
    /// that no longer fit the new job.
    RemoveRoles {
        roles: Vec<Uuid>,
    },
    /// Every session and refresh token, and the user's personal access tokens.
    RevokeSessions,
    /// Mail to the user's manager (with the pass, for a joiner that made one).
    NotifyManager {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    DeleteUser,
}

fn tap_minutes() -> u32 {
    8 * 60
}

impl Task {
    pub fn name(&self) -> &'static str {
        match self {
            Task::EnableUser => "enableUser",
            Task::DisableUser => "disableUser",
            Task::GenerateTemporaryAccessPass { .. } => "generateTemporaryAccessPass",
            Task::AddToGroups { .. } => "addToGroups",
            Task::RemoveFromGroups { .. } => "removeFromGroups",
            Task::RemoveFromAllGroups => "removeFromAllGroups",
            Task::RemoveAllRoles => "removeAllRoles",
            Task::RemoveRoles { .. } => "removeRoles",
            Task::RevokeSessions => "revokeSessions",
            Task::NotifyManager { .. } => "notifyManager",
            Task::DeleteUser => "deleteUser",
        }
    }

    /// The categories a task belongs in (a joiner does not delete anyone).
    fn allowed_in(&self, category: Category) -> bool {
        use Category::*;
        match self {
            Task::EnableUser | Task::GenerateTemporaryAccessPass { .. } => category == Joiner,
            Task::DisableUser
            | Task::RemoveFromAllGroups
            | Task::RemoveAllRoles
            | Task::RevokeSessions
            | Task::DeleteUser => category == Leaver,
            Task::AddToGroups { .. } => category != Leaver,
            Task::RemoveRoles { .. } => category != Joiner,
            Task::RemoveFromGroups { .. } | Task::NotifyManager { .. } => true,
        }
    }
}

/// A task in its place (unknown fields are refused by the task itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(flatten)]
    pub task: Task,
    /// A failure of this task does not stop the ones after it.
    #[serde(default)]
    pub continue_on_error: bool,
}

fn three() -> u16 {
    3
}

fn yes() -> bool {
    true
}

/// A workflow as it is saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workflow {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub category: Category,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub trigger: Trigger,
    /// A membership rule over users; none: every member user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub tasks: Vec<Step>,
    /// How many days after its date a time-based trigger still fires.
    #[serde(default = "three")]
    pub window_days: u16,
}

/// The most tasks a workflow has.
pub const MAX_TASKS: usize = 25;

impl Workflow {
    /// Checks a workflow when it is saved: each problem at its place.
    pub fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut add = |at: &str, what: String| problems.push((at.to_string(), what));
        let name = self.display_name.trim();
        if name.is_empty() || name.chars().count() > 128 {
            add("displayName", "1 to 128 characters".into());
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 1024)
        {
            add("description", "at most 1024 characters".into());
        }
        match &self.trigger {
            Trigger::TimeBased { offset_days, .. } => {
                if !(-180..=180).contains(offset_days) {
                    add("trigger.offsetDays", "-180 to 180".into());
                }
                if self.category == Category::Mover {
                    add(
                        "trigger",
                        "a mover workflow is triggered by an attribute change".into(),
                    );
                }
            }
            Trigger::AttributeChange { attributes } => {
                if self.category != Category::Mover {
                    add(
                        "trigger",
                        "an attribute change triggers mover workflows only (joiners and leavers go by date)".into(),
                    );
                }
                if attributes.is_empty() || attributes.len() > WATCHED_ATTRIBUTES.len() {
                    add("trigger.attributes", "one or more attributes".into());
                }
                for attribute in attributes {
                    if !WATCHED_ATTRIBUTES.contains(&attribute.as_str()) {
                        add(
                            "trigger.attributes",
                            format!(
                                "{attribute} is not watched ({})",
                                WATCHED_ATTRIBUTES.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        if let Some(rule) = &self.scope
            && let Err(error) = tessera_directory::rule::parse(rule)
        {
            add("scope", error.to_string());
        }
        if !(1..=30).contains(&self.window_days) {
            add("windowDays", "1 to 30".into());
        }
        if self.tasks.is_empty() || self.tasks.len() > MAX_TASKS {
            add("tasks", format!("1 to {MAX_TASKS} tasks"));
        }
        for (i, step) in self.tasks.iter().enumerate() {
            let at = format!("tasks[{i}]");
            if !step.task.allowed_in(self.category) {
                add(
                    &at,
                    format!(
                        "{} is not a task of a {:?} workflow",
                        step.task.name(),
                        self.category
                    )
                    .to_lowercase(),
                );
            }
            match &step.task {
                Task::GenerateTemporaryAccessPass { lifetime_minutes }
                    if !(10..=43_200).contains(lifetime_minutes) =>
                {
                    add(&at, "a pass lives 10 to 43200 minutes".into());
                }
                Task::AddToGroups { groups } | Task::RemoveFromGroups { groups }
                    if groups.is_empty() || groups.len() > 20 =>
                {
                    add(&at, "1 to 20 groups".into());
                }
                Task::RemoveRoles { roles } if roles.is_empty() || roles.len() > 20 => {
                    add(&at, "1 to 20 roles".into());
                }
                Task::NotifyManager { message: Some(m) } if m.chars().count() > 2000 => {
                    add(&at, "a message is at most 2000 characters".into());
                }
                _ => {}
            }
        }
        let mut seen: Vec<&'static str> = Vec::new();
        for (i, step) in self.tasks.iter().enumerate() {
            if seen.contains(&step.task.name()) {
                add(
                    &format!("tasks[{i}]"),
                    format!("{} is there twice", step.task.name()),
                );
            }
            seen.push(step.task.name());
        }
        // A pass nobody receives is a pass for no one: its manager is told after.
        if let Some(pass) = self
            .tasks
            .iter()
            .position(|s| matches!(s.task, Task::GenerateTemporaryAccessPass { .. }))
            && !self.tasks[pass..]
                .iter()
                .any(|s| matches!(s.task, Task::NotifyManager { .. }))
        {
            add(
                &format!("tasks[{pass}]"),
                "a pass is sent to the manager: put notifyManager after it".into(),
            );
        }
        if let Some(delete) = self.tasks.iter().position(|s| s.task == Task::DeleteUser)
            && delete + 1 != self.tasks.len()
        {
            add(
                &format!("tasks[{delete}]"),
                "deleteUser is the last task".into(),
            );
        }
        problems
    }
}

/// A moment a time-based trigger fires for one user: the event's key part and
/// when it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The date that fired it, as the user has it (a changed date is a new event).
    pub key: String,
    pub at: OffsetDateTime,
}

/// Whether a time-based trigger fires now for a user with `date` (RFC 3339 or
/// a day): its moment (the date plus the offset) has come, within the window.
pub fn due(date: &str, offset_days: i32, window_days: u16, now: OffsetDateTime) -> Option<Due> {
    let date = crate::expression::parse_datetime(date)?;
    let at = date.checked_add(time::Duration::days(i64::from(offset_days)))?;
    let until = at.checked_add(time::Duration::days(i64::from(window_days)))?;
    (at <= now && now < until).then(|| Due {
        key: crate::expression::rfc3339(date).unwrap_or_default(),
        at,
    })
}

/// An event's key: one run per workflow, user and firing.
pub fn event_key(workflow: Uuid, user: Uuid, firing: &str) -> String {
    format!(
        "{workflow}:{user}:{}",
        tessera_core::crypto::sha256_hex(firing.as_bytes())
    )
}

#[cfg(test)]
mod tests;

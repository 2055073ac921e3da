//! Running workflows: the round the `lifecycle` job makes for a tenant, each
//! firing claimed once by its event's key, and the tasks.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Grant;
use tessera_directory::model::{DirectoryScope, ObjectType, UserSpec};
use tessera_directory::roles::{
    AUTHENTICATION_ADMINISTRATOR, GROUPS_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR,
    USER_ADMINISTRATOR,
};
use tessera_provisioning::lifecycle::{self, Category, DateAttribute, Task, Trigger, Workflow};
use tessera_store::{AuditQuery, Kind, Record};
use uuid::Uuid;

use super::{Lifecycle, Stored};
use crate::codec::{self, Keys, PageRequest, Versioned};
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::outbox::Notification;
use crate::{Context, EventDraft, Patch, Principal};

/// How many times a failed run is tried.
const MAX_ATTEMPTS: u32 = 3;
/// How long a run may stay `running` before it counts as cut off.
const STALE_RUNNING_SECONDS: i64 = 15 * 60;

/// One firing of a workflow for one user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LifecycleRun {
    pub id: Uuid,
    pub workflow_id: Uuid,
    /// The workflow's version it ran (a retry of a changed workflow is dropped).
    #[serde(default)]
    pub workflow_version: i64,
    pub workflow_name: String,
    pub user_id: Uuid,
    pub user_principal_name: String,
    /// What fired it: `employeeHireDate 2026-12-01T00:00:00Z`, `department
    /// changed`.
    pub trigger: String,
    /// `running`, `completed`, `failed`, `abandoned` (its workflow changed
    /// before a retry).
    pub state: String,
    pub attempts: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_date_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub completed_date_time: Option<Timestamp>,
    /// Each task: `task`, `status` (`done`, `failed`, `skipped`), `detail` or
    /// `error`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub tasks: Vec<Value>,
}

/// The lifecycle service between tasks (reading users, recording runs): a
/// User Administrator.
fn service_context(tenant: TenantId) -> Context {
    let mut ctx = crate::kernel::system_context(tenant, "lifecycle workflows");
    ctx.caller.principal = Principal::Workload {
        id: Uuid::nil(),
        display_name: "Lifecycle workflows".into(),
        kind: "lifecycleWorkflows",
    };
    ctx.caller.grants = vec![grant(USER_ADMINISTRATOR)];
    ctx
}

/// The lifecycle service as one task acts: User Administrator (to read and
/// change the user) and the one role that task needs, no other, so no task
/// borrows another's rights (adding to a group with the rights a role removal
/// needs would reach role-assignable groups).
fn task_context(service: &Context, task: &Task) -> Context {
    let role = match task {
        Task::GenerateTemporaryAccessPass { .. } => AUTHENTICATION_ADMINISTRATOR,
        Task::AddToGroups { .. } | Task::RemoveFromGroups { .. } | Task::RemoveFromAllGroups => {
            GROUPS_ADMINISTRATOR
        }
        Task::RemoveAllRoles | Task::RemoveRoles { .. } => PRIVILEGED_ROLE_ADMINISTRATOR,
        Task::EnableUser
        | Task::DisableUser
        | Task::RevokeSessions
        | Task::NotifyManager { .. }
        | Task::DeleteUser => USER_ADMINISTRATOR,
    };
    let mut ctx = service.clone();
    ctx.caller.grants = vec![grant(USER_ADMINISTRATOR)];
    if role != USER_ADMINISTRATOR {
        ctx.caller.grants.push(grant(role));
    }
    ctx
}

fn grant(role_id: Uuid) -> Grant {
    Grant {
        assignment_id: Uuid::nil(),
        role_id,
        scope: DirectoryScope::Tenant,
    }
}

fn date_of(spec: &UserSpec, created: Timestamp, attribute: DateAttribute) -> Option<String> {
    match attribute {
        DateAttribute::EmployeeHireDate => spec.employee_hire_date.map(|t| t.to_rfc3339()),
        DateAttribute::EmployeeLeaveDateTime => {
            spec.employee_leave_date_time.map(|t| t.to_rfc3339())
        }
        DateAttribute::CreatedDateTime => Some(created.to_rfc3339()),
    }
}

/// A firing found in a round.
struct Firing {
    user: Uuid,
    key: String,
    trigger: String,
}

impl Lifecycle {
    /// One round for a tenant: every enabled workflow's firings claimed and run,
    /// and failed runs tried again. Returns how many runs it made or retried.
    pub async fn lifecycle_round(&self, tenant: TenantId) -> ServiceResult<usize> {
        let mut reader = self.snapshot().await?;
        let workflows =
            codec::list_all(reader.as_mut(), tenant, Kind::LifecycleWorkflow, None).await?;
        let any_enabled = workflows
            .iter()
            .any(|r| codec::data::<Stored>(r).is_ok_and(|s| s.workflow.enabled));
        if !any_enabled {
            return Ok(0);
        }
        let users = codec::list_all(reader.as_mut(), tenant, Kind::User, None).await?;
        drop(reader);
        let by_id: std::collections::HashMap<Uuid, &Record> =
            users.iter().map(|u| (u.id, u)).collect();
        let now = time::OffsetDateTime::from_unix_timestamp(self.now().unix_seconds())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let mut done = 0;
        for record in &workflows {
            let workflow = codec::data::<Stored>(record)?.workflow;
            if !workflow.enabled {
                continue;
            }
            let scope = match &workflow.scope {
                Some(text) => match tessera_directory::rule::parse(text) {
                    Ok(rule) => Some(rule),
                    Err(_) => continue,
                },
                None => None,
            };
            let in_scope = |user: &Record| -> Option<UserSpec> {
                let spec: UserSpec = codec::data(user).ok()?;
                let member = spec.user_type == tessera_directory::model::UserType::Member;
                let matched = scope
                    .as_ref()
                    .is_none_or(|rule| tessera_directory::rule::matches(rule, user.id, &spec));
                (member && matched).then_some(spec)
            };
            let mut firings = Vec::new();
            match &workflow.trigger {
                Trigger::TimeBased {
                    attribute,
                    offset_days,
                } => {
                    for user in &users {
                        let Some(spec) = in_scope(user) else { continue };
                        let Some(date) = date_of(&spec, user.created, *attribute) else {
                            continue;
                        };
                        if let Some(due) =
                            lifecycle::due(&date, *offset_days, workflow.window_days, now)
                        {
                            firings.push(Firing {
                                user: user.id,
                                // A joiner runs once for a person (a date
                                // changed later does not make them join again);
                                // a leaver once per leave date.
                                key: lifecycle::event_key(
                                    record.id,
                                    user.id,
                                    if workflow.category == Category::Joiner {
                                        "joined"
                                    } else {
                                        &due.key
                                    },
                                ),
                                trigger: format!("{} {}", attribute.name(), due.key),
                            });
                        }
                    }
                }
                Trigger::AttributeChange { attributes } => {
                    let since = self
                        .now()
                        .plus_seconds(-i64::from(workflow.window_days) * 86_400);
                    for (user, event, changed) in self.changes(tenant, since, attributes).await? {
                        let Some(found) = by_id.get(&user).copied() else {
                            continue;
                        };
                        if in_scope(found).is_none() {
                            continue;
                        }
                        firings.push(Firing {
                            user,
                            key: lifecycle::event_key(record.id, user, &event),
                            trigger: format!("{} changed", changed.join(", ")),
                        });
                    }
                }
            }
            for firing in firings {
                // One firing's failure does not hold up the others.
                match self.fire(tenant, record, &workflow, firing).await {
                    Ok(true) => done += 1,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%tenant, workflow = %record.id, %error, "a lifecycle run failed");
                    }
                }
            }
        }
        done += self.retry_failed(tenant, &workflows).await?;
        Ok(done)
    }

    /// The users whose watched attributes changed since `since`: (user, the
    /// event's id, the attributes).
    async fn changes(
        &self,
        tenant: TenantId,
        since: Timestamp,
        watched: &[String],
    ) -> ServiceResult<Vec<(Uuid, String, Vec<String>)>> {
        let mut out = Vec::new();
        let mut before_seq = None;
        loop {
            let rows = self
                .store()
                .audit_query(
                    tenant,
                    &AuditQuery {
                        actor_id: None,
                        target_id: None,
                        action: Some(AuditAction::UserUpdate.as_str().to_string()),
                        since: Some(since),
                        until: None,
                        before_seq,
                        limit: 500,
                    },
                )
                .await?;
            let Some(last) = rows.last() else { break };
            before_seq = Some(last.seq);
            for row in &rows {
                let Ok(body) = serde_json::from_str::<Value>(&row.body) else {
                    continue;
                };
                let changed: Vec<String> = body["changes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["attribute"].as_str())
                    .filter(|a| watched.iter().any(|w| w == a))
                    .map(str::to_string)
                    .collect();
                let user = row
                    .target_id
                    .as_deref()
                    .and_then(|t| Uuid::parse_str(t).ok());
                if let (false, Some(user)) = (changed.is_empty(), user) {
                    out.push((user, row.id.clone(), changed));
                }
            }
            if rows.len() < 500 {
                break;
            }
        }
        Ok(out)
    }

    /// Claims a firing (its run record, keyed by the event) and runs it;
    /// `false` when another node or round has it.
    async fn fire(
        &self,
        tenant: TenantId,
        workflow_record: &Record,
        workflow: &Workflow,
        firing: Firing,
    ) -> ServiceResult<bool> {
        let ctx = service_context(tenant);
        let mut reader = self.reader().await?;
        // Claimed already (the usual case, every round of a window): no write.
        if reader
            .get_by_key1(tenant, Kind::LifecycleRun, &firing.key)
            .await?
            .is_some()
        {
            return Ok(false);
        }
        let Some(user) = reader.get(tenant, Kind::User, firing.user).await? else {
            return Ok(false);
        };
        drop(reader);
        let spec: UserSpec = codec::data(&user)?;
        let run = LifecycleRun {
            id: Uuid::new_v4(),
            workflow_id: workflow_record.id,
            workflow_version: workflow_record.version,
            workflow_name: workflow.display_name.clone(),
            user_id: user.id,
            user_principal_name: spec.user_principal_name.clone(),
            trigger: firing.trigger,
            state: "running".into(),
            attempts: 0,
            created_date_time: self.now(),
            completed_date_time: None,
            tasks: Vec::new(),
        };
        let keys = Keys {
            key1: Some(firing.key),
            key2: Some(workflow_record.id.to_string()),
            sort_key: codec::sort_key(&run.created_date_time.to_rfc3339()),
        };
        let record = codec::new_record(Kind::LifecycleRun, run.id, self.now(), keys, &run)?;
        let mut tx = self.write(&ctx).await?;
        match tx.insert(tenant, &record).await {
            Ok(()) => {}
            Err(tessera_store::StoreError::Duplicate { .. }) => return Ok(false),
            Err(error) => return Err(error.into()),
        }
        let event = EventDraft::new(AuditAction::LifecycleRunCreate)
            .on(Kind::User, user.id, &spec.user_principal_name)
            .details(json!({"workflowId": workflow_record.id, "workflow": workflow.display_name, "trigger": run.trigger}));
        self.audit(tx.as_mut(), &ctx, event).await?;
        tx.commit().await?;
        self.execute(&ctx, workflow, record, run, 0).await?;
        Ok(true)
    }

    /// Runs a workflow's tasks from `from` on, then records the run.
    async fn execute(
        &self,
        ctx: &Context,
        workflow: &Workflow,
        record: Record,
        mut run: LifecycleRun,
        from: usize,
    ) -> ServiceResult<()> {
        run.attempts += 1;
        run.tasks.truncate(from);
        let mut notifications = Vec::new();
        let mut pass: Option<(String, Timestamp)> = None;
        let mut failed = false;
        for step in &workflow.tasks[from.min(workflow.tasks.len())..] {
            if failed {
                run.tasks
                    .push(json!({"task": step.task.name(), "status": "skipped"}));
                continue;
            }
            match self
                .task(ctx, &step.task, run.user_id, &mut pass, &mut notifications)
                .await
            {
                Ok(detail) => run
                    .tasks
                    .push(json!({"task": step.task.name(), "status": "done", "detail": detail})),
                Err(error) => {
                    run.tasks.push(json!({"task": step.task.name(), "status": "failed", "error": error.to_string()}));
                    failed = !step.continue_on_error;
                }
            }
        }
        run.state = if failed { "failed" } else { "completed" }.into();
        run.completed_date_time = Some(self.now());
        let mut tx = self.write(ctx).await?;
        let keys = Keys {
            key1: record.key1.clone(),
            key2: record.key2.clone(),
            sort_key: record.sort_key.clone(),
        };
        let next = codec::next_version(&record, self.now(), keys, &run)?;
        tx.update(ctx.tenant, &next).await?;
        for notification in notifications {
            self.notify(tx.as_mut(), ctx.tenant, notification).await?;
        }
        let event = EventDraft::new(AuditAction::LifecycleRunUpdate)
            .on(Kind::User, run.user_id, &run.user_principal_name)
            .details(
                json!({"workflowId": run.workflow_id, "state": run.state, "tasks": run.tasks}),
            );
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Failed runs tried again from the task that failed.
    async fn retry_failed(&self, tenant: TenantId, workflows: &[Record]) -> ServiceResult<usize> {
        let mut retried = 0;
        // A run still `running` this long after it began was cut off (its node
        // stopped): it is tried again like a failed one.
        let stale = self.now().plus_seconds(-STALE_RUNNING_SECONDS);
        for workflow_record in workflows {
            let workflow = codec::data::<Stored>(workflow_record)?.workflow;
            if !workflow.enabled {
                continue;
            }
            let mut reader = self.reader().await?;
            let runs = codec::list_all(
                reader.as_mut(),
                tenant,
                Kind::LifecycleRun,
                Some(workflow_record.id.to_string()),
            )
            .await?;
            drop(reader);
            for record in runs {
                let mut run: LifecycleRun = codec::data(&record)?;
                let cut_off = run.state == "running" && record.modified < stale;
                if !(run.state == "failed" || cut_off) || run.attempts >= MAX_ATTEMPTS {
                    continue;
                }
                let ctx = service_context(tenant);
                // Claimed first at the version read: of two nodes, one retries.
                let changed = run.workflow_version != workflow_record.version;
                run.state = if changed { "abandoned" } else { "running" }.into();
                let keys = Keys {
                    key1: record.key1.clone(),
                    key2: record.key2.clone(),
                    sort_key: record.sort_key.clone(),
                };
                let claimed = codec::next_version(&record, self.now(), keys, &run)?;
                let mut tx = self.write(&ctx).await?;
                if tx.update(tenant, &claimed).await.is_err() {
                    continue;
                }
                let event = EventDraft::new(AuditAction::LifecycleRunUpdate)
                    .on(Kind::User, run.user_id, &run.user_principal_name)
                    .details(json!({"workflowId": run.workflow_id, "state": run.state}));
                self.audit(tx.as_mut(), &ctx, event).await?;
                tx.commit().await?;
                if changed {
                    // The workflow was changed since: what it did is not what it
                    // would do now.
                    continue;
                }
                let mut from = run
                    .tasks
                    .iter()
                    .position(|t| t["status"] == "failed")
                    .unwrap_or(run.tasks.len());
                // A pass and the mail that carries it go together.
                if let Some(pass) = workflow.tasks[..from.min(workflow.tasks.len())]
                    .iter()
                    .position(|s| matches!(s.task, Task::GenerateTemporaryAccessPass { .. }))
                    && workflow.tasks[from.min(workflow.tasks.len())..]
                        .iter()
                        .any(|s| matches!(s.task, Task::NotifyManager { .. }))
                {
                    from = pass;
                }
                match self.execute(&ctx, &workflow, claimed, run, from).await {
                    Ok(()) => retried += 1,
                    Err(error) => {
                        tracing::warn!(%tenant, workflow = %workflow_record.id, %error, "a lifecycle retry failed");
                    }
                }
            }
        }
        Ok(retried)
    }

    async fn task(
        &self,
        ctx: &Context,
        task: &Task,
        user: Uuid,
        pass: &mut Option<(String, Timestamp)>,
        notifications: &mut Vec<Notification>,
    ) -> ServiceResult<String> {
        let ctx = &task_context(ctx, task);
        let set_enabled = |enabled: bool| Patch {
            at: Versioned::any(user),
            body: json!({ "accountEnabled": enabled }),
        };
        Ok(match task {
            Task::EnableUser => {
                self.directory.update_user(ctx, set_enabled(true)).await?;
                "enabled".into()
            }
            Task::DisableUser => {
                self.directory.update_user(ctx, set_enabled(false)).await?;
                "disabled".into()
            }
            Task::GenerateTemporaryAccessPass { lifetime_minutes } => {
                // A pass is for a first sign-in: someone who has registered a
                // way to sign in gets none (a joiner is not a way into an
                // account that is in use).
                let methods = self.sign_in.list_user_methods(ctx, user).await?;
                if methods
                    .iter()
                    .any(|m| m.method_type != "temporaryAccessPass" && m.method_type != "password")
                {
                    return Ok("no pass: the user has registered a way to sign in".into());
                }
                // One use or several, as the tenant's pass policy says.
                let issued = self
                    .sign_in
                    .issue_temporary_access_pass(
                        ctx,
                        user,
                        json!({ "lifetimeInMinutes": lifetime_minutes }),
                    )
                    .await?;
                // The pass goes to the manager, never into the run.
                *pass = Some((issued.temporary_access_pass, issued.end_date_time));
                format!("a pass usable until {}", issued.end_date_time.to_rfc3339())
            }
            Task::AddToGroups { groups } => {
                for group in groups {
                    self.directory
                        .add_group_member(ctx, *group, json!({ "id": user }))
                        .await
                        .or_else(|e| match e {
                            ServiceError::Conflict { .. } => Ok(()),
                            other => Err(other),
                        })?;
                }
                format!("added to {} groups", groups.len())
            }
            Task::RemoveFromGroups { groups } => {
                for group in groups {
                    self.directory
                        .remove_group_member(ctx, *group, user)
                        .await
                        .or_else(|e| match e {
                            ServiceError::NotFound { .. } => Ok(()),
                            other => Err(other),
                        })?;
                }
                format!("removed from {} groups", groups.len())
            }
            Task::RemoveFromAllGroups => {
                let request = PageRequest {
                    limit: Some(1000),
                    ..Default::default()
                };
                let groups = self
                    .directory
                    .user_member_of(ctx, user, false, &request)
                    .await?;
                let mut removed = 0;
                let mut kept = Vec::new();
                for group in groups
                    .value
                    .iter()
                    .filter(|g| g.object_type == ObjectType::Group)
                {
                    match self
                        .directory
                        .remove_group_member(ctx, group.id, user)
                        .await
                    {
                        Ok(()) => removed += 1,
                        // Rules decide dynamic groups' members: those are left.
                        Err(ServiceError::Conflict { .. }) => {}
                        Err(error) => kept.push(format!("{} ({error})", group.display_name)),
                    }
                }
                if !kept.is_empty() {
                    return Err(ServiceError::Conflict {
                        message: format!(
                            "removed from {removed} groups, not from: {}",
                            kept.join("; ")
                        ),
                    });
                }
                format!("removed from {removed} groups")
            }
            Task::RemoveAllRoles | Task::RemoveRoles { .. } => {
                let only = match task {
                    Task::RemoveRoles { roles } => Some(roles.as_slice()),
                    _ => None,
                };
                let ended = self.pim.remove_principal_roles(ctx, user, only).await?;
                if ended.is_empty() {
                    "no roles to remove".into()
                } else {
                    format!("roles removed: {}", ended.join(", "))
                }
            }
            Task::RevokeSessions => {
                let ended = self.sign_in.revoke_user_sessions(ctx, user).await?;
                // Personal access tokens too: a leaver's tokens are refused even
                // where the account stays enabled.
                let request = PageRequest {
                    limit: Some(1000),
                    ..Default::default()
                };
                let tokens = self.directory.list_tokens(ctx, user, &request).await?;
                for token in &tokens.value {
                    self.directory.revoke_token(ctx, user, token.id).await?;
                }
                format!(
                    "{ended} sessions ended, {} personal access tokens revoked",
                    tokens.value.len()
                )
            }
            Task::NotifyManager { message } => {
                let mut reader = self.reader().await?;
                let spec: UserSpec = match reader.get(ctx.tenant, Kind::User, user).await? {
                    Some(record) => codec::data(&record)?,
                    None => {
                        return Err(ServiceError::NotFound {
                            kind: "user",
                            id: user.to_string(),
                        });
                    }
                };
                let manager = match spec.manager_id {
                    Some(manager) => reader.get(ctx.tenant, Kind::User, manager).await?,
                    None => None,
                };
                let Some(manager) = manager else {
                    return Err(ServiceError::Conflict {
                        message: "the user has no manager to notify".into(),
                    });
                };
                let manager: UserSpec = codec::data(&manager)?;
                let to = manager
                    .mail
                    .clone()
                    .unwrap_or(manager.user_principal_name.clone());
                let mut text = message.clone().unwrap_or_else(|| {
                    format!(
                        "This is about {} ({}).",
                        spec.display_name, spec.user_principal_name
                    )
                });
                if let Some((secret, until)) = pass.as_ref() {
                    text.push_str(&format!(
                        "\n\nTheir Temporary Access Pass for the first sign-in is {secret} (usable until {}).",
                        until.to_rfc3339()
                    ));
                }
                notifications.push(Notification {
                    topic: "lifecycle.notifyManager".into(),
                    subject: format!("About {}", spec.display_name),
                    text,
                    recipients: vec![to.clone()],
                    data: json!({"userId": user, "manager": to}),
                });
                format!("{to} notified")
            }
            Task::DeleteUser => {
                self.directory
                    .delete_user(ctx, Versioned::any(user))
                    .await?;
                "deleted".into()
            }
        })
    }

    /// The runs of a workflow (or all), newest first.
    pub async fn lifecycle_runs(
        &self,
        ctx: &Context,
        workflow: Option<Uuid>,
    ) -> ServiceResult<Vec<LifecycleRun>> {
        self.require(
            ctx,
            tessera_directory::roles::action::POLICIES_READ,
            &tessera_directory::authz::Target::Tenant,
        )?;
        let mut reader = self.reader().await?;
        if let Some(id) = workflow
            && reader
                .get(ctx.tenant, Kind::LifecycleWorkflow, id)
                .await?
                .is_none()
        {
            return Err(ServiceError::NotFound {
                kind: "lifecycleWorkflow",
                id: id.to_string(),
            });
        }
        let mut runs: Vec<LifecycleRun> = codec::list_all(
            reader.as_mut(),
            ctx.tenant,
            Kind::LifecycleRun,
            workflow.map(|w| w.to_string()),
        )
        .await?
        .iter()
        .map(codec::data)
        .collect::<ServiceResult<_>>()?;
        runs.sort_by_key(|r| std::cmp::Reverse(r.created_date_time));
        Ok(runs)
    }
}

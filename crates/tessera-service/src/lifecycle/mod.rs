//! The lifecycle context: joiner, mover and leaver workflows (the rules are
//! `tessera_provisioning::lifecycle`'s) kept as records, run by the `lifecycle`
//! job over the tenant's users.
//!
//! Each firing (a workflow, a user, and the date or the change that fired it)
//! is claimed by a run record whose key is the event's: of several nodes and
//! rounds, one runs it. A run records each task's result; a run that failed is
//! tried again from the task that failed, at most three times. Tasks act as the
//! lifecycle service, with the roles its tasks need and no others; whoever saves
//! a workflow must hold them.
//!
//! May call: the kernel, the directory, and sign-in (passes, sessions).

mod run;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_core::Timestamp;
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_provisioning::lifecycle::{Task, Workflow};
use tessera_store::{Kind, Record};
use uuid::Uuid;

use crate::codec::{self, Keys, Replacement};
use crate::directory::Directory;
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::Kernel;
use crate::pim::Pim;
use crate::sign_in::SignIn;
use crate::{Context, EventDraft};

pub use run::LifecycleRun;

/// The lifecycle context (see the module documentation).
pub struct Lifecycle {
    k: Arc<Kernel>,
    directory: Arc<Directory>,
    sign_in: Arc<SignIn>,
    pim: Arc<Pim>,
}

crate::kernel::on_kernel!(Lifecycle);

/// A workflow as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkflowView {
    pub id: Uuid,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub workflow: Workflow,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_date_time: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub modified_date_time: Timestamp,
    pub version: i64,
}

/// The stored workflow.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    #[serde(flatten)]
    workflow: Workflow,
}

/// What a task does, as an action the saver must be allowed.
fn task_action(task: &Task) -> &'static str {
    match task {
        Task::EnableUser => action::USERS_ENABLE,
        Task::DisableUser => action::USERS_DISABLE,
        Task::GenerateTemporaryAccessPass { .. } => action::USERS_AUTH_METHODS_CREATE,
        Task::AddToGroups { .. } | Task::RemoveFromGroups { .. } | Task::RemoveFromAllGroups => {
            action::GROUPS_MEMBERS_UPDATE
        }
        Task::RemoveAllRoles | Task::RemoveRoles { .. } => action::ROLE_ASSIGNMENTS_MANAGE,
        Task::RevokeSessions => action::USERS_INVALIDATE_TOKENS,
        Task::NotifyManager { .. } => action::USERS_READ,
        Task::DeleteUser => action::USERS_DELETE,
    }
}

fn view(record: &Record) -> ServiceResult<WorkflowView> {
    let stored: Stored = codec::data(record)?;
    Ok(WorkflowView {
        id: record.id,
        workflow: stored.workflow,
        created_date_time: record.created,
        modified_date_time: record.modified,
        version: record.version,
    })
}

fn not_found(id: Uuid) -> ServiceError {
    ServiceError::NotFound {
        kind: "lifecycleWorkflow",
        id: id.to_string(),
    }
}

impl Lifecycle {
    pub(crate) fn new(
        k: Arc<Kernel>,
        directory: Arc<Directory>,
        sign_in: Arc<SignIn>,
        pim: Arc<Pim>,
    ) -> Lifecycle {
        Lifecycle {
            k,
            directory,
            sign_in,
            pim,
        }
    }

    /// A workflow read and checked; the caller must be allowed its tasks.
    async fn checked(&self, ctx: &Context, mut body: Value) -> ServiceResult<Workflow> {
        self.may_change_settings(ctx)?;
        // What GET shows besides the workflow may be sent back as it is.
        if let Some(object) = body.as_object_mut() {
            for shown in ["id", "version", "createdDateTime", "modifiedDateTime"] {
                object.remove(shown);
            }
        }
        let workflow: Workflow = patch::parse_spec(body)?;
        let problems = workflow.check();
        if !problems.is_empty() {
            let mut errors = tessera_directory::ValidationErrors::new();
            for (at, what) in problems {
                errors.add(at, what);
            }
            return Err(ServiceError::Validation(errors));
        }
        self.may_run(ctx, &workflow)?;
        // The groups it names exist and take members by hand.
        let mut reader = self.reader().await?;
        for (i, step) in workflow.tasks.iter().enumerate() {
            if let Task::RemoveRoles { roles } = &step.task {
                for role in roles {
                    if tessera_directory::roles::built_in(*role).is_none() {
                        return Err(ServiceError::invalid(
                            format!("tasks[{i}].roles"),
                            format!("no directory role has the id {role}"),
                        ));
                    }
                }
            }
            let (Task::AddToGroups { groups } | Task::RemoveFromGroups { groups }) = &step.task
            else {
                continue;
            };
            for group in groups {
                let spec = match reader.get(ctx.tenant, Kind::Group, *group).await? {
                    Some(record) => codec::data::<tessera_directory::model::GroupSpec>(&record)?,
                    None => {
                        return Err(ServiceError::invalid(
                            format!("tasks[{i}].groups"),
                            format!("no group with id {group} exists"),
                        ));
                    }
                };
                if spec.is_dynamic() {
                    return Err(ServiceError::invalid(
                        format!("tasks[{i}].groups"),
                        format!(
                            "{} is a dynamic group: its rule decides its members",
                            spec.display_name
                        ),
                    ));
                }
                if spec.is_assignable_to_role {
                    return Err(ServiceError::invalid(
                        format!("tasks[{i}].groups"),
                        format!(
                            "{} can be assigned roles: its members are changed by hand or in PIM, not by a workflow",
                            spec.display_name
                        ),
                    ));
                }
            }
        }
        Ok(workflow)
    }

    /// Whoever saves or deletes a workflow must be allowed what it does.
    fn may_run(&self, ctx: &Context, workflow: &Workflow) -> ServiceResult<()> {
        for step in &workflow.tasks {
            self.require(ctx, task_action(&step.task), &Target::Tenant)?;
        }
        Ok(())
    }

    pub async fn create_workflow(&self, ctx: &Context, body: Value) -> ServiceResult<WorkflowView> {
        let workflow = self.checked(ctx, body).await?;
        let stored = Stored { workflow };
        let keys = Keys::named(&stored.workflow.display_name);
        let record = codec::new_record(
            Kind::LifecycleWorkflow,
            Uuid::new_v4(),
            self.now(),
            keys,
            &stored,
        )?;
        let mut tx = self.write(ctx).await?;
        tx.insert(ctx.tenant, &record).await?;
        let event = EventDraft::new(AuditAction::LifecycleWorkflowCreate)
            .on(
                Kind::LifecycleWorkflow,
                record.id,
                &stored.workflow.display_name,
            )
            .changes(patch::changes(
                &Value::Null,
                &serde_json::to_value(&stored).unwrap_or_default(),
            ));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        view(&record)
    }

    pub async fn list_workflows(&self, ctx: &Context) -> ServiceResult<Vec<WorkflowView>> {
        self.require(ctx, action::POLICIES_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        codec::list_all(reader.as_mut(), ctx.tenant, Kind::LifecycleWorkflow, None)
            .await?
            .iter()
            .map(view)
            .collect()
    }

    pub async fn get_workflow(&self, ctx: &Context, id: Uuid) -> ServiceResult<WorkflowView> {
        self.require(ctx, action::POLICIES_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let record = reader
            .get(ctx.tenant, Kind::LifecycleWorkflow, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        view(&record)
    }

    /// Replaces a workflow (`If-Match`: the version read).
    pub async fn replace_workflow(
        &self,
        ctx: &Context,
        id: Uuid,
        change: Replacement,
    ) -> ServiceResult<WorkflowView> {
        let Replacement { body, if_match } = change;
        let workflow = self.checked(ctx, body).await?;
        let mut tx = self.write(ctx).await?;
        let record = tx
            .get(ctx.tenant, Kind::LifecycleWorkflow, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        codec::check_if_match(&record, if_match)?;
        let before: Stored = codec::data(&record)?;
        let after = Stored { workflow };
        let next = codec::next_version(
            &record,
            self.now(),
            Keys::named(&after.workflow.display_name),
            &after,
        )?;
        tx.update(ctx.tenant, &next).await?;
        let event = EventDraft::new(AuditAction::LifecycleWorkflowUpdate)
            .on(Kind::LifecycleWorkflow, id, &after.workflow.display_name)
            .changes(patch::changes(
                &serde_json::to_value(&before).unwrap_or_default(),
                &serde_json::to_value(&after).unwrap_or_default(),
            ));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        view(&next)
    }

    pub async fn delete_workflow(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        self.may_change_settings(ctx)?;
        let mut tx = self.write(ctx).await?;
        let record = tx
            .get(ctx.tenant, Kind::LifecycleWorkflow, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let stored: Stored = codec::data(&record)?;
        // Stopping a workflow (a leaver) needs what running it needs.
        self.may_run(ctx, &stored.workflow)?;
        tx.delete(
            ctx.tenant,
            Kind::LifecycleWorkflow,
            id,
            Some(record.version),
        )
        .await?;
        let event = EventDraft::new(AuditAction::LifecycleWorkflowDelete).on(
            Kind::LifecycleWorkflow,
            id,
            &stored.workflow.display_name,
        );
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        Ok(())
    }
}

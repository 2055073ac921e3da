//! The Privileged Identity Management context: eligible and time-bound directory
//! role assignments and group memberships and ownerships, requested through
//! Graph's schedule requests (`roleEligibilityScheduleRequests`,
//! `roleAssignmentScheduleRequests`, and PIM for groups'
//! `eligibilityScheduleRequests` and `assignmentScheduleRequests`), decided by
//! the pure rules of `tessera-pim` under each target's settings, approved or
//! denied where the settings ask, and recorded in the audit trail.
//!
//! - `requests.rs`: schedule requests (the nine actions), approval, denial,
//!   cancellation, time-outs; the schedules and instances they leave.
//! - `policies.rs`: the same settings as Graph's role management policies and
//!   their rules (`tessera_pim::graph`), changed rule by rule.
//! - `settings.rs`: a role's settings (Graph's role management policy), stored
//!   per role (`Kind::PimPolicy`, key1 `role:<id>`); the defaults until changed.
//! - `alerts.rs`: discovery of standing privilege and the alerts, their
//!   thresholds, and the conversion of a standing assignment to an eligibility.
//! - `protected.rs`: the tenant's protected actions (a setting each caller
//!   carries; `Kernel::protect` enforces it).
//! - `jobs.rs`: the per-tenant round that records ended schedules and timed-out
//!   requests in the audit trail and forgets schedules past renewal.
//!
//! The schedule records themselves are the directory's (`directory::role_schedules`),
//! which reads them at every use: an activation grants from its start to its end on
//! every node, whether or not this context's job has run.
//!
//! May call: the kernel and the directory. Holds no cache: every decision reads
//! the schedules in the write transaction that applies it.

pub(crate) mod alerts;
pub(crate) mod jobs;
pub(crate) mod notify;
mod offboarding;
pub(crate) mod policies;
pub(crate) mod protected;
pub(crate) mod requests;
pub(crate) mod settings;

use std::sync::Arc;

use tessera_directory::authz::{self, Target};
use tessera_directory::roles::{self, RoleDefinition, action};
use tessera_pim::Refusal;
use tessera_store::Reader;
use uuid::Uuid;

use crate::Context;
use crate::directory::Directory;
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::Kernel;

pub use alerts::{AlertSettingsView, AlertView};
pub use requests::{
    Family, InstanceView, RequestFilter, RequestView, ScheduleInfo, ScheduleView, Status,
};
pub use settings::SettingsView;
pub use tessera_pim::Kind as ScheduleKind;
/// The protected actions' names (`tessera_pim::protected`).
pub use tessera_pim::protected as protected_action;
pub use tessera_pim::{Approver, GroupAccess, Settings};

/// The PIM context (see the module documentation).
pub struct Pim {
    k: Arc<Kernel>,
    directory: Arc<Directory>,
}

crate::kernel::on_kernel!(Pim);

impl Pim {
    pub(crate) fn new(k: Arc<Kernel>, directory: Arc<Directory>) -> Pim {
        Pim { k, directory }
    }

    /// Whether the caller may manage role assignments tenant-wide (PIM's
    /// administrator: assigns, removes, changes schedules and settings).
    fn administers(&self, ctx: &Context) -> bool {
        matches!(
            authz::authorize(
                &ctx.caller.grants,
                action::ROLE_ASSIGNMENTS_MANAGE,
                &Target::Tenant
            ),
            authz::Decision::Allow { .. }
        )
    }

    fn reads_assignments(&self, ctx: &Context) -> bool {
        matches!(
            authz::authorize(
                &ctx.caller.grants,
                action::ROLE_ASSIGNMENTS_READ,
                &Target::Tenant
            ),
            authz::Decision::Allow { .. }
        )
    }

    /// The caller as the rules see them.
    async fn rules_caller(
        &self,
        reader: &mut dyn Reader,
        ctx: &Context,
    ) -> ServiceResult<tessera_pim::Caller> {
        let id = caller_id(ctx)?;
        let proof = ctx.caller.proof.clone().unwrap_or_default();
        // Direct memberships, standing or given by PIM at this moment.
        let groups =
            crate::directory::groups::containing_groups(reader, ctx.tenant, id, false, self.now())
                .await?;
        Ok(tessera_pim::Caller {
            id,
            administers: self.administers(ctx),
            mfa: proof.mfa,
            authentication_contexts: proof.authentication_contexts,
            groups,
        })
    }
}

/// The calling user (PIM's requests and answers are people's).
fn caller_id(ctx: &Context) -> ServiceResult<Uuid> {
    ctx.caller.user_id().ok_or_else(|| ServiceError::Forbidden {
        reason: "privileged access requests are made by users".to_string(),
    })
}

/// An approver's or administrator's justification: at most 500 characters.
fn check_justification(text: Option<&str>) -> ServiceResult<()> {
    if text.is_some_and(|j| j.chars().count() > 500) {
        return Err(ServiceError::invalid(
            "justification",
            "the text given is longer than 500 characters",
        ));
    }
    Ok(())
}

/// A role by id, as a request names it.
fn role_named(id: Uuid) -> ServiceResult<&'static RoleDefinition> {
    roles::built_in(id).ok_or_else(|| {
        ServiceError::invalid(
            "roleDefinitionId",
            format!("no role definition with id {id} exists"),
        )
    })
}

/// A refusal of the rules as the API says it: a missing step-up is an RFC 9470
/// challenge naming what would satisfy it; the rest name the field or state.
fn refused(refusal: Refusal) -> ServiceError {
    let message = refusal.to_string();
    match refusal {
        Refusal::NotPermitted
        | Refusal::NotThePrincipal
        | Refusal::SelfApproval
        | Refusal::NotAnApprover => ServiceError::Forbidden { reason: message },
        Refusal::MfaRequired => ServiceError::InsufficientAuthentication {
            acr_values: MFA_ACR.to_string(),
            message,
        },
        Refusal::AuthenticationContextRequired(context) => {
            ServiceError::InsufficientAuthentication {
                acr_values: context,
                message,
            }
        }
        Refusal::JustificationRequired | Refusal::TextTooLong => {
            ServiceError::invalid("justification", message)
        }
        Refusal::TicketRequired => ServiceError::invalid("ticketInfo", message),
        Refusal::PermanentNotAllowed | Refusal::TooLong(_) | Refusal::BadWindow => {
            ServiceError::invalid("scheduleInfo", message)
        }
        Refusal::NoSuchSchedule => ServiceError::invalid("targetScheduleId", message),
        Refusal::NotEligible
        | Refusal::AlreadyActive
        | Refusal::AlreadyAssigned
        | Refusal::NotExtensible
        | Refusal::NotRenewable
        | Refusal::TimedOut => ServiceError::Conflict { message },
    }
}

/// A refusal for this caller: a step-up a personal access token can never make
/// (it proves nothing of a sign-in) is a plain refusal saying how to sign in.
fn refused_for(ctx: &Context, refusal: Refusal) -> ServiceError {
    let step_up = matches!(
        refusal,
        Refusal::MfaRequired | Refusal::AuthenticationContextRequired(_)
    );
    if step_up && ctx.caller.proof.is_none() {
        return ServiceError::Forbidden {
            reason: format!(
                "{refusal}: this credential carries no sign-in; sign in (tessera login without --token, or the console) and try again"
            ),
        };
    }
    refused(refusal)
}

/// The `acr` that asks for multifactor authentication (Tessera's value for the
/// built-in MFA strength).
pub const MFA_ACR: &str = "urn:tessera:acr:mfa";

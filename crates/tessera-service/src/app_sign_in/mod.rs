//! The app sign-in context: the protocol-neutral step "this person, signed in with
//! this session, enters this application". Given an access request (the session,
//! the application and the resource, the client type, device, address, and the
//! authentication contexts asked for) it gathers the sign-in's facts, asks
//! Conditional Access, and answers with a verdict (allow, step up, accept terms,
//! change password, block) and the decision that explains it. OpenID Connect uses
//! it; SAML, the proxy and the console will. What the verdict looks like on a wire
//! (a redirect, a page, an error) is the protocol's business.
//!
//! Still in the OpenID Connect context, to come here as other protocols need them:
//! session sufficiency (`max_age`, `prompt=login`, a wanted `acr`), consent, and the
//! sign-in log entries of sign-ins to applications.
//!
//! May call: the kernel, the directory, access, sign-in (today it needs only access).

use std::sync::Arc;

use tessera_ca::engine::{ClientApp, Outcome};
use tessera_core::TenantId;
use uuid::Uuid;

use crate::Access;
use crate::access::{Decided, UserAccess, app_target, contexts_of};
use crate::error::ServiceResult;
use crate::kernel::Kernel;
use crate::sign_in::SessionInfo;

pub struct AppSignIn {
    k: Arc<Kernel>,
    access: Arc<Access>,
}

crate::kernel::on_kernel!(AppSignIn);

/// A session's request to enter an application.
pub struct AccessRequest<'a> {
    pub tenant: TenantId,
    pub session: &'a SessionInfo,
    /// The application's client id (`appId`).
    pub client_id: &'a str,
    /// The application the access is for when it is another one (an API's `appId`).
    pub resource_app: Option<Uuid>,
    /// The access is for Tessera's own management API.
    pub management: bool,
    pub client_app: ClientApp,
    /// The authentication context class references the application asked for.
    pub wanted_acr: Vec<String>,
    pub client_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// SHA-256 (hex) of the client certificate, naming a registered device.
    pub device_thumbprint: Option<&'a str>,
    /// The session comes from a sign-in made for this very request: a shortfall is
    /// final (signing in again would loop).
    pub made_for_this: bool,
}

/// What the person must do, if anything, before they enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// A new sign-in: reaching these strengths, or a fresh one when empty.
    StepUp {
        strengths: Vec<Uuid>,
    },
    /// Accept these terms of use (their ids) first.
    AcceptTerms {
        terms: Vec<Uuid>,
    },
    ChangePassword,
    /// Refused, with the reason the person is shown.
    Block {
        reason: String,
    },
}

/// A verdict with the Conditional Access decision that explains it.
pub(crate) struct AppDecision {
    pub verdict: Verdict,
    pub decided: Decided,
}

impl AppSignIn {
    pub(crate) fn new(k: Arc<Kernel>, access: Arc<Access>) -> AppSignIn {
        AppSignIn { k, access }
    }

    /// The Conditional Access decision for the request (no side effects).
    pub(crate) async fn access_decision(
        &self,
        request: &AccessRequest<'_>,
    ) -> ServiceResult<Decided> {
        let session = request.session;
        let target = app_target(request.client_id, request.resource_app, request.management);
        let password_changed = session
            .data
            .password_changed
            .is_some_and(|t| t >= session.auth_time);
        let facts = self
            .access
            .user_facts(
                request.tenant,
                UserAccess {
                    user: session.user_id,
                    target,
                    auth_contexts: contexts_of(&request.wanted_acr),
                    client_app: request.client_app,
                    client_address: request.client_address,
                    user_agent: request.user_agent,
                    device_thumbprint: request.device_thumbprint,
                    strengths: &session.data.strengths,
                    auth_time: Some(session.auth_time),
                    password_changed,
                    device_code_flow: false,
                },
            )
            .await?;
        self.access.decide(request.tenant, &facts).await
    }

    /// Decides whether the session may enter the application, and if not, what
    /// would let it.
    pub(crate) async fn decide(&self, request: &AccessRequest<'_>) -> ServiceResult<AppDecision> {
        let decided = self.access_decision(request).await?;
        let verdict = verdict_of(&decided, request.made_for_this);
        Ok(AppDecision { verdict, decided })
    }
}

/// The verdict a decision gives: a block, a control no sign-in can meet (a managed
/// device), or a sign-in made for this request that still falls short, refuses;
/// otherwise the remedy asks for a new sign-in, then terms, then a password change.
fn verdict_of(decided: &Decided, made_for_this: bool) -> Verdict {
    let outcome = decided.decision.outcome;
    if outcome == Outcome::Allow {
        return Verdict::Allow;
    }
    let remedy = decided.decision.remedy(&decided.set);
    let step_up = !remedy.strengths.is_empty() || remedy.reauthenticate;
    if outcome == Outcome::Block {
        return Verdict::Block {
            reason: "Your organization's access policies block this sign-in.".to_string(),
        };
    }
    if !remedy.impossible.is_empty() {
        return Verdict::Block {
            reason: "Your organization's access policies allow this application only from a managed (compliant or domain-joined) device.".to_string(),
        };
    }
    if made_for_this && step_up {
        // A sign-in made for this request still falls short: no loop.
        return Verdict::Block {
            reason:
                "The sign-in did not meet your organization's access policies for this application."
                    .to_string(),
        };
    }
    if step_up {
        return Verdict::StepUp {
            strengths: remedy.strengths,
        };
    }
    if !remedy.accept_terms.is_empty() {
        return Verdict::AcceptTerms {
            terms: remedy.accept_terms,
        };
    }
    Verdict::ChangePassword
}

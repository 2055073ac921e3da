//! The app sign-in context: the protocol-neutral step "this person, with this
//! session (or none), enters this application". Given an access request (the
//! session, the application and the resource, the client type, device, address,
//! the authentication contexts asked for, what the request demands of the session,
//! the permissions asked for) it decides, from one read snapshot: whether the
//! session is good enough or a sign-in comes first, Conditional Access, an
//! essential authentication context, assignment and consent. It answers with a
//! verdict (allow, sign in, step up, accept terms, change password, consent,
//! refuse), the Conditional Access decision that explains it, and the sign-in log
//! entry to write. OpenID Connect uses it; SAML, the proxy and the console will.
//! What the verdict looks like on a wire (a redirect, a page, an error) is the
//! protocol's business, and so is writing the entry once it has acted.
//!
//! The rules themselves (session sufficiency, the verdict's order) are pure, in
//! [`rules`].
//!
//! May call: the kernel, the directory, access; uses the sign-in context's session
//! and log entry types (not its methods), and nothing of the protocols.

pub mod rules;

use std::sync::Arc;

use serde::Serialize;

use tessera_authn::strength;
use tessera_ca::engine::{ClientApp, PolicySet};
use tessera_core::{AppId, TenantId, Timestamp};
use tessera_directory::model::{ApplicationData, AuthenticationContexts, ServicePrincipalData};
use tessera_oauth::acr;
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use crate::Access;
use crate::access::{Decided, UserAccess, app_target, contexts_of};
use crate::codec;
use crate::directory::builtin;
use crate::error::ServiceResult;
use crate::kernel::Kernel;
use crate::sign_in::{SessionInfo, SignInEntry, truncate};

use rules::{AccessFinding, Findings, SessionFacts};
pub use rules::{Demands, Verdict};

pub struct AppSignIn {
    k: Arc<Kernel>,
    access: Arc<Access>,
    risk: Arc<crate::Risk>,
}

crate::kernel::on_kernel!(AppSignIn);

/// A sign-in Conditional Access needs before the request can go on.
#[derive(Debug)]
pub struct StepUp {
    pub user_id: Uuid,
    pub user_principal_name: String,
    /// Strengths the new sign-in must reach.
    pub strengths: Vec<Uuid>,
}

/// Terms of use to accept before the request can go on.
#[derive(Debug, Clone, Serialize)]
pub struct TermsToAccept {
    pub id: Uuid,
    pub display_name: String,
    pub content: String,
}

/// A request to enter an application.
pub struct AccessRequest<'a> {
    pub tenant: TenantId,
    /// The browser's session, if it has one.
    pub session: Option<&'a SessionInfo>,
    /// What the request demands of that session.
    pub demands: Demands,
    /// The application's client id (`appId`).
    pub client_id: AppId,
    /// The application the access is for when it is another one (an API's `appId`).
    pub resource_app: Option<AppId>,
    /// The access is for Tessera's own management API.
    pub management: bool,
    pub client_app: ClientApp,
    /// The authentication context class references the application asked for.
    pub wanted_acr: Vec<String>,
    /// Those of them it asked for as essential.
    pub essential_acr: Vec<String>,
    /// The delegated permissions the application asks for, which need consent.
    pub permissions: Vec<String>,
    /// Ask for consent to every permission again (OIDC `prompt=consent`).
    pub reconsent: bool,
    pub correlation_id: &'a str,
    pub client_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// SHA-256 (hex) of the client certificate, naming a registered device.
    pub device_thumbprint: Option<&'a str>,
    /// The session comes from a sign-in made for this very request: a shortfall is
    /// final (signing in again would loop).
    pub made_for_this: bool,
}

/// The answer to an access request.
pub(crate) struct AppDecision {
    pub verdict: Verdict,
    /// The application's display name (its client id when it has none here).
    pub app_name: String,
    /// The tenant's authentication contexts, for the `acr` the protocol issues.
    pub contexts: AuthenticationContexts,
    /// Conditional Access's decision; none when a sign-in comes first.
    pub decided: Option<Decided>,
    /// The sign-in log entry: a success for an allow (written once the protocol has
    /// issued), a failure or interruption when Conditional Access stopped it.
    pub entry: Option<SignInEntry>,
}

/// The permissions a user has not consented to, and whether they may.
pub(crate) struct ConsentNeed {
    pub missing: Vec<String>,
    pub user_may: bool,
}

/// The permissions `user` has not granted `client_id` (all of them with
/// `reconsent`; an administrator's grant counts), and whether the tenant's consent
/// policy lets the user grant them. Tessera's own command line needs no consent.
pub(crate) async fn consent_needed(
    reader: &mut dyn Reader,
    tenant: TenantId,
    client_id: AppId,
    user: Uuid,
    permissions: &[String],
    reconsent: bool,
) -> ServiceResult<ConsentNeed> {
    if builtin::is_management_client(client_id) {
        return Ok(ConsentNeed {
            missing: Vec::new(),
            user_may: true,
        });
    }
    let granted = if reconsent {
        Vec::new()
    } else {
        crate::directory::consent::granted_scopes(reader, tenant, client_id, user).await?
    };
    let missing: Vec<String> = permissions
        .iter()
        .filter(|p| !granted.contains(p))
        .cloned()
        .collect();
    let user_may = missing.is_empty()
        || crate::directory::consent::consent_policy(reader, tenant)
            .await?
            .user_may_consent(&missing);
    Ok(ConsentNeed { missing, user_may })
}

/// Whether the application has an enabled service principal in the tenant.
async fn service_principal_enabled(
    reader: &mut dyn Reader,
    tenant: TenantId,
    app_id: AppId,
) -> ServiceResult<bool> {
    match reader
        .get_by_key1(tenant, Kind::ServicePrincipal, &app_id.to_string())
        .await?
    {
        Some(record) => Ok(codec::data::<ServicePrincipalData>(&record)?
            .spec
            .account_enabled),
        None => Ok(false),
    }
}

/// Who signed in to which application, for the sign-in log.
pub(crate) struct AppEntry<'a> {
    pub user_id: Uuid,
    pub user_principal_name: &'a str,
    pub methods: Vec<String>,
    pub strengths: &'a [Uuid],
    pub app_name: &'a str,
    pub client_id: &'a str,
    pub correlation_id: &'a str,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// `interactiveUser`, `nonInteractiveUser`...
    pub event_type: &'a str,
}

/// A successful user sign-in to an application, as a sign-in log entry.
pub(crate) fn app_entry(now: Timestamp, facts: AppEntry<'_>) -> SignInEntry {
    SignInEntry {
        id: Uuid::new_v4(),
        created_date_time: now,
        user_id: Some(facts.user_id),
        user_principal_name: facts.user_principal_name.to_string(),
        app_display_name: truncate(facts.app_name, 256),
        client_address: facts.client_address,
        user_agent: facts.user_agent.map(|ua| truncate(&ua, 512)),
        result: "success".to_string(),
        failure_code: None,
        failure_reason: None,
        authentication_methods: facts.methods,
        authentication_requirement: if facts.strengths.contains(&strength::MFA) {
            "multiFactorAuthentication"
        } else {
            "singleFactorAuthentication"
        }
        .to_string(),
        satisfied_strengths: facts.strengths.to_vec(),
        correlation_id: facts.correlation_id.to_string(),
        sign_in_event_type: facts.event_type.to_string(),
        app_id: Some(truncate(facts.client_id, 64)),
        conditional_access_status: None,
        applied_conditional_access_policies: None,
        attempt_count: None,
        last_attempt_date_time: None,
        risk_level_during_sign_in: None,
        risk_event_types: Vec::new(),
        device_detail: None,
    }
}

impl AppSignIn {
    pub(crate) fn new(k: Arc<Kernel>, access: Arc<Access>, risk: Arc<crate::Risk>) -> AppSignIn {
        AppSignIn { k, access, risk }
    }

    /// Conditional Access's decision for the request's session (none without one;
    /// no side effects).
    pub(crate) async fn access_decision(
        &self,
        request: &AccessRequest<'_>,
    ) -> ServiceResult<Option<Decided>> {
        let Some(session) = request.session else {
            return Ok(None);
        };
        // The policy set first: its cache may read the store, and a snapshot
        // held meanwhile would hold a pooled connection.
        let set = self.access.policy_set(request.tenant).await?;
        let mut reader = self.snapshot().await?;
        let decided = self
            .conditional_access(reader.as_mut(), set, request, session)
            .await?;
        Ok(Some(decided))
    }

    async fn conditional_access(
        &self,
        reader: &mut dyn Reader,
        set: Arc<PolicySet>,
        request: &AccessRequest<'_>,
        session: &SessionInfo,
    ) -> ServiceResult<Decided> {
        let target = app_target(request.client_id, request.resource_app, request.management);
        let password_changed = session
            .data
            .password_changed
            .is_some_and(|t| t >= session.auth_time);
        let facts = self
            .access
            .user_facts(
                reader,
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
                    sign_in_risk: self.risk.address_risk(request.client_address).max(
                        session
                            .data
                            .sign_in_risk
                            .unwrap_or(crate::risk::RiskLevel::None),
                    ),
                },
            )
            .await?;
        Ok(Access::decide_with(set, &facts))
    }

    /// Decides whether the request's session may enter the application, and if
    /// not, what would let it. Reads nothing outside one snapshot (the policy set
    /// comes from this node's cache) and writes nothing.
    pub(crate) async fn decide(&self, request: &AccessRequest<'_>) -> ServiceResult<AppDecision> {
        let tenant = request.tenant;
        // The policy set first: its cache may read the store, and the snapshot
        // held meanwhile would hold a pooled connection.
        let set = self.access.policy_set(tenant).await?;
        let mut reader = self.snapshot().await?;
        let app = reader
            .get_by_key1(tenant, Kind::Application, &request.client_id.to_string())
            .await?
            .map(|record| codec::data::<ApplicationData>(&record))
            .transpose()?;
        let app_name = app
            .as_ref()
            .map(|app| app.spec.display_name.clone())
            .or_else(|| builtin::builtin_name(request.client_id).map(str::to_string))
            .unwrap_or_else(|| request.client_id.to_string());
        // Deleted or disabled since the request began (a pending request waits up
        // to 15 minutes): nobody enters. Tessera's own command line has no record.
        let available = match &app {
            Some(app) => service_principal_enabled(reader.as_mut(), tenant, app.app_id).await?,
            None => builtin::is_management_client(request.client_id),
        };
        if !available {
            return Ok(AppDecision {
                verdict: Verdict::Unavailable,
                app_name,
                contexts: AuthenticationContexts::default(),
                decided: None,
                entry: None,
            });
        }
        let contexts = crate::directory::consent::auth_contexts(reader.as_mut(), tenant).await?;
        let now = self.now();
        let session = request.session.filter(|session| {
            rules::session_meets(
                &request.demands,
                &SessionFacts {
                    user_principal_name: &session.user_principal_name,
                    auth_time: session.auth_time,
                    strengths: &session.data.strengths,
                },
                &request.wanted_acr,
                &contexts,
                now,
            )
        });
        let Some(session) = session else {
            return Ok(AppDecision {
                verdict: Verdict::SignIn,
                app_name,
                contexts,
                decided: None,
                entry: None,
            });
        };
        let decided = self
            .conditional_access(reader.as_mut(), set, request, session)
            .await?;
        let access = AccessFinding::of(&decided);
        // Checked only once Conditional Access allows: a refusal stops here.
        let (essential_met, assigned, consent) = if access == AccessFinding::Allow {
            // An authentication context counts when its strength is reached or the
            // policies targeting it are met.
            let met_by_policies = decided
                .decision
                .met_auth_contexts(&decided.set, &request.wanted_acr);
            let essential_met = request.essential_acr.is_empty()
                || request.essential_acr.iter().any(|wanted| {
                    acr::acr_satisfied(wanted, &session.data.strengths, &contexts)
                        || met_by_policies.contains(wanted)
                });
            let assigned = match &app {
                Some(app) => crate::directory::app_roles::user_assignment(
                    reader.as_mut(),
                    tenant,
                    app,
                    session.user_id,
                    self.now(),
                )
                .await?
                .is_none_or(|assignment| assignment.admits()),
                None => true,
            };
            let consent = consent_needed(
                reader.as_mut(),
                tenant,
                request.client_id,
                session.user_id,
                &request.permissions,
                request.reconsent,
            )
            .await?;
            (essential_met, assigned, consent)
        } else {
            (
                true,
                true,
                ConsentNeed {
                    missing: Vec::new(),
                    user_may: true,
                },
            )
        };
        drop(reader);
        let verdict = rules::verdict(Findings {
            access,
            made_for_this: request.made_for_this,
            essential_met,
            assigned,
            missing_consent: consent.missing,
            user_may_consent: consent.user_may,
        });
        let entry = (verdict == Verdict::Allow || verdict.is_conditional_access())
            .then(|| self.entry_of(request, session, &app_name, &decided, &verdict));
        Ok(AppDecision {
            verdict,
            app_name,
            contexts,
            decided: Some(decided),
            entry,
        })
    }

    /// The sign-in log entry of a decision Conditional Access made or let through.
    fn entry_of(
        &self,
        request: &AccessRequest<'_>,
        session: &SessionInfo,
        app_name: &str,
        decided: &Decided,
        verdict: &Verdict,
    ) -> SignInEntry {
        let mut entry = app_entry(
            self.now(),
            AppEntry {
                user_id: session.user_id,
                user_principal_name: &session.user_principal_name,
                methods: session
                    .methods
                    .iter()
                    .map(|m| m.method.mode.to_string())
                    .collect(),
                strengths: &session.data.strengths,
                app_name,
                client_id: &request.client_id.to_string(),
                correlation_id: request.correlation_id,
                client_address: request.client_address.map(str::to_string),
                user_agent: request.user_agent.map(str::to_string),
                event_type: "interactiveUser",
            },
        );
        if *verdict != Verdict::Allow {
            let blocked = matches!(verdict, Verdict::Block { .. });
            entry.result = if blocked { "failure" } else { "interrupted" }.to_string();
            entry.failure_code = Some(
                if blocked {
                    crate::sign_in::failure::CA_BLOCKED
                } else {
                    crate::sign_in::failure::CA_INTERRUPTED
                }
                .to_string(),
            );
            entry.failure_reason = Some(
                if blocked {
                    "blocked by Conditional Access"
                } else {
                    "Conditional Access asked for more"
                }
                .to_string(),
            );
        }
        entry.conditional_access_status = Some(decided.status().to_string());
        entry.applied_conditional_access_policies = Some(decided.log_value());
        entry.device_detail = decided
            .device
            .map(|device_id| crate::sign_in::DeviceDetail { device_id });
        entry
    }
}

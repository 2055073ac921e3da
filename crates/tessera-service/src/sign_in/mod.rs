//! The sign-in context: the methods (password, TOTP, passkeys, temporary access
//! passes, certificates), the sign-in flow (`flow/`), server-side sessions
//! (`sessions.rs`), security info self-service (`security_info.rs`), the sign-in log
//! (`log_storage.rs`: how entries are stored and kept; `log_writer.rs`: the group
//! commit) and the administrator operations on all of them (`admin.rs`, and
//! `certificates.rs` for the trust store and its revocation lists).
//!
//! May call: the kernel, the directory, access (Conditional Access decides the
//! registration of security information).
//!
//! The methods' logic lives in `tessera-authn`; this module loads and stores their
//! state. Changes to a user's methods are directory changes (audited, in the chain);
//! sign-in state (flows, sessions, counters, the sign-in log) goes to the store's
//! session tables, so sign-ins never wait for the audit chain's lock.

mod admin;
pub(crate) mod certificates;
mod flow;
pub mod interruptions;
pub mod log_storage;
pub(crate) mod log_writer;
pub mod my_account;
mod security_info;
pub(crate) mod sessions;

use std::sync::Arc;
use tessera_ca::model::RiskLevel;

use serde::{Deserialize, Serialize};
use tessera_authn::passkey::RelyingParty;
use tessera_authn::registration::MethodUse;
use tessera_authn::strength;
use tessera_authn::strength::Mode;
use tessera_authn::totp;
use tessera_core::{TenantId, Timestamp};
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};

pub use crate::directory::auth_methods::AuthMethodView;
pub(crate) use crate::directory::auth_policy::{
    POLICY_KEY, all_strengths, load_policy, load_strength,
};
pub use crate::kernel::{AuthSettings, RevocationFetcher, SharedFetcher};
pub use admin::{MethodsRegistered, NewTemporaryAccessPass, SignInFilter, TemporaryAccessPassView};
pub use certificates::{CertificateAuthorityView, NewCa};
pub use flow::{FlowStep, FlowView, SignInOutcome};
pub use my_account::MyApp;
pub use security_info::{PasskeyChallenge, TotpEnrolment};
pub use sessions::{SessionInfo, SessionView};
pub(crate) use sessions::{lineage_of, row_sid};

/// The sign-in context: sign-in flows, sessions, security info, methods
/// administration, certificates and revocation, the sign-in log.
pub struct SignIn {
    k: Arc<crate::kernel::Kernel>,
    pub(crate) directory: Arc<crate::Directory>,
    pub(crate) access: Arc<crate::Access>,
    pub(crate) risk: Arc<crate::Risk>,
    pub(crate) authn: Authn,
    pub(crate) sign_in_log: crate::sign_in::log_writer::SignInLog,
    pub(crate) sign_in_sources: crate::sign_in::log_storage::FailureSources,
    /// The methods report of each tenant, with when it was counted (it reads every
    /// method record, so it is counted at most once a minute a node).
    pub(crate) methods_reports: std::sync::Mutex<
        std::collections::HashMap<
            TenantId,
            (
                tessera_core::Timestamp,
                crate::sign_in::admin::MethodsRegistered,
            ),
        >,
    >,
}

crate::kernel::on_kernel!(SignIn);

impl SignIn {
    pub(crate) fn new(
        k: Arc<crate::kernel::Kernel>,
        directory: Arc<crate::Directory>,
        access: Arc<crate::Access>,
        risk: Arc<crate::Risk>,
    ) -> SignIn {
        let authn = Authn::new(&k.settings);
        SignIn {
            k,
            directory,
            access,
            risk,
            authn,
            sign_in_log: crate::sign_in::log_writer::SignInLog::default(),
            sign_in_sources: crate::sign_in::log_storage::FailureSources::default(),
            methods_reports: std::sync::Mutex::default(),
        }
    }
}

/// Passkeys and password hashing, from the installation's settings.
pub(crate) struct Authn {
    pub relying_party: Option<RelyingParty>,
    pub hashing: Arc<tokio::sync::Semaphore>,
}

impl Authn {
    pub(crate) fn new(settings: &AuthSettings) -> Authn {
        let relying_party = match RelyingParty::new(&settings.public_url, &settings.issuer_name) {
            Ok(rp) => Some(rp),
            Err(error) => {
                tracing::warn!(%error, "passkeys are unavailable");
                None
            }
        };
        let permits = settings.max_concurrent_hashes.max(1);
        Authn {
            relying_party,
            hashing: Arc::new(tokio::sync::Semaphore::new(permits)),
        }
    }

    pub(crate) fn relying_party(&self) -> ServiceResult<&RelyingParty> {
        self.relying_party.as_ref().ok_or_else(|| {
            ServiceError::Unavailable(
                "passkeys need a public URL with a host name (set public_url)".to_string(),
            )
        })
    }

    /// Runs argon2id work on the blocking pool, at most `max_concurrent_hashes` at once.
    pub(crate) async fn hash_work<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ServiceError::Unavailable("shutting down".to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ServiceError::Internal(format!("hashing failed: {e}")))
    }
}

/// Where a sign-in request comes from.
#[derive(Debug, Clone)]
pub struct SignInContext {
    pub tenant: TenantId,
    pub correlation_id: String,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// The session the browser held when it signed in (its cookie's secret): the
    /// new session takes over from it (see `SignIn::create_session`).
    pub previous_session: Option<String>,
}

/// The device of a sign-in (Graph's `deviceDetail`, the part Tessera knows:
/// a registered device its certificate named).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeviceDetail {
    pub device_id: Uuid,
}

/// The sign-in log entry as the API shows it (stored compactly, see
/// `log_storage`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignInEntry {
    pub id: Uuid,
    pub created_date_time: Timestamp,
    pub user_id: Option<Uuid>,
    /// The name typed, or the user's principal name.
    pub user_principal_name: String,
    pub app_display_name: String,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// `success`, `failure` or `interrupted`.
    pub result: String,
    /// A stable code for failures and interruptions.
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    /// The methods verified in this sign-in (Entra method names).
    pub authentication_methods: Vec<String>,
    /// `singleFactorAuthentication` or `multiFactorAuthentication`.
    pub authentication_requirement: String,
    /// The strengths the methods used satisfy.
    pub satisfied_strengths: Vec<Uuid>,
    pub correlation_id: String,
    /// `interactiveUser`, or `servicePrincipal` for a workload's token request.
    #[serde(default = "interactive")]
    pub sign_in_event_type: String,
    /// The client application's id, for workload sign-ins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// `success`, `failure` (blocked or unmet) or `notApplied` (no policy applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional_access_status: Option<String>,
    /// The Conditional Access explanation: the result, the policy set's version
    /// (`policySetVersion`), and the policies that applied, enforced or report-only,
    /// with what they required; policies that did not apply are only counted
    /// (`notAppliedPolicies`). Older entries list every policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_conditional_access_policies: Option<serde_json::Value>,
    /// For failures counted together (same address, name, application and failure
    /// code within a minute): how many attempts this entry stands for. The entry's
    /// other details are the first attempt's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_count: Option<i64>,
    /// For failures counted together: when the last attempt was made
    /// (`createdDateTime` is the first). The log lists and filters such an entry by
    /// its last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_date_time: Option<Timestamp>,
    /// The sign-in's real-time risk (`low`, `medium`, `high`), when Identity
    /// Protection found any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_level_during_sign_in: Option<String>,
    /// The kinds of what it found (`riskEventTypes_v2` in Graph).
    #[serde(
        default,
        rename = "riskEventTypes_v2",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub risk_event_types: Vec<String>,
    /// The registered device the sign-in came from (its certificate named
    /// it), as Graph's `deviceDetail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_detail: Option<DeviceDetail>,
}

fn interactive() -> String {
    "interactiveUser".to_string()
}

/// How an attempt ended, for the sign-in log.
#[derive(Debug, Clone)]
pub(crate) enum Logged {
    /// With the strengths the sign-in reached (already computed for the session).
    Success(Vec<Uuid>),
    Failure(&'static str),
    /// Not finished: the code and a reason.
    Interrupted(&'static str, &'static str),
}

/// Stable failure codes of the sign-in log.
pub mod failure {
    pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
    pub const ACCOUNT_LOCKED: &str = "account_locked";
    pub const ACCOUNT_DISABLED: &str = "account_disabled";
    pub const INVALID_CODE: &str = "invalid_code";
    pub const CODE_REPLAYED: &str = "code_replayed";
    pub const PASS_NOT_USABLE: &str = "temporary_access_pass_not_usable";
    pub const PASSKEY_FAILED: &str = "passkey_failed";
    pub const PASSKEY_UNKNOWN: &str = "passkey_unknown";
    pub const PASSKEY_CLONED: &str = "passkey_clone_suspected";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    pub const MFA_REQUIRED: &str = "mfa_required";
    /// A step-up did not reach the strengths Conditional Access asked for.
    pub const STRENGTH_NOT_MET: &str = "strength_not_met";
    /// A Conditional Access policy blocked the sign-in.
    pub const CA_BLOCKED: &str = "conditional_access_blocked";
    /// Conditional Access asked for more (a stronger sign-in, terms, a password change).
    pub const CA_INTERRUPTED: &str = "conditional_access_interrupted";
    pub const CERTIFICATE_NOT_BOUND: &str = "certificate_user_not_found";
    pub const CERTIFICATE_MISSING: &str = "certificate_missing";
}

impl SignIn {
    /// The strengths (built-in and the tenant's) that the methods used satisfy.
    pub(crate) async fn satisfied_strengths(
        &self,
        tenant: TenantId,
        used: &[MethodUse],
    ) -> ServiceResult<Vec<Uuid>> {
        let mut reader = self.reader().await?;
        let methods: Vec<_> = used.iter().map(|u| u.method.clone()).collect();
        Ok(strength::reached(
            &all_strengths(reader.as_mut(), tenant).await?,
            &methods,
        ))
    }

    /// Records a sign-in attempt. Logging must not fail a sign-in silently, so a
    /// store error is returned; nothing secret is ever in `entry`. Returns the
    /// attempt's real-time risk.
    pub(crate) async fn log_attempt(
        &self,
        ctx: &SignInContext,
        user_id: Option<Uuid>,
        user_name: &str,
        used: &[MethodUse],
        outcome: Logged,
    ) -> ServiceResult<RiskLevel> {
        let outcome_kind = match &outcome {
            Logged::Success(_) => "success",
            Logged::Failure(_) => "failure",
            Logged::Interrupted(..) => "interrupted",
        };
        let (result, failure_code, failure_reason, satisfied) = match outcome {
            Logged::Success(satisfied) => ("success", None, None, satisfied),
            Logged::Failure(code) => (
                "failure",
                Some(code),
                None,
                self.satisfied_strengths(ctx.tenant, used).await?,
            ),
            Logged::Interrupted(code, reason) => (
                "interrupted",
                Some(code),
                Some(reason),
                self.satisfied_strengths(ctx.tenant, used).await?,
            ),
        };
        let methods: Vec<_> = used.iter().map(|u| u.method.clone()).collect();
        let multi = strength::built_in()
            .iter()
            .any(|s| s.id == strength::MFA && s.satisfied_by(&methods));
        let entry = SignInEntry {
            id: Uuid::new_v4(),
            created_date_time: self.now(),
            user_id,
            user_principal_name: truncate(user_name, 256),
            app_display_name: "Tessera".to_string(),
            client_address: ctx.client_address.clone(),
            user_agent: ctx.user_agent.as_deref().map(|ua| truncate(ua, 512)),
            result: result.to_string(),
            failure_code: failure_code.map(str::to_string),
            failure_reason: failure_reason.map(str::to_string),
            authentication_methods: used.iter().map(|u| u.method.mode.to_string()).collect(),
            authentication_requirement: if multi {
                "multiFactorAuthentication"
            } else {
                "singleFactorAuthentication"
            }
            .to_string(),
            satisfied_strengths: satisfied,
            correlation_id: ctx.correlation_id.clone(),
            sign_in_event_type: interactive(),
            app_id: None,
            conditional_access_status: None,
            applied_conditional_access_policies: None,
            attempt_count: None,
            last_attempt_date_time: None,
            risk_level_during_sign_in: None,
            risk_event_types: Vec::new(),
            device_detail: None,
        };
        // The IdP's own sign-ins: failed passwords are counted, and a sign-in
        // that used a password learns what they say of it. Neither ever fails
        // the sign-in.
        let source = ctx.client_address.as_deref();
        let mut detections = Vec::new();
        let mut remembered = RiskLevel::None;
        let password_used = used.iter().any(|u| u.method.mode == Mode::Password);
        let counted = match outcome_kind {
            "failure" if failure_code == Some(failure::INVALID_CREDENTIALS) && !password_used => {
                self.risk
                    .count_failure(ctx.tenant, user_id, user_name, source)
                    .await
            }
            "failure" => Ok(()),
            _ if password_used => self
                .risk
                .failure_detections(ctx.tenant, user_id, user_name, source)
                .await
                .map(|(found, level)| {
                    detections.extend(found);
                    remembered = level;
                }),
            _ => Ok(()),
        };
        if let Err(error) = counted {
            tracing::warn!(tenant = %ctx.tenant, %error, "cannot count a sign-in for risk");
        }
        // A second factor asked for after the right password is counted until
        // one is answered: prompts left unanswered or denied, again and
        // again, are someone with the password hoping for a tired yes.
        if let Some(user) = user_id.filter(|_| password_used) {
            let prompted = match (outcome_kind, failure_code) {
                ("interrupted", Some(failure::MFA_REQUIRED))
                | ("failure", Some(failure::INVALID_CREDENTIALS)) => {
                    let facts = crate::risk::SignInFacts {
                        sign_in: Some(entry.id),
                        at: entry.created_date_time,
                        user_id: Some(user),
                        user_principal_name: &entry.user_principal_name,
                        client_address: source,
                        correlation_id: &entry.correlation_id,
                    };
                    self.risk.mfa_prompted(ctx.tenant, &facts).await
                }
                ("success", _) => self.risk.mfa_answered(ctx.tenant, user).await,
                _ => Ok(()),
            };
            if let Err(error) = prompted {
                tracing::warn!(tenant = %ctx.tenant, %error, "cannot count an MFA prompt for risk");
            }
        }
        let level = self.append_log_with(ctx.tenant, &entry, detections).await?;
        Ok(level.max(remembered))
    }

    /// Appends a sign-in log entry (group commit; returns once it is durable)
    /// as it is: an application's entry for a session already signed in is
    /// no new sign-in, and is not assessed again (the session's sign-in was).
    pub(crate) async fn append_log(
        &self,
        tenant: TenantId,
        entry: &SignInEntry,
    ) -> ServiceResult<()> {
        let row = self.log_row(tenant, entry)?;
        self.sign_in_log.append(&self.store, tenant, row).await
    }

    /// Appends the entry of a sign-in (Tessera's own, or the password grant)
    /// assessed for risk in real time: the entry carries the kinds and level
    /// of what was found. Detections are recorded (after the entry) for
    /// sign-ins that got past the password (succeeded or were interrupted),
    /// each once; failed attempts only carry them on their entry, which the
    /// log counts together, so a spray from a listed address writes no more
    /// than the log does. Recording never fails a sign-in. `detections` are
    /// those found before the entry (the password step's); the address's and
    /// the profile's are added. Returns the sign-in's real-time risk.
    pub(crate) async fn append_log_with(
        &self,
        tenant: TenantId,
        entry: &SignInEntry,
        mut detections: Vec<tessera_risk::Detection>,
    ) -> ServiceResult<RiskLevel> {
        if entry.sign_in_event_type == "interactiveUser" {
            detections.extend(
                self.risk
                    .address_detections(entry.client_address.as_deref()),
            );
            // A completed sign-in is weighed against the user's own.
            if let (Some(user), "success") = (entry.user_id, entry.result.as_str()) {
                let seen = crate::risk::Seen {
                    sign_in: entry.id,
                    client_address: entry.client_address.as_deref(),
                    user_agent: entry.user_agent.as_deref(),
                    risky: !detections.is_empty(),
                };
                match self.risk.profile_detections(tenant, user, &seen).await {
                    Ok(found) => detections.extend(found),
                    Err(error) => {
                        tracing::warn!(%tenant, %error, "cannot weigh a sign-in against its profile")
                    }
                }
            }
        }
        if detections.is_empty() {
            let row = self.log_row(tenant, entry)?;
            self.sign_in_log.append(&self.store, tenant, row).await?;
            return Ok(RiskLevel::None);
        }
        let mut entry = entry.clone();
        let level = tessera_risk::aggregate::sign_in_risk(&detections);
        entry.risk_level_during_sign_in = Some(
            serde_json::to_value(level)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        );
        entry.risk_event_types = detections
            .iter()
            .map(|d| d.event_type.name().to_string())
            .collect();
        let row = self.log_row(tenant, &entry)?;
        self.sign_in_log.append(&self.store, tenant, row).await?;
        if entry.result != "failure" {
            let facts = crate::risk::SignInFacts::of(&entry);
            if let Err(error) = self.risk.record(tenant, &facts, &detections).await {
                tracing::warn!(%tenant, %error, "cannot record a sign-in's risk detections");
            }
        }
        Ok(level)
    }
}

pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

pub(crate) fn random_bytes<const N: usize>() -> ServiceResult<[u8; N]> {
    let mut bytes = [0u8; N];
    tessera_core::crypto::fill_random(&mut bytes)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(bytes)
}

pub(crate) fn totp_parameters(
    algorithm: totp::Algorithm,
    digits: u32,
    period: u64,
) -> totp::Parameters {
    totp::Parameters {
        algorithm,
        digits,
        period,
        skew: 1,
    }
}

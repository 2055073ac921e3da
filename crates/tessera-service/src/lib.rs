//! The application layer: the use cases, in contexts, behind the [`App`] facade the
//! delivery crates hold. Each context is its own type with its own caches, in a
//! folder of its own, and may call only the contexts before it in this order (so
//! the calls form no circle):
//!
//! 1. [`Kernel`] (`kernel/`): store, clock, settings, default tenant; require a
//!    permission, write in one transaction with its audit event; jobs with leases
//!    (`jobs`).
//! 2. [`Directory`] (`directory/`): users, groups, devices, units, roles, attributes,
//!    applications and service principals, tokens, audit, tenant policies, bootstrap;
//!    and the records the contexts above read (stored methods, methods policy and
//!    strengths, the certificate trust store).
//!    After it, [`Pim`] (`pim/`): Privileged Identity Management: eligible and
//!    time-bound role assignments, schedule requests, approvals, role settings
//!    (the schedule records are the directory's, read at every use).
//! 3. [`Access`] (`access/`): Conditional Access records, import, What-If, the
//!    per-node policy cache, the sign-in's facts and decisions.
//! 4. [`SignIn`] (`sign_in/`): sign-in flows, sessions, security info, methods
//!    administration, certificates and revocation, the sign-in log.
//! 5. [`AppSignIn`] (`app_sign_in/`): the protocol-neutral step "this session enters
//!    this application" (Conditional Access's verdict and its explanation).
//! 6. [`Oidc`] (`oidc/`): OpenID Connect and OAuth (authorize, grants, client
//!    authentication, DPoP, device, exchange, introspection, logout, signing keys).
//! 7. [`Saml`] (`saml/`): the SAML identity provider (application configurations,
//!    IdP certificates and metadata; the SSO profile through the app sign-in step).
//! 8. [`Siem`](siem::Siem) (`siem/`): the SIEM export: the sign-in log, the audit
//!    trail and the risk detections streamed to each tenant's sinks, every sink
//!    with its own cursors.
//!
//! [`App`] (`app.rs`) builds them and runs the application's jobs. The module paths
//! from before the folders (`authn`, `oauth`, `conditional_access`, `audit`,
//! `signing_keys`, `sign_in_storage`, `jobs`) stay as re-exports.
//!
//! A use case authorizes the caller, validates the request with the domain crates,
//! applies it in one store transaction and records the audit event in that same
//! transaction. This crate knows the store only through `dyn Store` and knows nothing
//! of HTTP; the server and the offline CLI both call it.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod access;
mod app;
pub mod app_sign_in;
pub mod directory;
pub mod kernel;
pub mod lifecycle;
pub mod oidc;
pub mod pim;
pub mod provisioning;
pub mod risk;
pub mod saml;
pub mod siem;
pub mod sign_in;
pub mod signals;

// The kernel's codec and errors are used everywhere under these short paths.
pub(crate) use kernel::{codec, error};

// The module paths the other crates use, from before the contexts had folders.
pub use access as conditional_access;
pub use directory::audit;
pub use oidc as oauth;
pub use oidc::signing_keys;
pub use sign_in as authn;
pub use sign_in::log_storage as sign_in_storage;

/// Background work: the kernel's job runner and the application's own jobs.
pub mod jobs {
    pub use crate::app::application_jobs;
    pub use crate::kernel::jobs::*;
}

use serde::Serialize;
use serde_json::Value;
use tessera_core::TenantId;
use tessera_directory::audit::{Actor, TargetRef};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Grant;
use tessera_directory::patch::Change;
use tessera_store::Kind;
use uuid::Uuid;

pub use access::Access;
pub use app::App;
pub use app_sign_in::AppSignIn;
pub use codec::{Page, PageRequest, Patch, Replacement, Versioned};
pub use directory::Directory;
pub use directory::apps::{AddKey, AddPassword, CreatedPassword, CredentialHolder};
pub use directory::audit::{AuditEntry, AuditFilter, VerifyReport};
pub use directory::bootstrap::Bootstrap;
pub use directory::groups::RulePreview;
pub use directory::resource::Resource;
pub use directory::roles::{RoleDefinitionView, RolePermission};
pub(crate) use directory::target_facts;
pub use directory::tokens::{CreatedToken, NewToken, parse_token_tenant};
pub use error::{ServiceError, ServiceResult};
pub use kernel::Kernel;
pub use kernel::tenant_settings::TenantSetting;
pub use lifecycle::Lifecycle;
pub use oidc::Oidc;
pub use pim::Pim;
pub use provisioning::Provisioning;
pub use risk::Risk;
pub use saml::Saml;
pub use sign_in::SignIn;
pub use signals::Signals;

/// Who is calling, with the role grants they hold: a proof of authentication. Only
/// this crate's authenticating code makes one (a personal access token, a management
/// access token, a browser session, Tessera itself), so delivery code cannot claim a
/// principal or grants it did not prove; it reads them through the accessors.
#[derive(Debug, Clone)]
pub struct Caller {
    pub(crate) principal: Principal,
    pub(crate) grants: Vec<Grant>,
    /// How the caller authenticated, for the audit trail (e.g. `pat:<token id>`).
    pub(crate) credential: Option<String>,
    /// Set when the caller's credential was issued by an administrator for them. Such
    /// a credential cannot be turned into a longer-lived one.
    pub(crate) issued_credential: Option<IssuedCredential>,
    /// What the caller's sign-in proved, when its credential carries that (a
    /// management access token does; a personal access token says nothing of how
    /// its owner signed in, so it proves no MFA).
    pub(crate) proof: Option<SignInProof>,
    /// The tenant's protected actions, read when the caller was authenticated.
    pub(crate) protected: std::sync::Arc<tessera_pim::protected::ProtectedActions>,
}

/// What a sign-in proved, as PIM and protected actions ask for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInProof {
    /// Multifactor authentication (RFC 8176 `mfa` among the methods).
    pub mfa: bool,
    /// The tenant's authentication contexts the sign-in satisfies (`acrs`).
    pub authentication_contexts: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuedCredential {
    pub issued_by: Uuid,
    pub expires: tessera_core::Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User {
        id: Uuid,
        user_principal_name: String,
    },
    /// Tessera itself (bootstrap, offline maintenance).
    System { reason: String },
    /// A workload: a provisioning token (`kind` `provisioningToken`, `id` the
    /// token's) or an application's service principal (`servicePrincipal`).
    Workload {
        id: Uuid,
        display_name: String,
        kind: &'static str,
    },
}

impl Caller {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whether any of the caller's grants, at any scope, includes `action`: what a
    /// page may use to decide which links to show. Each request is still decided on
    /// the object's own facts.
    pub fn holds_anywhere(&self, action: &str) -> bool {
        self.grants.iter().any(|grant| {
            tessera_directory::roles::built_in(grant.role_id)
                .is_some_and(|role| role.grants(action))
        })
    }

    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    pub fn credential(&self) -> Option<&str> {
        self.credential.as_deref()
    }

    pub fn issued_credential(&self) -> Option<IssuedCredential> {
        self.issued_credential
    }

    pub fn proof(&self) -> Option<&SignInProof> {
        self.proof.as_ref()
    }

    /// This caller as if their sign-in had proved `proof` (the `testing` feature:
    /// production builds learn it only from the credential).
    #[cfg(feature = "testing")]
    pub fn with_proof_for_tests(&self, proof: SignInProof) -> Caller {
        Caller {
            proof: Some(proof),
            ..self.clone()
        }
    }

    /// This caller's credential with another principal and grants, made up by a test
    /// (the `testing` feature, which only the test kit turns on): production builds
    /// cannot make a caller without authenticating.
    #[cfg(feature = "testing")]
    pub fn impersonating_for_tests(&self, principal: Principal, grants: Vec<Grant>) -> Caller {
        Caller {
            principal,
            grants,
            ..self.clone()
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match &self.principal {
            Principal::User { id, .. } => Some(*id),
            Principal::System { .. } | Principal::Workload { .. } => None,
        }
    }

    /// Who the caller is, as a record names them (a user principal name, a
    /// workload's display name).
    pub(crate) fn actor_name(&self) -> String {
        self.actor().display_name
    }

    fn actor(&self) -> Actor {
        match &self.principal {
            Principal::User {
                id,
                user_principal_name,
            } => Actor {
                actor_type: "user".to_string(),
                id: Some(*id),
                display_name: user_principal_name.clone(),
                credential: self.credential.clone(),
            },
            Principal::System { reason } => Actor::system(reason),
            Principal::Workload {
                id,
                display_name,
                kind,
            } => Actor {
                actor_type: kind.to_string(),
                id: Some(*id),
                display_name: display_name.clone(),
                credential: self.credential.clone(),
            },
        }
    }
}

/// One request's context.
#[derive(Debug, Clone)]
pub struct Context {
    pub tenant: TenantId,
    pub caller: Caller,
    pub correlation_id: String,
    pub client_address: Option<String>,
}

/// What an operation records, before the common fields are filled in.
pub(crate) struct EventDraft {
    pub action: AuditAction,
    pub target: Option<TargetRef>,
    pub changes: Vec<Change>,
    pub details: Value,
}

impl EventDraft {
    /// An event of `action`, about no object yet (a tenant-wide setting).
    pub fn new(action: AuditAction) -> EventDraft {
        EventDraft {
            action,
            target: None,
            changes: Vec::new(),
            details: Value::Null,
        }
    }

    /// The object the event is about.
    pub fn on(mut self, kind: Kind, id: impl ToString, display_name: &str) -> EventDraft {
        self.target = Some(TargetRef {
            target_type: kind.as_str().to_string(),
            id: id.to_string(),
            display_name: display_name.to_string(),
        });
        self
    }

    pub fn changes(mut self, changes: Vec<Change>) -> EventDraft {
        self.changes = changes;
        self
    }

    pub fn details(mut self, details: impl Serialize) -> EventDraft {
        self.details = serde_json::to_value(details).unwrap_or(Value::Null);
        self
    }
}

//! Directory use cases: each public method of [`Directory`] is one management
//! operation (create a user, add a group member, assign a role...). It authorizes the
//! caller, validates the request with the domain crate, applies it in one store
//! transaction and records the audit event in that same transaction.
//!
//! This crate knows the store only through `dyn Store` and knows nothing of HTTP; the
//! server and the offline CLI both call it.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod app_roles;
mod apps;
mod attributes;
pub mod audit;
pub mod authn;
mod bootstrap;
mod codec;
pub mod conditional_access;
mod consent;
mod devices;
mod error;
mod groups;
pub mod jobs;
pub mod oauth;
mod roles;
mod sign_in_log;
pub mod sign_in_storage;
pub mod signing_keys;
mod tokens;
mod units;
mod users;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tessera_core::{Clock, TenantId, Timestamp};
use tessera_directory::audit::{Actor, AuditEvent, ChangeRecord, TargetRef};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::{self, Decision, Grant, Target};
use tessera_directory::patch::Change;
use tessera_store::{AuditAppend, Kind, Reader, Store, WriteTx};
use uuid::Uuid;

pub use apps::{AddKey, AddPassword, CreatedPassword};
pub use audit::{AuditEntry, AuditFilter, VerifyReport};
pub use bootstrap::Bootstrap;
pub use codec::{Page, PageRequest};
pub use error::{ServiceError, ServiceResult};
pub use roles::{RoleDefinitionView, RolePermission};
pub use tokens::{CreatedToken, NewToken, parse_token_tenant};

/// Who is calling, with the role grants they hold.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub grants: Vec<Grant>,
    /// How the caller authenticated, for the audit trail (e.g. `pat:<token id>`).
    pub credential: Option<String>,
    /// Set when the caller's credential was issued by an administrator for them. Such
    /// a credential cannot be turned into a longer-lived one.
    pub issued_credential: Option<IssuedCredential>,
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
}

impl Caller {
    pub fn user_id(&self) -> Option<Uuid> {
        match &self.principal {
            Principal::User { id, .. } => Some(*id),
            Principal::System { .. } => None,
        }
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

pub struct Directory {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    authn: authn::Authn,
    keys: signing_keys::KeyCache,
    sign_in_log: sign_in_log::SignInLog,
    sign_in_sources: sign_in_storage::FailureSources,
    grants: oauth::GrantCache,
    external_keys: oauth::ExternalKeys,
    cors: oauth::CorsOrigins,
    ca: conditional_access::CaCache,
    /// The default tenant, once there is one (it never changes after bootstrap).
    default_tenant: std::sync::OnceLock<TenantId>,
}

impl Directory {
    /// A directory with authentication set up for local use: passkeys on
    /// `http://localhost:8080` and a sealing key that lives as long as the process.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Directory {
        let sealing_key = match tessera_core::crypto::SealingKey::generate() {
            Ok((key, _)) => key,
            Err(error) => panic!("the system random number generator failed: {error}"),
        };
        Directory::with_auth(
            store,
            clock,
            authn::AuthSettings {
                public_url: "http://localhost:8080".to_string(),
                issuer_name: "Tessera".to_string(),
                sealing_key,
                breached_passwords: None,
                max_concurrent_hashes: 2,
                revocation_fetcher: None,
            },
        )
    }

    pub fn with_auth(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: authn::AuthSettings,
    ) -> Directory {
        Directory {
            store,
            clock,
            authn: authn::Authn::new(settings),
            keys: signing_keys::KeyCache::default(),
            sign_in_log: sign_in_log::SignInLog::default(),
            sign_in_sources: sign_in_storage::FailureSources::default(),
            grants: oauth::GrantCache::default(),
            external_keys: oauth::ExternalKeys::default(),
            cors: oauth::CorsOrigins::default(),
            ca: conditional_access::CaCache::default(),
            default_tenant: std::sync::OnceLock::new(),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The default tenant (the issuer at the server's base URL), remembered once
    /// known: every sign-in page and token request needs it.
    pub async fn default_tenant(&self) -> ServiceResult<Option<TenantId>> {
        if let Some(tenant) = self.default_tenant.get() {
            return Ok(Some(*tenant));
        }
        let found = self.store.default_tenant().await?;
        if let Some(tenant) = found {
            let _ = self.default_tenant.set(tenant);
        }
        Ok(found)
    }

    /// The public URL: the default tenant's issuer identifier.
    pub fn public_url(&self) -> &str {
        self.authn.settings.public_url.trim_end_matches('/')
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn reader(&self) -> ServiceResult<Box<dyn Reader>> {
        Ok(self.store.reader().await?)
    }

    async fn write(&self, ctx: &Context) -> ServiceResult<Box<dyn WriteTx>> {
        Ok(self.store.begin_write(ctx.tenant).await?)
    }

    /// Refuses unless the caller's grants allow `action` on `target`. The caller is
    /// told which permission was missing, not facts about the target (whether it holds
    /// a role, which units it is in); those go to the log.
    fn authorize(&self, ctx: &Context, action: &str, target: &Target) -> ServiceResult<()> {
        match authz::authorize(&ctx.caller.grants, action, target) {
            Decision::Allow { .. } => Ok(()),
            Decision::Deny { reason } => {
                tracing::info!(correlation_id = %ctx.correlation_id, %action, %reason, "refused");
                Err(ServiceError::Forbidden {
                    reason: format!("your role assignments do not grant {action} on this object"),
                })
            }
        }
    }

    /// Whether any of the caller's grants, at any scope, includes `action`.
    pub(crate) fn holds_anywhere(&self, ctx: &Context, action: &str) -> bool {
        ctx.caller.grants.iter().any(|grant| {
            tessera_directory::roles::built_in(grant.role_id)
                .is_some_and(|role| role.grants(action))
        })
    }

    /// Whether the caller may see custom security attribute values (only the attribute
    /// roles may, as in Entra: not even a Global Administrator by default).
    pub(crate) fn may_read_attributes(&self, ctx: &Context, action: &str) -> bool {
        matches!(
            authz::authorize(&ctx.caller.grants, action, &Target::Tenant),
            Decision::Allow { .. }
        )
    }

    /// Loads an object and refuses unless the caller may do `action` on it; returns the
    /// facts authorization used, for further checks on the same object.
    pub(crate) async fn load_authorized(
        &self,
        reader: &mut dyn Reader,
        ctx: &Context,
        kind: Kind,
        id: Uuid,
        action: &str,
    ) -> ServiceResult<(tessera_store::Record, Target)> {
        let record = codec::load(reader, ctx.tenant, kind, id).await?;
        let facts = target_facts(reader, ctx.tenant, kind, id).await?;
        self.authorize(ctx, action, &facts)?;
        Ok((record, facts))
    }

    /// Appends the audit event for a change within its transaction.
    async fn audit(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        event: EventDraft,
    ) -> ServiceResult<()> {
        let event = AuditEvent {
            id: Uuid::new_v4(),
            tenant_id: ctx.tenant.0,
            time: self.now(),
            actor: ctx.caller.actor(),
            action: event.action.as_str().to_string(),
            target: event.target,
            changes: event.changes.into_iter().map(ChangeRecord::from).collect(),
            details: event.details,
            correlation_id: ctx.correlation_id.clone(),
            client_address: ctx.client_address.clone(),
        };
        let body =
            serde_json::to_string(&event).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let append = AuditAppend {
            id: event.id,
            time: event.time,
            actor_id: event.actor.id.map(|id| id.to_string()),
            action: event.action.clone(),
            target_id: event.target.as_ref().map(|t| t.id.clone()),
            correlation_id: event.correlation_id.clone(),
            body,
        };
        tx.append_audit(ctx.tenant, &append).await?;
        Ok(())
    }
}

/// What an operation records, before the common fields are filled in.
pub(crate) struct EventDraft {
    pub action: AuditAction,
    pub target: Option<TargetRef>,
    pub changes: Vec<Change>,
    pub details: Value,
}

impl EventDraft {
    pub fn new(
        action: AuditAction,
        kind: Kind,
        id: impl ToString,
        display_name: &str,
    ) -> EventDraft {
        EventDraft {
            action,
            target: Some(TargetRef {
                target_type: kind.as_str().to_string(),
                id: id.to_string(),
                display_name: display_name.to_string(),
            }),
            changes: Vec::new(),
            details: Value::Null,
        }
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

/// The facts authorization needs about one object: its administrative units and,
/// for a user, whether they hold a directory role.
pub(crate) async fn target_facts(
    reader: &mut dyn Reader,
    tenant: TenantId,
    kind: Kind,
    id: Uuid,
) -> ServiceResult<Target> {
    let mut administrative_units: Vec<Uuid> = reader
        .links_to(tenant, tessera_store::Rel::UnitMember, id)
        .await?
        .into_iter()
        .map(|l| l.source)
        .collect();
    if kind == Kind::AdministrativeUnit {
        administrative_units.push(id);
    }
    let privileged = match kind {
        Kind::User => roles::is_privileged(reader, tenant, id).await?,
        // A workload holding a role is as privileged as a person holding it; its
        // application's credentials and owners are the keys to it.
        Kind::ServicePrincipal => roles::holds_roles(reader, tenant, id).await?,
        Kind::Application => {
            match roles::service_principal_of_application(reader, tenant, id).await? {
                Some(service_principal) => {
                    roles::holds_roles(reader, tenant, service_principal).await?
                }
                None => false,
            }
        }
        _ => false,
    };
    Ok(Target::Object {
        administrative_units,
        privileged,
    })
}

//! The kernel every context shares: the store, the clock, the installation's
//! settings, the default tenant, and the steps every use case takes (read, write in
//! one transaction, require a permission, append the audit event). Contexts reach it
//! through `Deref` (a context is the kernel plus its own caches and the handles of
//! the contexts it may call).
//!
//! Files: `mod.rs` (the kernel, the tenant policy writer, the ended-sessions hook),
//! `settings.rs` (the installation's settings and the revocation fetcher),
//! `codec.rs` (records to and from JSON, pages), `error.rs` (`ServiceError`),
//! `jobs.rs` (the job runner with leases; the application's own jobs are in
//! `app.rs`).
//!
//! May call: nothing in this crate (the kernel, the crate root's `Context`, `Caller`
//! and `EventDraft` only). Lower than every context: a context that needs something
//! done above it (notify applications that sessions ended) goes through a hook the
//! upper context registers (`SessionsEnded`).

pub(crate) mod callers;
pub(crate) mod codec;
pub(crate) mod error;
pub mod jobs;
pub mod outbox;
pub(crate) mod revocations;

mod settings;
pub mod tenant_settings;

use std::sync::{Arc, OnceLock, Weak};

use serde_json::Value;
use tessera_core::{Clock, TenantId, Timestamp};
use tessera_directory::audit::{AuditEvent, ChangeRecord};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::{self, Decision, Target};
use tessera_directory::patch;
use tessera_store::{AuditAppend, Kind, Reader, SessionRow, Store, WriteTx};
use uuid::Uuid;

use crate::codec::Keys;
use crate::error::{ServiceError, ServiceResult};
use crate::{Caller, Context, EventDraft, Principal};

pub use settings::{AuthSettings, RevocationFetcher, SharedFetcher};

/// Told when sessions ended (signed out, revoked), so that applications signed in
/// through them can be notified (back-channel logout). The OpenID Connect context
/// implements it; the kernel holds it weakly, so lower contexts can end sessions
/// without calling up.
#[async_trait::async_trait]
pub(crate) trait SessionsEnded: Send + Sync {
    async fn sessions_ended(&self, tenant: TenantId, sessions: &[SessionRow]);
}

/// Lets a context use the kernel's fields and steps as its own (`self.store`,
/// `self.now()`, `self.require(..)`).
macro_rules! on_kernel {
    ($context:ty) => {
        impl std::ops::Deref for $context {
            type Target = $crate::kernel::Kernel;
            fn deref(&self) -> &$crate::kernel::Kernel {
                &self.k
            }
        }
    };
}
pub(crate) use on_kernel;

pub struct Kernel {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: AuthSettings,
    /// The default tenant, once there is one (it never changes after bootstrap).
    default_tenant: OnceLock<TenantId>,
    sessions_ended: OnceLock<Weak<dyn SessionsEnded>>,
    /// Delivers the outbox's notifications (the binary gives it).
    notifier: OnceLock<Arc<dyn outbox::Notifier>>,
    /// What personal access tokens authenticate as, kept while the tenant's
    /// callers epoch stands (`callers.rs`).
    pub(crate) callers: callers::CallerCache,
    /// The deployment's revocations as this node knows them (`revocations.rs`).
    revocations: Arc<revocations::Revocations>,
}

impl Kernel {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: AuthSettings,
    ) -> Kernel {
        let revocations = Arc::new(revocations::Revocations::new(store.clone(), clock.clone()));
        Kernel {
            revocations,
            store,
            clock,
            settings,
            default_tenant: OnceLock::new(),
            sessions_ended: OnceLock::new(),
            notifier: OnceLock::new(),
            callers: callers::CallerCache::default(),
        }
    }

    /// Sets who is told about ended sessions (once, when the contexts are built).
    pub(crate) fn notify_sessions_ended_to(&self, listener: Weak<dyn SessionsEnded>) {
        let _ = self.sessions_ended.set(listener);
    }

    /// Tells the listener (if any) that these sessions ended.
    pub(crate) async fn sessions_ended(&self, tenant: TenantId, sessions: &[SessionRow]) {
        if sessions.is_empty() {
            return;
        }
        if let Some(listener) = self.sessions_ended.get().and_then(Weak::upgrade) {
            listener.sessions_ended(tenant, sessions).await;
        }
    }

    /// The deployment's revocations, read on this node from now on.
    pub(crate) fn revocations(&self) -> &revocations::Revocations {
        self.revocations.start_reader();
        &self.revocations
    }

    /// Revokes a user's sessions (all, or all but `keep`) and tells the listener
    /// which ended; returns how many. The user's access tokens issued until now
    /// end too, on every node (`revocations.rs`), those of the session kept
    /// included: its applications get new ones through it.
    pub(crate) async fn end_user_sessions(
        &self,
        tenant: TenantId,
        user: Uuid,
        keep: Option<&str>,
        reason: tessera_cae::Reason,
    ) -> ServiceResult<u64> {
        let count = self.close_user_sessions(tenant, user, keep).await?;
        self.revocations()
            .revoke(tenant, &[tessera_cae::Target::User(user)], reason)
            .await?;
        Ok(count)
    }

    /// Ends a user's browser sessions (all, or all but `keep`) and tells the
    /// listener which ended; how many. For a change that revoked the user's
    /// tokens in its own transaction ([`Revocations::revoke_in`]).
    pub(crate) async fn close_user_sessions(
        &self,
        tenant: TenantId,
        user: Uuid,
        keep: Option<&str>,
    ) -> ServiceResult<u64> {
        let now = self.now();
        let ending: Vec<SessionRow> = self
            .store
            .sessions_of_user(tenant, user, now)
            .await?
            .into_iter()
            .filter(|session| Some(session.id.as_str()) != keep)
            .collect();
        let count = self
            .store
            .sessions_revoke_user(tenant, user, keep, now)
            .await?;
        self.sessions_ended(tenant, &ending).await;
        Ok(count)
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
        self.settings.public_url.trim_end_matches('/')
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) async fn reader(&self) -> ServiceResult<Box<dyn Reader>> {
        Ok(self.store.reader().await?)
    }

    /// A reader whose reads all see one consistent state (see [`Store::snapshot`]).
    pub(crate) async fn snapshot(&self) -> ServiceResult<Box<dyn Reader>> {
        Ok(self.store.snapshot().await?)
    }

    pub(crate) async fn write(&self, ctx: &Context) -> ServiceResult<Box<dyn WriteTx>> {
        Ok(self.store.begin_write(ctx.tenant).await?)
    }

    /// Opens a change to one tenant-wide record that `permission` governs: the
    /// permission is checked before anything about the record is read (a caller
    /// without it learns nothing, not even whether the id exists), then the record is
    /// read inside the write transaction.
    pub(crate) async fn open_tenant_record(
        &self,
        ctx: &Context,
        permission: &str,
        kind: Kind,
        id: Uuid,
    ) -> ServiceResult<(Box<dyn WriteTx>, tessera_store::Record)> {
        self.require(ctx, permission, &Target::Tenant)?;
        let mut tx = self.write(ctx).await?;
        let record = crate::codec::load(tx.as_mut(), ctx.tenant, kind, id).await?;
        Ok((tx, record))
    }

    /// Refuses unless the caller's grants allow `action` on `target`. The caller is
    /// told which permission was missing, not facts about the target (whether it holds
    /// a role, which units it is in); those go to the log.
    pub(crate) fn require(
        &self,
        ctx: &Context,
        action: &str,
        target: &Target,
    ) -> ServiceResult<()> {
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

    /// Refuses a protected action (see `tessera_pim::protected`) unless the
    /// caller's sign-in satisfies the authentication context it needs: an RFC
    /// 9470 challenge naming the context, or, for a credential that proves no
    /// sign-in (a personal access token), a refusal saying how to sign in.
    /// Called after `require` allowed the action.
    pub(crate) fn protect(
        &self,
        ctx: &Context,
        action: &str,
        role: Option<Uuid>,
    ) -> ServiceResult<()> {
        let satisfied = ctx
            .caller
            .proof
            .as_ref()
            .map(|p| p.authentication_contexts.as_slice())
            .unwrap_or(&[]);
        let Some(context) = ctx.caller.protected.missing(action, role, satisfied) else {
            return Ok(());
        };
        let message =
            format!("{action} is a protected action: it needs authentication context {context}");
        tracing::info!(correlation_id = %ctx.correlation_id, %action, %context, "protected action refused");
        if ctx.caller.proof.is_none() {
            return Err(crate::ServiceError::Forbidden {
                reason: format!(
                    "{message}; this credential carries no sign-in: sign in (tessera login without --token, or the console) and try again"
                ),
            });
        }
        Err(crate::ServiceError::InsufficientAuthentication {
            acr_values: context.to_string(),
            message,
        })
    }

    /// Whether any of the caller's grants, at any scope, includes `action`.
    pub(crate) fn holds_anywhere(&self, ctx: &Context, action: &str) -> bool {
        ctx.caller.holds_anywhere(action)
    }

    /// Whether the caller may see custom security attribute values (only the attribute
    /// roles may, as in Entra: not even a Global Administrator by default).
    pub(crate) fn may_read_attributes(&self, ctx: &Context, action: &str) -> bool {
        matches!(
            authz::authorize(&ctx.caller.grants, action, &Target::Tenant),
            Decision::Allow { .. }
        )
    }

    /// Appends the audit event for a change within its transaction.
    pub(crate) async fn audit(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        event: EventDraft,
    ) -> ServiceResult<()> {
        let invalidates = callers::invalidates(event.action);
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
        // Cached callers are checked against this: a change to one is seen by
        // every node's next request.
        if invalidates {
            tx.counter_bump(ctx.tenant, callers::EPOCH_KEY, event.time)
                .await?;
        }
        Ok(())
    }

    /// Ends a change: appends its audit event and commits, so no write lands
    /// without its record in the chain.
    pub(crate) async fn commit(
        &self,
        mut tx: Box<dyn WriteTx>,
        ctx: &Context,
        event: EventDraft,
    ) -> ServiceResult<()> {
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes a tenant policy record (one per key) and its audit event.
    pub(crate) async fn write_policy<P: serde::Serialize>(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        key: &str,
        action: AuditAction,
        before: &P,
        policy: &P,
    ) -> ServiceResult<()> {
        let keys = || Keys {
            key1: Some(key.to_string()),
            key2: None,
            sort_key: key.to_string(),
        };
        let existing = tx.get_by_key1(ctx.tenant, Kind::AuthPolicy, key).await?;
        codec::put(
            tx,
            ctx.tenant,
            Kind::AuthPolicy,
            existing.as_ref(),
            Uuid::new_v4(),
            self.now(),
            keys(),
            policy,
        )
        .await?;
        let event = EventDraft::new(action).changes(patch::changes(
            &serde_json::to_value(before).unwrap_or(Value::Null),
            &serde_json::to_value(policy).unwrap_or(Value::Null),
        ));
        self.audit(tx, ctx, event).await
    }
}

/// The tenant's protected actions, as a caller carries them.
pub(crate) async fn protected_actions(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<Arc<tessera_pim::protected::ProtectedActions>> {
    Ok(Arc::new(
        tenant_settings::read_setting::<tessera_pim::protected::ProtectedActions>(reader, tenant)
            .await?,
    ))
}

/// The context of work Tessera does itself (bootstrap, jobs, maintenance).
pub(crate) fn system_context(tenant: TenantId, reason: &str) -> Context {
    Context {
        tenant,
        caller: Caller {
            principal: Principal::System {
                reason: reason.to_string(),
            },
            grants: Vec::new(),
            credential: None,
            issued_credential: None,
            proof: None,
            protected: Default::default(),
        },
        correlation_id: Uuid::new_v4().to_string(),
        client_address: None,
    }
}

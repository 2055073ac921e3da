//! The facade the delivery crates hold: the contexts, built in their order over one
//! kernel, the few questions about the installation itself, and the application's
//! own background jobs (run by the kernel's job runner).

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{Clock, TenantId};
use tessera_store::Store;

use crate::error::ServiceResult;
use crate::kernel::AuthSettings;
use crate::kernel::jobs::{Job, JobResult, Schedule, Scope, job};
use crate::kernel::{Kernel, SessionsEnded};
use crate::{Access, AppSignIn, Directory, Lifecycle, Oidc, Pim, Provisioning, Risk, Saml, SignIn};

pub struct App {
    pub(crate) kernel: Arc<Kernel>,
    pub directory: Arc<Directory>,
    pub pim: Arc<Pim>,
    pub provisioning: Arc<Provisioning>,
    pub access: Arc<Access>,
    pub risk: Arc<Risk>,
    pub sign_in: Arc<SignIn>,
    pub lifecycle: Arc<Lifecycle>,
    pub app_sign_in: Arc<AppSignIn>,
    pub oidc: Arc<Oidc>,
    pub saml: Arc<Saml>,
    pub siem: Arc<crate::siem::Siem>,
    pub signals: Arc<crate::Signals>,
}

impl App {
    /// An application with authentication set up for local use: passkeys on
    /// `http://localhost:8080` and a sealing key that lives as long as the process.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> App {
        let sealing_key = match tessera_core::crypto::SealingKey::generate() {
            Ok((key, _)) => key,
            Err(error) => panic!("the system random number generator failed: {error}"),
        };
        App::with_auth(
            store,
            clock,
            AuthSettings {
                public_url: "http://localhost:8080".to_string(),
                issuer_name: "Tessera".to_string(),
                sealing_key,
                breached_passwords: None,
                max_concurrent_hashes: 2,
                revocation_fetcher: None,
            },
        )
    }

    pub fn with_auth(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: AuthSettings) -> App {
        let kernel = Arc::new(Kernel::new(store, clock, settings));
        let directory = Arc::new(Directory::new(kernel.clone()));
        let pim = Arc::new(Pim::new(kernel.clone(), directory.clone()));
        let provisioning = Arc::new(Provisioning::new(kernel.clone(), directory.clone()));
        let risk = Arc::new(Risk::new(kernel.clone()));
        let access = Arc::new(Access::new(kernel.clone(), risk.clone()));
        let sign_in = Arc::new(SignIn::new(
            kernel.clone(),
            directory.clone(),
            access.clone(),
            risk.clone(),
        ));
        let lifecycle = Arc::new(Lifecycle::new(
            kernel.clone(),
            directory.clone(),
            sign_in.clone(),
            pim.clone(),
        ));
        let app_sign_in = Arc::new(AppSignIn::new(kernel.clone(), access.clone(), risk.clone()));
        let oidc = Arc::new(Oidc::new(
            kernel.clone(),
            directory.clone(),
            access.clone(),
            sign_in.clone(),
            app_sign_in.clone(),
        ));
        let saml = Arc::new(Saml::new(
            kernel.clone(),
            access.clone(),
            sign_in.clone(),
            app_sign_in.clone(),
        ));
        let siem = Arc::new(crate::siem::Siem::new(kernel.clone()));
        let signals = Arc::new(crate::Signals::new(
            kernel.clone(),
            oidc.clone(),
            directory.clone(),
            risk.clone(),
        ));
        let listener: Arc<dyn SessionsEnded> = oidc.clone();
        kernel.notify_sessions_ended_to(Arc::downgrade(&listener));
        App {
            kernel,
            directory,
            pim,
            provisioning,
            access,
            risk,
            sign_in,
            lifecycle,
            app_sign_in,
            oidc,
            saml,
            siem,
            signals,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        self.kernel.store()
    }

    /// Whether the caller's sign-in is strong enough for a protected action (see
    /// `tessera_pim::protected`): what a page asks before it offers the action,
    /// so the step-up happens before the form.
    pub fn check_protected(
        &self,
        ctx: &crate::Context,
        action: &str,
        role: Option<uuid::Uuid>,
    ) -> ServiceResult<()> {
        self.kernel.protect(ctx, action, role)
    }

    /// Gives the application its notification delivery (webhooks, mail).
    pub fn set_notifier(&self, notifier: Arc<dyn crate::kernel::outbox::Notifier>) {
        self.kernel.set_notifier(notifier);
    }

    /// The tenant's notification settings (webhook, mail, administrators).
    pub async fn notification_settings(
        &self,
        ctx: &crate::Context,
    ) -> ServiceResult<(crate::kernel::outbox::NotificationSettingsView, i64)> {
        self.kernel.notification_settings(ctx).await
    }

    pub async fn set_notification_settings(
        &self,
        ctx: &crate::Context,
        change: crate::Replacement,
    ) -> ServiceResult<crate::kernel::outbox::NotificationSettingsView> {
        self.kernel.set_notification_settings(ctx, change).await
    }

    /// One delivery round of the outbox for a tenant (what the `notifications`
    /// job does); how many were sent.
    pub async fn deliver_notifications(&self, tenant: TenantId) -> ServiceResult<usize> {
        let sent = self.kernel.deliver_notifications(tenant).await?;
        self.kernel.purge_outbox(tenant).await?;
        Ok(sent)
    }

    /// The default tenant (the issuer at the server's base URL), remembered once
    /// known: every sign-in page and token request needs it.
    pub async fn default_tenant(&self) -> ServiceResult<Option<TenantId>> {
        self.kernel.default_tenant().await
    }

    /// The public URL: the default tenant's issuer identifier.
    pub fn public_url(&self) -> &str {
        self.kernel.public_url()
    }
}

/// The application's own periodic work, to run with
/// [`Jobs`](crate::kernel::jobs::Jobs) on every node.
pub fn application_jobs(app: &Arc<App>) -> Vec<Arc<dyn Job>> {
    let purge = app.clone();
    let keys = app.oidc.clone();
    let crls = app.sign_in.clone();
    let pim = app.pim.clone();
    let outbox = app.clone();
    let hr = app.provisioning.clone();
    let outbound = app.provisioning.clone();
    let lifecycle = app.lifecycle.clone();
    let siem = app.siem.clone();
    let signals = app.signals.clone();
    let offline = app.risk.clone();
    let baselines = app.risk.clone();
    vec![
        // Identity Protection's daily recomputation of baselines: what a user
        // or workload has not shown for 90 days is forgotten, signed in or not.
        job(
            "risk-baselines",
            Scope::EachTenant,
            Schedule::Every(Duration::from_secs(86_400)),
            move |tenant| {
                let risk = baselines.clone();
                async move {
                    if let Some(tenant) = tenant {
                        risk.recompute_baselines(tenant).await?;
                    }
                    Ok(())
                }
            },
        ),
        // Identity Protection's offline detections over the sign-in log.
        job(
            "risk-offline",
            Scope::EachTenant,
            Schedule::Every(Duration::from_secs(900)),
            move |tenant| {
                let risk = offline.clone();
                async move {
                    if let Some(tenant) = tenant {
                        risk.offline_round(tenant).await?;
                    }
                    Ok(())
                }
            },
        ),
        // Shared Signals: each stream's changes queued and pushed, each
        // transmitter Tessera receives from polled (every second: revocation
        // reaches applications in seconds).
        job(
            "signals",
            Scope::EachTenant,
            Schedule::Every(Duration::from_secs(1)),
            move |tenant| {
                let signals = signals.clone();
                async move {
                    if let Some(tenant) = tenant {
                        signals.signals_round(tenant).await?;
                    }
                    Ok(())
                }
            },
        ),
        // The SIEM export: each tenant's sinks, each from its own cursors.
        job(
            "siem-export",
            Scope::EachTenant,
            Schedule::Every(Duration::from_secs(5)),
            move |tenant| {
                let siem = siem.clone();
                async move {
                    if let Some(tenant) = tenant {
                        siem.export_round(tenant).await?;
                    }
                    Ok(())
                }
            },
        ),
        // Lifecycle workflows: each tenant's firings, claimed once each.
        job(
            "lifecycle",
            Scope::EachTenant,
            Schedule::Every(Duration::from_secs(60)),
            move |tenant| {
                let lifecycle = lifecycle.clone();
                async move {
                    if let Some(tenant) = tenant {
                        lifecycle.lifecycle_round(tenant).await?;
                    }
                    Ok(())
                }
            },
        ),
        // Outbound provisioning: a cycle for each application whose provisioning
        // is on, when the audit trail moved, a retry waits, or a full one is due.
        job(
            "outbound-provisioning",
            Scope::EachTenant,
            Schedule::Every(Duration::from_secs(20)),
            move |tenant| {
                let outbound = outbound.clone();
                async move {
                    if let Some(tenant) = tenant {
                        outbound.outbound_round(tenant).await?;
                    }
                    Ok(())
                }
            },
        ),
        // Scheduled HR imports: the tenant's drop file, when due and changed;
        // held runs nobody decided on expire.
        job(
            "hr-import",
            Scope::EachTenant,
            Schedule::Every(Duration::from_secs(60)),
            move |tenant| {
                let hr = hr.clone();
                async move {
                    if let Some(tenant) = tenant {
                        // Apart: neither keeps the other from running.
                        if let Err(error) = hr.expire_held_hr_runs(tenant).await {
                            tracing::warn!(%tenant, %error, "cannot expire held HR runs");
                        }
                        hr.scheduled_hr_round(tenant).await?;
                    }
                    Ok(())
                }
            },
        ),
        // Ended sessions and abandoned sign-ins, the sign-in log entries each tenant's
        // retention no longer keeps, and replay marks past what they guard against.
        job(
            "purge-expired",
            Scope::Deployment,
            Schedule::Every(Duration::from_secs(300)),
            move |_| {
                let app = purge.clone();
                async move { app.purge_expired().await }
            },
        ),
        // Signing keys, one set per algorithm (ES256 signs access tokens; apps may
        // choose RS256, PS256 or EdDSA for ID tokens): made on first start, rotated on
        // schedule (the tenant's write lock makes each change once).
        job(
            "signing-keys",
            Scope::EachTenant,
            Schedule::Every(Duration::from_secs(3600)),
            move |tenant| {
                let oidc = keys.clone();
                async move {
                    let Some(tenant) = tenant else { return Ok(()) };
                    oidc.rotate_signing_keys(tenant, &tessera_oauth::keys::Algorithm::ALL)
                        .await?;
                    Ok(())
                }
            },
        ),
        // PIM: ended schedules and timed-out requests into the audit trail
        // (privilege itself ends at its end time, checked at use).
        job(
            "pim-expiry",
            Scope::EachTenant,
            Schedule::Every(Duration::from_secs(15)),
            move |tenant| {
                let pim = pim.clone();
                async move {
                    if let Some(tenant) = tenant {
                        pim.expiry_round(tenant).await?;
                    }
                    Ok(())
                }
            },
        ),
        // Notifications waiting in the outbox, delivered with retries.
        job(
            "notifications",
            Scope::EachTenant,
            Schedule::Every(Duration::from_secs(10)),
            move |tenant| {
                let app = outbox.clone();
                async move {
                    if let Some(tenant) = tenant {
                        app.deliver_notifications(tenant).await?;
                    }
                    Ok(())
                }
            },
        ),
        // The CRLs of each tenant's certificate authorities, when due.
        job(
            "crl-refresh",
            Scope::EachTenant,
            Schedule::Every(Duration::from_secs(3600)),
            move |tenant| {
                let sign_in = crls.clone();
                async move {
                    if let Some(tenant) = tenant {
                        sign_in.refresh_tenant_crls(tenant).await?;
                    }
                    Ok(())
                }
            },
        ),
    ]
}

impl App {
    /// One round of the `purge-expired` job. Every part is tried; the first failure
    /// is returned after the others ran.
    pub async fn purge_expired(&self) -> JobResult {
        let now = self.kernel.now();
        let store = self.kernel.store();
        let mut failed: Option<String> = None;
        // The planner's statistics follow the data (a bulk load, a provisioning
        // burst): SQLite keeps none by itself.
        if let Err(error) = store.optimize().await {
            tracing::warn!(%error, "cannot refresh the planner's statistics");
            failed.get_or_insert(error.to_string());
        }
        if let Err(error) = store.sessions_purge(now).await {
            tracing::warn!(%error, "cannot purge ended sessions");
            failed.get_or_insert(error.to_string());
        }
        match self.sign_in.purge_log().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "sign-in log entries past retention removed"),
            Err(error) => {
                tracing::warn!(%error, "cannot purge the sign-in log");
                failed.get_or_insert(error.to_string());
            }
        }
        // Revocations no token they end outlives.
        match store.revocations_purge(now).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "revocations past their tokens removed"),
            Err(error) => {
                tracing::warn!(%error, "cannot purge revocations");
                failed.get_or_insert(error.to_string());
            }
        }
        match self.risk.purge_detections().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "risk detections past retention removed"),
            Err(error) => {
                tracing::warn!(%error, "cannot purge risk detections");
                failed.get_or_insert(error.to_string());
            }
        }
        // Replay marks outlive what they guard against (a DPoP proof's window, an
        // assertion's and an access token's lifetime) and are then dropped.
        for (prefix, keep_seconds) in [
            ("dpop-jti:", 3_600),
            ("client-assertion:", 3 * 3_600),
            ("revoked-jti:", 3 * 3_600),
            (crate::risk::COUNTER_PREFIX, 86_400),
            (crate::risk::SOURCE_PREFIX, crate::risk::SOURCE_KEEP_SECONDS),
        ] {
            if let Err(error) = store
                .counters_purge(prefix, now.plus_seconds(-keep_seconds))
                .await
            {
                tracing::warn!(%error, "cannot purge replay counters");
                failed.get_or_insert(error.to_string());
            }
        }
        match failed {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }
}

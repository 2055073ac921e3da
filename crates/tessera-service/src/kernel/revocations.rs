//! The deployment's revocations, as this node knows them (continuous access
//! evaluation; the rules are `tessera_cae`'s).
//!
//! A change that ends tokens already out (an account disabled, sessions
//! revoked, a password reset) writes a revocation to the store and into this
//! node's set at once. Every node reads the store's new revocations, in the
//! order of their numbers, every [`POLL_MILLIS`], so the tokens a change ends
//! are refused on every node within about that. A token presented to
//! Tessera's own resources is checked against the set in memory: no database
//! read on that path.
//!
//! Fail closed: when this node has not read the store for [`STALE_MILLIS`]
//! (its reader stopped, the database is slow), the next check reads it first,
//! and a check that cannot is answered "unavailable", never "valid".

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use tessera_cae::{Presented, Reason, Refusal, Revocation, RevocationSet, Target};
use tessera_core::{Clock, TenantId};
use tessera_store::{RevocationRow, Store, WriteTx};

use crate::error::{ServiceError, ServiceResult};

/// How often each node reads the store's new revocations (milliseconds).
pub(crate) const POLL_MILLIS: u64 = 200;
/// How old this node's last reading may be before a check reads again first
/// (milliseconds).
const STALE_MILLIS: i64 = 1000;
/// How long a revocation matters: longer than any token it could end lives
/// (a workload's access token lives an hour).
pub(crate) const KEEP_SECONDS: i64 = 2 * 3600;
/// Most revocations read at once.
const PAGE: u32 = 1000;
/// How long a reading may take before the check waiting on it fails.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct Revocations {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    set: RwLock<RevocationSet>,
    /// The number of the last revocation read; readers take turns.
    cursor: tokio::sync::Mutex<i64>,
    /// When the store was last read through (milliseconds since `started`;
    /// -1: never).
    fresh: AtomicI64,
    started: Instant,
    reader: OnceLock<()>,
}

impl Revocations {
    pub(crate) fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Revocations {
            store,
            clock,
            set: RwLock::new(RevocationSet::new()),
            cursor: tokio::sync::Mutex::new(0),
            fresh: AtomicI64::new(-1),
            started: Instant::now(),
            reader: OnceLock::new(),
        }
    }

    fn elapsed_millis(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// `tenant`'s revocations of `targets`, from now.
    fn revocations(&self, tenant: TenantId, targets: &[Target], reason: Reason) -> Vec<Revocation> {
        let at = self.clock.now();
        let until = at.plus_seconds(KEEP_SECONDS);
        targets
            .iter()
            .map(|target| Revocation {
                tenant,
                target: target.clone(),
                at,
                until,
                reason,
            })
            .collect()
    }

    /// Writes revocations of `tenant`'s `targets`, from now, in a change's
    /// transaction: every node, this one too, applies them at its next
    /// reading after the commit.
    pub(crate) async fn revoke_in(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        targets: &[Target],
        reason: Reason,
    ) -> ServiceResult<()> {
        let rows: Vec<RevocationRow> = self
            .revocations(tenant, targets, reason)
            .iter()
            .map(row_of)
            .collect();
        if !rows.is_empty() {
            tx.revocations_append(&rows).await?;
        }
        Ok(())
    }

    /// Writes revocations of `tenant`'s `targets`, from now, and applies them
    /// on this node at once.
    pub(crate) async fn revoke(
        &self,
        tenant: TenantId,
        targets: &[Target],
        reason: Reason,
    ) -> ServiceResult<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let revocations = self.revocations(tenant, targets, reason);
        let rows: Vec<RevocationRow> = revocations.iter().map(row_of).collect();
        self.store.revocations_append(&rows).await?;
        if let Ok(mut set) = self.set.write() {
            for revocation in revocations {
                set.insert(revocation);
            }
        }
        Ok(())
    }

    /// Whether a revocation ends the token. Reads the store first when this
    /// node's reading is stale; fails when it cannot.
    pub(crate) async fn refuses(&self, token: &Presented<'_>) -> ServiceResult<Option<Refusal>> {
        self.current().await?;
        self.set
            .read()
            .map(|set| set.refuses(token))
            .map_err(|_| ServiceError::Internal("the revocation set is poisoned".to_string()))
    }

    /// When the client's own access last ended, if it did in the last
    /// [`KEEP_SECONDS`]. Reads the store first when this node's reading is
    /// stale; fails when it cannot.
    pub(crate) async fn workload_revoked(
        &self,
        tenant: TenantId,
        client_id: &str,
    ) -> ServiceResult<Option<tessera_core::Timestamp>> {
        self.current().await?;
        self.set
            .read()
            .map(|set| set.workload_revoked(tenant, client_id))
            .map_err(|_| ServiceError::Internal("the revocation set is poisoned".to_string()))
    }

    /// Makes sure this node's reading is fresh, and that a reader keeps it so.
    async fn current(&self) -> ServiceResult<()> {
        if self.fresh_enough() {
            return Ok(());
        }
        match tokio::time::timeout(READ_TIMEOUT, self.read_new(true)).await {
            Ok(read) => read.map(|_| ()),
            Err(_) => Err(ServiceError::Unavailable(
                "the revocations could not be read in time".to_string(),
            )),
        }
    }

    fn fresh_enough(&self) -> bool {
        let fresh = self.fresh.load(Ordering::Acquire);
        fresh >= 0 && self.elapsed_millis() - fresh <= STALE_MILLIS
    }

    /// Reads the revocations numbered after what this node has read; how
    /// many. A check (`for_check`) that finds a reading fresh enough once its
    /// turn comes reads nothing more.
    async fn read_new(&self, for_check: bool) -> ServiceResult<usize> {
        let asked = self.elapsed_millis();
        let mut cursor = self.cursor.lock().await;
        // Another reader went through while this one waited.
        if self.fresh.load(Ordering::Acquire) >= asked || (for_check && self.fresh_enough()) {
            return Ok(0);
        }
        let mut read = 0;
        loop {
            let now = self.clock.now();
            let page = self.store.revocations_after(*cursor, now, PAGE).await?;
            let full = page.len() == PAGE as usize;
            if let Some((last, _)) = page.last() {
                let mut set = self
                    .set
                    .write()
                    .map_err(|_| ServiceError::Internal("the revocation set is poisoned".into()))?;
                for (_, row) in &page {
                    // A kind or reason of a later build is not this node's to apply.
                    if let Some(revocation) = revocation_of(row)
                        && revocation.until > now
                    {
                        set.insert(revocation);
                    }
                }
                set.forget_expired(now);
                *cursor = *last;
                read += page.len();
            }
            if !full {
                break;
            }
        }
        self.fresh.store(asked, Ordering::Release);
        Ok(read)
    }

    /// Starts this node's reader (once): it reads every [`POLL_MILLIS`] while
    /// the node lives.
    pub(crate) fn start_reader(self: &Arc<Self>) {
        if self.reader.set(()).is_err() {
            return;
        }
        let weak: Weak<Revocations> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(Duration::from_millis(POLL_MILLIS)).await;
                let Some(revocations) = weak.upgrade() else {
                    return;
                };
                let read = tokio::time::timeout(READ_TIMEOUT, revocations.read_new(false)).await;
                match read.unwrap_or_else(|_| {
                    Err(ServiceError::Unavailable("reading timed out".to_string()))
                }) {
                    Ok(_) => failing = false,
                    Err(error) => {
                        if !failing {
                            tracing::warn!(%error, "cannot read new revocations");
                        }
                        failing = true;
                    }
                }
            }
        });
    }
}

fn row_of(revocation: &Revocation) -> RevocationRow {
    RevocationRow {
        tenant: revocation.tenant,
        kind: revocation.target.kind().to_string(),
        subject: revocation.target.subject(),
        since: revocation.at,
        expires: revocation.until,
        reason: revocation.reason.name().to_string(),
    }
}

fn revocation_of(row: &RevocationRow) -> Option<Revocation> {
    Some(Revocation {
        tenant: row.tenant,
        target: Target::parse(&row.kind, &row.subject)?,
        at: row.since,
        until: row.expires,
        reason: Reason::parse(&row.reason)?,
    })
}

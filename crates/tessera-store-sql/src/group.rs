//! Group commit of a tenant's chained writes on PostgreSQL.
//!
//! Every write transaction of a tenant holds the tenant's audit chain head, so
//! writes take turns. Taking turns one transaction each costs, per write, a
//! `BEGIN`, the head's row lock and a durable `COMMIT` while the others wait.
//! Instead, the writers of one process that queue for a tenant share one
//! transaction, one after the other, each inside its own savepoint (a *member*):
//!
//! - A member starts with the tenant's batch lock (in-process, first come first
//!   served). If a batch transaction is open it continues it; otherwise it begins
//!   one and locks the head row (`FOR UPDATE`, which orders the nodes). Then
//!   `SAVEPOINT member`.
//! - A member that commits releases its savepoint. If others are queued (and the
//!   batch is under [`MAX_BATCH`]), it hands the open transaction on and waits
//!   for the batch's commit; otherwise it commits the batch and tells every
//!   member waiting the outcome. Nobody returns before their writes are durable.
//! - A member that ends without committing (an error, a refused change) is rolled
//!   back to its savepoint; the others' writes stay. Without members waiting, its
//!   transaction is simply rolled back.
//!
//! Members run strictly one after another, each seeing the writes before it, as
//! if each had its own transaction in the same order: a use case's checks mean
//! what they meant. What changes is only that a commit may cover several members:
//! when it fails, all of them fail (and none is committed).
//!
//! The head row is written once per batch, just before its commit (members
//! keep the head in memory as they append).
//!
//! A waiting member that hears nothing within [`SETTLE_AFTER`] (whoever was to
//! commit was cancelled) takes the lock and commits the batch itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::{Any, AnyConnection, Transaction};
use tessera_core::TenantId;
use tessera_store::{Result, StoreError};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use crate::backend_error;

/// The most members one batch commits.
/// PostgreSQL keeps 64 subtransactions of a transaction in shared memory; past
/// that every snapshot taken elsewhere gets slower. One savepoint each.
pub(crate) const MAX_BATCH: usize = 32;
/// How long a waiting member trusts another to commit its batch.
const SETTLE_AFTER: Duration = Duration::from_millis(200);

/// A tenant's open batch, between members.
pub(crate) struct Batch {
    tenant: TenantId,
    /// The batch transaction, parked while no member runs.
    pub tx: Option<Transaction<'static, Any>>,
    /// The head as the batch found it (written again only if it moved).
    start_seq: i64,
    /// The audit chain head after the last member that committed.
    pub head_seq: i64,
    pub head_hash: String,
    /// Members that committed and wait for the batch's commit.
    waiters: Vec<oneshot::Sender<std::result::Result<(), String>>>,
    /// A member ended inside its savepoint: roll it back before anything else.
    rollback_pending: bool,
}

/// A tenant's batch and how many writers wait for it.
pub(crate) struct Slot {
    batch: Arc<Mutex<Batch>>,
    queued: AtomicUsize,
}

/// The batches of the tenants this process writes to.
#[derive(Default)]
pub(crate) struct Slots(std::sync::Mutex<HashMap<TenantId, Arc<Slot>>>);

impl Slots {
    pub(crate) fn of(&self, tenant: TenantId) -> Arc<Slot> {
        let mut slots = match self.0.lock() {
            Ok(slots) => slots,
            Err(poisoned) => poisoned.into_inner(),
        };
        slots
            .entry(tenant)
            .or_insert_with(|| {
                Arc::new(Slot {
                    batch: Arc::new(Mutex::new(Batch {
                        tenant,
                        tx: None,
                        start_seq: 0,
                        head_seq: 0,
                        head_hash: String::new(),
                        waiters: Vec::new(),
                        rollback_pending: false,
                    })),
                    queued: AtomicUsize::new(0),
                })
            })
            .clone()
    }
}

/// Counts a writer as queued while it waits for the batch lock.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The transaction a write uses: its own, or its batch's while it is a member.
pub(crate) struct TxSlot(pub Option<Transaction<'static, Any>>);

impl std::ops::Deref for TxSlot {
    type Target = AnyConnection;

    #[allow(clippy::expect_used)]
    fn deref(&self) -> &AnyConnection {
        // Empty only once commit or drop has taken it, after which no method runs.
        self.0
            .as_deref()
            .expect("a write transaction is used after its end")
    }
}

impl std::ops::DerefMut for TxSlot {
    #[allow(clippy::expect_used)]
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.0
            .as_deref_mut()
            .expect("a write transaction is used after its end")
    }
}

/// A write running as a member of its tenant's batch: it holds the batch lock.
pub(crate) struct Member {
    slot: Arc<Slot>,
    guard: OwnedMutexGuard<Batch>,
}

fn notify(
    waiters: &mut Vec<oneshot::Sender<std::result::Result<(), String>>>,
    result: &Result<()>,
) {
    let outcome = result
        .as_ref()
        .map(|_| ())
        .map_err(|e| format!("the batch this write was committed with failed: {e}"));
    for waiter in waiters.drain(..) {
        // A member whose request was abandoned no longer listens.
        let _ = waiter.send(outcome.clone());
    }
}

/// Ends a parked batch: rolls back a member left inside its savepoint, commits
/// the rest, and tells the members waiting.
async fn settle(batch: &mut Batch) {
    let Some(mut tx) = batch.tx.take() else {
        let lost: Result<()> = Err(StoreError::Backend("the batch transaction was lost".into()));
        notify(&mut batch.waiters, &lost);
        return;
    };
    let mut result = Ok(());
    if std::mem::take(&mut batch.rollback_pending) {
        result = sqlx::query("ROLLBACK TO SAVEPOINT member")
            .execute(&mut *tx)
            .await
            .map(|_| ())
            .map_err(backend_error);
    }
    let result = match result {
        Ok(()) => commit_batch(tx, batch).await,
        Err(error) => Err(error),
    };
    notify(&mut batch.waiters, &result);
}

/// Writes the head the batch leads to, and commits it.
async fn commit_batch(mut tx: Transaction<'static, Any>, batch: &mut Batch) -> Result<()> {
    if batch.head_seq != batch.start_seq {
        let (tenant, seq, hash) = (batch.tenant, batch.head_seq, batch.head_hash.clone());
        sqlx::query("UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant = $1")
            .bind(tenant.to_string())
            .bind(seq)
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
    }
    tx.commit().await.map_err(backend_error)
}

impl Member {
    /// Joins the tenant's batch: waits for the lock, continues the open
    /// transaction or begins one (`begin` opens it and returns the head), and
    /// opens the member's savepoint. Returns the transaction and the head.
    pub(crate) async fn join<F, Fut>(
        slot: Arc<Slot>,
        begin: F,
    ) -> Result<(Member, Transaction<'static, Any>, i64, String)>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(Transaction<'static, Any>, i64, String)>>,
    {
        slot.queued.fetch_add(1, Ordering::SeqCst);
        let guard = {
            let _queued = Queued(&slot.queued);
            slot.batch.clone().lock_owned().await
        };
        let mut member = Member { slot, guard };
        let mut tx = match member.guard.tx.take() {
            Some(mut tx) => {
                let mut healthy = true;
                if std::mem::take(&mut member.guard.rollback_pending) {
                    healthy = sqlx::query("ROLLBACK TO SAVEPOINT member")
                        .execute(&mut *tx)
                        .await
                        .is_ok();
                }
                if healthy {
                    Some(tx)
                } else {
                    // The batch cannot go on: it ends, and its members hear so.
                    drop(tx);
                    let lost = Err(StoreError::Backend(
                        "the batch transaction could not be recovered".into(),
                    ));
                    notify(&mut member.guard.waiters, &lost);
                    None
                }
            }
            None => None,
        };
        if tx.is_none() {
            let (fresh, seq, hash) = begin().await?;
            member.guard.start_seq = seq;
            member.guard.head_seq = seq;
            member.guard.head_hash = hash;
            tx = Some(fresh);
        }
        let Some(mut tx) = tx else {
            return Err(StoreError::Backend("no transaction".into()));
        };
        if let Err(error) = sqlx::query("SAVEPOINT member").execute(&mut *tx).await {
            // Not a member yet: the batch goes back as it was.
            member.guard.tx = Some(tx);
            member.guard.rollback_pending = false;
            return Err(backend_error(error));
        }
        let (seq, hash) = (member.guard.head_seq, member.guard.head_hash.clone());
        Ok((member, tx, seq, hash))
    }

    /// Commits the member (its savepoint released, the head it leads to kept):
    /// hands the batch on and waits for its commit, or commits it.
    pub(crate) async fn commit(
        mut self,
        mut tx: Transaction<'static, Any>,
        head_seq: i64,
        head_hash: String,
    ) -> Result<()> {
        if let Err(error) = sqlx::query("RELEASE SAVEPOINT member")
            .execute(&mut *tx)
            .await
        {
            drop(tx);
            let error = backend_error(error);
            let lost = Err(StoreError::Backend(error.to_string()));
            notify(&mut self.guard.waiters, &lost);
            return Err(error);
        }
        self.guard.head_seq = head_seq;
        self.guard.head_hash = head_hash;
        if self.slot.queued.load(Ordering::SeqCst) > 0 && self.guard.waiters.len() + 1 < MAX_BATCH {
            let (sender, receiver) = oneshot::channel();
            self.guard.waiters.push(sender);
            self.guard.tx = Some(tx);
            let slot = self.slot.clone();
            drop(self);
            return wait(slot, receiver).await;
        }
        let result = commit_batch(tx, &mut self.guard).await;
        notify(&mut self.guard.waiters, &result);
        result
    }

    /// Ends the member without committing: rolled back to its savepoint for the
    /// others' sake, or, with nobody waiting, the whole transaction rolled back.
    pub(crate) fn abandon(mut self, tx: Option<Transaction<'static, Any>>) {
        if self.guard.waiters.is_empty() {
            drop(tx);
            self.guard.tx = None;
            self.guard.rollback_pending = false;
        } else if let Some(tx) = tx {
            self.guard.tx = Some(tx);
            self.guard.rollback_pending = true;
        }
    }
}

/// Waits for the batch's outcome; settles the batch itself when nobody else has.
async fn wait(
    slot: Arc<Slot>,
    mut receiver: oneshot::Receiver<std::result::Result<(), String>>,
) -> Result<()> {
    loop {
        tokio::select! {
            outcome = &mut receiver => {
                return match outcome {
                    Ok(outcome) => outcome.map_err(StoreError::Backend),
                    Err(_) => Err(StoreError::Backend("the batch was abandoned".into())),
                };
            }
            () = tokio::time::sleep(SETTLE_AFTER) => {
                let mut guard = slot.batch.clone().lock_owned().await;
                if guard.tx.is_some() || !guard.waiters.is_empty() {
                    settle(&mut guard).await;
                }
            }
        }
    }
}

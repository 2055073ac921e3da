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
//!   batch is under [`MAX_BATCH`]), it opens the next member's savepoint in the
//!   same round trip, hands the open transaction on and waits for the batch's
//!   commit; otherwise it commits the batch and tells every member waiting the
//!   outcome. Nobody returns before their writes are durable.
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
//! keep the head in memory as they append), after the members' audit events,
//! which are written then too, in one statement.
//!
//! Lists a member reads are kept for the batch's next members: while the
//! batch holds the head, no other transaction writes the tenant's records, so
//! a kept list stays exact until a member writes a record of its kind (lists of
//! that kind are read again) or a member is rolled back (all are).
//!
//! No caller's cancellation can strand a batch: a member's commit runs in a
//! task of its own; a member interrupted while it joins drops the batch and
//! tells the members waiting that it failed (true: their writes were in it);
//! and whenever a batch is left parked, a task settles that batch after
//! [`SETTLE_AFTER`] (at once when nobody is queued after a member that did not
//! commit) unless it ended before. A timer only ever settles the batch it was
//! set in (its *generation*): timers left from earlier batches must not cut a
//! later one short, or under a steady stream every batch would be.

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
/// The longest list the batch keeps, and how many it keeps.
const MEMO_MAX_RECORDS: usize = 100;
const MEMO_MAX_LISTS: usize = 64;
/// How long a waiting member trusts another to commit its batch.
const SETTLE_AFTER: Duration = Duration::from_millis(200);

/// A tenant's open batch, between members.
pub(crate) struct Batch {
    tenant: TenantId,
    /// The batch transaction, parked while no member runs.
    pub tx: Option<Transaction<'static, Any>>,
    /// Members that joined the batch (committed or not): each made a savepoint.
    members: usize,
    /// Which batch this is: raised each time a batch transaction begins. A
    /// timer set while a batch was parked settles that batch, not a later one.
    generation: u64,
    /// The head as the batch found it (written again only if it moved).
    start_seq: i64,
    /// The audit chain head after the last member that committed.
    pub head_seq: i64,
    pub head_hash: String,
    /// Members that committed and wait for the batch's commit.
    waiters: Vec<oneshot::Sender<std::result::Result<(), String>>>,
    /// A member ended inside its savepoint: roll it back before anything else.
    rollback_pending: bool,
    /// The member that handed the batch on opened the next member's savepoint
    /// in the same round trip as it released its own.
    savepoint_ready: bool,
    /// The audit events of the members that committed, written with the batch.
    pending_audit: Vec<crate::PendingAudit>,
    /// Lists read in the batch, by query: while the batch holds the chain head
    /// nobody else writes the tenant's records, so a list stays what it was
    /// until a member writes a record of its kind (or one is rolled back).
    memo: HashMap<String, Vec<tessera_store::Record>>,
}

impl Batch {
    /// Forgets what the batch read and was to write (its transaction ended or
    /// was replaced).
    fn reset(&mut self) {
        self.pending_audit.clear();
        self.memo.clear();
    }
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
                        members: 0,
                        generation: 0,
                        start_seq: 0,
                        head_seq: 0,
                        head_hash: String::new(),
                        waiters: Vec::new(),
                        rollback_pending: false,
                        savepoint_ready: false,
                        pending_audit: Vec::new(),
                        memo: HashMap::new(),
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

type Waiter = oneshot::Sender<std::result::Result<(), String>>;

fn notify(waiters: &mut Vec<Waiter>, result: &Result<()>) {
    let outcome = result
        .as_ref()
        .map(|_| ())
        .map_err(|e| format!("the batch this write was committed with failed: {e}"));
    for waiter in waiters.drain(..) {
        // A member whose request was abandoned no longer listens.
        let _ = waiter.send(outcome.clone());
    }
}

/// Ends the batch's transaction without committing it: whoever waited on it
/// hears that it failed (their writes were in it).
fn lose(batch: &mut Batch, why: &str) {
    batch.tx = None;
    batch.rollback_pending = false;
    batch.savepoint_ready = false;
    batch.reset();
    let lost: Result<()> = Err(StoreError::Backend(why.to_string()));
    notify(&mut batch.waiters, &lost);
}

/// Rolls back the member left inside its savepoint (and drops the savepoint,
/// so savepoints do not nest).
async fn roll_back_member(tx: &mut Transaction<'static, Any>) -> Result<()> {
    sqlx::raw_sql("ROLLBACK TO SAVEPOINT member; RELEASE SAVEPOINT member")
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(backend_error)
}

/// Writes the members' audit events and the head the batch leads to, and
/// commits it.
async fn commit_batch(mut tx: Transaction<'static, Any>, batch: &mut Batch) -> Result<()> {
    let pending = std::mem::take(&mut batch.pending_audit);
    batch.memo.clear();
    crate::insert_audit(&mut tx, pending).await?;
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

/// Ends a parked batch: rolls back a member left inside its savepoint, commits
/// the rest, and tells the members waiting.
async fn settle(batch: &mut Batch) {
    batch.savepoint_ready = false;
    let Some(mut tx) = batch.tx.take() else {
        if !batch.waiters.is_empty() {
            lose(batch, "the batch transaction was lost");
        }
        return;
    };
    let mut result = Ok(());
    if std::mem::take(&mut batch.rollback_pending) {
        result = roll_back_member(&mut tx).await;
    }
    let result = match result {
        Ok(()) => commit_batch(tx, batch).await,
        Err(error) => Err(error),
    };
    notify(&mut batch.waiters, &result);
}

/// Settles the batch of `generation` after `delay`, if it is still open then
/// (nobody committed, lost or settled it meanwhile); run whenever a batch is
/// left parked, so it never depends on a caller. A timer set in an earlier
/// batch does nothing to a later one, so under a steady stream of writers a
/// batch ends when nobody is queued or at [`MAX_BATCH`]; and none stays open
/// much longer than [`SETTLE_AFTER`] after it was first parked, whoever joins
/// it meanwhile.
fn settle_later(slot: Arc<Slot>, generation: u64, delay: Duration) -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    runtime.spawn(async move {
        tokio::time::sleep(delay).await;
        let mut guard = slot.batch.clone().lock_owned().await;
        if guard.generation == generation && (guard.tx.is_some() || !guard.waiters.is_empty()) {
            settle(&mut guard).await;
        }
    });
    true
}

/// Waits for the slot's batch lock, counted as queued meanwhile.
async fn lock_batch(slot: &Slot) -> OwnedMutexGuard<Batch> {
    slot.queued.fetch_add(1, Ordering::SeqCst);
    let _queued = Queued(&slot.queued);
    slot.batch.clone().lock_owned().await
}

/// A write running as a member of its tenant's batch: it holds the batch lock.
/// Dropped with the transaction in hand (interrupted while joining or
/// committing), it drops the batch and tells the members waiting.
pub(crate) struct Member {
    slot: Arc<Slot>,
    guard: OwnedMutexGuard<Batch>,
    tx: Option<Transaction<'static, Any>>,
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.tx.take().is_some() {
            lose(&mut self.guard, "the batch was interrupted");
        }
    }
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
        let mut guard = lock_batch(&slot).await;
        // A full batch left parked (its last member did not commit) is ended
        // before anyone joins it, so no batch passes MAX_BATCH members; in a
        // task of its own, as every commit is (a caller's cancellation cannot
        // interrupt it).
        while guard.members >= MAX_BATCH && guard.tx.is_some() {
            let settling = tokio::spawn(async move {
                let mut guard = guard;
                settle(&mut guard).await;
            });
            let _ = settling.await;
            guard = lock_batch(&slot).await;
        }
        let mut member = Member {
            slot,
            guard,
            tx: None,
        };

        if member.guard.tx.is_none() && !member.guard.waiters.is_empty() {
            // Never told their outcome: their transaction is gone.
            lose(&mut member.guard, "the batch transaction was lost");
        }
        member.tx = member.guard.tx.take();
        if member.guard.rollback_pending {
            // What a member rolled back had read or written is not the batch's.
            member.guard.memo.clear();
        }
        if std::mem::take(&mut member.guard.rollback_pending)
            && let Some(tx) = member.tx.as_mut()
            && roll_back_member(tx).await.is_err()
        {
            member.tx = None;
            lose(
                &mut member.guard,
                "the batch transaction could not be recovered",
            );
        }
        // A member rolled back above took the savepoint made for it along.
        let ready = std::mem::take(&mut member.guard.savepoint_ready) && member.tx.is_some();
        if member.tx.is_none() {
            member.guard.reset();
            let (fresh, seq, hash) = begin().await?;
            member.guard.generation += 1;
            member.guard.members = 0;
            member.guard.start_seq = seq;
            member.guard.head_seq = seq;
            member.guard.head_hash = hash;
            member.tx = Some(fresh);
        }
        let savepoint = match member.tx.as_mut() {
            Some(_) if ready => Ok(Default::default()),
            Some(tx) => sqlx::query("SAVEPOINT member").execute(&mut **tx).await,
            None => return Err(StoreError::Backend("no transaction".into())),
        };
        if let Err(error) = savepoint {
            // Never put back a transaction whose last statement failed.
            member.tx = None;
            lose(&mut member.guard, "the batch transaction failed");
            return Err(backend_error(error));
        }
        member.guard.members += 1;
        let (seq, hash) = (member.guard.head_seq, member.guard.head_hash.clone());
        let Some(tx) = member.tx.take() else {
            return Err(StoreError::Backend("no transaction".into()));
        };
        Ok((member, tx, seq, hash))
    }

    /// Commits the member in a task of its own (a caller's cancellation cannot
    /// interrupt it): its savepoint released, the head it leads to kept; hands
    /// the batch on and waits for its commit, or commits it.
    pub(crate) async fn commit(
        self,
        tx: Transaction<'static, Any>,
        head_seq: i64,
        head_hash: String,
        audit: Vec<crate::PendingAudit>,
    ) -> Result<()> {
        let task = tokio::spawn(self.finish(tx, head_seq, head_hash, audit));
        match task.await {
            Ok(result) => result,
            Err(error) => Err(StoreError::Backend(format!(
                "the commit did not finish: {error}"
            ))),
        }
    }

    async fn finish(
        mut self,
        tx: Transaction<'static, Any>,
        head_seq: i64,
        head_hash: String,
        audit: Vec<crate::PendingAudit>,
    ) -> Result<()> {
        self.tx = Some(tx);
        // Handing the batch on, the next member's savepoint is opened in the
        // same round trip (a RELEASE that fails stops the string there).
        let hand_on = self.slot.queued.load(Ordering::SeqCst) > 0 && self.guard.members < MAX_BATCH;
        let released = match self.tx.as_mut() {
            Some(tx) if hand_on => sqlx::raw_sql("RELEASE SAVEPOINT member; SAVEPOINT member")
                .execute(&mut **tx)
                .await
                .map(|_| ())
                .map_err(backend_error),
            Some(tx) => sqlx::query("RELEASE SAVEPOINT member")
                .execute(&mut **tx)
                .await
                .map(|_| ())
                .map_err(backend_error),
            None => return Err(StoreError::Backend("no transaction".into())),
        };
        if let Err(error) = released {
            // This member failed (a statement of its own did): roll it back and
            // let the batch go on without it.
            let recovered = match self.tx.as_mut() {
                Some(tx) => roll_back_member(tx).await.is_ok(),
                None => false,
            };
            let tx = self.tx.take();
            if recovered {
                self.park_or_end(tx);
            } else {
                lose(&mut self.guard, "the batch transaction failed");
            }
            return Err(error);
        }
        self.guard.head_seq = head_seq;
        self.guard.head_hash = head_hash;
        self.guard.pending_audit.extend(audit);
        if hand_on {
            self.guard.savepoint_ready = true;
            let (sender, receiver) = oneshot::channel();
            self.guard.waiters.push(sender);
            let tx = self.tx.take();
            self.guard.tx = tx;
            settle_later(self.slot.clone(), self.guard.generation, SETTLE_AFTER);
            drop(self);
            return match receiver.await {
                Ok(outcome) => outcome.map_err(StoreError::Backend),
                Err(_) => Err(StoreError::Backend("the batch was abandoned".into())),
            };
        }
        let Some(tx) = self.tx.take() else {
            return Err(StoreError::Backend("no transaction".into()));
        };
        let result = commit_batch(tx, &mut self.guard).await;
        notify(&mut self.guard.waiters, &result);
        result
    }

    /// After a member that will not commit: with nobody waiting the transaction
    /// ends (nothing in it is anyone's); otherwise it is parked for the next
    /// member, or settled soon.
    fn park_or_end(&mut self, tx: Option<Transaction<'static, Any>>) {
        // Every member that ends without committing comes here: what it read
        // after its own writes is not the batch's.
        self.guard.memo.clear();
        if self.guard.waiters.is_empty() {
            drop(tx);
            self.guard.tx = None;
        } else {
            self.guard.tx = tx;
            // Nobody queued to go on with it, or full: settled now, so the
            // members waiting are not kept waiting.
            let delay = if self.slot.queued.load(Ordering::SeqCst) == 0
                || self.guard.members >= MAX_BATCH
            {
                Duration::ZERO
            } else {
                SETTLE_AFTER
            };
            if !settle_later(self.slot.clone(), self.guard.generation, delay) {
                lose(&mut self.guard, "the batch was abandoned");
            }
        }
    }

    /// A list the batch read before, if no member wrote its kind since.
    pub(crate) fn memo_get(&self, key: &str) -> Option<Vec<tessera_store::Record>> {
        self.guard.memo.get(key).cloned()
    }

    /// Keeps a list for the batch's next members (a short one: the memo is for
    /// the small lists every write reads, not for walks over a kind).
    pub(crate) fn memo_put(&mut self, key: String, records: &[tessera_store::Record]) {
        if records.len() <= MEMO_MAX_RECORDS && self.guard.memo.len() < MEMO_MAX_LISTS {
            self.guard.memo.insert(key, records.to_vec());
        }
    }

    /// A record of `kind` is written: lists of that kind are read again.
    pub(crate) fn memo_forget(&mut self, kind: tessera_store::Kind) {
        let prefix = format!("{}|", kind.as_str());
        self.guard.memo.retain(|key, _| !key.starts_with(&prefix));
    }

    /// Ends the member without committing: rolled back to its savepoint for the
    /// others' sake (by the next member, or when the batch is settled), or, with
    /// nobody waiting, the whole transaction rolled back.
    pub(crate) fn abandon(mut self, tx: Option<Transaction<'static, Any>>) {
        if tx.is_some() && !self.guard.waiters.is_empty() {
            self.guard.rollback_pending = true;
        }
        self.park_or_end(tx);
    }
}

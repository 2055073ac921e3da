//! Background work: periodic and one-shot jobs, run under a lease in the store so
//! that of several nodes on one database one does each occurrence.
//!
//! A job says what it is ([`Job::name`]), when it runs ([`Schedule`]) and over what
//! ([`Scope`]): this node only (upkeep of node-local state), the whole deployment, or
//! each tenant on its own (one lease a tenant, so one tenant's failure or slowness
//! does not hold up another's). [`Jobs`] runs them: each job in its own task, so a
//! slow one (a CRL fetch waiting on a network timeout) does not delay the others.
//!
//! Leases: before an occurrence a node takes the job's lease for the scope, for one
//! and a half periods. The holder takes it again at its next occurrence; another node
//! gets it only once it has run out (the holder stopped, or fell half a period
//! behind), so a deployment runs each occurrence about once, and goes on when a node
//! goes away.
//! A failed occurrence hands its lease back at once, so any node may retry it.
//! Jobs must still be idempotent: a lease is not a lock on the work (a node that
//! runs longer than its lease may overlap with the next holder).
//!
//! What jobs must not be used for: enforcing that something time-bound has ended.
//! An expiry is checked where the thing is used; a job only tidies up after it, so a
//! missed run never extends access.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tessera_core::{Clock, TenantId, Timestamp};
use tessera_store::Store;

/// What a job's occurrence ends with; the error is logged (and hands back the lease).
pub type JobResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// When a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// At start, then every period.
    Every(Duration),
    /// Once, this long after the node starts. Its lease is kept for `hold` after it
    /// ran, so other nodes that start within that time do not repeat it.
    Once { after: Duration, hold: Duration },
}

/// What one occurrence covers, and so which lease it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// State of this node only: every node runs it, no lease.
    Node,
    /// The whole deployment: one lease.
    Deployment,
    /// Each tenant on its own: one lease per tenant; `run` is given the tenant.
    EachTenant,
}

/// One kind of background work.
#[async_trait]
pub trait Job: Send + Sync {
    /// A stable name: the lease's key and the log's `job` field.
    fn name(&self) -> &'static str;
    fn schedule(&self) -> Schedule;
    fn scope(&self) -> Scope;
    /// One occurrence; `tenant` is set exactly when the scope is [`Scope::EachTenant`].
    async fn run(&self, tenant: Option<TenantId>) -> JobResult;
}

/// A job from an async function, for work that needs no type of its own.
pub fn job<F, Fut>(name: &'static str, scope: Scope, schedule: Schedule, work: F) -> Arc<dyn Job>
where
    F: Fn(Option<TenantId>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = JobResult> + Send + 'static,
{
    Arc::new(FnJob {
        name,
        scope,
        schedule,
        work,
    })
}

struct FnJob<F> {
    name: &'static str,
    scope: Scope,
    schedule: Schedule,
    work: F,
}

#[async_trait]
impl<F, Fut> Job for FnJob<F>
where
    F: Fn(Option<TenantId>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = JobResult> + Send + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn schedule(&self) -> Schedule {
        self.schedule
    }

    fn scope(&self) -> Scope {
        self.scope
    }

    async fn run(&self, tenant: Option<TenantId>) -> JobResult {
        (self.work)(tenant).await
    }
}

/// What one occurrence did for one scope, for the log and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub job: &'static str,
    pub tenant: Option<TenantId>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    /// Another node holds the lease.
    Skipped,
}

/// The jobs of one node.
pub struct Jobs {
    runner: Arc<Runner>,
    jobs: Vec<Entry>,
}

struct Entry {
    job: Arc<dyn Job>,
    /// When this node next runs it; `None` once a one-shot job has run.
    next: Option<Timestamp>,
}

struct Runner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// This node, as the leases name it.
    holder: String,
}

impl Jobs {
    /// A node's jobs, holding leases under a name of its own (random per process).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Jobs {
        Jobs::with_holder(store, clock, &uuid::Uuid::new_v4().to_string())
    }

    /// As [`Jobs::new`], with the lease holder's name given (tests play several nodes).
    pub fn with_holder(store: Arc<dyn Store>, clock: Arc<dyn Clock>, holder: &str) -> Jobs {
        Jobs {
            runner: Arc::new(Runner {
                store,
                clock,
                holder: holder.to_string(),
            }),
            jobs: Vec::new(),
        }
    }

    pub fn add(&mut self, job: Arc<dyn Job>) {
        let now = self.runner.clock.now();
        let next = match job.schedule() {
            Schedule::Every(_) => now,
            Schedule::Once { after, .. } => now.plus_seconds(seconds(after)),
        };
        self.jobs.push(Entry {
            job,
            next: Some(next),
        });
    }

    pub fn extend(&mut self, jobs: impl IntoIterator<Item = Arc<dyn Job>>) {
        for job in jobs {
            self.add(job);
        }
    }

    /// The names of the jobs, in the order they were added.
    pub fn names(&self) -> Vec<&'static str> {
        self.jobs.iter().map(|entry| entry.job.name()).collect()
    }

    /// Runs, one after the other, every job due at the clock's time, and sets when
    /// each runs next. The tasks of [`Jobs::start`] do the same on their own
    /// schedule; this is the same step for a caller that keeps time itself.
    pub async fn run_due(&mut self) -> Vec<Ran> {
        let mut ran = Vec::new();
        for entry in &mut self.jobs {
            let now = self.runner.clock.now();
            let Some(next) = entry.next else { continue };
            if next > now {
                continue;
            }
            ran.extend(self.runner.occurrence(&entry.job).await);
            entry.next = match entry.job.schedule() {
                Schedule::Every(period) => Some(now.plus_seconds(seconds(period))),
                Schedule::Once { .. } => None,
            };
        }
        ran
    }

    /// Hands back the leases this node holds (see [`JobsHandle::release_leases`]).
    pub async fn release_leases(&self) {
        self.runner.release_leases().await;
    }

    /// Starts every job in a task of its own; they run until the runtime stops. The
    /// handle hands back this node's leases when it stops.
    pub fn start(self) -> JobsHandle {
        let handle = JobsHandle {
            runner: self.runner.clone(),
        };
        for entry in self.jobs {
            let runner = self.runner.clone();
            let job = entry.job;
            tokio::spawn(async move {
                match job.schedule() {
                    Schedule::Every(period) => {
                        let mut interval = tokio::time::interval(period.max(MIN_PERIOD));
                        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        loop {
                            interval.tick().await;
                            runner.occurrence(&job).await;
                        }
                    }
                    Schedule::Once { after, .. } => {
                        tokio::time::sleep(after).await;
                        runner.occurrence(&job).await;
                    }
                }
            });
        }
        handle
    }
}

/// The running jobs of a node.
pub struct JobsHandle {
    runner: Arc<Runner>,
}

impl JobsHandle {
    /// Hands back the leases this node holds, so that after a restart or on another
    /// node the work goes on at its next occurrence, not once the leases run out.
    pub async fn release_leases(&self) {
        self.runner.release_leases().await;
    }
}

/// The shortest period a job task keeps (a zero period would spin).
const MIN_PERIOD: Duration = Duration::from_secs(1);

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 2)
}

impl Runner {
    async fn release_leases(&self) {
        match self
            .store
            .leases_release(&self.holder, self.clock.now())
            .await
        {
            Ok(released) => tracing::info!(released, "job leases handed back"),
            Err(error) => tracing::warn!(%error, "cannot hand back job leases"),
        }
    }

    /// One occurrence of `job` over its scope, logged.
    async fn occurrence(&self, job: &Arc<dyn Job>) -> Vec<Ran> {
        let ran = match job.scope() {
            Scope::Node => vec![self.run(job, None, false).await],
            Scope::Deployment => vec![self.run(job, None, true).await],
            Scope::EachTenant => match self.store.tenants().await {
                Ok(tenants) => {
                    let mut ran = Vec::with_capacity(tenants.len());
                    for tenant in tenants {
                        ran.push(self.run(job, Some(tenant.id), true).await);
                    }
                    ran
                }
                Err(error) => {
                    tracing::warn!(job = job.name(), %error, "cannot list tenants for a job");
                    vec![Ran {
                        job: job.name(),
                        tenant: None,
                        outcome: Outcome::Failed(error.to_string()),
                    }]
                }
            },
        };
        for ran in &ran {
            if let Outcome::Failed(error) = &ran.outcome {
                match ran.tenant {
                    Some(tenant) => {
                        tracing::error!(job = ran.job, %tenant, %error, "background job failed")
                    }
                    None => tracing::error!(job = ran.job, %error, "background job failed"),
                }
            }
        }
        ran
    }

    /// Runs `job` for one scope, under its lease when `leased`.
    async fn run(&self, job: &Arc<dyn Job>, tenant: Option<TenantId>, leased: bool) -> Ran {
        let name = job.name();
        let ran = |outcome| Ran {
            job: name,
            tenant,
            outcome,
        };
        let now = self.clock.now();
        let hold = match job.schedule() {
            // Half a period more than the holder needs to come back for the next
            // occurrence: the holder keeps the lease even when its tick is a little
            // late, another node takes over half a period after it stopped.
            Schedule::Every(period) => period
                .max(MIN_PERIOD)
                .checked_mul(3)
                .map_or(Duration::MAX, |hold| hold / 2),
            Schedule::Once { hold, .. } => hold,
        };
        if leased {
            match self
                .store
                .lease_take(
                    name,
                    tenant,
                    &self.holder,
                    now,
                    now.plus_seconds(seconds(hold)),
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => return ran(Outcome::Skipped),
                Err(error) => {
                    return ran(Outcome::Failed(format!(
                        "cannot take the job's lease: {error}"
                    )));
                }
            }
        }
        // In a task of its own, so a job that panics fails this occurrence, not the
        // job's schedule.
        let work = {
            let job = job.clone();
            tokio::spawn(async move { job.run(tenant).await })
        };
        let result = match work.await {
            Ok(result) => result.map_err(|error| error.to_string()),
            Err(_) => Err("the job panicked".to_string()),
        };
        match result {
            Ok(()) => ran(Outcome::Done),
            Err(error) => {
                if leased {
                    // Handed back, so any node may try again at its next occurrence.
                    let handed_back = self
                        .store
                        .lease_set_end(name, tenant, &self.holder, self.clock.now())
                        .await;
                    if let Err(lease_error) = handed_back {
                        tracing::warn!(job = name, error = %lease_error, "cannot hand back a job's lease");
                    }
                }
                ran(Outcome::Failed(error))
            }
        }
    }
}

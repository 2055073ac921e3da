//! Background jobs on a real store: of several nodes one runs each occurrence, a
//! failure hands the lease back, a node that stops is replaced once its leases run
//! out, one-shot jobs run once, and the application's own jobs run clean.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_core::{Clock, TenantId};
use tessera_service::App;
use tessera_service::jobs::{Job, Jobs, Outcome, Ran, Schedule, Scope, application_jobs, job};
use tessera_store::{AuditAppend, Store, Tenant};
use tessera_testkit::ShiftedClock;

const HOUR: Duration = Duration::from_secs(3600);

/// Which node ran which job for which tenant.
type Log = Arc<Mutex<Vec<(&'static str, Option<TenantId>, String)>>>;

fn counting(
    name: &'static str,
    scope: Scope,
    schedule: Schedule,
    node: &str,
    log: &Log,
) -> Arc<dyn Job> {
    let log = log.clone();
    let node = node.to_string();
    job(name, scope, schedule, move |tenant| {
        let log = log.clone();
        let node = node.clone();
        async move {
            log.lock().unwrap().push((name, tenant, node));
            Ok(())
        }
    })
}

fn node_jobs(store: &Arc<dyn Store>, clock: &Arc<ShiftedClock>, node: &str, log: &Log) -> Jobs {
    let mut jobs = Jobs::with_holder(store.clone(), clock.clone(), node);
    jobs.add(counting(
        "local",
        Scope::Node,
        Schedule::Every(HOUR),
        node,
        log,
    ));
    jobs.add(counting(
        "global",
        Scope::Deployment,
        Schedule::Every(HOUR),
        node,
        log,
    ));
    jobs.add(counting(
        "per-tenant",
        Scope::EachTenant,
        Schedule::Every(HOUR),
        node,
        log,
    ));
    jobs
}

async fn second_tenant(store: &Arc<dyn Store>, clock: &ShiftedClock) -> TenantId {
    let tenant = Tenant {
        id: TenantId::new_random(),
        name: "Fabrikam".to_string(),
        created: clock.now(),
    };
    let mut tx = store.create_tenant(&tenant, false).await.unwrap();
    tx.append_audit(
        tenant.id,
        &AuditAppend {
            id: uuid::Uuid::new_v4(),
            time: clock.now(),
            actor_id: None,
            action: "tenant.create".to_string(),
            target_id: None,
            correlation_id: "test".to_string(),
            body: "{}".to_string(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    tenant.id
}

/// Two tenants (the bootstrapped default and one more) and a clock tests move.
async fn two_tenants(store: Arc<dyn Store>) -> (Arc<dyn Store>, Arc<ShiftedClock>, Vec<TenantId>) {
    let clock = Arc::new(ShiftedClock::default());
    let directory = App::new(store.clone(), clock.clone());
    let first = directory
        .directory
        .bootstrap_if_empty("Contoso", "contoso.com")
        .await
        .unwrap()
        .unwrap()
        .tenant;
    let second = second_tenant(&store, &clock).await;
    (store, clock, vec![first, second])
}

fn taken(log: &Log) -> Vec<(&'static str, Option<TenantId>, String)> {
    let mut entries = std::mem::take(&mut *log.lock().unwrap());
    entries.sort_by_key(|(name, tenant, node)| (*name, tenant.map(|t| t.0), node.clone()));
    entries
}

fn outcomes(ran: &[Ran], outcome: &Outcome) -> usize {
    ran.iter().filter(|r| &r.outcome == outcome).count()
}

async fn one_node_runs_each_occurrence(store: Arc<dyn Store>) {
    let (store, clock, tenants) = two_tenants(store).await;
    let log = Log::default();
    let mut a = node_jobs(&store, &clock, "a", &log);
    let mut b = node_jobs(&store, &clock, "b", &log);

    // A comes first and takes the deployment's and each tenant's lease; B runs only
    // its own node's job.
    let ran = a.run_due().await;
    assert_eq!(outcomes(&ran, &Outcome::Done), 4, "{ran:?}");
    let ran = b.run_due().await;
    assert_eq!(outcomes(&ran, &Outcome::Done), 1, "{ran:?}");
    assert_eq!(outcomes(&ran, &Outcome::Skipped), 3, "{ran:?}");
    let mut expected = vec![
        ("global", None, "a".to_string()),
        ("local", None, "a".to_string()),
        ("local", None, "b".to_string()),
    ];
    for tenant in &tenants {
        expected.push(("per-tenant", Some(*tenant), "a".to_string()));
    }
    expected.sort_by_key(|(name, tenant, node)| (*name, tenant.map(|t| t.0), node.clone()));
    assert_eq!(taken(&log), expected);

    // Nothing is due again before the period is over.
    assert!(a.run_due().await.is_empty());
    assert!(b.run_due().await.is_empty());

    // The next period: the holder keeps its leases, whichever node asks first.
    clock.advance_seconds(3600);
    let ran = b.run_due().await;
    assert_eq!(outcomes(&ran, &Outcome::Skipped), 3, "{ran:?}");
    let ran = a.run_due().await;
    assert_eq!(outcomes(&ran, &Outcome::Done), 4, "{ran:?}");
    assert_eq!(taken(&log).len(), 5);

    // A stops. B's next occurrence finds A's leases still running (they last half a
    // period past A's next occurrence); the one after, B does the work.
    clock.advance_seconds(3600);
    let ran = b.run_due().await;
    assert_eq!(outcomes(&ran, &Outcome::Skipped), 3, "{ran:?}");
    assert_eq!(taken(&log).len(), 1);
    clock.advance_seconds(3600);
    let ran = b.run_due().await;
    assert_eq!(outcomes(&ran, &Outcome::Done), 4, "{ran:?}");
    assert!(taken(&log).iter().all(|(_, _, node)| node == "b"));
}

async fn a_failure_hands_the_lease_back(store: Arc<dyn Store>) {
    let (store, clock, _) = two_tenants(store).await;
    let log = Log::default();
    let mut a = Jobs::with_holder(store.clone(), clock.clone(), "a");
    a.add(job(
        "global",
        Scope::Deployment,
        Schedule::Every(HOUR),
        |_| async { Err("the destination is down".into()) },
    ));
    let mut b = Jobs::with_holder(store.clone(), clock.clone(), "b");
    b.add(counting(
        "global",
        Scope::Deployment,
        Schedule::Every(HOUR),
        "b",
        &log,
    ));

    let ran = a.run_due().await;
    assert_eq!(
        ran[0].outcome,
        Outcome::Failed("the destination is down".to_string())
    );
    // B need not wait out A's hour.
    let ran = b.run_due().await;
    assert_eq!(outcomes(&ran, &Outcome::Done), 1, "{ran:?}");
    assert_eq!(taken(&log), vec![("global", None, "b".to_string())]);
}

async fn a_panicking_job_fails_its_occurrence_not_its_schedule(store: Arc<dyn Store>) {
    let (store, clock, _) = two_tenants(store).await;
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    let mut a = Jobs::with_holder(store.clone(), clock.clone(), "a");
    a.add(job(
        "fragile",
        Scope::Deployment,
        Schedule::Every(HOUR),
        move |_| {
            let first = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            async move {
                if first {
                    panic!("a bug in the job");
                }
                Ok(())
            }
        },
    ));
    let ran = a.run_due().await;
    assert_eq!(
        ran[0].outcome,
        Outcome::Failed("the job panicked".to_string())
    );
    // Its lease was handed back and it runs again at its next occurrence.
    clock.advance_seconds(3600);
    let ran = a.run_due().await;
    assert_eq!(outcomes(&ran, &Outcome::Done), 1, "{ran:?}");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
}

async fn a_stopping_node_hands_its_leases_to_the_next(store: Arc<dyn Store>) {
    let (store, clock, _) = two_tenants(store).await;
    let log = Log::default();
    let mut a = node_jobs(&store, &clock, "a", &log);
    a.run_due().await;
    a.release_leases().await;
    // B need not wait out A's leases.
    let mut b = node_jobs(&store, &clock, "b", &log);
    let ran = b.run_due().await;
    assert_eq!(outcomes(&ran, &Outcome::Done), 4, "{ran:?}");
}

async fn one_shot_jobs_run_once(store: Arc<dyn Store>) {
    let (store, clock, _) = two_tenants(store).await;
    let log = Log::default();
    let once = Schedule::Once {
        after: Duration::from_secs(60),
        hold: HOUR,
    };
    let mut a = Jobs::with_holder(store.clone(), clock.clone(), "a");
    a.add(counting("setup", Scope::Deployment, once, "a", &log));
    let mut b = Jobs::with_holder(store.clone(), clock.clone(), "b");
    b.add(counting("setup", Scope::Deployment, once, "b", &log));

    // Not before its delay.
    assert!(a.run_due().await.is_empty());
    clock.advance_seconds(60);
    assert_eq!(outcomes(&a.run_due().await, &Outcome::Done), 1);
    // A node starting within the hold does not repeat it; nobody runs it twice.
    assert_eq!(outcomes(&b.run_due().await, &Outcome::Skipped), 1);
    clock.advance_seconds(7200);
    assert!(a.run_due().await.is_empty());
    assert!(b.run_due().await.is_empty());
    assert_eq!(taken(&log), vec![("setup", None, "a".to_string())]);
}

async fn the_application_jobs_run(store: Arc<dyn Store>) {
    let clock = Arc::new(ShiftedClock::default());
    let directory = Arc::new(App::new(store.clone(), clock.clone()));
    let tenant = directory
        .directory
        .bootstrap_if_empty("Contoso", "contoso.com")
        .await
        .unwrap()
        .unwrap()
        .tenant;
    let mut jobs = Jobs::with_holder(store.clone(), clock.clone(), "a");
    jobs.extend(application_jobs(&directory));
    assert_eq!(
        jobs.names(),
        [
            "risk-baselines",
            "risk-offline",
            "signals",
            "siem-export",
            "lifecycle",
            "outbound-provisioning",
            "hr-import",
            "purge-expired",
            "signing-keys",
            "pim-expiry",
            "notifications",
            "crl-refresh"
        ]
    );
    let ran = jobs.run_due().await;
    assert_eq!(ran.len(), 12, "{ran:?}");
    assert!(ran.iter().all(|r| r.outcome == Outcome::Done), "{ran:?}");
    // Signing keys were made for the tenant: the published key set has them.
    let keys = directory.oidc.jwks(tenant).await.unwrap();
    assert!(!keys["keys"].as_array().unwrap().is_empty(), "{keys}");
}

tessera_testkit::both_backends!(
    one_node_runs_each_occurrence,
    a_failure_hands_the_lease_back,
    a_panicking_job_fails_its_occurrence_not_its_schedule,
    a_stopping_node_hands_its_leases_to_the_next,
    one_shot_jobs_run_once,
    the_application_jobs_run,
);

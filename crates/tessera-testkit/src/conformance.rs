//! The storage conformance suite: every backend must pass every test here.
//! [`conformance_tests!`](crate::conformance_tests) runs it on SQLite and on
//! PostgreSQL, each test on a fresh, isolated, empty store.
//!
//! These are behavioural tests of the interface, so they panic with a message on
//! failure like any test.

use std::sync::Arc;

use tessera_core::crypto::{GENESIS_HASH, audit_link_hash};
use tessera_core::{TenantId, Timestamp};
use tessera_store::{
    AuditAppend, AuditQuery, Cursor, Field, Kind, Link, ListQuery, Order, Predicate, Record, Rel,
    Scalar, Search, SessionRow, SignInQuery, SignInRow, Step, Store, StoreError, Tenant, Test,
};
use uuid::Uuid;

/// Instantiates the conformance suite as `#[tokio::test]` functions in modules
/// `sqlite` and `postgres` (see [`both_backends!`](crate::both_backends)).
#[macro_export]
macro_rules! conformance_tests {
    () => {
        $crate::both_backends!(@modules [$crate::conformance] $crate::Backend::store;
            insert_and_get_round_trip,
            key1_is_unique_per_tenant_and_kind,
            stale_versions_are_refused,
            delete_removes_the_record_and_its_links,
            listing_pages_in_sort_order,
            listing_filters_by_prefix_and_key2,
            sort_order_is_bytewise_on_every_backend,
            links_are_idempotent_and_paged,
            dropped_transactions_change_nothing,
            changes_without_an_audit_event_are_refused,
            audit_chain_links_every_event,
            audit_chains_are_per_tenant,
            audit_queries_filter_and_page,
            concurrent_writers_keep_one_chain,
            writers_that_fail_leave_the_others_whole,
            default_tenant_is_created_once,
            writing_to_an_unknown_tenant_fails,
            tenants_are_isolated,
            sessions_round_trip_and_revoke,
            sessions_are_walked_by_prefix,
            sign_in_log_filters_and_pages,
            risk_detections_filter_page_and_purge,
            sign_in_aggregates_merge_by_key,
            export_numbers_are_gapless_and_ordered,
            revocations_are_read_in_order_and_purged,
            sign_in_retention_by_age_and_size,
            database_size_is_reported,
                        counters_are_atomic,
                        counters_bumped_in_a_transaction_move_with_it,
                        concurrent_writers_read_what_was_written_before_them,
                        a_writer_failing_at_commit_leaves_nothing_read,
            a_stream_of_writers_that_commit_nothing_does_not_hold_a_commit,
            job_leases_have_one_holder,
            a_snapshot_reads_one_state,
            searches_mean_the_same_on_every_backend
        );
    };
}

fn now() -> Timestamp {
    Timestamp::from_unix_micros(1_700_000_000_000_000)
}

fn record(kind: Kind, sort_key: &str, key1: Option<&str>) -> Record {
    Record {
        kind,
        id: Uuid::new_v4(),
        version: 1,
        created: now(),
        modified: now(),
        key1: key1.map(str::to_string),
        key2: None,
        sort_key: sort_key.to_string(),
        data: format!("{{\"name\":{:?}}}", sort_key),
    }
}

fn event(action: &str, actor: Option<&str>, target: Option<&str>, time: Timestamp) -> AuditAppend {
    AuditAppend {
        id: Uuid::new_v4(),
        time,
        actor_id: actor.map(str::to_string),
        action: action.to_string(),
        target_id: target.map(str::to_string),
        correlation_id: "corr".to_string(),
        body: format!("{{\"action\":{action:?},\"n\":\"{}\"}}", Uuid::new_v4()),
    }
}

async fn new_tenant(store: &Arc<dyn Store>) -> TenantId {
    let tenant = Tenant {
        id: TenantId::new_random(),
        name: "Contoso".to_string(),
        created: now(),
    };
    let mut tx = store.create_tenant(&tenant, false).await.unwrap();
    tx.append_audit(tenant.id, &event("tenant.create", None, None, now()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    tenant.id
}

/// Inserts records in one committed transaction.
async fn insert_all(store: &Arc<dyn Store>, tenant: TenantId, records: &[Record]) {
    let mut tx = store.begin_write(tenant).await.unwrap();
    for r in records {
        tx.insert(tenant, r).await.unwrap();
    }
    tx.append_audit(tenant, &event("test.insert", None, None, now()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

pub async fn insert_and_get_round_trip(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let mut r = record(Kind::User, "adele vance", Some("adele@contoso.com"));
    r.key2 = Some("manager-1".to_string());
    r.data = "{\"unicode\":\"Zoë – 日本\"}".to_string();
    insert_all(&store, tenant, std::slice::from_ref(&r)).await;
    let mut reader = store.reader().await.unwrap();
    assert_eq!(
        reader.get(tenant, Kind::User, r.id).await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(
        reader
            .get_by_key1(tenant, Kind::User, "adele@contoso.com")
            .await
            .unwrap(),
        Some(r.clone())
    );
    assert_eq!(
        reader.get(tenant, Kind::Group, r.id).await.unwrap(),
        None,
        "kinds are separate"
    );
    assert_eq!(
        reader
            .get(tenant, Kind::User, Uuid::new_v4())
            .await
            .unwrap(),
        None
    );
}

pub async fn key1_is_unique_per_tenant_and_kind(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let other_tenant = new_tenant(&store).await;
    insert_all(&store, tenant, &[record(Kind::User, "a", Some("a@x"))]).await;
    let mut tx = store.begin_write(tenant).await.unwrap();
    let error = tx
        .insert(tenant, &record(Kind::User, "b", Some("a@x")))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
    drop(tx);
    insert_all(&store, tenant, &[record(Kind::Group, "a", Some("a@x"))]).await;
    insert_all(
        &store,
        other_tenant,
        &[record(Kind::User, "a", Some("a@x"))],
    )
    .await;
    insert_all(
        &store,
        tenant,
        &[record(Kind::User, "c", None), record(Kind::User, "d", None)],
    )
    .await;
}

pub async fn stale_versions_are_refused(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let original = record(Kind::Group, "finance", None);
    insert_all(&store, tenant, std::slice::from_ref(&original)).await;

    let mut updated = original.clone();
    updated.version = 2;
    updated.data = "{\"v\":2}".to_string();
    let mut tx = store.begin_write(tenant).await.unwrap();
    tx.update(tenant, &updated).await.unwrap();
    tx.append_audit(tenant, &event("group.update", None, None, now()))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut stale = original.clone();
    stale.version = 2;
    let mut tx = store.begin_write(tenant).await.unwrap();
    let error = tx.update(tenant, &stale).await.unwrap_err();
    assert!(
        matches!(error, StoreError::VersionConflict { expected: 1, .. }),
        "{error:?}"
    );
    let mut missing = record(Kind::Group, "nobody", None);
    missing.version = 2;
    let error = tx.update(tenant, &missing).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    let error = tx
        .delete(tenant, Kind::Group, original.id, Some(1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::VersionConflict { .. }),
        "{error:?}"
    );
    drop(tx);

    let mut reader = store.reader().await.unwrap();
    let current = reader
        .get(tenant, Kind::Group, original.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.version, 2);
    assert_eq!(current.data, "{\"v\":2}");
}

pub async fn delete_removes_the_record_and_its_links(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let group = record(Kind::Group, "g", None);
    let user = record(Kind::User, "u", Some("u@x"));
    let unit = record(Kind::AdministrativeUnit, "au", None);
    insert_all(&store, tenant, &[group.clone(), user.clone(), unit.clone()]).await;
    let mut tx = store.begin_write(tenant).await.unwrap();
    let member = Link {
        rel: Rel::Member,
        source: group.id,
        source_kind: Kind::Group,
        target: user.id,
        target_kind: Kind::User,
    };
    let unit_member = Link {
        rel: Rel::UnitMember,
        source: unit.id,
        source_kind: Kind::AdministrativeUnit,
        target: user.id,
        target_kind: Kind::User,
    };
    assert!(tx.link(tenant, &member, now()).await.unwrap());
    assert!(tx.link(tenant, &unit_member, now()).await.unwrap());
    tx.delete(tenant, Kind::User, user.id, Some(1))
        .await
        .unwrap();
    let error = tx
        .delete(tenant, Kind::User, user.id, None)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    tx.append_audit(tenant, &event("user.delete", None, None, now()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut reader = store.reader().await.unwrap();
    assert_eq!(reader.get(tenant, Kind::User, user.id).await.unwrap(), None);
    assert!(
        reader
            .links_from(tenant, Rel::Member, group.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        reader
            .links_to(tenant, Rel::UnitMember, user.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        reader
            .get(tenant, Kind::Group, group.id)
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn listing_pages_in_sort_order(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let mut records: Vec<Record> = (0..25)
        .map(|i| record(Kind::User, &format!("user {:02}", i % 12), None))
        .collect();
    insert_all(&store, tenant, &records).await;
    insert_all(&store, tenant, &[record(Kind::Group, "user 00", None)]).await;
    records.sort_by(|a, b| (&a.sort_key, a.id).cmp(&(&b.sort_key, b.id)));
    let mut reader = store.reader().await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = reader
            .list(
                tenant,
                Kind::User,
                &ListQuery {
                    after: after.clone(),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(page.len() <= 10);
        let Some(last) = page.last() else { break };
        after = Some(Cursor {
            sort_key: last.sort_key.clone(),
            id: last.id,
        });
        seen.extend(page.into_iter().map(|r| r.id));
    }
    let expected: Vec<Uuid> = records.iter().map(|r| r.id).collect();
    assert_eq!(seen, expected);
}

pub async fn listing_filters_by_prefix_and_key2(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let mut a = record(Kind::User, "adele", None);
    a.key2 = Some("m1".to_string());
    let mut b = record(Kind::User, "adam", None);
    b.key2 = Some("m2".to_string());
    let c = record(Kind::User, "bianca", None);
    let d = record(Kind::User, "ad%_x", None);
    insert_all(
        &store,
        tenant,
        &[a.clone(), b.clone(), c.clone(), d.clone()],
    )
    .await;
    let mut reader = store.reader().await.unwrap();
    let query = ListQuery {
        prefix: Some("ad".to_string()),
        limit: 10,
        ..Default::default()
    };
    let names: Vec<String> = reader
        .list(tenant, Kind::User, &query)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.sort_key)
        .collect();
    assert_eq!(names, vec!["ad%_x", "adam", "adele"]);
    let query = ListQuery {
        prefix: Some("ad%".to_string()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        reader.list(tenant, Kind::User, &query).await.unwrap().len(),
        1,
        "prefix is literal, not a pattern"
    );
    let query = ListQuery {
        key2: Some("m2".to_string()),
        limit: 10,
        ..Default::default()
    };
    let found = reader.list(tenant, Kind::User, &query).await.unwrap();
    assert_eq!(found.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b.id]);
}

pub async fn sort_order_is_bytewise_on_every_backend(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let keys = [
        "zoë", "Zoe", "zoe", "a b", "ab", "a", "É", "e", "日本", "_x", "0",
    ];
    let records: Vec<Record> = keys.iter().map(|k| record(Kind::Device, k, None)).collect();
    insert_all(&store, tenant, &records).await;
    let mut reader = store.reader().await.unwrap();
    let listed: Vec<String> = reader
        .list(
            tenant,
            Kind::Device,
            &ListQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.sort_key)
        .collect();
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

pub async fn links_are_idempotent_and_paged(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let group = record(Kind::Group, "g", None);
    let users: Vec<Record> = (0..7)
        .map(|i| record(Kind::User, &format!("u{i}"), None))
        .collect();
    let mut all = users.clone();
    all.push(group.clone());
    insert_all(&store, tenant, &all).await;
    let mut tx = store.begin_write(tenant).await.unwrap();
    for user in &users {
        let link = Link {
            rel: Rel::Member,
            source: group.id,
            source_kind: Kind::Group,
            target: user.id,
            target_kind: Kind::User,
        };
        assert!(tx.link(tenant, &link, now()).await.unwrap());
        assert!(
            !tx.link(tenant, &link, now()).await.unwrap(),
            "second link is a no-op"
        );
    }
    assert!(
        tx.unlink(tenant, Rel::Member, group.id, users[0].id)
            .await
            .unwrap()
    );
    assert!(
        !tx.unlink(tenant, Rel::Member, group.id, users[0].id)
            .await
            .unwrap()
    );
    tx.append_audit(tenant, &event("group.members", None, None, now()))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut reader = store.reader().await.unwrap();
    let mut expected: Vec<Uuid> = users[1..].iter().map(|u| u.id).collect();
    expected.sort();
    let first = reader
        .links_from(tenant, Rel::Member, group.id, None, 4)
        .await
        .unwrap();
    let second = reader
        .links_from(
            tenant,
            Rel::Member,
            group.id,
            first.last().map(|l| l.target),
            4,
        )
        .await
        .unwrap();
    let targets: Vec<Uuid> = first
        .iter()
        .chain(second.iter())
        .map(|l| l.target)
        .collect();
    assert_eq!(targets, expected);
    assert!(
        first
            .iter()
            .all(|l| l.target_kind == Kind::User && l.source_kind == Kind::Group)
    );
    let to = reader
        .links_to(tenant, Rel::Member, users[3].id)
        .await
        .unwrap();
    assert_eq!(to.len(), 1);
    assert_eq!(to[0].source, group.id);
    assert!(
        reader
            .links_from(tenant, Rel::Owner, group.id, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "relations are separate"
    );
}

pub async fn dropped_transactions_change_nothing(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let head_before = store.audit_head(tenant).await.unwrap();
    let r = record(Kind::User, "u", None);
    {
        let mut tx = store.begin_write(tenant).await.unwrap();
        tx.insert(tenant, &r).await.unwrap();
        tx.append_audit(tenant, &event("user.create", None, None, now()))
            .await
            .unwrap();
        // dropped without commit
    }
    let mut reader = store.reader().await.unwrap();
    assert_eq!(reader.get(tenant, Kind::User, r.id).await.unwrap(), None);
    assert_eq!(store.audit_head(tenant).await.unwrap(), head_before);
    // The tenant is still writable: the dropped transaction released its lock.
    insert_all(&store, tenant, std::slice::from_ref(&r)).await;
}

pub async fn changes_without_an_audit_event_are_refused(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let r = record(Kind::User, "u", None);
    let mut tx = store.begin_write(tenant).await.unwrap();
    tx.insert(tenant, &r).await.unwrap();
    let error = tx.commit().await.unwrap_err();
    assert!(matches!(error, StoreError::MissingAuditEvent), "{error:?}");
    let mut reader = store.reader().await.unwrap();
    assert_eq!(reader.get(tenant, Kind::User, r.id).await.unwrap(), None);
    // A transaction that changed nothing may commit without an event.
    let tx = store.begin_write(tenant).await.unwrap();
    tx.commit().await.unwrap();
}

/// Checks that a tenant's stored chain links up, and returns its length.
async fn check_chain(store: &Arc<dyn Store>, tenant: TenantId) -> i64 {
    let mut previous = GENESIS_HASH.to_string();
    let mut expected_seq = 1;
    let mut after = 0;
    loop {
        let rows = store.audit_scan(tenant, after, 7).await.unwrap();
        if rows.is_empty() {
            break;
        }
        for row in rows {
            assert_eq!(row.seq, expected_seq);
            assert_eq!(row.prev_hash, previous);
            assert_eq!(
                row.hash,
                audit_link_hash(&row.prev_hash, row.seq, &row.body)
            );
            previous = row.hash.clone();
            expected_seq += 1;
            after = row.seq;
        }
    }
    let head = store.audit_head(tenant).await.unwrap().unwrap();
    assert_eq!((head.seq, head.hash), (expected_seq - 1, previous));
    expected_seq - 1
}

pub async fn audit_chain_links_every_event(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let mut tx = store.begin_write(tenant).await.unwrap();
    let appended = tx
        .append_audit(tenant, &event("a.one", Some("actor"), Some("t1"), now()))
        .await
        .unwrap();
    assert_eq!(appended.seq, 2);
    tx.append_audit(tenant, &event("a.two", Some("actor"), Some("t2"), now()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    insert_all(&store, tenant, &[record(Kind::User, "u", None)]).await;
    assert_eq!(check_chain(&store, tenant).await, 4);
}

pub async fn audit_chains_are_per_tenant(store: Arc<dyn Store>) {
    let first = new_tenant(&store).await;
    let second = new_tenant(&store).await;
    insert_all(&store, first, &[record(Kind::User, "u", None)]).await;
    insert_all(&store, first, &[record(Kind::User, "v", None)]).await;
    insert_all(&store, second, &[record(Kind::User, "w", None)]).await;
    assert_eq!(check_chain(&store, first).await, 3);
    assert_eq!(check_chain(&store, second).await, 2);
}

pub async fn audit_queries_filter_and_page(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let mut tx = store.begin_write(tenant).await.unwrap();
    for i in 0..10i64 {
        let actor = if i % 2 == 0 { "alice" } else { "bob" };
        let action = if i < 5 { "user.create" } else { "group.create" };
        let time = Timestamp::from_unix_micros(1_000_000 * (i + 1));
        tx.append_audit(
            tenant,
            &event(action, Some(actor), Some(&format!("t{i}")), time),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let query = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            limit: 100,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let by_actor = store
        .audit_query(tenant, &query(|q| q.actor_id = Some("alice".into())))
        .await
        .unwrap();
    assert_eq!(by_actor.len(), 5);
    assert!(
        by_actor.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first"
    );
    let by_action = store
        .audit_query(tenant, &query(|q| q.action = Some("group.create".into())))
        .await
        .unwrap();
    assert_eq!(by_action.len(), 5);
    let by_target = store
        .audit_query(tenant, &query(|q| q.target_id = Some("t3".into())))
        .await
        .unwrap();
    assert_eq!(by_target.len(), 1);
    assert_eq!(by_target[0].actor_id.as_deref(), Some("bob"));
    let by_time = store
        .audit_query(
            tenant,
            &query(|q| {
                q.since = Some(Timestamp::from_unix_micros(3_000_000));
                q.until = Some(Timestamp::from_unix_micros(5_000_000));
            }),
        )
        .await
        .unwrap();
    assert_eq!(by_time.len(), 3);
    let mut page_query = AuditQuery {
        limit: 4,
        ..Default::default()
    };
    let mut total = 0;
    loop {
        let page = store.audit_query(tenant, &page_query).await.unwrap();
        if page.is_empty() {
            break;
        }
        total += page.len();
        page_query.before_seq = page.last().map(|r| r.seq);
    }
    assert_eq!(total, 11, "ten events and the tenant's creation");
}

pub async fn concurrent_writers_keep_one_chain(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..8 {
                let mut tx = store.begin_write(tenant).await.unwrap();
                tx.insert(
                    tenant,
                    &record(
                        Kind::User,
                        &format!("w{worker}-{i}"),
                        Some(&format!("w{worker}-{i}@x")),
                    ),
                )
                .await
                .unwrap();
                tx.append_audit(tenant, &event("user.create", None, None, now()))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(check_chain(&store, tenant).await, 49);
}

/// Concurrent writers of one tenant, some of which fail (a duplicate key, a
/// change without an event, a transaction dropped, a task cancelled while it
/// holds its write): every write that committed is there with its event, in one
/// chain; nothing of the others is.
pub async fn writers_that_fail_leave_the_others_whole(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let taken = record(Kind::User, "taken", Some("taken@x"));
    insert_all(&store, tenant, std::slice::from_ref(&taken)).await;
    // A writer cancelled while it holds its transaction.
    let stuck = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx = store.begin_write(tenant).await.unwrap();
            tx.insert(
                tenant,
                &record(Kind::User, "cancelled", Some("cancelled@x")),
            )
            .await
            .unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            tx.commit().await.unwrap();
        })
    };
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            let mut failed = Vec::new();
            let mut unknown = Vec::new();
            for i in 0..12 {
                let r = record(
                    Kind::User,
                    &format!("w{worker}-{i}"),
                    Some(&format!("w{worker}-{i}@x")),
                );
                let mut tx = store.begin_write(tenant).await.unwrap();
                tx.insert(tenant, &r).await.unwrap();
                match (worker + i) % 4 {
                    // A second insert on a taken key: refused, and the transaction
                    // (aborted on PostgreSQL) is dropped.
                    0 => {
                        let error = tx.insert(tenant, &taken_again()).await.unwrap_err();
                        assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
                        drop(tx);
                        failed.push(r.id);
                    }
                    // A change without its event.
                    1 => {
                        let error = tx.commit().await.unwrap_err();
                        assert!(matches!(error, StoreError::MissingAuditEvent), "{error:?}");
                        failed.push(r.id);
                    }
                    // Dropped after its event.
                    2 if i % 3 == 0 => {
                        tx.append_audit(tenant, &event("user.create", None, None, now()))
                            .await
                            .unwrap();
                        drop(tx);
                        failed.push(r.id);
                    }
                    // A commit whose caller stops waiting at once: it goes on
                    // or not, but never takes the others with it.
                    3 if i % 5 == 0 => {
                        tx.append_audit(tenant, &event("user.create", None, None, now()))
                            .await
                            .unwrap();
                        match tokio::time::timeout(std::time::Duration::ZERO, tx.commit()).await {
                            Ok(Ok(())) => committed.push(r.id),
                            Ok(Err(error)) => panic!("{error:?}"),
                            Err(_) => unknown.push(r.id),
                        }
                    }
                    _ => {
                        tx.append_audit(tenant, &event("user.create", None, None, now()))
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                        committed.push(r.id);
                    }
                }
            }
            (committed, failed, unknown)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    stuck.abort();
    let _ = stuck.await;
    let (mut committed, mut failed, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    for task in tasks {
        let (c, f, u) = task.await.unwrap();
        committed.extend(c);
        failed.extend(f);
        unknown.extend(u);
    }
    // Give commits whose callers stopped waiting time to end.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!committed.is_empty() && !failed.is_empty());
    let mut reader = store.reader().await.unwrap();
    for id in &committed {
        assert!(reader.get(tenant, Kind::User, *id).await.unwrap().is_some());
    }
    for id in &failed {
        assert_eq!(reader.get(tenant, Kind::User, *id).await.unwrap(), None);
    }
    assert_eq!(
        reader
            .get_by_key1(tenant, Kind::User, "cancelled@x")
            .await
            .unwrap(),
        None
    );
    let mut landed = committed.len();
    for id in &unknown {
        if reader.get(tenant, Kind::User, *id).await.unwrap().is_some() {
            landed += 1;
        }
    }
    // The tenant's creation, the first user, and one event per write that landed.
    assert_eq!(check_chain(&store, tenant).await, landed as i64 + 2);
}

fn taken_again() -> Record {
    record(Kind::User, "taken", Some("taken@x"))
}

pub async fn default_tenant_is_created_once(store: Arc<dyn Store>) {
    assert_eq!(store.default_tenant().await.unwrap(), None);
    assert!(store.tenants().await.unwrap().is_empty());
    let first = Tenant {
        id: TenantId::new_random(),
        name: "First".to_string(),
        created: now(),
    };
    let mut tx = store.create_tenant(&first, true).await.unwrap();
    tx.append_audit(first.id, &event("tenant.create", None, None, now()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let second = Tenant {
        id: TenantId::new_random(),
        name: "Second".to_string(),
        created: now(),
    };
    let error = store.create_tenant(&second, true).await.err().unwrap();
    assert!(matches!(error, StoreError::TenantExists), "{error:?}");
    assert_eq!(store.default_tenant().await.unwrap(), Some(first.id));
    let tenants = store.tenants().await.unwrap();
    assert_eq!(tenants, vec![first]);
}

pub async fn writing_to_an_unknown_tenant_fails(store: Arc<dyn Store>) {
    let error = store
        .begin_write(TenantId::new_random())
        .await
        .err()
        .unwrap();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub async fn tenants_are_isolated(store: Arc<dyn Store>) {
    let first = new_tenant(&store).await;
    let second = new_tenant(&store).await;
    let r = record(Kind::User, "u", Some("u@x"));
    insert_all(&store, first, std::slice::from_ref(&r)).await;
    let mut reader = store.reader().await.unwrap();
    assert_eq!(reader.get(second, Kind::User, r.id).await.unwrap(), None);
    assert_eq!(
        reader.get_by_key1(second, Kind::User, "u@x").await.unwrap(),
        None
    );
    assert!(
        reader
            .list(
                second,
                Kind::User,
                &ListQuery {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    let events = store
        .audit_query(
            second,
            &AuditQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
}

fn session(id: &str, user: Option<Uuid>, expires: Timestamp) -> SessionRow {
    SessionRow {
        id: id.to_string(),
        user_id: user,
        created: now(),
        last_seen: now(),
        expires,
        revoked: None,
        version: 1,
        data: r#"{"m":1}"#.to_string(),
    }
}

fn later(seconds: i64) -> Timestamp {
    Timestamp::from_unix_micros(now().unix_micros() + seconds * 1_000_000)
}

/// A walk over one kind of row: only ids with the prefix (a `%` or `_` in
/// it is no pattern), in id order, page after page, in the tenant.
pub async fn sessions_are_walked_by_prefix(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let other = new_tenant(&store).await;
    let now = later(0);
    for id in [
        "risk-profile:b",
        "risk-profile:a",
        "risk-profile:c",
        "risk-profile;x",
        "risk-profilez",
        "risk-prof_le:d",
        "session-1",
    ] {
        let row = SessionRow::transient(id.to_string(), now, 3600, "{}".to_string());
        store.session_insert(tenant, &row).await.unwrap();
    }
    let row = SessionRow::transient("risk-profile:o".to_string(), now, 3600, "{}".to_string());
    store.session_insert(other, &row).await.unwrap();
    let ids = |rows: Vec<SessionRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let first = store
        .sessions_by_prefix(tenant, "risk-profile:", None, 2)
        .await
        .unwrap();
    assert_eq!(ids(first), ["risk-profile:a", "risk-profile:b"]);
    let rest = store
        .sessions_by_prefix(tenant, "risk-profile:", Some("risk-profile:b"), 10)
        .await
        .unwrap();
    assert_eq!(ids(rest), ["risk-profile:c"]);
    let pattern = store
        .sessions_by_prefix(tenant, "risk-prof_", None, 10)
        .await
        .unwrap();
    assert_eq!(ids(pattern), ["risk-prof_le:d"], "no wildcard");
    assert!(
        store
            .sessions_by_prefix(tenant, "risk-profile:", Some("risk-profile:c"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn sessions_round_trip_and_revoke(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let other = new_tenant(&store).await;
    let user = Uuid::new_v4();
    let first = session("s1", Some(user), later(3600));
    store.session_insert(tenant, &first).await.unwrap();
    assert!(matches!(
        store.session_insert(tenant, &first).await.unwrap_err(),
        StoreError::Duplicate { .. }
    ));
    assert_eq!(
        store.session_get(tenant, "s1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.session_get(other, "s1").await.unwrap(), None);

    let mut updated = first.clone();
    updated.version = 2;
    updated.data = r#"{"m":2}"#.to_string();
    store.session_update(tenant, &updated).await.unwrap();
    // A second update from the same starting version loses.
    assert!(matches!(
        store.session_update(tenant, &updated).await.unwrap_err(),
        StoreError::VersionConflict { .. }
    ));
    store.session_touch(tenant, "s1", later(10)).await.unwrap();
    let stored = store.session_get(tenant, "s1").await.unwrap().unwrap();
    assert_eq!(stored.last_seen, later(10));
    assert_eq!(stored.version, 2);

    store
        .session_insert(tenant, &session("s2", Some(user), later(3600)))
        .await
        .unwrap();
    store
        .session_insert(tenant, &session("s3", Some(user), later(-1)))
        .await
        .unwrap();
    store
        .session_insert(tenant, &session("flow", None, later(60)))
        .await
        .unwrap();
    let live = store.sessions_of_user(tenant, user, now()).await.unwrap();
    assert_eq!(live.len(), 2, "the expired session is not live");

    // Revoking "everywhere else" keeps one session.
    assert_eq!(
        store
            .sessions_revoke_user(tenant, user, Some("s1"), later(20))
            .await
            .unwrap(),
        2
    );
    assert!(
        store
            .session_get(tenant, "s1")
            .await
            .unwrap()
            .unwrap()
            .revoked
            .is_none()
    );
    assert_eq!(
        store
            .sessions_revoke_user(tenant, user, None, later(20))
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .sessions_of_user(tenant, user, now())
            .await
            .unwrap()
            .is_empty()
    );
    let revoked = store.session_get(tenant, "s2").await.unwrap().unwrap();
    assert_eq!(revoked.revoked, Some(later(20)));
    assert_eq!(
        revoked.version, 2,
        "revocation is a change other writers see"
    );

    assert!(store.session_delete(tenant, "s2").await.unwrap());
    assert!(!store.session_delete(tenant, "s2").await.unwrap());
    assert_eq!(
        store.sessions_purge(now()).await.unwrap(),
        1,
        "only s3 had ended"
    );
    assert!(store.session_get(tenant, "flow").await.unwrap().is_some());
}

/// Risk detections: a batch is all or none; queries filter by user, kind,
/// level and time, page newest first by a cursor that breaks ties by id, and
/// see only their tenant; a purge by age removes only the older ones.
pub async fn risk_detections_filter_page_and_purge(store: Arc<dyn Store>) {
    use tessera_store::{RiskDetectionQuery, RiskDetectionRow};
    let tenant = new_tenant(&store).await;
    let other = new_tenant(&store).await;
    let user = Uuid::new_v4();
    let row = |i: i64| RiskDetectionRow {
        id: Uuid::new_v4(),
        detected: later(i / 2),
        user_id: (i % 2 == 0).then_some(user),
        principal_type: if i == 5 { "servicePrincipal" } else { "user" }.into(),
        event_type: if i % 3 == 0 {
            "passwordSpray"
        } else {
            "anonymizedIPAddress"
        }
        .into(),
        level: if i == 6 { "high" } else { "medium" }.into(),
        timing: "realTime".into(),
        sign_in_id: Some(Uuid::new_v4()),
        ip: Some(format!("203.0.113.{i}")),
        body: format!("{{\"i\":{i}}}"),
    };
    let rows: Vec<RiskDetectionRow> = (0..7).map(row).collect();
    let batch: Vec<(TenantId, RiskDetectionRow)> =
        rows.iter().map(|r| (tenant, r.clone())).collect();
    store.risk_detection_append_batch(&batch).await.unwrap();
    store
        .risk_detection_append_batch(&[(other, row(0))])
        .await
        .unwrap();
    // All or none: a repeated key keeps the batch out.
    let mut repeated = vec![(tenant, row(9))];
    repeated.push((tenant, rows[0].clone()));
    assert!(store.risk_detection_append_batch(&repeated).await.is_err());
    let query = |q: RiskDetectionQuery| {
        let store = store.clone();
        async move { store.risk_detection_query(tenant, &q).await.unwrap() }
    };
    let everything = query(RiskDetectionQuery {
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(
        everything.len(),
        7,
        "only this tenant's, and not the refused batch's"
    );
    assert_eq!(everything[0].detected, later(3), "newest first");
    assert_eq!(
        everything.iter().find(|r| r.id == rows[4].id),
        Some(&rows[4]),
        "read back whole"
    );
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = query(RiskDetectionQuery {
            before,
            limit: 2,
            ..Default::default()
        })
        .await;
        if page.is_empty() {
            break;
        }
        before = page.last().map(|r| (r.detected, r.id));
        paged.extend(page.into_iter().map(|r| r.id));
    }
    assert_eq!(paged, everything.iter().map(|r| r.id).collect::<Vec<_>>());
    let of_user = query(RiskDetectionQuery {
        user_id: Some(user),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(of_user.len(), 4);
    let sprays = query(RiskDetectionQuery {
        event_type: Some("passwordSpray".into()),
        level: Some("medium".into()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(sprays.len(), 2, "rows 0 and 3 (6 is high)");
    let workloads = query(RiskDetectionQuery {
        principal_type: Some("servicePrincipal".into()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(workloads.len(), 1, "row 5");
    assert_eq!(workloads[0].id, rows[5].id);
    let window = query(RiskDetectionQuery {
        since: Some(later(1)),
        until: Some(later(2)),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(window.len(), 4);
    assert_eq!(
        store.risk_detection_purge(tenant, later(2)).await.unwrap(),
        4
    );
    assert_eq!(
        query(RiskDetectionQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    let kept = store
        .risk_detection_query(
            other,
            &RiskDetectionQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "another tenant's are not purged");
}

pub async fn sign_in_log_filters_and_pages(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let user = Uuid::new_v4();
    let mut written = Vec::new();
    for i in 0..7i64 {
        let row = SignInRow {
            id: Uuid::new_v4(),
            // Two entries share each time, so the cursor must break ties by id.
            time: later(i / 2),
            user_id: (i % 2 == 0).then_some(user),
            user_name: if i % 2 == 0 {
                "adele@x".to_string()
            } else {
                "nobody@x".to_string()
            },
            application: (i % 3 == 0).then(|| "app-a".to_string()),
            result: if i == 6 { "success" } else { "failure" }.to_string(),
            failure_code: (i != 6).then(|| "invalid_credentials".to_string()),
            correlation_id: format!("c{i}"),
            body: "{}".to_string(),
            attempts: 1,
            aggregate_key: None,
        };
        store.sign_in_append(tenant, &row).await.unwrap();
        written.push(row);
    }
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .sign_in_query(
                tenant,
                &SignInQuery {
                    before,
                    limit: 3,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|r| (r.time, r.id));
        all.extend(page);
    }
    assert_eq!(all.len(), 7, "paging loses or repeats nothing");

    // A batch is all or nothing: one bad entry (a repeated key) keeps the rest out.
    let other = new_tenant(&store).await;
    let mut good = written[0].clone();
    good.id = Uuid::new_v4();
    let batch = [(other, good.clone()), (tenant, written[1].clone())];
    assert!(store.sign_in_append_batch(&batch).await.is_err());
    let in_other = store
        .sign_in_query(
            other,
            &SignInQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(in_other.is_empty(), "nothing of a failed batch is kept");
    store.sign_in_append_batch(&[(other, good)]).await.unwrap();
    // A large batch (several multi-row statements) keeps every entry, and a bad
    // entry in its last statement still keeps all of them out.
    let third = new_tenant(&store).await;
    let many: Vec<(TenantId, SignInRow)> = (0..70)
        .map(|i| {
            let mut row = written[0].clone();
            row.id = Uuid::new_v4();
            row.correlation_id = format!("many{i}");
            (third, row)
        })
        .collect();
    let mut spoiled = many.clone();
    spoiled.push(spoiled[0].clone());
    assert!(store.sign_in_append_batch(&spoiled).await.is_err());
    let everything = SignInQuery {
        limit: 1000,
        ..Default::default()
    };
    let kept = store.sign_in_query(third, &everything).await.unwrap();
    assert!(kept.is_empty(), "a failed large batch keeps nothing");
    store.sign_in_append_batch(&many).await.unwrap();
    let kept = store.sign_in_query(third, &everything).await.unwrap();
    assert_eq!(kept.len(), 70);
    let mut expected = written.clone();
    expected.sort_by_key(|r| std::cmp::Reverse((r.time, r.id)));
    assert_eq!(all, expected, "newest first, ties by id");

    let of_user = store
        .sign_in_query(
            tenant,
            &SignInQuery {
                user_id: Some(user),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(of_user.len(), 4);
    let by_name = store
        .sign_in_query(
            tenant,
            &SignInQuery {
                user_name: Some("nobody@x".to_string()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_name.len(), 3);
    let successes = store
        .sign_in_query(
            tenant,
            &SignInQuery {
                result: Some("success".to_string()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(successes.len(), 1);
    let window = store
        .sign_in_query(
            tenant,
            &SignInQuery {
                since: Some(later(1)),
                until: Some(later(2)),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(window.len(), 4);
    // One entry by its correlation id; by application; by failure code.
    let count = |query: SignInQuery| {
        let store = store.clone();
        async move { store.sign_in_query(tenant, &query).await.unwrap() }
    };
    let found = count(SignInQuery {
        correlation_id: Some("c3".to_string()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].correlation_id, "c3");
    let of_app = count(SignInQuery {
        application: Some("app-a".to_string()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(of_app.len(), 3, "entries 0, 3 and 6");
    let failed_credentials = count(SignInQuery {
        failure_code: Some("invalid_credentials".to_string()),
        application: Some("app-a".to_string()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(failed_credentials.len(), 2, "entries 0 and 3");
}

fn sign_in_at(time: Timestamp, aggregate_key: Option<&str>) -> SignInRow {
    SignInRow {
        id: Uuid::new_v4(),
        time,
        user_id: None,
        user_name: "app:sync".to_string(),
        application: Some("Sync".to_string()),
        result: "failure".to_string(),
        failure_code: Some("invalid_client".to_string()),
        correlation_id: "c".to_string(),
        body: format!("{{\"at\":{}}}", time.unix_micros()),
        attempts: 1,
        aggregate_key: aggregate_key.map(str::to_string),
    }
}

async fn all_sign_ins(store: &Arc<dyn Store>, tenant: TenantId) -> Vec<SignInRow> {
    store
        .sign_in_query(
            tenant,
            &SignInQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

/// The SIEM export reads the sign-in log and the detections by their numbers:
/// per tenant, from 1 without gaps, in the order of the batches; an aggregate
/// that grows is numbered anew; concurrent batches of one tenant each get their
/// own run of numbers, and none is read twice or missed; a purge never lowers
/// the head, so numbers are never given twice.
pub async fn export_numbers_are_gapless_and_ordered(store: Arc<dyn Store>) {
    use tessera_store::{NumberedLog, RiskDetectionRow};
    let tenant = new_tenant(&store).await;
    let other = new_tenant(&store).await;
    let a = sign_in_at(later(0), None);
    let b = sign_in_at(later(1), Some("k"));
    let c = sign_in_at(later(2), None);
    store
        .sign_in_append_batch(&[(tenant, a.clone()), (other, c.clone()), (tenant, b.clone())])
        .await
        .unwrap();
    store.sign_in_append(tenant, &c).await.unwrap();
    let read = store.sign_in_scan(tenant, 0, 100).await.unwrap();
    let seen: Vec<(i64, Uuid)> = read.iter().map(|(n, e)| (*n, e.id)).collect();
    assert_eq!(seen, vec![(1, a.id), (2, b.id), (3, c.id)]);
    assert_eq!(store.sign_in_scan(other, 0, 100).await.unwrap().len(), 1);
    // The aggregate grows: it is read again, after everything before.
    store
        .sign_in_append(tenant, &sign_in_at(later(3), Some("k")))
        .await
        .unwrap();
    let again = store.sign_in_scan(tenant, 3, 100).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].0, again[0].1.id, again[0].1.attempts),
        (4, b.id, 2)
    );
    assert!(store.sign_in_scan(tenant, 4, 100).await.unwrap().is_empty());
    let head = store
        .numbered_head(tenant, NumberedLog::SignIns)
        .await
        .unwrap();
    assert_eq!(head, 4);
    assert_eq!(
        store
            .numbered_head(new_tenant(&store).await, NumberedLog::SignIns)
            .await
            .unwrap(),
        0
    );
    // Pages: the limit holds and the next page starts after it.
    assert_eq!(store.sign_in_scan(tenant, 0, 2).await.unwrap().len(), 2);

    // Many writers at once: every number once, none missing.
    let mut writers = Vec::new();
    for w in 0..6 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..5 {
                let row = || RiskDetectionRow {
                    id: Uuid::new_v4(),
                    detected: later(w * 10 + i),
                    user_id: None,
                    principal_type: "user".into(),
                    event_type: "passwordSpray".into(),
                    level: "medium".into(),
                    timing: "realTime".into(),
                    sign_in_id: None,
                    ip: None,
                    body: "{}".into(),
                };
                store
                    .risk_detection_append_batch(&[(tenant, row()), (tenant, row())])
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let detections = store.risk_detection_scan(tenant, 0, 1000).await.unwrap();
    let numbers: Vec<i64> = detections.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=60).collect::<Vec<i64>>());
    let head = store
        .numbered_head(tenant, NumberedLog::RiskDetections)
        .await
        .unwrap();
    assert_eq!(head, 60);
    assert_eq!(
        store
            .risk_detection_scan(tenant, 58, 10)
            .await
            .unwrap()
            .len(),
        2
    );

    // Everything purged: the heads stay, and the next entries go on from them.
    let gone = later(100);
    assert_eq!(store.sign_in_purge(tenant, gone, 0).await.unwrap(), 3);
    assert_eq!(store.risk_detection_purge(tenant, gone).await.unwrap(), 60);
    for (log, head) in [(NumberedLog::SignIns, 4), (NumberedLog::RiskDetections, 60)] {
        assert_eq!(store.numbered_head(tenant, log).await.unwrap(), head);
    }
    let next = sign_in_at(later(101), None);
    store.sign_in_append(tenant, &next).await.unwrap();
    let read = store.sign_in_scan(tenant, 0, 100).await.unwrap();
    assert_eq!(
        read.iter().map(|(n, e)| (*n, e.id)).collect::<Vec<_>>(),
        vec![(5, next.id)]
    );
    assert_eq!(
        store
            .numbered_head(other, NumberedLog::SignIns)
            .await
            .unwrap(),
        1
    );
}

/// Revocations are read by every node in the order of their numbers, across
/// tenants: each batch whole, none twice; purged once they expire.
pub async fn revocations_are_read_in_order_and_purged(store: Arc<dyn Store>) {
    use tessera_store::RevocationRow;
    let tenant = new_tenant(&store).await;
    let other = new_tenant(&store).await;
    let row = |tenant: TenantId, subject: &str, expires: Timestamp| RevocationRow {
        tenant,
        kind: "session".into(),
        subject: subject.into(),
        since: later(0),
        expires,
        reason: "signedOut".into(),
    };
    let mine = |read: &[(i64, RevocationRow)]| -> Vec<(TenantId, String)> {
        read.iter()
            .filter(|(_, r)| r.tenant == tenant || r.tenant == other)
            .map(|(_, r)| (r.tenant, r.subject.clone()))
            .collect()
    };
    // Reading as of long ago, every row is still in force.
    let long_ago = later(-7200);
    store.revocations_append(&[]).await.unwrap();
    let start = store.revocations_after(0, long_ago, 10_000).await.unwrap();
    let from = start.last().map_or(0, |(n, _)| *n);
    store
        .revocations_append(&[
            row(tenant, "a", later(3600)),
            row(other, "b", later(-1)),
            row(tenant, "c", later(3600)),
        ])
        .await
        .unwrap();
    // Many writers at once: every row once, numbers only rising.
    let mut writers = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..3 {
                store
                    .revocations_append(&[
                        row(tenant, &format!("w{w}-{i}-1"), later(3600)),
                        row(tenant, &format!("w{w}-{i}-2"), later(3600)),
                    ])
                    .await
                    .unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let read = store
        .revocations_after(from, long_ago, 10_000)
        .await
        .unwrap();
    let numbers: Vec<i64> = read.iter().map(|(n, _)| *n).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    let ours = mine(&read);
    assert_eq!(ours.len(), 27);
    assert_eq!(
        ours[..3].to_vec(),
        vec![
            (tenant, "a".to_string()),
            (other, "b".to_string()),
            (tenant, "c".to_string())
        ]
    );
    // Each batch's two rows are next to each other.
    for pair in ours[3..].chunks(2) {
        assert_eq!(
            pair[0].1.strip_suffix("-1").unwrap(),
            pair[1].1.strip_suffix("-2").unwrap()
        );
    }
    let first = read
        .iter()
        .find(|(_, r)| r.subject == "a" && r.tenant == tenant)
        .unwrap();
    assert_eq!(first.1, row(tenant, "a", later(3600)));
    // Pages: after a number, what follows it.
    let page = store.revocations_after(first.0, long_ago, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    assert!(page[0].0 > first.0);
    // Read as of now, the expired one is left out.
    let current = mine(
        &store
            .revocations_after(from, later(0), 10_000)
            .await
            .unwrap(),
    );
    assert_eq!(current.len(), 26);
    assert!(!current.contains(&(other, "b".to_string())));
    // The expired one goes; the numbers of the rest stay, and new ones follow.
    assert!(store.revocations_purge(later(0)).await.unwrap() >= 1);
    let kept = mine(
        &store
            .revocations_after(from, long_ago, 10_000)
            .await
            .unwrap(),
    );
    assert_eq!(kept.len(), 26);
    assert!(!kept.contains(&(other, "b".to_string())));
    store
        .revocations_append(&[row(other, "d", later(3600))])
        .await
        .unwrap();
    let last = store
        .revocations_after(from, long_ago, 10_000)
        .await
        .unwrap();
    let (n, newest) = last.iter().rfind(|(_, r)| r.tenant == other).unwrap();
    assert_eq!(newest.subject, "d");
    assert!(*n > *numbers.last().unwrap());

    // In a directory change's transaction: seen when it commits, not if it is
    // dropped; only of its own tenant.
    {
        let mut tx = store.begin_write(tenant).await.unwrap();
        tx.revocations_append(&[row(tenant, "dropped", later(3600))])
            .await
            .unwrap();
    }
    let mut tx = store.begin_write(tenant).await.unwrap();
    assert!(
        tx.revocations_append(&[row(other, "theirs", later(3600))])
            .await
            .is_err()
    );
    tx.revocations_append(&[row(tenant, "committed", later(3600))])
        .await
        .unwrap();
    tx.append_audit(tenant, &event("user.update", None, None, now()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let seen = mine(
        &store
            .revocations_after(from, long_ago, 10_000)
            .await
            .unwrap(),
    );
    assert!(seen.contains(&(tenant, "committed".to_string())));
    assert!(!seen.contains(&(tenant, "dropped".to_string())));
    assert!(!seen.contains(&(other, "theirs".to_string())));
}

pub async fn sign_in_aggregates_merge_by_key(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let other = new_tenant(&store).await;
    let first = sign_in_at(later(0), Some("a"));
    let plain = sign_in_at(later(3), None);
    // In one batch: two of "a" merge, "b" stays apart, and the other tenant's "a"
    // is its own.
    store
        .sign_in_append_batch(&[
            (tenant, first.clone()),
            (tenant, sign_in_at(later(1), Some("b"))),
            (tenant, sign_in_at(later(5), Some("a"))),
            (other, sign_in_at(later(2), Some("a"))),
            (tenant, plain.clone()),
        ])
        .await
        .unwrap();
    // Later batches add to the entry; an earlier attempt does not move it back.
    let mut three = sign_in_at(later(9), Some("a"));
    three.attempts = 3;
    store.sign_in_append(tenant, &three).await.unwrap();
    store
        .sign_in_append(tenant, &sign_in_at(later(7), Some("a")))
        .await
        .unwrap();
    // A failed batch adds nothing to an aggregate.
    assert!(
        store
            .sign_in_append_batch(&[
                (tenant, sign_in_at(later(10), Some("a"))),
                (tenant, plain.clone()),
            ])
            .await
            .is_err()
    );

    let rows = all_sign_ins(&store, tenant).await;
    assert_eq!(rows.len(), 3, "a, b and the plain entry: {rows:?}");
    let a = rows
        .iter()
        .find(|r| r.aggregate_key.as_deref() == Some("a"))
        .unwrap();
    assert_eq!(a.attempts, 6);
    assert_eq!(a.time, later(9), "the latest attempt");
    assert_eq!(
        (a.id, &a.body),
        (first.id, &first.body),
        "the first attempt's entry stays"
    );
    let b = rows
        .iter()
        .find(|r| r.aggregate_key.as_deref() == Some("b"))
        .unwrap();
    assert_eq!((b.attempts, b.time), (1, later(1)));
    let stored_plain = rows.iter().find(|r| r.id == plain.id).unwrap();
    assert_eq!(stored_plain, &plain);
    let in_other = all_sign_ins(&store, other).await;
    assert_eq!(in_other.len(), 1);
    assert_eq!(in_other[0].attempts, 1);
}

pub async fn sign_in_retention_by_age_and_size(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let other = new_tenant(&store).await;
    // Thirty entries, two at each second (ties are broken by id).
    let written: Vec<(TenantId, SignInRow)> = (0..30)
        .map(|i| (tenant, sign_in_at(later(i / 2), None)))
        .collect();
    store.sign_in_append_batch(&written).await.unwrap();
    let theirs: Vec<(TenantId, SignInRow)> = (0..5)
        .map(|i| (other, sign_in_at(later(i), None)))
        .collect();
    store.sign_in_append_batch(&theirs).await.unwrap();

    // By age: everything before second 5 (ten entries).
    assert_eq!(
        store.sign_in_purge(tenant, later(5), 1000).await.unwrap(),
        10
    );
    let rows = all_sign_ins(&store, tenant).await;
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r.time >= later(5)));
    // By size: the seven newest stay, whatever their age.
    assert_eq!(store.sign_in_purge(tenant, later(0), 7).await.unwrap(), 13);
    let mut expected: Vec<SignInRow> = written.into_iter().map(|(_, r)| r).collect();
    expected.sort_by_key(|r| std::cmp::Reverse((r.time, r.id)));
    expected.truncate(7);
    assert_eq!(all_sign_ins(&store, tenant).await, expected);
    assert_eq!(store.sign_in_purge(tenant, later(0), 7).await.unwrap(), 0);
    assert_eq!(
        all_sign_ins(&store, other).await.len(),
        5,
        "another tenant's entries are its own"
    );

    // More than one step's worth goes, in steps.
    let many: Vec<(TenantId, SignInRow)> = (0..10_050)
        .map(|i| (other, sign_in_at(later(100 + i / 100), None)))
        .collect();
    store.sign_in_append_batch(&many).await.unwrap();
    assert_eq!(
        store.sign_in_purge(other, later(0), 1).await.unwrap(),
        10_054
    );
    assert_eq!(all_sign_ins(&store, other).await.len(), 1);
    // Either limit is enough to go: age takes the last one too.
    assert_eq!(
        store.sign_in_purge(other, later(1_000), 1).await.unwrap(),
        1
    );
}

pub async fn database_size_is_reported(store: Arc<dyn Store>) {
    let empty = store.database_size().await.unwrap();
    assert!(empty > 0);
    let tenant = new_tenant(&store).await;
    let rows: Vec<(TenantId, SignInRow)> = (0..2_000)
        .map(|i| {
            let mut row = sign_in_at(later(i), None);
            row.body = "x".repeat(1_000);
            (tenant, row)
        })
        .collect();
    store.sign_in_append_batch(&rows).await.unwrap();
    let grown = store.database_size().await.unwrap();
    assert!(
        grown >= empty + 1_000_000,
        "2 MB of entries: {empty} -> {grown}"
    );
}

/// Lists of records with this `key2`.
fn by_key2(key2: &str) -> ListQuery {
    ListQuery {
        after: None,
        limit: 1000,
        prefix: None,
        key2: Some(key2.into()),
    }
}

fn ids(records: Vec<Record>) -> Vec<Uuid> {
    records.iter().map(|r| r.id).collect()
}

/// Writers of one tenant at once (a batch, where the backend groups them): each
/// lists a kind, writes one record of it, lists again. Every list sees the
/// records committed before it and its own, never one rolled back.
pub async fn concurrent_writers_read_what_was_written_before_them(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let query = by_key2("batch");
    let mut writers = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        let query = query.clone();
        writers.push(tokio::spawn(async move {
            let mut tx = store.begin_write(tenant).await.unwrap();
            let before: Vec<Uuid> = ids(tx.list(tenant, Kind::Group, &query).await.unwrap());
            let mut mine = record(Kind::Group, &format!("g{i:02}"), None);
            mine.key2 = Some("batch".into());
            tx.insert(tenant, &mine).await.unwrap();
            let after: Vec<Uuid> = ids(tx.list(tenant, Kind::Group, &query).await.unwrap());
            assert_eq!(after.len(), before.len() + 1, "its own write is read");
            assert!(after.contains(&mine.id));
            let fails = i % 3 == 0;
            if !fails {
                tx.append_audit(tenant, &event("group.create", None, None, now()))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
            (mine.id, fails, before)
        }));
    }
    let mut outcomes = Vec::new();
    for writer in writers {
        outcomes.push(writer.await.unwrap());
    }
    let failed: Vec<Uuid> = outcomes.iter().filter(|o| o.1).map(|o| o.0).collect();
    for (_, _, before) in &outcomes {
        assert!(
            before.iter().all(|id| !failed.contains(id)),
            "nothing rolled back is read"
        );
    }
    let mut reader = store.reader().await.unwrap();
    let committed = reader.list(tenant, Kind::Group, &query).await.unwrap();
    assert_eq!(committed.len(), outcomes.len() - failed.len());
}

/// Writers at once, half of which write a record, read it back, then run into a
/// statement that fails (its error swallowed) and still try to commit: no other
/// writer ever reads a record that was not committed in the end.
pub async fn a_writer_failing_at_commit_leaves_nothing_read(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let taken = record(Kind::Group, "taken", Some("taken"));
    insert_all(&store, tenant, std::slice::from_ref(&taken)).await;
    let query = by_key2("doomed");
    let mut writers = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let query = query.clone();
        writers.push(tokio::spawn(async move {
            let mut tx = store.begin_write(tenant).await.unwrap();
            if i % 2 == 0 {
                let mut doomed = record(Kind::Group, &format!("d{i:02}"), None);
                doomed.key2 = Some("doomed".into());
                tx.insert(tenant, &doomed).await.unwrap();
                let seen = tx.list(tenant, Kind::Group, &query).await.unwrap();
                assert!(seen.iter().any(|r| r.id == doomed.id));
                // A unique key taken: the statement fails, the error is swallowed.
                let clash = record(Kind::Group, "clash", Some("taken"));
                assert!(tx.insert(tenant, &clash).await.is_err());
                let _ = tx.list(tenant, Kind::Group, &query).await;
                let _ = tx
                    .append_audit(tenant, &event("group.create", None, None, now()))
                    .await;
                // Refused where a failed statement ends the transaction
                // (PostgreSQL), committed where it does not (SQLite).
                let _ = tx.commit().await;
                Vec::new()
            } else {
                let seen: Vec<Uuid> = ids(tx.list(tenant, Kind::Group, &query).await.unwrap());
                tx.append_audit(tenant, &event("group.update", None, None, now()))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                seen
            }
        }));
    }
    let mut seen = Vec::new();
    for writer in writers {
        seen.extend(writer.await.unwrap());
    }
    let mut reader = store.reader().await.unwrap();
    let committed: Vec<Uuid> = ids(reader.list(tenant, Kind::Group, &query).await.unwrap());
    assert!(
        seen.iter().all(|id| committed.contains(id)),
        "a record that was not committed was read"
    );
}

/// A writer that committed waits for its batch; a steady stream of writers
/// that join it and end without committing (nothing to change, a refusal)
/// must not keep it waiting (nor keep the tenant's chain head locked): the
/// commit returns while the stream goes on. The stream stops when it does, or
/// after 30 seconds, when the test fails.
pub async fn a_stream_of_writers_that_commit_nothing_does_not_hold_a_commit(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let mut first = store.begin_write(tenant).await.unwrap();
    first
        .insert(tenant, &record(Kind::User, "first", Some("first@x")))
        .await
        .unwrap();
    first
        .append_audit(tenant, &event("user.create", None, None, now()))
        .await
        .unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Writers that join and leave without committing, two at a time (so one
    // is always queued when the other leaves).
    let stream = |store: Arc<dyn Store>, done: Arc<std::sync::atomic::AtomicBool>| {
        tokio::spawn(async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "a committed write waited for a stream of writers that committed nothing"
                );
                let tx = store.begin_write(tenant).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                drop(tx);
            }
        })
    };
    let streams = [
        stream(store.clone(), done.clone()),
        stream(store.clone(), done.clone()),
    ];
    // The stream's writers are queued behind `first` before it commits.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    first.commit().await.unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for stream in streams {
        stream.await.unwrap();
    }
    assert_eq!(check_chain(&store, tenant).await, 2);
}

pub async fn counters_bumped_in_a_transaction_move_with_it(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let value = |store: Arc<dyn Store>| async move {
        store
            .counter_get(tenant, "epoch")
            .await
            .unwrap()
            .map(|c| c.value)
    };
    assert_eq!(value(store.clone()).await, None);
    for _ in 0..2 {
        let mut tx = store.begin_write(tenant).await.unwrap();
        tx.counter_bump(tenant, "epoch", now()).await.unwrap();
        // Once a transaction, however often.
        tx.counter_bump(tenant, "epoch", now()).await.unwrap();
        tx.append_audit(tenant, &event("user.update", None, None, now()))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(value(store.clone()).await, Some(2));
    {
        let mut tx = store.begin_write(tenant).await.unwrap();
        tx.counter_bump(tenant, "epoch", now()).await.unwrap();
        // dropped without commit
    }
    assert_eq!(
        value(store.clone()).await,
        Some(2),
        "not moved by a rollback"
    );
    // A writer of a group commit that fails takes its bump with it.
    let mut writers = Vec::new();
    for fail in [false, true, false] {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut tx = store.begin_write(tenant).await.unwrap();
            tx.counter_bump(tenant, "epoch", now()).await.unwrap();
            if fail {
                return;
            }
            tx.append_audit(tenant, &event("user.update", None, None, now()))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(value(store.clone()).await, Some(4));
}

pub async fn counters_are_atomic(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    // Purging removes only old counters with the prefix.
    let old = Timestamp::from_unix_micros(1_000_000);
    store.counter_take(tenant, "seen:a", 1, old).await.unwrap();
    store
        .counter_take(tenant, "seen:b", 1, now())
        .await
        .unwrap();
    store.counter_take(tenant, "other:a", 1, old).await.unwrap();
    let purged = store
        .counters_purge("seen:", Timestamp::from_unix_micros(2_000_000))
        .await
        .unwrap();
    assert!(purged >= 1);
    assert_eq!(store.counter_get(tenant, "seen:a").await.unwrap(), None);
    assert!(store.counter_get(tenant, "seen:b").await.unwrap().is_some());
    assert!(
        store
            .counter_get(tenant, "other:a")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.counter_get(tenant, "step").await.unwrap(), None);
    assert!(
        store
            .counter_advance(tenant, "step", 10, now())
            .await
            .unwrap()
    );
    assert!(
        !store
            .counter_advance(tenant, "step", 10, now())
            .await
            .unwrap(),
        "not again"
    );
    assert!(
        !store
            .counter_advance(tenant, "step", 9, now())
            .await
            .unwrap(),
        "never back"
    );
    assert!(
        store
            .counter_advance(tenant, "step", 11, later(1))
            .await
            .unwrap()
    );
    let counter = store.counter_get(tenant, "step").await.unwrap().unwrap();
    assert_eq!((counter.value, counter.updated), (11, later(1)));

    assert_eq!(
        store
            .counter_increment(tenant, "fail", now(), now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .counter_increment(tenant, "fail", later(1), now())
            .await
            .unwrap(),
        2
    );
    // Last changed before the restart point: counting starts again.
    assert_eq!(
        store
            .counter_increment(tenant, "fail", later(5), later(2))
            .await
            .unwrap(),
        1
    );
    store.counter_delete(tenant, "fail").await.unwrap();
    assert_eq!(store.counter_get(tenant, "fail").await.unwrap(), None);

    // Many takers at once: exactly `limit` succeed, on every backend.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.counter_take(tenant, "uses", 5, now()).await.unwrap()
        }));
    }
    let mut taken = 0;
    for task in tasks {
        if task.await.unwrap() {
            taken += 1;
        }
    }
    assert_eq!(taken, 5);
    assert!(!store.counter_take(tenant, "none", 0, now()).await.unwrap());
}

pub async fn job_leases_have_one_holder(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let other = new_tenant(&store).await;
    let hour = |h: i64| now().plus_seconds(h * 3_600);
    // The first node takes it; another node is refused while it runs, the holder is not.
    assert!(
        store
            .lease_take("rotate", Some(tenant), "a", now(), hour(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .lease_take("rotate", Some(tenant), "b", now(), hour(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .lease_take("rotate", Some(tenant), "a", now(), hour(2))
            .await
            .unwrap()
    );
    // Leases are per scope and per name.
    assert!(
        store
            .lease_take("rotate", Some(other), "b", now(), hour(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .lease_take("rotate", None, "b", now(), hour(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .lease_take("purge", Some(tenant), "b", now(), hour(1))
            .await
            .unwrap()
    );
    // An expired lease goes to whoever asks first.
    assert!(
        !store
            .lease_take("rotate", Some(tenant), "b", hour(1), hour(3))
            .await
            .unwrap()
    );
    assert!(
        store
            .lease_take("rotate", Some(tenant), "b", hour(2), hour(3))
            .await
            .unwrap()
    );
    assert!(
        !store
            .lease_take("rotate", Some(tenant), "a", hour(2), hour(3))
            .await
            .unwrap()
    );
    // Only the holder moves its end; handing it back frees it at once.
    assert!(
        !store
            .lease_set_end("rotate", Some(tenant), "a", hour(2))
            .await
            .unwrap()
    );
    assert!(
        store
            .lease_set_end("rotate", Some(tenant), "b", hour(2))
            .await
            .unwrap()
    );
    assert!(
        store
            .lease_take("rotate", Some(tenant), "a", hour(2), hour(3))
            .await
            .unwrap()
    );

    // A node that stops hands back all it holds, and only that.
    assert!(
        store
            .lease_take("held", None, "c", now(), hour(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .lease_take("held", Some(tenant), "c", now(), hour(1))
            .await
            .unwrap()
    );
    assert_eq!(store.leases_release("c", now()).await.unwrap(), 2);
    assert!(
        store
            .lease_take("held", None, "d", now(), hour(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .lease_take("held", Some(tenant), "d", now(), hour(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .lease_take("purge", Some(tenant), "d", now(), hour(1))
            .await
            .unwrap()
    );

    // Many nodes at once: exactly one gets a free lease, on every backend.
    let mut tasks = Vec::new();
    for node in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .lease_take("race", None, &format!("node-{node}"), now(), hour(1))
                .await
                .unwrap()
        }));
    }
    let mut taken = 0;
    for task in tasks {
        if task.await.unwrap() {
            taken += 1;
        }
    }
    assert_eq!(taken, 1);
}

pub async fn a_snapshot_reads_one_state(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let group = record(Kind::Group, "before", None);
    insert_all(&store, tenant, std::slice::from_ref(&group)).await;
    let mut snapshot = store.snapshot().await.unwrap();
    let seen = snapshot.get(tenant, Kind::Group, group.id).await.unwrap();
    assert_eq!(seen.as_ref().map(|r| r.version), Some(1));
    // A change and an insert commit while the snapshot is open.
    let mut updated = group.clone();
    updated.version = 2;
    updated.data = "{\"v\":2}".to_string();
    let added = record(Kind::Group, "added", None);
    let mut tx = store.begin_write(tenant).await.unwrap();
    tx.update(tenant, &updated).await.unwrap();
    tx.insert(tenant, &added).await.unwrap();
    tx.append_audit(tenant, &event("group.update", None, None, now()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // The snapshot still sees the state of its first read; a new reader the new one.
    let again = snapshot.get(tenant, Kind::Group, group.id).await.unwrap();
    assert_eq!(again, seen);
    assert_eq!(
        snapshot.get(tenant, Kind::Group, added.id).await.unwrap(),
        None
    );
    let mut reader = store.reader().await.unwrap();
    assert_eq!(
        reader
            .get(tenant, Kind::Group, group.id)
            .await
            .unwrap()
            .map(|r| r.version),
        Some(2)
    );
    drop(snapshot);
    assert!(
        reader
            .get(tenant, Kind::Group, added.id)
            .await
            .unwrap()
            .is_some()
    );
}

fn key(path: &str) -> Vec<Step> {
    path.split('.').map(|k| Step::Key(k.to_string())).collect()
}

fn is(field: Field, test: Test, fold_case: bool) -> Predicate {
    Predicate::Test {
        field,
        test,
        fold_case,
    }
}

pub async fn searches_mean_the_same_on_every_backend(store: Arc<dyn Store>) {
    let tenant = new_tenant(&store).await;
    let mut r1 = record(Kind::User, "b", None);
    r1.data = r#"{"userName":"BJensen","active":true,"n":5,"empty":"","tags":["a","b"],
        "emails":[{"value":"b@example.com","type":"work"}],"name":{"givenName":"Barbara"}}"#
        .to_string();
    let mut r2 = record(Kind::User, "a", None);
    r2.data = r#"{"userName":"alice","active":false,"n":12.5,"tags":[],
        "emails":[{"value":"Alice@Home.org","type":"home"}],"name":{}}"#
        .to_string();
    let mut r3 = record(Kind::User, "z", None);
    r3.data = r#"{"userName":"Zoë","n":"5","note":null}"#.to_string();
    let mut companion = record(Kind::Group, "x", Some("bjensen"));
    companion.id = r1.id;
    companion.data = r#"{"externalId":"X-1"}"#.to_string();
    let group = record(Kind::Group, "g", None);
    insert_all(
        &store,
        tenant,
        &[
            r1.clone(),
            r2.clone(),
            r3.clone(),
            companion.clone(),
            group.clone(),
        ],
    )
    .await;
    let mut tx = store.begin_write(tenant).await.unwrap();
    let link = Link {
        rel: Rel::Member,
        source: group.id,
        source_kind: Kind::Group,
        target: r2.id,
        target_kind: Kind::User,
    };
    tx.link(tenant, &link, now()).await.unwrap();
    tx.append_audit(tenant, &event("test.link", None, None, now()))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut reader = store.reader().await.unwrap();
    let text = |s: &str| Scalar::Text(s.to_string());
    let user_name = || Field::Data(key("userName"));
    let email = |sub: &str, test: Test, fold: bool| Predicate::AnyElement {
        array: Field::Data(key("emails")),
        element: Box::new(is(Field::Element(key(sub)), test, fold)),
    };
    let cases: Vec<(&str, Predicate, Vec<Uuid>)> = vec![
        (
            "eq folded",
            is(user_name(), Test::Eq(text("bjensen")), true),
            vec![r1.id],
        ),
        (
            "eq exact",
            is(user_name(), Test::Eq(text("bjensen")), false),
            vec![],
        ),
        (
            "ASCII folding only",
            is(user_name(), Test::Eq(text("ZOË")), true),
            vec![],
        ),
        (
            "non-ASCII kept",
            is(user_name(), Test::Eq(text("zoë")), true),
            vec![r3.id],
        ),
        (
            "number eq, not the string",
            is(Field::Data(key("n")), Test::Eq(Scalar::Number(5.0)), false),
            vec![r1.id],
        ),
        (
            "number gt",
            is(Field::Data(key("n")), Test::Gt(Scalar::Number(6.0)), false),
            vec![r2.id],
        ),
        (
            "bool",
            is(
                Field::Data(key("active")),
                Test::Eq(Scalar::Bool(true)),
                false,
            ),
            vec![r1.id],
        ),
        (
            "not holds where the value is missing",
            Predicate::Not(Box::new(is(
                Field::Data(key("active")),
                Test::Eq(Scalar::Bool(true)),
                false,
            ))),
            vec![r2.id, r3.id],
        ),
        (
            "present",
            is(user_name(), Test::Present, false),
            vec![r1.id, r2.id, r3.id],
        ),
        (
            "empty string is absent",
            is(Field::Data(key("empty")), Test::Present, false),
            vec![],
        ),
        (
            "empty list is absent",
            is(Field::Data(key("tags")), Test::Present, false),
            vec![r1.id],
        ),
        (
            "empty object is absent",
            is(Field::Data(key("name")), Test::Present, false),
            vec![r1.id],
        ),
        (
            "null is absent",
            is(Field::Data(key("note")), Test::Present, false),
            vec![],
        ),
        (
            "text gt is bytewise",
            is(user_name(), Test::Gt(text("Zz")), false),
            vec![r2.id],
        ),
        (
            "contains",
            email("value", Test::Contains("EXAMPLE".into()), true),
            vec![r1.id],
        ),
        (
            "starts with",
            email("value", Test::StartsWith("ali".into()), true),
            vec![r2.id],
        ),
        (
            "starts with, exact",
            email("value", Test::StartsWith("ali".into()), false),
            vec![],
        ),
        (
            "ends with",
            email("value", Test::EndsWith("HOME.ORG".into()), true),
            vec![r2.id],
        ),
        (
            "ends with, exact",
            email("value", Test::EndsWith("HOME.ORG".into()), false),
            vec![],
        ),
        (
            "ends with longer",
            email("value", Test::EndsWith("xAlice@Home.org".into()), false),
            vec![],
        ),
        (
            "one element meets both",
            Predicate::AnyElement {
                array: Field::Data(key("emails")),
                element: Box::new(Predicate::And(vec![
                    is(Field::Element(key("type")), Test::Eq(text("work")), false),
                    is(
                        Field::Element(key("value")),
                        Test::Contains("home".into()),
                        true,
                    ),
                ])),
            },
            vec![],
        ),
        (
            "simple list element",
            Predicate::AnyElement {
                array: Field::Data(key("tags")),
                element: Box::new(is(Field::Element(vec![]), Test::Eq(text("b")), false)),
            },
            vec![r1.id],
        ),
        (
            "companion data",
            is(
                Field::CompanionData(key("externalId")),
                Test::Eq(text("X-1")),
                false,
            ),
            vec![r1.id],
        ),
        (
            "companion key1",
            is(Field::CompanionKey1, Test::Eq(text("BJENSEN")), true),
            vec![r1.id],
        ),
        (
            "no companion",
            Predicate::Not(Box::new(is(Field::CompanionKey1, Test::Present, false))),
            vec![r2.id, r3.id],
        ),
        (
            "member of",
            Predicate::LinkFrom {
                rel: Rel::Member,
                source: group.id,
            },
            vec![r2.id],
        ),
        (
            "created",
            is(
                Field::Created,
                Test::Ge(Scalar::Int(now().unix_micros())),
                false,
            ),
            vec![r1.id, r2.id, r3.id],
        ),
        (
            "or of and",
            Predicate::Or(vec![
                Predicate::And(vec![
                    is(user_name(), Test::StartsWith("b".into()), true),
                    is(
                        Field::Data(key("active")),
                        Test::Eq(Scalar::Bool(true)),
                        false,
                    ),
                ]),
                is(Field::Data(key("n")), Test::Eq(text("5")), false),
            ]),
            vec![r1.id, r3.id],
        ),
        (
            "quote in a value",
            is(user_name(), Test::Eq(text("a' OR 1=1 --")), false),
            vec![],
        ),
    ];
    for (name, predicate, mut expected) in cases {
        let search = Search {
            predicate: predicate.clone(),
            companion: Some(Kind::Group),
            order: Order::Natural,
            offset: 0,
            after: None,
            limit: 100,
        };
        let found = reader
            .search(tenant, Kind::User, &search)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut ids: Vec<Uuid> = found.iter().map(|(r, _)| r.id).collect();
        ids.sort();
        expected.sort();
        assert_eq!(ids, expected, "{name}");
        let count = reader
            .count(tenant, Kind::User, &predicate, Some(Kind::Group))
            .await
            .unwrap();
        assert_eq!(count, expected.len() as u64, "{name}: count");
    }
    // Companions come back with their records.
    let all = Search {
        predicate: Predicate::True,
        companion: Some(Kind::Group),
        order: Order::Natural,
        offset: 0,
        after: None,
        limit: 100,
    };
    let found = reader.search(tenant, Kind::User, &all).await.unwrap();
    let ids: Vec<Uuid> = found.iter().map(|(r, _)| r.id).collect();
    assert_eq!(
        ids,
        vec![r2.id, r1.id, r3.id],
        "natural order is (sort_key, id)"
    );
    assert_eq!(found[1].1.as_ref(), Some(&companion));
    assert_eq!(found[0].1, None);
    // Ordering by a field, folded, missing values last; offset and limit.
    let by = |field: Field, descending: bool| Search {
        order: Order::By {
            field,
            descending,
            fold_case: true,
        },
        ..all.clone()
    };
    let ids =
        |found: Vec<tessera_store::Found>| found.iter().map(|(r, _)| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(reader
            .search(tenant, Kind::User, &by(user_name(), false))
            .await
            .unwrap()),
        vec![r2.id, r1.id, r3.id]
    );
    assert_eq!(
        ids(reader
            .search(tenant, Kind::User, &by(user_name(), true))
            .await
            .unwrap()),
        vec![r3.id, r1.id, r2.id]
    );
    let given = reader
        .search(
            tenant,
            Kind::User,
            &by(Field::Data(key("name.givenName")), false),
        )
        .await
        .unwrap();
    assert_eq!(ids(given)[0], r1.id, "records without the value come last");
    let page = Search {
        offset: 1,
        limit: 1,
        ..by(user_name(), false)
    };
    assert_eq!(
        ids(reader.search(tenant, Kind::User, &page).await.unwrap()),
        vec![r1.id]
    );
    let first = Search {
        after: Some(Cursor {
            sort_key: "a".to_string(),
            id: r2.id,
        }),
        ..all.clone()
    };
    assert_eq!(
        ids(reader.search(tenant, Kind::User, &first).await.unwrap()),
        vec![r1.id, r3.id]
    );
    // Indexes into lists.
    let first_email = Field::Data(vec![
        Step::Key("emails".into()),
        Step::Index(0),
        Step::Key("type".into()),
    ]);
    let found = reader
        .search(
            tenant,
            Kind::User,
            &Search {
                predicate: is(first_email, Test::Eq(text("home")), false),
                ..all.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(found), vec![r2.id]);
}

//! Signed checkpoints of the audit chain head against an intruder with write access to
//! the database, on SQLite and on PostgreSQL: a cut-off tail, a wipe, a rewritten
//! event with every later hash and the head recomputed, a chain rebuilt without an
//! event. The chain alone reports each of these as intact; the checkpoints do not.
//! Also: while the triggers stand, the trail cannot be emptied nor its head moved.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;
use sqlx::{AnyConnection, Connection, Row};
use tessera_core::crypto::{Ed25519Key, GENESIS_HASH, audit_link_hash};
use tessera_core::{Clock, SystemClock, TenantId};
use tessera_directory::checkpoint::{Checkpoint, CheckpointFailure};
use tessera_service::audit::{check_checkpoints, checkpoint, verify_chain};
use tessera_service::{App, Context};
use tessera_store::Store;
use tessera_testkit::{Backend, bootstrap_admin};

struct Harness {
    store: Arc<dyn Store>,
    url: String,
    directory: App,
    admin: Context,
    key: Ed25519Key,
}

async fn harness(backend: Backend) -> Harness {
    let (store, url) = backend.store_with_url().await;
    let directory = App::new(store.clone(), Arc::new(SystemClock));
    let admin = bootstrap_admin(&directory).await.ctx;
    Harness {
        store,
        url,
        directory,
        admin,
        key: Ed25519Key::generate().unwrap().0,
    }
}

impl Harness {
    fn tenant(&self) -> TenantId {
        self.admin.tenant
    }

    async fn users(&self, names: &[&str]) {
        for name in names {
            self.directory.directory
                .create_user(
                    &self.admin,
                    json!({ "userPrincipalName": format!("{name}@contoso.com"), "displayName": name }),
                )
                .await
                .unwrap();
        }
    }

    async fn checkpoint(&self) -> Checkpoint {
        checkpoint(
            self.store.as_ref(),
            self.tenant(),
            &self.key,
            SystemClock.now(),
        )
        .await
        .unwrap()
    }

    /// The failure each checkpoint finds (`None`: it holds).
    async fn check(&self, checkpoints: &[Checkpoint]) -> Vec<Option<CheckpointFailure>> {
        let numbered: Vec<(usize, Checkpoint)> = checkpoints
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, c)| (i + 1, c))
            .collect();
        let reports = check_checkpoints(self.store.as_ref(), &numbered, &self.key.public_key())
            .await
            .unwrap();
        assert!(reports.iter().enumerate().all(|(i, r)| r.line == i + 1));
        reports
            .into_iter()
            .map(|r| {
                assert_eq!(r.intact, r.problem.is_none());
                r.problem.map(|p| p.kind)
            })
            .collect()
    }

    /// What `verify` alone says: the tampering below is made to pass it.
    async fn chain_intact(&self) -> bool {
        verify_chain(self.store.as_ref(), self.tenant())
            .await
            .unwrap()
            .intact
    }

    /// A connection of the intruder's own, with the audit triggers out of the way.
    async fn intruder(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(&self.url).await.unwrap();
        let statements = if self.url.starts_with("sqlite:") {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
             DROP TRIGGER audit_heads_no_delete; DROP TRIGGER audit_heads_forward_only;"
        } else {
            "ALTER TABLE audit_events DISABLE TRIGGER USER; \
             ALTER TABLE audit_heads DISABLE TRIGGER USER;"
        };
        sqlx::raw_sql(statements).execute(&mut conn).await.unwrap();
        conn
    }

    /// Rebuilds the tenant's whole chain from `edit`ed events: renumbered from 1, every
    /// link hash and the head recomputed, as an intruder who knows the (unkeyed) link
    /// function would.
    async fn rebuild_chain(&self, edit: impl FnOnce(&mut Vec<StoredEvent>)) {
        let mut conn = self.intruder().await;
        let tenant = self.tenant().to_string();
        let rows = sqlx::query(
            "SELECT id, time, actor_id, action, target_id, correlation_id, body \
             FROM audit_events WHERE tenant = $1 ORDER BY seq",
        )
        .bind(tenant.clone())
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut events: Vec<StoredEvent> = rows
            .iter()
            .map(|row| StoredEvent {
                id: row.try_get("id").unwrap(),
                time: row.try_get("time").unwrap(),
                actor_id: row.try_get("actor_id").unwrap(),
                action: row.try_get("action").unwrap(),
                target_id: row.try_get("target_id").unwrap(),
                correlation_id: row.try_get("correlation_id").unwrap(),
                body: row.try_get("body").unwrap(),
            })
            .collect();
        edit(&mut events);
        sqlx::query("DELETE FROM audit_events WHERE tenant = $1")
            .bind(tenant.clone())
            .execute(&mut conn)
            .await
            .unwrap();
        let mut previous = GENESIS_HASH.to_string();
        for (index, event) in events.iter().enumerate() {
            let seq = index as i64 + 1;
            let hash = audit_link_hash(&previous, seq, &event.body);
            sqlx::query(
                "INSERT INTO audit_events (tenant, seq, id, time, actor_id, action, target_id, correlation_id, body, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(tenant.clone())
            .bind(seq)
            .bind(event.id.clone())
            .bind(event.time)
            .bind(event.actor_id.clone())
            .bind(event.action.clone())
            .bind(event.target_id.clone())
            .bind(event.correlation_id.clone())
            .bind(event.body.clone())
            .bind(previous.clone())
            .bind(hash.clone())
            .execute(&mut conn)
            .await
            .unwrap();
            previous = hash;
        }
        sqlx::query("UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant = $1")
            .bind(tenant)
            .bind(events.len() as i64)
            .bind(previous)
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
}

struct StoredEvent {
    id: String,
    time: i64,
    actor_id: Option<String>,
    action: String,
    target_id: Option<String>,
    correlation_id: String,
    body: String,
}

async fn an_untouched_trail_matches_its_checkpoints(h: Harness) {
    let early = h.checkpoint().await;
    h.users(&["alice", "bob"]).await;
    let late = h.checkpoint().await;
    assert!(late.seq > early.seq);
    assert_eq!(
        h.check(&[early.clone(), late.clone()]).await,
        vec![None, None]
    );
    // A checkpoint by any other key is refused, whatever it says.
    let (other, _) = Ed25519Key::generate().unwrap();
    let foreign = checkpoint(h.store.as_ref(), h.tenant(), &other, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(
        h.check(&[foreign]).await,
        vec![Some(CheckpointFailure::UnknownKey)]
    );
}

async fn a_cut_off_tail_is_found(h: Harness) {
    h.users(&["alice"]).await;
    let before = h.checkpoint().await;
    h.users(&["bob", "carol"]).await;
    let after = h.checkpoint().await;
    // The intruder drops the last two events and points the head at the one before.
    let mut conn = h.intruder().await;
    let keep = after.seq - 2;
    let tenant = h.tenant().to_string();
    sqlx::query("DELETE FROM audit_events WHERE tenant = $1 AND seq > $2")
        .bind(tenant.clone())
        .bind(keep)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit_heads SET seq = $2, hash = (SELECT hash FROM audit_events WHERE tenant = $1 AND seq = $2) WHERE tenant = $1",
    )
    .bind(tenant)
    .bind(keep)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert!(h.chain_intact().await, "the chain alone sees nothing");
    assert_eq!(
        h.check(&[before, after]).await,
        vec![None, Some(CheckpointFailure::Truncated)]
    );
}

async fn a_wiped_trail_is_found(h: Harness) {
    h.users(&["alice"]).await;
    let taken = h.checkpoint().await;
    let mut conn = h.intruder().await;
    sqlx::raw_sql("DELETE FROM audit_events; DELETE FROM audit_heads;")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert!(h.chain_intact().await, "the chain alone sees nothing");
    assert_eq!(
        h.check(&[taken]).await,
        vec![Some(CheckpointFailure::Wiped)]
    );
}

async fn a_forged_event_with_a_recomputed_chain_is_found(h: Harness) {
    h.users(&["alice", "bob"]).await;
    let taken = h.checkpoint().await;
    h.users(&["carol"]).await;
    // Alice's creation now says Mallory; every later hash and the head are recomputed.
    h.rebuild_chain(|events| {
        let alice = events
            .iter_mut()
            .find(|e| e.action == "user.create" && e.body.contains("alice@contoso.com"))
            .unwrap();
        let forged = alice.body.replace("\"alice\"", "\"mallory\"");
        assert_ne!(forged, alice.body);
        alice.body = forged;
    })
    .await;
    assert!(h.chain_intact().await, "the chain alone sees nothing");
    assert_eq!(
        h.check(&[taken]).await,
        vec![Some(CheckpointFailure::Rewritten)]
    );
}

async fn a_chain_rebuilt_without_an_event_is_found(h: Harness) {
    h.users(&["alice", "bob"]).await;
    let middle = h.checkpoint().await;
    h.users(&["carol"]).await;
    let end = h.checkpoint().await;
    // Bob's creation disappears; the rest is renumbered and rehashed from the start.
    h.rebuild_chain(|events| {
        events.retain(|e| !(e.action == "user.create" && e.body.contains("bob@contoso.com")));
    })
    .await;
    assert!(h.chain_intact().await, "the chain alone sees nothing");
    assert_eq!(
        h.check(&[middle, end]).await,
        vec![
            Some(CheckpointFailure::Rewritten),
            Some(CheckpointFailure::Truncated)
        ]
    );
}

async fn the_trail_cannot_be_emptied_nor_its_head_moved_while_the_triggers_stand(h: Harness) {
    h.users(&["alice"]).await;
    let taken = h.checkpoint().await;
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(&h.url).await.unwrap();
    let mut attempts = vec![
        "DELETE FROM audit_events",
        "DELETE FROM audit_heads",
        "UPDATE audit_heads SET seq = seq - 1",
        "UPDATE audit_heads SET hash = '0000000000000000000000000000000000000000000000000000000000000000'",
        "UPDATE audit_heads SET seq = seq + 1",
    ];
    if h.url.starts_with("postgres") {
        // TRUNCATE passes row triggers; statement triggers refuse it.
        attempts.extend([
            "TRUNCATE audit_events",
            "TRUNCATE audit_heads",
            "TRUNCATE audit_events, audit_heads",
            "TRUNCATE tenants CASCADE",
        ]);
    }
    for statement in attempts {
        let error = sqlx::raw_sql(statement)
            .execute(&mut conn)
            .await
            .expect_err(statement);
        let message = error.to_string();
        assert!(
            message.contains("append-only")
                || message.contains("cannot be truncated")
                || message.contains("audit head"),
            "{statement}: {message}"
        );
    }
    conn.close().await.unwrap();
    assert!(h.chain_intact().await);
    assert_eq!(h.check(&[taken]).await, vec![None]);
    // The application's own appends still move the head.
    h.users(&["bob"]).await;
    assert!(h.chain_intact().await);
}

tessera_testkit::both_backends!(
    setup = harness;
    an_untouched_trail_matches_its_checkpoints,
    a_cut_off_tail_is_found,
    a_wiped_trail_is_found,
    a_forged_event_with_a_recomputed_chain_is_found,
    a_chain_rebuilt_without_an_event_is_found,
    the_trail_cannot_be_emptied_nor_its_head_moved_while_the_triggers_stand,
);

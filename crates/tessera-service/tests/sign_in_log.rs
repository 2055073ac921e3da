//! How the sign-in log is kept, on SQLite and PostgreSQL: a token's entry is small,
//! repeated failures from one source are one entry with a count (successes never),
//! and each tenant's retention removes old entries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use tessera_core::Clock as _;
use tessera_service::authn::SignInEntry;
use tessera_service::oauth::TokenContext;
use tessera_service::sign_in_storage::{
    AGGREGATE_WINDOW_SECONDS, MANY, MAX_ENTRIES_PER_WINDOW, MAX_NAMES_PER_SOURCE,
};
use tessera_service::{App, Context};
use tessera_store::{SignInQuery, SignInRow, Store};
use tessera_testkit::fixtures::{basic_authorization, sign_in_page};
use tessera_testkit::{Backend, ShiftedClock, Workload, auth_settings, workload};

struct Harness {
    directory: App,
    store: Arc<dyn Store>,
    clock: Arc<ShiftedClock>,
    admin: Context,
    ctx: TokenContext,
    form: BTreeMap<String, String>,
    client_id: String,
    secret: String,
}

impl Harness {
    async fn token(&self, client_id: &str, secret: &str) -> Result<(), &'static str> {
        self.directory
            .oidc
            .token_request(
                &self.ctx,
                Some(&basic_authorization(client_id, secret)),
                &self.form,
            )
            .await
            .map(|_| ())
            .map_err(|e| e.error.as_str())
    }

    async fn rows(&self) -> Vec<SignInRow> {
        self.store
            .sign_in_query(
                self.admin.tenant,
                &SignInQuery {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
    }

    /// Every entry with this result, page by page.
    async fn entries(&self, result: &str) -> Vec<SignInEntry> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let query = json!({ "result": result, "limit": 1000, "cursor": cursor });
            let page = sign_in_page(&self.directory, &self.admin, query).await;
            all.extend(page.value);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return all,
            }
        }
    }

    /// Moves the clock to just after the start of a failure window, so a test's
    /// failures fall in one window.
    fn start_of_window(&self) {
        let seconds = self.clock.now().unix_micros() / 1_000_000;
        self.clock
            .advance_seconds(AGGREGATE_WINDOW_SECONDS - seconds % AGGREGATE_WINDOW_SECONDS + 1);
    }
}

async fn harness(backend: Backend) -> Harness {
    let store = backend.store().await;
    let clock = Arc::new(ShiftedClock::default());
    let directory = App::with_auth(
        store.clone(),
        clock.clone(),
        auth_settings("https://id.contoso.com"),
    );
    let work = workload(&directory).await;
    let form = work.client_credentials_form();
    let Workload {
        admin,
        client,
        secret,
        mut ctx,
        ..
    } = work;
    ctx.client_address = Some("198.51.100.7".into());
    Harness {
        directory,
        store,
        clock,
        admin,
        ctx,
        form,
        client_id: client.app_id.to_string(),
        secret: secret.secret_text.expose().to_string(),
    }
}

async fn a_token_entry_is_a_few_hundred_bytes(h: Harness) {
    // Security defaults are on: three policies, none applying to a workload.
    h.token(&h.client_id, &h.secret).await.unwrap();
    let rows = h.rows().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let stored = row.body.len()
        + row.user_name.len()
        + row.application.as_ref().map_or(0, String::len)
        + row.correlation_id.len()
        + row.result.len();
    // It was about 1.4 KB, most of it the three policies that did not apply.
    assert!(stored < 350, "{stored} bytes: {}", row.body);

    let entry = &h.entries("success").await[0];
    assert_eq!(entry.app_id.as_deref(), Some(h.client_id.as_str()));
    assert_eq!(entry.app_display_name, "Sync");
    assert_eq!(entry.client_address.as_deref(), Some("198.51.100.7"));
    assert_eq!(entry.sign_in_event_type, "servicePrincipal");
    assert_eq!(entry.authentication_methods, ["clientSecret"]);
    assert_eq!(
        entry.conditional_access_status.as_deref(),
        Some("notApplied")
    );
    let explained = entry.applied_conditional_access_policies.as_ref().unwrap();
    assert_eq!(explained["notAppliedPolicies"], 3);
    assert_eq!(explained["policies"], json!([]));
    assert!(explained["policySetVersion"].as_i64().unwrap() > 0);
    assert_eq!(entry.attempt_count, None, "a success is never aggregated");
}

async fn repeated_failures_are_one_entry_with_a_count(h: Harness) {
    h.start_of_window();
    // Concurrently, so they share group commits as well as arrive one by one.
    let wrong: Vec<_> = (0..200).map(|_| h.token(&h.client_id, "wrong")).collect();
    for outcome in futures::future::join_all(wrong).await {
        assert_eq!(outcome, Err("invalid_client"));
    }
    for _ in 0..3 {
        h.token(&h.client_id, &h.secret).await.unwrap();
    }
    let failures = h.entries("failure").await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    let failure = &failures[0];
    assert_eq!(failure.attempt_count, Some(200));
    assert_eq!(failure.failure_code.as_deref(), Some("invalid_client"));
    assert_eq!(
        failure.user_principal_name,
        format!("app:{}", h.client_id.to_lowercase())
    );
    assert!(failure.last_attempt_date_time.unwrap() >= failure.created_date_time);
    assert_eq!(
        h.entries("success").await.len(),
        3,
        "successes are each their own entry"
    );

    // A source failing for many names: the first names each get an entry, then
    // the rest are counted together under `*`.
    for i in 0..30 {
        assert_eq!(
            h.token(&format!("unknown-{i}"), "wrong").await,
            Err("invalid_client")
        );
    }
    let failures = h.entries("failure").await;
    assert_eq!(failures.len(), MAX_NAMES_PER_SOURCE + 1, "{failures:?}");
    let many = failures
        .iter()
        .find(|f| f.user_principal_name == MANY)
        .unwrap();
    assert_eq!(many.attempt_count, Some(31 - MAX_NAMES_PER_SOURCE as i64));
    let total: i64 = failures.iter().map(|f| f.attempt_count.unwrap()).sum();
    assert_eq!(total, 230, "every failure is counted");

    // Another address is another source; the next window starts again.
    let mut elsewhere = h.ctx.clone();
    elsewhere.client_address = Some("203.0.113.9".into());
    h.directory
        .oidc
        .token_request(
            &elsewhere,
            Some(&basic_authorization(&h.client_id, "wrong")),
            &h.form,
        )
        .await
        .unwrap_err();
    h.clock.advance_seconds(AGGREGATE_WINDOW_SECONDS);
    h.token(&h.client_id, "wrong").await.unwrap_err();
    assert_eq!(h.entries("failure").await.len(), MAX_NAMES_PER_SOURCE + 3);
}

async fn failures_from_very_many_sources_make_bounded_entries(h: Harness) {
    h.start_of_window();
    let total = MAX_ENTRIES_PER_WINDOW + 50;
    let addresses: Vec<String> = (0..total)
        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
        .collect();
    for chunk in addresses.chunks(50) {
        let requests: Vec<_> = chunk
            .iter()
            .map(|address| {
                let mut ctx = h.ctx.clone();
                ctx.client_address = Some(address.clone());
                let authorization = basic_authorization(&h.client_id, "wrong");
                let directory = &h.directory;
                let form = &h.form;
                async move {
                    directory
                        .oidc
                        .token_request(&ctx, Some(&authorization), form)
                        .await
                        .unwrap_err()
                }
            })
            .collect();
        futures::future::join_all(requests).await;
    }
    let failures = h.entries("failure").await;
    assert_eq!(failures.len(), MAX_ENTRIES_PER_WINDOW + 1);
    let rest = failures
        .iter()
        .find(|f| f.client_address.as_deref() == Some(MANY))
        .unwrap();
    assert_eq!(rest.attempt_count, Some(50));
    assert_eq!(rest.user_principal_name, MANY);
    let counted: i64 = failures.iter().map(|f| f.attempt_count.unwrap()).sum();
    assert_eq!(counted, total as i64, "every failure is counted");
}

async fn retention_removes_old_entries(h: Harness) {
    assert_eq!(
        h.directory
            .sign_in
            .get_setting::<tessera_service::sign_in_storage::SignInLogRetention>(&h.admin)
            .await
            .unwrap(),
        serde_json::from_value(json!({"retentionDays": 30, "maxEntries": 1_000_000})).unwrap(),
        "the documented default"
    );
    h.token(&h.client_id, &h.secret).await.unwrap();
    h.token(&h.client_id, "wrong").await.unwrap_err();
    h.clock.advance_seconds(20 * 86_400);
    h.token(&h.client_id, &h.secret).await.unwrap();
    assert_eq!(h.directory.sign_in.purge_log().await.unwrap(), 0);
    h.clock.advance_seconds(11 * 86_400);
    assert_eq!(
        h.directory.sign_in.purge_log().await.unwrap(),
        2,
        "older than 30 days"
    );
    assert_eq!(h.rows().await.len(), 1);

    // A tenant keeps longer when it says so; bad values change nothing.
    for bad in [
        json!({"retentionDays": 0}),
        json!({"maxEntries": 10}),
        json!({"keepForever": true}),
    ] {
        h.directory
            .sign_in
            .set_log_retention(&h.admin, tessera_service::Replacement::any(bad))
            .await
            .unwrap_err();
    }
    let set = h
        .directory
        .sign_in
        .set_log_retention(
            &h.admin,
            tessera_service::Replacement::any(json!({"retentionDays": 90})),
        )
        .await
        .unwrap();
    assert_eq!((set.retention_days, set.max_entries), (90, 1_000_000));
    h.clock.advance_seconds(60 * 86_400);
    assert_eq!(h.directory.sign_in.purge_log().await.unwrap(), 0);
    h.clock.advance_seconds(31 * 86_400);
    assert_eq!(h.directory.sign_in.purge_log().await.unwrap(), 1);
    assert!(h.rows().await.is_empty());
}

tessera_testkit::both_backends!(setup = harness;
    a_token_entry_is_a_few_hundred_bytes,
    repeated_failures_are_one_entry_with_a_count,
    failures_from_very_many_sources_make_bounded_entries,
    retention_removes_old_entries,
);

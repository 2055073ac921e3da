//! The client-credentials grant through the service, on SQLite and PostgreSQL:
//! revocation of a secret and disabling of a workload take effect within the grant
//! cache's few seconds, and never for a wrong secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;
use tessera_service::App;
use tessera_service::Versioned;
use tessera_service::oauth::GRANT_CACHE_SECONDS;
use tessera_store::Store;
use tessera_testkit::{ShiftedClock, auth_settings, workload};

async fn revocation_takes_effect_within_seconds(store: Arc<dyn Store>) {
    let clock = Arc::new(ShiftedClock::default());
    let directory = App::with_auth(
        store,
        clock.clone(),
        auth_settings("https://id.contoso.com"),
    );
    let work = workload(&directory).await;
    let basic = |secret: &str| work.basic(secret);
    let form = work.client_credentials_form();
    let good = basic(work.secret.secret_text.expose());
    assert!(
        directory
            .oidc
            .token_request(&work.ctx, Some(&good), &form)
            .await
            .is_ok()
    );
    // A wrong secret never rides on the cache.
    assert_eq!(
        directory
            .oidc
            .token_request(&work.ctx, Some(&basic("wrong")), &form)
            .await
            .unwrap_err()
            .error,
        "invalid_client"
    );

    directory
        .directory
        .remove_password(
            &work.admin,
            tessera_service::CredentialHolder::Application,
            work.client.id,
            work.secret.credential.key_id,
        )
        .await
        .unwrap();
    clock.advance_seconds(GRANT_CACHE_SECONDS);
    assert_eq!(
        directory
            .oidc
            .token_request(&work.ctx, Some(&good), &form)
            .await
            .unwrap_err()
            .error,
        "invalid_client"
    );

    // Disabling the workload likewise.
    let second = directory
        .directory
        .add_password(
            &work.admin,
            tessera_service::CredentialHolder::Application,
            work.client.id,
            json!({}),
        )
        .await
        .unwrap();
    let second = basic(second.secret_text.expose());
    assert!(
        directory
            .oidc
            .token_request(&work.ctx, Some(&second), &form)
            .await
            .is_ok()
    );
    directory
        .directory
        .update_service_principal(
            &work.admin,
            Versioned::any(work.principal.id).patch(json!({ "accountEnabled": false })),
        )
        .await
        .unwrap();
    clock.advance_seconds(GRANT_CACHE_SECONDS);
    assert_eq!(
        directory
            .oidc
            .token_request(&work.ctx, Some(&second), &form)
            .await
            .unwrap_err()
            .error,
        "unauthorized_client"
    );
}

/// Issue 11: a token request whose client id holds a NUL byte (logged as typed)
/// once poisoned the group-committed sign-in log on PostgreSQL, failing every
/// request in its batch. Now each request learns only its own fate: the bad ones
/// are refused as clients, every legitimate one gets its token.
async fn a_nul_byte_in_the_log_fails_no_other_request(store: Arc<dyn Store>) {
    let directory = Arc::new(App::new(store, Arc::new(tessera_core::SystemClock)));
    let work = workload(&directory).await;
    let good = work.basic(work.secret.secret_text.expose());
    // One token first: the tenant's signing keys are made on first use, and racing
    // to make them is not what this test is about.
    directory
        .oidc
        .token_request(&work.ctx, Some(&good), &work.client_credentials_form())
        .await
        .unwrap();
    // Waves of 20 concurrent requests (half of them hostile), so that hostile and
    // legitimate entries share the writer's batches without exhausting the test
    // pool's 8 connections on a loaded machine.
    for wave in 0..10 {
        let mut tasks = Vec::new();
        for round in wave * 20..(wave + 1) * 20 {
            let directory = directory.clone();
            let ctx = work.ctx.clone();
            let good = good.clone();
            let mut form = work.client_credentials_form();
            tasks.push(tokio::spawn(async move {
                if round % 2 == 0 {
                    form.insert("client_id".into(), "a\0b".into());
                    form.insert("client_secret".into(), "x\0y".into());
                    let error = directory
                        .oidc
                        .token_request(&ctx, None, &form)
                        .await
                        .unwrap_err();
                    assert_eq!(error.error, "invalid_client", "{}", error.description);
                } else {
                    directory
                        .oidc
                        .token_request(&ctx, Some(&good), &form)
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    }
}

tessera_testkit::both_backends!(
    revocation_takes_effect_within_seconds,
    a_nul_byte_in_the_log_fails_no_other_request
);

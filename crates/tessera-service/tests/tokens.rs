//! The client-credentials grant through the service, on SQLite and PostgreSQL:
//! revocation of a secret and disabling of a workload take effect within the grant
//! cache's few seconds, and never for a wrong secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;
use tessera_core::crypto::SealingKey;
use tessera_service::Directory;
use tessera_service::authn::AuthSettings;
use tessera_service::oauth::GRANT_CACHE_SECONDS;
use tessera_store::Store;

#[macro_use]
mod support;
use support::{ShiftedClock, Workload, workload};

async fn revocation_takes_effect_within_seconds(store: Arc<dyn Store>) {
    let clock = Arc::new(ShiftedClock::default());
    let directory = Directory::with_auth(
        store,
        clock.clone(),
        AuthSettings {
            public_url: "https://id.contoso.com".to_string(),
            issuer_name: "Contoso".to_string(),
            sealing_key: SealingKey::generate().unwrap().0,
            breached_passwords: None,
            max_concurrent_hashes: 1,
            revocation_fetcher: None,
        },
    );
    let Workload {
        admin,
        client,
        principal,
        secret,
        resource,
        ctx,
    } = workload(&directory).await;
    let basic = |secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", client.app_id))
        )
    };
    let form: BTreeMap<String, String> = [
        ("grant_type".to_string(), "client_credentials".to_string()),
        (
            "scope".to_string(),
            format!("api://{}/.default", resource.app_id),
        ),
    ]
    .into();
    let good = basic(secret.secret_text.expose());
    assert!(
        directory
            .token_request(&ctx, Some(&good), &form)
            .await
            .is_ok()
    );
    // A wrong secret never rides on the cache.
    assert_eq!(
        directory
            .token_request(&ctx, Some(&basic("wrong")), &form)
            .await
            .unwrap_err()
            .error,
        "invalid_client"
    );

    directory
        .remove_application_password(&admin, client.id, secret.credential.key_id)
        .await
        .unwrap();
    clock.advance_seconds(GRANT_CACHE_SECONDS);
    assert_eq!(
        directory
            .token_request(&ctx, Some(&good), &form)
            .await
            .unwrap_err()
            .error,
        "invalid_client"
    );

    // Disabling the workload likewise.
    let second = directory
        .add_application_password(&admin, client.id, json!({}))
        .await
        .unwrap();
    let second = basic(second.secret_text.expose());
    assert!(
        directory
            .token_request(&ctx, Some(&second), &form)
            .await
            .is_ok()
    );
    directory
        .update_service_principal(
            &admin,
            principal.id,
            json!({ "accountEnabled": false }),
            None,
        )
        .await
        .unwrap();
    clock.advance_seconds(GRANT_CACHE_SECONDS);
    assert_eq!(
        directory
            .token_request(&ctx, Some(&second), &form)
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
    let directory = Arc::new(Directory::new(store, Arc::new(tessera_core::SystemClock)));
    let Workload {
        client,
        secret,
        resource,
        ctx,
        ..
    } = workload(&directory).await;
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            client.app_id,
            secret.secret_text.expose()
        ))
    );
    let scope = format!("api://{}/.default", resource.app_id);
    // One token first: the tenant's signing keys are made on first use, and racing
    // to make them is not what this test is about.
    let warm: BTreeMap<String, String> = [
        ("grant_type".to_string(), "client_credentials".to_string()),
        ("scope".to_string(), scope.clone()),
    ]
    .into();
    directory
        .token_request(&ctx, Some(&good), &warm)
        .await
        .unwrap();
    // Waves of 20 concurrent requests (half of them hostile), so that hostile and
    // legitimate entries share the writer's batches without exhausting the test
    // pool's 8 connections on a loaded machine.
    for wave in 0..10 {
        let mut tasks = Vec::new();
        for round in wave * 20..(wave + 1) * 20 {
            let directory = directory.clone();
            let ctx = ctx.clone();
            let good = good.clone();
            let scope = scope.clone();
            tasks.push(tokio::spawn(async move {
                let mut form: BTreeMap<String, String> = [
                    ("grant_type".to_string(), "client_credentials".to_string()),
                    ("scope".to_string(), scope),
                ]
                .into();
                if round % 2 == 0 {
                    form.insert("client_id".into(), "a\0b".into());
                    form.insert("client_secret".into(), "x\0y".into());
                    let error = directory
                        .token_request(&ctx, None, &form)
                        .await
                        .unwrap_err();
                    assert_eq!(error.error, "invalid_client", "{}", error.description);
                } else {
                    directory
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

on_both_backends!(
    revocation_takes_effect_within_seconds,
    a_nul_byte_in_the_log_fails_no_other_request
);

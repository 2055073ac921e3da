//! Token signing keys on SQLite and PostgreSQL: generated on first use, sealed at rest,
//! rotated on schedule with the next key published ahead, retired keys kept until
//! their tokens have expired, and one rotation when several nodes try at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tessera_core::crypto::SealingKey;
use tessera_oauth::jws;
use tessera_oauth::keys::Algorithm;
use tessera_service::App;
use tessera_service::authn::AuthSettings;
use tessera_store::{Kind, ListQuery, Store};
use tessera_testkit::{ShiftedClock, auth_settings, bootstrap_admin};

const DAY: i64 = 86_400;

fn directory(store: Arc<dyn Store>, clock: Arc<ShiftedClock>, key: SealingKey) -> App {
    App::with_auth(
        store,
        clock,
        AuthSettings {
            sealing_key: key,
            ..auth_settings("http://localhost:8080")
        },
    )
}

async fn kids(directory: &App, tenant: tessera_core::TenantId) -> Vec<String> {
    let jwks = directory.oidc.jwks(tenant).await.unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn keys_rotate_on_schedule(store: Arc<dyn Store>) {
    let clock = Arc::new(ShiftedClock::default());
    let (key, _) = SealingKey::generate().unwrap();
    let dir = directory(store.clone(), clock.clone(), key);
    let tenant = bootstrap_admin(&dir).await.tenant();
    let es256 = [Algorithm::ES256];

    let done = dir.oidc.rotate_signing_keys(tenant, &es256).await.unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(
        dir.oidc
            .rotate_signing_keys(tenant, &es256)
            .await
            .unwrap()
            .is_empty(),
        "nothing more to do"
    );
    let first = kids(&dir, tenant).await;
    assert_eq!(first.len(), 1);
    // Tokens signed now verify with the published key.
    let set = dir.oidc.key_set(tenant).await.unwrap();
    let signer = set.signing[&Algorithm::ES256].clone();
    let token = jws::sign(&signer, "at+jwt", &serde_json::json!({ "sub": "x" })).unwrap();
    let jwk = &set.jwks["keys"][0];
    assert!(jws::verify(&token, jwk, &[Algorithm::ES256]).is_ok());
    // The private key is sealed in the store, never in the clear.
    let mut reader = store.reader().await.unwrap();
    let records = reader
        .list(
            tenant,
            Kind::SigningKey,
            &ListQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(&records[0].data).unwrap();
    assert!(
        data["sealedPrivateKey"]
            .as_str()
            .unwrap()
            .starts_with("v1.")
    );
    assert!(data["publicJwk"].get("d").is_none());

    // A day before it is due, the next key is published but not used.
    clock.advance_seconds(29 * DAY);
    dir.oidc.rotate_signing_keys(tenant, &es256).await.unwrap();
    let published = kids(&dir, tenant).await;
    assert_eq!(published.len(), 2);
    assert_eq!(
        dir.oidc.key_set(tenant).await.unwrap().signing[&Algorithm::ES256].kid,
        first[0]
    );
    // When due, it signs; the old key stays published for tokens still in use.
    clock.advance_seconds(DAY);
    dir.oidc.rotate_signing_keys(tenant, &es256).await.unwrap();
    let now_signing = dir.oidc.key_set(tenant).await.unwrap().signing[&Algorithm::ES256]
        .kid
        .clone();
    assert_ne!(now_signing, first[0]);
    assert_eq!(kids(&dir, tenant).await.len(), 2);
    // Two days later the retired key is gone.
    clock.advance_seconds(2 * DAY);
    dir.oidc.rotate_signing_keys(tenant, &es256).await.unwrap();
    assert_eq!(kids(&dir, tenant).await, vec![now_signing]);
    // Every change is in the audit trail.
    let events = store
        .audit_query(
            tenant,
            &tessera_store::AuditQuery {
                action: Some("signingKey.state".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
}

async fn several_nodes_rotate_once(store: Arc<dyn Store>) {
    let clock = Arc::new(ShiftedClock::default());
    let (key, bytes) = SealingKey::generate().unwrap();
    let first = directory(store.clone(), clock.clone(), key);
    let tenant = bootstrap_admin(&first).await.tenant();
    let nodes: Vec<Arc<App>> = (0..4)
        .map(|_| {
            Arc::new(directory(
                store.clone(),
                clock.clone(),
                SealingKey::from_bytes(&bytes).unwrap(),
            ))
        })
        .collect();
    let mut tasks = Vec::new();
    for node in nodes.clone() {
        tasks.push(tokio::spawn(async move {
            node.oidc
                .rotate_signing_keys(tenant, &[Algorithm::ES256, Algorithm::RS256])
                .await
                .unwrap()
        }));
    }
    let mut generated = 0;
    for task in tasks {
        generated += task.await.unwrap().len();
    }
    assert_eq!(generated, 2, "one key per algorithm, made by one node");
    for node in &nodes {
        assert_eq!(kids(node, tenant).await.len(), 2);
        let set = node.oidc.key_set(tenant).await.unwrap();
        assert!(
            set.signing.contains_key(&Algorithm::ES256)
                && set.signing.contains_key(&Algorithm::RS256)
        );
    }
    // A node with another sealing key cannot use the keys, and says so.
    let stranger = directory(store.clone(), clock, SealingKey::generate().unwrap().0);
    assert!(stranger.oidc.key_set(tenant).await.is_err());
}

/// A node that cached a tenant's key set before it had keys (a key set request on a
/// new tenant) issues tokens as soon as another node made them, not only once its
/// cache runs out a minute later.
async fn a_node_signs_with_keys_another_node_made(store: Arc<dyn Store>) {
    let clock = Arc::new(ShiftedClock::default());
    let (key, _) = SealingKey::generate().unwrap();
    let first = directory(store.clone(), clock.clone(), key.clone());
    let workload = tessera_testkit::workload(&first).await;
    let tenant = workload.ctx.tenant;
    // No keys yet: this node caches an empty set.
    assert!(kids(&first, tenant).await.is_empty());
    let other = directory(store.clone(), clock.clone(), key);
    assert_eq!(
        other
            .oidc
            .rotate_signing_keys(tenant, &Algorithm::ALL)
            .await
            .unwrap()
            .len(),
        Algorithm::ALL.len()
    );
    let basic = workload.basic(workload.secret.secret_text.expose());
    let issued = first
        .oidc
        .token_request(
            &workload.ctx,
            Some(&basic),
            &workload.client_credentials_form(),
        )
        .await;
    assert!(issued.is_ok(), "{:?}", issued.err());
}

tessera_testkit::both_backends!(
    keys_rotate_on_schedule,
    several_nodes_rotate_once,
    a_node_signs_with_keys_another_node_made
);

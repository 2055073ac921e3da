//! What a personal access token authenticates as is kept per node (the callers
//! cache), and still every change is seen at once on every node: two nodes on
//! one database, SQLite and PostgreSQL. A role removed, an owner disabled, a
//! token revoked on one node are refused by the other's very next request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;
use tessera_directory::roles::HELPDESK_ADMINISTRATOR;
use tessera_service::{App, Context, ServiceError, Versioned};
use tessera_testkit::{Backend, bootstrap_admin, both_backends};
use uuid::Uuid;

struct Nodes {
    a: App,
    b: App,
    admin: Context,
}

async fn nodes(backend: Backend) -> Nodes {
    let store = backend.store().await;
    let a = App::new(store.clone(), Arc::new(tessera_core::SystemClock));
    let admin = bootstrap_admin(&a).await.ctx;
    let b = App::new(store, Arc::new(tessera_core::SystemClock));
    Nodes { a, b, admin }
}

async fn token_for(n: &Nodes, user: Uuid) -> String {
    let made =
        n.b.directory
            .issue_token_for(&n.admin, user, json!({"displayName": "laptop"}))
            .await
            .unwrap();
    made.secret.expose().to_string()
}

async fn roles_on_a(n: &Nodes, token: &str) -> Result<Vec<Uuid>, ServiceError> {
    let (_, caller) = n.a.directory.authenticate_token(token).await?;
    Ok(caller.grants().iter().map(|g| g.role_id).collect())
}

async fn changes_on_one_node_are_seen_by_the_others_next_request(n: Nodes) {
    let user =
        n.a.directory
            .create_user(
                &n.admin,
                json!({"userPrincipalName": format!("hd-{}@contoso.com", Uuid::new_v4().simple()),
                   "displayName": "Help desk", "accountEnabled": true}),
            )
            .await
            .unwrap()
            .id;
    let assignment =
        n.b.directory
            .create_role_assignment(
                &n.admin,
                json!({"principalId": user, "roleDefinitionId": HELPDESK_ADMINISTRATOR,
                   "directoryScopeId": "/"}),
            )
            .await
            .unwrap();
    let token = token_for(&n, user).await;
    // Loaded, then kept: the same answer.
    assert_eq!(
        roles_on_a(&n, &token).await.unwrap(),
        [HELPDESK_ADMINISTRATOR]
    );
    assert_eq!(
        roles_on_a(&n, &token).await.unwrap(),
        [HELPDESK_ADMINISTRATOR]
    );
    // Users created meanwhile (which move no caller) leave it kept and right.
    for i in 0..3 {
        n.b.directory
            .create_user(
                &n.admin,
                json!({"userPrincipalName": format!("bulk{i}-{}@contoso.com", Uuid::new_v4().simple()),
                       "displayName": "Bulk"}),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        roles_on_a(&n, &token).await.unwrap(),
        [HELPDESK_ADMINISTRATOR]
    );
    // The role removed on b: gone on a's next request.
    n.b.directory
        .delete_role_assignment(&n.admin, assignment.id)
        .await
        .unwrap();
    assert!(roles_on_a(&n, &token).await.unwrap().is_empty());
    // The owner disabled on b: refused on a.
    n.b.directory
        .update_user(
            &n.admin,
            Versioned::any(user).patch(json!({"accountEnabled": false})),
        )
        .await
        .unwrap();
    assert!(matches!(
        roles_on_a(&n, &token).await,
        Err(ServiceError::Unauthenticated)
    ));
    // Enabled again, a token revoked on b: refused on a, while another works.
    n.b.directory
        .update_user(
            &n.admin,
            Versioned::any(user).patch(json!({"accountEnabled": true})),
        )
        .await
        .unwrap();
    let other = token_for(&n, user).await;
    assert!(roles_on_a(&n, &token).await.is_ok());
    assert!(roles_on_a(&n, &other).await.is_ok());
    let (_, caller) = n.a.directory.authenticate_token(&token).await.unwrap();
    let token_id = caller
        .credential()
        .and_then(|c| c.strip_prefix("pat:"))
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap();
    n.b.directory
        .revoke_token(&n.admin, user, token_id)
        .await
        .unwrap();
    assert!(matches!(
        roles_on_a(&n, &token).await,
        Err(ServiceError::Unauthenticated)
    ));
    assert!(roles_on_a(&n, &other).await.is_ok());
}

both_backends!(setup = nodes; changes_on_one_node_are_seen_by_the_others_next_request);

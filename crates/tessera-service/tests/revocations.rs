//! Continuous access evaluation across two nodes on one database, SQLite and
//! PostgreSQL: a change made on node A (sessions revoked, the account
//! disabled, the password reset, a refresh token family revoked) ends the
//! access tokens already out on node B within about one of B's readings of
//! the revocations, with no database read per token checked; the tokens of
//! others stay good, and a token issued after the change is good.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tessera_core::{Clock, SecretString, SystemClock, Timestamp};
use tessera_service::authn::{SignInContext, SignInOutcome};
use tessera_service::oauth::{AuthorizeContext, AuthorizeOutcome, BearerError, TokenContext};
use tessera_service::{App, Context, Versioned};
use tessera_testkit::fixtures::{PKCE_VERIFIER, authorize_code_with};
use tessera_testkit::{Backend, auth_settings, bootstrap_admin, both_backends};
use uuid::Uuid;

const ISSUER: &str = "http://localhost:8080";
const PASSWORD: &str = "violet-harbour-engine-42";
const REDIRECT: &str = "https://app.contoso.com/cb";
/// Longer than any reading of the revocations should take, however busy the
/// machine running the tests.
const AT_MOST: Duration = Duration::from_secs(10);

struct Nodes {
    a: App,
    b: App,
    admin: Context,
    client_id: String,
}

async fn nodes(backend: Backend) -> Nodes {
    let store = backend.store().await;
    // Both nodes hold the deployment's one sealing key.
    let (_, key) = tessera_core::crypto::SealingKey::generate().unwrap();
    let node = |store| {
        App::with_auth(
            store,
            Arc::new(tessera_core::SystemClock),
            tessera_service::authn::AuthSettings {
                sealing_key: tessera_core::crypto::SealingKey::from_bytes(&key).unwrap(),
                ..auth_settings(ISSUER)
            },
        )
    };
    let a = node(store.clone());
    let admin = bootstrap_admin(&a).await.ctx;
    let b = node(store);
    let app = a
        .directory
        .create_application(
            &admin,
            json!({ "displayName": "Mail app", "isFallbackPublicClient": true,
                    "publicClient": { "redirectUris": [REDIRECT] } }),
        )
        .await
        .unwrap();
    a.directory
        .create_service_principal(&admin, json!({ "appId": app.app_id }))
        .await
        .unwrap();
    a.directory
        .create_permission_grant(
            &admin,
            json!({ "clientId": app.app_id, "consentType": "AllPrincipals",
                    "scope": "openid profile offline_access" }),
        )
        .await
        .unwrap();
    Nodes {
        a,
        b,
        admin,
        client_id: app.app_id.to_string(),
    }
}

struct Tokens {
    access: String,
    refresh: String,
}

impl Nodes {
    async fn user(&self, name: &str) -> Uuid {
        let user = self
            .a
            .directory
            .create_user(
                &self.admin,
                json!({"userPrincipalName": format!("{name}@contoso.com"), "displayName": name}),
            )
            .await
            .unwrap()
            .id;
        self.a
            .sign_in
            .reset_password(&self.admin, user, Some(SecretString::new(PASSWORD.into())))
            .await
            .unwrap();
        user
    }

    fn token_context(&self) -> TokenContext {
        TokenContext {
            tenant: self.admin.tenant,
            issuer: ISSUER.into(),
            correlation_id: format!("token-{}", Uuid::new_v4()),
            client_address: Some("192.0.2.10".into()),
            dpop: None,
            client_certificates: Vec::new(),
        }
    }

    /// `name` signs in on node A and the application gets tokens there.
    async fn tokens(&self, name: &str) -> Tokens {
        self.tokens_with(name, &[]).await.0
    }

    fn authorize_context(&self, name: &str) -> AuthorizeContext {
        AuthorizeContext {
            tenant: self.admin.tenant,
            issuer: ISSUER.to_string(),
            correlation_id: format!("corr-app-{name}"),
            client_address: Some("192.0.2.10".to_string()),
            user_agent: Some("test-agent".to_string()),
            device_thumbprint: None,
        }
    }

    /// The same, with more authorization parameters; the session too.
    async fn tokens_with(
        &self,
        name: &str,
        extra: &[(&str, &str)],
    ) -> (Tokens, tessera_service::authn::SessionInfo) {
        let ctx = SignInContext {
            tenant: self.admin.tenant,
            correlation_id: format!("corr-{name}"),
            client_address: Some("192.0.2.10".to_string()),
            user_agent: Some("test-agent".to_string()),
            previous_session: None,
        };
        let (flow, _) = self.a.sign_in.start(&ctx).await.unwrap();
        self.a
            .sign_in
            .identify(&ctx, flow.expose(), &format!("{name}@contoso.com"))
            .await
            .unwrap();
        let outcome = self
            .a
            .sign_in
            .submit_password(&ctx, flow.expose(), SecretString::new(PASSWORD.into()))
            .await
            .unwrap()
            .unwrap();
        let SignInOutcome::SignedIn { session } = outcome else {
            panic!("expected a session");
        };
        let session = self
            .a
            .sign_in
            .session(self.admin.tenant, session.expose())
            .await
            .unwrap()
            .unwrap();
        let actx = self.authorize_context(name);
        let AuthorizeOutcome::Respond { params, .. } = authorize_code_with(
            &self.a,
            &actx,
            &session,
            (&self.client_id, REDIRECT, "openid profile offline_access"),
            extra,
        )
        .await
        else {
            panic!("expected a code");
        };
        let code = params
            .iter()
            .find(|(name, _)| *name == "code")
            .map(|(_, value)| value.clone())
            .expect("a code");
        let form: BTreeMap<String, String> = [
            ("grant_type", "authorization_code".to_string()),
            ("client_id", self.client_id.clone()),
            ("code", code),
            ("redirect_uri", REDIRECT.into()),
            ("code_verifier", PKCE_VERIFIER.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let tokens = self
            .a
            .oidc
            .token_request(&self.token_context(), None, &form)
            .await
            .expect("tokens");
        (
            Tokens {
                access: tokens.access_token,
                refresh: tokens.refresh_token.expect("a refresh token"),
            },
            session,
        )
    }

    async fn check(&self, node: &App, token: &str) -> Result<(), BearerError> {
        node.oidc
            .verify_access_token(self.admin.tenant, ISSUER, token)
            .await
            .map(|_| ())
    }

    /// Waits until node B refuses the token: how long it took.
    async fn refused_on_b(&self, token: &str) -> Duration {
        let started = Instant::now();
        loop {
            match self.check(&self.b, token).await {
                Err(BearerError::InvalidToken) => return started.elapsed(),
                Ok(()) => {}
                Err(other) => panic!("refused for another reason: {other:?}"),
            }
            assert!(
                started.elapsed() < AT_MOST,
                "node B still takes the token after {AT_MOST:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn refresh_on_b(&self, refresh: &str) -> Result<(), String> {
        let form: BTreeMap<String, String> = [
            ("grant_type", "refresh_token".to_string()),
            ("client_id", self.client_id.clone()),
            ("refresh_token", refresh.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        self.b
            .oidc
            .token_request(&self.token_context(), None, &form)
            .await
            .map(|_| ())
            .map_err(|e| e.error.to_string())
    }
}

async fn changes_on_a_end_tokens_on_b(n: Nodes) {
    n.user("bystander").await;
    let theirs = n.tokens("bystander").await;

    // Sessions revoked by an administrator on A.
    let adele = n.user("adele").await;
    let tokens = n.tokens("adele").await;
    n.check(&n.b, &tokens.access).await.unwrap();
    n.a.sign_in
        .revoke_user_sessions(&n.admin, adele)
        .await
        .unwrap();
    n.refused_on_b(&tokens.access).await;
    assert_eq!(
        n.refresh_on_b(&tokens.refresh).await.unwrap_err(),
        "invalid_grant"
    );
    // Signed in again after it: the new token is good on both nodes.
    let again = n.tokens("adele").await;
    n.check(&n.a, &again.access).await.unwrap();
    n.check(&n.b, &again.access).await.unwrap();

    // The account disabled on A; enabling it again brings nothing back.
    let brian = n.user("brian").await;
    let tokens = n.tokens("brian").await;
    let disable = |enabled: bool| Versioned::any(brian).patch(json!({ "accountEnabled": enabled }));
    n.a.directory
        .update_user(&n.admin, disable(false))
        .await
        .unwrap();
    n.refused_on_b(&tokens.access).await;
    n.a.directory
        .update_user(&n.admin, disable(true))
        .await
        .unwrap();
    assert_eq!(
        n.check(&n.b, &tokens.access).await,
        Err(BearerError::InvalidToken)
    );
    assert_eq!(
        n.refresh_on_b(&tokens.refresh).await.unwrap_err(),
        "invalid_grant"
    );
    n.check(&n.b, &n.tokens("brian").await.access)
        .await
        .unwrap();

    // The password reset on A.
    let chloe = n.user("chloe").await;
    let tokens = n.tokens("chloe").await;
    n.a.sign_in
        .reset_password(
            &n.admin,
            chloe,
            Some(SecretString::new("another-harbour-engine-43".into())),
        )
        .await
        .unwrap();
    n.refused_on_b(&tokens.access).await;

    // A refresh token used twice on A: its family ends, and the access tokens
    // issued in it with it.
    n.user("dana").await;
    let tokens = n.tokens("dana").await;
    let form: BTreeMap<String, String> = [
        ("grant_type", "refresh_token".to_string()),
        ("client_id", n.client_id.clone()),
        ("refresh_token", tokens.refresh.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let rotated =
        n.a.oidc
            .token_request(&n.token_context(), None, &form)
            .await
            .unwrap();
    assert!(
        n.a.oidc
            .token_request(&n.token_context(), None, &form)
            .await
            .is_err(),
        "the first refresh token again"
    );
    n.refused_on_b(&tokens.access).await;
    n.refused_on_b(&rotated.access_token).await;

    // The user's assignment to the application removed on A: their tokens
    // for it end, and their refresh token family.
    let erin = n.user("erin").await;
    let sp =
        n.a.directory
            .get_service_principal_by_app_id(&n.admin, n.client_id.parse().unwrap())
            .await
            .unwrap();
    let assignment =
        n.a.directory
            .assign_app_role(&n.admin, sp.id, json!({ "principalId": erin }))
            .await
            .unwrap();
    let tokens = n.tokens("erin").await;
    n.a.directory
        .remove_app_role_assignment(&n.admin, sp.id, assignment.id)
        .await
        .unwrap();
    n.refused_on_b(&tokens.access).await;
    assert_eq!(
        n.refresh_on_b(&tokens.refresh).await.unwrap_err(),
        "invalid_grant"
    );

    // The user's risk raised to high on A.
    let fay = n.user("fay").await;
    let tokens = n.tokens("fay").await;
    n.a.risk
        .report_risk(&n.admin, fay, json!({ "riskLevel": "high" }))
        .await
        .unwrap();
    n.refused_on_b(&tokens.access).await;
    assert_eq!(
        n.refresh_on_b(&tokens.refresh).await.unwrap_err(),
        "invalid_grant"
    );

    // A sign-in method removed by an administrator on A.
    let gus = n.user("gus").await;
    let tokens = n.tokens("gus").await;
    let pass =
        n.a.sign_in
            .issue_temporary_access_pass(&n.admin, gus, json!({ "lifetimeInMinutes": 60 }))
            .await
            .unwrap();
    n.a.sign_in
        .delete_user_method(&n.admin, gus, pass.id)
        .await
        .unwrap();
    n.refused_on_b(&tokens.access).await;

    // Nobody else's token ended.
    n.check(&n.a, &theirs.access).await.unwrap();
    n.check(&n.b, &theirs.access).await.unwrap();
}

/// A clock that stands still until a test moves it: a grant remembered by a
/// node cannot age out of its cache, so only a revocation can end it.
struct StillClock(AtomicI64);

impl StillClock {
    fn advance_seconds(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1_000_000, Ordering::SeqCst);
    }
}

impl Clock for StillClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.load(Ordering::SeqCst))
    }
}

struct WorkloadNodes {
    a: App,
    b: App,
    clock: Arc<StillClock>,
    w: tessera_testkit::fixtures::Workload,
}

async fn workload_nodes(backend: Backend) -> WorkloadNodes {
    let store = backend.store().await;
    let clock = Arc::new(StillClock(AtomicI64::new(SystemClock.now().unix_micros())));
    let (_, key) = tessera_core::crypto::SealingKey::generate().unwrap();
    let node = |store| {
        App::with_auth(
            store,
            clock.clone(),
            tessera_service::authn::AuthSettings {
                sealing_key: tessera_core::crypto::SealingKey::from_bytes(&key).unwrap(),
                ..auth_settings(ISSUER)
            },
        )
    };
    let a = node(store.clone());
    let w = tessera_testkit::fixtures::workload(&a).await;
    let b = node(store);
    WorkloadNodes { a, b, clock, w }
}

impl WorkloadNodes {
    async fn token_on_b(&self, secret: &str) -> Result<String, String> {
        self.b
            .oidc
            .token_request(
                &self.w.ctx,
                Some(&self.w.basic(secret)),
                &self.w.client_credentials_form(),
            )
            .await
            .map(|tokens| tokens.access_token)
            .map_err(|e| e.error.to_string())
    }

    /// Waits until node B refuses the workload a token: the grant it
    /// remembers ended with the change (its clock stands still).
    async fn grant_ends_on_b(&self, secret: &str, expected: &str) {
        let started = Instant::now();
        loop {
            match self.token_on_b(secret).await {
                Err(error) => {
                    assert_eq!(error, expected);
                    return;
                }
                Ok(_) => assert!(
                    started.elapsed() < AT_MOST,
                    "node B still grants after {AT_MOST:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn refused_on_b(&self, token: &str) {
        let started = Instant::now();
        while self
            .b
            .oidc
            .verify_access_token(self.w.admin.tenant, &self.w.ctx.issuer, token)
            .await
            .is_ok()
        {
            assert!(
                started.elapsed() < AT_MOST,
                "node B still takes the token after {AT_MOST:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn workload_changes_end_grants_on_b(n: WorkloadNodes) {
    let holder = tessera_service::CredentialHolder::Application;
    // B remembers the grant (the second request is answered from it).
    let first = n.token_on_b(n.w.secret.secret_text.expose()).await.unwrap();
    n.b.oidc
        .verify_access_token(n.w.admin.tenant, &n.w.ctx.issuer, &first)
        .await
        .unwrap();
    n.token_on_b(n.w.secret.secret_text.expose()).await.unwrap();
    n.clock.advance_seconds(1);
    // The secret removed on A.
    n.a.directory
        .remove_password(
            &n.w.admin,
            holder,
            n.w.client.id,
            n.w.secret.credential.key_id,
        )
        .await
        .unwrap();
    n.grant_ends_on_b(n.w.secret.secret_text.expose(), "invalid_client")
        .await;
    n.refused_on_b(&first).await;

    // A new secret works, and its tokens are good (those of the
    // revocation's millisecond are not: they count as before it).
    n.clock.advance_seconds(1);
    let secret =
        n.a.directory
            .add_password(&n.w.admin, holder, n.w.client.id, json!({}))
            .await
            .unwrap();
    let token = n.token_on_b(secret.secret_text.expose()).await.unwrap();
    n.b.oidc
        .verify_access_token(n.w.admin.tenant, &n.w.ctx.issuer, &token)
        .await
        .unwrap();
    n.clock.advance_seconds(3);
    n.token_on_b(secret.secret_text.expose()).await.unwrap();
    n.token_on_b(secret.secret_text.expose()).await.unwrap();
    n.clock.advance_seconds(1);
    // The service principal disabled on A.
    n.a.directory
        .update_service_principal(
            &n.w.admin,
            Versioned::any(n.w.principal.id).patch(json!({ "accountEnabled": false })),
        )
        .await
        .unwrap();
    n.grant_ends_on_b(secret.secret_text.expose(), "unauthorized_client")
        .await;
    n.refused_on_b(&token).await;
}

/// A client that handles claims challenges (`xms_cc` `cp1`) and hears of
/// revocations (an enabled stream) gets a long-lived access token; once a
/// change ends it, node B answers with a claims challenge, and the
/// authorization endpoint asks for a sign-in after the change before it gives
/// a code again, even in a live session.
async fn capable_clients_get_long_tokens_and_challenges(n: Nodes) {
    let capable = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;
    let lifetime = |token: &str| {
        let (_, claims) = tessera_oauth::jws::peek(token).unwrap();
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()
    };
    let ivy = n.user("ivy").await;
    // No stream yet: the short lifetime, but the capability is carried.
    let (tokens, _) = n.tokens_with("ivy", &[("claims", capable)]).await;
    assert_eq!(lifetime(&tokens.access), 15 * 60);
    // The application hears of revocations: a day.
    let sp =
        n.a.directory
            .get_service_principal_by_app_id(&n.admin, n.client_id.parse().unwrap())
            .await
            .unwrap();
    let receiver = tessera_service::signals::ReceiverCaller {
        tenant: n.admin.tenant,
        app_id: n.client_id.parse().unwrap(),
        service_principal: sp.id,
        display_name: "Mail app".into(),
        manage: true,
        correlation_id: "c".into(),
        client_address: None,
    };
    n.a.signals
        .create_stream(
            &receiver,
            &json!({ "delivery": { "method": "urn:ietf:rfc:8936" }, "events_requested": [
                "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
                "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
            ] }),
        )
        .await
        .unwrap();
    let (tokens, session) = n.tokens_with("ivy", &[("claims", capable)]).await;
    assert_eq!(lifetime(&tokens.access), 24 * 3600);
    assert_eq!(
        lifetime(&n.tokens("ivy").await.access),
        15 * 60,
        "not capable"
    );
    // High risk ends the token, not the session: B challenges.
    n.a.risk
        .report_risk(&n.admin, ivy, json!({ "riskLevel": "high" }))
        .await
        .unwrap();
    let started = Instant::now();
    let challenge = loop {
        match n.check(&n.b, &tokens.access).await {
            Err(BearerError::InsufficientClaims(claims)) => break claims,
            Ok(()) => assert!(started.elapsed() < AT_MOST, "B still takes it"),
            Err(other) => panic!("refused another way: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    use base64::Engine as _;
    let claims = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(challenge)
            .unwrap(),
    )
    .unwrap();
    // The live session signed in before the change: no code until a new
    // sign-in.
    let outcome = authorize_code_with(
        &n.a,
        &n.authorize_context("ivy"),
        &session,
        (&n.client_id, REDIRECT, "openid"),
        &[("claims", &claims)],
    )
    .await;
    assert!(
        !matches!(&outcome, AuthorizeOutcome::Respond { params, .. } if params.iter().any(|(k, _)| *k == "code")),
        "a code without a new sign-in: {outcome:?}"
    );
}

/// Strict location enforcement: a policy blocks sign-ins from outside the
/// office and strictly enforces locations. A token issued at the office
/// works there on node B, and is refused from elsewhere (with a claims
/// challenge for a client that handles them); the refusal is audited once
/// per token and address and told as CAEP token-claims-change. The policy
/// as it stands counts: made report-only, the token works anywhere again.
async fn strict_location_refuses_tokens_outside(n: Nodes) {
    let office =
        n.a.access
            .create_named_location(
                &n.admin,
                json!({ "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office",
                    "isTrusted": true, "ipRanges": [{ "cidrAddress": "192.0.2.0/24" }] }),
            )
            .await
            .unwrap();
    let june = n.user("june").await;
    n.user("kai").await;
    let policy = n
        .a
        .access
        .create_policy(
            &n.admin,
            json!({ "displayName": "Block outside the office", "state": "enabled",
                "conditions": {
                    "users": { "includeUsers": [june.to_string()] },
                    "applications": { "includeApplications": ["All"] },
                    "clientAppTypes": ["all"],
                    "locations": { "includeLocations": ["All"], "excludeLocations": [office.id.to_string()] } },
                "grantControls": { "operator": "OR", "builtInControls": ["block"] },
                "sessionControls": { "continuousAccessEvaluation": { "mode": "strictLocation" } } }),
        )
        .await
        .unwrap();
    // The application hears of token claims changes (poll).
    let sp =
        n.a.directory
            .get_service_principal_by_app_id(&n.admin, n.client_id.parse().unwrap())
            .await
            .unwrap();
    let receiver = tessera_service::signals::ReceiverCaller {
        tenant: n.admin.tenant,
        app_id: n.client_id.parse().unwrap(),
        service_principal: sp.id,
        display_name: "Mail app".into(),
        manage: true,
        correlation_id: "c".into(),
        client_address: None,
    };
    let stream =
        n.a.signals
            .create_stream(
                &receiver,
                &json!({ "delivery": { "method": "urn:ietf:rfc:8936" }, "events_requested": [
                "https://schemas.openid.net/secevent/caep/event-type/token-claims-change",
            ] }),
            )
            .await
            .unwrap();
    let stream_id = stream["stream_id"].as_str().unwrap().to_string();
    let userinfo = |node: &App, token: &str, address: &str| {
        let token = token.to_string();
        let address = address.to_string();
        let oidc = node.oidc.clone();
        let tenant = n.admin.tenant;
        async move {
            let presented = tessera_service::oauth::Presented {
                token: &token,
                dpop_scheme: false,
                proof: None,
                method: "GET",
                url: "http://localhost:8080/oauth2/userinfo",
                client_certificate: None,
                client_address: Some(&address),
            };
            oidc.userinfo(tenant, ISSUER, &presented).await.map(|_| ())
        }
    };
    let fence = |token: &str| {
        let (_, claims) = tessera_oauth::jws::peek(token).unwrap();
        claims["cae_loc"].clone()
    };
    // Signed in at the office: the token carries the policy.
    let june_tokens = n.tokens("june").await;
    assert_eq!(fence(&june_tokens.access), json!([policy.id]));
    userinfo(&n.b, &june_tokens.access, "192.0.2.77")
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            userinfo(&n.b, &june_tokens.access, "203.0.113.9").await,
            Err(BearerError::InvalidToken)
        );
    }
    // Someone the policy is not for: no fence.
    let kai = n.tokens("kai").await;
    assert_eq!(fence(&kai.access), serde_json::Value::Null);
    userinfo(&n.b, &kai.access, "203.0.113.9").await.unwrap();
    // A client that handles claims challenges is told to come back.
    let capable = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;
    let (june_capable, _) = n.tokens_with("june", &[("claims", capable)]).await;
    assert!(matches!(
        userinfo(&n.b, &june_capable.access, "203.0.113.9").await,
        Err(BearerError::InsufficientClaims(_))
    ));
    // Audited once per token and address on the node that refused.
    let timeline =
        n.a.signals
            .revocation_timeline(&n.admin, june)
            .await
            .unwrap();
    let told: Vec<_> = timeline
        .iter()
        .filter(|e| e.event == "token-claims-change")
        .collect();
    assert_eq!(told.len(), 2, "{timeline:?}");
    assert!(told.iter().all(|e| e.initiated_by == "policy"));
    // And the application's stream carries them: CAEP token-claims-change,
    // the network no longer trusted, about june.
    n.a.signals.signals_round(n.admin.tenant).await.unwrap();
    let polled =
        n.a.signals
            .poll(
                &receiver,
                &stream_id,
                &json!({ "returnImmediately": true, "maxEvents": 10 }),
            )
            .await
            .unwrap();
    let changes: Vec<serde_json::Value> = polled["sets"]
        .as_object()
        .unwrap()
        .values()
        .map(|set| tessera_oauth::jws::peek(set.as_str().unwrap()).unwrap().1)
        .filter_map(|claims| {
            claims["events"]
                ["https://schemas.openid.net/secevent/caep/event-type/token-claims-change"]
                .as_object()
                .map(|event| json!({ "sub": claims["sub_id"], "event": event }))
        })
        .collect();
    assert_eq!(changes.len(), 2, "{polled}");
    for change in &changes {
        assert_eq!(change["event"]["claims"]["trusted_network"], "false");
        assert_eq!(change["sub"]["sub"], june.to_string(), "{change}");
    }
    // A refresh decides again: a policy added since is in the new fence.
    let mfa_outside = n
        .a
        .access
        .create_policy(
            &n.admin,
            json!({ "displayName": "MFA outside the office", "state": "enabled",
                "conditions": {
                    "users": { "includeUsers": [june.to_string()] },
                    "applications": { "includeApplications": ["All"] },
                    "clientAppTypes": ["all"],
                    "locations": { "includeLocations": ["All"], "excludeLocations": [office.id.to_string()] } },
                "grantControls": { "operator": "OR", "builtInControls": ["mfa"] } }),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut refresh = june_tokens.refresh.clone();
    let refreshed = loop {
        // B builds its policy set again within about a second.
        let form: BTreeMap<String, String> = [
            ("grant_type", "refresh_token"),
            ("client_id", n.client_id.as_str()),
            ("refresh_token", refresh.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let refreshed =
            n.b.oidc
                .token_request(&n.token_context(), None, &form)
                .await
                .unwrap();
        refresh = refreshed.refresh_token.clone().unwrap();
        let fenced = fence(&refreshed.access_token);
        if fenced.as_array().unwrap().len() == 2 || started.elapsed() > AT_MOST {
            break fenced;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut ids: Vec<String> = serde_json::from_value(refreshed).unwrap();
    ids.sort();
    let mut expected = vec![policy.id.to_string(), mfa_outside.id.to_string()];
    expected.sort();
    assert_eq!(ids, expected);
    // Report-only now: the same token works outside, on B within its
    // reading of the policies.
    n.a.access
        .update_policy(
            &n.admin,
            tessera_service::Patch {
                at: Versioned::new(policy.id, None),
                body: json!({ "state": "enabledForReportingButNotEnforced" }),
            },
        )
        .await
        .unwrap();
    let started = Instant::now();
    while userinfo(&n.b, &june_tokens.access, "203.0.113.9")
        .await
        .is_err()
    {
        assert!(started.elapsed() < AT_MOST, "B still refuses it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends!(setup = nodes; changes_on_a_end_tokens_on_b, capable_clients_get_long_tokens_and_challenges, strict_location_refuses_tokens_outside);
mod workloads {
    use super::*;
    both_backends!(setup = workload_nodes; workload_changes_end_grants_on_b);
}

//! Identity Protection through real sign-ins, on SQLite and PostgreSQL: a
//! password sign-in from an address on the operator's anonymizer or malicious
//! list is detected in real time, recorded beside the sign-in log, shown on the
//! log entry and listed by `identityProtection/riskDetections`; one from
//! elsewhere is not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::json;
use tessera_core::SecretString;
use tessera_risk::iplist::IpList;
use tessera_service::authn::{SessionInfo, SignInContext, SignInFilter, SignInOutcome};
use tessera_service::oauth::{AuthorizeContext, AuthorizeOutcome};
use tessera_service::risk::{DetectionFilter, IpLists};
use tessera_service::{App, Context, ServiceError};
use tessera_testkit::{Backend, auth_settings, bootstrap_admin, both_backends};

struct Lists {
    anonymous: IpList,
    malicious: IpList,
}

impl IpLists for Lists {
    fn anonymous(&self, ip: IpAddr) -> Option<String> {
        self.anonymous.find(ip).map(str::to_string)
    }
    fn malicious(&self, ip: IpAddr) -> Option<String> {
        self.malicious.find(ip).map(str::to_string)
    }
}

/// The code an authenticator app with `seed` shows at the clock's time.
fn totp_now(seed: &[u8], clock: &tessera_testkit::ShiftedClock) -> String {
    use tessera_core::Clock;
    tessera_authn::totp::code_at(
        seed,
        &tessera_authn::totp::Parameters::default(),
        clock.now().unix_seconds() as u64,
    )
}

struct Harness {
    app: App,
    admin: Context,
}

async fn harness(backend: Backend) -> Harness {
    let app = App::with_auth(
        backend.store().await,
        Arc::new(tessera_core::SystemClock),
        auth_settings("http://localhost:8080"),
    );
    app.risk.set_ip_lists(Arc::new(Lists {
        anonymous: IpList::parse("185.220.101.0/24 tor\n2001:db8:7::/48 vpn\n").unwrap(),
        malicious: IpList::parse("198.51.100.66 botnet\n").unwrap(),
    }));
    let admin = bootstrap_admin(&app).await.ctx;
    Harness { app, admin }
}

const PASSWORD: &str = "violet-harbour-engine-42";
const REDIRECT: &str = "https://app.contoso.com/cb";

impl Harness {
    /// Adele, with a password.
    async fn adele(&self) -> uuid::Uuid {
        let adele = self
            .app
            .directory
            .create_user(
                &self.admin,
                json!({"userPrincipalName": "adele@contoso.com", "displayName": "Adele"}),
            )
            .await
            .unwrap()
            .id;
        self.app
            .sign_in
            .reset_password(&self.admin, adele, Some(SecretString::new(PASSWORD.into())))
            .await
            .unwrap();
        adele
    }

    async fn sign_in_from(&self, address: &str, password: &str) {
        let ctx = SignInContext {
            tenant: self.admin.tenant,
            correlation_id: format!("corr-{address}"),
            client_address: Some(address.to_string()),
            user_agent: Some("test-agent".to_string()),
            previous_session: None,
        };
        let (secret, _) = self.app.sign_in.start(&ctx).await.unwrap();
        self.app
            .sign_in
            .identify(&ctx, secret.expose(), "adele@contoso.com")
            .await
            .unwrap();
        self.app
            .sign_in
            .submit_password(&ctx, secret.expose(), SecretString::new(password.into()))
            .await
            .unwrap();
    }

    /// An application with a service principal: its client id.
    async fn application(&self) -> String {
        let app = self
            .app
            .directory
            .create_application(
                &self.admin,
                json!({ "displayName": "Payroll", "web": { "redirectUris": [REDIRECT] } }),
            )
            .await
            .unwrap();
        self.app
            .directory
            .create_service_principal(&self.admin, json!({ "appId": app.app_id }))
            .await
            .unwrap();
        app.app_id.to_string()
    }

    /// Every user's consent to an application for `scope`.
    async fn consent(&self, client_id: impl serde::Serialize, scope: &str) {
        self.app
            .directory
            .create_permission_grant(
                &self.admin,
                json!({ "clientId": client_id, "consentType": "AllPrincipals", "scope": scope }),
            )
            .await
            .unwrap();
    }

    async fn policy(&self, body: serde_json::Value) {
        self.app
            .access
            .create_policy(&self.admin, body)
            .await
            .unwrap();
    }

    /// Adele's session, signed in with a password from `address`.
    async fn session_from(&self, address: &str, password: &str) -> SessionInfo {
        let secret = self.session_secret_from(address, password).await;
        self.load(&secret).await
    }

    /// The secret of such a session (what the browser holds).
    async fn session_secret_from(&self, address: &str, password: &str) -> String {
        let ctx = SignInContext {
            tenant: self.admin.tenant,
            correlation_id: format!("corr-{address}"),
            client_address: Some(address.to_string()),
            user_agent: Some("test-agent".to_string()),
            previous_session: None,
        };
        self.session_secret_in(&ctx, password).await
    }

    /// The secret of a session Adele signs in to with her password in `ctx`.
    async fn session_secret_in(&self, ctx: &SignInContext, password: &str) -> String {
        self.session_secret_of(ctx, "adele@contoso.com", password)
            .await
    }

    /// The secret of a session `name` signs in to with a password in `ctx`.
    async fn session_secret_of(&self, ctx: &SignInContext, name: &str, password: &str) -> String {
        let ctx = ctx.clone();
        let (secret, _) = self.app.sign_in.start(&ctx).await.unwrap();
        self.app
            .sign_in
            .identify(&ctx, secret.expose(), name)
            .await
            .unwrap();
        let outcome = self
            .app
            .sign_in
            .submit_password(&ctx, secret.expose(), SecretString::new(password.into()))
            .await
            .unwrap()
            .unwrap();
        let SignInOutcome::SignedIn { session } = outcome else {
            panic!("expected a session");
        };
        session.expose().to_string()
    }

    /// Adele's session, signed in with the password and an authenticator
    /// app's code from `address`.
    async fn session_with_code(&self, address: &str, code: &str) -> SessionInfo {
        self.session_with_code_and(address, PASSWORD, code).await
    }

    async fn session_with_code_and(
        &self,
        address: &str,
        password: &str,
        code: &str,
    ) -> SessionInfo {
        let ctx = SignInContext {
            tenant: self.admin.tenant,
            correlation_id: format!("corr-mfa-{address}"),
            client_address: Some(address.to_string()),
            user_agent: Some("test-agent".to_string()),
            previous_session: None,
        };
        let (secret, _) = self.app.sign_in.start(&ctx).await.unwrap();
        self.app
            .sign_in
            .identify(&ctx, secret.expose(), "adele@contoso.com")
            .await
            .unwrap();
        self.app
            .sign_in
            .submit_password(&ctx, secret.expose(), SecretString::new(password.into()))
            .await
            .unwrap()
            .unwrap();
        let outcome = self
            .app
            .sign_in
            .submit_code(&ctx, secret.expose(), code)
            .await
            .unwrap()
            .unwrap();
        let SignInOutcome::SignedIn { session } = outcome else {
            panic!("expected a session after the code");
        };
        self.app
            .sign_in
            .session(self.admin.tenant, session.expose())
            .await
            .unwrap()
            .unwrap()
    }

    /// A user's `riskState`.
    async fn risk_state(&self, user: uuid::Uuid) -> String {
        let risky = self
            .app
            .risk
            .get_risky_user(&self.admin, user)
            .await
            .unwrap();
        serde_json::to_value(risky).unwrap()["riskState"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn load(&self, secret: &str) -> SessionInfo {
        self.app
            .sign_in
            .session(self.admin.tenant, secret)
            .await
            .unwrap()
            .unwrap()
    }

    /// Adele adds an authenticator app (signed in with her password from an
    /// ordinary address): its seed.
    async fn enrol_totp(&self, clock: &tessera_testkit::ShiftedClock) -> Vec<u8> {
        let weak = self.session_secret_from("192.0.2.10", PASSWORD).await;
        let enrolment = self
            .app
            .sign_in
            .begin_totp(&self.load(&weak).await)
            .await
            .unwrap();
        let seed = tessera_authn::totp::base32_decode(&enrolment.secret).unwrap();
        self.app
            .sign_in
            .confirm_totp(
                &self.load(&weak).await,
                "c",
                &totp_now(&seed, clock),
                "Phone",
            )
            .await
            .unwrap();
        seed
    }

    /// The session asks to enter the application from `address`: the error,
    /// if refused (`blocked` when a policy blocks it).
    async fn authorize(
        &self,
        session: &SessionInfo,
        address: &str,
        client_id: &str,
    ) -> Option<String> {
        match self.ask_code(session, address, client_id, "openid").await {
            AuthorizeOutcome::Respond { params, .. } => params
                .iter()
                .find(|(name, _)| *name == "error")
                .map(|(_, value)| value.clone()),
            AuthorizeOutcome::Refused(error) => Some(error.error.as_str().to_string()),
            AuthorizeOutcome::Blocked { .. } => Some("blocked".to_string()),
            _ => None,
        }
    }

    /// The authorization request for a code (PKCE, the RFC 7636 example's
    /// challenge) from `address`, and what it led to.
    async fn ask_code(
        &self,
        session: &SessionInfo,
        address: &str,
        client_id: &str,
        scope: &str,
    ) -> AuthorizeOutcome {
        self.ask_code_on(session, (address, None), client_id, scope)
            .await
    }

    /// The same, from a device its certificate's thumbprint names (if any).
    async fn ask_code_on(
        &self,
        session: &SessionInfo,
        (address, device): (&str, Option<&str>),
        client_id: &str,
        scope: &str,
    ) -> AuthorizeOutcome {
        let actx = AuthorizeContext {
            tenant: self.admin.tenant,
            issuer: "http://localhost:8080".to_string(),
            correlation_id: format!("corr-app-{address}"),
            client_address: Some(address.to_string()),
            user_agent: Some("test-agent".to_string()),
            device_thumbprint: device.map(str::to_string),
        };
        tessera_testkit::fixtures::authorize_code(
            &self.app,
            &actx,
            session,
            (client_id, REDIRECT, scope),
        )
        .await
    }

    /// Adele's own context: she holds no role.
    fn as_user(&self, adele: uuid::Uuid) -> Context {
        let mut ctx = self.admin.clone();
        ctx.caller = ctx.caller.impersonating_for_tests(
            tessera_service::Principal::User {
                id: adele,
                user_principal_name: "adele@contoso.com".into(),
            },
            Vec::new(),
        );
        ctx
    }

    async fn detections(&self, filter: DetectionFilter) -> Vec<serde_json::Value> {
        self.app
            .risk
            .list_detections(&self.admin, &filter)
            .await
            .unwrap()
            .value
            .iter()
            .map(|d| serde_json::to_value(d).unwrap())
            .collect()
    }
}

async fn anonymizers_and_malicious_addresses_are_detected_at_sign_in(h: Harness) {
    let adele = h.adele().await;
    h.sign_in_from("192.0.2.10", PASSWORD).await;
    assert!(
        h.detections(DetectionFilter::default()).await.is_empty(),
        "an ordinary address is no detection"
    );
    h.sign_in_from("185.220.101.7", PASSWORD).await;
    // A failed attempt carries what was found on its log entry, and records
    // no detection (a spray writes no more than the log does).
    h.sign_in_from("198.51.100.66", "wrong password").await;
    assert_eq!(h.detections(DetectionFilter::default()).await.len(), 1);
    h.sign_in_from("198.51.100.66", PASSWORD).await;
    let all = h.detections(DetectionFilter::default()).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let malicious = &all[0];
    assert_eq!(malicious["riskEventType"], "maliciousIPAddress");
    assert_eq!(malicious["riskLevel"], "high");
    assert_eq!(malicious["ipAddress"], "198.51.100.66");
    assert_eq!(malicious["additionalInfo"]["label"], "botnet");
    let tor = &all[1];
    assert_eq!(tor["riskEventType"], "anonymizedIPAddress");
    assert_eq!(tor["riskLevel"], "medium");
    assert_eq!(tor["detectionTimingType"], "realtime");
    assert_eq!(tor["userId"], json!(adele));
    assert_eq!(tor["userPrincipalName"], "adele@contoso.com");
    // The sign-in log entry it came from shows it.
    let log = h
        .app
        .sign_in
        .query_log(
            &h.admin,
            &SignInFilter {
                correlation_id: Some("corr-185.220.101.7".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let entry = serde_json::to_value(&log.value[0]).unwrap();
    assert_eq!(entry["riskLevelDuringSignIn"], "medium");
    assert_eq!(entry["riskEventTypes_v2"], json!(["anonymizedIPAddress"]));
    assert_eq!(tor["requestId"], entry["id"]);
    // Filters and paging.
    let only = h
        .detections(DetectionFilter {
            risk_event_type: Some("anonymizedIPAddress".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(only.len(), 1);
    let page = h
        .app
        .risk
        .list_detections(
            &h.admin,
            &DetectionFilter {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let next = h
        .app
        .risk
        .list_detections(
            &h.admin,
            &DetectionFilter {
                cursor: page.next_cursor.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(next.value.len(), 1);
    assert_ne!(next.value[0].id, page.value[0].id);
    for bad in [
        DetectionFilter {
            risk_event_type: Some("nonsense".into()),
            ..Default::default()
        },
        DetectionFilter {
            risk_level: Some("severe".into()),
            ..Default::default()
        },
        DetectionFilter {
            cursor: Some("x".into()),
            ..Default::default()
        },
        DetectionFilter {
            limit: Some(0),
            ..Default::default()
        },
    ] {
        let refused = h.app.risk.list_detections(&h.admin, &bad).await;
        assert!(
            matches!(refused, Err(ServiceError::Validation(_))),
            "{refused:?}"
        );
    }
    // Only those who may read Identity Protection.
    let reader = h.as_user(adele);
    let refused = h
        .app
        .risk
        .list_detections(&reader, &DetectionFilter::default())
        .await;
    assert!(
        matches!(refused, Err(ServiceError::Forbidden { .. })),
        "{refused:?}"
    );
}

/// A risk-based policy acts on the real-time risk: signed in from an
/// anonymizer, the user is refused the application a policy for medium
/// sign-in risk blocks; from an ordinary address, the same user is not.
async fn conditional_access_decides_with_the_sign_in_risk(h: Harness) {
    let adele = h.adele().await;
    let client_id = h.application().await;
    h.policy(json!({
        "displayName": "Block risky sign-ins", "state": "enabled",
        "conditions": {"users": {"includeUsers": [adele]},
                       "applications": {"includeApplications": ["All"]},
                       "signInRiskLevels": ["medium", "high"]},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}
    }))
    .await;
    let tor = h.session_from("185.220.101.7", PASSWORD).await;
    assert_eq!(
        h.authorize(&tor, "185.220.101.7", &client_id)
            .await
            .as_deref(),
        Some("blocked"),
        "from an anonymizer"
    );
    let office = h.session_from("192.0.2.10", PASSWORD).await;
    assert_eq!(
        h.authorize(&office, "192.0.2.10", &client_id).await,
        None,
        "from elsewhere"
    );
    // The sign-in's risk is its session's: the anonymizer's session stays
    // risky from an ordinary address.
    assert_eq!(
        h.authorize(&tor, "192.0.2.10", &client_id).await.as_deref(),
        Some("blocked")
    );
    // What-If asks as a sign-in from the address would be decided.
    let ask = |address: &str| -> tessera_service::conditional_access::WhatIf {
        serde_json::from_value(json!({
            "userId": adele, "appId": client_id, "ipAddress": address, "country": "FR",
        }))
        .unwrap()
    };
    let result = |answer| serde_json::to_value(answer).unwrap()["result"].clone();
    assert_eq!(
        result(
            h.app
                .access
                .what_if(&h.admin, ask("185.220.101.7"))
                .await
                .unwrap()
        ),
        "block"
    );
    assert_eq!(
        result(
            h.app
                .access
                .what_if(&h.admin, ask("192.0.2.10"))
                .await
                .unwrap()
        ),
        "allow"
    );
}

/// A public client refreshes from the person's device: the address of the
/// refresh counts as a sign-in's would (an anonymizer is refused by a risk
/// policy); a sign-in's own risk goes with its tokens.
async fn a_public_clients_refresh_is_decided_with_its_address(h: Harness) {
    use std::collections::BTreeMap;
    let adele = h.adele().await;
    let app = h
        .app
        .directory
        .create_application(
            &h.admin,
            json!({ "displayName": "Mail app", "isFallbackPublicClient": true,
                    "publicClient": { "redirectUris": [REDIRECT] } }),
        )
        .await
        .unwrap();
    h.app
        .directory
        .create_service_principal(&h.admin, json!({ "appId": app.app_id }))
        .await
        .unwrap();
    h.consent(app.app_id, "openid offline_access").await;
    let client_id = app.app_id.to_string();
    let office = h.session_from("192.0.2.10", PASSWORD).await;
    let AuthorizeOutcome::Respond { params, .. } = h
        .ask_code(&office, "192.0.2.10", &client_id, "openid offline_access")
        .await
    else {
        panic!("expected a code");
    };
    let code = params
        .iter()
        .find(|(name, _)| *name == "code")
        .map(|(_, value)| value.clone())
        .expect("a code");
    let token = |address: &str, form: Vec<(&str, String)>| {
        let ctx = tessera_service::oauth::TokenContext {
            tenant: h.admin.tenant,
            issuer: "http://localhost:8080".into(),
            correlation_id: format!("token-{address}"),
            client_address: Some(address.to_string()),
            dpop: None,
            client_certificates: Vec::new(),
        };
        let form: BTreeMap<String, String> =
            form.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let oidc = h.app.oidc.clone();
        async move { oidc.token_request(&ctx, None, &form).await }
    };
    let tokens = token(
        "192.0.2.10",
        vec![
            ("grant_type", "authorization_code".into()),
            ("client_id", client_id.clone()),
            ("code", code),
            ("redirect_uri", REDIRECT.into()),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            ),
        ],
    )
    .await
    .expect("tokens");
    let refresh_token = tokens.refresh_token.expect("a refresh token");
    h.policy(json!({
        "displayName": "Block risky sign-ins", "state": "enabled",
        "conditions": {"users": {"includeUsers": [adele]},
                       "applications": {"includeApplications": ["All"]},
                       "clientAppTypes": ["all"],
                       "signInRiskLevels": ["medium", "high"]},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}
    }))
    .await;
    let refresh = |address: &'static str| {
        token(
            address,
            vec![
                ("grant_type", "refresh_token".into()),
                ("client_id", client_id.clone()),
                ("refresh_token", refresh_token.clone()),
            ],
        )
    };
    let refused = refresh("185.220.101.7").await;
    assert!(
        refused
            .expect_err("from an anonymizer: refused")
            .description
            .contains("Conditional Access")
    );
    assert!(
        refresh("192.0.2.10").await.is_ok(),
        "from the office: refreshed"
    );
    // The first token again, after it rotated, from elsewhere: two holders,
    // a token anomaly (and the family ends).
    let replayed = refresh("203.0.113.5")
        .await
        .expect_err("a rotated refresh token is refused");
    assert!(
        replayed.description.contains("already used"),
        "{replayed:?}"
    );
    let found = h
        .detections(DetectionFilter {
            risk_event_type: Some("anomalousToken".into()),
            ..Default::default()
        })
        .await;
    let replay = found
        .iter()
        .find(|d| d["additionalInfo"]["reason"] == "replayed")
        .unwrap_or_else(|| panic!("a replayed refresh token: {found:?}"));
    assert_eq!(replay["riskLevel"], "high");
    assert_eq!(replay["additionalInfo"]["token"], "refreshToken");
    assert_eq!(replay["additionalInfo"]["lastNetwork"], "192.0.2.0/24");
    assert_eq!(replay["ipAddress"], "203.0.113.5");
}

/// Failed passwords are counted across the run, by network: a sign-in after
/// five failures on its account from its own network is a brute force; one
/// whose account was among ten a network failed against is a spray. The
/// counts are the store's, so two nodes see the same.
async fn brute_force_and_spray_are_detected_from_failures(h: Harness) {
    let adele = h.adele().await;
    let node = App::with_auth(
        h.app.store().clone(),
        Arc::new(tessera_core::SystemClock),
        auth_settings("http://localhost:8080"),
    );
    // Four failures: not yet.
    for _ in 0..4 {
        h.sign_in_from("203.0.113.50", "wrong password").await;
    }
    h.sign_in_from("203.0.113.50", PASSWORD).await;
    assert!(h.detections(DetectionFilter::default()).await.is_empty());
    // Five more from one address, the last on another node: the sign-in
    // from there after them is one.
    for _ in 0..4 {
        h.sign_in_from("203.0.113.51", "wrong password").await;
    }
    let other = Harness {
        app: node,
        admin: h.admin.clone(),
    };
    other.sign_in_from("203.0.113.51", "wrong password").await;
    // Adele's own sign-in from elsewhere is not made risky by them.
    h.sign_in_from("192.0.2.10", PASSWORD).await;
    assert!(h.detections(DetectionFilter::default()).await.is_empty());
    h.sign_in_from("203.0.113.51", PASSWORD).await;
    let found = h.detections(DetectionFilter::default()).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["riskEventType"], "bruteForce");
    assert_eq!(found[0]["riskLevel"], "medium");
    assert_eq!(
        found[0]["additionalInfo"]["failures"], 5,
        "the first run ended with its sign-in"
    );
    assert_eq!(found[0]["userId"], json!(adele));
    // A network failing against ten names (users or not, Adele's among them),
    // then Adele's sign-in from there.
    for i in 0..10 {
        let ctx = SignInContext {
            tenant: h.admin.tenant,
            correlation_id: format!("spray-{i}"),
            client_address: Some("198.51.100.9".to_string()),
            user_agent: Some("test-agent".to_string()),
            previous_session: None,
        };
        let (secret, _) = h.app.sign_in.start(&ctx).await.unwrap();
        h.app
            .sign_in
            .identify(
                &ctx,
                secret.expose(),
                &if i == 0 {
                    "adele@contoso.com".to_string()
                } else {
                    format!("user{i}@contoso.com")
                },
            )
            .await
            .unwrap();
        h.app
            .sign_in
            .submit_password(
                &ctx,
                secret.expose(),
                SecretString::new("Winter2026!".into()),
            )
            .await
            .unwrap();
    }
    h.sign_in_from("198.51.100.9", PASSWORD).await;
    let sprays = h
        .detections(DetectionFilter {
            risk_event_type: Some("passwordSpray".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(sprays.len(), 1, "{sprays:?}");
    assert_eq!(sprays[0]["additionalInfo"]["accounts"], 10);
    assert_eq!(sprays[0]["additionalInfo"]["source"], "198.51.100.0/24");
    assert_eq!(sprays[0]["riskLevel"], "medium");
}

/// A right password that is in the breached-password list is a leaked
/// credential (high); the same password is not a detection before the list
/// holds it.
async fn a_breached_password_is_a_leaked_credential(h: Harness) {
    let breached = tempfile::tempdir().unwrap();
    let app = App::with_auth(
        h.app.store().clone(),
        Arc::new(tessera_core::SystemClock),
        tessera_service::authn::AuthSettings {
            breached_passwords: Some(breached.path().to_path_buf()),
            ..auth_settings("http://localhost:8080")
        },
    );
    let node = Harness {
        app,
        admin: h.admin.clone(),
    };
    node.adele().await;
    node.sign_in_from("192.0.2.10", PASSWORD).await;
    assert!(node.detections(DetectionFilter::default()).await.is_empty());
    // The password turns up in a breach.
    let (prefix, suffix) = tessera_authn::password::breach_key(PASSWORD);
    std::fs::write(
        breached.path().join(format!("{prefix}.txt")),
        format!("{suffix}:7\r\n"),
    )
    .unwrap();
    node.sign_in_from("192.0.2.10", "wrong password").await;
    assert!(
        node.detections(DetectionFilter::default()).await.is_empty(),
        "a wrong password leaks nothing"
    );
    node.sign_in_from("192.0.2.10", PASSWORD).await;
    let found = node.detections(DetectionFilter::default()).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["riskEventType"], "leakedCredentials");
    assert_eq!(found[0]["riskLevel"], "high");
    assert_eq!(found[0]["detectionTimingType"], "offline", "user risk");
    // Once a day, however often the password is used.
    node.sign_in_from("192.0.2.10", PASSWORD).await;
    assert_eq!(node.detections(DetectionFilter::default()).await.len(), 1);
}

/// User risk follows the detections and persists until someone ends it: a
/// user-risk policy blocks Adele from everywhere after one anonymizer sign-in,
/// until an administrator dismisses it; "confirm compromised" makes it high
/// and ends her sessions; an administrator's password reset remediates it.
/// Every change is in the user's history, newest first.
async fn user_risk_persists_until_remediated_or_dismissed(h: Harness) {
    use tessera_service::risk::{PrincipalKind, RiskyFilter};
    let adele = h.adele().await;
    let client_id = h.application().await;
    h.policy(json!({
        "displayName": "Block risky users", "state": "enabled",
        "conditions": {"users": {"includeUsers": [adele]},
                       "applications": {"includeApplications": ["All"]},
                       "userRiskLevels": ["medium", "high"]},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}
    }))
    .await;
    let office = h.session_from("192.0.2.10", PASSWORD).await;
    assert_eq!(h.authorize(&office, "192.0.2.10", &client_id).await, None);
    let refused = h.app.risk.get_risky_user(&h.admin, adele).await;
    assert!(
        matches!(refused, Err(ServiceError::NotFound { .. })),
        "{refused:?}"
    );
    h.sign_in_from("185.220.101.7", PASSWORD).await;
    let risky =
        serde_json::to_value(h.app.risk.get_risky_user(&h.admin, adele).await.unwrap()).unwrap();
    assert_eq!(risky["riskLevel"], "medium");
    assert_eq!(risky["riskState"], "atRisk");
    assert_eq!(risky["riskDetail"], "none");
    assert_eq!(risky["userPrincipalName"], "adele@contoso.com");
    // Her risk now follows her everywhere.
    let office = h.session_from("192.0.2.10", PASSWORD).await;
    assert_eq!(
        h.authorize(&office, "192.0.2.10", &client_id)
            .await
            .as_deref(),
        Some("blocked")
    );
    let listed = h
        .app
        .risk
        .list_risky_users(&h.admin, &RiskyFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.value.len(), 1);
    let none_high = h
        .app
        .risk
        .list_risky_users(
            &h.admin,
            &RiskyFilter {
                risk_level: Some(tessera_service::risk::RiskLevel::High),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(none_high.value.is_empty());
    // A second anonymizer sign-in changes nothing a reader sees.
    h.sign_in_from("185.220.101.8", PASSWORD).await;
    let history = h
        .app
        .risk
        .risk_history(&h.admin, PrincipalKind::User, adele)
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    let first = serde_json::to_value(&history[0]).unwrap();
    assert_eq!(
        first["activity"]["riskEventTypes"],
        json!(["anonymizedIPAddress"])
    );
    assert!(
        first.get("initiatedBy").is_none(),
        "Identity Protection did it"
    );
    // Dismissed: none, and she gets in.
    h.app
        .risk
        .dismiss(&h.admin, PrincipalKind::User, &[adele])
        .await
        .unwrap();
    let risky =
        serde_json::to_value(h.app.risk.get_risky_user(&h.admin, adele).await.unwrap()).unwrap();
    assert_eq!(
        (
            risky["riskLevel"].as_str(),
            risky["riskState"].as_str(),
            risky["riskDetail"].as_str()
        ),
        (
            Some("none"),
            Some("dismissed"),
            Some("adminDismissedAllRiskForUser")
        )
    );
    assert_eq!(h.authorize(&office, "192.0.2.10", &client_id).await, None);
    // Confirmed compromised: high, and her sessions end.
    h.app
        .risk
        .confirm_compromised(&h.admin, PrincipalKind::User, &[adele])
        .await
        .unwrap();
    let risky =
        serde_json::to_value(h.app.risk.get_risky_user(&h.admin, adele).await.unwrap()).unwrap();
    assert_eq!(
        (risky["riskLevel"].as_str(), risky["riskState"].as_str()),
        (Some("high"), Some("confirmedCompromised"))
    );
    let gone = h
        .app
        .sign_in
        .session(h.admin.tenant, &office.id)
        .await
        .unwrap();
    assert!(gone.is_none(), "her sessions ended");
    // An administrator's reset of her password remediates it.
    h.app
        .sign_in
        .reset_password(&h.admin, adele, Some(SecretString::new(PASSWORD.into())))
        .await
        .unwrap();
    let risky =
        serde_json::to_value(h.app.risk.get_risky_user(&h.admin, adele).await.unwrap()).unwrap();
    assert_eq!(
        (
            risky["riskLevel"].as_str(),
            risky["riskState"].as_str(),
            risky["riskDetail"].as_str()
        ),
        (
            Some("none"),
            Some("remediated"),
            Some("adminGeneratedTemporaryPassword")
        )
    );
    let history = h
        .app
        .risk
        .risk_history(&h.admin, PrincipalKind::User, adele)
        .await
        .unwrap();
    let states: Vec<String> = history
        .iter()
        .map(|item| {
            serde_json::to_value(item).unwrap()["riskState"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        states,
        ["remediated", "confirmedCompromised", "dismissed", "atRisk"]
    );
    let admin_id = match h.admin.caller.principal() {
        tessera_service::Principal::User { id, .. } => id.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        serde_json::to_value(&history[1]).unwrap()["initiatedBy"],
        json!(admin_id)
    );
}

/// Bad requests change nothing: an unknown id among good ones, no ids, too
/// many; a reader without the right is refused; a user without risk is not
/// a risky user; workloads are told apart from users.
async fn risky_principal_actions_are_all_or_nothing(h: Harness) {
    use tessera_service::risk::{PrincipalKind, RiskyFilter};
    let adele = h.adele().await;
    h.sign_in_from("185.220.101.7", PASSWORD).await;
    let unknown = uuid::Uuid::new_v4();
    let refused = h
        .app
        .risk
        .confirm_compromised(&h.admin, PrincipalKind::User, &[adele, unknown])
        .await;
    assert!(
        matches!(refused, Err(ServiceError::NotFound { .. })),
        "{refused:?}"
    );
    let risky =
        serde_json::to_value(h.app.risk.get_risky_user(&h.admin, adele).await.unwrap()).unwrap();
    assert_eq!(risky["riskState"], "atRisk", "nothing changed");
    for ids in [Vec::new(), (0..61).map(|_| uuid::Uuid::new_v4()).collect()] {
        let refused = h
            .app
            .risk
            .dismiss(&h.admin, PrincipalKind::User, &ids)
            .await;
        assert!(
            matches!(refused, Err(ServiceError::Validation(_))),
            "{refused:?}"
        );
    }
    let reader = h.as_user(adele);
    let refused = h
        .app
        .risk
        .dismiss(&reader, PrincipalKind::User, &[adele])
        .await;
    assert!(
        matches!(refused, Err(ServiceError::Forbidden { .. })),
        "{refused:?}"
    );
    let refused = h
        .app
        .risk
        .list_risky_users(&reader, &RiskyFilter::default())
        .await;
    assert!(
        matches!(refused, Err(ServiceError::Forbidden { .. })),
        "{refused:?}"
    );
    // A workload reported risky by an outside source.
    let app = h
        .app
        .directory
        .create_application(&h.admin, json!({ "displayName": "Batch" }))
        .await
        .unwrap();
    let sp = h
        .app
        .directory
        .create_service_principal(&h.admin, json!({ "appId": app.app_id }))
        .await
        .unwrap();
    let refused = h
        .app
        .risk
        .confirm_compromised(&h.admin, PrincipalKind::User, &[sp.id])
        .await;
    assert!(
        matches!(refused, Err(ServiceError::NotFound { .. })),
        "a workload is not a user"
    );
    h.app
        .risk
        .report_risk(&h.admin, sp.id, json!({"riskLevel": "medium"}))
        .await
        .unwrap();
    let workloads = h
        .app
        .risk
        .list_risky_service_principals(&h.admin, &RiskyFilter::default())
        .await
        .unwrap();
    assert_eq!(workloads.value.len(), 1);
    assert_eq!(workloads.value[0].id, sp.id);
    assert_eq!(workloads.value[0].app_id, app.app_id.to_string());
    let users = h
        .app
        .risk
        .list_risky_users(&h.admin, &RiskyFilter::default())
        .await
        .unwrap();
    assert_eq!(users.value.len(), 1, "only Adele");
    let refused = h.app.risk.get_risky_user(&h.admin, sp.id).await;
    assert!(
        matches!(refused, Err(ServiceError::NotFound { .. })),
        "{refused:?}"
    );
    h.app
        .risk
        .confirm_compromised(&h.admin, PrincipalKind::ServicePrincipal, &[sp.id])
        .await
        .unwrap();
    let sp_risk = serde_json::to_value(
        h.app
            .risk
            .get_risky_service_principal(&h.admin, sp.id)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (sp_risk["riskLevel"].as_str(), sp_risk["riskState"].as_str()),
        (Some("high"), Some("confirmedCompromised"))
    );
    h.app
        .risk
        .dismiss(&h.admin, PrincipalKind::ServicePrincipal, &[sp.id])
        .await
        .unwrap();
    let sp_risk = h.app.risk.get_risk(&h.admin, sp.id).await.unwrap();
    assert_eq!(sp_risk.risk_level, tessera_service::risk::RiskLevel::None);
}

/// "This wasn't me": a sign-in the user reports is a detection on it, and
/// her risk is high until remediated. A brute force found at the password
/// step is the session's sign-in risk.
async fn reported_sign_ins_and_brute_force_reach_decisions(h: Harness) {
    let adele = h.adele().await;
    let client_id = h.application().await;
    h.policy(json!({
        "displayName": "Block risky sign-ins", "state": "enabled",
        "conditions": {"users": {"includeUsers": [adele]},
                       "applications": {"includeApplications": ["All"]},
                       "signInRiskLevels": ["medium", "high"]},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}
    }))
    .await;
    for _ in 0..5 {
        h.sign_in_from("203.0.113.51", "wrong password").await;
    }
    let forced = h.session_from("203.0.113.51", PASSWORD).await;
    assert_eq!(
        h.authorize(&forced, "203.0.113.51", &client_id)
            .await
            .as_deref(),
        Some("blocked"),
        "the brute force is the session's sign-in risk"
    );
    // Starting again from there, within the window, sheds nothing.
    let again = h.session_from("203.0.113.51", PASSWORD).await;
    assert_eq!(
        h.authorize(&again, "203.0.113.51", &client_id)
            .await
            .as_deref(),
        Some("blocked")
    );
    let office = h.session_from("192.0.2.10", PASSWORD).await;
    assert_eq!(h.authorize(&office, "192.0.2.10", &client_id).await, None);
    let mine = h.app.sign_in.my_sign_ins(&office).await.unwrap();
    let reported = mine
        .iter()
        .find(|e| e.client_address.as_deref() == Some("203.0.113.51") && e.result == "success")
        .unwrap();
    h.app
        .sign_in
        .report_sign_in(&office, reported.id)
        .await
        .unwrap();
    let found = h
        .detections(DetectionFilter {
            risk_event_type: Some("userReportedSuspiciousActivity".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["requestId"], json!(reported.id));
    let risky =
        serde_json::to_value(h.app.risk.get_risky_user(&h.admin, adele).await.unwrap()).unwrap();
    assert_eq!(risky["riskLevel"], "high");
}

/// Places for the travel and familiarity tests.
struct Places;

impl tessera_service::risk::GeoLookup for Places {
    fn locate(&self, ip: IpAddr) -> Option<tessera_service::risk::GeoInfo> {
        let text = ip.to_string();
        let (country, city, latitude, longitude, asn) = if text.starts_with("192.0.2.") {
            ("FR", "Paris", 48.86, 2.35, 3215)
        } else if text.starts_with("198.51.100.") {
            ("FR", "Lyon", 45.76, 4.84, 3215)
        } else if text.starts_with("203.0.113.") {
            ("AU", "Sydney", -33.87, 151.21, 1221)
        } else {
            return None;
        };
        Some(tessera_service::risk::GeoInfo {
            country: Some(country.into()),
            city: Some(city.into()),
            latitude: Some(latitude),
            longitude: Some(longitude),
            accuracy_km: Some(20.0),
            asn: Some(asn),
        })
    }
}

/// A user's own sign-ins teach their baseline quietly (ten over five days);
/// then a sign-in from another continent an hour after one from home is
/// unfamiliar (new country, network and subnet) and impossible travel. A
/// sign-in a day later from near home is neither.
async fn unfamiliar_properties_and_impossible_travel(h: Harness) {
    let clock = Arc::new(tessera_testkit::ShiftedClock::default());
    let app = App::with_auth(
        h.app.store().clone(),
        clock.clone(),
        auth_settings("http://localhost:8080"),
    );
    app.risk.set_geo(Arc::new(Places));
    let node = Harness {
        app,
        admin: h.admin.clone(),
    };
    node.adele().await;
    for _ in 0..10 {
        node.sign_in_from("192.0.2.10", PASSWORD).await;
        clock.advance_seconds(15 * 3600);
    }
    assert!(
        node.detections(DetectionFilter::default()).await.is_empty(),
        "learning quietly"
    );
    node.sign_in_from("192.0.2.11", PASSWORD).await;
    clock.advance_seconds(3600);
    node.sign_in_from("203.0.113.5", PASSWORD).await;
    let found = node.detections(DetectionFilter::default()).await;
    let kinds: Vec<&str> = found
        .iter()
        .map(|d| d["riskEventType"].as_str().unwrap())
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(kinds.contains(&"unfamiliarFeatures") && kinds.contains(&"impossibleTravel"));
    let travel = found
        .iter()
        .find(|d| d["riskEventType"] == "impossibleTravel")
        .unwrap();
    assert_eq!(travel["riskLevel"], "high");
    assert_eq!(travel["additionalInfo"]["from"]["place"]["city"], "Paris");
    assert_eq!(travel["additionalInfo"]["to"]["place"]["city"], "Sydney");
    let unfamiliar = found
        .iter()
        .find(|d| d["riskEventType"] == "unfamiliarFeatures")
        .unwrap();
    assert_eq!(unfamiliar["riskLevel"], "medium");
    assert_eq!(unfamiliar["additionalInfo"]["unfamiliar"]["country"], "AU");
    assert_eq!(unfamiliar["additionalInfo"]["unfamiliar"]["asn"], "1221");
    clock.advance_seconds(24 * 3600);
    node.sign_in_from("198.51.100.7", PASSWORD).await;
    assert_eq!(
        node.detections(DetectionFilter::default()).await.len(),
        2,
        "a new subnet of a familiar network, at plane speed: nothing"
    );
    // Ninety-one days without a sign-in: the daily recomputation forgets
    // the whole baseline, and the next sign-in, from anywhere, is learnt
    // quietly again.
    clock.advance_seconds(91 * 86_400);
    let risk = &node.app.risk;
    assert_eq!(
        risk.recompute_baselines(node.admin.tenant).await.unwrap(),
        1
    );
    assert_eq!(
        risk.recompute_baselines(node.admin.tenant).await.unwrap(),
        0
    );
    node.sign_in_from("203.0.113.5", PASSWORD).await;
    assert_eq!(node.detections(DetectionFilter::default()).await.len(), 2);
}

/// The offline round reads the sign-in log after the fact: a tenant that
/// learnt for a week hears of a country new to it (low), and Paris to Sydney
/// in twenty hours (slower than a plane would make it impossible, faster than
/// a day's normal travel, to an unfamiliar country) is unlikely travel. Each
/// is found once.
async fn offline_rounds_find_unlikely_travel_and_new_countries(h: Harness) {
    let clock = Arc::new(tessera_testkit::ShiftedClock::default());
    let app = App::with_auth(
        h.app.store().clone(),
        clock.clone(),
        auth_settings("http://localhost:8080"),
    );
    let tenant = h.admin.tenant;
    assert_eq!(
        app.risk.offline_round(tenant).await.unwrap(),
        0,
        "no places: nothing"
    );
    app.risk.set_geo(Arc::new(Places));
    let node = Harness {
        app,
        admin: h.admin.clone(),
    };
    node.adele().await;
    // The first round starts at the log's end.
    assert_eq!(node.app.risk.offline_round(tenant).await.unwrap(), 0);
    for _ in 0..13 {
        node.sign_in_from("192.0.2.10", PASSWORD).await;
        assert_eq!(node.app.risk.offline_round(tenant).await.unwrap(), 0);
        clock.advance_seconds(15 * 3600);
    }
    clock.advance_seconds(5 * 3600);
    node.sign_in_from("203.0.113.5", PASSWORD).await;
    assert_eq!(node.app.risk.offline_round(tenant).await.unwrap(), 2);
    let offline: Vec<serde_json::Value> = node
        .detections(DetectionFilter::default())
        .await
        .into_iter()
        .filter(|d| d["detectionTimingType"] == "offline")
        .collect();
    let kinds: Vec<&str> = offline
        .iter()
        .map(|d| d["riskEventType"].as_str().unwrap())
        .collect();
    assert_eq!(offline.len(), 2, "{offline:?}");
    assert!(
        kinds.contains(&"unlikelyTravel") && kinds.contains(&"newCountry"),
        "{kinds:?}"
    );
    let travel = offline
        .iter()
        .find(|d| d["riskEventType"] == "unlikelyTravel")
        .unwrap();
    assert_eq!(travel["riskLevel"], "medium");
    assert_eq!(travel["additionalInfo"]["from"]["place"]["city"], "Paris");
    assert_eq!(travel["additionalInfo"]["to"]["place"]["city"], "Sydney");
    let country = offline
        .iter()
        .find(|d| d["riskEventType"] == "newCountry")
        .unwrap();
    assert_eq!(country["riskLevel"], "low");
    assert_eq!(country["additionalInfo"]["country"], "AU");
    assert!(
        country["requestId"].is_string(),
        "the sign-in it was found in"
    );
    // Again from Sydney: known now, and no travel.
    clock.advance_seconds(3600);
    node.sign_in_from("203.0.113.5", PASSWORD).await;
    assert_eq!(node.app.risk.offline_round(tenant).await.unwrap(), 0);
}

/// A user remediates their own risk only with a second factor registered
/// before it: one registered after (as whoever holds only the password could)
/// changes the password but not the risk.
async fn self_remediation_needs_a_factor_older_than_the_risk(h: Harness) {
    use tessera_service::risk::PrincipalKind;
    let clock = Arc::new(tessera_testkit::ShiftedClock::default());
    let app = App::with_auth(
        h.app.store().clone(),
        clock.clone(),
        auth_settings("http://localhost:8080"),
    );
    app.risk.set_ip_lists(Arc::new(Lists {
        anonymous: IpList::parse("185.220.101.0/24 tor\n").unwrap(),
        malicious: IpList::parse("198.51.100.66 botnet\n").unwrap(),
    }));
    let node = Harness {
        app,
        admin: h.admin.clone(),
    };
    let adele = node.adele().await;

    // At risk first; then an authenticator app is added with the password.
    node.sign_in_from("185.220.101.7", PASSWORD).await;
    assert_eq!(node.risk_state(adele).await, "atRisk");
    clock.advance_seconds(60);
    let seed = node.enrol_totp(&clock).await;
    let code = |clock: &tessera_testkit::ShiftedClock| totp_now(&seed, clock);
    clock.advance_seconds(60);
    let strong = node.session_with_code("192.0.2.10", &code(&clock)).await;
    node.app
        .sign_in
        .change_my_password(
            &strong,
            "c",
            Some(SecretString::new(PASSWORD.into())),
            SecretString::new("amber-quarry-lantern-77".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        node.risk_state(adele).await,
        "atRisk",
        "a factor newer than the risk proves nothing"
    );
    // A new risk, after the app was registered: now it proves the user.
    clock.advance_seconds(60);
    node.sign_in_from("198.51.100.66", "amber-quarry-lantern-77")
        .await;
    clock.advance_seconds(60);
    let strong = node
        .session_with_code_and("192.0.2.10", "amber-quarry-lantern-77", &code(&clock))
        .await;
    node.app
        .sign_in
        .change_my_password(
            &strong,
            "c",
            Some(SecretString::new("amber-quarry-lantern-77".into())),
            SecretString::new(PASSWORD.into()),
        )
        .await
        .unwrap();
    assert_eq!(node.risk_state(adele).await, "remediated");
    let history = node
        .app
        .risk
        .risk_history(&node.admin, PrincipalKind::User, adele)
        .await
        .unwrap();
    let detail = serde_json::to_value(&history[0]).unwrap()["riskDetail"].clone();
    assert_eq!(detail, "userPerformedSecuredPasswordChange");
}

/// Second-factor prompts after the right password, left unanswered three
/// times within the hour, are MFA fatigue (said once), and the user is at
/// risk; an answered prompt starts the count again.
async fn unanswered_mfa_prompts_are_fatigue(h: Harness) {
    let clock = Arc::new(tessera_testkit::ShiftedClock::default());
    let app = App::with_auth(
        h.app.store().clone(),
        clock.clone(),
        auth_settings("http://localhost:8080"),
    );
    let node = Harness {
        app,
        admin: h.admin.clone(),
    };
    let adele = node.adele().await;
    let seed = node.enrol_totp(&clock).await;
    let code = |clock: &tessera_testkit::ShiftedClock| totp_now(&seed, clock);
    clock.advance_seconds(60);
    // Two prompts left unanswered, then one answered: nothing.
    node.sign_in_from("203.0.113.70", PASSWORD).await;
    node.sign_in_from("203.0.113.70", PASSWORD).await;
    node.session_with_code("192.0.2.10", &code(&clock)).await;
    let fatigue = DetectionFilter {
        risk_event_type: Some("mfaFatigue".into()),
        ..Default::default()
    };
    assert!(node.detections(fatigue.clone()).await.is_empty());
    // Three in a row: fatigue, once.
    for _ in 0..4 {
        node.sign_in_from("203.0.113.70", PASSWORD).await;
    }
    let found = node.detections(fatigue).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["riskLevel"], "medium");
    assert_eq!(found[0]["additionalInfo"]["prompts"], 3);
    assert_eq!(node.risk_state(adele).await, "atRisk");
}

/// The password grant is a sign-in: its failures are counted like the
/// pages', and after a brute force from one network the right password from
/// there is refused by a sign-in-risk policy, with the detection recorded
/// though the grant was refused; from elsewhere it is not.
async fn the_password_grant_decides_with_its_own_risk(h: Harness) {
    use std::collections::BTreeMap;
    let adele = h.adele().await;
    h.app
        .access
        .set_security_defaults(
            &h.admin,
            tessera_service::Replacement {
                body: json!({ "isEnabled": false }),
                if_match: None,
            },
        )
        .await
        .unwrap();
    let app = h
        .app
        .directory
        .create_application(
            &h.admin,
            json!({ "displayName": "Old mail client", "allowPasswordGrant": true,
                    "isFallbackPublicClient": true }),
        )
        .await
        .unwrap();
    h.app
        .directory
        .create_service_principal(&h.admin, json!({ "appId": app.app_id }))
        .await
        .unwrap();
    h.consent(app.app_id, "openid profile").await;
    h.policy(json!({
        "displayName": "Block risky sign-ins", "state": "enabled",
        "conditions": {"users": {"includeUsers": [adele]},
                       "applications": {"includeApplications": ["All"]},
                       "clientAppTypes": ["all"],
                       "signInRiskLevels": ["medium", "high"]},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}
    }))
    .await;
    let grant = |address: &str, password: &str| {
        let ctx = tessera_service::oauth::TokenContext {
            tenant: h.admin.tenant,
            issuer: "http://localhost:8080".into(),
            correlation_id: format!("grant-{address}"),
            client_address: Some(address.to_string()),
            dpop: None,
            client_certificates: Vec::new(),
        };
        let form: BTreeMap<String, String> = [
            ("grant_type", "password"),
            ("client_id", &app.app_id.to_string()),
            ("username", "adele@contoso.com"),
            ("password", password),
            ("scope", "openid profile"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let oidc = h.app.oidc.clone();
        async move { oidc.token_request(&ctx, None, &form).await }
    };
    let first = grant("192.0.2.10", PASSWORD).await;
    assert!(
        first.is_ok(),
        "no risk: allowed: {:?}",
        first.err().map(|e| e.description)
    );
    for _ in 0..5 {
        let refused = grant("203.0.113.51", "wrong password").await;
        assert!(refused.is_err());
    }
    let refused = grant("203.0.113.51", PASSWORD).await;
    let error = refused.expect_err("the brute force's network is refused");
    assert!(
        error.description.contains("Conditional Access"),
        "{}",
        error.description
    );
    let found = h
        .detections(DetectionFilter {
            risk_event_type: Some("bruteForce".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(found.len(), 1, "recorded though refused: {found:?}");
    assert!(
        grant("192.0.2.10", PASSWORD).await.is_ok(),
        "from elsewhere: allowed"
    );
}

/// A session cookie used by another browser is a high token anomaly: the
/// session ends for whoever holds it. One that moved to a second network and
/// comes back to the first moments later is used from two places: a medium
/// anomaly that raises the session's sign-in risk (so a risk policy blocks it
/// at the next application). Each is recorded once, and raises the user's
/// risk. A session that only moves is not flagged.
async fn a_copied_session_cookie_is_a_token_anomaly(h: Harness) {
    const CHROME: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36";
    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let adele = h.adele().await;
    let client_id = h.application().await;
    h.policy(json!({
        "displayName": "Block risky sign-ins", "state": "enabled",
        "conditions": {"users": {"includeUsers": [adele]},
                       "applications": {"includeApplications": ["All"]},
                       "signInRiskLevels": ["medium", "high"]},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}
    }))
    .await;
    let browser = |address: &str, agent: &str| SignInContext {
        tenant: h.admin.tenant,
        correlation_id: format!("corr-use-{address}"),
        client_address: Some(address.to_string()),
        user_agent: Some(agent.to_string()),
        previous_session: None,
    };
    let anomalies = || async {
        h.detections(DetectionFilter {
            risk_event_type: Some("anomalousToken".into()),
            ..Default::default()
        })
        .await
    };
    // Her own browser, then her own browser again: nothing.
    let secret = h
        .session_secret_in(&browser("192.0.2.10", CHROME), PASSWORD)
        .await;
    let own = h
        .app
        .sign_in
        .session_used(&browser("192.0.2.10", CHROME), &secret)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.authorize(&own, "192.0.2.10", &client_id).await, None);
    assert!(anomalies().await.is_empty());

    // The same cookie in another browser, elsewhere: high, and the session
    // ends for both.
    let thief = browser("203.0.113.80", FIREFOX);
    assert!(
        h.app
            .sign_in
            .session_used(&thief, &secret)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.app
            .sign_in
            .session_used(&browser("192.0.2.10", CHROME), &secret)
            .await
            .unwrap()
            .is_none(),
        "ended"
    );
    let found = anomalies().await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["riskLevel"], "high");
    assert_eq!(found[0]["additionalInfo"]["reason"], "anotherDevice");
    assert_eq!(found[0]["ipAddress"], "203.0.113.80");
    assert_eq!(found[0]["correlationId"], "corr-use-203.0.113.80");
    let risky =
        serde_json::to_value(h.app.risk.get_risky_user(&h.admin, adele).await.unwrap()).unwrap();
    assert_eq!(risky["riskLevel"], "high");

    // A second session moves to another network: a move, nothing.
    let secret = h
        .session_secret_in(&browser("192.0.2.11", CHROME), PASSWORD)
        .await;
    let moved = browser("198.51.100.20", CHROME);
    let there = h
        .app
        .sign_in
        .session_used(&moved, &secret)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(there.sign_in_risk(), None);
    assert_eq!(anomalies().await.len(), 1);
    // Back on the first within moments: two places use it. Medium, the
    // session's risk, once.
    let back = browser("192.0.2.11", CHROME);
    let both = h
        .app
        .sign_in
        .session_used(&back, &secret)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::to_value(both.sign_in_risk()).unwrap(),
        json!("medium")
    );
    assert_eq!(
        h.authorize(&both, "192.0.2.11", &client_id)
            .await
            .as_deref(),
        Some("blocked"),
        "the anomaly is the session's sign-in risk"
    );
    h.app
        .sign_in
        .session_used(&moved, &secret)
        .await
        .unwrap()
        .unwrap();
    h.app
        .sign_in
        .session_used(&back, &secret)
        .await
        .unwrap()
        .unwrap();
    let found = anomalies().await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0]["additionalInfo"]["reason"], "twoNetworksAtOnce");
    // A session nobody holds is none, whoever asks.
    assert!(
        h.app
            .sign_in
            .session_used(&thief, "no-such-session")
            .await
            .unwrap()
            .is_none()
    );
}

/// Workloads are watched at the token endpoint. A workload's requests teach
/// its baseline quietly (ten over five days); then one from the same network
/// or a subnet of it is nothing, one from another continent and network is a
/// suspicious sign-in (medium), shown on its sign-in log entry and listed
/// among the workloads' detections, not the users'. A client secret that
/// turns up in the breached list is a leaked credential (high, once a day),
/// and a policy blocking high-risk workloads refuses that very request.
async fn workloads_are_watched_at_the_token_endpoint(h: Harness) {
    use std::collections::BTreeMap;
    let clock = Arc::new(tessera_testkit::ShiftedClock::default());
    let breached = tempfile::tempdir().unwrap();
    let app = App::with_auth(
        h.app.store().clone(),
        clock.clone(),
        tessera_service::authn::AuthSettings {
            breached_passwords: Some(breached.path().to_path_buf()),
            ..auth_settings("http://localhost:8080")
        },
    );
    app.risk.set_geo(Arc::new(Places));
    let node = Harness {
        app,
        admin: h.admin.clone(),
    };
    let directory = &node.app.directory;
    let client = directory
        .create_application(&node.admin, json!({ "displayName": "Payroll sync" }))
        .await
        .unwrap();
    let principal = directory
        .create_service_principal(&node.admin, json!({ "appId": client.app_id }))
        .await
        .unwrap();
    let secret = directory
        .add_password(
            &node.admin,
            tessera_service::CredentialHolder::Application,
            client.id,
            json!({}),
        )
        .await
        .unwrap();
    let resource = directory
        .create_application(&node.admin, json!({ "displayName": "Ledger API" }))
        .await
        .unwrap();
    let basic = tessera_testkit::fixtures::basic_authorization(
        &client.app_id.to_string(),
        secret.secret_text.expose(),
    );
    let form: BTreeMap<String, String> = [
        ("grant_type".to_string(), "client_credentials".to_string()),
        (
            "scope".to_string(),
            format!("api://{}/.default", resource.app_id),
        ),
    ]
    .into();
    let request = |address: &str| {
        let ctx = tessera_service::oauth::TokenContext {
            tenant: node.admin.tenant,
            issuer: "http://localhost:8080".into(),
            correlation_id: format!("workload-{address}"),
            client_address: Some(address.to_string()),
            dpop: None,
            client_certificates: Vec::new(),
        };
        let oidc = node.app.oidc.clone();
        let basic = basic.clone();
        let form = form.clone();
        async move { oidc.token_request(&ctx, Some(&basic), &form).await }
    };
    let workload_detections = || async {
        let page = node
            .app
            .risk
            .list_service_principal_detections(&node.admin, &DetectionFilter::default())
            .await
            .unwrap();
        serde_json::to_value(page.value).unwrap()
    };
    for _ in 0..10 {
        request("192.0.2.10").await.expect("a token");
        clock.advance_seconds(15 * 3600);
    }
    request("192.0.2.77").await.expect("a token");
    request("198.51.100.7").await.expect("a token");
    assert_eq!(
        workload_detections().await,
        json!([]),
        "learning, then its own network"
    );
    request("203.0.113.5")
        .await
        .expect("a token: medium is not blocked");
    let found = workload_detections().await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    let suspicious = &found[0];
    assert_eq!(suspicious["riskEventType"], "suspiciousSignins");
    assert_eq!(suspicious["riskLevel"], "medium");
    assert_eq!(suspicious["servicePrincipalId"], json!(principal.id));
    assert_eq!(suspicious["appId"], client.app_id.to_string());
    assert_eq!(suspicious["servicePrincipalDisplayName"], "Payroll sync");
    assert_eq!(suspicious["ipAddress"], "203.0.113.5");
    assert_eq!(suspicious["additionalInfo"]["unfamiliar"]["country"], "AU");
    assert!(
        node.detections(DetectionFilter::default()).await.is_empty(),
        "a workload's detections are not users'"
    );
    let logged = tessera_testkit::fixtures::sign_in_page(
        &node.app,
        &node.admin,
        json!({ "correlationId": "workload-203.0.113.5", "limit": 1 }),
    )
    .await;
    let entry = serde_json::to_value(&logged.value[0]).unwrap();
    assert_eq!(
        entry["riskEventTypes_v2"],
        json!(["suspiciousSignins"]),
        "{entry}"
    );
    assert_eq!(entry["riskLevelDuringSignIn"], "medium");
    let risky = serde_json::to_value(
        node.app
            .risk
            .get_risky_service_principal(&node.admin, principal.id)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(risky["riskLevel"], "medium", "{risky}");
    // The same source again: recorded once, on every node together.
    request("203.0.113.5").await.expect("a token");
    clock.advance_seconds(3600);
    request("203.0.113.9").await.expect("a token");
    assert_eq!(workload_detections().await.as_array().unwrap().len(), 1);
    // Still in use a day later: while the workload is at risk the source
    // stays unusual (and is not told again); once an administrator dismissed
    // the risk, it settles into the baseline (the workload moved for good)
    // and stays familiar after the finding itself is forgotten.
    clock.advance_seconds(24 * 3600);
    request("203.0.113.5").await.expect("a token");
    node.app
        .risk
        .dismiss(
            &node.admin,
            tessera_service::risk::PrincipalKind::ServicePrincipal,
            &[principal.id],
        )
        .await
        .unwrap();
    clock.advance_seconds(3600);
    request("203.0.113.6").await.expect("a token");
    clock.advance_seconds(8 * 86_400);
    node.app.purge_expired().await.unwrap();
    request("203.0.113.7").await.expect("a token");
    assert_eq!(
        workload_detections().await.as_array().unwrap().len(),
        1,
        "settled"
    );

    // The secret turns up in a breach; high-risk workloads are blocked.
    node.policy(json!({
        "displayName": "Block risky workloads", "state": "enabled",
        "conditions": {"users": {"includeUsers": ["None"]},
                       "applications": {"includeApplications": ["All"]},
                       "clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"]},
                       "servicePrincipalRiskLevels": ["high"]},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}
    }))
    .await;
    let (prefix, suffix) = tessera_authn::password::breach_key(secret.secret_text.expose());
    std::fs::write(
        breached.path().join(format!("{prefix}.txt")),
        format!("{suffix}:1\r\n"),
    )
    .unwrap();
    clock.advance_seconds(3600);
    let refused = request("192.0.2.10")
        .await
        .expect_err("a leaked secret makes the workload high risk");
    assert!(
        refused.description.contains("Conditional Access"),
        "{refused:?}"
    );
    let found = workload_detections().await;
    let leaked = found
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["riskEventType"] == "leakedCredentials")
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(leaked["riskLevel"], "high");
    assert_eq!(
        leaked["additionalInfo"]["keyId"],
        json!(secret.credential.key_id.to_string())
    );
    assert!(!found.to_string().contains(secret.secret_text.expose()));
    clock.advance_seconds(3600);
    request("192.0.2.10").await.expect_err("still high");
    let leaks = workload_detections()
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["riskEventType"] == "leakedCredentials")
        .count();
    assert_eq!(leaks, 1, "once a day for a secret");
}

/// Many accounts through one registered device: the offline round finds the
/// fifth account within a day that signs in to an application through the
/// kiosk (its certificate names it), and each after; the sign-in log entries
/// name the device. Another device's own user is nothing.
async fn many_accounts_through_one_device_are_found_offline(h: Harness) {
    let client_id = h.application().await;
    h.consent(&client_id, "openid").await;
    let kiosk_print = "ab".repeat(32);
    let laptop_print = "cd".repeat(32);
    let directory = &h.app.directory;
    let kiosk = directory
        .create_device(
            &h.admin,
            json!({"displayName": "Kiosk 7", "certificateThumbprint": kiosk_print}),
        )
        .await
        .unwrap();
    directory
        .create_device(
            &h.admin,
            json!({"displayName": "Laptop", "certificateThumbprint": laptop_print}),
        )
        .await
        .unwrap();
    // The first round starts at the log's end.
    h.app.risk.offline_round(h.admin.tenant).await.unwrap();
    let ctx = SignInContext {
        tenant: h.admin.tenant,
        correlation_id: "corr-kiosk".to_string(),
        client_address: Some("192.0.2.10".to_string()),
        user_agent: Some("test-agent".to_string()),
        previous_session: None,
    };
    let mut users = Vec::new();
    for i in 0..6 {
        let name = format!("shift{i}@contoso.com");
        let user = directory
            .create_user(
                &h.admin,
                json!({"userPrincipalName": name, "displayName": format!("Shift {i}")}),
            )
            .await
            .unwrap()
            .id;
        h.app
            .sign_in
            .reset_password(&h.admin, user, Some(SecretString::new(PASSWORD.into())))
            .await
            .unwrap();
        let secret = h.session_secret_of(&ctx, &name, PASSWORD).await;
        let session = h.load(&secret).await;
        // The first also uses their own laptop.
        let devices: &[&str] = if i == 0 {
            &[&kiosk_print, &laptop_print]
        } else {
            &[&kiosk_print]
        };
        for device in devices {
            let outcome = h
                .ask_code_on(&session, ("192.0.2.10", Some(device)), &client_id, "openid")
                .await;
            assert!(
                matches!(outcome, AuthorizeOutcome::Respond { .. }),
                "{outcome:?}"
            );
        }
        users.push(user);
    }
    assert_eq!(h.app.risk.offline_round(h.admin.tenant).await.unwrap(), 2);
    let found = h
        .detections(DetectionFilter {
            risk_event_type: Some("sharedDevice".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(found.len(), 2, "{found:?}");
    let told: Vec<serde_json::Value> = found.iter().map(|d| d["userId"].clone()).collect();
    assert!(told.contains(&json!(users[4])) && told.contains(&json!(users[5])));
    assert_eq!(found[0]["additionalInfo"]["deviceId"], json!(kiosk.id));
    assert_eq!(found[0]["detectionTimingType"], "offline");
    assert_eq!(found[0]["riskLevel"], "low");
    // Read once.
    assert_eq!(h.app.risk.offline_round(h.admin.tenant).await.unwrap(), 0);
    let logged = tessera_testkit::fixtures::sign_in_page(
        &h.app,
        &h.admin,
        json!({ "userId": users[5], "limit": 1 }),
    )
    .await;
    let entry = serde_json::to_value(&logged.value[0]).unwrap();
    assert_eq!(
        entry["deviceDetail"]["deviceId"],
        json!(kiosk.id),
        "{entry}"
    );
}

both_backends!(setup = harness;
    many_accounts_through_one_device_are_found_offline,
    workloads_are_watched_at_the_token_endpoint,
    a_public_clients_refresh_is_decided_with_its_address,
    offline_rounds_find_unlikely_travel_and_new_countries,
    a_copied_session_cookie_is_a_token_anomaly,
    the_password_grant_decides_with_its_own_risk,
    unanswered_mfa_prompts_are_fatigue,
    self_remediation_needs_a_factor_older_than_the_risk,
    unfamiliar_properties_and_impossible_travel,
    a_breached_password_is_a_leaked_credential,
    user_risk_persists_until_remediated_or_dismissed,
    risky_principal_actions_are_all_or_nothing,
    reported_sign_ins_and_brute_force_reach_decisions,
    anonymizers_and_malicious_addresses_are_detected_at_sign_in,
    conditional_access_decides_with_the_sign_in_risk,
    brute_force_and_spray_are_detected_from_failures);

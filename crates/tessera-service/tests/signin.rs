//! Sign-in end to end through the service layer, on SQLite and on PostgreSQL:
//! passwords, TOTP, temporary access passes, smart lockout, sessions, the
//! registration gate, the methods policy and the sign-in log. (Passkeys need an
//! authenticator: the browser tests in `crates/tessera/tests` cover them.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};
use tessera_authn::totp;
use tessera_core::{Clock, SecretString};
use tessera_service::Versioned;
use tessera_service::authn::{AuthSettings, FlowStep, SessionInfo, SignInContext, SignInOutcome};
use tessera_service::{App, Context, ServiceError};
use tessera_testkit::{Backend, ShiftedClock, auth_settings, bootstrap_admin};
use uuid::Uuid;

struct Harness {
    clock: Arc<ShiftedClock>,
    directory: App,
    admin: Context,
    breached: tempfile::TempDir,
}

async fn harness(backend: Backend) -> Harness {
    let breached = tempfile::tempdir().unwrap();
    // "Tr0ub4dor&3xyzzy" as a breached password, in the k-anonymity range format.
    let (prefix, suffix) = tessera_authn::password::breach_key("Tr0ub4dor&3xyzzy");
    std::fs::write(
        breached.path().join(format!("{prefix}.txt")),
        format!("0000000000000000000000000000000000A:1\r\n{suffix}:42\r\n"),
    )
    .unwrap();
    let clock = Arc::new(ShiftedClock::default());
    let directory = App::with_auth(
        backend.store().await,
        clock.clone(),
        AuthSettings {
            breached_passwords: Some(breached.path().to_path_buf()),
            max_concurrent_hashes: 2,
            ..auth_settings("http://localhost:8080")
        },
    );
    let admin = bootstrap_admin(&directory).await.ctx;
    Harness {
        clock,
        directory,
        admin,
        breached,
    }
}

const GOOD_PASSWORD: &str = "violet-harbour-engine-42";

impl Harness {
    fn from(&self, address: &str) -> SignInContext {
        SignInContext {
            tenant: self.admin.tenant,
            correlation_id: format!("corr-{address}"),
            client_address: Some(address.to_string()),
            user_agent: Some("test-agent".to_string()),
            previous_session: None,
        }
    }

    async fn user_with_password(&self, upn: &str) -> Uuid {
        let id = self
            .directory
            .directory
            .create_user(
                &self.admin,
                json!({ "userPrincipalName": upn, "displayName": "Adele Vance" }),
            )
            .await
            .unwrap()
            .id;
        self.directory
            .sign_in
            .reset_password(
                &self.admin,
                id,
                Some(SecretString::new(GOOD_PASSWORD.to_string())),
            )
            .await
            .unwrap();
        id
    }

    /// Starts a flow and names the user; returns the flow secret.
    async fn begin(&self, ctx: &SignInContext, name: &str) -> String {
        let (secret, _) = self.directory.sign_in.start(ctx).await.unwrap();
        let view = self
            .directory
            .sign_in
            .identify(ctx, secret.expose(), name)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(view.step, FlowStep::Credentials);
        secret.expose().to_string()
    }

    async fn password(&self, ctx: &SignInContext, flow: &str, password: &str) -> SignInOutcome {
        self.directory
            .sign_in
            .submit_password(ctx, flow, SecretString::new(password.to_string()))
            .await
            .unwrap()
            .unwrap()
    }

    /// The session secret of a finished sign-in.
    fn signed_in(&self, outcome: SignInOutcome) -> String {
        match outcome {
            SignInOutcome::SignedIn { session } => session.expose().to_string(),
            SignInOutcome::Continue(view) => panic!("expected a session, got {:?}", view),
        }
    }

    /// The session as the next request sees it.
    async fn load(&self, secret: &str) -> SessionInfo {
        self.directory
            .sign_in
            .session(self.admin.tenant, secret)
            .await
            .unwrap()
            .expect("a valid session")
    }

    async fn password_session(&self, ctx: &SignInContext, name: &str) -> String {
        let flow = self.begin(ctx, name).await;
        self.signed_in(self.password(ctx, &flow, GOOD_PASSWORD).await)
    }

    async fn sign_ins(&self, query: Value) -> Vec<Value> {
        let page =
            tessera_testkit::fixtures::sign_in_page(&self.directory, &self.admin, query).await;
        page.value
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect()
    }
}

fn error_of(outcome: &SignInOutcome) -> Option<&'static str> {
    match outcome {
        SignInOutcome::Continue(view) => view.error,
        SignInOutcome::SignedIn { .. } => None,
    }
}

impl Harness {
    /// The code an authenticator app shows now (by the directory's clock).
    fn code(&self, secret_base32: &str) -> String {
        let seed = totp::base32_decode(secret_base32).unwrap();
        let now = self.clock.now().unix_seconds() as u64;
        totp::code_at(&seed, &totp::Parameters::default(), now)
    }

    /// Enrols an authenticator app for the session's user; returns its seed (base32).
    async fn enrol_totp(&self, secret: &str) -> tessera_service::authn::TotpEnrolment {
        let enrolment = self
            .directory
            .sign_in
            .begin_totp(&self.load(secret).await)
            .await
            .unwrap();
        let code = self.code(&enrolment.secret);
        self.directory
            .sign_in
            .confirm_totp(&self.load(secret).await, "c", &code, "Phone")
            .await
            .unwrap();
        enrolment
    }

    /// Moves the clock to the next TOTP time step.
    fn next_step(&self) {
        self.clock.advance_seconds(30);
    }
}

async fn password_then_totp_and_replay_refused(h: Harness) {
    let user = h.user_with_password("adele@contoso.com").await;
    let ctx = h.from("192.0.2.10");
    // The name is matched case-insensitively.
    let secret = h.password_session(&ctx, "Adele@Contoso.com").await;
    let session = h.load(&secret).await;
    assert_eq!(session.user_id, user);

    // Enrol an authenticator app from security info.
    let enrolment = h
        .directory
        .sign_in
        .begin_totp(&h.load(&secret).await)
        .await
        .unwrap();
    assert!(enrolment.qr_svg.contains("<svg"));
    assert!(
        enrolment
            .uri
            .starts_with("otpauth://totp/Contoso:adele%40contoso.com?secret=")
    );
    let code = h.code(&enrolment.secret);
    let wrong = if code == "123456" { "654321" } else { "123456" };
    let refused = h
        .directory
        .sign_in
        .confirm_totp(&h.load(&secret).await, "c", wrong, "Phone")
        .await;
    assert!(matches!(refused, Err(ServiceError::Validation(_))));
    let method = h
        .directory
        .sign_in
        .confirm_totp(&h.load(&secret).await, "c", &code, "Phone")
        .await
        .unwrap();
    assert_eq!(method.method_type, "softwareOath");
    assert_eq!(method.display_name, "Phone");

    // Now a password is not enough: the flow asks for the code.
    let flow = h.begin(&ctx, "adele@contoso.com").await;
    let SignInOutcome::Continue(view) = h.password(&ctx, &flow, GOOD_PASSWORD).await else {
        panic!("a second factor is needed");
    };
    assert_eq!(view.step, FlowStep::SecondFactor);
    assert_eq!(
        view.offers,
        vec![tessera_authn::strength::Mode::SoftwareOath]
    );
    // The enrolment code cannot be replayed to sign in.
    let replay = h
        .directory
        .sign_in
        .submit_code(&ctx, &flow, &code)
        .await
        .unwrap()
        .unwrap();
    assert!(error_of(&replay).is_some(), "a used code is refused");
    let entries = h.sign_ins(json!({ "result": "failure" })).await;
    assert_eq!(entries[0]["failureCode"], "code_replayed");
    h.next_step();
    let fresh = h.code(&enrolment.secret);
    let secret = h.signed_in(
        h.directory
            .sign_in
            .submit_code(&ctx, &flow, &fresh)
            .await
            .unwrap()
            .unwrap(),
    );
    let session = h.load(&secret).await;
    let modes: Vec<String> = session
        .methods
        .iter()
        .map(|m| m.method.mode.to_string())
        .collect();
    assert_eq!(modes, ["password", "softwareOath"]);

    // The same code again, in another flow, is a replay.
    let flow = h.begin(&ctx, "adele@contoso.com").await;
    h.password(&ctx, &flow, GOOD_PASSWORD).await;
    let replay = h
        .directory
        .sign_in
        .submit_code(&ctx, &flow, &fresh)
        .await
        .unwrap()
        .unwrap();
    assert!(error_of(&replay).is_some());
    let entries = h.sign_ins(json!({ "userId": user })).await;
    assert_eq!(entries[0]["failureCode"], "code_replayed");
    let success = h
        .sign_ins(json!({ "userId": user, "result": "success" }))
        .await;
    assert_eq!(
        success[0]["authenticationRequirement"],
        "multiFactorAuthentication"
    );
    assert_eq!(
        success[0]["authenticationMethods"],
        json!(["password", "softwareOath"])
    );
    let interrupted = h.sign_ins(json!({ "result": "interrupted" })).await;
    assert_eq!(interrupted[0]["failureCode"], "mfa_required");
    // No secret is ever in the log.
    let all = serde_json::to_string(&h.sign_ins(json!({ "limit": 1000 })).await).unwrap();
    assert!(
        !all.contains(GOOD_PASSWORD) && !all.contains(&fresh) && !all.contains(&enrolment.secret)
    );
}

/// Issue 11: the lock ends. After the lock period the right password works from
/// an unfamiliar address, while each wrong guess after a lock locks again, longer.
async fn smart_lockout_releases_after_its_period(h: Harness) {
    let mut policy = serde_json::to_value(tessera_authn::policy::MethodsPolicy::default()).unwrap();
    policy["lockout"] = json!({ "threshold": 3, "durationSeconds": 60 });
    h.directory
        .sign_in
        .set_methods_policy(&h.admin, policy, None)
        .await
        .unwrap();
    let user = h.user_with_password("adele@contoso.com").await;
    let attacker = h.from("203.0.113.66");
    let guess = |expect_locked: bool| {
        let h = &h;
        let attacker = &attacker;
        async move {
            let flow = h.begin(attacker, "adele@contoso.com").await;
            let outcome = h.password(attacker, &flow, "Winter2026!").await;
            assert!(error_of(&outcome).unwrap().contains("did not work"));
            let last = h
                .sign_ins(json!({ "userId": user, "result": "failure", "limit": 1 }))
                .await;
            let code = last[0]["failureCode"].as_str().unwrap().to_string();
            assert_eq!(code == "account_locked", expect_locked, "{code}");
        }
    };
    for _ in 0..3 {
        guess(false).await;
    }
    guess(true).await;
    // The lock runs out: one guess is checked, and locks again for 120 s.
    h.clock.advance_seconds(61);
    guess(false).await;
    guess(true).await;
    h.clock.advance_seconds(61);
    guess(true).await;
    // After the doubled lock, the real user, from an address never seen, gets in.
    h.clock.advance_seconds(60);
    let traveller = h.from("192.0.2.200");
    h.password_session(&traveller, "adele@contoso.com").await;
}

async fn smart_lockout_spares_the_real_user(h: Harness) {
    let mut policy = serde_json::to_value(tessera_authn::policy::MethodsPolicy::default()).unwrap();
    policy["lockout"] = json!({ "threshold": 3, "durationSeconds": 600 });
    h.directory
        .sign_in
        .set_methods_policy(&h.admin, policy, None)
        .await
        .unwrap();
    let user = h.user_with_password("adele@contoso.com").await;
    // The real user signs in from the office: that network becomes familiar.
    let office = h.from("198.51.100.20");
    h.password_session(&office, "adele@contoso.com").await;

    // An attacker elsewhere guesses.
    let attacker = h.from("203.0.113.66");
    for _ in 0..3 {
        let flow = h.begin(&attacker, "adele@contoso.com").await;
        let outcome = h.password(&attacker, &flow, "Winter2026!").await;
        assert!(error_of(&outcome).unwrap().contains("did not work"));
    }
    // Now even the right password is refused from the attacker's address...
    let flow = h.begin(&attacker, "adele@contoso.com").await;
    let outcome = h.password(&attacker, &flow, GOOD_PASSWORD).await;
    // The same words as any wrong secret: the page does not say the account exists.
    assert!(error_of(&outcome).unwrap().contains("did not work"));
    // ...while the real user, from another address of the familiar network, signs in.
    let office_laptop = h.from("198.51.100.77");
    h.password_session(&office_laptop, "adele@contoso.com")
        .await;

    let failures = h
        .sign_ins(json!({ "userId": user, "result": "failure" }))
        .await;
    assert_eq!(failures[0]["failureCode"], "account_locked");
    assert_eq!(failures[0]["clientAddress"], "203.0.113.66");
    // The three guesses from one address are counted together (one entry per
    // minute).
    assert_eq!(
        failures
            .iter()
            .filter(|f| f["failureCode"] == "invalid_credentials")
            .map(|f| f["attemptCount"].as_i64().unwrap())
            .sum::<i64>(),
        3
    );

    // An unknown name gets the same answer as a wrong password, and is logged as typed.
    let flow = h.begin(&attacker, "nobody@contoso.com").await;
    let outcome = h.password(&attacker, &flow, "whatever").await;
    assert!(
        error_of(&outcome)
            .unwrap()
            .starts_with("That did not work."),
        "the same words as a wrong password for a real account"
    );
    let unknown = h
        .sign_ins(json!({ "userPrincipalName": "NOBODY@contoso.com" }))
        .await;
    assert_eq!(unknown[0]["userId"], Value::Null);
    assert_eq!(unknown[0]["failureCode"], "invalid_credentials");
}

async fn password_protection(h: Harness) {
    let mut policy = serde_json::to_value(tessera_authn::policy::MethodsPolicy::default()).unwrap();
    policy["password"]["settings"]["customBannedTerms"] = json!(["contoso", "fabrikam"]);
    h.directory
        .sign_in
        .set_methods_policy(&h.admin, policy, None)
        .await
        .unwrap();
    let user = h
        .directory
        .directory
        .create_user(
            &h.admin,
            json!({ "userPrincipalName": "megan@contoso.com", "displayName": "Megan Bowen" }),
        )
        .await
        .unwrap()
        .id;
    for weak in [
        "C0nt0s0!26",
        "P@ssw0rd123",
        "Megan-Bowen!",
        "short1!",
        "Tr0ub4dor&3xyzzy",
    ] {
        let refused = h
            .directory
            .sign_in
            .reset_password(&h.admin, user, Some(SecretString::new(weak.to_string())))
            .await;
        let Err(ServiceError::Validation(errors)) = refused else {
            panic!("{weak} should be refused");
        };
        assert!(
            !errors.to_string().contains(weak),
            "the message does not echo the password"
        );
    }
    // Nothing was stored by the refusals.
    assert!(
        h.directory
            .sign_in
            .list_user_methods(&h.admin, user)
            .await
            .unwrap()
            .is_empty()
    );
    // A generated password passes and is returned once.
    let generated = h
        .directory
        .sign_in
        .reset_password(&h.admin, user, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(generated.expose().len(), 20);
    let methods = h
        .directory
        .sign_in
        .list_user_methods(&h.admin, user)
        .await
        .unwrap();
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0].method_type, "password");
    let shown = serde_json::to_string(&methods).unwrap();
    assert!(!shown.contains("argon2"), "no hash is ever shown");
    let _ = &h.breached;
}

async fn temporary_access_pass_onboarding(h: Harness) {
    let user = h
        .directory
        .directory
        .create_user(
            &h.admin,
            json!({ "userPrincipalName": "newhire@contoso.com", "displayName": "New Hire" }),
        )
        .await
        .unwrap()
        .id;
    let ctx = h.from("192.0.2.30");
    // Bad requests change nothing.
    for bad in [
        json!({ "lifetimeInMinutes": 5 }),
        json!({ "length": 4 }),
        json!({ "colour": "red" }),
    ] {
        assert!(matches!(
            h.directory
                .sign_in
                .issue_temporary_access_pass(&h.admin, user, bad)
                .await,
            Err(ServiceError::Validation(_))
        ));
    }
    assert!(
        h.directory
            .sign_in
            .list_user_methods(&h.admin, user)
            .await
            .unwrap()
            .is_empty()
    );
    let pass = h
        .directory
        .sign_in
        .issue_temporary_access_pass(
            &h.admin,
            user,
            json!({ "isUsableOnce": true, "lifetimeInMinutes": 60 }),
        )
        .await
        .unwrap();
    assert_eq!(pass.temporary_access_pass.len(), 12);
    let methods = serde_json::to_string(
        &h.directory
            .sign_in
            .list_user_methods(&h.admin, user)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!methods.contains(&pass.temporary_access_pass));

    let flow = h.begin(&ctx, "newhire@contoso.com").await;
    let view = h
        .directory
        .sign_in
        .view(&ctx, &flow)
        .await
        .unwrap()
        .unwrap();
    // Every name is offered the same first factors (no hint of who holds a pass).
    assert_eq!(
        view.offers,
        vec![
            tessera_authn::strength::Mode::Password,
            tessera_authn::strength::Mode::TemporaryAccessPassOneTime
        ]
    );
    let typed = format!(
        " {}-{} ",
        &pass.temporary_access_pass[..6],
        &pass.temporary_access_pass[6..].to_lowercase()
    );
    let secret = h.signed_in(
        h.directory
            .sign_in
            .submit_pass(&ctx, &flow, SecretString::new(typed))
            .await
            .unwrap()
            .unwrap(),
    );
    // The pass opens security info: the new hire sets a password.
    h.directory
        .sign_in
        .change_my_password(
            &h.load(&secret).await,
            "c",
            None,
            SecretString::new(GOOD_PASSWORD.to_string()),
        )
        .await
        .unwrap();
    // One-time: the same pass does not work again.
    let flow = h.begin(&ctx, "newhire@contoso.com").await;
    let again = h
        .directory
        .sign_in
        .submit_pass(
            &ctx,
            &flow,
            SecretString::new(pass.temporary_access_pass.clone()),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(error_of(&again).is_some());
    let failures = h
        .sign_ins(json!({ "userId": user, "result": "failure" }))
        .await;
    assert_eq!(
        failures[0]["failureCode"],
        "temporary_access_pass_not_usable"
    );
    let success = h
        .sign_ins(json!({ "userId": user, "result": "success" }))
        .await;
    assert_eq!(
        success[0]["authenticationMethods"],
        json!(["temporaryAccessPassOneTime"])
    );
    // The audit trail has the issue and the password set, without the secrets.
    let audit = h
        .directory
        .directory
        .query_audit(
            &h.admin,
            &tessera_service::AuditFilter {
                target_id: Some(user.to_string()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let actions: Vec<String> = audit
        .value
        .iter()
        .map(|e| e.event["action"].as_str().unwrap().to_string())
        .collect();
    assert!(actions.contains(&"user.temporaryAccessPass.issue".to_string()));
    assert!(actions.contains(&"user.password.set".to_string()));
    let trail =
        serde_json::to_string(&audit.value.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap();
    assert!(!trail.contains(&pass.temporary_access_pass) && !trail.contains(GOOD_PASSWORD));
}

async fn registration_needs_a_strong_recent_sign_in(h: Harness) {
    h.user_with_password("adele@contoso.com").await;
    let ctx = h.from("192.0.2.10");
    let secret = h.password_session(&ctx, "adele@contoso.com").await;
    let enrolment = h.enrol_totp(&secret).await;
    // The user now has a second factor; a password-only session may not change
    // security info any more.
    let refused = h.directory.sign_in.begin_totp(&h.load(&secret).await).await;
    assert!(
        matches!(refused, Err(ServiceError::Forbidden { .. })),
        "{refused:?}"
    );

    // A tenant that requires phishing-resistant MFA for registration refuses
    // password + TOTP too.
    let mut policy = serde_json::to_value(tessera_authn::policy::MethodsPolicy::default()).unwrap();
    policy["registrationStrength"] = json!(tessera_authn::strength::PHISHING_RESISTANT_MFA);
    h.directory
        .sign_in
        .set_methods_policy(&h.admin, policy, None)
        .await
        .unwrap();
    let flow = h.begin(&ctx, "adele@contoso.com").await;
    h.password(&ctx, &flow, GOOD_PASSWORD).await;
    h.next_step();
    let secret = h.signed_in(
        h.directory
            .sign_in
            .submit_code(&ctx, &flow, &h.code(&enrolment.secret))
            .await
            .unwrap()
            .unwrap(),
    );
    let refused = h
        .directory
        .sign_in
        .begin_passkey(&h.load(&secret).await)
        .await;
    let Err(ServiceError::Forbidden { reason }) = refused else {
        panic!("expected a refusal");
    };
    assert!(reason.contains("Phishing-resistant MFA"));
}

async fn sessions_end_everywhere(h: Harness) {
    let user = h.user_with_password("adele@contoso.com").await;
    let laptop = h
        .password_session(&h.from("192.0.2.1"), "adele@contoso.com")
        .await;
    let phone = h
        .password_session(&h.from("192.0.2.2"), "adele@contoso.com")
        .await;
    let views = h
        .directory
        .sign_in
        .list_user_sessions(&h.admin, user)
        .await
        .unwrap();
    assert_eq!(views.len(), 2);
    assert_eq!(
        h.directory
            .sign_in
            .revoke_user_sessions(&h.admin, user)
            .await
            .unwrap(),
        2
    );
    for secret in [&laptop, &phone] {
        assert!(
            h.directory
                .sign_in
                .session(h.admin.tenant, secret)
                .await
                .unwrap()
                .is_none()
        );
    }
    // Sign out everywhere from one session ends the others.
    let a = h
        .password_session(&h.from("192.0.2.1"), "adele@contoso.com")
        .await;
    let b = h
        .password_session(&h.from("192.0.2.2"), "adele@contoso.com")
        .await;
    h.directory
        .sign_in
        .end_all_my_sessions(&h.load(&a).await)
        .await
        .unwrap();
    assert!(
        h.directory
            .sign_in
            .session(h.admin.tenant, &b)
            .await
            .unwrap()
            .is_none()
    );
    // A disabled user's sessions stop working at once.
    let c = h
        .password_session(&h.from("192.0.2.3"), "adele@contoso.com")
        .await;
    h.directory
        .directory
        .update_user(
            &h.admin,
            Versioned::any(user).patch(json!({ "accountEnabled": false })),
        )
        .await
        .unwrap();
    assert!(
        h.directory
            .sign_in
            .session(h.admin.tenant, &c)
            .await
            .unwrap()
            .is_none()
    );
    // And a disabled user cannot sign in, with the same message as a wrong password.
    let ctx = h.from("192.0.2.3");
    let flow = h.begin(&ctx, "adele@contoso.com").await;
    let outcome = h.password(&ctx, &flow, GOOD_PASSWORD).await;
    assert!(error_of(&outcome).unwrap().contains("did not work"));
    let failures = h
        .sign_ins(json!({ "userId": user, "result": "failure" }))
        .await;
    assert_eq!(failures[0]["failureCode"], "account_disabled");
}

async fn policy_and_strengths(h: Harness) {
    let (policy, version) = h
        .directory
        .sign_in
        .get_methods_policy(&h.admin)
        .await
        .unwrap();
    assert_eq!(version, 0);
    let mut body = serde_json::to_value(&policy).unwrap();
    body["fido2"]["settings"]["keyRestrictions"] = json!({ "enforcement": "allow", "aaguids": [] });
    let refused = h
        .directory
        .sign_in
        .set_methods_policy(&h.admin, body.clone(), None)
        .await;
    assert!(matches!(refused, Err(ServiceError::Validation(_))));
    body["fido2"]["settings"]["keyRestrictions"]["aaguids"] =
        json!(["cb69481e-8ff7-4039-93ec-0a2729a154a8"]);
    body["fido2"]["includeGroups"] = json!([Uuid::new_v4()]);
    assert!(
        matches!(
            h.directory
                .sign_in
                .set_methods_policy(&h.admin, body.clone(), None)
                .await,
            Err(ServiceError::Validation(_))
        ),
        "a group that does not exist is refused"
    );
    body["fido2"]["includeGroups"] = json!([]);
    let (_, version) = h
        .directory
        .sign_in
        .set_methods_policy(&h.admin, body.clone(), None)
        .await
        .unwrap();
    assert_eq!(version, 1);
    assert!(matches!(
        h.directory
            .sign_in
            .set_methods_policy(&h.admin, body.clone(), Some(7))
            .await,
        Err(ServiceError::VersionMismatch { .. })
    ));

    let cac = h
        .directory.sign_in
        .create_strength(
            &h.admin,
            json!({
                "displayName": "DoD CAC",
                "allowedCombinations": ["x509CertificateMultiFactor"],
                "combinationConfigurations": {
                    "x509CertificateMultiFactor": { "allowedIssuers": ["CN=DOD ID CA-59,OU=PKI,OU=DoD,O=U.S. Government,C=US"] }
                }
            }),
        )
        .await
        .unwrap();
    let strengths = h.directory.sign_in.list_strengths(&h.admin).await.unwrap();
    assert_eq!(strengths.len(), 4);
    assert!(matches!(
        h.directory
            .sign_in
            .create_strength(
                &h.admin,
                json!({ "displayName": "x", "allowedCombinations": ["sms"] })
            )
            .await,
        Err(ServiceError::Validation(_))
    ));
    body["registrationStrength"] = json!(cac.id);
    h.directory
        .sign_in
        .set_methods_policy(&h.admin, body, Some(1))
        .await
        .unwrap();
    assert!(matches!(
        h.directory.sign_in.delete_strength(&h.admin, cac.id).await,
        Err(ServiceError::Conflict { .. })
    ));
}

async fn certificate_sign_in(h: Harness) {
    use tessera_authn::x509::test_pki::{LeafSpec, crl, intermediate, leaf, root};
    const CAC_POLICY: &[u64] = &[2, 16, 840, 1, 101, 2, 1, 11, 42];
    let contoso_root = root("Contoso Root CA");
    let issuing = intermediate("Contoso Issuing CA", &contoso_root);
    // Bad uploads change nothing.
    let not_root = h
        .directory
        .sign_in
        .add_certificate_authority(
            &h.admin,
            json!({ "certificate": issuing.pem(), "isRootAuthority": true }),
        )
        .await;
    assert!(matches!(not_root, Err(ServiceError::Validation(_))));
    h.directory
        .sign_in
        .add_certificate_authority(
            &h.admin,
            json!({ "certificate": contoso_root.pem(), "isRootAuthority": true }),
        )
        .await
        .unwrap();
    let issuing_ca = h
        .directory.sign_in
        .add_certificate_authority(
            &h.admin,
            json!({ "certificate": issuing.pem(), "isRootAuthority": false, "requireRevocationData": true }),
        )
        .await
        .unwrap();
    let good = leaf(
        LeafSpec {
            upn: "adele@contoso.com",
            serial: 10,
            policies: &[CAC_POLICY],
            days: 30,
            client_auth: true,
        },
        &issuing,
    );
    let revoked = leaf(
        LeafSpec {
            upn: "adele@contoso.com",
            serial: 66,
            policies: &[CAC_POLICY],
            days: 30,
            client_auth: true,
        },
        &issuing,
    );
    let plain = leaf(
        LeafSpec {
            upn: "adele@contoso.com",
            serial: 11,
            policies: &[],
            days: 30,
            client_auth: true,
        },
        &issuing,
    );
    let stranger_root = root("Stranger Root CA");
    let stranger = leaf(
        LeafSpec {
            upn: "adele@contoso.com",
            serial: 12,
            policies: &[CAC_POLICY],
            days: 30,
            client_auth: true,
        },
        &stranger_root,
    );

    let mut policy = serde_json::to_value(tessera_authn::policy::MethodsPolicy::default()).unwrap();
    policy["x509Certificate"]["state"] = json!("enabled");
    policy["x509Certificate"]["settings"]["authenticationModeConfiguration"]["rules"] = json!([{
        "x509CertificateRuleType": "policyOID",
        "identifier": "2.16.840.1.101.2.1.11.42",
        "x509CertificateAuthenticationMode": "x509CertificateMultiFactor"
    }]);
    h.directory
        .sign_in
        .set_methods_policy(&h.admin, policy, None)
        .await
        .unwrap();
    let user = h
        .directory
        .directory
        .create_user(
            &h.admin,
            json!({ "userPrincipalName": "adele@contoso.com", "displayName": "Adele Vance" }),
        )
        .await
        .unwrap()
        .id;
    let ctx = h.from("192.0.2.50");
    let attempt = |chain: Vec<Vec<u8>>| {
        let h = &h;
        let ctx = ctx.clone();
        async move {
            let (flow, view) = h.directory.sign_in.start(&ctx).await.unwrap();
            assert!(view.certificate, "the page offers certificate sign-in");
            h.directory
                .sign_in
                .submit_certificate(&ctx, flow.expose(), chain)
                .await
                .unwrap()
                .unwrap()
        }
    };
    // Without a CRL for the issuing CA (which requires one), nothing gets in.
    let outcome = attempt(vec![good.der.clone()]).await;
    assert!(error_of(&outcome).is_some());
    assert_eq!(
        h.sign_ins(json!({ "result": "failure" })).await[0]["failureCode"],
        "certificate_revocation_unknown"
    );
    let crl_pem = format!(
        "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            crl(&issuing, &[66], 7)
        )
    );
    let view = h
        .directory
        .sign_in
        .upload_crl(&h.admin, issuing_ca.id, json!({ "crl": crl_pem }))
        .await
        .unwrap();
    assert_eq!(view.revocation_list.unwrap()["revokedCount"], 1);
    assert!(matches!(
        h.directory
            .sign_in
            .upload_crl(&h.admin, issuing_ca.id, json!({ "crl": "bm90IGEgY3Js" }))
            .await,
        Err(ServiceError::Validation(_))
    ));

    // The CAC certificate signs in with multi-factor, phishing-resistant strength.
    let secret = h.signed_in(attempt(vec![good.der.clone()]).await);
    let session = h.load(&secret).await;
    assert_eq!(session.user_id, user);
    assert_eq!(
        session.methods[0].method.mode,
        tessera_authn::strength::Mode::X509CertificateMultiFactor
    );
    let success = h
        .sign_ins(json!({ "userId": user, "result": "success" }))
        .await;
    assert_eq!(
        success[0]["authenticationRequirement"],
        "multiFactorAuthentication"
    );
    assert!(
        success[0]["satisfiedStrengths"]
            .as_array()
            .unwrap()
            .contains(&json!(tessera_authn::strength::PHISHING_RESISTANT_MFA))
    );

    // Revoked and untrusted certificates are refused, with their own codes.
    assert!(error_of(&attempt(vec![revoked.der.clone()]).await).is_some());
    assert_eq!(
        h.sign_ins(json!({ "result": "failure" })).await[0]["failureCode"],
        "certificate_revoked"
    );
    assert!(error_of(&attempt(vec![stranger.der.clone()]).await).is_some());
    assert_eq!(
        h.sign_ins(json!({ "result": "failure" })).await[0]["failureCode"],
        "certificate_untrusted"
    );
    assert!(error_of(&attempt(vec![]).await).is_some());
    assert_eq!(
        h.sign_ins(json!({ "result": "failure" })).await[0]["failureCode"],
        "certificate_missing"
    );

    // A certificate without the CAC policy is single-factor.
    let secret = h.signed_in(attempt(vec![plain.der.clone()]).await);
    assert_eq!(
        h.load(&secret).await.methods[0].method.mode,
        tessera_authn::strength::Mode::X509CertificateSingleFactor
    );

    // A certificate naming nobody can be bound to a user by a certificate user id.
    let other = leaf(
        LeafSpec {
            upn: "1234567890@mil",
            serial: 13,
            policies: &[CAC_POLICY],
            days: 30,
            client_auth: true,
        },
        &issuing,
    );
    assert!(error_of(&attempt(vec![other.der.clone()]).await).is_some());
    assert_eq!(
        h.sign_ins(json!({ "result": "failure" })).await[0]["failureCode"],
        "certificate_user_not_found"
    );
    h.directory
        .sign_in
        .add_certificate_user_id(
            &h.admin,
            user,
            json!({ "value": "X509:<PN>1234567890@mil" }),
        )
        .await
        .unwrap();
    let mut policy = serde_json::to_value(
        h.directory
            .sign_in
            .get_methods_policy(&h.admin)
            .await
            .unwrap()
            .0,
    )
    .unwrap();
    policy["x509Certificate"]["settings"]["certificateUserBindings"] = json!([
        { "x509CertificateField": "PrincipalName", "userProperty": "userPrincipalName", "priority": 1 },
        { "x509CertificateField": "PrincipalName", "userProperty": "certificateUserIds", "priority": 2 }
    ]);
    h.directory
        .sign_in
        .set_methods_policy(&h.admin, policy, Some(1))
        .await
        .unwrap();
    let secret = h.signed_in(attempt(vec![other.der.clone()]).await);
    assert_eq!(h.load(&secret).await.user_id, user);
    // A custom "DoD CAC" strength counts certificates of the chosen issuer only.
    let facts = tessera_authn::x509::validate(
        std::slice::from_ref(&good.der),
        &[
            tessera_authn::x509::TrustedCa {
                der: contoso_root.der(),
                is_root: true,
                require_revocation_data: false,
            },
            tessera_authn::x509::TrustedCa {
                der: issuing.der(),
                is_root: false,
                require_revocation_data: false,
            },
        ],
        &[],
        h.clock.now().unix_seconds(),
    )
    .unwrap();
    let cac = h
        .directory.sign_in
        .create_strength(
            &h.admin,
            json!({
                "displayName": "DoD CAC",
                "allowedCombinations": ["x509CertificateMultiFactor"],
                "combinationConfigurations": { "x509CertificateMultiFactor": { "allowedIssuers": [facts.issuer] } }
            }),
        )
        .await
        .unwrap();
    h.signed_in(attempt(vec![good.der.clone()]).await);
    let success = h
        .sign_ins(json!({ "userId": user, "result": "success" }))
        .await;
    assert!(
        success[0]["satisfiedStrengths"]
            .as_array()
            .unwrap()
            .contains(&json!(cac.id))
    );
}

async fn passkeys_register_sign_in_and_detect_clones(h: Harness) {
    use tessera_authn::soft_authenticator::SoftAuthenticator;
    let origin = "http://localhost:8080";
    let user = h.user_with_password("adele@contoso.com").await;
    let ctx = h.from("192.0.2.10");
    // A tenant that blocks one authenticator model.
    let blocked = [9u8; 16];
    let mut policy = serde_json::to_value(tessera_authn::policy::MethodsPolicy::default()).unwrap();
    policy["fido2"]["settings"]["keyRestrictions"] =
        json!({ "enforcement": "block", "aaguids": [Uuid::from_bytes(blocked)] });
    h.directory
        .sign_in
        .set_methods_policy(&h.admin, policy, None)
        .await
        .unwrap();

    let secret = h.password_session(&ctx, "adele@contoso.com").await;
    let mut cheap = SoftAuthenticator::new(blocked);
    let challenge = h
        .directory
        .sign_in
        .begin_passkey(&h.load(&secret).await)
        .await
        .unwrap();
    let response = cheap
        .register(&challenge.options, origin)
        .unwrap()
        .to_string();
    let refused = h
        .directory
        .sign_in
        .finish_passkey(&h.load(&secret).await, "c", &response, "Cheap key")
        .await;
    assert!(
        matches!(refused, Err(ServiceError::Forbidden { .. })),
        "{refused:?}"
    );
    // A challenge is good for one attempt.
    let again = h
        .directory
        .sign_in
        .finish_passkey(&h.load(&secret).await, "c", &response, "Cheap key")
        .await;
    assert!(matches!(again, Err(ServiceError::Conflict { .. })));

    let mut key = SoftAuthenticator::new([1u8; 16]);
    let challenge = h
        .directory
        .sign_in
        .begin_passkey(&h.load(&secret).await)
        .await
        .unwrap();
    let response = key
        .register(&challenge.options, origin)
        .unwrap()
        .to_string();
    let method = h
        .directory
        .sign_in
        .finish_passkey(&h.load(&secret).await, "c", &response, "Work key")
        .await
        .unwrap();
    assert_eq!(method.aaguid, Some(Uuid::from_bytes([1u8; 16])));

    // Username-less sign-in.
    let (flow, _) = h.directory.sign_in.start(&ctx).await.unwrap();
    let options = h
        .directory
        .sign_in
        .passkey_options(&ctx, flow.expose())
        .await
        .unwrap()
        .unwrap();
    let assertion = key.assert(&options, origin, 0).unwrap().to_string();
    let secret = h.signed_in(
        h.directory
            .sign_in
            .submit_passkey(&ctx, flow.expose(), &assertion)
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(h.load(&secret).await.user_id, user);
    // The same assertion again (a replay) fails: its challenge is used up.
    let (flow, _) = h.directory.sign_in.start(&ctx).await.unwrap();
    h.directory
        .sign_in
        .passkey_options(&ctx, flow.expose())
        .await
        .unwrap();
    let replay = h
        .directory
        .sign_in
        .submit_passkey(&ctx, flow.expose(), &assertion)
        .await
        .unwrap()
        .unwrap();
    assert!(error_of(&replay).is_some());
    // A cloned authenticator shows a signature counter that went backwards.
    key.credentials[0].counter = 0;
    let (flow, _) = h.directory.sign_in.start(&ctx).await.unwrap();
    let options = h
        .directory
        .sign_in
        .passkey_options(&ctx, flow.expose())
        .await
        .unwrap()
        .unwrap();
    let cloned = key.assert(&options, origin, 0).unwrap().to_string();
    let outcome = h
        .directory
        .sign_in
        .submit_passkey(&ctx, flow.expose(), &cloned)
        .await
        .unwrap()
        .unwrap();
    assert!(error_of(&outcome).is_some());
    let failures = h
        .sign_ins(json!({ "userId": user, "result": "failure" }))
        .await;
    assert_eq!(failures[0]["failureCode"], "passkey_clone_suspected");
    // After a password, a passkey is the second factor.
    key.credentials[0].counter = 100;
    let flow = h.begin(&ctx, "adele@contoso.com").await;
    let SignInOutcome::Continue(view) = h.password(&ctx, &flow, GOOD_PASSWORD).await else {
        panic!("a second factor is needed");
    };
    assert_eq!(view.offers, vec![tessera_authn::strength::Mode::Fido2]);
    let options = h
        .directory
        .sign_in
        .passkey_options(&ctx, &flow)
        .await
        .unwrap()
        .unwrap();
    let assertion = key.assert(&options, origin, 0).unwrap().to_string();
    let secret = h.signed_in(
        h.directory
            .sign_in
            .submit_passkey(&ctx, &flow, &assertion)
            .await
            .unwrap()
            .unwrap(),
    );
    let modes: Vec<String> = h
        .load(&secret)
        .await
        .methods
        .iter()
        .map(|m| m.method.mode.to_string())
        .collect();
    assert_eq!(modes, ["password", "fido2"]);
}

/// The sign-in page asks for passkey options (conditional mediation) while the user
/// submits their name: both change the flow at once, and the name is never refused
/// for it (it was, as "the object was changed since you read it").
async fn the_passkey_request_beside_the_name_form_loses_nothing(h: Harness) {
    h.user_with_password("race@contoso.com").await;
    let ctx = h.from("10.0.0.7");
    for _ in 0..40 {
        let (secret, _) = h.directory.sign_in.start(&ctx).await.unwrap();
        let (named, options) = tokio::join!(
            h.directory
                .sign_in
                .identify(&ctx, secret.expose(), "race@contoso.com"),
            h.directory.sign_in.passkey_options(&ctx, secret.expose()),
        );
        let view = named.unwrap().unwrap();
        assert_eq!(view.step, FlowStep::Credentials);
        assert!(options.unwrap().is_some());
    }
}

tessera_testkit::both_backends!(
    setup = harness;
    the_passkey_request_beside_the_name_form_loses_nothing,
    passkeys_register_sign_in_and_detect_clones,
    certificate_sign_in,
    password_then_totp_and_replay_refused,
    smart_lockout_spares_the_real_user,
    smart_lockout_releases_after_its_period,
    password_protection,
    temporary_access_pass_onboarding,
    registration_needs_a_strong_recent_sign_in,
    sessions_end_everywhere,
    policy_and_strengths,
);

/// Review findings that must stay fixed.
mod review {
    use super::*;

    async fn totp_guessing_cannot_reset_the_lockout(h: Harness) {
        let mut policy =
            serde_json::to_value(tessera_authn::policy::MethodsPolicy::default()).unwrap();
        policy["lockout"] = json!({ "threshold": 3, "durationSeconds": 600 });
        h.directory
            .sign_in
            .set_methods_policy(&h.admin, policy, None)
            .await
            .unwrap();
        let user = h.user_with_password("adele@contoso.com").await;
        let ctx = h.from("192.0.2.10");
        let secret = h.password_session(&ctx, "adele@contoso.com").await;
        h.enrol_totp(&secret).await;
        // A phished password, then code guesses; a correct password again does not
        // give the guesser a fresh allowance.
        let attacker = h.from("203.0.113.7");
        let mut refused = 0;
        for _ in 0..4 {
            let flow = h.begin(&attacker, "adele@contoso.com").await;
            if let SignInOutcome::Continue(view) = h.password(&attacker, &flow, GOOD_PASSWORD).await
                && view.step == FlowStep::SecondFactor
            {
                h.directory
                    .sign_in
                    .submit_code(&attacker, &flow, "000000")
                    .await
                    .unwrap();
            } else {
                refused += 1;
            }
        }
        assert!(
            refused >= 1,
            "the password step locks once guesses reach the threshold"
        );
        let failures = h
            .sign_ins(json!({ "userId": user, "result": "failure" }))
            .await;
        assert!(
            failures
                .iter()
                .any(|f| f["failureCode"] == "account_locked")
        );
    }

    async fn a_single_factor_certificate_is_not_a_second_factor(h: Harness) {
        use tessera_authn::x509::test_pki::{LeafSpec, root};
        let ca = root("Contoso Root CA");
        h.directory
            .sign_in
            .add_certificate_authority(
                &h.admin,
                json!({ "certificate": ca.pem(), "isRootAuthority": true }),
            )
            .await
            .unwrap();
        let mut policy =
            serde_json::to_value(tessera_authn::policy::MethodsPolicy::default()).unwrap();
        policy["x509Certificate"]["state"] = json!("enabled");
        h.directory
            .sign_in
            .set_methods_policy(&h.admin, policy, None)
            .await
            .unwrap();
        h.user_with_password("adele@contoso.com").await;
        let ctx = h.from("192.0.2.10");
        let secret = h.password_session(&ctx, "adele@contoso.com").await;
        h.enrol_totp(&secret).await;
        let certificate = tessera_authn::x509::test_pki::leaf(
            LeafSpec {
                upn: "adele@contoso.com",
                serial: 3,
                policies: &[],
                days: 30,
                client_auth: true,
            },
            &ca,
        );
        // Single-factor certificate first: the second step wants the TOTP code...
        let (flow, _) = h.directory.sign_in.start(&ctx).await.unwrap();
        let first = h
            .directory
            .sign_in
            .submit_certificate(&ctx, flow.expose(), vec![certificate.der.clone()])
            .await
            .unwrap()
            .unwrap();
        let SignInOutcome::Continue(view) = first else {
            panic!("a second factor is needed")
        };
        assert_eq!(view.step, FlowStep::SecondFactor);
        // ...and the same certificate again does not count as it.
        let again = h
            .directory
            .sign_in
            .submit_certificate(&ctx, flow.expose(), vec![certificate.der.clone()])
            .await
            .unwrap()
            .unwrap();
        assert!(error_of(&again).is_some());
        // Nor after a password.
        let flow = h.begin(&ctx, "adele@contoso.com").await;
        h.password(&ctx, &flow, GOOD_PASSWORD).await;
        let after_password = h
            .directory
            .sign_in
            .submit_certificate(&ctx, &flow, vec![certificate.der.clone()])
            .await
            .unwrap()
            .unwrap();
        assert!(error_of(&after_password).is_some());
    }

    async fn changing_the_password_ends_other_sessions(h: Harness) {
        h.user_with_password("adele@contoso.com").await;
        let mine = h
            .password_session(&h.from("192.0.2.1"), "adele@contoso.com")
            .await;
        let stolen = h
            .password_session(&h.from("203.0.113.9"), "adele@contoso.com")
            .await;
        h.directory
            .sign_in
            .change_my_password(
                &h.load(&mine).await,
                "c",
                Some(SecretString::new(GOOD_PASSWORD.to_string())),
                SecretString::new("a-brand-new-harbour-engine-7".to_string()),
            )
            .await
            .unwrap();
        assert!(
            h.directory
                .sign_in
                .session(h.admin.tenant, &stolen)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            h.directory
                .sign_in
                .session(h.admin.tenant, &mine)
                .await
                .unwrap()
                .is_some()
        );
    }

    tessera_testkit::both_backends!(
    setup = harness;
        totp_guessing_cannot_reset_the_lockout,
        a_single_factor_certificate_is_not_a_second_factor,
        changing_the_password_ends_other_sessions,
    );
}

/// The app sign-in step at the authorization endpoint: consent and availability are
/// decided again when a waiting request goes on.
mod app_sign_in {
    use super::*;
    use tessera_service::oauth::{AuthorizeContext, AuthorizeOutcome};

    const REDIRECT: &str = "https://app.contoso.com/cb";

    fn authorize_context(h: &Harness) -> AuthorizeContext {
        AuthorizeContext {
            tenant: h.admin.tenant,
            issuer: "http://localhost:8080".to_string(),
            correlation_id: "corr-app-sign-in".to_string(),
            client_address: Some("192.0.2.10".to_string()),
            user_agent: Some("test-agent".to_string()),
            device_thumbprint: None,
        }
    }

    /// An application with a service principal; returns (client id, principal id).
    async fn application(h: &Harness, assignment_required: bool) -> (String, Uuid) {
        let app = h
            .directory
            .directory
            .create_application(
                &h.admin,
                json!({ "displayName": "Payroll", "web": { "redirectUris": [REDIRECT] } }),
            )
            .await
            .unwrap();
        let principal = h
            .directory
            .directory
            .create_service_principal(
                &h.admin,
                json!({ "appId": app.app_id, "appRoleAssignmentRequired": assignment_required }),
            )
            .await
            .unwrap();
        (app.app_id.to_string(), principal.id)
    }

    /// A code-flow authorization request for the application (PKCE, OIDC scopes).
    fn authorization_request(client_id: &str) -> tessera_oauth::authorize::RawAuthorization {
        let params = [
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile"),
            ("state", "s1"),
            ("nonce", "n1"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ];
        tessera_oauth::authorize::RawAuthorization {
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            resources: Vec::new(),
        }
    }

    /// A request made while signed out: the pending request's secret.
    async fn pending_request(h: &Harness, client_id: &str) -> String {
        let raw = authorization_request(client_id);
        match h
            .directory
            .oidc
            .authorize(&authorize_context(h), &raw, None)
            .await
        {
            AuthorizeOutcome::SignIn { pending, .. } => pending.expose().to_string(),
            other => panic!("expected a sign-in, got {other:?}"),
        }
    }

    fn error_of(outcome: &AuthorizeOutcome) -> Option<String> {
        match outcome {
            AuthorizeOutcome::Respond { params, .. } => params
                .iter()
                .find(|(name, _)| *name == "error")
                .map(|(_, value)| value.clone()),
            AuthorizeOutcome::Refused(error) => Some(error.error.as_str().to_string()),
            other => panic!("expected an answer for the client, got {other:?}"),
        }
    }

    async fn user_grants(h: &Harness, client_id: &str) -> Vec<Value> {
        h.directory
            .directory
            .list_permission_grants(&h.admin, Some(client_id.parse().unwrap()))
            .await
            .unwrap()
            .into_iter()
            .map(|g| serde_json::to_value(g).unwrap())
            .filter(|g| g["consentType"] == "Principal")
            .collect()
    }

    async fn consent_is_recorded_only_when_the_verdict_asks_for_it(h: Harness) {
        h.directory
            .directory
            .set_consent_policy(
                &h.admin,
                tessera_service::Replacement::any(
                    json!({ "userConsent": "all", "lowRiskScopes": [] }),
                ),
            )
            .await
            .unwrap();
        let (client_id, principal) = application(&h, true).await;
        let user = h.user_with_password("adele@contoso.com").await;
        // A user the application does not admit answers a consent page they were
        // never shown: nothing is recorded, and the application hears access_denied.
        let pending = pending_request(&h, &client_id).await;
        let ctx = h.from("192.0.2.10");
        let session = h
            .load(&h.password_session(&ctx, "adele@contoso.com").await)
            .await;
        let actx = authorize_context(&h);
        let answer = h
            .directory
            .oidc
            .consent(&actx, &pending, &session, true)
            .await;
        assert_eq!(error_of(&answer).as_deref(), Some("access_denied"));
        assert!(
            user_grants(&h, &client_id).await.is_empty(),
            "no consent was recorded"
        );
        // Assigned, the same user is asked, and what they approve is what is recorded.
        h.directory
            .directory
            .assign_app_role(&h.admin, principal, json!({ "principalId": user }))
            .await
            .unwrap();
        let pending = pending_request(&h, &client_id).await;
        // (a waiting request is answered by a sign-in made after it)
        let session = h
            .load(&h.password_session(&ctx, "adele@contoso.com").await)
            .await;
        let asked = h
            .directory
            .oidc
            .authorize_continue(&actx, &pending, Some(&session))
            .await;
        let AuthorizeOutcome::Consent {
            pending, scopes, ..
        } = asked
        else {
            panic!("expected the consent page, got {asked:?}");
        };
        assert_eq!(scopes, ["openid", "profile"]);
        let answer = h
            .directory
            .oidc
            .consent(&actx, pending.expose(), &session, true)
            .await;
        assert_eq!(error_of(&answer), None, "a code: {answer:?}");
        let grants = user_grants(&h, &client_id).await;
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0]["scope"], "openid profile");
    }

    async fn a_request_waiting_for_an_application_disabled_since_gets_no_code(h: Harness) {
        let (client_id, principal) = application(&h, false).await;
        h.user_with_password("adele@contoso.com").await;
        let pending = pending_request(&h, &client_id).await;
        h.directory
            .directory
            .update_service_principal(
                &h.admin,
                Versioned::any(principal).patch(json!({ "accountEnabled": false })),
            )
            .await
            .unwrap();
        let ctx = h.from("192.0.2.10");
        let session = h
            .load(&h.password_session(&ctx, "adele@contoso.com").await)
            .await;
        let answer = h
            .directory
            .oidc
            .authorize_continue(&authorize_context(&h), &pending, Some(&session))
            .await;
        assert_eq!(error_of(&answer).as_deref(), Some("unauthorized_client"));
    }

    /// More concurrent sign-ins to an application than pooled connections, while the
    /// policy cache rebuilds: every request is answered, because no decision holds
    /// its read snapshot while the cache reads the store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_decisions_do_not_exhaust_a_small_pool() {
        let store = tessera_testkit::databases::sqlite_small_pool(2).await;
        let clock = Arc::new(ShiftedClock::default());
        let directory =
            App::with_auth(store, clock.clone(), auth_settings("http://localhost:8080"));
        let admin = bootstrap_admin(&directory).await.ctx;
        let h = Harness {
            clock,
            directory,
            admin,
            breached: tempfile::tempdir().unwrap(),
        };
        let (client_id, _) = application(&h, false).await;
        h.user_with_password("adele@contoso.com").await;
        let ctx = h.from("192.0.2.10");
        let session = h
            .load(&h.password_session(&ctx, "adele@contoso.com").await)
            .await;
        // A policy change: the next decision rebuilds this node's policy set.
        h.directory
            .access
            .create_policy(&h.admin, json!({
                "displayName": "Report-only MFA", "state": "enabledForReportingButNotEnforced",
                "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
                "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
            }))
            .await
            .unwrap();
        let raw = authorization_request(client_id.as_str());
        let actx = authorize_context(&h);
        let answers = futures::future::join_all(
            (0..8).map(|_| h.directory.oidc.authorize(&actx, &raw, Some(&session))),
        )
        .await;
        for answer in answers {
            assert!(
                matches!(answer, AuthorizeOutcome::Consent { .. }),
                "every request gets its consent page: {answer:?}"
            );
        }
    }

    tessera_testkit::both_backends!(
    setup = harness;
        consent_is_recorded_only_when_the_verdict_asks_for_it,
        a_request_waiting_for_an_application_disabled_since_gets_no_code,
    );
}

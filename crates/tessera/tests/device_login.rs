//! `tessera login` without a token signs in with the device flow: the CLI prints a
//! code, the user approves it at `/device` in a browser session, and the CLI then
//! calls the management API with the Tessera access token it got, renewing it with
//! its refresh token when it expires.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tessera_testkit::{Server, run_ok};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera");

mod common;
use common::pages::{csrf_of, form, password_sign_in};

/// Signs in with a password through the pages and approves the device code.
async fn approve(base: &str, upn: &str, password: &str, user_code: &str) {
    let done = approve_with(base, upn, password, user_code).await;
    assert!(done.text().await.unwrap().contains("signed in"));
}

/// Signs in with a password and answers the device code's confirmation: the
/// answer to the approval.
async fn approve_with(base: &str, upn: &str, password: &str, user_code: &str) -> reqwest::Response {
    let (signed_in, mut jar) = password_sign_in(base, upn, password).await;
    assert_eq!(signed_in, 303, "the password signs the user in");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let device = http
        .get(format!("{base}/device?user_code={user_code}"))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(device.status(), 200);
    let csrf = csrf_of(&device.text().await.unwrap());
    let confirm = form(
        &http,
        &mut jar,
        &format!("{base}/device"),
        &[("csrf", &csrf), ("user_code", user_code)],
    )
    .await;
    assert!(confirm.text().await.unwrap().contains("Tessera CLI"));
    form(
        &http,
        &mut jar,
        &format!("{base}/device/confirm"),
        &[
            ("csrf", &csrf),
            ("user_code", user_code),
            ("decision", "approve"),
        ],
    )
    .await
}

#[test]
fn the_cli_signs_in_with_the_device_flow_and_renews_its_token() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, &work.path().join("data"), &[]);
    let base = server.issuer.clone();
    let admin = server.token.clone().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let api = |method: reqwest::Method, path: &str, body: Value| {
        let request = http
            .request(method, format!("{base}/api/v1{path}"))
            .bearer_auth(&admin)
            .json(&body);
        let path = path.to_string();
        async move {
            let response = request.send().await.unwrap();
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            response.json::<Value>().await.unwrap()
        }
    };
    let (user, password) = runtime.block_on(async {
        // Security defaults ask for multifactor authentication for the command
        // line (management); this test is about the device flow, with a
        // password-only user.
        api(
            reqwest::Method::PATCH,
            "/policies/identitySecurityDefaultsEnforcementPolicy",
            json!({ "isEnabled": false }),
        )
        .await;
        let user = api(
            reqwest::Method::POST,
            "/users",
            json!({ "userPrincipalName": "cli.user@tessera.local", "displayName": "CLI User" }),
        )
        .await;
        let reset = api(
            reqwest::Method::POST,
            &format!(
                "/users/{}/authentication/resetPassword",
                user["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
        (user, reset["newPassword"].as_str().unwrap().to_string())
    });
    let config = work.path().join("cli");
    let mut login = Command::new(BINARY)
        .args(["login", "--server", &base])
        .env("TESSERA_CONFIG_DIR", &config)
        .env_remove("TESSERA_TOKEN")
        .env_remove("TESSERA_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = login.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let prompt = lines.next().unwrap().unwrap();
    let user_code = prompt.rsplit(' ').next().unwrap().trim().to_string();
    assert!(prompt.contains("/device"), "{prompt}");
    runtime.block_on(approve(
        &base,
        "cli.user@tessera.local",
        &password,
        &user_code,
    ));
    let output = login.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "login failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let whoami = |config: &std::path::Path| {
        let output = run_ok(
            Command::new(BINARY)
                .args(["whoami", "--output", "json"])
                .env("TESSERA_CONFIG_DIR", config)
                .env_remove("TESSERA_TOKEN")
                .env_remove("TESSERA_SERVER"),
            "tessera whoami",
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let me = whoami(&config);
    assert_eq!(me["user"]["id"], user["id"]);
    // The saved token is a Tessera access token, not a personal access token; when it
    // is about to expire the CLI renews it with the (rotating) refresh token.
    let path = config.join("cli.json");
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let first_refresh = saved["refresh_token"].as_str().map(str::to_string);
    assert!(first_refresh.is_some(), "a refresh token is saved: {saved}");
    assert!(!saved["token"].as_str().unwrap().starts_with("tsr_pat_"));
    saved["token_expires"] = json!(0);
    std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();
    let me = whoami(&config);
    assert_eq!(me["user"]["id"], user["id"]);
    let renewed: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_ne!(
        renewed["refresh_token"].as_str().map(str::to_string),
        first_refresh,
        "the refresh token rotated"
    );

    // A command refused for want of a stronger sign-in (RFC 9470: activating a
    // role asks for MFA) makes the CLI sign in again with the device flow,
    // asking for it; approving that code from a password-only session sends the
    // user through a step-up sign-in instead of approving it.
    runtime.block_on(api(
        reqwest::Method::POST,
        "/roleManagement/directory/roleEligibilityScheduleRequests",
        json!({
            "action": "adminAssign",
            "principalId": user["id"],
            "roleDefinitionId": tessera_directory::roles::USER_ADMINISTRATOR,
            "directoryScopeId": "/",
            "justification": "step-up test",
            "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "P1D"}},
        }),
    ));
    let mut activate = Command::new(BINARY)
        .args([
            "pim",
            "activate",
            "--role",
            "User Administrator",
            "--justification",
            "step-up test",
        ])
        .env("TESSERA_CONFIG_DIR", &config)
        .env("TESSERA_STEP_UP", "1")
        .env_remove("TESSERA_TOKEN")
        .env_remove("TESSERA_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(activate.stderr.take().unwrap()).lines();
    let notice = lines.next().unwrap().unwrap();
    assert!(
        notice.contains("stronger sign-in") && notice.contains("urn:tessera:acr:mfa"),
        "{notice}"
    );
    let prompt = lines.next().unwrap().unwrap();
    assert!(prompt.contains("/device"), "{prompt}");
    let user_code = prompt.rsplit(' ').next().unwrap().trim().to_string();
    let answer = runtime.block_on(approve_with(
        &base,
        "cli.user@tessera.local",
        &password,
        &user_code,
    ));
    assert_eq!(answer.status(), 303, "a step-up, not an approval");
    assert_eq!(
        answer.headers()["location"].to_str().unwrap(),
        "/signin",
        "through a step-up sign-in"
    );
    activate.kill().unwrap();
    let _ = activate.wait();
    server.stop();
}

//! Identity Protection through the real binary: the operator's anonymizer list
//! is read from a file (a bad one stops the start, naming its line), a password
//! sign-in through the pages from a listed address is detected, and the
//! detection is listed by `tessera risk detections` and the API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use serde_json::{Value, json};
use tessera_testkit::Server;

const BINARY: &str = env!("CARGO_BIN_EXE_tessera");

#[test]
fn sign_ins_from_listed_addresses_are_detected() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let work = tempfile::tempdir().unwrap();
    let lists = work.path().join("anonymous.txt");
    // The tests connect from loopback: it stands for a Tor exit here.
    std::fs::write(&lists, "# test list\n127.0.0.1 tor exit (test)\n").unwrap();
    let bad = work.path().join("bad.txt");
    std::fs::write(&bad, "127.0.0.1\n127.0.0.300 nonsense\n").unwrap();

    // A list that cannot be read stops the start.
    let refused = Command::new(BINARY)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(work.path().join("refused"))
        .env("TESSERA_RISK_MALICIOUS_IP_LIST", &bad)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("bad.txt") && said.contains("line 2"),
        "{said}"
    );

    let lists_env = lists.to_string_lossy().to_string();
    let server = Server::start(
        BINARY,
        &work.path().join("data"),
        &[("TESSERA_RISK_ANONYMOUS_IP_LIST", &lists_env)],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let base = server.url.clone();
    let admin = server.token.clone().unwrap();
    let http = reqwest::Client::new();
    let api = |method: reqwest::Method, path: &str, body: Value| {
        let request = http
            .request(method, format!("{base}/api/v1{path}"))
            .bearer_auth(&admin)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.json::<Value>().await.unwrap()
        }
    };
    let password = runtime.block_on(async {
        // A password-only user, as the device-login test makes one.
        api(
            reqwest::Method::PATCH,
            "/policies/identitySecurityDefaultsEnforcementPolicy",
            json!({ "isEnabled": false }),
        )
        .await;
        let user = api(
            reqwest::Method::POST,
            "/users",
            json!({ "userPrincipalName": "risky@tessera.local", "displayName": "Risky" }),
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
        reset["newPassword"].as_str().unwrap().to_string()
    });
    assert!(
        server.cli(BINARY, &["risk", "detections"])["value"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing before the sign-in"
    );
    let (status, _) = runtime.block_on(common::pages::password_sign_in(
        &base,
        "risky@tessera.local",
        &password,
    ));
    assert_eq!(status, 303, "signed in (no policy acts on risk yet)");
    let listed = server.cli(
        BINARY,
        &["risk", "detections", "--user", "risky@tessera.local"],
    );
    let listed = listed["value"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["riskEventType"], "anonymizedIPAddress");
    assert_eq!(listed[0]["riskLevel"], "medium");
    assert_eq!(listed[0]["ipAddress"], "127.0.0.1");
    assert_eq!(listed[0]["additionalInfo"]["label"], "tor exit (test)");
    let refused = server.cli_fails(BINARY, &["risk", "detections", "--level", "severe"]);
    assert!(refused.contains("riskLevel"), "{refused}");
    // The user is at risk until someone ends it.
    let users = server.cli(BINARY, &["risk", "users"]);
    let users = users["value"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["userPrincipalName"], "risky@tessera.local");
    assert_eq!(users[0]["riskLevel"], "medium");
    assert_eq!(users[0]["riskState"], "atRisk");
    let shown = server.cli(BINARY, &["risk", "show", "risky@tessera.local"]);
    assert_eq!(
        shown["history"][0]["activity"]["riskEventTypes"],
        json!(["anonymizedIPAddress"])
    );
    server.cli(BINARY, &["risk", "confirm", "risky@tessera.local"]);
    let confirmed = server.cli(
        BINARY,
        &["risk", "users", "--state", "confirmedCompromised"],
    );
    assert_eq!(confirmed["value"][0]["riskLevel"], "high");
    // Bad requests are refused and change nothing.
    runtime.block_on(async {
        for body in [
            json!({ "userIds": "x" }),
            json!({ "userIds": [] }),
            json!({ "userId": [users[0]["id"]] }),
        ] {
            let response = http
                .post(format!(
                    "{base}/api/v1/identityProtection/riskyUsers/dismiss"
                ))
                .bearer_auth(&admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{body}");
        }
        let response = http
            .get(format!(
                "{base}/api/v1/identityProtection/riskyUsers?riskState=nonsense"
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    });
    server.cli(BINARY, &["risk", "dismiss", "risky@tessera.local"]);
    let shown = server.cli(BINARY, &["risk", "show", "risky@tessera.local"]);
    assert_eq!(shown["riskLevel"], "none");
    assert_eq!(shown["riskState"], "dismissed");
    assert_eq!(shown["history"].as_array().unwrap().len(), 3);
    server.stop();
}

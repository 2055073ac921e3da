//! Shared Signals through the real binary, against an independent receiver
//! written with Authlib's JOSE implementation (`e2e/ssf_receiver.py`): an
//! application an administrator allowed gets `ssf.manage` by client
//! credentials, creates a push stream and a poll stream, verifies them, and
//! hears of its users' changes (account disabled and enabled, sessions
//! revoked, password reset, address changed), each SET checked against the
//! transmitter's keys and its audience, and none of a user it does not
//! admit. The push receiver is down for a while: what happened meanwhile
//! arrives when it is back, in order, none lost. Bad requests to the stream
//! API are refused and change nothing. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Api, lines};
use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::server::free_port;
use tessera_testkit::{PostgresNode, Server, venv_bin};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera");
const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";

struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn receiver(issuer: &str, client: (&str, &str), mode: &str, out: &Path, down: &Path) -> Receiver {
    let mut command = Command::new(venv_bin("python"));
    command
        .arg(tessera_testkit::server::e2e_dir().join("ssf_receiver.py"))
        .args(["--issuer", issuer, "--client-id", client.0])
        .args(["--client-secret", client.1, "--mode", mode, "--out"])
        .arg(out)
        .arg("--down-file")
        .arg(down)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if mode == "push" {
        command.args(["--port", &free_port().to_string()]);
    }
    Receiver(command.spawn().expect("the SSF receiver"))
}

/// The events a receiver took: (event type, the user's `sub` or email).
fn events(path: &Path) -> Vec<(String, String)> {
    lines(path)
        .iter()
        .filter(|l| l.get("event").is_some())
        .map(|l| {
            let subject = &l["sub_id"];
            let who = subject["sub"]
                .as_str()
                .or(subject["email"].as_str())
                .unwrap_or_default()
                .to_string();
            let event = l["event"].as_str().unwrap();
            let short = event
                .strip_prefix(CAEP)
                .or(event.strip_prefix(RISC))
                .unwrap_or(event);
            (short.to_string(), who)
        })
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn shared_signals(postgres: bool) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let node = postgres.then(|| PostgresNode::new(&public_url));
    // The receivers listen on this machine, over http.
    let mut env = vec![("TESSERA_SIGNALS_PRIVATE_ENDPOINTS", "true")];
    if let Some(node) = &node {
        env.extend(node.env());
    }
    let server = Server::start_at(
        BINARY,
        &format!("127.0.0.1:{port}"),
        &dir.path().join("data"),
        &env,
    );
    let api = Api {
        base: server.url.clone(),
        token: server.token.clone().unwrap(),
        http: reqwest::Client::new(),
        runtime: tokio::runtime::Runtime::new().unwrap(),
    };
    let issuer = server.issuer.trim_end_matches('/').to_string();

    // The metadata is public.
    let metadata: Value = api.runtime.block_on(async {
        reqwest::get(format!("{}/.well-known/ssf-configuration", server.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(metadata["issuer"], issuer);
    assert_eq!(metadata["spec_version"], "1_0");

    // The application, which requires assignment: adele is its user, bob is not.
    let app = api.ok(
        Method::POST,
        "/applications",
        Some(json!({ "displayName": "Mail" })),
    );
    let app_id = app["appId"].as_str().unwrap().to_string();
    let sp = api.ok(
        Method::POST,
        "/servicePrincipals",
        Some(json!({ "appId": app_id, "appRoleAssignmentRequired": true })),
    );
    let secret = api.ok(
        Method::POST,
        &format!(
            "/applications/{}/passwordCredentials",
            app["id"].as_str().unwrap()
        ),
        Some(json!({})),
    )["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    let user = |name: &str| {
        api.ok(
            Method::POST,
            "/users",
            Some(
                json!({ "userPrincipalName": format!("{name}@contoso.com"), "displayName": name }),
            ),
        )["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let adele = user("adele");
    let bob = user("bob");
    api.ok(
        Method::POST,
        &format!(
            "/servicePrincipals/{}/appRoleAssignedTo",
            sp["id"].as_str().unwrap()
        ),
        Some(json!({ "principalId": adele })),
    );

    // Not yet a receiver: no token for the SSF API.
    let token = |scope: &str| -> (u16, Value) {
        api.runtime.block_on(async {
            let response = reqwest::Client::new()
                .post(format!("{}/oauth2/token", server.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("grant_type", "client_credentials")
                        .append_pair("client_id", &app_id)
                        .append_pair("client_secret", &secret)
                        .append_pair("scope", scope)
                        .finish(),
                )
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json().await.unwrap())
        })
    };
    let (status, refused) = token("ssf.manage");
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "unauthorized_client");
    let allowed = server.cli(BINARY, &["signals", "allow", &app_id]);
    assert_eq!(allowed["receivers"][0]["appId"], app_id);

    // Bad requests to the stream API change nothing.
    let (status, answer) = token("ssf.manage ssf.read");
    assert_eq!(status, 200, "{answer}");
    let access = answer["access_token"].as_str().unwrap().to_string();
    let ssf =
        |method: Method, path: &str, bearer: Option<&str>, body: Option<&str>| -> (u16, Value) {
            api.runtime.block_on(async {
                let mut request =
                    reqwest::Client::new().request(method, format!("{}{path}", server.url));
                if let Some(bearer) = bearer {
                    request = request.bearer_auth(bearer);
                }
                if let Some(body) = body {
                    request = request
                        .header("content-type", "application/json")
                        .body(body.to_string());
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let text = response.text().await.unwrap();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            })
        };
    assert_eq!(ssf(Method::GET, "/ssf/streams", None, None).0, 401);
    assert_eq!(
        ssf(
            Method::GET,
            "/ssf/streams",
            Some(&server.token.clone().unwrap()),
            None
        )
        .0,
        401
    );
    for body in [
        "not json",
        r#"{"delivery": {"method": "urn:ietf:rfc:8935"}}"#,
        r#"{"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "http://203.0.113.9/x"}}"#,
        r#"{"delivery": {"method": "urn:example:carrier-pigeon"}}"#,
        r#"{"events_requested": "all"}"#,
    ] {
        let (status, answer) = ssf(Method::POST, "/ssf/streams", Some(&access), Some(body));
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["err"].is_string(), "{answer}");
    }
    let (status, streams) = ssf(Method::GET, "/ssf/streams", Some(&access), None);
    assert_eq!((status, streams), (200, json!([])));
    let (status, _) = ssf(
        Method::GET,
        "/ssf/status?stream_id=nope",
        Some(&access),
        None,
    );
    assert_eq!(status, 404);

    // Two receivers of the same application: push and poll.
    let push_out = dir.path().join("push.jsonl");
    let poll_out = dir.path().join("poll.jsonl");
    let down = dir.path().join("down");
    let _push = receiver(&issuer, (&app_id, &secret), "push", &push_out, &down);
    let _poll = receiver(
        &issuer,
        (&app_id, &secret),
        "poll",
        &poll_out,
        &down.with_extension("never"),
    );
    for out in [&push_out, &poll_out] {
        wait_until("the verification event", || {
            lines(out).iter().any(|l| l.get("verified").is_some())
        });
    }
    let (status, streams) = ssf(Method::GET, "/ssf/streams", Some(&access), None);
    assert_eq!(status, 200);
    assert_eq!(streams.as_array().unwrap().len(), 2);

    // Adding bob as a subject does not make him the application's user.
    let stream_of = |mode: &str| {
        let (_, streams) = ssf(Method::GET, "/ssf/streams", Some(&access), None);
        streams
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["delivery"]["method"].as_str().unwrap().ends_with(mode))
            .unwrap()["stream_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for stream in [stream_of("8935"), stream_of("8936")] {
        let body = json!({ "stream_id": stream,
                           "subject": { "format": "email", "email": "bob@contoso.com" } });
        let (status, _) = ssf(
            Method::POST,
            "/ssf/subjects:add",
            Some(&access),
            Some(&body.to_string()),
        );
        assert_eq!(status, 200);
    }

    // Changes to adele (and to bob, whom the application does not admit).
    let patch = |id: &str, body: Value| api.ok(Method::PATCH, &format!("/users/{id}"), Some(body));
    patch(&adele, json!({ "accountEnabled": false }));
    patch(&bob, json!({ "accountEnabled": false }));
    api.ok(
        Method::POST,
        &format!("/users/{adele}/revokeSignInSessions"),
        None,
    );
    api.ok(
        Method::POST,
        &format!("/users/{adele}/authentication/resetPassword"),
        Some(json!({})),
    );
    let first = vec![
        ("account-disabled".to_string(), adele.clone()),
        ("session-revoked".to_string(), adele.clone()),
        ("credential-change".to_string(), adele.clone()),
    ];
    for out in [&push_out, &poll_out] {
        wait_until("the first events", || events(out).len() >= first.len());
    }

    // The push receiver is down: what happens meanwhile waits.
    std::fs::write(&down, "down").unwrap();
    patch(&adele, json!({ "accountEnabled": true }));
    patch(
        &adele,
        json!({ "userPrincipalName": "adele.vance@contoso.com" }),
    );
    api.ok(
        Method::POST,
        &format!("/users/{adele}/revokeSignInSessions"),
        None,
    );
    wait_until("the poll receiver's events", || {
        events(&poll_out).len() >= first.len() + 3
    });
    wait_until("the push stream's failure to show", || {
        let streams = api.ok(Method::GET, "/signals/streams", None);
        streams["value"].as_array().unwrap().iter().any(|s| {
            s["delivery"] == "push" && s["lastError"].is_string() && s["queued"].as_u64() >= Some(3)
        })
    });
    assert_eq!(
        events(&push_out).len(),
        first.len(),
        "nothing reached a receiver that is down"
    );
    std::fs::remove_file(&down).unwrap();
    let mut all = first.clone();
    all.extend([
        ("account-enabled".to_string(), adele.clone()),
        (
            "identifier-changed".to_string(),
            "adele@contoso.com".to_string(),
        ),
        ("session-revoked".to_string(), adele.clone()),
    ]);
    wait_until("the held events", || events(&push_out).len() >= all.len());
    std::thread::sleep(Duration::from_millis(1500));
    for out in [&push_out, &poll_out] {
        assert_eq!(events(out), all, "{}", out.display());
    }
    let lines_of = lines(&push_out);
    let disabled = lines_of.iter().find(|l| l.get("event").is_some()).unwrap();
    assert_eq!(
        disabled["sub_id"],
        json!({ "format": "iss_sub", "iss": issuer, "sub": adele })
    );
    let renamed = lines_of
        .iter()
        .find(|l| {
            l["event"]
                .as_str()
                .is_some_and(|e| e.ends_with("identifier-changed"))
        })
        .unwrap();
    assert_eq!(renamed["members"]["new-value"], "adele.vance@contoso.com");
    let revoked = lines_of
        .iter()
        .find(|l| {
            l["event"]
                .as_str()
                .is_some_and(|e| e.ends_with("session-revoked"))
        })
        .unwrap();
    assert_eq!(revoked["members"]["initiating_entity"], "admin");
    assert!(revoked["txn"].is_string());

    // The administrators' view: both streams delivered everything.
    let streams = api.ok(Method::GET, "/signals/streams", None);
    for stream in streams["value"].as_array().unwrap() {
        assert_eq!(stream["queued"], 0, "{stream}");
        assert!(
            stream["delivered"].as_u64().unwrap() >= all.len() as u64,
            "{stream}"
        );
        assert_eq!(stream["lag"], 0, "{stream}");
    }
    // An administrator's verification, from the command line.
    let listed = server.cli(BINARY, &["signals", "streams"]);
    let push_stream = listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["delivery"] == "push")
        .unwrap()["streamId"]
        .as_str()
        .unwrap()
        .to_string();
    server.cli(BINARY, &["signals", "verify", &push_stream]);
    wait_until("the administrator's verification", || {
        lines(&push_out)
            .iter()
            .any(|l| l.get("verification").is_some())
    });
    // A bad status is refused.
    let stream_id = streams["value"][0]["streamId"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = ssf(
        Method::POST,
        "/ssf/status",
        Some(&access),
        Some(&json!({ "stream_id": stream_id, "status": "sleeping" }).to_string()),
    );
    assert_eq!(status, 400);
    server.stop();
}

#[test]
fn shared_signals_on_sqlite() {
    shared_signals(false);
}

#[test]
fn shared_signals_on_postgres() {
    shared_signals(true);
}

/// The independent transmitter of `e2e/ssf_transmitter.py`, serving its
/// metadata and keys on `port`; its private key is kept in `key`.
fn transmitter(port: u16, key: &Path) -> Receiver {
    let mut child = Command::new(venv_bin("python"))
        .arg(tessera_testkit::server::e2e_dir().join("ssf_transmitter.py"))
        .args(["serve", "--port", &port.to_string(), "--key"])
        .arg(key)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the SSF transmitter");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "listening");
    Receiver(child)
}

/// One SET pushed by the independent transmitter: the status and the answer.
#[allow(clippy::too_many_arguments)]
fn push_set(
    key: &Path,
    (issuer, audience, url, secret): (&str, &str, &str, &str),
    event: &str,
    subject: &Value,
    members: &Value,
    jti: &str,
    tamper: Option<&str>,
) -> (u16, Value) {
    let mut command = Command::new(venv_bin("python"));
    command
        .arg(tessera_testkit::server::e2e_dir().join("ssf_transmitter.py"))
        .arg("push")
        .arg("--key")
        .arg(key)
        .args(["--issuer", issuer, "--audience", audience, "--url", url])
        .args(["--secret", secret, "--event", event])
        .args([
            "--subject",
            &subject.to_string(),
            "--members",
            &members.to_string(),
        ])
        .args(["--jti", jti]);
    if let Some(tamper) = tamper {
        command.args(["--tamper", tamper]);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        answer["status"].as_u64().unwrap() as u16,
        answer["body"].clone(),
    )
}

fn received_signals(postgres: bool) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let node = postgres.then(|| PostgresNode::new(&public_url));
    let mut env = vec![("TESSERA_SIGNALS_PRIVATE_ENDPOINTS", "true")];
    if let Some(node) = &node {
        env.extend(node.env());
    }
    let server = Server::start_at(
        BINARY,
        &format!("127.0.0.1:{port}"),
        &dir.path().join("data"),
        &env,
    );
    // A second node on the same database (PostgreSQL).
    let second = node
        .as_ref()
        .map(|_| Server::start_at(BINARY, "127.0.0.1:0", &dir.path().join("data-b"), &env));
    let api = Api {
        base: server.url.clone(),
        token: server.token.clone().unwrap(),
        http: reqwest::Client::new(),
        runtime: tokio::runtime::Runtime::new().unwrap(),
    };
    let apis: Vec<Api> = std::iter::once(server.url.clone())
        .chain(second.iter().map(|s| s.url.clone()))
        .map(|base| Api {
            base,
            token: server.token.clone().unwrap(),
            http: reqwest::Client::new(),
            runtime: tokio::runtime::Runtime::new().unwrap(),
        })
        .collect();

    // A device, a user and a policy that asks for a compliant device.
    let device = api.ok(
        Method::POST,
        "/devices",
        Some(json!({ "displayName": "LAPTOP-7", "isCompliant": true, "isManaged": true })),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = api.ok(
        Method::POST,
        "/users",
        Some(json!({ "userPrincipalName": "carol@contoso.com", "displayName": "Carol" })),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.ok(
        Method::POST,
        "/identity/conditionalAccess/policies",
        Some(json!({
            "displayName": "Compliant devices only",
            "state": "enabled",
            "conditions": {
                "users": { "includeUsers": [user] },
                "applications": { "includeApplications": ["All"] },
                "clientAppTypes": ["all"],
            },
            "grantControls": { "operator": "OR", "builtInControls": ["compliantDevice"] },
        })),
    );
    let decide = |api: &Api| {
        let answer = api.ok(
            Method::POST,
            "/identity/conditionalAccess/evaluate",
            Some(json!({ "userId": user, "appId": "MicrosoftAdminPortals", "deviceId": device })),
        );
        // The policy's own result (security defaults ask management for MFA
        // besides).
        answer["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["displayName"] == "Compliant devices only")
            .unwrap()["result"]
            .clone()
    };
    let before: Vec<Value> = apis.iter().map(decide).collect();
    assert!(before.iter().all(|b| b == "success"), "{before:?}");

    // The transmitter, and Tessera receiving from it by push (the CLI).
    let tx_port = free_port();
    let key = dir.path().join("transmitter.jwk");
    let _transmitter = transmitter(tx_port, &key);
    let tx_issuer = format!("http://127.0.0.1:{tx_port}");
    let added = server.cli(
        BINARY,
        &[
            "signals",
            "transmitters",
            "add",
            "--name",
            "MDM",
            "--issuer",
            &tx_issuer,
            "--delivery",
            "push",
        ],
    );
    let secret = added["pushSecret"].as_str().unwrap().to_string();
    let endpoint = added["pushEndpoint"].as_str().unwrap().to_string();
    let audience = server.issuer.trim_end_matches('/').to_string();
    let listed = server.cli(BINARY, &["signals", "transmitters", "list"]);
    assert!(
        !listed.to_string().contains(&secret),
        "the push secret is shown once"
    );
    let to = (
        tx_issuer.as_str(),
        audience.as_str(),
        endpoint.as_str(),
        secret.as_str(),
    );
    let device_subject =
        json!({ "format": "complex", "device": { "format": "opaque", "id": device } });
    let not_compliant =
        json!({ "previous_status": "compliant", "current_status": "not-compliant" });

    // Refused: a bad signature, a key not published, another audience, a
    // wrong secret. None changes the device.
    let refused = [
        (to, Some("signature"), 400, "invalid_key"),
        (to, Some("key"), 400, "invalid_key"),
        (
            (to.0, "https://someone-else.example", to.2, to.3),
            None,
            400,
            "invalid_audience",
        ),
        (
            (to.0, to.1, to.2, "wrong-secret"),
            None,
            401,
            "authentication_failed",
        ),
        (
            ("https://impostor.example", to.1, to.2, to.3),
            None,
            400,
            "invalid_issuer",
        ),
    ];
    for (index, (target, tamper, status, err)) in refused.into_iter().enumerate() {
        let (got, body) = push_set(
            &key,
            target,
            "device-compliance-change",
            &device_subject,
            &not_compliant,
            &format!("bad-{index}"),
            tamper,
        );
        assert_eq!((got, body["err"].as_str()), (status, Some(err)), "{body}");
    }
    assert_eq!(
        api.ok(Method::GET, &format!("/devices/{device}"), None)["isCompliant"],
        true
    );

    // Taken: the device is no longer compliant, and the next decision on
    // every node says so.
    let (status, body) = push_set(
        &key,
        to,
        "device-compliance-change",
        &device_subject,
        &not_compliant,
        "mdm-1",
        None,
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        api.ok(Method::GET, &format!("/devices/{device}"), None)["isCompliant"],
        false
    );
    for (api, before) in apis.iter().zip(&before) {
        let after = decide(api);
        assert_ne!(&after, before, "the decision follows the device");
    }
    // A replay is refused and changes nothing more.
    let (status, body) = push_set(
        &key,
        to,
        "device-compliance-change",
        &device_subject,
        &not_compliant,
        "mdm-1",
        None,
    );
    assert_eq!(
        (status, body["err"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );

    // Compliant again: the decision comes back on every node.
    let compliant = json!({ "previous_status": "not-compliant", "current_status": "compliant" });
    let (status, _) = push_set(
        &key,
        to,
        "device-compliance-change",
        &device_subject,
        &compliant,
        "mdm-2",
        None,
    );
    assert_eq!(status, 202);
    for (api, before) in apis.iter().zip(&before) {
        assert_eq!(&decide(api), before);
    }

    // A credential compromised, named by email: a high-risk detection.
    let (status, body) = push_set(
        &key,
        to,
        "credential-compromise",
        &json!({ "format": "email", "email": "carol@contoso.com" }),
        &json!({ "credential_type": "password" }),
        "edr-1",
        None,
    );
    assert_eq!(status, 202, "{body}");
    let risky = api.ok(
        Method::GET,
        &format!("/identityProtection/riskyUsers/{user}"),
        None,
    );
    assert_eq!(risky["riskLevel"], "high", "{risky}");

    // What came, and what was refused, is in the audit trail and the list.
    let listed = server.cli(BINARY, &["signals", "transmitters", "list"]);
    let mdm = &listed["value"][0];
    assert_eq!(mdm["received"], 3, "{mdm}");
    assert!(mdm["refused"].as_u64().unwrap() >= 4, "{mdm}");
    let audit = api.ok(
        Method::GET,
        "/auditLogs/directoryAudits?action=signal.receive",
        None,
    );
    assert!(audit.to_string().contains("edr-1"), "{audit}");
    if let Some(second) = second {
        second.stop();
    }
    server.stop();
}

#[test]
fn received_signals_on_sqlite() {
    received_signals(false);
}

#[test]
fn received_signals_on_two_postgres_nodes() {
    received_signals(true);
}

/// Tessera transmits to a second Tessera acting as receiver: B creates its
/// stream at A with A's client credentials (poll), and hears of A's changes to
/// a user both know by name: sessions revoked at A end the user's sessions at
/// B's end too, an account disabled at A makes the user medium risk at B.
#[test]
fn tessera_to_tessera() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let env = [("TESSERA_SIGNALS_PRIVATE_ENDPOINTS", "true")];
    let a = Server::start(BINARY, &dir.path().join("a"), &env);
    let b = Server::start(BINARY, &dir.path().join("b"), &env);
    let api = |server: &Server| Api {
        base: server.url.clone(),
        token: server.token.clone().unwrap(),
        http: reqwest::Client::new(),
        runtime: tokio::runtime::Runtime::new().unwrap(),
    };
    let (api_a, api_b) = (api(&a), api(&b));
    let user = |api: &Api| {
        api.ok(
            Method::POST,
            "/users",
            Some(json!({ "userPrincipalName": "dana@contoso.com", "displayName": "Dana" })),
        )["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let dana_a = user(&api_a);
    let dana_b = user(&api_b);
    // B is an application of A's, allowed to receive, and Dana uses it.
    let app = api_a.ok(
        Method::POST,
        "/applications",
        Some(json!({ "displayName": "Tessera B" })),
    );
    let app_id = app["appId"].as_str().unwrap().to_string();
    api_a.ok(
        Method::POST,
        "/servicePrincipals",
        Some(json!({ "appId": app_id })),
    );
    api_a.ok(
        Method::POST,
        "/oauth2PermissionGrants",
        Some(json!({ "clientId": app_id, "consentType": "AllPrincipals", "scope": "openid" })),
    );
    let secret = api_a.ok(
        Method::POST,
        &format!(
            "/applications/{}/passwordCredentials",
            app["id"].as_str().unwrap()
        ),
        Some(json!({})),
    )["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    a.cli(BINARY, &["signals", "allow", &app_id]);
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, &secret).unwrap();
    let issuer_a = a.issuer.trim_end_matches('/').to_string();
    let added = b.cli(
        BINARY,
        &[
            "signals",
            "transmitters",
            "add",
            "--name",
            "Tessera A",
            "--issuer",
            &issuer_a,
            "--delivery",
            "poll",
            "--token-endpoint",
            &format!("{issuer_a}/oauth2/token"),
            "--client-id",
            &app_id,
            "--client-secret-file",
            secret_file.to_str().unwrap(),
            "--scope",
            "ssf.manage ssf.read",
        ],
    );
    assert!(added["streamId"].is_string(), "{added}");
    assert!(added.get("pushSecret").is_none());
    // The stream at A is B's.
    let streams = a.cli(BINARY, &["signals", "streams"]);
    assert_eq!(streams["value"][0]["clientId"], app_id);

    // Sessions revoked at A: B hears it and ends Dana's sessions there.
    api_a.ok(
        Method::POST,
        &format!("/users/{dana_a}/revokeSignInSessions"),
        None,
    );
    // An account disabled at A: Dana is at medium risk at B.
    api_a.ok(
        Method::PATCH,
        &format!("/users/{dana_a}"),
        Some(json!({ "accountEnabled": false })),
    );
    wait_until("B to take A's signals", || {
        let listed = b.cli(BINARY, &["signals", "transmitters", "list"]);
        listed["value"][0]["received"].as_u64() >= Some(2)
    });
    // The user's risk follows the detection (on its own time).
    wait_until("Dana's risk at B", || {
        let (status, risky) = api_b.call(
            Method::GET,
            &format!("/identityProtection/riskyUsers/{dana_b}"),
            None,
        );
        status == 200 && risky["riskLevel"] == "medium"
    });
    let audit = api_b.ok(
        Method::GET,
        "/auditLogs/directoryAudits?action=signal.receive",
        None,
    );
    let text = audit.to_string();
    assert!(
        text.contains("session-revoked") && text.contains("account-disabled"),
        "{text}"
    );
    assert_eq!(
        b.cli(BINARY, &["signals", "transmitters", "list"])["value"][0]["refused"],
        0
    );
    b.stop();
    a.stop();
}

/// The device compliance API, for a device manager that does not speak SSF:
/// a device manager the signals settings name reports devices in bulk (all or
/// nothing) with its client-credentials token; a grace period keeps a device
/// compliant for Conditional Access until it ends; a receiver's token, or an
/// application not named, is refused.
#[test]
fn device_compliance_api() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, &dir.path().join("data"), &[]);
    let api = Api {
        base: server.url.clone(),
        token: server.token.clone().unwrap(),
        http: reqwest::Client::new(),
        runtime: tokio::runtime::Runtime::new().unwrap(),
    };
    let device = |name: &str| {
        api.ok(
            Method::POST,
            "/devices",
            Some(json!({ "displayName": name })),
        )["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (d1, d2) = (device("LAPTOP-1"), device("LAPTOP-2"));
    // The device manager, named in the signals settings, and a receiver that
    // is not one.
    let workload = |name: &str| {
        let app = api.ok(
            Method::POST,
            "/applications",
            Some(json!({ "displayName": name })),
        );
        let app_id = app["appId"].as_str().unwrap().to_string();
        api.ok(
            Method::POST,
            "/servicePrincipals",
            Some(json!({ "appId": app_id })),
        );
        let secret = api.ok(
            Method::POST,
            &format!(
                "/applications/{}/passwordCredentials",
                app["id"].as_str().unwrap()
            ),
            Some(json!({})),
        )["secretText"]
            .as_str()
            .unwrap()
            .to_string();
        (app_id, secret)
    };
    let token = |(app_id, secret): &(String, String), scope: &str| -> Value {
        api.runtime.block_on(async {
            reqwest::Client::new()
                .post(format!("{}/oauth2/token", server.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("grant_type", "client_credentials")
                        .append_pair("client_id", app_id)
                        .append_pair("client_secret", secret)
                        .append_pair("scope", scope)
                        .finish(),
                )
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    };
    let as_workload = |answer: Value| Api {
        base: server.url.clone(),
        token: answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"))
            .to_string(),
        http: reqwest::Client::new(),
        runtime: tokio::runtime::Runtime::new().unwrap(),
    };
    let (manager, receiver) = (workload("MDM"), workload("Mail"));
    assert_eq!(
        token(&manager, "DeviceCompliance.ReadWrite.All")["error"],
        "unauthorized_client"
    );
    server.cli(BINARY, &["signals", "allow", &receiver.0]);
    let settings = server.cli(BINARY, &["signals", "device-manager", &manager.0]);
    assert_eq!(settings["deviceManagers"], json!([manager.0]));
    let mdm = as_workload(token(&manager, "DeviceCompliance.ReadWrite.All"));
    let stranger = as_workload(token(&receiver, "ssf.manage"));
    assert_eq!(
        token(&receiver, "DeviceCompliance.ReadWrite.All")["error"],
        "unauthorized_client"
    );
    let report = |api: &Api, value: Value| {
        api.call(
            Method::POST,
            "/devices/compliance",
            Some(json!({ "value": value })),
        )
    };
    let (status, _) = report(&stranger, json!([{ "deviceId": d1, "isCompliant": true }]));
    assert_eq!(status, 401);
    // One unknown device: nothing changes.
    let (status, problem) = report(
        &mdm,
        json!([{ "deviceId": d1, "isCompliant": true }, { "deviceId": uuid::Uuid::new_v4(), "isCompliant": true }]),
    );
    assert_eq!(status, 400, "{problem}");
    assert_eq!(
        api.ok(Method::GET, &format!("/devices/{d1}"), None)["isCompliant"],
        false
    );
    // Both in one report; the second in a grace period.
    let now = tessera_core::Timestamp::from_unix_micros(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64,
    );
    let until = now.plus_seconds(30 * 86_400).to_rfc3339();
    // A grace period for a compliant device, or a year ahead, is refused.
    for (compliant, ahead) in [(true, 86_400), (false, 365 * 86_400)] {
        let (status, problem) = report(
            &mdm,
            json!([{ "deviceId": d1, "isCompliant": compliant,
                     "complianceGracePeriodExpirationDateTime": now.plus_seconds(ahead).to_rfc3339() }]),
        );
        assert_eq!(status, 400, "{problem}");
    }
    let (status, answer) = report(
        &mdm,
        json!([
            { "deviceId": d1, "isCompliant": true, "isManaged": true },
            { "deviceId": d2, "isCompliant": false, "complianceGracePeriodExpirationDateTime": until,
              "complianceReason": "disk encryption pending" },
        ]),
    );
    assert_eq!(
        (status, answer["changed"].clone()),
        (200, json!(2)),
        "{answer}"
    );
    let second = api.ok(Method::GET, &format!("/devices/{d2}"), None);
    assert_eq!(second["complianceReason"], "disk encryption pending");
    // Conditional Access counts the device in its grace period as compliant.
    let user = api.ok(
        Method::POST,
        "/users",
        Some(json!({ "userPrincipalName": "erin@contoso.com", "displayName": "Erin" })),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.ok(
        Method::POST,
        "/identity/conditionalAccess/policies",
        Some(json!({
            "displayName": "Compliant devices only", "state": "enabled",
            "conditions": { "users": { "includeUsers": [user] },
                            "applications": { "includeApplications": ["All"] }, "clientAppTypes": ["all"] },
            "grantControls": { "operator": "OR", "builtInControls": ["compliantDevice"] },
        })),
    );
    let decide = |device: &str| {
        let answer = api.ok(
            Method::POST,
            "/identity/conditionalAccess/evaluate",
            Some(json!({ "userId": user, "appId": "MicrosoftAdminPortals", "deviceId": device })),
        );
        answer["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["displayName"] == "Compliant devices only")
            .unwrap()["result"]
            .clone()
    };
    assert_eq!(decide(&d2), "success");
    // The grace period ends: the device is not compliant any more.
    let (status, _) = report(&mdm, json!([{ "deviceId": d2, "isCompliant": false }]));
    assert_eq!(status, 200);
    assert_eq!(decide(&d2), "failure");
    server.stop();
}

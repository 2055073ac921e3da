//! Black-box tests: the real `tessera` binary, started as a server and driven with
//! its own CLI, as a new user would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use tessera_testkit::server::self_signed_localhost;
use tessera_testkit::{PostgresNode, Server, run_ok};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera");

/// Runs the CLI with a private settings directory.
struct Cli {
    config_dir: PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BINARY)
            .args(args)
            .env("TESSERA_CONFIG_DIR", &self.config_dir)
            .env_remove("TESSERA_TOKEN")
            .env_remove("TESSERA_SERVER")
            .output()
            .expect("run tessera")
    }

    /// Runs a command that must succeed and returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "tessera {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Runs a command that must fail and returns its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            !output.status.success(),
            "tessera {args:?} should have failed"
        );
        String::from_utf8(output.stderr).unwrap()
    }
}

fn ids(page: &Value) -> Vec<String> {
    let mut ids: Vec<String> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

#[test]
fn a_new_user_bootstraps_and_administers_with_the_cli_alone() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = Server::start(BINARY, &data, &[]);
    let token = server
        .token
        .clone()
        .expect("first start prints a bootstrap token");
    let admin = Cli {
        config_dir: work.path().join("admin"),
    };
    admin.ok(&["login", "--server", &server.url, "--token", &token]);
    assert!(admin.ok(&["whoami"]).contains("Global Administrator"));

    // Users, nested groups and a dynamic group.
    let adele = admin.json(&[
        "users",
        "create",
        "--upn",
        "adele@contoso.com",
        "--display-name",
        "Adele Vance",
        "--department",
        "Finance",
    ]);
    let megan = admin.json(&[
        "users",
        "create",
        "--upn",
        "megan@contoso.com",
        "--display-name",
        "Megan Bowen",
        "--department",
        "Sales",
    ]);
    let paris = admin.json(&[
        "users",
        "create",
        "--upn",
        "paris.admin@contoso.com",
        "--display-name",
        "Paris Admin",
        "--manager",
        "adele@contoso.com",
    ]);
    assert_eq!(paris["managerId"], adele["id"]);
    admin.ok(&["groups", "create", "--display-name", "All Staff"]);
    admin.ok(&["groups", "create", "--display-name", "Sales Team"]);
    admin.ok(&["groups", "add-member", "All Staff", "Sales Team"]);
    admin.ok(&["groups", "add-member", "Sales Team", "megan@contoso.com"]);
    let nested = admin.json(&["groups", "members", "All Staff", "--transitive"]);
    assert_eq!(nested["value"].as_array().unwrap().len(), 2, "{nested}");
    assert!(
        admin
            .fails(&["groups", "add-member", "Sales Team", "All Staff"])
            .contains("cycle")
    );
    admin.ok(&[
        "groups",
        "create",
        "--display-name",
        "Finance",
        "--rule",
        "user.department -eq \"Finance\" -and user.accountEnabled -eq true",
    ]);
    assert_eq!(
        ids(&admin.json(&["groups", "members", "Finance"])),
        vec![adele["id"].as_str().unwrap().to_string()]
    );
    admin.ok(&[
        "users",
        "update",
        "megan@contoso.com",
        "--department",
        "Finance",
    ]);
    assert_eq!(
        ids(&admin.json(&["groups", "members", "Finance"])),
        sorted(vec![
            adele["id"].as_str().unwrap().to_string(),
            megan["id"].as_str().unwrap().to_string()
        ])
    );
    let bad_rule = admin.fails(&[
        "groups",
        "create",
        "--display-name",
        "Broken",
        "--rule",
        "user.departmnt -eq \"x\"",
    ]);
    assert!(bad_rule.contains("membershipRule"), "{bad_rule}");

    // An administrative unit with a scoped User Administrator.
    admin.ok(&["units", "create", "--display-name", "Paris"]);
    admin.ok(&["units", "add-member", "Paris", "adele@contoso.com"]);
    admin.ok(&[
        "roles",
        "assign",
        "--role",
        "User Administrator",
        "--principal",
        "paris.admin@contoso.com",
        "--unit",
        "Paris",
    ]);
    let issued = admin.json(&[
        "users",
        "issue-token",
        "paris.admin@contoso.com",
        "--name",
        "first sign-in",
    ]);
    let scoped = Cli {
        config_dir: work.path().join("scoped"),
    };
    scoped.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        issued["secret"].as_str().unwrap(),
    ]);
    scoped.ok(&[
        "users",
        "update",
        "adele@contoso.com",
        "--job-title",
        "Controller",
    ]);
    let refused = scoped.fails(&[
        "users",
        "update",
        megan["id"].as_str().unwrap(),
        "--job-title",
        "Controller",
    ]);
    assert!(
        refused.contains("403") && refused.contains("forbidden"),
        "{refused}"
    );
    assert!(scoped.fails(&["users", "list"]).contains("403"));

    // The audit trail shows it all, including who did what.
    let trail = admin.json(&["audit", "list", "--actor", "paris.admin@contoso.com"]);
    let actions: Vec<&str> = trail["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["user.update"], "refused calls leave no event");
    let table = admin.ok(&["audit", "list", "--all"]);
    assert!(
        table.contains("roleAssignment.create") && table.contains("group.member.add"),
        "{table}"
    );

    server.stop();
    let verify = admin.ok(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    assert!(verify.contains("intact"), "{verify}");

    // A backup taken now restores into a working data directory.
    let backup = work.path().join("backup.db");
    admin.ok(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        backup.to_str().unwrap(),
    ]);
    let restored = work.path().join("restored");
    admin.ok(&[
        "restore",
        backup.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(
        admin
            .ok(&["audit", "verify", "--data-dir", restored.to_str().unwrap()])
            .contains("intact")
    );

    // One audit row edited by hand: verify finds it and fails.
    let tampered = tamper(&data.join("tessera.db"));
    let output = admin.run(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "verify must fail on a tampered database: {report}"
    );
    assert!(
        report.contains(&format!("BROKEN at event {tampered}")) && report.contains("Altered"),
        "{report}"
    );
    // A restart of the server over the same data keeps working (no second bootstrap).
    let again = Server::start(BINARY, &data, &[]);
    assert!(again.token.is_none(), "bootstrap happens once");
    again.stop();
}

/// Edits the body of Megan's creation event the way an intruder with file access
/// would: dropping the append-only trigger first. Returns that event's sequence number
/// (background work such as signing key creation also writes events, so it varies).
fn tamper(database: &Path) -> i64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}", database.display());
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER audit_events_no_update").execute(&mut conn).await.unwrap();
        use sqlx::Row;
        let seq: i64 = sqlx::query("SELECT seq FROM audit_events WHERE action = 'user.create' AND body LIKE '%Megan Bowen%'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .try_get("seq")
            .unwrap();
        let changed = sqlx::query("UPDATE audit_events SET body = replace(body, 'Megan Bowen', 'Mallory Bowen') WHERE seq = $1")
            .bind(seq)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 1);
        conn.close().await.unwrap();
        seq
    })
}

#[test]
fn the_audit_trail_cannot_be_edited_through_sql_while_the_trigger_stands() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let server = Server::start(BINARY, &data, &[]);
    server.stop();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}", data.join("tessera.db").display());
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        let error = sqlx::raw_sql("DELETE FROM audit_events WHERE seq = 1")
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("append-only"), "{error}");
    });
}

/// The server exports signed checkpoints of the chain head at start (to a file and to a
/// syslog receiver over UDP); `audit checkpoint` adds one offline; `audit verify
/// --checkpoint` holds them against the database with the pinned public key, and
/// finds a tail cut off by someone who dropped the triggers, which `verify` alone
/// reports as intact.
#[test]
fn audit_checkpoints_are_exported_and_catch_a_cut_off_tail() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let exported = work.path().join("checkpoints.jsonl");
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let syslog_target = format!("udp://{}", syslog.local_addr().unwrap());
    let server = Server::start(
        BINARY,
        &data,
        &[
            ("TESSERA_AUDIT_CHECKPOINT__FILE", exported.to_str().unwrap()),
            ("TESSERA_AUDIT_CHECKPOINT__SYSLOG", syslog_target.as_str()),
        ],
    );
    let mut datagram = vec![0u8; 8192];
    let (length, _) = syslog
        .recv_from(&mut datagram)
        .expect("a syslog checkpoint");
    let message = String::from_utf8(datagram[..length].to_vec()).unwrap();
    assert!(
        message.starts_with("<109>1 ") && message.contains("tessera.audit.checkpoint"),
        "{message}"
    );
    let admin = Cli {
        config_dir: work.path().join("admin"),
    };
    admin.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        server.token.as_ref().unwrap(),
    ]);
    admin.ok(&[
        "users",
        "create",
        "--upn",
        "adele@contoso.com",
        "--display-name",
        "Adele Vance",
    ]);
    server.stop();
    // The file gets its line with the syslog message (the same export).
    assert_eq!(
        std::fs::read_to_string(&exported).unwrap().lines().count(),
        1
    );
    let data_dir = data.to_str().unwrap();
    // One more, offline, after Adele's creation.
    let offline = admin.ok(&[
        "audit",
        "checkpoint",
        "--data-dir",
        data_dir,
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(offline.contains("signed by key"), "{offline}");
    let public_key = admin.ok(&["audit", "checkpoint-key", "--data-dir", data_dir]);
    let key_file = work.path().join("checkpoint.pub");
    std::fs::write(&key_file, &public_key).unwrap();
    let verify = |checkpoints: &Path, key: &str| {
        admin.run(&[
            "audit",
            "verify",
            "--data-dir",
            data_dir,
            "--checkpoint",
            checkpoints.to_str().unwrap(),
            "--public-key",
            key,
        ])
    };
    let output = verify(&exported, key_file.to_str().unwrap());
    let report = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{report}");
    assert!(report.contains("checkpoints: 2 of 2 hold"), "{report}");
    // A syslog file: the checkpoint among other messages.
    let syslog_file = work.path().join("syslog");
    std::fs::write(
        &syslog_file,
        format!("<30>1 - host sshd 1 - - accepted\n{message}\n"),
    )
    .unwrap();
    let output = verify(&syslog_file, public_key.trim());
    let report = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success() && report.contains("checkpoints: 1 of 1 hold (key "),
        "{report}"
    );
    assert!(report.contains("1 other lines skipped"), "{report}");
    // Checkpoints verify only with the pinned key.
    let output = verify(&exported, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let report = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        !output.status.success() && report.contains("UnknownKey"),
        "{report}"
    );
    assert!(
        admin
            .fails(&[
                "audit",
                "verify",
                "--data-dir",
                data_dir,
                "--checkpoint",
                exported.to_str().unwrap()
            ])
            .contains("--public-key")
    );

    // Adele's creation is cut off the end, the head moved back to the event before.
    let cut = truncate_tail(&data.join("tessera.db"));
    let plain = admin.ok(&["audit", "verify", "--data-dir", data_dir]);
    assert!(
        plain.contains("intact"),
        "verify alone sees nothing: {plain}"
    );
    let output = verify(&exported, key_file.to_str().unwrap());
    let report = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(!output.status.success(), "{report}");
    assert!(
        report.contains("checkpoint line 2 (tenant ")
            && report.contains(&format!("event {}", cut + 1))
            && report.contains("FAILED: Truncated"),
        "{report}"
    );
    assert!(report.contains("checkpoints: 1 of 2 hold"), "{report}");
}

/// Deletes the last audit event and points the head at the one before, dropping the
/// triggers first as an intruder with file access would. Returns the new head.
fn truncate_tail(database: &Path) -> i64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::{Connection, Row};
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}", database.display());
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "DROP TRIGGER audit_events_no_delete; DROP TRIGGER audit_heads_forward_only;",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let last: i64 = sqlx::query("SELECT seq FROM audit_heads")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .try_get("seq")
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DELETE FROM audit_events WHERE seq = {last}; \
             UPDATE audit_heads SET seq = {keep}, hash = (SELECT hash FROM audit_events WHERE seq = {keep});",
            keep = last - 1
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        last - 1
    })
}

#[test]
fn several_servers_share_one_postgresql_database() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Every node seals and opens TOTP seeds with the same key, and names the same
    // issuer (PostgreSQL requires it to be set).
    let node = PostgresNode::new("https://id.contoso.com/");
    let env = node.env();
    let work = tempfile::tempdir().unwrap();
    let first = Server::start(BINARY, &work.path().join("one"), &env);
    let second = Server::start(BINARY, &work.path().join("two"), &env);
    assert_eq!(first.issuer, "https://id.contoso.com");
    assert_eq!(second.issuer, first.issuer);
    let token = first
        .token
        .clone()
        .or(second.token.clone())
        .expect("one of them bootstraps");
    assert!(
        first.token.is_none() || second.token.is_none(),
        "bootstrap happens once"
    );
    let cli = Cli {
        config_dir: work.path().join("cli"),
    };
    let created = {
        cli.ok(&["login", "--server", &first.url, "--token", &token]);
        cli.json(&[
            "users",
            "create",
            "--upn",
            "shared@contoso.com",
            "--display-name",
            "Shared",
        ])
    };
    cli.ok(&["login", "--server", &second.url, "--token", &token]);
    let seen = cli.json(&["users", "get", "shared@contoso.com"]);
    assert_eq!(
        seen["id"], created["id"],
        "a write on one node is read on the other"
    );
    // Concurrent writers on both nodes keep one consistent audit chain.
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let server = if i % 2 == 0 {
                first.url.clone()
            } else {
                second.url.clone()
            };
            let token = token.clone();
            std::thread::spawn(move || {
                let upn = format!("n{i}@contoso.com");
                let args = ["--server", &server, "--token", &token];
                run_ok(
                    Command::new(BINARY)
                        .args(args)
                        .args(["users", "create", "--upn", &upn]),
                    "tessera users create",
                );
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let metrics = runtime.block_on(async {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        reqwest::get(format!("{}/metrics", second.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        database_size(&metrics) > 1_000_000.0,
        "pg_database_size: an empty PostgreSQL database alone is several MB"
    );
    first.stop();
    second.stop();
    let verify = cli.ok(&["audit", "verify", "--database-url", node.database_url()]);
    assert!(verify.contains("intact"), "{verify}");
    drop(node);
}

#[test]
fn https_with_a_configured_certificate_and_prometheus_metrics() {
    let work = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_localhost(work.path());
    let server = Server::start_tls(BINARY, &work.path().join("data"), (&cert, &key), &[]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let token = server.token.clone().unwrap();
    let cli = Cli {
        config_dir: work.path().join("cli"),
    };
    let untrusted = cli.fails(&["--server", &server.url, "--token", &token, "whoami"]);
    assert!(
        untrusted.contains("cannot reach"),
        "an unknown certificate is refused: {untrusted}"
    );
    let whoami = cli.ok(&[
        "--server",
        &server.url,
        "--token",
        &token,
        "--ca-cert",
        cert.to_str().unwrap(),
        "whoami",
    ]);
    assert!(whoami.contains("breakglass"), "{whoami}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let metrics = runtime.block_on(async {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let pem = std::fs::read(&cert).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        let ready = client
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        let response = client
            .get(format!("{}/metrics", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    });
    assert!(metrics.contains("tessera_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/api/v1/me\""), "{metrics}");
    let database = work.path().join("data").join("tessera.db");
    let on_disk = std::fs::metadata(&database).unwrap().len() as f64;
    let reported = database_size(&metrics);
    assert!(
        reported > 0.0 && reported >= on_disk,
        "the SQLite database's pages ({reported} bytes; {on_disk} checkpointed)"
    );
    server.stop();
}

/// The database size gauge in a `/metrics` text.
fn database_size(metrics: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("tessera_database_size_bytes "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no database size in {metrics}"))
}

#[test]
fn authentication_is_administered_from_the_cli() {
    use tessera_authn::x509::test_pki::{crl_pem, root};
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, &work.path().join("data"), &[]);
    let admin = Cli {
        config_dir: work.path().join("admin"),
    };
    admin.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        server.token.as_deref().unwrap(),
    ]);
    admin.ok(&[
        "users",
        "create",
        "--upn",
        "newhire@contoso.com",
        "--display-name",
        "New Hire",
    ]);

    let pass = admin.json(&[
        "auth",
        "tap",
        "newhire@contoso.com",
        "--once",
        "--minutes",
        "30",
    ]);
    let secret = pass["temporaryAccessPass"].as_str().unwrap();
    assert_eq!(secret.len(), 12);
    assert_eq!(pass["isUsableOnce"], true);
    let methods = admin.json(&["auth", "methods", "newhire@contoso.com"]);
    assert_eq!(methods["value"][0]["type"], "temporaryAccessPass");
    assert!(
        !methods.to_string().contains(secret),
        "the pass is shown once only"
    );
    admin.fails(&["auth", "tap", "newhire@contoso.com", "--minutes", "5"]);

    let reset = admin.json(&["auth", "reset-password", "newhire@contoso.com"]);
    assert_eq!(reset["newPassword"].as_str().unwrap().len(), 20);
    let weak = Command::new(BINARY)
        .args([
            "auth",
            "reset-password",
            "newhire@contoso.com",
            "--password-stdin",
        ])
        .env("TESSERA_CONFIG_DIR", work.path().join("admin"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut weak = weak;
    use std::io::Write;
    weak.stdin
        .take()
        .unwrap()
        .write_all(b"Password1!\n")
        .unwrap();
    let weak = weak.wait_with_output().unwrap();
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("too easy to guess"));

    assert!(
        admin
            .ok(&["auth", "revoke-sessions", "newhire@contoso.com"])
            .contains("revoked 0")
    );
    let policy = admin.ok(&["auth", "policy", "get"]);
    let mut policy: Value = serde_json::from_str(&policy).unwrap();
    policy["lockout"]["threshold"] = serde_json::json!(5);
    let file = work.path().join("policy.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    admin.ok(&["auth", "policy", "set", file.to_str().unwrap()]);
    policy["lockout"]["threshold"] = serde_json::json!(0);
    std::fs::write(&file, policy.to_string()).unwrap();
    assert!(
        admin
            .fails(&["auth", "policy", "set", file.to_str().unwrap()])
            .contains("lockout.threshold")
    );
    let strengths = admin.json(&["auth", "strengths", "list"]);
    assert_eq!(strengths["value"].as_array().unwrap().len(), 3);

    let ca = root("CLI Test Root");
    let ca_file = work.path().join("root.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let added = admin.json(&["auth", "cas", "add", ca_file.to_str().unwrap(), "--root"]);
    let id = added["id"].as_str().unwrap().to_string();
    let crl_file = work.path().join("root.crl");
    std::fs::write(&crl_file, crl_pem(&ca, &[1, 2], 7)).unwrap();
    let updated = admin.json(&["auth", "cas", "crl", &id, crl_file.to_str().unwrap()]);
    assert_eq!(updated["revocationList"]["revokedCount"], 2);
    assert!(admin.ok(&["auth", "cas", "list"]).contains("CLI Test Root"));
    admin.ok(&[
        "auth",
        "bind-certificate",
        "newhire@contoso.com",
        "X509:<PN>1234567890@mil",
    ]);
    assert!(
        admin
            .fails(&[
                "auth",
                "bind-certificate",
                "newhire@contoso.com",
                "nonsense"
            ])
            .contains("X509:")
    );
    admin.ok(&["auth", "cas", "remove", &id]);

    let log = admin.json(&["sign-ins", "--result", "failure"]);
    assert!(log["value"].as_array().unwrap().is_empty());
    server.stop();
}

#[test]
fn applications_are_assigned_and_unassigned_with_the_cli() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, &work.path().join("data"), &[]);
    let cli = Cli {
        config_dir: work.path().join("cli"),
    };
    cli.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        server.token.as_deref().unwrap(),
    ]);
    let role = "5f2b7c1e-3d4a-4b6c-9e8f-0a1b2c3d4e5f";
    let app = cli.json(&[
        "apps",
        "create",
        "--display-name",
        "Payroll",
        "--redirect-uri",
        "https://payroll.contoso.com/callback",
        "--data",
        &format!(
            r#"{{"appRoles":[{{"id":"{role}","value":"Payroll.Admin","displayName":"Admin","allowedMemberTypes":["User"]}}]}}"#
        ),
    ]);
    let app_id = app["appId"].as_str().unwrap();
    let sp = cli.json(&[
        "sps",
        "create",
        "--app-id",
        app_id,
        "--data",
        r#"{"appRoleAssignmentRequired":true}"#,
    ]);
    let sp_id = sp["id"].as_str().unwrap();
    cli.ok(&[
        "users",
        "create",
        "--upn",
        "payroll.admin@contoso.com",
        "--display-name",
        "Payroll Admin",
    ]);
    let assignment = cli.json(&[
        "sps",
        "assign",
        sp_id,
        "--principal",
        "payroll.admin@contoso.com",
        "--role",
        role,
    ]);
    assert_eq!(assignment["appRoleId"], role);
    assert_eq!(assignment["principalType"], "User");
    // A role the application does not define is refused, and nothing is added.
    let refused = cli.fails(&[
        "sps",
        "assign",
        sp_id,
        "--principal",
        "payroll.admin@contoso.com",
        "--role",
        "00000000-0000-0000-0000-00000000abcd",
    ]);
    assert!(refused.contains("appRoleId"), "{refused}");
    let listed = cli.json(&["sps", "assignments", sp_id]);
    assert_eq!(listed["value"].as_array().unwrap().len(), 1);
    cli.ok(&["sps", "unassign", sp_id, assignment["id"].as_str().unwrap()]);
    let listed = cli.json(&["sps", "assignments", sp_id]);
    assert!(listed["value"].as_array().unwrap().is_empty());
    // Admin consent for every user, listed and withdrawn.
    let grant = cli.json(&["apps", "consent", "Payroll", "--scope", "openid profile"]);
    assert_eq!(grant["consentType"], "AllPrincipals");
    let consents = cli.json(&["apps", "consents", "Payroll"]);
    assert_eq!(consents["value"].as_array().unwrap().len(), 1);
    let bad = cli.fails(&["apps", "consent", "Payroll", "--scope", "a\"b"]);
    assert!(bad.contains("scope"), "{bad}");
    cli.ok(&["apps", "revoke-consent", grant["id"].as_str().unwrap()]);
    let consents = cli.json(&["apps", "consents", "Payroll"]);
    assert!(consents["value"].as_array().unwrap().is_empty());
    server.stop();
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/entra-ca-baseline")
}

#[test]
fn an_entra_export_imports_and_what_if_explains() {
    let work = tempfile::tempdir().unwrap();
    // The operator's country database (a real MMDB file).
    let countries = work.path().join("countries.mmdb");
    std::fs::write(
        &countries,
        tessera::adapters::geoip::write_test_database(&[
            ("192.0.2.0/24", "NL"),
            ("203.0.113.0/24", "US"),
        ]),
    )
    .unwrap();
    let server = Server::start(
        BINARY,
        &work.path().join("data"),
        &[
            ("TESSERA_GEOIP_DATABASE", countries.to_str().unwrap()),
            ("TESSERA_TRUSTED_PROXIES", "[\"127.0.0.1\"]"),
        ],
    );
    // Behind a trusted proxy, the client's address is the one it forwards.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let refused = reqwest::Client::new()
            .post(format!("{}/oauth2/token", server.url))
            .header("x-forwarded-for", "198.51.100.99")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=nobody&client_secret=x&scope=api://x/.default")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        let log: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/auditLogs/signIns?limit=5", server.url))
            .bearer_auth(server.token.as_deref().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(log["value"][0]["clientAddress"], "198.51.100.99", "{log}");
    });
    let admin = Cli {
        config_dir: work.path().join("admin"),
    };
    admin.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        server.token.as_deref().unwrap(),
    ]);

    // The groups the export names do not exist yet: nothing is imported, and the
    // report names them.
    let output = admin.run(&["policy", "import", corpus().to_str().unwrap()]);
    assert!(!output.status.success());
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("CA-BreakGlassAccounts - Exclude"),
        "{report}"
    );
    assert!(report.contains("nothing imported"), "{report}");
    assert!(
        admin.json(&["policy", "list"])["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The administrator creates the groups by name (as in the export's Groups/).
    let mut names = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(corpus().join("Groups")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let group = tessera_ca::import::parse_document(&bytes).unwrap();
        names.insert(group["displayName"].as_str().unwrap().to_string());
    }
    let table = tessera_ca::import::parse_document(
        &std::fs::read(corpus().join("MigrationTable.json")).unwrap(),
    )
    .unwrap();
    for object in table["Objects"].as_array().unwrap() {
        names.insert(object["DisplayName"].as_str().unwrap().to_string());
    }
    for name in &names {
        admin.ok(&["groups", "create", "--display-name", name]);
    }
    // Still refused as a whole: some policies use what Tessera does not support.
    let refused = admin.json(&["policy", "import", corpus().to_str().unwrap(), "--dry-run"]);
    assert_eq!(refused["imported"], false);
    let errors: Vec<&Value> = refused["report"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "error")
        .collect();
    assert!(!errors.is_empty());
    let dry_run = admin.ok(&["policy", "import", corpus().to_str().unwrap(), "--dry-run"]);
    assert!(dry_run.contains("would write nothing"), "{dry_run}");
    // A dry run with --skip-errors says what it would import, and that security
    // defaults stay on beside it (with how to turn them off).
    let dry_run = admin.ok(&[
        "policy",
        "import",
        corpus().to_str().unwrap(),
        "--dry-run",
        "--skip-errors",
    ]);
    assert!(!dry_run.contains("nothing imported"), "{dry_run}");
    assert!(
        dry_run.contains("the import would write") && dry_run.contains("named locations:"),
        "{dry_run}"
    );
    assert!(
        dry_run.contains("policy: CA000-Global-IdentityProtection-AnyApp-AnyPlatform-MFA"),
        "{dry_run}"
    );
    assert!(
        dry_run.contains("warning: security defaults are on")
            && dry_run.contains("tessera policy security-defaults --disable"),
        "{dry_run}"
    );
    assert!(
        admin.json(&["policy", "list"])["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // With --skip-errors the ready ones import, as report-only when asked.
    let imported = admin.json(&[
        "policy",
        "import",
        corpus().to_str().unwrap(),
        "--skip-errors",
        "--report-only",
    ]);
    assert_eq!(imported["imported"], true, "{imported}");
    let count = imported["policiesImported"].as_u64().unwrap();
    assert!(count >= 28, "{imported}");
    let policies = admin.json(&["policy", "list"]);
    assert_eq!(policies["value"].as_array().unwrap().len() as u64, count);
    assert!(
        policies["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] == "enabledForReportingButNotEnforced")
    );
    assert_eq!(
        admin.json(&["policy", "locations"])["value"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // A named location and terms of use from files, through the CLI.
    let location_file = work.path().join("office.json");
    std::fs::write(&location_file, r##"{"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office", "isTrusted": true, "ipRanges": [{"cidrAddress": "198.51.100.0/24"}]}"##).unwrap();
    let office = admin.json(&["policy", "create-location", location_file.to_str().unwrap()]);
    assert_eq!(
        admin.json(&["policy", "locations"])["value"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    admin.ok(&["policy", "delete-location", office["id"].as_str().unwrap()]);
    let bad_location = work.path().join("bad.json");
    std::fs::write(&bad_location, r##"{"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Everything", "ipRanges": [{"cidrAddress": "0.0.0.0/0"}]}"##).unwrap();
    assert!(
        admin
            .fails(&["policy", "create-location", bad_location.to_str().unwrap()])
            .contains("every address")
    );
    let terms_file = work.path().join("terms.json");
    std::fs::write(
        &terms_file,
        r#"{"displayName": "Acceptable use", "content": "Be nice."}"#,
    )
    .unwrap();
    admin.ok(&["policy", "create-terms", terms_file.to_str().unwrap()]);
    assert_eq!(
        admin.json(&["policy", "terms"])["value"][0]["contentVersion"],
        1
    );
    // Importing again updates the same policies (same ids), it does not duplicate.
    admin.ok(&[
        "policy",
        "import",
        corpus().to_str().unwrap(),
        "--skip-errors",
        "--report-only",
    ]);
    assert_eq!(
        admin.json(&["policy", "list"])["value"]
            .as_array()
            .unwrap()
            .len() as u64,
        count
    );

    // What-If: a user signing in from abroad with a legacy client, to an
    // application named by its display name.
    admin.ok(&[
        "users",
        "create",
        "--upn",
        "alex@contoso.com",
        "--display-name",
        "Alex Wilber",
    ]);
    admin.ok(&["apps", "create", "--display-name", "SharePoint"]);
    let answer = admin.json(&[
        "policy",
        "what-if",
        "--user",
        "alex@contoso.com",
        "--app",
        "SharePoint",
        "--ip",
        "203.0.113.9",
        "--client-app",
        "other",
        "--platform",
        "windows",
    ]);
    // Report-only policies never enforce: the answer is the security defaults' block of legacy clients.
    assert_eq!(answer["result"], "block", "{answer}");
    let results: Vec<&Value> = answer["policies"].as_array().unwrap().iter().collect();
    let by_name = |prefix: &str| {
        results
            .iter()
            .find(|p| p["displayName"].as_str().unwrap().starts_with(prefix))
            .unwrap()
    };
    assert_eq!(by_name("CA001")["result"], "reportOnlyFailure");
    assert_eq!(by_name("CA002")["result"], "reportOnlyFailure");
    assert_eq!(
        by_name("Security defaults: block legacy")["result"],
        "failure"
    );
    assert_eq!(by_name("CA100")["result"], "reportOnlyNotApplied");
    assert_eq!(by_name("CA100")["notApplied"]["condition"], "users");
    // From an address the database places in the Netherlands, the country policy does not apply.
    let dutch = admin.json(&[
        "policy",
        "what-if",
        "--user",
        "alex@contoso.com",
        "--app",
        "MicrosoftAdminPortals",
        "--ip",
        "192.0.2.10",
    ]);
    let ca001 = dutch["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["displayName"].as_str().unwrap().starts_with("CA001"))
        .unwrap();
    assert_eq!(ca001["result"], "reportOnlyNotApplied", "{ca001}");
    assert_eq!(ca001["notApplied"]["condition"], "locations");
    // Turned off, the defaults no longer apply, and the report-only policies let the user in.
    admin.ok(&["policy", "security-defaults", "--disable"]);
    let answer = admin.json(&[
        "policy",
        "what-if",
        "--user",
        "alex@contoso.com",
        "--app",
        "MicrosoftAdminPortals",
        "--country",
        "NL",
    ]);
    assert_eq!(answer["result"], "allow", "{answer}");
    // Bad input is refused with a clear message.
    let error = admin.fails(&[
        "policy",
        "what-if",
        "--user",
        "alex@contoso.com",
        "--app",
        "x",
        "--platform",
        "amiga",
    ]);
    assert!(
        error.contains("appId") || error.contains("platform"),
        "{error}"
    );
    // An application that does not exist is named in the refusal.
    let error = admin.fails(&[
        "policy",
        "what-if",
        "--user",
        "alex@contoso.com",
        "--app",
        "00000003-0000-0ff1-ce00-000000000000",
    ]);
    assert!(
        error.contains("00000003-0000-0ff1-ce00-000000000000") && error.contains("not found"),
        "{error}"
    );
    // Phishing-resistant MFA meets the MFA the imported (report-only) CA000 asks.
    let answer = admin.json(&[
        "policy",
        "what-if",
        "--user",
        "alex@contoso.com",
        "--app",
        "SharePoint",
        "--country",
        "NL",
        "--satisfied",
        "phishing-resistant",
        "--user-agent",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120",
    ]);
    let ca000 = answer["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["displayName"].as_str().unwrap().starts_with("CA000"))
        .unwrap();
    assert_eq!(ca000["result"], "reportOnlySuccess", "{answer}");
}

#[test]
fn what_if_warns_when_countries_are_evaluated_without_a_country_database() {
    let work = tempfile::tempdir().unwrap();
    // No geoip_database: every address is in an unknown country.
    let server = Server::start(BINARY, &work.path().join("data"), &[]);
    let admin = Cli {
        config_dir: work.path().join("admin"),
    };
    admin.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        server.token.as_deref().unwrap(),
    ]);
    admin.ok(&[
        "users",
        "create",
        "--upn",
        "alex@contoso.com",
        "--display-name",
        "Alex Wilber",
    ]);
    admin.ok(&["apps", "create", "--display-name", "Ledger"]);
    let location_file = work.path().join("benelux.json");
    std::fs::write(&location_file, r##"{"@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "Benelux", "countriesAndRegions": ["NL", "BE", "LU"]}"##).unwrap();
    let benelux = admin.json(&["policy", "create-location", location_file.to_str().unwrap()]);
    let policy_file = work.path().join("policy.json");
    std::fs::write(
        &policy_file,
        serde_json::json!({
            "displayName": "Benelux only", "state": "enabled",
            "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]},
                           "locations": {"includeLocations": ["All"], "excludeLocations": [benelux["id"]]}},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        })
        .to_string(),
    )
    .unwrap();
    admin.ok(&["policy", "create", policy_file.to_str().unwrap()]);
    let shown = admin.ok(&[
        "policy",
        "what-if",
        "--user",
        "alex@contoso.com",
        "--app",
        "Ledger",
        "--ip",
        "192.0.2.10",
    ]);
    assert!(shown.contains("result: block"), "{shown}");
    assert!(
        shown.contains("warning: no country database is configured"),
        "{shown}"
    );
    // Naming the country: no warning.
    let shown = admin.ok(&[
        "policy",
        "what-if",
        "--user",
        "alex@contoso.com",
        "--app",
        "Ledger",
        "--country",
        "NL",
    ]);
    assert!(!shown.contains("warning:"), "{shown}");
    server.stop();
}

/// Waits for a process that must end by itself (a server that refuses to start).
fn ended(mut child: std::process::Child) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process should have ended by itself");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn serve_prints_the_issuer_clients_must_use() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, &work.path().join("data"), &[]);
    let port = server.url.rsplit(':').next().unwrap();
    assert_eq!(server.issuer, format!("http://localhost:{port}"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let discovery: Value = runtime.block_on(async {
        reqwest::get(format!("{}/.well-known/openid-configuration", server.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(discovery["issuer"], server.issuer.as_str());
    // The printed issuer is an address the CLI (and any client) can use.
    let cli = Cli {
        config_dir: work.path().join("cli"),
    };
    cli.ok(&[
        "login",
        "--server",
        &server.issuer,
        "--token",
        server.token.as_deref().unwrap(),
    ]);
    assert!(cli.ok(&["whoami"]).contains("Global Administrator"));
    server.stop();
}

#[test]
fn serve_on_postgresql_without_a_public_url_refuses_to_start() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("secrets.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let child = Command::new(BINARY)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(work.path().join("data"))
        // The check comes before any connection: a database that does not exist
        // keeps a regression from touching a real one.
        .env(
            "TESSERA_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/tessera_never_created",
        )
        .env("TESSERA_SECRETS_KEY_FILE", &key)
        .env_remove("TESSERA_PUBLIC_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = ended(child);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("public_url is required"), "{stderr}");
    assert!(stderr.contains("TESSERA_PUBLIC_URL"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("Listening"),
        "it never listens"
    );
}

#[test]
fn applications_and_service_principals_are_named_by_id_app_id_or_display_name() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, &work.path().join("data"), &[]);
    let cli = Cli {
        config_dir: work.path().join("cli"),
    };
    cli.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        server.token.as_deref().unwrap(),
    ]);
    let app = cli.json(&["apps", "create", "--display-name", "Payroll"]);
    let (object_id, app_id) = (app["id"].as_str().unwrap(), app["appId"].as_str().unwrap());
    // The service principal from the application's display name, then its object id.
    let sp = cli.json(&["sps", "create", "--app-id", "payroll"]);
    assert_eq!(sp["appId"], app_id);
    let ledger = cli.json(&["apps", "create", "--display-name", "Ledger"]);
    let ledger_sp = cli.json(&["sps", "create", "--app", ledger["id"].as_str().unwrap()]);
    assert_eq!(ledger_sp["appId"], ledger["appId"]);

    // Secrets by appId (as the README shows), object id and display name.
    for name in [app_id, object_id, "Payroll"] {
        let secret = cli.json(&["apps", "add-secret", name, "--display-name", name]);
        assert!(secret["secretText"].is_string(), "{secret}");
    }
    let got = cli.json(&["apps", "get", app_id]);
    assert_eq!(got["id"], object_id);
    assert_eq!(got["passwordCredentials"].as_array().unwrap().len(), 3);
    let cert =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tessera-directory/tests/data/test-cert.pem");
    let cert = cert.to_str().unwrap();
    let key = cli.json(&["apps", "add-cert", app_id, "--file", cert]);
    cli.ok(&[
        "apps",
        "remove-cert",
        "Payroll",
        key["keyId"].as_str().unwrap(),
    ]);
    let grant = cli.json(&["apps", "consent", app_id, "--scope", "openid"]);
    assert_eq!(grant["clientId"], app_id);
    let consents = cli.json(&["apps", "consents", object_id]);
    assert_eq!(consents["value"].as_array().unwrap().len(), 1);

    // Service principals by their application's appId, object id and display name.
    for name in [app_id, sp["id"].as_str().unwrap(), "PAYROLL"] {
        assert_eq!(cli.json(&["sps", "get", name])["id"], sp["id"]);
    }
    cli.json(&["sps", "add-secret", app_id]);
    cli.json(&["sps", "add-cert", "Payroll", "--file", cert]);
    cli.ok(&[
        "users",
        "create",
        "--upn",
        "adele@contoso.com",
        "--display-name",
        "Adele",
    ]);
    let assignment = cli.json(&["sps", "assign", app_id, "--principal", "adele@contoso.com"]);
    assert_eq!(assignment["resourceId"], sp["id"]);
    let assignments = cli.json(&["sps", "assignments", "Payroll"]);
    assert_eq!(assignments["value"].as_array().unwrap().len(), 1);
    // A workload as a principal or member: by display name, or its application's appId.
    let role = cli.json(&[
        "roles",
        "assign",
        "--role",
        "Application Administrator",
        "--principal",
        "Ledger",
    ]);
    assert_eq!(role["principalId"], ledger_sp["id"]);
    let listed = cli.json(&[
        "roles",
        "assignments",
        "--principal",
        ledger["appId"].as_str().unwrap(),
    ]);
    assert_eq!(listed["value"].as_array().unwrap().len(), 1, "{listed}");
    cli.ok(&["groups", "create", "--display-name", "Bots"]);
    cli.ok(&[
        "groups",
        "add-member",
        "Bots",
        ledger["appId"].as_str().unwrap(),
    ]);
    assert_eq!(
        ids(&cli.json(&["groups", "members", "Bots"])),
        vec![ledger_sp["id"].as_str().unwrap().to_string()]
    );
    let nobody = cli.fails(&["groups", "add-member", "Bots", "Nobody"]);
    assert!(
        nobody.contains(r#"no user, group or service principal is named "Nobody""#),
        "{nobody}"
    );

    // An unknown name says which name, whatever its form.
    let unknown = cli.fails(&["apps", "add-secret", "Nobody"]);
    assert!(
        unknown.contains(r#"no application with object id, appId or display name "Nobody""#),
        "{unknown}"
    );
    let ghost = "0b8f5a52-3c1e-4f7a-9d2b-6e4c1a7f9d30";
    let unknown = cli.fails(&["sps", "get", ghost]);
    assert!(
        unknown.contains(&format!(
            "no service principal with object id, appId or display name \"{ghost}\""
        )),
        "{unknown}"
    );
    let unknown = cli.fails(&["sps", "create", "--app-id", ghost]);
    assert!(unknown.contains("no application with"), "{unknown}");

    // A display name two applications share is refused with both candidates.
    let twin = cli.json(&["apps", "create", "--display-name", "PAYROLL"]);
    let ambiguous = cli.fails(&["apps", "add-secret", "Payroll"]);
    assert!(
        ambiguous.contains("2 applications are named"),
        "{ambiguous}"
    );
    for candidate in [object_id, twin["id"].as_str().unwrap()] {
        assert!(ambiguous.contains(candidate), "{ambiguous}");
    }
    assert_eq!(
        cli.json(&["apps", "get", app_id])["passwordCredentials"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "nothing was added"
    );
    cli.json(&["sps", "create", "--app-id", twin["appId"].as_str().unwrap()]);
    let ambiguous = cli.fails(&["sps", "get", "payroll"]);
    assert!(
        ambiguous.contains("2 service principals are named"),
        "{ambiguous}"
    );
    server.stop();
}

#[test]
fn application_settings_have_flags_and_errors_are_said_once() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, &work.path().join("data"), &[]);
    let cli = Cli {
        config_dir: work.path().join("cli"),
    };
    cli.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        server.token.as_deref().unwrap(),
    ]);
    let tv = cli.json(&[
        "apps",
        "create",
        "--display-name",
        "Kiosk",
        "--description",
        "Lobby screens",
        "--spa-redirect-uri",
        "http://localhost:3000/spa",
        "--redirect-uri",
        "https://kiosk.contoso.com/a",
        "--redirect-uri",
        "https://kiosk.contoso.com/b",
        "--post-logout-redirect-uri",
        "https://kiosk.contoso.com/bye",
        "--id-token-alg",
        "RS256",
        "--require-par",
    ]);
    assert_eq!(tv["description"], "Lobby screens");
    assert_eq!(tv["idTokenSignedResponseAlg"], "RS256");
    assert_eq!(tv["requirePushedAuthorizationRequests"], true);
    assert_eq!(tv["web"]["redirectUris"].as_array().unwrap().len(), 2);
    assert_eq!(tv["spa"]["redirectUris"][0], "http://localhost:3000/spa");
    assert_eq!(
        tv["postLogoutRedirectUris"][0],
        "https://kiosk.contoso.com/bye"
    );
    assert!(tv.get("isFallbackPublicClient").is_none());
    let app_id = tv["appId"].as_str().unwrap().to_string();
    cli.json(&["sps", "create", "--app-id", &app_id]);

    // The device flow without a secret names the setting that allows it.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let device_code = |client_id: String| {
        let url = format!("{}/oauth2/devicecode", server.url);
        runtime.block_on(async move {
            let response = reqwest::Client::new()
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(format!("client_id={client_id}&scope=openid"))
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        })
    };
    let (status, refused) = device_code(app_id.clone());
    assert!(status.is_client_error(), "{status} {refused}");
    assert_eq!(refused["error"], "invalid_client");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("isFallbackPublicClient"),
        "{refused}"
    );
    let updated = cli.json(&[
        "apps",
        "update",
        "Kiosk",
        "--public-client",
        "--allow-password-grant",
        "--require-dpop",
        "--id-token-alg",
        "PS256",
        "--redirect-uri",
        "https://kiosk.contoso.com/c",
    ]);
    assert_eq!(updated["isFallbackPublicClient"], true);
    assert_eq!(updated["allowPasswordGrant"], true);
    assert_eq!(updated["dpopBoundAccessTokens"], true);
    assert_eq!(updated["idTokenSignedResponseAlg"], "PS256");
    assert_eq!(
        updated["web"]["redirectUris"],
        serde_json::json!(["https://kiosk.contoso.com/c"]),
        "a repeated flag replaces the list"
    );
    assert_eq!(updated["description"], "Lobby screens", "the rest stays");
    let (status, started) = device_code(app_id.clone());
    assert!(status.is_success(), "{status} {started}");
    assert!(started["device_code"].is_string());
    let off = cli.json(&[
        "apps",
        "update",
        &app_id,
        "--public-client",
        "false",
        "--require-par=false",
    ]);
    assert!(off.get("isFallbackPublicClient").is_none(), "{off}");
    assert!(off.get("requirePushedAuthorizationRequests").is_none());
    let nothing = cli.fails(&["apps", "update", "Kiosk"]);
    assert!(nothing.contains("nothing to change"), "{nothing}");
    // The server's validation, named by field.
    let bad = cli.fails(&["apps", "update", "Kiosk", "--id-token-alg", "HS256"]);
    assert!(bad.contains("idTokenSignedResponseAlg"), "{bad}");

    // An API error is said once: the field error is not repeated after the detail.
    let refused = cli.fails(&["users", "create", "--upn", "not-an-address"]);
    assert_eq!(
        refused.matches("must have the form name@domain").count(),
        1,
        "{refused}"
    );
    assert!(
        refused.starts_with("error: 400 validation_failed: userPrincipalName: "),
        "{refused}"
    );
    let missing = cli.fails(&["users", "get", "nobody@contoso.com"]);
    assert_eq!(missing.matches("does not exist").count(), 1, "{missing}");
    server.stop();
}

/// An SP's metadata, with a signature template for xmlsec1 when `signed`.
fn sp_metadata(signed: bool) -> String {
    let signature = if signed {
        r##"<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><Reference URI="#_meta"><Transforms><Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></Transforms><DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><DigestValue/></Reference></SignedInfo><SignatureValue/></Signature>"##
    } else {
        ""
    };
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" ID="_meta" entityID="https://wiki.contoso.com/saml">{signature}
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://wiki.contoso.com/saml/acs" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#
    )
}

#[test]
fn saml_applications_are_configured_with_the_cli() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, &work.path().join("data"), &[]);
    let cli = Cli {
        config_dir: work.path().join("cli"),
    };
    cli.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        server.token.as_deref().unwrap(),
    ]);
    let app = cli.json(&["apps", "create", "--display-name", "Wiki"]);
    cli.ok(&["sps", "create", "--app-id", app["appId"].as_str().unwrap()]);
    // From the SP's metadata: entity id, consumer service, NameID format.
    let metadata = work.path().join("sp.xml");
    std::fs::write(&metadata, sp_metadata(false)).unwrap();
    let configured = cli.json(&[
        "apps",
        "saml",
        "from-metadata",
        "Wiki",
        "--file",
        metadata.to_str().unwrap(),
    ]);
    assert_eq!(configured["entityId"], "https://wiki.contoso.com/saml");
    assert_eq!(
        configured["consumerServices"][0]["url"],
        "https://wiki.contoso.com/saml/acs"
    );
    assert_eq!(configured["nameId"]["format"], "emailAddress");
    // Mappings set from a file; a bad one is refused by name and changes nothing.
    let mut settings = configured.clone();
    settings.as_object_mut().unwrap().remove("appId");
    settings["attributes"] = serde_json::json!([
        {"name": "email", "source": {"kind": "user", "attribute": "mail"}}
    ]);
    let file = work.path().join("saml.json");
    std::fs::write(&file, settings.to_string()).unwrap();
    cli.ok(&[
        "apps",
        "saml",
        "set",
        "Wiki",
        "--file",
        file.to_str().unwrap(),
    ]);
    settings["consumerServices"][0]["url"] = serde_json::json!("http://wiki.contoso.com/acs");
    std::fs::write(&file, settings.to_string()).unwrap();
    let refused = cli.fails(&[
        "apps",
        "saml",
        "set",
        "Wiki",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(refused.contains("https"), "{refused}");
    let shown: Value = serde_json::from_str(&cli.ok(&["apps", "saml", "show", "Wiki"])).unwrap();
    assert!(shown.get("appId").is_none(), "show prints what set takes");
    assert_eq!(shown["attributes"][0]["name"], "email");
    assert_eq!(
        shown["consumerServices"][0]["url"],
        "https://wiki.contoso.com/saml/acs"
    );
    // Signed metadata: checked against the signer given; another signer is refused.
    let key = work.path().join("key.pem");
    let cert = work.path().join("cert.pem");
    let other = work.path().join("other.pem");
    for (k, c) in [(&key, &cert), (&work.path().join("other.key"), &other)] {
        let made = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=wiki",
            ])
            .arg("-keyout")
            .arg(k)
            .arg("-out")
            .arg(c)
            .output()
            .expect("openssl is installed");
        assert!(made.status.success());
    }
    let template = work.path().join("template.xml");
    std::fs::write(&template, sp_metadata(true)).unwrap();
    let signed = std::process::Command::new("xmlsec1")
        .args(["--sign", "--privkey-pem"])
        .arg(&key)
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
        ])
        .arg(&template)
        .output()
        .expect("xmlsec1 is installed (scripts/test installs it)");
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    std::fs::write(&metadata, &signed.stdout).unwrap();
    let verified = cli.json(&[
        "apps",
        "saml",
        "from-metadata",
        "Wiki",
        "--file",
        metadata.to_str().unwrap(),
        "--signer",
        cert.to_str().unwrap(),
    ]);
    assert_eq!(
        verified["attributes"][0]["name"], "email",
        "mappings are kept"
    );
    let wrong = cli.fails(&[
        "apps",
        "saml",
        "from-metadata",
        "Wiki",
        "--file",
        metadata.to_str().unwrap(),
        "--signer",
        other.to_str().unwrap(),
    ]);
    assert!(wrong.contains("signature"), "{wrong}");
    // The IdP side: signed metadata and the test link.
    let idp = cli.ok(&["apps", "saml", "metadata"]);
    assert!(idp.contains("IDPSSODescriptor") && idp.contains("ds:SignatureValue"));
    let for_wiki = cli.ok(&["apps", "saml", "metadata", "Wiki"]);
    assert!(
        for_wiki.contains("WantAuthnRequestsSigned=\"false\""),
        "{for_wiki}"
    );
    let link = cli.ok(&["apps", "saml", "test-link", "Wiki"]);
    assert!(link.trim().ends_with(&format!(
        "/saml2/apps/{}/sso",
        app["appId"].as_str().unwrap()
    )));
    // The application's own certificate, rolled over: a new one is in its
    // metadata before it signs; the old one goes when it is activated.
    let first = cli.json(&["apps", "saml", "certificates", "add", "Wiki"]);
    assert_eq!(first["state"], "next");
    let busy = cli.fails(&["apps", "saml", "certificates", "add", "Wiki"]);
    assert!(busy.contains("next certificate"), "{busy}");
    let first_thumbprint = first["thumbprint"].as_str().unwrap();
    cli.ok(&[
        "apps",
        "saml",
        "certificates",
        "activate",
        "Wiki",
        first_thumbprint,
    ]);
    let second = cli.json(&["apps", "saml", "certificates", "add", "Wiki"]);
    let for_wiki = cli.ok(&["apps", "saml", "metadata", "Wiki"]);
    for certificate in [&first, &second] {
        assert!(for_wiki.contains(certificate["certificate"].as_str().unwrap()));
    }
    let second_thumbprint = second["thumbprint"].as_str().unwrap();
    cli.ok(&[
        "apps",
        "saml",
        "certificates",
        "activate",
        "Wiki",
        second_thumbprint,
    ]);
    let listed = cli.ok(&["apps", "saml", "certificates", "list", "Wiki"]);
    assert!(listed.contains(second_thumbprint), "{listed}");
    assert!(!listed.contains(first_thumbprint), "{listed}");
    cli.ok(&[
        "apps",
        "saml",
        "certificates",
        "remove",
        "Wiki",
        second_thumbprint,
    ]);
    cli.ok(&["apps", "saml", "remove", "Wiki"]);
    let gone = cli.fails(&["apps", "saml", "show", "Wiki"]);
    assert!(
        gone.contains("not found") || gone.contains("404") || gone.contains("samlConfiguration"),
        "{gone}"
    );
    server.stop();
}

#[test]
fn privileged_roles_are_activated_and_approved_with_the_cli() {
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, &work.path().join("data"), &[]);
    let admin = Cli {
        config_dir: work.path().join("admin"),
    };
    admin.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        server.token.as_deref().unwrap(),
    ]);
    for (upn, name) in [("alice@contoso.com", "Alice"), ("bob@contoso.com", "Bob")] {
        admin.ok(&["users", "create", "--upn", upn, "--display-name", name]);
    }
    let token_of = |upn: &str| {
        let issued = admin.json(&["users", "issue-token", upn, "--name", "pim"]);
        issued["secret"].as_str().unwrap().to_string()
    };
    let as_user = |dir: &str, upn: &str| {
        let cli = Cli {
            config_dir: work.path().join(dir),
        };
        cli.ok(&["login", "--server", &server.url, "--token", &token_of(upn)]);
        cli
    };
    let alice = as_user("alice", "alice@contoso.com");
    let bob = as_user("bob", "bob@contoso.com");

    // Eligible, not active.
    admin.ok(&[
        "pim",
        "assign",
        "--role",
        "User Administrator",
        "--principal",
        "alice@contoso.com",
        "--eligible",
        "--permanent",
        "--justification",
        "help desk lead",
    ]);
    let eligible = alice.json(&["pim", "eligible"]);
    assert_eq!(eligible["value"].as_array().unwrap().len(), 1);
    assert!(
        alice.json(&["pim", "active"])["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    alice.fails(&[
        "users",
        "create",
        "--upn",
        "x@contoso.com",
        "--display-name",
        "X",
    ]);

    // A personal access token proves no MFA: the role's default asks for it.
    let refused = alice.fails(&[
        "pim",
        "activate",
        "--role",
        "User Administrator",
        "--justification",
        "onboarding",
        "--duration",
        "PT1H",
    ]);
    assert!(refused.contains("multifactor"), "{refused}");

    // Settings: no MFA, but Bob approves.
    let bob_id = bob.json(&["whoami"])["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let settings = admin.json(&[
        "pim",
        "settings",
        "set",
        "--role",
        "User Administrator",
        "--data",
        &format!(
            r#"{{"activationRequiresMfa": false, "activationRequiresApproval": true,
                "approvers": [{{"type": "user", "id": "{bob_id}"}}]}}"#
        ),
    ]);
    assert_eq!(settings["settings"]["activationRequiresApproval"], true);
    let bad = admin.fails(&[
        "pim",
        "settings",
        "set",
        "--role",
        "User Administrator",
        "--data",
        r#"{"maxActivationSeconds": 5}"#,
    ]);
    assert!(bad.contains("maxActivationSeconds"), "{bad}");

    let waiting = alice.json(&[
        "pim",
        "activate",
        "--role",
        "User Administrator",
        "--justification",
        "onboarding",
        "--ticket",
        "CHG-7",
        "--duration",
        "PT1H",
    ]);
    assert_eq!(waiting["status"], "PendingApproval");
    let request = waiting["id"].as_str().unwrap();
    let own = alice.fails(&["pim", "approve", request]);
    assert!(own.contains("own request"), "{own}");
    let awaiting = bob.json(&["pim", "requests", "--approver"]);
    assert_eq!(awaiting["value"][0]["id"], request);
    let approved = bob.json(&[
        "pim",
        "approve",
        request,
        "--justification",
        "ticket checked",
    ]);
    assert_eq!(approved["status"], "Provisioned");

    // Active at once: Alice creates a user; then she ends it herself.
    let active = alice.json(&["pim", "active"]);
    assert_eq!(active["value"][0]["assignmentType"], "Activated");
    alice.ok(&[
        "users",
        "create",
        "--upn",
        "new.hire@contoso.com",
        "--display-name",
        "New Hire",
    ]);
    alice.ok(&["pim", "deactivate", "--role", "User Administrator"]);
    alice.fails(&[
        "users",
        "create",
        "--upn",
        "y@contoso.com",
        "--display-name",
        "Y",
    ]);
    let history = alice.json(&["pim", "requests"]);
    assert_eq!(history["value"].as_array().unwrap().len(), 2);

    // Discovery: the bootstrap administrator's standing Global Administrator.
    let alerts = admin.json(&["pim", "alerts"]);
    let kinds: Vec<&str> = alerts["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"assignedOutsidePim"), "{kinds:?}");
    let table = admin.ok(&["pim", "alerts"]);
    assert!(table.contains("permanentPrivilegedAssignment"), "{table}");
    let bob_assignment = admin.json(&[
        "roles",
        "assign",
        "--role",
        "Helpdesk Administrator",
        "--principal",
        "bob@contoso.com",
    ]);
    let converted = admin.json(&[
        "pim",
        "convert",
        bob_assignment["id"].as_str().unwrap(),
        "--justification",
        "no standing privilege",
    ]);
    assert_eq!(converted["principalId"], bob_id.as_str());
    assert_eq!(
        bob.json(&["pim", "eligible"])["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Removed by the administrator.
    admin.ok(&[
        "pim",
        "remove",
        "--role",
        "User Administrator",
        "--principal",
        "alice@contoso.com",
        "--eligible",
    ]);
    assert!(
        alice.json(&["pim", "eligible"])["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // PIM for groups: the same commands with --group (and --groups to list).
    let payroll = admin.json(&["groups", "create", "--display-name", "Payroll admins"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin.ok(&[
        "pim",
        "settings",
        "set",
        "--group",
        "Payroll admins",
        "--data",
        r#"{"activationRequiresMfa": false}"#,
    ]);
    let group_settings = admin.json(&[
        "pim",
        "settings",
        "get",
        "--group",
        "Payroll admins",
        "--access",
        "member",
    ]);
    assert_eq!(group_settings["settings"]["activationRequiresMfa"], false);
    admin.ok(&[
        "pim",
        "assign",
        "--group",
        "Payroll admins",
        "--principal",
        "alice@contoso.com",
        "--eligible",
        "--duration",
        "P30D",
        "--justification",
        "payroll on call",
    ]);
    let eligible = alice.json(&["pim", "eligible", "--groups"]);
    assert_eq!(eligible["value"][0]["accessId"], "member");
    let activated = alice.json(&[
        "pim",
        "activate",
        "--group",
        &payroll,
        "--justification",
        "month end",
        "--duration",
        "PT1H",
    ]);
    assert_eq!(activated["status"], "Provisioned");
    let active = alice.json(&["pim", "active", "--groups"]);
    assert_eq!(active["value"][0]["groupDisplayName"], "Payroll admins");
    // The flags of one family do not mix with the other's.
    alice.fails(&[
        "pim",
        "activate",
        "--group",
        &payroll,
        "--role",
        "User Administrator",
    ]);
    alice.ok(&["pim", "deactivate", "--group", &payroll]);
    assert!(
        alice.json(&["pim", "active", "--groups"])["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    server.stop();
}

/// A webhook receiver: records each request's headers and body, answers 200.
fn webhook_sink() -> (String, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/tessera", listener.local_addr().unwrap());
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = send.send((head, body));
        }
    });
    (url, receive)
}

#[test]
fn pim_notifications_reach_a_real_smtp_server_and_a_signed_webhook() {
    let work = tempfile::tempdir().unwrap();
    let python = std::env::var_os("TESSERA_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/tessera/venv"))
        })
        .unwrap()
        .join("bin/python");
    let smtp_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mails = work.path().join("mails.jsonl");
    let mut sink = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/smtp_sink.py"))
        .arg(smtp_port.to_string())
        .arg(&mails)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the SMTP sink (aiosmtpd, from e2e/requirements.txt)");
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(sink.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let port = smtp_port.to_string();
    let server = Server::start(
        BINARY,
        &work.path().join("data"),
        &[
            ("TESSERA_SMTP__HOST", "127.0.0.1"),
            ("TESSERA_SMTP__PORT", &port),
            ("TESSERA_SMTP__FROM", "Tessera <tessera@contoso.com>"),
            ("TESSERA_SMTP__SECURITY", "none"),
        ],
    );
    let admin = Cli {
        config_dir: work.path().join("admin"),
    };
    admin.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        server.token.as_deref().unwrap(),
    ]);
    let (hook_url, hooks) = webhook_sink();
    let secret = "whsec-0123456789abcdef0123456789abcdef";
    // Settings are checked: a plain-http webhook off this machine is refused.
    let bad = admin.fails(&[
        "pim",
        "notifications",
        "--data",
        &format!(r#"{{"webhookUrl": "http://hooks.example.com/x", "webhookSecret": "{secret}"}}"#),
    ]);
    assert!(bad.contains("webhookUrl"), "{bad}");
    let shown = admin.json(&[
        "pim",
        "notifications",
        "--data",
        &format!(
            r#"{{"webhookUrl": "{hook_url}", "webhookSecret": "{secret}", "mailEnabled": true,
                "administratorEmails": ["security@contoso.com"]}}"#
        ),
    ]);
    assert_eq!(shown["hasWebhookSecret"], true);
    assert_eq!(shown["mailConfigured"], true);
    assert!(!shown.to_string().contains(secret));
    for (upn, name) in [("alice@contoso.com", "Alice"), ("bob@contoso.com", "Bob")] {
        admin.ok(&[
            "users",
            "create",
            "--upn",
            upn,
            "--display-name",
            name,
            "--data",
            &format!(r#"{{"mail": "{upn}"}}"#),
        ]);
    }
    let bob_id = admin.json(&["users", "get", "bob@contoso.com"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin.ok(&[
        "pim",
        "settings",
        "set",
        "--role",
        "User Administrator",
        "--data",
        &format!(
            r#"{{"activationRequiresMfa": false, "activationRequiresApproval": true,
                     "approvers": [{{"type": "user", "id": "{bob_id}"}}]}}"#
        ),
    ]);
    admin.ok(&[
        "pim",
        "assign",
        "--role",
        "User Administrator",
        "--principal",
        "alice@contoso.com",
        "--eligible",
        "--permanent",
        "--justification",
        "help desk lead",
    ]);
    let issued = admin.json(&["users", "issue-token", "alice@contoso.com", "--name", "pim"]);
    let alice = Cli {
        config_dir: work.path().join("alice"),
    };
    alice.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        issued["secret"].as_str().unwrap(),
    ]);
    let waiting = alice.json(&[
        "pim",
        "activate",
        "--role",
        "User Administrator",
        "--justification",
        "new hires today",
    ]);
    let request = waiting["id"].as_str().unwrap().to_string();

    // Within the delivery job's round: Bob is asked by mail, and the webhook hears it
    // signed with the secret.
    let mail_to = |who: &str, what: &str| -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
        loop {
            let text = std::fs::read_to_string(&mails).unwrap_or_default();
            if let Some(found) = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .find(|m| m["to"][0] == who && m["subject"].as_str().unwrap().contains(what))
            {
                return found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no mail to {who} about {what}:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    };
    let asked = mail_to("bob@contoso.com", "Approval needed");
    assert!(
        asked["body"].as_str().unwrap().contains(&request),
        "{asked}"
    );
    assert!(asked["body"].as_str().unwrap().contains("new hires today"));
    let (head, body) = hooks
        .recv_timeout(std::time::Duration::from_secs(40))
        .unwrap();
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "pim.approvalRequested");
    assert_eq!(event["data"]["requestId"], request.as_str());
    let signature = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("tessera-signature: ")
                .or_else(|| l.strip_prefix("Tessera-Signature: "))
        })
        .expect("a signature header")
        .trim()
        .to_string();
    let t: i64 = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        signature,
        tessera_service::kernel::outbox::webhook_signature(secret.as_bytes(), t, &body)
    );

    // Bob approves: Alice hears, and so do the administrators (a privileged role).
    let bob = Cli {
        config_dir: work.path().join("bob"),
    };
    let issued = admin.json(&["users", "issue-token", "bob@contoso.com", "--name", "pim"]);
    bob.ok(&[
        "login",
        "--server",
        &server.url,
        "--token",
        issued["secret"].as_str().unwrap(),
    ]);
    bob.ok(&["pim", "approve", &request]);
    mail_to("alice@contoso.com", "was approved");
    mail_to("security@contoso.com", "activated User Administrator");
    let audit = admin.json(&["audit", "list", "--action", "notification.deliver"]);
    assert!(audit["value"].as_array().unwrap().len() >= 4, "{audit}");
    server.stop();
    drop(sink.stdin.take());
    let _ = sink.wait();
}

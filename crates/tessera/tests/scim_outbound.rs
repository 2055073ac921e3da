//! Outbound provisioning against the real binary, on SQLite and PostgreSQL:
//! `scim2-server` (python-scim, PyPI) is the application's SCIM service, set up
//! and run with the CLI; what it holds is read back from it over HTTP. First
//! scim2-tester checks the target itself, so a failure below is Tessera's.
//! Needs the pinned Python environment `.ci/run` makes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};

use serde_json::Value;
use tessera_testkit::{PostgresNode, Server, venv_bin};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera");
const TOKEN: &str = "target-token-1";
/// scim2-server listens on localhost: a loopback address, which provisioning
/// reaches only when the configuration allows it.
const PRIVATE_TARGETS: (&str, &str) = ("TESSERA_PROVISIONING_PRIVATE_TARGETS", "true");

/// scim2-server on a free port, in memory, behind a bearer token.
struct Target {
    child: Child,
    base: String,
}

impl Target {
    fn start() -> Target {
        let port = tessera_testkit::server::free_port();
        let child = Command::new(venv_bin("scim2-server"))
            .args(["--port", &port.to_string(), "--bearer-token", TOKEN])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scim2-server");
        let base = format!("http://localhost:{port}/v2");
        let target = Target { child, base };
        for _ in 0..100 {
            if target.try_get("/ServiceProviderConfig").is_some() {
                return target;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("scim2-server did not start");
    }

    fn try_get(&self, path: &str) -> Option<Value> {
        let output = Command::new(venv_bin("python"))
            .arg("-c")
            .arg(
                "import sys, json, httpx2\n\
                 r = httpx2.get(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]})\n\
                 print(json.dumps({'status': r.status_code, 'body': r.json() if r.content else None}))",
            )
            .arg(format!("{}{path}", self.base))
            .arg(TOKEN)
            .output()
            .ok()?;
        let value: Value = serde_json::from_slice(&output.stdout).ok()?;
        Some(value)
    }

    fn get(&self, path: &str) -> Value {
        let reply = self.try_get(path).expect("scim2-server answers");
        assert_eq!(reply["status"], 200, "{path}: {reply}");
        reply["body"].clone()
    }

    fn delete(&self, path: &str) {
        let output = Command::new(venv_bin("python"))
            .arg("-c")
            .arg("import sys, httpx2; print(httpx2.delete(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]}).status_code)")
            .arg(format!("{}{path}", self.base))
            .arg(TOKEN)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "204",
            "{path}"
        );
    }

    /// The users the target holds, by userName.
    fn users(&self) -> std::collections::BTreeMap<String, Value> {
        self.get("/Users?count=100")["Resources"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|u| (u["userName"].as_str().unwrap().to_string(), u))
            .collect()
    }

    fn groups(&self) -> Vec<Value> {
        self.get("/Groups?count=100")["Resources"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// scim2-tester's checks of the target, so that what follows tests Tessera.
    fn check_with_scim2_tester(&self) {
        let output = Command::new(venv_bin("python"))
            .arg("-c")
            .arg(
                "import sys\n\
                 from scim2_client.engines.httpx2 import SyncSCIMClient\n\
                 from scim2_tester import check_server, Status\n\
                 from httpx2 import Client\n\
                 client = SyncSCIMClient(Client(base_url=sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]}))\n\
                 client.discover()\n\
                 results = check_server(client, raise_exceptions=False)\n\
                 bad = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]\n\
                 print(len(results), 'checks,', len(bad), 'failed')\n\
                 for r in bad: print(r.title, r.reason)\n",
            )
            .arg(&self.base)
            .arg(TOKEN)
            .output()
            .expect("run scim2-tester");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains(", 0 failed"),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(server: &Server, args: &[&str]) -> Value {
    server.cli(BINARY, args)
}

fn cli_fails(server: &Server, args: &[&str]) -> String {
    server.cli_fails(BINARY, args)
}

fn run(server: &Server, full: bool) -> Value {
    let mut args = vec!["provisioning", "outbound", "run", "Payroll"];
    if full {
        args.push("--full");
    }
    cli(server, &args)
}

fn outbound_provisioning(server: &Server) {
    let target = Target::start();
    target.check_with_scim2_tester();
    // The check left its own resources there; the application starts empty.
    for user in target.users().values() {
        target.delete(&format!("/Users/{}", user["id"].as_str().unwrap()));
    }
    for group in target.groups() {
        target.delete(&format!("/Groups/{}", group["id"].as_str().unwrap()));
    }
    assert!(target.users().is_empty());

    let app = cli(server, &["apps", "create", "--display-name", "Payroll"]);
    let app_id = app["appId"].as_str().unwrap();
    cli(server, &["sps", "create", "--app-id", app_id]);
    let domain = "outbound.example.com";
    for (name, department) in [("ada", "Research"), ("bob", "Finance"), ("cy", "Sales")] {
        let upn = format!("{name}@{domain}");
        let display = format!("{} Tester", name.to_uppercase());
        cli(
            server,
            &[
                "users",
                "create",
                "--upn",
                &upn,
                "--display-name",
                &display,
                "--given-name",
                name,
                "--surname",
                "Tester",
                "--mail",
                &upn,
                "--department",
                department,
            ],
        );
    }
    // Not assigned: never provisioned.
    cli(
        server,
        &[
            "users",
            "create",
            "--upn",
            &format!("dee@{domain}"),
            "--display-name",
            "Dee",
        ],
    );
    cli(
        server,
        &["groups", "create", "--display-name", "Payroll users"],
    );
    for name in ["ada", "bob"] {
        cli(
            server,
            &[
                "groups",
                "add-member",
                "Payroll users",
                &format!("{name}@{domain}"),
            ],
        );
    }
    cli(
        server,
        &["sps", "assign", "Payroll", "--principal", "Payroll users"],
    );
    cli(
        server,
        &[
            "sps",
            "assign",
            "Payroll",
            "--principal",
            &format!("cy@{domain}"),
        ],
    );

    // Settings: checked whole, the token never shown.
    let files = tempfile::tempdir().unwrap();
    let settings = files.path().join("outbound.json");
    let token_file = files.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let set_args = [
        "provisioning",
        "outbound",
        "set",
        "Payroll",
        settings.to_str().unwrap(),
        "--token-file",
        token_file.to_str().unwrap(),
    ];
    std::fs::write(
        &settings,
        r#"{"enabled": true, "endpoint": "ftp://example.com/scim", "userMapping": {"attributes": [{"target": "id", "expression": "[shoeSize]"}]}}"#,
    )
    .unwrap();
    let refused = cli_fails(server, &set_args);
    assert!(refused.contains("endpoint"), "{refused}");
    std::fs::write(
        &settings,
        format!(r#"{{"enabled": true, "endpoint": "{}", "userMapping": {{"attributes": [{{"target": "id", "expression": "[shoeSize]"}}]}}}}"#, target.base),
    )
    .unwrap();
    let refused = cli_fails(server, &set_args);
    assert!(
        refused.contains("userMapping.attributes[0].target: id is read-only")
            && refused.contains("userName must be mapped"),
        "{refused}"
    );
    std::fs::write(
        &settings,
        format!(r#"{{"enabled": true, "endpoint": "{}"}}"#, target.base),
    )
    .unwrap();
    let saved = cli(server, &set_args);
    assert_eq!(saved["hasSecretToken"], true, "{saved}");
    assert!(!saved.to_string().contains(TOKEN), "{saved}");
    assert_eq!(saved["userMapping"]["attributes"][0]["target"], "userName");

    // The first cycle is full: three users and the group.
    let summary = run(server, false);
    assert_eq!(summary["full"], true, "{summary}");
    assert_eq!(summary["created"], 4, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let users = target.users();
    assert_eq!(
        users.keys().cloned().collect::<Vec<_>>(),
        [
            format!("ada@{domain}"),
            format!("bob@{domain}"),
            format!("cy@{domain}")
        ],
        "{users:?}"
    );
    let ada = &users[&format!("ada@{domain}")];
    assert_eq!(ada["active"], true, "{ada}");
    assert_eq!(ada["displayName"], "ADA Tester", "{ada}");
    assert_eq!(ada["name"]["givenName"], "ada", "{ada}");
    assert_eq!(ada["name"]["familyName"], "Tester", "{ada}");
    assert_eq!(ada["emails"][0]["value"], format!("ada@{domain}"), "{ada}");
    assert_eq!(ada["emails"][0]["type"], "work", "{ada}");
    assert_eq!(ada["externalId"], "ada", "{ada}");
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    assert_eq!(ada[enterprise]["department"], "Research", "{ada}");
    let groups = target.groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["displayName"], "Payroll users");
    let mut members: Vec<&str> = groups[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    members.sort_unstable();
    let mut expected = vec![
        ada["id"].as_str().unwrap(),
        users[&format!("bob@{domain}")]["id"].as_str().unwrap(),
    ];
    expected.sort_unstable();
    assert_eq!(members, expected, "{groups:?}");

    // The token goes only where it was given for: a new endpoint needs it again.
    std::fs::write(
        &settings,
        format!(
            r#"{{"enabled": true, "endpoint": "{}/other"}}"#,
            target.base
        ),
    )
    .unwrap();
    let refused = cli_fails(
        server,
        &[
            "provisioning",
            "outbound",
            "set",
            "Payroll",
            settings.to_str().unwrap(),
        ],
    );
    assert!(refused.contains("needs its bearer token"), "{refused}");
    std::fs::write(
        &settings,
        format!(r#"{{"enabled": true, "endpoint": "{}"}}"#, target.base),
    )
    .unwrap();

    // Nothing changed: nothing is sent.
    let summary = run(server, false);
    assert_eq!(summary["full"], false, "{summary}");
    assert_eq!(
        (summary["created"].as_u64(), summary["updated"].as_u64()),
        (Some(0), Some(0)),
        "{summary}"
    );

    // A change in the directory reaches the application in the next cycle.
    cli(
        server,
        &[
            "users",
            "update",
            &format!("ada@{domain}"),
            "--department",
            "Platform",
        ],
    );
    let summary = run(server, false);
    assert_eq!(summary["updated"], 1, "{summary}");
    let ada = &target.users()[&format!("ada@{domain}")];
    assert_eq!(ada[enterprise]["department"], "Platform", "{ada}");

    // Bob leaves the assigned group: disabled there, and out of its members.
    cli(
        server,
        &[
            "groups",
            "remove-member",
            "Payroll users",
            &format!("bob@{domain}"),
        ],
    );
    let summary = run(server, false);
    assert_eq!(summary["disabled"], 1, "{summary}");
    assert_eq!(summary["updated"], 1, "the group: {summary}");
    let users = target.users();
    assert_eq!(users[&format!("bob@{domain}")]["active"], false);
    let group = &target.groups()[0];
    assert_eq!(
        group["members"].as_array().map(Vec::len).unwrap_or(0),
        1,
        "{group}"
    );

    // Cy is deleted from the directory: deleted there.
    cli(server, &["users", "delete", &format!("cy@{domain}")]);
    let summary = run(server, false);
    assert_eq!(summary["deleted"], 1, "{summary}");
    assert!(!target.users().contains_key(&format!("cy@{domain}")));

    // Provision on demand: one user, with each step told.
    let report = cli(
        server,
        &[
            "provisioning",
            "outbound",
            "on-demand",
            "Payroll",
            &format!("dee@{domain}"),
        ],
    );
    assert_eq!(report["inScope"], false, "{report}");
    assert_eq!(report["status"], "skipped", "{report}");
    cli(
        server,
        &[
            "users",
            "update",
            &format!("ada@{domain}"),
            "--job-title",
            "Engineer",
        ],
    );
    let report = cli(
        server,
        &[
            "provisioning",
            "outbound",
            "on-demand",
            "Payroll",
            &format!("ada@{domain}"),
        ],
    );
    assert_eq!(report["action"], "update", "{report}");
    assert_eq!(report["status"], "success", "{report}");
    assert_eq!(report["changed"], serde_json::json!(["title"]), "{report}");
    assert_eq!(
        target.users()[&format!("ada@{domain}")]["title"],
        "Engineer"
    );

    // The provisioning log: every object's every attempt.
    let log = cli(server, &["provisioning", "outbound", "log", "Payroll"]);
    let actions: Vec<&str> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["create", "update", "disable", "delete"] {
        assert!(actions.contains(&action), "{action}: {log}");
    }
    let status = cli(server, &["provisioning", "outbound", "status", "Payroll"]);
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(status["provisionedUsers"], 2, "{status}");
    assert_eq!(status["provisionedGroups"], 1, "{status}");

    // A target that cannot be reached fails the cycle, and nothing is lost:
    // once back, the next cycle sends what waited.
    let base = target.base.clone();
    drop(target);
    cli(
        server,
        &[
            "users",
            "update",
            &format!("ada@{domain}"),
            "--job-title",
            "Lead",
        ],
    );
    let summary = run(server, false);
    assert!(
        summary["error"]
            .as_str()
            .is_some_and(|e| e.contains("could not be reached")),
        "{summary}"
    );
    let status = cli(server, &["provisioning", "outbound", "status", "Payroll"]);
    assert_eq!(status["failedCycles"], 1, "{status}");
    assert!(!status.to_string().contains(TOKEN), "{status}");
    let _ = base;

    // Deleting the settings stops provisioning.
    cli(server, &["provisioning", "outbound", "delete", "Payroll"]);
    let gone = cli_fails(server, &["provisioning", "outbound", "status", "Payroll"]);
    assert!(gone.contains("not"), "{gone}");
}

#[test]
fn outbound_provisioning_reaches_scim2_server_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, data.path(), &[PRIVATE_TARGETS]);
    outbound_provisioning(&server);
    server.stop();
}

#[test]
fn outbound_provisioning_reaches_scim2_server_on_postgres() {
    let port = tessera_testkit::server::free_port();
    let node = PostgresNode::new(&format!("http://localhost:{port}"));
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_at(
        BINARY,
        &format!("127.0.0.1:{port}"),
        data.path(),
        &[node.env().as_slice(), &[PRIVATE_TARGETS]].concat(),
    );
    outbound_provisioning(&server);
    server.stop();
}

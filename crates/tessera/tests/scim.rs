//! SCIM 2.0 interop against the real binary, on SQLite and PostgreSQL: a
//! provisioning token made with the CLI, then `e2e/scim.py`, where scim2-tester
//! (python-scim) runs every check it has and httpx2 drives the filters, paging,
//! PATCH shapes, ETags and errors scim2-tester does not test. Needs the pinned
//! Python environment `.ci/run` makes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tessera_testkit::{PostgresNode, Server};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera");

/// Every scenario `e2e/scim.py` must report as passed.
const SCENARIOS: [&str; 9] = [
    "scim2TesterPassesEveryCheck",
    "filtersWithEveryOperator",
    "sortingAndPaging",
    "patchShapesEntraAndOktaSend",
    "groupsAndMembers",
    "etagsAndIfMatch",
    "errorsSayWhatWentWrong",
    "bulkWithReferencesAndFailOnErrors",
    "privilegedUsersAndEdgeCases",
];

fn python() -> PathBuf {
    tessera_testkit::venv_bin("python")
}

/// Runs the CLI as the bootstrap administrator.
fn cli(server: &Server, args: &[&str]) -> Value {
    server.cli(BINARY, args)
}

/// Runs the CLI, which must fail; what it says.
fn cli_fails(server: &Server, args: &[&str]) -> String {
    server.cli_fails(BINARY, args)
}

/// A client-credentials token for the SCIM API, or the token endpoint's error.
fn client_token(server: &Server, client_id: &str, secret: &str) -> Value {
    let output = Command::new(python())
        .arg("-c")
        .arg(
            "import sys, json, httpx2\n\
             r = httpx2.post(sys.argv[1] + '/oauth2/token', data={'grant_type': 'client_credentials', \
             'client_id': sys.argv[2], 'client_secret': sys.argv[3], 'scope': 'urn:tessera:scim/.default'})\n\
             print(json.dumps(r.json()))",
        )
        .arg(&server.issuer)
        .arg(client_id)
        .arg(secret)
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn run_script(server: &Server, token: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/scim.py");
    let output = Command::new(python())
        .arg(script)
        .arg(format!("{}/scim/v2", server.issuer))
        .arg(token)
        .output()
        .expect("run e2e/scim.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for scenario in SCENARIOS {
        assert!(
            stdout.lines().any(|l| l == format!("PASS {scenario}")),
            "{scenario} did not pass:\n{stdout}\n{stderr}\n--- server ---\n{}",
            server.output()
        );
    }
    assert!(output.status.success(), "{stdout}\n{stderr}");
}

fn status_of(server: &Server, token: &str) -> String {
    let refused = Command::new(python())
        .arg("-c")
        .arg("import sys, httpx2; r = httpx2.get(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]}); print(r.status_code)")
        .arg(format!("{}/scim/v2/Users", server.issuer))
        .arg(token)
        .output()
        .unwrap();
    String::from_utf8_lossy(&refused.stdout).trim().to_string()
}

/// An application provisions with OAuth client credentials once the provisioning
/// settings name it, and no longer once they do not.
fn run_client_credentials(server: &Server) {
    let app = cli(
        server,
        &["apps", "create", "--display-name", "HR connector"],
    );
    let app_id = app["appId"].as_str().unwrap();
    cli(server, &["sps", "create", "--app-id", app_id]);
    let secret = cli(server, &["apps", "add-secret", "HR connector"]);
    let secret = secret["secretText"].as_str().unwrap();
    let refused = client_token(server, app_id, secret);
    assert_eq!(refused["error"], "unauthorized_client", "{refused}");
    cli(server, &["provisioning", "clients", "add", "HR connector"]);
    let token = client_token(server, app_id, secret);
    let access_token = token["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{token}"));
    run_script(server, access_token);
    cli(
        server,
        &["provisioning", "clients", "remove", "HR connector"],
    );
    assert_eq!(
        status_of(server, access_token),
        "401",
        "a removed client's token is refused at once"
    );
}

fn run_scim_checks(server: &Server) {
    cli(
        server,
        &[
            "provisioning",
            "settings",
            "--default-domain",
            "provisioned.example.com",
        ],
    );
    let token = cli(
        server,
        &["provisioning", "tokens", "create", "--name", "scim2-tester"],
    );
    let secret = token["secret"].as_str().unwrap();
    assert!(secret.starts_with("tsr_scim_"), "{token}");
    let listed = cli(server, &["provisioning", "tokens", "list"]);
    assert!(listed.to_string().contains("scim2-tester") && !listed.to_string().contains(secret));
    run_script(server, secret);
    // A deleted token no longer opens the SCIM API.
    let id = token["id"].as_str().unwrap();
    cli(server, &["provisioning", "tokens", "delete", id]);
    assert_eq!(status_of(server, secret), "401");
    run_client_credentials(server);
    run_mapping_commands(server);
    run_hr_commands(server);
    run_lifecycle_commands(server);
}

/// Lifecycle workflows from the CLI: made from a file, listed, shown with their
/// runs, refused when they do not hold, deleted.
fn run_lifecycle_commands(server: &Server) {
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("leavers.json");
    std::fs::write(
        &file,
        r#"{"displayName": "Leavers", "category": "leaver",
            "trigger": {"kind": "timeBased", "attribute": "employeeLeaveDateTime", "offsetDays": 0},
            "tasks": [{"task": "disableUser"}, {"task": "revokeSessions"}]}"#,
    )
    .unwrap();
    let made = cli(server, &["lifecycle", "create", file.to_str().unwrap()]);
    let id = made["id"].as_str().unwrap().to_string();
    let listed = cli(server, &["lifecycle", "list"]);
    assert!(listed.to_string().contains("Leavers"), "{listed}");
    let runs = cli(server, &["lifecycle", "runs", &id]);
    assert!(runs["value"].is_array(), "{runs}");
    std::fs::write(
        &file,
        r#"{"displayName": "Leavers", "category": "leaver",
            "trigger": {"kind": "timeBased", "attribute": "employeeLeaveDateTime"},
            "tasks": [{"task": "enableUser"}]}"#,
    )
    .unwrap();
    let refused = cli_fails(
        server,
        &["lifecycle", "replace", &id, file.to_str().unwrap()],
    );
    assert!(refused.contains("not a task of a leaver"), "{refused}");
    cli(server, &["lifecycle", "delete", &id]);
}

/// HR imports from the CLI: settings, a preview, a run, a held run approved.
fn run_hr_commands(server: &Server) {
    let files = tempfile::tempdir().unwrap();
    let settings = files.path().join("hr.json");
    std::fs::write(
        &settings,
        r#"{"format": "json", "maxChangedPercent": 0, "mapping": {"attributes": [
            {"target": "employeeId", "expression": "[id]"},
            {"target": "userPrincipalName", "expression": "ToLower([name.first])@provisioned.example.com"},
            {"target": "displayName", "expression": "Join(\" \", [name.first], [name.last])"},
            {"target": "jobTitle", "expression": "[title]"}
        ]}}"#,
    )
    .unwrap();
    let export = files.path().join("export.json");
    let write_export = |title: &str| {
        std::fs::write(
            &export,
            format!(r#"{{"workers": [{{"id": "E1", "name": {{"first": "Hedy", "last": "Lamarr"}}, "title": "{title}"}}]}}"#),
        )
        .unwrap();
    };
    write_export("Inventor");
    let saved = cli(
        server,
        &[
            "provisioning",
            "hr",
            "settings",
            "--file",
            settings.to_str().unwrap(),
        ],
    );
    assert_eq!(saved["hrImport"]["anchor"], "employeeId", "{saved}");
    let export_arg = export.to_str().unwrap();
    let preview = cli(server, &["provisioning", "hr", "preview", export_arg]);
    assert_eq!(preview["creates"], 1, "{preview}");
    assert_eq!(preview["rows"][0]["action"], "create", "{preview}");
    let mut run = cli(server, &["provisioning", "hr", "run", export_arg]);
    // Users the SCIM clients made may have employee ids already: then even a
    // new user is a change past 0%, held until approved.
    if run["state"] == "held" {
        assert_eq!(
            run["results"][0]["action"], "create",
            "a held run shows its rows: {run}"
        );
        let id = run["id"].as_str().unwrap().to_string();
        run = cli(server, &["provisioning", "hr", "approve", &id]);
    }
    assert_eq!(run["state"], "completed", "{run}");
    assert_eq!(run["creates"], 1, "{run}");
    // Any change is over 0%: held until approved.
    write_export("Actress");
    let held = cli(server, &["provisioning", "hr", "run", export_arg]);
    assert_eq!(held["state"], "held", "{held}");
    let id = held["id"].as_str().unwrap();
    let approved = cli(server, &["provisioning", "hr", "approve", id]);
    assert_eq!(approved["state"], "completed", "{approved}");
    assert_eq!(approved["updates"], 1, "{approved}");
    let shown = cli(server, &["provisioning", "hr", "show", id]);
    assert_eq!(shown["results"][0]["status"], "done", "{shown}");
    let runs = cli(server, &["provisioning", "hr", "runs"]);
    assert_eq!(runs["value"][0]["id"], id, "newest first: {runs}");
}

/// The attribute mapping from the CLI: shown, previewed, replaced (the other
/// settings kept), refused whole when it does not hold, and reset.
fn run_mapping_commands(server: &Server) {
    let shown = cli(server, &["provisioning", "mapping", "show"]);
    assert_eq!(shown["isDefault"], true, "{shown}");
    assert!(shown["functions"].to_string().contains("SelectUniqueValue"));
    let files = tempfile::tempdir().unwrap();
    let mapping = files.path().join("mapping.json");
    std::fs::write(
        &mapping,
        r#"{"attributes": [
            {"target": "userPrincipalName", "expression": "ToLower(Join(\".\", [name.givenName], [name.familyName]))@provisioned.example.com"},
            {"target": "displayName", "expression": "Coalesce([displayName], [userName])"},
            {"target": "department", "expression": "Switch([title], \"Field\", \"Guide\", \"Tours\")"}
        ]}"#,
    )
    .unwrap();
    let user = files.path().join("user.json");
    std::fs::write(
        &user,
        r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ae",
            "name": {"givenName": "Ann", "familyName": "Ek"}, "title": "Guide"}"#,
    )
    .unwrap();
    let mapping_arg = mapping.to_str().unwrap();
    let user_arg = user.to_str().unwrap();
    let preview = cli(
        server,
        &[
            "provisioning",
            "mapping",
            "preview",
            user_arg,
            "--mapping",
            mapping_arg,
        ],
    );
    assert_eq!(
        preview["attributes"],
        serde_json::json!({"userPrincipalName": "ann.ek@provisioned.example.com",
                           "displayName": "ae", "department": "Tours"}),
        "{preview}"
    );
    cli(server, &["provisioning", "mapping", "set", mapping_arg]);
    let shown = cli(server, &["provisioning", "mapping", "show"]);
    assert_eq!(shown["isDefault"], false, "{shown}");
    let settings = cli(server, &["provisioning", "settings"]);
    assert_eq!(
        settings["defaultDomain"], "provisioned.example.com",
        "{settings}"
    );
    // The tenant's mapping now applies to what is previewed without one.
    let preview = cli(server, &["provisioning", "mapping", "preview", user_arg]);
    assert_eq!(preview["attributes"]["department"], "Tours", "{preview}");
    std::fs::write(
        &mapping,
        r#"{"attributes": [{"target": "displayName", "expression": "ToLower("}]}"#,
    )
    .unwrap();
    let refused = cli_fails(server, &["provisioning", "mapping", "set", mapping_arg]);
    assert!(
        refused.contains("userMapping.attributes[0].expression")
            && refused.contains("userPrincipalName must be mapped"),
        "{refused}"
    );
    cli(server, &["provisioning", "mapping", "reset"]);
    let shown = cli(server, &["provisioning", "mapping", "show"]);
    assert_eq!(shown["isDefault"], true, "{shown}");
}

#[test]
fn scim_clients_nobody_here_wrote_pass_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, data.path(), &[]);
    run_scim_checks(&server);
    server.stop();
}

#[test]
fn scim_clients_nobody_here_wrote_pass_on_postgres() {
    let port = tessera_testkit::server::free_port();
    let node = PostgresNode::new(&format!("http://localhost:{port}"));
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_at(
        BINARY,
        &format!("127.0.0.1:{port}"),
        data.path(),
        &node.env(),
    );
    run_scim_checks(&server);
    server.stop();
}

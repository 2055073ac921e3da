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
    let python = std::env::var_os("TESSERA_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/tessera/venv"))
        })
        .expect("neither TESSERA_VENV nor HOME is set")
        .join("bin/python");
    assert!(
        python.exists(),
        "the test virtual environment is missing at {}: .ci/run makes it",
        python.display()
    );
    python
}

/// Runs the CLI as the bootstrap administrator.
fn cli(server: &Server, args: &[&str]) -> Value {
    let output = Command::new(BINARY)
        .args(args)
        .args(["--output", "json"])
        .env("TESSERA_SERVER", &server.url)
        .env("TESSERA_TOKEN", server.token.as_deref().unwrap())
        .env(
            "TESSERA_CONFIG_DIR",
            std::env::temp_dir().join("tessera-scim-test-cli"),
        )
        .output()
        .expect("run tessera");
    assert!(
        output.status.success(),
        "tessera {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
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
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/scim.py");
    let output = Command::new(python())
        .arg(script)
        .arg(format!("{}/scim/v2", server.issuer))
        .arg(secret)
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
    // A deleted token no longer opens the SCIM API.
    let id = token["id"].as_str().unwrap();
    cli(server, &["provisioning", "tokens", "delete", id]);
    let refused = Command::new(python())
        .arg("-c")
        .arg("import sys, httpx2; r = httpx2.get(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]}); print(r.status_code)")
        .arg(format!("{}/scim/v2/Users", server.issuer))
        .arg(secret)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&refused.stdout).trim(), "401");
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

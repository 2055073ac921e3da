//! The OpenAPI document is true: schemathesis (pinned in `e2e/requirements.txt`,
//! installed by `.ci/run` into `$HOME/.cache/tessera/venv`) generates requests from
//! `/api/v1/openapi.json`, valid and invalid, sends them to the real binary with the
//! bootstrap token, and checks every answer against the document: no server error,
//! only documented status codes, content types and headers, bodies that match their
//! schemas, 405 with `Allow` for undocumented methods. On SQLite and on PostgreSQL.
//!
//! Two of schemathesis's checks are left out, because the document cannot say what
//! they ask of it: `positive_data_acceptance` (a request that fits the schema must
//! succeed: a reference to an object that does not exist, a secret the tenant's
//! credential policy forbids, or a name already taken fit any schema and are still
//! refused) and `negative_data_rejection` (the reverse, for leniencies such as a
//! merge patch accepting what a create would refuse).
//!
//! Nothing is excluded: the fuzzer creates and deletes objects in a throwaway
//! database, but cannot lock itself out, since it never learns the ids of the
//! bootstrap token or of the break-glass administrator (there is no stateful phase:
//! the document declares no links, so every id it sends is made up or one it created).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use tessera_testkit::{PostgresNode, Server};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera");

/// Requests generated per operation and phase: enough to find what a wrong schema
/// lets through, few enough for a run of about a minute per backend.
const EXAMPLES_PER_OPERATION: &str = "15";

#[test]
fn the_openapi_document_is_true_on_sqlite() {
    fuzz(&[]);
}

#[test]
fn the_openapi_document_is_true_on_postgres() {
    // PostgreSQL needs the public URL (the issuer) set, so the port is chosen first.
    let port = tessera_testkit::server::free_port();
    let node = PostgresNode::new(&format!("http://localhost:{port}"));
    fuzz_at(&format!("127.0.0.1:{port}"), &node.env());
}

/// Issue 11: a strict validator (authlib's, from the same pinned environment)
/// accepts both discovery documents (RFC 8414 §2 needs the signing algorithms of
/// every endpoint that takes `private_key_jwt`).
#[test]
fn authlib_accepts_the_discovery_documents() {
    let python = venv().join("bin/python");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, data.path(), &[]);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/discovery_authlib.py");
    let output = Command::new(&python)
        .arg(script)
        .arg(&server.url)
        .output()
        .expect("start python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.matches("ok /.well-known/").count() == 2,
        "authlib refused the discovery documents:\n{stdout}\n{stderr}"
    );
    server.stop();
}

fn venv() -> PathBuf {
    std::env::var_os("TESSERA_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/tessera/venv"))
        })
        .expect("neither TESSERA_VENV nor HOME is set")
}

fn schemathesis() -> PathBuf {
    let venv = std::env::var_os("TESSERA_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/tessera/venv"))
        })
        .expect("neither TESSERA_VENV nor HOME is set");
    let program = venv.join("bin/schemathesis");
    assert!(
        program.exists(),
        "schemathesis is missing at {}: install it with \
         `python3 -m venv {venv} && {venv}/bin/pip install -r e2e/requirements.txt` (.ci/run does)",
        program.display(),
        venv = venv.display(),
    );
    program
}

fn fuzz(env: &[(&str, &str)]) {
    fuzz_at("127.0.0.1:0", env);
}

fn fuzz_at(listen: &str, env: &[(&str, &str)]) {
    let program = schemathesis();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_at(BINARY, listen, data.path(), env);
    let token = server
        .token
        .clone()
        .expect("a fresh server prints its bootstrap token");
    let reports = tempfile::tempdir().unwrap();
    let output = Command::new(&program)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.url))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--exclude-checks",
            "positive_data_acceptance,negative_data_rejection",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", EXAMPLES_PER_OPERATION])
        // One worker: with several, hypothesis sometimes stops on an error of its own
        // (Python's `ast` used from several threads), which is not the server's.
        .args(["--workers", "1", "--request-timeout", "30"])
        .args(["--generation-database", "none", "--no-color"])
        // The token is sent, never printed: schemathesis filters Authorization in its
        // output (the default), and the report directory is thrown away.
        .arg("--report-dir")
        .arg(reports.path())
        .env("NO_COLOR", "1")
        // schemathesis keeps a cache in its working directory: the throwaway one.
        .current_dir(reports.path())
        .output()
        .expect("start schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found requests the server answers otherwise than its OpenAPI document says \
         ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("Tested:") && !stdout.contains("Tested: 0"),
        "schemathesis tested nothing:\n{stdout}"
    );
    server.stop();
}

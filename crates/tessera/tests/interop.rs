//! Protocol interop with client libraries nobody here wrote, against the real
//! binary: npm `openid-client` (an OpenID-certified relying-party library) and
//! `jose` (`e2e/oauth.mjs`). Needs `node` and `npm ci --prefix e2e` (`.ci/run` does it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use support::Server;

mod support;

#[test]
fn openid_client_gets_client_credentials_tokens_that_jose_verifies() {
    let e2e = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e");
    assert!(
        e2e.join("node_modules/openid-client").exists(),
        "run `npm ci --prefix e2e` first (.ci/run does): openid-client is missing"
    );
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let url = server.url.replace("127.0.0.1", "localhost");
    let output = Command::new("node")
        .arg("oauth.mjs")
        .current_dir(&e2e)
        .env("TESSERA_URL", &url)
        .env("TESSERA_TOKEN", server.token.as_deref().unwrap())
        .output()
        .expect("node is missing: install Node.js 20 or later");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "interop tests failed:\n{stdout}\n{stderr}"
    );
    for scenario in [
        "clientCredentialsWithBasic",
        "clientCredentialsWithPost",
        "wrongSecretIsInvalidClient",
    ] {
        assert!(
            stdout.contains(&format!("ok {scenario}")),
            "{scenario} did not run:\n{stdout}"
        );
    }
    server.stop();
}

//! Browser tests: the real `tessera serve`, driven by Debian's Chromium through
//! playwright-core (`e2e/signin.mjs`): password + TOTP, passkey registration and
//! username-less sign-in with Chromium's virtual authenticator, temporary access
//! pass onboarding to a passkey, and an administrator revoking sessions.
//!
//! Needs `node`, `/usr/bin/chromium` (or `CHROMIUM`) and `npm ci` in `e2e/`, which
//! `.ci/run` provides. Without them the test fails and says what is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use support::Server;

mod support;

fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e")
}

#[test]
fn sign_in_pages_in_a_real_browser() {
    let e2e = e2e_dir();
    assert!(
        e2e.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix e2e` first (.ci/run does): playwright-core is missing"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium is missing: apt-get install -y chromium (or set CHROMIUM)"
    );
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    // WebAuthn needs a host name: the server's public URL is http://localhost:PORT.
    let url = server.url.replace("127.0.0.1", "localhost");
    let output = Command::new("node")
        .arg("signin.mjs")
        .current_dir(&e2e)
        .env("TESSERA_URL", &url)
        .env("TESSERA_TOKEN", server.token.as_deref().unwrap())
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node is missing: install Node.js 20 or later");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser tests failed:\n{stdout}\n{stderr}"
    );
    for scenario in [
        "passwordAndTotp",
        "passkeyUsernameless",
        "tapOnboarding",
        "adminRevokesSessions",
    ] {
        assert!(
            stdout.contains(&format!("ok {scenario}")),
            "{scenario} did not run:\n{stdout}"
        );
    }
    server.stop();
}

//! Protocol interop with client libraries nobody here wrote, against the real
//! binary: npm `openid-client` (an OpenID-certified relying-party library) and
//! `jose` (`e2e/oauth.mjs`). Needs `node` and `npm ci --prefix e2e` (`.ci/run` does it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use support::Server;

mod support;

/// Every scenario `e2e/oauth.mjs` must report as passed.
const SCENARIOS: [&str; 34] = [
    "clientCredentialsWithBasic",
    "clientCredentialsWithPost",
    "wrongSecretIsInvalidClient",
    "discoveryDocument",
    "authorizationCodeWithPkce",
    "reusedCodeIsRefusedAndRevokesItsTokens",
    "singleSignOnThenRefreshRotationAndReuseDetection",
    "introspectionAndRevocation",
    "publicClientCodeFlow",
    "wrongVerifierAndWrongRedirectUri",
    "mixUpDefenceRejectsAForeignIssuer",
    "promptNoneWithoutSessionIsLoginRequired",
    "formPostResponseMode",
    "clientCredentialsWithPrivateKeyJwt",
    "replayedExpiredOrForeignAssertionsAreRefused",
    "pushedAuthorizationRequest",
    "applicationsCanRequirePar",
    "dpopBoundTokensAndReplayedProofs",
    "publicClientRefreshTokensAreBoundToTheDpopKey",
    "dpopOnPushedAuthorizationRequests",
    "deviceAuthorizationGrant",
    "workloadIdentityFederation",
    "tokenExchangeOnBehalfOfAUser",
    "assignmentRequiredAndAppRoles",
    "idTokenAlgorithmPerApplication",
    "authenticationContextsForStepUp",
    "negativeCasesAtTheEndpoints",
    "consentByUsersAndAdministrators",
    "mutualTlsClientAuthAndCertificateBoundTokens",
    "dynamicClientRegistrationOffByDefault",
    "rpInitiatedAndBackChannelLogout",
    "introspectionFollowsTheGrant",
    "maxAgeZeroAlwaysSignsInAgain",
    "logoutByPostWithoutTheCookie",
];

#[test]
fn openid_client_interop_on_sqlite() {
    run_interop("127.0.0.1:0", &[]);
}

/// Client certificates reach the server as a trusted reverse proxy passes them on.
const PROXY: [(&str, &str); 2] = [
    (
        "TESSERA_CLIENT_CERTIFICATE_PROXY__HEADER",
        "X-SSL-Client-Cert",
    ),
    (
        "TESSERA_CLIENT_CERTIFICATE_PROXY__TRUSTED_PROXIES",
        "[\"127.0.0.1\"]",
    ),
];

#[test]
fn openid_client_interop_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (name, _guard) = runtime.block_on(tessera_store_sql::testing::create_postgres_database());
    let url = tessera_store_sql::testing::postgres_url_for(&name);
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), [7u8; 32]).unwrap();
    // PostgreSQL needs the public URL (the issuer) set, so the port is chosen first.
    let port = support::free_port();
    let public_url = format!("http://localhost:{port}");
    run_interop(
        &format!("127.0.0.1:{port}"),
        &[
            ("TESSERA_DATABASE_URL", url.as_str()),
            ("TESSERA_SECRETS_KEY_FILE", key.path().to_str().unwrap()),
            ("TESSERA_PUBLIC_URL", public_url.as_str()),
        ],
    );
}

fn run_interop(listen: &str, env: &[(&str, &str)]) {
    let e2e = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e");
    assert!(
        e2e.join("node_modules/openid-client").exists(),
        "run `npm ci --prefix e2e` first (.ci/run does): openid-client is missing"
    );
    let data = tempfile::tempdir().unwrap();
    let mut env = env.to_vec();
    env.extend(PROXY);
    let server = Server::start_at(listen, data.path(), &env);
    // Clients go to the issuer the server prints (by default http://localhost:<port>).
    let url = server.issuer.clone();
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
    for scenario in SCENARIOS {
        assert!(
            stdout.contains(&format!("ok {scenario}")),
            "{scenario} did not run:\n{stdout}"
        );
    }
    server.stop();
}

//! Protocol interop with client libraries nobody here wrote, against the real
//! binary: npm `openid-client` (an OpenID-certified relying-party library) and
//! `jose` (`e2e/oauth.mjs`). Needs `node` and `npm ci --prefix e2e` (`.ci/run` does it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tessera_testkit::server::{require_npm_package, run_e2e_script};
use tessera_testkit::{PostgresNode, Server};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera");

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
    // PostgreSQL needs the public URL (the issuer) set, so the port is chosen first.
    let port = tessera_testkit::server::free_port();
    let node = PostgresNode::new(&format!("http://localhost:{port}"));
    run_interop(&format!("127.0.0.1:{port}"), &node.env());
}

fn run_interop(listen: &str, env: &[(&str, &str)]) {
    require_npm_package("openid-client");
    let data = tempfile::tempdir().unwrap();
    let mut env = env.to_vec();
    env.extend(PROXY);
    let server = Server::start_at(BINARY, listen, data.path(), &env);
    // Clients go to the issuer the server prints (by default http://localhost:<port>).
    run_e2e_script(
        "oauth.mjs",
        &[
            ("TESSERA_URL", &server.issuer),
            ("TESSERA_TOKEN", server.token.as_deref().unwrap()),
        ],
        &SCENARIOS,
    );
    server.stop();
}

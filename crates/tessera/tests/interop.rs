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

/// Every scenario `e2e/saml.mjs` must report as passed.
const SAML_SCENARIOS: [&str; 16] = [
    "pysaml2RedirectBindingWithSignedRequest",
    "pysaml2PostBindingWithSignedRequest",
    "pysaml2IdpInitiated",
    "applicationMetadataSaysRequestsMustBeSigned",
    "python3SamlRedirectBindingWithSignedRequest",
    "python3SamlPostBindingWithSignedRequest",
    "python3SamlEncryptedAssertion",
    "pysaml2EncryptedAssertion",
    "nodeSamlRedirectBinding",
    "nodeSamlPostBinding",
    "nodeSamlIdpInitiated",
    "unsignedRequestRefusedWhereSigningIsRequired",
    "replayedRequestRefused",
    "unregisteredConsumerServiceRefused",
    "isPassiveWithoutSessionAnswersNoPassive",
    "forceAuthnSignsInAgain",
];

/// SAML service-provider libraries nobody here wrote (pysaml2, python3-saml,
/// @node-saml/node-saml) sign in through Tessera as the identity provider
/// (`e2e/saml.mjs`, `e2e/saml_sp.py`).
#[test]
fn saml_service_providers_interop_on_sqlite() {
    require_npm_package("@node-saml/node-saml");
    let python = std::env::var_os("TESSERA_VENV")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| std::path::PathBuf::from(home).join(".cache/tessera/venv"))
        })
        .expect("neither TESSERA_VENV nor HOME is set")
        .join("bin/python");
    assert!(
        python.exists(),
        "the test virtual environment is missing at {}: .ci/run makes it",
        python.display()
    );
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_at(BINARY, "127.0.0.1:0", data.path(), &[]);
    run_e2e_script(
        "saml.mjs",
        &[
            ("TESSERA_URL", &server.issuer),
            ("TESSERA_TOKEN", server.token.as_deref().unwrap()),
            ("TESSERA_PYTHON", &python.to_string_lossy()),
        ],
        &SAML_SCENARIOS,
    );
    server.stop();
}

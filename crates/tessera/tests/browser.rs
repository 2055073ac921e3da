//! Browser tests: the real `tessera serve`, driven by Debian's Chromium through
//! playwright-core (`e2e/signin.mjs`): password + TOTP, passkey registration and
//! username-less sign-in with Chromium's virtual authenticator, temporary access
//! pass onboarding to a passkey, and an administrator revoking sessions.
//!
//! Needs `node`, `/usr/bin/chromium` (or `CHROMIUM`) and `npm ci` in `e2e/`, which
//! `.ci/run` provides. Without them the test fails and says what is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::process::Command;

use tessera_testkit::Server;
use tessera_testkit::server::{require_npm_package, run_e2e_script};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera");

/// Chromium, or a failed test that says how to install it.
fn chromium() -> String {
    require_npm_package("playwright-core");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium is missing: apt-get install -y chromium (or set CHROMIUM)"
    );
    chromium
}

/// Runs an `e2e/` script against a fresh server and checks that every scenario ran.
fn run_browser_script(script: &str, scenarios: &[&str]) {
    run_browser_script_with(script, scenarios, &[]);
}

/// [`run_browser_script`] against a server started with `env`.
fn run_browser_script_with(script: &str, scenarios: &[&str], env: &[(&str, &str)]) {
    let chromium = chromium();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(BINARY, data.path(), env);
    // WebAuthn needs a host name: the issuer the server prints, http://localhost:PORT.
    run_e2e_script(
        script,
        &[
            ("TESSERA_URL", &server.issuer),
            ("TESSERA_TOKEN", server.token.as_deref().unwrap()),
            ("CHROMIUM", &chromium),
        ],
        scenarios,
    );
    server.stop();
}

#[test]
fn sign_in_pages_in_a_real_browser() {
    run_browser_script(
        "signin.mjs",
        &[
            "passwordAndTotp",
            "passkeyUsernameless",
            "tapOnboarding",
            "adminRevokesSessions",
        ],
    );
}

/// `e2e/console.mjs`: the admin console as an administrator uses it (first sign-in
/// with the bootstrap pass, a passkey from then on; users and a dynamic group; a
/// unit-scoped administrator; revoking sessions), with axe-core on every page and
/// screenshots at desktop and phone width in `target/tmp/console-screenshots`.
#[test]
fn admin_console_in_a_real_browser() {
    let chromium = chromium();
    let data = tempfile::tempdir().unwrap();
    // Outbound provisioning's target (scim2-server) listens on localhost.
    // Identity Protection's pages need a detection: a Tor range, and the
    // browser's address as loopback's proxy header gives it.
    let anonymous = data.path().join("anonymous.txt");
    std::fs::write(&anonymous, "185.220.101.0/24 tor exit\n").unwrap();
    let server = Server::start(
        BINARY,
        &data.path().join("data"),
        &[
            ("TESSERA_PROVISIONING_PRIVATE_TARGETS", "true"),
            ("TESSERA_TRUSTED_PROXIES", "[\"127.0.0.1\", \"::1\"]"),
            (
                "TESSERA_RISK_ANONYMOUS_IP_LIST",
                anonymous.to_str().unwrap(),
            ),
        ],
    );
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let artifacts = artifacts.to_string_lossy().to_string();
    run_e2e_script(
        "console.mjs",
        &[
            ("TESSERA_URL", &server.issuer),
            ("TESSERA_TOKEN", server.token.as_deref().unwrap()),
            ("TESSERA_ADMIN", server.admin.as_deref().unwrap()),
            (
                "TESSERA_CONSOLE_PASS",
                server.console_pass.as_deref().unwrap(),
            ),
            ("TESSERA_ARTIFACTS", &artifacts),
            ("CHROMIUM", &chromium),
        ],
        &[
            "signInWithAPasskey",
            "theConsoleClientAsksOnlyForTheConsole",
            "createAUserAndADynamicGroup",
            "aScopedAdministratorStaysInTheirUnit",
            "siemExport",
            "sharedSignals",
            "findAFailedSignInByItsCorrelationId",
            "anEndUserUsesMyAccountAndMyApps",
            "registerAnApplication",
            "rolesAndUnits",
            "devices",
            "importTheCorpusAndRunWhatIf",
            "revokeAUsersSessions",
            "identityProtection",
            "provisioning",
            "tenantSettings",
        ],
    );
    println!("console screenshots: {artifacts}");
    server.stop();
}

/// `e2e/pim.mjs`: an eligible User Administrator activates in My Account (a
/// step-up to her passkey, a justification), her approver approves in Approvals,
/// she creates a user in the console, and after the activation's end (a minute)
/// the next attempt is refused; a protected deletion in the console steps up first.
#[test]
fn privileged_identity_management_in_a_real_browser() {
    run_browser_script(
        "pim.mjs",
        &[
            "eligibleAdministratorActivatesWithApproval",
            "protectedActionStepUpInTheConsole",
        ],
    );
}

/// `e2e/conditional-access.mjs`: step-up to a passkey, report-only, a block page,
/// terms of use, a risky user's password change, a sign-in through an anonymizer
/// remediated under risk policies, legacy clients refused the password grant, and
/// tokens refused outside their locations (strict location enforcement).
/// The server believes loopback's `X-Forwarded-For` (the browser's address is
/// set per scenario) and lists a Tor range as anonymous.
#[test]
fn conditional_access_in_a_real_browser() {
    let lists = tempfile::tempdir().unwrap();
    let anonymous = lists.path().join("anonymous.txt");
    std::fs::write(&anonymous, "185.220.101.0/24 tor exit\n").unwrap();
    run_browser_script_with(
        "conditional-access.mjs",
        &[
            "stepUpToAPasskey",
            "reportOnlyBlockIsRecorded",
            "blockShowsAPageWithACorrelationId",
            "termsOfUseAreAcceptedOnce",
            "riskyUserChangesPassword",
            "anonymizerSignInIsRemediated",
            "legacyClientsAreBlocked",
            "strictLocationRefusesTokensOutside",
        ],
        &[
            ("TESSERA_TRUSTED_PROXIES", "[\"127.0.0.1\", \"::1\"]"),
            (
                "TESSERA_RISK_ANONYMOUS_IP_LIST",
                anonymous.to_str().unwrap(),
            ),
        ],
    );
}

/// Writes the test PKI for `e2e/certificates.mjs` and the server's TLS files.
fn write_pki(dir: &std::path::Path) {
    use tessera_authn::x509::test_pki::{LeafSpec, crl_pem, intermediate, leaf, root, server};
    const CAC_POLICY: &[u64] = &[2, 16, 840, 1, 101, 2, 1, 11, 42];
    let contoso = root("Contoso Test Root CA");
    let issuing = intermediate("Contoso Test Issuing CA", &contoso);
    let stranger_root = root("Stranger Root CA");
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write("root.pem", &contoso.pem());
    write("issuing.pem", &issuing.pem());
    write("stranger-root.pem", &stranger_root.pem());
    write("issuing-crl.pem", &crl_pem(&issuing, &[66], 7));
    let (cert, key) = server(&["localhost"], &contoso);
    write("server.pem", &cert);
    write("server-key.pem", &key);
    let spec = |serial, policies: &'static [&'static [u64]]| LeafSpec {
        upn: "cac.user@contoso.com",
        serial,
        policies,
        days: 30,
        client_auth: true,
    };
    // A second issuing CA whose certificates are checked with OCSP (no CRL).
    let ocsp_issuing = intermediate("Contoso OCSP Issuing CA", &contoso);
    write("ocsp-issuing.pem", &ocsp_issuing.pem());
    write("ocsp-issuing-key.pem", &ocsp_issuing.key_pem);
    write(
        "ocsp-index.txt",
        "V\t301231000000Z\t\t14\tunknown\t/CN=good\nR\t301231000000Z\t251101000000Z\t15\tunknown\t/CN=revoked\n",
    );
    for (name, spec, issuer) in [
        ("cac", spec(10, &[CAC_POLICY]), &issuing),
        ("revoked", spec(66, &[CAC_POLICY]), &issuing),
        ("plain", spec(11, &[]), &issuing),
        ("stranger", spec(12, &[CAC_POLICY]), &stranger_root),
        ("ocsp-good", spec(0x14, &[CAC_POLICY]), &ocsp_issuing),
        ("ocsp-revoked", spec(0x15, &[CAC_POLICY]), &ocsp_issuing),
    ] {
        let certificate = leaf(spec, issuer);
        write(&format!("{name}.pem"), &certificate.pem);
        write(&format!("{name}-key.pem"), &certificate.key_pem);
    }
}

#[test]
fn certificate_sign_in_over_mutual_tls_in_a_real_browser() {
    let chromium = chromium();
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    write_pki(&pki);
    let cert = pki.join("server.pem");
    let key = pki.join("server-key.pem");
    let server = Server::start_tls(
        BINARY,
        &work.path().join("data"),
        (&cert, &key),
        &[("TESSERA_TLS__CLIENT_CERTIFICATES", "true")],
    );
    let url = server.issuer.clone();
    assert!(url.starts_with("https://localhost:"));
    // OpenSSL's OCSP responder answers for the OCSP issuing CA.
    let ocsp_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut responder = Command::new("openssl")
        .args(["ocsp", "-index"])
        .arg(pki.join("ocsp-index.txt"))
        .args(["-port", &ocsp_port.to_string()])
        .arg("-rsigner")
        .arg(pki.join("ocsp-issuing.pem"))
        .arg("-rkey")
        .arg(pki.join("ocsp-issuing-key.pem"))
        .arg("-CA")
        .arg(pki.join("ocsp-issuing.pem"))
        .args(["-ndays", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    // Wait for it to listen (a probe connection would block this single-threaded
    // responder), then keep draining its output.
    let (sender, output) = std::sync::mpsc::channel::<String>();
    let pipes: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(responder.stdout.take().unwrap()),
        Box::new(responder.stderr.take().unwrap()),
    ];
    for mut pipe in pipes {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1024];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let _ = sender.send(String::from_utf8_lossy(&buffer[..n]).to_string());
            }
        });
    }
    struct KillOnDrop<'a>(&'a mut std::process::Child);
    impl Drop for KillOnDrop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _responder = KillOnDrop(&mut responder);
    let mut seen = String::new();
    while !seen.contains("waiting for OCSP client connections") {
        let chunk = output
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the OCSP responder did not start");
        seen.push_str(&chunk);
    }
    let ocsp_url = format!("http://127.0.0.1:{ocsp_port}");
    // The admin calls from Node go to a server whose certificate the test made.
    let root = pki.join("root.pem");
    run_e2e_script(
        "certificates.mjs",
        &[
            ("TESSERA_URL", &url),
            ("TESSERA_TOKEN", server.token.as_deref().unwrap()),
            ("TESSERA_PKI", pki.to_str().unwrap()),
            ("OCSP_URL", &ocsp_url),
            ("CHROMIUM", &chromium),
            ("NODE_EXTRA_CA_CERTS", root.to_str().unwrap()),
        ],
        &[
            "cacCertificateReachesPhishingResistantMfa",
            "revokedCertificateRefused",
            "untrustedCertificateRefused",
            "certificateWithoutPolicyIsSingleFactor",
            "ocspGoodCertificateSignsIn",
            "ocspRevokedCertificateRefused",
        ],
    );
    server.stop();
}

/// `e2e/saml-browser.mjs`: SAML single sign-on with node-saml as the service
/// provider: a passkey sign-in, a step-up to the passkey asked by a policy for the
/// SAML application, a block page, and My Apps opening the application.
#[test]
fn saml_single_sign_on_in_a_real_browser() {
    require_npm_package("@node-saml/node-saml");
    run_browser_script(
        "saml-browser.mjs",
        &[
            "passkeySignInToASamlApp",
            "stepUpToAPasskeyForASamlApp",
            "blockedFromASamlApp",
            "myAppsOpensASamlApp",
        ],
    );
}

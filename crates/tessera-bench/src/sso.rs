//! Single sign-on with an existing session, as a browser does it: SAML (an
//! AuthnRequest over the redirect binding, answered with the signed Response's
//! auto-post page) side by side with OpenID Connect (an authorization request
//! answered with a code), in the same run against the same server and user.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::json;

use crate::signin::Browser;
use crate::{Target, report, run_for};

const REDIRECT_URI: &str = "http://localhost:9/bench/callback";
const ACS: &str = "http://localhost:9/bench/acs";

/// An AuthnRequest of the SP `entity_id`, unique by `n`, over the redirect binding.
fn authn_request_query(entity_id: &str, n: usize) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_bench{n}_{now}" Version="2.0" IssueInstant="{}" AssertionConsumerServiceURL="{ACS}"><saml:Issuer>{entity_id}</saml:Issuer></samlp:AuthnRequest>"#,
        tessera_saml::response::instant(now)
    );
    Ok(tessera_saml::binding::write_redirect(
        "SAMLRequest",
        &xml,
        None,
        None,
    )?)
}

pub(crate) async fn single_sign_on(
    target: Arc<Target>,
    seconds: u64,
    concurrency: usize,
) -> anyhow::Result<()> {
    let api = |path: &str| format!("{}/api/v1{path}", target.server);
    // A password user with a session, and one application of each protocol.
    target
        .send(
            target
                .http
                .patch(api("/policies/identitySecurityDefaultsEnforcementPolicy"))
                .json(&json!({ "isEnabled": false })),
        )
        .await?;
    let stamp = std::process::id();
    // Each run its own SP: a server measured at several concurrencies keeps them all.
    let entity_id = format!("https://sp{stamp}.bench.example");
    let (_, upn, password) = target
        .password_user(json!({
            "userPrincipalName": format!("sso.{stamp}@bench.example"),
            "displayName": "SSO Bench",
            "mail": format!("sso.{stamp}@bench.example"),
        }))
        .await?;
    let browser = Browser::new(target.clone())?;
    let session = browser.password_sign_in(&upn, &password).await?;
    let cookie = format!("__Host-tessera-session={session}");

    // Admin consent, so the code comes without a consent page.
    let (client_id, _) = target
        .consented_web_app(&format!("SSO bench OIDC {stamp}"), REDIRECT_URI, "openid")
        .await?;
    let (_, saml) = target
        .send(target.http.post(api("/applications")).json(&json!({
            "displayName": format!("SSO bench SAML {stamp}"),
        })))
        .await?;
    let saml_id = saml["id"].as_str().context("id")?.to_string();
    target
        .send(
            target
                .http
                .post(api("/servicePrincipals"))
                .json(&json!({ "appId": saml["appId"] })),
        )
        .await?;
    target
        .send(
            target
                .http
                .put(api(&format!("/applications/{saml_id}/saml")))
                .json(&json!({
                    "entityId": entity_id,
                    "consumerServices": [{ "url": ACS, "index": 0 }],
                    "attributes": [
                        { "name": "email", "source": { "kind": "user", "attribute": "mail" } },
                        { "name": "groups", "source": { "kind": "groups" } }
                    ],
                })),
        )
        .await?;

    // OpenID Connect: an authorization code for the signed-in user.
    let challenge = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let oidc_browser = browser.http.clone();
    let server = target.server.clone();
    let oidc_cookie = cookie.clone();
    let (latencies, wall) = run_for(seconds, concurrency, move |n| {
        let http = oidc_browser.clone();
        let url = format!(
            "{server}/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&state=s{n}&code_challenge={challenge}&code_challenge_method=S256",
            url::form_urlencoded::byte_serialize(REDIRECT_URI.as_bytes()).collect::<String>()
        );
        let cookie = oidc_cookie.clone();
        async move {
            let start = Instant::now();
            let response = http.get(url).header(COOKIE, cookie).send().await?;
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if !location.starts_with(REDIRECT_URI) || !location.contains("code=") {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                bail!("no code: {status} {location} {}", &body[..body.len().min(300)]);
            }
            Ok::<Duration, anyhow::Error>(start.elapsed())
        }
    })
    .await?;
    let count = latencies.len();
    report("oidc authorization code", latencies, wall, count);

    // SAML: the signed Response to the SP's AuthnRequest.
    let saml_browser = browser.http.clone();
    let server = target.server.clone();
    let (latencies, wall) = run_for(seconds, concurrency, move |n| {
        let http = saml_browser.clone();
        let server = server.clone();
        let cookie = cookie.clone();
        let entity_id = entity_id.clone();
        async move {
            let url = format!("{server}/saml2/sso?{}", authn_request_query(&entity_id, n)?);
            let start = Instant::now();
            let response = http.get(url).header(COOKIE, cookie).send().await?;
            let status = response.status();
            let body = response.text().await?;
            if !status.is_success() || !body.contains("name=\"SAMLResponse\"") {
                bail!(
                    "no SAML response: {status} {}",
                    &body[..body.len().min(300)]
                );
            }
            Ok::<Duration, anyhow::Error>(start.elapsed())
        }
    })
    .await?;
    let count = latencies.len();
    report("saml sso response", latencies, wall, count);
    Ok(())
}

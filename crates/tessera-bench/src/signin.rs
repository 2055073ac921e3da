//! Sign-in ceremonies as a browser does them, over HTTP: the flow cookie, the
//! anti-forgery token, the forms, and for passkeys a software authenticator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use tessera_authn::soft_authenticator::SoftAuthenticator;
use tokio::sync::Mutex;

use crate::{Target, report, run_for};

const FLOW: &str = "__Host-tessera-signin";
const SESSION: &str = "__Host-tessera-session";
const PASSWORD: &str = "violet-harbour-engine-42";

/// A cookie jar of one: the cookie set by a response, by name.
pub(crate) fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

fn csrf_of(html: &str) -> anyhow::Result<String> {
    let start = html
        .find("<meta name=\"csrf\" content=\"")
        .context("no csrf token on the page")?
        + 27;
    let end = html[start..].find('"').context("unterminated csrf token")?;
    Ok(html[start..start + end].to_string())
}

pub(crate) struct Browser {
    target: Arc<Target>,
    /// A client that does not follow redirects: the test looks at them.
    pub(crate) http: reqwest::Client,
}

impl Browser {
    pub(crate) fn new(target: Arc<Target>) -> anyhow::Result<Browser> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Browser { target, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.target.server)
    }

    /// GET /signin: a new flow (cookie) and its token.
    async fn start(&self) -> anyhow::Result<(String, String)> {
        let response = self.http.get(self.url("/signin")).send().await?;
        let flow = set_cookie(&response, FLOW).context("no flow cookie")?;
        let csrf = csrf_of(&response.text().await?)?;
        Ok((flow, csrf))
    }

    async fn form(
        &self,
        path: &str,
        cookie: &str,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .http
            .post(self.url(path))
            .header(COOKIE, cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded_pairs(fields))
            .send()
            .await?)
    }

    async fn json(
        &self,
        path: &str,
        cookie: &str,
        csrf: &str,
        body: &Value,
    ) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .http
            .post(self.url(path))
            .header(COOKIE, cookie)
            .header("x-csrf-token", csrf)
            .json(body)
            .send()
            .await?)
    }

    /// Name then password; returns the session cookie.
    pub(crate) async fn password_sign_in(
        &self,
        upn: &str,
        password: &str,
    ) -> anyhow::Result<String> {
        let (flow, csrf) = self.start().await?;
        let cookie = format!("{FLOW}={flow}");
        self.form(
            "/signin/name",
            &cookie,
            &[("csrf", &csrf), ("username", upn)],
        )
        .await?;
        let response = self
            .form(
                "/signin/password",
                &cookie,
                &[("csrf", &csrf), ("secret", password)],
            )
            .await?;
        signed_in(response)
    }

    async fn pass_sign_in(&self, upn: &str, pass: &str) -> anyhow::Result<String> {
        let (flow, csrf) = self.start().await?;
        let cookie = format!("{FLOW}={flow}");
        self.form(
            "/signin/name",
            &cookie,
            &[("csrf", &csrf), ("username", upn)],
        )
        .await?;
        let response = self
            .form(
                "/signin/pass",
                &cookie,
                &[("csrf", &csrf), ("secret", pass)],
            )
            .await?;
        signed_in(response)
    }

    async fn passkey_sign_in(
        &self,
        authenticator: &mut SoftAuthenticator,
        origin: &str,
    ) -> anyhow::Result<String> {
        let (flow, csrf) = self.start().await?;
        let cookie = format!("{FLOW}={flow}");
        let options: Value = self
            .json("/signin/passkey/options", &cookie, &csrf, &json!({}))
            .await?
            .json()
            .await?;
        let assertion = authenticator
            .assert(&options, origin, 0)
            .map_err(anyhow::Error::msg)?;
        let response = self
            .json("/signin/passkey", &cookie, &csrf, &assertion)
            .await?;
        let session = set_cookie(&response, SESSION);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match session {
            Some(session) if body["redirect"].is_string() => Ok(session),
            _ => bail!("passkey sign-in failed: {body}"),
        }
    }

    /// Registers a passkey from security info with a signed-in session.
    async fn register_passkey(
        &self,
        session: &str,
        authenticator: &mut SoftAuthenticator,
        origin: &str,
    ) -> anyhow::Result<()> {
        let cookie = format!("{SESSION}={session}");
        let page = self
            .http
            .get(self.url("/security-info"))
            .header(COOKIE, &cookie)
            .send()
            .await?
            .text()
            .await?;
        let csrf = csrf_of(&page)?;
        let options: Value = self
            .json("/security-info/passkey/options", &cookie, &csrf, &json!({}))
            .await?
            .json()
            .await?;
        let credential = authenticator
            .register(&options, origin)
            .map_err(anyhow::Error::msg)?;
        let response = self
            .json(
                "/security-info/passkey?name=bench",
                &cookie,
                &csrf,
                &credential,
            )
            .await?;
        if !response.status().is_success() {
            bail!("passkey registration failed: {}", response.text().await?);
        }
        Ok(())
    }
}

fn serde_urlencoded_pairs(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn signed_in(response: reqwest::Response) -> anyhow::Result<String> {
    let to_info = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|l| l == "/security-info");
    match set_cookie(&response, SESSION) {
        Some(session) if to_info => Ok(session),
        _ => bail!("sign-in failed with HTTP {}", response.status()),
    }
}

async fn create_users(
    target: &Target,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut users = Vec::new();
    for n in 0..count {
        let upn = format!("{prefix}.{n}@bench.example");
        let request = target
            .http
            .post(format!("{}/api/v1/users", target.server))
            .json(&json!({ "userPrincipalName": upn, "displayName": format!("Bench {n}") }));
        let (_, user) = target.send(request).await?;
        let id = user["id"].as_str().context("no user id")?.to_string();
        users.push((id, upn));
    }
    Ok(users)
}

/// Password sign-ins per second: every sign-in is three requests and one argon2id
/// verification on the server.
pub async fn password(
    target: Arc<Target>,
    users: usize,
    seconds: u64,
    concurrency: usize,
    prefix: &str,
) -> anyhow::Result<()> {
    let accounts = create_users(&target, prefix, users).await?;
    for (id, _) in &accounts {
        let request = target
            .http
            .post(format!(
                "{}/api/v1/users/{id}/authentication/resetPassword",
                target.server
            ))
            .json(&json!({ "newPassword": PASSWORD }));
        target.send(request).await?;
    }
    let accounts = Arc::new(accounts);
    let browser = Arc::new(Browser::new(target.clone())?);
    let (latencies, wall) = run_for(seconds, concurrency, move |n| {
        let browser = browser.clone();
        let accounts = accounts.clone();
        async move {
            let start = Instant::now();
            let (_, upn) = &accounts[n % accounts.len()];
            browser.password_sign_in(upn, PASSWORD).await?;
            Ok::<Duration, anyhow::Error>(start.elapsed())
        }
    })
    .await?;
    let count = latencies.len();
    report("password sign-ins", latencies, wall, count);
    Ok(())
}

/// Passkey sign-in ceremonies per second (username-less): options, an ES256
/// assertion from a software authenticator, verification; three requests each.
pub async fn passkey(
    target: Arc<Target>,
    users: usize,
    seconds: u64,
    concurrency: usize,
    prefix: &str,
    origin: &str,
) -> anyhow::Result<()> {
    let accounts = create_users(&target, prefix, users).await?;
    let browser = Arc::new(Browser::new(target.clone())?);
    let mut authenticators = Vec::new();
    for (id, upn) in &accounts {
        // Onboard each user with a temporary access pass, then register a passkey.
        let request = target
            .http
            .post(format!(
                "{}/api/v1/users/{id}/authentication/temporaryAccessPassMethods",
                target.server
            ))
            .json(&json!({ "isUsableOnce": true }));
        let (_, pass) = target.send(request).await?;
        let pass = pass["temporaryAccessPass"]
            .as_str()
            .context("no pass")?
            .to_string();
        let session = browser.pass_sign_in(upn, &pass).await?;
        let mut authenticator = SoftAuthenticator::new([0x42; 16]);
        browser
            .register_passkey(&session, &mut authenticator, origin)
            .await?;
        authenticators.push(Mutex::new(authenticator));
    }
    let authenticators = Arc::new(authenticators);
    let origin = origin.to_string();
    let (latencies, wall) = run_for(seconds, concurrency, move |n| {
        let browser = browser.clone();
        let authenticators = authenticators.clone();
        let origin = origin.clone();
        async move {
            let start = Instant::now();
            let mut authenticator = authenticators[n % authenticators.len()].lock().await;
            browser.passkey_sign_in(&mut authenticator, &origin).await?;
            Ok::<Duration, anyhow::Error>(start.elapsed())
        }
    })
    .await?;
    let count = latencies.len();
    report("passkey sign-in ceremonies", latencies, wall, count);
    Ok(())
}

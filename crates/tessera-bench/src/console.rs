//! The admin console's pages under load, as a browser asks for them: an
//! administrator (a Global Reader with a password; the run turns security defaults
//! off so that a password is enough) signs in through the pages, goes through the
//! console's own authorization-code sign-in, and then each page is fetched with the
//! console cookie for `seconds`, `concurrency` at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::header::{COOKIE, LOCATION};
use serde_json::json;

use crate::signin::{Browser, set_cookie};
use crate::{Target, report, run_for, spread};

const SESSION: &str = "__Host-tessera-session";
const LOGIN: &str = "__Host-tessera-console-login";
const CONSOLE: &str = "__Host-tessera-console";
const PASSWORD: &str = "quartz-meadow-lantern-58";
const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";

/// Signs an administrator in to the console; returns the cookies a browser sends.
async fn console_cookie(target: &Arc<Target>) -> anyhow::Result<String> {
    let upn = format!("console-bench-{}@bench.example", std::process::id());
    let (_, user) = target
        .send(
            target
                .http
                .post(format!("{}/api/v1/users", target.server))
                .json(&json!({ "userPrincipalName": upn, "displayName": "Console bench" })),
        )
        .await?;
    let id = user["id"].as_str().context("no user id")?;
    target
        .send(
            target
                .http
                .post(format!(
                    "{}/api/v1/users/{id}/authentication/resetPassword",
                    target.server
                ))
                .json(&json!({ "newPassword": PASSWORD })),
        )
        .await?;
    target
        .send(
            target
                .http
                .post(format!(
                    "{}/api/v1/roleManagement/directory/roleAssignments",
                    target.server
                ))
                .json(&json!({ "principalId": id, "roleDefinitionId": GLOBAL_READER })),
        )
        .await?;
    target
        .send(
            target
                .http
                .patch(format!(
                    "{}/api/v1/policies/identitySecurityDefaultsEnforcementPolicy",
                    target.server
                ))
                .json(&json!({ "isEnabled": false })),
        )
        .await?;
    let browser = Browser::new(target.clone())?;
    let session = browser.password_sign_in(&upn, PASSWORD).await?;
    let http = &browser.http;
    // /admin → authorize (with the login cookie) → callback → the console cookie.
    let start = http.get(format!("{}/admin", target.server)).send().await?;
    let login = set_cookie(&start, LOGIN).context("no console sign-in cookie")?;
    let authorize = start
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("/admin did not send to the authorization endpoint")?
        .to_string();
    let cookies = format!("{SESSION}={session}; {LOGIN}={login}");
    let answer = http
        .get(format!("{}{authorize}", target.server))
        .header(COOKIE, &cookies)
        .send()
        .await?;
    let callback = answer
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("the authorization endpoint did not answer with a redirect")?
        .to_string();
    let done = http.get(callback).header(COOKIE, &cookies).send().await?;
    let console = set_cookie(&done, CONSOLE).context("no console cookie")?;
    Ok(format!("{SESSION}={session}; {CONSOLE}={console}"))
}

/// Fetches each console page for `seconds` and reports its latencies.
pub async fn pages(target: Arc<Target>, seconds: u64, concurrency: usize) -> anyhow::Result<()> {
    let cookie = Arc::new(console_cookie(&target).await?);
    // Users to open, from across the directory.
    let (_, first) = target
        .send(
            target
                .http
                .get(format!("{}/api/v1/users?limit=1000", target.server)),
        )
        .await?;
    let ids: Vec<String> = first["value"]
        .as_array()
        .context("no users")?
        .iter()
        .filter_map(|u| u["id"].as_str().map(str::to_string))
        .collect();
    let ids = Arc::new(ids);
    let pages: [(&str, fn(usize, &[String]) -> String); 14] = [
        ("home", |_, _| "/admin".to_string()),
        ("users list", |_, _| "/admin/users".to_string()),
        ("users search", |n, _| {
            format!("/admin/users?search=Bench%20seed%20{:03}", n % 1000)
        }),
        ("user page", |n, ids| {
            format!("/admin/users/{}", ids[spread(n, ids.len())])
        }),
        ("groups list", |_, _| "/admin/groups".to_string()),
        ("sign-in log", |_, _| "/admin/sign-ins".to_string()),
        ("audit log", |_, _| "/admin/audit".to_string()),
        ("reports", |_, _| "/admin/reports".to_string()),
        ("devices list", |_, _| "/admin/devices".to_string()),
        ("applications list", |_, _| {
            "/admin/applications".to_string()
        }),
        ("conditional access", |_, _| {
            "/admin/conditional-access".to_string()
        }),
        ("policy form", |_, _| {
            "/admin/conditional-access/policies/new".to_string()
        }),
        ("named locations", |_, _| {
            "/admin/conditional-access/named-locations".to_string()
        }),
        ("strengths", |_, _| {
            "/admin/authentication/strengths".to_string()
        }),
    ];
    for (name, path) in pages {
        let http = target.http.clone();
        let server = target.server.clone();
        let cookie = cookie.clone();
        let ids = ids.clone();
        let (latencies, wall) = run_for(seconds, concurrency, move |n| {
            let http = http.clone();
            let url = format!("{server}{}", path(n, &ids));
            let cookie = cookie.clone();
            async move {
                let start = Instant::now();
                let response = http
                    .get(&url)
                    .header(COOKIE, cookie.as_str())
                    .send()
                    .await?;
                let status = response.status();
                let body = response.bytes().await?;
                let elapsed = start.elapsed();
                if !status.is_success() || body.is_empty() {
                    bail!("{url}: HTTP {status}");
                }
                Ok::<Duration, anyhow::Error>(elapsed)
            }
        })
        .await?;
        let count = latencies.len();
        report(&format!("console {name}"), latencies, wall, count);
    }
    Ok(())
}

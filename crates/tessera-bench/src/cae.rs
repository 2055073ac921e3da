//! Continuous access evaluation across two nodes on one database (see
//! BENCHMARKS.md): a user signs in on node A and an application gets tokens
//! there; a change on A (sessions revoked, the account disabled, the password
//! reset, in turn); how long until node B refuses the access token at
//! userinfo and at introspection, and the refresh token at the token
//! endpoint. Each is polled every `poll` milliseconds from the moment A
//! answered the change; reports the median and the worst of each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};

use crate::Target;
use crate::signin::Browser;

const REDIRECT_URI: &str = "http://localhost:9/bench/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// The S256 challenge of [`VERIFIER`] (RFC 7636, appendix B).
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A form body.
fn form(fields: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        form.append_pair(name, value);
    }
    form.finish()
}

const FORM: &str = "application/x-www-form-urlencoded";

struct Client {
    id: String,
    secret: String,
}

/// The tokens an application got for a user who signed in on `a`.
async fn tokens(
    target: &Arc<Target>,
    browser: &Browser,
    client: &Client,
    (upn, password): (&str, &str),
) -> anyhow::Result<(String, String)> {
    let session = browser.password_sign_in(upn, password).await?;
    let url = format!(
        "{}/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20offline_access&state=s&code_challenge={}&code_challenge_method=S256",
        target.server,
        client.id,
        url::form_urlencoded::byte_serialize(REDIRECT_URI.as_bytes()).collect::<String>(),
        CHALLENGE
    );
    let response = browser
        .http
        .get(url)
        .header(COOKIE, format!("__Host-tessera-session={session}"))
        .send()
        .await?;
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let code = url::Url::parse(&location)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.to_string())
        })
        .with_context(|| format!("no code: {location}"))?;
    let answer: Value = target
        .http
        .post(format!("{}/oauth2/token", target.server))
        .header(reqwest::header::CONTENT_TYPE, FORM)
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
        ]))
        .send()
        .await?
        .json()
        .await?;
    Ok((
        answer["access_token"]
            .as_str()
            .with_context(|| format!("no access token: {answer}"))?
            .to_string(),
        answer["refresh_token"]
            .as_str()
            .context("no refresh token")?
            .to_string(),
    ))
}

/// Whether node `b` still takes each: (userinfo, introspection, refresh).
/// A refresh that succeeds rotates the token: the new one is tried next.
async fn still_taken(
    http: &reqwest::Client,
    b: &str,
    client: &Client,
    access: &str,
    refresh: &mut String,
    which: usize,
) -> anyhow::Result<bool> {
    Ok(match which {
        0 => {
            http.get(format!("{b}/oauth2/userinfo"))
                .bearer_auth(access)
                .send()
                .await?
                .status()
                == 200
        }
        1 => {
            let answer: Value = http
                .post(format!("{b}/oauth2/introspect"))
                .basic_auth(&client.id, Some(&client.secret))
                .header(reqwest::header::CONTENT_TYPE, FORM)
                .body(form(&[("token", access)]))
                .send()
                .await?
                .json()
                .await?;
            answer["active"] == true
        }
        _ => {
            let response = http
                .post(format!("{b}/oauth2/token"))
                .header(reqwest::header::CONTENT_TYPE, FORM)
                .body(form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                    ("client_id", client.id.as_str()),
                    ("client_secret", client.secret.as_str()),
                ]))
                .send()
                .await?;
            if response.status() != 200 {
                return Ok(false);
            }
            let answer: Value = response.json().await?;
            if let Some(next) = answer["refresh_token"].as_str() {
                *refresh = next.to_string();
            }
            true
        }
    })
}

pub(crate) async fn across_nodes(
    target: Arc<Target>,
    other: &str,
    trials: usize,
    poll: u64,
) -> anyhow::Result<()> {
    let b = other.trim_end_matches('/').to_string();
    let api = |path: &str| format!("{}/api/v1{path}", target.server);
    target
        .send(
            target
                .http
                .patch(api("/policies/identitySecurityDefaultsEnforcementPolicy"))
                .json(&json!({ "isEnabled": false })),
        )
        .await?;
    let stamp = std::process::id();
    let (client_id, app_object) = target
        .consented_web_app(
            &format!("CAE bench {stamp}"),
            REDIRECT_URI,
            "openid offline_access",
        )
        .await?;
    let (_, secret) = target
        .send(
            target
                .http
                .post(api(&format!(
                    "/applications/{app_object}/passwordCredentials"
                )))
                .json(&json!({})),
        )
        .await?;
    let client = Client {
        id: client_id,
        secret: secret["secretText"].as_str().context("secret")?.to_string(),
    };
    let browser = Browser::new(target.clone())?;
    let kinds = ["revokeSessions", "disable", "resetPassword"];
    let checks = ["userinfo", "introspection", "refresh"];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); checks.len()];
    let mut worst_kind: Vec<&str> = vec![""; checks.len()];
    for trial in 0..trials {
        let kind = kinds[trial % kinds.len()];
        let (user_id, upn, password) = target
            .password_user(json!({
                "userPrincipalName": format!("cae.{stamp}.{trial}@bench.example"),
                "displayName": "CAE bench",
            }))
            .await?;
        let (access, mut refresh) = tokens(&target, &browser, &client, (&upn, &password)).await?;
        if !still_taken(&target.http, &b, &client, &access, &mut refresh, 0).await? {
            bail!("node B refuses a fresh token");
        }
        let change = match kind {
            "revokeSessions" => target
                .http
                .post(api(&format!("/users/{user_id}/revokeSignInSessions"))),
            "disable" => target
                .http
                .patch(api(&format!("/users/{user_id}")))
                .json(&json!({ "accountEnabled": false })),
            _ => target
                .http
                .post(api(&format!(
                    "/users/{user_id}/authentication/resetPassword"
                )))
                .json(&json!({})),
        };
        target.send(change).await?;
        let changed = Instant::now();
        let mut pending: Vec<usize> = (0..checks.len()).collect();
        while !pending.is_empty() {
            let mut left = Vec::new();
            for which in pending {
                if still_taken(&target.http, &b, &client, &access, &mut refresh, which).await? {
                    left.push(which);
                } else {
                    let took = changed.elapsed();
                    if times[which].iter().all(|t| *t < took) {
                        worst_kind[which] = kind;
                    }
                    times[which].push(took);
                }
            }
            pending = left;
            if changed.elapsed() > Duration::from_secs(30) {
                bail!("node B still takes a token 30 s after the change ({kind})");
            }
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(poll)).await;
            }
        }
    }
    println!(
        "{trials} trials (revokeSessions, disable, resetPassword in turn); polled every {poll} ms on node B"
    );
    for (which, name) in checks.iter().enumerate() {
        let mut list = times[which].clone();
        list.sort();
        let median = list[list.len() / 2];
        let worst = list[list.len() - 1];
        println!(
            "{name:>14}: median {:>6.1} ms, worst {:>6.1} ms ({})",
            median.as_secs_f64() * 1000.0,
            worst.as_secs_f64() * 1000.0,
            worst_kind[which]
        );
    }
    Ok(())
}

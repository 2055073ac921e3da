//! Token requests per second: the client-credentials grant with HTTP Basic client
//! authentication, each response checked to hold an access token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use serde_json::json;

use crate::{Target, report, run_for};

/// A client to use as it is (on any provider).
pub struct GivenClient {
    pub id: String,
    pub secret: String,
    pub scope: String,
}

/// Registers a client, its service principal, a secret and a resource in Tessera.
async fn register(target: &Target) -> anyhow::Result<GivenClient> {
    let api = |path: &str| format!("{}/api/v1/{path}", target.server);
    let (_, client) = target
        .send(
            target
                .http
                .post(api("applications"))
                .json(&json!({ "displayName": "Bench client" })),
        )
        .await?;
    let app_id = client["appId"].as_str().context("no appId")?.to_string();
    let object_id = client["id"].as_str().context("no id")?.to_string();
    target
        .send(
            target
                .http
                .post(api("servicePrincipals"))
                .json(&json!({ "appId": app_id })),
        )
        .await?;
    let (_, secret) = target
        .send(
            target
                .http
                .post(api(&format!(
                    "applications/{object_id}/passwordCredentials"
                )))
                .json(&json!({})),
        )
        .await?;
    let secret = secret["secretText"]
        .as_str()
        .context("no secret")?
        .to_string();
    let (_, resource) = target
        .send(
            target
                .http
                .post(api("applications"))
                .json(&json!({ "displayName": "Bench API" })),
        )
        .await?;
    let resource = resource["appId"]
        .as_str()
        .context("no resource appId")?
        .to_string();
    Ok(GivenClient {
        id: app_id,
        secret,
        scope: format!("api://{resource}/.default"),
    })
}

/// What each request should get.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Token,
    /// A wrong secret, refused with `invalid_client`.
    Refusal,
    /// A wrong secret from a new address each time (`X-Forwarded-For`).
    RefusalFromDistinctSources,
}

pub async fn client_credentials(
    target: Arc<Target>,
    seconds: u64,
    concurrency: usize,
    given: Option<GivenClient>,
    token_path: &str,
    expect: Expect,
    flood: usize,
) -> anyhow::Result<()> {
    let client = match given {
        Some(client) => client,
        None => register(&target).await?,
    };
    let app_id = client.id;
    let secret = match expect {
        Expect::Token => client.secret,
        Expect::Refusal | Expect::RefusalFromDistinctSources => format!("{}x", client.secret),
    };
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{app_id}:{secret}"))
    );
    let body = format!(
        "grant_type=client_credentials&scope={}",
        url::form_urlencoded::byte_serialize(client.scope.as_bytes()).collect::<String>()
    );
    let url = format!("{}{token_path}", target.server);
    let http = target.http.clone();
    let hostile = (flood > 0).then(|| {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        spawn_flood(
            http.clone(),
            url.clone(),
            &app_id,
            body.clone(),
            flood,
            deadline,
        )
    });
    let (latencies, wall) = run_for(seconds, concurrency, move |n| {
        let http = http.clone();
        let url = url.clone();
        let basic = basic.clone();
        let body = body.clone();
        async move {
            let start = Instant::now();
            let mut request = http
                .post(&url)
                .header("authorization", basic)
                .header("content-type", "application/x-www-form-urlencoded");
            if expect == Expect::RefusalFromDistinctSources {
                let [_, a, b, c] = (n as u32).to_be_bytes();
                request = request.header("x-forwarded-for", format!("10.{a}.{b}.{c}"));
            }
            let response = request.body(body).send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            let answered = match expect {
                Expect::Token => status.is_success() && bytes.starts_with(b"{\"access_token\""),
                Expect::Refusal | Expect::RefusalFromDistinctSources => {
                    status == 401 && bytes.windows(14).any(|w| w == b"invalid_client")
                }
            };
            if !answered {
                bail!("unexpected answer to a token request: HTTP {status}");
            }
            Ok::<Duration, anyhow::Error>(start.elapsed())
        }
    })
    .await?;
    let count = latencies.len();
    let name = match expect {
        Expect::Token => "client-credentials tokens",
        Expect::Refusal | Expect::RefusalFromDistinctSources => "refused token requests",
    };
    report(name, latencies, wall, count);
    if let Some(hostile) = hostile {
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        for task in hostile {
            for (status, n) in task.await? {
                *statuses.entry(status).or_default() += n;
            }
        }
        let total: usize = statuses.values().sum();
        let spread: Vec<String> = statuses.iter().map(|(s, n)| format!("{n}x{s}")).collect();
        println!(
            "flood: {total} hostile requests ({:.0}/s; half a NUL client id, half a wrong secret): {}",
            total as f64 / wall.as_secs_f64(),
            spread.join(" ")
        );
    }
    Ok(())
}

/// `flood` loops sending hostile token requests until `deadline`, alternately a
/// client id with a NUL byte and the real client with a wrong secret; each
/// returns how many answers of each status it got.
fn spawn_flood(
    http: reqwest::Client,
    url: String,
    app_id: &str,
    body: String,
    flood: usize,
    deadline: Instant,
) -> Vec<tokio::task::JoinHandle<std::collections::BTreeMap<u16, usize>>> {
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{app_id}:wrong-secret"))
    );
    (0..flood)
        .map(|worker| {
            let (http, url, wrong, body) = (http.clone(), url.clone(), wrong.clone(), body.clone());
            tokio::spawn(async move {
                let mut statuses = std::collections::BTreeMap::new();
                let mut n = worker;
                while Instant::now() < deadline {
                    let request = if n % 2 == 0 {
                        http.post(&url)
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(format!("{body}&client_id=a%00b&client_secret=x%00y"))
                    } else {
                        http.post(&url)
                            .header("authorization", &wrong)
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(body.clone())
                    };
                    let status = match request.send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let _ = response.bytes().await;
                            status
                        }
                        Err(_) => 0,
                    };
                    *statuses.entry(status).or_insert(0) += 1;
                    n += flood;
                }
                statuses
            })
        })
        .collect()
}

//! `tessera-bench`: drives a running `tessera serve` over HTTP and reports throughput
//! and latency percentiles. Run it pinned to another core than the server (see
//! BENCHMARKS.md). It measures; it asserts nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

mod cae;
mod console;
mod pim;
mod scim;
mod signin;
mod sso;
mod tokens;

const DEPARTMENTS: [&str; 4] = ["Finance", "Sales", "Engineering", "Operations"];

#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A Tessera administrator's token (every command but a client-credentials run
    /// against a given client needs it).
    #[arg(long, env = "TESSERA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Continuous access evaluation across two nodes: a change on this server
    /// (sessions revoked, account disabled, password reset); how soon
    /// `--other` refuses the access token (userinfo, introspection) and the
    /// refresh token.
    CaeAcrossNodes {
        #[arg(long)]
        other: String,
        #[arg(long, default_value_t = 100)]
        trials: usize,
        /// Milliseconds between polls.
        #[arg(long, default_value_t = 5)]
        poll: u64,
    },
    /// PIM across two nodes: activation on this server, use on `--other`; how
    /// soon it works there, and how soon after its end each node refuses it.
    PimAcrossNodes {
        #[arg(long)]
        other: String,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Each activation's length.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Milliseconds between polls.
        #[arg(long, default_value_t = 10)]
        poll: u64,
    },
    /// The SCIM API: create, PATCH, filter at the directory's size, /Bulk.
    Scim {
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// How many users `import-users --prefix seed` made (filtered by userName).
        #[arg(long, default_value_t = 0)]
        seeded: usize,
        #[arg(long, default_value_t = 3)]
        bulks: usize,
        #[arg(long, default_value = "scim")]
        prefix: String,
    },
    /// Create users one request each (POST /api/v1/users).
    CreateUsers {
        #[arg(long, default_value_t = 100_000)]
        count: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Distinguishes the UPNs of one run from another's.
        #[arg(long, default_value = "run")]
        prefix: String,
    },
    /// Create users in import batches of 1000 (POST /api/v1/users/import).
    ImportUsers {
        #[arg(long, default_value_t = 1_000_000)]
        count: usize,
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        #[arg(long, default_value = "seed")]
        prefix: String,
    },
    /// Password sign-ins through the pages, as a browser does them, for `seconds`.
    SignInPassword {
        #[arg(long, default_value_t = 50)]
        users: usize,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value = "pw")]
        prefix: String,
    },
    /// Username-less passkey sign-ins through the pages, with a software authenticator.
    SignInPasskey {
        #[arg(long, default_value_t = 50)]
        users: usize,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value = "pk")]
        prefix: String,
        /// The WebAuthn origin: the server's public URL.
        #[arg(long)]
        origin: String,
    },
    /// Client-credentials token requests (POST /oauth2/token, client_secret_basic).
    ClientCredentials {
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Use this client instead of registering one (any provider, e.g. the
        /// `oidc-provider` peer): with --client-secret and --scope.
        #[arg(long, requires_all = ["client_secret", "scope"])]
        client_id: Option<String>,
        #[arg(long)]
        client_secret: Option<String>,
        #[arg(long)]
        scope: Option<String>,
        /// Concurrent hostile requests beside the measured ones (a NUL byte in the
        /// client id, a wrong secret); every measured request must still succeed.
        #[arg(long, default_value_t = 0)]
        flood: usize,
        /// The token endpoint's path on --server.
        #[arg(long, default_value = "/oauth2/token")]
        token_path: String,
        /// Send a wrong secret: every request must be refused (`invalid_client`),
        /// to measure what failed requests cost (the sign-in log).
        #[arg(long)]
        wrong_secret: bool,
        /// With --wrong-secret: each request from another address, named in
        /// `X-Forwarded-For` (the server must trust this machine as a proxy).
        #[arg(long, requires = "wrong_secret")]
        distinct_sources: bool,
    },
    /// Single sign-on with an existing session: SAML Responses (signed) and OpenID
    /// Connect authorization codes, side by side, for `seconds` each.
    SingleSignOn {
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// The admin console's pages, as a signed-in administrator's browser asks for
    /// them, for `seconds` each.
    ConsolePages {
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Walk the whole user list, then measure random single fetches and random list
    /// pages for `seconds` each.
    Read {
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Users per list page in the measured phase.
        #[arg(long, default_value_t = 100)]
        page: usize,
    },
}

pub(crate) struct Target {
    pub(crate) http: reqwest::Client,
    pub(crate) server: String,
    token: Option<String>,
}

impl Target {
    /// A new web application signing users in at `redirect_uri`, with its
    /// service principal and an administrator's consent to `scope` for all
    /// users (so codes come without a consent page): (appId, object id).
    pub(crate) async fn consented_web_app(
        &self,
        display_name: &str,
        redirect_uri: &str,
        scope: &str,
    ) -> anyhow::Result<(String, String)> {
        let api = |path: &str| format!("{}/api/v1{path}", self.server);
        let (_, app) = self
            .send(self.http.post(api("/applications")).json(&json!({
                "displayName": display_name,
                "web": { "redirectUris": [redirect_uri] },
            })))
            .await?;
        let client_id = app["appId"].as_str().context("appId")?.to_string();
        let object_id = app["id"].as_str().context("id")?.to_string();
        self.send(
            self.http
                .post(api("/servicePrincipals"))
                .json(&json!({ "appId": client_id })),
        )
        .await?;
        self.send(self.http.post(api("/oauth2PermissionGrants")).json(&json!({
            "clientId": client_id, "consentType": "AllPrincipals", "scope": scope,
        })))
        .await?;
        Ok((client_id, object_id))
    }

    /// A new user with a password the server generated: (id, principal
    /// name, password).
    pub(crate) async fn password_user(
        &self,
        body: Value,
    ) -> anyhow::Result<(String, String, String)> {
        let (_, user) = self
            .send(
                self.http
                    .post(format!("{}/api/v1/users", self.server))
                    .json(&body),
            )
            .await?;
        let id = user["id"].as_str().context("user id")?.to_string();
        let upn = user["userPrincipalName"]
            .as_str()
            .context("upn")?
            .to_string();
        let (_, reset) = self
            .send(
                self.http
                    .post(format!(
                        "{}/api/v1/users/{id}/authentication/resetPassword",
                        self.server
                    ))
                    .json(&json!({})),
            )
            .await?;
        let password = reset["newPassword"]
            .as_str()
            .context("password")?
            .to_string();
        Ok((id, upn, password))
    }

    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(Duration, Value)> {
        let start = Instant::now();
        let token = self
            .token
            .as_deref()
            .context("give a Tessera administrator's token with --token")?;
        let response = request.bearer_auth(token).send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let elapsed = start.elapsed();
        if !status.is_success() {
            bail!("HTTP {status}: {body}");
        }
        Ok((elapsed, body))
    }
}

pub(crate) fn report(name: &str, mut latencies: Vec<Duration>, wall: Duration, items: usize) {
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies
            .get(index)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "{name}: {} requests, {items} items in {:.1} s = {:.0} requests/s, {:.0} items/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        wall.as_secs_f64(),
        latencies.len() as f64 / wall.as_secs_f64(),
        items as f64 / wall.as_secs_f64(),
        at(0.50),
        at(0.99),
        at(1.0),
    );
}

/// Runs `total` jobs with `concurrency` workers; each job returns its latency.
async fn run_jobs<F, Fut>(
    total: usize,
    concurrency: usize,
    job: F,
) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Duration>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let job = job.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                latencies.push(job(n).await?);
            }
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok((all, start.elapsed()))
}

/// Runs `job` repeatedly with `concurrency` workers for `seconds`.
pub(crate) async fn run_for<F, Fut>(
    seconds: u64,
    concurrency: usize,
    job: F,
) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Duration>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let job = Arc::new(job);
    let start = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let job = job.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = worker;
            while Instant::now() < deadline {
                latencies.push(job(n).await?);
                n += concurrency;
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok((all, start.elapsed()))
}

/// A cheap deterministic spread over `0..len` for picking random-looking items.
pub(crate) fn spread(n: usize, len: usize) -> usize {
    (n.wrapping_mul(2_654_435_761) ^ (n >> 7)) % len.max(1)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let target = Arc::new(Target {
        http,
        server: cli.server.trim_end_matches('/').to_string(),
        token: cli.token,
    });
    match cli.command {
        Command::PimAcrossNodes {
            other,
            rounds,
            seconds,
            poll,
        } => pim::activation_across_nodes(&target, &other, rounds, seconds, poll).await?,
        Command::CaeAcrossNodes {
            other,
            trials,
            poll,
        } => cae::across_nodes(target.clone(), &other, trials, poll).await?,
        Command::ClientCredentials {
            seconds,
            concurrency,
            client_id,
            client_secret,
            scope,
            token_path,
            flood,
            wrong_secret,
            distinct_sources,
        } => {
            let given = match (client_id, client_secret, scope) {
                (Some(id), Some(secret), Some(scope)) => {
                    Some(tokens::GivenClient { id, secret, scope })
                }
                _ => None,
            };
            let expect = match (wrong_secret, distinct_sources) {
                (false, _) => tokens::Expect::Token,
                (true, false) => tokens::Expect::Refusal,
                (true, true) => tokens::Expect::RefusalFromDistinctSources,
            };
            tokens::client_credentials(
                target,
                seconds,
                concurrency,
                given,
                &token_path,
                expect,
                flood,
            )
            .await?
        }
        Command::SingleSignOn {
            seconds,
            concurrency,
        } => sso::single_sign_on(target, seconds, concurrency).await?,
        Command::SignInPassword {
            users,
            seconds,
            concurrency,
            prefix,
        } => signin::password(target, users, seconds, concurrency, &prefix).await?,
        Command::SignInPasskey {
            users,
            seconds,
            concurrency,
            prefix,
            origin,
        } => signin::passkey(target, users, seconds, concurrency, &prefix, &origin).await?,
        Command::CreateUsers {
            count,
            concurrency,
            prefix,
        } => {
            let t = target.clone();
            let (latencies, wall) = run_jobs(count, concurrency, move |n| {
                let t = t.clone();
                let prefix = prefix.clone();
                async move {
                    let body = json!({
                        "userPrincipalName": format!("{prefix}.{n}@bench.example"),
                        "displayName": format!("Bench {prefix} {n:07}"),
                        "department": DEPARTMENTS[n % DEPARTMENTS.len()],
                    });
                    let request = t
                        .http
                        .post(format!("{}/api/v1/users", t.server))
                        .json(&body);
                    Ok(t.send(request).await?.0)
                }
            })
            .await?;
            report("create users (POST /api/v1/users)", latencies, wall, count);
        }
        Command::Scim {
            count,
            concurrency,
            seconds,
            seeded,
            bulks,
            prefix,
        } => scim::run(target, count, concurrency, seconds, seeded, bulks, &prefix).await?,
        Command::ConsolePages {
            seconds,
            concurrency,
        } => console::pages(target.clone(), seconds, concurrency).await?,
        Command::ImportUsers {
            count,
            concurrency,
            prefix,
        } => {
            let batches = count.div_ceil(1000);
            let t = target.clone();
            let (latencies, wall) = run_jobs(batches, concurrency, move |batch| {
                let t = t.clone();
                let prefix = prefix.clone();
                async move {
                    let users: Vec<Value> = (batch * 1000..((batch + 1) * 1000).min(count))
                        .map(|n| {
                            json!({
                                "userPrincipalName": format!("{prefix}.{n}@bench.example"),
                                "displayName": format!("Seed {prefix} {n:07}"),
                                "department": DEPARTMENTS[n % DEPARTMENTS.len()],
                            })
                        })
                        .collect();
                    let request = t
                        .http
                        .post(format!("{}/api/v1/users/import", t.server))
                        .json(&json!({ "users": users }));
                    Ok(t.send(request).await?.0)
                }
            })
            .await?;
            report(
                "import users (POST /api/v1/users/import, 1000 per request)",
                latencies,
                wall,
                count,
            );
        }
        Command::Read {
            seconds,
            concurrency,
            page,
        } => {
            // Phase 1: walk every user, 1000 per page; keep (sort key, id) for phase 2.
            let mut keys: Vec<(String, String)> = Vec::new();
            let mut cursor: Option<String> = None;
            let mut latencies = Vec::new();
            let start = Instant::now();
            loop {
                let mut url = format!("{}/api/v1/users?limit=1000", target.server);
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
                let (elapsed, body) = target.send(target.http.get(url)).await?;
                latencies.push(elapsed);
                for user in body["value"]
                    .as_array()
                    .context("no value in a list page")?
                {
                    let name = user["displayName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_lowercase();
                    keys.push((name, user["id"].as_str().unwrap_or_default().to_string()));
                }
                cursor = body["nextCursor"].as_str().map(str::to_string);
                if cursor.is_none() {
                    break;
                }
            }
            let walked = keys.len();
            report(
                "walk all users (GET /api/v1/users?limit=1000, sequential)",
                latencies,
                start.elapsed(),
                walked,
            );
            let keys = Arc::new(keys);

            let (t, k) = (target.clone(), keys.clone());
            let (latencies, wall) = run_for(seconds, concurrency, move |n| {
                let (t, k) = (t.clone(), k.clone());
                async move {
                    let (_, id) = &k[spread(n, k.len())];
                    Ok(
                        t.send(t.http.get(format!("{}/api/v1/users/{id}", t.server)))
                            .await?
                            .0,
                    )
                }
            })
            .await?;
            report(
                &format!("fetch a random user (GET /api/v1/users/{{id}}) among {walked}"),
                latencies,
                wall,
                0,
            );

            let (t, k) = (target.clone(), keys.clone());
            let (latencies, wall) = run_for(seconds, concurrency, move |n| {
                let (t, k) = (t.clone(), k.clone());
                async move {
                    // A page starting at a random position: the cursor of a random user.
                    let (name, id) = &k[spread(n, k.len())];
                    let cursor = URL_SAFE_NO_PAD.encode(json!([name, id]).to_string());
                    let url = format!("{}/api/v1/users?limit={page}&cursor={cursor}", t.server);
                    Ok(t.send(t.http.get(url)).await?.0)
                }
            })
            .await?;
            report(
                &format!(
                    "list a page of {page} at a random position (GET /api/v1/users?cursor=...) among {walked}"
                ),
                latencies,
                wall,
                0,
            );
        }
    }
    Ok(())
}

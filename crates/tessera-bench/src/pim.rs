//! PIM across two nodes on one database (see BENCHMARKS.md): a user activates an
//! eligible role on node A; how long until node B lets them use it; and when the
//! activation reaches its end, how long after the end each node refuses it.
//! Polls every `poll` milliseconds; reports each round and the worst.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::Target;

const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

/// A request with a bearer token, answering the status and body.
async fn call(
    http: &reqwest::Client,
    request: reqwest::RequestBuilder,
    token: &str,
) -> anyhow::Result<(u16, Value)> {
    let _ = http;
    let response = request.bearer_auth(token).send().await?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn unix_of(rfc3339: &str) -> anyhow::Result<f64> {
    let at = tessera_core::Timestamp::parse_rfc3339(rfc3339)
        .map_err(|e| anyhow::anyhow!("{rfc3339}: {e:?}"))?;
    Ok(at.unix_micros() as f64 / 1e6)
}

pub(crate) async fn activation_across_nodes(
    target: &Target,
    other: &str,
    rounds: usize,
    seconds: u64,
    poll: u64,
) -> anyhow::Result<()> {
    let http = &target.http;
    let a = target.server.as_str();
    let b = other.trim_end_matches('/');
    let admin = target
        .token
        .as_deref()
        .context("give a Tessera administrator's token with --token")?;
    let tag = format!("{:x}", unix_now() as u64);
    // A user, eligible for User Administrator, activating without MFA (a
    // personal access token proves none) and without approval.
    let (status, user) = call(
        http,
        http.post(format!("{a}/api/v1/users")).json(&json!({
            "userPrincipalName": format!("pim.{tag}@contoso.com"), "displayName": "PIM bench"
        })),
        admin,
    )
    .await?;
    if status != 201 {
        bail!("creating the user: HTTP {status}: {user}");
    }
    let user_id = user["id"].as_str().context("user id")?.to_string();
    let (_, issued) = call(
        http,
        http.post(format!("{a}/api/v1/users/{user_id}/accessTokens"))
            .json(&json!({"displayName": "pim bench"})),
        admin,
    )
    .await?;
    let token = issued["secret"]
        .as_str()
        .context("issued token")?
        .to_string();
    let (status, body) = call(
        http,
        http.put(format!(
            "{a}/api/v1/roleManagement/directory/roleSettings/{USER_ADMINISTRATOR}"
        ))
        .json(&json!({"activationRequiresMfa": false})),
        admin,
    )
    .await?;
    if status != 200 {
        bail!("role settings: HTTP {status}: {body}");
    }
    let (status, body) = call(
        http,
        http.post(format!(
            "{a}/api/v1/roleManagement/directory/roleEligibilityScheduleRequests"
        ))
        .json(&json!({
            "action": "adminAssign", "principalId": user_id,
            "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/",
            "justification": "benchmark", "scheduleInfo": {"expiration": {"type": "noExpiration"}}
        })),
        admin,
    )
    .await?;
    if status != 201 {
        bail!("eligibility: HTTP {status}: {body}");
    }
    // What only a User Administrator may do: read a user.
    let probe = |server: &str| http.get(format!("{server}/api/v1/users/{user_id}"));
    let pause = Duration::from_millis(poll);
    let mut worst_visible = 0.0_f64;
    let mut worst_end = [f64::MIN, f64::MIN];
    let mut best_end = [f64::MAX, f64::MAX];
    println!(
        "{rounds} rounds; activations of {seconds} s on {a}, used on {b}; polling every {poll} ms"
    );
    for round in 1..=rounds {
        if call(http, probe(b), &token).await?.0 != 403 {
            bail!("round {round}: the role works before activation");
        }
        let started = Instant::now();
        let (status, body) = call(
            http,
            http.post(format!(
                "{a}/api/v1/roleManagement/directory/roleAssignmentScheduleRequests"
            ))
            .json(&json!({
                "action": "selfActivate", "principalId": user_id,
                "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/",
                "justification": "benchmark round",
                "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": format!("PT{seconds}S")}}
            })),
            &token,
        )
        .await?;
        if status != 201 {
            bail!("round {round}: activation: HTTP {status}: {body}");
        }
        let answered = started.elapsed();
        // Until node B lets it through.
        let visible = loop {
            if call(http, probe(b), &token).await?.0 == 200 {
                break started.elapsed().saturating_sub(answered);
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("round {round}: node B never let the activation through");
            }
            tokio::time::sleep(pause).await;
        };
        let (_, instances) = call(
            http,
            http.get(format!(
                "{a}/api/v1/roleManagement/directory/roleAssignmentScheduleInstances?principalId={user_id}"
            )),
            &token,
        )
        .await?;
        let end = instances["value"]
            .as_array()
            .and_then(|v| v.iter().find_map(|i| i["endDateTime"].as_str()))
            .context("the activation's end")?;
        let end = unix_of(end)?;
        // Then, from just before its end, until each node refuses.
        let mut refused: [Option<f64>; 2] = [None, None];
        while refused.iter().any(Option::is_none) {
            let now = unix_now();
            if now > end + 10.0 {
                bail!("round {round}: still allowed ten seconds after the end");
            }
            if now < end - 0.5 {
                tokio::time::sleep(Duration::from_secs_f64((end - 0.5 - now).max(0.0))).await;
                continue;
            }
            for (i, server) in [a, b].iter().enumerate() {
                if refused[i].is_none() && call(http, probe(server), &token).await?.0 == 403 {
                    refused[i] = Some(unix_now() - end);
                }
            }
            tokio::time::sleep(pause).await;
        }
        let [on_a, on_b] = [refused[0].unwrap_or(0.0), refused[1].unwrap_or(0.0)];
        println!(
            "round {round}: activation answered in {:.1} ms, usable on B {:.1} ms later; refused {:+.3} s (A) and {:+.3} s (B) from the end",
            answered.as_secs_f64() * 1000.0,
            visible.as_secs_f64() * 1000.0,
            on_a,
            on_b
        );
        worst_visible = worst_visible.max(visible.as_secs_f64());
        for (i, value) in [on_a, on_b].into_iter().enumerate() {
            worst_end[i] = worst_end[i].max(value);
            best_end[i] = best_end[i].min(value);
        }
    }
    println!(
        "worst: usable on B {:.1} ms after the activation answered; refused between {:+.3} and {:+.3} s (A), {:+.3} and {:+.3} s (B) from the end",
        worst_visible * 1000.0,
        best_end[0],
        worst_end[0],
        best_end[1],
        worst_end[1]
    );
    Ok(())
}

//! The SCIM API under load (issue 16): users created one request each, patched,
//! found by filter among everyone already in the directory, and created a
//! thousand at a time through `/Bulk`, all with a provisioning token made for the
//! run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{Target, report, run_for, run_jobs, spread};

const SCIM_JSON: &str = "application/scim+json";

struct Scim {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Scim {
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        want: u16,
    ) -> anyhow::Result<(Duration, Value)> {
        let start = Instant::now();
        let response = request
            .bearer_auth(&self.token)
            .header("Content-Type", SCIM_JSON)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let elapsed = start.elapsed();
        if status.as_u16() != want {
            bail!("HTTP {status}: {body}");
        }
        Ok((elapsed, body))
    }
}

fn user(prefix: &str, n: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": format!("{prefix}.{n}@scim.example"),
        "externalId": format!("{prefix}-ext-{n}"),
        "name": {"givenName": "Bench", "familyName": format!("User {n:07}")},
        "displayName": format!("Scim {prefix} {n:07}"),
        "active": true,
        "emails": [{"value": format!("{prefix}.{n}@scim.example"), "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": format!("{n}"),
            "department": crate::DEPARTMENTS[n % crate::DEPARTMENTS.len()],
        },
    })
}

/// `count` users made one POST each, then PATCHes, filter queries (by userName
/// among `seeded` imported users `seed.N@bench.example`, and by externalId among
/// the SCIM users) for `seconds` each, then `bulks` bulk requests of 1000 users.
pub(crate) async fn run(
    target: Arc<Target>,
    count: usize,
    concurrency: usize,
    seconds: u64,
    seeded: usize,
    bulks: usize,
    prefix: &str,
) -> anyhow::Result<()> {
    let (_, made) = target
        .send(
            target
                .http
                .post(format!("{}/api/v1/provisioning/tokens", target.server))
                .json(&json!({"displayName": format!("bench {prefix}")})),
        )
        .await?;
    let scim = Arc::new(Scim {
        http: target.http.clone(),
        base: format!("{}/scim/v2", target.server),
        token: made["secret"]
            .as_str()
            .context("no provisioning token")?
            .to_string(),
    });

    // Create.
    let s = scim.clone();
    let p = prefix.to_string();
    let ids = Arc::new(std::sync::Mutex::new(vec![String::new(); count]));
    let kept = ids.clone();
    let (latencies, wall) = run_jobs(count, concurrency, move |n| {
        let s = s.clone();
        let p = p.clone();
        let kept = kept.clone();
        async move {
            let (elapsed, body) = s
                .send(
                    s.http.post(format!("{}/Users", s.base)).json(&user(&p, n)),
                    201,
                )
                .await?;
            let id = body["id"].as_str().unwrap_or_default().to_string();
            if let Ok(mut all) = kept.lock() {
                all[n] = id;
            }
            Ok(elapsed)
        }
    })
    .await?;
    report("SCIM create (POST /scim/v2/Users)", latencies, wall, count);
    let ids: Arc<Vec<String>> = Arc::new(ids.lock().map(|v| v.clone()).unwrap_or_default());

    // Patch.
    let s = scim.clone();
    let i = ids.clone();
    let (latencies, wall) = run_for(seconds, concurrency, move |n| {
        let s = s.clone();
        let i = i.clone();
        async move {
            let id = &i[spread(n, i.len())];
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "Replace", "path": "title", "value": format!("Title {n}")},
                    {"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": format!("+1 555 {:04}", n % 10_000)},
                ],
            });
            Ok(s.send(s.http.patch(format!("{}/Users/{id}", s.base)).json(&body), 200).await?.0)
        }
    })
    .await?;
    let requests = latencies.len();
    report("SCIM PATCH (two operations)", latencies, wall, requests);

    // Filters.
    for (name, by_user_name) in [
        ("userName eq, among the imported users", true),
        ("externalId eq, among the SCIM users", false),
    ] {
        let s = scim.clone();
        let p = prefix.to_string();
        let (latencies, wall) = run_for(seconds, concurrency, move |n| {
            let s = s.clone();
            let filter = if by_user_name && seeded > 0 {
                format!("userName eq \"seed.{}@bench.example\"", spread(n, seeded))
            } else {
                format!("externalId eq \"{p}-ext-{}\"", spread(n, count))
            };
            async move {
                let (elapsed, body) = s
                    .send(
                        s.http.get(format!(
                            "{}/Users?filter={}",
                            s.base,
                            url::form_urlencoded::byte_serialize(filter.as_bytes())
                                .collect::<String>()
                        )),
                        200,
                    )
                    .await?;
                if body["totalResults"] != json!(1) {
                    bail!("{filter} found {}", body["totalResults"]);
                }
                Ok(elapsed)
            }
        })
        .await?;
        let requests = latencies.len();
        report(&format!("SCIM filter ({name})"), latencies, wall, requests);
    }

    // Bulk.
    let mut latencies = Vec::new();
    let start = Instant::now();
    for b in 0..bulks {
        let operations: Vec<Value> = (0..1000)
            .map(|k| {
                let n = count + b * 1000 + k;
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"), "data": user(prefix, n)})
            })
            .collect();
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": operations,
        });
        let (elapsed, response) = scim
            .send(
                scim.http.post(format!("{}/Bulk", scim.base)).json(&body),
                200,
            )
            .await?;
        let failed = response["Operations"]
            .as_array()
            .map(|ops| ops.iter().filter(|o| o["status"] != "201").count())
            .unwrap_or(1000);
        if failed > 0 {
            bail!("{failed} bulk operations failed");
        }
        latencies.push(elapsed);
    }
    report(
        "SCIM /Bulk of 1000 user creations",
        latencies,
        start.elapsed(),
        bulks * 1000,
    );
    Ok(())
}

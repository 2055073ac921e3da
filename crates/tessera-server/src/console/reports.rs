//! Reports people look at rather than read, drawn on the server as SVG (no chart
//! library in the browser), each with its numbers in a table beside it: sign-ins per
//! hour by result over the last day, the commonest failure codes, which methods users
//! registered, and who holds a privileged role.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use tessera_core::Timestamp;
use tessera_directory::model::UserSpec;
use tessera_service::authn::{MethodsRegistered, SignInFilter};
use tessera_service::{PageRequest, ServiceError};

use super::{Admin, refused};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/reports", get(reports))
}

/// The most sign-ins one report reads.
const MAX_ENTRIES: usize = 10_000;
const HOURS: usize = 24;
/// The chart's drawing area, in SVG units.
const CHART_HEIGHT: f64 = 120.0;
const BAR_STEP: f64 = 22.0;

/// One hour's bar: its stacked segments (success, failure, interrupted).
struct HourBar {
    label: String,
    x: f64,
    segments: Vec<Segment>,
    counts: [usize; 3],
}

struct Segment {
    y: f64,
    height: f64,
    class: &'static str,
}

/// A horizontal bar of a ranking.
struct RankBar {
    label: String,
    count: usize,
    width: f64,
    y: f64,
}

#[derive(Template)]
#[template(path = "console/reports.html")]
struct ReportsPage<'a> {
    admin: &'a Admin,
    hours: Option<Vec<HourBar>>,
    sign_ins_read: usize,
    truncated: bool,
    failures: Option<Vec<RankBar>>,
    methods: Option<Vec<RankBar>>,
    privileged: Option<Vec<(String, String)>>,
    chart_width: f64,
}

fn now() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    Timestamp::from_unix_micros(micros)
}

/// Bars scaled to the longest, at most `width` long, one every 22 units down.
fn ranking(items: Vec<(String, usize)>, width: f64) -> Vec<RankBar> {
    let most = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    items
        .into_iter()
        .enumerate()
        .map(|(i, (label, count))| RankBar {
            label,
            count,
            width: (count as f64 / most * width).max(1.0),
            y: i as f64 * BAR_STEP,
        })
        .collect()
}

async fn reports(State(state): State<AppState>, admin: Admin) -> Response {
    let end = now();
    let start = end.plus_seconds(-(HOURS as i64) * 3600);
    // Sign-ins of the last day, newest first, up to MAX_ENTRIES.
    let mut counts = vec![[0usize; 3]; HOURS];
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut read = 0usize;
    let mut truncated = false;
    let mut filter = SignInFilter {
        since: Some(start),
        limit: Some(1000),
        ..SignInFilter::default()
    };
    let mut sign_ins_visible = true;
    loop {
        let page = match state.app.sign_in.query_log(&admin.ctx, &filter).await {
            Ok(page) => page,
            Err(ServiceError::Forbidden { .. }) => {
                sign_ins_visible = false;
                break;
            }
            Err(error) => return refused(error),
        };
        for entry in &page.value {
            let age = end.unix_micros() - entry.created_date_time.unix_micros();
            let hour = (age / 3_600_000_000).clamp(0, HOURS as i64 - 1) as usize;
            let slot = HOURS - 1 - hour;
            let kind = match entry.result.as_str() {
                "success" => 0,
                "failure" => 1,
                _ => 2,
            };
            counts[slot][kind] += 1;
            if let Some(code) = &entry.failure_code {
                *failures.entry(code.clone()).or_default() += 1;
            }
        }
        read += page.value.len();
        match page.next_cursor {
            Some(cursor) if read < MAX_ENTRIES => filter.cursor = Some(cursor),
            Some(_) => {
                truncated = true;
                break;
            }
            None => break,
        }
    }
    let hours = sign_ins_visible.then(|| {
        let most = counts
            .iter()
            .map(|c| c.iter().sum::<usize>())
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut y = CHART_HEIGHT;
                let mut segments = Vec::new();
                for (n, class) in c.iter().zip(["ok", "bad", "warn"]) {
                    let height = *n as f64 / most * CHART_HEIGHT;
                    if height > 0.0 {
                        y -= height;
                        segments.push(Segment { y, height, class });
                    }
                }
                let ago = HOURS - i;
                HourBar {
                    label: if ago == 1 {
                        "last hour".to_string()
                    } else {
                        format!("{ago} hours ago")
                    },
                    x: i as f64 * BAR_STEP,
                    segments,
                    counts: *c,
                }
            })
            .collect()
    });
    let failures = sign_ins_visible.then(|| {
        let mut top: Vec<(String, usize)> = failures.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(8);
        ranking(top, 300.0)
    });
    let methods = match state.app.sign_in.methods_registered(&admin.ctx).await {
        Ok(MethodsRegistered {
            passkey,
            authenticator_app,
            certificate,
            password,
            password_only,
        }) => Some(ranking(
            vec![
                ("Passkey".to_string(), passkey),
                ("Authenticator app".to_string(), authenticator_app),
                ("Certificate".to_string(), certificate),
                ("Password".to_string(), password),
                ("Only a password".to_string(), password_only),
            ],
            300.0,
        )),
        Err(ServiceError::Forbidden { .. }) => None,
        Err(error) => return refused(error),
    };
    let privileged = privileged_users(&state, &admin).await;
    pages::page(
        StatusCode::OK,
        &ReportsPage {
            admin: &admin,
            hours,
            sign_ins_read: read,
            truncated,
            failures,
            methods,
            privileged,
            chart_width: HOURS as f64 * BAR_STEP,
        },
    )
}

/// Who holds a privileged role, and which (tenant-wide or in a unit); `None` when
/// the caller may not read role assignments.
async fn privileged_users(state: &AppState, admin: &Admin) -> Option<Vec<(String, String)>> {
    let directory = &state.app.directory;
    let request = PageRequest {
        cursor: None,
        limit: Some(1000),
        search: None,
    };
    let assignments = directory
        .list_role_assignments(&admin.ctx, None, None, &request)
        .await
        .ok()?;
    let mut rows = Vec::new();
    for assignment in assignments.value {
        let Some(role) = tessera_directory::roles::built_in(assignment.spec.role_definition_id)
            .filter(|role| role.is_privileged)
        else {
            continue;
        };
        let name = match directory
            .get::<UserSpec>(&admin.ctx, assignment.spec.principal_id)
            .await
        {
            Ok(user) => user.spec.user_principal_name,
            Err(_) => assignment.spec.principal_id.to_string(),
        };
        let scope = if assignment.spec.directory_scope_id == "/" {
            String::new()
        } else {
            " (in a unit)".to_string()
        };
        rows.push((name, format!("{}{scope}", role.display_name)));
    }
    rows.sort();
    Some(rows)
}

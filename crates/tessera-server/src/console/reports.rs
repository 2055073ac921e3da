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
use tessera_directory::model::{GroupSpec, UserSpec};
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
    /// The privileged users, and whether there were more than shown.
    privileged: Option<(Vec<(String, String)>, bool)>,
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
    let privileged = match privileged_users(&state, &admin).await {
        Ok(privileged) => privileged,
        Err(page) => return page,
    };
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

/// Who holds a privileged role, and which (tenant-wide or in a unit), members of a
/// role-assignable group that holds one included; `None` when the caller may not
/// read role assignments. At most `MAX_PRIVILEGED` rows; the flag says more exist.
async fn privileged_users(
    state: &AppState,
    admin: &Admin,
) -> Result<Option<(Vec<(String, String)>, bool)>, Response> {
    const MAX_PRIVILEGED: usize = 2_000;
    let directory = &state.app.directory;
    let mut rows = Vec::new();
    let mut truncated = false;
    for role in tessera_directory::roles::BUILT_IN_ROLES
        .iter()
        .filter(|role| role.is_privileged)
    {
        let mut request = PageRequest {
            cursor: None,
            limit: Some(1000),
            search: None,
        };
        loop {
            let page = match directory
                .list_role_assignments(&admin.ctx, None, Some(role.id), &request)
                .await
            {
                Ok(page) => page,
                Err(ServiceError::Forbidden { .. }) => return Ok(None),
                Err(error) => return Err(refused(error)),
            };
            for assignment in page.value {
                let scope = if assignment.spec.directory_scope_id == "/" {
                    String::new()
                } else {
                    " (in a unit)".to_string()
                };
                let held = format!("{}{scope}", role.display_name);
                let principal = assignment.spec.principal_id;
                if let Ok(user) = directory.get::<UserSpec>(&admin.ctx, principal).await {
                    rows.push((user.spec.user_principal_name, held));
                } else if let Ok(group) = directory.get::<GroupSpec>(&admin.ctx, principal).await {
                    // Everyone in a role-assignable group holds its roles.
                    let members = directory
                        .list_group_members(
                            &admin.ctx,
                            principal,
                            true,
                            &PageRequest {
                                cursor: None,
                                limit: Some(1000),
                                search: None,
                            },
                        )
                        .await
                        .map(|page| page.value)
                        .unwrap_or_default();
                    for member in members {
                        rows.push((
                            member.display_name,
                            format!("{held}, through the group {}", group.spec.display_name),
                        ));
                    }
                } else {
                    rows.push((format!("{principal} (a workload)"), held));
                }
                if rows.len() >= MAX_PRIVILEGED {
                    truncated = true;
                    break;
                }
            }
            match page.next_cursor {
                Some(cursor) if !truncated => request.cursor = Some(cursor),
                _ => break,
            }
        }
        if truncated {
            break;
        }
    }
    rows.sort();
    Ok(Some((rows, truncated)))
}

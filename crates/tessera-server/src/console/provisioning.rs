//! Provisioning in the console: the overview (HR imports with their preview and
//! runs, lifecycle workflows, applications provisioned outbound), a held HR run
//! approved, a workflow's runs, and an application's outbound provisioning (its
//! settings, state, a cycle now, provisioning one user on demand, the log). The
//! provisioning settings (SCIM mapping, HR import) are a tenant setting
//! (`settings.rs`), the workflows records (`records.rs`).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tessera_directory::roles::action;
use tessera_service::ServiceError;
use tessera_service::lifecycle::LifecycleRun;
use tessera_service::provisioning::HrRun;
use tessera_service::provisioning::outbound::{
    CycleSummary, OnDemandReport, OutboundEntry, OutboundStatus,
};
use uuid::Uuid;

use super::{Admin, Posted, form_refusal, holds, refused};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/provisioning", get(overview))
        .route("/admin/provisioning/hr/preview", post(hr_preview))
        .route("/admin/provisioning/hr/run", post(hr_run))
        .route("/admin/provisioning/hr/runs/{id}", get(hr_run_page))
        .route("/admin/provisioning/hr/runs/{id}/approve", post(hr_approve))
        .route("/admin/provisioning/hr/runs/{id}/reject", post(hr_reject))
        .route(
            "/admin/provisioning/workflows/{id}/runs",
            get(workflow_runs),
        )
        .route(
            "/admin/applications/{id}/provisioning",
            get(outbound_page).post(outbound_save),
        )
        .route(
            "/admin/applications/{id}/provisioning/run",
            post(outbound_run),
        )
        .route(
            "/admin/applications/{id}/provisioning/on-demand",
            post(outbound_on_demand),
        )
}

/// One row of an HR preview, as the page shows it.
pub(crate) struct PlanRow {
    pub line: String,
    pub anchor: String,
    pub action: String,
    /// `attribute: before → after`, or the reason a row fails.
    pub details: Vec<String>,
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "(empty)".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn plan_rows(rows: &Value) -> Vec<PlanRow> {
    rows.as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let action = row["action"].as_str().unwrap_or_default().to_string();
            let details = match action.as_str() {
                "create" => row["attributes"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}: {}", shown(v)))
                    .collect(),
                "update" => row["changes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        format!(
                            "{}: {} → {}",
                            c["attribute"].as_str().unwrap_or_default(),
                            shown(&c["before"]),
                            shown(&c["after"])
                        )
                    })
                    .collect(),
                "failed" => vec![row["reason"].as_str().unwrap_or_default().to_string()],
                _ => Vec::new(),
            };
            PlanRow {
                line: row["line"]
                    .as_u64()
                    .map(|l| l.to_string())
                    .unwrap_or_default(),
                anchor: row["anchor"].as_str().unwrap_or_default().to_string(),
                action,
                details,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/provisioning.html")]
struct OverviewPage<'a> {
    admin: &'a Admin,
    runs: Option<Vec<HrRun>>,
    applications: Option<Vec<OutboundEntry>>,
    may_preview: bool,
    may_run: bool,
    /// What was typed into the import form, shown again with a refusal.
    content: String,
    format: String,
    /// A preview of the typed file.
    preview: Option<(Value, Vec<PlanRow>)>,
    error: Option<String>,
}

async fn render_overview(
    state: &AppState,
    admin: &Admin,
    content: String,
    format: String,
    preview: Option<(Value, Vec<PlanRow>)>,
    error: Option<(StatusCode, String)>,
) -> Response {
    let app = &state.app;
    // Each section shows what the administrator may read.
    let runs = match readable(app.provisioning.hr_runs(&admin.ctx).await) {
        Ok(runs) => runs,
        Err(page) => return page,
    };
    let applications = match readable(app.provisioning.list_outbound(&admin.ctx).await) {
        Ok(applications) => applications,
        Err(page) => return page,
    };
    let status = error.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    pages::page(
        status,
        &OverviewPage {
            admin,
            runs,
            applications,
            may_preview: app.provisioning.may_preview_hr(&admin.ctx),
            may_run: app.provisioning.may_run_hr(&admin.ctx),
            content,
            format,
            preview,
            error: error.map(|(_, message)| message),
        },
    )
}

/// A section's content, `None` when the caller may not read it; any other
/// failure is the page's.
fn readable<T>(result: Result<T, ServiceError>) -> Result<Option<T>, Response> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(ServiceError::Forbidden { .. }) => Ok(None),
        Err(error) => Err(refused(error)),
    }
}

async fn overview(State(state): State<AppState>, admin: Admin) -> Response {
    render_overview(&state, &admin, String::new(), String::new(), None, None).await
}

/// The import form's file and format as the API takes them.
fn upload(form: &super::forms::ConsoleForm) -> (String, String, Value) {
    let content = form.get("content").unwrap_or("").to_string();
    let format = form.get("format").unwrap_or("").to_string();
    let mut body = json!({ "content": content });
    if format == "csv" || format == "json" {
        body["format"] = json!(format);
    }
    (content, format, body)
}

async fn hr_preview(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let (content, format, body) = upload(&form);
    match state
        .app
        .provisioning
        .preview_hr_import(&admin.ctx, body)
        .await
    {
        Ok(plan) => {
            let plan = serde_json::to_value(&plan).unwrap_or(Value::Null);
            let rows = plan_rows(&plan["rows"]);
            render_overview(&state, &admin, content, format, Some((plan, rows)), None).await
        }
        Err(error) => match form_refusal(error, "import") {
            Ok(refusal) => {
                render_overview(&state, &admin, content, format, None, Some(refusal)).await
            }
            Err(page) => page,
        },
    }
}

async fn hr_run(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let (content, format, body) = upload(&form);
    match state.app.provisioning.run_hr_import(&admin.ctx, body).await {
        Ok(run) => pages::redirect(&format!("/admin/provisioning/hr/runs/{}", run.id)),
        Err(error) => match form_refusal(error, "import") {
            Ok(refusal) => {
                render_overview(&state, &admin, content, format, None, Some(refusal)).await
            }
            Err(page) => page,
        },
    }
}

#[derive(Template)]
#[template(path = "console/hr_run.html")]
struct HrRunPage<'a> {
    admin: &'a Admin,
    run: HrRun,
    /// Each row's result: line, anchor, action, status, what happened.
    results: Vec<PlanRow>,
    may_approve: bool,
    held_for_days: i64,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn render_run(
    state: &AppState,
    admin: &Admin,
    id: Uuid,
    notice: Option<&'static str>,
    error: Option<(StatusCode, String)>,
) -> Response {
    let run = match state.app.provisioning.hr_run(&admin.ctx, id).await {
        Ok(run) => run,
        Err(error) => return refused(error),
    };
    // A held run keeps its plan (each row's changes, for the approver); a run
    // applied keeps each row's result.
    let results = if run.state == "held" {
        plan_rows(&Value::Array(run.results.clone()))
    } else {
        run.results
            .iter()
            .map(|r| {
                let action = r["action"].as_str().unwrap_or_default();
                let status = r["status"].as_str().unwrap_or_default();
                PlanRow {
                    line: r["line"]
                        .as_u64()
                        .map(|l| l.to_string())
                        .unwrap_or_default(),
                    anchor: r["anchor"].as_str().unwrap_or_default().to_string(),
                    action: match (action.is_empty(), status.is_empty()) {
                        (_, true) => action.to_string(),
                        (true, false) => status.to_string(),
                        (false, false) => format!("{action} ({status})"),
                    },
                    details: r["reason"]
                        .as_str()
                        .map(|reason| vec![reason.to_string()])
                        .unwrap_or_default(),
                }
            })
            .collect()
    };
    let status = error.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    pages::page(
        status,
        &HrRunPage {
            admin,
            may_approve: run.state == "held" && state.app.provisioning.may_approve_hr(&admin.ctx),
            held_for_days: tessera_service::provisioning::hr::HELD_FOR_DAYS,
            run,
            results,
            notice,
            error: error.map(|(_, message)| message),
        },
    )
}

async fn hr_run_page(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let notice = match query.get("done").map(String::as_str) {
        Some("approved") => Some(
            "Approved: the run was planned again against the directory as it is now, and applied.",
        ),
        Some("rejected") => {
            Some("Rejected: nothing of the run was applied, and its file was dropped.")
        }
        _ => None,
    };
    render_run(&state, &admin, id, notice, None).await
}

async fn hr_approve(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, .. }: Posted,
) -> Response {
    match state.app.provisioning.approve_hr_run(&admin.ctx, id).await {
        Ok(_) => pages::redirect(&format!("/admin/provisioning/hr/runs/{id}?done=approved")),
        Err(error) => match form_refusal(error, "run") {
            Ok(refusal) => render_run(&state, &admin, id, None, Some(refusal)).await,
            Err(page) => page,
        },
    }
}

async fn hr_reject(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, .. }: Posted,
) -> Response {
    match state.app.provisioning.reject_hr_run(&admin.ctx, id).await {
        Ok(_) => pages::redirect(&format!("/admin/provisioning/hr/runs/{id}?done=rejected")),
        Err(error) => match form_refusal(error, "run") {
            Ok(refusal) => render_run(&state, &admin, id, None, Some(refusal)).await,
            Err(page) => page,
        },
    }
}

#[derive(Template)]
#[template(path = "console/workflow_runs.html")]
struct WorkflowRunsPage<'a> {
    admin: &'a Admin,
    id: Uuid,
    name: String,
    runs: Vec<LifecycleRun>,
}

impl WorkflowRunsPage<'_> {
    /// A task's outcome in words: `task: status (detail or error)`.
    fn task_line(&self, task: &Value) -> String {
        let said = task["detail"]
            .as_str()
            .or_else(|| task["error"].as_str())
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        format!(
            "{}: {}{said}",
            task["task"].as_str().unwrap_or_default(),
            task["status"].as_str().unwrap_or_default()
        )
    }
}

async fn workflow_runs(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> Response {
    let workflow = match state.app.lifecycle.get_workflow(&admin.ctx, id).await {
        Ok(workflow) => workflow,
        Err(error) => return refused(error),
    };
    match state
        .app
        .lifecycle
        .lifecycle_runs(&admin.ctx, Some(id))
        .await
    {
        Ok(runs) => pages::page(
            StatusCode::OK,
            &WorkflowRunsPage {
                admin: &admin,
                id,
                name: workflow.workflow.display_name.clone(),
                runs,
            },
        ),
        Err(error) => refused(error),
    }
}

#[derive(Template)]
#[template(path = "console/outbound.html")]
struct OutboundPage<'a> {
    admin: &'a Admin,
    /// The application's object id (the console's pages are by application).
    id: Uuid,
    name: String,
    /// The settings as JSON (a starting point when there are none).
    json: String,
    version: i64,
    configured: bool,
    enabled: bool,
    has_token: bool,
    status: Option<OutboundStatus>,
    log: Vec<LogLine>,
    may_manage: bool,
    cycle: Option<CycleSummary>,
    on_demand: Option<OnDemandReport>,
    user: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

/// One provisioning log entry as the page shows it.
pub(crate) struct LogLine {
    pub time: String,
    pub object: String,
    pub action: String,
    pub status: String,
    pub detail: String,
}

fn log_lines(entries: Vec<Value>) -> Vec<LogLine> {
    entries
        .into_iter()
        .map(|e| {
            let changed: Vec<&str> = e["changed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            LogLine {
                time: e["time"].as_str().unwrap_or_default().to_string(),
                object: e["objectName"].as_str().unwrap_or_default().to_string(),
                action: e["action"].as_str().unwrap_or_default().to_string(),
                status: e["status"].as_str().unwrap_or_default().to_string(),
                detail: match e["error"].as_str() {
                    Some(error) => error.to_string(),
                    None if changed.is_empty() => String::new(),
                    None => format!("changed: {}", changed.join(", ")),
                },
            }
        })
        .collect()
}

/// Settings to start from: the endpoint to fill in, and the default mapping.
fn starting_point() -> Value {
    json!({
        "enabled": false,
        "endpoint": "https://app.example.com/scim/v2",
        "scope": "assignedUsersAndGroups",
        "deprovision": "disable",
        "provisionGroups": true,
        "userMapping": tessera_service::provisioning::outbound::default_user_mapping(),
    })
}

/// What an outbound page shows besides what is stored.
#[derive(Default)]
struct Shown {
    json: Option<String>,
    /// The version the refused form was read at (kept, so that a second save
    /// is refused too when someone else changed the settings).
    version: Option<i64>,
    cycle: Option<CycleSummary>,
    on_demand: Option<OnDemandReport>,
    user: String,
    notice: Option<&'static str>,
    error: Option<(StatusCode, String)>,
}

/// The application and its service principal's id.
async fn application(
    state: &AppState,
    admin: &Admin,
    id: Uuid,
) -> Result<(String, Uuid), Response> {
    let app = state
        .app
        .directory
        .get_application(&admin.ctx, id)
        .await
        .map_err(refused)?;
    let principal = state
        .app
        .directory
        .get_service_principal_by_app_id(&admin.ctx, app.app_id)
        .await
        .map_err(|error| match error {
            ServiceError::NotFound { .. } => refused(ServiceError::Conflict {
                message: "the application has no service principal in this tenant: add one to provision it".into(),
            }),
            other => refused(other),
        })?;
    Ok((app.spec.display_name.clone(), principal.id))
}

async fn render_outbound(state: &AppState, admin: &Admin, id: Uuid, extra: Shown) -> Response {
    let (name, sp) = match application(state, admin, id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let provisioning = &state.app.provisioning;
    let settings = match provisioning.outbound_settings(&admin.ctx, sp).await {
        Ok(settings) => Some(settings),
        Err(ServiceError::NotFound { .. }) => None,
        Err(error) => return refused(error),
    };
    let status = match settings {
        Some(_) => provisioning.outbound_status(&admin.ctx, sp).await.ok(),
        None => None,
    };
    let log = match settings {
        Some(_) => match provisioning
            .outbound_log(&admin.ctx, sp, None, 50, None)
            .await
        {
            Ok(entries) => log_lines(entries),
            Err(error) => return refused(error),
        },
        None => Vec::new(),
    };
    let stored = settings
        .as_ref()
        .map(|s| {
            json!({
                "enabled": s.enabled, "endpoint": s.endpoint, "scope": s.scope,
                "scopingRule": s.scoping_rule, "deprovision": s.deprovision,
                "provisionGroups": s.provision_groups, "userMapping": s.user_mapping,
            })
        })
        .unwrap_or_else(starting_point);
    let status_code = extra.error.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    pages::page(
        status_code,
        &OutboundPage {
            admin,
            id,
            name,
            json: extra
                .json
                .unwrap_or_else(|| serde_json::to_string_pretty(&stored).unwrap_or_default()),
            version: extra
                .version
                .unwrap_or_else(|| settings.as_ref().map_or(0, |s| s.version)),
            configured: settings.is_some(),
            enabled: settings.as_ref().is_some_and(|s| s.enabled),
            has_token: settings.as_ref().is_some_and(|s| s.has_secret_token),
            status,
            log,
            may_manage: holds(&admin.ctx, action::SPS_SYNCHRONIZATION_MANAGE),
            cycle: extra.cycle,
            on_demand: extra.on_demand,
            user: extra.user,
            notice: extra.notice,
            error: extra.error.map(|(_, message)| message),
        },
    )
}

async fn outbound_page(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let notice = query
        .get("done")
        .filter(|d| *d == "saved")
        .map(|_| "Saved. The next cycle takes it into account.");
    render_outbound(
        &state,
        &admin,
        id,
        Shown {
            notice,
            ..Default::default()
        },
    )
    .await
}

async fn outbound_save(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(refusal) => return refusal,
    };
    let (_, sp) = match application(&state, &admin, id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let text = form.get("json").unwrap_or("").to_string();
    let token = form.get("token").unwrap_or("").trim().to_string();
    let outcome = match serde_json::from_str::<Value>(&text) {
        Ok(mut body @ Value::Object(_)) => {
            if !token.is_empty() {
                body["secretToken"] = json!(token);
            }
            let at = tessera_service::Versioned::new(sp, Some(version));
            match state
                .app
                .provisioning
                .set_outbound_settings(&admin.ctx, at, body)
                .await
            {
                Ok(_) => {
                    return pages::redirect(&format!(
                        "/admin/applications/{id}/provisioning?done=saved"
                    ));
                }
                Err(error) => form_refusal(error, "provisioning configuration"),
            }
        }
        _ => Ok((
            StatusCode::BAD_REQUEST,
            "The settings must be one JSON object.".to_string(),
        )),
    };
    match outcome {
        Ok(error) => {
            render_outbound(
                &state,
                &admin,
                id,
                Shown {
                    json: Some(without_token(&text)),
                    version: Some(version),
                    error: Some(error),
                    ..Default::default()
                },
            )
            .await
        }
        Err(page) => page,
    }
}

/// What was typed, shown again without a token typed into it.
fn without_token(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut object)) if object.contains_key("secretToken") => {
            object.remove("secretToken");
            serde_json::to_string_pretty(&Value::Object(object)).unwrap_or_default()
        }
        _ => text.to_string(),
    }
}

async fn outbound_run(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let (_, sp) = match application(&state, &admin, id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let full = form.get("full") == Some("true");
    let shown = match state
        .app
        .provisioning
        .run_outbound_now(&admin.ctx, sp, full)
        .await
    {
        Ok(cycle) => Shown {
            cycle: Some(cycle),
            ..Default::default()
        },
        Err(error) => match form_refusal(error, "provisioning configuration") {
            Ok(error) => Shown {
                error: Some(error),
                ..Default::default()
            },
            Err(page) => return page,
        },
    };
    render_outbound(&state, &admin, id, shown).await
}

async fn outbound_on_demand(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let (_, sp) = match application(&state, &admin, id).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let user = form.get("user").unwrap_or("").trim().to_string();
    let found = match Uuid::parse_str(&user) {
        Ok(user_id) => Ok(user_id),
        Err(_) => state
            .app
            .directory
            .get_user_by_principal_name(&admin.ctx, &user)
            .await
            .map(|u| u.id)
            .map_err(|error| match error {
                ServiceError::NotFound { .. } => ServiceError::invalid(
                    "user",
                    "no user has this object id or user principal name",
                ),
                other => other,
            }),
    };
    let result = match found {
        Ok(user_id) => state
            .app
            .provisioning
            .provision_on_demand(&admin.ctx, sp, user_id)
            .await
            .map_err(|error| match error {
                ServiceError::NotFound { kind: "user", .. } => ServiceError::invalid(
                    "user",
                    "no user has this object id or user principal name",
                ),
                other => other,
            }),
        Err(error) => Err(error),
    };
    let shown = match result {
        Ok(report) => Shown {
            on_demand: Some(report),
            user,
            ..Default::default()
        },
        Err(error) => match form_refusal(error, "user") {
            Ok(error) => Shown {
                error: Some(error),
                user,
                ..Default::default()
            },
            Err(page) => return page,
        },
    };
    render_outbound(&state, &admin, id, shown).await
}

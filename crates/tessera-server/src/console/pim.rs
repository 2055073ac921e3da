//! Privileged Identity Management in the console (`/admin/pim`): the alerts with
//! "make eligible" for standing and permanent privilege, requests waiting for the
//! administrator's approval, making someone eligible or assigning a role for a
//! time, and each role's activation settings (`/admin/pim/roles/{id}`).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tessera_directory::roles::{self, action};
use tessera_service::ServiceError;
use tessera_service::pim::{Family, GroupAccess, RequestFilter, ScheduleKind};
use uuid::Uuid;

use super::{Admin, Posted, holds, named_object, refused};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/pim", get(overview))
        .route("/admin/pim/assign", post(assign))
        .route("/admin/pim/convert/{id}", post(convert))
        .route("/admin/pim/requests/{kind}/{id}", post(answer))
        .route(
            "/admin/pim/roles/{id}",
            get(role_settings).post(save_role_settings),
        )
}

struct Incident {
    principal: String,
    role: String,
    scope: String,
    since: String,
    subject: Uuid,
}

struct AlertRow {
    kind: String,
    description: &'static str,
    remediation: &'static str,
    severity: &'static str,
    convertible: bool,
    count: usize,
    incidents: Vec<Incident>,
}

struct WaitingRow {
    id: Uuid,
    kind: &'static str,
    who: String,
    action: String,
    role: String,
    justification: String,
}

struct RoleRow {
    id: Uuid,
    name: &'static str,
    privileged: bool,
}

#[derive(Template)]
#[template(path = "console/pim.html")]
struct OverviewPage<'a> {
    admin: &'a Admin,
    alerts: Vec<AlertRow>,
    waiting: Vec<WaitingRow>,
    roles: Vec<RoleRow>,
    may_manage: bool,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

fn role_name(id: Uuid) -> String {
    roles::built_in(id)
        .map(|r| r.display_name.to_string())
        .unwrap_or_else(|| id.to_string())
}

/// A request's kind as the answer's path says it (`group-` for groups').
fn path_kind(family: Family, kind: ScheduleKind) -> &'static str {
    match (family, kind) {
        (Family::Roles, ScheduleKind::Eligibility) => "eligibility",
        (Family::Roles, ScheduleKind::Assignment) => "assignment",
        (Family::Groups, ScheduleKind::Eligibility) => "group-eligibility",
        (Family::Groups, ScheduleKind::Assignment) => "group-assignment",
    }
}

/// A principal's name as the administrator may read it.
async fn principal_name(state: &AppState, admin: &Admin, id: Uuid) -> String {
    match state
        .app
        .directory
        .get::<tessera_directory::model::UserSpec>(&admin.ctx, id)
        .await
    {
        Ok(user) => user.spec.user_principal_name,
        Err(_) => id.to_string(),
    }
}

async fn overview(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<DoneQuery>,
) -> Response {
    let notice = match query.done.as_deref() {
        Some("assigned") => Some("Saved."),
        Some("converted") => Some("The assignment is now an eligibility."),
        Some("approved") => Some("Approved."),
        Some("denied") => Some("Denied."),
        _ => None,
    };
    render(&state, &admin, notice, None, StatusCode::OK).await
}

async fn render(
    state: &AppState,
    admin: &Admin,
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let pim = &state.app.pim;
    // An approver who may not read role assignments still sees what waits.
    let found = match pim.alerts(&admin.ctx).await {
        Ok(found) => found,
        Err(ServiceError::Forbidden { .. }) => Vec::new(),
        Err(error) => return refused(error),
    };
    let mut alerts = Vec::new();
    for alert in found {
        let kind = serde_json::to_value(alert.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let convertible = matches!(
            kind.as_str(),
            "permanentPrivilegedAssignment" | "assignedOutsidePim"
        );
        let mut incidents = Vec::new();
        for incident in alert.incidents.iter().take(100) {
            incidents.push(Incident {
                principal: principal_name(state, admin, incident.principal_id).await,
                role: role_name(incident.role_definition_id),
                scope: incident.directory_scope_id.clone(),
                since: incident.since.to_string(),
                subject: incident.subject_id,
            });
        }
        alerts.push(AlertRow {
            kind,
            description: alert.description,
            remediation: alert.remediation,
            severity: alert.severity,
            convertible,
            count: alert.incident_count,
            incidents,
        });
    }
    let mut waiting = Vec::new();
    for (family, kind) in [
        (Family::Roles, ScheduleKind::Assignment),
        (Family::Roles, ScheduleKind::Eligibility),
        (Family::Groups, ScheduleKind::Assignment),
        (Family::Groups, ScheduleKind::Eligibility),
    ] {
        let page = match pim
            .list_requests(&admin.ctx, family, kind, RequestFilter::AwaitingMe, None)
            .await
        {
            Ok(page) => page,
            Err(error) => return refused(error),
        };
        for q in page.value {
            let role = match (q.role_definition_id, q.access_id) {
                (Some(role), _) => role_name(role),
                (None, Some(access)) => format!(
                    "{} ({})",
                    q.group_display_name.as_deref().unwrap_or("group"),
                    access.as_str()
                ),
                (None, None) => String::new(),
            };
            waiting.push(WaitingRow {
                id: q.id,
                kind: path_kind(family, q.kind),
                who: match &q.principal {
                    Some(p) => p["userPrincipalName"].as_str().unwrap_or("").to_string(),
                    None => principal_name(state, admin, q.principal_id).await,
                },
                action: serde_json::to_value(q.action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                role,
                justification: q.justification.unwrap_or_default(),
            });
        }
    }
    let roles = roles::BUILT_IN_ROLES
        .iter()
        .map(|r| RoleRow {
            id: r.id,
            name: r.display_name,
            privileged: r.is_privileged,
        })
        .collect();
    pages::page(
        status,
        &OverviewPage {
            admin,
            alerts,
            waiting,
            roles,
            may_manage: holds(&admin.ctx, action::ROLE_ASSIGNMENTS_MANAGE),
            notice,
            error,
        },
    )
}

/// A refusal said on the page (the administrator's own mistakes and the rules'
/// answers); anything else as everywhere in the console.
async fn said(state: &AppState, admin: &Admin, error: ServiceError) -> Response {
    let status = match &error {
        ServiceError::Validation(_) => StatusCode::BAD_REQUEST,
        ServiceError::Conflict { .. } => StatusCode::CONFLICT,
        _ => return refused(error),
    };
    render(state, admin, None, Some(error.to_string()), status).await
}

async fn assign(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let (Some(role), Some(named)) = (
        form.get("role").and_then(|r| Uuid::parse_str(r).ok()),
        form.get("principal"),
    ) else {
        return render(
            &state,
            &admin,
            None,
            Some("Choose a role and name a user.".to_string()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let principal = match named_object(&state, &admin, named).await {
        Ok(id) => id,
        Err(Ok(message)) => {
            return render(&state, &admin, None, Some(message), StatusCode::BAD_REQUEST).await;
        }
        Err(Err(page)) => return page,
    };
    let kind = match form.get("kind") {
        Some("assignment") => ScheduleKind::Assignment,
        _ => ScheduleKind::Eligibility,
    };
    let expiration = match number(form.get("days"), 1, 3650) {
        Ok(Some(days)) => json!({"type": "afterDuration", "duration": format!("P{days}D")}),
        Ok(None) => json!({"type": "noExpiration"}),
        Err(message) => {
            return render(&state, &admin, None, Some(message), StatusCode::BAD_REQUEST).await;
        }
    };
    // A group's membership or ownership, or a role.
    let (family, target) = match form.get("group").map(str::trim).filter(|g| !g.is_empty()) {
        Some(group) => {
            let (Ok(group), Some(access)) = (
                Uuid::parse_str(group),
                form.get("access").and_then(GroupAccess::parse),
            ) else {
                return render(
                    &state,
                    &admin,
                    None,
                    Some("Name the group by its id, and choose member or owner.".to_string()),
                    StatusCode::BAD_REQUEST,
                )
                .await;
            };
            (
                Family::Groups,
                json!({"groupId": group, "accessId": access.as_str()}),
            )
        }
        None => (
            Family::Roles,
            json!({"roleDefinitionId": role, "directoryScopeId": "/"}),
        ),
    };
    let mut body = json!({
        "action": "adminAssign",
        "principalId": principal,
        "justification": form.get("justification"),
        "scheduleInfo": {"expiration": expiration},
    });
    if let (Some(body), Some(target)) = (body.as_object_mut(), target.as_object()) {
        body.extend(target.clone());
    }
    match state
        .app
        .pim
        .create_request(&admin.ctx, family, kind, body)
        .await
    {
        Ok(_) => pages::redirect("/admin/pim?done=assigned"),
        Err(error) => said(&state, &admin, error).await,
    }
}

async fn convert(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, .. }: Posted,
) -> Response {
    match state
        .app
        .pim
        .convert_to_eligible(&admin.ctx, id, None)
        .await
    {
        Ok(_) => pages::redirect("/admin/pim?done=converted"),
        Err(error) => said(&state, &admin, error).await,
    }
}

async fn answer(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, Uuid)>,
    Posted { admin, form }: Posted,
) -> Response {
    let (family, kind) = match kind.as_str() {
        "eligibility" => (Family::Roles, ScheduleKind::Eligibility),
        "assignment" => (Family::Roles, ScheduleKind::Assignment),
        "group-eligibility" => (Family::Groups, ScheduleKind::Eligibility),
        "group-assignment" => (Family::Groups, ScheduleKind::Assignment),
        _ => return pages::error_page(StatusCode::NOT_FOUND, "No such request."),
    };
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return pages::error_page(StatusCode::BAD_REQUEST, "Approve or deny."),
    };
    match state
        .app
        .pim
        .answer_request(&admin.ctx, family, kind, id, approve, None)
        .await
    {
        Ok(_) => pages::redirect(if approve {
            "/admin/pim?done=approved"
        } else {
            "/admin/pim?done=denied"
        }),
        Err(error) => said(&state, &admin, error).await,
    }
}

#[derive(Template)]
#[template(path = "console/pim_role.html")]
struct RolePage<'a> {
    admin: &'a Admin,
    role: String,
    role_id: Uuid,
    version: i64,
    mfa: bool,
    justification: bool,
    ticket: bool,
    approval: bool,
    assignment_justification: bool,
    max_hours: String,
    context: String,
    approvers: String,
    timeout_hours: i64,
    eligible_days: String,
    assigned_days: String,
    may_manage: bool,
    notice: Option<&'static str>,
    error: Option<String>,
}

/// A number field: blank is none; anything else must be a whole number within
/// `min..=max`.
fn number(text: Option<&str>, min: i64, max: i64) -> Result<Option<i64>, String> {
    let Some(text) = text else { return Ok(None) };
    match text.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "{text:?} is not a whole number from {min} to {max}."
        )),
    }
}

fn days_of(seconds: Option<i64>) -> String {
    seconds
        .map(|s| (s / 86_400).to_string())
        .unwrap_or_default()
}

async fn role_settings(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let notice = (query.done.as_deref() == Some("saved")).then_some("Saved.");
    role_page(&state, &admin, id, notice, None, StatusCode::OK).await
}

async fn role_page(
    state: &AppState,
    admin: &Admin,
    id: Uuid,
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let view = match state.app.pim.role_settings(&admin.ctx, id).await {
        Ok(view) => view,
        Err(error) => return refused(error),
    };
    let settings = view.settings;
    let mut approvers = Vec::new();
    for approver in &settings.approvers {
        approvers.push(match approver {
            tessera_service::pim::Approver::User(user) => principal_name(state, admin, *user).await,
            tessera_service::pim::Approver::Group(group) => format!("group:{group}"),
        });
    }
    pages::page(
        status,
        &RolePage {
            admin,
            role: view.role.to_string(),
            role_id: id,
            version: view.version,
            max_hours: format!("{}", settings.max_activation_seconds as f64 / 3600.0),
            context: settings
                .activation_authentication_context
                .clone()
                .unwrap_or_default(),
            approvers: approvers.join(", "),
            timeout_hours: (settings.approval_timeout_seconds + 3599) / 3600,
            assignment_justification: settings.assignment_requires_justification,
            eligible_days: days_of(settings.max_eligibility_seconds),
            assigned_days: days_of(settings.max_assignment_seconds),
            mfa: settings.activation_requires_mfa,
            justification: settings.activation_requires_justification,
            ticket: settings.activation_requires_ticket,
            approval: settings.activation_requires_approval,
            may_manage: holds(&admin.ctx, action::ROLE_ASSIGNMENTS_MANAGE),
            notice,
            error,
        },
    )
}

async fn save_role_settings(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(page) => return page,
    };
    let refuse = |message: String| async {
        role_page(
            &state,
            &admin,
            id,
            None,
            Some(message),
            StatusCode::BAD_REQUEST,
        )
        .await
    };
    // Half hours, as the form offers them.
    let half_hours = match form.get("max_hours").map(|h| h.parse::<f64>()) {
        Some(Ok(h)) if h.is_finite() && (0.5..=24.0).contains(&h) => (h * 2.0).round() as i64,
        _ => return refuse("The longest activation is ½ to 24 hours.".to_string()).await,
    };
    let (timeout_hours, eligible_days, assigned_days) = match (
        number(form.get("timeout_hours"), 1, 168),
        number(form.get("eligible_days"), 1, 3650),
        number(form.get("assigned_days"), 1, 3650),
    ) {
        (Ok(Some(t)), Ok(e), Ok(a)) => (t, e, a),
        (Ok(None), _, _) => return refuse("Say how long an approval may wait.".to_string()).await,
        (Err(m), _, _) | (_, Err(m), _) | (_, _, Err(m)) => return refuse(m).await,
    };
    let mut approvers = Vec::new();
    for named in form
        .get("approvers")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if let Some(group) = named.strip_prefix("group:") {
            match Uuid::parse_str(group) {
                Ok(group) => approvers.push(json!({"type": "group", "id": group})),
                Err(_) => return refuse(format!("{named} is not group:<id>.")).await,
            }
            continue;
        }
        match named_object(&state, &admin, named).await {
            Ok(user) => approvers.push(json!({"type": "user", "id": user})),
            Err(Ok(message)) => return refuse(message).await,
            Err(Err(page)) => return page,
        }
    }
    let body = json!({
        "maxActivationSeconds": half_hours * 1800,
        "activationRequiresMfa": form.get("mfa").is_some(),
        "activationAuthenticationContext": form.get("context"),
        "activationRequiresJustification": form.get("justification").is_some(),
        "activationRequiresTicket": form.get("ticket").is_some(),
        "activationRequiresApproval": form.get("approval").is_some(),
        "approvers": approvers,
        "approvalTimeoutSeconds": timeout_hours * 3600,
        "maxEligibilitySeconds": eligible_days.map(|d| d * 86_400),
        "maxAssignmentSeconds": assigned_days.map(|d| d * 86_400),
        "assignmentRequiresJustification": form.get("assignment_justification").is_some(),
    });
    match state
        .app
        .pim
        .replace_role_settings(&admin.ctx, id, body, Some(version))
        .await
    {
        Ok(_) => pages::redirect(&format!("/admin/pim/roles/{id}?done=saved")),
        // A stale version says to reload (412); the rest of the client's mistakes
        // are said above the form.
        Err(error) => match super::form_refusal(error, "role's settings") {
            Ok((status, message)) => {
                role_page(&state, &admin, id, None, Some(message), status).await
            }
            Err(page) => page,
        },
    }
}

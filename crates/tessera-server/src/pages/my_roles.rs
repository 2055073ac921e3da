//! My Account's privileged access pages: "My roles" (`/myaccount/roles`: what is
//! active, what one may activate, one's requests) and "Approvals"
//! (`/myaccount/approvals`: requests waiting for one's answer). The browser
//! session is the credential, and what its sign-in proved (MFA, authentication
//! contexts) is what an activation is checked against: where the role asks for
//! more, the user is sent through a step-up sign-in and comes back here.
//!
//! Directory roles and groups (PIM for groups: membership and ownership) are
//! listed together; a form says which family it is about (`family`: `role` or
//! `group`, with the group's id and `member` or `owner` in the role and scope
//! fields).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tessera_service::authn::SessionInfo;
use tessera_service::pim::{
    Family, GroupAccess, InstanceView, RequestFilter, RequestView, ScheduleKind, Status,
};
use tessera_service::{Context, ServiceError};
use uuid::Uuid;

use super::{Request, current_session, internal, page, redirect};
use crate::state::AppState;

/// Where a step-up sign-in started from My Account comes back to.
pub const MY_ROLES_RETURN_COOKIE: &str = "__Host-tessera-myroles";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/myaccount/roles", get(my_roles))
        .route("/myaccount/roles/activate", post(activate))
        .route("/myaccount/roles/deactivate", post(deactivate))
        .route("/myaccount/requests/{id}/cancel", post(cancel))
        .route("/myaccount/approvals", get(approvals))
        .route("/myaccount/approvals/{id}", post(answer))
}

/// A role as the page lists it.
struct Held {
    family: &'static str,
    role: String,
    role_id: Uuid,
    scope: String,
    scope_id: String,
    kind: &'static str,
    end: Option<String>,
    activated: bool,
}

struct Asked {
    id: Uuid,
    family: &'static str,
    kind: &'static str,
    action: String,
    role: String,
    status: String,
    created: String,
    waiting: bool,
}

#[derive(Template)]
#[template(path = "myaccount/roles.html")]
struct RolesPage<'a> {
    csrf: &'a str,
    active: Vec<Held>,
    eligible: Vec<Held>,
    requests: Vec<Asked>,
    notice: Option<&'static str>,
    error: Option<String>,
}

struct Waiting {
    id: Uuid,
    family: &'static str,
    kind: &'static str,
    who: String,
    scope: String,
    length: String,
    asked_by: Option<String>,
    action: String,
    role: String,
    justification: String,
    ticket: Option<String>,
    created: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "myaccount/approvals.html")]
struct ApprovalsPage<'a> {
    csrf: &'a str,
    waiting: Vec<Waiting>,
    notice: Option<&'static str>,
    error: Option<String>,
}

fn role_name(id: Uuid) -> String {
    tessera_directory::roles::built_in(id)
        .map(|r| r.display_name.to_string())
        .unwrap_or_else(|| id.to_string())
}

fn family_of(text: &str) -> Option<Family> {
    match text {
        "" | "role" => Some(Family::Roles),
        "group" => Some(Family::Groups),
        _ => None,
    }
}

/// What a schedule or request is for, as the pages say it: the role and its
/// scope, or the group and whether membership or ownership.
struct Named {
    family: &'static str,
    name: String,
    id: Uuid,
    scope: String,
    scope_id: String,
}

fn named(
    role: Option<Uuid>,
    scope: Option<&str>,
    group: Option<Uuid>,
    access: Option<GroupAccess>,
    group_name: Option<&str>,
) -> Named {
    match (role, group, access) {
        (_, Some(group), Some(access)) => Named {
            family: "group",
            name: format!(
                "{} ({})",
                group_name.unwrap_or("group"),
                if access == GroupAccess::Owner {
                    "owner"
                } else {
                    "member"
                }
            ),
            id: group,
            scope: if access == GroupAccess::Owner {
                "group ownership".to_string()
            } else {
                "group membership".to_string()
            },
            scope_id: access.as_str().to_string(),
        },
        (role, _, _) => {
            let role = role.unwrap_or_default();
            let scope = scope.unwrap_or("/");
            Named {
                family: "role",
                name: role_name(role),
                id: role,
                scope: scope_name(scope),
                scope_id: scope.to_string(),
            }
        }
    }
}

fn named_instance(i: &InstanceView) -> Named {
    named(
        i.role_definition_id,
        i.directory_scope_id.as_deref(),
        i.group_id,
        i.access_id,
        i.group_display_name.as_deref(),
    )
}

fn named_request(q: &RequestView) -> Named {
    named(
        q.role_definition_id,
        q.directory_scope_id.as_deref(),
        q.group_id,
        q.access_id,
        q.group_display_name.as_deref(),
    )
}

/// The request body's target fields for a form's family, role and scope.
fn target_fields(family: Family, id: Uuid, scope: &str) -> serde_json::Value {
    match family {
        Family::Roles => json!({ "roleDefinitionId": id, "directoryScopeId": scope }),
        Family::Groups => json!({ "groupId": id, "accessId": scope }),
    }
}

fn scope_name(scope: &str) -> String {
    if scope == "/" {
        "whole directory".to_string()
    } else {
        format!("unit {}", scope.trim_start_matches("/administrativeUnits/"))
    }
}

fn kind_name(kind: ScheduleKind) -> &'static str {
    match kind {
        ScheduleKind::Eligibility => "eligibility",
        ScheduleKind::Assignment => "assignment",
    }
}

fn kind_of(text: &str) -> Option<ScheduleKind> {
    match text {
        "eligibility" => Some(ScheduleKind::Eligibility),
        "assignment" => Some(ScheduleKind::Assignment),
        _ => None,
    }
}

fn action_name(action: &impl serde::Serialize) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn status_name(status: Status) -> String {
    format!("{status:?}")
}

async fn context_of(
    state: &AppState,
    req: &Request,
    session: &SessionInfo,
) -> Result<Context, Response> {
    state
        .app
        .sign_in
        .session_context(
            session,
            req.ctx.correlation_id.clone(),
            req.ctx.client_address.clone(),
        )
        .await
        .map_err(internal)
}

/// A posted form of these pages: parsed, its anti-forgery token checked against
/// the session's, and the caller's context made from the session.
async fn posted<T: for<'de> Deserialize<'de> + super::input::WithCsrf>(
    state: &AppState,
    req: &Request,
    body: &Bytes,
) -> Result<(T, SessionInfo, Context), Response> {
    let (sent, session) = super::session_form::<T>(state, req, body).await?;
    let ctx = context_of(state, req, &session).await?;
    Ok((sent, session, ctx))
}

macro_rules! csrf_forms {
    ($($form:ty),*) => {
        $(impl super::input::WithCsrf for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}
csrf_forms!(ActivateForm, DeactivateForm, KindForm, AnswerForm);

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn my_roles(
    State(state): State<AppState>,
    req: Request,
    Query(query): Query<DoneQuery>,
) -> Response {
    let session = match current_session(&state, &req).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let notice = match query.done.as_deref() {
        Some("activated") => Some("The role is active."),
        Some("requested") => Some("Your request waits for approval."),
        Some("deactivated") => Some("The role is no longer active."),
        Some("canceled") => Some("The request was withdrawn."),
        Some("stepped-up") => Some("You signed in again: activate the role now."),
        _ => None,
    };
    render_roles(&state, &req, &session, notice, None, StatusCode::OK).await
}

async fn render_roles(
    state: &AppState,
    req: &Request,
    session: &SessionInfo,
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let ctx = match context_of(state, req, session).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let pim = &state.app.pim;
    let me = Some(session.user_id);
    let listed = async {
        let (mut active, mut eligible, mut requests) = (Vec::new(), Vec::new(), Vec::new());
        for family in [Family::Roles, Family::Groups] {
            active.extend(
                pim.list_instances(&ctx, family, ScheduleKind::Assignment, me, None)
                    .await?
                    .value,
            );
            eligible.extend(
                pim.list_instances(&ctx, family, ScheduleKind::Eligibility, me, None)
                    .await?
                    .value,
            );
            for kind in [ScheduleKind::Assignment, ScheduleKind::Eligibility] {
                requests.extend(
                    pim.list_requests(&ctx, family, kind, RequestFilter::MadeByMe, None)
                        .await?
                        .value,
                );
            }
        }
        Ok::<_, ServiceError>((active, eligible, requests))
    };
    let (active, eligible, mut requests) = match listed.await {
        Ok(found) => found,
        Err(error) => return internal(error),
    };
    requests.sort_by_key(|q| std::cmp::Reverse(q.created_date_time));
    requests.truncate(50);
    let held = |i: &InstanceView, kind: &'static str| {
        let named = named_instance(i);
        Held {
            family: named.family,
            role: named.name,
            role_id: named.id,
            scope: named.scope,
            scope_id: named.scope_id,
            kind,
            end: i.end_date_time.map(|e| e.to_string()),
            activated: i.assignment_type == Some("Activated"),
        }
    };
    page(
        status,
        &RolesPage {
            csrf: &session.csrf,
            active: active
                .iter()
                .map(|i| {
                    held(
                        i,
                        if i.assignment_type == Some("Activated") {
                            "activated"
                        } else {
                            "assigned"
                        },
                    )
                })
                .collect(),
            eligible: eligible.iter().map(|i| held(i, "eligible")).collect(),
            requests: requests
                .iter()
                .map(|q: &RequestView| Asked {
                    id: q.id,
                    family: named_request(q).family,
                    kind: kind_name(q.kind),
                    action: action_name(&q.action),
                    role: named_request(q).name,
                    status: status_name(q.status),
                    created: q.created_date_time.to_string(),
                    waiting: q.status == Status::PendingApproval,
                })
                .collect(),
            notice,
            error,
        },
    )
}

#[derive(Deserialize)]
struct ActivateForm {
    csrf: String,
    #[serde(default)]
    family: String,
    role: Uuid,
    scope: String,
    #[serde(default)]
    justification: String,
    #[serde(default)]
    ticket: String,
    minutes: u16,
}

/// Sends the user through a step-up sign-in for `acr`, back to `page` (`roles`
/// or `approvals`).
async fn step_up(
    state: &AppState,
    req: &Request,
    session: &SessionInfo,
    acr: &str,
    page: &str,
) -> Response {
    super::step_up_to(state, req, session, acr, (MY_ROLES_RETURN_COOKIE, page)).await
}

async fn activate(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (sent, session, ctx) = match posted::<ActivateForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(family) = family_of(&sent.family) else {
        return super::error_page(StatusCode::BAD_REQUEST, "The form was not understood.");
    };
    let minutes = sent.minutes.clamp(1, 1440);
    let mut body = target_fields(family, sent.role, &sent.scope);
    body["action"] = json!("selfActivate");
    body["principalId"] = json!(session.user_id);
    body["justification"] = json!(sent.justification.trim());
    body["scheduleInfo"] =
        json!({"expiration": {"type": "afterDuration", "duration": format!("PT{minutes}M")}});
    if !sent.ticket.trim().is_empty() {
        body["ticketInfo"] = json!({"ticketNumber": sent.ticket.trim()});
    }
    let mut result = state
        .app
        .pim
        .create_request(&ctx, family, ScheduleKind::Assignment, body.clone())
        .await;
    // Longer than the role allows: the longest it allows.
    if matches!(&result, Err(ServiceError::Validation(errors))
        if errors.errors.iter().any(|e| e.field == "scheduleInfo" && e.message.contains("seconds allowed")))
    {
        body["scheduleInfo"] = json!({"expiration": {"type": "notSpecified"}});
        result = state
            .app
            .pim
            .create_request(&ctx, family, ScheduleKind::Assignment, body)
            .await;
    }
    match result {
        Ok(made) if made.status == Status::PendingApproval => {
            redirect("/myaccount/roles?done=requested")
        }
        Ok(_) => redirect("/myaccount/roles?done=activated"),
        Err(ServiceError::InsufficientAuthentication { acr_values, .. }) => {
            step_up(&state, &req, &session, &acr_values, "roles").await
        }
        Err(error) => refusal(&state, &req, &session, error).await,
    }
}

/// A refusal said on the page (the user's own mistakes and the rules'
/// answers); anything else is the error page.
async fn refusal(
    state: &AppState,
    req: &Request,
    session: &SessionInfo,
    error: ServiceError,
) -> Response {
    let status = match &error {
        ServiceError::Validation(_) => StatusCode::BAD_REQUEST,
        ServiceError::Forbidden { .. } => StatusCode::FORBIDDEN,
        ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::CONFLICT,
    };
    match error {
        ServiceError::Validation(_)
        | ServiceError::Conflict { .. }
        | ServiceError::Forbidden { .. }
        | ServiceError::NotFound { .. } => {
            let message = error.to_string();
            render_roles(state, req, session, None, Some(message), status).await
        }
        other => internal(other),
    }
}

#[derive(Deserialize)]
struct DeactivateForm {
    csrf: String,
    #[serde(default)]
    family: String,
    role: Uuid,
    scope: String,
}

async fn deactivate(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (sent, session, ctx) = match posted::<DeactivateForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(family) = family_of(&sent.family) else {
        return super::error_page(StatusCode::BAD_REQUEST, "The form was not understood.");
    };
    let mut body = target_fields(family, sent.role, &sent.scope);
    body["action"] = json!("selfDeactivate");
    body["principalId"] = json!(session.user_id);
    match state
        .app
        .pim
        .create_request(&ctx, family, ScheduleKind::Assignment, body)
        .await
    {
        Ok(_) => redirect("/myaccount/roles?done=deactivated"),
        Err(error) => refusal(&state, &req, &session, error).await,
    }
}

#[derive(Deserialize)]
struct KindForm {
    csrf: String,
    #[serde(default)]
    family: String,
    kind: String,
}

async fn cancel(
    State(state): State<AppState>,
    req: Request,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Response {
    let (sent, session, ctx) = match posted::<KindForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (Some(kind), Some(family)) = (kind_of(&sent.kind), family_of(&sent.family)) else {
        return super::error_page(StatusCode::BAD_REQUEST, "The form was not understood.");
    };
    match state.app.pim.cancel_request(&ctx, family, kind, id).await {
        Ok(_) => redirect("/myaccount/roles?done=canceled"),
        Err(error) => refusal(&state, &req, &session, error).await,
    }
}

async fn approvals(
    State(state): State<AppState>,
    req: Request,
    Query(query): Query<DoneQuery>,
) -> Response {
    let session = match current_session(&state, &req).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let notice = match query.done.as_deref() {
        Some("approved") => Some("Approved."),
        Some("denied") => Some("Denied."),
        Some("stepped-up") => Some("You signed in again: answer the request now."),
        _ => None,
    };
    render_approvals(&state, &req, &session, notice, None, StatusCode::OK).await
}

async fn render_approvals(
    state: &AppState,
    req: &Request,
    session: &SessionInfo,
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let ctx = match context_of(state, req, session).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let mut found = Vec::new();
    for family in [Family::Roles, Family::Groups] {
        for kind in [ScheduleKind::Assignment, ScheduleKind::Eligibility] {
            match state
                .app
                .pim
                .list_requests(&ctx, family, kind, RequestFilter::AwaitingMe, None)
                .await
            {
                Ok(page) => found.extend(page.value),
                Err(error) => return internal(error),
            }
        }
    }
    let mut waiting = Vec::new();
    for q in found {
        // The principal's user principal name first (a display name can be
        // anything), as the service gives it to an approver.
        let who = match &q.principal {
            Some(p) => format!(
                "{} ({})",
                p["userPrincipalName"].as_str().unwrap_or(""),
                p["displayName"].as_str().unwrap_or("")
            ),
            None => q.principal_id.to_string(),
        };
        let asked_by =
            if q.created_by["user"]["id"].as_str() == Some(q.principal_id.to_string().as_str()) {
                None
            } else {
                Some(
                    q.created_by["user"]["id"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            };
        let length = q
            .schedule_info
            .as_ref()
            .and_then(|i| i.expiration.as_ref())
            .and_then(|e| {
                e.duration
                    .clone()
                    .or_else(|| e.end_date_time.map(|t| format!("until {t}")))
            })
            .unwrap_or_else(|| "the longest allowed".to_string());
        let named = named_request(&q);
        waiting.push(Waiting {
            id: q.id,
            family: named.family,
            kind: kind_name(q.kind),
            who,
            scope: named.scope,
            length,
            asked_by,
            action: action_name(&q.action),
            role: named.name,
            justification: q
                .justification
                .clone()
                .unwrap_or_else(|| "(none)".to_string()),
            ticket: q.ticket_info.as_ref().and_then(|t| t.ticket_number.clone()),
            created: q.created_date_time.to_string(),
            expires: q
                .approval_expires_date_time
                .map(|e| e.to_string())
                .unwrap_or_default(),
        });
    }
    page(
        status,
        &ApprovalsPage {
            csrf: &session.csrf,
            waiting,
            notice,
            error,
        },
    )
}

#[derive(Deserialize)]
struct AnswerForm {
    csrf: String,
    #[serde(default)]
    family: String,
    kind: String,
    decision: String,
    #[serde(default)]
    justification: String,
}

async fn answer(
    State(state): State<AppState>,
    req: Request,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Response {
    let (sent, session, ctx) = match posted::<AnswerForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (Some(kind), Some(family), approve) = (
        kind_of(&sent.kind),
        family_of(&sent.family),
        sent.decision == "approve",
    ) else {
        return super::error_page(StatusCode::BAD_REQUEST, "The form was not understood.");
    };
    if !approve && sent.decision != "deny" {
        return super::error_page(StatusCode::BAD_REQUEST, "The form was not understood.");
    }
    let justification = Some(sent.justification.trim().to_string()).filter(|j| !j.is_empty());
    match state
        .app
        .pim
        .answer_request(&ctx, family, kind, id, approve, justification)
        .await
    {
        Ok(_) => redirect(if approve {
            "/myaccount/approvals?done=approved"
        } else {
            "/myaccount/approvals?done=denied"
        }),
        Err(ServiceError::InsufficientAuthentication { acr_values, .. }) => {
            step_up(&state, &req, &session, &acr_values, "approvals").await
        }
        Err(
            error @ (ServiceError::Validation(_)
            | ServiceError::Conflict { .. }
            | ServiceError::Forbidden { .. }
            | ServiceError::NotFound { .. }),
        ) => {
            let message = error.to_string();
            render_approvals(
                &state,
                &req,
                &session,
                None,
                Some(message),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(error) => internal(error),
    }
}

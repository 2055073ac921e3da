//! My Account's privileged access pages: "My roles" (`/myaccount/roles`: what is
//! active, what one may activate, one's requests) and "Approvals"
//! (`/myaccount/approvals`: requests waiting for one's answer). The browser
//! session is the credential, and what its sign-in proved (MFA, authentication
//! contexts) is what an activation is checked against: where the role asks for
//! more, the user is sent through a step-up sign-in and comes back here.

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
use tessera_service::pim::{RequestFilter, RequestView, ScheduleKind, Status};
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
        let active = pim
            .list_instances(&ctx, ScheduleKind::Assignment, me, None)
            .await?
            .value;
        let eligible = pim
            .list_instances(&ctx, ScheduleKind::Eligibility, me, None)
            .await?
            .value;
        let mut requests = pim
            .list_requests(
                &ctx,
                ScheduleKind::Assignment,
                RequestFilter::MadeByMe,
                None,
            )
            .await?
            .value;
        requests.extend(
            pim.list_requests(
                &ctx,
                ScheduleKind::Eligibility,
                RequestFilter::MadeByMe,
                None,
            )
            .await?
            .value,
        );
        Ok::<_, ServiceError>((active, eligible, requests))
    };
    let (active, eligible, mut requests) = match listed.await {
        Ok(found) => found,
        Err(error) => return internal(error),
    };
    requests.sort_by_key(|q| std::cmp::Reverse(q.created_date_time));
    requests.truncate(50);
    let held = |i: &tessera_service::pim::InstanceView, kind: &'static str| Held {
        role: role_name(i.role_definition_id),
        role_id: i.role_definition_id,
        scope: scope_name(&i.directory_scope_id),
        scope_id: i.directory_scope_id.clone(),
        kind,
        end: i.end_date_time.map(|e| e.to_string()),
        activated: i.assignment_type == Some("Activated"),
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
                    kind: kind_name(q.kind),
                    action: action_name(&q.action),
                    role: role_name(q.role_definition_id),
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
    let minutes = sent.minutes.clamp(1, 1440);
    let mut body = json!({
        "action": "selfActivate",
        "principalId": session.user_id,
        "roleDefinitionId": sent.role,
        "directoryScopeId": sent.scope,
        "justification": sent.justification.trim(),
        "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": format!("PT{minutes}M")}},
    });
    if !sent.ticket.trim().is_empty() {
        body["ticketInfo"] = json!({"ticketNumber": sent.ticket.trim()});
    }
    let mut result = state
        .app
        .pim
        .create_request(&ctx, ScheduleKind::Assignment, body.clone())
        .await;
    // Longer than the role allows: the longest it allows.
    if matches!(&result, Err(ServiceError::Validation(errors))
        if errors.errors.iter().any(|e| e.field == "scheduleInfo" && e.message.contains("seconds allowed")))
    {
        body["scheduleInfo"] = json!({"expiration": {"type": "notSpecified"}});
        result = state
            .app
            .pim
            .create_request(&ctx, ScheduleKind::Assignment, body)
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
    role: Uuid,
    scope: String,
}

async fn deactivate(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (sent, session, ctx) = match posted::<DeactivateForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let body = json!({
        "action": "selfDeactivate",
        "principalId": session.user_id,
        "roleDefinitionId": sent.role,
        "directoryScopeId": sent.scope,
    });
    match state
        .app
        .pim
        .create_request(&ctx, ScheduleKind::Assignment, body)
        .await
    {
        Ok(_) => redirect("/myaccount/roles?done=deactivated"),
        Err(error) => refusal(&state, &req, &session, error).await,
    }
}

#[derive(Deserialize)]
struct KindForm {
    csrf: String,
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
    let Some(kind) = kind_of(&sent.kind) else {
        return super::error_page(StatusCode::BAD_REQUEST, "The form was not understood.");
    };
    match state.app.pim.cancel_request(&ctx, kind, id).await {
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
    for kind in [ScheduleKind::Assignment, ScheduleKind::Eligibility] {
        match state
            .app
            .pim
            .list_requests(&ctx, kind, RequestFilter::AwaitingMe, None)
            .await
        {
            Ok(page) => found.extend(page.value),
            Err(error) => return internal(error),
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
        waiting.push(Waiting {
            id: q.id,
            kind: kind_name(q.kind),
            who,
            scope: scope_name(&q.directory_scope_id),
            length,
            asked_by,
            action: action_name(&q.action),
            role: role_name(q.role_definition_id),
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
    let (Some(kind), approve) = (kind_of(&sent.kind), sent.decision == "approve") else {
        return super::error_page(StatusCode::BAD_REQUEST, "The form was not understood.");
    };
    if !approve && sent.decision != "deny" {
        return super::error_page(StatusCode::BAD_REQUEST, "The form was not understood.");
    }
    let justification = Some(sent.justification.trim().to_string()).filter(|j| !j.is_empty());
    match state
        .app
        .pim
        .answer_request(&ctx, kind, id, approve, justification)
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

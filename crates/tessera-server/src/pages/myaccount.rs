//! My Account at `/myaccount`: the signed-in user's own profile, security info
//! (`/security-info`, part of it), recent sign-ins with "this wasn't me", and My
//! Apps. The browser session is the credential; every change carries the session's
//! anti-forgery token.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use tessera_directory::model::User;
use tessera_service::ServiceError;
use tessera_service::authn::{MyApp, SessionInfo, SignInEntry};
use uuid::Uuid;

use super::input::CsrfForm;
use super::{Request, current_session, form, internal, page, redirect, signed_in_post};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/myaccount", get(profile))
        .route("/myaccount/sign-ins", get(sign_ins))
        .route("/myaccount/sign-ins/{id}/report", post(report))
        .route("/myaccount/apps", get(apps))
}

#[derive(Template)]
#[template(path = "myaccount/profile.html")]
struct ProfilePage<'a> {
    csrf: &'a str,
    user: User,
}

async fn profile(State(state): State<AppState>, req: Request) -> Response {
    let session = match current_session(&state, &req).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match state.app.sign_in.my_profile(&session).await {
        Ok(user) => page(
            StatusCode::OK,
            &ProfilePage {
                csrf: &session.csrf,
                user,
            },
        ),
        Err(error) => internal(error),
    }
}

#[derive(Template)]
#[template(path = "myaccount/sign_ins.html")]
struct SignInsPage<'a> {
    csrf: &'a str,
    entries: Vec<SignInEntry>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn sign_ins(
    State(state): State<AppState>,
    req: Request,
    Query(query): Query<DoneQuery>,
) -> Response {
    let session = match current_session(&state, &req).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    render_sign_ins(&state, &session, query.done.as_deref()).await
}

async fn render_sign_ins(state: &AppState, session: &SessionInfo, done: Option<&str>) -> Response {
    let notice = match done {
        Some("reported") => Some(
            "Thank you. Your administrators will see your report. If you did not sign in, change your password and review your sign-in methods now.",
        ),
        _ => None,
    };
    match state.app.sign_in.my_sign_ins(session).await {
        Ok(entries) => page(
            StatusCode::OK,
            &SignInsPage {
                csrf: &session.csrf,
                entries,
                notice,
            },
        ),
        Err(error) => internal(error),
    }
}

/// "This wasn't me" on one of the user's own sign-ins.
async fn report(
    State(state): State<AppState>,
    req: Request,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Response {
    let sent: Option<CsrfForm> = form(&req.headers, &body);
    let session = match signed_in_post(&state, &req, sent.as_ref().map(|f| f.csrf.as_str())).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match state.app.sign_in.report_sign_in(&session, id).await {
        Ok(()) => redirect("/myaccount/sign-ins?done=reported"),
        Err(ServiceError::NotFound { .. }) => super::error_page(
            StatusCode::NOT_FOUND,
            "That sign-in is not one of your recent sign-ins.",
        ),
        Err(error) => internal(error),
    }
}

#[derive(Template)]
#[template(path = "myaccount/apps.html")]
struct AppsPage<'a> {
    csrf: &'a str,
    apps: Vec<MyApp>,
}

async fn apps(State(state): State<AppState>, req: Request) -> Response {
    let session = match current_session(&state, &req).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match state.app.sign_in.my_apps(&session).await {
        Ok(apps) => page(
            StatusCode::OK,
            &AppsPage {
                csrf: &session.csrf,
                apps,
            },
        ),
        Err(error) => internal(error),
    }
}

//! Shared Signals in the console: the streams Tessera transmits on (status,
//! queue, lag, deliveries, last error) with "send verification"; which
//! applications may receive and which device managers may report
//! compliance; the transmitters Tessera receives from (what came, what was
//! refused), added with the push secret shown once; and a user's revocation
//! timeline.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tessera_directory::roles::action;
use tessera_service::signals::{ReceivedStreamView, SignalsSettings, StreamView, TimelineEntry};
use uuid::Uuid;

use super::forms::Posted;
use super::users::ShownOnce;
use super::{Admin, done, form_refusal, holds, refused};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/signals", get(overview))
        .route("/admin/signals/settings", post(change_settings))
        .route("/admin/signals/streams/{stream_id}/verify", post(verify))
        .route("/admin/signals/transmitters", post(add_transmitter))
        .route(
            "/admin/signals/transmitters/{id}/delete",
            post(remove_transmitter),
        )
        .route("/admin/signals/timeline", get(timeline))
}

#[derive(Template)]
#[template(path = "console/signals.html")]
struct OverviewPage<'a> {
    admin: &'a Admin,
    streams: Vec<StreamView>,
    settings: SignalsSettings,
    version: i64,
    transmitters: Vec<ReceivedStreamView>,
    may_manage: bool,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "console/signals_timeline.html")]
struct TimelinePage<'a> {
    admin: &'a Admin,
    user: String,
    entries: Vec<TimelineEntry>,
}

async fn overview_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let signals = &state.app.signals;
    let streams = match signals.list_streams(&admin.ctx).await {
        Ok(streams) => streams,
        Err(error) => return refused(error),
    };
    let (settings, version) = match signals.settings(&admin.ctx).await {
        Ok(settings) => settings,
        Err(error) => return refused(error),
    };
    let transmitters = match signals.list_receivers(&admin.ctx).await {
        Ok(list) => list,
        Err(error) => return refused(error),
    };
    pages::page(
        status,
        &OverviewPage {
            admin,
            streams,
            settings,
            version,
            transmitters,
            may_manage: holds(&admin.ctx, action::POLICIES_MANAGE),
            error,
            notice,
        },
    )
}

async fn overview(State(state): State<AppState>, admin: Admin) -> Response {
    overview_page(&state, &admin, StatusCode::OK, None, None).await
}

/// Adds or removes a receiver application or a device manager.
async fn change_settings(
    State(state): State<AppState>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(page) => return page,
    };
    let app_id = form.get("appId").unwrap_or_default().trim().to_string();
    let (settings, _) = match state.app.signals.settings(&admin.ctx).await {
        Ok(settings) => settings,
        Err(error) => return refused(error),
    };
    let mut value = match serde_json::to_value(&settings) {
        Ok(value) => value,
        Err(_) => return pages::error_page(StatusCode::INTERNAL_SERVER_ERROR, "Try again."),
    };
    let same = |v: &Value| v.as_str().is_some_and(|a| a.eq_ignore_ascii_case(&app_id));
    match form.get("change").unwrap_or_default() {
        "allow" => {
            let mut list = value["receivers"].as_array().cloned().unwrap_or_default();
            list.retain(|r| !same(&r["appId"]));
            list.push(json!({ "appId": app_id, "readOnly": form.checked("readOnly") }));
            value["receivers"] = Value::Array(list);
        }
        "disallow" => {
            let mut list = value["receivers"].as_array().cloned().unwrap_or_default();
            list.retain(|r| !same(&r["appId"]));
            value["receivers"] = Value::Array(list);
        }
        "manager" => {
            let mut list = value["deviceManagers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            list.retain(|m| !same(m));
            list.push(json!(app_id));
            value["deviceManagers"] = Value::Array(list);
        }
        "unmanager" => {
            let mut list = value["deviceManagers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            list.retain(|m| !same(m));
            value["deviceManagers"] = Value::Array(list);
        }
        _ => return pages::error_page(StatusCode::BAD_REQUEST, "There is no such change."),
    }
    let change = tessera_service::Replacement::new(value, Some(version));
    match state.app.signals.set_settings(&admin.ctx, change).await {
        Ok(_) => pages::redirect("/admin/signals"),
        Err(error) => match form_refusal(error, "setting") {
            Ok((status, message)) => {
                overview_page(&state, &admin, status, Some(message), None).await
            }
            Err(page) => page,
        },
    }
}

async fn verify(
    State(state): State<AppState>,
    Path(stream_id): Path<String>,
    Posted { admin, .. }: Posted,
) -> Response {
    match state
        .app
        .signals
        .send_verification(&admin.ctx, &stream_id)
        .await
    {
        Ok(()) => {
            overview_page(
                &state,
                &admin,
                StatusCode::OK,
                None,
                Some(format!(
                    "A verification event is on its way to stream {stream_id}."
                )),
            )
            .await
        }
        Err(error) => match form_refusal(error, "stream") {
            Ok((status, message)) => {
                overview_page(&state, &admin, status, Some(message), None).await
            }
            Err(page) => page,
        },
    }
}

async fn add_transmitter(
    State(state): State<AppState>,
    Posted { admin, form }: Posted,
) -> Response {
    let text = |name: &str| {
        form.get(name)
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let mut body = json!({
        "displayName": text("displayName"),
        "issuer": text("issuer"),
        "delivery": text("delivery"),
    });
    for (field, name) in [("audience", "audience"), ("pollEndpoint", "pollEndpoint")] {
        if !text(name).is_empty() {
            body[field] = Value::from(text(name));
        }
    }
    if let Some(token) = form.get("bearerToken").filter(|t| !t.is_empty()) {
        body["bearerToken"] = Value::from(token);
    }
    match state.app.signals.create_receiver(&admin.ctx, body).await {
        Ok(view) => match (&view.push_secret, &view.push_endpoint) {
            (Some(secret), Some(endpoint)) => pages::page(
                StatusCode::OK,
                &ShownOnce {
                    admin: &admin,
                    heading: "The transmitter's push secret",
                    name: "Shared Signals",
                    back: "/admin/signals",
                    message: format!(
                        "{} pushes to {endpoint} with the header Authorization: Bearer and this secret.",
                        view.display_name
                    ),
                    secret,
                },
            ),
            _ => pages::redirect("/admin/signals"),
        },
        Err(error) => match form_refusal(error, "transmitter") {
            Ok((status, message)) => {
                overview_page(&state, &admin, status, Some(message), None).await
            }
            Err(page) => page,
        },
    }
}

async fn remove_transmitter(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(page) => return page,
    };
    let at = tessera_service::Versioned::new(id, Some(version));
    done(
        state.app.signals.delete_receiver(&admin.ctx, at).await,
        "/admin/signals",
    )
}

#[derive(serde::Deserialize)]
struct TimelineQuery {
    user: Option<String>,
}

/// A user's revocation timeline, by principal name or id.
async fn timeline(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<TimelineQuery>,
) -> Response {
    let name = query.user.unwrap_or_default().trim().to_string();
    let user = match Uuid::parse_str(&name) {
        Ok(id) => Some(id),
        Err(_) => match state
            .app
            .directory
            .get_user_by_principal_name(&admin.ctx, &name)
            .await
        {
            Ok(user) => Some(user.id),
            Err(tessera_service::ServiceError::NotFound { .. }) => None,
            Err(error) => return refused(error),
        },
    };
    let Some(user) = user else {
        return pages::error_page(StatusCode::NOT_FOUND, "There is no such user.");
    };
    match state
        .app
        .signals
        .revocation_timeline(&admin.ctx, user)
        .await
    {
        Ok(entries) => pages::page(
            StatusCode::OK,
            &TimelinePage {
                admin: &admin,
                user: name,
                entries,
            },
        ),
        Err(error) => refused(error),
    }
}

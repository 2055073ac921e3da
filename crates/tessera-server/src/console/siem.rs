//! The SIEM export in the console: the tenant's sinks with each stream's lag
//! (records waiting and how long the oldest has waited), when each last
//! delivered and why it fails; a form to add one (syslog over TLS, HTTPS
//! batches, OTLP logs) and one to change it, enable, disable or remove it.
//! Secrets are typed into password fields and never shown again.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value};
use tessera_directory::roles::action;
use tessera_service::siem::SinkView;
use uuid::Uuid;

use super::forms::{ConsoleForm, Posted};
use super::{Admin, done, form_refusal, holds, refused};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/siem", get(sinks).post(create))
        .route("/admin/siem/new/{kind}", get(new_sink))
        .route("/admin/siem/{id}", get(sink).post(update))
        .route("/admin/siem/{id}/delete", post(remove))
}

/// What the add and edit forms hold, as typed.
#[derive(Default)]
struct SinkForm {
    kind: String,
    name: String,
    streams: Vec<String>,
    enabled: bool,
    host: String,
    port: String,
    format: String,
    server_name: String,
    url: String,
    ca_certificate: String,
    has_secret: bool,
    has_authorization: bool,
}

impl SinkForm {
    fn new() -> SinkForm {
        SinkForm {
            kind: "syslog".into(),
            streams: vec![
                "signIns".into(),
                "auditLogs".into(),
                "riskDetections".into(),
            ],
            enabled: true,
            port: "6514".into(),
            format: "json".into(),
            ..SinkForm::default()
        }
    }

    fn has_stream(&self, stream: &str) -> bool {
        self.streams.iter().any(|s| s == stream)
    }

    fn of(view: &SinkView) -> SinkForm {
        SinkForm {
            kind: view.kind.clone(),
            name: view.display_name.clone(),
            streams: view.streams.iter().map(|s| s.name().to_string()).collect(),
            enabled: view.enabled,
            host: view.host.clone().unwrap_or_default(),
            port: view.port.map(|p| p.to_string()).unwrap_or_default(),
            format: view.format.clone().unwrap_or_default(),
            server_name: view.server_name.clone().unwrap_or_default(),
            url: view.url.clone().unwrap_or_default(),
            ca_certificate: view.ca_certificate.clone().unwrap_or_default(),
            has_secret: view.has_secret,
            has_authorization: view.has_authorization,
        }
    }

    fn typed(form: &ConsoleForm) -> SinkForm {
        let text = |name: &str| form.get(name).unwrap_or_default().to_string();
        SinkForm {
            kind: text("type"),
            name: text("displayName"),
            streams: form
                .all("streams")
                .into_iter()
                .map(str::to_string)
                .collect(),
            enabled: form.checked("enabled"),
            host: text("host"),
            port: text("port"),
            format: text("format"),
            server_name: text("serverName"),
            url: text("url"),
            ca_certificate: text("caCertificate"),
            has_secret: false,
            has_authorization: false,
        }
    }

    /// The API body for what was typed: only what the sink's type takes, the
    /// secret only when one was typed.
    fn body(&self, form: &ConsoleForm, creating: bool) -> Result<Value, String> {
        let mut body = Map::new();
        if creating {
            body.insert("type".into(), self.kind.clone().into());
        }
        body.insert("displayName".into(), self.name.clone().into());
        body.insert("enabled".into(), self.enabled.into());
        body.insert("streams".into(), self.streams.clone().into());
        body.insert("caCertificate".into(), self.ca_certificate.clone().into());
        match self.kind.as_str() {
            "syslog" => {
                body.insert("host".into(), self.host.clone().into());
                if !self.port.is_empty() {
                    let port: u16 = self
                        .port
                        .parse()
                        .map_err(|_| "Port: must be a number from 1 to 65535".to_string())?;
                    body.insert("port".into(), port.into());
                }
                body.insert("format".into(), self.format.clone().into());
                body.insert("serverName".into(), self.server_name.clone().into());
            }
            _ => {
                body.insert("url".into(), self.url.clone().into());
                if self.kind == "https"
                    && let Some(secret) = form.get("secret")
                {
                    body.insert("secret".into(), secret.into());
                }
                if let Some(value) = form.get("authorization") {
                    body.insert("authorization".into(), value.into());
                } else if form.checked("removeAuthorization") {
                    body.insert("authorization".into(), "".into());
                }
            }
        }
        Ok(Value::Object(body))
    }
}

/// A sink's row in the list.
struct Row {
    view: SinkView,
    /// "host:port" or the URL.
    destination: String,
    /// Records waiting, over every stream.
    waiting: i64,
    /// The longest any record has waited, in seconds.
    oldest: i64,
}

impl Row {
    fn of(view: SinkView) -> Row {
        let destination = match (&view.host, view.port, &view.url) {
            (Some(host), Some(port), _) => format!("{host}:{port}"),
            (_, _, Some(url)) => url.clone(),
            _ => String::new(),
        };
        let waiting = view.status.streams.iter().map(|s| s.lag).sum();
        let oldest = view
            .status
            .streams
            .iter()
            .map(|s| s.lag_seconds)
            .max()
            .unwrap_or(0);
        Row {
            view,
            destination,
            waiting,
            oldest,
        }
    }
}

#[derive(Template)]
#[template(path = "console/siem_sinks.html")]
struct SinksPage<'a> {
    admin: &'a Admin,
    rows: Vec<Row>,
    may_manage: bool,
    form: SinkForm,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/siem_sink.html")]
struct SinkPage<'a> {
    admin: &'a Admin,
    row: Row,
    may_manage: bool,
    form: SinkForm,
    error: Option<String>,
}

async fn list_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    form: SinkForm,
    error: Option<String>,
) -> Response {
    match state.app.siem.list_sinks(&admin.ctx).await {
        Ok(views) => pages::page(
            status,
            &SinksPage {
                admin,
                rows: views.into_iter().map(Row::of).collect(),
                may_manage: holds(&admin.ctx, action::POLICIES_MANAGE),
                form,
                error,
            },
        ),
        Err(error) => refused(error),
    }
}

async fn sinks(State(state): State<AppState>, admin: Admin) -> Response {
    list_page(&state, &admin, StatusCode::OK, SinkForm::new(), None).await
}

/// The list with the add form set for a kind of sink.
async fn new_sink(
    State(state): State<AppState>,
    admin: Admin,
    Path(kind): Path<String>,
) -> Response {
    if !["syslog", "https", "otlp"].contains(&kind.as_str()) {
        return pages::error_page(StatusCode::NOT_FOUND, "There is no such page.");
    }
    let form = SinkForm {
        kind,
        ..SinkForm::new()
    };
    list_page(&state, &admin, StatusCode::OK, form, None).await
}

async fn create(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let typed = SinkForm::typed(&form);
    let body = match typed.body(&form, true) {
        Ok(body) => body,
        Err(message) => {
            return list_page(
                &state,
                &admin,
                StatusCode::BAD_REQUEST,
                typed,
                Some(message),
            )
            .await;
        }
    };
    match state.app.siem.create_sink(&admin.ctx, body).await {
        Ok(view) => pages::redirect(&format!("/admin/siem/{}", view.id)),
        Err(error) => match form_refusal(error, "sink") {
            Ok((status, message)) => list_page(&state, &admin, status, typed, Some(message)).await,
            Err(page) => page,
        },
    }
}

async fn sink(State(state): State<AppState>, admin: Admin, Path(id): Path<Uuid>) -> Response {
    match state.app.siem.get_sink(&admin.ctx, id).await {
        Ok(view) => pages::page(
            StatusCode::OK,
            &SinkPage {
                admin: &admin,
                form: SinkForm::of(&view),
                row: Row::of(view),
                may_manage: holds(&admin.ctx, action::POLICIES_MANAGE),
                error: None,
            },
        ),
        Err(error) => refused(error),
    }
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(page) => return page,
    };
    let current = match state.app.siem.get_sink(&admin.ctx, id).await {
        Ok(view) => view,
        Err(error) => return refused(error),
    };
    let mut typed = SinkForm::typed(&form);
    typed.kind = current.kind.clone();
    typed.has_secret = current.has_secret;
    typed.has_authorization = current.has_authorization;
    let refusal = match typed.body(&form, false) {
        Ok(body) => {
            let patch = tessera_service::Versioned::new(id, Some(version)).patch(body);
            match state.app.siem.update_sink(&admin.ctx, patch).await {
                Ok(view) => return pages::redirect(&format!("/admin/siem/{}", view.id)),
                Err(error) => form_refusal(error, "sink"),
            }
        }
        Err(message) => Ok((StatusCode::BAD_REQUEST, message)),
    };
    match refusal {
        Err(page) => page,
        Ok((status, message)) => pages::page(
            status,
            &SinkPage {
                admin: &admin,
                row: Row::of(current),
                may_manage: true,
                form: typed,
                error: Some(message),
            },
        ),
    }
}

async fn remove(
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
        state.app.siem.delete_sink(&admin.ctx, at).await,
        "/admin/siem",
    )
}

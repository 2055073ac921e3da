//! Applications in the console: the list, registering one (its enterprise
//! application, the service principal, is made with it), an application's page
//! (client id, redirect URIs, client secrets with the new one shown once, its service
//! principal's settings and who is assigned), editing the registration with
//! If-Match, and deleting it.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_directory::model::{AppRoleAssignment, Application, PermissionGrant, ServicePrincipal};
use tessera_directory::roles::action;
use tessera_service::{CredentialHolder, PageRequest, ServiceError, Versioned};
use uuid::Uuid;

use super::{
    Admin, ConsoleForm, ListQuery, Listing, Posted, confirm_delete_of, delete_at, done,
    form_refusal, holds, named_object, refused,
};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/applications", get(list).post(create))
        .route("/admin/applications/new", get(new))
        .route("/admin/applications/{id}", get(detail))
        .route("/admin/applications/{id}/edit", get(edit).post(save))
        .route(
            "/admin/applications/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route("/admin/applications/{id}/secrets", post(add_secret))
        .route(
            "/admin/applications/{id}/secrets/{key}/remove",
            post(remove_secret),
        )
        .route(
            "/admin/applications/{id}/json",
            get(edit_json).post(save_json),
        )
        .route(
            "/admin/applications/{id}/certificates",
            post(add_certificate),
        )
        .route(
            "/admin/applications/{id}/certificates/{key}/remove",
            post(remove_certificate),
        )
        .route(
            "/admin/applications/{id}/consents/{grant}/revoke",
            post(revoke_consent),
        )
        .route("/admin/applications/{id}/assignments", post(assign))
        .route(
            "/admin/applications/{id}/assignments/{assignment}/remove",
            post(unassign),
        )
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some("The application was registered, with its service principal."),
        "secret" => Some("The client secret was added."),
        "secret-shown" => Some(
            "The client secret was added and is not shown again. If it was not copied, remove it and add another.",
        ),
        "saved" => Some("Your changes were saved."),
        "deleted" => Some("The application was deleted."),
        "removed" => Some("The secret was removed."),
        "assigned" => Some("The assignment was added."),
        "unassigned" => Some("The assignment was removed."),
        "certificate" => Some("The certificate was added."),
        "certificate-removed" => Some("The certificate was removed."),
        "revoked" => Some("The consent was revoked: the application must ask again."),
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct AppsPage<'a> {
    admin: &'a Admin,
    listing: Listing<Application>,
    notice: Option<&'static str>,
    may_create: bool,
}

async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Response {
    let listing = match state
        .app
        .directory
        .list_applications(&admin.ctx, &query.request())
        .await
    {
        Ok(page) => query.listing(page),
        Err(error) => return refused(error),
    };
    pages::page(
        StatusCode::OK,
        &AppsPage {
            admin: &admin,
            listing,
            notice: notice(query.done.as_deref()),
            may_create: holds(&admin.ctx, action::APPS_CREATE),
        },
    )
}

/// The registration form's values: the name and the redirect URIs, one a line.
#[derive(Default)]
struct AppValues {
    display_name: String,
    web: String,
    spa: String,
}

impl AppValues {
    fn of(app: &Application) -> AppValues {
        AppValues {
            display_name: app.spec.display_name.clone(),
            web: app.spec.web.redirect_uris.join("\n"),
            spa: app.spec.spa.redirect_uris.join("\n"),
        }
    }

    fn from_form(form: &ConsoleForm) -> AppValues {
        AppValues {
            display_name: form.get("displayName").unwrap_or("").to_string(),
            web: form.get("web").unwrap_or("").to_string(),
            spa: form.get("spa").unwrap_or("").to_string(),
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn json(&self) -> Value {
        json!({
            "displayName": self.display_name,
            "web": { "redirectUris": AppValues::lines(&self.web) },
            "spa": { "redirectUris": AppValues::lines(&self.spa) },
        })
    }
}

#[derive(Template)]
#[template(path = "console/app_form.html")]
struct AppForm<'a> {
    admin: &'a Admin,
    heading: String,
    action: String,
    back: String,
    values: AppValues,
    version: Option<i64>,
    error: Option<String>,
}

fn form_error(form: AppForm<'_>, error: ServiceError) -> Response {
    match form_refusal(error, "application") {
        Ok((status, message)) => pages::page(
            status,
            &AppForm {
                error: Some(message),
                ..form
            },
        ),
        Err(page) => page,
    }
}

async fn new(admin: Admin) -> Response {
    pages::page(
        StatusCode::OK,
        &AppForm {
            admin: &admin,
            heading: "Register an application".to_string(),
            action: "/admin/applications".to_string(),
            back: "/admin/applications".to_string(),
            values: AppValues::default(),
            version: None,
            error: None,
        },
    )
}

async fn create(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let values = AppValues::from_form(&form);
    let directory = &state.app.directory;
    let app = match directory
        .create_application(&admin.ctx, values.json())
        .await
    {
        Ok(app) => app,
        Err(error) => {
            return form_error(
                AppForm {
                    admin: &admin,
                    heading: "Register an application".to_string(),
                    action: "/admin/applications".to_string(),
                    back: "/admin/applications".to_string(),
                    values,
                    version: None,
                    error: None,
                },
                error,
            );
        }
    };
    // Its enterprise application, as the Entra portal makes it with the registration.
    if let Err(error) = directory
        .create_service_principal(&admin.ctx, json!({ "appId": app.app_id }))
        .await
    {
        tracing::warn!(%error, "the service principal of a new application was not made");
    }
    pages::redirect(&format!("/admin/applications/{}?done=created", app.id))
}

#[derive(Template)]
#[template(path = "console/app.html")]
struct AppPage<'a> {
    admin: &'a Admin,
    app: Application,
    principal: Option<ServicePrincipal>,
    assignments: Vec<AppRoleAssignment>,
    /// Consents given to the application (by administrators for everyone, or by
    /// users for themselves).
    grants: Vec<PermissionGrant>,
    notice: Option<&'static str>,
    error: Option<String>,
    /// A secret just made: shown on this answer only.
    new_secret: Option<String>,
    may_edit: bool,
    may_assign: bool,
    may_revoke: bool,
    may_see_provisioning: bool,
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn detail(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Query(query): Query<DoneQuery>,
    headers: HeaderMap,
) -> Response {
    // A secret just made travels here once, in a short-lived cookie bound to this
    // application, so that reloading the page neither shows it again nor makes
    // another one; the answer clears the cookie.
    let made = new_secret_of(&headers, &admin, id);
    let done = match query.done.as_deref() {
        // The page that was to show it is opened again, or in another session.
        Some("secret") if made.is_none() => Some("secret-shown"),
        other => other,
    };
    let mut response = app_page(
        &state,
        &admin,
        id,
        notice(done),
        None,
        made.clone(),
        StatusCode::OK,
    )
    .await;
    if made.is_some() {
        super::set_cookie(&mut response, NEW_SECRET_COOKIE, "", Some(0), "Strict");
    }
    response
}

/// Carries a new client secret from the POST that made it to the page that shows it,
/// sealed (AES-256-GCM) with a key only this console session has and bound to the
/// application: no one else, and no other application's page, can open it. It
/// lives two minutes at most, and is cleared once shown and at sign-out.
pub(crate) const NEW_SECRET_COOKIE: &str = "__Host-tessera-new-secret";

fn sealing_context(id: Uuid) -> String {
    format!("tessera-console-new-secret:{id}")
}

fn new_secret_of(headers: &HeaderMap, admin: &Admin, id: Uuid) -> Option<String> {
    let cookies = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let sealed = crate::pages::input::cookie_of_size(cookies, NEW_SECRET_COOKIE, 1024)?;
    let opened = admin.sealing.open(&sealed, &sealing_context(id)).ok()?;
    String::from_utf8(opened).ok()
}

async fn app_page(
    state: &AppState,
    admin: &Admin,
    id: Uuid,
    notice: Option<&'static str>,
    error: Option<String>,
    new_secret: Option<String>,
    status: StatusCode,
) -> Response {
    let ctx = &admin.ctx;
    let directory = &state.app.directory;
    let app = match directory.get_application(ctx, id).await {
        Ok(app) => app,
        Err(error) => return refused(error),
    };
    let principal = match directory
        .get_service_principal_by_app_id(ctx, app.app_id)
        .await
    {
        Ok(principal) => Some(principal),
        Err(ServiceError::NotFound { .. } | ServiceError::Forbidden { .. }) => None,
        Err(error) => return refused(error),
    };
    let assignments = match &principal {
        Some(principal) => {
            let request = PageRequest {
                cursor: None,
                limit: Some(200),
                search: None,
            };
            match directory
                .list_app_role_assigned_to(ctx, principal.id, &request)
                .await
            {
                Ok(page) => page.value,
                Err(ServiceError::Forbidden { .. }) => Vec::new(),
                Err(error) => return refused(error),
            }
        }
        None => Vec::new(),
    };
    let grants = match directory
        .list_permission_grants(ctx, Some(app.app_id))
        .await
    {
        Ok(grants) => grants,
        Err(ServiceError::Forbidden { .. }) => Vec::new(),
        Err(error) => return refused(error),
    };
    pages::page(
        status,
        &AppPage {
            admin,
            app,
            principal,
            assignments,
            grants,
            notice,
            error,
            new_secret,
            may_edit: holds(ctx, action::APPS_CREDENTIALS_UPDATE)
                || holds(ctx, action::APPS_BASIC_UPDATE),
            may_assign: holds(ctx, action::SPS_APP_ROLE_ASSIGNED_TO_UPDATE),
            may_revoke: holds(ctx, action::PERMISSION_GRANTS_MANAGE),
            may_see_provisioning: holds(ctx, action::SPS_SYNCHRONIZATION_READ),
        },
    )
}

async fn edit(State(state): State<AppState>, admin: Admin, Path(id): Path<Uuid>) -> Response {
    match state.app.directory.get_application(&admin.ctx, id).await {
        Ok(app) => pages::page(
            StatusCode::OK,
            &AppForm {
                admin: &admin,
                heading: format!("Edit {}", app.spec.display_name),
                action: format!("/admin/applications/{id}/edit"),
                back: format!("/admin/applications/{id}"),
                values: AppValues::of(&app),
                version: Some(app.version),
                error: None,
            },
        ),
        Err(error) => refused(error),
    }
}

async fn save(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(refusal) => return refusal,
    };
    let values = AppValues::from_form(&form);
    let patch = Versioned::new(id, Some(version)).patch(values.json());
    match state
        .app
        .directory
        .update_application(&admin.ctx, patch)
        .await
    {
        Ok(_) => pages::redirect(&format!("/admin/applications/{id}?done=saved")),
        Err(error) => form_error(
            AppForm {
                admin: &admin,
                heading: "Edit application".to_string(),
                action: format!("/admin/applications/{id}/edit"),
                back: format!("/admin/applications/{id}"),
                values,
                version: Some(version),
                error: None,
            },
            error,
        ),
    }
}

async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> Response {
    let found = state.app.directory.get_application(&admin.ctx, id).await;
    confirm_delete_of(
        &admin,
        found,
        "application",
        |app| (&app.spec.display_name, app.version),
        "Its service principal, secrets and assignments go with it; nobody can sign in to it any more.",
        &format!("/admin/applications/{id}"),
    )
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let directory = &state.app.directory;
    delete_at(&form, id, "/admin/applications?done=deleted", |at| {
        directory.delete_application(&admin.ctx, at)
    })
    .await
}

/// A new client secret: shown once, on the page this POST leads to.
async fn add_secret(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let mut body = serde_json::Map::new();
    if let Some(name) = form.get("displayName") {
        body.insert("displayName".into(), json!(name));
    }
    match state
        .app
        .directory
        .add_password(
            &admin.ctx,
            CredentialHolder::Application,
            id,
            Value::Object(body),
        )
        .await
    {
        Ok(created) => {
            let sealed = admin.sealing.seal(
                created.secret_text.expose().as_bytes(),
                &sealing_context(id),
            );
            match sealed {
                Ok(value) => {
                    let mut response =
                        pages::redirect(&format!("/admin/applications/{id}?done=secret"));
                    super::set_cookie(
                        &mut response,
                        NEW_SECRET_COOKIE,
                        &value,
                        Some(120),
                        "Strict",
                    );
                    response
                }
                // Not lost: shown on this answer instead.
                Err(error) => {
                    tracing::error!(%error, "a new client secret could not be sealed for its page");
                    let secret = created.secret_text.expose().to_string();
                    app_page(&state, &admin, id, None, None, Some(secret), StatusCode::OK).await
                }
            }
        }
        Err(error @ (ServiceError::Validation(_) | ServiceError::Conflict { .. })) => {
            app_page(
                &state,
                &admin,
                id,
                None,
                Some(error.to_string()),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(error) => refused(error),
    }
}

async fn remove_secret(
    State(state): State<AppState>,
    Path((id, key)): Path<(Uuid, Uuid)>,
    Posted { admin, .. }: Posted,
) -> Response {
    done(
        state
            .app
            .directory
            .remove_password(&admin.ctx, CredentialHolder::Application, id, key)
            .await,
        &format!("/admin/applications/{id}?done=removed"),
    )
}

/// Assigns a user (by user principal name or id) or a group (by id) to the
/// application's service principal, with default access.
async fn assign(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let directory = &state.app.directory;
    let Some(named) = form.get("principal") else {
        return app_page(
            &state,
            &admin,
            id,
            None,
            Some("Name a user or a group to assign.".to_string()),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let principal = match named_object(&state, &admin, named).await {
        Ok(id) => id,
        Err(Ok(message)) => {
            return app_page(
                &state,
                &admin,
                id,
                None,
                Some(message),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        Err(Err(page)) => return page,
    };

    let app = match directory.get_application(&admin.ctx, id).await {
        Ok(app) => app,
        Err(error) => return refused(error),
    };
    let resource = match directory
        .get_service_principal_by_app_id(&admin.ctx, app.app_id)
        .await
    {
        Ok(resource) => resource,
        Err(error) => return refused(error),
    };
    match directory
        .assign_app_role(&admin.ctx, resource.id, json!({ "principalId": principal }))
        .await
    {
        Ok(_) => pages::redirect(&format!("/admin/applications/{id}?done=assigned")),
        Err(error @ (ServiceError::Validation(_) | ServiceError::Conflict { .. })) => {
            app_page(
                &state,
                &admin,
                id,
                None,
                Some(error.to_string()),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(error) => refused(error),
    }
}

async fn unassign(
    State(state): State<AppState>,
    Path((id, assignment)): Path<(Uuid, Uuid)>,
    Posted { admin, .. }: Posted,
) -> Response {
    let directory = &state.app.directory;
    let app = match directory.get_application(&admin.ctx, id).await {
        Ok(app) => app,
        Err(error) => return refused(error),
    };
    let resource = match directory
        .get_service_principal_by_app_id(&admin.ctx, app.app_id)
        .await
    {
        Ok(resource) => resource,
        Err(error) => return refused(error),
    };
    done(
        directory
            .remove_app_role_assignment(&admin.ctx, resource.id, assignment)
            .await,
        &format!("/admin/applications/{id}?done=unassigned"),
    )
}

/// Adds a certificate (PEM or base64 DER) the application authenticates with.
async fn add_certificate(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("key".into(), json!(form.get("key").unwrap_or("")));
    if let Some(name) = form.get("displayName") {
        body.insert("displayName".into(), json!(name));
    }
    let result = state
        .app
        .directory
        .add_key(
            &admin.ctx,
            CredentialHolder::Application,
            id,
            Value::Object(body),
        )
        .await;
    match result {
        Ok(_) => pages::redirect(&format!("/admin/applications/{id}?done=certificate")),
        Err(error) => match form_refusal(error, "application") {
            Ok((status, message)) => {
                app_page(&state, &admin, id, None, Some(message), None, status).await
            }
            Err(page) => page,
        },
    }
}

async fn remove_certificate(
    State(state): State<AppState>,
    Path((id, key)): Path<(Uuid, Uuid)>,
    Posted { admin, .. }: Posted,
) -> Response {
    done(
        state
            .app
            .directory
            .remove_key(&admin.ctx, CredentialHolder::Application, id, key)
            .await,
        &format!("/admin/applications/{id}?done=certificate-removed"),
    )
}

/// Revokes a consent given to this application (a consent of another one, named
/// in a crafted address, is not found here).
async fn revoke_consent(
    State(state): State<AppState>,
    Path((id, grant)): Path<(Uuid, Uuid)>,
    Posted { admin, .. }: Posted,
) -> Response {
    let directory = &state.app.directory;
    let app = match directory.get_application(&admin.ctx, id).await {
        Ok(app) => app,
        Err(error) => return refused(error),
    };
    let given = match directory
        .list_permission_grants(&admin.ctx, Some(app.app_id))
        .await
    {
        Ok(grants) => grants,
        Err(error) => return refused(error),
    };
    if !given.iter().any(|g| g.id == grant) {
        return refused(ServiceError::NotFound {
            kind: "oauth2PermissionGrant",
            id: grant.to_string(),
        });
    }
    done(
        directory.delete_permission_grant(&admin.ctx, grant).await,
        &format!("/admin/applications/{id}?done=revoked"),
    )
}

/// The registration as Graph JSON: app roles, federated credentials, logout and
/// every other setting the form does not show.
#[derive(Template)]
#[template(path = "console/app_json.html")]
struct AppJson<'a> {
    admin: &'a Admin,
    id: Uuid,
    name: String,
    json: String,
    version: i64,
    error: Option<String>,
}

async fn edit_json(State(state): State<AppState>, admin: Admin, Path(id): Path<Uuid>) -> Response {
    match state.app.directory.get_application(&admin.ctx, id).await {
        Ok(app) => pages::page(
            StatusCode::OK,
            &AppJson {
                admin: &admin,
                id,
                name: app.spec.display_name.clone(),
                json: serde_json::to_string_pretty(&app.spec).unwrap_or_default(),
                version: app.version,
                error: None,
            },
        ),
        Err(error) => refused(error),
    }
}

async fn save_json(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(refusal) => return refusal,
    };
    let directory = &state.app.directory;
    let app = match directory.get_application(&admin.ctx, id).await {
        Ok(app) => app,
        Err(error) => return refused(error),
    };
    let text = form.get("json").unwrap_or("").to_string();
    let outcome = match serde_json::from_str::<Value>(&text) {
        Ok(body @ Value::Object(_)) => {
            let stored = serde_json::to_value(&app.spec).unwrap_or(Value::Null);
            let patch = super::replacement(&stored, &body);
            match directory
                .update_application(&admin.ctx, Versioned::new(id, Some(version)).patch(patch))
                .await
            {
                Ok(_) => return pages::redirect(&format!("/admin/applications/{id}?done=saved")),
                Err(error) => form_refusal(error, "application"),
            }
        }
        _ => Ok((
            StatusCode::BAD_REQUEST,
            "The registration must be one JSON object.".to_string(),
        )),
    };
    match outcome {
        Ok((status, message)) => pages::page(
            status,
            &AppJson {
                admin: &admin,
                id,
                name: app.spec.display_name.clone(),
                json: text,
                version,
                error: Some(message),
            },
        ),
        Err(page) => page,
    }
}

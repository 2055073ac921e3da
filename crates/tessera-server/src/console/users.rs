//! Users in the console: the list (search by name, cursor paging), a user's page
//! (properties, groups, roles, methods, sessions, recent sign-ins, audit history),
//! create, edit with If-Match, delete with confirmation, and revoking sessions.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tessera_directory::model::{DirectoryObjectRef, DirectoryScope, ObjectType, User, UserSpec};
use tessera_service::audit::{AuditEntry, AuditFilter};
use tessera_service::authn::{AuthMethodView, SessionView, SignInEntry, SignInFilter};
use tessera_service::{PageRequest, ServiceError, Versioned};
use uuid::Uuid;

use super::{
    Admin, ConsoleForm, ListQuery, Listing, Posted, confirm_delete_of, delete_at, done,
    form_refusal, refused,
};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .route("/admin/users.csv", get(export))
        .route("/admin/users/new", get(new))
        .route("/admin/users/{id}", get(detail))
        .route("/admin/users/{id}/edit", get(edit).post(save))
        .route("/admin/users/{id}/delete", get(confirm_delete).post(delete))
        .route("/admin/users/{id}/revoke", post(revoke))
        .route("/admin/users/{id}/temporary-access-pass", post(issue_pass))
        .route("/admin/users/{id}/password", post(reset_password))
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage<'a> {
    admin: &'a Admin,
    listing: Listing<User>,
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
        .list::<UserSpec>(&admin.ctx, &query.request())
        .await
    {
        Ok(page) => query.listing(page),
        // An administrator scoped to units lists the users of their units.
        Err(ServiceError::Forbidden { .. }) if !scoped_units(&admin).is_empty() => {
            let search = query.search.clone().unwrap_or_default();
            match users_of_units(&state, &admin, &search, UNIT_USERS_LISTED).await {
                Ok(items) => Listing {
                    items,
                    search,
                    next: None,
                },
                Err(error) => return refused(error),
            }
        }
        Err(error) => return refused(error),
    };
    let may_create = super::holds(&admin.ctx, tessera_directory::roles::action::USERS_CREATE);
    pages::page(
        StatusCode::OK,
        &UsersPage {
            admin: &admin,
            listing,
            notice: notice(query.done.as_deref()),
            may_create,
        },
    )
}

/// The most users of each unit a unit-scoped administrator's list shows.
const UNIT_USERS_LISTED: usize = 200;

/// The administrative units in which the caller may read users.
fn scoped_units(admin: &Admin) -> Vec<Uuid> {
    admin
        .ctx
        .caller
        .grants()
        .iter()
        .filter_map(|grant| match grant.scope {
            DirectoryScope::AdministrativeUnit(unit) => {
                tessera_directory::roles::built_in(grant.role_id)
                    .filter(|role| role.grants(tessera_directory::roles::action::USERS_READ))
                    .map(|_| unit)
            }
            DirectoryScope::Tenant => None,
        })
        .collect()
}

/// The users of the caller's units (the first `per_unit` members of each), whose
/// name starts with `search`, read one by one with the caller's own authorization.
async fn users_of_units(
    state: &AppState,
    admin: &Admin,
    search: &str,
    per_unit: usize,
) -> Result<Vec<User>, ServiceError> {
    let search = search.trim().to_lowercase();
    let mut users: Vec<User> = Vec::new();
    for unit in scoped_units(admin) {
        let mut members = Vec::new();
        let mut request = PageRequest {
            cursor: None,
            limit: Some(200),
            search: None,
        };
        while members.len() < per_unit {
            let page = state
                .app
                .directory
                .list_administrative_unit_members(&admin.ctx, unit, &request)
                .await?;
            members.extend(page.value);
            match page.next_cursor {
                Some(cursor) => request.cursor = Some(cursor),
                None => break,
            }
        }
        members.truncate(per_unit);
        for member in members {
            if member.object_type != ObjectType::User
                || users.iter().any(|u| u.id == member.id)
                || !member.display_name.to_lowercase().starts_with(&search)
            {
                continue;
            }
            match state
                .app
                .directory
                .get::<UserSpec>(&admin.ctx, member.id)
                .await
            {
                Ok(user) => users.push(user),
                Err(ServiceError::Forbidden { .. } | ServiceError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
    }
    users.sort_by(|a, b| a.spec.display_name.cmp(&b.spec.display_name));
    Ok(users)
}

/// The fixed confirmation a page shows after a change (never text from the URL).
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some("The user was created."),
        "saved" => Some("Your changes were saved."),
        "deleted" => Some("The user was deleted."),
        "revoked" => Some("The user's sessions and refresh tokens were revoked."),
        _ => None,
    }
}

/// The values of the user form, as typed or as stored.
#[derive(Default)]
struct UserValues {
    user_principal_name: String,
    display_name: String,
    given_name: String,
    surname: String,
    mail: String,
    department: String,
    job_title: String,
    employee_id: String,
    usage_location: String,
    account_enabled: bool,
}

/// The optional text attributes the form edits: (form and JSON name, label).
const TEXT_FIELDS: [(&str, &str); 7] = [
    ("givenName", "First name"),
    ("surname", "Last name"),
    ("mail", "Email"),
    ("department", "Department"),
    ("jobTitle", "Job title"),
    ("employeeId", "Employee id"),
    ("usageLocation", "Usage location (country code)"),
];

impl UserValues {
    fn of(spec: &UserSpec) -> UserValues {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        UserValues {
            user_principal_name: spec.user_principal_name.clone(),
            display_name: spec.display_name.clone(),
            given_name: text(&spec.given_name),
            surname: text(&spec.surname),
            mail: text(&spec.mail),
            department: text(&spec.department),
            job_title: text(&spec.job_title),
            employee_id: text(&spec.employee_id),
            usage_location: text(&spec.usage_location),
            account_enabled: spec.account_enabled,
        }
    }

    fn from_form(form: &ConsoleForm) -> UserValues {
        let text = |name| form.get(name).unwrap_or("").to_string();
        UserValues {
            user_principal_name: text("userPrincipalName"),
            display_name: text("displayName"),
            given_name: text("givenName"),
            surname: text("surname"),
            mail: text("mail"),
            department: text("department"),
            job_title: text("jobTitle"),
            employee_id: text("employeeId"),
            usage_location: text("usageLocation"),
            account_enabled: form.checked("accountEnabled"),
        }
    }

    fn text(&self, name: &str) -> &str {
        match name {
            "givenName" => &self.given_name,
            "surname" => &self.surname,
            "mail" => &self.mail,
            "department" => &self.department,
            "jobTitle" => &self.job_title,
            "employeeId" => &self.employee_id,
            "usageLocation" => &self.usage_location,
            _ => "",
        }
    }

    /// The JSON the API takes: blank optional fields are cleared (`null`).
    fn json(&self) -> Value {
        let mut body = Map::new();
        body.insert("userPrincipalName".into(), json!(self.user_principal_name));
        body.insert("displayName".into(), json!(self.display_name));
        body.insert("accountEnabled".into(), json!(self.account_enabled));
        for (name, _) in TEXT_FIELDS {
            let value = self.text(name);
            body.insert(
                name.to_string(),
                if value.is_empty() {
                    Value::Null
                } else {
                    json!(value)
                },
            );
        }
        Value::Object(body)
    }

    /// For a new user: only what was filled in.
    fn new_json(&self) -> Value {
        let mut body = self.json();
        if let Value::Object(map) = &mut body {
            map.retain(|_, v| !v.is_null());
        }
        body
    }
}

#[derive(Template)]
#[template(path = "console/user_form.html")]
struct UserForm<'a> {
    admin: &'a Admin,
    heading: String,
    action: String,
    back: String,
    values: UserValues,
    fields: [(&'static str, &'static str); 7],
    version: Option<i64>,
    error: Option<String>,
}

impl UserForm<'_> {
    fn render(&self, status: StatusCode) -> Response {
        pages::page(status, self)
    }
}

async fn new(admin: Admin) -> Response {
    UserForm {
        admin: &admin,
        heading: "New user".to_string(),
        action: "/admin/users".to_string(),
        back: "/admin/users".to_string(),
        values: UserValues {
            account_enabled: true,
            ..UserValues::default()
        },
        fields: TEXT_FIELDS,
        version: None,
        error: None,
    }
    .render(StatusCode::OK)
}

async fn create(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let values = UserValues::from_form(&form);
    match state
        .app
        .directory
        .create_user(&admin.ctx, values.new_json())
        .await
    {
        Ok(user) => pages::redirect(&format!("/admin/users/{}?done=created", user.id)),
        Err(error) => form_error(
            &admin,
            error,
            "New user",
            "/admin/users",
            "/admin/users",
            values,
            None,
        ),
    }
}

/// The form again with what was typed and why it was refused.
fn form_error(
    admin: &Admin,
    error: ServiceError,
    heading: &str,
    action: &str,
    back: &str,
    values: UserValues,
    version: Option<i64>,
) -> Response {
    let (status, message) = match form_refusal(error, "user") {
        Ok(refusal) => refusal,
        Err(page) => return page,
    };
    UserForm {
        admin,
        heading: heading.to_string(),
        action: action.to_string(),
        back: back.to_string(),
        values,
        fields: TEXT_FIELDS,
        version,
        error: Some(message),
    }
    .render(status)
}

/// A section of the user's page the administrator may not see is left out; one that
/// failed says so.
enum Section<T> {
    Shown(T),
    Hidden,
    Failed,
}

impl<T> Section<T> {
    fn of(result: Result<T, ServiceError>) -> Section<T> {
        match result {
            Ok(value) => Section::Shown(value),
            Err(ServiceError::Forbidden { .. }) => Section::Hidden,
            Err(error) => {
                tracing::warn!(%error, "a section of a console page failed");
                Section::Failed
            }
        }
    }
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage<'a> {
    admin: &'a Admin,
    user: User,
    manager: Option<String>,
    notice: Option<&'static str>,
    groups: Section<Vec<DirectoryObjectRef>>,
    roles: Section<Vec<(String, String)>>,
    methods: Section<Vec<AuthMethodView>>,
    sessions: Section<Vec<SessionView>>,
    sign_ins: Section<Vec<SignInEntry>>,
    audit: Section<Vec<AuditEntry>>,
    may_edit: bool,
    may_delete: bool,
    may_revoke: bool,
    may_issue_pass: bool,
    may_reset_password: bool,
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
) -> Response {
    let ctx = &admin.ctx;
    let app = &state.app;
    let user = match app.directory.get::<UserSpec>(ctx, id).await {
        Ok(user) => user,
        Err(error) => return refused(error),
    };
    let first_page = PageRequest {
        cursor: None,
        limit: Some(100),
        search: None,
    };
    let groups = Section::of(
        app.directory
            .user_member_of(ctx, id, false, &first_page)
            .await
            .map(|page| page.value),
    );
    let roles = Section::of(role_names(&state, &admin, id).await);
    let methods = Section::of(app.sign_in.list_user_methods(ctx, id).await);
    let sessions = Section::of(app.sign_in.list_user_sessions(ctx, id).await);
    let sign_ins = Section::of(
        app.sign_in
            .query_log(
                ctx,
                &SignInFilter {
                    user_id: Some(id),
                    limit: Some(10),
                    ..SignInFilter::default()
                },
            )
            .await
            .map(|page| page.value),
    );
    let audit = Section::of(
        app.directory
            .query_audit(
                ctx,
                &AuditFilter {
                    target_id: Some(id.to_string()),
                    limit: Some(10),
                    ..AuditFilter::default()
                },
            )
            .await
            .map(|page| page.value),
    );
    let manager = match user.spec.manager_id {
        Some(manager) => app
            .directory
            .get::<UserSpec>(ctx, manager)
            .await
            .ok()
            .map(|m| m.spec.display_name),
        None => None,
    };
    use tessera_directory::roles::action;
    let may = |wanted| super::holds(ctx, wanted);
    pages::page(
        StatusCode::OK,
        &UserPage {
            admin: &admin,
            user,
            manager,
            notice: notice(query.done.as_deref()),
            groups,
            roles,
            methods,
            sessions,
            sign_ins,
            audit,
            may_edit: may(action::USERS_BASIC_UPDATE),
            may_delete: may(action::USERS_DELETE),
            may_revoke: may(action::USERS_INVALIDATE_TOKENS),
            may_issue_pass: may(action::USERS_AUTH_METHODS_CREATE),
            may_reset_password: may(action::USERS_PASSWORD_UPDATE),
        },
    )
}

/// The directory roles assigned to the user directly: (role name, scope).
async fn role_names(
    state: &AppState,
    admin: &Admin,
    id: Uuid,
) -> Result<Vec<(String, String)>, ServiceError> {
    let request = PageRequest {
        cursor: None,
        limit: Some(100),
        search: None,
    };
    let assignments = state
        .app
        .directory
        .list_role_assignments(&admin.ctx, Some(id), None, &request)
        .await?;
    Ok(assignments
        .value
        .into_iter()
        .map(|assignment| {
            let role = tessera_directory::roles::built_in(assignment.spec.role_definition_id)
                .map(|role| role.display_name.to_string())
                .unwrap_or_else(|| assignment.spec.role_definition_id.to_string());
            let scope = if assignment.spec.directory_scope_id == "/" {
                "Whole directory".to_string()
            } else {
                format!(
                    "Unit {}",
                    assignment
                        .spec
                        .directory_scope_id
                        .trim_start_matches("/administrativeUnits/")
                )
            };
            (role, scope)
        })
        .collect())
}

async fn edit(State(state): State<AppState>, admin: Admin, Path(id): Path<Uuid>) -> Response {
    let user = match state.app.directory.get::<UserSpec>(&admin.ctx, id).await {
        Ok(user) => user,
        Err(error) => return refused(error),
    };
    UserForm {
        admin: &admin,
        heading: format!("Edit {}", user.spec.display_name),
        action: format!("/admin/users/{id}/edit"),
        back: format!("/admin/users/{id}"),
        values: UserValues::of(&user.spec),
        fields: TEXT_FIELDS,
        version: Some(user.version),
        error: None,
    }
    .render(StatusCode::OK)
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
    let values = UserValues::from_form(&form);
    // Only what the form changed goes into the patch: each attribute a patch names
    // needs its own permission, so unchanged ones must not be asked for.
    let stored = match state.app.directory.get::<UserSpec>(&admin.ctx, id).await {
        Ok(user) => UserValues::of(&user.spec).json(),
        Err(error) => return refused(error),
    };
    let mut changed = values.json();
    if let (Value::Object(changed), Value::Object(stored)) = (&mut changed, &stored) {
        changed.retain(|name, value| stored.get(name) != Some(value));
    }
    let patch = Versioned::new(id, Some(version)).patch(changed);
    match state.app.directory.update_user(&admin.ctx, patch).await {
        Ok(_) => pages::redirect(&format!("/admin/users/{id}?done=saved")),
        Err(error) => form_error(
            &admin,
            error,
            "Edit user",
            &format!("/admin/users/{id}/edit"),
            &format!("/admin/users/{id}"),
            values,
            Some(version),
        ),
    }
}

async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> Response {
    let found = state.app.directory.get::<UserSpec>(&admin.ctx, id).await;
    confirm_delete_of(
        &admin,
        found,
        "user",
        |user| (&user.spec.user_principal_name, user.version),
        "The account, its sign-in methods, sessions and tokens go, and it leaves every group, unit and role assignment.",
        &format!("/admin/users/{id}"),
    )
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let directory = &state.app.directory;
    delete_at(&form, id, "/admin/users?done=deleted", |at| {
        directory.delete_user(&admin.ctx, at)
    })
    .await
}

async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form: _ }: Posted,
) -> Response {
    done(
        state.app.sign_in.revoke_user_sessions(&admin.ctx, id).await,
        &format!("/admin/users/{id}?done=revoked"),
    )
}

#[derive(Template)]
#[template(path = "console/shown_once.html")]
pub(crate) struct ShownOnce<'a> {
    pub(crate) admin: &'a Admin,
    pub(crate) heading: &'a str,
    pub(crate) name: &'a str,
    pub(crate) back: &'a str,
    pub(crate) message: String,
    pub(crate) secret: &'a str,
}

/// Issues a Temporary Access Pass (replacing the user's), shown once.
async fn issue_pass(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let mut request = Map::new();
    if let Some(minutes) = form.get("lifetimeInMinutes") {
        match minutes.parse::<u32>() {
            Ok(minutes) => {
                request.insert("lifetimeInMinutes".into(), json!(minutes));
            }
            Err(_) => {
                return pages::error_page(
                    StatusCode::BAD_REQUEST,
                    "The lifetime is a number of minutes.",
                );
            }
        }
    }
    request.insert("isUsableOnce".into(), json!(form.checked("isUsableOnce")));
    let user = match state.app.directory.get::<UserSpec>(&admin.ctx, id).await {
        Ok(user) => user,
        Err(error) => return refused(error),
    };
    match state
        .app
        .sign_in
        .issue_temporary_access_pass(&admin.ctx, id, Value::Object(request))
        .await
    {
        Ok(pass) => pages::page(
            StatusCode::OK,
            &ShownOnce {
                admin: &admin,
                heading: "Temporary Access Pass",
                name: &user.spec.display_name,
                back: &format!("/admin/users/{id}"),
                message: format!(
                    "{} can sign in with this pass until {}{}.",
                    user.spec.user_principal_name,
                    pass.end_date_time,
                    if pass.is_usable_once { ", once" } else { "" }
                ),
                secret: &pass.temporary_access_pass,
            },
        ),
        Err(error) => refused(error),
    }
}

/// Resets the password to a generated one, shown once; the user's sessions end.
async fn reset_password(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, .. }: Posted,
) -> Response {
    let user = match state.app.directory.get::<UserSpec>(&admin.ctx, id).await {
        Ok(user) => user,
        Err(error) => return refused(error),
    };
    match state.app.sign_in.reset_password(&admin.ctx, id, None).await {
        Ok(Some(password)) => pages::page(
            StatusCode::OK,
            &ShownOnce {
                admin: &admin,
                heading: "New password",
                name: &user.spec.display_name,
                back: &format!("/admin/users/{id}"),
                message: format!(
                    "The password of {} is now this one; their sessions were ended.",
                    user.spec.user_principal_name
                ),
                secret: password.expose(),
            },
        ),
        Ok(None) => pages::redirect(&format!("/admin/users/{id}?done=saved")),
        Err(error) => refused(error),
    }
}

/// The users the search selects, as CSV.
async fn export(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Response {
    let (directory, ctx) = (&state.app.directory, &admin.ctx);
    super::export_csv(
        &query,
        "users.csv",
        &[
            "id",
            "userPrincipalName",
            "displayName",
            "department",
            "jobTitle",
            "accountEnabled",
        ],
        |request| {
            let (state, admin) = (&state, &admin);
            async move {
                match directory.list::<UserSpec>(ctx, &request).await {
                    // An administrator scoped to units exports the users of their
                    // units, as their list shows them.
                    Err(ServiceError::Forbidden { .. }) if !scoped_units(admin).is_empty() => {
                        let search = request.search.clone().unwrap_or_default();
                        let value =
                            users_of_units(state, admin, &search, super::logs::CSV_ROWS).await?;
                        Ok(tessera_service::Page {
                            value,
                            next_cursor: None,
                        })
                    }
                    other => other,
                }
            }
        },
        |user: &User| {
            vec![
                user.id.to_string(),
                user.spec.user_principal_name.clone(),
                user.spec.display_name.clone(),
                user.spec.department.clone().unwrap_or_default(),
                user.spec.job_title.clone().unwrap_or_default(),
                user.spec.account_enabled.to_string(),
            ]
        },
    )
    .await
}

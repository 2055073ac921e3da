//! Conditional Access in the console: the policies and named locations, a policy's
//! Graph JSON (edited as JSON, with If-Match), the import of an Entra export (the
//! folder's files uploaded as they are, each recognised by its content) with its
//! report, and What-If as a form whose answer shows per policy what applied and why.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tessera_ca::import::{self as ca_import, ExportPart, ItemReport};
use tessera_directory::roles::action;
use tessera_service::ServiceError;
use tessera_service::conditional_access::{
    ConditionalAccessPolicy, ImportDocument, ImportRequest, NamedLocation, WhatIf,
};
use uuid::Uuid;

use super::explanation::ExplanationView;
use super::forms::Uploaded;
use super::policy_form::{self, PolicyForm};
use super::{Admin, Posted, refused};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/conditional-access", get(overview))
        .route("/admin/conditional-access/policies", post(create_policy))
        .route("/admin/conditional-access/policies/new", get(new_policy))
        .route(
            "/admin/conditional-access/policies/{id}",
            get(policy).post(save_policy),
        )
        .route(
            "/admin/conditional-access/policies/{id}/delete",
            get(confirm_delete_policy).post(delete_policy),
        )
        .route(
            "/admin/conditional-access/import",
            get(import_form).post(import),
        )
        .route(
            "/admin/conditional-access/what-if",
            get(what_if_form).post(what_if),
        )
}

#[derive(Template)]
#[template(path = "console/ca_overview.html")]
struct Overview<'a> {
    admin: &'a Admin,
    policies: Vec<ConditionalAccessPolicy>,
    locations: Vec<NamedLocation>,
    can_manage: bool,
    notice: Option<&'static str>,
}

fn state_label(policy: &ConditionalAccessPolicy) -> &'static str {
    label_of_state(
        serde_json::to_value(&policy.spec.state)
            .ok()
            .as_ref()
            .and_then(Value::as_str),
    )
}

fn label_of_state(state: Option<&str>) -> &'static str {
    match state {
        Some("enabled") => "On",
        Some("disabled") => "Off",
        _ => "Report-only",
    }
}

#[derive(serde::Deserialize)]
struct OverviewQuery {
    done: Option<String>,
}

async fn overview(
    State(state): State<AppState>,
    admin: Admin,
    axum::extract::Query(query): axum::extract::Query<OverviewQuery>,
) -> Response {
    let policies = match state.app.access.list_policies(&admin.ctx).await {
        Ok(policies) => policies,
        Err(error) => return refused(error),
    };
    let locations = state
        .app
        .access
        .list_named_locations(&admin.ctx)
        .await
        .unwrap_or_default();
    pages::page(
        StatusCode::OK,
        &Overview {
            admin: &admin,
            policies,
            locations,
            can_manage: super::holds(&admin.ctx, action::CA_POLICIES_MANAGE),
            notice: (query.done.as_deref() == Some("deleted")).then_some("The policy was deleted."),
        },
    )
}

#[derive(Template)]
#[template(path = "console/ca_policy.html")]
struct PolicyPage<'a> {
    admin: &'a Admin,
    /// `None` for a new policy.
    id: Option<Uuid>,
    name: String,
    state: &'static str,
    form: PolicyForm,
    json: String,
    version: i64,
    error: Option<String>,
    can_manage: bool,
}

/// The form over `spec`, with the tenant's locations, terms and strengths to choose
/// from (those the administrator may not read are shown by id).
async fn form_over(state: &AppState, admin: &Admin, spec: Value) -> PolicyForm {
    let ctx = &admin.ctx;
    let mut form = PolicyForm::new(spec);
    if let Ok(locations) = state.app.access.list_named_locations(ctx).await {
        form.locations = locations
            .iter()
            .map(|l| (l.id.to_string(), l.spec.display_name().to_string()))
            .collect();
    }
    if let Ok(terms) = state.app.access.list_terms_of_use(ctx).await {
        form.terms = terms
            .iter()
            .map(|t| (t.id.to_string(), t.spec.display_name.clone()))
            .collect();
    }
    if let Ok(strengths) = state.app.sign_in.list_strengths(ctx).await {
        form.strengths = strengths
            .iter()
            .map(|s| (s.id.to_string(), s.display_name.clone()))
            .collect();
    }
    form
}

/// The policy page over `spec` (the stored policy, or what was posted).
async fn policy_page(
    state: &AppState,
    admin: &Admin,
    id: Option<Uuid>,
    spec: Value,
    version: i64,
    error: Option<(StatusCode, String)>,
    editor: Option<String>,
) -> Response {
    let (status, error) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let label = label_of_state(spec["state"].as_str());
    let name = match (id, spec["displayName"].as_str()) {
        (Some(_), Some(name)) if !name.is_empty() => name.to_string(),
        (Some(_), _) => "Policy".to_string(),
        (None, _) => "New policy".to_string(),
    };
    pages::page(
        status,
        &PolicyPage {
            admin,
            id,
            name,
            state: if id.is_some() { label } else { "" },
            json: editor.unwrap_or_else(|| serde_json::to_string_pretty(&spec).unwrap_or_default()),
            form: form_over(state, admin, spec).await,
            version,
            error,
            can_manage: super::holds(&admin.ctx, action::CA_POLICIES_MANAGE),
        },
    )
}

async fn policy(State(state): State<AppState>, admin: Admin, Path(id): Path<Uuid>) -> Response {
    match state.app.access.get_policy(&admin.ctx, id).await {
        Ok((policy, version)) => {
            let spec = serde_json::to_value(&policy.spec).unwrap_or(Value::Null);
            policy_page(&state, &admin, Some(id), spec, version, None, None).await
        }
        Err(error) => refused(error),
    }
}

async fn new_policy(State(state): State<AppState>, admin: Admin) -> Response {
    let spec = json!({
        "displayName": "",
        "state": "enabledForReportingButNotEnforced",
        "conditions": {"applications": {"includeApplications": ["All"]}, "users": {}},
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
    });
    policy_page(&state, &admin, None, spec, 0, None, None).await
}

/// What a policy form posted: the whole policy, from the JSON editor when that is
/// what was sent, else from the form's fields over `stored`. A refusal comes with
/// what to show again: the fields as posted (as far as they could be read), and
/// the editor's text as typed.
fn posted_policy(
    form: &super::ConsoleForm,
    stored: &Value,
) -> Result<Value, (String, Value, Option<String>)> {
    match form.fields.iter().find(|(name, _)| name == "json") {
        Some((_, text)) => match serde_json::from_str(text) {
            Ok(body @ Value::Object(_)) => Ok(body),
            _ => Err((
                "The policy must be one JSON object, as Graph shows it.".to_string(),
                stored.clone(),
                Some(text.clone()),
            )),
        },
        None => policy_form::apply(form, stored)
            .map_err(|message| (message, policy_form::apply_leniently(form, stored), None)),
    }
}

async fn create_policy(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let body = match posted_policy(&form, &Value::Null) {
        Ok(body) => body,
        Err((message, shown, editor)) => {
            let refusal = Some((StatusCode::BAD_REQUEST, message));
            return policy_page(&state, &admin, None, shown, 0, refusal, editor).await;
        }
    };
    match state
        .app
        .access
        .create_policy(&admin.ctx, body.clone())
        .await
    {
        Ok(policy) => pages::redirect(&format!("/admin/conditional-access/policies/{}", policy.id)),
        Err(error) => match super::form_refusal(error, "policy") {
            Ok(refusal) => policy_page(&state, &admin, None, body, 0, Some(refusal), None).await,
            Err(page) => page,
        },
    }
}

/// Saves the policy, from its form or its Graph JSON, as a whole (a merge patch of
/// what changed, checked against the version the page was read at).
async fn save_policy(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(refusal) => return refusal,
    };
    // The editor shows the whole policy: what was taken out of it must go, which a
    // merge patch only does for keys sent as null.
    let stored = match state.app.access.get_policy(&admin.ctx, id).await {
        Ok((policy, _)) => serde_json::to_value(&policy.spec).unwrap_or(Value::Null),
        Err(error) => return refused(error),
    };
    let body = match posted_policy(&form, &stored) {
        Ok(body) => body,
        Err((message, shown, editor)) => {
            let refusal = Some((StatusCode::BAD_REQUEST, message));
            return policy_page(&state, &admin, Some(id), shown, version, refusal, editor).await;
        }
    };
    let patch = tessera_service::Versioned::new(id, Some(version))
        .patch(super::replacement(&stored, &body));
    match state.app.access.update_policy(&admin.ctx, patch).await {
        Ok(_) => pages::redirect(&format!("/admin/conditional-access/policies/{id}")),
        Err(error) => match super::form_refusal(error, "policy") {
            Ok(refusal) => {
                policy_page(&state, &admin, Some(id), body, version, Some(refusal), None).await
            }
            Err(page) => page,
        },
    }
}

async fn confirm_delete_policy(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> Response {
    let found = state.app.access.get_policy(&admin.ctx, id).await;
    // A protected deletion asks for the stronger sign-in here, before the form
    // (once the policy could be read at all).
    if found.is_ok()
        && super::holds(
            &admin.ctx,
            tessera_directory::roles::action::CA_POLICIES_MANAGE,
        )
        && let Err(error) = state.app.check_protected(
            &admin.ctx,
            tessera_service::pim::protected_action::CA_POLICY_DELETE,
            None,
        )
    {
        return super::refused(error);
    }
    super::confirm_delete_of(
        &admin,
        found,
        "policy",
        |(policy, version)| (policy.spec.display_name.as_str(), *version),
        "Sign-ins are no longer checked against it from this moment.",
        &format!("/admin/conditional-access/policies/{id}"),
    )
}

async fn delete_policy(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, .. }: Posted,
) -> Response {
    super::done(
        state.app.access.delete_policy(&admin.ctx, id).await,
        "/admin/conditional-access?done=deleted",
    )
}

#[derive(Template)]
#[template(path = "console/ca_import.html")]
struct ImportPage<'a> {
    admin: &'a Admin,
    error: Option<String>,
    result: Option<ImportView>,
}

/// An import's answer as the page shows it.
struct ImportView {
    dry_run: bool,
    imported: bool,
    policies_imported: usize,
    named_locations_imported: usize,
    warnings: Vec<String>,
    items: Vec<ItemReport>,
    ignored: Vec<String>,
}

async fn import_form(admin: Admin) -> Response {
    pages::page(
        StatusCode::OK,
        &ImportPage {
            admin: &admin,
            error: None,
            result: None,
        },
    )
}

/// Most files one upload may hold.
const MAX_FILES: usize = 500;

/// The upload of an export folder: `multipart/form-data` with the anti-forgery
/// token, the options, and the files.
async fn import(State(state): State<AppState>, upload: Uploaded) -> Response {
    let admin = &upload.admin;
    let mut request = ImportRequest {
        policies: Vec::new(),
        named_locations: Vec::new(),
        groups: Vec::new(),
        migration_table: None,
        skip_errors: upload.checked("skipErrors"),
        dry_run: upload.checked("dryRun"),
        state: upload
            .checked("reportOnly")
            .then_some(tessera_ca::model::PolicyState::EnabledForReportingButNotEnforced),
    };
    let mut ignored = Vec::new();
    if upload.files("export").count() > MAX_FILES {
        return import_refused(admin, "An export holds at most 500 files.");
    }
    for part in upload.files("export") {
        let file = part
            .file_name
            .as_deref()
            .unwrap_or("")
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("")
            .to_string();
        if !file.to_ascii_lowercase().ends_with(".json") {
            ignored.push(file);
            continue;
        }
        let document = match ca_import::parse_document(&part.data) {
            // No NUL character gets further than the request guard lets it
            // elsewhere (an upload passes the guard undecoded).
            Ok(document) if document.to_string().contains("\\u0000") => {
                return import_refused(admin, &format!("{file} holds a NUL character"));
            }
            Ok(document) => document,
            Err(error) => return import_refused(admin, &format!("{file} {error}")),
        };
        match ca_import::export_part(&document) {
            ExportPart::Policy => request.policies.push(ImportDocument { file, document }),
            ExportPart::NamedLocation => {
                request
                    .named_locations
                    .push(ImportDocument { file, document });
            }
            ExportPart::Group => request.groups.push(document),
            ExportPart::MigrationTable => request.migration_table = Some(document),
            ExportPart::Unknown => ignored.push(file),
        }
    }
    if request.policies.is_empty() {
        return import_refused(admin, "The files hold no Conditional Access policy.");
    }
    match state.app.access.import(&admin.ctx, request).await {
        Ok(result) => {
            let mut items = result.report.named_locations.clone();
            items.extend(result.report.policies.clone());
            pages::page(
                StatusCode::OK,
                &ImportPage {
                    admin,
                    error: None,
                    result: Some(ImportView {
                        dry_run: result.dry_run,
                        imported: result.imported,
                        policies_imported: result.policies_imported,
                        named_locations_imported: result.named_locations_imported,
                        warnings: result.warnings.clone(),
                        items,
                        ignored,
                    }),
                },
            )
        }
        Err(ServiceError::Validation(errors)) => {
            import_refused(admin, &ServiceError::Validation(errors).to_string())
        }
        Err(error) => refused(error),
    }
}

fn import_refused(admin: &Admin, message: &str) -> Response {
    pages::page(
        StatusCode::BAD_REQUEST,
        &ImportPage {
            admin,
            error: Some(message.to_string()),
            result: None,
        },
    )
}

/// The What-If form's values, as typed.
#[derive(Default)]
struct Question {
    user: String,
    app: String,
    ip_address: String,
    country: String,
    platform: String,
    client_app_type: String,
    sign_in_risk: String,
    user_risk: String,
    methods: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/ca_what_if.html")]
struct WhatIfPage<'a> {
    admin: &'a Admin,
    question: Question,
    answer: Option<ExplanationView>,
    error: Option<String>,
}

async fn what_if_form(admin: Admin) -> Response {
    pages::page(
        StatusCode::OK,
        &WhatIfPage {
            admin: &admin,
            question: Question {
                client_app_type: "browser".to_string(),
                ..Question::default()
            },
            answer: None,
            error: None,
        },
    )
}

async fn what_if(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let text = |name| form.get(name).unwrap_or("").to_string();
    let question = Question {
        user: text("user"),
        app: text("app"),
        ip_address: text("ipAddress"),
        country: text("country"),
        platform: text("platform"),
        client_app_type: text("clientAppType"),
        sign_in_risk: text("signInRiskLevel"),
        user_risk: text("userRiskLevel"),
        methods: form.all("method").iter().map(|m| m.to_string()).collect(),
    };
    let answer = ask(&state, &admin, &question).await;
    let (status, answer, error) = match answer {
        Ok(explanation) => (StatusCode::OK, ExplanationView::of(&explanation), None),
        Err(Ok(message)) => (StatusCode::BAD_REQUEST, None, Some(message)),
        Err(Err(page)) => return page,
    };
    pages::page(
        status,
        &WhatIfPage {
            admin: &admin,
            question,
            answer,
            error,
        },
    )
}

/// Asks the engine; a question it refuses is `Err(Ok(why))`.
async fn ask(
    state: &AppState,
    admin: &Admin,
    question: &Question,
) -> Result<Value, Result<String, Response>> {
    let mut body = Map::new();
    if !question.user.is_empty() {
        let user = match Uuid::parse_str(&question.user) {
            Ok(id) => id,
            Err(_) => match state
                .app
                .directory
                .get_user_by_principal_name(&admin.ctx, &question.user)
                .await
            {
                Ok(user) => user.id,
                Err(ServiceError::NotFound { .. }) => {
                    return Err(Ok(format!("No user is named {}.", question.user)));
                }
                Err(error) => return Err(Err(refused(error))),
            },
        };
        body.insert("userId".into(), json!(user));
    }
    for (key, value) in [
        ("appId", &question.app),
        ("ipAddress", &question.ip_address),
        ("country", &question.country),
        ("platform", &question.platform),
        ("clientAppType", &question.client_app_type),
        ("signInRiskLevel", &question.sign_in_risk),
        ("userRiskLevel", &question.user_risk),
    ] {
        if !value.is_empty() {
            body.insert(key.into(), json!(value));
        }
    }
    if !question.methods.is_empty() {
        body.insert("authenticationMethods".into(), json!(question.methods));
    }
    let asked: WhatIf = match serde_json::from_value(Value::Object(body)) {
        Ok(asked) => asked,
        Err(error) => return Err(Ok(format!("The question is not complete: {error}"))),
    };
    match state.app.access.what_if(&admin.ctx, asked).await {
        Ok(explanation) => Ok(serde_json::to_value(&explanation).unwrap_or(Value::Null)),
        Err(error @ (ServiceError::Validation(_) | ServiceError::NotFound { .. })) => {
            Err(Ok(error.to_string()))
        }
        Err(error) => Err(Err(refused(error))),
    }
}

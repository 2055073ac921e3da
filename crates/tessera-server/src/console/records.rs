//! Tenant records the console shows as lists and edits as their Graph-shaped JSON:
//! named locations and terms of use (Conditional Access), authentication strengths
//! and certificate authorities with their CRLs (authentication), custom security
//! attribute definitions. One set of pages serves them all: a list, a new record
//! from a starting JSON, a record's page (its JSON, saved as a whole with the version
//! read where the record has one), and deletion after a confirmation.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use tessera_directory::roles::action;
use tessera_service::{Context, PageRequest, ServiceError, ServiceResult, Versioned};
use uuid::Uuid;

use super::{Admin, ListQuery, Posted, confirm_page, done, form_refusal, holds, refused};
use crate::pages;
use crate::state::AppState;

/// The kinds of record these pages serve.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Collection {
    NamedLocations,
    TermsOfUse,
    Strengths,
    CertificateAuthorities,
    Attributes,
    LifecycleWorkflows,
}

const ALL: [Collection; 6] = [
    Collection::NamedLocations,
    Collection::TermsOfUse,
    Collection::Strengths,
    Collection::CertificateAuthorities,
    Collection::Attributes,
    Collection::LifecycleWorkflows,
];

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for kind in ALL {
        let base = kind.base();
        router = router
            .route(
                base,
                get(move |state, admin, query| list(kind, state, admin, query))
                    .post(move |state, posted| create(kind, state, posted)),
            )
            .route(&format!("{base}/new"), get(move |admin| new(kind, admin)))
            .route(
                &format!("{base}/{{id}}"),
                get(move |state, admin, path, query| detail(kind, state, admin, path, query))
                    .post(move |state, path, posted| save(kind, state, path, posted)),
            )
            .route(
                &format!("{base}/{{id}}/delete"),
                get(move |state, admin, path| confirm_delete(kind, state, admin, path))
                    .post(move |state, path, posted| delete(kind, state, path, posted)),
            );
    }
    router
        .route(
            "/admin/authentication/certificate-authorities/{id}/crl",
            axum::routing::post(upload_crl),
        )
        .route(
            "/admin/authentication/certificate-authorities/{id}/crl/refresh",
            axum::routing::post(refresh_crl),
        )
}

/// One record as the pages show it.
pub(crate) struct Item {
    pub id: String,
    pub name: String,
    pub summary: String,
    pub json: Value,
    /// The version a change is checked against, for records that have one.
    pub version: Option<i64>,
    /// Built-in records (the built-in strengths) cannot be changed or deleted.
    pub built_in: bool,
}

fn workflow_item(view: &tessera_service::lifecycle::WorkflowView) -> Item {
    let workflow = &view.workflow;
    Item {
        id: view.id.to_string(),
        name: workflow.display_name.clone(),
        summary: format!(
            "{}, {} task(s){}",
            to_json(&workflow.category).as_str().unwrap_or_default(),
            workflow.tasks.len(),
            if workflow.enabled { "" } else { ", disabled" }
        ),
        json: to_json(workflow),
        version: Some(view.version),
        built_in: false,
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn uuid_of(id: &str) -> ServiceResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| ServiceError::NotFound {
        kind: "record",
        id: id.to_string(),
    })
}

impl Collection {
    pub(crate) fn base(self) -> &'static str {
        match self {
            Collection::NamedLocations => "/admin/conditional-access/named-locations",
            Collection::TermsOfUse => "/admin/conditional-access/terms-of-use",
            Collection::Strengths => "/admin/authentication/strengths",
            Collection::CertificateAuthorities => "/admin/authentication/certificate-authorities",
            Collection::Attributes => "/admin/attributes",
            Collection::LifecycleWorkflows => "/admin/provisioning/workflows",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Collection::NamedLocations => "Named locations",
            Collection::TermsOfUse => "Terms of use",
            Collection::Strengths => "Authentication strengths",
            Collection::CertificateAuthorities => "Certificate authorities",
            Collection::Attributes => "Custom security attributes",
            Collection::LifecycleWorkflows => "Lifecycle workflows",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Collection::NamedLocations => "named location",
            Collection::TermsOfUse => "terms of use",
            Collection::Strengths => "authentication strength",
            Collection::CertificateAuthorities => "certificate authority",
            Collection::Attributes => "attribute definition",
            Collection::LifecycleWorkflows => "workflow",
        }
    }

    /// The console section the page belongs to (which navigation link is current).
    fn section(self) -> &'static str {
        match self {
            Collection::NamedLocations | Collection::TermsOfUse => "ca",
            Collection::Strengths | Collection::CertificateAuthorities => "authentication",
            Collection::Attributes => "attributes",
            Collection::LifecycleWorkflows => "provisioning",
        }
    }

    /// Where the page sits in the console: the breadcrumb above it.
    fn parent(self) -> (&'static str, &'static str) {
        match self {
            Collection::NamedLocations | Collection::TermsOfUse => {
                ("/admin/conditional-access", "Conditional Access")
            }
            Collection::Strengths | Collection::CertificateAuthorities => {
                ("/admin/authentication", "Authentication")
            }
            Collection::Attributes => ("/admin", "Home"),
            Collection::LifecycleWorkflows => ("/admin/provisioning", "Provisioning"),
        }
    }

    fn about(self) -> &'static str {
        match self {
            Collection::NamedLocations => {
                "IP ranges and countries that Conditional Access policies include or exclude; trusted ranges count for AllTrusted. A location a policy names cannot be deleted."
            }
            Collection::TermsOfUse => {
                "Texts a policy can require users to accept. Changing the text asks everyone to accept it again."
            }
            Collection::Strengths => {
                "Which combinations of methods satisfy a policy's authentication strength. The built-in strengths cannot be changed; a custom strength is added as JSON and kept as it is."
            }
            Collection::CertificateAuthorities => {
                "The certificate authorities whose certificates users may sign in with, and the revocation lists checked against them."
            }
            Collection::Attributes => {
                "Attributes defined by the organisation, grouped in sets, that users and applications can carry and policies can filter on. A definition is deactivated rather than deleted."
            }
            Collection::LifecycleWorkflows => {
                "What happens when people join, move and leave: a trigger (a date attribute with an offset, or an attribute change for movers), a scope in the membership-rule syntax, and ordered tasks. The lifecycle job runs each firing once; each run is recorded."
            }
        }
    }

    /// The permission that lets the caller change records of this kind: without it,
    /// no button that changes anything is shown.
    fn manage_permission(self) -> &'static str {
        match self {
            Collection::NamedLocations => action::NAMED_LOCATIONS_MANAGE,
            Collection::TermsOfUse => action::CA_POLICIES_MANAGE,
            Collection::Strengths | Collection::CertificateAuthorities => action::POLICIES_MANAGE,
            Collection::Attributes => action::ATTRIBUTE_DEFINITIONS_MANAGE,
            Collection::LifecycleWorkflows => action::POLICIES_MANAGE,
        }
    }

    /// Whether a record of this kind can be edited after it was made.
    fn editable(self) -> bool {
        !matches!(
            self,
            Collection::Strengths | Collection::CertificateAuthorities
        )
    }

    fn deletable(self) -> bool {
        self != Collection::Attributes
    }

    /// What a new record starts from.
    fn example(self) -> Value {
        match self {
            Collection::NamedLocations => json!({
                "@odata.type": "#microsoft.graph.ipNamedLocation",
                "displayName": "Head office",
                "isTrusted": true,
                "ipRanges": [{"cidrAddress": "192.0.2.0/24"}]
            }),
            Collection::TermsOfUse => json!({
                "displayName": "Acceptable use",
                "content": "By continuing you agree to use this organisation's systems only for work."
            }),
            Collection::Strengths => json!({
                "displayName": "Passkeys only",
                "description": "A passkey or a security key",
                "allowedCombinations": ["fido2"]
            }),
            Collection::CertificateAuthorities => json!({
                "certificate": "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----",
                "isRootAuthority": true,
                "requireRevocationData": false,
                "crlDistributionPoint": null,
                "ocspResponder": null
            }),
            Collection::Attributes => json!({
                "attributeSet": "Engineering",
                "name": "Project",
                "type": "String",
                "isCollection": false,
                "usePreDefinedValuesOnly": false,
                "description": "The project a person works on",
                "status": "Available"
            }),
            Collection::LifecycleWorkflows => json!({
                "displayName": "Onboard new hires",
                "category": "joiner",
                "enabled": true,
                "trigger": {"kind": "timeBased", "attribute": "employeeHireDate", "offsetDays": -2},
                "scope": "user.department -eq \"Sales\"",
                "tasks": [
                    {"task": "enableUser"},
                    {"task": "generateTemporaryAccessPass", "lifetimeMinutes": 480},
                    {"task": "notifyManager"}
                ]
            }),
        }
    }

    async fn list(self, state: &AppState, ctx: &Context) -> ServiceResult<Vec<Item>> {
        let app = &state.app;
        Ok(match self {
            Collection::NamedLocations => app
                .access
                .list_named_locations(ctx)
                .await?
                .into_iter()
                .map(|location| {
                    let spec = to_json(&location.spec);
                    let summary = match &location.spec {
                        tessera_ca::model::NamedLocationSpec::Ip(ip) => format!(
                            "{} IP range(s){}",
                            ip.ip_ranges.len(),
                            if ip.is_trusted { ", trusted" } else { "" }
                        ),
                        tessera_ca::model::NamedLocationSpec::Country(country) => {
                            format!("Countries: {}", country.countries_and_regions.join(", "))
                        }
                    };
                    Item {
                        id: location.id.to_string(),
                        name: location.spec.display_name().to_string(),
                        summary,
                        json: spec,
                        version: None,
                        built_in: false,
                    }
                })
                .collect(),
            Collection::TermsOfUse => app
                .access
                .list_terms_of_use(ctx)
                .await?
                .into_iter()
                .map(|terms| Item {
                    id: terms.id.to_string(),
                    name: terms.spec.display_name.clone(),
                    summary: format!("Version {} of the text", terms.content_version),
                    json: to_json(&terms.spec),
                    version: None,
                    built_in: false,
                })
                .collect(),
            Collection::Strengths => app
                .sign_in
                .list_strengths(ctx)
                .await?
                .into_iter()
                .map(|strength| Item {
                    id: strength.id.to_string(),
                    name: strength.display_name.clone(),
                    summary: strength.description.clone(),
                    built_in: strength.policy_type != "custom",
                    json: to_json(&strength),
                    version: None,
                })
                .collect(),
            Collection::CertificateAuthorities => app
                .sign_in
                .list_certificate_authorities(ctx)
                .await?
                .into_iter()
                .map(|ca| Item {
                    id: ca.id.to_string(),
                    name: ca.subject.clone(),
                    summary: format!(
                        "{}, valid until {}{}",
                        if ca.is_root_authority {
                            "Root"
                        } else {
                            "Intermediate"
                        },
                        ca.not_after,
                        match &ca.revocation_list {
                            Some(_) => ", revocation list held",
                            None => ", no revocation list",
                        }
                    ),
                    json: to_json(&ca),
                    version: None,
                    built_in: false,
                })
                .collect(),
            Collection::Attributes => {
                let mut items = Vec::new();
                let mut request = PageRequest {
                    cursor: None,
                    limit: Some(1000),
                    search: None,
                };
                loop {
                    let page = app
                        .directory
                        .list_attribute_definitions(ctx, &request)
                        .await?;
                    items.extend(page.value.into_iter().map(|definition| Item {
                        id: definition.id.clone(),
                        name: definition.id.clone(),
                        summary: format!(
                            "{}{}, {}",
                            serde_json::to_value(definition.spec.attribute_type)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default(),
                            if definition.spec.is_collection {
                                " collection"
                            } else {
                                ""
                            },
                            serde_json::to_value(definition.spec.status)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default(),
                        ),
                        json: to_json(&definition.spec),
                        version: Some(definition.version),
                        built_in: false,
                    }));
                    match page.next_cursor {
                        Some(cursor) => request.cursor = Some(cursor),
                        None => break,
                    }
                }
                items
            }
            Collection::LifecycleWorkflows => app
                .lifecycle
                .list_workflows(ctx)
                .await?
                .into_iter()
                .map(|view| workflow_item(&view))
                .collect(),
        })
    }

    /// Whether records of this kind have runs to show.
    fn has_runs(self) -> bool {
        self == Collection::LifecycleWorkflows
    }

    async fn get(self, state: &AppState, ctx: &Context, id: &str) -> ServiceResult<Item> {
        let app = &state.app;
        match self {
            Collection::NamedLocations => {
                let (location, version) = app.access.get_named_location(ctx, uuid_of(id)?).await?;
                let mut item = self
                    .list(state, ctx)
                    .await?
                    .into_iter()
                    .find(|item| item.id == location.id.to_string())
                    .ok_or_else(|| ServiceError::NotFound {
                        kind: "namedLocation",
                        id: id.to_string(),
                    })?;
                item.version = Some(version);
                Ok(item)
            }
            Collection::TermsOfUse => {
                let (terms, version) = app.access.get_terms_of_use(ctx, uuid_of(id)?).await?;
                Ok(Item {
                    id: terms.id.to_string(),
                    name: terms.spec.display_name.clone(),
                    summary: format!("Version {} of the text", terms.content_version),
                    json: to_json(&terms.spec),
                    version: Some(version),
                    built_in: false,
                })
            }
            Collection::LifecycleWorkflows => Ok(workflow_item(
                &app.lifecycle.get_workflow(ctx, uuid_of(id)?).await?,
            )),
            Collection::Attributes => {
                let definition = app.directory.get_attribute_definition(ctx, id).await?;
                Ok(Item {
                    id: definition.id.clone(),
                    name: definition.id.clone(),
                    summary: String::new(),
                    json: to_json(&definition.spec),
                    version: Some(definition.version),
                    built_in: false,
                })
            }
            _ => self
                .list(state, ctx)
                .await?
                .into_iter()
                .find(|item| item.id == id)
                .ok_or_else(|| ServiceError::NotFound {
                    kind: "record",
                    id: id.to_string(),
                }),
        }
    }

    /// Creates a record from its JSON; answers its id.
    async fn create(self, state: &AppState, ctx: &Context, body: Value) -> ServiceResult<String> {
        let app = &state.app;
        Ok(match self {
            Collection::NamedLocations => app
                .access
                .create_named_location(ctx, body)
                .await?
                .id
                .to_string(),
            Collection::TermsOfUse => app
                .access
                .create_terms_of_use(ctx, body)
                .await?
                .id
                .to_string(),
            Collection::Strengths => app.sign_in.create_strength(ctx, body).await?.id.to_string(),
            Collection::CertificateAuthorities => app
                .sign_in
                .add_certificate_authority(ctx, body)
                .await?
                .id
                .to_string(),
            Collection::Attributes => {
                app.directory
                    .create_attribute_definition(ctx, body)
                    .await?
                    .id
            }
            Collection::LifecycleWorkflows => app
                .lifecycle
                .create_workflow(ctx, body)
                .await?
                .id
                .to_string(),
        })
    }

    /// Saves a record's JSON as a whole: `patch` turns what is stored into what the
    /// editor holds (`body`, for the kinds replaced whole).
    async fn save(
        self,
        state: &AppState,
        ctx: &Context,
        id: &str,
        version: Option<i64>,
        patch: Value,
        body: Value,
    ) -> ServiceResult<()> {
        let app = &state.app;
        match self {
            Collection::LifecycleWorkflows => {
                app.lifecycle
                    .replace_workflow(
                        ctx,
                        uuid_of(id)?,
                        tessera_service::Replacement::new(body, version),
                    )
                    .await?;
            }
            Collection::NamedLocations => {
                let at = Versioned::new(uuid_of(id)?, version);
                app.access
                    .update_named_location(ctx, at.patch(patch))
                    .await?;
            }
            Collection::TermsOfUse => {
                let at = Versioned::new(uuid_of(id)?, version);
                app.access.update_terms_of_use(ctx, at.patch(patch)).await?;
            }
            Collection::Attributes => {
                let at = Versioned::new(id, version);
                app.directory
                    .update_attribute_definition(ctx, at.patch(patch))
                    .await?;
            }
            Collection::Strengths | Collection::CertificateAuthorities => {
                return Err(ServiceError::Conflict {
                    message: format!(
                        "a {} is not changed once made: add a new one and delete this one",
                        self.noun()
                    ),
                });
            }
        }
        Ok(())
    }

    async fn delete(self, state: &AppState, ctx: &Context, id: &str) -> ServiceResult<()> {
        let app = &state.app;
        let id_ = uuid_of(id);
        match self {
            Collection::NamedLocations => app.access.delete_named_location(ctx, id_?).await,
            Collection::TermsOfUse => app.access.delete_terms_of_use(ctx, id_?).await,
            Collection::Strengths => app.sign_in.delete_strength(ctx, id_?).await,
            Collection::CertificateAuthorities => {
                app.sign_in.delete_certificate_authority(ctx, id_?).await
            }
            Collection::LifecycleWorkflows => app.lifecycle.delete_workflow(ctx, id_?).await,
            Collection::Attributes => Err(ServiceError::Conflict {
                message: "an attribute definition is deactivated (status Deprecated), not deleted"
                    .to_string(),
            }),
        }
    }
}

#[derive(Template)]
#[template(path = "console/records.html")]
struct ListPage<'a> {
    admin: &'a Admin,
    kind: Collection,
    items: Vec<Item>,
    can_manage: bool,
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "console/record.html")]
struct RecordPage<'a> {
    admin: &'a Admin,
    kind: Collection,
    /// `None` for a new record.
    item: Option<Item>,
    json: String,
    can_manage: bool,
    error: Option<String>,
    notice: Option<&'static str>,
}

impl RecordPage<'_> {
    fn editable(&self) -> bool {
        self.can_manage
            && match &self.item {
                None => true,
                Some(item) => self.kind.editable() && !item.built_in,
            }
    }

    fn is_ca(&self) -> bool {
        self.kind == Collection::CertificateAuthorities
    }
}

fn notice_of(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some("Created."),
        "saved" => Some("Saved."),
        "deleted" => Some("Deleted."),
        "crl" => Some("The revocation list was stored."),
        _ => None,
    }
}

async fn list(
    kind: Collection,
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Response {
    match kind.list(&state, &admin.ctx).await {
        Ok(items) => pages::page(
            StatusCode::OK,
            &ListPage {
                can_manage: holds(&admin.ctx, kind.manage_permission()),
                admin: &admin,
                kind,
                items,
                notice: notice_of(query.done.as_deref()),
            },
        ),
        Err(error) => refused(error),
    }
}

async fn new(kind: Collection, admin: Admin) -> Response {
    pages::page(
        StatusCode::OK,
        &RecordPage {
            can_manage: holds(&admin.ctx, kind.manage_permission()),
            admin: &admin,
            kind,
            item: None,
            json: serde_json::to_string_pretty(&kind.example()).unwrap_or_default(),
            error: None,
            notice: None,
        },
    )
}

/// The JSON object a form's editor holds, or what to tell the administrator.
fn object_in(text: &str, noun: &str) -> Result<Value, String> {
    match serde_json::from_str(text) {
        Ok(body @ Value::Object(_)) => Ok(body),
        _ => Err(format!("The {noun} must be one JSON object.")),
    }
}

/// A record's page shown again after a refused create or save, with what was typed
/// and why (or the refusal's own page).
fn shown_again(
    admin: &Admin,
    kind: Collection,
    item: Option<Item>,
    json: String,
    outcome: Result<(StatusCode, String), Response>,
) -> Response {
    match outcome {
        Ok((status, message)) => pages::page(
            status,
            &RecordPage {
                can_manage: true,
                admin,
                kind,
                item,
                json,
                error: Some(message),
                notice: None,
            },
        ),
        Err(page) => page,
    }
}

async fn create(kind: Collection, State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { admin, form } = posted;
    let text = form.get("json").unwrap_or("").to_string();
    let outcome = match object_in(&text, kind.noun()) {
        Ok(body) => match kind.create(&state, &admin.ctx, body).await {
            Ok(id) => return pages::redirect(&format!("{}/{id}?done=created", kind.base())),
            Err(error) => form_refusal(error, kind.noun()),
        },
        Err(message) => Ok((StatusCode::BAD_REQUEST, message)),
    };
    shown_again(&admin, kind, None, text, outcome)
}

#[derive(serde::Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn detail(
    kind: Collection,
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Response {
    detail_page(kind, &state, admin, &id, query.done.as_deref(), None).await
}

/// A record's page, with what was done or went wrong.
async fn detail_page(
    kind: Collection,
    state: &AppState,
    admin: Admin,
    id: &str,
    done: Option<&str>,
    error: Option<(StatusCode, String)>,
) -> Response {
    let (status, error) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    match kind.get(state, &admin.ctx, id).await {
        Ok(item) => pages::page(
            status,
            &RecordPage {
                can_manage: holds(&admin.ctx, kind.manage_permission()),
                json: serde_json::to_string_pretty(&item.json).unwrap_or_default(),
                admin: &admin,
                kind,
                item: Some(item),
                error,
                notice: notice_of(done),
            },
        ),
        Err(error) => refused(error),
    }
}

async fn save(
    kind: Collection,
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Response {
    let Posted { admin, form } = posted;
    let text = form.get("json").unwrap_or("").to_string();
    let version = form.get("version").and_then(|v| v.parse::<i64>().ok());
    let stored = match kind.get(&state, &admin.ctx, &id).await {
        Ok(item) => item,
        Err(error) => return refused(error),
    };
    if stored.version.is_some() && version.is_none() {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "This form is incomplete: reload the page.",
        );
    }
    let outcome = match object_in(&text, kind.noun()) {
        Ok(body) => {
            let patch = super::replacement(&stored.json, &body);
            match kind
                .save(&state, &admin.ctx, &id, version, patch, body)
                .await
            {
                Ok(()) => return pages::redirect(&format!("{}/{id}?done=saved", kind.base())),
                Err(error) => form_refusal(error, kind.noun()),
            }
        }
        Err(message) => Ok((StatusCode::BAD_REQUEST, message)),
    };
    shown_again(
        &admin,
        kind,
        Some(Item { version, ..stored }),
        text,
        outcome,
    )
}

async fn confirm_delete(
    kind: Collection,
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    if !kind.deletable() {
        return refused(ServiceError::Conflict {
            message: format!("a {} is not deleted", kind.noun()),
        });
    }
    match kind.get(&state, &admin.ctx, &id).await {
        Ok(item) => confirm_page(
            &admin,
            kind.noun(),
            &item.name,
            "It is gone at once; what refers to it has to be changed first.",
            &format!("{}/{id}", kind.base()),
            item.version.unwrap_or(0),
        ),
        Err(error) => refused(error),
    }
}

async fn delete(
    kind: Collection,
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Response {
    done(
        kind.delete(&state, &posted.admin.ctx, &id).await,
        &format!("{}?done=deleted", kind.base()),
    )
}

/// Stores a CRL pasted as PEM or base64 DER.
async fn upload_crl(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let body = json!({"crl": form.get("crl").unwrap_or("")});
    let result = state.app.sign_in.upload_crl(&admin.ctx, id, body).await;
    crl_answer(&state, admin, id, result).await
}

/// Fetches a CA's CRL from its distribution point now.
async fn refresh_crl(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, .. }: Posted,
) -> Response {
    let result = state.app.sign_in.refresh_crl(&admin.ctx, id).await;
    crl_answer(&state, admin, id, result).await
}

async fn crl_answer<T>(
    state: &AppState,
    admin: Admin,
    id: Uuid,
    result: ServiceResult<T>,
) -> Response {
    let kind = Collection::CertificateAuthorities;
    let message = match result {
        Ok(_) => return pages::redirect(&format!("{}/{id}?done=crl", kind.base())),
        Err(ServiceError::Unavailable(message)) => (StatusCode::SERVICE_UNAVAILABLE, message),
        Err(error) => match form_refusal(error, kind.noun()) {
            Ok(message) => message,
            Err(page) => return page,
        },
    };
    detail_page(kind, state, admin, &id.to_string(), None, Some(message)).await
}

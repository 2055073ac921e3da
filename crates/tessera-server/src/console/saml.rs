//! An application's SAML single sign-on in the console: its configuration as
//! JSON (entity id, consumer services, certificates, NameID, attribute mapping,
//! signing and encryption), set from the service provider's metadata (with its
//! signature checked against a signer certificate when one is given), Tessera's
//! own metadata to hand to the service provider, a test sign-in link, and removal.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tessera_directory::roles::action;
use tessera_service::ServiceError;
use tessera_service::saml::{CertificateState, IdpCertificate};
use uuid::Uuid;

use super::{Admin, Posted, done, form_refusal, holds, refused};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/applications/{id}/saml", get(page).post(save))
        .route("/admin/applications/{id}/saml/metadata", post(import))
        .route(
            "/admin/applications/{id}/saml/delete",
            get(confirm_removal).post(remove),
        )
        .route(
            "/admin/applications/{id}/saml/certificates",
            post(add_certificate),
        )
        .route(
            "/admin/applications/{id}/saml/certificates/{thumbprint}/activate",
            post(activate_certificate),
        )
        .route(
            "/admin/applications/{id}/saml/certificates/{thumbprint}/remove",
            post(remove_certificate),
        )
}

#[derive(Template)]
#[template(path = "console/saml.html")]
struct SamlPage<'a> {
    admin: &'a Admin,
    id: Uuid,
    name: String,
    app_id: String,
    /// The configuration as JSON (a starting point when there is none).
    json: String,
    /// The version read, for If-Match; 0 when the application has no
    /// configuration yet.
    version: i64,
    configured: bool,
    may_edit: bool,
    metadata: String,
    metadata_url: String,
    signer: String,
    /// The application's own IdP certificates (none: the tenant's signs).
    certificates: Vec<IdpCertificate>,
    error: Option<String>,
    notice: Option<&'static str>,
}

/// A configuration to start from: the fields an SP always needs.
fn starting_point() -> Value {
    json!({
        "entityId": "https://app.example.com/saml",
        "consumerServices": [{ "url": "https://app.example.com/saml/acs", "index": 0, "isDefault": true }],
        "nameId": { "format": "persistent" },
        "attributes": [
            { "name": "email", "source": { "kind": "user", "attribute": "mail" } }
        ]
    })
}

struct Typed {
    json: Option<String>,
    metadata: String,
    metadata_url: String,
    signer: String,
    error: Option<(StatusCode, String)>,
    notice: Option<&'static str>,
}

async fn render(state: &AppState, admin: &Admin, id: Uuid, typed: Typed) -> Response {
    let app = match state.app.directory.get_application(&admin.ctx, id).await {
        Ok(app) => app,
        Err(error) => return refused(error),
    };
    let current = match state.app.saml.configuration(&admin.ctx, id).await {
        Ok(current) => current,
        Err(error) => return refused(error),
    };
    let certificates = if current.is_some() {
        match state
            .app
            .saml
            .application_certificates(&admin.ctx, id)
            .await
        {
            Ok(certificates) => certificates,
            Err(error) => return refused(error),
        }
    } else {
        Vec::new()
    };
    let stored = current
        .as_ref()
        .map(|c| {
            let mut value = serde_json::to_value(&c.settings).unwrap_or(Value::Null);
            if let Some(object) = value.as_object_mut() {
                object.remove("appId");
            }
            value
        })
        .unwrap_or_else(starting_point);
    let status = typed.error.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    pages::page(
        status,
        &SamlPage {
            admin,
            id,
            name: app.spec.display_name.clone(),
            app_id: app.app_id.to_string(),
            json: typed
                .json
                .unwrap_or_else(|| serde_json::to_string_pretty(&stored).unwrap_or_default()),
            version: current.as_ref().map_or(0, |c| c.version),
            configured: current.is_some(),
            may_edit: holds(&admin.ctx, action::APPS_AUTHENTICATION_UPDATE),
            metadata: typed.metadata,
            metadata_url: typed.metadata_url,
            signer: typed.signer,
            certificates,
            error: typed.error.map(|(_, message)| message),
            notice: typed.notice,
        },
    )
}

async fn page(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let notice = match query.get("done").map(String::as_str) {
        Some("saved") => Some("The SAML configuration is saved."),
        Some("imported") => Some("The configuration was set from the service provider's metadata."),
        Some("added") => Some(
            "The certificate is added as the next one: it is published in the application's metadata. Activate it once the service provider has it.",
        ),
        Some("activated") => Some("The certificate signs now; the one it replaced is removed."),
        Some("removed") => Some("The certificate is removed."),
        _ => None,
    };
    let typed = Typed {
        json: None,
        metadata: String::new(),
        metadata_url: String::new(),
        signer: String::new(),
        error: None,
        notice,
    };
    render(&state, &admin, id, typed).await
}

async fn save(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    // The version read (0: there was no configuration): a change made since is
    // not overwritten.
    let version = match form.version() {
        Ok(version) => version,
        Err(refusal) => return refusal,
    };
    let text = form.get("json").unwrap_or("").to_string();
    let outcome = match serde_json::from_str::<Value>(&text) {
        Ok(body @ Value::Object(_)) => match state
            .app
            .saml
            .configure(&admin.ctx, id, body, Some(version))
            .await
        {
            Ok(_) => return pages::redirect(&format!("/admin/applications/{id}/saml?done=saved")),
            Err(error) => form_refusal(error, "SAML configuration"),
        },
        _ => Ok((
            StatusCode::BAD_REQUEST,
            "The configuration must be one JSON object.".to_string(),
        )),
    };
    match outcome {
        Ok(error) => {
            let typed = Typed {
                json: Some(text),
                metadata: String::new(),
                metadata_url: String::new(),
                signer: String::new(),
                error: Some(error),
                notice: None,
            };
            render(&state, &admin, id, typed).await
        }
        Err(page) => page,
    }
}

/// A PEM certificate as base64 DER (its body); none when nothing was pasted.
fn signer_of(text: &str) -> Result<Option<String>, ServiceError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let body = text
        .find("-----BEGIN CERTIFICATE-----")
        .map(|start| &text[start + 27..])
        .and_then(|rest| {
            rest.split_once("-----END CERTIFICATE-----")
                .map(|(body, _)| body)
        })
        .ok_or_else(|| {
            ServiceError::invalid(
                "signingCertificate",
                "paste a PEM certificate (-----BEGIN CERTIFICATE-----)",
            )
        })?;
    Ok(Some(body.chars().filter(|c| !c.is_whitespace()).collect()))
}

async fn import(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(refusal) => return refusal,
    };
    let metadata = form.get("metadata").unwrap_or("").to_string();
    let metadata_url = form.get("metadataUrl").unwrap_or("").trim().to_string();
    let signer = form.get("signer").unwrap_or("").to_string();
    let result = match signer_of(&signer) {
        Ok(certificate) => {
            // The metadata pasted, else fetched from its URL.
            let mut body = if metadata.trim().is_empty() && !metadata_url.is_empty() {
                json!({ "metadataUrl": metadata_url })
            } else {
                json!({ "metadata": metadata })
            };
            if let Some(certificate) = certificate {
                body["signingCertificate"] = json!(certificate);
            }
            state
                .app
                .saml
                .configure_from_metadata(&admin.ctx, id, body, Some(version))
                .await
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(_) => pages::redirect(&format!("/admin/applications/{id}/saml?done=imported")),
        Err(error) => match form_refusal(error, "SAML configuration") {
            Ok(error) => {
                let typed = Typed {
                    json: None,
                    metadata,
                    metadata_url,
                    signer,
                    error: Some(error),
                    notice: None,
                };
                render(&state, &admin, id, typed).await
            }
            Err(page) => page,
        },
    }
}

/// `GET …/saml/delete`: asks before the configuration goes.
async fn confirm_removal(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> Response {
    let app = match state.app.directory.get_application(&admin.ctx, id).await {
        Ok(app) => app,
        Err(error) => return refused(error),
    };
    let version = match state.app.saml.configuration(&admin.ctx, id).await {
        Ok(Some(current)) => current.version,
        Ok(None) => return pages::redirect(&format!("/admin/applications/{id}/saml")),
        Err(error) => return refused(error),
    };
    super::confirm_page(
        &admin,
        "the SAML configuration of",
        &app.spec.display_name,
        "The application's SAML single sign-on stops: its service provider's requests are refused, its entity id is freed, and its own signing certificates are deleted.",
        &format!("/admin/applications/{id}/saml"),
        version,
    )
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(refusal) => return refusal,
    };
    done(
        state.app.saml.remove(&admin.ctx, id, Some(version)).await,
        &format!("/admin/applications/{id}"),
    )
}

async fn add_certificate(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form: _ }: Posted,
) -> Response {
    done(
        state
            .app
            .saml
            .add_application_certificate(&admin.ctx, id)
            .await,
        &format!("/admin/applications/{id}/saml?done=added#certificates"),
    )
}

async fn activate_certificate(
    State(state): State<AppState>,
    Path((id, thumbprint)): Path<(Uuid, String)>,
    Posted { admin, form: _ }: Posted,
) -> Response {
    done(
        state
            .app
            .saml
            .activate_application_certificate(&admin.ctx, id, &thumbprint)
            .await,
        &format!("/admin/applications/{id}/saml?done=activated#certificates"),
    )
}

async fn remove_certificate(
    State(state): State<AppState>,
    Path((id, thumbprint)): Path<(Uuid, String)>,
    Posted { admin, form }: Posted,
) -> Response {
    // The certificate as the page showed it: one activated since is not removed.
    let version = match form.version() {
        Ok(version) => version,
        Err(refusal) => return refusal,
    };
    done(
        state
            .app
            .saml
            .remove_application_certificate(&admin.ctx, id, &thumbprint, Some(version))
            .await,
        &format!("/admin/applications/{id}/saml?done=removed#certificates"),
    )
}

impl SamlPage<'_> {
    /// How a certificate's state reads.
    fn state_label(&self, certificate: &IdpCertificate) -> &'static str {
        match certificate.state {
            CertificateState::Active => "Signing",
            CertificateState::Next => "Next (published, not signing yet)",
        }
    }
}

//! Devices in the console: the list, a device's page (what Conditional Access reads
//! of it: compliance, management, trust type, certificate binding; its owner),
//! changing its name, whether it is enabled, compliant and managed, and deleting one.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use tessera_directory::model::{Device, DeviceSpec, UserSpec};
use tessera_directory::roles::action;
use uuid::Uuid;

use super::{Admin, ListQuery, Listing, Posted, confirm_delete_of, delete_at, holds, refused};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/devices", get(list))
        .route("/admin/devices/{id}", get(detail).post(save))
        .route(
            "/admin/devices/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

#[derive(Template)]
#[template(path = "console/devices.html")]
struct DevicesPage<'a> {
    admin: &'a Admin,
    listing: Listing<Device>,
    deleted: bool,
}

async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Response {
    match state
        .app
        .directory
        .list::<DeviceSpec>(&admin.ctx, &query.request())
        .await
    {
        Ok(page) => pages::page(
            StatusCode::OK,
            &DevicesPage {
                admin: &admin,
                listing: query.listing(page),
                deleted: query.done.as_deref() == Some("deleted"),
            },
        ),
        Err(error) => refused(error),
    }
}

#[derive(Template)]
#[template(path = "console/device.html")]
struct DevicePage<'a> {
    admin: &'a Admin,
    device: Device,
    trust: String,
    owner: Option<String>,
    may_delete: bool,
    may_edit: bool,
    /// Not compliant, but in a grace period that has not ended.
    grace_active: bool,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn detail(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let notice = (query.done.as_deref() == Some("saved")).then_some("Your changes were saved.");
    device_page(&state, &admin, id, notice, None).await
}

async fn device_page(
    state: &AppState,
    admin: &Admin,
    id: Uuid,
    notice: Option<&'static str>,
    error: Option<(StatusCode, String)>,
) -> Response {
    let directory = &state.app.directory;
    let device = match directory.get::<DeviceSpec>(&admin.ctx, id).await {
        Ok(device) => device,
        Err(error) => return refused(error),
    };
    let owner = match device.spec.owner_id {
        Some(owner) => directory
            .get::<UserSpec>(&admin.ctx, owner)
            .await
            .ok()
            .map(|u| u.spec.user_principal_name),
        None => None,
    };
    let trust = device
        .spec
        .trust_type
        .as_ref()
        .and_then(|t| serde_json::to_value(t).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "none".to_string());
    let (status, error) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let ctx = &admin.ctx;
    pages::page(
        status,
        &DevicePage {
            admin,
            grace_active: !device.spec.is_compliant
                && device
                    .spec
                    .compliant_at(tessera_core::Clock::now(&tessera_core::SystemClock)),
            device,
            trust,
            owner,
            may_delete: holds(ctx, action::DEVICES_DELETE),
            may_edit: [
                action::DEVICES_BASIC_UPDATE,
                action::DEVICES_ENABLE,
                action::DEVICES_DISABLE,
                action::DEVICES_COMPLIANCE_UPDATE,
            ]
            .iter()
            .any(|wanted| holds(ctx, wanted)),
            notice,
            error,
        },
    )
}

/// Saves what the device form changed (only that: each attribute has its own
/// permission, so an unchanged one is not sent), at the version the page was read.
async fn save(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(refusal) => return refusal,
    };
    let directory = &state.app.directory;
    let device = match directory.get::<DeviceSpec>(&admin.ctx, id).await {
        Ok(device) => device,
        Err(error) => return refused(error),
    };
    let mut patch = serde_json::Map::new();
    let name = form.get("displayName").unwrap_or("");
    if name != device.spec.display_name {
        patch.insert("displayName".into(), serde_json::json!(name));
    }
    for (field, now) in [
        ("accountEnabled", device.spec.account_enabled),
        ("isCompliant", device.spec.is_compliant),
        ("isManaged", device.spec.is_managed),
    ] {
        if form.checked(field) != now {
            patch.insert(field.into(), serde_json::json!(!now));
        }
    }
    let at = tessera_service::Versioned::new(id, Some(version));
    match directory
        .update_device(&admin.ctx, at.patch(serde_json::Value::Object(patch)))
        .await
    {
        Ok(_) => pages::redirect(&format!("/admin/devices/{id}?done=saved")),
        Err(error) => match super::form_refusal(error, "device") {
            Ok(refusal) => device_page(&state, &admin, id, None, Some(refusal)).await,
            Err(page) => page,
        },
    }
}

async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> Response {
    let found = state.app.directory.get::<DeviceSpec>(&admin.ctx, id).await;
    confirm_delete_of(
        &admin,
        found,
        "device",
        |device| (&device.spec.display_name, device.version),
        "Sign-ins from it no longer count as from a known device; it leaves every group and unit.",
        &format!("/admin/devices/{id}"),
    )
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let directory = &state.app.directory;
    delete_at(&form, id, "/admin/devices?done=deleted", |at| {
        directory.delete_device(&admin.ctx, at)
    })
    .await
}

//! Devices in the console: the list, a device's page (what Conditional Access reads
//! of it: compliance, management, trust type, certificate binding; its owner), and
//! deleting one.

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
        .route("/admin/devices/{id}", get(detail))
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
}

async fn detail(State(state): State<AppState>, admin: Admin, Path(id): Path<Uuid>) -> Response {
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
    pages::page(
        StatusCode::OK,
        &DevicePage {
            admin: &admin,
            device,
            trust,
            owner,
            may_delete: holds(&admin.ctx, action::DEVICES_DELETE),
        },
    )
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

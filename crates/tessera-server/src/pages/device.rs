//! `/device`: where a user enters the code a device shows (RFC 8628 §3.3), sees
//! which application asks, and approves or denies it. Signed in first: a visitor
//! without a session goes to `/signin` and comes back here with the code kept.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tessera_service::ServiceError;

use super::html::{DeviceApprove, DeviceCode, ResultPage};
use super::input::{DeviceCodeForm, DeviceDecisionForm};
use super::{
    DEVICE_RETURN_COOKIE, Request, current_session, error_page, internal, page, redirect,
    session_form, set_cookie,
};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct DeviceQuery {
    user_code: Option<String>,
}

fn code_page(csrf: &str, code: &str, error: Option<&str>) -> Response {
    page(StatusCode::OK, &DeviceCode { csrf, code, error })
}

pub async fn device_page(
    State(state): State<AppState>,
    req: Request,
    Query(query): Query<DeviceQuery>,
) -> Response {
    let code = query
        .user_code
        .as_deref()
        .and_then(tessera_oauth::device::normalize)
        .unwrap_or_default();
    match current_session(&state, &req).await {
        Ok(session) => {
            let mut response = code_page(&session.csrf, &code, None);
            set_cookie(&mut response, DEVICE_RETURN_COOKIE, "", Some(0));
            response
        }
        Err(_) => {
            // Sign in first, then come back with the code.
            let mut response = redirect("/signin");
            let value = if code.is_empty() {
                "-".to_string()
            } else {
                code
            };
            set_cookie(&mut response, DEVICE_RETURN_COOKIE, &value, Some(15 * 60));
            response
        }
    }
}

pub async fn device_code(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (form, session) = match session_form::<DeviceCodeForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match state
        .app
        .oidc
        .device_request(&session, &form.user_code)
        .await
    {
        Ok(Some(view)) => page(
            StatusCode::OK,
            &DeviceApprove {
                csrf: &session.csrf,
                app: &view.client_name,
                user: &session.user_principal_name,
                scopes: &view.scopes,
                user_code: &view.user_code,
                steps_up: view.steps_up,
            },
        ),
        Ok(None) => code_page(
            &session.csrf,
            &form.user_code,
            Some("That code is not valid or has expired. Check the code on your device."),
        ),
        Err(ServiceError::Conflict { message }) => code_page(&session.csrf, "", Some(&message)),
        Err(error) => internal(error),
    }
}

pub async fn device_confirm(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (form, session) = match session_form::<DeviceDecisionForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return error_page(StatusCode::BAD_REQUEST, "The form was not understood."),
    };
    match state
        .app
        .oidc
        .device_decide(&session, &form.user_code, approve, &req.ctx.correlation_id)
        .await
    {
        Ok(true) if approve => message_page("Your device is signed in. You can close this window."),
        Ok(true) => message_page("The request was denied. Your device is not signed in."),
        Ok(false) => code_page(
            &session.csrf,
            "",
            Some("That code is no longer valid. Start again on your device."),
        ),
        Err(ServiceError::Conflict { message }) => message_page(&message),
        // The device asked for a stronger sign-in (a step-up after an RFC 9470
        // challenge): through it, then back to this code.
        Err(ServiceError::InsufficientAuthentication { acr_values, .. }) => {
            let Some(code) = tessera_oauth::device::normalize(&form.user_code) else {
                return code_page(&session.csrf, "", None);
            };
            let wanted = acr_values.split(' ').next().unwrap_or_default();
            super::step_up_to(
                &state,
                &req,
                &session,
                wanted,
                (DEVICE_RETURN_COOKIE, &code),
            )
            .await
        }
        Err(error) => internal(error),
    }
}

fn message_page(message: &str) -> Response {
    page(
        StatusCode::OK,
        &ResultPage {
            csrf: "",
            title: "Sign in a device",
            message,
        },
    )
}

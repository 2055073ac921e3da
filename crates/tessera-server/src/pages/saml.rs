//! SAML 2.0 in the browser: the IdP metadata (`GET /saml2/metadata`), the SSO
//! endpoint for both bindings (`GET|POST /saml2/sso`), the return from sign-in
//! (`GET /saml2/sso/continue`), the interruption answers, and IdP-initiated
//! sign-on (`GET /saml2/apps/{appId}/sso`, from My Apps), and Single Logout
//! (`GET|POST /saml2/slo`, `GET /saml2/slo/continue`). Answers are the
//! auto-submitting form that posts the Response to the application, the sign-in
//! page, an interruption page, or an error page when nothing may go to the
//! application.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tessera_core::AppId;
use tessera_service::authn::SessionInfo;
use tessera_service::saml::{SamlMessage, SloAnswer, SloOutcome, SsoContext, SsoOutcome};
use tessera_service::sign_in::interruptions::InterruptionAnswer;

use super::oauth::{
    PasswordAnswer, TermsAnswer, consent_binding, form_post, form_post_with, no_store, session,
    sign_in_first, waiting_under,
};
use super::{
    Request, SAML_COOKIE, SESSION_COOKIE, cookie, error_page, html, navigate, page, set_cookie,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/saml2/metadata", get(metadata))
        .route("/saml2/sso", get(sso_get).post(sso_post))
        .route("/saml2/sso/continue", get(sso_continue))
        .route("/saml2/sso/terms", post(sso_terms))
        .route("/saml2/sso/password", post(sso_password))
        .route("/saml2/slo", get(slo_get).post(slo_post))
        .route("/saml2/slo/continue", get(slo_continue))
        .route("/saml2/apps/{app_id}/sso", get(idp_initiated))
        .route("/saml2/apps/{app_id}/metadata", get(application_metadata))
}

pub(super) fn context(req: &Request) -> SsoContext {
    SsoContext {
        tenant: req.ctx.tenant,
        correlation_id: req.ctx.correlation_id.clone(),
        client_address: req.ctx.client_address.clone(),
        user_agent: req.ctx.user_agent.clone(),
        device_thumbprint: req.device_thumbprint(),
    }
}

/// `GET /saml2/metadata`: the tenant's IdP metadata, signed.
async fn metadata(State(state): State<AppState>, req: Request) -> Response {
    match state.app.saml.metadata(req.ctx.tenant).await {
        Ok(xml) => metadata_response(xml),
        Err(error) => super::internal(error),
    }
}

/// `GET /saml2/apps/{appId}/metadata`: the IdP metadata as this application's
/// configuration sees it (whether it wants requests signed).
async fn application_metadata(
    State(state): State<AppState>,
    req: Request,
    Path(app_id): Path<String>,
) -> Response {
    let Ok(app_id) = app_id.parse::<AppId>() else {
        return error_page(StatusCode::NOT_FOUND, "There is no such application.");
    };
    match state
        .app
        .saml
        .application_metadata(req.ctx.tenant, app_id)
        .await
    {
        Ok(Some(xml)) => metadata_response(xml),
        Ok(None) => error_page(StatusCode::NOT_FOUND, "This application does not use SAML."),
        Err(error) => super::internal(error),
    }
}

fn metadata_response(xml: String) -> Response {
    let mut response = (StatusCode::OK, xml).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/samlmetadata+xml"),
    );
    // Service providers and caches may keep it a few minutes: a next
    // certificate is published well before it signs.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

async fn sso_get(
    State(state): State<AppState>,
    req: Request,
    RawQuery(query): RawQuery,
) -> Response {
    receive(&state, &req, Endpoint::Sso, query, None).await
}

/// The POST binding. A service provider on another site posts here: the browser
/// sends no Lax session cookie with that POST, so a request that would need a
/// sign-in first goes once through `/saml2/sso/continue`, a same-site GET that
/// brings the session if there is one.
async fn sso_post(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    receive(&state, &req, Endpoint::Sso, None, Some(body)).await
}

/// The endpoints that take messages from service providers.
#[derive(Clone, Copy)]
enum Endpoint {
    Sso,
    Slo,
}

/// A message at an endpoint: the redirect binding's query, or the POST binding's
/// form (`body`), which holds one `SAMLRequest` or one `SAMLResponse`.
async fn receive(
    state: &AppState,
    req: &Request,
    endpoint: Endpoint,
    query: Option<String>,
    body: Option<Bytes>,
) -> Response {
    #[derive(serde::Deserialize)]
    struct Posted {
        #[serde(rename = "SAMLRequest")]
        request: Option<String>,
        #[serde(rename = "SAMLResponse")]
        response: Option<String>,
        #[serde(rename = "RelayState")]
        relay_state: Option<String>,
    }
    let query = query.unwrap_or_default();
    let form;
    let message = match &body {
        None => SamlMessage::Redirect(&query),
        Some(body) => {
            let Some(posted) = super::form::<Posted>(&req.headers, body) else {
                return error_page(StatusCode::BAD_REQUEST, "The SAML message cannot be read.");
            };
            form = posted;
            let (message, response) = match (&form.request, &form.response) {
                (Some(request), None) => (request, false),
                (None, Some(response)) => (response, true),
                _ => {
                    return error_page(
                        StatusCode::BAD_REQUEST,
                        "The form must hold one SAMLRequest or one SAMLResponse.",
                    );
                }
            };
            SamlMessage::Post {
                message,
                response,
                relay_state: form.relay_state.as_deref(),
            }
        }
    };
    let session = session(state, req).await;
    let ctx = context(req);
    match endpoint {
        Endpoint::Sso => {
            let outcome = state.app.saml.sso(&ctx, message, session.as_ref()).await;
            answer(state, req, outcome, Cookie::Fresh).await
        }
        // After a cross-site POST, the posting page's CSP would hold a redirect
        // to another application: the browser goes on by a fresh navigation.
        Endpoint::Slo => slo_answer(
            state.app.saml.slo(&ctx, message, session.as_ref()).await,
            body.is_some(),
        ),
    }
}

async fn sso_continue(State(state): State<AppState>, req: Request) -> Response {
    let Some(pending) = cookie(&req.headers, SAML_COOKIE) else {
        return super::redirect("/security-info");
    };
    let session = session(&state, &req).await;
    let outcome = state
        .app
        .saml
        .sso_continue(&context(&req), &pending, session.as_ref())
        .await;
    answer(&state, &req, outcome, Cookie::Continued).await
}

/// `GET /saml2/apps/{appId}/sso`: sign-on started at Tessera (My Apps).
async fn idp_initiated(
    State(state): State<AppState>,
    req: Request,
    Path(app_id): Path<String>,
) -> Response {
    let Ok(app_id) = app_id.parse::<AppId>() else {
        return error_page(StatusCode::NOT_FOUND, "There is no such application.");
    };
    let session = session(&state, &req).await;
    let outcome = state
        .app
        .saml
        .idp_initiated(&context(&req), app_id, session.as_ref())
        .await;
    answer(&state, &req, outcome, Cookie::Fresh).await
}

async fn sso_terms(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (form, session) = match super::session_form::<TermsAnswer>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    interruption(
        &state,
        &req,
        &session,
        &form.request,
        InterruptionAnswer::AcceptTerms,
    )
    .await
}

async fn sso_password(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (form, session) = match super::session_form::<PasswordAnswer>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    interruption(&state, &req, &session, &form.request, form.answer()).await
}

async fn interruption(
    state: &AppState,
    req: &Request,
    session: &SessionInfo,
    binding: &str,
    given: InterruptionAnswer,
) -> Response {
    let Some(pending) = cookie(&req.headers, SAML_COOKIE) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in took too long: go back to the application and start again.",
        );
    };
    if !tessera_core::crypto::constant_time_eq(
        consent_binding(&pending).as_bytes(),
        binding.as_bytes(),
    ) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Another sign-in started in this browser: go back to the application and start again.",
        );
    }
    let outcome = state
        .app
        .saml
        .sso_interruption(&context(req), &pending, session, given)
        .await;
    answer(state, req, outcome, Cookie::Continued).await
}

/// Whose waiting request the SAML cookie holds when an answer is given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cookie {
    /// A new request: the cookie, if any, is another tab's request, left alone.
    Fresh,
    /// The cookie's own request: cleared once it no longer waits.
    Continued,
}

/// The page or redirect for an outcome; the waiting request's cookie is set
/// while the request waits and cleared once the request it named is answered.
async fn answer(state: &AppState, req: &Request, outcome: SsoOutcome, cookie: Cookie) -> Response {
    let waiting = matches!(
        outcome,
        SsoOutcome::SignIn { .. }
            | SsoOutcome::AcceptTerms { .. }
            | SsoOutcome::ChangePassword { .. }
            | SsoOutcome::PasswordRefused { .. }
    );
    let mut response = match outcome {
        SsoOutcome::Refused(message) => error_page(
            StatusCode::BAD_REQUEST,
            &format!("The application's sign-in request cannot be used: {message}."),
        ),
        SsoOutcome::Respond(post) => {
            let mut params: Vec<(&'static str, String)> = vec![("SAMLResponse", post.response)];
            if let Some(relay) = post.relay_state {
                params.push(("RelayState", relay));
            }
            form_post(&post.url, &params)
        }
        SsoOutcome::SignIn { pending, step_up } => {
            return sign_in_first(state, req, SAML_COOKIE, &pending, step_up).await;
        }
        SsoOutcome::Recheck { pending } => {
            let mut response = super::redirect("/saml2/sso/continue");
            set_cookie(&mut response, SAML_COOKIE, pending.expose(), Some(15 * 60));
            return response;
        }
        SsoOutcome::Blocked {
            app_name,
            reason,
            correlation_id,
        } => {
            let mut response = page(
                StatusCode::FORBIDDEN,
                &html::Blocked {
                    csrf: "",
                    app: &app_name,
                    reason: &reason,
                    correlation_id: &correlation_id,
                },
            );
            no_store(&mut response);
            response
        }
        SsoOutcome::AcceptTerms {
            pending,
            app_name,
            terms,
            csrf,
        } => {
            let request = consent_binding(pending.expose());
            let body = html::Terms {
                action: "/saml2/sso/terms",
                csrf: &csrf,
                app: &app_name,
                terms: &terms,
                request: &request,
            };
            return waiting_under(page(StatusCode::OK, &body), SAML_COOKIE, &pending);
        }
        SsoOutcome::ChangePassword {
            pending,
            app_name,
            csrf,
        } => {
            let request = consent_binding(pending.expose());
            let body = html::ChangePassword {
                action: "/saml2/sso/password",
                csrf: &csrf,
                app: &app_name,
                request: &request,
            };
            return waiting_under(page(StatusCode::OK, &body), SAML_COOKIE, &pending);
        }
        SsoOutcome::PasswordRefused { message } => error_page(
            StatusCode::BAD_REQUEST,
            &format!("The password was not changed: {message}. Go back and try again."),
        ),
    };
    if !waiting && cookie == Cookie::Continued {
        set_cookie(&mut response, SAML_COOKIE, "", Some(0));
    }
    response
}

/// `GET /saml2/slo`: a LogoutRequest or LogoutResponse over the redirect binding.
async fn slo_get(
    State(state): State<AppState>,
    req: Request,
    RawQuery(query): RawQuery,
) -> Response {
    receive(&state, &req, Endpoint::Slo, query, None).await
}

/// `POST /saml2/slo`: the POST binding. A LogoutRequest posted cross-site comes
/// without the Lax session cookie: it goes once through `/saml2/slo/continue`.
async fn slo_post(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    receive(&state, &req, Endpoint::Slo, None, Some(body)).await
}

async fn slo_continue(
    State(state): State<AppState>,
    req: Request,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let run = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "run")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let session = session(&state, &req).await;
    let answer = state
        .app
        .saml
        .slo_continue(&context(&req), &run, session.as_ref())
        .await;
    slo_answer(answer, false)
}

/// The page or redirect for a step of single logout. `after_form`: the request
/// was one of Tessera's own forms, whose CSP (`form-action 'self'`) would stop a
/// redirect to an application, so the browser goes on by a fresh navigation.
pub(super) fn slo_answer(answer: SloAnswer, after_form: bool) -> Response {
    let mut response = match answer.outcome {
        SloOutcome::Refused(message) => error_page(
            StatusCode::BAD_REQUEST,
            &format!("The sign-out cannot go on: {message}."),
        ),
        SloOutcome::Redirect(url) if after_form => navigate(&url),
        SloOutcome::Redirect(url) => super::redirect(&url),
        // The application may answer with a redirect back here.
        SloOutcome::Post { url, fields } => form_post_with(&url, &fields, " 'self'"),
        SloOutcome::Recheck { run } => {
            let run: String = form_urlencoded::byte_serialize(run.expose().as_bytes()).collect();
            super::redirect(&format!("/saml2/slo/continue?run={run}"))
        }
        SloOutcome::SignedOut => page(
            StatusCode::OK,
            &html::ResultPage {
                csrf: "",
                title: "Signed out",
                message: "You are signed out of Tessera.",
            },
        ),
    };
    if answer.session_ended {
        set_cookie(&mut response, SESSION_COOKIE, "", Some(0));
    }
    no_store(&mut response);
    response
}

//! Server-rendered pages: sign-in and security info. No external assets, one small
//! script for passkeys, strict headers (CSP without inline script or style, no
//! framing), `__Host-` cookies (Secure, HttpOnly, SameSite=Strict, Path=/), and an
//! anti-forgery token on every state-changing request (form field or header,
//! compared in constant time with the one stored server-side).

mod device;
pub(crate) mod html;
pub mod input;
mod my_roles;
mod myaccount;
mod oauth;
mod saml;

use input::{CsrfForm, NameForm, PasswordForm, SecretForm, TotpForm, WithCsrf};

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tessera_authn::strength::Mode;
use tessera_core::SecretString;
use tessera_core::crypto::constant_time_eq;
use tessera_service::ServiceError;
use tessera_service::authn::{FlowView, SessionInfo, SignInContext, SignInOutcome};
use uuid::Uuid;

use crate::extract::CorrelationId;
use crate::state::AppState;

pub const FLOW_COOKIE: &str = "__Host-tessera-signin";
pub const SESSION_COOKIE: &str = "__Host-tessera-session";
/// The authorization request waiting for this browser's sign-in.
pub const AUTHORIZE_COOKIE: &str = "__Host-tessera-authorize";
/// The SAML request waiting for this browser's sign-in.
pub const SAML_COOKIE: &str = "__Host-tessera-saml";
/// The device code page waiting for this browser's sign-in (the user code, or `-`).
pub const DEVICE_RETURN_COOKIE: &str = "__Host-tessera-device";
/// Where a step-up sign-in the console asked for goes back to (a console path).
pub const CONSOLE_RETURN_COOKIE: &str = "__Host-tessera-console-back";
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(sign_in_page))
        .route("/signin/name", post(sign_in_name))
        .route("/signin/password", post(sign_in_password))
        .route("/signin/pass", post(sign_in_pass))
        .route("/signin/code", post(sign_in_code))
        .route("/signin/restart", post(sign_in_restart))
        .route("/signin/certificate", post(sign_in_certificate))
        .route("/signin/passkey/options", post(passkey_options))
        .route("/signin/passkey", post(passkey_finish))
        .route("/signout", post(sign_out))
        .route("/security-info", get(security_info))
        .route("/security-info/totp", post(totp_begin))
        .route("/security-info/totp/confirm", post(totp_confirm))
        .route("/security-info/passkey/options", post(register_options))
        .route("/security-info/passkey", post(register_finish))
        .route("/security-info/password", post(change_password))
        .route("/security-info/methods/{id}/delete", post(remove_method))
        .route(
            "/security-info/sign-out-everywhere",
            post(sign_out_everywhere),
        )
        .route(
            "/security-info/sessions/{handle}/sign-out",
            post(sign_out_one),
        )
        .route(
            "/oauth2/authorize",
            get(oauth::authorize_get).post(oauth::authorize_post),
        )
        .route("/oauth2/authorize/continue", get(oauth::authorize_continue))
        .route("/oauth2/authorize/consent", post(oauth::authorize_consent))
        .route("/oauth2/authorize/terms", post(oauth::authorize_terms))
        .route(
            "/oauth2/authorize/password",
            post(oauth::authorize_password),
        )
        .route(
            "/device",
            get(device::device_page).post(device::device_code),
        )
        .route("/device/confirm", post(device::device_confirm))
        .route("/oauth2/logout", get(oauth::logout).post(oauth::logout))
        .route("/oauth2/logout/confirm", post(oauth::logout_confirm))
        .route("/assets/tessera.js", get(script))
        .route("/assets/tessera.css", get(stylesheet))
        .merge(myaccount::router())
        .merge(my_roles::router())
        .route("/admin/step-up", get(console_step_up_page))
        .merge(saml::router())
}

/// The request facts a sign-in needs.
struct Request {
    ctx: SignInContext,
    headers: HeaderMap,
    /// The client certificate chain, from this connection's TLS handshake or from a
    /// trusted reverse proxy's header.
    client_chain: Vec<Vec<u8>>,
}

impl Request {
    /// SHA-256 (hex) of the client certificate, which may name a registered device.
    fn device_thumbprint(&self) -> Option<String> {
        self.client_chain
            .first()
            .map(|leaf| tessera_core::crypto::sha256_hex(leaf))
    }
}

/// The certificate chain a trusted proxy passed on (URL-encoded PEM), if the request
/// comes from one.
fn proxy_chain(state: &AppState, parts: &axum::http::request::Parts) -> Vec<Vec<u8>> {
    let Some(proxy) = &state.certificate_proxy else {
        return Vec::new();
    };
    let from_proxy = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|a| proxy.trusted_proxies.contains(&a.0.ip()));
    if !from_proxy {
        return Vec::new();
    }
    let Some(value) = parts
        .headers
        .get(proxy.header.as_str())
        .and_then(|v| v.to_str().ok())
    else {
        return Vec::new();
    };
    input::proxy_certificates(value)
}

/// The client certificate chain of a request (leaf first): from this connection's
/// TLS handshake, or from a trusted reverse proxy's header; empty when none.
pub struct ClientChain(pub Vec<Vec<u8>>);

impl ClientChain {
    pub fn of(state: &AppState, parts: &axum::http::request::Parts) -> ClientChain {
        let from_tls = parts
            .extensions
            .get::<crate::tls::PeerCertificates>()
            .map(|p| p.0.clone())
            .unwrap_or_default();
        if from_tls.is_empty() {
            ClientChain(proxy_chain(state, parts))
        } else {
            ClientChain(from_tls)
        }
    }
}

impl axum::extract::FromRequestParts<AppState> for ClientChain {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientChain::of(state, parts))
    }
}

impl axum::extract::FromRequestParts<AppState> for Request {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        let tenant = match state.app.directory.default_tenant().await {
            Ok(Some(tenant)) => tenant,
            Ok(None) => {
                return Err(error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Tessera is not set up yet.",
                ));
            }
            Err(_) => {
                return Err(error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database does not answer.",
                ));
            }
        };
        let headers = parts.headers.clone();
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let client_chain = ClientChain::of(state, parts).0;
        Ok(Request {
            client_chain,
            ctx: SignInContext {
                tenant,
                correlation_id: parts
                    .extensions
                    .get::<CorrelationId>()
                    .map(|c| c.0.clone())
                    .unwrap_or_default(),
                client_address: crate::extract::client_address(state, parts),
                user_agent,
                previous_session: cookie(&headers, SESSION_COOKIE),
            },
            headers,
        })
    }
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    input::cookie(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        name,
    )
}

fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: Option<i64>) {
    // The session and the waiting authorization request must arrive with the
    // top-level navigation an application starts (single sign-on), so they are Lax;
    // every state-changing form still carries its anti-forgery token.
    let same_site = if name == SESSION_COOKIE || name == AUTHORIZE_COOKIE || name == SAML_COOKIE {
        "Lax"
    } else {
        "Strict"
    };
    let age = match max_age {
        Some(seconds) => format!("; Max-Age={seconds}"),
        None => String::new(),
    };
    let text = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite={same_site}{age}");
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// A page rendered from its template, with the pages' headers.
pub(crate) fn page(status: StatusCode, template: &impl askama::Template) -> Response {
    let body = match template.render() {
        Ok(body) => body,
        Err(error) => {
            // Only a failing `Display` of a value gets here.
            tracing::error!(%error, "a page did not render");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    html(status, axum::body::Body::from(body))
}

/// An HTML answer (a rendered page, or one streamed as it is made) with the pages'
/// content security policy.
pub(crate) fn html(status: StatusCode, body: axum::body::Body) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    page(status, &html::ErrorPage { csrf: "", message })
}

pub(crate) fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Goes on to `to` with a fresh navigation (a page that refreshes to it) instead
/// of a redirect: after one of Tessera's own forms, a redirect that ends at an
/// application (another origin) would be refused by the pages' CSP
/// `form-action 'self'`, which covers the redirects of a form submission.
pub(crate) fn navigate(to: &str) -> Response {
    let mut response = page(StatusCode::OK, &html::Navigate { to });
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn internal(error: ServiceError) -> Response {
    tracing::error!(%error, "a page failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong. Please try again.",
    )
}

/// Parses a url-encoded form, refusing oversized or non-form bodies.
pub(crate) fn form<T: for<'de> Deserialize<'de>>(headers: &HeaderMap, body: &Bytes) -> Option<T> {
    input::form(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        body,
    )
}

pub(crate) fn csrf_ok(expected: &str, sent: Option<&str>) -> bool {
    sent.is_some_and(|sent| {
        !expected.is_empty() && constant_time_eq(expected.as_bytes(), sent.as_bytes())
    })
}

fn header_csrf(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

// ----------------------------------------------------------------------------------
// Sign-in

fn render_flow(view: &FlowView) -> Response {
    page(StatusCode::OK, &html::SignIn::new(view))
}

/// Starts a new flow and renders its first page.
async fn fresh_flow(state: &AppState, req: &Request, notice: Option<&str>) -> Response {
    match state.app.sign_in.start(&req.ctx).await {
        Ok((secret, mut view)) => {
            if let Some(notice) = notice {
                view.error = Some(if notice == "expired" {
                    "Your sign-in took too long. Please start again."
                } else {
                    "You are signed out."
                });
            }
            let mut response = render_flow(&view);
            set_cookie(&mut response, FLOW_COOKIE, secret.expose(), Some(15 * 60));
            response
        }
        Err(error) => internal(error),
    }
}

async fn sign_in_page(State(state): State<AppState>, req: Request) -> Response {
    if let Some(secret) = cookie(&req.headers, FLOW_COOKIE) {
        match state.app.sign_in.view(&req.ctx, &secret).await {
            Ok(Some(view)) => return render_flow(&view),
            Ok(None) => {}
            Err(error) => return internal(error),
        }
    }
    fresh_flow(&state, &req, None).await
}

/// A sign-in form: parsed, its token checked against the flow's; the flow secret.
async fn flow_form<T: for<'de> Deserialize<'de> + WithCsrf>(
    state: &AppState,
    req: &Request,
    body: &Bytes,
) -> Result<(T, String), Response> {
    let Some(form) = form::<T>(&req.headers, body) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "The form was not understood.",
        ));
    };
    let secret = with_flow(state, req, Some(form.csrf())).await?;
    Ok((form, secret))
}

/// A signed-in form: parsed, its token checked against the session's.
async fn session_form<T: for<'de> Deserialize<'de> + WithCsrf>(
    state: &AppState,
    req: &Request,
    body: &Bytes,
) -> Result<(T, SessionInfo), Response> {
    let Some(form) = form::<T>(&req.headers, body) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "The form was not understood.",
        ));
    };
    let session = signed_in_post(state, req, Some(form.csrf())).await?;
    Ok((form, session))
}

/// Loads the flow, checks the anti-forgery token, and hands the flow secret on.
async fn with_flow(
    state: &AppState,
    req: &Request,
    sent_csrf: Option<&str>,
) -> Result<String, Response> {
    let Some(secret) = cookie(&req.headers, FLOW_COOKIE) else {
        return Err(fresh_flow(state, req, Some("expired")).await);
    };
    match state.app.sign_in.view(&req.ctx, &secret).await {
        Ok(Some(view)) if csrf_ok(&view.csrf, sent_csrf) => Ok(secret),
        Ok(Some(_)) => Err(error_page(
            StatusCode::FORBIDDEN,
            "The form expired. Go back and try again.",
        )),
        Ok(None) => Err(fresh_flow(state, req, Some("expired")).await),
        Err(error) => Err(internal(error)),
    }
}

/// Where a finished sign-in goes: back to the application or device that asked,
/// if one did.
fn after_sign_in(headers: &HeaderMap) -> String {
    if cookie(headers, AUTHORIZE_COOKIE).is_some() {
        return "/oauth2/authorize/continue".to_string();
    }
    if cookie(headers, SAML_COOKIE).is_some() {
        return "/saml2/sso/continue".to_string();
    }
    if let Some(page) = cookie(headers, my_roles::MY_ROLES_RETURN_COOKIE) {
        return if page == "approvals" {
            "/myaccount/approvals?done=stepped-up".to_string()
        } else {
            "/myaccount/roles?done=stepped-up".to_string()
        };
    }
    if let Some(back) = cookie(headers, CONSOLE_RETURN_COOKIE) {
        // The console signs in again from the stronger session, then goes back.
        return format!("/admin/reauthorize?back={back}");
    }
    match cookie(headers, DEVICE_RETURN_COOKIE) {
        Some(code) => match tessera_oauth::device::normalize(&code) {
            Some(code) => format!("/device?user_code={code}"),
            None => "/device".to_string(),
        },
        None => "/security-info".to_string(),
    }
}

fn outcome(req: &Request, result: Result<Option<SignInOutcome>, ServiceError>) -> Response {
    match result {
        Ok(Some(SignInOutcome::Continue(view))) => render_flow(&view),
        Ok(Some(SignInOutcome::SignedIn { session })) => {
            let next = after_sign_in(&req.headers);
            let go = if next.starts_with("/oauth2/") {
                navigate(&next)
            } else {
                redirect(&next)
            };
            signed_in(session, go)
        }
        Ok(None) => redirect("/signin"),
        Err(error) => internal(error),
    }
}

fn signed_in(session: SecretString, mut response: Response) -> Response {
    set_cookie(&mut response, FLOW_COOKIE, "", Some(0));
    set_cookie(&mut response, my_roles::MY_ROLES_RETURN_COOKIE, "", Some(0));
    set_cookie(&mut response, CONSOLE_RETURN_COOKIE, "", Some(0));
    set_cookie(&mut response, SESSION_COOKIE, session.expose(), None);
    response
}

async fn sign_in_name(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (form, secret) = match flow_form::<NameForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match state
        .app
        .sign_in
        .identify(&req.ctx, &secret, &form.username)
        .await
    {
        Ok(Some(view)) => render_flow(&view),
        Ok(None) => redirect("/signin"),
        Err(error) => internal(error),
    }
}

async fn sign_in_password(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (form, secret) = match flow_form::<SecretForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    outcome(
        &req,
        state
            .app
            .sign_in
            .submit_password(&req.ctx, &secret, SecretString::new(form.secret))
            .await,
    )
}

async fn sign_in_pass(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (form, secret) = match flow_form::<SecretForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    outcome(
        &req,
        state
            .app
            .sign_in
            .submit_pass(&req.ctx, &secret, SecretString::new(form.secret))
            .await,
    )
}

async fn sign_in_code(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (form, secret) = match flow_form::<SecretForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    outcome(
        &req,
        state
            .app
            .sign_in
            .submit_code(&req.ctx, &secret, &form.secret)
            .await,
    )
}

async fn sign_in_certificate(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (_, secret) = match flow_form::<CsrfForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    outcome(
        &req,
        state
            .app
            .sign_in
            .submit_certificate(&req.ctx, &secret, req.client_chain.clone())
            .await,
    )
}

async fn sign_in_restart(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (_, secret) = match flow_form::<CsrfForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match state.app.sign_in.restart(&req.ctx, &secret).await {
        Ok(()) => redirect("/signin"),
        Err(error) => internal(error),
    }
}

fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn json_problem(status: StatusCode, detail: &str) -> Response {
    json_response(
        status,
        json!({ "status": status.as_u16(), "detail": detail }),
    )
}

async fn passkey_options(State(state): State<AppState>, req: Request) -> Response {
    let secret = match with_flow(&state, &req, header_csrf(&req.headers)).await {
        Ok(secret) => secret,
        Err(_) => {
            return json_problem(
                StatusCode::FORBIDDEN,
                "the sign-in expired; reload the page",
            );
        }
    };
    match state.app.sign_in.passkey_options(&req.ctx, &secret).await {
        Ok(Some(options)) => json_response(StatusCode::OK, options),
        Ok(None) => json_problem(
            StatusCode::FORBIDDEN,
            "the sign-in expired; reload the page",
        ),
        Err(ServiceError::Unavailable(message)) => {
            json_problem(StatusCode::SERVICE_UNAVAILABLE, &message)
        }
        Err(error) => {
            tracing::error!(%error, "passkey options failed");
            json_problem(StatusCode::INTERNAL_SERVER_ERROR, "passkey sign-in failed")
        }
    }
}

async fn passkey_finish(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let secret = match with_flow(&state, &req, header_csrf(&req.headers)).await {
        Ok(secret) => secret,
        Err(_) => {
            return json_problem(
                StatusCode::FORBIDDEN,
                "the sign-in expired; reload the page",
            );
        }
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return json_problem(StatusCode::BAD_REQUEST, "the response is not UTF-8");
    };
    match state
        .app
        .sign_in
        .submit_passkey(&req.ctx, &secret, text)
        .await
    {
        Ok(Some(SignInOutcome::SignedIn { session })) => signed_in(
            session,
            json_response(
                StatusCode::OK,
                json!({ "redirect": after_sign_in(&req.headers) }),
            ),
        ),
        Ok(Some(SignInOutcome::Continue(view))) => json_response(
            StatusCode::OK,
            json!({ "error": view.error.unwrap_or("That did not work.") }),
        ),
        Ok(None) => json_problem(
            StatusCode::FORBIDDEN,
            "the sign-in expired; reload the page",
        ),
        Err(error) => {
            tracing::error!(%error, "passkey sign-in failed");
            json_problem(StatusCode::INTERNAL_SERVER_ERROR, "passkey sign-in failed")
        }
    }
}

// ----------------------------------------------------------------------------------
// Signed in

/// The console's step-up: the browser session signs in again until it reaches
/// what `acr` (an authentication context, or one of Tessera's `acr` values) asks,
/// then the console signs in from it and goes back to `back` (a console path the
/// caller checked).
#[derive(Deserialize)]
struct ConsoleStepUpQuery {
    acr: String,
    back: Option<String>,
}

/// `/admin/step-up?acr=c1&back=/admin/...` (see `console_step_up`).
async fn console_step_up_page(
    State(state): State<AppState>,
    req: Request,
    Query(query): Query<ConsoleStepUpQuery>,
) -> Response {
    // Started from Tessera's own pages (or typed): a link from another site gets
    // a page with the button instead, so it cannot restart someone's sign-in.
    let fetch_site = req
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    let acr_ok = !query.acr.is_empty()
        && query.acr.len() <= 64
        && query
            .acr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'));
    if !acr_ok {
        return error_page(StatusCode::BAD_REQUEST, "This step-up link is not valid.");
    }
    let back = query
        .back
        .filter(|b| crate::console::is_console_path(b))
        .unwrap_or_else(|| "/admin".to_string());
    if !matches!(fetch_site, "same-origin" | "none") {
        return crate::console::step_up_page(
            &query.acr,
            "This action needs a stronger sign-in.",
            &back,
        );
    }
    console_step_up(&state, &req, &query.acr, &back).await
}

async fn console_step_up(state: &AppState, req: &Request, acr: &str, back: &str) -> Response {
    let Some(secret) = cookie(&req.headers, SESSION_COOKIE) else {
        return redirect("/signin");
    };
    let session = match state.app.sign_in.session_used(&req.ctx, &secret).await {
        Ok(Some(session)) => session,
        Ok(None) => return redirect("/signin"),
        Err(error) => return internal(error),
    };
    // Percent-encoded: a path may hold what a cookie value may not.
    let back: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    step_up_to(state, req, &session, acr, (CONSOLE_RETURN_COOKIE, &back)).await
}

/// Sends a signed-in user through a step-up sign-in to what `acr` asks (an
/// authentication context, or one of Tessera's `acr` values), with `back` (a
/// cookie and its value) saying where the finished sign-in goes.
async fn step_up_to(
    state: &AppState,
    req: &Request,
    session: &SessionInfo,
    acr: &str,
    back: (&str, &str),
) -> Response {
    let strengths = match state
        .app
        .sign_in
        .strengths_for_acr(session.tenant, acr)
        .await
    {
        Ok(Some(strengths)) => strengths,
        Ok(None) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "This asks for an authentication context the tenant does not have.",
            );
        }
        Err(error) => return internal(error),
    };
    let flow = match state
        .app
        .sign_in
        .start_step_up(
            &req.ctx,
            session.user_id,
            &session.user_principal_name,
            strengths,
        )
        .await
    {
        Ok(flow) => flow,
        Err(error) => return internal(error),
    };
    let mut response = redirect("/signin");
    set_cookie(&mut response, FLOW_COOKIE, flow.expose(), Some(15 * 60));
    // The finished step-up goes where this one says, and nowhere an earlier
    // request (an application's, a device's, another step-up) left waiting.
    for other in [
        AUTHORIZE_COOKIE,
        SAML_COOKIE,
        DEVICE_RETURN_COOKIE,
        CONSOLE_RETURN_COOKIE,
        my_roles::MY_ROLES_RETURN_COOKIE,
    ] {
        if other != back.0 {
            set_cookie(&mut response, other, "", Some(0));
        }
    }
    set_cookie(&mut response, back.0, back.1, Some(15 * 60));
    response
}

async fn current_session(state: &AppState, req: &Request) -> Result<SessionInfo, Response> {
    let Some(secret) = cookie(&req.headers, SESSION_COOKIE) else {
        return Err(redirect("/signin"));
    };
    match state.app.sign_in.session_used(&req.ctx, &secret).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(redirect("/signin")),
        Err(error) => Err(internal(error)),
    }
}

async fn home() -> Response {
    redirect("/security-info")
}

#[derive(Deserialize)]
struct InfoQuery {
    added: Option<String>,
}

async fn security_info(
    State(state): State<AppState>,
    req: Request,
    Query(query): Query<InfoQuery>,
) -> Response {
    let session = match current_session(&state, &req).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    // Security defaults ask users without a second factor to register one.
    let asked = query.added.is_none()
        && state
            .app
            .access
            .mfa_registration_requested(session.tenant, session.user_id)
            .await
            .unwrap_or(false);
    let notice = if asked {
        Some(
            "Your organization asks you to add a second way to sign in: a passkey or an authenticator app.",
        )
    } else {
        query.added.as_deref().map(|_| "Saved.")
    };
    render_info(&state, &session, notice, None).await
}

async fn render_info(
    state: &AppState,
    session: &SessionInfo,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let methods = match state.app.sign_in.my_methods(session).await {
        Ok(methods) => methods,
        Err(error) => return internal(error),
    };
    let sessions = match state.app.sign_in.my_sessions(session).await {
        Ok(sessions) => sessions,
        Err(error) => return internal(error),
    };
    page(
        StatusCode::OK,
        &html::SecurityInfo::new(session, &methods, &sessions, notice, error),
    )
}

/// Checks the session and its anti-forgery token.
async fn signed_in_post(
    state: &AppState,
    req: &Request,
    sent_csrf: Option<&str>,
) -> Result<SessionInfo, Response> {
    let session = current_session(state, req).await?;
    if !csrf_ok(&session.csrf, sent_csrf) {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "The form expired. Go back and try again.",
        ));
    }
    Ok(session)
}

/// Renders a refused security-info change on the page, other errors as failures.
async fn info_result(
    state: &AppState,
    session: &SessionInfo,
    result: Result<(), ServiceError>,
    notice: &str,
) -> Response {
    match result {
        Ok(()) => redirect(&format!("/security-info?added={notice}")),
        Err(ServiceError::Forbidden { reason }) => {
            render_info(state, session, None, Some(&reason)).await
        }
        Err(ServiceError::Validation(errors)) => {
            render_info(state, session, None, Some(&errors.to_string())).await
        }
        Err(ServiceError::Conflict { message }) => {
            render_info(state, session, None, Some(&message)).await
        }
        Err(error) => internal(error),
    }
}

async fn totp_begin(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (_, session) = match session_form::<CsrfForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match state.app.sign_in.begin_totp(&session).await {
        Ok(enrolment) => page(
            StatusCode::OK,
            &html::TotpEnrolmentPage::new(&session, &enrolment, None),
        ),
        Err(error) => info_result(&state, &session, Err(error), "totp").await,
    }
}

async fn totp_confirm(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (form, session) = match session_form::<TotpForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let result = state
        .app
        .sign_in
        .confirm_totp(&session, &req.ctx.correlation_id, &form.code, &form.name)
        .await
        .map(|_| ());
    info_result(&state, &session, result, "totp").await
}

async fn register_options(State(state): State<AppState>, req: Request) -> Response {
    let session = match signed_in_post(&state, &req, header_csrf(&req.headers)).await {
        Ok(session) => session,
        Err(_) => return json_problem(StatusCode::FORBIDDEN, "sign in again"),
    };
    match state.app.sign_in.begin_passkey(&session).await {
        Ok(challenge) => json_response(StatusCode::OK, challenge.options),
        Err(ServiceError::Forbidden { reason }) => json_problem(StatusCode::FORBIDDEN, &reason),
        Err(ServiceError::Unavailable(message)) => {
            json_problem(StatusCode::SERVICE_UNAVAILABLE, &message)
        }
        Err(error) => {
            tracing::error!(%error, "passkey registration failed");
            json_problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot add a passkey now",
            )
        }
    }
}

#[derive(Deserialize)]
struct NameQuery {
    #[serde(default)]
    name: String,
}

async fn register_finish(
    State(state): State<AppState>,
    req: Request,
    Query(query): Query<NameQuery>,
    body: Bytes,
) -> Response {
    let session = match signed_in_post(&state, &req, header_csrf(&req.headers)).await {
        Ok(session) => session,
        Err(_) => return json_problem(StatusCode::FORBIDDEN, "sign in again"),
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return json_problem(StatusCode::BAD_REQUEST, "the response is not UTF-8");
    };
    match state
        .app
        .sign_in
        .finish_passkey(&session, &req.ctx.correlation_id, text, &query.name)
        .await
    {
        Ok(view) => json_response(
            StatusCode::OK,
            serde_json::to_value(view).unwrap_or_default(),
        ),
        Err(ServiceError::Forbidden { reason }) => json_problem(StatusCode::FORBIDDEN, &reason),
        Err(ServiceError::Validation(errors)) => {
            json_problem(StatusCode::BAD_REQUEST, &errors.to_string())
        }
        Err(ServiceError::Conflict { message }) => json_problem(StatusCode::CONFLICT, &message),
        Err(error) => {
            tracing::error!(%error, "passkey registration failed");
            json_problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the passkey was not added",
            )
        }
    }
}

async fn change_password(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (form, session) = match session_form::<PasswordForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let current = (!form.current.is_empty()).then(|| SecretString::new(form.current));
    let result = state
        .app
        .sign_in
        .change_my_password(
            &session,
            &req.ctx.correlation_id,
            current,
            SecretString::new(form.new),
        )
        .await;
    info_result(&state, &session, result, "password").await
}

async fn remove_method(
    State(state): State<AppState>,
    req: Request,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Response {
    let (_, session) = match session_form::<CsrfForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let result = state
        .app
        .sign_in
        .remove_my_method(&session, &req.ctx.correlation_id, id)
        .await;
    info_result(&state, &session, result, "removed").await
}

async fn sign_out(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (_, session) = match session_form::<CsrfForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if let Some(secret) = cookie(&req.headers, SESSION_COOKIE)
        && let Err(error) = state.app.sign_in.end_session(session.tenant, &secret).await
    {
        return internal(error);
    }
    signed_out(&state, &req, &session).await
}

/// After this browser's session ended: its SAML applications are told (single
/// logout), then the sign-in page.
async fn signed_out(state: &AppState, req: &Request, session: &SessionInfo) -> Response {
    let then = Some("/signin".to_string());
    if let Some(outcome) = state
        .app
        .saml
        .logout_applications(&saml::context(req), session, then)
        .await
    {
        return saml::slo_answer(
            tessera_service::saml::SloAnswer {
                outcome,
                session_ended: true,
            },
            true,
        );
    }
    let mut response = redirect("/signin");
    set_cookie(&mut response, SESSION_COOKIE, "", Some(0));
    response
}

async fn sign_out_everywhere(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let (_, session) = match session_form::<CsrfForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if let Err(error) = state.app.sign_in.end_all_my_sessions(&session).await {
        return internal(error);
    }
    signed_out(&state, &req, &session).await
}

/// Signs out one of the user's sessions (another device, or this one).
async fn sign_out_one(
    State(state): State<AppState>,
    axum::extract::Path(handle): axum::extract::Path<String>,
    req: Request,
    body: Bytes,
) -> Response {
    let (_, session) = match session_form::<CsrfForm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match state.app.sign_in.end_my_session(&session, &handle).await {
        Ok(true) => signed_out(&state, &req, &session).await,
        Ok(false) => redirect("/security-info"),
        Err(tessera_service::ServiceError::NotFound { .. }) => redirect("/security-info"),
        Err(error) => internal(error),
    }
}

pub(crate) fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/tessera.js"),
    )
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/tessera.css"),
    )
}

pub(crate) fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Password => "Password",
        Mode::SoftwareOath => "Authenticator app code",
        Mode::Fido2 => "Passkey or security key",
        Mode::TemporaryAccessPassOneTime | Mode::TemporaryAccessPassMultiUse => {
            "Temporary Access Pass"
        }
        Mode::X509CertificateSingleFactor | Mode::X509CertificateMultiFactor => {
            "Certificate or smart card"
        }
    }
}

//! The admin console at `/admin`: server-rendered pages over the same application
//! layer as the API, with the administrator's own authorization.
//!
//! Signing in: the console is a built-in public client of Tessera itself
//! (`CONSOLE_CLIENT_ID`, Conditional Access's `MicrosoftAdminPortals`). A request
//! without a valid console cookie is sent through `/oauth2/authorize` (code flow with
//! PKCE, state and nonce held in a short-lived cookie), so sign-in, step-up,
//! Conditional Access and the sign-in log apply as to any application. The callback
//! exchanges the code in-process and keeps the management access token in an
//! HttpOnly, `SameSite=Lax` cookie (Lax so that a link into the console from
//! elsewhere opens it; no GET changes anything); every console request authenticates it exactly
//! as the API authenticates a bearer token, so an administrator sees and does what
//! their role assignments and unit scopes allow. When it expires the browser goes
//! through the authorization endpoint again (silently, while the sign-in session
//! lasts, and with Conditional Access evaluated again).
//!
//! Every state-changing request is a POST that carries the anti-forgery token
//! derived from the console cookie and, when the browser sends one, an `Origin` of
//! Tessera's own; pages load nothing from elsewhere and run no inline script
//! (the pages' CSP).

mod apps;
mod bulk;
mod conditional_access;
mod devices;
mod explanation;
mod forms;
mod groups;
mod html;
mod logs;
mod pim;
mod policy_form;
mod provisioning;
mod records;
mod reports;
mod risk;
mod roles;
mod saml;
mod settings;
mod siem;
mod signals;
mod users;

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use tessera_core::crypto::{constant_time_eq, sha256};
use tessera_directory::roles::action;
use tessera_service::oauth::{CONSOLE_CALLBACK_PATH, CONSOLE_CLIENT_ID, Presented, TokenContext};
use tessera_service::{Context, ServiceError};

use crate::pages;
use crate::state::AppState;

pub use forms::{ConsoleForm, Posted};

/// The management access token of the signed-in administrator.
pub const CONSOLE_COOKIE: &str = "__Host-tessera-console";
/// A sign-in under way: state, PKCE verifier and where to go back to.
const LOGIN_COOKIE: &str = "__Host-tessera-console-login";
/// What the console asks for: an ID token and a token for the management API.
const SCOPE: &str = "openid profile urn:tessera:management/.default";
/// The longest console cookie read (a browser keeps at most 4 KiB a cookie).
const MAX_TOKEN_BYTES: usize = 4096;
/// How long a sign-in may take before its state is forgotten.
const LOGIN_SECONDS: i64 = 900;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(home))
        .route("/admin/callback", get(callback))
        .route("/admin/reauthorize", get(reauthorize))
        .route("/admin/signout", post(sign_out))
        .route("/admin/assets/console.css", get(stylesheet))
        .route("/admin/assets/console.js", get(script))
        .merge(bulk::router())
        .merge(users::router())
        .merge(groups::router())
        .merge(logs::router())
        .merge(conditional_access::router())
        .merge(apps::router())
        .merge(saml::router())
        .merge(roles::router())
        .merge(pim::router())
        .merge(devices::router())
        .merge(settings::router())
        .merge(reports::router())
        .merge(records::router())
        .merge(provisioning::router())
        .merge(risk::router())
        .merge(siem::router())
        .merge(signals::router())
        .route("/admin/authentication", get(authentication))
        .layer(axum::middleware::from_fn(retry_after_step_up))
}

/// Marks a console response that asked for a stronger sign-in (`acr`).
#[derive(Clone)]
struct StepUpNeeded(String);

/// A page (GET) refused for want of a stronger sign-in goes through the step-up
/// sign-in at once and comes back to itself: the retry.
async fn retry_after_step_up(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_get = request.method() == axum::http::Method::GET;
    let here = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/admin".to_string());
    let response = next.run(request).await;
    match response.extensions().get::<StepUpNeeded>() {
        Some(StepUpNeeded(acr)) if is_get && is_console_path(&here) => {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("acr", acr)
                .append_pair("back", &here)
                .finish();
            pages::redirect(&format!("/admin/step-up?{query}"))
        }
        _ => response,
    }
}

/// The sections of the console the administrator may open at all: a section whose
/// read permission none of their roles holds (anywhere) is not shown.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    pub users: bool,
    pub groups: bool,
    pub devices: bool,
    pub roles: bool,
    pub units: bool,
    pub applications: bool,
    pub conditional_access: bool,
    pub sign_ins: bool,
    pub audit: bool,
    pub settings: bool,
    pub authentication: bool,
    pub attributes: bool,
    pub pim: bool,
    pub provisioning: bool,
    pub risk: bool,
    pub siem: bool,
}

impl Nav {
    fn of(ctx: &Context) -> Nav {
        Nav {
            users: holds(ctx, action::USERS_READ),
            groups: holds(ctx, action::GROUPS_READ),
            devices: holds(ctx, action::DEVICES_READ),
            roles: holds(ctx, action::ROLE_DEFINITIONS_READ),
            units: holds(ctx, action::AUS_READ),
            applications: holds(ctx, action::APPS_READ),
            conditional_access: holds(ctx, action::CA_POLICIES_READ),
            sign_ins: holds(ctx, action::SIGN_IN_REPORTS_READ),
            risk: holds(ctx, action::RISK_READ),
            audit: holds(ctx, action::AUDIT_LOGS_READ),
            settings: holds(ctx, action::POLICIES_READ),
            authentication: holds(ctx, action::POLICIES_READ),
            attributes: holds(ctx, action::ATTRIBUTE_DEFINITIONS_READ),
            pim: holds(ctx, action::ROLE_ASSIGNMENTS_READ),
            provisioning: holds(ctx, action::POLICIES_READ),
            siem: holds(ctx, action::POLICIES_READ),
        }
    }
}

/// Whether one of the caller's roles grants `wanted` anywhere (tenant-wide or in a
/// unit): what decides which links and buttons a page shows.
pub(crate) fn holds(ctx: &Context, wanted: &str) -> bool {
    ctx.caller.holds_anywhere(wanted)
}

/// A signed-in administrator: the request's context (their own authorization), the
/// anti-forgery token of their console session, and what the layout shows.
pub struct Admin {
    pub ctx: Context,
    pub csrf: String,
    pub name: String,
    pub nav: Nav,
    /// Seals what the console hands itself through the browser (a new client
    /// secret on its way to the page that shows it): derived from the console
    /// cookie, so only this console session opens it.
    pub(crate) sealing: tessera_core::crypto::SealingKey,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, Response> {
        let cookies = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let Some(token) = pages::input::cookie_of_size(cookies, CONSOLE_COOKIE, MAX_TOKEN_BYTES)
        else {
            return Err(sign_in(state, parts));
        };
        let issuer = state.app.directory.public_url().to_string();
        let url = format!("{issuer}{}", parts.uri.path());
        let address = crate::extract::client_address(state, parts);
        let presented = Presented {
            token: &token,
            dpop_scheme: false,
            proof: None,
            method: parts.method.as_str(),
            url: &url,
            client_certificate: None,
            client_address: address.as_deref(),
        };
        let (tenant, caller) = match state
            .app
            .oidc
            .authenticate_management_token(&issuer, &presented)
            .await
        {
            Ok(found) => found,
            Err(ServiceError::Internal(error)) => {
                return Err(pages::internal(ServiceError::Internal(error)));
            }
            // Not the session's fault: say so rather than sign in again (and again).
            Err(ServiceError::Unavailable(reason)) => {
                tracing::warn!(%reason, "console session could not be checked");
                return Err(pages::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Tessera cannot check your session right now. Try again in a moment.",
                ));
            }
            // Expired, revoked, or the account was disabled: sign in again.
            Err(error) => {
                tracing::debug!(%error, "the console session is not valid");
                return Err(sign_in(state, parts));
            }
        };
        let name = match caller.principal() {
            tessera_service::Principal::User {
                user_principal_name,
                ..
            } => user_principal_name.clone(),
            tessera_service::Principal::System { .. } => "Tessera".to_string(),
            tessera_service::Principal::Workload { display_name, .. } => display_name.clone(),
        };
        let ctx = Context {
            tenant,
            caller,
            correlation_id: parts
                .extensions
                .get::<crate::extract::CorrelationId>()
                .map(|c| c.0.clone())
                .unwrap_or_default(),
            client_address: crate::extract::client_address(state, parts),
        };
        let nav = Nav::of(&ctx);
        let sealing = tessera_core::crypto::SealingKey::from_bytes(&sha256(
            format!("tessera-console-seal\0{token}").as_bytes(),
        ))
        .map_err(|_| pages::internal(ServiceError::Internal("sealing key".to_string())))?;
        Ok(Admin {
            ctx,
            csrf: csrf_of(&token),
            name,
            nav,
            sealing,
        })
    }
}

/// The anti-forgery token of a console session: derived from the HttpOnly cookie,
/// which another site can neither read nor set.
fn csrf_of(token: &str) -> String {
    let digest = sha256(format!("tessera-console-csrf\0{token}").as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// Refuses a state-changing request that did not come from a console page: the
/// anti-forgery token must match, and an `Origin` header naming another site is
/// refused.
pub(crate) fn check_origin_and_token(
    state: &AppState,
    headers: &HeaderMap,
    admin: &Admin,
    sent: Option<&str>,
) -> Result<(), Response> {
    // Under the pages' `Referrer-Policy: no-referrer` a browser sends `Origin: null`
    // with its own forms; that proves nothing either way, so the token decides.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let ours = tessera_service::oauth::origin_of(state.app.directory.public_url());
        let origin = origin.to_str().unwrap_or("");
        if origin != "null" && Some(origin) != ours.as_deref() {
            return Err(pages::error_page(
                StatusCode::FORBIDDEN,
                "This request did not come from a Tessera page.",
            ));
        }
    }
    if !pages::csrf_ok(&admin.csrf, sent) {
        return Err(pages::error_page(
            StatusCode::FORBIDDEN,
            "This form has expired. Go back, reload the page and try again.",
        ));
    }
    Ok(())
}

fn random_text() -> Result<String, Response> {
    let mut bytes = [0u8; 32];
    getrandom(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn getrandom(bytes: &mut [u8]) -> Result<(), Response> {
    tessera_core::crypto::fill_random(bytes)
        .map_err(|e| pages::internal(ServiceError::Internal(e.to_string())))
}

/// Where to come back to after signing in: the page asked for, when it is a
/// console page read with GET; the console's home otherwise.
fn return_path(parts: &Parts) -> String {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/admin");
    if parts.method == axum::http::Method::GET && is_console_path(path) {
        path.to_string()
    } else {
        "/admin".to_string()
    }
}

/// A path of the console's own (never another origin's, never a scheme-relative
/// `//host`).
pub(crate) fn is_console_path(path: &str) -> bool {
    (path == "/admin" || path.starts_with("/admin/") || path.starts_with("/admin?"))
        && !path.contains("//")
        && !path.contains('\\')
        && path.chars().all(|c| c.is_ascii_graphic())
}

/// Starts a sign-in: the browser goes to Tessera's authorization endpoint as the
/// console client, with PKCE, state and nonce.
fn sign_in(state: &AppState, parts: &Parts) -> Response {
    match start_sign_in(state, &return_path(parts)) {
        Ok(response) | Err(response) => response,
    }
}

#[derive(Deserialize)]
struct ReauthorizeQuery {
    back: Option<String>,
}

/// After a step-up sign-in (`/admin/step-up`, in the pages): the console signs in
/// again from the stronger session, so its token carries what the session now
/// proves, and goes back.
async fn reauthorize(
    State(state): State<AppState>,
    Query(query): Query<ReauthorizeQuery>,
) -> Response {
    let back = query
        .back
        .filter(|b| is_console_path(b))
        .unwrap_or_else(|| "/admin".to_string());
    match start_sign_in(&state, &back) {
        Ok(response) | Err(response) => response,
    }
}

/// The page for a console action refused for want of a stronger sign-in: a
/// GET is sent through the step-up sign-in at once and comes back to itself
/// (retried); after a POST the page offers the step-up and says to repeat.
pub(crate) fn step_up_page(acr: &str, message: &str, back: &str) -> Response {
    let acr_plain = acr;
    let back: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    let acr: String = form_urlencoded::byte_serialize(acr.as_bytes()).collect();
    let mut response = pages::page(
        StatusCode::UNAUTHORIZED,
        &html::StepUp {
            message,
            context: &acr,
            back: &back,
        },
    );
    no_store(&mut response);
    response
        .extensions_mut()
        .insert(StepUpNeeded(acr_plain.to_string()));
    response
}

fn start_sign_in(state: &AppState, back_to: &str) -> Result<Response, Response> {
    let issuer = state.app.directory.public_url().trim_end_matches('/');
    let login_state = random_text()?;
    let verifier = random_text()?;
    let nonce = random_text()?;
    let challenge = URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", CONSOLE_CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &format!("{issuer}{CONSOLE_CALLBACK_PATH}"))
        .append_pair("scope", SCOPE)
        .append_pair("state", &login_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let mut response = pages::redirect(&format!("/oauth2/authorize?{query}"));
    let back = URL_SAFE_NO_PAD.encode(back_to.as_bytes());
    // Lax: the callback is the last step of a navigation that may have begun on
    // another site (a link in an email); it holds no credential.
    set_cookie(
        &mut response,
        LOGIN_COOKIE,
        &format!("{login_state}.{verifier}.{back}"),
        Some(LOGIN_SECONDS),
        "Lax",
    );
    no_store(&mut response);
    Ok(response)
}

pub(crate) fn set_cookie(
    response: &mut Response,
    name: &str,
    value: &str,
    max_age: Option<i64>,
    same_site: &str,
) {
    let age = match max_age {
        Some(seconds) => format!("; Max-Age={seconds}"),
        None => String::new(),
    };
    let text = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite={same_site}{age}");
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The end of a console sign-in: the code is exchanged in-process for the
/// administrator's management token.
async fn callback(
    State(state): State<AppState>,
    parts: Parts,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let headers = &parts.headers;
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let Some(login) = pages::input::cookie_of_size(cookies, LOGIN_COOKIE, MAX_TOKEN_BYTES) else {
        return start_again("This sign-in has expired.");
    };
    let mut pieces = login.splitn(3, '.');
    let (Some(expected), Some(verifier), Some(back)) =
        (pieces.next(), pieces.next(), pieces.next())
    else {
        return start_again("This sign-in has expired.");
    };
    let sent = query.state.as_deref().unwrap_or("");
    if !constant_time_eq(expected.as_bytes(), sent.as_bytes()) {
        // Not this browser's sign-in (or a link from elsewhere): the one under way
        // stays as it is.
        return pages::page(
            StatusCode::BAD_REQUEST,
            &html::StartAgain {
                message: "This sign-in does not belong to this browser.",
            },
        );
    }
    if let Some(error) = &query.error {
        let reason = query.error_description.as_deref().unwrap_or(error);
        return start_again(&format!(
            "Signing in to the console did not succeed: {reason}"
        ));
    }
    let Some(code) = &query.code else {
        return start_again("This sign-in has expired.");
    };
    let back = URL_SAFE_NO_PAD
        .decode(back)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|path| is_console_path(path))
        .unwrap_or_else(|| "/admin".to_string());
    let tenant = match state.app.directory.default_tenant().await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => return start_again("Tessera is not set up yet."),
        Err(error) => return pages::internal(error),
    };
    let issuer = state
        .app
        .directory
        .public_url()
        .trim_end_matches('/')
        .to_string();
    let ctx = TokenContext {
        tenant,
        issuer: issuer.clone(),
        correlation_id: parts
            .extensions
            .get::<crate::extract::CorrelationId>()
            .map(|c| c.0.clone())
            .unwrap_or_default(),
        client_address: crate::extract::client_address(&state, &parts),
        dpop: None,
        client_certificates: Vec::new(),
    };
    let form = BTreeMap::from([
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("code".to_string(), code.clone()),
        (
            "redirect_uri".to_string(),
            format!("{issuer}{CONSOLE_CALLBACK_PATH}"),
        ),
        ("code_verifier".to_string(), verifier.to_string()),
        ("client_id".to_string(), CONSOLE_CLIENT_ID.to_string()),
    ]);
    let tokens = match state.app.oidc.token_request(&ctx, None, &form).await {
        Ok(tokens) => tokens,
        Err(error) => {
            return start_again(&format!(
                "Signing in to the console did not succeed: {}",
                error.description
            ));
        }
    };
    // The token must work as a console session before it is kept: one that cannot
    // (too large for a cookie, or refused) ends here, never in a loop of sign-ins.
    if tokens.access_token.len() > MAX_TOKEN_BYTES - 200 {
        return start_again("Your session is too large for the console's cookie.");
    }
    let console_url = format!("{issuer}/admin");
    let presented = Presented {
        token: &tokens.access_token,
        dpop_scheme: false,
        proof: None,
        method: "GET",
        url: &console_url,
        client_certificate: None,
        client_address: ctx.client_address.as_deref(),
    };
    if let Err(error) = state
        .app
        .oidc
        .authenticate_management_token(&issuer, &presented)
        .await
    {
        tracing::warn!(%error, "a console token was refused at once");
        return start_again("Your account cannot use the console.");
    }
    let mut response = pages::redirect(&back);
    no_store(&mut response);
    set_cookie(
        &mut response,
        CONSOLE_COOKIE,
        &tokens.access_token,
        Some(tokens.expires_in),
        "Lax",
    );
    set_cookie(&mut response, LOGIN_COOKIE, "", Some(0), "Lax");
    response
}

/// A sign-in that cannot go on: says why and offers to begin again (never a loop of
/// redirects).
fn start_again(message: &str) -> Response {
    let mut response = pages::page(StatusCode::BAD_REQUEST, &html::StartAgain { message });
    set_cookie(&mut response, LOGIN_COOKIE, "", Some(0), "Lax");
    no_store(&mut response);
    response
}

/// Signs out of the console and ends the sign-in session of this browser.
async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted { admin, .. }: Posted,
) -> Response {
    if let Some(session) = pages::cookie(&headers, pages::SESSION_COOKIE)
        && let Err(error) = state
            .app
            .sign_in
            .end_session(admin.ctx.tenant, &session)
            .await
    {
        tracing::warn!(%error, "console sign-out could not end the sign-in session");
    }
    // The token itself is revoked too (RFC 7009), not only forgotten by the browser.
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    if let Some(token) = pages::input::cookie_of_size(cookies, CONSOLE_COOKIE, MAX_TOKEN_BYTES) {
        let ctx = TokenContext {
            tenant: admin.ctx.tenant,
            issuer: state.app.directory.public_url().to_string(),
            correlation_id: admin.ctx.correlation_id.clone(),
            client_address: admin.ctx.client_address.clone(),
            dpop: None,
            client_certificates: Vec::new(),
        };
        let form = BTreeMap::from([
            ("token".to_string(), token),
            ("client_id".to_string(), CONSOLE_CLIENT_ID.to_string()),
        ]);
        if let Err(error) = state.app.oidc.revoke(&ctx, None, &form).await {
            tracing::warn!(error = %error.description, "console sign-out could not revoke its token");
        }
    }
    let mut response = pages::redirect("/signin");
    set_cookie(&mut response, CONSOLE_COOKIE, "", Some(0), "Lax");
    set_cookie(
        &mut response,
        apps::NEW_SECRET_COOKIE,
        "",
        Some(0),
        "Strict",
    );
    set_cookie(&mut response, pages::SESSION_COOKIE, "", Some(0), "Lax");
    response
}

async fn home(admin: Admin) -> Response {
    pages::page(StatusCode::OK, &html::Home { admin: &admin })
}

async fn authentication(admin: Admin) -> Response {
    pages::page(StatusCode::OK, &html::Authentication { admin: &admin })
}

async fn stylesheet() -> Response {
    pages::asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/console.css"),
    )
}

async fn script() -> Response {
    pages::asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/console.js"),
    )
}

/// The object a form names: an object id as it is, otherwise a user principal name.
/// `Err(Ok(message))` when no user has that name (the form says so), `Err(Err(page))`
/// for any other refusal.
pub(crate) async fn named_object(
    state: &AppState,
    admin: &Admin,
    named: &str,
) -> Result<uuid::Uuid, Result<String, Response>> {
    if let Ok(id) = uuid::Uuid::parse_str(named) {
        return Ok(id);
    }
    match state
        .app
        .directory
        .get_user_by_principal_name(&admin.ctx, named)
        .await
    {
        Ok(user) => Ok(user.id),
        Err(ServiceError::NotFound { .. }) => Err(Ok(format!("No user is named {named}."))),
        Err(error) => Err(Err(refused(error))),
    }
}

/// After a change: on to `to`, or the refusal.
pub(crate) fn done<T>(result: Result<T, ServiceError>, to: &str) -> Response {
    match result {
        Ok(_) => pages::redirect(to),
        Err(error) => refused(error),
    }
}

/// Why a form was refused, to show above it again with what was typed: the
/// client's mistakes (400, 409, 412) are said; anything else is the error page.
pub(crate) fn form_refusal(
    error: ServiceError,
    noun: &str,
) -> Result<(StatusCode, String), Response> {
    match &error {
        ServiceError::VersionMismatch { .. } => Ok((
            StatusCode::PRECONDITION_FAILED,
            format!(
                "Someone changed this {noun} since you opened it. Reload the page to see the current values, then make your change again."
            ),
        )),
        ServiceError::Validation(_) => Ok((StatusCode::BAD_REQUEST, error.to_string())),
        ServiceError::Conflict { .. } => Ok((StatusCode::CONFLICT, error.to_string())),
        _ => Err(refused(error)),
    }
}

/// One page of a list: the objects, the search as typed, and the query of the
/// next page.
pub(crate) struct Listing<T> {
    pub items: Vec<T>,
    pub search: String,
    pub next: Option<String>,
}

impl<T> Listing<T> {
    /// The search as a query string (the CSV link keeps it).
    pub fn search_query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("search", self.search.trim())
            .finish()
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    pub search: Option<String>,
    pub cursor: Option<String>,
    pub done: Option<String>,
}

pub(crate) const PAGE_SIZE: u32 = 50;

impl ListQuery {
    /// The store's page request: names that start with the search, after the cursor.
    pub(crate) fn request(&self) -> tessera_service::PageRequest {
        tessera_service::PageRequest {
            cursor: self.cursor.clone().filter(|c| !c.is_empty()),
            limit: Some(PAGE_SIZE),
            search: self
                .search
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }
    }

    /// The listing of a page the application layer returned.
    pub(crate) fn listing<T>(&self, page: tessera_service::Page<T>) -> Listing<T> {
        let search = self.search.clone().unwrap_or_default();
        let next = page.next_cursor.map(|cursor| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("search", search.trim())
                .append_pair("cursor", &cursor)
                .finish()
        });
        Listing {
            items: page.value,
            search,
            next,
        }
    }
}

/// The confirmation page of a deletion for an object read as `found`: its name and
/// version come from `named`; a refused read is the error page.
pub(crate) fn confirm_delete_of<T>(
    admin: &Admin,
    found: Result<T, ServiceError>,
    noun: &str,
    named: impl FnOnce(&T) -> (&str, i64),
    consequence: &str,
    object_path: &str,
) -> Response {
    match found {
        Ok(object) => {
            let (name, version) = named(&object);
            confirm_page(admin, noun, name, consequence, object_path, version)
        }
        Err(error) => refused(error),
    }
}

/// The deletion the confirmation page posts: at the version it showed, then on to
/// `to`.
pub(crate) async fn delete_at<F, Fut>(
    form: &ConsoleForm,
    id: uuid::Uuid,
    to: &str,
    delete: F,
) -> Response
where
    F: FnOnce(tessera_service::Versioned) -> Fut,
    Fut: std::future::Future<Output = Result<(), ServiceError>>,
{
    match form.version() {
        Ok(version) => done(
            delete(tessera_service::Versioned::new(id, Some(version))).await,
            to,
        ),
        Err(refusal) => refusal,
    }
}

/// A list exported as CSV: every page the search selects (up to `logs::CSV_ROWS`
/// rows), read with `page`, each item written as `row` gives it.
pub(crate) async fn export_csv<T, F, Fut>(
    query: &ListQuery,
    file_name: &'static str,
    header: &[&str],
    mut page: F,
    row: impl Fn(&T) -> Vec<String>,
) -> Response
where
    F: FnMut(tessera_service::PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<tessera_service::Page<T>, ServiceError>>,
{
    let mut csv = logs::Csv::new(header);
    let mut request = query.request();
    request.limit = Some(1000);
    loop {
        let found = match page(request.clone()).await {
            Ok(found) => found,
            Err(error) => return refused(error),
        };
        for item in &found.value {
            let cells = row(item);
            let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
            csv.row(&cells);
        }
        match found.next_cursor {
            Some(cursor) if csv.rows < logs::CSV_ROWS => request.cursor = Some(cursor),
            _ => break,
        }
    }
    csv.response(file_name)
}

/// Asks before deleting: what goes, and a form that posts the version read.
pub(crate) fn confirm_page(
    admin: &Admin,
    noun: &str,
    name: &str,
    consequence: &str,
    object_path: &str,
    version: i64,
) -> Response {
    pages::page(
        StatusCode::OK,
        &html::Confirm {
            admin,
            noun,
            name,
            consequence,
            action: &format!("{object_path}/delete"),
            back: object_path,
            version,
        },
    )
}

/// What a page shows when the application layer refused or failed: a refusal of
/// the caller's request is its message (400, 403, 404, 409, 412), anything else a
/// generic error with the details in the log.
/// A merge patch (RFC 7396) that turns `stored` into `wanted`: keys `wanted` lacks
/// are sent as null, at every depth, so nothing removed in the editor stays; what
/// did not change is left out (so a save asks only for the permissions its changes
/// need).
pub(crate) fn replacement(
    stored: &serde_json::Value,
    wanted: &serde_json::Value,
) -> serde_json::Value {
    match (stored, wanted) {
        (serde_json::Value::Object(old), serde_json::Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for key in old.keys().filter(|key| !new.contains_key(*key)) {
                patch.insert(key.clone(), serde_json::Value::Null);
            }
            for (key, value) in new {
                let next = match old.get(key) {
                    Some(before) if before == value => continue,
                    Some(before) => replacement(before, value),
                    None => value.clone(),
                };
                patch.insert(key.clone(), next);
            }
            serde_json::Value::Object(patch)
        }
        _ => wanted.clone(),
    }
}

pub(crate) fn refused(error: ServiceError) -> Response {
    if let ServiceError::InsufficientAuthentication {
        acr_values,
        message,
    } = &error
    {
        return step_up_page(acr_values, message, "/admin");
    }
    let message = error.to_string();
    let status = crate::error::ApiError::from(error).status;
    if status.is_server_error() {
        tracing::error!(error = %message, "a console page failed");
        return pages::error_page(status, "Something went wrong. Please try again.");
    }
    pages::error_page(status, &message)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_replacement_removes_what_the_editor_took_out() {
        let stored = serde_json::json!({"a": 1, "conditions": {"users": {"includeUsers": ["All"], "excludeUsers": ["x"]}}});
        let wanted =
            serde_json::json!({"a": 2, "conditions": {"users": {"includeUsers": ["All"]}}});
        let patch = replacement(&stored, &wanted);
        assert_eq!(
            patch,
            serde_json::json!({"a": 2, "conditions": {"users": {"excludeUsers": null}}})
        );
        let merged: serde_json::Value =
            tessera_directory::patch::merge_patch(&stored, &patch, &[]).unwrap();
        assert_eq!(merged, wanted);
    }

    use super::*;

    #[test]
    fn only_console_paths_are_returned_to() {
        assert!(is_console_path("/admin"));
        assert!(is_console_path("/admin/users?search=a"));
        assert!(!is_console_path("//evil.example/admin"));
        assert!(!is_console_path("/admin//evil.example"));
        assert!(!is_console_path("/administrator"));
        assert!(!is_console_path("https://evil.example/admin"));
        assert!(!is_console_path("/admin/\\evil"));
    }

    #[test]
    fn the_anti_forgery_token_depends_on_the_session() {
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a"), csrf_of("a"));
    }
}

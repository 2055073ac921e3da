//! The authorization endpoint in the browser: `GET|POST /oauth2/authorize` and the
//! return from sign-in, `GET /oauth2/authorize/continue`. Answers are a redirect
//! (query response mode), an auto-submitting form (`form_post`), a redirect to the
//! sign-in page, or an error page when the client cannot be trusted with a redirect.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tessera_core::SecretString;
use tessera_oauth::authorize::{self, RawAuthorization, ResponseMode};
use tessera_oauth::error::ErrorCode;
use tessera_oauth::token::OAuthError;
use tessera_service::authn::SessionInfo;
use tessera_service::oauth::{AuthorizeContext, AuthorizeOutcome, InterruptionAnswer};

use super::html;
use super::{
    AUTHORIZE_COOKIE, Request, SESSION_COOKIE, cookie, error_page, navigate, page, redirect,
    set_cookie,
};
use crate::state::AppState;

fn context(state: &AppState, req: &Request) -> AuthorizeContext {
    AuthorizeContext {
        tenant: req.ctx.tenant,
        issuer: state.app.directory.public_url().to_string(),
        correlation_id: req.ctx.correlation_id.clone(),
        client_address: req.ctx.client_address.clone(),
        user_agent: req.ctx.user_agent.clone(),
        device_thumbprint: req.device_thumbprint(),
    }
}

/// The browser's session, if it has a good one.
pub(super) async fn session(state: &AppState, req: &Request) -> Option<SessionInfo> {
    let secret = cookie(&req.headers, SESSION_COOKIE)?;
    match state.app.sign_in.session_used(&req.ctx, &secret).await {
        Ok(session) => session,
        Err(error) => {
            tracing::error!(%error, "cannot read the session");
            None
        }
    }
}

pub async fn authorize_get(
    State(state): State<AppState>,
    req: Request,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    authorize_with(&state, &req, query.as_bytes()).await
}

/// OIDC Core §3.1.2.1: the request may also be a form POST.
pub async fn authorize_post(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    let is_form = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form || body.len() > tessera_oauth::token::MAX_REQUEST_BYTES {
        return refused(&OAuthError::new(
            ErrorCode::InvalidRequest,
            "send the request as a form",
        ));
    }
    authorize_with(&state, &req, &body).await
}

async fn authorize_with(state: &AppState, req: &Request, input: &[u8]) -> Response {
    let raw: RawAuthorization = match authorize::collect(form_urlencoded::parse(input)) {
        Ok(raw) => raw,
        Err(error) => return refused(&error),
    };
    let session = session(state, req).await;
    let outcome = state
        .app
        .oidc
        .authorize(&context(state, req), &raw, session.as_ref())
        .await;
    answer(state, req, outcome).await
}

pub async fn authorize_continue(State(state): State<AppState>, req: Request) -> Response {
    let Some(pending) = cookie(&req.headers, AUTHORIZE_COOKIE) else {
        return redirect("/security-info");
    };
    let session = session(&state, &req).await;
    let outcome = state
        .app
        .oidc
        .authorize_continue(&context(&state, &req), &pending, session.as_ref())
        .await;
    let waiting = waiting(&outcome);
    let mut response = answer(&state, &req, outcome).await;
    if !waiting {
        set_cookie(&mut response, AUTHORIZE_COOKIE, "", Some(0));
    }
    response
}

/// `POST /oauth2/authorize/consent`: the user allows or denies (anti-forgery token
/// of the session).
pub async fn authorize_consent(
    State(state): State<AppState>,
    req: Request,
    body: Bytes,
) -> Response {
    #[derive(serde::Deserialize)]
    struct Decision {
        csrf: String,
        decision: String,
        /// Which waiting request the page was about (see `consent_binding`).
        request: String,
    }
    impl super::input::WithCsrf for Decision {
        fn csrf(&self) -> &str {
            &self.csrf
        }
    }
    let (form, session) = match super::session_form::<Decision>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let approve = match form.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => return error_page(StatusCode::BAD_REQUEST, "The form was not understood."),
    };
    let pending = match pending_for(&req, &form.request) {
        Ok(pending) => pending,
        Err(response) => return response,
    };
    let outcome = state
        .app
        .oidc
        .consent(&context(&state, &req), &pending, &session, approve)
        .await;
    let keep = waiting(&outcome);
    let mut response = answer_form(&state, &req, outcome).await;
    if !keep {
        set_cookie(&mut response, AUTHORIZE_COOKIE, "", Some(0));
    }
    response
}

/// The waiting request a page's answer is about: the cookie's, if the page showed
/// that request and not one another tab (or another site) put in the cookie since.
#[allow(clippy::result_large_err)]
fn pending_for(req: &Request, binding: &str) -> Result<String, Response> {
    let Some(pending) = cookie(&req.headers, AUTHORIZE_COOKIE) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in took too long: go back to the application and start again.",
        ));
    };
    if !tessera_core::crypto::constant_time_eq(
        consent_binding(&pending).as_bytes(),
        binding.as_bytes(),
    ) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Another sign-in started in this browser: go back to the application and start again.",
        ));
    }
    Ok(pending)
}

/// Whether the request still waits (the cookie stays).
fn waiting(outcome: &AuthorizeOutcome) -> bool {
    matches!(
        outcome,
        AuthorizeOutcome::SignIn { .. }
            | AuthorizeOutcome::Consent { .. }
            | AuthorizeOutcome::AcceptTerms { .. }
            | AuthorizeOutcome::ChangePassword { .. }
            | AuthorizeOutcome::PasswordRefused { .. }
    )
}

/// The terms-of-use page's answer (the OIDC and SAML pages post the same form).
#[derive(serde::Deserialize)]
pub(super) struct TermsAnswer {
    csrf: String,
    pub(super) request: String,
}

impl super::input::WithCsrf for TermsAnswer {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The password-change page's answer.
#[derive(serde::Deserialize)]
pub(super) struct PasswordAnswer {
    csrf: String,
    pub(super) request: String,
    #[serde(default)]
    current: String,
    new: String,
}

impl super::input::WithCsrf for PasswordAnswer {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl PasswordAnswer {
    pub(super) fn answer(&self) -> InterruptionAnswer {
        InterruptionAnswer::ChangePassword {
            current: (!self.current.is_empty()).then(|| SecretString::new(self.current.clone())),
            new: SecretString::new(self.new.clone()),
        }
    }
}

/// `POST /oauth2/authorize/terms`: the user accepts the terms of use Conditional
/// Access asked for.
pub async fn authorize_terms(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
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

/// `POST /oauth2/authorize/password`: the password change Conditional Access
/// asked for.
pub async fn authorize_password(
    State(state): State<AppState>,
    req: Request,
    body: Bytes,
) -> Response {
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
    answer_given: InterruptionAnswer,
) -> Response {
    let pending = match pending_for(req, binding) {
        Ok(pending) => pending,
        Err(response) => return response,
    };
    let outcome = state
        .app
        .oidc
        .interruption(&context(state, req), &pending, session, answer_given)
        .await;
    let keep = waiting(&outcome);
    let mut response = answer_form(state, req, outcome).await;
    if !keep {
        set_cookie(&mut response, AUTHORIZE_COOKIE, "", Some(0));
    }
    response
}

/// The logout request's parameters that are passed on (to the same request again,
/// or to the user's confirmation).
const LOGOUT_PARAMETERS: [&str; 4] = [
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
];

/// `GET|POST /oauth2/logout` (RP-Initiated Logout 1.0): with a valid ID token hint
/// for the signed-in user, the session ends at once; otherwise the user confirms
/// (so a third-party page cannot sign people out).
pub async fn logout(
    State(state): State<AppState>,
    req: Request,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let query = query.unwrap_or_default();
    let input: &[u8] = if body.is_empty() {
        query.as_bytes()
    } else {
        &body
    };
    let mut params = std::collections::BTreeMap::new();
    for (name, value) in form_urlencoded::parse(input) {
        if value.len() > tessera_oauth::authorize::MAX_PARAMETER_BYTES
            || params.insert(name.to_string(), value.to_string()).is_some()
        {
            return refused(&OAuthError::new(
                ErrorCode::InvalidRequest,
                "a logout parameter is repeated or too long",
            ));
        }
    }
    let get = |name: &str| params.get(name).map(String::as_str);
    let request = match state
        .app
        .oidc
        .logout_request(
            req.ctx.tenant,
            state.app.directory.public_url(),
            get("id_token_hint"),
            get("client_id"),
            get("post_logout_redirect_uri"),
            get("state"),
        )
        .await
    {
        Ok(request) => request,
        Err(error) => return super::internal(error),
    };
    let session = session(&state, &req).await;
    if !body.is_empty() && cookie(&req.headers, SESSION_COOKIE).is_none() {
        // An application's logout form posts cross-site, so the Lax session cookie
        // stays behind and Tessera cannot see which session the browser holds. The
        // same request again, as a navigation from this origin, brings it along (and
        // without it, the hint's `sid` names the session to end).
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                params
                    .iter()
                    .filter(|(name, _)| LOGOUT_PARAMETERS.contains(&name.as_str())),
            )
            .finish();
        return navigate(&format!("/oauth2/logout?{query}"));
    }
    let confirmed = session
        .as_ref()
        .is_none_or(|s| tessera_service::Oidc::logout_is_confirmed(&request, s));
    if !confirmed && let Some(session) = &session {
        let fields = params
            .iter()
            .filter(|(name, _)| LOGOUT_PARAMETERS.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        return page(
            StatusCode::OK,
            &html::LogoutConfirm {
                csrf: &session.csrf,
                user: &session.user_principal_name,
                fields,
            },
        );
    }
    finish_logout(&state, &req, &request).await
}

/// `POST /oauth2/logout/confirm`: the user's own confirmation (anti-forgery token).
pub async fn logout_confirm(State(state): State<AppState>, req: Request, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Confirm {
        csrf: String,
        id_token_hint: Option<String>,
        client_id: Option<String>,
        post_logout_redirect_uri: Option<String>,
        state: Option<String>,
    }
    impl super::input::WithCsrf for Confirm {
        fn csrf(&self) -> &str {
            &self.csrf
        }
    }
    let (form, _) = match super::session_form::<Confirm>(&state, &req, &body).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let request = match state
        .app
        .oidc
        .logout_request(
            req.ctx.tenant,
            state.app.directory.public_url(),
            form.id_token_hint.as_deref(),
            form.client_id.as_deref(),
            form.post_logout_redirect_uri.as_deref(),
            form.state.as_deref(),
        )
        .await
    {
        Ok(request) => request,
        Err(error) => return super::internal(error),
    };
    finish_logout(&state, &req, &request).await
}

async fn finish_logout(
    state: &AppState,
    req: &Request,
    request: &tessera_service::oauth::LogoutRequest,
) -> Response {
    let secret = cookie(&req.headers, SESSION_COOKIE);
    // The browser's session, as it was before it ends: its SAML applications are
    // told afterwards (single logout), then the browser goes where it would have.
    let ending = session(state, req).await;
    match state
        .app
        .oidc
        .logout(req.ctx.tenant, secret.as_deref(), request)
        .await
    {
        Ok(outcome) => {
            if let Some(ending) = &ending {
                let then = match &outcome {
                    tessera_service::oauth::LogoutOutcome::Redirect(uri) => Some(uri.clone()),
                    tessera_service::oauth::LogoutOutcome::SignedOut => None,
                };
                if let Some(outcome) = state
                    .app
                    .saml
                    .logout_applications(&super::saml::context(req), ending, then)
                    .await
                {
                    return super::saml::slo_answer(
                        tessera_service::saml::SloAnswer {
                            outcome,
                            session_ended: true,
                        },
                        true,
                    );
                }
            }
            let mut response = match outcome {
                tessera_service::oauth::LogoutOutcome::Redirect(uri) => redirect(&uri),
                tessera_service::oauth::LogoutOutcome::SignedOut => page(
                    StatusCode::OK,
                    &html::ResultPage {
                        csrf: "",
                        title: "Signed out",
                        message: "You are signed out of Tessera.",
                    },
                ),
            };
            set_cookie(&mut response, SESSION_COOKIE, "", Some(0));
            no_store(&mut response);
            response
        }
        Err(error) => super::internal(error),
    }
}

/// A consent page's tie to its waiting request: derived from the request's secret,
/// which only the cookie holds.
pub(super) fn consent_binding(pending: &str) -> String {
    tessera_core::crypto::sha256_hex(format!("consent:{pending}").as_bytes())[..32].to_string()
}

fn refused(error: &OAuthError) -> Response {
    let status = if error.error == ErrorCode::ServerError {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    error_page(
        status,
        &format!(
            "The application's sign-in request cannot be used: {}.",
            error.description
        ),
    )
}

fn with_pending(response: Response, pending: &SecretString) -> Response {
    waiting_under(response, AUTHORIZE_COOKIE, pending)
}

/// A page about a waiting request: the request's secret goes to `cookie`, and
/// the page is not stored.
pub(super) fn waiting_under(
    mut response: Response,
    cookie: &str,
    pending: &SecretString,
) -> Response {
    set_cookie(&mut response, cookie, pending.expose(), Some(15 * 60));
    no_store(&mut response);
    response
}

/// The answer of a page that came from one of Tessera's own forms: an
/// application's redirect goes through [`super::navigate`].
async fn answer_form(state: &AppState, req: &Request, outcome: AuthorizeOutcome) -> Response {
    if let AuthorizeOutcome::Respond {
        redirect_uri,
        response_mode: ResponseMode::Query,
        params,
    } = &outcome
    {
        return super::navigate(&authorize::redirect_with(redirect_uri, params));
    }
    answer(state, req, outcome).await
}

async fn answer(state: &AppState, req: &Request, outcome: AuthorizeOutcome) -> Response {
    match outcome {
        AuthorizeOutcome::Refused(error) => refused(&error),
        AuthorizeOutcome::Blocked {
            client_name,
            reason,
            correlation_id,
        } => {
            let mut response = page(
                StatusCode::FORBIDDEN,
                &html::Blocked {
                    csrf: "",
                    app: &client_name,
                    reason: &reason,
                    correlation_id: &correlation_id,
                },
            );
            no_store(&mut response);
            response
        }
        AuthorizeOutcome::AcceptTerms {
            pending,
            client_name,
            terms,
            csrf,
        } => {
            let request = consent_binding(pending.expose());
            let body = html::Terms {
                action: "/oauth2/authorize/terms",
                csrf: &csrf,
                app: &client_name,
                terms: &terms,
                request: &request,
            };
            with_pending(page(StatusCode::OK, &body), &pending)
        }
        AuthorizeOutcome::ChangePassword {
            pending,
            client_name,
            csrf,
        } => {
            let request = consent_binding(pending.expose());
            let body = html::ChangePassword {
                action: "/oauth2/authorize/password",
                csrf: &csrf,
                app: &client_name,
                request: &request,
            };
            with_pending(page(StatusCode::OK, &body), &pending)
        }
        AuthorizeOutcome::PasswordRefused { message } => error_page(
            StatusCode::BAD_REQUEST,
            &format!("The password was not changed: {message}. Go back and try again."),
        ),
        AuthorizeOutcome::Consent {
            pending,
            client_name,
            scopes,
            csrf,
        } => {
            let request = consent_binding(pending.expose());
            let mut response = page(
                StatusCode::OK,
                &html::Consent {
                    csrf: &csrf,
                    app: &client_name,
                    scopes: &scopes,
                    request: &request,
                },
            );
            set_cookie(
                &mut response,
                AUTHORIZE_COOKIE,
                pending.expose(),
                Some(15 * 60),
            );
            no_store(&mut response);
            response
        }
        AuthorizeOutcome::SignIn {
            pending, step_up, ..
        } => sign_in_first(state, req, AUTHORIZE_COOKIE, &pending, step_up).await,
        AuthorizeOutcome::Respond {
            redirect_uri,
            response_mode: ResponseMode::Query,
            params,
        } => {
            let mut response = redirect(&authorize::redirect_with(&redirect_uri, &params));
            no_store(&mut response);
            response
        }
        AuthorizeOutcome::Respond {
            redirect_uri,
            response_mode: ResponseMode::FormPost,
            params,
        } => form_post(&redirect_uri, &params),
    }
}

/// The sign-in page, with the waiting request under `cookie`. With `step_up`,
/// Conditional Access (or the request) asks this user for more: a sign-in flow
/// that completes only when the required strengths are reached.
pub(super) async fn sign_in_first(
    state: &AppState,
    req: &Request,
    cookie: &str,
    pending: &SecretString,
    step_up: Option<tessera_service::oauth::StepUp>,
) -> Response {
    let mut response = redirect("/signin");
    if let Some(step_up) = step_up {
        match state
            .app
            .sign_in
            .start_step_up(
                &req.ctx,
                step_up.user_id,
                &step_up.user_principal_name,
                step_up.strengths,
            )
            .await
        {
            Ok(flow) => set_cookie(
                &mut response,
                super::FLOW_COOKIE,
                flow.expose(),
                Some(15 * 60),
            ),
            Err(error) => return super::internal(error),
        }
    }
    set_cookie(&mut response, cookie, pending.expose(), Some(15 * 60));
    // One protocol's request at a time returns from the sign-in: another one
    // left waiting in this browser (or planted in it) is dropped.
    for other in [AUTHORIZE_COOKIE, super::SAML_COOKIE] {
        if other != cookie {
            set_cookie(&mut response, other, "", Some(0));
        }
    }
    response
}

pub(super) fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// OAuth 2.0 Form Post Response Mode: a page whose form posts the response to the
/// client, submitted by the page script (and by a button without script). Its CSP
/// allows that one form target.
pub(super) fn form_post(redirect_uri: &str, params: &[(&'static str, String)]) -> Response {
    form_post_with(redirect_uri, params, "")
}

/// `form_post`, with more CSP `form-action` sources (`'self'`, for a target that
/// may answer with a redirect back to Tessera: the browser holds the redirects
/// that follow a form submission to the page's `form-action`).
pub(super) fn form_post_with(
    redirect_uri: &str,
    params: &[(&'static str, String)],
    more_targets: &str,
) -> Response {
    let fields = params
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let body = html::FormPost {
        csrf: "",
        action: redirect_uri,
        fields,
    };
    let mut response = page(StatusCode::OK, &body);
    let origin = origin_of(redirect_uri);
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; form-action {origin}{more_targets}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    no_store(&mut response);
    response
}

/// `scheme://host[:port]` of a URI, for a CSP source (a private-use scheme gives
/// `scheme:`).
fn origin_of(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri
            .split_once(':')
            .map(|(scheme, _)| format!("{scheme}:"))
            .unwrap_or_else(|| "'none'".to_string());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let clean = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '+'))
    };
    if clean(scheme) && clean(authority) && !authority.is_empty() {
        format!("{scheme}://{authority}")
    } else {
        "'none'".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_origins() {
        assert_eq!(
            origin_of("https://app.contoso.com:8443/cb?x=1"),
            "https://app.contoso.com:8443"
        );
        assert_eq!(origin_of("com.contoso.app:/cb"), "com.contoso.app:");
        assert_eq!(origin_of("https://a;b/cb"), "'none'");
    }
}

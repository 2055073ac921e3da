//! The authorization endpoint: the client and its exact redirect URI first (errors
//! shown to the user), then the request (errors sent to the client), then the
//! user's session: an authorization code when it is good enough, otherwise a
//! pending request kept server-side while the user signs in.

mod answers;
mod enforce;
mod pending;

use serde::{Deserialize, Serialize};
use tessera_core::crypto::generate_secret;
use tessera_core::{SecretString, TenantId, Timestamp};
use tessera_directory::model::{ApplicationData, AuthenticationContexts, ServicePrincipalData};
use tessera_oauth::authorize::{
    self, AuthorizationRequest, Prompt, RawAuthorization, ResponseMode,
};
use tessera_oauth::error::ErrorCode;
use tessera_oauth::resource::{MANAGEMENT_RESOURCE, requested_resource, resource_app_id};
use tessera_oauth::token::OAuthError;
use tessera_oauth::{acr, redirect};
use tessera_store::{Kind, Reader, SessionRow};
use uuid::Uuid;

use std::collections::BTreeMap;

use super::grants::TokenClient;
use super::{TokenContext, application_by_app_id, client_application, server_error};
use crate::Oidc;
use crate::app_sign_in::{AppDecision, Verdict};
pub use crate::app_sign_in::{StepUp, TermsToAccept};
use crate::codec;
use crate::oidc::{check_builtin_request, is_management_client};
use crate::sign_in::SessionInfo;
pub use crate::sign_in::interruptions::InterruptionAnswer;

/// Authorization codes are good for a minute (RFC 6749 §4.1.2 recommends at most 10).
pub const CODE_SECONDS: i64 = 60;
/// A pending request waits this long for the user to sign in.
const PENDING_SECONDS: i64 = 15 * 60;

/// The client type Conditional Access sees for an authorization request: a
/// native application (a loopback or private-use-scheme redirect, RFC 8252) is a
/// desktop or mobile client, everything else a browser.
pub(crate) fn client_app_of(redirect_uri: &str) -> tessera_ca::engine::ClientApp {
    if redirect::is_native(redirect_uri) {
        tessera_ca::engine::ClientApp::MobileAppsAndDesktopClients
    } else {
        tessera_ca::engine::ClientApp::Browser
    }
}

/// Where an authorization request comes from.
#[derive(Debug, Clone)]
pub struct AuthorizeContext {
    pub tenant: TenantId,
    pub issuer: String,
    pub correlation_id: String,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// SHA-256 (hex) of the TLS client certificate, which may name a device.
    pub device_thumbprint: Option<String>,
}

/// What the endpoint answers.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// Shown to the user: the client or its redirect URI is not known, so nothing
    /// may be sent to it.
    Refused(OAuthError),
    /// Sent to the client's redirect URI: a code, or an error.
    Respond {
        redirect_uri: String,
        response_mode: ResponseMode,
        params: Vec<(&'static str, String)>,
    },
    /// The user must sign in first; the request waits under `pending`. With
    /// `step_up`, Conditional Access asks this user for a stronger sign-in.
    SignIn {
        pending: SecretString,
        login_hint: Option<String>,
        step_up: Option<StepUp>,
    },
    /// Conditional Access blocks this sign-in: shown to the user, with the
    /// correlation id for the help desk; nothing goes to the application.
    Blocked {
        client_name: String,
        reason: String,
        correlation_id: String,
    },
    /// Conditional Access asks the user to accept terms of use first.
    AcceptTerms {
        pending: SecretString,
        client_name: String,
        terms: Vec<TermsToAccept>,
        csrf: String,
    },
    /// Conditional Access asks the user to change their password first.
    ChangePassword {
        pending: SecretString,
        client_name: String,
        csrf: String,
    },
    /// The new password was not accepted (the message says why).
    PasswordRefused { message: String },
    /// The user is asked to consent to `scopes` for the application; the request
    /// waits under `pending`. `csrf` is the session's anti-forgery token.
    Consent {
        pending: SecretString,
        client_name: String,
        scopes: Vec<String>,
        csrf: String,
    },
}

/// A request waiting for the user to sign in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PendingData {
    request: AuthorizationRequest,
    confidential: bool,
    /// The session that answers it must have signed in at or after this.
    reauthenticate_after: Timestamp,
    /// Conditional Access asked for this sign-in (a step-up), so falling short
    /// again ends the request rather than asking again.
    #[serde(default)]
    step_up: bool,
}

/// What an authorization code stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CodeData {
    pub request: AuthorizationRequest,
    pub confidential: bool,
    pub sign_in: UserSignIn,
}

/// The facts of a user's sign-in that tokens carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserSignIn {
    pub user_id: Uuid,
    pub sid: String,
    pub auth_time: Timestamp,
    pub amr: Vec<String>,
    pub acr: String,
    /// The tenant's authentication contexts the sign-in satisfies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acrs: Vec<String>,
    /// Entra method names, for the sign-in log.
    pub methods: Vec<String>,
    #[serde(default)]
    pub strengths: Vec<Uuid>,
    /// Conditional Access session controls for the application (restrictions it
    /// and the proxy enforce), as the `session_controls` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_controls: Option<serde_json::Value>,
    /// The policies whose locations its tokens must stay out of (continuous
    /// access evaluation, strict location enforcement), as the `cae_loc` claim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub location_fence: Vec<Uuid>,
    /// The sign-in's User-Agent and device certificate, for the decisions at
    /// refresh (platform and device conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_thumbprint: Option<String>,
    /// The real-time risk of the session the tokens came from (Identity
    /// Protection), which the decisions at refresh keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_risk: Option<tessera_ca::model::RiskLevel>,
}

/// The session controls of a decision as a claim (none when there are none).
pub(crate) fn session_controls_claim(
    decided: &crate::access::Decided,
) -> Option<serde_json::Value> {
    let value = serde_json::to_value(&decided.decision.session).ok()?;
    value
        .as_object()
        .is_some_and(|o| !o.is_empty())
        .then_some(value)
}

pub(crate) const CODE_PREFIX: &str = "code:";
const PUSHED_PREFIX: &str = "par:";
/// A pushed request is good for a minute (RFC 9126 §2.2).
const PUSHED_SECONDS: i64 = 60;

/// The answer to a pushed authorization request.
#[derive(Debug, Clone, Serialize)]
pub struct PushedRequest {
    pub request_uri: String,
    pub expires_in: i64,
}
const PENDING_PREFIX: &str = "az:";

impl Oidc {
    /// `GET|POST /authorize`, with the browser's session if it has one.
    pub async fn authorize(
        &self,
        ctx: &AuthorizeContext,
        raw: &RawAuthorization,
        session: Option<&SessionInfo>,
    ) -> AuthorizeOutcome {
        let Some(client_id) = raw.get("client_id") else {
            return AuthorizeOutcome::Refused(OAuthError::new(
                ErrorCode::InvalidRequest,
                "client_id is required",
            ));
        };
        // A pushed request (RFC 9126) replaces the parameters of the front channel.
        let pushed = match raw.get("request_uri") {
            Some(uri) => match self.take_pushed(ctx.tenant, client_id, uri).await {
                Ok(pushed) => Some(pushed),
                Err(error) => return AuthorizeOutcome::Refused(error),
            },
            None => None,
        };
        let raw = pushed.as_ref().unwrap_or(raw);
        let mut reader = match self.reader().await {
            Ok(reader) => reader,
            Err(error) => return AuthorizeOutcome::Refused(server_error(error)),
        };
        let app_data =
            match client_application(reader.as_mut(), ctx.tenant, client_id, &ctx.issuer).await {
                Ok(Some(app)) => app,
                Ok(None) => {
                    return AuthorizeOutcome::Refused(OAuthError::new(
                        ErrorCode::InvalidClient,
                        "this application is not known here",
                    ));
                }
                Err(error) => return AuthorizeOutcome::Refused(error),
            };
        let Some(redirect_uri) = raw.get("redirect_uri") else {
            return AuthorizeOutcome::Refused(OAuthError::new(
                ErrorCode::InvalidRequest,
                "redirect_uri is required",
            ));
        };
        let Some(confidential) = redirect::registered_kind(&app_data.spec, redirect_uri) else {
            return AuthorizeOutcome::Refused(OAuthError::new(
                ErrorCode::InvalidRequest,
                "redirect_uri is not registered for this application",
            ));
        };
        // From here on, errors go back to the client.
        let respond_error = |error: OAuthError| AuthorizeOutcome::Respond {
            redirect_uri: redirect_uri.to_string(),
            response_mode: if raw.get("response_mode") == Some("form_post") {
                ResponseMode::FormPost
            } else {
                ResponseMode::Query
            },
            params: authorize::response_parameters(Err(&error), raw.get("state"), &ctx.issuer),
        };
        if app_data.spec.require_pushed_authorization_requests && pushed.is_none() {
            return respond_error(OAuthError::new(
                ErrorCode::InvalidRequest,
                "this application requires pushed authorization requests",
            ));
        }
        let request = match authorize::validate(raw) {
            Ok(request) => request,
            Err(error) => return respond_error(error),
        };
        if let Err(error) = self
            .check_app_access(
                reader.as_mut(),
                ctx.tenant,
                &app_data,
                &request.scopes,
                &request.resources,
            )
            .await
        {
            return respond_error(error);
        }
        drop(reader);
        let now = self.now();
        self.decide(ctx, request, confidential, session, None, now)
            .await
    }

    /// `POST /par` (RFC 9126): checks the client and the request as the
    /// authorization endpoint would, and keeps it for a minute under a one-time
    /// `request_uri`.
    pub async fn push_authorization_request(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
    ) -> Result<PushedRequest, OAuthError> {
        let client = self.token_client(ctx, authorization, form).await?;
        let client_id = client.client_id();
        let mut raw = authorize::pushed_parameters(form, &client_id)?;
        // RFC 9449 §10.1: a proof on the pushed request binds the code to its key.
        let par_endpoint = format!("{}/oauth2/par", ctx.issuer);
        if let Some(proof) = self
            .dpop_proof(ctx.tenant, ctx.dpop.as_deref(), "POST", &par_endpoint, None)
            .await
            .map_err(|e| OAuthError::new(ErrorCode::InvalidDpopProof, e.to_string()))?
        {
            if raw.get("dpop_jkt").is_some_and(|jkt| jkt != proof.jkt) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidDpopProof,
                    "dpop_jkt differs from the proof's key",
                ));
            }
            raw.params.insert("dpop_jkt".to_string(), proof.jkt);
        }
        let mut reader = self.reader().await.map_err(server_error)?;
        let app_data = client_application(reader.as_mut(), ctx.tenant, &client_id, &ctx.issuer)
            .await?
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient, "unknown client"))?;
        let redirect_uri = raw.get("redirect_uri").ok_or_else(|| {
            OAuthError::new(ErrorCode::InvalidRequest, "redirect_uri is required")
        })?;
        let confidential =
            redirect::registered_kind(&app_data.spec, redirect_uri).ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "redirect_uri is not registered for this application",
                )
            })?;
        if confidential && !matches!(client, TokenClient::Confidential(_)) {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "this client must authenticate",
            ));
        }
        let request = authorize::validate(&raw)?;
        self.check_app_access(
            reader.as_mut(),
            ctx.tenant,
            &app_data,
            &request.scopes,
            &request.resources,
        )
        .await?;
        drop(reader);
        let generated = generate_secret("").map_err(server_error)?;
        let now = self.now();
        let row = SessionRow::transient(
            format!("{PUSHED_PREFIX}{}", generated.hash),
            now,
            PUSHED_SECONDS,
            serde_json::to_string(&raw).map_err(server_error)?,
        );
        self.store
            .session_insert(ctx.tenant, &row)
            .await
            .map_err(server_error)?;
        Ok(PushedRequest {
            request_uri: format!(
                "{}{}",
                authorize::REQUEST_URI_PREFIX,
                generated.secret.expose()
            ),
            expires_in: PUSHED_SECONDS,
        })
    }

    /// The service principal exists and is enabled, assignment (if required) is
    /// given, and the scopes name at most one known resource.
    pub(crate) async fn check_app_access(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        app: &ApplicationData,
        scopes: &[String],
        resources: &[String],
    ) -> Result<(), OAuthError> {
        // A built-in application has no service principal (every tenant has it) and
        // asks only for sign-in and the management API.
        if is_management_client(app.app_id) {
            return check_builtin_request(app.app_id, scopes, resources);
        }
        let principal = reader
            .get_by_key1(tenant, Kind::ServicePrincipal, &app.app_id.to_string())
            .await
            .map_err(server_error)?
            .ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "the application has no service principal in this tenant",
                )
            })?;
        let principal: ServicePrincipalData = codec::data(&principal).map_err(server_error)?;
        if !principal.spec.account_enabled {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the application is disabled in this tenant",
            ));
        }
        self.check_resource(reader, tenant, scopes, resources).await
    }

    /// The scopes name at most one resource, and it exists here.
    pub(crate) async fn check_resource(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        scopes: &[String],
        resources: &[String],
    ) -> Result<(), OAuthError> {
        if let Some(resource) = requested_resource(scopes, resources)? {
            if resource == MANAGEMENT_RESOURCE {
                return Ok(());
            }
            let known = match resource_app_id(&resource) {
                Some(id) => application_by_app_id(reader, tenant, &id.to_string())
                    .await?
                    .is_some(),
                None => false,
            };
            if !known {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    format!("no resource {resource} in this tenant"),
                ));
            }
        }
        Ok(())
    }

    /// `GET /authorize/continue`: the pending request, after the user signed in.
    pub async fn authorize_continue(
        &self,
        ctx: &AuthorizeContext,
        pending: &str,
        session: Option<&SessionInfo>,
    ) -> AuthorizeOutcome {
        let (id, data) = match self.load_pending(ctx, pending).await {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let outcome = self
            .decide(
                ctx,
                data.request,
                data.confidential,
                session,
                Some((
                    SecretString::new(pending.to_string()),
                    data.reauthenticate_after,
                    data.step_up,
                )),
                self.now(),
            )
            .await;
        if matches!(outcome, AuthorizeOutcome::Respond { .. })
            && let Err(error) = self.store.session_delete(ctx.tenant, &id).await
        {
            tracing::warn!(%error, "cannot delete a finished authorization request");
        }
        outcome
    }

    /// Answers a valid request with what the session allows: a code, a sign-in, or
    /// an error. `pending` is the waiting request this continues, if any. The app
    /// sign-in step decides; this maps its verdict onto the protocol.
    async fn decide(
        &self,
        ctx: &AuthorizeContext,
        request: AuthorizationRequest,
        confidential: bool,
        session: Option<&SessionInfo>,
        pending: Option<(SecretString, Timestamp, bool)>,
        now: Timestamp,
    ) -> AuthorizeOutcome {
        let respond = |outcome: Result<&str, &OAuthError>, request: &AuthorizationRequest| {
            AuthorizeOutcome::Respond {
                redirect_uri: request.redirect_uri.clone(),
                response_mode: request.response_mode,
                params: authorize::response_parameters(
                    outcome,
                    request.state.as_deref(),
                    &ctx.issuer,
                ),
            }
        };
        let error = |code: ErrorCode, description: &str| OAuthError::new(code, description);
        // A claims challenge names a time already past (the change that ended
        // a token); one far ahead could never be met.
        if tessera_oauth::authorize::sign_in_after(request.claims.as_ref())
            .is_some_and(|at| at > self.now().unix_seconds() + 60)
        {
            return respond(
                Err(&error(
                    ErrorCode::InvalidRequest,
                    "claims: access_token.nbf is in the future",
                )),
                &request,
            );
        }
        let signed_in_after = pending.as_ref().map(|(_, after, _)| *after);
        let made_for_this = pending.as_ref().is_some_and(|(_, _, step_up)| *step_up);
        let access =
            match enforce::access_request(ctx, &request, session, signed_in_after, made_for_this) {
                Ok(access) => access,
                Err(error) => return respond(Err(&error), &request),
            };
        let decision = match self.app_sign_in.decide(&access).await {
            Ok(decision) => decision,
            Err(e) => return respond(Err(&server_error(e)), &request),
        };
        let prompt_none = request.prompt.contains(&Prompt::None);
        let session = match (session, &decision.verdict) {
            (_, Verdict::Unavailable) => {
                return respond(
                    Err(&error(
                        ErrorCode::UnauthorizedClient,
                        "the application is not available in this tenant",
                    )),
                    &request,
                );
            }
            (Some(session), verdict) if *verdict != Verdict::SignIn => session,
            _ => {
                if prompt_none {
                    return respond(
                        Err(&error(ErrorCode::LoginRequired, "the user must sign in")),
                        &request,
                    );
                }
                let login_hint = request.login_hint.clone();
                let secret = match pending {
                    Some((secret, _, _)) => secret,
                    None => match self
                        .save_pending(ctx.tenant, &request, confidential, now, false)
                        .await
                    {
                        Ok(secret) => secret,
                        Err(error) => return respond(Err(&error), &request),
                    },
                };
                return AuthorizeOutcome::SignIn {
                    pending: secret,
                    login_hint,
                    step_up: None,
                };
            }
        };
        if decision.verdict.is_conditional_access()
            && let Some(entry) = &decision.entry
            && let Err(error) = self.sign_in.append_log(ctx.tenant, entry).await
        {
            tracing::warn!(%error, "cannot log a Conditional Access interruption");
        }
        let AppDecision {
            verdict,
            app_name,
            contexts,
            decided,
            entry,
        } = decision;
        match verdict {
            Verdict::Allow => {
                let (Some(decided), Some(entry)) = (decided, entry) else {
                    return respond(
                        Err(&server_error("an allow without its decision")),
                        &request,
                    );
                };
                match self
                    .issue_code(
                        ctx,
                        &request,
                        confidential,
                        session,
                        &contexts,
                        now,
                        &decided,
                        entry,
                    )
                    .await
                {
                    Ok(code) => respond(Ok(code.expose()), &request),
                    Err(error) => respond(Err(&error), &request),
                }
            }
            // Answered above.
            Verdict::SignIn | Verdict::Unavailable => {
                respond(Err(&server_error("a verdict answered above")), &request)
            }
            Verdict::Block { reason } => {
                if prompt_none {
                    return respond(
                        Err(&OAuthError::new(ErrorCode::AccessDenied, reason)),
                        &request,
                    );
                }
                AuthorizeOutcome::Blocked {
                    client_name: app_name,
                    reason,
                    correlation_id: ctx.correlation_id.clone(),
                }
            }
            Verdict::StepUp { .. } | Verdict::AcceptTerms { .. } | Verdict::ChangePassword => {
                if prompt_none {
                    return respond(
                        Err(&error(
                            ErrorCode::InteractionRequired,
                            "Conditional Access needs the user",
                        )),
                        &request,
                    );
                }
                match self
                    .interrupt(ctx, &request, confidential, session, verdict, app_name, now)
                    .await
                {
                    Ok(outcome) => outcome,
                    Err(error) => respond(Err(&error), &request),
                }
            }
            Verdict::AuthenticationUnmet => respond(
                Err(&error(
                    ErrorCode::UnmetAuthenticationRequirements,
                    "the sign-in did not reach the required authentication level",
                )),
                &request,
            ),
            Verdict::NotAssigned => respond(
                Err(&error(
                    ErrorCode::AccessDenied,
                    "the application requires an assignment the user does not have",
                )),
                &request,
            ),
            Verdict::Consent { .. } | Verdict::NeedsAdminConsent if prompt_none => respond(
                Err(&error(
                    ErrorCode::ConsentRequired,
                    "the user has not consented to this application",
                )),
                &request,
            ),
            Verdict::NeedsAdminConsent => respond(
                Err(&error(
                    ErrorCode::AccessDenied,
                    "an administrator must approve this application's access",
                )),
                &request,
            ),
            Verdict::Consent { scopes } => {
                let secret = match pending {
                    Some((secret, _, _)) => secret,
                    None => match self
                        .save_pending(ctx.tenant, &request, confidential, session.auth_time, false)
                        .await
                    {
                        Ok(secret) => secret,
                        Err(error) => return respond(Err(&error), &request),
                    },
                };
                AuthorizeOutcome::Consent {
                    pending: secret,
                    client_name: app_name,
                    scopes,
                    csrf: session.csrf.clone(),
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn issue_code(
        &self,
        ctx: &AuthorizeContext,
        request: &AuthorizationRequest,
        confidential: bool,
        session: &SessionInfo,
        contexts: &AuthenticationContexts,
        now: Timestamp,
        decided: &crate::access::Decided,
        entry: crate::sign_in::SignInEntry,
    ) -> Result<SecretString, OAuthError> {
        let strengths = session.data.strengths.clone();
        // The acr the client asked for, when the sign-in satisfies it; else the
        // strongest of Tessera's own.
        let met_by_policies = decided
            .decision
            .met_auth_contexts(&decided.set, &request.wanted_acr_values());
        let acr = acr::issued_acr(
            &request.wanted_acr_values(),
            &strengths,
            contexts,
            &met_by_policies,
        );
        let acrs = acr::issued_acrs(&strengths, contexts, met_by_policies);
        let sign_in = UserSignIn {
            user_id: session.user_id,
            sid: crate::sign_in::lineage_of(session),
            auth_time: session.auth_time,
            amr: acr::amr_of(&session.methods, &strengths),
            acr,
            acrs,
            methods: session
                .methods
                .iter()
                .map(|m| m.method.mode.to_string())
                .collect(),
            strengths,
            session_controls: session_controls_claim(decided),
            location_fence: decided.location_fence.clone(),
            user_agent: ctx
                .user_agent
                .as_ref()
                .map(|ua| crate::sign_in::truncate(ua, 512)),
            device_thumbprint: ctx.device_thumbprint.clone(),
            sign_in_risk: session.data.sign_in_risk,
        };
        let generated = generate_secret("").map_err(server_error)?;
        let data = CodeData {
            request: request.clone(),
            confidential,
            sign_in,
        };
        let row = SessionRow {
            id: format!("{CODE_PREFIX}{}", generated.hash),
            user_id: Some(session.user_id),
            created: now,
            last_seen: now,
            expires: now.plus_seconds(CODE_SECONDS),
            revoked: None,
            version: 1,
            data: serde_json::to_string(&data).map_err(server_error)?,
        };
        self.store
            .session_insert(ctx.tenant, &row)
            .await
            .map_err(server_error)?;
        self.remember_app(session, &request.client_id).await;
        self.sign_in
            .append_log(ctx.tenant, &entry)
            .await
            .map_err(server_error)?;
        Ok(generated.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_redirects_are_desktop_clients() {
        use tessera_ca::engine::ClientApp;
        assert_eq!(
            client_app_of("https://app.contoso.com/cb"),
            ClientApp::Browser
        );
        assert_eq!(
            client_app_of("com.contoso.app:/oauth2redirect"),
            ClientApp::MobileAppsAndDesktopClients
        );
    }
}

//! Conditional Access at the authorization endpoint: the decision for a session's
//! sign-in to the requested application, what the user sees instead when it is not
//! an allow, and the sign-in log entries of user sign-ins to applications.

use tessera_authn::strength;
use tessera_core::{TenantId, Timestamp};
use tessera_directory::model::ApplicationData;
use tessera_oauth::authorize::{self, AuthorizationRequest, Prompt};
use tessera_oauth::error::ErrorCode;
use tessera_oauth::resource::{MANAGEMENT_RESOURCE, requested_resource, resource_app_id};
use tessera_oauth::token::OAuthError;
use uuid::Uuid;

use super::{AuthorizeContext, AuthorizeOutcome, StepUp, TermsToAccept, UserSignIn, client_app_of};
use crate::Oidc;
use crate::app_sign_in::{AccessRequest, Verdict};
use crate::codec;
use crate::oidc::{application_by_app_id, server_error};
use crate::sign_in::{SessionInfo, SignInEntry};

impl Oidc {
    /// Decides Conditional Access for a sign-in to the requested application;
    /// `Err` is what the user sees instead (a block page, a step-up, terms, a
    /// password change, or an error for the client).
    pub(super) async fn enforce_access(
        &self,
        ctx: &AuthorizeContext,
        request: &AuthorizationRequest,
        confidential: bool,
        session: &SessionInfo,
        made_for_this: bool,
        now: Timestamp,
    ) -> Result<crate::access::Decided, Box<AuthorizeOutcome>> {
        let respond = |error: OAuthError| {
            Box::new(AuthorizeOutcome::Respond {
                redirect_uri: request.redirect_uri.clone(),
                response_mode: request.response_mode,
                params: authorize::response_parameters(
                    Err(&error),
                    request.state.as_deref(),
                    &ctx.issuer,
                ),
            })
        };
        let decision = self
            .app_sign_in
            .decide(&access_request(ctx, request, session, made_for_this))
            .await
            .map_err(|e| respond(server_error(e)))?;
        let decided = decision.decided;
        if decision.verdict == Verdict::Allow {
            return Ok(decided);
        }
        let client_name = self
            .app_display_name(ctx.tenant, &request.client_id)
            .await
            .unwrap_or_else(|| request.client_id.clone());
        self.log_access_interruption(
            ctx,
            session,
            &request.client_id,
            &client_name,
            &decided,
            matches!(decision.verdict, Verdict::Block { .. }),
        )
        .await;
        if let Verdict::Block { reason } = decision.verdict {
            if request.prompt.contains(&Prompt::None) {
                return Err(respond(OAuthError::new(ErrorCode::AccessDenied, reason)));
            }
            return Err(Box::new(AuthorizeOutcome::Blocked {
                client_name,
                reason,
                correlation_id: ctx.correlation_id.clone(),
            }));
        }
        if request.prompt.contains(&Prompt::None) {
            return Err(respond(OAuthError::new(
                ErrorCode::InteractionRequired,
                "Conditional Access needs the user",
            )));
        }
        let step_up = matches!(decision.verdict, Verdict::StepUp { .. });
        // A step-up needs a new sign-in; terms and a password change go on with
        // this session.
        let after = if step_up { now } else { session.auth_time };
        let pending = self
            .save_pending(ctx.tenant, request, confidential, after, step_up)
            .await
            .map_err(respond)?;
        match decision.verdict {
            Verdict::StepUp { strengths } => Err(Box::new(AuthorizeOutcome::SignIn {
                pending,
                login_hint: Some(session.user_principal_name.clone()),
                step_up: Some(StepUp {
                    user_id: session.user_id,
                    user_principal_name: session.user_principal_name.clone(),
                    strengths,
                }),
            })),
            Verdict::AcceptTerms { terms } => {
                let terms = self
                    .access
                    .terms_by_id(ctx.tenant, &terms)
                    .await
                    .map_err(|e| respond(server_error(e)))?
                    .into_iter()
                    .map(|t| TermsToAccept {
                        id: t.id,
                        display_name: t.spec.display_name,
                        content: t.spec.content,
                    })
                    .collect();
                Err(Box::new(AuthorizeOutcome::AcceptTerms {
                    pending,
                    client_name,
                    terms,
                    csrf: session.csrf.clone(),
                }))
            }
            // Allow and block were answered above.
            Verdict::ChangePassword | Verdict::Allow | Verdict::Block { .. } => {
                Err(Box::new(AuthorizeOutcome::ChangePassword {
                    pending,
                    client_name,
                    csrf: session.csrf.clone(),
                }))
            }
        }
    }

    /// The Conditional Access decision for a session's sign-in to the requested
    /// application (no side effects).
    pub(super) async fn access_decision(
        &self,
        ctx: &AuthorizeContext,
        request: &AuthorizationRequest,
        session: &SessionInfo,
    ) -> crate::ServiceResult<crate::access::Decided> {
        self.app_sign_in
            .access_decision(&access_request(ctx, request, session, false))
            .await
    }

    /// A sign-in Conditional Access blocked or interrupted, for the sign-in log.
    async fn log_access_interruption(
        &self,
        ctx: &AuthorizeContext,
        session: &SessionInfo,
        client_id: &str,
        client_name: &str,
        decided: &crate::access::Decided,
        blocked: bool,
    ) {
        let sign_in = UserSignIn {
            user_id: session.user_id,
            sid: String::new(),
            auth_time: session.auth_time,
            amr: Vec::new(),
            acr: String::new(),
            acrs: Vec::new(),
            methods: session
                .methods
                .iter()
                .map(|m| m.method.mode.to_string())
                .collect(),
            strengths: session.data.strengths.clone(),
            session_controls: None,
            user_agent: None,
            device_thumbprint: None,
        };
        let mut entry = self.user_app_entry(
            &session.user_principal_name,
            &sign_in,
            client_name,
            client_id,
            &ctx.correlation_id,
            ctx.client_address.clone(),
            ctx.user_agent.clone(),
            "interactiveUser",
        );
        entry.result = if blocked { "failure" } else { "interrupted" }.to_string();
        entry.failure_code = Some(
            if blocked {
                crate::sign_in::failure::CA_BLOCKED
            } else {
                crate::sign_in::failure::CA_INTERRUPTED
            }
            .to_string(),
        );
        entry.failure_reason = Some(
            if blocked {
                "blocked by Conditional Access"
            } else {
                "Conditional Access asked for more"
            }
            .to_string(),
        );
        entry.conditional_access_status = Some(decided.status().to_string());
        entry.applied_conditional_access_policies = Some(decided.log_value());
        if let Err(error) = self.sign_in.append_log(ctx.tenant, &entry).await {
            tracing::warn!(%error, "cannot log a Conditional Access interruption");
        }
    }

    pub(crate) async fn app_display_name(
        &self,
        tenant: TenantId,
        client_id: &str,
    ) -> Option<String> {
        let mut reader = self.reader().await.ok()?;
        let app = application_by_app_id(reader.as_mut(), tenant, client_id)
            .await
            .ok()??;
        let data: ApplicationData = codec::data(&app).ok()?;
        Some(data.spec.display_name)
    }

    /// A successful user sign-in to an application, for the sign-in log.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn user_app_entry(
        &self,
        user_principal_name: &str,
        sign_in: &UserSignIn,
        app_name: &str,
        client_id: &str,
        correlation_id: &str,
        client_address: Option<String>,
        user_agent: Option<String>,
        event_type: &str,
    ) -> SignInEntry {
        SignInEntry {
            id: Uuid::new_v4(),
            created_date_time: self.now(),
            user_id: Some(sign_in.user_id),
            user_principal_name: user_principal_name.to_string(),
            app_display_name: crate::sign_in::truncate(app_name, 256),
            client_address,
            user_agent: user_agent.map(|ua| crate::sign_in::truncate(&ua, 512)),
            result: "success".to_string(),
            failure_code: None,
            failure_reason: None,
            authentication_methods: sign_in.methods.clone(),
            authentication_requirement: if sign_in.strengths.contains(&strength::MFA) {
                "multiFactorAuthentication"
            } else {
                "singleFactorAuthentication"
            }
            .to_string(),
            satisfied_strengths: sign_in.strengths.clone(),
            correlation_id: correlation_id.to_string(),
            sign_in_event_type: event_type.to_string(),
            app_id: Some(crate::sign_in::truncate(client_id, 64)),
            conditional_access_status: None,
            applied_conditional_access_policies: None,
            attempt_count: None,
            last_attempt_date_time: None,
        }
    }
}

/// An authorization request as the app sign-in step sees it.
fn access_request<'a>(
    ctx: &'a AuthorizeContext,
    request: &'a AuthorizationRequest,
    session: &'a SessionInfo,
    made_for_this: bool,
) -> AccessRequest<'a> {
    let resource = requested_resource(&request.scopes, &request.resources)
        .ok()
        .flatten();
    AccessRequest {
        tenant: ctx.tenant,
        session,
        client_id: &request.client_id,
        resource_app: resource.as_deref().and_then(resource_app_id),
        management: resource.as_deref() == Some(MANAGEMENT_RESOURCE),
        client_app: client_app_of(&request.redirect_uri),
        wanted_acr: request.wanted_acr_values(),
        client_address: ctx.client_address.as_deref(),
        user_agent: ctx.user_agent.as_deref(),
        device_thumbprint: ctx.device_thumbprint.as_deref(),
        made_for_this,
    }
}

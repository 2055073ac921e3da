//! The authorization endpoint's side of the app sign-in step: the request as that
//! step sees it, what the user sees when Conditional Access asks for more, and the
//! sign-in log entries of the other user sign-ins to applications.

use tessera_core::{TenantId, Timestamp};
use tessera_directory::model::ApplicationData;
use tessera_oauth::authorize::{AuthorizationRequest, Prompt};
use tessera_oauth::error::ErrorCode;
use tessera_oauth::resource::{
    MANAGEMENT_RESOURCE, consent_scopes, requested_resource, resource_app_id,
};
use tessera_oauth::token::OAuthError;

use super::{AuthorizeContext, AuthorizeOutcome, StepUp, TermsToAccept, UserSignIn, client_app_of};
use crate::Oidc;
use crate::app_sign_in::{AccessRequest, AppEntry, Demands, Verdict, app_entry};
use crate::codec;
use crate::oidc::{application_by_app_id, server_error};
use crate::sign_in::{SessionInfo, SignInEntry};

impl Oidc {
    /// What the user sees when Conditional Access asks for more: a step-up sign-in,
    /// terms of use or a password change, with the request waiting under a new
    /// pending id.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn interrupt(
        &self,
        ctx: &AuthorizeContext,
        request: &AuthorizationRequest,
        confidential: bool,
        session: &SessionInfo,
        verdict: Verdict,
        client_name: String,
        now: Timestamp,
    ) -> Result<AuthorizeOutcome, OAuthError> {
        let step_up = matches!(verdict, Verdict::StepUp { .. });
        // A step-up needs a new sign-in; terms and a password change go on with
        // this session.
        let after = if step_up { now } else { session.auth_time };
        let pending = self
            .save_pending(ctx.tenant, request, confidential, after, step_up)
            .await?;
        Ok(match verdict {
            Verdict::StepUp { strengths } => AuthorizeOutcome::SignIn {
                pending,
                login_hint: Some(session.user_principal_name.clone()),
                step_up: Some(StepUp {
                    user_id: session.user_id,
                    user_principal_name: session.user_principal_name.clone(),
                    strengths,
                }),
            },
            Verdict::AcceptTerms { terms } => {
                let terms = self
                    .access
                    .terms_by_id(ctx.tenant, &terms)
                    .await
                    .map_err(server_error)?
                    .into_iter()
                    .map(|t| TermsToAccept {
                        id: t.id,
                        display_name: t.spec.display_name,
                        content: t.spec.content,
                    })
                    .collect();
                AuthorizeOutcome::AcceptTerms {
                    pending,
                    client_name,
                    terms,
                    csrf: session.csrf.clone(),
                }
            }
            _ => AuthorizeOutcome::ChangePassword {
                pending,
                client_name,
                csrf: session.csrf.clone(),
            },
        })
    }

    /// The Conditional Access decision for a session's sign-in to the requested
    /// application (no side effects).
    pub(super) async fn access_decision(
        &self,
        ctx: &AuthorizeContext,
        request: &AuthorizationRequest,
        session: &SessionInfo,
    ) -> crate::ServiceResult<Option<crate::access::Decided>> {
        let Ok(access) = access_request(ctx, request, Some(session), None, false) else {
            return Ok(None);
        };
        self.app_sign_in.access_decision(&access).await
    }

    pub(crate) async fn app_display_name(
        &self,
        tenant: TenantId,
        client_id: &str,
    ) -> Option<String> {
        if let Some(name) = client_id
            .parse()
            .ok()
            .and_then(crate::directory::builtin::builtin_name)
        {
            return Some(name.to_string());
        }
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
        app_entry(
            self.now(),
            AppEntry {
                user_id: sign_in.user_id,
                user_principal_name,
                methods: sign_in.methods.clone(),
                strengths: &sign_in.strengths,
                app_name,
                client_id,
                correlation_id,
                client_address,
                user_agent,
                event_type,
            },
        )
    }
}

/// An authorization request as the app sign-in step sees it.
pub(super) fn access_request<'a>(
    ctx: &'a AuthorizeContext,
    request: &'a AuthorizationRequest,
    session: Option<&'a SessionInfo>,
    signed_in_after: Option<Timestamp>,
    made_for_this: bool,
) -> Result<AccessRequest<'a>, OAuthError> {
    // The endpoint found the application by this id, so it parses.
    let client_id = request
        .client_id
        .parse()
        .map_err(|_| OAuthError::new(ErrorCode::InvalidClient, "unknown client"))?;
    let resource = requested_resource(&request.scopes, &request.resources)
        .ok()
        .flatten();
    Ok(AccessRequest {
        tenant: ctx.tenant,
        session,
        demands: Demands {
            signed_in_after,
            login_hint: request.login_hint.clone(),
            max_age: request.max_age,
            fresh: request.prompt.contains(&Prompt::Login),
            // A claims challenge (continuous access evaluation) asks for a
            // sign-in after the change that ended the client's token.
            signed_in_since: tessera_oauth::authorize::sign_in_after(request.claims.as_ref())
                .map(|at| Timestamp::from_unix_micros(at.saturating_mul(1_000_000))),
        },
        client_id,
        resource_app: resource.as_deref().and_then(resource_app_id),
        management: resource.as_deref() == Some(MANAGEMENT_RESOURCE),
        client_app: client_app_of(&request.redirect_uri),
        wanted_acr: request.wanted_acr_values(),
        essential_acr: request.essential_acr_values(),
        permissions: consent_scopes(&request.scopes, &request.resources),
        reconsent: request.prompt.contains(&Prompt::Consent),
        correlation_id: &ctx.correlation_id,
        client_address: ctx.client_address.as_deref(),
        user_agent: ctx.user_agent.as_deref(),
        device_thumbprint: ctx.device_thumbprint.as_deref(),
        made_for_this,
    })
}

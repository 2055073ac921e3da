//! The user's answers to a pending request: consent, and the Conditional Access
//! interruptions answered on a page (terms of use, a password change); the request
//! then goes on.

use tessera_core::SecretString;
use tessera_oauth::authorize::{self, Prompt};
use tessera_oauth::error::ErrorCode;
use tessera_oauth::token::OAuthError;

use super::{AuthorizeContext, AuthorizeOutcome, InterruptionAnswer};
use crate::Oidc;
use crate::app_sign_in::Verdict;
use crate::oidc::server_error;
use crate::sign_in::SessionInfo;
use crate::sign_in::interruptions::AnswerRefused;

impl Oidc {
    /// `POST /authorize/consent`: the user's answer on the consent page.
    pub async fn consent(
        &self,
        ctx: &AuthorizeContext,
        pending: &str,
        session: &SessionInfo,
        approve: bool,
    ) -> AuthorizeOutcome {
        let (id, data) = match self.load_pending(ctx, pending).await {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let mut request = data.request;
        if !approve {
            let _ = self.store.session_delete(ctx.tenant, &id).await;
            return AuthorizeOutcome::Respond {
                redirect_uri: request.redirect_uri.clone(),
                response_mode: request.response_mode,
                params: authorize::response_parameters(
                    Err(&OAuthError::new(
                        ErrorCode::AccessDenied,
                        "the user declined",
                    )),
                    request.state.as_deref(),
                    &ctx.issuer,
                ),
            };
        }
        // What the user may consent to is decided again, not taken from the page
        // (it may be old): only a request whose verdict asks this user for consent
        // records any, and exactly what it asks. Conditional Access, assignment and
        // the tenant's consent policy come first.
        let access = match super::enforce::access_request(
            ctx,
            &request,
            Some(session),
            Some(data.reauthenticate_after),
            data.step_up,
        ) {
            Ok(access) => access,
            Err(error) => return AuthorizeOutcome::Refused(error),
        };
        let decision = self.app_sign_in.decide(&access).await;
        match decision.map(|d| d.verdict) {
            Ok(Verdict::Consent { scopes }) => {
                if let Ok(client) = request.client_id.parse::<tessera_core::AppId>() {
                    let context = match self
                        .sign_in
                        .session_context(
                            session,
                            ctx.correlation_id.clone(),
                            ctx.client_address.clone(),
                        )
                        .await
                    {
                        Ok(context) => context,
                        Err(error) => return AuthorizeOutcome::Refused(server_error(error)),
                    };
                    if let Err(error) = self
                        .directory
                        .record_user_consent(&context, client, session.user_id, &scopes)
                        .await
                    {
                        return AuthorizeOutcome::Refused(server_error(error));
                    }
                }
            }
            Ok(Verdict::NeedsAdminConsent) => {
                return AuthorizeOutcome::Refused(OAuthError::new(
                    ErrorCode::AccessDenied,
                    "an administrator must approve this application's access",
                ));
            }
            // Nothing to consent to now: the request goes on to its verdict.
            Ok(_) => {}
            Err(error) => return AuthorizeOutcome::Refused(server_error(error)),
        }
        // Consent is given: prompt=consent is satisfied.
        request.prompt.retain(|p| *p != Prompt::Consent);
        let outcome = self
            .decide(
                ctx,
                request,
                data.confidential,
                Some(session),
                Some((
                    SecretString::new(pending.to_string()),
                    data.reauthenticate_after,
                    data.step_up,
                )),
                self.now(),
            )
            .await;
        if matches!(outcome, AuthorizeOutcome::Respond { .. }) {
            let _ = self.store.session_delete(ctx.tenant, &id).await;
        }
        outcome
    }

    /// `POST /authorize/terms` and `/authorize/password`: the user's answer to a
    /// Conditional Access interruption; the request then goes on.
    pub async fn interruption(
        &self,
        ctx: &AuthorizeContext,
        pending: &str,
        session: &SessionInfo,
        answer: InterruptionAnswer,
    ) -> AuthorizeOutcome {
        let (id, data) = match self.load_pending(ctx, pending).await {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        // What the policies ask is decided again, not taken from the page: only an
        // interruption that asks for terms (or a password change) is answered here.
        let asked = match self.access_decision(ctx, &data.request, session).await {
            Ok(Some(decided)) if decided.decision.outcome == tessera_ca::Outcome::Interrupt => {
                decided.decision.remedy(&decided.set)
            }
            Ok(_) => Default::default(),
            Err(error) => return AuthorizeOutcome::Refused(server_error(error)),
        };
        let session = match self
            .sign_in
            .answer_interruption(
                session,
                &asked,
                answer,
                &ctx.correlation_id,
                ctx.client_address.clone(),
            )
            .await
        {
            Ok(session) => session,
            Err(AnswerRefused::NotAsked) => {
                return AuthorizeOutcome::Refused(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "no password change is asked for this sign-in: go back to the application and start again",
                ));
            }
            Err(AnswerRefused::Password(message)) => {
                return AuthorizeOutcome::PasswordRefused { message };
            }
            Err(AnswerRefused::Failed(error)) => {
                return AuthorizeOutcome::Refused(server_error(error));
            }
        };
        let outcome = self
            .decide(
                ctx,
                data.request,
                data.confidential,
                Some(&session),
                Some((
                    SecretString::new(pending.to_string()),
                    data.reauthenticate_after,
                    data.step_up,
                )),
                self.now(),
            )
            .await;
        if matches!(outcome, AuthorizeOutcome::Respond { .. }) {
            let _ = self.store.session_delete(ctx.tenant, &id).await;
        }
        outcome
    }
}

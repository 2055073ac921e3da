//! Passkeys: the options for the browser, and the assertion it answers with.

use serde_json::Value;
use tessera_authn::passkey::PasskeyError;
use tessera_authn::strength::Mode;

use super::{EXPIRED, NOT_ALLOWED, PASSKEY_WRONG, SignInOutcome, used};
use crate::SignIn;
use crate::directory::auth_methods::{MethodData, method_by_key};
use crate::error::{ServiceError, ServiceResult};
use crate::sign_in::{SignInContext, failure};

impl SignIn {
    /// Options for `navigator.credentials.get`, for the passkey button or autofill.
    pub async fn passkey_options(
        &self,
        ctx: &SignInContext,
        secret: &str,
    ) -> ServiceResult<Option<Value>> {
        if self.load_flow(ctx, secret).await?.is_none() {
            return Ok(None);
        }
        let (options, state) = self
            .authn
            .relying_party()?
            .start()
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let saved = self
            .change_flow(ctx, secret, |flow| {
                flow.data.passkey_state = Some(state.clone())
            })
            .await?;
        Ok(saved.map(|_| options))
    }

    /// A passkey assertion: a complete sign-in on its own (or the second factor after
    /// a password).
    pub async fn submit_passkey(
        &self,
        ctx: &SignInContext,
        secret: &str,
        response: &str,
    ) -> ServiceResult<Option<SignInOutcome>> {
        let Some(mut flow) = self.load_flow(ctx, secret).await? else {
            return Ok(None);
        };
        let Some(challenge) = flow.data.passkey_state.take() else {
            return Ok(Some(
                self.fail(ctx, &flow, failure::PASSKEY_FAILED, EXPIRED)
                    .await?,
            ));
        };
        // The challenge is used up whatever happens next.
        self.save_flow(ctx, &mut flow).await?;
        let rp = self.authn.relying_party()?;
        let (user_id, credential_id) = match rp.identify(response) {
            Ok(found) => found,
            Err(error) => {
                tracing::info!(correlation_id = %ctx.correlation_id, %error, "passkey response refused");
                return Ok(Some(
                    self.fail(ctx, &flow, failure::PASSKEY_FAILED, PASSKEY_WRONG)
                        .await?,
                ));
            }
        };
        let mut reader = self.reader().await?;
        let method = method_by_key(
            reader.as_mut(),
            ctx.tenant,
            &format!("fido2:{credential_id}"),
        )
        .await?;
        drop(reader);
        let method =
            method.filter(|m| m.record.key2.as_deref() == Some(user_id.to_string().as_str()));
        let Some(method) = method else {
            return Ok(Some(
                self.fail(ctx, &flow, failure::PASSKEY_UNKNOWN, PASSKEY_WRONG)
                    .await?,
            ));
        };
        // As a second factor or in a step-up, the passkey must be that user's.
        if flow.data.state.admits_passkey_of(user_id).is_err() {
            return Ok(Some(
                self.fail(ctx, &flow, failure::PASSKEY_UNKNOWN, PASSKEY_WRONG)
                    .await?,
            ));
        }
        let Some(subject) = self.subject(ctx, user_id).await? else {
            return Ok(Some(
                self.fail(ctx, &flow, failure::PASSKEY_UNKNOWN, PASSKEY_WRONG)
                    .await?,
            ));
        };
        if flow
            .data
            .state
            .passkey_user(user_id, &subject.spec.user_principal_name)
            .is_err()
        {
            return Ok(Some(
                self.fail(ctx, &flow, failure::PASSKEY_UNKNOWN, PASSKEY_WRONG)
                    .await?,
            ));
        }
        let MethodData::Fido2 {
            credential, aaguid, ..
        } = &method.data
        else {
            return Ok(Some(
                self.fail(ctx, &flow, failure::PASSKEY_UNKNOWN, PASSKEY_WRONG)
                    .await?,
            ));
        };
        let asserted = match rp.finish_sign_in(response, &challenge, credential) {
            Ok(asserted) => asserted,
            Err(PasskeyError::Malformed(error) | PasskeyError::Rejected(error)) => {
                tracing::info!(correlation_id = %ctx.correlation_id, %error, "passkey assertion refused");
                return Ok(Some(
                    self.fail(ctx, &flow, failure::PASSKEY_FAILED, PASSKEY_WRONG)
                        .await?,
                ));
            }
            Err(error) => return Err(ServiceError::Internal(error.to_string())),
        };
        if !subject.spec.account_enabled {
            return Ok(Some(
                self.fail(ctx, &flow, failure::ACCOUNT_DISABLED, PASSKEY_WRONG)
                    .await?,
            ));
        }
        if !subject.allowed(Mode::Fido2) {
            return Ok(Some(
                self.fail(ctx, &flow, failure::METHOD_NOT_ALLOWED, NOT_ALLOWED)
                    .await?,
            ));
        }
        let now = self.now();
        if asserted.counter > 0
            && !self
                .store
                .counter_advance(
                    ctx.tenant,
                    &format!("fido2-counter:{}", method.record.id),
                    i64::from(asserted.counter),
                    now,
                )
                .await?
        {
            tracing::warn!(correlation_id = %ctx.correlation_id, user = %user_id, method = %method.record.id,
                "passkey signature counter did not increase: the authenticator may be cloned");
            return Ok(Some(
                self.fail(ctx, &flow, failure::PASSKEY_CLONED, PASSKEY_WRONG)
                    .await?,
            ));
        }
        let mut use_ = used(Mode::Fido2, Some(method.record.id), now);
        use_.method.aaguid = Some(*aaguid);
        let refused = (failure::PASSKEY_UNKNOWN, PASSKEY_WRONG);
        Ok(Some(
            self.verified(ctx, flow, &subject, use_, refused).await?,
        ))
    }
}

//! The secrets a user types: a password (also for the password grant), a
//! temporary access pass, an authenticator app's code.

use tessera_authn::flow::typed_name;
use tessera_authn::registration::MethodUse;
use tessera_authn::strength::Mode;
use tessera_authn::tap::{self, Usability};
use tessera_authn::{hashing, totp};
use tessera_core::SecretString;
use tessera_store::Kind;
use uuid::Uuid;

use super::{NOT_ALLOWED, SignInOutcome, Subject, WRONG, used};
use crate::SignIn;
use crate::directory::auth_methods::MethodData;
use crate::error::{ServiceError, ServiceResult};
use crate::sign_in::{Logged, SignInContext, failure, totp_parameters};

impl SignIn {
    /// Step 2: a password.
    pub async fn submit_password(
        &self,
        ctx: &SignInContext,
        secret: &str,
        password: SecretString,
    ) -> ServiceResult<Option<SignInOutcome>> {
        let Some(flow) = self.load_flow(ctx, secret).await? else {
            return Ok(None);
        };
        if flow.data.state.admits(Mode::Password).is_err() || password.expose().len() > 1024 {
            return Ok(Some(
                self.fail(ctx, &flow, failure::INVALID_CREDENTIALS, WRONG)
                    .await?,
            ));
        }
        let subject = match flow.data.state.user_id() {
            Some(user) => self.subject(ctx, user).await?,
            None => None,
        };
        match self.check_password(ctx, subject.as_ref(), password).await? {
            Ok(method_id) => {
                let Some(subject) = subject else {
                    return Err(ServiceError::Internal(
                        "a password matched no user".to_string(),
                    ));
                };
                let method = used(Mode::Password, Some(method_id), self.now());
                let refused = (failure::INVALID_CREDENTIALS, WRONG);
                Ok(Some(
                    self.verified(ctx, flow, &subject, method, refused).await?,
                ))
            }
            Err((code, message)) => Ok(Some(self.fail(ctx, &flow, code, message).await?)),
        }
    }

    /// Checks a password for a user (`None`: no such user, which costs the same),
    /// counting the attempt against lockout first: the password method's id, or
    /// the failure code and the message for the person.
    async fn check_password(
        &self,
        ctx: &SignInContext,
        subject: Option<&Subject>,
        password: SecretString,
    ) -> ServiceResult<Result<Uuid, (&'static str, &'static str)>> {
        let stored = subject.and_then(|s| {
            s.methods.iter().find_map(|m| match &m.data {
                MethodData::Password { hash } => Some((m.record.id, hash.clone())),
                _ => None,
            })
        });
        if let Some(subject) = subject
            && !self.reserve_attempt(ctx, subject).await?
        {
            self.decoy_check().await?;
            return Ok(Err((failure::ACCOUNT_LOCKED, WRONG)));
        }
        let hash = stored
            .as_ref()
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| hashing::decoy().to_string());
        // Kept to be looked up in the breached-password list if it is right.
        let candidate = self
            .settings
            .breached_passwords
            .is_some()
            .then(|| password.clone());
        let matches = self
            .authn
            .hash_work(move || hashing::verify(password.expose(), &hash))
            .await?;
        let (Some(subject), Some((method_id, _)), true) = (subject, stored, matches) else {
            return Ok(Err((failure::INVALID_CREDENTIALS, WRONG)));
        };
        if !subject.spec.account_enabled {
            return Ok(Err((failure::ACCOUNT_DISABLED, WRONG)));
        }
        if !subject.allowed(Mode::Password) {
            return Ok(Err((failure::METHOD_NOT_ALLOWED, NOT_ALLOWED)));
        }
        // A right password that is in the breached list is a leaked credential
        // (user risk), recorded at once. Never a reason to fail the sign-in.
        if let Some(candidate) = candidate {
            match self.is_breached(&candidate).await {
                Ok(true) => {
                    let recorded = self
                        .risk
                        .record_leaked(
                            ctx.tenant,
                            subject.user_id,
                            &subject.spec.user_principal_name,
                            (&ctx.correlation_id, ctx.client_address.as_deref()),
                        )
                        .await;
                    if let Err(error) = recorded {
                        tracing::warn!(%error, "cannot record a leaked password");
                    }
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "cannot look a password up in the breached list")
                }
            }
        }
        Ok(Ok(method_id))
    }

    /// A user name and password outside any page: the legacy resource-owner
    /// password grant. The same lockout, decoy cost and sign-in log as the pages;
    /// the user, their principal name and the method used, or the failure code.
    pub(crate) async fn authenticate_password(
        &self,
        ctx: &SignInContext,
        name: &str,
        password: SecretString,
    ) -> ServiceResult<Result<(Uuid, String, MethodUse), &'static str>> {
        let name = typed_name(name);
        if password.expose().len() > 1024 {
            return Ok(Err(failure::INVALID_CREDENTIALS));
        }
        let mut reader = self.reader().await?;
        let user = reader
            .get_by_key1(ctx.tenant, Kind::User, &name.to_lowercase())
            .await?;
        drop(reader);
        let subject = match user {
            Some(record) => self.subject(ctx, record.id).await?,
            None => None,
        };
        match self.check_password(ctx, subject.as_ref(), password).await? {
            Ok(method_id) => {
                let Some(subject) = subject else {
                    return Err(ServiceError::Internal(
                        "a password matched no user".to_string(),
                    ));
                };
                let method = used(Mode::Password, Some(method_id), self.now());
                let lockout_key = self.lockout_key(ctx, subject.user_id).await?;
                self.store.counter_delete(ctx.tenant, &lockout_key).await?;
                Ok(Ok((
                    subject.user_id,
                    subject.spec.user_principal_name.clone(),
                    method,
                )))
            }
            Err((code, _)) => {
                self.log_attempt(
                    ctx,
                    subject.as_ref().map(|s| s.user_id),
                    &name,
                    &[],
                    Logged::Failure(code),
                )
                .await?;
                Ok(Err(code))
            }
        }
    }

    /// A temporary access pass, as a first factor.
    pub async fn submit_pass(
        &self,
        ctx: &SignInContext,
        secret: &str,
        pass: SecretString,
    ) -> ServiceResult<Option<SignInOutcome>> {
        let Some(flow) = self.load_flow(ctx, secret).await? else {
            return Ok(None);
        };
        let admitted = flow.data.state.admits(Mode::TemporaryAccessPassOneTime);
        let subject = match (admitted, flow.data.state.user_id()) {
            (Ok(()), Some(user)) => self.subject(ctx, user).await?,
            _ => None,
        };
        let Some(subject) = subject else {
            // Unknown names cost a hash too.
            self.decoy_check().await?;
            return Ok(Some(
                self.fail(ctx, &flow, failure::INVALID_CREDENTIALS, WRONG)
                    .await?,
            ));
        };
        if !self.reserve_attempt(ctx, &subject).await? {
            self.decoy_check().await?;
            return Ok(Some(
                self.fail(ctx, &flow, failure::ACCOUNT_LOCKED, WRONG)
                    .await?,
            ));
        }
        let stored = subject.methods.iter().find_map(|m| match &m.data {
            MethodData::TemporaryAccessPass { pass, .. } => Some((m.record.id, pass.clone())),
            _ => None,
        });
        let typed = tap::normalize_input(pass.expose());
        let hash = stored
            .as_ref()
            .map(|(_, p)| p.hash.clone())
            .unwrap_or_else(|| hashing::decoy().to_string());
        let matches = if typed.len() > 64 {
            false
        } else {
            self.authn
                .hash_work(move || hashing::verify(&typed, &hash))
                .await?
        };
        let Some((method_id, stored)) = stored.filter(|_| matches) else {
            return Ok(Some(
                self.fail(ctx, &flow, failure::INVALID_CREDENTIALS, WRONG)
                    .await?,
            ));
        };
        if !subject.spec.account_enabled {
            return Ok(Some(
                self.fail(ctx, &flow, failure::ACCOUNT_DISABLED, WRONG)
                    .await?,
            ));
        }
        let now = self.now();
        if stored.usability(now) != Usability::Usable {
            return Ok(Some(
                self.fail(ctx, &flow, failure::PASS_NOT_USABLE, WRONG)
                    .await?,
            ));
        }
        let mode = if stored.is_usable_once {
            Mode::TemporaryAccessPassOneTime
        } else {
            Mode::TemporaryAccessPassMultiUse
        };
        if !subject.allowed(mode) {
            return Ok(Some(
                self.fail(ctx, &flow, failure::METHOD_NOT_ALLOWED, NOT_ALLOWED)
                    .await?,
            ));
        }
        if stored.is_usable_once
            && !self
                .store
                .counter_take(ctx.tenant, &format!("tap-use:{method_id}"), 1, now)
                .await?
        {
            return Ok(Some(
                self.fail(ctx, &flow, failure::PASS_NOT_USABLE, WRONG)
                    .await?,
            ));
        }
        let method = used(mode, Some(method_id), now);
        let refused = (failure::INVALID_CREDENTIALS, WRONG);
        Ok(Some(
            self.verified(ctx, flow, &subject, method, refused).await?,
        ))
    }

    /// A TOTP code, as a second factor.
    pub async fn submit_code(
        &self,
        ctx: &SignInContext,
        secret: &str,
        code: &str,
    ) -> ServiceResult<Option<SignInOutcome>> {
        let Some(flow) = self.load_flow(ctx, secret).await? else {
            return Ok(None);
        };
        let subject = match (
            flow.data.state.admits(Mode::SoftwareOath),
            flow.data.state.user_id(),
        ) {
            (Ok(()), Some(user)) => self.subject(ctx, user).await?,
            _ => None,
        };
        let Some(subject) = subject.filter(|s| s.has(Mode::SoftwareOath)) else {
            return Ok(Some(
                self.fail(ctx, &flow, failure::INVALID_CODE, WRONG).await?,
            ));
        };
        if !self.reserve_attempt(ctx, &subject).await? {
            return Ok(Some(
                self.fail(ctx, &flow, failure::ACCOUNT_LOCKED, WRONG)
                    .await?,
            ));
        }
        let now = self.now();
        let mut replayed = false;
        for method in &subject.methods {
            let MethodData::SoftwareOath {
                sealed_secret,
                algorithm,
                digits,
                period,
                ..
            } = &method.data
            else {
                continue;
            };
            let seed = self
                .settings
                .sealing_key
                .open(sealed_secret, &format!("totp:{}", method.record.id))
                .map_err(|e| {
                    ServiceError::Internal(format!("a TOTP seed cannot be opened: {e}"))
                })?;
            let counter_key = format!("totp-step:{}", method.record.id);
            let last = self.store.counter_get(ctx.tenant, &counter_key).await?;
            let parameters = totp_parameters(*algorithm, *digits, *period);
            let verdict = totp::verify(
                &seed,
                &parameters,
                code,
                now.unix_seconds().max(0) as u64,
                last.map(|c| c.value.max(0) as u64),
            );
            match verdict {
                totp::Verification::Accepted { step } => {
                    // Atomic: of two requests with the same code, one wins.
                    let step = i64::try_from(step).unwrap_or(i64::MAX);
                    if self
                        .store
                        .counter_advance(ctx.tenant, &counter_key, step, now)
                        .await?
                    {
                        let method = used(Mode::SoftwareOath, Some(method.record.id), now);
                        let refused = (failure::INVALID_CODE, WRONG);
                        return Ok(Some(
                            self.verified(ctx, flow, &subject, method, refused).await?,
                        ));
                    }
                    replayed = true;
                }
                totp::Verification::Replayed => replayed = true,
                totp::Verification::Rejected => {}
            }
        }
        let code = if replayed {
            failure::CODE_REPLAYED
        } else {
            failure::INVALID_CODE
        };
        Ok(Some(self.fail(ctx, &flow, code, WRONG).await?))
    }
}

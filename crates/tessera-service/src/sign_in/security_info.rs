//! Security info: a signed-in user lists, adds and removes their own methods. Every
//! change needs the registration gate (a recent sign-in of the configured strength,
//! or a temporary access pass) and is an audited directory change.

use serde::Serialize;
use serde_json::Value;
use tessera_authn::password::{self, Refusal};
use tessera_authn::policy::MethodsPolicy;
use tessera_authn::registration::{self, Gate};
use tessera_authn::strength::{self, Mode};
use tessera_authn::{hashing, qr, totp};
use tessera_core::SecretString;
use tessera_directory::audit_action::AuditAction;
use tessera_directory::model::UserSpec;
use tessera_store::Kind;
use uuid::Uuid;

use super::random_bytes;
use super::sessions::SessionInfo;
use super::{load_policy, load_strength};
use crate::codec;
use crate::directory::auth_methods::{MethodData, StoredMethod, method_record, methods_of};
use crate::directory::groups::containing_groups;
use crate::error::{OrConflict, ServiceError, ServiceResult};
use crate::risk::Remediation;
use crate::{Context, EventDraft, SignIn};

/// What the page shows to enrol an authenticator app.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrolment {
    /// The seed in base32, for typing in by hand.
    pub secret: String,
    pub uri: String,
    /// The `otpauth://` URI as an SVG QR code.
    pub qr_svg: String,
}

pub struct PasskeyChallenge {
    pub options: Value,
}

const MAX_DISPLAY_NAME: usize = 64;

fn display_name(text: &str, default: &str) -> ServiceResult<String> {
    let name = text.trim();
    if name.is_empty() {
        return Ok(default.to_string());
    }
    if name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "displayName",
            "must be at most 64 printable characters",
        ));
    }
    Ok(name.to_string())
}

impl SignIn {
    pub async fn my_methods(
        &self,
        session: &SessionInfo,
    ) -> ServiceResult<Vec<super::AuthMethodView>> {
        let mut reader = self.reader().await?;
        let methods = methods_of(reader.as_mut(), session.tenant, session.user_id).await?;
        Ok(methods.iter().map(|m| m.view()).collect())
    }

    /// Refuses unless this session may change security info now.
    pub async fn security_info_gate(&self, session: &SessionInfo) -> ServiceResult<()> {
        let mut reader = self.reader().await?;
        let (policy, _) = load_policy(reader.as_mut(), session.tenant).await?;
        let configured = match policy.registration_strength {
            Some(id) => Some(
                load_strength(reader.as_mut(), session.tenant, id)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::Internal(
                            "the registration strength no longer exists".to_string(),
                        )
                    })?,
            ),
            None => None,
        };
        let methods = methods_of(reader.as_mut(), session.tenant, session.user_id).await?;
        let has_multi_factor = methods
            .iter()
            .any(crate::directory::auth_methods::proves_second_factor);
        let mfa = strength::built_in()
            .into_iter()
            .find(|s| s.id == strength::MFA)
            .ok_or_else(|| ServiceError::Internal("no built-in MFA strength".to_string()))?;
        match registration::gate(
            &session.methods,
            configured.as_ref(),
            &mfa,
            has_multi_factor,
            policy.registration_max_age_minutes,
            self.now(),
        ) {
            Gate::Open => self.registration_access(session).await,
            Gate::NeedsStrength { display_name, .. } => Err(ServiceError::Forbidden {
                reason: format!(
                    "to change your security info, sign in again with {display_name} (or a Temporary Access Pass)"
                ),
            }),
            Gate::NeedsRecentSignIn => Err(ServiceError::Forbidden {
                reason: "to change your security info, sign in again".to_string(),
            }),
        }
    }

    /// Conditional Access for the user action "register security information".
    async fn registration_access(&self, session: &SessionInfo) -> ServiceResult<()> {
        let password_changed = session
            .data
            .password_changed
            .is_some_and(|t| t >= session.auth_time);
        let mut reader = self.snapshot().await?;
        let facts = self
            .access
            .user_facts(
                reader.as_mut(),
                session.tenant,
                crate::access::UserAccess {
                    user: session.user_id,
                    target: tessera_ca::engine::Target::UserAction(
                        tessera_ca::engine::UserAction::RegisterSecurityInfo,
                    ),
                    auth_contexts: Vec::new(),
                    client_app: tessera_ca::engine::ClientApp::Browser,
                    client_address: session.data.client_address.as_deref(),
                    user_agent: session.data.user_agent.as_deref(),
                    device_thumbprint: None,
                    strengths: &session.data.strengths,
                    auth_time: Some(session.auth_time),
                    password_changed,
                    device_code_flow: false,
                    sign_in_risk: self
                        .risk
                        .address_risk(session.data.client_address.as_deref())
                        .max(
                            session
                                .data
                                .sign_in_risk
                                .unwrap_or(crate::risk::RiskLevel::None),
                        ),
                },
            )
            .await?;
        drop(reader);
        let decided = self.access.decide(session.tenant, &facts).await?;
        match decided.decision.outcome {
            tessera_ca::Outcome::Allow => Ok(()),
            tessera_ca::Outcome::Block => Err(ServiceError::Forbidden {
                reason: "your organization's access policies block changing security info from here".to_string(),
            }),
            tessera_ca::Outcome::Interrupt => Err(ServiceError::Forbidden {
                reason: "your organization's access policies ask for a stronger sign-in (or a trusted location) to change security info: sign in again".to_string(),
            }),
        }
    }

    async fn method_allowed(
        &self,
        session: &SessionInfo,
        mode: Mode,
    ) -> ServiceResult<MethodsPolicy> {
        let mut reader = self.reader().await?;
        let (policy, _) = load_policy(reader.as_mut(), session.tenant).await?;
        let groups = containing_groups(
            reader.as_mut(),
            session.tenant,
            session.user_id,
            true,
            self.now(),
        )
        .await?;
        if !policy.allows(mode, &groups) {
            return Err(ServiceError::Forbidden {
                reason: format!("the authentication methods policy does not allow {mode} for you"),
            });
        }
        Ok(policy)
    }

    async fn session_ctx(
        &self,
        session: &SessionInfo,
        correlation_id: &str,
    ) -> ServiceResult<Context> {
        self.session_context(
            session,
            correlation_id.to_string(),
            session.data.client_address.clone(),
        )
        .await
    }

    /// Starts enrolling an authenticator app.
    pub async fn begin_totp(&self, session: &SessionInfo) -> ServiceResult<TotpEnrolment> {
        self.security_info_gate(session).await?;
        self.method_allowed(session, Mode::SoftwareOath).await?;
        let seed = random_bytes::<{ totp::SECRET_BYTES }>()?;
        let mut data = session.data.clone();
        data.pending_totp = Some(
            self.settings
                .sealing_key
                .seal(&seed, &format!("pending-totp:{}", session.id))
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
        );
        self.save_session(session, &data).await?;
        let uri = totp::enrolment_uri(
            &self.settings.issuer_name,
            &session.user_principal_name,
            &seed,
            &totp::Parameters::default(),
        );
        let qr_svg = qr::svg(&uri).ok_or_else(|| {
            ServiceError::Internal("the enrolment URI does not fit a QR code".to_string())
        })?;
        Ok(TotpEnrolment {
            secret: totp::base32(&seed),
            uri,
            qr_svg,
        })
    }

    /// Finishes enrolling an authenticator app with a code from it.
    pub async fn confirm_totp(
        &self,
        session: &SessionInfo,
        correlation_id: &str,
        code: &str,
        name: &str,
    ) -> ServiceResult<super::AuthMethodView> {
        self.security_info_gate(session).await?;
        self.method_allowed(session, Mode::SoftwareOath).await?;
        let name = display_name(name, "Authenticator app")?;
        let Some(pending) = &session.data.pending_totp else {
            return Err(ServiceError::Conflict {
                message: "start adding an authenticator app first".to_string(),
            });
        };
        let seed = self
            .settings
            .sealing_key
            .open(pending, &format!("pending-totp:{}", session.id))
            .map_err(|_| ServiceError::Conflict {
                message: "start adding an authenticator app again".to_string(),
            })?;
        let parameters = totp::Parameters::default();
        let now = self.now();
        let step = match totp::verify(
            &seed,
            &parameters,
            code,
            now.unix_seconds().max(0) as u64,
            None,
        ) {
            totp::Verification::Accepted { step } => step,
            _ => {
                return Err(ServiceError::invalid(
                    "code",
                    "the code does not match; check the app's clock and try the current code",
                ));
            }
        };
        let id = Uuid::new_v4();
        let method = MethodData::SoftwareOath {
            display_name: name,
            sealed_secret: self
                .settings
                .sealing_key
                .seal(&seed, &format!("totp:{id}"))
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            algorithm: parameters.algorithm,
            digits: parameters.digits,
            period: parameters.period,
        };
        let ctx = self.session_ctx(session, correlation_id).await?;
        let view = self.add_method(&ctx, session.user_id, id, &method).await?;
        // The code used to confirm cannot be used again to sign in.
        self.store
            .counter_advance(
                session.tenant,
                &format!("totp-step:{id}"),
                i64::try_from(step).unwrap_or(i64::MAX),
                now,
            )
            .await?;
        let mut data = session.data.clone();
        data.pending_totp = None;
        if let Err(error) = self.save_session(session, &data).await {
            tracing::debug!(%error, "pending TOTP enrolment not cleared (the session changed)");
        }
        Ok(view)
    }

    /// Starts registering a passkey.
    pub async fn begin_passkey(&self, session: &SessionInfo) -> ServiceResult<PasskeyChallenge> {
        self.security_info_gate(session).await?;
        self.method_allowed(session, Mode::Fido2).await?;
        let mut reader = self.reader().await?;
        let existing: Vec<String> = methods_of(reader.as_mut(), session.tenant, session.user_id)
            .await?
            .into_iter()
            .filter_map(|m| match m.data {
                MethodData::Fido2 { credential, .. } => Some(credential),
                _ => None,
            })
            .collect();
        let user =
            codec::load(reader.as_mut(), session.tenant, Kind::User, session.user_id).await?;
        let spec: UserSpec = codec::data(&user)?;
        drop(reader);
        let (options, state) = self
            .authn
            .relying_party()?
            .start_registration(
                session.user_id,
                &spec.user_principal_name,
                &spec.display_name,
                &existing,
            )
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut data = session.data.clone();
        data.pending_passkey = Some(state);
        self.save_session(session, &data).await?;
        Ok(PasskeyChallenge { options })
    }

    /// Finishes registering a passkey with the browser's response.
    pub async fn finish_passkey(
        &self,
        session: &SessionInfo,
        correlation_id: &str,
        response: &str,
        name: &str,
    ) -> ServiceResult<super::AuthMethodView> {
        self.security_info_gate(session).await?;
        let policy = self.method_allowed(session, Mode::Fido2).await?;
        let name = display_name(name, "Passkey")?;
        let Some(state) = &session.data.pending_passkey else {
            return Err(ServiceError::Conflict {
                message: "start adding a passkey first".to_string(),
            });
        };
        // One attempt per challenge.
        let mut data = session.data.clone();
        data.pending_passkey = None;
        self.save_session(session, &data).await?;
        let registered = self
            .authn
            .relying_party()?
            .finish_registration(response, state)
            .map_err(|e| {
                ServiceError::invalid("response", format!("the passkey was not registered: {e}"))
            })?;
        if !policy.fido2.settings.admits(registered.aaguid) {
            return Err(ServiceError::Forbidden {
                reason: format!(
                    "this authenticator model ({}) is not allowed by your organization's key restrictions",
                    registered.aaguid
                ),
            });
        }
        let method = MethodData::Fido2 {
            display_name: name,
            credential: registered.credential,
            credential_id: registered.credential_id,
            aaguid: registered.aaguid,
            backup_eligible: registered.backup_eligible,
        };
        let ctx = self.session_ctx(session, correlation_id).await?;
        let view = self
            .add_method(&ctx, session.user_id, Uuid::new_v4(), &method)
            .await?;
        self.remediated_in(&ctx, session, Remediation::PasskeyRegistered)
            .await;
        Ok(view)
    }

    /// Sets or changes the user's own password. With a password already set, the
    /// current one must be given too.
    pub async fn change_my_password(
        &self,
        session: &SessionInfo,
        correlation_id: &str,
        current: Option<SecretString>,
        new: SecretString,
    ) -> ServiceResult<()> {
        self.security_info_gate(session).await?;
        self.method_allowed(session, Mode::Password).await?;
        let mut reader = self.reader().await?;
        let existing = methods_of(reader.as_mut(), session.tenant, session.user_id)
            .await?
            .into_iter()
            .find_map(|m| match m.data {
                MethodData::Password { hash } => Some(hash),
                _ => None,
            });
        drop(reader);
        if let Some(hash) = existing {
            let Some(current) = current else {
                return Err(ServiceError::invalid(
                    "currentPassword",
                    "enter your current password",
                ));
            };
            let ok = self
                .authn
                .hash_work(move || hashing::verify(current.expose(), &hash))
                .await?;
            if !ok {
                return Err(ServiceError::invalid(
                    "currentPassword",
                    "the current password is not right",
                ));
            }
        }
        let ctx = self.session_ctx(session, correlation_id).await?;
        self.set_password(&ctx, session.user_id, new).await?;
        self.remediated_in(&ctx, session, Remediation::SecurePasswordChange)
            .await;
        self.end_other_sessions(session).await
    }

    /// The user did what remediates risk in a session: taken when the session
    /// met MFA, with a second factor registered before the risk.
    async fn remediated_in(&self, ctx: &Context, session: &SessionInfo, how: Remediation) {
        if !session.data.strengths.contains(&strength::MFA) {
            return;
        }
        let proven_since = match self.reader().await {
            Ok(mut reader) => methods_of(reader.as_mut(), session.tenant, session.user_id)
                .await
                .ok()
                .and_then(|methods| {
                    session
                        .data
                        .methods
                        .iter()
                        .filter(|used| used.method.mode != Mode::Password)
                        .filter_map(|used| match used.method.mode {
                            // A certificate is issued by the organization's
                            // authority, not registered by whoever signed in.
                            Mode::X509CertificateMultiFactor
                            | Mode::X509CertificateSingleFactor => {
                                Some(tessera_core::Timestamp::from_unix_micros(0))
                            }
                            _ => used
                                .method_id
                                .and_then(|id| methods.iter().find(|m| m.record.id == id))
                                .map(|m| m.record.created),
                        })
                        .min()
                }),
            Err(_) => None,
        };
        if let Err(error) = self
            .risk
            .remediate(ctx, session.user_id, how, proven_since)
            .await
        {
            tracing::warn!(tenant = %ctx.tenant, %error, "cannot record a remediation of user risk");
        }
    }

    /// An administrator reset the user's password: that remediates the
    /// user's risk, unless the administrator is the user. A failure to record
    /// it leaves them at risk (the safe side) and does not undo the reset.
    pub(crate) async fn reset_remediates(&self, ctx: &Context, user: Uuid) {
        if matches!(&ctx.caller.principal(), crate::Principal::User { id, .. } if *id == user) {
            return;
        }
        if let Err(error) = self
            .risk
            .remediate(
                ctx,
                user,
                Remediation::AdminGeneratedTemporaryPassword,
                None,
            )
            .await
        {
            tracing::warn!(tenant = %ctx.tenant, %error, "cannot record a remediation of user risk");
        }
    }

    /// After a credential change, every other session of the user ends (someone who
    /// took over a session does not keep it).
    async fn end_other_sessions(&self, session: &SessionInfo) -> ServiceResult<()> {
        self.end_user_sessions(
            session.tenant,
            session.user_id,
            Some(&session.id),
            tessera_cae::Reason::CredentialChange,
        )
        .await?;
        Ok(())
    }

    /// Removes one of the user's own methods.
    pub async fn remove_my_method(
        &self,
        session: &SessionInfo,
        correlation_id: &str,
        method: Uuid,
    ) -> ServiceResult<()> {
        self.security_info_gate(session).await?;
        let ctx = self.session_ctx(session, correlation_id).await?;
        self.delete_method(&ctx, session.user_id, method).await?;
        self.end_other_sessions(session).await
    }

    /// Checks a new password against the banned lists, the user's own names and the
    /// breached-password list; the message says what to change, not which term hit.
    pub(crate) async fn check_new_password(
        &self,
        reader: &mut dyn tessera_store::Reader,
        ctx: &Context,
        spec: &UserSpec,
        new: &SecretString,
    ) -> ServiceResult<()> {
        let (policy, _) = load_policy(reader, ctx.tenant).await?;
        let mut terms: Vec<String> = password::GLOBAL_BANNED
            .iter()
            .map(|t| t.to_string())
            .collect();
        terms.extend(policy.password.settings.custom_banned_terms.iter().cloned());
        let local = spec
            .user_principal_name
            .split('@')
            .next()
            .unwrap_or_default();
        for name in [
            Some(local),
            Some(spec.display_name.as_str()),
            spec.given_name.as_deref(),
            spec.surname.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            terms.extend(
                name.split(|c: char| !c.is_alphanumeric())
                    .filter(|t| t.chars().count() >= password::MIN_TERM_LENGTH)
                    .map(str::to_string),
            );
        }
        let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
        match password::check(new.expose(), &refs) {
            Ok(()) => {}
            Err(Refusal::TooShort { minimum }) => {
                return Err(ServiceError::invalid(
                    "password",
                    format!("must be at least {minimum} characters"),
                ));
            }
            Err(Refusal::TooLong { maximum }) => {
                return Err(ServiceError::invalid(
                    "password",
                    format!("must be at most {maximum} characters"),
                ));
            }
            Err(Refusal::TooWeak { banned_terms, .. }) => {
                tracing::info!(correlation_id = %ctx.correlation_id, banned = banned_terms.len(), "password refused as too predictable");
                return Err(ServiceError::invalid(
                    "password",
                    "is too easy to guess: avoid common words, names and your organization's name, or make it longer",
                ));
            }
        }
        if self.is_breached(new).await? {
            return Err(ServiceError::invalid(
                "password",
                "appears in a list of passwords exposed in data breaches; choose another",
            ));
        }
        Ok(())
    }

    pub(crate) async fn is_breached(&self, candidate: &SecretString) -> ServiceResult<bool> {
        self.settings.breached(candidate).await
    }

    /// Hashes and stores a user's password (replacing the old one), audited.
    pub(crate) async fn set_password(
        &self,
        ctx: &Context,
        user: Uuid,
        new: SecretString,
    ) -> ServiceResult<()> {
        let mut reader = self.reader().await?;
        let record = codec::load(reader.as_mut(), ctx.tenant, Kind::User, user).await?;
        let spec: UserSpec = codec::data(&record)?;
        self.check_new_password(reader.as_mut(), ctx, &spec, &new)
            .await?;
        drop(reader);
        let salt = random_bytes::<16>()?;
        let hash = self
            .authn
            .hash_work(move || hashing::hash(new.expose(), &salt))
            .await?
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let method = MethodData::Password { hash };
        let mut tx = self.write(ctx).await?;
        let key = method.key1(user).unwrap_or_default();
        let existing = tx.get_by_key1(ctx.tenant, Kind::AuthMethod, &key).await?;
        let id = match &existing {
            Some(old) => {
                tx.delete(ctx.tenant, Kind::AuthMethod, old.id, None)
                    .await?;
                old.id
            }
            None => Uuid::new_v4(),
        };
        tx.insert(ctx.tenant, &method_record(id, user, self.now(), &method)?)
            .await?;
        let action = if existing.is_some() {
            AuditAction::UserPasswordChange
        } else {
            AuditAction::UserPasswordSet
        };
        let event = EventDraft::new(action)
            .on(Kind::User, user, &spec.user_principal_name)
            .details(serde_json::json!({ "methodId": id }));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }

    /// Adds a method (audited).
    pub(crate) async fn add_method(
        &self,
        ctx: &Context,
        user: Uuid,
        id: Uuid,
        method: &MethodData,
    ) -> ServiceResult<super::AuthMethodView> {
        let mut tx = self.write(ctx).await?;
        let user_record = codec::load(tx.as_mut(), ctx.tenant, Kind::User, user).await?;
        let spec: UserSpec = codec::data(&user_record)?;
        let record = method_record(id, user, self.now(), method)?;
        tx.insert(ctx.tenant, &record)
            .await
            .or_conflict("this method is already registered")?;
        let stored = StoredMethod {
            record,
            data: method.clone(),
        };
        let view = stored.view();
        let event = EventDraft::new(AuditAction::UserAuthMethodAdd)
            .on(Kind::User, user, &spec.user_principal_name)
            .details(&view);
        self.commit(tx, ctx, event).await?;
        Ok(view)
    }

    /// Deletes a method of `user` (audited).
    pub(crate) async fn delete_method(
        &self,
        ctx: &Context,
        user: Uuid,
        method: Uuid,
    ) -> ServiceResult<()> {
        let mut tx = self.write(ctx).await?;
        let record = tx.get(ctx.tenant, Kind::AuthMethod, method).await?;
        let Some(record) = record.filter(|r| r.key2.as_deref() == Some(user.to_string().as_str()))
        else {
            return Err(ServiceError::NotFound {
                kind: "authentication method",
                id: method.to_string(),
            });
        };
        let user_record = codec::load(tx.as_mut(), ctx.tenant, Kind::User, user).await?;
        let spec: UserSpec = codec::data(&user_record)?;
        let stored = StoredMethod {
            data: codec::data(&record)?,
            record,
        };
        let view = stored.view();
        tx.delete(ctx.tenant, Kind::AuthMethod, method, None)
            .await?;
        let event = EventDraft::new(AuditAction::UserAuthMethodRemove)
            .on(Kind::User, user, &spec.user_principal_name)
            .details(&view);
        self.commit(tx, ctx, event).await?;
        Ok(())
    }
}

//! A client certificate as a first factor, validated against the tenant's trust
//! store and its revocation data, and bound to a user by the certificate user ids
//! and the binding rules.

use tessera_authn::registration::MethodUse;
use tessera_authn::strength::UsedMethod;
use tessera_store::Kind;
use uuid::Uuid;

use super::{NOT_ALLOWED, SignInOutcome};
use crate::SignIn;
use crate::directory::auth_methods::method_by_key;
use crate::error::ServiceResult;
use crate::sign_in::{SignInContext, failure, load_policy};

impl SignIn {
    /// A client certificate (leaf first, then any intermediates the client sent), as a
    /// first factor; multi-factor when an authentication binding rule says so.
    pub async fn submit_certificate(
        &self,
        ctx: &SignInContext,
        secret: &str,
        chain: Vec<Vec<u8>>,
    ) -> ServiceResult<Option<SignInOutcome>> {
        let Some(mut flow) = self.load_flow(ctx, secret).await? else {
            return Ok(None);
        };
        let mut reader = self.reader().await?;
        let (policy, _) = load_policy(reader.as_mut(), ctx.tenant).await?;
        if policy.x509_certificate.state != tessera_authn::policy::State::Enabled
            || chain.is_empty()
        {
            drop(reader);
            let code = if chain.is_empty() {
                failure::CERTIFICATE_MISSING
            } else {
                failure::METHOD_NOT_ALLOWED
            };
            return Ok(Some(self.fail(ctx, &flow, code, NO_CERTIFICATE).await?));
        }
        let trust = crate::directory::trust::load_cas(reader.as_mut(), ctx.tenant).await?;
        let now = self.now();
        // A path to a trusted root first: CRLs (possibly large) are loaded only for a
        // certificate worth checking.
        let crls = match tessera_authn::x509::validate_path(&chain, &trust, &[], now.unix_seconds())
        {
            Ok(_) => crate::directory::trust::load_crls(reader.as_mut(), ctx.tenant).await?,
            Err(_) => Vec::new(),
        };
        let mut checked =
            tessera_authn::x509::validate_path(&chain, &trust, &crls, now.unix_seconds());
        if let Ok(validated) = checked.as_mut() {
            let fetcher = self.settings.revocation_fetcher.as_ref();
            let ocsp = crate::directory::trust::check_with_ocsp(
                reader.as_mut(),
                ctx.tenant,
                fetcher,
                validated,
                now.unix_seconds(),
            )
            .await?;
            if let Err(refusal) =
                ocsp.and_then(|()| tessera_authn::x509::require_revocation(validated))
            {
                checked = Err(refusal);
            }
        }
        let validated = match checked {
            Ok(validated) => validated,
            Err(refusal) => {
                drop(reader);
                tracing::info!(correlation_id = %ctx.correlation_id, %refusal, "client certificate refused");
                return Ok(Some(
                    self.fail(ctx, &flow, refusal.code(), CERTIFICATE_WRONG)
                        .await?,
                ));
            }
        };
        let settings = &policy.x509_certificate.settings;
        // The first binding that names an existing user decides.
        let mut bound = None;
        for (property, value) in settings.lookups(&validated) {
            let user = match property {
                tessera_authn::cba::UserProperty::UserPrincipalName => reader
                    .get_by_key1(ctx.tenant, Kind::User, &value.to_lowercase())
                    .await?
                    .map(|r| r.id),
                tessera_authn::cba::UserProperty::CertificateUserIds => method_by_key(
                    reader.as_mut(),
                    ctx.tenant,
                    &crate::directory::auth_methods::certificate_user_key(&value),
                )
                .await?
                .and_then(|m| {
                    m.record
                        .key2
                        .as_deref()
                        .and_then(|k| Uuid::parse_str(k).ok())
                }),
            };
            if user.is_some() {
                bound = user;
                break;
            }
        }
        drop(reader);
        let presented = validated
            .principal_names
            .first()
            .unwrap_or(&validated.subject);
        flow.data.state.certificate_presented(presented);
        let Some(user_id) = bound else {
            return Ok(Some(
                self.fail(
                    ctx,
                    &flow,
                    failure::CERTIFICATE_NOT_BOUND,
                    CERTIFICATE_WRONG,
                )
                .await?,
            ));
        };
        // After a name was typed, the certificate must be that user's.
        if flow.data.state.admits_certificate_of(user_id).is_err() {
            return Ok(Some(
                self.fail(
                    ctx,
                    &flow,
                    failure::CERTIFICATE_NOT_BOUND,
                    CERTIFICATE_WRONG,
                )
                .await?,
            ));
        }
        let Some(subject) = self.subject(ctx, user_id).await? else {
            return Ok(Some(
                self.fail(
                    ctx,
                    &flow,
                    failure::CERTIFICATE_NOT_BOUND,
                    CERTIFICATE_WRONG,
                )
                .await?,
            ));
        };
        if flow
            .data
            .state
            .certificate_user(user_id, &subject.spec.user_principal_name)
            .is_err()
        {
            return Ok(Some(
                self.fail(
                    ctx,
                    &flow,
                    failure::CERTIFICATE_NOT_BOUND,
                    CERTIFICATE_WRONG,
                )
                .await?,
            ));
        }
        if !subject.spec.account_enabled {
            return Ok(Some(
                self.fail(ctx, &flow, failure::ACCOUNT_DISABLED, CERTIFICATE_WRONG)
                    .await?,
            ));
        }
        let mode = settings.mode_for(&validated);
        if !subject.allowed(mode) {
            return Ok(Some(
                self.fail(ctx, &flow, failure::METHOD_NOT_ALLOWED, NOT_ALLOWED)
                    .await?,
            ));
        }
        let method = MethodUse {
            method: UsedMethod {
                mode,
                aaguid: None,
                certificate_issuer: Some(validated.issuer.clone()),
                certificate_policies: validated.policies.clone(),
            },
            method_id: None,
            time: now,
        };
        // As a second step only a multi-factor certificate counts, and only once: a
        // single-factor certificate is not a second factor, nor is the same kind twice.
        let refused = (failure::METHOD_NOT_ALLOWED, NOT_ALLOWED);
        Ok(Some(
            self.verified(ctx, flow, &subject, method, refused).await?,
        ))
    }
}

const NO_CERTIFICATE: &str = "No certificate was presented. Insert your smart card and try again.";
const CERTIFICATE_WRONG: &str = "Your certificate could not be used to sign in here.";

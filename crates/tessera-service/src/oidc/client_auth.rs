//! `private_key_jwt` (RFC 7523): a client proves itself with a JWT signed by a key
//! whose certificate is registered on its application or service principal. Each
//! assertion is accepted once: its `jti` is taken through an atomic counter, so a
//! replay fails on every node.

use std::collections::BTreeMap;
use tessera_oauth::error::ErrorCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use tessera_core::crypto::secret_hash;
use tessera_directory::model::{ApplicationData, KeyCredential, ServicePrincipalData};
use tessera_oauth::assertion;
use tessera_oauth::jws;
use tessera_oauth::keys::Algorithm;
use tessera_oauth::token::OAuthError;
use tessera_store::Kind;

use super::{AuthenticatedClient, TokenContext, application_by_app_id, server_error};
use crate::Oidc;
use crate::codec;

/// Most certificates tried for one assertion without a `kid` or `x5t#S256`.
const MAX_KEYS_TRIED: usize = 20;

/// The client an assertion claims to be (for the log): the form's `client_id`, else
/// the unverified `iss`.
pub(crate) fn assertion_client_id(assertion: &str, form: &BTreeMap<String, String>) -> String {
    form.get("client_id").cloned().unwrap_or_else(|| {
        jws::peek(assertion)
            .ok()
            .and_then(|(_, claims)| {
                claims
                    .get("iss")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect()
    })
}

fn refuse(why: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, why)
}

/// The `x5t#S256` of a certificate: base64url SHA-256 of its DER.
pub(crate) fn certificate_thumbprint(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tessera_core::crypto::sha256(der))
}

impl Oidc {
    /// An application, its service principal, and the certificates registered on
    /// either; `unknown` is the refusal when there is no such application.
    async fn registered_keys(
        &self,
        tenant: tessera_core::TenantId,
        client_id: &str,
        unknown: &str,
    ) -> Result<
        (
            ApplicationData,
            Option<tessera_store::Record>,
            Vec<KeyCredential>,
        ),
        OAuthError,
    > {
        let mut reader = self.reader().await.map_err(server_error)?;
        let app = application_by_app_id(reader.as_mut(), tenant, client_id)
            .await?
            .ok_or_else(|| refuse(unknown))?;
        let app_data: ApplicationData = codec::data(&app).map_err(server_error)?;
        let principal = reader
            .get_by_key1(tenant, Kind::ServicePrincipal, &app_data.app_id.to_string())
            .await
            .map_err(server_error)?;
        let mut keys: Vec<KeyCredential> = app_data.key_credentials.clone();
        if let Some(principal) = &principal {
            let data: ServicePrincipalData = codec::data(principal).map_err(server_error)?;
            keys.extend(data.key_credentials);
        }
        Ok((app_data, principal, keys))
    }

    /// Under a policy that requires trusted certificates, a registered certificate
    /// must (still) chain to the trust store when it is used.
    async fn check_registered_certificate(
        &self,
        tenant: tessera_core::TenantId,
        der: &[u8],
    ) -> Result<(), OAuthError> {
        let mut reader = self.reader().await.map_err(server_error)?;
        let policy = crate::directory::consent::credential_policy(reader.as_mut(), tenant)
            .await
            .map_err(server_error)?;
        drop(reader);
        if !policy.require_trusted_certificates {
            return Ok(());
        }
        match self
            .sign_in
            .directory
            .validate_client_chain(tenant, &[der.to_vec()])
            .await
            .map_err(server_error)?
        {
            Ok(_) => Ok(()),
            Err(_) => Err(refuse(
                "the tenant's policy requires certificates from a trusted CA",
            )),
        }
    }

    /// Mutual-TLS client authentication (RFC 8705 §2): the client certificate is
    /// one registered on the application or its service principal
    /// (`self_signed_tls_client_auth`), or chains to the tenant's trust store with
    /// the subject the application names (`tls_client_auth`).
    pub(crate) async fn authenticate_mtls(
        &self,
        ctx: &TokenContext,
        client_id: &str,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let leaf = ctx
            .client_certificates
            .first()
            .ok_or_else(|| refuse("client authentication is required"))?;
        let thumbprint = certificate_thumbprint(leaf);
        let (app_data, principal, keys) = self
            .registered_keys(ctx.tenant, client_id, "unknown client or certificate")
            .await?;
        let now = self.now();
        if let Some(key) = keys.iter().find(|k| {
            k.thumbprint_sha256 == thumbprint && k.start_date_time <= now && now < k.end_date_time
        }) {
            let end = key.end_date_time;
            self.check_registered_certificate(ctx.tenant, leaf).await?;
            return Ok(AuthenticatedClient {
                _proof: super::ClientAuthenticated,
                app_data,
                principal,
                secret_end: end,
                certificate: Some(thumbprint),
                secret_key: None,
            });
        }
        let Some(subject) = app_data.spec.tls_client_auth_subject_dn.clone() else {
            return Err(refuse("unknown client or certificate"));
        };
        let validated = self
            .sign_in
            .directory
            .validate_client_chain(ctx.tenant, &ctx.client_certificates)
            .await
            .map_err(server_error)?
            .map_err(|refusal| {
                tracing::info!(?refusal, "mutual-TLS client certificate refused");
                refuse("the client certificate is not trusted")
            })?;
        if validated.subject != subject {
            return Err(refuse("unknown client or certificate"));
        }
        let end = tessera_directory::certificate::parse(&STANDARD.encode(leaf))
            .map(|info| info.not_after)
            .unwrap_or(now);
        Ok(AuthenticatedClient {
            _proof: super::ClientAuthenticated,
            app_data,
            principal,
            secret_end: end,
            certificate: Some(thumbprint),
            secret_key: None,
        })
    }

    pub(crate) async fn authenticate_assertion(
        &self,
        ctx: &TokenContext,
        token: &str,
        form: &BTreeMap<String, String>,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let (header, claims) =
            jws::peek(token).map_err(|_| refuse("the client assertion is not a JWT"))?;
        let client_id = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| refuse("the client assertion has no iss"))?;
        if form.get("client_id").is_some_and(|id| id != client_id) {
            return Err(refuse("client_id differs from the assertion's issuer"));
        }
        let (app_data, principal, keys) = self
            .registered_keys(ctx.tenant, client_id, "unknown client or key")
            .await?;
        let now = self.now();
        let wanted = header
            .get("x5t#S256")
            .or_else(|| header.get("kid"))
            .and_then(Value::as_str);
        let candidates: Vec<&KeyCredential> = keys
            .iter()
            .filter(|k| k.start_date_time <= now && now < k.end_date_time)
            .filter(|k| {
                wanted.is_none_or(|w| w == k.thumbprint_sha256 || w == k.key_id.to_string())
            })
            .take(MAX_KEYS_TRIED)
            .collect();
        let mut verified = None;
        for key in candidates {
            let Some(jwk) = STANDARD
                .decode(&key.key)
                .ok()
                .and_then(|der| assertion::certificate_jwk(&der))
            else {
                continue;
            };
            if let Ok(claims) = jws::verify(token, &jwk, &Algorithm::ALL) {
                verified = Some((claims, key.end_date_time, key.key.clone()));
                break;
            }
        }
        let (claims, key_end, key_der) = verified
            .ok_or_else(|| refuse("the client assertion is not signed by a registered key"))?;
        if let Ok(der) = STANDARD.decode(&key_der) {
            self.check_registered_certificate(ctx.tenant, &der).await?;
        }
        let token_endpoint = format!("{}/oauth2/token", ctx.issuer);
        let facts = assertion::check_claims(
            &claims,
            client_id,
            &[ctx.issuer.as_str(), token_endpoint.as_str()],
            now.unix_seconds(),
        )?;
        let replay_key = format!(
            "client-assertion:{}",
            secret_hash(&format!("{client_id}:{}", facts.jti))
        );
        let first = self
            .store
            .counter_take(ctx.tenant, &replay_key, 1, now)
            .await
            .map_err(server_error)?;
        if !first {
            // Signed by the client's key and seen before: someone holds a copy.
            if let Some(principal) = &principal {
                let request = crate::risk::WorkloadRequest {
                    principal: principal.id,
                    display_name: &app_data.spec.display_name,
                    app_id: client_id,
                    credential: "clientAssertion",
                    secret: None,
                    correlation_id: &ctx.correlation_id,
                    client_address: ctx.client_address.as_deref(),
                };
                if let Err(error) = self
                    .sign_in
                    .risk
                    .assertion_replayed(ctx.tenant, &request)
                    .await
                {
                    tracing::warn!(%error, "cannot record a replayed client assertion");
                }
            }
            return Err(refuse("the client assertion was already used"));
        }
        Ok(AuthenticatedClient {
            _proof: super::ClientAuthenticated,
            app_data,
            principal,
            secret_end: key_end,
            certificate: None,
            secret_key: None,
        })
    }
}

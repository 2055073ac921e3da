//! Looking at tokens already issued: userinfo (OIDC Core §5.3), introspection
//! (RFC 7662) and revocation (RFC 7009).
//!
//! Access tokens are checked by signature against the tenant's published keys,
//! issuer, type and lifetime, and against the revocation mark RFC 7009 leaves (a
//! counter named by the token's `jti`, so every node sees it at once).

use std::collections::BTreeMap;
use tessera_oauth::error::ErrorCode;

use serde_json::{Map, Value, json};
use tessera_core::TenantId;
use tessera_core::crypto::secret_hash;
use tessera_directory::model::UserSpec;
use tessera_oauth::claims::{ProfileClaims, UserInfo, audience_matches};
use tessera_oauth::jws;
use tessera_oauth::keys::Algorithm;
use tessera_oauth::token::OAuthError;
use tessera_store::Kind;
use uuid::Uuid;

use super::grants::{FAMILY_PREFIX, FamilyData, TokenClient};
use super::{TokenContext, server_error};
use crate::Oidc;
use crate::codec;

/// Why an access token was not accepted (said in `WWW-Authenticate`, RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("the access token is invalid or expired")]
    InvalidToken,
    #[error("the access token lacks the scope {0}")]
    InsufficientScope(&'static str),
    #[error("the DPoP proof is missing or invalid")]
    InvalidDpopProof,
    /// A DPoP-bound token sent as a bearer token (RFC 9449 §7.1: `invalid_token`,
    /// with a DPoP challenge).
    #[error(
        "the access token is DPoP-bound: send it as `Authorization: DPoP <token>` with a DPoP proof"
    )]
    DpopBoundSentAsBearer,
    #[error("the request could not be completed")]
    Server,
    /// A revoked token of a client that handles claims challenges: the
    /// `claims` (base64) its authorization request carries to sign in again.
    #[error("the access token was revoked: sign in again with the claims challenge")]
    InsufficientClaims(String),
}

/// An access token as a request presented it.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub token: &'a str,
    /// `Authorization: DPoP`, not `Bearer`.
    pub dpop_scheme: bool,
    /// The `DPoP` header.
    pub proof: Option<&'a str>,
    pub method: &'a str,
    /// The request's URL as the client addressed it (`htu`).
    pub url: &'a str,
    /// The mutual-TLS client certificate of the request (leaf), if any.
    pub client_certificate: Option<&'a [u8]>,
    /// The address the request came from (behind trusted proxies, the one
    /// they name): a token fenced by location is refused outside it.
    pub client_address: Option<&'a str>,
}

/// Where a token revoked before access token ids told their time (UUIDv4)
/// is marked: still read for such tokens, and still written for them so that
/// nodes of the release before see it.
fn revoked_key(jti: &str) -> String {
    format!("revoked-jti:{}", secret_hash(jti))
}

/// Whether a token is for one of Tessera's own resources (userinfo, the
/// management, provisioning and signals APIs): only such a token's misuse is
/// Tessera's to judge and tell of.
pub(super) fn for_own_resource(issuer: &str, claims: &Map<String, Value>) -> bool {
    let userinfo = tessera_oauth::resource::userinfo_audience(issuer);
    audience_matches(claims.get("aud"), |aud| {
        aud == userinfo
            || aud == super::MANAGEMENT_RESOURCE
            || aud == crate::directory::builtin::PROVISIONING_API_ID
            || aud == crate::signals::SIGNALS_API_ID
    })
}

/// The enabled service principal a workload's access token for `api` names.
pub(crate) struct TokenWorkload {
    pub principal: Uuid,
    pub app_id: tessera_core::AppId,
    pub data: tessera_directory::model::ServicePrincipalData,
}

/// What an API for workloads checks of a token already verified: a
/// workload's (`idtyp` app) for `api`, whose service principal (`sub`) is
/// enabled and still of the application (`client_id`); anything else is
/// `Unauthenticated`.
pub(crate) async fn token_workload(
    reader: &mut dyn tessera_store::Reader,
    tenant: TenantId,
    claims: &Map<String, Value>,
    api: &str,
) -> crate::error::ServiceResult<TokenWorkload> {
    use crate::error::ServiceError;
    if claims.get("idtyp").and_then(Value::as_str) != Some("app")
        || !audience_matches(claims.get("aud"), |aud| aud == api)
    {
        return Err(ServiceError::Unauthenticated);
    }
    let principal = claims
        .get("sub")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    let app_id = claims
        .get("client_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<tessera_core::AppId>().ok());
    let (Some(principal), Some(app_id)) = (principal, app_id) else {
        return Err(ServiceError::Unauthenticated);
    };
    let record = reader
        .get(tenant, Kind::ServicePrincipal, principal)
        .await?
        .ok_or(ServiceError::Unauthenticated)?;
    let data: tessera_directory::model::ServicePrincipalData = codec::data(&record)?;
    if !data.spec.account_enabled || data.spec.app_id != app_id {
        return Err(ServiceError::Unauthenticated);
    }
    Ok(TokenWorkload {
        principal,
        app_id,
        data,
    })
}

/// How a token ended at `at` is refused (continuous access evaluation): a
/// client that handles claims challenges (`xms_cc` `cp1`) is told to sign
/// the user in again after then; others get `invalid_token`. The challenge
/// names whole seconds: the next one after `at`, so a sign-in of that same
/// second does not count as after it.
pub(super) fn refused_since(
    claims: &Map<String, Value>,
    at: tessera_core::Timestamp,
) -> BearerError {
    let capable = claims
        .get("xms_cc")
        .and_then(Value::as_array)
        .is_some_and(|caps| caps.iter().any(|c| c == "cp1"));
    if !capable {
        return BearerError::InvalidToken;
    }
    let after = at.unix_micros().div_euclid(1_000_000) + 1;
    BearerError::InsufficientClaims(tessera_oauth::authorize::claims_challenge(after))
}

/// Whether a token id is of the kind that tells its issue time.
fn timed_id(jti: &str) -> bool {
    Uuid::parse_str(jti).is_ok_and(|id| id.get_version_num() == 7)
}

/// How long after a sign-in its proof (MFA, authentication contexts) counts for
/// a management token: an hour.
pub(crate) const STEP_UP_MAX_AGE_SECONDS: i64 = 3600;

impl Oidc {
    /// The claims of a valid access token issued by this tenant.
    pub async fn verify_access_token(
        &self,
        tenant: TenantId,
        issuer: &str,
        token: &str,
    ) -> Result<Map<String, Value>, BearerError> {
        let (header, _) = jws::peek(token).map_err(|_| BearerError::InvalidToken)?;
        if header.get("typ").and_then(Value::as_str) != Some("at+jwt") {
            return Err(BearerError::InvalidToken);
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or(BearerError::InvalidToken)?;
        let set = self
            .key_set(tenant)
            .await
            .map_err(|_| BearerError::Server)?;
        let jwk = set
            .jwks
            .get("keys")
            .and_then(Value::as_array)
            .and_then(|keys| {
                keys.iter()
                    .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
            })
            .ok_or(BearerError::InvalidToken)?;
        let claims =
            jws::verify(token, jwk, &Algorithm::ALL).map_err(|_| BearerError::InvalidToken)?;
        let Value::Object(claims) = claims else {
            return Err(BearerError::InvalidToken);
        };
        let now = self.now().unix_seconds();
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        let valid = claims.get("iss").and_then(Value::as_str) == Some(issuer)
            && number("exp").is_some_and(|exp| now < exp)
            && number("nbf").is_none_or(|nbf| nbf <= now + 60);
        if !valid {
            return Err(BearerError::InvalidToken);
        }
        // Continuous access evaluation: a change since the token was issued
        // (its user disabled, its session or family ended, the token revoked)
        // ends it, on every node within a poll of the revocations.
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
        };
        let jti = text("jti");
        let presented = tessera_cae::Presented {
            tenant,
            user: (text("idtyp") != Some("app"))
                .then(|| text("oid").and_then(|s| Uuid::parse_str(s).ok()))
                .flatten(),
            client_id: text("client_id"),
            sid: text("sid"),
            family: text("fam"),
            jti,
            issued: tessera_cae::issued_at(jti, number("iat").unwrap_or(0)),
        };
        if let Some(jti) = jti.filter(|j| !timed_id(j)) {
            let revoked = self
                .store
                .counter_get(tenant, &revoked_key(jti))
                .await
                .map_err(|_| BearerError::Server)?;
            if revoked.is_some() {
                return Err(BearerError::InvalidToken);
            }
        }
        match self.revocations().refuses(&presented).await {
            Ok(None) => Ok(claims),
            Ok(Some(refusal)) => Err(refused_since(&claims, refusal.at)),
            Err(error) => {
                tracing::warn!(%error, "cannot check an access token against the revocations");
                Err(BearerError::Server)
            }
        }
    }

    /// The claims of an access token presented to one of Tessera's resources
    /// (RFC 6750, or RFC 9449 §7 for DPoP): a DPoP-bound token needs the DPoP
    /// scheme and a fresh proof by its key over this request and token.
    pub async fn presented_token(
        &self,
        tenant: TenantId,
        issuer: &str,
        presented: &Presented<'_>,
    ) -> Result<Map<String, Value>, BearerError> {
        let claims = self
            .verify_access_token(tenant, issuer, presented.token)
            .await?;
        // RFC 8705 §3: a certificate-bound token only with that certificate.
        if let Some(thumbprint) = super::dpop::bound_certificate(&claims) {
            let presented_thumbprint = presented
                .client_certificate
                .map(super::client_auth::certificate_thumbprint);
            if presented_thumbprint.as_deref() != Some(thumbprint) {
                self.binding_mismatch(tenant, issuer, &claims, "certificate")
                    .await;
                return Err(BearerError::InvalidToken);
            }
        }
        let bound = super::dpop::bound_jkt(&claims).map(str::to_string);
        if presented.dpop_scheme || bound.is_some() {
            if !presented.dpop_scheme {
                self.binding_mismatch(tenant, issuer, &claims, "dpop").await;
                return Err(BearerError::DpopBoundSentAsBearer);
            }
            let proof = self
                .dpop_proof(
                    tenant,
                    presented.proof,
                    presented.method,
                    presented.url,
                    Some(presented.token),
                )
                .await
                .map_err(|_| BearerError::InvalidDpopProof)?
                .ok_or(BearerError::InvalidDpopProof)?;
            if bound.as_deref() != Some(proof.jkt.as_str()) {
                if bound.is_some() {
                    self.binding_mismatch(tenant, issuer, &claims, "dpop").await;
                }
                return Err(BearerError::InvalidToken);
            }
        }
        // Strict location enforcement (continuous access evaluation).
        self.check_location(tenant, issuer, &claims, presented.client_address)
            .await?;
        Ok(claims)
    }

    /// A bound access token presented without its binding: a token anomaly
    /// for Identity Protection, of its user or its workload. Only a token for
    /// Tessera's own resources (userinfo, the management and provisioning
    /// APIs) counts: another application's tokens are not this one's to judge, and
    /// whoever received them could otherwise raise their users' risk.
    async fn binding_mismatch(
        &self,
        tenant: TenantId,
        issuer: &str,
        claims: &Map<String, Value>,
        binding: &str,
    ) {
        if !for_own_resource(issuer, claims) {
            return;
        }
        let Some(subject) = claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return;
        };
        if claims.get("idtyp").and_then(Value::as_str) == Some("app") {
            let app_id = claims
                .get("client_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let request = crate::risk::WorkloadRequest {
                principal: subject,
                display_name: app_id,
                app_id,
                credential: "accessToken",
                secret: None,
                correlation_id: "",
                client_address: None,
            };
            if let Err(error) = self
                .sign_in
                .risk
                .workload_binding_mismatch(tenant, &request, binding)
                .await
            {
                tracing::warn!(%error, "cannot record an access token's binding mismatch");
            }
            return;
        }
        if claims.get("idtyp").and_then(Value::as_str) != Some("user") {
            return;
        }
        let user = subject;
        let name = claims
            .get("upn")
            .or_else(|| claims.get("preferred_username"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Err(error) = self
            .sign_in
            .risk
            .binding_mismatch(tenant, user, name, None, "", "accessToken", binding)
            .await
        {
            tracing::warn!(%error, "cannot record an access token's binding mismatch");
        }
    }

    /// A presented access token's claims, checked (signature, lifetime, binding),
    /// with the tenant it is for; every failure but an outage is `Unauthenticated`.
    pub(crate) async fn verified_claims(
        &self,
        issuer: &str,
        presented: &Presented<'_>,
    ) -> crate::error::ServiceResult<(TenantId, Map<String, Value>)> {
        use crate::error::ServiceError;
        let tenant = self
            .default_tenant()
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        let claims = self
            .presented_token(tenant, issuer, presented)
            .await
            .map_err(|e| match e {
                BearerError::Server => {
                    ServiceError::Unavailable("cannot check the token now".to_string())
                }
                BearerError::DpopBoundSentAsBearer => ServiceError::DpopBoundSentAsBearer,
                BearerError::InsufficientClaims(claims) => ServiceError::ClaimsChallenge {
                    claims,
                    dpop: presented.dpop_scheme,
                },
                _ => ServiceError::Unauthenticated,
            })?;
        Ok((tenant, claims))
    }

    /// The caller of the SCIM API holding a workload's token for it (client
    /// credentials, aud the SCIM API, the role `Provisioning.ReadWrite.All`): the
    /// application's service principal with a provisioning token's rights, while
    /// the service principal is enabled and the provisioning settings still name
    /// the application. The caller sends here only tokens whose (unverified)
    /// audience is the SCIM API; anything else about them is checked here.
    pub async fn authenticate_provisioning_client(
        &self,
        issuer: &str,
        presented: &Presented<'_>,
    ) -> crate::error::ServiceResult<(TenantId, crate::Caller)> {
        use crate::directory::builtin::{PROVISIONING_API_ID, PROVISIONING_ROLE};
        use crate::error::ServiceError;
        let (tenant, claims) = self.verified_claims(issuer, presented).await?;
        let has_role = claims
            .get("roles")
            .and_then(Value::as_array)
            .is_some_and(|roles| roles.iter().any(|r| r.as_str() == Some(PROVISIONING_ROLE)));
        if !has_role {
            return Err(ServiceError::Unauthenticated);
        }
        let mut reader = self.reader().await?;
        let TokenWorkload {
            principal: principal_id,
            app_id,
            data,
        } = token_workload(reader.as_mut(), tenant, &claims, PROVISIONING_API_ID).await?;
        let allowed =
            crate::provisioning::settings::allows_client(reader.as_mut(), tenant, app_id).await?;
        if !allowed {
            return Err(ServiceError::Unauthenticated);
        }
        let protected = crate::kernel::protected_actions(reader.as_mut(), tenant).await?;
        Ok((
            tenant,
            crate::Caller {
                principal: crate::Principal::Workload {
                    id: principal_id,
                    display_name: data
                        .spec
                        .display_name
                        .clone()
                        .unwrap_or_else(|| app_id.to_string()),
                    kind: "servicePrincipal",
                },
                grants: crate::provisioning::tokens::provisioning_grants(),
                credential: Some(format!("oauth:{app_id}")),
                issued_credential: None,
                proof: None,
                protected,
            },
        ))
    }

    /// The caller of the management API holding a Tessera access token for it (aud
    /// `urn:tessera:management`, a user's token): the user and their role grants,
    /// as with a personal access token.
    pub async fn authenticate_management_token(
        &self,
        issuer: &str,
        presented: &Presented<'_>,
    ) -> crate::error::ServiceResult<(TenantId, crate::Caller)> {
        use crate::error::ServiceError;
        let (tenant, claims) = self
            .verified_claims(issuer, presented)
            .await
            .map_err(|error| match error {
                // Only a token for the management API is told to come back
                // with a sign-in: another's would be refused here after it.
                ServiceError::ClaimsChallenge { .. }
                    if !jws::peek(presented.token).is_ok_and(|(_, claims)| {
                        audience_matches(claims.get("aud"), |aud| aud == super::MANAGEMENT_RESOURCE)
                    }) =>
                {
                    ServiceError::Unauthenticated
                }
                other => other,
            })?;
        let audience = super::MANAGEMENT_RESOURCE;
        let aud_ok = audience_matches(claims.get("aud"), |aud| aud == audience);
        // The management API's own scope, consented to (only Tessera's CLI, or an
        // application an administrator consented for, gets it).
        let scoped = claims
            .get("scp")
            .and_then(Value::as_str)
            .is_some_and(|scp| scp.split(' ').any(|s| s == ".default"));
        if !aud_ok || !scoped || claims.get("idtyp").and_then(Value::as_str) != Some("user") {
            return Err(ServiceError::Unauthenticated);
        }
        let user_id = claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or(ServiceError::Unauthenticated)?;
        let mut reader = self.reader().await?;
        let user = reader
            .get(tenant, Kind::User, user_id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        let spec: UserSpec = codec::data(&user)?;
        if !spec.account_enabled {
            return Err(ServiceError::Unauthenticated);
        }
        let grants =
            crate::directory::roles::grants_of(reader.as_mut(), tenant, user_id, self.now())
                .await?;
        let protected = crate::kernel::protected_actions(reader.as_mut(), tenant).await?;
        drop(reader);
        let client = claims
            .get("client_id")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let strings = |name: &str| -> Vec<String> {
            claims
                .get(name)
                .and_then(Value::as_array)
                .map(|values| {
                    values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        // What the sign-in proved counts for a while after it (a step-up is
        // for now, not for a refresh token's whole life): past that, PIM and
        // protected actions ask again, and the CLI steps up by itself.
        let fresh = claims
            .get("auth_time")
            .and_then(Value::as_i64)
            .is_some_and(|at| {
                self.now().unix_seconds().saturating_sub(at) <= STEP_UP_MAX_AGE_SECONDS
            });
        let proof = if fresh {
            crate::SignInProof {
                mfa: strings("amr").iter().any(|m| m == "mfa"),
                authentication_contexts: strings("acrs"),
            }
        } else {
            crate::SignInProof::default()
        };
        // The console's token lives as long as the browser session it came from:
        // signing out, or an administrator revoking the user's sessions, ends it at
        // once rather than when the token expires.
        if client == super::CONSOLE_CLIENT_ID {
            let sid = claims.get("sid").and_then(Value::as_str).unwrap_or("");
            let live = self
                .user_grant_live(tenant, user_id, client, Some(sid))
                .await
                .map_err(|_| {
                    ServiceError::Unavailable("cannot check the session now".to_string())
                })?;
            if sid.is_empty() || !live {
                return Err(ServiceError::Unauthenticated);
            }
        }
        Ok((
            tenant,
            crate::Caller {
                principal: crate::Principal::User {
                    id: user_id,
                    user_principal_name: spec.user_principal_name,
                },
                grants,
                credential: Some(format!("oauth:{client}")),
                issued_credential: None,
                proof: Some(proof),
                protected,
            },
        ))
    }

    /// `GET|POST /userinfo` with a user's access token.
    pub async fn userinfo(
        &self,
        tenant: TenantId,
        issuer: &str,
        presented: &Presented<'_>,
    ) -> Result<Value, BearerError> {
        let claims = self.presented_token(tenant, issuer, presented).await?;
        let audience = tessera_oauth::resource::userinfo_audience(issuer);
        let aud_ok = audience_matches(claims.get("aud"), |aud| aud == audience);
        if !aud_ok || claims.get("idtyp").and_then(Value::as_str) != Some("user") {
            return Err(BearerError::InvalidToken);
        }
        let scopes: Vec<String> = claims
            .get("scp")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split(' ')
            .map(str::to_string)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(BearerError::InsufficientScope("openid"));
        }
        let user_id = claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or(BearerError::InvalidToken)?;
        let mut reader = self.reader().await.map_err(|_| BearerError::Server)?;
        let user = reader
            .get(tenant, Kind::User, user_id)
            .await
            .map_err(|_| BearerError::Server)?
            .ok_or(BearerError::InvalidToken)?;
        let spec: UserSpec = codec::data(&user).map_err(|_| BearerError::Server)?;
        if !spec.account_enabled {
            return Err(BearerError::InvalidToken);
        }
        let info = UserInfo {
            sub: user_id,
            profile: ProfileClaims::released(&spec, &scopes, &[]),
        };
        serde_json::to_value(info).map_err(|_| BearerError::Server)
    }

    /// `POST /introspect` (RFC 7662): by an authenticated client, about a token
    /// issued to it or meant for it; anything else is `{"active": false}`.
    pub async fn introspect(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
    ) -> Result<Value, OAuthError> {
        let client = self.token_client(ctx, authorization, form).await?;
        let TokenClient::Confidential(client) = client else {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "introspection needs an authenticated client",
            ));
        };
        let caller = client.app_data.app_id.to_string();
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "token is required"))?;
        let inactive = json!({ "active": false });
        if token.starts_with("tsr_rt_") {
            let Some(family) = self.live_family(ctx.tenant, token).await? else {
                return Ok(inactive);
            };
            if family.1.client_id != caller
                || !self
                    .user_grant_live(ctx.tenant, family.1.sign_in.user_id, &caller, None)
                    .await?
            {
                return Ok(inactive);
            }
            return Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": family.1.client_id,
                "sub": family.1.sign_in.user_id,
                "scope": family.1.scopes.join(" "),
                "exp": family.0.unix_seconds(),
                "iss": ctx.issuer,
            }));
        }
        let claims = match self
            .verify_access_token(ctx.tenant, &ctx.issuer, token)
            .await
        {
            Ok(claims) => claims,
            Err(BearerError::Server) => return Err(server_error("introspection failed")),
            Err(_) => return Ok(inactive),
        };
        let audience_is_caller = audience_matches(claims.get("aud"), |aud| aud == caller);
        let issued_to_caller = claims.get("client_id").and_then(Value::as_str) == Some(&caller);
        if !audience_is_caller && !issued_to_caller {
            return Ok(inactive);
        }
        // A user's token is active only while its grant would still be honoured:
        // the user exists and is enabled, the client's assignment holds, and the
        // sign-in it came from (browser session or refresh token family) lives.
        if claims.get("idtyp").and_then(Value::as_str) == Some("user") {
            let user = claims
                .get("sub")
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok());
            let client = claims.get("client_id").and_then(Value::as_str);
            let sid = claims.get("sid").and_then(Value::as_str);
            let (Some(user), Some(client)) = (user, client) else {
                return Ok(inactive);
            };
            if !self.user_grant_live(ctx.tenant, user, client, sid).await? {
                return Ok(inactive);
            }
            if let Some(family) = claims.get("fam").and_then(Value::as_str)
                && !self.family_live(ctx.tenant, family, client).await?
            {
                return Ok(inactive);
            }
        }
        let mut out = Map::new();
        out.insert("active".into(), json!(true));
        let token_type = if claims.get("cnf").is_some() {
            "DPoP"
        } else {
            "Bearer"
        };
        out.insert("token_type".into(), json!(token_type));
        for name in [
            "iss",
            "sub",
            "aud",
            "client_id",
            "exp",
            "iat",
            "nbf",
            "jti",
            "scp",
            "acr",
            "auth_time",
            "sid",
        ] {
            if let Some(value) = claims.get(name) {
                let key = if name == "scp" { "scope" } else { name };
                out.insert(key.into(), value.clone());
            }
        }
        if let Some(cnf) = claims.get("cnf") {
            out.insert("cnf".into(), cnf.clone());
        }
        Ok(Value::Object(out))
    }

    /// The family of a current refresh token, with its end.
    /// Whether a user's grant to `client` would still be honoured at the token
    /// endpoint: the user exists and may sign in, the client's assignment holds,
    /// and (for a token naming a sign-in, `sid`) that browser session or a refresh
    /// token family of the same sign-in and client is still live.
    async fn user_grant_live(
        &self,
        tenant: TenantId,
        user: Uuid,
        client: &str,
        sid: Option<&str>,
    ) -> Result<bool, OAuthError> {
        match self.enabled_user(tenant, user).await {
            Ok(_) => {}
            Err(error) if error.error == ErrorCode::InvalidGrant => return Ok(false),
            Err(error) => return Err(error),
        }
        // A deleted application's tokens end with it (its refresh fails too).
        let known_client = client.parse().is_ok_and(super::is_management_client) || {
            let mut reader = self.reader().await.map_err(server_error)?;
            super::application_by_app_id(reader.as_mut(), tenant, client)
                .await?
                .is_some()
        };
        if !known_client {
            return Ok(false);
        }
        match self.app_roles_of_user(tenant, client, user, true).await {
            Ok(_) => {}
            Err(error) if error.error == ErrorCode::AccessDenied => return Ok(false),
            Err(error) => return Err(error),
        }
        let Some(sid) = sid.filter(|sid| !sid.is_empty()) else {
            return Ok(true);
        };
        let now = self.now();
        let rows = self
            .store
            .sessions_of_user(tenant, user, now)
            .await
            .map_err(server_error)?;
        Ok(rows.iter().any(|row| {
            if row.id.starts_with(FAMILY_PREFIX) {
                now < row
                    .last_seen
                    .plus_seconds(super::grants::REFRESH_IDLE_SECONDS)
                    && serde_json::from_str::<FamilyData>(&row.data)
                        .is_ok_and(|family| family.client_id == client && family.sign_in.sid == sid)
            } else {
                // A browser session counts while it is not idle past its limit.
                serde_json::from_str::<crate::sign_in::sessions::SessionData>(&row.data).is_ok_and(
                    |data| {
                        crate::sign_in::row_sid(row, &data) == sid
                            && now
                                < row
                                    .last_seen
                                    .plus_seconds(i64::from(data.idle_minutes) * 60)
                    },
                )
            }
        }))
    }

    /// Whether the refresh token family `family` of `client` is live: neither
    /// revoked (by revocation, sign-out or a replayed token) nor expired or idle.
    async fn family_live(
        &self,
        tenant: TenantId,
        family: &str,
        client: &str,
    ) -> Result<bool, OAuthError> {
        if family.len() > 64 {
            return Ok(false);
        }
        let Some(row) = self
            .store
            .session_get(tenant, &format!("{FAMILY_PREFIX}{family}"))
            .await
            .map_err(server_error)?
        else {
            return Ok(false);
        };
        let now = self.now();
        Ok(row.revoked.is_none()
            && now < row.expires
            && now
                < row
                    .last_seen
                    .plus_seconds(super::grants::REFRESH_IDLE_SECONDS)
            && serde_json::from_str::<FamilyData>(&row.data)
                .is_ok_and(|data| data.client_id == client))
    }

    async fn live_family(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> Result<Option<(tessera_core::Timestamp, FamilyData)>, OAuthError> {
        let Some(family_id) = token
            .strip_prefix("tsr_rt_")
            .and_then(|rest| rest.split_once('.'))
            .map(|(family, _)| family)
        else {
            return Ok(None);
        };
        if token.len() > 256 {
            return Ok(None);
        }
        let row = self
            .store
            .session_get(tenant, &format!("{FAMILY_PREFIX}{family_id}"))
            .await
            .map_err(server_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let now = self.now();
        let Ok(data) = serde_json::from_str::<FamilyData>(&row.data) else {
            return Ok(None);
        };
        let live = row.revoked.is_none()
            && now < row.expires
            && now
                < row
                    .last_seen
                    .plus_seconds(super::grants::REFRESH_IDLE_SECONDS)
            && data.current == secret_hash(token);
        Ok(live.then_some((row.expires, data)))
    }

    /// `POST /revoke` (RFC 7009): a refresh token ends its family; an access token
    /// is marked revoked until it expires. Unknown tokens, and tokens of other
    /// clients, are answered the same way (200) and changed nothing.
    pub async fn revoke(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
    ) -> Result<(), OAuthError> {
        let client = self.token_client(ctx, authorization, form).await?;
        let caller = client.client_id();
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "token is required"))?;
        // token_type_hint is only a hint (§2.1): the token's form says what it is.
        let now = self.now();
        if token.starts_with("tsr_rt_") {
            if let Some((_, family)) = self.live_family(ctx.tenant, token).await?
                && family.client_id == caller
                && (client_authenticated(&client) || !family.confidential)
                && let Some(family_id) = token
                    .strip_prefix("tsr_rt_")
                    .and_then(|rest| rest.split_once('.'))
                    .map(|(family, _)| family)
            {
                self.revoke_family(
                    ctx.tenant,
                    family_id,
                    now,
                    tessera_cae::Reason::TokenRevoked,
                )
                .await?;
            }
            return Ok(());
        }
        // A confidential client authenticates before revoking (§2.1).
        if !client_authenticated(&client) && self.is_confidential_app(ctx.tenant, &caller).await? {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "this client must authenticate",
            ));
        }
        let verified = match self
            .verify_access_token(ctx.tenant, &ctx.issuer, token)
            .await
        {
            Ok(claims) => Some(claims),
            // Not known whether the token is good: say so (RFC 7009 §2.2.1),
            // rather than that it was revoked.
            Err(BearerError::Server) => {
                return Err(server_error("cannot check the token now"));
            }
            Err(_) => None,
        };
        if let Some(claims) = verified
            && claims.get("client_id").and_then(Value::as_str) == Some(&caller)
            && let Some(jti) = claims.get("jti").and_then(Value::as_str)
        {
            self.revocations()
                .revoke(
                    ctx.tenant,
                    &[tessera_cae::Target::Token(jti.to_string())],
                    tessera_cae::Reason::TokenRevoked,
                )
                .await
                .map_err(server_error)?;
            if !timed_id(jti) {
                let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
                self.store
                    .counter_advance(ctx.tenant, &revoked_key(jti), exp, now)
                    .await
                    .map_err(server_error)?;
            }
        }
        Ok(())
    }
}

impl Oidc {
    /// An application that holds credentials or web redirect URIs is confidential.
    async fn is_confidential_app(
        &self,
        tenant: TenantId,
        client_id: &str,
    ) -> Result<bool, OAuthError> {
        let mut reader = self.reader().await.map_err(server_error)?;
        let Some(app) = super::application_by_app_id(reader.as_mut(), tenant, client_id).await?
        else {
            return Ok(false);
        };
        let data: tessera_directory::model::ApplicationData =
            codec::data(&app).map_err(server_error)?;
        let secrets = reader
            .list(
                tenant,
                Kind::ClientSecret,
                &tessera_store::ListQuery {
                    after: None,
                    limit: 1,
                    prefix: None,
                    key2: Some(app.id.to_string()),
                },
            )
            .await
            .map_err(server_error)?;
        Ok(!data.spec.web.redirect_uris.is_empty()
            || !data.key_credentials.is_empty()
            || !secrets.is_empty())
    }
}

fn client_authenticated(client: &TokenClient) -> bool {
    matches!(client, TokenClient::Confidential(_))
}

//! Token exchange (RFC 8693) at the token endpoint, two ways:
//!
//! - **Workload identity federation.** An application trusts an external issuer
//!   and subject (a federated identity credential). The workload sends the token
//!   that issuer gave it; Tessera verifies it with the issuer's published keys and
//!   answers with the application's own access token, as a client-credentials grant
//!   would. No secret is stored on either side.
//! - **On behalf of.** An API holding a user's Tessera access token (issued to it as
//!   the audience) exchanges it for a token to another resource; the new token names
//!   the API in `act`.
//!
//! The issuer's keys come through a `JwksFetcher` the server supplies (the service
//! has no HTTP client), cached for five minutes, refetched early at most once a
//! minute when a token names an unknown key.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use tessera_oauth::error::ErrorCode;

use serde_json::Value;
use tessera_ca::engine::ClientApp;
use tessera_core::Timestamp;
use tessera_directory::model::{ApplicationData, UserSpec};
use tessera_oauth::claims::{AccessTokenClaims, audience_matches};
use tessera_oauth::dpop::Proof;
use tessera_oauth::exchange::{self, SubjectKind, Trust};
use tessera_oauth::jws;
use tessera_oauth::keys::Algorithm;
use tessera_oauth::resource::{consent_scopes, requested_resource};
use tessera_oauth::token::OAuthError;
use tessera_store::Kind;

use super::authorize::UserSignIn;
use super::grants::{FamilyData, TokenClient};
use super::{
    AuthenticatedClient, TokenContext, TokenResponse, application_by_app_id, server_error,
};
use crate::Oidc;
use crate::codec;

/// Tessera's outbound HTTP for OAuth (the server supplies it; the service has no
/// HTTP client): bounded, with timeouts.
#[async_trait::async_trait]
pub trait OutboundHttp: Send + Sync {
    /// GETs a JSON document (an issuer's discovery document or key set).
    async fn get(&self, url: &str) -> Result<Vec<u8>, String>;
    /// POSTs a form (a back-channel logout token); returns the status code.
    async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Result<u16, String>;
    /// GETs a document an administrator named (a service provider's metadata),
    /// with this `Accept`, from a public address only (a loopback one only for a
    /// loopback URL): an internal service is not reached through it. At most
    /// `max` bytes.
    async fn get_public(&self, url: &str, accept: &str, max: usize) -> Result<Vec<u8>, String>;
}

const CACHE_SECONDS: i64 = 300;
const REFETCH_AFTER_SECONDS: i64 = 60;

#[derive(Default)]
pub(crate) struct ExternalKeys {
    pub fetcher: std::sync::OnceLock<Arc<dyn OutboundHttp>>,
    cache: RwLock<HashMap<String, (Timestamp, Arc<Value>)>>,
}

fn allowed_url(url: &str) -> bool {
    tessera_directory::validate::redirect_uri(url, tessera_directory::validate::RedirectKind::Web)
        .is_ok()
}

impl Oidc {
    /// Gives the service its HTTP client (external issuers' keys, logout tokens).
    pub fn set_outbound_http(&self, fetcher: Arc<dyn OutboundHttp>) {
        let _ = self.external_keys.fetcher.set(fetcher);
    }

    async fn fetch_json(&self, url: &str) -> Result<Value, OAuthError> {
        let unavailable = |why: String| {
            tracing::warn!(%url, %why, "cannot fetch an external issuer's document");
            OAuthError::new(
                ErrorCode::InvalidGrant,
                "the subject token's issuer cannot be reached",
            )
        };
        let fetcher = self
            .external_keys
            .fetcher
            .get()
            .ok_or_else(|| unavailable("no HTTP client is configured".to_string()))?;
        if !allowed_url(url) {
            return Err(unavailable("not an https (or loopback) URL".to_string()));
        }
        let bytes = fetcher.get(url).await.map_err(unavailable)?;
        serde_json::from_slice(&bytes).map_err(|e| unavailable(e.to_string()))
    }

    /// The issuer's key set, from its discovery document.
    async fn issuer_keys(&self, issuer: &str, fresh: bool) -> Result<Arc<Value>, OAuthError> {
        let now = self.now();
        if let Ok(cache) = self.external_keys.cache.read()
            && let Some((fetched, keys)) = cache.get(issuer)
        {
            let age = now.unix_seconds() - fetched.unix_seconds();
            if age < CACHE_SECONDS && !(fresh && age >= REFETCH_AFTER_SECONDS) {
                return Ok(keys.clone());
            }
        }
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let document = self.fetch_json(&discovery).await?;
        if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "the issuer's discovery document names another issuer",
            ));
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                OAuthError::new(ErrorCode::InvalidGrant, "the issuer publishes no jwks_uri")
            })?;
        let keys = Arc::new(self.fetch_json(jwks_uri).await?);
        if let Ok(mut cache) = self.external_keys.cache.write() {
            if cache.len() > 1000 {
                cache.clear();
            }
            cache.insert(issuer.to_string(), (now, keys.clone()));
        }
        Ok(keys)
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
    pub(crate) async fn exchange_grant(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
        proof: Option<&Proof>,
    ) -> Result<TokenResponse, OAuthError> {
        let request = exchange::parse(form)?;
        match request.kind {
            SubjectKind::External => {
                let client_id = form
                    .get("client_id")
                    .cloned()
                    .unwrap_or_default()
                    .chars()
                    .take(64)
                    .collect::<String>();
                let mut decided = None;
                let result = self
                    .federated(
                        ctx,
                        authorization,
                        form,
                        request.subject_token,
                        proof,
                        &mut decided,
                    )
                    .await;
                let (name, outcome) = match &result {
                    Ok((name, _)) => (name.clone(), None),
                    Err(error) => (client_id.clone(), Some(error.error.as_str())),
                };
                self.log_workload(
                    ctx,
                    (&client_id, &name, "federatedIdentityCredential"),
                    outcome,
                    decided.as_ref(),
                    &[],
                )
                .await?;
                result.map(|(_, response)| response)
            }
            SubjectKind::TesseraAccessToken => {
                self.on_behalf_of(ctx, authorization, form, request.subject_token, proof)
                    .await
            }
        }
    }

    async fn federated(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
        subject_token: &str,
        proof: Option<&Proof>,
        decided: &mut Option<crate::access::Decided>,
    ) -> Result<(String, TokenResponse), OAuthError> {
        let client = self.token_client(ctx, authorization, form).await?;
        let client_id = client.client_id();
        let mut reader = self.reader().await.map_err(server_error)?;
        let app = application_by_app_id(reader.as_mut(), ctx.tenant, &client_id)
            .await?
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient, "unknown client"))?;
        let app_data: ApplicationData = codec::data(&app).map_err(server_error)?;
        let (header, unverified) = jws::peek(subject_token)
            .map_err(|_| OAuthError::new(ErrorCode::InvalidGrant, "subject_token is not a JWT"))?;
        let issuer = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidGrant, "subject_token has no iss"))?;
        let trusted: Vec<_> = app_data
            .spec
            .federated_identity_credentials
            .iter()
            .filter(|c| c.issuer == issuer)
            .collect();
        if trusted.is_empty() {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "subject_token: issuer is not trusted by this application",
            ));
        }
        let mut keys = self.issuer_keys(issuer, false).await?;
        if exchange::key_for(&keys, &header).is_none() {
            keys = self.issuer_keys(issuer, true).await?;
        }
        let jwk = exchange::key_for(&keys, &header).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidGrant,
                "subject_token: no key of its issuer matches",
            )
        })?;
        let claims = jws::verify(subject_token, jwk, &Algorithm::ALL).map_err(|_| {
            OAuthError::new(
                ErrorCode::InvalidGrant,
                "subject_token: the signature does not verify",
            )
        })?;
        let now = self.now();
        let mut last = None;
        for credential in trusted {
            let trust = Trust {
                issuer: &credential.issuer,
                subject: &credential.subject,
                audiences: &credential.audiences,
            };
            match exchange::check_external(&claims, trust, now.unix_seconds()) {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(error) => last = Some(error),
            }
        }
        if let Some(error) = last {
            return Err(error);
        }
        let principal = reader
            .get_by_key1(
                ctx.tenant,
                Kind::ServicePrincipal,
                &app_data.app_id.to_string(),
            )
            .await
            .map_err(server_error)?;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let authenticated = AuthenticatedClient {
            _proof: super::ClientAuthenticated,
            app_data,
            principal,
            secret_end: Timestamp::from_unix_micros(exp.saturating_mul(1_000_000)),
            certificate: None,
            secret_key: None,
        };
        let grant = self
            .client_credentials(reader.as_mut(), ctx, authenticated, form)
            .await?;
        drop(reader);
        self.workload_detections(ctx, &grant, "federatedIdentityCredential", None)
            .await;
        let outcome = self
            .workload_decision(ctx, &grant)
            .await
            .map_err(server_error)?;
        let blocked = outcome.decision.outcome != tessera_ca::Outcome::Allow;
        *decided = Some(outcome);
        if blocked {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!(
                    "Conditional Access blocked this request (correlation id {})",
                    ctx.correlation_id
                ),
            ));
        }
        let fence = decided
            .as_ref()
            .map(|d| d.location_fence.clone())
            .unwrap_or_default();
        let mut response = self.issue(ctx, &grant, proof, fence).await?;
        response.issued_token_type = Some(exchange::ACCESS_TOKEN);
        Ok((grant.display_name.clone(), response))
    }

    async fn on_behalf_of(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
        subject_token: &str,
        proof: Option<&Proof>,
    ) -> Result<TokenResponse, OAuthError> {
        let client = self.token_client(ctx, authorization, form).await?;
        let TokenClient::Confidential(api) = &client else {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "only an authenticated API can exchange a user's token",
            ));
        };
        let api_id = api.app_data.app_id.to_string();
        let claims = self
            .verify_access_token(ctx.tenant, &ctx.issuer, subject_token)
            .await
            .map_err(|_| {
                OAuthError::new(
                    ErrorCode::InvalidGrant,
                    "subject_token is invalid or expired",
                )
            })?;
        let aud_ok = audience_matches(claims.get("aud"), |aud| aud == api_id);
        if !aud_ok || claims.get("idtyp").and_then(Value::as_str) != Some("user") {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "subject_token was not issued to this client for a user",
            ));
        }
        if claims.get("cnf").is_some() {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "a sender-constrained subject_token cannot be exchanged",
            ));
        }
        let scopes = tessera_oauth::authorize::parse_scopes(
            form.get("scope").map(String::as_str).unwrap_or(""),
        )?;
        let resources: Vec<String> = form.get("resource").cloned().into_iter().collect();
        let resource = requested_resource(&scopes, &resources)?.ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidTarget,
                "name the resource to exchange for",
            )
        })?;
        if resource == super::MANAGEMENT_RESOURCE {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "the management API cannot be reached on behalf of a user",
            ));
        }
        let mut reader = self.reader().await.map_err(server_error)?;
        self.check_resource(reader.as_mut(), ctx.tenant, &scopes, &resources)
            .await?;
        // A user's access token Tessera signed: its claims are the ones it issues.
        let subject: AccessTokenClaims = serde_json::from_value(Value::Object(claims))
            .map_err(|_| OAuthError::new(ErrorCode::InvalidGrant, "subject_token has no user"))?;
        let user_id = subject.sub;
        // The API may call the downstream resource for the user only as far as
        // consent (an administrator's, or the user's) allows.
        let granted = crate::directory::consent::granted_scopes(
            reader.as_mut(),
            ctx.tenant,
            api.app_data.app_id,
            user_id,
        )
        .await
        .map_err(server_error)?;
        let needed = consent_scopes(&scopes, &resources);
        if needed.iter().any(|s| !granted.contains(s)) {
            return Err(OAuthError::new(
                ErrorCode::ConsentRequired,
                "this API has no consent to call that resource for the user",
            ));
        }
        drop(reader);
        let user: UserSpec = self.enabled_user(ctx.tenant, user_id).await?;
        let mut family = FamilyData {
            client_id: api_id.clone(),
            confidential: true,
            scopes,
            resource: Some(resource),
            sign_in: UserSignIn {
                user_id,
                sid: subject.sid.unwrap_or_default(),
                auth_time: Timestamp::from_unix_micros(
                    subject.auth_time.unwrap_or(0).saturating_mul(1_000_000),
                ),
                amr: subject.amr.unwrap_or_default(),
                strengths: tessera_oauth::acr::strengths_of_acr(
                    subject.acr.as_deref().unwrap_or_default(),
                ),
                acr: subject.acr.unwrap_or_default(),
                acrs: subject.acrs,
                methods: Vec::new(),
                session_controls: None,
                location_fence: Vec::new(),
                user_agent: None,
                device_thumbprint: None,
                sign_in_risk: None,
            },
            current: String::new(),
            rotated: Vec::new(),
            jkt: None,
            actor: Some(api_id.clone()),
            requested_claims: Vec::new(),
            last_network: None,
            client_capabilities: Vec::new(),
        };
        self.require_dpop_if_asked(ctx.tenant, &api_id, proof)
            .await?;
        let decided = self
            .user_grant_allowed(ctx, &family, ClientApp::Browser, false)
            .await?;
        // The user's own token's fence goes on: it was decided with what
        // their device and client said, which this request does not carry.
        let mut fence = decided.location_fence;
        for id in subject.cae_loc {
            if !fence.contains(&id) {
                fence.push(id);
            }
        }
        family.sign_in.location_fence = fence;
        let mut response = self
            .user_tokens(ctx, &family, &user, None, false, None, proof, None)
            .await?;
        response.issued_token_type = Some(exchange::ACCESS_TOKEN);
        Ok(response)
    }
}

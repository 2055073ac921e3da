//! The user grants of the token endpoint: authorization code (RFC 6749 §4.1.3 with
//! PKCE, RFC 7636 §4.6) and refresh token (§6) with rotation: every use returns a
//! new refresh token, and presenting a rotated one again revokes the whole family
//! (RFC 9700 §4.14.2). Tokens carry the user's sign-in: `sid`, `auth_time`, `acr`,
//! `amr`.
//!
//! Refresh tokens are opaque, `tsr_rt_<family>.<secret>`; the store keeps one row per
//! family (in the session store, so "sign out everywhere" revokes them too) with the
//! SHA-256 of the current token and of those it replaced.

use std::collections::BTreeMap;
use tessera_oauth::error::ErrorCode;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tessera_ca::engine::ClientApp;
use tessera_core::crypto::{constant_time_eq, generate_secret, secret_hash, sha256};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::model::UserSpec;
use tessera_oauth::claims::{
    AccessTokenBasics, AccessTokenClaims, Actor, IdTokenClaims, IdentityType, ProfileClaims,
};
use tessera_oauth::dpop::Proof;
use tessera_oauth::token::{self, OAuthError};
use tessera_oauth::{pkce, resource};
use tessera_store::{Kind, SessionRow};
use uuid::Uuid;

use super::authorize::{CODE_PREFIX, CodeData, UserSignIn};
use super::{
    AuthenticatedClient, TokenContext, TokenResponse, authenticate_client, invalid_client,
    server_error,
};
use crate::Oidc;
use crate::codec;

/// Access tokens for users live 15 minutes: short, because they are not revoked.
pub const USER_ACCESS_TOKEN_SECONDS: i64 = 15 * 60;
/// ID tokens live as long as the access token issued with them.
pub const ID_TOKEN_SECONDS: i64 = USER_ACCESS_TOKEN_SECONDS;
/// A refresh token family ends 90 days after the sign-in...
pub const REFRESH_ABSOLUTE_SECONDS: i64 = 90 * 86_400;
/// ...or after 14 days without use.
pub const REFRESH_IDLE_SECONDS: i64 = 14 * 86_400;
/// Users in more groups than this get `hasgroups` instead of a list (the overage rule).
pub const MAX_GROUPS_IN_TOKEN: usize = 200;
/// Rotated refresh tokens remembered per family, to recognise reuse.
const REMEMBERED_ROTATIONS: usize = 50;

pub(crate) const FAMILY_PREFIX: &str = "rt:";
const REFRESH_TOKEN_PREFIX: &str = "tsr_rt_";

/// What a refresh token family stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FamilyData {
    pub client_id: String,
    pub confidential: bool,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    pub sign_in: UserSignIn,
    /// SHA-256 of the current refresh token.
    pub current: String,
    /// SHA-256 of the tokens it replaced, newest last.
    #[serde(default)]
    pub rotated: Vec<String>,
    /// A public client's refresh tokens are bound to its DPoP key (RFC 9449 §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// The API acting for the user (token exchange on behalf of): the `act` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Claims the `claims` parameter asked for in the ID token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested_claims: Vec<String>,
    /// The network (/24 or /64) the family was last refreshed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_network: Option<String>,
    /// What the client declared it can do (`claims` `access_token.xms_cc`):
    /// `cp1`, it handles claims challenges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_capabilities: Vec<String>,
}

/// How a client showed itself at the token endpoint.
pub(crate) enum TokenClient {
    Confidential(Box<AuthenticatedClient>),
    /// A public client: only its id.
    Public(String),
}

impl TokenClient {
    pub fn client_id(&self) -> String {
        match self {
            TokenClient::Confidential(client) => client.app_data.app_id.to_string(),
            TokenClient::Public(id) => id.clone(),
        }
    }

    fn authenticated(&self) -> bool {
        matches!(self, TokenClient::Confidential(_))
    }
}

/// The family id of the refresh tokens a code leads to, derived from the code so
/// that a reused code can revoke them without any other record.
pub(crate) fn family_of_code(code_hash: &str) -> String {
    URL_SAFE_NO_PAD.encode(&sha256(format!("family:{code_hash}").as_bytes())[..18])
}

fn parse_refresh_token(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(REFRESH_TOKEN_PREFIX)?;
    let (family, secret) = rest.split_once('.')?;
    (family.len() == 24 && secret.len() >= 32 && text.len() <= 256).then_some(family)
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, description)
}

impl Oidc {
    /// The client of a token request: authenticated by secret, or a public client
    /// naming itself with `client_id`.
    pub(crate) async fn token_client(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
    ) -> Result<TokenClient, OAuthError> {
        let assertion = tessera_oauth::assertion::from_form(form)?;
        match (assertion, token::client_secret(authorization, form)?) {
            (Some(_), Some(_)) => Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "use one client authentication method, not two",
            )),
            (Some(assertion), None) => Ok(TokenClient::Confidential(Box::new(
                self.authenticate_assertion(ctx, assertion, form).await?,
            ))),
            (None, Some(credentials)) => {
                let refuse = invalid_client(credentials.basic);
                let mut reader = self.reader().await.map_err(server_error)?;
                let client = authenticate_client(
                    reader.as_mut(),
                    ctx.tenant,
                    &credentials,
                    self.now(),
                    &refuse,
                )
                .await?;
                Ok(TokenClient::Confidential(Box::new(client)))
            }
            (None, None) => {
                let client_id = form.get("client_id").cloned().ok_or_else(|| {
                    OAuthError::new(
                        ErrorCode::InvalidClient,
                        "client authentication is required",
                    )
                })?;
                if ctx.client_certificates.is_empty() {
                    return Ok(TokenClient::Public(client_id));
                }
                // A certificate came: it authenticates the client (RFC 8705 §2) if
                // the client registered one; a browser's smart card on the same
                // connection does not turn a public client away.
                match self.authenticate_mtls(ctx, &client_id).await {
                    Ok(client) => Ok(TokenClient::Confidential(Box::new(client))),
                    Err(error) if self.uses_tls_client_auth(ctx.tenant, &client_id).await? => {
                        Err(error)
                    }
                    Err(_) => Ok(TokenClient::Public(client_id)),
                }
            }
        }
    }

    /// `grant_type=authorization_code`.
    pub(crate) async fn code_grant(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
        proof: Option<&Proof>,
    ) -> Result<TokenResponse, OAuthError> {
        let code = form
            .get("code")
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "code is required"))?;
        let client = self.token_client(ctx, authorization, form).await?;
        if code.len() > 128 {
            return Err(invalid_grant("the code is invalid or expired"));
        }
        let code_hash = secret_hash(code);
        let id = format!("{CODE_PREFIX}{code_hash}");
        let now = self.now();
        let row = self
            .store
            .session_get(ctx.tenant, &id)
            .await
            .map_err(server_error)?
            .filter(|row| row.expires > now)
            .ok_or_else(|| invalid_grant("the code is invalid or expired"))?;
        // One use: the first redemption marks the code used (a versioned update, so
        // of two concurrent redemptions one fails); any other is a replay, and the
        // tokens the code led to are revoked (RFC 6749 §4.1.2).
        let mut used = row.clone();
        used.version += 1;
        used.revoked = Some(now);
        let first =
            row.revoked.is_none() && self.store.session_update(ctx.tenant, &used).await.is_ok();
        if !first {
            self.revoke_family(
                ctx.tenant,
                &family_of_code(&code_hash),
                now,
                tessera_cae::Reason::RefreshTokenReused,
            )
            .await?;
            return Err(invalid_grant("the code was already used"));
        }
        let data: CodeData = serde_json::from_str(&row.data).map_err(server_error)?;
        if data.request.client_id != client.client_id() {
            return Err(invalid_grant("the code was issued to another client"));
        }
        if data.confidential && !client.authenticated() {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "this client must authenticate",
            ));
        }
        if form.get("redirect_uri") != Some(&data.request.redirect_uri) {
            return Err(invalid_grant(
                "redirect_uri differs from the authorization request",
            ));
        }
        let verifier = form.get("code_verifier").ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidRequest,
                "code_verifier is required (PKCE)",
            )
        })?;
        if !pkce::verify(verifier, &data.request.code_challenge) {
            return Err(invalid_grant(
                "the code_verifier does not match the challenge",
            ));
        }
        // RFC 9449 §10: a code bound with dpop_jkt needs a proof by that key.
        if let Some(jkt) = &data.request.dpop_jkt
            && proof.is_none_or(|p| &p.jkt != jkt)
        {
            return Err(invalid_grant("the code is bound to another DPoP key"));
        }
        self.require_dpop_if_asked(ctx.tenant, &data.request.client_id, proof)
            .await?;
        let upn = self.enabled_user(ctx.tenant, data.sign_in.user_id).await?;
        let resource = resource::checked_resource(&data.request.scopes, &data.request.resources);
        let family = FamilyData {
            client_id: data.request.client_id.clone(),
            confidential: data.confidential,
            scopes: data.request.scopes.clone(),
            resource,
            sign_in: data.sign_in.clone(),
            current: String::new(),
            rotated: Vec::new(),
            jkt: if data.confidential {
                None
            } else {
                proof.map(|p| p.jkt.clone())
            },
            actor: None,
            requested_claims: data.request.requested_claims("id_token"),
            last_network: None,
            client_capabilities: tessera_oauth::authorize::client_capabilities(
                data.request.claims.as_ref(),
            ),
        };
        let refresh_token = if data.request.has_scope("offline_access") {
            Some(
                self.start_family(ctx.tenant, &family_of_code(&code_hash), &family, now)
                    .await?,
            )
        } else {
            None
        };
        self.user_tokens(
            ctx,
            &family,
            &upn,
            data.request.nonce.as_deref(),
            data.request.is_openid(),
            refresh_token,
            proof,
            match &client {
                TokenClient::Confidential(client) => client.certificate.as_deref(),
                TokenClient::Public(_) => None,
            },
        )
        .await
    }

    /// `grant_type=refresh_token`.
    pub(crate) async fn refresh_grant(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
        proof: Option<&Proof>,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = form.get("refresh_token").ok_or_else(|| {
            OAuthError::new(ErrorCode::InvalidRequest, "refresh_token is required")
        })?;
        let client = self.token_client(ctx, authorization, form).await?;
        let family_id = parse_refresh_token(presented)
            .ok_or_else(|| invalid_grant("the refresh token is invalid"))?;
        let id = format!("{FAMILY_PREFIX}{family_id}");
        let now = self.now();
        let row = self
            .store
            .session_get(ctx.tenant, &id)
            .await
            .map_err(server_error)?
            .ok_or_else(|| invalid_grant("the refresh token is invalid"))?;
        let mut data: FamilyData = serde_json::from_str(&row.data).map_err(server_error)?;
        if data.client_id != client.client_id() {
            return Err(invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        if data.confidential && !client.authenticated() {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "this client must authenticate",
            ));
        }
        let hash = secret_hash(presented);
        if row.revoked.is_some()
            || now >= row.expires
            || now >= row.last_seen.plus_seconds(REFRESH_IDLE_SECONDS)
        {
            return Err(invalid_grant(
                "the refresh token has expired or was revoked",
            ));
        }
        // A change since the family began (its user disabled or their sessions
        // revoked, on any node) ends it, even where the row was not marked.
        let ended = self
            .revocations()
            .refuses(&tessera_cae::Presented {
                tenant: ctx.tenant,
                user: Some(data.sign_in.user_id),
                client_id: Some(&data.client_id),
                sid: Some(&data.sign_in.sid),
                family: Some(family_id),
                jti: None,
                issued: row.created,
            })
            .await
            .map_err(server_error)?;
        if ended.is_some() {
            return Err(invalid_grant(
                "the refresh token has expired or was revoked",
            ));
        }
        if !constant_time_eq(hash.as_bytes(), data.current.as_bytes()) {
            if let Some(position) = data.rotated.iter().position(|old| old == &hash) {
                // A rotated token came back: someone holds a copy. End the family,
                // and tell Identity Protection (a token anomaly of the user).
                self.revoke_family(
                    ctx.tenant,
                    family_id,
                    now,
                    tessera_cae::Reason::RefreshTokenReused,
                )
                .await?;
                tracing::warn!(correlation_id = %ctx.correlation_id, "refresh token reuse: family revoked");
                let network = ctx
                    .client_address
                    .as_deref()
                    .and_then(tessera_authn::lockout::network_of);
                let found = tessera_risk::token::refresh_replayed(
                    data.last_network.as_deref(),
                    network.as_deref(),
                    now.unix_seconds() - row.last_seen.unix_seconds(),
                    position + 1 == data.rotated.len(),
                );
                let name = self.user_name(ctx.tenant, data.sign_in.user_id).await;
                if let Err(error) = self
                    .sign_in
                    .risk
                    .record_for(
                        ctx.tenant,
                        data.sign_in.user_id,
                        &name,
                        (&ctx.correlation_id, ctx.client_address.as_deref()),
                        found,
                    )
                    .await
                {
                    tracing::warn!(%error, "cannot record a replayed refresh token");
                }
                return Err(invalid_grant("the refresh token was already used"));
            }
            return Err(invalid_grant("the refresh token is invalid"));
        }
        if let Some(jkt) = &data.jkt
            && proof.is_none_or(|p| &p.jkt != jkt)
        {
            // The right token without its key: a copy (Identity Protection).
            let name = self.user_name(ctx.tenant, data.sign_in.user_id).await;
            if let Err(error) = self
                .sign_in
                .risk
                .binding_mismatch(
                    ctx.tenant,
                    data.sign_in.user_id,
                    &name,
                    ctx.client_address.as_deref(),
                    &ctx.correlation_id,
                    "refreshToken",
                    "dpop",
                )
                .await
            {
                tracing::warn!(%error, "cannot record a refresh token's binding mismatch");
            }
            return Err(invalid_grant(
                "the refresh token is bound to another DPoP key",
            ));
        }
        self.require_dpop_if_asked(ctx.tenant, &data.client_id, proof)
            .await?;
        // Down-scoping only (RFC 6749 §6).
        if let Some(scope) = form.get("scope") {
            let asked = tessera_oauth::authorize::parse_scopes(scope)?;
            if asked.iter().any(|s| !data.scopes.contains(s)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a refresh can only narrow the scopes",
                ));
            }
        }
        let upn = self.enabled_user(ctx.tenant, data.sign_in.user_id).await?;
        // Conditional Access at every refresh, before the token rotates (a refusal
        // leaves the family as it was): a policy that now blocks, or asks for more
        // than the original sign-in gave (sign-in frequency included), sends the
        // user back to sign in.
        // The console is a browser page of Tessera's own, public but never a desktop app.
        let client_app = if data.confidential || data.client_id == super::CONSOLE_CLIENT_ID {
            ClientApp::Browser
        } else {
            ClientApp::MobileAppsAndDesktopClients
        };
        let decided = self
            .user_grant_allowed(ctx, &data, client_app, false)
            .await?;
        let next = self.next_refresh_token(family_id)?;
        data.rotated.push(std::mem::take(&mut data.current));
        if data.rotated.len() > REMEMBERED_ROTATIONS {
            data.rotated.remove(0);
        }
        data.current = secret_hash(&next);
        data.last_network = ctx
            .client_address
            .as_deref()
            .and_then(tessera_authn::lockout::network_of);
        let mut updated = row.clone();
        updated.version += 1;
        updated.last_seen = now;
        updated.data = serde_json::to_string(&data).map_err(server_error)?;
        if self
            .store
            .session_update(ctx.tenant, &updated)
            .await
            .is_err()
        {
            // Another request rotated this token at the same moment.
            return Err(invalid_grant("the refresh token was already used"));
        }
        let mut issued_for = data.clone();
        if let Some(scope) = form.get("scope") {
            issued_for.scopes = tessera_oauth::authorize::parse_scopes(scope)?;
        }
        issued_for.sign_in.session_controls = super::authorize::session_controls_claim(&decided);
        issued_for.sign_in.location_fence = decided.location_fence.clone();
        let openid = issued_for.scopes.iter().any(|s| s == "openid");
        let response = self
            .user_tokens(
                ctx,
                &issued_for,
                &upn,
                None,
                openid,
                Some(next),
                proof,
                match &client {
                    TokenClient::Confidential(client) => client.certificate.as_deref(),
                    TokenClient::Public(_) => None,
                },
            )
            .await?;
        Ok(response)
    }

    /// A family's user's principal name, for Identity Protection's records
    /// (empty when the user is gone or disabled).
    async fn user_name(&self, tenant: TenantId, user: Uuid) -> String {
        self.enabled_user(tenant, user)
            .await
            .map(|user| user.user_principal_name)
            .unwrap_or_default()
    }

    fn next_refresh_token(&self, family_id: &str) -> Result<String, OAuthError> {
        let generated = generate_secret("").map_err(server_error)?;
        Ok(format!(
            "{REFRESH_TOKEN_PREFIX}{family_id}.{}",
            generated.secret.expose()
        ))
    }

    pub(crate) async fn start_family(
        &self,
        tenant: TenantId,
        family_id: &str,
        family: &FamilyData,
        now: Timestamp,
    ) -> Result<String, OAuthError> {
        let token = self.next_refresh_token(family_id)?;
        let mut data = family.clone();
        data.current = secret_hash(&token);
        let row = SessionRow {
            id: format!("{FAMILY_PREFIX}{family_id}"),
            user_id: Some(family.sign_in.user_id),
            created: now,
            last_seen: now,
            expires: now.plus_seconds(REFRESH_ABSOLUTE_SECONDS),
            revoked: None,
            version: 1,
            data: serde_json::to_string(&data).map_err(server_error)?,
        };
        self.store
            .session_insert(tenant, &row)
            .await
            .map_err(server_error)?;
        Ok(token)
    }

    /// Marks a refresh token family revoked (nothing happens if there is none),
    /// and ends the access tokens issued in it on every node.
    pub(crate) async fn revoke_family(
        &self,
        tenant: TenantId,
        family_id: &str,
        now: Timestamp,
        reason: tessera_cae::Reason,
    ) -> Result<(), OAuthError> {
        let id = format!("{FAMILY_PREFIX}{family_id}");
        for _ in 0..3 {
            let Some(row) = self
                .store
                .session_get(tenant, &id)
                .await
                .map_err(server_error)?
            else {
                return Ok(());
            };
            if row.revoked.is_some() {
                return Ok(());
            }
            let mut revoked = row;
            revoked.version += 1;
            revoked.revoked = Some(now);
            if self.store.session_update(tenant, &revoked).await.is_ok() {
                // Only the change from live to revoked is told: a replayed
                // code or token writes nothing more.
                return self
                    .revocations()
                    .revoke(
                        tenant,
                        &[tessera_cae::Target::Family(family_id.to_string())],
                        reason,
                    )
                    .await
                    .map_err(server_error);
            }
        }
        Err(server_error("cannot revoke a refresh token family"))
    }

    /// Whether an application authenticates with a CA-issued certificate.
    async fn uses_tls_client_auth(
        &self,
        tenant: TenantId,
        client_id: &str,
    ) -> Result<bool, OAuthError> {
        let mut reader = self.reader().await.map_err(server_error)?;
        Ok(
            match super::application_by_app_id(reader.as_mut(), tenant, client_id).await? {
                Some(app) => codec::data::<tessera_directory::model::ApplicationData>(&app)
                    .map_err(server_error)?
                    .spec
                    .tls_client_auth_subject_dn
                    .is_some(),
                None => false,
            },
        )
    }

    /// Refuses a request without a proof when the application requires DPoP.
    pub(crate) async fn require_dpop_if_asked(
        &self,
        tenant: TenantId,
        client_id: &str,
        proof: Option<&Proof>,
    ) -> Result<(), OAuthError> {
        if proof.is_some() {
            return Ok(());
        }
        let mut reader = self.reader().await.map_err(server_error)?;
        let app = super::application_by_app_id(reader.as_mut(), tenant, client_id).await?;
        let requires = match app {
            Some(app) => {
                codec::data::<tessera_directory::model::ApplicationData>(&app)
                    .map_err(server_error)?
                    .spec
                    .dpop_bound_access_tokens
            }
            None => false,
        };
        if requires {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "this application requires DPoP-bound tokens: send a DPoP proof",
            ));
        }
        Ok(())
    }

    /// The user's principal name if the user exists and may sign in.
    pub(crate) async fn enabled_user(
        &self,
        tenant: TenantId,
        user_id: Uuid,
    ) -> Result<UserSpec, OAuthError> {
        let mut reader = self.reader().await.map_err(server_error)?;
        let user = reader
            .get(tenant, Kind::User, user_id)
            .await
            .map_err(server_error)?
            .ok_or_else(|| invalid_grant("the user no longer exists"))?;
        let spec: UserSpec = codec::data(&user).map_err(server_error)?;
        if !spec.account_enabled {
            return Err(invalid_grant("the user is disabled"));
        }
        Ok(spec)
    }

    /// The app roles (values) a user holds on an application, directly or through
    /// their groups; with `enforce`, `access_denied` when the application requires
    /// assignment and the user has none. An application without a service
    /// principal (or Tessera's own CLI) has no roles.
    pub(crate) async fn app_roles_of_user(
        &self,
        tenant: TenantId,
        app_id: &str,
        user_id: Uuid,
        enforce: bool,
    ) -> Result<Vec<String>, OAuthError> {
        let mut reader = self.reader().await.map_err(server_error)?;
        let Some(app) = super::application_by_app_id(reader.as_mut(), tenant, app_id).await? else {
            return Ok(Vec::new());
        };
        let app: tessera_directory::model::ApplicationData =
            codec::data(&app).map_err(server_error)?;
        let Some(assignment) = crate::directory::app_roles::user_assignment(
            reader.as_mut(),
            tenant,
            &app,
            user_id,
            self.now(),
        )
        .await
        .map_err(server_error)?
        else {
            return Ok(Vec::new());
        };
        if enforce && !assignment.admits() {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the application requires an assignment the user does not have",
            ));
        }
        Ok(crate::directory::app_roles::role_values(
            &app,
            &assignment.roles,
        ))
    }

    /// The algorithm an application's ID tokens are signed with
    /// (`idTokenSignedResponseAlg`; ES256 by default).
    async fn id_token_algorithm(
        &self,
        tenant: TenantId,
        client_id: &str,
    ) -> Result<tessera_oauth::keys::Algorithm, OAuthError> {
        let mut reader = self.reader().await.map_err(server_error)?;
        let alg = match super::application_by_app_id(reader.as_mut(), tenant, client_id).await? {
            Some(app) => codec::data::<tessera_directory::model::ApplicationData>(&app)
                .map_err(server_error)?
                .spec
                .id_token_signed_response_alg
                .as_deref()
                .and_then(tessera_oauth::keys::Algorithm::parse),
            None => None,
        };
        Ok(alg.unwrap_or(tessera_oauth::keys::Algorithm::ES256))
    }

    /// The user's groups for tokens: every group they are in, through nesting, or
    /// `None` when there are more than the token can carry.
    async fn token_groups(
        &self,
        tenant: TenantId,
        user_id: Uuid,
    ) -> Result<Option<Vec<Uuid>>, OAuthError> {
        let mut reader = self.reader().await.map_err(server_error)?;
        match crate::directory::groups::containing_groups(
            reader.as_mut(),
            tenant,
            user_id,
            true,
            self.now(),
        )
        .await
        {
            Ok(groups) if groups.len() <= MAX_GROUPS_IN_TOKEN => Ok(Some(groups)),
            Ok(_) | Err(crate::ServiceError::Conflict { .. }) => Ok(None),
            Err(error) => Err(server_error(error)),
        }
    }

    /// Conditional Access for a token issued to a user without an interactive
    /// sign-in (refresh, device code, on-behalf-of, password): anything but
    /// "allow" refuses with `invalid_grant` and is logged with its explanation.
    pub(crate) async fn user_grant_allowed(
        &self,
        ctx: &TokenContext,
        grant: &FamilyData,
        client_app: ClientApp,
        device_code_flow: bool,
    ) -> Result<crate::access::Decided, OAuthError> {
        // The sign-in's own risk goes with its tokens. A confidential
        // client's request comes from the application's server, whose address
        // says nothing of the person; a public client's (a native app, a
        // single-page app, a device) comes from the person's device, whose
        // address counts too.
        let carried = grant
            .sign_in
            .sign_in_risk
            .unwrap_or(tessera_risk::RiskLevel::None);
        let address = if grant.confidential {
            tessera_risk::RiskLevel::None
        } else {
            self.sign_in
                .risk
                .address_risk(ctx.client_address.as_deref())
        };
        self.user_grant_allowed_at(
            ctx,
            grant,
            client_app,
            device_code_flow,
            carried.max(address),
        )
        .await
    }

    /// As [`Oidc::user_grant_allowed`], for a grant whose request is itself
    /// the sign-in (the password grant), with that sign-in's real-time risk.
    pub(crate) async fn user_grant_allowed_at(
        &self,
        ctx: &TokenContext,
        grant: &FamilyData,
        client_app: ClientApp,
        device_code_flow: bool,
        sign_in_risk: tessera_risk::RiskLevel,
    ) -> Result<crate::access::Decided, OAuthError> {
        let resource_app = grant
            .resource
            .as_deref()
            .and_then(resource::resource_app_id);
        let management = grant.resource.as_deref() == Some(super::MANAGEMENT_RESOURCE);
        // No stand-in for a client id that does not parse: a policy could name it.
        let client = grant
            .client_id
            .parse()
            .map_err(|_| server_error("a grant whose client id is not an application id"))?;
        let target = crate::access::app_target(client, resource_app, management);
        let mut reader = self.snapshot().await.map_err(server_error)?;
        let facts = self
            .access
            .user_facts(
                reader.as_mut(),
                ctx.tenant,
                crate::access::UserAccess {
                    user: grant.sign_in.user_id,
                    target,
                    // Contexts the sign-in met are decided again (their
                    // policies' sign-in frequency included).
                    auth_contexts: crate::access::contexts_of(&grant.sign_in.acrs),
                    client_app,
                    client_address: ctx.client_address.as_deref(),
                    user_agent: grant.sign_in.user_agent.as_deref(),
                    device_thumbprint: grant.sign_in.device_thumbprint.as_deref(),
                    strengths: &grant.sign_in.strengths,
                    auth_time: Some(grant.sign_in.auth_time),
                    password_changed: false,
                    device_code_flow,
                    sign_in_risk,
                },
            )
            .await
            .map_err(server_error)?;
        drop(reader);
        let decided = self
            .access
            .decide(ctx.tenant, &facts)
            .await
            .map_err(server_error)?;
        if decided.decision.outcome == tessera_ca::Outcome::Allow {
            return Ok(decided);
        }
        let blocked = decided.decision.outcome == tessera_ca::Outcome::Block;
        let entry = crate::sign_in::SignInEntry {
            id: Uuid::new_v4(),
            created_date_time: self.now(),
            user_id: Some(grant.sign_in.user_id),
            user_principal_name: self
                .enabled_user(ctx.tenant, grant.sign_in.user_id)
                .await
                .map(|u| u.user_principal_name)
                .unwrap_or_default(),
            app_display_name: self
                .app_display_name(ctx.tenant, &grant.client_id)
                .await
                .unwrap_or_else(|| grant.client_id.clone()),
            client_address: ctx.client_address.clone(),
            user_agent: None,
            result: if blocked { "failure" } else { "interrupted" }.to_string(),
            failure_code: Some(
                if blocked {
                    crate::sign_in::failure::CA_BLOCKED
                } else {
                    crate::sign_in::failure::CA_INTERRUPTED
                }
                .to_string(),
            ),
            failure_reason: Some(
                if blocked {
                    "blocked by Conditional Access"
                } else {
                    "Conditional Access asks for an interactive sign-in"
                }
                .to_string(),
            ),
            authentication_methods: grant.sign_in.methods.clone(),
            authentication_requirement: "singleFactorAuthentication".to_string(),
            satisfied_strengths: grant.sign_in.strengths.clone(),
            correlation_id: ctx.correlation_id.clone(),
            sign_in_event_type: "nonInteractiveUser".to_string(),
            app_id: Some(crate::sign_in::truncate(&grant.client_id, 64)),
            conditional_access_status: Some(decided.status().to_string()),
            applied_conditional_access_policies: Some(decided.log_value()),
            attempt_count: None,
            last_attempt_date_time: None,
            risk_level_during_sign_in: None,
            risk_event_types: Vec::new(),
            device_detail: None,
        };
        self.sign_in
            .append_log(ctx.tenant, &entry)
            .await
            .map_err(server_error)?;
        Err(OAuthError::new(
            ErrorCode::InvalidGrant,
            if blocked {
                format!(
                    "Conditional Access blocked this request (correlation id {})",
                    ctx.correlation_id
                )
            } else {
                format!(
                    "interaction_required: sign in again to meet Conditional Access (correlation id {})",
                    ctx.correlation_id
                )
            },
        ))
    }

    /// The access token, ID token (OIDC) and refresh token of a user grant.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn user_tokens(
        &self,
        ctx: &TokenContext,
        grant: &FamilyData,
        user: &UserSpec,
        nonce: Option<&str>,
        openid: bool,
        refresh_token: Option<String>,
        proof: Option<&Proof>,
        certificate: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let tenant = ctx.tenant;
        let issued_at = self.now();
        let issued = issued_at.unix_seconds();
        let sign_in = &grant.sign_in;
        // A token carries what the user holds when it is made (roles, groups):
        // it does not outlive a PIM assignment behind that, so applications
        // learn of an activation's end when the token expires. The console's
        // token carries neither (the console reads roles at each request).
        // A client that handles claims challenges and hears of revocations
        // (an enabled stream) may have a long-lived token (continuous access
        // evaluation): a revocation reaches it, and Tessera's resources
        // answer it with a challenge.
        // Conditional Access's session control that disables continuous
        // access evaluation (Entra's "Disable") makes no token capable.
        let cae_disabled = sign_in
            .session_controls
            .as_ref()
            .and_then(|s| s.get("continuousAccessEvaluation"))
            .and_then(serde_json::Value::as_str)
            == Some("disabled");
        let capable = grant.client_capabilities.iter().any(|c| c == "cp1") && !cae_disabled;
        let lifetime = if grant.client_id == super::CONSOLE_CLIENT_ID {
            USER_ACCESS_TOKEN_SECONDS
        } else {
            let mut reader = self.reader().await.map_err(server_error)?;
            let longest = if capable {
                // Tessera's own resources check revocations themselves;
                // another application must hear of them too.
                let audience = grant
                    .resource
                    .as_deref()
                    .and_then(resource::resource_app_id)
                    .map(|id| id.to_string());
                if audience.is_some() && !sign_in.location_fence.is_empty() {
                    // Another application's API does not check where a
                    // token fenced by location comes from: it stays short.
                    USER_ACCESS_TOKEN_SECONDS
                } else {
                    crate::signals::cae_token_seconds(
                        reader.as_mut(),
                        tenant,
                        &grant.client_id,
                        audience.as_deref(),
                    )
                    .await
                    .map_err(server_error)?
                    .unwrap_or(USER_ACCESS_TOKEN_SECONDS)
                }
            } else {
                USER_ACCESS_TOKEN_SECONDS
            };
            let ends = crate::directory::role_schedules::earliest_end_at(
                reader.as_mut(),
                tenant,
                sign_in.user_id,
                self.now(),
            )
            .await
            .map_err(server_error)?;
            ends.map_or(longest, |end| {
                (end.unix_seconds() - issued).clamp(1, longest)
            })
        };
        let mut access = AccessTokenClaims::new(AccessTokenBasics {
            issuer: ctx.issuer.clone(),
            subject: sign_in.user_id,
            audience: resource::access_token_audience(grant.resource.as_deref(), &ctx.issuer),
            client_id: grant.client_id.clone(),
            tenant: tenant.0,
            identity_type: IdentityType::User,
            issued_at: issued,
            lifetime_seconds: lifetime,
            id: super::token_id(issued_at),
        });
        access.scp = Some(resource::scp_claim(&grant.scopes));
        access.sid = Some(sign_in.sid.clone());
        access.auth_time = Some(sign_in.auth_time.unix_seconds());
        access.acr = Some(sign_in.acr.clone());
        access.amr = Some(sign_in.amr.clone());
        access.acrs = sign_in.acrs.clone();
        access.preferred_username = Some(user.user_principal_name.clone());
        // The refresh token family the token belongs to (not a secret: the family's
        // tokens are its id and a secret), so introspection can tell when the family
        // ended, by revocation or by a replayed refresh token.
        access.fam = refresh_token
            .as_deref()
            .and_then(parse_refresh_token)
            .map(str::to_string);
        access.session_controls = sign_in.session_controls.clone();
        access.cae_loc = sign_in.location_fence.clone();
        access.act = grant.actor.clone().map(|sub| Actor { sub });
        if capable {
            access.xms_cc = vec!["cp1".to_string()];
        }
        // The user's roles on the resource go into the access token; on the client
        // application, into the ID token. Refreshing re-checks the assignment.
        // At the token endpoint a missing assignment is invalid_grant (RFC 6749
        // §5.2 has no access_denied).
        let client_roles = self
            .app_roles_of_user(tenant, &grant.client_id, sign_in.user_id, true)
            .await
            .map_err(|e| {
                if e.error == ErrorCode::AccessDenied {
                    invalid_grant(&e.description)
                } else {
                    e
                }
            })?;
        if let Some(resource) = grant
            .resource
            .as_deref()
            .and_then(resource::resource_app_id)
        {
            access.roles = self
                .app_roles_of_user(tenant, &resource.to_string(), sign_in.user_id, false)
                .await?;
        }
        // The console keeps its token in a cookie and authorizes by role grants:
        // no groups, so the token stays small whatever the user belongs to.
        if grant.client_id != super::CONSOLE_CLIENT_ID {
            match self.token_groups(tenant, sign_in.user_id).await? {
                Some(groups) => access.groups = Some(groups),
                None => access.hasgroups = true,
            }
        }
        let token_type = super::dpop::bind(&mut access, proof, certificate);
        let access_token = self.sign_token(tenant, "at+jwt", &access).await?;
        let id_token = if openid {
            let claims = IdTokenClaims {
                iss: ctx.issuer.clone(),
                sub: sign_in.user_id,
                aud: grant.client_id.clone(),
                azp: grant.client_id.clone(),
                iat: issued,
                exp: issued + lifetime.min(ID_TOKEN_SECONDS),
                auth_time: sign_in.auth_time.unix_seconds(),
                acr: sign_in.acr.clone(),
                amr: sign_in.amr.clone(),
                sid: sign_in.sid.clone(),
                tid: tenant.0,
                nonce: nonce.map(str::to_string),
                profile: ProfileClaims::released(user, &grant.scopes, &grant.requested_claims),
                roles: client_roles,
                session_controls: sign_in.session_controls.clone(),
            };
            let alg = self.id_token_algorithm(tenant, &grant.client_id).await?;
            Some(self.sign_token_with(tenant, alg, "JWT", &claims).await?)
        } else {
            None
        };
        let app_name = self
            .app_display_name(tenant, &grant.client_id)
            .await
            .unwrap_or_else(|| grant.client_id.clone());
        let entry = self.user_app_entry(
            &user.user_principal_name,
            sign_in,
            &app_name,
            &grant.client_id,
            &ctx.correlation_id,
            ctx.client_address.clone(),
            None,
            "nonInteractiveUser",
        );
        self.sign_in
            .append_log(tenant, &entry)
            .await
            .map_err(server_error)?;
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in: lifetime,
            scope: Some(grant.scopes.join(" ")),
            refresh_token,
            id_token,
            issued_token_type: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_name_their_family() {
        let family = family_of_code("abc");
        assert_eq!(family.len(), 24);
        let token = format!("{REFRESH_TOKEN_PREFIX}{family}.{}", "s".repeat(43));
        assert_eq!(parse_refresh_token(&token), Some(family.as_str()));
        assert_eq!(parse_refresh_token("tsr_rt_short.x"), None);
        assert_eq!(parse_refresh_token(&token.replace('.', "")), None);
        assert_eq!(parse_refresh_token("eyJhbGciOi"), None);
    }
}

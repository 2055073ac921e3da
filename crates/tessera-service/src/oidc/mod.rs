//! The OpenID Connect context: OAuth 2.x and OpenID Connect use cases. The
//! authorization endpoint (`authorize/`), the token endpoint's grants (client
//! credentials here; code and refresh in `grants.rs`; `device.rs`, `exchange.rs`,
//! `password.rs`), client authentication (`client_auth.rs`), DPoP (`dpop.rs`),
//! introspection, revocation and userinfo (`inspect.rs`), logout (`logout.rs`),
//! dynamic registration (`registration.rs`), CORS origins (`cors.rs`) and the
//! signing keys (`signing_keys.rs`). Tokens are RFC 9068 JWTs signed with the
//! tenant's current ES256 key; every token request is logged as a sign-in.
//!
//! May call: the kernel, the directory, access, sign-in, app sign-in.

use std::collections::BTreeMap;
use tessera_oauth::error::ErrorCode;

use serde::Serialize;
use tessera_core::crypto::secret_hash;
use tessera_core::{AppId, TenantId, Timestamp};
use tessera_directory::model::{ApplicationData, ClientSecretData, ServicePrincipalData};
use tessera_oauth::claims::{AccessTokenBasics, AccessTokenClaims, IdentityType};
use tessera_oauth::jws;
use tessera_oauth::keys::Algorithm;
use tessera_oauth::token::{self, OAuthError};
use tessera_store::{Kind, Reader, Record};
use uuid::Uuid;

use crate::codec;
use client_auth::assertion_client_id;

mod authorize;
mod client_auth;
mod cors;
mod device;
mod dpop;
mod exchange;
mod fence;

mod grants;
mod inspect;
mod logout;
mod password;
mod registration;
pub mod signing_keys;

pub use authorize::{
    AuthorizeContext, AuthorizeOutcome, InterruptionAnswer, PushedRequest, StepUp, TermsToAccept,
};
pub(crate) use cors::CorsOrigins;
pub use cors::{CORS_ORIGINS_SECONDS, origin_of};
pub use device::{DeviceAuthorization, DeviceRequestView};
pub(crate) use exchange::ExternalKeys;
pub use exchange::OutboundHttp;
pub use inspect::{BearerError, Presented};
pub(crate) use inspect::{STEP_UP_MAX_AGE_SECONDS, TokenWorkload, token_workload};
pub use logout::{LogoutOutcome, LogoutRequest};

pub(crate) use crate::directory::builtin::is_management_client;
pub use crate::directory::builtin::{
    CLI_CLIENT_ID, CONSOLE_CALLBACK_PATH, CONSOLE_CLIENT_ID, PROVISIONING_API_ID,
    PROVISIONING_API_URI, PROVISIONING_ROLE,
};
pub use tessera_oauth::resource::MANAGEMENT_RESOURCE;

/// Access tokens for workloads live an hour.
pub const ACCESS_TOKEN_SECONDS: i64 = 3600;

/// A client-credentials grant, resolved against the directory.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    display_name: String,
    /// Access tokens are bound to this certificate (`cnf.x5t#S256`).
    certificate: Option<String>,
    /// The client must present DPoP proofs (`dpopBoundAccessTokens`).
    requires_dpop: bool,
    /// The app roles the workload holds on the resource (`roles`).
    roles: Vec<String>,
    app_id: AppId,
    principal_id: Uuid,
    resource_app_id: AppId,
    secret_end: Timestamp,
    /// The key id of the client secret used.
    secret_key: Option<Uuid>,
}

/// (tenant, client id, secret hash, scope).
pub(crate) type GrantKey = (TenantId, String, String, String);

/// Resolved grants are reused this long. A removed credential, a disabled or
/// deleted service principal or a role it lost ends what every node remembers
/// at once (a workload revocation, `kernel/revocations.rs`); other changes to
/// the resource take effect within it.
pub const GRANT_CACHE_SECONDS: i64 = 5;
/// A grant remembered less than this after its workload's revocation is not
/// used: its directory read may have begun before the change committed (the
/// revocation's time is taken inside the change's transaction), or on a node
/// whose clock is a little behind.
const GRANT_CACHE_MARGIN_SECONDS: i64 = 2;
const MAX_CACHED_GRANTS: usize = 100_000;

/// Recently resolved grants (successes only: a failure always asks the
/// directory): when the directory read began, until when it may be used.
pub(crate) type GrantCache =
    std::sync::RwLock<std::collections::HashMap<GrantKey, (Timestamp, Timestamp, Grant)>>;

/// The OpenID Connect / OAuth context: authorization, grants, client
/// authentication, DPoP, the device flow, token exchange, introspection,
/// revocation, logout, dynamic registration and signing keys.
pub struct Oidc {
    k: std::sync::Arc<crate::kernel::Kernel>,
    pub(crate) directory: std::sync::Arc<crate::Directory>,
    pub(crate) access: std::sync::Arc<crate::Access>,
    pub(crate) sign_in: std::sync::Arc<crate::SignIn>,
    pub(crate) app_sign_in: std::sync::Arc<crate::AppSignIn>,
    pub(crate) keys: crate::oidc::signing_keys::KeyCache,
    pub(crate) grants: GrantCache,
    pub(crate) external_keys: ExternalKeys,
    pub(crate) cors: CorsOrigins,
    /// Tokens refused at an address this node has audited (`fence.rs`).
    pub(crate) location_refusals: fence::LocationRefusals,
}

crate::kernel::on_kernel!(Oidc);

impl Oidc {
    pub(crate) fn new(
        k: std::sync::Arc<crate::kernel::Kernel>,
        directory: std::sync::Arc<crate::Directory>,
        access: std::sync::Arc<crate::Access>,
        sign_in: std::sync::Arc<crate::SignIn>,
        app_sign_in: std::sync::Arc<crate::AppSignIn>,
    ) -> Oidc {
        Oidc {
            k,
            directory,
            access,
            sign_in,
            app_sign_in,
            keys: crate::oidc::signing_keys::KeyCache::default(),
            grants: GrantCache::default(),
            external_keys: ExternalKeys::default(),
            cors: CorsOrigins::default(),
            location_refusals: fence::LocationRefusals::default(),
        }
    }
}

/// Where a token request comes from.
#[derive(Debug, Clone)]
pub struct TokenContext {
    pub tenant: TenantId,
    /// The tenant's issuer identifier (`iss`).
    pub issuer: String,
    pub correlation_id: String,
    pub client_address: Option<String>,
    /// The request's `DPoP` header (RFC 9449), if it had one.
    pub dpop: Option<String>,
    /// The client certificate chain the request came with (mutual TLS, RFC 8705).
    pub client_certificates: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Token exchange answers say what they issued (RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// A client that proved who it is at the token endpoint. Its `proof` field is
/// private to this module tree, so only the client authentication code here (secret,
/// `private_key_jwt`, mutual TLS, a trusted issuer's assertion) can make one.
#[derive(Debug, Clone)]
pub(crate) struct AuthenticatedClient {
    _proof: ClientAuthenticated,
    pub app_data: ApplicationData,
    pub principal: Option<Record>,
    /// When the secret used expires.
    pub secret_end: Timestamp,
    /// The `x5t#S256` of the mutual-TLS certificate it authenticated with: access
    /// tokens are bound to it (RFC 8705 §3).
    pub certificate: Option<String>,
    /// The key id of the client secret it authenticated with.
    pub secret_key: Option<Uuid>,
}

/// The mark of a client authenticated by this module's code.
#[derive(Debug, Clone, Copy)]
struct ClientAuthenticated;

fn server_error(error: impl std::fmt::Display) -> OAuthError {
    tracing::error!(%error, "token endpoint failure");
    OAuthError::new(ErrorCode::ServerError, "the request could not be completed")
}

async fn application_by_app_id(
    reader: &mut dyn Reader,
    tenant: TenantId,
    app_id: &str,
) -> Result<Option<Record>, OAuthError> {
    let Ok(app_id) = Uuid::parse_str(app_id) else {
        return Ok(None);
    };
    reader
        .get_by_key1(tenant, Kind::Application, &app_id.to_string())
        .await
        .map_err(server_error)
}

/// Refuses what a built-in client may not ask for (see `builtin_request_allowed`).
pub(crate) fn check_builtin_request(
    app_id: AppId,
    scopes: &[String],
    resources: &[String],
) -> Result<(), OAuthError> {
    if crate::directory::builtin::builtin_request_allowed(app_id, scopes, resources) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "Tessera's own clients ask only for openid, profile, email and the management API",
        ))
    }
}

/// The registration a client signs in with at the authorization endpoint: its
/// directory record, or a built-in application's fixed one (the console's).
async fn client_application(
    reader: &mut dyn Reader,
    tenant: TenantId,
    client_id: &str,
    issuer: &str,
) -> Result<Option<ApplicationData>, OAuthError> {
    if let Some(builtin) = client_id
        .parse::<AppId>()
        .ok()
        .and_then(|app_id| crate::directory::builtin::builtin_application(app_id, issuer))
    {
        return Ok(Some(builtin));
    }
    match application_by_app_id(reader, tenant, client_id).await? {
        Some(record) => codec::data(&record).map(Some).map_err(server_error),
        None => Ok(None),
    }
}

/// Checks a client's id and secret: the secret (a 256-bit generated value, so its
/// SHA-256 is the lookup key) must belong to the application or its service
/// principal and be inside its validity. Every failure reads the same.
pub(crate) async fn authenticate_client(
    reader: &mut dyn Reader,
    tenant: TenantId,
    credentials: &token::ClientSecretCredentials,
    now: Timestamp,
    refuse: &(dyn Fn(&str) -> OAuthError + Sync),
) -> Result<AuthenticatedClient, OAuthError> {
    let Some(app) = application_by_app_id(reader, tenant, &credentials.client_id).await? else {
        return Err(refuse("unknown client or wrong secret"));
    };
    let app_data: ApplicationData = codec::data(&app).map_err(server_error)?;
    let principal = reader
        .get_by_key1(tenant, Kind::ServicePrincipal, &app_data.app_id.to_string())
        .await
        .map_err(server_error)?;
    let secret = reader
        .get_by_key1(
            tenant,
            Kind::ClientSecret,
            &secret_hash(&credentials.client_secret),
        )
        .await
        .map_err(server_error)?;
    let secret: Option<ClientSecretData> = secret
        .map(|r| codec::data(&r))
        .transpose()
        .map_err(server_error)?;
    let owner_ok = secret.as_ref().is_some_and(|s| {
        s.owner_id == app.id || principal.as_ref().is_some_and(|p| p.id == s.owner_id)
    });
    let current = secret
        .as_ref()
        .is_some_and(|s| s.credential.start_date_time <= now && now < s.credential.end_date_time);
    if secret.is_some()
        && owner_ok
        && !crate::directory::consent::credential_policy(reader, tenant)
            .await
            .map_err(server_error)?
            .allow_password_credentials
    {
        return Err(refuse(
            "client secrets are not allowed by this tenant's policy: use a certificate",
        ));
    }
    match secret {
        Some(secret) if owner_ok && current => Ok(AuthenticatedClient {
            _proof: ClientAuthenticated,
            app_data,
            principal,
            secret_end: secret.credential.end_date_time,
            certificate: None,
            secret_key: Some(secret.credential.key_id),
        }),
        _ => Err(refuse("unknown client or wrong secret")),
    }
}

/// The refusal for a failed client authentication (401 with a Basic challenge when
/// the client used Basic).
pub(crate) fn invalid_client(basic: bool) -> impl Fn(&str) -> OAuthError + Send + Sync {
    move |description: &str| OAuthError {
        basic_challenge: basic,
        ..OAuthError::new(ErrorCode::InvalidClient, description)
    }
}

impl Oidc {
    /// `POST /token`.
    pub async fn token_request(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = form
            .get("grant_type")
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "grant_type is required"))?;
        let token_endpoint = format!("{}/oauth2/token", ctx.issuer);
        let proof = self
            .dpop_proof(
                ctx.tenant,
                ctx.dpop.as_deref(),
                "POST",
                &token_endpoint,
                None,
            )
            .await
            .map_err(|e| OAuthError::new(ErrorCode::InvalidDpopProof, e.to_string()))?;
        match grant_type.as_str() {
            "client_credentials" => {}
            "authorization_code" => {
                return self
                    .code_grant(ctx, authorization, form, proof.as_ref())
                    .await;
            }
            tessera_oauth::exchange::GRANT_TYPE => {
                return self
                    .exchange_grant(ctx, authorization, form, proof.as_ref())
                    .await;
            }
            tessera_oauth::device::GRANT_TYPE => {
                return self
                    .device_grant(ctx, authorization, form, proof.as_ref())
                    .await;
            }
            "refresh_token" => {
                return self
                    .refresh_grant(ctx, authorization, form, proof.as_ref())
                    .await;
            }
            "password" => {
                return self
                    .password_grant(ctx, authorization, form, proof.as_ref())
                    .await;
            }
            _ => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!("{grant_type} is not supported"),
                ));
            }
        }
        let assertion = tessera_oauth::assertion::from_form(form)?;
        let secret = token::client_secret(authorization, form)?;
        // Looked up in the breached list once the client is authenticated.
        let presented_secret = secret
            .as_ref()
            .map(|c| tessera_core::SecretString::new(c.client_secret.clone()));
        let (client_id, method, result) = match (assertion, secret) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "use one client authentication method, not two",
                ));
            }
            (None, None) => {
                let client_id = form.get("client_id").cloned().ok_or_else(|| {
                    OAuthError::new(
                        ErrorCode::InvalidClient,
                        "client authentication is required",
                    )
                })?;
                let result = match self.authenticate_mtls(ctx, &client_id).await {
                    Ok(client) => {
                        let mut reader = self.reader().await.map_err(server_error)?;
                        self.client_credentials(reader.as_mut(), ctx, client, form)
                            .await
                    }
                    Err(error) => Err(error),
                };
                (client_id, "clientCertificate", result)
            }
            (None, Some(credentials)) => {
                let result = match self.cached_grant(ctx, &credentials, form).await {
                    Some(grant) => Ok(grant),
                    None => {
                        let began = self.now();
                        let refuse = invalid_client(credentials.basic);
                        let mut reader = self.reader().await.map_err(server_error)?;
                        let grant = match authenticate_client(
                            reader.as_mut(),
                            ctx.tenant,
                            &credentials,
                            self.now(),
                            &refuse,
                        )
                        .await
                        {
                            Ok(client) => {
                                self.client_credentials(reader.as_mut(), ctx, client, form)
                                    .await
                            }
                            Err(error) => Err(error),
                        };
                        drop(reader);
                        if let Ok(grant) = &grant {
                            self.cache_grant(ctx, &credentials, form, grant, began);
                        }
                        grant
                    }
                };
                (credentials.client_id.clone(), "clientSecret", result)
            }
            (Some(assertion), None) => {
                let claimed = assertion_client_id(assertion, form);
                let result = match self.authenticate_assertion(ctx, assertion, form).await {
                    Ok(client) => {
                        let mut reader = self.reader().await.map_err(server_error)?;
                        self.client_credentials(reader.as_mut(), ctx, client, form)
                            .await
                    }
                    Err(error) => Err(error),
                };
                (claimed, "clientAssertion", result)
            }
        };
        // Identity Protection: what the request says of the workload, before
        // Conditional Access decides with its risk.
        let detections = match &result {
            Ok(grant) => {
                self.workload_detections(ctx, grant, method, presented_secret.as_ref())
                    .await
            }
            Err(_) => Vec::new(),
        };
        drop(presented_secret);
        // Conditional Access for workload identities, on every request (a cached
        // grant included): a block refuses the token.
        let (result, decided) = match result {
            Ok(grant) => match self.workload_decision(ctx, &grant).await {
                Ok(decided) if decided.decision.outcome != tessera_ca::Outcome::Allow => (
                    Err(OAuthError::new(
                        ErrorCode::UnauthorizedClient,
                        format!(
                            "Conditional Access blocked this request (correlation id {})",
                            ctx.correlation_id
                        ),
                    )),
                    Some(decided),
                ),
                Ok(decided) => (Ok(grant), Some(decided)),
                Err(error) => (Err(server_error(error)), None),
            },
            Err(error) => (Err(error), None),
        };
        let result = match result {
            Ok(grant) => self
                .issue(
                    ctx,
                    &grant,
                    proof.as_ref(),
                    decided
                        .as_ref()
                        .map(|d| d.location_fence.clone())
                        .unwrap_or_default(),
                )
                .await
                .map(|response| (grant.display_name.clone(), response)),
            Err(error) => Err(error),
        };
        let (name, outcome) = match &result {
            Ok((name, _)) => (name.clone(), None),
            Err(error) => (client_id.clone(), Some(error.error.as_str())),
        };
        self.log_workload(
            ctx,
            (&client_id, &name, method),
            outcome,
            decided.as_ref(),
            &detections,
        )
        .await?;
        result.map(|(_, response)| response)
    }

    fn grant_key(
        ctx: &TokenContext,
        credentials: &token::ClientSecretCredentials,
        form: &BTreeMap<String, String>,
    ) -> GrantKey {
        (
            ctx.tenant,
            credentials.client_id.clone(),
            secret_hash(&credentials.client_secret),
            form.get("scope").cloned().unwrap_or_default(),
        )
    }

    /// A grant resolved in the last few seconds for the same client, secret
    /// and scope, and not ended since by a change to the workload (none when
    /// this node cannot tell).
    async fn cached_grant(
        &self,
        ctx: &TokenContext,
        credentials: &token::ClientSecretCredentials,
        form: &BTreeMap<String, String>,
    ) -> Option<Grant> {
        let key = Self::grant_key(ctx, credentials, form);
        let now = self.now();
        let (began, grant) = {
            let cache = self.grants.read().ok()?;
            let (began, until, grant) = cache.get(&key)?;
            if now >= *until {
                return None;
            }
            (*began, grant.clone())
        };
        let revoked = self
            .revocations()
            .workload_revoked(ctx.tenant, &credentials.client_id)
            .await
            .ok()?;
        match revoked {
            Some(at) if began <= at.plus_seconds(GRANT_CACHE_MARGIN_SECONDS) => {
                if let Ok(mut cache) = self.grants.write() {
                    cache.remove(&key);
                }
                None
            }
            _ => Some(grant),
        }
    }

    fn cache_grant(
        &self,
        ctx: &TokenContext,
        credentials: &token::ClientSecretCredentials,
        form: &BTreeMap<String, String>,
        grant: &Grant,
        began: Timestamp,
    ) {
        let key = Self::grant_key(ctx, credentials, form);
        let until = self
            .now()
            .plus_seconds(GRANT_CACHE_SECONDS)
            .min(grant.secret_end);
        if let Ok(mut cache) = self.grants.write() {
            if cache.len() >= MAX_CACHED_GRANTS {
                let now = self.now();
                cache.retain(|_, (_, until, _)| now < *until);
                if cache.len() >= MAX_CACHED_GRANTS {
                    cache.clear();
                }
            }
            cache.insert(key, (began, until, grant.clone()));
        }
    }

    async fn client_credentials(
        &self,
        reader: &mut dyn Reader,
        ctx: &TokenContext,
        client: AuthenticatedClient,
        form: &BTreeMap<String, String>,
    ) -> Result<Grant, OAuthError> {
        let tenant = ctx.tenant;
        let AuthenticatedClient {
            app_data,
            principal,
            secret_end,
            certificate,
            secret_key,
            ..
        } = client;
        let Some(principal) = principal else {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the application has no service principal in this tenant",
            ));
        };
        let principal_data: ServicePrincipalData = codec::data(&principal).map_err(server_error)?;
        if !principal_data.spec.account_enabled {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "the application's service principal is disabled",
            ));
        }
        let scope = form.get("scope").ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidScope,
                "scope is required: <resource>/.default",
            )
        })?;
        if let Some(asked) = crate::signals::requested_roles(scope) {
            // The SSF API: the roles the signals settings give the application.
            let allowed = crate::signals::Signals::receiver_roles(reader, tenant, app_data.app_id)
                .await
                .map_err(server_error)?;
            let roles: Vec<String> = asked
                .iter()
                .filter(|role| allowed.contains(role))
                .map(|role| role.to_string())
                .collect();
            if roles.is_empty() {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "the application may not receive shared signals: an administrator adds it with `tessera signals receivers add`",
                ));
            }
            return Ok(Grant {
                certificate,
                requires_dpop: app_data.spec.dpop_bound_access_tokens,
                roles,
                display_name: app_data.spec.display_name,
                app_id: app_data.app_id,
                principal_id: principal.id,
                resource_app_id: crate::signals::signals_api_id(),
                secret_end,
                secret_key,
            });
        }
        let resource = token::default_scope_resource(scope)?;
        if crate::directory::builtin::is_provisioning_api(resource) {
            // The SCIM API: its one role, for the applications the provisioning
            // settings name.
            let allowed =
                crate::provisioning::settings::allows_client(reader, tenant, app_data.app_id)
                    .await
                    .map_err(server_error)?;
            if !allowed {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "the application may not provision: an administrator adds it with `tessera provisioning clients add`",
                ));
            }
            return Ok(Grant {
                certificate,
                requires_dpop: app_data.spec.dpop_bound_access_tokens,
                roles: vec![crate::directory::builtin::PROVISIONING_ROLE.to_string()],
                display_name: app_data.spec.display_name,
                app_id: app_data.app_id,
                principal_id: principal.id,
                resource_app_id: crate::directory::builtin::provisioning_api_id(),
                secret_end,
                secret_key,
            });
        }
        let resource_id = resource.strip_prefix("api://").unwrap_or(resource);
        let Some(resource_app) = application_by_app_id(reader, tenant, resource_id).await? else {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("no application {resource} in this tenant"),
            ));
        };
        let resource_data: ApplicationData = codec::data(&resource_app).map_err(server_error)?;
        let mut roles = Vec::new();
        if let Some(resource_principal) = reader
            .get_by_key1(
                tenant,
                Kind::ServicePrincipal,
                &resource_data.app_id.to_string(),
            )
            .await
            .map_err(server_error)?
        {
            let spec: ServicePrincipalData =
                codec::data(&resource_principal).map_err(server_error)?;
            let assigned = crate::directory::app_roles::assigned_roles(
                reader,
                tenant,
                resource_principal.id,
                &[principal.id],
            )
            .await
            .map_err(server_error)?;
            // Deny by default: a resource that requires assignment admits only the
            // workloads given one of its app roles.
            if spec.spec.app_role_assignment_required && assigned.is_empty() {
                return Err(OAuthError::new(
                    ErrorCode::UnauthorizedClient,
                    "the resource requires an app role assignment the client does not have",
                ));
            }
            roles = crate::directory::app_roles::role_values(&resource_data, &assigned);
        }
        Ok(Grant {
            certificate,
            requires_dpop: app_data.spec.dpop_bound_access_tokens,
            roles,
            display_name: app_data.spec.display_name,
            app_id: app_data.app_id,
            principal_id: principal.id,
            resource_app_id: resource_data.app_id,
            secret_end,
            secret_key,
        })
    }

    /// Signs `claims` as a JWS of type `typ` with the tenant's current ES256 key
    /// (making the first key of a new tenant).
    pub(crate) async fn sign_token(
        &self,
        tenant: TenantId,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, OAuthError> {
        self.sign_token_with(tenant, Algorithm::ES256, typ, claims)
            .await
    }

    /// The tenant's key set holding a current key of `alg`, made first if
    /// there is none (a write: not to be called inside another write).
    pub(crate) async fn signing_key_set(
        &self,
        tenant: TenantId,
        alg: Algorithm,
    ) -> crate::error::ServiceResult<std::sync::Arc<crate::oidc::signing_keys::KeySet>> {
        let set = self.key_set(tenant).await?;
        if set.signing.contains_key(&alg) {
            return Ok(set);
        }
        // Made here, or already made by another node since this node cached
        // its set: read the set again either way, not from the cache.
        self.rotate_signing_keys(tenant, &[alg]).await?;
        self.forget_key_set(tenant)?;
        self.key_set(tenant).await
    }

    /// Signs with the tenant's current key of `alg` (made on first use; rotated
    /// on schedule with the others).
    pub(crate) async fn sign_token_with(
        &self,
        tenant: TenantId,
        alg: Algorithm,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, OAuthError> {
        let claims = serde_json::to_value(claims).map_err(server_error)?;
        let set = self
            .signing_key_set(tenant, alg)
            .await
            .map_err(server_error)?;
        let key = set
            .signing
            .get(&alg)
            .ok_or_else(|| server_error(format!("no current {} signing key", alg.as_str())))?;
        jws::sign(key, typ, &claims).map_err(server_error)
    }

    /// Signs the access token of a resolved grant.
    async fn issue(
        &self,
        ctx: &TokenContext,
        grant: &Grant,
        proof: Option<&tessera_oauth::dpop::Proof>,
        location_fence: Vec<uuid::Uuid>,
    ) -> Result<TokenResponse, OAuthError> {
        let tenant = ctx.tenant;
        if grant.requires_dpop && proof.is_none() {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "this application requires DPoP-bound tokens: send a DPoP proof",
            ));
        }
        let now = self.now();
        let mut claims = AccessTokenClaims::new(AccessTokenBasics {
            issuer: ctx.issuer.clone(),
            subject: grant.principal_id,
            audience: grant.resource_app_id.to_string(),
            client_id: grant.app_id.to_string(),
            tenant: tenant.0,
            identity_type: IdentityType::App,
            issued_at: now.unix_seconds(),
            lifetime_seconds: ACCESS_TOKEN_SECONDS,
            id: token_id(now),
        });
        claims.roles = grant.roles.clone();
        claims.cae_loc = location_fence;
        let token_type = dpop::bind(&mut claims, proof, grant.certificate.as_deref());
        let access_token = self.sign_token(tenant, "at+jwt", &claims).await?;
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in: ACCESS_TOKEN_SECONDS,
            scope: None,
            refresh_token: None,
            id_token: None,
            issued_token_type: None,
        })
    }

    /// Records a workload sign-in (success, or the OAuth error code).
    /// Conditional Access for a workload's token.
    pub(crate) async fn workload_decision(
        &self,
        ctx: &TokenContext,
        grant: &Grant,
    ) -> crate::ServiceResult<crate::access::Decided> {
        let target = tessera_ca::engine::Target::App {
            resource: None,
            app_id: grant.resource_app_id,
            admin_portal: false,
        };
        let facts = self
            .access
            .workload_facts(
                ctx.tenant,
                grant.principal_id,
                target,
                ctx.client_address.as_deref(),
            )
            .await?;
        self.access.decide(ctx.tenant, &facts).await
    }

    /// The Identity Protection detections of a workload's token request
    /// (`credential` is how it authenticated; `secret` the client secret it
    /// presented, if that was how).
    pub(crate) async fn workload_detections(
        &self,
        ctx: &TokenContext,
        grant: &Grant,
        credential: &'static str,
        secret: Option<&tessera_core::SecretString>,
    ) -> Vec<tessera_risk::Detection> {
        let app_id = grant.app_id.to_string();
        let request = crate::risk::WorkloadRequest {
            principal: grant.principal_id,
            display_name: &grant.display_name,
            app_id: &app_id,
            credential,
            secret: secret.zip(grant.secret_key),
            correlation_id: &ctx.correlation_id,
            client_address: ctx.client_address.as_deref(),
        };
        self.sign_in
            .risk
            .workload_request(ctx.tenant, &request)
            .await
    }

    /// Logs a workload's token request: `client` is its client id, its name
    /// and how it authenticated; `risk` what Identity Protection found.
    pub(crate) async fn log_workload(
        &self,
        ctx: &TokenContext,
        client: (&str, &str, &str),
        error: Option<&'static str>,
        ca: Option<&crate::access::Decided>,
        risk: &[tessera_risk::Detection],
    ) -> Result<(), OAuthError> {
        let (client_id, name, method) = client;
        let now = self.now();
        let client_id: String = client_id
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        let result = if error.is_some() {
            "failure"
        } else {
            "success"
        };
        let entry = crate::sign_in::SignInEntry {
            id: Uuid::new_v4(),
            created_date_time: now,
            user_id: None,
            user_principal_name: format!("app:{}", client_id.to_lowercase()),
            app_display_name: name.chars().take(256).collect(),
            client_address: ctx.client_address.clone(),
            user_agent: None,
            result: result.to_string(),
            failure_code: error.map(str::to_string),
            failure_reason: None,
            authentication_methods: vec![method.to_string()],
            authentication_requirement: "singleFactorAuthentication".to_string(),
            satisfied_strengths: Vec::new(),
            correlation_id: ctx.correlation_id.clone(),
            sign_in_event_type: "servicePrincipal".to_string(),
            app_id: Some(client_id),
            conditional_access_status: ca.map(|c| c.status().to_string()),
            applied_conditional_access_policies: ca.map(|c| c.log_value()),
            attempt_count: None,
            last_attempt_date_time: None,
            risk_level_during_sign_in: (!risk.is_empty()).then(|| {
                crate::risk::level_name(tessera_risk::aggregate::sign_in_risk(risk)).to_string()
            }),
            risk_event_types: risk
                .iter()
                .map(|d| d.event_type.name().to_string())
                .collect(),
            device_detail: None,
        };
        self.sign_in
            .append_log(ctx.tenant, &entry)
            .await
            .map_err(server_error)
    }
}

/// An access token's id: it tells when the token was issued, to the
/// millisecond, so a revocation in the same second as a newer token leaves it
/// (`tessera_cae::issued_at`).
pub(crate) fn token_id(issued: tessera_core::Timestamp) -> Uuid {
    let drawn = Uuid::new_v4().into_bytes();
    let mut random = [0u8; 10];
    random.copy_from_slice(&drawn[6..]);
    tessera_cae::token_id(issued, random)
}

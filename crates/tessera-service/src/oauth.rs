//! The token endpoint's use cases. So far the client-credentials grant (workloads)
//! with `client_secret_basic` / `client_secret_post`, issuing RFC 9068 JWT access
//! tokens signed with the tenant's current ES256 key, each logged as a workload
//! sign-in.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use tessera_core::crypto::secret_hash;
use tessera_core::{TenantId, Timestamp};
use tessera_directory::model::{ApplicationData, ClientSecretData, ServicePrincipalData};
use tessera_oauth::jws;
use tessera_oauth::keys::Algorithm;
use tessera_oauth::token::{self, OAuthError};
use tessera_store::{Kind, Reader, Record, SignInRow};
use uuid::Uuid;

use crate::Directory;
use crate::codec;

/// Access tokens for workloads live an hour.
pub const ACCESS_TOKEN_SECONDS: i64 = 3600;

/// A client-credentials grant, resolved against the directory.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    display_name: String,
    app_id: Uuid,
    principal_id: Uuid,
    resource_app_id: Uuid,
    secret_end: Timestamp,
}

/// (tenant, client id, secret hash, scope).
pub(crate) type GrantKey = (TenantId, String, String, String);

/// Resolved grants are reused this long: a deleted secret, disabled service principal
/// or changed resource takes effect on every node within it.
pub const GRANT_CACHE_SECONDS: i64 = 5;
const MAX_CACHED_GRANTS: usize = 100_000;

/// Recently resolved grants (successes only: a failure always asks the directory).
pub(crate) type GrantCache =
    std::sync::RwLock<std::collections::HashMap<GrantKey, (Timestamp, Grant)>>;

/// Where a token request comes from.
#[derive(Debug, Clone)]
pub struct TokenContext {
    pub tenant: TenantId,
    /// The tenant's issuer identifier (`iss`).
    pub issuer: String,
    pub correlation_id: String,
    pub client_address: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

fn server_error(error: impl std::fmt::Display) -> OAuthError {
    tracing::error!(%error, "token endpoint failure");
    OAuthError::new("server_error", "the request could not be completed")
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

impl Directory {
    /// `POST /token`.
    pub async fn token_request(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = form
            .get("grant_type")
            .ok_or_else(|| OAuthError::new("invalid_request", "grant_type is required"))?;
        if grant_type != "client_credentials" {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("{grant_type} is not supported"),
            ));
        }
        let credentials = token::client_secret(authorization, form)?.ok_or_else(|| {
            OAuthError::new("invalid_client", "client authentication is required")
        })?;
        let basic = credentials.basic;
        let refuse = |description: &str| OAuthError {
            basic_challenge: basic,
            ..OAuthError::new("invalid_client", description)
        };
        let result = match self.cached_grant(ctx, &credentials, form) {
            Some(grant) => Ok(grant),
            None => {
                let mut reader = self.reader().await.map_err(server_error)?;
                let grant = self
                    .client_credentials(reader.as_mut(), ctx, &credentials, form, refuse)
                    .await;
                drop(reader);
                if let Ok(grant) = &grant {
                    self.cache_grant(ctx, &credentials, form, grant);
                }
                grant
            }
        };
        let result = match result {
            Ok(grant) => self
                .issue(ctx, &grant)
                .await
                .map(|response| (grant.display_name.clone(), response)),
            Err(error) => Err(error),
        };
        let (name, outcome) = match &result {
            Ok((name, _)) => (name.clone(), None),
            Err(error) => (credentials.client_id.clone(), Some(error.error)),
        };
        self.log_workload(ctx, &credentials.client_id, &name, outcome)
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

    /// A grant resolved in the last few seconds for the same client, secret and scope.
    fn cached_grant(
        &self,
        ctx: &TokenContext,
        credentials: &token::ClientSecretCredentials,
        form: &BTreeMap<String, String>,
    ) -> Option<Grant> {
        let key = Self::grant_key(ctx, credentials, form);
        let now = self.now();
        let cache = self.grants.read().ok()?;
        cache
            .get(&key)
            .filter(|(until, _)| now < *until)
            .map(|(_, grant)| grant.clone())
    }

    fn cache_grant(
        &self,
        ctx: &TokenContext,
        credentials: &token::ClientSecretCredentials,
        form: &BTreeMap<String, String>,
        grant: &Grant,
    ) {
        let key = Self::grant_key(ctx, credentials, form);
        let until = self
            .now()
            .plus_seconds(GRANT_CACHE_SECONDS)
            .min(grant.secret_end);
        if let Ok(mut cache) = self.grants.write() {
            if cache.len() >= MAX_CACHED_GRANTS {
                let now = self.now();
                cache.retain(|_, (until, _)| now < *until);
                if cache.len() >= MAX_CACHED_GRANTS {
                    cache.clear();
                }
            }
            cache.insert(key, (until, grant.clone()));
        }
    }

    async fn client_credentials(
        &self,
        reader: &mut dyn Reader,
        ctx: &TokenContext,
        credentials: &token::ClientSecretCredentials,
        form: &BTreeMap<String, String>,
        refuse: impl Fn(&str) -> OAuthError,
    ) -> Result<Grant, OAuthError> {
        let tenant = ctx.tenant;
        let Some(app) = application_by_app_id(reader, tenant, &credentials.client_id).await? else {
            return Err(refuse("unknown client or wrong secret"));
        };
        let app_data: ApplicationData = codec::data(&app).map_err(server_error)?;
        let principal = reader
            .get_by_key1(tenant, Kind::ServicePrincipal, &app_data.app_id.to_string())
            .await
            .map_err(server_error)?;
        // The secret: a 256-bit generated value, so its SHA-256 is the lookup key.
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
        let now = self.now();
        let owner_ok = secret.as_ref().is_some_and(|s| {
            s.owner_id == app.id || principal.as_ref().is_some_and(|p| p.id == s.owner_id)
        });
        let current = secret.as_ref().is_some_and(|s| {
            s.credential.start_date_time <= now && now < s.credential.end_date_time
        });
        if !owner_ok || !current {
            return Err(refuse("unknown client or wrong secret"));
        }
        let Some(principal) = principal else {
            return Err(OAuthError::new(
                "unauthorized_client",
                "the application has no service principal in this tenant",
            ));
        };
        let principal_data: ServicePrincipalData = codec::data(&principal).map_err(server_error)?;
        if !principal_data.spec.account_enabled {
            return Err(OAuthError::new(
                "unauthorized_client",
                "the application's service principal is disabled",
            ));
        }
        let scope = form.get("scope").ok_or_else(|| {
            OAuthError::new("invalid_scope", "scope is required: <resource>/.default")
        })?;
        let resource = token::default_scope_resource(scope)?;
        let resource_id = resource.strip_prefix("api://").unwrap_or(resource);
        let Some(resource_app) = application_by_app_id(reader, tenant, resource_id).await? else {
            return Err(OAuthError::new(
                "invalid_scope",
                format!("no application {resource} in this tenant"),
            ));
        };
        let resource_data: ApplicationData = codec::data(&resource_app).map_err(server_error)?;
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
            if spec.spec.app_role_assignment_required {
                // Deny by default: app role assignments to workloads come with the
                // application-assignment work; until then nothing is assigned.
                return Err(OAuthError::new(
                    "unauthorized_client",
                    "the resource requires an app role assignment the client does not have",
                ));
            }
        }
        Ok(Grant {
            display_name: app_data.spec.display_name,
            app_id: app_data.app_id,
            principal_id: principal.id,
            resource_app_id: resource_data.app_id,
            secret_end: secret.map(|s| s.credential.end_date_time).unwrap_or(now),
        })
    }

    /// Signs the access token of a resolved grant.
    async fn issue(&self, ctx: &TokenContext, grant: &Grant) -> Result<TokenResponse, OAuthError> {
        let tenant = ctx.tenant;
        let set = self.key_set(tenant).await.map_err(server_error)?;
        let set = match set.signing.get(&Algorithm::ES256) {
            Some(_) => set,
            None => {
                self.rotate_signing_keys(tenant, &[Algorithm::ES256])
                    .await
                    .map_err(server_error)?;
                self.key_set(tenant).await.map_err(server_error)?
            }
        };
        let key = set
            .signing
            .get(&Algorithm::ES256)
            .ok_or_else(|| server_error("no current ES256 signing key"))?;
        let issued = self.now().unix_seconds();
        let claims = json!({
            "iss": ctx.issuer,
            "sub": grant.principal_id,
            "aud": grant.resource_app_id,
            "client_id": grant.app_id,
            "azp": grant.app_id,
            "tid": tenant.0,
            "oid": grant.principal_id,
            "idtyp": "app",
            "iat": issued,
            "nbf": issued,
            "exp": issued + ACCESS_TOKEN_SECONDS,
            "jti": Uuid::new_v4(),
        });
        let access_token = jws::sign(key, "at+jwt", &claims).map_err(server_error)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ACCESS_TOKEN_SECONDS,
        })
    }

    /// Records a workload sign-in (success, or the OAuth error code).
    async fn log_workload(
        &self,
        ctx: &TokenContext,
        client_id: &str,
        name: &str,
        error: Option<&'static str>,
    ) -> Result<(), OAuthError> {
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
        let entry = crate::authn::SignInEntry {
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
            authentication_methods: vec!["clientSecret".to_string()],
            authentication_requirement: "singleFactorAuthentication".to_string(),
            satisfied_strengths: Vec::new(),
            correlation_id: ctx.correlation_id.clone(),
            sign_in_event_type: "servicePrincipal".to_string(),
            app_id: Some(client_id),
        };
        let row = SignInRow {
            id: entry.id,
            time: now,
            user_id: None,
            user_name: entry.user_principal_name.clone(),
            application: Some(entry.app_display_name.clone()),
            result: entry.result.clone(),
            failure_code: entry.failure_code.clone(),
            correlation_id: entry.correlation_id.clone(),
            body: serde_json::to_string(&entry).map_err(server_error)?,
        };
        self.sign_in_log
            .append(&self.store, ctx.tenant, row)
            .await
            .map_err(server_error)
    }
}

//! Dynamic client registration (RFC 7591), off unless the tenant's application
//! credential policy turns it on. A registered client is an ordinary application
//! with its service principal (and a generated secret unless it is public); it
//! gets no consent and no role, so every scope still needs consent.

use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::TenantId;
use tessera_directory::authz::Grant;
use tessera_directory::model::DirectoryScope;
use tessera_directory::roles::APPLICATION_ADMINISTRATOR;
use tessera_oauth::error::ErrorCode;
use tessera_oauth::token::OAuthError;
use uuid::Uuid;

use super::server_error;
use crate::error::ServiceError;
use crate::{Caller, Context, Oidc, Principal};

/// The client metadata Tessera understands (RFC 7591 §2); others are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    application_type: Option<String>,
}

impl Oidc {
    /// `POST /register`: registers a client from its metadata; 201 with the
    /// client id (and secret, shown this once).
    pub async fn register_client(
        &self,
        tenant: TenantId,
        body: &[u8],
        correlation_id: &str,
        client_address: Option<String>,
    ) -> Result<Value, OAuthError> {
        let mut reader = self.reader().await.map_err(server_error)?;
        let policy = crate::directory::consent::credential_policy(reader.as_mut(), tenant)
            .await
            .map_err(server_error)?;
        drop(reader);
        if !policy.allow_dynamic_client_registration {
            return Err(OAuthError {
                status: 403,
                ..OAuthError::new(
                    ErrorCode::AccessDenied,
                    "dynamic client registration is turned off in this tenant",
                )
            });
        }
        let metadata: Metadata = serde_json::from_slice(body).map_err(|e| {
            OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                format!("the metadata is not understood: {e}"),
            )
        })?;
        let method = metadata
            .token_endpoint_auth_method
            .as_deref()
            .unwrap_or("client_secret_basic");
        let public = match method {
            "client_secret_basic" | "client_secret_post" => false,
            "none" => true,
            _ => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidClientMetadata,
                    "token_endpoint_auth_method takes client_secret_basic, client_secret_post or none",
                ));
            }
        };
        if metadata.grant_types.as_ref().is_some_and(|g| {
            g.iter()
                .any(|t| t != "authorization_code" && t != "refresh_token")
        }) {
            return Err(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                "registered clients use authorization_code and refresh_token",
            ));
        }
        if metadata
            .response_types
            .as_ref()
            .is_some_and(|r| r.iter().any(|t| t != "code"))
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                "response_types takes code only",
            ));
        }
        if metadata.redirect_uris.is_empty() {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                "give at least one redirect URI",
            ));
        }
        let _ = metadata.scope;
        let native = metadata.application_type.as_deref() == Some("native");
        let uris = json!({ "redirectUris": metadata.redirect_uris });
        let mut spec = json!({
            "displayName": metadata
                .client_name
                .clone()
                .unwrap_or_else(|| "Dynamically registered client".to_string()),
            "description": "registered through /oauth2/register",
        });
        match (public, native) {
            (false, _) => spec["web"] = uris,
            (true, true) => spec["publicClient"] = uris,
            (true, false) => spec["spa"] = uris,
        }
        // The registration acts as a system principal with just the application
        // administrator's rights, for these three writes.
        let ctx = Context {
            tenant,
            caller: Caller {
                principal: Principal::System {
                    reason: "dynamic client registration".to_string(),
                },
                grants: vec![Grant {
                    assignment_id: Uuid::nil(),
                    role_id: APPLICATION_ADMINISTRATOR,
                    scope: DirectoryScope::Tenant,
                }],
                credential: None,
                issued_credential: None,
                proof: None,
                protected: Default::default(),
            },
            correlation_id: correlation_id.to_string(),
            client_address,
        };
        let refuse = |error: ServiceError| match error {
            ServiceError::Validation(errors) => {
                OAuthError::new(ErrorCode::InvalidRedirectUri, errors.to_string())
            }
            // The client's metadata clashes with what exists: its mistake, not ours.
            ServiceError::Conflict { message } => {
                OAuthError::new(ErrorCode::InvalidClientMetadata, message)
            }
            other => server_error(other),
        };
        let app = self
            .directory
            .create_application(&ctx, spec)
            .await
            .map_err(refuse)?;
        self.directory
            .create_service_principal(&ctx, json!({ "appId": app.app_id }))
            .await
            .map_err(refuse)?;
        let mut answer = json!({
            "client_id": app.app_id,
            "client_id_issued_at": self.now().unix_seconds(),
            "client_name": app.spec.display_name,
            "redirect_uris": metadata.redirect_uris,
            "token_endpoint_auth_method": method,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        });
        if !public {
            let secret = self
                .directory
                .add_password(
                    &ctx,
                    crate::CredentialHolder::Application,
                    app.id,
                    json!({}),
                )
                .await
                .map_err(refuse)?;
            answer["client_secret"] = json!(secret.secret_text.expose());
            answer["client_secret_expires_at"] =
                json!(secret.credential.end_date_time.unix_seconds());
        }
        Ok(answer)
    }
}

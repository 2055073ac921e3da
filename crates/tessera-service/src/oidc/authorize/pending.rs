//! Authorization requests kept server-side: pushed ones (RFC 9126), taken once by
//! the client that pushed them, and pending ones, waiting while the user signs in
//! or answers a consent or Conditional Access page.

use tessera_core::crypto::{generate_secret, secret_hash};
use tessera_core::{SecretString, TenantId, Timestamp};
use tessera_oauth::authorize::{self, AuthorizationRequest, RawAuthorization};
use tessera_oauth::error::ErrorCode;
use tessera_oauth::token::OAuthError;
use tessera_store::SessionRow;

use super::{
    AuthorizeContext, AuthorizeOutcome, PENDING_PREFIX, PENDING_SECONDS, PUSHED_PREFIX, PendingData,
};
use crate::Oidc;
use crate::oidc::server_error;

impl Oidc {
    /// The pushed request a `request_uri` names, once, for the client that pushed it.
    pub(super) async fn take_pushed(
        &self,
        tenant: TenantId,
        client_id: &str,
        request_uri: &str,
    ) -> Result<RawAuthorization, OAuthError> {
        let invalid = || {
            OAuthError::new(
                ErrorCode::InvalidRequest,
                "request_uri is invalid or expired",
            )
        };
        let reference = request_uri
            .strip_prefix(authorize::REQUEST_URI_PREFIX)
            .filter(|r| !r.is_empty() && r.len() <= 128)
            .ok_or_else(invalid)?;
        let id = format!("{PUSHED_PREFIX}{}", secret_hash(reference));
        let row = self
            .store
            .session_get(tenant, &id)
            .await
            .map_err(server_error)?
            .filter(|row| row.expires > self.now())
            .ok_or_else(invalid)?;
        let raw: RawAuthorization = serde_json::from_str(&row.data).map_err(server_error)?;
        if raw.get("client_id") != Some(client_id) {
            return Err(invalid());
        }
        // One use: whoever deletes it first has it.
        if !self
            .store
            .session_delete(tenant, &id)
            .await
            .map_err(server_error)?
        {
            return Err(invalid());
        }
        Ok(raw)
    }

    /// A waiting request by its secret: its row id and data, or what to show when
    /// it is gone or expired.
    pub(super) async fn load_pending(
        &self,
        ctx: &AuthorizeContext,
        pending: &str,
    ) -> Result<(String, PendingData), AuthorizeOutcome> {
        let expired = || {
            AuthorizeOutcome::Refused(OAuthError::new(
                ErrorCode::InvalidRequest,
                "this sign-in took too long: go back to the application and start again",
            ))
        };
        if pending.is_empty() || pending.len() > 128 {
            return Err(expired());
        }
        let id = format!("{PENDING_PREFIX}{}", secret_hash(pending));
        let row = match self.store.session_get(ctx.tenant, &id).await {
            Ok(Some(row)) if row.expires > self.now() => row,
            Ok(_) => return Err(expired()),
            Err(error) => return Err(AuthorizeOutcome::Refused(server_error(error))),
        };
        let data = serde_json::from_str::<PendingData>(&row.data).map_err(|_| expired())?;
        Ok((id, data))
    }

    pub(super) async fn save_pending(
        &self,
        tenant: TenantId,
        request: &AuthorizationRequest,
        confidential: bool,
        now: Timestamp,
        step_up: bool,
    ) -> Result<SecretString, OAuthError> {
        let generated = generate_secret("").map_err(server_error)?;
        let data = PendingData {
            request: request.clone(),
            confidential,
            reauthenticate_after: now,
            step_up,
        };
        let row = SessionRow::transient(
            format!("{PENDING_PREFIX}{}", generated.hash),
            now,
            PENDING_SECONDS,
            serde_json::to_string(&data).map_err(server_error)?,
        );
        self.store
            .session_insert(tenant, &row)
            .await
            .map_err(server_error)?;
        Ok(generated.secret)
    }
}

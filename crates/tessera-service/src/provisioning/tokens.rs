//! Provisioning tokens: long-lived bearer tokens for the SCIM API only, for a
//! provisioning client that cannot use OAuth client credentials (Entra's and
//! Okta's "secret token"). A token is `tsr_scim_<tenant id>_<43 random base64url
//! characters>`, shown once, stored as its SHA-256, expiring (at most two years),
//! revocable. It acts with User Administrator and Groups Administrator rights, and
//! only the SCIM API accepts it; who makes one must hold what the SCIM API does.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::crypto::{generate_secret, secret_hash};
use tessera_core::{SecretString, TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::{Grant, Target};
use tessera_directory::model::DirectoryScope;
use tessera_directory::patch;
use tessera_directory::roles::{GROUPS_ADMINISTRATOR, USER_ADMINISTRATOR};
use tessera_store::{Kind, Record};
use uuid::Uuid;

use super::Provisioning;
use crate::codec::{self, Keys};
use crate::error::{ServiceError, ServiceResult};
use crate::{Caller, Context, EventDraft, Principal};

pub const MAX_DAYS: i64 = 730;
const DEFAULT_DAYS: i64 = 365;
const PREFIX: &str = "tsr_scim_";

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewProvisioningToken {
    /// What the token is for, e.g. the provisioning client (1 to 128 characters).
    pub display_name: String,
    /// Lifetime in days: 365 when absent, at most 730.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningToken {
    #[serde(default)]
    pub id: Uuid,
    pub display_name: String,
    /// The start of the token's secret, to recognise it by.
    pub hint: String,
    pub created_date_time: Timestamp,
    pub expires_date_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<Uuid>,
}

/// A new token: its metadata and, this once, the token.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreatedProvisioningToken {
    #[serde(flatten)]
    pub token: ProvisioningToken,
    #[serde(serialize_with = "expose")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub secret: SecretString,
}

fn expose<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

fn token_from(record: &Record) -> ServiceResult<ProvisioningToken> {
    let mut token: ProvisioningToken = codec::data(record)?;
    token.id = record.id;
    Ok(token)
}

/// The tenant a provisioning token names, if it has the format at all.
pub fn parse_tenant(token: &str) -> Option<TenantId> {
    let rest = token.strip_prefix(PREFIX)?;
    let (tenant, secret) = rest.split_once('_')?;
    if tenant.len() != 32 || secret.len() != 43 {
        return None;
    }
    Uuid::try_parse(tenant).ok().map(TenantId)
}

/// What a provisioning client may do in the SCIM API: a User Administrator's and
/// a Groups Administrator's rights, tenant-wide.
pub(crate) fn provisioning_grants() -> Vec<Grant> {
    [USER_ADMINISTRATOR, GROUPS_ADMINISTRATOR]
        .into_iter()
        .map(|role_id| Grant {
            assignment_id: Uuid::nil(),
            role_id,
            scope: DirectoryScope::Tenant,
        })
        .collect()
}

/// Whether a bearer token is a provisioning token (by its prefix).
pub fn is_provisioning_token(token: &str) -> bool {
    token.starts_with(PREFIX)
}

impl Provisioning {
    pub(crate) fn may_manage_tokens(&self, ctx: &Context) -> ServiceResult<()> {
        for needed in crate::directory::PROVISIONING_ACTIONS {
            self.require(ctx, needed, &Target::Tenant)?;
        }
        Ok(())
    }

    pub async fn create_token(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<CreatedProvisioningToken> {
        self.may_manage_tokens(ctx)?;
        let settings: super::ProvisioningSettings = {
            let mut reader = self.reader().await?;
            crate::kernel::tenant_settings::read_setting(reader.as_mut(), ctx.tenant).await?
        };
        self.may_hand_out_custom(ctx, &settings)?;
        let request: NewProvisioningToken = patch::parse_spec(body)?;
        let name = request.display_name.trim().to_string();
        if name.is_empty() || name.chars().count() > 128 {
            return Err(ServiceError::invalid(
                "displayName",
                "must be 1 to 128 characters",
            ));
        }
        let days = request.expires_in_days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ServiceError::invalid(
                "expiresInDays",
                format!("must be between 1 and {MAX_DAYS}"),
            ));
        }
        let generated = generate_secret("").map_err(|e| ServiceError::Internal(e.to_string()))?;
        let secret = format!(
            "{PREFIX}{}_{}",
            ctx.tenant.0.simple(),
            generated.secret.expose()
        );
        let now = self.now();
        let token = ProvisioningToken {
            id: Uuid::new_v4(),
            display_name: name.clone(),
            hint: generated.hint,
            created_date_time: now,
            expires_date_time: now.plus_seconds(days * 86_400),
            created_by: ctx.caller.user_id(),
        };
        let keys = Keys {
            key1: Some(secret_hash(&secret)),
            key2: None,
            sort_key: token.id.to_string(),
        };
        let record = codec::new_record(Kind::ProvisioningToken, token.id, now, keys, &token)?;
        let mut tx = self.write(ctx).await?;
        tx.insert(ctx.tenant, &record).await?;
        let event = EventDraft::new(AuditAction::ProvisioningTokenCreate)
            .on(Kind::ProvisioningToken, token.id, &name)
            .details(json!({ "hint": token.hint, "expiresDateTime": token.expires_date_time }));
        self.commit(tx, ctx, event).await?;
        Ok(CreatedProvisioningToken {
            token,
            secret: SecretString::new(secret),
        })
    }

    pub async fn list_tokens(&self, ctx: &Context) -> ServiceResult<Vec<ProvisioningToken>> {
        self.may_manage_tokens(ctx)?;
        let mut reader = self.reader().await?;
        codec::list_all(reader.as_mut(), ctx.tenant, Kind::ProvisioningToken, None)
            .await?
            .iter()
            .map(token_from)
            .collect()
    }

    pub async fn delete_token(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        self.may_manage_tokens(ctx)?;
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, Kind::ProvisioningToken, id).await?;
        let token = token_from(&record)?;
        tx.delete(
            ctx.tenant,
            Kind::ProvisioningToken,
            id,
            Some(record.version),
        )
        .await?;
        let event = EventDraft::new(AuditAction::ProvisioningTokenDelete)
            .on(Kind::ProvisioningToken, id, &token.display_name)
            .details(json!({ "hint": token.hint }));
        self.commit(tx, ctx, event).await
    }

    /// The caller a provisioning token stands for: User Administrator and Groups
    /// Administrator rights, tenant-wide. Every failure is the same
    /// `Unauthenticated`.
    pub async fn authenticate_token(&self, token: &str) -> ServiceResult<(TenantId, Caller)> {
        let tenant = parse_tenant(token).ok_or(ServiceError::Unauthenticated)?;
        let mut reader = self.reader().await?;
        let record = codec::find_by_secret(reader.as_mut(), tenant, Kind::ProvisioningToken, token)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        let data = token_from(&record)?;
        if data.expires_date_time <= self.now() {
            return Err(ServiceError::Unauthenticated);
        }
        let grants = provisioning_grants();
        let caller = Caller {
            principal: Principal::Workload {
                id: record.id,
                display_name: data.display_name,
                kind: "provisioningToken",
            },
            grants,
            credential: Some(format!("provisioningToken:{}", record.id)),
            issued_credential: None,
            proof: None,
            protected: crate::kernel::protected_actions(reader.as_mut(), tenant).await?,
        };
        Ok((tenant, caller))
    }
}

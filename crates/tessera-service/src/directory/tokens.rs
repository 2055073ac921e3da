//! Personal access tokens: how callers authenticate to the management API until
//! OAuth lands. A token is `tsr_pat_<tenant id>_<43 random base64url characters>`:
//! 256 bits of entropy, shown once, stored as its SHA-256, expiring (at most a year),
//! revocable. The tenant part only routes the lookup; it is no secret.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::crypto::{generate_secret, secret_hash};
use tessera_core::{SecretString, TenantId};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::model::{AccessToken, AccessTokenData, UserSpec};
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_store::{Kind, Record, WriteTx};
use uuid::Uuid;

use crate::codec::{self, Keys, Page, PageRequest};
use crate::error::{ServiceError, ServiceResult};
use crate::{Caller, Context, Directory, EventDraft, Principal};

pub const MAX_TOKEN_DAYS: i64 = 365;
const DEFAULT_TOKEN_DAYS: i64 = 30;
/// Tokens an administrator issues for someone else are for onboarding: short-lived.
pub const MAX_ISSUED_TOKEN_DAYS: i64 = 7;
const DEFAULT_ISSUED_TOKEN_DAYS: i64 = 1;

/// A request for a new token.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for (1 to 128 characters, not only spaces).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 128, pattern = r"\S")
    )]
    pub display_name: String,
    /// Lifetime in days; 30 when absent, at most 365 (for a token an administrator
    /// issues for someone else: 1 when absent, at most 7).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 365))]
    pub expires_in_days: Option<i64>,
}

/// A new token: its metadata and, this once, the token itself.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: AccessToken,
    /// The token; shown this once.
    #[serde(serialize_with = "expose")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub secret: SecretString,
}

fn expose<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

/// The tenant a token claims to belong to, if it has the token format at all.
pub fn parse_token_tenant(token: &str) -> Option<TenantId> {
    let rest = token.strip_prefix("tsr_pat_")?;
    let (tenant, secret) = rest.split_once('_')?;
    if tenant.len() != 32 || secret.len() != 43 {
        return None;
    }
    Uuid::try_parse(tenant).ok().map(TenantId)
}

fn check_token_request(
    request: &NewToken,
    default_days: i64,
    max_days: i64,
) -> ServiceResult<(String, i64)> {
    let name = request.display_name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ServiceError::invalid(
            "displayName",
            "must be 1 to 128 characters",
        ));
    }
    let days = request.expires_in_days.unwrap_or(default_days);
    if !(1..=max_days).contains(&days) {
        return Err(ServiceError::invalid(
            "expiresInDays",
            format!("must be between 1 and {max_days}"),
        ));
    }
    Ok((name.to_string(), days))
}

fn token_from(record: &Record) -> ServiceResult<AccessToken> {
    Ok(AccessToken {
        id: record.id,
        data: codec::data(record)?,
        created_date_time: record.created,
    })
}

/// The audit event of a new personal access token (its hint and expiry, never the
/// secret).
pub(crate) fn token_created(created: &CreatedToken, owner: Uuid, name: &str) -> EventDraft {
    let data = &created.token.data;
    EventDraft::new(AuditAction::AccessTokenCreate)
        .on(Kind::AccessToken, created.token.id, name)
        .details(json!({
            "ownerId": owner, "hint": data.hint, "expiresDateTime": data.expires_date_time,
        }))
}

impl Directory {
    /// Issues a token for `owner` (a user), valid `days`. The one place tokens are made;
    /// used by the API and by bootstrap.
    pub(crate) async fn issue_token(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        owner: Uuid,
        display_name: &str,
        lifetime_seconds: i64,
        issued_by: Option<Uuid>,
    ) -> ServiceResult<CreatedToken> {
        let generated = generate_secret("").map_err(|e| ServiceError::Internal(e.to_string()))?;
        let token = format!(
            "tsr_pat_{}_{}",
            tenant.0.simple(),
            generated.secret.expose()
        );
        let now = self.now();
        let data = AccessTokenData {
            owner_id: owner,
            display_name: display_name.to_string(),
            hint: generated.hint,
            expires_date_time: now.plus_seconds(lifetime_seconds),
            issued_by,
        };
        let id = Uuid::new_v4();
        let keys = Keys {
            key1: Some(secret_hash(&token)),
            key2: Some(owner.to_string()),
            sort_key: id.to_string(),
        };
        let record = codec::new_record(Kind::AccessToken, id, now, keys, &data)?;
        tx.insert(tenant, &record).await?;
        Ok(CreatedToken {
            token: token_from(&record)?,
            secret: SecretString::new(token),
        })
    }

    pub async fn create_own_token(
        &self,
        ctx: &Context,
        body: serde_json::Value,
    ) -> ServiceResult<CreatedToken> {
        let request: NewToken = patch::parse_spec(body)?;
        let Some(owner) = ctx.caller.user_id() else {
            return Err(ServiceError::Forbidden {
                reason: "only users can hold personal access tokens".to_string(),
            });
        };
        let (name, days) = check_token_request(&request, DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS)?;
        // A token made with a token an administrator issued ends when that one does,
        // and stays marked as issued: the onboarding bound cannot be escaped.
        let mut lifetime = days * 86_400;
        let mut issued_by = None;
        if let Some(issued) = ctx.caller.issued_credential {
            let remaining = (issued.expires.unix_micros() - self.now().unix_micros()) / 1_000_000;
            lifetime = lifetime.min(remaining.max(0));
            issued_by = Some(issued.issued_by);
        }
        let mut tx = self.write(ctx).await?;
        let created = self
            .issue_token(tx.as_mut(), ctx.tenant, owner, &name, lifetime, issued_by)
            .await?;
        self.commit(tx, ctx, token_created(&created, owner, &name))
            .await?;
        Ok(created)
    }

    /// Issues a short-lived token for another user, e.g. a newly delegated
    /// administrator's first credential. Needs the permission to create authentication
    /// methods for that user; users who hold roles need a privileged administrator.
    pub async fn issue_token_for(
        &self,
        ctx: &Context,
        owner: Uuid,
        body: serde_json::Value,
    ) -> ServiceResult<CreatedToken> {
        let request: NewToken = patch::parse_spec(body)?;
        let (name, days) =
            check_token_request(&request, DEFAULT_ISSUED_TOKEN_DAYS, MAX_ISSUED_TOKEN_DAYS)?;
        let mut tx = self.write(ctx).await?;
        let (record, _) = self
            .load_authorized(
                tx.as_mut(),
                ctx,
                Kind::User,
                owner,
                action::USERS_AUTH_METHODS_CREATE,
            )
            .await?;
        let spec: UserSpec = codec::data(&record)?;
        if !spec.account_enabled {
            return Err(ServiceError::Conflict {
                message: "the account is disabled".to_string(),
            });
        }
        let created = self
            .issue_token(
                tx.as_mut(),
                ctx.tenant,
                owner,
                &name,
                days * 86_400,
                ctx.caller.user_id(),
            )
            .await?;
        let event = EventDraft::new(AuditAction::AccessTokenIssue)
            .on(Kind::User, owner, &spec.user_principal_name)
            .details(json!({
                "tokenId": created.token.id, "displayName": name, "hint": created.token.data.hint,
                "expiresDateTime": created.token.data.expires_date_time,
            }));
        self.commit(tx, ctx, event).await?;
        Ok(created)
    }

    /// Tokens of a user: the caller's own, or anyone's for a reader of users.
    pub async fn list_tokens(
        &self,
        ctx: &Context,
        owner: Uuid,
        request: &PageRequest,
    ) -> ServiceResult<Page<AccessToken>> {
        let mut reader = self.reader().await?;
        if ctx.caller.user_id() != Some(owner) {
            self.load_authorized(reader.as_mut(), ctx, Kind::User, owner, action::USERS_READ)
                .await?;
        }
        let (records, next_cursor) = codec::list_page(
            reader.as_mut(),
            ctx.tenant,
            Kind::AccessToken,
            request,
            Some(owner.to_string()),
        )
        .await?;
        Page::of(&records, next_cursor, token_from)
    }

    /// Revokes (deletes) a token: one's own, or another user's with the permission to
    /// invalidate that user's sessions.
    pub async fn revoke_token(
        &self,
        ctx: &Context,
        owner: Uuid,
        token_id: Uuid,
    ) -> ServiceResult<()> {
        let mut tx = self.write(ctx).await?;
        if ctx.caller.user_id() != Some(owner) {
            self.load_authorized(
                tx.as_mut(),
                ctx,
                Kind::User,
                owner,
                action::USERS_INVALIDATE_TOKENS,
            )
            .await?;
        }
        let record = tx.get(ctx.tenant, Kind::AccessToken, token_id).await?;
        let Some(record) = record.filter(|r| r.key2.as_deref() == Some(owner.to_string().as_str()))
        else {
            return Err(ServiceError::NotFound {
                kind: "accessToken",
                id: token_id.to_string(),
            });
        };
        let token = token_from(&record)?;
        tx.delete(ctx.tenant, Kind::AccessToken, token_id, None)
            .await?;
        let event = EventDraft::new(AuditAction::AccessTokenRevoke)
            .on(Kind::AccessToken, token_id, &token.data.display_name)
            .details(json!({ "ownerId": owner, "hint": token.data.hint }));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }

    /// Resolves a bearer token to a caller, or refuses with one generic error that does
    /// not tell a wrong token from an expired one or a disabled owner.
    pub async fn authenticate_token(&self, token: &str) -> ServiceResult<(TenantId, Caller)> {
        let tenant = parse_token_tenant(token).ok_or(ServiceError::Unauthenticated)?;
        // The epoch first: a change committed after it moves it, so what is
        // loaded below is never kept past a change it missed.
        let epoch = self
            .store()
            .counter_get(tenant, crate::kernel::callers::EPOCH_KEY)
            .await?
            .map_or(0, |c| c.value);
        let key = tessera_core::crypto::sha256(token.as_bytes());
        let now = self.now();
        if let Some(caller) = self.callers.get(&key, tenant, epoch, now) {
            return Ok((tenant, caller));
        }
        let mut reader = self.reader().await?;
        let record = codec::find_by_secret(reader.as_mut(), tenant, Kind::AccessToken, token)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        let data: AccessTokenData = codec::data(&record)?;
        if data.expires_date_time <= self.now() {
            return Err(ServiceError::Unauthenticated);
        }
        let user = reader
            .get(tenant, Kind::User, data.owner_id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        let spec: UserSpec = codec::data(&user)?;
        if !spec.account_enabled {
            return Err(ServiceError::Unauthenticated);
        }
        let (grants, timed) =
            super::roles::grants_of_timed(reader.as_mut(), tenant, user.id, now).await?;
        let caller = Caller {
            principal: Principal::User {
                id: user.id,
                user_principal_name: spec.user_principal_name,
            },
            grants,
            credential: Some(format!("pat:{}", record.id)),
            issued_credential: data.issued_by.map(|issued_by| crate::IssuedCredential {
                issued_by,
                expires: data.expires_date_time,
            }),
            proof: None,
            protected: crate::kernel::protected_actions(reader.as_mut(), tenant).await?,
        };
        if !timed {
            self.callers.put(
                key,
                tenant,
                caller.clone(),
                epoch,
                now,
                data.expires_date_time,
            );
        }
        Ok((tenant, caller))
    }

    /// A user as the next authenticated request would find them (grants read
    /// now), without a credential: the `testing` feature only, for tests that move
    /// the clock past any token's life.
    #[cfg(feature = "testing")]
    pub async fn caller_for_tests(&self, tenant: TenantId, user: Uuid) -> ServiceResult<Caller> {
        let mut reader = self.reader().await?;
        let record = codec::load(reader.as_mut(), tenant, Kind::User, user).await?;
        let spec: UserSpec = codec::data(&record)?;
        Ok(Caller {
            principal: Principal::User {
                id: user,
                user_principal_name: spec.user_principal_name,
            },
            grants: crate::directory::roles::grants_of(reader.as_mut(), tenant, user, self.now())
                .await?,
            credential: Some("test".to_string()),
            issued_credential: None,
            proof: None,
            protected: crate::kernel::protected_actions(reader.as_mut(), tenant).await?,
        })
    }

    /// The signed-in user and their effective role grants.
    pub async fn me(&self, ctx: &Context) -> ServiceResult<serde_json::Value> {
        let Some(id) = ctx.caller.user_id() else {
            return Ok(json!({ "type": "system" }));
        };
        let mut reader = self.reader().await?;
        let record = codec::load(reader.as_mut(), ctx.tenant, Kind::User, id).await?;
        let user = self.user_view(ctx, super::users::user_from(&record)?);
        let grants: Vec<_> = ctx
            .caller
            .grants
            .iter()
            .map(|g| {
                json!({
                    "roleDefinitionId": g.role_id,
                    "role": tessera_directory::roles::built_in(g.role_id).map(|r| r.display_name),
                    "directoryScopeId": g.scope.render(),
                    "assignmentId": g.assignment_id,
                })
            })
            .collect();
        Ok(json!({ "user": user, "tenantId": ctx.tenant, "roles": grants }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_tenant_parsing() {
        let tenant = TenantId::new_random();
        let token = format!("tsr_pat_{}_{}", tenant.0.simple(), "a".repeat(43));
        assert_eq!(parse_token_tenant(&token), Some(tenant));
        assert_eq!(parse_token_tenant("tsr_pat_nope"), None);
        assert_eq!(
            parse_token_tenant(&format!("tsr_pat_{}_{}", tenant.0.simple(), "a".repeat(42))),
            None
        );
        assert_eq!(parse_token_tenant(""), None);
        assert_eq!(
            parse_token_tenant(&format!("tsr_pat_{}_{}", "z".repeat(32), "a".repeat(43))),
            None
        );
    }
}

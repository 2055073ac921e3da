//! First start: an empty store gets its tenant and a break-glass Global
//! Administrator with a one-hour credential, exactly once even when several nodes
//! start together.

use serde_json::json;
use tessera_core::{SecretString, TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::model::{RoleAssignmentSpec, UserSpec};
use tessera_directory::{patch, roles, validate};
use tessera_store::{Kind, StoreError, Tenant, WriteTx};
use uuid::Uuid;

use crate::codec;
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, Directory, EventDraft};

pub const BOOTSTRAP_TOKEN_SECONDS: i64 = 3600;

/// What bootstrap created; the token is shown once.
#[derive(Debug)]
pub struct Bootstrap {
    pub tenant: TenantId,
    pub user_id: Uuid,
    pub user_principal_name: String,
    pub token: SecretString,
    pub expires: Timestamp,
}

pub(crate) use crate::kernel::system_context;

impl Directory {
    /// Creates the default tenant and its break-glass administrator if the store has no
    /// tenant yet. Returns `None` when the store was already bootstrapped (possibly by
    /// another node a moment ago).
    pub async fn bootstrap_if_empty(
        &self,
        tenant_name: &str,
        domain: &str,
    ) -> ServiceResult<Option<Bootstrap>> {
        if self.store.default_tenant().await?.is_some() {
            return Ok(None);
        }
        let tenant = Tenant {
            id: TenantId::new_random(),
            name: tenant_name.to_string(),
            created: self.now(),
        };
        let mut tx = match self.store.create_tenant(&tenant, true).await {
            Ok(tx) => tx,
            Err(StoreError::TenantExists) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        let ctx = system_context(tenant.id, "bootstrap");
        let event = EventDraft::new(AuditAction::TenantCreate)
            .details(json!({ "tenantId": tenant.id, "name": tenant_name }));
        self.audit(tx.as_mut(), &ctx, event).await?;
        let (user_id, user_principal_name) = self
            .create_break_glass_admin(tx.as_mut(), &ctx, domain)
            .await?;
        let (token, expires) = self
            .bootstrap_token(tx.as_mut(), &ctx, user_id, "bootstrap")
            .await?;
        tx.commit().await?;
        Ok(Some(Bootstrap {
            tenant: tenant.id,
            user_id,
            user_principal_name,
            token,
            expires,
        }))
    }

    async fn create_break_glass_admin(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        domain: &str,
    ) -> ServiceResult<(Uuid, String)> {
        let spec: UserSpec = patch::parse_spec(json!({
            "userPrincipalName": format!("breakglass@{domain}"),
            "displayName": "Break-glass administrator",
        }))?;
        validate::user_spec(&spec)?;
        let id = Uuid::new_v4();
        let record = codec::new_record(
            Kind::User,
            id,
            self.now(),
            super::users::user_keys(&spec),
            &spec,
        )?;
        tx.insert(ctx.tenant, &record).await?;
        let changes = patch::changes(
            &serde_json::Value::Null,
            &serde_json::to_value(&spec).unwrap_or_default(),
        );
        self.audit(
            tx,
            ctx,
            EventDraft::new(AuditAction::UserCreate)
                .on(Kind::User, id, &spec.user_principal_name)
                .changes(changes),
        )
        .await?;
        let assignment = RoleAssignmentSpec {
            principal_id: id,
            role_definition_id: roles::GLOBAL_ADMINISTRATOR,
            directory_scope_id: "/".to_string(),
        };
        let assignment_id = Uuid::new_v4();
        let keys = codec::Keys {
            key1: Some(format!("{}|{}|/", id, roles::GLOBAL_ADMINISTRATOR)),
            key2: Some(id.to_string()),
            sort_key: format!("{}|{}", roles::GLOBAL_ADMINISTRATOR, id),
        };
        tx.insert(
            ctx.tenant,
            &codec::new_record(
                Kind::RoleAssignment,
                assignment_id,
                self.now(),
                keys,
                &assignment,
            )?,
        )
        .await?;
        let event = EventDraft::new(AuditAction::RoleAssignmentCreate)
            .on(Kind::RoleAssignment, assignment_id, "Global Administrator")
            .details(json!({
                "principalId": id,
                "roleDefinitionId": roles::GLOBAL_ADMINISTRATOR,
                "directoryScopeId": "/",
            }));
        self.audit(tx, ctx, event).await?;
        Ok((id, spec.user_principal_name))
    }

    async fn bootstrap_token(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        user: Uuid,
        name: &str,
    ) -> ServiceResult<(SecretString, Timestamp)> {
        let created = self
            .issue_token(tx, ctx.tenant, user, name, BOOTSTRAP_TOKEN_SECONDS, None)
            .await?;
        self.audit(tx, ctx, super::tokens::token_created(&created, user, name))
            .await?;
        Ok((created.secret, created.token.data.expires_date_time))
    }

    /// Offline recovery: a one-hour token for an existing, enabled Global Administrator,
    /// for an operator with access to the database (e.g. after the bootstrap token
    /// expired unused). Audited as a system action.
    pub async fn recovery_token(
        &self,
        tenant: TenantId,
        user_principal_name: &str,
    ) -> ServiceResult<Bootstrap> {
        let ctx = system_context(tenant, "recovery");
        let mut tx = self.store.begin_write(tenant).await?;
        let Some(record) = tx
            .get_by_key1(tenant, Kind::User, &user_principal_name.to_lowercase())
            .await?
        else {
            return Err(ServiceError::NotFound {
                kind: "user",
                id: user_principal_name.to_string(),
            });
        };
        let spec: UserSpec = codec::data(&record)?;
        let grants = super::roles::grants_of(tx.as_mut(), tenant, record.id, self.now()).await?;
        let is_global_admin = grants.iter().any(|g| {
            g.role_id == roles::GLOBAL_ADMINISTRATOR
                && g.scope == tessera_directory::model::DirectoryScope::Tenant
        });
        if !is_global_admin || !spec.account_enabled {
            return Err(ServiceError::Conflict {
                message: format!("{user_principal_name} is not an enabled Global Administrator"),
            });
        }
        let (token, expires) = self
            .bootstrap_token(tx.as_mut(), &ctx, record.id, "recovery")
            .await?;
        tx.commit().await?;
        Ok(Bootstrap {
            tenant,
            user_id: record.id,
            user_principal_name: spec.user_principal_name,
            token,
            expires,
        })
    }
}

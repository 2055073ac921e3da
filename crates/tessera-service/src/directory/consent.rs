//! Consent (Entra's `oAuth2PermissionGrant`): which delegated scopes an application
//! may use, for every user (admin consent) or for one user (their own consent), and
//! the tenant policy that limits what users may consent to themselves (DoD 1.7.1:
//! by default only the low-risk OpenID scopes).
//!
//! Records: key1 `<appId>:all` or `<appId>:<userId>` (one grant each), key2 the
//! application's client id. Every change is audited, a user's own consent with the
//! user as the actor.

use serde_json::{Value, json};
use tessera_core::{AppId, TenantId};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::{
    AppCredentialPolicy, AuthenticationContexts, ConsentPolicy, ConsentType, PermissionGrant,
    PermissionGrantSpec,
};
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use crate::codec::{self, Keys};
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::tenant_settings::{TenantSetting, read_setting};
use crate::{Context, Directory, EventDraft};

pub(crate) async fn auth_contexts(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<AuthenticationContexts> {
    read_setting(reader, tenant).await
}

pub(crate) async fn credential_policy(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<AppCredentialPolicy> {
    read_setting(reader, tenant).await
}

fn grant_key(client_id: AppId, principal: Option<Uuid>) -> String {
    match principal {
        Some(user) => format!("{client_id}:{user}"),
        None => format!("{client_id}:all"),
    }
}

fn scopes_of(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) async fn consent_policy(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<ConsentPolicy> {
    read_setting(reader, tenant).await
}

impl crate::kernel::tenant_settings::sealed::Sealed for ConsentPolicy {}

impl TenantSetting for ConsentPolicy {
    const KEY: &'static str = "consentPolicy";
    const UPDATED: AuditAction = AuditAction::ConsentPolicyUpdate;
}

impl crate::kernel::tenant_settings::sealed::Sealed for AppCredentialPolicy {}

impl TenantSetting for AppCredentialPolicy {
    const KEY: &'static str = "appCredentialPolicy";
    const UPDATED: AuditAction = AuditAction::AppCredentialPolicyUpdate;
}

impl crate::kernel::tenant_settings::sealed::Sealed for AuthenticationContexts {}

impl TenantSetting for AuthenticationContexts {
    const KEY: &'static str = "authenticationContexts";
    const UPDATED: AuditAction = AuditAction::AuthenticationContextsUpdate;
}

/// The scopes granted to `client_id` for `user`: admin consent plus their own.
pub(crate) async fn granted_scopes(
    reader: &mut dyn Reader,
    tenant: TenantId,
    client_id: AppId,
    user: Uuid,
) -> ServiceResult<Vec<String>> {
    let mut scopes = Vec::new();
    for principal in [None, Some(user)] {
        if let Some(record) = reader
            .get_by_key1(
                tenant,
                Kind::PermissionGrant,
                &grant_key(client_id, principal),
            )
            .await?
        {
            let grant: PermissionGrant = codec::data(&record)?;
            scopes.extend(scopes_of(&grant.spec.scope));
        }
    }
    Ok(scopes)
}

fn validate_scope(scope: &str) -> ServiceResult<()> {
    let parsed = tessera_oauth::authorize::parse_scopes(scope)
        .map_err(|e| ServiceError::invalid("scope", e.description))?;
    if parsed.is_empty() {
        return Err(ServiceError::invalid("scope", "name at least one scope"));
    }
    Ok(())
}

impl Directory {
    pub async fn set_consent_policy(
        &self,
        ctx: &Context,
        change: crate::Replacement,
    ) -> ServiceResult<ConsentPolicy> {
        self.may_change_settings(ctx)?;
        let crate::Replacement { body, if_match } = change;
        let policy: ConsentPolicy = patch::parse_spec(body)?;
        for scope in &policy.low_risk_scopes {
            validate_scope(scope).map_err(|_| {
                ServiceError::invalid(
                    "lowRiskScopes",
                    "a scope has characters outside RFC 6749 A.4",
                )
            })?;
        }
        let (tx, before) = self.open_setting::<ConsentPolicy>(ctx, if_match).await?;
        self.save_setting(ctx, tx, &before, &policy).await?;
        Ok(policy)
    }

    /// Replaces the tenant's authentication contexts (`c1` to `c99`, each mapped to
    /// a strength that exists).
    pub async fn set_authentication_contexts(
        &self,
        ctx: &Context,
        change: crate::Replacement,
    ) -> ServiceResult<AuthenticationContexts> {
        self.may_change_settings(ctx)?;
        // What a context means decides what a protected action asks: changing
        // the contexts is as protected as changing the protected actions.
        self.protect(ctx, tessera_pim::protected::PROTECTED_ACTIONS_UPDATE, None)?;
        let crate::Replacement { body, if_match } = change;
        let contexts: AuthenticationContexts = patch::parse_spec(body)?;
        let (mut tx, before) = self
            .open_setting::<AuthenticationContexts>(ctx, if_match)
            .await?;
        let mut seen = std::collections::BTreeSet::new();
        for (index, context) in contexts.contexts.iter().enumerate() {
            let id_ok = context
                .id
                .strip_prefix('c')
                .and_then(|n| n.parse::<u8>().ok())
                .is_some_and(|n| (1..=99).contains(&n) && context.id == format!("c{n}"));
            if !id_ok {
                return Err(ServiceError::invalid(
                    format!("contexts[{index}].id"),
                    "must be c1 to c99",
                ));
            }
            if !seen.insert(context.id.clone()) {
                return Err(ServiceError::invalid(
                    format!("contexts[{index}].id"),
                    "is used twice",
                ));
            }
            if context.display_name.trim().is_empty() || context.display_name.chars().count() > 128
            {
                return Err(ServiceError::invalid(
                    format!("contexts[{index}].displayName"),
                    "must be 1 to 128 characters",
                ));
            }
            if super::auth_policy::load_strength(tx.as_mut(), ctx.tenant, context.strength_id)
                .await?
                .is_none()
            {
                return Err(ServiceError::invalid(
                    format!("contexts[{index}].strengthId"),
                    "no authentication strength has this id",
                ));
            }
        }
        for used in contexts_in_use(tx.as_mut(), ctx.tenant).await? {
            if !contexts.contexts.iter().any(|c| c.id == used) {
                return Err(ServiceError::Conflict {
                    message: format!(
                        "authentication context {used} is named by a protected action or a role's PIM settings; change those first"
                    ),
                });
            }
        }
        self.save_setting(ctx, tx, &before, &contexts).await?;
        Ok(contexts)
    }

    pub async fn set_app_credential_policy(
        &self,
        ctx: &Context,
        change: crate::Replacement,
    ) -> ServiceResult<AppCredentialPolicy> {
        self.may_change_settings(ctx)?;
        let crate::Replacement { body, if_match } = change;
        let policy: AppCredentialPolicy = patch::parse_spec(body)?;
        let (tx, before) = self
            .open_setting::<AppCredentialPolicy>(ctx, if_match)
            .await?;
        self.save_setting(ctx, tx, &before, &policy).await?;
        Ok(policy)
    }

    /// Admin consent (or consent recorded for one user by an administrator).
    pub async fn create_permission_grant(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<PermissionGrant> {
        self.require(ctx, action::PERMISSION_GRANTS_MANAGE, &Target::Tenant)?;
        let spec: PermissionGrantSpec = patch::parse_spec(body)?;
        validate_scope(&spec.scope)?;
        let principal = match (spec.consent_type, spec.principal_id) {
            (ConsentType::AllPrincipals, None) => None,
            (ConsentType::Principal, Some(user)) => Some(user),
            _ => {
                return Err(ServiceError::invalid(
                    "principalId",
                    "give principalId for Principal consent, and only then",
                ));
            }
        };
        let mut tx = self.write(ctx).await?;
        if tx
            .get_by_key1(ctx.tenant, Kind::Application, &spec.client_id.to_string())
            .await?
            .is_none()
        {
            return Err(ServiceError::invalid(
                "clientId",
                "no application has this client id",
            ));
        }
        if let Some(user) = principal
            && tx.get(ctx.tenant, Kind::User, user).await?.is_none()
        {
            return Err(ServiceError::invalid("principalId", "no user has this id"));
        }
        let grant = self
            .upsert_grant(
                tx.as_mut(),
                ctx,
                spec.client_id,
                principal,
                &scopes_of(&spec.scope),
                true,
            )
            .await?;
        tx.commit().await?;
        Ok(grant)
    }

    /// Writes a grant: replaces its scopes (`replace`) or adds to them.
    async fn upsert_grant(
        &self,
        tx: &mut dyn tessera_store::WriteTx,
        ctx: &Context,
        client_id: AppId,
        principal: Option<Uuid>,
        scopes: &[String],
        replace: bool,
    ) -> ServiceResult<PermissionGrant> {
        let now = self.now();
        let key = grant_key(client_id, principal);
        let keys = || Keys {
            key1: Some(key.clone()),
            key2: Some(client_id.to_string()),
            sort_key: key.clone(),
        };
        let existing = tx
            .get_by_key1(ctx.tenant, Kind::PermissionGrant, &key)
            .await?;
        let (grant, before) = match &existing {
            Some(record) => {
                let mut grant: PermissionGrant = codec::data(record)?;
                let before = grant.spec.scope.clone();
                let mut all = if replace {
                    Vec::new()
                } else {
                    scopes_of(&grant.spec.scope)
                };
                for scope in scopes {
                    if !all.contains(scope) {
                        all.push(scope.clone());
                    }
                }
                grant.spec.scope = all.join(" ");
                grant.modified_date_time = now;
                let updated = codec::next_version(record, now, keys(), &grant)?;
                tx.update(ctx.tenant, &updated).await?;
                (grant, Some(before))
            }
            None => {
                let grant = PermissionGrant {
                    id: Uuid::new_v4(),
                    spec: PermissionGrantSpec {
                        client_id,
                        consent_type: if principal.is_some() {
                            ConsentType::Principal
                        } else {
                            ConsentType::AllPrincipals
                        },
                        principal_id: principal,
                        scope: scopes.join(" "),
                    },
                    created_date_time: now,
                    modified_date_time: now,
                };
                let record =
                    codec::new_record(Kind::PermissionGrant, grant.id, now, keys(), &grant)?;
                tx.insert(ctx.tenant, &record).await?;
                (grant, None)
            }
        };
        let event = EventDraft::new(AuditAction::OAuth2PermissionGrantUpdate)
            .on(Kind::PermissionGrant, grant.id, &key)
            .details(json!({
                "clientId": client_id,
                "consentType": grant.spec.consent_type,
                "principalId": principal,
                "scopeBefore": before,
                "scope": grant.spec.scope,
            }));
        self.audit(tx, ctx, event).await?;
        Ok(grant)
    }

    pub async fn list_permission_grants(
        &self,
        ctx: &Context,
        client_id: Option<AppId>,
    ) -> ServiceResult<Vec<PermissionGrant>> {
        self.require(ctx, action::APPS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let records = codec::list_all(
            reader.as_mut(),
            ctx.tenant,
            Kind::PermissionGrant,
            client_id.map(|c| c.to_string()),
        )
        .await?;
        records.iter().map(codec::data).collect()
    }

    /// Revokes a consent: the application must ask again.
    pub async fn delete_permission_grant(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        let (mut tx, record) = self
            .open_tenant_record(
                ctx,
                action::PERMISSION_GRANTS_MANAGE,
                Kind::PermissionGrant,
                id,
            )
            .await?;
        let grant: PermissionGrant = codec::data(&record)?;
        tx.delete(ctx.tenant, Kind::PermissionGrant, id, None)
            .await?;
        let event = EventDraft::new(AuditAction::OAuth2PermissionGrantDelete)
            .on(
                Kind::PermissionGrant,
                id,
                record.key1.as_deref().unwrap_or(""),
            )
            .details(json!({ "clientId": grant.spec.client_id, "scope": grant.spec.scope }));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }

    /// A user's own consent, given on the consent page: added to their grant.
    pub(crate) async fn record_user_consent(
        &self,
        ctx: &Context,
        client_id: AppId,
        user: Uuid,
        scopes: &[String],
    ) -> ServiceResult<()> {
        let mut tx = self.write(ctx).await?;
        self.upsert_grant(tx.as_mut(), ctx, client_id, Some(user), scopes, false)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The authentication contexts that others name (the tenant's protected actions,
/// the roles' PIM settings, whose records the PIM context writes under key1
/// `role:<id>`): a change of the contexts may not drop one of them (that would
/// leave an action nobody can step up to).
pub(crate) async fn contexts_in_use(
    reader: &mut dyn tessera_store::Reader,
    tenant: tessera_core::TenantId,
) -> ServiceResult<Vec<String>> {
    let mut used: Vec<String> = crate::kernel::tenant_settings::read_setting::<
        tessera_pim::protected::ProtectedActions,
    >(reader, tenant)
    .await?
    .rules
    .into_iter()
    .map(|r| r.authentication_context)
    .collect();
    for record in
        crate::codec::list_all(reader, tenant, tessera_store::Kind::PimPolicy, None).await?
    {
        if record
            .key1
            .as_deref()
            .is_some_and(|k| k.starts_with("role:") || k.starts_with("group:"))
        {
            let settings: tessera_pim::Settings = crate::codec::data(&record)?;
            used.extend(settings.activation_authentication_context);
        }
    }
    used.sort();
    used.dedup();
    Ok(used)
}

//! The tenant's protected actions (the rules are `tessera_pim::protected`): a
//! tenant setting every authenticated caller carries (read when it is
//! authenticated), enforced by `Kernel::protect` where the actions happen.
//! Changing them is itself a protected action once a rule says so.

use tessera_directory::audit_action::AuditAction;
use tessera_directory::patch;
use tessera_pim::protected::{PROTECTED_ACTIONS_UPDATE, ProtectedActions};

use super::Pim;
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::tenant_settings::{TenantSetting, sealed};
use crate::{Context, Replacement};

impl sealed::Sealed for ProtectedActions {}
impl TenantSetting for ProtectedActions {
    const KEY: &'static str = "protectedActions";
    const UPDATED: AuditAction = AuditAction::ProtectedActionsUpdate;
}

impl Pim {
    /// The protected actions, with the version to send as `If-Match`.
    pub async fn protected_actions(&self, ctx: &Context) -> ServiceResult<(ProtectedActions, i64)> {
        self.get_setting_versioned::<ProtectedActions>(ctx).await
    }

    /// Replaces the protected actions (a manager of the tenant's policies, with
    /// the context the current rules ask for changing them). Every context named
    /// must exist.
    pub async fn set_protected_actions(
        &self,
        ctx: &Context,
        change: Replacement,
    ) -> ServiceResult<ProtectedActions> {
        self.may_change_settings(ctx)?;
        self.protect(ctx, PROTECTED_ACTIONS_UPDATE, None)?;
        let Replacement { body, if_match } = change;
        let rules: ProtectedActions = patch::parse_spec(body)?;
        rules
            .check()
            .map_err(|problem| ServiceError::invalid("rules", problem))?;
        // Whoever saves the rules must meet what they ask for changing them
        // again, or nobody might.
        let satisfied = ctx
            .caller
            .proof
            .as_ref()
            .map(|p| p.authentication_contexts.clone())
            .unwrap_or_default();
        if let Some(context) = rules.missing(PROTECTED_ACTIONS_UPDATE, None, &satisfied) {
            return Err(ServiceError::InsufficientAuthentication {
                acr_values: context.to_string(),
                message: format!(
                    "these rules protect their own change with {context}: sign in with it first, so the tenant is not locked out"
                ),
            });
        }
        let (mut tx, before) = self.open_setting::<ProtectedActions>(ctx, if_match).await?;
        let contexts = crate::directory::consent::auth_contexts(tx.as_mut(), ctx.tenant).await?;
        for (index, rule) in rules.rules.iter().enumerate() {
            if !contexts
                .contexts
                .iter()
                .any(|c| c.id == rule.authentication_context)
            {
                return Err(ServiceError::invalid(
                    format!("rules[{index}].authenticationContext"),
                    format!(
                        "the tenant has no authentication context {}",
                        rule.authentication_context
                    ),
                ));
            }
            if let Some(role) = rule.role_definition_id
                && tessera_directory::roles::built_in(role).is_none()
            {
                return Err(ServiceError::invalid(
                    format!("rules[{index}].roleDefinitionId"),
                    format!("no role definition with id {role} exists"),
                ));
            }
        }
        self.save_setting(ctx, tx, &before, &rules).await?;
        Ok(rules)
    }
}

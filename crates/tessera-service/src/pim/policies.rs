//! Graph's role management policies over the targets' settings
//! (`policies/roleManagementPolicies`, their `rules`, and
//! `policies/roleManagementPolicyAssignments`): the same settings `settings.rs`
//! stores, shown and changed rule by rule in Entra's shape
//! (`tessera_pim::graph`).
//!
//! Policy ids name their target: `DirectoryRole_<role id>` (a role's policy, at
//! every scope) and `Group_<group id>_member` or `..._owner`. A listing is asked
//! for one scope, as in Graph: `$filter=scopeId eq '/' and scopeType eq
//! 'DirectoryRole'`, or `scopeId eq '<group id>' and scopeType eq 'Group'`.

use serde_json::{Value, json};
use tessera_pim::GroupAccess;
use tessera_pim::graph::{self, PolicyFilter, PolicyOf, parse_policy_id, policy_id};
use uuid::Uuid;

use super::{Pim, SettingsView};
use crate::Context;
use crate::codec::Page;
use crate::error::{ServiceError, ServiceResult};

fn no_policy(id: &str) -> ServiceError {
    ServiceError::NotFound {
        kind: "roleManagementPolicy",
        id: id.to_string(),
    }
}

fn parse_filter(filter: Option<&str>) -> ServiceResult<PolicyFilter> {
    let Some(filter) = filter else {
        return Err(ServiceError::invalid(
            "$filter",
            "name the scope: scopeId eq '/' and scopeType eq 'DirectoryRole' (or a group's id and 'Group')",
        ));
    };
    graph::parse_filter(filter).map_err(|problem| ServiceError::invalid("$filter", problem))
}

/// The policies of a filtered scope.
fn policies_of_scope(scope: &PolicyFilter) -> ServiceResult<Vec<PolicyOf>> {
    match (scope.id.as_deref(), scope.kind.as_deref()) {
        (Some("/"), Some("DirectoryRole")) => Ok(tessera_directory::roles::BUILT_IN_ROLES
            .iter()
            .map(|role| PolicyOf::Role(role.id))
            .collect()),
        (Some(group), Some("Group")) => {
            let group = Uuid::parse_str(group)
                .map_err(|_| ServiceError::invalid("$filter", "a group's scopeId is its id"))?;
            Ok(vec![
                PolicyOf::Group(group, GroupAccess::Member),
                PolicyOf::Group(group, GroupAccess::Owner),
            ])
        }
        _ => Err(ServiceError::invalid(
            "$filter",
            "the scopes are scopeId eq '/' and scopeType eq 'DirectoryRole', or scopeId eq '<group id>' and scopeType eq 'Group' (settings apply at every scope of a role)",
        )),
    }
}

impl Pim {
    /// A policy's settings; a role or group that does not exist is no policy.
    async fn settings_of(&self, ctx: &Context, of: PolicyOf) -> ServiceResult<SettingsView> {
        let read = match of {
            PolicyOf::Role(role) => self.role_settings(ctx, role).await,
            PolicyOf::Group(group, access) => self.group_settings(ctx, group, access).await,
        };
        read.map_err(|error| match error {
            ServiceError::Validation(_) => no_policy(&policy_id(of)),
            other => other,
        })
    }

    fn policy_view(of: PolicyOf, view: &SettingsView, expand: bool) -> Value {
        let (scope_id, scope_type, what) = match of {
            PolicyOf::Role(_) => ("/".to_string(), "DirectoryRole", "role"),
            PolicyOf::Group(group, _) => (group.to_string(), "Group", "group"),
        };
        let mut policy = json!({
            "id": policy_id(of),
            "displayName": format!("{} ({what})", view.role),
            "description": format!("PIM settings of {}", view.role),
            "isOrganizationDefault": view.is_default,
            "scopeId": scope_id,
            "scopeType": scope_type,
            "lastModifiedDateTime": view.modified_date_time,
            "version": view.version,
        });
        if expand {
            policy["rules"] = Value::Array(graph::rules(&view.settings));
        }
        policy
    }

    /// `GET policies/roleManagementPolicies?$filter=...[&$expand=rules]`.
    pub async fn list_role_management_policies(
        &self,
        ctx: &Context,
        filter: Option<&str>,
        expand_rules: bool,
    ) -> ServiceResult<Page<Value>> {
        let scope = parse_filter(filter)?;
        if scope.role.is_some() {
            return Err(ServiceError::invalid(
                "$filter",
                "policies are filtered by scope; roleDefinitionId filters policy assignments",
            ));
        }
        let mut value = Vec::new();
        for of in policies_of_scope(&scope)? {
            let view = self.settings_of(ctx, of).await?;
            value.push(Self::policy_view(of, &view, expand_rules));
        }
        Ok(Page {
            value,
            next_cursor: None,
        })
    }

    /// `GET policies/roleManagementPolicies/{id}`.
    pub async fn role_management_policy(
        &self,
        ctx: &Context,
        id: &str,
        expand_rules: bool,
    ) -> ServiceResult<Value> {
        let of = parse_policy_id(id).ok_or_else(|| no_policy(id))?;
        let view = self.settings_of(ctx, of).await?;
        Ok(Self::policy_view(of, &view, expand_rules))
    }

    /// `GET policies/roleManagementPolicies/{id}/rules[/{ruleId}]`.
    pub async fn role_management_policy_rules(
        &self,
        ctx: &Context,
        id: &str,
        rule: Option<&str>,
    ) -> ServiceResult<Value> {
        let of = parse_policy_id(id).ok_or_else(|| no_policy(id))?;
        let view = self.settings_of(ctx, of).await?;
        Ok(match rule {
            None => json!({ "value": graph::rules(&view.settings) }),
            Some(rule) => {
                graph::rule(&view.settings, rule).ok_or_else(|| ServiceError::NotFound {
                    kind: "unifiedRoleManagementPolicyRule",
                    id: rule.to_string(),
                })?
            }
        })
    }

    /// `PATCH policies/roleManagementPolicies/{id}/rules/{ruleId}`: changes the
    /// rule's part of the settings, saved as a replacement of the settings is
    /// (the same permission, checks and audit event).
    pub async fn update_role_management_policy_rule(
        &self,
        ctx: &Context,
        id: &str,
        rule: &str,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<Value> {
        let of = parse_policy_id(id).ok_or_else(|| no_policy(id))?;
        let view = self.settings_of(ctx, of).await?;
        // A client that read the policy (its `version`) changes that one.
        if let Some(sent) = if_match
            && sent != view.version
        {
            return Err(ServiceError::VersionMismatch {
                sent,
                current: view.version,
            });
        }
        if graph::rule(&view.settings, rule).is_none() {
            return Err(ServiceError::NotFound {
                kind: "unifiedRoleManagementPolicyRule",
                id: rule.to_string(),
            });
        }
        let next = graph::apply_rule(&view.settings, rule, &body)
            .map_err(|refused| ServiceError::invalid(refused.field, refused.message))?;
        let body = serde_json::to_value(&next)
            .map_err(|error| ServiceError::Internal(error.to_string()))?;
        // The version read is the one replaced: a change in between is refused.
        let saved = match of {
            PolicyOf::Role(role) => {
                self.replace_role_settings(ctx, role, body, Some(view.version))
                    .await?
            }
            PolicyOf::Group(group, access) => {
                self.replace_group_settings(ctx, group, access, body, Some(view.version))
                    .await?
            }
        };
        graph::rule(&saved.settings, rule)
            .ok_or_else(|| ServiceError::Internal("the rule vanished".to_string()))
    }

    /// `GET policies/roleManagementPolicyAssignments?$filter=...`: which policy
    /// applies to which role (or a group's member and owner access).
    pub async fn list_role_management_policy_assignments(
        &self,
        ctx: &Context,
        filter: Option<&str>,
    ) -> ServiceResult<Page<Value>> {
        let scope = parse_filter(filter)?;
        let mut value = Vec::new();
        for of in policies_of_scope(&scope)? {
            let (scope_id, scope_type, role) = match of {
                PolicyOf::Role(role) => ("/".to_string(), "DirectoryRole", role.to_string()),
                PolicyOf::Group(group, access) => {
                    (group.to_string(), "Group", access.as_str().to_string())
                }
            };
            // Compared as what they name (a GUID in any case), not as text.
            let wanted = |text: &String| match (Uuid::parse_str(text), Uuid::parse_str(&role)) {
                (Ok(a), Ok(b)) => a == b,
                _ => text.eq_ignore_ascii_case(&role),
            };
            if scope.role.as_ref().is_some_and(|text| !wanted(text)) {
                continue;
            }
            // Reading the settings checks the caller may see them.
            self.settings_of(ctx, of).await?;
            value.push(json!({
                "id": format!("{}_{role}", policy_id(of)),
                "policyId": policy_id(of),
                "scopeId": scope_id,
                "scopeType": scope_type,
                "roleDefinitionId": role,
            }));
        }
        Ok(Page {
            value,
            next_cursor: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_names_the_roles_or_a_groups_two_policies() {
        let scope = parse_filter(Some("scopeType eq 'DirectoryRole' and scopeId eq '/'")).unwrap();
        assert_eq!(
            policies_of_scope(&scope).unwrap().len(),
            tessera_directory::roles::BUILT_IN_ROLES.len()
        );
        let group = Uuid::from_u128(6);
        let group_scope = parse_filter(Some(&format!(
            "scopeId eq '{group}' and scopeType eq 'Group'"
        )))
        .unwrap();
        assert_eq!(policies_of_scope(&group_scope).unwrap().len(), 2);
        let odd = parse_filter(Some("scopeId eq 'x' and scopeType eq 'Group'")).unwrap();
        assert!(policies_of_scope(&odd).is_err());
        assert!(parse_filter(None).is_err());
    }
}

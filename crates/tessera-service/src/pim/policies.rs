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
use tessera_pim::{GroupAccess, graph};
use uuid::Uuid;

use super::{Pim, SettingsView};
use crate::Context;
use crate::codec::Page;
use crate::error::{ServiceError, ServiceResult};

/// What a policy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyOf {
    Role(Uuid),
    Group(Uuid, GroupAccess),
}

fn policy_id(of: PolicyOf) -> String {
    match of {
        PolicyOf::Role(role) => format!("DirectoryRole_{role}"),
        PolicyOf::Group(group, access) => format!("Group_{group}_{}", access.as_str()),
    }
}

fn parse_policy_id(id: &str) -> Option<PolicyOf> {
    if let Some(role) = id.strip_prefix("DirectoryRole_") {
        return Uuid::parse_str(role).ok().map(PolicyOf::Role);
    }
    let rest = id.strip_prefix("Group_")?;
    let (group, access) = rest.rsplit_once('_')?;
    Some(PolicyOf::Group(
        Uuid::parse_str(group).ok()?,
        GroupAccess::parse(access)?,
    ))
}

fn no_policy(id: &str) -> ServiceError {
    ServiceError::NotFound {
        kind: "roleManagementPolicy",
        id: id.to_string(),
    }
}

/// The scope a `$filter` asks for: `scopeId eq '...' and scopeType eq '...'`
/// (either order; `roleDefinitionId eq '...'` too, for assignments).
#[derive(Debug, Default)]
struct Scope {
    id: Option<String>,
    kind: Option<String>,
    role: Option<String>,
}

fn parse_filter(filter: Option<&str>) -> ServiceResult<Scope> {
    let bad = |message: &str| ServiceError::invalid("$filter", message.to_string());
    let Some(filter) = filter else {
        return Err(bad(
            "name the scope: scopeId eq '/' and scopeType eq 'DirectoryRole' (or a group's id and 'Group')",
        ));
    };
    if filter.len() > 300 {
        return Err(bad("too long"));
    }
    let mut scope = Scope::default();
    for clause in filter.split(" and ") {
        let clause = clause.trim();
        let (field, value) = clause
            .split_once(" eq ")
            .ok_or_else(|| bad("each clause is <field> eq '<value>', joined by and"))?;
        let value = value
            .trim()
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .filter(|v| !v.contains('\''))
            .ok_or_else(|| bad("a value is quoted: '<value>'"))?
            .to_string();
        let slot = match field.trim() {
            "scopeId" => &mut scope.id,
            "scopeType" => &mut scope.kind,
            "roleDefinitionId" => &mut scope.role,
            _ => {
                return Err(bad(
                    "the fields are scopeId, scopeType and roleDefinitionId",
                ));
            }
        };
        if slot.replace(value).is_some() {
            return Err(bad("a field is named twice"));
        }
    }
    Ok(scope)
}

/// The policies of a filtered scope.
fn policies_of_scope(scope: &Scope) -> ServiceResult<Vec<PolicyOf>> {
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
    async fn settings_of(&self, ctx: &Context, of: PolicyOf) -> ServiceResult<SettingsView> {
        match of {
            PolicyOf::Role(role) => self.role_settings(ctx, role).await,
            PolicyOf::Group(group, access) => self.group_settings(ctx, group, access).await,
        }
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
    ) -> ServiceResult<Value> {
        let of = parse_policy_id(id).ok_or_else(|| no_policy(id))?;
        let view = self.settings_of(ctx, of).await?;
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
            if scope.role.as_ref().is_some_and(|wanted| *wanted != role) {
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
    fn policy_ids_and_filters_are_read_strictly() {
        let role = Uuid::from_u128(5);
        let group = Uuid::from_u128(6);
        for of in [
            PolicyOf::Role(role),
            PolicyOf::Group(group, GroupAccess::Member),
            PolicyOf::Group(group, GroupAccess::Owner),
        ] {
            assert_eq!(parse_policy_id(&policy_id(of)), Some(of));
        }
        for bad in [
            "",
            "DirectoryRole_",
            "DirectoryRole_x",
            "Group_x_member",
            "Group_00000000-0000-0000-0000-000000000006_admin",
        ] {
            assert_eq!(parse_policy_id(bad), None, "{bad}");
        }
        let scope = parse_filter(Some("scopeType eq 'DirectoryRole' and scopeId eq '/'")).unwrap();
        assert_eq!(
            policies_of_scope(&scope).unwrap().len(),
            tessera_directory::roles::BUILT_IN_ROLES.len()
        );
        for bad in [
            None,
            Some("scopeId eq /"),
            Some("scopeId eq '/' and scopeId eq '/'"),
            Some("displayName eq 'x'"),
            Some("scopeId eq 'a'b'"),
        ] {
            assert!(parse_filter(bad).is_err(), "{bad:?}");
        }
        let group_scope = parse_filter(Some(&format!(
            "scopeId eq '{group}' and scopeType eq 'Group'"
        )))
        .unwrap();
        assert_eq!(policies_of_scope(&group_scope).unwrap().len(), 2);
        let odd = parse_filter(Some("scopeId eq 'x' and scopeType eq 'Group'")).unwrap();
        assert!(policies_of_scope(&odd).is_err());
    }
}

//! Protected actions: chosen management permissions that need an authentication
//! context (a step-up to its strength) on top of the role that grants them, so a
//! stolen session or token of an administrator cannot delete a Conditional Access
//! policy, change a named location or assign Global Administrator without the
//! stronger sign-in.
//!
//! A rule names one of the actions Tessera enforces (`ENFORCED`), optionally one
//! role (for role assignments: assigning that role only), and the context.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The actions a rule can protect: where the service asks.
pub const ENFORCED: &[&str] = &[
    CA_POLICY_CREATE,
    CA_POLICY_UPDATE,
    CA_POLICY_DELETE,
    NAMED_LOCATION_CREATE,
    NAMED_LOCATION_UPDATE,
    NAMED_LOCATION_DELETE,
    ROLE_ASSIGNMENT_CREATE,
    PROTECTED_ACTIONS_UPDATE,
];

pub const CA_POLICY_CREATE: &str = "microsoft.directory/conditionalAccessPolicies/create";
pub const CA_POLICY_UPDATE: &str = "microsoft.directory/conditionalAccessPolicies/basic/update";
pub const CA_POLICY_DELETE: &str = "microsoft.directory/conditionalAccessPolicies/delete";
pub const NAMED_LOCATION_CREATE: &str = "microsoft.directory/namedLocations/create";
pub const NAMED_LOCATION_UPDATE: &str = "microsoft.directory/namedLocations/basic/update";
pub const NAMED_LOCATION_DELETE: &str = "microsoft.directory/namedLocations/delete";
/// Assigning a role (standing, or through PIM: assign, update, extend, renew).
pub const ROLE_ASSIGNMENT_CREATE: &str = "microsoft.directory/roleAssignments/create";
/// Changing the protected actions themselves.
pub const PROTECTED_ACTIONS_UPDATE: &str = "microsoft.directory/protectedActions/update";

/// One protected action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub action: String,
    /// For role assignments: only assigning this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_definition_id: Option<Uuid>,
    /// The authentication context (`c1`...) a caller's sign-in must satisfy.
    pub authentication_context: String,
}

/// The tenant's protected actions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProtectedActions {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl ProtectedActions {
    /// Checks the rules; a bad one is named. Whether each context exists is the
    /// caller's to check against the tenant.
    pub fn check(&self) -> Result<(), String> {
        if self.rules.len() > 100 {
            return Err("at most 100 protected actions".into());
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if !ENFORCED.contains(&rule.action.as_str()) {
                return Err(format!(
                    "rules[{i}].action {:?} is not an action Tessera protects ({})",
                    rule.action,
                    ENFORCED.join(", ")
                ));
            }
            if rule.role_definition_id.is_some() && rule.action != ROLE_ASSIGNMENT_CREATE {
                return Err(format!(
                    "rules[{i}].roleDefinitionId applies to {ROLE_ASSIGNMENT_CREATE} only"
                ));
            }
            let context = &rule.authentication_context;
            if context.is_empty()
                || context.len() > 64
                || !context
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "rules[{i}].authenticationContext must be an authentication context id (c1...)"
                ));
            }
        }
        Ok(())
    }

    /// The contexts doing `action` (for `role`, when it is a role assignment)
    /// needs, in the order the rules name them.
    pub fn contexts_for(&self, action: &str, role: Option<Uuid>) -> Vec<&str> {
        let mut wanted = Vec::new();
        for rule in &self.rules {
            let applies = rule.action == action
                && rule
                    .role_definition_id
                    .is_none_or(|only| Some(only) == role);
            if applies && !wanted.contains(&rule.authentication_context.as_str()) {
                wanted.push(rule.authentication_context.as_str());
            }
        }
        wanted
    }

    /// The first context doing `action` needs that `satisfied` lacks.
    pub fn missing<'a>(
        &'a self,
        action: &str,
        role: Option<Uuid>,
        satisfied: &[String],
    ) -> Option<&'a str> {
        self.contexts_for(action, role)
            .into_iter()
            .find(|context| !satisfied.iter().any(|s| s == context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GA: Uuid = Uuid::from_u128(1);

    fn rules() -> ProtectedActions {
        ProtectedActions {
            rules: vec![
                Rule {
                    action: CA_POLICY_DELETE.into(),
                    role_definition_id: None,
                    authentication_context: "c1".into(),
                },
                Rule {
                    action: ROLE_ASSIGNMENT_CREATE.into(),
                    role_definition_id: Some(GA),
                    authentication_context: "c2".into(),
                },
            ],
        }
    }

    #[test]
    fn the_missing_context_is_named() {
        let rules = rules();
        assert_eq!(rules.missing(CA_POLICY_DELETE, None, &[]), Some("c1"));
        assert_eq!(rules.missing(CA_POLICY_DELETE, None, &["c1".into()]), None);
        assert_eq!(rules.missing(CA_POLICY_UPDATE, None, &[]), None);
        assert_eq!(
            rules.missing(ROLE_ASSIGNMENT_CREATE, Some(GA), &["c1".into()]),
            Some("c2")
        );
        assert_eq!(
            rules.missing(ROLE_ASSIGNMENT_CREATE, Some(Uuid::from_u128(2)), &[]),
            None
        );
        assert_eq!(
            ProtectedActions::default().missing(CA_POLICY_DELETE, None, &[]),
            None
        );
    }

    #[test]
    fn rules_are_checked() {
        assert!(rules().check().is_ok());
        let mut unknown = rules();
        unknown.rules[0].action = "microsoft.directory/users/delete".into();
        assert!(unknown.check().unwrap_err().contains("not an action"));
        let mut role_on_policy = rules();
        role_on_policy.rules[0].role_definition_id = Some(GA);
        assert!(role_on_policy.check().is_err());
        let mut bad_context = rules();
        bad_context.rules[1].authentication_context = "c 1\"".into();
        assert!(bad_context.check().is_err());
    }
}

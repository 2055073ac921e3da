//! A target's `Settings` in Graph's shape: a `unifiedRoleManagementPolicy` whose
//! `rules` are typed rules with Entra's well-known ids, and the change of one rule
//! (`PATCH .../rules/{id}`). Pure: the service stores `Settings`, this module only
//! shows them and reads a changed rule back into them.
//!
//! The rules shown, by id (Entra's):
//!
//! - `Expiration_EndUser_Assignment`: the longest activation (`maximumDuration`).
//! - `Enablement_EndUser_Assignment`: what activation needs (`enabledRules`:
//!   `MultiFactorAuthentication`, `Justification`, `Ticketing`).
//! - `AuthenticationContext_EndUser_Assignment`: the authentication context an
//!   activation steps up to (`isEnabled`, `claimValue`).
//! - `Approval_EndUser_Assignment`: approval, one stage (`isApprovalRequired`,
//!   `approvalStageTimeOutInDays`, `primaryApprovers`: single users and group
//!   members).
//! - `Expiration_Admin_Eligibility`, `Expiration_Admin_Assignment`: the longest
//!   eligibility and active assignment an administrator makes
//!   (`isExpirationRequired`, `maximumDuration`).
//! - `Enablement_Admin_Assignment`: an administrator's assignment needs a
//!   justification (`enabledRules`: `Justification`).
//!
//! Notification rules are not shown: who is told is the tenant's notification
//! setting, not a per-target rule.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Approver, Settings, duration};

pub const EXPIRATION_END_USER: &str = "Expiration_EndUser_Assignment";
pub const ENABLEMENT_END_USER: &str = "Enablement_EndUser_Assignment";
pub const CONTEXT_END_USER: &str = "AuthenticationContext_EndUser_Assignment";
pub const APPROVAL_END_USER: &str = "Approval_EndUser_Assignment";
pub const EXPIRATION_ADMIN_ELIGIBILITY: &str = "Expiration_Admin_Eligibility";
pub const EXPIRATION_ADMIN_ASSIGNMENT: &str = "Expiration_Admin_Assignment";
pub const ENABLEMENT_ADMIN_ASSIGNMENT: &str = "Enablement_Admin_Assignment";

/// The rule ids, in the order they are listed.
pub const RULE_IDS: [&str; 7] = [
    EXPIRATION_END_USER,
    ENABLEMENT_END_USER,
    CONTEXT_END_USER,
    APPROVAL_END_USER,
    EXPIRATION_ADMIN_ELIGIBILITY,
    EXPIRATION_ADMIN_ASSIGNMENT,
    ENABLEMENT_ADMIN_ASSIGNMENT,
];

const EXPIRATION_TYPE: &str = "#microsoft.graph.unifiedRoleManagementPolicyExpirationRule";
const ENABLEMENT_TYPE: &str = "#microsoft.graph.unifiedRoleManagementPolicyEnablementRule";
const CONTEXT_TYPE: &str = "#microsoft.graph.unifiedRoleManagementPolicyAuthenticationContextRule";
const APPROVAL_TYPE: &str = "#microsoft.graph.unifiedRoleManagementPolicyApprovalRule";

fn target(caller: &str, level: &str) -> Value {
    json!({
        "caller": caller,
        "operations": ["all"],
        "level": level,
        "inheritableSettings": [],
        "enforcedSettings": [],
    })
}

fn expiration(id: &str, caller: &str, level: &str, seconds: Option<i64>) -> Value {
    json!({
        "@odata.type": EXPIRATION_TYPE,
        "id": id,
        "isExpirationRequired": seconds.is_some(),
        "maximumDuration": seconds.map(duration::format),
        "target": target(caller, level),
    })
}

/// One rule of the settings, by id (none: no such rule).
pub fn rule(settings: &Settings, id: &str) -> Option<Value> {
    Some(match id {
        EXPIRATION_END_USER => expiration(
            id,
            "EndUser",
            "Assignment",
            Some(settings.max_activation_seconds),
        ),
        ENABLEMENT_END_USER => {
            let mut enabled = Vec::new();
            if settings.activation_requires_mfa {
                enabled.push("MultiFactorAuthentication");
            }
            if settings.activation_requires_justification {
                enabled.push("Justification");
            }
            if settings.activation_requires_ticket {
                enabled.push("Ticketing");
            }
            json!({
                "@odata.type": ENABLEMENT_TYPE,
                "id": id,
                "enabledRules": enabled,
                "target": target("EndUser", "Assignment"),
            })
        }
        CONTEXT_END_USER => json!({
            "@odata.type": CONTEXT_TYPE,
            "id": id,
            "isEnabled": settings.activation_authentication_context.is_some(),
            "claimValue": settings.activation_authentication_context,
            "target": target("EndUser", "Assignment"),
        }),
        APPROVAL_END_USER => {
            let approvers: Vec<Value> = settings
                .approvers
                .iter()
                .map(|approver| match approver {
                    Approver::User(id) => json!({
                        "@odata.type": "#microsoft.graph.singleUser",
                        "userId": id,
                        "isBackup": false,
                    }),
                    Approver::Group(id) => json!({
                        "@odata.type": "#microsoft.graph.groupMembers",
                        "groupId": id,
                        "isBackup": false,
                    }),
                })
                .collect();
            json!({
                "@odata.type": APPROVAL_TYPE,
                "id": id,
                "setting": {
                    "isApprovalRequired": settings.activation_requires_approval,
                    "isApprovalRequiredForExtension": false,
                    "isRequestorJustificationRequired": settings.activation_requires_justification,
                    "approvalMode": "SingleStage",
                    "approvalStages": [{
                        "approvalStageTimeOutInDays": timeout_days(settings.approval_timeout_seconds),
                        "isApproverJustificationRequired": false,
                        "escalationTimeInMinutes": 0,
                        "isEscalationEnabled": false,
                        "primaryApprovers": approvers,
                        "escalationApprovers": [],
                    }],
                },
                "target": target("EndUser", "Assignment"),
            })
        }
        EXPIRATION_ADMIN_ELIGIBILITY => {
            expiration(id, "Admin", "Eligibility", settings.max_eligibility_seconds)
        }
        EXPIRATION_ADMIN_ASSIGNMENT => {
            expiration(id, "Admin", "Assignment", settings.max_assignment_seconds)
        }
        ENABLEMENT_ADMIN_ASSIGNMENT => json!({
            "@odata.type": ENABLEMENT_TYPE,
            "id": id,
            "enabledRules": if settings.assignment_requires_justification {
                vec!["Justification"]
            } else {
                Vec::new()
            },
            "target": target("Admin", "Assignment"),
        }),
        _ => return None,
    })
}

/// Every rule, in `RULE_IDS` order.
pub fn rules(settings: &Settings) -> Vec<Value> {
    RULE_IDS
        .iter()
        .filter_map(|id| rule(settings, id))
        .collect()
}

/// Whole days for Graph's `approvalStageTimeOutInDays` (a wait of hours shows
/// as one day; it is kept as stored until the rule is changed).
fn timeout_days(seconds: i64) -> i64 {
    (seconds + 86_399) / 86_400
}

/// What a policy is for: a role (at every scope), or a group's membership or
/// ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOf {
    Role(Uuid),
    Group(Uuid, crate::GroupAccess),
}

/// A policy's id: `DirectoryRole_<role id>`, `Group_<group id>_member|owner`.
pub fn policy_id(of: PolicyOf) -> String {
    match of {
        PolicyOf::Role(role) => format!("DirectoryRole_{role}"),
        PolicyOf::Group(group, access) => format!("Group_{group}_{}", access.as_str()),
    }
}

/// The target a policy id names (none: no such policy).
pub fn parse_policy_id(id: &str) -> Option<PolicyOf> {
    // One id per policy: the canonical (hyphenated, lower-case) form only.
    let canonical = |text: &str| {
        Uuid::parse_str(text)
            .ok()
            .filter(|uuid| uuid.hyphenated().to_string() == text)
    };
    if let Some(role) = id.strip_prefix("DirectoryRole_") {
        return canonical(role).map(PolicyOf::Role);
    }
    let rest = id.strip_prefix("Group_")?;
    let (group, access) = rest.rsplit_once('_')?;
    Some(PolicyOf::Group(
        canonical(group)?,
        crate::GroupAccess::parse(access)?,
    ))
}

/// What a policy listing's `$filter` asks for: `scopeId eq '...' and scopeType
/// eq '...'` (either order), with `roleDefinitionId eq '...'` for assignments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyFilter {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub role: Option<String>,
}

/// Reads a `$filter`: only `eq` clauses on those three fields, joined by `and`,
/// each value quoted and without quotes inside.
pub fn parse_filter(filter: &str) -> Result<PolicyFilter, &'static str> {
    if filter.len() > 300 {
        return Err("too long");
    }
    let mut scope = PolicyFilter::default();
    for clause in filter.split(" and ") {
        let (field, value) = clause
            .trim()
            .split_once(" eq ")
            .ok_or("each clause is <field> eq '<value>', joined by and")?;
        let value = value
            .trim()
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .filter(|v| !v.contains('\''))
            .ok_or("a value is quoted: '<value>'")?
            .to_string();
        let slot = match field.trim() {
            "scopeId" => &mut scope.id,
            "scopeType" => &mut scope.kind,
            "roleDefinitionId" => &mut scope.role,
            _ => return Err("the fields are scopeId, scopeType and roleDefinitionId"),
        };
        if slot.replace(value).is_some() {
            return Err("a field is named twice");
        }
    }
    Ok(scope)
}

/// Why a changed rule is refused: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub field: String,
    pub message: String,
}

fn refuse(field: &str, message: impl Into<String>) -> RuleError {
    RuleError {
        field: field.to_string(),
        message: message.into(),
    }
}

fn boolean(body: &Value, field: &str) -> Result<Option<bool>, RuleError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(refuse(field, "must be true or false")),
    }
}

/// A rule's `maximumDuration` with `isExpirationRequired`: seconds, or none
/// (no expiration required).
fn expiration_of(body: &Value, current: Option<i64>) -> Result<Option<i64>, RuleError> {
    // A maximum given asks for it, unless the body says otherwise.
    let given = body
        .get("maximumDuration")
        .is_some_and(|value| !value.is_null());
    let required = boolean(body, "isExpirationRequired")?.unwrap_or(given || current.is_some());
    let maximum = match body.get("maximumDuration") {
        None | Some(Value::Null) => current,
        Some(Value::String(text)) => {
            Some(duration::parse(text).map_err(|problem| refuse("maximumDuration", problem))?)
        }
        Some(_) => {
            return Err(refuse(
                "maximumDuration",
                "must be an ISO 8601 duration (PT8H, P90D)",
            ));
        }
    };
    match (required, maximum) {
        (false, _) => Ok(None),
        (true, Some(seconds)) => Ok(Some(seconds)),
        (true, None) => Err(refuse(
            "maximumDuration",
            "is required when isExpirationRequired is true",
        )),
    }
}

fn enabled_rules(body: &Value, allowed: &[&str]) -> Result<Vec<String>, RuleError> {
    let Some(list) = body.get("enabledRules") else {
        return Err(refuse("enabledRules", "is required"));
    };
    let Some(list) = list.as_array() else {
        return Err(refuse("enabledRules", "must be a list"));
    };
    let mut out = Vec::new();
    for item in list {
        match item.as_str() {
            Some(name) if allowed.contains(&name) => out.push(name.to_string()),
            _ => {
                return Err(refuse(
                    "enabledRules",
                    format!("each is one of {}", allowed.join(", ")),
                ));
            }
        }
    }
    Ok(out)
}

fn approvers_of(stage: &Value) -> Result<Vec<Approver>, RuleError> {
    let field = "setting.approvalStages.primaryApprovers";
    let Some(list) = stage.get("primaryApprovers") else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        return Err(refuse(field, "must be a list"));
    };
    let id_of = |item: &Value, name: &str| -> Result<Uuid, RuleError> {
        item.get(name)
            .and_then(Value::as_str)
            .and_then(|text| Uuid::parse_str(text).ok())
            .ok_or_else(|| refuse(field, format!("{name} must be an object id")))
    };
    if list
        .iter()
        .any(|item| item.get("isBackup").and_then(Value::as_bool) == Some(true))
    {
        return Err(refuse(field, "backup approvers are not supported"));
    }
    list.iter()
        .map(|item| match item.get("@odata.type").and_then(Value::as_str) {
            Some("#microsoft.graph.singleUser") => Ok(Approver::User(id_of(item, "userId")?)),
            Some("#microsoft.graph.groupMembers") => {
                Ok(Approver::Group(id_of(item, "groupId")?))
            }
            _ => Err(refuse(
                field,
                "each approver is a #microsoft.graph.singleUser or #microsoft.graph.groupMembers",
            )),
        })
        .collect()
}

/// The settings after a changed rule (`PATCH .../rules/{id}`): the rule's own
/// fields change; what the body leaves out stays. The result is checked by
/// `Settings::check` as any settings are.
pub fn apply_rule(settings: &Settings, id: &str, body: &Value) -> Result<Settings, RuleError> {
    if !body.is_object() {
        return Err(refuse("body", "must be a JSON object"));
    }
    if let Some(sent) = body.get("id").and_then(Value::as_str)
        && sent != id
    {
        return Err(refuse("id", "is the rule's id, as in the path"));
    }
    let mut next = settings.clone();
    match id {
        EXPIRATION_END_USER => {
            next.max_activation_seconds =
                expiration_of(body, Some(settings.max_activation_seconds))?
                    .ok_or_else(|| refuse("isExpirationRequired", "an activation always ends"))?;
        }
        ENABLEMENT_END_USER => {
            let enabled = enabled_rules(
                body,
                &["MultiFactorAuthentication", "Justification", "Ticketing"],
            )?;
            next.activation_requires_mfa = enabled.iter().any(|r| r == "MultiFactorAuthentication");
            next.activation_requires_justification = enabled.iter().any(|r| r == "Justification");
            next.activation_requires_ticket = enabled.iter().any(|r| r == "Ticketing");
        }
        CONTEXT_END_USER => {
            let given = body.get("claimValue").is_some_and(|value| !value.is_null());
            let enabled = boolean(body, "isEnabled")?
                .unwrap_or(given || settings.activation_authentication_context.is_some());
            next.activation_authentication_context = if enabled {
                match body.get("claimValue") {
                    Some(Value::String(claim)) => Some(claim.clone()),
                    None | Some(Value::Null) => settings
                        .activation_authentication_context
                        .clone()
                        .ok_or_else(|| refuse("claimValue", "is required when isEnabled is true"))
                        .map(Some)?,
                    Some(_) => return Err(refuse("claimValue", "must be a context id (c1...)")),
                }
            } else {
                None
            };
        }
        APPROVAL_END_USER => {
            let Some(setting) = body.get("setting") else {
                return Err(refuse("setting", "is required"));
            };
            if let Some(required) = boolean(setting, "isApprovalRequired")? {
                next.activation_requires_approval = required;
            }
            match setting.get("approvalMode").and_then(Value::as_str) {
                None | Some("SingleStage") | Some("NoApproval") => {}
                Some(_) => {
                    return Err(refuse(
                        "setting.approvalMode",
                        "SingleStage (multi-stage approval is not supported)",
                    ));
                }
            }
            if let Some(stages) = setting.get("approvalStages") {
                let stages = stages
                    .as_array()
                    .ok_or_else(|| refuse("setting.approvalStages", "must be a list"))?;
                match stages.as_slice() {
                    [] => next.approvers = Vec::new(),
                    [stage] => {
                        if let Some(days) = stage.get("approvalStageTimeOutInDays") {
                            let days =
                                days.as_i64()
                                    .filter(|d| (1..=7).contains(d))
                                    .ok_or_else(|| {
                                        refuse(
                                            "setting.approvalStages.approvalStageTimeOutInDays",
                                            "must be a whole number of days from 1 to 7",
                                        )
                                    })?;
                            // The days shown for a wait of hours leave it as it is.
                            if days != timeout_days(settings.approval_timeout_seconds) {
                                next.approval_timeout_seconds = days * 86_400;
                            }
                        }
                        if boolean(stage, "isEscalationEnabled")? == Some(true)
                            || stage
                                .get("escalationApprovers")
                                .and_then(Value::as_array)
                                .is_some_and(|list| !list.is_empty())
                        {
                            return Err(refuse(
                                "setting.approvalStages.escalationApprovers",
                                "escalation is not supported",
                            ));
                        }
                        // Approvers left out stay (none named would widen who
                        // may approve to every administrator).
                        if stage.get("primaryApprovers").is_some() {
                            next.approvers = approvers_of(stage)?;
                        }
                    }
                    _ => {
                        return Err(refuse(
                            "setting.approvalStages",
                            "one approval stage only (multi-stage approval is not supported)",
                        ));
                    }
                }
            }
        }
        EXPIRATION_ADMIN_ELIGIBILITY => {
            next.max_eligibility_seconds = expiration_of(body, settings.max_eligibility_seconds)?;
        }
        EXPIRATION_ADMIN_ASSIGNMENT => {
            next.max_assignment_seconds = expiration_of(body, settings.max_assignment_seconds)?;
        }
        ENABLEMENT_ADMIN_ASSIGNMENT => {
            let enabled = enabled_rules(body, &["Justification", "MultiFactorAuthentication"])?;
            if enabled.iter().any(|r| r == "MultiFactorAuthentication") {
                return Err(refuse(
                    "enabledRules",
                    "MultiFactorAuthentication on an administrator's assignment is not supported (protect role assignment with an authentication context instead)",
                ));
            }
            next.assignment_requires_justification = enabled.iter().any(|r| r == "Justification");
        }
        _ => return Err(refuse("id", format!("no rule {id}"))),
    }
    next.check().map_err(|problem| refuse(id, problem))?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_ids_and_filters_are_read_strictly() {
        let (role, group) = (Uuid::from_u128(5), Uuid::from_u128(6));
        for of in [
            PolicyOf::Role(role),
            PolicyOf::Group(group, crate::GroupAccess::Member),
            PolicyOf::Group(group, crate::GroupAccess::Owner),
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
        assert_eq!(
            parse_filter("scopeType eq 'DirectoryRole' and scopeId eq '/'"),
            Ok(PolicyFilter {
                id: Some("/".to_string()),
                kind: Some("DirectoryRole".to_string()),
                role: None,
            })
        );
        for bad in [
            "scopeId eq /",
            "scopeId eq '/' and scopeId eq '/'",
            "displayName eq 'x'",
            "scopeId eq 'a'b'",
            "",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_rule_reads_back_into_the_same_settings() {
        let settings = Settings {
            activation_requires_ticket: true,
            activation_requires_approval: true,
            approvers: vec![
                Approver::User(Uuid::from_u128(7)),
                Approver::Group(Uuid::from_u128(8)),
            ],
            approval_timeout_seconds: 2 * 86_400,
            activation_authentication_context: Some("c2".to_string()),
            max_eligibility_seconds: Some(365 * 86_400),
            ..Settings::default()
        };
        settings.check().unwrap();
        // Each rule shown, applied to the defaults one by one, rebuilds the
        // settings; applied to the settings themselves, changes nothing.
        let mut rebuilt = Settings::default();
        for id in RULE_IDS {
            let shown = rule(&settings, id).unwrap();
            assert_eq!(apply_rule(&settings, id, &shown).unwrap(), settings, "{id}");
            rebuilt = apply_rule(&rebuilt, id, &shown).unwrap_or_else(|e| panic!("{id}: {e:?}"));
        }
        assert_eq!(rebuilt, settings);
        assert_eq!(rules(&settings).len(), RULE_IDS.len());
    }

    #[test]
    fn what_a_rule_leaves_out_or_rounds_stays() {
        let settings = Settings {
            activation_requires_approval: true,
            approvers: vec![Approver::User(Uuid::from_u128(7))],
            approval_timeout_seconds: 3600,
            ..Settings::default()
        };
        // Shown as one day, sent back unchanged: still an hour.
        let shown = rule(&settings, APPROVAL_END_USER).unwrap();
        assert_eq!(
            apply_rule(&settings, APPROVAL_END_USER, &shown).unwrap(),
            settings
        );
        // A stage without approvers keeps them.
        let kept = apply_rule(
            &settings,
            APPROVAL_END_USER,
            &json!({"setting": {"approvalStages": [{"approvalStageTimeOutInDays": 3}]}}),
        )
        .unwrap();
        assert_eq!(kept.approvers, settings.approvers);
        assert_eq!(kept.approval_timeout_seconds, 3 * 86_400);
        // A maximum or a claim given asks for it.
        let capped = apply_rule(
            &Settings::default(),
            EXPIRATION_ADMIN_ELIGIBILITY,
            &json!({"maximumDuration": "P90D"}),
        )
        .unwrap();
        assert_eq!(capped.max_eligibility_seconds, Some(90 * 86_400));
        let context = apply_rule(
            &Settings::default(),
            CONTEXT_END_USER,
            &json!({"claimValue": "c1"}),
        )
        .unwrap();
        assert_eq!(
            context.activation_authentication_context.as_deref(),
            Some("c1")
        );
        // What is not supported is refused, not dropped.
        for body in [
            json!({"setting": {"approvalMode": "Serial"}}),
            json!({"setting": {"approvalStages": [{"isEscalationEnabled": true}]}}),
            json!({"setting": {"approvalStages": [{"primaryApprovers": [
                {"@odata.type": "#microsoft.graph.singleUser", "userId": Uuid::from_u128(9), "isBackup": true}]}]}}),
        ] {
            assert!(
                apply_rule(&settings, APPROVAL_END_USER, &body).is_err(),
                "{body}"
            );
        }
        assert_eq!(
            parse_policy_id("DirectoryRole_{00000000-0000-0000-0000-000000000005}"),
            None
        );
    }

    #[test]
    fn a_changed_rule_changes_its_settings_only_and_bad_ones_are_named() {
        let settings = Settings::default();
        let changed = apply_rule(
            &settings,
            EXPIRATION_END_USER,
            &json!({"isExpirationRequired": true, "maximumDuration": "PT2H"}),
        )
        .unwrap();
        assert_eq!(changed.max_activation_seconds, 7200);
        assert_eq!(
            Settings {
                max_activation_seconds: settings.max_activation_seconds,
                ..changed
            },
            settings
        );
        let enabled = apply_rule(
            &settings,
            ENABLEMENT_END_USER,
            &json!({"enabledRules": ["Ticketing"]}),
        )
        .unwrap();
        assert!(!enabled.activation_requires_mfa && enabled.activation_requires_ticket);
        for (id, body, field) in [
            (
                EXPIRATION_END_USER,
                json!({"maximumDuration": "PT2S"}),
                EXPIRATION_END_USER,
            ),
            (
                EXPIRATION_END_USER,
                json!({"maximumDuration": 5}),
                "maximumDuration",
            ),
            (
                EXPIRATION_END_USER,
                json!({"isExpirationRequired": false}),
                "isExpirationRequired",
            ),
            (
                ENABLEMENT_END_USER,
                json!({"enabledRules": ["Everything"]}),
                "enabledRules",
            ),
            (
                APPROVAL_END_USER,
                json!({"setting": {"approvalStages": [{}, {}]}}),
                "setting.approvalStages",
            ),
            (
                APPROVAL_END_USER,
                json!({"setting": {"approvalStages": [{"approvalStageTimeOutInDays": 30}]}}),
                "setting.approvalStages.approvalStageTimeOutInDays",
            ),
            (
                APPROVAL_END_USER,
                json!({"setting": {"approvalStages": [{"primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": "x"}]}]}}),
                "setting.approvalStages.primaryApprovers",
            ),
            (CONTEXT_END_USER, json!({"isEnabled": true}), "claimValue"),
            (
                CONTEXT_END_USER,
                json!({"isEnabled": true, "claimValue": "c 1"}),
                CONTEXT_END_USER,
            ),
            ("Notification_Admin_Admin_Eligibility", json!({}), "id"),
            (
                EXPIRATION_END_USER,
                json!({"id": ENABLEMENT_END_USER}),
                "id",
            ),
            (EXPIRATION_END_USER, json!([]), "body"),
        ] {
            let refused = apply_rule(&settings, id, &body).unwrap_err();
            assert_eq!(refused.field, field, "{id} {body}");
        }
    }
}

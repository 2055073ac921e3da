//! Outbound provisioning: Tessera as the SCIM client of an application, keeping
//! the users and groups assigned to it in step on the application's side.
//!
//! The rules here are pure: what a directory user offers a mapping
//! ([`DirectoryUser`]), what a SCIM target accepts ([`ScimTargets`], its paths
//! checked by the caller), the default mapping, the settings checked whole,
//! what to do with one object ([`decide`]) and when a failing target is left
//! alone ([`Health`]: quarantine with backoff).

use serde::{Deserialize, Serialize};
use tessera_directory::model::UserSpec;
use uuid::Uuid;

use crate::expression::{Attributes, Val};
use crate::mapping::{AttributeMapping, Mapping, SourceSchema};
use crate::targets::{Target, TargetSchema, TargetType};

/// The directory's user attributes an outbound mapping reads.
pub const USER_SOURCE: &[&str] = &[
    "objectId",
    "userPrincipalName",
    "mailNickname",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "accountEnabled",
    "userType",
    "employeeId",
    "department",
    "jobTitle",
    "companyName",
    "employeeType",
    "employeeOrgData.division",
    "employeeOrgData.costCenter",
    "employeeHireDate",
    "employeeLeaveDateTime",
    "usageLocation",
];

/// The directory's users as an outbound mapping's source.
pub struct DirectoryUsers;

impl SourceSchema for DirectoryUsers {
    fn check(&self, attribute: &str) -> Result<(), String> {
        if USER_SOURCE
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
        {
            Ok(())
        } else {
            Err(format!(
                "{attribute} is not a user attribute outbound provisioning reads ({})",
                USER_SOURCE.join(", ")
            ))
        }
    }
}

/// One directory user as a mapping's source.
pub struct DirectoryUser<'a> {
    pub id: Uuid,
    pub spec: &'a UserSpec,
}

impl Attributes for DirectoryUser<'_> {
    fn value(&self, name: &str) -> Val {
        let text = |v: Option<&String>| v.map_or(Val::Null, |s| Val::Text(s.clone()));
        let spec = self.spec;
        let org = spec.employee_org_data.as_ref();
        let name = USER_SOURCE
            .iter()
            .find(|a| a.eq_ignore_ascii_case(name))
            .copied()
            .unwrap_or_default();
        match name {
            "objectId" => Val::Text(self.id.to_string()),
            "userPrincipalName" => Val::Text(spec.user_principal_name.clone()),
            "mailNickname" => Val::Text(
                spec.user_principal_name
                    .split('@')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            "displayName" => Val::Text(spec.display_name.clone()),
            "givenName" => text(spec.given_name.as_ref()),
            "surname" => text(spec.surname.as_ref()),
            "mail" => text(spec.mail.as_ref()),
            "accountEnabled" => Val::Bool(spec.account_enabled),
            "userType" => Val::Text(
                match spec.user_type {
                    tessera_directory::model::UserType::Member => "Member",
                    tessera_directory::model::UserType::Guest => "Guest",
                }
                .to_string(),
            ),
            "employeeId" => text(spec.employee_id.as_ref()),
            "department" => text(spec.department.as_ref()),
            "jobTitle" => text(spec.job_title.as_ref()),
            "companyName" => text(spec.company_name.as_ref()),
            "employeeType" => text(spec.employee_type.as_ref()),
            "employeeOrgData.division" => text(org.and_then(|o| o.division.as_ref())),
            "employeeOrgData.costCenter" => text(org.and_then(|o| o.cost_center.as_ref())),
            "employeeHireDate" => spec
                .employee_hire_date
                .map_or(Val::Null, |t| Val::Text(t.to_rfc3339())),
            "employeeLeaveDateTime" => spec
                .employee_leave_date_time
                .map_or(Val::Null, |t| Val::Text(t.to_rfc3339())),
            "usageLocation" => text(spec.usage_location.as_ref()),
            _ => Val::Null,
        }
    }
}

/// What a SCIM path is, as the caller's schema says: (the canonical path, its
/// type).
pub type ScimPath = (String, TargetType);

/// A SCIM resource type's paths as a mapping's targets; `check` is the
/// protocol's own (the paths a client may write, typed).
pub struct ScimTargets<'a> {
    pub check: &'a dyn Fn(&str) -> Result<ScimPath, String>,
}

/// The target attribute every user mapping writes and outbound provisioning
/// matches on.
pub const MATCHING_ATTRIBUTE: &str = "userName";

impl TargetSchema for ScimTargets<'_> {
    fn target(&self, name: &str) -> Result<Target, String> {
        let (path, kind) = (self.check)(name)?;
        let matching = path.eq_ignore_ascii_case(MATCHING_ATTRIBUTE);
        Ok(Target {
            name: path,
            kind,
            required: matching,
            clearable: true,
            unique: matching,
        })
    }

    fn required(&self) -> Vec<&'static str> {
        vec![MATCHING_ATTRIBUTE]
    }
}

/// The enterprise extension's URN, as default mappings write it.
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The default mapping from the directory's users to an application's SCIM
/// users (what Entra's SCIM gallery template maps).
pub fn default_user_mapping() -> Mapping {
    let rules: &[(&str, &str)] = &[
        ("userName", "[userPrincipalName]"),
        ("active", "[accountEnabled]"),
        ("displayName", "[displayName]"),
        ("name.givenName", "[givenName]"),
        ("name.familyName", "[surname]"),
        ("emails[type eq \"work\"].value", "[mail]"),
        ("title", "[jobTitle]"),
        ("externalId", "[mailNickname]"),
        ("userType", "[employeeType]"),
        ("enterprise:employeeNumber", "[employeeId]"),
        ("enterprise:department", "[department]"),
        ("enterprise:organization", "[companyName]"),
        ("enterprise:division", "[employeeOrgData.division]"),
        ("enterprise:costCenter", "[employeeOrgData.costCenter]"),
    ];
    Mapping {
        attributes: rules
            .iter()
            .map(|(target, expression)| AttributeMapping {
                target: target.replace("enterprise:", &format!("{ENTERPRISE}:")),
                expression: (*expression).to_string(),
                default_value: None,
                apply: Default::default(),
            })
            .collect(),
    }
}

/// Who an application's provisioning covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// The users and groups assigned to the application (through groups too).
    #[default]
    AssignedUsersAndGroups,
    /// Every member and guest of the tenant.
    AllUsers,
}

/// What happens on the application's side to a user who leaves the scope
/// (a user deleted from the directory is always deleted there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Deprovision {
    /// `active` set to false: the account stays, signed off.
    #[default]
    Disable,
    /// The account is deleted.
    Delete,
}

/// Where one object stands this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// In scope; the hash of the resource it should have.
    InScope,
    /// Assigned no longer, or filtered out by the scoping rule.
    OutOfScope,
    /// Deleted from the directory.
    Deleted,
}

/// What the application's side holds of an object, as Tessera last left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known<'a> {
    /// The hash of the resource last sent.
    pub hash: &'a str,
    /// Whether it was last left active (a disabled one is not disabled again).
    pub active: bool,
}

/// What to do with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Create,
    Update,
    Disable,
    Delete,
    /// Nothing to do: the application holds what it should.
    None,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Disable => "disable",
            Action::Delete => "delete",
            Action::None => "none",
        }
    }
}

/// What to do with one object: what the application holds (`known`), where the
/// object stands, and the hash of the resource it should have.
pub fn decide(
    known: Option<&Known<'_>>,
    standing: Standing,
    desired_hash: &str,
    deprovision: Deprovision,
) -> Action {
    match (standing, known) {
        (Standing::InScope, None) => Action::Create,
        (Standing::InScope, Some(k)) if k.hash == desired_hash && k.active => Action::None,
        (Standing::InScope, Some(_)) => Action::Update,
        (_, None) => Action::None,
        (Standing::Deleted, Some(_)) => Action::Delete,
        (Standing::OutOfScope, Some(_)) if deprovision == Deprovision::Delete => Action::Delete,
        (Standing::OutOfScope, Some(k)) if k.active => Action::Disable,
        (Standing::OutOfScope, Some(_)) => Action::None,
    }
}

/// Objects a cycle must fail (and most of those it sent) to count as failed: one
/// object the application refuses is that object's problem.
pub const MIN_FAILED_OBJECTS: u32 = 3;
/// Failed cycles in a row before a target is quarantined.
pub const QUARANTINE_AFTER: u32 = 3;
/// The first wait of a quarantine, doubled with every failed cycle after.
pub const FIRST_BACKOFF_SECONDS: i64 = 10 * 60;
/// The longest wait between cycles of a quarantined target.
pub const MAX_BACKOFF_SECONDS: i64 = 24 * 3600;

/// How a target has been answering.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Cycles in a row that failed.
    pub failed_cycles: u32,
    /// While quarantined, the next cycle's earliest time (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined_until: Option<i64>,
    /// Why the last failed cycle failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// How one cycle went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleOutcome {
    /// Objects it sent something for.
    pub attempted: u32,
    /// Of those, the ones the target refused.
    pub failed: u32,
    /// Why the target could not be used at all (unreachable, unauthorized,
    /// failing with server errors), which ends a cycle early.
    pub target_error: Option<String>,
}

impl Health {
    /// Whether a cycle may run now (a quarantined target waits its turn).
    pub fn may_run(&self, now: i64) -> bool {
        self.quarantined_until.is_none_or(|until| now >= until)
    }

    pub fn quarantined(&self) -> bool {
        self.quarantined_until.is_some()
    }

    /// The health after a cycle: a cycle fails when the target could not be
    /// used, or refused most of what it was sent (at least
    /// [`MIN_FAILED_OBJECTS`]); after [`QUARANTINE_AFTER`]
    /// failures in a row the target is quarantined, the wait doubling from
    /// [`FIRST_BACKOFF_SECONDS`] up to [`MAX_BACKOFF_SECONDS`]. A good cycle ends it.
    pub fn after(&self, outcome: &CycleOutcome, now: i64) -> Health {
        let failed = outcome.target_error.is_some()
            || (outcome.failed >= MIN_FAILED_OBJECTS && outcome.failed * 2 > outcome.attempted);
        if !failed {
            return Health::default();
        }
        let failed_cycles = self.failed_cycles.saturating_add(1);
        let quarantined_until = (failed_cycles >= QUARANTINE_AFTER).then(|| {
            let doublings = (failed_cycles - QUARANTINE_AFTER).min(20);
            let wait = FIRST_BACKOFF_SECONDS
                .saturating_mul(1_i64 << doublings)
                .min(MAX_BACKOFF_SECONDS);
            now.saturating_add(wait)
        });
        Health {
            failed_cycles,
            quarantined_until,
            last_error: Some(outcome.target_error.clone().unwrap_or_else(|| {
                format!(
                    "the application refused {} of {} objects",
                    outcome.failed, outcome.attempted
                )
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Mapping;

    fn known(hash: &str, active: bool) -> Known<'_> {
        Known { hash, active }
    }

    #[test]
    fn what_to_do_with_an_object() {
        use Action::{Create, Delete, Disable, Update};
        use Standing::*;
        let d = Deprovision::Disable;
        assert_eq!(decide(None, InScope, "h", d), Create);
        assert_eq!(
            decide(Some(&known("h", true)), InScope, "h", d),
            Action::None
        );
        assert_eq!(decide(Some(&known("g", true)), InScope, "h", d), Update);
        assert_eq!(
            decide(Some(&known("h", false)), InScope, "h", d),
            Update,
            "a user back in scope is enabled again"
        );
        assert_eq!(decide(Some(&known("h", true)), OutOfScope, "h", d), Disable);
        assert_eq!(
            decide(Some(&known("h", false)), OutOfScope, "h", d),
            Action::None
        );
        assert_eq!(
            decide(
                Some(&known("h", false)),
                OutOfScope,
                "h",
                Deprovision::Delete
            ),
            Delete
        );
        assert_eq!(decide(Some(&known("h", false)), Deleted, "h", d), Delete);
        assert_eq!(decide(None, OutOfScope, "h", d), Action::None);
        assert_eq!(decide(None, Deleted, "h", d), Action::None);
    }

    #[test]
    fn a_failing_target_is_quarantined_with_backoff() {
        let now = 1_000_000;
        let down = CycleOutcome {
            attempted: 0,
            failed: 0,
            target_error: Some("connection refused".into()),
        };
        let mut health = Health::default();
        for _ in 1..QUARANTINE_AFTER {
            health = health.after(&down, now);
            assert!(health.may_run(now), "{health:?}");
        }
        health = health.after(&down, now);
        assert_eq!(health.quarantined_until, Some(now + FIRST_BACKOFF_SECONDS));
        assert!(!health.may_run(now + FIRST_BACKOFF_SECONDS - 1));
        assert!(health.may_run(now + FIRST_BACKOFF_SECONDS));
        health = health.after(&down, now);
        assert_eq!(
            health.quarantined_until,
            Some(now + 2 * FIRST_BACKOFF_SECONDS)
        );
        for _ in 0..100 {
            health = health.after(&down, now);
        }
        assert_eq!(health.quarantined_until, Some(now + MAX_BACKOFF_SECONDS));
        // Most objects refused is a failure; a few is not.
        let refused = CycleOutcome {
            attempted: 10,
            failed: 6,
            target_error: None,
        };
        assert_eq!(Health::default().after(&refused, now).failed_cycles, 1);
        let fine = CycleOutcome {
            attempted: 10,
            failed: 5,
            target_error: None,
        };
        assert_eq!(health.after(&fine, now), Health::default());
        let one_refused = CycleOutcome {
            attempted: 1,
            failed: 1,
            target_error: None,
        };
        assert_eq!(
            Health::default().after(&one_refused, now),
            Health::default()
        );
    }

    #[test]
    fn the_default_mapping_compiles_against_a_permissive_target() {
        let check = |path: &str| -> Result<ScimPath, String> {
            let kind = if path == "active" {
                TargetType::Boolean
            } else {
                TargetType::Text
            };
            Ok((path.to_string(), kind))
        };
        let compiled = default_user_mapping()
            .compile(&DirectoryUsers, &ScimTargets { check: &check })
            .unwrap();
        assert_eq!(compiled.attributes.len(), 14);
        let without_user_name = Mapping {
            attributes: vec![AttributeMapping {
                target: "displayName".into(),
                expression: "[shoeSize]".into(),
                default_value: None,
                apply: Default::default(),
            }],
        };
        let error = without_user_name
            .compile(&DirectoryUsers, &ScimTargets { check: &check })
            .unwrap_err();
        assert_eq!(error.problems.len(), 2, "{error}");
    }

    #[test]
    fn a_user_offers_its_attributes() {
        let spec: UserSpec = serde_json::from_value(serde_json::json!({
            "userPrincipalName": "ada@x.org", "displayName": "Ada",
            "accountEnabled": true, "employeeOrgData": {"division": "R&D"}
        }))
        .unwrap();
        let id = Uuid::from_u128(7);
        let user = DirectoryUser { id, spec: &spec };
        assert_eq!(user.value("mailNickname"), Val::Text("ada".into()));
        assert_eq!(user.value("ACCOUNTENABLED"), Val::Bool(true));
        assert_eq!(
            user.value("employeeOrgData.division"),
            Val::Text("R&D".into())
        );
        assert_eq!(user.value("objectId"), Val::Text(id.to_string()));
        assert_eq!(user.value("surname"), Val::Null);
        assert_eq!(user.value("password"), Val::Null);
    }
}

//! The Conditional Access policy form: every condition and control the engine
//! evaluates, as form fields named by their JSON path in the Graph policy.
//!
//! Reading: `PolicyForm` answers, for the template, what a field holds in a policy's
//! JSON. Writing: `apply` sets exactly the fields the form owns onto the policy's
//! stored JSON (what the form does not show, such as custom authentication factors
//! or external tenants, is kept), drops the sections left empty, and hands the
//! whole policy back; the caller saves it through the same path as the JSON editor,
//! where the engine's validation has the last word.

use serde_json::{Map, Value};

use super::ConsoleForm;

/// How a field is written in the form and kept in the JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    /// One string (a text box or a select); blank removes it.
    Text,
    /// A list of strings, one per line (or separated by commas).
    Lines,
    /// A list of strings from checkboxes.
    Checks,
    /// Checkboxes kept as one comma-separated string (Graph's guest types and
    /// transfer methods).
    Commas,
    /// A checkbox kept as `true`; unticked removes it.
    Flag,
    /// A whole number.
    Number,
}

const USERS: &str = "conditions.users";
const FREQUENCY: &str = "sessionControls.signInFrequency";

/// Every field the form owns, by its path in the policy's JSON.
const FIELDS: &[(&str, Field)] = &[
    ("displayName", Field::Text),
    ("description", Field::Text),
    ("state", Field::Text),
    ("conditions.users.includeUsers", Field::Lines),
    ("conditions.users.excludeUsers", Field::Lines),
    ("conditions.users.includeGroups", Field::Lines),
    ("conditions.users.excludeGroups", Field::Lines),
    ("conditions.users.includeRoles", Field::Lines),
    ("conditions.users.excludeRoles", Field::Lines),
    (
        "conditions.users.includeGuestsOrExternalUsers.guestOrExternalUserTypes",
        Field::Commas,
    ),
    (
        "conditions.users.excludeGuestsOrExternalUsers.guestOrExternalUserTypes",
        Field::Commas,
    ),
    ("conditions.applications.includeApplications", Field::Lines),
    ("conditions.applications.excludeApplications", Field::Lines),
    ("conditions.applications.includeUserActions", Field::Checks),
    (
        "conditions.applications.includeAuthenticationContextClassReferences",
        Field::Lines,
    ),
    (
        "conditions.clientApplications.includeServicePrincipals",
        Field::Lines,
    ),
    (
        "conditions.clientApplications.excludeServicePrincipals",
        Field::Lines,
    ),
    ("conditions.clientAppTypes", Field::Checks),
    ("conditions.platforms.includePlatforms", Field::Checks),
    ("conditions.platforms.excludePlatforms", Field::Checks),
    ("conditions.locations.includeLocations", Field::Checks),
    ("conditions.locations.excludeLocations", Field::Checks),
    ("conditions.devices.deviceFilter.mode", Field::Text),
    ("conditions.devices.deviceFilter.rule", Field::Text),
    ("conditions.signInRiskLevels", Field::Checks),
    ("conditions.userRiskLevels", Field::Checks),
    ("conditions.servicePrincipalRiskLevels", Field::Checks),
    (
        "conditions.authenticationFlows.transferMethods",
        Field::Commas,
    ),
    ("grantControls.operator", Field::Text),
    ("grantControls.builtInControls", Field::Checks),
    ("grantControls.termsOfUse", Field::Checks),
    ("grantControls.authenticationStrength.id", Field::Text),
    (
        "sessionControls.applicationEnforcedRestrictions.isEnabled",
        Field::Flag,
    ),
    ("sessionControls.cloudAppSecurity.isEnabled", Field::Flag),
    (
        "sessionControls.cloudAppSecurity.cloudAppSecurityType",
        Field::Text,
    ),
    ("sessionControls.signInFrequency.isEnabled", Field::Flag),
    ("sessionControls.signInFrequency.type", Field::Text),
    ("sessionControls.signInFrequency.value", Field::Number),
    (
        "sessionControls.signInFrequency.frequencyInterval",
        Field::Text,
    ),
    (
        "sessionControls.signInFrequency.authenticationType",
        Field::Text,
    ),
    ("sessionControls.persistentBrowser.isEnabled", Field::Flag),
    ("sessionControls.persistentBrowser.mode", Field::Text),
    (
        "sessionControls.continuousAccessEvaluation.mode",
        Field::Text,
    ),
    ("sessionControls.disableResilienceDefaults", Field::Flag),
];

/// Objects that mean nothing without one of their values: when the form leaves that
/// value out, the whole object goes (`object`, `the value that keeps it`).
const HELD_BY: &[(&str, &str)] = &[
    (
        "conditions.users.includeGuestsOrExternalUsers",
        "guestOrExternalUserTypes",
    ),
    (
        "conditions.users.excludeGuestsOrExternalUsers",
        "guestOrExternalUserTypes",
    ),
    ("conditions.devices.deviceFilter", "rule"),
    ("conditions.authenticationFlows", "transferMethods"),
    ("grantControls.authenticationStrength", "id"),
    (
        "sessionControls.applicationEnforcedRestrictions",
        "isEnabled",
    ),
    ("sessionControls.cloudAppSecurity", "isEnabled"),
    (FREQUENCY, "isEnabled"),
    ("sessionControls.persistentBrowser", "isEnabled"),
    ("sessionControls.continuousAccessEvaluation", "mode"),
];

/// The choices of the fixed checkbox groups, by path: (value, label).
fn fixed_choices(path: &str) -> &'static [(&'static str, &'static str)] {
    const RISK: &[(&str, &str)] = &[
        ("high", "High"),
        ("medium", "Medium"),
        ("low", "Low"),
        ("none", "No risk"),
    ];
    const PLATFORMS: &[(&str, &str)] = &[
        ("all", "Any platform"),
        ("android", "Android"),
        ("iOS", "iOS"),
        ("windows", "Windows"),
        ("windowsPhone", "Windows Phone"),
        ("macOS", "macOS"),
        ("linux", "Linux"),
    ];
    const GUESTS: &[(&str, &str)] = &[
        ("internalGuest", "Local guest users"),
        ("b2bCollaborationGuest", "B2B collaboration guests"),
        ("b2bCollaborationMember", "B2B collaboration members"),
        ("b2bDirectConnectUser", "B2B direct connect users"),
        ("otherExternalUser", "Other external users"),
        ("serviceProvider", "Service provider users"),
    ];
    match path {
        "conditions.users.includeGuestsOrExternalUsers.guestOrExternalUserTypes"
        | "conditions.users.excludeGuestsOrExternalUsers.guestOrExternalUserTypes" => GUESTS,
        "conditions.applications.includeUserActions" => &[
            (
                "urn:user:registersecurityinfo",
                "Register security information",
            ),
            ("urn:user:registerdevice", "Register or join devices"),
        ],
        "conditions.clientAppTypes" => &[
            ("all", "Any client"),
            ("browser", "Browser"),
            (
                "mobileAppsAndDesktopClients",
                "Mobile apps and desktop clients",
            ),
            ("exchangeActiveSync", "Exchange ActiveSync clients"),
            ("other", "Other clients (legacy authentication)"),
        ],
        "conditions.platforms.includePlatforms" | "conditions.platforms.excludePlatforms" => {
            PLATFORMS
        }
        "conditions.signInRiskLevels"
        | "conditions.userRiskLevels"
        | "conditions.servicePrincipalRiskLevels" => RISK,
        "conditions.authenticationFlows.transferMethods" => &[
            ("deviceCodeFlow", "Device code flow"),
            ("authenticationTransfer", "Authentication transfer"),
        ],
        "grantControls.builtInControls" => &[
            ("block", "Block access"),
            ("mfa", "Require multifactor authentication"),
            ("compliantDevice", "Require a compliant device"),
            ("domainJoinedDevice", "Require a hybrid joined device"),
            ("passwordChange", "Require a password change"),
        ],
        _ => &[],
    }
}

/// A choice in a checkbox group or a select.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub checked: bool,
}

/// A policy's JSON as the form reads it, with the tenant's named locations, terms of
/// use and authentication strengths to choose from.
pub struct PolicyForm {
    spec: Value,
    /// (id, name) of each named location.
    pub locations: Vec<(String, String)>,
    pub terms: Vec<(String, String)>,
    pub strengths: Vec<(String, String)>,
}

fn at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn strings_at(value: &Value, path: &str) -> Vec<String> {
    match at(value, path) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

impl PolicyForm {
    pub fn new(spec: Value) -> PolicyForm {
        PolicyForm {
            spec,
            locations: Vec::new(),
            terms: Vec::new(),
            strengths: Vec::new(),
        }
    }

    /// The string or number at `path` ("" when there is none).
    pub fn text(&self, path: &str) -> String {
        match at(&self.spec, path) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => String::new(),
        }
    }

    /// Whether the text at `path` is `value` (for a select's options).
    pub fn is(&self, path: &str, value: &str) -> bool {
        self.text(path) == value
    }

    /// The list at `path`, one item per line.
    pub fn lines(&self, path: &str) -> String {
        strings_at(&self.spec, path).join("\n")
    }

    /// Whether the flag at `path` is on.
    pub fn on(&self, path: &str) -> bool {
        at(&self.spec, path).and_then(Value::as_bool) == Some(true)
    }

    /// The checkboxes of `path`: the known choices, then whatever else the policy
    /// holds there (an id this tenant does not know is shown, not dropped).
    pub fn checks(&self, path: &str) -> Vec<Choice> {
        let held = strings_at(&self.spec, path);
        let known: Vec<(String, String)> = match path {
            "conditions.locations.includeLocations" | "conditions.locations.excludeLocations" => [
                ("All".to_string(), "Any location".to_string()),
                (
                    "AllTrusted".to_string(),
                    "All trusted locations".to_string(),
                ),
            ]
            .into_iter()
            .chain(self.locations.iter().cloned())
            .collect(),
            "grantControls.termsOfUse" => self.terms.clone(),
            _ => fixed_choices(path)
                .iter()
                .map(|(v, l)| (v.to_string(), l.to_string()))
                .collect(),
        };
        let mut choices: Vec<Choice> = known
            .iter()
            .map(|(value, label)| Choice {
                checked: held.iter().any(|h| h.eq_ignore_ascii_case(value)),
                value: value.clone(),
                label: label.clone(),
            })
            .collect();
        for value in held {
            if !known.iter().any(|(k, _)| k.eq_ignore_ascii_case(&value)) {
                choices.push(Choice {
                    label: format!("{value} (unknown here)"),
                    value,
                    checked: true,
                });
            }
        }
        choices
    }

    /// The authentication strengths to choose from, the policy's own selected.
    pub fn strength_choices(&self) -> Vec<Choice> {
        let held = self.text("grantControls.authenticationStrength.id");
        let mut choices = vec![Choice {
            value: String::new(),
            label: "None".to_string(),
            checked: held.is_empty(),
        }];
        choices.extend(self.strengths.iter().map(|(id, name)| Choice {
            checked: *id == held,
            value: id.clone(),
            label: name.clone(),
        }));
        if !held.is_empty() && !self.strengths.iter().any(|(id, _)| *id == held) {
            choices.push(Choice {
                label: format!("{held} (unknown here)"),
                value: held,
                checked: true,
            });
        }
        choices
    }
}

fn set_at(value: &mut Value, path: &str, new: Option<Value>) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().unwrap_or_default();
    let mut node = value;
    for key in keys {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Some(map) = node.as_object_mut() else {
            return;
        };
        let next = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if new.is_none() && !next.is_object() {
            return;
        }
        node = next;
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    if let Some(map) = node.as_object_mut() {
        match new {
            Some(v) => {
                map.insert(last.to_string(), v);
            }
            None => {
                map.remove(last);
            }
        }
    }
}

/// Removes empty lists and objects (and nulls) below `value`, keeping the required
/// `conditions.applications` object so that validation says what is missing.
fn prune(value: &mut Value, path: &str) {
    if let Value::Object(map) = value {
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if let Some(child) = map.get_mut(&key) {
                prune(child, &child_path);
                let empty = match child {
                    Value::Null => true,
                    Value::Array(items) => items.is_empty(),
                    Value::Object(inner) => inner.is_empty(),
                    _ => false,
                };
                if empty && child_path != "conditions.applications" {
                    map.remove(&key);
                }
            }
        }
    }
}

fn list_of(form: &ConsoleForm, name: &str, lines: bool) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for value in form.all(name) {
        let parts: Vec<&str> = if lines {
            value.split(['\n', ',']).collect()
        } else {
            vec![value]
        };
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let part = Value::String(part.to_string());
            if !out.contains(&part) {
                out.push(part);
            }
        }
    }
    out
}

/// The policy `base` with the form's fields set onto it: the whole policy to save.
/// Answers what to tell the administrator when a field cannot be read.
pub fn apply(form: &ConsoleForm, base: &Value) -> Result<Value, String> {
    let (policy, problem) = apply_fields(form, base);
    match problem {
        Some(message) => Err(message),
        None => Ok(policy),
    }
}

/// What the form holds, as far as its fields can be read: shown again beside a
/// refusal so that nothing typed is lost.
pub fn apply_leniently(form: &ConsoleForm, base: &Value) -> Value {
    apply_fields(form, base).0
}

fn apply_fields(form: &ConsoleForm, base: &Value) -> (Value, Option<String>) {
    let mut problem = None;
    let mut policy = match base {
        Value::Object(_) => base.clone(),
        _ => Value::Object(Map::new()),
    };
    for (path, field) in FIELDS {
        let new = match field {
            Field::Text => form.get(path).map(|v| Value::String(v.to_string())),
            Field::Lines | Field::Checks => {
                let items = list_of(form, path, *field == Field::Lines);
                (!items.is_empty()).then_some(Value::Array(items))
            }
            Field::Commas => {
                let items: Vec<String> = list_of(form, path, false)
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                (!items.is_empty()).then(|| Value::String(items.join(",")))
            }
            Field::Flag => form.checked(path).then_some(Value::Bool(true)),
            Field::Number => match form.get(path) {
                None => None,
                Some(text) => match text.parse::<u32>() {
                    Ok(number) => Some(Value::from(number)),
                    Err(_) => {
                        problem.get_or_insert_with(|| {
                            format!("{} must be a whole number.", label_of(path))
                        });
                        None
                    }
                },
            },
        };
        set_at(&mut policy, path, new);
    }
    for (object, keeper) in HELD_BY {
        if at(&policy, &format!("{object}.{keeper}")).is_none() {
            set_at(&mut policy, object, None);
        }
    }
    // Excluding locations or platforms means "any but these", as Entra's own form
    // reads it: the include side, left empty, is every one.
    for (include, exclude, every) in [
        (
            "conditions.locations.includeLocations",
            "conditions.locations.excludeLocations",
            "All",
        ),
        (
            "conditions.platforms.includePlatforms",
            "conditions.platforms.excludePlatforms",
            "all",
        ),
    ] {
        if !strings_at(&policy, exclude).is_empty() && strings_at(&policy, include).is_empty() {
            set_at(
                &mut policy,
                include,
                Some(Value::Array(vec![Value::from(every)])),
            );
        }
    }
    // A sign-in frequency asked for "every time" has no value or unit.
    if form.get(&format!("{FREQUENCY}.frequencyInterval")) == Some("everyTime") {
        set_at(&mut policy, &format!("{FREQUENCY}.value"), None);
        set_at(&mut policy, &format!("{FREQUENCY}.type"), None);
    }
    // Controls that are only an operator say nothing.
    if let Some(Value::Object(grant)) = at(&policy, "grantControls")
        && grant
            .keys()
            .all(|key| key == "operator" || grant[key].as_array().is_some_and(Vec::is_empty))
    {
        set_at(&mut policy, "grantControls", None);
    }
    prune(&mut policy, "");
    if at(&policy, USERS).is_none() && at(&policy, "conditions.clientApplications").is_none() {
        problem.get_or_insert_with(|| {
            "Say whom the policy is for: users, groups, roles or guests, or workload identities."
                .to_string()
        });
    }
    (policy, problem)
}

fn label_of(path: &str) -> &'static str {
    match path {
        "sessionControls.signInFrequency.value" => "The sign-in frequency",
        _ => "This field",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(fields: &[(&str, &str)]) -> ConsoleForm {
        ConsoleForm {
            csrf: None,
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_new_policy_is_built_from_its_fields() {
        let posted = form(&[
            ("displayName", "Require MFA for admins"),
            ("state", "enabledForReportingButNotEnforced"),
            (
                "conditions.users.includeRoles",
                "62e90394-69f5-4237-9190-012177145e10\n",
            ),
            ("conditions.users.excludeUsers", "a, b\nb"),
            ("conditions.applications.includeApplications", "All"),
            ("conditions.clientAppTypes", "browser"),
            ("conditions.clientAppTypes", "mobileAppsAndDesktopClients"),
            (
                "conditions.users.includeGuestsOrExternalUsers.guestOrExternalUserTypes",
                "internalGuest",
            ),
            (
                "conditions.users.includeGuestsOrExternalUsers.guestOrExternalUserTypes",
                "b2bCollaborationGuest",
            ),
            ("grantControls.operator", "OR"),
            ("grantControls.builtInControls", "mfa"),
            ("sessionControls.signInFrequency.isEnabled", "on"),
            ("sessionControls.signInFrequency.value", "4"),
            ("sessionControls.signInFrequency.type", "hours"),
            (
                "sessionControls.signInFrequency.frequencyInterval",
                "timeBased",
            ),
            ("sessionControls.persistentBrowser.mode", "never"),
            ("conditions.devices.deviceFilter.mode", "exclude"),
        ]);
        let policy = apply(&posted, &Value::Null).unwrap();
        assert_eq!(
            policy,
            json!({
                "displayName": "Require MFA for admins",
                "state": "enabledForReportingButNotEnforced",
                "conditions": {
                    "users": {
                        "includeRoles": ["62e90394-69f5-4237-9190-012177145e10"],
                        "excludeUsers": ["a", "b"],
                        "includeGuestsOrExternalUsers": {
                            "guestOrExternalUserTypes": "internalGuest,b2bCollaborationGuest"
                        }
                    },
                    "applications": {"includeApplications": ["All"]},
                    "clientAppTypes": ["browser", "mobileAppsAndDesktopClients"]
                },
                "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
                "sessionControls": {
                    "signInFrequency": {
                        "isEnabled": true, "value": 4, "type": "hours",
                        "frequencyInterval": "timeBased"
                    }
                }
            })
        );
        // What the form shows is what it was given.
        let shown = PolicyForm::new(policy);
        assert_eq!(shown.lines("conditions.users.excludeUsers"), "a\nb");
        assert!(shown.on("sessionControls.signInFrequency.isEnabled"));
        assert!(shown.is("grantControls.operator", "OR"));
        let guests =
            shown.checks("conditions.users.includeGuestsOrExternalUsers.guestOrExternalUserTypes");
        assert_eq!(guests.iter().filter(|c| c.checked).count(), 2);
    }

    #[test]
    fn what_the_form_does_not_show_is_kept_and_what_it_clears_goes() {
        let stored = json!({
            "displayName": "Old",
            "state": "enabled",
            "conditions": {
                "users": {
                    "includeUsers": ["All"],
                    "excludeGuestsOrExternalUsers": {
                        "guestOrExternalUserTypes": "serviceProvider",
                        "externalTenants": {"@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"}
                    }
                },
                "applications": {"includeApplications": ["All"]},
                "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}
            },
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": ["x"]},
            "sessionControls": {"persistentBrowser": {"isEnabled": true, "mode": "never"}}
        });
        let posted = form(&[
            ("displayName", "New"),
            ("state", "enabled"),
            ("conditions.users.includeUsers", "All"),
            (
                "conditions.users.excludeGuestsOrExternalUsers.guestOrExternalUserTypes",
                "serviceProvider",
            ),
            ("conditions.applications.includeApplications", "All"),
            ("grantControls.operator", "AND"),
            ("grantControls.builtInControls", "block"),
        ]);
        let policy = apply(&posted, &stored).unwrap();
        assert_eq!(policy["displayName"], "New");
        assert_eq!(
            policy["conditions"]["users"]["excludeGuestsOrExternalUsers"]["externalTenants"]["membershipKind"],
            "all"
        );
        assert!(policy["conditions"].get("locations").is_none());
        assert_eq!(
            policy["grantControls"]["customAuthenticationFactors"],
            json!(["x"])
        );
        assert_eq!(policy["grantControls"]["builtInControls"], json!(["block"]));
        assert!(policy.get("sessionControls").is_none());
    }

    #[test]
    fn bad_fields_are_refused_with_a_reason() {
        let posted = form(&[
            ("displayName", "x"),
            ("conditions.users.includeUsers", "All"),
            ("sessionControls.signInFrequency.isEnabled", "on"),
            ("sessionControls.signInFrequency.value", "-1"),
        ]);
        assert!(
            apply(&posted, &Value::Null)
                .unwrap_err()
                .contains("whole number")
        );
        let nobody = form(&[
            ("displayName", "x"),
            ("grantControls.builtInControls", "block"),
        ]);
        assert!(apply(&nobody, &Value::Null).unwrap_err().contains("whom"));
    }

    #[test]
    fn every_time_needs_no_value_and_ids_unknown_here_are_shown() {
        let posted = form(&[
            ("displayName", "x"),
            ("conditions.users.includeUsers", "All"),
            ("sessionControls.signInFrequency.isEnabled", "on"),
            ("sessionControls.signInFrequency.value", "4"),
            ("sessionControls.signInFrequency.type", "hours"),
            (
                "sessionControls.signInFrequency.frequencyInterval",
                "everyTime",
            ),
            (
                "conditions.locations.includeLocations",
                "3f1c0b1e-0000-4000-8000-000000000000",
            ),
            ("conditions.platforms.excludePlatforms", "linux"),
        ]);
        let policy = apply(&posted, &Value::Null).unwrap();
        assert_eq!(
            policy["sessionControls"]["signInFrequency"],
            json!({"isEnabled": true, "frequencyInterval": "everyTime"})
        );
        assert_eq!(
            policy["conditions"]["platforms"],
            json!({"includePlatforms": ["all"], "excludePlatforms": ["linux"]})
        );
        let shown = PolicyForm::new(policy);
        let locations = shown.checks("conditions.locations.includeLocations");
        assert!(
            locations
                .iter()
                .any(|c| c.checked && c.label.contains("unknown here"))
        );
    }
}

//! What a mapping may write: the directory's user attributes with their types.

/// The type of a target attribute: how a value is converted for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    Text,
    Boolean,
    /// A date and time, written as RFC 3339 (a day alone is midnight UTC).
    DateTime,
    /// An object's id (a user's, for `managerId`).
    Reference,
    Integer,
    TextList,
    IntegerList,
}

impl TargetType {
    pub fn describe(self) -> &'static str {
        match self {
            TargetType::Text => "text",
            TargetType::Boolean => "true or false",
            TargetType::DateTime => "a date",
            TargetType::Reference => "an object id",
            TargetType::Integer => "a whole number",
            TargetType::TextList => "a list of texts",
            TargetType::IntegerList => "a list of whole numbers",
        }
    }
}

/// A target attribute as a mapping sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The canonical name (`employeeOrgData.division`).
    pub name: String,
    pub kind: TargetType,
    /// Every mapping must give it a value.
    pub required: bool,
    /// An empty value clears it; otherwise an empty value leaves it as it is.
    pub clearable: bool,
    /// The target is unique, so `SelectUniqueValue` may choose among candidates.
    pub unique: bool,
}

/// What a mapping may write.
pub trait TargetSchema {
    /// The target a name (as the mapping writes it) means, or why none.
    fn target(&self, name: &str) -> Result<Target, String>;
    /// The targets every mapping must write.
    fn required(&self) -> Vec<&'static str>;
}

/// The directory's user attributes (Graph names) a mapping writes.
const USER_TARGETS: &[(&str, TargetType, bool, bool)] = &[
    // (name, type, required, clearable)
    ("userPrincipalName", TargetType::Text, true, false),
    ("displayName", TargetType::Text, true, false),
    ("givenName", TargetType::Text, false, true),
    ("surname", TargetType::Text, false, true),
    ("mail", TargetType::Text, false, true),
    ("accountEnabled", TargetType::Boolean, false, false),
    ("jobTitle", TargetType::Text, false, true),
    ("employeeType", TargetType::Text, false, true),
    ("employeeId", TargetType::Text, false, true),
    ("department", TargetType::Text, false, true),
    ("companyName", TargetType::Text, false, true),
    ("employeeOrgData.division", TargetType::Text, false, true),
    ("employeeOrgData.costCenter", TargetType::Text, false, true),
    ("managerId", TargetType::Reference, false, true),
    ("employeeHireDate", TargetType::DateTime, false, true),
    ("employeeLeaveDateTime", TargetType::DateTime, false, true),
    ("usageLocation", TargetType::Text, false, true),
];

/// The user attributes by name, for documentation and the console.
pub fn user_target_names() -> Vec<&'static str> {
    USER_TARGETS.iter().map(|t| t.0).collect()
}

/// The prefix naming a custom security attribute: `customSecurityAttributes.{set}.{name}`.
pub const CUSTOM_PREFIX: &str = "customSecurityAttributes.";

/// A custom security attribute as its definition spells it: (set, name, type).
pub type CustomTarget = (String, String, TargetType);

/// The directory's users as a mapping's target; custom security attributes are
/// typed by the tenant's definitions, found without regard to case (`None`: no
/// such attribute, or one that cannot be assigned).
pub struct DirectoryUsers<'a> {
    pub custom: &'a dyn Fn(&str, &str) -> Option<CustomTarget>,
}

impl TargetSchema for DirectoryUsers<'_> {
    fn target(&self, name: &str) -> Result<Target, String> {
        if let Some(rest) = name.strip_prefix(CUSTOM_PREFIX) {
            let Some((set, attribute)) = rest.split_once('.') else {
                return Err(format!(
                    "{name} names no attribute: write customSecurityAttributes.<set>.<attribute>"
                ));
            };
            return match (self.custom)(set, attribute) {
                Some((set, attribute, kind)) => Ok(Target {
                    name: format!("{CUSTOM_PREFIX}{set}.{attribute}"),
                    kind,
                    required: false,
                    clearable: true,
                    unique: false,
                }),
                None => Err(format!(
                    "{set}.{attribute} is not an active custom security attribute of the tenant"
                )),
            };
        }
        USER_TARGETS
            .iter()
            .find(|t| t.0.eq_ignore_ascii_case(name))
            .map(|&(name, kind, required, clearable)| Target {
                name: name.to_string(),
                kind,
                required,
                clearable,
                unique: name == "userPrincipalName",
            })
            .ok_or_else(|| {
                format!(
                    "{name} is not a user attribute a mapping writes ({}, or customSecurityAttributes.<set>.<attribute>)",
                    user_target_names().join(", ")
                )
            })
    }

    fn required(&self) -> Vec<&'static str> {
        USER_TARGETS.iter().filter(|t| t.2).map(|t| t.0).collect()
    }
}

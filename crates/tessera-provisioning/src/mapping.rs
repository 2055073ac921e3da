//! Attribute mappings: each target attribute computed from the source's by an
//! expression, with a default value for when it gives nothing, applied always or
//! only when the object is made.
//!
//! A mapping is checked whole when it is saved ([`Mapping::compile`]): every
//! expression parses, reads only attributes the source has, and writes a target
//! that exists, once, with a default value of the target's type; the required
//! targets are all there. Applying it ([`Compiled::apply`]) converts each value to
//! its target's type or fails with the target named.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::expression::{self, Attributes, Env, Expression, Stop, Val};
use crate::targets::{CUSTOM_PREFIX, Target, TargetSchema, TargetType};

/// The most attribute mappings in one mapping.
pub const MAX_ATTRIBUTES: usize = 100;
/// The longest default value.
pub const MAX_DEFAULT_LEN: usize = 256;

/// When an attribute mapping applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Apply {
    /// Whenever the object is written.
    #[default]
    Always,
    /// Only when the object is made (a later change of the source leaves it).
    OnCreate,
}

/// One target attribute and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeMapping {
    /// The attribute written (`department`, `customSecurityAttributes.HR.level`).
    pub target: String,
    /// Where its value comes from: `[title]`, `"constant"`, or an expression.
    pub expression: String,
    /// The value when the expression gives nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    #[serde(default, skip_serializing_if = "is_always")]
    pub apply: Apply,
}

fn is_always(apply: &Apply) -> bool {
    *apply == Apply::Always
}

/// A mapping: the attribute mappings, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mapping {
    pub attributes: Vec<AttributeMapping>,
}

/// What the source of a mapping has.
pub trait SourceSchema {
    /// Whether the source has an attribute named so, or why not.
    fn check(&self, attribute: &str) -> Result<(), String>;
}

/// Why a mapping cannot be saved or applied: each problem with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.iter().map(|(at, what)| format!("{at}: {what}")).collect::<Vec<_>>().join("; "))]
pub struct MappingError {
    /// (where: `attributes[2].expression`, what is wrong).
    pub problems: Vec<(String, String)>,
}

impl MappingError {
    fn one(at: impl Into<String>, what: impl Into<String>) -> MappingError {
        MappingError {
            problems: vec![(at.into(), what.into())],
        }
    }
}

/// One attribute mapping, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledAttribute {
    pub target: Target,
    pub expression: Expression,
    pub default_value: Option<String>,
    pub apply: Apply,
}

impl CompiledAttribute {
    /// What this attribute mapping gives for one object.
    pub fn output(
        &self,
        source: &dyn Attributes,
        env: &Env,
        creating: bool,
    ) -> Result<Output, MappingError> {
        if self.apply == Apply::OnCreate && !creating {
            return Ok(Output::Leave);
        }
        let fail = |what: String| MappingError::one(self.target.name.clone(), what);
        let value = match self.expression.evaluate(source, env) {
            Ok(value) => value,
            Err(Stop::Ignore) => return Ok(Output::Leave),
            Err(Stop::Failed(why)) => return Err(fail(why)),
        };
        if self.expression.unique_candidates().is_some() {
            let mut candidates = value.texts();
            if candidates.is_empty()
                && let Some(default) = &self.default_value
            {
                candidates.push(default.clone());
            }
            if candidates.is_empty() {
                return Err(fail("SelectUniqueValue has no candidate".into()));
            }
            return Ok(Output::Unique(candidates));
        }
        let value = match (&self.default_value, value.is_empty()) {
            (Some(default), true) => Val::Text(default.clone()),
            _ => value,
        };
        Ok(if value.is_empty() {
            if self.target.required {
                return Err(fail("the mapping gives it no value".into()));
            }
            if self.target.clearable {
                Output::Set(Value::Null)
            } else {
                Output::Leave
            }
        } else {
            Output::Set(convert(&self.target, &value).map_err(fail)?)
        })
    }
}

/// A checked mapping, ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub attributes: Vec<CompiledAttribute>,
}

/// What an attribute mapping gives for one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The target's new value (JSON of the target's type; `null` clears it).
    Set(Value),
    /// Left as it is (`IgnoreFlowIfNullOrEmpty`, an `onCreate` mapping on a
    /// change, or an empty value for a target that cannot be cleared).
    Leave,
    /// `SelectUniqueValue`: the first of these the target does not hold yet.
    Unique(Vec<String>),
}

impl Mapping {
    /// Checks the whole mapping against its source and target.
    pub fn compile(
        &self,
        source: &dyn SourceSchema,
        targets: &dyn TargetSchema,
    ) -> Result<Compiled, MappingError> {
        let mut problems = Vec::new();
        let mut attributes: Vec<CompiledAttribute> = Vec::new();
        // Targets named, whether or not their expression is right.
        let mut named: Vec<String> = Vec::new();
        if self.attributes.len() > MAX_ATTRIBUTES {
            return Err(MappingError::one(
                "attributes",
                format!("at most {MAX_ATTRIBUTES} attribute mappings"),
            ));
        }
        for (i, rule) in self.attributes.iter().enumerate() {
            let at = |field: &str| format!("attributes[{i}].{field}");
            let target = match targets.target(rule.target.trim()) {
                Ok(target) => target,
                Err(why) => {
                    problems.push((at("target"), why));
                    continue;
                }
            };
            if named.iter().any(|n| n.eq_ignore_ascii_case(&target.name)) {
                problems.push((at("target"), format!("{} is mapped twice", target.name)));
                continue;
            }
            named.push(target.name.clone());
            let expression = match expression::parse(&rule.expression) {
                Ok(e) => e,
                Err(error) => {
                    problems.push((at("expression"), error.message));
                    continue;
                }
            };
            for name in expression.attributes() {
                if let Err(why) = source.check(name) {
                    problems.push((at("expression"), why));
                }
            }
            if expression.unique_candidates().is_some() && !target.unique {
                problems.push((
                    at("expression"),
                    format!(
                        "SelectUniqueValue chooses a value no other object holds; {} is not unique",
                        target.name
                    ),
                ));
            }
            if let Some(default) = &rule.default_value {
                if default.chars().count() > MAX_DEFAULT_LEN
                    || default.chars().any(char::is_control)
                {
                    problems.push((
                        at("defaultValue"),
                        format!("at most {MAX_DEFAULT_LEN} characters, without control characters"),
                    ));
                } else if let Err(why) = convert(&target, &Val::Text(default.clone())) {
                    problems.push((at("defaultValue"), why));
                }
            }
            attributes.push(CompiledAttribute {
                target,
                expression,
                default_value: rule.default_value.clone(),
                apply: rule.apply,
            });
        }
        for required in targets.required() {
            if !named.iter().any(|n| n == required) {
                problems.push((
                    "attributes".to_string(),
                    format!("{required} must be mapped"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(Compiled { attributes })
        } else {
            Err(MappingError { problems })
        }
    }
}

impl Compiled {
    /// What each target gets for one object (`creating`: the object is being made).
    pub fn apply(
        &self,
        source: &dyn Attributes,
        env: &Env,
        creating: bool,
    ) -> Result<Vec<(&Target, Output)>, MappingError> {
        self.attributes
            .iter()
            .map(|a| Ok((&a.target, a.output(source, env, creating)?)))
            .collect()
    }

    /// The attribute mapping of a target, if any.
    pub fn of(&self, target: &str) -> Option<&CompiledAttribute> {
        self.attributes.iter().find(|a| a.target.name == target)
    }
}

/// A value as its target's type (JSON).
pub fn convert(target: &Target, value: &Val) -> Result<Value, String> {
    let one = || value.text().unwrap_or_default();
    let integer = |text: &str| {
        text.trim()
            .parse::<i64>()
            .map_err(|_| format!("{text:?} is not a whole number"))
    };
    Ok(match target.kind {
        TargetType::Text => Value::String(one()),
        TargetType::Boolean => match value.truth() {
            Some(b) => Value::Bool(b),
            None => return Err(format!("{:?} is not true or false", one())),
        },
        TargetType::DateTime => {
            match expression::parse_datetime(&one()).and_then(expression::rfc3339) {
                Some(date) => Value::String(date),
                None => {
                    return Err(format!(
                        "{:?} is not a date (2026-01-31 or 2026-01-31T09:00:00Z; FormatDateTime converts others)",
                        one()
                    ));
                }
            }
        }
        TargetType::Reference => match uuid::Uuid::parse_str(one().trim()) {
            Ok(id) => Value::String(id.to_string()),
            Err(_) => return Err(format!("{:?} is not an object id", one())),
        },
        TargetType::Integer => Value::from(integer(&one())?),
        TargetType::TextList => {
            Value::Array(value.texts().into_iter().map(Value::String).collect())
        }
        TargetType::IntegerList => Value::Array(
            value
                .texts()
                .iter()
                .map(|t| integer(t).map(Value::from))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// The values as a Graph-shaped patch: dotted targets become nested objects
/// (`employeeOrgData.division`, `customSecurityAttributes.HR.level`).
pub fn graph_patch<'a>(values: impl IntoIterator<Item = (&'a str, Value)>) -> Map<String, Value> {
    let mut patch = Map::new();
    for (name, value) in values {
        let (head, rest) = match name.strip_prefix(CUSTOM_PREFIX) {
            Some(rest) => ("customSecurityAttributes", Some(rest)),
            None => match name.split_once('.') {
                Some((head, rest)) => (head, Some(rest)),
                None => (name, None),
            },
        };
        match rest {
            None => {
                patch.insert(head.to_string(), value);
            }
            Some(rest) => {
                let mut object = patch.get_mut(head);
                if !matches!(object, Some(Value::Object(_))) {
                    patch.insert(head.to_string(), Value::Object(Map::new()));
                    object = patch.get_mut(head);
                }
                let Some(Value::Object(object)) = object else {
                    continue;
                };
                match rest.split_once('.') {
                    // customSecurityAttributes.{set}.{name}
                    Some((set, attribute)) => {
                        let set = object
                            .entry(set.to_string())
                            .or_insert_with(|| Value::Object(Map::new()));
                        if let Value::Object(set) = set {
                            set.insert(attribute.to_string(), value);
                        }
                    }
                    None => {
                        object.insert(rest.to_string(), value);
                    }
                }
            }
        }
    }
    patch
}

#[cfg(test)]
mod tests;

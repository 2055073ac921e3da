//! Updates as JSON merge patches (RFC 7396) over a spec, and the attribute-level
//! differences written to the audit trail.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ValidationErrors;

/// Parses a request body into a spec, naming the offending field on failure
/// (unknown fields, wrong types, missing required fields).
pub fn parse_spec<S: DeserializeOwned>(body: Value) -> Result<S, ValidationErrors> {
    serde_path_to_error::deserialize(body).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { String::new() } else { path };
        ValidationErrors::single(field, error.inner().to_string())
    })
}

/// Applies `patch` to `current` as a JSON merge patch: members set to `null` are
/// removed, objects merge recursively, anything else replaces. Members named in
/// `read_only` may not appear in the patch.
pub fn merge_patch<S: Serialize + DeserializeOwned>(
    current: &S,
    patch: &Value,
    read_only: &[&str],
) -> Result<S, ValidationErrors> {
    let Value::Object(patch_members) = patch else {
        return Err(ValidationErrors::single(
            "",
            "the body of an update must be a JSON object",
        ));
    };
    let mut errors = ValidationErrors::new();
    for name in read_only {
        if patch_members.contains_key(*name) {
            errors.add(*name, "is read-only and cannot be changed");
        }
    }
    errors.into_result()?;
    let mut document = serde_json::to_value(current)
        .map_err(|e| ValidationErrors::single("", format!("cannot represent the object: {e}")))?;
    merge(&mut document, patch);
    parse_spec(document)
}

fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch_members) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(target_members) = target {
                for (name, value) in patch_members {
                    if value.is_null() {
                        target_members.remove(name);
                    } else {
                        let slot = target_members.entry(name.clone()).or_insert(Value::Null);
                        merge(slot, value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The members a patch names, as changes to the values it gives. Authorization
/// uses these rather than the computed differences: naming an attribute needs the
/// permission to change it even when the value is the same, so a refusal cannot
/// reveal whether a guessed value was right.
pub fn named(patch: &Value) -> Vec<Change> {
    let Some(members) = patch.as_object() else {
        return Vec::new();
    };
    members
        .iter()
        .map(|(name, value)| Change {
            attribute: name.clone(),
            old_value: Value::Null,
            new_value: value.clone(),
        })
        .collect()
}

/// One changed attribute: its value before and after (`null` when absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    pub attribute: String,
    #[serde(rename = "oldValue")]
    pub old_value: Value,
    #[serde(rename = "newValue")]
    pub new_value: Value,
}

/// The top-level attributes that differ between two serialized objects, in
/// attribute-name order.
pub fn changes(before: &Value, after: &Value) -> Vec<Change> {
    let empty = Map::new();
    let before_members = before.as_object().unwrap_or(&empty);
    let after_members = after.as_object().unwrap_or(&empty);
    let mut names: Vec<&String> = before_members.keys().chain(after_members.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let old_value = before_members.get(name).cloned().unwrap_or(Value::Null);
        let new_value = after_members.get(name).cloned().unwrap_or(Value::Null);
        if old_value != new_value {
            out.push(Change {
                attribute: name.clone(),
                old_value,
                new_value,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::UserSpec;

    fn user() -> UserSpec {
        parse_spec(json!({"userPrincipalName": "a@contoso.com", "displayName": "A", "department": "Sales"})).unwrap()
    }

    #[test]
    fn merge_patch_sets_and_clears() {
        let patched = merge_patch(
            &user(),
            &json!({"department": null, "jobTitle": "CFO"}),
            &[],
        )
        .unwrap();
        assert_eq!(patched.department, None);
        assert_eq!(patched.job_title.as_deref(), Some("CFO"));
        assert_eq!(patched.display_name, "A");
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let error = merge_patch(&user(), &json!({"departmnet": "Sales"}), &[]).unwrap_err();
        assert!(error.errors[0].message.contains("departmnet"), "{error}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let error = parse_spec::<UserSpec>(
            json!({"userPrincipalName": "a@b", "displayName": "A", "accountEnabled": "yes"}),
        )
        .unwrap_err();
        assert_eq!(error.errors[0].field, "accountEnabled");
    }

    #[test]
    fn read_only_members_are_refused() {
        let error = merge_patch(&user(), &json!({"id": "x"}), &["id"]).unwrap_err();
        assert_eq!(error.errors[0].field, "id");
    }

    #[test]
    fn changes_lists_only_differences() {
        let diff = changes(&json!({"a": 1, "b": 2}), &json!({"a": 1, "b": 3, "c": 4}));
        assert_eq!(diff.len(), 2);
        assert_eq!(diff[0].attribute, "b");
        assert_eq!(diff[1].old_value, Value::Null);
    }
}

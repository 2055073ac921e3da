//! SCIM as a client speaks it (outbound provisioning): a resource built from
//! values at attribute paths, and the PATCH that takes the copy a target holds
//! to the one Tessera wants.
//!
//! Paths are those a mapping writes: `userName`, `name.givenName`,
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`, and
//! elements of a multi-valued attribute chosen by one sub-attribute's value
//! (`emails[type eq "work"].value`, made when the target has none).

use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimResult};
use crate::filter::{CompareOp, Filter, Literal};
use crate::path::PatchPath;
use crate::schema::{ResourceType, Type};

fn unsupported(path: &str) -> ScimError {
    ScimError::invalid_path(format!(
        "{path}: an outbound path names an attribute, a sub-attribute, or elements chosen by one sub-attribute equal to a text (emails[type eq \"work\"].value)"
    ))
}

/// Checks a path a mapping would write, against the resource type.
pub fn check_path(rt: &ResourceType, path: &str) -> ScimResult<()> {
    let mut scratch = Map::new();
    set_at(rt, &mut scratch, path, Value::Null)
}

/// What a mapping may write at `path`: the type of the value there. Read-only
/// attributes, whole complex attributes and whole multi-valued ones are not
/// mapping targets (their sub-attributes, or elements chosen by a filter, are).
pub fn mapped_type(rt: &ResourceType, path: &str) -> ScimResult<Type> {
    check_path(rt, path)?;
    let parsed = PatchPath::parse(path)?;
    let resolved = rt.resolve(&parsed.attr)?;
    let leaf = match (&parsed.filter, &parsed.sub) {
        (Some(_), Some(sub)) => rt.resolve_sub(&resolved, &crate::path::AttrPath::simple(sub))?,
        _ => resolved.leaf(),
    };
    let whole_list = parsed.filter.is_none() && resolved.attribute.multi_valued;
    if leaf.mutability == crate::schema::Mutability::ReadOnly
        || resolved.attribute.mutability == crate::schema::Mutability::ReadOnly
    {
        return Err(ScimError::invalid_path(format!(
            "{path} is read-only: the application sets it"
        )));
    }
    if leaf.kind == Type::Complex || whole_list {
        return Err(ScimError::invalid_path(format!(
            "{path} holds several values: map one sub-attribute, or elements chosen by a filter (emails[type eq \"work\"].value)"
        )));
    }
    Ok(leaf.kind)
}

/// Sets `value` at `path` (`null` removes it; in a chosen element, only the
/// sub-attribute).
pub fn set_at(
    rt: &ResourceType,
    resource: &mut Map<String, Value>,
    path: &str,
    value: Value,
) -> ScimResult<()> {
    let parsed = PatchPath::parse(path)?;
    let resolved = rt.resolve(&parsed.attr)?;
    let container = match resolved.extension {
        Some(urn) => {
            let entry = resource
                .entry(urn.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            match entry.as_object_mut() {
                Some(object) => object,
                None => return Err(unsupported(path)),
            }
        }
        None => resource,
    };
    let name = resolved.attribute.name;
    match (&parsed.filter, resolved.sub) {
        (None, None) => {
            if value.is_null() {
                container.remove(name);
            } else {
                container.insert(name.to_string(), value);
            }
        }
        (None, Some(sub)) if !resolved.attribute.multi_valued => {
            let object = container
                .entry(name.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !object.is_object() {
                *object = Value::Object(Map::new());
            }
            if let Some(object) = object.as_object_mut() {
                if value.is_null() {
                    object.remove(sub.name);
                } else {
                    object.insert(sub.name.to_string(), value);
                }
                if object.is_empty() {
                    container.remove(name);
                }
            }
        }
        (Some(filter), None) if resolved.attribute.kind == Type::Complex => {
            let Some(sub_name) = &parsed.sub else {
                return Err(unsupported(path));
            };
            let sub = rt.resolve_sub(&resolved, &crate::path::AttrPath::simple(sub_name))?;
            let (key, wanted) = match filter {
                Filter::Compare {
                    path: by,
                    op: CompareOp::Eq,
                    value: Literal::String(text),
                } if by.urn.is_none() && by.sub.is_none() => {
                    let key = rt.resolve_sub(&resolved, by)?;
                    (key.name, text.clone())
                }
                _ => return Err(unsupported(path)),
            };
            let list = container
                .entry(name.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !list.is_array() {
                *list = Value::Array(Vec::new());
            }
            let Some(items) = list.as_array_mut() else {
                return Err(unsupported(path));
            };
            let chosen = items.iter().position(|item| {
                item.get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(&wanted))
            });
            match (chosen, value.is_null()) {
                (Some(i), true) => {
                    items.remove(i);
                }
                (Some(i), false) => items[i][sub.name] = value,
                (None, true) => {}
                (None, false) => items.push(json!({ key: wanted, sub.name: value })),
            }
            if items.is_empty() {
                container.remove(name);
            }
        }
        _ => return Err(unsupported(path)),
    }
    Ok(())
}

/// The place a mapped path's value is compared and patched at: a single-valued
/// complex attribute's sub-attribute (`name.givenName`), a multi-valued
/// attribute whole (`emails` for `emails[type eq "work"].value`), an extension's
/// attribute (`urn:…:User:department`, `urn:…:User:manager.value`), or a simple
/// attribute (`userName`).
pub fn patch_place(path: &str) -> String {
    let (prefix, rest) = match path.to_ascii_lowercase().starts_with("urn:") {
        true => match path.rfind(':') {
            Some(at) => (&path[..=at], &path[at + 1..]),
            None => ("", path),
        },
        false => ("", path),
    };
    let place = match rest.find('[') {
        Some(at) => &rest[..at],
        None => rest,
    };
    format!("{prefix}{place}")
}

/// A resource's values by [`patch_place`].
pub fn flatten(resource: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in resource {
        if matches!(name.as_str(), "schemas" | "id" | "meta") {
            continue;
        }
        match value {
            Value::Object(inner) if name.to_ascii_lowercase().starts_with("urn:") => {
                for (attribute, value) in inner {
                    match value {
                        Value::Object(sub) => {
                            for (s, v) in sub {
                                out.insert(format!("{name}:{attribute}.{s}"), v.clone());
                            }
                        }
                        other => {
                            out.insert(format!("{name}:{attribute}"), other.clone());
                        }
                    }
                }
            }
            Value::Object(sub) => {
                for (s, v) in sub {
                    out.insert(format!("{name}.{s}"), v.clone());
                }
            }
            other => {
                out.insert(name.clone(), other.clone());
            }
        }
    }
    out
}

/// The PATCH operations that take `current` to `desired` at the places in
/// `managed` (those a mapping wrote this time, by [`patch_place`]): `replace`
/// where the value differs (a multi-valued attribute whole, as every client
/// understands), `remove` where `desired` has none. Every other place is the
/// target's own and left alone.
pub fn patch_operations(
    current: &Map<String, Value>,
    desired: &Map<String, Value>,
    managed: &[String],
) -> Vec<Value> {
    let have = flatten(current);
    let want = flatten(desired);
    let mut places: Vec<&String> = managed.iter().collect();
    places.sort_unstable();
    places.dedup();
    let mut operations = Vec::new();
    for place in places {
        // Places compare without regard to case, as SCIM's attribute names do.
        let find = |map: &Map<String, Value>| -> Option<Value> {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(place))
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_null())
        };
        match (find(&have), find(&want)) {
            (have, Some(want)) if have.as_ref() != Some(&want) => {
                operations.push(json!({"op": "replace", "path": place, "value": want}));
            }
            (Some(_), None) => operations.push(json!({"op": "remove", "path": place})),
            _ => {}
        }
    }
    operations
}

/// A PatchOp request body.
pub fn patch_request(operations: Vec<Value>) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER, USER_TYPE};

    #[test]
    fn a_resource_from_paths() {
        let mut user = Map::new();
        for (path, value) in [
            ("userName", json!("ada@x.org")),
            ("name.givenName", json!("Ada")),
            ("emails[type eq \"work\"].value", json!("ada@x.org")),
            ("emails[type eq \"home\"].value", json!("ada@home.org")),
            ("active", json!(true)),
            ("department", json!("Eng")),
            (&format!("{ENTERPRISE_USER}:manager.value"), json!("m1")),
        ] {
            set_at(&USER_TYPE, &mut user, path, value).unwrap();
        }
        assert_eq!(
            Value::Object(user.clone()),
            json!({"userName": "ada@x.org", "name": {"givenName": "Ada"},
                   "emails": [{"type": "work", "value": "ada@x.org"}, {"type": "home", "value": "ada@home.org"}],
                   "active": true,
                   ENTERPRISE_USER: {"department": "Eng", "manager": {"value": "m1"}}})
        );
        set_at(
            &USER_TYPE,
            &mut user,
            "emails[type eq \"WORK\"].value",
            json!("a@x.org"),
        )
        .unwrap();
        assert_eq!(
            user["emails"][0]["value"], "a@x.org",
            "types match without case"
        );
        set_at(
            &USER_TYPE,
            &mut user,
            "emails[type eq \"home\"].value",
            Value::Null,
        )
        .unwrap();
        assert_eq!(user["emails"].as_array().unwrap().len(), 1);
        assert_eq!(mapped_type(&USER_TYPE, "active").unwrap(), Type::Boolean);
        assert_eq!(
            mapped_type(&USER_TYPE, "emails[type eq \"work\"].value").unwrap(),
            Type::String
        );
        for bad in [
            "id",
            "meta.created",
            "emails",
            "name",
            "groups[type eq \"x\"].value",
        ] {
            assert!(mapped_type(&USER_TYPE, bad).is_err(), "{bad}");
        }
        for bad in [
            "nickname[value eq \"x\"]",
            "emails[type ne \"work\"].value",
            "emails[type eq \"work\" or primary eq true].value",
            "shoeSize",
        ] {
            assert!(check_path(&USER_TYPE, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patches_take_the_target_to_what_is_wanted() {
        let current = json!({"id": "7", "userName": "ada@x.org", "displayName": "Ada", "title": "Eng",
            "nickName": "theirs", "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "theirs"},
            ENTERPRISE_USER: {"department": "Eng", "costCenter": "1", "manager": {"value": "m1"}}});
        let desired = json!({"userName": "ada@x.org", "displayName": "Ada L",
            "name": {"givenName": "Ada"},
            "emails": [{"type": "work", "value": "ada@x.org"}],
            ENTERPRISE_USER: {"department": "Research"}});
        let managed: Vec<String> = [
            "userName",
            "displayName",
            "title",
            "name.givenName",
            "emails[type eq \"work\"].value",
            &format!("{ENTERPRISE_USER}:department"),
            &format!("{ENTERPRISE_USER}:costCenter"),
        ]
        .iter()
        .map(|p| patch_place(p))
        .collect();
        let ops = patch_operations(
            current.as_object().unwrap(),
            desired.as_object().unwrap(),
            &managed,
        );
        assert_eq!(
            ops,
            vec![
                json!({"op": "replace", "path": "displayName", "value": "Ada L"}),
                json!({"op": "replace", "path": "emails", "value": [{"type": "work", "value": "ada@x.org"}]}),
                json!({"op": "remove", "path": "title"}),
                json!({"op": "remove", "path": format!("{ENTERPRISE_USER}:costCenter")}),
                json!({"op": "replace", "path": format!("{ENTERPRISE_USER}:department"), "value": "Research"}),
            ],
            "name.familyName, name.formatted, nickName and the manager are not the mapping's"
        );
        assert!(
            patch_operations(
                desired.as_object().unwrap(),
                desired.as_object().unwrap(),
                &managed
            )
            .is_empty(),
            "nothing to do"
        );
        assert_eq!(
            patch_place(&format!("{ENTERPRISE_USER}:manager.value")),
            format!("{ENTERPRISE_USER}:manager.value")
        );
        assert_eq!(patch_request(vec![])["Operations"], json!([]));
    }
}

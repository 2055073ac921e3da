//! An incoming resource read against its resource type into canonical form: the
//! attribute names as the schema spells them (input is matched case-insensitively),
//! extension attributes under the extension's URN, read-only attributes dropped
//! (RFC 7643 §2.2: ignored), `null` and `[]` as unassigned, types checked, at most
//! one `primary`. The known quirks of real clients are accepted: booleans written
//! as strings (`"True"`), a single value where a list is expected.

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimResult};
use crate::schema::{self, Attribute, Mutability, ResourceType, Type};

/// Most elements of one multi-valued attribute.
pub const MAX_VALUES: usize = 100;
/// Most members one group resource names (its members are each checked and
/// written, under the tenant's lock).
pub const MAX_MEMBERS: usize = 1000;

/// Most values `attribute` holds in one request.
pub fn max_values(attribute: &Attribute) -> usize {
    if attribute.name == "members" {
        MAX_MEMBERS
    } else {
        MAX_VALUES
    }
}
/// Longest string value, in characters.
pub const MAX_STRING: usize = 4096;

/// Whether required attributes must be present (a create or a replace) or not (a
/// PATCH value, checked again as a whole afterwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    Whole,
    Partial,
}

/// Reads a resource body (POST or PUT) into canonical form: an object holding the
/// core attributes, `externalId`, and each extension's attributes under its URN.
/// `id`, `meta`, `schemas` and read-only attributes are not part of it.
pub fn read(
    rt: &ResourceType,
    body: &Value,
    completeness: Completeness,
) -> ScimResult<Map<String, Value>> {
    let Some(object) = body.as_object() else {
        return Err(ScimError::invalid_syntax(
            "the resource must be a JSON object",
        ));
    };
    if let Some(schemas) = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .map(|(_, v)| v)
    {
        check_schemas(rt, schemas)?;
    }
    let mut out = Map::new();
    for (key, value) in object {
        if ["schemas", "id", "meta"]
            .iter()
            .any(|k| key.eq_ignore_ascii_case(k))
        {
            continue;
        }
        if let Some(urn) = rt.extension_named(key) {
            let Some(ext) = value.as_object() else {
                if value.is_null() {
                    continue;
                }
                return Err(ScimError::invalid_syntax(format!(
                    "{urn} must be an object"
                )));
            };
            let ext_schema = rt
                .schema_of(urn)
                .ok_or_else(|| ScimError::invalid_syntax(urn))?;
            let mut ext_out = Map::new();
            for (name, value) in ext {
                if name.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                let attribute = find(ext_schema.attributes, name).ok_or_else(|| {
                    ScimError::invalid_syntax(format!("{name} is not an attribute of {urn}"))
                })?;
                put(
                    &mut ext_out,
                    attribute,
                    value,
                    &format!("{urn}:{}", attribute.name),
                )?;
            }
            if !ext_out.is_empty() {
                out.insert(urn.to_string(), Value::Object(ext_out));
            }
            continue;
        }
        if key.eq_ignore_ascii_case("password") {
            return Err(ScimError::invalid_value(
                "Tessera takes no passwords over SCIM: users sign in with the methods they register \
                 (give a new user a Temporary Access Pass)",
            ));
        }
        if key.eq_ignore_ascii_case("externalId") {
            put(&mut out, &schema::EXTERNAL_ID, value, "externalId")?;
            continue;
        }
        let attribute = find(rt.schema.attributes, key).ok_or_else(|| {
            ScimError::invalid_syntax(format!("{key} is not an attribute of {}", rt.name))
        })?;
        put(&mut out, attribute, value, attribute.name)?;
    }
    if completeness == Completeness::Whole {
        check_required(rt, &out)?;
    }
    Ok(out)
}

/// Every required attribute has a value.
pub fn check_required(rt: &ResourceType, resource: &Map<String, Value>) -> ScimResult<()> {
    for attribute in rt.schema.attributes.iter().filter(|a| a.required) {
        if !resource.contains_key(attribute.name) {
            return Err(ScimError::invalid_value(format!(
                "{} is required",
                attribute.name
            )));
        }
    }
    Ok(())
}

fn check_schemas(rt: &ResourceType, schemas: &Value) -> ScimResult<()> {
    let Some(list) = schemas.as_array() else {
        return Err(ScimError::invalid_syntax("schemas must be a list of URNs"));
    };
    for urn in list {
        let known = urn.as_str().is_some_and(|u| rt.schema_of(u).is_some());
        if !known {
            return Err(ScimError::invalid_syntax(format!(
                "{urn} is not a schema of {}",
                rt.name
            )));
        }
    }
    Ok(())
}

pub(crate) fn find(attributes: &'static [Attribute], name: &str) -> Option<&'static Attribute> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Reads one attribute's value into `out` (nothing for unassigned or read-only).
fn put(
    out: &mut Map<String, Value>,
    attribute: &Attribute,
    value: &Value,
    at: &str,
) -> ScimResult<()> {
    if attribute.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    if let Some(value) = read_value(attribute, value, at)? {
        out.insert(attribute.name.to_string(), value);
    }
    Ok(())
}

/// An attribute's value in canonical form; `None` when unassigned.
pub fn read_value(attribute: &Attribute, value: &Value, at: &str) -> ScimResult<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if !attribute.multi_valued {
        return read_single(attribute, value, at);
    }
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let max = max_values(attribute);
    if items.len() > max {
        return Err(ScimError::invalid_value(format!(
            "{at} holds at most {max} values"
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(v) = read_single(attribute, item, at)?
            && !out.contains(&v)
        {
            out.push(v);
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    let primaries = out
        .iter()
        .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
        .count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "at most one value of {at} is primary"
        )));
    }
    Ok(Some(Value::Array(out)))
}

/// One value (an element, for a multi-valued attribute).
fn read_single(attribute: &Attribute, value: &Value, at: &str) -> ScimResult<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if attribute.kind != Type::Complex {
        return scalar(attribute, value, at).map(Some);
    }
    let Some(object) = value.as_object() else {
        return Err(ScimError::invalid_value(format!("{at} must be an object")));
    };
    let mut out = Map::new();
    for (name, sub_value) in object {
        let sub = find(attribute.sub_attributes, name).ok_or_else(|| {
            ScimError::invalid_syntax(format!("{name} is not a sub-attribute of {at}"))
        })?;
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = read_single(sub, sub_value, &format!("{at}.{}", sub.name))? {
            out.insert(sub.name.to_string(), v);
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    Ok(Some(Value::Object(out)))
}

fn scalar(attribute: &Attribute, value: &Value, at: &str) -> ScimResult<Value> {
    let wrong = |expected: &str| ScimError::invalid_value(format!("{at} must be {expected}"));
    match attribute.kind {
        Type::String | Type::Reference => {
            let Some(text) = value.as_str() else {
                return Err(wrong("a string"));
            };
            if text.chars().count() > MAX_STRING {
                return Err(ScimError::invalid_value(format!(
                    "{at} has at most {MAX_STRING} characters"
                )));
            }
            Ok(value.clone())
        }
        Type::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(wrong("true or false")),
        },
        Type::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(value.clone()),
            _ => Err(wrong("an integer")),
        },
        Type::Decimal => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => Err(wrong("a number")),
        },
        Type::DateTime => match value.as_str() {
            Some(text) if is_date_time(text) => Ok(value.clone()),
            _ => Err(wrong(
                "a date and time (xsd:dateTime, e.g. 2026-01-31T08:00:00Z)",
            )),
        },
        Type::Binary => match value.as_str() {
            Some(text) if is_base64(text) && text.len() <= MAX_STRING * 4 => Ok(value.clone()),
            _ => Err(wrong("base64")),
        },
        Type::Complex => Err(wrong("an object")),
    }
}

/// `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`, the shape RFC 3339 and xsd:dateTime share.
pub fn is_date_time(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
    {
        return false;
    }
    if !(b[10] == b'T' || b[10] == b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return false;
        }
    }
    match &b[at..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

fn is_base64(text: &str) -> bool {
    let trimmed = text.trim_end_matches('=');
    text.len() - trimmed.len() <= 2
        && trimmed
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'-' || c == b'_')
}

/// The `schemas` list of a canonical resource: its core schema, and each extension
/// it holds attributes of.
pub fn schemas_of(rt: &ResourceType, resource: &Map<String, Value>) -> Value {
    let mut list = vec![Value::String(rt.schema.id.to_string())];
    for ext in rt.extensions {
        if resource.contains_key(ext.id) {
            list.push(Value::String(ext.id.to_string()));
        }
    }
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER, GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    #[test]
    fn names_take_the_schema_spelling_and_read_only_goes() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER],
            "USERNAME": "bjensen", "id": "x", "meta": {"version": "1"},
            "Name": {"GivenName": "Barbara"},
            "active": "True",
            "groups": [{"value": "g"}],
            "emails": {"value": "b@example.com", "primary": true},
            "externalid": "e-1",
            ENTERPRISE_USER: {"EmployeeNumber": "701984", "manager": {"value": "m", "displayName": "ro"}},
        });
        let out = read(&USER_TYPE, &body, Completeness::Whole).unwrap();
        assert_eq!(
            Value::Object(out.clone()),
            json!({
                "userName": "bjensen",
                "name": {"givenName": "Barbara"},
                "active": true,
                "emails": [{"value": "b@example.com", "primary": true}],
                "externalId": "e-1",
                ENTERPRISE_USER: {"employeeNumber": "701984", "manager": {"value": "m"}},
            })
        );
        assert_eq!(schemas_of(&USER_TYPE, &out).as_array().unwrap().len(), 2);
    }

    #[test]
    fn bad_resources_are_refused() {
        let cases = [
            json!([]),
            json!({"displayName": "no user name"}),
            json!({"userName": "a", "nosuch": 1}),
            json!({"userName": 5}),
            json!({"userName": "a", "active": "yes"}),
            json!({"userName": "a", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
            json!({"userName": "a", "name": "text"}),
            json!({"userName": "a", "name": {"nosuch": "x"}}),
            json!({"userName": "a", "schemas": ["urn:nope"]}),
            json!({"userName": "a", "x509Certificates": [{"value": "not base64!"}]}),
            json!({"userName": "a", ENTERPRISE_USER: "text"}),
        ];
        for body in cases {
            assert!(
                read(&USER_TYPE, &body, Completeness::Whole).is_err(),
                "{body}"
            );
        }
        assert!(read(&GROUP_TYPE, &json!({"members": []}), Completeness::Whole).is_err());
        assert!(read(&GROUP_TYPE, &json!({"members": []}), Completeness::Partial).is_ok());
    }

    #[test]
    fn date_times() {
        for good in [
            "2026-01-31T08:00:00Z",
            "2026-01-31T08:00:00.123+01:00",
            "2011-05-13T04:42:34z",
        ] {
            assert!(is_date_time(good), "{good}");
        }
        for bad in [
            "2026-01-31",
            "2026-01-31T08:00:00",
            "2026-01-31T08:00:00.Z",
            "x026-01-31T08:00:00Z",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
    }
}

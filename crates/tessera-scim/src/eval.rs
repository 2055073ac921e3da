//! The reference evaluator: whether a canonical resource (or one element of a
//! multi-valued attribute) matches a filter (RFC 7644 §3.4.2.2). PATCH value
//! filters use it on elements; the store's SQL compilation is tested against it.
//!
//! Semantics, also the SQL compilation's:
//! - strings compare case-insensitively unless the attribute is `caseExact`, with
//!   ASCII case folding (what both databases do the same way);
//! - a multi-valued attribute matches when any element does; a complex
//!   multi-valued one compares its `value` sub-attribute when none is named;
//! - `co`, `sw`, `ew` need strings; `gt`, `ge`, `lt`, `le` need strings, numbers or
//!   dates (as text: the service gives dates in one UTC form);
//!   booleans and binaries only compare for equality;
//! - `ne` is `not eq`: a resource without the attribute is "not equal";
//! - `eq null` is "not present", `ne null` "present".

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimResult};
use crate::filter::{CompareOp, Filter, Literal};
use crate::path::{AttrPath, PatchPath};
use crate::schema::{Attribute, ResourceType, Type};

/// Checks that every path of `filter` names an attribute of `rt` and every
/// comparison suits its attribute's type, before anything is evaluated or compiled.
pub fn check(rt: &ResourceType, filter: &Filter) -> ScimResult<()> {
    check_raw(rt, filter).map_err(as_filter_error)
}

fn check_raw(rt: &ResourceType, filter: &Filter) -> ScimResult<()> {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_raw(rt, a)?;
            check_raw(rt, b)
        }
        Filter::Not(f) => check_raw(rt, f),
        Filter::Present(path) => rt.resolve(path).map(|_| ()),
        Filter::Compare { path, op, value } => {
            let resolved = rt.resolve(path)?;
            check_compare(
                leaf_for_compare(resolved.attribute, resolved.sub),
                *op,
                value,
                &path.text(),
            )
        }
        Filter::ValuePath { path, filter } => {
            let parent = rt.resolve(path)?;
            if !parent.attribute.multi_valued
                || parent.attribute.kind != Type::Complex
                || parent.sub.is_some()
            {
                return Err(ScimError::invalid_filter(format!(
                    "{} is not a multi-valued complex attribute",
                    path.text()
                )));
            }
            check_inner(rt, &parent, filter)
        }
    }
}

fn as_filter_error(e: ScimError) -> ScimError {
    if e.scim_type == Some(crate::ScimType::InvalidPath) {
        ScimError::invalid_filter(e.detail)
    } else {
        e
    }
}

fn check_inner(
    rt: &ResourceType,
    parent: &crate::schema::Resolved,
    filter: &Filter,
) -> ScimResult<()> {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_inner(rt, parent, a)?;
            check_inner(rt, parent, b)
        }
        Filter::Not(f) => check_inner(rt, parent, f),
        Filter::Present(path) => rt.resolve_sub(parent, path).map(|_| ()),
        Filter::Compare { path, op, value } => {
            let sub = rt.resolve_sub(parent, path)?;
            check_compare(sub, *op, value, &path.text())
        }
        Filter::ValuePath { .. } => Err(ScimError::invalid_filter("value paths do not nest")),
    }
}

/// The attribute a comparison reads: the named sub-attribute, a complex
/// attribute's `value`, or the attribute itself.
pub fn leaf_for_compare(
    attribute: &'static Attribute,
    sub: Option<&'static Attribute>,
) -> &'static Attribute {
    match sub {
        Some(sub) => sub,
        None if attribute.kind == Type::Complex => attribute
            .sub_attributes
            .iter()
            .find(|a| a.name == "value")
            .unwrap_or(attribute),
        None => attribute,
    }
}

fn check_compare(
    attribute: &Attribute,
    op: CompareOp,
    value: &Literal,
    at: &str,
) -> ScimResult<()> {
    let bad = |why: &str| {
        Err(ScimError::invalid_filter(format!(
            "{at} {}: {why}",
            op.as_str()
        )))
    };
    if attribute.kind == Type::Complex {
        return bad("a complex attribute is compared through its sub-attributes");
    }
    if *value == Literal::Null {
        return match op {
            CompareOp::Eq | CompareOp::Ne => Ok(()),
            _ => bad("null only compares with eq and ne"),
        };
    }
    let textual = matches!(
        attribute.kind,
        Type::String | Type::Reference | Type::DateTime | Type::Binary
    );
    match (attribute.kind, value) {
        (Type::Boolean, Literal::Bool(_)) => {}
        (Type::Integer | Type::Decimal, Literal::Number(_)) => {}
        (_, Literal::String(_)) if textual => {}
        _ => {
            return bad(&format!(
                "the value does not suit a {} attribute",
                attribute.kind.as_str()
            ));
        }
    }
    match op {
        CompareOp::Eq | CompareOp::Ne => Ok(()),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew
            if matches!(attribute.kind, Type::String | Type::Reference) =>
        {
            Ok(())
        }
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
            if !matches!(attribute.kind, Type::Boolean | Type::Binary) =>
        {
            Ok(())
        }
        _ => bad(&format!(
            "not defined for a {} attribute",
            attribute.kind.as_str()
        )),
    }
}

/// Whether a canonical resource matches a checked filter. `meta` values, if the
/// filter names them, are read from `resource["meta"]`.
pub fn matches(rt: &ResourceType, resource: &Map<String, Value>, filter: &Filter) -> bool {
    match filter {
        Filter::And(a, b) => matches(rt, resource, a) && matches(rt, resource, b),
        Filter::Or(a, b) => matches(rt, resource, a) || matches(rt, resource, b),
        Filter::Not(f) => !matches(rt, resource, f),
        Filter::Present(path) | Filter::Compare { path, .. } | Filter::ValuePath { path, .. } => {
            let Ok(resolved) = rt.resolve(path) else {
                return false;
            };
            let container = match resolved.extension {
                Some(urn) => resource.get(urn).and_then(Value::as_object),
                None => Some(resource),
            };
            let value = container.and_then(|c| c.get(resolved.attribute.name));
            match filter {
                Filter::Present(_) => {
                    let values = leaf_values(resolved.attribute, resolved.sub, value);
                    values.iter().any(|v| present(v))
                }
                Filter::Compare {
                    op, value: literal, ..
                } => {
                    let leaf = leaf_for_compare(resolved.attribute, resolved.sub);
                    let sub = (resolved.attribute.kind == Type::Complex).then_some(leaf);
                    let values = leaf_values(resolved.attribute, sub, value);
                    compare_any(leaf, &values, *op, literal)
                }
                Filter::ValuePath { filter, .. } => {
                    let elements: Vec<&Value> = match value {
                        Some(Value::Array(items)) => items.iter().collect(),
                        Some(other) => vec![other],
                        None => vec![],
                    };
                    elements
                        .into_iter()
                        .any(|e| element_matches(resolved.attribute, e, filter))
                }
                _ => false,
            }
        }
    }
}

/// The values an attribute path reads in a canonical resource (`name.givenName`,
/// `emails.value`, `emails[type eq "work"].value`: the selected elements'
/// sub-attribute), and whether the path names a multi-valued attribute. The path
/// is checked against the schema first.
pub fn values_at<'a>(
    rt: &ResourceType,
    resource: &'a Map<String, Value>,
    path: &PatchPath,
) -> ScimResult<(Vec<&'a Value>, bool)> {
    let resolved = rt.resolve(&path.attr)?;
    let container = match resolved.extension {
        Some(urn) => resource.get(urn).and_then(Value::as_object),
        None => Some(resource),
    };
    let value = container.and_then(|c| c.get(resolved.attribute.name));
    let Some(filter) = &path.filter else {
        return Ok((
            leaf_values(resolved.attribute, resolved.sub, value),
            resolved.attribute.multi_valued,
        ));
    };
    check(
        rt,
        &Filter::ValuePath {
            path: path.attr.clone(),
            filter: Box::new(filter.clone()),
        },
    )?;
    let sub = match &path.sub {
        Some(name) => Some(rt.resolve_sub(&resolved, &AttrPath::simple(name))?),
        None => None,
    };
    let elements: Vec<&Value> = match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
        None => vec![],
    };
    let selected = elements
        .into_iter()
        .filter(|e| element_matches(resolved.attribute, e, filter));
    let values = match sub {
        Some(sub) => selected.filter_map(|e| e.get(sub.name)).collect(),
        None => selected.collect(),
    };
    Ok((values, true))
}

/// Whether one element of a multi-valued complex attribute matches a value filter
/// (whose paths name sub-attributes).
pub fn element_matches(parent: &Attribute, element: &Value, filter: &Filter) -> bool {
    match filter {
        Filter::And(a, b) => {
            element_matches(parent, element, a) && element_matches(parent, element, b)
        }
        Filter::Or(a, b) => {
            element_matches(parent, element, a) || element_matches(parent, element, b)
        }
        Filter::Not(f) => !element_matches(parent, element, f),
        Filter::Present(path) => {
            sub_of(parent, &path.name).is_some_and(|sub| element.get(sub.name).is_some_and(present))
        }
        Filter::Compare { path, op, value } => {
            let Some(sub) = sub_of(parent, &path.name) else {
                return false;
            };
            let values: Vec<&Value> = element.get(sub.name).into_iter().collect();
            compare_any(sub, &values, *op, value)
        }
        Filter::ValuePath { .. } => false,
    }
}

fn sub_of(parent: &Attribute, name: &str) -> Option<&'static Attribute> {
    parent
        .sub_attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// The values a path reaches: the attribute's (each element's, if multi-valued),
/// or the sub-attribute's of each.
fn leaf_values<'a>(
    attribute: &Attribute,
    sub: Option<&Attribute>,
    value: Option<&'a Value>,
) -> Vec<&'a Value> {
    let Some(value) = value else {
        return vec![];
    };
    let elements: Vec<&Value> = match value {
        Value::Array(items) if attribute.multi_valued => items.iter().collect(),
        other => vec![other],
    };
    match sub {
        None => elements,
        Some(sub) => elements
            .into_iter()
            .filter_map(|e| e.get(sub.name))
            .collect(),
    }
}

fn compare_any(attribute: &Attribute, values: &[&Value], op: CompareOp, literal: &Literal) -> bool {
    if *literal == Literal::Null {
        let any = values.iter().any(|v| present(v));
        return if op == CompareOp::Eq { !any } else { any };
    }
    if op == CompareOp::Ne {
        return !values
            .iter()
            .any(|v| compare(attribute, v, CompareOp::Eq, literal));
    }
    values.iter().any(|v| compare(attribute, v, op, literal))
}

/// ASCII case folding, as SQLite's `lower` and PostgreSQL's under the "C" collation.
pub fn fold(text: &str, case_exact: bool) -> String {
    if case_exact {
        text.to_string()
    } else {
        text.to_ascii_lowercase()
    }
}

fn compare(attribute: &Attribute, value: &Value, op: CompareOp, literal: &Literal) -> bool {
    match (value, literal) {
        (Value::String(v), Literal::String(l)) => {
            let (v, l) = (fold(v, attribute.case_exact), fold(l, attribute.case_exact));
            match op {
                CompareOp::Eq => v == l,
                CompareOp::Ne => v != l,
                CompareOp::Co => v.contains(&l),
                CompareOp::Sw => v.starts_with(&l),
                CompareOp::Ew => v.ends_with(&l),
                _ => ordered(v.as_str().cmp(l.as_str()), op),
            }
        }
        (Value::Bool(v), Literal::Bool(l)) => match op {
            CompareOp::Eq => v == l,
            CompareOp::Ne => v != l,
            _ => false,
        },
        (Value::Number(v), Literal::Number(l)) => {
            let (Some(v), Some(l)) = (v.as_f64(), l.as_f64()) else {
                return false;
            };
            match v.partial_cmp(&l) {
                Some(ordering) => match op {
                    CompareOp::Eq => ordering == Ordering::Equal,
                    CompareOp::Ne => ordering != Ordering::Equal,
                    CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
                    _ => ordered(ordering, op),
                },
                None => false,
            }
        }
        _ => false,
    }
}

fn ordered(ordering: Ordering, op: CompareOp) -> bool {
    match op {
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Eq => ordering == Ordering::Equal,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse;
    use crate::schema::{GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "userName": "BJensen",
            "name": {"familyName": "O'Malley", "givenName": "Barbara"},
            "title": "Tour Guide",
            "userType": "Employee",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"},
            ],
            "externalId": "Ab-1",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984"},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn yes(text: &str) -> bool {
        let f = parse(text).unwrap();
        check(&USER_TYPE, &f).unwrap_or_else(|e| panic!("{text}: {e}"));
        matches(&USER_TYPE, &user(), &f)
    }

    #[test]
    fn comparisons() {
        assert!(yes(r#"userName eq "bjensen""#));
        assert!(yes(r#"externalId eq "Ab-1""#));
        assert!(!yes(r#"externalId eq "ab-1""#), "externalId is caseExact");
        assert!(yes(r#"name.familyName co "malley""#));
        assert!(yes(r#"userName sw "bj" and userName ew "SEN""#));
        assert!(yes("title pr"));
        assert!(!yes("nickName pr"));
        assert!(yes(r#"nickName ne "x""#));
        assert!(yes("nickName eq null"));
        assert!(yes("active eq true and not (active eq false)"));
        assert!(yes(r#"emails co "jensen.org""#));
        assert!(yes(r#"emails.type eq "home""#));
        assert!(yes(r#"emails[type eq "work" and value co "@example.com"]"#));
        assert!(!yes(
            r#"emails[type eq "home" and value co "@example.com"]"#
        ));
        assert!(yes(r#"employeeNumber eq "701984""#));
        assert!(yes(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber gt "700000""#
        ));
        assert!(yes(
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#
        ));
    }

    #[test]
    fn type_mismatches_are_invalid_filters() {
        for bad in [
            "active co \"t\"",
            "active gt true",
            "userName eq true",
            "name eq \"x\"",
            "nosuch eq \"x\"",
            "name[givenName eq \"x\"]",
            "emails[nosuch eq \"x\"]",
            "x509Certificates.value gt \"AA==\"",
            "userName gt null",
        ] {
            let f = parse(bad).unwrap();
            let error = check(&USER_TYPE, &f).unwrap_err();
            assert_eq!(
                error.scim_type,
                Some(crate::ScimType::InvalidFilter),
                "{bad}"
            );
        }
        let f = parse(r#"members[value eq "x"]"#).unwrap();
        assert!(check(&GROUP_TYPE, &f).is_ok());
    }
}

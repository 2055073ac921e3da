//! PATCH (RFC 7644 §3.5.2): operations read from the request and applied to a
//! canonical resource, all or nothing (the caller keeps the original until
//! [`apply`] returns).
//!
//! Accepted beside the RFC, as real clients send them:
//! - `op` in any case (`Replace`, `ADD`) and `Operations` in any case;
//! - `add`/`replace` without `path` whose value object's keys are paths
//!   (`name.givenName`, `urn:...:enterprise:2.0:User:employeeNumber`,
//!   `emails[type eq "work"].value`) or an extension URN holding an object;
//! - booleans as strings (`"False"`);
//! - `add`/`replace` on a value filter that matches nothing (`emails[type eq
//!   "work"].value`): an element is made from the filter's equalities;
//! - `remove` of `members` with a `value` list naming the elements to remove.
//!
//! Group membership is not applied here: [`split_members`] takes the operations on
//! `members` out as [`MemberChange`]s for the caller, who holds members as links.

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimResult};
use crate::eval;
use crate::filter::{CompareOp, Filter, Literal};
use crate::path::{AttrPath, PatchPath};
use crate::resource::{self, Completeness};
use crate::schema::{self, Attribute, Mutability, ResourceType, Type};

/// Most operations in one PATCH.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: Op,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// Reads a PatchOp request body.
pub fn parse(body: &Value) -> ScimResult<Vec<Operation>> {
    let Some(object) = body.as_object() else {
        return Err(ScimError::invalid_syntax("a PATCH body is a JSON object"));
    };
    if let Some(schemas) = get_ci(object, "schemas") {
        let ok = schemas.as_array().is_some_and(|l| {
            l.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(schema::PATCH_OP))
            })
        });
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must be [\"{}\"]",
                schema::PATCH_OP
            )));
        }
    }
    let Some(Value::Array(items)) = get_ci(object, "Operations") else {
        return Err(ScimError::invalid_syntax(
            "Operations is required: a list of operations",
        ));
    };
    if items.is_empty() || items.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "Operations holds 1 to {MAX_OPERATIONS} operations"
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_operation(i, item))
        .collect()
}

fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn parse_operation(index: usize, item: &Value) -> ScimResult<Operation> {
    let at = |what: String| ScimError::invalid_syntax(format!("Operations[{index}]: {what}"));
    let Some(object) = item.as_object() else {
        return Err(at("an operation is an object".to_string()));
    };
    for key in object.keys() {
        if !["op", "path", "value"]
            .iter()
            .any(|k| key.eq_ignore_ascii_case(k))
        {
            return Err(at(format!("{key} is not a member of an operation")));
        }
    }
    let op = match get_ci(object, "op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some("replace") => Op::Replace,
        _ => return Err(at("op must be add, remove or replace".to_string())),
    };
    let path =
        match get_ci(object, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if text.trim().is_empty() => None,
            Some(Value::String(text)) => Some(PatchPath::parse(text).map_err(|e| {
                ScimError::invalid_path(format!("Operations[{index}]: {}", e.detail))
            })?),
            Some(_) => return Err(at("path must be a string".to_string())),
        };
    let value = get_ci(object, "value").cloned();
    match (op, &path, &value) {
        (Op::Remove, None, _) => Err(ScimError::no_target(format!(
            "Operations[{index}]: remove needs a path"
        ))),
        (Op::Add | Op::Replace, _, None) => Err(at("add and replace need a value".to_string())),
        (Op::Add | Op::Replace, None, Some(v)) if !v.is_object() => Err(at(
            "without a path, the value is an object of attributes".to_string(),
        )),
        _ => Ok(Operation { op, path, value }),
    }
}

/// A change to a group's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Add(Vec<String>),
    Remove(Vec<String>),
    RemoveAll,
    /// The members become exactly these.
    Replace(Vec<String>),
}

/// Takes the operations on `members` (of a resource type that has them) out of
/// `operations`, as membership changes in order; the rest stay.
pub fn split_members(
    rt: &ResourceType,
    operations: Vec<Operation>,
) -> ScimResult<(Vec<Operation>, Vec<MemberChange>)> {
    let Some(members) = rt.schema.attributes.iter().find(|a| a.name == "members") else {
        return Ok((operations, vec![]));
    };
    let mut rest = Vec::new();
    let mut changes = Vec::new();
    for operation in operations {
        match &operation.path {
            Some(path)
                if path.attr.urn.is_none() && path.attr.name.eq_ignore_ascii_case("members")
                    || is_qualified_members(rt, path) =>
            {
                changes.push(member_change(members, &operation, path)?);
            }
            Some(_) => rest.push(operation),
            None => {
                let Some(Value::Object(value)) = &operation.value else {
                    rest.push(operation);
                    continue;
                };
                let mut others = Map::new();
                for (key, v) in value {
                    if key.eq_ignore_ascii_case("members") {
                        let ids = member_ids(members, v)?;
                        changes.push(match operation.op {
                            Op::Add => MemberChange::Add(ids),
                            _ => MemberChange::Replace(ids),
                        });
                    } else {
                        others.insert(key.clone(), v.clone());
                    }
                }
                if !others.is_empty() {
                    rest.push(Operation {
                        value: Some(Value::Object(others)),
                        ..operation
                    });
                }
            }
        }
    }
    let named: usize = changes
        .iter()
        .map(|c| match c {
            MemberChange::Add(ids) | MemberChange::Remove(ids) | MemberChange::Replace(ids) => {
                ids.len()
            }
            MemberChange::RemoveAll => 1,
        })
        .sum();
    if named > MAX_MEMBER_CHANGES {
        return Err(ScimError::new(
            413,
            Some(crate::ScimType::TooMany),
            format!("one request changes at most {MAX_MEMBER_CHANGES} members"),
        ));
    }
    Ok((rest, changes))
}

/// Most members one request adds or removes (each is a check and a write under
/// the tenant's lock).
pub const MAX_MEMBER_CHANGES: usize = 1000;

fn is_qualified_members(rt: &ResourceType, path: &PatchPath) -> bool {
    path.attr
        .urn
        .as_deref()
        .is_some_and(|u| u.eq_ignore_ascii_case(rt.schema.id))
        && path.attr.name.eq_ignore_ascii_case("members")
}

fn member_change(
    members: &Attribute,
    operation: &Operation,
    path: &PatchPath,
) -> ScimResult<MemberChange> {
    if path.attr.sub.is_some() || path.sub.is_some() {
        return Err(ScimError::mutability(
            "a member's sub-attributes cannot be changed; add or remove the member",
        ));
    }
    match (operation.op, &path.filter) {
        (Op::Remove, Some(filter)) => Ok(MemberChange::Remove(values_named(filter)?)),
        (Op::Remove, None) => match &operation.value {
            None | Some(Value::Null) => Ok(MemberChange::RemoveAll),
            Some(v) => Ok(MemberChange::Remove(member_ids(members, v)?)),
        },
        (Op::Add, None) => Ok(MemberChange::Add(member_ids(
            members,
            operation.value.as_ref().unwrap_or(&Value::Null),
        )?)),
        (Op::Replace, None) => Ok(MemberChange::Replace(member_ids(
            members,
            operation.value.as_ref().unwrap_or(&Value::Null),
        )?)),
        (_, Some(_)) => Err(ScimError::invalid_path(
            "members are added with path \"members\" and a value list",
        )),
    }
}

/// The `value` of each member object in a list (or one object).
fn member_ids(members: &Attribute, value: &Value) -> ScimResult<Vec<String>> {
    let read = resource::read_value(members, value, "members")?;
    let mut ids = Vec::new();
    for element in read
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = element.get("value").and_then(Value::as_str) else {
            return Err(ScimError::invalid_value(
                "each member needs its value (the member's id)",
            ));
        };
        ids.push(id.to_string());
    }
    Ok(ids)
}

/// The ids a `members[...]` filter names: `value eq "id"`, joined with `or`.
fn values_named(filter: &Filter) -> ScimResult<Vec<String>> {
    match filter {
        Filter::Or(a, b) => {
            let mut ids = values_named(a)?;
            ids.extend(values_named(b)?);
            Ok(ids)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Literal::String(id),
        } if path.urn.is_none()
            && path.sub.is_none()
            && path.name.eq_ignore_ascii_case("value") =>
        {
            Ok(vec![id.clone()])
        }
        _ => Err(ScimError::invalid_filter(
            "members are selected with value eq \"id\", joined with or",
        )),
    }
}

/// Applies operations to a canonical resource and returns the result, read again
/// as a whole (types, required attributes). The input is left as it was.
pub fn apply(
    rt: &ResourceType,
    resource: &Map<String, Value>,
    operations: &[Operation],
) -> ScimResult<Map<String, Value>> {
    let mut doc = resource.clone();
    for (index, operation) in operations.iter().enumerate() {
        apply_operation(rt, &mut doc, operation).map_err(|e| ScimError {
            detail: format!("Operations[{index}]: {}", e.detail),
            ..e
        })?;
    }
    let mut body = doc.clone();
    body.remove("groups");
    resource::read(rt, &Value::Object(body), Completeness::Whole)
}

fn apply_operation(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    operation: &Operation,
) -> ScimResult<()> {
    match &operation.path {
        Some(path) => apply_path(rt, doc, operation.op, path, operation.value.as_ref()),
        None => {
            let Some(Value::Object(value)) = &operation.value else {
                return Err(ScimError::invalid_syntax(
                    "without a path, the value is an object",
                ));
            };
            for (key, v) in value {
                if key.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                let path = PatchPath::parse(key).map_err(|_| {
                    ScimError::invalid_syntax(format!("{key} is not an attribute of {}", rt.name))
                })?;
                apply_path(rt, doc, operation.op, &path, Some(v))?;
            }
            Ok(())
        }
    }
}

fn apply_path(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    op: Op,
    path: &PatchPath,
    value: Option<&Value>,
) -> ScimResult<()> {
    // A bare extension URN: the extension's attributes as a whole.
    if path.filter.is_none()
        && let Some(urn) = rt.extension_named(&path.attr.text())
    {
        return match op {
            Op::Remove => {
                doc.remove(urn);
                Ok(())
            }
            Op::Add | Op::Replace => {
                let Some(Value::Object(attributes)) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "the value of {urn} is an object"
                    )));
                };
                for (name, v) in attributes {
                    if name.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    let inner = PatchPath::parse(&format!("{urn}:{name}"))?;
                    apply_path(rt, doc, op, &inner, Some(v))?;
                }
                Ok(())
            }
        };
    }
    let resolved = rt.resolve(&path.attr)?;
    let attribute = resolved.attribute;
    if attribute.mutability == Mutability::ReadOnly {
        return Err(ScimError::mutability(format!(
            "{} is read-only",
            resolved.text()
        )));
    }
    let container: &mut Map<String, Value> = match resolved.extension {
        None => doc,
        Some(urn) => {
            let entry = doc
                .entry(urn.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            match entry.as_object_mut() {
                Some(object) => object,
                None => return Err(ScimError::invalid_value(format!("{urn} is not an object"))),
            }
        }
    };
    let result = match &path.filter {
        None => match resolved.sub {
            Some(sub) => apply_sub(container, attribute, sub, op, value),
            None => apply_whole(container, attribute, op, value),
        },
        Some(filter) => {
            let sub = match &path.sub {
                Some(s) => Some(rt.resolve_sub(&resolved, &AttrPath::simple(s))?),
                None => None,
            };
            apply_filtered(rt, &resolved, container, filter, sub, op, value)
        }
    };
    if let Some(urn) = resolved.extension
        && doc
            .get(urn)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
    {
        doc.remove(urn);
    }
    result
}

/// The attribute as a whole.
fn apply_whole(
    container: &mut Map<String, Value>,
    attribute: &Attribute,
    op: Op,
    value: Option<&Value>,
) -> ScimResult<()> {
    let name = attribute.name;
    if op == Op::Remove {
        if attribute.required {
            return Err(ScimError::mutability(format!(
                "{name} is required and cannot be removed"
            )));
        }
        match (attribute.multi_valued, value) {
            (true, Some(v)) if !v.is_null() => {
                // Remove the listed elements (matched by their value, or whole).
                let listed = resource::read_value(attribute, v, name)?;
                let listed = listed
                    .as_ref()
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if let Some(Value::Array(items)) = container.get_mut(name) {
                    items.retain(|item| !listed.iter().any(|l| same_element(attribute, item, l)));
                }
                drop_empty(container, name);
            }
            _ => {
                container.remove(name);
            }
        }
        return Ok(());
    }
    let normalized = resource::read_value(attribute, value.unwrap_or(&Value::Null), name)?;
    let Some(normalized) = normalized else {
        if op == Op::Replace {
            if attribute.required {
                return Err(ScimError::mutability(format!(
                    "{name} is required and cannot be removed"
                )));
            }
            container.remove(name);
        }
        return Ok(());
    };
    if attribute.mutability == Mutability::Immutable
        && let Some(existing) = container.get(name)
        && *existing != normalized
    {
        return Err(ScimError::mutability(format!("{name} is immutable")));
    }
    match (attribute.multi_valued, attribute.kind, op) {
        (true, _, Op::Add) => {
            let new_items = normalized.as_array().cloned().unwrap_or_default();
            let entry = container
                .entry(name.to_string())
                .or_insert_with(|| Value::Array(vec![]));
            let Some(items) = entry.as_array_mut() else {
                return Err(ScimError::invalid_value(format!("{name} is not a list")));
            };
            for item in new_items {
                // A value already there is updated with what is sent, not added twice.
                let at = match items.iter().position(|e| same_element(attribute, e, &item)) {
                    Some(at) => {
                        match (items[at].as_object_mut(), item.as_object()) {
                            (Some(existing), Some(given)) => existing.extend(given.clone()),
                            _ => items[at] = item.clone(),
                        }
                        at
                    }
                    None => {
                        items.push(item.clone());
                        items.len() - 1
                    }
                };
                if is_primary(&item) {
                    clear_primary_except(items, at);
                }
            }
            if items.len() > resource::max_values(attribute) {
                return Err(ScimError::invalid_value(format!(
                    "{name} holds at most {} values",
                    resource::max_values(attribute)
                )));
            }
        }
        (false, Type::Complex, _) => {
            // Sub-attributes given replace theirs; the others stay (§3.5.2.1, §3.5.2.3).
            let entry = container
                .entry(name.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let (Some(target), Some(given)) = (entry.as_object_mut(), normalized.as_object()) {
                for (k, v) in given {
                    target.insert(k.clone(), v.clone());
                }
            } else {
                *entry = normalized;
            }
        }
        _ => {
            container.insert(name.to_string(), normalized);
        }
    }
    Ok(())
}

/// `name.givenName` and the like: a sub-attribute of a single complex attribute, or
/// (remove only) of every element of a multi-valued one.
fn apply_sub(
    container: &mut Map<String, Value>,
    attribute: &Attribute,
    sub: &Attribute,
    op: Op,
    value: Option<&Value>,
) -> ScimResult<()> {
    let name = attribute.name;
    if sub.mutability == Mutability::ReadOnly {
        return Err(ScimError::mutability(format!(
            "{name}.{} is read-only",
            sub.name
        )));
    }
    if attribute.multi_valued {
        if op != Op::Remove {
            return Err(ScimError::invalid_path(format!(
                "select the elements of {name} with a filter, e.g. {name}[type eq \"work\"].{}",
                sub.name
            )));
        }
        if let Some(Value::Array(items)) = container.get_mut(name) {
            for item in items.iter_mut() {
                if let Some(object) = item.as_object_mut() {
                    object.remove(sub.name);
                }
            }
            items.retain(|i| i.as_object().is_some_and(|o| !o.is_empty()));
        }
        drop_empty(container, name);
        return Ok(());
    }
    if op == Op::Remove {
        if let Some(Value::Object(object)) = container.get_mut(name) {
            object.remove(sub.name);
        }
        drop_empty(container, name);
        return Ok(());
    }
    let at = format!("{name}.{}", sub.name);
    let normalized = resource::read_value(sub, value.unwrap_or(&Value::Null), &at)?;
    let entry = container
        .entry(name.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(object) = entry.as_object_mut() else {
        return Err(ScimError::invalid_value(format!("{name} is not an object")));
    };
    match normalized {
        Some(v) => {
            object.insert(sub.name.to_string(), v);
        }
        None => {
            object.remove(sub.name);
        }
    }
    drop_empty(container, name);
    Ok(())
}

/// `emails[type eq "work"]` and `emails[type eq "work"].value`.
fn apply_filtered(
    rt: &ResourceType,
    resolved: &schema::Resolved,
    container: &mut Map<String, Value>,
    filter: &Filter,
    sub: Option<&'static Attribute>,
    op: Op,
    value: Option<&Value>,
) -> ScimResult<()> {
    let attribute = resolved.attribute;
    let name = attribute.name;
    if !attribute.multi_valued || attribute.kind != Type::Complex || resolved.sub.is_some() {
        return Err(ScimError::invalid_path(format!(
            "{name} is not a multi-valued complex attribute"
        )));
    }
    eval::check(
        rt,
        &Filter::ValuePath {
            path: AttrPath::simple(name),
            filter: Box::new(filter.clone()),
        },
    )
    .map_err(|e| ScimError::invalid_path(e.detail))?;
    if let Some(sub) = sub
        && sub.mutability == Mutability::ReadOnly
    {
        return Err(ScimError::mutability(format!(
            "{name}.{} is read-only",
            sub.name
        )));
    }
    let mut items: Vec<Value> = match container.remove(name) {
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
        None => vec![],
    };
    let matched: Vec<usize> = (0..items.len())
        .filter(|&i| eval::element_matches(attribute, &items[i], filter))
        .collect();
    let outcome = (|| -> ScimResult<()> {
        match op {
            Op::Remove => {
                if let Some(sub) = sub {
                    for &i in &matched {
                        if let Some(object) = items[i].as_object_mut() {
                            object.remove(sub.name);
                        }
                    }
                    items.retain(|i| i.as_object().is_some_and(|o| !o.is_empty()));
                } else {
                    let mut index = 0;
                    items.retain(|_| {
                        let keep = !matched.contains(&index);
                        index += 1;
                        keep
                    });
                }
                Ok(())
            }
            Op::Add | Op::Replace => {
                let value = value.unwrap_or(&Value::Null);
                // What each selected element becomes.
                let patch: Map<String, Value> = match sub {
                    Some(sub) => {
                        let at = format!("{name}.{}", sub.name);
                        let mut m = Map::new();
                        if let Some(v) = resource::read_value(sub, value, &at)? {
                            m.insert(sub.name.to_string(), v);
                        }
                        m
                    }
                    None => {
                        let element = Attribute {
                            multi_valued: false,
                            ..*attribute
                        };
                        match resource::read_value(&element, value, name)? {
                            Some(Value::Object(m)) => m,
                            _ => Map::new(),
                        }
                    }
                };
                if matched.is_empty() {
                    // Nothing selected: make the element the filter describes.
                    let Some(mut element) = equalities(attribute, filter) else {
                        return Err(ScimError::no_target(format!(
                            "no value of {name} matches the filter"
                        )));
                    };
                    element.extend(patch);
                    if is_primary(&Value::Object(element.clone())) {
                        clear_primary(&mut items);
                    }
                    items.push(Value::Object(element));
                    return Ok(());
                }
                let sets_primary = patch.get("primary") == Some(&Value::Bool(true));
                if sets_primary {
                    clear_primary(&mut items);
                }
                for &i in &matched {
                    match (op, sub, items[i].as_object_mut()) {
                        (Op::Replace, None, _) => items[i] = Value::Object(patch.clone()),
                        (_, Some(sub), Some(object)) if !patch.contains_key(sub.name) => {
                            object.remove(sub.name);
                        }
                        (_, _, Some(object)) => object.extend(patch.clone()),
                        _ => {}
                    }
                }
                items.retain(|i| i.as_object().is_some_and(|o| !o.is_empty()));
                Ok(())
            }
        }
    })();
    if !items.is_empty() {
        container.insert(name.to_string(), Value::Array(items));
    }
    outcome
}

/// The element a filter of `sub eq "value"` joined with `and` describes, if it is one.
fn equalities(parent: &Attribute, filter: &Filter) -> Option<Map<String, Value>> {
    match filter {
        Filter::And(a, b) => {
            let mut m = equalities(parent, a)?;
            m.extend(equalities(parent, b)?);
            Some(m)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.urn.is_none() && path.sub.is_none() && *value != Literal::Null => {
            let sub = parent
                .sub_attributes
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(&path.name))?;
            if sub.mutability == Mutability::ReadOnly {
                return None;
            }
            let mut m = Map::new();
            m.insert(sub.name.to_string(), value.to_json());
            Some(m)
        }
        _ => None,
    }
}

fn is_primary(v: &Value) -> bool {
    v.get("primary") == Some(&Value::Bool(true))
}

/// RFC 7643 §2.4: when a value becomes primary, the others stop being.
fn clear_primary(items: &mut [Value]) {
    clear_primary_except(items, usize::MAX);
}

fn clear_primary_except(items: &mut [Value], keep: usize) {
    for (at, item) in items.iter_mut().enumerate() {
        if at == keep {
            continue;
        }
        if let Some(object) = item.as_object_mut()
            && object.get("primary") == Some(&Value::Bool(true))
        {
            object.insert("primary".to_string(), Value::Bool(false));
        }
    }
}

/// Two elements are the same value: equal `value`s (case-insensitively unless
/// case-exact) with equal `type`s for complex ones, equal scalars otherwise.
fn same_element(attribute: &Attribute, a: &Value, b: &Value) -> bool {
    if attribute.kind != Type::Complex {
        return a == b;
    }
    let exact = attribute
        .sub_attributes
        .iter()
        .find(|s| s.name == "value")
        .is_some_and(|s| s.case_exact);
    let value = |v: &Value| {
        v.get("value")
            .and_then(Value::as_str)
            .map(|s| eval::fold(s, exact))
    };
    match (value(a), value(b)) {
        (Some(x), Some(y)) => x == y && (b.get("type").is_none() || a.get("type") == b.get("type")),
        _ => a == b,
    }
}

fn drop_empty(container: &mut Map<String, Value>, name: &str) {
    let empty = match container.get(name) {
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Null) => true,
        _ => false,
    };
    if empty {
        container.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER, GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
            ENTERPRISE_USER: {"employeeNumber": "1"},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn run(ops: Value) -> ScimResult<Value> {
        let parsed = parse(&json!({"schemas": [schema::PATCH_OP], "Operations": ops}))?;
        apply(&USER_TYPE, &user(), &parsed).map(Value::Object)
    }

    #[test]
    fn the_three_operations() {
        let out = run(json!([
            {"op": "Replace", "path": "name.givenName", "value": "Babs"},
            {"op": "add", "path": "nickName", "value": "B"},
            {"op": "REMOVE", "path": "name.familyName"},
            {"op": "add", "path": "emails", "value": [{"value": "h@home.org", "type": "home", "primary": true}]},
        ]))
        .unwrap();
        assert_eq!(out["name"], json!({"givenName": "Babs"}));
        assert_eq!(out["nickName"], "B");
        assert_eq!(
            out["emails"],
            json!([
                {"value": "b@example.com", "type": "work", "primary": false},
                {"value": "h@home.org", "type": "home", "primary": true},
            ])
        );
    }

    #[test]
    fn adding_the_primary_value_again_keeps_it_primary() {
        let out = run(json!([{"op": "add", "path": "emails", "value": [
            {"value": "B@example.com", "type": "work", "primary": true}]}]))
        .unwrap();
        assert_eq!(
            out["emails"],
            json!([{"value": "B@example.com", "type": "work", "primary": true}])
        );
    }

    #[test]
    fn value_filters() {
        let out = run(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}])).unwrap();
        assert_eq!(out["emails"][0]["value"], "new@example.com");
        // Nothing matches: the element the filter describes is made (Entra, Okta).
        let out = run(json!([{"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"}])).unwrap();
        assert_eq!(
            out["phoneNumbers"],
            json!([{"type": "mobile", "value": "+1 555"}])
        );
        let out = run(json!([{"op": "remove", "path": "emails[type eq \"work\"]"}])).unwrap();
        assert!(out.get("emails").is_none());
        let error =
            run(json!([{"op": "replace", "path": "emails[type co \"wo\"].value", "value": "x"}]));
        assert!(error.is_ok(), "matches the work element");
        let error =
            run(json!([{"op": "replace", "path": "emails[type co \"zz\"].value", "value": "x"}]))
                .unwrap_err();
        assert_eq!(error.scim_type, Some(crate::ScimType::NoTarget));
    }

    #[test]
    fn entra_and_okta_shapes() {
        let out = run(json!([{"op": "Replace", "value": {
            "active": "False",
            "name.familyName": "J",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Tours",
            "emails[type eq \"work\"].value": "w@example.com",
        }}]))
        .unwrap();
        assert_eq!(out["active"], false);
        assert_eq!(out["name"]["familyName"], "J");
        assert_eq!(
            out[ENTERPRISE_USER],
            json!({"employeeNumber": "1", "department": "Tours"})
        );
        assert_eq!(out["emails"][0]["value"], "w@example.com");
        let out = run(json!([{"op": "add", "path": ENTERPRISE_USER, "value": {
            "schemas": [ENTERPRISE_USER], "manager": {"value": "m-1"}}}]))
        .unwrap();
        assert_eq!(out[ENTERPRISE_USER]["manager"], json!({"value": "m-1"}));
        let out = run(json!([{"op": "remove", "path": ENTERPRISE_USER}])).unwrap();
        assert!(out.get(ENTERPRISE_USER).is_none());
    }

    #[test]
    fn refusals_change_nothing() {
        let before = user();
        for (ops, kind) in [
            (
                json!([{"op": "remove", "path": "userName"}]),
                crate::ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "id", "value": "x"}]),
                crate::ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "groups", "value": []}]),
                crate::ScimType::Mutability,
            ),
            (json!([{"op": "remove"}]), crate::ScimType::NoTarget),
            (
                json!([{"op": "replace", "path": "nosuch", "value": 1}]),
                crate::ScimType::InvalidPath,
            ),
            (
                json!([{"op": "replace", "path": "active", "value": "maybe"}]),
                crate::ScimType::InvalidValue,
            ),
            (
                json!([{"op": "move", "path": "active", "value": true}]),
                crate::ScimType::InvalidSyntax,
            ),
            (
                json!([{"op": "replace", "path": "emails.value", "value": "x"}]),
                crate::ScimType::InvalidPath,
            ),
            (
                json!([{"op": "add", "path": "nickName", "value": "ok"}, {"op": "replace", "path": "userName", "value": null}]),
                crate::ScimType::Mutability,
            ),
        ] {
            let error = run(ops.clone()).unwrap_err();
            assert_eq!(error.scim_type, Some(kind), "{ops} gave {error:?}");
        }
        assert_eq!(user(), before);
        assert!(parse(&json!({"Operations": []})).is_err());
        assert!(
            parse(&json!({"schemas": ["urn:x"], "Operations": [{"op": "add", "value": {}}]}))
                .is_err()
        );
    }

    #[test]
    fn members_go_apart() {
        let ops = parse(&json!({"Operations": [
            {"op": "Add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
            {"op": "Remove", "path": "members[value eq \"a\"]"},
            {"op": "Remove", "path": "members", "value": [{"value": "b"}]},
            {"op": "Replace", "path": "displayName", "value": "G"},
            {"op": "Replace", "value": {"members": [{"value": "c"}], "displayName": "H"}},
            {"op": "Remove", "path": "members"},
        ]}))
        .unwrap();
        let (rest, changes) = split_members(&GROUP_TYPE, ops).unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(
            changes,
            vec![
                MemberChange::Add(vec!["a".into(), "b".into()]),
                MemberChange::Remove(vec!["a".into()]),
                MemberChange::Remove(vec!["b".into()]),
                MemberChange::Replace(vec!["c".into()]),
                MemberChange::RemoveAll,
            ]
        );
        let bad =
            parse(&json!({"Operations": [{"op": "Remove", "path": "members[display eq \"a\"]"}]}))
                .unwrap();
        assert!(split_members(&GROUP_TYPE, bad).is_err());
    }
}

//! Bulk requests (RFC 7644 §3.7): operations read from the request, their
//! targets, `bulkId` references (`"bulkId:qwerty"` standing for the id the
//! operation with that `bulkId` creates), the order that resolves them, and the
//! response. Each operation stands alone (it is not one transaction with the
//! others); `failOnErrors` stops the run after that many errors.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimResult, ScimType};
use crate::schema::{self, ResourceType};

pub const REFERENCE_PREFIX: &str = "bulkId:";
/// Longest `bulkId` accepted.
pub const MAX_BULK_ID: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub method: Method,
    pub bulk_id: Option<String>,
    /// The `If-Match` of the operation.
    pub version: Option<String>,
    pub path: String,
    pub data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    pub fail_on_errors: Option<u32>,
    pub operations: Vec<Operation>,
}

fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Reads a BulkRequest of at most `max_operations` operations (more is a 413).
pub fn parse(body: &Value, max_operations: usize) -> ScimResult<BulkRequest> {
    let Some(object) = body.as_object() else {
        return Err(ScimError::invalid_syntax("a bulk request is a JSON object"));
    };
    if let Some(schemas) = get_ci(object, "schemas") {
        let ok = schemas
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s == schema::BULK_REQUEST));
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must be [\"{}\"]",
                schema::BULK_REQUEST
            )));
        }
    }
    for key in object.keys() {
        if !["schemas", "failOnErrors", "Operations"]
            .iter()
            .any(|k| key.eq_ignore_ascii_case(k))
        {
            return Err(ScimError::invalid_syntax(format!(
                "{key} is not a member of a bulk request"
            )));
        }
    }
    let fail_on_errors = match get_ci(object, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) if n >= 1 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
            _ => {
                return Err(ScimError::invalid_value(
                    "failOnErrors is a positive integer",
                ));
            }
        },
        Some(_) => {
            return Err(ScimError::invalid_value(
                "failOnErrors is a positive integer",
            ));
        }
    };
    let Some(Value::Array(items)) = get_ci(object, "Operations") else {
        return Err(ScimError::invalid_syntax(
            "Operations is required: a list of operations",
        ));
    };
    if items.len() > max_operations {
        return Err(ScimError::new(
            413,
            Some(ScimType::TooMany),
            format!("a bulk request holds at most {max_operations} operations"),
        ));
    }
    if items.is_empty() {
        return Err(ScimError::invalid_syntax("Operations is empty"));
    }
    let mut seen = BTreeSet::new();
    let mut operations = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let operation = parse_operation(item).map_err(|e| ScimError {
            detail: format!("Operations[{index}]: {}", e.detail),
            ..e
        })?;
        if let Some(id) = &operation.bulk_id
            && !seen.insert(id.clone())
        {
            return Err(ScimError::invalid_value(format!(
                "Operations[{index}]: bulkId {id:?} is used twice"
            )));
        }
        operations.push(operation);
    }
    Ok(BulkRequest {
        fail_on_errors,
        operations,
    })
}

fn parse_operation(item: &Value) -> ScimResult<Operation> {
    let Some(object) = item.as_object() else {
        return Err(ScimError::invalid_syntax("an operation is an object"));
    };
    for key in object.keys() {
        if !["method", "bulkId", "version", "path", "data"]
            .iter()
            .any(|k| key.eq_ignore_ascii_case(k))
        {
            return Err(ScimError::invalid_syntax(format!(
                "{key} is not a member of an operation"
            )));
        }
    }
    let text = |key: &str| -> ScimResult<Option<String>> {
        match get_ci(object, key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ScimError::invalid_syntax(format!("{key} is a string"))),
        }
    };
    let method = match text("method")?.map(|m| m.to_ascii_uppercase()).as_deref() {
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("PATCH") => Method::Patch,
        Some("DELETE") => Method::Delete,
        _ => {
            return Err(ScimError::invalid_syntax(
                "method is POST, PUT, PATCH or DELETE",
            ));
        }
    };
    let bulk_id = text("bulkId")?;
    if let Some(id) = &bulk_id
        && (id.is_empty() || id.chars().count() > MAX_BULK_ID)
    {
        return Err(ScimError::invalid_value(format!(
            "a bulkId has 1 to {MAX_BULK_ID} characters"
        )));
    }
    if method == Method::Post && bulk_id.is_none() {
        return Err(ScimError::invalid_syntax("a POST needs a bulkId"));
    }
    let path = text("path")?.ok_or_else(|| ScimError::invalid_syntax("path is required"))?;
    let data = get_ci(object, "data").filter(|d| !d.is_null()).cloned();
    if method != Method::Delete && data.is_none() {
        return Err(ScimError::invalid_syntax(format!(
            "a {} needs data",
            method.as_str()
        )));
    }
    Ok(Operation {
        method,
        bulk_id,
        version: text("version")?,
        path,
        data,
    })
}

/// The resource type and the id (or `bulkId:` reference) an operation's path
/// names: `/Users` for a POST, `/Users/<id>` otherwise.
pub fn target(operation: &Operation) -> ScimResult<(ResourceType, Option<String>)> {
    let path = operation.path.trim_start_matches('/');
    let (endpoint, id) = match path.split_once('/') {
        Some((endpoint, id)) => (endpoint, Some(id.to_string())),
        None => (path, None),
    };
    let rt = schema::resource_type(endpoint).ok_or_else(|| {
        ScimError::invalid_path(format!("{} is not a resource endpoint", operation.path))
    })?;
    match (operation.method, &id) {
        (Method::Post, None) => Ok((rt, None)),
        (Method::Post, Some(_)) => Err(ScimError::invalid_path(
            "a POST names the endpoint, e.g. /Users",
        )),
        (_, Some(id)) if !id.is_empty() && !id.contains('/') => Ok((rt, Some(id.clone()))),
        _ => Err(ScimError::invalid_path(
            "name the resource, e.g. /Users/<id>",
        )),
    }
}

/// The bulkIds an operation refers to (in its path and anywhere in its data).
pub fn references(operation: &Operation) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    if let Some(id) = operation
        .path
        .rsplit('/')
        .next()
        .and_then(|s| s.strip_prefix(REFERENCE_PREFIX))
    {
        found.insert(id.to_string());
    }
    if let Some(data) = &operation.data {
        collect(data, &mut found);
    }
    found
}

fn collect(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(REFERENCE_PREFIX) {
                found.insert(id.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, found)),
        Value::Object(map) => map.values().for_each(|v| collect(v, found)),
        _ => {}
    }
}

/// The operation with its references replaced by the ids they stand for (all of
/// them must be known).
pub fn resolve(operation: &Operation, ids: &BTreeMap<String, String>) -> Operation {
    fn walk(value: &mut Value, ids: &BTreeMap<String, String>) {
        match value {
            Value::String(s) => {
                if let Some(id) = s.strip_prefix(REFERENCE_PREFIX).and_then(|r| ids.get(r)) {
                    *s = id.clone();
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, ids)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, ids)),
            _ => {}
        }
    }
    let mut resolved = operation.clone();
    if let Some((head, last)) = resolved.path.rsplit_once('/')
        && let Some(id) = last.strip_prefix(REFERENCE_PREFIX).and_then(|r| ids.get(r))
    {
        resolved.path = format!("{head}/{id}");
    }
    if let Some(data) = resolved.data.as_mut() {
        walk(data, ids);
    }
    resolved
}

/// The order to run operations in: each after the POSTs whose bulkIds it refers
/// to, otherwise as sent. Operations whose references can never resolve (an
/// unknown bulkId, a cycle) come last, paired with the reference that blocks them.
pub fn order(operations: &[Operation]) -> Vec<(usize, Option<String>)> {
    let defined: BTreeMap<&str, usize> = operations
        .iter()
        .enumerate()
        .filter(|(_, o)| o.method == Method::Post)
        .filter_map(|(i, o)| o.bulk_id.as_deref().map(|b| (b, i)))
        .collect();
    let references: Vec<BTreeSet<String>> = operations.iter().map(references).collect();
    let mut done = vec![false; operations.len()];
    let mut out = Vec::with_capacity(operations.len());
    loop {
        let next = (0..operations.len()).find(|&i| {
            !done[i]
                && references[i]
                    .iter()
                    .all(|r| defined.get(r.as_str()).is_some_and(|&d| d != i && done[d]))
        });
        match next {
            Some(i) => {
                done[i] = true;
                out.push((i, None));
            }
            None => break,
        }
    }
    for i in 0..operations.len() {
        if !done[i] {
            let blocking = references[i]
                .iter()
                .find(|r| defined.get(r.as_str()).is_none_or(|&d| d == i || !done[d]))
                .cloned();
            out.push((i, blocking));
        }
    }
    out
}

/// One operation's result in a BulkResponse.
pub fn result(
    operation: &Operation,
    location: Option<&str>,
    status: u16,
    version: Option<&str>,
    error: Option<&ScimError>,
) -> Value {
    let mut out = json!({ "method": operation.method.as_str(), "status": status.to_string() });
    if let Some(id) = &operation.bulk_id {
        out["bulkId"] = json!(id);
    }
    if let Some(location) = location {
        out["location"] = json!(location);
    }
    if let Some(version) = version {
        out["version"] = json!(version);
    }
    if let Some(error) = error {
        out["response"] = error.body();
    }
    out
}

pub fn response(results: Vec<Value>) -> Value {
    json!({ "schemas": [schema::BULK_RESPONSE], "Operations": results })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ops: Value) -> BulkRequest {
        parse(
            &json!({"schemas": [schema::BULK_REQUEST], "Operations": ops}),
            10,
        )
        .unwrap()
    }

    #[test]
    fn references_order_the_operations() {
        let r = request(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "G", "members": [{"value": "bulkId:u"}]}},
            {"method": "PATCH", "path": "/Users/bulkId:u", "data": {"Operations": []}},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "u"}},
            {"method": "DELETE", "path": "/Users/bulkId:nobody"},
            {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"members": [{"value": "bulkId:b"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"members": [{"value": "bulkId:a"}]}},
        ]));
        let order = order(&r.operations);
        assert_eq!(
            order,
            vec![
                (2, None),
                (0, None),
                (1, None),
                (3, Some("nobody".to_string())),
                (4, Some("b".to_string())),
                (5, Some("a".to_string())),
            ]
        );
        let ids = BTreeMap::from([("u".to_string(), "1234".to_string())]);
        let resolved = resolve(&r.operations[0], &ids);
        assert_eq!(resolved.data.unwrap()["members"][0]["value"], "1234");
        assert_eq!(resolve(&r.operations[1], &ids).path, "/Users/1234");
        assert_eq!(
            target(&r.operations[1]).unwrap().1.as_deref(),
            Some("bulkId:u")
        );
    }

    #[test]
    fn bad_requests() {
        let too_many =
            json!({"Operations": vec![json!({"method": "DELETE", "path": "/Users/x"}); 11]});
        assert_eq!(parse(&too_many, 10).unwrap_err().status, 413);
        for ops in [
            json!([]),
            json!([{"method": "POST", "path": "/Users", "data": {}}]),
            json!([{"method": "GET", "path": "/Users/x"}]),
            json!([{"method": "PUT", "path": "/Users/x"}]),
            json!([{"method": "DELETE"}]),
            json!([{"method": "DELETE", "path": "/Users/x", "extra": 1}]),
            json!([{"method": "POST", "path": "/Users", "bulkId": "a", "data": {}},
                   {"method": "POST", "path": "/Users", "bulkId": "a", "data": {}}]),
        ] {
            assert!(parse(&json!({"Operations": ops}), 10).is_err(), "{ops}");
        }
        let r = request(json!([{"method": "POST", "path": "/Users/x", "bulkId": "a", "data": {}}]));
        assert!(target(&r.operations[0]).is_err());
        let r = request(json!([{"method": "DELETE", "path": "/Devices/x"}]));
        assert!(target(&r.operations[0]).is_err());
    }
}

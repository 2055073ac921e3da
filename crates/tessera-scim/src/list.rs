//! Query parameters of a list or search (RFC 7644 §3.4.2, §3.4.3), the paging
//! they ask for (index-based, or the cursor draft's), and the ListResponse.

use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimResult, ScimType};
use crate::filter::{self, Filter};
use crate::path::AttrPath;
use crate::schema::{self, Resolved, ResourceType, Type};

/// Longest cursor accepted.
pub const MAX_CURSOR_LEN: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Ascending,
    Descending,
}

/// How the client pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    /// 1-based `startIndex`.
    Index { start: u64 },
    /// `cursor`: empty for the first page, else the `nextCursor` the last page gave.
    Cursor(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListRequest {
    pub filter: Option<Filter>,
    pub sort_by: Option<Resolved>,
    pub sort_order: SortOrder,
    pub paging: Paging,
    /// Page size: `count`, capped; `None` for the default.
    pub count: Option<u32>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// The raw parameters, from a query string or a SearchRequest body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawListRequest {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub cursor: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl RawListRequest {
    /// The parameter a name (any case) stands for.
    fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        Some(match key.to_ascii_lowercase().as_str() {
            "filter" => &mut self.filter,
            "sortby" => &mut self.sort_by,
            "sortorder" => &mut self.sort_order,
            "startindex" => &mut self.start_index,
            "count" => &mut self.count,
            "cursor" => &mut self.cursor,
            "attributes" => &mut self.attributes,
            "excludedattributes" => &mut self.excluded_attributes,
            _ => return None,
        })
    }

    /// From query parameters (names matched case-insensitively); unknown ones are
    /// an error.
    pub fn from_query(pairs: &[(String, String)]) -> ScimResult<RawListRequest> {
        let mut raw = RawListRequest::default();
        for (key, value) in pairs {
            let Some(slot) = raw.slot(key) else {
                return Err(ScimError::invalid_value(format!(
                    "{key} is not a query parameter of a list"
                )));
            };
            if slot.is_some() {
                return Err(ScimError::invalid_value(format!("{key} is given twice")));
            }
            *slot = Some(value.clone());
        }
        Ok(raw)
    }

    /// From a SearchRequest body (`POST /.search`).
    pub fn from_search(body: &Value) -> ScimResult<RawListRequest> {
        let Some(object) = body.as_object() else {
            return Err(ScimError::invalid_syntax(
                "a search request is a JSON object",
            ));
        };
        let mut raw = RawListRequest::default();
        for (key, value) in object {
            let text = |v: &Value| -> ScimResult<String> {
                match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Array(items) => items
                        .iter()
                        .map(|i| {
                            i.as_str().map(str::to_string).ok_or_else(|| {
                                ScimError::invalid_syntax(format!("{key} lists strings"))
                            })
                        })
                        .collect::<ScimResult<Vec<_>>>()
                        .map(|v| v.join(",")),
                    _ => Err(ScimError::invalid_syntax(format!(
                        "{key} has the wrong type"
                    ))),
                }
            };
            if key.eq_ignore_ascii_case("schemas") {
                let ok = value
                    .as_array()
                    .is_some_and(|l| l.iter().any(|s| s == schema::SEARCH_REQUEST));
                if !ok {
                    return Err(ScimError::invalid_syntax(format!(
                        "schemas must be [\"{}\"]",
                        schema::SEARCH_REQUEST
                    )));
                }
                continue;
            }
            let Some(slot) = raw.slot(key) else {
                return Err(ScimError::invalid_syntax(format!(
                    "{key} is not a member of a search request"
                )));
            };
            if !value.is_null() {
                *slot = Some(text(value)?);
            }
        }
        Ok(raw)
    }

    /// Checks the parameters against a resource type. `max` caps `count`.
    pub fn read(&self, rt: &ResourceType, max: u32) -> ScimResult<ListRequest> {
        let filter = match &self.filter {
            Some(text) => {
                let f = filter::parse(text)?;
                crate::eval::check(rt, &f)?;
                Some(f)
            }
            None => None,
        };
        let sort_by = match self
            .sort_by
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(text) => {
                let resolved = rt
                    .resolve(
                        &AttrPath::parse(text).map_err(|e| ScimError::invalid_value(e.detail))?,
                    )
                    .map_err(|e| ScimError::invalid_value(e.detail))?;
                let leaf = crate::eval::leaf_for_compare(resolved.attribute, resolved.sub);
                if leaf.kind == Type::Complex || leaf.kind == Type::Binary {
                    return Err(ScimError::invalid_value(format!(
                        "{text} cannot be sorted by"
                    )));
                }
                Some(resolved)
            }
            None => None,
        };
        let sort_order = match self
            .sort_order
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("ascending") => SortOrder::Ascending,
            Some("descending") => SortOrder::Descending,
            Some(_) => {
                return Err(ScimError::invalid_value(
                    "sortOrder is ascending or descending",
                ));
            }
        };
        let number = |name: &str, text: &Option<String>| -> ScimResult<Option<i64>> {
            match text.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(t) => t
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer"))),
            }
        };
        // §3.4.2.4: a startIndex below 1 is 1; a negative count is 0.
        let start = number("startIndex", &self.start_index)?.map(|n| n.max(1) as u64);
        let count = number("count", &self.count)?.map(|n| n.clamp(0, i64::from(max)) as u32);
        let paging = match (&self.cursor, start) {
            (Some(_), Some(_)) => {
                return Err(ScimError::invalid_value(
                    "give startIndex or cursor, not both",
                ));
            }
            (Some(cursor), None) => {
                if cursor.len() > MAX_CURSOR_LEN {
                    return Err(ScimError::bad(
                        ScimType::InvalidCursor,
                        "the cursor is not one this server gave",
                    ));
                }
                Paging::Cursor(cursor.clone())
            }
            (None, start) => Paging::Index {
                start: start.unwrap_or(1),
            },
        };
        Ok(ListRequest {
            filter,
            sort_by,
            sort_order,
            paging,
            count,
            attributes: self.attributes.clone(),
            excluded_attributes: self.excluded_attributes.clone(),
        })
    }
}

/// The ListResponse for one page.
pub fn list_response(
    total: u64,
    start_index: Option<u64>,
    resources: Vec<Map<String, Value>>,
    next_cursor: Option<String>,
    previous_cursor: Option<String>,
) -> Value {
    let mut body = json!({
        "schemas": [schema::LIST_RESPONSE],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    if let Some(start) = start_index {
        body["startIndex"] = json!(start);
    }
    if let Some(next) = next_cursor {
        body["nextCursor"] = json!(next);
    }
    if let Some(previous) = previous_cursor {
        body["previousCursor"] = json!(previous);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::USER_TYPE;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn query_parameters() {
        let raw = RawListRequest::from_query(&pairs(&[
            ("filter", "userName sw \"b\""),
            ("sortBy", "name.familyName"),
            ("sortOrder", "Descending"),
            ("startIndex", "0"),
            ("count", "5000"),
        ]))
        .unwrap();
        let request = raw.read(&USER_TYPE, 1000).unwrap();
        assert_eq!(request.paging, Paging::Index { start: 1 });
        assert_eq!(request.count, Some(1000));
        assert_eq!(request.sort_order, SortOrder::Descending);
        assert_eq!(request.sort_by.unwrap().text(), "name.familyName");
        let negative = RawListRequest::from_query(&pairs(&[("count", "-4")])).unwrap();
        assert_eq!(negative.read(&USER_TYPE, 1000).unwrap().count, Some(0));
        for bad in [
            vec![("nosuch", "1")],
            vec![("count", "x")],
            vec![("sortBy", "name")],
            vec![("sortOrder", "up")],
            vec![("filter", "userName eq")],
            vec![("cursor", ""), ("startIndex", "1")],
            vec![("count", "1"), ("COUNT", "2")],
        ] {
            let result =
                RawListRequest::from_query(&pairs(&bad)).and_then(|r| r.read(&USER_TYPE, 100));
            assert!(result.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn search_bodies() {
        let raw = RawListRequest::from_search(&json!({
            "schemas": [schema::SEARCH_REQUEST],
            "attributes": ["userName", "name"],
            "filter": "userName pr",
            "startIndex": 1, "count": 10,
        }))
        .unwrap();
        assert_eq!(raw.attributes.as_deref(), Some("userName,name"));
        assert_eq!(raw.count.as_deref(), Some("10"));
        assert!(RawListRequest::from_search(&json!({"nosuch": 1})).is_err());
    }
}

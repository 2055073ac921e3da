//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) applied to a
//! resource about to be returned. `id` and `schemas` are always returned,
//! `returned: never` attributes never are, `returned: request` ones only when asked.

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimResult};
use crate::path::AttrPath;
use crate::schema::{Attribute, Resolved, ResourceType, Returned};

/// Most attributes one list names.
pub const MAX_ATTRIBUTES: usize = 100;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    /// Only these (besides what is always returned), when not empty.
    pub attributes: Vec<Resolved>,
    pub excluded: Vec<Resolved>,
}

impl Projection {
    /// Reads the two comma-separated lists; unknown attributes are an error.
    pub fn parse(
        rt: &ResourceType,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> ScimResult<Projection> {
        Projection::read(rt, attributes, excluded, false)
    }

    /// As [`parse`](Self::parse), skipping names `rt` does not have: a search at
    /// the root names attributes of several resource types (RFC 7644 §3.4.3). A
    /// list of only such names still selects (so returns only what is always
    /// returned).
    pub fn parse_lenient(
        rt: &ResourceType,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> ScimResult<Projection> {
        Projection::read(rt, attributes, excluded, true)
    }

    fn read(
        rt: &ResourceType,
        attributes: Option<&str>,
        excluded: Option<&str>,
        lenient: bool,
    ) -> ScimResult<Projection> {
        let read = |text: Option<&str>| -> ScimResult<Vec<Resolved>> {
            let Some(text) = text else {
                return Ok(vec![]);
            };
            let names: Vec<&str> = text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if names.len() > MAX_ATTRIBUTES {
                return Err(ScimError::invalid_value(format!(
                    "name at most {MAX_ATTRIBUTES} attributes"
                )));
            }
            names
                .into_iter()
                .map(|name| {
                    if let Some(urn) = rt.extension_named(name) {
                        // A whole extension: every attribute of it.
                        let schema = rt
                            .schema_of(urn)
                            .ok_or_else(|| ScimError::invalid_path(name))?;
                        return Ok(schema
                            .attributes
                            .iter()
                            .map(|a| Resolved {
                                extension: Some(urn),
                                attribute: a,
                                sub: None,
                            })
                            .collect::<Vec<_>>());
                    }
                    let path = AttrPath::parse(name)?;
                    match rt.resolve(&path) {
                        Ok(resolved) => Ok(vec![resolved]),
                        Err(_) if lenient => Ok(vec![]),
                        Err(e) => Err(e),
                    }
                })
                .collect::<ScimResult<Vec<Vec<Resolved>>>>()
                .map(|v| v.into_iter().flatten().collect())
        };
        let mut projection = Projection {
            attributes: read(attributes)?,
            excluded: read(excluded)?,
        };
        if lenient
            && projection.attributes.is_empty()
            && attributes.is_some_and(|a| !a.trim().is_empty())
        {
            // Every name belonged to other types: select what is always returned.
            projection.attributes.push(Resolved {
                extension: None,
                attribute: &crate::schema::ID,
                sub: None,
            });
        }
        Ok(projection)
    }

    /// Applies the projection to a resource in its wire form (schemas, id, meta,
    /// attributes, extensions under their URNs).
    pub fn apply(&self, rt: &ResourceType, resource: &mut Map<String, Value>) {
        let mut keep_extensions = Vec::new();
        for ext in rt.extensions {
            if let Some(Value::Object(object)) = resource.get_mut(ext.id) {
                self.filter(object, ext.attributes, Some(ext.id));
                if !object.is_empty() {
                    keep_extensions.push(ext.id);
                } else {
                    resource.remove(ext.id);
                }
            }
        }
        let core: Vec<&'static Attribute> = rt
            .schema
            .attributes
            .iter()
            .chain([&crate::schema::EXTERNAL_ID, &crate::schema::META])
            .collect();
        resource.retain(|key, _| {
            key == "schemas"
                || key == "id"
                || rt.extensions.iter().any(|e| e.id == key)
                || core.iter().any(|a| a.name == key)
        });
        for attribute in core {
            if let Some(value) = resource.get_mut(attribute.name) {
                match self.decide(attribute, None, None) {
                    Keep::All => {}
                    Keep::Nothing => {
                        resource.remove(attribute.name);
                    }
                    Keep::Some(subs) => narrow(value, &subs),
                }
            }
        }
        if let Some(Value::Array(schemas)) = resource.get_mut("schemas") {
            schemas.retain(|s| {
                s.as_str()
                    .is_none_or(|s| s == rt.schema.id || keep_extensions.contains(&s))
            });
        }
    }

    fn filter(
        &self,
        object: &mut Map<String, Value>,
        attributes: &'static [Attribute],
        extension: Option<&'static str>,
    ) {
        object.retain(|key, _| attributes.iter().any(|a| a.name == key));
        for attribute in attributes {
            if let Some(value) = object.get_mut(attribute.name) {
                match self.decide(attribute, None, extension) {
                    Keep::All => {}
                    Keep::Nothing => {
                        object.remove(attribute.name);
                    }
                    Keep::Some(subs) => narrow(value, &subs),
                }
            }
        }
    }

    fn decide(
        &self,
        attribute: &'static Attribute,
        _sub: Option<&Attribute>,
        extension: Option<&'static str>,
    ) -> Keep {
        let same = |r: &Resolved| r.attribute.name == attribute.name && r.extension == extension;
        if attribute.returned == Returned::Never {
            return Keep::Nothing;
        }
        if attribute.returned == Returned::Always || attribute.name == "id" {
            return Keep::All;
        }
        if !self.attributes.is_empty() {
            let named: Vec<&Resolved> = self.attributes.iter().filter(|r| same(r)).collect();
            if named.is_empty() {
                return Keep::Nothing;
            }
            if named.iter().any(|r| r.sub.is_none()) {
                return Keep::All;
            }
            return Keep::Some(named.iter().filter_map(|r| r.sub.map(|s| s.name)).collect());
        }
        if attribute.returned == Returned::Request {
            return Keep::Nothing;
        }
        let excluded: Vec<&Resolved> = self.excluded.iter().filter(|r| same(r)).collect();
        if excluded.iter().any(|r| r.sub.is_none()) {
            return Keep::Nothing;
        }
        if !excluded.is_empty() {
            let drop: Vec<&str> = excluded
                .iter()
                .filter_map(|r| r.sub.map(|s| s.name))
                .collect();
            let keep = attribute
                .sub_attributes
                .iter()
                .map(|s| s.name)
                .filter(|n| !drop.contains(n))
                .collect();
            return Keep::Some(keep);
        }
        Keep::All
    }
}

enum Keep {
    All,
    Nothing,
    Some(Vec<&'static str>),
}

fn narrow(value: &mut Value, subs: &[&str]) {
    match value {
        Value::Object(object) => object.retain(|k, _| subs.contains(&k.as_str())),
        Value::Array(items) => {
            for item in items.iter_mut() {
                narrow(item, subs);
            }
            items.retain(|i| i.as_object().is_none_or(|o| !o.is_empty()));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER, USER_TYPE};
    use serde_json::json;

    fn wire() -> Map<String, Value> {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER],
            "id": "1", "userName": "b", "externalId": "e", "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "a@b", "type": "work"}],
            "meta": {"resourceType": "User"},
            ENTERPRISE_USER: {"department": "D", "employeeNumber": "7"},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn attributes_and_exclusions() {
        let mut r = wire();
        Projection::parse(
            &USER_TYPE,
            Some("userName,name.givenName,employeeNumber"),
            None,
        )
        .unwrap()
        .apply(&USER_TYPE, &mut r);
        assert_eq!(
            Value::Object(r),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER],
                "id": "1", "userName": "b", "name": {"givenName": "G"},
                ENTERPRISE_USER: {"employeeNumber": "7"},
            })
        );
        let mut r = wire();
        Projection::parse(&USER_TYPE, None, Some("emails, name.familyName, meta,"))
            .unwrap()
            .apply(&USER_TYPE, &mut r);
        assert!(r.get("emails").is_none() && r.get("meta").is_none());
        assert_eq!(r["name"], json!({"givenName": "G"}));
        assert!(Projection::parse(&USER_TYPE, Some("nosuch"), None).is_err());
        let mut r = wire();
        Projection::parse(&USER_TYPE, None, Some("id,userName"))
            .unwrap()
            .apply(&USER_TYPE, &mut r);
        assert_eq!(r["id"], "1", "id is always returned");
    }
}

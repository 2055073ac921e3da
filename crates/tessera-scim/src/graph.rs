//! The default mapping between SCIM resources and the directory's Graph-shaped
//! attributes (Graph JSON is Tessera's native format; SCIM maps to and from it).
//!
//! A provisioning client's resource is kept as it sent it (the *source*). The
//! directory attributes are computed from it ([`user_to_graph`]); what a client
//! reads back is its source with every mapped attribute that changed in the
//! directory since (an administrator disabled the user, say) taken from the
//! directory ([`overlay_user`]). A user without a source (made in the console)
//! reads as the directory maps back ([`user_from_graph`]).
//!
//! | Graph attribute | SCIM attribute |
//! |---|---|
//! | userPrincipalName | userName (`@` and the default domain added when it has none) |
//! | displayName | displayName, else name.formatted, else given and family name, else userName |
//! | givenName, surname | name.givenName, name.familyName |
//! | accountEnabled | active (true when absent) |
//! | mail | the primary email, else the work one, else the first |
//! | jobTitle | title |
//! | employeeType | userType |
//! | employeeId, department, companyName | enterprise employeeNumber, department, organization |
//! | employeeOrgData.division, .costCenter | enterprise division, costCenter |
//! | managerId | enterprise manager.value (a user's id) |
//! | (group) displayName | displayName |

use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimResult};
use crate::schema::ENTERPRISE_USER;

/// The tenant's choices the mapping needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserMapping<'a> {
    /// Added to a userName without `@` to make the user principal name.
    pub default_domain: Option<&'a str>,
}

/// The Graph user attributes the mapping writes.
pub const USER_ATTRIBUTES: [&str; 13] = [
    "userPrincipalName",
    "displayName",
    "givenName",
    "surname",
    "accountEnabled",
    "mail",
    "jobTitle",
    "employeeType",
    "employeeId",
    "department",
    "companyName",
    "employeeOrgData",
    "managerId",
];

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn sub<'a>(object: &'a Map<String, Value>, key: &str, name: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_object)
        .and_then(|o| text(o, name))
}

fn enterprise(source: &Map<String, Value>) -> Option<&Map<String, Value>> {
    source.get(ENTERPRISE_USER).and_then(Value::as_object)
}

fn opt(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::String(s.to_string()))
}

/// The index of the email `mail` maps to: the primary one, else the work one, else
/// the first.
fn mail_index(emails: &[Value]) -> Option<usize> {
    let with_value = |i: &usize| emails[*i].get("value").and_then(Value::as_str).is_some();
    (0..emails.len())
        .filter(with_value)
        .find(|&i| emails[i].get("primary") == Some(&Value::Bool(true)))
        .or_else(|| {
            (0..emails.len())
                .filter(with_value)
                .find(|&i| emails[i].get("type").and_then(Value::as_str) == Some("work"))
        })
        .or_else(|| (0..emails.len()).find(with_value))
}

/// The directory attributes a canonical SCIM user maps to: every attribute of
/// [`USER_ATTRIBUTES`], `null` where unset.
pub fn user_to_graph(
    source: &Map<String, Value>,
    mapping: UserMapping<'_>,
) -> ScimResult<Map<String, Value>> {
    let user_name =
        text(source, "userName").ok_or_else(|| ScimError::invalid_value("userName is required"))?;
    let upn = if user_name.contains('@') {
        user_name.to_string()
    } else {
        match mapping.default_domain {
            Some(domain) => format!("{user_name}@{domain}"),
            None => {
                return Err(ScimError::invalid_value(format!(
                    "userName {user_name:?} has no domain, and provisioning has no default domain to add \
                     (set it with `tessera provisioning settings --default-domain example.com`)"
                )));
            }
        }
    };
    let given = sub(source, "name", "givenName");
    let family = sub(source, "name", "familyName");
    let display = text(source, "displayName")
        .map(str::to_string)
        .or_else(|| sub(source, "name", "formatted").map(str::to_string))
        .or_else(|| match (given, family) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
            (None, None) => None,
        })
        .unwrap_or_else(|| user_name.to_string());
    let emails = source
        .get("emails")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mail = mail_index(&emails).and_then(|i| emails[i].get("value").and_then(Value::as_str));
    let ent = enterprise(source);
    let ent_text = |name: &str| ent.and_then(|e| text(e, name));
    let manager = match ent.and_then(|e| sub(e, "manager", "value")) {
        None => Value::Null,
        Some(id) => {
            if !is_uuid(id) {
                return Err(ScimError::invalid_value(format!(
                    "manager.value {id:?} is not the id of a user"
                )));
            }
            Value::String(id.to_ascii_lowercase())
        }
    };
    let org = match (ent_text("division"), ent_text("costCenter")) {
        (None, None) => Value::Null,
        (division, cost_center) => {
            let mut m = Map::new();
            if let Some(d) = division {
                m.insert("division".to_string(), json!(d));
            }
            if let Some(c) = cost_center {
                m.insert("costCenter".to_string(), json!(c));
            }
            Value::Object(m)
        }
    };
    let mut graph = Map::new();
    graph.insert("userPrincipalName".into(), json!(upn));
    graph.insert("displayName".into(), json!(display));
    graph.insert("givenName".into(), opt(given));
    graph.insert("surname".into(), opt(family));
    graph.insert(
        "accountEnabled".into(),
        json!(
            source
                .get("active")
                .and_then(Value::as_bool)
                .unwrap_or(true)
        ),
    );
    graph.insert("mail".into(), opt(mail));
    graph.insert("jobTitle".into(), opt(text(source, "title")));
    graph.insert("employeeType".into(), opt(text(source, "userType")));
    graph.insert("employeeId".into(), opt(ent_text("employeeNumber")));
    graph.insert("department".into(), opt(ent_text("department")));
    graph.insert("companyName".into(), opt(ent_text("organization")));
    graph.insert("employeeOrgData".into(), org);
    graph.insert("managerId".into(), manager);
    Ok(graph)
}

fn is_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A user without a source, as the directory's attributes map back.
pub fn user_from_graph(graph: &Map<String, Value>) -> Map<String, Value> {
    let mut view = Map::new();
    for attribute in USER_ATTRIBUTES {
        set_from_graph(
            &mut view,
            attribute,
            graph.get(attribute).unwrap_or(&Value::Null),
        );
    }
    view
}

/// What a client reads back: its source, with each mapped attribute the directory
/// holds differently (changed outside provisioning) taken from the directory.
pub fn overlay_user(
    source: &Map<String, Value>,
    graph: &Map<String, Value>,
    mapping: UserMapping<'_>,
) -> Map<String, Value> {
    // A source that no longer maps (the default domain was removed since) still
    // keeps what it holds: only its user principal name is unknown.
    let expected = user_to_graph(source, mapping).unwrap_or_else(|_| {
        let placeholder = UserMapping {
            default_domain: Some("invalid"),
        };
        let mut expected = user_to_graph(source, placeholder).unwrap_or_default();
        expected.insert("userPrincipalName".into(), Value::Null);
        expected
    });
    let mut view = source.clone();
    for attribute in USER_ATTRIBUTES {
        let actual = graph.get(attribute).unwrap_or(&Value::Null);
        let wanted = expected.get(attribute).unwrap_or(&Value::Null);
        if !same(attribute, actual, wanted) {
            set_from_graph(&mut view, attribute, actual);
        }
    }
    view
}

fn same(attribute: &str, a: &Value, b: &Value) -> bool {
    match attribute {
        // The directory compares these without regard to case.
        "userPrincipalName" | "managerId" => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => a == b,
        },
        _ => a == b,
    }
}

fn set_text(object: &mut Map<String, Value>, key: &str, value: &Value) {
    match value.as_str() {
        Some(s) => {
            object.insert(key.to_string(), json!(s));
        }
        None => {
            object.remove(key);
        }
    }
}

fn with_object(
    view: &mut Map<String, Value>,
    key: &str,
    change: impl FnOnce(&mut Map<String, Value>),
) {
    let mut object = view
        .get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    change(&mut object);
    if object.is_empty() {
        view.remove(key);
    } else {
        view.insert(key.to_string(), Value::Object(object));
    }
}

/// Sets the SCIM attribute(s) a Graph attribute maps to from its value.
fn set_from_graph(view: &mut Map<String, Value>, attribute: &str, value: &Value) {
    match attribute {
        "userPrincipalName" => set_text(view, "userName", value),
        "displayName" => set_text(view, "displayName", value),
        "givenName" => with_object(view, "name", |n| set_text(n, "givenName", value)),
        "surname" => with_object(view, "name", |n| set_text(n, "familyName", value)),
        "accountEnabled" => {
            view.insert("active".to_string(), json!(value.as_bool().unwrap_or(true)));
        }
        "mail" => {
            let mut emails = view
                .get("emails")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            match (mail_index(&emails), value.as_str()) {
                (Some(i), Some(mail)) => emails[i]["value"] = json!(mail),
                (Some(i), None) => {
                    emails.remove(i);
                }
                (None, Some(mail)) => {
                    emails.push(json!({"value": mail, "type": "work", "primary": true}))
                }
                (None, None) => {}
            }
            if emails.is_empty() {
                view.remove("emails");
            } else {
                view.insert("emails".to_string(), Value::Array(emails));
            }
        }
        "jobTitle" => set_text(view, "title", value),
        "employeeType" => set_text(view, "userType", value),
        "employeeId" => with_object(view, ENTERPRISE_USER, |e| {
            set_text(e, "employeeNumber", value)
        }),
        "department" => with_object(view, ENTERPRISE_USER, |e| set_text(e, "department", value)),
        "companyName" => with_object(view, ENTERPRISE_USER, |e| {
            set_text(e, "organization", value)
        }),
        "employeeOrgData" => with_object(view, ENTERPRISE_USER, |e| {
            set_text(e, "division", value.get("division").unwrap_or(&Value::Null));
            set_text(
                e,
                "costCenter",
                value.get("costCenter").unwrap_or(&Value::Null),
            );
        }),
        "managerId" => with_object(view, ENTERPRISE_USER, |e| match value.as_str() {
            Some(id) => {
                e.insert("manager".to_string(), json!({ "value": id }));
            }
            None => {
                e.remove("manager");
            }
        }),
        _ => {}
    }
}

/// The Graph group attributes a canonical SCIM group maps to.
pub fn group_to_graph(source: &Map<String, Value>) -> ScimResult<Map<String, Value>> {
    let name = text(source, "displayName")
        .ok_or_else(|| ScimError::invalid_value("displayName is required"))?;
    let mut graph = Map::new();
    graph.insert("displayName".into(), json!(name));
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Map<String, Value> {
        json!({
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "home@x.org", "type": "home"}, {"value": "b@example.com", "type": "work"}],
            "nickName": "Babs",
            ENTERPRISE_USER: {"employeeNumber": "701984", "division": "Tours",
                              "manager": {"value": "26118915-6090-4610-87E4-49D8CA9F808D", "$ref": "../Users/x"}},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    const DOMAIN: UserMapping<'static> = UserMapping {
        default_domain: Some("example.com"),
    };

    #[test]
    fn a_source_maps_to_graph() {
        let graph = user_to_graph(&source(), DOMAIN).unwrap();
        assert_eq!(graph["userPrincipalName"], "bjensen@example.com");
        assert_eq!(graph["displayName"], "Barbara Jensen");
        assert_eq!(
            graph["mail"], "b@example.com",
            "the work email when none is primary"
        );
        assert_eq!(graph["accountEnabled"], true);
        assert_eq!(graph["employeeOrgData"], json!({"division": "Tours"}));
        assert_eq!(graph["managerId"], "26118915-6090-4610-87e4-49d8ca9f808d");
        assert_eq!(graph["jobTitle"], Value::Null);
        assert!(
            user_to_graph(&source(), UserMapping::default()).is_err(),
            "no domain to add"
        );
        let mut bad = source();
        bad[ENTERPRISE_USER]["manager"]["value"] = json!("not-an-id");
        assert!(user_to_graph(&bad, DOMAIN).is_err());
    }

    #[test]
    fn reading_back_keeps_the_source_unless_the_directory_changed() {
        let graph = user_to_graph(&source(), DOMAIN).unwrap();
        assert_eq!(overlay_user(&source(), &graph, DOMAIN), source());
        let mut changed = graph.clone();
        changed["accountEnabled"] = json!(false);
        changed["mail"] = json!("new@example.com");
        changed["employeeOrgData"] = Value::Null;
        let view = overlay_user(&source(), &changed, DOMAIN);
        assert_eq!(view["active"], false);
        assert_eq!(view["emails"][1]["value"], "new@example.com");
        assert_eq!(view[ENTERPRISE_USER].get("division"), None);
        assert_eq!(
            view["nickName"], "Babs",
            "what the directory does not hold stays"
        );
    }

    #[test]
    fn a_source_that_no_longer_maps_keeps_its_attributes() {
        let graph = user_to_graph(&source(), DOMAIN).unwrap();
        let view = overlay_user(&source(), &graph, UserMapping::default());
        assert_eq!(view["userName"], "bjensen@example.com", "the directory's");
        assert_eq!(view["nickName"], "Babs");
        assert_eq!(view["emails"], source()["emails"]);
    }

    #[test]
    fn a_user_without_source() {
        let graph = json!({"userPrincipalName": "a@b.c", "displayName": "A", "accountEnabled": true,
                           "mail": "a@b.c", "department": "D"});
        let view = user_from_graph(graph.as_object().unwrap());
        assert_eq!(
            Value::Object(view),
            json!({"userName": "a@b.c", "displayName": "A", "active": true,
                   "emails": [{"value": "a@b.c", "type": "work", "primary": true}],
                   ENTERPRISE_USER: {"department": "D"}})
        );
    }
}

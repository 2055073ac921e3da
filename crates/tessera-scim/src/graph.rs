//! SCIM resources read back from the directory's Graph-shaped attributes (Graph
//! JSON is Tessera's native format).
//!
//! A provisioning client's resource is kept as it sent it (the *source*); the
//! directory's attributes are computed from it by the tenant's attribute mapping
//! (the provisioning context's). What a client reads back is its source with each
//! attribute the default mapping carries, and that the directory holds differently
//! (an administrator disabled the user, say), taken from the directory
//! ([`overlay_user`]). A user without a source (made in the console) reads as the
//! directory maps back ([`user_from_graph`]).
//!
//! | Graph attribute | SCIM attribute it reads back into |
//! |---|---|
//! | userPrincipalName | userName |
//! | displayName | displayName |
//! | givenName, surname | name.givenName, name.familyName |
//! | accountEnabled | active |
//! | mail | the primary email, else the work one, else the first |
//! | jobTitle | title |
//! | employeeType | userType |
//! | employeeId, department, companyName | enterprise employeeNumber, department, organization |
//! | employeeOrgData.division, .costCenter | enterprise division, costCenter |
//! | managerId | enterprise manager.value |
//! | (group) displayName | displayName |

use serde_json::{Map, Value, json};

use crate::error::{ScimError, ScimResult};
use crate::schema::ENTERPRISE_USER;

/// The Graph user attributes a client reads back from the directory.
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

/// The index of the email `mail` maps to: the primary one, else the work one, else
/// the first.
fn mail_index(emails: &[Value]) -> Option<usize> {
    let with_value = |i: &usize| emails[*i].get("value").and_then(Value::as_str).is_some();
    (0..emails.len())
        .filter(with_value)
        .find(|&i| emails[i].get("primary") == Some(&Value::Bool(true)))
        .or_else(|| {
            (0..emails.len()).filter(with_value).find(|&i| {
                // `type` is not case-exact (as the filter the mapping uses).
                emails[i]
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("work"))
            })
        })
        .or_else(|| (0..emails.len()).find(with_value))
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

/// What a client reads back: its source, with each attribute `overlaid` (the
/// ones the default mapping carries) that the directory holds differently from
/// what the mapping makes of the source (`expected`) taken from the directory.
pub fn overlay_user(
    source: &Map<String, Value>,
    graph: &Map<String, Value>,
    expected: &Map<String, Value>,
    overlaid: &dyn Fn(&str) -> bool,
) -> Map<String, Value> {
    let mut view = source.clone();
    for attribute in USER_ATTRIBUTES {
        if !overlaid(attribute) {
            continue;
        }
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
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "home@x.org", "type": "home"}, {"value": "b@example.com", "type": "work"}],
            "nickName": "Babs",
            ENTERPRISE_USER: {"employeeNumber": "701984", "division": "Tours"},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    /// What the default mapping makes of `source()`.
    fn expected() -> Map<String, Value> {
        json!({"userPrincipalName": "bjensen@example.com", "displayName": "Barbara Jensen",
               "givenName": "Barbara", "surname": "Jensen", "accountEnabled": true,
               "mail": "b@example.com", "employeeId": "701984",
               "employeeOrgData": {"division": "Tours"}})
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn reading_back_keeps_the_source_unless_the_directory_changed() {
        let all = |_: &str| true;
        assert_eq!(
            overlay_user(&source(), &expected(), &expected(), &all),
            source()
        );
        let mut changed = expected();
        changed["accountEnabled"] = json!(false);
        changed["mail"] = json!("new@example.com");
        changed["employeeOrgData"] = Value::Null;
        let view = overlay_user(&source(), &changed, &expected(), &all);
        assert_eq!(view["active"], false);
        assert_eq!(view["emails"][1]["value"], "new@example.com");
        assert_eq!(view[ENTERPRISE_USER].get("division"), None);
        assert_eq!(
            view["nickName"], "Babs",
            "what the directory does not hold stays"
        );
        let only_mail = |a: &str| a == "mail";
        let view = overlay_user(&source(), &changed, &expected(), &only_mail);
        assert_eq!(
            view.get("active"),
            None,
            "an attribute a custom mapping writes stays as sent"
        );
        assert_eq!(view["emails"][1]["value"], "new@example.com");
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

use std::collections::BTreeMap;

use serde_json::json;
use time::OffsetDateTime;

use super::*;
use crate::targets::DirectoryUsers;

struct Columns(&'static [&'static str]);

impl SourceSchema for Columns {
    fn check(&self, attribute: &str) -> Result<(), String> {
        if self.0.contains(&attribute) {
            Ok(())
        } else {
            Err(format!("the source has no attribute {attribute}"))
        }
    }
}

struct Row(BTreeMap<&'static str, &'static str>);

impl Attributes for Row {
    fn value(&self, name: &str) -> Val {
        self.0
            .get(name)
            .map_or(Val::Null, |v| Val::Text((*v).to_string()))
    }
}

const COLUMNS: Columns = Columns(&["first", "last", "dept", "start", "level", "boss", "active"]);

fn custom(set: &str, name: &str) -> Option<crate::targets::CustomTarget> {
    (set.eq_ignore_ascii_case("HR") && name.eq_ignore_ascii_case("level"))
        .then(|| ("HR".to_string(), "level".to_string(), TargetType::Integer))
}

fn users() -> DirectoryUsers<'static> {
    DirectoryUsers { custom: &custom }
}

fn rule(target: &str, expression: &str) -> AttributeMapping {
    AttributeMapping {
        target: target.into(),
        expression: expression.into(),
        default_value: None,
        apply: Apply::Always,
    }
}

fn mapping() -> Mapping {
    Mapping {
        attributes: vec![
            rule(
                "userPrincipalName",
                r#"ToLower(Join(".", [first], [last]))@contoso.com"#,
            ),
            rule("displayName", r#"Join(" ", [first], [last])"#),
            AttributeMapping {
                default_value: Some("Unassigned".into()),
                ..rule("department", "[dept]")
            },
            rule(
                "employeeHireDate",
                r#"FormatDateTime([start], "M/d/yyyy", "yyyy-MM-dd")"#,
            ),
            rule("customSecurityAttributes.hr.LEVEL", "[level]"),
            rule("managerId", "IgnoreFlowIfNullOrEmpty([boss])"),
            AttributeMapping {
                apply: Apply::OnCreate,
                ..rule("accountEnabled", "[active]")
            },
            rule("employeeOrgData.division", r#""Tours""#),
        ],
    }
}

fn env() -> Env {
    Env {
        now: OffsetDateTime::UNIX_EPOCH,
    }
}

#[test]
fn a_mapping_applies_to_a_row() {
    let compiled = mapping().compile(&COLUMNS, &users()).unwrap();
    let row = Row(BTreeMap::from([
        ("first", "Ada"),
        ("last", "Lovelace"),
        ("start", "12/1/2026"),
        ("level", "7"),
        ("active", "TRUE"),
    ]));
    let out = compiled.apply(&row, &env(), true).unwrap();
    let set: Vec<(&str, Value)> = out
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Set(v) => Some((t.name.as_str(), v.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        Value::Object(graph_patch(set)),
        json!({
            "userPrincipalName": "ada.lovelace@contoso.com",
            "displayName": "Ada Lovelace",
            "department": "Unassigned",
            "employeeHireDate": "2026-12-01T00:00:00Z",
            "customSecurityAttributes": {"HR": {"level": 7}},
            "accountEnabled": true,
            "employeeOrgData": {"division": "Tours"},
        })
    );
    assert!(
        out.iter()
            .any(|(t, o)| t.name == "managerId" && *o == Output::Leave),
        "IgnoreFlowIfNullOrEmpty leaves the manager"
    );
    let change = compiled.apply(&row, &env(), false).unwrap();
    assert!(
        change
            .iter()
            .any(|(t, o)| t.name == "accountEnabled" && *o == Output::Leave),
        "onCreate mappings leave a change alone"
    );
}

#[test]
fn values_of_the_wrong_type_name_their_target() {
    let compiled = mapping().compile(&COLUMNS, &users()).unwrap();
    let row = Row(BTreeMap::from([
        ("first", "Ada"),
        ("last", "Lovelace"),
        ("level", "seven"),
    ]));
    let error = compiled.apply(&row, &env(), true).unwrap_err();
    assert_eq!(error.problems[0].0, "customSecurityAttributes.HR.level");
    let row = Row(BTreeMap::from([("dept", "x")]));
    let error = compiled.apply(&row, &env(), true).unwrap_err();
    assert_eq!(
        error.problems[0],
        (
            "userPrincipalName".to_string(),
            "the mapping gives it no value".to_string()
        )
    );
}

#[test]
fn a_mapping_is_checked_whole_when_saved() {
    let mut bad = mapping();
    bad.attributes.remove(1); // displayName
    bad.attributes.push(rule("department", "[dept]"));
    bad.attributes.push(rule("favouriteColour", "[dept]"));
    bad.attributes.push(rule("jobTitle", "[title]"));
    bad.attributes.push(rule("surname", "Join("));
    bad.attributes.push(AttributeMapping {
        default_value: Some("maybe".into()),
        ..rule("accountEnabled", "[active]")
    });
    bad.attributes
        .push(rule("customSecurityAttributes.HR.grade", "[level]"));
    bad.attributes
        .push(rule("mail", "SelectUniqueValue([first])"));
    bad.attributes
        .push(rule("employeeLeaveDateTime", "SelectUniqueValue([first])"));
    let error = bad.compile(&COLUMNS, &users()).unwrap_err();
    let text = error.to_string();
    for says in [
        "department is mapped twice",
        "favouriteColour is not a user attribute",
        "the source has no attribute title",
        "ends where a value is expected",
        "accountEnabled is mapped twice",
        "HR.grade is not an active custom security attribute",
        "employeeLeaveDateTime is not unique",
        "displayName must be mapped",
    ] {
        assert!(text.contains(says), "{says:?} missing from {text}");
    }
    let mut bad_default = mapping();
    bad_default.attributes[6].default_value = Some("maybe".into());
    let error = bad_default.compile(&COLUMNS, &users()).unwrap_err();
    assert_eq!(error.problems[0].0, "attributes[6].defaultValue");
}

#[test]
fn select_unique_value_offers_candidates_in_order() {
    let m = Mapping {
        attributes: vec![
            rule(
                "userPrincipalName",
                r#"SelectUniqueValue(Join(".", [first], [last])@x.org, Join(".", Left([first], 1), [last])@x.org)"#,
            ),
            rule("displayName", "[first]"),
        ],
    };
    let compiled = m.compile(&COLUMNS, &users()).unwrap();
    let row = Row(BTreeMap::from([("first", "Ada"), ("last", "Lovelace")]));
    let out = compiled.apply(&row, &env(), true).unwrap();
    assert_eq!(
        out[0].1,
        Output::Unique(vec!["Ada.Lovelace@x.org".into(), "A.Lovelace@x.org".into()])
    );
}

#[test]
fn the_json_form_is_camel_case() {
    let m: Mapping = serde_json::from_value(json!({"attributes": [
        {"target": "department", "expression": "[dept]", "defaultValue": "x", "apply": "onCreate"}
    ]}))
    .unwrap();
    assert_eq!(m.attributes[0].apply, Apply::OnCreate);
    assert!(
        serde_json::from_value::<Mapping>(
            json!({"attributes": [{"target": "a", "expression": "b", "extra": 1}]})
        )
        .is_err()
    );
}

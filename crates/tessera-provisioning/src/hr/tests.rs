use serde_json::json;
use time::OffsetDateTime;

use super::*;
use crate::mapping::{AttributeMapping, Mapping};
use crate::targets::DirectoryUsers;

const CSV: &str = "\u{feff}Employee ID,First Name,Last Name,Dept,Start Date\r\n\
1001,Ada,Lovelace,Engineering,3/1/2026\r\n\
1002,Grace,Hopper,Navy,\r\n\
\r\n\
1003,\"Smith, Jr.\",Alan,Sales,12/24/2026\r\n";

fn rule(target: &str, expression: &str) -> AttributeMapping {
    AttributeMapping {
        target: target.into(),
        expression: expression.into(),
        default_value: None,
        apply: Default::default(),
    }
}

fn mapping(file: &HrFile) -> Compiled {
    let no_custom = |_: &str, _: &str| None;
    Mapping {
        attributes: vec![
            rule("employeeId", "[Employee ID]"),
            rule(
                "userPrincipalName",
                r#"ToLower(Join(".", [first name], [Last Name]))@contoso.com"#,
            ),
            rule("displayName", r#"Join(" ", [First Name], [Last Name])"#),
            rule("department", "[Dept]"),
            rule(
                "employeeHireDate",
                r#"IgnoreFlowIfNullOrEmpty(FormatDateTime([Start Date], "M/d/yyyy", "yyyy-MM-dd"))"#,
            ),
        ],
    }
    .compile(file, &DirectoryUsers { custom: &no_custom })
    .unwrap()
}

fn env() -> Env {
    Env {
        now: OffsetDateTime::UNIX_EPOCH,
    }
}

#[test]
fn a_csv_export_reads_with_its_header() {
    let file = read(Format::Csv, CSV).unwrap();
    assert_eq!(
        file.columns[0], "Employee ID",
        "the byte-order mark is skipped"
    );
    assert_eq!(file.rows.len(), 3, "blank rows are skipped");
    assert_eq!(file.rows[2].line, 5);
    assert_eq!(
        file.rows[2].value("first name"),
        Val::Text("Smith, Jr.".into())
    );
    assert_eq!(file.rows[1].value("Start Date"), Val::Null);
    assert!(file.check("LAST NAME").is_ok());
    assert!(file.check("Salary").unwrap_err().contains("no column"));
    for (bad, says) in [
        ("", "empty"),
        ("a,A\n1,2\n", "named twice"),
        ("a,b\n1,2,3\n", "line 2: 3 values"),
        (",a\n1,2\n", "1 to 128"),
        ("a,b\n\"1,2\n", "line"),
    ] {
        let error = read(Format::Csv, bad).unwrap_err().to_string();
        assert!(error.contains(says), "{bad:?}: {error}");
    }
}

#[test]
fn a_json_export_reads_nested_and_wrapped() {
    let text = json!({"workers": [
        {"id": 7, "name": {"first": "Ada", "last": "L"}, "active": true, "skills": ["x", "y"]},
        {"id": "8", "name": {"first": "Bo"}, "manager": null}
    ]})
    .to_string();
    let file = read(Format::Json, &text).unwrap();
    assert_eq!(file.rows.len(), 2);
    assert_eq!(file.rows[0].value("name.first"), Val::Text("Ada".into()));
    assert_eq!(file.rows[0].value("id"), Val::Text("7".into()));
    assert_eq!(file.rows[0].value("active"), Val::Bool(true));
    assert_eq!(
        file.rows[0].value("skills"),
        Val::List(vec!["x".into(), "y".into()])
    );
    assert!(file.check("manager").is_ok());
    for bad in ["{\"a\": 1}", "[1, 2]", "{\"a\": [], \"b\": []}", "nope"] {
        assert!(read(Format::Json, bad).is_err(), "{bad}");
    }
}

#[test]
fn a_plan_creates_updates_and_holds() {
    let file = read(Format::Csv, CSV).unwrap();
    let compiled = mapping(&file);
    let ada = uuid::Uuid::new_v4();
    let grace = uuid::Uuid::new_v4();
    let existing = BTreeMap::from([
        (
            "1001".to_string(),
            vec![Existing {
                id: ada,
                attributes:
                    json!({"employeeId": "1001", "userPrincipalName": "ADA.lovelace@contoso.com",
                    "displayName": "Ada Lovelace", "department": "Research",
                    "employeeHireDate": "2026-03-01T00:00:00Z"})
                    .as_object()
                    .unwrap()
                    .clone(),
            }],
        ),
        (
            "1002".to_string(),
            vec![Existing {
                id: grace,
                attributes:
                    json!({"employeeId": "1002", "userPrincipalName": "grace.hopper@contoso.com",
                    "displayName": "Grace Hopper", "department": "Navy",
                    "employeeHireDate": "2025-01-01T00:00:00Z"})
                    .as_object()
                    .unwrap()
                    .clone(),
            }],
        ),
    ]);
    let plan = plan(&file, &compiled, "employeeId", &env(), &existing, 2, 10.0);
    assert_eq!(
        (plan.creates, plan.updates, plan.unchanged, plan.failed),
        (1, 1, 1, 0)
    );
    assert_eq!(
        plan.rows[0].step,
        Step::Update {
            id: ada,
            changes: vec![Change {
                attribute: "department".into(),
                before: json!("Research"),
                after: json!("Engineering"),
            }]
        },
        "the name differs only in case; the same hire date"
    );
    assert_eq!(
        plan.rows[1].step,
        Step::Unchanged { id: grace },
        "an empty start date leaves the hire date"
    );
    let Step::Create { attributes, .. } = &plan.rows[2].step else {
        panic!("{:?}", plan.rows[2]);
    };
    assert_eq!(
        attributes["userPrincipalName"],
        "smith, jr..alan@contoso.com"
    );
    assert_eq!(attributes["employeeHireDate"], "2026-12-24T00:00:00Z");
    assert!(
        plan.held,
        "one changes and one is new, of two anchored users: 100% > 10%"
    );
    assert_eq!(plan.changed_percent, 100.0);
    let relaxed = super::plan(&file, &compiled, "employeeId", &env(), &existing, 2, 100.0);
    assert!(!relaxed.held);
}

#[test]
fn rows_that_cannot_apply_say_why() {
    let text = "Employee ID,First Name,Last Name,Dept,Start Date\n\
        1001,Ada,L,X,13/45/2026\n\
        ,No,Anchor,X,\n\
        1002,A,B,X,\n\
        1002,C,D,X,\n";
    let file = read(Format::Csv, text).unwrap();
    let plan = plan(
        &file,
        &mapping(&file),
        "employeeId",
        &env(),
        &BTreeMap::new(),
        0,
        10.0,
    );
    let reasons: Vec<String> = plan
        .rows
        .iter()
        .map(|r| match &r.step {
            Step::Failed { reason } => reason.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert!(reasons[0].contains("employeeHireDate"), "{reasons:?}");
    assert!(reasons[1].contains("gives no employeeId"), "{reasons:?}");
    assert!(reasons[2].starts_with("Create"), "{reasons:?}");
    assert!(reasons[3].contains("same employeeId"), "{reasons:?}");
    assert!(
        !plan.held,
        "nothing anchored yet: an initial load is not held"
    );
}

#[test]
fn spreadsheet_headers_and_shared_anchors() {
    let file = read(
        Format::Csv,
        "Employee ID,First Name,Last Name,Dept,Start Date,,\n1001,A,B,X,,,\n",
    )
    .unwrap();
    assert_eq!(
        file.columns.len(),
        5,
        "empty trailing header cells are left out"
    );
    let compiled = mapping(&file);
    let user = |id| Existing {
        id,
        attributes: json!({"employeeId": "1001"}).as_object().unwrap().clone(),
    };
    let existing = BTreeMap::from([(
        "1001".to_string(),
        vec![user(uuid::Uuid::new_v4()), user(uuid::Uuid::new_v4())],
    )]);
    let plan = plan(&file, &compiled, "employeeId", &env(), &existing, 2, 10.0);
    let Step::Failed { reason } = &plan.rows[0].step else {
        panic!("{:?}", plan.rows[0]);
    };
    assert!(reason.contains("2 users have this employeeId"), "{reason}");
    let twice = read(Format::Json, r#"[{"Id": 1, "id": 2}]"#).unwrap_err();
    assert!(twice.to_string().contains("named twice"), "{twice}");
}

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

struct Object(BTreeMap<&'static str, Val>);

impl Attributes for Object {
    fn value(&self, name: &str) -> Val {
        self.0.get(name).cloned().unwrap_or(Val::Null)
    }
}

fn person() -> Object {
    Object(BTreeMap::from([
        ("givenName", Val::Text("Zoë".into())),
        ("surname", Val::Text("Ångström-Ley".into())),
        ("userName", Val::Text("zley".into())),
        ("department", Val::Text("Sales".into())),
        ("active", Val::Bool(false)),
        ("hired", Val::Text("03/07/2026".into())),
        (
            "proxy",
            Val::List(vec!["a@x".into(), "b@x".into(), "a@x".into()]),
        ),
        ("empty", Val::Text(String::new())),
    ]))
}

fn env() -> Env {
    Env {
        now: OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap(),
    }
}

fn eval(text: &str) -> Evaluation {
    parse(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .evaluate(&person(), &env())
}

fn text(text: &str) -> String {
    match eval(text) {
        Ok(Val::Text(t)) => t,
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn the_issue_and_entra_examples() {
    assert_eq!(
        text(r#"Join(".", givenName, surname)@contoso.com"#),
        "Zoë.Ångström-Ley@contoso.com"
    );
    assert_eq!(
        text(r#"ToLower(NormalizeDiacritics(Join(".", [givenName], [surname])) "@contoso.com")"#),
        "zoe.angstrom-ley@contoso.com"
    );
    assert_eq!(
        text(r#"Append(ToLower([userName], "en-US"), "@contoso.com")"#),
        "zley@contoso.com"
    );
    assert_eq!(
        text(r#"Switch([department], "Other", "Sales", "S", "Engineering", "E")"#),
        "S"
    );
    assert_eq!(
        text(r#"Switch([userName], "Other", "Sales", "S")"#),
        "Other"
    );
    assert_eq!(text(r#"IIF([department]="Sales", "yes", "no")"#), "yes");
    assert_eq!(text(r#"IIF([department] <> "Sales", "yes", "no")"#), "no");
    assert_eq!(
        text(r#"FormatDateTime([hired], , "M/d/yyyy", "yyyy-MM-ddTHH:mm:ssZ")"#),
        "2026-03-07T00:00:00Z"
    );
    assert_eq!(
        text(r#"FormatDateTime([hired], "M/d/yyyy", "yyyyMMddHHmmss.fZ")"#),
        "20260307000000.0Z"
    );
    assert_eq!(
        text(r#"DateAdd("d", 7, "2026-01-28T10:00:00Z")"#),
        "2026-02-04T10:00:00Z"
    );
    assert_eq!(
        text(r#"DateAdd("m", 1, "2026-01-31")"#),
        "2026-02-28T00:00:00Z"
    );
    assert_eq!(text("Now()"), "2026-05-28T20:26:40Z");
    assert_eq!(text(r#"Left([userName], 2)"#), "zl");
    assert_eq!(text(r#"Mid([surname], 2, 3)"#), "ngs");
    assert_eq!(text(r#"Word("a  b,c", 3, " ,")"#), "c");
    assert_eq!(text(r#"InStr([userName], "ley")"#), "2");
    assert_eq!(text(r#"InStr([userName], "LEY", 1, "vbTextCompare")"#), "2");
    assert_eq!(text(r#"InStr([userName], "q")"#), "0");
    assert_eq!(text(r#"Replace([userName], "z", "Z")"#), "Zley");
    assert_eq!(text(r#"Replace([userName], "z", , , "Z", , )"#), "Zley");
    assert_eq!(text(r#"StripSpaces(" a b ")"#), "ab");
    assert_eq!(text(r#"Trim(" a b ")"#), "a b");
    assert_eq!(text(r#"Item([proxy], 2)"#), "b@x");
    assert_eq!(text(r#"Count(RemoveDuplicates([proxy]))"#), "2");
    assert_eq!(text(r#"Coalesce([missing], [empty], [userName])"#), "zley");
    assert_eq!(text(r#"CStr([active])"#), "False");
    assert_eq!(eval("Not([active])"), Ok(Val::Bool(true)));
    assert_eq!(eval(r#"CBool("1")"#), Ok(Val::Bool(true)));
    assert_eq!(eval("IsPresent([empty])"), Ok(Val::Bool(false)));
    assert_eq!(eval("IsNull([missing])"), Ok(Val::Bool(true)));
    assert_eq!(
        eval(r#"Split("a;b", ";")"#),
        Ok(Val::List(vec!["a".into(), "b".into()]))
    );
}

#[test]
fn missing_values_make_nothing() {
    assert_eq!(eval("[missing]@contoso.com"), Ok(Val::Null));
    assert_eq!(eval(r#"Append([missing], "x")"#), Ok(Val::Null));
    assert_eq!(eval(r#"ToLower([missing])"#), Ok(Val::Null));
    assert_eq!(text(r#"Join(" ", [missing], [empty], [givenName])"#), "Zoë");
    assert_eq!(eval(r#"Join(" ", [missing])"#), Ok(Val::Null));
    assert_eq!(
        eval("IgnoreFlowIfNullOrEmpty([missing])"),
        Err(Stop::Ignore)
    );
    assert_eq!(text("IgnoreFlowIfNullOrEmpty([userName])"), "zley");
    assert!(matches!(
        eval(r#"FormatDateTime("2026/03/07", "M/d/yyyy", "yyyy")"#),
        Err(Stop::Failed(_))
    ));
}

#[test]
fn dates_out_of_range_fail_rather_than_panic() {
    for bad in [
        r#"DateAdd("d", 0, "9999-12-31T23:30:00-05:00")"#,
        r#"DateAdd("m", 9223372036854775807, "2026-01-01")"#,
        r#"DateAdd("s", 9223372036854775807, "2026-01-01")"#,
        r#"DateAdd("yyyy", -9223372036854775807, "2026-01-01")"#,
        r#"DateAdd("d", 1, "9999-12-31")"#,
    ] {
        assert!(
            matches!(eval(bad), Err(Stop::Failed(_))),
            "{bad}: {:?}",
            eval(bad)
        );
    }
    assert_eq!(
        parse_datetime("9999-12-31T23:30:00-05:00").and_then(rfc3339),
        None
    );
}

#[test]
fn positions_and_lengths_of_any_size() {
    assert_eq!(text(r#"InStr([userName], "ley", 3)"#), "0");
    assert_eq!(
        text(r#"InStr([userName], "ley", 9223372036854775807)"#),
        "0"
    );
    assert_eq!(text(r#"InStr("ÅÅbÅ", "b")"#), "3");
    assert_eq!(text(r#"InStr("ÅÅbÅ", "Å", 3)"#), "4");
    assert_eq!(
        text(r#"Mid([userName], 9223372036854775807, 9223372036854775807)"#),
        ""
    );
    assert_eq!(text(r#"Left([userName], -5)"#), "");
    assert_eq!(eval(r#"Item([proxy], -1)"#), Ok(Val::Null));
    assert_eq!(eval(r#"Word("a b", 0, " ")"#), Ok(Val::Null));
}

#[test]
fn replacing_stays_within_bounds() {
    let big = Object(BTreeMap::from([
        ("a", Val::Text("a".repeat(MAX_TEXT))),
        ("b", Val::Text("𝕏".repeat(MAX_TEXT))),
    ]));
    let value = parse(r#"Replace([a], "a", [b])"#)
        .unwrap()
        .evaluate(&big, &env())
        .unwrap();
    assert_eq!(value.text().unwrap().chars().count(), MAX_TEXT);
}

#[test]
fn select_unique_value_gives_its_candidates() {
    assert_eq!(
        eval(r#"SelectUniqueValue([missing], [userName], Append([userName], "1"))"#),
        Ok(Val::List(vec!["zley".into(), "zley1".into()]))
    );
    assert!(parse(r#"ToLower(SelectUniqueValue([a]))"#).is_err());
}

#[test]
fn bad_expressions_are_refused_with_a_reason() {
    for (bad, says) in [
        ("", "empty"),
        ("Frobnicate([a])", "not a function"),
        ("ToLower()", "takes 1 to 2 arguments"),
        ("ToLower([a]", "not closed"),
        ("[a", "not closed"),
        ("\"abc", "not closed"),
        ("Switch([a], \"d\", \"k\")", "pairs"),
        ("FormatDateTime([a], \"tt\", \"yyyy\")", "not supported"),
        ("FormatDateTime([a], [b], \"yyyy\")", "constant"),
        ("DateAdd(\"fortnight\", 1, [a])", "interval"),
        ("Replace([a], \"x\", \"^re$\", , \"y\", , )", "regexPattern"),
        ("Replace([a], \"x\", \"y\", \"z\")", "seven"),
        ("[a] ,", "unexpected"),
        ("[]", "1 to 512"),
        ("= [a]", "value is expected"),
        (r#""a\qb""#, "escapes only"),
    ] {
        let error = parse(bad).expect_err(bad);
        assert!(
            error.message.contains(says),
            "{bad:?} said {:?}, not {says:?}",
            error.message
        );
    }
    let deep = format!("{}[a]{}", "ToLower(".repeat(40), ")".repeat(40));
    assert!(parse(&deep).is_err(), "nesting is bounded");
    let long = format!("Join(\",\"{})", ", [a]".repeat(400));
    assert!(parse(&long).is_err(), "length is bounded");
    let empties = format!("Coalesce({})", ",".repeat(15)).repeat(9);
    assert!(
        parse(&empties).is_err(),
        "empty arguments count as operations"
    );
}

#[test]
fn values_are_bounded() {
    let big = Object(BTreeMap::from([("a", Val::Text("x".repeat(10_000)))]));
    let value = parse(r#"Join("", [a], [a], [a])"#)
        .unwrap()
        .evaluate(&big, &env())
        .unwrap();
    assert_eq!(value.text().unwrap().chars().count(), MAX_TEXT);
}

#[test]
fn attributes_read_are_listed_once() {
    let e = parse(r#"Coalesce([emails[type eq "work"].value], [a], ToLower([a]))"#).unwrap();
    assert_eq!(e.attributes(), vec![r#"emails[type eq "work"].value"#, "a"]);
}

fn arbitrary_expression() -> impl Strategy<Value = Expression> {
    let leaf = prop_oneof![
        "[a-zA-Z][a-zA-Z0-9_.]{0,8}".prop_map(Expression::Attribute),
        "[ -~]{0,6}".prop_map(Expression::Literal),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (
                prop::sample::select(vec![
                    Function::Join,
                    Function::Coalesce,
                    Function::Append,
                    Function::ToLower
                ]),
                prop::collection::vec(inner.clone(), 2..3)
            )
                .prop_map(|(f, args)| Expression::Call(f, args)),
            prop::collection::vec(inner.clone(), 2..3).prop_map(|terms| {
                // Terms side by side are never comparisons or side-by-side terms.
                Expression::Concat(
                    terms
                        .into_iter()
                        .map(|t| match t {
                            Expression::Concat(_) | Expression::Compare { .. } => {
                                Expression::Literal("x".into())
                            }
                            other => other,
                        })
                        .collect(),
                )
            }),
            (inner.clone(), any::<bool>(), inner).prop_map(|(l, equal, r)| {
                let plain = |e: Expression| match e {
                    Expression::Compare { .. } => Expression::Literal("y".into()),
                    other => other,
                };
                Expression::Compare {
                    left: Box::new(plain(l)),
                    equal,
                    right: Box::new(plain(r)),
                }
            }),
        ]
    })
}

proptest! {
    #[test]
    fn the_canonical_text_parses_back(e in arbitrary_expression()) {
        let text = e.to_string();
        let parsed = parse(&text).unwrap_or_else(|error| panic!("{text}: {error}"));
        prop_assert_eq!(parsed, e);
    }

    #[test]
    fn any_text_parses_or_is_refused(text in "[ -~]{0,80}") {
        if let Ok(e) = parse(&text) {
            // The canonical text may be longer (brackets, quotes, spaces): it
            // reads back whenever it is within the bound.
            let canonical = e.to_string();
            if canonical.len() <= MAX_EXPRESSION_LEN {
                let again = parse(&canonical).expect("the canonical text parses");
                prop_assert_eq!(again, e);
            }
        }
    }
}

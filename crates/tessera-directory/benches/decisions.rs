//! The domain's hot paths: evaluating dynamic membership rules (on every user
//! change, once per dynamic group) and authorization decisions (on every API call).
//! `cargo bench -p tessera-directory --bench decisions`

#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tessera_directory::authz::{Grant, Target, authorize};
use tessera_directory::model::{DirectoryScope, UserSpec};
use tessera_directory::roles::{self, action};
use tessera_directory::rule;
use uuid::Uuid;

const RULE: &str = "(user.department -eq \"Finance\" -or user.department -in [\"Accounting\", \"Treasury\"]) \
                    -and user.accountEnabled -eq true -and -not (user.jobTitle -startsWith \"Intern\") \
                    -and user.mail -match \"@contoso\\.com$\"";

fn rules(c: &mut Criterion) {
    let user: UserSpec = serde_json::from_value(json!({
        "userPrincipalName": "adele@contoso.com", "displayName": "Adele Vance", "department": "Treasury",
        "jobTitle": "Controller", "mail": "adele@contoso.com"
    }))
    .expect("fixed user");
    c.bench_function("rule/parse (4 conditions, a regex)", |b| {
        b.iter(|| rule::parse(black_box(RULE)))
    });
    let parsed = rule::parse(RULE).expect("valid rule");
    assert!(rule::matches(&parsed, Uuid::nil(), &user));
    c.bench_function("rule/evaluate (4 conditions, a regex)", |b| {
        b.iter(|| rule::matches(black_box(&parsed), Uuid::nil(), black_box(&user)))
    });
}

fn decisions(c: &mut Criterion) {
    let unit = Uuid::new_v4();
    let grants: Vec<Grant> = [
        (roles::DIRECTORY_READERS, DirectoryScope::Tenant),
        (
            roles::HELPDESK_ADMINISTRATOR,
            DirectoryScope::AdministrativeUnit(Uuid::new_v4()),
        ),
        (roles::GROUPS_ADMINISTRATOR, DirectoryScope::Tenant),
        (
            roles::USER_ADMINISTRATOR,
            DirectoryScope::AdministrativeUnit(unit),
        ),
        (roles::REPORTS_READER, DirectoryScope::Tenant),
    ]
    .into_iter()
    .map(|(role_id, scope)| Grant {
        assignment_id: Uuid::new_v4(),
        role_id,
        scope,
    })
    .collect();
    let inside = Target::Object {
        administrative_units: vec![Uuid::new_v4(), unit],
        privileged: false,
    };
    let outside = Target::Object {
        administrative_units: vec![Uuid::new_v4()],
        privileged: false,
    };
    c.bench_function("authorize/allowed through a scoped grant (5 grants)", |b| {
        b.iter(|| {
            authorize(
                black_box(&grants),
                action::USERS_BASIC_UPDATE,
                black_box(&inside),
            )
        })
    });
    c.bench_function(
        "authorize/denied after checking every grant (5 grants)",
        |b| {
            b.iter(|| {
                authorize(
                    black_box(&grants),
                    action::USERS_DELETE,
                    black_box(&outside),
                )
            })
        },
    );
    let global = [Grant {
        assignment_id: Uuid::new_v4(),
        role_id: roles::GLOBAL_ADMINISTRATOR,
        scope: DirectoryScope::Tenant,
    }];
    c.bench_function("authorize/Global Administrator wildcard", |b| {
        b.iter(|| {
            authorize(
                black_box(&global),
                action::ROLE_ASSIGNMENTS_MANAGE,
                black_box(&Target::Tenant),
            )
        })
    });
}

criterion_group!(benches, rules, decisions);
criterion_main!(benches);

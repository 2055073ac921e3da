//! HR export files come from another system: reading any bytes as CSV or JSON
//! never panics and stays within the bounds, and planning what they hold through
//! a mapping gives one planned row per row read.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use tessera_provisioning::expression::Env;
use tessera_provisioning::hr::{self, Format, MAX_COLUMNS, MAX_ROWS};
use tessera_provisioning::mapping::{AttributeMapping, Mapping};
use tessera_provisioning::targets::DirectoryUsers;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Csv, Format::Json] {
        let Ok(file) = hr::read(format, text) else {
            continue;
        };
        assert!(file.rows.len() <= MAX_ROWS && file.columns.len() <= MAX_COLUMNS);
        let Some(first) = file.columns.first().cloned() else {
            continue;
        };
        let rule = |target: &str, expression: String| AttributeMapping {
            target: target.into(),
            expression,
            default_value: None,
            apply: Default::default(),
        };
        let mapping = Mapping {
            attributes: vec![
                rule("employeeId", format!("[{first}]")),
                rule("userPrincipalName", format!("ToLower([{first}])@x.org")),
                rule("displayName", format!("Coalesce([{first}], \"x\")")),
            ],
        };
        let none = |_: &str, _: &str| None;
        let Ok(compiled) = mapping.compile(&file, &DirectoryUsers { custom: &none }) else {
            continue;
        };
        let env = Env {
            now: time::OffsetDateTime::UNIX_EPOCH,
        };
        let plan = hr::plan(&file, &compiled, "employeeId", &env, &BTreeMap::new(), 0, 10.0);
        assert_eq!(plan.rows.len(), file.rows.len());
    }
});

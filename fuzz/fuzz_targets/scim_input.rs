//! The SCIM service provider reads filters, PATCH paths and bodies, resources,
//! list parameters and attribute lists from provisioning clients: none may panic;
//! a filter read prints back to one that reads to the same tree; a filter accepted
//! for a resource type evaluates on any resource; a PATCH that applies leaves a
//! resource that reads back as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tessera_scim::list::RawListRequest;
use tessera_scim::projection::Projection;
use tessera_scim::resource::{self, Completeness};
use tessera_scim::schema::{GROUP_TYPE, USER_TYPE};
use tessera_scim::{PatchPath, eval, filter, patch};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = filter::parse(text) {
        // serde_json reads a float to within a unit in the last place, so only a
        // filter without one must read back exactly.
        if !has_float(&parsed) {
            assert_eq!(filter::parse(&parsed.text()).as_ref(), Ok(&parsed));
        }
        for rt in [USER_TYPE, GROUP_TYPE] {
            if eval::check(&rt, &parsed).is_ok() {
                let sample = serde_json::json!({
                    "userName": "a", "displayName": "A", "active": true,
                    "emails": [{"value": "a@b.c", "type": "work", "primary": true}],
                    "members": [{"value": "x", "type": "User"}],
                });
                let _ = eval::matches(&rt, sample.as_object().unwrap(), &parsed);
            }
        }
    }
    let _ = PatchPath::parse(text);
    let _ = Projection::parse(&USER_TYPE, Some(text), Some(text));
    let _ = RawListRequest::from_query(&[("filter".to_string(), text.to_string())])
        .and_then(|raw| raw.read(&USER_TYPE, 1000));
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return;
    };
    for rt in [USER_TYPE, GROUP_TYPE] {
        if let Ok(read) = resource::read(&rt, &body, Completeness::Partial) {
            // Canonical form reads back as itself.
            let again = resource::read(&rt, &Value::Object(read.clone()), Completeness::Partial);
            assert_eq!(again.as_ref(), Ok(&read));
        }
        if let Ok(operations) = patch::parse(&body) {
            let start = serde_json::json!({"userName": "a", "displayName": "G"});
            let start = start.as_object().unwrap();
            if let Ok((rest, _)) = patch::split_members(&rt, operations.clone()) {
                if let Ok(after) = patch::apply(&rt, start, &rest) {
                    let again = resource::read(&rt, &Value::Object(after.clone()), Completeness::Whole);
                    assert_eq!(again.as_ref(), Ok(&after));
                }
            }
        }
    }
    let _ = RawListRequest::from_search(&body).and_then(|raw| raw.read(&GROUP_TYPE, 1000));
});

fn has_float(filter: &filter::Filter) -> bool {
    use filter::{Filter, Literal};
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => has_float(a) || has_float(b),
        Filter::Not(f) | Filter::ValuePath { filter: f, .. } => has_float(f),
        Filter::Compare { value: Literal::Number(n), .. } => n.is_f64(),
        _ => false,
    }
}

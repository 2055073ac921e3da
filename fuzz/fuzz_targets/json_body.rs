//! Request bodies: any bytes must become one JSON object (duplicate keys refused) or
//! a problem, any JSON must become a valid spec or a list of field errors, and merge
//! patches over a valid spec must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_directory::model::{ApplicationSpec, GroupSpec, UserSpec};
use tessera_directory::{patch, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = tessera_server::extract::parse_json_object(data) else { return };
    if let Ok(spec) = patch::parse_spec::<UserSpec>(value.clone()) {
        let _ = validate::user_spec(&spec);
        let _ = patch::merge_patch(&spec, &value, &["id"]);
    }
    if let Ok(spec) = patch::parse_spec::<GroupSpec>(value.clone()) {
        let _ = validate::group_spec(&spec);
    }
    if let Ok(spec) = patch::parse_spec::<ApplicationSpec>(value.clone()) {
        let _ = validate::application_spec(&spec);
    }
    let base: UserSpec = serde_json::from_value(serde_json::json!({"userPrincipalName": "a@b.c", "displayName": "A"}))
        .expect("fixed user");
    if let Ok(patched) = patch::merge_patch(&base, &value, &["id"]) {
        let _ = validate::user_spec(&patched);
    }
});

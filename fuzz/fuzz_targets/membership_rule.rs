//! Dynamic membership rules are typed by administrators: any text must give a rule or
//! an error, never a panic or a stack overflow, and a parsed rule must print to text
//! that parses back to the same rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_directory::model::UserSpec;
use tessera_directory::rule;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = rule::parse(text) else { return };
    let printed = parsed.to_string();
    let reparsed = rule::parse(&printed).expect("a printed rule parses");
    assert_eq!(parsed, reparsed, "round trip through {printed}");
    let user: UserSpec = serde_json::from_value(serde_json::json!({
        "userPrincipalName": "a@b.c", "displayName": "A", "department": "Finance"
    }))
    .expect("fixed user");
    let _ = rule::matches(&parsed, uuid::Uuid::nil(), &user);
});

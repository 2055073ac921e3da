//! Attribute-mapping expressions come from administrators' mappings and HR files:
//! parsing any text is bounded and never panics; an expression read prints back
//! to text that reads to the same tree; evaluating it over an object of any
//! values stays within the value bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_provisioning::expression::{
    self, Attributes, Env, MAX_LIST, MAX_TEXT, Val, parse,
};

struct Anything<'a>(&'a str);

impl Attributes for Anything<'_> {
    fn value(&self, name: &str) -> Val {
        match name.len() % 4 {
            0 => Val::Null,
            1 => Val::Text(self.0.to_string()),
            2 => Val::Bool(name.len() % 3 == 0),
            _ => Val::List(self.0.split(',').map(str::to_string).collect()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse(text) else {
        return;
    };
    // The canonical text (brackets, quotes, spaces added) reads back to the same
    // tree whenever it is within the length bound.
    let canonical = parsed.to_string();
    if canonical.len() <= expression::MAX_EXPRESSION_LEN {
        let again = parse(&canonical).expect("the canonical text reads back");
        assert_eq!(again, parsed);
    }
    let env = Env {
        now: time::OffsetDateTime::UNIX_EPOCH,
    };
    if let Ok(value) = parsed.evaluate(&Anything(text), &env) {
        match value {
            Val::Text(t) => assert!(t.chars().count() <= MAX_TEXT),
            Val::List(items) => {
                assert!(items.len() <= MAX_LIST);
                assert!(items.iter().all(|i| i.chars().count() <= MAX_TEXT));
            }
            Val::Null | Val::Bool(_) => {}
        }
    }
    let _ = expression::parse_datetime(text);
});

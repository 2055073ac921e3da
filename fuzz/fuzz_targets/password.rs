//! New passwords typed by users, and breached-password range files imported by the
//! operator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_authn::password;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = password::check(text, &["password", "contoso", "adele"]);
        let _ = password::parse_range(text);
    }
});

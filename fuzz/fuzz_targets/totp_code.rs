//! One-time codes typed at sign-in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_authn::totp::{Parameters, verify};

fuzz_target!(|data: &[u8]| {
    if let Ok(code) = std::str::from_utf8(data) {
        let _ = verify(b"12345678901234567890", &Parameters::default(), code, 1_700_000_000, Some(56_666_666));
    }
});

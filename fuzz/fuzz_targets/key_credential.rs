//! Certificates uploaded as application credentials (PEM or base64 DER).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tessera_directory::certificate::parse(text);
    }
});

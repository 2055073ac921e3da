//! Bearer tokens arrive from anyone on the network.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tessera_service::parse_token_tenant(text);
    }
});

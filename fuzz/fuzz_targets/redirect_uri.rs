//! Redirect URIs registered for applications.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_directory::validate::{RedirectKind, redirect_uri};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for kind in [RedirectKind::Web, RedirectKind::Spa, RedirectKind::PublicClient] {
            let _ = redirect_uri(text, kind);
        }
    }
});

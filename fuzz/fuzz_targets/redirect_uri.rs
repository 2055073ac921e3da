//! Redirect URIs: registered for applications (validation), and matched against
//! the registered ones at the authorization endpoint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_directory::validate::{RedirectKind, redirect_uri};
use tessera_oauth::redirect::{is_native, redirect_matches};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for kind in [RedirectKind::Web, RedirectKind::Spa, RedirectKind::PublicClient] {
            let _ = redirect_uri(text, kind);
        }
        let _ = is_native(text);
        // The input as a registered URI and a given one, split at the first newline.
        let (registered, given) = text.split_once('\n').unwrap_or((text, text));
        for native in [false, true] {
            let matched = redirect_matches(registered, given, native);
            // Matching is symmetric, and only a native app's loopback URI may differ.
            assert_eq!(matched, redirect_matches(given, registered, native));
            assert!(!matched || native || registered == given);
            assert!(redirect_matches(given, given, native));
        }
    }
});

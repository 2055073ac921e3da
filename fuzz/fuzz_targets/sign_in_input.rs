//! What browsers and proxies send to the sign-in pages: cookies, url-encoded forms,
//! a proxy's client-certificate header, and a typed temporary access pass.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::pages::input::{self, NameForm, PasswordForm, SecretForm, TotpForm};

fuzz_target!(|data: &[u8]| {
    let form = "application/x-www-form-urlencoded";
    let _ = input::form::<NameForm>(Some(form), data);
    let _ = input::form::<SecretForm>(Some(form), data);
    let _ = input::form::<TotpForm>(Some(form), data);
    let _ = input::form::<PasswordForm>(Some(form), data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = input::cookie(text.split('\n'), "__Host-tessera-session");
        let _ = input::proxy_certificates(text);
        let _ = tessera_authn::tap::normalize_input(text);
    }
});

//! What a browser posts after a WebAuthn ceremony (client data, authenticator data,
//! attestation object, signature), parsed and checked against a real ceremony state.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_authn::passkey::RelyingParty;
use tessera_authn::soft_authenticator::SoftAuthenticator;

struct Fixture {
    rp: RelyingParty,
    registration_state: String,
    sign_in_state: String,
    credential: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let origin = "https://id.contoso.com";
        let rp = RelyingParty::new(origin, "Fuzz").unwrap();
        let mut authenticator = SoftAuthenticator::new([3; 16]);
        let (options, state) = rp.start_registration(uuid::Uuid::nil(), "fuzz", "Fuzz", &[]).unwrap();
        let response = authenticator.register(&options, origin).unwrap().to_string();
        let credential = rp.finish_registration(&response, &state).unwrap().credential;
        let (_, registration_state) = rp.start_registration(uuid::Uuid::nil(), "fuzz", "Fuzz", &[]).unwrap();
        let (_, sign_in_state) = rp.start_sign_in().unwrap();
        Fixture { rp, registration_state, sign_in_state, credential }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let _ = f.rp.identify(text);
    let _ = f.rp.finish_sign_in(text, &f.sign_in_state, &f.credential);
    let _ = f.rp.finish_registration(text, &f.registration_state);
});

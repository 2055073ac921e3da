//! What an application answers an outbound provisioning cycle comes from
//! another system: any status and any bytes, read as a search, a create, a read
//! (and the PATCH computed from it) or a delete, never panic, give only ids a URL
//! can carry, keep every URL under the endpoint, and keep messages bounded and
//! plain.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = [200, 201, 204, 400, 401, 403, 404, 409, 429, 500, 302, 0][usize::from(selector) % 12];
    tessera_service::provisioning::outbound::check_reply(status, body);
});

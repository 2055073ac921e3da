//! Everything a client or a browser sends to the OAuth endpoints: authorization
//! requests (query, form, pushed), the `claims` parameter and scopes, token requests
//! and client credentials, client assertions and certificates, DPoP proofs, device
//! user codes, token-exchange requests and external tokens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tessera_oauth::{assertion, authorize, device, dpop, exchange, jws, pkce, token};

fuzz_target!(|data: &[u8]| {
    // Authorization requests as query strings or forms.
    if let Ok(raw) = authorize::collect(form_urlencoded::parse(data)) {
        if let Ok(request) = authorize::validate(&raw) {
            let _ = request.essential_acr_values();
            let _ = request.requested_claims("id_token");
            let params = authorize::response_parameters(Ok("code"), request.state.as_deref(), "https://id");
            let _ = authorize::redirect_with(&request.redirect_uri, &params);
        }
    }
    // Token endpoint forms, client secrets, pushed parameters, exchanges.
    if let Ok(form) = token::parse_form(Some("application/x-www-form-urlencoded"), data) {
        let header = form.get("authorization").map(String::as_str);
        let _ = token::client_secret(header, &form);
        let _ = assertion::from_form(&form);
        let _ = authorize::pushed_parameters(&form, "client");
        if let Ok(request) = exchange::parse(&form) {
            if let Ok((header, claims)) = jws::peek(request.subject_token) {
                let audiences = vec!["api://TesseraTokenExchange".to_string()];
                let trust = exchange::Trust { issuer: "https://issuer", subject: "s", audiences: &audiences };
                let _ = exchange::check_external(&claims, trust, 1_000);
                let _ = exchange::key_for(&json!({ "keys": [header.clone()] }), &header);
            }
        }
        if let Some(scope) = form.get("scope") {
            let _ = token::default_scope_resource(scope);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = authorize::parse_claims(text);
        let _ = authorize::parse_scopes(text);
        let _ = authorize::valid_resource(text);
        let _ = device::normalize(text);
        let _ = pkce::verify(text, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        // DPoP proofs and client assertions (JWTs with keys inside or registered).
        let _ = dpop::verify(text, "POST", "https://id/oauth2/token", 1_000, Some("at"));
        if let Ok((header, claims)) = jws::peek(text) {
            let _ = assertion::check_claims(&claims, "client", &["https://id"], 1_000);
            if let Some(jwk) = header.get("jwk") {
                let _ = jws::verify(text, jwk, &tessera_oauth::keys::Algorithm::ALL);
            }
        }
        if let Ok(Value::Object(jwk)) = serde_json::from_str::<Value>(text) {
            let _ = tessera_oauth::keys::thumbprint(&Value::Object(jwk));
        }
    }
    // Certificates registered for private_key_jwt.
    let _ = assertion::certificate_jwk(data);
    let _ = device::user_code(data);
});

//! Provider metadata: OpenID Connect Discovery 1.0 §3 and RFC 8414 §2, one document
//! served at both well-known names. It lists only what the endpoints really do.

use serde_json::{Value, json};

use crate::keys::Algorithm;

/// The scopes a relying party can ask for at the authorization endpoint.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The claims Tessera can put in ID tokens and userinfo.
pub const CLAIMS: [&str; 18] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "sid",
    "azp",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "email",
    "tid",
    "groups",
];

/// Client authentication methods at the token, introspection and revocation endpoints.
pub const CLIENT_AUTH_METHODS: [&str; 3] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

/// Algorithms accepted on client assertions and DPoP proofs.
pub const ASSERTION_ALGORITHMS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];

/// The metadata document of `issuer` (no trailing slash), whose ID tokens can be
/// signed with `algorithms`.
pub fn document(issuer: &str, algorithms: &[Algorithm]) -> Value {
    let algs: Vec<&str> = algorithms.iter().map(|a| a.as_str()).collect();
    let mut token_auth: Vec<&str> = CLIENT_AUTH_METHODS.to_vec();
    token_auth.extend(["tls_client_auth", "self_signed_tls_client_auth", "none"]);
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "end_session_endpoint": format!("{issuer}/oauth2/logout"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "pushed_authorization_request_endpoint": format!("{issuer}/oauth2/par"),
        "device_authorization_endpoint": format!("{issuer}/oauth2/devicecode"),
        "require_pushed_authorization_requests": false,
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            crate::device::GRANT_TYPE,
            crate::exchange::GRANT_TYPE,
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": token_auth,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        // RFC 8414 §2: required beside private_key_jwt.
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS,
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "dpop_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "tls_client_certificate_bound_access_tokens": true,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8414 §2: an endpoint that takes `private_key_jwt` lists its algorithms
    /// (strict validators, authlib's among them, refuse the document otherwise).
    #[test]
    fn every_endpoint_taking_assertions_lists_their_algorithms() {
        let doc = document("https://id.contoso.com", &[Algorithm::ES256]);
        for endpoint in ["token", "introspection", "revocation"] {
            let methods = &doc[format!("{endpoint}_endpoint_auth_methods_supported")];
            assert!(
                methods
                    .as_array()
                    .unwrap()
                    .contains(&json!("private_key_jwt"))
            );
            let algorithms = &doc[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")];
            assert!(!algorithms.as_array().unwrap().is_empty(), "{endpoint}");
            assert!(!algorithms.as_array().unwrap().contains(&json!("none")));
        }
        assert!(
            doc["prompt_values_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("consent"))
        );
    }

    #[test]
    fn the_document_names_the_issuer_and_only_s256() {
        let doc = document("https://id.contoso.com", &[Algorithm::ES256]);
        assert_eq!(doc["issuer"], "https://id.contoso.com");
        assert_eq!(doc["token_endpoint"], "https://id.contoso.com/oauth2/token");
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert!(
            !doc["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("implicit"))
        );
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["ES256"])
        );
    }
}

//! JWT client assertions (`private_key_jwt`, RFC 7523 §2.2 and §3; OIDC Core §9):
//! the client signs a short-lived JWT with a key whose certificate is registered on
//! the application. Here: the form parameters, the certificate's public key as a
//! JWK, and the claim checks. The service finds the keys and refuses replays.

use crate::error::ErrorCode;
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ED25519};
use x509_parser::public_key::PublicKey;

use crate::token::OAuthError;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Assertions may be valid for at most this long (they are single-use anyway).
pub const MAX_LIFETIME_SECONDS: i64 = 3600;
/// Clock skew allowed between client and server.
pub const SKEW_SECONDS: i64 = 60;

/// `client_assertion_type` + `client_assertion` from the form, if given.
pub fn from_form(form: &BTreeMap<String, String>) -> Result<Option<&str>, OAuthError> {
    match (
        form.get("client_assertion_type"),
        form.get("client_assertion"),
    ) {
        (None, None) => Ok(None),
        (Some(kind), Some(assertion)) if kind == JWT_BEARER => Ok(Some(assertion)),
        (Some(_), Some(_)) => Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "client_assertion_type must be jwt-bearer",
        )),
        _ => Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "client_assertion and client_assertion_type go together",
        )),
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The public key of a DER X.509 certificate as a JWK (EC P-256, RSA or Ed25519).
pub fn certificate_jwk(der: &[u8]) -> Option<Value> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let spki = certificate.public_key();
    if spki.algorithm.algorithm == OID_SIG_ED25519 {
        let raw = spki.subject_public_key.data.as_ref();
        return (raw.len() == 32).then(|| json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(raw) }));
    }
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => {
            let trim = |bytes: &[u8]| -> Vec<u8> {
                let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
                bytes[start..].to_vec()
            };
            Some(
                json!({ "kty": "RSA", "n": b64(&trim(rsa.modulus)), "e": b64(&trim(rsa.exponent)) }),
            )
        }
        PublicKey::EC(point) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            let data = point.data();
            let p256 = spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
                && curve == Some(OID_EC_P256)
                && data.len() == 65
                && data[0] == 0x04;
            p256.then(|| {
                json!({ "kty": "EC", "crv": "P-256", "x": b64(&data[1..33]), "y": b64(&data[33..65]) })
            })
        }
        _ => None,
    }
}

/// What a valid assertion says: its id (to refuse replays) and end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionFacts {
    pub jti: String,
    pub exp: i64,
}

/// RFC 7523 §3 for a verified assertion: `iss` and `sub` are the client, `aud` one
/// of `audiences` (the issuer or the endpoint), `exp` in the future but not far,
/// `nbf`/`iat` not in the future, and a `jti`.
pub fn check_claims(
    claims: &Value,
    client_id: &str,
    audiences: &[&str],
    now: i64,
) -> Result<AssertionFacts, OAuthError> {
    let refuse =
        |why: &str| OAuthError::new(ErrorCode::InvalidClient, format!("client assertion: {why}"));
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err(refuse("iss and sub must be the client id"));
    }
    if !crate::claims::audience_matches(claims.get("aud"), |aud| audiences.contains(&aud)) {
        return Err(refuse("aud is not this authorization server"));
    }
    let exp = crate::claims::check_lifetime(claims, now, SKEW_SECONDS)
        .map_err(|why| refuse(why.describe()))?;
    if exp > now + MAX_LIFETIME_SECONDS {
        return Err(refuse("exp is too far in the future"));
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| refuse("jti is required"))?;
    Ok(AssertionFacts {
        jti: jti.to_string(),
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://id.contoso.com";

    fn claims(extra: Value) -> Value {
        let mut base = json!({
            "iss": "c", "sub": "c", "aud": ISSUER, "exp": 1_100, "iat": 1_000, "jti": "j1",
        });
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    #[test]
    fn claims_are_checked() {
        let facts = check_claims(&claims(json!({})), "c", &[ISSUER], 1_000).unwrap();
        assert_eq!(facts.jti, "j1");
        let bad = [
            json!({ "iss": "other" }),
            json!({ "sub": "other" }),
            json!({ "aud": "https://elsewhere" }),
            json!({ "aud": ["https://elsewhere"] }),
            json!({ "exp": 900 }),
            json!({ "exp": 1_000 + MAX_LIFETIME_SECONDS + 1 }),
            json!({ "iat": 2_000 }),
            json!({ "jti": "" }),
            json!({ "exp": "soon" }),
        ];
        for extra in bad {
            assert_eq!(
                check_claims(&claims(extra.clone()), "c", &[ISSUER], 1_000)
                    .unwrap_err()
                    .error,
                "invalid_client",
                "{extra}"
            );
        }
        assert!(
            check_claims(
                &claims(json!({ "aud": [ISSUER, "x"] })),
                "c",
                &[ISSUER],
                1_000
            )
            .is_ok()
        );
    }

    #[test]
    fn assertion_parameters_go_together() {
        let mut form = BTreeMap::new();
        assert_eq!(from_form(&form).unwrap(), None);
        form.insert("client_assertion".to_string(), "x.y.z".to_string());
        assert!(from_form(&form).is_err());
        form.insert("client_assertion_type".to_string(), JWT_BEARER.to_string());
        assert_eq!(from_form(&form).unwrap(), Some("x.y.z"));
        form.insert("client_assertion_type".to_string(), "saml".to_string());
        assert!(from_form(&form).is_err());
    }

    #[test]
    fn certificate_keys_become_jwks() {
        let pem = include_str!("../../tessera-directory/tests/data/test-cert.pem");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let jwk = certificate_jwk(&der).unwrap();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert!(certificate_jwk(b"junk").is_none());
    }
}

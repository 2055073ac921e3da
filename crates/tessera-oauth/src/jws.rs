//! JWS compact serialization (RFC 7515) with the algorithms of [`Algorithm`]: signing
//! with our keys, and verifying with a public JWK (client assertions, tests).
//! `none` and symmetric algorithms do not exist here, so they cannot be accepted.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
    RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::keys::{Algorithm, KeyError, SigningKey};

/// Largest token accepted for verification.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Signs `claims` as a compact JWS with header `{alg, kid, typ}`.
pub fn sign(key: &SigningKey, typ: &str, claims: &Value) -> Result<String, KeyError> {
    let header = json!({ "alg": key.alg.as_str(), "kid": key.kid, "typ": typ });
    let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("the algorithm is not accepted")]
    Algorithm,
    #[error("the key does not fit the algorithm")]
    Key,
    #[error("the signature does not verify")]
    Signature,
}

/// The header and claims of a compact JWS, unverified (to find the key to verify with).
pub fn peek(token: &str) -> Result<(Value, Value), JwsError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwsError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let decode = |part: &str| -> Result<Value, JwsError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwsError::Malformed)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| JwsError::Malformed)?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(JwsError::Malformed)
        }
    };
    Ok((decode(header)?, decode(payload)?))
}

fn member(jwk: &Value, name: &str) -> Result<Vec<u8>, JwsError> {
    let text = jwk.get(name).and_then(Value::as_str).ok_or(JwsError::Key)?;
    URL_SAFE_NO_PAD.decode(text).map_err(|_| JwsError::Key)
}

/// Verifies a compact JWS with a public JWK, accepting only `allowed` algorithms
/// (and only the one the JWK names, if it names one); returns the claims.
pub fn verify(token: &str, jwk: &Value, allowed: &[Algorithm]) -> Result<Value, JwsError> {
    let (header, claims) = peek(token)?;
    // RFC 7515 §4.1.11: no critical extension is understood here, so none is accepted.
    if header.get("crit").is_some() {
        return Err(JwsError::Algorithm);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::parse)
        .ok_or(JwsError::Algorithm)?;
    if !allowed.contains(&alg) {
        return Err(JwsError::Algorithm);
    }
    if let Some(named) = jwk.get("alg").and_then(Value::as_str)
        && named != alg.as_str()
    {
        return Err(JwsError::Algorithm);
    }
    let (signed, signature) = token.rsplit_once('.').ok_or(JwsError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwsError::Malformed)?;
    let kty = jwk.get("kty").and_then(Value::as_str);
    let ok = match (alg, kty) {
        (Algorithm::ES256, Some("EC")) => {
            if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
                return Err(JwsError::Key);
            }
            let mut point = vec![0x04];
            point.extend(member(jwk, "x")?);
            point.extend(member(jwk, "y")?);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(signed.as_bytes(), &signature)
                .is_ok()
        }
        (Algorithm::RS256 | Algorithm::PS256, Some("RSA")) => {
            let components = RsaPublicKeyComponents {
                n: member(jwk, "n")?,
                e: member(jwk, "e")?,
            };
            let algorithm = if alg == Algorithm::PS256 {
                &RSA_PSS_2048_8192_SHA256
            } else {
                &RSA_PKCS1_2048_8192_SHA256
            };
            components
                .verify(algorithm, signed.as_bytes(), &signature)
                .is_ok()
        }
        (Algorithm::EdDSA, Some("OKP")) => {
            if jwk.get("crv").and_then(Value::as_str) != Some("Ed25519") {
                return Err(JwsError::Key);
            }
            UnparsedPublicKey::new(&ED25519, member(jwk, "x")?)
                .verify(signed.as_bytes(), &signature)
                .is_ok()
        }
        _ => return Err(JwsError::Key),
    };
    if ok {
        Ok(claims)
    } else {
        Err(JwsError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;

    #[test]
    fn every_algorithm_signs_and_verifies() {
        for alg in Algorithm::ALL {
            let (_, key) = generate(alg).unwrap();
            let claims = json!({ "iss": "https://id.contoso.com", "sub": "a" });
            let token = sign(&key, "at+jwt", &claims).unwrap();
            let jwk = key.public_jwk();
            assert_eq!(
                verify(&token, &jwk, &Algorithm::ALL).unwrap(),
                claims,
                "{alg:?}"
            );
            let (header, _) = peek(&token).unwrap();
            assert_eq!(header["kid"], key.kid);
            assert_eq!(header["typ"], "at+jwt");
            // A changed payload fails; so does another key, and a refused algorithm.
            let (head, rest) = token.split_once('.').unwrap();
            let (_, signature) = rest.split_once('.').unwrap();
            let forged = format!(
                "{head}.{}.{signature}",
                URL_SAFE_NO_PAD.encode(json!({"sub": "admin"}).to_string())
            );
            assert_eq!(
                verify(&forged, &jwk, &Algorithm::ALL),
                Err(JwsError::Signature)
            );
            let (_, other) = generate(alg).unwrap();
            assert_eq!(
                verify(&token, &other.public_jwk(), &Algorithm::ALL),
                Err(JwsError::Signature)
            );
            let others: Vec<Algorithm> = Algorithm::ALL.into_iter().filter(|a| *a != alg).collect();
            assert_eq!(verify(&token, &jwk, &others), Err(JwsError::Algorithm));
        }
    }

    #[test]
    fn alg_none_and_confusion_are_refused() {
        let (_, key) = generate(Algorithm::ES256).unwrap();
        let jwk = key.public_jwk();
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
        );
        assert_eq!(
            verify(&none, &jwk, &Algorithm::ALL),
            Err(JwsError::Algorithm)
        );
        let hmac = format!(
            "{}.{}.AAAA",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
        );
        assert_eq!(
            verify(&hmac, &jwk, &Algorithm::ALL),
            Err(JwsError::Algorithm)
        );
        // An RSA token against an EC key: refused by key type, not tried.
        let (_, rsa) = generate(Algorithm::RS256).unwrap();
        let token = sign(&rsa, "JWT", &json!({})).unwrap();
        assert_eq!(
            verify(&token, &jwk, &Algorithm::ALL),
            Err(JwsError::Algorithm)
        );
        // A critical header extension nobody here understands.
        let crit = format!(
            "{}.{}.AAAA",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","crit":["exp"],"exp":1}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#)
        );
        assert_eq!(
            verify(&crit, &jwk, &Algorithm::ALL),
            Err(JwsError::Algorithm)
        );
        assert_eq!(peek("a.b"), Err(JwsError::Malformed));
        assert_eq!(peek("a.b.c.d"), Err(JwsError::Malformed));
        assert_eq!(
            peek(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(JwsError::Malformed)
        );
    }
}

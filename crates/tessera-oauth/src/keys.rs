//! Token signing keys: generated here with aws-lc-rs, kept as PKCS#8 (the service
//! seals it at rest), published as JWKs.
//!
//! ES256 is the default (small, fast, FIPS-approved); RS256 and PS256 (RSA 2048) for
//! relying parties that need RSA; EdDSA (Ed25519) where it is accepted.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Algorithm {
    ES256,
    RS256,
    PS256,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::EdDSA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
            Algorithm::PS256 => "PS256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses a JOSE `alg`. `none` and HMAC algorithms are not algorithms here.
    pub fn parse(text: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("the stored key cannot be read")]
    Load,
    #[error("signing failed")]
    Sign,
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key with its id.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pair: Pair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new key: its PKCS#8 bytes to store (sealed), and the key itself.
pub fn generate(alg: Algorithm) -> Result<(Vec<u8>, SigningKey), KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = match alg {
        Algorithm::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generate)?
            .as_ref()
            .to_vec(),
        Algorithm::RS256 | Algorithm::PS256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> =
                pair.as_der().map_err(|_| KeyError::Generate)?;
            der.as_ref().to_vec()
        }
        Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError::Generate)?
            .as_ref()
            .to_vec(),
    };
    let key = load(alg, &pkcs8)?;
    Ok((pkcs8, key))
}

/// A stored key. Its kid is derived from its public key (RFC 7638 thumbprint), so
/// every node names the same key the same way.
pub fn load(alg: Algorithm, pkcs8: &[u8]) -> Result<SigningKey, KeyError> {
    let pair = match alg {
        Algorithm::ES256 => Pair::Ec(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                .map_err(|_| KeyError::Load)?,
        ),
        Algorithm::RS256 | Algorithm::PS256 => {
            Pair::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| KeyError::Load)?)
        }
        Algorithm::EdDSA => {
            Pair::Ed(Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|_| KeyError::Load)?)
        }
    };
    let mut key = SigningKey {
        kid: String::new(),
        alg,
        pair,
    };
    key.kid = thumbprint(&key.public_jwk_members());
    Ok(key)
}

/// RFC 7638: SHA-256 of the required members in lexicographic order, base64url.
/// (Members missing from `members` hash as `null`: check the key type first.)
pub fn thumbprint(members: &Value) -> String {
    let canonical = match members.get("kty").and_then(Value::as_str) {
        Some("EC") => {
            json!({ "crv": members["crv"], "kty": "EC", "x": members["x"], "y": members["y"] })
        }
        Some("RSA") => json!({ "e": members["e"], "kty": "RSA", "n": members["n"] }),
        _ => json!({ "crv": members["crv"], "kty": "OKP", "x": members["x"] }),
    };
    // serde_json keeps object keys sorted (no preserve_order feature), so this is canonical.
    b64(&tessera_core::crypto::sha256(
        canonical.to_string().as_bytes(),
    ))
}

impl SigningKey {
    fn public_jwk_members(&self) -> Value {
        match &self.pair {
            Pair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({ "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]) })
            }
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::Ed(pair) => {
                json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()) })
            }
        }
    }

    /// The public JWK as published in the JWKS.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.public_jwk_members();
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg.as_str());
        jwk["use"] = json!("sig");
        jwk
    }

    /// Signs `message` (the JWS signing input).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ec(pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
            Pair::Rsa(pair) => {
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = match self.alg {
                    Algorithm::PS256 => &RSA_PSS_SHA256,
                    _ => &RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut signature)
                    .map_err(|_| KeyError::Sign)?;
                Ok(signature)
            }
            Pair::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_have_stable_thumbprint_kids() {
        for alg in Algorithm::ALL {
            let (pkcs8, key) = generate(alg).unwrap();
            let again = load(alg, &pkcs8).unwrap();
            assert_eq!(key.kid, again.kid, "{alg:?}");
            assert_eq!(key.kid.len(), 43);
            let jwk = key.public_jwk();
            assert_eq!(jwk["alg"], alg.as_str());
            assert!(
                jwk.get("d").is_none(),
                "no private member is ever published"
            );
        }
        assert!(load(Algorithm::ES256, b"junk").is_err());
        assert_eq!(Algorithm::parse("none"), None);
        assert_eq!(Algorithm::parse("HS256"), None);
    }

    /// RFC 7638 §3.1's example key has thumbprint NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
    #[test]
    fn thumbprint_matches_rfc_7638() {
        let members = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}

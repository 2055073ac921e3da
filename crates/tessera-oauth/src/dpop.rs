//! DPoP proofs (RFC 9449 §4.3): a JWT the client signs with a key it holds, naming
//! the request (`htm`, `htu`), fresh (`iat`, `jti`), and, at a resource, the access
//! token (`ath`). Tokens bound to the key carry its thumbprint in `cnf.jkt`. The
//! service refuses a proof whose `jti` it has seen.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tessera_core::crypto::sha256;

use crate::jws;
use crate::keys::{self, Algorithm};

/// Proofs older than this are refused (RFC 9449 §11.1: a short window).
pub const MAX_AGE_SECONDS: i64 = 300;
/// Proofs dated this far ahead are refused.
pub const MAX_FUTURE_SECONDS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DPoP proof: {0}")]
pub struct DpopError(pub &'static str);

/// A verified proof: the key's RFC 7638 thumbprint, and the proof's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

/// `htu` comparison ignores query and fragment (§4.3 item 9).
fn without_query(uri: &str) -> &str {
    uri.split(['?', '#']).next().unwrap_or(uri)
}

/// `ath`: base64url SHA-256 of the access token.
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(access_token.as_bytes()))
}

/// Checks a proof for a request with method `htm` to `htu`, at time `now`; with the
/// access token it accompanies, when presented to a resource.
pub fn verify(
    proof: &str,
    htm: &str,
    htu: &str,
    now: i64,
    access_token: Option<&str>,
) -> Result<Proof, DpopError> {
    let (header, _) = jws::peek(proof).map_err(|_| DpopError("not a JWT"))?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(DpopError("typ must be dpop+jwt"));
    }
    let jwk = header
        .get("jwk")
        .filter(|j| j.is_object())
        .ok_or(DpopError("the header has no jwk"))?;
    // A private key in the header means the client leaked it; refuse (§4.3 item 5).
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|member| jwk.get(member).is_some())
    {
        return Err(DpopError("the jwk must be a public key"));
    }
    let claims = jws::verify(proof, jwk, &Algorithm::ALL).map_err(|e| match e {
        jws::JwsError::Signature => DpopError("the signature does not verify"),
        _ => DpopError("the algorithm or key is not accepted"),
    })?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(DpopError("jti is required"))?;
    if text("htm") != Some(htm) {
        return Err(DpopError("htm does not match the request"));
    }
    let claimed = text("htu").ok_or(DpopError("htu is required"))?;
    if without_query(claimed) != without_query(htu) {
        return Err(DpopError("htu does not match the request"));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(DpopError("iat is required"))?;
    if iat > now + MAX_FUTURE_SECONDS || iat < now - MAX_AGE_SECONDS {
        return Err(DpopError("iat is outside the accepted window"));
    }
    if let Some(token) = access_token
        && text("ath") != Some(access_token_hash(token).as_str())
    {
        return Err(DpopError("ath does not match the access token"));
    }
    let kty = jwk.get("kty").and_then(Value::as_str);
    if !matches!(kty, Some("EC" | "RSA" | "OKP")) {
        return Err(DpopError("unknown key type"));
    }
    Ok(Proof {
        jkt: keys::thumbprint(jwk),
        jti: jti.to_string(),
        iat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;
    use serde_json::json;

    const HTU: &str = "https://id.contoso.com/oauth2/token";

    fn proof(claims: Value, typ: &str) -> (String, String) {
        let (_, key) = generate(Algorithm::ES256).unwrap();
        let mut jwk = key.public_jwk();
        let jkt = keys::thumbprint(&jwk);
        for member in ["kid", "alg", "use"] {
            jwk.as_object_mut().unwrap().remove(member);
        }
        let header = json!({ "typ": typ, "alg": "ES256", "jwk": jwk });
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = key.sign(token.as_bytes()).unwrap();
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        (token, jkt)
    }

    fn claims() -> Value {
        json!({ "jti": "p1", "htm": "POST", "htu": HTU, "iat": 1_000 })
    }

    #[test]
    fn a_good_proof_names_its_key() {
        let (token, jkt) = proof(claims(), "dpop+jwt");
        let verified = verify(&token, "POST", HTU, 1_010, None).unwrap();
        assert_eq!(verified.jkt, jkt);
        assert_eq!(verified.jti, "p1");
        // The query is not part of the comparison.
        assert!(verify(&token, "POST", &format!("{HTU}?x=1"), 1_010, None).is_ok());
    }

    #[test]
    fn mismatches_are_refused() {
        let (token, _) = proof(claims(), "dpop+jwt");
        assert!(verify(&token, "GET", HTU, 1_000, None).is_err());
        assert!(verify(&token, "POST", "https://id.contoso.com/other", 1_000, None).is_err());
        assert!(verify(&token, "POST", HTU, 1_000 + MAX_AGE_SECONDS + 1, None).is_err());
        assert!(verify(&token, "POST", HTU, 1_000 - MAX_FUTURE_SECONDS - 1, None).is_err());
        assert!(verify(&token, "POST", HTU, 1_000, Some("at")).is_err());
        let (wrong_typ, _) = proof(claims(), "JWT");
        assert!(verify(&wrong_typ, "POST", HTU, 1_000, None).is_err());
        let mut with_ath = claims();
        with_ath["ath"] = json!(access_token_hash("at"));
        let (token, _) = proof(with_ath, "dpop+jwt");
        assert!(verify(&token, "POST", HTU, 1_000, Some("at")).is_ok());
        assert!(verify(&token, "POST", HTU, 1_000, Some("other")).is_err());
        let mut no_jti = claims();
        no_jti.as_object_mut().unwrap().remove("jti");
        let (token, _) = proof(no_jti, "dpop+jwt");
        assert!(verify(&token, "POST", HTU, 1_000, None).is_err());
        assert!(verify("a.b.c", "POST", HTU, 1_000, None).is_err());
    }
}

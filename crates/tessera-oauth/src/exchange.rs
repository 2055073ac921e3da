//! Token exchange (RFC 8693): the request's vocabulary, and the checks for a
//! subject token from an external issuer that a federated identity credential
//! trusts (workload identity federation).

use crate::error::ErrorCode;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::token::OAuthError;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Clock skew allowed for external tokens.
pub const SKEW_SECONDS: i64 = 60;

/// What kind of subject token came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    /// A JWT from an external issuer (workload identity federation).
    External,
    /// A Tessera access token, exchanged by the API it was issued for
    /// (on behalf of its user).
    TesseraAccessToken,
}

/// The parts of a token-exchange request Tessera understands (§2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRequest<'a> {
    pub subject_token: &'a str,
    pub kind: SubjectKind,
}

pub fn parse(form: &BTreeMap<String, String>) -> Result<ExchangeRequest<'_>, OAuthError> {
    let subject_token = form
        .get("subject_token")
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "subject_token is required"))?;
    let kind = match form.get("subject_token_type").map(String::as_str) {
        Some(JWT | ID_TOKEN) => SubjectKind::External,
        Some(ACCESS_TOKEN) => SubjectKind::TesseraAccessToken,
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "subject_token_type must be jwt, id_token or access_token",
            ));
        }
        None => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "subject_token_type is required",
            ));
        }
    };
    if form.contains_key("actor_token") {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "actor tokens are not supported",
        ));
    }
    if form
        .get("requested_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN)
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "only access tokens can be requested",
        ));
    }
    Ok(ExchangeRequest {
        subject_token,
        kind,
    })
}

/// A federated identity credential, as the check needs it.
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audiences: &'a [String],
}

/// An external token's claims (already verified against its issuer's keys) against
/// a credential: same issuer and subject exactly, an accepted audience, and inside
/// its lifetime.
pub fn check_external(claims: &Value, trust: Trust<'_>, now: i64) -> Result<(), OAuthError> {
    let refuse =
        |why: &str| OAuthError::new(ErrorCode::InvalidGrant, format!("subject_token: {why}"));
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(trust.issuer) {
        return Err(refuse("issuer is not trusted"));
    }
    if text("sub") != Some(trust.subject) {
        return Err(refuse("subject is not trusted"));
    }
    if !crate::claims::audience_matches(claims.get("aud"), |aud| {
        trust.audiences.iter().any(|a| a == aud)
    }) {
        return Err(refuse("audience is not accepted"));
    }
    crate::claims::check_lifetime(claims, now, SKEW_SECONDS)
        .map_err(|why| refuse(why.describe()))?;
    Ok(())
}

/// The key of a JWKS that verifies a token with header `header`: by `kid`, or the
/// only key when the token names none.
pub fn key_for<'a>(jwks: &'a Value, header: &Value) -> Option<&'a Value> {
    let keys = jwks.get("keys")?.as_array()?;
    let usable: Vec<&Value> = keys
        .iter()
        .filter(|k| {
            k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .collect();
    match header.get("kid").and_then(Value::as_str) {
        Some(kid) => usable
            .into_iter()
            .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid)),
        None if usable.len() == 1 => usable.first().copied(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trust(audiences: &[String]) -> Trust<'_> {
        Trust {
            issuer: "https://token.actions.example",
            subject: "repo:contoso/app:ref:refs/heads/main",
            audiences,
        }
    }

    #[test]
    fn external_tokens_must_match_the_credential() {
        let audiences = vec!["api://TesseraTokenExchange".to_string()];
        let good = json!({
            "iss": "https://token.actions.example",
            "sub": "repo:contoso/app:ref:refs/heads/main",
            "aud": "api://TesseraTokenExchange",
            "exp": 2_000, "iat": 1_000,
        });
        assert!(check_external(&good, trust(&audiences), 1_500).is_ok());
        for (name, value) in [
            ("iss", json!("https://elsewhere")),
            ("sub", json!("repo:contoso/app:pull_request")),
            ("aud", json!("api://other")),
            ("exp", json!(1_000)),
            ("iat", json!(9_000)),
        ] {
            let mut bad = good.clone();
            bad[name] = value;
            assert_eq!(
                check_external(&bad, trust(&audiences), 1_500)
                    .unwrap_err()
                    .error,
                "invalid_grant",
                "{name}"
            );
        }
    }

    #[test]
    fn requests_and_keys() {
        let mut form = BTreeMap::new();
        form.insert("subject_token".to_string(), "t".to_string());
        assert!(parse(&form).is_err());
        form.insert("subject_token_type".to_string(), JWT.to_string());
        assert_eq!(parse(&form).unwrap().kind, SubjectKind::External);
        form.insert("actor_token".to_string(), "a".to_string());
        assert!(parse(&form).is_err());
        let jwks = json!({ "keys": [{ "kid": "a", "kty": "EC" }, { "kid": "b", "kty": "EC", "use": "enc" }] });
        assert!(key_for(&jwks, &json!({ "kid": "a" })).is_some());
        assert!(key_for(&jwks, &json!({ "kid": "b" })).is_none());
        assert!(key_for(&jwks, &json!({})).is_some());
    }
}

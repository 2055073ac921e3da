//! Checks on JWT claims that every kind of token shares (RFC 7519 §4.1): whether
//! `aud` (a string or an array) names an accepted audience, and whether the token
//! is inside its lifetime.

use serde_json::Value;

/// Whether an `aud` claim names one of the audiences `accepted` accepts.
pub fn audience_matches(aud: Option<&Value>, accepted: impl Fn(&str) -> bool) -> bool {
    match aud {
        Some(Value::String(aud)) => accepted(aud),
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(accepted),
        _ => false,
    }
}

/// Why a token is outside its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    MissingExp,
    Expired,
    NotYetValid,
    Malformed,
}

impl Lifetime {
    pub fn describe(self) -> &'static str {
        match self {
            Lifetime::MissingExp => "exp is required",
            Lifetime::Expired => "it has expired",
            Lifetime::NotYetValid => "it is not valid yet",
            Lifetime::Malformed => "nbf and iat are numbers",
        }
    }
}

/// `exp` is present and not more than `skew` seconds past, and `nbf`/`iat` (when
/// present) not more than `skew` ahead of `now`; returns `exp`.
pub fn check_lifetime(claims: &Value, now: i64, skew: i64) -> Result<i64, Lifetime> {
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(Lifetime::MissingExp)?;
    if exp <= now - skew {
        return Err(Lifetime::Expired);
    }
    for name in ["nbf", "iat"] {
        if let Some(value) = claims.get(name) {
            let at = value.as_i64().ok_or(Lifetime::Malformed)?;
            if at > now + skew {
                return Err(Lifetime::NotYetValid);
            }
        }
    }
    Ok(exp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audiences_and_lifetimes() {
        assert!(audience_matches(Some(&json!("a")), |a| a == "a"));
        assert!(audience_matches(Some(&json!(["b", "a"])), |a| a == "a"));
        assert!(!audience_matches(Some(&json!(1)), |_| true));
        assert!(!audience_matches(None, |_| true));
        assert_eq!(check_lifetime(&json!({ "exp": 200 }), 100, 60), Ok(200));
        assert_eq!(
            check_lifetime(&json!({}), 100, 60),
            Err(Lifetime::MissingExp)
        );
        assert_eq!(
            check_lifetime(&json!({ "exp": 40 }), 100, 60),
            Err(Lifetime::Expired)
        );
        assert_eq!(
            check_lifetime(&json!({ "exp": 200, "iat": 500 }), 100, 60),
            Err(Lifetime::NotYetValid)
        );
        assert_eq!(
            check_lifetime(&json!({ "exp": 200, "nbf": "x" }), 100, 60),
            Err(Lifetime::Malformed)
        );
    }
}

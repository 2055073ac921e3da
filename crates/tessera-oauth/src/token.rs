//! The token endpoint's request and error vocabulary (RFC 6749 §3.2, §5.2), and
//! client authentication by `client_secret_basic` / `client_secret_post` (§2.3.1).

use crate::error::ErrorCode;
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Largest token request accepted.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// An OAuth error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: ErrorCode,
    pub description: String,
    /// The HTTP status of the JSON answer (see [`ErrorCode::status`]).
    pub status: u16,
    /// The client tried HTTP Basic: answer 401 with `WWW-Authenticate: Basic`.
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(error: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            error,
            description: description.into(),
            status: error.status(),
            basic_challenge: false,
        }
    }

    pub fn body(&self) -> Value {
        json!({ "error": self.error, "error_description": self.description })
    }
}

/// The form parameters, each at most once (RFC 6749 §3.2: parameters MUST NOT be
/// included more than once).
pub fn parse_form(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<BTreeMap<String, String>, OAuthError> {
    let form = content_type.is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "send the request as application/x-www-form-urlencoded",
        ));
    }
    if body.len() > MAX_REQUEST_BYTES {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "the request is too large",
        ));
    }
    let mut out = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        if value.is_empty() {
            continue; // empty parameters are treated as omitted (§3.1)
        }
        if out.insert(name.to_string(), value.to_string()).is_some() {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!("{name} is given more than once"),
            ));
        }
    }
    Ok(out)
}

/// A client's claimed identity and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecretCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub basic: bool,
}

/// Credentials from `Authorization: Basic` (client id and secret form-urlencoded,
/// then base64) or the body; using both, or two methods, is refused (§2.3).
pub fn client_secret(
    authorization: Option<&str>,
    form: &BTreeMap<String, String>,
) -> Result<Option<ClientSecretCredentials>, OAuthError> {
    let basic = authorization
        .and_then(|value| {
            value
                .strip_prefix("Basic ")
                .or_else(|| value.strip_prefix("basic "))
        })
        .map(str::trim);
    let in_body = form.get("client_secret");
    match (basic, in_body) {
        (Some(_), Some(_)) => Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "use one client authentication method, not two",
        )),
        (Some(encoded), None) => {
            let invalid = || OAuthError {
                basic_challenge: true,
                ..OAuthError::new(ErrorCode::InvalidClient, "malformed Basic credentials")
            };
            let decoded = STANDARD.decode(encoded).map_err(|_| invalid())?;
            let text = String::from_utf8(decoded).map_err(|_| invalid())?;
            let (id, secret) = text.split_once(':').ok_or_else(invalid)?;
            let id = form_decode(id);
            let secret = form_decode(secret);
            if let Some(body_id) = form.get("client_id")
                && *body_id != id
            {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "client_id differs from the authenticated client",
                ));
            }
            Ok(Some(ClientSecretCredentials {
                client_id: id,
                client_secret: secret,
                basic: true,
            }))
        }
        (None, Some(secret)) => {
            let id = form.get("client_id").ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "client_id is required with client_secret",
                )
            })?;
            Ok(Some(ClientSecretCredentials {
                client_id: id.clone(),
                client_secret: secret.clone(),
                basic: false,
            }))
        }
        (None, None) => Ok(None),
    }
}

fn form_decode(text: &str) -> String {
    form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

/// The resource a client-credentials `scope` names: `<resource>/.default`.
pub fn default_scope_resource(scope: &str) -> Result<&str, OAuthError> {
    let mut scopes = scope.split(' ').filter(|s| !s.is_empty());
    let (Some(only), None) = (scopes.next(), scopes.next()) else {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "give one scope: <resource>/.default",
        ));
    };
    only.strip_suffix("/.default")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidScope,
                "client credentials take <resource>/.default",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> BTreeMap<String, String> {
        parse_form(Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap()
    }

    #[test]
    fn forms_refuse_repeats_and_wrong_types() {
        assert!(parse_form(Some("application/json"), b"{}").is_err());
        let repeated = parse_form(
            Some("application/x-www-form-urlencoded"),
            b"scope=a&scope=b",
        )
        .unwrap_err();
        assert_eq!(repeated.error, "invalid_request");
        assert_eq!(
            form("grant_type=client_credentials&scope=")["grant_type"],
            "client_credentials"
        );
        assert!(!form("scope=").contains_key("scope"));
    }

    #[test]
    fn client_secrets_from_basic_or_body_not_both() {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
        let header = format!("Basic {}", STANDARD.encode("my%20app:p%40ss%2Bword"));
        let creds = client_secret(Some(&header), &form("grant_type=x"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                creds.client_id.as_str(),
                creds.client_secret.as_str(),
                creds.basic
            ),
            ("my app", "p@ss+word", true)
        );
        let creds = client_secret(None, &form("client_id=a&client_secret=b"))
            .unwrap()
            .unwrap();
        assert_eq!((creds.client_id.as_str(), creds.basic), ("a", false));
        assert_eq!(
            client_secret(Some(&header), &form("client_secret=b"))
                .unwrap_err()
                .error,
            "invalid_request"
        );
        let bad = client_secret(Some("Basic !!!"), &form("")).unwrap_err();
        assert_eq!(
            (bad.error.as_str(), bad.status, bad.basic_challenge),
            ("invalid_client", 401, true)
        );
        assert_eq!(client_secret(None, &form("")).unwrap(), None);
        assert_eq!(
            client_secret(None, &form("client_secret=b"))
                .unwrap_err()
                .error,
            "invalid_request"
        );
    }

    #[test]
    fn default_scopes() {
        assert_eq!(
            default_scope_resource("api://payroll/.default").unwrap(),
            "api://payroll"
        );
        assert!(default_scope_resource("api://a/.default api://b/.default").is_err());
        assert!(default_scope_resource("openid").is_err());
        assert!(default_scope_resource("/.default").is_err());
    }
}

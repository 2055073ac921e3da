//! Parsing of what browsers and proxies send to the pages: cookies, url-encoded forms
//! and a proxy's client-certificate header. All of it is untrusted (fuzzed in
//! `fuzz/fuzz_targets/sign_in_input.rs`).

use serde::Deserialize;

/// Largest form accepted.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
/// Largest cookie value accepted.
const MAX_COOKIE_BYTES: usize = 256;

/// The value of cookie `name` in `Cookie` header values.
pub fn cookie<'a>(values: impl Iterator<Item = &'a str>, name: &str) -> Option<String> {
    cookie_of_size(values, name, MAX_COOKIE_BYTES)
}

/// [`cookie`] for a cookie that may be longer (at most `max` bytes): the console's
/// access token.
pub fn cookie_of_size<'a>(
    values: impl Iterator<Item = &'a str>,
    name: &str,
    max: usize,
) -> Option<String> {
    values
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| v.len() <= max)
}

/// A url-encoded form body, if the content type says so and it fits.
pub fn form<T: for<'de> Deserialize<'de>>(content_type: Option<&str>, body: &[u8]) -> Option<T> {
    let form_type =
        content_type.is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type || body.len() > MAX_FORM_BYTES {
        return None;
    }
    serde_urlencoded::from_bytes(body).ok()
}

/// A client certificate chain from a proxy header (URL-encoded PEM).
pub fn proxy_certificates(value: &str) -> Vec<Vec<u8>> {
    if value.len() > 64 * 1024 {
        return Vec::new();
    }
    let Ok(pem) = percent_encoding::percent_decode_str(value).decode_utf8() else {
        return Vec::new();
    };
    tessera_authn::x509::pem_or_der(pem.as_bytes(), "CERTIFICATE").unwrap_or_default()
}

/// A form that carries the anti-forgery token.
pub trait WithCsrf {
    fn csrf(&self) -> &str;
}

macro_rules! with_csrf {
    ($($form:ty),*) => {
        $(impl WithCsrf for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}

with_csrf!(
    NameForm,
    SecretForm,
    CsrfForm,
    TotpForm,
    PasswordForm,
    DeviceCodeForm,
    DeviceDecisionForm
);

/// A user code typed at `/device`.
#[derive(Debug, Deserialize)]
pub struct DeviceCodeForm {
    pub csrf: String,
    pub user_code: String,
}

/// Approve or deny a device's request.
#[derive(Debug, Deserialize)]
pub struct DeviceDecisionForm {
    pub csrf: String,
    pub user_code: String,
    /// `approve` or `deny`.
    pub decision: String,
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    pub csrf: String,
    pub username: String,
}

#[derive(Debug, Deserialize)]
pub struct SecretForm {
    pub csrf: String,
    pub secret: String,
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

#[derive(Debug, Deserialize)]
pub struct TotpForm {
    pub csrf: String,
    pub code: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    pub csrf: String,
    #[serde(default)]
    pub current: String,
    pub new: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_forms_and_proxy_headers() {
        let values = ["a=1; __Host-tessera-session=abc", "b=2"];
        assert_eq!(
            cookie(values.into_iter(), "__Host-tessera-session").as_deref(),
            Some("abc")
        );
        assert_eq!(cookie(values.into_iter(), "missing"), None);
        let long = format!("x={}", "y".repeat(300));
        assert_eq!(cookie([long.as_str()].into_iter(), "x"), None);
        let parsed: NameForm = form(
            Some("application/x-www-form-urlencoded"),
            b"csrf=t&username=adele%40contoso.com",
        )
        .unwrap();
        assert_eq!(parsed.username, "adele@contoso.com");
        assert!(form::<NameForm>(Some("application/json"), b"csrf=t&username=x").is_none());
        assert!(form::<NameForm>(Some("application/x-www-form-urlencoded"), b"csrf=t").is_none());
        assert!(
            proxy_certificates("-----BEGIN%20CERTIFICATE-----%0A!!!%0A-----END%20CERTIFICATE-----")
                .is_empty()
        );
    }
}

//! The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1) and its response
//! (§4.1.2, RFC 9207 `iss`).
//!
//! Two steps, because errors before the client and its redirect URI are known must
//! be shown to the user, never redirected (RFC 6749 §4.1.2.1): [`collect`] gathers
//! the parameters (each once, but `resource` may repeat, RFC 8707), the service
//! checks `client_id` and `redirect_uri` against the registration, and [`validate`]
//! checks the rest, its errors going back to the client's redirect URI.
//!
//! Only `response_type=code`, with PKCE S256 always (RFC 9700 §2.1.1). No implicit or
//! hybrid flows, no `plain` PKCE, no request objects by value.

use crate::error::ErrorCode;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pkce;
use crate::token::OAuthError;

/// Longest value of any one parameter.
pub const MAX_PARAMETER_BYTES: usize = 4096;
/// Most `resource` parameters in one request.
pub const MAX_RESOURCES: usize = 10;

/// The parameters as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawAuthorization {
    pub params: BTreeMap<String, String>,
    pub resources: Vec<String>,
}

impl RawAuthorization {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Gathers the request's parameters; a repeated one (other than `resource`), an
/// oversized one or too many is an error shown to the user.
pub fn collect<'a>(
    pairs: impl IntoIterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Result<RawAuthorization, OAuthError> {
    let mut raw = RawAuthorization::default();
    for (name, value) in pairs {
        if value.is_empty() {
            continue;
        }
        if value.len() > MAX_PARAMETER_BYTES || name.len() > 64 {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!("the parameter {} is too long", truncate(&name)),
            ));
        }
        if name == "resource" {
            if raw.resources.len() == MAX_RESOURCES {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "too many resource parameters",
                ));
            }
            raw.resources.push(value.into_owned());
            continue;
        }
        if raw.params.len() > 64 {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "too many parameters",
            ));
        }
        if raw
            .params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!("{} is given more than once", truncate(&name)),
            ));
        }
    }
    Ok(raw)
}

fn truncate(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    None,
    Login,
    Consent,
    SelectAccount,
}

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub response_mode: ResponseMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt: Vec<Prompt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    /// The `claims` parameter (OIDC Core §5.5), validated in shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// RFC 9449 §10: the DPoP key the code is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

impl AuthorizationRequest {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// An OpenID Connect request (the `openid` scope).
    pub fn is_openid(&self) -> bool {
        self.has_scope("openid")
    }

    /// The `acr` values the request asks for, voluntarily (`acr_values`) or as
    /// essential (`claims`).
    pub fn wanted_acr_values(&self) -> Vec<String> {
        let mut wanted = self.acr_values.clone();
        for acr in self.essential_acr_values() {
            if !wanted.contains(&acr) {
                wanted.push(acr);
            }
        }
        wanted
    }

    /// The `acr` values the `claims` parameter marks essential for the ID token.
    pub fn essential_acr_values(&self) -> Vec<String> {
        let Some(acr) = self
            .claims
            .as_ref()
            .and_then(|c| c.get("id_token"))
            .and_then(|c| c.get("acr"))
        else {
            return Vec::new();
        };
        if acr.get("essential").and_then(Value::as_bool) != Some(true) {
            return Vec::new();
        }
        if let Some(value) = acr.get("value").and_then(Value::as_str) {
            return vec![value.to_string()];
        }
        acr.get("values")
            .and_then(Value::as_array)
            .map(|values| {
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The individual claims the `claims` parameter asks for in `target`
    /// (`id_token` or `userinfo`).
    pub fn requested_claims(&self, target: &str) -> Vec<String> {
        self.claims
            .as_ref()
            .and_then(|c| c.get(target))
            .and_then(Value::as_object)
            .map(|claims| claims.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// RFC 6749 Appendix A.4: scope tokens are `%x21 / %x23-5B / %x5D-7E`.
pub fn parse_scopes(scope: &str) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for token in scope.split(' ').filter(|s| !s.is_empty()) {
        let valid = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !valid || token.len() > 512 {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "a scope has characters outside RFC 6749 A.4",
            ));
        }
        if !out.iter().any(|s| s == token) {
            out.push(token.to_string());
        }
    }
    if out.len() > 50 {
        return Err(OAuthError::new(ErrorCode::InvalidScope, "too many scopes"));
    }
    Ok(out)
}

/// RFC 8707 §2: an absolute URI without a fragment.
pub fn valid_resource(resource: &str) -> bool {
    let Some((scheme, rest)) = resource.split_once(':') else {
        return false;
    };
    !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !resource.contains('#')
        && !resource
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
}

fn parse_prompt(text: &str) -> Result<Vec<Prompt>, OAuthError> {
    let mut out = Vec::new();
    for value in text.split(' ').filter(|s| !s.is_empty()) {
        let prompt = match value {
            "none" => Prompt::None,
            "login" => Prompt::Login,
            "consent" => Prompt::Consent,
            "select_account" => Prompt::SelectAccount,
            _ => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "prompt takes none, login, consent or select_account",
                ));
            }
        };
        if !out.contains(&prompt) {
            out.push(prompt);
        }
    }
    if out.contains(&Prompt::None) && out.len() > 1 {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(out)
}

/// The capabilities a client declares in the `claims` parameter
/// (`access_token.xms_cc.values`, Entra's): `cp1` says it handles claims
/// challenges. At most eight short names.
pub fn client_capabilities(claims: Option<&Value>) -> Vec<String> {
    claims
        .and_then(|c| c.pointer("/access_token/xms_cc/values"))
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(Value::as_str)
                .filter(|v| {
                    !v.is_empty() && v.len() <= 32 && v.chars().all(|c| c.is_ascii_alphanumeric())
                })
                .take(8)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The time (Unix seconds) a claims challenge asks the sign-in to be after:
/// an essential `access_token.nbf` with a `value` (a number, or its text).
pub fn sign_in_after(claims: Option<&Value>) -> Option<i64> {
    let nbf = claims?.pointer("/access_token/nbf")?;
    if nbf.get("essential").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    match nbf.get("value")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|t| *t > 0)
}

/// The claims challenge a resource answers a refused token of a capable
/// client with (`WWW-Authenticate: Bearer error="insufficient_claims",
/// claims="..."`): the `claims` parameter asking for a sign-in after `at`
/// (Unix seconds), base64-encoded as Entra does.
pub fn claims_challenge(at: i64) -> String {
    use base64::Engine as _;
    let claims = serde_json::json!({
        "access_token": { "nbf": { "essential": true, "value": at.to_string() } }
    });
    base64::engine::general_purpose::STANDARD.encode(claims.to_string())
}

/// OIDC Core §5.5: an object whose `userinfo` and `id_token` members are objects of
/// claim requests, each `null` or an object with `essential`, `value` or `values`.
pub fn parse_claims(text: &str) -> Result<Value, OAuthError> {
    let invalid = |why: &str| OAuthError::new(ErrorCode::InvalidRequest, format!("claims: {why}"));
    let value: Value = serde_json::from_str(text).map_err(|_| invalid("not JSON"))?;
    let object = value.as_object().ok_or_else(|| invalid("not an object"))?;
    for (target, requests) in object {
        // `access_token` is where a claims challenge asks (Entra's continuous
        // access evaluation): `xms_cc`, the client's capabilities; `nbf`, the
        // time the sign-in must be after.
        if target != "userinfo" && target != "id_token" && target != "access_token" {
            return Err(invalid(
                "only userinfo, id_token and access_token members are understood",
            ));
        }
        let requests = requests
            .as_object()
            .ok_or_else(|| invalid("members must be objects"))?;
        for request in requests.values() {
            match request {
                Value::Null => {}
                Value::Object(fields) => {
                    for (field, v) in fields {
                        let ok = match field.as_str() {
                            "essential" => v.is_boolean(),
                            "value" => !v.is_object(),
                            "values" => v.is_array(),
                            _ => true, // extensions are ignored (§5.5.1)
                        };
                        if !ok {
                            return Err(invalid("a claim request is malformed"));
                        }
                    }
                }
                _ => return Err(invalid("a claim request must be null or an object")),
            }
        }
    }
    Ok(value)
}

/// The `request_uri` prefix of pushed authorization requests (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The parameters of a pushed authorization request (RFC 9126 §2.1): the form
/// without the client's authentication; `request_uri` is not allowed in it.
pub fn pushed_parameters(
    form: &BTreeMap<String, String>,
    client_id: &str,
) -> Result<RawAuthorization, OAuthError> {
    if form.contains_key("request_uri") {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "request_uri cannot be pushed",
        ));
    }
    let mut raw = RawAuthorization::default();
    for (name, value) in form {
        match name.as_str() {
            "client_secret" | "client_assertion" | "client_assertion_type" => {}
            "resource" => raw.resources.push(value.clone()),
            _ => {
                if value.len() > MAX_PARAMETER_BYTES {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidRequest,
                        format!("the parameter {} is too long", truncate(name)),
                    ));
                }
                raw.params.insert(name.clone(), value.clone());
            }
        }
    }
    raw.params
        .insert("client_id".to_string(), client_id.to_string());
    Ok(raw)
}

/// Validates the rest of a request whose client and redirect URI the service has
/// accepted. Errors from here go back to the redirect URI.
pub fn validate(raw: &RawAuthorization) -> Result<AuthorizationRequest, OAuthError> {
    if raw.get("request").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported; use pushed authorization requests",
        ));
    }
    if raw.get("registration").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RegistrationNotSupported,
            "the registration parameter is not supported",
        ));
    }
    let client_id = raw
        .get("client_id")
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "client_id is required"))?;
    let redirect_uri = raw
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "redirect_uri is required"))?;
    match raw.get("response_type") {
        None => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "response_type is required",
            ));
        }
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported (no implicit or hybrid flow)",
            ));
        }
    }
    let response_mode = match raw.get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("form_post") => ResponseMode::FormPost,
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "response_mode takes query or form_post",
            ));
        }
    };
    let code_challenge = raw.get("code_challenge").ok_or_else(|| {
        OAuthError::new(
            ErrorCode::InvalidRequest,
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        )
    })?;
    if raw.get("code_challenge_method") != Some("S256") {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "code_challenge_method must be S256",
        ));
    }
    if !pkce::valid_challenge(code_challenge) {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "code_challenge is not an S256 challenge",
        ));
    }
    let scopes = parse_scopes(raw.get("scope").unwrap_or(""))?;
    let prompt = parse_prompt(raw.get("prompt").unwrap_or(""))?;
    let max_age = match raw.get("max_age") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| {
                    OAuthError::new(ErrorCode::InvalidRequest, "max_age is a number of seconds")
                })?,
        ),
    };
    let acr_values: Vec<String> = raw
        .get("acr_values")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let claims = raw.get("claims").map(parse_claims).transpose()?;
    for resource in &raw.resources {
        if !valid_resource(resource) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "a resource must be an absolute URI without a fragment",
            ));
        }
    }
    let dpop_jkt = raw.get("dpop_jkt").map(str::to_string);
    if dpop_jkt.as_ref().is_some_and(|j| {
        j.len() != 43
            || !j
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "dpop_jkt is not a JWK thumbprint",
        ));
    }
    Ok(AuthorizationRequest {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scopes,
        state: raw.get("state").map(str::to_string),
        nonce: raw.get("nonce").map(str::to_string),
        code_challenge: code_challenge.to_string(),
        response_mode,
        prompt,
        max_age,
        login_hint: raw.get("login_hint").map(str::to_string),
        acr_values,
        claims,
        resources: raw.resources.clone(),
        dpop_jkt,
    })
}

/// The parameters of an authorization response: the code (or an error), `state`
/// when the request had one, and `iss` (RFC 9207) so the client can tell which
/// server answered (mix-up defence).
pub fn response_parameters(
    outcome: Result<&str, &OAuthError>,
    state: Option<&str>,
    issuer: &str,
) -> Vec<(&'static str, String)> {
    let mut params = match outcome {
        Ok(code) => vec![("code", code.to_string())],
        Err(error) => vec![
            ("error", error.error.to_string()),
            ("error_description", error.description.clone()),
        ],
    };
    if let Some(state) = state {
        params.push(("state", state.to_string()));
    }
    params.push(("iss", issuer.to_string()));
    params
}

/// `redirect_uri` with `params` added to its query (RFC 6749 §4.1.2: the query
/// component is retained).
pub fn redirect_with(redirect_uri: &str, params: &[(&'static str, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    let query = serializer.finish();
    // Registered redirect URIs have no fragment (RFC 6749 §3.1.2); never add one.
    let base = redirect_uri.split('#').next().unwrap_or(redirect_uri);
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{base}{separator}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn raw(query: &str) -> Result<RawAuthorization, OAuthError> {
        collect(form_urlencoded::parse(query.as_bytes()))
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn good() -> String {
        format!(
            "response_type=code&client_id=c&redirect_uri=https%3A%2F%2Fapp%2Fcb&scope=openid%20profile&state=s&nonce=n&code_challenge={CHALLENGE}&code_challenge_method=S256"
        )
    }

    #[test]
    fn a_good_request_validates() {
        let request = validate(&raw(&good()).unwrap()).unwrap();
        assert_eq!(request.client_id, "c");
        assert_eq!(request.redirect_uri, "https://app/cb");
        assert_eq!(request.scopes, ["openid", "profile"]);
        assert!(request.is_openid());
        assert_eq!(request.response_mode, ResponseMode::Query);
        assert_eq!(request.state.as_deref(), Some("s"));
    }

    #[test]
    fn pkce_is_required_and_only_s256() {
        let without = good().replace(&format!("&code_challenge={CHALLENGE}"), "");
        assert_eq!(
            validate(&raw(&without).unwrap()).unwrap_err().error,
            "invalid_request"
        );
        let plain = good().replace("S256", "plain");
        assert_eq!(
            validate(&raw(&plain).unwrap()).unwrap_err().error,
            "invalid_request"
        );
        let omitted = good().replace("&code_challenge_method=S256", "");
        assert!(validate(&raw(&omitted).unwrap()).is_err());
    }

    #[test]
    fn implicit_and_hybrid_are_refused() {
        for response_type in ["token", "id_token", "code%20id_token", "code%20token"] {
            let query = good().replace(
                "response_type=code",
                &format!("response_type={response_type}"),
            );
            assert_eq!(
                validate(&raw(&query).unwrap()).unwrap_err().error,
                "unsupported_response_type"
            );
        }
        let fragment = format!("{}&response_mode=fragment", good());
        assert!(validate(&raw(&fragment).unwrap()).is_err());
        let request_object = format!("{}&request=eyJ", good());
        assert_eq!(
            validate(&raw(&request_object).unwrap()).unwrap_err().error,
            "request_not_supported"
        );
    }

    #[test]
    fn repeats_prompts_claims_and_resources() {
        assert!(raw("state=a&state=b").is_err());
        let two = raw("resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb").unwrap();
        assert_eq!(two.resources.len(), 2);
        let bad_resource = format!("{}&resource=https%3A%2F%2Fa%23frag", good());
        assert_eq!(
            validate(&raw(&bad_resource).unwrap()).unwrap_err().error,
            "invalid_target"
        );
        let none_login = format!("{}&prompt=none%20login", good());
        assert!(validate(&raw(&none_login).unwrap()).is_err());
        let login = format!("{}&prompt=login&max_age=0", good());
        let request = validate(&raw(&login).unwrap()).unwrap();
        assert_eq!(request.prompt, [Prompt::Login]);
        assert_eq!(request.max_age, Some(0));
        assert!(validate(&raw(&format!("{}&max_age=-1", good())).unwrap()).is_err());
        let claims = r#"{"id_token":{"acr":{"essential":true,"values":["c1"]},"email":null}}"#;
        let query = format!(
            "{}&claims={}",
            good(),
            form_urlencoded::byte_serialize(claims.as_bytes()).collect::<String>()
        );
        let request = validate(&raw(&query).unwrap()).unwrap();
        assert_eq!(request.essential_acr_values(), ["c1"]);
        let both = format!("{query}&acr_values=urn%3Atessera%3Aacr%3Amfa%20c1");
        let request_both = validate(&raw(&both).unwrap()).unwrap();
        assert_eq!(
            request_both.wanted_acr_values(),
            ["urn:tessera:acr:mfa", "c1"]
        );
        assert_eq!(request.requested_claims("id_token"), ["acr", "email"]);
        assert!(parse_claims(r#"{"id_token":{"acr":{"essential":"yes"}}}"#).is_err());
        assert!(parse_claims(r#"{"other":{}}"#).is_err());
        assert!(parse_claims("[]").is_err());
    }

    #[test]
    fn claims_challenges_round_trip() {
        use base64::Engine as _;
        let challenge = claims_challenge(1_800_000_000);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(challenge)
            .unwrap();
        let text = String::from_utf8(decoded).unwrap();
        let claims = parse_claims(&text).unwrap();
        assert_eq!(sign_in_after(Some(&claims)), Some(1_800_000_000));
        let capable =
            parse_claims(r#"{"access_token":{"xms_cc":{"values":["cp1","bad value"]}}}"#).unwrap();
        assert_eq!(client_capabilities(Some(&capable)), ["cp1"]);
        assert_eq!(sign_in_after(Some(&capable)), None);
        let not_essential =
            parse_claims(r#"{"access_token":{"nbf":{"value":"1800000000"}}}"#).unwrap();
        assert_eq!(sign_in_after(Some(&not_essential)), None);
        let long = vec![(Cow::from("state"), Cow::from("x".repeat(5000)))];
        assert!(collect(long).is_err());
    }

    #[test]
    fn scopes_follow_rfc_6749() {
        assert_eq!(
            parse_scopes("openid  openid email").unwrap(),
            ["openid", "email"]
        );
        assert!(parse_scopes("a\"b").is_err());
        assert!(parse_scopes("a\\b").is_err());
    }

    #[test]
    fn responses_keep_the_query_and_carry_iss() {
        let params = response_parameters(Ok("abc"), Some("x y"), "https://id");
        assert_eq!(
            redirect_with("https://app/cb?a=1", &params),
            "https://app/cb?a=1&code=abc&state=x+y&iss=https%3A%2F%2Fid"
        );
        let error = OAuthError::new(ErrorCode::AccessDenied, "no");
        let params = response_parameters(Err(&error), None, "https://id");
        assert_eq!(
            redirect_with("https://app/cb", &params),
            "https://app/cb?error=access_denied&error_description=no&iss=https%3A%2F%2Fid"
        );
    }
}

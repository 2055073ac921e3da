//! The management API client: saved settings, requests, and problem details turned
//! into readable errors.

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cli::Global;

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// What `tessera login` saves.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    pub server: Option<String>,
    pub token: Option<String>,
    /// From a device-flow sign-in: the refresh token that renews `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When `token` expires (Unix seconds), for a device-flow sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires: Option<i64>,
}

/// The scopes the CLI asks for: the management API, and a refresh token.
pub const CLI_SCOPE: &str = "urn:tessera:management/.default offline_access";

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Renews a saved device-flow token that expires within a minute (rotating the
/// refresh token), before a command uses it.
pub async fn refresh_saved(global: &Global) -> anyhow::Result<()> {
    if global.token.is_some() {
        return Ok(());
    }
    let mut saved = load_saved();
    let (Some(refresh), Some(expires)) = (saved.refresh_token.clone(), saved.token_expires) else {
        return Ok(());
    };
    if unix_now() + 60 < expires {
        return Ok(());
    }
    let server = global
        .server
        .clone()
        .or(saved.server.clone())
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let client = Client::with(&server, None, global.ca_cert.as_deref())?;
    let (status, body) = client
        .oauth_form(
            "/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", tessera_service::oauth::CLI_CLIENT_ID),
            ],
        )
        .await?;
    if !status.is_success() {
        saved.token = None;
        saved.refresh_token = None;
        saved.token_expires = None;
        save(&saved)?;
        bail!(
            "the sign-in has ended ({}): run `tessera login` again",
            body.get("error")
                .and_then(Value::as_str)
                .unwrap_or("refused")
        );
    }
    saved.token = body
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_string);
    saved.refresh_token = body
        .get("refresh_token")
        .and_then(Value::as_str)
        .map(str::to_string);
    saved.token_expires = body
        .get("expires_in")
        .and_then(Value::as_i64)
        .map(|seconds| unix_now() + seconds);
    save(&saved)?;
    Ok(())
}

fn config_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("TESSERA_CONFIG_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Ok(dir) = std::env::var("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(dir).join("tessera"));
    }
    std::env::var("HOME")
        .ok()
        .map(|home| PathBuf::from(home).join(".config").join("tessera"))
}

fn saved_path() -> Option<PathBuf> {
    config_dir().map(|dir| dir.join("cli.json"))
}

pub fn load_saved() -> Saved {
    saved_path()
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Saves settings readable by the owner only (they include a bearer token).
pub fn save(saved: &Saved) -> anyhow::Result<PathBuf> {
    let path = saved_path().ok_or_else(|| {
        anyhow!("cannot tell where to save settings (set HOME or TESSERA_CONFIG_DIR)")
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let body = serde_json::to_vec_pretty(saved)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its old mode on open: make it private before the token goes in.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        if let Some(dir) = path.parent() {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    file.write_all(&body)?;
    Ok(path)
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    pub fn new(global: &Global) -> anyhow::Result<Client> {
        let saved = load_saved();
        let server = global
            .server
            .clone()
            .or(saved.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_string());
        let token = global.token.clone().or(saved.token);
        Client::with(&server, token, global.ca_cert.as_deref())
    }

    pub fn with(
        server: &str,
        token: Option<String>,
        ca_cert: Option<&std::path::Path>,
    ) -> anyhow::Result<Client> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let base = Url::parse(server).with_context(|| format!("{server:?} is not a URL"))?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("tessera-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_cert {
            let pem =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let certificate =
                reqwest::Certificate::from_pem(&pem).context("the CA certificate is not PEM")?;
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder.build().context("cannot build the HTTP client")?;
        Ok(Client { http, base, token })
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<Url> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| anyhow!("the server URL cannot have paths"))?;
            path.pop_if_empty();
            path.extend(["api", "v1"]);
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    pub async fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
        if_match: Option<i64>,
    ) -> anyhow::Result<Value> {
        Ok(self
            .request_versioned(method, segments, query, body, if_match)
            .await?
            .0)
    }

    /// A GET with the version its `ETag` gives (to send back as `If-Match`).
    pub async fn get_versioned(&self, segments: &[&str]) -> anyhow::Result<(Value, Option<i64>)> {
        self.request_versioned(Method::GET, segments, &[], None, None)
            .await
    }

    async fn request_versioned(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
        if_match: Option<i64>,
    ) -> anyhow::Result<(Value, Option<i64>)> {
        let url = self.url(segments, query)?;
        let mut request = self.http.request(method, url.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(version) = if_match {
            request = request.header(reqwest::header::IF_MATCH, format!("W/\"{version}\""));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let version = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.trim_start_matches("W/")
                    .trim_matches('"')
                    .parse::<i64>()
                    .ok()
            });
        let bytes = response
            .bytes()
            .await
            .context("the server's answer was cut off")?;
        if status.is_success() {
            if status == StatusCode::NO_CONTENT || bytes.is_empty() {
                return Ok((Value::Null, version));
            }
            return serde_json::from_slice(&bytes)
                .map(|value| (value, version))
                .context("the server answered with something that is not JSON");
        }
        let mut error = problem_error(status, &bytes, self.token.is_none());
        if let (Some(refused), Some(challenge)) =
            (error.downcast_mut::<ApiError>(), challenge.as_deref())
        {
            refused.acr_values = step_up_asked(challenge);
        }
        Err(error)
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// A page or document of the server that is not JSON (no bearer token).
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base());
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .context("the server's answer was cut off")?;
        if !status.is_success() {
            anyhow::bail!("{url}: HTTP {status}");
        }
        Ok(text)
    }

    /// A POST with the version read (If-Match).
    pub async fn post_versioned(
        &self,
        segments: &[&str],
        body: &Value,
        if_match: Option<i64>,
    ) -> anyhow::Result<Value> {
        self.request(Method::POST, segments, &[], Some(body), if_match)
            .await
    }

    /// A form POST to one of the OAuth endpoints (no bearer token): the status and
    /// the JSON answer.
    pub async fn oauth_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = self
            .base
            .join(path)
            .with_context(|| format!("{path} is not a path"))?;
        let response = self
            .http
            .post(url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields)
                    .finish(),
            )
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.request(Method::GET, segments, query, None, None).await
    }

    /// A GET that answers `None` where the server answers 404.
    pub async fn get_optional(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<Option<Value>> {
        match self.get(segments, query).await {
            Ok(value) => Ok(Some(value)),
            Err(error)
                if error
                    .downcast_ref::<ApiError>()
                    .is_some_and(|refusal| refusal.status == StatusCode::NOT_FOUND) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    pub async fn post(&self, segments: &[&str], body: &Value) -> anyhow::Result<Value> {
        self.request(Method::POST, segments, &[], Some(body), None)
            .await
    }

    pub async fn patch(
        &self,
        segments: &[&str],
        body: &Value,
        if_match: Option<i64>,
    ) -> anyhow::Result<Value> {
        self.request(Method::PATCH, segments, &[], Some(body), if_match)
            .await
    }

    pub async fn put(
        &self,
        segments: &[&str],
        body: &Value,
        if_match: Option<i64>,
    ) -> anyhow::Result<Value> {
        self.request(Method::PUT, segments, &[], Some(body), if_match)
            .await
    }

    pub async fn delete(&self, segments: &[&str], if_match: Option<i64>) -> anyhow::Result<()> {
        self.request(Method::DELETE, segments, &[], None, if_match)
            .await
            .map(|_| ())
    }

    /// Every item of a list, following cursors when `all`, else one page.
    pub async fn list(
        &self,
        segments: &[&str],
        mut query: Vec<(&str, String)>,
        all: bool,
    ) -> anyhow::Result<(Vec<Value>, Option<String>)> {
        let mut items = Vec::new();
        loop {
            let page = self.get(segments, &query).await?;
            if let Some(values) = page.get("value").and_then(Value::as_array) {
                items.extend(values.iter().cloned());
            }
            let next = page
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_string);
            match next {
                Some(cursor) if all => {
                    query.retain(|(k, _)| *k != "cursor");
                    query.push(("cursor", cursor));
                }
                other => return Ok((items, other)),
            }
        }
    }
}

/// A refusal by the server, made readable from its problem document (RFC 9457).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    message: String,
    /// What an RFC 9470 challenge asks the sign-in to prove (`acr_values`).
    pub acr_values: Option<String>,
}

/// The `acr_values` of an RFC 9470 `insufficient_user_authentication`
/// challenge (`WWW-Authenticate: Bearer error="...", acr_values="..."`).
pub fn step_up_asked(challenge: &str) -> Option<String> {
    if !challenge.contains("error=\"insufficient_user_authentication\"") {
        return None;
    }
    let start = challenge.find("acr_values=\"")? + "acr_values=\"".len();
    let rest = &challenge[start..];
    let value = &rest[..rest.find('"')?];
    // Names only: a value that could carry anything else is not followed.
    let clean = !value.is_empty()
        && value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | ':' | '-' | '_' | '.'));
    clean.then(|| value.to_string())
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// The status, code and detail on one line, then what helps. A validation problem's
/// detail already repeats its field errors, so it is said once, by field.
fn problem_error(status: StatusCode, body: &[u8], no_token: bool) -> anyhow::Error {
    let problem: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let detail = problem.get("detail").and_then(Value::as_str).unwrap_or("");
    let code = problem.get("code").and_then(Value::as_str).unwrap_or("");
    let field_errors: Vec<String> = problem
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    let field = error.get("field").and_then(Value::as_str).unwrap_or("");
                    let text = error.get("message").and_then(Value::as_str).unwrap_or("");
                    if field.is_empty() {
                        text.to_string()
                    } else {
                        format!("{field}: {text}")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut message = match field_errors.as_slice() {
        [] => format!("{} {code}: {detail}", status.as_u16()),
        [one] => format!("{} {code}: {one}", status.as_u16()),
        several => format!(
            "{} {code}: the request is invalid:\n  {}",
            status.as_u16(),
            several.join("\n  ")
        ),
    };
    if let Some(id) = problem.get("correlationId").and_then(Value::as_str) {
        message.push_str(&format!("\n  (correlation id {id})"));
    }
    if status == StatusCode::UNAUTHORIZED && no_token {
        message.push_str("\n  hint: sign in with `tessera login --server URL --token TOKEN`");
    }
    if code == "insufficient_user_authentication" {
        // RFC 9470: the sign-in behind this token is not strong enough.
        message.push_str(
            "\n  hint: sign in again with `tessera login` (the device flow), using a method that meets it, then repeat the command",
        );
    }
    anyhow::Error::new(ApiError {
        status,
        message,
        acr_values: None,
    })
}

pub fn require(condition: bool, message: &str) -> anyhow::Result<()> {
    if !condition {
        bail!("{message}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::step_up_asked;

    #[test]
    fn a_step_up_challenge_names_what_to_ask_for() {
        assert_eq!(
            step_up_asked(
                r#"Bearer error="insufficient_user_authentication", error_description="a step-up", acr_values="c1""#
            )
            .as_deref(),
            Some("c1")
        );
        assert_eq!(
            step_up_asked(r#"Bearer error="insufficient_user_authentication", acr_values="urn:tessera:acr:mfa""#)
                .as_deref(),
            Some("urn:tessera:acr:mfa")
        );
        // Another error, no value, or a value that is not a name: nothing.
        assert_eq!(
            step_up_asked(r#"Bearer error="invalid_token", acr_values="c1""#),
            None
        );
        assert_eq!(
            step_up_asked(r#"Bearer error="insufficient_user_authentication""#),
            None
        );
        assert_eq!(
            step_up_asked(
                r#"Bearer error="insufficient_user_authentication", acr_values="c1&x=<y>""#
            ),
            None
        );
    }
}

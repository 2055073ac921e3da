//! SCIM requests to an application, over the `ScimTarget` port.
//!
//! What goes wrong is told apart: no answer at all, or credentials refused
//! (401, 403), is the target's failure and ends the cycle; anything else (a
//! refusal of this object, throttling, a server error, an answer that is not
//! SCIM) is the object's, tried again later (the cycle stops when too many in a
//! row fail). What the application says is kept short and plain; an id it gives
//! is used in a URL only when it is one.

use serde_json::{Map, Value, json};
use tessera_scim::schema::{ENTERPRISE_USER, GROUP, USER};

use super::ScimTarget;

/// The most characters of an application's error kept in the log.
const MAX_DETAIL: usize = 300;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The application refused this object, or failed on it.
    Object(String),
    /// The application holds one already (409).
    Conflict(String),
    /// The application cannot be used now.
    Target(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Object(m) | Failure::Conflict(m) | Failure::Target(m) => m,
        }
    }
}

/// The longest id an application may give.
const MAX_ID: usize = 256;

/// An id the application gave, if it is one a URL can carry as a path segment.
fn usable_id(id: Option<&str>) -> Result<String, Failure> {
    match id {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_ID
                && id != "."
                && id != ".."
                && !id.chars().any(|c| c.is_control() || hidden(c)) =>
        {
            Ok(id.to_string())
        }
        _ => Err(Failure::Object(
            "the application gave no usable id (at most 256 characters, not . or .., no control characters)".into(),
        )),
    }
}

/// Characters that change how text around them reads without showing
/// themselves (bidirectional overrides, zero-width characters).
fn hidden(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

pub(crate) type Reply<T> = Result<T, Failure>;

/// Users or groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Users,
    Groups,
}

impl Resource {
    fn path(self) -> &'static str {
        match self {
            Resource::Users => "Users",
            Resource::Groups => "Groups",
        }
    }
}

/// A SCIM client for one application.
pub(crate) struct Client<'a> {
    pub port: &'a dyn ScimTarget,
    /// The base URL, without a trailing `/`.
    pub base: &'a str,
    pub token: &'a str,
}

/// An application's words, cut short and without control characters (what it
/// says goes into the log, never into a page as markup).
fn detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let said = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| text.to_string());
    said.chars()
        .filter(|c| !c.is_control() && !hidden(*c))
        .take(MAX_DETAIL)
        .collect()
}

fn classify(status: u16, body: &[u8]) -> Failure {
    let said = detail(body);
    let message = if said.is_empty() {
        format!("the application answered {status}")
    } else {
        format!("the application answered {status}: {said}")
    };
    match status {
        401 | 403 => Failure::Target(message),
        409 => Failure::Conflict(message),
        _ => Failure::Object(message),
    }
}

/// Double quotes and backslashes escaped for a SCIM filter's string.
fn filter_string(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into())
}

impl Client<'_> {
    fn url(&self, resource: Resource, id: Option<&str>) -> Result<url::Url, Failure> {
        let mut url = url::Url::parse(self.base)
            .map_err(|_| Failure::Target("the endpoint is not a URL".into()))?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|_| Failure::Target("the endpoint is not a base URL".into()))?;
            segments.pop_if_empty().push(resource.path());
            if let Some(id) = id {
                segments.push(id);
            }
        }
        Ok(url)
    }

    async fn call(
        &self,
        method: &str,
        url: url::Url,
        body: Option<&Value>,
    ) -> Reply<(u16, Vec<u8>)> {
        let body = body.map(|b| b.to_string().into_bytes());
        self.port
            .send(method, url.as_str(), self.token, body)
            .await
            .map_err(|why| Failure::Target(format!("the application could not be reached: {why}")))
    }

    fn json(status: u16, body: &[u8]) -> Reply<Value> {
        serde_json::from_slice(body).map_err(|_| {
            Failure::Object(format!(
                "the application answered {status} with something that is not JSON"
            ))
        })
    }

    /// The resource whose `attribute` equals `value`, with its id: checked
    /// (an application that ignores the filter finds nothing here), and refused
    /// when several have it.
    pub async fn find(
        &self,
        resource: Resource,
        attribute: &str,
        value: &str,
    ) -> Reply<Option<(String, Value)>> {
        let mut url = self.url(resource, None)?;
        url.query_pairs_mut()
            .append_pair(
                "filter",
                &format!("{attribute} eq {}", filter_string(value)),
            )
            .append_pair("count", "2");
        let (status, body) = self.call("GET", url, None).await?;
        if status != 200 {
            return Err(classify(status, &body));
        }
        let list = Self::json(status, &body)?;
        let matching: Vec<&Value> = list["Resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|item| {
                item.get(attribute)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(value))
            })
            .collect();
        match matching.as_slice() {
            [] => Ok(None),
            [item] => Ok(Some((usable_id(item["id"].as_str())?, (*item).clone()))),
            _ => Err(Failure::Object(format!(
                "the application holds several resources whose {attribute} is {value:?}: Tessera does not choose one"
            ))),
        }
    }

    /// Creates a resource; its id on the application.
    pub async fn create(&self, resource: Resource, body: &Map<String, Value>) -> Reply<String> {
        let mut body = body.clone();
        body.insert("schemas".into(), schemas(resource, &body));
        let (status, reply) = self
            .call(
                "POST",
                self.url(resource, None)?,
                Some(&Value::Object(body)),
            )
            .await?;
        if status != 201 && status != 200 {
            return Err(classify(status, &reply));
        }
        let made = Self::json(status, &reply)?;
        usable_id(made["id"].as_str())
    }

    /// The resource with this id, if the application still has it.
    pub async fn get(&self, resource: Resource, id: &str) -> Reply<Option<Value>> {
        let (status, body) = self
            .call("GET", self.url(resource, Some(id))?, None)
            .await?;
        match status {
            200 => Ok(Some(Self::json(status, &body)?)),
            404 => Ok(None),
            _ => Err(classify(status, &body)),
        }
    }

    /// Applies PATCH operations (none: nothing is sent). `false` when the
    /// application no longer has the resource.
    pub async fn patch(&self, resource: Resource, id: &str, operations: Vec<Value>) -> Reply<bool> {
        if operations.is_empty() {
            return Ok(true);
        }
        let body = tessera_scim::outbound::patch_request(operations);
        let (status, reply) = self
            .call("PATCH", self.url(resource, Some(id))?, Some(&body))
            .await?;
        match status {
            200 | 204 => Ok(true),
            404 => Ok(false),
            _ => Err(classify(status, &reply)),
        }
    }

    /// Deletes a resource (one already gone counts as deleted).
    pub async fn delete(&self, resource: Resource, id: &str) -> Reply<()> {
        let (status, body) = self
            .call("DELETE", self.url(resource, Some(id))?, None)
            .await?;
        match status {
            200 | 204 | 404 => Ok(()),
            _ => Err(classify(status, &body)),
        }
    }
}

/// The `schemas` a resource names.
fn schemas(resource: Resource, body: &Map<String, Value>) -> Value {
    match resource {
        Resource::Users if body.contains_key(ENTERPRISE_USER) => {
            json!([USER, ENTERPRISE_USER])
        }
        Resource::Users => json!([USER]),
        Resource::Groups => json!([GROUP]),
    }
}

/// An application that answers every request with the same reply, and keeps
/// the URLs it was sent.
#[cfg(any(test, feature = "fuzzing"))]
struct Answering {
    status: u16,
    body: Vec<u8>,
    urls: std::sync::Mutex<Vec<String>>,
}

#[cfg(any(test, feature = "fuzzing"))]
#[async_trait::async_trait]
impl ScimTarget for Answering {
    async fn send(
        &self,
        _method: &str,
        url: &str,
        _token: &str,
        _body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), String> {
        if let Ok(mut urls) = self.urls.lock() {
            urls.push(url.to_string());
        }
        Ok((self.status, self.body.clone()))
    }
}

/// `%XX` escapes decoded (what a server reads from a path segment).
#[cfg(any(test, feature = "fuzzing"))]
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[at], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// For the fuzz target `scim_target_reply` (feature `fuzzing`): reads `body`,
/// answered with `status`, the way a cycle reads it (a search, a create, a read
/// followed by the PATCH computed from what the application holds, a delete),
/// the ids the application gave going into the next requests' URLs. Checks
/// what comes out: a message is bounded and plain, and every URL is the
/// endpoint's, its path the endpoint's path, the resource type and at most one
/// segment that decodes back to the id the application gave.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub fn check_reply(status: u16, body: &[u8]) {
    const BASE: &str = "https://app.example:8443/scim/v2";
    let port = Answering {
        status,
        body: body.to_vec(),
        urls: std::sync::Mutex::new(Vec::new()),
    };
    let client = Client {
        port: &port,
        base: BASE,
        token: "token",
    };
    let failed = |failure: &Failure| {
        let message = failure.message();
        assert!(message.chars().count() <= MAX_DETAIL + 80, "{message}");
        assert!(!message.chars().any(|c| c.is_control() || hidden(c)));
    };
    let mut desired = Map::new();
    desired.insert("userName".into(), json!("ada@example.org"));
    desired.insert("active".into(), json!(true));
    desired.insert("name".into(), json!({"givenName": "Ada"}));
    let managed = [
        "userName".to_string(),
        "active".into(),
        "name.givenName".into(),
    ];
    let mut given: Vec<String> = vec!["id-1".into()];
    let run = async {
        for resource in [Resource::Users, Resource::Groups] {
            let mut ids = vec!["id-1".to_string()];
            match client.find(resource, "userName", "ada@example.org").await {
                Ok(Some((id, _))) => ids.push(id),
                Ok(None) => {}
                Err(failure) => failed(&failure),
            }
            match client.create(resource, &desired).await {
                Ok(id) => ids.push(id),
                Err(failure) => failed(&failure),
            }
            for id in &ids {
                match client.get(resource, id).await {
                    Ok(Some(current)) => {
                        let operations = tessera_scim::outbound::patch_operations(
                            current.as_object().unwrap_or(&Map::new()),
                            &desired,
                            &managed,
                        );
                        assert!(operations.len() <= managed.len());
                        if let Err(failure) = client.patch(resource, id, operations).await {
                            failed(&failure);
                        }
                    }
                    Ok(None) => {}
                    Err(failure) => failed(&failure),
                }
                if let Err(failure) = client.delete(resource, id).await {
                    failed(&failure);
                }
            }
            given.extend(ids);
        }
    };
    // The port answers at once and the client neither sleeps nor spawns: one
    // poll runs it all (a client that waited would fail here, not pass).
    {
        let mut run = std::pin::pin!(run);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(run.as_mut().poll(&mut context).is_ready());
    }
    let base = url::Url::parse(BASE).unwrap();
    for sent in port.urls.lock().unwrap().iter() {
        let url = url::Url::parse(sent).expect("a URL");
        assert_eq!(
            (url.scheme(), url.host_str(), url.port()),
            (base.scheme(), base.host_str(), base.port()),
            "{sent}"
        );
        let segments: Vec<&str> = url.path_segments().unwrap().collect();
        assert!(
            matches!(segments.as_slice(), ["scim", "v2", "Users" | "Groups", ..])
                && segments.len() <= 4,
            "{sent}"
        );
        match segments.get(3) {
            Some(segment) => {
                assert!(url.query().is_none(), "{sent}");
                let id = percent_decoded(segment);
                assert!(given.contains(&id), "{sent}");
            }
            None => assert!(
                url.query().is_none() || url.query().is_some_and(|q| q.starts_with("filter=")),
                "{sent}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_of_every_kind_are_read_safely() {
        for (status, body) in [
            (
                200,
                &b"{\"Resources\":[{\"id\":\"../x\",\"userName\":\"ADA@example.org\"}]}"[..],
            ),
            (201, b"{\"id\":\"a/b?c#d\"}"),
            (200, b"{\"id\":\"..\"}"),
            (
                200,
                b"{\"userName\":7,\"name\":\"x\",\"urn:x:y\":{\"a\":{\"b\":1}}}",
            ),
            (500, b"\x1b[31m\xff\xfe"),
            (401, b"{\"detail\":\"\\u202e nope\"}"),
            (204, b""),
        ] {
            check_reply(status, body);
        }
    }

    #[test]
    fn failures_are_told_apart() {
        assert!(
            matches!(classify(400, b"{\"detail\":\"bad\"}"), Failure::Object(m) if m.ends_with("400: bad"))
        );
        assert!(matches!(classify(409, b""), Failure::Conflict(_)));
        for status in [429, 500, 503, 302, 404] {
            assert!(
                matches!(classify(status, b""), Failure::Object(_)),
                "{status}"
            );
        }
        for status in [401, 403] {
            assert!(
                matches!(classify(status, b""), Failure::Target(_)),
                "{status}"
            );
        }
        for bad in [
            None,
            Some(""),
            Some("."),
            Some(".."),
            Some("a\tb"),
            Some("a\u{202e}b"),
        ] {
            assert!(usable_id(bad).is_err(), "{bad:?}");
        }
        assert!(usable_id(Some(&"x".repeat(257))).is_err());
        assert_eq!(
            usable_id(Some("2819c223-7f76-453a")).unwrap(),
            "2819c223-7f76-453a"
        );
        let long = "x\u{1b}".repeat(1000);
        assert_eq!(detail(long.as_bytes()).len(), MAX_DETAIL);
        assert_eq!(filter_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}

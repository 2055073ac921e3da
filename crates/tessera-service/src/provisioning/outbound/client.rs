//! SCIM requests to an application, over the `ScimTarget` port.
//!
//! What goes wrong is told apart: a request the application refused for this
//! object (a 4xx but 401, 403, 408 and 429) is the object's failure; anything
//! else (no answer, refused credentials, throttling, server errors, an answer
//! that is not SCIM) is the target's, and ends the cycle.

use serde_json::{Map, Value, json};
use tessera_scim::schema::{ENTERPRISE_USER, GROUP, USER};

use super::ScimTarget;

/// The most characters of an application's error kept in the log.
const MAX_DETAIL: usize = 300;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The application refused this object.
    Object(String),
    /// The application cannot be used now.
    Target(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Object(m) | Failure::Target(m) => m,
        }
    }
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
        .filter(|c| !c.is_control())
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
        401 | 403 | 408 | 429 => Failure::Target(message),
        400..=499 => Failure::Object(message),
        _ => Failure::Target(message),
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
            Failure::Target(format!(
                "the application answered {status} with something that is not JSON"
            ))
        })
    }

    /// The first resource whose `attribute` equals `value`, with its id.
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
        let found = list["Resources"]
            .as_array()
            .and_then(|items| items.first())
            .cloned();
        match found {
            Some(item) => match item["id"].as_str() {
                Some(id) if !id.is_empty() => Ok(Some((id.to_string(), item.clone()))),
                _ => Err(Failure::Target(
                    "the application listed a resource without an id".into(),
                )),
            },
            None => Ok(None),
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
        match made["id"].as_str() {
            Some(id) if !id.is_empty() => Ok(id.to_string()),
            _ => Err(Failure::Target(
                "the application made a resource but gave no id".into(),
            )),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_apart() {
        assert!(
            matches!(classify(400, b"{\"detail\":\"bad\"}"), Failure::Object(m) if m.ends_with("400: bad"))
        );
        assert!(matches!(classify(409, b""), Failure::Object(_)));
        for status in [401, 403, 429, 500, 503, 302] {
            assert!(
                matches!(classify(status, b""), Failure::Target(_)),
                "{status}"
            );
        }
        let long = "x\u{1b}".repeat(1000);
        assert_eq!(detail(long.as_bytes()).len(), MAX_DETAIL);
        assert_eq!(filter_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}

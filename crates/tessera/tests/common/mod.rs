//! What several black-box tests share.

pub mod pages;

use serde_json::Value;

/// The management API of a running server, as its bootstrap administrator,
/// from a blocking test.
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    pub runtime: tokio::runtime::Runtime,
}

#[allow(dead_code)]
impl Api {
    /// The status and JSON body of a call to `/api/v1{path}`.
    pub fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.runtime.block_on(async {
            let mut request = self
                .http
                .request(method, format!("{}/api/v1{path}", self.base))
                .bearer_auth(&self.token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
    }

    /// A call that must succeed; its body.
    pub fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body);
        assert!((200..300).contains(&status), "{path}: {status} {value}");
        value
    }
}

/// The JSON lines a helper process appended to `path` (none while it does not
/// exist yet).
#[allow(dead_code)]
pub fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

//! The outbound HTTP client (reqwest), behind the application's ports: CRLs and
//! OCSP ([`RevocationFetcher`]), external issuers' discovery documents and key sets,
//! back-channel logout ([`OutboundHttp`]). Bounded bodies and timeouts everywhere.

use std::time::Duration;

use anyhow::Context as _;
use tessera_service::authn::RevocationFetcher;
use tessera_service::oauth::OutboundHttp;

/// Fetches CRLs, OCSP answers and external issuers' keys over HTTP: bounded, with
/// timeouts.
pub struct HttpFetcher {
    pub(crate) client: reqwest::Client,
}

impl HttpFetcher {
    /// For CRLs and OCSP: follows up to three redirects.
    pub fn new() -> anyhow::Result<HttpFetcher> {
        HttpFetcher::build(reqwest::redirect::Policy::limited(3))
    }

    /// For discovery documents, key sets, logout tokens and checkpoints: they go
    /// where administrators pointed them, never where a redirect would send them.
    pub fn without_redirects() -> anyhow::Result<HttpFetcher> {
        HttpFetcher::build(reqwest::redirect::Policy::none())
    }

    fn build(redirects: reqwest::redirect::Policy) -> anyhow::Result<HttpFetcher> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(redirects)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(HttpFetcher { client })
    }
}

/// A successful response's body, refused once it passes `max` bytes.
async fn bounded_body(
    mut response: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, String> {
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > max {
            return Err(format!("the {what} is larger than {} KiB", max / 1024));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Largest discovery document or key set fetched.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

#[async_trait::async_trait]
impl OutboundHttp for HttpFetcher {
    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        bounded_body(response, MAX_JWKS_BYTES, "document").await
    }

    async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Result<u16, String> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let response = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .timeout(Duration::from_secs(5))
            .body(body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        Ok(response.status().as_u16())
    }
}

/// Largest CRL fetched.
const MAX_CRL_BYTES: usize = 64 * 1024 * 1024;

#[async_trait::async_trait]
impl RevocationFetcher for HttpFetcher {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        bounded_body(response, MAX_CRL_BYTES, "CRL").await
    }

    async fn ocsp(&self, url: &str, request: Vec<u8>) -> Result<Vec<u8>, String> {
        let response = self
            .client
            .post(url)
            .header("content-type", "application/ocsp-request")
            .timeout(Duration::from_secs(5))
            .body(request)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        bounded_body(
            response,
            tessera_authn::ocsp::MAX_RESPONSE_BYTES,
            "OCSP response",
        )
        .await
    }
}

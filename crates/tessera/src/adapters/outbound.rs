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

    async fn get_public(&self, url: &str, accept: &str, max: usize) -> Result<Vec<u8>, String> {
        let parsed = reqwest::Url::parse(url).map_err(|_| "not a URL".to_string())?;
        let loopback_url = match parsed.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        // An address given literally is checked before anything is sent.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !address_allowed(ip, loopback_url)
        {
            return Err("the address is not a public one".to_string());
        }
        let response = self
            .client
            .get(url)
            .header("accept", accept)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        // A name that resolved to an internal address: nothing of the answer is
        // read or told.
        match response.remote_addr() {
            Some(peer) if address_allowed(peer.ip(), loopback_url) => {}
            _ => return Err("the address is not a public one".to_string()),
        }
        bounded_body(response, max, "document").await
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

/// Whether an address may be fetched from on an administrator's word: a global
/// unicast one, or a loopback one when the URL named the loopback host.
pub(crate) fn address_allowed(ip: std::net::IpAddr, loopback_url: bool) -> bool {
    use std::net::IpAddr;
    if ip.is_loopback() {
        return loopback_url;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return address_allowed(IpAddr::V4(v4), loopback_url);
            }
            let segments = v6.segments();
            let embedded = |high: u16, low: u16| {
                std::net::Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)
            };
            // Addresses that carry an IPv4 one: NAT64 (64:ff9b::/96), 6to4
            // (2002::/16) and the old IPv4-compatible form (::a.b.c.d) are judged
            // by it; Teredo (2001::/32) hides it, and is refused.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0; 6] {
                return address_allowed(
                    IpAddr::V4(embedded(segments[6], segments[7])),
                    loopback_url,
                );
            }
            if segments[0] == 0x2002 {
                return address_allowed(
                    IpAddr::V4(embedded(segments[1], segments[2])),
                    loopback_url,
                );
            }
            if segments[0] == 0x2001 && segments[1] == 0 {
                return false;
            }
            let first = segments[0];
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)) // documentation
        }
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

#[cfg(test)]
mod tests {
    use super::address_allowed;

    #[test]
    fn only_public_addresses_are_fetched_from() {
        let allowed = |text: &str, loopback| address_allowed(text.parse().unwrap(), loopback);
        assert!(allowed("93.184.216.34", false));
        assert!(allowed("2606:2800:220:1::248", false));
        for internal in [
            "10.0.0.5",
            "172.16.1.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "127.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!allowed(internal, false), "{internal}");
        }
        assert!(allowed("127.0.0.1", true), "loopback for a loopback URL");
        assert!(!allowed("10.0.0.5", true));
    }
}

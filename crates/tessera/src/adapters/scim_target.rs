//! The guarded HTTP client of outbound provisioning (requests to
//! applications' SCIM services) and of Shared Signals (pushes to receivers,
//! calls to transmitters).
//!
//! An endpoint is an administrator's word, and provisioning writes (POST, PATCH,
//! DELETE), so the address is checked before anything is sent: names are
//! resolved by a resolver that keeps only the addresses provisioning may reach
//! (public ones; loopback for `localhost`; private ones when the configuration
//! allows; never link-local, so never a cloud metadata service), and a literal
//! address is checked likewise. No redirect is followed; answers are bounded.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use tessera_service::provisioning::outbound::ScimTarget;
use tessera_service::signals::SignalsTransport;

use super::outbound::address_allowed;

/// Largest answer read from an application.
const MAX_BODY: usize = 1024 * 1024;

/// Whether provisioning may reach `ip`: a public address; a private one, or a
/// loopback one the URL named, only when the configuration allows it.
fn reachable(ip: IpAddr, loopback_name: bool, private_ok: bool) -> bool {
    if !private_ok {
        return address_allowed(ip, false);
    }
    if address_allowed(ip, loopback_name) {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_private(),
            None => (v6.segments()[0] & 0xfe00) == 0xfc00,
        },
    }
}

/// Resolves names to the addresses provisioning may reach only.
struct Guarded {
    private_ok: bool,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let private_ok = self.private_ok;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let loopback_name = host.eq_ignore_ascii_case("localhost");
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found
                .filter(|a| reachable(a.ip(), loopback_name, private_ok))
                .collect();
            if allowed.is_empty() {
                return Err("the name resolves to no address provisioning may reach".into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The SCIM client (reqwest) behind `ScimTarget`.
pub struct ScimClient {
    client: reqwest::Client,
    private_ok: bool,
}

impl ScimClient {
    pub fn new(private_ok: bool) -> anyhow::Result<ScimClient> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the guard.
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(Guarded { private_ok }))
            .build()
            .context("cannot build the provisioning HTTP client")?;
        Ok(ScimClient { client, private_ok })
    }
}

impl ScimClient {
    /// Sends a request to an address the client may reach; the status, the
    /// `Content-Type` and the (bounded) body.
    async fn exchange(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String, Vec<u8>), String> {
        let parsed = reqwest::Url::parse(url).map_err(|_| "not a URL".to_string())?;
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !reachable(ip, ip.is_loopback(), self.private_ok)
        {
            return Err("the address is not one this client may reach".to_string());
        }
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| "not an HTTP method".to_string())?;
        let mut request = self.client.request(method, parsed);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| e.without_url().to_string())?
        {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(format!("the answer is larger than {} KiB", MAX_BODY / 1024));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, content_type, bytes))
    }
}

#[async_trait::async_trait]
impl ScimTarget for ScimClient {
    async fn send(
        &self,
        method: &str,
        url: &str,
        token: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut headers = vec![
            (
                "accept".to_string(),
                "application/scim+json, application/json".to_string(),
            ),
            ("authorization".to_string(), format!("Bearer {token}")),
        ];
        if body.is_some() {
            headers.push((
                "content-type".to_string(),
                "application/scim+json".to_string(),
            ));
        }
        self.exchange(method, url, &headers, body)
            .await
            .map(|(status, _, body)| (status, body))
    }
}

/// Shared Signals' pushes and its calls to transmitters go through the same
/// guard.
#[async_trait::async_trait]
impl SignalsTransport for ScimClient {
    async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String, Vec<u8>), String> {
        self.exchange(method, url, headers, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_addresses_provisioning_reaches() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(reachable(ip("93.184.216.34"), false, false));
        assert!(!reachable(ip("10.1.2.3"), false, false));
        assert!(reachable(ip("10.1.2.3"), false, true));
        assert!(reachable(ip("fd00::1"), false, true));
        assert!(!reachable(ip("169.254.169.254"), false, true), "metadata");
        assert!(!reachable(ip("fe80::1"), false, true));
        assert!(!reachable(ip("127.0.0.1"), false, true));
        assert!(reachable(ip("127.0.0.1"), true, true));
        assert!(
            !reachable(ip("127.0.0.1"), true, false),
            "loopback needs the setting"
        );
        for hidden in [
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "::169.254.169.254",
            "2001:0:4136:e378::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!reachable(ip(hidden), false, false), "{hidden}");
        }
        assert!(
            reachable(ip("64:ff9b::5db8:d822"), false, false),
            "NAT64 of a public address"
        );
    }
}

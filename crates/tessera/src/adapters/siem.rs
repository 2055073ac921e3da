//! The SIEM export's transport (the application's `SiemTransport` port): syslog
//! frames over TCP with TLS (tokio-rustls), JSON over HTTPS (reqwest).
//!
//! - A receiver is checked against the system's roots (the platform verifier),
//!   or only against the sink's own roots where it has them.
//! - The host is resolved once per delivery and every address checked before
//!   anything connects: public addresses; only where the operator allows them
//!   (`siem_private_receivers`), private networks (10/8, 172.16/12,
//!   192.168/16, 100.64/10, fc00::/7) and the loopback host when the sink names
//!   it (a collector beside the node); link-local ones (cloud metadata) never.
//!   No proxy from the environment: it would resolve the name itself.
//!   The connection goes to the addresses checked, not to a second lookup.
//! - Five seconds for a delivery, no redirects, the body of an answer unread.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tessera_service::siem::SiemTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(5);

/// The transport; it keeps one TLS setup per set of roots.
pub struct SiemDelivery {
    tls: Mutex<HashMap<String, Arc<rustls::ClientConfig>>>,
    /// HTTP clients (and their connections), by host, port, the addresses
    /// it resolved to and the roots: a client never reaches another address.
    clients: Mutex<HashMap<String, reqwest::Client>>,
    private_receivers: bool,
}

impl SiemDelivery {
    pub fn new(private_receivers: bool) -> SiemDelivery {
        SiemDelivery {
            tls: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            private_receivers,
        }
    }

    fn tls_config(&self, roots: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
        let key = roots.unwrap_or("").to_string();
        if let Some(config) = self.tls.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(config);
        }
        let config = match roots {
            Some(pem) => {
                let store = root_store(pem)?;
                rustls::ClientConfig::builder()
                    .with_root_certificates(store)
                    .with_no_client_auth()
            }
            None => {
                use rustls_platform_verifier::ConfigVerifierExt;
                rustls::ClientConfig::with_platform_verifier()
                    .map_err(|e| format!("cannot load the system's roots: {e}"))?
            }
        };
        let config = Arc::new(config);
        if let Ok(mut cache) = self.tls.lock() {
            if cache.len() > 64 {
                cache.clear();
            }
            cache.insert(key, config.clone());
        }
        Ok(config)
    }
}

fn root_store(pem: &str) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let certificate = certificate.map_err(|_| "the PEM text cannot be read".to_string())?;
        store
            .add(certificate)
            .map_err(|e| format!("a certificate cannot be a root: {e}"))?;
    }
    if store.is_empty() {
        return Err("the PEM text holds no certificate".to_string());
    }
    Ok(store)
}

/// A client for one receiver: its checked addresses only, the sink's roots
/// only where it has them, no proxy, no redirects.
fn http_client(
    host: &str,
    targets: &[SocketAddr],
    roots: Option<&str>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(LIMIT)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    if host.parse::<IpAddr>().is_err() && !host.starts_with('[') {
        builder = builder.resolve_to_addrs(host, targets);
    }
    if let Some(pem) = roots {
        let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|_| "the sink's roots cannot be read".to_string())?;
        builder = builder.tls_certs_only(certificates);
    }
    builder
        .build()
        .map_err(|_| "cannot build the HTTP client".to_string())
}

/// Whether a sink may be reached at `ip` (see the module documentation).
pub(crate) fn sink_address_allowed(ip: IpAddr, loopback_named: bool, private_ok: bool) -> bool {
    if super::outbound::address_allowed(ip, loopback_named && private_ok) {
        return true;
    }
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let private = match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || (a == 100 && (64..128).contains(&b))
        }
        // fc00::/7
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    private_ok && private
}

/// The host's addresses, each allowed, or why not.
async fn addresses(host: &str, port: u16, private_ok: bool) -> Result<Vec<SocketAddr>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let (named_loopback, found) = match host.parse::<IpAddr>() {
        Ok(ip) => (ip.is_loopback(), vec![SocketAddr::new(ip, port)]),
        Err(_) => {
            let found: Vec<SocketAddr> =
                tokio::time::timeout(LIMIT, tokio::net::lookup_host((host, port)))
                    .await
                    .map_err(|_| "the host name does not resolve in time".to_string())?
                    .map_err(|_| "the host name does not resolve".to_string())?
                    .collect();
            (host.eq_ignore_ascii_case("localhost"), found)
        }
    };
    if found.is_empty()
        || !found
            .iter()
            .all(|a| sink_address_allowed(a.ip(), named_loopback, private_ok))
    {
        return Err(if private_ok {
            "the receiver's address is not one a sink may use".to_string()
        } else {
            "the receiver's address is not a public one (private receivers need siem_private_receivers)"
                .to_string()
        });
    }
    Ok(found)
}

#[async_trait]
impl SiemTransport for SiemDelivery {
    async fn syslog(
        &self,
        host: &str,
        port: u16,
        server_name: &str,
        roots: Option<&str>,
        frames: &[Vec<u8>],
    ) -> Result<(), String> {
        let config = self.tls_config(roots)?;
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|_| "the server name is not a host name".to_string())?;
        let targets = addresses(host, port, self.private_receivers).await?;
        let work = async {
            let tcp = tokio::net::TcpStream::connect(&targets[..])
                .await
                .map_err(|e| format!("cannot connect: {}", e.kind()))?;
            let _ = tcp.set_nodelay(true);
            let connector = tokio_rustls::TlsConnector::from(config);
            let mut tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            for frame in frames {
                tls.write_all(frame)
                    .await
                    .map_err(|e| format!("cannot write: {}", e.kind()))?;
            }
            tls.flush()
                .await
                .map_err(|e| format!("cannot write: {}", e.kind()))?;
            // Syslog over TLS has no acknowledgement. Our close_notify, then the
            // receiver's close: it read the stream to its end.
            tls.shutdown()
                .await
                .map_err(|e| format!("cannot close: {}", e.kind()))?;
            let mut rest = [0u8; 512];
            loop {
                match tls.read(&mut rest).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    // A receiver that closes without its own close_notify has
                    // still read everything.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(e) => {
                        return Err(format!("the receiver did not close cleanly: {}", e.kind()));
                    }
                }
            }
            Ok::<(), String>(())
        };
        tokio::time::timeout(LIMIT, work)
            .await
            .map_err(|_| "the receiver did not take the messages in 5 seconds".to_string())?
    }

    async fn post(
        &self,
        url: &str,
        roots: Option<&str>,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> Result<u16, String> {
        let parsed = reqwest::Url::parse(url).map_err(|_| "not a URL".to_string())?;
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| "no port".to_string())?;
        let host = parsed.host_str().ok_or_else(|| "no host".to_string())?;
        let targets = addresses(host, port, self.private_receivers).await?;
        let key = format!(
            "{host}|{port}|{targets:?}|{}",
            tessera_core::crypto::sha256_hex(roots.unwrap_or("").as_bytes())
        );
        let kept = self.clients.lock().ok().and_then(|c| c.get(&key).cloned());
        let client = match kept {
            Some(client) => client,
            None => {
                let client = http_client(host, &targets, roots)?;
                if let Ok(mut clients) = self.clients.lock() {
                    if clients.len() > 64 {
                        clients.clear();
                    }
                    clients.insert(key, client.clone());
                }
                client
            }
        };
        let mut request = client
            .post(parsed)
            .header("Content-Type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        Ok(response.status().as_u16())
    }

    fn check_roots(&self, pem: &str) -> Result<(), String> {
        root_store(pem).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_networks_when_allowed_metadata_never() {
        let ok = |ip: &str, named: bool| sink_address_allowed(ip.parse().unwrap(), named, true);
        assert!(ok("10.1.2.3", false));
        assert!(ok("192.168.1.9", false));
        assert!(ok("fd00::1", false));
        assert!(ok("8.8.8.8", false));
        assert!(!sink_address_allowed(
            "10.1.2.3".parse().unwrap(),
            false,
            false
        ));
        assert!(sink_address_allowed(
            "8.8.8.8".parse().unwrap(),
            false,
            false
        ));
        assert!(!ok("169.254.169.254", false));
        assert!(!ok("::ffff:169.254.169.254", false));
        assert!(!ok("fe80::1", false));
        assert!(!ok("127.0.0.1", false));
        assert!(ok("127.0.0.1", true));
        assert!(
            !sink_address_allowed("127.0.0.1".parse().unwrap(), true, false),
            "loopback only where the operator allows private receivers"
        );
        assert!(!ok("0.0.0.0", true));
        assert!(!ok("224.0.0.1", false));
        assert!(!ok("255.255.255.255", false));
    }
}

//! A sink: where a tenant's logs go and which of them. Three kinds:
//!
//! - `syslog`: RFC 5424 over TCP with TLS (RFC 5425) to `host`:`port`, the message
//!   a CEF line or the OCSF JSON; the receiver's certificate must name
//!   `serverName` or the host. Plain TCP and UDP are not offered.
//! - `https`: signed JSON batches POSTed to `url`; a `secret` of 32 to 256
//!   characters signs them.
//! - `otlp`: OpenTelemetry logs over OTLP/HTTP (JSON) POSTed to `url` (the
//!   collector's `/v1/logs`).
//!
//! An https or otlp sink may have an `authorization` header value (a token a
//! receiver asks for): keep tokens there, not in the URL, which is shown.
//!
//! URLs are https, or http to a loopback address only (a collector beside the
//! node). A receiver's certificate is checked against the system's roots, or
//! only against the sink's own `caCertificate` (PEM) where it has one. Secrets
//! are write-only: the service seals them and never shows them.

use serde::{Deserialize, Serialize};

use crate::Stream;
use crate::syslog::Format;

/// A sink as the service stores it (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkSpec {
    pub display_name: String,
    pub enabled: bool,
    pub streams: Vec<Stream>,
    pub destination: Destination,
    /// The only roots a receiver's certificate is checked against (PEM), where set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
}

/// Where a sink sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Destination {
    #[serde(rename_all = "camelCase")]
    Syslog {
        host: String,
        port: u16,
        format: Format,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server_name: Option<String>,
    },
    Https {
        url: String,
    },
    Otlp {
        url: String,
    },
}

impl Destination {
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::Syslog { .. } => "syslog",
            Destination::Https { .. } => "https",
            Destination::Otlp { .. } => "otlp",
        }
    }
}

/// What a client sends to create a sink or change one: every member optional
/// here; [`SinkInput::apply`] says what a whole sink needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkInput {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub streams: Option<Vec<Stream>>,
    /// `syslog`, `https` or `otlp` (only when creating).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub format: Option<Format>,
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM; an empty string removes it.
    #[serde(default)]
    pub ca_certificate: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// The https sink's signing secret (write-only).
    #[serde(default)]
    pub secret: Option<String>,
    /// The otlp sink's `Authorization` header value (write-only; empty removes it).
    #[serde(default)]
    pub authorization: Option<String>,
}

/// Why a sink is refused: the member and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        field,
        reason: reason.into(),
    }
}

/// A secret change a sink input asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    Keep,
    Set(String),
    Remove,
}

/// What an input does to a sink's two secrets: the https signing `secret`, and
/// the `authorization` header value (https and otlp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretChanges {
    pub secret: SecretChange,
    pub authorization: SecretChange,
}

/// Which secrets a sink has now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HasSecrets {
    pub secret: bool,
    pub authorization: bool,
}

/// The most sinks a tenant may have.
pub const MAX_SINKS: usize = 10;
/// The longest CA certificate text taken.
const MAX_PEM: usize = 64 * 1024;

impl SinkInput {
    /// The sink this input makes of `current` (none: a new sink), and what
    /// happens to its secrets; `has` says which `current` has.
    pub fn apply(
        self,
        current: Option<&SinkSpec>,
        has: HasSecrets,
    ) -> Result<(SinkSpec, SecretChanges), Invalid> {
        let kind = match (&self.kind, current) {
            (Some(kind), None) => kind.clone(),
            (None, Some(spec)) => spec.destination.kind().to_string(),
            (Some(kind), Some(spec)) if kind == spec.destination.kind() => kind.clone(),
            (Some(_), Some(_)) => {
                return Err(invalid("type", "cannot change; make a new sink"));
            }
            (None, None) => return Err(invalid("type", "is required: syslog, https or otlp")),
        };
        let display_name = match (self.display_name, current) {
            (Some(name), _) => name,
            (None, Some(spec)) => spec.display_name.clone(),
            (None, None) => return Err(invalid("displayName", "is required")),
        };
        let display_name = display_name.trim().to_string();
        if display_name.is_empty()
            || display_name.chars().count() > 64
            || display_name.chars().any(char::is_control)
        {
            return Err(invalid(
                "displayName",
                "must be 1 to 64 characters without control characters",
            ));
        }
        let mut streams = match (self.streams, current) {
            (Some(streams), _) => streams,
            (None, Some(spec)) => spec.streams.clone(),
            (None, None) => Stream::ALL.to_vec(),
        };
        streams.sort();
        streams.dedup();
        if streams.is_empty() {
            return Err(invalid(
                "streams",
                "name at least one of signIns, auditLogs, riskDetections",
            ));
        }
        let enabled = self
            .enabled
            .unwrap_or_else(|| current.is_none_or(|spec| spec.enabled));
        let was = current.map(|spec| &spec.destination);
        let ca_certificate = match self.ca_certificate {
            Some(pem) if pem.trim().is_empty() => None,
            Some(pem) => Some(pem),
            None => current.and_then(|spec| spec.ca_certificate.clone()),
        };
        if let Some(pem) = &ca_certificate
            && (pem.len() > MAX_PEM || !pem.contains("-----BEGIN CERTIFICATE-----"))
        {
            return Err(invalid(
                "caCertificate",
                "must be PEM certificates (-----BEGIN CERTIFICATE-----), at most 64 KiB",
            ));
        }
        let mut secret = SecretChange::Keep;
        let mut authorization = SecretChange::Keep;
        let destination = match kind.as_str() {
            "syslog" => {
                for (field, given) in [
                    ("url", self.url.is_some()),
                    ("secret", self.secret.is_some()),
                    ("authorization", self.authorization.is_some()),
                ] {
                    if given {
                        return Err(invalid(field, "is not a member of a syslog sink"));
                    }
                }
                let (old_host, old_port, old_format, old_name) = match was {
                    Some(Destination::Syslog {
                        host,
                        port,
                        format,
                        server_name,
                    }) => (
                        Some(host.clone()),
                        Some(*port),
                        Some(*format),
                        server_name.clone(),
                    ),
                    _ => (None, None, None, None),
                };
                let host = self
                    .host
                    .or(old_host)
                    .ok_or_else(|| invalid("host", "is required"))?;
                if !host_ok(&host) {
                    return Err(invalid("host", "must be a host name or an IP address"));
                }
                let port = self.port.or(old_port).unwrap_or(6514);
                if port == 0 {
                    return Err(invalid("port", "must be 1 to 65535"));
                }
                let server_name = match self.server_name {
                    Some(name) if name.is_empty() => None,
                    Some(name) => Some(name),
                    None => old_name,
                };
                if let Some(name) = &server_name
                    && !host_ok(name)
                {
                    return Err(invalid(
                        "serverName",
                        "must be a host name or an IP address",
                    ));
                }
                Destination::Syslog {
                    host,
                    port,
                    format: self.format.or(old_format).unwrap_or(Format::Json),
                    server_name,
                }
            }
            "https" | "otlp" => {
                for (field, given) in [
                    ("host", self.host.is_some()),
                    ("port", self.port.is_some()),
                    ("format", self.format.is_some()),
                    ("serverName", self.server_name.is_some()),
                ] {
                    if given {
                        return Err(invalid(field, format!("is not a member of an {kind} sink")));
                    }
                }
                let old_url = match was {
                    Some(Destination::Https { url } | Destination::Otlp { url }) => {
                        Some(url.clone())
                    }
                    _ => None,
                };
                let url = self
                    .url
                    .or(old_url)
                    .ok_or_else(|| invalid("url", "is required"))?;
                if !url_ok(&url) {
                    return Err(invalid(
                        "url",
                        "must be an https URL (http only to a loopback address), without credentials",
                    ));
                }
                match self.authorization {
                    Some(value) if value.is_empty() => authorization = SecretChange::Remove,
                    Some(value)
                        if value.len() <= 4096
                            && value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) =>
                    {
                        authorization = SecretChange::Set(value);
                    }
                    Some(_) => {
                        return Err(invalid(
                            "authorization",
                            "must be visible ASCII (and spaces), at most 4096 characters",
                        ));
                    }
                    None => {}
                }
                if kind == "https" {
                    match self.secret {
                        Some(given) if (32..=256).contains(&given.chars().count()) => {
                            secret = SecretChange::Set(given);
                        }
                        Some(_) => return Err(invalid("secret", "must be 32 to 256 characters")),
                        None if has.secret => {}
                        None => {
                            return Err(invalid("secret", "an https sink needs a signing secret"));
                        }
                    }
                    Destination::Https { url }
                } else {
                    if self.secret.is_some() {
                        return Err(invalid("secret", "is not a member of an otlp sink"));
                    }
                    Destination::Otlp { url }
                }
            }
            _ => return Err(invalid("type", "must be syslog, https or otlp")),
        };
        Ok((
            SinkSpec {
                display_name,
                enabled,
                streams,
                destination,
                ca_certificate,
            },
            SecretChanges {
                secret,
                authorization,
            },
        ))
    }
}

/// A DNS name (letters, digits, `-`, `.`; labels of 1 to 63) or an IP address.
pub fn host_ok(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// https, or http to a loopback address; no credentials, no fragment.
pub fn url_ok(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.fragment().is_none()
        && parsed.host().is_some()
        && (parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback))
        && url.len() <= 2048
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAS_BOTH: HasSecrets = HasSecrets {
        secret: true,
        authorization: true,
    };

    fn input(json: serde_json::Value) -> SinkInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_syslog_sink_takes_its_defaults() {
        let (spec, secret) = input(serde_json::json!({
            "type": "syslog", "displayName": " SOC ", "host": "siem.example.com",
        }))
        .apply(None, HasSecrets::default())
        .unwrap();
        assert_eq!(secret.secret, SecretChange::Keep);
        assert_eq!(spec.display_name, "SOC");
        assert!(spec.enabled);
        assert_eq!(spec.streams, Stream::ALL.to_vec());
        assert_eq!(
            spec.destination,
            Destination::Syslog {
                host: "siem.example.com".into(),
                port: 6514,
                format: Format::Json,
                server_name: None,
            }
        );
        assert_eq!(spec.ca_certificate, None);
    }

    #[test]
    fn bad_members_are_named() {
        let refused = |json: serde_json::Value| {
            input(json)
                .apply(None, HasSecrets::default())
                .unwrap_err()
                .field
        };
        assert_eq!(refused(serde_json::json!({ "displayName": "x" })), "type");
        assert_eq!(
            refused(serde_json::json!({ "type": "ftp", "displayName": "x" })),
            "type"
        );
        assert_eq!(
            refused(serde_json::json!({ "type": "syslog", "displayName": "x", "host": "a b" })),
            "host"
        );
        assert_eq!(
            refused(
                serde_json::json!({ "type": "syslog", "displayName": "x", "host": "h", "url": "https://a" })
            ),
            "url"
        );
        assert_eq!(
            refused(
                serde_json::json!({ "type": "syslog", "displayName": "x", "host": "h", "caCertificate": "x" })
            ),
            "caCertificate"
        );
        assert_eq!(
            refused(
                serde_json::json!({ "type": "https", "displayName": "x", "url": "http://siem.example.com/in" })
            ),
            "url"
        );
        assert_eq!(
            refused(
                serde_json::json!({ "type": "https", "displayName": "x", "url": "https://u:p@siem.example.com/" })
            ),
            "url"
        );
        assert_eq!(
            refused(
                serde_json::json!({ "type": "https", "displayName": "x", "url": "https://siem.example.com/" })
            ),
            "secret"
        );
        assert_eq!(
            refused(
                serde_json::json!({ "type": "https", "displayName": "x", "url": "https://siem.example.com/", "secret": "short" })
            ),
            "secret"
        );
        assert_eq!(
            refused(
                serde_json::json!({ "type": "otlp", "displayName": "x", "url": "http://127.0.0.1:4318/v1/logs", "authorization": "a\nb" })
            ),
            "authorization"
        );
        assert_eq!(
            refused(
                serde_json::json!({ "type": "otlp", "displayName": "", "url": "http://127.0.0.1/" })
            ),
            "displayName"
        );
        assert_eq!(
            refused(
                serde_json::json!({ "type": "otlp", "displayName": "x", "url": "http://[::1]:1/", "streams": [] })
            ),
            "streams"
        );
        assert!(
            serde_json::from_value::<SinkInput>(serde_json::json!({ "type": "otlp", "bogus": 1 }))
                .is_err()
        );
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name() {
        let (spec, _) = input(serde_json::json!({
            "type": "https", "displayName": "Lake", "url": "https://lake.example.com/in",
            "secret": "0123456789abcdef0123456789abcdef", "streams": ["auditLogs", "signIns", "auditLogs"],
        }))
        .apply(None, HasSecrets::default())
        .unwrap();
        assert_eq!(spec.streams, vec![Stream::SignIns, Stream::AuditLogs]);
        let (changed, secret) = input(serde_json::json!({ "enabled": false }))
            .apply(Some(&spec), HAS_BOTH)
            .unwrap();
        assert_eq!(secret.secret, SecretChange::Keep);
        assert_eq!(secret.authorization, SecretChange::Keep);
        assert!(!changed.enabled);
        let (_, token) = input(serde_json::json!({ "authorization": "Splunk 1234" }))
            .apply(Some(&spec), HAS_BOTH)
            .unwrap();
        assert_eq!(token.authorization, SecretChange::Set("Splunk 1234".into()));
        assert_eq!(changed.destination, spec.destination);
        let refused = input(serde_json::json!({ "type": "otlp" })).apply(Some(&spec), HAS_BOTH);
        assert_eq!(refused.unwrap_err().field, "type");
        let (otlp, _) = input(serde_json::json!({
            "type": "otlp", "displayName": "Collector", "url": "http://localhost:4318/v1/logs",
        }))
        .apply(None, HasSecrets::default())
        .unwrap();
        let (_, removed) = input(serde_json::json!({ "authorization": "" }))
            .apply(Some(&otlp), HAS_BOTH)
            .unwrap();
        assert_eq!(removed.authorization, SecretChange::Remove);
    }

    #[test]
    fn host_names_and_addresses() {
        assert!(host_ok("siem.example.com"));
        assert!(host_ok("10.0.0.1"));
        assert!(host_ok("::1"));
        assert!(!host_ok("-a.example"));
        assert!(!host_ok("a..b"));
        assert!(!host_ok("a_b"));
    }
}

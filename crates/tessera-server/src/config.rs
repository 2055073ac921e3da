//! Configuration: defaults, then a TOML file, then `TESSERA_*` environment
//! variables, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Loopback by default: exposing Tessera is a decision.
    pub listen: SocketAddr,
    /// Where the embedded database and other state live.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL; unset for the embedded SQLite database.
    pub database_url: Option<String>,
    /// The public base URL: the issuer of tokens, the passkey origin and the base
    /// of links. Required on PostgreSQL (every node must name the same issuer);
    /// with SQLite it defaults from `listen` (`http://localhost:<port>`).
    pub public_url: Option<String>,
    pub tls: Option<TlsConfig>,
    /// Client certificates from a trusted reverse proxy (instead of TLS here).
    pub client_certificate_proxy: Option<ProxyCertificateConfig>,
    /// Reverse proxies whose `X-Forwarded-For` names the client's address (for
    /// the sign-in log, lockout and Conditional Access locations); from any other
    /// address the header is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub log: LogConfig,
    pub bootstrap: BootstrapConfig,
    /// Seconds to wait for requests in flight at shutdown.
    pub shutdown_grace_seconds: u64,
    /// Seconds a client has to send a request's headers (and the TLS handshake, and
    /// the first byte on a new connection), also how long an idle keep-alive
    /// connection stays open.
    pub header_read_timeout_seconds: u64,
    /// Seconds a client has to send a request's whole body.
    pub body_read_timeout_seconds: u64,
    /// Most connections open at once (lowered to fit the open-files limit). When
    /// all are taken, the oldest connection with no request in flight (a half-sent
    /// request, an idle one) is closed for the new.
    pub max_connections: usize,
    pub database_max_connections: u32,
    /// PostgreSQL: a tenant's writes queued in this process commit together (each
    /// in its own savepoint, one durable commit for the group). On by default;
    /// `false` gives each write its own transaction.
    pub database_group_commit: bool,
    /// The 32-byte key that seals TOTP seeds, as a file; `<data_dir>/secrets.key`
    /// (created on first start) when unset. Every node of a cluster needs the same key.
    pub secrets_key_file: Option<PathBuf>,
    /// Where HR systems drop their exports for scheduled HR imports: a folder per
    /// tenant (`<hr_drop_dir>/<tenant id>/<file>`); `<data_dir>/hr-drop` when unset.
    pub hr_drop_dir: Option<PathBuf>,
    /// Outbound provisioning may reach applications' SCIM services at private
    /// addresses (10/8, 172.16/12, 192.168/16, fc00::/7) and at loopback ones a
    /// URL names (`localhost`), not only at public ones. Link-local and metadata
    /// addresses stay out of reach. Off by default.
    pub provisioning_private_targets: bool,
    /// SIEM sinks may reach receivers at private addresses (10/8, 172.16/12,
    /// 192.168/16, 100.64/10, fc00::/7) and at the loopback host a sink names,
    /// not only at public ones. Link-local and metadata addresses stay out of
    /// reach. Off by default.
    pub siem_private_receivers: bool,
    /// Shared Signals may reach receivers' push endpoints and transmitters at
    /// private addresses (10/8, 172.16/12, 192.168/16, fc00::/7) and at
    /// loopback ones a URL names, over `http` there too, not only public
    /// `https` ones. Link-local and metadata addresses stay out of reach. Off
    /// by default.
    pub signals_private_endpoints: bool,
    /// A folder of breached-password range files (`<5 hex digits>` or `.txt`).
    pub breached_passwords_dir: Option<PathBuf>,
    /// A MaxMind-format country database (GeoLite2/GeoIP2 Country or City) for
    /// Conditional Access country locations; without it every address is of
    /// unknown country.
    pub geoip_database: Option<PathBuf>,
    /// A MaxMind-format ASN database (GeoLite2-ASN) for Identity Protection's
    /// familiar networks. Places (impossible travel) come from
    /// `geoip_database` when it is a City database.
    pub geoip_asn_database: Option<PathBuf>,
    /// Identity Protection's list of anonymizers (Tor exit nodes, VPN and
    /// hosting ranges): one address or CIDR range per line, `#` comments, a
    /// label after the address. Reloaded when the file changes.
    pub risk_anonymous_ip_list: Option<PathBuf>,
    /// Identity Protection's list of known-malicious addresses, in the same form.
    pub risk_malicious_ip_list: Option<PathBuf>,
    /// Signed checkpoints of every tenant's audit chain head, exported on a schedule.
    #[serde(default)]
    pub audit_checkpoint: AuditCheckpointConfig,
    /// Whether this node runs the background jobs (true unless set): a node that
    /// only serves requests can leave them to others. Nothing a job does enforces
    /// an expiry; a node without jobs still refuses what has ended.
    #[serde(default = "yes")]
    pub run_jobs: bool,
    /// The SMTP relay notifications are mailed through (none: no mail).
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
}

/// An SMTP relay (`[smtp]`, or `TESSERA_SMTP__HOST` and so on).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// 587 unless set.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// The sender, e.g. `Tessera <tessera@contoso.com>`.
    pub from: String,
    /// `starttls` (the default), `tls` (implicit TLS, usually port 465), or
    /// `none` (plain text, only to a relay on this machine).
    #[serde(default)]
    pub security: String,
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password (not the password itself).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

fn default_smtp_port() -> u16 {
    587
}

/// Where and how often the audit chain heads are signed and sent (see
/// `checkpoints.rs`). Nothing is exported until a destination is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditCheckpointConfig {
    /// The Ed25519 signing key, PKCS#8 PEM (`openssl genpkey -algorithm ed25519`).
    /// Unset: `<data_dir>/audit-checkpoint.key`, created on first start, on SQLite; on
    /// PostgreSQL it must be set (the same file on every node) to export.
    pub key_file: Option<PathBuf>,
    /// Seconds between exports (the first is at start).
    pub interval_seconds: u64,
    /// Append each checkpoint as a JSON line to this file.
    pub file: Option<PathBuf>,
    /// Send each checkpoint as an RFC 5424 message: `udp://host:port` or
    /// `unix:///dev/log`.
    pub syslog: Option<String>,
    /// POST each checkpoint as JSON to this URL (`https://`; `http://` only to loopback).
    pub https: Option<String>,
}

impl Default for AuditCheckpointConfig {
    fn default() -> AuditCheckpointConfig {
        AuditCheckpointConfig {
            key_file: None,
            interval_seconds: 300,
            file: None,
            syslog: None,
            https: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Ask browsers for a client certificate (smart-card sign-in). Optional for the
    /// client; trust is decided per tenant by the certificate trust store.
    #[serde(default)]
    pub client_certificates: bool,
}

/// A reverse proxy that terminates TLS and passes the client certificate on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyCertificateConfig {
    /// The header holding the URL-encoded PEM certificate (nginx:
    /// `$ssl_client_escaped_cert`), e.g. `X-SSL-Client-Cert`.
    pub header: String,
    /// Only requests from these addresses may set the header.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `json` (default) or `text`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `tessera=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Name of the tenant created on first start.
    pub tenant_name: String,
    /// Domain of the break-glass administrator's user principal name.
    pub domain: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./tessera-data"),
            database_url: None,
            public_url: None,
            tls: None,
            client_certificate_proxy: None,
            trusted_proxies: Vec::new(),
            log: LogConfig {
                format: "json".to_string(),
                level: "info".to_string(),
            },
            bootstrap: BootstrapConfig {
                tenant_name: "Default".to_string(),
                domain: "tessera.local".to_string(),
            },
            shutdown_grace_seconds: 20,
            header_read_timeout_seconds: 10,
            body_read_timeout_seconds: 30,
            max_connections: 4096,
            database_max_connections: 16,
            database_group_commit: true,
            secrets_key_file: None,
            hr_drop_dir: None,
            provisioning_private_targets: false,
            siem_private_receivers: false,
            signals_private_endpoints: false,
            breached_passwords_dir: None,
            geoip_database: None,
            geoip_asn_database: None,
            risk_anonymous_ip_list: None,
            risk_malicious_ip_list: None,
            audit_checkpoint: AuditCheckpointConfig::default(),
            run_jobs: true,
            smtp: None,
        }
    }
}

/// Values given on the command line, which win over everything else.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Loads the configuration. `TESSERA_DATABASE_URL`, `TESSERA_LISTEN`,
    /// `TESSERA_DATA_DIR` and nested keys such as `TESSERA_LOG__LEVEL` or
    /// `TESSERA_TLS__CERT` override the file.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, String> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(format!(
                    "the configuration file {} does not exist",
                    file.display()
                ));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment
            .merge(
                Env::prefixed("TESSERA_")
                    .filter(|key| is_server_key(key.as_str()))
                    .split("__"),
            )
            .merge(Serialized::defaults(overrides));
        figment
            .extract()
            .map_err(|e| format!("invalid configuration: {e}"))
    }

    /// The database URL: PostgreSQL when configured, else the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("tessera.db").display()
            ),
        }
    }

    /// The URL people reach Tessera at.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                let host = if self.listen.ip().is_loopback() {
                    "localhost".to_string()
                } else {
                    self.listen.ip().to_string()
                };
                format!("{scheme}://{host}:{}", self.listen.port())
            }
        }
    }

    /// Loads the sealing key, creating it (readable by the owner only) on first start.
    pub fn sealing_key(&self) -> anyhow::Result<tessera_core::crypto::SealingKey> {
        use anyhow::Context as _;
        let path = self
            .secrets_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secrets.key"));
        if !path.exists() {
            if self.secrets_key_file.is_some() || !self.is_embedded() {
                anyhow::bail!(
                    "the secrets key file {} does not exist; create 32 random bytes there (the same file on every node)",
                    path.display()
                );
            }
            let (_, bytes) =
                tessera_core::crypto::SealingKey::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        tessera_core::crypto::SealingKey::from_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn is_embedded(&self) -> bool {
        self.database_url.is_none()
    }

    /// What `serve` needs beyond what loads: on PostgreSQL, several nodes share the
    /// tenant, and each would otherwise name itself as the issuer and refuse the
    /// others' tokens, so `public_url` must be given.
    pub fn check_for_serve(&self) -> Result<(), String> {
        if !self.is_embedded() && self.public_url.is_none() {
            return Err(
                "public_url is required with PostgreSQL (database_url): set it to the \
                 URL clients reach Tessera at, the same on every node, e.g. \
                 public_url = \"https://id.contoso.com\" in the configuration file or \
                 TESSERA_PUBLIC_URL=https://id.contoso.com"
                    .to_string(),
            );
        }
        Ok(())
    }
}

/// `TESSERA_*` variables that configure the server; others (the CLI's
/// `TESSERA_SERVER`, `TESSERA_TOKEN`, test settings) are not the server's business.
fn is_server_key(key: &str) -> bool {
    const KEYS: &[&str] = &[
        "listen",
        "data_dir",
        "database_url",
        "public_url",
        "shutdown_grace_seconds",
        "header_read_timeout_seconds",
        "body_read_timeout_seconds",
        "max_connections",
        "database_max_connections",
        "database_group_commit",
        "secrets_key_file",
        "breached_passwords_dir",
        "hr_drop_dir",
        "provisioning_private_targets",
        "siem_private_receivers",
        "signals_private_endpoints",
        "geoip_database",
        "geoip_asn_database",
        "risk_anonymous_ip_list",
        "risk_malicious_ip_list",
        "trusted_proxies",
        "run_jobs",
    ];
    const SECTIONS: &[&str] = &[
        "tls__",
        "log__",
        "bootstrap__",
        "smtp__",
        "client_certificate_proxy__",
        "audit_checkpoint__",
    ];
    let key = key.to_ascii_lowercase();
    KEYS.contains(&key.as_str()) || SECTIONS.iter().any(|section| key.starts_with(section))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe() {
        let config = Config::default();
        assert!(config.listen.ip().is_loopback());
        assert!(config.is_embedded());
        assert!(config.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn postgresql_needs_a_public_url_and_sqlite_does_not() {
        let embedded = Config::default();
        assert_eq!(embedded.check_for_serve(), Ok(()));
        assert_eq!(embedded.public_url(), "http://localhost:8080");
        let mut shared = Config {
            database_url: Some("postgres://tessera@db/tessera".to_string()),
            ..Config::default()
        };
        let error = shared.check_for_serve().unwrap_err();
        assert!(error.contains("public_url"), "{error}");
        assert!(error.contains("TESSERA_PUBLIC_URL"), "{error}");
        shared.public_url = Some("https://id.contoso.com/".to_string());
        assert_eq!(shared.check_for_serve(), Ok(()));
        assert_eq!(shared.public_url(), "https://id.contoso.com");
    }

    #[test]
    fn the_audit_checkpoint_section_keeps_its_defaults_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoints.toml");
        std::fs::write(
            &file,
            "[audit_checkpoint]\nfile = \"/var/log/tessera-checkpoints.jsonl\"\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(config.audit_checkpoint.interval_seconds, 300);
        assert_eq!(
            config.audit_checkpoint.file.as_deref(),
            Some(Path::new("/var/log/tessera-checkpoints.jsonl"))
        );
        assert!(config.audit_checkpoint.key_file.is_none());
        std::fs::write(&file, "[audit_checkpoint]\nfiles = \"/x\"\n").unwrap();
        assert!(
            Config::load(Some(&file), &Overrides::default())
                .unwrap_err()
                .contains("files")
        );
        assert!(is_server_key("AUDIT_CHECKPOINT__INTERVAL_SECONDS"));
    }

    #[test]
    fn file_values_load_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(
            &good,
            "listen = \"127.0.0.1:9999\"\n[log]\nformat = \"text\"\nlevel = \"debug\"\n",
        )
        .unwrap();
        let config = Config::load(Some(&good), &Overrides::default()).unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.log.format, "text");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "lisen = \"127.0.0.1:9999\"\n").unwrap();
        assert!(
            Config::load(Some(&bad), &Overrides::default())
                .unwrap_err()
                .contains("lisen")
        );
        let overrides = Overrides {
            listen: Some("127.0.0.1:7777".parse().unwrap()),
            data_dir: None,
        };
        assert_eq!(
            Config::load(Some(&good), &overrides).unwrap().listen.port(),
            7777
        );
        assert!(
            Config::load(
                Some(&dir.path().join("missing.toml")),
                &Overrides::default()
            )
            .is_err()
        );
    }
}

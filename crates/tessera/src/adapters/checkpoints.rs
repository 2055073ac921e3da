//! Signed checkpoints of every tenant's audit chain head, exported on a schedule
//! (`[audit_checkpoint]`) to where the database's writers cannot reach: a file, syslog
//! (RFC 5424 over UDP or a unix socket), an HTTPS endpoint. `tessera audit verify
//! --checkpoint` checks the database against them later (see
//! `tessera_directory::checkpoint`).
//!
//! The signing key is a file, never in the database. On SQLite it defaults to
//! `<data_dir>/audit-checkpoint.key`, created on first start; on PostgreSQL every node
//! must be given the same file, so one pinned public key verifies every node's
//! checkpoints. Every node exports on its own schedule: more checkpoints, same key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use tessera_core::crypto::Ed25519Key;
use tessera_core::{Clock, SystemClock, Timestamp};
use tessera_directory::checkpoint::Checkpoint;
use tessera_store::Store;

use tessera_server::config::{AuditCheckpointConfig, Config};
use tessera_service::jobs::{Job, Schedule, Scope};

/// Where checkpoints go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Appended as JSON lines.
    File(PathBuf),
    /// RFC 5424 datagrams to `host:port`.
    SyslogUdp(String),
    /// RFC 5424 datagrams to a unix socket such as `/dev/log`.
    SyslogUnix(PathBuf),
    /// One JSON POST per checkpoint.
    Https(reqwest::Url),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::File(path) => write!(f, "file {}", path.display()),
            Destination::SyslogUdp(address) => write!(f, "syslog udp://{address}"),
            Destination::SyslogUnix(path) => write!(f, "syslog unix://{}", path.display()),
            Destination::Https(url) => {
                // Logs name the endpoint, never credentials in its user part or query.
                let mut shown = url.clone();
                let _ = shown.set_username("");
                let _ = shown.set_password(None);
                if shown.query().is_some() {
                    shown.set_query(Some("..."));
                }
                write!(f, "POST {shown}")
            }
        }
    }
}

/// The configured destinations, checked (a bad value stops the start).
pub fn destinations(settings: &AuditCheckpointConfig) -> anyhow::Result<Vec<Destination>> {
    let mut out = Vec::new();
    if let Some(path) = &settings.file {
        out.push(Destination::File(path.clone()));
    }
    if let Some(target) = &settings.syslog {
        if let Some(address) = target.strip_prefix("udp://") {
            let valid = address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                bail!("audit_checkpoint.syslog: {target} is not udp://host:port");
            }
            out.push(Destination::SyslogUdp(address.to_string()));
        } else if let Some(path) = target.strip_prefix("unix://") {
            if !Path::new(path).is_absolute() {
                bail!("audit_checkpoint.syslog: {target} is not unix:///absolute/path");
            }
            out.push(Destination::SyslogUnix(PathBuf::from(path)));
        } else {
            bail!("audit_checkpoint.syslog must be udp://host:port or unix:///path, not {target}");
        }
    }
    if let Some(text) = &settings.https {
        let url = reqwest::Url::parse(text)
            .map_err(|_| anyhow!("audit_checkpoint.https: {text} is not a URL"))?;
        let host = url.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            bail!("audit_checkpoint.https must be an https:// URL (http:// only to loopback)");
        }
        out.push(Destination::Https(url));
    }
    Ok(out)
}

/// The checkpoint signing key. On SQLite without `key_file`,
/// `<data_dir>/audit-checkpoint.key` is created (readable by its owner only) when
/// missing; a configured file, or any file on PostgreSQL, must exist.
pub fn signing_key(config: &Config) -> anyhow::Result<Ed25519Key> {
    let configured = &config.audit_checkpoint.key_file;
    if configured.is_none() && !config.is_embedded() {
        bail!(
            "set audit_checkpoint.key_file: on PostgreSQL every node signs audit checkpoints with the same key file (`openssl genpkey -algorithm ed25519 -out audit-checkpoint.key`)"
        );
    }
    let path = configured
        .clone()
        .unwrap_or_else(|| config.data_dir.join("audit-checkpoint.key"));
    if !path.exists() {
        if configured.is_some() {
            bail!(
                "the audit checkpoint key file {} does not exist; create it with `openssl genpkey -algorithm ed25519 -out {}`",
                path.display(),
                path.display()
            );
        }
        let (_, pem) = Ed25519Key::generate().map_err(|e| anyhow!("{e}"))?;
        write_private(&path, pem.as_bytes())?;
    }
    refuse_shared_key(&path)?;
    let pem = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ed25519Key::from_pem(&pem).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// A signing key others can read signs nothing: whoever reads it can forge
/// checkpoints after rewriting the trail.
fn refuse_shared_key(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "the audit checkpoint key file {} is readable by others (mode {:o}): `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Signs heads and sends them.
pub struct Exporter {
    key: Ed25519Key,
    destinations: Vec<Destination>,
    http: reqwest::Client,
    hostname: String,
}

impl Exporter {
    pub fn new(key: Ed25519Key, destinations: Vec<Destination>) -> anyhow::Result<Exporter> {
        // `serve` installs it too; the offline `tessera audit checkpoint` does not.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        Ok(Exporter {
            key,
            destinations,
            // The bounded outbound client, without redirects: checkpoints go where the
            // operator pointed them.
            http: crate::adapters::outbound::HttpFetcher::without_redirects()?.client,
            hostname: syslog_hostname(),
        })
    }

    /// Signs every tenant's current head and sends the checkpoints to every
    /// destination. Every destination is tried; the error names those that failed.
    pub async fn export(
        &self,
        store: &dyn Store,
        now: Timestamp,
    ) -> anyhow::Result<Vec<Checkpoint>> {
        let tenants = store.tenants().await.map_err(|e| anyhow!("{e}"))?;
        let mut checkpoints = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            let checkpoint = tessera_service::audit::checkpoint(store, tenant.id, &self.key, now)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            checkpoints.push(checkpoint);
        }
        let mut failures = Vec::new();
        for destination in &self.destinations {
            if let Err(error) = self.send(destination, &checkpoints).await {
                failures.push(format!("{destination}: {error:#}"));
            }
        }
        if !failures.is_empty() {
            bail!("cannot export audit checkpoints to {}", failures.join("; "));
        }
        Ok(checkpoints)
    }

    async fn send(
        &self,
        destination: &Destination,
        checkpoints: &[Checkpoint],
    ) -> anyhow::Result<()> {
        match destination {
            Destination::File(path) => {
                use tokio::io::AsyncWriteExt as _;
                let mut text = String::new();
                for checkpoint in checkpoints {
                    text.push_str(&checkpoint.to_line());
                    text.push('\n');
                }
                let mut options = tokio::fs::OpenOptions::new();
                options.append(true).create(true);
                #[cfg(unix)]
                options.mode(0o600);
                let mut file = options.open(path).await?;
                file.write_all(text.as_bytes()).await?;
                file.sync_data().await?;
            }
            Destination::SyslogUdp(address) => {
                let target = tokio::net::lookup_host(address.as_str())
                    .await?
                    .next()
                    .ok_or_else(|| anyhow!("{address} does not resolve"))?;
                let local: std::net::SocketAddr = if target.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = tokio::net::UdpSocket::bind(local).await?;
                for checkpoint in checkpoints {
                    socket
                        .send_to(self.syslog_message(checkpoint).as_bytes(), target)
                        .await?;
                }
            }
            #[cfg(unix)]
            Destination::SyslogUnix(path) => {
                let socket = tokio::net::UnixDatagram::unbound()?;
                for checkpoint in checkpoints {
                    socket
                        .send_to(self.syslog_message(checkpoint).as_bytes(), path)
                        .await?;
                }
            }
            #[cfg(not(unix))]
            Destination::SyslogUnix(_) => bail!("unix sockets need a unix system"),
            Destination::Https(url) => {
                for checkpoint in checkpoints {
                    let response = self
                        .http
                        .post(url.clone())
                        .header("content-type", "application/json")
                        .timeout(Duration::from_secs(5))
                        .body(checkpoint.to_line())
                        .send()
                        .await
                        // The destination is named (without credentials) by the
                        // caller; reqwest's text would repeat the whole URL.
                        .map_err(|e| anyhow!("{}", e.without_url()))?;
                    if !response.status().is_success() {
                        bail!("HTTP {}", response.status());
                    }
                }
            }
        }
        Ok(())
    }

    /// RFC 5424: facility 13 (log audit), severity 5 (notice); the checkpoint line is
    /// the message.
    fn syslog_message(&self, checkpoint: &Checkpoint) -> String {
        format!(
            "<109>1 {} {} tessera {} checkpoint - {}",
            checkpoint.time.to_rfc3339(),
            self.hostname,
            std::process::id(),
            checkpoint.to_line()
        )
    }
}

/// The host name as RFC 5424 allows it (printable ASCII without spaces), or `-`.
fn syslog_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() {
        "-".to_string()
    } else {
        name
    }
}

/// The export job `serve` runs on every node (each node exports on its own schedule,
/// so each node's file destination gets every checkpoint): every tenant at start,
/// then every `interval_seconds`. None when no destination is set; on SQLite the key
/// is then made anyway on first start, so its public key can be pinned before the
/// first export.
pub fn job(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Option<Arc<dyn Job>>> {
    let settings = &config.audit_checkpoint;
    let destinations = destinations(settings)?;
    if destinations.is_empty() {
        if config.is_embedded() {
            signing_key(config)?;
        }
        tracing::warn!(
            "audit checkpoints are not exported: set a destination in [audit_checkpoint] so truncation or a rewrite of the audit trail can be detected"
        );
        return Ok(None);
    }
    if settings.interval_seconds == 0 {
        bail!("audit_checkpoint.interval_seconds must be at least 1");
    }
    let exporter = Arc::new(Exporter::new(signing_key(config)?, destinations)?);
    Ok(Some(tessera_service::jobs::job(
        "audit-checkpoint-export",
        Scope::Node,
        Schedule::Every(Duration::from_secs(settings.interval_seconds)),
        move |_| {
            let exporter = exporter.clone();
            let store = store.clone();
            async move {
                let checkpoints = exporter
                    .export(store.as_ref(), SystemClock.now())
                    .await
                    .map_err(|error| format!("audit checkpoint export failed: {error:#}"))?;
                tracing::info!(tenants = checkpoints.len(), "audit checkpoints exported");
                Ok(())
            }
        },
    )))
}

#[cfg(test)]
mod key_file_tests {
    use super::*;

    #[test]
    fn a_key_file_others_can_read_is_refused_and_urls_are_logged_without_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-checkpoint.key");
        let (_, pem) = Ed25519Key::generate().unwrap();
        std::fs::write(&path, pem).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = refuse_shared_key(&path).unwrap_err().to_string();
            assert!(error.contains("chmod 600"), "{error}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        refuse_shared_key(&path).unwrap();
        let url = reqwest::Url::parse("https://user:pw@siem.example/in?token=s3cret").unwrap();
        let shown = Destination::Https(url).to_string();
        assert!(
            !shown.contains("s3cret") && !shown.contains("pw"),
            "{shown}"
        );
        assert!(shown.contains("siem.example/in"), "{shown}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_directory::checkpoint::parse_line;

    async fn bootstrapped() -> Arc<dyn Store> {
        let store = tessera_testkit::sqlite_temp().await;
        let directory = tessera_service::App::new(store.clone(), Arc::new(SystemClock));
        tessera_testkit::bootstrap_admin(&directory).await;
        store
    }

    fn settings(
        file: Option<PathBuf>,
        syslog: Option<&str>,
        https: Option<&str>,
    ) -> AuditCheckpointConfig {
        AuditCheckpointConfig {
            file,
            syslog: syslog.map(str::to_string),
            https: https.map(str::to_string),
            ..AuditCheckpointConfig::default()
        }
    }

    /// Parses and verifies one received checkpoint; returns its head sequence number.
    fn verified(text: &str, key: &[u8; 32]) -> i64 {
        let checkpoint = parse_line(text).unwrap().expect("a checkpoint");
        checkpoint.check_signature(key).unwrap();
        checkpoint.seq
    }

    #[tokio::test]
    async fn checkpoints_reach_a_file_a_syslog_receiver_and_an_http_endpoint() {
        let store = bootstrapped().await;
        let head = store
            .audit_head(store.default_tenant().await.unwrap().unwrap())
            .await
            .unwrap()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoints.jsonl");
        let syslog = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (posted_tx, mut posted_rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
        let receiver = axum::Router::new().route(
            "/checkpoints",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let posted_tx = posted_tx.clone();
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let _ = posted_tx.send((content_type, body));
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
        let destinations = destinations(&settings(
            Some(file.clone()),
            Some(&format!("udp://{}", syslog.local_addr().unwrap())),
            Some(&format!("http://{http_address}/checkpoints")),
        ))
        .unwrap();
        let (key, _) = Ed25519Key::generate().unwrap();
        let public = key.public_key();
        let exporter = Exporter::new(key, destinations).unwrap();
        exporter
            .export(store.as_ref(), SystemClock.now())
            .await
            .unwrap();
        exporter
            .export(store.as_ref(), SystemClock.now())
            .await
            .unwrap();

        let lines = std::fs::read_to_string(&file).unwrap();
        let seqs: Vec<i64> = lines.lines().map(|line| verified(line, &public)).collect();
        assert_eq!(seqs, vec![head.seq, head.seq]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "checkpoint file readable by others");
        }

        let mut datagram = vec![0u8; 4096];
        let (length, _) = syslog.recv_from(&mut datagram).await.unwrap();
        let message = String::from_utf8(datagram[..length].to_vec()).unwrap();
        assert!(message.starts_with("<109>1 "), "{message}");
        assert!(message.contains(" tessera "), "{message}");
        assert_eq!(verified(&message, &public), head.seq);

        let (content_type, body) = posted_rx.recv().await.unwrap();
        assert_eq!(content_type, "application/json");
        assert_eq!(verified(&body, &public), head.seq);
    }

    #[tokio::test]
    async fn a_failing_destination_is_reported_and_the_others_still_get_theirs() {
        let store = bootstrapped().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoints.jsonl");
        // Nothing listens on this port: the POST fails.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = closed.local_addr().unwrap();
        drop(closed);
        let destinations = destinations(&settings(
            Some(file.clone()),
            None,
            Some(&format!("http://{address}/")),
        ))
        .unwrap();
        let exporter = Exporter::new(Ed25519Key::generate().unwrap().0, destinations).unwrap();
        let error = exporter
            .export(store.as_ref(), SystemClock.now())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("POST http://{address}/")),
            "{error}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 1);
    }

    #[tokio::test]
    async fn the_schedule_exports_at_start_and_then_every_interval() {
        let store = bootstrapped().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("checkpoints.jsonl");
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            audit_checkpoint: AuditCheckpointConfig {
                interval_seconds: 1,
                ..settings(Some(file.clone()), None, None)
            },
            ..Config::default()
        };
        let mut jobs = tessera_service::jobs::Jobs::new(store.clone(), Arc::new(SystemClock));
        jobs.add(
            job(&config, store.clone())
                .unwrap()
                .expect("a destination is set"),
        );
        assert_eq!(jobs.names(), ["audit-checkpoint-export"]);
        jobs.start();
        let key = signing_key(&config).unwrap();
        // Waits for the second export (the first is immediate); a broken schedule fails
        // the test after a minute rather than hanging it.
        let mut lines = Vec::new();
        for _ in 0..600 {
            lines = std::fs::read_to_string(&file)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
            if lines.len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(lines.len() >= 2, "{lines:?}");
        for line in &lines {
            verified(line, &key.public_key());
        }
    }

    #[test]
    fn keys_are_made_once_on_sqlite_and_required_on_postgresql() {
        let dir = tempfile::tempdir().unwrap();
        let embedded = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let first = signing_key(&embedded).unwrap();
        let again = signing_key(&embedded).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("audit-checkpoint.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
        let clustered = Config {
            database_url: Some("postgres://db/tessera".to_string()),
            ..embedded.clone()
        };
        assert!(
            signing_key(&clustered)
                .unwrap_err()
                .to_string()
                .contains("key_file")
        );
        let missing = Config {
            audit_checkpoint: AuditCheckpointConfig {
                key_file: Some(dir.path().join("absent.key")),
                ..AuditCheckpointConfig::default()
            },
            ..clustered.clone()
        };
        assert!(
            signing_key(&missing)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        let garbage = dir.path().join("garbage.key");
        std::fs::write(&garbage, "not a key").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let bad = Config {
            audit_checkpoint: AuditCheckpointConfig {
                key_file: Some(garbage),
                ..AuditCheckpointConfig::default()
            },
            ..clustered
        };
        assert!(
            signing_key(&bad)
                .unwrap_err()
                .to_string()
                .contains("PKCS#8")
        );
    }

    #[test]
    fn bad_destinations_are_refused() {
        for (syslog, https) in [
            (Some("tcp://127.0.0.1:514"), None),
            (Some("udp://127.0.0.1"), None),
            (Some("udp://:514"), None),
            (Some("unix://dev/log"), None),
            (None, Some("http://collector.example.com/checkpoints")),
            (None, Some("ftp://collector.example.com/")),
            (None, Some("not a url")),
        ] {
            assert!(
                destinations(&settings(None, syslog, https)).is_err(),
                "{syslog:?} {https:?}"
            );
        }
        let good = destinations(&settings(
            None,
            Some("unix:///dev/log"),
            Some("https://collector.example.com/checkpoints"),
        ))
        .unwrap();
        assert_eq!(good.len(), 2);
    }
}

//! The SIEM export (issue 17): a tenant's sign-ins, audit events and risk
//! detections streamed to its sinks (syslog over TLS, signed HTTPS batches,
//! OTLP/HTTP logs), at least once.
//!
//! - Each stream is read in the order of its numbers: the audit trail's chain
//!   sequence (up to its head), and the numbers the store gives every sign-in
//!   log entry and detection as it writes them (`SessionStore::sign_in_scan`).
//! - Each sink keeps its own cursor per stream in a session-store counter
//!   (`siem:<sink>:<stream>`), moved only upwards and only after the receiver
//!   took the batch: a sink that is down holds only its own cursor, and catches up
//!   from it when it is back. A batch sent again after a failure may repeat what
//!   the receiver had (at least once); the records carry their ids and numbers.
//! - A new sink starts at the streams' heads as it is created.
//! - The `siem-export` job delivers, one lease per tenant; the sinks of a tenant
//!   are delivered side by side, each within its own time limit, and a failing
//!   one waits (4 s doubling, up to a minute) on this node before its next try.
//! - The formats are `tessera_siem`'s; the bytes go through the
//!   [`SiemTransport`] port the binary gives (reqwest, rustls).
//!
//! Sinks are `Kind::SiemSink` records (key1: the lowercased name), changed by an
//! administrator who may manage the tenant's policies, audited, their secrets
//! sealed and never shown. Delivery itself writes no audit event (it would feed
//! the stream it reads).
//!
//! Calls: kernel; the sign-in log's and the detections' views (read only).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::roles::action;
use tessera_siem::sink::{Destination, SecretChange, SinkInput, SinkSpec};
use tessera_siem::{Origin, Record, Stream, syslog};
use tessera_store::{Kind, ListQuery, RISK_DETECTION_SEQ, SIGN_IN_SEQ};
use uuid::Uuid;

use crate::codec::{self, Keys, Versioned};
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::Kernel;
use crate::{Context, EventDraft};

pub use tessera_siem::Stream as SiemStream;

/// Records per batch.
const BATCH: u32 = 200;
/// No batch starts later than this into a round.
const ROUND: Duration = Duration::from_secs(4);
/// The most a failing sink waits before its next try.
const MAX_WAIT_SECONDS: i64 = 60;
/// The context a sink's secret is sealed for.
const SECRET_CONTEXT: &str = "siem-sink-secret";
/// How long a sink's last failure is remembered.
const STATUS_SECONDS: i64 = 30 * 86_400;

/// Sending, as the binary does it.
#[async_trait]
pub trait SiemTransport: Send + Sync {
    /// Writes syslog frames to `host:port` over TLS (the certificate checked for
    /// `server_name`, against `roots` (PEM) only where given) and closes the
    /// connection cleanly; an error if any of that fails.
    async fn syslog(
        &self,
        host: &str,
        port: u16,
        server_name: &str,
        roots: Option<&str>,
        frames: &[Vec<u8>],
    ) -> Result<(), String>;
    /// POSTs a JSON body (checking the server against `roots` only where given);
    /// the HTTP status.
    async fn post(
        &self,
        url: &str,
        roots: Option<&str>,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> Result<u16, String>;
    /// Whether a PEM text holds certificates it can use as roots.
    fn check_roots(&self, pem: &str) -> Result<(), String>;
}

/// A sink as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    spec: SinkSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_sealed: Option<String>,
    /// Where each stream started when the sink was made.
    #[serde(default)]
    start: BTreeMap<Stream, i64>,
}

/// A sink's last trouble, kept in the session store for every node to show.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Trouble {
    last_error: Option<String>,
    last_error_at: Option<Timestamp>,
    failing_since: Option<Timestamp>,
}

/// A sink as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SinkView {
    pub id: Uuid,
    pub display_name: String,
    /// `syslog`, `https` or `otlp`.
    #[serde(rename = "type")]
    pub kind: String,
    pub enabled: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub streams: Vec<Stream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `cef` or `json` (syslog).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// Whether a signing secret (https) or an authorization value (otlp) is set.
    pub has_secret: bool,
    pub version: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_date_time: Timestamp,
    pub status: SinkStatus,
}

/// How far a sink is behind.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SinkStatus {
    pub streams: Vec<StreamStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_delivery_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_error_date_time: Option<Timestamp>,
    /// Since when deliveries fail (none: the last one went through).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub failing_since: Option<Timestamp>,
}

/// One stream of a sink.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StreamStatus {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub stream: Stream,
    /// The stream's last number.
    pub head: i64,
    /// The last number the sink took.
    pub delivered: i64,
    /// How many records wait.
    pub lag: i64,
    /// How old the oldest waiting record is, in seconds (0: none waits).
    pub lag_seconds: i64,
}

/// A failing sink's wait, on this node.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    retry_at: Timestamp,
}

/// The SIEM export context (see the module documentation).
pub struct Siem {
    k: Arc<Kernel>,
    transport: OnceLock<Arc<dyn SiemTransport>>,
    backoff: Mutex<HashMap<Uuid, Backoff>>,
}

crate::kernel::on_kernel!(Siem);

fn cursor_key(sink: Uuid, stream: Stream) -> String {
    format!("siem:{sink}:{}", stream.name())
}

fn delivered_key(sink: Uuid) -> String {
    format!("siem:{sink}:delivered")
}

fn trouble_key(sink: Uuid) -> String {
    format!("siem-trouble:{sink}")
}

fn keys_of(spec: &SinkSpec) -> Keys {
    Keys {
        key1: Some(spec.display_name.to_lowercase()),
        key2: None,
        sort_key: codec::sort_key(&spec.display_name),
    }
}

/// What the audit trail says of a sink: everything but its secret, of which
/// only whether it is set.
fn shown(stored: &Stored) -> Value {
    let mut value = serde_json::to_value(&stored.spec).unwrap_or(Value::Null);
    value["hasSecret"] = stored.secret_sealed.is_some().into();
    value
}

fn invalid(error: tessera_siem::sink::Invalid) -> ServiceError {
    ServiceError::invalid(error.field, error.reason)
}

impl Siem {
    pub(crate) fn new(k: Arc<Kernel>) -> Siem {
        Siem {
            k,
            transport: OnceLock::new(),
            backoff: Mutex::new(HashMap::new()),
        }
    }

    /// Gives the export its transport (once, at start).
    pub fn set_transport(&self, transport: Arc<dyn SiemTransport>) {
        if self.transport.set(transport).is_err() {
            tracing::warn!("the SIEM transport was set already; the first stays");
        }
    }

    fn origin(&self, tenant: TenantId) -> Origin {
        let host = url::Url::parse(self.public_url())
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        Origin {
            tenant_id: tenant.to_string(),
            product_version: env!("CARGO_PKG_VERSION").to_string(),
            host,
        }
    }

    /// The stream's last number: what a sink made now starts after.
    async fn head(&self, tenant: TenantId, stream: Stream) -> ServiceResult<i64> {
        Ok(match stream {
            Stream::SignIns => self
                .store
                .counter_get(tenant, SIGN_IN_SEQ)
                .await?
                .map_or(0, |c| c.value),
            Stream::RiskDetections => self
                .store
                .counter_get(tenant, RISK_DETECTION_SEQ)
                .await?
                .map_or(0, |c| c.value),
            Stream::AuditLogs => self.store.audit_head(tenant).await?.map_or(0, |h| h.seq),
        })
    }

    async fn cursor(
        &self,
        tenant: TenantId,
        sink: Uuid,
        stored: &Stored,
        stream: Stream,
    ) -> ServiceResult<i64> {
        let kept = self
            .store
            .counter_get(tenant, &cursor_key(sink, stream))
            .await?
            .map_or(0, |c| c.value);
        Ok(kept.max(stored.start.get(&stream).copied().unwrap_or(0)))
    }

    /// Up to `limit` records of a stream after `after`, with the number of the
    /// last one read (records that cannot be read are passed over, with a
    /// warning, so one bad entry never holds a stream).
    async fn read(
        &self,
        tenant: TenantId,
        stream: Stream,
        after: i64,
        limit: u32,
    ) -> ServiceResult<(Vec<Record>, Option<i64>)> {
        let mut records = Vec::new();
        let mut last = None;
        match stream {
            Stream::SignIns => {
                for (seq, row) in self.store.sign_in_scan(tenant, after, limit).await? {
                    last = Some(seq);
                    match crate::sign_in::log_storage::entry_of(&row) {
                        Ok(entry) => records.push(Record {
                            stream,
                            seq,
                            view: serde_json::to_value(entry).unwrap_or(Value::Null),
                        }),
                        Err(error) => {
                            tracing::warn!(%tenant, seq, %error, "a sign-in entry is not exported")
                        }
                    }
                }
            }
            Stream::RiskDetections => {
                for (seq, row) in self.store.risk_detection_scan(tenant, after, limit).await? {
                    last = Some(seq);
                    records.push(Record {
                        stream,
                        seq,
                        view: serde_json::to_value(crate::risk::view_of(&row))
                            .unwrap_or(Value::Null),
                    });
                }
            }
            Stream::AuditLogs => {
                // Only up to the head: every event below it is committed.
                let head = self.head(tenant, stream).await?;
                for row in self.store.audit_scan(tenant, after, limit).await? {
                    if row.seq > head {
                        break;
                    }
                    last = Some(row.seq);
                    let seq = row.seq;
                    let hash = row.hash.clone();
                    let entry = crate::directory::audit::AuditEntry {
                        seq,
                        hash: hash.clone(),
                        event: serde_json::from_str(&row.body).unwrap_or(Value::Null),
                    };
                    // Attribute values stay with those who hold an attribute role.
                    let mut view =
                        crate::directory::audit::hide_attribute_values(entry, false).event;
                    if view.is_object() {
                        view["chainHash"] = hash.into();
                        records.push(Record { stream, seq, view });
                    } else {
                        tracing::warn!(%tenant, seq, "an audit event is not exported");
                    }
                }
            }
        }
        Ok((records, last))
    }

    /// The tenant's sinks (at most `MAX_SINKS`), by name.
    async fn sink_records(&self, tenant: TenantId) -> ServiceResult<Vec<tessera_store::Record>> {
        let query = ListQuery {
            limit: 100,
            ..Default::default()
        };
        Ok(self
            .reader()
            .await?
            .list(tenant, Kind::SiemSink, &query)
            .await?)
    }

    // ---- delivery ----------------------------------------------------------

    /// One delivery round for a tenant: every enabled sink, side by side.
    /// How many records went out.
    pub async fn export_round(&self, tenant: TenantId) -> ServiceResult<usize> {
        let Some(transport) = self.transport.get().cloned() else {
            return Ok(0);
        };
        let mut sinks = Vec::new();
        for record in self.sink_records(tenant).await? {
            match codec::data::<Stored>(&record) {
                Ok(stored) if stored.spec.enabled => sinks.push((record.id, stored)),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%tenant, sink = %record.id, %error, "a SIEM sink cannot be read")
                }
            }
        }
        let rounds = sinks
            .iter()
            .map(|(id, stored)| self.deliver_sink(transport.as_ref(), tenant, *id, stored));
        let sent = futures::future::join_all(rounds).await;
        Ok(sent.into_iter().sum())
    }

    fn waiting(&self, sink: Uuid) -> bool {
        let now = self.now();
        self.backoff
            .lock()
            .map(|b| b.get(&sink).is_some_and(|w| w.retry_at > now))
            .unwrap_or(false)
    }

    async fn deliver_sink(
        &self,
        transport: &dyn SiemTransport,
        tenant: TenantId,
        sink: Uuid,
        stored: &Stored,
    ) -> usize {
        if self.waiting(sink) {
            return 0;
        }
        let started = Instant::now();
        let mut sent = 0;
        for stream in &stored.spec.streams {
            loop {
                let outcome = self
                    .deliver_batch(transport, tenant, sink, stored, *stream)
                    .await;
                match outcome {
                    Ok(0) => break,
                    Ok(count) => {
                        sent += count;
                        if started.elapsed() > ROUND {
                            break;
                        }
                    }
                    Err(error) => {
                        self.failed(tenant, sink, &stored.spec.display_name, error)
                            .await;
                        return sent;
                    }
                }
            }
        }
        self.succeeded(tenant, sink).await;
        sent
    }

    /// Sends the next batch of one stream; how many records it held (0: none
    /// waited).
    async fn deliver_batch(
        &self,
        transport: &dyn SiemTransport,
        tenant: TenantId,
        sink: Uuid,
        stored: &Stored,
        stream: Stream,
    ) -> Result<usize, String> {
        let after = self
            .cursor(tenant, sink, stored, stream)
            .await
            .map_err(|e| e.to_string())?;
        let (records, last) = self
            .read(tenant, stream, after, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = last else { return Ok(0) };
        if !records.is_empty() {
            self.send(transport, tenant, sink, stored, stream, &records)
                .await?;
        }
        self.store
            .counter_advance(tenant, &cursor_key(sink, stream), last, self.now())
            .await
            .map_err(|e| e.to_string())?;
        Ok(records.len().max(1))
    }

    async fn send(
        &self,
        transport: &dyn SiemTransport,
        tenant: TenantId,
        sink: Uuid,
        stored: &Stored,
        stream: Stream,
        records: &[Record],
    ) -> Result<(), String> {
        let origin = self.origin(tenant);
        let events: Vec<Value> = records
            .iter()
            .map(|r| tessera_siem::ocsf::event(r, &origin))
            .collect();
        let roots = stored.spec.ca_certificate.as_deref();
        let secret = match &stored.secret_sealed {
            Some(sealed) => Some(
                self.settings
                    .sealing_key
                    .open(sealed, SECRET_CONTEXT)
                    .map_err(|_| "the sink's secret cannot be opened".to_string())?,
            ),
            None => None,
        };
        let status = match &stored.spec.destination {
            Destination::Syslog {
                host,
                port,
                format,
                server_name,
            } => {
                let frames: Vec<Vec<u8>> = records
                    .iter()
                    .zip(&events)
                    .map(|(record, event)| {
                        let msg = match format {
                            syslog::Format::Cef => tessera_siem::cef::line(record, event, &origin),
                            syslog::Format::Json => event.to_string(),
                        };
                        let severity = tessera_siem::ocsf::severity_of(event);
                        syslog::frame(&syslog::message(record, severity, &origin, &msg))
                    })
                    .collect();
                let name = server_name.as_deref().unwrap_or(host);
                return transport.syslog(host, *port, name, roots, &frames).await;
            }
            Destination::Https { url } => {
                let first = records.first().map_or(0, |r| r.seq);
                let last = records.last().map_or(0, |r| r.seq);
                let batch_id =
                    tessera_siem::batch::batch_id(&sink.to_string(), stream, first, last);
                let body = tessera_siem::batch::body(&origin.tenant_id, stream, &batch_id, &events);
                let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
                let secret = secret.ok_or("the sink has no signing secret")?;
                let unix = self.now().unix_seconds();
                let headers = vec![
                    ("Tessera-Batch-Id".to_string(), batch_id),
                    (
                        "Tessera-Signature".to_string(),
                        crate::kernel::outbox::webhook_signature(&secret, unix, &body),
                    ),
                ];
                transport.post(url, roots, body, &headers).await?
            }
            Destination::Otlp { url } => {
                let pairs: Vec<(&Record, &Value)> = records.iter().zip(&events).collect();
                let observed = self.now().unix_micros().saturating_mul(1000);
                let body = tessera_siem::otlp::request(&pairs, &origin, observed);
                let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
                let mut headers = Vec::new();
                if let Some(value) = secret {
                    let value = String::from_utf8(value)
                        .map_err(|_| "the sink's authorization is not text".to_string())?;
                    headers.push(("Authorization".to_string(), value));
                }
                transport.post(url, roots, body, &headers).await?
            }
        };
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("the receiver answered HTTP {status}"))
        }
    }

    async fn failed(&self, tenant: TenantId, sink: Uuid, name: &str, error: String) {
        let now = self.now();
        let failures = {
            let Ok(mut backoff) = self.backoff.lock() else {
                return;
            };
            let entry = backoff.entry(sink).or_insert(Backoff {
                failures: 0,
                retry_at: now,
            });
            entry.failures = entry.failures.saturating_add(1);
            let wait = (2_i64 << entry.failures.min(6)).min(MAX_WAIT_SECONDS);
            entry.retry_at = now.plus_seconds(wait);
            entry.failures
        };
        let error: String = error.chars().take(300).collect();
        if failures == 1 {
            tracing::warn!(%tenant, %sink, sink_name = name, %error, "a SIEM sink cannot take its records; they wait");
        }
        let mut trouble = self.trouble(tenant, sink).await.unwrap_or_default();
        trouble.failing_since.get_or_insert(now);
        trouble.last_error = Some(error);
        trouble.last_error_at = Some(now);
        self.keep_trouble(tenant, sink, &trouble).await;
    }

    async fn succeeded(&self, tenant: TenantId, sink: Uuid) {
        let was_failing = self
            .backoff
            .lock()
            .map(|mut b| b.remove(&sink).is_some())
            .unwrap_or(false);
        let now = self.now();
        if let Err(error) = self
            .store
            .counter_advance(tenant, &delivered_key(sink), now.unix_micros(), now)
            .await
        {
            tracing::warn!(%tenant, %sink, %error, "cannot note a SIEM delivery");
        }
        if was_failing {
            tracing::info!(%tenant, %sink, "a SIEM sink takes its records again");
            let mut trouble = self.trouble(tenant, sink).await.unwrap_or_default();
            if trouble.failing_since.take().is_some() {
                self.keep_trouble(tenant, sink, &trouble).await;
            }
        }
    }

    async fn trouble(&self, tenant: TenantId, sink: Uuid) -> Option<Trouble> {
        let row = self
            .store
            .session_get(tenant, &trouble_key(sink))
            .await
            .ok()??;
        serde_json::from_str(&row.data).ok()
    }

    async fn keep_trouble(&self, tenant: TenantId, sink: Uuid, trouble: &Trouble) {
        let now = self.now();
        let data = serde_json::to_string(trouble).unwrap_or_default();
        let key = trouble_key(sink);
        let result = match self.store.session_get(tenant, &key).await {
            Ok(Some(mut row)) => {
                row.version += 1;
                row.data = data;
                row.last_seen = now;
                row.expires = now.plus_seconds(STATUS_SECONDS);
                self.store.session_update(tenant, &row).await
            }
            Ok(None) => {
                let row = tessera_store::SessionRow::transient(key, now, STATUS_SECONDS, data);
                self.store.session_insert(tenant, &row).await
            }
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            tracing::debug!(%tenant, %sink, %error, "cannot keep a SIEM sink's status");
        }
    }

    // ---- status ------------------------------------------------------------

    async fn status(
        &self,
        tenant: TenantId,
        sink: Uuid,
        stored: &Stored,
    ) -> ServiceResult<SinkStatus> {
        let mut streams = Vec::new();
        let now = self.now();
        for stream in &stored.spec.streams {
            let head = self.head(tenant, *stream).await?;
            let delivered = self.cursor(tenant, sink, stored, *stream).await?;
            let lag = (head - delivered).max(0);
            let lag_seconds = if lag > 0 {
                let (records, _) = self.read(tenant, *stream, delivered, 1).await?;
                records
                    .first()
                    .and_then(Record::time)
                    .map_or(0, |t| (now.unix_seconds() - t.unix_seconds()).max(0))
            } else {
                0
            };
            streams.push(StreamStatus {
                stream: *stream,
                head,
                delivered,
                lag,
                lag_seconds,
            });
        }
        let trouble = self.trouble(tenant, sink).await.unwrap_or_default();
        let last_delivery = self
            .store
            .counter_get(tenant, &delivered_key(sink))
            .await?
            .map(|c| Timestamp::from_unix_micros(c.value));
        Ok(SinkStatus {
            streams,
            last_delivery_date_time: last_delivery,
            last_error: trouble.last_error,
            last_error_date_time: trouble.last_error_at,
            failing_since: trouble.failing_since,
        })
    }

    async fn view(
        &self,
        tenant: TenantId,
        record: &tessera_store::Record,
    ) -> ServiceResult<SinkView> {
        let stored: Stored = codec::data(record)?;
        let status = self.status(tenant, record.id, &stored).await?;
        let spec = stored.spec;
        let kind = spec.destination.kind().to_string();
        let (host, port, format, server_name, url) = match spec.destination {
            Destination::Syslog {
                host,
                port,
                format,
                server_name,
            } => (
                Some(host),
                Some(port),
                Some(match format {
                    syslog::Format::Cef => "cef".to_string(),
                    syslog::Format::Json => "json".to_string(),
                }),
                server_name,
                None,
            ),
            Destination::Https { url } | Destination::Otlp { url } => {
                (None, None, None, None, Some(url))
            }
        };

        Ok(SinkView {
            id: record.id,
            display_name: spec.display_name,
            kind,
            enabled: spec.enabled,
            streams: spec.streams,
            host,
            port,
            format,
            server_name,
            url,
            ca_certificate: spec.ca_certificate,
            has_secret: stored.secret_sealed.is_some(),
            version: record.version,
            created_date_time: record.created,
            status,
        })
    }

    /// Lag per sink and stream for `/metrics`: (sink name, stream, records
    /// waiting, seconds the oldest waits).
    pub async fn lag(&self, tenant: TenantId) -> ServiceResult<Vec<(String, Stream, i64, i64)>> {
        let mut out = Vec::new();
        for record in self.sink_records(tenant).await? {
            let Ok(stored) = codec::data::<Stored>(&record) else {
                continue;
            };
            let status = self.status(tenant, record.id, &stored).await?;
            for s in status.streams {
                out.push((
                    stored.spec.display_name.clone(),
                    s.stream,
                    s.lag,
                    s.lag_seconds,
                ));
            }
        }
        Ok(out)
    }

    // ---- administration ----------------------------------------------------

    fn may_read(&self, ctx: &Context) -> ServiceResult<()> {
        self.require(ctx, action::POLICIES_READ, &Target::Tenant)
    }

    fn may_manage(&self, ctx: &Context) -> ServiceResult<()> {
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)
    }

    /// `GET siem/sinks`.
    pub async fn list_sinks(&self, ctx: &Context) -> ServiceResult<Vec<SinkView>> {
        self.may_read(ctx)?;
        let records = self.sink_records(ctx.tenant).await?;
        let mut views = Vec::new();
        for record in &records {
            views.push(self.view(ctx.tenant, record).await?);
        }
        Ok(views)
    }

    /// `GET siem/sinks/{id}`.
    pub async fn get_sink(&self, ctx: &Context, id: Uuid) -> ServiceResult<SinkView> {
        self.may_read(ctx)?;
        let mut reader = self.reader().await?;
        let record = codec::load(reader.as_mut(), ctx.tenant, Kind::SiemSink, id).await?;
        drop(reader);
        self.view(ctx.tenant, &record).await
    }

    fn parse(body: Value) -> ServiceResult<SinkInput> {
        serde_json::from_value(body).map_err(|e| ServiceError::invalid("body", e.to_string()))
    }

    fn seal(&self, secret: &str) -> ServiceResult<String> {
        self.settings
            .sealing_key
            .seal(secret.as_bytes(), SECRET_CONTEXT)
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    fn check_roots(&self, spec: &SinkSpec) -> ServiceResult<()> {
        if let (Some(pem), Some(transport)) = (&spec.ca_certificate, self.transport.get()) {
            transport
                .check_roots(pem)
                .map_err(|reason| ServiceError::invalid("caCertificate", reason))?;
        }
        Ok(())
    }

    /// `POST siem/sinks`.
    pub async fn create_sink(&self, ctx: &Context, body: Value) -> ServiceResult<SinkView> {
        self.may_manage(ctx)?;
        let input = Self::parse(body)?;
        let (spec, secret) = input.apply(None, false).map_err(invalid)?;
        self.check_roots(&spec)?;
        let secret_sealed = match &secret {
            SecretChange::Set(secret) => Some(self.seal(secret)?),
            SecretChange::Keep | SecretChange::Remove => None,
        };
        let mut start = BTreeMap::new();
        for stream in Stream::ALL {
            start.insert(stream, self.head(ctx.tenant, stream).await?);
        }
        let stored = Stored {
            spec,
            secret_sealed,
            start,
        };
        let mut tx = self.write(ctx).await?;
        let existing = tx
            .list(
                ctx.tenant,
                Kind::SiemSink,
                &ListQuery {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await?;
        if existing.len() >= tessera_siem::sink::MAX_SINKS {
            return Err(ServiceError::Conflict {
                message: format!(
                    "a tenant has at most {} SIEM sinks",
                    tessera_siem::sink::MAX_SINKS
                ),
            });
        }
        self.name_free(tx.as_mut(), ctx.tenant, &stored.spec, None)
            .await?;
        let id = Uuid::new_v4();
        let record = codec::new_record(
            Kind::SiemSink,
            id,
            self.now(),
            keys_of(&stored.spec),
            &stored,
        )?;
        tx.insert(ctx.tenant, &record).await?;
        let event = EventDraft::new(AuditAction::SiemSinkCreate)
            .on(Kind::SiemSink, id, &stored.spec.display_name)
            .details(shown(&stored));
        self.commit(tx, ctx, event).await?;
        self.view(ctx.tenant, &record).await
    }

    async fn name_free(
        &self,
        tx: &mut dyn tessera_store::WriteTx,
        tenant: TenantId,
        spec: &SinkSpec,
        this: Option<Uuid>,
    ) -> ServiceResult<()> {
        let key = spec.display_name.to_lowercase();
        if let Some(other) = tx.get_by_key1(tenant, Kind::SiemSink, &key).await?
            && Some(other.id) != this
        {
            return Err(ServiceError::Conflict {
                message: format!("a SIEM sink is named {:?} already", spec.display_name),
            });
        }
        Ok(())
    }

    /// `PATCH siem/sinks/{id}`: the members given change; the type stays.
    pub async fn update_sink(&self, ctx: &Context, patch: crate::Patch) -> ServiceResult<SinkView> {
        self.may_manage(ctx)?;
        let input = Self::parse(patch.body)?;
        let id = patch.at.id;
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, Kind::SiemSink, id).await?;
        patch.at.check(&record)?;
        let before: Stored = codec::data(&record)?;
        let (spec, secret) = input
            .apply(Some(&before.spec), before.secret_sealed.is_some())
            .map_err(invalid)?;
        self.check_roots(&spec)?;
        self.name_free(tx.as_mut(), ctx.tenant, &spec, Some(id))
            .await?;
        let secret_sealed = match &secret {
            SecretChange::Set(secret) => Some(self.seal(secret)?),
            SecretChange::Keep => before.secret_sealed.clone(),
            SecretChange::Remove => None,
        };
        let after = Stored {
            spec,
            secret_sealed,
            start: before.start.clone(),
        };
        let next = codec::next_version(&record, self.now(), keys_of(&after.spec), &after)?;
        tx.update(ctx.tenant, &next).await?;
        let mut changes = tessera_directory::patch::changes(&shown(&before), &shown(&after));
        if matches!(secret, SecretChange::Set(_)) {
            changes.push(tessera_directory::patch::Change {
                attribute: "secret".to_string(),
                old_value: Value::Null,
                new_value: json!("(changed)"),
            });
        }
        let event = EventDraft::new(AuditAction::SiemSinkUpdate)
            .on(Kind::SiemSink, id, &after.spec.display_name)
            .changes(changes);
        self.commit(tx, ctx, event).await?;
        if let Ok(mut backoff) = self.backoff.lock() {
            // A changed sink is tried at once.
            backoff.remove(&id);
        }
        self.view(ctx.tenant, &next).await
    }

    /// `DELETE siem/sinks/{id}`: the sink and its cursors.
    pub async fn delete_sink(&self, ctx: &Context, at: Versioned) -> ServiceResult<()> {
        self.may_manage(ctx)?;
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, Kind::SiemSink, at.id).await?;
        at.check(&record)?;
        let stored: Stored = codec::data(&record)?;
        tx.delete(ctx.tenant, Kind::SiemSink, at.id, Some(record.version))
            .await?;
        let event = EventDraft::new(AuditAction::SiemSinkDelete)
            .on(Kind::SiemSink, at.id, &stored.spec.display_name)
            .details(shown(&stored));
        self.commit(tx, ctx, event).await?;
        for stream in Stream::ALL {
            let _ = self
                .store
                .counter_delete(ctx.tenant, &cursor_key(at.id, stream))
                .await;
        }
        let _ = self
            .store
            .counter_delete(ctx.tenant, &delivered_key(at.id))
            .await;
        let _ = self
            .store
            .session_delete(ctx.tenant, &trouble_key(at.id))
            .await;
        Ok(())
    }
}

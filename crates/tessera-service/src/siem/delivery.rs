//! Delivery: each stream read in order from a sink's cursor, written, sent,
//! and the cursor moved once the receiver took it.
//!
//! - A round of a sink has one deadline (`ROUND`), checked before every batch,
//!   and the whole round is cut off at `ROUND_LIMIT`, well inside the job's
//!   lease; a cut round moved no cursor past what was taken.
//! - A batch holds at most `BATCH` records and about `BATCH_BYTES` of events.
//! - Streams fail apart: one whose receiver refuses does not hold the others.
//! - A batch an HTTP receiver refuses as such (400, 403, 413, 415, 422) is sent
//!   again record by record: records refused alone are passed over, counted and
//!   logged, once the receiver took at least one record of the batch (so a
//!   receiver that refuses everything, a wrong token, skips nothing).
//! - Before each batch the sink is read again: a sink changed or removed since
//!   the round began stops there, so nothing goes to a receiver it no longer
//!   names.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_core::{TenantId, Timestamp};
use tessera_siem::sink::Destination;
use tessera_siem::{Record, Stream, syslog};
use tessera_store::{Kind, NumberedLog};
use uuid::Uuid;

use super::{Backoff, SECRET_CONTEXT, Siem, SiemTransport, Stored, Trouble};
use crate::codec;
use crate::error::ServiceResult;

/// What a sink's round did so far: the records its receiver took and the
/// first stream failure (read when the round is cut off).
#[derive(Default)]
struct Progress {
    taken: AtomicUsize,
    failure: std::sync::Mutex<Option<String>>,
}

/// Records per batch.
const BATCH: u32 = 200;
/// About this many bytes of events per batch (one record always goes).
const BATCH_BYTES: usize = 512 * 1024;
/// No batch starts later than this into a sink's round.
const ROUND: Duration = Duration::from_secs(4);
/// A sink's round is cut off here (the job's lease is 7.5 seconds).
const ROUND_LIMIT: Duration = Duration::from_secs(6);
/// The most a failing sink waits before its next try.
const MAX_WAIT_SECONDS: i64 = 60;
/// How long a sink's last failure is remembered.
const STATUS_SECONDS: i64 = 30 * 86_400;

pub(super) fn cursor_key(sink: Uuid, stream: Stream) -> String {
    format!("siem:{sink}:{}", stream.name())
}

pub(super) fn delivered_key(sink: Uuid) -> String {
    format!("siem:{sink}:delivered")
}

pub(super) fn skipped_key(sink: Uuid) -> String {
    format!("siem:{sink}:skipped")
}

pub(super) fn trouble_key(sink: Uuid) -> String {
    format!("siem-trouble:{sink}")
}

/// Why a send did not go through.
enum Refusal {
    /// The receiver refused what it was sent (an HTTP 400, 403, 413, 415 or
    /// 422): the content, maybe one record of it.
    Content(String),
    /// Anything else: the receiver is down, slow, misconfigured.
    Failed(String),
}

impl Refusal {
    fn message(self) -> String {
        match self {
            Refusal::Content(message) | Refusal::Failed(message) => message,
        }
    }
}

/// One sink's round: what each of its batches needs.
struct Round<'a> {
    transport: &'a dyn SiemTransport,
    tenant: TenantId,
    sink: Uuid,
    stored: &'a Stored,
    started: Instant,
}

/// What one batch did.
struct Sent {
    /// Records that went out.
    records: usize,
    /// Whether the cursor moved (false: nothing waited).
    moved: bool,
}

impl Siem {
    /// The stream's last number: what a sink made now starts after.
    pub(super) async fn head(&self, tenant: TenantId, stream: Stream) -> ServiceResult<i64> {
        Ok(match stream {
            Stream::SignIns => {
                self.store
                    .numbered_head(tenant, NumberedLog::SignIns)
                    .await?
            }
            Stream::RiskDetections => {
                self.store
                    .numbered_head(tenant, NumberedLog::RiskDetections)
                    .await?
            }
            Stream::AuditLogs => self.store.audit_head(tenant).await?.map_or(0, |h| h.seq),
        })
    }

    /// The last number a sink's receiver took of a stream.
    pub(super) async fn cursor(
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
    /// warning, so one bad entry never holds a stream). Attribute definitions
    /// and attribute values stay out of the audit stream, as the audit API
    /// keeps them from all but attribute roles.
    pub(super) async fn read(
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
                        view: crate::risk::export_view(&row),
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
                    if row.action.starts_with("attributeDefinition.") {
                        continue;
                    }
                    let seq = row.seq;
                    let hash = row.hash.clone();
                    let entry = crate::directory::audit::AuditEntry {
                        seq,
                        hash: hash.clone(),
                        event: serde_json::from_str(&row.body).unwrap_or(Value::Null),
                    };
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

    /// One delivery round for a tenant: every enabled sink, side by side.
    /// How many records went out.
    pub async fn export_round(&self, tenant: TenantId) -> ServiceResult<usize> {
        let Some(transport) = self.transport.get().cloned() else {
            return Ok(0);
        };
        let mut sinks = Vec::new();
        for record in self.sink_records(tenant).await? {
            match codec::data::<Stored>(&record) {
                Ok(stored) if stored.spec.enabled => sinks.push((record, stored)),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%tenant, sink = %record.id, %error, "a SIEM sink cannot be read")
                }
            }
        }
        let rounds = sinks.iter().map(|(record, stored)| async {
            // What the round did, kept even if the round is cut.
            let progress = Progress::default();
            let round = self.deliver_sink(transport.as_ref(), tenant, record, stored, &progress);
            match tokio::time::timeout(ROUND_LIMIT, round).await {
                Ok(sent) => sent,
                Err(_) => {
                    let taken = progress.taken.load(Ordering::Relaxed);
                    let failure = progress.failure.lock().ok().and_then(|mut f| f.take());
                    match failure {
                        Some(error) => {
                            self.failed(tenant, record.id, &stored.spec.display_name, error)
                                .await
                        }
                        // Slow but taking (a busy receiver, a large backlog):
                        // the rest waits for the next round, without a
                        // failure's backoff.
                        None if taken > 0 => {}
                        None => {
                            let error = "the receiver did not take the records in time";
                            self.failed(
                                tenant,
                                record.id,
                                &stored.spec.display_name,
                                error.to_string(),
                            )
                            .await
                        }
                    }
                    taken
                }
            }
        });
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

    /// Whether the sink is still the one this round read (not changed, not
    /// removed).
    async fn unchanged(&self, tenant: TenantId, record: &tessera_store::Record) -> bool {
        match self.reader().await {
            Ok(mut reader) => matches!(
                reader.get(tenant, Kind::SiemSink, record.id).await,
                Ok(Some(now)) if now.version == record.version
            ),
            Err(_) => false,
        }
    }

    async fn deliver_sink(
        &self,
        transport: &dyn SiemTransport,
        tenant: TenantId,
        record: &tessera_store::Record,
        stored: &Stored,
        progress: &Progress,
    ) -> usize {
        let sink = record.id;
        if self.waiting(sink) {
            return 0;
        }
        let started = Instant::now();
        let round = Round {
            transport,
            tenant,
            sink,
            stored,
            started,
        };
        let mut sent = 0;
        let mut failure = None;
        for stream in &stored.spec.streams {
            while started.elapsed() < ROUND {
                if !self.unchanged(tenant, record).await {
                    return sent;
                }
                match self.deliver_batch(&round, *stream).await {
                    Ok(Sent { records, moved }) => {
                        sent += records;
                        progress.taken.fetch_add(records, Ordering::Relaxed);
                        if !moved {
                            break;
                        }
                    }
                    Err(error) => {
                        // The other streams still go.
                        let error = format!("{}: {error}", stream.name());
                        if let Ok(mut shared) = progress.failure.lock() {
                            shared.get_or_insert(error.clone());
                        }
                        failure.get_or_insert(error);
                        break;
                    }
                }
            }
        }
        match failure {
            Some(error) => {
                self.failed(tenant, sink, &stored.spec.display_name, error)
                    .await
            }
            None => self.succeeded(tenant, sink).await,
        }
        sent
    }

    /// Sends the next batch of one stream.
    async fn deliver_batch(&self, round: &Round<'_>, stream: Stream) -> Result<Sent, String> {
        let Round {
            tenant,
            sink,
            stored,
            ..
        } = *round;
        let after = self
            .cursor(tenant, sink, stored, stream)
            .await
            .map_err(|e| e.to_string())?;
        let (mut records, last) = self
            .read(tenant, stream, after, BATCH)
            .await
            .map_err(|e| e.to_string())?;
        let Some(mut last) = last else {
            return Ok(Sent {
                records: 0,
                moved: false,
            });
        };
        // About BATCH_BYTES: the rest waits for the next batch.
        let mut bytes = 0;
        if let Some(cut) = records.iter().position(|r| {
            bytes += r.view.to_string().len();
            bytes > BATCH_BYTES
        }) {
            let cut = cut.max(1);
            if cut < records.len() {
                records.truncate(cut);
                last = records[cut - 1].seq;
            }
        }
        let mut delivered = records.len();
        if !records.is_empty() {
            match self.send(round, stream, &records).await {
                Ok(()) => {}
                Err(Refusal::Content(refused)) if records.len() > 1 => {
                    let (taken, through) =
                        self.one_by_one(round, stream, &records, refused).await?;
                    delivered = taken;
                    last = through;
                }
                Err(refusal) => return Err(refusal.message()),
            }
        }
        self.store
            .counter_advance(tenant, &cursor_key(sink, stream), last, self.now())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Sent {
            records: delivered,
            moved: true,
        })
    }

    /// A batch the receiver refused, sent again record by record: how many it
    /// took, and the last number the cursor may move to. Records refused alone
    /// are passed over once the receiver took one of the batch; until then,
    /// nothing moves.
    async fn one_by_one(
        &self,
        round: &Round<'_>,
        stream: Stream,
        records: &[Record],
        refused: String,
    ) -> Result<(usize, i64), String> {
        let Round { tenant, sink, .. } = *round;
        let mut taken = 0;
        let mut accepted = None;
        let mut refused_alone = Vec::new();
        let mut every_one_tried = true;
        for record in records {
            // Out of time: what was done counts, the rest waits.
            if accepted.is_some() && round.started.elapsed() > ROUND {
                every_one_tried = false;
                break;
            }
            match self.send(round, stream, std::slice::from_ref(record)).await {
                Ok(()) => {
                    taken += 1;
                    accepted = Some(record.seq);
                }
                Err(Refusal::Content(_)) => refused_alone.push(record.seq),
                Err(Refusal::Failed(error)) => {
                    if accepted.is_none() {
                        return Err(error);
                    }
                    every_one_tried = false;
                    break;
                }
            }
        }
        let Some(accepted) = accepted else {
            // Not one record went: the receiver refuses everything.
            return Err(refused);
        };
        // Every record tried: the cursor passes them all. Cut short: it stops
        // at the last one taken, and those refused after it are tried again.
        let through = if every_one_tried {
            records.last().map_or(accepted, |r| r.seq)
        } else {
            accepted
        };
        let skipped: Vec<i64> = refused_alone
            .into_iter()
            .filter(|seq| *seq <= through)
            .collect();
        if !skipped.is_empty() {
            tracing::warn!(%tenant, %sink, stream = stream.name(), numbers = ?skipped, "a SIEM receiver refused records; they are passed over");
            let now = self.now();
            for _ in &skipped {
                if let Err(error) = self
                    .store
                    .counter_increment(
                        tenant,
                        &skipped_key(sink),
                        now,
                        Timestamp::from_unix_micros(0),
                    )
                    .await
                {
                    tracing::warn!(%error, "cannot count a passed-over record");
                    break;
                }
            }
        }
        Ok((taken, through))
    }

    async fn send(
        &self,
        round: &Round<'_>,
        stream: Stream,
        records: &[Record],
    ) -> Result<(), Refusal> {
        let Round {
            transport,
            tenant,
            sink,
            stored,
            ..
        } = *round;
        let origin = self.origin(tenant);
        let events: Vec<Value> = records
            .iter()
            .map(|r| tessera_siem::ocsf::event(r, &origin))
            .collect();
        let roots = stored.spec.ca_certificate.as_deref();
        let open = |sealed: &Option<String>| -> Result<Option<Vec<u8>>, Refusal> {
            sealed
                .as_ref()
                .map(|sealed| {
                    self.settings
                        .sealing_key
                        .open(sealed, SECRET_CONTEXT)
                        .map_err(|_| Refusal::Failed("the sink's secrets cannot be opened".into()))
                })
                .transpose()
        };
        let mut headers = Vec::new();
        if let Some(value) = open(&stored.authorization_sealed)? {
            let value = String::from_utf8(value)
                .map_err(|_| Refusal::Failed("the sink's authorization is not text".into()))?;
            headers.push(("Authorization".to_string(), value));
        }
        let (url, body) = match &stored.spec.destination {
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
                return transport
                    .syslog(host, *port, name, roots, &frames)
                    .await
                    .map_err(Refusal::Failed);
            }
            Destination::Https { url } => {
                let first = records.first().map_or(0, |r| r.seq);
                let last = records.last().map_or(0, |r| r.seq);
                let batch_id =
                    tessera_siem::batch::batch_id(&sink.to_string(), stream, first, last);
                let body = tessera_siem::batch::body(&origin.tenant_id, stream, &batch_id, &events);
                let body = serde_json::to_vec(&body).map_err(|e| Refusal::Failed(e.to_string()))?;
                let secret = open(&stored.secret_sealed)?
                    .ok_or_else(|| Refusal::Failed("the sink has no signing secret".into()))?;
                let unix = self.now().unix_seconds();
                headers.push(("Tessera-Batch-Id".to_string(), batch_id));
                headers.push((
                    "Tessera-Signature".to_string(),
                    crate::kernel::outbox::webhook_signature(&secret, unix, &body),
                ));
                (url, body)
            }
            Destination::Otlp { url } => {
                let pairs: Vec<(&Record, &Value)> = records.iter().zip(&events).collect();
                let observed = self.now().unix_micros().saturating_mul(1000);
                let body = tessera_siem::otlp::request(&pairs, &origin, observed);
                let body = serde_json::to_vec(&body).map_err(|e| Refusal::Failed(e.to_string()))?;
                (url, body)
            }
        };
        let status = transport
            .post(url, roots, body, &headers)
            .await
            .map_err(Refusal::Failed)?;
        match status {
            200..=299 => Ok(()),
            400 | 403 | 413 | 415 | 422 => Err(Refusal::Content(format!(
                "the receiver refused the records (HTTP {status})"
            ))),
            _ => Err(Refusal::Failed(format!(
                "the receiver answered HTTP {status}"
            ))),
        }
    }

    pub(super) async fn failed(&self, tenant: TenantId, sink: Uuid, name: &str, error: String) {
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
        }
        // The failure another node (or this one, before a restart) noted ends.
        let mut trouble = self.trouble(tenant, sink).await.unwrap_or_default();
        if trouble.failing_since.take().is_some() {
            self.keep_trouble(tenant, sink, &trouble).await;
        }
    }

    pub(super) async fn trouble(&self, tenant: TenantId, sink: Uuid) -> Option<Trouble> {
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
}

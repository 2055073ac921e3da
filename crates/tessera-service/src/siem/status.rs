//! What the API, the console and `/metrics` show of a sink: each stream's
//! head, the sink's cursor, the records waiting and how long the oldest has
//! waited, the last delivery, and the last failure.
//!
//! `/metrics` reads `lag`, which each node keeps for 15 seconds a tenant, so
//! however often (and by whomever) it is scraped, the store is asked at most
//! that often.

use std::time::{Duration, Instant};

use tessera_core::{TenantId, Timestamp};
use tessera_siem::sink::Destination;
use tessera_siem::{Record, Stream, syslog};
use uuid::Uuid;

use super::delivery::{delivered_key, skipped_key};
use super::{Siem, SinkStatus, SinkView, Stored, StreamStatus};
use crate::codec;
use crate::error::ServiceResult;

/// How long a node keeps a tenant's lag for `/metrics`.
const LAG_KEPT: Duration = Duration::from_secs(15);

/// One sink's lag in one stream, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lag {
    pub sink: Uuid,
    pub stream: Stream,
    pub records: i64,
    pub seconds: i64,
}

impl Siem {
    pub(super) async fn status(
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
                start: stored.start.get(stream).copied().unwrap_or(0),
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
        let skipped = self
            .store
            .counter_get(tenant, &skipped_key(sink))
            .await?
            .map_or(0, |c| c.value);
        Ok(SinkStatus {
            streams,
            last_delivery_date_time: last_delivery,
            last_error: trouble.last_error,
            last_error_date_time: trouble.last_error_at,
            failing_since: trouble.failing_since,
            records_refused: skipped,
        })
    }

    pub(super) async fn view(
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
            has_authorization: stored.authorization_sealed.is_some(),
            version: record.version,
            created_date_time: record.created,
            status,
        })
    }

    /// Each sink's lag in each of its streams, for `/metrics` (kept on this
    /// node for `LAG_KEPT`).
    pub async fn lag(&self, tenant: TenantId) -> ServiceResult<Vec<Lag>> {
        if let Ok(kept) = self.lags.lock()
            && let Some((at, lags)) = kept.get(&tenant)
            && at.elapsed() < LAG_KEPT
        {
            return Ok(lags.clone());
        }
        let mut out = Vec::new();
        for record in self.sink_records(tenant).await? {
            let Ok(stored) = codec::data::<Stored>(&record) else {
                continue;
            };
            let status = self.status(tenant, record.id, &stored).await?;
            for s in status.streams {
                out.push(Lag {
                    sink: record.id,
                    stream: s.stream,
                    records: s.lag,
                    seconds: s.lag_seconds,
                });
            }
        }
        if let Ok(mut kept) = self.lags.lock() {
            kept.insert(tenant, (Instant::now(), out.clone()));
        }
        Ok(out)
    }
}

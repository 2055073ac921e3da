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
//! - A new sink starts at the streams' heads as it is created, and a stream
//!   added to a sink later at its head then.
//! - The `siem-export` job delivers, one lease per tenant; the sinks of a tenant
//!   are delivered side by side, each within its own time limit, and a failing
//!   one waits (4 s doubling, up to a minute) on this node before its next try
//!   (`delivery.rs`). `status.rs`: what is shown of a sink, its lag.
//! - The formats are `tessera_siem`'s; the bytes go through the
//!   [`SiemTransport`] port the binary gives (reqwest, rustls).
//!
//! Sinks are `Kind::SiemSink` records (key1: the lowercased name), changed by an
//! administrator who may manage the tenant's policies and read every stream
//! the sink takes, audited, their secrets sealed and never shown. Delivery itself writes no audit event (it would feed
//! the stream it reads).
//!
//! Calls: kernel; the sign-in log's and the detections' views (read only).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::roles::action;
use tessera_siem::sink::{HasSecrets, SecretChange, SinkInput, SinkSpec};
use tessera_siem::{Origin, Stream};
use tessera_store::{Kind, ListQuery};
use uuid::Uuid;

use crate::codec::{self, Keys, Versioned};
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::Kernel;
use crate::{Context, EventDraft};

mod delivery;
mod status;

pub use status::Lag;
pub use tessera_siem::Stream as SiemStream;

/// The context a sink's secrets are sealed for.
const SECRET_CONTEXT: &str = "siem-sink-secret";

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization_sealed: Option<String>,
    /// Where each stream started when the sink took it.
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
    /// Whether a signing secret is set (https).
    pub has_secret: bool,
    /// Whether an `Authorization` header value is set (https, otlp).
    pub has_authorization: bool,
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
    /// Records the receiver refused one by one while it took others, passed
    /// over (see the log for their numbers).
    pub records_refused: i64,
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
    /// Where the sink started: the stream's last number when the sink took
    /// it (it delivers what comes after).
    pub start: i64,
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
    /// Each tenant's lag as this node last read it, for `/metrics`.
    lags: Mutex<HashMap<TenantId, (std::time::Instant, Vec<status::Lag>)>>,
}

crate::kernel::on_kernel!(Siem);

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
    value["hasAuthorization"] = stored.authorization_sealed.is_some().into();
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
            lags: Mutex::new(HashMap::new()),
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

    // ---- administration ----------------------------------------------------

    fn may_read(&self, ctx: &Context) -> ServiceResult<()> {
        self.require(ctx, action::POLICIES_READ, &Target::Tenant)
    }

    /// Whoever sends a stream out must be allowed to read it: a manager of
    /// the tenant's policies who also reads sign-in reports, audit logs or
    /// risk detections, for the streams the sink takes.
    fn may_manage(&self, ctx: &Context, streams: &[Stream]) -> ServiceResult<()> {
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)?;
        for stream in streams {
            let needed = match stream {
                Stream::SignIns => action::SIGN_IN_REPORTS_READ,
                Stream::AuditLogs => action::AUDIT_LOGS_READ,
                Stream::RiskDetections => action::RISK_READ,
            };
            self.require(ctx, needed, &Target::Tenant)?;
        }
        Ok(())
    }

    /// `GET siem/sinks` (a sink whose record cannot be read is left out, with
    /// a warning).
    pub async fn list_sinks(&self, ctx: &Context) -> ServiceResult<Vec<SinkView>> {
        self.may_read(ctx)?;
        let records = self.sink_records(ctx.tenant).await?;
        let mut views = Vec::new();
        for record in &records {
            match self.view(ctx.tenant, record).await {
                Ok(view) => views.push(view),
                Err(ServiceError::Internal(error)) => {
                    tracing::warn!(sink = %record.id, %error, "a SIEM sink cannot be shown");
                }
                Err(error) => return Err(error),
            }
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

    /// A secret as a change leaves it: sealed anew, kept, or gone.
    fn sealed(
        &self,
        change: &SecretChange,
        kept: &Option<String>,
    ) -> ServiceResult<Option<String>> {
        Ok(match change {
            SecretChange::Set(secret) => Some(
                self.settings
                    .sealing_key
                    .seal(secret.as_bytes(), SECRET_CONTEXT)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?,
            ),
            SecretChange::Keep => kept.clone(),
            SecretChange::Remove => None,
        })
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
        let input = Self::parse(body)?;
        let (spec, secrets) = input.apply(None, HasSecrets::default()).map_err(invalid)?;
        self.may_manage(ctx, &spec.streams)?;
        self.check_roots(&spec)?;
        let mut start = BTreeMap::new();
        for stream in Stream::ALL {
            start.insert(stream, self.head(ctx.tenant, stream).await?);
        }
        let stored = Stored {
            spec,
            secret_sealed: self.sealed(&secrets.secret, &None)?,
            authorization_sealed: self.sealed(&secrets.authorization, &None)?,
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

    /// `PATCH siem/sinks/{id}`: the members given change; the type stays. A
    /// stream the sink takes anew starts at its head now.
    pub async fn update_sink(&self, ctx: &Context, patch: crate::Patch) -> ServiceResult<SinkView> {
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)?;
        let input = Self::parse(patch.body)?;
        let id = patch.at.id;
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, Kind::SiemSink, id).await?;
        patch.at.check(&record)?;
        let before: Stored = codec::data(&record)?;
        let has = HasSecrets {
            secret: before.secret_sealed.is_some(),
            authorization: before.authorization_sealed.is_some(),
        };
        let (spec, secrets) = input.apply(Some(&before.spec), has).map_err(invalid)?;
        self.may_manage(ctx, &spec.streams)?;
        self.check_roots(&spec)?;
        self.name_free(tx.as_mut(), ctx.tenant, &spec, Some(id))
            .await?;
        let mut start = before.start.clone();
        for stream in &spec.streams {
            if !before.spec.streams.contains(stream) {
                start.insert(*stream, self.head(ctx.tenant, *stream).await?);
            }
        }
        let after = Stored {
            spec,
            secret_sealed: self.sealed(&secrets.secret, &before.secret_sealed)?,
            authorization_sealed: self
                .sealed(&secrets.authorization, &before.authorization_sealed)?,
            start,
        };
        let next = codec::next_version(&record, self.now(), keys_of(&after.spec), &after)?;
        tx.update(ctx.tenant, &next).await?;
        let mut changes = tessera_directory::patch::changes(&shown(&before), &shown(&after));
        for (name, change) in [
            ("secret", &secrets.secret),
            ("authorization", &secrets.authorization),
        ] {
            if matches!(change, SecretChange::Set(_)) {
                changes.push(tessera_directory::patch::Change {
                    attribute: name.to_string(),
                    old_value: Value::Null,
                    new_value: json!("(changed)"),
                });
            }
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
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)?;
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
        let mut keys: Vec<String> = Stream::ALL
            .iter()
            .map(|s| delivery::cursor_key(at.id, *s))
            .collect();
        keys.push(delivery::delivered_key(at.id));
        keys.push(delivery::skipped_key(at.id));
        for key in keys {
            let _ = self.store.counter_delete(ctx.tenant, &key).await;
        }
        let _ = self
            .store
            .session_delete(ctx.tenant, &delivery::trouble_key(at.id))
            .await;
        Ok(())
    }
}

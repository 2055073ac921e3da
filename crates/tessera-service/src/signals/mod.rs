//! Shared Signals (issue 18): Tessera as an OpenID SSF 1.0 transmitter of
//! CAEP and RISC events to the applications that trust it (`transmit.rs`
//! reads the changes and delivers), and as a receiver of signals from device
//! managers and security tools (`receive.rs`). The protocol's rules are
//! `tessera_ssf`'s.
//!
//! Transmitting:
//! - An application becomes a receiver once an administrator lets it
//!   (`SignalsSettings::receivers`); it then gets access tokens for the SSF
//!   API by client credentials with the scopes `ssf.manage` (create, change,
//!   delete streams, subjects, verification, poll) or `ssf.read`.
//! - A stream (`Kind::SignalStream`) belongs to the receiver that made it;
//!   its SETs are addressed to the receiver's client id, signed with the
//!   tenant's RS256 key (the issuer's JWKS), and name users as `iss_sub`.
//! - What a stream gets: the events it asked for, about its users only (the
//!   users its application admits: assigned when it requires assignment,
//!   consented to otherwise), less the subjects it removed. Adding a subject
//!   undoes its removal and never widens what the application may hear of
//!   (the answer is the same either way, so it learns nothing of who exists).
//! - Events come from the audit trail, read from the stream's cursor in
//!   order (`tessera_ssf::derive`), and wait in the stream's queue
//!   (`Kind::SignalEvent`) until a push is taken or a poll acknowledged: a
//!   receiver that is down gets them, in order, when it is back. Moving the
//!   cursor and queueing are one transaction, so none is lost or doubled.
//!
//! Calls: kernel; the OIDC context (signing); the directory's assignment and
//! consent reads.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{AppId, TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_ssf::SsfError;
use tessera_ssf::events::EventType;
use tessera_ssf::stream::{PushTarget, Status, SubjectFormat};
use tessera_ssf::subject::SubjectId;
use tessera_store::{Kind, Record};
use uuid::Uuid;

use crate::codec::{self, Keys};
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::Kernel;
use crate::kernel::tenant_settings::{TenantSetting, sealed};
use crate::{Context, EventDraft};

mod receive;
mod transmit;

pub use receive::{REPLAYED, ReceivedStreamView, ReceiverInput};
pub use tessera_ssf::SsfError as ProtocolError;

/// The scope (and app role) that manages streams.
pub const MANAGE: &str = "ssf.manage";
/// The scope (and app role) that reads them.
pub const READ: &str = "ssf.read";
/// The app role (and scope) of a device manager reporting compliance through
/// the device compliance API (`POST /api/v1/devices/compliance`).
pub const DEVICE_COMPLIANCE: &str = "DeviceCompliance.ReadWrite.All";
/// The SSF API as a client-credentials resource: its id and URI.
pub const SIGNALS_API_ID: &str = "7e55a1c1-0b6f-4c1e-9a4d-3f2b8c6d5e04";
pub const SIGNALS_API_URI: &str = "urn:tessera:ssf";
/// The context a push stream's authorization header is sealed for.
const PUSH_SECRET_CONTEXT: &str = "ssf-push-authorization";
/// Most streams one receiver may have.
const MAX_STREAMS: usize = 5;
/// Most subjects a stream may add or remove.
const MAX_SUBJECTS: usize = 1000;
/// The least time between two verifications a receiver asks for (seconds).
pub const MIN_VERIFICATION_SECONDS: u32 = 10;

pub(crate) fn signals_api_id() -> AppId {
    AppId::from_uuid(Uuid::from_u128(0x7e55a1c1_0b6f_4c1e_9a4d_3f2b8c6d5e04))
}

/// The app roles a client-credentials `scope` asks of the SSF API, when it
/// names it: `ssf.manage` and `ssf.read` (the CAEP interoperability
/// profile's), or `urn:tessera:ssf/.default` (all the client may have).
pub(crate) fn requested_roles(scope: &str) -> Option<Vec<&'static str>> {
    let words: Vec<&str> = scope.split(' ').filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return None;
    }
    let default = |word: &str| {
        let resource = word.strip_suffix("/.default").unwrap_or("");
        let resource = resource.strip_prefix("api://").unwrap_or(resource);
        resource == SIGNALS_API_URI || resource.eq_ignore_ascii_case(SIGNALS_API_ID)
    };
    if words.len() == 1 && default(words[0]) {
        return Some(vec![MANAGE, READ, DEVICE_COMPLIANCE]);
    }
    let mut roles = Vec::new();
    for word in words {
        match word {
            MANAGE => roles.push(MANAGE),
            READ => roles.push(READ),
            DEVICE_COMPLIANCE => roles.push(DEVICE_COMPLIANCE),
            _ => return None,
        }
    }
    Some(roles)
}

/// Sending and fetching over HTTP, as the binary does it (a guarded client:
/// no redirects, checked addresses, bounded answers).
#[async_trait]
pub trait SignalsTransport: Send + Sync {
    /// Sends a request; the status, the `Content-Type` and the body.
    async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String, Vec<u8>), String>;
}

/// An application that may receive signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiverClient {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub app_id: AppId,
    /// Only `ssf.read`: it sees its streams and cannot change them.
    #[serde(default)]
    pub read_only: bool,
}

/// The tenant's Shared Signals settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignalsSettings {
    /// The applications that may manage receiver streams.
    #[serde(default)]
    pub receivers: Vec<ReceiverClient>,
    /// The device managers (their appIds) that may report devices'
    /// compliance with the role `DeviceCompliance.ReadWrite.All`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub device_managers: Vec<AppId>,
    /// How long (minutes) an access token lives for a client that handles
    /// claims challenges (`xms_cc` `cp1`) and has an enabled stream, so
    /// revocation reaches it: 1440 (a day) when not set, at most 1680 (28
    /// hours), 0 to give such clients the short lifetime too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cae_token_lifetime_minutes: Option<u32>,
}

/// The long lifetime when the setting does not say (minutes).
pub const CAE_TOKEN_MINUTES: u32 = 1440;
/// The longest it may be (minutes), as Entra's.
pub const MAX_CAE_TOKEN_MINUTES: u32 = 1680;

/// How long an access token may live (seconds) for `client_id`, a client
/// that declared it handles claims challenges, for `audience` (an
/// application's client id; `None`: Tessera's own resources, which check
/// revocations themselves): long when the client and the audience both hear
/// of revocations (an enabled stream asking for session-revoked and
/// account-disabled) and the setting allows; `None` otherwise.
pub(crate) async fn cae_token_seconds(
    reader: &mut dyn tessera_store::Reader,
    tenant: TenantId,
    client_id: &str,
    audience: Option<&str>,
) -> ServiceResult<Option<i64>> {
    let settings: SignalsSettings =
        crate::kernel::tenant_settings::read_setting(reader, tenant).await?;
    let minutes = settings
        .cae_token_lifetime_minutes
        .unwrap_or(CAE_TOKEN_MINUTES);
    if minutes == 0 {
        return Ok(None);
    }
    for app in std::iter::once(client_id).chain(audience) {
        if !hears_revocations(reader, tenant, app).await? {
            return Ok(None);
        }
    }
    Ok(Some(i64::from(minutes.min(MAX_CAE_TOKEN_MINUTES)) * 60))
}

/// Whether an application has an enabled stream that tells it of sessions
/// revoked and accounts disabled.
async fn hears_revocations(
    reader: &mut dyn tessera_store::Reader,
    tenant: TenantId,
    client_id: &str,
) -> ServiceResult<bool> {
    for record in codec::list_all(
        reader,
        tenant,
        Kind::SignalStream,
        Some(client_id.to_string()),
    )
    .await?
    {
        let data: StreamData = codec::data(&record)?;
        let delivered = tessera_ssf::stream::delivered(&data.events_requested);
        if data.status == Status::Enabled
            && delivered.contains(&EventType::SessionRevoked)
            && delivered.contains(&EventType::AccountDisabled)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

impl sealed::Sealed for SignalsSettings {}

impl TenantSetting for SignalsSettings {
    const KEY: &'static str = "signals";
    const UPDATED: AuditAction = AuditAction::SignalsSettingsUpdate;
}

/// What a receiver's access token says it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverCaller {
    pub tenant: TenantId,
    pub app_id: AppId,
    pub service_principal: Uuid,
    pub display_name: String,
    pub manage: bool,
    pub correlation_id: String,
    pub client_address: Option<String>,
}

impl ReceiverCaller {
    fn context(&self) -> Context {
        let mut ctx = crate::kernel::system_context(self.tenant, "shared signals");
        ctx.caller.principal = crate::Principal::Workload {
            id: self.service_principal,
            display_name: self.display_name.clone(),
            kind: "servicePrincipal",
        };
        ctx.caller.credential = Some(format!("oauth:{}", self.app_id));
        ctx.correlation_id = self.correlation_id.clone();
        ctx.client_address = self.client_address.clone();
        ctx
    }
}

/// Why a Shared Signals request fails: the service's errors, a protocol
/// error (400 with `err` and `description`), or a verification asked for too
/// soon (429).
#[derive(Debug)]
pub enum SignalsError {
    Service(ServiceError),
    Protocol(SsfError),
    TooSoon { retry_after: u32 },
}

impl From<ServiceError> for SignalsError {
    fn from(error: ServiceError) -> Self {
        SignalsError::Service(error)
    }
}

impl From<SsfError> for SignalsError {
    fn from(error: SsfError) -> Self {
        SignalsError::Protocol(error)
    }
}

impl From<tessera_store::StoreError> for SignalsError {
    fn from(error: tessera_store::StoreError) -> Self {
        SignalsError::Service(error.into())
    }
}

pub type SignalsResult<T> = Result<T, SignalsError>;

/// A push stream's target as stored: the receiver's authorization header
/// sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredPush {
    endpoint_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization_sealed: Option<String>,
}

/// A stream as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamData {
    stream_id: String,
    /// The receiver's client id (the SETs' audience).
    client_id: String,
    /// The receiver's service principal.
    service_principal: Uuid,
    events_requested: Vec<String>,
    #[serde(default)]
    subject_format: SubjectFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    push: Option<StoredPush>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default)]
    added: Vec<Value>,
    #[serde(default)]
    removed: Vec<Value>,
}

impl StreamData {
    fn keys(&self) -> Keys {
        Keys {
            key1: Some(self.stream_id.clone()),
            key2: Some(self.client_id.clone()),
            sort_key: self.stream_id.clone(),
        }
    }

    fn removed_subjects(&self) -> Vec<SubjectId> {
        self.removed
            .iter()
            .filter_map(|v| SubjectId::parse(v).ok())
            .collect()
    }
}

/// What changes with every delivery of a stream, kept in the session store
/// (not the audited record): counts, the last error, when to try again.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryState {
    #[serde(default)]
    delivered: u64,
    /// SETs the receiver refused, and those dropped from a full queue.
    #[serde(default)]
    dropped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_delivered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error_at: Option<Timestamp>,
    /// A push that failed waits until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_at: Option<Timestamp>,
    #[serde(default)]
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_verification: Option<Timestamp>,
}

/// How long a session-store row of a stream lives (its queue's SETs; its
/// delivery state is written again with every change).
const ROW_SECONDS: i64 = 30 * 86_400;
/// How long a stream's or a transmitter's state row lives without a change.
const STATE_SECONDS: i64 = 365 * 86_400;

fn state_key(stream: Uuid) -> String {
    format!("ssfs:{stream}")
}

fn queue_prefix(stream: Uuid) -> String {
    format!("ssfq:{stream}:")
}

fn cursor_key(stream: Uuid) -> String {
    format!("ssf:{stream}:cursor")
}

/// A SET waiting in a stream's queue (a session-store row `ssfq:<stream>:<place>`,
/// the place being the audit event's number and the signal's index, so a
/// round that runs twice queues nothing twice).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueuedSet {
    jti: String,
    token: String,
    event: String,
    /// SSF's own (verification, stream-updated): sent whatever the status.
    #[serde(default)]
    control: bool,
}

/// A transmitted stream as administrators see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StreamView {
    pub id: Uuid,
    pub stream_id: String,
    pub client_id: String,
    /// `push` or `poll`.
    pub delivery: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    pub events_requested: Vec<String>,
    pub events_delivered: Vec<String>,
    /// `enabled`, `paused` or `disabled`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// SETs waiting for delivery or acknowledgement.
    pub queued: u64,
    /// Audit events not yet read for this stream.
    pub lag: i64,
    pub delivered: u64,
    pub dropped: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_delivered_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_error_date_time: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_verification_date_time: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_date_time: Timestamp,
}

/// One change that ended or changed a user's access, as the user's
/// revocation timeline shows it (newest first).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub date_time: Timestamp,
    /// The CAEP or RISC event it is (`session-revoked`, `account-disabled`...).
    pub event: String,
    pub reason: String,
    /// `admin`, `user`, `policy` or `system`.
    pub initiated_by: String,
    /// Who made the change.
    pub actor: String,
    pub correlation_id: String,
}

/// The Shared Signals context.
pub struct Signals {
    k: Arc<Kernel>,
    oidc: Arc<crate::Oidc>,
    directory: Arc<crate::Directory>,
    risk: Arc<crate::Risk>,
    transport: OnceLock<Arc<dyn SignalsTransport>>,
    /// Whether push endpoints (and transmitters) may be `http` at a loopback
    /// host (tests, sidecars): the binary says.
    http_loopback: OnceLock<bool>,
    /// The streams a long poll waits on, on this node.
    polls: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
}

/// A long poll waiting on a stream; the stream is free again when it ends.
pub(crate) struct PollGuard {
    polls: Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>,
    stream: Uuid,
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        if let Ok(mut polls) = self.polls.lock() {
            polls.remove(&self.stream);
        }
    }
}

crate::kernel::on_kernel!(Signals);

impl Signals {
    pub(crate) fn new(
        k: Arc<Kernel>,
        oidc: Arc<crate::Oidc>,
        directory: Arc<crate::Directory>,
        risk: Arc<crate::Risk>,
    ) -> Signals {
        Signals {
            k,
            oidc,
            directory,
            risk,
            transport: OnceLock::new(),
            http_loopback: OnceLock::new(),
            polls: Arc::default(),
        }
    }

    /// Takes the stream for a long poll on this node; `None` while another
    /// waits on it.
    pub(crate) fn polling(&self, stream: Uuid) -> Option<PollGuard> {
        let mut polls = self.polls.lock().ok()?;
        polls.insert(stream).then(|| PollGuard {
            polls: self.polls.clone(),
            stream,
        })
    }

    /// Gives the context its HTTP client; `http_loopback` lets push
    /// endpoints and transmitters be `http` at a loopback host.
    pub fn set_transport(&self, transport: Arc<dyn SignalsTransport>, http_loopback: bool) {
        if self.transport.set(transport).is_err() {
            tracing::warn!("the signals transport was set already; the first stays");
        }
        let _ = self.http_loopback.set(http_loopback);
    }

    fn http_loopback(&self) -> bool {
        self.http_loopback.get().copied().unwrap_or(false)
    }

    fn transport(&self) -> ServiceResult<&Arc<dyn SignalsTransport>> {
        self.transport
            .get()
            .ok_or_else(|| ServiceError::Unavailable("no HTTP client for signals".into()))
    }

    /// The transmitter's issuer: the server's base URL (the default
    /// tenant's), without a trailing slash.
    pub fn issuer(&self) -> String {
        self.public_url().trim_end_matches('/').to_string()
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}/ssf/{path}", self.issuer())
    }

    fn poll_endpoint(&self, stream_id: &str) -> String {
        self.endpoint(&format!("poll/{stream_id}"))
    }

    /// `/.well-known/ssf-configuration`: the transmitter's metadata.
    pub fn configuration(&self) -> Value {
        let issuer = self.issuer();
        json!({
            "issuer": issuer,
            "spec_version": "1_0",
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "delivery_methods_supported": [tessera_ssf::PUSH, tessera_ssf::POLL],
            "configuration_endpoint": self.endpoint("streams"),
            "status_endpoint": self.endpoint("status"),
            "add_subject_endpoint": self.endpoint("subjects:add"),
            "remove_subject_endpoint": self.endpoint("subjects:remove"),
            "verification_endpoint": self.endpoint("verify"),
            "authorization_schemes": [{ "spec_urn": "urn:ietf:rfc:6749" }],
            "default_subjects": "ALL",
        })
    }

    // ---- settings -------------------------------------------------------------

    /// The tenant's signals settings with their version.
    pub async fn settings(&self, ctx: &Context) -> ServiceResult<(SignalsSettings, i64)> {
        self.get_setting_versioned(ctx).await
    }

    /// Replaces the signals settings (audited).
    pub async fn set_settings(
        &self,
        ctx: &Context,
        change: crate::Replacement,
    ) -> ServiceResult<SignalsSettings> {
        self.may_change_settings(ctx)?;
        let crate::Replacement { body, if_match } = change;
        let after: SignalsSettings = tessera_directory::patch::parse_spec(body)?;
        if after
            .cae_token_lifetime_minutes
            .is_some_and(|m| m > MAX_CAE_TOKEN_MINUTES)
        {
            return Err(ServiceError::invalid(
                "caeTokenLifetimeMinutes",
                format!("must be 0 to {MAX_CAE_TOKEN_MINUTES}"),
            ));
        }
        for (field, count) in [
            ("receivers", after.receivers.len()),
            ("deviceManagers", after.device_managers.len()),
        ] {
            if count > 100 {
                return Err(ServiceError::invalid(field, "at most 100 applications"));
            }
        }
        let mut seen = std::collections::HashSet::new();
        if !after.receivers.iter().all(|r| seen.insert(r.app_id)) {
            return Err(ServiceError::invalid(
                "receivers",
                "names an application twice",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if !after.device_managers.iter().all(|m| seen.insert(*m)) {
            return Err(ServiceError::invalid(
                "deviceManagers",
                "names an application twice",
            ));
        }
        let (tx, before) = self.open_setting::<SignalsSettings>(ctx, if_match).await?;
        // A device manager reports compliance: whoever names one must be
        // allowed to report it.
        if after
            .device_managers
            .iter()
            .any(|m| !before.device_managers.contains(m))
        {
            self.require(
                ctx,
                tessera_directory::roles::action::DEVICES_COMPLIANCE_UPDATE,
                &tessera_directory::authz::Target::Tenant,
            )?;
        }
        self.save_setting(ctx, tx, &before, &after).await?;
        Ok(after)
    }

    // ---- the receiver's credentials -------------------------------------------

    /// The caller of the SSF API holding a workload's token for it (client
    /// credentials, aud the SSF API, the role `ssf.manage` or `ssf.read`),
    /// while its service principal is enabled and the settings name it.
    pub async fn authenticate_receiver(
        &self,
        presented: &crate::oauth::Presented<'_>,
        correlation_id: &str,
        client_address: Option<&str>,
    ) -> ServiceResult<ReceiverCaller> {
        let WorkloadToken {
            tenant,
            roles,
            app_id,
            principal,
            display_name,
            settings,
        } = self.workload_token(presented).await?;
        let Some(allowed) = settings.receivers.iter().find(|r| r.app_id == app_id) else {
            return Err(ServiceError::Unauthenticated);
        };
        let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
        let manage = roles.contains(&MANAGE) && !allowed.read_only;
        if !manage && !roles.contains(&READ) {
            return Err(ServiceError::Forbidden {
                reason: "the token holds neither ssf.manage nor ssf.read".into(),
            });
        }
        Ok(ReceiverCaller {
            tenant,
            app_id,
            service_principal: principal,
            display_name,
            manage,
            correlation_id: correlation_id.to_string(),
            client_address: client_address.map(str::to_string),
        })
    }

    /// A device manager holding a workload's token for the SSF API with the
    /// role `DeviceCompliance.ReadWrite.All`, while its service principal is
    /// enabled and the settings name it: a context with the rights of the
    /// Intune Administrator role (devices and their compliance) and no other.
    pub async fn authenticate_device_manager(
        &self,
        presented: &crate::oauth::Presented<'_>,
        correlation_id: &str,
        client_address: Option<&str>,
    ) -> ServiceResult<Context> {
        let token = self.workload_token(presented).await?;
        if !token.roles.iter().any(|r| r == DEVICE_COMPLIANCE)
            || !token.settings.device_managers.contains(&token.app_id)
        {
            return Err(ServiceError::Unauthenticated);
        }
        let WorkloadToken {
            tenant,
            app_id,
            principal,
            display_name,
            ..
        } = token;
        let mut ctx = crate::kernel::system_context(tenant, "device compliance");
        ctx.caller.principal = crate::Principal::Workload {
            id: principal,
            display_name,
            kind: "servicePrincipal",
        };
        ctx.caller.grants = vec![tessera_directory::authz::Grant {
            assignment_id: Uuid::nil(),
            role_id: tessera_directory::roles::INTUNE_ADMINISTRATOR,
            scope: tessera_directory::model::DirectoryScope::Tenant,
        }];
        ctx.caller.credential = Some(format!("oauth:{app_id}"));
        ctx.correlation_id = correlation_id.to_string();
        ctx.client_address = client_address.map(str::to_string);
        Ok(ctx)
    }

    /// The roles an application may have of the SSF API (none: it is not a
    /// receiver).
    pub(crate) async fn receiver_roles(
        reader: &mut dyn tessera_store::Reader,
        tenant: TenantId,
        app_id: AppId,
    ) -> ServiceResult<Vec<&'static str>> {
        let settings: SignalsSettings =
            crate::kernel::tenant_settings::read_setting(reader, tenant).await?;
        let mut roles = match settings.receivers.iter().find(|r| r.app_id == app_id) {
            Some(r) if r.read_only => vec![READ],
            Some(_) => vec![MANAGE, READ],
            None => Vec::new(),
        };
        if settings.device_managers.contains(&app_id) {
            roles.push(DEVICE_COMPLIANCE);
        }
        Ok(roles)
    }

    // ---- streams --------------------------------------------------------------

    fn require_manage(caller: &ReceiverCaller) -> SignalsResult<()> {
        if caller.manage {
            Ok(())
        } else {
            Err(ServiceError::Forbidden {
                reason: "changing streams needs ssf.manage".into(),
            }
            .into())
        }
    }

    /// The receiver's stream `stream_id` (404 for another's).
    async fn own_stream(
        &self,
        reader: &mut dyn tessera_store::Reader,
        caller: &ReceiverCaller,
        stream_id: &str,
    ) -> SignalsResult<(Record, StreamData)> {
        let record = reader
            .get_by_key1(caller.tenant, Kind::SignalStream, stream_id)
            .await?
            .filter(|r| r.key2.as_deref() == Some(caller.app_id.to_string().as_str()))
            .ok_or_else(|| ServiceError::NotFound {
                kind: "stream",
                id: stream_id.chars().take(64).collect(),
            })?;
        let data: StreamData = codec::data(&record)?;
        Ok((record, data))
    }

    fn config_json(&self, data: &StreamData) -> Value {
        let push = data.push.as_ref().map(|p| PushTarget {
            endpoint_url: p.endpoint_url.clone(),
            authorization_header: None,
        });
        tessera_ssf::stream::Config {
            stream_id: &data.stream_id,
            iss: &self.issuer(),
            aud: &data.client_id,
            events_requested: &data.events_requested,
            push: push.as_ref(),
            poll_endpoint: &self.poll_endpoint(&data.stream_id),
            description: data.description.as_deref(),
            min_verification_interval: MIN_VERIFICATION_SECONDS,
            inactivity_timeout: None,
            subject_format: data.subject_format,
        }
        .to_json()
    }

    fn stored_push(&self, target: PushTarget) -> ServiceResult<StoredPush> {
        let authorization_sealed = target
            .authorization_header
            .map(|header| {
                self.settings
                    .sealing_key
                    .seal(header.as_bytes(), PUSH_SECRET_CONTEXT)
                    .map_err(|e| ServiceError::Internal(e.to_string()))
            })
            .transpose()?;
        Ok(StoredPush {
            endpoint_url: target.endpoint_url,
            authorization_sealed,
        })
    }

    async fn audit_head(&self, tenant: TenantId) -> ServiceResult<i64> {
        Ok(self.store().audit_head(tenant).await?.map_or(0, |h| h.seq))
    }

    /// `POST /ssf/streams`: a new stream for the receiver; it hears of the
    /// changes made from now on.
    pub async fn create_stream(
        &self,
        caller: &ReceiverCaller,
        body: &Value,
    ) -> SignalsResult<Value> {
        Self::require_manage(caller)?;
        let stream_id = Uuid::new_v4().simple().to_string();
        let requested = tessera_ssf::stream::parse_request(
            body,
            Some(&self.poll_endpoint(&stream_id)),
            self.http_loopback(),
        )?;
        let ctx = caller.context();
        let now = self.now();
        let id = Uuid::new_v4();
        let too_many = || -> SignalsError {
            ServiceError::Conflict {
                message: format!("a receiver has at most {MAX_STREAMS} streams"),
            }
            .into()
        };
        {
            let mut reader = self.reader().await?;
            if streams_of(reader.as_mut(), caller).await? >= MAX_STREAMS {
                return Err(too_many());
            }
        }
        let push = match requested.delivery.flatten() {
            Some(target) => Some(self.stored_push(target)?),
            None => None,
        };
        let data = StreamData {
            stream_id: stream_id.clone(),
            client_id: caller.app_id.to_string(),
            service_principal: caller.service_principal,
            events_requested: requested.events_requested.unwrap_or_default(),
            subject_format: requested.subject_format.unwrap_or_default(),
            push,
            description: requested.description.flatten(),
            status: Status::Enabled,
            reason: None,
            added: Vec::new(),
            removed: Vec::new(),
        };
        let config = self.config_json(&data);
        // The stream starts at the trail's head as it is now: the change that
        // makes it is the last one it does not hear of. (Written before the
        // transaction, a counter being a write of its own; taken back when the
        // stream is not made.)
        let head = self.audit_head(caller.tenant).await?;
        self.store()
            .counter_advance(caller.tenant, &cursor_key(id), head, now)
            .await?;
        let made: SignalsResult<()> = async {
            let mut tx = self.write(&ctx).await?;
            if streams_of(tx.as_mut(), caller).await? >= MAX_STREAMS {
                return Err(too_many());
            }
            let record = codec::new_record(Kind::SignalStream, id, now, data.keys(), &data)?;
            tx.insert(caller.tenant, &record).await?;
            let event = EventDraft::new(AuditAction::SignalStreamCreate)
                .on(Kind::SignalStream, record.id, &stream_id)
                .details(json!({ "configuration": config }));
            self.commit(tx, &ctx, event).await?;
            Ok(())
        }
        .await;
        if made.is_err() {
            let _ = self
                .store()
                .counter_delete(caller.tenant, &cursor_key(id))
                .await;
        }
        made.map(|()| config)
    }

    /// `GET /ssf/streams`: one stream's configuration, or all the receiver's.
    pub async fn get_streams(
        &self,
        caller: &ReceiverCaller,
        stream_id: Option<&str>,
    ) -> SignalsResult<Value> {
        let mut reader = self.reader().await?;
        match stream_id {
            Some(id) => {
                let (_, data) = self.own_stream(reader.as_mut(), caller, id).await?;
                Ok(self.config_json(&data))
            }
            None => {
                let records = codec::list_all(
                    reader.as_mut(),
                    caller.tenant,
                    Kind::SignalStream,
                    Some(caller.app_id.to_string()),
                )
                .await?;
                let mut list = Vec::with_capacity(records.len());
                for record in records {
                    let data: StreamData = codec::data(&record)?;
                    list.push(self.config_json(&data));
                }
                Ok(Value::Array(list))
            }
        }
    }

    /// `PATCH` (`replace` false) or `PUT` (`replace` true) `/ssf/streams`.
    pub async fn update_stream(
        &self,
        caller: &ReceiverCaller,
        body: &Value,
        replace: bool,
    ) -> SignalsResult<Value> {
        Self::require_manage(caller)?;
        let stream_id = tessera_ssf::stream::stream_id(body)?;
        let ctx = caller.context();
        let mut tx = self.write(&ctx).await?;
        let (record, mut data) = self.own_stream(tx.as_mut(), caller, &stream_id).await?;
        let before = self.config_json(&data);
        tessera_ssf::stream::check_transmitter_fields(body, &before)?;
        let requested = tessera_ssf::stream::parse_request(
            body,
            Some(&self.poll_endpoint(&stream_id)),
            self.http_loopback(),
        )?;
        match requested.events_requested {
            Some(events) => data.events_requested = events,
            None if replace => data.events_requested = Vec::new(),
            None => {}
        }
        match requested.delivery {
            Some(Some(target)) => {
                // The header is kept when the receiver names the same endpoint
                // without one in a PATCH (it is never echoed, so it cannot
                // repeat it).
                let keep = data.push.as_ref().filter(|p| {
                    !replace
                        && p.endpoint_url == target.endpoint_url
                        && target.authorization_header.is_none()
                });
                data.push = Some(match keep {
                    Some(kept) => kept.clone(),
                    None => self.stored_push(target)?,
                });
            }
            Some(None) => data.push = None,
            None if replace => data.push = None,
            None => {}
        }
        match requested.description {
            Some(description) => data.description = description,
            None if replace => data.description = None,
            None => {}
        }
        match requested.subject_format {
            Some(format) => data.subject_format = format,
            None if replace => data.subject_format = SubjectFormat::IssSub,
            None => {}
        }
        let after = self.config_json(&data);
        let updated = codec::next_version(&record, self.now(), data.keys(), &data)?;
        tx.update(caller.tenant, &updated).await?;
        let event = EventDraft::new(AuditAction::SignalStreamUpdate)
            .on(Kind::SignalStream, record.id, &stream_id)
            .changes(tessera_directory::patch::changes(&before, &after));
        self.commit(tx, &ctx, event).await?;
        Ok(after)
    }

    /// `DELETE /ssf/streams?stream_id=`: the stream and its queue.
    pub async fn delete_stream(
        &self,
        caller: &ReceiverCaller,
        stream_id: &str,
    ) -> SignalsResult<()> {
        Self::require_manage(caller)?;
        let ctx = caller.context();
        let mut tx = self.write(&ctx).await?;
        let (record, data) = self.own_stream(tx.as_mut(), caller, stream_id).await?;
        tx.delete(
            caller.tenant,
            Kind::SignalStream,
            record.id,
            Some(record.version),
        )
        .await?;
        let event = EventDraft::new(AuditAction::SignalStreamDelete).on(
            Kind::SignalStream,
            record.id,
            &data.stream_id,
        );
        self.commit(tx, &ctx, event).await?;
        self.drop_queue(caller.tenant, record.id, true).await?;
        self.store()
            .session_delete(caller.tenant, &state_key(record.id))
            .await?;
        self.store()
            .counter_delete(caller.tenant, &cursor_key(record.id))
            .await?;
        Ok(())
    }

    /// Deletes a stream's queued SETs (SSF's own ones too when `all`); how
    /// many.
    async fn drop_queue(&self, tenant: TenantId, stream: Uuid, all: bool) -> ServiceResult<u64> {
        let prefix = queue_prefix(stream);
        let mut after: Option<String> = None;
        let mut dropped = 0;
        loop {
            let rows = self
                .store()
                .sessions_by_prefix(tenant, &prefix, after.as_deref(), 1000)
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            for row in &rows {
                let control = serde_json::from_str::<QueuedSet>(&row.data).is_ok_and(|q| q.control);
                if all || !control {
                    self.store().session_delete(tenant, &row.id).await?;
                    dropped += 1;
                }
            }
        }
        Ok(dropped)
    }

    /// `GET /ssf/status?stream_id=`.
    pub async fn get_status(
        &self,
        caller: &ReceiverCaller,
        stream_id: &str,
    ) -> SignalsResult<Value> {
        let mut reader = self.reader().await?;
        let (_, data) = self.own_stream(reader.as_mut(), caller, stream_id).await?;
        Ok(status_json(&data))
    }

    /// `POST /ssf/status`: enables, pauses or disables the stream, and tells
    /// it so with a stream-updated event (SSF's own events go out whatever
    /// the status). Disabling drops what waited, and the stream starts again
    /// from the changes made once it is enabled.
    pub async fn set_status(&self, caller: &ReceiverCaller, body: &Value) -> SignalsResult<Value> {
        Self::require_manage(caller)?;
        let stream_id = tessera_ssf::stream::stream_id(body)?;
        let (status, reason) = tessera_ssf::stream::parse_status(body)?;
        let ctx = caller.context();
        let mut tx = self.write(&ctx).await?;
        let (record, mut data) = self.own_stream(tx.as_mut(), caller, &stream_id).await?;
        if data.status == status && data.reason == reason {
            return Ok(status_json(&data));
        }
        let before = data.status;
        data.status = status;
        data.reason = reason.clone();
        let updated = codec::next_version(&record, self.now(), data.keys(), &data)?;
        tx.update(caller.tenant, &updated).await?;
        let event = EventDraft::new(AuditAction::SignalStreamUpdate)
            .on(Kind::SignalStream, record.id, &stream_id)
            .changes(tessera_directory::patch::changes(
                &json!({ "status": before.name() }),
                &json!({ "status": status.name() }),
            ))
            .details(json!({ "reason": reason }));
        self.commit(tx, &ctx, event).await?;
        if status == Status::Disabled || before == Status::Disabled {
            self.drop_queue(caller.tenant, record.id, false).await?;
            let head = self.audit_head(caller.tenant).await?;
            self.store()
                .counter_advance(caller.tenant, &cursor_key(record.id), head, self.now())
                .await?;
        }
        let mut members = serde_json::Map::new();
        members.insert("status".into(), Value::from(status.name()));
        if let Some(reason) = &reason {
            members.insert("reason".into(), Value::from(reason.as_str()));
        }
        self.ready_to_sign(caller.tenant).await?;
        self.queue_control(
            caller.tenant,
            record.id,
            &data,
            EventType::StreamUpdated,
            members,
        )
        .await?;
        Ok(status_json(&data))
    }

    /// `POST /ssf/subjects:add` (`add`) and `/ssf/subjects:remove`. The answer
    /// is the same whether or not the subject is a user the receiver may hear
    /// of (it learns nothing of who exists).
    pub async fn change_subject(
        &self,
        caller: &ReceiverCaller,
        body: &Value,
        add: bool,
    ) -> SignalsResult<()> {
        Self::require_manage(caller)?;
        let stream_id = tessera_ssf::stream::stream_id(body)?;
        let subject = body
            .get("subject")
            .ok_or_else(|| SsfError::invalid("`subject` is required"))?;
        let subject = SubjectId::parse(subject)?;
        let ctx = caller.context();
        let mut tx = self.write(&ctx).await?;
        let (record, mut data) = self.own_stream(tx.as_mut(), caller, &stream_id).await?;
        let value = subject.to_json();
        let (into, out_of) = if add {
            (&mut data.added, &mut data.removed)
        } else {
            (&mut data.removed, &mut data.added)
        };
        let moved = out_of.len();
        out_of.retain(|v| v != &value);
        let mut changed = moved != out_of.len();
        if !into.contains(&value) {
            if into.len() >= MAX_SUBJECTS {
                return Err(ServiceError::Conflict {
                    message: format!("a stream lists at most {MAX_SUBJECTS} subjects"),
                }
                .into());
            }
            into.push(value.clone());
            changed = true;
        }
        if !changed {
            return Ok(());
        }
        let updated = codec::next_version(&record, self.now(), data.keys(), &data)?;
        tx.update(caller.tenant, &updated).await?;
        let event = EventDraft::new(AuditAction::SignalStreamUpdate)
            .on(Kind::SignalStream, record.id, &stream_id)
            .details(json!({ if add { "subjectAdded" } else { "subjectRemoved" }: value }));
        self.commit(tx, &ctx, event).await?;
        Ok(())
    }

    /// `POST /ssf/verify`: queues a verification event echoing `state`; at
    /// most one every [`MIN_VERIFICATION_SECONDS`].
    pub async fn verify(&self, caller: &ReceiverCaller, body: &Value) -> SignalsResult<()> {
        Self::require_manage(caller)?;
        let stream_id = tessera_ssf::stream::stream_id(body)?;
        let state = tessera_ssf::stream::verification_state(body)?;
        let (record, data) = {
            let mut reader = self.reader().await?;
            self.own_stream(reader.as_mut(), caller, &stream_id).await?
        };
        self.queue_verification(caller.tenant, &record, &data, state, true)
            .await
    }

    /// Queues a verification event on a stream (`limited`: no sooner than
    /// [`MIN_VERIFICATION_SECONDS`] after the last).
    async fn queue_verification(
        &self,
        tenant: TenantId,
        record: &Record,
        data: &StreamData,
        state: Option<String>,
        limited: bool,
    ) -> SignalsResult<()> {
        let now = self.now();
        let (_, delivery) = self.delivery_state(tenant, record.id).await?;
        if let Some(last) = delivery.last_verification {
            let wait = last
                .plus_seconds(i64::from(MIN_VERIFICATION_SECONDS))
                .unix_seconds()
                - now.unix_seconds();
            if wait > 0 && limited {
                return Err(SignalsError::TooSoon {
                    retry_after: u32::try_from(wait).unwrap_or(MIN_VERIFICATION_SECONDS),
                });
            }
        }
        self.change_delivery_state(tenant, record.id, |state| {
            state.last_verification = Some(now);
        })
        .await?;
        let mut members = serde_json::Map::new();
        if let Some(state) = state {
            members.insert("state".into(), Value::from(state));
        }
        self.ready_to_sign(tenant).await?;
        self.queue_control(tenant, record.id, data, EventType::Verification, members)
            .await?;
        Ok(())
    }

    /// Queues one of SSF's own events (verification, stream-updated) about
    /// the stream itself, after what is queued now.
    async fn queue_control(
        &self,
        tenant: TenantId,
        stream: Uuid,
        data: &StreamData,
        event: EventType,
        members: serde_json::Map<String, Value>,
    ) -> ServiceResult<()> {
        let cursor = self
            .store()
            .counter_get(tenant, &cursor_key(stream))
            .await?
            .map_or(0, |c| c.value);
        let place = format!("{cursor:020}:z{:020}", self.now().unix_micros());
        let subject = SubjectId::Opaque(data.stream_id.clone());
        self.queue(
            tenant,
            stream,
            data,
            &place,
            (event, &subject, &members),
            None,
            true,
        )
        .await
    }

    /// A stream's delivery state (and its row, to change it).
    async fn delivery_state(
        &self,
        tenant: TenantId,
        stream: Uuid,
    ) -> ServiceResult<(Option<tessera_store::SessionRow>, DeliveryState)> {
        self.state_row(tenant, &state_key(stream)).await
    }

    /// Changes a stream's delivery state.
    async fn change_delivery_state(
        &self,
        tenant: TenantId,
        stream: Uuid,
        change: impl Fn(&mut DeliveryState),
    ) -> ServiceResult<()> {
        self.change_state_row(tenant, &state_key(stream), change)
            .await
    }

    /// State kept in a session-store row as JSON (its default when absent).
    async fn state_row<T: Default + serde::de::DeserializeOwned>(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> ServiceResult<(Option<tessera_store::SessionRow>, T)> {
        let row = self.store().session_get(tenant, key).await?;
        let state = row
            .as_ref()
            .and_then(|r| serde_json::from_str(&r.data).ok())
            .unwrap_or_default();
        Ok((row, state))
    }

    /// Changes state kept in a session-store row (again, up to twice, when
    /// another node wrote it meanwhile).
    async fn change_state_row<T: Default + Serialize + serde::de::DeserializeOwned>(
        &self,
        tenant: TenantId,
        key: &str,
        change: impl Fn(&mut T),
    ) -> ServiceResult<()> {
        for attempt in 0..3 {
            let (row, mut state) = self.state_row::<T>(tenant, key).await?;
            change(&mut state);
            let data =
                serde_json::to_string(&state).map_err(|e| ServiceError::Internal(e.to_string()))?;
            let now = self.now();
            let result = match row {
                Some(mut row) => {
                    row.data = data;
                    row.version += 1;
                    row.last_seen = now;
                    row.expires = now.plus_seconds(STATE_SECONDS);
                    self.store().session_update(tenant, &row).await
                }
                None => {
                    let row = tessera_store::SessionRow::transient(
                        key.to_string(),
                        now,
                        STATE_SECONDS,
                        data,
                    );
                    self.store().session_insert(tenant, &row).await
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(
                    tessera_store::StoreError::VersionConflict { .. }
                    | tessera_store::StoreError::Duplicate { .. },
                ) if attempt < 2 => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    // ---- administrators --------------------------------------------------------

    async fn view(
        &self,
        tenant: TenantId,
        record: &Record,
        head: i64,
    ) -> ServiceResult<StreamView> {
        let data: StreamData = codec::data(record)?;
        let (_, state) = self.delivery_state(tenant, record.id).await?;
        let cursor = self
            .store()
            .counter_get(tenant, &cursor_key(record.id))
            .await?
            .map_or(0, |c| c.value);
        let queued = self
            .store()
            .sessions_by_prefix(tenant, &queue_prefix(record.id), None, 5000)
            .await?
            .len() as u64;
        Ok(StreamView {
            id: record.id,
            stream_id: data.stream_id.clone(),
            client_id: data.client_id.clone(),
            delivery: if data.push.is_some() { "push" } else { "poll" }.to_string(),
            endpoint_url: data.push.as_ref().map(|p| p.endpoint_url.clone()),
            events_requested: data.events_requested.clone(),
            events_delivered: tessera_ssf::stream::delivered(&data.events_requested)
                .into_iter()
                .map(EventType::uri)
                .collect(),
            status: data.status.name().to_string(),
            reason: data.reason.clone(),
            description: data.description.clone(),
            queued,
            lag: (head - cursor).max(0),
            delivered: state.delivered,
            dropped: state.dropped,
            last_delivered_date_time: state.last_delivered_at,
            last_error: state.last_error,
            last_error_date_time: state.last_error_at,
            last_verification_date_time: state.last_verification,
            created_date_time: record.created,
        })
    }

    /// Every stream the tenant transmits on, with its state (for a caller who
    /// may read the tenant's policies).
    pub async fn list_streams(&self, ctx: &Context) -> ServiceResult<Vec<StreamView>> {
        self.require(
            ctx,
            tessera_directory::roles::action::POLICIES_READ,
            &tessera_directory::authz::Target::Tenant,
        )?;
        let head = self.audit_head(ctx.tenant).await?;
        let records = {
            let mut reader = self.reader().await?;
            codec::list_all(reader.as_mut(), ctx.tenant, Kind::SignalStream, None).await?
        };
        let mut views = Vec::with_capacity(records.len());
        for record in records {
            views.push(self.view(ctx.tenant, &record, head).await?);
        }
        Ok(views)
    }

    /// A user's revocation timeline: the changes that ended or changed their
    /// access (sessions revoked, disabled, password or methods changed, risk
    /// high, compromised), newest first, from the audit trail (for a caller
    /// who may read it).
    pub async fn revocation_timeline(
        &self,
        ctx: &Context,
        user: Uuid,
    ) -> ServiceResult<Vec<TimelineEntry>> {
        self.require(
            ctx,
            tessera_directory::roles::action::AUDIT_LOGS_READ,
            &tessera_directory::authz::Target::Tenant,
        )?;
        let rows = self
            .store()
            .audit_query(
                ctx.tenant,
                &tessera_store::AuditQuery {
                    target_id: Some(user.to_string()),
                    limit: 500,
                    ..Default::default()
                },
            )
            .await?;
        let mut entries = Vec::new();
        for row in rows {
            let Ok(event) = serde_json::from_str::<tessera_directory::audit::AuditEvent>(&row.body)
            else {
                continue;
            };
            for signal in tessera_ssf::derive::signals(&event) {
                // RISC's sessions-revoked repeats CAEP's session-revoked.
                if signal.event == EventType::SessionsRevoked {
                    continue;
                }
                let uri = signal.event.uri();
                entries.push(TimelineEntry {
                    date_time: signal.at,
                    event: uri.rsplit('/').next().unwrap_or(&uri).to_string(),
                    reason: signal.reason.clone(),
                    initiated_by: signal.initiating_entity.to_string(),
                    actor: event.actor.display_name.clone(),
                    correlation_id: event.correlation_id.clone(),
                });
            }
        }
        Ok(entries)
    }

    /// An administrator's "send verification" on a stream (by its stream
    /// id): a verification event without `state`.
    pub async fn send_verification(&self, ctx: &Context, stream_id: &str) -> ServiceResult<()> {
        self.require(
            ctx,
            tessera_directory::roles::action::POLICIES_MANAGE,
            &tessera_directory::authz::Target::Tenant,
        )?;
        let (record, data) = {
            let mut reader = self.reader().await?;
            let record = reader
                .get_by_key1(ctx.tenant, Kind::SignalStream, stream_id)
                .await?
                .ok_or_else(|| ServiceError::NotFound {
                    kind: "stream",
                    id: stream_id.chars().take(64).collect(),
                })?;
            let data: StreamData = codec::data(&record)?;
            (record, data)
        };
        match self
            .queue_verification(ctx.tenant, &record, &data, None, false)
            .await
        {
            Ok(()) => Ok(()),
            Err(SignalsError::Service(error)) => Err(error),
            Err(SignalsError::Protocol(error)) => Err(ServiceError::invalid("", error.description)),
            Err(SignalsError::TooSoon { .. }) => Err(ServiceError::Conflict {
                message: "a verification was sent moments ago".into(),
            }),
        }
    }
}

/// How many streams a receiver has.
async fn streams_of(
    reader: &mut dyn tessera_store::Reader,
    caller: &ReceiverCaller,
) -> ServiceResult<usize> {
    Ok(codec::list_all(
        reader,
        caller.tenant,
        Kind::SignalStream,
        Some(caller.app_id.to_string()),
    )
    .await?
    .len())
}

/// What a workload's token for the SSF API says, checked: the tenant, the
/// roles, the application and its enabled service principal, and the
/// signals settings.
struct WorkloadToken {
    tenant: TenantId,
    roles: Vec<String>,
    app_id: AppId,
    principal: Uuid,
    display_name: String,
    settings: SignalsSettings,
}

impl Signals {
    async fn workload_token(
        &self,
        presented: &crate::oauth::Presented<'_>,
    ) -> ServiceResult<WorkloadToken> {
        let (tenant, claims) = self.oidc.verified_claims(&self.issuer(), presented).await?;
        let roles: Vec<String> = claims
            .get("roles")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut reader = self.reader().await?;
        let crate::oidc::TokenWorkload {
            principal,
            app_id,
            data,
        } = crate::oidc::token_workload(reader.as_mut(), tenant, &claims, SIGNALS_API_ID).await?;
        let settings: SignalsSettings =
            crate::kernel::tenant_settings::read_setting(reader.as_mut(), tenant).await?;
        Ok(WorkloadToken {
            tenant,
            roles,
            app_id,
            principal,
            display_name: data.spec.display_name.unwrap_or_else(|| app_id.to_string()),
            settings,
        })
    }
}

fn status_json(data: &StreamData) -> Value {
    let mut status = json!({ "stream_id": data.stream_id, "status": data.status.name() });
    if let Some(reason) = &data.reason {
        status["reason"] = Value::from(reason.as_str());
    }
    status
}

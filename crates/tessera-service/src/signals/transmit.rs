//! The transmitter's work: reading the audit trail into each stream's queue
//! (`fan_out`), pushing queued SETs in order (RFC 8935) with retries, and
//! answering polls (RFC 8936).
//!
//! - A stream's fan-out queues the SETs its audit events mean, each at a
//!   place named by the event's number and the signal's index, then moves
//!   its cursor (a counter that only grows): a round run twice, or on two
//!   nodes at once, finds the places taken and queues nothing twice; a round
//!   cut short is done again from the cursor. The queue and the delivery
//!   state are session-store rows, not audited records: delivering writes
//!   nothing to the audit trail it reads.
//! - A push goes out in queue order and stops at the first failure; the
//!   stream waits (2 s doubling, up to 5 minutes) before the next try. A SET
//!   the receiver refuses as invalid (400) is dropped and counted: sending it
//!   again could not succeed, and it must not hold up the rest.
//! - A paused stream holds its SETs (SSF's own events still go); a disabled
//!   one queues nothing.

use std::collections::HashMap;

use serde_json::{Map, Value};
use tessera_core::TenantId;
use tessera_directory::audit::AuditEvent;
use tessera_directory::model::{ApplicationData, DeviceSpec, UserSpec};
use tessera_oauth::keys::Algorithm;
use tessera_ssf::derive::{About, Signal};
use tessera_ssf::events::EventType;
use tessera_ssf::poll::PollRequest;
use tessera_ssf::set::Outgoing;
use tessera_ssf::stream::{Status, SubjectFormat};
use tessera_ssf::subject::SubjectId;
use tessera_store::{Kind, Reader, Record, SessionRow};
use uuid::Uuid;

use super::{
    PUSH_SECRET_CONTEXT, QueuedSet, ROW_SECONDS, ReceiverCaller, Signals, SignalsResult,
    StreamData, cursor_key, queue_prefix,
};
use crate::codec;
use crate::error::{ServiceError, ServiceResult};

/// Audit events read for one stream in one round.
const AUDIT_PAGE: u32 = 500;
/// Most SETs a stream holds; past it the oldest go (counted as dropped).
const MAX_QUEUE: usize = 5000;
/// How many of the oldest go at once when the queue is full.
const TRIM: usize = 1000;
/// Most SETs pushed to one stream in one round.
const PUSH_PER_ROUND: usize = 50;
/// How long one round may spend pushing to one stream.
const PUSH_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);
/// How many streams one round pushes to at once.
const PUSH_CONCURRENCY: usize = 4;
/// The longest wait between two pushes of a failing stream (seconds).
const MAX_BACKOFF_SECONDS: i64 = 300;
/// How long a poll waits for a SET when the receiver does not ask to be
/// answered at once.
const LONG_POLL: std::time::Duration = std::time::Duration::from_secs(10);

/// What a round of fan-out knows of users and the receiver's application.
#[derive(Default)]
struct Seen {
    users: HashMap<Uuid, Option<UserSpec>>,
    admitted: HashMap<Uuid, bool>,
}

impl Signals {
    /// Queues one SET on a stream at `place` (a place already taken keeps
    /// what it holds).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn queue(
        &self,
        tenant: TenantId,
        stream: Uuid,
        data: &StreamData,
        place: &str,
        what: (EventType, &SubjectId, &Map<String, Value>),
        txn: Option<&str>,
        control: bool,
    ) -> ServiceResult<()> {
        let (event, subject, members) = what;
        // Unique, and in queue order: a poll answer (a JSON object keyed by
        // jti) keeps the order whatever the JSON library does with keys.
        let jti = format!("{}-{}", data.stream_id, place.replace(':', "-"));
        let now = self.now();
        let issuer = self.issuer();
        let claims = Outgoing {
            iss: &issuer,
            aud: &data.client_id,
            jti: &jti,
            iat: now,
            txn,
            sub_id: subject,
            event,
            members,
        }
        .claims();
        let set = self.oidc.key_set(tenant).await?;
        let key = set.signing.get(&Algorithm::RS256).ok_or_else(|| {
            ServiceError::Unavailable("the tenant's RS256 key is not made yet".into())
        })?;
        let token = tessera_oauth::jws::sign(key, tessera_ssf::set::TYP, &claims)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let queued = QueuedSet {
            jti,
            token,
            event: event.uri(),
            control,
        };
        let row = SessionRow::transient(
            format!("{}{place}", queue_prefix(stream)),
            now,
            ROW_SECONDS,
            serde_json::to_string(&queued).map_err(|e| ServiceError::Internal(e.to_string()))?,
        );
        match self.store().session_insert(tenant, &row).await {
            Ok(()) | Err(tessera_store::StoreError::Duplicate { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Makes sure the tenant has an RS256 key before SETs are signed with it.
    pub(super) async fn ready_to_sign(&self, tenant: TenantId) -> ServiceResult<()> {
        self.oidc
            .signing_key_set(tenant, Algorithm::RS256)
            .await
            .map(|_| ())
    }

    /// One round of the `signals` job for a tenant: each stream's new audit
    /// events into its queue, then each push stream's queue to its receiver,
    /// then each poll transmitter Tessera receives from. A stream's failure
    /// is logged and kept on the stream; the others go on.
    pub async fn signals_round(&self, tenant: TenantId) -> ServiceResult<()> {
        if self.default_tenant().await? != Some(tenant) {
            return Ok(());
        }
        let streams = {
            let mut reader = self.reader().await?;
            codec::list_all(reader.as_mut(), tenant, Kind::SignalStream, None).await?
        };
        if !streams.is_empty() {
            self.ready_to_sign(tenant).await?;
        }
        use futures::StreamExt as _;
        futures::stream::iter(streams)
            .for_each_concurrent(PUSH_CONCURRENCY, |stream| async move {
                if let Err(error) = self.fan_out(tenant, &stream).await {
                    tracing::warn!(%tenant, stream = %stream.id, %error, "cannot queue a stream's signals");
                }
                if let Err(error) = self.push(tenant, &stream).await {
                    tracing::warn!(%tenant, stream = %stream.id, %error, "cannot push a stream's signals");
                }
            })
            .await;
        self.receive_round(tenant).await
    }

    /// Reads the audit trail past a stream's cursor into its queue; how many
    /// SETs it queued.
    pub(super) async fn fan_out(&self, tenant: TenantId, record: &Record) -> ServiceResult<usize> {
        let data: StreamData = codec::data(record)?;
        let cursor = self
            .store()
            .counter_get(tenant, &cursor_key(record.id))
            .await?
            .map_or(0, |c| c.value);
        let rows = self.store().audit_scan(tenant, cursor, AUDIT_PAGE).await?;
        let Some(last) = rows.last().map(|r| r.seq) else {
            return Ok(0);
        };
        let mut queued = 0;
        if data.status != Status::Disabled {
            let wanted = tessera_ssf::stream::delivered(&data.events_requested);
            let mut reader = self.reader().await?;
            let app = reader
                .get_by_key1(tenant, Kind::Application, &data.client_id)
                .await?
                .map(|r| codec::data::<ApplicationData>(&r))
                .transpose()?;
            let mut seen = Seen::default();
            for row in &rows {
                let Ok(event) = serde_json::from_str::<AuditEvent>(&row.body) else {
                    continue;
                };
                for (index, signal) in tessera_ssf::derive::signals(&event).into_iter().enumerate()
                {
                    if !wanted.contains(&signal.event)
                        || signal
                            .only_service_principal
                            .is_some_and(|sp| sp != data.service_principal)
                    {
                        continue;
                    }
                    let Some(subject) = self
                        .subject_for(
                            reader.as_mut(),
                            tenant,
                            &data,
                            app.as_ref(),
                            &signal,
                            &mut seen,
                        )
                        .await?
                    else {
                        continue;
                    };
                    let members = event_members(&signal);
                    let txn = event.id.simple().to_string();
                    let place = format!("{:020}:{index:02}", row.seq);
                    self.queue(
                        tenant,
                        record.id,
                        &data,
                        &place,
                        (signal.event, &subject, &members),
                        Some(&txn),
                        false,
                    )
                    .await?;
                    queued += 1;
                }
            }
        }
        self.store()
            .counter_advance(tenant, &cursor_key(record.id), last, self.now())
            .await?;
        if queued > 0 {
            self.trim_queue(tenant, record.id).await?;
        }
        Ok(queued)
    }

    /// Drops the oldest SETs of a stream's queue while it holds
    /// [`MAX_QUEUE`] or more (counted as dropped).
    async fn trim_queue(&self, tenant: TenantId, stream: Uuid) -> ServiceResult<()> {
        let mut dropped = 0u64;
        loop {
            let rows = self
                .store()
                .sessions_by_prefix(tenant, &queue_prefix(stream), None, MAX_QUEUE as u32)
                .await?;
            if rows.len() < MAX_QUEUE {
                break;
            }
            for old in rows.iter().take(TRIM) {
                self.store().session_delete(tenant, &old.id).await?;
                dropped += 1;
            }
        }
        if dropped == 0 {
            return Ok(());
        }
        self.change_delivery_state(tenant, stream, |state| {
            state.dropped += dropped;
        })
        .await
    }

    /// Whether a user may be told of to this stream's receiver: not removed
    /// from the stream, and added to it, or admitted by its application.
    async fn user_admitted(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        data: &StreamData,
        app: Option<&ApplicationData>,
        user: Uuid,
        seen: &mut Seen,
    ) -> ServiceResult<bool> {
        if let Some(known) = seen.admitted.get(&user) {
            return Ok(*known);
        }
        load_user(reader, tenant, user, seen).await?;
        let names = self.user_names(user, seen.users.get(&user).and_then(Option::as_ref));
        let matches = |list: &[SubjectId]| {
            list.iter()
                .any(|listed| names.iter().any(|name| listed.matches(name)))
        };
        // A subject the receiver added only undoes its removal: what it may
        // hear of is its application's to say, never its own.
        let admitted = if matches(&data.removed_subjects()) {
            false
        } else {
            match app {
                Some(app) => {
                    let now = self.now();
                    match crate::directory::app_roles::user_assignment(
                        reader, tenant, app, user, now,
                    )
                    .await?
                    {
                        Some(assignment) if assignment.required => !assignment.roles.is_empty(),
                        Some(assignment) => {
                            !assignment.roles.is_empty()
                                || !crate::directory::consent::granted_scopes(
                                    reader, tenant, app.app_id, user,
                                )
                                .await?
                                .is_empty()
                        }
                        None => false,
                    }
                }
                None => false,
            }
        };
        seen.admitted.insert(user, admitted);
        Ok(admitted)
    }

    /// How a stream names a user (`None`: by email, and the user has none
    /// known any more).
    fn user_subject(&self, data: &StreamData, user: Uuid, seen: &Seen) -> Option<SubjectId> {
        match data.subject_format {
            SubjectFormat::IssSub => Some(tessera_ssf::subject::user(&self.issuer(), user)),
            SubjectFormat::Email => seen
                .users
                .get(&user)
                .and_then(Option::as_ref)
                .map(|spec| SubjectId::Email(spec.user_principal_name.clone())),
        }
    }

    /// The identifiers a user goes by: `iss_sub`, and their addresses.
    fn user_names(&self, user: Uuid, spec: Option<&UserSpec>) -> Vec<SubjectId> {
        let mut names = vec![tessera_ssf::subject::user(&self.issuer(), user)];
        if let Some(spec) = spec {
            names.push(SubjectId::Email(spec.user_principal_name.clone()));
            if let Some(mail) = spec.mail.as_ref().filter(|m| !m.is_empty()) {
                names.push(SubjectId::Email(mail.clone()));
            }
        }
        names
    }

    /// The subject a stream names a signal's subject by, when its receiver
    /// may hear of it.
    async fn subject_for(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        data: &StreamData,
        app: Option<&ApplicationData>,
        signal: &Signal,
        seen: &mut Seen,
    ) -> ServiceResult<Option<SubjectId>> {
        match &signal.about {
            About::User(user) | About::UserAddress { user, .. } => {
                load_user(reader, tenant, *user, seen).await?;
                let admitted = signal.only_service_principal.is_some()
                    || self
                        .user_admitted(reader, tenant, data, app, *user, seen)
                        .await?;
                if !admitted {
                    return Ok(None);
                }
                Ok(match &signal.about {
                    About::UserAddress { email, .. } => Some(SubjectId::Email(email.clone())),
                    _ => self.user_subject(data, *user, seen),
                })
            }
            About::Device(device) => {
                let mut members = std::collections::BTreeMap::new();
                members.insert("device".to_string(), SubjectId::Opaque(device.to_string()));
                let complex = SubjectId::Complex(members.clone());
                if data.removed_subjects().iter().any(|r| r.matches(&complex)) {
                    return Ok(None);
                }
                let owner = reader
                    .get(tenant, Kind::Device, *device)
                    .await?
                    .map(|r| codec::data::<DeviceSpec>(&r))
                    .transpose()?
                    .and_then(|spec| spec.owner_id);
                let owner_admitted = match owner {
                    Some(owner) => {
                        self.user_admitted(reader, tenant, data, app, owner, seen)
                            .await?
                    }
                    None => false,
                };
                // A device is told of to the applications of its owner.
                let Some(owner) = owner.filter(|_| owner_admitted) else {
                    return Ok(None);
                };
                if let Some(named) = self.user_subject(data, owner, seen) {
                    members.insert("user".to_string(), named);
                }
                Ok(Some(SubjectId::Complex(members)))
            }
        }
    }

    /// The SETs waiting on a stream, in order (at most `limit`).
    async fn queued(
        &self,
        tenant: TenantId,
        stream: Uuid,
        limit: u32,
    ) -> ServiceResult<Vec<(SessionRow, QueuedSet)>> {
        Ok(self
            .store()
            .sessions_by_prefix(tenant, &queue_prefix(stream), None, limit)
            .await?
            .into_iter()
            .filter_map(|row| {
                let set = serde_json::from_str::<QueuedSet>(&row.data).ok()?;
                Some((row, set))
            })
            .collect())
    }

    /// Pushes a push stream's queued SETs, in order, until one fails.
    pub(super) async fn push(&self, tenant: TenantId, record: &Record) -> ServiceResult<()> {
        let data: StreamData = codec::data(record)?;
        let Some(push) = data.push.clone() else {
            return Ok(());
        };
        let (_, state) = self.delivery_state(tenant, record.id).await?;
        if state.retry_at.is_some_and(|at| at > self.now()) {
            return Ok(());
        }
        let sendable: Vec<(SessionRow, QueuedSet)> = self
            .queued(
                tenant,
                record.id,
                u32::try_from(PUSH_PER_ROUND * 4).unwrap_or(200),
            )
            .await?
            .into_iter()
            .filter(|(_, q)| data.status == Status::Enabled || q.control)
            .take(PUSH_PER_ROUND)
            .collect();
        if sendable.is_empty() {
            return Ok(());
        }
        let authorization = push
            .authorization_sealed
            .as_ref()
            .map(|sealed| {
                self.settings
                    .sealing_key
                    .open(sealed, PUSH_SECRET_CONTEXT)
                    .map_err(|_| ServiceError::Internal("a push header cannot be opened".into()))
                    .and_then(|bytes| {
                        String::from_utf8(bytes)
                            .map_err(|_| ServiceError::Internal("a push header is not text".into()))
                    })
            })
            .transpose()?;
        let mut headers = vec![
            (
                "content-type".to_string(),
                "application/secevent+jwt".to_string(),
            ),
            ("accept".to_string(), "application/json".to_string()),
        ];
        if let Some(authorization) = authorization {
            headers.push(("authorization".to_string(), authorization));
        }
        let transport = self.transport()?.clone();
        let started = std::time::Instant::now();
        let mut delivered = 0u64;
        let mut refused = 0u64;
        let mut failure: Option<String> = None;
        let mut refusal: Option<String> = None;
        for (row, set) in sendable {
            if started.elapsed() > PUSH_BUDGET {
                // The rest waits for the next round: a slow receiver does
                // not hold up the others.
                break;
            }
            let answer = transport
                .send(
                    "POST",
                    &push.endpoint_url,
                    &headers,
                    Some(set.token.clone().into_bytes()),
                )
                .await;
            match answer {
                Ok((status, _, _)) if (200..300).contains(&status) => {
                    self.store().session_delete(tenant, &row.id).await?;
                    delivered += 1;
                }
                Ok((400, _, body)) if refuses_the_set(&body) => {
                    // Refused as invalid: it would be refused again.
                    self.store().session_delete(tenant, &row.id).await?;
                    refused += 1;
                    refusal = Some(format!(
                        "the receiver refused SET {}: {}",
                        set.jti,
                        receiver_error(&body)
                    ));
                }
                Ok((status, _, body)) => {
                    failure = Some(format!("HTTP {status}: {}", receiver_error(&body)));
                    break;
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let now = self.now();
        self.change_delivery_state(tenant, record.id, |state| {
            state.delivered += delivered;
            state.dropped += refused;
            if delivered > 0 {
                state.last_delivered_at = Some(now);
            }
            if let Some(why) = refusal.as_ref().or(failure.as_ref()) {
                state.last_error = Some(why.chars().take(300).collect());
                state.last_error_at = Some(now);
            }
            match &failure {
                Some(_) => {
                    state.attempts = state.attempts.saturating_add(1);
                    let wait = (1_i64 << state.attempts.min(9)).min(MAX_BACKOFF_SECONDS);
                    state.retry_at = Some(now.plus_seconds(wait));
                }
                None => {
                    state.attempts = 0;
                    state.retry_at = None;
                }
            }
        })
        .await
    }

    /// `POST /ssf/poll/{stream_id}` (RFC 8936): takes the receiver's
    /// acknowledgements and errors, then answers with the SETs waiting, in
    /// order (waiting up to ten seconds for one unless asked not to).
    pub async fn poll(
        &self,
        caller: &ReceiverCaller,
        stream_id: &str,
        body: &Value,
    ) -> SignalsResult<Value> {
        let request: PollRequest = tessera_ssf::poll::parse_request(body)?;
        if !caller.manage && (!request.ack.is_empty() || !request.set_errs.is_empty()) {
            return Err(ServiceError::Forbidden {
                reason: "acknowledging needs ssf.manage".into(),
            }
            .into());
        }
        let (record, data) = {
            let mut reader = self.reader().await?;
            self.own_stream(reader.as_mut(), caller, stream_id).await?
        };
        if data.push.is_some() {
            return Err(tessera_ssf::SsfError::invalid("the stream is a push stream").into());
        }
        self.acknowledge(caller.tenant, record.id, &data.stream_id, &request)
            .await?;
        if request.max_events == 0 {
            return Ok(tessera_ssf::poll::response(&[], false));
        }
        // One long poll per stream at a time on this node; another is answered
        // at once. The job queues (one node a round); a poll only reads.
        let waiting = self.polling(record.id);
        let return_immediately = request.return_immediately || waiting.is_none();
        let waited_until = tokio::time::Instant::now() + LONG_POLL;
        loop {
            // The stream's status as it is now (it may change while waiting).
            let current = {
                let mut reader = self.reader().await?;
                match reader
                    .get(caller.tenant, Kind::SignalStream, record.id)
                    .await?
                {
                    Some(current) => current,
                    None => return Ok(tessera_ssf::poll::response(&[], false)),
                }
            };
            let status = codec::data::<StreamData>(&current)?.status;
            let limit = request.max_events as usize;
            let queued = self
                .queued(
                    caller.tenant,
                    record.id,
                    u32::try_from(limit * 4 + 1).unwrap_or(401),
                )
                .await?;
            let mut sets = Vec::new();
            let mut more = false;
            for (_, set) in queued {
                if status != Status::Enabled && !set.control {
                    continue;
                }
                if sets.len() == limit {
                    more = true;
                    break;
                }
                sets.push((set.jti, set.token));
            }
            if !sets.is_empty() || return_immediately || tokio::time::Instant::now() >= waited_until
            {
                return Ok(tessera_ssf::poll::response(&sets, more));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// Removes what a poll acknowledged or refused from the queue; a refusal
    /// is kept as the stream's last error.
    async fn acknowledge(
        &self,
        tenant: TenantId,
        stream: Uuid,
        stream_id: &str,
        request: &PollRequest,
    ) -> ServiceResult<()> {
        if request.ack.is_empty() && request.set_errs.is_empty() {
            return Ok(());
        }
        // A jti names its place in the queue (see `queue`): the row is found
        // without a walk, and only in this stream's queue.
        let own = format!("{stream_id}-");
        let mut delivered = 0u64;
        let mut refused = 0u64;
        for (jti, acked) in request
            .ack
            .iter()
            .map(|j| (j, true))
            .chain(request.set_errs.keys().map(|j| (j, false)))
        {
            let Some(place) = jti.strip_prefix(&own) else {
                continue;
            };
            let row = format!("{}{}", queue_prefix(stream), place.replacen('-', ":", 1));
            if self.store().session_delete(tenant, &row).await? {
                if acked {
                    delivered += 1;
                } else {
                    refused += 1;
                }
            }
        }
        let now = self.now();
        let refusal = request
            .set_errs
            .iter()
            .next()
            .map(|(jti, (err, description))| {
                format!("the receiver refused SET {jti}: {err} {description}")
            });
        self.change_delivery_state(tenant, stream, |state| {
            state.delivered += delivered;
            state.dropped += refused;
            if delivered > 0 {
                state.last_delivered_at = Some(now);
            }
            if let Some(refusal) = &refusal {
                state.last_error = Some(refusal.clone());
                state.last_error_at = Some(now);
            }
        })
        .await
    }
}

/// Reads a user into what the round has seen (once).
async fn load_user(
    reader: &mut dyn Reader,
    tenant: TenantId,
    user: Uuid,
    seen: &mut Seen,
) -> ServiceResult<()> {
    if let std::collections::hash_map::Entry::Vacant(slot) = seen.users.entry(user) {
        let spec = reader
            .get(tenant, Kind::User, user)
            .await?
            .map(|r| codec::data::<UserSpec>(&r))
            .transpose()?;
        slot.insert(spec);
    }
    Ok(())
}

/// The members of a signal's event: its own, and when and why.
fn event_members(signal: &Signal) -> Map<String, Value> {
    let mut members = signal.members.clone();
    if !matches!(
        signal.event,
        EventType::AccountDisabled
            | EventType::AccountEnabled
            | EventType::AccountPurged
            | EventType::IdentifierChanged
            | EventType::SessionsRevoked
    ) {
        members.insert(
            "event_timestamp".into(),
            Value::from(signal.at.unix_seconds()),
        );
        members.insert(
            "initiating_entity".into(),
            Value::from(signal.initiating_entity),
        );
        members.insert(
            "reason_admin".into(),
            serde_json::json!({ "en": signal.reason }),
        );
    }
    members
}

/// Whether a push's 400 says the SET itself is bad (sending it again could
/// not succeed), rather than the credential or the receiver.
fn refuses_the_set(body: &[u8]) -> bool {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    matches!(
        parsed
            .as_ref()
            .and_then(|v| v.get("err"))
            .and_then(Value::as_str),
        Some("invalid_request" | "invalid_key" | "invalid_issuer" | "invalid_audience")
    )
}

/// What a receiver's error answer says (RFC 8935 `err` and `description`),
/// bounded.
fn receiver_error(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let text = match parsed {
        Some(value) => format!(
            "{} {}",
            value.get("err").and_then(Value::as_str).unwrap_or(""),
            value
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
        ),
        None => String::new(),
    };
    text.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

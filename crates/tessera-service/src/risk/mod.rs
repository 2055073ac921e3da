//! Identity Protection (issue 17): detections from the sign-in stream, kept
//! beside the sign-in log (outside the audit chain's lock, so they never
//! queue the directory's writes), kept 90 days, and read through Graph's
//! `identityProtection/riskDetections`.
//!
//! The rules are `tessera_risk`'s; this context gathers the facts they need
//! (the operator's IP lists through the [`IpLists`] port, which the binary
//! fills from files it reloads when they change), records what they find, and
//! answers the API. Sign-in asks it for the real-time detections of each
//! sign-in before the entry is logged (`SignIn::append_log`).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::authz::Target;
use tessera_directory::roles::action;
use tessera_risk::{Detection, EventType, counters};
use tessera_store::{RiskDetectionQuery, RiskDetectionRow};
use uuid::Uuid;

use crate::Context;
use crate::codec::{LogPage, Page};
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::Kernel;

mod offline;
mod principals;
mod profile;
mod workloads;

pub(crate) use profile::Seen;
pub use profile::{GeoInfo, GeoLookup};
pub(crate) use workloads::WorkloadRequest;

pub use principals::{
    HistoryItem, PrincipalKind, PrincipalRisk, RiskHistoryView, RiskyFilter,
    RiskyServicePrincipalView, RiskyUserView,
};
pub use tessera_risk::RiskLevel;
pub(crate) use tessera_risk::aggregate::Remediation;
pub use tessera_risk::aggregate::{RiskDetail, RiskState as RiskyState};

/// The operator's address lists (anonymizers: Tor exits, VPN and hosting
/// ranges; known-malicious addresses): the label of the range holding an
/// address, if one does.
pub trait IpLists: Send + Sync {
    fn anonymous(&self, ip: IpAddr) -> Option<String>;
    fn malicious(&self, ip: IpAddr) -> Option<String>;
}

/// The Identity Protection context (see the module documentation).
pub struct Risk {
    k: Arc<Kernel>,
    lists: OnceLock<Arc<dyn IpLists>>,
    geo: OnceLock<Arc<dyn GeoLookup>>,
    workloads: principals::WorkloadRiskCache,
    watch: workloads::WorkloadWatch,
}

crate::kernel::on_kernel!(Risk);

/// A detection as Graph's `riskDetection` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RiskDetectionView {
    pub id: Uuid,
    pub risk_event_type: String,
    /// `low`, `medium` or `high`.
    pub risk_level: String,
    /// `atRisk` (what a detection is until its user's risk is remediated or
    /// dismissed).
    pub risk_state: String,
    /// `realtime` or `offline`.
    pub detection_timing_type: String,
    /// `signin`.
    pub activity: String,
    /// `tessera`.
    pub source: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub detected_date_time: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub activity_date_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    pub user_principal_name: String,
    /// The sign-in log entry it was found in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Uuid>,
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// The evidence (which list, which sign-ins, which properties).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub additional_info: Value,
}

/// A workload's detection as Graph's `servicePrincipalRiskDetection` shows
/// it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipalRiskDetectionView {
    pub id: Uuid,
    pub risk_event_type: String,
    /// `low`, `medium` or `high`.
    pub risk_level: String,
    /// `atRisk`.
    pub risk_state: String,
    /// `realtime` or `offline`.
    pub detection_timing_type: String,
    /// `servicePrincipal`.
    pub activity: String,
    /// `tessera`.
    pub source: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub detected_date_time: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub activity_date_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_principal_id: Option<Uuid>,
    pub service_principal_display_name: String,
    pub app_id: String,
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// The evidence (the secret's key id, the unfamiliar properties, the
    /// token).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub additional_info: Value,
}

/// Every `riskEventType` a detection may have.
pub const EVENT_TYPES: [&str; EventType::ALL.len()] = {
    let mut names = [""; EventType::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = EventType::ALL[i].name();
        i += 1;
    }
    names
};

/// The counters' key prefixes (the purge job drops them after a day).
pub const COUNTER_PREFIX: &str = "risk:";
/// Workloads' unusual sources, from their finding until they settle (the
/// purge job drops them after [`SOURCE_KEEP_SECONDS`]).
pub const SOURCE_PREFIX: &str = "risk-source:";
pub const SOURCE_KEEP_SECONDS: i64 = 7 * 86_400;
const BRUTE_FORCE: &str = "risk:bf:";
const SPRAY: &str = "risk:spray:";
const LEAKED: &str = "risk:leaked:";
/// A user's second-factor prompts not answered since the last that was.
const MFA_PROMPTS: &str = "risk:mfa:";
/// What the failures said of an account's sign-ins from a network, remembered
/// for the rest of the window: a new sign-in from there is as risky, though
/// the run that made it so has ended.
const FOUND: &str = "risk:found:";

fn rank(level: RiskLevel) -> i64 {
    match level {
        RiskLevel::None => 0,
        RiskLevel::Low => 1,
        RiskLevel::Medium => 2,
        RiskLevel::High => 3,
    }
}

fn of_rank(rank: i64) -> RiskLevel {
    match rank {
        1 => RiskLevel::Low,
        2 => RiskLevel::Medium,
        3 => RiskLevel::High,
        _ => RiskLevel::None,
    }
}

/// An account's failures from one address: a brute force is the sign-in from
/// where the failures came, so failing against someone's name from elsewhere
/// never makes their own sign-ins risky.
fn brute_force_key(user: Uuid, network: &str) -> String {
    format!("{BRUTE_FORCE}{user}|{network}")
}

/// How long detections are kept: as long as they count toward a user's risk.
pub const DETECTION_RETENTION_DAYS: i64 = tessera_risk::aggregate::DETECTION_DAYS;

/// What the detections API filters by.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectionFilter {
    pub user_id: Option<Uuid>,
    /// Workloads' detections: one service principal's.
    pub service_principal_id: Option<Uuid>,
    pub risk_event_type: Option<String>,
    pub risk_level: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// What a sign-in showed, for recording its detections.
pub(crate) struct SignInFacts<'a> {
    /// The sign-in log entry, when the detection belongs to one.
    pub sign_in: Option<Uuid>,
    pub at: Timestamp,
    pub user_id: Option<Uuid>,
    pub user_principal_name: &'a str,
    pub client_address: Option<&'a str>,
    pub correlation_id: &'a str,
}

impl<'a> SignInFacts<'a> {
    /// The facts of a sign-in log entry (its user, address and time).
    pub(crate) fn of(entry: &'a crate::sign_in::SignInEntry) -> SignInFacts<'a> {
        SignInFacts {
            sign_in: Some(entry.id),
            at: entry.created_date_time,
            user_id: entry.user_id,
            user_principal_name: &entry.user_principal_name,
            client_address: entry.client_address.as_deref(),
            correlation_id: &entry.correlation_id,
        }
    }
}

pub(crate) fn level_name(level: RiskLevel) -> &'static str {
    match level {
        RiskLevel::None => "none",
        RiskLevel::Low => "low",
        RiskLevel::Medium => "medium",
        RiskLevel::High => "high",
    }
}

impl Risk {
    pub(crate) fn new(k: Arc<Kernel>) -> Risk {
        Risk {
            k,
            lists: OnceLock::new(),
            geo: OnceLock::new(),
            workloads: principals::WorkloadRiskCache::default(),
            watch: workloads::WorkloadWatch::default(),
        }
    }

    /// Sets the operator's address lists (once, at start).
    pub fn set_ip_lists(&self, lists: Arc<dyn IpLists>) {
        if self.lists.set(lists).is_err() {
            tracing::warn!("the IP lists were set already; the first stay");
        }
    }

    /// The real-time detections a sign-in's address gives: an anonymizer
    /// (medium) or a known-malicious address (high).
    pub(crate) fn address_detections(&self, client_address: Option<&str>) -> Vec<Detection> {
        let (Some(lists), Some(ip)) = (
            self.lists.get(),
            client_address.and_then(|a| a.parse::<IpAddr>().ok()),
        ) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        if let Some(label) = lists.anonymous(ip) {
            found.push(Detection::new(
                EventType::AnonymizedIpAddress,
                RiskLevel::Medium,
                json!({"ipAddress": ip.to_string(), "list": "anonymous", "label": label}),
            ));
        }
        if let Some(label) = lists.malicious(ip) {
            found.push(Detection::new(
                EventType::MaliciousIpAddress,
                RiskLevel::High,
                json!({"ipAddress": ip.to_string(), "list": "malicious", "label": label}),
            ));
        }
        found
    }

    /// The real-time risk of a request from this address (what Conditional
    /// Access decides with).
    pub(crate) fn address_risk(&self, client_address: Option<&str>) -> RiskLevel {
        tessera_risk::aggregate::sign_in_risk(&self.address_detections(client_address))
    }

    /// Counts a failed password for the spray and brute-force detections, on
    /// counters every node shares, by the address's network (its /24 or /64):
    /// the account's failures from there, and the distinct names it failed
    /// against (each name kept only as a keyed hash, as a name box sometimes
    /// receives a password). A run ends after a quiet
    /// [`counters::WINDOW_SECONDS`].
    pub(crate) async fn count_failure(
        &self,
        tenant: TenantId,
        user: Option<Uuid>,
        name: &str,
        source: Option<&str>,
    ) -> ServiceResult<()> {
        let Some(network) = source.and_then(tessera_authn::lockout::network_of) else {
            return Ok(());
        };
        let now = self.now();
        let restart = now.plus_seconds(-counters::WINDOW_SECONDS);
        if let Some(user) = user {
            self.store
                .counter_increment(tenant, &brute_force_key(user, &network), now, restart)
                .await?;
        }
        let first = self
            .store
            .counter_increment(tenant, &self.spray_name_key(&network, name), now, restart)
            .await?
            == 1;
        if first {
            self.store
                .counter_increment(tenant, &format!("{SPRAY}{network}"), now, restart)
                .await?;
        }
        Ok(())
    }

    /// The key of a name an address failed against: a keyed hash of it.
    fn spray_name_key(&self, network: &str, name: &str) -> String {
        let hash = tessera_core::crypto::sha256_hex(
            format!("{}|{}", self.settings.public_url, name.to_lowercase()).as_bytes(),
        );
        format!("{SPRAY}{network}|{hash}")
    }

    /// Counts a second-factor prompt (asked after the right password, or
    /// denied). A prompt after [`counters::MFA_FATIGUE_PROMPTS`] (or
    /// [`counters::MFA_FATIGUE_PROMPTS_HIGH`]) left unanswered within the hour
    /// is an `mfaFatigue` detection, said once per level: the prompt that
    /// follows them is the one a tired user may accept.
    pub(crate) async fn mfa_prompted(
        &self,
        tenant: TenantId,
        facts: &SignInFacts<'_>,
    ) -> ServiceResult<()> {
        let Some(user) = facts.user_id else {
            return Ok(());
        };
        let now = self.now();
        let restart = now.plus_seconds(-counters::MFA_PROMPT_WINDOW_SECONDS);
        let prompts = self
            .store
            .counter_increment(tenant, &format!("{MFA_PROMPTS}{user}"), now, restart)
            .await?;
        // The prompts before this one, all unanswered.
        let unanswered = u32::try_from(prompts - 1).unwrap_or(u32::MAX);
        if unanswered != counters::MFA_FATIGUE_PROMPTS
            && unanswered != counters::MFA_FATIGUE_PROMPTS_HIGH
        {
            return Ok(());
        }
        match counters::mfa_fatigue(unanswered) {
            Some(detection) => self.record(tenant, facts, &[detection]).await,
            None => Ok(()),
        }
    }

    /// A second factor was answered: the prompts start again (a read, and a
    /// write only when there were any).
    pub(crate) async fn mfa_answered(&self, tenant: TenantId, user: Uuid) -> ServiceResult<()> {
        let key = format!("{MFA_PROMPTS}{user}");
        if self.store.counter_get(tenant, &key).await?.is_some() {
            self.store.counter_delete(tenant, &key).await?;
        }
        Ok(())
    }

    /// Records that a right password is in the breached-password list: a
    /// leaked credential (user risk, high), at most once a day for a user.
    pub(crate) async fn record_leaked(
        &self,
        tenant: TenantId,
        user: Uuid,
        user_principal_name: &str,
        ctx: (&str, Option<&str>),
    ) -> ServiceResult<()> {
        let now = self.now();
        let day = now.unix_seconds().div_euclid(86_400);
        let first = self
            .store
            .counter_increment(
                tenant,
                &format!("{LEAKED}{user}|{day}"),
                now,
                Timestamp::from_unix_micros(0),
            )
            .await?
            == 1;
        if !first {
            return Ok(());
        }
        let detection = Detection::new(
            EventType::LeakedCredentials,
            RiskLevel::High,
            json!({"source": "breachedPasswordList"}),
        );
        self.record_for(tenant, user, user_principal_name, ctx, detection)
            .await
    }

    /// Records a detection of a user outside any sign-in log entry; `ctx` is
    /// the request's correlation id and client address.
    pub(crate) async fn record_for(
        &self,
        tenant: TenantId,
        user: Uuid,
        user_principal_name: &str,
        ctx: (&str, Option<&str>),
        detection: Detection,
    ) -> ServiceResult<()> {
        let (correlation_id, client_address) = ctx;
        let facts = SignInFacts {
            sign_in: None,
            at: self.now(),
            user_id: Some(user),
            user_principal_name,
            client_address,
            correlation_id,
        };
        self.record(tenant, &facts, &[detection]).await
    }

    /// What the failures before a sign-in that used a password say of it: a
    /// brute force, when its account's failures came from its own network
    /// (the run then ends); a spray, when its network failed against many
    /// names and the account's was one of them (said once). With them, the
    /// risk they gave this account's sign-ins from this network within the
    /// window: a sign-in started again after a refusal is no less risky.
    pub(crate) async fn failure_detections(
        &self,
        tenant: TenantId,
        user: Option<Uuid>,
        name: &str,
        source: Option<&str>,
    ) -> ServiceResult<(Vec<Detection>, RiskLevel)> {
        let Some(network) = source.and_then(tessera_authn::lockout::network_of) else {
            return Ok((Vec::new(), RiskLevel::None));
        };
        let since = self.now().plus_seconds(-counters::WINDOW_SECONDS);
        let recent = |counter: Option<tessera_store::Counter>| {
            counter
                .filter(|c| c.updated >= since)
                .map_or(0, |c| u32::try_from(c.value).unwrap_or(u32::MAX))
        };
        let mut found = Vec::new();
        if let Some(user) = user {
            let key = brute_force_key(user, &network);
            let failures = recent(self.store.counter_get(tenant, &key).await?);
            found.extend(counters::brute_force(failures, true));
            if failures > 0 {
                self.store.counter_delete(tenant, &key).await?;
            }
        }
        let name_key = self.spray_name_key(&network, name);
        if recent(self.store.counter_get(tenant, &name_key).await?) > 0 {
            let accounts = recent(
                self.store
                    .counter_get(tenant, &format!("{SPRAY}{network}"))
                    .await?,
            );
            found.extend(counters::password_spray(&network, accounts));
            self.store.counter_delete(tenant, &name_key).await?;
        }
        let Some(user) = user else {
            return Ok((found, RiskLevel::None));
        };
        // Remembered as `seconds * 4 + level`, so a later finding always
        // replaces an earlier one.
        // A lower finding never replaces a higher one still in its window.
        let key = format!("{FOUND}{user}|{network}");
        let now = self.now();
        let remembered = self
            .store
            .counter_get(tenant, &key)
            .await?
            .filter(|c| c.value / 4 >= now.unix_seconds() - counters::WINDOW_SECONDS)
            .map_or(RiskLevel::None, |c| of_rank(c.value % 4));
        let level = tessera_risk::aggregate::sign_in_risk(&found).max(remembered);
        if !found.is_empty() && level != RiskLevel::None {
            self.store
                .counter_advance(tenant, &key, now.unix_seconds() * 4 + rank(level), now)
                .await?;
        }
        Ok((found, level))
    }

    /// What a session's use says (no I/O): a token anomaly
    /// (`tessera_risk::token`), and the network to remember as its last when
    /// it moved. `made` is the address and `User-Agent` it was made with;
    /// `last` its last network (none: the one it was made on), the one before,
    /// and when it was last seen; `now` this request's address and agent.
    pub(crate) fn session_use(
        &self,
        made: (Option<&str>, Option<&str>),
        last: (Option<&str>, Option<&str>, Timestamp),
        now: (Option<&str>, Option<&str>),
    ) -> (Option<Detection>, Option<String>) {
        let (made_address, made_agent) = made;
        let (last_network, before, last_seen) = last;
        let (address, agent) = now;
        let made_network = made_address.and_then(tessera_authn::lockout::network_of);
        let last_network = last_network.map(str::to_string).or(made_network.clone());
        let network = address.and_then(tessera_authn::lockout::network_of);
        let found = tessera_risk::token::session_replay(
            &tessera_risk::token::SessionUse {
                network: made_network.as_deref(),
                user_agent: made_agent,
                at: last_seen,
            },
            &tessera_risk::token::SessionUse {
                network: last_network.as_deref(),
                user_agent: made_agent,
                at: last_seen,
            },
            before,
            &tessera_risk::token::SessionUse {
                network: network.as_deref(),
                user_agent: agent,
                at: self.now(),
            },
        );
        let moved = network.filter(|n| Some(n) != last_network.as_ref());
        (found, moved)
    }

    /// A bound token presented without its binding (`anomalousToken`, high):
    /// whoever holds it does not hold its key. Recorded for its user at most
    /// once an hour for each kind of token (a thief retrying adds nothing).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn binding_mismatch(
        &self,
        tenant: TenantId,
        user: Uuid,
        user_principal_name: &str,
        client_address: Option<&str>,
        correlation_id: &str,
        token: &str,
        binding: &str,
    ) -> ServiceResult<()> {
        // Once in each clock hour, however often it is tried.
        if !self
            .once_an_hour(tenant, &format!("binding:{user}:{token}"))
            .await?
        {
            return Ok(());
        }
        let found = tessera_risk::token::binding_mismatch(token, binding);
        self.record_for(
            tenant,
            user,
            user_principal_name,
            (correlation_id, client_address),
            found,
        )
        .await
    }

    /// Records a sign-in's detections (one statement; nothing when there are
    /// none).
    pub(crate) async fn record(
        &self,
        tenant: TenantId,
        facts: &SignInFacts<'_>,
        detections: &[Detection],
    ) -> ServiceResult<()> {
        self.record_as(tenant, facts, PrincipalKind::User, detections)
            .await
    }

    /// Records detections of a principal of `kind` (`facts.user_id` is its
    /// id), and its risk follows them.
    async fn record_as(
        &self,
        tenant: TenantId,
        facts: &SignInFacts<'_>,
        kind: PrincipalKind,
        detections: &[Detection],
    ) -> ServiceResult<()> {
        if detections.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(detections.len());
        for detection in detections {
            let body = json!({
                "userPrincipalName": facts.user_principal_name,
                "correlationId": facts.correlation_id,
                "activityDateTime": facts.at,
                "evidence": detection.evidence,
            });
            rows.push((
                tenant,
                RiskDetectionRow {
                    id: Uuid::new_v4(),
                    detected: self.now(),
                    user_id: facts.user_id,
                    principal_type: kind.noun().to_string(),
                    event_type: detection.event_type.name().to_string(),
                    level: level_name(detection.level).to_string(),
                    timing: match detection.timing {
                        tessera_risk::Timing::RealTime => "realtime",
                        tessera_risk::Timing::Offline => "offline",
                    }
                    .to_string(),
                    sign_in_id: facts.sign_in,
                    ip: facts.client_address.map(str::to_string),
                    body: body.to_string(),
                },
            ));
        }
        self.store.risk_detection_append_batch(&rows).await?;
        if let Some(principal) = facts.user_id {
            self.detected_for(tenant, (principal, kind), detections)
                .await?;
        }
        Ok(())
    }

    /// Removes every tenant's detections older than [`DETECTION_RETENTION_DAYS`]
    /// (the `purge-expired` job), and derives again the risk of principals
    /// whose detections all aged out; how many detections went.
    pub async fn purge_detections(&self) -> ServiceResult<u64> {
        let before = self.now().plus_seconds(-DETECTION_RETENTION_DAYS * 86_400);
        let mut removed = 0;
        for tenant in self.store.tenants().await? {
            removed += self.store.risk_detection_purge(tenant.id, before).await?;
        }
        let aged = self.age_out().await?;
        if aged > 0 {
            tracing::info!(
                aged,
                "risk of principals derived again after their detections aged out"
            );
        }
        Ok(removed)
    }

    /// `GET identityProtection/riskDetections`: users' detections, newest
    /// first.
    pub async fn list_detections(
        &self,
        ctx: &Context,
        filter: &DetectionFilter,
    ) -> ServiceResult<Page<RiskDetectionView>> {
        if filter.service_principal_id.is_some() {
            return Err(ServiceError::invalid(
                "servicePrincipalId",
                "workloads' detections are servicePrincipalRiskDetections",
            ));
        }
        let (rows, next_cursor) = self
            .detection_rows(ctx, filter, PrincipalKind::User)
            .await?;
        let value = rows.iter().map(view_of).collect();
        Ok(Page { value, next_cursor })
    }

    /// `GET identityProtection/servicePrincipalRiskDetections`: workloads'
    /// detections, newest first.
    pub async fn list_service_principal_detections(
        &self,
        ctx: &Context,
        filter: &DetectionFilter,
    ) -> ServiceResult<Page<ServicePrincipalRiskDetectionView>> {
        if filter.user_id.is_some() {
            return Err(ServiceError::invalid(
                "userId",
                "users' detections are riskDetections",
            ));
        }
        let filter = DetectionFilter {
            user_id: filter.service_principal_id,
            ..filter.clone()
        };
        let (rows, next_cursor) = self
            .detection_rows(ctx, &filter, PrincipalKind::ServicePrincipal)
            .await?;
        let value = rows.iter().map(workload_view_of).collect();
        Ok(Page { value, next_cursor })
    }

    /// A page of the detections of one kind of principal.
    async fn detection_rows(
        &self,
        ctx: &Context,
        filter: &DetectionFilter,
        kind: PrincipalKind,
    ) -> ServiceResult<(Vec<RiskDetectionRow>, Option<String>)> {
        self.require(ctx, action::RISK_READ, &Target::Tenant)?;
        let page = LogPage::read(filter.limit, filter.cursor.as_deref())?;
        if let Some(kind) = &filter.risk_event_type
            && !EventType::ALL.iter().any(|k| k.name() == kind)
        {
            return Err(ServiceError::invalid(
                "riskEventType",
                format!(
                    "must be one of {}",
                    EventType::ALL.map(|k| k.name()).join(", ")
                ),
            ));
        }
        if let Some(level) = &filter.risk_level
            && !["low", "medium", "high"].contains(&level.as_str())
        {
            return Err(ServiceError::invalid(
                "riskLevel",
                "must be low, medium or high",
            ));
        }
        let query = RiskDetectionQuery {
            user_id: filter.user_id,
            principal_type: Some(kind.noun().to_string()),
            event_type: filter.risk_event_type.clone(),
            level: filter.risk_level.clone(),
            since: filter.since,
            until: filter.until,
            before: page.before,
            limit: page.limit + 1,
        };
        let mut rows = self.store.risk_detection_query(ctx.tenant, &query).await?;
        let next_cursor = page.finish(&mut rows, |r| (r.detected, r.id));
        Ok((rows, next_cursor))
    }
}

/// A detection as the SIEM export shows it: a user's or a workload's view.
pub(crate) fn export_view(row: &RiskDetectionRow) -> Value {
    let view = if row.principal_type == PrincipalKind::ServicePrincipal.noun() {
        serde_json::to_value(workload_view_of(row))
    } else {
        serde_json::to_value(view_of(row))
    };
    view.unwrap_or(Value::Null)
}

pub(crate) fn workload_view_of(row: &RiskDetectionRow) -> ServicePrincipalRiskDetectionView {
    let user = view_of(row);
    ServicePrincipalRiskDetectionView {
        id: user.id,
        risk_event_type: user.risk_event_type,
        risk_level: user.risk_level,
        risk_state: user.risk_state,
        detection_timing_type: user.detection_timing_type,
        activity: "servicePrincipal".to_string(),
        source: user.source,
        detected_date_time: user.detected_date_time,
        activity_date_time: user.activity_date_time,
        service_principal_id: user.user_id,
        service_principal_display_name: user.user_principal_name,
        app_id: user.additional_info["appId"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        correlation_id: user.correlation_id,
        ip_address: user.ip_address,
        additional_info: user.additional_info,
    }
}

pub(crate) fn view_of(row: &RiskDetectionRow) -> RiskDetectionView {
    let body: Value = serde_json::from_str(&row.body).unwrap_or(Value::Null);
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
    RiskDetectionView {
        id: row.id,
        risk_event_type: row.event_type.clone(),
        risk_level: row.level.clone(),
        risk_state: "atRisk".to_string(),
        detection_timing_type: row.timing.clone(),
        activity: "signin".to_string(),
        source: "tessera".to_string(),
        detected_date_time: row.detected,
        activity_date_time: serde_json::from_value(body["activityDateTime"].clone())
            .unwrap_or(row.detected),
        user_id: row.user_id,
        user_principal_name: text("userPrincipalName"),
        request_id: row.sign_in_id,
        correlation_id: text("correlationId"),
        ip_address: row.ip.clone(),
        additional_info: body["evidence"].clone(),
    }
}

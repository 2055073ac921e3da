//! User risk and workload risk: what persists of the detections until someone
//! ends it (Graph's `riskyUsers` and `riskyServicePrincipals`).
//!
//! Each principal that ever had risk has one `riskState` record (key1: its
//! id; key2: `user` or `servicePrincipal`). It holds:
//! - the level, state and detail `tessera_risk::aggregate::user_risk` derives
//!   from the principal's detections of the last 90 days (read from the
//!   detections log) and the actions kept in the record (remediations,
//!   dismissals, confirmations, levels reported through the API);
//! - the risk of the principal's sign-ins for a while, when an outside
//!   source reported one through the API (a sign-in's own real-time risk is
//!   its session's: `SessionData::sign_in_risk`);
//! - the history of its state changes (the newest [`HISTORY_KEPT`]).
//!
//! The record is written only when something a reader sees changes (a level,
//! a state), so a stream of risky sign-ins by one user writes it once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::{ServicePrincipalData, UserSpec};
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_risk::aggregate::{self, HistoryEvent, Remediation, RiskDetail, RiskState, UserRisk};
use tessera_risk::{EventType, RiskLevel};
use tessera_store::{Kind, Reader, RiskDetectionQuery, WriteTx};
use uuid::Uuid;

use super::Risk;
use crate::codec::{self, Keys, Page, PageRequest};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

/// How many state changes a principal's record keeps.
pub const HISTORY_KEPT: usize = 100;
/// How many actions after the last reset a record keeps (the newest).
const ACTIONS_KEPT: usize = 50;
/// How long a reported sign-in risk holds by default.
pub const SIGN_IN_RISK_SECONDS: i64 = 3600;

/// How many principals one `confirmCompromised` or `dismiss` may name.
pub const MAX_PRINCIPALS_PER_ACTION: usize = 60;
/// How long this node reuses a workload's risk.
const WORKLOAD_RISK_SECONDS: u64 = 5;
const MAX_CACHED_RISKS: usize = 10_000;

/// Users or workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    ServicePrincipal,
}

impl PrincipalKind {
    fn key2(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::ServicePrincipal => "servicePrincipal",
        }
    }

    fn store_kind(self) -> Kind {
        match self {
            PrincipalKind::User => Kind::User,
            PrincipalKind::ServicePrincipal => Kind::ServicePrincipal,
        }
    }

    pub(crate) fn noun(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::ServicePrincipal => "servicePrincipal",
        }
    }
}

/// One change of a principal's risk (Graph's `riskyUserHistoryItem`, less
/// the names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    pub id: Uuid,
    pub risk_last_updated_date_time: Timestamp,
    pub risk_level: RiskLevel,
    pub risk_state: RiskState,
    pub risk_detail: RiskDetail,
    /// Who did it: an administrator's or the user's id; none when Identity
    /// Protection did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<String>,
    /// The detections that led to it.
    #[serde(default)]
    pub risk_event_types: Vec<String>,
}

/// A principal's stored risk (the `riskState` record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalRisk {
    pub principal_id: Uuid,
    /// User risk, or a workload's service principal risk.
    pub risk_level: RiskLevel,
    /// Risk of the principal's sign-ins until `sign_in_risk_expires_date_time`.
    pub sign_in_risk_level: RiskLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_risk_expires_date_time: Option<Timestamp>,
    pub modified_date_time: Timestamp,
    #[serde(default = "no_state")]
    pub risk_state: RiskState,
    #[serde(default = "no_detail")]
    pub risk_detail: RiskDetail,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_last_updated_date_time: Option<Timestamp>,
    /// What people did since the last reset (that reset first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<HistoryEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryItem>,
}

fn no_state() -> RiskState {
    RiskState::None
}

fn no_detail() -> RiskDetail {
    RiskDetail::None
}

impl PrincipalRisk {
    fn new(principal_id: Uuid, now: Timestamp) -> PrincipalRisk {
        PrincipalRisk {
            principal_id,
            risk_level: RiskLevel::None,
            sign_in_risk_level: RiskLevel::None,
            sign_in_risk_expires_date_time: None,
            modified_date_time: now,
            risk_state: RiskState::None,
            risk_detail: RiskDetail::None,
            risk_last_updated_date_time: None,
            actions: Vec::new(),
            history: Vec::new(),
        }
    }

    /// The sign-in risk that holds at `now`.
    pub fn sign_in_risk_at(&self, now: Timestamp) -> RiskLevel {
        match self.sign_in_risk_expires_date_time {
            Some(until) if until > now => self.sign_in_risk_level,
            _ => RiskLevel::None,
        }
    }

    /// When the last reset was (detections before it no longer count).
    fn last_reset(&self) -> Option<Timestamp> {
        self.actions
            .iter()
            .filter(|a| a.is_reset())
            .map(HistoryEvent::at)
            .max()
    }
}

/// What happened to a principal.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// Detections were recorded (the sign-in's own risk is its session's,
    /// not the user's).
    Detected { event_types: Vec<String> },
    /// Someone acted (an administrator, the user, an outside source).
    Acted(HistoryEvent),
    /// An outside source set the risk of the principal's sign-ins for a while.
    SignInRisk { level: RiskLevel, seconds: i64 },
    /// The user (or an administrator's reset) remediated; `proven_since` as
    /// in [`Risk::remediate`].
    Remediated {
        how: Remediation,
        proven_since: Option<Timestamp>,
    },
}

/// Graph's `riskyUser`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RiskyUserView {
    pub id: Uuid,
    pub is_deleted: bool,
    pub is_processing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub risk_last_updated_date_time: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub risk_level: RiskLevel,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub risk_state: RiskState,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub risk_detail: RiskDetail,
    pub user_display_name: String,
    pub user_principal_name: String,
}

/// Graph's `riskyServicePrincipal`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RiskyServicePrincipalView {
    pub id: Uuid,
    pub app_id: String,
    pub display_name: String,
    pub is_enabled: bool,
    pub is_processing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub risk_last_updated_date_time: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub risk_level: RiskLevel,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub risk_state: RiskState,
    pub risk_detail: String,
    pub service_principal_type: String,
}

/// Graph's `riskyUserHistoryItem` (and `riskyServicePrincipalHistoryItem`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RiskHistoryView {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_principal_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub activity: Value,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub risk_last_updated_date_time: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub risk_level: RiskLevel,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub risk_state: RiskState,
    pub risk_detail: String,
}

/// Graph's `riskDetail` name for a principal of `kind` (a workload's
/// administrator actions have their own names).
fn detail_name(kind: PrincipalKind, detail: RiskDetail) -> String {
    match (kind, detail) {
        (PrincipalKind::ServicePrincipal, RiskDetail::AdminDismissedAllRiskForUser) => {
            "adminDismissedAllRiskForServicePrincipal".to_string()
        }
        (PrincipalKind::ServicePrincipal, RiskDetail::AdminConfirmedUserCompromised) => {
            "adminConfirmedServicePrincipalCompromised".to_string()
        }
        _ => serde_json::to_value(detail)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    }
}

/// What the risky principals API filters by.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskyFilter {
    pub risk_level: Option<RiskLevel>,
    pub risk_state: Option<RiskState>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// An outside source's report: the principal's risk, and its sign-ins' risk
/// for a while.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RiskReport {
    #[serde(default)]
    risk_level: Option<RiskLevel>,
    #[serde(default)]
    sign_in_risk_level: Option<RiskLevel>,
    /// How long the sign-in risk holds (default an hour, at most a day).
    #[serde(default)]
    sign_in_risk_seconds: Option<i64>,
}

/// This node's short memory of workloads' risk (a client-credentials grant
/// reads it on every token).
#[derive(Default)]
pub(crate) struct WorkloadRiskCache(Mutex<HashMap<(TenantId, Uuid), (Instant, RiskLevel)>>);

impl WorkloadRiskCache {
    fn get(&self, key: (TenantId, Uuid)) -> Option<RiskLevel> {
        self.0
            .lock()
            .ok()?
            .get(&key)
            .filter(|(at, _)| at.elapsed() < Duration::from_secs(WORKLOAD_RISK_SECONDS))
            .map(|(_, level)| *level)
    }

    fn put(&self, key: (TenantId, Uuid), level: RiskLevel) {
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() >= MAX_CACHED_RISKS {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), level));
        }
    }

    fn forget(&self, key: (TenantId, Uuid)) {
        if let Ok(mut cache) = self.0.lock() {
            cache.remove(&key);
        }
    }
}

impl Risk {
    /// A principal's stored risk, if it ever had any.
    pub(crate) async fn stored_risk(
        reader: &mut dyn Reader,
        tenant: TenantId,
        principal: Uuid,
    ) -> ServiceResult<Option<(tessera_store::Record, PrincipalRisk)>> {
        match reader
            .get_by_key1(tenant, Kind::RiskState, &principal.to_string())
            .await?
        {
            Some(record) => {
                let mut risk: PrincipalRisk = codec::data(&record)?;
                // A level set through the API before actions were kept: a
                // report of that level, so deriving it again keeps it.
                if risk.actions.is_empty()
                    && risk.risk_state == RiskState::None
                    && risk.risk_level != RiskLevel::None
                {
                    risk.actions.push(HistoryEvent::Reported {
                        at: risk.modified_date_time,
                        level: risk.risk_level,
                    });
                    risk.risk_state = RiskState::AtRisk;
                }
                Ok(Some((record, risk)))
            }
            None => Ok(None),
        }
    }

    /// A user's risk and the risk their sign-ins carry now (what Conditional
    /// Access decides with).
    pub(crate) async fn levels_of(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        principal: Uuid,
    ) -> ServiceResult<(RiskLevel, RiskLevel)> {
        Ok(match Risk::stored_risk(reader, tenant, principal).await? {
            Some((_, risk)) => (risk.risk_level, risk.sign_in_risk_at(self.now())),
            None => (RiskLevel::None, RiskLevel::None),
        })
    }

    /// A workload's risk, reused for a few seconds on this node (a change made
    /// here applies at once).
    pub(crate) async fn workload_risk(
        &self,
        tenant: TenantId,
        service_principal: Uuid,
    ) -> ServiceResult<RiskLevel> {
        let key = (tenant, service_principal);
        if let Some(level) = self.workloads.get(key) {
            return Ok(level);
        }
        let mut reader = self.reader().await?;
        let (level, _) = self
            .levels_of(reader.as_mut(), tenant, service_principal)
            .await?;
        self.workloads.put(key, level);
        Ok(level)
    }

    /// The detections that count toward a principal's risk now: those since
    /// its last reset, within [`aggregate::DETECTION_DAYS`].
    async fn counted_detections(
        &self,
        tenant: TenantId,
        principal: Uuid,
        since_reset: Option<Timestamp>,
    ) -> ServiceResult<Vec<HistoryEvent>> {
        let horizon = self.now().plus_seconds(-aggregate::DETECTION_DAYS * 86_400);
        let since = since_reset.map_or(horizon, |reset| reset.max(horizon));
        // What the level depends on, whatever else was detected meanwhile:
        // the newest high, the newest medium and the three newest lows.
        let mut rows = Vec::new();
        for (level, limit) in [("high", 1), ("medium", 1), ("low", 3)] {
            rows.extend(
                self.store
                    .risk_detection_query(
                        tenant,
                        &RiskDetectionQuery {
                            user_id: Some(principal),
                            level: Some(level.to_string()),
                            since: Some(since),
                            limit,
                            ..RiskDetectionQuery::default()
                        },
                    )
                    .await?,
            );
        }
        Ok(rows
            .iter()
            .filter_map(|row| {
                let event_type = EventType::ALL
                    .into_iter()
                    .find(|k| k.name() == row.event_type)?;
                let level = serde_json::from_value(Value::String(row.level.clone())).ok()?;
                Some(HistoryEvent::Detected {
                    at: row.detected,
                    event_type,
                    level,
                })
            })
            .collect())
    }

    /// Applies a change to a principal's record inside `tx`: the event to
    /// audit when something a reader sees changed, none otherwise (nothing
    /// written). `detected` are the principal's counted detections, read
    /// before the transaction (those recorded meanwhile are newer than any
    /// reset it could see). A user whose risk became high has their tokens
    /// and refresh token families end with `tx` (continuous access
    /// evaluation); their browser sessions stay for the remediation
    /// Conditional Access asks at the next sign-in to an application, as
    /// Entra does (confirming a user compromised ends them).
    async fn apply(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        principal: (Uuid, PrincipalKind),
        change: &Change,
        detected: &[HistoryEvent],
    ) -> ServiceResult<Option<EventDraft>> {
        let (id, kind) = principal;
        let now = self.now();
        let stored = Risk::stored_risk(tx, ctx.tenant, id).await?;
        let mut risk = match &stored {
            Some((_, risk)) => risk.clone(),
            None => PrincipalRisk::new(id, now),
        };
        let before = risk.clone();
        let mut event_types = Vec::new();
        // A remediation is taken (read here, in the transaction) only when at
        // risk, and a user's own only with proof older than the risk.
        let taken;
        let change = match change {
            Change::Remediated { how, proven_since } => {
                let sign_in_risk = risk.sign_in_risk_at(now) != RiskLevel::None;
                if risk.risk_level == RiskLevel::None && !sign_in_risk {
                    return Ok(None);
                }
                if *how != Remediation::AdminGeneratedTemporaryPassword {
                    let risen = risk
                        .risk_last_updated_date_time
                        .into_iter()
                        .chain(sign_in_risk.then_some(risk.modified_date_time))
                        .max();
                    if let Some(risen) = risen
                        && proven_since.is_none_or(|since| since >= risen)
                    {
                        tracing::info!(tenant = %ctx.tenant, principal = %id, "a remediation with a second factor newer than the risk is not taken");
                        return Ok(None);
                    }
                }
                taken = Change::Acted(HistoryEvent::Remediated { at: now, how: *how });
                &taken
            }
            other => other,
        };
        match change {
            Change::Detected { event_types: types } => {
                event_types = types.clone();
            }
            Change::Acted(action) => {
                if action.is_reset() {
                    risk.actions.clear();
                    risk.sign_in_risk_level = RiskLevel::None;
                    risk.sign_in_risk_expires_date_time = None;
                }
                risk.actions.push(action.clone());
                // The oldest reports go first; a reset or a confirmation stays.
                while risk.actions.len() > ACTIONS_KEPT {
                    let Some(oldest) = risk
                        .actions
                        .iter()
                        .position(|a| matches!(a, HistoryEvent::Reported { .. }))
                    else {
                        break;
                    };
                    risk.actions.remove(oldest);
                }
                // Confirmations repeated without a reset between say nothing new.
                if matches!(action, HistoryEvent::ConfirmedCompromised { .. }) {
                    let last = risk.actions.len() - 1;
                    let mut seen = false;
                    let mut index = last;
                    while index > 0 {
                        index -= 1;
                        if matches!(
                            risk.actions[index],
                            HistoryEvent::ConfirmedCompromised { .. }
                        ) {
                            seen = true;
                            break;
                        }
                    }
                    if seen {
                        risk.actions.remove(index);
                    }
                }
            }
            Change::SignInRisk { level, seconds } => {
                risk.sign_in_risk_level = *level;
                risk.sign_in_risk_expires_date_time = Some(now.plus_seconds(*seconds));
            }
            Change::Remediated { .. } => {}
        }
        let mut history: Vec<HistoryEvent> = detected.to_vec();
        history.extend(risk.actions.iter().cloned());
        let UserRisk {
            level,
            state,
            detail,
            updated,
        } = aggregate::user_risk(&history, now);
        let moved = (level, state, detail) != (risk.risk_level, risk.risk_state, risk.risk_detail);
        if moved {
            risk.risk_level = level;
            risk.risk_state = state;
            risk.risk_detail = detail;
            risk.risk_last_updated_date_time = Some(updated.unwrap_or(now));
            risk.history.push(HistoryItem {
                id: Uuid::new_v4(),
                risk_last_updated_date_time: now,
                risk_level: level,
                risk_state: state,
                risk_detail: detail,
                initiated_by: match &ctx.caller.principal {
                    crate::Principal::User { id, .. } | crate::Principal::Workload { id, .. } => {
                        Some(id.to_string())
                    }
                    crate::Principal::System { .. } => None,
                },
                risk_event_types: event_types,
            });
            if risk.history.len() > HISTORY_KEPT {
                let cut = risk.history.len() - HISTORY_KEPT;
                risk.history.drain(..cut);
            }
        }
        if risk == before && stored.is_some() {
            return Ok(None);
        }
        if kind == PrincipalKind::User
            && risk.risk_level == RiskLevel::High
            && before.risk_level != RiskLevel::High
        {
            self.revocations()
                .revoke_in(
                    tx,
                    ctx.tenant,
                    &[tessera_cae::Target::User(id)],
                    tessera_cae::Reason::UserRiskHigh,
                )
                .await?;
        }
        risk.modified_date_time = now;
        let key = id.to_string();
        let keys = Keys {
            key1: Some(key.clone()),
            key2: Some(kind.key2().to_string()),
            sort_key: key.clone(),
        };
        codec::put(
            tx,
            ctx.tenant,
            Kind::RiskState,
            stored.as_ref().map(|(record, _)| record),
            Uuid::new_v4(),
            now,
            keys,
            &risk,
        )
        .await?;
        if kind == PrincipalKind::ServicePrincipal {
            self.workloads.forget((ctx.tenant, id));
        }
        let summary = |r: &PrincipalRisk| {
            json!({
                "riskLevel": r.risk_level,
                "riskState": r.risk_state,
                "riskDetail": r.risk_detail,
                "signInRiskLevel": r.sign_in_risk_level,
                "signInRiskExpiresDateTime": r.sign_in_risk_expires_date_time,
            })
        };
        Ok(Some(
            EventDraft::new(AuditAction::RiskStateUpdate)
                .on(kind.store_kind(), id, &key)
                .changes(patch::changes(&summary(&before), &summary(&risk))),
        ))
    }

    /// Applies one change to one principal in its own transaction (again,
    /// once, when another write moved the record meanwhile).
    pub(crate) async fn change_risk(
        &self,
        ctx: &Context,
        principal: (Uuid, PrincipalKind),
        change: Change,
    ) -> ServiceResult<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let reset = {
                let mut reader = self.reader().await?;
                Risk::stored_risk(reader.as_mut(), ctx.tenant, principal.0)
                    .await?
                    .and_then(|(_, risk)| risk.last_reset())
            };
            let detected = self
                .counted_detections(ctx.tenant, principal.0, reset)
                .await?;
            let mut tx = self.write(ctx).await?;
            let applied = match self
                .apply(tx.as_mut(), ctx, principal, &change, &detected)
                .await
            {
                Ok(Some(event)) => self.commit(tx, ctx, event).await,
                Ok(None) => Ok(()),
                Err(error) => Err(error),
            };
            match applied {
                Err(ServiceError::VersionMismatch { .. } | ServiceError::Conflict { .. })
                    if attempt < 2 => {}
                other => return other,
            }
        }
    }

    /// Derives again the risk of every principal whose last counted
    /// detection is older than [`aggregate::DETECTION_DAYS`] (the daily
    /// `purge-expired` job): detections age out even when nothing else
    /// happens to the principal. How many changed.
    pub(crate) async fn age_out(&self) -> ServiceResult<u64> {
        let horizon = self.now().plus_seconds(-aggregate::DETECTION_DAYS * 86_400);
        let mut changed = 0;
        for tenant in self.store.tenants().await? {
            let ctx = crate::kernel::system_context(tenant.id, "identity protection");
            for kind in [PrincipalKind::User, PrincipalKind::ServicePrincipal] {
                let records = {
                    let mut reader = self.reader().await?;
                    codec::list_all(
                        reader.as_mut(),
                        tenant.id,
                        Kind::RiskState,
                        Some(kind.key2().to_string()),
                    )
                    .await?
                };
                for record in records {
                    // One bad record or failed update holds up no other.
                    let Ok(risk) = codec::data::<PrincipalRisk>(&record) else {
                        tracing::warn!(tenant = %tenant.id, id = %record.id, "an unreadable risk record");
                        continue;
                    };
                    let stale = risk.risk_state == RiskState::AtRisk
                        && risk
                            .risk_last_updated_date_time
                            .is_some_and(|updated| updated < horizon);
                    if !stale {
                        continue;
                    }
                    let change = Change::Detected {
                        event_types: Vec::new(),
                    };
                    match self
                        .change_risk(&ctx, (risk.principal_id, kind), change)
                        .await
                    {
                        Ok(()) => changed += 1,
                        Err(error) => {
                            tracing::warn!(tenant = %tenant.id, %error, "cannot derive a principal's risk again")
                        }
                    }
                }
            }
        }
        Ok(changed)
    }

    /// After a sign-in's detections were recorded: the principal's risk
    /// follows them (Identity Protection acting).
    pub(crate) async fn detected_for(
        &self,
        tenant: TenantId,
        principal: (Uuid, PrincipalKind),
        detections: &[tessera_risk::Detection],
    ) -> ServiceResult<()> {
        let ctx = crate::kernel::system_context(tenant, "identity protection");
        let change = Change::Detected {
            event_types: detections
                .iter()
                .map(|d| d.event_type.name().to_string())
                .collect(),
        };
        self.change_risk(&ctx, principal, change).await
    }

    /// The user ended their own risk (`ctx` is theirs): a secure password
    /// change or reset, or a passkey registered after a strong sign-in.
    /// `proven_since` is when the oldest second factor their session used
    /// was registered: it must be older than the risk, or whoever holds the
    /// password could register a factor and clear the risk with it (an
    /// administrator's reset passes `None` and is always taken). Nothing is
    /// written when they were not at risk.
    pub(crate) async fn remediate(
        &self,
        ctx: &Context,
        user: Uuid,
        how: Remediation,
        proven_since: Option<Timestamp>,
    ) -> ServiceResult<()> {
        let change = Change::Remediated { how, proven_since };
        self.change_risk(ctx, (user, PrincipalKind::User), change)
            .await
    }

    /// Confirms principals compromised (high risk, until remediated or
    /// dismissed); a user's sessions and tokens end on every node. All or
    /// nothing: every id must name a principal of `kind`.
    pub async fn confirm_compromised(
        &self,
        ctx: &Context,
        kind: PrincipalKind,
        ids: &[Uuid],
    ) -> ServiceResult<()> {
        let at = self.now();
        self.act_on(ctx, kind, ids, HistoryEvent::ConfirmedCompromised { at })
            .await?;
        // Every user's sessions are ended, even if one's fail.
        let mut failed = Ok(());
        if kind == PrincipalKind::User {
            for id in unique(ids) {
                if let Err(error) = self
                    .end_user_sessions(ctx.tenant, id, None, tessera_cae::Reason::UserRiskHigh)
                    .await
                {
                    tracing::warn!(tenant = %ctx.tenant, user = %id, %error, "cannot end a compromised user's sessions");
                    failed = Err(error);
                }
            }
        }
        failed
    }

    /// Dismisses every risk of the principals (none, until the next
    /// detection). All or nothing, as [`Risk::confirm_compromised`].
    pub async fn dismiss(
        &self,
        ctx: &Context,
        kind: PrincipalKind,
        ids: &[Uuid],
    ) -> ServiceResult<()> {
        let at = self.now();
        self.act_on(ctx, kind, ids, HistoryEvent::Dismissed { at })
            .await
    }

    async fn act_on(
        &self,
        ctx: &Context,
        kind: PrincipalKind,
        ids: &[Uuid],
        action: HistoryEvent,
    ) -> ServiceResult<()> {
        self.require(ctx, action::RISK_MANAGE, &Target::Tenant)?;
        let field = match kind {
            PrincipalKind::User => "userIds",
            PrincipalKind::ServicePrincipal => "servicePrincipalIds",
        };
        let ids = unique(ids);
        if ids.is_empty() || ids.len() > MAX_PRINCIPALS_PER_ACTION {
            return Err(ServiceError::invalid(
                field,
                format!("must name 1 to {MAX_PRINCIPALS_PER_ACTION} ids"),
            ));
        }
        let mut detected = Vec::with_capacity(ids.len());
        {
            let mut reader = self.reader().await?;
            for id in &ids {
                if reader
                    .get(ctx.tenant, kind.store_kind(), *id)
                    .await?
                    .is_none()
                {
                    return Err(ServiceError::NotFound {
                        kind: kind.noun(),
                        id: id.to_string(),
                    });
                }
                let reset = Risk::stored_risk(reader.as_mut(), ctx.tenant, *id)
                    .await?
                    .and_then(|(_, risk)| risk.last_reset());
                detected.push(reset);
            }
        }
        let mut counted = Vec::with_capacity(ids.len());
        for (id, reset) in ids.iter().zip(detected) {
            counted.push(self.counted_detections(ctx.tenant, *id, reset).await?);
        }
        let mut tx = self.write(ctx).await?;
        let change = Change::Acted(action);
        for (id, detected) in ids.iter().zip(&counted) {
            if tx.get(ctx.tenant, kind.store_kind(), *id).await?.is_none() {
                return Err(ServiceError::NotFound {
                    kind: kind.noun(),
                    id: id.to_string(),
                });
            }
            if let Some(event) = self
                .apply(tx.as_mut(), ctx, (*id, kind), &change, detected)
                .await?
            {
                self.audit(tx.as_mut(), ctx, event).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// `GET identityProtection/risk/{id}`: a principal's stored risk.
    pub async fn get_risk(&self, ctx: &Context, principal: Uuid) -> ServiceResult<PrincipalRisk> {
        self.require(ctx, action::RISK_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        Ok(Risk::stored_risk(reader.as_mut(), ctx.tenant, principal)
            .await?
            .map(|(_, risk)| risk)
            .unwrap_or_else(|| PrincipalRisk::new(principal, self.now())))
    }

    /// An outside source reports a principal's risk: `riskLevel` counts like
    /// a detection of that level (`none` dismisses), `signInRiskLevel` holds
    /// for `signInRiskSeconds` (an hour by default).
    pub async fn report_risk(
        &self,
        ctx: &Context,
        principal: Uuid,
        body: Value,
    ) -> ServiceResult<PrincipalRisk> {
        self.require(ctx, action::RISK_MANAGE, &Target::Tenant)?;
        let report: RiskReport = patch::parse_spec(body)?;
        let seconds = report.sign_in_risk_seconds.unwrap_or(SIGN_IN_RISK_SECONDS);
        if !(60..=86_400).contains(&seconds) {
            return Err(ServiceError::invalid(
                "signInRiskSeconds",
                "must be 60 to 86400",
            ));
        }
        let kind = {
            let mut reader = self.reader().await?;
            if reader
                .get(ctx.tenant, Kind::User, principal)
                .await?
                .is_some()
            {
                PrincipalKind::User
            } else if reader
                .get(ctx.tenant, Kind::ServicePrincipal, principal)
                .await?
                .is_some()
            {
                PrincipalKind::ServicePrincipal
            } else {
                return Err(ServiceError::NotFound {
                    kind: "user or servicePrincipal",
                    id: principal.to_string(),
                });
            }
        };
        let reset = {
            let mut reader = self.reader().await?;
            Risk::stored_risk(reader.as_mut(), ctx.tenant, principal)
                .await?
                .and_then(|(_, risk)| risk.last_reset())
        };
        let detected = self
            .counted_detections(ctx.tenant, principal, reset)
            .await?;
        let now = self.now();
        let mut changes = Vec::new();
        match report.risk_level {
            Some(RiskLevel::None) => {
                changes.push(Change::Acted(HistoryEvent::Dismissed { at: now }))
            }
            Some(level) => changes.push(Change::Acted(HistoryEvent::Reported { at: now, level })),
            None => {}
        }
        if let Some(level) = report.sign_in_risk_level {
            changes.push(Change::SignInRisk { level, seconds });
        }
        let mut tx = self.write(ctx).await?;
        for change in &changes {
            if let Some(event) = self
                .apply(tx.as_mut(), ctx, (principal, kind), change, &detected)
                .await?
            {
                self.audit(tx.as_mut(), ctx, event).await?;
            }
        }
        let risk = Risk::stored_risk(tx.as_mut(), ctx.tenant, principal)
            .await?
            .map(|(_, risk)| risk)
            .unwrap_or_else(|| PrincipalRisk::new(principal, now));
        tx.commit().await?;
        Ok(risk)
    }

    /// `GET identityProtection/riskyUsers`: users that ever had risk, by id; a
    /// page filtered by level or state may hold fewer than asked (follow
    /// `nextCursor`).
    pub async fn list_risky_users(
        &self,
        ctx: &Context,
        filter: &RiskyFilter,
    ) -> ServiceResult<Page<RiskyUserView>> {
        self.require(ctx, action::RISK_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let (records, next_cursor) =
            risky_page(reader.as_mut(), ctx.tenant, PrincipalKind::User, filter).await?;
        let mut value = Vec::with_capacity(records.len());
        for risk in records {
            value.push(user_view(reader.as_mut(), ctx.tenant, &risk).await?);
        }
        Ok(Page { value, next_cursor })
    }

    /// `GET identityProtection/riskyUsers/{id}`.
    pub async fn get_risky_user(&self, ctx: &Context, user: Uuid) -> ServiceResult<RiskyUserView> {
        self.require(ctx, action::RISK_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let risk = stored_of(reader.as_mut(), ctx.tenant, user, PrincipalKind::User).await?;
        user_view(reader.as_mut(), ctx.tenant, &risk).await
    }

    /// `GET identityProtection/riskyUsers/{id}/history` (and the workloads'):
    /// the newest first.
    pub async fn risk_history(
        &self,
        ctx: &Context,
        kind: PrincipalKind,
        principal: Uuid,
    ) -> ServiceResult<Vec<RiskHistoryView>> {
        self.require(ctx, action::RISK_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let risk = stored_of(reader.as_mut(), ctx.tenant, principal, kind).await?;
        Ok(risk
            .history
            .iter()
            .rev()
            .map(|item| RiskHistoryView {
                id: item.id,
                user_id: (kind == PrincipalKind::User).then_some(principal),
                service_principal_id: (kind == PrincipalKind::ServicePrincipal)
                    .then_some(principal),
                initiated_by: item.initiated_by.clone(),
                activity: json!({
                    "riskEventTypes": item.risk_event_types,
                    "detail": detail_name(kind, item.risk_detail),
                }),
                risk_last_updated_date_time: item.risk_last_updated_date_time,
                risk_level: item.risk_level,
                risk_state: item.risk_state,
                risk_detail: detail_name(kind, item.risk_detail),
            })
            .collect())
    }

    /// `GET identityProtection/riskyServicePrincipals`.
    pub async fn list_risky_service_principals(
        &self,
        ctx: &Context,
        filter: &RiskyFilter,
    ) -> ServiceResult<Page<RiskyServicePrincipalView>> {
        self.require(ctx, action::RISK_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let (records, next_cursor) = risky_page(
            reader.as_mut(),
            ctx.tenant,
            PrincipalKind::ServicePrincipal,
            filter,
        )
        .await?;
        let mut value = Vec::with_capacity(records.len());
        for risk in records {
            value.push(workload_view(reader.as_mut(), ctx.tenant, &risk).await?);
        }
        Ok(Page { value, next_cursor })
    }

    /// `GET identityProtection/riskyServicePrincipals/{id}`.
    pub async fn get_risky_service_principal(
        &self,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<RiskyServicePrincipalView> {
        self.require(ctx, action::RISK_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let risk = stored_of(
            reader.as_mut(),
            ctx.tenant,
            id,
            PrincipalKind::ServicePrincipal,
        )
        .await?;
        workload_view(reader.as_mut(), ctx.tenant, &risk).await
    }
}

fn unique(ids: &[Uuid]) -> Vec<Uuid> {
    let mut seen = Vec::with_capacity(ids.len());
    for id in ids {
        if !seen.contains(id) {
            seen.push(*id);
        }
    }
    seen
}

/// A principal's record, or not found when it never had risk (or is not of
/// `kind`).
async fn stored_of(
    reader: &mut dyn Reader,
    tenant: TenantId,
    id: Uuid,
    kind: PrincipalKind,
) -> ServiceResult<PrincipalRisk> {
    let not_found = || ServiceError::NotFound {
        kind: match kind {
            PrincipalKind::User => "riskyUser",
            PrincipalKind::ServicePrincipal => "riskyServicePrincipal",
        },
        id: id.to_string(),
    };
    let Some((record, risk)) = Risk::stored_risk(reader, tenant, id).await? else {
        return Err(not_found());
    };
    // Records written before the kinds were told apart have no key2.
    let is_kind = match record.key2.as_deref() {
        Some(key2) => key2 == kind.key2(),
        None => reader.get(tenant, kind.store_kind(), id).await?.is_some(),
    };
    if !is_kind {
        return Err(not_found());
    }
    Ok(risk)
}

async fn risky_page(
    reader: &mut dyn Reader,
    tenant: TenantId,
    kind: PrincipalKind,
    filter: &RiskyFilter,
) -> ServiceResult<(Vec<PrincipalRisk>, Option<String>)> {
    let request = PageRequest {
        cursor: filter.cursor.clone(),
        limit: filter.limit,
        search: None,
    };
    let (records, next_cursor) = codec::list_page(
        reader,
        tenant,
        Kind::RiskState,
        &request,
        Some(kind.key2().to_string()),
    )
    .await?;
    let mut found = Vec::with_capacity(records.len());
    for record in &records {
        let risk: PrincipalRisk = codec::data(record)?;
        if filter.risk_level.is_some_and(|l| l != risk.risk_level)
            || filter.risk_state.is_some_and(|s| s != risk.risk_state)
        {
            continue;
        }
        found.push(risk);
    }
    Ok((found, next_cursor))
}

async fn user_view(
    reader: &mut dyn Reader,
    tenant: TenantId,
    risk: &PrincipalRisk,
) -> ServiceResult<RiskyUserView> {
    let user = reader.get(tenant, Kind::User, risk.principal_id).await?;
    let spec = user.as_ref().map(codec::data::<UserSpec>).transpose()?;
    Ok(RiskyUserView {
        id: risk.principal_id,
        is_deleted: spec.is_none(),
        is_processing: false,
        risk_last_updated_date_time: risk.risk_last_updated_date_time,
        risk_level: risk.risk_level,
        risk_state: risk.risk_state,
        risk_detail: risk.risk_detail,
        user_display_name: spec
            .as_ref()
            .map(|s| s.display_name.clone())
            .unwrap_or_default(),
        user_principal_name: spec.map(|s| s.user_principal_name).unwrap_or_default(),
    })
}

async fn workload_view(
    reader: &mut dyn Reader,
    tenant: TenantId,
    risk: &PrincipalRisk,
) -> ServiceResult<RiskyServicePrincipalView> {
    let record = reader
        .get(tenant, Kind::ServicePrincipal, risk.principal_id)
        .await?;
    let data = record
        .as_ref()
        .map(codec::data::<ServicePrincipalData>)
        .transpose()?;
    Ok(RiskyServicePrincipalView {
        id: risk.principal_id,
        app_id: data
            .as_ref()
            .map(|d| d.spec.app_id.to_string())
            .unwrap_or_default(),
        display_name: data
            .as_ref()
            .and_then(|d| d.spec.display_name.clone())
            .unwrap_or_default(),
        is_enabled: data.as_ref().is_some_and(|d| d.spec.account_enabled),
        is_processing: false,
        risk_last_updated_date_time: risk.risk_last_updated_date_time,
        risk_level: risk.risk_level,
        risk_state: risk.risk_state,
        risk_detail: detail_name(PrincipalKind::ServicePrincipal, risk.risk_detail),
        service_principal_type: "Application".to_string(),
    })
}

//! Workload identities' detections (`riskyServicePrincipals`): what a
//! client's token requests and tokens show (the rules are
//! `tessera_risk::workload`'s).
//!
//! - At each token request a workload authenticates for (client
//!   credentials): a client secret in the breached-password list (leaked
//!   credentials, once a day for each secret), and a source unlike the
//!   workload's own (suspicious sign-ins, once for each new source on every
//!   node together; a source that is still used a day after it was found
//!   becomes the workload's own, so a workload that moved for good, or one
//!   whose risk was dismissed, is not told again for 90 days). The
//!   workload's baseline is kept like a user's profile, in the session store
//!   (`risk-workload:{id}`); a request that showed anything learns nothing.
//! - A client assertion presented again, and a bound token of the workload
//!   presented without its binding (anomalous token use, once an hour).
//!
//! A client-credentials grant is the hot path of a token service: each node
//! remembers for a while the secrets it looked up and the sources it found
//! familiar, so a workload asking again and again from where it always does
//! costs a map lookup, not a file read or a database round trip.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use serde_json::json;
use tessera_core::{SecretString, TenantId, Timestamp};
use tessera_risk::Detection;
use tessera_risk::baseline::Baseline;
use tessera_risk::workload::{self, Source};
use uuid::Uuid;

use super::profile::REWRITE_SECONDS;
use super::{COUNTER_PREFIX, PrincipalKind, Risk, SOURCE_PREFIX, SignInFacts};
use crate::error::{ServiceError, ServiceResult};

/// How long this node trusts its lookup of a secret in the breached list
/// (seconds).
const CHECKED: i64 = 3600;
/// How long this node trusts that a source is familiar, or was found not to
/// be: one detection per source in that time (seconds).
const KNOWN: i64 = REWRITE_SECONDS;
/// Most entries each memory keeps (then it starts again).
const MAX_REMEMBERED: usize = 10_000;

/// A source of a workload: (tenant, workload, subnet, credential).
type SourceKey = (TenantId, Uuid, Option<String>, &'static str);
/// How long after its finding a source still in use becomes familiar
/// (seconds).
const SETTLES_SECONDS: i64 = 86_400;

/// This node's short memory of what it checked.
#[derive(Default)]
pub(crate) struct WorkloadWatch {
    /// Secrets (by tenant and key id) looked up in the breached list.
    checked: Mutex<HashMap<(TenantId, Uuid), Timestamp>>,
    /// (tenant, workload, subnet, credential) found familiar or recorded.
    known: Mutex<HashMap<SourceKey, Timestamp>>,
}

/// Whether `key` was remembered within `keep` seconds of `now`; remembers
/// it from now when it was not.
fn seen_lately<K: Eq + Hash>(
    memory: &Mutex<HashMap<K, Timestamp>>,
    key: K,
    now: Timestamp,
    keep: i64,
) -> bool {
    let Ok(mut memory) = memory.lock() else {
        return false;
    };
    if memory
        .get(&key)
        .is_some_and(|at| *at <= now && now.unix_seconds() - at.unix_seconds() < keep)
    {
        return true;
    }
    if memory.len() >= MAX_REMEMBERED {
        // What has expired goes first; if more than half is fresh, all goes
        // (so a full memory is not scanned at every miss).
        memory.retain(|_, at| *at <= now && now.unix_seconds() - at.unix_seconds() < keep);
        if memory.len() > MAX_REMEMBERED / 2 {
            memory.clear();
        }
    }
    memory.insert(key, now);
    false
}

fn forget<K: Eq + Hash>(memory: &Mutex<HashMap<K, Timestamp>>, key: &K) {
    if let Ok(mut memory) = memory.lock() {
        memory.remove(key);
    }
}

/// A workload's token request, as its detections need it.
pub(crate) struct WorkloadRequest<'a> {
    /// The service principal's id.
    pub principal: Uuid,
    pub display_name: &'a str,
    pub app_id: &'a str,
    /// `clientSecret`, `clientAssertion` or `clientCertificate`.
    pub credential: &'static str,
    /// The client secret it authenticated with, and its key id.
    pub secret: Option<(&'a SecretString, Uuid)>,
    pub correlation_id: &'a str,
    pub client_address: Option<&'a str>,
}

/// The prefix of workloads' baseline rows.
pub(super) const WORKLOAD_PREFIX: &str = "risk-workload:";

fn workload_key(principal: Uuid) -> String {
    format!("{WORKLOAD_PREFIX}{principal}")
}

impl Risk {
    /// The detections of a workload's token request, recorded (its risk
    /// follows them, so the request's own Conditional Access decision sees
    /// it). Never fails the request: what cannot be checked is logged.
    pub(crate) async fn workload_request(
        &self,
        tenant: TenantId,
        request: &WorkloadRequest<'_>,
    ) -> Vec<Detection> {
        let mut found = Vec::new();
        if let Some((secret, key_id)) = request.secret {
            match self
                .leaked_secret(tenant, request.principal, secret, key_id)
                .await
            {
                Ok(Some(detection)) => found.push(detection),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%tenant, %error, "cannot look a client secret up in the breached list")
                }
            }
        }
        match self
            .workload_source(tenant, request, found.is_empty())
            .await
        {
            Ok(Some(detection)) => found.push(detection),
            Ok(None) => {}
            Err(error) => tracing::warn!(%tenant, %error, "cannot keep a workload's baseline"),
        }
        if let Err(error) = self.record_workload(tenant, request, &found).await {
            tracing::warn!(%tenant, %error, "cannot record a workload's detections");
        }
        found
    }

    /// A secret in the breached list: the detection, once a day for each
    /// secret (this node looks each secret up once an hour at most).
    async fn leaked_secret(
        &self,
        tenant: TenantId,
        principal: Uuid,
        secret: &SecretString,
        key_id: Uuid,
    ) -> ServiceResult<Option<Detection>> {
        if self.settings.breached_passwords.is_none() {
            return Ok(None);
        }
        let memo = (tenant, key_id);
        if seen_lately(&self.watch.checked, memo, self.now(), CHECKED) {
            return Ok(None);
        }
        let breached = match self.settings.breached(secret).await {
            Ok(breached) => breached,
            Err(error) => {
                // Looked up again next time.
                forget(&self.watch.checked, &memo);
                return Err(error);
            }
        };
        if !breached {
            return Ok(None);
        }
        let now = self.now();
        let day = now.unix_seconds().div_euclid(86_400);
        let key = format!("{COUNTER_PREFIX}leaked-secret:{principal}|{key_id}|{day}");
        let first = self
            .store
            .counter_increment(
                tenant,
                &key,
                now,
                tessera_core::Timestamp::from_unix_micros(0),
            )
            .await?
            == 1;
        Ok(first.then(|| workload::leaked_secret(&key_id.to_string())))
    }

    /// A source unlike the workload's own: the detection. A familiar source
    /// teaches the baseline (written at most every [`REWRITE_SECONDS`] when
    /// nothing is new) when the request showed nothing else (`clean`); an
    /// unusual one teaches nothing until it has been in use a day.
    async fn workload_source(
        &self,
        tenant: TenantId,
        request: &WorkloadRequest<'_>,
        clean: bool,
    ) -> ServiceResult<Option<Detection>> {
        let info = self.locate(request.client_address).unwrap_or_default();
        let source = Source {
            country: info.country,
            asn: info.asn,
            subnet: request
                .client_address
                .and_then(tessera_authn::lockout::network_of),
            credential: Some(request.credential.to_string()),
        };
        let memo = (
            tenant,
            request.principal,
            source.subnet.clone(),
            request.credential,
        );
        if seen_lately(&self.watch.known, memo.clone(), self.now(), KNOWN) {
            return Ok(None);
        }
        let outcome = self
            .learn_source(tenant, request.principal, &source, clean)
            .await;
        if outcome.is_err() {
            forget(&self.watch.known, &memo);
        }
        outcome
    }

    async fn learn_source(
        &self,
        tenant: TenantId,
        principal: Uuid,
        source: &Source,
        clean: bool,
    ) -> ServiceResult<Option<Detection>> {
        let now = self.now();
        let key = workload_key(principal);
        let mut found = None;
        // An unusual source is told once on every node together (the first to
        // take the counter); still in use a day later, while the workload is
        // not at risk (its risk dismissed, or aged out), it settles into the
        // baseline. The counter stays until the purge: once learnt, the
        // source is no longer unusual.
        let finding_key = format!(
            "{SOURCE_PREFIX}{principal}|{}|{}",
            source.subnet.as_deref().unwrap_or_default(),
            source.credential.as_deref().unwrap_or_default()
        );
        for attempt in 0..2 {
            let stored = self.store.session_get(tenant, &key).await?;
            let mut baseline = stored
                .as_ref()
                .filter(|row| row.expires > now)
                .and_then(|row| serde_json::from_str::<Baseline>(&row.data).ok())
                .unwrap_or_else(|| Baseline::new(now));
            baseline.forget_old(now);
            if attempt == 0
                && let Some(detection) = workload::unusual_source(&baseline, source, now)
            {
                if self
                    .store
                    .counter_take(tenant, &finding_key, 1, now)
                    .await?
                {
                    found = Some(detection);
                    break;
                }
                let first = self.store.counter_get(tenant, &finding_key).await?;
                let settles = first.is_some_and(|c| {
                    now.unix_seconds() - c.updated.unix_seconds() >= SETTLES_SECONDS
                }) && !self.workload_at_risk(tenant, principal).await?;
                if !settles {
                    break;
                }
            }
            let recent = stored.as_ref().is_some_and(|row| {
                row.expires > now
                    && now.unix_seconds() - row.last_seen.unix_seconds() < REWRITE_SECONDS
            });
            if !clean || (recent && workload::knows(&baseline, source)) {
                break;
            }
            workload::observe(&mut baseline, source, now);
            match self
                .save_profile(tenant, &key, stored, &baseline, now)
                .await
            {
                Err(ServiceError::VersionMismatch { .. } | ServiceError::Conflict { .. })
                    if attempt == 0 => {}
                Err(error) => return Err(error),
                Ok(()) => break,
            }
        }
        Ok(found)
    }

    /// Whether a workload's risk is standing (at risk, or confirmed
    /// compromised): its unusual sources do not settle then.
    async fn workload_at_risk(&self, tenant: TenantId, principal: Uuid) -> ServiceResult<bool> {
        let mut reader = self.reader().await?;
        Ok(Risk::stored_risk(reader.as_mut(), tenant, principal)
            .await?
            .is_some_and(|(_, risk)| {
                matches!(
                    risk.risk_state,
                    super::RiskyState::AtRisk | super::RiskyState::ConfirmedCompromised
                )
            }))
    }

    /// A client assertion presented again (`anomalousToken`, medium), for
    /// the workload it names, once an hour.
    pub(crate) async fn assertion_replayed(
        &self,
        tenant: TenantId,
        request: &WorkloadRequest<'_>,
    ) -> ServiceResult<()> {
        if !self
            .once_an_hour(tenant, &format!("assertion:{}", request.principal))
            .await?
        {
            return Ok(());
        }
        self.record_workload(tenant, request, &[workload::assertion_replayed()])
            .await
    }

    /// A workload's bound access token presented without its binding
    /// (`anomalousToken`, high), once an hour for each kind of binding.
    pub(crate) async fn workload_binding_mismatch(
        &self,
        tenant: TenantId,
        request: &WorkloadRequest<'_>,
        binding: &str,
    ) -> ServiceResult<()> {
        if !self
            .once_an_hour(
                tenant,
                &format!("binding:{}:accessToken:{binding}", request.principal),
            )
            .await?
        {
            return Ok(());
        }
        let found = tessera_risk::token::binding_mismatch("accessToken", binding);
        self.record_workload(tenant, request, &[found]).await
    }

    /// Whether this is the first time in this clock hour that `what`
    /// happened (a counter every node shares).
    pub(super) async fn once_an_hour(&self, tenant: TenantId, what: &str) -> ServiceResult<bool> {
        let now = self.now();
        let hour = now.unix_seconds().div_euclid(3600);
        let key = format!("{COUNTER_PREFIX}{what}:{hour}");
        Ok(self
            .store
            .counter_increment(tenant, &key, now, now.plus_seconds(-3600))
            .await?
            == 1)
    }

    /// Records a workload's detections; its risk follows them.
    async fn record_workload(
        &self,
        tenant: TenantId,
        request: &WorkloadRequest<'_>,
        detections: &[Detection],
    ) -> ServiceResult<()> {
        let facts = SignInFacts {
            sign_in: None,
            at: self.now(),
            user_id: Some(request.principal),
            user_principal_name: request.display_name,
            client_address: request.client_address,
            correlation_id: request.correlation_id,
        };
        let detections: Vec<Detection> = detections
            .iter()
            .cloned()
            .map(|mut d| {
                if let Some(evidence) = d.evidence.as_object_mut() {
                    evidence.insert("appId".into(), json!(request.app_id));
                    evidence.insert("credential".into(), json!(request.credential));
                }
                d
            })
            .collect();
        self.record_as(tenant, &facts, PrincipalKind::ServicePrincipal, &detections)
            .await
    }
}

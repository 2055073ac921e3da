//! Strict location enforcement (continuous access evaluation): an access token
//! whose sign-in fell under a policy with the session control
//! `continuousAccessEvaluation` in a strict mode carries the policies that
//! would deny it elsewhere (`cae_loc`, [`tessera_ca::engine::PolicySet::location_fence`]).
//! Tessera's own resources (userinfo, the management, provisioning, signals
//! and device compliance APIs) refuse it from an address where one of those
//! policies, as it stands now, applies. The check reads the node's compiled
//! policy set and country database, both in memory: no database read per
//! request.
//!
//! A refusal is signalled: to the client, with a claims challenge when it
//! handles them (`cp1`), so it can go back to the authorization endpoint,
//! where Conditional Access decides at the new address; to the audit trail,
//! once per token and address on each node (`accessToken.refuse`), and from
//! there to Shared Signals receivers as CAEP token-claims-change
//! (`trusted_network` false).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tessera_core::TenantId;
use tessera_directory::audit_action::AuditAction;
use tessera_store::Kind;
use uuid::Uuid;

use super::inspect::BearerError;
use crate::{EventDraft, Oidc};

/// How long a node remembers that it audited a token refused in a network.
const REMEMBERED: Duration = Duration::from_secs(600);
/// At most this many tokens (and subjects) remembered per node, the oldest
/// forgotten first.
const MAX_TOKENS: usize = 10_000;
/// At most this many networks audited per token: one token carried around
/// many addresses is told a few times, not once per address.
const NETWORKS_PER_TOKEN: usize = 4;
/// At most this many refusals audited per user or workload in
/// [`REMEMBERED`]: a client holding many of its users' tokens, or someone
/// refreshing their own, cannot spend the tenant's budget alone.
const PER_SUBJECT: u32 = 8;
/// At most this many refusals audited per tenant per minute on a node; more
/// are still refused, and logged.
const PER_TENANT_MINUTE: u32 = 120;

/// One refusal, as the limits see it.
struct Refusal<'a> {
    tenant: TenantId,
    /// The token's user or workload.
    subject: Uuid,
    jti: &'a str,
    /// The address's /24 or /64.
    network: Option<String>,
}

/// The refusals this node has audited: per token, the networks (an IPv4
/// address's /24, an IPv6 address's /64) it was refused in; per subject and
/// per tenant, how many lately.
#[derive(Default)]
pub(crate) struct LocationRefusals {
    state: Mutex<RefusalState>,
}

#[derive(Default)]
struct RefusalState {
    tokens: HashMap<String, (Instant, Vec<Option<String>>)>,
    subjects: HashMap<(TenantId, Uuid), (Instant, u32)>,
    tenants: HashMap<TenantId, (Instant, u32)>,
    swept: Option<Instant>,
}

/// A count that starts again after `window`: the entry for `key`, reset if
/// its window is over.
fn window_of<'m, K: std::hash::Hash + Eq + Clone>(
    map: &'m mut HashMap<K, (Instant, u32)>,
    key: &K,
    window: Duration,
    now: Instant,
) -> &'m mut u32 {
    if !map.contains_key(key) && map.len() >= MAX_TOKENS {
        forget_oldest(map);
    }
    let (began, count) = map.entry(key.clone()).or_insert((now, 0));
    if now.duration_since(*began) >= window {
        *began = now;
        *count = 0;
    }
    count
}

fn forget_oldest<K: std::hash::Hash + Eq + Clone, V>(map: &mut HashMap<K, (Instant, V)>) {
    let oldest = map
        .iter()
        .min_by_key(|(_, (at, _))| *at)
        .map(|(key, _)| key.clone());
    if let Some(oldest) = oldest {
        map.remove(&oldest);
    }
}

impl LocationRefusals {
    /// Whether a refusal is to be audited (and is now counted as audited).
    fn admit(&self, refusal: &Refusal<'_>, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *state;
        let minute = Duration::from_secs(60);
        if state
            .swept
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            state.swept = Some(now);
            state
                .tokens
                .retain(|_, (first, _)| now.duration_since(*first) < REMEMBERED);
            state
                .subjects
                .retain(|_, (began, _)| now.duration_since(*began) < REMEMBERED);
            state
                .tenants
                .retain(|_, (began, _)| now.duration_since(*began) < minute);
        }
        if let Some((first, networks)) = state.tokens.get(refusal.jti)
            && now.duration_since(*first) < REMEMBERED
            && (networks.contains(&refusal.network) || networks.len() >= NETWORKS_PER_TOKEN)
        {
            return false;
        }
        let subject = (refusal.tenant, refusal.subject);
        if *window_of(&mut state.subjects, &subject, REMEMBERED, now) >= PER_SUBJECT
            || *window_of(&mut state.tenants, &refusal.tenant, minute, now) >= PER_TENANT_MINUTE
        {
            return false;
        }
        *window_of(&mut state.subjects, &subject, REMEMBERED, now) += 1;
        *window_of(&mut state.tenants, &refusal.tenant, minute, now) += 1;
        if !state.tokens.contains_key(refusal.jti) && state.tokens.len() >= MAX_TOKENS {
            forget_oldest(&mut state.tokens);
        }
        let entry = state
            .tokens
            .entry(refusal.jti.to_string())
            .or_insert_with(|| (now, Vec::new()));
        if now.duration_since(entry.0) >= REMEMBERED {
            *entry = (now, Vec::new());
        }
        entry.1.push(refusal.network.clone());
        true
    }

    /// Forgets an audit that did not land, so the next refusal tries again
    /// (a refusal that came meanwhile and was passed over is only logged).
    fn forget(&self, refusal: &Refusal<'_>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, networks)) = state.tokens.get_mut(refusal.jti) {
            networks.retain(|n| *n != refusal.network);
        }
        if let Some((_, count)) = state.subjects.get_mut(&(refusal.tenant, refusal.subject)) {
            *count = count.saturating_sub(1);
        }
        if let Some((_, count)) = state.tenants.get_mut(&refusal.tenant) {
            *count = count.saturating_sub(1);
        }
    }
}

/// The policies of a token's location fence (`cae_loc`): none when it has
/// none; an error when the claim is there but not a list of policy ids (a
/// token this node cannot read the fence of is refused, not let through).
fn fence_of(claims: &Map<String, Value>) -> Result<Vec<Uuid>, ()> {
    let Some(value) = claims.get("cae_loc") else {
        return Ok(Vec::new());
    };
    value
        .as_array()
        .ok_or(())?
        .iter()
        .map(|id| {
            id.as_str()
                .and_then(|id| Uuid::parse_str(id).ok())
                .ok_or(())
        })
        .collect()
}

impl Oidc {
    /// Refuses a token presented from outside its location fence (see the
    /// module): with a claims challenge to a client that handles them.
    pub(super) async fn check_location(
        &self,
        tenant: TenantId,
        issuer: &str,
        claims: &Map<String, Value>,
        client_address: Option<&str>,
    ) -> Result<(), BearerError> {
        let fence = fence_of(claims).map_err(|()| BearerError::InvalidToken)?;
        if fence.is_empty() {
            return Ok(());
        }
        let ip = client_address
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical());
        let set = self.access.policy_set(tenant).await.map_err(|error| {
            tracing::warn!(%error, "cannot read the policies to check an access token's location");
            BearerError::Server
        })?;
        let Some(policy) = set.fenced_out(&fence, ip, self.access.country_of(ip)) else {
            return Ok(());
        };
        // Only a token for Tessera's own resources is told of: whoever
        // received another application's token could otherwise make its
        // user's receivers hear of refusals at will.
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        if let Some(subject) = subject
            && super::inspect::for_own_resource(issuer, claims)
        {
            let refusal = Refusal {
                tenant,
                subject,
                jti: claims
                    .get("jti")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                network: ip.and_then(|ip| tessera_authn::lockout::network_of(&ip.to_string())),
            };
            if self.location_refusals.admit(&refusal, Instant::now()) {
                let audited = self
                    .audit_location_refusal(
                        tenant,
                        subject,
                        claims,
                        ip,
                        policy.id,
                        &policy.display_name,
                    )
                    .await;
                if !audited {
                    self.location_refusals.forget(&refusal);
                }
            } else {
                tracing::info!(%tenant, policy = %policy.id, "an access token was refused outside its locations again");
            }
        }
        // A sign-in after now: the authorization endpoint decides again, at
        // the address the client is at.
        Err(super::inspect::refused_since(claims, self.now()))
    }

    /// `accessToken.refuse` for a token refused at an address: about its
    /// user (or workload), with the policy, the client and the address.
    /// Whether it was written.
    async fn audit_location_refusal(
        &self,
        tenant: TenantId,
        subject: Uuid,
        claims: &Map<String, Value>,
        ip: Option<IpAddr>,
        policy: Uuid,
        policy_name: &str,
    ) -> bool {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
        let (kind, name) = if text("idtyp") == "app" {
            (Kind::ServicePrincipal, text("client_id"))
        } else {
            (Kind::User, text("preferred_username"))
        };
        let mut ctx = crate::kernel::system_context(tenant, "continuous access evaluation");
        ctx.client_address = ip.map(|ip| ip.to_string());
        let event = EventDraft::new(AuditAction::AccessTokenRefuse)
            .on(kind, subject, name)
            .details(json!({
                "reason": "location",
                "policyId": policy,
                "policyName": policy_name,
                "appId": text("client_id"),
                "audience": claims.get("aud"),
                "sessionId": claims.get("sid"),
                "address": ip.map(|ip| ip.to_string()),
            }));
        let result: crate::ServiceResult<()> = async {
            let tx = self.write(&ctx).await?;
            self.commit(tx, &ctx, event).await
        }
        .await;
        match result {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%tenant, %error, "cannot audit an access token refused at its address");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal<'a>(
        tenant: u128,
        subject: u128,
        jti: &'a str,
        network: Option<&str>,
    ) -> Refusal<'a> {
        Refusal {
            tenant: TenantId(Uuid::from_u128(tenant)),
            subject: Uuid::from_u128(subject),
            jti,
            network: network.map(str::to_string),
        }
    }

    #[test]
    fn refusals_are_audited_once_per_token_and_network() {
        let refusals = LocationRefusals::default();
        let now = Instant::now();
        let admit =
            |jti, network, subject, at| refusals.admit(&refusal(1, subject, jti, network), at);
        assert!(admit("t1", Some("203.0.113.0/24"), 1, now));
        assert!(!admit("t1", Some("203.0.113.0/24"), 1, now));
        assert!(admit("t1", Some("198.51.100.0/24"), 1, now));
        assert!(admit("t2", None, 2, now));
        assert!(!admit("t2", None, 2, now));
        // A few networks per token, then no more.
        assert!(admit("t1", Some("192.0.2.0/24"), 1, now));
        assert!(admit("t1", Some("2001:db8::/64"), 1, now));
        assert!(!admit("t1", Some("2001:db9::/64"), 1, now));
        // Forgotten after a while; a failed audit is forgotten at once.
        let later = now + REMEMBERED + Duration::from_secs(1);
        assert!(admit("t1", Some("203.0.113.0/24"), 1, later));
        refusals.forget(&refusal(1, 1, "t1", Some("203.0.113.0/24")));
        assert!(admit("t1", Some("203.0.113.0/24"), 1, later));
    }

    #[test]
    fn a_subject_and_a_tenant_get_budgets_and_others_keep_theirs() {
        let refusals = LocationRefusals::default();
        let now = Instant::now();
        // One user's tokens: a few, then no more for a while.
        for i in 0..PER_SUBJECT {
            assert!(refusals.admit(&refusal(1, 7, &format!("u{i}"), None), now));
        }
        assert!(!refusals.admit(&refusal(1, 7, "one more", None), now));
        assert!(refusals.admit(&refusal(1, 8, "someone else", None), now));
        // A failed audit gives its place back.
        refusals.forget(&refusal(1, 7, "u0", None));
        assert!(refusals.admit(&refusal(1, 7, "one more", None), now));
        // A tenant: so many a minute.
        let noisy = 2;
        for i in 0..PER_TENANT_MINUTE {
            let subject = u128::from(i) + 100;
            assert!(refusals.admit(&refusal(noisy, subject, &format!("t{i}"), None), now));
        }
        assert!(!refusals.admit(&refusal(noisy, 99, "another", None), now));
        assert!(refusals.admit(&refusal(3, 99, "theirs", None), now));
        let next_minute = now + Duration::from_secs(61);
        assert!(refusals.admit(&refusal(noisy, 99, "another", None), next_minute));
    }

    #[test]
    fn the_oldest_token_is_forgotten_when_full() {
        let refusals = LocationRefusals::default();
        let now = Instant::now();
        for i in 0..MAX_TOKENS {
            // Spread over tenants and users, to stay within their budgets.
            let jti = format!("t{i}");
            let at = now + Duration::from_micros(i as u64);
            assert!(refusals.admit(&refusal(i as u128 / 100, i as u128, &jti, None), at));
        }
        let at = now + Duration::from_millis(500);
        assert!(refusals.admit(&refusal(999_999, 1, "new", None), at));
        // t0 (the oldest) went; the newest stays remembered.
        assert!(refusals.admit(&refusal(999_998, 2, "t0", None), at));
        assert!(!refusals.admit(&refusal(999_997, 3, "new", None), at));
    }

    #[test]
    fn fence_is_read_strictly() {
        let id = Uuid::new_v4();
        let of = |v: Value| fence_of(v.as_object().unwrap());
        assert_eq!(of(json!({ "cae_loc": [id.to_string()] })), Ok(vec![id]));
        assert_eq!(of(json!({})), Ok(vec![]));
        assert_eq!(of(json!({ "cae_loc": [id.to_string(), "x"] })), Err(()));
        assert_eq!(of(json!({ "cae_loc": "x" })), Err(()));
    }
}

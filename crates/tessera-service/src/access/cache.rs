//! The per-node cache of compiled policy sets: rebuilt when the audit trail shows a
//! change that matters (policies, locations, security defaults, groups, users),
//! checked at most once a second, so a change made on one node is enforced by every
//! node within about a second, and a decision itself does no I/O. A failed rebuild
//! keeps the last good set in force.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use tessera_ca::engine::{GroupGraph, PolicySet};
use tessera_ca::model::{NamedLocationSpec, PolicySpec};
use tessera_core::TenantId;
use tessera_directory::audit_action::AuditAction;
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use super::{
    Access, Cached, CountryLookup, RECHECK, all_locations, all_policies, security_defaults,
};
use crate::error::ServiceResult;

impl Access {
    /// Sets the operator's country database.
    pub fn set_country_lookup(&self, lookup: Arc<dyn CountryLookup>) {
        let _ = self.ca.country.set(lookup);
    }

    pub(super) fn forget_policy_set(&self, tenant: TenantId) {
        if let Ok(mut tenants) = self.ca.tenants.lock() {
            tenants.remove(&tenant);
        }
    }

    /// The tenant's compiled policies, rebuilt when the audit trail shows a
    /// relevant change (checked at most once a second).
    pub(crate) async fn policy_set(&self, tenant: TenantId) -> ServiceResult<Arc<PolicySet>> {
        let cached = self
            .ca
            .tenants
            .lock()
            .ok()
            .and_then(|t| t.get(&tenant).cloned());
        if let Some(cached) = &cached
            && cached.checked.elapsed() < RECHECK
        {
            return Ok(cached.set.clone());
        }
        let lock = match self.ca.rebuilding.lock() {
            Ok(mut locks) => locks.entry(tenant).or_default().clone(),
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        };
        let _rebuilding = lock.lock().await;
        // Another request may have checked while this one waited.
        let cached = self
            .ca
            .tenants
            .lock()
            .ok()
            .and_then(|t| t.get(&tenant).cloned());
        if let Some(cached) = &cached
            && cached.checked.elapsed() < RECHECK
        {
            return Ok(cached.set.clone());
        }
        let head = self
            .store
            .audit_head(tenant)
            .await?
            .map(|h| h.seq)
            .unwrap_or(0);
        if let Some(cached) = &cached {
            let mut stale = false;
            if head != cached.seq {
                let events = self.store.audit_scan(tenant, cached.seq, 1000).await?;
                stale = events.len() >= 1000
                    || events
                        .iter()
                        .any(|e| AuditAction::event_affects_policies(&e.action, &e.body));
            }
            if !stale {
                let fresh = Arc::new(Cached {
                    set: cached.set.clone(),
                    seq: head,
                    checked: Instant::now(),
                });
                if let Ok(mut tenants) = self.ca.tenants.lock() {
                    tenants.insert(tenant, fresh);
                }
                return Ok(cached.set.clone());
            }
        }
        let built = self.build_policy_set(tenant).await;
        let set = match (built, &cached) {
            (Ok(mut set), _) => {
                set.version = head;
                Arc::new(set)
            }
            // A failed rebuild (the database, a group too large to expand) keeps
            // the last good set in force rather than failing every sign-in.
            (Err(error), Some(cached)) => {
                tracing::error!(%error, %tenant, "cannot rebuild the Conditional Access policies; the last ones stay in force");
                return Ok(cached.set.clone());
            }
            (Err(error), None) => return Err(error),
        };
        if let Ok(mut tenants) = self.ca.tenants.lock() {
            tenants.insert(
                tenant,
                Arc::new(Cached {
                    set: set.clone(),
                    seq: head,
                    checked: Instant::now(),
                }),
            );
        }
        Ok(set)
    }

    /// Loads and compiles a tenant's policies.
    async fn build_policy_set(&self, tenant: TenantId) -> ServiceResult<PolicySet> {
        let mut reader = self.reader().await?;
        let policies: Vec<(Uuid, PolicySpec)> = all_policies(reader.as_mut(), tenant)
            .await?
            .into_iter()
            .map(|p| (p.id, p.spec))
            .collect();
        let locations: Vec<(Uuid, NamedLocationSpec)> = all_locations(reader.as_mut(), tenant)
            .await?
            .into_iter()
            .map(|l| (l.id, l.spec))
            .collect();
        let defaults = security_defaults(reader.as_mut(), tenant).await?;
        let graph = group_graph(reader.as_mut(), tenant, &policies).await?;
        Ok(PolicySet::compile(
            &policies,
            &locations,
            &graph,
            defaults.is_enabled,
        ))
    }
}

/// Groups the policies name, with everything nested under them.
async fn group_graph(
    reader: &mut dyn Reader,
    tenant: TenantId,
    policies: &[(Uuid, PolicySpec)],
) -> ServiceResult<GroupGraph> {
    let mut named = HashSet::new();
    for (_, policy) in policies {
        if let Some(users) = &policy.conditions.users {
            for g in users.include_groups.iter().chain(&users.exclude_groups) {
                if let Ok(id) = Uuid::parse_str(g) {
                    named.insert(id);
                }
            }
        }
    }
    let mut graph = GroupGraph::default();
    for group in named {
        if graph.users.contains_key(&group) || graph.groups.contains_key(&group) {
            continue;
        }
        for link in crate::directory::groups::transitive_member_links(reader, tenant, group).await?
        {
            match link.target_kind {
                Kind::User => graph
                    .users
                    .entry(link.source)
                    .or_default()
                    .push(link.target),
                Kind::Group => graph
                    .groups
                    .entry(link.source)
                    .or_default()
                    .push(link.target),
                _ => {}
            }
        }
    }
    Ok(graph)
}

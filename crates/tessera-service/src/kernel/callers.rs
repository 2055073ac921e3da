//! A node's cache of what personal access tokens authenticate as.
//!
//! Authenticating a token reads the token, its owner, their groups, role
//! assignments and PIM schedules, and the protected actions: six reads on every
//! request. Here a caller is kept, by the SHA-256 of its token, with the
//! tenant's *callers epoch* read before it was loaded: a counter that every
//! change able to alter a caller (anything but the few actions
//! [`invalidates`] lets pass: a user created, a delivery recorded, a
//! provisioning outcome) advances in its own transaction
//! (`WriteTx::counter_bump`). A cached caller is used only while the epoch is
//! what it was, so a revoked token, a disabled owner or a removed role is
//! refused on every node by the first request after the change commits: one
//! read (the epoch) instead of six. Callers whose rights change with time alone
//! (anyone with a PIM schedule, directly or through a group) are never kept,
//! nor is anything past its token's expiry or a minute old.

use std::collections::HashMap;
use std::sync::Mutex;

use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;

use crate::Caller;

/// The counter that moves with every change a cached caller could miss.
pub(crate) const EPOCH_KEY: &str = "callers-epoch";
/// The longest a caller is kept, whatever the epoch says.
const MAX_AGE_SECONDS: i64 = 60;
/// Callers kept at most (the cache is emptied when full).
const MAX_ENTRIES: usize = 10_000;

/// Whether a change with this action must advance the callers epoch: all but
/// those that cannot change what an existing token authenticates as, and come
/// in bulk.
pub(crate) fn invalidates(action: AuditAction) -> bool {
    !matches!(
        action,
        AuditAction::UserCreate
            | AuditAction::NotificationDeliver
            | AuditAction::ProvisioningExport
            | AuditAction::ProvisioningCycle
            | AuditAction::ProvisioningRunCreate
            | AuditAction::ProvisioningRunUpdate
            | AuditAction::LifecycleRunCreate
            | AuditAction::LifecycleRunUpdate
            | AuditAction::UserSignInReport
    )
}

struct Entry {
    tenant: TenantId,
    caller: Caller,
    epoch: i64,
    until: Timestamp,
}

/// Authenticated callers by the SHA-256 of their token.
#[derive(Default)]
pub(crate) struct CallerCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl CallerCache {
    /// The caller kept for this token, if it is still good at `epoch`.
    pub fn get(
        &self,
        key: &[u8; 32],
        tenant: TenantId,
        epoch: i64,
        now: Timestamp,
    ) -> Option<Caller> {
        let mut entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some(entry) if entry.tenant == tenant && entry.epoch == epoch && now < entry.until => {
                Some(entry.caller.clone())
            }
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps a caller loaded at `epoch` (read before it was loaded), until
    /// `expires` at the latest.
    pub fn put(
        &self,
        key: [u8; 32],
        tenant: TenantId,
        caller: Caller,
        epoch: i64,
        now: Timestamp,
        expires: Timestamp,
    ) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let until = now.plus_seconds(MAX_AGE_SECONDS).min(expires);
        entries.insert(
            key,
            Entry {
                tenant,
                caller,
                epoch,
                until,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_is_kept_while_its_epoch_and_token_last() {
        let cache = CallerCache::default();
        let tenant = TenantId(uuid::Uuid::from_u128(1));
        let caller = crate::kernel::system_context(TenantId(uuid::Uuid::nil()), "test").caller;
        let now = Timestamp::from_unix_micros(1_000_000_000_000);
        cache.put([1; 32], tenant, caller, 5, now, now.plus_seconds(30));
        assert!(cache.get(&[1; 32], tenant, 5, now).is_some());
        assert!(
            cache
                .get(&[1; 32], TenantId(uuid::Uuid::from_u128(2)), 5, now)
                .is_none(),
            "another tenant's"
        );
        assert!(
            cache.get(&[1; 32], tenant, 6, now).is_none(),
            "the epoch moved"
        );
        assert!(
            cache.get(&[1; 32], tenant, 5, now).is_none(),
            "and it is forgotten"
        );
        cache.put(
            [2; 32],
            tenant,
            crate::kernel::system_context(TenantId(uuid::Uuid::nil()), "test").caller,
            5,
            now,
            now.plus_seconds(3600),
        );
        assert!(
            cache
                .get(&[2; 32], tenant, 5, now.plus_seconds(59))
                .is_some()
        );
        assert!(
            cache
                .get(&[2; 32], tenant, 5, now.plus_seconds(60))
                .is_none(),
            "a minute at most"
        );
        cache.put(
            [3; 32],
            tenant,
            crate::kernel::system_context(TenantId(uuid::Uuid::nil()), "test").caller,
            5,
            now,
            now.plus_seconds(10),
        );
        assert!(
            cache
                .get(&[3; 32], tenant, 5, now.plus_seconds(10))
                .is_none(),
            "not past the token"
        );
        assert!(invalidates(AuditAction::UserUpdate));
        assert!(invalidates(AuditAction::RoleAssignmentDelete));
        assert!(!invalidates(AuditAction::UserCreate));
    }
}

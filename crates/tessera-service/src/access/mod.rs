//! The access context: Conditional Access. Policies, named locations, terms of use,
//! risk and the security-defaults switch as audited records (`records.rs`); import
//! of Entra exports (`import.rs`); What-If (`what_if.rs`); the compiled policy set
//! each node caches (`cache.rs`); and the decision, with the facts a sign-in brings
//! (`facts.rs`). This file holds the context, its cache's state and the stored
//! shapes.
//!
//! May call: the kernel, and the directory's read functions (`crate::directory::…`
//! free functions over a `Reader`); it holds no handle of another context.
//!
//! Records: policies and named locations keep their Graph ids (an import with
//! the same ids updates them); terms acceptances have key1 `<termsId>:<userId>`;
//! risk states key1 `<principalId>`; the security defaults switch is the
//! `securityDefaults` tenant policy.
//!
//! The compiled set is rebuilt when the audit trail shows a change that matters
//! (policies, locations, security defaults, groups, users): each node reads the
//! chain head at most once a second, so a change made on one node is enforced by
//! every node within about a second, and a decision itself does no I/O.

mod cache;
mod facts;
mod import;
mod records;
mod what_if;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tessera_ca::engine::PolicySet;
use tessera_ca::model::{NamedLocationSpec, PolicySpec, TermsOfUseSpec};
use tessera_core::{TenantId, Timestamp};
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use crate::codec;
use crate::error::ServiceResult;
use crate::kernel::tenant_settings::{TenantSetting, read_setting};
use tessera_directory::audit_action::AuditAction;

pub(crate) use facts::{Decided, UserAccess, app_target, contexts_of};
pub use import::{
    ImportDocument, ImportRequest, ImportResult, PlannedItem, SECURITY_DEFAULTS_STAY_ON,
};
pub use what_if::{NO_COUNTRY_DATABASE, WhatIf};

const DEFAULTS_KEY: &str = "securityDefaults";
const READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "modifiedDateTime",
    "contentVersion",
];
/// How long a node trusts its compiled set before looking at the audit trail.
const RECHECK: Duration = Duration::from_secs(1);
/// The operator's country database (a MaxMind-format file), as the engine uses it.
pub trait CountryLookup: Send + Sync {
    /// The ISO 3166-1 alpha-2 country of an address, if the database places it.
    fn country(&self, ip: IpAddr) -> Option<[u8; 2]>;
}

struct Cached {
    set: Arc<PolicySet>,
    seq: i64,
    checked: Instant,
}

#[derive(Default)]
pub(crate) struct CaCache {
    tenants: Mutex<HashMap<TenantId, Arc<Cached>>>,
    /// One rebuild at a time per tenant.
    rebuilding: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>,
    country: OnceLock<Arc<dyn CountryLookup>>,
}

/// The access context: Conditional Access records (policies, named locations, terms
/// of use, risk, security defaults), import and What-If, the per-node cache of
/// compiled policy sets, the facts of a sign-in and the decision over them.
pub struct Access {
    k: Arc<crate::kernel::Kernel>,
    ca: CaCache,
    /// User, sign-in and workload risk come from Identity Protection.
    risk: Arc<crate::Risk>,
}

crate::kernel::on_kernel!(Access);

impl Access {
    pub(crate) fn new(k: Arc<crate::kernel::Kernel>, risk: Arc<crate::Risk>) -> Access {
        Access {
            k,
            ca: CaCache::default(),
            risk,
        }
    }
}

// ---------------------------------------------------------------------------------
// Stored shapes

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalAccessPolicy {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: PolicySpec,
    pub created_date_time: Timestamp,
    pub modified_date_time: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedLocation {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: NamedLocationSpec,
    pub created_date_time: Timestamp,
    pub modified_date_time: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TermsOfUse {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: TermsOfUseSpec,
    /// Grows when the text changes: acceptances of older versions no longer count.
    pub content_version: i64,
    pub created_date_time: Timestamp,
    pub modified_date_time: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Acceptance {
    terms_id: Uuid,
    user_id: Uuid,
    content_version: i64,
    accepted_date_time: Timestamp,
}

/// Graph's `identitySecurityDefaultsEnforcementPolicy`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityDefaults {
    pub is_enabled: bool,
}

impl Default for SecurityDefaults {
    fn default() -> SecurityDefaults {
        SecurityDefaults { is_enabled: true }
    }
}

pub(crate) async fn security_defaults(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<SecurityDefaults> {
    read_setting(reader, tenant).await
}

impl crate::kernel::tenant_settings::sealed::Sealed for SecurityDefaults {}

impl TenantSetting for SecurityDefaults {
    const KEY: &'static str = DEFAULTS_KEY;
    const UPDATED: AuditAction = AuditAction::SecurityDefaultsUpdate;
}

async fn all_policies(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<Vec<ConditionalAccessPolicy>> {
    codec::list_all(reader, tenant, Kind::ConditionalAccessPolicy, None)
        .await?
        .iter()
        .map(codec::data)
        .collect()
}

async fn all_locations(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<Vec<NamedLocation>> {
    codec::list_all(reader, tenant, Kind::NamedLocation, None)
        .await?
        .iter()
        .map(codec::data)
        .collect()
}

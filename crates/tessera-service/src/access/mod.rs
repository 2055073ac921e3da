//! Conditional Access in the directory: policies, named locations, terms of use
//! and risk as records; import of Entra exports; the compiled policy set each node
//! caches; and the decision, with the facts a sign-in brings.
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

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tessera_directory::audit_action::AuditAction;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_authn::strength::{self, Mode, UsedMethod};
use tessera_ca::engine::{self, ClientApp, Decision, GroupGraph, PolicySet, Target};
use tessera_ca::explain::Explanation;
use tessera_ca::facts::{FactSubject, SignInFacts, platform_of};
use tessera_ca::import::{self, Export, Known};
use tessera_ca::model::{
    NamedLocationSpec, Platform, PolicySpec, PolicyState, RiskLevel, TermsOfUseSpec,
};
use tessera_ca::validate;
use tessera_core::{TenantId, Timestamp};
use tessera_directory::authz::Target as AuthzTarget;
use tessera_directory::model::{
    ApplicationData, DeviceSpec, DirectoryScope, ServicePrincipalData, UserSpec, UserType,
};
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_store::{Kind, Reader, Record};
use uuid::Uuid;

use crate::codec::{self, Keys};
use crate::directory::{auth_methods, auth_policy, builtin};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

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

/// How long a node reuses a workload's risk (a token request must not cost a
/// query more than the grant cache does).
const WORKLOAD_RISK_SECONDS: u64 = 5;
const MAX_CACHED_RISKS: usize = 10_000;

#[derive(Default)]
pub(crate) struct CaCache {
    tenants: Mutex<HashMap<TenantId, Arc<Cached>>>,
    /// One rebuild at a time per tenant.
    rebuilding: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>,
    country: OnceLock<Arc<dyn CountryLookup>>,
    workload_risk: Mutex<HashMap<(TenantId, Uuid), (Instant, RiskLevel)>>,
}

/// The access context: Conditional Access records (policies, named locations, terms
/// of use, risk, security defaults), import and What-If, the per-node cache of
/// compiled policy sets, the facts of a sign-in and the decision over them.
///
/// May call: the kernel, and the directory's read functions (it holds no handle of
/// another context).
pub struct Access {
    k: Arc<crate::kernel::Kernel>,
    ca: CaCache,
}

crate::kernel::on_kernel!(Access);

impl Access {
    pub(crate) fn new(k: Arc<crate::kernel::Kernel>) -> Access {
        Access {
            k,
            ca: CaCache::default(),
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

/// A principal's risk, as an identity protection source reported it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RiskState {
    pub principal_id: Uuid,
    /// User risk, or a workload's service principal risk.
    pub risk_level: RiskLevel,
    /// Risk of the principal's sign-ins until `sign_in_risk_expires_date_time`.
    pub sign_in_risk_level: RiskLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_risk_expires_date_time: Option<Timestamp>,
    pub modified_date_time: Timestamp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RiskUpdate {
    #[serde(default)]
    risk_level: Option<RiskLevel>,
    #[serde(default)]
    sign_in_risk_level: Option<RiskLevel>,
    /// How long the sign-in risk holds (default an hour, at most a day).
    #[serde(default)]
    sign_in_risk_seconds: Option<i64>,
}

/// An import request: the export's documents, already read as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportRequest {
    pub policies: Vec<ImportDocument>,
    #[serde(default)]
    pub named_locations: Vec<ImportDocument>,
    /// `Groups/*.json`: the exported groups, matched here by display name.
    #[serde(default)]
    pub groups: Vec<Value>,
    #[serde(default)]
    pub migration_table: Option<Value>,
    /// Import what is ready and leave out what is not.
    #[serde(default)]
    pub skip_errors: bool,
    /// Only report.
    #[serde(default)]
    pub dry_run: bool,
    /// Import every policy in this state (e.g. report-only).
    #[serde(default)]
    pub state: Option<PolicyState>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportDocument {
    pub file: String,
    pub document: Value,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImportResult {
    pub imported: bool,
    /// Only a report was asked for: `plannedPolicies` and `plannedNamedLocations`
    /// say what the same import without `dryRun` would write.
    pub dry_run: bool,
    pub policies_imported: usize,
    pub named_locations_imported: usize,
    /// What this import writes (for a dry run: would write), by id and name; empty
    /// when items have errors and `skipErrors` is not set.
    pub planned_policies: Vec<PlannedItem>,
    pub planned_named_locations: Vec<PlannedItem>,
    /// About the tenant rather than one item, e.g. security defaults staying on
    /// beside the imported policies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Per named location and policy: status, what was mapped, warnings, errors.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub report: import::Report,
}

/// A policy or named location an import writes.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PlannedItem {
    pub id: Uuid,
    pub display_name: String,
}

/// The import's warning while security defaults are on.
pub const SECURITY_DEFAULTS_STAY_ON: &str = "security defaults are on and stay on beside the imported policies: they require multifactor authentication of every administrator and for the management API, also of accounts the policies exclude (break-glass accounts), and block legacy clients; once the imported policies do what you want, turn them off with `tessera policy security-defaults --disable` (PATCH /api/v1/policies/identitySecurityDefaultsEnforcementPolicy {\"isEnabled\": false})";

/// A What-If question: a sign-in described instead of made.
#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhatIf {
    #[serde(default)]
    pub user_id: Option<Uuid>,
    #[serde(default)]
    pub service_principal_id: Option<Uuid>,
    /// The application signed in to: its application (client) id, its object id,
    /// its service principal's id or its display name; or `MicrosoftAdminPortals`
    /// for management. An application that does not exist is refused.
    #[serde(default)]
    pub app_id: Option<String>,
    /// The resource's application (client) id or object id, when the client asks
    /// for another application's token.
    #[serde(default)]
    pub resource_app_id: Option<Uuid>,
    /// `registerSecurityInfo` or `registerOrJoinDevices`.
    #[serde(default)]
    pub user_action: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub ip_address: Option<IpAddr>,
    /// Overrides the country database.
    #[serde(default)]
    pub country: Option<String>,
    /// Overrides the platform the device or the User-Agent names.
    #[serde(default)]
    pub platform: Option<String>,
    /// The browser's or client's User-Agent: names the platform, as in a real
    /// sign-in from a device that is not registered.
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub device_id: Option<Uuid>,
    #[serde(default)]
    pub client_app_type: Option<String>,
    /// `none`, `low`, `medium` or `high`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub sign_in_risk_level: Option<RiskLevel>,
    /// The user's (or the workload's) risk: `none`, `low`, `medium` or `high`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub user_risk_level: Option<RiskLevel>,
    #[serde(default)]
    pub authentication_contexts: Vec<String>,
    #[serde(default)]
    pub device_code_flow: bool,
    /// Strengths the sign-in met (default: none), with every strength they imply
    /// (phishing-resistant MFA meets MFA too).
    #[serde(default)]
    pub satisfied_strengths: Vec<Uuid>,
    /// Methods the sign-in used (`password`, `softwareOath`, `fido2`...): the
    /// strengths they reach are met, as in a real sign-in.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub authentication_methods: Vec<Mode>,
}

/// A user's sign-in to decide, as a flow describes it.
pub(crate) struct UserAccess<'a> {
    pub user: Uuid,
    pub target: Target,
    pub auth_contexts: Vec<String>,
    pub client_app: ClientApp,
    pub client_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// SHA-256 (hex) of the client certificate, naming a registered device.
    pub device_thumbprint: Option<&'a str>,
    pub strengths: &'a [Uuid],
    pub auth_time: Option<Timestamp>,
    pub password_changed: bool,
    pub device_code_flow: bool,
}

/// The applications a request is for: the client, and the resource when it names
/// one of this tenant's applications by id (a policy for either applies);
/// management for the command line and the management API.
pub(crate) fn app_target(client_id: &str, resource_app: Option<Uuid>, management: bool) -> Target {
    let client = Uuid::parse_str(client_id).unwrap_or_default();
    Target::App {
        app_id: client,
        resource: resource_app.filter(|r| *r != client),
        admin_portal: management || builtin::is_management_client(client),
    }
}

/// Authentication contexts (`c1`..) among requested `acr` values.
pub(crate) fn contexts_of(acr_values: &[String]) -> Vec<String> {
    acr_values
        .iter()
        .filter(|a| validate::auth_context_number(a).is_some())
        .cloned()
        .collect()
}

/// A decision with the set that made it (for explanations and remedies).
pub(crate) struct Decided {
    pub decision: Decision,
    pub set: Arc<PolicySet>,
}

impl Decided {
    pub fn explain(&self) -> Explanation {
        self.decision.explain(&self.set)
    }

    /// Entra's `conditionalAccessStatus`: `failure` when blocked or unmet,
    /// `success` when an enforced policy applied and is met, else `notApplied`.
    pub fn status(&self) -> &'static str {
        match self.decision.outcome {
            engine::Outcome::Block | engine::Outcome::Interrupt => "failure",
            engine::Outcome::Allow if self.decision.enforced().next().is_some() => "success",
            engine::Outcome::Allow => "notApplied",
        }
    }

    /// The explanation as the sign-in log stores it: what repeats with every entry
    /// is left out. The policy set is named by its version (the audit sequence it
    /// was built after) and only the policies that applied, enforced or report-only,
    /// are listed; the others are counted (`notAppliedPolicies`). No session
    /// controls is no `sessionControls`.
    pub fn log_value(&self) -> Value {
        let mut explanation = self.explain();
        let all = explanation.policies.len();
        explanation.policies.retain(|p| {
            !matches!(
                p.result,
                engine::PolicyResultKind::NotApplied
                    | engine::PolicyResultKind::ReportOnlyNotApplied
            )
        });
        let not_applied = all - explanation.policies.len();
        let mut value = serde_json::to_value(explanation).unwrap_or(Value::Null);
        if let Some(fields) = value.as_object_mut() {
            if fields.get("sessionControls") == Some(&json!({})) {
                fields.remove("sessionControls");
            }
            fields.insert("policySetVersion".to_string(), self.set.version.into());
            fields.insert("notAppliedPolicies".to_string(), not_applied.into());
        }
        value
    }
}

pub(crate) async fn security_defaults(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<SecurityDefaults> {
    match reader
        .get_by_key1(tenant, Kind::AuthPolicy, DEFAULTS_KEY)
        .await?
    {
        Some(record) => codec::data(&record),
        None => Ok(SecurityDefaults::default()),
    }
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

fn policy_record(
    policy: &ConditionalAccessPolicy,
    version: Option<&Record>,
) -> ServiceResult<Record> {
    let keys = Keys {
        key1: None,
        key2: None,
        sort_key: codec::sort_key(&policy.spec.display_name),
    };
    match version {
        Some(record) => codec::next_version(record, policy.modified_date_time, keys, policy),
        None => codec::new_record(
            Kind::ConditionalAccessPolicy,
            policy.id,
            policy.created_date_time,
            keys,
            policy,
        ),
    }
}

fn location_record(location: &NamedLocation, version: Option<&Record>) -> ServiceResult<Record> {
    let keys = Keys {
        key1: None,
        key2: None,
        sort_key: codec::sort_key(location.spec.display_name()),
    };
    match version {
        Some(record) => codec::next_version(record, location.modified_date_time, keys, location),
        None => codec::new_record(
            Kind::NamedLocation,
            location.id,
            location.created_date_time,
            keys,
            location,
        ),
    }
}

fn validation(errors: tessera_directory::ValidationErrors) -> ServiceError {
    ServiceError::from(errors)
}

/// Reads a policy body as Graph clients send it.
fn parse_policy(body: Value) -> ServiceResult<PolicySpec> {
    let normalized = import::normalize_policy(body);
    if let Some(first) = normalized.unsupported.first() {
        return Err(ServiceError::invalid(
            first.field.clone(),
            first.message.clone(),
        ));
    }
    let spec: PolicySpec =
        import::read(&normalized.value).map_err(|f| ServiceError::invalid(f.field, f.message))?;
    validate::policy(&spec).map_err(validation)?;
    Ok(spec)
}

fn parse_location(body: Value) -> ServiceResult<NamedLocationSpec> {
    let normalized = import::normalize_location(body);
    if let Some(first) = normalized.unsupported.first() {
        return Err(ServiceError::invalid(
            first.field.clone(),
            first.message.clone(),
        ));
    }
    let spec: NamedLocationSpec =
        import::read(&normalized.value).map_err(|f| ServiceError::invalid(f.field, f.message))?;
    validate::named_location(&spec).map_err(validation)?;
    Ok(spec)
}

/// Refuses references to groups, users, locations, terms, strengths and workloads
/// that do not exist (applications and roles may: they match nothing).
async fn check_references(
    reader: &mut dyn Reader,
    tenant: TenantId,
    spec: &PolicySpec,
) -> ServiceResult<()> {
    let c = &spec.conditions;
    let ids = |list: &[String]| -> Vec<(usize, Uuid)> {
        list.iter()
            .enumerate()
            .filter_map(|(i, v)| Uuid::parse_str(v).ok().map(|id| (i, id)))
            .collect()
    };
    if let Some(users) = &c.users {
        for (field, list, kind) in [
            ("includeUsers", &users.include_users, Kind::User),
            ("excludeUsers", &users.exclude_users, Kind::User),
            ("includeGroups", &users.include_groups, Kind::Group),
            ("excludeGroups", &users.exclude_groups, Kind::Group),
        ] {
            for (index, id) in ids(list) {
                if reader.get(tenant, kind, id).await?.is_none() {
                    return Err(ServiceError::invalid(
                        format!("conditions.users.{field}[{index}]"),
                        format!("no {} has the id {id}", kind.as_str()),
                    ));
                }
            }
        }
    }
    if let Some(workloads) = &c.client_applications {
        for (field, list) in [
            (
                "includeServicePrincipals",
                &workloads.include_service_principals,
            ),
            (
                "excludeServicePrincipals",
                &workloads.exclude_service_principals,
            ),
        ] {
            for (index, id) in ids(list) {
                if reader
                    .get(tenant, Kind::ServicePrincipal, id)
                    .await?
                    .is_none()
                {
                    return Err(ServiceError::invalid(
                        format!("conditions.clientApplications.{field}[{index}]"),
                        format!("no service principal has the id {id}"),
                    ));
                }
            }
        }
    }
    if let Some(locations) = &c.locations {
        for (field, list) in [
            ("includeLocations", &locations.include_locations),
            ("excludeLocations", &locations.exclude_locations),
        ] {
            for (index, id) in ids(list) {
                if reader.get(tenant, Kind::NamedLocation, id).await?.is_none() {
                    return Err(ServiceError::invalid(
                        format!("conditions.locations.{field}[{index}]"),
                        format!("no named location has the id {id}"),
                    ));
                }
            }
        }
    }
    if let Some(grant) = &spec.grant_controls {
        if let Some(strength) = &grant.authentication_strength
            && auth_policy::load_strength(reader, tenant, strength.id)
                .await?
                .is_none()
        {
            return Err(ServiceError::invalid(
                "grantControls.authenticationStrength.id",
                "no authentication strength has this id",
            ));
        }
        for (index, id) in ids(&grant.terms_of_use) {
            if reader.get(tenant, Kind::TermsOfUse, id).await?.is_none() {
                return Err(ServiceError::invalid(
                    format!("grantControls.termsOfUse[{index}]"),
                    "no terms of use have this id",
                ));
            }
        }
    }
    Ok(())
}

/// Policies that name `id` (a location or terms of use).
fn referencing(policies: &[ConditionalAccessPolicy], id: Uuid) -> Vec<String> {
    let id = id.to_string();
    policies
        .iter()
        .filter(|p| {
            let c = &p.spec.conditions;
            let in_locations = c.locations.as_ref().is_some_and(|l| {
                l.include_locations.contains(&id) || l.exclude_locations.contains(&id)
            });
            let in_terms = p
                .spec
                .grant_controls
                .as_ref()
                .is_some_and(|g| g.terms_of_use.contains(&id));
            in_locations || in_terms
        })
        .map(|p| p.spec.display_name.clone())
        .collect()
}

impl Access {
    /// Sets the operator's country database.
    pub fn set_country_lookup(&self, lookup: Arc<dyn CountryLookup>) {
        let _ = self.ca.country.set(lookup);
    }

    fn forget_policy_set(&self, tenant: TenantId) {
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

    /// The country of an address, from the operator's database.
    pub(crate) fn country_of(&self, ip: Option<IpAddr>) -> Option<[u8; 2]> {
        let lookup = self.ca.country.get()?;
        lookup.country(ip?)
    }

    /// What the directory knows about a user for a decision.
    pub(crate) async fn user_subject(
        &self,
        tenant: TenantId,
        user: Uuid,
    ) -> ServiceResult<(FactSubject, RiskLevel, Vec<Uuid>)> {
        let mut reader = self.reader().await?;
        let guest = match reader.get(tenant, Kind::User, user).await? {
            Some(record) => {
                let spec: UserSpec = codec::data(&record)?;
                spec.user_type == UserType::Guest
            }
            None => false,
        };
        // As in Entra, only tenant-wide assignments count for includeRoles and
        // excludeRoles: a role held in an administrative unit does not.
        let mut roles: Vec<Uuid> =
            crate::directory::roles::grants_of(reader.as_mut(), tenant, user)
                .await?
                .into_iter()
                .filter(|g| g.scope == DirectoryScope::Tenant)
                .map(|g| g.role_id)
                .collect();
        roles.sort_unstable();
        roles.dedup();
        let has_mfa_method = auth_methods::methods_of(reader.as_mut(), tenant, user)
            .await?
            .iter()
            .any(|m| matches!(m.data.mode(), Mode::SoftwareOath | Mode::Fido2));
        let (risk, sign_in_risk) = self.risk_of(reader.as_mut(), tenant, user).await?;
        let accepted = self.accepted_terms(reader.as_mut(), tenant, user).await?;
        Ok((
            FactSubject::User {
                id: user,
                roles,
                guest,
                risk,
                has_mfa_method,
            },
            sign_in_risk,
            accepted,
        ))
    }

    async fn risk_of(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        principal: Uuid,
    ) -> ServiceResult<(RiskLevel, RiskLevel)> {
        let Some(record) = reader
            .get_by_key1(tenant, Kind::RiskState, &principal.to_string())
            .await?
        else {
            return Ok((RiskLevel::None, RiskLevel::None));
        };
        let state: RiskState = codec::data(&record)?;
        let sign_in = match state.sign_in_risk_expires_date_time {
            Some(until) if until > self.now() => state.sign_in_risk_level,
            _ => RiskLevel::None,
        };
        Ok((state.risk_level, sign_in))
    }

    /// Terms of use the user accepted in their current version.
    async fn accepted_terms(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        user: Uuid,
    ) -> ServiceResult<Vec<Uuid>> {
        let acceptances = codec::list_all(
            reader,
            tenant,
            Kind::TermsAcceptance,
            Some(user.to_string()),
        )
        .await?;
        let mut accepted = Vec::new();
        for record in acceptances {
            let acceptance: Acceptance = codec::data(&record)?;
            if let Some(terms) = reader
                .get(tenant, Kind::TermsOfUse, acceptance.terms_id)
                .await?
            {
                let terms: TermsOfUse = codec::data(&terms)?;
                if terms.content_version == acceptance.content_version {
                    accepted.push(terms.id);
                }
            }
        }
        Ok(accepted)
    }

    /// The workload's facts: its risk (reused for a few seconds on this node; a
    /// change made here applies at once).
    pub(crate) async fn workload_subject(
        &self,
        tenant: TenantId,
        service_principal: Uuid,
    ) -> ServiceResult<FactSubject> {
        let key = (tenant, service_principal);
        let cached = self
            .ca
            .workload_risk
            .lock()
            .ok()
            .and_then(|c| c.get(&key).copied())
            .filter(|(at, _)| at.elapsed() < Duration::from_secs(WORKLOAD_RISK_SECONDS));
        let risk = match cached {
            Some((_, risk)) => risk,
            None => {
                let mut reader = self.reader().await?;
                let (risk, _) = self
                    .risk_of(reader.as_mut(), tenant, service_principal)
                    .await?;
                if let Ok(mut cache) = self.ca.workload_risk.lock() {
                    if cache.len() >= MAX_CACHED_RISKS {
                        cache.clear();
                    }
                    cache.insert(key, (Instant::now(), risk));
                }
                risk
            }
        };
        Ok(FactSubject::Workload {
            service_principal_id: service_principal,
            risk,
        })
    }

    /// The device a sign-in comes from, by its registered certificate.
    pub(crate) async fn device_by_certificate(
        &self,
        tenant: TenantId,
        thumbprint: Option<&str>,
    ) -> ServiceResult<Option<(Uuid, DeviceSpec)>> {
        let Some(thumbprint) = thumbprint else {
            return Ok(None);
        };
        let mut reader = self.reader().await?;
        let key = format!("cert:{}", thumbprint.to_ascii_lowercase());
        match reader.get_by_key1(tenant, Kind::Device, &key).await? {
            Some(record) => {
                let spec: DeviceSpec = codec::data(&record)?;
                Ok(spec.account_enabled.then_some((record.id, spec)))
            }
            None => Ok(None),
        }
    }

    /// The facts of a user's sign-in, from what the flow knows and the directory.
    pub(crate) async fn user_facts(
        &self,
        tenant: TenantId,
        input: UserAccess<'_>,
    ) -> ServiceResult<SignInFacts> {
        let (subject, sign_in_risk, accepted_terms) = self.user_subject(tenant, input.user).await?;
        let device = self
            .device_by_certificate(tenant, input.device_thumbprint)
            .await?;
        let platform = platform_of(device.as_ref().map(|(_, d)| d), input.user_agent);
        let ip = input
            .client_address
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical());
        let now = self.now();
        Ok(SignInFacts {
            subject,
            target: input.target,
            auth_contexts: input.auth_contexts,
            client_app: input.client_app,
            platform,
            ip,
            country: self.country_of(ip),
            device,
            sign_in_risk,
            device_code_flow: input.device_code_flow,
            strengths: input.strengths.to_vec(),
            auth_age_seconds: input
                .auth_time
                .map(|t| (now.unix_micros() - t.unix_micros()).max(0) / 1_000_000),
            password_changed: input.password_changed,
            accepted_terms,
        })
    }

    /// The facts of a workload's token request.
    pub(crate) async fn workload_facts(
        &self,
        tenant: TenantId,
        service_principal: Uuid,
        target: Target,
        client_address: Option<&str>,
    ) -> ServiceResult<SignInFacts> {
        let subject = self.workload_subject(tenant, service_principal).await?;
        let ip = client_address
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical());
        Ok(SignInFacts {
            subject,
            target,
            auth_contexts: Vec::new(),
            client_app: ClientApp::MobileAppsAndDesktopClients,
            platform: None,
            ip,
            country: self.country_of(ip),
            device: None,
            sign_in_risk: RiskLevel::None,
            device_code_flow: false,
            strengths: Vec::new(),
            auth_age_seconds: None,
            password_changed: false,
            accepted_terms: Vec::new(),
        })
    }

    /// Decides a sign-in.
    pub(crate) async fn decide(
        &self,
        tenant: TenantId,
        facts: &SignInFacts,
    ) -> ServiceResult<Decided> {
        let set = self.policy_set(tenant).await?;
        let decision = set.evaluate(&facts.sign_in());
        Ok(Decided { decision, set })
    }

    // -----------------------------------------------------------------------------
    // Policies

    pub async fn list_policies(
        &self,
        ctx: &Context,
    ) -> ServiceResult<Vec<ConditionalAccessPolicy>> {
        self.require(ctx, action::CA_POLICIES_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        all_policies(reader.as_mut(), ctx.tenant).await
    }

    pub async fn get_policy(
        &self,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<(ConditionalAccessPolicy, i64)> {
        self.require(ctx, action::CA_POLICIES_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        let record = codec::load(
            reader.as_mut(),
            ctx.tenant,
            Kind::ConditionalAccessPolicy,
            id,
        )
        .await?;
        Ok((codec::data(&record)?, record.version))
    }

    pub async fn create_policy(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<ConditionalAccessPolicy> {
        self.require(ctx, action::CA_POLICIES_MANAGE, &AuthzTarget::Tenant)?;
        let spec = parse_policy(body)?;
        let now = self.now();
        let policy = ConditionalAccessPolicy {
            id: Uuid::new_v4(),
            spec,
            created_date_time: now,
            modified_date_time: now,
        };
        let mut tx = self.write(ctx).await?;
        check_references(tx.as_mut(), ctx.tenant, &policy.spec).await?;
        tx.insert(ctx.tenant, &policy_record(&policy, None)?)
            .await?;
        let event = EventDraft::new(
            AuditAction::ConditionalAccessPolicyCreate,
            Kind::ConditionalAccessPolicy,
            policy.id,
            &policy.spec.display_name,
        )
        .details(serde_json::to_value(&policy.spec).unwrap_or(Value::Null));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        self.forget_policy_set(ctx.tenant);
        Ok(policy)
    }

    /// A JSON merge patch on a policy, validated like a create.
    pub async fn update_policy(
        &self,
        ctx: &Context,
        id: Uuid,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<ConditionalAccessPolicy> {
        self.require(ctx, action::CA_POLICIES_MANAGE, &AuthzTarget::Tenant)?;
        let mut tx = self.write(ctx).await?;
        let record =
            codec::load(tx.as_mut(), ctx.tenant, Kind::ConditionalAccessPolicy, id).await?;
        codec::check_if_match(&record, if_match)?;
        let mut policy: ConditionalAccessPolicy = codec::data(&record)?;
        let before = serde_json::to_value(&policy.spec).unwrap_or(Value::Null);
        let mut body = body;
        import::strip_annotations(&mut body);
        let merged = patch::merge_patch(&before, &body, READ_ONLY)?;
        let spec = parse_policy(merged)?;
        check_references(tx.as_mut(), ctx.tenant, &spec).await?;
        policy.spec = spec;
        policy.modified_date_time = self.now();
        tx.update(ctx.tenant, &policy_record(&policy, Some(&record))?)
            .await?;
        let after = serde_json::to_value(&policy.spec).unwrap_or(Value::Null);
        let event = EventDraft::new(
            AuditAction::ConditionalAccessPolicyUpdate,
            Kind::ConditionalAccessPolicy,
            id,
            &policy.spec.display_name,
        )
        .changes(patch::changes(&before, &after));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        self.forget_policy_set(ctx.tenant);
        Ok(policy)
    }

    pub async fn delete_policy(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        self.require(ctx, action::CA_POLICIES_MANAGE, &AuthzTarget::Tenant)?;
        let mut tx = self.write(ctx).await?;
        let record =
            codec::load(tx.as_mut(), ctx.tenant, Kind::ConditionalAccessPolicy, id).await?;
        let policy: ConditionalAccessPolicy = codec::data(&record)?;
        tx.delete(ctx.tenant, Kind::ConditionalAccessPolicy, id, None)
            .await?;
        let event = EventDraft::new(
            AuditAction::ConditionalAccessPolicyDelete,
            Kind::ConditionalAccessPolicy,
            id,
            &policy.spec.display_name,
        )
        .details(serde_json::to_value(&policy.spec).unwrap_or(Value::Null));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        self.forget_policy_set(ctx.tenant);
        Ok(())
    }

    // -----------------------------------------------------------------------------
    // Named locations

    pub async fn list_named_locations(&self, ctx: &Context) -> ServiceResult<Vec<NamedLocation>> {
        self.require(ctx, action::NAMED_LOCATIONS_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        all_locations(reader.as_mut(), ctx.tenant).await
    }

    pub async fn get_named_location(
        &self,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<(NamedLocation, i64)> {
        self.require(ctx, action::NAMED_LOCATIONS_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        let record = codec::load(reader.as_mut(), ctx.tenant, Kind::NamedLocation, id).await?;
        Ok((codec::data(&record)?, record.version))
    }

    pub async fn create_named_location(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<NamedLocation> {
        self.require(ctx, action::NAMED_LOCATIONS_MANAGE, &AuthzTarget::Tenant)?;
        let spec = parse_location(body)?;
        let now = self.now();
        let location = NamedLocation {
            id: Uuid::new_v4(),
            spec,
            created_date_time: now,
            modified_date_time: now,
        };
        let mut tx = self.write(ctx).await?;
        tx.insert(ctx.tenant, &location_record(&location, None)?)
            .await?;
        let event = EventDraft::new(
            AuditAction::NamedLocationCreate,
            Kind::NamedLocation,
            location.id,
            location.spec.display_name(),
        )
        .details(serde_json::to_value(&location.spec).unwrap_or(Value::Null));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        self.forget_policy_set(ctx.tenant);
        Ok(location)
    }

    pub async fn update_named_location(
        &self,
        ctx: &Context,
        id: Uuid,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<NamedLocation> {
        self.require(ctx, action::NAMED_LOCATIONS_MANAGE, &AuthzTarget::Tenant)?;
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, Kind::NamedLocation, id).await?;
        codec::check_if_match(&record, if_match)?;
        let mut location: NamedLocation = codec::data(&record)?;
        let before = serde_json::to_value(&location.spec).unwrap_or(Value::Null);
        let mut body = body;
        import::strip_annotations(&mut body);
        let mut merged = patch::merge_patch(&before, &body, READ_ONLY)?;
        if let (Some(kind), Some(map)) =
            (before.get("@odata.type").cloned(), merged.as_object_mut())
        {
            map.insert("@odata.type".to_string(), kind);
        }
        location.spec = parse_location(merged)?;
        location.modified_date_time = self.now();
        tx.update(ctx.tenant, &location_record(&location, Some(&record))?)
            .await?;
        let after = serde_json::to_value(&location.spec).unwrap_or(Value::Null);
        let event = EventDraft::new(
            AuditAction::NamedLocationUpdate,
            Kind::NamedLocation,
            id,
            location.spec.display_name(),
        )
        .changes(patch::changes(&before, &after));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        self.forget_policy_set(ctx.tenant);
        Ok(location)
    }

    /// Deletes a named location no policy names.
    pub async fn delete_named_location(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        self.delete_unused(
            ctx,
            action::NAMED_LOCATIONS_MANAGE,
            Kind::NamedLocation,
            id,
            AuditAction::NamedLocationDelete,
            "policies name this location",
        )
        .await
    }

    // -----------------------------------------------------------------------------
    // Terms of use

    pub async fn list_terms_of_use(&self, ctx: &Context) -> ServiceResult<Vec<TermsOfUse>> {
        self.require(ctx, action::CA_POLICIES_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        codec::list_all(reader.as_mut(), ctx.tenant, Kind::TermsOfUse, None)
            .await?
            .iter()
            .map(codec::data)
            .collect()
    }

    pub async fn create_terms_of_use(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<TermsOfUse> {
        self.require(ctx, action::CA_POLICIES_MANAGE, &AuthzTarget::Tenant)?;
        let spec: TermsOfUseSpec = patch::parse_spec(body)?;
        validate::terms_of_use(&spec).map_err(validation)?;
        let now = self.now();
        let terms = TermsOfUse {
            id: Uuid::new_v4(),
            spec,
            content_version: 1,
            created_date_time: now,
            modified_date_time: now,
        };
        let mut tx = self.write(ctx).await?;
        let record = codec::new_record(
            Kind::TermsOfUse,
            terms.id,
            now,
            Keys {
                key1: None,
                key2: None,
                sort_key: codec::sort_key(&terms.spec.display_name),
            },
            &terms,
        )?;
        tx.insert(ctx.tenant, &record).await?;
        let event = EventDraft::new(
            AuditAction::AgreementCreate,
            Kind::TermsOfUse,
            terms.id,
            &terms.spec.display_name,
        );
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        Ok(terms)
    }

    /// Changes terms of use; new text needs everyone's acceptance again.
    pub async fn update_terms_of_use(
        &self,
        ctx: &Context,
        id: Uuid,
        body: Value,
    ) -> ServiceResult<TermsOfUse> {
        self.require(ctx, action::CA_POLICIES_MANAGE, &AuthzTarget::Tenant)?;
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, Kind::TermsOfUse, id).await?;
        let mut terms: TermsOfUse = codec::data(&record)?;
        let spec: TermsOfUseSpec = patch::merge_patch(&terms.spec, &body, READ_ONLY)?;
        validate::terms_of_use(&spec).map_err(validation)?;
        if spec.content != terms.spec.content {
            terms.content_version += 1;
        }
        terms.spec = spec;
        terms.modified_date_time = self.now();
        let keys = Keys {
            key1: None,
            key2: None,
            sort_key: codec::sort_key(&terms.spec.display_name),
        };
        tx.update(
            ctx.tenant,
            &codec::next_version(&record, terms.modified_date_time, keys, &terms)?,
        )
        .await?;
        let event = EventDraft::new(
            AuditAction::AgreementUpdate,
            Kind::TermsOfUse,
            id,
            &terms.spec.display_name,
        )
        .details(json!({"contentVersion": terms.content_version}));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        Ok(terms)
    }

    /// Deletes terms of use no policy requires.
    pub async fn delete_terms_of_use(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        self.delete_unused(
            ctx,
            action::CA_POLICIES_MANAGE,
            Kind::TermsOfUse,
            id,
            AuditAction::AgreementDelete,
            "policies require these terms",
        )
        .await
    }

    /// Deletes a named location or terms of use, refused while a policy names it.
    async fn delete_unused(
        &self,
        ctx: &Context,
        permission: &str,
        kind: Kind,
        id: Uuid,
        audit_action: AuditAction,
        in_use: &str,
    ) -> ServiceResult<()> {
        self.require(ctx, permission, &AuthzTarget::Tenant)?;
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, kind, id).await?;
        let data: Value = codec::data(&record)?;
        let name = data["displayName"].as_str().unwrap_or_default().to_string();
        let users = referencing(&all_policies(tx.as_mut(), ctx.tenant).await?, id);
        if !users.is_empty() {
            return Err(ServiceError::Conflict {
                message: format!("{in_use}: {}", users.join(", ")),
            });
        }
        tx.delete(ctx.tenant, kind, id, None).await?;
        self.audit(
            tx.as_mut(),
            ctx,
            EventDraft::new(audit_action, kind, id, &name),
        )
        .await?;
        tx.commit().await?;
        self.forget_policy_set(ctx.tenant);
        Ok(())
    }

    /// Terms of use by id, for the acceptance page.
    pub(crate) async fn terms_by_id(
        &self,
        tenant: TenantId,
        ids: &[Uuid],
    ) -> ServiceResult<Vec<TermsOfUse>> {
        let mut reader = self.reader().await?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(record) = reader.get(tenant, Kind::TermsOfUse, *id).await? {
                out.push(codec::data(&record)?);
            }
        }
        Ok(out)
    }

    /// Records that a user accepted terms (their current version).
    pub(crate) async fn accept_terms(
        &self,
        ctx: &Context,
        user: Uuid,
        terms_id: Uuid,
    ) -> ServiceResult<()> {
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, Kind::TermsOfUse, terms_id).await?;
        let terms: TermsOfUse = codec::data(&record)?;
        let now = self.now();
        let acceptance = Acceptance {
            terms_id,
            user_id: user,
            content_version: terms.content_version,
            accepted_date_time: now,
        };
        let key = format!("{terms_id}:{user}");
        let keys = || Keys {
            key1: Some(key.clone()),
            key2: Some(user.to_string()),
            sort_key: key.clone(),
        };
        let existing = tx
            .get_by_key1(ctx.tenant, Kind::TermsAcceptance, &key)
            .await?;
        codec::put(
            tx.as_mut(),
            ctx.tenant,
            Kind::TermsAcceptance,
            existing.as_ref(),
            Uuid::new_v4(),
            now,
            keys(),
            &acceptance,
        )
        .await?;
        let event = EventDraft::new(
            AuditAction::AgreementAccept,
            Kind::TermsOfUse,
            terms_id,
            &terms.spec.display_name,
        )
        .details(json!({"userId": user, "contentVersion": terms.content_version}));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether security defaults ask this user to register a second factor.
    pub async fn mfa_registration_requested(
        &self,
        tenant: TenantId,
        user: Uuid,
    ) -> ServiceResult<bool> {
        let mut reader = self.reader().await?;
        if !security_defaults(reader.as_mut(), tenant).await?.is_enabled {
            return Ok(false);
        }
        let registered = auth_methods::methods_of(reader.as_mut(), tenant, user)
            .await?
            .iter()
            .any(|m| matches!(m.data.mode(), Mode::SoftwareOath | Mode::Fido2));
        Ok(!registered)
    }

    // -----------------------------------------------------------------------------
    // Security defaults and risk

    pub async fn get_security_defaults(&self, ctx: &Context) -> ServiceResult<SecurityDefaults> {
        self.require(ctx, action::POLICIES_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        security_defaults(reader.as_mut(), ctx.tenant).await
    }

    pub async fn set_security_defaults(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<SecurityDefaults> {
        self.require(ctx, action::POLICIES_MANAGE, &AuthzTarget::Tenant)?;
        let mut body = body;
        import::strip_annotations(&mut body);
        if let Some(map) = body.as_object_mut() {
            for field in ["id", "displayName", "description"] {
                map.remove(field);
            }
        }
        let policy: SecurityDefaults = patch::parse_spec(body)?;
        let mut tx = self.write(ctx).await?;
        let before = security_defaults(tx.as_mut(), ctx.tenant).await?;
        self.write_policy(
            tx.as_mut(),
            ctx,
            DEFAULTS_KEY,
            AuditAction::SecurityDefaultsUpdate,
            &before,
            &policy,
        )
        .await?;
        tx.commit().await?;
        self.forget_policy_set(ctx.tenant);
        Ok(policy)
    }

    pub async fn get_risk(&self, ctx: &Context, principal: Uuid) -> ServiceResult<RiskState> {
        self.require(ctx, action::RISK_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        match reader
            .get_by_key1(ctx.tenant, Kind::RiskState, &principal.to_string())
            .await?
        {
            Some(record) => codec::data(&record),
            None => Ok(RiskState {
                principal_id: principal,
                risk_level: RiskLevel::None,
                sign_in_risk_level: RiskLevel::None,
                sign_in_risk_expires_date_time: None,
                modified_date_time: self.now(),
            }),
        }
    }

    /// Sets a user's or workload's risk (an identity protection source, or an
    /// administrator confirming or dismissing it).
    pub async fn set_risk(
        &self,
        ctx: &Context,
        principal: Uuid,
        body: Value,
    ) -> ServiceResult<RiskState> {
        self.require(ctx, action::RISK_MANAGE, &AuthzTarget::Tenant)?;
        let update: RiskUpdate = patch::parse_spec(body)?;
        let seconds = update.sign_in_risk_seconds.unwrap_or(3600);
        if !(60..=86_400).contains(&seconds) {
            return Err(ServiceError::invalid(
                "signInRiskSeconds",
                "must be 60 to 86400",
            ));
        }
        let mut tx = self.write(ctx).await?;
        let is_user = tx.get(ctx.tenant, Kind::User, principal).await?.is_some();
        let is_workload = tx
            .get(ctx.tenant, Kind::ServicePrincipal, principal)
            .await?
            .is_some();
        if !is_user && !is_workload {
            return Err(ServiceError::NotFound {
                kind: "user or servicePrincipal",
                id: principal.to_string(),
            });
        }
        let now = self.now();
        let key = principal.to_string();
        let existing = tx.get_by_key1(ctx.tenant, Kind::RiskState, &key).await?;
        let mut state = match &existing {
            Some(record) => codec::data::<RiskState>(record)?,
            None => RiskState {
                principal_id: principal,
                risk_level: RiskLevel::None,
                sign_in_risk_level: RiskLevel::None,
                sign_in_risk_expires_date_time: None,
                modified_date_time: now,
            },
        };
        let before = serde_json::to_value(&state).unwrap_or(Value::Null);
        if let Some(level) = update.risk_level {
            state.risk_level = level;
        }
        if let Some(level) = update.sign_in_risk_level {
            state.sign_in_risk_level = level;
            state.sign_in_risk_expires_date_time = Some(now.plus_seconds(seconds));
        }
        state.modified_date_time = now;
        let keys = Keys {
            key1: Some(key.clone()),
            key2: None,
            sort_key: key.clone(),
        };
        codec::put(
            tx.as_mut(),
            ctx.tenant,
            Kind::RiskState,
            existing.as_ref(),
            Uuid::new_v4(),
            now,
            keys,
            &state,
        )
        .await?;
        let event = EventDraft::new(
            AuditAction::RiskStateUpdate,
            if is_user {
                Kind::User
            } else {
                Kind::ServicePrincipal
            },
            principal,
            &key,
        )
        .changes(patch::changes(
            &before,
            &serde_json::to_value(&state).unwrap_or(Value::Null),
        ));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        if let Ok(mut cache) = self.ca.workload_risk.lock() {
            cache.remove(&(ctx.tenant, principal));
        }
        Ok(state)
    }

    /// Clears a user's risk after they changed their password in a sign-in that
    /// met multifactor authentication (the user is the actor).
    /// `context` is the user's own (their session's).
    pub(crate) async fn remediate_user_risk(
        &self,
        context: &Context,
        user: Uuid,
    ) -> ServiceResult<()> {
        let mut tx = self.write(context).await?;
        let key = user.to_string();
        let Some(record) = tx
            .get_by_key1(context.tenant, Kind::RiskState, &key)
            .await?
        else {
            return Ok(());
        };
        let mut state: RiskState = codec::data(&record)?;
        if state.risk_level == RiskLevel::None {
            return Ok(());
        }
        let before = serde_json::to_value(&state).unwrap_or(Value::Null);
        let now = self.now();
        state.risk_level = RiskLevel::None;
        state.modified_date_time = now;
        let keys = Keys {
            key1: Some(key.clone()),
            key2: None,
            sort_key: key.clone(),
        };
        tx.update(
            context.tenant,
            &codec::next_version(&record, now, keys, &state)?,
        )
        .await?;
        let event = EventDraft::new(AuditAction::RiskStateRemediate, Kind::User, user, &key)
            .changes(patch::changes(
                &before,
                &serde_json::to_value(&state).unwrap_or(Value::Null),
            ));
        self.audit(tx.as_mut(), context, event).await?;
        tx.commit().await?;
        Ok(())
    }

    // -----------------------------------------------------------------------------
    // Import and What-If

    /// Imports an export: everything or nothing, unless told to skip what is not
    /// ready; `dry_run` only reports.
    pub async fn import(
        &self,
        ctx: &Context,
        request: ImportRequest,
    ) -> ServiceResult<ImportResult> {
        self.require(ctx, action::CA_POLICIES_MANAGE, &AuthzTarget::Tenant)?;
        self.require(ctx, action::NAMED_LOCATIONS_MANAGE, &AuthzTarget::Tenant)?;
        if request.policies.len() > 1000 || request.named_locations.len() > 1000 {
            return Err(ServiceError::invalid(
                "policies",
                "import at most 1000 policies and 1000 named locations at once",
            ));
        }
        let mut export = Export {
            policies: request
                .policies
                .iter()
                .map(|d| (d.file.clone(), d.document.clone()))
                .collect(),
            named_locations: request
                .named_locations
                .iter()
                .map(|d| (d.file.clone(), d.document.clone()))
                .collect(),
            ..Default::default()
        };
        for group in &request.groups {
            export.objects.add_group(group);
        }
        if let Some(table) = &request.migration_table {
            export.objects.add_migration_table(table);
        }
        let mut tx = self.write(ctx).await?;
        let known = self
            .known_for_import(tx.as_mut(), ctx.tenant, &export)
            .await?;
        let plan = import::plan(
            &export,
            &known,
            import::Options {
                state: request.state,
            },
        );
        let errors = plan.report.error_count();
        let writable = errors == 0 || request.skip_errors;
        let (planned_policies, planned_named_locations) = if writable {
            (
                plan.policies
                    .iter()
                    .map(|(id, spec)| PlannedItem {
                        id: *id,
                        display_name: spec.display_name.clone(),
                    })
                    .collect(),
                plan.named_locations
                    .iter()
                    .map(|(id, spec)| PlannedItem {
                        id: *id,
                        display_name: spec.display_name().to_string(),
                    })
                    .collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let mut warnings = Vec::new();
        if !plan.policies.is_empty() && security_defaults(tx.as_mut(), ctx.tenant).await?.is_enabled
        {
            warnings.push(SECURITY_DEFAULTS_STAY_ON.to_string());
        }
        if request.dry_run || !writable {
            return Ok(ImportResult {
                imported: false,
                dry_run: request.dry_run,
                policies_imported: 0,
                named_locations_imported: 0,
                planned_policies,
                planned_named_locations,
                warnings,
                report: plan.report,
            });
        }
        let now = self.now();
        for (id, spec) in &plan.named_locations {
            let existing = tx.get(ctx.tenant, Kind::NamedLocation, *id).await?;
            let location = NamedLocation {
                id: *id,
                spec: spec.clone(),
                created_date_time: existing.as_ref().map(|r| r.created).unwrap_or(now),
                modified_date_time: now,
            };
            let record = location_record(&location, existing.as_ref())?;
            codec::put_record(tx.as_mut(), ctx.tenant, existing.is_some(), &record).await?;
            let event = EventDraft::new(
                AuditAction::NamedLocationImport,
                Kind::NamedLocation,
                *id,
                spec.display_name(),
            )
            .details(serde_json::to_value(spec).unwrap_or(Value::Null));
            self.audit(tx.as_mut(), ctx, event).await?;
        }
        for (id, spec) in &plan.policies {
            let existing = tx
                .get(ctx.tenant, Kind::ConditionalAccessPolicy, *id)
                .await?;
            let policy = ConditionalAccessPolicy {
                id: *id,
                spec: spec.clone(),
                created_date_time: existing.as_ref().map(|r| r.created).unwrap_or(now),
                modified_date_time: now,
            };
            let record = policy_record(&policy, existing.as_ref())?;
            codec::put_record(tx.as_mut(), ctx.tenant, existing.is_some(), &record).await?;
            let event = EventDraft::new(
                AuditAction::ConditionalAccessPolicyImport,
                Kind::ConditionalAccessPolicy,
                *id,
                &spec.display_name,
            )
            .details(serde_json::to_value(spec).unwrap_or(Value::Null));
            self.audit(tx.as_mut(), ctx, event).await?;
        }
        let summary = EventDraft {
            action: AuditAction::ConditionalAccessImport,
            target: None,
            changes: Vec::new(),
            details: json!({
                "policies": plan.policies.len(),
                "namedLocations": plan.named_locations.len(),
                "skipped": errors,
            }),
        };
        self.audit(tx.as_mut(), ctx, summary).await?;
        tx.commit().await?;
        self.forget_policy_set(ctx.tenant);
        Ok(ImportResult {
            imported: true,
            dry_run: false,
            policies_imported: plan.policies.len(),
            named_locations_imported: plan.named_locations.len(),
            planned_policies,
            planned_named_locations,
            warnings,
            report: plan.report,
        })
    }

    async fn known_for_import(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        export: &Export,
    ) -> ServiceResult<Known> {
        let mut known = Known::default();
        for record in codec::list_all(reader, tenant, Kind::Group, None).await? {
            let group: tessera_directory::model::GroupSpec = codec::data(&record)?;
            known.groups.insert(record.id, group.display_name);
        }
        for record in codec::list_all(reader, tenant, Kind::NamedLocation, None).await? {
            known.locations.insert(record.id);
        }
        for record in codec::list_all(reader, tenant, Kind::TermsOfUse, None).await? {
            known.terms_of_use.insert(record.id);
        }
        for record in codec::list_all(reader, tenant, Kind::AuthStrength, None).await? {
            known.strengths.insert(record.id);
        }
        // Users, applications and workloads the export names, looked up one by one.
        let mut named = HashSet::new();
        for (_, document) in &export.policies {
            collect_ids(document, &mut named);
        }
        for id in named {
            if reader.get(tenant, Kind::User, id).await?.is_some() {
                known.users.insert(id);
            }
            if reader
                .get(tenant, Kind::ServicePrincipal, id)
                .await?
                .is_some()
            {
                known.service_principals.insert(id);
            }
            if reader
                .get_by_key1(tenant, Kind::Application, &id.to_string())
                .await?
                .is_some()
            {
                known.apps.insert(id);
            }
        }
        Ok(known)
    }

    /// What-If: which policies would apply to a described sign-in, and why.
    pub async fn what_if(&self, ctx: &Context, question: WhatIf) -> ServiceResult<Explanation> {
        self.require(ctx, action::CA_POLICIES_READ, &AuthzTarget::Tenant)?;
        let target = match (&question.app_id, &question.user_action) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::invalid(
                    "userAction",
                    "ask about an application or a user action, not both",
                ));
            }
            (None, Some(a)) => Target::UserAction(match a.as_str() {
                "registerSecurityInfo" | validate::REGISTER_SECURITY_INFO => {
                    engine::UserAction::RegisterSecurityInfo
                }
                "registerOrJoinDevices" | validate::REGISTER_DEVICE => {
                    engine::UserAction::RegisterOrJoinDevices
                }
                _ => {
                    return Err(ServiceError::invalid(
                        "userAction",
                        "is registerSecurityInfo or registerOrJoinDevices",
                    ));
                }
            }),
            (Some(app), None) if app == validate::ADMIN_PORTALS => Target::App {
                resource: None,
                app_id: builtin::cli_client_id(),
                admin_portal: true,
            },
            (Some(app), None) => {
                let mut reader = self.reader().await?;
                let app_id = application_named(reader.as_mut(), ctx.tenant, "appId", app).await?;
                let resource = match question.resource_app_id {
                    Some(resource) => Some(
                        application_named(
                            reader.as_mut(),
                            ctx.tenant,
                            "resourceAppId",
                            &resource.to_string(),
                        )
                        .await?,
                    ),
                    None => None,
                };
                Target::App {
                    app_id,
                    resource: resource.filter(|r| *r != app_id),
                    admin_portal: builtin::is_management_client(app_id),
                }
            }
            (None, None) => {
                return Err(ServiceError::invalid(
                    "appId",
                    "name the application (or user action) signed in to",
                ));
            }
        };
        let (subject, stored_sign_in_risk, accepted) =
            match (question.user_id, question.service_principal_id) {
                (Some(user), None) => {
                    let mut reader = self.reader().await?;
                    codec::load(reader.as_mut(), ctx.tenant, Kind::User, user).await?;
                    drop(reader);
                    let (mut subject, sign_in_risk, accepted) =
                        self.user_subject(ctx.tenant, user).await?;
                    if let (Some(level), FactSubject::User { risk, .. }) =
                        (question.user_risk_level, &mut subject)
                    {
                        *risk = level;
                    }
                    (subject, sign_in_risk, accepted)
                }
                (None, Some(sp)) => {
                    let mut reader = self.reader().await?;
                    codec::load(reader.as_mut(), ctx.tenant, Kind::ServicePrincipal, sp).await?;
                    drop(reader);
                    let mut subject = self.workload_subject(ctx.tenant, sp).await?;
                    if let (Some(level), FactSubject::Workload { risk, .. }) =
                        (question.user_risk_level, &mut subject)
                    {
                        *risk = level;
                    }
                    (subject, RiskLevel::None, Vec::new())
                }
                _ => {
                    return Err(ServiceError::invalid(
                        "userId",
                        "name a user (userId) or a workload (servicePrincipalId)",
                    ));
                }
            };
        let device = match question.device_id {
            Some(id) => {
                let mut reader = self.reader().await?;
                let record = codec::load(reader.as_mut(), ctx.tenant, Kind::Device, id).await?;
                Some((id, codec::data::<DeviceSpec>(&record)?))
            }
            None => None,
        };
        let platform = match &question.platform {
            Some(p) => Some(
                Platform::parse(p)
                    .filter(|p| *p != Platform::All)
                    .ok_or_else(|| {
                        ServiceError::invalid(
                            "platform",
                            "is android, iOS, windows, windowsPhone, macOS or linux",
                        )
                    })?,
            ),
            None => platform_of(
                device.as_ref().map(|(_, d)| d),
                question.user_agent.as_deref(),
            ),
        };
        let client_app = match &question.client_app_type {
            Some(c) => ClientApp::parse(c).ok_or_else(|| {
                ServiceError::invalid(
                    "clientAppType",
                    "is browser, mobileAppsAndDesktopClients, exchangeActiveSync or other",
                )
            })?,
            None => ClientApp::Browser,
        };
        // As a sign-in sees it: an IPv4-mapped IPv6 address is IPv4.
        let ip = question.ip_address.map(|ip| ip.to_canonical());
        let country = match &question.country {
            Some(c) => Some(engine::parse_country(c).ok_or_else(|| {
                ServiceError::invalid("country", "is an ISO 3166-1 alpha-2 code")
            })?),
            None => self.country_of(ip),
        };
        let no_country_database = question.country.is_none() && self.ca.country.get().is_none();
        // What the sign-in met, derived as a real sign-in derives it.
        let strengths = {
            let mut reader = self.reader().await?;
            let all = auth_policy::all_strengths(reader.as_mut(), ctx.tenant).await?;
            let mut met = strength::implied(&all, &question.satisfied_strengths).map_err(|id| {
                let index = question
                    .satisfied_strengths
                    .iter()
                    .position(|s| *s == id)
                    .unwrap_or_default();
                ServiceError::invalid(
                    format!("satisfiedStrengths[{index}]"),
                    format!("no authentication strength has the id {id}"),
                )
            })?;
            let used: Vec<UsedMethod> = question
                .authentication_methods
                .iter()
                .map(|m| UsedMethod::plain(*m))
                .collect();
            for id in strength::reached(&all, &used) {
                if !met.contains(&id) {
                    met.push(id);
                }
            }
            met
        };
        for (index, context) in question.authentication_contexts.iter().enumerate() {
            if validate::auth_context_number(context).is_none() {
                return Err(ServiceError::invalid(
                    format!("authenticationContexts[{index}]"),
                    "is c1 to c99",
                ));
            }
        }
        let facts = SignInFacts {
            subject,
            target,
            auth_contexts: question.authentication_contexts.clone(),
            client_app,
            platform,
            ip,
            country,
            device,
            sign_in_risk: question.sign_in_risk_level.unwrap_or(stored_sign_in_risk),
            device_code_flow: question.device_code_flow,
            strengths,
            auth_age_seconds: Some(0),
            password_changed: false,
            accepted_terms: accepted,
        };
        let decided = self.decide(ctx.tenant, &facts).await?;
        let mut explanation = decided.explain();
        if no_country_database && decided.set.used_countries(&decided.decision) {
            explanation.warnings.push(NO_COUNTRY_DATABASE.to_string());
        }
        Ok(explanation)
    }
}

/// The What-If warning when country locations were evaluated without a database.
pub const NO_COUNTRY_DATABASE: &str = "no country database is configured (geoip_database): every address is in an unknown country, so a country location matches it only when it includes unknown countries, and a policy that allows only some countries blocks it; name the country in the question (country) to evaluate one";

/// The application a What-If question names, as its application (client) id: by
/// client id, application object id, service principal id or display name (the
/// same name in any case; two applications with that name are ambiguous). The
/// command line's own client needs no record.
async fn application_named(
    reader: &mut dyn Reader,
    tenant: TenantId,
    field: &str,
    text: &str,
) -> ServiceResult<Uuid> {
    let text = text.trim();
    if let Ok(id) = Uuid::parse_str(text) {
        if builtin::is_management_client(id)
            || reader
                .get_by_key1(tenant, Kind::Application, &id.to_string())
                .await?
                .is_some()
        {
            return Ok(id);
        }
        if let Some(record) = reader.get(tenant, Kind::Application, id).await? {
            let data: ApplicationData = codec::data(&record)?;
            return Ok(data.app_id);
        }
        if let Some(record) = reader.get(tenant, Kind::ServicePrincipal, id).await? {
            let data: ServicePrincipalData = codec::data(&record)?;
            return Ok(data.spec.app_id);
        }
    } else if !text.is_empty() {
        let name = codec::sort_key(text);
        let query = tessera_store::ListQuery {
            after: None,
            limit: 100,
            prefix: Some(name.clone()),
            key2: None,
        };
        let mut found = Vec::new();
        for record in reader.list(tenant, Kind::Application, &query).await? {
            if record.sort_key == name {
                let data: ApplicationData = codec::data(&record)?;
                found.push(data.app_id);
            }
        }
        match found.as_slice() {
            [only] => return Ok(*only),
            [] => {}
            many => {
                let ids: Vec<String> = many.iter().take(5).map(Uuid::to_string).collect();
                return Err(ServiceError::invalid(
                    field,
                    format!(
                        "{} applications are named {text:?} (application ids {}{}): name one by its application id",
                        many.len(),
                        ids.join(", "),
                        if many.len() > ids.len() { ", ..." } else { "" }
                    ),
                ));
            }
        }
    }
    Err(ServiceError::invalid(
        field,
        format!(
            "application {text:?} was not found: no application here has that application (client) id, object id or display name"
        ),
    ))
}

/// Every id-looking string in a document (for looking up what an import names).
fn collect_ids(value: &Value, out: &mut HashSet<Uuid>) {
    match value {
        Value::String(s) => {
            if let Ok(id) = Uuid::parse_str(s) {
                out.insert(id);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_ids(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_ids(v, out)),
        _ => {}
    }
    if out.len() > 10_000 {
        out.clear();
    }
}

//! The decision: policies compiled into sets and masks when they change, then one
//! pure, synchronous pass per sign-in that does no I/O.
//!
//! Semantics (Entra's, see `docs/conditional-access.md`):
//! - A policy applies when every condition it sets matches. Conditions are checked
//!   in a fixed order and the first that does not match is the explanation: subject
//!   (users or workload identities), applications, client app types, platforms,
//!   locations, devices, sign-in risk, user or service principal risk,
//!   authentication flows. Within a condition an exclusion always wins.
//! - All enabled policies that apply are combined: a block from any of them wins;
//!   otherwise every grant requirement of every applying policy must be met, and
//!   the strictest session control wins.
//! - Report-only policies are evaluated and recorded, never enforced.
//! - Security defaults (on in a new tenant, until the operator turns them off):
//!   legacy clients blocked, multifactor authentication for administrators and for
//!   the management API, and users without a second factor asked to register one.
//!   Unlike Entra ID, where defaults and policies exclude each other, the defaults
//!   stay beside the tenant's policies until turned off, so adding a policy (even a
//!   report-only one) never weakens a tenant.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;

use foldhash::fast::RandomState;
use ipnet::IpNet;
use serde::Serialize;
use tessera_authn::strength;
use tessera_core::AppId;
use tessera_directory::model::{DeviceSpec, TrustType};
use tessera_directory::rule::{self, Rule};
use uuid::Uuid;

use crate::model::*;
use crate::validate::{self, auth_context_number};

type Map<K, V> = HashMap<K, V, RandomState>;

// ---------------------------------------------------------------------------------
// The sign-in, as the engine sees it

/// The kind of client, as Conditional Access names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ClientApp {
    Browser,
    MobileAppsAndDesktopClients,
    ExchangeActiveSync,
    /// Legacy protocols (the resource-owner password grant).
    Other,
}

impl ClientApp {
    pub fn parse(text: &str) -> Option<ClientApp> {
        [
            ClientApp::Browser,
            ClientApp::MobileAppsAndDesktopClients,
            ClientApp::ExchangeActiveSync,
            ClientApp::Other,
        ]
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(text))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClientApp::Browser => "browser",
            ClientApp::MobileAppsAndDesktopClients => "mobileAppsAndDesktopClients",
            ClientApp::ExchangeActiveSync => "exchangeActiveSync",
            ClientApp::Other => "other",
        }
    }

    fn bit(self) -> u8 {
        match self {
            ClientApp::Browser => 1,
            ClientApp::MobileAppsAndDesktopClients => 2,
            ClientApp::ExchangeActiveSync => 4,
            ClientApp::Other => 8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UserAction {
    RegisterSecurityInfo,
    RegisterOrJoinDevices,
}

impl UserAction {
    pub fn urn(self) -> &'static str {
        match self {
            UserAction::RegisterSecurityInfo => validate::REGISTER_SECURITY_INFO,
            UserAction::RegisterOrJoinDevices => validate::REGISTER_DEVICE,
        }
    }

    fn bit(self) -> u8 {
        match self {
            UserAction::RegisterSecurityInfo => 1,
            UserAction::RegisterOrJoinDevices => 2,
        }
    }
}

/// What is being accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An application, by application id: the client signing in, and the
    /// resource its token is for when that is another application. A policy
    /// applies when it applies to either (so naming another resource cannot take a
    /// sign-in out of a policy for the client). `admin_portal` for Tessera's own
    /// management API and command line.
    App {
        app_id: AppId,
        resource: Option<AppId>,
        admin_portal: bool,
    },
    UserAction(UserAction),
}

/// Who is signing in.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    User {
        id: Uuid,
        /// Directory role template ids the user holds.
        roles: &'a [Uuid],
        /// The guest kind (one of [`validate::GUEST_KINDS`]), for guests.
        guest: Option<&'a str>,
        risk: RiskLevel,
        /// Whether the user has a second factor registered (security defaults).
        has_mfa_method: bool,
        /// Groups the user is in at this moment beyond the standing memberships
        /// the policy set expanded (a membership PIM gives), with the groups
        /// that contain them.
        groups: &'a [Uuid],
    },
    Workload {
        service_principal_id: Uuid,
        risk: RiskLevel,
    },
}

/// What the sign-in has already proven.
#[derive(Debug, Clone, Copy, Default)]
pub struct Proof<'a> {
    /// Authentication strengths the sign-in satisfies.
    pub strengths: &'a [Uuid],
    /// Seconds since the user last signed in interactively.
    pub auth_age_seconds: Option<i64>,
    /// The password was changed in this sign-in.
    pub password_changed: bool,
    /// Terms of use the user has accepted (current versions).
    pub accepted_terms: &'a [Uuid],
}

/// One sign-in or token request.
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    pub subject: Subject<'a>,
    pub target: Target,
    /// Authentication contexts asked for (`c1`..), e.g. by `acr_values`.
    pub auth_contexts: &'a [String],
    pub client_app: ClientApp,
    pub platform: Option<Platform>,
    pub ip: Option<IpAddr>,
    /// ISO country code of `ip`, from the operator's country database.
    pub country: Option<[u8; 2]>,
    /// The device record, when the device is known.
    pub device: Option<(Uuid, &'a DeviceSpec)>,
    pub sign_in_risk: RiskLevel,
    pub device_code_flow: bool,
    pub proof: Proof<'a>,
}

// ---------------------------------------------------------------------------------
// The decision

/// Which condition kept a policy from applying, declared in the order conditions
/// are checked (so `a < b` when `a` is checked before `b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Condition {
    Users,
    WorkloadIdentities,
    Applications,
    ClientAppTypes,
    Platforms,
    Locations,
    Devices,
    SignInRisk,
    UserRisk,
    ServicePrincipalRisk,
    AuthenticationFlows,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Miss {
    pub condition: Condition,
    /// An exclusion matched (rather than no inclusion).
    pub excluded: bool,
}

/// Entra's per-policy result names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyResultKind {
    /// Applied, and its requirements are met.
    Success,
    /// Applied, and it blocks or its requirements are not met.
    Failure,
    NotApplied,
    ReportOnlySuccess,
    ReportOnlyFailure,
    ReportOnlyInterrupted,
    ReportOnlyNotApplied,
}

/// A grant control, with the ids it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "control", content = "id")]
pub enum Control {
    Mfa,
    AuthenticationStrength(Uuid),
    CompliantDevice,
    DomainJoinedDevice,
    PasswordChange,
    TermsOfUse(Uuid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlState {
    #[serde(flatten)]
    pub control: Control,
    pub satisfied: bool,
}

/// Which of a policy's grant controls (in [`CompiledPolicy::controls`] order) a
/// sign-in satisfies: bit `i` for control `i`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ControlsMet {
    pub count: u8,
    pub satisfied: u32,
}

impl ControlsMet {
    pub fn from_states(states: impl IntoIterator<Item = bool>) -> ControlsMet {
        let mut met = ControlsMet::default();
        for (i, satisfied) in states.into_iter().enumerate() {
            met.count += 1;
            if satisfied {
                met.satisfied |= 1 << i;
            }
        }
        met
    }

    pub fn is_empty(self) -> bool {
        self.count == 0
    }

    pub fn get(self, i: usize) -> bool {
        self.satisfied & (1 << i) != 0
    }

    pub fn all(self) -> bool {
        self.satisfied.count_ones() == u32::from(self.count)
    }

    pub fn any(self) -> bool {
        self.satisfied != 0
    }

    /// The controls with their states.
    pub fn states(self, controls: &[Control]) -> Vec<ControlState> {
        controls
            .iter()
            .enumerate()
            .map(|(i, c)| ControlState {
                control: *c,
                satisfied: self.get(i),
            })
            .collect()
    }
}

/// One policy's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyOutcome {
    /// Index into [`PolicySet::policies`].
    pub policy: u32,
    pub kind: PolicyResultKind,
    pub miss: Option<Miss>,
    /// For an applying policy: it blocks.
    pub block: bool,
    /// For an applying policy: which of its controls are satisfied.
    pub controls: ControlsMet,
    /// For an applying policy: its sign-in frequency is not met.
    pub reauthenticate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Allow,
    /// Requirements are unmet: the person can meet some of them (see
    /// [`Decision::remedy`]).
    Interrupt,
    Block,
}

/// The session controls that apply, strictest of all applying enforced policies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveSession {
    /// Longest reuse of a sign-in, in seconds (0: every time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in_frequency_seconds: Option<i64>,
    /// `Some(false)`: never persist the browser session; `Some(true)`: always.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_browser: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub application_enforced_restrictions: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted_session: Option<CloudAppSecurityType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuous_access_evaluation: Option<CaeMode>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disable_resilience_defaults: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    /// One per policy, in the set's order (disabled policies are left out).
    pub policies: Vec<PolicyOutcome>,
    pub session: EffectiveSession,
    /// Security defaults were evaluated (their policies come first).
    pub security_defaults: bool,
    /// Security defaults ask this user to register a second factor.
    pub register_mfa: bool,
}

/// What would satisfy an interrupted sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Remedy {
    /// Sign in again (frequency) or with methods reaching each of these strengths.
    pub reauthenticate: bool,
    pub strengths: Vec<Uuid>,
    pub change_password: bool,
    pub accept_terms: Vec<Uuid>,
    /// Requirements nobody can meet from this device (compliant or joined device).
    pub impossible: Vec<Control>,
}

impl Decision {
    /// Enforced policies that applied.
    pub fn enforced(&self) -> impl Iterator<Item = &PolicyOutcome> {
        self.policies.iter().filter(|p| {
            matches!(
                p.kind,
                PolicyResultKind::Success | PolicyResultKind::Failure
            )
        })
    }

    /// The authentication contexts among `requested` (`acr` values: those that are
    /// not contexts are passed over) that enforced policies targeted and found met.
    /// None unless the decision allows the sign-in.
    pub fn met_auth_contexts(&self, set: &PolicySet, requested: &[String]) -> Vec<String> {
        if self.outcome != Outcome::Allow {
            return Vec::new();
        }
        requested
            .iter()
            .filter(|context| {
                let Some(n) = auth_context_number(context) else {
                    return false;
                };
                self.enforced().any(|outcome| {
                    set.policies
                        .get(outcome.policy as usize)
                        .is_some_and(|policy| policy.context_mask() & (1u128 << n) != 0)
                })
            })
            .cloned()
            .collect()
    }

    /// What the person could do to satisfy every unmet enforced requirement: per
    /// policy, all unmet controls of an AND, or the first interactive control of an
    /// OR; controls that need a managed device go to `impossible`.
    pub fn remedy(&self, set: &PolicySet) -> Remedy {
        let mut remedy = Remedy::default();
        for outcome in self.enforced() {
            if outcome.reauthenticate {
                remedy.reauthenticate = true;
            }
            if outcome.kind != PolicyResultKind::Failure || outcome.block {
                continue;
            }
            let policy = &set.policies[outcome.policy as usize];
            let unmet: Vec<Control> = outcome
                .controls
                .states(&policy.controls)
                .into_iter()
                .filter(|c| !c.satisfied)
                .map(|c| c.control)
                .collect();
            let needed: Vec<Control> = match policy.operator {
                Operator::AND => unmet,
                Operator::OR => {
                    if outcome.controls.any() {
                        Vec::new()
                    } else {
                        // Prefer signing in with a stronger method, then the rest.
                        let mut options = unmet.clone();
                        options.sort_by_key(|c| match c {
                            Control::Mfa | Control::AuthenticationStrength(_) => 0,
                            Control::TermsOfUse(_) => 1,
                            Control::PasswordChange => 2,
                            _ => 3,
                        });
                        options.into_iter().take(1).collect()
                    }
                }
            };
            for control in needed {
                match control {
                    Control::Mfa => push_unique(&mut remedy.strengths, strength::MFA),
                    Control::AuthenticationStrength(id) => push_unique(&mut remedy.strengths, id),
                    Control::PasswordChange => remedy.change_password = true,
                    Control::TermsOfUse(id) => push_unique(&mut remedy.accept_terms, id),
                    other => {
                        if !remedy.impossible.contains(&other) {
                            remedy.impossible.push(other)
                        }
                    }
                }
            }
        }
        remedy
    }
}

fn push_unique(list: &mut Vec<Uuid>, id: Uuid) {
    if !list.contains(&id) {
        list.push(id);
    }
}

// ---------------------------------------------------------------------------------
// Compiled form

/// Group nesting, for expanding the groups policies name.
#[derive(Debug, Clone, Default)]
pub struct GroupGraph {
    /// Group id to its direct member users.
    pub users: HashMap<Uuid, Vec<Uuid>>,
    /// Group id to its direct member groups.
    pub groups: HashMap<Uuid, Vec<Uuid>>,
}

impl GroupGraph {
    /// Every user in `group`, through nested groups (cycles are harmless).
    pub fn transitive_users(&self, group: Uuid) -> Vec<Uuid> {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![group];
        let mut users = Vec::new();
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            if let Some(members) = self.users.get(&g) {
                users.extend(members.iter().copied());
            }
            if let Some(children) = self.groups.get(&g) {
                stack.extend(children.iter().copied());
            }
        }
        users.sort_unstable();
        users.dedup();
        users
    }
}

#[derive(Debug, Clone, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn with_len(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: u32) {
        let i = i as usize;
        if let Some(word) = self.0.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }
    fn get(&self, i: u32) -> bool {
        let i = i as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    fn any(&self, list: &[u32]) -> bool {
        list.iter().any(|i| self.get(*i))
    }
}

#[derive(Debug, Clone, Default)]
struct People {
    all: bool,
    users: Vec<Uuid>,
    groups: Vec<u32>,
    roles: Vec<u32>,
    /// Bit per [`validate::GUEST_KINDS`] entry.
    guests: u8,
}

#[derive(Debug, Clone)]
enum SubjectRule {
    Users {
        include: People,
        exclude: People,
    },
    Workloads {
        all: bool,
        include: Vec<Uuid>,
        exclude: Vec<Uuid>,
    },
}

#[derive(Debug, Clone)]
enum TargetRule {
    Apps {
        all: bool,
        admin_portal: bool,
        include: Vec<AppId>,
        exclude: Vec<AppId>,
        exclude_admin_portal: bool,
    },
    Actions(u8),
    Contexts(u128),
}

#[derive(Debug, Clone, Default)]
struct LocationRule {
    include_all: bool,
    include_trusted: bool,
    include: Vec<u32>,
    exclude_trusted: bool,
    exclude: Vec<u32>,
}

/// A policy, compiled.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub id: Uuid,
    pub display_name: String,
    pub state: PolicyState,
    subject: SubjectRule,
    target: TargetRule,
    client_apps: u8,
    platforms: Option<(u8, u8, bool)>,
    locations: Option<LocationRule>,
    device_filter: Option<(FilterMode, Rule)>,
    sign_in_risk: u8,
    user_risk: u8,
    sp_risk: u8,
    device_code_flow: Option<bool>,
    block: bool,
    operator: Operator,
    controls: Vec<Control>,
    session: SessionControls,
    frequency: Option<i64>,
}

#[derive(Debug, Clone)]
struct CompiledLocation {
    trusted: bool,
    nets: Vec<IpNet>,
    countries: Vec<[u8; 2]>,
    include_unknown: bool,
    is_country: bool,
}

/// The tenant's policies, compiled, with the groups they name expanded.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub policies: Vec<CompiledPolicy>,
    pub security_defaults: bool,
    /// The caller's name for this set (0 after `compile`): explanations that list only
    /// some policies carry it, so a reader knows which set the rest came from.
    pub version: i64,
    group_count: usize,
    user_groups: Map<Uuid, Box<[u32]>>,
    /// Each named group's bit.
    group_index: Map<Uuid, u32>,
    role_index: Map<Uuid, u32>,
    locations: Vec<CompiledLocation>,
}

/// Ids Tessera gives the policies security defaults stand for.
pub const SECURITY_DEFAULTS_LEGACY: Uuid = Uuid::from_u128(0x5d_0001);
pub const SECURITY_DEFAULTS_ADMINS: Uuid = Uuid::from_u128(0x5d_0002);
pub const SECURITY_DEFAULTS_MANAGEMENT: Uuid = Uuid::from_u128(0x5d_0003);

/// The policies security defaults stand for, in Graph form.
pub fn security_defaults() -> Vec<(Uuid, PolicySpec)> {
    let admin_roles: Vec<String> = tessera_directory::roles::BUILT_IN_ROLES
        .iter()
        .filter(|r| r.display_name.ends_with("Administrator"))
        .map(|r| r.id.to_string())
        .collect();
    let all_users = UsersCondition {
        include_users: vec![validate::ALL.to_string()],
        ..Default::default()
    };
    let apps = |what: &str| ApplicationsCondition {
        include_applications: vec![what.to_string()],
        ..Default::default()
    };
    let grant = |control| GrantControls {
        operator: Operator::OR,
        built_in_controls: vec![control],
        ..Default::default()
    };
    vec![
        (
            SECURITY_DEFAULTS_LEGACY,
            PolicySpec {
                display_name: "Security defaults: block legacy authentication".to_string(),
                description: None,
                state: PolicyState::Enabled,
                conditions: Conditions {
                    users: Some(all_users.clone()),
                    applications: apps(validate::ALL),
                    client_app_types: vec![ClientAppType::ExchangeActiveSync, ClientAppType::Other],
                    ..Default::default()
                },
                grant_controls: Some(grant(BuiltInControl::Block)),
                session_controls: None,
            },
        ),
        (
            SECURITY_DEFAULTS_ADMINS,
            PolicySpec {
                display_name: "Security defaults: multifactor authentication for administrators"
                    .to_string(),
                description: None,
                state: PolicyState::Enabled,
                conditions: Conditions {
                    users: Some(UsersCondition {
                        include_roles: admin_roles,
                        ..Default::default()
                    }),
                    applications: apps(validate::ALL),
                    ..Default::default()
                },
                grant_controls: Some(grant(BuiltInControl::Mfa)),
                session_controls: None,
            },
        ),
        (
            SECURITY_DEFAULTS_MANAGEMENT,
            PolicySpec {
                display_name: "Security defaults: multifactor authentication for management"
                    .to_string(),
                description: None,
                state: PolicyState::Enabled,
                conditions: Conditions {
                    users: Some(all_users),
                    applications: apps(validate::ADMIN_PORTALS),
                    ..Default::default()
                },
                grant_controls: Some(grant(BuiltInControl::Mfa)),
                session_controls: None,
            },
        ),
    ]
}

/// The policies a decision evaluates: security defaults (when on) first, then
/// the tenant's.
pub fn with_defaults(
    policies: &[(Uuid, PolicySpec)],
    defaults_enabled: bool,
) -> Vec<(Uuid, PolicySpec)> {
    let mut all = if defaults_enabled {
        security_defaults()
    } else {
        Vec::new()
    };
    all.extend(policies.iter().cloned());
    all
}

fn uuids(values: &[String]) -> Vec<Uuid> {
    values
        .iter()
        .filter_map(|v| Uuid::parse_str(v).ok())
        .collect()
}

fn app_ids(values: &[String]) -> Vec<AppId> {
    uuids(values).into_iter().map(AppId::from_uuid).collect()
}

fn guest_bits(value: &Option<GuestsOrExternalUsers>) -> u8 {
    let Some(value) = value else { return 0 };
    value
        .guest_or_external_user_types
        .split(',')
        .filter_map(|k| validate::GUEST_KINDS.iter().position(|g| *g == k.trim()))
        .fold(0, |bits, i| bits | (1 << i))
}

fn risk_bits(levels: &[RiskLevel]) -> u8 {
    levels.iter().fold(0, |bits, l| bits | (1 << (*l as u8)))
}

struct Interner {
    index: Map<Uuid, u32>,
    ids: Vec<Uuid>,
}

impl Interner {
    fn new() -> Interner {
        Interner {
            index: Map::default(),
            ids: Vec::new(),
        }
    }
    fn intern(&mut self, id: Uuid) -> u32 {
        if let Some(i) = self.index.get(&id) {
            return *i;
        }
        let i = self.ids.len() as u32;
        self.index.insert(id, i);
        self.ids.push(id);
        i
    }
}

impl PolicySet {
    /// Compiles valid policies (see [`validate::policy`]); a reference to a named
    /// location that does not exist matches nothing.
    pub fn compile(
        policies: &[(Uuid, PolicySpec)],
        locations: &[(Uuid, NamedLocationSpec)],
        groups: &GroupGraph,
        defaults_enabled: bool,
    ) -> PolicySet {
        let security_defaults = defaults_enabled;
        let all = with_defaults(policies, defaults_enabled);
        let source: &[(Uuid, PolicySpec)] = &all;
        let location_ids: Map<Uuid, u32> = locations
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i as u32))
            .collect();
        let compiled_locations = locations
            .iter()
            .map(|(_, spec)| match spec {
                NamedLocationSpec::Ip(ip) => CompiledLocation {
                    trusted: ip.is_trusted,
                    nets: ip
                        .ip_ranges
                        .iter()
                        .filter_map(|r| IpNet::from_str(r.cidr_address.trim()).ok())
                        .collect(),
                    countries: Vec::new(),
                    include_unknown: false,
                    is_country: false,
                },
                NamedLocationSpec::Country(country) => CompiledLocation {
                    trusted: false,
                    nets: Vec::new(),
                    countries: country
                        .countries_and_regions
                        .iter()
                        .filter_map(|c| country_code(c))
                        .collect(),
                    include_unknown: country.include_unknown_countries_and_regions,
                    is_country: true,
                },
            })
            .collect();
        let location = |id: &String| {
            location_ids
                .get(&Uuid::parse_str(id).unwrap_or_default())
                .copied()
                .unwrap_or(u32::MAX)
        };
        let mut group_names = Interner::new();
        let mut role_names = Interner::new();
        let mut compiled = Vec::new();
        for (id, spec) in source {
            if spec.state == PolicyState::Disabled {
                continue;
            }
            let c = &spec.conditions;
            let mut people = |include: bool, users: &UsersCondition| {
                let (list, groups, roles, guests) = if include {
                    (
                        &users.include_users,
                        &users.include_groups,
                        &users.include_roles,
                        &users.include_guests_or_external_users,
                    )
                } else {
                    (
                        &users.exclude_users,
                        &users.exclude_groups,
                        &users.exclude_roles,
                        &users.exclude_guests_or_external_users,
                    )
                };
                let mut guest_mask = guest_bits(guests);
                if list.iter().any(|u| u == validate::GUESTS_OR_EXTERNAL_USERS) {
                    guest_mask = 0x3f;
                }
                People {
                    all: include && list.iter().any(|u| u == validate::ALL),
                    users: uuids(list),
                    groups: uuids(groups)
                        .into_iter()
                        .map(|g| group_names.intern(g))
                        .collect(),
                    roles: uuids(roles)
                        .into_iter()
                        .map(|r| role_names.intern(r))
                        .collect(),
                    guests: guest_mask,
                }
            };
            let subject = match (&c.users, &c.client_applications) {
                (_, Some(workloads)) if !workloads.include_service_principals.is_empty() => {
                    SubjectRule::Workloads {
                        all: workloads
                            .include_service_principals
                            .iter()
                            .any(|s| s == validate::SERVICE_PRINCIPALS_IN_MY_TENANT),
                        include: uuids(&workloads.include_service_principals),
                        exclude: uuids(&workloads.exclude_service_principals),
                    }
                }
                (Some(users), _) => SubjectRule::Users {
                    include: people(true, users),
                    exclude: people(false, users),
                },
                (None, _) => SubjectRule::Users {
                    include: People::default(),
                    exclude: People::default(),
                },
            };
            let apps = &c.applications;
            let target = if !apps.include_user_actions.is_empty() {
                TargetRule::Actions(apps.include_user_actions.iter().fold(0, |bits, a| {
                    bits | match a.as_str() {
                        validate::REGISTER_SECURITY_INFO => UserAction::RegisterSecurityInfo.bit(),
                        validate::REGISTER_DEVICE => UserAction::RegisterOrJoinDevices.bit(),
                        _ => 0,
                    }
                }))
            } else if !apps
                .include_authentication_context_class_references
                .is_empty()
            {
                TargetRule::Contexts(
                    apps.include_authentication_context_class_references
                        .iter()
                        .filter_map(|c| auth_context_number(c))
                        .fold(0, |bits, n| bits | (1u128 << n)),
                )
            } else {
                TargetRule::Apps {
                    all: apps.include_applications.iter().any(|a| a == validate::ALL),
                    admin_portal: apps
                        .include_applications
                        .iter()
                        .any(|a| a == validate::ADMIN_PORTALS),
                    include: app_ids(&apps.include_applications),
                    exclude: app_ids(&apps.exclude_applications),
                    exclude_admin_portal: apps
                        .exclude_applications
                        .iter()
                        .any(|a| a == validate::ADMIN_PORTALS),
                }
            };
            let client_apps = if c.client_app_types.contains(&ClientAppType::All) {
                0
            } else {
                c.client_app_types.iter().fold(0, |bits, t| {
                    bits | match t {
                        ClientAppType::All => 0,
                        ClientAppType::Browser => ClientApp::Browser.bit(),
                        ClientAppType::MobileAppsAndDesktopClients => {
                            ClientApp::MobileAppsAndDesktopClients.bit()
                        }
                        ClientAppType::ExchangeActiveSync | ClientAppType::EasSupported => {
                            ClientApp::ExchangeActiveSync.bit()
                        }
                        ClientAppType::Other => ClientApp::Other.bit(),
                    }
                })
            };
            let platforms = c.platforms.as_ref().map(|p| {
                (
                    platform_bits(&p.include_platforms),
                    platform_bits(&p.exclude_platforms),
                    p.include_platforms.contains(&Platform::All),
                )
            });
            let locations = c.locations.as_ref().map(|l| LocationRule {
                include_all: l.include_locations.iter().any(|x| x == validate::ALL),
                include_trusted: l
                    .include_locations
                    .iter()
                    .any(|x| x == validate::ALL_TRUSTED),
                include: l
                    .include_locations
                    .iter()
                    .filter(|x| Uuid::parse_str(x).is_ok())
                    .map(location)
                    .collect(),
                exclude_trusted: l
                    .exclude_locations
                    .iter()
                    .any(|x| x == validate::ALL_TRUSTED),
                exclude: l
                    .exclude_locations
                    .iter()
                    .filter(|x| Uuid::parse_str(x).is_ok())
                    .map(location)
                    .collect(),
            });
            let device_filter = c
                .devices
                .as_ref()
                .and_then(|d| d.device_filter.as_ref())
                .and_then(|f| rule::parse_device_filter(&f.rule).ok().map(|r| (f.mode, r)));
            let device_code_flow = c.authentication_flows.as_ref().map(|f| {
                f.transfer_methods
                    .split(',')
                    .any(|m| m.trim() == "deviceCodeFlow")
            });
            let grant = spec.grant_controls.clone().unwrap_or_default();
            let mut controls = Vec::new();
            for control in &grant.built_in_controls {
                match control {
                    BuiltInControl::Mfa => controls.push(Control::Mfa),
                    BuiltInControl::CompliantDevice => controls.push(Control::CompliantDevice),
                    BuiltInControl::DomainJoinedDevice => {
                        controls.push(Control::DomainJoinedDevice)
                    }
                    BuiltInControl::PasswordChange => controls.push(Control::PasswordChange),
                    _ => {}
                }
            }
            if let Some(strength) = &grant.authentication_strength {
                controls.push(Control::AuthenticationStrength(strength.id));
            }
            controls.extend(
                uuids(&grant.terms_of_use)
                    .into_iter()
                    .map(Control::TermsOfUse),
            );
            compiled.push(CompiledPolicy {
                id: *id,
                display_name: spec.display_name.clone(),
                state: spec.state,
                subject,
                target,
                client_apps,
                platforms,
                locations,
                device_filter,
                sign_in_risk: risk_bits(&c.sign_in_risk_levels),
                user_risk: risk_bits(&c.user_risk_levels),
                sp_risk: risk_bits(&c.service_principal_risk_levels),
                device_code_flow,
                block: grant.built_in_controls.contains(&BuiltInControl::Block),
                operator: grant.operator,
                controls,
                session: spec.session_controls.clone().unwrap_or_default(),
                frequency: spec
                    .session_controls
                    .as_ref()
                    .and_then(|s| s.sign_in_frequency.as_ref())
                    .and_then(SignInFrequency::seconds),
            });
        }
        // Expand every named group once: user -> the named groups they are in.
        let mut user_groups: HashMap<Uuid, Vec<u32>> = HashMap::new();
        for (index, group) in group_names.ids.iter().enumerate() {
            for user in groups.transitive_users(*group) {
                user_groups.entry(user).or_default().push(index as u32);
            }
        }
        PolicySet {
            policies: compiled,
            security_defaults,
            version: 0,
            group_count: group_names.ids.len(),
            group_index: group_names
                .ids
                .iter()
                .enumerate()
                .map(|(index, id)| (*id, index as u32))
                .collect(),
            user_groups: user_groups
                .into_iter()
                .map(|(user, list)| (user, list.into_boxed_slice()))
                .collect(),
            role_index: role_names.index,
            locations: compiled_locations,
        }
    }

    /// Whether `decision` (made by this set) looked at a country: a policy whose
    /// locations condition names a country location got as far as checking it.
    pub fn used_countries(&self, decision: &Decision) -> bool {
        decision.policies.iter().any(|outcome| {
            let reached = outcome
                .miss
                .is_none_or(|m| m.condition >= Condition::Locations);
            let names_countries = self
                .policies
                .get(outcome.policy as usize)
                .and_then(|p| p.locations.as_ref())
                .is_some_and(|rule| {
                    rule.include.iter().chain(&rule.exclude).any(|i| {
                        self.locations
                            .get(*i as usize)
                            .is_some_and(|l| l.is_country)
                    })
                });
            reached && names_countries
        })
    }

    /// The location fence of a token issued for `sign_in` (continuous access
    /// evaluation, strict location enforcement): when an enforced policy that
    /// strictly enforces locations would apply to this sign-in somewhere, the
    /// ids of the enforced policies with a locations condition that would
    /// apply somewhere and that this sign-in does not meet (a block, or
    /// controls it did not satisfy). Wherever one of them applies, the token
    /// is refused ([`PolicySet::fenced_out`]): Entra's "block outside trusted
    /// locations" policy with strict enforcement is in it even though, at a
    /// trusted location, it does not apply.
    pub fn location_fence(&self, sign_in: &SignIn<'_>) -> Vec<Uuid> {
        let enforced = |p: &&CompiledPolicy| p.state == PolicyState::Enabled;
        if !self
            .policies
            .iter()
            .filter(enforced)
            .any(CompiledPolicy::strict_location)
        {
            return Vec::new();
        }
        let mut facts = Facts::new(self, sign_in);
        let somewhere: Vec<&CompiledPolicy> = self
            .policies
            .iter()
            .filter(enforced)
            .filter(|p| p.applies(&mut facts, sign_in, false).is_ok())
            .collect();
        if !somewhere.iter().any(|p| p.strict_location()) {
            return Vec::new();
        }
        somewhere
            .into_iter()
            .filter(|p| p.locations.is_some() && (p.block || !p.met(sign_in).1))
            .map(|p| p.id)
            .collect()
    }

    /// The first policy of a token's location fence (one still enforced)
    /// that applies at an address: the token is refused there. The policies
    /// count as they are now: one deleted, disabled or report-only since
    /// refuses nowhere, one whose locations condition is gone everywhere;
    /// and a fence holds only while some enforced policy still strictly
    /// enforces locations.
    pub fn fenced_out(
        &self,
        fence: &[Uuid],
        ip: Option<IpAddr>,
        country: Option<[u8; 2]>,
    ) -> Option<&CompiledPolicy> {
        let enforced = |p: &&CompiledPolicy| p.state == PolicyState::Enabled;
        if fence.is_empty()
            || !self
                .policies
                .iter()
                .filter(enforced)
                .any(CompiledPolicy::strict_location)
        {
            return None;
        }
        let (matched, trusted) = located(&self.locations, ip, country);
        self.policies.iter().filter(enforced).find(|p| {
            fence.contains(&p.id)
                && p.locations
                    .as_ref()
                    .is_none_or(|rule| rule.admits(&matched, trusted).is_ok())
        })
    }

    /// Decides one sign-in.
    pub fn evaluate(&self, sign_in: &SignIn<'_>) -> Decision {
        let mut facts = Facts::new(self, sign_in);
        let mut outcomes = Vec::with_capacity(self.policies.len());
        let mut session = EffectiveSession::default();
        let mut blocked = false;
        let mut unmet = false;
        let mut reauthenticate = false;
        for (index, policy) in self.policies.iter().enumerate() {
            let report_only = policy.state == PolicyState::EnabledForReportingButNotEnforced;
            let outcome = match policy.applies(&mut facts, sign_in, true) {
                Err(miss) => PolicyOutcome {
                    policy: index as u32,
                    kind: if report_only {
                        PolicyResultKind::ReportOnlyNotApplied
                    } else {
                        PolicyResultKind::NotApplied
                    },
                    miss: Some(miss),
                    block: false,
                    controls: ControlsMet::default(),
                    reauthenticate: false,
                },
                Ok(()) => {
                    let (controls, met) = policy.met(sign_in);
                    let frequency = policy.frequency;
                    let stale =
                        frequency.is_some_and(|limit| stale(limit, sign_in.proof.auth_age_seconds));
                    let kind = match (report_only, policy.block, met, stale) {
                        (false, true, _, _) | (false, false, false, _) => PolicyResultKind::Failure,
                        (false, false, true, _) => PolicyResultKind::Success,
                        (true, true, _, _) => PolicyResultKind::ReportOnlyFailure,
                        (true, false, false, _) | (true, false, true, true) => {
                            PolicyResultKind::ReportOnlyInterrupted
                        }
                        (true, false, true, false) => PolicyResultKind::ReportOnlySuccess,
                    };
                    if !report_only {
                        blocked |= policy.block;
                        unmet |= !met;
                        reauthenticate |= stale;
                        merge_session(&mut session, &policy.session);
                    }
                    PolicyOutcome {
                        policy: index as u32,
                        kind,
                        miss: None,
                        block: policy.block,
                        controls,
                        reauthenticate: stale,
                    }
                }
            };
            outcomes.push(outcome);
        }
        let outcome = if blocked {
            Outcome::Block
        } else if unmet || reauthenticate {
            Outcome::Interrupt
        } else {
            Outcome::Allow
        };
        let register_mfa = self.security_defaults
            && matches!(
                sign_in.subject,
                Subject::User {
                    has_mfa_method: false,
                    groups: &[],
                    ..
                }
            );
        Decision {
            outcome,
            policies: outcomes,
            session,
            security_defaults: self.security_defaults,
            register_mfa,
        }
    }
}

/// Entra allows five minutes for "every time".
pub const EVERY_TIME_SECONDS: i64 = 300;

fn stale(limit: i64, age: Option<i64>) -> bool {
    let limit = if limit == 0 {
        EVERY_TIME_SECONDS
    } else {
        limit
    };
    age.is_none_or(|age| age > limit)
}

fn country_code(text: &str) -> Option<[u8; 2]> {
    let bytes = text.as_bytes();
    (bytes.len() == 2 && bytes.iter().all(u8::is_ascii_alphabetic))
        .then(|| [bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase()])
}

/// Parses a country code as the engine takes it.
pub fn parse_country(text: &str) -> Option<[u8; 2]> {
    country_code(text)
}

fn platform_bits(platforms: &[Platform]) -> u8 {
    platforms.iter().fold(0, |bits, p| bits | (1 << (*p as u8)))
}

fn satisfied(control: Control, sign_in: &SignIn<'_>) -> bool {
    let proof = &sign_in.proof;
    match control {
        Control::Mfa => proof.strengths.contains(&strength::MFA),
        Control::AuthenticationStrength(id) => proof.strengths.contains(&id),
        Control::CompliantDevice => sign_in.device.is_some_and(|(_, d)| d.is_compliant),
        Control::DomainJoinedDevice => sign_in
            .device
            .is_some_and(|(_, d)| d.trust_type == Some(TrustType::Hybrid)),
        Control::PasswordChange => proof.password_changed,
        Control::TermsOfUse(id) => proof.accepted_terms.contains(&id),
    }
}

fn merge_session(into: &mut EffectiveSession, controls: &SessionControls) {
    if let Some(seconds) = controls
        .sign_in_frequency
        .as_ref()
        .and_then(SignInFrequency::seconds)
    {
        into.sign_in_frequency_seconds = Some(
            into.sign_in_frequency_seconds
                .map_or(seconds, |s| s.min(seconds)),
        );
    }
    if let Some(browser) = &controls.persistent_browser
        && browser.is_enabled
    {
        let always = browser.mode == PersistentBrowserMode::Always;
        into.persistent_browser = Some(into.persistent_browser.map_or(always, |a| a && always));
    }
    if controls
        .application_enforced_restrictions
        .as_ref()
        .is_some_and(|e| e.is_enabled)
    {
        into.application_enforced_restrictions = true;
    }
    if let Some(cloud) = &controls.cloud_app_security
        && cloud.is_enabled
        && let Some(kind) = cloud.cloud_app_security_type
    {
        into.restricted_session = Some(into.restricted_session.map_or(kind, |k| k.max(kind)));
    }
    if let Some(cae) = &controls.continuous_access_evaluation {
        into.continuous_access_evaluation = Some(match into.continuous_access_evaluation {
            None => cae.mode,
            Some(CaeMode::Disabled) => cae.mode,
            Some(current) if cae.mode == CaeMode::Disabled => current,
            Some(current) => current.max(cae.mode),
        });
    }
    if controls.disable_resilience_defaults == Some(true) {
        into.disable_resilience_defaults = true;
    }
}

impl CompiledPolicy {
    /// How the policy's grant controls combine.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// Its grant controls other than block.
    pub fn controls(&self) -> &[Control] {
        &self.controls
    }

    /// The authentication contexts it targets (bit `n` for `cn`; 0 when it
    /// targets applications or user actions).
    pub fn context_mask(&self) -> u128 {
        match self.target {
            TargetRule::Contexts(mask) => mask,
            _ => 0,
        }
    }
}

/// What one decision computes once, on first use.
struct Facts<'s> {
    named_locations: &'s [CompiledLocation],
    groups: Bits,
    roles: Bits,
    guest: u8,
    locations: Option<(Bits, bool)>,
}

impl<'s> Facts<'s> {
    fn new(set: &'s PolicySet, sign_in: &SignIn<'_>) -> Facts<'s> {
        let mut groups = Bits::with_len(set.group_count);
        let mut roles = Bits::with_len(set.role_index.len());
        let mut guest = 0;
        if let Subject::User {
            id,
            roles: held,
            guest: kind,
            groups: now_in,
            ..
        } = sign_in.subject
        {
            if let Some(list) = set.user_groups.get(&id) {
                for g in list.iter() {
                    groups.set(*g);
                }
            }
            for group in now_in {
                if let Some(g) = set.group_index.get(group) {
                    groups.set(*g);
                }
            }
            for role in held {
                if let Some(i) = set.role_index.get(role) {
                    roles.set(*i);
                }
            }
            if let Some(kind) = kind
                && let Some(i) = validate::GUEST_KINDS.iter().position(|g| *g == kind)
            {
                guest = 1 << i;
            }
        }
        Facts {
            named_locations: &set.locations,
            groups,
            roles,
            guest,
            locations: None,
        }
    }

    fn locations(&mut self, sign_in: &SignIn<'_>) -> &(Bits, bool) {
        let named = self.named_locations;
        self.locations
            .get_or_insert_with(|| located(named, sign_in.ip, sign_in.country))
    }
}

/// The named locations an address is in (bit per location), and whether one
/// of them is trusted.
fn located(
    named: &[CompiledLocation],
    ip: Option<IpAddr>,
    country: Option<[u8; 2]>,
) -> (Bits, bool) {
    let mut matched = Bits::with_len(named.len());
    let mut trusted = false;
    for (i, location) in named.iter().enumerate() {
        let hit = if location.is_country {
            match country {
                Some(code) => location.countries.contains(&code),
                None => location.include_unknown,
            }
        } else {
            ip.is_some_and(|ip| location.nets.iter().any(|n| n.contains(&ip)))
        };
        if hit {
            matched.set(i as u32);
            trusted |= location.trusted;
        }
    }
    (matched, trusted)
}

impl LocationRule {
    /// Whether the rule lets its policy apply at an address in the locations
    /// `matched` (`trusted`: one of them is trusted); the miss if not.
    fn admits(&self, matched: &Bits, trusted: bool) -> Result<(), Miss> {
        if !(self.include_all
            || (self.include_trusted && trusted)
            || self.include.iter().any(|i| matched.get(*i)))
        {
            return miss(Condition::Locations, false);
        }
        if (self.exclude_trusted && trusted) || self.exclude.iter().any(|i| matched.get(*i)) {
            return miss(Condition::Locations, true);
        }
        Ok(())
    }
}

fn miss(condition: Condition, excluded: bool) -> Result<(), Miss> {
    Err(Miss {
        condition,
        excluded,
    })
}

impl People {
    fn matches(&self, id: Uuid, facts: &Facts) -> bool {
        self.all
            || self.users.contains(&id)
            || facts.groups.any(&self.groups)
            || facts.roles.any(&self.roles)
            || self.guests & facts.guest != 0
    }
}

impl CompiledPolicy {
    /// Which of its controls a sign-in satisfies, and whether that meets
    /// the policy (a block is never met; its sign-in frequency aside).
    fn met(&self, sign_in: &SignIn<'_>) -> (ControlsMet, bool) {
        let controls =
            ControlsMet::from_states(self.controls.iter().map(|c| satisfied(*c, sign_in)));
        let met = match self.operator {
            _ if controls.is_empty() => true,
            Operator::AND => controls.all(),
            Operator::OR => controls.any(),
        };
        (controls, met)
    }

    /// Continuous access evaluation strictly enforces locations for it.
    fn strict_location(&self) -> bool {
        matches!(
            self.session
                .continuous_access_evaluation
                .as_ref()
                .map(|c| c.mode),
            Some(CaeMode::StrictLocation | CaeMode::StrictEnforcement)
        )
    }

    /// Whether the policy applies to a sign-in (`locations`: its locations
    /// condition counts; without it, whether it would apply somewhere).
    fn applies(
        &self,
        facts: &mut Facts,
        sign_in: &SignIn<'_>,
        locations: bool,
    ) -> Result<(), Miss> {
        match (&self.subject, sign_in.subject) {
            (SubjectRule::Users { include, exclude }, Subject::User { id, .. }) => {
                if !include.matches(id, facts) {
                    return miss(Condition::Users, false);
                }
                if exclude.matches(id, facts) {
                    return miss(Condition::Users, true);
                }
            }
            (
                SubjectRule::Workloads {
                    all,
                    include,
                    exclude,
                },
                Subject::Workload {
                    service_principal_id,
                    ..
                },
            ) => {
                if !(*all || include.contains(&service_principal_id)) {
                    return miss(Condition::WorkloadIdentities, false);
                }
                if exclude.contains(&service_principal_id) {
                    return miss(Condition::WorkloadIdentities, true);
                }
            }
            (SubjectRule::Users { .. }, Subject::Workload { .. }) => {
                return miss(Condition::Users, false);
            }
            (SubjectRule::Workloads { .. }, Subject::User { .. }) => {
                return miss(Condition::WorkloadIdentities, false);
            }
        }
        match (&self.target, sign_in.target) {
            (
                TargetRule::Apps {
                    all,
                    admin_portal,
                    include,
                    exclude,
                    exclude_admin_portal,
                },
                Target::App {
                    app_id,
                    resource,
                    admin_portal: is_portal,
                },
            ) => {
                let check = |id: AppId| {
                    if !(*all || (*admin_portal && is_portal) || include.contains(&id)) {
                        return miss(Condition::Applications, false);
                    }
                    if exclude.contains(&id) || (*exclude_admin_portal && is_portal) {
                        return miss(Condition::Applications, true);
                    }
                    Ok(())
                };
                if let Err(first) = check(app_id) {
                    match resource {
                        Some(resource) if resource != app_id => {
                            check(resource).map_err(|_| first)?
                        }
                        _ => return Err(first),
                    }
                }
            }
            (TargetRule::Actions(mask), Target::UserAction(action)) => {
                if mask & action.bit() == 0 {
                    return miss(Condition::Applications, false);
                }
            }
            (TargetRule::Contexts(mask), _) => {
                let asked = sign_in
                    .auth_contexts
                    .iter()
                    .filter_map(|c| auth_context_number(c))
                    .any(|n| mask & (1u128 << n) != 0);
                if !asked {
                    return miss(Condition::Applications, false);
                }
            }
            _ => return miss(Condition::Applications, false),
        }
        if self.client_apps != 0 && self.client_apps & sign_in.client_app.bit() == 0 {
            return miss(Condition::ClientAppTypes, false);
        }
        if let Some((include, exclude, all)) = self.platforms {
            let bit = sign_in.platform.map(|p| 1u8 << (p as u8)).unwrap_or(0);
            if !all && include & bit == 0 {
                return miss(Condition::Platforms, false);
            }
            if exclude & bit != 0 {
                return miss(Condition::Platforms, true);
            }
        }
        if let Some(rule) = self.locations.as_ref().filter(|_| locations) {
            let (matched, trusted) = facts.locations(sign_in);
            rule.admits(matched, *trusted)?;
        }
        if let Some((mode, rule)) = &self.device_filter {
            let hit = rule::matches_device(rule, sign_in.device);
            match mode {
                FilterMode::Include if !hit => return miss(Condition::Devices, false),
                FilterMode::Exclude if hit => return miss(Condition::Devices, true),
                _ => {}
            }
        }
        if self.sign_in_risk != 0 && self.sign_in_risk & (1 << (sign_in.sign_in_risk as u8)) == 0 {
            return miss(Condition::SignInRisk, false);
        }
        match sign_in.subject {
            Subject::User { risk, .. } => {
                if self.user_risk != 0 && self.user_risk & (1 << (risk as u8)) == 0 {
                    return miss(Condition::UserRisk, false);
                }
            }
            Subject::Workload { risk, .. } => {
                if self.sp_risk != 0 && self.sp_risk & (1 << (risk as u8)) == 0 {
                    return miss(Condition::ServicePrincipalRisk, false);
                }
            }
        }
        if let Some(device_code) = self.device_code_flow
            && !(device_code && sign_in.device_code_flow)
        {
            return miss(Condition::AuthenticationFlows, false);
        }
        Ok(())
    }
}

//! The store interface: what Tessera needs from a database, and nothing about what the
//! data means.
//!
//! Objects are kept as versioned JSON documents with three indexed columns the caller
//! fills (`key1`, unique per tenant and kind; `key2`, a non-unique reference; and
//! `sort_key`, the listing order). Relations between objects (group membership,
//! ownership, administrative-unit membership) are links. Every tenant has one audit
//! hash chain.
//!
//! Writes happen in a [`WriteTx`], which holds the tenant's chain head lock for its
//! whole life: writes within a tenant are serialized across every node, so checks
//! made inside the transaction (does the manager exist? would this nesting make a
//! cycle?) stay true until commit. A transaction that changed anything commits only
//! with at least one audit event: there is no change without its event, and since
//! both commit together, no event without its change.
//!
//! Architecture invariant: store crates hold no business rules. They never parse
//! `data`, never decide who may do what, never validate attributes.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tessera_core::{TenantId, Timestamp};
use uuid::Uuid;

/// Kinds of stored objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    User,
    Group,
    Device,
    Application,
    ServicePrincipal,
    AdministrativeUnit,
    RoleAssignment,
    AttributeDefinition,
    AccessToken,
    ClientSecret,
    /// A user's authentication method (password, TOTP, passkey, temporary access pass).
    AuthMethod,
    /// A tenant-wide authentication setting (the methods policy).
    AuthPolicy,
    /// An authentication strength (an allowed set of method combinations).
    AuthStrength,
    /// A CA certificate in the tenant's trust store for certificate sign-in.
    CertificateAuthority,
    /// A CA's certificate revocation list.
    RevocationList,
    /// A token signing key (private part sealed).
    SigningKey,
    /// A user, group or workload assigned to an application (with an app role).
    AppRoleAssignment,
    /// Consent: the delegated scopes an application may use, for one user or all.
    PermissionGrant,
    /// A Conditional Access policy.
    ConditionalAccessPolicy,
    /// A named location (IP ranges or countries) for Conditional Access.
    NamedLocation,
    /// Terms of use a Conditional Access policy can require.
    TermsOfUse,
    /// A user's acceptance of terms of use.
    TermsAcceptance,
    /// A user's or workload's risk, as set through the risk API.
    RiskState,
    /// An application's SAML configuration (key1: its SP entity id; key2: its appId).
    SamlApp,
    /// A key of the SAML IdP, sealed: a signing certificate (key1: its
    /// thumbprint; key2: `tenant` or an application's appId), or the secret
    /// persistent NameIDs are derived from (key1 and key2: `pairwise`).
    SamlKey,
    /// A Privileged Identity Management schedule: a principal's eligibility for a
    /// role, or a time-bound (or PIM-made permanent) assignment of it (key2: the
    /// principal; sort key: role, scope, principal).
    PimSchedule,
    /// A PIM schedule request (key2: the principal; sort key: its creation time).
    PimRequest,
    /// A role's PIM settings (key1: `role:<id>`), and PIM's alert thresholds
    /// (key1: `alerts`).
    PimPolicy,
    /// A notification waiting for delivery, or delivered (key2: its state).
    OutboxMessage,
    /// A SIEM sink: where a tenant's logs are streamed (key1: its lowercased name).
    SiemSink,
    /// What a provisioning client wrote for a user or group over SCIM (same id as
    /// the object; key1: `user:` and the lowercased userName; key2: the externalId).
    ScimObject,
    /// A long-lived bearer token for the SCIM API (key1: its hash).
    ProvisioningToken,
    /// A run of an HR import: its plan's counts, each row's result, and while it
    /// is held for an administrator, the file (key2: its state).
    ProvisioningRun,
    /// A lifecycle workflow (joiner, mover, leaver).
    LifecycleWorkflow,
    /// One firing of a lifecycle workflow for one user (key1: the event's key,
    /// so it runs once; key2: the workflow's id).
    LifecycleRun,
    /// An application's outbound provisioning: its settings (key1 `config:<sp>`)
    /// and its state (key1 `status:<sp>`); key2 the service principal.
    OutboundProvisioning,
    /// What an application holds of one object, as outbound provisioning last
    /// left it (key1 `<sp>:<object>`; key2 the service principal).
    OutboundObject,
    /// A Shared Signals stream Tessera transmits on (key1: its stream id;
    /// key2: the receiver's client id).
    SignalStream,
    /// A Security Event Token waiting in a stream's queue until it is
    /// delivered or acknowledged (key1: its jti; key2: the stream record's id;
    /// sort key: its place in the queue).
    SignalEvent,
    /// A transmitter Tessera receives signals from (key1: its issuer).
    SignalReceiver,
}

impl Kind {
    pub const ALL: [Kind; 40] = [
        Kind::User,
        Kind::Group,
        Kind::Device,
        Kind::Application,
        Kind::ServicePrincipal,
        Kind::AdministrativeUnit,
        Kind::RoleAssignment,
        Kind::AttributeDefinition,
        Kind::AccessToken,
        Kind::ClientSecret,
        Kind::AuthMethod,
        Kind::AuthPolicy,
        Kind::AuthStrength,
        Kind::CertificateAuthority,
        Kind::RevocationList,
        Kind::SigningKey,
        Kind::AppRoleAssignment,
        Kind::PermissionGrant,
        Kind::ConditionalAccessPolicy,
        Kind::NamedLocation,
        Kind::TermsOfUse,
        Kind::TermsAcceptance,
        Kind::RiskState,
        Kind::SamlApp,
        Kind::SamlKey,
        Kind::PimSchedule,
        Kind::PimRequest,
        Kind::PimPolicy,
        Kind::OutboxMessage,
        Kind::SiemSink,
        Kind::ScimObject,
        Kind::ProvisioningToken,
        Kind::ProvisioningRun,
        Kind::LifecycleWorkflow,
        Kind::LifecycleRun,
        Kind::OutboundProvisioning,
        Kind::OutboundObject,
        Kind::SignalStream,
        Kind::SignalEvent,
        Kind::SignalReceiver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Device => "device",
            Kind::Application => "application",
            Kind::ServicePrincipal => "servicePrincipal",
            Kind::AdministrativeUnit => "administrativeUnit",
            Kind::RoleAssignment => "roleAssignment",
            Kind::AttributeDefinition => "attributeDefinition",
            Kind::AccessToken => "accessToken",
            Kind::ClientSecret => "clientSecret",
            Kind::AuthMethod => "authMethod",
            Kind::AuthPolicy => "authPolicy",
            Kind::AuthStrength => "authStrength",
            Kind::CertificateAuthority => "certificateAuthority",
            Kind::RevocationList => "revocationList",
            Kind::SigningKey => "signingKey",
            Kind::AppRoleAssignment => "appRoleAssignment",
            Kind::PermissionGrant => "oauth2PermissionGrant",
            Kind::ConditionalAccessPolicy => "conditionalAccessPolicy",
            Kind::NamedLocation => "namedLocation",
            Kind::TermsOfUse => "agreement",
            Kind::TermsAcceptance => "agreementAcceptance",
            Kind::RiskState => "riskState",
            Kind::SamlApp => "samlApplication",
            Kind::SamlKey => "samlKey",
            Kind::PimSchedule => "roleSchedule",
            Kind::PimRequest => "roleScheduleRequest",
            Kind::PimPolicy => "roleManagementPolicy",
            Kind::OutboxMessage => "outboxMessage",
            Kind::SiemSink => "siemSink",
            Kind::ScimObject => "scimObject",
            Kind::ProvisioningToken => "provisioningToken",
            Kind::ProvisioningRun => "provisioningRun",
            Kind::LifecycleWorkflow => "lifecycleWorkflow",
            Kind::LifecycleRun => "lifecycleRun",
            Kind::OutboundProvisioning => "outboundProvisioning",
            Kind::OutboundObject => "outboundObject",
            Kind::SignalStream => "signalStream",
            Kind::SignalEvent => "signalEvent",
            Kind::SignalReceiver => "signalReceiver",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Relations between objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rel {
    /// group -> member (user, group, device, service principal)
    Member,
    /// object -> owner (user or service principal)
    Owner,
    /// administrative unit -> member (user, group, device)
    UnitMember,
}

impl Rel {
    pub fn as_str(self) -> &'static str {
        match self {
            Rel::Member => "member",
            Rel::Owner => "owner",
            Rel::UnitMember => "unitMember",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created: Timestamp,
}

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    pub id: Uuid,
    /// Starts at 1 and grows by one with every update.
    pub version: i64,
    pub created: Timestamp,
    pub modified: Timestamp,
    /// Unique per tenant and kind when set (a user principal name, a client id, a hash).
    pub key1: Option<String>,
    /// A reference others look the object up by (a manager, an owner, a principal).
    pub key2: Option<String>,
    /// The listing order; lists are sorted by `(sort_key, id)`.
    pub sort_key: String,
    /// The object's JSON document; opaque to the store.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub rel: Rel,
    pub source: Uuid,
    pub source_kind: Kind,
    pub target: Uuid,
    pub target_kind: Kind,
}

/// A position in a listing: the `(sort_key, id)` of the last item seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub sort_key: String,
    pub id: Uuid,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub after: Option<Cursor>,
    pub limit: u32,
    /// Only records whose sort key starts with this.
    pub prefix: Option<String>,
    /// Only records with this `key2`.
    pub key2: Option<String>,
}

/// One step of a path into a record's JSON data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(u32),
}

/// What a search condition reads: a column of the record, a place in its JSON data,
/// or the same of its companion (the record of `Search::companion` kind with the
/// same id), or, inside [`Predicate::AnyElement`], a place in the element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Id,
    Key1,
    Key2,
    SortKey,
    /// Microseconds since the epoch (compare with [`Scalar::Int`]).
    Created,
    Modified,
    Data(Vec<Step>),
    /// The companion's id: present exactly when there is a companion.
    CompanionId,
    /// The companion's `modified` (microseconds, like `Modified`).
    CompanionModified,
    CompanionKey1,
    CompanionKey2,
    CompanionData(Vec<Step>),
    /// Relative to the element [`Predicate::AnyElement`] iterates (empty: the element).
    Element(Vec<Step>),
}

/// A literal a condition compares with. A JSON value matches only a literal of its
/// own JSON type (a string never equals a number).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Number(f64),
    Bool(bool),
    /// For the integer columns (`Created`, `Modified`).
    Int(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// Has a value that is not null, `""`, `[]` or `{}`.
    Present,
    Eq(Scalar),
    Gt(Scalar),
    Ge(Scalar),
    Lt(Scalar),
    Le(Scalar),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
}

/// A predicate over records, compiled to SQL by the backend (values are always
/// bound, never spliced). Every condition is two-valued: a missing value fails a
/// test, so `Not` of it holds. Text compares bytewise; `fold_case` folds ASCII
/// letters on both sides first.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    True,
    And(Vec<Predicate>),
    Or(Vec<Predicate>),
    Not(Box<Predicate>),
    Test {
        field: Field,
        test: Test,
        fold_case: bool,
    },
    /// Some element of the JSON array at `array` satisfies `element` (whose fields
    /// are [`Field::Element`]s). Does not nest.
    AnyElement {
        array: Field,
        element: Box<Predicate>,
    },
    /// A link `rel` goes from this record to `target` (a group with this member).
    LinkTo {
        rel: Rel,
        target: Uuid,
    },
    /// A link `rel` goes from `source` to this record (a member of this group).
    LinkFrom {
        rel: Rel,
        source: Uuid,
    },
}

/// Most conditions a predicate may hold; a larger one is refused.
pub const MAX_CONDITIONS: usize = 512;

impl Predicate {
    /// How many conditions and operators the predicate holds.
    pub fn size(&self) -> usize {
        match self {
            Predicate::True | Predicate::Test { .. } => 1,
            Predicate::LinkTo { .. } | Predicate::LinkFrom { .. } => 1,
            Predicate::And(items) | Predicate::Or(items) => {
                1 + items.iter().map(Predicate::size).sum::<usize>()
            }
            Predicate::Not(inner) => 1 + inner.size(),
            Predicate::AnyElement { element, .. } => 1 + element.size(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// By `(sort_key, id)`, as `list` orders.
    Natural,
    /// By a field's text (records without it last), then by id.
    By {
        field: Field,
        descending: bool,
        fold_case: bool,
    },
}

/// A filtered, ordered page of records of one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub predicate: Predicate,
    /// The kind of companion record (same id) to read alongside, if any.
    pub companion: Option<Kind>,
    pub order: Order,
    /// Records to skip.
    pub offset: u64,
    /// Only records after this `(sort_key, id)` (with `Order::Natural`).
    pub after: Option<Cursor>,
    pub limit: u32,
}

/// A record and its companion.
pub type Found = (Record, Option<Record>);

/// An audit event handed to the store: the body is opaque JSON; the other fields are
/// copies of body fields, indexed for queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAppend {
    pub id: Uuid,
    pub time: Timestamp,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_id: Option<String>,
    pub correlation_id: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub time: Timestamp,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_id: Option<String>,
    pub correlation_id: String,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

/// Filters for audit queries. Results come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    pub action: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only events with a sequence number below this (the cursor).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {id} does not exist")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id} was changed by someone else (version {expected} is no longer current)")]
    VersionConflict {
        kind: &'static str,
        id: String,
        expected: i64,
    },
    #[error("another {kind} already has this unique key")]
    Duplicate { kind: &'static str },
    #[error("the tenant already exists")]
    TenantExists,
    #[error("a transaction that changes data must append an audit event before it commits")]
    MissingAuditEvent,
    #[error("the database schema is newer than this build (migration {0} is unknown)")]
    SchemaTooNew(i64),
    #[error("migration {version} was changed after it was applied (checksum mismatch)")]
    MigrationChanged { version: i64 },
    /// A text the backend cannot hold (PostgreSQL refuses NUL characters). The
    /// edge refuses such input first; this keeps a slip from looking like an outage.
    #[error("a value holds a character that cannot be stored (NUL)")]
    UnstorableText,
    #[error("database error: {0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Reads, available on the store and inside a transaction.
#[async_trait]
pub trait Reader: Send {
    async fn get(&mut self, tenant: TenantId, kind: Kind, id: Uuid) -> Result<Option<Record>>;
    async fn get_by_key1(
        &mut self,
        tenant: TenantId,
        kind: Kind,
        key1: &str,
    ) -> Result<Option<Record>>;
    async fn list(
        &mut self,
        tenant: TenantId,
        kind: Kind,
        query: &ListQuery,
    ) -> Result<Vec<Record>>;
    /// Links from `source`, ordered by target id, after `after`.
    async fn links_from(
        &mut self,
        tenant: TenantId,
        rel: Rel,
        source: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Link>>;
    /// All links to `target`.
    async fn links_to(&mut self, tenant: TenantId, rel: Rel, target: Uuid) -> Result<Vec<Link>>;
    /// Records of `kind` that satisfy the search's predicate, in its order, with
    /// their companions.
    async fn search(&mut self, tenant: TenantId, kind: Kind, search: &Search)
    -> Result<Vec<Found>>;
    /// How many records of `kind` satisfy `predicate`.
    async fn count(
        &mut self,
        tenant: TenantId,
        kind: Kind,
        predicate: &Predicate,
        companion: Option<Kind>,
    ) -> Result<u64>;
}

#[async_trait]
pub trait WriteTx: Reader {
    /// Advances the named counter (the session store's, read with
    /// `SessionStore::counter_get`) by one within this transaction, however
    /// often it is called in it: it moves when the transaction commits, and not
    /// if it does not.
    async fn counter_bump(&mut self, tenant: TenantId, key: &str, now: Timestamp) -> Result<()>;
    /// Appends revocations of this transaction's tenant: numbered and seen by
    /// readers when it commits (`SessionStore::revocations_append`).
    async fn revocations_append(&mut self, rows: &[RevocationRow]) -> Result<()>;
    /// Inserts a new record (its version must be 1).
    async fn insert(&mut self, tenant: TenantId, record: &Record) -> Result<()>;
    /// Replaces a record whose stored version is `record.version - 1`.
    async fn update(&mut self, tenant: TenantId, record: &Record) -> Result<()>;
    /// Deletes a record, and every link from or to it.
    async fn delete(
        &mut self,
        tenant: TenantId,
        kind: Kind,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<()>;
    /// Adds a link; returns false when it existed already.
    async fn link(&mut self, tenant: TenantId, link: &Link, created: Timestamp) -> Result<bool>;
    /// Removes a link; returns false when there was none.
    async fn unlink(
        &mut self,
        tenant: TenantId,
        rel: Rel,
        source: Uuid,
        target: Uuid,
    ) -> Result<bool>;
    /// Appends an event to the tenant's chain and returns it as stored.
    async fn append_audit(&mut self, tenant: TenantId, event: &AuditAppend) -> Result<AuditRow>;
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// A server-side session, or a sign-in still in progress (`user_id` unset until the
/// user is known). The id is a hash of the secret the browser holds, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub user_id: Option<Uuid>,
    pub created: Timestamp,
    pub last_seen: Timestamp,
    /// Absolute end of the session.
    pub expires: Timestamp,
    pub revoked: Option<Timestamp>,
    /// Starts at 1 and grows by one with every update.
    pub version: i64,
    /// Opaque JSON.
    pub data: String,
}

impl SessionRow {
    /// A short-lived row of protocol state (a pending request, a code, a seen
    /// id): no user, version 1, ending `seconds` after `now`.
    pub fn transient(id: String, now: Timestamp, seconds: i64, data: String) -> SessionRow {
        SessionRow {
            id,
            user_id: None,
            created: now,
            last_seen: now,
            expires: now.plus_seconds(seconds),
            revoked: None,
            version: 1,
            data,
        }
    }
}

/// One sign-in attempt, or an aggregate of several. The indexed fields are copies of
/// body fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInRow {
    pub id: Uuid,
    /// For an aggregate, its latest attempt.
    pub time: Timestamp,
    pub user_id: Option<Uuid>,
    /// The name typed, or the user's principal name.
    pub user_name: String,
    pub application: Option<String>,
    /// `success`, `failure` or `interrupted`.
    pub result: String,
    pub failure_code: Option<String>,
    pub correlation_id: String,
    /// Opaque JSON.
    pub body: String,
    /// How many attempts the entry stands for: 1, or more for an aggregate.
    pub attempts: i64,
    /// Makes the entry an aggregate: appending an entry whose key a tenant's entry
    /// already has adds its attempts to that entry and moves its `time` to the later
    /// of the two, instead of adding a row. The rest of the first entry stays.
    pub aggregate_key: Option<String>,
}

/// A change that ends tokens already out (continuous access evaluation): those
/// of `kind` and `subject` issued before `since`, until `expires`. Every node
/// reads them in the order of their numbers (`revocations_after`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRow {
    pub tenant: TenantId,
    pub kind: String,
    pub subject: String,
    pub since: Timestamp,
    pub expires: Timestamp,
    pub reason: String,
}

/// A log whose entries each tenant numbers for the SIEM export, from 1 without
/// gaps, in the order readers may take them (`sign_in_scan`,
/// `risk_detection_scan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberedLog {
    SignIns,
    RiskDetections,
}

impl NumberedLog {
    /// The key of the counter the log's numbers are kept in (a backend may
    /// hold the head elsewhere too: read it with `SessionStore::numbered_head`).
    pub fn counter(self) -> &'static str {
        match self {
            NumberedLog::SignIns => "seq:signIns",
            NumberedLog::RiskDetections => "seq:riskDetections",
        }
    }
}

/// Filters for sign-in log queries. Results come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInQuery {
    pub user_id: Option<Uuid>,
    pub user_name: Option<String>,
    pub result: Option<String>,
    /// The application's name, as logged.
    pub application: Option<String>,
    pub failure_code: Option<String>,
    pub correlation_id: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only entries before this `(time, id)` (the cursor).
    pub before: Option<(Timestamp, Uuid)>,
    pub limit: u32,
}

/// One risk detection (Identity Protection). The indexed fields are copies of
/// body fields; the body (evidence, names, location) is opaque JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskDetectionRow {
    pub id: Uuid,
    pub detected: Timestamp,
    /// The principal's id (a user's or a service principal's).
    pub user_id: Option<Uuid>,
    /// `user` or `servicePrincipal`.
    pub principal_type: String,
    /// `riskEventType`.
    pub event_type: String,
    /// `low`, `medium` or `high`.
    pub level: String,
    /// `realTime` or `offline`.
    pub timing: String,
    pub sign_in_id: Option<Uuid>,
    pub ip: Option<String>,
    pub body: String,
}

/// Filters for risk detection queries. Results come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskDetectionQuery {
    pub user_id: Option<Uuid>,
    /// `user` or `servicePrincipal`; none: both.
    pub principal_type: Option<String>,
    pub event_type: Option<String>,
    pub level: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only entries before this `(detected, id)` (the cursor).
    pub before: Option<(Timestamp, Uuid)>,
    pub limit: u32,
}

/// A named counter: a number and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub value: i64,
    pub updated: Timestamp,
}

/// Sessions, the sign-in log and atomic counters: state that changes with every
/// sign-in. None of it takes the tenant's audit-chain lock, so sign-ins do not queue
/// behind directory writes; each operation is atomic on its own, on every node.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Inserts a session (version 1); `Duplicate` if the id exists.
    async fn session_insert(&self, tenant: TenantId, session: &SessionRow) -> Result<()>;
    async fn session_get(&self, tenant: TenantId, id: &str) -> Result<Option<SessionRow>>;
    /// Replaces a session whose stored version is `session.version - 1`.
    async fn session_update(&self, tenant: TenantId, session: &SessionRow) -> Result<()>;
    /// Records activity without a version change.
    async fn session_touch(&self, tenant: TenantId, id: &str, last_seen: Timestamp) -> Result<()>;
    /// Deletes a session; returns false when there was none.
    async fn session_delete(&self, tenant: TenantId, id: &str) -> Result<bool>;
    /// Up to `limit` rows whose id starts with `prefix` and sorts after
    /// `after`, in id order (a walk over one kind of row, e.g. profiles).
    async fn sessions_by_prefix(
        &self,
        tenant: TenantId,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SessionRow>>;
    /// A user's sessions that are not revoked and not past `now`.
    async fn sessions_of_user(
        &self,
        tenant: TenantId,
        user: Uuid,
        now: Timestamp,
    ) -> Result<Vec<SessionRow>>;
    /// Marks every unrevoked session of a user revoked at `at`, except the session
    /// `keep` if given; returns how many.
    async fn sessions_revoke_user(
        &self,
        tenant: TenantId,
        user: Uuid,
        keep: Option<&str>,
        at: Timestamp,
    ) -> Result<u64>;
    /// Deletes sessions whose absolute end is before `before`, in every tenant.
    async fn sessions_purge(&self, before: Timestamp) -> Result<u64>;

    async fn sign_in_append(&self, tenant: TenantId, entry: &SignInRow) -> Result<()>;
    /// Appends many entries (of any tenants) in one transaction: all or none.
    /// Entries with an `aggregate_key` merge into the tenant's entry with that key
    /// (see `SignInRow::aggregate_key`), including with each other in the batch.
    async fn sign_in_append_batch(&self, entries: &[(TenantId, SignInRow)]) -> Result<()>;
    async fn sign_in_query(&self, tenant: TenantId, query: &SignInQuery) -> Result<Vec<SignInRow>>;
    /// Entries with an export number above `after_seq`, lowest first, with their
    /// numbers. Every entry is numbered when written (an aggregate anew each time
    /// it grows); all numbers below one read have been read before it.
    async fn sign_in_scan(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<(i64, SignInRow)>>;
    /// Risk detections with an export number above `after_seq`, lowest first.
    async fn risk_detection_scan(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<(i64, RiskDetectionRow)>>;
    /// Deletes a tenant's entries older than `before`, and all but its `keep_newest`
    /// newest entries; returns how many. Deletes in bounded steps, so sign-ins are
    /// not held up behind one long delete.
    async fn sign_in_purge(
        &self,
        tenant: TenantId,
        before: Timestamp,
        keep_newest: u64,
    ) -> Result<u64>;

    /// Appends risk detections (of any tenants) in one transaction: all or none.
    async fn risk_detection_append_batch(
        &self,
        entries: &[(TenantId, RiskDetectionRow)],
    ) -> Result<()>;
    async fn risk_detection_query(
        &self,
        tenant: TenantId,
        query: &RiskDetectionQuery,
    ) -> Result<Vec<RiskDetectionRow>>;
    /// Deletes a tenant's detections older than `before`, in bounded steps;
    /// returns how many.
    async fn risk_detection_purge(&self, tenant: TenantId, before: Timestamp) -> Result<u64>;

    /// Appends revocations (of any tenants) in one transaction: all or none,
    /// numbered after every revocation before them, in the whole deployment;
    /// a reader that has seen a number has seen every number below it.
    async fn revocations_append(&self, rows: &[RevocationRow]) -> Result<()>;
    /// The revocations numbered after `after` that expire after `now`, in
    /// order, at most `limit`.
    async fn revocations_after(
        &self,
        after: i64,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(i64, RevocationRow)>>;
    /// Deletes the revocations that expire at or before `now`; how many. Their
    /// numbers are not given again.
    async fn revocations_purge(&self, now: Timestamp) -> Result<u64>;

    /// The last number a tenant's `log` gave (0 before the first): a reader
    /// starting now starts after it. A purge never lowers it.
    async fn numbered_head(&self, tenant: TenantId, log: NumberedLog) -> Result<i64>;

    async fn counter_get(&self, tenant: TenantId, key: &str) -> Result<Option<Counter>>;

    /// Sets the counter to `value` if it is absent or holds less; true if it did.
    async fn counter_advance(
        &self,
        tenant: TenantId,
        key: &str,
        value: i64,
        now: Timestamp,
    ) -> Result<bool>;
    /// Adds one and returns the new value; a counter last changed before
    /// `restart_before` starts again from one.
    async fn counter_increment(
        &self,
        tenant: TenantId,
        key: &str,
        now: Timestamp,
        restart_before: Timestamp,
    ) -> Result<i64>;
    /// Adds one if the result stays at or below `limit`; true if it did.
    async fn counter_take(
        &self,
        tenant: TenantId,
        key: &str,
        limit: i64,
        now: Timestamp,
    ) -> Result<bool>;
    async fn counter_delete(&self, tenant: TenantId, key: &str) -> Result<()>;
    /// Deletes, in every tenant, the counters whose key starts with `prefix` and that
    /// last changed before `before`; returns how many.
    async fn counters_purge(&self, prefix: &str, before: Timestamp) -> Result<u64>;
}

/// Leases on named background work: of several nodes sharing the database, the one
/// holding a job's lease runs it. A lease is for one tenant or, with `tenant: None`,
/// for the whole deployment.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the lease `name` for `holder` until `until`, if nobody holds it (never
    /// taken, or expired at `now`) or `holder` already does; true if taken.
    async fn lease_take(
        &self,
        name: &str,
        tenant: Option<TenantId>,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool>;
    /// Hands back every lease `holder` holds (a node that stops), so other nodes need
    /// not wait for them to run out; returns how many.
    async fn leases_release(&self, holder: &str, now: Timestamp) -> Result<u64>;
    /// Moves the end of `holder`'s lease to `until` (to `now` to hand it back); false
    /// when `holder` does not hold it.
    async fn lease_set_end(
        &self,
        name: &str,
        tenant: Option<TenantId>,
        holder: &str,
        until: Timestamp,
    ) -> Result<bool>;
}

/// A database holding Tessera's data.
#[async_trait]
pub trait Store: SessionStore + LeaseStore + Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<()>;
    /// The default tenant, chosen at bootstrap.
    async fn default_tenant(&self) -> Result<Option<TenantId>>;
    async fn tenants(&self) -> Result<Vec<Tenant>>;
    /// A reader over a pooled connection.
    async fn reader(&self) -> Result<Box<dyn Reader>>;
    /// A reader over one consistent, read-only snapshot: every read sees the
    /// database as the first one did, whatever commits meanwhile, until it is dropped.
    /// For decisions that read several records and must not mix two states.
    async fn snapshot(&self) -> Result<Box<dyn Reader>>;
    /// Begins a write transaction on an existing tenant, waiting for its chain lock.
    async fn begin_write(&self, tenant: TenantId) -> Result<Box<dyn WriteTx>>;
    /// Creates a tenant and begins a write transaction on it; `as_default` makes it the
    /// installation's default tenant, which can happen once (others get `TenantExists`).
    async fn create_tenant(&self, tenant: &Tenant, as_default: bool) -> Result<Box<dyn WriteTx>>;
    async fn audit_query(&self, tenant: TenantId, query: &AuditQuery) -> Result<Vec<AuditRow>>;
    /// Events in chain order with `seq > after_seq`.
    async fn audit_scan(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>>;
    async fn audit_head(&self, tenant: TenantId) -> Result<Option<AuditHead>>;
    /// The database's size on disk in bytes, as the database reports it (SQLite: its
    /// pages; PostgreSQL: `pg_database_size`).
    async fn database_size(&self) -> Result<u64>;
    /// Refreshes the statistics the query planner chooses indexes by, where the
    /// database does not keep them itself (SQLite's `PRAGMA optimize`; PostgreSQL's
    /// autovacuum does this). Cheap when little changed.
    async fn optimize(&self) -> Result<()>;
}

//! Outbound provisioning (Entra's app provisioning): for one service principal,
//! a SCIM client that creates, updates, disables and deletes the users and
//! groups assigned to the application on the application's own SCIM service.
//!
//! - Settings per service principal (`Kind::OutboundProvisioning`, key1
//!   `config:<sp>`): the endpoint, the bearer token (sealed, never shown), the
//!   scope and scoping rule, what leaving the scope does, whether groups go too,
//!   and the user mapping (directory attributes to SCIM paths), checked whole
//!   when saved.
//! - What the application holds, per object (`Kind::OutboundObject`, key1
//!   `<sp>:<object>`, key2 the service principal): its id there, the hash of
//!   what was last sent, a group's members as sent.
//! - `cycle.rs`: a cycle. The first is full, and so is one after a change of
//!   what is provisioned (endpoint, scope, mapping), one an administrator asks
//!   for, or one after too many failures to remember; the others take the
//!   objects the audit trail names since the last one (a watermark kept as a
//!   counter), those whose scope changed and those that failed. Leavers go
//!   first; a cycle holds the service principal's lease (renewed as it goes), and
//!   stops when the target cannot be used or fails ten objects in a row. Each object's outcome is one audit event
//!   (`provisioning.export`) whose actor is the service principal: the
//!   provisioning log is that slice of the audit trail. A target that fails
//!   cycles in a row is quarantined with backoff (`tessera_provisioning::
//!   outbound::Health`).
//! - `sync.rs`: one object at a time: its standing, the resource the mapping
//!   makes of it, the requests that take the application's copy there.
//! - `client.rs`: SCIM requests over the `ScimTarget` port the binary gives.

mod client;
mod cycle;
mod sync;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target as AuthzTarget;
use tessera_directory::model::ServicePrincipalData;
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_provisioning::outbound::{self as rules, Deprovision, Health, Scope};
use tessera_provisioning::{Mapping, mapping::Compiled};
use tessera_scim::schema::{Type, USER_TYPE};
use tessera_store::{Kind, Reader, Record};
use uuid::Uuid;

use super::Provisioning;
use crate::codec::{self, Keys, Versioned};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub use client::check_reply;
pub use cycle::{CycleSummary, OnDemandReport};
pub use tessera_provisioning::outbound::default_user_mapping;

/// Sends one request to an application's SCIM service (the binary's HTTP
/// client, which decides which addresses may be reached).
#[async_trait::async_trait]
pub trait ScimTarget: Send + Sync {
    /// `method` to `url` with the bearer `token` and a JSON body; the reply's
    /// status and body (bounded), or why there was none.
    async fn send(
        &self,
        method: &str,
        url: &str,
        token: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), String>;
}

/// The context a token is sealed under (bound to the service principal).
fn token_context(sp: Uuid) -> String {
    format!("outbound-provisioning-token:{sp}")
}

/// The longest endpoint URL and token.
const MAX_URL: usize = 2048;
const MAX_TOKEN: usize = 4096;

/// An application's provisioning settings as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Stored {
    pub service_principal_id: Uuid,
    pub enabled: bool,
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sealed: Option<String>,
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoping_rule: Option<String>,
    pub deprovision: Deprovision,
    pub provision_groups: bool,
    pub user_mapping: Mapping,
}

/// What an administrator sets (`PUT /servicePrincipals/{id}/provisioning`).
/// No `Debug`: it carries the token.
#[derive(Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboundSettingsBody {
    /// Whether cycles run (a paused application keeps what it has).
    #[serde(default)]
    pub enabled: bool,
    /// The application's SCIM base URL (`https://app.example.com/scim/v2`;
    /// `http` only to a loopback address).
    pub endpoint: String,
    /// The bearer token the application gave for its SCIM service; omitted, the
    /// one saved before is kept. Never shown again.
    #[serde(default)]
    pub secret_token: Option<String>,
    /// `assignedUsersAndGroups` (default) or `allUsers`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub scope: Scope,
    /// Only users this rule (membership-rule syntax) matches are provisioned.
    #[serde(default)]
    pub scoping_rule: Option<String>,
    /// What leaving the scope does on the application: `disable` (default) or
    /// `delete`. A user deleted here is deleted there.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub deprovision: Deprovision,
    /// Whether the groups assigned to the application go too, with their
    /// provisioned members (default true).
    #[serde(default = "yes")]
    pub provision_groups: bool,
    /// Directory attributes to SCIM paths; omitted, the default mapping.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub user_mapping: Option<Mapping>,
}

fn yes() -> bool {
    true
}

/// An application's provisioning settings as shown.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OutboundSettings {
    pub service_principal_id: Uuid,
    pub enabled: bool,
    pub endpoint: String,
    pub has_secret_token: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub scope: Scope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scoping_rule: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub deprovision: Deprovision,
    pub provision_groups: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub user_mapping: Mapping,
    /// The version `If-Match` names.
    pub version: i64,
}

impl OutboundSettings {
    fn of(stored: Stored, version: i64) -> OutboundSettings {
        OutboundSettings {
            service_principal_id: stored.service_principal_id,
            enabled: stored.enabled,
            endpoint: stored.endpoint,
            has_secret_token: stored.token_sealed.is_some(),
            scope: stored.scope,
            scoping_rule: stored.scoping_rule,
            deprovision: stored.deprovision,
            provision_groups: stored.provision_groups,
            user_mapping: stored.user_mapping,
            version,
        }
    }
}

/// How an application's provisioning is going, as stored (key1 `status:<sp>`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Status {
    pub health: Health,
    /// The next cycle takes every object (the first, after a change of what is
    /// provisioned, or when asked for).
    pub full_cycle_pending: bool,
    /// Objects whose last attempt failed, tried again by the next cycle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cycle: Option<CycleSummary>,
}

/// An application's provisioning state (`GET .../provisioning/status`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OutboundStatus {
    pub enabled: bool,
    /// `active`, `paused`, `quarantined`.
    pub state: String,
    pub failed_cycles: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub quarantined_until: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub full_cycle_pending: bool,
    /// Objects to try again next cycle.
    pub retrying: usize,
    /// Objects the application holds, as Tessera last left them.
    pub provisioned_users: usize,
    pub provisioned_groups: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_cycle: Option<CycleSummary>,
}

/// An application whose provisioning is set up (the console's overview).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboundEntry {
    pub service_principal_id: Uuid,
    pub app_id: String,
    pub display_name: String,
    pub endpoint: String,
    /// `active`, `paused`, `quarantined`.
    pub state: String,
    pub last_cycle: Option<CycleSummary>,
}

fn state_of(stored: &Stored, status: &Status) -> &'static str {
    if !stored.enabled {
        "paused"
    } else if status.health.quarantined() {
        "quarantined"
    } else {
        "active"
    }
}

/// What the application holds of one object (key1 `<sp>:<object>`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObjectState {
    pub object_id: Uuid,
    /// `user` or `group`.
    pub object_type: String,
    pub display_name: String,
    /// The endpoint it was provisioned to (an id means something there only).
    #[serde(default)]
    pub endpoint: String,
    /// Its id on the application (none until created there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// The hash of the resource last sent.
    #[serde(default)]
    pub hash: String,
    /// Whether it was last left active.
    #[serde(default)]
    pub active: bool,
    /// A group's members as last sent (their ids on the application).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Attempts in a row that failed, and for which resource.
    #[serde(default)]
    pub failures: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failed_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

pub(crate) fn config_key(sp: Uuid) -> String {
    format!("config:{sp}")
}

pub(crate) fn status_key(sp: Uuid) -> String {
    format!("status:{sp}")
}

pub(crate) fn object_key(sp: Uuid, object: Uuid) -> String {
    format!("{sp}:{object}")
}

/// The counter holding the audit sequence number a service principal's last
/// cycle reached.
pub(crate) fn watermark_key(sp: Uuid) -> String {
    format!("outbound-seq:{sp}")
}

/// A SCIM user path as a mapping target, typed.
fn scim_user_path(path: &str) -> Result<rules::ScimPath, String> {
    use tessera_provisioning::targets::TargetType;
    let kind = tessera_scim::outbound::mapped_type(&USER_TYPE, path).map_err(|e| e.detail)?;
    let kind = match kind {
        Type::Boolean => TargetType::Boolean,
        Type::Integer => TargetType::Integer,
        Type::DateTime => TargetType::DateTime,
        _ => TargetType::Text,
    };
    Ok((path.trim().to_string(), kind))
}

/// Compiles an outbound user mapping.
pub(crate) fn compile_user_mapping(
    mapping: &Mapping,
) -> Result<Compiled, tessera_provisioning::MappingError> {
    mapping.compile(
        &rules::DirectoryUsers,
        &rules::ScimTargets {
            check: &scim_user_path,
        },
    )
}

/// Whether an endpoint may be saved: an absolute https URL (http to a loopback
/// host), without credentials, query or fragment.
fn endpoint_ok(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    (url.scheme() == "https" || (url.scheme() == "http" && loopback))
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && text.len() <= MAX_URL
}

impl OutboundSettingsBody {
    fn check(&self) -> ServiceResult<Mapping> {
        if !endpoint_ok(self.endpoint.trim()) {
            return Err(ServiceError::invalid(
                "endpoint",
                "must be an https URL without credentials, query or fragment (http only to a loopback address)",
            ));
        }
        if let Some(token) = &self.secret_token
            && (token.is_empty()
                || token.len() > MAX_TOKEN
                || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ServiceError::invalid(
                "secretToken",
                format!("must be 1 to {MAX_TOKEN} visible ASCII characters (no spaces)"),
            ));
        }
        if let Some(rule) = &self.scoping_rule
            && let Err(error) = tessera_directory::rule::parse(rule)
        {
            return Err(ServiceError::invalid("scopingRule", error.to_string()));
        }
        let mapping = self
            .user_mapping
            .clone()
            .unwrap_or_else(rules::default_user_mapping);
        compile_user_mapping(&mapping)
            .map_err(|e| super::mapping::invalid_mapping("userMapping", e))?;
        Ok(mapping)
    }
}

/// The service principal and its settings record, if any.
pub(crate) async fn load_config(
    reader: &mut dyn Reader,
    tenant: TenantId,
    sp: Uuid,
) -> ServiceResult<Option<(Record, Stored)>> {
    match reader
        .get_by_key1(tenant, Kind::OutboundProvisioning, &config_key(sp))
        .await?
    {
        Some(record) => {
            let stored = codec::data(&record)?;
            Ok(Some((record, stored)))
        }
        None => Ok(None),
    }
}

pub(crate) async fn load_status(
    reader: &mut dyn Reader,
    tenant: TenantId,
    sp: Uuid,
) -> ServiceResult<(Option<Record>, Status)> {
    match reader
        .get_by_key1(tenant, Kind::OutboundProvisioning, &status_key(sp))
        .await?
    {
        Some(record) => {
            let status = codec::data(&record)?;
            Ok((Some(record), status))
        }
        None => Ok((None, Status::default())),
    }
}

fn status_keys(sp: Uuid) -> Keys {
    Keys {
        key1: Some(status_key(sp)),
        key2: Some(sp.to_string()),
        sort_key: status_key(sp),
    }
}

fn not_configured(sp: Uuid) -> ServiceError {
    ServiceError::NotFound {
        kind: "provisioning configuration",
        id: sp.to_string(),
    }
}

impl Provisioning {
    /// Gives outbound provisioning its HTTP client.
    pub fn set_scim_target(&self, target: std::sync::Arc<dyn ScimTarget>) {
        let _ = self.scim_target.set(target);
    }

    /// A change to a service principal's provisioning, for a caller allowed to
    /// manage it.
    async fn open_managed(
        &self,
        ctx: &Context,
        sp: Uuid,
    ) -> ServiceResult<(Box<dyn tessera_store::WriteTx>, Record)> {
        let (tx, record, _) = self
            .directory
            .open_authorized(
                ctx,
                Kind::ServicePrincipal,
                sp,
                action::SPS_SYNCHRONIZATION_MANAGE,
            )
            .await?;
        Ok((tx, record))
    }

    /// Writes a service principal's provisioning state.
    async fn put_status(
        &self,
        tx: &mut dyn tessera_store::WriteTx,
        tenant: TenantId,
        sp: Uuid,
        existing: Option<&Record>,
        status: &Status,
    ) -> ServiceResult<()> {
        codec::put(
            tx,
            tenant,
            Kind::OutboundProvisioning,
            existing,
            Uuid::new_v4(),
            self.now(),
            status_keys(sp),
            status,
        )
        .await
    }

    /// The service principal, for a caller allowed `action` on it.
    async fn service_principal(
        &self,
        ctx: &Context,
        sp: Uuid,
        action: &str,
    ) -> ServiceResult<(Box<dyn Reader>, Record)> {
        self.require(ctx, action, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        let record = codec::load(reader.as_mut(), ctx.tenant, Kind::ServicePrincipal, sp).await?;
        Ok((reader, record))
    }

    /// `GET /servicePrincipals/{id}/provisioning`.
    pub async fn outbound_settings(
        &self,
        ctx: &Context,
        sp: Uuid,
    ) -> ServiceResult<OutboundSettings> {
        let (mut reader, _) = self
            .service_principal(ctx, sp, action::SPS_SYNCHRONIZATION_READ)
            .await?;
        let (record, stored) = load_config(reader.as_mut(), ctx.tenant, sp)
            .await?
            .ok_or_else(|| not_configured(sp))?;
        Ok(OutboundSettings::of(stored, record.version))
    }

    /// `PUT /servicePrincipals/{id}/provisioning`: the settings whole, checked
    /// (If-Match against the version shown). A change of endpoint, scope,
    /// scoping rule, groups or mapping makes the next cycle a full one.
    pub async fn set_outbound_settings(
        &self,
        ctx: &Context,
        at: Versioned<Uuid>,
        body: Value,
    ) -> ServiceResult<OutboundSettings> {
        let sp = at.id;
        self.require(
            ctx,
            action::SPS_SYNCHRONIZATION_MANAGE,
            &AuthzTarget::Tenant,
        )?;
        let body: OutboundSettingsBody = patch::parse_spec(body)?;
        let mapping = body.check()?;
        let (mut tx, sp_record) = self.open_managed(ctx, sp).await?;
        let existing = load_config(tx.as_mut(), ctx.tenant, sp).await?;
        match &existing {
            Some((record, _)) => codec::check_if_match(record, at.if_match)?,
            None if at.if_match.is_some_and(|v| v != 0) => {
                return Err(ServiceError::VersionMismatch {
                    sent: at.if_match.unwrap_or_default(),
                    current: 0,
                });
            }
            None => {}
        }
        let before = existing.as_ref().map(|(_, s)| s.clone());
        let endpoint = body.endpoint.trim().trim_end_matches('/').to_string();
        let moved = before.as_ref().is_some_and(|b| b.endpoint != endpoint);
        // The saved token goes only where it went: a new endpoint needs its own.
        if moved && body.secret_token.is_none() {
            return Err(ServiceError::invalid(
                "secretToken",
                "a new endpoint needs its bearer token given again",
            ));
        }
        let token_sealed = match &body.secret_token {
            Some(token) => Some(
                self.settings
                    .sealing_key
                    .seal(token.as_bytes(), &token_context(sp))
                    .map_err(|e| ServiceError::Internal(e.to_string()))?,
            ),
            None => before.as_ref().and_then(|b| b.token_sealed.clone()),
        };
        if token_sealed.is_none() {
            return Err(ServiceError::invalid(
                "secretToken",
                "the application's SCIM service needs a bearer token",
            ));
        }
        let after = Stored {
            service_principal_id: sp,
            enabled: body.enabled,
            endpoint,
            token_sealed,
            scope: body.scope,
            scoping_rule: body.scoping_rule.clone(),
            deprovision: body.deprovision,
            provision_groups: body.provision_groups,
            user_mapping: mapping,
        };
        let keys = Keys {
            key1: Some(config_key(sp)),
            key2: Some(sp.to_string()),
            sort_key: config_key(sp),
        };
        let version = existing.as_ref().map_or(1, |(r, _)| r.version + 1);
        codec::put(
            tx.as_mut(),
            ctx.tenant,
            Kind::OutboundProvisioning,
            existing.as_ref().map(|(r, _)| r),
            Uuid::new_v4(),
            self.now(),
            keys,
            &after,
        )
        .await?;
        // What was provisioned under other settings is looked at again whole.
        let reach_changed = before.as_ref().is_none_or(|b| {
            b.endpoint != after.endpoint
                || b.scope != after.scope
                || b.scoping_rule != after.scoping_rule
                || b.provision_groups != after.provision_groups
                || b.user_mapping != after.user_mapping
                || b.deprovision != after.deprovision
        });
        let token_changed = body.secret_token.is_some();
        // What the old endpoint holds is its own: ids it gave mean nothing to the
        // new one, so Tessera forgets them and the new one is provisioned anew.
        let mut forgotten = 0;
        if moved {
            for object in codec::list_all(
                tx.as_mut(),
                ctx.tenant,
                Kind::OutboundObject,
                Some(sp.to_string()),
            )
            .await?
            {
                tx.delete(ctx.tenant, Kind::OutboundObject, object.id, None)
                    .await?;
                forgotten += 1;
            }
        }
        if reach_changed || token_changed {
            let (status_record, mut status) = load_status(tx.as_mut(), ctx.tenant, sp).await?;
            status.full_cycle_pending |= reach_changed;
            // A new token or endpoint is worth trying now.
            status.health = Health::default();
            self.put_status(tx.as_mut(), ctx.tenant, sp, status_record.as_ref(), &status)
                .await?;
        }
        let shown = |s: &Stored| {
            json!({
                "enabled": s.enabled, "endpoint": s.endpoint, "scope": s.scope,
                "scopingRule": s.scoping_rule, "deprovision": s.deprovision,
                "provisionGroups": s.provision_groups, "userMapping": s.user_mapping,
            })
        };
        let event = EventDraft::new(AuditAction::ServicePrincipalProvisioningUpdate)
            .on(
                Kind::ServicePrincipal,
                sp,
                &crate::directory::groups::display_name_of(&sp_record),
            )
            .details(json!({"secretTokenChanged": token_changed, "forgottenObjects": forgotten}))
            .changes(tessera_directory::patch::changes(
                &json!({"provisioning": before.as_ref().map(shown)}),
                &json!({"provisioning": shown(&after)}),
            ));
        self.commit(tx, ctx, event).await?;
        Ok(OutboundSettings::of(after, version))
    }

    /// `DELETE /servicePrincipals/{id}/provisioning`: provisioning stops; what
    /// the application holds stays there, and Tessera forgets it.
    pub async fn delete_outbound_settings(&self, ctx: &Context, sp: Uuid) -> ServiceResult<()> {
        let (mut tx, sp_record) = self.open_managed(ctx, sp).await?;
        let (record, _) = load_config(tx.as_mut(), ctx.tenant, sp)
            .await?
            .ok_or_else(|| not_configured(sp))?;
        tx.delete(
            ctx.tenant,
            Kind::OutboundProvisioning,
            record.id,
            Some(record.version),
        )
        .await?;
        if let (Some(status), _) = load_status(tx.as_mut(), ctx.tenant, sp).await? {
            tx.delete(ctx.tenant, Kind::OutboundProvisioning, status.id, None)
                .await?;
        }
        let objects = codec::list_all(
            tx.as_mut(),
            ctx.tenant,
            Kind::OutboundObject,
            Some(sp.to_string()),
        )
        .await?;
        for object in &objects {
            tx.delete(ctx.tenant, Kind::OutboundObject, object.id, None)
                .await?;
        }
        let event = EventDraft::new(AuditAction::ServicePrincipalProvisioningDelete)
            .on(
                Kind::ServicePrincipal,
                sp,
                &crate::directory::groups::display_name_of(&sp_record),
            )
            .details(json!({"forgottenObjects": objects.len()}));
        self.commit(tx, ctx, event).await
    }

    /// The applications whose outbound provisioning is set up, with how it is
    /// going (for the console's overview).
    pub async fn list_outbound(&self, ctx: &Context) -> ServiceResult<Vec<OutboundEntry>> {
        self.require(ctx, action::SPS_SYNCHRONIZATION_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        let records = codec::list_all_prefixed(
            reader.as_mut(),
            ctx.tenant,
            Kind::OutboundProvisioning,
            None,
            Some("config:".into()),
        )
        .await?;
        let mut entries = Vec::new();
        for record in records {
            let stored: Stored = codec::data(&record)?;
            let sp = stored.service_principal_id;
            let Some(sp_record) = reader.get(ctx.tenant, Kind::ServicePrincipal, sp).await? else {
                continue;
            };
            let principal: ServicePrincipalData = codec::data(&sp_record)?;
            let (_, status) = load_status(reader.as_mut(), ctx.tenant, sp).await?;
            entries.push(OutboundEntry {
                service_principal_id: sp,
                app_id: principal.spec.app_id.to_string(),
                display_name: crate::directory::groups::display_name_of(&sp_record),
                endpoint: stored.endpoint.clone(),
                state: state_of(&stored, &status).to_string(),
                last_cycle: status.last_cycle,
            });
        }
        Ok(entries)
    }

    /// `GET /servicePrincipals/{id}/provisioning/status`.
    pub async fn outbound_status(&self, ctx: &Context, sp: Uuid) -> ServiceResult<OutboundStatus> {
        let (mut reader, _) = self
            .service_principal(ctx, sp, action::SPS_SYNCHRONIZATION_READ)
            .await?;
        let (_, stored) = load_config(reader.as_mut(), ctx.tenant, sp)
            .await?
            .ok_or_else(|| not_configured(sp))?;
        let (_, status) = load_status(reader.as_mut(), ctx.tenant, sp).await?;
        let objects = codec::list_all(
            reader.as_mut(),
            ctx.tenant,
            Kind::OutboundObject,
            Some(sp.to_string()),
        )
        .await?;
        let mut users = 0;
        let mut groups = 0;
        for record in &objects {
            let state: ObjectState = codec::data(record)?;
            if state.target_id.is_some() {
                if state.object_type == "group" {
                    groups += 1;
                } else {
                    users += 1;
                }
            }
        }
        Ok(OutboundStatus {
            enabled: stored.enabled,
            state: state_of(&stored, &status).into(),
            failed_cycles: status.health.failed_cycles,
            quarantined_until: status
                .health
                .quarantined_until
                .map(|s| Timestamp::from_unix_micros(s.saturating_mul(1_000_000))),
            last_error: status.health.last_error.clone(),
            full_cycle_pending: status.full_cycle_pending,
            retrying: status.retry.len(),
            provisioned_users: users,
            provisioned_groups: groups,
            last_cycle: status.last_cycle,
        })
    }

    /// `GET /servicePrincipals/{id}/provisioning/log`: the provisioning log,
    /// newest first: one entry per object and attempt (`provisioning.export`
    /// events whose actor is the service principal), for one object if named.
    pub async fn outbound_log(
        &self,
        ctx: &Context,
        sp: Uuid,
        object: Option<Uuid>,
        limit: u32,
        before_seq: Option<i64>,
    ) -> ServiceResult<Vec<Value>> {
        let _ = self
            .service_principal(ctx, sp, action::SPS_SYNCHRONIZATION_READ)
            .await?;
        let rows = self
            .store()
            .audit_query(
                ctx.tenant,
                &tessera_store::AuditQuery {
                    actor_id: Some(sp.to_string()),
                    target_id: object.map(|o| o.to_string()),
                    action: Some(AuditAction::ProvisioningExport.as_str().to_string()),
                    since: None,
                    until: None,
                    before_seq,
                    limit: limit.clamp(1, 500),
                },
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let body: Value = serde_json::from_str(&row.body).ok()?;
                let mut entry = body["details"].clone();
                entry["seq"] = json!(row.seq);
                entry["time"] = json!(row.time.to_rfc3339());
                entry["objectId"] = body["target"]["id"].clone();
                entry["objectName"] = body["target"]["displayName"].clone();
                Some(entry)
            })
            .collect())
    }
}

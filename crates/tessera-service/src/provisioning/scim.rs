//! The SCIM service provider's resources over the directory (see the module
//! documentation of `provisioning`): users and groups read, listed with filters,
//! created, replaced, patched and deleted, each write in one transaction with the
//! directory's own use cases and an audit event for the source.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::{GroupSpec, UserSpec};
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_scim::graph;
use tessera_scim::list::{ListRequest, Paging, SortOrder};
use tessera_scim::patch::{MemberChange, Operation};
use tessera_scim::resource::{self, Completeness};
use tessera_scim::schema::{GROUP_TYPE, ResourceType};
use tessera_scim::{ScimError, ScimType};
use tessera_store::{
    Cursor, Kind, Order, Predicate, Reader, Record, Rel, Search, StoreError, WriteTx,
};
use uuid::Uuid;

use super::Provisioning;
use super::mapping::{UserMapper, merged, upn_free};
use super::query;
use super::settings::ProvisioningSettings;
use crate::codec::{self, Keys};
use crate::error::ServiceError;
use crate::kernel::tenant_settings::read_setting;
use crate::{Context, EventDraft};

/// Page size when the client names none, and the most one page holds.
pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

/// Why a SCIM request failed: a SCIM error as such, or the directory's.
#[derive(Debug)]
pub enum ScimFailure {
    Scim(ScimError),
    Service(ServiceError),
}

impl ScimFailure {
    /// The failure as SCIM says it: the directory's errors mapped to statuses
    /// and types, an internal error without its cause (which is logged).
    pub fn into_scim(self) -> ScimError {
        let error = match self {
            ScimFailure::Scim(e) => return e,
            ScimFailure::Service(e) => e,
        };
        match error {
            ServiceError::Validation(errors) => ScimError::invalid_value(
                errors
                    .errors
                    .iter()
                    .map(|e| {
                        if e.field.is_empty() {
                            e.message.clone()
                        } else {
                            format!("{}: {}", e.field, e.message)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ServiceError::NotFound { kind, id } => {
                ScimError::not_found(format!("{kind} {id} does not exist"))
            }
            ServiceError::Conflict { message } => ScimError::new(409, None, message),
            ServiceError::VersionMismatch { .. } => ScimError::new(
                412,
                None,
                "the resource changed since the version If-Match names",
            ),
            ServiceError::Forbidden { reason } => {
                ScimError::new(403, None, format!("not allowed: {reason}"))
            }
            ServiceError::Unauthenticated
            | ServiceError::DpopBoundSentAsBearer
            | ServiceError::ClaimsChallenge { .. } => ScimError::new(
                401,
                None,
                "the bearer token is missing, invalid, expired or revoked",
            ),
            ServiceError::InsufficientAuthentication { message, .. } => {
                ScimError::new(401, None, message)
            }
            ServiceError::Unavailable(_) => {
                ScimError::new(503, None, "the service is temporarily unavailable")
            }
            ServiceError::Internal(message) => {
                tracing::error!(%message, "internal error in a SCIM request");
                ScimError::new(500, None, "internal error")
            }
        }
    }
}

impl From<ScimError> for ScimFailure {
    fn from(e: ScimError) -> ScimFailure {
        ScimFailure::Scim(e)
    }
}

impl From<ServiceError> for ScimFailure {
    fn from(e: ServiceError) -> ScimFailure {
        match e {
            // Name the SCIM attributes behind the directory's, where they map.
            ServiceError::Validation(errors) => {
                let detail = errors
                    .errors
                    .iter()
                    .map(|e| match scim_name(&e.field) {
                        Some(name) => format!("{name} ({}): {}", e.field, e.message),
                        None if e.field.is_empty() => e.message.clone(),
                        None => format!("{}: {}", e.field, e.message),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                ScimFailure::Scim(ScimError::invalid_value(detail))
            }
            other => ScimFailure::Service(other),
        }
    }
}

impl From<tessera_directory::ValidationErrors> for ScimFailure {
    fn from(e: tessera_directory::ValidationErrors) -> ScimFailure {
        ScimFailure::from(ServiceError::Validation(e))
    }
}

impl From<StoreError> for ScimFailure {
    fn from(e: StoreError) -> ScimFailure {
        ScimFailure::Service(ServiceError::from(e))
    }
}

type Result<T> = std::result::Result<T, ScimFailure>;

/// The SCIM attribute a directory attribute is mapped from.
fn scim_name(graph: &str) -> Option<&'static str> {
    Some(match graph {
        "userPrincipalName" => "userName",
        "displayName" => "displayName",
        "givenName" => "name.givenName",
        "surname" => "name.familyName",
        "accountEnabled" => "active",
        "mail" => "emails",
        "jobTitle" => "title",
        "employeeType" => "userType",
        "employeeId" => "employeeNumber",
        "department" => "department",
        "companyName" => "organization",
        "employeeOrgData.division" => "division",
        "employeeOrgData.costCenter" => "costCenter",
        "managerId" => "manager.value",
        _ => return None,
    })
}

/// A resource as returned, with its entity tag.
#[derive(Debug, Clone)]
pub struct ScimResource {
    pub body: Map<String, Value>,
    pub etag: String,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub total: u64,
    pub start_index: Option<u64>,
    pub resources: Vec<Map<String, Value>>,
    pub next_cursor: Option<String>,
}

fn kind_of(rt: &ResourceType) -> Kind {
    if rt.id == GROUP_TYPE.id {
        Kind::Group
    } else {
        Kind::User
    }
}

fn etag(record: &Record, source: Option<&Record>) -> String {
    format!(
        "W/\"{}-{}\"",
        record.version,
        source.map_or(0, |s| s.version)
    )
}

/// Refuses a write whose `If-Match` names another version (`*` matches any).
fn check_if_match(if_match: Option<&str>, current: &str) -> Result<()> {
    let Some(sent) = if_match else {
        return Ok(());
    };
    let strip = |t: &str| {
        t.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    let current = strip(current);
    let matches = sent
        .split(',')
        .any(|tag| tag.trim() == "*" || strip(tag) == current);
    if matches {
        Ok(())
    } else {
        Err(ScimError::new(
            412,
            None,
            "the resource changed since the version If-Match names",
        )
        .into())
    }
}

fn not_found(rt: &ResourceType, id: &str) -> ScimFailure {
    ScimError::not_found(format!("no {} with id {id:?}", rt.name)).into()
}

fn parse_id(rt: &ResourceType, id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| not_found(rt, id))
}

fn object(record: &Record) -> Result<Map<String, Value>> {
    match serde_json::from_str(&record.data) {
        Ok(Value::Object(map)) => Ok(map),
        _ => {
            Err(ServiceError::Internal(format!("record {} is not a JSON object", record.id)).into())
        }
    }
}

fn rfc3339(t: Timestamp) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// The source's keys: the externalId, and the order of userName or displayName.
fn source_keys(source: &Map<String, Value>) -> Keys {
    let user_name = source
        .get("userName")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    let display = source
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Keys {
        // A userName is unique because the user principal name it maps to is.
        key1: None,
        key2: source
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_string),
        sort_key: codec::sort_key(user_name.as_deref().unwrap_or(display)),
    }
}

/// A user being changed: its id, its directory attributes now, and its source
/// before the change.
type Changed<'a> = (Uuid, &'a Map<String, Value>, Option<&'a Map<String, Value>>);

impl Provisioning {
    /// The tenant's attribute mapping, ready to apply.
    async fn mapper(&self, reader: &mut dyn Reader, tenant: TenantId) -> Result<UserMapper> {
        let settings = read_setting::<ProvisioningSettings>(reader, tenant).await?;
        Ok(UserMapper::load(reader, tenant, &settings, self.now()).await?)
    }

    /// The directory attributes a SCIM user maps to (`me`: the user changed,
    /// with its directory attributes now, and its source before). Where the
    /// mapping offers candidates for the user principal name, a user keeps the
    /// one it has if it is among them; otherwise the first valid one no other
    /// user holds is chosen.
    async fn mapped_user(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        mapper: &UserMapper,
        source: &Map<String, Value>,
        me: Option<Changed<'_>>,
    ) -> Result<Map<String, Value>> {
        let mapped = mapper.to_graph(source, me.is_none())?;
        let mut graph = match me {
            Some((_, _, Some(before))) => mapper.changes_only(mapped.patch, before),
            _ => mapped.patch,
        };
        if let Some(candidates) = mapped.unique_upn {
            let current = me
                .and_then(|(_, directory, _)| directory.get("userPrincipalName"))
                .and_then(Value::as_str);
            let mut chosen = candidates
                .iter()
                .find(|c| current.is_some_and(|now| now.eq_ignore_ascii_case(c)))
                .cloned();
            for candidate in &candidates {
                if chosen.is_some() {
                    break;
                }
                if tessera_directory::validate::user_principal_name(candidate).is_ok()
                    && upn_free(reader, tenant, candidate, me.map(|(id, _, _)| id)).await?
                {
                    chosen = Some(candidate.clone());
                }
            }
            let chosen = chosen.ok_or_else(|| {
                ScimError::new(
                    409,
                    Some(ScimType::Uniqueness),
                    "userName: every user principal name the mapping's SelectUniqueValue offers is taken or invalid",
                )
            })?;
            graph.insert("userPrincipalName".into(), Value::String(chosen));
        }
        Ok(graph)
    }

    /// Whether the caller may read memberships: a group's members, a user's
    /// groups (as the Graph API asks for them).
    fn may_read_memberships(&self, ctx: &Context, rt: &ResourceType) -> bool {
        let needed: &[&str] = if rt.id == GROUP_TYPE.id {
            &[action::GROUPS_MEMBERS_READ]
        } else {
            &[action::USERS_MEMBER_OF_READ, action::GROUPS_READ]
        };
        needed
            .iter()
            .all(|a| self.require(ctx, a, &Target::Tenant).is_ok())
    }

    fn require_read(&self, ctx: &Context, rt: &ResourceType) -> Result<()> {
        let needed = if rt.id == GROUP_TYPE.id {
            action::GROUPS_READ
        } else {
            action::USERS_READ
        };
        self.require(ctx, needed, &Target::Tenant)?;
        Ok(())
    }

    /// The resource as a client reads it: the source overlaid with the directory,
    /// `id`, `schemas`, `meta`, and the memberships.
    #[allow(clippy::too_many_arguments)]
    async fn wire(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        rt: &ResourceType,
        record: &Record,
        source: Option<&Record>,
        mapper: &UserMapper,
        base: &str,
        with_memberships: bool,
    ) -> Result<ScimResource> {
        let directory = object(record)?;
        let mut body = if rt.id == GROUP_TYPE.id {
            let mut doc = match source {
                Some(s) => object(s)?,
                None => Map::new(),
            };
            if let Some(name) = directory.get("displayName") {
                doc.insert("displayName".into(), name.clone());
            }
            if with_memberships {
                let members = members_of(reader, tenant, record.id, base).await?;
                if !members.is_empty() {
                    doc.insert("members".into(), Value::Array(members));
                }
            }
            doc
        } else {
            let mut doc = match source {
                Some(s) => {
                    let source = object(s)?;
                    let expected = mapper.expected(&source);
                    graph::overlay_user(&source, &directory, &expected, &|a| mapper.is_default(a))
                }
                None => graph::user_from_graph(&directory),
            };
            if with_memberships {
                let groups = groups_of(reader, tenant, record.id, base).await?;
                if !groups.is_empty() {
                    doc.insert("groups".into(), Value::Array(groups));
                }
            }
            doc
        };
        let modified = source.map_or(record.modified, |s| s.modified.max(record.modified));
        let etag = etag(record, source);
        let mut wire = Map::new();
        wire.insert("schemas".into(), resource::schemas_of(rt, &body));
        wire.insert("id".into(), json!(record.id));
        wire.append(&mut body);
        wire.insert(
            "meta".into(),
            json!({
                "resourceType": rt.name,
                "created": rfc3339(record.created),
                "lastModified": rfc3339(modified),
                "location": format!("{base}{}/{}", rt.endpoint, record.id),
                "version": etag,
            }),
        );
        Ok(ScimResource { body: wire, etag })
    }

    pub async fn get(
        &self,
        ctx: &Context,
        rt: &ResourceType,
        id: &str,
        base: &str,
        with_memberships: bool,
    ) -> Result<ScimResource> {
        self.require_read(ctx, rt)?;
        let with_memberships = with_memberships && self.may_read_memberships(ctx, rt);
        let uuid = parse_id(rt, id)?;
        let mut reader = self.snapshot().await?;
        let record = reader
            .get(ctx.tenant, kind_of(rt), uuid)
            .await?
            .ok_or_else(|| not_found(rt, id))?;
        let source = reader.get(ctx.tenant, Kind::ScimObject, uuid).await?;
        let mapper = self.mapper(reader.as_mut(), ctx.tenant).await?;
        self.wire(
            reader.as_mut(),
            ctx.tenant,
            rt,
            &record,
            source.as_ref(),
            &mapper,
            base,
            with_memberships,
        )
        .await
    }

    pub async fn list(
        &self,
        ctx: &Context,
        rt: &ResourceType,
        request: &ListRequest,
        base: &str,
        with_memberships: bool,
    ) -> Result<ListPage> {
        self.require_read(ctx, rt)?;
        let memberships = self.may_read_memberships(ctx, rt);
        let with_memberships = with_memberships && memberships;
        let mut reader = self.snapshot().await?;
        let mapper = self.mapper(reader.as_mut(), ctx.tenant).await?;
        let scope = query::Scope {
            rt,
            mapper: &mapper,
            memberships,
        };
        let predicate = match &request.filter {
            Some(filter) => query::predicate(&scope, filter)?,
            None => Predicate::True,
        };
        if predicate.size() > tessera_store::MAX_CONDITIONS {
            return Err(ScimError::invalid_filter(
                "the filter is too complex: split it into several requests",
            )
            .into());
        }
        let order = match &request.sort_by {
            Some(by) => query::order(rt, by, request.sort_order == SortOrder::Descending, &mapper)?,
            None => Order::Natural,
        };
        let count = request.count.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
        let (offset, after, start_index) = match &request.paging {
            Paging::Index { start } => (start - 1, None, Some(*start)),
            Paging::Cursor(cursor) => {
                if order != Order::Natural {
                    return Err(ScimError::bad(
                        ScimType::InvalidCursor,
                        "cursor paging follows the default order: leave out sortBy",
                    )
                    .into());
                }
                (0, decode_cursor(cursor)?, None)
            }
        };
        let kind = kind_of(rt);
        let total = reader
            .count(ctx.tenant, kind, &predicate, Some(Kind::ScimObject))
            .await?;
        let mut resources = Vec::new();
        let mut next_cursor = None;
        if count > 0 {
            let search = Search {
                predicate,
                companion: Some(Kind::ScimObject),
                order,
                offset,
                after,
                limit: count,
            };
            let found = reader.search(ctx.tenant, kind, &search).await?;
            if matches!(request.paging, Paging::Cursor(_))
                && found.len() == count as usize
                && let Some((last, _)) = found.last()
            {
                next_cursor = Some(encode_cursor(&last.sort_key, last.id));
            }
            for (record, source) in &found {
                let wire = self
                    .wire(
                        reader.as_mut(),
                        ctx.tenant,
                        rt,
                        record,
                        source.as_ref(),
                        &mapper,
                        base,
                        with_memberships,
                    )
                    .await?;
                resources.push(wire.body);
            }
        }
        Ok(ListPage {
            total,
            start_index,
            resources,
            next_cursor,
        })
    }

    pub async fn create(
        &self,
        ctx: &Context,
        rt: &ResourceType,
        body: &Value,
        base: &str,
    ) -> Result<ScimResource> {
        let mut source = resource::read(rt, body, Completeness::Whole)?;
        let mut tx = self.write(ctx).await?;
        let mapper = self.mapper(tx.as_mut(), ctx.tenant).await?;
        let record = if rt.id == GROUP_TYPE.id {
            let members = source.remove("members");
            let graph = graph::group_to_graph(&source)?;
            let spec: GroupSpec = patch::parse_spec(Value::Object(graph))?;
            let record = self
                .directory
                .create_group_in(tx.as_mut(), ctx, spec)
                .await?;
            if let Some(members) = members {
                let ids = member_ids(&members)?;
                self.change_members(tx.as_mut(), ctx, &record, MemberChange::Add(ids))
                    .await?;
            }
            record
        } else {
            let graph = self
                .mapped_user(tx.as_mut(), ctx.tenant, &mapper, &source, None)
                .await?;
            let spec: UserSpec = patch::parse_spec(merged(Map::new(), graph))?;
            self.directory
                .create_user_in(tx.as_mut(), &mapper.writer(ctx), spec)
                .await
                .map_err(uniqueness)?
        };
        let source_record = self
            .write_source(tx.as_mut(), ctx, rt, &record, None, &source)
            .await?;
        tx.commit().await?;
        let mut reader = self.reader().await?;
        self.wire(
            reader.as_mut(),
            ctx.tenant,
            rt,
            &record,
            source_record.as_ref(),
            &mapper,
            base,
            true,
        )
        .await
    }

    /// Writes the source (new, changed, or not at all when equal) with its audit
    /// event; returns the source record as it now is.
    async fn write_source(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        rt: &ResourceType,
        record: &Record,
        existing: Option<&Record>,
        source: &Map<String, Value>,
    ) -> Result<Option<Record>> {
        let keys = source_keys(source);
        let now = self.now();
        let before = match existing {
            Some(e) => Value::Object(object(e)?),
            None => Value::Null,
        };
        if before == Value::Object(source.clone()) {
            return Ok(existing.cloned());
        }
        let written = match existing {
            Some(e) => {
                let next = codec::next_version(e, now, keys, source)?;
                tx.update(ctx.tenant, &next)
                    .await
                    .map_err(source_conflict)?;
                next
            }
            None => {
                let new = codec::new_record(Kind::ScimObject, record.id, now, keys, source)?;
                tx.insert(ctx.tenant, &new).await.map_err(source_conflict)?;
                new
            }
        };
        let name = source
            .get("userName")
            .or_else(|| source.get("displayName"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let event = EventDraft::new(AuditAction::ScimObjectUpdate)
            .on(kind_of(rt), record.id, &name)
            .changes(patch::changes(&before, &Value::Object(source.clone())));
        self.audit(tx, ctx, event).await?;
        Ok(Some(written))
    }

    /// Opens a write on one resource: the record, its source, `If-Match` checked.
    async fn open(
        &self,
        ctx: &Context,
        rt: &ResourceType,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(Box<dyn WriteTx>, Record, Option<Record>)> {
        self.require_read(ctx, rt)?;
        let uuid = parse_id(rt, id)?;
        let mut tx = self.write(ctx).await?;
        let record = tx
            .get(ctx.tenant, kind_of(rt), uuid)
            .await?
            .ok_or_else(|| not_found(rt, id))?;
        let source = tx.get(ctx.tenant, Kind::ScimObject, uuid).await?;
        check_if_match(if_match, &etag(&record, source.as_ref()))?;
        Ok((tx, record, source))
    }

    /// After a provisioning change that disabled `user` committed: its
    /// tokens ended with the change; its browser sessions end now (their
    /// applications are told). A failure is logged: the change stands.
    pub(crate) async fn disabled_by_provisioning(&self, ctx: &Context, user: Uuid, disabled: bool) {
        if !disabled {
            return;
        }
        if let Err(error) = self.close_user_sessions(ctx.tenant, user, None).await {
            tracing::warn!(tenant = %ctx.tenant, %user, %error, "cannot end a disabled user's sessions");
        }
    }

    pub async fn replace(
        &self,
        ctx: &Context,
        rt: &ResourceType,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        base: &str,
    ) -> Result<ScimResource> {
        let mut source = resource::read(rt, body, Completeness::Whole)?;
        let (mut tx, record, existing) = self.open(ctx, rt, id, if_match).await?;
        let members = if rt.id == GROUP_TYPE.id {
            Some(match source.remove("members") {
                Some(members) => MemberChange::Replace(member_ids(&members)?),
                None => MemberChange::RemoveAll,
            })
        } else {
            None
        };
        let disabled = self
            .save(
                tx.as_mut(),
                ctx,
                rt,
                record.clone(),
                existing,
                source,
                members.into_iter().collect(),
                true,
            )
            .await?;
        tx.commit().await?;
        self.disabled_by_provisioning(ctx, record.id, disabled)
            .await;
        self.get(ctx, rt, id, base, true).await
    }

    pub async fn patch(
        &self,
        ctx: &Context,
        rt: &ResourceType,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        base: &str,
    ) -> Result<ScimResource> {
        let operations = tessera_scim::patch::parse(body)?;
        let (operations, member_changes): (Vec<Operation>, Vec<MemberChange>) =
            tessera_scim::patch::split_members(rt, operations)?;
        let (mut tx, record, existing) = self.open(ctx, rt, id, if_match).await?;
        let mapper = self.mapper(tx.as_mut(), ctx.tenant).await?;
        // The resource as the client sees it now (without what the server keeps).
        let current = self
            .wire(
                tx.as_mut(),
                ctx.tenant,
                rt,
                &record,
                existing.as_ref(),
                &mapper,
                "",
                false,
            )
            .await?
            .body;
        let mut current = current;
        for kept in ["schemas", "id", "meta"] {
            current.remove(kept);
        }
        let source = if operations.is_empty() {
            current
        } else {
            tessera_scim::patch::apply(rt, &current, &operations)?
        };
        let user = record.id;
        let disabled = self
            .save(
                tx.as_mut(),
                ctx,
                rt,
                record,
                existing,
                source,
                member_changes,
                false,
            )
            .await?;
        tx.commit().await?;
        self.disabled_by_provisioning(ctx, user, disabled).await;
        self.get(ctx, rt, id, base, true).await
    }

    /// Writes a new source for an existing resource: the directory's attributes
    /// through its use cases, the source, then membership changes. Whether it
    /// disabled a user (whose sessions end once it commits).
    #[allow(clippy::too_many_arguments)]
    async fn save(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        rt: &ResourceType,
        record: Record,
        existing: Option<Record>,
        source: Map<String, Value>,
        member_changes: Vec<MemberChange>,
        replacing: bool,
    ) -> Result<bool> {
        let mapper = self.mapper(tx, ctx.tenant).await?;
        let current = object(&record)?;
        // The source before this change, to write only what it changes where the
        // mapping is the tenant's own.
        let before = existing.as_ref().map(object).transpose()?;
        // What only the source holds (externalId, phones...) changes with the
        // permission to change the object's basic attributes.
        let source_changes = match &existing {
            Some(e) => object(e)? != source,
            None => true,
        };
        if source_changes {
            let facts = crate::target_facts(tx, ctx.tenant, record.kind, record.id).await?;
            let needed = if rt.id == GROUP_TYPE.id {
                let spec: GroupSpec = codec::data(&record)?;
                crate::directory::groups::group_action(&spec, action::GROUPS_BASIC_UPDATE)
            } else {
                action::USERS_BASIC_UPDATE
            };
            self.require(ctx, needed, &facts)?;
        }
        let updated = if rt.id == GROUP_TYPE.id {
            let graph = graph::group_to_graph(&source)?;
            let after: GroupSpec = serde_json::from_value(merged(current, graph))
                .map_err(|e| ServiceError::Internal(format!("group {}: {e}", record.id)))?;
            self.directory
                .update_group_in(tx, ctx, &record, after)
                .await?
        } else {
            let mut graph = self
                .mapped_user(
                    tx,
                    ctx.tenant,
                    &mapper,
                    &source,
                    Some((record.id, &current, before.as_ref())),
                )
                .await?;
            // A replace that leaves `active` out does not enable a disabled user
            // (a PATCH that removes it does, as the client asked).
            if replacing
                && mapper.is_default("accountEnabled")
                && !source.contains_key("active")
                && let Some(enabled) = current.get("accountEnabled")
            {
                graph.insert("accountEnabled".into(), enabled.clone());
            }
            let after: UserSpec = patch::parse_spec(merged(current, graph))?;
            self.directory
                .update_user_in(tx, &mapper.writer(ctx), &record, after)
                .await
                .map_err(uniqueness)?
        };
        let disabled = rt.id != GROUP_TYPE.id
            && updated.as_ref().is_some_and(|after| {
                account_enabled(&record) == Some(true) && account_enabled(after) == Some(false)
            });
        let record = updated.unwrap_or(record);
        let written = self
            .write_source(tx, ctx, rt, &record, existing.as_ref(), &source)
            .await?;
        let mut members_changed = false;
        for change in member_changes {
            members_changed |= self.change_members(tx, ctx, &record, change).await?;
        }
        // Links carry no version: the source's moves, so the ETag shows the change.
        if members_changed
            && let Some(written) = written
            && written.version == existing.as_ref().map_or(0, |e| e.version)
        {
            let next = codec::next_version(&written, self.now(), source_keys(&source), &source)?;
            tx.update(ctx.tenant, &next).await?;
        }
        Ok(disabled)
    }

    async fn change_members(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        group: &Record,
        change: MemberChange,
    ) -> Result<bool> {
        let dynamic = codec::data::<GroupSpec>(group)?.is_dynamic();
        let (add, remove): (Vec<Uuid>, Vec<Uuid>) = match change {
            MemberChange::Add(ids) => (parse_members(&ids)?, vec![]),
            MemberChange::Remove(ids) => (
                vec![],
                ids.iter().filter_map(|i| Uuid::parse_str(i).ok()).collect(),
            ),
            // A rule computes a dynamic group's members: a replace without them
            // leaves them be.
            MemberChange::RemoveAll if dynamic => (vec![], vec![]),
            MemberChange::RemoveAll => (vec![], scim_members(tx, ctx.tenant, group.id).await?),
            MemberChange::Replace(ids) => {
                let wanted = parse_members(&ids)?;
                let now = scim_members(tx, ctx.tenant, group.id).await?;
                (
                    wanted
                        .iter()
                        .filter(|w| !now.contains(w))
                        .copied()
                        .collect(),
                    now.into_iter().filter(|n| !wanted.contains(n)).collect(),
                )
            }
        };
        let mut changed = false;
        for member in remove {
            changed |= self
                .directory
                .remove_group_member_in(tx, ctx, group, member)
                .await?;
        }
        for member in add {
            let is_user_or_group = tx.get(ctx.tenant, Kind::User, member).await?.is_some()
                || tx.get(ctx.tenant, Kind::Group, member).await?.is_some();
            if !is_user_or_group {
                return Err(ScimError::invalid_value(format!(
                    "member {member} is not a user or group of this tenant"
                ))
                .into());
            }
            changed |= self
                .directory
                .add_group_member_in(tx, ctx, group, member)
                .await
                .map_err(|e| match e {
                    ServiceError::Validation(errors) => {
                        ScimFailure::Scim(ScimError::invalid_value(
                            errors
                                .errors
                                .iter()
                                .map(|e| e.message.clone())
                                .collect::<Vec<_>>()
                                .join("; "),
                        ))
                    }
                    other => other.into(),
                })?;
        }
        Ok(changed)
    }

    pub async fn delete(
        &self,
        ctx: &Context,
        rt: &ResourceType,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<()> {
        let (mut tx, record, _) = self.open(ctx, rt, id, if_match).await?;
        if rt.id == GROUP_TYPE.id {
            self.directory
                .delete_group_in(tx.as_mut(), ctx, &record)
                .await?;
            tx.commit().await?;
        } else {
            self.directory
                .delete_user_in(tx.as_mut(), ctx, &record)
                .await?;
            tx.commit().await?;
            self.end_user_sessions(
                ctx.tenant,
                record.id,
                None,
                tessera_cae::Reason::AccountDeleted,
            )
            .await?;
        }
        Ok(())
    }
}

/// A user principal name or userName another user has is SCIM's `uniqueness`.
fn uniqueness(error: ServiceError) -> ScimFailure {
    match error {
        ServiceError::Conflict { message } if message.contains("userPrincipalName") => {
            ScimFailure::Scim(ScimError::new(
                409,
                Some(ScimType::Uniqueness),
                format!("userName: {message}"),
            ))
        }
        other => other.into(),
    }
}

fn source_conflict(error: StoreError) -> ScimFailure {
    match error {
        StoreError::Duplicate { .. } => ScimFailure::Scim(ScimError::new(
            409,
            Some(ScimType::Uniqueness),
            "another user already has this userName",
        )),
        other => other.into(),
    }
}

fn member_ids(members: &Value) -> Result<Vec<String>> {
    let items = members.as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|m| {
            m.get("value")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    ScimError::invalid_value("each member needs its value (the member's id)").into()
                })
        })
        .collect()
}

fn parse_members(ids: &[String]) -> Result<Vec<Uuid>> {
    ids.iter()
        .map(|id| {
            Uuid::parse_str(id).map_err(|_| {
                ScimError::invalid_value(format!("member {id:?} is not the id of a user or group"))
                    .into()
            })
        })
        .collect()
}

/// A group's members SCIM knows of: users and groups (devices and service
/// principals the group holds are neither shown nor touched).
/// Whether a user record says the account is enabled.
pub(crate) fn account_enabled(record: &Record) -> Option<bool> {
    codec::data::<Map<String, Value>>(record)
        .ok()?
        .get("accountEnabled")?
        .as_bool()
}

async fn scim_members(reader: &mut dyn Reader, tenant: TenantId, id: Uuid) -> Result<Vec<Uuid>> {
    let links = crate::directory::groups::all_links_from(reader, tenant, Rel::Member, id).await?;
    Ok(links
        .into_iter()
        .filter(|l| matches!(l.target_kind, Kind::User | Kind::Group))
        .map(|l| l.target)
        .collect())
}

/// A group's members as SCIM lists them.
async fn members_of(
    reader: &mut dyn Reader,
    tenant: TenantId,
    id: Uuid,
    base: &str,
) -> Result<Vec<Value>> {
    let links = crate::directory::groups::all_links_from(reader, tenant, Rel::Member, id).await?;
    Ok(links
        .into_iter()
        .filter_map(|link| {
            let kind = match link.target_kind {
                Kind::User => "User",
                Kind::Group => "Group",
                _ => return None,
            };
            Some(json!({
                "value": link.target,
                "$ref": format!("{base}/{kind}s/{}", link.target),
                "type": kind,
            }))
        })
        .collect())
}

/// The groups a user is a direct member of.
async fn groups_of(
    reader: &mut dyn Reader,
    tenant: TenantId,
    id: Uuid,
    base: &str,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for link in reader.links_to(tenant, Rel::Member, id).await? {
        if link.source_kind != Kind::Group {
            continue;
        }
        let display = match reader.get(tenant, Kind::Group, link.source).await? {
            Some(group) => object(&group)?
                .get("displayName")
                .cloned()
                .unwrap_or(Value::Null),
            None => continue,
        };
        out.push(json!({
            "value": link.source,
            "$ref": format!("{base}/Groups/{}", link.source),
            "display": display,
            "type": "direct",
        }));
    }
    Ok(out)
}

fn encode_cursor(sort_key: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{id}{sort_key}"))
}

fn decode_cursor(cursor: &str) -> Result<Option<Cursor>> {
    if cursor.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        ScimFailure::Scim(ScimError::bad(
            ScimType::InvalidCursor,
            "the cursor is not one this server gave",
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    if text.len() < 36 || !text.is_char_boundary(36) {
        return Err(invalid());
    }
    let id = Uuid::parse_str(&text[..36]).map_err(|_| invalid())?;
    Ok(Some(Cursor {
        sort_key: text[36..].to_string(),
        id,
    }))
}

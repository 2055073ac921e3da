//! Groups: assigned and dynamic membership, nesting, owners.

use std::collections::{BTreeSet, HashSet, VecDeque};
use tessera_directory::audit_action::AuditAction;

use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::authz::Target;
use tessera_directory::model::{
    DirectoryObjectRef, Group, GroupSpec, ObjectType, ProcessingState, UserSpec,
};
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_directory::{rule, validate};
use tessera_pim::GroupAccess;
use tessera_store::{Cursor, Kind, Link, ListQuery, Reader, Record, Rel, WriteTx};
use uuid::Uuid;

use super::resource::{Editing, Resource, resource};
use super::users::find_object;
use crate::codec::{self, Keys, Page, PageRequest};
use crate::codec::{Patch, Versioned};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, Directory, EventDraft, target_facts};

/// `key2` of dynamic groups, so that a user's change can find them all at once.
pub(crate) const DYNAMIC_MARKER: &str = "dynamic";
const READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "modifiedDateTime",
    "version",
    "groupTypes",
    "securityEnabled",
];
/// More members than this in one transitive listing is refused rather than slow.
const MAX_TRANSITIVE: usize = 100_000;
/// How many users a rule preview tries at most, and how many matches it shows.
pub const RULE_PREVIEW_SCAN: usize = 5_000;
pub const RULE_PREVIEW_MATCHES: usize = 20;

/// What a membership rule would hold (see `Directory::preview_membership_rule`).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RulePreview {
    /// Some of the users it matches, in directory order.
    pub members: Vec<DirectoryObjectRef>,
    /// How many of the scanned users it matches.
    pub matched: usize,
    pub scanned: usize,
    /// Every user was scanned (so `matched` is the group's size).
    pub complete: bool,
}
/// How many member ids an audit event lists before it only counts.
const AUDIT_ID_LIMIT: usize = 1000;

fn group_keys(spec: &GroupSpec) -> Keys {
    Keys {
        key1: None,
        key2: spec.is_dynamic().then(|| DYNAMIC_MARKER.to_string()),
        sort_key: codec::sort_key(&spec.display_name),
    }
}

fn group_view(_: &Directory, _: &Context, record: &Record) -> ServiceResult<Group> {
    group_from(record)
}

resource!(GroupSpec => Group, Group, "group", GROUPS_READ, [GroupCreate, GroupUpdate, GroupDelete],
    name: display_name, keys: group_keys,
    read_only: READ_ONLY, validate: validate::group_spec, fixed: fixed_at_creation, view: group_view);

/// Whether a group may hold directory roles is decided when it is created.
fn fixed_at_creation(before: &GroupSpec, after: &GroupSpec) -> ServiceResult<()> {
    if after.is_assignable_to_role != before.is_assignable_to_role {
        return Err(ServiceError::invalid(
            "isAssignableToRole",
            "is set when a group is created and cannot change",
        ));
    }
    Ok(())
}

pub(crate) fn group_from(record: &Record) -> ServiceResult<Group> {
    let spec: GroupSpec = codec::data(record)?;
    let group_types = if spec.is_dynamic() {
        vec!["DynamicMembership".to_string()]
    } else {
        Vec::new()
    };
    Ok(Group {
        id: record.id,
        spec,
        group_types,
        security_enabled: true,
        created_date_time: record.created,
        modified_date_time: record.modified,
        version: record.version,
    })
}

/// Role-assignable groups are managed with the role-management permissions only
/// (Entra: Groups and User Administrators cannot touch them).
pub(crate) fn group_action(spec: &GroupSpec, ordinary: &'static str) -> &'static str {
    if !spec.is_assignable_to_role {
        return ordinary;
    }
    match ordinary {
        action::GROUPS_CREATE => action::ROLE_GROUPS_CREATE,
        action::GROUPS_DELETE => action::ROLE_GROUPS_DELETE,
        action::GROUPS_READ | action::GROUPS_MEMBERS_READ | action::GROUPS_OWNERS_READ => ordinary,
        _ => action::ROLE_GROUPS_UPDATE,
    }
}

pub(crate) fn object_type(kind: Kind) -> ObjectType {
    match kind {
        Kind::Group => ObjectType::Group,
        Kind::Device => ObjectType::Device,
        Kind::ServicePrincipal => ObjectType::ServicePrincipal,
        _ => ObjectType::User,
    }
}

/// The display name of a user, group, device or service principal record.
pub(crate) fn display_name_of(record: &Record) -> String {
    let value: Value = serde_json::from_str(&record.data).unwrap_or(Value::Null);
    let name = value
        .get("displayName")
        .or_else(|| value.get("spec").and_then(|s| s.get("displayName")));
    name.and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| record.id.to_string())
}

pub(crate) fn object_ref(record: &Record) -> DirectoryObjectRef {
    DirectoryObjectRef {
        id: record.id,
        object_type: object_type(record.kind),
        display_name: display_name_of(record),
    }
}

/// The body of a reference request: `{"id": "<object id>"}`.
pub(crate) fn reference_id(body: &Value) -> ServiceResult<Uuid> {
    let Some(members) = body.as_object() else {
        return Err(ServiceError::invalid(
            "",
            "the body must be a JSON object {\"id\": \"<object id>\"}",
        ));
    };
    if let Some(extra) = members.keys().find(|k| k.as_str() != "id") {
        return Err(ServiceError::invalid(
            extra.clone(),
            "unknown field; the body is {\"id\": \"<object id>\"}",
        ));
    }
    let id = members
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ServiceError::invalid("id", "is required"))?;
    Uuid::parse_str(id).map_err(|_| ServiceError::invalid("id", "must be an object id (a UUID)"))
}

/// All links of `rel` from `source`, page by page.
pub(crate) async fn all_links_from(
    reader: &mut dyn Reader,
    tenant: TenantId,
    rel: Rel,
    source: Uuid,
) -> ServiceResult<Vec<Link>> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = reader.links_from(tenant, rel, source, after, 1000).await?;
        let full = page.len() == 1000;
        after = page.last().map(|l| l.target);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

/// Groups containing `id` at `now`: direct (a standing membership, or one a PIM
/// schedule gives at this moment), or through nesting when `transitive`.
pub(crate) async fn containing_groups(
    reader: &mut dyn Reader,
    tenant: TenantId,
    id: Uuid,
    transitive: bool,
    now: Timestamp,
) -> ServiceResult<Vec<Uuid>> {
    let mut found = BTreeSet::new();
    let mut queue = VecDeque::from([id]);
    for group in
        super::role_schedules::groups_at(reader, tenant, id, GroupAccess::Member, now).await?
    {
        if found.insert(group) && transitive {
            queue.push_back(group);
        }
    }
    while let Some(next) = queue.pop_front() {
        for link in reader.links_to(tenant, Rel::Member, next).await? {
            if found.insert(link.source) && transitive {
                queue.push_back(link.source);
            }
        }
        if found.len() > MAX_TRANSITIVE {
            return Err(ServiceError::Conflict {
                message: "too many groups to list transitively".to_string(),
            });
        }
    }
    Ok(found.into_iter().collect())
}

/// Every object reachable downward from `group` through nested groups.
pub(crate) async fn transitive_member_links(
    reader: &mut dyn Reader,
    tenant: TenantId,
    group: Uuid,
) -> ServiceResult<Vec<Link>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut queue = VecDeque::from([group]);
    while let Some(next) = queue.pop_front() {
        for link in all_links_from(reader, tenant, Rel::Member, next).await? {
            if !seen.insert(link.target) {
                continue;
            }
            if link.target_kind == Kind::Group {
                queue.push_back(link.target);
            }
            out.push(link);
            if out.len() > MAX_TRANSITIVE {
                return Err(ServiceError::Conflict {
                    message: "too many members to list transitively".to_string(),
                });
            }
        }
    }
    Ok(out)
}

impl Directory {
    pub async fn create_group(&self, ctx: &Context, body: Value) -> ServiceResult<Group> {
        let spec: GroupSpec = patch::parse_spec(body)?;
        let mut tx = self.write(ctx).await?;
        let record = self.create_group_in(tx.as_mut(), ctx, spec).await?;
        tx.commit().await?;
        group_from(&record)
    }

    /// Creates a group inside the caller's transaction, with its audit event.
    pub(crate) async fn create_group_in(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        spec: GroupSpec,
    ) -> ServiceResult<Record> {
        validate::group_spec(&spec)?;
        self.require(
            ctx,
            group_action(&spec, action::GROUPS_CREATE),
            &Target::Tenant,
        )?;
        let id = Uuid::new_v4();
        let (record, mut event) = self.insert_resource(tx, ctx, id, &spec).await?;
        if spec.is_dynamic() {
            event = event.details(
                self.recompute_dynamic_group(tx, ctx.tenant, id, &spec)
                    .await?,
            );
        }
        self.audit(tx, ctx, event).await?;
        Ok(record)
    }

    pub async fn update_group(&self, ctx: &Context, patch: Patch) -> ServiceResult<Group> {
        let (editing, after) = self
            .patch_resource::<GroupSpec>(ctx, &patch, |_| action::GROUPS_READ)
            .await?;
        let Editing {
            mut tx,
            record,
            facts,
            spec: before,
        } = editing;
        match self
            .write_group_update(tx.as_mut(), ctx, &record, &facts, &before, after)
            .await?
        {
            Some(updated) => {
                tx.commit().await?;
                group_from(&updated)
            }
            None => group_from(&record),
        }
    }

    /// Replaces a group's spec with `after` inside the caller's transaction, as
    /// [`update_group`](Self::update_group) does. `None` when nothing changed.
    pub(crate) async fn update_group_in(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        record: &Record,
        after: GroupSpec,
    ) -> ServiceResult<Option<Record>> {
        let facts = target_facts(tx, ctx.tenant, Kind::Group, record.id).await?;
        self.require(ctx, action::GROUPS_READ, &facts)?;
        let before: GroupSpec = codec::data(record)?;
        before.check_change(&after)?;
        after.validate()?;
        self.write_group_update(tx, ctx, record, &facts, &before, after)
            .await
    }

    async fn write_group_update(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        record: &Record,
        facts: &Target,
        before: &GroupSpec,
        after: GroupSpec,
    ) -> ServiceResult<Option<Record>> {
        let id = record.id;
        let changes = patch::changes(&before.json(), &after.json());
        if changes.is_empty() {
            return Ok(None);
        }
        let rule_changed = before.membership_rule != after.membership_rule
            || before.membership_rule_processing_state != after.membership_rule_processing_state;
        let basic_changed = changes.iter().any(|c| {
            c.attribute != "membershipRule" && c.attribute != "membershipRuleProcessingState"
        });
        if rule_changed {
            self.require(ctx, group_action(&after, action::GROUPS_RULE_UPDATE), facts)?;
            // A group whose members a rule computes has no assigned members:
            // PIM's would stay in force beside the rule.
            if after.is_dynamic()
                && super::role_schedules::has_member_schedules(tx, ctx.tenant, id).await?
            {
                return Err(ServiceError::Conflict {
                    message: "members are assigned to this group through PIM: remove those eligibilities and assignments before giving it a membership rule".to_string(),
                });
            }
        }
        if basic_changed {
            self.require(
                ctx,
                group_action(&after, action::GROUPS_BASIC_UPDATE),
                facts,
            )?;
        }
        let updated = codec::next_version(record, self.now(), after.keys(), &after)?;
        tx.update(ctx.tenant, &updated).await?;
        let mut event = EventDraft::new(AuditAction::GroupUpdate)
            .on(Kind::Group, id, &after.display_name)
            .changes(changes);
        if after.is_dynamic() && rule_changed {
            if !before.is_dynamic() {
                // Converting to dynamic replaces the assigned members by computed ones.
                for link in all_links_from(tx, ctx.tenant, Rel::Member, id).await? {
                    if link.target_kind != Kind::User {
                        tx.unlink(ctx.tenant, Rel::Member, id, link.target).await?;
                    }
                }
            }
            event = event.details(
                self.recompute_dynamic_group(tx, ctx.tenant, id, &after)
                    .await?,
            );
        }
        self.audit(tx, ctx, event).await?;
        Ok(Some(updated))
    }

    pub async fn delete_group(&self, ctx: &Context, at: Versioned) -> ServiceResult<()> {
        let id = at.id;
        let mut editing = self
            .edit_resource::<GroupSpec>(ctx, at, |spec| group_action(spec, action::GROUPS_DELETE))
            .await?;
        let details = self
            .clear_group_for_deletion(editing.tx.as_mut(), ctx, id)
            .await?;
        self.remove_resource(ctx, editing, details).await
    }

    /// Deletes a group inside the caller's transaction, as
    /// [`delete_group`](Self::delete_group) does.
    pub(crate) async fn delete_group_in(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        record: &Record,
    ) -> ServiceResult<()> {
        let spec: GroupSpec = codec::data(record)?;
        let facts = target_facts(tx, ctx.tenant, Kind::Group, record.id).await?;
        self.require(ctx, group_action(&spec, action::GROUPS_DELETE), &facts)?;
        let details = self.clear_group_for_deletion(tx, ctx, record.id).await?;
        tx.delete(ctx.tenant, Kind::Group, record.id, Some(record.version))
            .await?;
        let event = EventDraft::new(AuditAction::GroupDelete)
            .on(Kind::Group, record.id, &spec.display_name)
            .changes(patch::changes(&spec.json(), &Value::Null))
            .details(details);
        self.audit(tx, ctx, event).await
    }

    /// Every reference to a group about to be deleted; the audit event's details.
    async fn clear_group_for_deletion(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<Value> {
        let cleanup = self.remove_principal_everywhere(tx, ctx, id).await?;
        let members = all_links_from(tx, ctx.tenant, Rel::Member, id).await?.len();
        // Its PIM schedules go with it: nobody becomes a member of a group
        // that is no more, nor of one made later under the same name.
        let schedules = super::role_schedules::remove_for_group(tx, ctx.tenant, id).await?;
        let provisioned = super::users::delete_provisioning_record(tx, ctx.tenant, id).await?;
        Ok(json!({
            "removedFrom": cleanup,
            "memberCount": members,
            "pimSchedulesRemoved": schedules,
            "provisioningRecordDeleted": provisioned,
        }))
    }

    pub async fn list_group_members(
        &self,
        ctx: &Context,
        id: Uuid,
        transitive: bool,
        request: &PageRequest,
    ) -> ServiceResult<Page<DirectoryObjectRef>> {
        let mut reader = self
            .reader_for(ctx, Kind::Group, id, action::GROUPS_MEMBERS_READ)
            .await?;
        let links = if transitive {
            transitive_member_links(reader.as_mut(), ctx.tenant, id).await?
        } else {
            let (page, next_cursor) =
                codec::links_page(reader.as_mut(), ctx.tenant, Rel::Member, id, request).await?;
            let value = self
                .resolve_refs(reader.as_mut(), ctx.tenant, &page)
                .await?;
            return Ok(Page {
                value: value.into_iter().map(|(_, r)| r).collect(),
                next_cursor,
            });
        };
        let items = self
            .resolve_refs(reader.as_mut(), ctx.tenant, &links)
            .await?;
        codec::page_by_id(items, request)
    }

    /// Begins a change of a group's members: by those whose roles allow it, or,
    /// for a group that is not role-assignable, by its owner (standing, or one
    /// PIM makes an owner at this moment), as in Entra.
    async fn edit_members(&self, ctx: &Context, id: Uuid) -> ServiceResult<Editing<GroupSpec>> {
        let refused = match self
            .edit_resource::<GroupSpec>(ctx, Versioned::any(id), |spec| {
                group_action(spec, action::GROUPS_MEMBERS_UPDATE)
            })
            .await
        {
            Err(refused @ ServiceError::Forbidden { .. }) => refused,
            other => return other,
        };
        let Some(caller) = ctx.caller.user_id() else {
            return Err(refused);
        };
        let mut tx = self.write(ctx).await?;
        let owns = tx
            .links_to(ctx.tenant, Rel::Owner, caller)
            .await?
            .iter()
            .any(|link| link.source == id)
            || super::role_schedules::owns_at(tx.as_mut(), ctx.tenant, caller, id, self.now())
                .await?;
        if !owns {
            return Err(refused);
        }
        let record = codec::load(tx.as_mut(), ctx.tenant, Kind::Group, id).await?;
        let spec: GroupSpec = codec::data(&record)?;
        // A role-assignable group's members hold its roles (and may approve
        // activations): only the role-management permission changes them, so
        // an owner cannot turn ownership into standing membership and roles.
        if spec.is_assignable_to_role {
            return Err(refused);
        }
        let facts = target_facts(tx.as_mut(), ctx.tenant, Kind::Group, id).await?;
        Ok(Editing {
            tx,
            record,
            facts,
            spec,
        })
    }

    async fn resolve_refs(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        links: &[Link],
    ) -> ServiceResult<Vec<(Uuid, DirectoryObjectRef)>> {
        let mut out = Vec::with_capacity(links.len());
        for link in links {
            if let Some(record) = reader.get(tenant, link.target_kind, link.target).await? {
                out.push((link.target, object_ref(&record)));
            }
        }
        Ok(out)
    }

    pub async fn add_group_member(
        &self,
        ctx: &Context,
        id: Uuid,
        body: Value,
    ) -> ServiceResult<()> {
        let member = reference_id(&body)?;
        let mut editing = self.edit_members(ctx, id).await?;
        let member_record = self
            .check_new_member(editing.tx.as_mut(), ctx, id, &editing.spec, member)
            .await?;
        self.link_member(
            ctx,
            editing,
            Rel::Member,
            &member_record,
            AuditAction::GroupMemberAdd,
        )
        .await
    }

    /// Adds a member inside the caller's transaction, for a caller whose roles
    /// allow changing the group's members; false when it was a member already.
    pub(crate) async fn add_group_member_in(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        group: &Record,
        member: Uuid,
    ) -> ServiceResult<bool> {
        let spec = self.authorize_member_change(tx, ctx, group).await?;
        let member_record = self
            .check_new_member(tx, ctx, group.id, &spec, member)
            .await?;
        let link = Link {
            rel: Rel::Member,
            source: group.id,
            source_kind: Kind::Group,
            target: member,
            target_kind: member_record.kind,
        };
        if !tx.link(ctx.tenant, &link, self.now()).await? {
            return Ok(false);
        }
        let event = EventDraft::new(AuditAction::GroupMemberAdd)
            .on(Kind::Group, group.id, &spec.display_name)
            .details(json!({ "member": object_ref(&member_record) }));
        self.audit(tx, ctx, event).await?;
        Ok(true)
    }

    /// Removes a member inside the caller's transaction; false when it was none.
    pub(crate) async fn remove_group_member_in(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        group: &Record,
        member: Uuid,
    ) -> ServiceResult<bool> {
        let spec = self.authorize_member_change(tx, ctx, group).await?;
        if spec.is_dynamic() {
            return Err(dynamic_members_error("removed"));
        }
        if !tx.unlink(ctx.tenant, Rel::Member, group.id, member).await? {
            return Ok(false);
        }
        let event = EventDraft::new(AuditAction::GroupMemberRemove)
            .on(Kind::Group, group.id, &spec.display_name)
            .details(json!({ "memberId": member }));
        self.audit(tx, ctx, event).await?;
        Ok(true)
    }

    /// The group's spec, for a caller whose roles allow changing its members.
    async fn authorize_member_change(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        group: &Record,
    ) -> ServiceResult<GroupSpec> {
        let spec: GroupSpec = codec::data(group)?;
        let facts = target_facts(tx, ctx.tenant, Kind::Group, group.id).await?;
        self.require(
            ctx,
            group_action(&spec, action::GROUPS_MEMBERS_UPDATE),
            &facts,
        )?;
        Ok(spec)
    }

    /// The refusals of a new member (a dynamic group, a protected role assignment,
    /// a kind the group cannot hold, a cycle); the member's record otherwise.
    async fn check_new_member(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        id: Uuid,
        spec: &GroupSpec,
        member: Uuid,
    ) -> ServiceResult<Record> {
        if spec.is_dynamic() {
            return Err(dynamic_members_error("added"));
        }
        if spec.is_assignable_to_role {
            // Joining the group is being given its roles: a protected role
            // assignment asks for its context here too.
            for role in super::roles::roles_held_by(tx, ctx.tenant, id).await? {
                self.protect(
                    ctx,
                    tessera_pim::protected::ROLE_ASSIGNMENT_CREATE,
                    Some(role),
                )?;
            }
        }
        let allowed: &[Kind] = if spec.is_assignable_to_role {
            &[Kind::User, Kind::ServicePrincipal]
        } else {
            &[
                Kind::User,
                Kind::Group,
                Kind::Device,
                Kind::ServicePrincipal,
            ]
        };
        let Some(member_record) = find_object(tx, ctx.tenant, member, allowed).await? else {
            let what = if spec.is_assignable_to_role {
                "user or service principal (a role-assignable group cannot contain groups or devices)"
            } else {
                "user, group, device or service principal"
            };
            return Err(ServiceError::invalid(
                "id",
                format!("no {what} with id {member} exists"),
            ));
        };
        if member_record.kind == Kind::Group {
            if member == id {
                return Err(ServiceError::invalid(
                    "id",
                    "a group cannot be a member of itself",
                ));
            }
            let below = transitive_member_links(tx, ctx.tenant, member).await?;
            if below.iter().any(|l| l.target == id) {
                return Err(ServiceError::Conflict {
                    message:
                        "adding this group would create a cycle: it already contains this group"
                            .to_string(),
                });
            }
        }
        Ok(member_record)
    }

    pub async fn remove_group_member(
        &self,
        ctx: &Context,
        id: Uuid,
        member: Uuid,
    ) -> ServiceResult<()> {
        let editing = self.edit_members(ctx, id).await?;
        if editing.spec.is_dynamic() {
            return Err(dynamic_members_error("removed"));
        }
        self.unlink_member(
            ctx,
            editing,
            Rel::Member,
            member,
            AuditAction::GroupMemberRemove,
        )
        .await
    }

    /// What a membership rule would hold, before a group is saved with it: the rule
    /// is parsed (a mistake is a validation error on `membershipRule`) and tried on
    /// the first `RULE_PREVIEW_SCAN` users; up to `RULE_PREVIEW_MATCHES` of those it
    /// matches are returned, with whether the scan stopped early.
    pub async fn preview_membership_rule(
        &self,
        ctx: &Context,
        rule_text: &str,
    ) -> ServiceResult<RulePreview> {
        self.require(ctx, action::USERS_READ, &Target::Tenant)?;
        let parsed = rule::parse(rule_text)
            .map_err(|e| ServiceError::invalid("membershipRule", e.to_string()))?;
        let mut reader = self.reader().await?;
        let mut preview = RulePreview::default();
        let mut after = None;
        while preview.scanned < RULE_PREVIEW_SCAN {
            let query = ListQuery {
                after: after.clone(),
                limit: 1000,
                prefix: None,
                key2: None,
            };
            let page = reader.list(ctx.tenant, Kind::User, &query).await?;
            let Some(last) = page.last() else { break };
            after = Some(Cursor {
                sort_key: last.sort_key.clone(),
                id: last.id,
            });
            let full = page.len() == 1000;
            for user in &page {
                preview.scanned += 1;
                let spec: UserSpec = codec::data(user)?;
                if rule::matches(&parsed, user.id, &spec) {
                    preview.matched += 1;
                    if preview.members.len() < RULE_PREVIEW_MATCHES {
                        preview.members.push(DirectoryObjectRef {
                            id: user.id,
                            object_type: ObjectType::User,
                            display_name: spec.display_name,
                        });
                    }
                }
            }
            if !full {
                preview.complete = true;
                break;
            }
        }
        Ok(preview)
    }

    /// Recomputes a dynamic group's members from scratch, page by page over all users.
    async fn recompute_dynamic_group(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        id: Uuid,
        spec: &GroupSpec,
    ) -> ServiceResult<Value> {
        let Some(text) = &spec.membership_rule else {
            return Ok(Value::Null);
        };
        if spec.membership_rule_processing_state == ProcessingState::Paused {
            return Ok(json!({ "processing": "paused" }));
        }
        let parsed = rule::parse(text)
            .map_err(|e| ServiceError::invalid("membershipRule", e.to_string()))?;
        let mut current: HashSet<Uuid> = all_links_from(tx, tenant, Rel::Member, id)
            .await?
            .into_iter()
            .map(|l| l.target)
            .collect();
        let mut added = Vec::new();
        let mut after = None;
        loop {
            let page = tx
                .list(
                    tenant,
                    Kind::User,
                    &ListQuery {
                        after: after.clone(),
                        limit: 1000,
                        prefix: None,
                        key2: None,
                    },
                )
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(Cursor {
                sort_key: last.sort_key.clone(),
                id: last.id,
            });
            let full = page.len() == 1000;
            for user in &page {
                let user_spec: UserSpec = codec::data(user)?;
                if rule::matches(&parsed, user.id, &user_spec) && !current.remove(&user.id) {
                    let link = Link {
                        rel: Rel::Member,
                        source: id,
                        source_kind: Kind::Group,
                        target: user.id,
                        target_kind: Kind::User,
                    };
                    tx.link(tenant, &link, self.now()).await?;
                    added.push(user.id);
                }
            }
            if !full {
                break;
            }
        }
        let removed: Vec<Uuid> = current.into_iter().collect();
        for member in &removed {
            tx.unlink(tenant, Rel::Member, id, *member).await?;
        }
        Ok(json!({
            "membersAdded": added.len(),
            "membersRemoved": removed.len(),
            "addedIds": added.iter().take(AUDIT_ID_LIMIT).collect::<Vec<_>>(),
            "removedIds": removed.iter().take(AUDIT_ID_LIMIT).collect::<Vec<_>>(),
        }))
    }

    /// Before an object is deleted: removes the role assignments it holds and lists
    /// the groups, units and objects it belonged to or owned (the store drops the
    /// links themselves), for the audit event.
    pub(crate) async fn remove_principal_everywhere(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<Value> {
        let groups: Vec<Uuid> = tx
            .links_to(ctx.tenant, Rel::Member, id)
            .await?
            .into_iter()
            .map(|l| l.source)
            .collect();
        let units: Vec<Uuid> = tx
            .links_to(ctx.tenant, Rel::UnitMember, id)
            .await?
            .into_iter()
            .map(|l| l.source)
            .collect();
        let owned: Vec<Uuid> = tx
            .links_to(ctx.tenant, Rel::Owner, id)
            .await?
            .into_iter()
            .map(|l| l.source)
            .collect();
        let mut assignments = Vec::new();
        for assignment in
            codec::list_all(tx, ctx.tenant, Kind::RoleAssignment, Some(id.to_string())).await?
        {
            tx.delete(ctx.tenant, Kind::RoleAssignment, assignment.id, None)
                .await?;
            assignments.push(json!({ "id": assignment.id, "assignment": serde_json::from_str::<Value>(&assignment.data).unwrap_or(Value::Null) }));
        }
        Ok(
            json!({ "groups": groups, "administrativeUnits": units, "owned": owned, "roleAssignments": assignments }),
        )
    }

    // ---- owners (groups, applications, service principals, devices) -------------

    pub async fn list_owners(
        &self,
        ctx: &Context,
        kind: Kind,
        id: Uuid,
    ) -> ServiceResult<Page<DirectoryObjectRef>> {
        let mut reader = self.reader().await?;
        codec::load(reader.as_mut(), ctx.tenant, kind, id).await?;
        let facts = target_facts(reader.as_mut(), ctx.tenant, kind, id).await?;
        self.require(ctx, owner_read_action(kind), &facts)?;
        let links = all_links_from(reader.as_mut(), ctx.tenant, Rel::Owner, id).await?;
        let value = self
            .resolve_refs(reader.as_mut(), ctx.tenant, &links)
            .await?;
        Ok(Page {
            value: value.into_iter().map(|(_, r)| r).collect(),
            next_cursor: None,
        })
    }

    pub async fn add_owner(
        &self,
        ctx: &Context,
        kind: Kind,
        id: Uuid,
        body: Value,
    ) -> ServiceResult<()> {
        let owner = reference_id(&body)?;
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, kind, id).await?;
        let facts = target_facts(tx.as_mut(), ctx.tenant, kind, id).await?;
        self.require(ctx, owner_update_action(kind, &record)?, &facts)?;
        let Some(owner_record) = find_object(
            tx.as_mut(),
            ctx.tenant,
            owner,
            &[Kind::User, Kind::ServicePrincipal],
        )
        .await?
        else {
            return Err(ServiceError::invalid(
                "id",
                format!("no user or service principal with id {owner} exists"),
            ));
        };
        let link = Link {
            rel: Rel::Owner,
            source: id,
            source_kind: kind,
            target: owner,
            target_kind: owner_record.kind,
        };
        if !tx.link(ctx.tenant, &link, self.now()).await? {
            return Err(ServiceError::Conflict {
                message: "the object is already an owner".to_string(),
            });
        }
        let event = EventDraft::new(owner_event(kind, true))
            .on(kind, id, &display_name_of(&record))
            .details(json!({ "owner": object_ref(&owner_record) }));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }

    pub async fn remove_owner(
        &self,
        ctx: &Context,
        kind: Kind,
        id: Uuid,
        owner: Uuid,
    ) -> ServiceResult<()> {
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, kind, id).await?;
        let facts = target_facts(tx.as_mut(), ctx.tenant, kind, id).await?;
        self.require(ctx, owner_update_action(kind, &record)?, &facts)?;
        if !tx.unlink(ctx.tenant, Rel::Owner, id, owner).await? {
            return Err(ServiceError::NotFound {
                kind: "owner",
                id: owner.to_string(),
            });
        }
        let event = EventDraft::new(owner_event(kind, false))
            .on(kind, id, &display_name_of(&record))
            .details(json!({ "ownerId": owner }));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }
}

fn owner_read_action(kind: Kind) -> &'static str {
    match kind {
        Kind::Group => action::GROUPS_OWNERS_READ,
        Kind::Application => action::APPS_READ,
        Kind::ServicePrincipal => action::SPS_READ,
        _ => action::DEVICES_READ,
    }
}

pub(crate) fn owner_update_action(kind: Kind, record: &Record) -> ServiceResult<&'static str> {
    Ok(match kind {
        Kind::Group => {
            let spec: GroupSpec = codec::data(record)?;
            group_action(&spec, action::GROUPS_OWNERS_UPDATE)
        }
        Kind::Application => action::APPS_OWNERS_UPDATE,
        Kind::ServicePrincipal => action::SPS_OWNERS_UPDATE,
        _ => action::DEVICES_BASIC_UPDATE,
    })
}

fn owner_event(kind: Kind, add: bool) -> AuditAction {
    match (kind, add) {
        (Kind::Group, true) => AuditAction::GroupOwnerAdd,
        (Kind::Group, false) => AuditAction::GroupOwnerRemove,
        (Kind::Application, true) => AuditAction::ApplicationOwnerAdd,
        (Kind::Application, false) => AuditAction::ApplicationOwnerRemove,
        (Kind::ServicePrincipal, true) => AuditAction::ServicePrincipalOwnerAdd,
        (Kind::ServicePrincipal, false) => AuditAction::ServicePrincipalOwnerRemove,
        (_, true) => AuditAction::DeviceOwnerAdd,
        (_, false) => AuditAction::DeviceOwnerRemove,
    }
}

fn dynamic_members_error(verb: &str) -> ServiceError {
    ServiceError::Conflict {
        message: format!(
            "the members of a dynamic group are computed from its rule and cannot be {verb} by hand"
        ),
    }
}

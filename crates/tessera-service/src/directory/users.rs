//! Users.

use serde_json::{Value, json};
use tessera_core::TenantId;
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::{DirectoryObjectRef, GroupSpec, ObjectType, User, UserSpec};
use tessera_directory::patch::{self, Change};
use tessera_directory::roles::action;
use tessera_directory::{rule, validate};
use tessera_store::{Kind, Link, Reader, Record, Rel, WriteTx};
use uuid::Uuid;

use super::resource::{Editing, Resource, resource};
use super::{attributes, groups};
use crate::codec::{self, Keys, Page, PageRequest};
use crate::codec::{Patch, Versioned};
use crate::error::{OrConflict, ServiceError, ServiceResult};
use crate::{Context, Directory, EventDraft, target_facts};

pub(crate) const READ_ONLY: &[&str] = &["id", "createdDateTime", "modifiedDateTime", "version"];

pub(crate) fn user_keys(spec: &UserSpec) -> Keys {
    Keys {
        key1: Some(spec.user_principal_name.to_lowercase()),
        key2: spec.manager_id.map(|m| m.to_string()),
        sort_key: codec::sort_key(&spec.display_name),
    }
}

// Users are named by their user principal name in the audit trail.
resource!(UserSpec => User, User, "user", USERS_READ, [UserCreate, UserUpdate, UserDelete],
    name: user_principal_name, keys: user_keys,
    read_only: READ_ONLY, validate: validate::user_spec, view: user_view);

fn user_view(directory: &Directory, ctx: &Context, record: &Record) -> ServiceResult<User> {
    Ok(directory.user_view(ctx, user_from(record)?))
}

impl Directory {
    /// The user as this caller may see it: custom security attribute values only for
    /// holders of an attribute role.
    pub(crate) fn user_view(&self, ctx: &Context, mut user: User) -> User {
        if !user.spec.custom_security_attributes.is_empty()
            && !self.may_read_attributes(ctx, action::USERS_CSA_READ)
        {
            user.spec.custom_security_attributes.clear();
        }
        user
    }
}

pub(crate) fn user_from(record: &Record) -> ServiceResult<User> {
    Ok(User {
        id: record.id,
        spec: codec::data(record)?,
        created_date_time: record.created,
        modified_date_time: record.modified,
        version: record.version,
    })
}

/// The actions an update needs, from the attributes it changes (Entra's fine-grained
/// user permissions).
fn user_action(change: &Change) -> &'static str {
    match change.attribute.as_str() {
        "userPrincipalName" => action::USERS_UPN_UPDATE,
        "managerId" => action::USERS_MANAGER_UPDATE,
        "customSecurityAttributes" => action::USERS_CSA_UPDATE,
        "accountEnabled" if change.new_value == Value::Bool(false) => action::USERS_DISABLE,
        "accountEnabled" => action::USERS_ENABLE,
        _ => action::USERS_BASIC_UPDATE,
    }
}

impl Directory {
    async fn check_user_references(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        id: Uuid,
        spec: &mut UserSpec,
    ) -> ServiceResult<()> {
        if let Some(manager) = spec.manager_id {
            if manager == id {
                return Err(ServiceError::invalid(
                    "managerId",
                    "a user cannot be their own manager",
                ));
            }
            if tx.get(ctx.tenant, Kind::User, manager).await?.is_none() {
                return Err(ServiceError::invalid(
                    "managerId",
                    format!("no user with id {manager} exists"),
                ));
            }
        }
        if !spec.custom_security_attributes.is_empty() {
            let definitions = attributes::definitions(tx, ctx.tenant).await?;
            validate::custom_security_attributes(
                &mut spec.custom_security_attributes,
                &definitions,
            )?;
        }
        Ok(())
    }

    pub async fn create_user(&self, ctx: &Context, body: Value) -> ServiceResult<User> {
        let spec: UserSpec = patch::parse_spec(body)?;
        let mut tx = self.write(ctx).await?;
        let record = self.create_user_in(tx.as_mut(), ctx, spec).await?;
        tx.commit().await?;
        Ok(self.user_view(ctx, user_from(&record)?))
    }

    /// Creates a user inside the caller's transaction (validated, authorized,
    /// references checked, dynamic groups applied, the event recorded), for use
    /// cases that write more in the same transaction (provisioning).
    pub(crate) async fn create_user_in(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        spec: UserSpec,
    ) -> ServiceResult<Record> {
        validate::user_spec(&spec)?;
        self.authorize_user_creation(ctx, &spec)?;
        let rules = DynamicRules::load(tx, ctx.tenant).await?;
        self.insert_user(tx, ctx, spec, &rules).await
    }

    /// Creates up to `MAX_IMPORT` (1,000) users in one transaction: all of them, or, if any
    /// is invalid, none. Each gets its own audit event.
    pub async fn import_users(&self, ctx: &Context, body: Value) -> ServiceResult<Vec<Uuid>> {
        let Some(items) = body.get("users").and_then(Value::as_array) else {
            return Err(ServiceError::invalid(
                "users",
                "is required: a list of users to create",
            ));
        };
        if body.as_object().is_some_and(|o| o.len() != 1) {
            return Err(ServiceError::invalid(
                "",
                "the body is {\"users\": [...]} and nothing else",
            ));
        }
        if items.is_empty() || items.len() > MAX_IMPORT {
            return Err(ServiceError::invalid(
                "users",
                format!("must hold 1 to {MAX_IMPORT} users"),
            ));
        }
        let mut specs = Vec::with_capacity(items.len());
        let mut errors = tessera_directory::ValidationErrors::new();
        for (index, item) in items.iter().enumerate() {
            let parsed = patch::parse_spec::<UserSpec>(item.clone())
                .and_then(|spec| validate::user_spec(&spec).map(|()| spec));
            match parsed {
                Ok(spec) => specs.push(spec),
                Err(found) => {
                    for error in found.errors {
                        let field = if error.field.is_empty() {
                            format!("users[{index}]")
                        } else {
                            format!("users[{index}].{}", error.field)
                        };
                        errors.add(field, error.message);
                    }
                }
            }
        }
        errors.into_result()?;
        for spec in &specs {
            self.authorize_user_creation(ctx, spec)?;
        }
        let mut tx = self.write(ctx).await?;
        let rules = DynamicRules::load(tx.as_mut(), ctx.tenant).await?;
        let mut ids = Vec::with_capacity(specs.len());
        for (index, spec) in specs.into_iter().enumerate() {
            let record = self
                .insert_user(tx.as_mut(), ctx, spec, &rules)
                .await
                .map_err(|error| match error {
                    ServiceError::Validation(found) => {
                        let mut prefixed = tessera_directory::ValidationErrors::new();
                        for e in found.errors {
                            prefixed.add(format!("users[{index}].{}", e.field), e.message);
                        }
                        ServiceError::Validation(prefixed)
                    }
                    ServiceError::Conflict { message } => ServiceError::Conflict {
                        message: format!("users[{index}]: {message}"),
                    },
                    other => other,
                })?;
            ids.push(record.id);
        }
        tx.commit().await?;
        // A bulk load moves the planner's statistics (SQLite keeps none itself).
        if let Err(error) = self.store().optimize().await {
            tracing::warn!(%error, "cannot refresh the planner's statistics");
        }
        Ok(ids)
    }

    fn authorize_user_creation(&self, ctx: &Context, spec: &UserSpec) -> ServiceResult<()> {
        self.require(ctx, action::USERS_CREATE, &Target::Tenant)?;
        if !spec.custom_security_attributes.is_empty() {
            self.require(ctx, action::USERS_CSA_UPDATE, &Target::Tenant)?;
        }
        Ok(())
    }

    /// Checks references, inserts the user, applies dynamic groups and records the
    /// event, inside the caller's transaction.
    async fn insert_user(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        mut spec: UserSpec,
        rules: &DynamicRules,
    ) -> ServiceResult<Record> {
        let id = Uuid::new_v4();
        self.check_user_references(tx, ctx, id, &mut spec).await?;
        let record = codec::new_record(Kind::User, id, self.now(), user_keys(&spec), &spec)?;
        insert_unique_user(tx, ctx.tenant, &record).await?;
        let dynamic = self
            .apply_dynamic_groups(tx, ctx.tenant, id, &spec, rules, &[])
            .await?;
        let changes = patch::changes(&Value::Null, &spec.json());
        let event = EventDraft::new(AuditAction::UserCreate)
            .on(Kind::User, id, &spec.user_principal_name)
            .changes(changes);
        let event = if dynamic.is_empty() {
            event
        } else {
            event.details(json!({ "dynamicGroupChanges": dynamic }))
        };
        self.audit(tx, ctx, event).await?;
        Ok(record)
    }

    /// A user by user principal name (case-insensitive).
    pub async fn get_user_by_principal_name(
        &self,
        ctx: &Context,
        user_principal_name: &str,
    ) -> ServiceResult<User> {
        // Callers who may read no user at all learn nothing, not even whether the name exists.
        if !self.holds_anywhere(ctx, action::USERS_READ) {
            return Err(ServiceError::Forbidden {
                reason: format!("your role assignments do not grant {}", action::USERS_READ),
            });
        }
        let mut reader = self.reader().await?;
        let record = reader
            .get_by_key1(ctx.tenant, Kind::User, &user_principal_name.to_lowercase())
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                kind: "user",
                id: user_principal_name.to_string(),
            })?;
        let facts = target_facts(reader.as_mut(), ctx.tenant, Kind::User, record.id).await?;
        self.require(ctx, action::USERS_READ, &facts)?;
        Ok(self.user_view(ctx, user_from(&record)?))
    }

    pub async fn update_user(&self, ctx: &Context, patch: Patch) -> ServiceResult<User> {
        // A caller who may not read the user learns nothing (the read permission
        // comes first); each patched attribute's own permission is asked once the
        // patch is known to be valid.
        let (editing, after) = self
            .patch_resource::<UserSpec>(ctx, &patch, |_| action::USERS_READ)
            .await?;
        self.require_for_patch(ctx, &editing.facts, &patch.body, user_action)?;
        let Editing {
            mut tx,
            record,
            spec: before,
            ..
        } = editing;
        let updated = self
            .write_user_update(tx.as_mut(), ctx, &record, &before, after)
            .await?;
        match updated {
            Some(updated) => {
                tx.commit().await?;
                let user = user_from(&updated)?;
                if before.account_enabled && !user.spec.account_enabled {
                    // Its tokens ended with the change; its sessions end
                    // now (and their applications are told).
                    if let Err(error) = self.close_user_sessions(ctx.tenant, record.id, None).await
                    {
                        tracing::warn!(%error, "cannot end a disabled user's sessions");
                    }
                }
                Ok(self.user_view(ctx, user))
            }
            None => Ok(self.user_view(ctx, user_from(&record)?)),
        }
    }

    /// Replaces a user's spec with `after` inside the caller's transaction: the read
    /// permission, then each changed attribute's own, then the update as
    /// [`update_user`](Self::update_user) makes it. `None` when nothing changed.
    pub(crate) async fn update_user_in(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        record: &Record,
        after: UserSpec,
    ) -> ServiceResult<Option<Record>> {
        let facts = target_facts(tx, ctx.tenant, Kind::User, record.id).await?;
        self.require(ctx, action::USERS_READ, &facts)?;
        let before: UserSpec = codec::data(record)?;
        validate::user_spec(&after)?;
        let mut body = serde_json::Map::new();
        for change in patch::changes(&before.json(), &after.json()) {
            body.insert(change.attribute.clone(), change.new_value.clone());
        }
        self.require_for_patch(ctx, &facts, &Value::Object(body), user_action)?;
        self.write_user_update(tx, ctx, record, &before, after)
            .await
    }

    /// The common end of a user's update: last-administrator and reference checks,
    /// the new version, dynamic groups, and the audit event. `None` when `after`
    /// changes nothing.
    async fn write_user_update(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        record: &Record,
        before: &UserSpec,
        mut after: UserSpec,
    ) -> ServiceResult<Option<Record>> {
        let id = record.id;
        let changes = patch::changes(&before.json(), &after.json());
        if changes.is_empty() {
            return Ok(None);
        }
        if !after.account_enabled && before.account_enabled {
            self.refuse_losing_last_global_administrator(tx, ctx, id)
                .await?;
            // Disabled, by any way (the API, SCIM, HR provisioning): the
            // user's tokens and refresh token families end with the change,
            // on every node, and enabling the user again brings none back.
            self.revocations()
                .revoke_in(
                    tx,
                    ctx.tenant,
                    &[tessera_cae::Target::User(id)],
                    tessera_cae::Reason::AccountDisabled,
                )
                .await?;
        }
        self.check_user_references(tx, ctx, id, &mut after).await?;
        let updated = codec::next_version(record, self.now(), user_keys(&after), &after)?;
        update_unique_user(tx, ctx.tenant, &updated).await?;
        let rules = DynamicRules::load(tx, ctx.tenant).await?;
        let current: Vec<Uuid> = tx
            .links_to(ctx.tenant, Rel::Member, id)
            .await?
            .into_iter()
            .map(|l| l.source)
            .collect();
        let dynamic = self
            .apply_dynamic_groups(tx, ctx.tenant, id, &after, &rules, &current)
            .await?;
        let event = EventDraft::new(AuditAction::UserUpdate)
            .on(Kind::User, id, &after.user_principal_name)
            .changes(changes);
        let event = if dynamic.is_empty() {
            event
        } else {
            event.details(json!({ "dynamicGroupChanges": dynamic }))
        };
        self.audit(tx, ctx, event).await?;
        Ok(Some(updated))
    }

    pub async fn delete_user(&self, ctx: &Context, at: Versioned) -> ServiceResult<()> {
        let id = at.id;
        let mut editing = self
            .edit_resource::<UserSpec>(ctx, at, |_| action::USERS_DELETE)
            .await?;
        let details = self
            .clear_user_for_deletion(editing.tx.as_mut(), ctx, id)
            .await?;
        self.remove_resource(ctx, editing, details).await?;
        self.end_user_sessions(ctx.tenant, id, None, tessera_cae::Reason::AccountDeleted)
            .await?;
        Ok(())
    }

    /// Deletes a user inside the caller's transaction, as
    /// [`delete_user`](Self::delete_user) does; the caller ends the user's sessions
    /// with [`end_user_sessions`](Self::end_user_sessions) once it has committed.
    pub(crate) async fn delete_user_in(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        record: &Record,
    ) -> ServiceResult<()> {
        let facts = target_facts(tx, ctx.tenant, Kind::User, record.id).await?;
        self.require(ctx, action::USERS_DELETE, &facts)?;
        let spec: UserSpec = codec::data(record)?;
        let details = self.clear_user_for_deletion(tx, ctx, record.id).await?;
        tx.delete(ctx.tenant, Kind::User, record.id, Some(record.version))
            .await?;
        let event = EventDraft::new(AuditAction::UserDelete)
            .on(Kind::User, record.id, &spec.user_principal_name)
            .changes(patch::changes(&spec.json(), &Value::Null))
            .details(details);
        self.audit(tx, ctx, event).await
    }

    /// What goes before a user is deleted: the refusals (oneself, the last Global
    /// Administrator), then every reference to the user. Returns the details for
    /// the audit event.
    async fn clear_user_for_deletion(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<Value> {
        if ctx.caller.user_id() == Some(id) {
            return Err(ServiceError::Conflict {
                message: "you cannot delete your own account".to_string(),
            });
        }
        self.refuse_losing_last_global_administrator(tx, ctx, id)
            .await?;
        let cleanup = self.remove_principal_everywhere(tx, ctx, id).await?;
        // Direct reports lose their manager; devices lose their owner.
        // Their dynamic memberships follow (a rule may test user.manager).
        let mut reports = Vec::new();
        let rules = DynamicRules::load(tx, ctx.tenant).await?;
        for report in codec::list_all(tx, ctx.tenant, Kind::User, Some(id.to_string())).await? {
            let mut report_spec: UserSpec = codec::data(&report)?;
            report_spec.manager_id = None;
            let updated =
                codec::next_version(&report, self.now(), user_keys(&report_spec), &report_spec)?;
            tx.update(ctx.tenant, &updated).await?;
            let current: Vec<Uuid> = tx
                .links_to(ctx.tenant, Rel::Member, report.id)
                .await?
                .into_iter()
                .map(|l| l.source)
                .collect();
            let dynamic = self
                .apply_dynamic_groups(tx, ctx.tenant, report.id, &report_spec, &rules, &current)
                .await?;
            reports.push(json!({ "id": report.id, "dynamicGroupChanges": dynamic }));
        }
        let devices = super::devices::clear_owner(self, tx, ctx, id).await?;
        let tokens = codec::delete_owned(tx, ctx.tenant, Kind::AccessToken, id).await?;
        let methods = super::auth_methods::delete_methods_of(tx, ctx.tenant, id).await?;
        let provisioned = delete_provisioning_record(tx, ctx.tenant, id).await?;
        Ok(json!({
            "removedFrom": cleanup,
            "directReportsCleared": reports,
            "devicesUnowned": devices,
            "accessTokensDeleted": tokens,
            "authenticationMethodsDeleted": methods,
            "provisioningRecordDeleted": provisioned,
        }))
    }

    /// The groups the user is a direct member of, or all groups reached through
    /// nesting when `transitive`.
    pub async fn user_member_of(
        &self,
        ctx: &Context,
        id: Uuid,
        transitive: bool,
        request: &PageRequest,
    ) -> ServiceResult<Page<DirectoryObjectRef>> {
        let mut reader = self
            .reader_for(ctx, Kind::User, id, action::USERS_MEMBER_OF_READ)
            .await?;
        let group_ids =
            groups::containing_groups(reader.as_mut(), ctx.tenant, id, transitive, self.now())
                .await?;
        let mut items = Vec::new();
        for group_id in group_ids {
            if let Some(record) = reader.get(ctx.tenant, Kind::Group, group_id).await? {
                let spec: GroupSpec = codec::data(&record)?;
                items.push((
                    group_id,
                    DirectoryObjectRef {
                        id: group_id,
                        object_type: ObjectType::Group,
                        display_name: spec.display_name,
                    },
                ));
            }
        }
        codec::page_by_id(items, request)
    }

    /// Brings the user's membership of dynamic groups in line with their attributes,
    /// given the groups they belong to now. Returns the changes, for the audit event.
    pub(crate) async fn apply_dynamic_groups(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        user: Uuid,
        spec: &UserSpec,
        rules: &DynamicRules,
        current: &[Uuid],
    ) -> ServiceResult<Vec<Value>> {
        let mut changes = Vec::new();
        for (group, parsed) in &rules.rules {
            let should = rule::matches(parsed, user, spec);
            let is = current.contains(group);
            if should && !is {
                let link = Link {
                    rel: Rel::Member,
                    source: *group,
                    source_kind: Kind::Group,
                    target: user,
                    target_kind: Kind::User,
                };
                tx.link(tenant, &link, self.now()).await?;
                changes.push(json!({ "groupId": group, "change": "added" }));
            } else if !should && is {
                tx.unlink(tenant, Rel::Member, *group, user).await?;
                changes.push(json!({ "groupId": group, "change": "removed" }));
            }
        }
        Ok(changes)
    }
}

/// Most users one import call creates.
pub const MAX_IMPORT: usize = 1000;

/// The parsed rules of a tenant's dynamic groups whose processing is on, loaded once
/// per transaction.
pub(crate) struct DynamicRules {
    rules: Vec<(Uuid, rule::Rule)>,
}

impl DynamicRules {
    pub(crate) async fn load(
        reader: &mut dyn Reader,
        tenant: TenantId,
    ) -> ServiceResult<DynamicRules> {
        let mut rules = Vec::new();
        for group in codec::list_all(
            reader,
            tenant,
            Kind::Group,
            Some(groups::DYNAMIC_MARKER.to_string()),
        )
        .await?
        {
            let spec: GroupSpec = codec::data(&group)?;
            let Some(text) = &spec.membership_rule else {
                continue;
            };
            if spec.membership_rule_processing_state
                == tessera_directory::model::ProcessingState::Paused
            {
                continue;
            }
            let parsed = rule::parse(text).map_err(|e| {
                ServiceError::Internal(format!("stored rule of group {} is invalid: {e}", group.id))
            })?;
            rules.push((group.id, parsed));
        }
        Ok(DynamicRules { rules })
    }
}

/// Deletes what a provisioning client wrote for an object (its SCIM representation,
/// `Kind::ScimObject`, same id) with the object, so a deleted user's userName or
/// externalId is free again. Returns whether there was one.
pub(crate) async fn delete_provisioning_record(
    tx: &mut dyn WriteTx,
    tenant: TenantId,
    id: Uuid,
) -> ServiceResult<bool> {
    if tx.get(tenant, Kind::ScimObject, id).await?.is_none() {
        return Ok(false);
    }
    tx.delete(tenant, Kind::ScimObject, id, None).await?;
    Ok(true)
}

const UPN_TAKEN: &str = "another user already has this userPrincipalName";

async fn insert_unique_user(
    tx: &mut dyn WriteTx,
    tenant: TenantId,
    record: &Record,
) -> ServiceResult<()> {
    tx.insert(tenant, record).await.or_conflict(UPN_TAKEN)
}

async fn update_unique_user(
    tx: &mut dyn WriteTx,
    tenant: TenantId,
    record: &Record,
) -> ServiceResult<()> {
    tx.update(tenant, record).await.or_conflict(UPN_TAKEN)
}

/// Looks a principal (member or owner) up by id among the kinds `allowed`.
pub(crate) async fn find_object(
    reader: &mut dyn Reader,
    tenant: TenantId,
    id: Uuid,
    allowed: &[Kind],
) -> ServiceResult<Option<Record>> {
    for kind in allowed {
        if let Some(record) = reader.get(tenant, *kind, id).await? {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

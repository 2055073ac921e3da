//! The skeleton the directory's object kinds share when each object is one record
//! whose data is its spec (users, groups, devices, administrative units): reading
//! one, listing them, creating one, the two ends of an update, and a delete. What
//! differs between kinds (validation, the permissions a change needs, side effects
//! and clean-up) stays with each kind, between the ends.
//!
//! The invariants the ends keep for every kind: a caller who may not read an object
//! learns nothing else about it or the request (the read permission is checked
//! before If-Match or validation); every write carries its audit event, whose
//! changes are the spec's attributes before and after; an update that changes
//! nothing writes nothing.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::patch;
use tessera_store::{Kind, Link, Record, Rel, WriteTx};
use uuid::Uuid;

use super::groups::object_ref;
use crate::codec::Versioned;
use crate::codec::{self, Keys, Page, PageRequest, Patch};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, Directory, EventDraft, target_facts};

pub(crate) mod sealed {
    /// Only this crate implements [`Resource`](super::Resource): its permission and
    /// view are what guard reads through `Directory::get` and `Directory::list`.
    pub trait Sealed {}
}

/// A kind of directory object stored as its spec. Sealed: implemented here only.
pub trait Resource: sealed::Sealed + Serialize + DeserializeOwned {
    const KIND: Kind;
    /// What the API calls one, in messages ("group", "administrative unit").
    const NOUN: &'static str;
    /// The permission to read one object (in its scope) or to list them all.
    const READ: &'static str;
    const CREATED: AuditAction;
    const UPDATED: AuditAction;
    const DELETED: AuditAction;
    /// The attributes the server keeps, which a patch may not set.
    const READ_ONLY: &'static [&'static str];
    /// What the API shows of one.
    type View;

    /// Refuses a spec the directory would not store.
    fn validate(&self) -> Result<(), tessera_directory::ValidationErrors>;

    /// Refuses a patch that changes what is fixed once the object exists; asked
    /// before `after` is validated, so the client hears of the change it may not make.
    fn check_change(&self, after: &Self) -> ServiceResult<()>;

    fn display_name(&self) -> &str;
    /// The record's lookup and sort keys.
    fn keys(&self) -> Keys;
    /// The view of a stored object, as `ctx`'s caller may see it.
    fn view(directory: &Directory, ctx: &Context, record: &Record) -> ServiceResult<Self::View>;

    /// The spec as JSON, for an audit event's changes.
    fn json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Implements [`Resource`] for a spec: its kind, read permission and audit actions,
/// the field that names it, its keys (a function of the spec), and its view (a
/// function of the directory, the context and the record; by default the spec
/// with its id, times and version).
macro_rules! resource {
    ($spec:ty => $view:ident, $kind:ident, $noun:literal, $read:ident, [$created:ident, $updated:ident, $deleted:ident], name: $name:ident, keys: $keys:path, read_only: $read_only:path, validate: $validate:path $(, fixed: $fixed:path)? $(, view: $view_fn:path)? $(,)?) => {
        impl $crate::directory::resource::sealed::Sealed for $spec {}

        impl $crate::directory::resource::Resource for $spec {
            const KIND: tessera_store::Kind = tessera_store::Kind::$kind;
            const NOUN: &'static str = $noun;
            const READ: &'static str = tessera_directory::roles::action::$read;
            const CREATED: tessera_directory::audit_action::AuditAction =
                tessera_directory::audit_action::AuditAction::$created;
            const UPDATED: tessera_directory::audit_action::AuditAction =
                tessera_directory::audit_action::AuditAction::$updated;
            const DELETED: tessera_directory::audit_action::AuditAction =
                tessera_directory::audit_action::AuditAction::$deleted;
            const READ_ONLY: &'static [&'static str] = $read_only;
            type View = $view;

            fn validate(&self) -> Result<(), tessera_directory::ValidationErrors> {
                $validate(self)
            }

            fn check_change(&self, after: &Self) -> $crate::error::ServiceResult<()> {
                let _ = (self, after);
                $( $fixed(self, after)?; )?
                Ok(())
            }

            // Users are named by their principal name, not their display name.
            #[allow(clippy::misnamed_getters)]
            fn display_name(&self) -> &str {
                &self.$name
            }

            fn keys(&self) -> $crate::codec::Keys {
                $keys(self)
            }

            fn view(
                directory: &$crate::Directory,
                ctx: &$crate::Context,
                record: &tessera_store::Record,
            ) -> $crate::error::ServiceResult<$view> {
                resource!(@view directory, ctx, record, $view $(, $view_fn)?)
            }
        }
    };
    (@view $d:ident, $c:ident, $r:ident, $view:ident) => {{
        let _ = ($d, $c);
        Ok($view {
            id: $r.id,
            spec: $crate::codec::data($r)?,
            created_date_time: $r.created,
            modified_date_time: $r.modified,
            version: $r.version,
        })
    }};
    (@view $d:ident, $c:ident, $r:ident, $view:ident, $view_fn:path) => {
        $view_fn($d, $c, $r)
    };
}
pub(crate) use resource;

/// An update or delete under way: the open transaction, the record as read, the
/// facts authorization needs about it, and its spec.
pub(crate) struct Editing<R> {
    pub tx: Box<dyn WriteTx>,
    pub record: Record,
    pub facts: Target,
    pub spec: R,
}

impl Directory {
    /// `GET /<kind>/{id}`: one object, for a caller who may read it.
    pub async fn get<R: Resource>(&self, ctx: &Context, id: Uuid) -> ServiceResult<R::View> {
        let mut reader = self.reader().await?;
        let (record, _) = self
            .load_authorized(reader.as_mut(), ctx, R::KIND, id, R::READ)
            .await?;
        R::view(self, ctx, &record)
    }

    /// `GET /<kind>`: one page, for a caller who may read them tenant-wide.
    pub async fn list<R: Resource>(
        &self,
        ctx: &Context,
        request: &PageRequest,
    ) -> ServiceResult<Page<R::View>> {
        self.require(ctx, R::READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let (records, next_cursor) =
            codec::list_page(reader.as_mut(), ctx.tenant, R::KIND, request, None).await?;
        Page::of(&records, next_cursor, |record| R::view(self, ctx, record))
    }

    /// Inserts a new object, and drafts its audit event (every attribute as a
    /// change); the caller may add details, and commits.
    pub(crate) async fn insert_resource<R: Resource>(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        id: Uuid,
        spec: &R,
    ) -> ServiceResult<(Record, EventDraft)> {
        let record = codec::new_record(R::KIND, id, self.now(), spec.keys(), spec)?;
        tx.insert(ctx.tenant, &record).await?;
        let event = EventDraft::new(R::CREATED)
            .on(R::KIND, id, spec.display_name())
            .changes(patch::changes(&Value::Null, &spec.json()));
        Ok((record, event))
    }

    /// Creates a new object in the open transaction `tx` (references checked by the
    /// caller), with its audit event, and commits; returns its view.
    pub(crate) async fn create_resource<R: Resource>(
        &self,
        ctx: &Context,
        mut tx: Box<dyn WriteTx>,
        spec: &R,
    ) -> ServiceResult<R::View> {
        let (record, event) = self
            .insert_resource(tx.as_mut(), ctx, Uuid::new_v4(), spec)
            .await?;
        self.commit(tx, ctx, event).await?;
        R::view(self, ctx, &record)
    }

    /// Requires on `facts` the permission each attribute a patch names needs
    /// (`action_of` says which; each is asked once, in the patch's order).
    pub(crate) fn require_for_patch(
        &self,
        ctx: &Context,
        facts: &Target,
        body: &Value,
        action_of: impl Fn(&patch::Change) -> &'static str,
    ) -> ServiceResult<()> {
        let mut asked = Vec::new();
        for change in patch::named(body) {
            let needed = action_of(&change);
            if !asked.contains(&needed) {
                self.require(ctx, needed, facts)?;
                asked.push(needed);
            }
        }
        Ok(())
    }

    /// Opens an update or a delete: the record, with the permission `action` names
    /// for it checked against its facts before anything else is said, then If-Match.
    pub(crate) async fn edit_resource<R: Resource>(
        &self,
        ctx: &Context,
        at: Versioned,
        action: impl FnOnce(&R) -> &'static str,
    ) -> ServiceResult<Editing<R>> {
        let id = at.id;
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, R::KIND, id).await?;
        let spec: R = codec::data(&record)?;
        let facts = target_facts(tx.as_mut(), ctx.tenant, R::KIND, id).await?;
        self.require(ctx, action(&spec), &facts)?;
        at.check(&record)?;
        Ok(Editing {
            tx,
            record,
            facts,
            spec,
        })
    }

    /// Begins an update from a client's patch: [`edit_resource`](Self::edit_resource),
    /// then the merge patch applied to the stored spec and the result validated.
    /// Returns the edit under way and the spec the patch asks for.
    pub(crate) async fn patch_resource<R: Resource>(
        &self,
        ctx: &Context,
        patch: &Patch,
        action: impl FnOnce(&R) -> &'static str,
    ) -> ServiceResult<(Editing<R>, R)> {
        let editing = self.edit_resource::<R>(ctx, patch.at, action).await?;
        let after: R = patch::merge_patch(&editing.spec, &patch.body, R::READ_ONLY)?;
        editing.spec.check_change(&after)?;
        after.validate()?;
        Ok((editing, after))
    }

    /// Ends an update: writes `after` as the next version with its audit event and
    /// commits. When nothing changed, nothing is written.
    pub(crate) async fn save_resource<R: Resource>(
        &self,
        ctx: &Context,
        editing: Editing<R>,
        after: &R,
    ) -> ServiceResult<R::View> {
        let changes = patch::changes(&editing.spec.json(), &after.json());
        if changes.is_empty() {
            return R::view(self, ctx, &editing.record);
        }
        let Editing { mut tx, record, .. } = editing;
        let updated = codec::next_version(&record, self.now(), after.keys(), after)?;
        tx.update(ctx.tenant, &updated).await?;
        let event = EventDraft::new(R::UPDATED)
            .on(R::KIND, record.id, after.display_name())
            .changes(changes);
        self.commit(tx, ctx, event).await?;
        R::view(self, ctx, &updated)
    }

    /// Ends a delete: removes the record (at the version read) with its audit event
    /// (every attribute as removed, and `details`), and commits.
    pub(crate) async fn remove_resource<R: Resource>(
        &self,
        ctx: &Context,
        editing: Editing<R>,
        details: Value,
    ) -> ServiceResult<()> {
        let Editing {
            mut tx,
            record,
            spec,
            ..
        } = editing;
        tx.delete(ctx.tenant, R::KIND, record.id, Some(record.version))
            .await?;
        let event = EventDraft::new(R::DELETED)
            .on(R::KIND, record.id, spec.display_name())
            .changes(patch::changes(&spec.json(), &Value::Null))
            .details(details);
        self.commit(tx, ctx, event).await
    }

    /// Ends adding a member (a `rel` link from the object to `member`) with the audit
    /// event `action` naming it; a member already there is a conflict.
    pub(crate) async fn link_member<R: Resource>(
        &self,
        ctx: &Context,
        mut editing: Editing<R>,
        rel: Rel,
        member: &Record,
        action: AuditAction,
    ) -> ServiceResult<()> {
        let link = Link {
            rel,
            source: editing.record.id,
            source_kind: R::KIND,
            target: member.id,
            target_kind: member.kind,
        };
        if !editing.tx.link(ctx.tenant, &link, self.now()).await? {
            return Err(ServiceError::Conflict {
                message: format!("the object is already a member of the {}", R::NOUN),
            });
        }
        let event = editing
            .event(action)
            .details(json!({ "member": object_ref(member) }));
        self.commit(editing.tx, ctx, event).await
    }

    /// Ends removing a member (the `rel` link to `member`) with the audit event
    /// `action`; an object that is not a member is not found.
    pub(crate) async fn unlink_member<R: Resource>(
        &self,
        ctx: &Context,
        mut editing: Editing<R>,
        rel: Rel,
        member: Uuid,
        action: AuditAction,
    ) -> ServiceResult<()> {
        let id = editing.record.id;
        if !editing.tx.unlink(ctx.tenant, rel, id, member).await? {
            return Err(ServiceError::NotFound {
                kind: "member",
                id: member.to_string(),
            });
        }
        let event = editing.event(action).details(json!({ "memberId": member }));
        self.commit(editing.tx, ctx, event).await
    }
}

impl<R: Resource> Editing<R> {
    /// The audit event `action` about the object being changed.
    fn event(&self, action: AuditAction) -> EventDraft {
        EventDraft::new(action).on(R::KIND, self.record.id, self.spec.display_name())
    }
}

//! The directory context: users, groups, devices, administrative units, roles,
//! custom security attributes, applications and service principals, personal access
//! tokens, the audit trail, tenant policies and bootstrap (the use cases live in
//! `users.rs`, `groups.rs`, `devices.rs`, `units.rs`, `roles.rs`, `app_roles.rs`,
//! `attributes.rs`, `apps.rs`, `tokens.rs`, `audit.rs`, `consent.rs`, `bootstrap.rs`).
//!
//! It also owns the records the contexts above read: a user's stored authentication
//! methods (`auth_methods.rs`), the methods policy and strengths (`auth_policy.rs`),
//! the trust store for certificates and chain validation (`trust.rs`), and
//! Tessera's built-in command-line client (`builtin.rs`).
//!
//! May call: the kernel. Holds no cache.

pub(crate) mod app_roles;
pub(crate) mod apps;
pub(crate) mod attributes;
pub mod audit;
pub(crate) mod auth_methods;
pub(crate) mod auth_policy;
pub(crate) mod bootstrap;
pub(crate) mod builtin;
pub(crate) mod consent;
pub mod devices;
pub(crate) mod groups;
pub mod resource;
pub(crate) mod role_schedules;
pub(crate) mod roles;
pub(crate) mod tokens;
pub(crate) mod trust;
pub(crate) mod units;
pub(crate) mod users;

use std::sync::Arc;

use tessera_core::TenantId;
use tessera_directory::authz::Target;
use tessera_directory::roles::action;
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use crate::error::ServiceResult;
use crate::kernel::Kernel;
use crate::{Context, codec};

/// The directory context (see the module documentation).
pub struct Directory {
    k: Arc<Kernel>,
}

crate::kernel::on_kernel!(Directory);

/// What the SCIM API does: what whoever makes a provisioning token, names a
/// provisioning client, or adds a credential to one, must be allowed.
pub(crate) const PROVISIONING_ACTIONS: [&str; 11] = [
    action::USERS_CREATE,
    action::USERS_DELETE,
    action::USERS_BASIC_UPDATE,
    action::USERS_UPN_UPDATE,
    action::USERS_MANAGER_UPDATE,
    action::USERS_ENABLE,
    action::USERS_DISABLE,
    action::GROUPS_CREATE,
    action::GROUPS_DELETE,
    action::GROUPS_BASIC_UPDATE,
    action::GROUPS_MEMBERS_UPDATE,
];

impl Directory {
    pub(crate) fn new(k: Arc<Kernel>) -> Directory {
        Directory { k }
    }

    /// Opens a change that needs a tenant-wide grant of `action`: refused before
    /// anything is read when the caller has none, then the object is read in the write
    /// transaction and `action` is checked again against its facts (a role holder's
    /// account asks for more than a tenant-wide grant of a lesser role).
    pub(crate) async fn open_authorized(
        &self,
        ctx: &Context,
        kind: Kind,
        id: Uuid,
        action: &str,
    ) -> ServiceResult<(
        Box<dyn tessera_store::WriteTx>,
        tessera_store::Record,
        Target,
    )> {
        self.require(ctx, action, &Target::Tenant)?;
        let mut tx = self.write(ctx).await?;
        let (record, facts) = self
            .load_authorized(tx.as_mut(), ctx, kind, id, action)
            .await?;
        Ok((tx, record, facts))
    }

    /// A reader, once the caller is found to be allowed `action` on the object (a
    /// caller who is not learns nothing more about it).
    pub(crate) async fn reader_for(
        &self,
        ctx: &Context,
        kind: Kind,
        id: Uuid,
        action: &str,
    ) -> ServiceResult<Box<dyn Reader>> {
        let mut reader = self.reader().await?;
        self.load_authorized(reader.as_mut(), ctx, kind, id, action)
            .await?;
        Ok(reader)
    }

    /// Loads an object and refuses unless the caller may do `action` on it; returns the
    /// facts authorization used, for further checks on the same object.
    pub(crate) async fn load_authorized(
        &self,
        reader: &mut dyn Reader,
        ctx: &Context,
        kind: Kind,
        id: Uuid,
        action: &str,
    ) -> ServiceResult<(tessera_store::Record, Target)> {
        let record = codec::load(reader, ctx.tenant, kind, id).await?;
        let facts = target_facts(reader, ctx.tenant, kind, id).await?;
        self.require(ctx, action, &facts)?;
        Ok((record, facts))
    }
}

/// The facts authorization needs about one object: its administrative units and,
/// for a user, whether they hold a directory role.
pub(crate) async fn target_facts(
    reader: &mut dyn Reader,
    tenant: TenantId,
    kind: Kind,
    id: Uuid,
) -> ServiceResult<Target> {
    let mut administrative_units: Vec<Uuid> = reader
        .links_to(tenant, tessera_store::Rel::UnitMember, id)
        .await?
        .into_iter()
        .map(|l| l.source)
        .collect();
    if kind == Kind::AdministrativeUnit {
        administrative_units.push(id);
    }
    let privileged = match kind {
        Kind::User => roles::is_privileged(reader, tenant, id).await?,
        // A workload holding a role is as privileged as a person holding it; its
        // application's credentials and owners are the keys to it.
        Kind::ServicePrincipal => roles::holds_roles(reader, tenant, id).await?,
        Kind::Application => {
            match roles::service_principal_of_application(reader, tenant, id).await? {
                Some(service_principal) => {
                    roles::holds_roles(reader, tenant, service_principal).await?
                }
                None => false,
            }
        }
        _ => false,
    };
    Ok(Target::Object {
        administrative_units,
        privileged,
    })
}

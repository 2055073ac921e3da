//! Tenant-wide settings kept as one record each under a key (consent, credentials,
//! authentication contexts, security defaults, sign-in log retention): reading one
//! (its default until it is set) and replacing it, audited with its old and new
//! values.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_core::TenantId;
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::roles::action;
use tessera_store::{Kind, Reader, WriteTx};

use super::Kernel;
use crate::Context;
use crate::codec;
use crate::error::ServiceResult;

pub(crate) mod sealed {
    /// Only this crate says which settings there are.
    pub trait Sealed {}
}

/// A tenant-wide setting stored under its key. Sealed: implemented here only.
pub trait TenantSetting: sealed::Sealed + Serialize + DeserializeOwned + Default {
    const KEY: &'static str;
    const UPDATED: AuditAction;
}

/// The tenant's setting `P`, or its default when it was never set.
pub(crate) async fn read_setting<P: TenantSetting>(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<P> {
    Ok(read_versioned_setting(reader, tenant).await?.0)
}

/// The tenant's setting `P` with its version (0, with the default, when it was
/// never set).
async fn read_versioned_setting<P: TenantSetting>(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<(P, i64)> {
    match reader.get_by_key1(tenant, Kind::AuthPolicy, P::KEY).await? {
        Some(record) => Ok((codec::data(&record)?, record.version)),
        None => Ok((P::default(), 0)),
    }
}

impl Kernel {
    /// Reads a tenant setting, for a caller who may read the tenant's policies.
    pub async fn get_setting<P: TenantSetting>(&self, ctx: &Context) -> ServiceResult<P> {
        self.require(ctx, action::POLICIES_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        read_setting(reader.as_mut(), ctx.tenant).await
    }

    /// Reads a tenant setting with the version a change is checked against.
    pub async fn get_setting_versioned<P: TenantSetting>(
        &self,
        ctx: &Context,
    ) -> ServiceResult<(P, i64)> {
        self.require(ctx, action::POLICIES_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        read_versioned_setting(reader.as_mut(), ctx.tenant).await
    }

    /// Refuses a caller who may not manage the tenant's policies: checked before a
    /// change's body is read, so a refused caller learns nothing about it.
    pub(crate) fn may_change_settings(&self, ctx: &Context) -> ServiceResult<()> {
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)
    }

    /// Opens a change of a tenant setting (for a caller who may manage the tenant's
    /// policies): the transaction and the value before, refused when the setting
    /// is no longer at the version `if_match` names. A body that can be checked
    /// alone is checked before, so a bad one does not wait for the tenant's lock.
    pub(crate) async fn open_setting<P: TenantSetting>(
        &self,
        ctx: &Context,
        if_match: Option<i64>,
    ) -> ServiceResult<(Box<dyn WriteTx>, P)> {
        self.may_change_settings(ctx)?;
        let mut tx = self.write(ctx).await?;
        let (before, current) = read_versioned_setting(tx.as_mut(), ctx.tenant).await?;
        if let Some(sent) = if_match
            && sent != current
        {
            return Err(crate::ServiceError::VersionMismatch { sent, current });
        }
        Ok((tx, before))
    }

    /// Writes the new value of a setting opened with [`Kernel::open_setting`] with
    /// its audit event, and commits.
    pub(crate) async fn save_setting<P: TenantSetting>(
        &self,
        ctx: &Context,
        mut tx: Box<dyn WriteTx>,
        before: &P,
        after: &P,
    ) -> ServiceResult<()> {
        self.write_policy(tx.as_mut(), ctx, P::KEY, P::UPDATED, before, after)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The appIds the provisioning settings let provision with client credentials,
/// read from the stored setting (the provisioning context owns its type; the
/// directory asks this before it lets anyone add a credential to such an app).
pub(crate) async fn provisioning_clients(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<Vec<String>> {
    let Some(record) = reader
        .get_by_key1(tenant, Kind::AuthPolicy, "provisioning")
        .await?
    else {
        return Ok(Vec::new());
    };
    let value: serde_json::Value = codec::data(&record)?;
    Ok(value["clients"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default())
}

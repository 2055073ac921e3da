//! The read side of the tenant's authentication policies: the methods policy and
//! the authentication strengths (built-in and the tenant's own). Sign-in
//! administers and applies them; access and the directory's authentication
//! contexts refer to strengths.

use tessera_authn::policy::MethodsPolicy;
use tessera_authn::strength::{self, Strength};
use tessera_core::TenantId;
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use crate::codec;
use crate::error::ServiceResult;

/// The tenant's methods policy (the default until an administrator sets one).
pub(crate) const POLICY_KEY: &str = "authenticationMethodsPolicy";

pub(crate) async fn load_policy(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<(MethodsPolicy, Option<tessera_store::Record>)> {
    match reader
        .get_by_key1(tenant, Kind::AuthPolicy, POLICY_KEY)
        .await?
    {
        Some(record) => Ok((codec::data(&record)?, Some(record))),
        None => Ok((MethodsPolicy::default(), None)),
    }
}

/// A strength by id: built-in or the tenant's own.
pub(crate) async fn load_strength(
    reader: &mut dyn Reader,
    tenant: TenantId,
    id: Uuid,
) -> ServiceResult<Option<Strength>> {
    if let Some(built_in) = strength::built_in().into_iter().find(|s| s.id == id) {
        return Ok(Some(built_in));
    }
    match reader.get(tenant, Kind::AuthStrength, id).await? {
        Some(record) => Ok(Some(codec::data(&record)?)),
        None => Ok(None),
    }
}

pub(crate) async fn all_strengths(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<Vec<Strength>> {
    let mut strengths = strength::built_in();
    for record in codec::list_all(reader, tenant, Kind::AuthStrength, None).await? {
        strengths.push(codec::data(&record)?);
    }
    Ok(strengths)
}

//! Job leases (see [`tessera_store::LeaseStore`]): one row per job and scope, taken
//! with one conditional upsert, so two nodes asking at once cannot both get it.

use async_trait::async_trait;
use tessera_core::{TenantId, Timestamp};
use tessera_store::{LeaseStore, Result};

use crate::{SqlStore, backend_error};

/// The scope column: the tenant id, or `*` for the whole deployment.
fn scope(tenant: Option<TenantId>) -> String {
    tenant.map_or_else(|| "*".to_string(), |tenant| tenant.to_string())
}

#[async_trait]
impl LeaseStore for SqlStore {
    async fn lease_take(
        &self,
        name: &str,
        tenant: Option<TenantId>,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        let taken = sqlx::query(
            "INSERT INTO job_leases (name, scope, holder, expires) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name, scope) DO UPDATE SET holder = excluded.holder, expires = excluded.expires \
             WHERE job_leases.expires <= $5 OR job_leases.holder = excluded.holder",
        )
        .bind(name.to_string())
        .bind(scope(tenant))
        .bind(holder.to_string())
        .bind(until.unix_micros())
        .bind(now.unix_micros())
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(taken.rows_affected() == 1)
    }

    async fn leases_release(&self, holder: &str, now: Timestamp) -> Result<u64> {
        let released =
            sqlx::query("UPDATE job_leases SET expires = $2 WHERE holder = $1 AND expires > $2")
                .bind(holder.to_string())
                .bind(now.unix_micros())
                .execute(&self.pool)
                .await
                .map_err(backend_error)?;
        Ok(released.rows_affected())
    }

    async fn lease_set_end(
        &self,
        name: &str,
        tenant: Option<TenantId>,
        holder: &str,
        until: Timestamp,
    ) -> Result<bool> {
        let changed = sqlx::query(
            "UPDATE job_leases SET expires = $4 WHERE name = $1 AND scope = $2 AND holder = $3",
        )
        .bind(name.to_string())
        .bind(scope(tenant))
        .bind(holder.to_string())
        .bind(until.unix_micros())
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(changed.rows_affected() == 1)
    }
}

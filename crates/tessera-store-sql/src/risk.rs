//! Risk detections on both backends: appended in batches (one transaction each),
//! read newest first, purged by age in bounded steps; outside the audit chain's
//! lock, like the sign-in log.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tessera_core::{TenantId, Timestamp};
use tessera_store::{Result, RiskDetectionQuery, RiskDetectionRow, StoreError};
use uuid::Uuid;

use crate::sql::{AuditParam, Filters, MAX_PAGE};
use crate::{SqlStore, backend_error};

const COLUMNS: &str =
    "id, detected, user_id, principal_type, event_type, level, timing, sign_in_id, ip, body, seq";
/// Parameters per row (its columns and the tenant), but its number.
const FIELDS: usize = 11;
/// Rows per INSERT (fixed chunks keep the prepared statements few).
const ROWS_PER_INSERT: usize = 16;
/// Most rows one step of a purge deletes.
const PURGE_STEP: i64 = 10_000;

fn uuid_of(text: Option<String>) -> Result<Option<Uuid>> {
    text.map(|t| {
        Uuid::parse_str(&t)
            .map_err(|_| StoreError::Backend(format!("malformed id {t:?} in the database")))
    })
    .transpose()
}

fn row_of(row: &AnyRow) -> Result<RiskDetectionRow> {
    let id: String = row.try_get("id").map_err(backend_error)?;
    Ok(RiskDetectionRow {
        id: uuid_of(Some(id))?.unwrap_or_default(),
        detected: Timestamp::from_unix_micros(row.try_get("detected").map_err(backend_error)?),
        user_id: uuid_of(row.try_get("user_id").map_err(backend_error)?)?,
        principal_type: row.try_get("principal_type").map_err(backend_error)?,
        event_type: row.try_get("event_type").map_err(backend_error)?,
        level: row.try_get("level").map_err(backend_error)?,
        timing: row.try_get("timing").map_err(backend_error)?,
        sign_in_id: uuid_of(row.try_get("sign_in_id").map_err(backend_error)?)?,
        ip: row.try_get("ip").map_err(backend_error)?,
        body: row.try_get("body").map_err(backend_error)?,
    })
}

pub(crate) async fn append_batch(
    store: &SqlStore,
    entries: &[(TenantId, RiskDetectionRow)],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut tx = crate::numbering::begin(&store.write_pool, store.backend).await?;
    let now = entries
        .iter()
        .map(|(_, e)| e.detected)
        .max()
        .unwrap_or_else(|| Timestamp::from_unix_micros(0));
    let head = format!("INSERT INTO risk_detections (tenant, {COLUMNS}) VALUES ");
    for tenant in crate::numbering::tenants_of(entries) {
        let rows: Vec<&RiskDetectionRow> = entries
            .iter()
            .filter(|(t, _)| *t == tenant)
            .map(|(_, e)| e)
            .collect();
        let numbers = crate::numbering::Numbered::new(
            store.backend,
            tenant,
            tessera_store::NumberedLog::RiskDetections,
            now,
        );
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = numbers.statement(&head, chunk.len(), FIELDS, "");
            let mut query = numbers.bind_head(sqlx::query(AssertSqlSafe(sql)), chunk.len());
            for entry in chunk {
                query = query
                    .bind(tenant.to_string())
                    .bind(entry.id.to_string())
                    .bind(entry.detected.unix_micros())
                    .bind(entry.user_id.map(|u| u.to_string()))
                    .bind(entry.principal_type.clone())
                    .bind(entry.event_type.clone())
                    .bind(entry.level.clone())
                    .bind(entry.timing.clone())
                    .bind(entry.sign_in_id.map(|u| u.to_string()))
                    .bind(entry.ip.clone())
                    .bind(entry.body.clone());
            }
            query.execute(&mut *tx).await.map_err(backend_error)?;
        }
    }
    tx.commit().await.map_err(backend_error)
}

pub(crate) async fn query(
    store: &SqlStore,
    tenant: TenantId,
    query: &RiskDetectionQuery,
) -> Result<Vec<RiskDetectionRow>> {
    let mut filters = Filters::of_tenant(tenant);
    filters.equal("user_id", query.user_id.map(|u| u.to_string()));
    filters.equal("principal_type", query.principal_type.clone());
    filters.equal("event_type", query.event_type.clone());
    filters.equal("level", query.level.clone());
    if let Some(since) = query.since {
        filters.add(
            "detected >= ?",
            vec![AuditParam::Integer(since.unix_micros())],
        );
    }
    if let Some(until) = query.until {
        filters.add(
            "detected <= ?",
            vec![AuditParam::Integer(until.unix_micros())],
        );
    }
    if let Some((detected, id)) = query.before {
        filters.add(
            "(detected < ? OR (detected = ? AND id < ?))",
            vec![
                AuditParam::Integer(detected.unix_micros()),
                AuditParam::Integer(detected.unix_micros()),
                AuditParam::Text(id.to_string()),
            ],
        );
    }
    let limit = query.limit.clamp(1, MAX_PAGE);
    let sql = format!(
        "SELECT {COLUMNS} FROM risk_detections WHERE {} ORDER BY detected DESC, id DESC LIMIT {limit}",
        filters.sql()
    );
    let statement = filters.bind(sqlx::query(AssertSqlSafe(sql)));
    let rows = statement
        .fetch_all(&store.pool)
        .await
        .map_err(backend_error)?;
    rows.iter().map(row_of).collect()
}

pub(crate) async fn scan(
    store: &SqlStore,
    tenant: TenantId,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<(i64, RiskDetectionRow)>> {
    let limit = limit.clamp(1, MAX_PAGE);
    let sql = format!(
        "SELECT {COLUMNS} FROM risk_detections WHERE tenant = $1 AND seq > $2 \
         ORDER BY seq LIMIT {limit}"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(after_seq)
        .fetch_all(&store.pool)
        .await
        .map_err(backend_error)?;
    rows.iter()
        .map(|row| Ok((row.try_get("seq").map_err(backend_error)?, row_of(row)?)))
        .collect()
}

pub(crate) async fn purge(store: &SqlStore, tenant: TenantId, before: Timestamp) -> Result<u64> {
    let mut deleted = 0;
    loop {
        let mut tx = store.write_pool.begin().await.map_err(backend_error)?;
        crate::numbering::keep_head(
            &mut tx,
            store.backend,
            tenant,
            tessera_store::NumberedLog::RiskDetections,
        )
        .await?;
        let done = sqlx::query(
            "DELETE FROM risk_detections WHERE tenant = $1 AND (detected, id) IN \
             (SELECT detected, id FROM risk_detections WHERE tenant = $1 AND detected < $2 \
              ORDER BY detected, id LIMIT $3)",
        )
        .bind(tenant.to_string())
        .bind(before.unix_micros())
        .bind(PURGE_STEP)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        deleted += done.rows_affected();
        if done.rows_affected() < PURGE_STEP as u64 {
            return Ok(deleted);
        }
    }
}

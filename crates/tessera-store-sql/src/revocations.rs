//! Revocations (continuous access evaluation): numbered in the whole
//! deployment's order from the one row of `revocation_head`, which the writing
//! transaction holds locked until it ends (PostgreSQL; SQLite has one writer),
//! so every node reads them in an order that never passes one over.

use sqlx::{AssertSqlSafe, Row};
use tessera_core::Timestamp;
use tessera_store::{Result, RevocationRow};

use crate::sql::parse_tenant;
use crate::{Backend, SqlStore, backend_error};

/// Rows in one INSERT (7 parameters each).
const ROWS_PER_INSERT: usize = 64;

pub(crate) async fn append(store: &SqlStore, rows: &[RevocationRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = store.write_pool.begin().await.map_err(backend_error)?;
    append_in(&mut tx, store.backend, rows).await?;
    tx.commit().await.map_err(backend_error)
}

/// Appends revocations in the caller's transaction: they are numbered, and
/// seen, when it commits.
pub(crate) async fn append_in(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    rows: &[RevocationRow],
) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let count = chunk.len() as i64;
        // PostgreSQL takes the numbers in the INSERT; SQLite first.
        let (prefix, base, first) = match backend {
            Backend::Postgres => (
                "WITH n AS (UPDATE revocation_head SET value = value + $1 WHERE id = 1 \
                 RETURNING value) "
                    .to_string(),
                format!("(SELECT value FROM n) - {count}"),
                2,
            ),
            Backend::Sqlite => {
                let row = sqlx::query(
                    "UPDATE revocation_head SET value = value + $1 WHERE id = 1 RETURNING value",
                )
                .bind(count)
                .fetch_one(&mut *conn)
                .await
                .map_err(backend_error)?;
                let last: i64 = row.try_get(0).map_err(backend_error)?;
                (String::new(), (last - count).to_string(), 1)
            }
        };
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let from = first + i * 6;
                let params: Vec<String> = (from..from + 6).map(|n| format!("${n}")).collect();
                format!("({base} + {}, {})", i + 1, params.join(", "))
            })
            .collect();
        let sql = format!(
            "{prefix}INSERT INTO revocations (seq, tenant, kind, subject, since, expires, reason) \
             VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if backend == Backend::Postgres {
            query = query.bind(count);
        }
        for row in chunk {
            query = query
                .bind(row.tenant.to_string())
                .bind(row.kind.clone())
                .bind(row.subject.clone())
                .bind(row.since.unix_micros())
                .bind(row.expires.unix_micros())
                .bind(row.reason.clone());
        }
        query.execute(&mut *conn).await.map_err(backend_error)?;
    }
    Ok(())
}

pub(crate) async fn after(
    store: &SqlStore,
    after: i64,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<(i64, RevocationRow)>> {
    let rows = sqlx::query(
        "SELECT seq, tenant, kind, subject, since, expires, reason FROM revocations \
         WHERE seq > $1 AND expires > $2 ORDER BY seq LIMIT $3",
    )
    .bind(after)
    .bind(now.unix_micros())
    .bind(i64::from(limit.clamp(1, 10_000)))
    .fetch_all(&store.pool)
    .await
    .map_err(backend_error)?;
    rows.iter()
        .map(|row| {
            let tenant: String = row.try_get("tenant").map_err(backend_error)?;
            Ok((
                row.try_get("seq").map_err(backend_error)?,
                RevocationRow {
                    tenant: parse_tenant(&tenant)?,
                    kind: row.try_get("kind").map_err(backend_error)?,
                    subject: row.try_get("subject").map_err(backend_error)?,
                    since: Timestamp::from_unix_micros(
                        row.try_get("since").map_err(backend_error)?,
                    ),
                    expires: Timestamp::from_unix_micros(
                        row.try_get("expires").map_err(backend_error)?,
                    ),
                    reason: row.try_get("reason").map_err(backend_error)?,
                },
            ))
        })
        .collect()
}

pub(crate) async fn purge(store: &SqlStore, now: Timestamp) -> Result<u64> {
    let done = sqlx::query("DELETE FROM revocations WHERE expires <= $1")
        .bind(now.unix_micros())
        .execute(&store.write_pool)
        .await
        .map_err(backend_error)?;
    Ok(done.rows_affected())
}

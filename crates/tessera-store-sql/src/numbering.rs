//! Numbers for the SIEM export: each tenant's sign-in entries and risk
//! detections are numbered from the tenant's counter (`seq:signIns`,
//! `seq:riskDetections`) in the transaction that writes them. The counter's row
//! stays locked until that transaction ends (PostgreSQL), so writers of one
//! tenant commit in the order of their numbers and a reader that has seen n has
//! seen every number below it. Tenants are numbered in a fixed order, so two
//! batches never wait on each other's counters in a circle.
//!
//! - PostgreSQL takes the numbers in the INSERT itself (a data-modifying
//!   `WITH`): numbering costs the sign-in path no round trip.
//! - SQLite takes them first, in one more statement (it cannot change data in
//!   a `WITH`); its one writer makes that an in-process step.

use sqlx::Row;
use tessera_core::{TenantId, Timestamp};
use tessera_store::Result;

use crate::{Backend, backend_error};

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// PostgreSQL's counter step, `$1` to `$4`: tenant, key, count, time.
const IN_STATEMENT: &str = "WITH n AS (INSERT INTO counters (tenant, key, value, updated) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, key) DO UPDATE SET \
     value = counters.value + excluded.value, updated = excluded.updated RETURNING value) ";

/// Begins a transaction of numbered INSERTs. On PostgreSQL its statements
/// use the plan cached for them instead of planning each execution (the
/// pools plan every execution, see `SqlStore::open`): an INSERT of VALUES has
/// no plan to choose, and planning the counter step and each row's number
/// every time cost the sign-in log's writer a third of its time. Said in the
/// same round trip as the BEGIN.
pub(crate) async fn begin(
    pool: &sqlx::AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
    match backend {
        Backend::Postgres => pool
            .begin_with("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan")
            .await
            .map_err(backend_error),
        Backend::Sqlite => pool.begin().await.map_err(backend_error),
    }
}

/// The tenants of a batch, in the order they are numbered.
pub(crate) fn tenants_of<T>(entries: &[(TenantId, T)]) -> Vec<TenantId> {
    let mut tenants: Vec<TenantId> = entries.iter().map(|(t, _)| *t).collect();
    tenants.sort_by_key(|t| t.to_string());
    tenants.dedup();
    tenants
}

/// How one statement's rows get their numbers.
pub(crate) struct Numbered {
    backend: Backend,
    tenant: TenantId,
    key: &'static str,
    now: Timestamp,
    /// SQLite: the next number to bind.
    next: i64,
}

impl Numbered {
    /// Numbering for `count` rows of `tenant`, written in one or more
    /// statements of this transaction (SQLite takes all the numbers now).
    pub(crate) async fn begin(
        conn: &mut sqlx::AnyConnection,
        backend: Backend,
        tenant: TenantId,
        key: &'static str,
        count: usize,
        now: Timestamp,
    ) -> Result<Numbered> {
        let next = match backend {
            Backend::Postgres => 0,
            Backend::Sqlite => {
                let row = sqlx::query(
                    "INSERT INTO counters (tenant, key, value, updated) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant, key) DO UPDATE SET value = counters.value + excluded.value, \
                     updated = excluded.updated RETURNING value",
                )
                .bind(tenant.to_string())
                .bind(key.to_string())
                .bind(count as i64)
                .bind(now.unix_micros())
                .fetch_one(&mut *conn)
                .await
                .map_err(backend_error)?;
                let last: i64 = row.try_get(0).map_err(backend_error)?;
                last - count as i64 + 1
            }
        };
        Ok(Numbered {
            backend,
            tenant,
            key,
            now,
            next,
        })
    }

    /// The text of an INSERT of `rows` rows: `head` (`INSERT INTO t (tenant,
    /// ..., seq) VALUES `), each row's `fields` parameters and its number, then
    /// `tail`.
    pub(crate) fn statement(&self, head: &str, rows: usize, fields: usize, tail: &str) -> String {
        let (prefix, first) = match self.backend {
            Backend::Postgres => (IN_STATEMENT, 5),
            Backend::Sqlite => ("", 1),
        };
        let per_row = fields + usize::from(self.backend == Backend::Sqlite);
        let values: Vec<String> = (0..rows)
            .map(|i| {
                let base = first + i * per_row;
                let mut params: Vec<String> =
                    (base..base + fields).map(|n| format!("${n}")).collect();
                params.push(match self.backend {
                    Backend::Postgres => format!("(SELECT value FROM n) - {rows} + {}", i + 1),
                    Backend::Sqlite => format!("${}", base + fields),
                });
                format!("({})", params.join(", "))
            })
            .collect();
        format!("{prefix}{head}{}{tail}", values.join(", "))
    }

    /// Binds what comes before the rows (PostgreSQL's counter step for
    /// `rows` numbers).
    pub(crate) fn bind_head<'q>(&self, query: Query<'q>, rows: usize) -> Query<'q> {
        match self.backend {
            Backend::Postgres => query
                .bind(self.tenant.to_string())
                .bind(self.key.to_string())
                .bind(rows as i64)
                .bind(self.now.unix_micros()),
            Backend::Sqlite => query,
        }
    }

    /// Binds what follows a row's fields (SQLite: its number).
    pub(crate) fn bind_number<'q>(&mut self, query: Query<'q>) -> Query<'q> {
        match self.backend {
            Backend::Postgres => query,
            Backend::Sqlite => {
                let seq = self.next;
                self.next += 1;
                query.bind(seq)
            }
        }
    }
}

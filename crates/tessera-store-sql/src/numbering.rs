//! Numbers for the SIEM export: each tenant's sign-in entries and risk
//! detections are numbered (`NumberedLog`) in the transaction that writes
//! them, and writers of one tenant commit in the order of their numbers, so a
//! reader that has seen n has seen every number below it.
//!
//! - PostgreSQL takes the numbers from the tenant's counter in the INSERT
//!   itself (a data-modifying `WITH`): numbering costs the sign-in path no
//!   round trip. The counter's row stays locked until the transaction ends, so
//!   writers of one tenant commit in the order of their numbers. Tenants are
//!   numbered in a fixed order, so two batches never wait on each other's
//!   counters in a circle.
//! - SQLite has one writer, so the next number is simply one past the
//!   highest in the log, read in the INSERT from the number index's last
//!   entry (a page the INSERT writes anyway). The counter is only a floor,
//!   set before a purge deletes anything: numbers never go back. Keeping the
//!   counter at every write cost a commit a third more pages, and at one
//!   sign-in at a time the commit is the sign-in's cost.

use sqlx::Row;
use tessera_core::{TenantId, Timestamp};
use tessera_store::{NumberedLog, Result};

use crate::{Backend, backend_error};

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// PostgreSQL's counter step, `$1` to `$4`: tenant, key, count, time.
const IN_STATEMENT: &str = "WITH n AS (INSERT INTO counters (tenant, key, value, updated) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, key) DO UPDATE SET \
     value = counters.value + excluded.value, updated = excluded.updated RETURNING value) ";

/// The table a log's rows are in.
fn table(log: NumberedLog) -> &'static str {
    match log {
        NumberedLog::SignIns => "sign_ins",
        NumberedLog::RiskDetections => "risk_detections",
    }
}

/// SQLite: an expression of the head of the log of tenant `$1`, the higher
/// of its highest number and its counter (the floor a purge leaves).
fn sqlite_head(log: NumberedLog) -> String {
    format!(
        "MAX(COALESCE((SELECT MAX(seq) FROM {} WHERE tenant = $1 AND seq IS NOT NULL), 0), \
         COALESCE((SELECT value FROM counters WHERE tenant = $1 AND key = '{}'), 0))",
        table(log),
        log.counter()
    )
}

/// The head of a tenant's log (`SessionStore::numbered_head`).
pub(crate) async fn head(
    pool: &sqlx::AnyPool,
    backend: Backend,
    tenant: TenantId,
    log: NumberedLog,
) -> Result<i64> {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT COALESCE((SELECT value FROM counters WHERE tenant = $1 AND key = $2), 0)"
                .to_string()
        }
        Backend::Sqlite => format!("SELECT {}", sqlite_head(log)),
    };
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant.to_string());
    if backend == Backend::Postgres {
        query = query.bind(log.counter().to_string());
    }
    let row = query.fetch_one(pool).await.map_err(backend_error)?;
    row.try_get(0).map_err(backend_error)
}

/// Before a purge of a tenant's log deletes anything, in its transaction:
/// keeps the head where it is even if the rows holding it go (SQLite; the
/// counter of PostgreSQL is the head already).
pub(crate) async fn keep_head(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    tenant: TenantId,
    log: NumberedLog,
) -> Result<()> {
    if backend != Backend::Sqlite {
        return Ok(());
    }
    let now = tessera_core::Clock::now(&tessera_core::SystemClock);
    let sql = format!(
        "INSERT INTO counters (tenant, key, value, updated) \
         SELECT $1, '{}', head, $2 FROM (SELECT {} AS head) WHERE head > 0 \
         ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, \
         updated = excluded.updated WHERE counters.value < excluded.value",
        log.counter(),
        sqlite_head(log)
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(now.unix_micros())
        .execute(conn)
        .await
        .map_err(backend_error)?;
    Ok(())
}

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
    log: NumberedLog,
    now: Timestamp,
}

impl Numbered {
    /// Numbering for rows of `tenant`'s `log`, written in one or more
    /// statements of a transaction from `begin`, each statement's rows
    /// numbered after those of the statements before.
    pub(crate) fn new(
        backend: Backend,
        tenant: TenantId,
        log: NumberedLog,
        now: Timestamp,
    ) -> Self {
        Numbered {
            backend,
            tenant,
            log,
            now,
        }
    }

    /// The text of an INSERT of `rows` rows: `head` (`INSERT INTO t (tenant,
    /// ..., seq) VALUES `), each row's `fields` parameters and its number, then
    /// `tail`.
    pub(crate) fn statement(&self, head: &str, rows: usize, fields: usize, tail: &str) -> String {
        // Each row's number is `base` and its place in the statement.
        let (prefix, first, base) = match self.backend {
            Backend::Postgres => (IN_STATEMENT, 5, format!("(SELECT value FROM n) - {rows}")),
            // Rows of VALUES that read the table are all made before the
            // first is inserted, so every row reads the same head.
            Backend::Sqlite => ("", 2, format!("({})", sqlite_head(self.log))),
        };
        let values: Vec<String> = (0..rows)
            .map(|i| {
                let from = first + i * fields;
                let mut params: Vec<String> =
                    (from..from + fields).map(|n| format!("${n}")).collect();
                params.push(format!("{base} + {}", i + 1));
                format!("({})", params.join(", "))
            })
            .collect();
        format!("{prefix}{head}{}{tail}", values.join(", "))
    }

    /// Binds what comes before the rows: PostgreSQL's counter step for
    /// `rows` numbers (`$1` to `$4`), SQLite's tenant (`$1`).
    pub(crate) fn bind_head<'q>(&self, query: Query<'q>, rows: usize) -> Query<'q> {
        match self.backend {
            Backend::Postgres => query
                .bind(self.tenant.to_string())
                .bind(self.log.counter().to_string())
                .bind(rows as i64)
                .bind(self.now.unix_micros()),
            Backend::Sqlite => query.bind(self.tenant.to_string()),
        }
    }
}

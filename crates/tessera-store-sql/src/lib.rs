//! The SQL store: one implementation of [`tessera_store::Store`] for SQLite (the
//! embedded default) and PostgreSQL, through sqlx's runtime-selected `Any` driver.
//!
//! Design decisions:
//! - One SQL text serves both databases: numbered `$N` placeholders (SQLite accepts
//!   them), integers for times and flags, text for ids and documents. Only the schema
//!   (in `migrations/<backend>/`) and the way a write transaction takes its lock differ.
//! - Writes within a tenant are serialized by the tenant's audit chain head. On
//!   PostgreSQL a write transaction begins with `SELECT ... FOR UPDATE` on the head
//!   row, so several `tessera serve` processes on one database take turns. On SQLite a
//!   single writer connection starts every transaction with `BEGIN IMMEDIATE`.
//!   On PostgreSQL the writers of one process that queue for a tenant share one
//!   transaction, each in its own savepoint, committed together (`group`).
//! - Ordering is bytewise on both (PostgreSQL columns use the "C" collation), so a
//!   cursor means the same thing on either backend.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod group;
mod leases;
mod migrate;
mod numbering;
mod revocations;

mod risk;
mod search;
mod sessions;
mod sql;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Row, Transaction};
use tessera_core::crypto::{GENESIS_HASH, audit_link_hash};
use tessera_core::{TenantId, Timestamp};
use tessera_store::{
    AuditAppend, AuditHead, AuditQuery, AuditRow, Kind, Link, ListQuery, Reader, Record, Rel,
    Result, Store, StoreError, Tenant, WriteTx,
};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// `sqlite:///path/to/tessera.db?mode=rwc` or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// PostgreSQL: commit a tenant's queued writes together (see `group`).
    pub group_commit: bool,
}

impl Options {
    pub fn new(url: impl Into<String>) -> Options {
        Options {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            group_commit: true,
        }
    }

    /// The URL of a SQLite database file, created if missing.
    pub fn sqlite_file(path: &std::path::Path) -> Options {
        Options::new(format!("sqlite://{}?mode=rwc", path.display()))
    }
}

pub struct SqlStore {
    pub(crate) backend: Backend,
    /// Reads (and, on PostgreSQL, writes).
    pool: AnyPool,
    /// Writes: on SQLite a pool of one connection, so writers queue in-process instead
    /// of failing with "database is locked".
    write_pool: AnyPool,
    /// PostgreSQL with group commit: the tenants' batches.
    batches: Option<group::Slots>,
    /// Whatever must live as long as the store (a test's temporary directory or database).
    _guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

pub(crate) fn backend_error(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        // character_not_in_repertoire (a NUL in a text) and untranslatable_character.
        if matches!(db.code().as_deref(), Some("22021" | "22P05")) {
            return StoreError::UnstorableText;
        }
    }
    StoreError::Backend(error.to_string())
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

impl SqlStore {
    /// Connects and applies pending migrations.
    pub async fn open(options: &Options) -> Result<SqlStore> {
        SqlStore::open_with_guard(options, None).await
    }

    /// Like [`SqlStore::open`], keeping `guard` alive until the store is dropped.
    pub async fn open_with_guard(
        options: &Options,
        guard: Option<Box<dyn std::any::Any + Send + Sync>>,
    ) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(&options.url).ok_or_else(|| {
            StoreError::Backend(
                "the database URL must start with sqlite: or postgres://".to_string(),
            )
        })?;
        let connect_options: AnyConnectOptions = options.url.parse().map_err(backend_error)?;
        let pool_options = |max: u32| {
            let mut pool_options = AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(options.acquire_timeout);
            if backend == Backend::Postgres {
                // Plan every execution with the table's current size. A generic plan
                // cached while a table was small (and kept because the server's
                // statistics are not refreshed, e.g. autovacuum off) can scan every
                // user for a primary-key lookup; planning these short statements costs
                // far less than that risk.
                pool_options = pool_options.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        sqlx::query("SET plan_cache_mode = force_custom_plan")
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                });
            }
            if backend == Backend::Sqlite {
                pool_options = pool_options.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 10000",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                });
            }
            pool_options
        };
        let (pool, write_pool) = match backend {
            Backend::Sqlite => {
                let write_pool = pool_options(1)
                    .connect_with(connect_options.clone())
                    .await
                    .map_err(backend_error)?;
                let pool = pool_options(options.max_connections.max(1))
                    .connect_with(connect_options)
                    .await
                    .map_err(backend_error)?;
                (pool, write_pool)
            }
            Backend::Postgres => {
                let pool = pool_options(options.max_connections.max(2))
                    .connect_with(connect_options)
                    .await
                    .map_err(backend_error)?;
                (pool.clone(), pool)
            }
        };
        let batches =
            (backend == Backend::Postgres && options.group_commit).then(group::Slots::default);
        let store = SqlStore {
            backend,
            pool,
            write_pool,
            batches,
            _guard: guard,
        };
        migrate::run(&store.write_pool, backend).await?;
        tessera_store::Store::optimize(&store).await?;
        Ok(store)
    }

    /// Copies a SQLite database to `path` as a consistent snapshot (`VACUUM INTO`),
    /// while the database stays in use.
    pub async fn sqlite_backup(&self, path: &std::path::Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Backend(
                "backup is for SQLite; use pg_dump for PostgreSQL".to_string(),
            ));
        }
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Backend("the backup path is not UTF-8".to_string()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.write_pool.close().await;
    }
}

/// Implements [`Reader`] for a type by running the shared queries on the connection
/// in `$field` (a pooled connection, or a transaction).
macro_rules! reader_over {
    ($type:ty, $field:ident) => {
        #[async_trait]
        impl Reader for $type {
            async fn get(
                &mut self,
                tenant: TenantId,
                kind: Kind,
                id: Uuid,
            ) -> Result<Option<Record>> {
                sql::get(&mut self.$field, tenant, kind, id).await
            }
            async fn get_by_key1(
                &mut self,
                tenant: TenantId,
                kind: Kind,
                key1: &str,
            ) -> Result<Option<Record>> {
                sql::get_by_key1(&mut self.$field, tenant, kind, key1).await
            }
            async fn list(
                &mut self,
                tenant: TenantId,
                kind: Kind,
                query: &ListQuery,
            ) -> Result<Vec<Record>> {
                self.list_records(tenant, kind, query).await
            }
            async fn links_from(
                &mut self,
                tenant: TenantId,
                rel: Rel,
                source: Uuid,
                after: Option<Uuid>,
                limit: u32,
            ) -> Result<Vec<Link>> {
                sql::links_from(&mut self.$field, tenant, rel, source, after, limit).await
            }
            async fn links_to(
                &mut self,
                tenant: TenantId,
                rel: Rel,
                target: Uuid,
            ) -> Result<Vec<Link>> {
                sql::links_to(&mut self.$field, tenant, rel, target).await
            }
            async fn search(
                &mut self,
                tenant: TenantId,
                kind: Kind,
                query: &tessera_store::Search,
            ) -> Result<Vec<tessera_store::Found>> {
                search::search(&mut self.$field, self.backend, tenant, kind, query).await
            }
            async fn count(
                &mut self,
                tenant: TenantId,
                kind: Kind,
                predicate: &tessera_store::Predicate,
                companion: Option<Kind>,
            ) -> Result<u64> {
                search::count(
                    &mut self.$field,
                    self.backend,
                    tenant,
                    kind,
                    predicate,
                    companion,
                )
                .await
            }
        }
    };
}

struct PoolReader {
    conn: PoolConnection<Any>,
    backend: Backend,
}

reader_over!(PoolReader, conn);

impl PoolReader {
    async fn list_records(
        &mut self,
        tenant: TenantId,
        kind: Kind,
        query: &ListQuery,
    ) -> Result<Vec<Record>> {
        sql::list(&mut self.conn, tenant, kind, query).await
    }
}

/// A read-only transaction: one snapshot for all its reads (SQLite's deferred
/// transaction in WAL mode, PostgreSQL's repeatable read). Dropping it ends it.
struct SnapshotReader {
    tx: Transaction<'static, Any>,
    backend: Backend,
}

reader_over!(SnapshotReader, tx);

impl SnapshotReader {
    async fn list_records(
        &mut self,
        tenant: TenantId,
        kind: Kind,
        query: &ListQuery,
    ) -> Result<Vec<Record>> {
        sql::list(&mut self.tx, tenant, kind, query).await
    }
}

struct SqlWriteTx {
    tx: group::TxSlot,
    /// A member of its tenant's batch (PostgreSQL with group commit).
    member: Option<group::Member>,
    backend: Backend,
    tenant: TenantId,
    head_seq: i64,
    head_hash: String,
    changed: bool,
    appended: bool,
    /// A member's audit events, written with its batch (one statement for all).
    pending_audit: Vec<PendingAudit>,
    /// Counters this transaction advanced already (once is enough).
    bumped: Vec<String>,
}

/// An audit event appended and not yet written.
pub(crate) struct PendingAudit {
    tenant: String,
    seq: i64,
    id: String,
    time: i64,
    actor_id: Option<String>,
    action: String,
    target_id: Option<String>,
    correlation_id: String,
    body: String,
    prev_hash: String,
    hash: String,
}

/// Writes audit events, many to a statement.
pub(crate) async fn insert_audit(
    conn: &mut sqlx::AnyConnection,
    rows: Vec<PendingAudit>,
) -> Result<()> {
    const COLUMNS: usize = 11;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<PendingAudit> = rows.by_ref().take(64).collect();
        let mut text = String::from(
            "INSERT INTO audit_events (tenant, seq, id, time, actor_id, action, target_id, correlation_id, body, prev_hash, hash) VALUES ",
        );
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            let first = i * COLUMNS + 1;
            let params: Vec<String> = (first..first + COLUMNS).map(|n| format!("${n}")).collect();
            text.push('(');
            text.push_str(&params.join(", "));
            text.push(')');
        }
        // Only placeholders are put together here; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
        for row in chunk {
            query = query
                .bind(row.tenant)
                .bind(row.seq)
                .bind(row.id)
                .bind(row.time)
                .bind(row.actor_id)
                .bind(row.action)
                .bind(row.target_id)
                .bind(row.correlation_id)
                .bind(row.body)
                .bind(row.prev_hash)
                .bind(row.hash);
        }
        query.execute(&mut *conn).await.map_err(backend_error)?;
    }
    Ok(())
}

impl SqlWriteTx {
    fn check_tenant(&self, tenant: TenantId) -> Result<()> {
        if tenant != self.tenant {
            return Err(StoreError::Backend(
                "a write transaction is bound to one tenant".to_string(),
            ));
        }
        Ok(())
    }
}

reader_over!(SqlWriteTx, tx);

impl SqlWriteTx {
    /// A list, from the batch's memo when a member of it read the same one and
    /// no member wrote its kind since.
    async fn list_records(
        &mut self,
        tenant: TenantId,
        kind: Kind,
        query: &ListQuery,
    ) -> Result<Vec<Record>> {
        // Only the batch's own tenant: its head lock keeps others from writing
        // its records, and no one else's.
        let Some(member) = self.member.as_mut().filter(|_| tenant == self.tenant) else {
            return sql::list(&mut self.tx, tenant, kind, query).await;
        };
        let key = format!(
            "{}|{tenant}|{:?}|{}|{:?}|{:?}",
            kind.as_str(),
            query.after.as_ref().map(|c| (&c.sort_key, c.id)),
            query.limit,
            query.prefix,
            query.key2
        );
        if let Some(records) = member.memo_get(&key) {
            return Ok(records);
        }
        let records = sql::list(&mut self.tx, tenant, kind, query).await?;
        member.memo_put(key, &records);
        Ok(records)
    }

    /// A record of `kind` written: the batch reads lists of it again.
    fn written(&mut self, kind: Kind) {
        self.changed = true;
        if let Some(member) = self.member.as_mut() {
            member.memo_forget(kind);
        }
    }
}

#[async_trait]
impl WriteTx for SqlWriteTx {
    async fn insert(&mut self, tenant: TenantId, record: &Record) -> Result<()> {
        self.check_tenant(tenant)?;
        if record.version != 1 {
            return Err(StoreError::Backend(
                "a new record starts at version 1".to_string(),
            ));
        }
        let result = sqlx::query(
            "INSERT INTO objects (tenant, kind, id, version, created, modified, key1, key2, sort_key, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(tenant.to_string())
        .bind(record.kind.as_str())
        .bind(record.id.to_string())
        .bind(record.version)
        .bind(record.created.unix_micros())
        .bind(record.modified.unix_micros())
        .bind(record.key1.clone())
        .bind(record.key2.clone())
        .bind(record.sort_key.clone())
        .bind(record.data.clone())
        .execute(&mut *self.tx)
        .await;
        match result {
            Ok(_) => {
                self.written(record.kind);
                Ok(())
            }
            Err(error) if is_unique_violation(&error) => Err(StoreError::Duplicate {
                kind: record.kind.as_str(),
            }),
            Err(error) => Err(backend_error(error)),
        }
    }

    async fn update(&mut self, tenant: TenantId, record: &Record) -> Result<()> {
        self.check_tenant(tenant)?;
        let expected = record.version - 1;
        let result = sqlx::query(
            "UPDATE objects SET version = $4, modified = $5, key1 = $6, key2 = $7, sort_key = $8, data = $9 \
             WHERE tenant = $1 AND kind = $2 AND id = $3 AND version = $10",
        )
        .bind(tenant.to_string())
        .bind(record.kind.as_str())
        .bind(record.id.to_string())
        .bind(record.version)
        .bind(record.modified.unix_micros())
        .bind(record.key1.clone())
        .bind(record.key2.clone())
        .bind(record.sort_key.clone())
        .bind(record.data.clone())
        .bind(expected)
        .execute(&mut *self.tx)
        .await;
        let affected = match result {
            Ok(done) => done.rows_affected(),
            Err(error) if is_unique_violation(&error) => {
                return Err(StoreError::Duplicate {
                    kind: record.kind.as_str(),
                });
            }
            Err(error) => return Err(backend_error(error)),
        };
        if affected == 0 {
            return Err(self
                .missing_or_conflict(record.kind, record.id, expected)
                .await);
        }
        self.written(record.kind);
        Ok(())
    }

    async fn delete(
        &mut self,
        tenant: TenantId,
        kind: Kind,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<()> {
        self.check_tenant(tenant)?;
        sqlx::query("DELETE FROM links WHERE tenant = $1 AND (source = $2 OR target = $2)")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *self.tx)
            .await
            .map_err(backend_error)?;
        let result = sqlx::query(
            "DELETE FROM objects WHERE tenant = $1 AND kind = $2 AND id = $3 AND ($4 < 0 OR version = $4)",
        )
        .bind(tenant.to_string())
        .bind(kind.as_str())
        .bind(id.to_string())
        .bind(expected_version.unwrap_or(-1))
        .execute(&mut *self.tx)
        .await
        .map_err(backend_error)?;
        if result.rows_affected() == 0 {
            return Err(self
                .missing_or_conflict(kind, id, expected_version.unwrap_or(-1))
                .await);
        }
        self.written(kind);
        Ok(())
    }

    async fn revocations_append(&mut self, rows: &[tessera_store::RevocationRow]) -> Result<()> {
        for row in rows {
            self.check_tenant(row.tenant)?;
        }
        crate::revocations::append_in(&mut self.tx, self.backend, rows).await
    }

    async fn counter_bump(&mut self, tenant: TenantId, key: &str, now: Timestamp) -> Result<()> {
        self.check_tenant(tenant)?;
        if self.bumped.iter().any(|k| k == key) {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO counters (tenant, key, value, updated) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (tenant, key) DO UPDATE SET value = counters.value + 1, updated = excluded.updated",
        )
        .bind(tenant.to_string())
        .bind(key.to_string())
        .bind(now.unix_micros())
                .execute(&mut *self.tx)
        .await
        .map_err(backend_error)?;
        self.bumped.push(key.to_string());
        Ok(())
    }

    async fn link(&mut self, tenant: TenantId, link: &Link, created: Timestamp) -> Result<bool> {
        self.check_tenant(tenant)?;
        let result = sqlx::query(
            "INSERT INTO links (tenant, rel, source, source_kind, target, target_kind, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.to_string())
        .bind(link.rel.as_str())
        .bind(link.source.to_string())
        .bind(link.source_kind.as_str())
        .bind(link.target.to_string())
        .bind(link.target_kind.as_str())
        .bind(created.unix_micros())
        .execute(&mut *self.tx)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                kind: "object",
                id: format!("{} or {}", link.source, link.target),
            },
            _ => backend_error(error),
        })?;
        let added = result.rows_affected() > 0;
        self.changed |= added;
        Ok(added)
    }

    async fn unlink(
        &mut self,
        tenant: TenantId,
        rel: Rel,
        source: Uuid,
        target: Uuid,
    ) -> Result<bool> {
        self.check_tenant(tenant)?;
        let result = sqlx::query(
            "DELETE FROM links WHERE tenant = $1 AND rel = $2 AND source = $3 AND target = $4",
        )
        .bind(tenant.to_string())
        .bind(rel.as_str())
        .bind(source.to_string())
        .bind(target.to_string())
        .execute(&mut *self.tx)
        .await
        .map_err(backend_error)?;
        let removed = result.rows_affected() > 0;
        self.changed |= removed;
        Ok(removed)
    }

    async fn append_audit(&mut self, tenant: TenantId, event: &AuditAppend) -> Result<AuditRow> {
        self.check_tenant(tenant)?;
        let seq = self.head_seq + 1;
        let hash = audit_link_hash(&self.head_hash, seq, &event.body);
        let pending = PendingAudit {
            tenant: tenant.to_string(),
            seq,
            id: event.id.to_string(),
            time: event.time.unix_micros(),
            actor_id: event.actor_id.clone(),
            action: event.action.clone(),
            target_id: event.target_id.clone(),
            correlation_id: event.correlation_id.clone(),
            body: event.body.clone(),
            prev_hash: self.head_hash.clone(),
            hash: hash.clone(),
        };
        // A batch writes its members' events, and its head, once, when it
        // commits (nothing reads the audit trail inside a write transaction).
        if self.member.is_some() {
            self.pending_audit.push(pending);
        } else {
            insert_audit(&mut self.tx, vec![pending]).await?;
            sqlx::query("UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant = $1")
                .bind(tenant.to_string())
                .bind(seq)
                .bind(hash.clone())
                .execute(&mut *self.tx)
                .await
                .map_err(backend_error)?;
        }
        let row = AuditRow {
            seq,
            id: event.id.to_string(),
            time: event.time,
            actor_id: event.actor_id.clone(),
            action: event.action.clone(),
            target_id: event.target_id.clone(),
            correlation_id: event.correlation_id.clone(),
            body: event.body.clone(),
            prev_hash: self.head_hash.clone(),
            hash: hash.clone(),
        };
        self.head_seq = seq;
        self.head_hash = hash;
        self.appended = true;
        Ok(row)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let mut this = *self;
        if this.changed && !this.appended {
            // Rolled back when dropped (a member to its savepoint).
            return Err(StoreError::MissingAuditEvent);
        }
        let Some(tx) = this.tx.0.take() else {
            return Err(StoreError::Backend("the transaction has ended".into()));
        };
        match this.member.take() {
            Some(member) => {
                let head_hash = std::mem::take(&mut this.head_hash);
                let pending = std::mem::take(&mut this.pending_audit);
                member.commit(tx, this.head_seq, head_hash, pending).await
            }
            None => tx.commit().await.map_err(backend_error),
        }
    }
}

impl Drop for SqlWriteTx {
    fn drop(&mut self) {
        // Ended without a commit: a member is rolled back to its savepoint (its
        // batch goes on); a transaction of its own rolls back as it drops.
        if let Some(member) = self.member.take() {
            member.abandon(self.tx.0.take());
        }
    }
}

impl SqlWriteTx {
    async fn missing_or_conflict(&mut self, kind: Kind, id: Uuid, expected: i64) -> StoreError {
        match sql::get(&mut self.tx, self.tenant, kind, id).await {
            Ok(Some(_)) => StoreError::VersionConflict {
                kind: kind.as_str(),
                id: id.to_string(),
                expected,
            },
            Ok(None) => StoreError::NotFound {
                kind: kind.as_str(),
                id: id.to_string(),
            },
            Err(error) => error,
        }
    }
}

impl SqlStore {
    /// Begins a write transaction holding the tenant's audit chain head; returns
    /// it with the head (sequence and hash).
    async fn lock_head(
        &self,
        tenant: TenantId,
    ) -> Result<(Transaction<'static, Any>, i64, String)> {
        let mut tx = self.begin().await?;
        let lock = match self.backend {
            Backend::Sqlite => "SELECT seq, hash FROM audit_heads WHERE tenant = $1",
            Backend::Postgres => "SELECT seq, hash FROM audit_heads WHERE tenant = $1 FOR UPDATE",
        };
        let row = sqlx::query(lock)
            .bind(tenant.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_error)?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                kind: "tenant",
                id: tenant.to_string(),
            });
        };
        Ok((
            tx,
            row.try_get("seq").map_err(backend_error)?,
            row.try_get("hash").map_err(backend_error)?,
        ))
    }

    async fn begin(&self) -> Result<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => self
                .write_pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(backend_error),
            Backend::Postgres => self.write_pool.begin().await.map_err(backend_error),
        }
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    async fn default_tenant(&self) -> Result<Option<TenantId>> {
        let row = sqlx::query("SELECT default_tenant FROM installation WHERE singleton = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        match row {
            None => Ok(None),
            Some(row) => {
                let text: String = row.try_get("default_tenant").map_err(backend_error)?;
                sql::parse_tenant(&text).map(Some)
            }
        }
    }

    async fn tenants(&self) -> Result<Vec<Tenant>> {
        let rows = sqlx::query("SELECT id, name, created FROM tenants ORDER BY created, id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id").map_err(backend_error)?;
                Ok(Tenant {
                    id: sql::parse_tenant(&id)?,
                    name: row.try_get("name").map_err(backend_error)?,
                    created: Timestamp::from_unix_micros(
                        row.try_get("created").map_err(backend_error)?,
                    ),
                })
            })
            .collect()
    }

    async fn reader(&self) -> Result<Box<dyn Reader>> {
        let conn = self.pool.acquire().await.map_err(backend_error)?;
        Ok(Box::new(PoolReader {
            conn,
            backend: self.backend,
        }))
    }

    async fn snapshot(&self) -> Result<Box<dyn Reader>> {
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN DEFERRED",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        let tx = self.pool.begin_with(begin).await.map_err(backend_error)?;
        Ok(Box::new(SnapshotReader {
            tx,
            backend: self.backend,
        }))
    }

    async fn begin_write(&self, tenant: TenantId) -> Result<Box<dyn WriteTx>> {
        if let Some(batches) = &self.batches {
            let (member, tx, head_seq, head_hash) =
                group::Member::join(batches.of(tenant), || self.lock_head(tenant)).await?;
            return Ok(Box::new(SqlWriteTx {
                backend: self.backend,
                tx: group::TxSlot(Some(tx)),
                member: Some(member),
                tenant,
                head_seq,
                head_hash,
                changed: false,
                appended: false,
                pending_audit: Vec::new(),
                bumped: Vec::new(),
            }));
        }
        let (tx, head_seq, head_hash) = self.lock_head(tenant).await?;
        Ok(Box::new(SqlWriteTx {
            backend: self.backend,
            tx: group::TxSlot(Some(tx)),
            member: None,
            tenant,
            head_seq,
            head_hash,
            changed: false,
            appended: false,
            pending_audit: Vec::new(),
            bumped: Vec::new(),
        }))
    }

    async fn create_tenant(&self, tenant: &Tenant, as_default: bool) -> Result<Box<dyn WriteTx>> {
        let mut tx = self.begin().await?;
        if as_default {
            let claimed = sqlx::query(
                "INSERT INTO installation (singleton, default_tenant, created) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.id.to_string())
            .bind(tenant.created.unix_micros())
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
            if claimed.rows_affected() == 0 {
                return Err(StoreError::TenantExists);
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO tenants (id, name, created) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.id.to_string())
        .bind(tenant.name.clone())
        .bind(tenant.created.unix_micros())
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::TenantExists);
        }
        sqlx::query("INSERT INTO audit_heads (tenant, seq, hash) VALUES ($1, 0, $2)")
            .bind(tenant.id.to_string())
            .bind(GENESIS_HASH)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        Ok(Box::new(SqlWriteTx {
            backend: self.backend,
            tx: group::TxSlot(Some(tx)),
            member: None,
            tenant: tenant.id,
            head_seq: 0,
            head_hash: GENESIS_HASH.to_string(),
            changed: true,
            appended: false,
            pending_audit: Vec::new(),
            bumped: Vec::new(),
        }))
    }

    async fn audit_query(&self, tenant: TenantId, query: &AuditQuery) -> Result<Vec<AuditRow>> {
        let mut conn = self.pool.acquire().await.map_err(backend_error)?;
        sql::audit_query(&mut conn, tenant, query).await
    }

    async fn audit_scan(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditRow>> {
        let mut conn = self.pool.acquire().await.map_err(backend_error)?;
        sql::audit_scan(&mut conn, tenant, after_seq, limit).await
    }

    async fn audit_head(&self, tenant: TenantId) -> Result<Option<AuditHead>> {
        let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE tenant = $1")
            .bind(tenant.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(AuditHead {
                seq: row.try_get("seq").map_err(backend_error)?,
                hash: row.try_get("hash").map_err(backend_error)?,
            })),
        }
    }

    async fn optimize(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            // 0x10002: analyse every table whose statistics are missing or stale
            // (row counts moved tenfold); the limit samples large tables, so this
            // stays in milliseconds at a million rows.
            sqlx::raw_sql("PRAGMA analysis_limit=1000; PRAGMA optimize=0x10002")
                .execute(&self.write_pool)
                .await
                .map_err(backend_error)?;
        }
        Ok(())
    }

    async fn database_size(&self) -> Result<u64> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT page_count * page_size AS size FROM pragma_page_count(), pragma_page_size()"
            }
            Backend::Postgres => "SELECT pg_database_size(current_database()) AS size",
        };
        let size: i64 = sqlx::query(sql)
            .fetch_one(&self.pool)
            .await
            .map_err(backend_error)?
            .try_get("size")
            .map_err(backend_error)?;
        Ok(u64::try_from(size).unwrap_or(0))
    }
}

/// Opens a store as a shareable trait object.
pub async fn open(options: &Options) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(SqlStore::open(options).await?))
}

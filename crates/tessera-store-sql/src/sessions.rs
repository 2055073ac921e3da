//! Sessions, the sign-in log and counters on both backends. Each operation is one
//! statement (atomic on its own), outside the audit chain's lock.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tessera_core::{TenantId, Timestamp};
use tessera_store::{
    Counter, NumberedLog, Result, RevocationRow, RiskDetectionQuery, RiskDetectionRow, SessionRow,
    SessionStore, SignInQuery, SignInRow, StoreError,
};
use uuid::Uuid;

use crate::sql::{AuditParam, Filters, MAX_PAGE};
use crate::{SqlStore, backend_error, is_unique_violation};

const SESSION_COLUMNS: &str = "id, user_id, created, last_seen, expires, revoked, version, data";
const SIGN_IN_COLUMNS: &str = "id, time, user_id, user_name, application, result, failure_code, \
     correlation_id, body, attempts, aggregate_key, seq";
/// Parameters per sign-in row (its columns and the tenant), but its number.
const SIGN_IN_FIELDS: usize = 12;

fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text)
        .map_err(|_| StoreError::Backend(format!("malformed id {text:?} in the database")))
}

fn optional_uuid(row: &AnyRow, column: &str) -> Result<Option<Uuid>> {
    let text: Option<String> = row.try_get(column).map_err(backend_error)?;
    text.as_deref().map(parse_uuid).transpose()
}

fn micros(row: &AnyRow, column: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix_micros(
        row.try_get(column).map_err(backend_error)?,
    ))
}

fn session_from(row: &AnyRow) -> Result<SessionRow> {
    let revoked: Option<i64> = row.try_get("revoked").map_err(backend_error)?;
    Ok(SessionRow {
        id: row.try_get("id").map_err(backend_error)?,
        user_id: optional_uuid(row, "user_id")?,
        created: micros(row, "created")?,
        last_seen: micros(row, "last_seen")?,
        expires: micros(row, "expires")?,
        revoked: revoked.map(Timestamp::from_unix_micros),
        version: row.try_get("version").map_err(backend_error)?,
        data: row.try_get("data").map_err(backend_error)?,
    })
}

fn sign_in_from(row: &AnyRow) -> Result<SignInRow> {
    let id: String = row.try_get("id").map_err(backend_error)?;
    Ok(SignInRow {
        id: parse_uuid(&id)?,
        time: micros(row, "time")?,
        user_id: optional_uuid(row, "user_id")?,
        user_name: row.try_get("user_name").map_err(backend_error)?,
        application: row.try_get("application").map_err(backend_error)?,
        result: row.try_get("result").map_err(backend_error)?,
        failure_code: row.try_get("failure_code").map_err(backend_error)?,
        correlation_id: row.try_get("correlation_id").map_err(backend_error)?,
        body: row.try_get("body").map_err(backend_error)?,
        attempts: row.try_get("attempts").map_err(backend_error)?,
        aggregate_key: row.try_get("aggregate_key").map_err(backend_error)?,
    })
}

/// Most rows in one multi-row INSERT (12 parameters each; far below both backends'
/// parameter limits). Fixed chunk sizes keep the set of prepared statements small.
const ROWS_PER_INSERT: usize = 16;

/// Most rows one step of a purge deletes.
const PURGE_STEP: i64 = 10_000;

/// A sign-in row's fields, all but its number (which `Numbered` gives).
fn bind_sign_in<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    tenant: TenantId,
    entry: &SignInRow,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(tenant.to_string())
        .bind(entry.id.to_string())
        .bind(entry.time.unix_micros())
        .bind(entry.user_id.map(|u| u.to_string()))
        .bind(entry.user_name.clone())
        .bind(entry.application.clone())
        .bind(entry.result.clone())
        .bind(entry.failure_code.clone())
        .bind(entry.correlation_id.clone())
        .bind(entry.body.clone())
        .bind(entry.attempts)
        .bind(entry.aggregate_key.clone())
}

/// Inserts sign-in rows with one statement per chunk: one round trip to the
/// database (on SQLite, to its worker thread) instead of one per row, each row
/// numbered for the SIEM export (see `numbering`). Aggregates are first merged
/// by tenant and key, then each is one upsert, numbered anew.
async fn insert_sign_ins(
    conn: &mut sqlx::AnyConnection,
    backend: crate::Backend,
    entries: &[(TenantId, SignInRow)],
) -> Result<()> {
    let mut single: Vec<&(TenantId, SignInRow)> = Vec::new();
    let mut aggregates: Vec<(TenantId, SignInRow)> = Vec::new();
    for pair in entries {
        let (tenant, entry) = pair;
        let Some(key) = &entry.aggregate_key else {
            single.push(pair);
            continue;
        };
        let earlier = aggregates
            .iter_mut()
            .find(|(t, e)| t == tenant && e.aggregate_key.as_ref() == Some(key));
        match earlier {
            Some((_, merged)) => {
                merged.attempts = merged.attempts.saturating_add(entry.attempts);
                merged.time = merged.time.max(entry.time);
            }
            None => aggregates.push((*tenant, entry.clone())),
        }
    }
    let now = entries
        .iter()
        .map(|(_, e)| e.time)
        .max()
        .unwrap_or_else(|| Timestamp::from_unix_micros(0));
    let head = format!("INSERT INTO sign_ins (tenant, {SIGN_IN_COLUMNS}) VALUES ");
    for tenant in crate::numbering::tenants_of(entries) {
        let rows: Vec<&SignInRow> = single
            .iter()
            .filter(|(t, _)| *t == tenant)
            .map(|(_, e)| e)
            .collect();
        let merged: Vec<&SignInRow> = aggregates
            .iter()
            .filter(|(t, _)| *t == tenant)
            .map(|(_, e)| e)
            .collect();
        let numbers = crate::numbering::Numbered::new(
            backend,
            tenant,
            tessera_store::NumberedLog::SignIns,
            now,
        );
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = numbers.statement(&head, chunk.len(), SIGN_IN_FIELDS, "");
            let mut query = numbers.bind_head(sqlx::query(AssertSqlSafe(sql)), chunk.len());
            for entry in chunk {
                query = bind_sign_in(query, tenant, entry);
            }
            query.execute(&mut *conn).await.map_err(backend_error)?;
        }
        for entry in merged {
            let sql = numbers.statement(
                &head,
                1,
                SIGN_IN_FIELDS,
                " ON CONFLICT (tenant, aggregate_key) WHERE aggregate_key IS NOT NULL DO UPDATE SET \
                 attempts = sign_ins.attempts + excluded.attempts, seq = excluded.seq, \
                 time = CASE WHEN excluded.time > sign_ins.time THEN excluded.time ELSE sign_ins.time END",
            );
            let query = numbers.bind_head(sqlx::query(AssertSqlSafe(sql)), 1);
            bind_sign_in(query, tenant, entry)
                .execute(&mut *conn)
                .await
                .map_err(backend_error)?;
        }
    }
    Ok(())
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn session_insert(&self, tenant: TenantId, session: &SessionRow) -> Result<()> {
        if session.version != 1 {
            return Err(StoreError::Backend(
                "a new session must have version 1".to_string(),
            ));
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO sessions (tenant, {SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(tenant.to_string())
        .bind(session.id.clone())
        .bind(session.user_id.map(|u| u.to_string()))
        .bind(session.created.unix_micros())
        .bind(session.last_seen.unix_micros())
        .bind(session.expires.unix_micros())
        .bind(session.revoked.map(Timestamp::unix_micros))
        .bind(session.version)
        .bind(session.data.clone())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate { kind: "session" }
            } else {
                backend_error(e)
            }
        })?;
        Ok(())
    }

    async fn session_get(&self, tenant: TenantId, id: &str) -> Result<Option<SessionRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant = $1 AND id = $2"
        )))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        row.as_ref().map(session_from).transpose()
    }

    async fn session_update(&self, tenant: TenantId, session: &SessionRow) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE sessions SET user_id = $3, last_seen = $4, expires = $5, revoked = $6, \
             version = $7, data = $8 WHERE tenant = $1 AND id = $2 AND version = $9",
        )
        .bind(tenant.to_string())
        .bind(session.id.clone())
        .bind(session.user_id.map(|u| u.to_string()))
        .bind(session.last_seen.unix_micros())
        .bind(session.expires.unix_micros())
        .bind(session.revoked.map(Timestamp::unix_micros))
        .bind(session.version)
        .bind(session.data.clone())
        .bind(session.version - 1)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        if updated.rows_affected() == 1 {
            return Ok(());
        }
        match self.session_get(tenant, &session.id).await? {
            None => Err(StoreError::NotFound {
                kind: "session",
                id: "(hidden)".to_string(),
            }),
            Some(_) => Err(StoreError::VersionConflict {
                kind: "session",
                id: "(hidden)".to_string(),
                expected: session.version - 1,
            }),
        }
    }

    async fn session_touch(&self, tenant: TenantId, id: &str, last_seen: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET last_seen = $3 WHERE tenant = $1 AND id = $2 AND last_seen < $3",
        )
        .bind(tenant.to_string())
        .bind(id.to_string())
        .bind(last_seen.unix_micros())
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    async fn session_delete(&self, tenant: TenantId, id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE tenant = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn sessions_by_prefix(
        &self,
        tenant: TenantId,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SessionRow>> {
        // A range on the key, not LIKE: the prefix is data, never a pattern.
        // Ids sort bytewise on both backends (COLLATE "C", SQLite's BINARY).
        let Some(last) = prefix.chars().last() else {
            return Err(StoreError::Backend("an empty prefix".to_string()));
        };
        let Some(next) = char::from_u32(last as u32 + 1) else {
            return Err(StoreError::Backend("a prefix with no end".to_string()));
        };
        let end = format!("{}{next}", &prefix[..prefix.len() - last.len_utf8()]);
        let start = match after {
            Some(after) if after >= prefix => after.to_string(),
            _ => prefix.to_string(),
        };
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant = $1 AND id >= $2 AND id < $3 \
             AND id <> $4 ORDER BY id LIMIT {limit}"
        )))
        .bind(tenant.to_string())
        .bind(start)
        .bind(end)
        .bind(after.unwrap_or_default().to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter().map(session_from).collect()
    }

    async fn sessions_of_user(
        &self,
        tenant: TenantId,
        user: Uuid,
        now: Timestamp,
    ) -> Result<Vec<SessionRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant = $1 AND user_id = $2 \
             AND revoked IS NULL AND expires > $3 ORDER BY created DESC, id LIMIT {MAX_PAGE}"
        )))
        .bind(tenant.to_string())
        .bind(user.to_string())
        .bind(now.unix_micros())
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter().map(session_from).collect()
    }

    async fn sessions_revoke_user(
        &self,
        tenant: TenantId,
        user: Uuid,
        keep: Option<&str>,
        at: Timestamp,
    ) -> Result<u64> {
        let revoked = sqlx::query(
            "UPDATE sessions SET revoked = $3, version = version + 1 \
             WHERE tenant = $1 AND user_id = $2 AND revoked IS NULL AND id <> $4",
        )
        .bind(tenant.to_string())
        .bind(user.to_string())
        .bind(at.unix_micros())
        .bind(keep.unwrap_or("").to_string())
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(revoked.rows_affected())
    }

    async fn sessions_purge(&self, before: Timestamp) -> Result<u64> {
        let deleted = sqlx::query("DELETE FROM sessions WHERE expires < $1")
            .bind(before.unix_micros())
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(deleted.rows_affected())
    }

    async fn sign_in_append(&self, tenant: TenantId, entry: &SignInRow) -> Result<()> {
        self.sign_in_append_batch(&[(tenant, entry.clone())]).await
    }

    async fn sign_in_append_batch(&self, entries: &[(TenantId, SignInRow)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // One transaction (one durable commit) for the whole batch. On SQLite the
        // single writer connection takes it, so batches queue instead of failing.
        let mut tx = crate::numbering::begin(&self.write_pool, self.backend).await?;
        insert_sign_ins(&mut tx, self.backend, entries).await?;
        tx.commit().await.map_err(backend_error)?;
        Ok(())
    }

    async fn risk_detection_append_batch(
        &self,
        entries: &[(TenantId, RiskDetectionRow)],
    ) -> Result<()> {
        crate::risk::append_batch(self, entries).await
    }

    async fn risk_detection_query(
        &self,
        tenant: TenantId,
        query: &RiskDetectionQuery,
    ) -> Result<Vec<RiskDetectionRow>> {
        crate::risk::query(self, tenant, query).await
    }

    async fn risk_detection_purge(&self, tenant: TenantId, before: Timestamp) -> Result<u64> {
        crate::risk::purge(self, tenant, before).await
    }

    async fn sign_in_query(&self, tenant: TenantId, query: &SignInQuery) -> Result<Vec<SignInRow>> {
        let mut filters = Filters::of_tenant(tenant);
        filters.equal("user_id", query.user_id.map(|u| u.to_string()));
        filters.equal("user_name", query.user_name.clone());
        filters.equal("result", query.result.clone());
        filters.equal("application", query.application.clone());
        filters.equal("failure_code", query.failure_code.clone());
        filters.equal("correlation_id", query.correlation_id.clone());
        if let Some(since) = query.since {
            filters.add("time >= ?", vec![AuditParam::Integer(since.unix_micros())]);
        }
        if let Some(until) = query.until {
            filters.add("time <= ?", vec![AuditParam::Integer(until.unix_micros())]);
        }
        if let Some((time, id)) = query.before {
            filters.add(
                "(time < ? OR (time = ? AND id < ?))",
                vec![
                    AuditParam::Integer(time.unix_micros()),
                    AuditParam::Integer(time.unix_micros()),
                    AuditParam::Text(id.to_string()),
                ],
            );
        }
        let limit = query.limit.clamp(1, MAX_PAGE);
        let sql = format!(
            "SELECT {SIGN_IN_COLUMNS} FROM sign_ins WHERE {} ORDER BY time DESC, id DESC LIMIT {limit}",
            filters.sql()
        );
        let statement = filters.bind(sqlx::query(AssertSqlSafe(sql)));
        let rows = statement
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(sign_in_from).collect()
    }

    async fn sign_in_scan(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<(i64, SignInRow)>> {
        let limit = limit.clamp(1, MAX_PAGE);
        let sql = format!(
            "SELECT {SIGN_IN_COLUMNS} FROM sign_ins WHERE tenant = $1 AND seq > $2 \
             ORDER BY seq LIMIT {limit}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(after_seq)
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("seq").map_err(backend_error)?,
                    sign_in_from(row)?,
                ))
            })
            .collect()
    }

    async fn risk_detection_scan(
        &self,
        tenant: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<(i64, RiskDetectionRow)>> {
        crate::risk::scan(self, tenant, after_seq, limit).await
    }

    async fn sign_in_purge(
        &self,
        tenant: TenantId,
        before: Timestamp,
        keep_newest: u64,
    ) -> Result<u64> {
        // Everything at or before `cutoff` (time, id) goes. By age: every id of a
        // time before `before` ("~" sorts after every id's characters).
        let mut cutoff = (before.unix_micros() - 1, "~".to_string());
        let offset = i64::try_from(keep_newest).unwrap_or(i64::MAX);
        let oldest_kept = sqlx::query(
            "SELECT time, id FROM sign_ins WHERE tenant = $1 ORDER BY time DESC, id DESC LIMIT 1 OFFSET $2",
        )
        .bind(tenant.to_string())
        .bind(offset)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        if let Some(row) = oldest_kept {
            let by_size = (
                row.try_get::<i64, _>("time").map_err(backend_error)?,
                row.try_get::<String, _>("id").map_err(backend_error)?,
            );
            cutoff = cutoff.max(by_size);
        }
        let mut deleted = 0;
        loop {
            // One step: up to PURGE_STEP rows at or before the cutoff.
            let step_end = sqlx::query(
                "SELECT time, id FROM sign_ins WHERE tenant = $1 AND (time, id) <= ($2, $3) \
                 ORDER BY time, id LIMIT 1 OFFSET $4",
            )
            .bind(tenant.to_string())
            .bind(cutoff.0)
            .bind(cutoff.1.clone())
            .bind(PURGE_STEP - 1)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
            let (end, last) = match step_end {
                Some(row) => (
                    (
                        row.try_get::<i64, _>("time").map_err(backend_error)?,
                        row.try_get::<String, _>("id").map_err(backend_error)?,
                    ),
                    false,
                ),
                None => (cutoff.clone(), true),
            };
            let mut tx = self.write_pool.begin().await.map_err(backend_error)?;
            crate::numbering::keep_head(&mut tx, self.backend, tenant, NumberedLog::SignIns)
                .await?;
            let done =
                sqlx::query("DELETE FROM sign_ins WHERE tenant = $1 AND (time, id) <= ($2, $3)")
                    .bind(tenant.to_string())
                    .bind(end.0)
                    .bind(end.1)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_error)?;
            tx.commit().await.map_err(backend_error)?;
            deleted += done.rows_affected();
            if last {
                return Ok(deleted);
            }
        }
    }

    async fn revocations_append(&self, rows: &[RevocationRow]) -> Result<()> {
        crate::revocations::append(self, rows).await
    }

    async fn revocations_after(
        &self,
        after: i64,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(i64, RevocationRow)>> {
        crate::revocations::after(self, after, now, limit).await
    }

    async fn revocations_purge(&self, now: Timestamp) -> Result<u64> {
        crate::revocations::purge(self, now).await
    }

    async fn numbered_head(&self, tenant: TenantId, log: NumberedLog) -> Result<i64> {
        crate::numbering::head(&self.pool, self.backend, tenant, log).await
    }

    async fn counter_get(&self, tenant: TenantId, key: &str) -> Result<Option<Counter>> {
        let row = sqlx::query("SELECT value, updated FROM counters WHERE tenant = $1 AND key = $2")
            .bind(tenant.to_string())
            .bind(key.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(Counter {
                value: row.try_get("value").map_err(backend_error)?,
                updated: micros(&row, "updated")?,
            })),
        }
    }

    async fn counter_advance(
        &self,
        tenant: TenantId,
        key: &str,
        value: i64,
        now: Timestamp,
    ) -> Result<bool> {
        let changed = sqlx::query(
            "INSERT INTO counters (tenant, key, value, updated) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, updated = excluded.updated \
             WHERE counters.value < excluded.value",
        )
        .bind(tenant.to_string())
        .bind(key.to_string())
        .bind(value)
        .bind(now.unix_micros())
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(changed.rows_affected() == 1)
    }

    async fn counter_increment(
        &self,
        tenant: TenantId,
        key: &str,
        now: Timestamp,
        restart_before: Timestamp,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO counters (tenant, key, value, updated) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (tenant, key) DO UPDATE SET \
             value = CASE WHEN counters.updated < $4 THEN 1 ELSE counters.value + 1 END, \
             updated = excluded.updated RETURNING value",
        )
        .bind(tenant.to_string())
        .bind(key.to_string())
        .bind(now.unix_micros())
        .bind(restart_before.unix_micros())
        .fetch_one(&self.pool)
        .await
        .map_err(backend_error)?;
        row.try_get("value").map_err(backend_error)
    }

    async fn counter_take(
        &self,
        tenant: TenantId,
        key: &str,
        limit: i64,
        now: Timestamp,
    ) -> Result<bool> {
        if limit < 1 {
            return Ok(false);
        }
        let changed = sqlx::query(
            "INSERT INTO counters (tenant, key, value, updated) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (tenant, key) DO UPDATE SET value = counters.value + 1, updated = excluded.updated \
             WHERE counters.value < $4",
        )
        .bind(tenant.to_string())
        .bind(key.to_string())
        .bind(now.unix_micros())
        .bind(limit)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(changed.rows_affected() == 1)
    }

    async fn counter_delete(&self, tenant: TenantId, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM counters WHERE tenant = $1 AND key = $2")
            .bind(tenant.to_string())
            .bind(key.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    async fn counters_purge(&self, prefix: &str, before: Timestamp) -> Result<u64> {
        let length = i64::try_from(prefix.chars().count())
            .map_err(|_| StoreError::Backend("prefix too long".to_string()))?;
        let done = sqlx::query(
            "DELETE FROM counters WHERE substr(key, 1, CAST($2 AS INTEGER)) = $1 AND updated < $3",
        )
        .bind(prefix.to_string())
        .bind(length)
        .bind(before.unix_micros())
        .execute(&self.write_pool)
        .await
        .map_err(backend_error)?;
        Ok(done.rows_affected())
    }
}

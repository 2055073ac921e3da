//! Queries shared by pooled readers and write transactions.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use tessera_core::{TenantId, Timestamp};
use tessera_store::{AuditQuery, AuditRow, Kind, Link, ListQuery, Record, Rel, Result, StoreError};
use uuid::Uuid;

use crate::backend_error;

/// Most rows one list call returns, whatever the caller asks. Above the API's own
/// maximum (1000), so that callers can ask for one more row to learn whether there
/// is a next page.
pub const MAX_PAGE: u32 = 5000;

pub(crate) const RECORD_COLUMNS: &str =
    "kind, id, version, created, modified, key1, key2, sort_key, data";

pub fn parse_tenant(text: &str) -> Result<TenantId> {
    text.parse()
        .map_err(|_| StoreError::Backend(format!("malformed tenant id {text:?} in the database")))
}

fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text)
        .map_err(|_| StoreError::Backend(format!("malformed id {text:?} in the database")))
}

fn parse_kind(text: &str) -> Result<Kind> {
    Kind::parse(text)
        .ok_or_else(|| StoreError::Backend(format!("unknown object kind {text:?} in the database")))
}

fn parse_rel(text: &str) -> Result<Rel> {
    [Rel::Member, Rel::Owner, Rel::UnitMember]
        .into_iter()
        .find(|r| r.as_str() == text)
        .ok_or_else(|| StoreError::Backend(format!("unknown relation {text:?} in the database")))
}

pub(crate) fn record_from(row: &AnyRow) -> Result<Record> {
    record_from_prefixed(row, "")
}

/// A record from columns named with `prefix` (a joined companion's `c_`).
pub(crate) fn record_from_prefixed(row: &AnyRow, prefix: &str) -> Result<Record> {
    let column = |name: &str| format!("{prefix}{name}");
    let kind: String = row
        .try_get(column("kind").as_str())
        .map_err(backend_error)?;
    let id: String = row.try_get(column("id").as_str()).map_err(backend_error)?;
    Ok(Record {
        kind: parse_kind(&kind)?,
        id: parse_uuid(&id)?,
        version: row
            .try_get(column("version").as_str())
            .map_err(backend_error)?,
        created: Timestamp::from_unix_micros(
            row.try_get(column("created").as_str())
                .map_err(backend_error)?,
        ),
        modified: Timestamp::from_unix_micros(
            row.try_get(column("modified").as_str())
                .map_err(backend_error)?,
        ),
        key1: row
            .try_get(column("key1").as_str())
            .map_err(backend_error)?,
        key2: row
            .try_get(column("key2").as_str())
            .map_err(backend_error)?,
        sort_key: row
            .try_get(column("sort_key").as_str())
            .map_err(backend_error)?,
        data: row
            .try_get(column("data").as_str())
            .map_err(backend_error)?,
    })
}

fn link_from(row: &AnyRow) -> Result<Link> {
    let rel: String = row.try_get("rel").map_err(backend_error)?;
    let source: String = row.try_get("source").map_err(backend_error)?;
    let source_kind: String = row.try_get("source_kind").map_err(backend_error)?;
    let target: String = row.try_get("target").map_err(backend_error)?;
    let target_kind: String = row.try_get("target_kind").map_err(backend_error)?;
    Ok(Link {
        rel: parse_rel(&rel)?,
        source: parse_uuid(&source)?,
        source_kind: parse_kind(&source_kind)?,
        target: parse_uuid(&target)?,
        target_kind: parse_kind(&target_kind)?,
    })
}

fn audit_from(row: &AnyRow) -> Result<AuditRow> {
    Ok(AuditRow {
        seq: row.try_get("seq").map_err(backend_error)?,
        id: row.try_get("id").map_err(backend_error)?,
        time: Timestamp::from_unix_micros(row.try_get("time").map_err(backend_error)?),
        actor_id: row.try_get("actor_id").map_err(backend_error)?,
        action: row.try_get("action").map_err(backend_error)?,
        target_id: row.try_get("target_id").map_err(backend_error)?,
        correlation_id: row.try_get("correlation_id").map_err(backend_error)?,
        body: row.try_get("body").map_err(backend_error)?,
        prev_hash: row.try_get("prev_hash").map_err(backend_error)?,
        hash: row.try_get("hash").map_err(backend_error)?,
    })
}

pub async fn get(
    conn: &mut AnyConnection,
    tenant: TenantId,
    kind: Kind,
    id: Uuid,
) -> Result<Option<Record>> {
    let sql =
        format!("SELECT {RECORD_COLUMNS} FROM objects WHERE tenant = $1 AND kind = $2 AND id = $3");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(kind.as_str())
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend_error)?;
    row.as_ref().map(record_from).transpose()
}

pub async fn get_by_key1(
    conn: &mut AnyConnection,
    tenant: TenantId,
    kind: Kind,
    key1: &str,
) -> Result<Option<Record>> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM objects WHERE tenant = $1 AND kind = $2 AND key1 = $3"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(kind.as_str())
        .bind(key1.to_string())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend_error)?;
    row.as_ref().map(record_from).transpose()
}

/// The smallest string greater than every string that starts with `prefix`, or None
/// when there is none (the prefix is all U+10FFFF).
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            char::MAX => None,
            other => char::from_u32(u32::from(other) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

pub async fn list(
    conn: &mut AnyConnection,
    tenant: TenantId,
    kind: Kind,
    query: &ListQuery,
) -> Result<Vec<Record>> {
    let mut conditions = vec!["tenant = $1".to_string(), "kind = $2".to_string()];
    // Conditions use numbered parameters; user input is only ever bound, never spliced.
    let mut params: Vec<String> = vec![tenant.to_string(), kind.as_str().to_string()];
    let next_param = |params: &mut Vec<String>, value: String| {
        params.push(value);
        format!("${}", params.len())
    };
    if let Some(key2) = &query.key2 {
        let p = next_param(&mut params, key2.clone());
        conditions.push(format!("key2 = {p}"));
    }
    if let Some(prefix) = &query.prefix {
        let p = next_param(&mut params, prefix.clone());
        conditions.push(format!("sort_key >= {p}"));
        if let Some(upper) = prefix_upper_bound(prefix) {
            let p = next_param(&mut params, upper);
            conditions.push(format!("sort_key < {p}"));
        }
    }
    if let Some(after) = &query.after {
        let s = next_param(&mut params, after.sort_key.clone());
        let i = next_param(&mut params, after.id.to_string());
        conditions.push(format!("(sort_key, id) > ({s}, {i})"));
    }
    let limit = query.limit.clamp(1, MAX_PAGE);
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM objects WHERE {} ORDER BY sort_key, id LIMIT {limit}",
        conditions.join(" AND ")
    );
    let mut statement = sqlx::query(AssertSqlSafe(sql));
    for param in params {
        statement = statement.bind(param);
    }
    let rows = statement
        .fetch_all(&mut *conn)
        .await
        .map_err(backend_error)?;
    rows.iter().map(record_from).collect()
}

pub async fn links_from(
    conn: &mut AnyConnection,
    tenant: TenantId,
    rel: Rel,
    source: Uuid,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Link>> {
    let limit = limit.clamp(1, MAX_PAGE);
    let sql = format!(
        "SELECT rel, source, source_kind, target, target_kind FROM links \
         WHERE tenant = $1 AND rel = $2 AND source = $3 AND target > $4 ORDER BY target LIMIT {limit}"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(rel.as_str())
        .bind(source.to_string())
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .fetch_all(&mut *conn)
        .await
        .map_err(backend_error)?;
    rows.iter().map(link_from).collect()
}

pub async fn links_to(
    conn: &mut AnyConnection,
    tenant: TenantId,
    rel: Rel,
    target: Uuid,
) -> Result<Vec<Link>> {
    let rows = sqlx::query(
        "SELECT rel, source, source_kind, target, target_kind FROM links \
         WHERE tenant = $1 AND rel = $2 AND target = $3 ORDER BY source",
    )
    .bind(tenant.to_string())
    .bind(rel.as_str())
    .bind(target.to_string())
    .fetch_all(&mut *conn)
    .await
    .map_err(backend_error)?;
    rows.iter().map(link_from).collect()
}

const AUDIT_COLUMNS: &str =
    "seq, id, time, actor_id, action, target_id, correlation_id, body, prev_hash, hash";

pub(crate) enum AuditParam {
    Text(String),
    Integer(i64),
}

/// The `WHERE` of a log query (the audit trail, the sign-in log, risk
/// detections): the tenant, then conditions whose `?`s become numbered
/// parameters, every value bound.
pub(crate) struct Filters {
    conditions: Vec<String>,
    params: Vec<AuditParam>,
}

impl Filters {
    pub(crate) fn of_tenant(tenant: TenantId) -> Filters {
        Filters {
            conditions: vec!["tenant = $1".to_string()],
            params: vec![AuditParam::Text(tenant.to_string())],
        }
    }

    /// Adds a condition; each `?` in it takes the next of `values`.
    pub(crate) fn add(&mut self, condition: &str, values: Vec<AuditParam>) {
        let mut condition = condition.to_string();
        for value in values {
            self.params.push(value);
            condition = condition.replacen('?', &format!("${}", self.params.len()), 1);
        }
        self.conditions.push(condition);
    }

    /// Adds `column = value` for a value given.
    pub(crate) fn equal(&mut self, column: &str, value: Option<String>) {
        if let Some(value) = value {
            self.add(&format!("{column} = ?"), vec![AuditParam::Text(value)]);
        }
    }

    pub(crate) fn sql(&self) -> String {
        self.conditions.join(" AND ")
    }

    /// The statement with every parameter bound.
    pub(crate) fn bind<'q>(
        self,
        mut statement: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        for param in self.params {
            statement = match param {
                AuditParam::Text(text) => statement.bind(text),
                AuditParam::Integer(value) => statement.bind(value),
            };
        }
        statement
    }
}

pub async fn audit_query(
    conn: &mut AnyConnection,
    tenant: TenantId,
    query: &AuditQuery,
) -> Result<Vec<AuditRow>> {
    let mut filters = Filters::of_tenant(tenant);
    filters.equal("actor_id", query.actor_id.clone());
    filters.equal("target_id", query.target_id.clone());
    filters.equal("action", query.action.clone());
    if let Some(since) = query.since {
        filters.add("time >= ?", vec![AuditParam::Integer(since.unix_micros())]);
    }
    if let Some(until) = query.until {
        filters.add("time <= ?", vec![AuditParam::Integer(until.unix_micros())]);
    }
    if let Some(before) = query.before_seq {
        filters.add("seq < ?", vec![AuditParam::Integer(before)]);
    }
    let limit = query.limit.clamp(1, MAX_PAGE);
    let sql = format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE {} ORDER BY seq DESC LIMIT {limit}",
        filters.sql()
    );
    let statement = filters.bind(sqlx::query(AssertSqlSafe(sql)));
    let rows = statement
        .fetch_all(&mut *conn)
        .await
        .map_err(backend_error)?;
    rows.iter().map(audit_from).collect()
}

pub async fn audit_scan(
    conn: &mut AnyConnection,
    tenant: TenantId,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<AuditRow>> {
    let limit = limit.clamp(1, MAX_PAGE);
    let sql = format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT {limit}"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant.to_string())
        .bind(after_seq)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend_error)?;
    rows.iter().map(audit_from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound("ad").as_deref(), Some("ae"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
    }
}

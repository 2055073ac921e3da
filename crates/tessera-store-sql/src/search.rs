//! Searches: a [`Predicate`] compiled into one SQL statement per backend. Every
//! value is a bound parameter; the only text spliced in is this module's own.
//!
//! JSON is read with SQLite's `json_extract`/`json_type`/`json_each` and
//! PostgreSQL's `jsonb_extract_path`/`jsonb_typeof`/`jsonb_array_elements` over
//! `data::jsonb`. Text compares bytewise on both (PostgreSQL under `COLLATE "C"`),
//! and case folding is `lower` of ASCII letters on both.

use sqlx::{AnyConnection, AssertSqlSafe, Row};
use tessera_core::TenantId;
use tessera_store::{
    Field, Found, Kind, MAX_CONDITIONS, Order, Predicate, Result, Scalar, Search, Step, StoreError,
    Test,
};

use crate::sql::{MAX_PAGE, RECORD_COLUMNS, record_from, record_from_prefixed};
use crate::{Backend, backend_error};

enum Param {
    Text(String),
    Int(i64),
    Real(f64),
}

struct Compiler {
    backend: Backend,
    params: Vec<Param>,
    conditions: usize,
    /// Inside a `Not`: a test that meets a missing value must say false, not NULL.
    /// Outside, a bare test is left for the planner to match with an index (a NULL
    /// there fails the row as false would).
    negated: bool,
    /// The tenant and companion kind, for tests answered from the companion's
    /// own indexes.
    tenant: String,
    companion: Option<Kind>,
}

fn invalid(message: &str) -> StoreError {
    StoreError::Backend(format!("invalid search: {message}"))
}

impl Compiler {
    fn new(backend: Backend, tenant: TenantId, companion: Option<Kind>) -> Compiler {
        Compiler {
            backend,
            params: Vec::new(),
            conditions: 0,
            negated: false,
            tenant: tenant.to_string(),
            companion,
        }
    }

    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    fn text(&mut self, value: &str) -> String {
        let p = self.bind(Param::Text(value.to_string()));
        format!("CAST({p} AS TEXT)")
    }

    /// The JSON source and path a field reads, for JSON fields.
    fn json(
        &mut self,
        field: &Field,
        element: Option<&str>,
    ) -> Result<Option<(String, Vec<Step>)>> {
        Ok(match field {
            Field::Data(path) => Some(("o.data".to_string(), path.clone())),
            Field::CompanionData(path) => Some(("c.data".to_string(), path.clone())),
            Field::Element(path) => {
                let Some(element) = element else {
                    return Err(invalid("an element field outside AnyElement"));
                };
                Some((element.to_string(), path.clone()))
            }
            _ => None,
        })
    }

    /// SQLite: a JSON path text, bound. PostgreSQL: the path keys, each bound.
    fn sqlite_path(&mut self, path: &[Step]) -> Result<String> {
        let mut text = String::from("$");
        for step in path {
            match step {
                Step::Key(key) => {
                    if key.contains('"') || key.contains('\\') {
                        return Err(invalid("a key holds a quote or backslash"));
                    }
                    text.push_str(&format!(".\"{key}\""));
                }
                Step::Index(i) => text.push_str(&format!("[{i}]")),
            }
        }
        Ok(self.text(&text))
    }

    fn pg_value(&mut self, source: &str, path: &[Step]) -> String {
        // The element of jsonb_array_elements is jsonb already; data is text.
        let doc = if source.starts_with("e.") {
            source.to_string()
        } else {
            format!("CAST({source} AS JSONB)")
        };
        if path.is_empty() {
            return doc;
        }
        let keys: Vec<String> = path
            .iter()
            .map(|s| match s {
                Step::Key(k) => self.text(k),
                Step::Index(i) => self.text(&i.to_string()),
            })
            .collect();
        format!("jsonb_extract_path({doc}, {})", keys.join(", "))
    }

    /// (type expression, value expression) of a JSON field. Types are normalized
    /// to `string`, `number`, `true`, `false`, `null`, `array`, `object`.
    fn typed(&mut self, source: &str, path: &[Step]) -> Result<(String, String, String)> {
        match self.backend {
            Backend::Sqlite => {
                let (ty, value) = if source.starts_with("e.") && path.is_empty() {
                    ("e.type".to_string(), "e.value".to_string())
                } else {
                    let p = self.sqlite_path(path)?;
                    (
                        format!("json_type({source}, {p})"),
                        format!("json_extract({source}, {p})"),
                    )
                };
                let ty = format!(
                    "(CASE {ty} WHEN 'text' THEN 'string' WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' ELSE {ty} END)"
                );
                // The raw JSON text of the value, for emptiness checks.
                let raw = value.clone();
                Ok((ty, value, raw))
            }
            Backend::Postgres => {
                let json = self.pg_value(source, path);
                Ok((
                    format!(
                        "(CASE jsonb_typeof({json}) WHEN 'boolean' THEN ({json} #>> '{{}}') ELSE jsonb_typeof({json}) END)"
                    ),
                    format!("({json} #>> '{{}}')"),
                    json,
                ))
            }
        }
    }

    fn fold(&self, expr: &str, fold: bool) -> String {
        match (fold, self.backend) {
            (false, Backend::Sqlite) => expr.to_string(),
            (false, Backend::Postgres) => format!("({expr} COLLATE \"C\")"),
            (true, Backend::Sqlite) => format!("lower({expr})"),
            (true, Backend::Postgres) => format!("lower({expr} COLLATE \"C\")"),
        }
    }

    fn column(field: &Field) -> Option<(&'static str, bool)> {
        // (column, is integer)
        Some(match field {
            Field::Id => ("o.id", false),
            Field::Key1 => ("o.key1", false),
            Field::Key2 => ("o.key2", false),
            Field::SortKey => ("o.sort_key", false),
            Field::Created => ("o.created", true),
            Field::Modified => ("o.modified", true),
            Field::CompanionId => ("c.id", false),
            Field::CompanionModified => ("c.modified", true),
            Field::CompanionKey1 => ("c.key1", false),
            Field::CompanionKey2 => ("c.key2", false),
            _ => return None,
        })
    }

    fn predicate(&mut self, predicate: &Predicate, element: Option<&str>) -> Result<String> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(invalid("too many conditions"));
        }
        Ok(match predicate {
            Predicate::True => "1 = 1".to_string(),
            Predicate::And(items) | Predicate::Or(items) => {
                if items.is_empty() {
                    return Ok(if matches!(predicate, Predicate::And(_)) {
                        "1 = 1"
                    } else {
                        "1 = 0"
                    }
                    .to_string());
                }
                let joiner = if matches!(predicate, Predicate::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts = items
                    .iter()
                    .map(|p| self.predicate(p, element))
                    .collect::<Result<Vec<_>>>()?;
                format!("({})", parts.join(joiner))
            }
            Predicate::Not(inner) => {
                let outer = std::mem::replace(&mut self.negated, true);
                let inner = self.predicate(inner, element);
                self.negated = outer;
                format!("(NOT {})", inner?)
            }
            Predicate::Test {
                field: field @ (Field::CompanionKey1 | Field::CompanionKey2),
                test: Test::Eq(Scalar::Text(value)),
                fold_case: false,
            } if element.is_none() => {
                // The companion's unique or reference key: the ids its index gives.
                let Some(companion) = self.companion else {
                    return Err(invalid("a companion field without a companion"));
                };
                let column = if *field == Field::CompanionKey1 {
                    "key1"
                } else {
                    "key2"
                };
                let t = self.text(&self.tenant.clone());
                let k = self.text(companion.as_str());
                let v = self.text(value);
                format!(
                    "o.id IN (SELECT k.id FROM objects k WHERE k.tenant = {t} AND k.kind = {k} AND k.{column} = {v})"
                )
            }
            Predicate::Test {
                field,
                test,
                fold_case,
            } => {
                let condition = self.test(field, test, *fold_case, element)?;
                if self.negated {
                    format!("COALESCE(({condition}), 1 = 0)")
                } else {
                    format!("({condition})")
                }
            }
            Predicate::AnyElement {
                array,
                element: inner,
            } => {
                if element.is_some() {
                    return Err(invalid("AnyElement does not nest"));
                }
                let Some((source, path)) = self.json(array, None)? else {
                    return Err(invalid("AnyElement needs a JSON field"));
                };
                // EXISTS is true or false: inside it, only the element's own `Not`s count.
                let outer = std::mem::replace(&mut self.negated, false);
                let compiled = self.any_element(&source, &path, inner);
                self.negated = outer;
                compiled?
            }
            Predicate::LinkTo { rel, target } => {
                let r = self.text(rel.as_str());
                let t = self.text(&target.to_string());
                format!(
                    "EXISTS (SELECT 1 FROM links l WHERE l.tenant = o.tenant AND l.rel = {r} AND l.source = o.id AND l.target = {t})"
                )
            }
            Predicate::LinkFrom { rel, source } => {
                let r = self.text(rel.as_str());
                let s = self.text(&source.to_string());
                format!(
                    "EXISTS (SELECT 1 FROM links l WHERE l.tenant = o.tenant AND l.rel = {r} AND l.source = {s} AND l.target = o.id)"
                )
            }
        })
    }

    fn any_element(&mut self, source: &str, path: &[Step], inner: &Predicate) -> Result<String> {
        let source = source.to_string();
        let path = path.to_vec();
        Ok(match self.backend {
            Backend::Sqlite => {
                let p = self.sqlite_path(&path)?;
                let body = self.predicate(inner, Some("e.value"))?;
                format!(
                    "(json_type({source}, {p}) = 'array' AND EXISTS (SELECT 1 FROM json_each({source}, {p}) AS e WHERE {body}))"
                )
            }
            Backend::Postgres => {
                let json = self.pg_value(&source, &path);
                let body = self.predicate(inner, Some("e.v"))?;
                format!(
                    "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({json}) = 'array' THEN {json} ELSE CAST('[]' AS JSONB) END) AS e(v) WHERE {body})"
                )
            }
        })
    }

    fn test(
        &mut self,
        field: &Field,
        test: &Test,
        fold: bool,
        element: Option<&str>,
    ) -> Result<String> {
        if let Some((column, integer)) = Self::column(field) {
            return self.column_test(column, integer, test, fold);
        }
        let Some((source, path)) = self.json(field, element)? else {
            return Err(invalid("unknown field"));
        };
        let (ty, value, raw) = self.typed(&source, &path)?;
        Ok(match test {
            Test::Present => match self.backend {
                Backend::Sqlite => format!(
                    "({ty} IS NOT NULL AND {ty} <> 'null' AND NOT ({ty} = 'string' AND {value} = '') \
                     AND NOT ({ty} IN ('array', 'object') AND {raw} IN ('[]', '{{}}')))"
                ),
                Backend::Postgres => format!(
                    "({ty} IS NOT NULL AND {ty} <> 'null' AND {raw} NOT IN (CAST('\"\"' AS JSONB), CAST('[]' AS JSONB), CAST('{{}}' AS JSONB)))"
                ),
            },
            Test::Eq(scalar)
            | Test::Gt(scalar)
            | Test::Ge(scalar)
            | Test::Lt(scalar)
            | Test::Le(scalar) => {
                let op = match test {
                    Test::Eq(_) => "=",
                    Test::Gt(_) => ">",
                    Test::Ge(_) => ">=",
                    Test::Lt(_) => "<",
                    _ => "<=",
                };
                match scalar {
                    Scalar::Text(text) => {
                        let p = self.text(text);
                        format!(
                            "({ty} = 'string' AND {} {op} {})",
                            self.fold(&value, fold),
                            self.fold(&p, fold)
                        )
                    }
                    Scalar::Number(n) => {
                        let p = self.bind(Param::Real(*n));
                        let number = match self.backend {
                            Backend::Sqlite => format!("CAST({value} AS REAL)"),
                            Backend::Postgres => format!(
                                "(CASE WHEN {ty} = 'number' THEN CAST({value} AS DOUBLE PRECISION) END)"
                            ),
                        };
                        format!("({ty} = 'number' AND {number} {op} {p})")
                    }
                    Scalar::Bool(b) => {
                        let want = if *b { "'true'" } else { "'false'" };
                        match op {
                            "=" => format!("({ty} = {want})"),
                            _ => return Err(invalid("booleans compare for equality only")),
                        }
                    }
                    Scalar::Int(_) => return Err(invalid("Int compares with integer columns")),
                }
            }
            Test::Contains(text) | Test::StartsWith(text) | Test::EndsWith(text) => {
                let p = self.text(text);
                let v = self.fold(&value, fold);
                let p = self.fold(&p, fold);
                format!("({ty} = 'string' AND {})", self.text_match(test, &v, &p))
            }
        })
    }

    fn text_match(&self, test: &Test, v: &str, p: &str) -> String {
        match (test, self.backend) {
            (Test::Contains(_), Backend::Sqlite) => format!("instr({v}, {p}) > 0"),
            (Test::Contains(_), Backend::Postgres) => format!("strpos({v}, {p}) > 0"),
            (Test::StartsWith(_), Backend::Sqlite) => format!("substr({v}, 1, length({p})) = {p}"),
            (Test::StartsWith(_), Backend::Postgres) => format!("left({v}, length({p})) = {p}"),
            (_, Backend::Sqlite) => format!(
                "(length({v}) >= length({p}) AND substr({v}, length({v}) - length({p}) + 1) = {p})"
            ),
            (_, Backend::Postgres) => format!("right({v}, length({p})) = {p}"),
        }
    }

    fn column_test(
        &mut self,
        column: &str,
        integer: bool,
        test: &Test,
        fold: bool,
    ) -> Result<String> {
        let op = match test {
            Test::Present => return Ok(format!("{column} IS NOT NULL")),
            Test::Eq(_) => "=",
            Test::Gt(_) => ">",
            Test::Ge(_) => ">=",
            Test::Lt(_) => "<",
            Test::Le(_) => "<=",
            Test::Contains(t) | Test::StartsWith(t) | Test::EndsWith(t) => {
                if integer {
                    return Err(invalid("text tests on an integer column"));
                }
                let p = self.text(t);
                let v = self.fold(column, fold);
                let p = self.fold(&p, fold);
                return Ok(self.text_match(test, &v, &p));
            }
        };
        let (Test::Eq(scalar)
        | Test::Gt(scalar)
        | Test::Ge(scalar)
        | Test::Lt(scalar)
        | Test::Le(scalar)) = test
        else {
            return Err(invalid("unreachable"));
        };
        match (scalar, integer) {
            (Scalar::Int(n), true) => {
                let p = self.bind(Param::Int(*n));
                Ok(format!("{column} {op} {p}"))
            }
            // The text columns are bytewise ("C") already: compared bare, an index
            // answers them.
            (Scalar::Text(t), false) if !fold => {
                let p = self.text(t);
                Ok(format!("{column} {op} {p}"))
            }
            (Scalar::Text(t), false) => {
                let p = self.text(t);
                Ok(format!(
                    "{} {op} {}",
                    self.fold(column, fold),
                    self.fold(&p, fold)
                ))
            }
            _ => Err(invalid("a column compares with its own type")),
        }
    }

    fn order_expression(&mut self, field: &Field, fold: bool) -> Result<String> {
        if let Some((column, integer)) = Self::column(field) {
            // Integers order as they are: no case, no collation.
            return Ok(if integer {
                column.to_string()
            } else {
                self.fold(column, fold)
            });
        }
        let Some((source, path)) = self.json(field, None)? else {
            return Err(invalid("unknown field"));
        };
        let (ty, value, _) = self.typed(&source, &path)?;
        let text = match self.backend {
            Backend::Sqlite => {
                format!("(CASE WHEN {ty} IN ('string', 'number') THEN CAST({value} AS TEXT) END)")
            }
            Backend::Postgres => {
                format!("(CASE WHEN {ty} IN ('string', 'number') THEN {value} END)")
            }
        };
        Ok(self.fold(&text, fold))
    }
}

const SELECT: &str =
    "o.kind, o.id, o.version, o.created, o.modified, o.key1, o.key2, o.sort_key, o.data";
const SELECT_COMPANION: &str = ", c.kind AS c_kind, c.id AS c_id, c.version AS c_version, \
     c.created AS c_created, c.modified AS c_modified, c.key1 AS c_key1, c.key2 AS c_key2, \
     c.sort_key AS c_sort_key, c.data AS c_data";

fn from_clause(
    compiler: &mut Compiler,
    tenant: TenantId,
    kind: Kind,
    companion: Option<Kind>,
) -> String {
    let t = compiler.text(&tenant.to_string());
    let k = compiler.text(kind.as_str());
    let join = match companion {
        Some(companion) => {
            let c = compiler.text(companion.as_str());
            format!(" LEFT JOIN objects c ON c.tenant = o.tenant AND c.kind = {c} AND c.id = o.id")
        }
        None => String::new(),
    };
    format!("FROM objects o{join} WHERE o.tenant = {t} AND o.kind = {k}")
}

async fn run(
    conn: &mut AnyConnection,
    sql: String,
    params: Vec<Param>,
) -> Result<Vec<sqlx::any::AnyRow>> {
    let mut statement = sqlx::query(AssertSqlSafe(sql));
    for param in params {
        statement = match param {
            Param::Text(t) => statement.bind(t),
            Param::Int(i) => statement.bind(i),
            Param::Real(r) => statement.bind(r),
        };
    }
    statement.fetch_all(&mut *conn).await.map_err(backend_error)
}

pub async fn search(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    kind: Kind,
    search: &Search,
) -> Result<Vec<Found>> {
    // The companion is joined only when the filter or the order reads it; else it
    // is fetched after, by primary key (a join the planner could walk badly with
    // stale statistics for a kind that grew since).
    let joined = search.companion.filter(|_| {
        reads_companion(&search.predicate)
            || matches!(&search.order, Order::By { field, .. } if is_companion(field))
    });
    let mut compiler = Compiler::new(backend, tenant, search.companion);
    let from = from_clause(&mut compiler, tenant, kind, joined);
    let condition = compiler.predicate(&search.predicate, None)?;
    let mut conditions = vec![condition];
    if let Some(after) = &search.after {
        if search.order != Order::Natural {
            return Err(invalid("a cursor pages the natural order only"));
        }
        let s = compiler.text(&after.sort_key);
        let i = compiler.text(&after.id.to_string());
        conditions.push(format!(
            "({}, o.id) > ({}, {i})",
            compiler.fold("o.sort_key", false),
            compiler.fold(&s, false)
        ));
    }
    let order = match &search.order {
        // A search a key answers (at most a few rows) sorts what it finds: on
        // SQLite, without fresh statistics the planner would rather walk the sort
        // index over every record of the kind than sort a few rows.
        Order::Natural if backend == Backend::Sqlite && key_lookup(&search.predicate) => {
            "+o.sort_key, o.id".to_string()
        }
        Order::Natural => "o.sort_key, o.id".to_string(),
        Order::By {
            field,
            descending,
            fold_case,
        } => {
            let expr = compiler.order_expression(field, *fold_case)?;
            let direction = if *descending { "DESC" } else { "ASC" };
            format!(
                "(CASE WHEN {expr} IS NULL THEN 1 ELSE 0 END), {expr} {direction}, o.id {direction}"
            )
        }
    };
    let limit = search.limit.clamp(1, MAX_PAGE);
    let offset = i64::try_from(search.offset).map_err(|_| invalid("offset too large"))?;
    let companion = if joined.is_some() {
        SELECT_COMPANION
    } else {
        ""
    };
    let sql = format!(
        "SELECT {SELECT}{companion} {from} AND {} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
        conditions.join(" AND ")
    );
    let rows = run(conn, sql, compiler.params).await?;
    let mut found = rows
        .iter()
        .map(|row| {
            let record = record_from(row)?;
            let companion = if joined.is_some() {
                let id: Option<String> = row.try_get("c_id").map_err(backend_error)?;
                match id {
                    Some(_) => Some(record_from_prefixed(row, "c_")?),
                    None => None,
                }
            } else {
                None
            };
            Ok((record, companion))
        })
        .collect::<Result<Vec<Found>>>()?;
    if let (Some(companion), None) = (search.companion, joined)
        && !found.is_empty()
    {
        let mut params = vec![
            Param::Text(tenant.to_string()),
            Param::Text(companion.as_str().to_string()),
        ];
        let mut marks = Vec::with_capacity(found.len());
        for (record, _) in &found {
            params.push(Param::Text(record.id.to_string()));
            marks.push(format!("CAST(${} AS TEXT)", params.len()));
        }
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM objects WHERE tenant = CAST($1 AS TEXT) AND kind = CAST($2 AS TEXT) AND id IN ({})",
            marks.join(", ")
        );
        let mut companions: std::collections::HashMap<uuid::Uuid, tessera_store::Record> =
            run(conn, sql, params)
                .await?
                .iter()
                .map(|row| record_from(row).map(|r| (r.id, r)))
                .collect::<Result<_>>()?;
        for (record, slot) in &mut found {
            *slot = companions.remove(&record.id);
        }
    }
    Ok(found)
}

fn is_companion(field: &Field) -> bool {
    matches!(
        field,
        Field::CompanionId
            | Field::CompanionModified
            | Field::CompanionKey1
            | Field::CompanionKey2
            | Field::CompanionData(_)
    )
}

/// Whether a predicate reads the companion's row (an equality on its keys is an
/// id lookup of its own, which does not).
fn reads_companion(predicate: &Predicate) -> bool {
    match predicate {
        Predicate::Test {
            field: Field::CompanionKey1 | Field::CompanionKey2,
            test: Test::Eq(Scalar::Text(_)),
            fold_case: false,
        } => false,
        Predicate::Test { field, .. } => is_companion(field),
        Predicate::AnyElement { array, element } => is_companion(array) || reads_companion(element),
        Predicate::And(items) | Predicate::Or(items) => items.iter().any(reads_companion),
        Predicate::Not(inner) => reads_companion(inner),
        Predicate::True | Predicate::LinkTo { .. } | Predicate::LinkFrom { .. } => false,
    }
}

/// Whether a predicate holds an equality on a key (the record's key1, the
/// companion's key1 or key2) that every match must meet.
fn key_lookup(predicate: &Predicate) -> bool {
    match predicate {
        Predicate::Test {
            field: Field::Key1 | Field::CompanionKey1 | Field::CompanionKey2,
            test: Test::Eq(Scalar::Text(_)),
            fold_case: false,
        } => true,
        Predicate::And(items) => items.iter().any(key_lookup),
        _ => false,
    }
}

pub async fn count(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant: TenantId,
    kind: Kind,
    predicate: &Predicate,
    companion: Option<Kind>,
) -> Result<u64> {
    let mut compiler = Compiler::new(backend, tenant, companion);
    let joined = companion.filter(|_| reads_companion(predicate));
    let from = from_clause(&mut compiler, tenant, kind, joined);
    let condition = compiler.predicate(predicate, None)?;
    let sql = format!("SELECT COUNT(*) AS n {from} AND {condition}");
    let rows = run(conn, sql, compiler.params).await?;
    let n: i64 = rows
        .first()
        .ok_or_else(|| invalid("no count"))?
        .try_get("n")
        .map_err(backend_error)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

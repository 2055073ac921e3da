//! HR files as a source of truth: an export (CSV with a header row, or JSON)
//! read into rows, mapped through an attribute mapping, and matched to the
//! directory's users by an anchor (`employeeId`), giving a plan: who is made,
//! who changes and how, who stays as is, which rows fail and why.
//!
//! A plan is what a preview shows and what a run applies. It is *held* when it
//! would change more than the allowed share of the users the file anchors to,
//! so an export gone wrong (a column emptied, another system's file) waits for
//! an administrator instead of rewriting the directory. Users the file does not
//! name are left alone (leaving is the leaver workflow's, by
//! `employeeLeaveDateTime`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::expression::{Attributes, Env, Val};
use crate::mapping::{Compiled, MappingError, Output, SourceSchema};

/// The most rows a file may hold (as the CSV reader of bulk imports).
pub const MAX_ROWS: usize = 50_000;
/// The most columns a file may hold (as the CSV reader of bulk imports).
pub const MAX_COLUMNS: usize = 64;
/// The longest column name.
const MAX_COLUMN_LEN: usize = 128;

/// How an HR system exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Format {
    /// Comma-separated, a header row naming the columns (RFC 4180).
    #[default]
    Csv,
    /// An array of objects, or an object holding one such array (nested objects
    /// are read as `outer.inner` columns, arrays of values as lists).
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct FileError {
    pub line: Option<usize>,
    pub message: String,
}

fn file_error<T>(line: Option<usize>, message: impl Into<String>) -> Result<T, FileError> {
    Err(FileError {
        line,
        message: message.into(),
    })
}

/// One row of an HR file: its values by column (columns matched without regard
/// to case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Where the row starts (CSV line, or the JSON array's position from 1).
    pub line: usize,
    values: BTreeMap<String, Val>,
}

impl Attributes for Row {
    fn value(&self, name: &str) -> Val {
        self.values
            .get(&name.trim().to_lowercase())
            .cloned()
            .unwrap_or(Val::Null)
    }
}

/// An HR file read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrFile {
    /// The columns as the file names them.
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

/// What a file's columns are, as a mapping's source.
impl SourceSchema for HrFile {
    fn check(&self, attribute: &str) -> Result<(), String> {
        let wanted = attribute.trim().to_lowercase();
        if self.columns.iter().any(|c| c.to_lowercase() == wanted) {
            Ok(())
        } else {
            Err(format!(
                "the file has no column {attribute:?} (it has {})",
                self.columns.join(", ")
            ))
        }
    }
}

/// Any column name, for checking a mapping before a file is seen.
pub struct AnyColumns;

impl SourceSchema for AnyColumns {
    fn check(&self, attribute: &str) -> Result<(), String> {
        let name = attribute.trim();
        if name.is_empty() || name.chars().count() > MAX_COLUMN_LEN {
            return Err(format!(
                "a column is named in 1 to {MAX_COLUMN_LEN} characters"
            ));
        }
        Ok(())
    }
}

fn cell(text: &str) -> Val {
    let text = text.trim();
    if text.is_empty() {
        Val::Null
    } else {
        Val::Text(text.chars().take(crate::expression::MAX_TEXT).collect())
    }
}

/// Reads an HR file.
pub fn read(format: Format, text: &str) -> Result<HrFile, FileError> {
    match format {
        Format::Csv => read_csv(text),
        Format::Json => read_json(text),
    }
}

fn read_csv(text: &str) -> Result<HrFile, FileError> {
    let records = tessera_directory::bulk::records(text).map_err(|p| FileError {
        line: Some(p.line),
        message: p.message,
    })?;
    let mut records = records.into_iter();
    let Some((_, header)) = records.next() else {
        return file_error(None, "the file is empty: its first row names the columns");
    };
    // Spreadsheets write empty cells at the end of a header: those columns are
    // left out.
    let named = header
        .iter()
        .rposition(|c| !c.trim().is_empty())
        .map_or(0, |last| last + 1);
    let columns: Vec<String> = header[..named]
        .iter()
        .map(|c| c.trim().to_string())
        .collect();
    check_columns(&columns)?;
    let keys: Vec<String> = columns.iter().map(|c| c.to_lowercase()).collect();
    let mut rows = Vec::new();
    for (line, fields) in records {
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if fields[keys.len().min(fields.len())..]
            .iter()
            .any(|f| !f.trim().is_empty())
        {
            return file_error(
                Some(line),
                format!("{} values, but {} columns", fields.len(), keys.len()),
            );
        }
        if rows.len() >= MAX_ROWS {
            return file_error(Some(line), format!("a file holds at most {MAX_ROWS} rows"));
        }
        let values = keys
            .iter()
            .zip(fields.iter())
            .map(|(k, v)| (k.clone(), cell(v)))
            .filter(|(_, v)| *v != Val::Null)
            .collect();
        rows.push(Row { line, values });
    }
    Ok(HrFile { columns, rows })
}

fn check_columns(columns: &[String]) -> Result<(), FileError> {
    if columns.len() > MAX_COLUMNS {
        return file_error(Some(1), format!("at most {MAX_COLUMNS} columns"));
    }
    let mut seen = BTreeSet::new();
    for column in columns {
        if column.is_empty() || column.chars().count() > MAX_COLUMN_LEN {
            return file_error(
                Some(1),
                format!("a column is named in 1 to {MAX_COLUMN_LEN} characters"),
            );
        }
        if !seen.insert(column.to_lowercase()) {
            return file_error(Some(1), format!("the column {column:?} is named twice"));
        }
    }
    Ok(())
}

fn read_json(text: &str) -> Result<HrFile, FileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let document: Value = serde_json::from_str(text)
        .or_else(|e| file_error(Some(e.line()), format!("not JSON: {e}")))?;
    let items = match document {
        Value::Array(items) => items,
        Value::Object(object) => {
            let mut arrays = object.into_iter().filter_map(|(_, v)| match v {
                Value::Array(items) => Some(items),
                _ => None,
            });
            match (arrays.next(), arrays.next()) {
                (Some(items), None) => items,
                _ => {
                    return file_error(
                        None,
                        "a JSON file is an array of people, or an object holding one such array",
                    );
                }
            }
        }
        _ => return file_error(None, "a JSON file is an array of people"),
    };
    if items.len() > MAX_ROWS {
        return file_error(None, format!("a file holds at most {MAX_ROWS} rows"));
    }
    let mut columns: Vec<String> = Vec::new();
    let mut known: BTreeSet<String> = BTreeSet::new();
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let line = i + 1;
        let Value::Object(object) = item else {
            return file_error(Some(line), "each person is an object");
        };
        let mut flat = Vec::new();
        flatten("", &object, 0, &mut flat);
        let mut values = BTreeMap::new();
        for (name, value) in flat {
            let key = name.to_lowercase();
            if values.contains_key(&key) {
                return file_error(
                    Some(line),
                    format!("{name:?} is named twice (names are matched without regard to case)"),
                );
            }
            if known.insert(key.clone()) {
                columns.push(name);
                if columns.len() > MAX_COLUMNS {
                    return file_error(Some(line), format!("at most {MAX_COLUMNS} columns"));
                }
            }
            if value != Val::Null {
                values.insert(key, value);
            }
        }
        rows.push(Row { line, values });
    }
    check_columns(&columns)?;
    Ok(HrFile { columns, rows })
}

/// Nested objects as `outer.inner`, arrays of values as lists (three levels).
fn flatten(prefix: &str, object: &Map<String, Value>, depth: usize, out: &mut Vec<(String, Val)>) {
    for (key, value) in object {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
            _ => None,
        };
        match value {
            Value::Object(inner) if depth < 3 => flatten(&name, inner, depth + 1, out),
            Value::Array(items) => {
                let texts: Vec<String> = items
                    .iter()
                    .filter_map(scalar)
                    .take(crate::expression::MAX_LIST)
                    .collect();
                out.push((
                    name,
                    if texts.is_empty() {
                        Val::Null
                    } else {
                        Val::List(texts)
                    },
                ));
            }
            Value::Bool(b) => out.push((name, Val::Bool(*b))),
            other => out.push((name, scalar(other).map_or(Val::Null, |s| cell(&s)))),
        }
    }
}

/// A user the anchor finds in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub id: uuid::Uuid,
    /// The user's attributes (Graph JSON).
    pub attributes: Map<String, Value>,
}

/// One attribute a row changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub attribute: String,
    pub before: Value,
    pub after: Value,
}

/// What a row comes to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Step {
    /// A new user with these attributes (`userPrincipalName` chosen from
    /// `candidates` when the mapping offers several).
    Create {
        attributes: Map<String, Value>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        candidates: Vec<String>,
    },
    /// The user changes these attributes.
    Update {
        id: uuid::Uuid,
        changes: Vec<Change>,
    },
    Unchanged {
        id: uuid::Uuid,
    },
    /// The row cannot be applied.
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRow {
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    #[serde(flatten)]
    pub step: Step,
}

/// What a file comes to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub creates: usize,
    pub updates: usize,
    pub unchanged: usize,
    pub failed: usize,
    /// Users the file's anchors find in the directory.
    pub matched: usize,
    /// Updates as a share of the users the directory has with an anchor, in percent.
    pub changed_percent: f64,
    /// More changed than allowed: the run waits for an administrator.
    pub held: bool,
    pub rows: Vec<PlannedRow>,
}

/// The value at a dotted target in Graph JSON (`employeeOrgData.division`,
/// `customSecurityAttributes.HR.level`).
fn at<'a>(attributes: &'a Map<String, Value>, target: &str) -> &'a Value {
    let mut parts = target.split('.');
    let Some(first) = parts.next() else {
        return &Value::Null;
    };
    let mut value = attributes.get(first).unwrap_or(&Value::Null);
    for part in parts {
        value = value.get(part).unwrap_or(&Value::Null);
    }
    value
}

/// Compares two values as the directory keeps them (text without regard to
/// case only where the directory compares so).
fn same(target: &str, a: &Value, b: &Value) -> bool {
    match (target, a, b) {
        ("userPrincipalName" | "managerId", Value::String(x), Value::String(y)) => {
            x.eq_ignore_ascii_case(y)
        }
        _ => a == b,
    }
}

/// Plans a file: `anchor` is the target the rows are matched by
/// (`employeeId`); `existing` the directory's users by that anchor's value;
/// several users sharing one anchor make its rows fail); `anchored_users` how
/// many users have one (the share's denominator); `max_changed_percent` the
/// share of them a run may change (update, or make anew) without an
/// administrator. An initial load (nobody anchored yet) is not held.
pub fn plan(
    file: &HrFile,
    mapping: &Compiled,
    anchor: &str,
    env: &Env,
    existing: &BTreeMap<String, Vec<Existing>>,
    anchored_users: usize,
    max_changed_percent: f64,
) -> Plan {
    let mut rows = Vec::with_capacity(file.rows.len());
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for row in &file.rows {
        rows.push(plan_row(row, mapping, anchor, env, existing, &mut seen));
    }
    let count = |f: fn(&Step) -> bool| rows.iter().filter(|r| f(&r.step)).count();
    let creates = count(|s| matches!(s, Step::Create { .. }));
    let updates = count(|s| matches!(s, Step::Update { .. }));
    let unchanged = count(|s| matches!(s, Step::Unchanged { .. }));
    let failed = count(|s| matches!(s, Step::Failed { .. }));
    // New users count too: a file whose anchors no longer match (reformatted
    // ids, another system's file) would otherwise make everyone again unheld.
    let changed_percent = if anchored_users == 0 {
        0.0
    } else {
        (updates + creates) as f64 * 100.0 / anchored_users as f64
    };
    Plan {
        creates,
        updates,
        unchanged,
        failed,
        matched: updates + unchanged,
        changed_percent,
        held: changed_percent > max_changed_percent,
        rows,
    }
}

fn plan_row(
    row: &Row,
    mapping: &Compiled,
    anchor: &str,
    env: &Env,
    existing: &BTreeMap<String, Vec<Existing>>,
    seen: &mut BTreeSet<String>,
) -> PlannedRow {
    let failed = |anchor: Option<String>, reason: String| PlannedRow {
        line: row.line,
        anchor,
        step: Step::Failed { reason },
    };
    let Some(anchor_rule) = mapping.of(anchor) else {
        return failed(
            None,
            format!("the mapping does not map the anchor {anchor}"),
        );
    };
    let key = match anchor_rule.output(row, env, true) {
        Ok(Output::Set(Value::String(key))) if !key.trim().is_empty() => key.trim().to_string(),
        Ok(_) => return failed(None, format!("the row gives no {anchor}")),
        Err(error) => return failed(None, error.to_string()),
    };
    if !seen.insert(key.to_lowercase()) {
        return failed(Some(key), format!("another row has the same {anchor}"));
    }
    let found = match existing.get(&key.to_lowercase()).map(Vec::as_slice) {
        None | Some([]) => None,
        Some([one]) => Some(one),
        Some(several) => {
            let ids: Vec<String> = several.iter().map(|u| u.id.to_string()).collect();
            return failed(
                Some(key),
                format!(
                    "{} users have this {anchor}: {}",
                    several.len(),
                    ids.join(", ")
                ),
            );
        }
    };
    let outputs = match mapping.apply(row, env, found.is_none()) {
        Ok(outputs) => outputs,
        Err(MappingError { problems }) => {
            let reason = problems
                .iter()
                .map(|(at, what)| format!("{at}: {what}"))
                .collect::<Vec<_>>()
                .join("; ");
            return failed(Some(key), reason);
        }
    };
    match found {
        None => {
            let mut values: Vec<(&str, Value)> = Vec::new();
            let mut candidates = Vec::new();
            for (target, output) in outputs {
                match output {
                    Output::Set(value) => values.push((target.name.as_str(), value)),
                    Output::Unique(list) => candidates = list,
                    Output::Leave => {}
                }
            }
            PlannedRow {
                line: row.line,
                anchor: Some(key),
                step: Step::Create {
                    attributes: crate::mapping::graph_patch(values),
                    candidates,
                },
            }
        }
        Some(user) => {
            let mut changes = Vec::new();
            for (target, output) in outputs {
                // A unique name is chosen when a user is made, not changed after.
                let Output::Set(after) = output else {
                    continue;
                };
                let before = at(&user.attributes, &target.name);
                if !same(&target.name, before, &after) {
                    changes.push(Change {
                        attribute: target.name.clone(),
                        before: before.clone(),
                        after,
                    });
                }
            }
            PlannedRow {
                line: row.line,
                anchor: Some(key),
                step: if changes.is_empty() {
                    Step::Unchanged { id: user.id }
                } else {
                    Step::Update {
                        id: user.id,
                        changes,
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! The sign-in log and the audit log in the console: filters, cursor paging, each
//! entry's details (a sign-in's Conditional Access explanation, an event's
//! changes), CSV export of what the filters select, and the audit chain's check.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;
use tessera_core::Timestamp;
use tessera_service::audit::{AuditEntry, AuditFilter, VerifyReport};
use tessera_service::authn::{SignInEntry, SignInFilter};
use tessera_service::{Page, ServiceError};
use uuid::Uuid;

use super::explanation::ExplanationView;
use super::{Admin, refused};
use crate::pages;
use crate::state::AppState;

const PAGE_SIZE: u32 = 50;
/// The most rows one CSV export holds.
pub(crate) const CSV_ROWS: usize = 10_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/sign-ins", get(sign_ins))
        .route("/admin/sign-ins.csv", get(sign_ins_csv))
        .route("/admin/audit", get(audit))
        .route("/admin/audit.csv", get(audit_csv))
        .route("/admin/audit/verify", get(verify))
}

/// The sign-in log's filters, as the form sends them.
#[derive(Deserialize, Default, Clone)]
struct SignInsQuery {
    user: Option<String>,
    app: Option<String>,
    result: Option<String>,
    failure_code: Option<String>,
    correlation_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A time as the form's `datetime-local` field sends it (taken as UTC), or RFC 3339.
fn time(field: &str, value: &Option<String>) -> Result<Option<Timestamp>, String> {
    let Some(text) = given(value) else {
        return Ok(None);
    };
    let full = if text.len() == 16 {
        format!("{text}:00Z")
    } else {
        text.clone()
    };
    serde_json::from_value::<Timestamp>(Value::String(full))
        .map(Some)
        .map_err(|_| format!("{field}: “{text}” is not a date and time"))
}

/// Filters as a query string (for the next page and the CSV link): the ones given,
/// and the cursor.
fn filter_query(filters: &[(&str, &Option<String>)], cursor: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in filters {
        if let Some(value) = given(value) {
            query.append_pair(name, &value);
        }
    }
    if let Some(cursor) = cursor {
        query.append_pair("cursor", cursor);
    }
    query.finish()
}

/// What a log page shows of a query's answer: the rows and the next page's query,
/// or why the filters were refused.
struct Answer<R> {
    rows: Vec<R>,
    next: Option<String>,
    error: Option<String>,
    status: StatusCode,
}

impl<R> Answer<R> {
    fn refused(message: String) -> Answer<R> {
        Answer {
            rows: Vec::new(),
            next: None,
            error: Some(message),
            status: StatusCode::BAD_REQUEST,
        }
    }

    /// The page read, or a refusal of the filters; any other failure is the error page.
    fn of<T>(
        result: Result<Page<T>, ServiceError>,
        next: impl FnOnce(&str) -> String,
        row: impl FnMut(T) -> R,
    ) -> Result<Answer<R>, Response> {
        match result {
            Ok(page) => Ok(Answer {
                next: page.next_cursor.as_deref().map(next),
                rows: page.value.into_iter().map(row).collect(),
                error: None,
                status: StatusCode::OK,
            }),
            Err(ServiceError::Validation(errors)) => Ok(Answer::refused(
                ServiceError::Validation(errors).to_string(),
            )),
            Err(error) => Err(refused(error)),
        }
    }
}

impl SignInsQuery {
    fn filter(&self, limit: u32) -> Result<SignInFilter, String> {
        let (user_id, user_principal_name) = match given(&self.user) {
            Some(user) => match Uuid::parse_str(&user) {
                Ok(id) => (Some(id), None),
                Err(_) => (None, Some(user)),
            },
            None => (None, None),
        };
        Ok(SignInFilter {
            user_id,
            user_principal_name,
            result: given(&self.result),
            app_display_name: given(&self.app),
            failure_code: given(&self.failure_code),
            correlation_id: given(&self.correlation_id),
            since: time("From", &self.since)?,
            until: time("To", &self.until)?,
            cursor: given(&self.cursor),
            limit: Some(limit),
        })
    }

    /// The filters as a query string (for the next page and the CSV link).
    fn query(&self, cursor: Option<&str>) -> String {
        filter_query(
            &[
                ("user", &self.user),
                ("app", &self.app),
                ("result", &self.result),
                ("failure_code", &self.failure_code),
                ("correlation_id", &self.correlation_id),
                ("since", &self.since),
                ("until", &self.until),
            ],
            cursor,
        )
    }
}

/// One sign-in as the log page lists it.
struct SignInRow {
    entry: SignInEntry,
    explanation: Option<ExplanationView>,
}

#[derive(Template)]
#[template(path = "console/sign_ins.html")]
struct SignInsPage<'a> {
    admin: &'a Admin,
    filters: SignInsQuery,
    rows: Vec<SignInRow>,
    next: Option<String>,
    csv: String,
    error: Option<String>,
}

async fn sign_ins(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<SignInsQuery>,
) -> Response {
    let answer = match query.filter(PAGE_SIZE) {
        Err(message) => Answer::refused(message),
        Ok(filter) => match Answer::of(
            state.app.sign_in.query_log(&admin.ctx, &filter).await,
            |cursor| query.query(Some(cursor)),
            |entry: SignInEntry| SignInRow {
                explanation: entry
                    .applied_conditional_access_policies
                    .as_ref()
                    .and_then(ExplanationView::of),
                entry,
            },
        ) {
            Ok(answer) => answer,
            Err(page) => return page,
        },
    };
    let csv = query.query(None);
    pages::page(
        answer.status,
        &SignInsPage {
            admin: &admin,
            filters: query,
            rows: answer.rows,
            next: answer.next,
            csv,
            error: answer.error,
        },
    )
}

/// The CSV of what the filters select, newest first, at most `CSV_ROWS` rows.
async fn sign_ins_csv(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<SignInsQuery>,
) -> Response {
    let mut filter = match query.filter(1000) {
        Ok(filter) => filter,
        Err(message) => return pages::error_page(StatusCode::BAD_REQUEST, &message),
    };
    let mut csv = Csv::new(&[
        "time",
        "user",
        "application",
        "result",
        "failureCode",
        "failureReason",
        "methods",
        "conditionalAccess",
        "address",
        "correlationId",
    ]);
    loop {
        let page: Page<SignInEntry> = match state.app.sign_in.query_log(&admin.ctx, &filter).await {
            Ok(page) => page,
            Err(error) => return refused(error),
        };
        for e in &page.value {
            csv.row(&[
                &e.created_date_time.to_string(),
                &e.user_principal_name,
                &e.app_display_name,
                &e.result,
                e.failure_code.as_deref().unwrap_or(""),
                e.failure_reason.as_deref().unwrap_or(""),
                &e.authentication_methods.join(" "),
                e.conditional_access_status.as_deref().unwrap_or(""),
                e.client_address.as_deref().unwrap_or(""),
                &e.correlation_id,
            ]);
        }
        match page.next_cursor {
            Some(cursor) if csv.rows < CSV_ROWS => filter.cursor = Some(cursor),
            _ => break,
        }
    }
    csv.response("sign-ins.csv")
}

/// The audit log's filters, as the form sends them.
#[derive(Deserialize, Default, Clone)]
struct AuditQuery {
    actor: Option<String>,
    target: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
}

impl AuditQuery {
    fn filter(&self, limit: u32) -> Result<AuditFilter, String> {
        Ok(AuditFilter {
            actor_id: given(&self.actor),
            target_id: given(&self.target),
            action: given(&self.action),
            since: time("From", &self.since)?,
            until: time("To", &self.until)?,
            cursor: given(&self.cursor),
            limit: Some(limit),
        })
    }

    fn query(&self, cursor: Option<&str>) -> String {
        filter_query(
            &[
                ("actor", &self.actor),
                ("target", &self.target),
                ("action", &self.action),
                ("since", &self.since),
                ("until", &self.until),
            ],
            cursor,
        )
    }
}

/// One audit event as the page lists it.
struct AuditRow {
    seq: i64,
    time: String,
    actor: String,
    action: String,
    target: String,
    correlation_id: String,
    /// (attribute, before, after).
    changes: Vec<(String, String, String)>,
    details: Option<String>,
}

impl AuditRow {
    fn of(entry: &AuditEntry) -> AuditRow {
        let event = &entry.event;
        let text = |v: &Value| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let at = |path: &[&str]| {
            let mut value = event;
            for key in path {
                value = value.get(key).unwrap_or(&Value::Null);
            }
            text(value)
        };
        let changes = event
            .get("changes")
            .and_then(Value::as_array)
            .map(|changes| {
                changes
                    .iter()
                    .map(|c| {
                        (
                            text(c.get("attribute").unwrap_or(&Value::Null)),
                            text(c.get("oldValue").unwrap_or(&Value::Null)),
                            text(c.get("newValue").unwrap_or(&Value::Null)),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let details = event
            .get("details")
            .filter(|d| !d.is_null())
            .and_then(|d| serde_json::to_string_pretty(d).ok());
        let target = match (at(&["target", "type"]), at(&["target", "displayName"])) {
            (kind, name) if kind.is_empty() => name,
            (kind, name) => format!("{name} ({kind})"),
        };
        AuditRow {
            seq: entry.seq,
            time: at(&["time"]),
            actor: at(&["actor", "displayName"]),
            action: at(&["action"]),
            target,
            correlation_id: at(&["correlationId"]),
            changes,
            details,
        }
    }
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage<'a> {
    admin: &'a Admin,
    filters: AuditQuery,
    rows: Vec<AuditRow>,
    next: Option<String>,
    csv: String,
    error: Option<String>,
}

async fn audit(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<AuditQuery>,
) -> Response {
    let answer = match query.filter(PAGE_SIZE) {
        Err(message) => Answer::refused(message),
        Ok(filter) => match Answer::of(
            state.app.directory.query_audit(&admin.ctx, &filter).await,
            |cursor| query.query(Some(cursor)),
            |entry: AuditEntry| AuditRow::of(&entry),
        ) {
            Ok(answer) => answer,
            Err(page) => return page,
        },
    };
    let csv = query.query(None);
    pages::page(
        answer.status,
        &AuditPage {
            admin: &admin,
            filters: query,
            rows: answer.rows,
            next: answer.next,
            csv,
            error: answer.error,
        },
    )
}

async fn audit_csv(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<AuditQuery>,
) -> Response {
    let mut filter = match query.filter(1000) {
        Ok(filter) => filter,
        Err(message) => return pages::error_page(StatusCode::BAD_REQUEST, &message),
    };
    let mut csv = Csv::new(&["seq", "time", "actor", "action", "target", "correlationId"]);
    loop {
        let page = match state.app.directory.query_audit(&admin.ctx, &filter).await {
            Ok(page) => page,
            Err(error) => return refused(error),
        };
        for entry in &page.value {
            let row = AuditRow::of(entry);
            csv.row(&[
                &row.seq.to_string(),
                &row.time,
                &row.actor,
                &row.action,
                &row.target,
                &row.correlation_id,
            ]);
        }
        match page.next_cursor {
            Some(cursor) if csv.rows < CSV_ROWS => filter.cursor = Some(cursor),
            _ => break,
        }
    }
    csv.response("audit.csv")
}

#[derive(Template)]
#[template(path = "console/verify.html")]
struct VerifyPage<'a> {
    admin: &'a Admin,
    report: VerifyReport,
    problem: Option<String>,
}

async fn verify(State(state): State<AppState>, admin: Admin) -> Response {
    match state.app.directory.verify_audit(&admin.ctx).await {
        Ok(report) => {
            let problem = report
                .first_problem
                .as_ref()
                .map(|p| serde_json::to_string(p).unwrap_or_default());
            pages::page(
                StatusCode::OK,
                &VerifyPage {
                    admin: &admin,
                    report,
                    problem,
                },
            )
        }
        Err(error) => refused(error),
    }
}

/// A CSV document (RFC 4180). A cell that a spreadsheet would take for a formula
/// (`=`, `+`, `-`, `@`, tab, carriage return first) is prefixed with `'`, so an
/// exported log cannot run anything a user name or user agent carried into it.
pub(crate) struct Csv {
    text: String,
    pub(crate) rows: usize,
}

impl Csv {
    pub(crate) fn new(header: &[&str]) -> Csv {
        let mut csv = Csv {
            text: String::new(),
            rows: 0,
        };
        csv.row(header);
        csv.rows = 0;
        csv
    }

    pub(crate) fn row(&mut self, cells: &[&str]) {
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let guarded = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{cell}")
            } else {
                (*cell).to_string()
            };
            if guarded.contains([',', '"', '\n', '\r']) {
                self.text.push('"');
                self.text.push_str(&guarded.replace('"', "\"\""));
                self.text.push('"');
            } else {
                self.text.push_str(&guarded);
            }
        }
        self.text.push_str("\r\n");
        self.rows += 1;
    }

    pub(crate) fn response(self, file_name: &'static str) -> Response {
        let mut response = (StatusCode::OK, self.text).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_disarms_formulas() {
        let mut csv = Csv::new(&["a", "b"]);
        csv.row(&["=HYPERLINK(\"x\")", "plain, with comma"]);
        csv.row(&["-1", "line\nbreak"]);
        assert_eq!(
            csv.text,
            "a,b\r\n\"'=HYPERLINK(\"\"x\"\")\",\"plain, with comma\"\r\n'-1,\"line\nbreak\"\r\n"
        );
        assert_eq!(csv.rows, 2);
    }

    #[test]
    fn times_from_the_form_are_utc() {
        let t = time("From", &Some("2026-12-04T10:30".to_string()))
            .unwrap()
            .unwrap();
        assert_eq!(t.to_string(), "2026-12-04T10:30:00Z");
        assert!(time("From", &Some("yesterday".to_string())).is_err());
        assert!(time("From", &Some(" ".to_string())).unwrap().is_none());
    }
}

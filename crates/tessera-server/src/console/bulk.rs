//! Bulk creation of users from a CSV file (Entra's bulk-create template, or Graph
//! property names as headers), with its progress shown as it goes.
//!
//! The whole file is read and checked first (`tessera_directory::bulk`: every
//! row as the directory will check it; then against the directory: names already
//! taken, managers that do not exist): a file with any problem creates nobody, and
//! the page lists every problem by line. A good file is created 1,000 users a
//! transaction (the directory's import, with an
//! audit event for each user); the answer is streamed, so the page shows how far
//! the import has got while it runs (and with a style sheet, only the latest step).
//! Should a batch be refused (a principal name taken meanwhile), the import stops
//! there and the page says exactly which lines were created and which were not.

use std::convert::Infallible;

use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use tessera_directory::bulk::{self, BulkProblem, BulkUser};
use tessera_directory::model::DirectoryScope;
use tessera_directory::roles::action;
use tessera_service::ServiceError;

use super::forms::Uploaded;
use super::{Admin, refused};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users/import", get(form).post(import))
        .route("/admin/users/import/template.csv", get(template))
}

/// Users created in one transaction.
const BATCH: usize = 1000;

#[derive(Template)]
#[template(path = "console/users_import.html")]
struct ImportForm<'a> {
    admin: &'a Admin,
    error: Option<String>,
    problems: Vec<BulkProblem>,
}

async fn form(admin: Admin) -> Response {
    pages::page(
        StatusCode::OK,
        &ImportForm {
            admin: &admin,
            error: None,
            problems: Vec::new(),
        },
    )
}

/// Entra's bulk-create template, with one example row.
async fn template() -> Response {
    let mut csv = super::logs::Csv::new(&["version:v1.0"]);
    csv.row(&[
        "Name [displayName] Required",
        "User name [userPrincipalName] Required",
        "Block sign in (Yes/No) [accountEnabled] Required",
        "First name [givenName]",
        "Last name [surname]",
        "Job title [jobTitle]",
        "Department [department]",
        "Usage location [usageLocation]",
        "Employee id [employeeId]",
        "Mail [mail]",
    ]);
    csv.row(&[
        "Ada Lovelace",
        "ada@contoso.com",
        "No",
        "Ada",
        "Lovelace",
        "Analyst",
        "Research",
        "GB",
        "E1001",
        "ada@contoso.com",
    ]);
    csv.response("users-template.csv")
}

fn refusal(admin: &Admin, error: &str, problems: Vec<BulkProblem>) -> Response {
    pages::page(
        StatusCode::BAD_REQUEST,
        &ImportForm {
            admin,
            error: Some(error.to_string()),
            problems,
        },
    )
}

#[derive(Template)]
#[template(path = "console/users_import_run.html")]
struct RunPage<'a> {
    admin: &'a Admin,
    total: usize,
    warnings: Vec<String>,
}

/// One step of the import, streamed into the page.
#[derive(Template)]
#[template(
    source = r#"<p class="step">Created {{ created }} of {{ total }} users…</p>
"#,
    ext = "html"
)]
struct Step {
    created: usize,
    total: usize,
}

/// The end of the import.
#[derive(Template)]
#[template(path = "console/users_import_end.html")]
struct End {
    created: usize,
    total: usize,
    /// Lines created, when not all were: (first, last).
    created_lines: Option<(usize, usize)>,
    /// Why the import stopped, with the lines that were not created from.
    stopped: Option<(String, usize)>,
}

const STEPS_MARK: &str = "<!--steps-->";
const OUTCOME_MARK: &str = "<!--outcome-->";

/// The tenants with a bulk import under way on this node: one at a time each.
static RUNNING: std::sync::Mutex<Vec<tessera_core::TenantId>> = std::sync::Mutex::new(Vec::new());

/// A tenant's place in `RUNNING`, given back when the import ends.
struct Running(tessera_core::TenantId);

impl Running {
    fn take(tenant: tessera_core::TenantId) -> Option<Running> {
        let mut running = RUNNING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if running.contains(&tenant) {
            return None;
        }
        running.push(tenant);
        Some(Running(tenant))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|t| *t != self.0);
    }
}

async fn import(State(state): State<AppState>, upload: Uploaded) -> Response {
    let Uploaded { admin, parts } = upload;
    // Users are created tenant-wide only (a unit-scoped administrator manages the
    // unit's existing members).
    let may_create = admin.ctx.caller.grants().iter().any(|grant| {
        grant.scope == DirectoryScope::Tenant
            && tessera_directory::roles::built_in(grant.role_id)
                .is_some_and(|role| role.grants(action::USERS_CREATE))
    });
    if !may_create {
        return refused(ServiceError::Forbidden {
            reason: "creating users needs a tenant-wide role that may create them".to_string(),
        });
    }
    let Some(file) = parts
        .iter()
        .find(|p| p.name == "file" && p.file_name.is_some())
    else {
        return refusal(&admin, "Choose a CSV file to upload.", Vec::new());
    };
    let text = match std::str::from_utf8(&file.data) {
        Ok(text) if !text.contains('\0') => text.to_string(),
        _ => {
            return refusal(
                &admin,
                "The file is not UTF-8 text: save it as \"CSV UTF-8\" and try again.",
                Vec::new(),
            );
        }
    };
    // Reading a large file is work for a blocking thread, not the request's.
    let parsed = match tokio::task::spawn_blocking(move || bulk::users(&text)).await {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(problems)) => {
            return refusal(
                &admin,
                "Nothing was created: the file has problems (listed by line).",
                problems,
            );
        }
        Err(error) => return refused(ServiceError::Internal(error.to_string())),
    };
    // What only the directory knows: names already taken, managers that do not
    // exist. (A name taken after this check stops the import at its batch.)
    let problems = match against_directory(&state, &admin, &parsed.users).await {
        Ok(problems) => problems,
        Err(error) => return refused(error),
    };
    if !problems.is_empty() {
        return refusal(
            &admin,
            "Nothing was created: the file has problems (listed by line).",
            problems,
        );
    }
    let Some(running) = Running::take(admin.ctx.tenant) else {
        return refusal(
            &admin,
            "Another bulk creation is under way: try again when it has ended.",
            Vec::new(),
        );
    };
    let total = parsed.users.len();
    let page = match (RunPage {
        admin: &admin,
        total,
        warnings: parsed.warnings,
    })
    .render()
    {
        Ok(page) => page,
        Err(error) => return refused(ServiceError::Internal(error.to_string())),
    };
    let (head, rest) = page.split_once(STEPS_MARK).unwrap_or((&page, ""));
    let (middle, tail) = rest.split_once(OUTCOME_MARK).unwrap_or((rest, ""));
    let (head, middle, tail) = (head.to_string(), middle.to_string(), tail.to_string());
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(8);
    let ctx = admin.ctx.clone();
    let app = state.app.clone();
    let users = parsed.users;
    // The import runs to its end even if the browser goes away: a batch is
    // never left half done, and the audit trail has every user created.
    tokio::spawn(async move {
        let _running = running;
        // A browser that stops reading does not hold the import up.
        let send = |text: String| {
            let sender = sender.clone();
            async move {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    sender.send(Bytes::from(text)),
                )
                .await;
            }
        };
        send(head).await;
        let mut created = 0;
        let mut stopped = None;
        for batch in users.chunks(BATCH) {
            let body =
                json!({ "users": batch.iter().map(|u| u.user.clone()).collect::<Vec<Value>>() });
            match app.directory.import_users(&ctx, body).await {
                Ok(ids) => {
                    created += ids.len();
                    send(Step { created, total }.render().unwrap_or_default()).await;
                }
                Err(error) => {
                    let first = batch.first().map_or(0, |u| u.line);
                    let why = match &error {
                        ServiceError::Validation(_)
                        | ServiceError::Conflict { .. }
                        | ServiceError::Forbidden { .. } => with_lines(&error.to_string(), batch),
                        _ => {
                            tracing::error!(%error, "a bulk import of users stopped");
                            "the server could not go on (its log says why)".to_string()
                        }
                    };
                    stopped = Some((why, first));
                    break;
                }
            }
        }
        send(middle).await;
        let created_lines =
            (stopped.is_some() && created > 0).then(|| (users[0].line, users[created - 1].line));
        let end = End {
            created,
            total,
            created_lines,
            stopped,
        };
        send(end.render().unwrap_or_default()).await;
        send(tail).await;
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(bytes), receiver))
    });
    pages::html(StatusCode::OK, Body::from_stream(stream))
}

/// The lines whose user principal name is taken or whose manager does not exist,
/// read with the administrator's own authorization (up to the problems a page
/// lists).
async fn against_directory(
    state: &AppState,
    admin: &Admin,
    users: &[BulkUser],
) -> Result<Vec<BulkProblem>, ServiceError> {
    let directory = &state.app.directory;
    let mut problems = Vec::new();
    let mut managers: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    for user in users {
        if problems.len() >= 100 {
            break;
        }
        let name = user.user["userPrincipalName"].as_str().unwrap_or_default();
        match directory.get_user_by_principal_name(&admin.ctx, name).await {
            Ok(_) => problems.push(BulkProblem {
                line: user.line,
                message: format!("{name} is already a user"),
            }),
            Err(ServiceError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
        if let Some(manager) = user.user["managerId"].as_str() {
            let exists = match managers.get(manager) {
                Some(exists) => *exists,
                None => {
                    let exists = match uuid::Uuid::parse_str(manager) {
                        Ok(id) => match directory
                            .get::<tessera_directory::model::UserSpec>(&admin.ctx, id)
                            .await
                        {
                            Ok(_) => true,
                            Err(ServiceError::NotFound { .. }) => false,
                            Err(error) => return Err(error),
                        },
                        Err(_) => false,
                    };
                    managers.insert(manager.to_string(), exists);
                    exists
                }
            };
            if !exists {
                problems.push(BulkProblem {
                    line: user.line,
                    message: format!("managerId: no user has the id {manager}"),
                });
            }
        }
    }
    Ok(problems)
}

/// A refusal of a batch with `users[i]` turned into the file's line numbers.
fn with_lines(message: &str, batch: &[BulkUser]) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("users[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "users[".len()..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        match (
            digits.parse::<usize>().ok(),
            after[digits.len()..].strip_prefix(']'),
        ) {
            (Some(index), Some(tail)) if index < batch.len() => {
                out.push_str(&format!("line {}", batch[index].line));
                rest = tail.strip_prefix('.').map_or(tail, |t| {
                    out.push(' ');
                    t
                });
            }
            _ => {
                out.push_str("users[");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_lines_of_the_file() {
        let batch = vec![
            BulkUser {
                line: 7,
                user: Value::Null,
            },
            BulkUser {
                line: 9,
                user: Value::Null,
            },
        ];
        assert_eq!(
            with_lines(
                "the request is invalid: users[1].mail: not an address",
                &batch
            ),
            "the request is invalid: line 9 mail: not an address"
        );
        assert_eq!(
            with_lines("users[0]: already exists; users[5] users[", &batch),
            "line 7: already exists; users[5] users["
        );
    }
}

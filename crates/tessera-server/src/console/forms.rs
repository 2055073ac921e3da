//! The console's form posts: a url-encoded body of at most 256 KiB, read as
//! name/value pairs (a name may repeat, as checkboxes do), with its anti-forgery
//! token taken out; and uploads (`multipart/form-data`, at most the server's body
//! limit), read whole, with the same checks.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header};
use axum::response::Response;

use super::{Admin, check_origin_and_token};
use crate::pages;
use crate::state::AppState;

const MAX_FORM_BYTES: usize = 256 * 1024;

pub struct ConsoleForm {
    pub csrf: Option<String>,
    pub fields: Vec<(String, String)>,
}

impl ConsoleForm {
    /// The value of `name` (its first, when it repeats), trimmed; `None` when absent
    /// or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every non-blank value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Whether a checkbox named `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, v)| n == name && v == "on")
    }
}

impl<S: Send + Sync> FromRequest<S> for ConsoleForm {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<ConsoleForm, Response> {
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';').next().is_some_and(|t| {
                    t.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        if !form_type {
            return Err(pages::error_page(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "This page only accepts its own forms.",
            ));
        }
        let body = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                pages::error_page(StatusCode::PAYLOAD_TOO_LARGE, "This form is too large.")
            })?;
        let mut csrf = None;
        let mut fields = Vec::new();
        for (name, value) in form_urlencoded::parse(&body) {
            if name == "csrf" {
                csrf.get_or_insert_with(|| value.into_owned());
            } else {
                fields.push((name.into_owned(), value.into_owned()));
            }
        }
        Ok(ConsoleForm { csrf, fields })
    }
}

/// A form post from a signed-in administrator whose anti-forgery token (in the form,
/// or in the `x-csrf-token` header of the page's script) and origin were checked:
/// every console handler that changes anything takes one, so none can forget it.
pub struct Posted {
    pub admin: Admin,
    pub form: ConsoleForm,
}

impl ConsoleForm {
    /// The version the form was read at: an edit or delete without one is refused
    /// rather than applied over someone else's change.
    pub fn version(&self) -> Result<i64, Response> {
        self.get("version")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                pages::error_page(
                    StatusCode::BAD_REQUEST,
                    "This form is incomplete: reload the page.",
                )
            })
    }
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Posted, Response> {
        let (mut parts, body) = req.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let form = ConsoleForm::from_request(Request::from_parts(parts, body), state).await?;
        let sent = form
            .csrf
            .as_deref()
            .or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
        check_origin_and_token(state, &headers, &admin, sent)?;
        Ok(Posted { admin, form })
    }
}

/// One part of an upload: a form field, or a file with its name.
pub struct UploadPart {
    pub name: String,
    pub file_name: Option<String>,
    pub data: axum::body::Bytes,
}

/// An upload from a signed-in administrator, read whole (at most the server's
/// body limit and `MAX_UPLOAD_PARTS` parts), whose anti-forgery token (the `csrf`
/// part) and origin were checked.
pub struct Uploaded {
    pub admin: Admin,
    pub parts: Vec<UploadPart>,
}

/// The most parts one upload may have.
pub const MAX_UPLOAD_PARTS: usize = 1000;

impl Uploaded {
    /// The files of the part named `name`.
    pub fn files<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a UploadPart> + 'a {
        self.parts
            .iter()
            .filter(move |p| p.name == name && p.file_name.is_some())
    }

    /// Whether a checkbox part named `name` was sent.
    pub fn checked(&self, name: &str) -> bool {
        self.parts
            .iter()
            .any(|p| p.name == name && p.file_name.is_none())
    }
}

impl FromRequest<AppState> for Uploaded {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Uploaded, Response> {
        let unreadable =
            || pages::error_page(StatusCode::BAD_REQUEST, "The upload could not be read.");
        let (mut parts, body) = req.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let request = Request::from_parts(parts, body);
        let mut multipart = axum::extract::Multipart::from_request(request, state)
            .await
            .map_err(|_| unreadable())?;
        let mut csrf = None;
        let mut read = Vec::new();
        let mut bytes = 0usize;
        while let Some(field) = multipart.next_field().await.map_err(|_| unreadable())? {
            let name = field.name().unwrap_or("").to_string();
            let file_name = field.file_name().map(str::to_string);
            let data = field.bytes().await.map_err(|_| unreadable())?;
            bytes += data.len();
            if bytes > crate::MAX_BODY_BYTES || read.len() >= MAX_UPLOAD_PARTS {
                return Err(pages::error_page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The upload is too large: at most 1 MiB and 1,000 files.",
                ));
            }
            if name == "csrf" && file_name.is_none() {
                csrf.get_or_insert_with(|| String::from_utf8_lossy(&data).to_string());
                continue;
            }
            read.push(UploadPart {
                name,
                file_name,
                data,
            });
        }
        check_origin_and_token(state, &headers, &admin, csrf.as_deref())?;
        Ok(Uploaded { admin, parts: read })
    }
}

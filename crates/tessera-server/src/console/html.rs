//! The console's shared page structs (each area's own pages are beside its
//! handlers). Templates are in `templates/console/`; every value is escaped by
//! `pages::html::Html`.

use askama::Template;

use super::Admin;

#[derive(Template)]
#[template(path = "console/step_up.html")]
pub struct StepUp<'a> {
    pub message: &'a str,
    /// The authentication context (or Tessera's MFA `acr`) to sign in for.
    pub context: &'a str,
    /// Where to come back to (a console path, URL-encoded).
    pub back: &'a str,
}

#[derive(Template)]
#[template(path = "console/start_again.html")]
pub struct StartAgain<'a> {
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "console/home.html")]
pub struct Home<'a> {
    pub admin: &'a Admin,
}

/// Asks before deleting an object.
#[derive(Template)]
#[template(path = "console/confirm.html")]
pub struct Confirm<'a> {
    pub admin: &'a Admin,
    pub noun: &'a str,
    pub name: &'a str,
    pub consequence: &'a str,
    pub action: &'a str,
    pub back: &'a str,
    pub version: i64,
}

/// The authentication section's landing page.
#[derive(Template)]
#[template(path = "console/authentication.html")]
pub struct Authentication<'a> {
    pub admin: &'a Admin,
}

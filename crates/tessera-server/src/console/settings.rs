//! Tenant settings in the console, each as its Graph-shaped JSON with what it
//! governs, each saved at the version it was shown at: security defaults, the
//! authentication methods policy,
//! the consent policy, the application credential policy, the authentication
//! contexts and the sign-in log's retention.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::Value;
use tessera_directory::model::{AppCredentialPolicy, AuthenticationContexts, ConsentPolicy};
use tessera_service::conditional_access::SecurityDefaults;
use tessera_service::sign_in_storage::SignInLogRetention;
use tessera_service::{Replacement, ServiceResult};

use super::{Admin, Posted, refused};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/settings", get(settings))
        .route("/admin/settings/{slug}", get(setting).post(save))
}

/// The settings the console edits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setting {
    SecurityDefaults,
    MethodsPolicy,
    ConsentPolicy,
    AppCredentialPolicy,
    AuthenticationContexts,
    SignInLogRetention,
    Provisioning,
}

const ALL: [Setting; 7] = [
    Setting::SecurityDefaults,
    Setting::MethodsPolicy,
    Setting::ConsentPolicy,
    Setting::AppCredentialPolicy,
    Setting::AuthenticationContexts,
    Setting::SignInLogRetention,
    Setting::Provisioning,
];

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

impl Setting {
    fn of(slug: &str) -> Option<Setting> {
        ALL.into_iter().find(|s| s.slug() == slug)
    }

    fn slug(self) -> &'static str {
        match self {
            Setting::SecurityDefaults => "security-defaults",
            Setting::MethodsPolicy => "authentication-methods",
            Setting::ConsentPolicy => "consent",
            Setting::AppCredentialPolicy => "app-credentials",
            Setting::AuthenticationContexts => "authentication-contexts",
            Setting::SignInLogRetention => "sign-in-log-retention",
            Setting::Provisioning => "provisioning",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Setting::SecurityDefaults => "Security defaults",
            Setting::MethodsPolicy => "Authentication methods policy",
            Setting::ConsentPolicy => "User consent",
            Setting::AppCredentialPolicy => "Application credentials",
            Setting::AuthenticationContexts => "Authentication contexts",
            Setting::SignInLogRetention => "Sign-in log retention",
            Setting::Provisioning => "Provisioning",
        }
    }

    fn about(self) -> &'static str {
        match self {
            Setting::SecurityDefaults => {
                "Multifactor authentication for administrators and the management API, and no legacy clients, while no Conditional Access policy is in charge."
            }
            Setting::MethodsPolicy => {
                "Which sign-in methods are on, for whom, with their settings (Temporary Access Pass lifetimes, passkey rules)."
            }
            Setting::ConsentPolicy => {
                "Which permissions users may grant to applications themselves."
            }
            Setting::AppCredentialPolicy => {
                "Whether applications may use client secrets, and how long credentials may live."
            }
            Setting::AuthenticationContexts => {
                "The authentication contexts (c1 to c99) applications may ask for and policies may target."
            }
            Setting::SignInLogRetention => {
                "How long, and how many, sign-in log entries the tenant keeps."
            }
            Setting::Provisioning => {
                "How users arrive: the SCIM user mapping (userMapping; without it, the default), the default domain, the applications that may provision with client credentials, and HR imports (hrImport: format, anchor, change threshold, mapping, schedule)."
            }
        }
    }

    /// The setting as JSON, with the version a change is checked against.
    async fn read(self, state: &AppState, admin: &Admin) -> ServiceResult<(Value, i64)> {
        fn shown<T: serde::Serialize>((value, version): (T, i64)) -> (Value, i64) {
            (json(&value), version)
        }
        let app = &state.app;
        let ctx = &admin.ctx;
        Ok(match self {
            Setting::SecurityDefaults => shown(
                app.access
                    .get_setting_versioned::<SecurityDefaults>(ctx)
                    .await?,
            ),
            Setting::MethodsPolicy => shown(app.sign_in.get_methods_policy(ctx).await?),
            Setting::ConsentPolicy => shown(
                app.directory
                    .get_setting_versioned::<ConsentPolicy>(ctx)
                    .await?,
            ),
            Setting::AppCredentialPolicy => shown(
                app.directory
                    .get_setting_versioned::<AppCredentialPolicy>(ctx)
                    .await?,
            ),
            Setting::AuthenticationContexts => shown(
                app.directory
                    .get_setting_versioned::<AuthenticationContexts>(ctx)
                    .await?,
            ),
            Setting::SignInLogRetention => shown(
                app.sign_in
                    .get_setting_versioned::<SignInLogRetention>(ctx)
                    .await?,
            ),
            Setting::Provisioning => shown(app.provisioning.settings(ctx).await?),
        })
    }

    /// Saves the setting, refused when it is no longer at `version`.
    async fn write(
        self,
        state: &AppState,
        admin: &Admin,
        body: Value,
        version: i64,
    ) -> ServiceResult<()> {
        let app = &state.app;
        let ctx = &admin.ctx;
        let change = Replacement::new(body.clone(), Some(version));
        match self {
            Setting::SecurityDefaults => app
                .access
                .set_security_defaults(ctx, change)
                .await
                .map(drop),
            Setting::MethodsPolicy => app
                .sign_in
                .set_methods_policy(ctx, body, Some(version))
                .await
                .map(drop),
            Setting::ConsentPolicy => app
                .directory
                .set_consent_policy(ctx, change)
                .await
                .map(drop),
            Setting::AppCredentialPolicy => app
                .directory
                .set_app_credential_policy(ctx, change)
                .await
                .map(drop),
            Setting::AuthenticationContexts => app
                .directory
                .set_authentication_contexts(ctx, change)
                .await
                .map(drop),
            Setting::SignInLogRetention => {
                app.sign_in.set_log_retention(ctx, change).await.map(drop)
            }
            Setting::Provisioning => app.provisioning.set_settings(ctx, change).await.map(drop),
        }
    }
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage<'a> {
    admin: &'a Admin,
    settings: Vec<(&'static str, &'static str, &'static str)>,
}

async fn settings(admin: Admin) -> Response {
    pages::page(
        StatusCode::OK,
        &SettingsPage {
            admin: &admin,
            settings: ALL
                .iter()
                .map(|s| (s.slug(), s.title(), s.about()))
                .collect(),
        },
    )
}

#[derive(Template)]
#[template(path = "console/setting.html")]
struct SettingPage<'a> {
    admin: &'a Admin,
    slug: &'static str,
    title: &'static str,
    about: &'static str,
    json: String,
    version: i64,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(serde::Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

async fn setting(
    State(state): State<AppState>,
    admin: Admin,
    Path(slug): Path<String>,
    Query(query): Query<SavedQuery>,
) -> Response {
    let Some(setting) = Setting::of(&slug) else {
        return pages::error_page(StatusCode::NOT_FOUND, "There is no such setting.");
    };
    let notice = query.saved.is_some().then_some("Saved.");
    show(&state, &admin, setting, notice).await
}

async fn show(
    state: &AppState,
    admin: &Admin,
    setting: Setting,
    notice: Option<&'static str>,
) -> Response {
    match setting.read(state, admin).await {
        Ok((value, version)) => pages::page(
            StatusCode::OK,
            &SettingPage {
                admin,
                slug: setting.slug(),
                title: setting.title(),
                about: setting.about(),
                json: serde_json::to_string_pretty(&value).unwrap_or_default(),
                version,
                notice,
                error: None,
            },
        ),
        Err(error) => refused(error),
    }
}

async fn save(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Posted { admin, form }: Posted,
) -> Response {
    let Some(setting) = Setting::of(&slug) else {
        return pages::error_page(StatusCode::NOT_FOUND, "There is no such setting.");
    };
    let text = form.get("json").unwrap_or("").to_string();
    // A setting is saved only at the version it was shown at.
    let version = match form.version() {
        Ok(version) => version,
        Err(refusal) => return refusal,
    };
    let refusal = |message: String, status: StatusCode| {
        pages::page(
            status,
            &SettingPage {
                admin: &admin,
                slug: setting.slug(),
                title: setting.title(),
                about: setting.about(),
                json: text.clone(),
                version,
                notice: None,
                error: Some(message),
            },
        )
    };
    let body: Value = match serde_json::from_str(&text) {
        Ok(body @ Value::Object(_)) => body,
        _ => {
            return refusal(
                "The setting must be one JSON object.".to_string(),
                StatusCode::BAD_REQUEST,
            );
        }
    };
    match setting.write(&state, &admin, body, version).await {
        Ok(()) => pages::redirect(&format!("/admin/settings/{}?saved=1", setting.slug())),
        Err(error) => match super::form_refusal(error, "setting") {
            Ok((status, message)) => refusal(message, status),
            Err(page) => page,
        },
    }
}

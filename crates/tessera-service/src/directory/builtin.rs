//! Tessera's built-in applications: the command line's client and the admin
//! console, which every tenant has without a directory record.

use tessera_core::AppId;
use tessera_directory::model::{ApplicationData, ApplicationSpec, RedirectUris};
use uuid::Uuid;

/// The client id of Tessera's own command-line client: a built-in public client
/// that signs in with the device flow (no directory record; every tenant has it).
pub const CLI_CLIENT_ID: &str = "7e55a1c1-0b6f-4c1e-9a4d-3f2b8c6d5e01";

/// The command line's client id as a UUID.
pub(crate) fn cli_client_id() -> AppId {
    AppId::from_uuid(Uuid::from_u128(0x7e55a1c1_0b6f_4c1e_9a4d_3f2b8c6d5e01))
}

/// The client id of the admin console at `/admin`: a built-in public client that
/// signs administrators in with the authorization code flow and PKCE.
pub const CONSOLE_CLIENT_ID: &str = "7e55a1c1-0b6f-4c1e-9a4d-3f2b8c6d5e02";

/// Where the console receives its authorization codes, below the issuer.
pub const CONSOLE_CALLBACK_PATH: &str = "/admin/callback";

pub(crate) fn console_client_id() -> AppId {
    AppId::from_uuid(Uuid::from_u128(0x7e55a1c1_0b6f_4c1e_9a4d_3f2b8c6d5e02))
}

/// The SCIM API as a resource for client credentials (`<id>/.default` or
/// `urn:tessera:scim/.default`): a built-in application every tenant has, whose one
/// app role, `Provisioning.ReadWrite.All`, the provisioning settings give.
pub const PROVISIONING_API_ID: &str = "7e55a1c1-0b6f-4c1e-9a4d-3f2b8c6d5e03";
/// The SCIM API's resource URI, beside its id.
pub const PROVISIONING_API_URI: &str = "urn:tessera:scim";
/// The app role a provisioning client holds in its tokens.
pub const PROVISIONING_ROLE: &str = "Provisioning.ReadWrite.All";

pub(crate) fn provisioning_api_id() -> AppId {
    AppId::from_uuid(Uuid::from_u128(0x7e55a1c1_0b6f_4c1e_9a4d_3f2b8c6d5e03))
}

/// Whether a client-credentials resource names the SCIM API.
pub(crate) fn is_provisioning_api(resource: &str) -> bool {
    let resource = resource.strip_prefix("api://").unwrap_or(resource);
    resource.eq_ignore_ascii_case(PROVISIONING_API_ID) || resource == PROVISIONING_API_URI
}

/// Whether an application is Tessera's own management surface (Conditional
/// Access's `MicrosoftAdminPortals`): the command line and the admin console.
pub(crate) fn is_management_client(app_id: AppId) -> bool {
    app_id == cli_client_id() || app_id == console_client_id()
}

/// Whether a built-in client may ask for all of `scopes` and `resources`: the
/// sign-in scopes and the management API only (never another application's API,
/// which they would get without consent), and refresh tokens for the command line
/// only (the console signs in again through the authorization endpoint).
pub(crate) fn builtin_request_allowed(
    app_id: AppId,
    scopes: &[String],
    resources: &[String],
) -> bool {
    let management_default = format!("{}/.default", tessera_oauth::resource::MANAGEMENT_RESOURCE);
    let scope_allowed = |scope: &String| match scope.as_str() {
        "openid" | "profile" | "email" => true,
        "offline_access" => app_id == cli_client_id(),
        other => other == management_default,
    };
    scopes.iter().all(scope_allowed)
        && resources
            .iter()
            .all(|r| r == tessera_oauth::resource::MANAGEMENT_RESOURCE)
}

/// The name a built-in application goes by in logs and on pages.
pub(crate) fn builtin_name(app_id: AppId) -> Option<&'static str> {
    if app_id == cli_client_id() {
        Some("Tessera CLI")
    } else if app_id == console_client_id() {
        Some("Tessera admin console")
    } else {
        None
    }
}

/// The registration of a built-in application that signs in through the
/// authorization endpoint (the console), for the server at `issuer`.
pub(crate) fn builtin_application(app_id: AppId, issuer: &str) -> Option<ApplicationData> {
    if app_id != console_client_id() {
        return None;
    }
    let issuer = issuer.trim_end_matches('/');
    Some(ApplicationData {
        app_id,
        spec: ApplicationSpec {
            display_name: "Tessera admin console".to_string(),
            description: None,
            web: RedirectUris::default(),
            spa: RedirectUris {
                redirect_uris: vec![format!("{issuer}{CONSOLE_CALLBACK_PATH}")],
            },
            public_client: RedirectUris::default(),
            app_roles: Vec::new(),
            tls_client_auth_subject_dn: None,
            is_fallback_public_client: false,
            allow_password_grant: false,
            require_pushed_authorization_requests: false,
            dpop_bound_access_tokens: false,
            id_token_signed_response_alg: None,
            backchannel_logout_uri: None,
            post_logout_redirect_uris: Vec::new(),
            federated_identity_credentials: Vec::new(),
        },
        key_credentials: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_client_id_is_the_constant() {
        assert_eq!(cli_client_id().to_string(), CLI_CLIENT_ID);
    }

    #[test]
    fn built_in_clients_ask_only_for_the_management_api() {
        let ask = |app: AppId, scopes: &[&str], resources: &[&str]| {
            let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
            let resources: Vec<String> = resources.iter().map(|s| s.to_string()).collect();
            builtin_request_allowed(app, &scopes, &resources)
        };
        let console = console_client_id();
        let cli = cli_client_id();
        assert!(ask(
            console,
            &["openid", "profile", "urn:tessera:management/.default"],
            &[]
        ));
        assert!(ask(
            cli,
            &["urn:tessera:management/.default", "offline_access"],
            &[]
        ));
        assert!(!ask(
            console,
            &[
                "openid",
                "urn:tessera:management/.default",
                "offline_access"
            ],
            &[]
        ));
        assert!(!ask(
            console,
            &["openid", "api://payroll/Payroll.ReadWrite.All"],
            &[]
        ));
        assert!(!ask(cli, &["api://payroll/.default"], &[]));
        assert!(!ask(console, &["openid"], &["api://payroll"]));
        assert!(ask(cli, &["openid"], &["urn:tessera:management"]));
    }

    #[test]
    fn the_console_is_a_management_client_with_one_redirect_uri() {
        assert_eq!(console_client_id().to_string(), CONSOLE_CLIENT_ID);
        assert!(is_management_client(console_client_id()));
        let app = builtin_application(console_client_id(), "https://id.example/").unwrap();
        assert_eq!(
            app.spec.spa.redirect_uris,
            vec!["https://id.example/admin/callback".to_string()]
        );
        assert!(builtin_application(cli_client_id(), "https://id.example").is_none());
    }
}

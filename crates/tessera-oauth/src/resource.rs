//! Scopes and resources: which one resource a request is for (RFC 8707 `resource`
//! parameters and `<resource>/<scope>` scopes, which must agree), what it needs
//! consent for, and what its access token says (`aud`, `scp`). Whether the
//! resource exists is the caller's to check.

use crate::error::ErrorCode;
use tessera_core::AppId;

use crate::token::OAuthError;

/// The management API as a resource: tokens with this audience are accepted by
/// `/api/v1` (scope `urn:tessera:management/.default`).
pub const MANAGEMENT_RESOURCE: &str = "urn:tessera:management";

/// The scopes OpenID Connect defines and Tessera serves.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The audience of access tokens that only serve userinfo.
pub fn userinfo_audience(issuer: &str) -> String {
    format!("{issuer}/oauth2/userinfo")
}

/// The resource app named by `api://<appId>` (or a bare app id).
pub fn resource_app_id(resource: &str) -> Option<AppId> {
    resource
        .strip_prefix("api://")
        .unwrap_or(resource)
        .parse()
        .ok()
}

/// The one resource of a request: from `resource` parameters or scope prefixes
/// (`api://<appId>/<scope>`, or the management API's), which must agree.
pub fn requested_resource(
    scopes: &[String],
    resources: &[String],
) -> Result<Option<String>, OAuthError> {
    let mut resources: Vec<String> = resources.to_vec();
    for scope in scopes {
        if OIDC_SCOPES.contains(&scope.as_str()) {
            continue;
        }
        let Some((resource, name)) = scope.rsplit_once('/') else {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("unknown scope {scope}"),
            ));
        };
        if name.is_empty() || resource.is_empty() {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("unknown scope {scope}"),
            ));
        }
        if !resources.iter().any(|r| r == resource) {
            resources.push(resource.to_string());
        }
    }
    match resources.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        _ => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "ask for one resource per request",
        )),
    }
}

/// The resource of a request already checked with [`requested_resource`]: its
/// `resource` parameter, else the prefix of its first resource scope.
pub fn checked_resource(scopes: &[String], resources: &[String]) -> Option<String> {
    resources.first().cloned().or_else(|| {
        scopes
            .iter()
            .find_map(|s| s.rsplit_once('/').map(|(r, _)| r.to_string()))
    })
}

/// What a request needs consent for: its scopes, and `<resource>/.default` for a
/// `resource` parameter no scope names (a resource is access too).
pub fn consent_scopes(scopes: &[String], resources: &[String]) -> Vec<String> {
    let mut out: Vec<String> = scopes.to_vec();
    for resource in resources {
        let named = scopes
            .iter()
            .any(|s| s.rsplit_once('/').is_some_and(|(r, _)| r == resource));
        let default = format!("{resource}/.default");
        if !named && !out.contains(&default) {
            out.push(default);
        }
    }
    out
}

/// The `aud` of a user's access token: the resource application's id, the
/// management API, or (no resource) the userinfo endpoint.
pub fn access_token_audience(resource: Option<&str>, issuer: &str) -> String {
    match resource {
        None => userinfo_audience(issuer),
        Some(MANAGEMENT_RESOURCE) => MANAGEMENT_RESOURCE.to_string(),
        Some(resource) => resource_app_id(resource)
            .map(|id| id.to_string())
            .unwrap_or_else(|| resource.to_string()),
    }
}

/// The `scp` of a user's access token: the granted scopes' names without their
/// resource, and without `offline_access` (which the refresh token is).
pub fn scp_claim(scopes: &[String]) -> String {
    scopes
        .iter()
        .map(|s| s.rsplit_once('/').map_or(s.as_str(), |(_, name)| name))
        .filter(|s| *s != "offline_access")
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    const API: &str = "api://2d9f6a4e-0c1b-4e36-9a55-0f3b1c2d4e5f";

    #[test]
    fn a_request_names_one_resource() {
        let read = format!("{API}/read");
        assert_eq!(requested_resource(&strings(&["openid"]), &[]), Ok(None));
        assert_eq!(
            requested_resource(&strings(&["openid", &read]), &[]),
            Ok(Some(API.to_string()))
        );
        // A resource parameter and a scope of the same resource agree.
        assert_eq!(
            requested_resource(&strings(&[&read]), &strings(&[API])),
            Ok(Some(API.to_string()))
        );
        let other = requested_resource(&strings(&[&read]), &strings(&["api://other"]));
        assert_eq!(other.unwrap_err().error, "invalid_target");
        for unknown in ["calendar", "/read", "api://x/"] {
            let error = requested_resource(&strings(&[unknown]), &[]).unwrap_err();
            assert_eq!(error.error, "invalid_scope", "{unknown}");
        }
        assert_eq!(
            checked_resource(&strings(&["openid", &read]), &[]),
            Some(API.to_string())
        );
        assert_eq!(
            checked_resource(&strings(&[&read]), &strings(&["api://first"])),
            Some("api://first".to_string())
        );
        assert_eq!(checked_resource(&strings(&["openid"]), &[]), None);
    }

    #[test]
    fn a_resource_parameter_needs_consent_too() {
        let read = format!("{API}/read");
        assert_eq!(
            consent_scopes(&strings(&["openid", &read]), &strings(&[API])),
            strings(&["openid", &read])
        );
        assert_eq!(
            consent_scopes(&strings(&["openid"]), &strings(&[API, API])),
            strings(&["openid", &format!("{API}/.default")])
        );
    }

    #[test]
    fn access_tokens_name_the_resource_and_scope_names() {
        let issuer = "https://id.contoso.com";
        assert_eq!(
            access_token_audience(None, issuer),
            "https://id.contoso.com/oauth2/userinfo"
        );
        assert_eq!(
            access_token_audience(Some(MANAGEMENT_RESOURCE), issuer),
            MANAGEMENT_RESOURCE
        );
        assert_eq!(
            access_token_audience(Some(API), issuer),
            "2d9f6a4e-0c1b-4e36-9a55-0f3b1c2d4e5f"
        );
        assert_eq!(
            access_token_audience(Some("https://api.contoso.com"), issuer),
            "https://api.contoso.com"
        );
        assert_eq!(
            scp_claim(&strings(&[
                "openid",
                "offline_access",
                &format!("{API}/read"),
                "urn:tessera:management/.default"
            ])),
            "openid read .default"
        );
    }
}

//! Validation of specs: everything that can be checked without looking anything up.
//! Checks that need other objects (a manager that exists, a unique UPN) are made by the
//! service layer inside the write transaction.

use std::collections::{BTreeMap, BTreeSet};

use url::Url;

use crate::error::ValidationErrors;
use crate::model::{
    AdministrativeUnitSpec, ApplicationSpec, AttributeDefinitionSpec, AttributeType,
    AttributeValue, CustomSecurityAttributes, DeviceSpec, DirectoryScope, GroupSpec,
    RoleAssignmentSpec, ServicePrincipalSpec, UserSpec,
};
use crate::rule;

pub const MAX_DISPLAY_NAME: usize = 256;
pub const MAX_UPN_LOCAL: usize = 113;
pub const MAX_UPN: usize = 256;
pub const MAX_DESCRIPTION: usize = 1024;
pub const MAX_REDIRECT_URIS: usize = 256;
pub const MAX_APP_ROLES: usize = 1200;

fn required_text(errors: &mut ValidationErrors, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        errors.add(field, "must not be empty");
    } else if value.chars().count() > max {
        errors.add(field, format!("must be at most {max} characters"));
    } else if value.chars().any(char::is_control) {
        errors.add(field, "must not contain control characters");
    }
}

fn optional_text(errors: &mut ValidationErrors, field: &str, value: &Option<String>, max: usize) {
    if let Some(value) = value {
        required_text(errors, field, value, max);
    }
}

/// `local@domain` with Entra's allowed local-part characters and a DNS domain.
pub fn user_principal_name(value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_UPN {
        return Err(format!("must be at most {MAX_UPN} characters"));
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err("must have the form name@domain".to_string());
    };
    if local.is_empty() || local.chars().count() > MAX_UPN_LOCAL {
        return Err(format!(
            "the part before @ must be 1 to {MAX_UPN_LOCAL} characters"
        ));
    }
    let local_ok = local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "'.-_!#^~".contains(c));
    if !local_ok {
        return Err(
            "the part before @ may only contain letters, digits and ' . - _ ! # ^ ~".to_string(),
        );
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(
            "the part before @ must not start or end with a dot or contain two dots in a row"
                .to_string(),
        );
    }
    dns_name(domain).map_err(|message| format!("the domain {message}"))
}

fn dns_name(domain: &str) -> Result<(), String> {
    if domain.is_empty() || domain.len() > 253 {
        return Err("must be 1 to 253 characters".to_string());
    }
    for label in domain.split('.') {
        let label_ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !label_ok {
            return Err(
                "must be a DNS name (letters, digits and hyphens between dots)".to_string(),
            );
        }
    }
    Ok(())
}

pub fn mail_address(value: &str) -> Result<(), String> {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err("must be an email address (name@domain)".to_string());
    };
    if local.is_empty()
        || local.len() > 64
        || local.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("must be an email address (name@domain)".to_string());
    }
    dns_name(domain).map_err(|message| format!("the domain {message}"))
}

pub fn user_spec(spec: &UserSpec) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if let Err(message) = user_principal_name(&spec.user_principal_name) {
        errors.add("userPrincipalName", message);
    }
    required_text(
        &mut errors,
        "displayName",
        &spec.display_name,
        MAX_DISPLAY_NAME,
    );
    optional_text(&mut errors, "givenName", &spec.given_name, 64);
    optional_text(&mut errors, "surname", &spec.surname, 64);
    if let Some(mail) = &spec.mail
        && let Err(message) = mail_address(mail)
    {
        errors.add("mail", message);
    }
    // Entra allows 16 characters; HR systems' identifiers (and SCIM's
    // employeeNumber) run longer.
    optional_text(&mut errors, "employeeId", &spec.employee_id, 64);
    optional_text(&mut errors, "department", &spec.department, 64);
    optional_text(&mut errors, "jobTitle", &spec.job_title, 128);
    optional_text(&mut errors, "companyName", &spec.company_name, 64);
    optional_text(&mut errors, "employeeType", &spec.employee_type, 64);
    if let Some(org) = &spec.employee_org_data {
        optional_text(&mut errors, "employeeOrgData.division", &org.division, 64);
        optional_text(
            &mut errors,
            "employeeOrgData.costCenter",
            &org.cost_center,
            64,
        );
    }
    if let Some(location) = &spec.usage_location {
        let ok = location.len() == 2 && location.chars().all(|c| c.is_ascii_uppercase());
        if !ok {
            errors.add(
                "usageLocation",
                "must be a two-letter ISO 3166 country code in capitals, e.g. DE",
            );
        }
    }
    if let (Some(hire), Some(leave)) = (spec.employee_hire_date, spec.employee_leave_date_time)
        && leave < hire
    {
        errors.add(
            "employeeLeaveDateTime",
            "must not be before employeeHireDate",
        );
    }
    errors.into_result()
}

pub fn group_spec(spec: &GroupSpec) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    required_text(
        &mut errors,
        "displayName",
        &spec.display_name,
        MAX_DISPLAY_NAME,
    );
    optional_text(
        &mut errors,
        "description",
        &spec.description,
        MAX_DESCRIPTION,
    );
    if let Some(nickname) = &spec.mail_nickname {
        let ok = !nickname.is_empty()
            && nickname.len() <= 64
            && nickname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            errors.add(
                "mailNickname",
                "must be 1 to 64 letters, digits, '-', '_' or '.'",
            );
        }
    }
    if let Some(text) = &spec.membership_rule {
        if let Err(error) = rule::parse(text) {
            errors.add("membershipRule", error.to_string());
        }
        if spec.is_assignable_to_role {
            errors.add(
                "membershipRule",
                "a role-assignable group cannot have dynamic membership",
            );
        }
    }
    errors.into_result()
}

pub fn device_spec(spec: &DeviceSpec) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    required_text(
        &mut errors,
        "displayName",
        &spec.display_name,
        MAX_DISPLAY_NAME,
    );
    optional_text(&mut errors, "operatingSystem", &spec.operating_system, 64);
    optional_text(&mut errors, "manufacturer", &spec.manufacturer, 256);
    if let Some(thumbprint) = &spec.certificate_thumbprint
        && (thumbprint.len() != 64 || !thumbprint.chars().all(|c| c.is_ascii_hexdigit()))
    {
        errors.add(
            "certificateThumbprint",
            "is the SHA-256 of the certificate in hex (64 characters)",
        );
    }
    optional_text(&mut errors, "model", &spec.model, 256);
    optional_text(
        &mut errors,
        "complianceReason",
        &spec.compliance_reason,
        256,
    );
    optional_text(
        &mut errors,
        "operatingSystemVersion",
        &spec.operating_system_version,
        64,
    );
    for (name, value) in &spec.extension_attributes {
        let number = name
            .strip_prefix("extensionAttribute")
            .and_then(|n| n.parse::<u8>().ok());
        let name_ok = matches!(number, Some(1..=15)) && !name.contains("extensionAttribute0");
        if !name_ok {
            errors.add(
                format!("extensionAttributes.{name}"),
                "is not an extension attribute (extensionAttribute1 to extensionAttribute15)",
            );
        } else if value.chars().count() > 1024 || value.chars().any(char::is_control) {
            errors.add(
                format!("extensionAttributes.{name}"),
                "must be at most 1024 characters, no control characters",
            );
        }
    }
    errors.into_result()
}

/// Where a redirect URI will be used; each has its own rules (RFC 9700 §4.1, RFC 8252).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    Web,
    Spa,
    PublicClient,
}

fn is_loopback_host(url: &Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

pub fn redirect_uri(text: &str, kind: RedirectKind) -> Result<(), String> {
    if text.len() > 2048 {
        return Err("must be at most 2048 characters".to_string());
    }
    let url = Url::parse(text).map_err(|e| format!("is not an absolute URI ({e})"))?;
    if url.fragment().is_some() {
        return Err("must not contain a fragment (#)".to_string());
    }
    if url.username() != "" || url.password().is_some() {
        return Err("must not contain user information".to_string());
    }
    if text.contains('*') {
        return Err("must not contain wildcards: redirect URIs are matched exactly".to_string());
    }
    match (url.scheme(), kind) {
        ("https", _) => Ok(()),
        ("http", _) if is_loopback_host(&url) => Ok(()),
        ("http", _) => Err("must use https (http is allowed only for localhost and loopback addresses)".to_string()),
        (scheme, RedirectKind::PublicClient) if scheme.contains('.') => Ok(()),
        (_, RedirectKind::PublicClient) => {
            Err("a native app's custom scheme must be a reversed domain name, e.g. com.example.app:/callback".to_string())
        }
        _ => Err("must use https".to_string()),
    }
}

/// Most federated identity credentials per application (Entra allows 20).
pub const MAX_FEDERATED_CREDENTIALS: usize = 20;

pub fn application_spec(spec: &ApplicationSpec) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    required_text(
        &mut errors,
        "displayName",
        &spec.display_name,
        MAX_DISPLAY_NAME,
    );
    optional_text(
        &mut errors,
        "description",
        &spec.description,
        MAX_DESCRIPTION,
    );
    let groups = [
        ("web", &spec.web.redirect_uris, RedirectKind::Web),
        ("spa", &spec.spa.redirect_uris, RedirectKind::Spa),
        (
            "publicClient",
            &spec.public_client.redirect_uris,
            RedirectKind::PublicClient,
        ),
    ];
    for (name, uris, kind) in groups {
        if uris.len() > MAX_REDIRECT_URIS {
            errors.add(
                format!("{name}.redirectUris"),
                format!("at most {MAX_REDIRECT_URIS} redirect URIs"),
            );
        }
        let mut seen = BTreeSet::new();
        for (index, uri) in uris.iter().enumerate() {
            if let Err(message) = redirect_uri(uri, kind) {
                errors.add(format!("{name}.redirectUris[{index}]"), message);
            }
            if !seen.insert(uri) {
                errors.add(format!("{name}.redirectUris[{index}]"), "is listed twice");
            }
        }
    }
    if let Some(uri) = &spec.backchannel_logout_uri
        && let Err(message) = redirect_uri(uri, RedirectKind::Web)
    {
        errors.add("backchannelLogoutUri", message);
    }
    if spec.post_logout_redirect_uris.len() > MAX_REDIRECT_URIS {
        errors.add(
            "postLogoutRedirectUris",
            format!("at most {MAX_REDIRECT_URIS} URIs"),
        );
    }
    for (index, uri) in spec.post_logout_redirect_uris.iter().enumerate() {
        if redirect_uri(uri, RedirectKind::Web).is_err()
            && let Err(message) = redirect_uri(uri, RedirectKind::PublicClient)
        {
            errors.add(format!("postLogoutRedirectUris[{index}]"), message);
        }
    }
    if let Some(alg) = &spec.id_token_signed_response_alg
        && !["ES256", "RS256", "PS256", "EdDSA"].contains(&alg.as_str())
    {
        errors.add(
            "idTokenSignedResponseAlg",
            "must be ES256, RS256, PS256 or EdDSA (never none or HMAC)",
        );
    }
    if spec.federated_identity_credentials.len() > MAX_FEDERATED_CREDENTIALS {
        errors.add(
            "federatedIdentityCredentials",
            format!("at most {MAX_FEDERATED_CREDENTIALS} credentials"),
        );
    }
    let mut names = BTreeSet::new();
    for (index, credential) in spec.federated_identity_credentials.iter().enumerate() {
        let at = |field: &str| format!("federatedIdentityCredentials[{index}].{field}");
        required_text(&mut errors, &at("name"), &credential.name, 120);
        if !names.insert(credential.name.to_lowercase()) {
            errors.add(at("name"), "is used twice");
        }
        if let Err(message) = redirect_uri(&credential.issuer, RedirectKind::Web) {
            errors.add(at("issuer"), message);
        }
        required_text(&mut errors, &at("subject"), &credential.subject, 600);
        if credential.audiences.len() != 1 {
            errors.add(at("audiences"), "give exactly one audience");
        }
        for audience in &credential.audiences {
            if audience.trim().is_empty() || audience.len() > 600 {
                errors.add(at("audiences"), "must be 1 to 600 characters");
            }
        }
        optional_text(
            &mut errors,
            &at("description"),
            &credential.description,
            MAX_DESCRIPTION,
        );
    }
    if spec.app_roles.len() > MAX_APP_ROLES {
        errors.add("appRoles", format!("at most {MAX_APP_ROLES} app roles"));
    }
    let mut ids = BTreeSet::new();
    let mut values = BTreeSet::new();
    for (index, role) in spec.app_roles.iter().enumerate() {
        let field = format!("appRoles[{index}]");
        if !ids.insert(role.id) {
            errors.add(format!("{field}.id"), "is used by another app role");
        }
        let value_ok = !role.value.is_empty()
            && role.value.len() <= 120
            && !role.value.starts_with('.')
            && role
                .value
                .chars()
                .all(|c| c.is_ascii_graphic() && c != ',' && c != ';');
        if !value_ok {
            errors.add(
                format!("{field}.value"),
                "must be 1 to 120 visible ASCII characters without spaces, ',' or ';' and not start with '.'",
            );
        }
        if !values.insert(role.value.to_ascii_lowercase()) {
            errors.add(format!("{field}.value"), "is used by another app role");
        }
        required_text(
            &mut errors,
            &format!("{field}.displayName"),
            &role.display_name,
            100,
        );
        optional_text(
            &mut errors,
            &format!("{field}.description"),
            &role.description,
            MAX_DESCRIPTION,
        );
        if role.allowed_member_types.is_empty() {
            errors.add(
                format!("{field}.allowedMemberTypes"),
                "must name User, Application or both",
            );
        }
    }
    errors.into_result()
}

pub fn service_principal_spec(spec: &ServicePrincipalSpec) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    optional_text(
        &mut errors,
        "displayName",
        &spec.display_name,
        MAX_DISPLAY_NAME,
    );
    if let Some(url) = &spec.login_url
        && let Err(message) = login_url(url)
    {
        errors.add("loginUrl", message);
    }
    errors.into_result()
}

/// An application's sign-in page, which My Apps links to: https (http only on
/// loopback), no user information.
pub fn login_url(text: &str) -> Result<(), String> {
    if text.len() > 2048 {
        return Err("must be at most 2048 characters".to_string());
    }
    let url = Url::parse(text).map_err(|e| format!("is not an absolute URL ({e})"))?;
    if url.username() != "" || url.password().is_some() {
        return Err("must not contain user information".to_string());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&url) => Ok(()),
        _ => Err(
            "must use https (http is allowed only for localhost and loopback addresses)"
                .to_string(),
        ),
    }
}

pub fn administrative_unit_spec(spec: &AdministrativeUnitSpec) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    required_text(
        &mut errors,
        "displayName",
        &spec.display_name,
        MAX_DISPLAY_NAME,
    );
    optional_text(
        &mut errors,
        "description",
        &spec.description,
        MAX_DESCRIPTION,
    );
    errors.into_result()
}

pub fn role_assignment_spec(spec: &RoleAssignmentSpec) -> Result<DirectoryScope, ValidationErrors> {
    DirectoryScope::parse(&spec.directory_scope_id).ok_or_else(|| {
        ValidationErrors::single(
            "directoryScopeId",
            "must be \"/\" or \"/administrativeUnits/{id}\"",
        )
    })
}

fn attribute_identifier(errors: &mut ValidationErrors, field: &str, value: &str) {
    let ok = !value.is_empty()
        && value.chars().count() <= 32
        && value.chars().all(|c| c.is_alphanumeric());
    if !ok {
        errors.add(
            field,
            "must be 1 to 32 letters or digits (no spaces or special characters)",
        );
    }
}

pub fn attribute_definition_spec(spec: &AttributeDefinitionSpec) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    attribute_identifier(&mut errors, "attributeSet", &spec.attribute_set);
    attribute_identifier(&mut errors, "name", &spec.name);
    optional_text(&mut errors, "description", &spec.description, 128);
    if spec.attribute_type == AttributeType::Boolean {
        if spec.is_collection {
            errors.add("isCollection", "a Boolean attribute cannot be a collection");
        }
        if spec.use_pre_defined_values_only || !spec.allowed_values.is_empty() {
            errors.add(
                "allowedValues",
                "a Boolean attribute cannot have predefined values",
            );
        }
    }
    if spec.allowed_values.len() > 100 {
        errors.add("allowedValues", "at most 100 allowed values");
    }
    let mut seen = BTreeSet::new();
    for (index, value) in spec.allowed_values.iter().enumerate() {
        let field = format!("allowedValues[{index}]");
        if value.is_empty() || value.chars().count() > 64 || value.chars().any(char::is_control) {
            errors.add(field.as_str(), "must be 1 to 64 characters");
        }
        if spec.attribute_type == AttributeType::Integer && value.parse::<i64>().is_err() {
            errors.add(
                field.as_str(),
                "must be an integer for an Integer attribute",
            );
        }
        if !seen.insert(value) {
            errors.add(field, "is listed twice");
        }
    }
    if spec.use_pre_defined_values_only && spec.allowed_values.is_empty() {
        errors.add(
            "allowedValues",
            "usePreDefinedValuesOnly needs at least one allowed value",
        );
    }
    errors.into_result()
}

/// Checks that an update of an attribute definition changes only what may change:
/// description, status, allowed values (added, never removed) and
/// usePreDefinedValuesOnly from true to false.
pub fn attribute_definition_update(
    before: &AttributeDefinitionSpec,
    after: &AttributeDefinitionSpec,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if !before
        .attribute_set
        .eq_ignore_ascii_case(&after.attribute_set)
    {
        errors.add("attributeSet", "cannot be changed");
    }
    if !before.name.eq_ignore_ascii_case(&after.name) {
        errors.add("name", "cannot be changed");
    }
    if before.attribute_type != after.attribute_type {
        errors.add("type", "cannot be changed");
    }
    if before.is_collection != after.is_collection {
        errors.add("isCollection", "cannot be changed");
    }
    if !before.use_pre_defined_values_only && after.use_pre_defined_values_only {
        errors.add("usePreDefinedValuesOnly", "can be turned off but not on");
    }
    for value in &before.allowed_values {
        if !after.allowed_values.contains(value) {
            errors.add(
                "allowedValues",
                format!("the allowed value {value:?} cannot be removed"),
            );
        }
    }
    errors.extend(attribute_definition_spec(after).err().unwrap_or_default());
    errors.into_result()
}

/// Checks custom security attribute values against the tenant's definitions, keyed
/// by lower-cased `{set}_{name}` (set and attribute names are case-insensitive).
/// Empty lists are removed (as in Graph, `[]` clears a collection).
pub fn custom_security_attributes(
    values: &mut CustomSecurityAttributes,
    definitions: &BTreeMap<String, AttributeDefinitionSpec>,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    for (set, attributes) in values.iter_mut() {
        attributes.retain(|_, value| {
            !matches!(value, AttributeValue::StringList(v) if v.is_empty())
                && !matches!(value, AttributeValue::IntegerList(v) if v.is_empty())
        });
        for (name, value) in attributes.iter() {
            let field = format!("customSecurityAttributes.{set}.{name}");
            let key = format!("{set}_{name}").to_lowercase();
            let Some(definition) = definitions.get(&key) else {
                errors.add(field, "no such custom security attribute is defined");
                continue;
            };
            if definition.status == AttributeStatus::Deprecated {
                errors.add(field, "the attribute is deprecated and cannot be assigned");
                continue;
            }
            let type_ok = matches!(
                (definition.attribute_type, definition.is_collection, value),
                (AttributeType::String, false, AttributeValue::String(_))
                    | (AttributeType::String, true, AttributeValue::StringList(_))
                    | (AttributeType::Integer, false, AttributeValue::Integer(_))
                    | (AttributeType::Integer, true, AttributeValue::IntegerList(_))
                    | (AttributeType::Boolean, false, AttributeValue::Boolean(_))
            );
            if !type_ok {
                let expected = match (definition.attribute_type, definition.is_collection) {
                    (AttributeType::String, false) => "a string",
                    (AttributeType::String, true) => "a list of strings",
                    (AttributeType::Integer, false) => "an integer",
                    (AttributeType::Integer, true) => "a list of integers",
                    (AttributeType::Boolean, _) => "true or false",
                };
                errors.add(field, format!("must be {expected}"));
                continue;
            }
            let texts: Vec<String> = match value {
                AttributeValue::String(s) => vec![s.clone()],
                AttributeValue::StringList(list) => list.clone(),
                AttributeValue::Integer(i) => vec![i.to_string()],
                AttributeValue::IntegerList(list) => list.iter().map(i64::to_string).collect(),
                AttributeValue::Boolean(_) => Vec::new(),
            };
            if texts.len() > 50 {
                errors.add(field.as_str(), "at most 50 values");
            }
            for text in texts {
                if text.chars().count() > 256 {
                    errors.add(field.as_str(), "values must be at most 256 characters");
                }
                if definition.use_pre_defined_values_only
                    && !definition.allowed_values.contains(&text)
                {
                    errors.add(
                        field.as_str(),
                        format!("{text:?} is not one of the allowed values"),
                    );
                }
            }
        }
    }
    values.retain(|_, attributes| !attributes.is_empty());
    errors.into_result()
}

use crate::model::AttributeStatus;

#[cfg(test)]
mod tests {
    use super::*;

    fn check_upn(input: &str, ok: bool) {
        assert_eq!(user_principal_name(input).is_ok(), ok, "{input}");
    }

    #[test]
    fn user_principal_names() {
        check_upn("adele.vance@contoso.com", true);
        check_upn("o'brien@contoso.com", true);
        check_upn("a@b", true);
        check_upn("no-at-sign", false);
        check_upn("@contoso.com", false);
        check_upn("adele@", false);
        check_upn(".adele@contoso.com", false);
        check_upn("ad..ele@contoso.com", false);
        check_upn("adele vance@contoso.com", false);
        check_upn("adele@contoso..com", false);
        check_upn("adele@-contoso.com", false);
        check_upn(&format!("{}@contoso.com", "a".repeat(114)), false);
    }

    fn check_redirect(input: &str, kind: RedirectKind, ok: bool) {
        assert_eq!(redirect_uri(input, kind).is_ok(), ok, "{input}");
    }

    #[test]
    fn login_urls_are_https_or_loopback() {
        assert!(login_url("https://payroll.example/signin").is_ok());
        assert!(login_url("http://127.0.0.1:8000/login").is_ok());
        assert!(login_url("http://payroll.example/signin").is_err());
        assert!(login_url("javascript:alert(1)").is_err());
        assert!(login_url("https://user:pw@payroll.example/").is_err());
    }

    #[test]
    fn redirect_uris() {
        check_redirect("https://app.example.com/cb", RedirectKind::Web, true);
        check_redirect("http://localhost:8080/cb", RedirectKind::Web, true);
        check_redirect("http://127.0.0.1/cb", RedirectKind::PublicClient, true);
        check_redirect("http://app.example.com/cb", RedirectKind::Web, false);
        check_redirect("https://app.example.com/cb#frag", RedirectKind::Web, false);
        check_redirect("https://*.example.com/cb", RedirectKind::Web, false);
        check_redirect("https://user:pw@example.com/cb", RedirectKind::Web, false);
        check_redirect("com.example.app:/oauth", RedirectKind::PublicClient, true);
        check_redirect("com.example.app:/oauth", RedirectKind::Web, false);
        check_redirect("myapp:/oauth", RedirectKind::PublicClient, false);
        check_redirect("not a uri", RedirectKind::Web, false);
    }

    #[test]
    fn role_assignable_groups_cannot_be_dynamic() {
        let spec: GroupSpec = serde_json::from_value(serde_json::json!({
            "displayName": "Tier 0", "isAssignableToRole": true,
            "membershipRule": "user.department -eq \"IT\""
        }))
        .unwrap();
        let errors = group_spec(&spec).unwrap_err();
        assert_eq!(errors.errors[0].field, "membershipRule");
    }

    #[test]
    fn custom_attributes_are_checked_against_definitions() {
        let definition: AttributeDefinitionSpec = serde_json::from_value(serde_json::json!({
            "attributeSet": "Engineering", "name": "Project", "type": "String", "isCollection": true,
            "usePreDefinedValuesOnly": true, "allowedValues": ["Baker", "Cascade"]
        }))
        .unwrap();
        let definitions = BTreeMap::from([("engineering_project".to_string(), definition)]);
        let mut good: CustomSecurityAttributes =
            serde_json::from_value(serde_json::json!({"Engineering": {"Project": ["Baker"]}}))
                .unwrap();
        assert!(custom_security_attributes(&mut good, &definitions).is_ok());
        let mut bad_value: CustomSecurityAttributes =
            serde_json::from_value(serde_json::json!({"Engineering": {"Project": ["Alpine"]}}))
                .unwrap();
        assert!(custom_security_attributes(&mut bad_value, &definitions).is_err());
        let mut bad_type: CustomSecurityAttributes =
            serde_json::from_value(serde_json::json!({"Engineering": {"Project": "Baker"}}))
                .unwrap();
        assert!(custom_security_attributes(&mut bad_type, &definitions).is_err());
        let mut unknown: CustomSecurityAttributes =
            serde_json::from_value(serde_json::json!({"Marketing": {"Region": "EU"}})).unwrap();
        assert!(custom_security_attributes(&mut unknown, &definitions).is_err());
        let mut cleared: CustomSecurityAttributes =
            serde_json::from_value(serde_json::json!({"Engineering": {"Project": []}})).unwrap();
        assert!(custom_security_attributes(&mut cleared, &definitions).is_ok());
        assert!(cleared.is_empty());
    }
}

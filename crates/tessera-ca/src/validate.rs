//! What a policy, named location or terms of use must be before it is stored.
//! Every problem is reported with its JSON path, all at once.

use std::str::FromStr;

use ipnet::IpNet;
use tessera_directory::ValidationErrors;
use tessera_directory::rule;
use uuid::Uuid;

use crate::model::*;

pub const MAX_NAME: usize = 256;
pub const MAX_LIST: usize = 1000;
pub const MAX_RANGES: usize = 2000;
pub const MAX_TERMS: usize = 10;
pub const MAX_TERMS_TEXT: usize = 64 * 1024;

pub const ALL: &str = "All";
pub const NONE: &str = "None";
pub const GUESTS_OR_EXTERNAL_USERS: &str = "GuestsOrExternalUsers";
pub const ALL_TRUSTED: &str = "AllTrusted";
pub const ADMIN_PORTALS: &str = "MicrosoftAdminPortals";
pub const OFFICE_365: &str = "Office365";
pub const SERVICE_PRINCIPALS_IN_MY_TENANT: &str = "ServicePrincipalsInMyTenant";
pub const REGISTER_SECURITY_INFO: &str = "urn:user:registersecurityinfo";
pub const REGISTER_DEVICE: &str = "urn:user:registerdevice";

/// The guest and external user kinds Graph names.
pub const GUEST_KINDS: [&str; 6] = [
    "internalGuest",
    "b2bCollaborationGuest",
    "b2bCollaborationMember",
    "b2bDirectConnectUser",
    "otherExternalUser",
    "serviceProvider",
];

/// `c1` .. `c99` as a number.
pub fn auth_context_number(text: &str) -> Option<u8> {
    let digits = text.strip_prefix('c')?;
    let n: u8 = digits.parse().ok()?;
    ((1..=99).contains(&n) && digits == n.to_string()).then_some(n)
}

fn name(errors: &mut ValidationErrors, field: &str, value: &str) {
    let trimmed = value.trim();
    if trimmed.is_empty() || value.chars().count() > MAX_NAME || value.chars().any(char::is_control)
    {
        errors.add(
            field,
            format!("must be 1 to {MAX_NAME} characters, no control characters"),
        );
    }
}

fn ids(
    errors: &mut ValidationErrors,
    field: &str,
    values: &[String],
    keywords: &[&str],
    what: &str,
) {
    if values.len() > MAX_LIST {
        errors.add(field, format!("holds at most {MAX_LIST} entries"));
        return;
    }
    for (index, value) in values.iter().enumerate() {
        if keywords.contains(&value.as_str()) || Uuid::parse_str(value).is_ok() {
            continue;
        }
        let expected = if keywords.is_empty() {
            what.to_string()
        } else {
            format!("{}, or {what}", keywords.join(", "))
        };
        errors.add(
            format!("{field}[{index}]"),
            format!("{value:?} is not {expected}"),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (index, value) in values.iter().enumerate() {
        if !seen.insert(value.to_ascii_lowercase()) {
            errors.add(format!("{field}[{index}]"), "is listed twice");
        }
    }
}

fn keyword_alone(errors: &mut ValidationErrors, field: &str, values: &[String], keyword: &str) {
    if values.len() > 1 && values.iter().any(|v| v == keyword) {
        errors.add(
            field,
            format!("{keyword} cannot be combined with other values"),
        );
    }
}

fn guest_kinds(errors: &mut ValidationErrors, field: &str, value: &Option<GuestsOrExternalUsers>) {
    let Some(value) = value else { return };
    let kinds: Vec<&str> = value
        .guest_or_external_user_types
        .split(',')
        .map(str::trim)
        .collect();
    for kind in &kinds {
        if !GUEST_KINDS.contains(kind) {
            errors.add(
                format!("{field}.guestOrExternalUserTypes"),
                format!("{kind:?} is not one of {}", GUEST_KINDS.join(", ")),
            );
        }
    }
    if let Some(tenants) = &value.external_tenants
        && tenants.membership_kind != "all"
    {
        errors.add(
            format!("{field}.externalTenants.membershipKind"),
            "only \"all\" is supported: external tenants cannot be enumerated here",
        );
    }
}

/// Whether a users condition includes anyone: a user, `All`, guests, a group or a
/// role (`None` alone includes nobody).
pub fn targets_users(users: &UsersCondition) -> bool {
    users.include_users.iter().any(|u| u != NONE)
        || !users.include_groups.is_empty()
        || !users.include_roles.is_empty()
        || users.include_guests_or_external_users.is_some()
}

/// Whether a policy is for workload identities: it includes service principals
/// (`clientApplications`). Such a policy includes no users; Entra writes
/// `users: {includeUsers: ["None"]}` beside it, which changes nothing.
pub fn is_for_workloads(conditions: &Conditions) -> bool {
    conditions
        .client_applications
        .as_ref()
        .is_some_and(|w| !w.include_service_principals.is_empty())
}

/// Checks a policy.
pub fn policy(spec: &PolicySpec) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    name(&mut errors, "displayName", &spec.display_name);
    if let Some(description) = &spec.description
        && description.chars().count() > 1024
    {
        errors.add("description", "must be at most 1024 characters");
    }
    let c = &spec.conditions;
    let users_present = c.users.as_ref().is_some_and(targets_users);
    let workloads_present = is_for_workloads(c);
    // `includeUsers: ["None"]` names nobody: a policy being prepared, or (beside
    // clientApplications) how Entra writes a policy for workload identities.
    let users_named = c
        .users
        .as_ref()
        .is_some_and(|u| !u.include_users.is_empty());
    match (users_present, workloads_present) {
        (false, false) if !users_named => errors.add(
            "conditions.users",
            "a policy must include users (includeUsers, includeGroups, includeRoles or guests) or workload identities (clientApplications)",
        ),
        (true, true) => errors.add(
            "conditions.clientApplications",
            "a policy is for users or for workload identities, not both (a policy for workload identities includes no users: includeUsers [\"None\"] or no users at all)",
        ),
        _ => {}
    }
    if let Some(users) = &c.users {
        let base = "conditions.users";
        ids(
            &mut errors,
            &format!("{base}.includeUsers"),
            &users.include_users,
            &[ALL, NONE, GUESTS_OR_EXTERNAL_USERS],
            "a user id",
        );
        keyword_alone(
            &mut errors,
            &format!("{base}.includeUsers"),
            &users.include_users,
            ALL,
        );
        keyword_alone(
            &mut errors,
            &format!("{base}.includeUsers"),
            &users.include_users,
            NONE,
        );
        ids(
            &mut errors,
            &format!("{base}.excludeUsers"),
            &users.exclude_users,
            &[GUESTS_OR_EXTERNAL_USERS],
            "a user id",
        );
        for (field, list) in [
            ("includeGroups", &users.include_groups),
            ("excludeGroups", &users.exclude_groups),
        ] {
            ids(
                &mut errors,
                &format!("{base}.{field}"),
                list,
                &[],
                "a group id",
            );
        }
        for (field, list) in [
            ("includeRoles", &users.include_roles),
            ("excludeRoles", &users.exclude_roles),
        ] {
            ids(
                &mut errors,
                &format!("{base}.{field}"),
                list,
                &[],
                "a directory role template id",
            );
        }
        guest_kinds(
            &mut errors,
            &format!("{base}.includeGuestsOrExternalUsers"),
            &users.include_guests_or_external_users,
        );
        guest_kinds(
            &mut errors,
            &format!("{base}.excludeGuestsOrExternalUsers"),
            &users.exclude_guests_or_external_users,
        );
    }
    let apps = &c.applications;
    let base = "conditions.applications";
    ids(
        &mut errors,
        &format!("{base}.includeApplications"),
        &apps.include_applications,
        &[ALL, NONE, ADMIN_PORTALS, OFFICE_365],
        "an application (client) id",
    );
    keyword_alone(
        &mut errors,
        &format!("{base}.includeApplications"),
        &apps.include_applications,
        ALL,
    );
    keyword_alone(
        &mut errors,
        &format!("{base}.includeApplications"),
        &apps.include_applications,
        NONE,
    );
    ids(
        &mut errors,
        &format!("{base}.excludeApplications"),
        &apps.exclude_applications,
        &[ADMIN_PORTALS, OFFICE_365],
        "an application (client) id",
    );
    for (index, action) in apps.include_user_actions.iter().enumerate() {
        if action != REGISTER_SECURITY_INFO && action != REGISTER_DEVICE {
            errors.add(
                format!("{base}.includeUserActions[{index}]"),
                format!("{action:?} is not {REGISTER_SECURITY_INFO} or {REGISTER_DEVICE}"),
            );
        }
    }
    for (index, context) in apps
        .include_authentication_context_class_references
        .iter()
        .enumerate()
    {
        if auth_context_number(context).is_none() {
            errors.add(
                format!("{base}.includeAuthenticationContextClassReferences[{index}]"),
                format!("{context:?} is not an authentication context c1 to c99"),
            );
        }
    }
    let kinds = [
        !apps.include_applications.is_empty(),
        !apps.include_user_actions.is_empty(),
        !apps
            .include_authentication_context_class_references
            .is_empty(),
    ];
    match kinds.iter().filter(|k| **k).count() {
        0 => errors.add(
            base,
            "include applications, user actions or authentication contexts",
        ),
        1 => {}
        _ => errors.add(
            base,
            "applications, user actions and authentication contexts cannot be combined in one policy",
        ),
    }
    if !apps.exclude_applications.is_empty() && apps.include_applications.is_empty() {
        errors.add(
            format!("{base}.excludeApplications"),
            "exclusions apply to included applications only",
        );
    }
    if let Some(workloads) = &c.client_applications {
        let base = "conditions.clientApplications";
        ids(
            &mut errors,
            &format!("{base}.includeServicePrincipals"),
            &workloads.include_service_principals,
            &[SERVICE_PRINCIPALS_IN_MY_TENANT],
            "a service principal id",
        );
        ids(
            &mut errors,
            &format!("{base}.excludeServicePrincipals"),
            &workloads.exclude_service_principals,
            &[],
            "a service principal id",
        );
    }
    if let Some(platforms) = &c.platforms {
        if platforms.include_platforms.is_empty() {
            errors.add(
                "conditions.platforms.includePlatforms",
                "name the platforms the policy is for, or all",
            );
        }
        if platforms.exclude_platforms.contains(&Platform::All) {
            errors.add(
                "conditions.platforms.excludePlatforms",
                "all cannot be excluded",
            );
        }
    }
    if let Some(locations) = &c.locations {
        let base = "conditions.locations";
        ids(
            &mut errors,
            &format!("{base}.includeLocations"),
            &locations.include_locations,
            &[ALL, ALL_TRUSTED],
            "a named location id",
        );
        ids(
            &mut errors,
            &format!("{base}.excludeLocations"),
            &locations.exclude_locations,
            &[ALL_TRUSTED],
            "a named location id",
        );
        if locations.include_locations.is_empty() {
            errors.add(
                format!("{base}.includeLocations"),
                "name the locations the policy is for, or All",
            );
        }
    }
    if let Some(devices) = &c.devices
        && let Some(filter) = &devices.device_filter
        && let Err(error) = rule::parse_device_filter(&filter.rule)
    {
        errors.add("conditions.devices.deviceFilter.rule", error.to_string());
    }
    if let Some(flows) = &c.authentication_flows {
        for method in flows.transfer_methods.split(',').map(str::trim) {
            if method != "deviceCodeFlow" && method != "authenticationTransfer" {
                errors.add(
                    "conditions.authenticationFlows.transferMethods",
                    format!("{method:?} is not deviceCodeFlow or authenticationTransfer"),
                );
            }
        }
    }
    if workloads_present && (!c.sign_in_risk_levels.is_empty() || !c.user_risk_levels.is_empty()) {
        errors.add(
            "conditions",
            "user and sign-in risk apply to users; use servicePrincipalRiskLevels for workload identities",
        );
    }
    if users_present && !c.service_principal_risk_levels.is_empty() {
        errors.add(
            "conditions.servicePrincipalRiskLevels",
            "applies to workload identities only",
        );
    }
    if let Some(grant) = &spec.grant_controls {
        grant_controls(&mut errors, grant, workloads_present);
    }
    if let Some(session) = &spec.session_controls {
        session_controls(&mut errors, session);
    }
    if spec.grant_controls.as_ref().is_none_or(is_empty_grant)
        && spec.session_controls.as_ref().is_none_or(is_empty_session)
    {
        errors.add(
            "grantControls",
            "a policy needs a grant control (block or a requirement) or a session control",
        );
    }
    errors.into_result()
}

fn is_empty_grant(grant: &GrantControls) -> bool {
    grant.built_in_controls.is_empty()
        && grant.terms_of_use.is_empty()
        && grant.authentication_strength.is_none()
}

fn is_empty_session(session: &SessionControls) -> bool {
    session == &SessionControls::default()
}

fn grant_controls(errors: &mut ValidationErrors, grant: &GrantControls, workloads: bool) {
    let base = "grantControls";
    let controls = &grant.built_in_controls;
    for (index, control) in controls.iter().enumerate() {
        if matches!(
            control,
            BuiltInControl::ApprovedApplication | BuiltInControl::CompliantApplication
        ) {
            errors.add(
                format!("{base}.builtInControls[{index}]"),
                "app protection policies (approved or compliant client apps) are not supported",
            );
        }
        if controls[..index].contains(control) {
            errors.add(
                format!("{base}.builtInControls[{index}]"),
                "is listed twice",
            );
        }
    }
    let block = controls.contains(&BuiltInControl::Block);
    let others = controls.len() > 1
        || !grant.terms_of_use.is_empty()
        || grant.authentication_strength.is_some();
    if block && others {
        errors.add(
            format!("{base}.builtInControls"),
            "block cannot be combined with other controls",
        );
    }
    if workloads && (!block || others) {
        errors.add(
            format!("{base}.builtInControls"),
            "a policy for workload identities can only block",
        );
    }
    if !grant.custom_authentication_factors.is_empty() {
        errors.add(
            format!("{base}.customAuthenticationFactors"),
            "custom controls are not supported",
        );
    }
    if grant.terms_of_use.len() > MAX_TERMS {
        errors.add(
            format!("{base}.termsOfUse"),
            format!("a policy requires at most {MAX_TERMS} terms of use"),
        );
    }
    ids(
        errors,
        &format!("{base}.termsOfUse"),
        &grant.terms_of_use,
        &[],
        "a terms of use id",
    );
    if controls.contains(&BuiltInControl::Mfa) && grant.authentication_strength.is_some() {
        errors.add(
            format!("{base}.authenticationStrength"),
            "require multifactor authentication or an authentication strength, not both",
        );
    }
    if controls.contains(&BuiltInControl::PasswordChange) {
        let with_mfa =
            controls.contains(&BuiltInControl::Mfa) || grant.authentication_strength.is_some();
        let only = controls
            .iter()
            .all(|c| matches!(c, BuiltInControl::PasswordChange | BuiltInControl::Mfa))
            && grant.terms_of_use.is_empty();
        if grant.operator != Operator::AND || !with_mfa || !only {
            errors.add(
                format!("{base}.builtInControls"),
                "passwordChange must be required together with (AND) multifactor authentication and nothing else",
            );
        }
    }
}

fn session_controls(errors: &mut ValidationErrors, session: &SessionControls) {
    let base = "sessionControls";
    if let Some(frequency) = &session.sign_in_frequency
        && frequency.is_enabled
    {
        let field = format!("{base}.signInFrequency");
        match frequency.frequency_interval {
            Some(FrequencyInterval::EveryTime) => {
                if frequency.value.is_some() || frequency.unit.is_some() {
                    errors.add(field, "everyTime takes no type or value");
                }
            }
            _ => match (frequency.unit, frequency.value) {
                (Some(FrequencyUnit::Hours), Some(1..=23))
                | (Some(FrequencyUnit::Days), Some(1..=365)) => {}
                (Some(_), Some(_)) => errors.add(
                    format!("{field}.value"),
                    "must be 1 to 23 hours or 1 to 365 days",
                ),
                _ => errors.add(
                    field,
                    "a time-based sign-in frequency needs a type (hours or days) and a value",
                ),
            },
        }
    }
    if let Some(cloud) = &session.cloud_app_security
        && cloud.is_enabled
        && cloud.cloud_app_security_type.is_none()
    {
        errors.add(
            format!("{base}.cloudAppSecurity.cloudAppSecurityType"),
            "say which restriction: monitorOnly, blockDownloads or mcasConfigured",
        );
    }
}

/// Checks a named location.
pub fn named_location(spec: &NamedLocationSpec) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    name(&mut errors, "displayName", spec.display_name());
    match spec {
        NamedLocationSpec::Ip(ip) => {
            if ip.ip_ranges.is_empty() || ip.ip_ranges.len() > MAX_RANGES {
                errors.add("ipRanges", format!("holds 1 to {MAX_RANGES} ranges"));
            }
            for (index, range) in ip.ip_ranges.iter().enumerate() {
                match IpNet::from_str(range.cidr_address.trim()) {
                    Ok(net) if net.prefix_len() == 0 => errors.add(
                        format!("ipRanges[{index}].cidrAddress"),
                        "a range cannot cover every address",
                    ),
                    Ok(_) => {}
                    Err(_) => errors.add(
                        format!("ipRanges[{index}].cidrAddress"),
                        format!("{:?} is not an IPv4 or IPv6 CIDR range", range.cidr_address),
                    ),
                }
            }
        }
        NamedLocationSpec::Country(country) => {
            if country.countries_and_regions.is_empty()
                && !country.include_unknown_countries_and_regions
            {
                errors.add("countriesAndRegions", "name at least one country or region");
            }
            for (index, code) in country.countries_and_regions.iter().enumerate() {
                if code.len() != 2 || !code.chars().all(|c| c.is_ascii_uppercase()) {
                    errors.add(
                        format!("countriesAndRegions[{index}]"),
                        format!("{code:?} is not an ISO 3166-1 alpha-2 code such as \"NL\""),
                    );
                }
            }
            if let Some(method) = &country.country_lookup_method
                && method != "clientIpAddress"
            {
                errors.add(
                    "countryLookupMethod",
                    "only clientIpAddress is supported (no GPS from an authenticator app)",
                );
            }
        }
    }
    errors.into_result()
}

/// Checks terms of use.
pub fn terms_of_use(spec: &TermsOfUseSpec) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    name(&mut errors, "displayName", &spec.display_name);
    if spec.content.trim().is_empty() || spec.content.chars().count() > MAX_TERMS_TEXT {
        errors.add(
            "content",
            format!("must be 1 to {MAX_TERMS_TEXT} characters"),
        );
    }
    errors.into_result()
}

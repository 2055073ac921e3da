//! Table-driven decisions: a policy set and a sign-in give a decision and its
//! reasons. Every case also runs through the reference evaluator
//! (`support::decide`), which must agree.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;
use tessera_authn::strength;
use tessera_ca::engine::*;
use tessera_ca::model::*;

/// A short form of one policy's result: `success`, `failure`,
/// `notApplied:users` (`!` when an exclusion matched), `reportOnly...`.
fn short(outcome: &PolicyOutcome) -> String {
    let kind = serde_json::to_value(outcome.kind).unwrap();
    let kind = kind.as_str().unwrap().to_string();
    match outcome.miss {
        Some(miss) => {
            let condition = serde_json::to_value(miss.condition).unwrap();
            format!(
                "{kind}:{}{}",
                condition.as_str().unwrap(),
                if miss.excluded { "!" } else { "" }
            )
        }
        None => kind,
    }
}

struct Case {
    name: &'static str,
    policies: Vec<serde_json::Value>,
    ctx: Ctx,
    outcome: Outcome,
    results: &'static [&'static str],
}

fn case(
    name: &'static str,
    policies: Vec<serde_json::Value>,
    ctx: Ctx,
    outcome: Outcome,
    results: &'static [&'static str],
) -> Case {
    Case {
        name,
        policies,
        ctx,
        outcome,
        results,
    }
}

fn ip(text: &str) -> Option<std::net::IpAddr> {
    Some(text.parse().unwrap())
}

fn run(cases: Vec<Case>) {
    for c in cases {
        let policies: Vec<PolicySpec> = c.policies.into_iter().map(policy).collect();
        let (_, decision) = decide(&policies, &c.ctx, false);
        let got: Vec<String> = decision.policies.iter().map(short).collect();
        assert_eq!(got, c.results, "{}: per-policy results", c.name);
        assert_eq!(decision.outcome, c.outcome, "{}: outcome", c.name);
    }
}

#[test]
fn users() {
    use Outcome::*;
    let staff = STAFF.to_string();
    let glass = BREAK_GLASS.to_string();
    let user = USER.to_string();
    let admin = GLOBAL_ADMIN.to_string();
    run(vec![
        case(
            "all users",
            vec![json!({})],
            Ctx::default(),
            Interrupt,
            &["failure"],
        ),
        case(
            "none",
            vec![json!({"conditions": {"users": {"includeUsers": ["None"]}}})],
            Ctx::default(),
            Allow,
            &["notApplied:users"],
        ),
        case(
            "by id",
            vec![json!({"conditions": {"users": {"includeUsers": [user]}}})],
            Ctx::default(),
            Interrupt,
            &["failure"],
        ),
        case(
            "another user",
            vec![json!({"conditions": {"users": {"includeUsers": [user]}}})],
            Ctx {
                user: OTHER_USER,
                ..Ctx::default()
            },
            Allow,
            &["notApplied:users"],
        ),
        case(
            "nested group",
            vec![json!({"conditions": {"users": {"includeUsers": [], "includeGroups": [staff]}}})],
            Ctx::default(),
            Interrupt,
            &["failure"],
        ),
        case(
            "not in the group",
            vec![json!({"conditions": {"users": {"includeUsers": [], "includeGroups": [staff]}}})],
            Ctx {
                user: OTHER_USER,
                ..Ctx::default()
            },
            Allow,
            &["notApplied:users"],
        ),
        case(
            "excluded group wins",
            vec![json!({"conditions": {"users": {"excludeGroups": [glass]}}})],
            Ctx {
                user: OTHER_USER,
                ..Ctx::default()
            },
            Allow,
            &["notApplied:users!"],
        ),
        case(
            "excluded user wins over included",
            vec![
                json!({"conditions": {"users": {"includeUsers": [user], "excludeUsers": [user]}}}),
            ],
            Ctx::default(),
            Allow,
            &["notApplied:users!"],
        ),
        case(
            "nested exclusion wins over nested inclusion",
            vec![
                json!({"conditions": {"users": {"includeUsers": [], "includeGroups": [staff], "excludeGroups": [NESTED.to_string()]}}}),
            ],
            Ctx::default(),
            Allow,
            &["notApplied:users!"],
        ),
        case(
            "role holder",
            vec![json!({"conditions": {"users": {"includeUsers": [], "includeRoles": [admin]}}})],
            Ctx {
                roles: vec![GLOBAL_ADMIN],
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "no role",
            vec![json!({"conditions": {"users": {"includeUsers": [], "includeRoles": [admin]}}})],
            Ctx::default(),
            Allow,
            &["notApplied:users"],
        ),
        case(
            "excluded role",
            vec![json!({"conditions": {"users": {"excludeRoles": [admin]}}})],
            Ctx {
                roles: vec![GLOBAL_ADMIN],
                ..Ctx::default()
            },
            Allow,
            &["notApplied:users!"],
        ),
        case(
            "guests keyword",
            vec![json!({"conditions": {"users": {"includeUsers": ["GuestsOrExternalUsers"]}}})],
            Ctx {
                user: GUEST,
                guest: Some("internalGuest"),
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "guests keyword, a member",
            vec![json!({"conditions": {"users": {"includeUsers": ["GuestsOrExternalUsers"]}}})],
            Ctx::default(),
            Allow,
            &["notApplied:users"],
        ),
        case(
            "guest types",
            vec![
                json!({"conditions": {"users": {"includeUsers": [], "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "internalGuest,b2bCollaborationGuest", "externalTenants": {"membershipKind": "all"}}}}}),
            ],
            Ctx {
                user: GUEST,
                guest: Some("b2bCollaborationGuest"),
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "guest type not listed",
            vec![
                json!({"conditions": {"users": {"includeUsers": [], "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "serviceProvider"}}}}),
            ],
            Ctx {
                user: GUEST,
                guest: Some("internalGuest"),
                ..Ctx::default()
            },
            Allow,
            &["notApplied:users"],
        ),
        case(
            "guests excluded",
            vec![json!({"conditions": {"users": {"excludeUsers": ["GuestsOrExternalUsers"]}}})],
            Ctx {
                user: GUEST,
                guest: Some("internalGuest"),
                ..Ctx::default()
            },
            Allow,
            &["notApplied:users!"],
        ),
        case(
            "a user policy does not apply to a workload",
            vec![json!({})],
            Ctx {
                workload: Some(WORKLOAD),
                ..Ctx::default()
            },
            Allow,
            &["notApplied:users"],
        ),
    ]);
}

#[test]
fn applications_actions_and_contexts() {
    use Outcome::*;
    let app = APP.to_string();
    let app2 = APP2.to_string();
    let portal = Target::App {
        resource: None,
        app_id: tessera_core::AppId::from_uuid(APP2),
        admin_portal: true,
    };
    let action = Target::UserAction(UserAction::RegisterSecurityInfo);
    let with_resource = Ctx {
        target: Target::App {
            app_id: tessera_core::AppId::from_uuid(APP),
            resource: Some(tessera_core::AppId::from_uuid(APP2)),
            admin_portal: false,
        },
        ..Ctx::default()
    };
    run(vec![
        case(
            "chosen app",
            vec![json!({"conditions": {"applications": {"includeApplications": [app]}}})],
            Ctx::default(),
            Interrupt,
            &["failure"],
        ),
        case(
            "another app",
            vec![json!({"conditions": {"applications": {"includeApplications": [app2]}}})],
            Ctx::default(),
            Allow,
            &["notApplied:applications"],
        ),
        case(
            "excluded app",
            vec![
                json!({"conditions": {"applications": {"includeApplications": ["All"], "excludeApplications": [app]}}}),
            ],
            Ctx::default(),
            Allow,
            &["notApplied:applications!"],
        ),
        case(
            "no app",
            vec![json!({"conditions": {"applications": {"includeApplications": ["None"]}}})],
            Ctx::default(),
            Allow,
            &["notApplied:applications"],
        ),
        case(
            "admin portals",
            vec![
                json!({"conditions": {"applications": {"includeApplications": ["MicrosoftAdminPortals"]}}}),
            ],
            Ctx {
                target: portal,
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "admin portals, another app",
            vec![
                json!({"conditions": {"applications": {"includeApplications": ["MicrosoftAdminPortals"]}}}),
            ],
            Ctx::default(),
            Allow,
            &["notApplied:applications"],
        ),
        case(
            "admin portals excluded",
            vec![
                json!({"conditions": {"applications": {"excludeApplications": ["MicrosoftAdminPortals"]}}}),
            ],
            Ctx {
                target: portal,
                ..Ctx::default()
            },
            Allow,
            &["notApplied:applications!"],
        ),
        case(
            "user action",
            vec![
                json!({"conditions": {"applications": {"includeApplications": null, "includeUserActions": ["urn:user:registersecurityinfo"]}}}),
            ],
            Ctx {
                target: action,
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "another user action",
            vec![
                json!({"conditions": {"applications": {"includeApplications": null, "includeUserActions": ["urn:user:registerdevice"]}}}),
            ],
            Ctx {
                target: action,
                ..Ctx::default()
            },
            Allow,
            &["notApplied:applications"],
        ),
        case(
            "an app policy is not a user action",
            vec![json!({})],
            Ctx {
                target: action,
                ..Ctx::default()
            },
            Allow,
            &["notApplied:applications"],
        ),
        case(
            "a user action policy is not an app",
            vec![
                json!({"conditions": {"applications": {"includeApplications": null, "includeUserActions": ["urn:user:registersecurityinfo"]}}}),
            ],
            Ctx::default(),
            Allow,
            &["notApplied:applications"],
        ),
        case(
            "authentication context asked",
            vec![
                json!({"conditions": {"applications": {"includeApplications": null, "includeAuthenticationContextClassReferences": ["c1"]}}}),
            ],
            Ctx {
                contexts: vec!["c1".into()],
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "authentication context not asked",
            vec![
                json!({"conditions": {"applications": {"includeApplications": null, "includeAuthenticationContextClassReferences": ["c1"]}}}),
            ],
            Ctx {
                contexts: vec!["c2".into()],
                ..Ctx::default()
            },
            Allow,
            &["notApplied:applications"],
        ),
        case(
            "a policy for the client applies whatever resource is named",
            vec![json!({"conditions": {"applications": {"includeApplications": [app.clone()]}}})],
            with_resource.clone(),
            Interrupt,
            &["failure"],
        ),
        case(
            "a policy for the resource applies too",
            vec![json!({"conditions": {"applications": {"includeApplications": [app2.clone()]}}})],
            with_resource.clone(),
            Interrupt,
            &["failure"],
        ),
        case(
            "excluding the resource does not exclude the client",
            vec![
                json!({"conditions": {"applications": {"includeApplications": ["All"], "excludeApplications": [app2.clone()]}}}),
            ],
            with_resource.clone(),
            Interrupt,
            &["failure"],
        ),
        case(
            "excluded as client and resource",
            vec![
                json!({"conditions": {"applications": {"includeApplications": ["All"], "excludeApplications": [app.clone(), app2.clone()]}}}),
            ],
            with_resource.clone(),
            Allow,
            &["notApplied:applications!"],
        ),
    ]);
}

#[test]
fn clients_platforms_locations_devices_risk_flows() {
    use Outcome::*;
    let office = OFFICE.to_string();
    let countries = COUNTRIES.to_string();
    let unknown = UNKNOWN_COUNTRY.to_string();
    run(vec![
        case(
            "browser only, browser",
            vec![json!({"conditions": {"clientAppTypes": ["browser"]}})],
            Ctx::default(),
            Interrupt,
            &["failure"],
        ),
        case(
            "browser only, desktop client",
            vec![json!({"conditions": {"clientAppTypes": ["browser"]}})],
            Ctx {
                client: ClientApp::MobileAppsAndDesktopClients,
                ..Ctx::default()
            },
            Allow,
            &["notApplied:clientAppTypes"],
        ),
        case(
            "legacy clients blocked",
            vec![
                json!({"conditions": {"clientAppTypes": ["exchangeActiveSync", "other"]}, "grantControls": {"builtInControls": ["block"]}}),
            ],
            Ctx {
                client: ClientApp::Other,
                ..Ctx::default()
            },
            Block,
            &["failure"],
        ),
        case(
            "easSupported is exchangeActiveSync",
            vec![
                json!({"conditions": {"clientAppTypes": ["easSupported"]}, "grantControls": {"builtInControls": ["block"]}}),
            ],
            Ctx {
                client: ClientApp::ExchangeActiveSync,
                ..Ctx::default()
            },
            Block,
            &["failure"],
        ),
        case(
            "platform included",
            vec![json!({"conditions": {"platforms": {"includePlatforms": ["windows", "macOS"]}}})],
            Ctx::default(),
            Interrupt,
            &["failure"],
        ),
        case(
            "platform not included",
            vec![json!({"conditions": {"platforms": {"includePlatforms": ["iOS"]}}})],
            Ctx::default(),
            Allow,
            &["notApplied:platforms"],
        ),
        case(
            "unknown platform, named ones",
            vec![json!({"conditions": {"platforms": {"includePlatforms": ["windows"]}}})],
            Ctx {
                platform: None,
                ..Ctx::default()
            },
            Allow,
            &["notApplied:platforms"],
        ),
        case(
            "unknown platform blocked",
            vec![
                json!({"conditions": {"platforms": {"includePlatforms": ["all"], "excludePlatforms": ["android", "iOS", "windows", "macOS", "linux"]}}, "grantControls": {"builtInControls": ["block"]}}),
            ],
            Ctx {
                platform: None,
                ..Ctx::default()
            },
            Block,
            &["failure"],
        ),
        case(
            "known platform excluded",
            vec![
                json!({"conditions": {"platforms": {"includePlatforms": ["all"], "excludePlatforms": ["windows"]}}}),
            ],
            Ctx::default(),
            Allow,
            &["notApplied:platforms!"],
        ),
        case(
            "all locations",
            vec![json!({"conditions": {"locations": {"includeLocations": ["All"]}}})],
            Ctx {
                ip: None,
                country: None,
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "trusted excluded, at the office",
            vec![
                json!({"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}}}),
            ],
            Ctx {
                ip: ip("192.0.2.9"),
                ..Ctx::default()
            },
            Allow,
            &["notApplied:locations!"],
        ),
        case(
            "trusted excluded, IPv6 office",
            vec![
                json!({"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}}}),
            ],
            Ctx {
                ip: ip("2001:db8::1"),
                ..Ctx::default()
            },
            Allow,
            &["notApplied:locations!"],
        ),
        case(
            "trusted excluded, elsewhere",
            vec![
                json!({"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}}}),
            ],
            Ctx::default(),
            Interrupt,
            &["failure"],
        ),
        case(
            "only trusted, elsewhere",
            vec![json!({"conditions": {"locations": {"includeLocations": ["AllTrusted"]}}})],
            Ctx::default(),
            Allow,
            &["notApplied:locations"],
        ),
        case(
            "named office",
            vec![json!({"conditions": {"locations": {"includeLocations": [office]}}})],
            Ctx {
                ip: ip("192.0.2.200"),
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "block outside allowed countries, inside",
            vec![
                json!({"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": [countries]}}, "grantControls": {"builtInControls": ["block"]}}),
            ],
            Ctx {
                country: Some(*b"NL"),
                ..Ctx::default()
            },
            Allow,
            &["notApplied:locations!"],
        ),
        case(
            "block outside allowed countries, outside",
            vec![
                json!({"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": [countries]}}, "grantControls": {"builtInControls": ["block"]}}),
            ],
            Ctx::default(),
            Block,
            &["failure"],
        ),
        case(
            "unknown country counted",
            vec![json!({"conditions": {"locations": {"includeLocations": [unknown]}}})],
            Ctx {
                country: None,
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "known country not unknown",
            vec![json!({"conditions": {"locations": {"includeLocations": [unknown]}}})],
            Ctx::default(),
            Allow,
            &["notApplied:locations"],
        ),
        case(
            "filter excludes managed device",
            vec![
                json!({"conditions": {"devices": {"deviceFilter": {"mode": "exclude", "rule": "device.isCompliant -eq True -and device.deviceOwnership -eq \"Company\""}}}}),
            ],
            Ctx {
                device: Some(compliant_device()),
                ..Ctx::default()
            },
            Allow,
            &["notApplied:devices!"],
        ),
        case(
            "filter exclusion, personal device",
            vec![
                json!({"conditions": {"devices": {"deviceFilter": {"mode": "exclude", "rule": "device.isCompliant -eq True -and device.deviceOwnership -eq \"Company\""}}}}),
            ],
            Ctx {
                device: Some(personal_device()),
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "filter exclusion, unregistered device",
            vec![
                json!({"conditions": {"devices": {"deviceFilter": {"mode": "exclude", "rule": "device.isCompliant -eq True"}}}}),
            ],
            Ctx::default(),
            Interrupt,
            &["failure"],
        ),
        case(
            "filter inclusion, unregistered device",
            vec![
                json!({"conditions": {"devices": {"deviceFilter": {"mode": "include", "rule": "device.trustType -eq \"ServerAD\""}}}}),
            ],
            Ctx::default(),
            Allow,
            &["notApplied:devices"],
        ),
        case(
            "filter inclusion, hybrid joined",
            vec![
                json!({"conditions": {"devices": {"deviceFilter": {"mode": "include", "rule": "device.trustType -eq \"ServerAD\""}}}}),
            ],
            Ctx {
                device: Some(compliant_device()),
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "high sign-in risk blocked",
            vec![
                json!({"conditions": {"signInRiskLevels": ["high"]}, "grantControls": {"builtInControls": ["block"]}}),
            ],
            Ctx {
                sign_in_risk: RiskLevel::High,
                ..Ctx::default()
            },
            Block,
            &["failure"],
        ),
        case(
            "low sign-in risk",
            vec![
                json!({"conditions": {"signInRiskLevels": ["high"]}, "grantControls": {"builtInControls": ["block"]}}),
            ],
            Ctx {
                sign_in_risk: RiskLevel::Low,
                ..Ctx::default()
            },
            Allow,
            &["notApplied:signInRisk"],
        ),
        case(
            "high user risk",
            vec![
                json!({"conditions": {"userRiskLevels": ["high"]}, "grantControls": {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}}),
            ],
            Ctx {
                user_risk: RiskLevel::High,
                ..Ctx::mfa()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "high user risk, password changed",
            vec![
                json!({"conditions": {"userRiskLevels": ["high"]}, "grantControls": {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}}),
            ],
            Ctx {
                user_risk: RiskLevel::High,
                password_changed: true,
                ..Ctx::mfa()
            },
            Allow,
            &["success"],
        ),
        case(
            "medium user risk",
            vec![json!({"conditions": {"userRiskLevels": ["high"]}})],
            Ctx {
                user_risk: RiskLevel::Medium,
                ..Ctx::default()
            },
            Allow,
            &["notApplied:userRisk"],
        ),
        case(
            "device code flow blocked",
            vec![
                json!({"conditions": {"authenticationFlows": {"transferMethods": "deviceCodeFlow,authenticationTransfer"}}, "grantControls": {"builtInControls": ["block"]}}),
            ],
            Ctx {
                device_code: true,
                client: ClientApp::MobileAppsAndDesktopClients,
                ..Ctx::default()
            },
            Block,
            &["failure"],
        ),
        case(
            "not a device code flow",
            vec![
                json!({"conditions": {"authenticationFlows": {"transferMethods": "deviceCodeFlow"}}, "grantControls": {"builtInControls": ["block"]}}),
            ],
            Ctx::default(),
            Allow,
            &["notApplied:authenticationFlows"],
        ),
    ]);
}

#[test]
fn workload_identities() {
    use Outcome::*;
    let workload = |patch: serde_json::Value| {
        let mut base = json!({"conditions": {"users": {"includeUsers": []}, "clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"]}}, "grantControls": {"builtInControls": ["block"]}});
        merge(&mut base, &patch);
        base
    };
    let sp = |id| Ctx {
        workload: Some(id),
        ..Ctx::default()
    };
    run(vec![
        case(
            "all workloads blocked",
            vec![workload(json!({}))],
            sp(WORKLOAD),
            Block,
            &["failure"],
        ),
        case(
            "excluded workload",
            vec![workload(
                json!({"conditions": {"clientApplications": {"excludeServicePrincipals": [WORKLOAD.to_string()]}}}),
            )],
            sp(WORKLOAD),
            Allow,
            &["notApplied:workloadIdentities!"],
        ),
        case(
            "one workload",
            vec![workload(
                json!({"conditions": {"clientApplications": {"includeServicePrincipals": [WORKLOAD.to_string()]}}}),
            )],
            sp(OTHER_WORKLOAD),
            Allow,
            &["notApplied:workloadIdentities"],
        ),
        case(
            "risky workload",
            vec![workload(
                json!({"conditions": {"servicePrincipalRiskLevels": ["high"]}}),
            )],
            Ctx {
                user_risk: RiskLevel::High,
                ..sp(WORKLOAD)
            },
            Block,
            &["failure"],
        ),
        case(
            "workload not risky",
            vec![workload(
                json!({"conditions": {"servicePrincipalRiskLevels": ["high"]}}),
            )],
            sp(WORKLOAD),
            Allow,
            &["notApplied:servicePrincipalRisk"],
        ),
        case(
            "outside the office",
            vec![workload(
                json!({"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}}}),
            )],
            sp(WORKLOAD),
            Block,
            &["failure"],
        ),
        case(
            "a workload policy does not apply to users",
            vec![workload(json!({}))],
            Ctx::default(),
            Allow,
            &["notApplied:workloadIdentities"],
        ),
        case(
            "as Entra exports it: includeUsers None beside clientApplications",
            vec![workload(
                json!({"conditions": {"users": {"includeUsers": ["None"]}}}),
            )],
            sp(WORKLOAD),
            Block,
            &["failure"],
        ),
        case(
            "as Entra exports it, for a user",
            vec![workload(
                json!({"conditions": {"users": {"includeUsers": ["None"]}}}),
            )],
            Ctx::default(),
            Allow,
            &["notApplied:workloadIdentities"],
        ),
    ]);
}

#[test]
fn a_policy_is_for_users_or_for_workloads() {
    let check = |users: serde_json::Value| {
        let spec: PolicySpec = serde_json::from_value(json!({
            "displayName": "P", "state": "enabled",
            "conditions": {"users": users, "applications": {"includeApplications": ["All"]},
                "clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"]}},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }))
        .unwrap();
        tessera_ca::validate::policy(&spec).map_err(|e| e.to_string())
    };
    // Nobody, as Entra writes it (or no users at all): a workload policy.
    check(json!({"includeUsers": ["None"], "excludeUsers": [], "includeGroups": [], "includeRoles": []}))
        .unwrap();
    check(json!({})).unwrap();
    // Users and workloads together: refused, whoever the users are.
    for users in [
        json!({"includeUsers": ["All"]}),
        json!({"includeUsers": [USER.to_string()]}),
        json!({"includeUsers": ["None"], "includeGroups": [STAFF.to_string()]}),
        json!({"includeRoles": [GLOBAL_ADMIN.to_string()]}),
        json!({"includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "internalGuest"}}),
    ] {
        let error = check(users.clone()).unwrap_err();
        assert!(error.contains("not both"), "{users}: {error}");
    }
}

#[test]
fn grant_controls() {
    use Outcome::*;
    let strong = json!({"grantControls": {"builtInControls": [], "authenticationStrength": {"id": strength::PHISHING_RESISTANT_MFA}}});
    let terms =
        json!({"grantControls": {"builtInControls": [], "termsOfUse": [TERMS.to_string()]}});
    run(vec![
        case("mfa met", vec![json!({})], Ctx::mfa(), Allow, &["success"]),
        case(
            "mfa unmet",
            vec![json!({})],
            Ctx::default(),
            Interrupt,
            &["failure"],
        ),
        case(
            "strength unmet by MFA",
            vec![strong.clone()],
            Ctx::mfa(),
            Interrupt,
            &["failure"],
        ),
        case(
            "strength met",
            vec![strong],
            Ctx {
                strengths: vec![strength::MFA, strength::PHISHING_RESISTANT_MFA],
                ..Ctx::default()
            },
            Allow,
            &["success"],
        ),
        case(
            "compliant device",
            vec![json!({"grantControls": {"builtInControls": ["compliantDevice"]}})],
            Ctx {
                device: Some(compliant_device()),
                ..Ctx::default()
            },
            Allow,
            &["success"],
        ),
        case(
            "no compliant device",
            vec![json!({"grantControls": {"builtInControls": ["compliantDevice"]}})],
            Ctx {
                device: Some(personal_device()),
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "domain joined",
            vec![json!({"grantControls": {"builtInControls": ["domainJoinedDevice"]}})],
            Ctx {
                device: Some(compliant_device()),
                ..Ctx::default()
            },
            Allow,
            &["success"],
        ),
        case(
            "OR: one of them",
            vec![
                json!({"grantControls": {"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}}),
            ],
            Ctx {
                device: Some(compliant_device()),
                ..Ctx::default()
            },
            Allow,
            &["success"],
        ),
        case(
            "AND: one missing",
            vec![
                json!({"grantControls": {"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]}}),
            ],
            Ctx {
                device: Some(compliant_device()),
                ..Ctx::default()
            },
            Interrupt,
            &["failure"],
        ),
        case(
            "AND: both",
            vec![
                json!({"grantControls": {"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]}}),
            ],
            Ctx {
                device: Some(compliant_device()),
                ..Ctx::mfa()
            },
            Allow,
            &["success"],
        ),
        case(
            "terms not accepted",
            vec![terms.clone()],
            Ctx::default(),
            Interrupt,
            &["failure"],
        ),
        case(
            "terms accepted",
            vec![terms],
            Ctx {
                terms: vec![TERMS],
                ..Ctx::default()
            },
            Allow,
            &["success"],
        ),
        case(
            "session controls only",
            vec![
                json!({"grantControls": null, "sessionControls": {"applicationEnforcedRestrictions": {"isEnabled": true}}}),
            ],
            Ctx::default(),
            Allow,
            &["success"],
        ),
    ]);
}

#[test]
fn combination_rules() {
    use Outcome::*;
    let block = json!({"grantControls": {"builtInControls": ["block"]}});
    let strong = json!({"grantControls": {"builtInControls": [], "authenticationStrength": {"id": strength::PHISHING_RESISTANT_MFA}}});
    let report_only = |mut p: serde_json::Value| {
        merge(
            &mut p,
            &json!({"state": "enabledForReportingButNotEnforced"}),
        );
        p
    };
    run(vec![
        case(
            "a block wins over a grant",
            vec![json!({}), block.clone()],
            Ctx::mfa(),
            Block,
            &["success", "failure"],
        ),
        case(
            "a block wins over unmet requirements",
            vec![json!({}), block.clone()],
            Ctx::default(),
            Block,
            &["failure", "failure"],
        ),
        case(
            "every requirement must be met",
            vec![json!({}), strong.clone()],
            Ctx::mfa(),
            Interrupt,
            &["success", "failure"],
        ),
        case(
            "both met",
            vec![json!({}), strong],
            Ctx {
                strengths: vec![strength::MFA, strength::PHISHING_RESISTANT_MFA],
                ..Ctx::default()
            },
            Allow,
            &["success", "success"],
        ),
        case(
            "report-only block lets the user in",
            vec![report_only(block.clone())],
            Ctx::default(),
            Allow,
            &["reportOnlyFailure"],
        ),
        case(
            "report-only requirement unmet",
            vec![report_only(json!({}))],
            Ctx::default(),
            Allow,
            &["reportOnlyInterrupted"],
        ),
        case(
            "report-only requirement met",
            vec![report_only(json!({}))],
            Ctx::mfa(),
            Allow,
            &["reportOnlySuccess"],
        ),
        case(
            "report-only not applied",
            vec![report_only(
                json!({"conditions": {"users": {"includeUsers": ["None"]}}}),
            )],
            Ctx::mfa(),
            Allow,
            &["reportOnlyNotApplied:users"],
        ),
        case(
            "report-only beside enforced",
            vec![report_only(block), json!({})],
            Ctx::mfa(),
            Allow,
            &["reportOnlyFailure", "success"],
        ),
        case(
            "disabled policies are left out",
            vec![
                json!({"state": "disabled", "grantControls": {"builtInControls": ["block"]}}),
                json!({}),
            ],
            Ctx::mfa(),
            Allow,
            &["success"],
        ),
    ]);
}

#[test]
fn session_controls_strictest_wins() {
    let frequency = |hours: u32| json!({"grantControls": null, "sessionControls": {"signInFrequency": {"isEnabled": true, "type": "hours", "value": hours, "frequencyInterval": "timeBased", "authenticationType": "primaryAndSecondaryAuthentication"}}});
    let policies: Vec<PolicySpec> = [
        frequency(12),
        frequency(4),
        json!({"grantControls": null, "sessionControls": {"persistentBrowser": {"isEnabled": true, "mode": "always"}}}),
        json!({"grantControls": null, "sessionControls": {"persistentBrowser": {"isEnabled": true, "mode": "never"}, "applicationEnforcedRestrictions": {"isEnabled": true}}}),
        json!({"grantControls": null, "sessionControls": {"continuousAccessEvaluation": {"mode": "disabled"}, "cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "monitorOnly"}}}),
        json!({"grantControls": null, "sessionControls": {"continuousAccessEvaluation": {"mode": "strictLocation"}, "cloudAppSecurity": {"isEnabled": true, "cloudAppSecurityType": "blockDownloads"}, "disableResilienceDefaults": true}}),
    ]
    .into_iter()
    .map(policy)
    .collect();
    let (_, decision) = decide(
        &policies,
        &Ctx {
            auth_age: Some(3600),
            ..Ctx::default()
        },
        false,
    );
    assert_eq!(decision.outcome, Outcome::Allow);
    assert_eq!(
        decision.session,
        EffectiveSession {
            sign_in_frequency_seconds: Some(4 * 3600),
            persistent_browser: Some(false),
            application_enforced_restrictions: true,
            restricted_session: Some(CloudAppSecurityType::BlockDownloads),
            continuous_access_evaluation: Some(CaeMode::StrictLocation),
            disable_resilience_defaults: true,
        }
    );
    // Five hours after signing in, the four-hour policy asks for a new sign-in.
    let (set, stale) = decide(
        &policies,
        &Ctx {
            auth_age: Some(5 * 3600),
            ..Ctx::default()
        },
        false,
    );
    assert_eq!(stale.outcome, Outcome::Interrupt);
    assert!(stale.policies[1].reauthenticate && !stale.policies[0].reauthenticate);
    assert!(stale.remedy(&set).reauthenticate);
    // Every time: a sign-in within five minutes counts, an older one does not.
    let every = vec![policy(
        json!({"grantControls": null, "sessionControls": {"signInFrequency": {"isEnabled": true, "frequencyInterval": "everyTime", "authenticationType": "primaryAndSecondaryAuthentication"}}}),
    )];
    assert_eq!(
        decide(
            &every,
            &Ctx {
                auth_age: Some(10),
                ..Ctx::default()
            },
            false
        )
        .1
        .outcome,
        Outcome::Allow
    );
    assert_eq!(
        decide(
            &every,
            &Ctx {
                auth_age: Some(600),
                ..Ctx::default()
            },
            false
        )
        .1
        .outcome,
        Outcome::Interrupt
    );
}

#[test]
fn remedies_say_what_would_satisfy() {
    let policies: Vec<PolicySpec> = vec![
        policy(
            json!({"grantControls": {"operator": "OR", "builtInControls": ["compliantDevice", "mfa"]}}),
        ),
        policy(
            json!({"grantControls": {"builtInControls": [], "authenticationStrength": {"id": strength::PHISHING_RESISTANT_MFA}, "termsOfUse": [TERMS.to_string()], "operator": "AND"}}),
        ),
    ];
    let (set, decision) = decide(&policies, &Ctx::default(), false);
    assert_eq!(decision.outcome, Outcome::Interrupt);
    let remedy = decision.remedy(&set);
    assert_eq!(
        remedy.strengths,
        vec![strength::MFA, strength::PHISHING_RESISTANT_MFA]
    );
    assert_eq!(remedy.accept_terms, vec![TERMS]);
    assert!(remedy.impossible.is_empty());
    let device = vec![policy(
        json!({"grantControls": {"operator": "AND", "builtInControls": ["compliantDevice", "mfa"]}}),
    )];
    let (set, decision) = decide(&device, &Ctx::default(), false);
    let remedy = decision.remedy(&set);
    assert_eq!(remedy.impossible, vec![Control::CompliantDevice]);
    // The explanation carries every policy, its result and what it required.
    let explained = serde_json::to_value(decision.explain(&set)).unwrap();
    assert_eq!(explained["result"], "interrupt");
    assert_eq!(explained["policies"][0]["result"], "failure");
    assert_eq!(explained["policies"][0]["operator"], "AND");
    assert_eq!(
        explained["policies"][0]["controls"][0],
        json!({"control": "compliantDevice", "satisfied": false})
    );
    assert_eq!(
        explained["remedy"]["impossible"][0],
        json!({"control": "compliantDevice"})
    );
}

#[test]
fn security_defaults_until_turned_off() {
    let admin = Ctx {
        roles: vec![GLOBAL_ADMIN],
        ..Ctx::default()
    };
    let (_, decision) = decide(&[], &admin, true);
    assert!(decision.security_defaults);
    assert_eq!(
        decision.outcome,
        Outcome::Interrupt,
        "administrators need MFA"
    );
    assert_eq!(
        decide(
            &[],
            &Ctx {
                roles: vec![GLOBAL_ADMIN],
                ..Ctx::mfa()
            },
            true
        )
        .1
        .outcome,
        Outcome::Allow
    );
    assert_eq!(
        decide(&[], &Ctx::default(), true).1.outcome,
        Outcome::Allow,
        "users sign in to apps"
    );
    let management = Ctx {
        target: Target::App {
            resource: None,
            app_id: tessera_core::AppId::from_uuid(APP2),
            admin_portal: true,
        },
        ..Ctx::default()
    };
    assert_eq!(
        decide(&[], &management, true).1.outcome,
        Outcome::Interrupt,
        "management needs MFA"
    );
    let legacy = Ctx {
        client: ClientApp::Other,
        ..Ctx::mfa()
    };
    assert_eq!(
        decide(&[], &legacy, true).1.outcome,
        Outcome::Block,
        "legacy clients are blocked"
    );
    let unregistered = Ctx {
        has_mfa_method: false,
        ..Ctx::default()
    };
    assert!(decide(&[], &unregistered, true).1.register_mfa);
    // Turned off: nothing applies.
    let (_, off) = decide(&[], &legacy, false);
    assert!(!off.security_defaults && off.policies.is_empty());
    assert_eq!(off.outcome, Outcome::Allow);
    // A policy of the tenant's own does not turn them off (no silent weakening).
    let watching = vec![policy(
        json!({"state": "enabledForReportingButNotEnforced", "grantControls": null, "sessionControls": {"applicationEnforcedRestrictions": {"isEnabled": true}}}),
    )];
    let (_, with_policy) = decide(&watching, &legacy, true);
    assert_eq!(with_policy.outcome, Outcome::Block);
    assert_eq!(with_policy.policies.len(), 4);
}

#[test]
fn authentication_contexts_met_by_policies() {
    let for_c1 = json!({"conditions": {"applications": {"includeApplications": null, "includeAuthenticationContextClassReferences": ["c1"]}}});
    let requested: Vec<String> = ["c1", "c2", "urn:tessera:acr:mfa"]
        .into_iter()
        .map(String::from)
        .collect();
    let asked = Ctx {
        contexts: vec!["c1".into(), "c2".into()],
        ..Ctx::mfa()
    };
    // c1's policy applied and is met; no policy targets c2; the urn is no context.
    let (set, decision) = decide(&[policy(for_c1.clone())], &asked, false);
    assert_eq!(decision.outcome, Outcome::Allow);
    assert_eq!(decision.met_auth_contexts(&set, &requested), ["c1"]);
    // Unmet: the decision interrupts, so no context is met.
    let without_mfa = Ctx {
        strengths: Vec::new(),
        ..asked.clone()
    };
    let (set, decision) = decide(&[policy(for_c1.clone())], &without_mfa, false);
    assert_eq!(decision.outcome, Outcome::Interrupt);
    assert!(decision.met_auth_contexts(&set, &requested).is_empty());
    // A report-only policy meets nothing.
    let mut report_only = for_c1;
    report_only["state"] = json!("enabledForReportingButNotEnforced");
    let (set, decision) = decide(&[policy(report_only)], &asked, false);
    assert_eq!(decision.outcome, Outcome::Allow);
    assert!(decision.met_auth_contexts(&set, &requested).is_empty());
}

/// Continuous access evaluation's strict location enforcement: a token issued
/// at the office carries the policies that would deny it elsewhere, and is
/// refused wherever one of them applies.
#[test]
fn strict_location_fences_tokens() {
    let office = OFFICE.to_string();
    let strict = json!({"continuousAccessEvaluation": {"mode": "strictLocation"}});
    // Entra's recipe: block outside trusted locations, enforced strictly.
    let block_outside = json!({"displayName": "Block outside",
        "conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}, "sessionControls": strict});
    // MFA outside the office, which this sign-in did not do.
    let mfa_outside = json!({"displayName": "MFA outside",
        "conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": [office]}}});
    // For someone else only.
    let others = json!({"displayName": "Others",
        "conditions": {"users": {"includeUsers": [OTHER_USER.to_string()]},
        "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}});
    let at_office = Ctx {
        ip: ip("192.0.2.7"),
        ..Ctx::default()
    };
    let policies: Vec<PolicySpec> = [block_outside.clone(), mfa_outside, others]
        .into_iter()
        .map(policy)
        .collect();
    let (set, decision) = decide(&policies, &at_office, false);
    assert_eq!(decision.outcome, Outcome::Allow);
    // The strict policy did not apply at the office, so no session control
    // says so; the fence is there all the same.
    assert_eq!(decision.session.continuous_access_evaluation, None);
    let fence = set.location_fence(&at_office.sign_in());
    assert_eq!(fence, vec![id(1000), id(1001)]);
    let out = |ip_text: &str, country: Option<[u8; 2]>| {
        set.fenced_out(&fence, ip(ip_text), country)
            .map(|p| p.display_name.clone())
    };
    assert_eq!(out("192.0.2.99", Some(*b"NL")), None, "the office");
    assert_eq!(out("2001:db8::1", None), None, "the office, IPv6");
    assert_eq!(
        out("203.0.113.9", Some(*b"NL")).as_deref(),
        Some("Block outside")
    );
    assert!(
        set.fenced_out(&fence, None, None).is_some(),
        "nowhere known"
    );
    assert!(set.fenced_out(&[], ip("203.0.113.9"), None).is_none());

    // The policies as they are now count. Strict enforcement turned off:
    // the fence no longer holds.
    let mut relaxed = block_outside.clone();
    merge(
        &mut relaxed,
        &json!({"sessionControls": {"continuousAccessEvaluation": {"mode": "disabled"}}}),
    );
    let (now, _) = decide(&[policy(relaxed)], &at_office, false);
    assert!(now.fenced_out(&fence, ip("203.0.113.9"), None).is_none());
    // A fenced policy without its locations condition now applies
    // everywhere, the office too.
    let mut everywhere = block_outside.clone();
    merge(&mut everywhere, &json!({"conditions": {"locations": null}}));
    let (now, _) = decide(&[policy(everywhere)], &at_office, false);
    assert!(now.fenced_out(&fence, ip("192.0.2.99"), None).is_some());

    // Only policies that would apply to this sign-in somewhere are in the
    // fence: one for other client apps (a condition checked after
    // locations) is not, nor a report-only one.
    let legacy_only = json!({"displayName": "Legacy outside",
        "conditions": {"clientAppTypes": ["exchangeActiveSync"],
        "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}});
    let mut report_only_block = legacy_only.clone();
    merge(
        &mut report_only_block,
        &json!({"state": "enabledForReportingButNotEnforced", "conditions": {"clientAppTypes": ["all"]}}),
    );
    let mixed: Vec<PolicySpec> = [block_outside.clone(), legacy_only, report_only_block]
        .into_iter()
        .map(policy)
        .collect();
    let (set, _) = decide(&mixed, &at_office, false);
    assert_eq!(set.location_fence(&at_office.sign_in()), vec![id(1000)]);

    // Having done MFA, only the block fences the token.
    let with_mfa = Ctx {
        strengths: vec![strength::MFA],
        ..at_office.clone()
    };
    assert_eq!(set.location_fence(&with_mfa.sign_in()), vec![id(1000)]);

    // No strict policy for this sign-in: no fence at all.
    let lenient: Vec<PolicySpec> = [
        json!({"displayName": "Block outside",
            "conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]},
            "sessionControls": {"continuousAccessEvaluation": {"mode": "disabled"}}}),
    ]
    .into_iter()
    .map(policy)
    .collect();
    let (set, _) = decide(&lenient, &at_office, false);
    assert!(set.location_fence(&at_office.sign_in()).is_empty());
    // A strict policy for someone else does not fence this user's tokens.
    let mut elsewhere = block_outside.clone();
    merge(
        &mut elsewhere,
        &json!({"conditions": {"users": {"includeUsers": [OTHER_USER.to_string()]}}}),
    );
    let (set, _) = decide(&[policy(elsewhere)], &at_office, false);
    assert!(set.location_fence(&at_office.sign_in()).is_empty());
    // Report-only: neither fenced nor refused.
    let mut report_only = block_outside;
    merge(
        &mut report_only,
        &json!({"state": "enabledForReportingButNotEnforced"}),
    );
    let (set, _) = decide(&[policy(report_only)], &at_office, false);
    assert!(set.location_fence(&at_office.sign_in()).is_empty());
    assert_eq!(
        set.fenced_out(&[id(1000)], ip("203.0.113.9"), None)
            .map(|p| p.id),
        None
    );
}

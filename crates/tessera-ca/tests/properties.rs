//! Properties of the decision over random policies and sign-ins:
//! - the compiled evaluator agrees with the reference evaluator;
//! - an exclusion always wins over an inclusion;
//! - adding a policy never turns a block into a grant (nor any outcome into a
//!   weaker one);
//! - report-only policies never change the enforced result;
//! - a token fenced by strict location enforcement is refused exactly where
//!   its sign-in would fail a policy.

#![allow(clippy::unwrap_used)]

mod support;

use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use serde_json::{Value, json};
use support::*;
use tessera_authn::strength;
use tessera_ca::engine::*;
use tessera_ca::model::*;

fn s(id: uuid::Uuid) -> String {
    id.to_string()
}

fn users_condition() -> impl Strategy<Value = Value> {
    let people = vec![s(USER), s(OTHER_USER), s(GUEST)];
    let groups = vec![s(STAFF), s(NESTED), s(BREAK_GLASS)];
    let roles = vec![
        s(GLOBAL_ADMIN),
        s(tessera_directory::roles::USER_ADMINISTRATOR),
    ];
    (
        prop_oneof![
            Just(vec!["All".to_string()]),
            Just(vec!["None".to_string()]),
            Just(vec!["GuestsOrExternalUsers".to_string()]),
            subsequence(people.clone(), 0..=2),
        ],
        subsequence(people, 0..=2),
        subsequence(groups.clone(), 0..=2),
        subsequence(groups, 0..=2),
        subsequence(roles.clone(), 0..=1),
        subsequence(roles, 0..=1),
        any::<bool>(),
    )
        .prop_map(|(include, exclude, ig, eg, ir, er, guests)| {
            let mut users = json!({"includeUsers": include, "excludeUsers": exclude,
                "includeGroups": ig, "excludeGroups": eg, "includeRoles": ir, "excludeRoles": er});
            if guests {
                users["excludeGuestsOrExternalUsers"] =
                    json!({"guestOrExternalUserTypes": "internalGuest"});
            }
            users
        })
}

fn applications_condition() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (
            prop_oneof![
                Just(vec!["All".to_string()]),
                Just(vec!["MicrosoftAdminPortals".to_string()]),
                subsequence(vec![s(APP), s(APP2)], 1..=2),
            ],
            subsequence(vec![s(APP), s(APP2), "MicrosoftAdminPortals".to_string()], 0..=1),
        )
            .prop_map(|(i, e)| json!({"includeApplications": i, "excludeApplications": e})),
        1 => select(vec!["urn:user:registersecurityinfo", "urn:user:registerdevice"])
            .prop_map(|a| json!({"includeUserActions": [a]})),
        1 => subsequence(vec!["c1", "c2"], 1..=2)
            .prop_map(|c| json!({"includeAuthenticationContextClassReferences": c})),
    ]
}

fn optional(strategy: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![2 => Just(None), 1 => strategy.prop_map(Some)]
}

fn conditions() -> impl Strategy<Value = Value> {
    let platforms = vec!["android", "iOS", "windows", "macOS", "linux"];
    (
        users_condition(),
        applications_condition(),
        optional(
            subsequence(
                vec![
                    "browser",
                    "mobileAppsAndDesktopClients",
                    "exchangeActiveSync",
                    "other",
                ],
                1..=2,
            )
            .prop_map(|c| json!(c)),
        ),
        optional(
            (
                prop_oneof![Just(vec!["all"]), subsequence(platforms.clone(), 1..=2)],
                subsequence(platforms, 0..=2),
            )
                .prop_map(|(i, e)| json!({"includePlatforms": i, "excludePlatforms": e})),
        ),
        optional(
            (
                prop_oneof![
                    Just(vec!["All".to_string()]),
                    Just(vec!["AllTrusted".to_string()]),
                    subsequence(vec![s(OFFICE), s(COUNTRIES), s(UNKNOWN_COUNTRY)], 1..=2)
                ],
                subsequence(
                    vec![
                        "AllTrusted".to_string(),
                        s(OFFICE),
                        s(COUNTRIES),
                        s(UNKNOWN_COUNTRY),
                    ],
                    0..=2,
                ),
            )
                .prop_map(|(i, e)| json!({"includeLocations": i, "excludeLocations": e})),
        ),
        optional(
            (
                select(vec!["include", "exclude"]),
                select(vec![
                    "device.isCompliant -eq True",
                    "device.deviceOwnership -eq \"Company\" -or device.isCompliant -eq True",
                    "device.trustType -ne \"ServerAD\"",
                ]),
            )
                .prop_map(|(m, r)| json!({"deviceFilter": {"mode": m, "rule": r}})),
        ),
        optional(subsequence(vec!["low", "medium", "high"], 1..=2).prop_map(|r| json!(r))),
        optional(subsequence(vec!["low", "medium", "high"], 1..=2).prop_map(|r| json!(r))),
        optional(Just(json!({"transferMethods": "deviceCodeFlow"}))),
    )
        .prop_map(
            |(
                users,
                apps,
                clients,
                platforms,
                locations,
                devices,
                sign_in_risk,
                user_risk,
                flows,
            )| {
                let mut c = json!({"users": users, "applications": apps});
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        c[k] = v;
                    }
                };
                put("clientAppTypes", clients);
                put("platforms", platforms);
                put("locations", locations);
                put("devices", devices);
                put("signInRiskLevels", sign_in_risk);
                put("userRiskLevels", user_risk);
                put("authenticationFlows", flows);
                c
            },
        )
}

fn grant() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(json!({"builtInControls": ["block"]})),
        3 => (
            select(vec!["AND", "OR"]),
            subsequence(vec!["mfa", "compliantDevice", "domainJoinedDevice"], 0..=2),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(op, controls, strong, terms)| {
                let mut g = json!({"operator": op, "builtInControls": controls});
                if strong && !controls.contains(&"mfa") {
                    g["authenticationStrength"] = json!({"id": strength::PHISHING_RESISTANT_MFA});
                }
                if terms {
                    g["termsOfUse"] = json!([s(TERMS)]);
                }
                g
            }),
    ]
}

fn session() -> impl Strategy<Value = Option<Value>> {
    optional((
        optional(prop_oneof![
            (1u32..=23).prop_map(|h| json!({"isEnabled": true, "type": "hours", "value": h, "frequencyInterval": "timeBased"})),
            Just(json!({"isEnabled": true, "frequencyInterval": "everyTime"})),
        ]),
        optional(select(vec!["always", "never"]).prop_map(|m| json!({"isEnabled": true, "mode": m}))),
        optional(select(vec!["disabled", "strictEnforcement", "strictLocation"]).prop_map(|m| json!({"mode": m}))),
        optional(select(vec!["monitorOnly", "blockDownloads", "mcasConfigured"]).prop_map(|t| json!({"isEnabled": true, "cloudAppSecurityType": t}))),
        any::<bool>(),
    )
        .prop_map(|(frequency, browser, cae, cloud, resilience)| {
            let mut s = json!({"applicationEnforcedRestrictions": {"isEnabled": true}});
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    s[k] = v;
                }
            };
            put("signInFrequency", frequency);
            put("persistentBrowser", browser);
            put("continuousAccessEvaluation", cae);
            put("cloudAppSecurity", cloud);
            if resilience {
                s["disableResilienceDefaults"] = json!(true);
            }
            s
        }))
}

/// For a policy on workload identities: `clientApplications`, and the users
/// condition as Entra writes it beside one (nobody) or none at all.
fn workloads_condition() -> impl Strategy<Value = Option<Value>> {
    optional(
        (
            prop_oneof![
                Just(vec!["ServicePrincipalsInMyTenant".to_string()]),
                subsequence(vec![s(WORKLOAD), s(OTHER_WORKLOAD)], 1..=2),
            ],
            subsequence(vec![s(WORKLOAD), s(OTHER_WORKLOAD)], 0..=1),
            any::<bool>(),
            optional(subsequence(vec!["low", "high"], 1..=2).prop_map(|r| json!(r))),
        )
            .prop_map(|(include, exclude, entra_users, risk)| {
                let mut c = json!({"clientApplications": {"includeServicePrincipals": include, "excludeServicePrincipals": exclude}});
                c["users"] = if entra_users {
                    json!({"includeUsers": ["None"], "excludeUsers": [], "includeGroups": [], "excludeGroups": [], "includeRoles": [], "excludeRoles": []})
                } else {
                    Value::Null
                };
                c["servicePrincipalRiskLevels"] = risk.unwrap_or(Value::Null);
                c
            }),
    )
}

fn a_policy() -> impl Strategy<Value = PolicySpec> {
    (
        select(vec!["enabled", "enabled", "enabledForReportingButNotEnforced", "disabled"]),
        conditions(),
        grant(),
        session(),
        workloads_condition(),
    )
        .prop_filter_map("invalid combination", |(state, mut conditions, mut grant, session, workloads)| {
            if let Some(workload) = workloads {
                // Workload policies only block, and know no user or sign-in risk.
                let c = conditions.as_object_mut()?;
                c.remove("signInRiskLevels");
                c.remove("userRiskLevels");
                match &workload["users"] {
                    Value::Null => {
                        c.remove("users");
                    }
                    users => {
                        c.insert("users".to_string(), users.clone());
                    }
                }
                c.insert("clientApplications".to_string(), workload["clientApplications"].clone());
                if !workload["servicePrincipalRiskLevels"].is_null() {
                    c.insert("servicePrincipalRiskLevels".to_string(), workload["servicePrincipalRiskLevels"].clone());
                }
                grant = json!({"operator": "OR", "builtInControls": ["block"]});
            }
            let mut p = json!({"displayName": "random", "state": state, "conditions": conditions, "grantControls": grant});
            if let Some(session) = session {
                p["sessionControls"] = session;
            }
            let spec: PolicySpec = serde_json::from_value(p).ok()?;
            tessera_ca::validate::policy(&spec).ok()?;
            Some(spec)
        })
}

fn a_sign_in() -> impl Strategy<Value = Ctx> {
    (
        (
            select(vec![USER, OTHER_USER, GUEST]),
            select(vec![None, None, Some(WORKLOAD), Some(OTHER_WORKLOAD)]),
        ),
        any::<bool>(),
        select(vec![
            Target::App {
                resource: None,
                app_id: tessera_core::AppId::from_uuid(APP),
                admin_portal: false,
            },
            Target::App {
                resource: None,
                app_id: tessera_core::AppId::from_uuid(APP2),
                admin_portal: true,
            },
            Target::App {
                resource: Some(tessera_core::AppId::from_uuid(APP2)),
                app_id: tessera_core::AppId::from_uuid(APP),
                admin_portal: false,
            },
            Target::UserAction(UserAction::RegisterSecurityInfo),
        ]),
        subsequence(vec!["c1".to_string(), "c2".to_string()], 0..=1),
        select(vec![
            ClientApp::Browser,
            ClientApp::MobileAppsAndDesktopClients,
            ClientApp::ExchangeActiveSync,
            ClientApp::Other,
        ]),
        select(vec![
            None,
            Some(Platform::Windows),
            Some(Platform::IOs),
            Some(Platform::Linux),
        ]),
        select(vec![
            ("192.0.2.5", Some(*b"NL")),
            ("198.51.100.1", Some(*b"US")),
            ("203.0.113.9", None),
        ]),
        select(vec![None, Some(0), Some(1)]),
        (
            select(vec![RiskLevel::None, RiskLevel::Low, RiskLevel::High]),
            select(vec![RiskLevel::None, RiskLevel::Medium, RiskLevel::High]),
        ),
        (
            any::<bool>(),
            subsequence(vec![strength::MFA, strength::PHISHING_RESISTANT_MFA], 0..=2),
            select(vec![Some(10), Some(7200), Some(200_000), None]),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (user, workload),
                admin,
                target,
                contexts,
                client,
                platform,
                (ip, country),
                device,
                (sign_in_risk, user_risk),
                (device_code, strengths, auth_age, password_changed, terms),
            )| Ctx {
                workload,
                user,
                roles: if admin { vec![GLOBAL_ADMIN] } else { vec![] },
                guest: (user == GUEST).then_some("internalGuest"),
                user_risk,
                target,
                contexts,
                client,
                platform,
                ip: Some(ip.parse().unwrap()),
                country,
                device: match device {
                    Some(0) => Some(compliant_device()),
                    Some(_) => Some(personal_device()),
                    None => None,
                },
                sign_in_risk,
                device_code,
                strengths,
                auth_age,
                password_changed,
                terms: if terms { vec![TERMS] } else { vec![] },
                ..Ctx::default()
            },
        )
}

/// A policy that strictly enforces locations: for everyone, somewhere.
fn a_strict_policy() -> impl Strategy<Value = PolicySpec> {
    (
        select(vec![
            json!({"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}),
            json!({"includeLocations": ["All"], "excludeLocations": [s(OFFICE)]}),
            json!({"includeLocations": [s(COUNTRIES)]}),
            json!({"includeLocations": ["All"], "excludeLocations": [s(COUNTRIES)]}),
        ]),
        select(vec!["block", "mfa", "compliantDevice"]),
        select(vec!["strictLocation", "strictEnforcement"]),
    )
        .prop_map(|(locations, control, mode)| {
            policy(json!({
                "conditions": {"locations": locations},
                "grantControls": {"operator": "OR", "builtInControls": [control]},
                "sessionControls": {"continuousAccessEvaluation": {"mode": mode}},
            }))
        })
}

fn rank(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Allow => 0,
        Outcome::Interrupt => 1,
        Outcome::Block => 2,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// `support::decide` asserts that the two evaluators agree.
    #[test]
    fn the_fast_evaluator_agrees_with_the_reference(
        policies in prop::collection::vec(a_policy(), 0..6),
        ctx in a_sign_in(),
        defaults in any::<bool>(),
    ) {
        decide(&policies, &ctx, defaults);
    }

    #[test]
    fn an_exclusion_always_wins(policy in a_policy(), ctx in a_sign_in()) {
        prop_assume!(policy.state != PolicyState::Disabled);
        let for_workloads = tessera_ca::validate::is_for_workloads(&policy.conditions);
        // The subject excluded: the user from a user policy, the service principal
        // from a workload policy.
        let mut excluded = policy.clone();
        let subject = match (ctx.workload, for_workloads) {
            (None, false) => {
                let users = excluded.conditions.users.as_mut().unwrap();
                users.exclude_users.retain(|u| u != &ctx.user.to_string());
                users.exclude_users.push(ctx.user.to_string());
                Some(Condition::Users)
            }
            (Some(sp), true) => {
                let workloads = excluded.conditions.client_applications.as_mut().unwrap();
                workloads.exclude_service_principals.retain(|w| w != &sp.to_string());
                workloads.exclude_service_principals.push(sp.to_string());
                Some(Condition::WorkloadIdentities)
            }
            _ => None,
        };
        if let Some(condition) = subject {
            let (_, original) = decide(std::slice::from_ref(&policy), &ctx, false);
            let included = original.policies[0].miss
                != Some(Miss { condition, excluded: false });
            let (_, decision) = decide(&[excluded], &ctx, false);
            let miss = decision.policies[0].miss;
            // It never applies; when the subject was included, the exclusion is why.
            prop_assert!(miss.is_some());
            prop_assert!(decision.policies[0].controls.is_empty());
            if included {
                prop_assert_eq!(miss, Some(Miss { condition, excluded: true }));
            }
        }
        // The same for applications (the client and the resource it names).
        if let Target::App { app_id, resource, .. } = ctx.target
            && !policy.conditions.applications.include_applications.is_empty()
        {
            let mut excluded = policy.clone();
            excluded.conditions.applications.exclude_applications =
                std::iter::once(app_id).chain(resource).map(|id| id.to_string()).collect();
            let (_, decision) = decide(&[excluded], &ctx, false);
            let miss = decision.policies[0].miss;
            prop_assert!(miss.is_some_and(|m| matches!(m.condition, Condition::Users | Condition::WorkloadIdentities | Condition::Applications)));
        }
    }

    #[test]
    fn adding_a_policy_never_weakens_the_outcome(
        policies in prop::collection::vec(a_policy(), 0..5),
        extra in a_policy(),
        ctx in a_sign_in(),
        defaults in any::<bool>(),
    ) {
        let (_, before) = decide(&policies, &ctx, defaults);
        let mut more = policies.clone();
        more.push(extra);
        let (_, after) = decide(&more, &ctx, defaults);
        prop_assert!(rank(after.outcome) >= rank(before.outcome), "{:?} became {:?}", before.outcome, after.outcome);
    }

    #[test]
    fn report_only_policies_never_change_the_enforced_result(
        policies in prop::collection::vec(a_policy(), 0..6),
        ctx in a_sign_in(),
        defaults in any::<bool>(),
    ) {
        let (_, with) = decide(&policies, &ctx, defaults);
        let enforced: Vec<PolicySpec> = policies.iter().filter(|p| p.state != PolicyState::EnabledForReportingButNotEnforced).cloned().collect();
        let (_, without) = decide(&enforced, &ctx, defaults);
        prop_assert_eq!(with.outcome, without.outcome);
        prop_assert_eq!(with.session, without.session);
    }

    /// Strict location enforcement: for a sign-in allowed at its address
    /// whose tokens carry a fence, the token is refused at another address
    /// exactly where the same sign-in there would fail an enforced policy.
    #[test]
    fn a_fenced_token_is_refused_exactly_where_the_sign_in_would_fail(
        mut policies in prop::collection::vec(a_policy(), 0..4),
        strict in a_strict_policy(),
        ctx in a_sign_in(),
        elsewhere in select(vec![
            (Some("192.0.2.7"), Some(*b"NL")),
            (Some("203.0.113.9"), Some(*b"DE")),
            (Some("2001:db8::1"), None),
            (Some("198.51.100.7"), Some(*b"BE")),
            (None, None),
        ]),
    ) {
        policies.push(strict);
        let (set, decision) = decide(&policies, &ctx, false);
        let fence = set.location_fence(&ctx.sign_in());
        if decision.outcome == Outcome::Allow && !fence.is_empty() {
            let there = Ctx {
                ip: elsewhere.0.map(|ip| ip.parse().unwrap()),
                country: elsewhere.1,
                ..ctx.clone()
            };
            let (_, decided_there) = decide(&policies, &there, false);
            let fails = decided_there.policies.iter().any(|p| p.kind == PolicyResultKind::Failure);
            let refused = set.fenced_out(&fence, there.ip, there.country).is_some();
            prop_assert_eq!(fails, refused, "fence {:?}", fence);
        }
    }
}

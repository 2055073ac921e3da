//! Conditional Access through the service, on SQLite and PostgreSQL: Graph JSON in
//! and out, bad input that changes nothing, references checked, a change made on
//! one node enforced by another within about a second (policies and group
//! membership), workloads blocked at the token endpoint with the decision logged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tessera_core::SystemClock;
use tessera_service::Versioned;
use tessera_service::conditional_access::WhatIf;
use tessera_service::{App, ServiceError};
use tessera_store::Store;
use tessera_testkit::{Workload, bootstrap_admin, workload};

fn question(user: &str, app: &str) -> WhatIf {
    serde_json::from_value(json!({ "userId": user, "appId": app, "country": "NL" })).unwrap()
}

async fn policies_and_locations_round_trip(store: Arc<dyn Store>) {
    let directory = App::new(store, Arc::new(SystemClock));
    let admin = bootstrap_admin(&directory).await.ctx;
    let office = directory.access
        .create_named_location(
            &admin,
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "HQ",
                   "isTrusted": true, "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "192.0.2.0/24"}]}),
        )
        .await
        .unwrap();
    // As a Graph client sends it: annotations and read-only fields are ignored.
    let body = json!({
        "@odata.type": "#microsoft.graph.conditionalAccessPolicy",
        "id": "ignored", "createdDateTime": "2024-01-01T00:00:00Z", "templateId": null,
        "displayName": "MFA outside HQ", "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"], "excludeUsers": [], "includeGroups": [], "excludeGroups": [],
                      "includeRoles": [], "excludeRoles": []},
            "applications": {"includeApplications": ["All"], "excludeApplications": [], "includeUserActions": [],
                             "includeAuthenticationContextClassReferences": []},
            "clientAppTypes": ["all"], "times": null, "deviceStates": null,
            "locations": {"includeLocations": ["All"], "excludeLocations": [office.id.to_string()]},
            "signInRiskLevels": [], "userRiskLevels": []
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": [], "termsOfUse": []},
        "sessionControls": null
    });
    let policy = directory.access.create_policy(&admin, body).await.unwrap();
    let (read, version) = directory
        .access
        .get_policy(&admin, policy.id)
        .await
        .unwrap();
    assert_eq!(version, 1);
    let text = serde_json::to_value(&read).unwrap();
    assert_eq!(text["displayName"], "MFA outside HQ");
    assert_eq!(
        text["conditions"]["locations"]["excludeLocations"][0],
        office.id.to_string()
    );

    // Bad input is refused with the field, and changes nothing.
    let refusals = [
        (
            json!({"grantControls": {"builtInControls": ["block", "mfa"]}}),
            "grantControls.builtInControls",
        ),
        (
            json!({"conditions": {"users": {"includeGroups": [uuid::Uuid::new_v4().to_string()]}}}),
            "conditions.users.includeGroups[0]",
        ),
        (
            json!({"conditions": {"times": {"allDays": true}}}),
            "conditions.times",
        ),
        (
            json!({"conditions": {"devices": {"deviceFilter": {"mode": "exclude", "rule": "device.isCompliant -eq"}}}}),
            "conditions.devices.deviceFilter.rule",
        ),
        (json!({"state": "sometimes"}), "state"),
    ];
    for (patch, field) in refusals {
        match directory
            .access
            .update_policy(
                &admin,
                Versioned::new(policy.id, Some(1)).patch(patch.clone()),
            )
            .await
        {
            Err(ServiceError::Validation(errors)) => {
                assert!(
                    errors.errors.iter().any(|e| e.field.starts_with(field)),
                    "{patch}: {errors}"
                );
            }
            other => panic!("{patch}: {other:?}"),
        }
    }
    let (unchanged, version) = directory
        .access
        .get_policy(&admin, policy.id)
        .await
        .unwrap();
    assert_eq!(version, 1);
    assert_eq!(serde_json::to_value(&unchanged).unwrap(), text);
    // A stale version is refused; the right one applies.
    let patch = json!({"state": "enabledForReportingButNotEnforced"});
    assert!(matches!(
        directory
            .access
            .update_policy(
                &admin,
                Versioned::new(policy.id, Some(7)).patch(patch.clone())
            )
            .await,
        Err(ServiceError::VersionMismatch { .. })
    ));
    let updated = directory
        .access
        .update_policy(&admin, Versioned::new(policy.id, Some(1)).patch(patch))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&updated).unwrap()["state"],
        "enabledForReportingButNotEnforced"
    );
    // A location a policy names cannot be deleted.
    assert!(matches!(
        directory
            .access
            .delete_named_location(&admin, office.id)
            .await,
        Err(ServiceError::Conflict { .. })
    ));
    directory
        .access
        .delete_policy(&admin, policy.id)
        .await
        .unwrap();
    directory
        .access
        .delete_named_location(&admin, office.id)
        .await
        .unwrap();
    // Every change is audited.
    let events = directory
        .directory
        .query_audit(&admin, &Default::default())
        .await
        .unwrap();
    let actions: Vec<String> = events
        .value
        .iter()
        .map(|e| e.event["action"].as_str().unwrap_or_default().to_string())
        .collect();
    for action in [
        "conditionalAccessPolicy.create",
        "conditionalAccessPolicy.update",
        "conditionalAccessPolicy.delete",
        "namedLocation.delete",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

async fn another_node_enforces_changes_within_a_second(store: Arc<dyn Store>) {
    let node_a = App::new(store.clone(), Arc::new(SystemClock));
    let admin = bootstrap_admin(&node_a).await.ctx;
    let node_b = App::new(store, Arc::new(SystemClock));
    let user = node_a
        .directory
        .create_user(
            &admin,
            json!({"userPrincipalName": "ada@contoso.com", "displayName": "Ada"}),
        )
        .await
        .unwrap();
    let outer = node_a
        .directory
        .create_group(&admin, json!({"displayName": "Contractors"}))
        .await
        .unwrap();
    let inner = node_a
        .directory
        .create_group(&admin, json!({"displayName": "Vendors"}))
        .await
        .unwrap();
    node_a
        .directory
        .add_group_member(&admin, outer.id, json!({"id": inner.id}))
        .await
        .unwrap();
    let app = node_a
        .directory
        .create_application(&admin, json!({"displayName": "Finance"}))
        .await
        .unwrap();
    let app_id = app.app_id.to_string();
    let ask = || question(&user.id.to_string(), &app_id);
    assert_eq!(
        serde_json::to_value(node_b.access.what_if(&admin, ask()).await.unwrap()).unwrap()["result"],
        "allow"
    );
    node_a.access
        .create_policy(&admin, json!({
            "displayName": "Contractors may not use Finance", "state": "enabled",
            "conditions": {"users": {"includeGroups": [outer.id.to_string()]}, "applications": {"includeApplications": [app_id]}},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }))
        .await
        .unwrap();
    // Node A is told at once; node B notices within a second.
    let answer = |v: tessera_ca::explain::Explanation| serde_json::to_value(v).unwrap();
    let policy_result = |v: &Value| {
        v["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["displayName"] == "Contractors may not use Finance")
            .cloned()
            .unwrap()
    };
    let on_b = answer(node_b.access.what_if(&admin, ask()).await.unwrap());
    assert!(on_b["result"] == "allow");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let on_b = answer(node_b.access.what_if(&admin, ask()).await.unwrap());
    assert_eq!(
        policy_result(&on_b)["notApplied"]["condition"],
        "users",
        "{on_b}"
    );
    // Membership through a nested group, added on node A: node B follows.
    node_a
        .directory
        .add_group_member(&admin, inner.id, json!({"id": user.id}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        answer(node_a.access.what_if(&admin, ask()).await.unwrap())["result"],
        "block"
    );
    let on_b = answer(node_b.access.what_if(&admin, ask()).await.unwrap());
    assert_eq!(on_b["result"], "block", "{on_b}");
    assert_eq!(policy_result(&on_b)["result"], "failure");
    // And removed again.
    node_a
        .directory
        .remove_group_member(&admin, inner.id, user.id)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        answer(node_b.access.what_if(&admin, ask()).await.unwrap())["result"],
        "allow"
    );
}

async fn workloads_are_blocked_at_the_token_endpoint(store: Arc<dyn Store>) {
    let directory = App::new(store, Arc::new(SystemClock));
    let work = workload(&directory).await;
    let basic = work.basic(work.secret.secret_text.expose());
    let Workload {
        admin,
        principal,
        resource,
        mut ctx,
        ..
    } = work;
    ctx.issuer = "http://localhost:8080".into();
    ctx.correlation_id = "cc-1".into();
    ctx.client_address = Some("203.0.113.7".into());
    let mut form = BTreeMap::new();
    form.insert("grant_type".to_string(), "client_credentials".to_string());
    form.insert("scope".to_string(), format!("{}/.default", resource.app_id));
    directory
        .oidc
        .token_request(&ctx, Some(&basic), &form)
        .await
        .unwrap();
    // A policy for risky workloads, as Entra writes one (includeUsers None beside
    // clientApplications): nothing changes until the workload is risky.
    directory.access
        .create_policy(&admin, json!({
            "displayName": "Block risky workloads", "state": "enabled",
            "conditions": {"users": {"includeUsers": ["None"], "excludeUsers": [], "includeGroups": [],
                                     "excludeGroups": [], "includeRoles": [], "excludeRoles": []},
                           "applications": {"includeApplications": ["All"]},
                           "clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"]},
                           "servicePrincipalRiskLevels": ["high"]},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    directory
        .oidc
        .token_request(&ctx, Some(&basic), &form)
        .await
        .unwrap();
    directory
        .risk
        .report_risk(&admin, principal.id, json!({"riskLevel": "high"}))
        .await
        .unwrap();
    let refused = directory
        .oidc
        .token_request(&ctx, Some(&basic), &form)
        .await
        .unwrap_err();
    assert_eq!(refused.error, "unauthorized_client");
    assert!(
        refused.description.contains("Conditional Access"),
        "{}",
        refused.description
    );
    let log = directory
        .sign_in
        .query_log(&admin, &Default::default())
        .await
        .unwrap();
    let entry = log
        .value
        .iter()
        .find(|e| e.failure_code.as_deref() == Some("unauthorized_client"))
        .unwrap();
    assert_eq!(entry.conditional_access_status.as_deref(), Some("failure"));
    let explained = entry.applied_conditional_access_policies.as_ref().unwrap();
    assert!(
        explained["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["displayName"] == "Block risky workloads" && p["result"] == "failure")
    );
}

fn explained(v: tessera_ca::explain::Explanation) -> Value {
    serde_json::to_value(v).unwrap()
}

/// A policy's result in an explanation, by display name.
fn result_of(answer: &Value, name: &str) -> Value {
    answer["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["displayName"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} in {answer}"))
}

fn refused_field(
    result: Result<tessera_ca::explain::Explanation, ServiceError>,
) -> (String, String) {
    match result {
        Err(ServiceError::Validation(errors)) => {
            let first = errors.errors.into_iter().next().unwrap();
            (first.field, first.message)
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Entra counts only tenant-wide role assignments for includeRoles and
/// excludeRoles: a role held in an administrative unit neither includes nor
/// excludes.
async fn only_tenant_wide_roles_count(store: Arc<dyn Store>) {
    use tessera_directory::roles::USER_ADMINISTRATOR;
    let directory = App::new(store, Arc::new(SystemClock));
    let admin = bootstrap_admin(&directory).await.ctx;
    let unit = directory
        .directory
        .create_administrative_unit(&admin, json!({"displayName": "Paris"}))
        .await
        .unwrap()
        .id;
    let scoped = directory
        .directory
        .create_user(
            &admin,
            json!({"userPrincipalName": "scoped@contoso.com", "displayName": "Scoped"}),
        )
        .await
        .unwrap();
    let tenant_wide = directory
        .directory
        .create_user(
            &admin,
            json!({"userPrincipalName": "wide@contoso.com", "displayName": "Wide"}),
        )
        .await
        .unwrap();
    directory
        .directory
        .create_role_assignment(
            &admin,
            json!({"principalId": scoped.id, "roleDefinitionId": USER_ADMINISTRATOR,
            "directoryScopeId": format!("/administrativeUnits/{unit}")}),
        )
        .await
        .unwrap();
    directory
        .directory
        .create_role_assignment(
            &admin,
            json!({"principalId": tenant_wide.id, "roleDefinitionId": USER_ADMINISTRATOR,
            "directoryScopeId": "/"}),
        )
        .await
        .unwrap();
    let app = directory
        .directory
        .create_application(&admin, json!({"displayName": "Payroll"}))
        .await
        .unwrap();
    let app_id = app.app_id.to_string();
    for (name, users, grant) in [
        (
            "Administrators may not use Payroll",
            json!({"includeRoles": [USER_ADMINISTRATOR]}),
            "block",
        ),
        (
            "MFA for everyone but administrators",
            json!({"includeUsers": ["All"], "excludeRoles": [USER_ADMINISTRATOR]}),
            "mfa",
        ),
    ] {
        directory.access
            .create_policy(&admin, json!({
                "displayName": name, "state": "enabled",
                "conditions": {"users": users, "applications": {"includeApplications": [app_id]}},
                "grantControls": {"operator": "OR", "builtInControls": [grant]}
            }))
            .await
            .unwrap();
    }
    // Held in a unit only: not included by the role, not excluded by it either.
    let answer = explained(
        directory
            .access
            .what_if(&admin, question(&scoped.id.to_string(), &app_id))
            .await
            .unwrap(),
    );
    let included = result_of(&answer, "Administrators may not use Payroll");
    assert_eq!(included["result"], "notApplied", "{answer}");
    assert_eq!(included["notApplied"]["condition"], "users");
    assert_eq!(included["notApplied"]["excluded"], false);
    assert_eq!(
        result_of(&answer, "MFA for everyone but administrators")["result"],
        "failure"
    );
    assert_eq!(answer["result"], "interrupt", "{answer}");
    // Held tenant-wide: both count.
    let answer = explained(
        directory
            .access
            .what_if(&admin, question(&tenant_wide.id.to_string(), &app_id))
            .await
            .unwrap(),
    );
    assert_eq!(
        result_of(&answer, "Administrators may not use Payroll")["result"],
        "failure"
    );
    let excluded = result_of(&answer, "MFA for everyone but administrators");
    assert_eq!(excluded["notApplied"]["condition"], "users", "{answer}");
    assert_eq!(excluded["notApplied"]["excluded"], true);
    assert_eq!(answer["result"], "block");
}

/// What-If as an administrator asks it: the application by any of its names (an
/// unknown one refused, naming it), the strengths a sign-in met with all they
/// imply, the User-Agent naming the platform, and a warning when countries were
/// looked at without a country database.
async fn what_if_answers_as_a_sign_in_would(store: Arc<dyn Store>) {
    use tessera_authn::strength;
    let directory = App::new(store, Arc::new(SystemClock));
    let admin = bootstrap_admin(&directory).await.ctx;
    let user = directory
        .directory
        .create_user(
            &admin,
            json!({"userPrincipalName": "ada@contoso.com", "displayName": "Ada"}),
        )
        .await
        .unwrap();
    let app = directory
        .directory
        .create_application(&admin, json!({"displayName": "Finance"}))
        .await
        .unwrap();
    let principal = directory
        .directory
        .create_service_principal(&admin, json!({"appId": app.app_id}))
        .await
        .unwrap();
    let app_id = app.app_id.to_string();
    directory.access
        .create_policy(&admin, json!({
            "displayName": "MFA for Finance", "state": "enabled",
            "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": [app_id]}},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
        }))
        .await
        .unwrap();
    let user_id = user.id.to_string();
    let ask = |extra: Value| -> WhatIf {
        let mut q = json!({"userId": user_id, "appId": app_id, "country": "NL"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                q.as_object_mut().unwrap().remove(k);
            } else {
                q[k] = v.clone();
            }
        }
        serde_json::from_value(q).unwrap()
    };
    let mfa = |answer: &Value| result_of(answer, "MFA for Finance")["result"].clone();

    // Phishing-resistant MFA meets MFA, as it does in a real sign-in.
    let answer = explained(
        directory
            .access
            .what_if(
                &admin,
                ask(json!({"satisfiedStrengths": [strength::PHISHING_RESISTANT_MFA]})),
            )
            .await
            .unwrap(),
    );
    assert_eq!(mfa(&answer), "success", "{answer}");
    assert_eq!(answer["result"], "allow");
    // Methods reach strengths the way a sign-in's methods do.
    let answer = explained(
        directory
            .access
            .what_if(
                &admin,
                ask(json!({"authenticationMethods": ["password", "softwareOath"]})),
            )
            .await
            .unwrap(),
    );
    assert_eq!(mfa(&answer), "success", "{answer}");
    let answer = explained(
        directory
            .access
            .what_if(&admin, ask(json!({"authenticationMethods": ["password"]})))
            .await
            .unwrap(),
    );
    assert_eq!(mfa(&answer), "failure", "{answer}");
    let unknown_strength = uuid::Uuid::new_v4();
    let (field, message) = refused_field(
        directory
            .access
            .what_if(
                &admin,
                ask(json!({"satisfiedStrengths": [unknown_strength]})),
            )
            .await,
    );
    assert_eq!(field, "satisfiedStrengths[0]");
    assert!(message.contains(&unknown_strength.to_string()), "{message}");

    // The application by object id, by service principal id, by display name (any case).
    for name in [
        app.id.to_string(),
        principal.id.to_string(),
        "fINANCE".to_string(),
    ] {
        let answer = explained(
            directory
                .access
                .what_if(&admin, ask(json!({"appId": name})))
                .await
                .unwrap(),
        );
        assert_eq!(mfa(&answer), "failure", "{name}: {answer}");
    }
    // An application that does not exist is refused, naming it.
    for name in ["Payroll".to_string(), uuid::Uuid::new_v4().to_string()] {
        let (field, message) = refused_field(
            directory
                .access
                .what_if(&admin, ask(json!({"appId": name})))
                .await,
        );
        assert_eq!(field, "appId");
        assert!(
            message.contains(&name) && message.contains("not found"),
            "{message}"
        );
    }
    let (field, _) = refused_field(
        directory
            .access
            .what_if(&admin, ask(json!({"resourceAppId": uuid::Uuid::new_v4()})))
            .await,
    );
    assert_eq!(field, "resourceAppId");
    // Two applications with one name: ambiguous, said so.
    let twin = directory
        .directory
        .create_application(&admin, json!({"displayName": "Finance"}))
        .await
        .unwrap();
    let (field, message) = refused_field(
        directory
            .access
            .what_if(&admin, ask(json!({"appId": "Finance"})))
            .await,
    );
    assert_eq!(field, "appId");
    assert!(message.contains("2 applications"), "{message}");
    assert!(message.contains(&twin.app_id.to_string()), "{message}");
    // The command line's own client is known without a record.
    explained(
        directory
            .access
            .what_if(
                &admin,
                ask(json!({"appId": tessera_service::oauth::CLI_CLIENT_ID})),
            )
            .await
            .unwrap(),
    );

    // The User-Agent names the platform, as in a real sign-in.
    directory.access
        .create_policy(&admin, json!({
            "displayName": "No Android for Finance", "state": "enabled",
            "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": [app_id]},
                           "platforms": {"includePlatforms": ["android"]}},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }))
        .await
        .unwrap();
    let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120 Mobile";
    let answer = explained(
        directory
            .access
            .what_if(&admin, ask(json!({"userAgent": android})))
            .await
            .unwrap(),
    );
    assert_eq!(
        result_of(&answer, "No Android for Finance")["result"],
        "failure",
        "{answer}"
    );
    assert_eq!(answer["result"], "block");
    let answer = explained(
        directory
            .access
            .what_if(&admin, ask(json!({})))
            .await
            .unwrap(),
    );
    assert_eq!(
        result_of(&answer, "No Android for Finance")["notApplied"]["condition"],
        "platforms"
    );
    // An explicit platform wins over the User-Agent.
    let answer = explained(
        directory
            .access
            .what_if(
                &admin,
                ask(json!({"userAgent": android, "platform": "windows"})),
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        result_of(&answer, "No Android for Finance")["notApplied"]["condition"],
        "platforms"
    );

    // Countries without a country database: the answer says so.
    let benelux = directory
        .access
        .create_named_location(
            &admin,
            json!({"@odata.type": "#microsoft.graph.countryNamedLocation",
            "displayName": "Benelux", "countriesAndRegions": ["NL", "BE", "LU"]}),
        )
        .await
        .unwrap();
    directory.access
        .create_policy(&admin, json!({
            "displayName": "Finance from the Benelux only", "state": "enabled",
            "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": [app_id]},
                           "locations": {"includeLocations": ["All"], "excludeLocations": [benelux.id.to_string()]}},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }))
        .await
        .unwrap();
    let answer = explained(
        directory
            .access
            .what_if(
                &admin,
                ask(json!({"country": null, "ipAddress": "192.0.2.10"})),
            )
            .await
            .unwrap(),
    );
    assert_eq!(
        result_of(&answer, "Finance from the Benelux only")["result"],
        "failure"
    );
    let warnings = answer["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("no country database")),
        "{answer}"
    );
    // Naming the country needs no database: no warning.
    let answer = explained(
        directory
            .access
            .what_if(&admin, ask(json!({})))
            .await
            .unwrap(),
    );
    assert!(answer.get("warnings").is_none(), "{answer}");
    assert_eq!(
        result_of(&answer, "Finance from the Benelux only")["notApplied"]["excluded"],
        true
    );
    // An IPv4-mapped IPv6 address is the IPv4 address, as in a sign-in.
    let office = directory
        .access
        .create_named_location(
            &admin,
            json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office",
                   "ipRanges": [{"cidrAddress": "192.0.2.0/24"}]}),
        )
        .await
        .unwrap();
    directory.access
        .create_policy(&admin, json!({
            "displayName": "Finance from the office only", "state": "enabled",
            "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": [app_id]},
                           "locations": {"includeLocations": ["All"], "excludeLocations": [office.id.to_string()]}},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }))
        .await
        .unwrap();
    let answer = explained(
        directory
            .access
            .what_if(&admin, ask(json!({"ipAddress": "::ffff:192.0.2.10"})))
            .await
            .unwrap(),
    );
    assert_eq!(
        result_of(&answer, "Finance from the office only")["notApplied"]["excluded"],
        true,
        "{answer}"
    );
}

/// The import report says that security defaults stay on beside the imported
/// policies, and a dry run says what it would import.
async fn import_reports_security_defaults_and_what_a_dry_run_would_import(store: Arc<dyn Store>) {
    use tessera_service::conditional_access::ImportRequest;
    let directory = App::new(store, Arc::new(SystemClock));
    let admin = bootstrap_admin(&directory).await.ctx;
    let glass = directory
        .directory
        .create_group(&admin, json!({"displayName": "Break glass"}))
        .await
        .unwrap();
    let request = |dry_run: bool| -> ImportRequest {
        serde_json::from_value(json!({
            "dryRun": dry_run,
            "policies": [{"file": "CA000.json", "document": {
                "id": "6f4b0a7e-0d3c-4a55-9b0e-1a2b3c4d5e6f",
                "displayName": "CA000 MFA for everyone", "state": "enabled",
                "conditions": {"users": {"includeUsers": ["All"], "excludeGroups": [glass.id.to_string()]},
                               "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
                "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}}],
            "namedLocations": [{"file": "HQ.json", "document": {
                "@odata.type": "#microsoft.graph.ipNamedLocation", "id": "0b1e0b1e-0000-4000-8000-000000000001",
                "displayName": "HQ", "ipRanges": [{"cidrAddress": "192.0.2.0/24"}]}}]
        }))
        .unwrap()
    };
    let dry = directory
        .access
        .import(&admin, request(true))
        .await
        .unwrap();
    let dry = serde_json::to_value(&dry).unwrap();
    assert_eq!(dry["imported"], false);
    assert_eq!(dry["dryRun"], true);
    assert_eq!(
        dry["plannedPolicies"][0]["displayName"], "CA000 MFA for everyone",
        "{dry}"
    );
    assert_eq!(
        dry["plannedNamedLocations"][0]["displayName"], "HQ",
        "{dry}"
    );
    let warning = dry["warnings"][0].as_str().unwrap();
    assert!(warning.contains("security defaults are on"), "{warning}");
    assert!(
        warning.contains("tessera policy security-defaults --disable"),
        "{warning}"
    );
    assert!(
        directory
            .access
            .list_policies(&admin)
            .await
            .unwrap()
            .is_empty()
    );
    // The real import says the same, and imports what the dry run named.
    let done = serde_json::to_value(
        directory
            .access
            .import(&admin, request(false))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(done["imported"], true);
    assert_eq!(done["plannedPolicies"], dry["plannedPolicies"]);
    assert_eq!(done["warnings"], dry["warnings"]);
    assert_eq!(
        directory.access.list_policies(&admin).await.unwrap().len(),
        1
    );
    // With security defaults off, no warning.
    directory
        .access
        .set_security_defaults(
            &admin,
            tessera_service::Replacement::any(json!({"isEnabled": false})),
        )
        .await
        .unwrap();
    let again = serde_json::to_value(
        directory
            .access
            .import(&admin, request(true))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(again.get("warnings").is_none(), "{again}");

    // A setting is changed only at the version it was read at.
    let (_, version) = directory
        .access
        .get_setting_versioned::<tessera_service::conditional_access::SecurityDefaults>(&admin)
        .await
        .unwrap();
    assert!(version > 0);
    let stale = directory
        .access
        .set_security_defaults(
            &admin,
            tessera_service::Replacement::new(json!({"isEnabled": true}), Some(version - 1)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(stale, tessera_service::ServiceError::VersionMismatch { .. }),
        "{stale}"
    );
    directory
        .access
        .set_security_defaults(
            &admin,
            tessera_service::Replacement::new(json!({"isEnabled": true}), Some(version)),
        )
        .await
        .unwrap();
}

tessera_testkit::both_backends!(
    policies_and_locations_round_trip,
    another_node_enforces_changes_within_a_second,
    workloads_are_blocked_at_the_token_endpoint,
    only_tenant_wide_roles_count,
    what_if_answers_as_a_sign_in_would,
    import_reports_security_defaults_and_what_a_dry_run_would_import,
);

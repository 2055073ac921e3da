//! Conditional Access through the service, on SQLite and PostgreSQL: Graph JSON in
//! and out, bad input that changes nothing, references checked, a change made on
//! one node enforced by another within about a second (policies and group
//! membership), workloads blocked at the token endpoint with the decision logged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tessera_core::SystemClock;
use tessera_service::conditional_access::WhatIf;
use tessera_service::oauth::TokenContext;
use tessera_service::{Context, Directory, ServiceError};
use tessera_store::Store;

#[macro_use]
mod support;

async fn admin(directory: &Directory) -> Context {
    let bootstrap = directory
        .bootstrap_if_empty("Contoso", "contoso.com")
        .await
        .unwrap()
        .unwrap();
    let (tenant, caller) = directory
        .authenticate_token(bootstrap.token.expose())
        .await
        .unwrap();
    Context {
        tenant,
        caller,
        correlation_id: "t".into(),
        client_address: None,
    }
}

fn question(user: &str, app: &str) -> WhatIf {
    serde_json::from_value(json!({ "userId": user, "appId": app, "country": "NL" })).unwrap()
}

async fn policies_and_locations_round_trip(store: Arc<dyn Store>) {
    let directory = Directory::new(store, Arc::new(SystemClock));
    let admin = admin(&directory).await;
    let office = directory
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
    let policy = directory.create_ca_policy(&admin, body).await.unwrap();
    let (read, version) = directory.get_ca_policy(&admin, policy.id).await.unwrap();
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
            .update_ca_policy(&admin, policy.id, patch.clone(), Some(1))
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
    let (unchanged, version) = directory.get_ca_policy(&admin, policy.id).await.unwrap();
    assert_eq!(version, 1);
    assert_eq!(serde_json::to_value(&unchanged).unwrap(), text);
    // A stale version is refused; the right one applies.
    let patch = json!({"state": "enabledForReportingButNotEnforced"});
    assert!(matches!(
        directory
            .update_ca_policy(&admin, policy.id, patch.clone(), Some(7))
            .await,
        Err(ServiceError::VersionMismatch { .. })
    ));
    let updated = directory
        .update_ca_policy(&admin, policy.id, patch, Some(1))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&updated).unwrap()["state"],
        "enabledForReportingButNotEnforced"
    );
    // A location a policy names cannot be deleted.
    assert!(matches!(
        directory.delete_named_location(&admin, office.id).await,
        Err(ServiceError::Conflict { .. })
    ));
    directory.delete_ca_policy(&admin, policy.id).await.unwrap();
    directory
        .delete_named_location(&admin, office.id)
        .await
        .unwrap();
    // Every change is audited.
    let events = directory
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
    let node_a = Directory::new(store.clone(), Arc::new(SystemClock));
    let admin = admin(&node_a).await;
    let node_b = Directory::new(store, Arc::new(SystemClock));
    let user = node_a
        .create_user(
            &admin,
            json!({"userPrincipalName": "ada@contoso.com", "displayName": "Ada"}),
        )
        .await
        .unwrap();
    let outer = node_a
        .create_group(&admin, json!({"displayName": "Contractors"}))
        .await
        .unwrap();
    let inner = node_a
        .create_group(&admin, json!({"displayName": "Vendors"}))
        .await
        .unwrap();
    node_a
        .add_group_member(&admin, outer.id, json!({"id": inner.id}))
        .await
        .unwrap();
    let app = node_a
        .create_application(&admin, json!({"displayName": "Finance"}))
        .await
        .unwrap();
    let app_id = app.app_id.to_string();
    let ask = || question(&user.id.to_string(), &app_id);
    assert_eq!(
        serde_json::to_value(node_b.what_if(&admin, ask()).await.unwrap()).unwrap()["result"],
        "allow"
    );
    node_a
        .create_ca_policy(&admin, json!({
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
    let on_b = answer(node_b.what_if(&admin, ask()).await.unwrap());
    assert!(on_b["result"] == "allow");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let on_b = answer(node_b.what_if(&admin, ask()).await.unwrap());
    assert_eq!(
        policy_result(&on_b)["notApplied"]["condition"],
        "users",
        "{on_b}"
    );
    // Membership through a nested group, added on node A: node B follows.
    node_a
        .add_group_member(&admin, inner.id, json!({"id": user.id}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        answer(node_a.what_if(&admin, ask()).await.unwrap())["result"],
        "block"
    );
    let on_b = answer(node_b.what_if(&admin, ask()).await.unwrap());
    assert_eq!(on_b["result"], "block", "{on_b}");
    assert_eq!(policy_result(&on_b)["result"], "failure");
    // And removed again.
    node_a
        .remove_group_member(&admin, inner.id, user.id)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        answer(node_b.what_if(&admin, ask()).await.unwrap())["result"],
        "allow"
    );
}

async fn workloads_are_blocked_at_the_token_endpoint(store: Arc<dyn Store>) {
    let directory = Directory::new(store, Arc::new(SystemClock));
    let admin = admin(&directory).await;
    let client = directory
        .create_application(&admin, json!({"displayName": "Nightly sync"}))
        .await
        .unwrap();
    let principal = directory
        .create_service_principal(&admin, json!({"appId": client.app_id}))
        .await
        .unwrap();
    let secret = directory
        .add_application_password(&admin, client.id, json!({}))
        .await
        .unwrap();
    let resource = directory
        .create_application(&admin, json!({"displayName": "Ledger API"}))
        .await
        .unwrap();
    let ctx = TokenContext {
        dpop: None,
        client_certificates: Vec::new(),
        tenant: admin.tenant,
        issuer: "http://localhost:8080".into(),
        correlation_id: "cc-1".into(),
        client_address: Some("203.0.113.7".into()),
    };
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            client.app_id,
            secret.secret_text.expose()
        ))
    );
    let mut form = BTreeMap::new();
    form.insert("grant_type".to_string(), "client_credentials".to_string());
    form.insert("scope".to_string(), format!("{}/.default", resource.app_id));
    directory
        .token_request(&ctx, Some(&basic), &form)
        .await
        .unwrap();
    // A policy for risky workloads: nothing changes until the workload is risky.
    directory
        .create_ca_policy(&admin, json!({
            "displayName": "Block risky workloads", "state": "enabled",
            "conditions": {"applications": {"includeApplications": ["All"]},
                           "clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"]},
                           "servicePrincipalRiskLevels": ["high"]},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]}
        }))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    directory
        .token_request(&ctx, Some(&basic), &form)
        .await
        .unwrap();
    directory
        .set_risk(&admin, principal.id, json!({"riskLevel": "high"}))
        .await
        .unwrap();
    let refused = directory
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
        .query_sign_ins(&admin, &Default::default())
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

on_both_backends!(
    policies_and_locations_round_trip,
    another_node_enforces_changes_within_a_second,
    workloads_are_blocked_at_the_token_endpoint,
);

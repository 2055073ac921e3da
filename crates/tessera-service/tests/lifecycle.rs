//! Lifecycle workflows on SQLite and PostgreSQL, with two nodes on one
//! database: a hire date in the past two days runs the joiner (the user enabled,
//! a Temporary Access Pass issued, groups set), a department change runs the
//! mover, a leave date runs the leaver (sessions revoked, the user's tokens
//! refused, disabled); each exactly once, however many rounds either node makes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};
use tessera_directory::model::UserSpec;
use tessera_service::{App, Context, PageRequest, Patch, Versioned};
use tessera_testkit::{Backend, bootstrap_admin, both_backends};
use uuid::Uuid;

struct Harness {
    a: App,
    b: App,
    admin: Context,
}

async fn harness(backend: Backend) -> Harness {
    let store = backend.store().await;
    let a = App::new(store.clone(), Arc::new(tessera_core::SystemClock));
    let admin = bootstrap_admin(&a).await.ctx;
    let b = App::new(store, Arc::new(tessera_core::SystemClock));
    Harness { a, b, admin }
}

/// Both nodes make a round at once, then again; returns the runs made.
async fn rounds(h: &Harness) -> usize {
    let tenant = h.admin.tenant;
    let (one, two) = tokio::join!(
        h.a.lifecycle.lifecycle_round(tenant),
        h.b.lifecycle.lifecycle_round(tenant)
    );
    let again = h.b.lifecycle.lifecycle_round(tenant).await.unwrap();
    one.unwrap() + two.unwrap() + again
}

fn days_from_now(days: i64) -> String {
    let now = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    format!(
        "{:04}-{:02}-{:02}T09:00:00Z",
        now.year(),
        now.month() as u8,
        now.day()
    )
}

async fn workflow(h: &Harness, body: Value) -> Uuid {
    h.a.lifecycle
        .create_workflow(&h.admin, body)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .id
}

async fn user(h: &Harness, id: Uuid) -> UserSpec {
    h.a.directory
        .get::<UserSpec>(&h.admin, id)
        .await
        .unwrap()
        .spec
}

async fn groups_of(h: &Harness, id: Uuid) -> Vec<Uuid> {
    let request = PageRequest {
        limit: Some(100),
        ..Default::default()
    };
    h.a.directory
        .user_member_of(&h.admin, id, false, &request)
        .await
        .unwrap()
        .value
        .iter()
        .map(|g| g.id)
        .collect()
}

async fn joiner_mover_leaver_each_run_once(h: Harness) {
    let sales =
        h.a.directory
            .create_group(
                &h.admin,
                json!({"displayName": "Sales", "mailNickname": "sales"}),
            )
            .await
            .unwrap()
            .id;
    let tours =
        h.a.directory
            .create_group(
                &h.admin,
                json!({"displayName": "Tours", "mailNickname": "tours"}),
            )
            .await
            .unwrap()
            .id;
    let manager = h
        .a
        .directory
        .create_user(
            &h.admin,
            json!({"userPrincipalName": "boss@tessera.local", "displayName": "Boss", "mail": "boss@example.com"}),
        )
        .await
        .unwrap()
        .id;
    // A workflow that does not hold is refused whole.
    let refused =
        h.a.lifecycle
            .create_workflow(
                &h.admin,
                json!({"displayName": "x", "category": "joiner",
                   "trigger": {"kind": "timeBased", "attribute": "employeeHireDate"},
                   "tasks": [{"task": "deleteUser"}]}),
            )
            .await
            .unwrap_err();
    assert!(
        format!("{refused:?}").contains("not a task of a joiner"),
        "{refused:?}"
    );
    let joiner = workflow(
        &h,
        json!({"displayName": "New hires", "category": "joiner",
        "trigger": {"kind": "timeBased", "attribute": "employeeHireDate", "offsetDays": 0},
        "scope": "user.department -eq \"Sales\"",
        "tasks": [
            {"task": "enableUser"},
            {"task": "generateTemporaryAccessPass", "lifetimeMinutes": 480},
            {"task": "addToGroups", "groups": [sales]},
            {"task": "notifyManager"}
        ]}),
    )
    .await;
    let mover = workflow(
        &h,
        json!({"displayName": "Movers", "category": "mover",
        "trigger": {"kind": "attributeChange", "attributes": ["department"]},
        "tasks": [
            {"task": "removeFromGroups", "groups": [sales]},
            {"task": "addToGroups", "groups": [tours]}
        ]}),
    )
    .await;
    let leaver = workflow(
        &h,
        json!({"displayName": "Leavers", "category": "leaver",
        "trigger": {"kind": "timeBased", "attribute": "employeeLeaveDateTime", "offsetDays": 0},
        "tasks": [
            {"task": "disableUser"},
            {"task": "revokeSessions"},
            {"task": "removeFromAllGroups"}
        ]}),
    )
    .await;
    // Hired yesterday, made disabled; another hired a month ago is past the window.
    let ann =
        h.a.directory
            .create_user(
                &h.admin,
                json!({"userPrincipalName": "ann@tessera.local", "displayName": "Ann",
                   "accountEnabled": false, "department": "Sales", "managerId": manager,
                   "employeeHireDate": days_from_now(-1)}),
            )
            .await
            .unwrap()
            .id;
    h.a.directory
        .create_user(
            &h.admin,
            json!({"userPrincipalName": "old@tessera.local", "displayName": "Old",
                   "department": "Sales", "employeeHireDate": days_from_now(-30)}),
        )
        .await
        .unwrap();
    assert_eq!(rounds(&h).await, 1, "the joiner, once");
    let now = user(&h, ann).await;
    assert!(now.account_enabled, "enabled");
    assert_eq!(groups_of(&h, ann).await, vec![sales]);
    let methods = h.a.sign_in.list_user_methods(&h.admin, ann).await.unwrap();
    assert!(
        serde_json::to_string(&methods)
            .unwrap()
            .contains("temporaryAccessPass"),
        "a pass for day one: {methods:?}"
    );
    let runs =
        h.a.lifecycle
            .lifecycle_runs(&h.admin, Some(joiner))
            .await
            .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, "completed", "{:?}", runs[0].tasks);
    assert!(
        !serde_json::to_string(&runs[0])
            .unwrap()
            .contains("Temporary Access Pass for"),
        "the pass itself is never in the run"
    );
    assert_eq!(rounds(&h).await, 0, "nothing more");
    // A hire date changed later does not make her join again.
    h.a.directory
        .update_user(
            &h.admin,
            Patch {
                at: Versioned::any(ann),
                body: json!({"employeeHireDate": days_from_now(-2)}),
            },
        )
        .await
        .unwrap();
    assert_eq!(rounds(&h).await, 0, "a joiner runs once for a person");
    // Moves to Tours.
    h.a.directory
        .update_user(
            &h.admin,
            Patch {
                at: Versioned::any(ann),
                body: json!({"department": "Tours"}),
            },
        )
        .await
        .unwrap();
    assert_eq!(rounds(&h).await, 1, "the mover, once");
    assert_eq!(groups_of(&h, ann).await, vec![tours]);
    assert_eq!(
        h.a.lifecycle
            .lifecycle_runs(&h.admin, Some(mover))
            .await
            .unwrap()
            .len(),
        1
    );
    // Leaves: a token of hers works until the leaver runs.
    let token =
        h.a.directory
            .issue_token_for(&h.admin, ann, json!({"displayName": "laptop"}))
            .await
            .unwrap();
    let secret = serde_json::to_value(&token).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(h.a.directory.authenticate_token(&secret).await.is_ok());
    h.a.directory
        .update_user(
            &h.admin,
            Patch {
                at: Versioned::any(ann),
                body: json!({"employeeLeaveDateTime": days_from_now(-1)}),
            },
        )
        .await
        .unwrap();
    assert_eq!(rounds(&h).await, 1, "the leaver, once");
    let now = user(&h, ann).await;
    assert!(!now.account_enabled, "disabled");
    assert!(groups_of(&h, ann).await.is_empty(), "out of every group");
    assert!(
        h.a.directory.authenticate_token(&secret).await.is_err(),
        "her tokens are refused"
    );
    let runs =
        h.a.lifecycle
            .lifecycle_runs(&h.admin, Some(leaver))
            .await
            .unwrap();
    assert_eq!(runs[0].state, "completed", "{:?}", runs[0].tasks);
    assert_eq!(runs[0].tasks[1]["task"], "revokeSessions");
    assert!(
        runs[0].tasks[1]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 personal access tokens revoked")),
        "{:?}",
        runs[0].tasks[1]
    );
    assert_eq!(rounds(&h).await, 0, "each exactly once");
}

/// Roles a mover's new job does not need, and a leaver's: a mover's
/// `removeRoles` ends the eligibility for the role named and keeps the others;
/// a leaver's `removeAllRoles` ends the rest (PIM's schedules and standing
/// assignments), after which the leaver, no longer privileged, is disabled by
/// the next task.
async fn movers_and_leavers_lose_their_roles(h: Harness) {
    use tessera_directory::roles::{GROUPS_ADMINISTRATOR, HELPDESK_ADMINISTRATOR};
    use tessera_service::pim::{Family, ScheduleKind};
    // Checked when saved: the roles exist, and a joiner removes none.
    for (category, roles) in [
        ("mover", json!([Uuid::new_v4()])),
        ("mover", json!([])),
        ("joiner", json!([HELPDESK_ADMINISTRATOR])),
    ] {
        let trigger = if category == "mover" {
            json!({"kind": "attributeChange", "attributes": ["department"]})
        } else {
            json!({"kind": "timeBased", "attribute": "employeeHireDate"})
        };
        let refused =
            h.a.lifecycle
                .create_workflow(
                    &h.admin,
                    json!({"displayName": "x", "category": category, "trigger": trigger,
                       "tasks": [{"task": "removeRoles", "roles": roles}]}),
                )
                .await;
        assert!(refused.is_err(), "{category} {roles}: {refused:?}");
    }
    // A role-assignable group's members are not a workflow's to change: that
    // would hand out its roles.
    let tier0 =
        h.a.directory
            .create_group(
                &h.admin,
                json!({"displayName": "Tier 0", "mailNickname": "tier0",
                   "isAssignableToRole": true}),
            )
            .await
            .unwrap()
            .id;
    let refused =
        h.a.lifecycle
            .create_workflow(
                &h.admin,
                json!({"displayName": "x", "category": "mover",
                   "trigger": {"kind": "attributeChange", "attributes": ["department"]},
                   "tasks": [{"task": "removeRoles", "roles": [HELPDESK_ADMINISTRATOR]},
                             {"task": "addToGroups", "groups": [tier0]}]}),
            )
            .await
            .unwrap_err();
    assert!(
        format!("{refused:?}").contains("can be assigned roles"),
        "{refused:?}"
    );
    workflow(
        &h,
        json!({"displayName": "Movers", "category": "mover",
        "trigger": {"kind": "attributeChange", "attributes": ["department"]},
        "tasks": [{"task": "removeRoles", "roles": [HELPDESK_ADMINISTRATOR]}]}),
    )
    .await;
    let leaver = workflow(
        &h,
        json!({"displayName": "Leavers", "category": "leaver",
        "trigger": {"kind": "timeBased", "attribute": "employeeLeaveDateTime", "offsetDays": 0},
        "tasks": [{"task": "removeAllRoles"}, {"task": "disableUser"}, {"task": "revokeSessions"}]}),
    )
    .await;
    let bob =
        h.a.directory
            .create_user(
                &h.admin,
                json!({"userPrincipalName": "bob@tessera.local", "displayName": "Bob",
                   "department": "Support"}),
            )
            .await
            .unwrap()
            .id;
    for role in [HELPDESK_ADMINISTRATOR, GROUPS_ADMINISTRATOR] {
        h.a.pim
            .create_request(
                &h.admin,
                Family::Roles,
                ScheduleKind::Eligibility,
                json!({"action": "adminAssign", "principalId": bob, "roleDefinitionId": role,
                       "directoryScopeId": "/", "justification": "support rota",
                       "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "P30D"}}}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }
    h.a.directory
        .create_role_assignment(
            &h.admin,
            json!({"principalId": bob, "roleDefinitionId": GROUPS_ADMINISTRATOR,
                   "directoryScopeId": "/"}),
        )
        .await
        .unwrap();
    let held = |kind: ScheduleKind| {
        let pim = h.a.pim.clone();
        let admin = h.admin.clone();
        async move {
            let mut roles: Vec<Uuid> = pim
                .list_schedules(&admin, Family::Roles, kind, Some(bob), None)
                .await
                .unwrap()
                .value
                .iter()
                .filter_map(|s| s.role_definition_id)
                .collect();
            roles.sort();
            roles
        }
    };
    let mut both = vec![HELPDESK_ADMINISTRATOR, GROUPS_ADMINISTRATOR];
    both.sort();
    assert_eq!(held(ScheduleKind::Eligibility).await, both);
    // Moves: the helpdesk role goes, the rest stays.
    h.a.directory
        .update_user(
            &h.admin,
            Patch {
                at: Versioned::any(bob),
                body: json!({"department": "Finance"}),
            },
        )
        .await
        .unwrap();
    assert_eq!(rounds(&h).await, 1, "the mover, once");
    assert_eq!(
        held(ScheduleKind::Eligibility).await,
        vec![GROUPS_ADMINISTRATOR]
    );
    assert_eq!(
        held(ScheduleKind::Assignment).await,
        vec![GROUPS_ADMINISTRATOR],
        "the standing assignment stays"
    );
    // Leaves: every role goes, then the account.
    h.a.directory
        .update_user(
            &h.admin,
            Patch {
                at: Versioned::any(bob),
                body: json!({"employeeLeaveDateTime": days_from_now(-1)}),
            },
        )
        .await
        .unwrap();
    assert_eq!(rounds(&h).await, 1, "the leaver, once");
    let runs =
        h.a.lifecycle
            .lifecycle_runs(&h.admin, Some(leaver))
            .await
            .unwrap();
    assert_eq!(runs[0].state, "completed", "{:?}", runs[0].tasks);
    assert!(held(ScheduleKind::Eligibility).await.is_empty());
    assert!(held(ScheduleKind::Assignment).await.is_empty());
    assert!(!user(&h, bob).await.account_enabled, "disabled");
    assert!(
        audit_has(&h, "roleSchedule.remove").await,
        "the removals are in the audit trail"
    );
}

async fn audit_has(h: &Harness, action: &str) -> bool {
    let filter = tessera_service::AuditFilter {
        actor_id: None,
        target_id: None,
        action: Some(action.to_string()),
        since: None,
        until: None,
        cursor: None,
        limit: Some(10),
    };
    !h.a.directory
        .query_audit(&h.admin, &filter)
        .await
        .unwrap()
        .value
        .is_empty()
}

both_backends!(setup = harness; joiner_mover_leaver_each_run_once, movers_and_leavers_lose_their_roles);

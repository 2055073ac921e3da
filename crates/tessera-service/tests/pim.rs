//! Privileged Identity Management on SQLite and PostgreSQL: every schedule request
//! action and every role setting, with their refusals (activation without the
//! required strength, beyond the maximum, self-approval, approval after the
//! time-out, an extension by someone without the permission, an expired
//! eligibility); a refused request changes nothing; an activation grants at once
//! and stops granting at its end whether or not the expiry round has run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};
use tessera_directory::roles::{GLOBAL_ADMINISTRATOR, USER_ADMINISTRATOR};
use tessera_service::pim::{Family, ScheduleKind, Status};
use tessera_service::{App, Context, ServiceError, SignInProof};
use tessera_testkit::{Backend, ShiftedClock, bootstrap_admin, both_backends};
use uuid::Uuid;

const ELIGIBILITY: ScheduleKind = ScheduleKind::Eligibility;
const ASSIGNMENT: ScheduleKind = ScheduleKind::Assignment;
const ROLES: Family = Family::Roles;
const GROUPS: Family = Family::Groups;

struct Harness {
    app: App,
    clock: Arc<ShiftedClock>,
    admin: Context,
    admin_id: Uuid,
}

async fn harness(backend: Backend) -> Harness {
    let clock = Arc::new(ShiftedClock::default());
    let app = App::new(backend.store().await, clock.clone());
    let admin = bootstrap_admin(&app).await;
    Harness {
        app,
        clock,
        admin: admin.ctx.clone(),
        admin_id: admin.user_id,
    }
}

/// A person in the directory.
struct Person {
    id: Uuid,
}

impl Harness {
    async fn person(&self, name: &str) -> Person {
        let user = self
            .app
            .directory
            .create_user(
                &self.admin,
                json!({"userPrincipalName": format!("{name}@contoso.com"), "displayName": name}),
            )
            .await
            .unwrap();
        Person { id: user.id }
    }

    /// The person as the API would see them on their next request: grants read
    /// again now; `mfa` as their sign-in proved it.
    async fn as_person(&self, person: &Person, mfa: bool) -> Context {
        self.signed_in(person, mfa, &[]).await
    }

    async fn signed_in(&self, person: &Person, mfa: bool, contexts: &[&str]) -> Context {
        let caller = self
            .app
            .directory
            .caller_for_tests(self.admin.tenant, person.id)
            .await
            .unwrap();
        let mut ctx = self.admin.clone();
        ctx.caller = caller.with_proof_for_tests(SignInProof {
            mfa,
            authentication_contexts: contexts.iter().map(|c| c.to_string()).collect(),
        });
        ctx
    }

    async fn request(
        &self,
        ctx: &Context,
        kind: ScheduleKind,
        body: Value,
    ) -> Result<tessera_service::pim::RequestView, ServiceError> {
        self.app.pim.create_request(ctx, ROLES, kind, body).await
    }

    /// Whether the person may create a user right now (User Administrator's
    /// permission), as a fresh request would find.
    async fn can_create_users(&self, person: &Person) -> bool {
        let ctx = self.as_person(person, true).await;
        let name = Uuid::new_v4().simple().to_string();
        match self
            .app
            .directory
            .create_user(
                &ctx,
                json!({"userPrincipalName": format!("u{name}@contoso.com"), "displayName": "made"}),
            )
            .await
        {
            Ok(_) => true,
            Err(ServiceError::Forbidden { .. }) => false,
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }

    async fn schedules(&self, kind: ScheduleKind, principal: Uuid) -> usize {
        self.app
            .pim
            .list_schedules(
                &self.admin,
                ROLES,
                kind,
                Some(principal),
                Some(USER_ADMINISTRATOR),
            )
            .await
            .unwrap()
            .value
            .len()
    }

    async fn audit_count(&self, action: &str) -> usize {
        let filter = tessera_service::AuditFilter {
            actor_id: None,
            target_id: None,
            action: Some(action.to_string()),
            since: None,
            until: None,
            cursor: None,
            limit: Some(1000),
        };
        self.app
            .directory
            .query_audit(&self.admin, &filter)
            .await
            .unwrap()
            .value
            .len()
    }

    async fn make_eligible(&self, person: &Person, expiration: Value) -> Uuid {
        let made = self
            .request(
                &self.admin,
                ELIGIBILITY,
                json!({
                    "action": "adminAssign",
                    "principalId": person.id,
                    "roleDefinitionId": USER_ADMINISTRATOR,
                    "directoryScopeId": "/",
                    "justification": "on call this quarter",
                    "scheduleInfo": { "expiration": expiration }
                }),
            )
            .await
            .unwrap();
        assert_eq!(made.status, Status::Provisioned);
        made.target_schedule_id.unwrap()
    }
}

/// A principal's role assignments, as `roleAssignments` lists them.
async fn role_assignments_of(
    h: &Harness,
    principal: Uuid,
) -> Vec<tessera_directory::model::RoleAssignment> {
    h.app
        .directory
        .list_role_assignments(
            &h.admin,
            Some(principal),
            None,
            &tessera_service::PageRequest::default(),
        )
        .await
        .unwrap()
        .value
}

fn activation(person: &Person, duration: &str) -> Value {
    json!({
        "action": "selfActivate",
        "principalId": person.id,
        "roleDefinitionId": USER_ADMINISTRATOR,
        "directoryScopeId": "/",
        "justification": "ticket 42: onboarding",
        "scheduleInfo": { "expiration": { "type": "afterDuration", "duration": duration } }
    })
}

fn expect_invalid(result: Result<impl std::fmt::Debug, ServiceError>, field: &str) {
    match result {
        Err(ServiceError::Validation(errors)) => assert!(
            errors.errors.iter().any(|e| e.field.starts_with(field)),
            "{errors:?}"
        ),
        other => panic!("expected a validation error on {field}: {other:?}"),
    }
}

async fn an_eligible_administrator_activates_and_the_grant_ends_at_its_end(h: Harness) {
    let alice = h.person("alice").await;
    assert!(!h.can_create_users(&alice).await);
    h.make_eligible(&alice, json!({"type": "noExpiration"}))
        .await;
    // Eligible is not active.
    assert!(!h.can_create_users(&alice).await);
    assert_eq!(h.schedules(ELIGIBILITY, alice.id).await, 1);

    // Without MFA: an RFC 9470 challenge naming what would do, and nothing stored.
    let without = h.as_person(&alice, false).await;
    match h
        .request(&without, ASSIGNMENT, activation(&alice, "PT1H"))
        .await
    {
        Err(ServiceError::InsufficientAuthentication { acr_values, .. }) => {
            assert_eq!(acr_values, tessera_service::pim::MFA_ACR)
        }
        other => panic!("{other:?}"),
    }
    let with = h.as_person(&alice, true).await;
    let mut unjustified = activation(&alice, "PT1H");
    unjustified["justification"] = json!("  ");
    expect_invalid(
        h.request(&with, ASSIGNMENT, unjustified).await,
        "justification",
    );
    expect_invalid(
        h.request(&with, ASSIGNMENT, activation(&alice, "PT9H"))
            .await,
        "scheduleInfo",
    );
    expect_invalid(
        h.request(&with, ASSIGNMENT, activation(&alice, "8 hours"))
            .await,
        "scheduleInfo.expiration.duration",
    );
    let mut for_someone_else = activation(&alice, "PT1H");
    for_someone_else["principalId"] = json!(h.admin_id);
    assert!(matches!(
        h.request(&with, ASSIGNMENT, for_someone_else).await,
        Err(ServiceError::Forbidden { .. })
    ));
    assert_eq!(h.schedules(ASSIGNMENT, alice.id).await, 0);
    assert!(
        h.app
            .pim
            .list_requests(&with, ROLES, ASSIGNMENT, Default::default(), Some(alice.id))
            .await
            .unwrap()
            .value
            .is_empty()
    );

    // A validation-only request says what would happen and changes nothing.
    let mut dry = activation(&alice, "PT1H");
    dry["isValidationOnly"] = json!(true);
    let checked = h.request(&with, ASSIGNMENT, dry).await.unwrap();
    assert!(checked.is_validation_only);
    assert!(!h.can_create_users(&alice).await);

    // Activated: effective on the next request, listed as an instance.
    let activated = h
        .request(&with, ASSIGNMENT, activation(&alice, "PT1H"))
        .await
        .unwrap();
    assert_eq!(activated.status, Status::Provisioned);
    assert!(h.can_create_users(&alice).await);
    let instances = h
        .app
        .pim
        .list_instances(&with, ROLES, ASSIGNMENT, Some(alice.id), None)
        .await
        .unwrap()
        .value;
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].assignment_type, Some("Activated"));
    assert!(matches!(
        h.request(&with, ASSIGNMENT, activation(&alice, "PT1H"))
            .await,
        Err(ServiceError::Conflict { .. })
    ));
    // While it lasts it is a role assignment too (as in Entra), one PIM manages.
    let listed = role_assignments_of(&h, alice.id).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].managed_by_pim && listed[0].end_date_time.is_some());
    assert_eq!(listed[0].spec.role_definition_id, USER_ADMINISTRATOR);
    let one = h
        .app
        .directory
        .get_role_assignment(&h.admin, listed[0].id)
        .await
        .unwrap();
    assert!(one.managed_by_pim);
    assert!(matches!(
        h.app
            .directory
            .delete_role_assignment(&h.admin, listed[0].id)
            .await,
        Err(ServiceError::Conflict { .. })
    ));

    // At its end it grants nothing, before any job has run.
    h.clock.advance_seconds(3601);
    assert!(!h.can_create_users(&alice).await);
    assert!(role_assignments_of(&h, alice.id).await.is_empty());
    assert_eq!(h.audit_count("roleSchedule.expire").await, 0);
    let round = h.app.pim.expiry_round(h.admin.tenant).await.unwrap();
    assert_eq!(round.expired, 1);
    assert_eq!(h.audit_count("roleSchedule.expire").await, 1);
    assert_eq!(
        h.app
            .pim
            .expiry_round(h.admin.tenant)
            .await
            .unwrap()
            .expired,
        0
    );

    // Activated again and deactivated by herself.
    let with = h.as_person(&alice, true).await;
    h.request(&with, ASSIGNMENT, activation(&alice, "PT2H"))
        .await
        .unwrap();
    assert!(h.can_create_users(&alice).await);
    let ended = h
        .request(
            &with,
            ASSIGNMENT,
            json!({
                "action": "selfDeactivate",
                "principalId": alice.id,
                "roleDefinitionId": USER_ADMINISTRATOR,
                "directoryScopeId": "/"
            }),
        )
        .await
        .unwrap();
    assert_eq!(ended.status, Status::Revoked);
    assert!(!h.can_create_users(&alice).await);
    // Every request taken is in the trail.
    assert_eq!(h.audit_count("roleScheduleRequest.create").await, 4);
}

async fn approval_is_asked_of_the_named_approvers_and_answered_in_time(h: Harness) {
    let alice = h.person("alice").await;
    let bob = h.person("bob").await;
    h.make_eligible(&alice, json!({"type": "noExpiration"}))
        .await;
    let pim = &h.app.pim;
    // Settings are checked before they are stored.
    expect_invalid(
        pim.replace_role_settings(
            &h.admin,
            USER_ADMINISTRATOR,
            json!({"maxActivationSeconds": 60}),
            None,
        )
        .await,
        "settings",
    );
    expect_invalid(
        pim.replace_role_settings(
            &h.admin,
            USER_ADMINISTRATOR,
            json!({"activationRequiresApproval": true, "approvers": [{"type": "user", "id": Uuid::new_v4()}]}),
            None,
        )
        .await,
        "approvers",
    );
    let plain = h
        .app
        .directory
        .create_group(
            &h.admin,
            json!({"displayName": "Approvers", "mailNickname": "approvers"}),
        )
        .await
        .unwrap();
    expect_invalid(
        pim.replace_role_settings(
            &h.admin,
            USER_ADMINISTRATOR,
            json!({"activationRequiresApproval": true, "approvers": [{"type": "group", "id": plain.id}]}),
            None,
        )
        .await,
        "approvers",
    );
    let settings = pim
        .replace_role_settings(
            &h.admin,
            USER_ADMINISTRATOR,
            json!({
                "activationRequiresApproval": true,
                "approvers": [{"type": "user", "id": bob.id}],
                "approvalTimeoutSeconds": 3600,
                "activationRequiresTicket": true
            }),
            Some(0),
        )
        .await
        .unwrap();
    assert_eq!(settings.version, 1);
    assert!(settings.settings.activation_requires_approval);
    // A stale version is refused.
    assert!(matches!(
        pim.replace_role_settings(&h.admin, USER_ADMINISTRATOR, json!({}), Some(0))
            .await,
        Err(ServiceError::VersionMismatch { .. })
    ));

    let with = h.as_person(&alice, true).await;
    expect_invalid(
        h.request(&with, ASSIGNMENT, activation(&alice, "PT1H"))
            .await,
        "ticketInfo",
    );
    let ticketed = |duration: &str| {
        let mut body = activation(&alice, duration);
        body["ticketInfo"] = json!({"ticketNumber": "CHG-1001", "ticketSystem": "ServiceNow"});
        body
    };
    let waiting = h
        .request(&with, ASSIGNMENT, ticketed("PT1H"))
        .await
        .unwrap();
    assert_eq!(waiting.status, Status::PendingApproval);
    assert!(!h.can_create_users(&alice).await);
    // One waits at a time; an assignment request is not an eligibility request.
    assert!(matches!(
        h.request(&with, ASSIGNMENT, ticketed("PT2H")).await,
        Err(ServiceError::Conflict { .. })
    ));
    assert!(matches!(
        pim.get_request(&h.admin, ROLES, ELIGIBILITY, waiting.id)
            .await,
        Err(ServiceError::NotFound { .. })
    ));
    // Not by herself, not by an administrator who is not named.
    let with = h.as_person(&alice, true).await;
    assert!(matches!(
        pim.answer_request(&with, ROLES, ASSIGNMENT, waiting.id, true, None)
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    assert!(matches!(
        pim.answer_request(&h.admin, ROLES, ASSIGNMENT, waiting.id, true, None)
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    let approver = h.as_person(&bob, false).await;
    let awaiting = pim
        .list_requests(
            &approver,
            ROLES,
            ASSIGNMENT,
            tessera_service::pim::RequestFilter::AwaitingMe,
            None,
        )
        .await
        .unwrap()
        .value;
    assert_eq!(awaiting.len(), 1);
    assert_eq!(
        pim.get_request(&approver, ROLES, ASSIGNMENT, waiting.id)
            .await
            .unwrap()
            .id,
        waiting.id
    );
    let approved = pim
        .answer_request(
            &approver,
            ROLES,
            ASSIGNMENT,
            waiting.id,
            true,
            Some("checked the ticket".into()),
        )
        .await
        .unwrap();
    assert_eq!(approved.status, Status::Provisioned);
    assert!(h.can_create_users(&alice).await);
    assert!(matches!(
        pim.answer_request(&approver, ROLES, ASSIGNMENT, waiting.id, false, None)
            .await,
        Err(ServiceError::Conflict { .. })
    ));
    h.request(
        &with,
        ASSIGNMENT,
        json!({"action": "selfDeactivate", "principalId": alice.id,
               "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/"}),
    )
    .await
    .unwrap();

    // Not answered in time: refused, then recorded as timed out.
    let late = h
        .request(&with, ASSIGNMENT, ticketed("PT1H"))
        .await
        .unwrap();
    h.clock.advance_seconds(3601);
    assert!(matches!(
        pim.answer_request(&approver, ROLES, ASSIGNMENT, late.id, true, None)
            .await,
        Err(ServiceError::Conflict { .. })
    ));
    assert_eq!(
        pim.get_request(&with, ROLES, ASSIGNMENT, late.id)
            .await
            .unwrap()
            .status,
        Status::TimedOut
    );
    assert_eq!(pim.expiry_round(h.admin.tenant).await.unwrap().timed_out, 1);
    assert!(!h.can_create_users(&alice).await);

    // Denied; withdrawn.
    let with = h.as_person(&alice, true).await;
    let denied = h
        .request(&with, ASSIGNMENT, ticketed("PT1H"))
        .await
        .unwrap();
    let approver = h.as_person(&bob, false).await;
    assert_eq!(
        pim.answer_request(&approver, ROLES, ASSIGNMENT, denied.id, false, None)
            .await
            .unwrap()
            .status,
        Status::Denied
    );
    let withdrawn = h
        .request(&with, ASSIGNMENT, ticketed("PT1H"))
        .await
        .unwrap();
    assert_eq!(
        pim.cancel_request(&with, ROLES, ASSIGNMENT, withdrawn.id)
            .await
            .unwrap()
            .status,
        Status::Canceled
    );
    assert!(matches!(
        pim.cancel_request(&with, ROLES, ASSIGNMENT, withdrawn.id)
            .await,
        Err(ServiceError::Conflict { .. })
    ));
    assert!(!h.can_create_users(&alice).await);
    // Someone else's request is not found for a stranger.
    let carol = h.person("carol").await;
    let stranger = h.as_person(&carol, true).await;
    assert!(matches!(
        pim.get_request(&stranger, ROLES, ASSIGNMENT, withdrawn.id)
            .await,
        Err(ServiceError::NotFound { .. })
    ));
    assert_eq!(h.audit_count("roleScheduleRequest.approve").await, 1);
    assert_eq!(h.audit_count("roleScheduleRequest.deny").await, 1);
    assert_eq!(h.audit_count("roleScheduleRequest.cancel").await, 1);
    assert_eq!(h.audit_count("roleScheduleRequest.timeOut").await, 1);
    assert_eq!(h.audit_count("roleManagementPolicy.update").await, 1);
}

async fn an_authentication_context_is_asked_for_by_name(h: Harness) {
    let alice = h.person("alice").await;
    h.make_eligible(&alice, json!({"type": "noExpiration"}))
        .await;
    let pim = &h.app.pim;
    expect_invalid(
        pim.replace_role_settings(
            &h.admin,
            USER_ADMINISTRATOR,
            json!({"activationAuthenticationContext": "c1"}),
            None,
        )
        .await,
        "activationAuthenticationContext",
    );
    h.app
        .directory
        .set_authentication_contexts(
            &h.admin,
            tessera_service::Replacement::any(json!({"contexts": [{
                "id": "c1", "displayName": "Phishing-resistant",
                "strengthId": tessera_authn::strength::PHISHING_RESISTANT_MFA
            }]})),
        )
        .await
        .unwrap();
    pim.replace_role_settings(
        &h.admin,
        USER_ADMINISTRATOR,
        json!({"activationAuthenticationContext": "c1"}),
        None,
    )
    .await
    .unwrap();
    // MFA alone is not the context; the context alone is not MFA.
    for (mfa, contexts) in [(true, vec![]), (false, vec!["c1"])] {
        let ctx = h.signed_in(&alice, mfa, &contexts).await;
        match h
            .request(&ctx, ASSIGNMENT, activation(&alice, "PT1H"))
            .await
        {
            Err(ServiceError::InsufficientAuthentication { acr_values, .. }) => {
                assert_eq!(
                    acr_values,
                    if mfa {
                        "c1"
                    } else {
                        tessera_service::pim::MFA_ACR
                    }
                )
            }
            other => panic!("{other:?}"),
        }
    }
    let ctx = h.signed_in(&alice, true, &["c1"]).await;
    h.request(&ctx, ASSIGNMENT, activation(&alice, "PT1H"))
        .await
        .unwrap();
    assert!(h.can_create_users(&alice).await);
}

async fn administrators_assign_update_extend_renew_and_remove(h: Harness) {
    let alice = h.person("alice").await;
    let carol = h.person("carol").await;
    let admin_assign = |expiration: Value, justification: Option<&str>| {
        let mut body = json!({
            "action": "adminAssign",
            "principalId": alice.id,
            "roleDefinitionId": USER_ADMINISTRATOR,
            "directoryScopeId": "/",
            "scheduleInfo": { "expiration": expiration }
        });
        if let Some(text) = justification {
            body["justification"] = json!(text);
        }
        body
    };
    // Only an administrator; with a justification; within the maximum (180 days).
    let carol_ctx = h.as_person(&carol, true).await;
    assert!(matches!(
        h.request(
            &carol_ctx,
            ASSIGNMENT,
            admin_assign(
                json!({"type": "afterDuration", "duration": "P30D"}),
                Some("x")
            )
        )
        .await,
        Err(ServiceError::Forbidden { .. })
    ));
    expect_invalid(
        h.request(
            &h.admin,
            ASSIGNMENT,
            admin_assign(json!({"type": "afterDuration", "duration": "P30D"}), None),
        )
        .await,
        "justification",
    );
    expect_invalid(
        h.request(
            &h.admin,
            ASSIGNMENT,
            admin_assign(json!({"type": "noExpiration"}), Some("project")),
        )
        .await,
        "scheduleInfo",
    );
    expect_invalid(
        h.request(
            &h.admin,
            ASSIGNMENT,
            admin_assign(
                json!({"type": "afterDuration", "duration": "P181D"}),
                Some("project"),
            ),
        )
        .await,
        "scheduleInfo",
    );
    let assigned = h
        .request(
            &h.admin,
            ASSIGNMENT,
            admin_assign(
                json!({"type": "afterDuration", "duration": "P10D"}),
                Some("project"),
            ),
        )
        .await
        .unwrap();
    let schedule = assigned.target_schedule_id.unwrap();
    assert!(h.can_create_users(&alice).await);
    assert!(matches!(
        h.request(
            &h.admin,
            ASSIGNMENT,
            admin_assign(
                json!({"type": "afterDuration", "duration": "P10D"}),
                Some("again")
            )
        )
        .await,
        Err(ServiceError::Conflict { .. })
    ));
    let admin_action = |action: &str, expiration: Value| {
        json!({
            "action": action,
            "principalId": alice.id,
            "roleDefinitionId": USER_ADMINISTRATOR,
            "directoryScopeId": "/",
            "justification": "project runs longer",
            "targetScheduleId": schedule,
            "scheduleInfo": { "expiration": expiration }
        })
    };
    let updated = h
        .request(
            &h.admin,
            ASSIGNMENT,
            admin_action(
                "adminUpdate",
                json!({"type": "afterDuration", "duration": "P5D"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(updated.status, Status::Provisioned);
    // An extension: by an administrator, not by someone without the permission.
    let extend = admin_action(
        "adminExtend",
        json!({"type": "afterDuration", "duration": "P12D"}),
    );
    assert!(matches!(
        h.request(&carol_ctx, ASSIGNMENT, extend.clone()).await,
        Err(ServiceError::Forbidden { .. })
    ));
    h.request(&h.admin, ASSIGNMENT, extend).await.unwrap();
    let listed = h
        .app
        .pim
        .list_schedules(
            &h.admin,
            ROLES,
            ASSIGNMENT,
            Some(alice.id),
            Some(USER_ADMINISTRATOR),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].assignment_type, Some("Assigned"));
    // Her own extension asks an administrator.
    let alice_ctx = h.as_person(&alice, true).await;
    let mut own = admin_action(
        "selfExtend",
        json!({"type": "afterDuration", "duration": "P30D"}),
    );
    own["justification"] = json!("still needed");
    let asked = h.request(&alice_ctx, ASSIGNMENT, own).await.unwrap();
    assert_eq!(asked.status, Status::PendingApproval);
    assert_eq!(
        h.app
            .pim
            .answer_request(&h.admin, ROLES, ASSIGNMENT, asked.id, true, None)
            .await
            .unwrap()
            .status,
        Status::Provisioned
    );

    // Ended; renewed by an administrator.
    h.clock.advance_seconds(31 * 86_400);
    assert!(!h.can_create_users(&alice).await);
    h.request(
        &h.admin,
        ASSIGNMENT,
        admin_action(
            "adminRenew",
            json!({"type": "afterDuration", "duration": "P7D"}),
        ),
    )
    .await
    .unwrap();
    assert!(h.can_create_users(&alice).await);
    // Removed.
    let removed = h
        .request(
            &h.admin,
            ASSIGNMENT,
            admin_action("adminRemove", json!({"type": "noExpiration"})),
        )
        .await
        .unwrap();
    assert_eq!(removed.status, Status::Revoked);
    assert!(!h.can_create_users(&alice).await);
    assert_eq!(h.schedules(ASSIGNMENT, alice.id).await, 0);

    // An eligibility that has expired allows no activation; renewed, it does;
    // removed, it takes its activation along.
    let eligibility = h
        .make_eligible(&alice, json!({"type": "afterDuration", "duration": "P1D"}))
        .await;
    h.clock.advance_seconds(86_401);
    let alice_ctx = h.as_person(&alice, true).await;
    assert!(matches!(
        h.request(&alice_ctx, ASSIGNMENT, activation(&alice, "PT1H"))
            .await,
        Err(ServiceError::Conflict { .. })
    ));
    h.request(
        &h.admin,
        ELIGIBILITY,
        json!({
            "action": "adminRenew", "principalId": alice.id,
            "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/",
            "justification": "another quarter", "targetScheduleId": eligibility,
            "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "P90D"}}
        }),
    )
    .await
    .unwrap();
    h.request(&alice_ctx, ASSIGNMENT, activation(&alice, "PT1H"))
        .await
        .unwrap();
    assert!(h.can_create_users(&alice).await);
    h.request(
        &h.admin,
        ELIGIBILITY,
        json!({
            "action": "adminRemove", "principalId": alice.id,
            "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/"
        }),
    )
    .await
    .unwrap();
    assert!(!h.can_create_users(&alice).await);
    assert_eq!(h.schedules(ELIGIBILITY, alice.id).await, 0);
    assert_eq!(h.schedules(ASSIGNMENT, alice.id).await, 0);

    // The last Global Administrator's standing assignment is not removed.
    let standing = h
        .app
        .pim
        .list_schedules(
            &h.admin,
            ROLES,
            ASSIGNMENT,
            Some(h.admin_id),
            Some(GLOBAL_ADMINISTRATOR),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(standing.len(), 1);
    assert!(standing[0].created_using.is_none());
    assert!(matches!(
        h.request(
            &h.admin,
            ASSIGNMENT,
            json!({
                "action": "adminRemove", "principalId": h.admin_id,
                "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/"
            }),
        )
        .await,
        Err(ServiceError::Conflict { .. })
    ));
    // Bad input is named.
    expect_invalid(
        h.request(&h.admin, ASSIGNMENT, json!({"action": "adminPromote", "principalId": alice.id, "roleDefinitionId": USER_ADMINISTRATOR})).await,
        "action",
    );
    expect_invalid(
        h.request(&h.admin, ASSIGNMENT, json!({"action": "adminAssign", "principalId": Uuid::new_v4(), "roleDefinitionId": USER_ADMINISTRATOR, "justification": "x", "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "P1D"}}})).await,
        "principalId",
    );
    expect_invalid(
        h.request(&h.admin, ASSIGNMENT, json!({"action": "adminAssign", "principalId": alice.id, "roleDefinitionId": Uuid::new_v4()})).await,
        "roleDefinitionId",
    );
}

async fn reviewed_edges_hold(h: Harness) {
    let alice = h.person("alice").await;
    let eligibility = h
        .make_eligible(&alice, json!({"type": "noExpiration"}))
        .await;
    let with = h.as_person(&alice, true).await;
    // Nothing is scheduled past ordinary dates.
    let mut far = activation(&alice, "PT1H");
    far["action"] = json!("adminAssign");
    far["scheduleInfo"] = json!({"startDateTime": "9999-12-30T00:00:00Z",
        "expiration": {"type": "afterDuration", "duration": "P2D"}});
    expect_invalid(h.request(&h.admin, ELIGIBILITY, far).await, "scheduleInfo");
    // A personal access token proves no sign-in: a plain refusal, not a
    // challenge it could never answer.
    let mut pat = with.clone();
    pat.caller = h
        .app
        .directory
        .caller_for_tests(h.admin.tenant, alice.id)
        .await
        .unwrap();
    match h
        .request(&pat, ASSIGNMENT, activation(&alice, "PT1H"))
        .await
    {
        Err(ServiceError::Forbidden { reason }) => assert!(reason.contains("sign in"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // An activation cut off by a shortened eligibility does not come back when
    // the eligibility is prolonged again.
    h.request(&with, ASSIGNMENT, activation(&alice, "PT8H"))
        .await
        .unwrap();
    assert!(h.can_create_users(&alice).await);
    let change = |action: &str, expiration: Value| {
        json!({
            "action": action, "principalId": alice.id,
            "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/",
            "justification": "review", "targetScheduleId": eligibility,
            "scheduleInfo": {"expiration": expiration}
        })
    };
    h.request(
        &h.admin,
        ELIGIBILITY,
        change(
            "adminUpdate",
            json!({"type": "afterDuration", "duration": "PT1H"}),
        ),
    )
    .await
    .unwrap();
    assert!(
        h.can_create_users(&alice).await,
        "the activation runs to the new end"
    );
    h.clock.advance_seconds(3601);
    assert!(!h.can_create_users(&alice).await);
    h.request(
        &h.admin,
        ELIGIBILITY,
        change(
            "adminRenew",
            json!({"type": "afterDuration", "duration": "P30D"}),
        ),
    )
    .await
    .unwrap();
    assert!(
        !h.can_create_users(&alice).await,
        "renewal brings back no activation"
    );
    // The last standing Global Administrator is not given an end.
    assert!(matches!(
        h.request(
            &h.admin,
            ASSIGNMENT,
            json!({
                "action": "adminUpdate", "principalId": h.admin_id,
                "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/",
                "justification": "time-bound",
                "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "P30D"}}
            }),
        )
        .await,
        Err(ServiceError::Conflict { .. })
    ));
    // A stranger's request for someone else is refused before anything is read.
    let carol = h.person("carol").await;
    let stranger = h.as_person(&carol, true).await;
    let mut for_unknown = activation(&alice, "PT1H");
    for_unknown["principalId"] = json!(Uuid::new_v4());
    assert!(matches!(
        h.request(&stranger, ASSIGNMENT, for_unknown).await,
        Err(ServiceError::Forbidden { .. })
    ));
}

async fn standing_privilege_is_found_and_converted(h: Harness) {
    let alice = h.person("alice").await;
    let bob = h.person("bob").await;
    let pim = &h.app.pim;
    // Bob holds User Administrator directly; the bootstrap administrator holds
    // Global Administrator directly.
    let standing = h
        .app
        .directory
        .create_role_assignment(
            &h.admin,
            json!({"principalId": bob.id, "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/"}),
        )
        .await
        .unwrap();
    h.make_eligible(&alice, json!({"type": "noExpiration"}))
        .await;
    let kinds = |alerts: &[tessera_service::pim::AlertView]| -> Vec<String> {
        alerts
            .iter()
            .map(|a| {
                serde_json::to_value(a.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let found = pim.alerts(&h.admin).await.unwrap();
    assert_eq!(
        kinds(&found),
        ["permanentPrivilegedAssignment", "assignedOutsidePim"]
    );
    let outside = &found[1];
    assert_eq!(outside.incident_count, 2);
    // Two Global Administrators are too many once the threshold is one.
    expect_invalid(
        pim.replace_alert_settings(&h.admin, json!({"maxGlobalAdministrators": 0}), None)
            .await,
        "settings",
    );
    pim.replace_alert_settings(&h.admin, json!({"maxGlobalAdministrators": 1}), Some(0))
        .await
        .unwrap();
    let carol = h.person("carol").await;
    h.request(
        &h.admin,
        ELIGIBILITY,
        json!({"action": "adminAssign", "principalId": carol.id,
               "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/",
               "justification": "second administrator",
               "scheduleInfo": {"expiration": {"type": "noExpiration"}}}),
    )
    .await
    .unwrap();
    let found = pim.alerts(&h.admin).await.unwrap();
    assert!(kinds(&found).contains(&"tooManyGlobalAdministrators".to_string()));
    // An activation without MFA (allowed by the settings) is an alert.
    pim.replace_role_settings(
        &h.admin,
        USER_ADMINISTRATOR,
        json!({"activationRequiresMfa": false}),
        None,
    )
    .await
    .unwrap();
    let without = h.as_person(&alice, false).await;
    h.request(&without, ASSIGNMENT, activation(&alice, "PT1H"))
        .await
        .unwrap();
    let found = pim.alerts(&h.admin).await.unwrap();
    assert!(kinds(&found).contains(&"activationWithoutMfa".to_string()));
    // An eligibility unused for 31 days.
    h.clock.advance_seconds(31 * 86_400);
    let found = pim.alerts(&h.admin).await.unwrap();
    assert!(
        kinds(&found).contains(&"unusedEligibility".to_string()),
        "{:?}",
        kinds(&found)
    );

    // Converted: Bob is eligible, not active; readers see it; the audit says so.
    let bob_ctx = h.as_person(&bob, true).await;
    assert!(matches!(
        pim.convert_to_eligible(&bob_ctx, standing.id, None).await,
        Err(ServiceError::Forbidden { .. })
    ));
    assert!(h.can_create_users(&bob).await);
    let converted = pim
        .convert_to_eligible(
            &h.admin,
            standing.id,
            Some(json!({"justification": "no standing privilege"})),
        )
        .await
        .unwrap();
    assert_eq!(converted.principal_id, bob.id);
    assert!(!h.can_create_users(&bob).await);
    assert_eq!(h.schedules(ELIGIBILITY, bob.id).await, 1);
    assert!(matches!(
        pim.convert_to_eligible(&h.admin, standing.id, None).await,
        Err(ServiceError::NotFound { .. })
    ));
    // The last standing Global Administrator stays.
    let admin_assignment = pim
        .list_schedules(
            &h.admin,
            ROLES,
            ASSIGNMENT,
            Some(h.admin_id),
            Some(GLOBAL_ADMINISTRATOR),
        )
        .await
        .unwrap()
        .value[0]
        .id;
    assert!(matches!(
        pim.convert_to_eligible(&h.admin, admin_assignment, None)
            .await,
        Err(ServiceError::Conflict { .. })
    ));
    assert_eq!(h.audit_count("roleSchedule.convert").await, 1);
    let found = pim.alerts(&h.admin).await.unwrap();
    let outside = found
        .iter()
        .find(|a| serde_json::to_value(a.kind).unwrap() == "assignedOutsidePim")
        .unwrap();
    assert_eq!(outside.incident_count, 1);
}

async fn protected_actions_ask_for_their_authentication_context(h: Harness) {
    let alice = h.person("alice").await;
    h.app
        .directory
        .set_authentication_contexts(
            &h.admin,
            tessera_service::Replacement::any(json!({"contexts": [{
                "id": "c1", "displayName": "Phishing-resistant",
                "strengthId": tessera_authn::strength::PHISHING_RESISTANT_MFA
            }]})),
        )
        .await
        .unwrap();
    let pim = &h.app.pim;
    // Only actions Tessera enforces, and contexts that exist.
    for bad in [
        json!({"rules": [{"action": "microsoft.directory/users/delete", "authenticationContext": "c1"}]}),
        json!({"rules": [{"action": tessera_pim::protected::CA_POLICY_DELETE, "authenticationContext": "c7"}]}),
    ] {
        assert!(matches!(
            pim.set_protected_actions(&h.admin, tessera_service::Replacement::any(bad))
                .await,
            Err(ServiceError::Validation(_))
        ));
    }
    pim.set_protected_actions(
        &h.admin,
        tessera_service::Replacement::any(json!({"rules": [
            {"action": tessera_pim::protected::CA_POLICY_DELETE, "authenticationContext": "c1"},
            {"action": tessera_pim::protected::ROLE_ASSIGNMENT_CREATE,
             "roleDefinitionId": GLOBAL_ADMINISTRATOR, "authenticationContext": "c1"}
        ]})),
    )
    .await
    .unwrap();
    let admin = Person { id: h.admin_id };
    let plain = h.signed_in(&admin, true, &[]).await;
    let stepped_up = h.signed_in(&admin, true, &["c1"]).await;
    let token = {
        let mut ctx = plain.clone();
        ctx.caller = h
            .app
            .directory
            .caller_for_tests(h.admin.tenant, h.admin_id)
            .await
            .unwrap();
        ctx
    };
    let policy = h
        .app
        .access
        .create_policy(
            &plain,
            json!({
                "displayName": "Block legacy", "state": "disabled",
                "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
                "grantControls": {"operator": "OR", "builtInControls": ["block"]}
            }),
        )
        .await
        .unwrap();
    // Deleting it needs c1: a challenge naming it for a sign-in without it, a
    // plain refusal for a token that proves no sign-in; nothing is deleted.
    match h.app.access.delete_policy(&plain, policy.id).await {
        Err(ServiceError::InsufficientAuthentication { acr_values, .. }) => {
            assert_eq!(acr_values, "c1")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        h.app.access.delete_policy(&token, policy.id).await,
        Err(ServiceError::Forbidden { .. })
    ));
    h.app.access.get_policy(&plain, policy.id).await.unwrap();
    h.app
        .access
        .delete_policy(&stepped_up, policy.id)
        .await
        .unwrap();
    // Assigning Global Administrator needs c1, standing or through PIM; other
    // roles do not.
    let assign_ga = json!({"principalId": alice.id, "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/"});
    assert!(matches!(
        h.app
            .directory
            .create_role_assignment(&plain, assign_ga.clone())
            .await,
        Err(ServiceError::InsufficientAuthentication { .. })
    ));
    let eligible_ga = json!({
        "action": "adminAssign", "principalId": alice.id,
        "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/",
        "justification": "break-glass rota",
        "scheduleInfo": {"expiration": {"type": "noExpiration"}}
    });
    assert!(matches!(
        h.request(&plain, ELIGIBILITY, eligible_ga.clone()).await,
        Err(ServiceError::InsufficientAuthentication { .. })
    ));
    h.request(&stepped_up, ELIGIBILITY, eligible_ga)
        .await
        .unwrap();
    h.app
        .directory
        .create_role_assignment(
            &plain,
            json!({"principalId": alice.id, "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/"}),
        )
        .await
        .unwrap();
    // Joining a group that holds Global Administrator is being given it.
    let admins = h
        .app
        .directory
        .create_group(
            &plain,
            json!({"displayName": "Tenant admins", "mailNickname": "tenant-admins", "isAssignableToRole": true}),
        )
        .await
        .unwrap();
    h.app
        .directory
        .create_role_assignment(
            &stepped_up,
            json!({"principalId": admins.id, "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/"}),
        )
        .await
        .unwrap();
    let bob = h.person("bob").await;
    assert!(matches!(
        h.app
            .directory
            .add_group_member(&plain, admins.id, json!({"id": bob.id}))
            .await,
        Err(ServiceError::InsufficientAuthentication { .. })
    ));
    // A group cannot be made eligible: its members could not activate it.
    expect_invalid(
        h.request(
            &stepped_up,
            ELIGIBILITY,
            json!({"action": "adminAssign", "principalId": admins.id,
                   "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/",
                   "justification": "x", "scheduleInfo": {"expiration": {"type": "noExpiration"}}}),
        )
        .await,
        "principalId",
    );
    // Rules that protect their own change need their context from whoever saves
    // them; then the contexts themselves are as protected.
    let guarded = json!({"rules": [
        {"action": tessera_pim::protected::PROTECTED_ACTIONS_UPDATE, "authenticationContext": "c1"}
    ]});
    assert!(matches!(
        pim.set_protected_actions(&plain, tessera_service::Replacement::any(guarded.clone()))
            .await,
        Err(ServiceError::InsufficientAuthentication { .. })
    ));
    pim.set_protected_actions(&stepped_up, tessera_service::Replacement::any(guarded))
        .await
        .unwrap();
    let plain = h.signed_in(&admin, true, &[]).await;
    assert!(matches!(
        h.app
            .directory
            .set_authentication_contexts(
                &plain,
                tessera_service::Replacement::any(json!({"contexts": [{
                    "id": "c1", "displayName": "Weaker",
                    "strengthId": tessera_authn::strength::MFA
                }]})),
            )
            .await,
        Err(ServiceError::InsufficientAuthentication { .. })
    ));
    // A context a protected action names is not removed.
    let stepped_up = h.signed_in(&admin, true, &["c1"]).await;
    assert!(matches!(
        h.app
            .directory
            .set_authentication_contexts(
                &stepped_up,
                tessera_service::Replacement::any(json!({"contexts": []})),
            )
            .await,
        Err(ServiceError::Conflict { .. })
    ));
    assert_eq!(h.audit_count("protectedActions.update").await, 2);
}

/// Delivery that fails while `failing` is set, and records what it was given.
#[derive(Default)]
struct Flaky {
    failing: std::sync::atomic::AtomicBool,
    posts: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
}

#[async_trait::async_trait]
impl tessera_service::kernel::outbox::Notifier for Flaky {
    async fn post_webhook(
        &self,
        url: &str,
        body: &[u8],
        _headers: &[(String, String)],
    ) -> Result<u16, String> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(503);
        }
        self.posts
            .lock()
            .unwrap()
            .push((url.to_string(), body.to_vec()));
        Ok(204)
    }
    async fn send_mail(&self, _to: &[String], _subject: &str, _text: &str) -> Result<(), String> {
        Err("no relay here".to_string())
    }
    fn mail_configured(&self) -> bool {
        false
    }
}

async fn notifications_are_retried_then_given_up(h: Harness) {
    let flaky = Arc::new(Flaky::default());
    h.app.set_notifier(flaky.clone());
    for bad in [
        json!({"webhookUrl": "http://hooks.example.com/x", "webhookSecret": "s".repeat(32)}),
        json!({"webhookUrl": "https://hooks.example.com/x"}),
        json!({"webhookUrl": "https://hooks.example.com/x", "webhookSecret": "short"}),
        json!({"administratorEmails": ["not an address"]}),
    ] {
        assert!(matches!(
            h.app
                .set_notification_settings(&h.admin, tessera_service::Replacement::any(bad))
                .await,
            Err(ServiceError::Validation(_))
        ));
    }
    h.app
        .set_notification_settings(
            &h.admin,
            tessera_service::Replacement::any(json!({
                "webhookUrl": "https://hooks.example.com/tessera",
                "webhookSecret": "s".repeat(40)
            })),
        )
        .await
        .unwrap();
    let alice = h.person("alice").await;
    let bob = h.person("bob").await;
    h.make_eligible(&alice, json!({"type": "noExpiration"}))
        .await;
    h.app
        .pim
        .replace_role_settings(
            &h.admin,
            USER_ADMINISTRATOR,
            json!({"activationRequiresApproval": true, "approvers": [{"type": "user", "id": bob.id}]}),
            None,
        )
        .await
        .unwrap();
    let with = h.as_person(&alice, true).await;
    h.request(&with, ASSIGNMENT, activation(&alice, "PT1H"))
        .await
        .unwrap();
    let tenant = h.admin.tenant;
    // Refused at first: kept, and not tried again before its time.
    flaky
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(h.app.deliver_notifications(tenant).await.unwrap(), 0);
    flaky
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(h.app.deliver_notifications(tenant).await.unwrap(), 0);
    h.clock.advance_seconds(31);
    assert_eq!(h.app.deliver_notifications(tenant).await.unwrap(), 1);
    let posts = flaky.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    let event: Value = serde_json::from_slice(&posts[0].1).unwrap();
    assert_eq!(event["type"], "pim.approvalRequested");
    assert_eq!(h.app.deliver_notifications(tenant).await.unwrap(), 0);
    // A receiver that never answers well: given up after the last attempt.
    let first = h
        .app
        .pim
        .list_requests(&with, ROLES, ASSIGNMENT, Default::default(), Some(alice.id))
        .await
        .unwrap()
        .value[0]
        .id;
    h.app
        .pim
        .cancel_request(&with, ROLES, ASSIGNMENT, first)
        .await
        .unwrap();
    flaky
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    h.request(&with, ASSIGNMENT, activation(&alice, "PT1H"))
        .await
        .unwrap();
    for _ in 0..tessera_service::kernel::outbox::MAX_ATTEMPTS {
        h.app.deliver_notifications(tenant).await.unwrap();
        h.clock.advance_seconds(3601);
    }
    assert_eq!(h.app.deliver_notifications(tenant).await.unwrap(), 0);
    flaky
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    h.clock.advance_seconds(3601);
    assert_eq!(
        h.app.deliver_notifications(tenant).await.unwrap(),
        0,
        "given up"
    );
    assert!(h.audit_count("notification.deliver").await >= 2);
}

/// The groups a person is a member of (directly, or through nesting), as the
/// directory answers at this moment.
async fn member_of(h: &Harness, person: &Person) -> Vec<Uuid> {
    h.app
        .directory
        .user_member_of(
            &h.admin,
            person.id,
            true,
            &tessera_service::PageRequest::default(),
        )
        .await
        .unwrap()
        .value
        .iter()
        .map(|r| r.id)
        .collect()
}

async fn group_request(
    h: &Harness,
    ctx: &Context,
    kind: ScheduleKind,
    body: Value,
) -> Result<tessera_service::pim::RequestView, ServiceError> {
    h.app.pim.create_request(ctx, GROUPS, kind, body).await
}

/// PIM for groups: an eligible member of a role-assignable group holds the
/// group's roles only while an activation lasts; an eligible owner manages the
/// group's members only while active; a group's settings ask for approval; the
/// refusals (a group as principal, a dynamic group, the other family's fields,
/// an unknown access); a group's schedules go with the group.
async fn groups_give_membership_and_ownership_just_in_time(h: Harness) {
    let dir = &h.app.directory;
    let tier0 = dir
        .create_group(
            &h.admin,
            json!({"displayName": "Tier 0 helpdesk", "isAssignableToRole": true}),
        )
        .await
        .unwrap()
        .id;
    dir.create_role_assignment(
        &h.admin,
        json!({"principalId": tier0, "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/"}),
    )
    .await
    .unwrap();
    let app_users = dir
        .create_group(&h.admin, json!({"displayName": "Payroll app users"}))
        .await
        .unwrap()
        .id;
    let alice = h.person("galice").await;
    let bob = h.person("gbob").await;
    let carol = h.person("gcarol").await;

    // Alice is made an eligible member of the role-assignable group.
    let member = |person: &Person, group: Uuid| {
        json!({"action": "adminAssign", "principalId": person.id, "groupId": group,
               "accessId": "member", "justification": "on call",
               "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "P30D"}}})
    };
    let eligible = group_request(&h, &h.admin, ELIGIBILITY, member(&alice, tier0))
        .await
        .unwrap();
    assert_eq!(eligible.status, Status::Provisioned);
    assert_eq!(eligible.group_id, Some(tier0));
    assert_eq!(eligible.role_definition_id, None);
    assert!(
        !h.can_create_users(&alice).await,
        "eligible is not a member"
    );
    assert!(!member_of(&h, &alice).await.contains(&tier0));
    // The role family's listing does not show it; the groups' does.
    assert_eq!(h.schedules(ELIGIBILITY, alice.id).await, 0);
    let listed = h
        .app
        .pim
        .list_schedules(&h.admin, GROUPS, ELIGIBILITY, Some(alice.id), Some(tier0))
        .await
        .unwrap()
        .value;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].group_id, Some(tier0));

    // Activation asks for MFA (the default settings), then grants at once.
    let activate = |person: &Person, group: Uuid, access: &str| {
        json!({"action": "selfActivate", "principalId": person.id, "groupId": group,
               "accessId": access, "justification": "ticket 42",
               "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": "PT1H"}}})
    };
    let without = h.as_person(&alice, false).await;
    assert!(matches!(
        group_request(&h, &without, ASSIGNMENT, activate(&alice, tier0, "member")).await,
        Err(ServiceError::InsufficientAuthentication { .. })
    ));
    assert!(!h.can_create_users(&alice).await);
    let with = h.as_person(&alice, true).await;
    let active = group_request(&h, &with, ASSIGNMENT, activate(&alice, tier0, "member"))
        .await
        .unwrap();
    assert_eq!(active.status, Status::Provisioned);
    assert!(
        h.can_create_users(&alice).await,
        "the group's role comes with the activated membership"
    );
    assert!(member_of(&h, &alice).await.contains(&tier0));
    let instances = h
        .app
        .pim
        .list_instances(&with, GROUPS, ASSIGNMENT, Some(alice.id), None)
        .await
        .unwrap()
        .value;
    assert_eq!(instances.len(), 1);
    assert_eq!(
        instances[0].group_display_name.as_deref(),
        Some("Tier 0 helpdesk")
    );
    // A second activation while active is refused; past the end, nothing is
    // granted on any path, whether or not the expiry round ran.
    assert!(matches!(
        group_request(&h, &with, ASSIGNMENT, activate(&alice, tier0, "member")).await,
        Err(ServiceError::Conflict { .. })
    ));
    h.clock.advance_seconds(3601);
    assert!(!h.can_create_users(&alice).await);
    assert!(!member_of(&h, &alice).await.contains(&tier0));

    // Bob is an eligible owner of the app group: an owner manages its members.
    let owner = json!({"action": "adminAssign", "principalId": bob.id, "groupId": app_users,
                       "accessId": "owner", "justification": "app owner",
                       "scheduleInfo": {"expiration": {"type": "noExpiration"}}});
    group_request(&h, &h.admin, ELIGIBILITY, owner)
        .await
        .unwrap();
    let bob_ctx = h.as_person(&bob, true).await;
    let add_carol = json!({"id": carol.id});
    assert!(matches!(
        dir.add_group_member(&bob_ctx, app_users, add_carol.clone())
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    group_request(&h, &bob_ctx, ASSIGNMENT, activate(&bob, app_users, "owner"))
        .await
        .unwrap();
    let bob_ctx = h.as_person(&bob, true).await;
    dir.add_group_member(&bob_ctx, app_users, add_carol.clone())
        .await
        .unwrap();
    assert!(member_of(&h, &carol).await.contains(&app_users));
    h.clock.advance_seconds(3601);
    let bob_ctx = h.as_person(&bob, true).await;
    assert!(matches!(
        dir.remove_group_member(&bob_ctx, app_users, carol.id).await,
        Err(ServiceError::Forbidden { .. })
    ));

    // The group's membership settings ask for approval by a named user.
    let settings = h
        .app
        .pim
        .replace_group_settings(
            &h.admin,
            app_users,
            tessera_service::pim::GroupAccess::Member,
            json!({"activationRequiresApproval": true,
                   "approvers": [{"type": "user", "id": h.admin_id}]}),
            None,
        )
        .await
        .unwrap();
    assert!(settings.settings.activation_requires_approval);
    assert_eq!(settings.group_id, Some(app_users));
    let dave = h.person("gdave").await;
    group_request(&h, &h.admin, ELIGIBILITY, member(&dave, app_users))
        .await
        .unwrap();
    let dave_ctx = h.as_person(&dave, true).await;
    let waiting = group_request(
        &h,
        &dave_ctx,
        ASSIGNMENT,
        activate(&dave, app_users, "member"),
    )
    .await
    .unwrap();
    assert_eq!(waiting.status, Status::PendingApproval);
    assert!(!member_of(&h, &dave).await.contains(&app_users));
    // Answered in the groups' family only.
    assert!(matches!(
        h.app
            .pim
            .answer_request(&h.admin, ROLES, ASSIGNMENT, waiting.id, true, None)
            .await,
        Err(ServiceError::NotFound { .. })
    ));
    assert!(matches!(
        h.app
            .pim
            .answer_request(&dave_ctx, GROUPS, ASSIGNMENT, waiting.id, true, None)
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    let admin_mfa = h.signed_in(&Person { id: h.admin_id }, true, &[]).await;
    let approved = h
        .app
        .pim
        .answer_request(&admin_mfa, GROUPS, ASSIGNMENT, waiting.id, true, None)
        .await
        .unwrap();
    assert_eq!(approved.status, Status::Provisioned);
    assert!(member_of(&h, &dave).await.contains(&app_users));
    // Conditional Access sees the membership PIM gives, at this moment: a
    // policy for the group's members applies to Dave while he is active.
    let payroll = dir
        .create_application(&h.admin, json!({"displayName": "Payroll"}))
        .await
        .unwrap();
    let app_id = payroll.app_id.to_string();
    h.app
        .access
        .create_policy(
            &h.admin,
            json!({
                "displayName": "Payroll users are blocked", "state": "enabled",
                "conditions": {"users": {"includeGroups": [app_users.to_string()]},
                               "applications": {"includeApplications": [app_id]}},
                "grantControls": {"operator": "OR", "builtInControls": ["block"]}
            }),
        )
        .await
        .unwrap();
    let decided = |person: Uuid| {
        let question: tessera_service::access::WhatIf =
            serde_json::from_value(json!({"userId": person, "appId": app_id, "country": "NL"}))
                .unwrap();
        let app = &h.app;
        let admin = &h.admin;
        async move {
            serde_json::to_value(app.access.what_if(admin, question).await.unwrap()).unwrap()
                ["result"]
                .clone()
        }
    };
    assert_eq!(decided(dave.id).await, "block", "an active PIM member");
    assert_eq!(decided(alice.id).await, "allow", "not a member");
    h.clock.advance_seconds(8 * 3600 + 1);
    assert_eq!(decided(dave.id).await, "allow", "the membership has ended");

    // Refusals change nothing.
    let group_principal = json!({"action": "adminAssign", "principalId": tier0, "groupId": app_users,
                                 "accessId": "member", "justification": "x"});
    expect_invalid(
        group_request(&h, &h.admin, ELIGIBILITY, group_principal).await,
        "principalId",
    );
    let mixed = json!({"action": "adminAssign", "principalId": carol.id, "groupId": app_users,
                       "accessId": "member", "roleDefinitionId": USER_ADMINISTRATOR, "justification": "x"});
    expect_invalid(
        group_request(&h, &h.admin, ELIGIBILITY, mixed).await,
        "roleDefinitionId",
    );
    let bad_access = json!({"action": "adminAssign", "principalId": carol.id, "groupId": app_users,
                            "accessId": "admin", "justification": "x"});
    expect_invalid(
        group_request(&h, &h.admin, ELIGIBILITY, bad_access).await,
        "accessId",
    );
    let no_group = json!({"action": "adminAssign", "principalId": carol.id, "groupId": Uuid::new_v4(),
                          "accessId": "member", "justification": "x"});
    expect_invalid(
        group_request(&h, &h.admin, ELIGIBILITY, no_group).await,
        "groupId",
    );
    let dynamic = dir
        .create_group(
            &h.admin,
            json!({"displayName": "Everyone in sales", "membershipRule": "user.department -eq \"Sales\""}),
        )
        .await
        .unwrap()
        .id;
    assert!(matches!(
        group_request(&h, &h.admin, ELIGIBILITY, member(&carol, dynamic)).await,
        Err(ServiceError::Conflict { .. })
    ));
    // Someone who may not change the group's members may not assign them.
    let carol_ctx = h.as_person(&carol, true).await;
    assert!(matches!(
        group_request(&h, &carol_ctx, ELIGIBILITY, member(&carol, app_users)).await,
        Err(ServiceError::Forbidden { .. })
    ));

    // A group's schedules go with it.
    dir.delete_group(&h.admin, tessera_service::Versioned::any(app_users))
        .await
        .unwrap();
    assert!(!member_of(&h, &dave).await.contains(&app_users));
    let left = h
        .app
        .pim
        .list_schedules(&h.admin, GROUPS, ELIGIBILITY, None, Some(app_users))
        .await
        .unwrap()
        .value;
    assert!(left.is_empty(), "{left:?}");
}

/// Graph's role management policies show each target's settings as Entra's
/// rules, and a changed rule changes the settings (and only its part).
async fn role_management_policies_show_and_change_the_settings(h: Harness) {
    let pim = &h.app.pim;
    let roles_filter = Some("scopeId eq '/' and scopeType eq 'DirectoryRole'");
    let listed = pim
        .list_role_management_policies(&h.admin, roles_filter, true)
        .await
        .unwrap()
        .value;
    let policy_id = format!("DirectoryRole_{USER_ADMINISTRATOR}");
    let user_admin = listed
        .iter()
        .find(|p| p["id"] == policy_id.as_str())
        .expect("a policy per role");
    assert_eq!(user_admin["scopeType"], "DirectoryRole");
    let rule = |policy: &Value, id: &str| {
        policy["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        rule(user_admin, "Expiration_EndUser_Assignment")["maximumDuration"],
        "PT8H"
    );
    assert_eq!(
        rule(user_admin, "Enablement_EndUser_Assignment")["enabledRules"],
        json!(["MultiFactorAuthentication", "Justification"])
    );
    // A changed rule is the settings' change, audited as one.
    let changed = pim
        .update_role_management_policy_rule(
            &h.admin,
            &policy_id,
            "Expiration_EndUser_Assignment",
            json!({"@odata.type": "#microsoft.graph.unifiedRoleManagementPolicyExpirationRule",
                   "isExpirationRequired": true, "maximumDuration": "PT2H"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(changed["maximumDuration"], "PT2H");
    let settings = pim
        .role_settings(&h.admin, USER_ADMINISTRATOR)
        .await
        .unwrap();
    assert_eq!(settings.settings.max_activation_seconds, 7200);
    assert!(settings.settings.activation_requires_mfa, "the rest stays");
    pim.update_role_management_policy_rule(
        &h.admin,
        &policy_id,
        "Approval_EndUser_Assignment",
        json!({"setting": {"isApprovalRequired": true, "approvalStages": [{
            "approvalStageTimeOutInDays": 2,
            "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": h.admin_id}]}]}}), None)
    .await
    .unwrap();
    let settings = pim
        .role_settings(&h.admin, USER_ADMINISTRATOR)
        .await
        .unwrap()
        .settings;
    assert!(settings.activation_requires_approval);
    assert_eq!(settings.approval_timeout_seconds, 2 * 86_400);
    assert_eq!(
        settings.approvers,
        vec![tessera_service::pim::Approver::User(h.admin_id)]
    );
    let one = pim
        .role_management_policy_rules(&h.admin, &policy_id, Some("Approval_EndUser_Assignment"))
        .await
        .unwrap();
    assert_eq!(one["setting"]["isApprovalRequired"], true);
    // Refusals name the field and change nothing.
    let before = pim
        .role_settings(&h.admin, USER_ADMINISTRATOR)
        .await
        .unwrap();
    expect_invalid(
        pim.update_role_management_policy_rule(
            &h.admin,
            &policy_id,
            "Expiration_EndUser_Assignment",
            json!({"maximumDuration": "P30D"}),
            None,
        )
        .await,
        "Expiration_EndUser_Assignment",
    );
    expect_invalid(
        pim.update_role_management_policy_rule(
            &h.admin,
            &policy_id,
            "Approval_EndUser_Assignment",
            json!({"setting": {"approvalStages": [{"primaryApprovers": [
                {"@odata.type": "#microsoft.graph.singleUser", "userId": Uuid::new_v4()}]}]}}),
            None,
        )
        .await,
        "approvers",
    );
    assert!(matches!(
        pim.update_role_management_policy_rule(
            &h.admin,
            &policy_id,
            "Notification_Admin_Admin_Eligibility",
            json!({}),
            None
        )
        .await,
        Err(ServiceError::NotFound { .. })
    ));
    assert!(matches!(
        pim.role_management_policy(&h.admin, "DirectoryRole_nonsense", false)
            .await,
        Err(ServiceError::NotFound { .. })
    ));
    expect_invalid(
        pim.list_role_management_policies(&h.admin, Some("displayName eq 'x'"), false)
            .await,
        "$filter",
    );
    assert_eq!(
        pim.role_settings(&h.admin, USER_ADMINISTRATOR)
            .await
            .unwrap()
            .version,
        before.version
    );
    // A group's two policies, and which policy applies to what.
    let group = h
        .app
        .directory
        .create_group(&h.admin, json!({"displayName": "Policy group"}))
        .await
        .unwrap()
        .id;
    let group_filter = format!("scopeId eq '{group}' and scopeType eq 'Group'");
    let policies = pim
        .list_role_management_policies(&h.admin, Some(&group_filter), false)
        .await
        .unwrap()
        .value;
    assert_eq!(policies.len(), 2);
    assert_eq!(policies[0]["id"], format!("Group_{group}_member"));
    let assignments = pim
        .list_role_management_policy_assignments(
            &h.admin,
            Some(&format!(
                "scopeId eq '/' and scopeType eq 'DirectoryRole' and roleDefinitionId eq '{USER_ADMINISTRATOR}'"
            )),
        )
        .await
        .unwrap()
        .value;
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0]["policyId"], policy_id.as_str());
    // Someone without the permission reads nothing and changes nothing.
    let alice = h.person("polly").await;
    let alice = h.as_person(&alice, true).await;
    assert!(matches!(
        pim.list_role_management_policies(&alice, roles_filter, false)
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    assert!(matches!(
        pim.update_role_management_policy_rule(
            &alice,
            &policy_id,
            "Expiration_EndUser_Assignment",
            json!({"maximumDuration": "PT1H"}),
            None
        )
        .await,
        Err(ServiceError::Forbidden { .. })
    ));
}

both_backends!(setup = harness;
    an_eligible_administrator_activates_and_the_grant_ends_at_its_end,
    approval_is_asked_of_the_named_approvers_and_answered_in_time,
    an_authentication_context_is_asked_for_by_name,
    administrators_assign_update_extend_renew_and_remove,
    reviewed_edges_hold,
    standing_privilege_is_found_and_converted,
    protected_actions_ask_for_their_authentication_context,
    notifications_are_retried_then_given_up,
    groups_give_membership_and_ownership_just_in_time,
    role_management_policies_show_and_change_the_settings,
);

//! Directory use cases end to end through the service layer, on SQLite and on
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};
use tessera_core::SystemClock;
use tessera_directory::model::{DeviceSpec, GroupSpec, UserSpec};
use tessera_directory::roles;
use tessera_service::Versioned;
use tessera_service::{App, Context, PageRequest, ServiceError};
use tessera_testkit::fixtures::token_context;
use tessera_testkit::{Backend, bootstrap_admin};
use uuid::Uuid;

struct Harness {
    directory: App,
    admin: Context,
    admin_id: Uuid,
}

async fn harness(backend: Backend) -> Harness {
    let directory = App::new(backend.store().await, Arc::new(SystemClock));
    let admin = bootstrap_admin(&directory).await;
    Harness {
        directory,
        admin: admin.ctx,
        admin_id: admin.user_id,
    }
}

impl Harness {
    async fn user(&self, upn: &str, extra: Value) -> Uuid {
        let mut body =
            json!({ "userPrincipalName": upn, "displayName": upn.split('@').next().unwrap() });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.directory
            .directory
            .create_user(&self.admin, body)
            .await
            .unwrap()
            .id
    }

    async fn group(&self, body: Value) -> Uuid {
        self.directory
            .directory
            .create_group(&self.admin, body)
            .await
            .unwrap()
            .id
    }

    /// A context acting as `user`, with a freshly issued token.
    async fn act_as(&self, user: Uuid) -> Context {
        let created = self
            .directory
            .directory
            .create_own_token(&self.impersonate(user).await, json!({"displayName": "t"}))
            .await
            .unwrap();
        token_context(&self.directory, created.secret.expose()).await
    }

    async fn impersonate(&self, user: Uuid) -> Context {
        let mut ctx = self.admin.clone();
        ctx.caller = ctx.caller.impersonating_for_tests(
            tessera_service::Principal::User {
                id: user,
                user_principal_name: "x".into(),
            },
            Vec::new(),
        );
        ctx
    }

    async fn head(&self) -> i64 {
        self.directory
            .store()
            .audit_head(self.admin.tenant)
            .await
            .unwrap()
            .unwrap()
            .seq
    }

    async fn member_ids(&self, group: Uuid, transitive: bool) -> Vec<Uuid> {
        let page = self
            .directory
            .directory
            .list_group_members(&self.admin, group, transitive, &PageRequest::default())
            .await
            .unwrap();
        let mut ids: Vec<Uuid> = page.value.iter().map(|r| r.id).collect();
        ids.sort();
        ids
    }
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

tessera_testkit::both_backends!(
    setup = harness;
    bootstrap_happens_once,
    invalid_requests_change_nothing,
    stale_versions_are_refused,
    nested_groups_and_cycles,
    dynamic_groups_follow_user_attributes,
    scoped_administrators_stay_in_their_unit,
    privileged_users_are_protected,
    the_last_global_administrator_stays,
    custom_security_attributes_need_their_roles,
    applications_and_secrets,
    tokens_can_be_revoked,
    every_change_is_audited_and_verifiable,
    deleting_a_user_cleans_up,
    imports_are_all_or_nothing,
    the_largest_pages_still_lead_on,
    review_findings_stay_fixed,
);

async fn bootstrap_happens_once(h: Harness) {
    assert!(
        h.directory
            .directory
            .bootstrap_if_empty("Again", "contoso.com")
            .await
            .unwrap()
            .is_none()
    );
    let me = h.directory.directory.me(&h.admin).await.unwrap();
    assert_eq!(me["user"]["userPrincipalName"], "breakglass@contoso.com");
    assert_eq!(me["roles"][0]["role"], "Global Administrator");
}

async fn invalid_requests_change_nothing(h: Harness) {
    let before = h.head().await;
    let unknown = h
        .directory
        .directory
        .create_user(
            &h.admin,
            json!({"userPrincipalName": "a@contoso.com", "displayName": "A", "departmnet": "x"}),
        )
        .await;
    assert!(
        matches!(unknown, Err(ServiceError::Validation(ref e)) if e.to_string().contains("departmnet")),
        "{unknown:?}"
    );
    let bad_manager = h
        .directory.directory
        .create_user(&h.admin, json!({"userPrincipalName": "a@contoso.com", "displayName": "A", "managerId": Uuid::new_v4()}))
        .await;
    assert!(
        matches!(bad_manager, Err(ServiceError::Validation(ref e)) if e.errors[0].field == "managerId"),
        "{bad_manager:?}"
    );
    let bad_upn = h
        .directory
        .directory
        .create_user(
            &h.admin,
            json!({"userPrincipalName": "not-an-upn", "displayName": "A"}),
        )
        .await;
    assert!(matches!(bad_upn, Err(ServiceError::Validation(_))));
    assert_eq!(
        h.head().await,
        before,
        "refused requests write no audit event"
    );
    let users = h
        .directory
        .directory
        .list::<UserSpec>(&h.admin, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(users.value.len(), 1, "only the break-glass account exists");

    let id = h
        .user("adele@contoso.com", json!({"department": "Sales"}))
        .await;
    let duplicate = h
        .directory
        .directory
        .create_user(
            &h.admin,
            json!({"userPrincipalName": "ADELE@contoso.com", "displayName": "Other"}),
        )
        .await;
    assert!(
        matches!(duplicate, Err(ServiceError::Conflict { .. })),
        "UPNs are unique case-insensitively: {duplicate:?}"
    );
    let half = h
        .directory
        .directory
        .update_user(
            &h.admin,
            Versioned::any(id).patch(json!({"department": "Finance", "usageLocation": "germany"})),
        )
        .await;
    assert!(matches!(half, Err(ServiceError::Validation(_))));
    assert_eq!(
        h.directory
            .directory
            .get::<UserSpec>(&h.admin, id)
            .await
            .unwrap()
            .spec
            .department
            .as_deref(),
        Some("Sales"),
        "no half-applied update"
    );
    let missing = h
        .directory
        .directory
        .update_user(
            &h.admin,
            Versioned::any(Uuid::new_v4()).patch(json!({"department": "x"})),
        )
        .await;
    assert!(matches!(missing, Err(ServiceError::NotFound { .. })));
    let read_only = h
        .directory
        .directory
        .update_user(
            &h.admin,
            Versioned::any(id).patch(json!({"id": Uuid::new_v4()})),
        )
        .await;
    assert!(matches!(read_only, Err(ServiceError::Validation(ref e)) if e.errors[0].field == "id"));
}

async fn stale_versions_are_refused(h: Harness) {
    let id = h.user("megan@contoso.com", json!({})).await;
    let v1 = h
        .directory
        .directory
        .get::<UserSpec>(&h.admin, id)
        .await
        .unwrap()
        .version;
    let v2 = h
        .directory
        .directory
        .update_user(
            &h.admin,
            Versioned::new(id, Some(v1)).patch(json!({"jobTitle": "CFO"})),
        )
        .await
        .unwrap()
        .version;
    assert_eq!(v2, v1 + 1);
    let stale = h
        .directory
        .directory
        .update_user(
            &h.admin,
            Versioned::new(id, Some(v1)).patch(json!({"jobTitle": "CEO"})),
        )
        .await;
    assert!(
        matches!(stale, Err(ServiceError::VersionMismatch { sent, current }) if sent == v1 && current == v2),
        "{stale:?}"
    );
    let stale_delete = h
        .directory
        .directory
        .delete_user(&h.admin, Versioned::new(id, Some(v1)))
        .await;
    assert!(matches!(
        stale_delete,
        Err(ServiceError::VersionMismatch { .. })
    ));
    h.directory
        .directory
        .delete_user(&h.admin, Versioned::new(id, Some(v2)))
        .await
        .unwrap();
}

async fn nested_groups_and_cycles(h: Harness) {
    let alice = h.user("alice@contoso.com", json!({})).await;
    let bob = h.user("bob@contoso.com", json!({})).await;
    let outer = h.group(json!({"displayName": "All staff"})).await;
    let inner = h.group(json!({"displayName": "Engineering"})).await;
    let innermost = h.group(json!({"displayName": "Platform"})).await;
    h.directory
        .directory
        .add_group_member(&h.admin, outer, json!({"id": inner}))
        .await
        .unwrap();
    h.directory
        .directory
        .add_group_member(&h.admin, inner, json!({"id": innermost}))
        .await
        .unwrap();
    h.directory
        .directory
        .add_group_member(&h.admin, innermost, json!({"id": alice}))
        .await
        .unwrap();
    h.directory
        .directory
        .add_group_member(&h.admin, outer, json!({"id": bob}))
        .await
        .unwrap();
    assert_eq!(h.member_ids(outer, false).await, sorted(vec![inner, bob]));
    assert_eq!(
        h.member_ids(outer, true).await,
        sorted(vec![inner, innermost, alice, bob])
    );
    let cycle = h
        .directory
        .directory
        .add_group_member(&h.admin, innermost, json!({"id": outer}))
        .await;
    assert!(
        matches!(cycle, Err(ServiceError::Conflict { ref message }) if message.contains("cycle")),
        "{cycle:?}"
    );
    let itself = h
        .directory
        .directory
        .add_group_member(&h.admin, outer, json!({"id": outer}))
        .await;
    assert!(matches!(itself, Err(ServiceError::Validation(_))));
    let twice = h
        .directory
        .directory
        .add_group_member(&h.admin, outer, json!({"id": bob}))
        .await;
    assert!(matches!(twice, Err(ServiceError::Conflict { .. })));
    let ghost = h
        .directory
        .directory
        .add_group_member(&h.admin, outer, json!({"id": Uuid::new_v4()}))
        .await;
    assert!(matches!(ghost, Err(ServiceError::Validation(_))));
    let member_of = h
        .directory
        .directory
        .user_member_of(&h.admin, alice, true, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        sorted(member_of.value.iter().map(|g| g.id).collect()),
        sorted(vec![outer, inner, innermost])
    );
    h.directory
        .directory
        .remove_group_member(&h.admin, inner, innermost)
        .await
        .unwrap();
    assert_eq!(h.member_ids(outer, true).await, sorted(vec![inner, bob]));
    let role_group = h
        .group(json!({"displayName": "Tier 0", "isAssignableToRole": true}))
        .await;
    let nested_in_role_group = h
        .directory
        .directory
        .add_group_member(&h.admin, role_group, json!({"id": inner}))
        .await;
    assert!(
        matches!(nested_in_role_group, Err(ServiceError::Validation(_))),
        "role-assignable groups hold no groups"
    );
}

async fn dynamic_groups_follow_user_attributes(h: Harness) {
    let finance = h
        .user("fin@contoso.com", json!({"department": "Finance"}))
        .await;
    let disabled = h
        .user(
            "old@contoso.com",
            json!({"department": "Finance", "accountEnabled": false}),
        )
        .await;
    let sales = h
        .user("sales@contoso.com", json!({"department": "Sales"}))
        .await;
    let rule = "user.department -eq \"Finance\" -and user.accountEnabled -eq true";
    let group = h
        .group(json!({"displayName": "Finance", "membershipRule": rule}))
        .await;
    assert_eq!(h.member_ids(group, false).await, vec![finance]);
    // A user who changes department moves in; a new matching user joins at creation.
    h.directory
        .directory
        .update_user(
            &h.admin,
            Versioned::any(sales).patch(json!({"department": "finance"})),
        )
        .await
        .unwrap();
    let newcomer = h
        .user("new@contoso.com", json!({"department": "Finance"}))
        .await;
    assert_eq!(
        h.member_ids(group, false).await,
        sorted(vec![finance, sales, newcomer])
    );
    // Disabling moves a user out.
    h.directory
        .directory
        .update_user(
            &h.admin,
            Versioned::any(finance).patch(json!({"accountEnabled": false})),
        )
        .await
        .unwrap();
    assert_eq!(
        h.member_ids(group, false).await,
        sorted(vec![sales, newcomer])
    );
    // Changing the rule recomputes.
    h.directory
        .directory
        .update_group(
            &h.admin,
            Versioned::any(group).patch(json!({"membershipRule": "user.accountEnabled -eq false"})),
        )
        .await
        .unwrap();
    assert_eq!(
        h.member_ids(group, false).await,
        sorted(vec![finance, disabled])
    );
    // Whether a group may hold roles is fixed at creation: the client hears that,
    // not that a role-assignable group could not be dynamic.
    let made_assignable = h
        .directory
        .directory
        .update_group(
            &h.admin,
            Versioned::any(group).patch(json!({"isAssignableToRole": true})),
        )
        .await;
    match made_assignable {
        Err(ServiceError::Validation(errors)) => {
            let text = format!("{errors:?}");
            assert!(text.contains("isAssignableToRole"), "{text}");
            assert!(!text.contains("membershipRule"), "{text}");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    let by_hand = h
        .directory
        .directory
        .add_group_member(&h.admin, group, json!({"id": sales}))
        .await;
    assert!(matches!(by_hand, Err(ServiceError::Conflict { .. })));
    let bad_rule = h
        .directory
        .directory
        .create_group(
            &h.admin,
            json!({"displayName": "x", "membershipRule": "user.department -eq"}),
        )
        .await;
    assert!(
        matches!(bad_rule, Err(ServiceError::Validation(ref e)) if e.errors[0].field == "membershipRule")
    );
    let shown = h
        .directory
        .directory
        .get::<GroupSpec>(&h.admin, group)
        .await
        .unwrap();
    assert_eq!(shown.group_types, vec!["DynamicMembership".to_string()]);
}

async fn scoped_administrators_stay_in_their_unit(h: Harness) {
    let helpdesk = h.user("helpdesk@contoso.com", json!({})).await;
    let inside = h.user("inside@contoso.com", json!({})).await;
    let outside = h.user("outside@contoso.com", json!({})).await;
    let unit = h
        .directory
        .directory
        .create_administrative_unit(&h.admin, json!({"displayName": "Paris"}))
        .await
        .unwrap()
        .id;
    h.directory
        .directory
        .add_administrative_unit_member(&h.admin, unit, json!({"id": inside}))
        .await
        .unwrap();
    let scope = format!("/administrativeUnits/{unit}");
    h.directory.directory
        .create_role_assignment(&h.admin, json!({"principalId": helpdesk, "roleDefinitionId": roles::USER_ADMINISTRATOR, "directoryScopeId": scope}))
        .await
        .unwrap();
    let scoped = h.act_as(helpdesk).await;
    h.directory
        .directory
        .update_user(
            &scoped,
            Versioned::any(inside).patch(json!({"jobTitle": "Engineer"})),
        )
        .await
        .unwrap();
    let refused = h
        .directory
        .directory
        .update_user(
            &scoped,
            Versioned::any(outside).patch(json!({"jobTitle": "Engineer"})),
        )
        .await;
    assert!(
        matches!(refused, Err(ServiceError::Forbidden { ref reason }) if !reason.contains("administrative unit")),
        "{refused:?}"
    );
    assert!(matches!(
        h.directory
            .directory
            .get::<UserSpec>(&scoped, outside)
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    assert!(matches!(
        h.directory
            .directory
            .list::<UserSpec>(&scoped, &PageRequest::default())
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    assert!(matches!(
        h.directory
            .directory
            .create_user(
                &scoped,
                json!({"userPrincipalName": "n@contoso.com", "displayName": "N"})
            )
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    let members = h
        .directory
        .directory
        .list_administrative_unit_members(&scoped, unit, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        members.value.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![inside]
    );
    let global_only = h
        .directory.directory
        .create_role_assignment(&h.admin, json!({"principalId": helpdesk, "roleDefinitionId": roles::GLOBAL_ADMINISTRATOR, "directoryScopeId": scope}))
        .await;
    assert!(
        matches!(global_only, Err(ServiceError::Validation(_))),
        "Global Administrator cannot be scoped"
    );
    let unprivileged = h.act_as(outside).await;
    assert!(
        matches!(
            h.directory
                .directory
                .get::<UserSpec>(&unprivileged, inside)
                .await,
            Err(ServiceError::Forbidden { .. })
        ),
        "no role, no access"
    );
}

async fn privileged_users_are_protected(h: Harness) {
    let user_admin = h.user("ua@contoso.com", json!({})).await;
    h.directory
        .directory
        .create_role_assignment(
            &h.admin,
            json!({"principalId": user_admin, "roleDefinitionId": roles::USER_ADMINISTRATOR}),
        )
        .await
        .unwrap();
    let ua = h.act_as(user_admin).await;
    let plain = h.user("plain@contoso.com", json!({})).await;
    h.directory
        .directory
        .update_user(
            &ua,
            Versioned::any(plain).patch(json!({"accountEnabled": false})),
        )
        .await
        .unwrap();
    let takeover = h
        .directory
        .directory
        .update_user(
            &ua,
            Versioned::any(h.admin_id).patch(json!({"mail": "attacker@evil.example"})),
        )
        .await;
    assert!(
        matches!(takeover, Err(ServiceError::Forbidden { .. })),
        "{takeover:?}"
    );
    assert!(matches!(
        h.directory
            .directory
            .delete_user(&ua, Versioned::any(h.admin_id))
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    let escalate = h
        .directory
        .directory
        .create_role_assignment(
            &ua,
            json!({"principalId": user_admin, "roleDefinitionId": roles::GLOBAL_ADMINISTRATOR}),
        )
        .await;
    assert!(matches!(escalate, Err(ServiceError::Forbidden { .. })));
    // Members of role-assignable groups are protected too, and only role managers touch those groups.
    let tier0 = h
        .group(json!({"displayName": "Tier 0", "isAssignableToRole": true}))
        .await;
    let member = h.user("t0@contoso.com", json!({})).await;
    h.directory
        .directory
        .add_group_member(&h.admin, tier0, json!({"id": member}))
        .await
        .unwrap();
    assert!(matches!(
        h.directory
            .directory
            .update_user(&ua, Versioned::any(member).patch(json!({"jobTitle": "x"})))
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    assert!(matches!(
        h.directory
            .directory
            .add_group_member(&ua, tier0, json!({"id": plain}))
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
}

async fn the_last_global_administrator_stays(h: Harness) {
    let assignments = h
        .directory
        .directory
        .list_role_assignments(&h.admin, Some(h.admin_id), None, &PageRequest::default())
        .await
        .unwrap();
    let only = assignments.value[0].id;
    assert!(matches!(
        h.directory
            .directory
            .delete_role_assignment(&h.admin, only)
            .await,
        Err(ServiceError::Conflict { .. })
    ));
    let second = h.user("second@contoso.com", json!({})).await;
    let other = h.act_as(second).await;
    assert!(matches!(
        h.directory
            .directory
            .update_user(
                &other,
                Versioned::any(h.admin_id).patch(json!({"accountEnabled": false}))
            )
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    h.directory
        .directory
        .create_role_assignment(
            &h.admin,
            json!({"principalId": second, "roleDefinitionId": roles::GLOBAL_ADMINISTRATOR}),
        )
        .await
        .unwrap();
    h.directory
        .directory
        .delete_role_assignment(&h.admin, only)
        .await
        .unwrap();
    let self_delete = h
        .directory
        .directory
        .delete_user(&h.admin, Versioned::any(h.admin_id))
        .await;
    assert!(matches!(self_delete, Err(ServiceError::Conflict { .. })));
}

async fn custom_security_attributes_need_their_roles(h: Harness) {
    let definition = json!({"attributeSet": "Engineering", "name": "Project", "type": "String", "isCollection": true,
                            "usePreDefinedValuesOnly": true, "allowedValues": ["Baker", "Cascade"]});
    let as_ga = h
        .directory
        .directory
        .create_attribute_definition(&h.admin, definition.clone())
        .await;
    assert!(
        matches!(as_ga, Err(ServiceError::Forbidden { .. })),
        "Global Administrator has no attribute permissions"
    );
    for role in [
        roles::ATTRIBUTE_DEFINITION_ADMINISTRATOR,
        roles::ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR,
    ] {
        h.directory
            .directory
            .create_role_assignment(
                &h.admin,
                json!({"principalId": h.admin_id, "roleDefinitionId": role}),
            )
            .await
            .unwrap();
    }
    let admin = h.act_as(h.admin_id).await;
    h.directory
        .directory
        .create_attribute_definition(&admin, definition.clone())
        .await
        .unwrap();
    assert!(matches!(
        h.directory
            .directory
            .create_attribute_definition(&admin, definition)
            .await,
        Err(ServiceError::Conflict { .. })
    ));
    let id = h.user("csa@contoso.com", json!({})).await;
    h.directory
        .directory
        .update_user(
            &admin,
            Versioned::any(id).patch(
                json!({"customSecurityAttributes": {"Engineering": {"Project": ["Baker"]}}}),
            ),
        )
        .await
        .unwrap();
    let wrong = h
        .directory
        .directory
        .update_user(
            &admin,
            Versioned::any(id).patch(
                json!({"customSecurityAttributes": {"Engineering": {"Project": ["Alpine"]}}}),
            ),
        )
        .await;
    assert!(matches!(wrong, Err(ServiceError::Validation(_))));
    let user = h
        .directory
        .directory
        .get::<UserSpec>(&admin, id)
        .await
        .unwrap();
    assert_eq!(
        user.spec.custom_security_attributes["Engineering"]["Project"],
        tessera_directory::model::AttributeValue::StringList(vec!["Baker".into()])
    );
    let narrowed = h
        .directory
        .directory
        .update_attribute_definition(
            &admin,
            Versioned::any("engineering_project").patch(json!({"allowedValues": ["Baker"]})),
        )
        .await;
    assert!(
        matches!(narrowed, Err(ServiceError::Validation(_))),
        "allowed values cannot be removed"
    );
    // Readers of users and of the audit trail without an attribute role see neither the values nor their history.
    let reader = h.user("reader@contoso.com", json!({})).await;
    h.directory
        .directory
        .create_role_assignment(
            &h.admin,
            json!({"principalId": reader, "roleDefinitionId": roles::GLOBAL_READER}),
        )
        .await
        .unwrap();
    let reader = h.act_as(reader).await;
    assert!(
        h.directory
            .directory
            .get::<UserSpec>(&reader, id)
            .await
            .unwrap()
            .spec
            .custom_security_attributes
            .is_empty()
    );
    let listed = h
        .directory
        .directory
        .list::<UserSpec>(&reader, &PageRequest::default())
        .await
        .unwrap();
    assert!(
        listed
            .value
            .iter()
            .all(|u| u.spec.custom_security_attributes.is_empty())
    );
    let filter = tessera_service::AuditFilter {
        target_id: Some(id.to_string()),
        ..Default::default()
    };
    let hidden = serde_json::to_string(
        &h.directory
            .directory
            .query_audit(&reader, &filter)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        !hidden.contains("Baker") && hidden.contains("hidden"),
        "{hidden}"
    );
    let shown = serde_json::to_string(
        &h.directory
            .directory
            .query_audit(&admin, &filter)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(shown.contains("Baker"), "attribute roles see the history");
    h.directory
        .directory
        .update_attribute_definition(
            &admin,
            Versioned::any("Engineering_Project").patch(json!({"status": "Deprecated"})),
        )
        .await
        .unwrap();
}

async fn applications_and_secrets(h: Harness) {
    let app = h
        .directory.directory
        .create_application(&h.admin, json!({"displayName": "Payroll", "web": {"redirectUris": ["https://payroll.contoso.com/cb"]},
            "appRoles": [{"id": Uuid::new_v4(), "value": "Payroll.Admin", "displayName": "Admin", "allowedMemberTypes": ["User"]}]}))
        .await
        .unwrap();
    let bad = h
        .directory
        .directory
        .create_application(
            &h.admin,
            json!({"displayName": "x", "web": {"redirectUris": ["http://evil.example/cb"]}}),
        )
        .await;
    assert!(
        matches!(bad, Err(ServiceError::Validation(ref e)) if e.errors[0].field == "web.redirectUris[0]")
    );
    let created = h
        .directory
        .directory
        .add_password(
            &h.admin,
            tessera_service::CredentialHolder::Application,
            app.id,
            json!({"displayName": "ci"}),
        )
        .await
        .unwrap();
    assert!(created.secret_text.expose().starts_with("tsr_cs_"));
    let shown = serde_json::to_string(
        &h.directory
            .directory
            .get_application(&h.admin, app.id)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        !shown.contains(created.secret_text.expose()),
        "the secret is never shown again"
    );
    assert!(shown.contains(&created.credential.hint));
    let role_id = app.spec.app_roles[0].id;
    let removed = h
        .directory
        .directory
        .update_application(
            &h.admin,
            Versioned::any(app.id).patch(json!({"appRoles": []})),
        )
        .await;
    assert!(
        matches!(removed, Err(ServiceError::Validation(_))),
        "enabled app roles cannot be deleted"
    );
    let disabled = json!({"appRoles": [{"id": role_id, "value": "Payroll.Admin", "displayName": "Admin", "allowedMemberTypes": ["User"], "isEnabled": false}]});
    h.directory
        .directory
        .update_application(&h.admin, Versioned::any(app.id).patch(disabled))
        .await
        .unwrap();
    h.directory
        .directory
        .update_application(
            &h.admin,
            Versioned::any(app.id).patch(json!({"appRoles": []})),
        )
        .await
        .unwrap();
    let ghost_sp = h
        .directory
        .directory
        .create_service_principal(&h.admin, json!({"appId": Uuid::new_v4()}))
        .await;
    assert!(matches!(ghost_sp, Err(ServiceError::Validation(_))));
    let sp = h
        .directory
        .directory
        .create_service_principal(&h.admin, json!({"appId": app.app_id}))
        .await
        .unwrap();
    assert_eq!(sp.spec.display_name.as_deref(), Some("Payroll"));
    // Both are found by the appId clients know them by; an object id is not one.
    let by_app_id = h
        .directory
        .directory
        .get_application_by_app_id(&h.admin, app.app_id)
        .await
        .unwrap();
    assert_eq!(by_app_id.id, app.id);
    assert_eq!(
        h.directory
            .directory
            .get_service_principal_by_app_id(&h.admin, app.app_id)
            .await
            .unwrap()
            .id,
        sp.id
    );
    assert!(matches!(
        h.directory
            .directory
            .get_application_by_app_id(&h.admin, tessera_core::AppId::from_uuid(app.id))
            .await,
        Err(ServiceError::NotFound { .. })
    ));
    assert!(matches!(
        h.directory
            .directory
            .create_service_principal(&h.admin, json!({"appId": app.app_id}))
            .await,
        Err(ServiceError::Conflict { .. })
    ));
    let cert = include_str!("../../tessera-directory/tests/data/test-cert.pem");
    let key = h
        .directory
        .directory
        .add_key(
            &h.admin,
            tessera_service::CredentialHolder::ServicePrincipal,
            sp.id,
            json!({"key": cert}),
        )
        .await
        .unwrap();
    assert_eq!(key.key_type, "AsymmetricX509Cert");
    assert!(matches!(
        h.directory
            .directory
            .add_key(
                &h.admin,
                tessera_service::CredentialHolder::ServicePrincipal,
                sp.id,
                json!({"key": "garbage"})
            )
            .await,
        Err(ServiceError::Validation(_))
    ));
    h.directory
        .directory
        .delete_application(&h.admin, Versioned::any(app.id))
        .await
        .unwrap();
    assert!(matches!(
        h.directory
            .directory
            .get_service_principal(&h.admin, sp.id)
            .await,
        Err(ServiceError::NotFound { .. })
    ));
}

async fn tokens_can_be_revoked(h: Harness) {
    let user = h.user("pat@contoso.com", json!({})).await;
    let ctx = h.impersonate(user).await;
    let created = h
        .directory
        .directory
        .create_own_token(&ctx, json!({"displayName": "laptop", "expiresInDays": 7}))
        .await
        .unwrap();
    h.directory
        .directory
        .authenticate_token(created.secret.expose())
        .await
        .unwrap();
    assert!(matches!(
        h.directory
            .directory
            .create_own_token(&ctx, json!({"displayName": "x", "expiresInDays": 400}))
            .await,
        Err(ServiceError::Validation(_))
    ));
    let listed = h
        .directory
        .directory
        .list_tokens(&ctx, user, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.value.len(), 1);
    assert!(
        !serde_json::to_string(&listed)
            .unwrap()
            .contains(created.secret.expose())
    );
    h.directory
        .directory
        .revoke_token(&h.admin, user, created.token.id)
        .await
        .unwrap();
    assert!(matches!(
        h.directory
            .directory
            .authenticate_token(created.secret.expose())
            .await,
        Err(ServiceError::Unauthenticated)
    ));
    let again = h
        .directory
        .directory
        .create_own_token(&ctx, json!({"displayName": "again"}))
        .await
        .unwrap();
    h.directory
        .directory
        .update_user(
            &h.admin,
            Versioned::any(user).patch(json!({"accountEnabled": false})),
        )
        .await
        .unwrap();
    assert!(
        matches!(
            h.directory
                .directory
                .authenticate_token(again.secret.expose())
                .await,
            Err(ServiceError::Unauthenticated)
        ),
        "disabled owners cannot sign in"
    );
    let mut forged = again.secret.expose().to_string();
    forged.pop();
    forged.push('A');
    assert!(matches!(
        h.directory.directory.authenticate_token(&forged).await,
        Err(ServiceError::Unauthenticated)
    ));
    assert!(matches!(
        h.directory.directory.authenticate_token("garbage").await,
        Err(ServiceError::Unauthenticated)
    ));
}

async fn every_change_is_audited_and_verifiable(h: Harness) {
    let start = h.head().await;
    let id = h
        .user("audited@contoso.com", json!({"department": "Sales"}))
        .await;
    h.directory
        .directory
        .update_user(
            &h.admin,
            Versioned::any(id).patch(json!({"department": "Finance"})),
        )
        .await
        .unwrap();
    let group = h.group(json!({"displayName": "G"})).await;
    h.directory
        .directory
        .add_group_member(&h.admin, group, json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(h.head().await, start + 4);
    let filter = tessera_service::AuditFilter {
        target_id: Some(id.to_string()),
        ..Default::default()
    };
    let events = h
        .directory
        .directory
        .query_audit(&h.admin, &filter)
        .await
        .unwrap();
    assert_eq!(events.value.len(), 2);
    let update = &events.value[0].event;
    assert_eq!(update["action"], "user.update");
    assert_eq!(
        update["changes"][0],
        json!({"attribute": "department", "oldValue": "Sales", "newValue": "Finance"})
    );
    assert_eq!(update["actor"]["id"], json!(h.admin_id));
    assert_eq!(update["clientAddress"], "127.0.0.1");
    let report = h.directory.directory.verify_audit(&h.admin).await.unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.events_checked, h.head().await);
}

async fn deleting_a_user_cleans_up(h: Harness) {
    let manager = h.user("boss@contoso.com", json!({})).await;
    let report = h
        .user("report@contoso.com", json!({"managerId": manager}))
        .await;
    let group = h.group(json!({"displayName": "G"})).await;
    h.directory
        .directory
        .add_group_member(&h.admin, group, json!({"id": manager}))
        .await
        .unwrap();
    h.directory
        .directory
        .create_role_assignment(
            &h.admin,
            json!({"principalId": manager, "roleDefinitionId": roles::GLOBAL_READER}),
        )
        .await
        .unwrap();
    let device = h
        .directory
        .directory
        .create_device(
            &h.admin,
            json!({"displayName": "Laptop", "ownerId": manager, "trustType": "AzureAD"}),
        )
        .await
        .unwrap();
    h.directory
        .directory
        .delete_user(&h.admin, Versioned::any(manager))
        .await
        .unwrap();
    assert_eq!(
        h.directory
            .directory
            .get::<UserSpec>(&h.admin, report)
            .await
            .unwrap()
            .spec
            .manager_id,
        None
    );
    assert!(h.member_ids(group, false).await.is_empty());
    assert_eq!(
        h.directory
            .directory
            .get::<DeviceSpec>(&h.admin, device.id)
            .await
            .unwrap()
            .spec
            .owner_id,
        None
    );
    let left = h
        .directory
        .directory
        .list_role_assignments(&h.admin, Some(manager), None, &PageRequest::default())
        .await
        .unwrap();
    assert!(left.value.is_empty());
    assert!(
        h.directory
            .directory
            .verify_audit(&h.admin)
            .await
            .unwrap()
            .intact
    );
}

async fn imports_are_all_or_nothing(h: Harness) {
    let group = h
        .group(
            json!({"displayName": "Finance", "membershipRule": "user.department -eq \"Finance\""}),
        )
        .await;
    let before = h.head().await;
    let bad = h
        .directory
        .directory
        .import_users(
            &h.admin,
            json!({"users": [
                {"userPrincipalName": "one@contoso.com", "displayName": "One"},
                {"userPrincipalName": "two@contoso.com", "displayName": "Two", "department": 7},
            ]}),
        )
        .await;
    assert!(
        matches!(bad, Err(ServiceError::Validation(ref e)) if e.errors[0].field == "users[1].department"),
        "{bad:?}"
    );
    let duplicate = h
        .directory
        .directory
        .import_users(
            &h.admin,
            json!({"users": [
                {"userPrincipalName": "one@contoso.com", "displayName": "One"},
                {"userPrincipalName": "ONE@contoso.com", "displayName": "Again"},
            ]}),
        )
        .await;
    assert!(
        matches!(duplicate, Err(ServiceError::Conflict { ref message }) if message.starts_with("users[1]")),
        "{duplicate:?}"
    );
    assert_eq!(h.head().await, before, "a refused import writes nothing");
    let users: Vec<Value> = (0..50)
        .map(|i| {
            json!({"userPrincipalName": format!("u{i}@contoso.com"), "displayName": format!("U{i}"),
                        "department": if i % 2 == 0 { "Finance" } else { "Sales" }})
        })
        .collect();
    let ids = h
        .directory
        .directory
        .import_users(&h.admin, json!({ "users": users }))
        .await
        .unwrap();
    assert_eq!(ids.len(), 50);
    assert_eq!(h.head().await, before + 50, "one event per user");
    assert_eq!(
        h.member_ids(group, false).await.len(),
        25,
        "dynamic groups apply to imported users"
    );
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"userPrincipalName": format!("x{i}@contoso.com"), "displayName": "x"}))
        .collect();
    assert!(matches!(
        h.directory
            .directory
            .import_users(&h.admin, json!({ "users": too_many }))
            .await,
        Err(ServiceError::Validation(_))
    ));
}

async fn the_largest_pages_still_lead_on(h: Harness) {
    let users: Vec<Value> = (0..1000)
        .map(|i| json!({"userPrincipalName": format!("p{i}@contoso.com"), "displayName": format!("P{i:04}")}))
        .collect();
    h.directory
        .directory
        .import_users(&h.admin, json!({ "users": users }))
        .await
        .unwrap();
    let group = h
        .group(json!({"displayName": "Everyone", "membershipRule": "user.accountEnabled -eq true"}))
        .await;
    // 1001 users (with the break-glass account): a page of 1000 must say there is more.
    let request = PageRequest {
        limit: Some(1000),
        ..Default::default()
    };
    let first = h
        .directory
        .directory
        .list::<UserSpec>(&h.admin, &request)
        .await
        .unwrap();
    assert_eq!(first.value.len(), 1000);
    let cursor = first.next_cursor.expect("a next page");
    let second = h
        .directory
        .directory
        .list::<UserSpec>(
            &h.admin,
            &PageRequest {
                cursor: Some(cursor),
                limit: Some(1000),
                search: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(second.value.len(), 1);
    assert!(second.next_cursor.is_none());
    let members = h
        .directory
        .directory
        .list_group_members(&h.admin, group, false, &request)
        .await
        .unwrap();
    assert_eq!(members.value.len(), 1000);
    assert!(members.next_cursor.is_some(), "member pages lead on too");
}

/// Findings of the security review of 2026-11-22, one assertion each.
async fn review_findings_stay_fixed(h: Harness) {
    // 1. Naming an attribute needs the permission to change it, so a reader cannot test
    //    guessed custom security attribute values (200 when equal, 403 when not).
    for role in [
        roles::ATTRIBUTE_DEFINITION_ADMINISTRATOR,
        roles::ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR,
    ] {
        h.directory
            .directory
            .create_role_assignment(
                &h.admin,
                json!({"principalId": h.admin_id, "roleDefinitionId": role}),
            )
            .await
            .unwrap();
    }
    let attribute_admin = h.act_as(h.admin_id).await;
    h.directory
        .directory
        .create_attribute_definition(
            &attribute_admin,
            json!({"attributeSet": "Sec", "name": "Clearance", "type": "String"}),
        )
        .await
        .unwrap();
    let target = h.user("cleared@contoso.com", json!({})).await;
    h.directory
        .directory
        .update_user(
            &attribute_admin,
            Versioned::any(target)
                .patch(json!({"customSecurityAttributes": {"Sec": {"Clearance": "Secret"}}})),
        )
        .await
        .unwrap();
    let reader = h.user("nosy@contoso.com", json!({})).await;
    h.directory
        .directory
        .create_role_assignment(
            &h.admin,
            json!({"principalId": reader, "roleDefinitionId": roles::GLOBAL_READER}),
        )
        .await
        .unwrap();
    let reader = h.act_as(reader).await;
    for guess in ["Secret", "TopSecret"] {
        let probe = h
            .directory
            .directory
            .update_user(
                &reader,
                Versioned::any(target)
                    .patch(json!({"customSecurityAttributes": {"Sec": {"Clearance": guess}}})),
            )
            .await;
        assert!(
            matches!(probe, Err(ServiceError::Forbidden { .. })),
            "{guess}: {probe:?}"
        );
    }
    assert!(
        h.directory.directory.me(&reader).await.unwrap()["user"]
            .get("customSecurityAttributes")
            .is_none()
    );

    // 2. A token an administrator issued cannot be turned into a longer-lived one.
    let newcomer = h.user("newcomer@contoso.com", json!({})).await;
    let issued = h
        .directory
        .directory
        .issue_token_for(
            &h.admin,
            newcomer,
            json!({"displayName": "first", "expiresInDays": 1}),
        )
        .await
        .unwrap();
    let as_newcomer = token_context(&h.directory, issued.secret.expose()).await;
    let extended = h
        .directory
        .directory
        .create_own_token(
            &as_newcomer,
            json!({"displayName": "forever", "expiresInDays": 365}),
        )
        .await
        .unwrap();
    assert!(extended.token.data.expires_date_time <= issued.token.data.expires_date_time);
    assert_eq!(extended.token.data.issued_by, Some(h.admin_id));

    // 3. A service principal holding a role is protected like a privileged user.
    let app = h
        .directory
        .directory
        .create_application(&h.admin, json!({"displayName": "Automation"}))
        .await
        .unwrap();
    let sp = h
        .directory
        .directory
        .create_service_principal(&h.admin, json!({"appId": app.app_id}))
        .await
        .unwrap();
    h.directory
        .directory
        .create_role_assignment(
            &h.admin,
            json!({"principalId": sp.id, "roleDefinitionId": roles::GLOBAL_ADMINISTRATOR}),
        )
        .await
        .unwrap();
    let app_admin = h.user("apps@contoso.com", json!({})).await;
    h.directory
        .directory
        .create_role_assignment(
            &h.admin,
            json!({"principalId": app_admin, "roleDefinitionId": roles::APPLICATION_ADMINISTRATOR}),
        )
        .await
        .unwrap();
    let app_admin = h.act_as(app_admin).await;
    for attempt in [
        h.directory
            .directory
            .add_password(
                &app_admin,
                tessera_service::CredentialHolder::Application,
                app.id,
                json!({}),
            )
            .await
            .map(|_| ()),
        h.directory
            .directory
            .add_password(
                &app_admin,
                tessera_service::CredentialHolder::ServicePrincipal,
                sp.id,
                json!({}),
            )
            .await
            .map(|_| ()),
        h.directory
            .directory
            .add_owner(
                &app_admin,
                tessera_store::Kind::Application,
                app.id,
                json!({"id": h.admin_id}),
            )
            .await,
        h.directory
            .directory
            .delete_service_principal(&app_admin, Versioned::any(sp.id))
            .await,
    ] {
        assert!(
            matches!(attempt, Err(ServiceError::Forbidden { .. })),
            "{attempt:?}"
        );
    }
    let plain = h
        .directory
        .directory
        .create_application(&h.admin, json!({"displayName": "Plain"}))
        .await
        .unwrap();
    h.directory
        .directory
        .add_password(
            &app_admin,
            tessera_service::CredentialHolder::Application,
            plain.id,
            json!({}),
        )
        .await
        .unwrap();

    // 6. Deleting a manager updates the reports' dynamic memberships.
    let boss = h.user("boss@contoso.com", json!({})).await;
    let report = h
        .user("report@contoso.com", json!({"managerId": boss}))
        .await;
    let team = h.group(json!({"displayName": "Boss's team", "membershipRule": format!("user.manager -eq \"{boss}\"")})).await;
    assert_eq!(h.member_ids(team, false).await, vec![report]);
    h.directory
        .directory
        .delete_user(&h.admin, Versioned::any(boss))
        .await
        .unwrap();
    assert!(h.member_ids(team, false).await.is_empty());

    // 9. Callers who may read no user cannot learn which names exist.
    let nobody = h
        .act_as(h.user("nobody@contoso.com", json!({})).await)
        .await;
    for name in ["cleared@contoso.com", "ghost@contoso.com"] {
        let probe = h
            .directory
            .directory
            .get_user_by_principal_name(&nobody, name)
            .await;
        assert!(
            matches!(probe, Err(ServiceError::Forbidden { .. })),
            "{name}: {probe:?}"
        );
    }
}

//! SCIM filters run in the database mean what the reference evaluator
//! (`tessera_scim::eval`) says, on SQLite and PostgreSQL: a population of users
//! (provisioned with a source, made in the directory without one, and one changed
//! in the directory since it was provisioned) is listed with generated filters,
//! and each answer is compared with the evaluator run over what GET returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Map, Value, json};
use tessera_scim::eval;
use tessera_scim::filter::parse;
use tessera_scim::list::RawListRequest;
use tessera_scim::schema::{ENTERPRISE_USER, USER_TYPE};
use tessera_service::{App, Context, Replacement};
use tessera_testkit::{Backend, bootstrap_admin, both_backends};

const BASE: &str = "https://idp.test/scim/v2";

struct Harness {
    app: App,
    admin: Context,
}

async fn harness(backend: Backend) -> Harness {
    let app = App::new(
        backend.store().await,
        std::sync::Arc::new(tessera_core::SystemClock),
    );
    let admin = bootstrap_admin(&app).await.ctx;
    app.provisioning
        .set_settings(
            &admin,
            Replacement::new(json!({"defaultDomain": "scim.test"}), None),
        )
        .await
        .unwrap();
    Harness { app, admin }
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

const NAMES: [&str; 6] = ["Ann", "bob", "Zoë", "ANNA", "o'hara", "Émile"];
const TITLES: [&str; 4] = ["Guide", "guide", "Tour Lead", ""];
const DEPARTMENTS: [&str; 3] = ["Tours", "SALES", "ops"];
const DOMAINS: [&str; 3] = ["example.com", "Home.org", "x.io"];

async fn population(h: &Harness) -> Vec<Map<String, Value>> {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for i in 0..14 {
        let name = *rng.pick(&NAMES);
        let mut user = json!({
            "userName": format!("{}{i}", name.to_lowercase().replace(['\'', 'ë', 'é'], "")),
            "displayName": format!("{name} {i}"),
            "active": !rng.next().is_multiple_of(3),
            "name": {"givenName": name, "familyName": format!("F{}", i % 4)},
        });
        if rng.next().is_multiple_of(2) {
            let title = *rng.pick(&TITLES);
            if !title.is_empty() {
                user["title"] = json!(title);
            }
        }
        if !rng.next().is_multiple_of(3) {
            let domain = *rng.pick(&DOMAINS);
            let kind = *rng.pick(&["work", "home", "other"]);
            user["emails"] = json!([{"value": format!("u{i}@{domain}"), "type": kind, "primary": rng.next().is_multiple_of(2)}]);
        }
        if rng.next().is_multiple_of(2) {
            user["nickName"] = json!(rng.pick(&NAMES).to_uppercase());
        }
        if rng.next().is_multiple_of(2) {
            user["externalId"] = json!(format!("E-{}", i % 5));
        }
        if rng.next().is_multiple_of(2) {
            user[ENTERPRISE_USER] = json!({
                "employeeNumber": format!("{}", 100 + (rng.next() % 50)),
                "department": rng.pick(&DEPARTMENTS),
            });
        }
        if rng.next().is_multiple_of(3) {
            user["phoneNumbers"] = json!([{"value": format!("+1 555 {i:04}"), "type": "mobile"}]);
        }
        h.app
            .provisioning
            .create(&h.admin, &USER_TYPE, &user, BASE)
            .await
            .unwrap_or_else(|e| panic!("{user}: {e:?}"));
    }
    // Made in the directory, without a source.
    for (i, name) in ["Dora", "eve"].iter().enumerate() {
        h.app
            .directory
            .create_user(
                &h.admin,
                json!({"userPrincipalName": format!("{name}@contoso.com"), "displayName": name,
                       "mail": format!("{name}@Example.com"), "department": DEPARTMENTS[i], "jobTitle": "Guide"}),
            )
            .await
            .unwrap();
    }
    // Provisioned, then changed in the directory.
    let changed = h
        .app
        .provisioning
        .create(
            &h.admin,
            &USER_TYPE,
            &json!({"userName": "frank", "displayName": "Frank", "title": "Guide", "active": true}),
            BASE,
        )
        .await
        .unwrap();
    let id = changed.body["id"].as_str().unwrap().parse().unwrap();
    h.app
        .directory
        .update_user(
            &h.admin,
            tessera_service::Patch {
                at: tessera_service::Versioned::any(id),
                body: json!({"accountEnabled": false, "jobTitle": "Lead"}),
            },
        )
        .await
        .unwrap();
    list(h, None).await
}

async fn list(h: &Harness, filter: Option<&str>) -> Vec<Map<String, Value>> {
    let mut pairs = vec![("count".to_string(), "1000".to_string())];
    if let Some(filter) = filter {
        pairs.push(("filter".to_string(), filter.to_string()));
    }
    let request = RawListRequest::from_query(&pairs)
        .unwrap()
        .read(&USER_TYPE, 1000)
        .unwrap();
    let page = h
        .app
        .provisioning
        .list(&h.admin, &USER_TYPE, &request, BASE, false)
        .await
        .unwrap_or_else(|e| panic!("{filter:?}: {e:?}"));
    assert_eq!(page.total as usize, page.resources.len(), "{filter:?}");
    page.resources
}

fn ids(resources: &[Map<String, Value>]) -> Vec<String> {
    let mut ids: Vec<String> = resources
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Filters over every kind of place: directory attributes, the source, lists,
/// value paths, userName, and the operators, from the population's own values.
fn filters(rng: &mut Rng) -> Vec<String> {
    let attributes: [(&str, &[&str]); 11] = [
        (
            "userName",
            &["ann3", "BOB", "frank", "dora@contoso.com", "a", "n", "@"],
        ),
        ("displayName", &["ann", "Zoë 2", "frank", "E"]),
        ("name.givenName", &["ann", "ANNA", "zo", "É"]),
        ("name.familyName", &["f1", "F"]),
        ("title", &["guide", "Tour", "Lead"]),
        ("nickName", &["ANN", "bob", "o"]),
        ("externalId", &["E-1", "e-1", "E-"]),
        ("emails", &["example.com", "HOME.ORG", "u1", "dora"]),
        ("emails.type", &["work", "home", "Other"]),
        ("employeeNumber", &["120", "1", "149"]),
        ("department", &["tours", "sales", "O"]),
    ];
    let ops = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
    let mut out = Vec::new();
    for (attribute, values) in attributes {
        out.push(format!("{attribute} pr"));
        for op in ops {
            out.push(format!("{attribute} {op} {}", json!(rng.pick(values))));
        }
    }
    out.extend(
        [
            "active eq true",
            "active eq false",
            "active ne true",
            "not (active eq true)",
            "emails[type eq \"work\" and value co \"example\"]",
            "emails[primary eq true]",
            "emails[not (type eq \"home\")]",
            "phoneNumbers[type eq \"mobile\"]",
            "phoneNumbers pr",
            "nickName eq null",
            "title ne null",
            "emails.primary eq true",
        ]
        .map(str::to_string),
    );
    let simple: Vec<String> = out.clone();
    for _ in 0..60 {
        let a = rng.pick(&simple).clone();
        let b = rng.pick(&simple).clone();
        let joined = match rng.next() % 3 {
            0 => format!("{a} and {b}"),
            1 => format!("({a}) or not ({b})"),
            _ => format!("not ({a} or {b})"),
        };
        out.push(joined);
    }
    out
}

async fn database_filters_agree_with_the_evaluator(h: Harness) {
    let everyone = population(&h).await;
    assert_eq!(everyone.len(), 18);
    let mut rng = Rng(0xfeed_beef_0000_0042);
    let mut checked = 0;
    let mut discriminating = 0;
    for text in filters(&mut rng) {
        let filter = parse(&text).unwrap();
        if eval::check(&USER_TYPE, &filter).is_err() {
            continue;
        }
        let expected: Vec<Map<String, Value>> = everyone
            .iter()
            .filter(|u| eval::matches(&USER_TYPE, u, &filter))
            .cloned()
            .collect();
        let got = list(&h, Some(&text)).await;
        assert_eq!(ids(&got), ids(&expected), "{text}");
        checked += 1;
        if !expected.is_empty() && expected.len() < everyone.len() {
            discriminating += 1;
        }
    }
    assert!(checked > 150, "{checked} filters checked");
    assert!(
        discriminating > 80,
        "only {discriminating} filters told users apart"
    );
}

/// An application the provisioning settings name acts with the SCIM API's
/// rights: an application administrator (who may add secrets to applications)
/// cannot add one to it, nor name it, until it is no longer named.
async fn provisioning_clients_are_guarded(h: Harness) {
    use tessera_directory::authz::Grant;
    use tessera_directory::model::DirectoryScope;
    use tessera_directory::roles::APPLICATION_ADMINISTRATOR;
    use tessera_service::CredentialHolder;
    let app = h
        .app
        .directory
        .create_application(&h.admin, json!({"displayName": "HR connector"}))
        .await
        .unwrap();
    let mut app_admin = h.admin.clone();
    app_admin.caller = app_admin.caller.impersonating_for_tests(
        tessera_service::Principal::User {
            id: uuid::Uuid::new_v4(),
            user_principal_name: "appadmin@contoso.com".into(),
        },
        vec![Grant {
            assignment_id: uuid::Uuid::nil(),
            role_id: APPLICATION_ADMINISTRATOR,
            scope: DirectoryScope::Tenant,
        }],
    );
    let secret = |ctx: Context| {
        let directory = h.app.directory.clone();
        async move {
            directory
                .add_password(
                    &ctx,
                    CredentialHolder::Application,
                    app.id,
                    json!({"displayName": "s"}),
                )
                .await
        }
    };
    // Not named: an application administrator adds secrets as ever.
    secret(app_admin.clone()).await.unwrap();
    let named = json!({"defaultDomain": "scim.test", "clients": [app.app_id]});
    let refused = h
        .app
        .provisioning
        .set_settings(&app_admin, Replacement::new(named.clone(), None))
        .await;
    assert!(
        refused.is_err(),
        "naming a client needs the SCIM API's rights"
    );
    h.app
        .provisioning
        .set_settings(&h.admin, Replacement::new(named, None))
        .await
        .unwrap();
    let refused = secret(app_admin.clone()).await.unwrap_err();
    assert!(
        matches!(refused, tessera_service::ServiceError::Forbidden { .. }),
        "{refused:?}"
    );
    let federated = h
        .app
        .directory
        .update_application(
            &app_admin,
            tessera_service::Patch {
                at: tessera_service::Versioned::any(app.id),
                body: json!({"federatedIdentityCredentials": [{
                    "name": "ci", "issuer": "https://token.example", "subject": "repo:x",
                    "audiences": ["api://TesseraTokenExchange"]}]}),
            },
        )
        .await;
    assert!(
        matches!(
            federated,
            Err(tessera_service::ServiceError::Forbidden { .. })
        ),
        "{federated:?}"
    );
    secret(h.admin.clone()).await.unwrap();
}

fn acting_as(h: &Harness, principal: tessera_service::Principal, roles: &[uuid::Uuid]) -> Context {
    use tessera_directory::authz::Grant;
    use tessera_directory::model::DirectoryScope;
    let mut ctx = h.admin.clone();
    ctx.caller = ctx.caller.impersonating_for_tests(
        principal,
        roles
            .iter()
            .map(|role_id| Grant {
                assignment_id: uuid::Uuid::nil(),
                role_id: *role_id,
                scope: DirectoryScope::Tenant,
            })
            .collect(),
    );
    ctx
}

/// A tenant's mapping decides the directory's attributes (expressions, a custom
/// security attribute, a unique user principal name); what it carries otherwise
/// than the default reads back and filters as the client sent it; a mapping
/// that does not hold is refused whole, and writing custom security attributes
/// needs whoever saves it to be allowed to.
async fn a_tenant_mapping_shapes_provisioned_users(h: Harness) {
    use tessera_directory::roles::{
        ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR, ATTRIBUTE_DEFINITION_ADMINISTRATOR,
        GLOBAL_ADMINISTRATOR, GROUPS_ADMINISTRATOR, USER_ADMINISTRATOR,
    };
    let me = tessera_service::Principal::User {
        id: uuid::Uuid::new_v4(),
        user_principal_name: "attributes@scim.test".into(),
    };
    let attribute_admin = acting_as(
        &h,
        me,
        &[
            GLOBAL_ADMINISTRATOR,
            ATTRIBUTE_DEFINITION_ADMINISTRATOR,
            ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR,
        ],
    );
    h.app
        .directory
        .create_attribute_definition(
            &attribute_admin,
            json!({"attributeSet": "HR", "name": "level", "type": "Integer"}),
        )
        .await
        .unwrap();
    let mapping = json!({"attributes": [
        {"target": "userPrincipalName", "expression":
            "SelectUniqueValue(ToLower(NormalizeDiacritics(Join(\".\", [name.givenName], [name.familyName])))@scim.test, ToLower([userName])@scim.test)"},
        {"target": "displayName", "expression": "Join(\" \", [name.givenName], [name.familyName])"},
        {"target": "department", "expression":
            "Switch([urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department], \"Other\", \"T\", \"Tours\", \"S\", \"Sales\")"},
        {"target": "customSecurityAttributes.HR.level", "expression": "[urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter]"},
        {"target": "accountEnabled", "expression": "[active]", "defaultValue": "true"},
        {"target": "jobTitle", "expression": "[title]", "apply": "onCreate"},
    ]});
    let settings = |mapping: &Value| json!({"defaultDomain": "scim.test", "userMapping": mapping});
    // A Global Administrator may not hand out custom security attributes.
    let refused = h
        .app
        .provisioning
        .set_settings(&h.admin, Replacement::new(settings(&mapping), None))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, tessera_service::ServiceError::Forbidden { .. }),
        "{refused:?}"
    );
    // A mapping that does not hold is refused whole, each problem at its place.
    let mut bad = mapping.clone();
    bad["attributes"][1]["expression"] = json!("Join(\" \", [nickname]");
    bad["attributes"][2]["target"] = json!("favouriteColour");
    bad["attributes"][3]["target"] = json!("customSecurityAttributes.HR.grade");
    let refused = h
        .app
        .provisioning
        .set_settings(&attribute_admin, Replacement::new(settings(&bad), None))
        .await
        .unwrap_err();
    let text = format!("{refused:?}");
    for says in [
        "userMapping.attributes[1].expression",
        "favouriteColour",
        "HR.grade",
    ] {
        assert!(text.contains(says), "{says} missing from {text}");
    }
    assert!(
        h.app
            .provisioning
            .user_mapping(&h.admin)
            .await
            .unwrap()
            .is_default,
        "nothing was saved"
    );
    h.app
        .provisioning
        .set_settings(&attribute_admin, Replacement::new(settings(&mapping), None))
        .await
        .unwrap();
    // A SCIM client acting with a provisioning token's rights.
    let client = acting_as(
        &h,
        tessera_service::Principal::Workload {
            id: uuid::Uuid::new_v4(),
            display_name: "HR".into(),
            kind: "provisioningToken",
        },
        &[USER_ADMINISTRATOR, GROUPS_ADMINISTRATOR],
    );
    let enterprise = ENTERPRISE_USER;
    let create = |user: Value| {
        let app = h.app.provisioning.clone();
        let client = client.clone();
        async move { app.create(&client, &USER_TYPE, &user, BASE).await }
    };
    let first = create(
        json!({"userName": "ZL1", "name": {"givenName": "Zoë", "familyName": "Ley"},
        "title": "Guide", enterprise: {"department": "T", "costCenter": "7"}}),
    )
    .await
    .unwrap();
    let second = create(
        json!({"userName": "ZL2", "name": {"givenName": "Zoe", "familyName": "Ley"},
        enterprise: {"department": "X"}}),
    )
    .await
    .unwrap();
    let user = |id: &Value| {
        let directory = h.app.directory.clone();
        let admin = attribute_admin.clone();
        let id: uuid::Uuid = id.as_str().unwrap().parse().unwrap();
        async move {
            directory
                .get::<tessera_directory::model::UserSpec>(&admin, id)
                .await
                .unwrap()
        }
    };
    let one = user(&first.body["id"]).await;
    assert_eq!(one.spec.user_principal_name, "zoe.ley@scim.test");
    assert_eq!(one.spec.display_name, "Zoë Ley");
    assert_eq!(one.spec.department.as_deref(), Some("Tours"));
    assert_eq!(one.spec.job_title.as_deref(), Some("Guide"));
    assert_eq!(
        serde_json::to_value(&one.spec.custom_security_attributes).unwrap(),
        json!({"HR": {"level": 7}})
    );
    let two = user(&second.body["id"]).await;
    assert_eq!(
        two.spec.user_principal_name, "zl2@scim.test",
        "the first candidate was taken"
    );
    assert_eq!(two.spec.department.as_deref(), Some("Other"));
    // userName is no longer the user principal name: it reads and filters as sent.
    assert_eq!(first.body["userName"], "ZL1");
    let found = list(&h, Some("userName eq \"zl1\"")).await;
    assert_eq!(
        ids(&found),
        vec![first.body["id"].as_str().unwrap().to_string()]
    );
    // An onCreate attribute stays when the source changes; the others follow.
    let id = first.body["id"].as_str().unwrap();
    let change_level = |level: &'static str| {
        let app = h.app.provisioning.clone();
        let client = client.clone();
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "replace", "path": "title", "value": "Lead"},
            {"op": "replace", "path": format!("{enterprise}:costCenter"), "value": level}]});
        async move { app.patch(&client, &USER_TYPE, id, &body, None, BASE).await }
    };
    let refused = change_level("nine")
        .await
        .expect_err("a level that is not a number");
    assert!(
        format!("{refused:?}").contains("customSecurityAttributes.HR.level"),
        "{refused:?}"
    );
    change_level("9").await.unwrap();
    let one = user(&first.body["id"]).await;
    assert_eq!(one.spec.job_title.as_deref(), Some("Guide"), "onCreate");
    assert_eq!(
        serde_json::to_value(&one.spec.custom_security_attributes).unwrap(),
        json!({"HR": {"level": 9}})
    );
    // The preview shows what a mapping makes of a user, writing nothing.
    let preview = h
        .app
        .provisioning
        .preview_user_mapping(
            &h.admin,
            json!({"resource": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "q", "name": {"givenName": "Q", "familyName": "R"}},
                "mapping": {"attributes": [
                    {"target": "userPrincipalName", "expression": "ToUpper([userName])"},
                    {"target": "displayName", "expression": "[name.familyName]"}]}}),
        )
        .await
        .unwrap();
    assert_eq!(
        preview,
        json!({"attributes": {"userPrincipalName": "Q@scim.test", "displayName": "R"}})
    );
}

/// With a mapping of its own: users made in the directory are still found by
/// the attributes it carries otherwise (a client matching before it creates
/// makes no duplicate); a custom `accountEnabled` leaves an administrator's
/// disabling alone until the source's `active` changes; a user keeps the unique
/// name it has; a mapping that stops holding refuses writes, not reads; and a
/// token that would write custom security attributes needs the right to.
async fn a_tenant_mapping_keeps_what_the_directory_holds(h: Harness) {
    use tessera_directory::roles::{
        ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR, ATTRIBUTE_DEFINITION_ADMINISTRATOR,
        GLOBAL_ADMINISTRATOR, USER_ADMINISTRATOR,
    };
    let mapping = json!({"attributes": [
        {"target": "userPrincipalName", "expression":
            "SelectUniqueValue(ToLower([userName])@scim.test, ToLower([userName])2@scim.test)"},
        {"target": "displayName", "expression": "Coalesce([displayName], [userName])"},
        {"target": "accountEnabled", "expression": "CBool([active])", "defaultValue": "true"},
    ]});
    h.app
        .provisioning
        .set_settings(
            &h.admin,
            Replacement::new(
                json!({"defaultDomain": "scim.test", "userMapping": mapping}),
                None,
            ),
        )
        .await
        .unwrap();
    // Made in the directory, then matched by a client before it creates.
    h.app
        .directory
        .create_user(
            &h.admin,
            json!({"userPrincipalName": "alice@scim.test", "displayName": "Alice"}),
        )
        .await
        .unwrap();
    let found = list(&h, Some("userName eq \"ALICE@scim.test\"")).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(list(&h, Some("displayName eq \"alice\"")).await.len(), 1);
    // A provisioned user, disabled by an administrator.
    let bob = h
        .app
        .provisioning
        .create(
            &h.admin,
            &USER_TYPE,
            &json!({"userName": "bob", "active": true}),
            BASE,
        )
        .await
        .unwrap();
    let id = bob.body["id"].as_str().unwrap().to_string();
    let uuid: uuid::Uuid = id.parse().unwrap();
    h.app
        .directory
        .update_user(
            &h.admin,
            tessera_service::Patch {
                at: tessera_service::Versioned::any(uuid),
                body: json!({"accountEnabled": false, "userPrincipalName": "bob2@scim.test"}),
            },
        )
        .await
        .unwrap();
    let patch = |ops: Value| {
        let app = h.app.provisioning.clone();
        let admin = h.admin.clone();
        let id = id.clone();
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        async move { app.patch(&admin, &USER_TYPE, &id, &body, None, BASE).await }
    };
    let user = || {
        let directory = h.app.directory.clone();
        let admin = h.admin.clone();
        async move {
            directory
                .get::<tessera_directory::model::UserSpec>(&admin, uuid)
                .await
                .unwrap()
        }
    };
    patch(json!([{"op": "replace", "path": "displayName", "value": "Bob"}]))
        .await
        .unwrap();
    let now = user().await;
    assert!(
        !now.spec.account_enabled,
        "an unrelated change leaves the user disabled"
    );
    assert_eq!(now.spec.display_name, "Bob");
    assert_eq!(
        now.spec.user_principal_name, "bob2@scim.test",
        "the unique name it has is among the candidates: kept"
    );
    patch(json!([{"op": "replace", "path": "active", "value": false}]))
        .await
        .unwrap();
    patch(json!([{"op": "replace", "path": "active", "value": true}]))
        .await
        .unwrap();
    assert!(
        user().await.spec.account_enabled,
        "the source's active changed"
    );
    // A mapping writing a custom security attribute, whose definition is then
    // deprecated: reads go on, user writes are refused.
    let attribute_admin = acting_as(
        &h,
        tessera_service::Principal::User {
            id: uuid::Uuid::new_v4(),
            user_principal_name: "attributes@scim.test".into(),
        },
        &[
            GLOBAL_ADMINISTRATOR,
            ATTRIBUTE_DEFINITION_ADMINISTRATOR,
            ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR,
        ],
    );
    let definition = h
        .app
        .directory
        .create_attribute_definition(
            &attribute_admin,
            json!({"attributeSet": "HR", "name": "site", "type": "String"}),
        )
        .await
        .unwrap();
    let mut with_custom = mapping.clone();
    with_custom["attributes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"target": "customSecurityAttributes.hr.SITE", "expression": "[title]"}));
    h.app
        .provisioning
        .set_settings(
            &attribute_admin,
            Replacement::new(
                json!({"defaultDomain": "scim.test", "userMapping": with_custom}),
                None,
            ),
        )
        .await
        .unwrap();
    let user_admin = acting_as(
        &h,
        tessera_service::Principal::User {
            id: uuid::Uuid::new_v4(),
            user_principal_name: "users@scim.test".into(),
        },
        &[
            USER_ADMINISTRATOR,
            tessera_directory::roles::GROUPS_ADMINISTRATOR,
        ],
    );
    let refused = h
        .app
        .provisioning
        .create_token(&user_admin, json!({"displayName": "HR"}))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, tessera_service::ServiceError::Forbidden { .. }),
        "a token that would write custom security attributes: {refused:?}"
    );
    // A user's own rights apply: a Global Administrator may not assign them.
    let refused = patch(json!([{"op": "replace", "path": "title", "value": "Oslo"}]))
        .await
        .unwrap_err()
        .into_scim();
    assert_eq!(refused.status, 403, "{refused:?}");
    // A provisioning token writes what the mapping maps.
    let token = acting_as(
        &h,
        tessera_service::Principal::Workload {
            id: uuid::Uuid::new_v4(),
            display_name: "HR".into(),
            kind: "provisioningToken",
        },
        &[
            USER_ADMINISTRATOR,
            tessera_directory::roles::GROUPS_ADMINISTRATOR,
        ],
    );
    h.app
        .provisioning
        .patch(
            &token,
            &USER_TYPE,
            &id,
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "title", "value": "Oslo"}]}),
            None,
            BASE,
        )
        .await
        .unwrap();
    let custom = h
        .app
        .directory
        .get::<tessera_directory::model::UserSpec>(&attribute_admin, uuid)
        .await
        .unwrap()
        .spec
        .custom_security_attributes;
    assert_eq!(
        serde_json::to_value(&custom).unwrap(),
        json!({"HR": {"site": "Oslo"}}),
        "spelt as the definition is"
    );
    h.app
        .directory
        .update_attribute_definition(
            &attribute_admin,
            tessera_service::Patch {
                at: tessera_service::Versioned::any(definition.id.as_str()),
                body: json!({"status": "Deprecated"}),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        list(&h, None).await.len(),
        3,
        "reads go on (the administrator, alice, bob)"
    );
    let refused = patch(json!([{"op": "replace", "path": "title", "value": "Rome"}]))
        .await
        .unwrap_err()
        .into_scim();
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(
        !refused.detail.contains("site"),
        "no attribute names: {}",
        refused.detail
    );
}

/// HR files through the HR mapping: a preview changes nothing; a first load
/// creates everyone; the same file again changes nobody (the anchor finds them);
/// a file that would change too many is held until an administrator approves
/// it; rows that cannot apply fail alone, each with its reason.
async fn hr_files_create_match_and_hold(h: Harness) {
    let hr = json!({"format": "csv", "anchor": "employeeId", "maxChangedPercent": 25,
    "mapping": {"attributes": [
        {"target": "employeeId", "expression": "[Employee ID]"},
        {"target": "userPrincipalName", "expression": "ToLower(Join(\".\", [First Name], [Last Name]))@scim.test"},
        {"target": "displayName", "expression": "Join(\" \", [First Name], [Last Name])"},
        {"target": "department", "expression": "[Dept]"},
        {"target": "employeeHireDate", "expression": "IgnoreFlowIfNullOrEmpty(FormatDateTime([Start], \"M/d/yyyy\", \"yyyy-MM-dd\"))"}
    ]}});
    let settings = |hr: &Value| json!({"defaultDomain": "scim.test", "hrImport": hr});
    // Checked when saved: the anchor must be mapped.
    let mut unanchored = hr.clone();
    unanchored["mapping"]["attributes"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let refused = h
        .app
        .provisioning
        .set_settings(&h.admin, Replacement::new(settings(&unanchored), None))
        .await
        .unwrap_err();
    assert!(
        format!("{refused:?}").contains("anchor employeeId must be mapped"),
        "{refused:?}"
    );
    h.app
        .provisioning
        .set_settings(&h.admin, Replacement::new(settings(&hr), None))
        .await
        .unwrap();
    let people: Vec<String> = (0..8)
        .map(|i| format!("{},Person,N{i},Sales,1/{}/2026", 1000 + i, i + 1))
        .collect();
    let file = |rows: &[String]| json!({"content": format!("Employee ID,First Name,Last Name,Dept,Start\n{}\n", rows.join("\n"))});
    let preview = h
        .app
        .provisioning
        .preview_hr_import(&h.admin, file(&people))
        .await
        .unwrap();
    assert_eq!(
        (preview.creates, preview.updates, preview.held),
        (8, 0, false)
    );
    assert!(list(&h, None).await.len() == 1, "a preview changes nothing");
    let run = h
        .app
        .provisioning
        .run_hr_import(&h.admin, file(&people))
        .await
        .unwrap();
    assert_eq!(
        (run.state.as_str(), run.creates, run.failed),
        ("completed", 8, 0),
        "{run:?}"
    );
    let again = h
        .app
        .provisioning
        .run_hr_import(&h.admin, file(&people))
        .await
        .unwrap();
    assert_eq!(
        (again.creates, again.updates, again.unchanged),
        (0, 0, 8),
        "{again:?}"
    );
    // One moves department: 1 of 8 (12.5%) is within 25%.
    let mut moved = people.clone();
    moved[0] = moved[0].replace("Sales", "Tours");
    let run = h
        .app
        .provisioning
        .run_hr_import(&h.admin, file(&moved))
        .await
        .unwrap();
    assert_eq!(
        (run.state.as_str(), run.updates),
        ("completed", 1),
        "{run:?}"
    );
    // Everyone's department emptied: held, nothing changed.
    let emptied: Vec<String> = moved
        .iter()
        .map(|r| r.replace("Sales", "").replace("Tours", ""))
        .collect();
    let held = h
        .app
        .provisioning
        .run_hr_import(&h.admin, file(&emptied))
        .await
        .unwrap();
    assert_eq!((held.state.as_str(), held.updates), ("held", 8), "{held:?}");
    assert_eq!(
        list(
            &h,
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr")
        )
        .await
        .len(),
        8
    );
    let runs = h.app.provisioning.hr_runs(&h.admin).await.unwrap();
    assert_eq!(runs[0].id, held.id, "newest first");
    let approved = h
        .app
        .provisioning
        .approve_hr_run(&h.admin, held.id)
        .await
        .unwrap();
    assert_eq!(
        (approved.state.as_str(), approved.updates, approved.failed),
        ("completed", 8, 0),
        "{approved:?}"
    );
    assert_eq!(
        list(
            &h,
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr")
        )
        .await
        .len(),
        0
    );
    assert!(
        h.app
            .provisioning
            .approve_hr_run(&h.admin, held.id)
            .await
            .is_err(),
        "a run is approved once"
    );
    // A held run can be rejected instead: nothing applied, the plan dropped.
    let restored = || file(&moved);
    let held = h
        .app
        .provisioning
        .run_hr_import(&h.admin, restored())
        .await
        .unwrap();
    assert_eq!(held.state, "held", "{held:?}");
    let rejected = h
        .app
        .provisioning
        .reject_hr_run(&h.admin, held.id)
        .await
        .unwrap();
    assert_eq!(rejected.state, "rejected");
    assert!(rejected.rejected_by.is_some() && rejected.results.is_empty());
    assert!(rejected.completed_date_time.is_some());
    let shown = h.app.provisioning.hr_run(&h.admin, held.id).await.unwrap();
    assert_eq!((shown.state.as_str(), shown.updates), ("rejected", 8));
    for refused in [
        h.app.provisioning.approve_hr_run(&h.admin, held.id).await,
        h.app.provisioning.reject_hr_run(&h.admin, held.id).await,
    ] {
        assert!(
            matches!(refused, Err(tessera_service::ServiceError::Conflict { .. })),
            "{refused:?}"
        );
    }
    assert_eq!(
        list(
            &h,
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr")
        )
        .await
        .len(),
        0,
        "a rejected run changed nobody"
    );
    // A held run nobody decides on expires after a week: it cannot be
    // approved then, and the hr-import job's round ends it.
    let held = h
        .app
        .provisioning
        .run_hr_import(&h.admin, restored())
        .await
        .unwrap();
    assert_eq!(held.state, "held", "{held:?}");
    assert_eq!(
        h.app
            .provisioning
            .expire_held_hr_runs(h.admin.tenant)
            .await
            .unwrap(),
        0,
        "not yet"
    );
    let clock = std::sync::Arc::new(tessera_testkit::ShiftedClock::default());
    clock.advance_seconds(tessera_service::provisioning::hr::HELD_FOR_DAYS * 86_400 + 60);
    let later = App::new(h.app.store().clone(), clock);
    let refused = later
        .provisioning
        .approve_hr_run(&h.admin, held.id)
        .await
        .unwrap_err();
    assert!(format!("{refused:?}").contains("expired"), "{refused:?}");
    assert_eq!(
        later
            .provisioning
            .expire_held_hr_runs(h.admin.tenant)
            .await
            .unwrap(),
        1
    );
    let expired = h.app.provisioning.hr_run(&h.admin, held.id).await.unwrap();
    assert_eq!(expired.state, "expired", "{expired:?}");
    assert!(expired.results.is_empty());
    // Rows that cannot apply fail alone.
    let mixed = vec![
        "2000,Ann,Lee,Ops,13/45/2026".to_string(),
        "2001,Person,N0,Ops,".to_string(),
        "2002,Bo,Ek,Ops,".to_string(),
    ];
    let run = h
        .app
        .provisioning
        .run_hr_import(&h.admin, file(&mixed))
        .await
        .unwrap();
    assert_eq!((run.creates, run.failed), (2, 2), "{run:?}");
    let reasons: Vec<String> = run
        .results
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| r["reason"].to_string())
        .collect();
    assert!(
        reasons[0].contains("employeeHireDate") || reasons[1].contains("employeeHireDate"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("person.n0@scim.test") || r.contains("userPrincipalName")),
        "{reasons:?}"
    );
    // A file that is not CSV, or lacks a mapped column, is refused whole.
    let refused = h
        .app
        .provisioning
        .run_hr_import(
            &h.admin,
            json!({"content": "Employee ID,First Name\n1,A\n"}),
        )
        .await
        .unwrap_err();
    assert!(format!("{refused:?}").contains("no column"), "{refused:?}");
}

/// The HR system's drop folder, as the binary's adapter reads it.
struct Folder(std::path::PathBuf);

impl tessera_service::provisioning::hr::HrDropFolder for Folder {
    fn read(&self, tenant: tessera_core::TenantId, file: &str) -> Result<Option<String>, String> {
        match std::fs::read_to_string(self.0.join(tenant.to_string()).join(file)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A scheduled HR import runs the dropped file once, whichever of two nodes gets
/// there, as the provisioning service; not again before it is due.
async fn scheduled_hr_imports_run_once_across_nodes(h: Harness) {
    let hr = json!({"format": "csv", "schedule": {"file": "people.csv", "everyMinutes": 5},
    "mapping": {"attributes": [
        {"target": "employeeId", "expression": "[id]"},
        {"target": "userPrincipalName", "expression": "[login]@scim.test"},
        {"target": "displayName", "expression": "[name]"}
    ]}});
    for bad in [json!("../etc/passwd"), json!(".hidden"), json!("a/b.csv")] {
        let mut wrong = hr.clone();
        wrong["schedule"]["file"] = bad.clone();
        let refused = h
            .app
            .provisioning
            .set_settings(&h.admin, Replacement::new(json!({"hrImport": wrong}), None))
            .await;
        assert!(refused.is_err(), "{bad}");
    }
    h.app
        .provisioning
        .set_settings(
            &h.admin,
            Replacement::new(json!({"defaultDomain": "scim.test", "hrImport": hr}), None),
        )
        .await
        .unwrap();
    let drop = tempfile::tempdir().unwrap();
    let tenant = h.admin.tenant;
    std::fs::create_dir_all(drop.path().join(tenant.to_string())).unwrap();
    let second = tessera_service::App::new(
        h.app.store().clone(),
        std::sync::Arc::new(tessera_core::SystemClock),
    );
    for app in [&h.app, &second] {
        app.provisioning
            .set_hr_drop_folder(std::sync::Arc::new(Folder(drop.path().to_path_buf())));
    }
    assert!(
        h.app
            .provisioning
            .scheduled_hr_round(tenant)
            .await
            .unwrap()
            .is_none(),
        "no file dropped yet"
    );
    std::fs::write(
        drop.path().join(tenant.to_string()).join("people.csv"),
        "id,login,name\nE1,ann,Ann\nE2,bo,Bo\n",
    )
    .unwrap();
    let (one, two) = tokio::join!(
        h.app.provisioning.scheduled_hr_round(tenant),
        second.provisioning.scheduled_hr_round(tenant)
    );
    let ran: Vec<_> = [one.unwrap(), two.unwrap()].into_iter().flatten().collect();
    assert_eq!(ran.len(), 1, "one node ran it: {ran:?}");
    assert_eq!(
        (ran[0].state.as_str(), ran[0].creates, ran[0].scheduled),
        ("completed", 2, true)
    );
    assert_eq!(ran[0].requested_by, "Scheduled HR import");
    let runs = h.app.provisioning.hr_runs(&h.admin).await.unwrap();
    assert_eq!(runs.len(), 1);
    // Changed, but not due for five minutes.
    std::fs::write(
        drop.path().join(tenant.to_string()).join("people.csv"),
        "id,login,name\nE1,ann,Ann Lee\nE2,bo,Bo\n",
    )
    .unwrap();
    assert!(
        h.app
            .provisioning
            .scheduled_hr_round(tenant)
            .await
            .unwrap()
            .is_none()
    );
}

both_backends!(
    setup = harness;
    database_filters_agree_with_the_evaluator,
    provisioning_clients_are_guarded,
    a_tenant_mapping_shapes_provisioned_users,
    a_tenant_mapping_keeps_what_the_directory_holds,
    hr_files_create_match_and_hold,
    scheduled_hr_imports_run_once_across_nodes
);

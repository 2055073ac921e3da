//! The management API through the real router (no sockets), on SQLite and on
//! PostgreSQL: status codes, problem documents, ETags, authorization, and the
//! OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use support::{App, Reply, app};
use tessera_directory::roles;

impl App {
    async fn user(&self, upn: &str) -> String {
        let reply = self
            .post(
                "/api/v1/users",
                json!({"userPrincipalName": upn, "displayName": upn}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["id"].as_str().unwrap().to_string()
    }
}

fn assert_problem(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(reply.body["code"], code, "{:?}", reply.body);
    assert_eq!(reply.body["status"], status.as_u16());
    assert_eq!(reply.body["type"], format!("urn:tessera:error:{code}"));
    assert!(
        reply.body["correlationId"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{:?}",
        reply.body
    );
}

async fn unauthenticated_requests_get_401_problems(api: App) {
    let reply = api
        .request(Method::GET, "/api/v1/users", None, None, &[])
        .await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
    let forged = api.request(Method::GET, "/api/v1/users", Some("tsr_pat_00000000000000000000000000000000_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), None, &[]).await;
    assert_problem(&forged, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(
        reply.body["detail"], forged.body["detail"],
        "one message for every failure"
    );
}

async fn create_returns_201_with_location_and_etag(api: App) {
    let reply = api
        .post(
            "/api/v1/users",
            json!({"userPrincipalName": "adele@contoso.com", "displayName": "Adele"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let id = reply.body["id"].as_str().unwrap();
    assert_eq!(
        reply.headers[header::LOCATION],
        format!("/api/v1/users/{id}")
    );
    assert_eq!(reply.headers[header::ETAG], "W/\"1\"");
    let fetched = api.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(fetched.body["userPrincipalName"], "adele@contoso.com");
    let by_name = api
        .get("/api/v1/users/byPrincipalName/ADELE@contoso.com")
        .await;
    assert_eq!(by_name.body["id"], id);
}

async fn bad_input_is_refused_with_the_field_and_changes_nothing(api: App) {
    let unknown = api
        .post(
            "/api/v1/users",
            json!({"userPrincipalName": "a@contoso.com", "displayName": "A", "nickname": "x"}),
        )
        .await;
    assert_problem(&unknown, StatusCode::BAD_REQUEST, "validation_failed");
    assert!(
        unknown.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nickname")
    );
    let wrong_type = api.post("/api/v1/users", json!({"userPrincipalName": "a@contoso.com", "displayName": "A", "accountEnabled": "yes"})).await;
    assert_problem(&wrong_type, StatusCode::BAD_REQUEST, "validation_failed");
    assert_eq!(wrong_type.body["errors"][0]["field"], "accountEnabled");
    let dangling = api.post("/api/v1/users", json!({"userPrincipalName": "a@contoso.com", "displayName": "A", "managerId": uuid::Uuid::new_v4()})).await;
    assert_problem(&dangling, StatusCode::BAD_REQUEST, "validation_failed");
    assert_eq!(dangling.body["errors"][0]["field"], "managerId");
    let not_json = api
        .request(
            Method::POST,
            "/api/v1/users",
            Some(&api.token),
            None,
            &[(header::CONTENT_TYPE.as_str(), "application/json")],
        )
        .await;
    assert_problem(&not_json, StatusCode::BAD_REQUEST, "validation_failed");
    let text = api
        .request(
            Method::POST,
            "/api/v1/users",
            Some(&api.token),
            None,
            &[(header::CONTENT_TYPE.as_str(), "text/plain")],
        )
        .await;
    assert_problem(
        &text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let bad_id = api.get("/api/v1/users/not-a-uuid").await;
    assert_problem(&bad_id, StatusCode::BAD_REQUEST, "validation_failed");
    let bad_query = api.get("/api/v1/users?colour=red").await;
    assert_problem(&bad_query, StatusCode::BAD_REQUEST, "validation_failed");
    let bad_limit = api.get("/api/v1/users?limit=100000").await;
    assert_problem(&bad_limit, StatusCode::BAD_REQUEST, "validation_failed");
    let missing = api
        .get(&format!("/api/v1/users/{}", uuid::Uuid::new_v4()))
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "not_found");
    let huge = api
        .post(
            "/api/v1/users",
            json!({"userPrincipalName": "a@contoso.com", "displayName": "x".repeat(2 << 20)}),
        )
        .await;
    assert_problem(&huge, StatusCode::PAYLOAD_TOO_LARGE, "body_unreadable");
    let users = api.get("/api/v1/users").await;
    assert_eq!(
        users.body["value"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );
    let audit = api.get("/api/v1/auditLogs/directoryAudits").await;
    assert_eq!(
        audit.body["value"].as_array().unwrap().len(),
        4,
        "bootstrap events only"
    );
    let nowhere = api.get("/api/v1/nothing-here").await;
    assert_problem(&nowhere, StatusCode::NOT_FOUND, "not_found");
}

async fn stale_if_match_gets_412(api: App) {
    let id = api.user("megan@contoso.com").await;
    let path = format!("/api/v1/users/{id}");
    let first = api
        .request(
            Method::PATCH,
            &path,
            Some(&api.token),
            Some(json!({"jobTitle": "CFO"})),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.headers[header::ETAG], "W/\"2\"");
    let stale = api
        .request(
            Method::PATCH,
            &path,
            Some(&api.token),
            Some(json!({"jobTitle": "CEO"})),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_problem(&stale, StatusCode::PRECONDITION_FAILED, "version_mismatch");
    let garbage = api
        .request(
            Method::PATCH,
            &path,
            Some(&api.token),
            Some(json!({"jobTitle": "CEO"})),
            &[("if-match", "yesterday")],
        )
        .await;
    assert_problem(&garbage, StatusCode::BAD_REQUEST, "validation_failed");
    let delete_stale = api
        .request(
            Method::DELETE,
            &path,
            Some(&api.token),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_problem(
        &delete_stale,
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
    );
    let deleted = api
        .request(
            Method::DELETE,
            &path,
            Some(&api.token),
            None,
            &[("if-match", "W/\"2\"")],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

async fn scoped_administrators_get_403_outside_their_unit(api: App) {
    let admin = api.user("paris-admin@contoso.com").await;
    let inside = api.user("inside@contoso.com").await;
    let outside = api.user("outside@contoso.com").await;
    let unit = api
        .post(
            "/api/v1/administrativeUnits",
            json!({"displayName": "Paris"}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let added = api
        .post(
            &format!("/api/v1/administrativeUnits/{unit}/members"),
            json!({"id": inside}),
        )
        .await;
    assert_eq!(added.status, StatusCode::NO_CONTENT);
    let assigned = api
        .post(
            "/api/v1/roleManagement/directory/roleAssignments",
            json!({"principalId": admin, "roleDefinitionId": roles::USER_ADMINISTRATOR, "directoryScopeId": format!("/administrativeUnits/{unit}")}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);
    let issued = api
        .post(
            &format!("/api/v1/users/{admin}/accessTokens"),
            json!({"displayName": "first"}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{:?}", issued.body);
    let token = issued.body["secret"].as_str().unwrap().to_string();
    let inside_update = api
        .request(
            Method::PATCH,
            &format!("/api/v1/users/{inside}"),
            Some(&token),
            Some(json!({"department": "Ops"})),
            &[],
        )
        .await;
    assert_eq!(
        inside_update.status,
        StatusCode::OK,
        "{:?}",
        inside_update.body
    );
    let outside_update = api
        .request(
            Method::PATCH,
            &format!("/api/v1/users/{outside}"),
            Some(&token),
            Some(json!({"department": "Ops"})),
            &[],
        )
        .await;
    assert_problem(&outside_update, StatusCode::FORBIDDEN, "forbidden");
    let outside_delete = api
        .request(
            Method::DELETE,
            &format!("/api/v1/users/{outside}"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_problem(&outside_delete, StatusCode::FORBIDDEN, "forbidden");
    let list_all = api
        .request(Method::GET, "/api/v1/users", Some(&token), None, &[])
        .await;
    assert_problem(&list_all, StatusCode::FORBIDDEN, "forbidden");
    let escalate = api
        .request(
            Method::POST,
            "/api/v1/roleManagement/directory/roleAssignments",
            Some(&token),
            Some(json!({"principalId": admin, "roleDefinitionId": roles::GLOBAL_ADMINISTRATOR})),
            &[],
        )
        .await;
    assert_problem(&escalate, StatusCode::FORBIDDEN, "forbidden");
    let audit = api
        .get(&format!(
            "/api/v1/auditLogs/directoryAudits?targetId={outside}"
        ))
        .await;
    assert_eq!(
        audit.body["value"].as_array().unwrap().len(),
        1,
        "only the creation: refused calls change nothing"
    );
}

async fn correlation_ids_are_echoed_when_safe(api: App) {
    let kept = api
        .request(
            Method::GET,
            "/api/v1/users",
            None,
            None,
            &[("x-request-id", "abc-123")],
        )
        .await;
    assert_eq!(kept.headers["x-request-id"], "abc-123");
    assert_eq!(kept.body["correlationId"], "abc-123");
    let replaced = api
        .request(
            Method::GET,
            "/api/v1/users",
            None,
            None,
            &[("x-request-id", "evil id\" injected")],
        )
        .await;
    assert_ne!(replaced.headers["x-request-id"], "evil id\" injected");
}

async fn secrets_are_shown_once(api: App) {
    let app = api
        .post("/api/v1/applications", json!({"displayName": "Payroll"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = api
        .post(
            &format!("/api/v1/applications/{app}/passwordCredentials"),
            json!({"displayName": "ci"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let secret = created.body["secretText"].as_str().unwrap().to_string();
    let fetched = api.get(&format!("/api/v1/applications/{app}")).await;
    assert!(!fetched.body.to_string().contains(&secret));
    let audit = api
        .get("/api/v1/auditLogs/directoryAudits?limit=1000")
        .await;
    assert!(
        !audit.body.to_string().contains(&secret),
        "no secret in the audit trail"
    );
    assert!(
        !audit.body.to_string().contains(&api.token),
        "no token in the audit trail"
    );
}

async fn openapi_document_is_3_1_and_complete(api: App) {
    let reply = api
        .request(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = reply.body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/groups/{id}/members",
        "/api/v1/groups/{id}/transitiveMembers",
        "/api/v1/devices",
        "/api/v1/applications/{id}/passwordCredentials",
        "/api/v1/servicePrincipals",
        "/api/v1/administrativeUnits/{id}/members",
        "/api/v1/roleManagement/directory/roleAssignments",
        "/api/v1/directory/customSecurityAttributeDefinitions",
        "/api/v1/auditLogs/directoryAudits",
        "/api/v1/me/accessTokens",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} is missing from the OpenAPI document"
        );
    }
    assert!(reply.body["components"]["securitySchemes"]["bearer"].is_object());
    assert!(reply.body["components"]["schemas"]["Problem"].is_object());
    // What-If's question and the import's answer are described field by field.
    let schemas = &reply.body["components"]["schemas"];
    for (schema, field) in [
        ("WhatIf", "appId"),
        ("WhatIf", "userAgent"),
        ("WhatIf", "authenticationMethods"),
        ("WhatIf", "satisfiedStrengths"),
        ("ImportResult", "dryRun"),
        ("ImportResult", "plannedPolicies"),
        ("ImportResult", "warnings"),
    ] {
        assert!(
            schemas[schema]["properties"][field].is_object(),
            "{schema}.{field} is missing from the OpenAPI document"
        );
    }
    assert_eq!(
        reply.body["paths"]["/api/v1/identity/conditionalAccess/evaluate"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"]["$ref"],
        "#/components/schemas/WhatIf"
    );
}

async fn every_operation_documents_its_problems_as_problem_json(api: App) {
    let document = api
        .request(Method::GET, "/api/v1/openapi.json", None, None, &[])
        .await
        .body;
    let shared = &document["components"]["responses"];
    for name in [
        "BadRequest",
        "Unauthorized",
        "NotFound",
        "PreconditionFailed",
    ] {
        assert_eq!(
            shared[name]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem",
            "{name}"
        );
    }
    let patch = &document["paths"]["/api/v1/users/{id}"]["patch"]["responses"];
    for (status, name) in [
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("403", "Forbidden"),
        ("404", "NotFound"),
        ("409", "Conflict"),
        ("412", "PreconditionFailed"),
        ("415", "UnsupportedMediaType"),
    ] {
        assert_eq!(
            patch[status]["$ref"],
            format!("#/components/responses/{name}"),
            "PATCH /api/v1/users/{{id}} {status}"
        );
    }
    // If-Match says what it accepts.
    let parameters = document["paths"]["/api/v1/users/{id}"]["patch"]["parameters"]
        .as_array()
        .unwrap();
    let if_match = parameters.iter().find(|p| p["name"] == "If-Match").unwrap();
    assert!(if_match["schema"]["pattern"].is_string(), "{if_match}");
    // No error response anywhere is documented as anything but a shared problem.
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["$ref"].is_string(),
                        "{method} {path} {status}: {response}"
                    );
                }
            }
        }
    }
    // An object that flattens its spec lists all its fields in one schema.
    let device = &document["components"]["schemas"]["Device"];
    assert!(device["allOf"].is_null(), "{device}");
    assert!(device["properties"]["displayName"].is_object());
    assert!(device["properties"]["version"].is_object());
}

async fn a_known_path_with_another_method_is_a_405_problem_with_allow(api: App) {
    let reply = api
        .request(Method::PUT, "/api/v1/users", Some(&api.token), None, &[])
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(reply.body["code"], "method_not_allowed");
    let allow = reply.headers[header::ALLOW].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    // An unknown path is still a 404.
    let reply = api
        .request(Method::PUT, "/api/v1/nothing", Some(&api.token), None, &[])
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

async fn a_body_with_a_duplicate_key_is_refused_and_changes_nothing(api: App) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/groups")
        .header(header::AUTHORIZATION, format!("Bearer {}", api.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"displayName":"Sales","description":"x","displayName":"Admins"}"#,
        ))
        .unwrap();
    let reply = api.send(request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let problem = &reply.body;
    assert!(problem.is_object(), "{problem}");
    assert_eq!(problem["code"], "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "displayName");
    let groups = api
        .request(Method::GET, "/api/v1/groups", Some(&api.token), None, &[])
        .await;
    assert_eq!(groups.body["value"], json!([]));
}

async fn health_and_readiness(api: App) {
    assert_eq!(
        api.request(Method::GET, "/healthz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.request(Method::GET, "/readyz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let reply = api.request(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

async fn the_jwks_publishes_public_signing_keys(api: App) {
    api.directory
        .oidc
        .rotate_signing_keys(
            api.tenant,
            &[
                tessera_oauth::keys::Algorithm::ES256,
                tessera_oauth::keys::Algorithm::EdDSA,
            ],
        )
        .await
        .unwrap();
    let reply = api
        .request(Method::GET, "/.well-known/jwks.json", None, None, &[])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "application/jwk-set+json"
    );
    let keys = reply.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert!(key.get("d").is_none(), "no private member");
        assert_eq!(key["use"], "sig");
    }
}

/// A form POST to the token endpoint, with optional `Authorization`.
async fn token_request(
    api: &App,
    authorization: Option<&str>,
    form: &str,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/oauth2/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(authorization) = authorization {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    let reply = api
        .send(request.body(Body::from(form.to_string())).unwrap())
        .await;
    let body = reply.json();
    (reply.status, reply.headers, body)
}

async fn client_credentials_issue_signed_access_tokens(api: App) {
    use base64::Engine as _;
    let client = api
        .post(
            "/api/v1/applications",
            json!({ "displayName": "Payroll sync" }),
        )
        .await;
    let client_app_id = client.body["appId"].as_str().unwrap().to_string();
    let client_id = client.body["id"].as_str().unwrap().to_string();
    api.post(
        "/api/v1/servicePrincipals",
        json!({ "appId": client_app_id }),
    )
    .await;
    let secret = api
        .post(
            &format!("/api/v1/applications/{client_id}/passwordCredentials"),
            json!({}),
        )
        .await;
    let secret = secret.body["secretText"].as_str().unwrap().to_string();
    let resource = api
        .post(
            "/api/v1/applications",
            json!({ "displayName": "Payroll API" }),
        )
        .await;
    let resource_app_id = resource.body["appId"].as_str().unwrap().to_string();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_app_id}:{secret}"))
    );
    let scope = format!("scope=api%3A%2F%2F{resource_app_id}%2F.default");

    let (status, headers, body) = token_request(
        &api,
        Some(&basic),
        &format!("grant_type=client_credentials&{scope}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    // The token verifies with the published JWKS and says who, for what, until when.
    let jwks = api
        .request(Method::GET, "/.well-known/jwks.json", None, None, &[])
        .await
        .body;
    let token = body["access_token"].as_str().unwrap();
    let (header_json, _) = tessera_oauth::jws::peek(token).unwrap();
    assert_eq!(header_json["typ"], "at+jwt");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header_json["kid"])
        .unwrap();
    let claims =
        tessera_oauth::jws::verify(token, jwk, &[tessera_oauth::keys::Algorithm::ES256]).unwrap();
    assert_eq!(claims["aud"], resource_app_id);
    assert_eq!(claims["client_id"], client_app_id);
    assert_eq!(claims["iss"], "http://localhost:8080");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    // The secret in the body works too.
    let (status, _, _) = token_request(
        &api,
        None,
        &format!(
            "grant_type=client_credentials&client_id={client_app_id}&client_secret={secret}&{scope}"
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Wrong secret: 401 invalid_client with a Basic challenge.
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_app_id}:not-the-secret"))
    );
    let (status, headers, body) = token_request(
        &api,
        Some(&wrong),
        &format!("grant_type=client_credentials&{scope}"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    // Other refusals.
    for (authorization, form, error) in [
        (
            Some(basic.as_str()),
            "grant_type=password&username=a&password=b".to_string(),
            "unauthorized_client",
        ),
        (
            Some(basic.as_str()),
            "grant_type=implicit".to_string(),
            "unsupported_grant_type",
        ),
        (
            Some(basic.as_str()),
            "grant_type=client_credentials".to_string(),
            "invalid_scope",
        ),
        (
            Some(basic.as_str()),
            format!(
                "grant_type=client_credentials&scope=api%3A%2F%2F{}%2F.default",
                uuid::Uuid::new_v4()
            ),
            "invalid_scope",
        ),
        (
            Some(basic.as_str()),
            format!("grant_type=client_credentials&client_secret={secret}&{scope}"),
            "invalid_request",
        ),
        (
            Some(basic.as_str()),
            format!("grant_type=client_credentials&grant_type=client_credentials&{scope}"),
            "invalid_request",
        ),
        (
            None,
            format!("grant_type=client_credentials&{scope}"),
            "invalid_client",
        ),
    ] {
        let (status, _, body) = token_request(&api, authorization, &form).await;
        assert!(status.is_client_error(), "{form}");
        assert_eq!(body["error"], error, "{form}");
    }
    // Every request is in the sign-in log as a workload sign-in.
    let log = api.get("/api/v1/auditLogs/signIns?limit=100").await;
    let entries = log.body["value"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["signInEventType"] == "servicePrincipal" && e["result"] == "success")
    );
    assert!(entries.iter().any(|e| e["failureCode"] == "invalid_client"));
    assert!(
        !log.body.to_string().contains(&secret),
        "no secret in the log"
    );
}

/// A DPoP proof (RFC 9449 §4.2) by `key` for a request.
fn dpop_proof(key: &tessera_oauth::keys::SigningKey, method: &str, url: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut jwk = key.public_jwk();
    for member in ["kid", "alg", "use"] {
        jwk.as_object_mut().unwrap().remove(member);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk });
    let claims = json!({ "jti": uuid::Uuid::new_v4(), "htm": method, "htu": url, "iat": now });
    let mut proof = URL_SAFE_NO_PAD.encode(header.to_string());
    proof.push('.');
    proof.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key.sign(proof.as_bytes()).unwrap();
    proof.push('.');
    proof.push_str(&URL_SAFE_NO_PAD.encode(signature));
    proof
}

async fn a_dpop_bound_token_sent_as_bearer_is_told_to_use_dpop(api: App) {
    use base64::Engine as _;
    let client = api
        .post("/api/v1/applications", json!({ "displayName": "Kiosk" }))
        .await;
    let client_app_id = client.body["appId"].as_str().unwrap().to_string();
    api.post(
        "/api/v1/servicePrincipals",
        json!({ "appId": client_app_id }),
    )
    .await;
    let secret = api
        .post(
            &format!(
                "/api/v1/applications/{}/passwordCredentials",
                client.body["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    let secret = secret.body["secretText"].as_str().unwrap().to_string();
    let resource = api
        .post(
            "/api/v1/applications",
            json!({ "displayName": "Kiosk API" }),
        )
        .await;
    let resource_app_id = resource.body["appId"].as_str().unwrap().to_string();
    let (_, key) = tessera_oauth::keys::generate(tessera_oauth::keys::Algorithm::ES256).unwrap();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/oauth2/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(
            header::AUTHORIZATION,
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{client_app_id}:{secret}"))
            ),
        )
        .header(
            "dpop",
            dpop_proof(&key, "POST", "http://localhost:8080/oauth2/token"),
        )
        .body(Body::from(format!(
            "grant_type=client_credentials&scope=api%3A%2F%2F{resource_app_id}%2F.default"
        )))
        .unwrap();
    let reply = api.send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    let tokens = reply.body;
    assert_eq!(tokens["token_type"], "DPoP");
    let token = tokens["access_token"].as_str().unwrap();

    // The management API: 401 that says the token is DPoP-bound, with a DPoP challenge.
    let refused = api
        .request(Method::GET, "/api/v1/me", Some(token), None, &[])
        .await;
    assert_problem(&refused, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("DPoP-bound"),
        "{:?}",
        refused.body
    );
    let challenge = refused.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.starts_with("DPoP error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(challenge.contains("algs=\"ES256"), "{challenge}");
    // A token that is not DPoP-bound still gets the plain answer.
    let plain = api
        .request(Method::GET, "/api/v1/me", Some("not-a-token"), None, &[])
        .await;
    assert_eq!(plain.headers[header::WWW_AUTHENTICATE], "Bearer");

    // Userinfo likewise (RFC 9449 §7.1).
    let userinfo = api
        .request(Method::GET, "/oauth2/userinfo", Some(token), None, &[])
        .await;
    assert_eq!(userinfo.status, StatusCode::UNAUTHORIZED);
    assert_eq!(userinfo.body["error"], "invalid_token");
    assert!(
        userinfo.body["error_description"]
            .as_str()
            .unwrap()
            .contains("DPoP-bound"),
        "{:?}",
        userinfo.body
    );
    assert!(
        userinfo.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("DPoP error=\"invalid_token\"")
    );
}

async fn applications_and_service_principals_are_found_by_app_id(api: App) {
    let app = api
        .post("/api/v1/applications", json!({ "displayName": "Payroll" }))
        .await;
    let app_id = app.body["appId"].as_str().unwrap();
    let found = api
        .get(&format!("/api/v1/applications/byAppId/{app_id}"))
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.body["id"], app.body["id"]);
    assert!(found.headers.contains_key(header::ETAG));
    let missing = api
        .get(&format!("/api/v1/servicePrincipals/byAppId/{app_id}"))
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "not_found");
    let sp = api
        .post("/api/v1/servicePrincipals", json!({ "appId": app_id }))
        .await;
    let found = api
        .get(&format!("/api/v1/servicePrincipals/byAppId/{app_id}"))
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.body["id"], sp.body["id"]);
    // The object id is not an appId.
    let object_id = app.body["id"].as_str().unwrap();
    let wrong = api
        .get(&format!("/api/v1/applications/byAppId/{object_id}"))
        .await;
    assert_problem(&wrong, StatusCode::NOT_FOUND, "not_found");
    let malformed = api.get("/api/v1/applications/byAppId/Payroll").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
}
async fn the_sign_in_log_retention_is_read_and_changed(api: App) {
    let path = "/api/v1/policies/signInLogRetentionPolicy";
    let default = api.get(path).await;
    assert_eq!(default.status, StatusCode::OK);
    assert_eq!(
        default.body,
        json!({"retentionDays": 30, "maxEntries": 1_000_000})
    );
    let bad = api
        .request(
            Method::PATCH,
            path,
            Some(&api.token),
            Some(json!({"retentionDays": 0})),
            &[],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{:?}", bad.body);
    let changed = api
        .request(
            Method::PATCH,
            path,
            Some(&api.token),
            Some(json!({"maxEntries": 5000})),
            &[],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(
        api.get(path).await.body,
        json!({"retentionDays": 30, "maxEntries": 5000})
    );
}

tessera_testkit::both_backends!(
    setup = app;
    unauthenticated_requests_get_401_problems,
    create_returns_201_with_location_and_etag,
    bad_input_is_refused_with_the_field_and_changes_nothing,
    stale_if_match_gets_412,
    scoped_administrators_get_403_outside_their_unit,
    correlation_ids_are_echoed_when_safe,
    secrets_are_shown_once,
    openapi_document_is_3_1_and_complete,
    every_operation_documents_its_problems_as_problem_json,
    a_known_path_with_another_method_is_a_405_problem_with_allow,
    a_body_with_a_duplicate_key_is_refused_and_changes_nothing,
    health_and_readiness,
    the_jwks_publishes_public_signing_keys,
    client_credentials_issue_signed_access_tokens,
    a_dpop_bound_token_sent_as_bearer_is_told_to_use_dpop,
    applications_and_service_principals_are_found_by_app_id,
    the_sign_in_log_retention_is_read_and_changed,
);

//! What the edge refuses or adds before any handler runs, through the real router
//! on SQLite and PostgreSQL: NUL characters anywhere a client can put them, CORS
//! for single-page applications, HSTS only over HTTPS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;
use support::{App, Reply, app};

fn assert_refused(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        reply.text
    );
}

/// Issue 11: NUL bytes gave 503 or 500 on PostgreSQL (and nothing on SQLite).
/// Both backends now refuse them the same way, in the form each client reads.
async fn nul_bytes_are_refused_at_the_edge(edge: App) {
    for path in [
        "/api/v1/users?search=a%00b",
        "/api/v1/users/byPrincipalName/a%00b@contoso.com",
        "/api/v1/auditLogs/directoryAudits?actorId=a%00b",
        "/api/v1/auditLogs/directoryAudits?action=a%00b",
    ] {
        let reply = edge.get(path).await;
        assert_refused(&reply, path);
        assert_eq!(
            reply.headers[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(reply.json()["code"], "validation_failed");
    }
    let reply = edge
        .post(
            "/api/v1/users",
            json!({ "userPrincipalName": "nul@contoso.com", "displayName": "a\u{0}b" }),
        )
        .await;
    assert_refused(&reply, "a JSON string with NUL");
    // Nothing was created.
    let found = edge
        .get("/api/v1/users/byPrincipalName/nul@contoso.com")
        .await;
    assert_eq!(found.status, StatusCode::NOT_FOUND);
    // An escaped backslash before "u0000" is not a NUL.
    let reply = edge
        .post(
            "/api/v1/users",
            json!({ "userPrincipalName": "slash@contoso.com", "displayName": "a\\u0000b" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);

    let reply = edge
        .post_form(
            "/oauth2/token",
            "grant_type=client_credentials&client_id=a%00b&client_secret=x",
        )
        .await;
    assert_refused(&reply, "token endpoint");
    assert_eq!(reply.json()["error"], "invalid_request");

    let reply = edge
        .post_form("/signin/name", "username=a%00b&csrf=x")
        .await;
    assert_refused(&reply, "sign-in page");
    assert!(
        reply.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // The server still answers everyone else.
    assert_eq!(
        edge.get("/api/v1/users?search=adele").await.status,
        StatusCode::OK
    );
}

/// Issue 11: HSTS only where the client came over HTTPS (RFC 6797 §7.2).
async fn hsts_only_over_https(edge: App) {
    let plain = edge
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(
        plain
            .headers
            .get(header::STRICT_TRANSPORT_SECURITY)
            .is_none()
    );
    let mut over_tls = Request::get("/healthz").body(Body::empty()).unwrap();
    over_tls
        .extensions_mut()
        .insert(tessera_server::tls::PeerCertificates(Vec::new()));
    let tls = edge.send(over_tls).await;
    assert_eq!(
        tls.headers[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
}

/// Issue 11: CORS for single-page applications: exactly the origins of registered
/// SPA redirect URIs for the token, userinfo and revocation endpoints; any origin
/// for discovery and keys; never credentials.
async fn cors_for_registered_spa_origins(edge: App) {
    let app = edge
        .post(
            "/api/v1/applications",
            json!({ "displayName": "SPA", "spa": { "redirectUris": ["https://spa.contoso.com/callback"] } }),
        )
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{}", app.text);
    let preflight = |origin: &str, path: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri(path)
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type, dpop")
            .body(Body::empty())
            .unwrap()
    };
    for path in ["/oauth2/token", "/oauth2/userinfo", "/oauth2/revoke"] {
        let allowed = edge.send(preflight("https://spa.contoso.com", path)).await;
        assert_eq!(allowed.status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(
            allowed.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://spa.contoso.com"
        );
        assert!(
            allowed.headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap()
                .contains("dpop")
        );
        assert!(
            allowed
                .headers
                .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
                .is_none()
        );
        let refused = edge.send(preflight("https://evil.example", path)).await;
        assert!(
            refused
                .headers
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }
    // The actual request carries the origin back; another origin gets nothing.
    let token = |origin: &str| {
        Request::post("/oauth2/token")
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(
                "grant_type=authorization_code&code=x&client_id=y",
            ))
            .unwrap()
    };
    let answered = edge.send(token("https://spa.contoso.com")).await;
    assert_eq!(answered.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answered.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://spa.contoso.com"
    );
    let other = edge.send(token("https://evil.example")).await;
    assert!(
        other
            .headers
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    // Discovery and keys are public.
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
    ] {
        let reply = edge
            .send(
                Request::get(path)
                    .header(header::ORIGIN, "https://anyone.example")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }
    // The management API is not for other origins.
    let api = edge
        .send(
            Request::get("/api/v1/users")
                .header(header::ORIGIN, "https://spa.contoso.com")
                .header(header::AUTHORIZATION, format!("Bearer {}", edge.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(
        api.headers
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

/// Issue 11: userinfo takes the access token from a POST form (RFC 6750 §2.2),
/// and refuses it sent two ways at once.
async fn userinfo_reads_a_form_token(edge: App) {
    let reply = edge
        .post_form("/oauth2/userinfo", "access_token=not-a-token")
        .await;
    // The token was read (and is invalid), not ignored as missing.
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert!(
        reply.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let both = edge
        .send(
            Request::post("/oauth2/userinfo")
                .header(header::AUTHORIZATION, "Bearer abc")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("access_token=abc"))
                .unwrap(),
        )
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert_eq!(both.json()["error"], "invalid_request");
}

/// Refusals made before a SCIM handler runs (a body too large, a NUL, a
/// method the path does not answer) are SCIM errors, as SCIM clients read them
/// (RFC 7644 §3.12), and change nothing.
async fn scim_refusals_at_the_edge_are_scim_errors(edge: App) {
    let scim_error = |reply: &Reply, status: StatusCode| {
        assert_eq!(reply.status, status, "{}", reply.text);
        assert_eq!(reply.headers[header::CONTENT_TYPE], "application/scim+json");
        let body = reply.json();
        assert_eq!(
            body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
            "{body}"
        );
        assert_eq!(body["status"], status.as_u16().to_string());
    };
    let huge = edge
        .post(
            "/scim/v2/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                   "userName": "huge@contoso.com", "displayName": "x".repeat(2 << 20)}),
        )
        .await;
    scim_error(&huge, StatusCode::PAYLOAD_TOO_LARGE);
    let nul = edge
        .post(
            "/scim/v2/Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                   "userName": "nul@contoso.com", "displayName": "a\u{0}b"}),
        )
        .await;
    scim_error(&nul, StatusCode::BAD_REQUEST);
    let wrong = edge
        .request(
            Method::PATCH,
            "/scim/v2/Users",
            Some(&edge.token),
            Some(json!({})),
            &[],
        )
        .await;
    scim_error(&wrong, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong.headers.contains_key(header::ALLOW));
    // Elsewhere the API's problem document as before.
    let wrong = edge
        .request(
            Method::PATCH,
            "/api/v1/users",
            Some(&edge.token),
            Some(json!({})),
            &[],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    for name in ["huge", "nul"] {
        let listed = edge
            .get(&format!(
                "/scim/v2/Users?filter=userName%20sw%20%22{name}%22"
            ))
            .await;
        assert_eq!(
            listed.json()["totalResults"],
            0,
            "{name}: nothing was created"
        );
    }
}

tessera_testkit::both_backends!(
    setup = app;
    scim_refusals_at_the_edge_are_scim_errors,
    nul_bytes_are_refused_at_the_edge,
    hsts_only_over_https,
    cors_for_registered_spa_origins,
    userinfo_reads_a_form_token,
);

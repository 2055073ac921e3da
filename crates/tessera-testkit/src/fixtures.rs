//! The setup most service and API tests begin with.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use tessera_core::crypto::SealingKey;
use tessera_core::{Clock, SystemClock, TenantId, Timestamp};
use tessera_directory::model::{Application, ServicePrincipal};
use tessera_service::authn::AuthSettings;
use tessera_service::oauth::TokenContext;
use tessera_service::{App, Context, CreatedPassword};
use uuid::Uuid;

/// The tenant's first administrator, as bootstrap makes it on an empty store.
pub struct Admin {
    /// Acting as the administrator with the bootstrap token (correlation id `test`,
    /// from 127.0.0.1).
    pub ctx: Context,
    pub user_id: Uuid,
    /// The bootstrap token, for a bearer header.
    pub token: String,
}

impl Admin {
    pub fn tenant(&self) -> TenantId {
        self.ctx.tenant
    }
}

/// Bootstraps the tenant "Contoso" (contoso.com) on the directory's empty store.
pub async fn bootstrap_admin(directory: &App) -> Admin {
    let bootstrap = directory
        .directory
        .bootstrap_if_empty("Contoso", "contoso.com")
        .await
        .unwrap()
        .expect("a fresh store is bootstrapped");
    let token = bootstrap.token.expose().to_string();
    Admin {
        ctx: token_context(directory, &token).await,
        user_id: bootstrap.user_id,
        token,
    }
}

/// The context of a caller authenticated with a personal access token (correlation
/// id `test`, from 127.0.0.1).
pub async fn token_context(directory: &App, token: &str) -> Context {
    let (tenant, caller) = directory.directory.authenticate_token(token).await.unwrap();
    Context {
        tenant,
        caller,
        correlation_id: "test".to_string(),
        client_address: Some("127.0.0.1".to_string()),
    }
}

/// Authentication settings for a test directory: issuer name "Contoso", a fresh
/// sealing key, no breached-password list, one hash at a time, no CRL fetcher.
/// Change a field with struct update syntax.
pub fn auth_settings(public_url: &str) -> AuthSettings {
    AuthSettings {
        public_url: public_url.to_string(),
        issuer_name: "Contoso".to_string(),
        sealing_key: SealingKey::generate().unwrap().0,
        breached_passwords: None,
        max_concurrent_hashes: 1,
        revocation_fetcher: None,
    }
}

/// A tenant with a workload (an application, its service principal and a secret)
/// and a resource application, and the context of a token request.
pub struct Workload {
    pub admin: Context,
    pub client: Application,
    pub principal: ServicePrincipal,
    pub secret: CreatedPassword,
    pub resource: Application,
    pub ctx: TokenContext,
}

impl Workload {
    /// The client's `Authorization: Basic` header with `secret`.
    pub fn basic(&self, secret: &str) -> String {
        basic_authorization(&self.client.app_id.to_string(), secret)
    }

    /// A client-credentials token request for the resource (`api://<appId>/.default`).
    pub fn client_credentials_form(&self) -> BTreeMap<String, String> {
        [
            ("grant_type".to_string(), "client_credentials".to_string()),
            (
                "scope".to_string(),
                format!("api://{}/.default", self.resource.app_id),
            ),
        ]
        .into()
    }
}

/// An `Authorization: Basic` header for a client id and secret.
pub fn basic_authorization(client_id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
    )
}

/// Bootstraps the directory's empty store and adds a workload ("Sync") and a
/// resource ("API") to it.
pub async fn workload(directory: &App) -> Workload {
    let admin = bootstrap_admin(directory).await.ctx;
    let client = directory
        .directory
        .create_application(&admin, serde_json::json!({ "displayName": "Sync" }))
        .await
        .unwrap();
    let principal = directory
        .directory
        .create_service_principal(&admin, serde_json::json!({ "appId": client.app_id }))
        .await
        .unwrap();
    let secret = directory
        .directory
        .add_password(
            &admin,
            tessera_service::CredentialHolder::Application,
            client.id,
            serde_json::json!({}),
        )
        .await
        .unwrap();
    let resource = directory
        .directory
        .create_application(&admin, serde_json::json!({ "displayName": "API" }))
        .await
        .unwrap();
    let ctx = TokenContext {
        dpop: None,
        client_certificates: Vec::new(),
        tenant: admin.tenant,
        issuer: "https://id.contoso.com".into(),
        correlation_id: "c".into(),
        client_address: None,
    };
    Workload {
        admin,
        client,
        principal,
        secret,
        resource,
        ctx,
    }
}

/// The system clock plus an offset a test can move forward.
#[derive(Default)]
pub struct ShiftedClock {
    pub offset_micros: AtomicI64,
}

impl ShiftedClock {
    pub fn advance_seconds(&self, seconds: i64) {
        self.offset_micros
            .fetch_add(seconds * 1_000_000, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        let now = SystemClock.now();
        Timestamp::from_unix_micros(now.unix_micros() + self.offset_micros.load(Ordering::SeqCst))
    }
}

/// One page of the sign-in log as `admin` queries it; `query` is the API's filter
/// as JSON (`result`, `limit`, `cursor`...).
pub async fn sign_in_page(
    app: &App,
    admin: &Context,
    query: serde_json::Value,
) -> tessera_service::Page<tessera_service::authn::SignInEntry> {
    let filter: tessera_service::authn::SignInFilter =
        serde_json::from_value(query).expect("a sign-in log filter");
    app.sign_in
        .query_log(admin, &filter)
        .await
        .expect("the sign-in log answers")
}

/// The PKCE verifier of [`authorize_code`]'s requests (RFC 7636, appendix B).
pub const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// An authorization code request (`response_type=code`, PKCE with
/// [`PKCE_VERIFIER`]) of `client_id` for `scope`, in the browser session
/// `session`, as the authorization endpoint answers it.
pub async fn authorize_code(
    app: &App,
    ctx: &tessera_service::oauth::AuthorizeContext,
    session: &tessera_service::authn::SessionInfo,
    request: (&str, &str, &str),
) -> tessera_service::oauth::AuthorizeOutcome {
    authorize_code_with(app, ctx, session, request, &[]).await
}

/// [`authorize_code`] with more parameters (`claims`, `prompt`...).
pub async fn authorize_code_with(
    app: &App,
    ctx: &tessera_service::oauth::AuthorizeContext,
    session: &tessera_service::authn::SessionInfo,
    (client_id, redirect_uri, scope): (&str, &str, &str),
    extra: &[(&str, &str)],
) -> tessera_service::oauth::AuthorizeOutcome {
    let params = [
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", "s1"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ];
    let raw = tessera_oauth::authorize::RawAuthorization {
        params: params
            .into_iter()
            .chain(extra.iter().copied())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        resources: Vec::new(),
    };
    app.oidc.authorize(ctx, &raw, Some(session)).await
}

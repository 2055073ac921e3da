//! Shared by the service test files (each uses what it needs).
#![allow(dead_code)]

use tessera_core::{Clock, SystemClock, Timestamp};

/// The system clock plus an offset a test can move forward.
#[derive(Default)]
pub struct ShiftedClock {
    pub offset_micros: std::sync::atomic::AtomicI64,
}

impl ShiftedClock {
    pub fn advance_seconds(&self, seconds: i64) {
        self.offset_micros
            .fetch_add(seconds * 1_000_000, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        let now = SystemClock.now();
        Timestamp::from_unix_micros(
            now.unix_micros() + self.offset_micros.load(std::sync::atomic::Ordering::SeqCst),
        )
    }
}

/// Instantiates async test functions on SQLite and on PostgreSQL, each on a fresh,
/// empty store: `on_both_backends!(a, b)` calls `a(store)`;
/// `on_both_backends!(with super::harness; a, b)` calls `a(harness(store).await)`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    (with $setup:path; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($setup(tessera_store_sql::testing::sqlite_temp().await).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($setup(tessera_store_sql::testing::postgres_temp().await).await).await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(tessera_store_sql::testing::sqlite_temp().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(tessera_store_sql::testing::postgres_temp().await).await;
                }
            )*
        }
    };
}

/// A tenant with a workload (an application, its service principal and a secret)
/// and a resource application, and the context of a token request.
pub struct Workload {
    pub admin: tessera_service::Context,
    pub client: tessera_directory::model::Application,
    pub principal: tessera_directory::model::ServicePrincipal,
    pub secret: tessera_service::CreatedPassword,
    pub resource: tessera_directory::model::Application,
    pub ctx: tessera_service::oauth::TokenContext,
}

pub async fn workload(directory: &tessera_service::Directory) -> Workload {
    let bootstrap = directory
        .bootstrap_if_empty("Contoso", "contoso.com")
        .await
        .unwrap()
        .unwrap();
    let (tenant, caller) = directory
        .authenticate_token(bootstrap.token.expose())
        .await
        .unwrap();
    let admin = tessera_service::Context {
        tenant,
        caller,
        correlation_id: "t".into(),
        client_address: None,
    };
    let client = directory
        .create_application(&admin, serde_json::json!({ "displayName": "Sync" }))
        .await
        .unwrap();
    let principal = directory
        .create_service_principal(&admin, serde_json::json!({ "appId": client.app_id }))
        .await
        .unwrap();
    let secret = directory
        .add_application_password(&admin, client.id, serde_json::json!({}))
        .await
        .unwrap();
    let resource = directory
        .create_application(&admin, serde_json::json!({ "displayName": "API" }))
        .await
        .unwrap();
    let ctx = tessera_service::oauth::TokenContext {
        dpop: None,
        client_certificates: Vec::new(),
        tenant,
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

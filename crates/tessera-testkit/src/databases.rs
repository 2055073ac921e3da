//! Fresh, isolated stores for tests: a SQLite file in a temporary directory, or a new
//! PostgreSQL database that is dropped when the store is.
//!
//! PostgreSQL is found at `TESSERA_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/postgres`. When it cannot be reached the test
//! fails loudly; `.ci/run` starts it.

use std::sync::Arc;

use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use tessera_store::Store;
use tessera_store_sql::{Options, SqlStore};
use uuid::Uuid;

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A fresh, empty store.
    pub async fn store(self) -> Arc<dyn Store> {
        self.store_with_url().await.0
    }

    /// A fresh, empty store and the URL of its database, for tests that open a
    /// connection of their own (to tamper with the data as an intruder would).
    pub async fn store_with_url(self) -> (Arc<dyn Store>, String) {
        match self {
            Backend::Sqlite => sqlite_temp_with_url().await,
            Backend::Postgres => postgres_temp_with_url().await,
        }
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// The URL of database `name` on the test server.
pub fn postgres_url_for(name: &str) -> String {
    let admin = postgres_admin_url();
    match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => admin,
    }
}

/// An empty PostgreSQL database of its own, dropped with this value.
pub struct PostgresDatabase {
    name: String,
    url: String,
}

impl PostgresDatabase {
    pub async fn create() -> PostgresDatabase {
        sqlx::any::install_default_drivers();
        let name = format!("tessera_test_{}", Uuid::new_v4().simple());
        let admin = postgres_admin_url();
        let mut conn = AnyConnection::connect(&admin).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is needed for this test and is not reachable at {admin} ({error}). \
                 Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
            )
        });
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        let url = postgres_url_for(&name);
        PostgresDatabase { name, url }
    }

    /// [`PostgresDatabase::create`] for a test that has no runtime of its own.
    pub fn create_blocking() -> PostgresDatabase {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(PostgresDatabase::create())
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside a test's runtime; do the async work on a thread of its own.
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(mut conn) = AnyConnection::connect(&postgres_admin_url()).await {
                    let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::raw_sql(AssertSqlSafe(statement))
                        .execute(&mut conn)
                        .await;
                }
            });
        });
        let _ = handle.join();
    }
}

pub async fn postgres_temp() -> Arc<dyn Store> {
    Backend::Postgres.store().await
}

pub async fn sqlite_temp() -> Arc<dyn Store> {
    Backend::Sqlite.store().await
}

/// A fresh SQLite store whose reading pool has only `connections` connections and
/// gives up waiting for one after three seconds: for tests that a request never
/// holds one connection while it waits for another.
pub async fn sqlite_small_pool(connections: u32) -> Arc<dyn Store> {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::sqlite_file(&dir.path().join("tessera.db"));
    options.max_connections = connections;
    options.acquire_timeout = std::time::Duration::from_secs(3);
    let store = SqlStore::open_with_guard(&options, Some(Box::new(dir)))
        .await
        .unwrap();
    Arc::new(store)
}

async fn postgres_temp_with_url() -> (Arc<dyn Store>, String) {
    let database = PostgresDatabase::create().await;
    let url = database.url.clone();
    let mut options = Options::new(url.clone());
    options.max_connections = 8;
    let store = SqlStore::open_with_guard(&options, Some(Box::new(database)))
        .await
        .unwrap();
    (Arc::new(store), url)
}

async fn sqlite_temp_with_url() -> (Arc<dyn Store>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.db");
    let options = Options::sqlite_file(&file);
    let store = SqlStore::open_with_guard(&options, Some(Box::new(dir)))
        .await
        .unwrap();
    (Arc::new(store), format!("sqlite://{}", file.display()))
}

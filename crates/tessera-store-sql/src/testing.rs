//! Fresh, isolated stores for tests: a SQLite file in a temporary directory, or a new
//! PostgreSQL database that is dropped when the store is.
//!
//! PostgreSQL is found at `TESSERA_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/postgres`. When it cannot be reached the test
//! fails loudly; `.ci/run` starts it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use tessera_store::Store;
use uuid::Uuid;

use crate::{Options, SqlStore};

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

struct TempDatabase {
    name: String,
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
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

/// Creates an empty PostgreSQL database and returns its name; dropped with the guard.
pub async fn create_postgres_database() -> (String, Box<dyn std::any::Any + Send + Sync>) {
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
    (name.clone(), Box::new(TempDatabase { name }))
}

pub async fn postgres_temp() -> Arc<dyn Store> {
    postgres_temp_with_url().await.0
}

pub async fn sqlite_temp() -> Arc<dyn Store> {
    sqlite_temp_with_url().await.0
}

/// A fresh PostgreSQL store and the URL of its database, for tests that open a
/// connection of their own (to tamper with the data as an intruder would).
pub async fn postgres_temp_with_url() -> (Arc<dyn Store>, String) {
    let (name, guard) = create_postgres_database().await;
    let url = postgres_url_for(&name);
    let mut options = Options::new(url.clone());
    options.max_connections = 8;
    let store = SqlStore::open_with_guard(&options, Some(guard))
        .await
        .unwrap();
    (Arc::new(store), url)
}

/// A fresh SQLite store and the URL of its file (see [`postgres_temp_with_url`]).
pub async fn sqlite_temp_with_url() -> (Arc<dyn Store>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.db");
    let options = Options::sqlite_file(&file);
    let store = SqlStore::open_with_guard(&options, Some(Box::new(dir)))
        .await
        .unwrap();
    (Arc::new(store), format!("sqlite://{}", file.display()))
}

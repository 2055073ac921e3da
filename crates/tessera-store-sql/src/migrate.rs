//! Versioned migrations, embedded in the binary and applied at start.
//!
//! Each backend has its own folder of numbered SQL files. Applied migrations are
//! recorded with a checksum; a migration that changed after it was applied, or a
//! database that has migrations this build does not know, stops the start with a clear
//! error rather than running against a schema it does not understand. Several nodes
//! starting at once on PostgreSQL take an advisory lock, so each migration runs once.

use sqlx::{AnyPool, AssertSqlSafe, Row};
use tessera_core::crypto::sha256_hex;
use tessera_store::{Result, StoreError};

use crate::{Backend, backend_error};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS_SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "directory",
        sql: include_str!("../migrations/sqlite/0001_directory.sql"),
    },
    Migration {
        version: 2,
        name: "authentication",
        sql: include_str!("../migrations/sqlite/0002_authentication.sql"),
    },
    Migration {
        version: 3,
        name: "audit_truncate",
        sql: include_str!("../migrations/sqlite/0003_audit_truncate.sql"),
    },
    Migration {
        version: 4,
        name: "sign_in_log",
        sql: include_str!("../migrations/sqlite/0004_sign_in_log.sql"),
    },
    Migration {
        version: 5,
        name: "job_leases",
        sql: include_str!("../migrations/sqlite/0005_job_leases.sql"),
    },
    Migration {
        version: 6,
        name: "sign_in_lookups",
        sql: include_str!("../migrations/sqlite/0006_sign_in_lookups.sql"),
    },
    // 7 is PostgreSQL's alone (audit heads written once a batch).
    Migration {
        version: 8,
        name: "risk_detections",
        sql: include_str!("../migrations/sqlite/0008_risk_detections.sql"),
    },
    Migration {
        version: 9,
        name: "export_positions",
        sql: include_str!("../migrations/sqlite/0009_export_positions.sql"),
    },
    Migration {
        version: 10,
        name: "workload_detections",
        sql: include_str!("../migrations/sqlite/0010_workload_detections.sql"),
    },
    Migration {
        version: 11,
        name: "numbers_from_index",
        sql: include_str!("../migrations/sqlite/0011_numbers_from_index.sql"),
    },
    Migration {
        version: 12,
        name: "revocations",
        sql: include_str!("../migrations/sqlite/0012_revocations.sql"),
    },
];

pub const MIGRATIONS_POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "directory",
        sql: include_str!("../migrations/postgres/0001_directory.sql"),
    },
    Migration {
        version: 2,
        name: "authentication",
        sql: include_str!("../migrations/postgres/0002_authentication.sql"),
    },
    Migration {
        version: 3,
        name: "audit_truncate",
        sql: include_str!("../migrations/postgres/0003_audit_truncate.sql"),
    },
    Migration {
        version: 4,
        name: "sign_in_log",
        sql: include_str!("../migrations/postgres/0004_sign_in_log.sql"),
    },
    Migration {
        version: 5,
        name: "job_leases",
        sql: include_str!("../migrations/postgres/0005_job_leases.sql"),
    },
    Migration {
        version: 6,
        name: "sign_in_lookups",
        sql: include_str!("../migrations/postgres/0006_sign_in_lookups.sql"),
    },
    Migration {
        version: 7,
        name: "audit_head_batches",
        sql: include_str!("../migrations/postgres/0007_audit_head_batches.sql"),
    },
    Migration {
        version: 8,
        name: "risk_detections",
        sql: include_str!("../migrations/postgres/0008_risk_detections.sql"),
    },
    Migration {
        version: 9,
        name: "export_positions",
        sql: include_str!("../migrations/postgres/0009_export_positions.sql"),
    },
    Migration {
        version: 10,
        name: "workload_detections",
        sql: include_str!("../migrations/postgres/0010_workload_detections.sql"),
    },
    Migration {
        version: 11,
        name: "revocations",
        sql: include_str!("../migrations/postgres/0011_revocations.sql"),
    },
];

/// An arbitrary, fixed key for PostgreSQL's advisory lock.
const MIGRATION_LOCK_KEY: i64 = 0x0074_6573_7365_7261;

pub async fn run(pool: &AnyPool, backend: Backend) -> Result<()> {
    let migrations = match backend {
        Backend::Sqlite => MIGRATIONS_SQLITE,
        Backend::Postgres => MIGRATIONS_POSTGRES,
    };
    let mut conn = pool.acquire().await.map_err(backend_error)?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *conn)
            .await
            .map_err(backend_error)?;
    }
    let outcome = apply(&mut conn, backend, migrations).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *conn)
            .await
            .map_err(backend_error)?;
    }
    outcome
}

async fn apply(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    migrations: &[Migration],
) -> Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS tessera_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         checksum TEXT NOT NULL, applied BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(backend_error)?;
    let rows = sqlx::query("SELECT version, checksum FROM tessera_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await
        .map_err(backend_error)?;
    let mut applied = Vec::new();
    for row in rows {
        let version: i64 = row.try_get("version").map_err(backend_error)?;
        let checksum: String = row.try_get("checksum").map_err(backend_error)?;
        applied.push((version, checksum));
    }
    for (version, checksum) in &applied {
        match migrations.iter().find(|m| m.version == *version) {
            None => return Err(StoreError::SchemaTooNew(*version)),
            Some(migration) if sha256_hex(migration.sql.as_bytes()) != *checksum => {
                return Err(StoreError::MigrationChanged { version: *version });
            }
            Some(_) => {}
        }
    }
    for migration in migrations {
        if applied.iter().any(|(v, _)| *v == migration.version) {
            continue;
        }
        let begin = match backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        sqlx::raw_sql(begin)
            .execute(&mut *conn)
            .await
            .map_err(backend_error)?;
        let result = async {
            sqlx::raw_sql(AssertSqlSafe(migration.sql)).execute(&mut *conn).await?;
            let now = tessera_core::SystemClock;
            use tessera_core::Clock;
            sqlx::query("INSERT INTO tessera_migrations (version, name, checksum, applied) VALUES ($1, $2, $3, $4)")
                .bind(migration.version)
                .bind(migration.name)
                .bind(sha256_hex(migration.sql.as_bytes()))
                .bind(now.now().unix_micros())
                .execute(&mut *conn)
                .await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                sqlx::raw_sql("COMMIT")
                    .execute(&mut *conn)
                    .await
                    .map_err(backend_error)?;
                tracing::info!(
                    version = migration.version,
                    name = migration.name,
                    "applied migration"
                );
            }
            Err(error) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                return Err(StoreError::Backend(format!(
                    "migration {} failed: {error}",
                    migration.version
                )));
            }
        }
    }
    Ok(())
}

//! Commands that work on the database directly, without a running server.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use serde_json::json;
use tessera_core::SystemClock;
use tessera_server::{Config, Overrides};
use tessera_service::Directory;
use tessera_store::Store;

use crate::cli::{BackupArgs, DatabaseArgs, Output, RecoveryArgs, RestoreArgs};
use crate::output;

fn config(database: &DatabaseArgs) -> anyhow::Result<Config> {
    let overrides = Overrides {
        listen: None,
        data_dir: database.data_dir.clone(),
    };
    let mut config =
        Config::load(database.config.as_deref(), &overrides).map_err(|e| anyhow!(e))?;
    if let Some(url) = &database.database_url {
        config.database_url = Some(url.clone());
    }
    Ok(config)
}

/// Opens the database; for SQLite the file must already exist (an offline command
/// never creates an empty database by mistake).
async fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if config.is_embedded() {
        let file = config.data_dir.join("tessera.db");
        if !file.exists() {
            bail!(
                "no database at {} (give --data-dir, --config or --database-url)",
                file.display()
            );
        }
    }
    tessera_server::open_store(config).await
}

pub async fn audit_verify(database: &DatabaseArgs, out: Output) -> anyhow::Result<ExitCode> {
    let config = config(database)?;
    let store = open(&config).await?;
    let tenants = store.tenants().await.map_err(|e| anyhow!("{e}"))?;
    let mut intact = true;
    let mut reports = Vec::new();
    for tenant in &tenants {
        let report = tessera_service::audit::verify_chain(store.as_ref(), tenant.id)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        intact &= report.intact;
        if out == Output::Table {
            match &report.first_problem {
                None => println!(
                    "tenant {} ({}): intact, {} events; head {}:{}",
                    tenant.id,
                    tenant.name,
                    report.events_checked,
                    report.head_seq,
                    report.head_hash
                ),
                Some(problem) => println!(
                    "tenant {} ({}): BROKEN at event {}: {:?}: {} ({} events verified before it)",
                    tenant.id,
                    tenant.name,
                    problem.seq,
                    problem.kind,
                    problem.detail,
                    report.events_checked
                ),
            }
        }
        reports.push(report);
    }
    if out == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "intact": intact, "tenants": reports }))?
        );
    }
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn backup(args: &BackupArgs, out: Output) -> anyhow::Result<()> {
    let config = config(&args.database)?;
    if !config.is_embedded() {
        bail!("backup copies the embedded SQLite database; back PostgreSQL up with pg_dump");
    }
    if args.out.exists() {
        bail!("{} exists already; choose a new file", args.out.display());
    }
    let file = config.data_dir.join("tessera.db");
    if !file.exists() {
        bail!("no database at {}", file.display());
    }
    let store = tessera_store_sql::SqlStore::open(&tessera_store_sql::Options::sqlite_file(&file))
        .await
        .map_err(|e| anyhow!("cannot open the database: {e}"))?;
    store
        .sqlite_backup(&args.out)
        .await
        .map_err(|e| anyhow!("backup failed: {e}"))?;
    make_private(&args.out)?;
    output::done(
        out,
        &format!("backed up {} to {}", file.display(), args.out.display()),
    );
    Ok(())
}

pub async fn restore(args: &RestoreArgs, out: Output) -> anyhow::Result<()> {
    let config = config(&args.database)?;
    if !config.is_embedded() {
        bail!("restore replaces the embedded SQLite database; restore PostgreSQL with pg_restore");
    }
    if !args.file.is_file() {
        bail!("{} is not a file", args.file.display());
    }
    let target = config.data_dir.join("tessera.db");
    if target.exists() && !args.force {
        bail!(
            "{} exists; stop the server and pass --force to replace it",
            target.display()
        );
    }
    std::fs::create_dir_all(&config.data_dir)?;
    // Work on a copy next to the target: check that it is a Tessera database (bringing
    // its schema up to date) with intact audit chains before anything is replaced.
    let staging = config.data_dir.join("restoring.db");
    let _ = std::fs::remove_file(&staging);
    std::fs::copy(&args.file, &staging)
        .with_context(|| format!("cannot copy {}", args.file.display()))?;
    let checked = check_backup(&staging).await;
    if let Err(error) = checked {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(config.data_dir.join(format!("restoring.db{suffix}")));
        }
        return Err(error.context(format!("refusing to restore {}", args.file.display())));
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(config.data_dir.join(format!("restoring.db{suffix}")));
    }
    make_private(&staging)?;
    // Move the checked copy in first; only then drop the old database's WAL files.
    std::fs::rename(&staging, &target).context("cannot move the restored database into place")?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(config.data_dir.join(format!("tessera.db{suffix}")));
    }
    output::done(
        out,
        &format!("restored {} from {}", target.display(), args.file.display()),
    );
    Ok(())
}

/// Database copies hold the directory: readable by their owner only.
fn make_private(path: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    Ok(())
}

async fn check_backup(file: &std::path::Path) -> anyhow::Result<()> {
    let candidate =
        tessera_store_sql::SqlStore::open(&tessera_store_sql::Options::sqlite_file(file))
            .await
            .map_err(|e| anyhow!("it is not a readable Tessera database: {e}"))?;
    let tenants = candidate.tenants().await.map_err(|e| anyhow!("{e}"))?;
    if tenants.is_empty() {
        bail!("it holds no tenant");
    }
    for tenant in &tenants {
        let report = tessera_service::audit::verify_chain(&candidate, tenant.id)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        if !report.intact {
            bail!("its audit trail is broken for tenant {}", tenant.id);
        }
    }
    candidate.close().await;
    Ok(())
}

pub async fn migrate(database: &DatabaseArgs, out: Output) -> anyhow::Result<()> {
    let config = config(database)?;
    let store = tessera_server::open_store(&config).await?;
    output::done(
        out,
        &format!("the {} database is up to date", store.backend()),
    );
    Ok(())
}

pub async fn recovery_token(args: &RecoveryArgs, out: Output) -> anyhow::Result<()> {
    let config = config(&args.database)?;
    let store = open(&config).await?;
    let tenant = store
        .default_tenant()
        .await
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("the database has no tenant"))?;
    let directory = Directory::new(store, Arc::new(SystemClock));
    let issued = directory
        .recovery_token(tenant, &args.user)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    match out {
        Output::Json => println!(
            "{}",
            json!({ "userPrincipalName": issued.user_principal_name, "token": issued.token.expose(), "expiresDateTime": issued.expires })
        ),
        Output::Table => {
            println!(
                "Recovery token for {}, valid until {} and shown only now:",
                issued.user_principal_name, issued.expires
            );
            println!("    {}", issued.token.expose());
        }
    }
    Ok(())
}

//! Commands that work on the database directly, without a running server.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use serde_json::json;
use tessera_core::SystemClock;
use tessera_server::{Config, Overrides};
use tessera_service::App;
use tessera_store::Store;

use crate::cli::{
    BackupArgs, CheckpointArgs, DatabaseArgs, Output, RecoveryArgs, RestoreArgs, VerifyArgs,
};
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
    tessera::adapters::store::open(config).await
}

pub async fn audit_verify(args: &VerifyArgs, out: Output) -> anyhow::Result<ExitCode> {
    // The checkpoints and the key are read first: a bad file or key changes nothing
    // and says so before the (long) walk of the chains.
    let checkpoints = match (&args.checkpoint, &args.public_key) {
        (Some(file), Some(key)) => Some((read_checkpoints(file)?, pinned_public_key(key)?)),
        _ => None,
    };
    let config = config(&args.database)?;
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
    let mut checkpoint_output = None;
    if let Some((read, pinned)) = checkpoints {
        let checked =
            tessera_service::audit::check_checkpoints(store.as_ref(), &read.checkpoints, &pinned)
                .await
                .map_err(|e| anyhow!("{e}"))?;
        let failed = checked.iter().filter(|c| !c.intact).count();
        intact &= failed == 0 && read.malformed.is_empty() && !checked.is_empty();
        if out == Output::Table {
            for (line, error) in &read.malformed {
                println!("checkpoint line {line}: MALFORMED: {error}");
            }
            for report in checked.iter().filter(|c| !c.intact) {
                if let Some(problem) = &report.problem {
                    println!(
                        "checkpoint line {} (tenant {}, event {}, taken {}): FAILED: {:?}: {}",
                        report.line,
                        report.tenant_id,
                        report.seq,
                        report.time,
                        problem.kind,
                        problem.detail
                    );
                }
            }
            if checked.is_empty() {
                println!("checkpoints: NONE found in the file");
            } else {
                println!(
                    "checkpoints: {} of {} hold (key {}{})",
                    checked.len() - failed,
                    checked.len(),
                    tessera_directory::checkpoint::key_id(&pinned),
                    if read.skipped > 0 {
                        format!(", {} other lines skipped", read.skipped)
                    } else {
                        String::new()
                    }
                );
            }
        }
        let malformed: Vec<_> = read
            .malformed
            .iter()
            .map(|(line, error)| json!({ "line": line, "error": error }))
            .collect();
        checkpoint_output = Some(json!({
            "keyId": tessera_directory::checkpoint::key_id(&pinned),
            "checked": checked,
            "malformed": malformed,
        }));
    }
    if out == Output::Json {
        let mut document = json!({ "intact": intact, "tenants": reports });
        if let Some(checkpoints) = checkpoint_output {
            document["checkpoints"] = checkpoints;
        }
        println!("{}", serde_json::to_string_pretty(&document)?);
    }
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

struct CheckpointFile {
    checkpoints: Vec<(usize, tessera_directory::checkpoint::Checkpoint)>,
    /// Lines that claim to be checkpoints and are not, with why.
    malformed: Vec<(usize, String)>,
    /// Lines that are not checkpoints (blank, other syslog messages).
    skipped: usize,
}

fn read_checkpoints(file: &std::path::Path) -> anyhow::Result<CheckpointFile> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the checkpoint file {}", file.display()))?;
    let mut read = CheckpointFile {
        checkpoints: Vec::new(),
        malformed: Vec::new(),
        skipped: 0,
    };
    for (index, line) in text.lines().enumerate() {
        match tessera_directory::checkpoint::parse_line(line) {
            Ok(Some(checkpoint)) => read.checkpoints.push((index + 1, checkpoint)),
            Ok(None) => read.skipped += 1,
            Err(error) => read.malformed.push((index + 1, error)),
        }
    }
    Ok(read)
}

/// `--public-key`: base64, or a file holding it.
fn pinned_public_key(value: &str) -> anyhow::Result<[u8; 32]> {
    let path = std::path::Path::new(value);
    let text = if path.is_file() {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the public key file {}", path.display()))?
    } else {
        value.to_string()
    };
    tessera_directory::checkpoint::parse_public_key(&text)
        .map_err(|e| anyhow!("--public-key: {e} (give what `tessera audit checkpoint-key` prints, or a file holding it)"))
}

/// The checkpoint key of the configuration; for SQLite only next to an existing
/// database, so a mistyped --data-dir does not make a key somewhere else.
fn checkpoint_key(config: &Config) -> anyhow::Result<tessera_core::crypto::Ed25519Key> {
    if config.is_embedded()
        && config.audit_checkpoint.key_file.is_none()
        && !config.data_dir.join("tessera.db").exists()
    {
        bail!(
            "no database at {} (give --data-dir, --config or --database-url)",
            config.data_dir.join("tessera.db").display()
        );
    }
    tessera::adapters::checkpoints::signing_key(config)
}

pub fn audit_checkpoint_key(database: &DatabaseArgs, out: Output) -> anyhow::Result<()> {
    let config = config(database)?;
    let public = checkpoint_key(&config)?.public_key();
    let encoded = tessera_directory::checkpoint::encode_public_key(&public);
    match out {
        Output::Json => println!(
            "{}",
            json!({ "keyId": tessera_directory::checkpoint::key_id(&public), "publicKey": encoded })
        ),
        Output::Table => println!("{encoded}"),
    }
    Ok(())
}

pub async fn audit_checkpoint(args: &CheckpointArgs, out: Output) -> anyhow::Result<()> {
    let config = config(&args.database)?;
    let destinations = match &args.out {
        Some(file) => vec![tessera::adapters::checkpoints::Destination::File(
            file.clone(),
        )],
        None => tessera::adapters::checkpoints::destinations(&config.audit_checkpoint)?,
    };
    if destinations.is_empty() {
        bail!(
            "nowhere to write checkpoints: give --out FILE or set a destination in [audit_checkpoint]"
        );
    }
    let store = open(&config).await?;
    let exporter =
        tessera::adapters::checkpoints::Exporter::new(checkpoint_key(&config)?, destinations)?;
    let checkpoints = exporter
        .export(store.as_ref(), tessera_core::Clock::now(&SystemClock))
        .await?;
    match out {
        Output::Json => println!("{}", serde_json::to_string_pretty(&checkpoints)?),
        Output::Table => {
            for checkpoint in &checkpoints {
                println!(
                    "tenant {}: head {}:{} signed by key {}",
                    checkpoint.tenant_id, checkpoint.seq, checkpoint.hash, checkpoint.key_id
                );
            }
        }
    }
    Ok(())
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
    let store = tessera::adapters::store::open(&config).await?;
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
    let directory = App::new(store, Arc::new(SystemClock));
    let issued = directory
        .directory
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

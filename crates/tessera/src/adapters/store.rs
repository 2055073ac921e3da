//! The SQL store (SQLite by default, PostgreSQL by URL): the one place that names it.

use std::sync::Arc;

use anyhow::Context as _;
use tessera_server::Config;
use tessera_store::Store;

/// Opens the store the configuration names.
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if config.is_embedded() {
        create_private_dir(&config.data_dir)?;
    }
    let mut options = tessera_store_sql::Options::new(config.database_url());
    options.max_connections = config.database_max_connections;
    options.group_commit = config.database_group_commit;
    let store = tessera_store_sql::SqlStore::open(&options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    Ok(Arc::new(store))
}

/// Creates the data directory readable by its owner only.
fn create_private_dir(path: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path)
        .with_context(|| format!("cannot create the data directory {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict the data directory {}", path.display()))?;
    }
    Ok(())
}

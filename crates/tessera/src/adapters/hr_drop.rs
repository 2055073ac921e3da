//! The HR drop folder: where an HR system (over SFTP, a file share, a sync job)
//! leaves its export for scheduled HR imports, one folder per tenant.

use std::io::Read as _;
use std::path::PathBuf;

use tessera_core::TenantId;
use tessera_service::provisioning::hr::{HrDropFolder, MAX_FILE_BYTES};

/// `<root>/<tenant id>/<file>`.
pub struct DropFolder {
    root: PathBuf,
}

impl DropFolder {
    pub fn new(root: PathBuf) -> DropFolder {
        DropFolder { root }
    }
}

impl HrDropFolder for DropFolder {
    fn read(&self, tenant: TenantId, file: &str) -> Result<Option<String>, String> {
        // The settings allow plain names only; checked again where the path is made.
        if file.is_empty() || file.contains(['/', '\\']) || file.starts_with('.') {
            return Err(format!("{file:?} is not a plain file name"));
        }
        let path = self.root.join(tenant.to_string()).join(file);
        let handle = match std::fs::File::open(&path) {
            Ok(handle) => handle,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("{}: {error}", path.display())),
        };
        let mut bytes = Vec::new();
        handle
            .take(MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(format!(
                "{} is larger than {} MiB",
                path.display(),
                MAX_FILE_BYTES / 1024 / 1024
            ));
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("{} is not UTF-8 text", path.display()))
    }
}

//! The installation's settings, as the server builds them.

use std::path::PathBuf;
use std::sync::Arc;

use tessera_authn::password;
use tessera_core::SecretString;
use tessera_core::crypto::SealingKey;

use crate::error::{ServiceError, ServiceResult};

/// Revocation data over HTTP (the server supplies it; the service has no HTTP client).
#[async_trait::async_trait]
pub trait RevocationFetcher: Send + Sync {
    /// GETs a CRL.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String>;
    /// POSTs a DER OCSP request and returns the DER response.
    async fn ocsp(&self, url: &str, request: Vec<u8>) -> Result<Vec<u8>, String>;
}

pub type SharedFetcher = Arc<dyn RevocationFetcher>;

/// How authentication is set up on this installation.
pub struct AuthSettings {
    /// The public URL people reach Tessera at (the WebAuthn origin).
    pub public_url: String,
    /// Shown in authenticator apps and on passkeys.
    pub issuer_name: String,
    /// Seals TOTP seeds at rest.
    pub sealing_key: SealingKey,
    /// A folder of breached-password range files (`<PREFIX>` or `<PREFIX>.txt`).
    pub breached_passwords: Option<PathBuf>,
    /// Most argon2id hashes computed at once.
    pub max_concurrent_hashes: usize,
    /// Fetches CRLs from distribution points (none: upload only).
    pub revocation_fetcher: Option<SharedFetcher>,
}

impl AuthSettings {
    /// Whether a secret (a user's password, a client's secret) is in the
    /// breached-password list (none configured: never).
    pub(crate) async fn breached(&self, candidate: &SecretString) -> ServiceResult<bool> {
        let Some(folder) = self.breached_passwords.clone() else {
            return Ok(false);
        };
        let (prefix, suffix) = password::breach_key(candidate.expose());
        tokio::task::spawn_blocking(move || {
            for name in [prefix.clone(), format!("{prefix}.txt")] {
                let path = folder.join(name);
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        // The file's name is part of the secret's hash: never said.
                        let entries = password::parse_range(&text).map_err(|e| {
                            ServiceError::Internal(format!(
                                "a breached-password range file in {} is malformed: {e}",
                                folder.display()
                            ))
                        })?;
                        return Ok(entries.iter().any(|(s, count)| *count > 0 && *s == suffix));
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(error) => {
                        return Err(ServiceError::Internal(format!(
                            "cannot read a breached-password range file in {}: {error}",
                            folder.display()
                        )));
                    }
                }
            }
            Ok(false)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
    }
}

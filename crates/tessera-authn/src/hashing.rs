//! Password and pass hashing with argon2id, at the OWASP Password Storage Cheat
//! Sheet's parameters (19 MiB of memory, 2 passes, 1 lane), in PHC string format so
//! stronger parameters can be introduced later while old hashes still verify.
//!
//! Hashing is deliberately slow (tens of milliseconds): callers run it on a blocking
//! thread pool with a bound, never on the async executor.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory in KiB, passes and lanes: OWASP's first recommended argon2id setting.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("cannot hash: {0}")]
    Hash(String),
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params =
        Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(|e| HashError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `secret` with a fresh 128-bit salt from `salt`.
pub fn hash(secret: &str, salt: &[u8; 16]) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| HashError::Hash(e.to_string()))?;
    let hash = argon2()?
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| HashError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `secret` matches `stored`. A malformed stored hash never matches.
pub fn verify(secret: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    // Verification uses the parameters in the stored string, not today's defaults.
    Argon2::default()
        .verify_password(secret.as_bytes(), &parsed)
        .is_ok()
}

/// Whether a stored hash was made with weaker parameters than today's, so it should
/// be replaced after the next successful verification.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    parsed.algorithm.as_str() != "argon2id"
        || params.m_cost() < MEMORY_KIB
        || params.t_cost() < PASSES
}

/// A hash of a random secret, verified against when a user does not exist or has no
/// password, so that answering takes as long as for a real account.
pub fn decoy() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$dGVzc2VyYWRlY295c2FsdA$0x4zxK0cqGQ6pp9kPvPiX8O2ATUh1m6Fx1fdWgVrx1A"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_carry_their_parameters() {
        let stored = hash("correct horse battery staple", &[7u8; 16]).unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery staple", &stored));
        assert!(!verify("correct horse battery stapl", &stored));
        assert!(!needs_rehash(&stored));
        // The same secret with another salt gives another hash.
        assert_ne!(
            stored,
            hash("correct horse battery staple", &[8u8; 16]).unwrap()
        );
    }

    #[test]
    fn weak_or_broken_hashes_are_handled() {
        assert!(!verify("x", "not a hash"));
        assert!(!verify("x", ""));
        assert!(needs_rehash("not a hash"));
        let weak = {
            let params = Params::new(1024, 1, 1, None).unwrap();
            let salt = SaltString::encode_b64(&[1u8; 16]).unwrap();
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string()
        };
        assert!(verify("pw", &weak));
        assert!(needs_rehash(&weak));
    }

    #[test]
    fn the_decoy_is_a_valid_hash_at_current_cost() {
        assert!(PasswordHash::new(decoy()).is_ok());
        assert!(!needs_rehash(decoy()));
        assert!(!verify("", decoy()));
    }
}

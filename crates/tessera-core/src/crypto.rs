//! Cryptographic helpers over aws-lc-rs.
//!
//! - Bearer secrets that Tessera generates (personal access tokens, client secrets,
//!   bootstrap credentials) carry 256 bits of entropy, so a single SHA-256 is the right
//!   way to store them: there is nothing to brute-force and lookups stay O(1). Passwords,
//!   which people choose, are a different matter and get argon2id elsewhere.
//! - The audit chain link is defined here so the store (which appends) and the
//!   domain (which verifies) cannot disagree on it.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret::SecretString;

/// The `prev_hash` of the first event of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    to_hex(&sha256(data))
}

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomError> {
    SystemRandom::new().fill(buf).map_err(|_| RandomError)
}

#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// Constant-time equality for secret material (hashes of secrets included).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// A freshly generated bearer secret and the hash under which it is stored.
pub struct GeneratedSecret {
    pub secret: SecretString,
    pub hash: String,
    /// The first characters after the prefix, safe to show ("hint") to tell secrets apart.
    pub hint: String,
}

/// Generates `prefix` followed by 32 random bytes in base64url (43 characters).
/// The prefix lets secret scanners recognise leaked Tessera credentials.
pub fn generate_secret(prefix: &str) -> Result<GeneratedSecret, RandomError> {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes)?;
    let body = URL_SAFE_NO_PAD.encode(bytes);
    let hint: String = body.chars().take(4).collect();
    let secret = format!("{prefix}{body}");
    let hash = secret_hash(&secret);
    Ok(GeneratedSecret {
        secret: SecretString::new(secret),
        hash,
        hint,
    })
}

/// The stored form of a generated bearer secret.
pub fn secret_hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// The hash linking audit event `seq` to its predecessor:
/// `SHA-256(prev_hash ":" seq ":" body)`, hex encoded.
pub fn audit_link_hash(prev_hash: &str, seq: i64, body: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(b":");
    ctx.update(seq.to_string().as_bytes());
    ctx.update(b":");
    ctx.update(body.as_bytes());
    to_hex(ctx.finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_fips_180_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn generated_secrets_are_distinct_and_hash_to_their_stored_form() {
        let a = generate_secret("tsr_pat_").unwrap();
        let b = generate_secret("tsr_pat_").unwrap();
        assert_ne!(a.secret.expose(), b.secret.expose());
        assert_eq!(a.secret.expose().len(), "tsr_pat_".len() + 43);
        assert_eq!(secret_hash(a.secret.expose()), a.hash);
        assert!(a.secret.expose()[8..].starts_with(&a.hint));
    }

    #[test]
    fn link_hash_depends_on_every_input() {
        let base = audit_link_hash(GENESIS_HASH, 1, "{}");
        assert_ne!(base, audit_link_hash(GENESIS_HASH, 2, "{}"));
        assert_ne!(base, audit_link_hash(GENESIS_HASH, 1, "{ }"));
        assert_ne!(base, audit_link_hash(&base, 1, "{}"));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

/// A key that seals secrets Tessera must read back (TOTP seeds) before they are
/// stored: AES-256-GCM with a random nonce, the record's identity as associated data
/// so a sealed value copied to another record does not open there.
#[derive(Clone)]
pub struct SealingKey {
    key: std::sync::Arc<aws_lc_rs::aead::LessSafeKey>,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(redacted)")
    }
}

#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum SealError {
    #[error("a sealing key must be 32 bytes")]
    KeyLength,
    #[error("the sealed value is malformed or was sealed with another key")]
    Open,
    #[error("cannot seal")]
    Seal,
}

const SEAL_PREFIX: &str = "v1.";

impl SealingKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<SealingKey, SealError> {
        let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, bytes)
            .map_err(|_| SealError::KeyLength)?;
        Ok(SealingKey {
            key: std::sync::Arc::new(aws_lc_rs::aead::LessSafeKey::new(unbound)),
        })
    }

    /// A fresh random key (tests, and the first start of an embedded installation).
    pub fn generate() -> Result<(SealingKey, [u8; 32]), RandomError> {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes)?;
        let key = SealingKey::from_bytes(&bytes).map_err(|_| RandomError)?;
        Ok((key, bytes))
    }

    /// `v1.<base64url(nonce || ciphertext || tag)>`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; 12];
        fill_random(&mut nonce).map_err(|_| SealError::Seal)?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(context.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        Ok(format!("{SEAL_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let encoded = sealed.strip_prefix(SEAL_PREFIX).ok_or(SealError::Open)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::Open)?;
        if bytes.len() < 12 + 16 {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let mut nonce_bytes = [0u8; 12];
        nonce_bytes.copy_from_slice(nonce);
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce_bytes),
                aws_lc_rs::aead::Aad::from(context.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| SealError::Open)?;
        Ok(plaintext.to_vec())
    }
}

#[cfg(test)]
mod sealing_tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let (key, _) = SealingKey::generate().unwrap();
        let (other, _) = SealingKey::generate().unwrap();
        let sealed = key.seal(b"seed", "totp:1").unwrap();
        assert_eq!(key.open(&sealed, "totp:1").unwrap(), b"seed");
        assert!(key.open(&sealed, "totp:2").is_err());
        assert!(other.open(&sealed, "totp:1").is_err());
        assert!(key.open("v1.AAAA", "totp:1").is_err());
        assert!(key.open("garbage", "totp:1").is_err());
        assert_ne!(sealed, key.seal(b"seed", "totp:1").unwrap(), "fresh nonce");
        assert!(SealingKey::from_bytes(&[0u8; 16]).is_err());
    }
}

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

/// HMAC-SHA256 of `data` under `key` (webhook signatures).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&key, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
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

/// An Ed25519 signing key held outside the database (the audit checkpoint key).
/// Stored as PKCS#8 in PEM (`-----BEGIN PRIVATE KEY-----`), the form
/// `openssl genpkey -algorithm ed25519` writes, so operators can make one themselves.
pub struct Ed25519Key {
    pair: aws_lc_rs::signature::Ed25519KeyPair,
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ed25519Key(redacted)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ed25519KeyError {
    #[error("the key is not an Ed25519 private key in PKCS#8 PEM (BEGIN PRIVATE KEY)")]
    Malformed,
    #[error("cannot generate a key")]
    Generate,
}

const PRIVATE_KEY_PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PRIVATE_KEY_PEM_END: &str = "-----END PRIVATE KEY-----";

impl Ed25519Key {
    /// A fresh key and its PEM text (to be written, private, to the key file).
    pub fn generate() -> Result<(Ed25519Key, String), Ed25519KeyError> {
        let document = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| Ed25519KeyError::Generate)?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(document.as_ref());
        let mut pem = String::from(PRIVATE_KEY_PEM_BEGIN);
        pem.push('\n');
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str(PRIVATE_KEY_PEM_END);
        pem.push('\n');
        let key = Ed25519Key::from_pem(&pem)?;
        Ok((key, pem))
    }

    pub fn from_pem(pem: &str) -> Result<Ed25519Key, Ed25519KeyError> {
        let text = pem.trim();
        let inner = text
            .strip_prefix(PRIVATE_KEY_PEM_BEGIN)
            .and_then(|rest| rest.strip_suffix(PRIVATE_KEY_PEM_END))
            .ok_or(Ed25519KeyError::Malformed)?;
        let encoded: String = inner.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Ed25519KeyError::Malformed)?;
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|_| Ed25519KeyError::Malformed)?;
        Ok(Ed25519Key { pair })
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        use aws_lc_rs::signature::KeyPair as _;
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// The 64-byte signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// Whether `signature` is `public_key`'s Ed25519 signature of `message`.
pub fn ed25519_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod ed25519_tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_their_key_and_message() {
        let (key, pem) = Ed25519Key::generate().unwrap();
        let (other, _) = Ed25519Key::generate().unwrap();
        let reloaded = Ed25519Key::from_pem(&pem).unwrap();
        assert_eq!(key.public_key(), reloaded.public_key());
        let signature = key.sign(b"checkpoint");
        assert!(ed25519_verify(&key.public_key(), b"checkpoint", &signature));
        assert!(!ed25519_verify(
            &key.public_key(),
            b"checkpoinT",
            &signature
        ));
        assert!(!ed25519_verify(
            &other.public_key(),
            b"checkpoint",
            &signature
        ));
        assert!(!ed25519_verify(&[0u8; 5], b"checkpoint", &signature));
        assert_eq!(format!("{key:?}"), "Ed25519Key(redacted)");
    }

    #[test]
    fn an_openssl_key_loads_and_garbage_does_not() {
        // `openssl genpkey -algorithm ed25519` (PKCS#8 v1, no public key inside).
        let openssl = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHAk6zUnbgRjrCf/vLojdAP6qhdjR4Hbts5xQjGPBXYh\n-----END PRIVATE KEY-----\n";
        assert!(Ed25519Key::from_pem(openssl).is_ok());
        assert_eq!(
            Ed25519Key::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .unwrap_err(),
            Ed25519KeyError::Malformed
        );
        assert!(Ed25519Key::from_pem("not a key").is_err());
    }
}

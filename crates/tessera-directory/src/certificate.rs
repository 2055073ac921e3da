//! Certificates uploaded as application credentials: only their public part is kept.
//! Parsing takes untrusted input; see `fuzz/fuzz_targets/key_credential.rs`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tessera_core::Timestamp;
use tessera_core::crypto::sha256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub der: Vec<u8>,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// Base64url SHA-256 of the DER (`x5t#S256`).
    pub thumbprint_sha256: String,
    pub subject: String,
}

/// Accepts a certificate as PEM or as base64 DER and checks that it parses as X.509.
pub fn parse(text: &str) -> Result<CertificateInfo, String> {
    let trimmed = text.trim();
    if trimmed.len() > 64 * 1024 {
        return Err("a certificate is at most 64 KiB".to_string());
    }
    let body: String = if trimmed.starts_with("-----BEGIN CERTIFICATE-----") {
        let inner = trimmed
            .strip_prefix("-----BEGIN CERTIFICATE-----")
            .and_then(|rest| rest.trim_end().strip_suffix("-----END CERTIFICATE-----"))
            .ok_or("the PEM block must be one certificate between BEGIN and END lines")?;
        inner.chars().filter(|c| !c.is_whitespace()).collect()
    } else {
        trimmed.chars().filter(|c| !c.is_whitespace()).collect()
    };
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| "the certificate is neither PEM nor base64 DER".to_string())?;
    let (rest, certificate) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        return Err("unexpected data after the certificate".to_string());
    }
    let validity = certificate.validity();
    let not_before =
        Timestamp::from_unix_micros(validity.not_before.timestamp().saturating_mul(1_000_000));
    let not_after =
        Timestamp::from_unix_micros(validity.not_after.timestamp().saturating_mul(1_000_000));
    let subject = certificate.subject().to_string();
    let thumbprint_sha256 = URL_SAFE_NO_PAD.encode(sha256(&der));
    Ok(CertificateInfo {
        der,
        not_before,
        not_after,
        thumbprint_sha256,
        subject,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed P-256 certificate for CN=tessera-test, valid ten years from 2026-11-22,
    // generated for these tests with openssl.
    const PEM: &str = include_str!("../tests/data/test-cert.pem");

    #[test]
    fn pem_and_der_give_the_same_certificate() {
        let from_pem = parse(PEM).unwrap();
        let der_b64 = STANDARD.encode(&from_pem.der);
        let from_der = parse(&der_b64).unwrap();
        assert_eq!(from_pem, from_der);
        assert!(from_pem.subject.contains("tessera-test"));
        assert!(from_pem.not_before < from_pem.not_after);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse("not a certificate").is_err());
        assert!(parse("aGVsbG8=").is_err());
        assert!(parse("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").is_err());
    }
}

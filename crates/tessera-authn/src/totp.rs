//! Time-based one-time passwords (RFC 6238, over HOTP, RFC 4226).
//!
//! - Codes are checked within a small window of time steps around now (clock skew),
//!   compared in constant time.
//! - A code is accepted at most once: verification takes the last accepted time step
//!   and refuses a code from that step or an earlier one (a replay), and returns the
//!   new step for the caller to store.
//! - SHA-1 is the default only because authenticator apps expect it; in HMAC (not as a
//!   signature hash) it is still sound. SHA-256 and SHA-512 are available.

use aws_lc_rs::hmac;
use tessera_core::crypto::constant_time_eq;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Algorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Algorithm::Sha256 => hmac::HMAC_SHA256,
            Algorithm::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn uri_name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parameters {
    pub algorithm: Algorithm,
    /// 6 or 8.
    pub digits: u32,
    /// Seconds per time step.
    pub period: u64,
    /// Steps accepted before and after the current one.
    pub skew: u64,
}

impl Default for Parameters {
    /// What authenticator apps expect: SHA-1, 6 digits, 30 seconds, one step either way.
    fn default() -> Parameters {
        Parameters {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            skew: 1,
        }
    }
}

/// Bytes of secret for a new enrolment (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

/// The time step containing `unix_seconds`.
pub fn step_at(parameters: &Parameters, unix_seconds: u64) -> u64 {
    unix_seconds / parameters.period.max(1)
}

/// The code for one time step (HOTP with the step as counter, dynamic truncation).
pub fn code_for_step(secret: &[u8], parameters: &Parameters, step: u64) -> String {
    let key = hmac::Key::new(parameters.algorithm.hmac(), secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let digest = tag.as_ref();
    // The last byte's low nibble picks where the 31-bit value starts; the digest is
    // 20, 32 or 64 bytes long, so offset + 3 is always inside it.
    let offset = usize::from(digest.last().copied().unwrap_or(0) & 0x0f);
    let mut value: u32 = 0;
    for byte in digest.iter().skip(offset).take(4) {
        value = (value << 8) | u32::from(*byte);
    }
    let value = value & 0x7fff_ffff;
    let digits = parameters.digits.clamp(6, 9);
    let code = value % 10u32.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

/// The code valid at `unix_seconds`.
pub fn code_at(secret: &[u8], parameters: &Parameters, unix_seconds: u64) -> String {
    code_for_step(secret, parameters, step_at(parameters, unix_seconds))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The code matches a step within the window that is later than the last accepted
    /// one. Store `step` as the new last accepted step.
    Accepted { step: u64 },
    /// The code matches, but for a step already used: someone replays a code.
    Replayed,
    /// No step in the window has this code (or the input is not a code at all).
    Rejected,
}

/// Checks `code` at `unix_seconds`, given the last accepted step (if any).
pub fn verify(
    secret: &[u8],
    parameters: &Parameters,
    code: &str,
    unix_seconds: u64,
    last_accepted_step: Option<u64>,
) -> Verification {
    let code = code.trim();
    let well_formed =
        code.len() == parameters.digits as usize && code.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Verification::Rejected;
    }
    let now = step_at(parameters, unix_seconds);
    let first = now.saturating_sub(parameters.skew);
    let last = now.saturating_add(parameters.skew);
    // Check every step in the window, matched or not, so timing does not reveal which.
    let mut matched = None;
    for step in first..=last {
        if constant_time_eq(
            code_for_step(secret, parameters, step).as_bytes(),
            code.as_bytes(),
        ) {
            matched = Some(step);
        }
    }
    match (matched, last_accepted_step) {
        (None, _) => Verification::Rejected,
        (Some(step), Some(used)) if step <= used => Verification::Replayed,
        (Some(step), _) => Verification::Accepted { step },
    }
}

/// RFC 4648 base32 without padding, as authenticator apps read secrets.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes RFC 4648 base32 (case-insensitive, padding and spaces ignored), as people
/// type secrets; `None` for any other character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let value = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

fn uri_component(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The `otpauth://totp/...` URI an authenticator app scans (as a QR code) to enrol.
pub fn enrolment_uri(
    issuer: &str,
    account: &str,
    secret: &[u8],
    parameters: &Parameters,
) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
        uri_component(issuer),
        uri_component(account),
        base32(secret),
        uri_component(issuer),
        parameters.algorithm.uri_name(),
        parameters.digits,
        parameters.period
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_round_trips() {
        for bytes in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0xff; 20],
        ] {
            assert_eq!(base32_decode(&base32(bytes)).unwrap(), bytes);
        }
        assert_eq!(base32_decode("mzxw 6===").unwrap(), b"foo");
        assert!(base32_decode("0189").is_none());
    }

    fn rfc_parameters(algorithm: Algorithm) -> Parameters {
        Parameters {
            algorithm,
            digits: 8,
            period: 30,
            skew: 1,
        }
    }

    /// RFC 6238 Appendix B: (time, SHA-1, SHA-256, SHA-512).
    const VECTORS: &[(u64, &str, &str, &str)] = &[
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ];

    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    #[test]
    fn rfc_6238_test_vectors() {
        for (time, sha1, sha256, sha512) in VECTORS {
            assert_eq!(
                code_at(SEED_SHA1, &rfc_parameters(Algorithm::Sha1), *time),
                *sha1,
                "SHA-1 at {time}"
            );
            assert_eq!(
                code_at(SEED_SHA256, &rfc_parameters(Algorithm::Sha256), *time),
                *sha256,
                "SHA-256 at {time}"
            );
            assert_eq!(
                code_at(SEED_SHA512, &rfc_parameters(Algorithm::Sha512), *time),
                *sha512,
                "SHA-512 at {time}"
            );
        }
    }

    #[test]
    fn six_digit_codes_are_the_last_six_digits() {
        let parameters = Parameters::default();
        assert_eq!(code_at(SEED_SHA1, &parameters, 59), "287082");
    }

    #[test]
    fn skew_window_and_replay() {
        let parameters = Parameters::default();
        let now = 1_700_000_000;
        let current = code_at(SEED_SHA1, &parameters, now);
        let previous = code_at(SEED_SHA1, &parameters, now - 30);
        let too_old = code_at(SEED_SHA1, &parameters, now - 60);
        let step = step_at(&parameters, now);
        assert_eq!(
            verify(SEED_SHA1, &parameters, &current, now, None),
            Verification::Accepted { step }
        );
        assert_eq!(
            verify(SEED_SHA1, &parameters, &previous, now, None),
            Verification::Accepted { step: step - 1 }
        );
        assert_eq!(
            verify(SEED_SHA1, &parameters, &too_old, now, None),
            Verification::Rejected
        );
        // The same code twice: the second is a replay, and so is an older code.
        assert_eq!(
            verify(SEED_SHA1, &parameters, &current, now + 5, Some(step)),
            Verification::Replayed
        );
        assert_eq!(
            verify(SEED_SHA1, &parameters, &previous, now, Some(step)),
            Verification::Replayed
        );
        let next = code_at(SEED_SHA1, &parameters, now + 30);
        assert_eq!(
            verify(SEED_SHA1, &parameters, &next, now + 30, Some(step)),
            Verification::Accepted { step: step + 1 }
        );
    }

    #[test]
    fn malformed_input_is_rejected() {
        let parameters = Parameters::default();
        for code in ["", "12345", "1234567", "12a456", "１２３４５６", "      "] {
            assert_eq!(
                verify(SEED_SHA1, &parameters, code, 59, None),
                Verification::Rejected,
                "{code:?}"
            );
        }
    }

    #[test]
    fn base32_matches_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn enrolment_uri_escapes_names() {
        let uri = enrolment_uri(
            "Tessera Contoso",
            "adele@contoso.com",
            SEED_SHA1,
            &Parameters::default(),
        );
        assert_eq!(
            uri,
            "otpauth://totp/Tessera%20Contoso:adele%40contoso.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Tessera%20Contoso&algorithm=SHA1&digits=6&period=30"
        );
    }
}

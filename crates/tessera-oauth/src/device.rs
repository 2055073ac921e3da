//! The device authorization grant (RFC 8628): user codes and their timing.
//!
//! User codes are eight characters from twenty consonants (no vowels, so no words;
//! no look-alike digits), shown as `BCDF-GHJK`: about 2^34.6 codes, which with the
//! ten-minute lifetime and the per-session attempt limit makes guessing useless
//! (§5.1).

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long a device code waits for the user.
pub const EXPIRES_SECONDS: i64 = 600;
/// The polling interval asked of the device; polling faster is `slow_down`.
pub const INTERVAL_SECONDS: i64 = 5;
/// Wrong user codes one session may enter before it is refused for a while.
pub const MAX_ATTEMPTS: i64 = 10;

const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const LENGTH: usize = 8;

/// A user code from random bytes (rejection sampling keeps it uniform); `None` if
/// the bytes run out, so give at least 16.
pub fn user_code(random: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(LENGTH + 1);
    let mut taken = 0;
    for byte in random {
        // 240 = 12 * 20: bytes at or above it would bias the choice.
        if *byte >= 240 {
            continue;
        }
        if taken == LENGTH / 2 {
            out.push('-');
        }
        out.push(ALPHABET[usize::from(*byte % 20)] as char);
        taken += 1;
        if taken == LENGTH {
            return Some(out);
        }
    }
    None
}

/// A user code as typed (any case, with or without the dash or spaces) in the
/// canonical `XXXX-XXXX` form, or `None` if it cannot be one.
pub fn normalize(input: &str) -> Option<String> {
    let chars: Vec<char> = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if chars.len() != LENGTH || !chars.iter().all(|c| ALPHABET.contains(&(*c as u8))) {
        return None;
    }
    let (a, b) = chars.split_at(LENGTH / 2);
    Some(format!(
        "{}-{}",
        a.iter().collect::<String>(),
        b.iter().collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_canonical() {
        let code = user_code(&[0, 1, 2, 3, 250, 19, 20, 39, 40]).unwrap();
        assert_eq!(code, "BCDF-ZBZB");
        assert_eq!(normalize("bcdf zbzb"), Some(code.clone()));
        assert_eq!(normalize("BCDFZBZB"), Some(code));
        assert_eq!(normalize("BCDF-ZBZ"), None);
        assert_eq!(
            normalize("BCDF-ZBZA"),
            None,
            "vowels are not in the alphabet"
        );
        assert_eq!(normalize("BCDF-ZBZ1"), None);
        assert!(user_code(&[255; 32]).is_none());
    }
}

//! Temporary Access Passes: time-limited passes an administrator issues so that a
//! user without any other method (a new hire, a lost smart card) can sign in and
//! register a strong method. Shown once, stored as an argon2id hash.

use serde::{Deserialize, Serialize};
use tessera_core::Timestamp;

/// Characters of a pass: no look-alikes (0/O, 1/l/I), readable over the phone.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A pass of `length` characters drawn from `random` (one byte per character; 256 is
/// a multiple of 32, so each character is uniform).
pub fn generate(random: &[u8]) -> String {
    random
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

/// What is stored for a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPass {
    pub hash: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub is_usable_once: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    Usable,
    NotYetValid,
    Expired,
}

impl StoredPass {
    pub fn usability(&self, now: Timestamp) -> Usability {
        if now < self.start {
            Usability::NotYetValid
        } else if now >= self.end {
            Usability::Expired
        } else {
            Usability::Usable
        }
    }
}

/// Normalizes what a person typed: spaces and dashes dropped, upper-cased.
pub fn normalize_input(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_use_the_unambiguous_alphabet() {
        let pass = generate(&[0, 31, 32, 255, 8, 9]);
        assert_eq!(pass, "A9A9JK");
        assert!(
            generate(&[7; 48])
                .chars()
                .all(|c| ALPHABET.contains(&(c as u8)))
        );
        assert_eq!(normalize_input(" abcd-efgh "), "ABCDEFGH");
    }

    #[test]
    fn validity_window() {
        let pass = StoredPass {
            hash: String::new(),
            start: Timestamp::from_unix_micros(100),
            end: Timestamp::from_unix_micros(200),
            is_usable_once: true,
        };
        assert_eq!(
            pass.usability(Timestamp::from_unix_micros(99)),
            Usability::NotYetValid
        );
        assert_eq!(
            pass.usability(Timestamp::from_unix_micros(100)),
            Usability::Usable
        );
        assert_eq!(
            pass.usability(Timestamp::from_unix_micros(200)),
            Usability::Expired
        );
    }
}

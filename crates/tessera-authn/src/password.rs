//! Password protection: what makes a chosen password unacceptable.
//!
//! Modelled on Entra ID password protection:
//! 1. **Normalize**: lower-case, then undo common substitutions (`@`→a, `0`→o, `$`→s...).
//! 2. **Find banned terms**: every term of the global and tenant lists, and the
//!    user's own names, is looked for anywhere in the normalized password, also with
//!    one character changed, added or removed (`passwrd`, `p4ssw0rdd`).
//! 3. **Score**: each banned term found is worth one point, every remaining character
//!    one point; a password needs [`MIN_SCORE`] points. So `Contoso!2026` with the
//!    tenant's name banned scores 1 (contoso) + 5 = 6 and passes, while `Contoso1!`
//!    scores 1 + 2 = 3 and fails.
//!
//! The breached-password check uses the k-anonymity range format (as published by
//! Have I Been Pwned): SHA-1 of the password in upper-case hex, split into a 5-digit
//! prefix naming the range and a 35-digit suffix listed in it as `SUFFIX:COUNT`.

use aws_lc_rs::digest;

/// Points a password needs.
pub const MIN_SCORE: usize = 5;
/// Shortest password accepted at all.
pub const MIN_LENGTH: usize = 8;
/// Longest password accepted (hashing cost and denial of service).
pub const MAX_LENGTH: usize = 256;
/// Banned terms shorter than this are ignored (they would ban almost everything).
pub const MIN_TERM_LENGTH: usize = 4;

/// The global banned list: terms found in the most common breached passwords and
/// password-spraying lists, applied in every tenant in addition to its own terms.
pub const GLOBAL_BANNED: &[&str] = &[
    "password",
    "passwort",
    "qwerty",
    "qwertz",
    "azerty",
    "asdfgh",
    "zxcvbn",
    "letmein",
    "welcome",
    "admin",
    "administrator",
    "iloveyou",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "soccer",
    "hockey",
    "sunshine",
    "princess",
    "trustno1",
    "abc123",
    "123456",
    "654321",
    "111111",
    "000000",
    "121212",
    "changeme",
    "secret",
    "login",
    "master",
    "shadow",
    "superman",
    "batman",
    "starwars",
    "summer",
    "winter",
    "spring",
    "autumn",
    "january",
    "february",
    "december",
    "default",
    "guest",
    "access",
    "qazwsx",
    "1q2w3e",
    "tessera",
    "company",
    "corporate",
    "pass",
    "test",
    "temp",
    "user",
];

/// Lower-cases and undoes common character substitutions.
pub fn normalize(password: &str) -> String {
    password
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '0' => 'o',
            '1' | '|' => 'l',
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' | '+' => 't',
            '8' => 'b',
            '9' => 'g',
            '!' => 'i',
            other => other,
        })
        .collect()
}

/// Whether `a` and `b` differ by at most one insertion, deletion or substitution.
fn within_one_edit(a: &[char], b: &[char]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() - short.len() > 1 {
        return false;
    }
    let mut i = 0;
    let mut j = 0;
    let mut edits = 0;
    while i < short.len() && j < long.len() {
        if short[i] == long[j] {
            i += 1;
            j += 1;
            continue;
        }
        edits += 1;
        if edits > 1 {
            return false;
        }
        if short.len() == long.len() {
            i += 1;
        }
        j += 1;
    }
    edits + (long.len() - j) + (short.len() - i) <= 1
}

/// Where `term` occurs in `password` (both normalized) within one edit: the first
/// match's start and length, if any.
fn find_fuzzy(password: &[char], term: &[char]) -> Option<(usize, usize)> {
    if term.len() < MIN_TERM_LENGTH {
        return None;
    }
    for start in 0..password.len() {
        for length in [term.len(), term.len().saturating_sub(1), term.len() + 1] {
            let Some(window) = password.get(start..start + length) else {
                continue;
            };
            if length >= MIN_TERM_LENGTH.saturating_sub(1) && within_one_edit(window, term) {
                return Some((start, length));
            }
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooShort {
        minimum: usize,
    },
    TooLong {
        maximum: usize,
    },
    /// Too predictable: it scored `score` of the `needed` points. The terms found are
    /// for the log and the administrator, not for the person typing.
    TooWeak {
        score: usize,
        needed: usize,
        banned_terms: Vec<String>,
    },
}

/// Checks a new password against banned terms (global list, tenant list and the
/// user's own names, all of which may be given un-normalized).
pub fn check(password: &str, banned_terms: &[&str]) -> Result<(), Refusal> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(Refusal::TooShort {
            minimum: MIN_LENGTH,
        });
    }
    if length > MAX_LENGTH {
        return Err(Refusal::TooLong {
            maximum: MAX_LENGTH,
        });
    }
    let mut remaining: Vec<char> = normalize(password).chars().collect();
    let mut found = Vec::new();
    let mut terms: Vec<Vec<char>> = banned_terms
        .iter()
        .map(|t| normalize(t).chars().collect())
        .collect();
    // Longer terms first, so "password" is removed before "pass" could split it.
    terms.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for term in &terms {
        while let Some((start, length)) = find_fuzzy(&remaining, term) {
            remaining.drain(start..start + length);
            found.push(term.iter().collect::<String>());
        }
    }
    let score = found.len() + remaining.len();
    if score < MIN_SCORE {
        return Err(Refusal::TooWeak {
            score,
            needed: MIN_SCORE,
            banned_terms: found,
        });
    }
    Ok(())
}

/// The k-anonymity lookup key of a password: (5-digit range prefix, 35-digit suffix),
/// upper-case hex of its SHA-1.
pub fn breach_key(password: &str) -> (String, String) {
    let hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    let hex: String = tessera_core::crypto::to_hex(hash.as_ref()).to_ascii_uppercase();
    let (prefix, suffix) = hex.split_at(5);
    (prefix.to_string(), suffix.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RangeError {
    pub line: usize,
    pub message: String,
}

/// Parses one range file (`SUFFIX:COUNT` per line, as served for a 5-digit prefix)
/// into (suffix, count) pairs. The input comes from the operator's import; every line
/// is checked.
pub fn parse_range(text: &str) -> Result<Vec<(String, u64)>, RangeError> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fail = |message: &str| RangeError {
            line: index + 1,
            message: message.to_string(),
        };
        let (suffix, count) = line
            .split_once(':')
            .ok_or_else(|| fail("expected SUFFIX:COUNT"))?;
        if suffix.len() != 35 || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail("the suffix must be 35 hexadecimal digits"));
        }
        let count: u64 = count
            .trim()
            .parse()
            .map_err(|_| fail("the count must be a whole number"))?;
        entries.push((suffix.to_ascii_uppercase(), count));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weak(password: &str, terms: &[&str]) -> bool {
        matches!(check(password, terms), Err(Refusal::TooWeak { .. }))
    }

    #[test]
    fn normalization_undoes_substitutions() {
        assert_eq!(normalize("P@$$w0rd!"), "passwordi");
        assert_eq!(normalize("C0NT0S0"), "contoso");
    }

    #[test]
    fn one_edit() {
        let check = |a: &str, b: &str| {
            within_one_edit(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert!(check("password", "password"));
        assert!(check("passwrd", "password"));
        assert!(check("passwords", "password"));
        assert!(check("passwqrd", "password"));
        assert!(!check("pasword1", "password2"));
        assert!(!check("pwd", "password"));
    }

    #[test]
    fn scoring_follows_the_documented_examples() {
        let banned = ["password", "contoso"];
        assert!(
            check("Contoso!2026", &banned).is_ok(),
            "1 point for contoso, 5 for !2026"
        );
        assert!(weak("Contoso1!", &banned));
        assert!(weak("P@ssw0rd123", &banned), "1 + 3 = 4 points");
        assert!(check("P@ssw0rd12345", &banned).is_ok(), "1 + 5 = 6 points");
        assert!(
            weak("Passwrd202", &banned),
            "one edit away still matches: 1 + 3"
        );
        assert!(
            check("Passwrd2024", &banned).is_ok(),
            "1 + 4 = 5 points, just enough"
        );
        assert!(
            weak("ContosoPassword", &banned),
            "two banned terms, nothing else: 2 points"
        );
        assert!(check("correct horse battery", &banned).is_ok());
    }

    #[test]
    fn users_own_names_count_as_banned() {
        assert!(weak("AdeleVance1", &["adele", "vance"]));
        assert!(check("AdeleVance1", &[]).is_ok());
    }

    #[test]
    fn length_limits() {
        assert_eq!(
            check("Sh0rt!", &[]),
            Err(Refusal::TooShort {
                minimum: MIN_LENGTH
            })
        );
        assert_eq!(
            check(&"x".repeat(MAX_LENGTH + 1), &[]),
            Err(Refusal::TooLong {
                maximum: MAX_LENGTH
            })
        );
    }

    #[test]
    fn short_terms_are_ignored() {
        assert!(check("abcdefgh", &["abc"]).is_ok());
    }

    #[test]
    fn breach_keys_and_ranges() {
        // SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8
        assert_eq!(
            breach_key("password"),
            (
                "5BAA6".to_string(),
                "1E4C9B93F3F0682250B6CF8331B7EE68FD8".to_string()
            )
        );
        let range = "1E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824\r\n0018A45C4D1DEF81644B54AB7F969B88D65:3\n";
        let entries = parse_range(range).unwrap();
        assert_eq!(
            entries[0],
            ("1E4C9B93F3F0682250B6CF8331B7EE68FD8".to_string(), 9_545_824)
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(parse_range("ABC:1").unwrap_err().line, 1);
        assert_eq!(
            parse_range("1E4C9B93F3F0682250B6CF8331B7EE68FD8:many")
                .unwrap_err()
                .line,
            1
        );
        assert!(parse_range("nonsense").is_err());
    }
}

//! Secrets in memory.

use std::fmt;

/// A secret string (a token, a generated client secret). `Debug` and `Display` are
/// redacted; the only way to read it is [`SecretString::expose`], which makes every
/// place that handles the plain value easy to find. The buffer is overwritten on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: String) -> SecretString {
        SecretString(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        // Overwrite the bytes we own. `String` may have reallocated earlier copies;
        // we never grow a secret after creation, so there are none.
        let bytes = std::mem::take(&mut self.0).into_bytes();
        let mut bytes = bytes;
        for byte in bytes.iter_mut() {
            // A volatile write is not available without unsafe; `black_box` keeps the
            // compiler from eliding the loop as a dead store.
            *byte = std::hint::black_box(0);
        }
        drop(std::hint::black_box(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = SecretString::new("tsr_pat_supersecret".to_string());
        assert!(!format!("{secret:?}").contains("supersecret"));
        assert!(!format!("{secret}").contains("supersecret"));
        assert_eq!(secret.expose(), "tsr_pat_supersecret");
    }
}

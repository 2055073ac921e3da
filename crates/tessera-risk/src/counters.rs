//! Detections from counts the service keeps across nodes (counters that expire
//! with their window): password spray (one source, many accounts), brute force
//! (one account, many failures), and repeated denied or abandoned MFA prompts.
//! The thresholds are constants here so the evaluation harness measures the
//! same rule the service runs.

use serde_json::json;

use crate::{Detection, EventType, RiskLevel};

/// The window the counts cover, in seconds.
pub const WINDOW_SECONDS: i64 = 600;
/// Distinct accounts one source failed a password against, within the window.
pub const SPRAY_ACCOUNTS: u32 = 10;
pub const SPRAY_ACCOUNTS_HIGH: u32 = 30;
/// Failed passwords against one account, within the window (below smart
/// lockout's default of 10, so a password found before the lockout is seen).
pub const BRUTE_FORCE_FAILURES: u32 = 5;
pub const BRUTE_FORCE_FAILURES_HIGH: u32 = 9;
/// Denied or abandoned MFA prompts of one user within an hour.
pub const MFA_PROMPT_WINDOW_SECONDS: i64 = 3600;
pub const MFA_FATIGUE_PROMPTS: u32 = 3;
pub const MFA_FATIGUE_PROMPTS_HIGH: u32 = 6;

fn level(count: u32, medium: u32, high: u32) -> Option<RiskLevel> {
    if count >= high {
        Some(RiskLevel::High)
    } else if count >= medium {
        Some(RiskLevel::Medium)
    } else {
        None
    }
}

/// Password spray: the sign-in's source failed passwords against
/// `distinct_accounts` accounts within the window.
pub fn password_spray(source: &str, distinct_accounts: u32) -> Option<Detection> {
    let level = level(distinct_accounts, SPRAY_ACCOUNTS, SPRAY_ACCOUNTS_HIGH)?;
    Some(Detection::new(
        EventType::PasswordSpray,
        level,
        json!({"source": source, "accounts": distinct_accounts, "windowSeconds": WINDOW_SECONDS}),
    ))
}

/// Brute force: the account had `failures` failed passwords within the window
/// (from any source) before this sign-in.
pub fn brute_force(failures: u32, succeeded: bool) -> Option<Detection> {
    let level = level(failures, BRUTE_FORCE_FAILURES, BRUTE_FORCE_FAILURES_HIGH)?;
    Some(Detection::new(
        EventType::BruteForce,
        level,
        json!({"failures": failures, "succeeded": succeeded, "windowSeconds": WINDOW_SECONDS}),
    ))
}

/// MFA fatigue: `prompts` denied or abandoned MFA prompts within the hour.
pub fn mfa_fatigue(prompts: u32) -> Option<Detection> {
    let level = level(prompts, MFA_FATIGUE_PROMPTS, MFA_FATIGUE_PROMPTS_HIGH)?;
    Some(Detection::new(
        EventType::MfaFatigue,
        level,
        json!({"prompts": prompts, "windowSeconds": MFA_PROMPT_WINDOW_SECONDS}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert!(password_spray("203.0.113.9", SPRAY_ACCOUNTS - 1).is_none());
        assert_eq!(
            password_spray("203.0.113.9", SPRAY_ACCOUNTS).map(|d| d.level),
            Some(RiskLevel::Medium)
        );
        assert_eq!(
            password_spray("203.0.113.9", SPRAY_ACCOUNTS_HIGH).map(|d| d.level),
            Some(RiskLevel::High)
        );
        assert!(
            brute_force(3, true).is_none(),
            "a few typos are not an attack"
        );
        assert_eq!(
            brute_force(BRUTE_FORCE_FAILURES, false).map(|d| d.level),
            Some(RiskLevel::Medium)
        );
        assert_eq!(
            brute_force(BRUTE_FORCE_FAILURES_HIGH, true).map(|d| d.level),
            Some(RiskLevel::High)
        );
        assert!(mfa_fatigue(2).is_none());
        assert_eq!(mfa_fatigue(3).map(|d| d.level), Some(RiskLevel::Medium));
        assert_eq!(mfa_fatigue(9).map(|d| d.level), Some(RiskLevel::High));
    }
}

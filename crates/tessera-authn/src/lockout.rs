//! Smart lockout decisions. The service keeps one failure counter per user and per
//! kind of client address (familiar: one the user signed in from before; unfamiliar:
//! any other), so password spraying from elsewhere locks only the attacker's side.
//!
//! Once a side has `threshold` failures it is locked for `duration`; each further
//! failure after a lock doubles the next lock (up to 64 times the duration). Counting
//! starts again after an hour without failures, or at the next success.

use tessera_core::Timestamp;

use crate::policy::LockoutSettings;

/// Failures are forgotten after this long without one.
pub const MEMORY_SECONDS: i64 = 3600;
/// How long an address stays familiar after the user's last success from it.
pub const FAMILIAR_DAYS: i64 = 90;

/// Which counter a client address uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Familiar,
    Unfamiliar,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Familiar => "familiar",
            Side::Unfamiliar => "unfamiliar",
        }
    }
}

/// The network an address belongs to for familiarity: its /24 (IPv4) or /64 (IPv6),
/// so a renewed DHCP lease or privacy address stays familiar.
pub fn network_of(address: &str) -> Option<String> {
    match address.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return network_of(&v4.to_string());
            }
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
        }
    }
}

/// Whether an address last used successfully at `last_success` is still familiar.
pub fn is_familiar(last_success: Option<Timestamp>, now: Timestamp) -> bool {
    last_success
        .is_some_and(|at| now.unix_micros() - at.unix_micros() < FAMILIAR_DAYS * 86_400_000_000)
}

/// For `counter_increment`: failures before this no longer count.
pub fn restart_before(now: Timestamp) -> Timestamp {
    Timestamp::from_unix_micros(now.unix_micros() - MEMORY_SECONDS * 1_000_000)
}

/// If the side with `failures` failures, the last at `last_failure`, is locked at
/// `now`, the seconds it stays locked.
pub fn locked_for(
    settings: &LockoutSettings,
    failures: i64,
    last_failure: Timestamp,
    now: Timestamp,
) -> Option<i64> {
    let threshold = i64::from(settings.threshold);
    if failures < threshold {
        return None;
    }
    if now.unix_micros() - last_failure.unix_micros() >= MEMORY_SECONDS * 1_000_000 {
        return None;
    }
    let doublings = (failures - threshold).min(6) as u32;
    let duration = i64::from(settings.duration_seconds) * (1i64 << doublings);
    let until = last_failure.unix_micros() + duration * 1_000_000;
    let remaining = until - now.unix_micros();
    (remaining > 0).then(|| (remaining + 999_999) / 1_000_000)
}

/// Whether an attempt that took the count from `before` to `attempts` may check
/// its secret (the caller has already refused it while a lock runs). Below the
/// threshold every attempt may; at or over it, only the first attempt after the
/// lock ran out (parallel attempts after it get higher counts and are refused).
pub fn attempt_allowed(settings: &LockoutSettings, before: i64, attempts: i64) -> bool {
    attempts <= i64::from(settings.threshold)
        || (before >= i64::from(settings.threshold) && attempts == before + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_micros(seconds * 1_000_000)
    }

    const SETTINGS: LockoutSettings = LockoutSettings {
        threshold: 3,
        duration_seconds: 60,
    };

    #[test]
    fn locks_at_the_threshold_for_the_duration() {
        assert_eq!(locked_for(&SETTINGS, 2, at(100), at(100)), None);
        assert_eq!(locked_for(&SETTINGS, 3, at(100), at(100)), Some(60));
        assert_eq!(locked_for(&SETTINGS, 3, at(100), at(159)), Some(1));
        assert_eq!(locked_for(&SETTINGS, 3, at(100), at(160)), None);
    }

    #[test]
    fn one_attempt_passes_after_a_lock_runs_out() {
        assert!(attempt_allowed(&SETTINGS, 0, 1));
        assert!(attempt_allowed(&SETTINGS, 2, 3));
        assert!(
            !attempt_allowed(&SETTINGS, 2, 4),
            "a parallel attempt over the threshold"
        );
        // The lock after three failures ran out: the next attempt checks its secret...
        assert!(attempt_allowed(&SETTINGS, 3, 4));
        // ...and one racing it does not.
        assert!(!attempt_allowed(&SETTINGS, 3, 5));
        assert!(attempt_allowed(&SETTINGS, 9, 10));
    }

    #[test]
    fn further_failures_lengthen_the_lock() {
        assert_eq!(locked_for(&SETTINGS, 4, at(0), at(0)), Some(120));
        assert_eq!(locked_for(&SETTINGS, 100, at(0), at(0)), Some(60 * 64));
        // Forgotten after an hour without failures.
        assert_eq!(locked_for(&SETTINGS, 100, at(0), at(3600)), None);
    }

    #[test]
    fn networks_group_nearby_addresses() {
        assert_eq!(network_of("192.0.2.17").unwrap(), "192.0.2.0/24");
        assert_eq!(network_of("::ffff:192.0.2.17").unwrap(), "192.0.2.0/24");
        assert_eq!(
            network_of("2001:db8:1:2:3:4:5:6").unwrap(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(network_of("not an address"), None);
        assert!(is_familiar(Some(at(0)), at(86_400)));
        assert!(!is_familiar(Some(at(0)), at(91 * 86_400)));
        assert!(!is_familiar(None, at(0)));
    }
}

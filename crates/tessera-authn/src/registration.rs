//! Who may change their security info, and when: adding or removing a method needs a
//! recent sign-in of the configured strength, or a temporary access pass (which is
//! what a pass is for). A user who has no multi-factor method yet may register their
//! first one after any recent sign-in, unless the tenant names a strength (e.g.
//! "register security info only after a CAC sign-in").

use serde::{Deserialize, Serialize};
use tessera_core::Timestamp;
use uuid::Uuid;

use crate::strength::{Strength, UsedMethod};

/// A method used in a sign-in, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodUse {
    #[serde(flatten)]
    pub method: UsedMethod,
    /// The stored method used, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_id: Option<Uuid>,
    pub time: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Sign in again with the named strength (or a temporary access pass).
    NeedsStrength {
        strength: Uuid,
        display_name: String,
    },
    /// Sign in again: the last sign-in is too old.
    NeedsRecentSignIn,
}

/// Decides whether a session whose sign-in used `used` may change security info.
pub fn gate(
    used: &[MethodUse],
    configured: Option<&Strength>,
    default_strength: &Strength,
    user_has_multi_factor_method: bool,
    max_age_minutes: u32,
    now: Timestamp,
) -> Gate {
    let oldest = now.unix_micros() - i64::from(max_age_minutes) * 60_000_000;
    let recent: Vec<UsedMethod> = used
        .iter()
        .filter(|u| u.time.unix_micros() >= oldest)
        .map(|u| u.method.clone())
        .collect();
    if recent.iter().any(|m| m.mode.is_temporary_access_pass()) {
        return Gate::Open;
    }
    let required = match configured {
        Some(strength) => Some(strength),
        None if user_has_multi_factor_method => Some(default_strength),
        None => None,
    };
    match required {
        Some(strength) if !strength.satisfied_by(&recent) => Gate::NeedsStrength {
            strength: strength.id,
            display_name: strength.display_name.clone(),
        },
        Some(_) => Gate::Open,
        None if recent.is_empty() => Gate::NeedsRecentSignIn,
        None => Gate::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strength::{self, Mode};

    fn used(mode: Mode, minutes_ago: i64) -> MethodUse {
        MethodUse {
            method: UsedMethod::plain(mode),
            method_id: None,
            time: Timestamp::from_unix_micros(10_000_000_000 - minutes_ago * 60_000_000),
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_unix_micros(10_000_000_000)
    }

    #[test]
    fn a_pass_opens_the_gate_and_old_sign_ins_do_not() {
        let strengths = strength::built_in();
        let mfa = &strengths[0];
        let phishing_resistant = &strengths[2];
        let tap = [used(Mode::TemporaryAccessPassOneTime, 1)];
        assert_eq!(
            gate(&tap, Some(phishing_resistant), mfa, true, 15, now()),
            Gate::Open
        );
        let password = [used(Mode::Password, 1)];
        assert_eq!(gate(&password, None, mfa, false, 15, now()), Gate::Open);
        assert!(matches!(
            gate(&password, None, mfa, true, 15, now()),
            Gate::NeedsStrength { .. }
        ));
        let stale = [used(Mode::Password, 60)];
        assert_eq!(
            gate(&stale, None, mfa, false, 15, now()),
            Gate::NeedsRecentSignIn
        );
        let passkey = [used(Mode::Fido2, 5)];
        assert_eq!(
            gate(&passkey, Some(phishing_resistant), mfa, true, 15, now()),
            Gate::Open
        );
        let password_otp = [used(Mode::Password, 5), used(Mode::SoftwareOath, 5)];
        assert!(matches!(
            gate(
                &password_otp,
                Some(phishing_resistant),
                mfa,
                true,
                15,
                now()
            ),
            Gate::NeedsStrength { .. }
        ));
    }
}

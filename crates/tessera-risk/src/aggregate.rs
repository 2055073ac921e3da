//! From detections to levels.
//!
//! **Sign-in risk** (real time): the highest level among the sign-in's
//! real-time detections; two or more kinds at medium or above make it high
//! (independent signals agreeing).
//!
//! **User risk** persists until something ends it. Reading the user's history
//! in time order:
//! - each detection (real time or offline) of the last [`DETECTION_DAYS`]
//!   counts; the user's level is the highest of them, and three or more low
//!   ones make medium;
//! - a level an outside source reported (an administrator or another
//!   identity protection product, through the API) counts like a detection
//!   of that level;
//! - an administrator's "confirm compromised" makes it high (state
//!   `confirmedCompromised`) whatever the detections;
//! - a remediation (a secure password change or reset after MFA, a passkey
//!   registered after a strong sign-in) or an administrator's "dismiss" ends
//!   everything before it: none (state `remediated` or `dismissed`) until the
//!   next detection.

use serde::{Deserialize, Serialize};
use tessera_core::Timestamp;

use crate::{Detection, EventType, RiskLevel, Timing};

/// How long a detection counts toward the user's risk, in days.
pub const DETECTION_DAYS: i64 = 90;

/// A sign-in's risk from its detections (only the real-time ones count).
pub fn sign_in_risk(detections: &[Detection]) -> RiskLevel {
    let real_time: Vec<&Detection> = detections
        .iter()
        .filter(|d| d.timing == Timing::RealTime)
        .collect();
    let highest = real_time
        .iter()
        .map(|d| d.level)
        .max()
        .unwrap_or(RiskLevel::None);
    let mut serious: Vec<EventType> = real_time
        .iter()
        .filter(|d| d.level >= RiskLevel::Medium)
        .map(|d| d.event_type)
        .collect();
    serious.sort_unstable();
    serious.dedup();
    if serious.len() >= 2 {
        RiskLevel::High
    } else {
        highest
    }
}

/// How a user's risk was ended by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Remediation {
    /// The user changed their password after MFA.
    SecurePasswordChange,
    /// The user reset their password after MFA (self-service).
    SecurePasswordReset,
    /// The user registered a passkey in a session signed in strongly.
    PasskeyRegistered,
    /// An administrator reset the user's password (a temporary one).
    AdminGeneratedTemporaryPassword,
}

/// What happened to a user, as far as risk goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum HistoryEvent {
    Detected {
        at: Timestamp,
        event_type: EventType,
        level: RiskLevel,
    },
    Remediated {
        at: Timestamp,
        how: Remediation,
    },
    Dismissed {
        at: Timestamp,
    },
    ConfirmedCompromised {
        at: Timestamp,
    },
    /// A level reported by an outside source.
    Reported {
        at: Timestamp,
        level: RiskLevel,
    },
}

impl HistoryEvent {
    /// Whether it ends every risk before it (a remediation or a dismissal).
    pub fn is_reset(&self) -> bool {
        matches!(
            self,
            HistoryEvent::Remediated { .. } | HistoryEvent::Dismissed { .. }
        )
    }

    pub fn at(&self) -> Timestamp {
        match self {
            HistoryEvent::Detected { at, .. }
            | HistoryEvent::Remediated { at, .. }
            | HistoryEvent::Dismissed { at }
            | HistoryEvent::ConfirmedCompromised { at }
            | HistoryEvent::Reported { at, .. } => *at,
        }
    }
}

/// Graph's `riskState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RiskState {
    None,
    AtRisk,
    Remediated,
    Dismissed,
    ConfirmedCompromised,
}

/// Graph's `riskDetail`: what last changed the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RiskDetail {
    None,
    UserPerformedSecuredPasswordChange,
    UserPerformedSecuredPasswordReset,
    UserPerformedPasskeyRegistration,
    AdminGeneratedTemporaryPassword,
    AdminDismissedAllRiskForUser,
    AdminConfirmedUserCompromised,
}

/// A user's risk now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRisk {
    pub level: RiskLevel,
    pub state: RiskState,
    pub detail: RiskDetail,
    /// When the state last changed (none: never).
    pub updated: Option<Timestamp>,
}

/// The user's risk from their history (any order; read in time order).
pub fn user_risk(history: &[HistoryEvent], now: Timestamp) -> UserRisk {
    // In time order; at the same moment a detection comes before what an
    // administrator or the user did then.
    let rank = |e: &HistoryEvent| match e {
        HistoryEvent::Detected { .. } | HistoryEvent::Reported { .. } => 0,
        HistoryEvent::ConfirmedCompromised { .. } => 1,
        HistoryEvent::Remediated { .. } => 2,
        HistoryEvent::Dismissed { .. } => 3,
    };
    let mut events: Vec<&HistoryEvent> = history.iter().collect();
    events.sort_by_key(|e| (e.at(), rank(e)));
    let horizon = now.unix_micros() - DETECTION_DAYS * 86_400_000_000;
    let mut risk = UserRisk {
        level: RiskLevel::None,
        state: RiskState::None,
        detail: RiskDetail::None,
        updated: None,
    };
    let mut counted: Vec<RiskLevel> = Vec::new();
    for event in events {
        match event {
            HistoryEvent::Detected { at, level, .. } | HistoryEvent::Reported { at, level } => {
                if at.unix_micros() < horizon || *level == RiskLevel::None {
                    continue;
                }
                counted.push(*level);
                if risk.state != RiskState::ConfirmedCompromised {
                    risk.state = RiskState::AtRisk;
                    risk.detail = RiskDetail::None;
                    risk.level = level_of(&counted);
                    risk.updated = Some(*at);
                }
            }
            HistoryEvent::Remediated { at, how } => {
                counted.clear();
                risk = UserRisk {
                    level: RiskLevel::None,
                    state: RiskState::Remediated,
                    detail: match how {
                        Remediation::SecurePasswordChange => {
                            RiskDetail::UserPerformedSecuredPasswordChange
                        }
                        Remediation::SecurePasswordReset => {
                            RiskDetail::UserPerformedSecuredPasswordReset
                        }
                        Remediation::PasskeyRegistered => {
                            RiskDetail::UserPerformedPasskeyRegistration
                        }
                        Remediation::AdminGeneratedTemporaryPassword => {
                            RiskDetail::AdminGeneratedTemporaryPassword
                        }
                    },
                    updated: Some(*at),
                };
            }
            HistoryEvent::Dismissed { at } => {
                counted.clear();
                risk = UserRisk {
                    level: RiskLevel::None,
                    state: RiskState::Dismissed,
                    detail: RiskDetail::AdminDismissedAllRiskForUser,
                    updated: Some(*at),
                };
            }
            HistoryEvent::ConfirmedCompromised { at } => {
                risk = UserRisk {
                    level: RiskLevel::High,
                    state: RiskState::ConfirmedCompromised,
                    detail: RiskDetail::AdminConfirmedUserCompromised,
                    updated: Some(*at),
                };
            }
        }
    }
    risk
}

fn level_of(counted: &[RiskLevel]) -> RiskLevel {
    let highest = counted.iter().copied().max().unwrap_or(RiskLevel::None);
    let lows = counted.iter().filter(|l| **l == RiskLevel::Low).count();
    if highest == RiskLevel::Low && lows >= 3 {
        RiskLevel::Medium
    } else {
        highest
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DAY: i64 = 86_400_000_000;

    fn at(days: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_700_000_000_000_000 + days * DAY)
    }

    fn detected(days: i64, level: RiskLevel) -> HistoryEvent {
        HistoryEvent::Detected {
            at: at(days),
            event_type: EventType::UnfamiliarFeatures,
            level,
        }
    }

    #[test]
    fn a_sign_in_is_as_risky_as_its_worst_real_time_detection() {
        let d = |kind, level| Detection::new(kind, level, json!({}));
        assert_eq!(sign_in_risk(&[]), RiskLevel::None);
        assert_eq!(
            sign_in_risk(&[d(EventType::UnfamiliarFeatures, RiskLevel::Low)]),
            RiskLevel::Low
        );
        assert_eq!(
            sign_in_risk(&[
                d(EventType::UnfamiliarFeatures, RiskLevel::Low),
                d(EventType::AnonymizedIpAddress, RiskLevel::Medium)
            ]),
            RiskLevel::Medium
        );
        // Two kinds agreeing at medium: high.
        assert_eq!(
            sign_in_risk(&[
                d(EventType::ImpossibleTravel, RiskLevel::Medium),
                d(EventType::AnonymizedIpAddress, RiskLevel::Medium)
            ]),
            RiskLevel::High
        );
        // Offline detections are not the sign-in's.
        assert_eq!(
            sign_in_risk(&[d(EventType::NewCountry, RiskLevel::High)]),
            RiskLevel::None
        );
    }

    #[test]
    fn user_risk_lasts_until_remediated() {
        assert_eq!(user_risk(&[], at(0)).state, RiskState::None);
        let history = vec![detected(1, RiskLevel::Medium), detected(2, RiskLevel::Low)];
        let risk = user_risk(&history, at(3));
        assert_eq!(
            (risk.level, risk.state),
            (RiskLevel::Medium, RiskState::AtRisk)
        );
        // Old detections stop counting.
        assert_eq!(user_risk(&history, at(200)).level, RiskLevel::None);
        // Three lows make medium.
        let lows: Vec<_> = (1..=3).map(|d| detected(d, RiskLevel::Low)).collect();
        assert_eq!(user_risk(&lows, at(4)).level, RiskLevel::Medium);
        // A secure password change ends it, until the next detection.
        let mut history = history;
        history.push(HistoryEvent::Remediated {
            at: at(4),
            how: Remediation::SecurePasswordChange,
        });
        let risk = user_risk(&history, at(5));
        assert_eq!(
            (risk.level, risk.state, risk.detail),
            (
                RiskLevel::None,
                RiskState::Remediated,
                RiskDetail::UserPerformedSecuredPasswordChange
            )
        );
        history.push(detected(6, RiskLevel::Low));
        assert_eq!(user_risk(&history, at(7)).level, RiskLevel::Low);
    }

    #[test]
    fn administrators_confirm_and_dismiss() {
        let history = vec![
            detected(1, RiskLevel::Low),
            HistoryEvent::ConfirmedCompromised { at: at(2) },
            detected(3, RiskLevel::Low),
        ];
        let risk = user_risk(&history, at(4));
        assert_eq!(
            (risk.level, risk.state),
            (RiskLevel::High, RiskState::ConfirmedCompromised),
            "a later low detection does not lower a confirmed compromise"
        );
        let mut dismissed = history.clone();
        dismissed.push(HistoryEvent::Dismissed { at: at(5) });
        let risk = user_risk(&dismissed, at(6));
        assert_eq!(
            (risk.level, risk.detail),
            (RiskLevel::None, RiskDetail::AdminDismissedAllRiskForUser)
        );
        // Order of the slice does not matter; time does.
        let mut shuffled = dismissed.clone();
        shuffled.reverse();
        assert_eq!(user_risk(&shuffled, at(6)), user_risk(&dismissed, at(6)));
    }

    #[test]
    fn a_reported_level_counts_like_a_detection() {
        let history = vec![
            HistoryEvent::Reported {
                at: at(1),
                level: RiskLevel::High,
            },
            detected(2, RiskLevel::Low),
        ];
        let risk = user_risk(&history, at(3));
        assert_eq!(
            (risk.level, risk.state),
            (RiskLevel::High, RiskState::AtRisk)
        );
        let mut reset = history.clone();
        reset.push(HistoryEvent::Remediated {
            at: at(4),
            how: Remediation::AdminGeneratedTemporaryPassword,
        });
        let risk = user_risk(&reset, at(5));
        assert_eq!(
            (risk.level, risk.detail),
            (RiskLevel::None, RiskDetail::AdminGeneratedTemporaryPassword)
        );
        assert!(reset[2].is_reset() && !reset[0].is_reset());
    }
}

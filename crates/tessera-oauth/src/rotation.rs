//! When signing keys are made, used, retired and dropped.
//!
//! Per algorithm there is at most one *current* key (signs) and one *next* key
//! (published, not yet signing). A current key older than `rotate_after_seconds`
//! hands over to the next key once that has been published for `publish_ahead_seconds`
//! (so every relying party's cached JWKS already holds it); the old key is *retired*,
//! still published, until every token it signed has expired (`keep_retired_seconds`),
//! then dropped. Pure: the service applies the actions in one audited transaction,
//! under the tenant's write lock, so one node rotates and the others see the result.

use serde::{Deserialize, Serialize};

use crate::keys::Algorithm;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    Next,
    Current,
    Retired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: Algorithm,
    pub state: State,
    /// Unix seconds of the key's last state change.
    pub since: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub rotate_after_seconds: i64,
    pub publish_ahead_seconds: i64,
    pub keep_retired_seconds: i64,
}

impl Default for Policy {
    /// Rotate monthly, publish a day ahead, keep retired keys two days (tokens live
    /// at most a day).
    fn default() -> Policy {
        Policy {
            rotate_after_seconds: 30 * 86_400,
            publish_ahead_seconds: 86_400,
            keep_retired_seconds: 2 * 86_400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make a key; `current` when nothing signs yet (a new tenant: no one has cached
    /// its JWKS, so there is nothing to publish ahead of).
    Generate {
        alg: Algorithm,
        current: bool,
    },
    /// The next key starts signing.
    Activate {
        kid: String,
    },
    Retire {
        kid: String,
    },
    Delete {
        kid: String,
    },
}

/// What to do now for the algorithms in use.
pub fn plan(keys: &[KeyInfo], algorithms: &[Algorithm], now: i64, policy: &Policy) -> Vec<Action> {
    let mut actions = Vec::new();
    for &alg in algorithms {
        let current = keys
            .iter()
            .filter(|k| k.alg == alg && k.state == State::Current)
            .max_by_key(|k| k.since);
        let next = keys
            .iter()
            .filter(|k| k.alg == alg && k.state == State::Next)
            .max_by_key(|k| k.since);
        match (current, next) {
            (None, None) => actions.push(Action::Generate { alg, current: true }),
            (None, Some(next)) => actions.push(Action::Activate {
                kid: next.kid.clone(),
            }),
            (Some(current), None) => {
                if now - current.since >= policy.rotate_after_seconds - policy.publish_ahead_seconds
                {
                    actions.push(Action::Generate {
                        alg,
                        current: false,
                    });
                }
            }
            (Some(current), Some(next)) => {
                let due = now - current.since >= policy.rotate_after_seconds;
                let published = now - next.since >= policy.publish_ahead_seconds;
                if due && published {
                    actions.push(Action::Activate {
                        kid: next.kid.clone(),
                    });
                    actions.push(Action::Retire {
                        kid: current.kid.clone(),
                    });
                }
            }
        }
        // Extra current keys (two nodes raced before the lock existed, or a restore)
        // retire, newest kept.
        let mut currents: Vec<&KeyInfo> = keys
            .iter()
            .filter(|k| k.alg == alg && k.state == State::Current)
            .collect();
        currents.sort_by_key(|k| std::cmp::Reverse(k.since));
        for extra in currents.iter().skip(1) {
            actions.push(Action::Retire {
                kid: extra.kid.clone(),
            });
        }
    }
    for key in keys.iter().filter(|k| k.state == State::Retired) {
        if now - key.since >= policy.keep_retired_seconds {
            actions.push(Action::Delete {
                kid: key.kid.clone(),
            });
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn key(kid: &str, state: State, since: i64) -> KeyInfo {
        KeyInfo {
            kid: kid.to_string(),
            alg: Algorithm::ES256,
            state,
            since,
        }
    }

    #[test]
    fn a_month_of_rotation() {
        let policy = Policy::default();
        let algs = [Algorithm::ES256];
        // A new tenant gets a current key at once.
        assert_eq!(
            plan(&[], &algs, 0, &policy),
            vec![Action::Generate {
                alg: Algorithm::ES256,
                current: true
            }]
        );
        let a = key("a", State::Current, 0);
        // Nothing to do for 29 days; then the next key is published a day ahead.
        assert!(plan(std::slice::from_ref(&a), &algs, 28 * DAY, &policy).is_empty());
        assert_eq!(
            plan(std::slice::from_ref(&a), &algs, 29 * DAY, &policy),
            vec![Action::Generate {
                alg: Algorithm::ES256,
                current: false
            }]
        );
        let b = key("b", State::Next, 29 * DAY);
        // Not before the old key is due and the new one has been out a day.
        assert!(plan(&[a.clone(), b.clone()], &algs, 29 * DAY + 3600, &policy).is_empty());
        assert_eq!(
            plan(&[a.clone(), b.clone()], &algs, 30 * DAY, &policy),
            vec![
                Action::Activate { kid: "b".into() },
                Action::Retire { kid: "a".into() }
            ]
        );
        // The retired key stays published until its tokens have expired.
        let a = key("a", State::Retired, 30 * DAY);
        let b = key("b", State::Current, 30 * DAY);
        assert!(plan(&[a.clone(), b.clone()], &algs, 31 * DAY, &policy).is_empty());
        assert_eq!(
            plan(&[a, b], &algs, 32 * DAY, &policy),
            vec![Action::Delete { kid: "a".into() }]
        );
    }

    #[test]
    fn duplicates_and_orphans_are_tidied() {
        let policy = Policy::default();
        let algs = [Algorithm::ES256];
        let keys = [
            key("old", State::Current, 0),
            key("new", State::Current, 10),
        ];
        assert_eq!(
            plan(&keys, &algs, 20, &policy),
            vec![Action::Retire { kid: "old".into() }]
        );
        let keys = [key("n", State::Next, 0)];
        assert_eq!(
            plan(&keys, &algs, 1, &policy),
            vec![Action::Activate { kid: "n".into() }]
        );
    }
}

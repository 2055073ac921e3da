//! Continuous access evaluation: the rules by which a change that takes away a
//! reason for access (an account disabled, a password reset, sessions revoked,
//! a user at high risk, an assignment removed) ends the tokens already out.
//!
//! A change is written down as a [`Revocation`]: what it ends ([`Target`]),
//! from when, why, and until when it matters (the longest a token it ends
//! could live). Every node keeps the revocations of the deployment in a
//! [`RevocationSet`] and asks it about each token presented to Tessera's own
//! resources, so that check costs no database read. No I/O here and no
//! clock: times are passed in.

use std::collections::HashMap;

use tessera_core::{TenantId, Timestamp};
use uuid::Uuid;

/// What a revocation ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every token of the user issued before the revocation.
    User(Uuid),
    /// The user's tokens for one application (its client id), issued before
    /// the revocation: the user lost the assignment or role it was given for.
    UserApp(Uuid, String),
    /// Every token of a browser session (the `sid` its tokens carry).
    Session(String),
    /// Every token of a refresh-token family (`fam`).
    Family(String),
    /// One token (`jti`).
    Token(String),
    /// The tokens a client got for itself (no user in them) before the
    /// revocation: its secret was removed, it was disabled or deleted.
    Workload(String),
}

impl Target {
    /// Its kind, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::User(_) => "user",
            Target::UserApp(..) => "userApp",
            Target::Session(_) => "session",
            Target::Family(_) => "family",
            Target::Token(_) => "token",
            Target::Workload(_) => "workload",
        }
    }

    /// Its subject, as stored (a user and a client id are joined by `|`; a
    /// user id holds none).
    pub fn subject(&self) -> String {
        match self {
            Target::User(user) => user.to_string(),
            Target::UserApp(user, client) => format!("{user}|{client}"),
            Target::Session(id) | Target::Family(id) | Target::Token(id) | Target::Workload(id) => {
                id.clone()
            }
        }
    }

    /// The target stored as `kind` and `subject`; `None` for a kind this build
    /// does not know or a subject that is not of its kind.
    pub fn parse(kind: &str, subject: &str) -> Option<Target> {
        Some(match kind {
            "user" => Target::User(Uuid::parse_str(subject).ok()?),
            "userApp" => {
                let (user, client) = subject.split_once('|')?;
                Target::UserApp(Uuid::parse_str(user).ok()?, client.to_string())
            }
            "session" => Target::Session(subject.to_string()),
            "family" => Target::Family(subject.to_string()),
            "token" => Target::Token(subject.to_string()),
            "workload" => Target::Workload(subject.to_string()),
            _ => return None,
        })
    }
}

/// Why access ended: what the resource that refuses a token may tell, and
/// what an event sent to applications says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    AccountDisabled,
    AccountDeleted,
    /// A password changed or reset, a sign-in method removed.
    CredentialChange,
    /// Sessions revoked by the user or an administrator.
    SessionsRevoked,
    /// The user signed out of the session.
    SignedOut,
    /// The user's risk became high, or was confirmed compromised.
    UserRiskHigh,
    /// An application's assignment or role was removed.
    AssignmentRemoved,
    /// The token was revoked (RFC 7009).
    TokenRevoked,
    /// A refresh token was used again: its family ends.
    RefreshTokenReused,
    /// A workload's credential was removed, or it was disabled or deleted.
    WorkloadChanged,
}

impl Reason {
    pub const ALL: [Reason; 10] = [
        Reason::AccountDisabled,
        Reason::AccountDeleted,
        Reason::CredentialChange,
        Reason::SessionsRevoked,
        Reason::SignedOut,
        Reason::UserRiskHigh,
        Reason::AssignmentRemoved,
        Reason::TokenRevoked,
        Reason::RefreshTokenReused,
        Reason::WorkloadChanged,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reason::AccountDisabled => "accountDisabled",
            Reason::AccountDeleted => "accountDeleted",
            Reason::CredentialChange => "credentialChange",
            Reason::SessionsRevoked => "sessionsRevoked",
            Reason::SignedOut => "signedOut",
            Reason::UserRiskHigh => "userRiskHigh",
            Reason::AssignmentRemoved => "assignmentRemoved",
            Reason::TokenRevoked => "tokenRevoked",
            Reason::RefreshTokenReused => "refreshTokenReused",
            Reason::WorkloadChanged => "workloadChanged",
        }
    }

    pub fn parse(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// A change that ends tokens: those of `target` issued before `at` (for a
/// session, a family or one token: all of them), until `until`, after which
/// no token it ends can still be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub tenant: TenantId,
    pub target: Target,
    pub at: Timestamp,
    pub until: Timestamp,
    pub reason: Reason,
}

/// What the set needs to know of a token presented.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub tenant: TenantId,
    /// The user it was issued for (none for a client's own token).
    pub user: Option<Uuid>,
    pub client_id: Option<&'a str>,
    pub sid: Option<&'a str>,
    pub family: Option<&'a str>,
    pub jti: Option<&'a str>,
    /// When it was issued ([`issued_at`]).
    pub issued: Timestamp,
}

/// Why a token is refused: the revocation's reason and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub at: Timestamp,
}

/// A token id that carries the time it was issued to the millisecond (a
/// UUID of version 7): `random` fills the rest.
pub fn token_id(issued: Timestamp, random: [u8; 10]) -> Uuid {
    let millis = u64::try_from(issued.unix_micros() / 1000).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

/// When a token was issued: to the millisecond from its id when that is a
/// [`token_id`] of the second its `iat` says, else the start of that second
/// (so a token of the second of a revocation counts as before it).
pub fn issued_at(jti: Option<&str>, iat: i64) -> Timestamp {
    let second = Timestamp::from_unix_micros(iat.saturating_mul(1_000_000));
    let Some(id) = jti.and_then(|j| Uuid::parse_str(j).ok()) else {
        return second;
    };
    if id.get_version_num() != 7 {
        return second;
    }
    let bytes = id.as_bytes();
    let mut millis = [0u8; 8];
    millis[2..].copy_from_slice(&bytes[..6]);
    let millis = i64::from_be_bytes(millis);
    if millis.div_euclid(1000) == iat {
        Timestamp::from_unix_micros(millis * 1000)
    } else {
        second
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Timestamp,
    until: Timestamp,
    reason: Reason,
}

/// The revocations that still matter, by tenant and target.
#[derive(Debug, Default)]
pub struct RevocationSet {
    entries: HashMap<(TenantId, Target), Entry>,
}

impl RevocationSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a revocation. Of two for the same target the later `at` counts
    /// (it ends more), and it lasts as long as the longer of the two.
    pub fn insert(&mut self, revocation: Revocation) {
        let key = (revocation.tenant, revocation.target);
        let entry = Entry {
            at: revocation.at,
            until: revocation.until,
            reason: revocation.reason,
        };
        self.entries
            .entry(key)
            .and_modify(|known| {
                if entry.at > known.at {
                    known.at = entry.at;
                    known.reason = entry.reason;
                }
                known.until = known.until.max(entry.until);
            })
            .or_insert(entry);
    }

    /// Drops what no longer matters at `now`; how many went.
    pub fn forget_expired(&mut self, now: Timestamp) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, entry| entry.until > now);
        before - self.entries.len()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn get(&self, tenant: TenantId, target: Target) -> Option<&Entry> {
        self.entries.get(&(tenant, target))
    }

    /// Whether a revocation ends the token, and which.
    pub fn refuses(&self, token: &Presented<'_>) -> Option<Refusal> {
        let tenant = token.tenant;
        let refusal = |entry: &Entry| Refusal {
            reason: entry.reason,
            at: entry.at,
        };
        let whole = [
            token.jti.map(|j| Target::Token(j.to_string())),
            token.sid.map(|s| Target::Session(s.to_string())),
            token.family.map(|f| Target::Family(f.to_string())),
        ];
        for target in whole.into_iter().flatten() {
            if let Some(entry) = self.get(tenant, target) {
                return Some(refusal(entry));
            }
        }
        let before = match (token.user, token.client_id) {
            (Some(user), client) => [
                Some(Target::User(user)),
                client.map(|c| Target::UserApp(user, c.to_string())),
            ],
            (None, Some(client)) => [Some(Target::Workload(client.to_string())), None],
            (None, None) => [None, None],
        };
        before
            .into_iter()
            .flatten()
            .filter_map(|target| self.get(tenant, target))
            .find(|entry| token.issued < entry.at)
            .map(refusal)
    }

    /// When the client's own access last ended (the latest such revocation):
    /// what a node remembers of its grants from before is no longer good.
    pub fn workload_revoked(&self, tenant: TenantId, client_id: &str) -> Option<Timestamp> {
        self.get(tenant, Target::Workload(client_id.to_string()))
            .map(|entry| entry.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_800_000_000_000_000 + seconds * 1_000_000)
    }

    fn tenant() -> TenantId {
        TenantId(Uuid::from_u128(1))
    }

    fn revoke(target: Target, at: Timestamp, reason: Reason) -> Revocation {
        Revocation {
            tenant: tenant(),
            target,
            at,
            until: at.plus_seconds(3600),
            reason,
        }
    }

    fn user_token<'a>(user: Uuid, issued: Timestamp) -> Presented<'a> {
        Presented {
            tenant: tenant(),
            user: Some(user),
            client_id: Some("app-1"),
            sid: Some("sid-1"),
            family: Some("fam-1"),
            jti: Some("jti-1"),
            issued,
        }
    }

    #[test]
    fn a_user_revocation_ends_what_was_issued_before_it_only() {
        let user = Uuid::from_u128(7);
        let mut set = RevocationSet::new();
        set.insert(revoke(Target::User(user), t(10), Reason::AccountDisabled));
        let refused = set.refuses(&user_token(user, t(9))).unwrap();
        assert_eq!(refused.reason, Reason::AccountDisabled);
        assert_eq!(refused.at, t(10));
        assert!(set.refuses(&user_token(user, t(10))).is_none());
        assert!(set.refuses(&user_token(Uuid::from_u128(8), t(9))).is_none());
        // Another tenant's user of the same id is another user.
        let mut other = user_token(user, t(9));
        other.tenant = TenantId(Uuid::from_u128(2));
        assert!(set.refuses(&other).is_none());
    }

    #[test]
    fn sessions_families_and_tokens_end_whatever_their_age() {
        let user = Uuid::from_u128(7);
        for (target, reason) in [
            (Target::Session("sid-1".into()), Reason::SignedOut),
            (Target::Family("fam-1".into()), Reason::RefreshTokenReused),
            (Target::Token("jti-1".into()), Reason::TokenRevoked),
        ] {
            let mut set = RevocationSet::new();
            set.insert(revoke(target, t(10), reason));
            assert_eq!(
                set.refuses(&user_token(user, t(20))).unwrap().reason,
                reason
            );
            let mut unrelated = user_token(user, t(20));
            unrelated.sid = Some("sid-2");
            unrelated.family = None;
            unrelated.jti = Some("jti-2");
            assert!(set.refuses(&unrelated).is_none());
        }
    }

    #[test]
    fn an_assignment_removed_ends_that_application_only() {
        let user = Uuid::from_u128(7);
        let mut set = RevocationSet::new();
        set.insert(revoke(
            Target::UserApp(user, "app-1".into()),
            t(10),
            Reason::AssignmentRemoved,
        ));
        assert!(set.refuses(&user_token(user, t(9))).is_some());
        let mut elsewhere = user_token(user, t(9));
        elsewhere.client_id = Some("app-2");
        assert!(set.refuses(&elsewhere).is_none());
    }

    #[test]
    fn a_workload_revocation_ends_its_own_tokens_not_its_users() {
        let mut set = RevocationSet::new();
        set.insert(revoke(
            Target::Workload("app-1".into()),
            t(10),
            Reason::WorkloadChanged,
        ));
        let own = Presented {
            tenant: tenant(),
            user: None,
            client_id: Some("app-1"),
            sid: None,
            family: None,
            jti: None,
            issued: t(9),
        };
        assert!(set.refuses(&own).is_some());
        assert!(
            set.refuses(&Presented {
                issued: t(11),
                ..own
            })
            .is_none()
        );
        assert!(set.refuses(&user_token(Uuid::from_u128(7), t(9))).is_none());
        assert_eq!(set.workload_revoked(tenant(), "app-1"), Some(t(10)));
        assert_eq!(set.workload_revoked(tenant(), "app-2"), None);
    }

    #[test]
    fn the_later_revocation_counts_and_the_longer_lasts() {
        let user = Uuid::from_u128(7);
        let mut set = RevocationSet::new();
        let mut long = revoke(Target::User(user), t(10), Reason::CredentialChange);
        long.until = t(10_000);
        set.insert(long);
        set.insert(revoke(Target::User(user), t(20), Reason::AccountDisabled));
        // An earlier one arriving late changes nothing.
        set.insert(revoke(Target::User(user), t(5), Reason::SessionsRevoked));
        let refused = set.refuses(&user_token(user, t(15))).unwrap();
        assert_eq!(
            (refused.reason, refused.at),
            (Reason::AccountDisabled, t(20))
        );
        assert_eq!(set.forget_expired(t(5000)), 0);
        assert_eq!(set.len(), 1);
        assert_eq!(set.forget_expired(t(10_000)), 1);
        assert!(set.is_empty());
    }

    #[test]
    fn a_token_id_carries_its_millisecond() {
        let issued = Timestamp::from_unix_micros(1_800_000_000_123_456);
        let id = token_id(issued, [7; 10]);
        assert_eq!(id.get_version_num(), 7);
        let at = issued_at(Some(&id.to_string()), 1_800_000_000);
        assert_eq!(at, Timestamp::from_unix_micros(1_800_000_000_123_000));
        // An id of another second, another version, or none: the second.
        let second = Timestamp::from_unix_micros(1_800_000_001_000_000);
        assert_eq!(issued_at(Some(&id.to_string()), 1_800_000_001), second);
        let v4 = Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef);
        assert_eq!(issued_at(Some(&v4.to_string()), 1_800_000_001), second);
        assert_eq!(issued_at(Some("not an id"), 1_800_000_001), second);
        assert_eq!(issued_at(None, 1_800_000_001), second);
    }

    #[test]
    fn targets_and_reasons_read_back_as_written() {
        let user = Uuid::from_u128(7);
        for target in [
            Target::User(user),
            Target::UserApp(user, "client|with|bars".into()),
            Target::Session("s".into()),
            Target::Family("f".into()),
            Target::Token("j".into()),
            Target::Workload("w".into()),
        ] {
            assert_eq!(
                Target::parse(target.kind(), &target.subject()),
                Some(target.clone())
            );
        }
        assert_eq!(Target::parse("user", "not a uuid"), None);
        assert_eq!(Target::parse("userApp", "no bar"), None);
        assert_eq!(Target::parse("device", "x"), None);
        for reason in Reason::ALL {
            assert_eq!(Reason::parse(reason.name()), Some(reason));
        }
        assert_eq!(Reason::parse("other"), None);
    }
}

//! The event types: CAEP 1.0, RISC 1.0 and SSF's own (verification,
//! stream-updated).

/// CAEP's event types share this prefix.
pub const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
/// RISC's event types share this prefix.
pub const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";
/// SSF's own event types share this prefix.
pub const SSF: &str = "https://schemas.openid.net/secevent/ssf/event-type/";

/// An event type Tessera sends or takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    SessionRevoked,
    CredentialChange,
    TokenClaimsChange,
    AssuranceLevelChange,
    DeviceComplianceChange,
    AccountDisabled,
    AccountEnabled,
    AccountPurged,
    CredentialCompromise,
    IdentifierChanged,
    /// RISC's `sessions-revoked` (deprecated by RISC for CAEP's
    /// `session-revoked`; sent only to a stream that asks for it).
    SessionsRevoked,
    Verification,
    StreamUpdated,
}

impl EventType {
    /// What a stream may ask for (all but SSF's own, which any stream gets).
    pub const DELIVERABLE: [EventType; 11] = [
        EventType::SessionRevoked,
        EventType::CredentialChange,
        EventType::TokenClaimsChange,
        EventType::AssuranceLevelChange,
        EventType::DeviceComplianceChange,
        EventType::AccountDisabled,
        EventType::AccountEnabled,
        EventType::AccountPurged,
        EventType::CredentialCompromise,
        EventType::IdentifierChanged,
        EventType::SessionsRevoked,
    ];

    /// Every type: what a stream may ask for, and SSF's own.
    fn all() -> impl Iterator<Item = EventType> {
        EventType::DELIVERABLE
            .into_iter()
            .chain([EventType::Verification, EventType::StreamUpdated])
    }

    fn prefix_and_name(self) -> (&'static str, &'static str) {
        match self {
            EventType::SessionRevoked => (CAEP, "session-revoked"),
            EventType::CredentialChange => (CAEP, "credential-change"),
            EventType::TokenClaimsChange => (CAEP, "token-claims-change"),
            EventType::AssuranceLevelChange => (CAEP, "assurance-level-change"),
            EventType::DeviceComplianceChange => (CAEP, "device-compliance-change"),
            EventType::AccountDisabled => (RISC, "account-disabled"),
            EventType::AccountEnabled => (RISC, "account-enabled"),
            EventType::AccountPurged => (RISC, "account-purged"),
            EventType::CredentialCompromise => (RISC, "credential-compromise"),
            EventType::IdentifierChanged => (RISC, "identifier-changed"),
            EventType::SessionsRevoked => (RISC, "sessions-revoked"),
            EventType::Verification => (SSF, "verification"),
            EventType::StreamUpdated => (SSF, "stream-updated"),
        }
    }

    /// Its URI.
    pub fn uri(self) -> String {
        let (prefix, name) = self.prefix_and_name();
        format!("{prefix}{name}")
    }

    /// The type a URI names; `None` for one Tessera does not know.
    pub fn parse(uri: &str) -> Option<EventType> {
        EventType::all().find(|t| {
            let (prefix, name) = t.prefix_and_name();
            uri.strip_prefix(prefix) == Some(name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        for t in EventType::all() {
            assert_eq!(EventType::parse(&t.uri()), Some(t));
        }
        assert_eq!(
            EventType::SessionRevoked.uri(),
            "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
        );
        assert_eq!(
            EventType::parse("https://schemas.openid.net/secevent/caep/event-type/"),
            None
        );
    }
}

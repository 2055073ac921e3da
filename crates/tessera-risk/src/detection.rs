//! Detections: what was seen, how risky, when it could be known, and why.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::RiskLevel;

/// When a detection is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Timing {
    /// During the sign-in: Conditional Access decides with it.
    RealTime,
    /// From the sign-in log afterwards: it raises the user's risk.
    Offline,
}

/// The kind of a detection, by Entra's `riskEventType` where Entra has one
/// (`entra()` says which), else a name of Tessera's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// The address is on the operator's anonymizer list (Tor exit, VPN, hosting).
    #[serde(rename = "anonymizedIPAddress")]
    AnonymizedIpAddress,
    /// The address is on the operator's list of known-malicious addresses.
    #[serde(rename = "maliciousIPAddress")]
    MaliciousIpAddress,
    /// Properties unlike the user's own baseline.
    #[serde(rename = "unfamiliarFeatures")]
    UnfamiliarFeatures,
    /// Faster than a plane since the last successful sign-in (real time).
    #[serde(rename = "impossibleTravel")]
    ImpossibleTravel,
    /// Atypical travel over a longer window (offline).
    #[serde(rename = "unlikelyTravel")]
    UnlikelyTravel,
    /// One source failing passwords against many accounts.
    #[serde(rename = "passwordSpray")]
    PasswordSpray,
    /// Many failed passwords against one account.
    #[serde(rename = "bruteForce")]
    BruteForce,
    /// A valid password that is in the breached-password list.
    #[serde(rename = "leakedCredentials")]
    LeakedCredentials,
    /// A session or refresh token used from a second network or device at once,
    /// or a sender-constraint (DPoP, certificate) that does not match.
    #[serde(rename = "anomalousToken")]
    AnomalousToken,
    /// The user said a sign-in was not them.
    #[serde(rename = "userReportedSuspiciousActivity")]
    UserReportedSuspiciousActivity,
    /// Repeated denied or abandoned MFA prompts.
    #[serde(rename = "mfaFatigue")]
    MfaFatigue,
    /// A country the tenant has never signed in from (offline).
    #[serde(rename = "newCountry")]
    NewCountry,
    /// Many accounts signing in through one device (offline).
    #[serde(rename = "sharedDevice")]
    SharedDevice,
    /// An administrator confirmed the user compromised.
    #[serde(rename = "adminConfirmedUserCompromised")]
    AdminConfirmedUserCompromised,
    /// A workload signing in from a source unlike its own (network,
    /// country, credential), after it learnt quietly.
    #[serde(rename = "suspiciousSignins")]
    SuspiciousSignins,
    /// A security tool or another identity provider reported the user's
    /// credential compromised (a shared signal received).
    #[serde(rename = "investigationsThreatIntelligence")]
    InvestigationsThreatIntelligence,
}

impl EventType {
    pub const ALL: [EventType; 16] = [
        EventType::AnonymizedIpAddress,
        EventType::MaliciousIpAddress,
        EventType::UnfamiliarFeatures,
        EventType::ImpossibleTravel,
        EventType::UnlikelyTravel,
        EventType::PasswordSpray,
        EventType::BruteForce,
        EventType::LeakedCredentials,
        EventType::AnomalousToken,
        EventType::UserReportedSuspiciousActivity,
        EventType::MfaFatigue,
        EventType::NewCountry,
        EventType::SharedDevice,
        EventType::AdminConfirmedUserCompromised,
        EventType::SuspiciousSignins,
        EventType::InvestigationsThreatIntelligence,
    ];

    /// The name on the wire (`riskEventType`).
    pub const fn name(self) -> &'static str {
        match self {
            EventType::AnonymizedIpAddress => "anonymizedIPAddress",
            EventType::MaliciousIpAddress => "maliciousIPAddress",
            EventType::UnfamiliarFeatures => "unfamiliarFeatures",
            EventType::ImpossibleTravel => "impossibleTravel",
            EventType::UnlikelyTravel => "unlikelyTravel",
            EventType::PasswordSpray => "passwordSpray",
            EventType::BruteForce => "bruteForce",
            EventType::LeakedCredentials => "leakedCredentials",
            EventType::AnomalousToken => "anomalousToken",
            EventType::UserReportedSuspiciousActivity => "userReportedSuspiciousActivity",
            EventType::MfaFatigue => "mfaFatigue",
            EventType::NewCountry => "newCountry",
            EventType::SharedDevice => "sharedDevice",
            EventType::AdminConfirmedUserCompromised => "adminConfirmedUserCompromised",
            EventType::SuspiciousSignins => "suspiciousSignins",
            EventType::InvestigationsThreatIntelligence => "investigationsThreatIntelligence",
        }
    }

    /// Whether Entra ID Protection has a `riskEventType` of this name.
    pub fn entra(self) -> bool {
        !matches!(
            self,
            EventType::BruteForce | EventType::MfaFatigue | EventType::SharedDevice
        )
    }

    /// When it is computed.
    pub fn timing(self) -> Timing {
        match self {
            // A leaked password says the user's credential is known to
            // others: user risk, whichever sign-in found it.
            EventType::UnlikelyTravel
            | EventType::NewCountry
            | EventType::SharedDevice
            | EventType::LeakedCredentials
            | EventType::InvestigationsThreatIntelligence => Timing::Offline,
            _ => Timing::RealTime,
        }
    }
}

/// One detection: its kind, level and evidence (which sign-ins, which
/// properties). The service adds who, when and which sign-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detection {
    pub event_type: EventType,
    pub level: RiskLevel,
    pub timing: Timing,
    pub evidence: Value,
}

impl Detection {
    pub fn new(event_type: EventType, level: RiskLevel, evidence: Value) -> Detection {
        Detection {
            event_type,
            level,
            timing: event_type.timing(),
            evidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for kind in EventType::ALL {
            let wire = serde_json::to_value(kind).unwrap_or_default();
            assert_eq!(wire, kind.name());
            let back: EventType = serde_json::from_value(wire).unwrap_or(EventType::BruteForce);
            assert_eq!(back, kind);
        }
        assert!(EventType::AnonymizedIpAddress.entra());
        assert!(!EventType::BruteForce.entra());
        assert_eq!(EventType::NewCountry.timing(), Timing::Offline);
        assert_eq!(EventType::PasswordSpray.timing(), Timing::RealTime);
    }
}

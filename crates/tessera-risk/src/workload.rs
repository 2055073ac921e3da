//! Workload identities (Graph's `riskyServicePrincipals`): what a client's
//! token requests and tokens say about it.
//!
//! - A client secret found in the operator's breached list: a leaked
//!   credential (high).
//! - A client assertion presented a second time (its `jti` was used), or a
//!   bound token presented without its binding ([`crate::token`]): anomalous
//!   token use. The replayed assertion is refused anyway; that someone holds
//!   a copy is the finding (medium: a client retrying after a network failure
//!   looks the same from here).
//! - A token request from a source unlike the workload's own, after it learnt
//!   quietly as users' baselines do ([`crate::baseline`]): suspicious sign-ins.
//!   The properties are the country, the network (ASN) and subnet, and the
//!   kind of credential (a workload that always used a certificate now using
//!   a secret). Weighed: a new country 3, a new network 2, a new credential
//!   kind 2, a new subnet 1 (3 when no geolocation database says more: the
//!   subnet is all there is); 3 or more is low, 5 or more medium. A workload
//!   scaling out within its own network is not unusual; one reached from
//!   another network with another kind of credential is.

use serde_json::json;
use tessera_core::Timestamp;

use crate::baseline::Baseline;
use crate::{Detection, EventType, RiskLevel};

/// Where a workload's token request came from, and how it authenticated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub asn: Option<u32>,
    /// The client's /24 (IPv4) or /64 (IPv6) network.
    pub subnet: Option<String>,
    /// `clientSecret`, `clientAssertion` or `clientCertificate`.
    pub credential: Option<String>,
}

impl Source {
    fn each(&self) -> [(&'static str, u32, Option<String>); 4] {
        let located = self.country.is_some() || self.asn.is_some();
        [
            ("country", 3, self.country.clone()),
            ("asn", 2, self.asn.map(|a| a.to_string())),
            ("subnet", if located { 1 } else { 3 }, self.subnet.clone()),
            ("credential", 2, self.credential.clone()),
        ]
    }
}

/// Adds a token request's source to the workload's baseline.
pub fn observe(baseline: &mut Baseline, source: &Source, now: Timestamp) {
    baseline.observe_values(&source.each(), now);
}

/// Whether the baseline has seen every property of the source.
pub fn knows(baseline: &Baseline, source: &Source) -> bool {
    baseline.knows_values(&source.each())
}

/// A token request from a source unlike the workload's own
/// (`suspiciousSignins`), with the new properties as evidence; nothing while
/// the baseline learns.
pub fn unusual_source(baseline: &Baseline, source: &Source, now: Timestamp) -> Option<Detection> {
    if baseline.learning(now) {
        return None;
    }
    let (score, new) = baseline.new_values(&source.each());
    let level = match score {
        5.. => RiskLevel::Medium,
        3.. => RiskLevel::Low,
        _ => return None,
    };
    Some(Detection::new(
        EventType::SuspiciousSignins,
        level,
        json!({ "unfamiliar": new, "score": score, "signInsLearnt": baseline.sign_ins }),
    ))
}

/// A client secret in use that is in the breached list (`leakedCredentials`,
/// high); `key_id` names the secret.
pub fn leaked_secret(key_id: &str) -> Detection {
    Detection::new(
        EventType::LeakedCredentials,
        RiskLevel::High,
        json!({ "source": "breachedPasswordList", "credential": "clientSecret", "keyId": key_id }),
    )
}

/// A client assertion presented again (`anomalousToken`, medium): someone
/// holds a copy of one the client signed.
pub fn assertion_replayed() -> Detection {
    Detection::new(
        EventType::AnomalousToken,
        RiskLevel::Medium,
        json!({ "token": "clientAssertion", "reason": "replayed" }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{LEARN_DAYS, LEARN_SIGN_INS};

    const DAY: i64 = 86_400;

    fn at(days: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_700_000_000_000_000).plus_seconds(days * DAY)
    }

    fn home() -> Source {
        Source {
            country: Some("FR".into()),
            asn: Some(16276),
            subnet: Some("51.68.10.0/24".into()),
            credential: Some("clientCertificate".into()),
        }
    }

    fn learnt() -> Baseline {
        let mut baseline = Baseline::new(at(0));
        for i in 0..LEARN_SIGN_INS {
            observe(&mut baseline, &home(), at(i64::from(i) * LEARN_DAYS / 5));
        }
        baseline
    }

    #[test]
    fn a_new_workload_learns_quietly() {
        let mut baseline = Baseline::new(at(0));
        let elsewhere = Source {
            country: Some("RU".into()),
            asn: Some(12389),
            subnet: Some("95.24.0.0/24".into()),
            credential: Some("clientSecret".into()),
        };
        assert_eq!(unusual_source(&baseline, &elsewhere, at(0)), None);
        observe(&mut baseline, &home(), at(0));
        assert!(knows(&baseline, &home()));
        assert!(!knows(&baseline, &elsewhere));
        assert_eq!(unusual_source(&baseline, &elsewhere, at(1)), None);
    }

    #[test]
    fn unusual_sources_by_weight() {
        let baseline = learnt();
        let now = at(LEARN_DAYS + 1);
        assert_eq!(unusual_source(&baseline, &home(), now), None);
        // Scaling out in its own network: nothing.
        let next_door = Source {
            subnet: Some("51.68.11.0/24".into()),
            ..home()
        };
        assert_eq!(unusual_source(&baseline, &next_door, now), None);
        // Another network, same country: low.
        let other_network = Source {
            asn: Some(14061),
            subnet: Some("159.89.0.0/24".into()),
            ..home()
        };
        let found = unusual_source(&baseline, &other_network, now).map(|d| d.level);
        assert_eq!(found, Some(RiskLevel::Low));
        // A secret where a certificate always was, from next door: low.
        let secret = Source {
            credential: Some("clientSecret".into()),
            ..next_door.clone()
        };
        let found = unusual_source(&baseline, &secret, now).map(|d| d.level);
        assert_eq!(found, Some(RiskLevel::Low));
        // Another country and network: medium, with the evidence.
        let abroad = Source {
            country: Some("US".into()),
            asn: Some(14618),
            subnet: Some("3.5.0.0/24".into()),
            ..home()
        };
        let Some(found) = unusual_source(&baseline, &abroad, now) else {
            panic!("abroad is unusual");
        };
        assert_eq!(found.event_type, EventType::SuspiciousSignins);
        assert_eq!(found.level, RiskLevel::Medium);
        assert_eq!(found.evidence["unfamiliar"]["country"], "US");
        assert_eq!(found.evidence["unfamiliar"]["asn"], "14618");
        assert_eq!(found.evidence["signInsLearnt"], LEARN_SIGN_INS);
    }

    #[test]
    fn without_geolocation_the_subnet_is_all_there_is() {
        let plain = |subnet: &str| Source {
            subnet: Some(subnet.into()),
            credential: Some("clientSecret".into()),
            ..Source::default()
        };
        let mut baseline = Baseline::new(at(0));
        for i in 0..LEARN_SIGN_INS {
            observe(&mut baseline, &plain("10.1.2.0/24"), at(i64::from(i)));
        }
        let now = at(LEARN_DAYS + LEARN_SIGN_INS as i64);
        assert_eq!(unusual_source(&baseline, &plain("10.1.2.0/24"), now), None);
        let found = unusual_source(&baseline, &plain("192.0.2.0/24"), now).map(|d| d.level);
        assert_eq!(found, Some(RiskLevel::Low));
    }

    #[test]
    fn leaked_secrets_and_replayed_assertions() {
        let leaked = leaked_secret("k1");
        assert_eq!(leaked.event_type, EventType::LeakedCredentials);
        assert_eq!(leaked.level, RiskLevel::High);
        assert_eq!(leaked.evidence["keyId"], "k1");
        let replayed = assertion_replayed();
        assert_eq!(replayed.event_type, EventType::AnomalousToken);
        assert_eq!(replayed.level, RiskLevel::Medium);
    }
}

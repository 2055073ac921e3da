//! Property tests: an IP list answers as a plain scan of its lines would, and
//! user risk never rises without a detection or a confirmation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use proptest::prelude::*;
use tessera_core::Timestamp;
use tessera_risk::aggregate::{HistoryEvent, Remediation, user_risk};
use tessera_risk::iplist::IpList;
use tessera_risk::{EventType, RiskLevel};

fn net() -> impl Strategy<Value = Ipv4Net> {
    // A small address space, so ranges overlap and touch often.
    (0u32..4096, 20u8..=32).prop_map(|(host, prefix)| {
        Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | host), prefix)
            .unwrap()
            .trunc()
    })
}

proptest! {
    #[test]
    fn lookups_agree_with_a_scan(nets in prop::collection::vec(net(), 0..40),
                                 probes in prop::collection::vec(0u32..8192, 1..64)) {
        // Each line labelled by its number: an address is named by the most
        // specific line holding it (the first of equal ones).
        let text: String = nets.iter().enumerate().map(|(i, n)| format!("{n} l{i}\n")).collect();
        let list = IpList::parse(&text).unwrap();
        for probe in probes {
            let ip = Ipv4Addr::from(0x0a00_0000 | probe);
            let expected = nets
                .iter()
                .enumerate()
                .filter(|(_, n)| n.contains(&ip))
                .max_by_key(|(i, n)| (n.prefix_len(), std::cmp::Reverse(*i)))
                .map(|(i, _)| format!("l{i}"));
            prop_assert_eq!(list.find(IpAddr::V4(ip)).map(str::to_string), expected.clone(), "{}", ip);
            let mapped = IpAddr::V6(ip.to_ipv6_mapped());
            prop_assert_eq!(list.find(mapped).map(str::to_string), expected);
        }
    }

    #[test]
    fn risk_rises_only_with_a_detection_or_a_confirmation(
        kinds in prop::collection::vec(0u8..4, 0..30),
        levels in prop::collection::vec(0u8..4, 30),
    ) {
        let level = |n: u8| match n {
            0 => RiskLevel::None,
            1 => RiskLevel::Low,
            2 => RiskLevel::Medium,
            _ => RiskLevel::High,
        };
        let mut history = Vec::new();
        let mut before = user_risk(&history, Timestamp::from_unix_micros(0));
        for (i, kind) in kinds.iter().enumerate() {
            let at = Timestamp::from_unix_micros((i as i64 + 1) * 1_000_000);
            let event = match kind {
                0 => HistoryEvent::Detected { at, event_type: EventType::UnfamiliarFeatures, level: level(levels[i]) },
                1 => HistoryEvent::Remediated { at, how: Remediation::SecurePasswordChange },
                2 => HistoryEvent::Dismissed { at },
                _ => HistoryEvent::ConfirmedCompromised { at },
            };
            history.push(event.clone());
            let after = user_risk(&history, at);
            match event {
                HistoryEvent::Detected { level, .. } => {
                    prop_assert!(after.level >= before.level);
                    prop_assert!(after.level >= level.min(RiskLevel::High) || level == RiskLevel::None);
                }
                HistoryEvent::ConfirmedCompromised { .. } => prop_assert_eq!(after.level, RiskLevel::High),
                _ => prop_assert_eq!(after.level, RiskLevel::None),
            }
            before = after;
        }
    }
}

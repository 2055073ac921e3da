//! A user's familiar sign-in properties, and the sign-in unlike them.
//!
//! Each property (country, network (ASN), subnet, device, browser, platform)
//! keeps the values seen in the user's successful sign-ins, each with a count
//! and when it was last seen, at most [`MAX_VALUES`] per property (the least
//! seen go first). A new user's baseline learns quietly: nothing is unfamiliar
//! until [`LEARN_SIGN_INS`] sign-ins over at least [`LEARN_DAYS`] days. Values
//! not seen for [`FORGET_DAYS`] are forgotten (the daily recomputation).
//!
//! A sign-in is unfamiliar when enough of its properties are new, weighed:
//! a new country counts 3, a new network 2, the others 1 each; 4 or more is
//! unfamiliar (low), 6 or more medium. A property the sign-in does not carry
//! (no device id) counts as neither.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::Timestamp;

use crate::{Detection, EventType, RiskLevel};

pub const MAX_VALUES: usize = 32;
pub const LEARN_SIGN_INS: u32 = 10;
pub const LEARN_DAYS: i64 = 5;
pub const FORGET_DAYS: i64 = 90;
/// The longest property value kept.
const MAX_VALUE_CHARS: usize = 128;

/// What a sign-in shows of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Properties {
    pub country: Option<String>,
    pub asn: Option<u32>,
    /// The client's /24 (IPv4) or /48 (IPv6) network.
    pub subnet: Option<String>,
    pub device: Option<String>,
    pub browser: Option<String>,
    pub platform: Option<String>,
}

impl Properties {
    /// Each property by name, the weight of a new value, and the value.
    fn each(&self) -> [(&'static str, u32, Option<String>); 6] {
        [
            ("country", 3, self.country.clone()),
            ("asn", 2, self.asn.map(|a| a.to_string())),
            ("subnet", 1, self.subnet.clone()),
            ("device", 1, self.device.clone()),
            ("browser", 1, self.browser.clone()),
            ("platform", 1, self.platform.clone()),
        ]
    }
}

/// The browser family and platform a `User-Agent` names (coarse on purpose:
/// versions change every few weeks and would make every update unfamiliar).
pub fn browser_and_platform(user_agent: &str) -> (Option<String>, Option<String>) {
    let ua = user_agent.to_ascii_lowercase();
    // Order matters: Edge and Opera say Chrome, Chrome says Safari.
    let browser = [
        ("edg/", "Edge"),
        ("opr/", "Opera"),
        ("firefox/", "Firefox"),
        ("chrome/", "Chrome"),
        ("chromium/", "Chrome"),
        ("safari/", "Safari"),
        ("curl/", "curl"),
        ("python", "Python"),
        ("okhttp", "okhttp"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name.to_string());
    let platform = [
        ("android", "Android"),
        ("iphone", "iOS"),
        ("ipad", "iOS"),
        ("windows", "Windows"),
        ("mac os x", "macOS"),
        ("macintosh", "macOS"),
        ("cros", "ChromeOS"),
        ("linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name.to_string());
    (browser, platform)
}

/// A value seen: how often, and when last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    pub count: u32,
    pub last: Timestamp,
}

/// A user's baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    pub first_seen: Timestamp,
    pub sign_ins: u32,
    /// Property name → value → seen.
    pub values: BTreeMap<String, BTreeMap<String, Seen>>,
}

impl Baseline {
    pub fn new(now: Timestamp) -> Baseline {
        Baseline {
            first_seen: now,
            sign_ins: 0,
            values: BTreeMap::new(),
        }
    }

    /// Whether the baseline is still learning (nothing is unfamiliar yet).
    pub fn learning(&self, now: Timestamp) -> bool {
        self.sign_ins < LEARN_SIGN_INS
            || now.unix_micros() - self.first_seen.unix_micros() < LEARN_DAYS * 86_400_000_000
    }

    /// Adds a successful sign-in's properties.
    pub fn observe(&mut self, properties: &Properties, now: Timestamp) {
        self.observe_values(&properties.each(), now);
    }

    /// Adds a sign-in's values, each by its property's name.
    pub(crate) fn observe_values(
        &mut self,
        each: &[(&'static str, u32, Option<String>)],
        now: Timestamp,
    ) {
        self.sign_ins = self.sign_ins.saturating_add(1);
        for (name, _, value) in each.iter().cloned() {
            let Some(value) = value else { continue };
            let value: String = value.chars().take(MAX_VALUE_CHARS).collect();
            let values = self.values.entry(name.to_string()).or_default();
            match values.get_mut(&value) {
                Some(seen) => {
                    seen.count = seen.count.saturating_add(1);
                    seen.last = now;
                }
                None => {
                    if values.len() >= MAX_VALUES
                        && let Some(least) = values
                            .iter()
                            .min_by_key(|(_, seen)| (seen.count, seen.last))
                            .map(|(value, _)| value.clone())
                    {
                        values.remove(&least);
                    }
                    values.insert(
                        value,
                        Seen {
                            count: 1,
                            last: now,
                        },
                    );
                }
            }
        }
    }

    /// Whether every property the sign-in shows has been seen before (so
    /// learning it would only count it again).
    pub fn knows_all(&self, properties: &Properties) -> bool {
        self.knows_values(&properties.each())
    }

    pub(crate) fn knows_values(&self, each: &[(&'static str, u32, Option<String>)]) -> bool {
        each.iter().all(|(name, _, value)| match value {
            None => true,
            Some(value) => {
                let value: String = value.chars().take(MAX_VALUE_CHARS).collect();
                self.values
                    .get(*name)
                    .is_some_and(|values| values.contains_key(&value))
            }
        })
    }

    /// The weighed score of the values never seen before, and which they are
    /// (a property the baseline never saw says nothing).
    pub(crate) fn new_values(
        &self,
        each: &[(&'static str, u32, Option<String>)],
    ) -> (u32, serde_json::Map<String, serde_json::Value>) {
        let mut score = 0;
        let mut new = serde_json::Map::new();
        for (name, weight, value) in each.iter().cloned() {
            let Some(value) = value else { continue };
            let value: String = value.chars().take(MAX_VALUE_CHARS).collect();
            let Some(values) = self.values.get(name) else {
                continue;
            };
            if !values.contains_key(&value) {
                score += weight;
                new.insert(name.to_string(), json!(value));
            }
        }
        (score, new)
    }

    /// Forgets values not seen for [`FORGET_DAYS`] (the daily recomputation).
    /// A baseline left with nothing learns again from the start.
    pub fn forget_old(&mut self, now: Timestamp) {
        let horizon = now.unix_micros() - FORGET_DAYS * 86_400_000_000;
        for values in self.values.values_mut() {
            values.retain(|_, seen| seen.last.unix_micros() >= horizon);
        }
        self.values.retain(|_, values| !values.is_empty());
        if self.values.is_empty() {
            *self = Baseline::new(now);
        }
    }

    /// Whether this sign-in is unlike the user's own: the detection, with the
    /// new properties as evidence.
    pub fn unfamiliar(&self, properties: &Properties, now: Timestamp) -> Option<Detection> {
        if self.learning(now) {
            return None;
        }
        let (score, new) = self.new_values(&properties.each());
        let level = match score {
            6.. => RiskLevel::Medium,
            4.. => RiskLevel::Low,
            _ => return None,
        };
        Some(Detection::new(
            EventType::UnfamiliarFeatures,
            level,
            json!({ "unfamiliar": new, "score": score, "signInsLearnt": self.sign_ins }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    fn at(days: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_700_000_000_000_000 + days * DAY)
    }

    fn home() -> Properties {
        Properties {
            country: Some("FR".into()),
            asn: Some(3215),
            subnet: Some("192.0.2.0/24".into()),
            device: Some("laptop-1".into()),
            browser: Some("Firefox".into()),
            platform: Some("Linux".into()),
        }
    }

    fn learnt() -> Baseline {
        let mut baseline = Baseline::new(at(0));
        for day in 0..12 {
            baseline.observe(&home(), at(day));
        }
        baseline
    }

    #[test]
    fn a_new_user_learns_quietly() {
        let mut baseline = Baseline::new(at(0));
        let stranger = Properties {
            country: Some("KP".into()),
            asn: Some(1),
            ..Properties::default()
        };
        for day in 0..3 {
            baseline.observe(&home(), at(day));
            assert!(baseline.unfamiliar(&stranger, at(day)).is_none());
        }
        // Enough sign-ins but not enough days.
        for _ in 0..20 {
            baseline.observe(&home(), at(3));
        }
        assert!(baseline.learning(at(3)));
        assert!(!baseline.learning(at(6)));
        assert!(baseline.unfamiliar(&stranger, at(6)).is_some());
    }

    #[test]
    fn unfamiliar_by_weight() {
        let baseline = learnt();
        assert!(baseline.unfamiliar(&home(), at(20)).is_none());
        // A new browser and platform on the same network: familiar enough.
        let phone = Properties {
            browser: Some("Safari".into()),
            platform: Some("iOS".into()),
            device: None,
            ..home()
        };
        assert!(baseline.unfamiliar(&phone, at(20)).is_none());
        // A new country and network: low.
        let abroad = Properties {
            country: Some("BR".into()),
            asn: Some(28573),
            ..home()
        };
        let found = baseline
            .unfamiliar(&abroad, at(20))
            .unwrap_or_else(|| panic!("none"));
        assert_eq!(found.level, RiskLevel::Low);
        assert_eq!(found.evidence["unfamiliar"]["country"], "BR");
        // Everything new: medium.
        let stranger = Properties {
            country: Some("BR".into()),
            asn: Some(28573),
            subnet: Some("198.51.100.0/24".into()),
            device: Some("x".into()),
            browser: Some("curl".into()),
            platform: Some("Windows".into()),
        };
        assert_eq!(
            baseline.unfamiliar(&stranger, at(20)).map(|d| d.level),
            Some(RiskLevel::Medium)
        );
    }

    #[test]
    fn values_are_bounded_and_forgotten() {
        let mut baseline = learnt();
        for i in 0..100 {
            baseline.observe(
                &Properties {
                    subnet: Some(format!("10.0.{i}.0/24")),
                    ..home()
                },
                at(30),
            );
        }
        assert_eq!(baseline.values["subnet"].len(), MAX_VALUES);
        // The most seen stays.
        assert!(baseline.values["subnet"].contains_key("192.0.2.0/24"));
        baseline.forget_old(at(30 + FORGET_DAYS + 1));
        assert!(baseline.values.is_empty());
        assert!(
            baseline.learning(at(30 + FORGET_DAYS + 1)),
            "it learns again"
        );
    }

    #[test]
    fn user_agents_are_read_coarsely() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(
            browser_and_platform(firefox),
            (Some("Firefox".into()), Some("Linux".into()))
        );
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0";
        assert_eq!(
            browser_and_platform(edge),
            (Some("Edge".into()), Some("Windows".into()))
        );
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(
            browser_and_platform(iphone),
            (Some("Safari".into()), Some("iOS".into()))
        );
        assert_eq!(browser_and_platform(""), (None, None));
    }
}

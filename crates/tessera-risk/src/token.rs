//! Token anomalies, in real time (`anomalousToken`): a session cookie, or a
//! token bound to a key or a certificate, presented where it was not made.
//!
//! - **Another device.** A session made by one browser on one platform, used
//!   by another (both known from their `User-Agent`): its cookie was copied.
//!   High.
//! - **Two networks at once.** A session used from a second network (the
//!   service's /24 or /64) within five minutes of a use from the one it was
//!   last seen on. Medium. Phones roam between networks all the time, so a
//!   session whose platform is Android or iOS is not judged by its network.
//!   A move to another network that then stays is seen once: the service
//!   remembers the new network as the last one.
//! - **A binding mismatch.** A DPoP-bound or certificate-bound token presented
//!   without its key's proof or with another certificate: whoever holds it
//!   does not hold the key. High.

use serde_json::json;
use tessera_core::Timestamp;

use crate::baseline::browser_and_platform;
use crate::{Detection, EventType, RiskLevel};

/// Two uses this close (in seconds) from two networks are "at once".
pub const AT_ONCE_SECONDS: i64 = 300;

/// One use of a session: from which network, with which `User-Agent`, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUse<'a> {
    pub network: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub at: Timestamp,
}

fn device(user_agent: Option<&str>) -> Option<(String, String)> {
    match user_agent.map(browser_and_platform) {
        Some((Some(browser), Some(platform))) => Some((browser, platform)),
        _ => None,
    }
}

fn mobile(platform: &str) -> bool {
    matches!(platform, "Android" | "iOS")
}

/// A request of a session judged against where the session was made (`made`)
/// and where it was last used (`last`).
pub fn session_replay(
    made: &SessionUse<'_>,
    last: &SessionUse<'_>,
    now: &SessionUse<'_>,
) -> Option<Detection> {
    let made_device = device(made.user_agent);
    let now_device = device(now.user_agent);
    if let (Some(made_device), Some(now_device)) = (&made_device, &now_device)
        && made_device != now_device
    {
        return Some(Detection::new(
            EventType::AnomalousToken,
            RiskLevel::High,
            json!({
                "token": "session",
                "reason": "anotherDevice",
                "sessionDevice": format!("{} on {}", made_device.0, made_device.1),
                "requestDevice": format!("{} on {}", now_device.0, now_device.1),
                "sessionNetwork": made.network,
                "requestNetwork": now.network,
            }),
        ));
    }
    let roaming = made_device
        .as_ref()
        .or(now_device.as_ref())
        .is_some_and(|(_, platform)| mobile(platform));
    let apart = now.at.unix_seconds() - last.at.unix_seconds();
    match (last.network, now.network) {
        (Some(before), Some(here))
            if before != here && !roaming && (0..AT_ONCE_SECONDS).contains(&apart) =>
        {
            Some(Detection::new(
                EventType::AnomalousToken,
                RiskLevel::Medium,
                json!({
                    "token": "session",
                    "reason": "twoNetworksAtOnce",
                    "lastNetwork": before,
                    "requestNetwork": here,
                    "secondsApart": apart,
                }),
            ))
        }
        _ => None,
    }
}

/// A bound token presented without what binds it: `binding` is `dpop` or
/// `certificate`, `token` what was presented (`accessToken`, `refreshToken`).
pub fn binding_mismatch(token: &str, binding: &str) -> Detection {
    Detection::new(
        EventType::AnomalousToken,
        RiskLevel::High,
        json!({ "token": token, "reason": "bindingMismatch", "binding": binding }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WINDOWS: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
    const FIREFOX_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1";

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_micros((1_800_000_000 + seconds) * 1_000_000)
    }

    fn used<'a>(network: &'a str, agent: &'a str, seconds: i64) -> SessionUse<'a> {
        SessionUse {
            network: Some(network),
            user_agent: Some(agent),
            at: at(seconds),
        }
    }

    #[test]
    fn a_cookie_on_another_device_is_high() {
        let made = used("192.0.2.0/24", CHROME_WINDOWS, 0);
        let found = session_replay(&made, &made, &used("192.0.2.0/24", FIREFOX_LINUX, 3600))
            .expect("another device");
        assert_eq!(found.event_type, EventType::AnomalousToken);
        assert_eq!(found.level, RiskLevel::High);
        assert_eq!(found.evidence["reason"], "anotherDevice");
        assert_eq!(found.evidence["requestDevice"], "Firefox on Linux");
        // A newer version of the same browser is the same device.
        let updated = CHROME_WINDOWS.replace("Chrome/120.0", "Chrome/121.0");
        assert!(session_replay(&made, &made, &used("192.0.2.0/24", &updated, 60)).is_none());
        // An unknown agent says nothing about the device.
        assert!(session_replay(&made, &made, &used("192.0.2.0/24", "curl", 60)).is_none());
    }

    #[test]
    fn two_networks_at_once_is_medium_and_a_move_is_not() {
        let made = used("192.0.2.0/24", CHROME_WINDOWS, 0);
        let last = used("192.0.2.0/24", CHROME_WINDOWS, 1000);
        let found = session_replay(&made, &last, &used("198.51.100.0/24", CHROME_WINDOWS, 1100))
            .expect("two networks within five minutes");
        assert_eq!(found.level, RiskLevel::Medium);
        assert_eq!(found.evidence["reason"], "twoNetworksAtOnce");
        assert_eq!(found.evidence["secondsApart"], 100);
        // Long after the last use: a move, not a second network at once.
        assert!(
            session_replay(
                &made,
                &last,
                &used("198.51.100.0/24", CHROME_WINDOWS, 1000 + AT_ONCE_SECONDS)
            )
            .is_none()
        );
        // The same network: nothing.
        assert!(
            session_replay(&made, &last, &used("192.0.2.0/24", CHROME_WINDOWS, 1001)).is_none()
        );
    }

    #[test]
    fn phones_roam() {
        let made = used("192.0.2.0/24", SAFARI_IPHONE, 0);
        assert!(
            session_replay(&made, &made, &used("198.51.100.0/24", SAFARI_IPHONE, 30)).is_none()
        );
        // But a phone's cookie in a desktop browser is another device.
        assert!(session_replay(&made, &made, &used("192.0.2.0/24", CHROME_WINDOWS, 30)).is_some());
    }

    #[test]
    fn a_binding_mismatch_is_high() {
        let found = binding_mismatch("refreshToken", "dpop");
        assert_eq!(found.level, RiskLevel::High);
        assert_eq!(found.evidence["binding"], "dpop");
    }
}

//! Token anomalies, in real time (`anomalousToken`): a session cookie, or a
//! token bound to a key or a certificate, presented where it was not made.
//!
//! - **Another browser.** A session made by one browser family (Chrome,
//!   Firefox, Safari...) used by another, or by a tool (curl, a script), both
//!   known from their `User-Agent`: its cookie was copied. High.
//! - **Another platform.** The same browser on another platform (Windows,
//!   Linux, iOS...): medium, since a browser's desktop mode or a developer's
//!   device emulation changes the platform it names.
//! - **Two networks at once.** A session that moved to a second network (the
//!   service's /24 or /64) and, within five minutes, is used from the one it
//!   left: two places are using it. Medium. A single move (a train, a VPN
//!   turned on) is not; nor a switch between IPv4 and IPv6, which a
//!   dual-stack network makes all the time; nor anything on Android or iOS,
//!   whose networks change all the time.
//! - **A refresh token used twice.** Refresh tokens rotate at each use, so
//!   a rotated one presented again means two holders: high when it comes
//!   from another network than the family's last use; medium from the same
//!   one or when either network is unknown; low when it is the token the
//!   last rotation replaced, from the same network, within
//!   [`RETRY_SECONDS`] of it (a client retrying a refresh whose answer it
//!   lost, two tabs refreshing at once, look so; so does a thief on the
//!   victim's network, which is why it is still told).
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

fn device(user_agent: Option<&str>) -> (Option<String>, Option<String>) {
    user_agent.map(browser_and_platform).unwrap_or((None, None))
}

fn mobile(platform: &str) -> bool {
    matches!(platform, "Android" | "iOS")
}

fn ipv6(network: &str) -> bool {
    network.contains(':')
}

/// A request of a session judged against where the session was made
/// (`made`), where it was last used (`last`), and the network it was on
/// before that (`before`, when it moved).
pub fn session_replay(
    made: &SessionUse<'_>,
    last: &SessionUse<'_>,
    before: Option<&str>,
    now: &SessionUse<'_>,
) -> Option<Detection> {
    let (made_browser, made_platform) = device(made.user_agent);
    let (now_browser, now_platform) = device(now.user_agent);
    // Another browser family (a tool such as curl or a script counts as
    // one), or the same browser on another platform.
    let another_browser = matches!((&made_browser, &now_browser), (Some(a), Some(b)) if a != b);
    let another_platform = matches!((&made_platform, &now_platform), (Some(a), Some(b)) if a != b);
    if another_browser || another_platform {
        let name = |browser: &Option<String>, platform: &Option<String>| {
            format!(
                "{} on {}",
                browser.as_deref().unwrap_or("an unknown browser"),
                platform.as_deref().unwrap_or("an unknown platform")
            )
        };
        return Some(Detection::new(
            EventType::AnomalousToken,
            if another_browser {
                RiskLevel::High
            } else {
                RiskLevel::Medium
            },
            json!({
                "token": "session",
                "reason": if another_browser { "anotherDevice" } else { "anotherPlatform" },
                "sessionDevice": name(&made_browser, &made_platform),
                "requestDevice": name(&now_browser, &now_platform),
                "sessionNetwork": made.network,
                "requestNetwork": now.network,
            }),
        ));
    }
    let roaming = made_platform
        .as_deref()
        .or(now_platform.as_deref())
        .is_some_and(mobile);
    let apart = now.at.unix_seconds() - last.at.unix_seconds();
    match (last.network, now.network, before) {
        (Some(left_for), Some(here), Some(before))
            if here == before
                && left_for != here
                && ipv6(left_for) == ipv6(here)
                && !roaming
                && (0..AT_ONCE_SECONDS).contains(&apart) =>
        {
            Some(Detection::new(
                EventType::AnomalousToken,
                RiskLevel::Medium,
                json!({
                    "token": "session",
                    "reason": "twoNetworksAtOnce",
                    "lastNetwork": left_for,
                    "requestNetwork": here,
                    "secondsApart": apart,
                }),
            ))
        }
        _ => None,
    }
}

/// A rotated token presented again this soon after its rotation, from the
/// same network, may be the client's own retry (seconds).
pub const RETRY_SECONDS: i64 = 30;

/// A rotated refresh token presented again: `last` is the network the
/// family was last refreshed from, `here` this request's, `since` the
/// seconds since that refresh, `newest` whether the token is the one that
/// refresh replaced.
pub fn refresh_replayed(
    last: Option<&str>,
    here: Option<&str>,
    since: i64,
    newest: bool,
) -> Detection {
    let level = match (last, here) {
        (Some(last), Some(here)) if last != here => RiskLevel::High,
        (Some(_), Some(_)) if newest && (0..RETRY_SECONDS).contains(&since) => RiskLevel::Low,
        _ => RiskLevel::Medium,
    };
    Detection::new(
        EventType::AnomalousToken,
        level,
        json!({
            "token": "refreshToken",
            "reason": "replayed",
            "lastNetwork": last,
            "requestNetwork": here,
            "secondsSinceRotation": since,
        }),
    )
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
        let found = session_replay(
            &made,
            &made,
            None,
            &used("192.0.2.0/24", FIREFOX_LINUX, 3600),
        )
        .expect("another device");
        assert_eq!(found.event_type, EventType::AnomalousToken);
        assert_eq!(found.level, RiskLevel::High);
        assert_eq!(found.evidence["reason"], "anotherDevice");
        assert_eq!(found.evidence["requestDevice"], "Firefox on Linux");
        // A newer version of the same browser is the same device.
        let updated = CHROME_WINDOWS.replace("Chrome/120.0", "Chrome/121.0");
        assert!(session_replay(&made, &made, None, &used("192.0.2.0/24", &updated, 60)).is_none());
        // An unknown agent says nothing about the device; a tool is another one.
        assert!(
            session_replay(&made, &made, None, &used("192.0.2.0/24", "agent/1.0", 60)).is_none()
        );
        let script = session_replay(
            &made,
            &made,
            None,
            &used("192.0.2.0/24", "python-requests/2.32", 60),
        )
        .unwrap();
        assert_eq!(script.level, RiskLevel::High);
        // The same browser on another platform (a desktop mode): medium.
        let linux = CHROME_WINDOWS.replace("Windows NT 10.0; Win64; x64", "X11; Linux x86_64");
        let found = session_replay(&made, &made, None, &used("192.0.2.0/24", &linux, 60)).unwrap();
        assert_eq!(found.level, RiskLevel::Medium);
        assert_eq!(found.evidence["reason"], "anotherPlatform");
    }

    #[test]
    fn two_networks_at_once_is_medium_and_a_move_is_not() {
        let made = used("192.0.2.0/24", CHROME_WINDOWS, 0);
        // It moved from 192.0.2 to 198.51.100 at 1000; back to 192.0.2 at 1100.
        let last = used("198.51.100.0/24", CHROME_WINDOWS, 1000);
        let found = session_replay(
            &made,
            &last,
            Some("192.0.2.0/24"),
            &used("192.0.2.0/24", CHROME_WINDOWS, 1100),
        )
        .expect("back to the network it left, within five minutes");
        assert_eq!(found.level, RiskLevel::Medium);
        assert_eq!(found.evidence["reason"], "twoNetworksAtOnce");
        assert_eq!(found.evidence["secondsApart"], 100);
        // A move alone: nothing.
        assert!(
            session_replay(
                &made,
                &made,
                None,
                &used("198.51.100.0/24", CHROME_WINDOWS, 60)
            )
            .is_none()
        );
        // Back, but long after: nothing.
        assert!(
            session_replay(
                &made,
                &last,
                Some("192.0.2.0/24"),
                &used("192.0.2.0/24", CHROME_WINDOWS, 1000 + AT_ONCE_SECONDS)
            )
            .is_none()
        );
        // On to a third network: a move.
        assert!(
            session_replay(
                &made,
                &last,
                Some("192.0.2.0/24"),
                &used("203.0.113.0/24", CHROME_WINDOWS, 1010)
            )
            .is_none()
        );
        // IPv6 and IPv4 of one dual-stack network: nothing.
        let v6 = used("2001:db8:1:2::/64", CHROME_WINDOWS, 1000);
        assert!(
            session_replay(
                &made,
                &v6,
                Some("192.0.2.0/24"),
                &used("192.0.2.0/24", CHROME_WINDOWS, 1010)
            )
            .is_none()
        );
    }

    #[test]
    fn phones_roam() {
        let made = used("192.0.2.0/24", SAFARI_IPHONE, 0);
        let moved = used("198.51.100.0/24", SAFARI_IPHONE, 10);
        let back = used("192.0.2.0/24", SAFARI_IPHONE, 30);
        assert!(session_replay(&made, &moved, Some("192.0.2.0/24"), &back).is_none());
        // But a phone's cookie in a desktop browser is another device.
        let desktop = used("192.0.2.0/24", CHROME_WINDOWS, 30);
        assert!(session_replay(&made, &made, None, &desktop).is_some());
    }

    #[test]
    fn a_binding_mismatch_is_high() {
        let found = binding_mismatch("refreshToken", "dpop");
        assert_eq!(found.level, RiskLevel::High);
        assert_eq!(found.evidence["binding"], "dpop");
    }

    #[test]
    fn a_refresh_token_used_twice() {
        let office = Some("192.0.2.0/24");
        let elsewhere = refresh_replayed(office, Some("203.0.113.0/24"), 5, true);
        assert_eq!(elsewhere.event_type, EventType::AnomalousToken);
        assert_eq!(elsewhere.level, RiskLevel::High);
        assert_eq!(elsewhere.evidence["reason"], "replayed");
        assert_eq!(elsewhere.evidence["lastNetwork"], "192.0.2.0/24");
        assert_eq!(
            refresh_replayed(office, office, 600, true).level,
            RiskLevel::Medium
        );
        assert_eq!(
            refresh_replayed(office, office, 3, true).level,
            RiskLevel::Low,
            "a retry?"
        );
        assert_eq!(
            refresh_replayed(office, office, 3, false).level,
            RiskLevel::Medium,
            "an older token is no retry"
        );
        assert_eq!(
            refresh_replayed(None, office, 3, true).level,
            RiskLevel::Medium
        );
    }
}

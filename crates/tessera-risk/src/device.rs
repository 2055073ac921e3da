//! Many accounts through one device (offline, `sharedDevice`, a Tessera name:
//! Entra has no such detection). A registered device, named by its
//! certificate, through which more accounts sign in within a day than one
//! person would use: a kiosk shared by a shift, or a machine on which someone
//! tries the accounts they stole. Either way each account that joins past the
//! threshold is told (low: a shared kiosk is common, and it is the accounts'
//! other signals that make it more).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::Timestamp;

use crate::{Detection, EventType, RiskLevel};

/// Accounts within the window that make a device shared.
pub const SHARED_DEVICE_ACCOUNTS: usize = 5;
/// The window (seconds).
pub const WINDOW_SECONDS: i64 = 86_400;
/// Most accounts a device's record keeps (the least recent go first).
pub const MAX_ACCOUNTS_KEPT: usize = 100;

/// The accounts that signed in through a device lately, each with its last
/// sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceAccounts {
    pub accounts: BTreeMap<String, Timestamp>,
}

impl DeviceAccounts {
    /// A successful sign-in of `account` through `device` at `at` (given in
    /// time order): the detection when the account is new to the device's
    /// window and brings it to [`SHARED_DEVICE_ACCOUNTS`] or more.
    pub fn signed_in(&mut self, device: &str, account: &str, at: Timestamp) -> Option<Detection> {
        self.accounts
            .retain(|_, last| at.unix_seconds() - last.unix_seconds() < WINDOW_SECONDS);
        let new = !self.accounts.contains_key(account);
        let last = self.accounts.entry(account.to_string()).or_insert(at);
        *last = (*last).max(at);
        while self.accounts.len() > MAX_ACCOUNTS_KEPT {
            let Some(oldest) = self
                .accounts
                .iter()
                .filter(|(name, _)| name.as_str() != account)
                .min_by_key(|(_, last)| **last)
                .map(|(name, _)| name.clone())
            else {
                break;
            };
            self.accounts.remove(&oldest);
        }
        let accounts = self.accounts.len();
        (new && accounts >= SHARED_DEVICE_ACCOUNTS).then(|| {
            Detection::new(
                EventType::SharedDevice,
                RiskLevel::Low,
                json!({ "deviceId": device, "accounts": accounts, "windowHours": WINDOW_SECONDS / 3600 }),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_micros((1_800_000_000 + seconds) * 1_000_000)
    }

    #[test]
    fn the_fifth_account_in_a_day_makes_a_device_shared() {
        let mut device = DeviceAccounts::default();
        for (i, account) in ["a", "b", "c", "d"].iter().enumerate() {
            assert_eq!(device.signed_in("kiosk", account, at(i as i64 * 600)), None);
        }
        // The same people again: nothing new.
        assert_eq!(device.signed_in("kiosk", "a", at(3000)), None);
        let Some(found) = device.signed_in("kiosk", "e", at(3600)) else {
            panic!("a fifth account");
        };
        assert_eq!(found.event_type, EventType::SharedDevice);
        assert_eq!(found.level, RiskLevel::Low);
        assert_eq!(found.evidence["accounts"], 5);
        assert_eq!(found.evidence["deviceId"], "kiosk");
        // Each further account is told; a returning one is not.
        assert!(device.signed_in("kiosk", "f", at(4000)).is_some());
        assert_eq!(device.signed_in("kiosk", "e", at(4100)), None);
    }

    #[test]
    fn accounts_leave_the_window() {
        let mut device = DeviceAccounts::default();
        for (i, account) in ["a", "b", "c", "d"].iter().enumerate() {
            device.signed_in("d1", account, at(i as i64));
        }
        // A day later the four are gone: the fifth is one of two.
        assert_eq!(device.signed_in("d1", "e", at(WINDOW_SECONDS + 10)), None);
        assert_eq!(device.accounts.len(), 1);
    }

    #[test]
    fn a_device_keeps_a_bounded_record() {
        let mut device = DeviceAccounts::default();
        for i in 0..(MAX_ACCOUNTS_KEPT as i64 + 50) {
            device.signed_in("d1", &format!("user{i}"), at(i));
        }
        assert_eq!(device.accounts.len(), MAX_ACCOUNTS_KEPT);
        assert!(
            !device.accounts.contains_key("user0"),
            "the least recent go"
        );
        assert!(device.accounts.contains_key("user149"));
    }
}

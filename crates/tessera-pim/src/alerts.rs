//! Discovery of standing privilege (DoD ZT 1.4.1) and PIM's alerts, pure: what
//! the tenant's role holdings and recent activations say, under the alert
//! settings.
//!
//! - **Permanent privileged assignments**: a privileged role held active with no
//!   end, standing or made permanent through PIM.
//! - **Assigned outside PIM**: a role assignment made directly (any role): it is
//!   neither eligible nor time-bound, and no rule governs it.
//! - **Too many Global Administrators**: more principals holding Global
//!   Administrator at tenant scope (active or eligible) than the setting allows.
//! - **Unused eligibility**: an eligibility for a privileged role, older than the
//!   setting's days, not activated within them (a candidate for removal).
//! - **Activation without MFA**: an activation within the last days whose
//!   sign-in did not prove multifactor authentication (allowed by the role's
//!   settings, but worth a look).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tessera_core::Timestamp;
use uuid::Uuid;

use crate::Window;

/// How a principal holds a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Holding {
    /// A role assignment made outside PIM (active, permanent).
    Standing,
    /// An assignment schedule an administrator made through PIM.
    Assigned,
    /// An activation of an eligibility.
    Activated,
    /// An eligibility.
    Eligible,
}

/// One holding of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The assignment or schedule id.
    pub id: Uuid,
    pub principal: Uuid,
    pub role: Uuid,
    pub scope: String,
    /// Whether the role is privileged (Entra's flag).
    pub privileged: bool,
    pub holding: Holding,
    pub window: Window,
}

/// An activation that was made (from the request history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub request: Uuid,
    pub principal: Uuid,
    pub role: Uuid,
    pub at: Timestamp,
    pub mfa: bool,
}

/// The alerts' thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertSettings {
    /// More Global Administrators than this is an alert.
    #[serde(default = "default_max_global")]
    pub max_global_administrators: usize,
    /// An eligibility not activated for this many days is unused.
    #[serde(default = "default_days")]
    pub unused_eligibility_days: i64,
    /// Activations without MFA are looked for this many days back.
    #[serde(default = "default_days")]
    pub activation_lookback_days: i64,
}

fn default_max_global() -> usize {
    5
}
fn default_days() -> i64 {
    30
}

impl Default for AlertSettings {
    fn default() -> AlertSettings {
        AlertSettings {
            max_global_administrators: default_max_global(),
            unused_eligibility_days: default_days(),
            activation_lookback_days: default_days(),
        }
    }
}

impl AlertSettings {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.max_global_administrators) {
            return Err("maxGlobalAdministrators must be between 1 and 1000".into());
        }
        for (name, days) in [
            ("unusedEligibilityDays", self.unused_eligibility_days),
            ("activationLookbackDays", self.activation_lookback_days),
        ] {
            if !(1..=365).contains(&days) {
                return Err(format!("{name} must be between 1 and 365"));
            }
        }
        Ok(())
    }
}

/// Which alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AlertKind {
    PermanentPrivilegedAssignment,
    AssignedOutsidePim,
    TooManyGlobalAdministrators,
    UnusedEligibility,
    ActivationWithoutMfa,
}

/// One thing an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub principal_id: Uuid,
    pub role_definition_id: Uuid,
    pub directory_scope_id: String,
    /// The assignment or schedule (or, for an activation, the request).
    pub subject_id: Uuid,
    /// Since when (the holding's start, the activation's time).
    pub since: Timestamp,
}

/// An alert with what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub kind: AlertKind,
    pub incidents: Vec<Incident>,
}

fn incident(held: &Held) -> Incident {
    Incident {
        principal_id: held.principal,
        role_definition_id: held.role,
        directory_scope_id: held.scope.clone(),
        subject_id: held.id,
        since: held.window.start,
    }
}

/// The alerts that fire now (an alert with nothing found is left out).
pub fn alerts(
    holdings: &[Held],
    activations: &[Activation],
    global_administrator: Uuid,
    now: Timestamp,
    settings: &AlertSettings,
) -> Vec<Alert> {
    let current = |held: &&Held| held.window.covers(now);
    let mut found: BTreeMap<AlertKind, Vec<Incident>> = BTreeMap::new();
    for held in holdings.iter().filter(current) {
        let permanent = held.window.end.is_none();
        if held.privileged
            && permanent
            && matches!(held.holding, Holding::Standing | Holding::Assigned)
        {
            found
                .entry(AlertKind::PermanentPrivilegedAssignment)
                .or_default()
                .push(incident(held));
        }
        if held.holding == Holding::Standing {
            found
                .entry(AlertKind::AssignedOutsidePim)
                .or_default()
                .push(incident(held));
        }
    }
    let global: Vec<&Held> = holdings
        .iter()
        .filter(current)
        .filter(|h| h.role == global_administrator && h.scope == "/")
        .collect();
    let principals: BTreeSet<Uuid> = global.iter().map(|h| h.principal).collect();
    if principals.len() > settings.max_global_administrators {
        let mut seen = BTreeSet::new();
        let incidents = global
            .iter()
            .filter(|h| seen.insert(h.principal))
            .map(|h| incident(h))
            .collect();
        found.insert(AlertKind::TooManyGlobalAdministrators, incidents);
    }
    let unused_since = now.plus_seconds(-settings.unused_eligibility_days * 86_400);
    for held in holdings
        .iter()
        .filter(current)
        .filter(|h| h.privileged && h.holding == Holding::Eligible)
        .filter(|h| h.window.start <= unused_since)
    {
        let used = activations
            .iter()
            .any(|a| a.principal == held.principal && a.role == held.role && a.at > unused_since);
        if !used {
            found
                .entry(AlertKind::UnusedEligibility)
                .or_default()
                .push(incident(held));
        }
    }
    let lookback = now.plus_seconds(-settings.activation_lookback_days * 86_400);
    for activation in activations
        .iter()
        .filter(|a| !a.mfa && a.at > lookback && a.at <= now)
    {
        found
            .entry(AlertKind::ActivationWithoutMfa)
            .or_default()
            .push(Incident {
                principal_id: activation.principal,
                role_definition_id: activation.role,
                directory_scope_id: "/".to_string(),
                subject_id: activation.request,
                since: activation.at,
            });
    }
    found
        .into_iter()
        .map(|(kind, incidents)| Alert { kind, incidents })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GA: Uuid = Uuid::from_u128(1);
    const READER: Uuid = Uuid::from_u128(2);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_800_000_000_000_000 + seconds * 1_000_000)
    }

    fn held(principal: u128, role: Uuid, holding: Holding, start: i64, end: Option<i64>) -> Held {
        Held {
            id: Uuid::new_v4(),
            principal: Uuid::from_u128(principal),
            role,
            scope: "/".into(),
            privileged: role == GA,
            holding,
            window: Window {
                start: at(start),
                end: end.map(at),
            },
        }
    }

    fn kinds(alerts: &[Alert]) -> Vec<AlertKind> {
        alerts.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn standing_and_permanent_privilege_is_found() {
        let now = at(100 * 86_400);
        let holdings = [
            held(10, GA, Holding::Standing, 0, None),
            held(11, READER, Holding::Standing, 0, None),
            held(12, GA, Holding::Assigned, 0, None),
            // Time-bound and activated ones are what PIM is for.
            held(13, GA, Holding::Assigned, 0, Some(200 * 86_400)),
            held(14, GA, Holding::Activated, 0, Some(101 * 86_400)),
        ];
        let found = alerts(&holdings, &[], GA, now, &AlertSettings::default());
        assert_eq!(
            kinds(&found),
            [
                AlertKind::PermanentPrivilegedAssignment,
                AlertKind::AssignedOutsidePim
            ]
        );
        let permanent: Vec<Uuid> = found[0].incidents.iter().map(|i| i.principal_id).collect();
        assert_eq!(permanent, [Uuid::from_u128(10), Uuid::from_u128(12)]);
        assert_eq!(found[1].incidents.len(), 2);
    }

    #[test]
    fn global_administrators_are_counted_by_principal() {
        let now = at(10);
        let settings = AlertSettings {
            max_global_administrators: 2,
            ..AlertSettings::default()
        };
        let mut holdings = vec![
            held(1, GA, Holding::Eligible, 0, None),
            held(1, GA, Holding::Activated, 0, Some(20)),
            held(2, GA, Holding::Eligible, 0, None),
        ];
        let found = alerts(&holdings, &[], GA, now, &settings);
        assert!(!kinds(&found).contains(&AlertKind::TooManyGlobalAdministrators));
        holdings.push(held(3, GA, Holding::Eligible, 0, None));
        // An ended one does not count.
        holdings.push(held(4, GA, Holding::Assigned, 0, Some(5)));
        let found = alerts(&holdings, &[], GA, now, &settings);
        let too_many = found
            .iter()
            .find(|a| a.kind == AlertKind::TooManyGlobalAdministrators)
            .unwrap();
        assert_eq!(too_many.incidents.len(), 3);
    }

    #[test]
    fn unused_eligibilities_and_activations_without_mfa() {
        let day = 86_400;
        let now = at(100 * day);
        let old = held(1, GA, Holding::Eligible, 0, None);
        let used = held(2, GA, Holding::Eligible, 0, None);
        let recent = held(3, GA, Holding::Eligible, 95 * day, None);
        let activations = [
            Activation {
                request: Uuid::from_u128(7),
                principal: used.principal,
                role: GA,
                at: at(90 * day),
                mfa: true,
            },
            Activation {
                request: Uuid::from_u128(8),
                principal: old.principal,
                role: GA,
                at: at(20 * day),
                mfa: false,
            },
            Activation {
                request: Uuid::from_u128(9),
                principal: recent.principal,
                role: GA,
                at: at(99 * day),
                mfa: false,
            },
        ];
        let found = alerts(
            &[old.clone(), used, recent],
            &activations,
            GA,
            now,
            &AlertSettings::default(),
        );
        let unused = found
            .iter()
            .find(|a| a.kind == AlertKind::UnusedEligibility)
            .unwrap();
        assert_eq!(unused.incidents.len(), 1);
        assert_eq!(unused.incidents[0].principal_id, old.principal);
        let without = found
            .iter()
            .find(|a| a.kind == AlertKind::ActivationWithoutMfa)
            .unwrap();
        // Only the one within the last 30 days.
        assert_eq!(without.incidents.len(), 1);
        assert_eq!(without.incidents[0].subject_id, Uuid::from_u128(9));
    }

    #[test]
    fn settings_are_bounded() {
        assert!(AlertSettings::default().check().is_ok());
        for bad in [
            AlertSettings {
                max_global_administrators: 0,
                ..AlertSettings::default()
            },
            AlertSettings {
                unused_eligibility_days: 0,
                ..AlertSettings::default()
            },
            AlertSettings {
                activation_lookback_days: 366,
                ..AlertSettings::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}

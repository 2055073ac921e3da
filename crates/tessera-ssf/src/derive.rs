//! Which of Tessera's audited changes are which shared signals.
//!
//! The transmitter reads the tenant's audit trail in order (it is written in
//! the same transaction as each change, so no change is missed and none is
//! told that did not happen) and turns each event into the signals it means:
//!
//! | audit action | signal |
//! |---|---|
//! | `user.update`, accountEnabled true → false | RISC account-disabled |
//! | `user.update`, accountEnabled false → true | RISC account-enabled |
//! | `user.update`, userPrincipalName or mail changed | RISC identifier-changed (subject: the old address) |
//! | `user.delete` | RISC account-purged |
//! | `user.sessions.revoke` | CAEP session-revoked, RISC sessions-revoked |
//! | `user.password.set`, `user.password.change` | CAEP credential-change (password, update) |
//! | `user.authMethod.add` / `.remove` | CAEP credential-change (create / delete) |
//! | `riskState.update`, a user's risk became high | CAEP session-revoked (Tessera ended the user's tokens) |
//! | `riskState.update`, a user confirmed compromised | RISC credential-compromise |
//! | `servicePrincipal.appRoleAssignment.remove`, a user's | CAEP session-revoked, to that application only |
//! | `device.update`, isCompliant changed | CAEP device-compliance-change |
//! | `signal.assuranceLevelChange` | CAEP assurance-level-change |
//! | `accessToken.refuse`, a user's token presented outside its locations | CAEP token-claims-change (`trusted_network` false) |

use serde_json::{Map, Value, json};
use tessera_core::Timestamp;
use tessera_directory::audit::AuditEvent;
use uuid::Uuid;

use crate::events::EventType;

/// Who a signal is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    /// A user, by object id.
    User(Uuid),
    /// A user, by an address of theirs (the old one, for identifier-changed).
    UserAddress { user: Uuid, email: String },
    /// A device, by object id.
    Device(Uuid),
}

impl About {
    /// The user it is about, if any.
    pub fn user(&self) -> Option<Uuid> {
        match self {
            About::User(user) | About::UserAddress { user, .. } => Some(*user),
            About::Device(_) => None,
        }
    }
}

/// One signal an audited change means.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub event: EventType,
    pub about: About,
    /// The event's own members (besides `event_timestamp`,
    /// `initiating_entity` and `reason_admin`, which every one gets).
    pub members: Map<String, Value>,
    /// When the change happened.
    pub at: Timestamp,
    /// `admin`, `user`, `policy` or `system`.
    pub initiating_entity: &'static str,
    /// Why, for an administrator (English).
    pub reason: String,
    /// Only the streams of this application (its service principal's object
    /// id) get it: it is about the user's access to that application.
    pub only_service_principal: Option<Uuid>,
}

fn changed<'a>(event: &'a AuditEvent, attribute: &str) -> Option<(&'a Value, &'a Value)> {
    event
        .changes
        .iter()
        .find(|c| c.attribute == attribute)
        .map(|c| (&c.old_value, &c.new_value))
}

fn members(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Who started a change to `subject`: the user themself, an administrator,
/// or the system (provisioning, a job).
fn initiator(event: &AuditEvent, subject: Option<Uuid>) -> &'static str {
    match event.actor.actor_type.as_str() {
        "user" if event.actor.id.is_some() && event.actor.id == subject => "user",
        "user" => "admin",
        "servicePrincipal" => "admin",
        _ => "system",
    }
}

/// CAEP's `credential_type` for a Tessera method type; `None` for one an
/// application has no use to hear of (a temporary access pass).
fn credential_type(method: &str) -> Option<&'static str> {
    match method {
        "password" => Some("password"),
        "fido2" => Some("fido2-roaming"),
        "softwareOath" => Some("app"),
        "x509Certificate" | "certificate" => Some("x509"),
        _ => None,
    }
}

/// The signals an audited change means (none for most).
pub fn signals(event: &AuditEvent) -> Vec<Signal> {
    let target = event.target.as_ref();
    let target_id = target.and_then(|t| Uuid::parse_str(&t.id).ok());
    let target_type = target.map(|t| t.target_type.as_str()).unwrap_or("");
    let signal =
        |event_type: EventType, about: About, members: Map<String, Value>, reason: &str| Signal {
            event: event_type,
            initiating_entity: initiator(event, about.user()),
            about,
            members,
            at: event.time,
            reason: reason.to_string(),
            only_service_principal: None,
        };
    let mut out = Vec::new();
    match (event.action.as_str(), target_id) {
        ("user.update", Some(user)) => {
            match changed(event, "accountEnabled") {
                Some((Value::Bool(true), Value::Bool(false))) => out.push(signal(
                    EventType::AccountDisabled,
                    About::User(user),
                    Map::new(),
                    "the account was disabled",
                )),
                Some((Value::Bool(false), Value::Bool(true))) => out.push(signal(
                    EventType::AccountEnabled,
                    About::User(user),
                    Map::new(),
                    "the account was enabled",
                )),
                _ => {}
            }
            for attribute in ["userPrincipalName", "mail"] {
                if let Some((Value::String(old), new)) = changed(event, attribute)
                    && !old.is_empty()
                    && Some(old.as_str()) != new.as_str()
                {
                    let mut members = Map::new();
                    if let Some(new) = new.as_str().filter(|n| !n.is_empty()) {
                        members.insert("new-value".into(), Value::from(new));
                    }
                    out.push(signal(
                        EventType::IdentifierChanged,
                        About::UserAddress {
                            user,
                            email: old.clone(),
                        },
                        members,
                        "the user's address changed",
                    ));
                }
            }
        }
        ("user.delete", Some(user)) => out.push(signal(
            EventType::AccountPurged,
            About::User(user),
            Map::new(),
            "the account was deleted",
        )),
        ("user.sessions.revoke", Some(user)) => {
            for event_type in [EventType::SessionRevoked, EventType::SessionsRevoked] {
                out.push(signal(
                    event_type,
                    About::User(user),
                    Map::new(),
                    "the user's sessions were revoked",
                ));
            }
        }
        ("user.password.set" | "user.password.change", Some(user)) => out.push(signal(
            EventType::CredentialChange,
            About::User(user),
            members(json!({ "credential_type": "password", "change_type": "update" })),
            "the password changed",
        )),
        (action @ ("user.authMethod.add" | "user.authMethod.remove"), Some(user)) => {
            let method = event.details.get("type").and_then(Value::as_str);
            if let Some(credential_type) = method.and_then(credential_type) {
                let (change_type, reason) = if action.ends_with(".add") {
                    ("create", "a sign-in method was added")
                } else {
                    ("delete", "a sign-in method was removed")
                };
                let mut members = members(
                    json!({ "credential_type": credential_type, "change_type": change_type }),
                );
                if let Some(name) = event
                    .details
                    .get("displayName")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                {
                    members.insert("friendly_name".into(), Value::from(name));
                }
                out.push(signal(
                    EventType::CredentialChange,
                    About::User(user),
                    members,
                    reason,
                ));
            }
        }
        ("riskState.update", Some(user)) if target_type == "user" => {
            if let Some((old, Value::String(new))) = changed(event, "riskState")
                && new == "confirmedCompromised"
                && old.as_str() != Some("confirmedCompromised")
            {
                out.push(signal(
                    EventType::CredentialCompromise,
                    About::User(user),
                    members(json!({ "credential_type": "password" })),
                    "the user was confirmed compromised",
                ));
            } else if let Some((old, Value::String(new))) = changed(event, "riskLevel")
                && new == "high"
                && old.as_str() != Some("high")
            {
                let mut revoked = signal(
                    EventType::SessionRevoked,
                    About::User(user),
                    Map::new(),
                    "the user's risk became high",
                );
                revoked.initiating_entity = "policy";
                out.push(revoked);
            }
        }
        ("servicePrincipal.appRoleAssignment.remove", Some(resource)) => {
            if let Some(user) = event
                .details
                .get("principalId")
                .and_then(Value::as_str)
                .and_then(|p| Uuid::parse_str(p).ok())
                && event.details.get("principalType").and_then(Value::as_str) == Some("User")
            {
                let mut revoked = signal(
                    EventType::SessionRevoked,
                    About::User(user),
                    Map::new(),
                    "the user's assignment to the application was removed",
                );
                revoked.initiating_entity = "admin";
                revoked.only_service_principal = Some(resource);
                out.push(revoked);
            }
        }
        // Strict location enforcement refused a user's token where it was
        // presented: the network it came from is not a trusted one (CAEP
        // 1.0 §3.2's own example of a changed claim).
        ("accessToken.refuse", Some(user))
            if target_type == "user"
                && event.details.get("reason").and_then(Value::as_str) == Some("location") =>
        {
            let mut refused = signal(
                EventType::TokenClaimsChange,
                About::User(user),
                members(json!({ "claims": { "trusted_network": "false" } })),
                "an access token was presented from outside the locations Conditional Access allows",
            );
            refused.initiating_entity = "policy";
            out.push(refused);
        }
        ("device.update", Some(device)) => {
            if let Some((old, Value::Bool(new))) = changed(event, "isCompliant")
                && old.as_bool() != Some(*new)
            {
                let status = |compliant: bool| {
                    if compliant {
                        "compliant"
                    } else {
                        "not-compliant"
                    }
                };
                out.push(signal(
                    EventType::DeviceComplianceChange,
                    About::Device(device),
                    members(json!({
                        "previous_status": status(old.as_bool().unwrap_or(false)),
                        "current_status": status(*new),
                    })),
                    if *new {
                        "the device became compliant"
                    } else {
                        "the device is no longer compliant"
                    },
                ));
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use tessera_directory::audit::{Actor, ChangeRecord, TargetRef};

    use super::*;

    fn event(action: &str, target: (&str, Uuid), changes: &[(&str, Value, Value)]) -> AuditEvent {
        AuditEvent {
            id: Uuid::from_u128(9),
            tenant_id: Uuid::from_u128(1),
            time: Timestamp::from_unix_micros(1_800_000_000_000_000),
            actor: Actor {
                actor_type: "user".into(),
                id: Some(Uuid::from_u128(2)),
                display_name: "admin@contoso.com".into(),
                credential: None,
            },
            action: action.into(),
            target: Some(TargetRef {
                target_type: target.0.into(),
                id: target.1.to_string(),
                display_name: "x".into(),
            }),
            changes: changes
                .iter()
                .map(|(a, o, n)| ChangeRecord {
                    attribute: (*a).into(),
                    old_value: o.clone(),
                    new_value: n.clone(),
                })
                .collect(),
            details: Value::Null,
            correlation_id: "c".into(),
            client_address: None,
        }
    }

    fn kinds(signals: &[Signal]) -> Vec<EventType> {
        signals.iter().map(|s| s.event).collect()
    }

    #[test]
    fn user_changes() {
        let user = Uuid::from_u128(7);
        let disabled = signals(&event(
            "user.update",
            ("user", user),
            &[("accountEnabled", json!(true), json!(false))],
        ));
        assert_eq!(kinds(&disabled), [EventType::AccountDisabled]);
        assert_eq!(disabled[0].initiating_entity, "admin");
        assert_eq!(disabled[0].about, About::User(user));
        let enabled = signals(&event(
            "user.update",
            ("user", user),
            &[("accountEnabled", json!(false), json!(true))],
        ));
        assert_eq!(kinds(&enabled), [EventType::AccountEnabled]);
        let renamed = signals(&event(
            "user.update",
            ("user", user),
            &[(
                "userPrincipalName",
                json!("adele@contoso.com"),
                json!("adele.v@contoso.com"),
            )],
        ));
        assert_eq!(kinds(&renamed), [EventType::IdentifierChanged]);
        assert_eq!(
            renamed[0].about,
            About::UserAddress {
                user,
                email: "adele@contoso.com".into()
            }
        );
        assert_eq!(renamed[0].members["new-value"], "adele.v@contoso.com");
        assert!(
            signals(&event(
                "user.update",
                ("user", user),
                &[("displayName", json!("A"), json!("B"))]
            ))
            .is_empty()
        );
        assert_eq!(
            kinds(&signals(&event(
                "user.sessions.revoke",
                ("user", user),
                &[]
            ))),
            [EventType::SessionRevoked, EventType::SessionsRevoked]
        );
        let own = signals(&AuditEvent {
            actor: Actor {
                actor_type: "user".into(),
                id: Some(user),
                display_name: "adele".into(),
                credential: None,
            },
            ..event("user.password.change", ("user", user), &[])
        });
        assert_eq!(own[0].initiating_entity, "user");
        assert_eq!(own[0].members["credential_type"], "password");
    }

    #[test]
    fn methods_risk_assignments_devices() {
        let user = Uuid::from_u128(7);
        let mut removed = event("user.authMethod.remove", ("user", user), &[]);
        removed.details = json!({ "type": "fido2", "displayName": "YubiKey" });
        let out = signals(&removed);
        assert_eq!(out[0].members["change_type"], "delete");
        assert_eq!(out[0].members["credential_type"], "fido2-roaming");
        assert_eq!(out[0].members["friendly_name"], "YubiKey");
        removed.details = json!({ "type": "temporaryAccessPass" });
        assert!(signals(&removed).is_empty());

        let high = signals(&event(
            "riskState.update",
            ("user", user),
            &[("riskLevel", json!("low"), json!("high"))],
        ));
        assert_eq!(kinds(&high), [EventType::SessionRevoked]);
        assert_eq!(high[0].initiating_entity, "policy");
        let confirmed = signals(&event(
            "riskState.update",
            ("user", user),
            &[
                ("riskLevel", json!("low"), json!("high")),
                ("riskState", json!("atRisk"), json!("confirmedCompromised")),
            ],
        ));
        assert_eq!(kinds(&confirmed), [EventType::CredentialCompromise]);
        assert!(
            signals(&event(
                "riskState.update",
                ("servicePrincipal", user),
                &[("riskLevel", json!("low"), json!("high"))],
            ))
            .is_empty()
        );

        let resource = Uuid::from_u128(5);
        let mut unassigned = event(
            "servicePrincipal.appRoleAssignment.remove",
            ("servicePrincipal", resource),
            &[],
        );
        unassigned.details = json!({ "principalId": user, "principalType": "User" });
        let out = signals(&unassigned);
        assert_eq!(out[0].only_service_principal, Some(resource));
        assert_eq!(out[0].about, About::User(user));
        unassigned.details = json!({ "principalId": user, "principalType": "Group" });
        assert!(signals(&unassigned).is_empty());

        let device = Uuid::from_u128(3);
        let out = signals(&event(
            "device.update",
            ("device", device),
            &[("isCompliant", json!(true), json!(false))],
        ));
        assert_eq!(out[0].about, About::Device(device));
        assert_eq!(out[0].members["previous_status"], "compliant");
        assert_eq!(out[0].members["current_status"], "not-compliant");

        let mut refused = event("accessToken.refuse", ("user", user), &[]);
        refused.details = json!({ "reason": "location", "policyId": Uuid::from_u128(4) });
        let out = signals(&refused);
        assert_eq!(kinds(&out), [EventType::TokenClaimsChange]);
        assert_eq!(
            out[0].members["claims"],
            json!({ "trusted_network": "false" })
        );
        assert_eq!(out[0].initiating_entity, "policy");
        refused.details = json!({ "reason": "other" });
        assert!(signals(&refused).is_empty());
        let workload = event("accessToken.refuse", ("servicePrincipal", user), &[]);
        assert!(signals(&workload).is_empty());
    }
}

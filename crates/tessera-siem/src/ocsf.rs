//! The mapping to OCSF 1.3 (the Open Cybersecurity Schema Framework), which every
//! format carries: a sign-in is an *Authentication* event (class 3002), an audit
//! event an *API Activity* (6003), a risk detection a *Detection Finding* (2004).
//! What OCSF has no attribute for goes under `unmapped` with its Graph name.
//! docs/siem-export.md lists the mapping field by field.
//!
//! No secret ever leaves: the records hold none by design (the audit trail says a
//! secret changed, never what it is), and [`redact`] takes out, as a second guard,
//! the value of any member whose name says it is one.

use serde_json::{Map, Value, json};

use crate::{Origin, Record, Stream};

/// The OCSF version the events follow.
pub const VERSION: &str = "1.3.0";

/// OCSF's severity ids.
pub mod severity {
    pub const INFORMATIONAL: u8 = 1;
    pub const LOW: u8 = 2;
    pub const MEDIUM: u8 = 3;
    pub const HIGH: u8 = 4;
}

/// A record as an OCSF event (an object).
pub fn event(record: &Record, origin: &Origin) -> Value {
    let mut event = match record.stream {
        Stream::SignIns => authentication(&record.view),
        Stream::AuditLogs => api_activity(&record.view),
        Stream::RiskDetections => detection_finding(&record.view),
    };
    let time_ms = record.time().map(|t| t.unix_micros() / 1000);
    let Some(object) = event.as_object_mut() else {
        return event;
    };
    if let Some(ms) = time_ms {
        object.insert("time".into(), ms.into());
    }
    let mut metadata = json!({
        "version": VERSION,
        "product": {
            "name": "Tessera",
            "vendor_name": "Tessera",
            "version": origin.product_version,
        },
        "uid": record.id(),
        "log_name": record.stream.name(),
        "sequence": record.seq,
        "tenant_uid": origin.tenant_id,
    });
    if let Some(correlation) = record.view["correlationId"]
        .as_str()
        .filter(|c| !c.is_empty())
    {
        metadata["correlation_uid"] = correlation.into();
    }
    object.insert("metadata".into(), metadata);
    let class = object["class_uid"].as_u64().unwrap_or(0);
    let activity = object["activity_id"].as_u64().unwrap_or(0);
    object.insert("type_uid".into(), (class * 100 + activity).into());
    redact(&mut event);
    prune(&mut event);
    event
}

/// The event's severity id (for syslog's severity, CEF's and OTLP's).
pub fn severity_of(event: &Value) -> u8 {
    event["severity_id"]
        .as_u64()
        .and_then(|s| u8::try_from(s).ok())
        .unwrap_or(severity::INFORMATIONAL)
}

fn risk_severity(level: &str) -> u8 {
    match level {
        "high" => severity::HIGH,
        "medium" => severity::MEDIUM,
        "low" => severity::LOW,
        _ => severity::INFORMATIONAL,
    }
}

fn text(view: &Value, key: &str) -> Option<String> {
    view[key]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn authentication(view: &Value) -> Value {
    let result = view["result"].as_str().unwrap_or("");
    let (status_id, status) = match result {
        "success" => (1, "Success"),
        "failure" => (2, "Failure"),
        _ => (99, "Other"),
    };
    let risk = view["riskLevelDuringSignIn"].as_str().unwrap_or("none");
    let base = if result == "success" {
        severity::INFORMATIONAL
    } else {
        severity::LOW
    };
    let workload = view["signInEventType"] == "servicePrincipal";
    let mfa = view["authenticationRequirement"] == "multiFactorAuthentication";
    json!({
        "category_uid": 3,
        "category_name": "Identity & Access Management",
        "class_uid": 3002,
        "class_name": "Authentication",
        "activity_id": 1,
        "activity_name": "Logon",
        "status_id": status_id,
        "status": status,
        "status_code": text(view, "failureCode"),
        "status_detail": text(view, "failureReason"),
        "severity_id": base.max(risk_severity(risk)),
        "is_mfa": mfa,
        "logon_type_id": if workload { 3 } else { 2 },
        "logon_type": if workload { "Network" } else { "Interactive" },
        "count": view["attemptCount"].as_i64(),
        "start_time": view["createdDateTime"].as_str().and_then(millis),
        "user": {
            "uid": text(view, "userId"),
            "name": text(view, "userPrincipalName"),
            "type_id": if workload { 99 } else { 1 },
            "type": if workload { "Service" } else { "User" },
        },
        "src_endpoint": { "ip": text(view, "clientAddress") },
        "http_request": { "user_agent": text(view, "userAgent") },
        "service": { "name": text(view, "appDisplayName"), "uid": text(view, "appId") },
        "unmapped": {
            "authenticationMethods": view["authenticationMethods"],
            "authenticationRequirement": view["authenticationRequirement"],
            "conditionalAccessStatus": view["conditionalAccessStatus"],
            "riskLevelDuringSignIn": view["riskLevelDuringSignIn"],
            "riskEventTypes_v2": view["riskEventTypes_v2"],
            "signInEventType": view["signInEventType"],
        },
    })
}

fn millis(rfc3339: &str) -> Option<i64> {
    tessera_core::Timestamp::parse_rfc3339(rfc3339)
        .ok()
        .map(|t| t.unix_micros() / 1000)
}

/// `create`, `update`, `delete` and `read` at the end of an action name (or
/// before its last part) are OCSF's activities; anything else is `Other`.
fn activity_of(action: &str) -> (u8, &'static str) {
    let verb = action.rsplit('.').next().unwrap_or("");
    match verb {
        "create" | "add" | "generate" | "import" => (1, "Create"),
        "read" | "export" => (2, "Read"),
        "update" | "state" | "replace" | "remediate" => (3, "Update"),
        "delete" | "remove" | "purge" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

fn api_activity(view: &Value) -> Value {
    let action = view["action"].as_str().unwrap_or("");
    let (activity_id, activity) = activity_of(action);
    let actor = &view["actor"];
    let target = &view["target"];
    let resources = if target.is_object() {
        json!([{
            "uid": target["id"],
            "type": target["type"],
            "name": target["displayName"],
        }])
    } else {
        Value::Null
    };
    json!({
        "category_uid": 6,
        "category_name": "Application Activity",
        "class_uid": 6003,
        "class_name": "API Activity",
        "activity_id": activity_id,
        "activity_name": activity,
        "status_id": 1,
        "status": "Success",
        "severity_id": severity::INFORMATIONAL,
        "actor": {
            "user": {
                "uid": actor["id"],
                "name": actor["displayName"],
                "type": actor["type"],
            },
            "authorizations": actor["credential"].as_str().map(|c| json!([{ "policy": { "name": c } }])),
        },
        "api": {
            "operation": action,
            "service": { "name": "Tessera" },
        },
        "resources": resources,
        "src_endpoint": { "ip": text(view, "clientAddress") },
        "unmapped": {
            "changes": view["changes"],
            "details": view["details"],
        },
    })
}

fn detection_finding(view: &Value) -> Value {
    let level = view["riskLevel"].as_str().unwrap_or("");
    let (risk_level_id, risk_level) = match level {
        "high" => (3, "High"),
        "medium" => (2, "Medium"),
        _ => (1, "Low"),
    };
    let kind = view["riskEventType"].as_str().unwrap_or("");
    json!({
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "activity_id": 1,
        "activity_name": "Create",
        "status_id": 1,
        "status": "New",
        "severity_id": risk_severity(level),
        "risk_level_id": risk_level_id,
        "risk_level": risk_level,
        "finding_info": {
            "uid": view["id"],
            "title": kind,
            "types": [kind],
            "analytic": { "name": kind, "type_id": 1, "type": "Rule" },
            "first_seen_time": view["activityDateTime"].as_str().and_then(millis),
            "related_events": view["requestId"].as_str().map(|id| json!([{ "uid": id }])),
        },
        "evidences": [{
            "src_endpoint": { "ip": view["ipAddress"] },
            "user": finding_principal(view),
        }],
        "unmapped": {
            "detectionTimingType": view["detectionTimingType"],
            "riskState": view["riskState"],
            "additionalInfo": view["additionalInfo"],
        },
    })
}

/// Whom a finding is about: a user, or a workload (a service principal,
/// OCSF's user of type System, named by its display name, with its app id).
fn finding_principal(view: &Value) -> Value {
    match view["servicePrincipalId"].as_str() {
        Some(id) => json!({
            "uid": id,
            "name": view["servicePrincipalDisplayName"],
            "type_id": 3,
            "type": "System",
            "uid_alt": view["appId"],
        }),
        None => json!({ "uid": view["userId"], "name": view["userPrincipalName"] }),
    }
}

/// A member name's words, lowercased: `clientSecret` → client, secret;
/// `private_key` → private, key.
fn words(name: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Whether a member named `name` holds a secret: one of its words says so
/// (`clientSecret`, `newPassword`, `privateKey`, `clientAssertion`), or the
/// whole name is a credential's (`token`, `refreshToken`, `code`...).
pub fn secret_name(name: &str) -> bool {
    let words = words(name);
    let said = |w: &str| words.iter().any(|word| word == w);
    let whole = words.concat();
    [
        "secret",
        "password",
        "passcode",
        "passphrase",
        "assertion",
        "otp",
        "cookie",
    ]
    .iter()
    .any(|w| said(w))
        || (said("private") && said("key"))
        || matches!(
            whole.as_str(),
            "token"
                | "accesstoken"
                | "refreshtoken"
                | "idtoken"
                | "code"
                | "usercode"
                | "devicecode"
                | "temporaryaccesspass"
                | "authorization"
                | "credentialvalue"
        )
}

const REDACTED: &str = "[redacted]";

/// Replaces, at any depth, the text or structure held by a member named like
/// a secret with `"[redacted]"` (numbers and flags say nothing secret:
/// `secretsRemoved: 2`, `hasSecret: true` stay), and the values of an audit
/// change to such an attribute.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let change_of_secret = map
                .get("attribute")
                .and_then(Value::as_str)
                .is_some_and(secret_name);
            for (name, member) in map.iter_mut() {
                let hidden = secret_name(name)
                    || (change_of_secret && matches!(name.as_str(), "oldValue" | "newValue"));
                if hidden && (member.is_string() || member.is_object() || member.is_array()) {
                    *member = Value::String(REDACTED.into());
                } else {
                    redact(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Drops null members and objects left empty, so each event carries what it has.
fn prune(value: &mut Value) {
    if let Value::Object(map) = value {
        let mut kept = Map::new();
        for (name, mut member) in std::mem::take(map) {
            prune(&mut member);
            let empty = member.is_null() || member.as_object().is_some_and(Map::is_empty);
            if !empty {
                kept.insert(name, member);
            }
        }
        *map = kept;
    } else if let Value::Array(items) = value {
        items.iter_mut().for_each(prune);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            tenant_id: "t1".into(),
            product_version: "0.1.0".into(),
            host: "id.example.com".into(),
        }
    }

    fn sign_in(result: &str, risk: Option<&str>) -> Record {
        Record {
            stream: Stream::SignIns,
            seq: 7,
            view: json!({
                "id": "3f1e0c2a-0000-4000-8000-000000000001",
                "createdDateTime": "2026-12-06T10:00:00Z",
                "userId": "u1",
                "userPrincipalName": "adele@contoso.com",
                "appDisplayName": "Tessera",
                "clientAddress": "203.0.113.9",
                "userAgent": "Mozilla/5.0",
                "result": result,
                "failureCode": if result == "success" { Value::Null } else { "invalid_credentials".into() },
                "authenticationMethods": ["password"],
                "authenticationRequirement": "singleFactorAuthentication",
                "correlationId": "c-1",
                "signInEventType": "interactiveUser",
                "riskLevelDuringSignIn": risk,
            }),
        }
    }

    #[test]
    fn a_sign_in_is_an_authentication_event() {
        let event = event(&sign_in("success", None), &origin());
        assert_eq!(event["class_uid"], 3002);
        assert_eq!(event["type_uid"], 300201);
        assert_eq!(event["status_id"], 1);
        assert_eq!(event["time"], 1_796_551_200_000_i64);
        assert_eq!(event["user"]["name"], "adele@contoso.com");
        assert_eq!(event["src_endpoint"]["ip"], "203.0.113.9");
        assert_eq!(event["metadata"]["sequence"], 7);
        assert_eq!(event["metadata"]["correlation_uid"], "c-1");
        assert_eq!(event["metadata"]["tenant_uid"], "t1");
        assert_eq!(event["severity_id"], severity::INFORMATIONAL);
        assert!(event.get("status_code").is_none(), "nulls are dropped");
    }

    #[test]
    fn a_failure_and_its_risk_raise_the_severity() {
        let failed = event(&sign_in("failure", None), &origin());
        assert_eq!(failed["status_id"], 2);
        assert_eq!(failed["status_code"], "invalid_credentials");
        assert_eq!(severity_of(&failed), severity::LOW);
        let risky = event(&sign_in("failure", Some("high")), &origin());
        assert_eq!(severity_of(&risky), severity::HIGH);
        assert_eq!(risky["unmapped"]["riskLevelDuringSignIn"], "high");
    }

    #[test]
    fn audit_events_name_their_activity() {
        let record = Record {
            stream: Stream::AuditLogs,
            seq: 12,
            view: json!({
                "id": "e1", "time": "2026-12-06T10:00:00.5Z", "action": "user.delete",
                "actor": { "type": "user", "id": "a1", "displayName": "admin@contoso.com" },
                "target": { "type": "user", "id": "u9", "displayName": "x@contoso.com" },
                "details": { "clientSecret": "s3cr3t", "nested": [{ "password": "p" }] },
                "correlationId": "c2",
            }),
        };
        let event = event(&record, &origin());
        assert_eq!(event["class_uid"], 6003);
        assert_eq!(event["activity_id"], 4);
        assert_eq!(event["type_uid"], 600304);
        assert_eq!(event["time"], 1_796_551_200_500_i64);
        assert_eq!(event["api"]["operation"], "user.delete");
        assert_eq!(event["resources"][0]["uid"], "u9");
        assert_eq!(event["actor"]["user"]["name"], "admin@contoso.com");
        let text = event.to_string();
        assert!(
            !text.contains("s3cr3t") && !text.contains("\"p\""),
            "{text}"
        );
        assert_eq!(activity_of("group.member.add").1, "Create");
        assert_eq!(activity_of("user.signInBlocked").1, "Other");
    }

    #[test]
    fn detections_are_findings_with_their_level() {
        let record = Record {
            stream: Stream::RiskDetections,
            seq: 3,
            view: json!({
                "id": "d1", "riskEventType": "passwordSpray", "riskLevel": "medium",
                "detectedDateTime": "2026-12-06T10:00:00Z", "activityDateTime": "2026-12-06T09:59:00Z",
                "userId": "u1", "userPrincipalName": "adele@contoso.com", "ipAddress": "198.51.100.4",
                "requestId": "s1", "detectionTimingType": "realtime",
                "additionalInfo": { "accounts": 12 },
            }),
        };
        let event = event(&record, &origin());
        assert_eq!(event["class_uid"], 2004);
        assert_eq!(event["risk_level_id"], 2);
        assert_eq!(severity_of(&event), severity::MEDIUM);
        assert_eq!(event["finding_info"]["title"], "passwordSpray");
        assert_eq!(event["finding_info"]["related_events"][0]["uid"], "s1");
        assert_eq!(event["evidences"][0]["src_endpoint"]["ip"], "198.51.100.4");
        assert_eq!(event["unmapped"]["additionalInfo"]["accounts"], 12);
        assert_eq!(event["evidences"][0]["user"]["name"], "adele@contoso.com");
        // A workload's: the service principal, as a system user.
        let record = Record {
            stream: Stream::RiskDetections,
            seq: 4,
            view: json!({
                "id": "d2", "riskEventType": "leakedCredentials", "riskLevel": "high",
                "servicePrincipalId": "sp1", "servicePrincipalDisplayName": "Payroll sync",
                "appId": "a1", "detectionTimingType": "offline",
                "additionalInfo": { "keyId": "k1" },
            }),
        };
        let workload = super::event(&record, &origin());
        let user = &workload["evidences"][0]["user"];
        assert_eq!(user["uid"], "sp1");
        assert_eq!(user["name"], "Payroll sync");
        assert_eq!(user["type_id"], 3);
        assert_eq!(user["uid_alt"], "a1");
    }

    #[test]
    fn secret_names_are_whole_words() {
        for name in [
            "clientSecret",
            "webhook_secret",
            "newPassword",
            "privateKey",
            "client_assertion",
            "otp",
            "refreshToken",
            "code",
            "userCode",
        ] {
            assert!(secret_name(name), "{name}");
        }
        for name in [
            "notPermitted",
            "snapshotId",
            "keyId",
            "tokenType",
            "codeChallengeMethod",
            "secretsRemoved",
            "publicKey",
        ] {
            assert!(!secret_name(name), "{name}");
        }
    }

    #[test]
    fn a_change_to_a_secret_hides_its_values() {
        let mut value = json!({ "changes": [
            { "attribute": "webhookSecret", "oldValue": "a", "newValue": "b" },
            { "attribute": "displayName", "oldValue": "a", "newValue": "b" },
        ], "details": { "secretsRemoved": 2, "hasSecret": true } });
        redact(&mut value);
        assert_eq!(value["changes"][0]["newValue"], "[redacted]");
        assert_eq!(value["changes"][1]["newValue"], "b");
        assert_eq!(value["details"]["secretsRemoved"], 2);
        assert_eq!(value["details"]["hasSecret"], true);
    }

    #[test]
    fn redaction_reaches_every_depth_and_keeps_flags() {
        let mut value = json!({
            "webhookSecret": "x", "a": [{ "refreshToken": "y" }],
            "hasWebhookSecret": true, "tokenType": "Bearer", "code": "123456",
        });
        redact(&mut value);
        assert_eq!(value["webhookSecret"], "[redacted]");
        assert_eq!(value["a"][0]["refreshToken"], "[redacted]");
        assert_eq!(value["code"], "[redacted]");
        assert_eq!(value["hasWebhookSecret"], true);
        assert_eq!(value["tokenType"], "Bearer");
    }
}

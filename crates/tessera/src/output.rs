//! Tables for people, JSON for programs.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

use crate::cli::Output;

/// A column: its header and the JSON pointer of its value in each item.
pub type Column = (&'static str, &'static str);

pub const USERS: &[Column] = &[
    ("ID", "/id"),
    ("USER PRINCIPAL NAME", "/userPrincipalName"),
    ("DISPLAY NAME", "/displayName"),
    ("DEPARTMENT", "/department"),
    ("ENABLED", "/accountEnabled"),
];
pub const GROUPS: &[Column] = &[
    ("ID", "/id"),
    ("DISPLAY NAME", "/displayName"),
    ("TYPES", "/groupTypes"),
    ("ROLE-ASSIGNABLE", "/isAssignableToRole"),
    ("RULE", "/membershipRule"),
];
pub const DEVICES: &[Column] = &[
    ("ID", "/id"),
    ("DISPLAY NAME", "/displayName"),
    ("OS", "/operatingSystem"),
    ("TRUST", "/trustType"),
    ("COMPLIANT", "/isCompliant"),
    ("MANAGED", "/isManaged"),
];
pub const APPS: &[Column] = &[
    ("ID", "/id"),
    ("APP ID", "/appId"),
    ("DISPLAY NAME", "/displayName"),
];
pub const SERVICE_PRINCIPALS: &[Column] = &[
    ("ID", "/id"),
    ("APP ID", "/appId"),
    ("DISPLAY NAME", "/displayName"),
    ("ENABLED", "/accountEnabled"),
];
pub const UNITS: &[Column] = &[
    ("ID", "/id"),
    ("DISPLAY NAME", "/displayName"),
    ("DESCRIPTION", "/description"),
];
pub const OBJECTS: &[Column] = &[
    ("ID", "/id"),
    ("TYPE", "/type"),
    ("DISPLAY NAME", "/displayName"),
];
pub const PERMISSION_GRANTS: &[Column] = &[
    ("ID", "/id"),
    ("CONSENT", "/consentType"),
    ("PRINCIPAL", "/principalId"),
    ("SCOPE", "/scope"),
];
pub const APP_ROLE_ASSIGNMENTS: &[Column] = &[
    ("ID", "/id"),
    ("PRINCIPAL", "/principalDisplayName"),
    ("TYPE", "/principalType"),
    ("APP ROLE", "/appRoleId"),
];
pub const ROLES: &[Column] = &[
    ("ID", "/id"),
    ("DISPLAY NAME", "/displayName"),
    ("PRIVILEGED", "/isPrivileged"),
    ("AU-SCOPABLE", "/isAuScopable"),
];
pub const ASSIGNMENTS: &[Column] = &[
    ("ID", "/id"),
    ("ROLE", "/roleDefinitionId"),
    ("PRINCIPAL", "/principalId"),
    ("SCOPE", "/directoryScopeId"),
];
pub const AUDIT: &[Column] = &[
    ("SEQ", "/seq"),
    ("TIME", "/event/time"),
    ("ACTOR", "/event/actor/displayName"),
    ("ACTION", "/event/action"),
    ("TARGET", "/event/target/displayName"),
];
pub const METHODS: &[Column] = &[
    ("ID", "/id"),
    ("TYPE", "/type"),
    ("NAME", "/displayName"),
    ("CREATED", "/createdDateTime"),
];
pub const SESSIONS: &[Column] = &[
    ("SIGNED IN", "/authTime"),
    ("LAST SEEN", "/lastSeenDateTime"),
    ("FROM", "/clientAddress"),
    ("EXPIRES", "/expiresDateTime"),
];
pub const STRENGTHS: &[Column] = &[
    ("ID", "/id"),
    ("NAME", "/displayName"),
    ("TYPE", "/policyType"),
];
pub const CAS: &[Column] = &[
    ("ID", "/id"),
    ("SUBJECT", "/subject"),
    ("ROOT", "/isRootAuthority"),
    ("NOT AFTER", "/notAfter"),
    ("CRL UPDATED", "/revocationList/thisUpdate"),
];
pub const SIGN_INS: &[Column] = &[
    ("TIME", "/createdDateTime"),
    ("USER", "/userPrincipalName"),
    ("RESULT", "/result"),
    ("CODE", "/failureCode"),
    ("FROM", "/clientAddress"),
    ("REQUIREMENT", "/authenticationRequirement"),
    // Failures counted together: how many, and the last (TIME is the first).
    ("ATTEMPTS", "/attemptCount"),
    ("LAST", "/lastAttemptDateTime"),
];
pub const RISK_DETECTIONS: &[Column] = &[
    ("DETECTED", "/detectedDateTime"),
    ("USER", "/userPrincipalName"),
    ("TYPE", "/riskEventType"),
    ("LEVEL", "/riskLevel"),
    ("FROM", "/ipAddress"),
    ("TIMING", "/detectionTimingType"),
];
pub const WORKLOAD_RISK_DETECTIONS: &[Column] = &[
    ("DETECTED", "/detectedDateTime"),
    ("WORKLOAD", "/servicePrincipalDisplayName"),
    ("APP ID", "/appId"),
    ("TYPE", "/riskEventType"),
    ("LEVEL", "/riskLevel"),
    ("FROM", "/ipAddress"),
];
pub const RISKY_USERS: &[Column] = &[
    ("ID", "/id"),
    ("USER", "/userPrincipalName"),
    ("LEVEL", "/riskLevel"),
    ("STATE", "/riskState"),
    ("DETAIL", "/riskDetail"),
    ("UPDATED", "/riskLastUpdatedDateTime"),
];
pub const RISKY_SERVICE_PRINCIPALS: &[Column] = &[
    ("ID", "/id"),
    ("NAME", "/displayName"),
    ("APP ID", "/appId"),
    ("LEVEL", "/riskLevel"),
    ("STATE", "/riskState"),
    ("UPDATED", "/riskLastUpdatedDateTime"),
];
pub const SAML_CERTIFICATES: &[Column] = &[
    ("THUMBPRINT", "/thumbprint"),
    ("STATE", "/state"),
    ("ALGORITHM", "/algorithm"),
    ("NOT AFTER", "/notAfter"),
];
pub const TOKENS: &[Column] = &[
    ("ID", "/id"),
    ("NAME", "/displayName"),
    ("HINT", "/hint"),
    ("EXPIRES", "/expiresDateTime"),
];
pub const ATTRIBUTES: &[Column] = &[
    ("ID", "/id"),
    ("TYPE", "/type"),
    ("COLLECTION", "/isCollection"),
    ("STATUS", "/status"),
];

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| cell(Some(i)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

pub fn list(output: Output, items: &[Value], columns: &[Column], next_cursor: Option<&str>) {
    match output {
        Output::Json => {
            let page = serde_json::json!({ "value": items, "nextCursor": next_cursor });
            println!(
                "{}",
                serde_json::to_string_pretty(&page).unwrap_or_default()
            );
        }
        Output::Table => {
            let mut table = Table::new();
            table.load_style(UTF8_FULL_CONDENSED);
            table.set_header(columns.iter().map(|(h, _)| *h));
            for item in items {
                table.add_row(
                    columns
                        .iter()
                        .map(|(_, pointer)| cell(item.pointer(pointer))),
                );
            }
            println!("{table}");
            if let Some(cursor) = next_cursor {
                println!("more: --cursor {cursor} (or --all)");
            }
        }
    }
}

/// One object: every top-level attribute as a row.
pub fn object(output: Output, value: &Value) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Table => {
            let mut table = Table::new();
            table.load_style(UTF8_FULL_CONDENSED);
            if let Some(members) = value.as_object() {
                for (name, member) in members {
                    let text = match member {
                        Value::Object(_) | Value::Array(_) if !matches!(member, Value::Array(a) if a.iter().all(|i| !i.is_object())) => {
                            serde_json::to_string(member).unwrap_or_default()
                        }
                        other => cell(Some(other)),
                    };
                    table.add_row(vec![name.clone(), text]);
                }
            } else {
                table.add_row(vec![cell(Some(value))]);
            }
            println!("{table}");
        }
    }
}

pub fn done(output: Output, message: &str) {
    match output {
        Output::Json => println!("{}", serde_json::json!({ "result": message })),
        Output::Table => println!("{message}"),
    }
}

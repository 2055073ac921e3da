//! ArcSight's Common Event Format (CEF 0), one line an event:
//! `CEF:0|Tessera|Tessera|<version>|<signature>|<name>|<severity>|<extension>`.
//! The header escapes `\` and `|`; extension values escape `\` and `=` and write
//! line breaks as `\n` and `\r`. Other control characters are dropped.

use serde_json::Value;

use crate::{Origin, Record, Stream};

fn header(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// CEF's severity (0 to 10) for an OCSF severity id.
fn severity(ocsf_severity: u8) -> u8 {
    match ocsf_severity {
        0 | 1 => 1,
        2 => 3,
        3 => 5,
        4 => 7,
        5 => 9,
        _ => 10,
    }
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// One event as a CEF line, from its record and its OCSF form.
pub fn line(record: &Record, event: &Value, origin: &Origin) -> String {
    let view = &record.view;
    let (signature, name) = match record.stream {
        Stream::SignIns => {
            let result = view["result"].as_str().unwrap_or("unknown");
            (format!("signIn:{result}"), format!("Sign-in {result}"))
        }
        Stream::AuditLogs => {
            let action = view["action"].as_str().unwrap_or("unknown");
            (action.to_string(), format!("Audit {action}"))
        }
        Stream::RiskDetections => {
            let kind = view["riskEventType"].as_str().unwrap_or("unknown");
            (format!("risk:{kind}"), format!("Risk detection {kind}"))
        }
    };
    let mut ext: Vec<(&str, String)> = Vec::new();
    if let Some(ms) = event["time"].as_i64() {
        ext.push(("rt", ms.to_string()));
    }
    ext.push(("externalId", record.id().to_string()));
    ext.push(("cat", record.stream.name().to_string()));
    let user = match record.stream {
        Stream::SignIns => (
            str_at(event, &["user", "name"]),
            str_at(event, &["user", "uid"]),
        ),
        Stream::AuditLogs => (
            str_at(event, &["actor", "user", "name"]),
            str_at(event, &["actor", "user", "uid"]),
        ),
        Stream::RiskDetections => (
            str_at(&event["evidences"][0], &["user", "name"]),
            str_at(&event["evidences"][0], &["user", "uid"]),
        ),
    };
    if let Some(name) = user.0 {
        ext.push(("suser", name.to_string()));
    }
    if let Some(uid) = user.1 {
        ext.push(("suid", uid.to_string()));
    }
    let ip = str_at(event, &["src_endpoint", "ip"])
        .or_else(|| str_at(&event["evidences"][0], &["src_endpoint", "ip"]));
    if let Some(ip) = ip.filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()) {
        ext.push(("src", ip.to_string()));
    }
    if let Some(agent) = str_at(event, &["http_request", "user_agent"]) {
        ext.push(("requestClientApplication", agent.to_string()));
    }
    if let Some(app) = str_at(event, &["service", "name"]) {
        ext.push(("destinationServiceName", app.to_string()));
    }
    match record.stream {
        Stream::SignIns => {
            let outcome = event["status"]
                .as_str()
                .unwrap_or("Other")
                .to_ascii_lowercase();
            ext.push(("outcome", outcome));
            if let Some(code) = str_at(event, &["status_code"]) {
                ext.push(("reason", code.to_string()));
            }
        }
        Stream::AuditLogs => {
            if let Some(action) = str_at(event, &["api", "operation"]) {
                ext.push(("act", action.to_string()));
            }
            if let Some(target) = event["resources"].get(0) {
                if let Some(name) = target["name"].as_str() {
                    ext.push(("duser", name.to_string()));
                }
                if let Some(uid) = target["uid"].as_str() {
                    ext.push(("duid", uid.to_string()));
                }
            }
        }
        Stream::RiskDetections => {
            if let Some(level) = event["risk_level"].as_str() {
                ext.push(("cs3Label", "riskLevel".into()));
                ext.push(("cs3", level.to_ascii_lowercase()));
            }
        }
    }
    ext.push(("cs1Label", "tenantId".into()));
    ext.push(("cs1", origin.tenant_id.clone()));
    if let Some(correlation) = str_at(event, &["metadata", "correlation_uid"]) {
        ext.push(("cs2Label", "correlationId".into()));
        ext.push(("cs2", correlation.to_string()));
    }
    ext.push(("cn1Label", "sequence".into()));
    ext.push(("cn1", record.seq.to_string()));
    let extension: Vec<String> = ext
        .into_iter()
        .map(|(key, v)| format!("{key}={}", value(&v)))
        .collect();
    format!(
        "CEF:0|Tessera|Tessera|{}|{}|{}|{}|{}",
        header(&origin.product_version),
        header(&signature),
        header(&name),
        severity(crate::ocsf::severity_of(event)),
        extension.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_what_cef_reserves() {
        assert_eq!(header("a|b\\c\n"), "a\\|b\\\\c");
        assert_eq!(value("x=1\\2\nz|"), "x\\=1\\\\2\\nz|");
    }

    #[test]
    fn a_sign_in_reads_as_cef() {
        let record = Record {
            stream: Stream::SignIns,
            seq: 9,
            view: json!({
                "id": "i1", "createdDateTime": "2026-12-06T10:00:00Z", "result": "failure",
                "userPrincipalName": "ad=ele@contoso.com", "userId": "u1",
                "clientAddress": "203.0.113.9", "failureCode": "invalid_credentials",
                "appDisplayName": "Portal|One", "correlationId": "c1",
            }),
        };
        let origin = Origin {
            tenant_id: "t1".into(),
            product_version: "0.1.0".into(),
            host: "h".into(),
        };
        let event = crate::ocsf::event(&record, &origin);
        let line = line(&record, &event, &origin);
        assert!(
            line.starts_with(
                "CEF:0|Tessera|Tessera|0.1.0|signIn:failure|Sign-in failure|3|rt=1796551200000 "
            ),
            "{line}"
        );
        assert!(line.contains(" suser=ad\\=ele@contoso.com "), "{line}");
        assert!(line.contains(" src=203.0.113.9 "), "{line}");
        assert!(
            line.contains(" destinationServiceName=Portal|One "),
            "{line}"
        );
        assert!(
            line.contains(" outcome=failure reason=invalid_credentials "),
            "{line}"
        );
        assert!(line.ends_with(" cn1Label=sequence cn1=9"), "{line}");
        assert!(!line.contains('\n'));
    }
}

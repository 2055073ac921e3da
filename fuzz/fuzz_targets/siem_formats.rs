//! The SIEM export writes what users and clients typed (names, user agents,
//! failure reasons, sink names) into syslog frames and CEF lines, and reads a
//! sink from an administrator's JSON. For any input: a sink either is refused
//! with a field or is whole and valid; every written record is one syslog frame
//! whose octet count is its length, whose header has the fixed number of fields
//! and whose structured data ends where it should; a CEF line has exactly seven
//! unescaped `|` in its header and no line break; no mapping panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tessera_siem::sink::{HasSecrets, SinkInput};
use tessera_siem::{Origin, Record, Stream, cef, ocsf, syslog};

/// The header's `|` that are not escaped (the extension may hold any).
fn unescaped_pipes(line: &str) -> usize {
    let mut count = 0;
    let mut escaped = false;
    for c in line.chars() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '|') => count += 1,
            _ => {}
        }
        if count == 7 {
            break;
        }
    }
    count
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // An administrator's sink, as JSON.
    if let Ok(input) = serde_json::from_str::<SinkInput>(text) {
        if let Ok((spec, _)) = input.apply(None, HasSecrets::default()) {
            assert!(!spec.display_name.is_empty() && !spec.streams.is_empty());
        }
    }
    // Typed text in every field a record carries.
    let mut parts = text.splitn(4, '\u{1}');
    let name = parts.next().unwrap_or_default();
    let agent = parts.next().unwrap_or_default();
    let reason = parts.next().unwrap_or_default();
    let host = parts.next().unwrap_or_default();
    let origin = Origin {
        tenant_id: reason.to_string(),
        product_version: name.to_string(),
        host: host.to_string(),
    };
    let views = [
        (Stream::SignIns, json!({
            "id": name, "createdDateTime": "2026-12-06T10:00:00Z", "result": reason,
            "userPrincipalName": name, "userAgent": agent, "failureReason": reason,
            "appDisplayName": agent, "clientAddress": host, "correlationId": reason,
        })),
        (Stream::AuditLogs, json!({
            "id": name, "time": agent, "action": reason,
            "actor": { "type": "user", "displayName": name },
            "target": { "type": agent, "id": host, "displayName": name },
            "details": { name: agent },
        })),
        (Stream::RiskDetections, json!({
            "id": name, "riskEventType": reason, "riskLevel": agent,
            "detectedDateTime": host, "userPrincipalName": name, "ipAddress": host,
            "additionalInfo": { agent: name },
        })),
    ];
    for (stream, view) in views {
        let record = Record { stream, seq: 7, view };
        let event: Value = ocsf::event(&record, &origin);
        let line = cef::line(&record, &event, &origin);
        assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
        assert_eq!(unescaped_pipes(&line), 7, "{line:?}");
        for msg in [line.as_str(), &event.to_string()] {
            let message = syslog::message(&record, ocsf::severity_of(&event), &origin, msg);
            let frame = syslog::frame(&message);
            let space = frame.iter().position(|b| *b == b' ').expect("a length");
            let length: usize = std::str::from_utf8(&frame[..space]).unwrap().parse().unwrap();
            assert_eq!(length, frame.len() - space - 1);
            // <PRI>1 TIMESTAMP HOSTNAME APP PROCID MSGID: six fields before the
            // structured data, none empty.
            let head = String::from_utf8_lossy(&message);
            let fields: Vec<&str> = head.splitn(7, ' ').collect();
            assert_eq!(fields.len(), 7, "{head:?}");
            assert!(fields[..6].iter().all(|f| !f.is_empty()), "{head:?}");
            assert!(fields[6].starts_with("[tessera@32473 "), "{head:?}");
            // The element ends at its first unescaped `]`, followed by the message.
            let sd = fields[6].as_bytes();
            let mut escaped = false;
            let mut end = None;
            for (i, b) in sd.iter().enumerate() {
                match (escaped, *b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b']') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.expect("the structured data ends");
            assert_eq!(sd.get(end + 1), Some(&b' '), "{head:?}");
        }
    }
});

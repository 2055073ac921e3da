//! RFC 5424 syslog messages, framed for TCP with TLS by octet counting (RFC 5425
//! and RFC 6587: `<length> <message>`):
//! `<PRI>1 TIMESTAMP HOSTNAME tessera - MSGID [tessera@32473 ...] MSG`.
//!
//! - PRI: facility 10 (security/authorization) for sign-ins and detections, 13
//!   (log audit) for audit events; the severity from the event's OCSF severity.
//! - MSGID: the stream's name. The structured data element (under the enterprise
//!   number 32473, which RFC 5612 reserves for documentation) carries the tenant,
//!   the stream, the record's number and id.
//! - MSG: the CEF line or the OCSF JSON. A message with bytes beyond ASCII starts
//!   with the UTF-8 byte order mark, as RFC 5424 asks.

use serde::{Deserialize, Serialize};

use crate::{Origin, Record, Stream};

/// What a syslog message's MSG holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Format {
    Cef,
    Json,
}

/// The private enterprise number of the structured data element.
pub const ENTERPRISE: &str = "32473";

fn facility(stream: Stream) -> u8 {
    match stream {
        Stream::SignIns | Stream::RiskDetections => 10,
        Stream::AuditLogs => 13,
    }
}

/// Syslog's severity (0 emergency to 7 debug) for an OCSF severity id.
fn severity(ocsf_severity: u8) -> u8 {
    match ocsf_severity {
        0 | 1 => 6,
        2 => 5,
        3 => 4,
        4 => 3,
        _ => 2,
    }
}

/// A header field: printable ASCII without spaces, at most `max` long, `-` when empty.
fn field(text: &str, max: usize) -> String {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if kept.is_empty() { "-".into() } else { kept }
}

fn param(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !c.is_control()) {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One message (unframed): the header, the structured data and `msg`.
pub fn message(record: &Record, ocsf_severity: u8, origin: &Origin, msg: &str) -> Vec<u8> {
    let pri = u16::from(facility(record.stream)) * 8 + u16::from(severity(ocsf_severity));
    let time = record
        .time()
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| "-".into());
    let head = format!(
        "<{pri}>1 {} {} tessera - {} [tessera@{ENTERPRISE} tenant=\"{}\" stream=\"{}\" seq=\"{}\" id=\"{}\"] ",
        field(&time, 64),
        field(&origin.host, 255),
        field(record.stream.name(), 32),
        param(&origin.tenant_id),
        record.stream.name(),
        record.seq,
        param(record.id()),
    );
    let mut out = head.into_bytes();
    if !msg.is_ascii() {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    out.extend_from_slice(msg.as_bytes());
    out
}

/// A message framed by octet counting.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(stream: Stream) -> Record {
        Record {
            stream,
            seq: 41,
            view: json!({ "id": "a\"b", "time": "2026-12-06T10:00:00.25Z" }),
        }
    }

    fn origin() -> Origin {
        Origin {
            tenant_id: "t]1".into(),
            product_version: "0.1.0".into(),
            host: "id example.com".into(),
        }
    }

    #[test]
    fn the_header_follows_rfc_5424() {
        let message = message(&record(Stream::AuditLogs), 1, &origin(), "{\"a\":1}");
        let text = String::from_utf8(message).unwrap();
        assert_eq!(
            text,
            "<110>1 2026-12-06T10:00:00.25Z idexample.com tessera - auditLogs \
             [tessera@32473 tenant=\"t\\]1\" stream=\"auditLogs\" seq=\"41\" id=\"a\\\"b\"] {\"a\":1}"
        );
    }

    #[test]
    fn severity_and_facility_make_the_priority() {
        let message = message(&record(Stream::SignIns), 4, &origin(), "x");
        assert!(
            message.starts_with(b"<83>1 - "),
            "authpriv.err, no time for a sign-in without one"
        );
    }

    #[test]
    fn utf8_gets_a_byte_order_mark_and_frames_count_bytes() {
        let message = message(&record(Stream::AuditLogs), 1, &origin(), "Zoë");
        assert!(message.ends_with("\u{feff}Zoë".as_bytes()));
        let framed = frame(&message);
        let space = framed.iter().position(|b| *b == b' ').unwrap();
        let len: usize = std::str::from_utf8(&framed[..space])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, message.len());
        assert_eq!(&framed[space + 1..], &message[..]);
    }
}

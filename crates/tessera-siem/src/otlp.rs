//! OpenTelemetry logs in OTLP's JSON encoding (`ExportLogsServiceRequest`, POSTed
//! to `/v1/logs` as `application/json`): one resource (`service.name` tessera,
//! its version, the tenant), one scope, a log record an event. The record's body
//! is the OCSF event as a JSON string; its attributes name the OCSF class, the
//! stream, the number and the id. 64-bit integers are strings, as the encoding
//! asks.

use serde_json::{Value, json};

use crate::{Origin, Record};

fn string(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

fn int(key: &str, value: i64) -> Value {
    json!({ "key": key, "value": { "intValue": value.to_string() } })
}

/// OTLP's severity number and text for an OCSF severity id.
fn severity(ocsf_severity: u8) -> (u8, &'static str) {
    match ocsf_severity {
        0 | 1 => (9, "INFO"),
        2 => (10, "INFO2"),
        3 => (13, "WARN"),
        4 => (17, "ERROR"),
        _ => (21, "FATAL"),
    }
}

/// The request for `events` (each a record with its OCSF form), observed at
/// `observed_unix_nanos`.
pub fn request(events: &[(&Record, &Value)], origin: &Origin, observed_unix_nanos: i64) -> Value {
    let records: Vec<Value> = events
        .iter()
        .map(|(record, event)| {
            let (number, text) = severity(crate::ocsf::severity_of(event));
            let time = record.time().map_or(observed_unix_nanos, |t| {
                t.unix_micros().saturating_mul(1000)
            });
            json!({
                "timeUnixNano": time.to_string(),
                "observedTimeUnixNano": observed_unix_nanos.to_string(),
                "severityNumber": number,
                "severityText": text,
                "body": { "stringValue": event.to_string() },
                "attributes": [
                    int("ocsf.class_uid", event["class_uid"].as_i64().unwrap_or(0)),
                    int("ocsf.type_uid", event["type_uid"].as_i64().unwrap_or(0)),
                    string("tessera.stream", record.stream.name()),
                    int("tessera.sequence", record.seq),
                    string("tessera.record_id", record.id()),
                ],
            })
        })
        .collect();
    json!({
        "resourceLogs": [{
            "resource": {
                "attributes": [
                    string("service.name", "tessera"),
                    string("service.version", &origin.product_version),
                    string("tessera.tenant_id", &origin.tenant_id),
                    string("host.name", &origin.host),
                ],
            },
            "scopeLogs": [{
                "scope": { "name": "tessera.siem", "version": crate::ocsf::VERSION },
                "logRecords": records,
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Stream;

    #[test]
    fn records_carry_the_event_and_its_names() {
        let record = Record {
            stream: Stream::RiskDetections,
            seq: 5,
            view: json!({ "id": "d1", "detectedDateTime": "2026-12-06T10:00:00Z", "riskLevel": "high" }),
        };
        let origin = Origin {
            tenant_id: "t1".into(),
            product_version: "0.1.0".into(),
            host: "h".into(),
        };
        let event = crate::ocsf::event(&record, &origin);
        let request = request(&[(&record, &event)], &origin, 42);
        let log = &request["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        assert_eq!(log["timeUnixNano"], "1796551200000000000");
        assert_eq!(log["observedTimeUnixNano"], "42");
        assert_eq!(log["severityNumber"], 17);
        let body: Value =
            serde_json::from_str(log["body"]["stringValue"].as_str().unwrap()).unwrap();
        assert_eq!(body["class_uid"], 2004);
        assert_eq!(log["attributes"][3]["value"]["intValue"], "5");
        assert_eq!(
            request["resourceLogs"][0]["resource"]["attributes"][2]["value"]["stringValue"],
            "t1"
        );
    }
}

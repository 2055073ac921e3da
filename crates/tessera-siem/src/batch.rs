//! JSON batches for an HTTPS receiver: one POST a stream's batch,
//! `{"tenantId", "stream", "batchId", "events": [OCSF events]}`. The service signs
//! the body (`Tessera-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
//! the scheme of Tessera's webhooks) and sends the batch id as `Tessera-Batch-Id`.
//! The id names the sink, the stream and the numbers the batch spans, so a batch
//! sent again after a failure has the same id and a receiver can drop the repeat.

use serde_json::{Value, json};

use crate::Stream;

/// The batch's id: `<sink>:<stream>:<first>-<last>`.
pub fn batch_id(sink: &str, stream: Stream, first: i64, last: i64) -> String {
    format!("{sink}:{}:{first}-{last}", stream.name())
}

/// The batch's body.
pub fn body(tenant_id: &str, stream: Stream, batch_id: &str, events: &[Value]) -> Value {
    json!({
        "tenantId": tenant_id,
        "stream": stream.name(),
        "batchId": batch_id,
        "events": events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_names_what_it_spans() {
        let id = batch_id("s1", Stream::AuditLogs, 4, 9);
        assert_eq!(id, "s1:auditLogs:4-9");
        let body = body("t1", Stream::AuditLogs, &id, &[json!({"a": 1})]);
        assert_eq!(body["events"][0]["a"], 1);
        assert_eq!(body["stream"], "auditLogs");
    }
}

//! The SIEM export's rules (issue 17), pure: what a sink is and what makes one
//! valid ([`sink`]), how a sign-in, an audit event or a risk detection reads as an
//! OCSF event ([`ocsf`], with secrets taken out), and how events are written for
//! each kind of receiver: RFC 5424 syslog frames with a CEF or JSON message
//! ([`syslog`], [`cef`]), OpenTelemetry log requests in OTLP's JSON encoding
//! ([`otlp`]) and signed JSON batches ([`batch`]).
//!
//! No I/O and no clock: the service reads the records, the binary sends the bytes.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod batch;
pub mod cef;
pub mod ocsf;
pub mod otlp;
pub mod sink;
pub mod syslog;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_core::Timestamp;

/// What a sink can be sent: the three logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stream {
    /// The sign-in log (interactive and workload sign-ins).
    SignIns,
    /// The audit trail (every change, in chain order).
    AuditLogs,
    /// Identity Protection's risk detections.
    RiskDetections,
}

impl Stream {
    pub const ALL: [Stream; 3] = [Stream::SignIns, Stream::AuditLogs, Stream::RiskDetections];

    pub const fn name(self) -> &'static str {
        match self {
            Stream::SignIns => "signIns",
            Stream::AuditLogs => "auditLogs",
            Stream::RiskDetections => "riskDetections",
        }
    }

    pub fn parse(text: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| s.name() == text)
    }
}

/// One record of a stream as the API shows it (a sign-in log entry, an audit
/// event, a risk detection), with its position in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub stream: Stream,
    /// The stream's number for it: increasing, the export's cursor.
    pub seq: i64,
    /// The Graph-shaped JSON the API gives for it.
    pub view: Value,
}

impl Record {
    /// Its id (the entry's, the event's, the detection's).
    pub fn id(&self) -> &str {
        self.view["id"].as_str().unwrap_or("")
    }

    /// When it happened: a sign-in's last attempt, an event's time, a
    /// detection's detection time.
    pub fn time(&self) -> Option<Timestamp> {
        let field = match self.stream {
            Stream::SignIns => {
                if self.view["lastAttemptDateTime"].is_string() {
                    "lastAttemptDateTime"
                } else {
                    "createdDateTime"
                }
            }
            Stream::AuditLogs => "time",
            Stream::RiskDetections => "detectedDateTime",
        };
        self.view[field]
            .as_str()
            .and_then(|t| Timestamp::parse_rfc3339(t).ok())
    }
}

/// Where the records come from, as every format names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub tenant_id: String,
    /// Tessera's version.
    pub product_version: String,
    /// The host name the deployment is reached at (syslog's HOSTNAME).
    pub host: String,
}

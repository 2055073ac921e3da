//! `tessera siem`: the SIEM export's sinks from the command line: list them with
//! their lag, show one, add one (syslog over TLS, signed HTTPS batches, OTLP
//! logs), change, enable, disable or remove one. Secrets come from a file (or
//! `-` for standard input), never from the command line.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::cli::Output;
use crate::client::Client;
use crate::commands::is_uuid;
use crate::output::{self, Column};

const SINKS: &[Column] = &[
    ("ID", "/id"),
    ("NAME", "/displayName"),
    ("TYPE", "/type"),
    ("ENABLED", "/enabled"),
    ("STREAMS", "/streams"),
    ("LAST DELIVERY", "/status/lastDeliveryDateTime"),
    ("FAILING SINCE", "/status/failingSince"),
];

#[derive(Debug, Subcommand)]
pub enum SiemCommand {
    /// The tenant's sinks, with when each last delivered and whether it fails.
    List,
    /// One sink (id or name) with each stream's lag.
    Show { sink: String },
    /// A new sink: --type syslog (--host, --port, --format), https (--url,
    /// --secret-file) or otlp (--url, --authorization-file).
    Add {
        #[arg(long = "type")]
        kind: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        spec: SinkArgs,
    },
    /// Change a sink (id or name): the options given.
    Update {
        sink: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        #[command(flatten)]
        spec: SinkArgs,
    },
    /// Remove a sink (id or name) and its cursors.
    Remove { sink: String },
}

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// signIns, auditLogs, riskDetections (comma-separated; all by default).
    #[arg(long, value_delimiter = ',')]
    pub streams: Vec<String>,
    /// syslog: the receiver's host name or address.
    #[arg(long)]
    pub host: Option<String>,
    /// syslog: the receiver's port (6514 by default).
    #[arg(long)]
    pub port: Option<u16>,
    /// syslog: json (OCSF) or cef.
    #[arg(long)]
    pub format: Option<String>,
    /// syslog: the name the receiver's certificate must have (the host by default).
    #[arg(long)]
    pub server_name: Option<String>,
    /// https, otlp: where to POST.
    #[arg(long)]
    pub url: Option<String>,
    /// A PEM file of the only roots the receiver is checked against.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Check the receiver against the system's roots again (no CA of its own).
    #[arg(long, conflicts_with = "ca_file")]
    pub no_ca: bool,
    /// https: a file holding the signing secret (32 to 256 characters), `-` for stdin.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// https, otlp: a file holding the Authorization header value a receiver
    /// asks for, `-` for stdin.
    #[arg(long)]
    pub authorization_file: Option<PathBuf>,
    /// https, otlp: send no Authorization header any more.
    #[arg(long, conflicts_with = "authorization_file")]
    pub no_authorization: bool,
}

pub(crate) fn read_secret(path: &PathBuf) -> anyhow::Result<String> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

impl SinkArgs {
    fn into_body(self, body: &mut Map<String, Value>) -> anyhow::Result<()> {
        if !self.streams.is_empty() {
            body.insert("streams".into(), json!(self.streams));
        }
        for (name, value) in [
            ("host", self.host),
            ("format", self.format),
            ("serverName", self.server_name),
            ("url", self.url),
        ] {
            if let Some(value) = value {
                body.insert(name.into(), value.into());
            }
        }
        if let Some(port) = self.port {
            body.insert("port".into(), port.into());
        }
        if self.no_ca {
            body.insert("caCertificate".into(), "".into());
        }
        if self.no_authorization {
            body.insert("authorization".into(), "".into());
        }
        if let Some(path) = self.ca_file {
            let pem = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            body.insert("caCertificate".into(), pem.into());
        }
        if let Some(path) = self.secret_file {
            body.insert("secret".into(), read_secret(&path)?.into());
        }
        if let Some(path) = self.authorization_file {
            body.insert("authorization".into(), read_secret(&path)?.into());
        }
        Ok(())
    }
}

async fn resolve(client: &Client, sink: &str) -> anyhow::Result<String> {
    if is_uuid(sink) {
        return Ok(sink.to_string());
    }
    let list = client.get(&["siem", "sinks"], &[]).await?;
    let found: Vec<&Value> = list["value"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|s| {
                    s["displayName"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(sink))
                })
                .collect()
        })
        .unwrap_or_default();
    match found.as_slice() {
        [one] => Ok(one["id"].as_str().unwrap_or_default().to_string()),
        _ => bail!("no SIEM sink is named {sink:?}"),
    }
}

pub async fn run(client: &Client, out: Output, command: SiemCommand) -> anyhow::Result<()> {
    match command {
        SiemCommand::List => {
            let list = client.get(&["siem", "sinks"], &[]).await?;
            let items = list["value"].as_array().cloned().unwrap_or_default();
            output::list(out, &items, SINKS, None);
        }
        SiemCommand::Show { sink } => {
            let id = resolve(client, &sink).await?;
            output::object(out, &client.get(&["siem", "sinks", &id], &[]).await?);
        }
        SiemCommand::Add { kind, name, spec } => {
            let mut body = Map::new();
            body.insert("type".into(), kind.into());
            body.insert("displayName".into(), name.into());
            spec.into_body(&mut body)?;
            let created = client
                .post(&["siem", "sinks"], &Value::Object(body))
                .await?;
            output::object(out, &created);
        }
        SiemCommand::Update {
            sink,
            name,
            enable,
            disable,
            spec,
        } => {
            let id = resolve(client, &sink).await?;
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("displayName".into(), name.into());
            }
            if enable || disable {
                body.insert("enabled".into(), enable.into());
            }
            spec.into_body(&mut body)?;
            if body.is_empty() {
                bail!("nothing to change: give at least one option");
            }
            let changed = client
                .patch(&["siem", "sinks", &id], &Value::Object(body), None)
                .await?;
            output::object(out, &changed);
        }
        SiemCommand::Remove { sink } => {
            let id = resolve(client, &sink).await?;
            client.delete(&["siem", "sinks", &id], None).await?;
            output::done(out, "removed");
        }
    }
    Ok(())
}

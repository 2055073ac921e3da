//! `tessera signals`: Shared Signals from the command line. Which
//! applications may receive (`allow`, `disallow`, `receivers`), the streams
//! Tessera transmits on with their state (`streams`, `verify`), and the
//! transmitters Tessera receives from (`transmitters list|add|remove`).
//! Credentials come from a file (or `-` for standard input), never from the
//! command line.

use std::path::PathBuf;

use anyhow::bail;
use clap::Subcommand;
use serde_json::{Map, Value, json};

use crate::cli::Output;
use crate::client::Client;
use crate::commands::is_uuid;
use crate::output::{self, Column};
use crate::siem::read_secret;

const STREAMS: &[Column] = &[
    ("STREAM", "/streamId"),
    ("CLIENT", "/clientId"),
    ("DELIVERY", "/delivery"),
    ("STATUS", "/status"),
    ("QUEUED", "/queued"),
    ("LAG", "/lag"),
    ("DELIVERED", "/delivered"),
    ("LAST ERROR", "/lastError"),
];

const TRANSMITTERS: &[Column] = &[
    ("ID", "/id"),
    ("NAME", "/displayName"),
    ("ISSUER", "/issuer"),
    ("DELIVERY", "/delivery"),
    ("RECEIVED", "/received"),
    ("REFUSED", "/refused"),
    ("LAST ERROR", "/lastError"),
];

const RECEIVERS: &[Column] = &[("APP ID", "/appId"), ("READ ONLY", "/readOnly")];

const TIMELINE: &[Column] = &[
    ("WHEN", "/dateTime"),
    ("EVENT", "/event"),
    ("REASON", "/reason"),
    ("BY", "/initiatedBy"),
    ("ACTOR", "/actor"),
];

// Parsed once per run: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum SignalsCommand {
    /// The applications that may receive signals.
    Receivers,
    /// Let an application (its appId) receive signals: it gets ssf.manage (or
    /// with --read-only only ssf.read) by client credentials.
    Allow {
        app_id: String,
        #[arg(long)]
        read_only: bool,
    },
    /// Stop an application from managing streams (its streams stay until it
    /// or an administrator removes them; it gets no new token).
    Disallow { app_id: String },
    /// Let a device manager (its appId) report devices' compliance through
    /// the device compliance API (DeviceCompliance.ReadWrite.All by client
    /// credentials), or with --remove stop it.
    DeviceManager {
        app_id: String,
        #[arg(long)]
        remove: bool,
    },
    /// The streams Tessera transmits on: status, queued SETs, lag, deliveries,
    /// the last error.
    Streams,
    /// Send a verification event on a stream (its stream id).
    Verify { stream_id: String },
    /// A user's revocation timeline (id or principal name): the changes that
    /// ended or changed their access, newest first.
    Timeline { user: String },
    /// The transmitters Tessera receives from.
    #[command(subcommand)]
    Transmitters(TransmitterCommand),
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum TransmitterCommand {
    /// Every transmitter, with what it sent and the last error.
    List,
    /// Receive from a transmitter: --delivery push (it POSTs to Tessera; the
    /// secret it must send is shown once) or poll.
    Add {
        #[arg(long)]
        name: String,
        /// Its issuer (its metadata is below it, at /.well-known/ssf-configuration).
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        delivery: String,
        /// The audience its SETs carry (Tessera's issuer by default).
        #[arg(long)]
        audience: Option<String>,
        /// A file holding a bearer token for its API, `-` for stdin.
        #[arg(long)]
        bearer_token_file: Option<PathBuf>,
        /// Or a client-credentials client at its token endpoint.
        #[arg(long, requires_all = ["client_id", "client_secret_file"], conflicts_with = "bearer_token_file")]
        token_endpoint: Option<String>,
        #[arg(long)]
        client_id: Option<String>,
        /// A file holding the client's secret, `-` for stdin.
        #[arg(long)]
        client_secret_file: Option<PathBuf>,
        #[arg(long)]
        scope: Option<String>,
        /// The poll endpoint of a stream it made for Tessera (no stream is
        /// created then).
        #[arg(long)]
        poll_endpoint: Option<String>,
    },
    /// Stop receiving from a transmitter (id or name).
    Remove { transmitter: String },
}

async fn settings(client: &Client) -> anyhow::Result<(Value, Option<i64>)> {
    client.get_versioned(&["signals", "settings"]).await
}

async fn change_receivers(
    client: &Client,
    change: impl FnOnce(&mut Vec<Value>),
) -> anyhow::Result<Value> {
    let (mut current, version) = settings(client).await?;
    let mut receivers = current["receivers"].as_array().cloned().unwrap_or_default();
    change(&mut receivers);
    current["receivers"] = Value::Array(receivers);
    client
        .put(&["signals", "settings"], &current, version)
        .await
}

async fn resolve_transmitter(client: &Client, name: &str) -> anyhow::Result<String> {
    if is_uuid(name) {
        return Ok(name.to_string());
    }
    let list = client.get(&["signals", "receivers"], &[]).await?;
    let found: Vec<&Value> = list["value"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|t| {
                    t["displayName"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                        || t["issuer"].as_str() == Some(name)
                })
                .collect()
        })
        .unwrap_or_default();
    match found.as_slice() {
        [one] => Ok(one["id"].as_str().unwrap_or_default().to_string()),
        _ => bail!("no transmitter is named {name:?}"),
    }
}

pub async fn run(client: &Client, out: Output, command: SignalsCommand) -> anyhow::Result<()> {
    match command {
        SignalsCommand::Receivers => {
            let (current, _) = settings(client).await?;
            let items = current["receivers"].as_array().cloned().unwrap_or_default();
            output::list(out, &items, RECEIVERS, None);
        }
        SignalsCommand::Allow { app_id, read_only } => {
            if !is_uuid(&app_id) {
                bail!("give the application's appId (a UUID)");
            }
            let changed = change_receivers(client, |receivers| {
                receivers.retain(|r| r["appId"].as_str() != Some(app_id.as_str()));
                receivers.push(json!({ "appId": app_id, "readOnly": read_only }));
            })
            .await?;
            output::object(out, &changed);
        }
        SignalsCommand::Disallow { app_id } => {
            let changed = change_receivers(client, |receivers| {
                receivers.retain(|r| {
                    !r["appId"]
                        .as_str()
                        .is_some_and(|a| a.eq_ignore_ascii_case(&app_id))
                });
            })
            .await?;
            output::object(out, &changed);
        }
        SignalsCommand::DeviceManager { app_id, remove } => {
            if !is_uuid(&app_id) {
                bail!("give the application's appId (a UUID)");
            }
            let (mut current, version) = settings(client).await?;
            let mut managers = current["deviceManagers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            managers.retain(|m| !m.as_str().is_some_and(|a| a.eq_ignore_ascii_case(&app_id)));
            if !remove {
                managers.push(json!(app_id));
            }
            current["deviceManagers"] = Value::Array(managers);
            let changed = client
                .put(&["signals", "settings"], &current, version)
                .await?;
            output::object(out, &changed);
        }
        SignalsCommand::Streams => {
            let list = client.get(&["signals", "streams"], &[]).await?;
            let items = list["value"].as_array().cloned().unwrap_or_default();
            output::list(out, &items, STREAMS, None);
        }
        SignalsCommand::Verify { stream_id } => {
            client
                .post(&["signals", "streams", &stream_id, "verify"], &json!({}))
                .await?;
            output::done(out, "verification event queued");
        }
        SignalsCommand::Timeline { user } => {
            let id = crate::commands::resolve_user(client, &user).await?;
            let list = client
                .get(&["signals", "users", &id, "timeline"], &[])
                .await?;
            let items = list["value"].as_array().cloned().unwrap_or_default();
            output::list(out, &items, TIMELINE, None);
        }
        SignalsCommand::Transmitters(TransmitterCommand::List) => {
            let list = client.get(&["signals", "receivers"], &[]).await?;
            let items = list["value"].as_array().cloned().unwrap_or_default();
            output::list(out, &items, TRANSMITTERS, None);
        }
        SignalsCommand::Transmitters(TransmitterCommand::Add {
            name,
            issuer,
            delivery,
            audience,
            bearer_token_file,
            token_endpoint,
            client_id,
            client_secret_file,
            scope,
            poll_endpoint,
        }) => {
            let mut body = Map::new();
            body.insert("displayName".into(), name.into());
            body.insert("issuer".into(), issuer.into());
            body.insert("delivery".into(), delivery.into());
            if let Some(audience) = audience {
                body.insert("audience".into(), audience.into());
            }
            if let Some(path) = bearer_token_file {
                body.insert("bearerToken".into(), read_secret(&path)?.into());
            }
            if let (Some(endpoint), Some(id), Some(path)) =
                (token_endpoint, client_id, client_secret_file)
            {
                body.insert(
                    "clientCredentials".into(),
                    json!({
                        "tokenEndpoint": endpoint,
                        "clientId": id,
                        "clientSecret": read_secret(&path)?,
                        "scope": scope,
                    }),
                );
            }
            if let Some(endpoint) = poll_endpoint {
                body.insert("pollEndpoint".into(), endpoint.into());
            }
            let created = client
                .post(&["signals", "receivers"], &Value::Object(body))
                .await?;
            output::object(out, &created);
        }
        SignalsCommand::Transmitters(TransmitterCommand::Remove { transmitter }) => {
            let id = resolve_transmitter(client, &transmitter).await?;
            client.delete(&["signals", "receivers", &id], None).await?;
            output::done(out, "removed");
        }
    }
    Ok(())
}

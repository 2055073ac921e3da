//! `tessera pim`: Privileged Identity Management for directory roles from the
//! command line: your eligible and active roles, activation with a justification,
//! a ticket and a duration, deactivation, administrators' assignments, requests
//! and their approval, and each role's settings.

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::cli::{Output, PimCommand, PimSettingsCommand};
use crate::client::Client;
use crate::commands::{id_of, resolve_named, resolve_object, resolve_role};
use crate::output::{self, Column};

const DIRECTORY: [&str; 2] = ["roleManagement", "directory"];

const SCHEDULES: &[Column] = &[
    ("ID", "/id"),
    ("ROLE", "/roleDefinitionId"),
    ("PRINCIPAL", "/principalId"),
    ("SCOPE", "/directoryScopeId"),
    ("TYPE", "/assignmentType"),
    ("START", "/scheduleInfo/startDateTime"),
    ("END", "/scheduleInfo/expiration/endDateTime"),
];
const INSTANCES: &[Column] = &[
    ("ID", "/id"),
    ("ROLE", "/roleDefinitionId"),
    ("PRINCIPAL", "/principalId"),
    ("SCOPE", "/directoryScopeId"),
    ("TYPE", "/assignmentType"),
    ("END", "/endDateTime"),
];
const ALERTS: &[Column] = &[
    ("ALERT", "/kind"),
    ("SEVERITY", "/severity"),
    ("INCIDENTS", "/incidentCount"),
    ("WHAT", "/description"),
];
const REQUESTS: &[Column] = &[
    ("ID", "/id"),
    ("ACTION", "/action"),
    ("STATUS", "/status"),
    ("ROLE", "/roleDefinitionId"),
    ("PRINCIPAL", "/principalId"),
    ("CREATED", "/createdDateTime"),
];

fn path(collection: &str) -> [&str; 3] {
    [DIRECTORY[0], DIRECTORY[1], collection]
}

fn requests_of(eligible: bool) -> &'static str {
    if eligible {
        "roleEligibilityScheduleRequests"
    } else {
        "roleAssignmentScheduleRequests"
    }
}

async fn me(client: &Client) -> anyhow::Result<String> {
    let me = client.get(&["me"], &[]).await?;
    id_of(me.get("user").unwrap_or(&Value::Null)).context("the token does not sign in as a user")
}

async fn scope(client: &Client, unit: Option<String>) -> anyhow::Result<String> {
    Ok(match unit {
        Some(unit) => format!(
            "/administrativeUnits/{}",
            resolve_named(client, "administrativeUnits", &unit).await?
        ),
        None => "/".to_string(),
    })
}

/// Graph's `expiration`: a duration (`PT8H`), an end (`2027-01-31T00:00:00Z`), or
/// none.
fn expiration(duration: Option<String>, until: Option<String>, permanent: bool) -> Value {
    match (duration, until, permanent) {
        (Some(duration), _, _) => json!({"type": "afterDuration", "duration": duration}),
        (None, Some(until), _) => json!({"type": "afterDateTime", "endDateTime": until}),
        (None, None, true) => json!({"type": "noExpiration"}),
        (None, None, false) => json!({"type": "notSpecified"}),
    }
}

/// Which schedules to list: the principal given, else the caller's own.
async fn principal_query(
    client: &Client,
    principal: Option<String>,
    role: Option<String>,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let principal = match principal {
        Some(principal) => resolve_object(client, &principal).await?,
        None => me(client).await?,
    };
    let mut query = vec![("principalId", principal)];
    if let Some(role) = role {
        query.push(("roleDefinitionId", resolve_role(client, &role).await?));
    }
    Ok(query)
}

pub async fn run(client: &Client, out: Output, command: PimCommand) -> anyhow::Result<()> {
    match command {
        PimCommand::Eligible { principal, role } => {
            let query = principal_query(client, principal, role).await?;
            let (items, next) = client
                .list(&path("roleEligibilitySchedules"), query, true)
                .await?;
            output::list(out, &items, SCHEDULES, next.as_deref());
        }
        PimCommand::Active { principal, role } => {
            let query = principal_query(client, principal, role).await?;
            let (items, next) = client
                .list(&path("roleAssignmentScheduleInstances"), query, true)
                .await?;
            output::list(out, &items, INSTANCES, next.as_deref());
        }
        PimCommand::Activate {
            role,
            unit,
            justification,
            ticket,
            ticket_system,
            duration,
        } => {
            let mut body = json!({
                "action": "selfActivate",
                "principalId": me(client).await?,
                "roleDefinitionId": resolve_role(client, &role).await?,
                "directoryScopeId": scope(client, unit).await?,
                "justification": justification,
                "scheduleInfo": {"expiration": expiration(duration, None, false)},
            });
            if ticket.is_some() || ticket_system.is_some() {
                body["ticketInfo"] = json!({"ticketNumber": ticket, "ticketSystem": ticket_system});
            }
            let made = client
                .post(&path("roleAssignmentScheduleRequests"), &body)
                .await?;
            output::object(out, &made);
        }
        PimCommand::Deactivate { role, unit } => {
            let body = json!({
                "action": "selfDeactivate",
                "principalId": me(client).await?,
                "roleDefinitionId": resolve_role(client, &role).await?,
                "directoryScopeId": scope(client, unit).await?,
            });
            output::object(
                out,
                &client
                    .post(&path("roleAssignmentScheduleRequests"), &body)
                    .await?,
            );
        }
        PimCommand::Assign {
            role,
            principal,
            unit,
            eligible,
            justification,
            duration,
            until,
            permanent,
        } => {
            let body = json!({
                "action": "adminAssign",
                "principalId": resolve_object(client, &principal).await?,
                "roleDefinitionId": resolve_role(client, &role).await?,
                "directoryScopeId": scope(client, unit).await?,
                "justification": justification,
                "scheduleInfo": {"expiration": expiration(duration, until, permanent)},
            });
            output::object(
                out,
                &client.post(&path(requests_of(eligible)), &body).await?,
            );
        }
        PimCommand::Remove {
            role,
            principal,
            unit,
            eligible,
        } => {
            let body = json!({
                "action": "adminRemove",
                "principalId": resolve_object(client, &principal).await?,
                "roleDefinitionId": resolve_role(client, &role).await?,
                "directoryScopeId": scope(client, unit).await?,
            });
            output::object(
                out,
                &client.post(&path(requests_of(eligible)), &body).await?,
            );
        }
        PimCommand::Requests {
            approver,
            all,
            eligible,
        } => {
            let query = match (approver, all) {
                (true, _) => vec![("on", "approver".to_string())],
                (false, true) => Vec::new(),
                (false, false) => vec![("on", "principal".to_string())],
            };
            let (items, next) = client
                .list(&path(requests_of(eligible)), query, true)
                .await?;
            output::list(out, &items, REQUESTS, next.as_deref());
        }
        PimCommand::Approve {
            request,
            justification,
            eligible,
        } => answer(client, out, &request, "approve", justification, eligible).await?,
        PimCommand::Deny {
            request,
            justification,
            eligible,
        } => answer(client, out, &request, "deny", justification, eligible).await?,
        PimCommand::Cancel { request, eligible } => {
            let made = client
                .post(
                    &[
                        DIRECTORY[0],
                        DIRECTORY[1],
                        requests_of(eligible),
                        &request,
                        "cancel",
                    ],
                    &json!({}),
                )
                .await?;
            output::object(out, &made);
        }
        PimCommand::Alerts => {
            let alerts = client.get(&path("alerts"), &[]).await?;
            let items = alerts
                .get("value")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            output::list(out, &items, ALERTS, None);
        }
        PimCommand::AlertSettings { data, if_match } => {
            let segments = path("alertSettings");
            let value = show_or_replace(client, &segments, data, if_match.if_match).await?;
            output::object(out, &value);
        }
        PimCommand::ProtectedActions { data, if_match } => {
            let segments = ["policies", "protectedActions"];
            let value = show_or_replace(client, &segments, data, if_match.if_match).await?;
            output::object(out, &value);
        }
        PimCommand::Notifications { data, if_match } => {
            let segments = ["policies", "notificationSettings"];
            let value = show_or_replace(client, &segments, data, if_match.if_match).await?;
            output::object(out, &value);
        }
        PimCommand::Convert {
            assignment_id,
            justification,
        } => {
            let made = client
                .post(
                    &[
                        DIRECTORY[0],
                        DIRECTORY[1],
                        "roleAssignments",
                        &assignment_id,
                        "convertToEligible",
                    ],
                    &json!({ "justification": justification }),
                )
                .await?;
            output::object(out, &made);
        }
        PimCommand::Settings(PimSettingsCommand::Get { role }) => {
            let role = resolve_role(client, &role).await?;
            output::object(
                out,
                &client
                    .get(&[DIRECTORY[0], DIRECTORY[1], "roleSettings", &role], &[])
                    .await?,
            );
        }
        PimCommand::Settings(PimSettingsCommand::Set {
            role,
            data,
            if_match,
        }) => {
            let role = resolve_role(client, &role).await?;
            let body: Value = serde_json::from_str(&data)
                .context("--data must be a JSON object of role settings")?;
            output::object(
                out,
                &client
                    .put(
                        &[DIRECTORY[0], DIRECTORY[1], "roleSettings", &role],
                        &body,
                        if_match.if_match,
                    )
                    .await?,
            );
        }
    }
    Ok(())
}

/// A setting document: shown, or (with `--data`) replaced.
async fn show_or_replace(
    client: &Client,
    segments: &[&str],
    data: Option<String>,
    if_match: Option<i64>,
) -> anyhow::Result<Value> {
    match data {
        Some(data) => {
            let body: Value =
                serde_json::from_str(&data).context("--data must be a JSON object")?;
            client.put(segments, &body, if_match).await
        }
        None => client.get(segments, &[]).await,
    }
}

async fn answer(
    client: &Client,
    out: Output,
    request: &str,
    verb: &str,
    justification: Option<String>,
    eligible: bool,
) -> anyhow::Result<()> {
    let made = client
        .post(
            &[
                DIRECTORY[0],
                DIRECTORY[1],
                requests_of(eligible),
                request,
                verb,
            ],
            &json!({ "justification": justification }),
        )
        .await?;
    output::object(out, &made);
    Ok(())
}

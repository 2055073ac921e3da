//! `tessera pim`: Privileged Identity Management from the command line, for
//! directory roles (`--role`) and for groups' membership and ownership
//! (`--group`, `--access`; `--groups` for listings and answers): your eligible
//! and active roles and groups, activation with a justification, a ticket and a
//! duration, deactivation, administrators' assignments, requests and their
//! approval, and each role's or group's settings.

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::cli::{Output, PimCommand, PimFilterArg, PimSettingsCommand, PimTargetArg};
use crate::client::Client;
use crate::commands::{id_of, resolve_named, resolve_object, resolve_role};
use crate::output::{self, Column};

const DIRECTORY: [&str; 2] = ["roleManagement", "directory"];
const GROUPS: [&str; 3] = ["identityGovernance", "privilegedAccess", "group"];

const SCHEDULES: &[Column] = &[
    ("ID", "/id"),
    ("ROLE", "/roleDefinitionId"),
    ("PRINCIPAL", "/principalId"),
    ("SCOPE", "/directoryScopeId"),
    ("TYPE", "/assignmentType"),
    ("START", "/scheduleInfo/startDateTime"),
    ("END", "/scheduleInfo/expiration/endDateTime"),
];
const GROUP_SCHEDULES: &[Column] = &[
    ("ID", "/id"),
    ("GROUP", "/groupId"),
    ("ACCESS", "/accessId"),
    ("PRINCIPAL", "/principalId"),
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
const GROUP_INSTANCES: &[Column] = &[
    ("ID", "/id"),
    ("GROUP", "/groupDisplayName"),
    ("ACCESS", "/accessId"),
    ("PRINCIPAL", "/principalId"),
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
const GROUP_REQUESTS: &[Column] = &[
    ("ID", "/id"),
    ("ACTION", "/action"),
    ("STATUS", "/status"),
    ("GROUP", "/groupDisplayName"),
    ("ACCESS", "/accessId"),
    ("PRINCIPAL", "/principalId"),
    ("CREATED", "/createdDateTime"),
];

/// A collection's path: directory roles' (`roleManagement/directory/<role>`)
/// or groups' (`identityGovernance/privilegedAccess/group/<group>`).
fn path<'a>(groups: bool, role: &'a str, group: &'a str) -> Vec<&'a str> {
    if groups {
        vec![GROUPS[0], GROUPS[1], GROUPS[2], group]
    } else {
        vec![DIRECTORY[0], DIRECTORY[1], role]
    }
}

fn requests_of(groups: bool, eligible: bool) -> Vec<&'static str> {
    match eligible {
        true => path(
            groups,
            "roleEligibilityScheduleRequests",
            "eligibilityScheduleRequests",
        ),
        false => path(
            groups,
            "roleAssignmentScheduleRequests",
            "assignmentScheduleRequests",
        ),
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

/// A request's target fields, and whether it is a group's: `roleDefinitionId`
/// and `directoryScopeId`, or `groupId` and `accessId`.
async fn target_of(
    client: &Client,
    target: PimTargetArg,
    unit: Option<String>,
) -> anyhow::Result<(Value, bool)> {
    match (target.group, target.role) {
        (Some(group), _) => Ok((
            json!({
                "groupId": resolve_named(client, "groups", &group).await?,
                "accessId": target.access,
            }),
            true,
        )),
        (None, Some(role)) => Ok((
            json!({
                "roleDefinitionId": resolve_role(client, &role).await?,
                "directoryScopeId": scope(client, unit).await?,
            }),
            false,
        )),
        (None, None) => anyhow::bail!("name a --role or a --group"),
    }
}

/// A request body: the target's fields and the rest.
fn body_of(target: Value, rest: Value) -> Value {
    let mut body = target;
    if let (Some(body), Value::Object(rest)) = (body.as_object_mut(), rest) {
        body.extend(rest);
    }
    body
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

/// Which schedules to list: the principal given, else the caller's own; and
/// whether they are groups'.
async fn principal_query(
    client: &Client,
    principal: Option<String>,
    filter: PimFilterArg,
) -> anyhow::Result<(Vec<(&'static str, String)>, bool)> {
    let principal = match principal {
        Some(principal) => resolve_object(client, &principal).await?,
        None => me(client).await?,
    };
    let mut query = vec![("principalId", principal)];
    if let Some(role) = filter.role {
        query.push(("roleDefinitionId", resolve_role(client, &role).await?));
    }
    let groups = filter.groups || filter.group.is_some();
    if let Some(group) = filter.group {
        query.push(("groupId", resolve_named(client, "groups", &group).await?));
    }
    Ok((query, groups))
}

pub async fn run(client: &Client, out: Output, command: PimCommand) -> anyhow::Result<()> {
    match command {
        PimCommand::Eligible { principal, filter } => {
            let (query, groups) = principal_query(client, principal, filter).await?;
            let (items, next) = client
                .list(
                    &path(groups, "roleEligibilitySchedules", "eligibilitySchedules"),
                    query,
                    true,
                )
                .await?;
            let columns = if groups { GROUP_SCHEDULES } else { SCHEDULES };
            output::list(out, &items, columns, next.as_deref());
        }
        PimCommand::Active { principal, filter } => {
            let (query, groups) = principal_query(client, principal, filter).await?;
            let (items, next) = client
                .list(
                    &path(
                        groups,
                        "roleAssignmentScheduleInstances",
                        "assignmentScheduleInstances",
                    ),
                    query,
                    true,
                )
                .await?;
            let columns = if groups { GROUP_INSTANCES } else { INSTANCES };
            output::list(out, &items, columns, next.as_deref());
        }
        PimCommand::Activate {
            target,
            unit,
            justification,
            ticket,
            ticket_system,
            duration,
        } => {
            let (target, groups) = target_of(client, target, unit).await?;
            let mut body = body_of(
                target,
                json!({
                    "action": "selfActivate",
                    "principalId": me(client).await?,
                    "justification": justification,
                    "scheduleInfo": {"expiration": expiration(duration, None, false)},
                }),
            );
            if ticket.is_some() || ticket_system.is_some() {
                body["ticketInfo"] = json!({"ticketNumber": ticket, "ticketSystem": ticket_system});
            }
            let made = client.post(&requests_of(groups, false), &body).await?;
            output::object(out, &made);
        }
        PimCommand::Deactivate { target, unit } => {
            let (target, groups) = target_of(client, target, unit).await?;
            let body = body_of(
                target,
                json!({
                    "action": "selfDeactivate",
                    "principalId": me(client).await?,
                }),
            );
            output::object(out, &client.post(&requests_of(groups, false), &body).await?);
        }
        PimCommand::Assign {
            target,
            principal,
            unit,
            eligible,
            justification,
            duration,
            until,
            permanent,
        } => {
            let (target, groups) = target_of(client, target, unit).await?;
            let body = body_of(
                target,
                json!({
                    "action": "adminAssign",
                    "principalId": resolve_object(client, &principal).await?,
                    "justification": justification,
                    "scheduleInfo": {"expiration": expiration(duration, until, permanent)},
                }),
            );
            output::object(
                out,
                &client.post(&requests_of(groups, eligible), &body).await?,
            );
        }
        PimCommand::Remove {
            target,
            principal,
            unit,
            eligible,
        } => {
            let (target, groups) = target_of(client, target, unit).await?;
            let body = body_of(
                target,
                json!({
                    "action": "adminRemove",
                    "principalId": resolve_object(client, &principal).await?,
                }),
            );
            output::object(
                out,
                &client.post(&requests_of(groups, eligible), &body).await?,
            );
        }
        PimCommand::Requests {
            approver,
            all,
            eligible,
            groups,
        } => {
            let query = match (approver, all) {
                (true, _) => vec![("on", "approver".to_string())],
                (false, true) => Vec::new(),
                (false, false) => vec![("on", "principal".to_string())],
            };
            let (items, next) = client
                .list(&requests_of(groups, eligible), query, true)
                .await?;
            let columns = if groups { GROUP_REQUESTS } else { REQUESTS };
            output::list(out, &items, columns, next.as_deref());
        }
        PimCommand::Approve {
            request,
            justification,
            eligible,
            groups,
        } => {
            answer(
                client,
                out,
                &request,
                "approve",
                justification,
                requests_of(groups, eligible),
            )
            .await?
        }
        PimCommand::Deny {
            request,
            justification,
            eligible,
            groups,
        } => {
            answer(
                client,
                out,
                &request,
                "deny",
                justification,
                requests_of(groups, eligible),
            )
            .await?
        }
        PimCommand::Cancel {
            request,
            eligible,
            groups,
        } => {
            let mut segments = requests_of(groups, eligible);
            segments.extend([request.as_str(), "cancel"]);
            let made = client.post(&segments, &json!({})).await?;
            output::object(out, &made);
        }
        PimCommand::Alerts => {
            let alerts = client.get(&path(false, "alerts", ""), &[]).await?;
            let items = alerts
                .get("value")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            output::list(out, &items, ALERTS, None);
        }
        PimCommand::AlertSettings { data, if_match } => {
            let segments = path(false, "alertSettings", "");
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
        PimCommand::Settings(PimSettingsCommand::Get { target }) => {
            let segments = settings_path(client, target).await?;
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            output::object(out, &client.get(&segments, &[]).await?);
        }
        PimCommand::Settings(PimSettingsCommand::Set {
            target,
            data,
            if_match,
        }) => {
            let segments = settings_path(client, target).await?;
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            let body: Value = serde_json::from_str(&data)
                .context("--data must be a JSON object of PIM settings")?;
            output::object(out, &client.put(&segments, &body, if_match.if_match).await?);
        }
    }
    Ok(())
}

/// Where a role's or a group's settings are.
async fn settings_path(client: &Client, target: PimTargetArg) -> anyhow::Result<Vec<String>> {
    let (target, groups) = target_of(client, target, None).await?;
    let field = |name: &str| target[name].as_str().unwrap_or_default().to_string();
    Ok(if groups {
        let mut segments: Vec<String> = GROUPS.iter().map(|s| s.to_string()).collect();
        segments.extend(["settings".to_string(), field("groupId"), field("accessId")]);
        segments
    } else {
        vec![
            DIRECTORY[0].to_string(),
            DIRECTORY[1].to_string(),
            "roleSettings".to_string(),
            field("roleDefinitionId"),
        ]
    })
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
    mut segments: Vec<&str>,
) -> anyhow::Result<()> {
    segments.extend([request, verb]);
    let made = client
        .post(&segments, &json!({ "justification": justification }))
        .await?;
    output::object(out, &made);
    Ok(())
}

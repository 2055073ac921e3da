//! What each command does.

use std::process::ExitCode;
use tessera_oauth::error::ErrorCode;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::cli::*;
use crate::client::{self, Client};
use crate::offline;
use crate::output::{self, Column};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    let out = global.output;
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Login | Command::Logout
    ) {
        client::refresh_saved(&global).await?;
    }
    match cli.command {
        Command::Serve(args) => {
            let overrides = tessera_server::Overrides {
                listen: args.listen,
                data_dir: args.data_dir,
            };
            let config = tessera_server::Config::load(args.config.as_deref(), &overrides)
                .map_err(|e| anyhow!(e))?;
            tessera::serve(config).await?;
        }
        Command::Login => login(&global).await?,
        Command::Logout => {
            let mut saved = client::load_saved();
            saved.token = None;
            saved.refresh_token = None;
            saved.token_expires = None;
            client::save(&saved)?;
            output::done(
                out,
                "signed out: the saved token is forgotten (it stays valid until it expires or is revoked)",
            );
        }
        Command::Whoami => {
            let client = Client::new(&global)?;
            output::object(out, &client.get(&["me"], &[]).await?);
        }
        Command::Users(command) => users(&Client::new(&global)?, out, command).await?,
        Command::Groups(command) => groups(&Client::new(&global)?, out, command).await?,
        Command::Devices(command) => devices(&Client::new(&global)?, out, command).await?,
        Command::Apps(command) => apps(&Client::new(&global)?, out, command).await?,
        Command::ServicePrincipals(command) => {
            service_principals(&Client::new(&global)?, out, command).await?
        }
        Command::Roles(command) => roles(&Client::new(&global)?, out, command).await?,
        Command::Pim(command) => crate::pim::run(&Client::new(&global)?, out, command).await?,
        Command::Provisioning(command) => {
            provisioning(&Client::new(&global)?, out, command).await?
        }
        Command::Lifecycle(command) => lifecycle(&Client::new(&global)?, out, command).await?,
        Command::Units(command) => units(&Client::new(&global)?, out, command).await?,
        Command::Attributes(command) => attributes(&Client::new(&global)?, out, command).await?,
        Command::Audit(AuditCommand::Verify(args)) => {
            return offline::audit_verify(&args, out).await;
        }
        Command::Audit(AuditCommand::Checkpoint(args)) => {
            offline::audit_checkpoint(&args, out).await?
        }
        Command::Audit(AuditCommand::CheckpointKey(database)) => {
            offline::audit_checkpoint_key(&database, out)?
        }
        Command::Audit(command) => audit(&Client::new(&global)?, out, command).await?,
        Command::Tokens(command) => tokens(&Client::new(&global)?, out, command).await?,
        Command::Auth(command) => auth(&Client::new(&global)?, out, command).await?,
        Command::Policy(command) => {
            return crate::policy::run(&Client::new(&global)?, out, command).await;
        }
        Command::SignIns(args) => sign_ins(&Client::new(&global)?, out, args).await?,
        Command::Risk(command) => risky(&Client::new(&global)?, out, command).await?,
        Command::Siem(command) => crate::siem::run(&Client::new(&global)?, out, command).await?,
        Command::Signals(command) => {
            crate::signals::run(&Client::new(&global)?, out, command).await?
        }
        Command::Backup(args) => offline::backup(&args, out).await?,
        Command::Restore(args) => offline::restore(&args, out).await?,
        Command::Migrate(database) => offline::migrate(&database, out).await?,
        Command::RecoveryToken(args) => offline::recovery_token(&args, out).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn login(global: &Global) -> anyhow::Result<()> {
    let mut saved = client::load_saved();
    let server = global
        .server
        .clone()
        .or(saved.server.clone())
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
    let token = match global.token.as_deref() {
        Some("-") => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the token from standard input")?;
            line.trim().to_string()
        }
        Some(token) => token.to_string(),
        None => {
            device_login(global, &server, saved, None).await?;
            return Ok(());
        }
    };
    let client = Client::with(&server, Some(token.clone()), global.ca_cert.as_deref())?;
    let me = client
        .get(&["me"], &[])
        .await
        .context("the server refused the token")?;
    saved.server = Some(server.clone());
    saved.token = Some(token);
    saved.refresh_token = None;
    saved.token_expires = None;
    let path = client::save(&saved)?;
    let name = me
        .pointer("/user/userPrincipalName")
        .and_then(Value::as_str)
        .unwrap_or("?");
    output::done(
        global.output,
        &format!(
            "signed in to {server} as {name}; settings saved in {}",
            path.display()
        ),
    );
    Ok(())
}

/// `tessera login` without a token: the device flow (RFC 8628) as Tessera's
/// built-in CLI client, for the management API, with a refresh token.
async fn device_login(
    global: &Global,
    server: &str,
    mut saved: client::Saved,
    acr_values: Option<&str>,
) -> anyhow::Result<String> {
    let client = Client::with(server, None, global.ca_cert.as_deref())?;
    let cli_client = tessera_service::oauth::CLI_CLIENT_ID;
    let mut form = vec![("client_id", cli_client), ("scope", client::CLI_SCOPE)];
    if let Some(acr_values) = acr_values {
        form.push(("acr_values", acr_values));
    }
    let (status, started) = client.oauth_form("/oauth2/devicecode", &form).await?;
    if !status.is_success() {
        bail!(
            "the server refused the sign-in: {}",
            started
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("no reason given")
        );
    }
    let text = |name: &str| {
        started
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the server's answer has no {name}"))
    };
    let device_code = text("device_code")?;
    let user_code = text("user_code")?;
    let verification_uri = text("verification_uri")?;
    let mut interval = started
        .get("interval")
        .and_then(Value::as_i64)
        .unwrap_or(5)
        .max(1);
    let expires_in = started
        .get("expires_in")
        .and_then(Value::as_i64)
        .unwrap_or(600);
    eprintln!("To sign in, open {verification_uri} in a browser and enter the code {user_code}");
    if let Ok(complete) = text("verification_uri_complete") {
        eprintln!("(or open {complete})");
    }
    let deadline = client::unix_now() + expires_in;
    let tokens = loop {
        tokio::time::sleep(std::time::Duration::from_secs(interval as u64)).await;
        if client::unix_now() > deadline {
            bail!("the code expired before the sign-in was approved: run `tessera login` again");
        }
        let (status, answer) = client
            .oauth_form(
                "/oauth2/token",
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &device_code),
                    ("client_id", cli_client),
                ],
            )
            .await?;
        if status.is_success() {
            break answer;
        }
        let code = answer
            .get("error")
            .and_then(Value::as_str)
            .and_then(ErrorCode::parse);
        match code {
            Some(ErrorCode::AuthorizationPending) => {}
            Some(ErrorCode::SlowDown) => interval += 5,
            Some(ErrorCode::AccessDenied) => bail!("the sign-in was denied"),
            Some(ErrorCode::ExpiredToken) => bail!("the code expired: run `tessera login` again"),
            _ => bail!(
                "the sign-in failed: {}",
                answer
                    .get("error_description")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given")
            ),
        }
    };
    let access = tokens
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the token answer has no access_token"))?
        .to_string();
    let me = Client::with(server, Some(access.clone()), global.ca_cert.as_deref())?
        .get(&["me"], &[])
        .await
        .context("the server refused the new token")?;
    saved.server = Some(server.to_string());
    saved.token = Some(access);
    saved.refresh_token = tokens
        .get("refresh_token")
        .and_then(Value::as_str)
        .map(str::to_string);
    saved.token_expires = tokens
        .get("expires_in")
        .and_then(Value::as_i64)
        .map(|seconds| client::unix_now() + seconds);
    let path = client::save(&saved)?;
    let name = me
        .pointer("/user/userPrincipalName")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let said = format!(
        "signed in to {server} as {name}; settings saved in {}",
        path.display()
    );
    if acr_values.is_some() {
        // A step-up before a command: its output stays the command's own.
        eprintln!("{said}");
    } else {
        output::done(global.output, &said);
    }
    Ok(me
        .pointer("/user/id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

/// After an RFC 9470 refusal (the sign-in behind the token is not strong enough
/// for what was asked): signs in again with the device flow asking for what the
/// server named, so that the caller repeats the command. Only for a sign-in
/// `tessera login` saved from the device flow (a token given on the command line
/// or in the environment is not replaced), and only where someone can answer
/// (standard error is a terminal, or `TESSERA_STEP_UP=1`). Says whether it did.
pub async fn step_up(error: &anyhow::Error, global: &Global) -> anyhow::Result<bool> {
    let Some(acr_values) = error
        .downcast_ref::<client::ApiError>()
        .and_then(|refused| refused.acr_values.clone())
    else {
        return Ok(false);
    };
    let saved = client::load_saved();
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr())
        || std::env::var("TESSERA_STEP_UP").as_deref() == Ok("1");
    if global.token.is_some() || saved.refresh_token.is_none() || !interactive {
        return Ok(false);
    }
    eprintln!(
        "The server asks for a stronger sign-in ({acr_values}); sign in again, and the command is repeated."
    );
    let server = global
        .server
        .clone()
        .or(saved.server.clone())
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
    let before = Client::new(global)?.get(&["me"], &[]).await?;
    let before = before.pointer("/user/id").and_then(Value::as_str);
    let after = device_login(global, &server, saved, Some(&acr_values)).await?;
    if before != Some(after.as_str()) {
        // Another account approved: the command is not repeated as someone else.
        bail!("the new sign-in is another user's: the command was not repeated");
    }
    Ok(true)
}

// ---- helpers ------------------------------------------------------------------

pub(crate) fn is_uuid(text: &str) -> bool {
    Uuid::parse_str(text).is_ok()
}

/// A JSON object from `--data` merged under explicit flags.
fn body(data: &DataArg, fields: Vec<(&str, Option<Value>)>) -> anyhow::Result<Value> {
    let mut object: Map<String, Value> = match &data.data {
        Some(text) => match serde_json::from_str(text).context("--data is not JSON")? {
            Value::Object(map) => map,
            _ => bail!("--data must be a JSON object"),
        },
        None => Map::new(),
    };
    for (name, value) in fields {
        if let Some(value) = value {
            object.insert(name.to_string(), value);
        }
    }
    Ok(Value::Object(object))
}

fn text(value: &Option<String>) -> Option<Value> {
    value.as_ref().map(|v| Value::String(v.clone()))
}

fn page_query(args: &PageArgs) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(search) = &args.search {
        query.push(("search", search.clone()));
    }
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }
    if let Some(cursor) = &args.cursor {
        query.push(("cursor", cursor.clone()));
    }
    query
}

async fn list(
    client: &Client,
    out: Output,
    segments: &[&str],
    args: &PageArgs,
    columns: &[Column],
) -> anyhow::Result<()> {
    let (items, next) = client.list(segments, page_query(args), args.all).await?;
    output::list(out, &items, columns, next.as_deref());
    Ok(())
}

pub(crate) fn id_of(value: &Value) -> anyhow::Result<String> {
    value
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the server's answer has no id"))
}

pub(crate) async fn resolve_user(client: &Client, user: &str) -> anyhow::Result<String> {
    if is_uuid(user) {
        return Ok(user.to_string());
    }
    id_of(&client.get(&["users", "byPrincipalName", user], &[]).await?)
}

/// The objects of a collection with exactly this display name (case-insensitive).
async fn named(client: &Client, collection: &str, name: &str) -> anyhow::Result<Vec<Value>> {
    let (items, _) = client
        .list(
            &[collection],
            vec![("search", name.to_string()), ("limit", "1000".to_string())],
            true,
        )
        .await?;
    Ok(items
        .into_iter()
        .filter(|item| {
            item.get("displayName")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .collect())
}

/// Finds one object of a collection by id or exact display name.
pub(crate) async fn resolve_named(
    client: &Client,
    collection: &str,
    name: &str,
) -> anyhow::Result<String> {
    if is_uuid(name) {
        return Ok(name.to_string());
    }
    match named(client, collection, name).await?.as_slice() {
        [one] => id_of(one),
        [] => bail!("no {collection} item is named {name:?}"),
        _ => bail!("several {collection} items are named {name:?}; use the id"),
    }
}

/// A member, owner or principal: a user by UPN; a group by display name; a
/// workload (service principal) by display name or by its application's appId;
/// any object by its id.
pub(crate) async fn resolve_object(client: &Client, object: &str) -> anyhow::Result<String> {
    if is_uuid(object) {
        // An appId is never another object's id. Whoever may not read service
        // principals gives ids, which go to the server as they are.
        if let Ok(Some(workload)) = client
            .get_optional(&["servicePrincipals", "byAppId", object], &[])
            .await
        {
            return id_of(&workload);
        }
        return Ok(object.to_string());
    }
    if object.contains('@') {
        return resolve_user(client, object).await;
    }
    let groups = named(client, "groups", object).await?;
    match groups.as_slice() {
        [one] => return id_of(one),
        [] => {}
        _ => bail!("several groups are named {object:?}; use the id"),
    }
    // Only a name no group has is looked for among workloads.
    if let Ok(workloads) = named(client, AppKind::ServicePrincipal.collection(), object).await {
        match workloads.as_slice() {
            [one] => return id_of(one),
            [] => {}
            _ => bail!("several service principals are named {object:?}; use the id or appId"),
        }
    }
    bail!("no user, group or service principal is named {object:?}")
}

pub(crate) async fn resolve_role(client: &Client, role: &str) -> anyhow::Result<String> {
    // The built-in catalog is the same on both sides: named here without asking
    // (a user eligible for a role may not read role definitions).
    if let Some(known) = tessera_directory::roles::find(role) {
        return Ok(known.id.to_string());
    }
    id_of(
        &client
            .get(
                &["roleManagement", "directory", "roleDefinitions", role],
                &[],
            )
            .await?,
    )
}

/// The two kinds the CLI names by object id, appId or display name.
#[derive(Debug, Clone, Copy)]
enum AppKind {
    Application,
    ServicePrincipal,
}

impl AppKind {
    fn collection(self) -> &'static str {
        match self {
            AppKind::Application => "applications",
            AppKind::ServicePrincipal => "servicePrincipals",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            AppKind::Application => "application",
            AppKind::ServicePrincipal => "service principal",
        }
    }
}

/// An application or service principal named by its object id, its (application's)
/// appId or its display name (exact, case-insensitive). A display name that several
/// share is refused with the candidates, so the command never picks one by chance.
async fn find_app(client: &Client, kind: AppKind, name: &str) -> anyhow::Result<Value> {
    let collection = kind.collection();
    if let Ok(uuid) = Uuid::parse_str(name) {
        let uuid = uuid.to_string();
        if let Some(found) = client.get_optional(&[collection, &uuid], &[]).await? {
            return Ok(found);
        }
        if let Some(found) = client
            .get_optional(&[collection, "byAppId", &uuid], &[])
            .await?
        {
            return Ok(found);
        }
    }
    let mut matches = named(client, collection, name).await?;
    let noun = kind.noun();
    match matches.len() {
        0 => bail!("no {noun} with object id, appId or display name {name:?}"),
        1 => Ok(matches.remove(0)),
        count => {
            let candidates: Vec<String> = matches
                .iter()
                .map(|item| {
                    format!(
                        "  {} (appId {})",
                        item.get("id").and_then(Value::as_str).unwrap_or("?"),
                        item.get("appId").and_then(Value::as_str).unwrap_or("?")
                    )
                })
                .collect();
            bail!(
                "{count} {noun}s are named {name:?}; name one by its object id or appId:\n{}",
                candidates.join("\n")
            )
        }
    }
}

/// The object id of an application or service principal named as [`find_app`] takes.
async fn app_object_id(client: &Client, kind: AppKind, name: &str) -> anyhow::Result<String> {
    id_of(&find_app(client, kind, name).await?)
}

/// An application's client id (appId), named as [`find_app`] takes.
async fn app_client_id(client: &Client, app: &str) -> anyhow::Result<String> {
    find_app(client, AppKind::Application, app).await?["appId"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the server's answer has no appId"))
}

// ---- resources ----------------------------------------------------------------

fn user_fields(fields: &UserFields, manager: Option<String>) -> anyhow::Result<Value> {
    body(
        &fields.data,
        vec![
            ("displayName", text(&fields.display_name)),
            ("givenName", text(&fields.given_name)),
            ("surname", text(&fields.surname)),
            ("mail", text(&fields.mail)),
            ("department", text(&fields.department)),
            ("jobTitle", text(&fields.job_title)),
            ("employeeId", text(&fields.employee_id)),
            ("managerId", manager.map(Value::String)),
            ("usageLocation", text(&fields.usage_location)),
        ],
    )
}

async fn users(client: &Client, out: Output, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::List(args) => list(client, out, &["users"], &args, output::USERS).await?,
        UsersCommand::Get { user } => {
            let id = resolve_user(client, &user).await?;
            output::object(out, &client.get(&["users", &id], &[]).await?);
        }
        UsersCommand::Create(args) => {
            let manager = match &args.fields.manager {
                Some(m) => Some(resolve_user(client, m).await?),
                None => None,
            };
            let mut value = user_fields(&args.fields, manager)?;
            value["userPrincipalName"] = json!(args.upn);
            if value.get("displayName").is_none() {
                value["displayName"] = json!(args.upn.split('@').next().unwrap_or(&args.upn));
            }
            if args.disabled {
                value["accountEnabled"] = json!(false);
            }
            if args.guest {
                value["userType"] = json!("guest");
            }
            output::object(out, &client.post(&["users"], &value).await?);
        }
        UsersCommand::Update(args) => {
            let id = resolve_user(client, &args.user).await?;
            let manager = match &args.fields.manager {
                Some(m) => Some(resolve_user(client, m).await?),
                None => None,
            };
            let mut value = user_fields(&args.fields, manager)?;
            if let Some(upn) = &args.upn {
                value["userPrincipalName"] = json!(upn);
            }
            if args.enable {
                value["accountEnabled"] = json!(true);
            }
            if args.disable {
                value["accountEnabled"] = json!(false);
            }
            client::require(
                value.as_object().is_some_and(|m| !m.is_empty()),
                "nothing to change: give at least one attribute",
            )?;
            output::object(
                out,
                &client
                    .patch(&["users", &id], &value, args.if_match.if_match)
                    .await?,
            );
        }
        UsersCommand::Delete { user, if_match } => {
            let id = resolve_user(client, &user).await?;
            client.delete(&["users", &id], if_match.if_match).await?;
            output::done(out, &format!("deleted user {user}"));
        }
        UsersCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let users: Vec<Value> = if text.trim_start().starts_with('[') {
                serde_json::from_str(&text).context("the file is not a JSON array")?
            } else {
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .enumerate()
                    .map(|(n, l)| {
                        serde_json::from_str(l)
                            .with_context(|| format!("line {} is not JSON", n + 1))
                    })
                    .collect::<anyhow::Result<_>>()?
            };
            let mut created = 0;
            for (batch, chunk) in users.chunks(1000).enumerate() {
                let reply = client
                    .post(&["users", "import"], &json!({ "users": chunk }))
                    .await
                    .with_context(|| format!("batch {} (users {} to {}) was refused; {created} users were created before it", batch + 1, batch * 1000 + 1, batch * 1000 + chunk.len()))?;
                created += reply.get("created").and_then(Value::as_u64).unwrap_or(0);
            }
            output::done(out, &format!("created {created} users"));
        }
        UsersCommand::MemberOf { user, transitive } => {
            let id = resolve_user(client, &user).await?;
            let relation = if transitive {
                "transitiveMemberOf"
            } else {
                "memberOf"
            };
            let (items, next) = client
                .list(
                    &["users", &id, relation],
                    vec![("limit", "1000".into())],
                    true,
                )
                .await?;
            output::list(out, &items, output::OBJECTS, next.as_deref());
        }
        UsersCommand::Tokens { user } => {
            let id = resolve_user(client, &user).await?;
            let (items, next) = client
                .list(&["users", &id, "accessTokens"], Vec::new(), true)
                .await?;
            output::list(out, &items, output::TOKENS, next.as_deref());
        }
        UsersCommand::IssueToken { user, name, days } => {
            let id = resolve_user(client, &user).await?;
            let mut value = json!({ "displayName": name });
            if let Some(days) = days {
                value["expiresInDays"] = json!(days);
            }
            output::object(
                out,
                &client.post(&["users", &id, "accessTokens"], &value).await?,
            );
        }
        UsersCommand::RevokeToken { user, token_id } => {
            let id = resolve_user(client, &user).await?;
            client
                .delete(&["users", &id, "accessTokens", &token_id], None)
                .await?;
            output::done(out, &format!("revoked token {token_id}"));
        }
    }
    Ok(())
}

async fn groups(client: &Client, out: Output, command: GroupsCommand) -> anyhow::Result<()> {
    match command {
        GroupsCommand::List(args) => list(client, out, &["groups"], &args, output::GROUPS).await?,
        GroupsCommand::Get { group } => {
            let id = resolve_named(client, "groups", &group).await?;
            output::object(out, &client.get(&["groups", &id], &[]).await?);
        }
        GroupsCommand::Create(args) => {
            let mut value = body(
                &args.data,
                vec![
                    ("displayName", Some(json!(args.display_name))),
                    ("description", text(&args.description)),
                    ("membershipRule", text(&args.rule)),
                ],
            )?;
            if args.role_assignable {
                value["isAssignableToRole"] = json!(true);
            }
            output::object(out, &client.post(&["groups"], &value).await?);
        }
        GroupsCommand::Update(args) => {
            let id = resolve_named(client, "groups", &args.group).await?;
            let state = if args.pause {
                Some(json!("Paused"))
            } else if args.resume {
                Some(json!("On"))
            } else {
                None
            };
            let value = body(
                &args.data,
                vec![
                    ("displayName", text(&args.display_name)),
                    ("description", text(&args.description)),
                    ("membershipRule", text(&args.rule)),
                    ("membershipRuleProcessingState", state),
                ],
            )?;
            output::object(
                out,
                &client
                    .patch(&["groups", &id], &value, args.if_match.if_match)
                    .await?,
            );
        }
        GroupsCommand::Delete { group, if_match } => {
            let id = resolve_named(client, "groups", &group).await?;
            client.delete(&["groups", &id], if_match.if_match).await?;
            output::done(out, &format!("deleted group {group}"));
        }
        GroupsCommand::Members { group, transitive } => {
            let id = resolve_named(client, "groups", &group).await?;
            let relation = if transitive {
                "transitiveMembers"
            } else {
                "members"
            };
            let (items, next) = client
                .list(
                    &["groups", &id, relation],
                    vec![("limit", "1000".into())],
                    true,
                )
                .await?;
            output::list(out, &items, output::OBJECTS, next.as_deref());
        }
        GroupsCommand::AddMember { group, member } => {
            let id = resolve_named(client, "groups", &group).await?;
            let member_id = resolve_object(client, &member).await?;
            client
                .post(&["groups", &id, "members"], &json!({ "id": member_id }))
                .await?;
            output::done(out, &format!("added {member} to {group}"));
        }
        GroupsCommand::RemoveMember { group, member } => {
            let id = resolve_named(client, "groups", &group).await?;
            let member_id = resolve_object(client, &member).await?;
            client
                .delete(&["groups", &id, "members", &member_id], None)
                .await?;
            output::done(out, &format!("removed {member} from {group}"));
        }
        GroupsCommand::Owners { group } => {
            let id = resolve_named(client, "groups", &group).await?;
            let (items, next) = client
                .list(&["groups", &id, "owners"], Vec::new(), false)
                .await?;
            output::list(out, &items, output::OBJECTS, next.as_deref());
        }
        GroupsCommand::AddOwner { group, owner } => {
            let id = resolve_named(client, "groups", &group).await?;
            let owner_id = resolve_object(client, &owner).await?;
            client
                .post(&["groups", &id, "owners"], &json!({ "id": owner_id }))
                .await?;
            output::done(out, &format!("{owner} now owns {group}"));
        }
        GroupsCommand::RemoveOwner { group, owner } => {
            let id = resolve_named(client, "groups", &group).await?;
            let owner_id = resolve_object(client, &owner).await?;
            client
                .delete(&["groups", &id, "owners", &owner_id], None)
                .await?;
            output::done(out, &format!("{owner} no longer owns {group}"));
        }
    }
    Ok(())
}

async fn device_body(
    client: &Client,
    fields: &DeviceUpdateFields,
    display_name: Option<String>,
) -> anyhow::Result<Value> {
    let owner = match &fields.owner {
        Some(owner) => Some(json!(resolve_user(client, owner).await?)),
        None => None,
    };
    body(
        &fields.data,
        vec![
            ("displayName", display_name.map(Value::String)),
            ("operatingSystem", text(&fields.os)),
            ("operatingSystemVersion", text(&fields.os_version)),
            ("trustType", text(&fields.trust_type)),
            ("isCompliant", fields.compliant.map(Value::Bool)),
            ("isManaged", fields.managed.map(Value::Bool)),
            ("ownerId", owner),
        ],
    )
}

async fn devices(client: &Client, out: Output, command: DevicesCommand) -> anyhow::Result<()> {
    match command {
        DevicesCommand::List(args) => {
            list(client, out, &["devices"], &args, output::DEVICES).await?
        }
        DevicesCommand::Get { device } => {
            let id = resolve_named(client, "devices", &device).await?;
            output::object(out, &client.get(&["devices", &id], &[]).await?);
        }
        DevicesCommand::Create(args) => {
            let value = device_body(client, &args.rest, Some(args.display_name)).await?;
            output::object(out, &client.post(&["devices"], &value).await?);
        }
        DevicesCommand::Update {
            device,
            fields,
            if_match,
        } => {
            let id = resolve_named(client, "devices", &device).await?;
            let value = device_body(client, &fields, None).await?;
            output::object(
                out,
                &client
                    .patch(&["devices", &id], &value, if_match.if_match)
                    .await?,
            );
        }
        DevicesCommand::Delete { device, if_match } => {
            let id = resolve_named(client, "devices", &device).await?;
            client.delete(&["devices", &id], if_match.if_match).await?;
            output::done(out, &format!("deleted device {device}"));
        }
        DevicesCommand::Compliance {
            device,
            compliant,
            not_compliant,
            grace_until,
            reason,
            file,
        } => {
            let value = match (file, device) {
                (Some(path), _) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let parsed: serde_json::Value = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", path.display()))?;
                    match parsed {
                        serde_json::Value::Array(list) => list,
                        other => other["value"].as_array().cloned().unwrap_or_default(),
                    }
                }
                (None, Some(device)) => {
                    if compliant == not_compliant {
                        anyhow::bail!("say --compliant or --not-compliant");
                    }
                    let id = resolve_named(client, "devices", &device).await?;
                    vec![serde_json::json!({
                        "deviceId": id,
                        "isCompliant": compliant,
                        "complianceGracePeriodExpirationDateTime": grace_until,
                        "complianceReason": reason,
                    })]
                }
                (None, None) => anyhow::bail!("name a device or give --file"),
            };
            let answer = client
                .post(
                    &["devices", "compliance"],
                    &serde_json::json!({ "value": value }),
                )
                .await?;
            output::object(out, &answer);
        }
    }
    Ok(())
}

fn secret_body(display_name: &Option<String>, days: Option<i64>) -> anyhow::Result<Value> {
    let mut value = json!({});
    if let Some(name) = display_name {
        value["displayName"] = json!(name);
    }
    if let Some(days) = days {
        let seconds = days
            .checked_mul(86_400)
            .ok_or_else(|| anyhow!("--days is too large"))?;
        let end = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
        value["endDateTime"] = json!(end.format(&time::format_description::well_known::Rfc3339)?);
    }
    Ok(value)
}

fn cert_body(args: &AddCertArgs) -> anyhow::Result<Value> {
    let pem = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let mut value = json!({ "key": pem });
    if let Some(name) = &args.display_name {
        value["displayName"] = json!(name);
    }
    Ok(value)
}

/// An application's attributes from its flags, over `--data`.
fn app_fields(fields: &AppFields, display_name: Option<String>) -> anyhow::Result<Value> {
    let uris = |list: &Vec<String>| (!list.is_empty()).then(|| json!({ "redirectUris": list }));
    let list = |list: &Vec<String>| (!list.is_empty()).then(|| json!(list));
    body(
        &fields.data,
        vec![
            ("displayName", display_name.map(Value::String)),
            ("description", text(&fields.description)),
            ("web", uris(&fields.redirect_uris)),
            ("spa", uris(&fields.spa_redirect_uris)),
            ("publicClient", uris(&fields.public_redirect_uris)),
            (
                "postLogoutRedirectUris",
                list(&fields.post_logout_redirect_uris),
            ),
            (
                "isFallbackPublicClient",
                fields.public_client.map(Value::Bool),
            ),
            ("idTokenSignedResponseAlg", text(&fields.id_token_alg)),
            (
                "allowPasswordGrant",
                fields.allow_password_grant.map(Value::Bool),
            ),
            (
                "requirePushedAuthorizationRequests",
                fields.require_par.map(Value::Bool),
            ),
            (
                "dpopBoundAccessTokens",
                fields.require_dpop.map(Value::Bool),
            ),
            ("backchannelLogoutUri", text(&fields.backchannel_logout_uri)),
        ],
    )
}

async fn apps(client: &Client, out: Output, command: AppsCommand) -> anyhow::Result<()> {
    match command {
        AppsCommand::List(args) => {
            list(client, out, &["applications"], &args, output::APPS).await?
        }
        AppsCommand::Get { app } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            output::object(out, &client.get(&["applications", &id], &[]).await?);
        }
        AppsCommand::Create(args) => {
            let value = app_fields(&args.fields, Some(args.display_name))?;
            output::object(out, &client.post(&["applications"], &value).await?);
        }
        AppsCommand::Update {
            app,
            display_name,
            fields,
            if_match,
        } => {
            let value = app_fields(&fields, display_name)?;
            client::require(
                value.as_object().is_some_and(|m| !m.is_empty()),
                "nothing to change: give at least one setting",
            )?;
            let id = app_object_id(client, AppKind::Application, &app).await?;
            output::object(
                out,
                &client
                    .patch(&["applications", &id], &value, if_match.if_match)
                    .await?,
            );
        }
        AppsCommand::Delete { app, if_match } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            client
                .delete(&["applications", &id], if_match.if_match)
                .await?;
            output::done(
                out,
                &format!("deleted application {app} and its service principal"),
            );
        }
        AppsCommand::AddSecret(args) => {
            let id = app_object_id(client, AppKind::Application, &args.app).await?;
            let created = client
                .post(
                    &["applications", &id, "passwordCredentials"],
                    &secret_body(&args.display_name, args.days)?,
                )
                .await?;
            output::object(out, &created);
        }
        AppsCommand::RemoveSecret { app, key_id } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            client
                .delete(&["applications", &id, "passwordCredentials", &key_id], None)
                .await?;
            output::done(out, &format!("removed secret {key_id}"));
        }
        AppsCommand::AddCert(args) => {
            let id = app_object_id(client, AppKind::Application, &args.app).await?;
            output::object(
                out,
                &client
                    .post(&["applications", &id, "keyCredentials"], &cert_body(&args)?)
                    .await?,
            );
        }
        AppsCommand::RemoveCert { app, key_id } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            client
                .delete(&["applications", &id, "keyCredentials", &key_id], None)
                .await?;
            output::done(out, &format!("removed certificate {key_id}"));
        }
        AppsCommand::Consent { app, scope } => {
            let app_id = app_client_id(client, &app).await?;
            let value =
                json!({ "clientId": app_id, "consentType": "AllPrincipals", "scope": scope });
            output::object(
                out,
                &client.post(&["oauth2PermissionGrants"], &value).await?,
            );
        }
        AppsCommand::Consents { app } => {
            let app_id = app_client_id(client, &app).await?;
            let page = client
                .get(&["oauth2PermissionGrants"], &[("clientId", app_id)])
                .await?;
            let items = page["value"].as_array().cloned().unwrap_or_default();
            output::list(out, &items, output::PERMISSION_GRANTS, None);
        }
        AppsCommand::RevokeConsent { grant_id } => {
            client
                .delete(&["oauth2PermissionGrants", &grant_id], None)
                .await?;
            output::done(out, &format!("withdrew consent {grant_id}"));
        }
        AppsCommand::Saml(command) => saml(client, out, command).await?,
        AppsCommand::Owners { app } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            let (items, next) = client
                .list(&["applications", &id, "owners"], Vec::new(), false)
                .await?;
            output::list(out, &items, output::OBJECTS, next.as_deref());
        }
        AppsCommand::AddOwner { app, owner } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            let owner_id = resolve_object(client, &owner).await?;
            client
                .post(&["applications", &id, "owners"], &json!({ "id": owner_id }))
                .await?;
            output::done(out, &format!("{owner} now owns {app}"));
        }
        AppsCommand::RemoveOwner { app, owner } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            let owner_id = resolve_object(client, &owner).await?;
            client
                .delete(&["applications", &id, "owners", &owner_id], None)
                .await?;
            output::done(out, &format!("{owner} no longer owns {app}"));
        }
    }
    Ok(())
}

async fn service_principals(
    client: &Client,
    out: Output,
    command: SpsCommand,
) -> anyhow::Result<()> {
    let resolve =
        |sp: String| async move { app_object_id(client, AppKind::ServicePrincipal, &sp).await };
    match command {
        SpsCommand::List(args) => {
            list(
                client,
                out,
                &["servicePrincipals"],
                &args,
                output::SERVICE_PRINCIPALS,
            )
            .await?
        }
        SpsCommand::Get { sp } => {
            let id = resolve(sp).await?;
            output::object(out, &client.get(&["servicePrincipals", &id], &[]).await?);
        }
        SpsCommand::Create { app_id, data } => {
            let app_id = app_client_id(client, &app_id).await?;
            let value = body(&data, vec![("appId", Some(json!(app_id)))])?;
            output::object(out, &client.post(&["servicePrincipals"], &value).await?);
        }
        SpsCommand::Update { sp, data, if_match } => {
            let id = resolve(sp).await?;
            output::object(
                out,
                &client
                    .patch(
                        &["servicePrincipals", &id],
                        &body(&data, Vec::new())?,
                        if_match.if_match,
                    )
                    .await?,
            );
        }
        SpsCommand::Delete { sp, if_match } => {
            let id = resolve(sp.clone()).await?;
            client
                .delete(&["servicePrincipals", &id], if_match.if_match)
                .await?;
            output::done(out, &format!("deleted service principal {sp}"));
        }
        SpsCommand::AddSecret(args) => {
            let id = resolve(args.app.clone()).await?;
            let created = client
                .post(
                    &["servicePrincipals", &id, "passwordCredentials"],
                    &secret_body(&args.display_name, args.days)?,
                )
                .await?;
            output::object(out, &created);
        }
        SpsCommand::RemoveSecret { sp, key_id } => {
            let id = resolve(sp).await?;
            client
                .delete(
                    &["servicePrincipals", &id, "passwordCredentials", &key_id],
                    None,
                )
                .await?;
            output::done(out, &format!("removed secret {key_id}"));
        }
        SpsCommand::AddCert(args) => {
            let id = resolve(args.app.clone()).await?;
            output::object(
                out,
                &client
                    .post(
                        &["servicePrincipals", &id, "keyCredentials"],
                        &cert_body(&args)?,
                    )
                    .await?,
            );
        }
        SpsCommand::RemoveCert { sp, key_id } => {
            let id = resolve(sp).await?;
            client
                .delete(&["servicePrincipals", &id, "keyCredentials", &key_id], None)
                .await?;
            output::done(out, &format!("removed certificate {key_id}"));
        }
        SpsCommand::Assign {
            sp,
            principal,
            role,
        } => {
            let id = resolve(sp).await?;
            let principal_id = resolve_object(client, &principal).await?;
            let mut value = json!({ "principalId": principal_id });
            if let Some(role) = role {
                value["appRoleId"] = json!(role);
            }
            output::object(
                out,
                &client
                    .post(&["servicePrincipals", &id, "appRoleAssignedTo"], &value)
                    .await?,
            );
        }
        SpsCommand::Assignments { sp, page } => {
            let id = resolve(sp).await?;
            list(
                client,
                out,
                &["servicePrincipals", &id, "appRoleAssignedTo"],
                &page,
                output::APP_ROLE_ASSIGNMENTS,
            )
            .await?
        }
        SpsCommand::Unassign { sp, assignment_id } => {
            let id = resolve(sp).await?;
            client
                .delete(
                    &[
                        "servicePrincipals",
                        &id,
                        "appRoleAssignedTo",
                        &assignment_id,
                    ],
                    None,
                )
                .await?;
            output::done(out, &format!("removed assignment {assignment_id}"));
        }
    }
    Ok(())
}

async fn roles(client: &Client, out: Output, command: RolesCommand) -> anyhow::Result<()> {
    let definitions = ["roleManagement", "directory", "roleDefinitions"];
    let assignments = ["roleManagement", "directory", "roleAssignments"];
    match command {
        RolesCommand::List => {
            let (items, next) = client.list(&definitions, Vec::new(), false).await?;
            output::list(out, &items, output::ROLES, next.as_deref());
        }
        RolesCommand::Get { role } => {
            output::object(
                out,
                &client
                    .get(
                        &["roleManagement", "directory", "roleDefinitions", &role],
                        &[],
                    )
                    .await?,
            );
        }
        RolesCommand::Assign {
            role,
            principal,
            unit,
        } => {
            let role_id = resolve_role(client, &role).await?;
            let principal_id = resolve_object(client, &principal).await?;
            let scope = match unit {
                Some(unit) => format!(
                    "/administrativeUnits/{}",
                    resolve_named(client, "administrativeUnits", &unit).await?
                ),
                None => "/".to_string(),
            };
            let value = json!({ "principalId": principal_id, "roleDefinitionId": role_id, "directoryScopeId": scope });
            output::object(out, &client.post(&assignments, &value).await?);
        }
        RolesCommand::Assignments { principal, role } => {
            let mut query = Vec::new();
            if let Some(principal) = principal {
                query.push(("principalId", resolve_object(client, &principal).await?));
            }
            if let Some(role) = role {
                query.push(("roleDefinitionId", resolve_role(client, &role).await?));
            }
            let (items, next) = client.list(&assignments, query, true).await?;
            output::list(out, &items, output::ASSIGNMENTS, next.as_deref());
        }
        RolesCommand::Unassign { assignment_id } => {
            client
                .delete(
                    &[
                        "roleManagement",
                        "directory",
                        "roleAssignments",
                        &assignment_id,
                    ],
                    None,
                )
                .await?;
            output::done(out, &format!("removed role assignment {assignment_id}"));
        }
    }
    Ok(())
}

async fn units(client: &Client, out: Output, command: UnitsCommand) -> anyhow::Result<()> {
    let resolve =
        |unit: String| async move { resolve_named(client, "administrativeUnits", &unit).await };
    match command {
        UnitsCommand::List(args) => {
            list(client, out, &["administrativeUnits"], &args, output::UNITS).await?
        }
        UnitsCommand::Get { unit } => {
            let id = resolve(unit).await?;
            output::object(out, &client.get(&["administrativeUnits", &id], &[]).await?);
        }
        UnitsCommand::Create {
            display_name,
            description,
        } => {
            let value = body(
                &DataArg { data: None },
                vec![
                    ("displayName", Some(json!(display_name))),
                    ("description", text(&description)),
                ],
            )?;
            output::object(out, &client.post(&["administrativeUnits"], &value).await?);
        }
        UnitsCommand::Update {
            unit,
            display_name,
            description,
            if_match,
        } => {
            let id = resolve(unit).await?;
            let value = body(
                &DataArg { data: None },
                vec![
                    ("displayName", text(&display_name)),
                    ("description", text(&description)),
                ],
            )?;
            output::object(
                out,
                &client
                    .patch(&["administrativeUnits", &id], &value, if_match.if_match)
                    .await?,
            );
        }
        UnitsCommand::Delete { unit, if_match } => {
            let id = resolve(unit.clone()).await?;
            client
                .delete(&["administrativeUnits", &id], if_match.if_match)
                .await?;
            output::done(out, &format!("deleted administrative unit {unit}"));
        }
        UnitsCommand::Members { unit } => {
            let id = resolve(unit).await?;
            let (items, next) = client
                .list(
                    &["administrativeUnits", &id, "members"],
                    vec![("limit", "1000".into())],
                    true,
                )
                .await?;
            output::list(out, &items, output::OBJECTS, next.as_deref());
        }
        UnitsCommand::AddMember { unit, member } => {
            let id = resolve(unit.clone()).await?;
            let member_id = resolve_object(client, &member).await?;
            client
                .post(
                    &["administrativeUnits", &id, "members"],
                    &json!({ "id": member_id }),
                )
                .await?;
            output::done(out, &format!("added {member} to {unit}"));
        }
        UnitsCommand::RemoveMember { unit, member } => {
            let id = resolve(unit.clone()).await?;
            let member_id = resolve_object(client, &member).await?;
            client
                .delete(&["administrativeUnits", &id, "members", &member_id], None)
                .await?;
            output::done(out, &format!("removed {member} from {unit}"));
        }
    }
    Ok(())
}

async fn attributes(
    client: &Client,
    out: Output,
    command: AttributesCommand,
) -> anyhow::Result<()> {
    let base = ["directory", "customSecurityAttributeDefinitions"];
    match command {
        AttributesCommand::List(args) => {
            list(client, out, &base, &args, output::ATTRIBUTES).await?
        }
        AttributesCommand::Get { id } => {
            output::object(
                out,
                &client
                    .get(
                        &["directory", "customSecurityAttributeDefinitions", &id],
                        &[],
                    )
                    .await?,
            );
        }
        AttributesCommand::Create {
            attribute_set,
            name,
            attribute_type,
            collection,
            description,
            allowed_values,
            predefined_only,
        } => {
            let mut value = json!({
                "attributeSet": attribute_set, "name": name, "type": attribute_type,
                "isCollection": collection, "usePreDefinedValuesOnly": predefined_only,
            });
            if let Some(description) = description {
                value["description"] = json!(description);
            }
            if !allowed_values.is_empty() {
                value["allowedValues"] = json!(allowed_values);
            }
            output::object(out, &client.post(&base, &value).await?);
        }
        AttributesCommand::Update { id, data } => {
            let value = body(&data, Vec::new())?;
            output::object(
                out,
                &client
                    .patch(
                        &["directory", "customSecurityAttributeDefinitions", &id],
                        &value,
                        None,
                    )
                    .await?,
            );
        }
    }
    Ok(())
}

async fn audit(client: &Client, out: Output, command: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::List {
        actor,
        target,
        action,
        since,
        until,
        limit,
        all,
    } = command
    else {
        bail!("unreachable: verify and checkpoints run offline");
    };
    let mut query = Vec::new();
    if let Some(actor) = actor {
        query.push(("actorId", resolve_object(client, &actor).await?));
    }
    if let Some(target) = target {
        query.push(("targetId", target));
    }
    if let Some(action) = action {
        query.push(("action", action));
    }
    if let Some(since) = since {
        query.push(("since", since));
    }
    if let Some(until) = until {
        query.push(("until", until));
    }
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
    let (items, next) = client
        .list(&["auditLogs", "directoryAudits"], query, all)
        .await?;
    output::list(out, &items, output::AUDIT, next.as_deref());
    Ok(())
}

async fn tokens(client: &Client, out: Output, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::List => {
            let (items, next) = client
                .list(&["me", "accessTokens"], Vec::new(), true)
                .await?;
            output::list(out, &items, output::TOKENS, next.as_deref());
        }
        TokensCommand::Create { name, days } => {
            let mut value = json!({ "displayName": name });
            if let Some(days) = days {
                value["expiresInDays"] = json!(days);
            }
            output::object(out, &client.post(&["me", "accessTokens"], &value).await?);
        }
        TokensCommand::Revoke { token_id } => {
            client
                .delete(&["me", "accessTokens", &token_id], None)
                .await?;
            output::done(out, &format!("revoked token {token_id}"));
        }
    }
    Ok(())
}

async fn provisioning(
    client: &Client,
    out: Output,
    command: ProvisioningCommand,
) -> anyhow::Result<()> {
    const TOKENS: [&str; 2] = ["provisioning", "tokens"];
    // The settings' fields, kept when one of them is changed.
    const SETTINGS_FIELDS: [&str; 4] = ["defaultDomain", "clients", "userMapping", "hrImport"];
    const RUNS: [&str; 3] = ["provisioning", "hr", "runs"];
    let upload = |file: &std::path::Path, format: Option<String>| -> anyhow::Result<Value> {
        let content = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let mut body = json!({ "content": content });
        if let Some(format) = format {
            body["format"] = json!(format);
        }
        Ok(body)
    };
    match command {
        ProvisioningCommand::Hr(ProvisioningHrCommand::Settings { file, if_match }) => {
            let segments = ["provisioning", "settings"];
            let value = match file {
                Some(file) => {
                    let hr = read_json_file(&file)?;
                    let (mut body, version) = client.get_versioned(&segments).await?;
                    if let Some(object) = body.as_object_mut() {
                        object.retain(|k, _| {
                            k != "hrImport" && SETTINGS_FIELDS.contains(&k.as_str())
                        });
                        object.insert("hrImport".to_string(), hr);
                    }
                    client
                        .put(&segments, &body, if_match.if_match.or(version).or(Some(0)))
                        .await?
                }
                None => client.get(&segments, &[]).await?,
            };
            output::object(out, &json!({ "hrImport": value.get("hrImport") }));
        }
        ProvisioningCommand::Hr(ProvisioningHrCommand::Preview { file, format }) => {
            let value = client
                .post(&["provisioning", "hr", "preview"], &upload(&file, format)?)
                .await?;
            output::object(out, &value);
        }
        ProvisioningCommand::Hr(ProvisioningHrCommand::Run { file, format }) => {
            output::object(out, &client.post(&RUNS, &upload(&file, format)?).await?);
        }
        ProvisioningCommand::Hr(ProvisioningHrCommand::Runs) => {
            let listed = client.get(&RUNS, &[]).await?;
            output::object(out, &listed);
        }
        ProvisioningCommand::Hr(ProvisioningHrCommand::Show { run_id }) => {
            output::object(
                out,
                &client
                    .get(&[RUNS[0], RUNS[1], RUNS[2], &run_id], &[])
                    .await?,
            );
        }
        ProvisioningCommand::Hr(ProvisioningHrCommand::Approve { run_id }) => {
            let value = client
                .post(&[RUNS[0], RUNS[1], RUNS[2], &run_id, "approve"], &json!({}))
                .await?;
            output::object(out, &value);
        }
        ProvisioningCommand::Hr(ProvisioningHrCommand::Reject { run_id }) => {
            let value = client
                .post(&[RUNS[0], RUNS[1], RUNS[2], &run_id, "reject"], &json!({}))
                .await?;
            output::object(out, &value);
        }
        ProvisioningCommand::Mapping(command) => {
            let segments = ["provisioning", "settings"];
            let (mapping, if_match): (Option<Value>, IfMatchArg) = match command {
                ProvisioningMappingCommand::Show => {
                    let value = client.get(&["provisioning", "mapping"], &[]).await?;
                    output::object(out, &value);
                    return Ok(());
                }
                ProvisioningMappingCommand::Preview { user_file, mapping } => {
                    let mut body = json!({ "resource": read_json_file(&user_file)? });
                    if let Some(file) = mapping {
                        body["mapping"] = read_json_file(&file)?;
                    }
                    let value = client
                        .post(&["provisioning", "mapping", "preview"], &body)
                        .await?;
                    output::object(out, &value);
                    return Ok(());
                }
                ProvisioningMappingCommand::Set { file, if_match } => {
                    (Some(read_json_file(&file)?), if_match)
                }
                ProvisioningMappingCommand::Reset { if_match } => (None, if_match),
            };
            // The other settings stay as they are (at the version read, unless
            // --if-match names one).
            let (mut body, version) = client.get_versioned(&segments).await?;
            if let Some(object) = body.as_object_mut() {
                object.retain(|k, _| k != "userMapping" && SETTINGS_FIELDS.contains(&k.as_str()));
                if let Some(mapping) = mapping {
                    object.insert("userMapping".to_string(), mapping);
                }
            }
            let value = client
                .put(&segments, &body, if_match.if_match.or(version).or(Some(0)))
                .await?;
            output::object(out, &json!({ "userMapping": value.get("userMapping") }));
        }
        ProvisioningCommand::Outbound(command) => outbound(client, out, command).await?,
        ProvisioningCommand::Tokens(ProvisioningTokensCommand::List) => {
            let listed = client.get(&TOKENS, &[]).await?;
            let items = listed["value"].as_array().cloned().unwrap_or_default();
            output::list(out, &items, output::TOKENS, None);
        }
        ProvisioningCommand::Tokens(ProvisioningTokensCommand::Create { name, days }) => {
            let mut value = json!({ "displayName": name });
            if let Some(days) = days {
                value["expiresInDays"] = json!(days);
            }
            output::object(out, &client.post(&TOKENS, &value).await?);
        }
        ProvisioningCommand::Tokens(ProvisioningTokensCommand::Delete { token_id }) => {
            client
                .delete(&[TOKENS[0], TOKENS[1], &token_id], None)
                .await?;
            output::done(out, &format!("deleted provisioning token {token_id}"));
        }
        ProvisioningCommand::Clients(command) => {
            let segments = ["provisioning", "settings"];
            // Read and written back at the version read: a change made meanwhile
            // is refused (412), not overwritten.
            let (settings, version) = client.get_versioned(&segments).await?;
            let mut clients: Vec<Value> =
                settings["clients"].as_array().cloned().unwrap_or_default();
            let changed = match command {
                ProvisioningClientsCommand::List => None,
                ProvisioningClientsCommand::Add { app } => {
                    let id = Value::String(app_client_id(client, &app).await?);
                    if !clients.contains(&id) {
                        clients.push(id);
                    }
                    Some(clients)
                }
                ProvisioningClientsCommand::Remove { app } => {
                    // An appId as it is, so that of an application deleted since goes too.
                    let id = match uuid::Uuid::parse_str(&app) {
                        Ok(id) => Value::String(id.to_string()),
                        Err(_) => Value::String(app_client_id(client, &app).await?),
                    };
                    clients.retain(|c| *c != id);
                    Some(clients)
                }
            };
            let value = match changed {
                Some(clients) => {
                    let mut body = settings.clone();
                    if let Some(object) = body.as_object_mut() {
                        object.retain(|k, _| SETTINGS_FIELDS.contains(&k.as_str()));
                        object.insert("clients".to_string(), Value::Array(clients));
                    }
                    client.put(&segments, &body, version.or(Some(0))).await?
                }
                None => settings,
            };
            let clients = value["clients"].as_array().cloned().unwrap_or_default();
            output::object(out, &json!({ "clients": clients }));
        }
        ProvisioningCommand::Settings {
            default_domain,
            if_match,
        } => {
            let segments = ["provisioning", "settings"];
            let value = match default_domain {
                Some(domain) => {
                    // The other settings stay as they are (at the version read,
                    // unless --if-match names one).
                    let (mut body, version) = client.get_versioned(&segments).await?;
                    if let Some(object) = body.as_object_mut() {
                        object.retain(|k, _| {
                            k != "defaultDomain" && SETTINGS_FIELDS.contains(&k.as_str())
                        });
                        if !domain.is_empty() {
                            object.insert("defaultDomain".to_string(), json!(domain));
                        }
                    }
                    client
                        .put(&segments, &body, if_match.if_match.or(version).or(Some(0)))
                        .await?
                }
                None => client.get(&segments, &[]).await?,
            };
            output::object(out, &value);
        }
    }
    Ok(())
}

async fn lifecycle(client: &Client, out: Output, command: LifecycleCommand) -> anyhow::Result<()> {
    const WORKFLOWS: [&str; 2] = ["lifecycle", "workflows"];
    let value = match command {
        LifecycleCommand::List => client.get(&WORKFLOWS, &[]).await?,
        LifecycleCommand::Create { file } => {
            client.post(&WORKFLOWS, &read_json_file(&file)?).await?
        }
        LifecycleCommand::Show { workflow_id } => {
            client
                .get(&[WORKFLOWS[0], WORKFLOWS[1], &workflow_id], &[])
                .await?
        }
        LifecycleCommand::Replace {
            workflow_id,
            file,
            if_match,
        } => {
            let segments = [WORKFLOWS[0], WORKFLOWS[1], workflow_id.as_str()];
            let version = match if_match.if_match {
                Some(version) => Some(version),
                None => client.get_versioned(&segments).await?.1,
            };
            client
                .put(&segments, &read_json_file(&file)?, version)
                .await?
        }
        LifecycleCommand::Delete { workflow_id } => {
            client
                .delete(&[WORKFLOWS[0], WORKFLOWS[1], &workflow_id], None)
                .await?;
            output::done(out, &format!("deleted lifecycle workflow {workflow_id}"));
            return Ok(());
        }
        LifecycleCommand::Runs { workflow_id } => {
            client
                .get(&[WORKFLOWS[0], WORKFLOWS[1], &workflow_id, "runs"], &[])
                .await?
        }
    };
    output::object(out, &value);
    Ok(())
}

/// `tessera provisioning outbound`.
async fn outbound(
    client: &Client,
    out: Output,
    command: ProvisioningOutboundCommand,
) -> anyhow::Result<()> {
    use ProvisioningOutboundCommand as C;
    let sp =
        |app: String| async move { app_object_id(client, AppKind::ServicePrincipal, &app).await };
    match command {
        C::Show { app } => {
            let id = sp(app).await?;
            output::object(
                out,
                &client
                    .get(&["servicePrincipals", &id, "provisioning"], &[])
                    .await?,
            );
        }
        C::Set {
            app,
            file,
            token_file,
            if_match,
        } => {
            let id = sp(app).await?;
            let mut body = read_json_file(&file)?;
            if !body.is_object() {
                bail!("{} must hold one JSON object", file.display());
            }
            if let Some(path) = token_file {
                let token = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                body["secretToken"] = Value::String(token.trim().to_string());
            }
            let segments = ["servicePrincipals", &id, "provisioning"];
            let version = match if_match.if_match {
                Some(version) => Some(version),
                None => match client.get_optional(&segments, &[]).await? {
                    Some(current) => current["version"].as_i64(),
                    None => Some(0),
                },
            };
            output::object(out, &client.put(&segments, &body, version).await?);
        }
        C::Delete { app } => {
            let id = sp(app).await?;
            client
                .delete(&["servicePrincipals", &id, "provisioning"], None)
                .await?;
        }
        C::Status { app } => {
            let id = sp(app).await?;
            output::object(
                out,
                &client
                    .get(&["servicePrincipals", &id, "provisioning", "status"], &[])
                    .await?,
            );
        }
        C::Run { app, full } => {
            let id = sp(app).await?;
            output::object(
                out,
                &client
                    .post(
                        &["servicePrincipals", &id, "provisioning", "run"],
                        &json!({ "full": full }),
                    )
                    .await?,
            );
        }
        C::OnDemand { app, user } => {
            let id = sp(app).await?;
            let user_id = resolve_user(client, &user).await?;
            output::object(
                out,
                &client
                    .post(
                        &[
                            "servicePrincipals",
                            &id,
                            "provisioning",
                            "provisionOnDemand",
                        ],
                        &json!({ "userId": user_id }),
                    )
                    .await?,
            );
        }
        C::Log { app, object, limit } => {
            let id = sp(app).await?;
            let mut query = Vec::new();
            if let Some(object) = object {
                query.push(("objectId", object));
            }
            if let Some(limit) = limit {
                query.push(("limit", limit.to_string()));
            }
            output::object(
                out,
                &client
                    .get(&["servicePrincipals", &id, "provisioning", "log"], &query)
                    .await?,
            );
        }
    }
    Ok(())
}

fn read_json_file(path: &std::path::Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

async fn auth(client: &Client, out: Output, command: AuthCommand) -> anyhow::Result<()> {
    match command {
        AuthCommand::Methods { user } => {
            let id = resolve_user(client, &user).await?;
            let (items, _) = client
                .list(
                    &["users", &id, "authentication", "methods"],
                    Vec::new(),
                    false,
                )
                .await?;
            output::list(out, &items, output::METHODS, None);
        }
        AuthCommand::RemoveMethod { user, method_id } => {
            let id = resolve_user(client, &user).await?;
            client
                .delete(
                    &["users", &id, "authentication", "methods", &method_id],
                    None,
                )
                .await?;
            output::done(out, &format!("removed method {method_id}"));
        }
        AuthCommand::Tap {
            user,
            minutes,
            once,
            length,
        } => {
            let id = resolve_user(client, &user).await?;
            let mut body = json!({ "isUsableOnce": once });
            if let Some(minutes) = minutes {
                body["lifetimeInMinutes"] = json!(minutes);
            }
            if let Some(length) = length {
                body["length"] = json!(length);
            }
            let pass = client
                .post(
                    &["users", &id, "authentication", "temporaryAccessPassMethods"],
                    &body,
                )
                .await?;
            output::object(out, &pass);
        }
        AuthCommand::ResetPassword {
            user,
            password_stdin,
        } => {
            let id = resolve_user(client, &user).await?;
            let body = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("cannot read the password from standard input")?;
                json!({ "newPassword": line.trim_end_matches(['\r', '\n']) })
            } else {
                json!({})
            };
            let result = client
                .post(&["users", &id, "authentication", "resetPassword"], &body)
                .await?;
            if result["newPassword"].is_string() {
                output::object(out, &result);
            } else {
                output::done(out, "password set; the user's sessions have ended");
            }
        }
        AuthCommand::Sessions { user } => {
            let id = resolve_user(client, &user).await?;
            let (items, _) = client
                .list(&["users", &id, "sessions"], Vec::new(), false)
                .await?;
            output::list(out, &items, output::SESSIONS, None);
        }
        AuthCommand::RevokeSessions { user } => {
            let id = resolve_user(client, &user).await?;
            let result = client
                .post(&["users", &id, "revokeSignInSessions"], &json!({}))
                .await?;
            output::done(
                out,
                &format!(
                    "revoked {} session(s)",
                    result["sessionsRevoked"].as_u64().unwrap_or(0)
                ),
            );
        }
        AuthCommand::Policy(PolicyCommand::Get) => {
            let policy = client
                .get(&["policies", "authenticationMethodsPolicy"], &[])
                .await?;
            println!("{}", serde_json::to_string_pretty(&policy)?);
        }
        AuthCommand::Policy(PolicyCommand::Set { file, if_match }) => {
            let body = read_json_file(&file)?;
            client
                .put(
                    &["policies", "authenticationMethodsPolicy"],
                    &body,
                    if_match,
                )
                .await?;
            output::done(out, "authentication methods policy replaced");
        }
        AuthCommand::Strengths(StrengthsCommand::List) => {
            let (items, _) = client
                .list(
                    &["policies", "authenticationStrengthPolicies"],
                    Vec::new(),
                    false,
                )
                .await?;
            output::list(out, &items, output::STRENGTHS, None);
        }
        AuthCommand::Strengths(StrengthsCommand::Create { file }) => {
            let body = read_json_file(&file)?;
            output::object(
                out,
                &client
                    .post(&["policies", "authenticationStrengthPolicies"], &body)
                    .await?,
            );
        }
        AuthCommand::CertificateAuthorities(command) => cas(client, out, command).await?,
        AuthCommand::BindCertificate { user, value } => {
            let id = resolve_user(client, &user).await?;
            output::object(
                out,
                &client
                    .post(
                        &["users", &id, "authentication", "certificateUserIds"],
                        &json!({ "value": value }),
                    )
                    .await?,
            );
        }
        AuthCommand::Strengths(StrengthsCommand::Delete { id }) => {
            client
                .delete(&["policies", "authenticationStrengthPolicies", &id], None)
                .await?;
            output::done(out, &format!("deleted strength {id}"));
        }
    }
    Ok(())
}

async fn sign_ins(client: &Client, out: Output, args: SignInsArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(user) = args.user {
        if is_uuid(&user) {
            query.push(("userId", user));
        } else {
            query.push(("userPrincipalName", user));
        }
    }
    if let Some(result) = args.result {
        query.push(("result", result));
    }
    for (name, value) in [
        ("appDisplayName", args.app),
        ("failureCode", args.failure_code),
        ("correlationId", args.correlation_id),
    ] {
        if let Some(value) = value {
            query.push((name, value));
        }
    }
    if let Some(since) = args.since {
        query.push(("since", since));
    }
    if let Some(until) = args.until {
        query.push(("until", until));
    }
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }
    let (items, next) = client
        .list(&["auditLogs", "signIns"], query, args.all)
        .await?;
    output::list(out, &items, output::SIGN_INS, next.as_deref());
    Ok(())
}

async fn risk_detections(
    client: &Client,
    out: Output,
    args: RiskDetectionsArgs,
) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(user) = args.user {
        query.push(("userId", resolve_user(client, &user).await?));
    }
    let workloads = args.workloads || args.workload.is_some();
    for (name, value) in [
        ("servicePrincipalId", args.workload),
        ("riskEventType", args.risk_event_type),
        ("riskLevel", args.level),
        ("since", args.since),
        ("until", args.until),
        ("limit", args.limit.map(|l| l.to_string())),
    ] {
        if let Some(value) = value {
            query.push((name, value));
        }
    }
    let (path, columns) = if workloads {
        (
            "servicePrincipalRiskDetections",
            output::WORKLOAD_RISK_DETECTIONS,
        )
    } else {
        ("riskDetections", output::RISK_DETECTIONS)
    };
    let (items, next) = client
        .list(&["identityProtection", path], query, args.all)
        .await?;
    output::list(out, &items, columns, next.as_deref());
    Ok(())
}

/// A PEM file as text, or a DER file as base64.
fn certificate_file(path: &std::path::Path) -> anyhow::Result<String> {
    use base64::Engine as _;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(match String::from_utf8(bytes.clone()) {
        Ok(text) if text.contains("-----BEGIN") => text,
        _ => base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

async fn cas(client: &Client, out: Output, command: CasCommand) -> anyhow::Result<()> {
    match command {
        CasCommand::List => {
            let (items, _) = client
                .list(&["certificateAuthorities"], Vec::new(), false)
                .await?;
            output::list(out, &items, output::CAS, None);
        }
        CasCommand::Add {
            file,
            root,
            require_revocation_data,
            crl_url,
            ocsp_url,
        } => {
            let mut body = json!({
                "certificate": certificate_file(&file)?,
                "isRootAuthority": root,
                "requireRevocationData": require_revocation_data,
            });
            if let Some(url) = crl_url {
                body["crlDistributionPoint"] = json!(url);
            }
            if let Some(url) = ocsp_url {
                body["ocspResponder"] = json!(url);
            }
            output::object(out, &client.post(&["certificateAuthorities"], &body).await?);
        }
        CasCommand::Remove { id } => {
            client
                .delete(&["certificateAuthorities", &id], None)
                .await?;
            output::done(out, &format!("removed CA {id}"));
        }
        CasCommand::Crl { id, file } => {
            let body = json!({ "crl": certificate_file(&file)? });
            output::object(
                out,
                &client
                    .put(
                        &["certificateAuthorities", &id, "revocationList"],
                        &body,
                        None,
                    )
                    .await?,
            );
        }
        CasCommand::RefreshCrl { id } => {
            output::object(
                out,
                &client
                    .post(
                        &["certificateAuthorities", &id, "revocationList", "refresh"],
                        &json!({}),
                    )
                    .await?,
            );
        }
    }
    Ok(())
}

/// `tessera apps saml ...`.
async fn saml(
    client: &Client,
    out: crate::cli::Output,
    command: crate::cli::SamlCommand,
) -> anyhow::Result<()> {
    use crate::cli::SamlCommand;
    match command {
        SamlCommand::Show { app } => {
            let _ = out;
            let id = app_object_id(client, AppKind::Application, &app).await?;
            let mut settings = client.get(&["applications", &id, "saml"], &[]).await?;
            if let Some(object) = settings.as_object_mut() {
                object.remove("appId");
            }
            println!("{}", serde_json::to_string_pretty(&settings)?);
        }
        SamlCommand::Set {
            app,
            file,
            if_match,
        } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let body: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            output::object(
                out,
                &client
                    .put(&["applications", &id, "saml"], &body, if_match.if_match)
                    .await?,
            );
        }
        SamlCommand::FromMetadata {
            app,
            file,
            url,
            signer,
            if_match,
        } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            let mut body = match (file, url) {
                (Some(file), _) => json!({
                    "metadata": std::fs::read_to_string(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?
                }),
                (None, Some(url)) => json!({ "metadataUrl": url }),
                (None, None) => anyhow::bail!("give --file or --url"),
            };
            if let Some(signer) = signer {
                let bytes = std::fs::read(&signer)
                    .with_context(|| format!("cannot read {}", signer.display()))?;
                body["signingCertificate"] = json!(certificate_base64(&bytes)?);
            }
            output::object(
                out,
                &client
                    .post_versioned(
                        &["applications", &id, "saml", "metadata"],
                        &body,
                        if_match.if_match,
                    )
                    .await?,
            );
        }
        SamlCommand::Remove { app } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            client.delete(&["applications", &id, "saml"], None).await?;
            output::done(out, &format!("removed the SAML configuration of {app}"));
        }
        SamlCommand::Metadata { app } => {
            let path = match app {
                Some(app) => format!(
                    "/saml2/apps/{}/metadata",
                    app_client_id(client, &app).await?
                ),
                None => "/saml2/metadata".to_string(),
            };
            println!("{}", client.get_text(&path).await?);
        }
        SamlCommand::TestLink { app } => {
            let app_id = app_client_id(client, &app).await?;
            println!("{}/saml2/apps/{app_id}/sso", client.base());
        }
        SamlCommand::Certificates(command) => saml_certificates(client, out, command).await?,
    }
    Ok(())
}

/// `tessera apps saml certificates ...`.
async fn saml_certificates(
    client: &Client,
    out: crate::cli::Output,
    command: crate::cli::SamlCertificateCommand,
) -> anyhow::Result<()> {
    use crate::cli::SamlCertificateCommand as Command;
    match command {
        Command::List { app } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            let listed = client
                .get(&["applications", &id, "saml", "certificates"], &[])
                .await?;
            let items = listed["value"].as_array().cloned().unwrap_or_default();
            output::list(out, &items, output::SAML_CERTIFICATES, None);
        }
        Command::Add { app } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            output::object(
                out,
                &client
                    .post(&["applications", &id, "saml", "certificates"], &json!({}))
                    .await?,
            );
        }
        Command::Activate { app, thumbprint } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            output::object(
                out,
                &client
                    .post(
                        &[
                            "applications",
                            &id,
                            "saml",
                            "certificates",
                            &thumbprint,
                            "activate",
                        ],
                        &json!({}),
                    )
                    .await?,
            );
        }
        Command::Remove { app, thumbprint } => {
            let id = app_object_id(client, AppKind::Application, &app).await?;
            client
                .delete(
                    &["applications", &id, "saml", "certificates", &thumbprint],
                    None,
                )
                .await?;
            output::done(
                out,
                &format!("removed the certificate {thumbprint} of {app}"),
            );
        }
    }
    Ok(())
}

/// A certificate file (PEM or DER) as base64 DER.
fn certificate_base64(bytes: &[u8]) -> anyhow::Result<String> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(bytes);
    if let Some(start) = text.find("-----BEGIN CERTIFICATE-----") {
        let body = &text[start + 27..];
        let end = body
            .find("-----END CERTIFICATE-----")
            .context("the PEM certificate has no end line")?;
        let compact: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(&compact)
            .context("the PEM certificate is not base64")?;
        return Ok(compact);
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The API's collection of risky users or workloads.
fn risky_collection(workload: bool) -> &'static str {
    if workload {
        "riskyServicePrincipals"
    } else {
        "riskyUsers"
    }
}

async fn risky_ids(
    client: &Client,
    principals: &[String],
    workload: bool,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(principals.len());
    for principal in principals {
        ids.push(if workload {
            if !is_uuid(principal) {
                anyhow::bail!("{principal} is not a service principal id");
            }
            principal.clone()
        } else {
            resolve_user(client, principal).await?
        });
    }
    Ok(ids)
}

async fn risky(client: &Client, out: Output, command: RiskCommand) -> anyhow::Result<()> {
    match command {
        RiskCommand::Detections(args) => risk_detections(client, out, args).await?,
        RiskCommand::Users(args) => {
            let mut query = Vec::new();
            for (name, value) in [
                ("riskLevel", args.level),
                ("riskState", args.state),
                ("limit", args.limit.map(|l| l.to_string())),
            ] {
                if let Some(value) = value {
                    query.push((name, value));
                }
            }
            let collection = risky_collection(args.workloads);
            let (items, next) = client
                .list(&["identityProtection", collection], query, args.all)
                .await?;
            let columns = if args.workloads {
                output::RISKY_SERVICE_PRINCIPALS
            } else {
                output::RISKY_USERS
            };
            output::list(out, &items, columns, next.as_deref());
        }
        RiskCommand::Show {
            principal,
            workload,
        } => {
            let id = risky_ids(client, &[principal], workload).await?.remove(0);
            let collection = risky_collection(workload);
            let mut value = client
                .get(&["identityProtection", collection, &id], &[])
                .await?;
            let history = client
                .get(&["identityProtection", collection, &id, "history"], &[])
                .await?;
            value["history"] = history["value"].clone();
            output::object(out, &value);
        }
        RiskCommand::Dismiss {
            principals,
            workload,
        } => risky_act(client, out, &principals, workload, "dismiss").await?,
        RiskCommand::Confirm {
            principals,
            workload,
        } => risky_act(client, out, &principals, workload, "confirmCompromised").await?,
    }
    Ok(())
}

async fn risky_act(
    client: &Client,
    out: Output,
    principals: &[String],
    workload: bool,
    action: &str,
) -> anyhow::Result<()> {
    let ids = risky_ids(client, principals, workload).await?;
    let field = if workload {
        "servicePrincipalIds"
    } else {
        "userIds"
    };
    client
        .post(
            &["identityProtection", risky_collection(workload), action],
            &json!({ field: ids }),
        )
        .await?;
    let what = if action == "dismiss" {
        "dismissed"
    } else {
        "confirmed compromised"
    };
    output::done(out, &format!("{} {what}", ids.len()));
    Ok(())
}

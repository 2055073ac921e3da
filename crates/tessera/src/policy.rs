//! `tessera policy`: Conditional Access from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tessera_ca::import;

use crate::cli::{CaCommand, Output, WhatIfArgs};
use crate::client::Client;
use crate::commands::{is_uuid, resolve_user};
use crate::output::{self, Column};

const BASE: [&str; 3] = ["identity", "conditionalAccess", "policies"];

const POLICIES: &[Column] = &[
    ("ID", "/id"),
    ("DISPLAY NAME", "/displayName"),
    ("STATE", "/state"),
];
const LOCATIONS: &[Column] = &[
    ("ID", "/id"),
    ("DISPLAY NAME", "/displayName"),
    ("KIND", "/@odata.type"),
    ("TRUSTED", "/isTrusted"),
];
const TERMS: &[Column] = &[
    ("ID", "/id"),
    ("DISPLAY NAME", "/displayName"),
    ("VERSION", "/contentVersion"),
];
const RESULTS: &[Column] = &[
    ("POLICY", "/displayName"),
    ("RESULT", "/result"),
    ("NOT APPLIED BECAUSE", "/notApplied/condition"),
    ("EXCLUDED", "/notApplied/excluded"),
    ("BLOCK", "/block"),
    ("CONTROLS", "/controls"),
];

fn json_file(path: &Path) -> anyhow::Result<Value> {
    let bytes = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
        bytes
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    import::parse_document(&bytes).map_err(|e| anyhow::anyhow!("{} {e}", path.display()))
}

/// The `.json` files of a folder, sorted; none if it does not exist.
fn json_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn documents(files: &[PathBuf]) -> anyhow::Result<Vec<Value>> {
    files
        .iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            Ok(json!({ "file": name, "document": json_file(path)? }))
        })
        .collect()
}

/// The import request for an export folder.
fn import_request(dir: &Path) -> anyhow::Result<Value> {
    if !dir.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    let policy_dir = dir.join("ConditionalAccess");
    let policy_files = if policy_dir.is_dir() {
        json_files(&policy_dir)?
    } else {
        json_files(dir)?
            .into_iter()
            .filter(|p| !p.ends_with("MigrationTable.json"))
            .collect()
    };
    if policy_files.is_empty() {
        bail!(
            "{} holds no policies (ConditionalAccess/*.json)",
            dir.display()
        );
    }
    let groups: Vec<Value> = json_files(&dir.join("Groups"))?
        .iter()
        .map(|p| json_file(p))
        .collect::<anyhow::Result<_>>()?;
    let table = dir.join("MigrationTable.json");
    Ok(json!({
        "policies": documents(&policy_files)?,
        "namedLocations": documents(&json_files(&dir.join("NamedLocations"))?)?,
        "groups": groups,
        "migrationTable": if table.is_file() { json_file(&table)? } else { Value::Null },
    }))
}

fn print_report(out: Output, result: &Value) {
    if out == Output::Json {
        output::object(out, result);
        return;
    }
    for (title, key) in [
        ("Named locations", "namedLocations"),
        ("Policies", "policies"),
    ] {
        let items = result["report"][key]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if items.is_empty() {
            continue;
        }
        println!("{title}:");
        for item in &items {
            let name = item["displayName"]
                .as_str()
                .or(item["file"].as_str())
                .unwrap_or("?");
            let count = |k: &str| item[k].as_array().map(Vec::len).unwrap_or(0);
            println!(
                "  {:<5} {name}  ({} mapped, {} warnings, {} errors)",
                item["status"].as_str().unwrap_or("?"),
                count("mapped"),
                count("warnings"),
                count("errors")
            );
            for (label, key) in [("error", "errors"), ("warning", "warnings")] {
                for finding in item[key].as_array().into_iter().flatten() {
                    println!(
                        "        {label}: {}: {}",
                        finding["field"].as_str().unwrap_or(""),
                        finding["message"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    for warning in result["warnings"].as_array().into_iter().flatten() {
        println!("warning: {}", warning.as_str().unwrap_or(""));
    }
    let names = |key: &str| -> Vec<String> {
        result[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| item["displayName"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    let (policies, locations) = (names("plannedPolicies"), names("plannedNamedLocations"));
    let errors = ["namedLocations", "policies"]
        .iter()
        .flat_map(|key| {
            result["report"][*key]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|item| item["status"] == "error")
        .count();
    let counts = format!(
        "{} policies and {} named locations",
        policies.len(),
        locations.len()
    );
    let list_names = || {
        for name in &locations {
            println!("  named location: {name}");
        }
        for name in &policies {
            println!("  policy: {name}");
        }
    };
    if result["imported"] == json!(true) {
        println!("imported {counts}:");
        list_names();
    } else if result["dryRun"] == json!(true)
        && (errors == 0 || !policies.is_empty() || !locations.is_empty())
    {
        println!("dry run, nothing was written; the import would write {counts}:");
        list_names();
    } else if result["dryRun"] == json!(true) {
        println!(
            "dry run, nothing was written; the import would write nothing: {errors} items have errors (--skip-errors imports the ready ones)"
        );
    } else {
        println!(
            "nothing imported: {errors} items have errors (--skip-errors imports the ready ones)"
        );
    }
}

fn strength_id(name: &str) -> anyhow::Result<String> {
    Ok(match name {
        "mfa" => "00000000-0000-0000-0000-000000000002".to_string(),
        "passwordless" => "00000000-0000-0000-0000-000000000003".to_string(),
        "phishing-resistant" => "00000000-0000-0000-0000-000000000004".to_string(),
        id if is_uuid(id) => id.to_string(),
        other => bail!("{other:?} is not mfa, passwordless, phishing-resistant or a strength id"),
    })
}

async fn what_if(client: &Client, out: Output, args: WhatIfArgs) -> anyhow::Result<()> {
    let mut question = json!({});
    match (&args.user, &args.sp) {
        (Some(user), _) => question["userId"] = json!(resolve_user(client, user).await?),
        (None, Some(sp)) => question["servicePrincipalId"] = json!(sp),
        (None, None) => bail!("name the user (--user) or the workload (--sp)"),
    }
    let set = |q: &mut Value, key: &str, value: &Option<String>| {
        if let Some(value) = value {
            q[key] = json!(value);
        }
    };
    set(&mut question, "appId", &args.app);
    set(&mut question, "userAction", &args.user_action);
    set(&mut question, "ipAddress", &args.ip);
    set(&mut question, "country", &args.country);
    set(&mut question, "platform", &args.platform);
    set(&mut question, "userAgent", &args.user_agent);
    set(&mut question, "deviceId", &args.device);
    set(&mut question, "clientAppType", &args.client_app);
    set(&mut question, "signInRiskLevel", &args.sign_in_risk);
    set(&mut question, "userRiskLevel", &args.user_risk);
    question["authenticationContexts"] = json!(args.auth_context);
    question["deviceCodeFlow"] = json!(args.device_code);
    question["satisfiedStrengths"] = json!(
        args.satisfied
            .iter()
            .map(|s| strength_id(s))
            .collect::<anyhow::Result<Vec<_>>>()?
    );
    question["authenticationMethods"] = json!(args.methods);
    let answer = client
        .post(&["identity", "conditionalAccess", "evaluate"], &question)
        .await?;
    if out == Output::Json {
        output::object(out, &answer);
        return Ok(());
    }
    let policies = answer["policies"].as_array().cloned().unwrap_or_default();
    output::list(out, &policies, RESULTS, None);
    println!("result: {}", answer["result"].as_str().unwrap_or("?"));
    for warning in answer["warnings"].as_array().into_iter().flatten() {
        println!("warning: {}", warning.as_str().unwrap_or(""));
    }
    if let Some(remedy) = answer.get("remedy") {
        println!("would satisfy it: {remedy}");
    }
    if let Some(session) = answer
        .get("sessionControls")
        .filter(|s| s.as_object().is_some_and(|o| !o.is_empty()))
    {
        println!("session controls: {session}");
    }
    Ok(())
}

pub async fn run(client: &Client, out: Output, command: CaCommand) -> anyhow::Result<ExitCode> {
    match command {
        CaCommand::List => {
            let value = client.get(&BASE, &[]).await?;
            let items = value["value"].as_array().cloned().unwrap_or_default();
            output::list(out, &items, POLICIES, None);
        }
        CaCommand::Get { id } => output::object(
            out,
            &client.get(&[BASE[0], BASE[1], BASE[2], &id], &[]).await?,
        ),
        CaCommand::Create { file } => {
            output::object(out, &client.post(&BASE, &json_file(&file)?).await?)
        }
        CaCommand::Update { id, file, if_match } => output::object(
            out,
            &client
                .patch(
                    &[BASE[0], BASE[1], BASE[2], &id],
                    &json_file(&file)?,
                    if_match.if_match,
                )
                .await?,
        ),
        CaCommand::Delete { id } => {
            client
                .delete(&[BASE[0], BASE[1], BASE[2], &id], None)
                .await?;
            output::done(out, &format!("deleted policy {id}"));
        }
        CaCommand::Import {
            dir,
            skip_errors,
            dry_run,
            report_only,
        } => {
            let mut request = import_request(&dir)?;
            request["skipErrors"] = json!(skip_errors);
            request["dryRun"] = json!(dry_run);
            if report_only {
                request["state"] = json!("enabledForReportingButNotEnforced");
            }
            let result = client
                .post(&["identity", "conditionalAccess", "import"], &request)
                .await?;
            print_report(out, &result);
            let failed = result["imported"] != json!(true) && !dry_run;
            return Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        }
        CaCommand::WhatIf(args) => what_if(client, out, *args).await?,
        CaCommand::Locations => {
            let value = client
                .get(&["identity", "conditionalAccess", "namedLocations"], &[])
                .await?;
            let items = value["value"].as_array().cloned().unwrap_or_default();
            output::list(out, &items, LOCATIONS, None);
        }
        CaCommand::CreateLocation { file } => output::object(
            out,
            &client
                .post(
                    &["identity", "conditionalAccess", "namedLocations"],
                    &json_file(&file)?,
                )
                .await?,
        ),
        CaCommand::DeleteLocation { id } => {
            client
                .delete(
                    &["identity", "conditionalAccess", "namedLocations", &id],
                    None,
                )
                .await?;
            output::done(out, &format!("deleted named location {id}"));
        }
        CaCommand::Terms => {
            let value = client
                .get(&["identity", "conditionalAccess", "termsOfUse"], &[])
                .await?;
            let items = value["value"].as_array().cloned().unwrap_or_default();
            output::list(out, &items, TERMS, None);
        }
        CaCommand::CreateTerms { file } => output::object(
            out,
            &client
                .post(
                    &["identity", "conditionalAccess", "termsOfUse"],
                    &json_file(&file)?,
                )
                .await?,
        ),
        CaCommand::SecurityDefaults { enable, disable } => {
            let path = ["policies", "identitySecurityDefaultsEnforcementPolicy"];
            let value = if enable || disable {
                client
                    .patch(&path, &json!({ "isEnabled": enable }), None)
                    .await?
            } else {
                client.get(&path, &[]).await?
            };
            output::object(out, &value);
        }
        CaCommand::Risk {
            principal,
            level,
            sign_in_risk,
        } => {
            let id = if is_uuid(&principal) {
                principal
            } else {
                resolve_user(client, &principal).await?
            };
            let mut body = json!({});
            if let Some(level) = level {
                body["riskLevel"] = json!(level);
            }
            if let Some(level) = sign_in_risk {
                body["signInRiskLevel"] = json!(level);
            }
            output::object(
                out,
                &client
                    .put(&["identityProtection", "risk", &id], &body, None)
                    .await?,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

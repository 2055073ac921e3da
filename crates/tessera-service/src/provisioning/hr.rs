//! HR-driven provisioning: an HR system's export (CSV or JSON) read through the
//! tenant's HR attribute mapping (`hrImport` in the provisioning settings) and
//! matched to the directory's users by an anchor (`employeeId`), previewed as a
//! plan, and applied as a run. A run that would change more than the allowed
//! share of the anchored users is held, with its file, until an administrator
//! approves it (it is planned again then, against the directory as it is).
//!
//! Each row is written through the directory's own use cases in a transaction
//! of its own, with their audit events: a row that fails (a name taken, a
//! manager that does not exist) fails alone, with its reason in the run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::UserSpec;
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_provisioning::expression::Env;
use tessera_provisioning::hr::{self, AnyColumns, Existing, Format, HrFile, Plan, Step};
use tessera_provisioning::mapping::{Compiled, Mapping};
use tessera_provisioning::targets::DirectoryUsers;
use tessera_store::{Kind, Reader, Record};
use uuid::Uuid;

use super::Provisioning;
use super::mapping::{custom_target, merged, upn_free};
use super::settings::ProvisioningSettings;
use crate::codec::{self, Keys};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

/// The largest HR file taken, in bytes.
pub const MAX_FILE_BYTES: usize = 32 * 1024 * 1024;
/// The most row results a run keeps (the failures first).
const MAX_KEPT_RESULTS: usize = 20_000;

fn employee_id() -> String {
    "employeeId".to_string()
}

fn ten() -> u8 {
    10
}

/// How the tenant's HR files are read and mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HrImportSettings {
    /// `csv` (a header row naming the columns) or `json`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub format: Format,
    /// The target rows are matched to users by; it must be mapped (default
    /// `employeeId`).
    #[serde(default = "employee_id")]
    pub anchor: String,
    /// A run changing more than this share of the users with an anchor, in
    /// percent, waits for an administrator (default 10).
    #[serde(default = "ten")]
    pub max_changed_percent: u8,
    /// Target attribute ← expression over the file's columns (`[Employee ID]`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub mapping: Mapping,
    /// Runs the file the HR system drops, on a schedule (see [`HrDropFolder`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<HrSchedule>,
}

/// When and what a scheduled HR import runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HrSchedule {
    /// The file's name in the tenant's drop folder (no folders).
    pub file: String,
    /// How often the file is looked at, in minutes (5 to 10080); a file that did
    /// not change since the last scheduled run is not run again.
    pub every_minutes: u32,
}

/// Where the HR system drops its exports: a folder per tenant (the binary's
/// adapter: `<hr_drop_dir>/<tenant id>/<file>`).
pub trait HrDropFolder: Send + Sync {
    /// The file's text, `None` when it is not there.
    fn read(&self, tenant: TenantId, file: &str) -> Result<Option<String>, String>;
}

/// A drop file's name: a plain name, no folder, not hidden.
fn plain_file_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._- ".contains(c))
}

/// Anchors a mapping may match by: unique or nearly so in an HR system.
const ANCHORS: [&str; 3] = ["employeeId", "userPrincipalName", "mail"];

/// Checks the HR settings when they are saved (columns are checked against each
/// file).
pub(crate) async fn check_settings(
    reader: &mut dyn Reader,
    tenant: TenantId,
    settings: &HrImportSettings,
) -> ServiceResult<()> {
    if !ANCHORS.contains(&settings.anchor.as_str()) {
        return Err(ServiceError::invalid(
            "hrImport.anchor",
            format!("one of {}", ANCHORS.join(", ")),
        ));
    }
    if settings.max_changed_percent > 100 {
        return Err(ServiceError::invalid(
            "hrImport.maxChangedPercent",
            "a percentage, 0 to 100",
        ));
    }
    if let Some(schedule) = &settings.schedule {
        if !plain_file_name(&schedule.file) {
            return Err(ServiceError::invalid(
                "hrImport.schedule.file",
                "a file name in the drop folder: letters, digits, . _ - and spaces, no folders",
            ));
        }
        if !(5..=10080).contains(&schedule.every_minutes) {
            return Err(ServiceError::invalid(
                "hrImport.schedule.everyMinutes",
                "5 to 10080 (a week)",
            ));
        }
    }
    let compiled = compile(reader, tenant, &settings.mapping, &AnyColumns)
        .await
        .map_err(|e| prefix(e, "hrImport.mapping"))?;
    if compiled.of(&settings.anchor).is_none() {
        return Err(ServiceError::invalid(
            "hrImport.mapping",
            format!("the anchor {} must be mapped", settings.anchor),
        ));
    }
    Ok(())
}

fn prefix(error: ServiceError, field: &str) -> ServiceError {
    match error {
        ServiceError::Validation(errors) => {
            let mut out = tessera_directory::ValidationErrors::new();
            for e in errors.errors {
                out.add(format!("{field}.{}", e.field), e.message);
            }
            ServiceError::Validation(out)
        }
        other => other,
    }
}

async fn compile(
    reader: &mut dyn Reader,
    tenant: TenantId,
    mapping: &Mapping,
    source: &(dyn tessera_provisioning::mapping::SourceSchema + Sync),
) -> ServiceResult<Compiled> {
    let definitions = if super::mapping::writes_custom(mapping) {
        crate::directory::attributes::definitions(reader, tenant).await?
    } else {
        BTreeMap::new()
    };
    let custom = |set: &str, name: &str| {
        definitions
            .get(&format!("{set}_{name}").to_lowercase())
            .and_then(custom_target)
    };
    mapping
        .compile(source, &DirectoryUsers { custom: &custom })
        .map_err(|error| {
            let mut errors = tessera_directory::ValidationErrors::new();
            for (at, what) in error.problems {
                errors.add(at, what);
            }
            ServiceError::Validation(errors)
        })
}

/// A file sent to preview or run.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Upload {
    /// The file's text.
    content: String,
    /// Overrides the settings' format.
    #[serde(default)]
    format: Option<Format>,
}

/// A run as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HrRun {
    pub id: Uuid,
    /// `running`, `held` (waiting for an administrator), `approving`,
    /// `completed`, `failed`, `rejected` (by an administrator) or `expired`
    /// (held longer than [`HELD_FOR_DAYS`] days).
    pub state: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_date_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub completed_date_time: Option<Timestamp>,
    pub requested_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_by: Option<String>,
    pub creates: usize,
    pub updates: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub changed_percent: f64,
    /// Each row applied or failed: `line`, `anchor`, `action`, `status`
    /// (`done`/`failed`), `id`, `reason`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub results: Vec<Value>,
    #[serde(default)]
    pub results_truncated: bool,
    /// Run by the schedule, from the drop folder.
    #[serde(default)]
    pub scheduled: bool,
    /// SHA-256 of the file run (a scheduled run skips a file it already ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_hash: Option<String>,
}

impl HrRun {
    /// A run begun now by `ctx`'s caller; `file_hash` for a scheduled one.
    fn new(ctx: &Context, now: Timestamp, file_hash: Option<String>) -> HrRun {
        HrRun {
            id: Uuid::new_v4(),
            state: "running".into(),
            created_date_time: now,
            completed_date_time: None,
            requested_by: ctx.caller.actor_name(),
            approved_by: None,
            rejected_by: None,
            creates: 0,
            updates: 0,
            unchanged: 0,
            failed: 0,
            changed_percent: 0.0,
            results: Vec::new(),
            results_truncated: false,
            scheduled: file_hash.is_some(),
            file_hash,
        }
    }
}

/// The stored run: the view, and the file while it is held.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRun {
    #[serde(flatten)]
    run: HrRun,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(default)]
    format: Format,
    /// A scheduled run's claim: `after:` the scheduled run it follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim: Option<String>,
    /// The HR settings a held run was planned with (approval needs the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    settings_hash: Option<String>,
}

/// How long a held run waits for an administrator: then it expires, and the
/// file it kept (people's records) is dropped.
pub const HELD_FOR_DAYS: i64 = 7;

/// How long an approval may go without a word before it counts as cut off
/// (far longer than the largest file takes: 50,000 rows, each in a transaction
/// of its own).
pub const APPROVING_FOR_HOURS: i64 = 24;

/// Whether a held run waited too long to be approved.
fn expired(run: &HrRun, now: Timestamp) -> bool {
    run.state == "held" && run.created_date_time.plus_seconds(HELD_FOR_DAYS * 86_400) <= now
}

fn settings_hash(settings: &HrImportSettings) -> String {
    tessera_core::crypto::sha256_hex(
        serde_json::to_string(settings)
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// A plan's rows as a held run shows them (what an approval would do, as
/// planned then), within the bound.
fn planned_rows(plan: &Plan) -> (Vec<Value>, bool) {
    let rows: Vec<Value> = plan
        .rows
        .iter()
        .filter(|r| !matches!(r.step, Step::Unchanged { .. }))
        .take(MAX_KEPT_RESULTS)
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    let truncated = plan
        .rows
        .iter()
        .filter(|r| !matches!(r.step, Step::Unchanged { .. }))
        .count()
        > MAX_KEPT_RESULTS;
    (rows, truncated)
}

impl Provisioning {
    async fn hr_settings(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
    ) -> ServiceResult<HrImportSettings> {
        let settings: ProvisioningSettings =
            crate::kernel::tenant_settings::read_setting(reader, tenant).await?;
        settings.hr_import.ok_or_else(|| ServiceError::Conflict {
            message: "no HR import is set up: set hrImport in the provisioning settings \
                      (tessera provisioning hr settings --file hr.json)"
                .into(),
        })
    }

    fn may_read_hr(&self, ctx: &Context) -> ServiceResult<()> {
        self.require(ctx, action::POLICIES_READ, &Target::Tenant)?;
        self.require(ctx, action::USERS_READ, &Target::Tenant)
    }

    /// A preview shows custom security attributes' values before and after,
    /// and a run or approval writes them: only for who may read or assign them.
    fn may_handle_custom(
        &self,
        ctx: &Context,
        settings: &HrImportSettings,
        writing: bool,
    ) -> ServiceResult<()> {
        if super::mapping::writes_custom(&settings.mapping) {
            let needed = if writing {
                action::USERS_CSA_UPDATE
            } else {
                action::USERS_CSA_READ
            };
            self.require(ctx, needed, &Target::Tenant)?;
        }
        Ok(())
    }

    /// Who runs or approves runs must hold what a run does.
    fn may_write_hr(&self, ctx: &Context) -> ServiceResult<()> {
        self.may_read_hr(ctx)?;
        self.may_manage_tokens(ctx)
    }

    /// Whether the caller may preview HR files (what the console offers).
    pub fn may_preview_hr(&self, ctx: &Context) -> bool {
        self.may_read_hr(ctx).is_ok()
    }

    /// Whether the caller may run HR files.
    pub fn may_run_hr(&self, ctx: &Context) -> bool {
        self.may_write_hr(ctx).is_ok()
    }

    /// Whether the caller may approve a held run.
    pub fn may_approve_hr(&self, ctx: &Context) -> bool {
        self.may_change_settings(ctx).is_ok() && self.may_write_hr(ctx).is_ok()
    }

    /// Reads, maps and matches a file: the plan a run would apply.
    async fn plan_file(
        &self,
        tenant: TenantId,
        settings: &HrImportSettings,
        format: Format,
        content: &str,
    ) -> ServiceResult<Plan> {
        if content.len() > MAX_FILE_BYTES {
            return Err(ServiceError::invalid(
                "content",
                format!("an HR file is at most {} MiB", MAX_FILE_BYTES / 1024 / 1024),
            ));
        }
        let file: HrFile = hr::read(format, content)
            .map_err(|e| ServiceError::invalid("content", e.to_string()))?;
        let mut reader = self.snapshot().await?;
        let compiled = compile(reader.as_mut(), tenant, &settings.mapping, &file)
            .await
            .map_err(|e| prefix(e, "content"))?;
        // The directory's users by anchor.
        let mut existing: BTreeMap<String, Vec<Existing>> = BTreeMap::new();
        for record in codec::list_all(reader.as_mut(), tenant, Kind::User, None).await? {
            let attributes: Map<String, Value> = codec::data(&record)?;
            if let Some(anchor) = attributes
                .get(&settings.anchor)
                .and_then(Value::as_str)
                .filter(|a| !a.trim().is_empty())
            {
                existing
                    .entry(anchor.trim().to_lowercase())
                    .or_default()
                    .push(Existing {
                        id: record.id,
                        attributes,
                    });
            }
        }
        let env = Env {
            now: time::OffsetDateTime::from_unix_timestamp(self.now().unix_seconds())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        };
        let anchored = existing.values().map(Vec::len).sum();
        Ok(hr::plan(
            &file,
            &compiled,
            &settings.anchor,
            &env,
            &existing,
            anchored,
            f64::from(settings.max_changed_percent),
        ))
    }

    /// What a file would do, changing nothing.
    pub async fn preview_hr_import(&self, ctx: &Context, body: Value) -> ServiceResult<Plan> {
        self.may_read_hr(ctx)?;
        let upload: Upload = patch::parse_spec(body)?;
        let mut reader = self.reader().await?;
        let settings = self.hr_settings(reader.as_mut(), ctx.tenant).await?;
        drop(reader);
        self.may_handle_custom(ctx, &settings, false)?;
        let format = upload.format.unwrap_or(settings.format);
        self.plan_file(ctx.tenant, &settings, format, &upload.content)
            .await
    }

    /// Runs a file: applied at once, or held (with the file) when it changes
    /// more than the settings allow.
    pub async fn run_hr_import(&self, ctx: &Context, body: Value) -> ServiceResult<HrRun> {
        self.may_write_hr(ctx)?;
        let upload: Upload = patch::parse_spec(body)?;
        let mut reader = self.reader().await?;
        let settings = self.hr_settings(reader.as_mut(), ctx.tenant).await?;
        drop(reader);
        self.may_handle_custom(ctx, &settings, true)?;
        let format = upload.format.unwrap_or(settings.format);
        self.run_file(ctx, &settings, format, upload.content, None)
            .await
    }

    /// One round of the scheduled HR import for a tenant: when due, the drop
    /// file is run if it changed since the last scheduled run. Runs as the
    /// provisioning service (a provisioning token's rights, and the custom
    /// security attributes the HR mapping writes).
    pub async fn scheduled_hr_round(&self, tenant: TenantId) -> ServiceResult<Option<HrRun>> {
        let Some(folder) = self.hr_drop.get() else {
            return Ok(None);
        };
        let mut reader = self.reader().await?;
        let settings: ProvisioningSettings =
            crate::kernel::tenant_settings::read_setting(reader.as_mut(), tenant).await?;
        let Some(hr) = settings.hr_import else {
            return Ok(None);
        };
        let Some(schedule) = hr.schedule.clone() else {
            return Ok(None);
        };
        let last = codec::list_all(reader.as_mut(), tenant, Kind::ProvisioningRun, None)
            .await?
            .iter()
            .filter_map(|r| codec::data::<StoredRun>(r).ok())
            .filter(|r| r.run.scheduled)
            .max_by_key(|r| r.run.created_date_time);
        drop(reader);
        let now = self.now();
        if let Some(last) = &last
            && last
                .run
                .created_date_time
                .plus_seconds(i64::from(schedule.every_minutes) * 60)
                > now
        {
            return Ok(None);
        }
        let content = match folder.read(tenant, &schedule.file) {
            Ok(Some(content)) => content,
            Ok(None) => return Ok(None),
            Err(error) => {
                tracing::warn!(%tenant, file = %schedule.file, %error, "cannot read the HR drop file");
                return Ok(None);
            }
        };
        let hash = tessera_core::crypto::sha256_hex(content.as_bytes());
        if last.as_ref().and_then(|l| l.run.file_hash.as_deref()) == Some(hash.as_str()) {
            return Ok(None);
        }
        let ctx = scheduled_context(tenant, super::mapping::writes_custom(&hr.mapping));
        // Claimed first, by the file's hash: of several nodes, one runs it.
        let claim = StoredRun {
            run: HrRun::new(&ctx, now, Some(hash)),
            file: None,
            format: hr.format,
            settings_hash: None,
            claim: Some(format!(
                "after:{}",
                last.as_ref()
                    .map_or("none".to_string(), |l| l.run.id.to_string())
            )),
        };
        let claim_key = claim.claim.clone();
        let claimed = match self
            .save_run(&ctx, &claim, None, AuditAction::ProvisioningRunCreate)
            .await
        {
            Ok(record) => record,
            Err(ServiceError::Conflict { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        self.run_file(
            &ctx,
            &hr,
            hr.format,
            content,
            Some((claim.run, claimed, claim_key)),
        )
        .await
        .map(Some)
    }

    /// Plans a file and applies it or holds it; `claim` is a scheduled run's
    /// record, made before.
    async fn run_file(
        &self,
        ctx: &Context,
        settings: &HrImportSettings,
        format: Format,
        content: String,
        claim: Option<(HrRun, Record, Option<String>)>,
    ) -> ServiceResult<HrRun> {
        let (claimed, existing, claim_key) = match claim {
            Some((run, record, key)) => (Some(run), Some(record), key),
            None => (None, None, None),
        };
        let plan = match self.plan_file(ctx.tenant, settings, format, &content).await {
            Ok(plan) => plan,
            Err(error) => {
                // A scheduled file that cannot be read is recorded as failed.
                if let (Some(mut run), Some(record)) = (claimed, existing.as_ref()) {
                    run.state = "failed".into();
                    run.completed_date_time = Some(self.now());
                    run.results = vec![json!({"status": "failed", "reason": error.to_string()})];
                    let stored = StoredRun {
                        run,
                        file: None,
                        format,
                        claim: claim_key.clone(),
                        settings_hash: None,
                    };
                    self.save_run(
                        ctx,
                        &stored,
                        Some(record),
                        AuditAction::ProvisioningRunUpdate,
                    )
                    .await?;
                }
                return Err(error);
            }
        };
        let audit = if existing.is_some() {
            AuditAction::ProvisioningRunUpdate
        } else {
            AuditAction::ProvisioningRunCreate
        };
        let upload = Upload {
            content,
            format: Some(format),
        };
        let mut run = claimed.unwrap_or_else(|| HrRun::new(ctx, self.now(), None));
        run.state = "held".into();
        run.creates = plan.creates;
        run.updates = plan.updates;
        run.unchanged = plan.unchanged;
        run.failed = plan.failed;
        run.changed_percent = plan.changed_percent;
        if plan.held {
            (run.results, run.results_truncated) = planned_rows(&plan);
            let stored = StoredRun {
                run: run.clone(),
                file: Some(upload.content),
                format,
                claim: claim_key.clone(),
                settings_hash: Some(settings_hash(settings)),
            };
            self.save_run(ctx, &stored, existing.as_ref(), audit)
                .await?;
            return Ok(run);
        }
        // Recorded as running before any row is written: a run cut off half
        // way (the request abandoned, the node stopped) shows as such.
        run.state = "running".into();
        let running = StoredRun {
            run: run.clone(),
            file: None,
            format,
            claim: claim_key.clone(),
            settings_hash: None,
        };
        let record = self
            .save_run(ctx, &running, existing.as_ref(), audit)
            .await?;
        self.apply(ctx, &plan, &mut run).await?;
        let stored = StoredRun {
            run: run.clone(),
            ..running
        };
        self.save_run(
            ctx,
            &stored,
            Some(&record),
            AuditAction::ProvisioningRunUpdate,
        )
        .await?;
        Ok(run)
    }

    /// Approves a held run: planned again against the directory as it is now,
    /// and applied whatever it changes (an administrator looked at it).
    pub async fn approve_hr_run(&self, ctx: &Context, id: Uuid) -> ServiceResult<HrRun> {
        let (record, stored) = self.run_to_decide(ctx, id).await?;
        let mut reader = self.reader().await?;
        let settings = self.hr_settings(reader.as_mut(), ctx.tenant).await?;
        self.may_handle_custom(ctx, &settings, true)?;
        let Some(file) = stored.file.clone().filter(|_| stored.run.state == "held") else {
            return Err(ServiceError::Conflict {
                message: format!("run {id} is not held: it is {}", stored.run.state),
            });
        };
        if expired(&stored.run, self.now()) {
            return Err(ServiceError::Conflict {
                message: format!(
                    "run {id} was held for more than {HELD_FOR_DAYS} days and has expired: run the file again"
                ),
            });
        }
        // What was held is what is approved: the same settings, and no later
        // run has changed the directory since.
        if stored.settings_hash.as_deref() != Some(settings_hash(&settings).as_str()) {
            return Err(ServiceError::Conflict {
                message: "the HR settings changed since this run was held: run the file again"
                    .into(),
            });
        }
        let later = codec::list_all(reader.as_mut(), ctx.tenant, Kind::ProvisioningRun, None)
            .await?
            .iter()
            .filter_map(|r| codec::data::<StoredRun>(r).ok())
            .any(|r| {
                r.run.created_date_time > stored.run.created_date_time && r.run.state == "completed"
            });
        drop(reader);
        if later {
            return Err(ServiceError::Conflict {
                message: "a later run completed since this one was held: run the file again".into(),
            });
        }
        // Taken from held to approving at the version read: of two approvals,
        // one applies.
        let approving = StoredRun {
            run: HrRun {
                state: "approving".into(),
                ..stored.run.clone()
            },
            ..stored.clone()
        };
        let record = self
            .save_run(
                ctx,
                &approving,
                Some(&record),
                AuditAction::ProvisioningRunUpdate,
            )
            .await?;
        let applied = async {
            let plan = self
                .plan_file(ctx.tenant, &settings, stored.format, &file)
                .await?;
            let mut run = stored.run.clone();
            run.creates = plan.creates;
            run.updates = plan.updates;
            run.unchanged = plan.unchanged;
            run.failed = plan.failed;
            run.changed_percent = plan.changed_percent;
            run.approved_by = Some(ctx.caller.actor_name());
            self.apply(ctx, &plan, &mut run).await?;
            Ok::<_, ServiceError>(run)
        }
        .await;
        let run = match applied {
            Ok(run) => run,
            Err(error) => {
                // Held again, to be approved again (planned anew against the
                // directory, what was applied already is unchanged then).
                let _ = self
                    .save_run(
                        ctx,
                        &stored,
                        Some(&record),
                        AuditAction::ProvisioningRunUpdate,
                    )
                    .await;
                return Err(error);
            }
        };
        let done = StoredRun {
            run: run.clone(),
            file: None,
            format: stored.format,
            claim: stored.claim.clone(),
            settings_hash: None,
        };
        self.save_run(
            ctx,
            &done,
            Some(&record),
            AuditAction::ProvisioningRunUpdate,
        )
        .await?;
        Ok(run)
    }

    /// A run an administrator is to approve or reject, if the caller may.
    async fn run_to_decide(&self, ctx: &Context, id: Uuid) -> ServiceResult<(Record, StoredRun)> {
        self.may_change_settings(ctx)?;
        self.may_write_hr(ctx)?;
        let mut reader = self.reader().await?;
        let record = reader
            .get(ctx.tenant, Kind::ProvisioningRun, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let stored = codec::data(&record)?;
        Ok((record, stored))
    }

    /// Rejects a held run: nothing of it is applied, and the file it kept is
    /// dropped. Needs the rights an approval needs.
    pub async fn reject_hr_run(&self, ctx: &Context, id: Uuid) -> ServiceResult<HrRun> {
        let (record, stored) = self.run_to_decide(ctx, id).await?;
        if stored.run.state != "held" {
            return Err(ServiceError::Conflict {
                message: format!("run {id} is not held: it is {}", stored.run.state),
            });
        }
        let mut run = stored.run.clone();
        run.state = "rejected".into();
        run.rejected_by = Some(ctx.caller.actor_name());
        run.completed_date_time = Some(self.now());
        // Written over the version read: an approval that began first wins.
        self.end_held(ctx, &stored, run, &record, None)
            .await
            .map_err(|error| match error {
                ServiceError::VersionMismatch { .. } => ServiceError::Conflict {
                    message: format!("run {id} changed meanwhile (an approval began): reload it"),
                },
                other => other,
            })
    }

    /// Ends the held runs of a tenant that waited longer than
    /// [`HELD_FOR_DAYS`]: `expired`, their files dropped. An approval cut off
    /// half way (the request abandoned, the node stopped) leaves its run
    /// `approving`, part applied: after [`APPROVING_FOR_HOURS`] without a write
    /// it ends as `failed` with its file dropped (never held again: a second
    /// approval beside a first that is somehow still going would apply rows
    /// twice); running the file again finds by anchor what the first applied.
    /// Run by the `hr-import` job; how many runs it ended.
    pub async fn expire_held_hr_runs(&self, tenant: TenantId) -> ServiceResult<usize> {
        let mut reader = self.reader().await?;
        let mut waiting = Vec::new();
        for state in ["approving", "held"] {
            waiting.extend(
                codec::list_all(
                    reader.as_mut(),
                    tenant,
                    Kind::ProvisioningRun,
                    Some(state.into()),
                )
                .await?,
            );
        }
        drop(reader);
        let now = self.now();
        let ctx = scheduled_context(tenant, false);
        let mut ended = 0;
        for record in waiting {
            let stored: StoredRun = match codec::data(&record) {
                Ok(stored) => stored,
                Err(error) => {
                    tracing::warn!(%tenant, run = %record.id, %error, "an HR run cannot be read");
                    continue;
                }
            };
            let mut run = stored.run.clone();
            let reason = if expired(&run, now) {
                run.state = "expired".into();
                None
            } else if run.state == "approving"
                && record.modified.plus_seconds(APPROVING_FOR_HOURS * 3600) <= now
            {
                run.state = "failed".into();
                Some("the approval was cut off before it finished: run the file again")
            } else {
                continue;
            };
            run.completed_date_time = Some(now);
            match self.end_held(&ctx, &stored, run, &record, reason).await {
                Ok(_) => ended += 1,
                // Decided on meanwhile (by an administrator or another node).
                Err(ServiceError::Conflict { .. } | ServiceError::VersionMismatch { .. }) => {}
                Err(error) => {
                    tracing::warn!(%tenant, run = %record.id, %error, "cannot end an HR run");
                }
            }
        }
        Ok(ended)
    }

    /// Writes a held run's end (`run`) over the version read, without its file
    /// or the changes it planned (both hold people's records); the counts stay.
    async fn end_held(
        &self,
        ctx: &Context,
        stored: &StoredRun,
        mut run: HrRun,
        record: &Record,
        reason: Option<&str>,
    ) -> ServiceResult<HrRun> {
        run.results.clear();
        run.results_truncated = false;
        if let Some(reason) = reason {
            run.results
                .push(json!({"status": "failed", "reason": reason}));
        }
        let ended = StoredRun {
            run: run.clone(),
            file: None,
            format: stored.format,
            claim: stored.claim.clone(),
            settings_hash: None,
        };
        self.save_run(
            ctx,
            &ended,
            Some(record),
            AuditAction::ProvisioningRunUpdate,
        )
        .await?;
        Ok(run)
    }

    pub async fn hr_runs(&self, ctx: &Context) -> ServiceResult<Vec<HrRun>> {
        self.may_read_hr(ctx)?;
        let mut reader = self.reader().await?;
        let mut runs = Vec::new();
        for record in
            codec::list_all(reader.as_mut(), ctx.tenant, Kind::ProvisioningRun, None).await?
        {
            let mut run = codec::data::<StoredRun>(&record)?.run;
            run.results.clear();
            runs.push(run);
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.created_date_time));
        Ok(runs)
    }

    pub async fn hr_run(&self, ctx: &Context, id: Uuid) -> ServiceResult<HrRun> {
        self.may_read_hr(ctx)?;
        let mut reader = self.reader().await?;
        let record = reader
            .get(ctx.tenant, Kind::ProvisioningRun, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok(codec::data::<StoredRun>(&record)?.run)
    }

    async fn save_run(
        &self,
        ctx: &Context,
        stored: &StoredRun,
        existing: Option<&Record>,
        audit: AuditAction,
    ) -> ServiceResult<Record> {
        let keys = Keys {
            // A scheduled run follows the one before it: of several nodes'
            // claims to follow the same run, one is taken.
            key1: stored.claim.clone(),
            key2: Some(stored.run.state.clone()),
            sort_key: codec::sort_key(&stored.run.created_date_time.to_rfc3339()),
        };
        let mut tx = self.write(ctx).await?;
        let written = match existing {
            Some(record) => {
                let next = codec::next_version(record, self.now(), keys, stored)?;
                tx.update(ctx.tenant, &next).await?;
                next
            }
            None => {
                let record = codec::new_record(
                    Kind::ProvisioningRun,
                    stored.run.id,
                    self.now(),
                    keys,
                    stored,
                )?;
                tx.insert(ctx.tenant, &record).await?;
                record
            }
        };
        let event = EventDraft::new(audit)
            .on(Kind::ProvisioningRun, stored.run.id, "HR import")
            .details(json!({
                "state": stored.run.state,
                "creates": stored.run.creates,
                "updates": stored.run.updates,
                "unchanged": stored.run.unchanged,
                "failed": stored.run.failed,
                "changedPercent": stored.run.changed_percent,
            }));
        self.audit(tx.as_mut(), ctx, event).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Applies a plan row by row, each in a transaction of its own.
    async fn apply(&self, ctx: &Context, plan: &Plan, run: &mut HrRun) -> ServiceResult<()> {
        let mut results: Vec<Value> = Vec::new();
        let mut failed = 0;
        for row in &plan.rows {
            let (action, outcome) = match &row.step {
                Step::Unchanged { .. } => continue,
                Step::Failed { reason } => ("none", Err(reason.clone())),
                Step::Create {
                    attributes,
                    candidates,
                } => ("create", self.create_row(ctx, attributes, candidates).await),
                Step::Update { id, changes } => {
                    let values: Vec<(&str, Value)> = changes
                        .iter()
                        .map(|c| (c.attribute.as_str(), c.after.clone()))
                        .collect();
                    let patch = tessera_provisioning::mapping::graph_patch(values);
                    ("update", self.update_row(ctx, *id, patch).await)
                }
            };
            let mut result = json!({"line": row.line, "action": action});
            if let Some(anchor) = &row.anchor {
                result["anchor"] = json!(anchor);
            }
            match outcome {
                Ok(id) => {
                    result["status"] = json!("done");
                    result["id"] = json!(id);
                }
                Err(reason) => {
                    failed += 1;
                    result["status"] = json!("failed");
                    result["reason"] = json!(reason);
                }
            }
            results.push(result);
        }
        // The failures first, then what was done, within the bound.
        results.sort_by_key(|r| r["status"] != "failed");
        run.results_truncated = results.len() > MAX_KEPT_RESULTS;
        results.truncate(MAX_KEPT_RESULTS);
        run.results = results;
        run.failed = failed;
        run.state = "completed".into();
        run.completed_date_time = Some(self.now());
        Ok(())
    }

    async fn create_row(
        &self,
        ctx: &Context,
        attributes: &Map<String, Value>,
        candidates: &[String],
    ) -> Result<Uuid, String> {
        let mut attributes = attributes.clone();
        let mut tx = self.write(ctx).await.map_err(|e| e.to_string())?;
        if !candidates.is_empty() {
            let mut chosen = None;
            for candidate in candidates {
                if tessera_directory::validate::user_principal_name(candidate).is_ok()
                    && upn_free(tx.as_mut(), ctx.tenant, candidate, None)
                        .await
                        .map_err(|e| e.to_string())?
                {
                    chosen = Some(candidate.clone());
                    break;
                }
            }
            let Some(chosen) = chosen else {
                return Err(
                    "every user principal name SelectUniqueValue offers is taken or invalid".into(),
                );
            };
            attributes.insert("userPrincipalName".into(), Value::String(chosen));
        }
        let spec: UserSpec =
            patch::parse_spec(merged(Map::new(), attributes)).map_err(|e| e.to_string())?;
        let record = self
            .directory
            .create_user_in(tx.as_mut(), ctx, spec)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(record.id)
    }

    async fn update_row(
        &self,
        ctx: &Context,
        id: Uuid,
        patch: Map<String, Value>,
    ) -> Result<Uuid, String> {
        let mut tx = self.write(ctx).await.map_err(|e| e.to_string())?;
        let record = tx
            .get(ctx.tenant, Kind::User, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("user {id} no longer exists"))?;
        let current: Map<String, Value> = codec::data(&record).map_err(|e| e.to_string())?;
        let after: UserSpec =
            patch::parse_spec(merged(current, patch)).map_err(|e| e.to_string())?;
        let updated = self
            .directory
            .update_user_in(tx.as_mut(), ctx, &record, after)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        let account_enabled = super::scim::account_enabled;
        if let Some(updated) = updated
            && account_enabled(&record) == Some(true)
            && account_enabled(&updated) == Some(false)
            && let Err(error) = self.close_user_sessions(ctx.tenant, id, None).await
        {
            tracing::warn!(tenant = %ctx.tenant, user = %id, %error, "cannot end a disabled user's sessions");
        }
        Ok(id)
    }
}

/// The provisioning service, as scheduled runs act: a provisioning token's
/// rights, and the custom security attributes the HR mapping writes (whoever
/// saved it was allowed to).
fn scheduled_context(tenant: TenantId, writes_custom: bool) -> Context {
    let mut ctx = crate::kernel::system_context(tenant, "scheduled HR import");
    ctx.caller.principal = crate::Principal::Workload {
        id: Uuid::nil(),
        display_name: "Scheduled HR import".into(),
        kind: "provisioningService",
    };
    ctx.caller.grants = super::tokens::provisioning_grants();
    if writes_custom {
        ctx.caller.grants.push(tessera_directory::authz::Grant {
            assignment_id: Uuid::nil(),
            role_id: tessera_directory::roles::ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR,
            scope: tessera_directory::model::DirectoryScope::Tenant,
        });
    }
    ctx
}

fn not_found(id: Uuid) -> ServiceError {
    ServiceError::NotFound {
        kind: "provisioningRun",
        id: id.to_string(),
    }
}

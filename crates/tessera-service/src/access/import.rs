//! Import of Entra exports (policies and named locations, with the groups and
//! migration table that resolve their references): everything or nothing unless
//! told to skip what is not ready, or only a plan (`dryRun`).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_ca::import::{self, Export, Known};
use tessera_ca::model::PolicyState;
use tessera_core::TenantId;
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target as AuthzTarget;
use tessera_directory::roles::action;
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use super::records::{location_record, policy_record};
use super::{Access, ConditionalAccessPolicy, NamedLocation, security_defaults};
use crate::codec;
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

/// An import request: the export's documents, already read as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportRequest {
    pub policies: Vec<ImportDocument>,
    #[serde(default)]
    pub named_locations: Vec<ImportDocument>,
    /// `Groups/*.json`: the exported groups, matched here by display name.
    #[serde(default)]
    pub groups: Vec<Value>,
    #[serde(default)]
    pub migration_table: Option<Value>,
    /// Import what is ready and leave out what is not.
    #[serde(default)]
    pub skip_errors: bool,
    /// Only report.
    #[serde(default)]
    pub dry_run: bool,
    /// Import every policy in this state (e.g. report-only).
    #[serde(default)]
    pub state: Option<PolicyState>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportDocument {
    pub file: String,
    pub document: Value,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImportResult {
    pub imported: bool,
    /// Only a report was asked for: `plannedPolicies` and `plannedNamedLocations`
    /// say what the same import without `dryRun` would write.
    pub dry_run: bool,
    pub policies_imported: usize,
    pub named_locations_imported: usize,
    /// What this import writes (for a dry run: would write), by id and name; empty
    /// when items have errors and `skipErrors` is not set.
    pub planned_policies: Vec<PlannedItem>,
    pub planned_named_locations: Vec<PlannedItem>,
    /// About the tenant rather than one item, e.g. security defaults staying on
    /// beside the imported policies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Per named location and policy: status, what was mapped, warnings, errors.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub report: import::Report,
}

/// A policy or named location an import writes.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PlannedItem {
    pub id: Uuid,
    pub display_name: String,
}

/// The import's warning while security defaults are on.
pub const SECURITY_DEFAULTS_STAY_ON: &str = "security defaults are on and stay on beside the imported policies: they require multifactor authentication of every administrator and for the management API, also of accounts the policies exclude (break-glass accounts), and block legacy clients; once the imported policies do what you want, turn them off with `tessera policy security-defaults --disable` (PATCH /api/v1/policies/identitySecurityDefaultsEnforcementPolicy {\"isEnabled\": false})";

impl Access {
    /// Imports an export: everything or nothing, unless told to skip what is not
    /// ready; `dry_run` only reports.
    pub async fn import(
        &self,
        ctx: &Context,
        request: ImportRequest,
    ) -> ServiceResult<ImportResult> {
        self.require(ctx, action::CA_POLICIES_MANAGE, &AuthzTarget::Tenant)?;
        self.require(ctx, action::NAMED_LOCATIONS_MANAGE, &AuthzTarget::Tenant)?;
        for protected in [
            tessera_pim::protected::CA_POLICY_CREATE,
            tessera_pim::protected::CA_POLICY_UPDATE,
            tessera_pim::protected::NAMED_LOCATION_CREATE,
            tessera_pim::protected::NAMED_LOCATION_UPDATE,
        ] {
            self.protect(ctx, protected, None)?;
        }
        if request.policies.len() > 1000 || request.named_locations.len() > 1000 {
            return Err(ServiceError::invalid(
                "policies",
                "import at most 1000 policies and 1000 named locations at once",
            ));
        }
        let mut export = Export {
            policies: request
                .policies
                .iter()
                .map(|d| (d.file.clone(), d.document.clone()))
                .collect(),
            named_locations: request
                .named_locations
                .iter()
                .map(|d| (d.file.clone(), d.document.clone()))
                .collect(),
            ..Default::default()
        };
        for group in &request.groups {
            export.objects.add_group(group);
        }
        if let Some(table) = &request.migration_table {
            export.objects.add_migration_table(table);
        }
        let mut tx = self.write(ctx).await?;
        let known = self
            .known_for_import(tx.as_mut(), ctx.tenant, &export)
            .await?;
        let plan = import::plan(
            &export,
            &known,
            import::Options {
                state: request.state,
            },
        );
        let errors = plan.report.error_count();
        let writable = errors == 0 || request.skip_errors;
        let (planned_policies, planned_named_locations) = if writable {
            (
                plan.policies
                    .iter()
                    .map(|(id, spec)| PlannedItem {
                        id: *id,
                        display_name: spec.display_name.clone(),
                    })
                    .collect(),
                plan.named_locations
                    .iter()
                    .map(|(id, spec)| PlannedItem {
                        id: *id,
                        display_name: spec.display_name().to_string(),
                    })
                    .collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let mut warnings = Vec::new();
        if !plan.policies.is_empty() && security_defaults(tx.as_mut(), ctx.tenant).await?.is_enabled
        {
            warnings.push(SECURITY_DEFAULTS_STAY_ON.to_string());
        }
        if request.dry_run || !writable {
            return Ok(ImportResult {
                imported: false,
                dry_run: request.dry_run,
                policies_imported: 0,
                named_locations_imported: 0,
                planned_policies,
                planned_named_locations,
                warnings,
                report: plan.report,
            });
        }
        let now = self.now();
        for (id, spec) in &plan.named_locations {
            let existing = tx.get(ctx.tenant, Kind::NamedLocation, *id).await?;
            let location = NamedLocation {
                id: *id,
                spec: spec.clone(),
                created_date_time: existing.as_ref().map(|r| r.created).unwrap_or(now),
                modified_date_time: now,
            };
            let record = location_record(&location, existing.as_ref())?;
            codec::put_record(tx.as_mut(), ctx.tenant, existing.is_some(), &record).await?;
            let event = EventDraft::new(AuditAction::NamedLocationImport)
                .on(Kind::NamedLocation, *id, spec.display_name())
                .details(serde_json::to_value(spec).unwrap_or(Value::Null));
            self.audit(tx.as_mut(), ctx, event).await?;
        }
        for (id, spec) in &plan.policies {
            let existing = tx
                .get(ctx.tenant, Kind::ConditionalAccessPolicy, *id)
                .await?;
            let policy = ConditionalAccessPolicy {
                id: *id,
                spec: spec.clone(),
                created_date_time: existing.as_ref().map(|r| r.created).unwrap_or(now),
                modified_date_time: now,
            };
            let record = policy_record(&policy, existing.as_ref())?;
            codec::put_record(tx.as_mut(), ctx.tenant, existing.is_some(), &record).await?;
            let event = EventDraft::new(AuditAction::ConditionalAccessPolicyImport)
                .on(Kind::ConditionalAccessPolicy, *id, &spec.display_name)
                .details(serde_json::to_value(spec).unwrap_or(Value::Null));
            self.audit(tx.as_mut(), ctx, event).await?;
        }
        let summary = EventDraft::new(AuditAction::ConditionalAccessImport).details(json!({
            "policies": plan.policies.len(),
            "namedLocations": plan.named_locations.len(),
            "skipped": errors,
        }));
        self.audit(tx.as_mut(), ctx, summary).await?;
        tx.commit().await?;
        self.forget_policy_set(ctx.tenant);
        Ok(ImportResult {
            imported: true,
            dry_run: false,
            policies_imported: plan.policies.len(),
            named_locations_imported: plan.named_locations.len(),
            planned_policies,
            planned_named_locations,
            warnings,
            report: plan.report,
        })
    }

    async fn known_for_import(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        export: &Export,
    ) -> ServiceResult<Known> {
        let mut known = Known::default();
        for record in codec::list_all(reader, tenant, Kind::Group, None).await? {
            let group: tessera_directory::model::GroupSpec = codec::data(&record)?;
            known.groups.insert(record.id, group.display_name);
        }
        for record in codec::list_all(reader, tenant, Kind::NamedLocation, None).await? {
            known.locations.insert(record.id);
        }
        for record in codec::list_all(reader, tenant, Kind::TermsOfUse, None).await? {
            known.terms_of_use.insert(record.id);
        }
        for record in codec::list_all(reader, tenant, Kind::AuthStrength, None).await? {
            known.strengths.insert(record.id);
        }
        // Users, applications and workloads the export names, looked up one by one.
        let mut named = HashSet::new();
        for (_, document) in &export.policies {
            collect_ids(document, &mut named);
        }
        for id in named {
            if reader.get(tenant, Kind::User, id).await?.is_some() {
                known.users.insert(id);
            }
            if reader
                .get(tenant, Kind::ServicePrincipal, id)
                .await?
                .is_some()
            {
                known.service_principals.insert(id);
            }
            if reader
                .get_by_key1(tenant, Kind::Application, &id.to_string())
                .await?
                .is_some()
            {
                known.apps.insert(id);
            }
        }
        Ok(known)
    }
}

/// Every id-looking string in a document (for looking up what an import names).
fn collect_ids(value: &Value, out: &mut HashSet<Uuid>) {
    match value {
        Value::String(s) => {
            if let Ok(id) = Uuid::parse_str(s) {
                out.insert(id);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_ids(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_ids(v, out)),
        _ => {}
    }
    if out.len() > 10_000 {
        out.clear();
    }
}

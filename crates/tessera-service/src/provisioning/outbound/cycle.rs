//! A provisioning cycle for one application, and provisioning on demand.
//!
//! A cycle takes the service principal's lease (so of several nodes, and of a
//! job and an administrator's "run now", one cycles at a time), reads what it
//! needs, and takes each object in turn: the user as the directory has it now,
//! its standing (assigned, matched by the scoping rule, deleted), the resource
//! the mapping makes of it, and [`rules::decide`]. What the application is sent
//! and how it answered is one transaction: the object's state and a
//! `provisioning.export` event. A target that cannot be used ends the cycle,
//! which then leaves the watermark where it was.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{SecretString, TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::model::{GroupSpec, UserSpec};
use tessera_directory::roles::action;
use tessera_provisioning::Env;
use tessera_provisioning::outbound::{Action, CycleOutcome, Scope, Standing};
use tessera_store::{Kind, Record, Rel};
use uuid::Uuid;

use super::client::{Client, Failure};
use super::sync::{Cycle, Done, assignments, next_state};
use super::{
    ObjectState, Provisioning, Status, Stored, compile_user_mapping, load_config, load_status,
    object_key, token_context, watermark_key,
};
use crate::codec::{self, Keys};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft, Principal};

/// Audit events an incremental cycle reads; past this it is a full cycle.
const MAX_EVENTS: usize = 50_000;
/// How long a cycle holds its lease.
const LEASE_SECONDS: i64 = 15 * 60;
/// Objects to retry kept at most.
const MAX_RETRY: usize = 1000;

/// How one cycle went.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CycleSummary {
    pub id: Uuid,
    /// Whether it took every object (else those changed since the last).
    pub full: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub started_date_time: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub completed_date_time: Timestamp,
    /// Objects looked at.
    pub examined: u32,
    pub created: u32,
    pub updated: u32,
    pub disabled: u32,
    pub deleted: u32,
    pub failed: u32,
    /// Why the cycle ended early (the application could not be used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What provisioning one user on demand did, step by step.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OnDemandReport {
    pub user_id: Uuid,
    /// Whether the user is in the application's scope, and why (not).
    pub in_scope: bool,
    pub scope_reason: String,
    /// `create`, `update`, `disable`, `delete` or `none`.
    pub action: String,
    /// `success`, `failure` or `skipped`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// The resource the mapping makes of the user.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub resource: Value,
    /// What was changed on the application (attribute paths).
    pub changed: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The provisioning service acting for an application.
fn workload_context(tenant: TenantId, sp: Uuid, name: &str) -> Context {
    let mut ctx = crate::kernel::system_context(tenant, "outbound provisioning");
    ctx.caller.principal = Principal::Workload {
        id: sp,
        display_name: format!("Provisioning: {name}"),
        kind: "provisioningService",
    };
    ctx
}

/// Object failures in a row after which a cycle stops: the application is
/// failing, not the objects.
const MAX_FAILURES_IN_A_ROW: u32 = 10;

/// Whether a cycle stops at this outcome: the target cannot be used, or has
/// failed too many objects in a row. Counts the run of failures.
fn stop_for(done: &Done, failed_in_a_row: &mut u32) -> Option<String> {
    match &done.failure {
        Some(Failure::Target(why)) => Some(why.clone()),
        Some(failure) => {
            *failed_in_a_row += 1;
            (*failed_in_a_row >= MAX_FAILURES_IN_A_ROW).then(|| {
                format!(
                    "the application failed {MAX_FAILURES_IN_A_ROW} objects in a row; the last: {}",
                    failure.message()
                )
            })
        }
        None => {
            *failed_in_a_row = 0;
            None
        }
    }
}

/// The lease a cycle or a provisioning on demand holds for a service principal.
pub(super) struct Lease {
    tenant: TenantId,
    sp: Uuid,
    name: String,
    holder: String,
    until: Timestamp,
}

impl Provisioning {
    /// Takes a service principal's lease; `None` when another holds it.
    pub(super) async fn take_lease(
        &self,
        tenant: TenantId,
        sp: Uuid,
    ) -> ServiceResult<Option<Lease>> {
        let now = self.now();
        let lease = Lease {
            tenant,
            sp,
            name: format!("outbound:{sp}"),
            holder: Uuid::new_v4().to_string(),
            until: now.plus_seconds(LEASE_SECONDS),
        };
        let taken = self
            .store()
            .lease_take(&lease.name, Some(tenant), &lease.holder, now, lease.until)
            .await?;
        Ok(taken.then_some(lease))
    }

    /// Extends a lease running short; an error (which stops the cycle) when it
    /// was lost.
    async fn renew_lease(&self, lease: &mut Lease) -> Result<(), String> {
        let now = self.now();
        if now.plus_seconds(LEASE_SECONDS / 3) < lease.until {
            return Ok(());
        }
        let until = now.plus_seconds(LEASE_SECONDS);
        match self
            .store()
            .lease_take(&lease.name, Some(lease.tenant), &lease.holder, now, until)
            .await
        {
            Ok(true) => {
                lease.until = until;
                Ok(())
            }
            _ => Err("the cycle's lease was lost: another node took over".into()),
        }
    }

    async fn release_lease(&self, lease: &Lease) {
        let _ = self
            .store()
            .lease_set_end(&lease.name, Some(lease.tenant), &lease.holder, self.now())
            .await;
    }

    /// The job's round for a tenant: a cycle for each application whose
    /// provisioning is on and not waiting out a quarantine.
    pub async fn outbound_round(&self, tenant: TenantId) -> ServiceResult<usize> {
        let mut reader = self.reader().await?;
        let configs = codec::list_all_prefixed(
            reader.as_mut(),
            tenant,
            Kind::OutboundProvisioning,
            None,
            Some("config:".into()),
        )
        .await?;
        drop(reader);
        let mut ran = 0;
        for record in configs {
            let stored: Stored = codec::data(&record)?;
            if !stored.enabled {
                continue;
            }
            match self.cycle(tenant, stored.service_principal_id, false).await {
                Ok(Some(_)) => ran += 1,
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%tenant, sp = %stored.service_principal_id, %error, "a provisioning cycle failed");
                }
            }
        }
        Ok(ran)
    }

    /// `POST /servicePrincipals/{id}/provisioning/run`: a cycle now (`full`:
    /// every object), a quarantine lifted first.
    pub async fn run_outbound_now(
        &self,
        ctx: &Context,
        sp: Uuid,
        full: bool,
    ) -> ServiceResult<CycleSummary> {
        let (mut tx, sp_record) = self.open_managed(ctx, sp).await?;
        let (_, stored) = load_config(tx.as_mut(), ctx.tenant, sp)
            .await?
            .ok_or_else(|| super::not_configured(sp))?;
        if !stored.enabled {
            return Err(ServiceError::Conflict {
                message: "provisioning is paused for this application: enable it first".into(),
            });
        }
        let (status_record, mut status) = load_status(tx.as_mut(), ctx.tenant, sp).await?;
        status.health = Default::default();
        status.full_cycle_pending |= full;
        self.put_status(tx.as_mut(), ctx.tenant, sp, status_record.as_ref(), &status)
            .await?;
        let event = EventDraft::new(AuditAction::ServicePrincipalProvisioningRun)
            .on(
                Kind::ServicePrincipal,
                sp,
                &crate::directory::groups::display_name_of(&sp_record),
            )
            .details(json!({"full": full}));
        self.commit(tx, ctx, event).await?;
        match self.cycle(ctx.tenant, sp, true).await? {
            Some(summary) => Ok(summary),
            None => Err(ServiceError::Conflict {
                message:
                    "a provisioning cycle for this application is running: try again when it ends"
                        .into(),
            }),
        }
    }

    /// Reads what a cycle needs and makes its client's token.
    async fn open_cycle<'a>(
        &self,
        tenant: TenantId,
        sp: Uuid,
        stored: &'a Stored,
        token: &'a SecretString,
        port: &'a dyn super::ScimTarget,
        sp_name: &str,
    ) -> ServiceResult<Cycle<'a>> {
        let compiled = compile_user_mapping(&stored.user_mapping).map_err(|e| {
            ServiceError::Internal(format!("the saved mapping no longer compiles: {e}"))
        })?;
        let rule = match &stored.scoping_rule {
            Some(text) => Some(
                tessera_directory::rule::parse(text)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?,
            ),
            None => None,
        };
        let mut reader = self.snapshot().await?;
        let (users, groups) = assignments(reader.as_mut(), tenant, sp).await?;
        let now = time::OffsetDateTime::from_unix_timestamp(self.now().unix_seconds())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Ok(Cycle {
            tenant,
            sp,
            stored,
            compiled,
            rule,
            client: Client {
                port,
                base: &stored.endpoint,
                token: token.expose(),
            },
            ctx: workload_context(tenant, sp, sp_name),
            id: Uuid::new_v4(),
            env: Env { now },
            assigned_users: match stored.scope {
                Scope::AssignedUsersAndGroups => Some(users),
                Scope::AllUsers => None,
            },
            assigned_groups: if stored.provision_groups {
                groups
            } else {
                BTreeSet::new()
            },
        })
    }

    fn token_of(&self, sp: Uuid, stored: &Stored) -> ServiceResult<SecretString> {
        let sealed = stored
            .token_sealed
            .as_deref()
            .ok_or_else(|| ServiceError::Conflict {
                message: "the application's provisioning has no token".into(),
            })?;
        let plain = self
            .settings
            .sealing_key
            .open(sealed, &token_context(sp))
            .map_err(|_| {
                ServiceError::Internal("the provisioning token cannot be opened".into())
            })?;
        Ok(SecretString::new(String::from_utf8(plain).map_err(
            |_| ServiceError::Internal("the provisioning token cannot be opened".into()),
        )?))
    }

    fn port(&self) -> ServiceResult<std::sync::Arc<dyn super::ScimTarget>> {
        self.scim_target
            .get()
            .cloned()
            .ok_or_else(|| ServiceError::Internal("no HTTP client for provisioning".into()))
    }

    /// One cycle, if the lease is free; `None` when another holds it or there
    /// is nothing to do (`asked`: an administrator's, which always reports).
    async fn cycle(
        &self,
        tenant: TenantId,
        sp: Uuid,
        asked: bool,
    ) -> ServiceResult<Option<CycleSummary>> {
        let started = self.now();
        let mut reader = self.reader().await?;
        let Some((_, stored)) = load_config(reader.as_mut(), tenant, sp).await? else {
            return Ok(None);
        };
        let Some(sp_record) = reader.get(tenant, Kind::ServicePrincipal, sp).await? else {
            return Ok(None);
        };
        let (status_record, status) = load_status(reader.as_mut(), tenant, sp).await?;
        drop(reader);
        if !asked && !status.health.may_run(started.unix_seconds()) {
            return Ok(None);
        }
        let head = self.store().audit_head(tenant).await?.map_or(0, |h| h.seq);
        let watermark = self
            .store()
            .counter_get(tenant, &watermark_key(sp))
            .await?
            .map_or(0, |c| c.value);
        if !asked && !status.full_cycle_pending && status.retry.is_empty() && head <= watermark {
            return Ok(None);
        }
        let Some(mut lease) = self.take_lease(tenant, sp).await? else {
            return Ok(None);
        };
        let result = self
            .cycle_held(
                &mut lease,
                &sp_record,
                stored,
                status_record,
                status,
                head,
                watermark,
            )
            .await;
        self.release_lease(&lease).await;
        result.map(Some)
    }

    #[allow(clippy::too_many_arguments)]
    async fn cycle_held(
        &self,
        lease: &mut Lease,
        sp_record: &Record,
        stored: Stored,
        status_record: Option<Record>,
        status: Status,
        head: i64,
        watermark: i64,
    ) -> ServiceResult<CycleSummary> {
        let (tenant, sp) = (lease.tenant, lease.sp);
        let port = self.port()?;
        let token = self.token_of(sp, &stored)?;
        let sp_name = crate::directory::groups::display_name_of(sp_record);
        let cycle = self
            .open_cycle(tenant, sp, &stored, &token, port.as_ref(), &sp_name)
            .await?;
        let mut summary = CycleSummary {
            id: cycle.id,
            full: status.full_cycle_pending,
            started_date_time: self.now(),
            completed_date_time: self.now(),
            examined: 0,
            created: 0,
            updated: 0,
            disabled: 0,
            deleted: 0,
            failed: 0,
            error: None,
        };
        // What the application holds, as Tessera left it.
        let mut reader = self.reader().await?;
        let known_records = codec::list_all(
            reader.as_mut(),
            tenant,
            Kind::OutboundObject,
            Some(sp.to_string()),
        )
        .await?;
        let mut known: HashMap<Uuid, (Record, ObjectState)> = HashMap::new();
        for record in known_records {
            let state: ObjectState = codec::data(&record)?;
            // Only what this endpoint holds counts: ids another application
            // gave mean nothing here (the record is kept, to be written over).
            let state = if state.endpoint == stored.endpoint {
                state
            } else {
                ObjectState {
                    object_id: state.object_id,
                    object_type: state.object_type,
                    display_name: state.display_name,
                    ..Default::default()
                }
            };
            known.insert(state.object_id, (record, state));
        }
        // The users to look at.
        let mut users: BTreeSet<Uuid> = status.retry.iter().copied().collect();
        let mut groups_touched = summary.full;
        if !summary.full {
            let mut after = watermark;
            let mut read = 0;
            while after < head {
                let rows = self.store().audit_scan(tenant, after, 1000).await?;
                let Some(last) = rows.last() else { break };
                after = last.seq;
                read += rows.len();
                for row in &rows {
                    let Some(target) = row
                        .target_id
                        .as_deref()
                        .and_then(|t| Uuid::parse_str(t).ok())
                    else {
                        continue;
                    };
                    if row.action.starts_with("user.") {
                        users.insert(target);
                        // Its dynamic groups may have moved with it.
                        groups_touched = true;
                    } else if row.action.starts_with("group.")
                        || row.action.starts_with("servicePrincipal.appRoleAssignment")
                    {
                        groups_touched = true;
                    }
                }
                if read > MAX_EVENTS {
                    summary.full = true;
                    groups_touched = true;
                    break;
                }
            }
        }
        match &cycle.assigned_users {
            Some(assigned) if summary.full => users.extend(assigned.iter().copied()),
            Some(assigned) => {
                // Those whose assignment changed: in scope and not held active
                // there, or held active there and not in scope.
                for id in assigned {
                    if !known
                        .get(id)
                        .is_some_and(|(_, s)| s.target_id.is_some() && s.active)
                    {
                        users.insert(*id);
                    }
                }
                for (id, (_, state)) in &known {
                    if state.object_type == "user" && state.active && !assigned.contains(id) {
                        users.insert(*id);
                    }
                }
            }
            None if summary.full => {
                let mut reader = self.reader().await?;
                for record in codec::list_all(reader.as_mut(), tenant, Kind::User, None).await? {
                    users.insert(record.id);
                }
            }
            None => {}
        }
        if summary.full {
            users.extend(
                known
                    .values()
                    .filter(|(_, s)| s.object_type == "user")
                    .map(|(_, s)| s.object_id),
            );
        }
        // Those held active there and no longer assigned go first: a leaver is
        // signed off before anything else is sent.
        let mut users: Vec<Uuid> = users.into_iter().collect();
        if let Some(assigned) = &cycle.assigned_users {
            users.sort_by_key(|id| {
                let leaving = known
                    .get(id)
                    .is_some_and(|(_, s)| s.active && !assigned.contains(id));
                !leaving
            });
        }
        let mut retry = Vec::new();
        let mut target_error = None;
        let mut users_changed = false;
        let mut failed_in_a_row = 0;
        for id in users {
            if let Err(error) = self.renew_lease(lease).await {
                target_error = Some(error);
                break;
            }
            if known
                .get(&id)
                .is_some_and(|(_, s)| s.object_type == "group")
            {
                continue;
            }
            let record = reader.get(tenant, Kind::User, id).await?;
            let spec: Option<UserSpec> = match &record {
                Some(r) => Some(codec::data(r)?),
                None => None,
            };
            let state = known.get(&id).map(|(_, s)| s);
            if spec.is_none() && state.is_none() {
                continue;
            }
            summary.examined += 1;
            let done = cycle
                .sync_user(id, spec.as_ref(), state, summary.full)
                .await;
            if done.action == Action::None && done.failure.is_none() {
                continue;
            }
            if let Some(why) = stop_for(&done, &mut failed_in_a_row) {
                target_error = Some(why);
                break;
            }
            let name = spec
                .as_ref()
                .map(|s| s.user_principal_name.clone())
                .or_else(|| state.map(|s| s.display_name.clone()))
                .unwrap_or_default();
            self.tally(&mut summary, &done);
            if done.failure.is_some() {
                retry.push(id);
            } else {
                users_changed = true;
            }
            let record = known.get(&id).map(|(r, _)| r.clone());
            match self
                .record_outcome(
                    &cycle,
                    Kind::User,
                    id,
                    &name,
                    record.as_ref(),
                    &done,
                    Vec::new(),
                )
                .await
            {
                Ok(Some((record, state))) => {
                    known.insert(id, (record, state));
                }
                Ok(None) => {
                    known.remove(&id);
                }
                Err(error) => {
                    tracing::warn!(%tenant, %sp, user = %id, %error, "a provisioning outcome was not recorded");
                    retry.push(id);
                }
            }
        }
        // Groups: the assigned ones, and those held there that are no longer.
        if target_error.is_none() && (groups_touched || users_changed || !status.retry.is_empty()) {
            let mut group_ids: BTreeSet<Uuid> = cycle.assigned_groups.clone();
            group_ids.extend(
                known
                    .values()
                    .filter(|(_, s)| s.object_type == "group")
                    .map(|(_, s)| s.object_id),
            );
            for id in group_ids {
                if let Err(error) = self.renew_lease(lease).await {
                    target_error = Some(error);
                    break;
                }
                let record = reader.get(tenant, Kind::Group, id).await?;
                let spec: Option<GroupSpec> = match &record {
                    Some(r) => Some(codec::data(r)?),
                    None => None,
                };
                // Its direct members the application holds as active users.
                let mut members = Vec::new();
                if spec.is_some() {
                    for link in crate::directory::groups::all_links_from(
                        reader.as_mut(),
                        tenant,
                        Rel::Member,
                        id,
                    )
                    .await?
                    {
                        if let Some((_, s)) = known.get(&link.target)
                            && s.object_type == "user"
                            && s.active
                            && let Some(target) = &s.target_id
                        {
                            members.push(target.clone());
                        }
                    }
                    members.sort();
                }
                let state = known.get(&id).map(|(_, s)| s);
                summary.examined += 1;
                let (done, sent) = cycle
                    .sync_group(id, spec.as_ref(), members, state, summary.full)
                    .await;
                if done.action == Action::None && done.failure.is_none() {
                    continue;
                }
                if let Some(why) = stop_for(&done, &mut failed_in_a_row) {
                    target_error = Some(why);
                    break;
                }
                self.tally(&mut summary, &done);
                if done.failure.is_some() {
                    retry.push(id);
                }
                let name = spec
                    .as_ref()
                    .map(|s| s.display_name.clone())
                    .or_else(|| state.map(|s| s.display_name.clone()))
                    .unwrap_or_default();
                let record = known.get(&id).map(|(r, _)| r.clone());
                if let Err(error) = self
                    .record_outcome(&cycle, Kind::Group, id, &name, record.as_ref(), &done, sent)
                    .await
                {
                    tracing::warn!(%tenant, %sp, group = %id, %error, "a provisioning outcome was not recorded");
                    retry.push(id);
                }
            }
        }
        drop(reader);
        summary.completed_date_time = self.now();
        summary.error = target_error.clone();
        let outcome = CycleOutcome {
            attempted: summary.created
                + summary.updated
                + summary.disabled
                + summary.deleted
                + summary.failed,
            failed: summary.failed,
            target_error: target_error.clone(),
        };
        let mut after = status.clone();
        after.health = status.health.after(&outcome, self.now().unix_seconds());
        if target_error.is_some() {
            // Nothing is passed over: what was not reached is taken next time.
            retry.extend(status.retry.iter().copied());
        } else if summary.full {
            after.full_cycle_pending = false;
        }
        retry.sort();
        retry.dedup();
        if retry.len() > MAX_RETRY {
            // Too many to remember one by one: the next cycle looks at all.
            retry.truncate(MAX_RETRY);
            after.full_cycle_pending = true;
        }
        after.retry = retry;
        let worth_recording = outcome.attempted > 0
            || after.health != status.health
            || after.full_cycle_pending != status.full_cycle_pending
            || after.retry != status.retry;
        if worth_recording {
            after.last_cycle = Some(summary.clone());
            let mut tx = self.write(&cycle.ctx).await?;
            self.put_status(tx.as_mut(), tenant, sp, status_record.as_ref(), &after)
                .await?;
            let mut event = EventDraft::new(AuditAction::ProvisioningCycle)
                .on(Kind::ServicePrincipal, sp, &sp_name)
                .details(&summary);
            if after.health.quarantined() && !status.health.quarantined() {
                event = event.details(json!({"cycle": summary, "quarantined": after.health}));
            }
            self.commit(tx, &cycle.ctx, event).await?;
        }
        if target_error.is_none() {
            self.store()
                .counter_advance(tenant, &watermark_key(sp), head, self.now())
                .await?;
        }
        Ok(summary)
    }

    fn tally(&self, summary: &mut CycleSummary, done: &Done) {
        if done.failure.is_some() {
            summary.failed += 1;
            return;
        }
        match done.action {
            Action::Create => summary.created += 1,
            Action::Update => summary.updated += 1,
            Action::Disable => summary.disabled += 1,
            Action::Delete => summary.deleted += 1,
            Action::None => {}
        }
    }

    /// Records one object's outcome: its state and its `provisioning.export`
    /// event, in one transaction. Returns the state as now stored.
    #[allow(clippy::too_many_arguments)]
    async fn record_outcome(
        &self,
        cycle: &Cycle<'_>,
        kind: Kind,
        id: Uuid,
        name: &str,
        existing: Option<&Record>,
        done: &Done,
        members: Vec<String>,
    ) -> ServiceResult<Option<(Record, ObjectState)>> {
        let object_type = if kind == Kind::Group { "group" } else { "user" };
        // What another endpoint held is not this one's to build on.
        let before: Option<ObjectState> = match existing {
            Some(r) => {
                Some(codec::data::<ObjectState>(r)?).filter(|s| s.endpoint == cycle.stored.endpoint)
            }
            None => None,
        };
        let after = next_state(
            before.as_ref(),
            &cycle.stored.endpoint,
            id,
            object_type,
            name,
            done,
            members,
        );
        let now = self.now();
        let keys = Keys {
            key1: Some(object_key(cycle.sp, id)),
            key2: Some(cycle.sp.to_string()),
            sort_key: id.to_string(),
        };
        let mut tx = self.write(&cycle.ctx).await?;
        let stored = match (existing, &after) {
            (Some(record), Some(state)) => {
                let next = codec::next_version(record, now, keys, state)?;
                tx.update(cycle.tenant, &next).await?;
                Some((next, state.clone()))
            }
            (None, Some(state)) => {
                let record =
                    codec::new_record(Kind::OutboundObject, Uuid::new_v4(), now, keys, state)?;
                tx.insert(cycle.tenant, &record).await?;
                Some((record, state.clone()))
            }
            (Some(record), None) => {
                tx.delete(
                    cycle.tenant,
                    Kind::OutboundObject,
                    record.id,
                    Some(record.version),
                )
                .await?;
                None
            }
            (None, None) => None,
        };
        let event = EventDraft::new(AuditAction::ProvisioningExport)
            .on(kind, id, name)
            .details(json!({
                "servicePrincipalId": cycle.sp,
                "cycleId": cycle.id,
                "action": done.action.name(),
                "status": if done.failure.is_some() { "failure" } else { "success" },
                "targetId": done.target_id,
                "changed": done.changed,
                "error": done.failure.as_ref().map(|f| f.message().to_string()),
            }));
        self.commit(tx, &cycle.ctx, event).await?;
        Ok(stored)
    }

    /// `POST /servicePrincipals/{id}/provisioning/provisionOnDemand`: one user
    /// now, whatever the schedule or a quarantine, with what each step found.
    pub async fn provision_on_demand(
        &self,
        ctx: &Context,
        sp: Uuid,
        user: Uuid,
    ) -> ServiceResult<OnDemandReport> {
        self.require(
            ctx,
            action::SPS_SYNCHRONIZATION_MANAGE,
            &tessera_directory::authz::Target::Tenant,
        )?;
        // The caller learns what the directory holds about the user.
        self.require(
            ctx,
            action::USERS_READ,
            &tessera_directory::authz::Target::Tenant,
        )?;
        let mut reader = self.reader().await?;
        let sp_record =
            codec::load(reader.as_mut(), ctx.tenant, Kind::ServicePrincipal, sp).await?;
        let (_, stored) = load_config(reader.as_mut(), ctx.tenant, sp)
            .await?
            .ok_or_else(|| super::not_configured(sp))?;
        let user_record = codec::load(reader.as_mut(), ctx.tenant, Kind::User, user).await?;
        let spec: UserSpec = codec::data(&user_record)?;
        let state_record = reader
            .get_by_key1(ctx.tenant, Kind::OutboundObject, &object_key(sp, user))
            .await?;
        let state: Option<ObjectState> = match &state_record {
            Some(r) => {
                Some(codec::data::<ObjectState>(r)?).filter(|s| s.endpoint == stored.endpoint)
            }
            None => None,
        };
        drop(reader);
        let port = self.port()?;
        let token = self.token_of(sp, &stored)?;
        let sp_name = crate::directory::groups::display_name_of(&sp_record);
        let cycle = self
            .open_cycle(ctx.tenant, sp, &stored, &token, port.as_ref(), &sp_name)
            .await?;
        // Not beside a cycle: the two would send the same changes twice.
        let Some(lease) = self.take_lease(ctx.tenant, sp).await? else {
            return Err(ServiceError::Conflict {
                message:
                    "a provisioning cycle for this application is running: try again when it ends"
                        .into(),
            });
        };
        let done = cycle
            .sync_user(user, Some(&spec), state.as_ref(), true)
            .await;
        let status = match (&done.failure, done.action) {
            (Some(_), _) => "failure",
            (None, Action::None) => "skipped",
            (None, _) => "success",
        };
        if done.action != Action::None || done.failure.is_some() {
            let recorded = self
                .record_outcome(
                    &cycle,
                    Kind::User,
                    user,
                    &spec.user_principal_name,
                    state_record.as_ref(),
                    &done,
                    Vec::new(),
                )
                .await;
            self.release_lease(&lease).await;
            recorded?;
        } else {
            self.release_lease(&lease).await;
        }
        Ok(OnDemandReport {
            user_id: user,
            in_scope: done.standing == Standing::InScope,
            scope_reason: done.scope_reason.clone(),
            action: done.action.name().into(),
            status: status.into(),
            target_id: done.target_id.clone(),
            resource: done.resource.clone(),
            changed: done.changed.clone(),
            error: done.failure.as_ref().map(|f| f.message().to_string()),
        })
    }
}

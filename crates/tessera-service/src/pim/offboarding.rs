//! Ending a principal's directory roles for lifecycle workflows (a mover's roles
//! that no longer fit, a leaver's): what an administrator's `adminRemove` does
//! for each role the principal holds, at every scope. Eligibilities go with the
//! activations made from them, then PIM assignments, then standing
//! assignments; the tenant's last Global Administrator stays (the whole removal
//! is refused, nothing changed). One transaction, one audit event per role and
//! scope.

use serde_json::json;
use tessera_directory::audit_action::AuditAction;
use tessera_pim::Target as PimTarget;
use tessera_store::Kind;
use uuid::Uuid;

use super::requests::{Held, resolve};
use super::{Pim, refused};
use crate::codec;
use crate::directory::role_schedules;
use crate::error::ServiceResult;
use crate::{Context, EventDraft};

impl Pim {
    /// Removes `principal`'s directory roles (those in `only`, or all): each
    /// eligibility with its activations, each assignment made through PIM, each
    /// standing assignment. Needs PIM's administrator rights. What it ended,
    /// one `role at scope` per target.
    pub async fn remove_principal_roles(
        &self,
        ctx: &Context,
        principal: Uuid,
        only: Option<&[Uuid]>,
    ) -> ServiceResult<Vec<String>> {
        if !self.administers(ctx) {
            return Err(refused(tessera_pim::Refusal::NotPermitted));
        }
        let wanted = |role: Uuid| only.is_none_or(|roles| roles.contains(&role));
        let mut tx = self.write(ctx).await?;
        let key = Some(principal.to_string());
        let mut targets: Vec<PimTarget> = Vec::new();
        let schedules = codec::list_all_prefixed(
            tx.as_mut(),
            ctx.tenant,
            Kind::PimSchedule,
            key.clone(),
            None,
        )
        .await?;
        for record in &schedules {
            let schedule = role_schedules::read(record)?;
            if let PimTarget::Role {
                role_definition_id, ..
            } = &schedule.target
                && wanted(*role_definition_id)
                && !targets.contains(&schedule.target)
            {
                targets.push(schedule.target);
            }
        }
        for record in codec::list_all(tx.as_mut(), ctx.tenant, Kind::RoleAssignment, key).await? {
            let spec = role_schedules::standing_spec(&record)?;
            let target = PimTarget::Role {
                role_definition_id: spec.role_definition_id,
                directory_scope_id: spec.directory_scope_id.clone(),
            };
            if wanted(spec.role_definition_id) && !targets.contains(&target) {
                targets.push(target);
            }
        }
        let principal_name = match tx.get(ctx.tenant, Kind::User, principal).await? {
            Some(record) => {
                codec::data::<tessera_directory::model::UserSpec>(&record)?.user_principal_name
            }
            None => principal.to_string(),
        };
        let mut ended = Vec::new();
        for target in targets {
            let resolved = resolve(tx.as_mut(), ctx.tenant, &target).await?;
            let held = Held::read(tx.as_mut(), ctx.tenant, principal, &target).await?;
            // Every schedule held ends (activations with their eligibility).
            let schedules: Vec<Uuid> = held
                .stored
                .iter()
                .map(|(record, _)| record.id)
                .chain(held.standing.iter().map(|record| record.id))
                .collect();
            // Activations go with their eligibility; the others one by one.
            for (record, stored) in held.stored.iter() {
                if stored.schedule.activated_from.is_none()
                    || !held
                        .stored
                        .iter()
                        .any(|(r, _)| Some(r.id) == stored.schedule.activated_from)
                {
                    self.end_schedule(tx.as_mut(), ctx, &resolved, &held, record.id)
                        .await?;
                }
            }
            if let Some(standing) = held.standing.as_ref() {
                self.end_schedule(tx.as_mut(), ctx, &resolved, &held, standing.id)
                    .await?;
            }
            let event = EventDraft::new(AuditAction::RoleScheduleRemove)
                .on(Kind::User, principal, &principal_name)
                .details(json!({
                    "action": "adminRemove",
                    "principalId": principal,
                    "target": target,
                    "name": resolved.name,
                    "schedules": schedules,
                }));
            self.audit(tx.as_mut(), ctx, event).await?;
            let scope = match &target {
                PimTarget::Role {
                    directory_scope_id, ..
                } => directory_scope_id.clone(),
                PimTarget::Group { .. } => String::new(),
            };
            ended.push(format!("{} at {scope}", resolved.name));
        }
        tx.commit().await?;
        Ok(ended)
    }
}

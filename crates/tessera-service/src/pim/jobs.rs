//! The per-tenant PIM round (`pim-expiry`, every 15 seconds on some node): records
//! in the audit trail each schedule that has reached its end and each request
//! whose wait for approval timed out, and forgets schedules ended longer ago than
//! they can be renewed. Enforcement does not wait for it: a schedule grants only
//! until its end, checked at every use (`directory::role_schedules`).

use serde_json::json;
use tessera_core::TenantId;
use tessera_directory::audit_action::AuditAction;
use tessera_store::{Kind, ListQuery};

use super::Pim;
use super::requests::KEPT_AFTER_END_SECONDS;
use crate::EventDraft;
use crate::codec;
use crate::directory::role_schedules;
use crate::error::ServiceResult;
use crate::kernel::system_context;

/// At most this many changes per round (each in its own transaction), so one
/// round stays short; the next round goes on.
const PER_ROUND: usize = 500;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub expired: usize,
    pub forgotten: usize,
    pub timed_out: usize,
}

impl Pim {
    /// One round for one tenant (see the module documentation).
    pub async fn expiry_round(&self, tenant: TenantId) -> ServiceResult<Round> {
        let mut round = Round::default();
        let ctx = system_context(tenant, "privileged identity management");
        let now = self.now();
        let mut reader = self.reader().await?;
        let schedules = codec::list_all(reader.as_mut(), tenant, Kind::PimSchedule, None).await?;
        drop(reader);
        for record in schedules {
            if round.expired + round.forgotten >= PER_ROUND {
                break;
            }
            let seen = role_schedules::read(&record)?;
            if !due(&seen, now) {
                continue;
            }
            let mut tx = self.write(&ctx).await?;
            // Read again under the write lock: a request may have changed it.
            let Some(current) = tx.get(tenant, Kind::PimSchedule, record.id).await? else {
                continue;
            };
            let mut stored = role_schedules::read(&current)?;
            if !due(&stored, now) {
                continue;
            }
            let name = super::requests::target_name(tx.as_mut(), tenant, &stored.target).await?;
            let first_notice = !stored.end_recorded;
            // An ended activation is not renewed (its principal activates again),
            // so it goes once its end is recorded; other schedules stay while
            // they can be renewed.
            let remove = stored.schedule.activated_from.is_some()
                || stored
                    .schedule
                    .window
                    .end
                    .is_some_and(|end| end.plus_seconds(KEPT_AFTER_END_SECONDS) <= now);
            if remove {
                tx.delete(tenant, Kind::PimSchedule, current.id, Some(current.version))
                    .await?;
                round.forgotten += 1;
            } else {
                stored.end_recorded = true;
                let next =
                    codec::next_version(&current, now, role_schedules::keys(&stored), &stored)?;
                tx.update(tenant, &next).await?;
            }
            if first_notice {
                round.expired += 1;
            }
            let event = EventDraft::new(AuditAction::RoleScheduleExpire)
                .on(Kind::PimSchedule, current.id, &name)
                .details(json!({
                    "scheduleId": current.id,
                    "kind": stored.schedule.kind,
                    "name": name,
                    "target": stored.target,
                    "principalId": stored.principal_id,
                    "endDateTime": stored.schedule.window.end,
                    "activatedFrom": stored.schedule.activated_from,
                    "ended": first_notice,
                    "removed": remove,
                }));
            self.commit(tx, &ctx, event).await?;
        }
        round.timed_out = self.time_out_requests(tenant).await?;
        Ok(round)
    }

    /// Records the requests whose wait for approval ended without an answer.
    async fn time_out_requests(&self, tenant: TenantId) -> ServiceResult<usize> {
        let ctx = system_context(tenant, "privileged identity management");
        let now = self.now();
        let mut reader = self.reader().await?;
        let query = ListQuery {
            limit: PER_ROUND as u32,
            prefix: Some("p|".to_string()),
            ..Default::default()
        };
        let waiting = reader.list(tenant, Kind::PimRequest, &query).await?;
        drop(reader);
        let mut timed_out = 0;
        for record in waiting {
            if !super::requests::time_out(self, &ctx, record.id, now).await? {
                continue;
            }
            timed_out += 1;
        }
        Ok(timed_out)
    }
}

/// Whether a schedule has something for the round to do: its end is past and
/// not yet recorded, or it is past renewal (or an ended activation).
fn due(stored: &role_schedules::RoleSchedule, now: tessera_core::Timestamp) -> bool {
    let Some(end) = stored.schedule.window.end else {
        return false;
    };
    end <= now
        && (!stored.end_recorded
            || stored.schedule.activated_from.is_some()
            || end.plus_seconds(KEPT_AFTER_END_SECONDS) <= now)
}

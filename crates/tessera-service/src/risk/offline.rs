//! Offline detections (the `risk-offline` job): the sign-in log read after
//! the fact, in the order of its numbers (the SIEM export's), from a cursor of
//! its own.
//!
//! - `unlikelyTravel` (medium): a user's successful sign-ins of the last day,
//!   placed by the operator's City database, farther apart than a day's normal
//!   travel allows while neither place is one of the user's familiar
//!   countries (`tessera_risk::geo::unlikely_travel`). A pair is judged once:
//!   when its later sign-in is read.
//! - `newCountry` (low): a successful sign-in from a country none of the
//!   tenant's users signed in from in the last 90 days, once the tenant has
//!   learnt for a week (`tessera_risk::geo::new_country`). The tenant's
//!   countries are one session-store row, `risk-countries`.
//!
//! - `sharedDevice` (low): a registered device (the sign-in's
//!   `deviceDetail`) through which a fifth account signed in within a day
//!   (`tessera_risk::device`); each device's accounts are a session-store row,
//!   `risk-device:{id}`, kept two days.
//!
//! Without a City database the travel and countries have nothing to go on.
//! A tenant's first round starts at the log's end.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tessera_core::{TenantId, Timestamp};
use tessera_risk::device::DeviceAccounts;
use tessera_risk::geo::{self, Located};
use tessera_store::{NumberedLog, SessionRow, SignInQuery};
use uuid::Uuid;

use super::{Risk, SignInFacts};
use crate::error::ServiceResult;
use crate::sign_in::SignInEntry;

/// The offline reader's cursor (not under `risk:`, which the purge ages out).
const CURSOR: &str = "risk-offline:signIns";
/// The tenant's countries.
const COUNTRIES: &str = "risk-countries";
/// Entries read per batch; a round reads batches for at most this long (well
/// inside the job's lease), so a busy tenant's log is read as fast as it grows.
const BATCH: u32 = 1000;
const ROUND: std::time::Duration = std::time::Duration::from_secs(10);
/// A country not seen for this long is forgotten.
const COUNTRY_DAYS: i64 = 90;
/// The prefix of a device's accounts row.
const DEVICE_PREFIX: &str = "risk-device:";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Countries {
    /// When the tenant began learning.
    since: Option<Timestamp>,
    /// Country → when a sign-in last came from it.
    seen: BTreeMap<String, Timestamp>,
}

impl Risk {
    /// One offline round for a tenant: how many detections it recorded.
    pub async fn offline_round(&self, tenant: TenantId) -> ServiceResult<usize> {
        let located = self.geo.get().is_some();
        let now = self.now();
        let Some(mut after) = self
            .store
            .counter_get(tenant, CURSOR)
            .await?
            .map(|c| c.value)
        else {
            let head = self
                .store
                .numbered_head(tenant, NumberedLog::SignIns)
                .await?;
            self.store
                .counter_advance(tenant, CURSOR, head, now)
                .await?;
            return Ok(0);
        };
        let mut found = 0;
        let started = std::time::Instant::now();
        while started.elapsed() < ROUND {
            let rows = self.store.sign_in_scan(tenant, after, BATCH).await?;
            let Some((last, _)) = rows.last() else { break };
            let last = *last;
            let mut successes: Vec<SignInEntry> = Vec::new();
            for (_, row) in &rows {
                if row.result != "success" || row.user_id.is_none() {
                    continue;
                }
                match crate::sign_in::log_storage::entry_of(row) {
                    Ok(entry) if entry.sign_in_event_type == "interactiveUser" => {
                        successes.push(entry)
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%tenant, %error, "a sign-in entry is not judged offline")
                    }
                }
            }
            if located {
                found += self.travel(tenant, &successes).await?;
                found += self.countries(tenant, &successes).await?;
            }
            found += self.shared_devices(tenant, &successes).await?;
            self.store
                .counter_advance(tenant, CURSOR, last, self.now())
                .await?;
            after = last;
            if rows.len() < BATCH as usize {
                break;
            }
        }
        Ok(found)
    }

    /// Records an offline detection of a sign-in.
    async fn record_offline(
        &self,
        tenant: TenantId,
        entry: &SignInEntry,
        detection: &tessera_risk::Detection,
    ) -> ServiceResult<()> {
        self.record(
            tenant,
            &SignInFacts::of(entry),
            std::slice::from_ref(detection),
        )
        .await
    }

    /// Writes a row of the offline round's (made anew, or over the version
    /// read), kept `seconds` from now.
    async fn keep_row(
        &self,
        tenant: TenantId,
        (key, stored): (String, Option<SessionRow>),
        data: String,
        seconds: i64,
    ) -> Result<(), tessera_store::StoreError> {
        let now = self.now();
        match stored {
            Some(mut row) => {
                row.version += 1;
                row.data = data;
                row.last_seen = now;
                row.expires = now.plus_seconds(seconds);
                self.store.session_update(tenant, &row).await
            }
            None => {
                let row = SessionRow::transient(key, now, seconds, data);
                self.store.session_insert(tenant, &row).await
            }
        }
    }

    /// Unlikely travel for each user with new successes.
    async fn travel(&self, tenant: TenantId, successes: &[SignInEntry]) -> ServiceResult<usize> {
        let mut by_user: BTreeMap<Uuid, Vec<&SignInEntry>> = BTreeMap::new();
        for entry in successes {
            if let Some(user) = entry.user_id {
                by_user.entry(user).or_default().push(entry);
            }
        }
        let mut found = 0;
        for (user, new) in by_user {
            let new_ids: BTreeSet<String> = new.iter().map(|e| e.id.to_string()).collect();
            let first = new
                .iter()
                .map(|e| e.created_date_time)
                .min()
                .unwrap_or_else(|| self.now());
            let latest = new
                .iter()
                .map(|e| e.created_date_time)
                .max()
                .unwrap_or(first);
            // The day before the first new one, and the new ones.
            let earlier = self
                .store
                .sign_in_query(
                    tenant,
                    &SignInQuery {
                        user_id: Some(user),
                        result: Some("success".into()),
                        since: Some(first.plus_seconds(-86_400)),
                        until: Some(latest),
                        limit: 500,
                        ..Default::default()
                    },
                )
                .await?;
            let mut located: Vec<Located> = Vec::new();
            let mut seen = BTreeSet::new();
            for row in &earlier {
                if seen.insert(row.id)
                    && let Ok(entry) = crate::sign_in::log_storage::entry_of(row)
                {
                    located.extend(self.located(
                        entry.id,
                        entry.created_date_time,
                        entry.client_address.as_deref(),
                    ));
                }
            }
            for entry in &new {
                if seen.insert(entry.id) {
                    located.extend(self.located(
                        entry.id,
                        entry.created_date_time,
                        entry.client_address.as_deref(),
                    ));
                }
            }
            located.sort_by_key(|l| l.at);
            let familiar = self.familiar_countries(tenant, user).await?;
            for detection in geo::unlikely_travel(&located, &familiar) {
                let to = detection.evidence["to"]["signIn"]
                    .as_str()
                    .unwrap_or_default();
                if !new_ids.contains(to) {
                    continue;
                }
                let Some(entry) = new.iter().find(|e| e.id.to_string() == to) else {
                    continue;
                };
                self.record_offline(tenant, entry, &detection).await?;
                found += 1;
            }
        }
        Ok(found)
    }

    /// Devices many accounts signed in through, in the order the sign-ins
    /// came. A device's accounts are written first (over the version read),
    /// and its detections recorded only once they are: a round retried, or
    /// racing another node's, never tells an account twice (it may, at
    /// worst, not tell it).
    async fn shared_devices(
        &self,
        tenant: TenantId,
        successes: &[SignInEntry],
    ) -> ServiceResult<usize> {
        let mut by_device: BTreeMap<Uuid, Vec<&SignInEntry>> = BTreeMap::new();
        for entry in successes {
            if let (Some(device), Some(_)) = (&entry.device_detail, entry.user_id) {
                by_device.entry(device.device_id).or_default().push(entry);
            }
        }
        let mut found = 0;
        for (device, mut entries) in by_device {
            entries.sort_by_key(|e| e.created_date_time);
            let key = format!("{DEVICE_PREFIX}{device}");
            let stored = self.store.session_get(tenant, &key).await?;
            let mut accounts: DeviceAccounts = stored
                .as_ref()
                .and_then(|row| serde_json::from_str(&row.data).ok())
                .unwrap_or_default();
            let before = accounts.clone();
            let device_name = device.to_string();
            let mut told = Vec::new();
            for entry in entries {
                let Some(user) = entry.user_id else { continue };
                let detection =
                    accounts.signed_in(&device_name, &user.to_string(), entry.created_date_time);
                if let Some(detection) = detection {
                    told.push((entry, detection));
                }
            }
            if accounts == before {
                continue;
            }
            let data = serde_json::to_string(&accounts).unwrap_or_default();
            let keep = 2 * tessera_risk::device::WINDOW_SECONDS;
            if let Err(error) = self.keep_row(tenant, (key, stored), data, keep).await {
                tracing::debug!(%tenant, %error, "a device's accounts were not kept");
                continue;
            }
            for (entry, detection) in told {
                self.record_offline(tenant, entry, &detection).await?;
                found += 1;
            }
        }
        Ok(found)
    }

    /// New countries for the tenant, in the order the sign-ins came.
    async fn countries(&self, tenant: TenantId, successes: &[SignInEntry]) -> ServiceResult<usize> {
        let now = self.now();
        let stored = self.store.session_get(tenant, COUNTRIES).await?;
        let mut countries: Countries = stored
            .as_ref()
            .and_then(|row| serde_json::from_str(&row.data).ok())
            .unwrap_or_default();
        let since = *countries.since.get_or_insert(now);
        let before = countries.seen.clone();
        countries
            .seen
            .retain(|_, last| now.unix_seconds() - last.unix_seconds() < COUNTRY_DAYS * 86_400);
        let mut found = 0;
        let mut ordered: Vec<&SignInEntry> = successes.iter().collect();
        ordered.sort_by_key(|e| e.created_date_time);
        for entry in ordered {
            let Some(here) = self.located(
                entry.id,
                entry.created_date_time,
                entry.client_address.as_deref(),
            ) else {
                continue;
            };
            let Some(country) = here.place.country.clone() else {
                continue;
            };
            let known: Vec<String> = countries.seen.keys().cloned().collect();
            if let Some(detection) = geo::new_country(&known, since, now, &here) {
                self.record_offline(tenant, entry, &detection).await?;
                found += 1;
            }
            let last = countries
                .seen
                .entry(country.to_ascii_uppercase())
                .or_insert(entry.created_date_time);
            *last = (*last).max(entry.created_date_time);
        }
        // Written when a country came or went, or a day after the last write.
        let stale = stored
            .as_ref()
            .is_none_or(|row| now.unix_seconds() - row.last_seen.unix_seconds() >= 86_400);
        if before.keys().ne(countries.seen.keys()) || stale {
            let data = serde_json::to_string(&countries).unwrap_or_default();
            let result = self
                .keep_row(tenant, (COUNTRIES.to_string(), stored), data, 400 * 86_400)
                .await;
            if let Err(error) = result {
                // Another node's round wrote first: the next round learns again.
                tracing::debug!(%tenant, %error, "the tenant's countries were not kept");
            }
        }
        Ok(found)
    }
}

//! A user's sign-in profile: their baseline of familiar properties and where
//! their last successful sign-in came from, for the unfamiliar-properties and
//! impossible-travel detections.
//!
//! It is kept in the session store (a row whose id is `risk-profile:{user}`,
//! owned by no user, so it outlives the user's sessions and is never shown as
//! one), not in the directory: every successful sign-in changes it, and the
//! audit chain's lock is no place for that. The row expires
//! [`tessera_risk::baseline::FORGET_DAYS`] after the last sign-in; the daily
//! recomputation forgets values not seen for as long.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tessera_core::{TenantId, Timestamp};
use tessera_risk::Detection;
use tessera_risk::baseline::{self, Baseline, Properties};
use tessera_risk::geo::{self, Located, Place};
use tessera_store::SessionRow;
use uuid::Uuid;

use super::Risk;
use crate::error::{ServiceError, ServiceResult};

/// Where an address is, as the operator's city (and ASN) databases say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub city: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// How far off the position may be, in kilometres.
    pub accuracy_km: Option<f64>,
    /// The autonomous system (network operator) announcing the address.
    pub asn: Option<u32>,
}

/// The operator's geolocation databases (the binary reads MaxMind-format
/// City and ASN files).
pub trait GeoLookup: Send + Sync {
    fn locate(&self, ip: IpAddr) -> Option<GeoInfo>;
}

/// A user's profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    baseline: Baseline,
    /// The last successful sign-in with a known place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<Located>,
}

/// What a successful sign-in showed of itself.
pub(crate) struct Seen<'a> {
    pub sign_in: Uuid,
    pub client_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// Whether the sign-in was found risky already (its address, its
    /// failures).
    pub risky: bool,
}

/// The prefix of users' profile rows.
const PROFILE_PREFIX: &str = "risk-profile:";

fn profile_key(user: Uuid) -> String {
    format!("{PROFILE_PREFIX}{user}")
}

/// How long a default accuracy is assumed when the database gives none (km).
const DEFAULT_ACCURACY_KM: f64 = 100.0;
/// A sign-in from the same place with nothing new, this soon after the
/// profile was last written, is not written again: the place and time kept
/// are at most this much older than the latest (travel from there is then
/// computed a little slower than it was), and the baseline counts repeats
/// once per such period (learning takes sign-ins spread over days anyway).
pub(super) const REWRITE_SECONDS: i64 = 15 * 60;

impl Risk {
    /// Sets the operator's geolocation (once, at start).
    pub fn set_geo(&self, geo: Arc<dyn GeoLookup>) {
        if self.geo.set(geo).is_err() {
            tracing::warn!("the geolocation was set already; the first stays");
        }
    }

    pub(super) fn locate(&self, client_address: Option<&str>) -> Option<GeoInfo> {
        let ip = client_address?.parse::<IpAddr>().ok()?;
        self.geo.get()?.locate(ip)
    }

    /// A sign-in's place, when its address has one.
    pub(super) fn located(
        &self,
        sign_in: Uuid,
        at: Timestamp,
        client_address: Option<&str>,
    ) -> Option<Located> {
        let info = self.locate(client_address)?;
        match (info.latitude, info.longitude) {
            (Some(latitude), Some(longitude)) if latitude.is_finite() && longitude.is_finite() => {
                Some(Located {
                    sign_in: sign_in.to_string(),
                    at,
                    place: Place {
                        latitude,
                        longitude,
                        accuracy_km: info.accuracy_km.unwrap_or(DEFAULT_ACCURACY_KM),
                        country: info.country,
                        city: info.city,
                    },
                })
            }
            _ => None,
        }
    }

    /// The countries a user's profile knows (where they sign in from).
    pub(super) async fn familiar_countries(
        &self,
        tenant: TenantId,
        user: Uuid,
    ) -> ServiceResult<Vec<String>> {
        let Some(row) = self.store.session_get(tenant, &profile_key(user)).await? else {
            return Ok(Vec::new());
        };
        let profile: Option<Profile> = serde_json::from_str(&row.data).ok();
        Ok(profile
            .and_then(|p| p.baseline.values.get("country").cloned())
            .map(|countries| countries.into_keys().collect())
            .unwrap_or_default())
    }

    /// The detections a successful sign-in's properties and place give
    /// against the user's profile (unfamiliar properties, impossible travel);
    /// the profile then learns the sign-in. A profile changed meanwhile by a
    /// sign-in on another node is read again once; a second clash loses this
    /// sign-in's lesson, not its detections.
    pub(crate) async fn profile_detections(
        &self,
        tenant: TenantId,
        user: Uuid,
        seen: &Seen<'_>,
    ) -> ServiceResult<Vec<Detection>> {
        // Only finite coordinates place a sign-in (a NaN would not survive JSON).
        let now = self.now();
        let info = self.locate(seen.client_address).unwrap_or_default();
        let (browser, platform) = seen
            .user_agent
            .map(baseline::browser_and_platform)
            .unwrap_or((None, None));
        let properties = Properties {
            country: info.country.clone(),
            asn: info.asn,
            subnet: seen
                .client_address
                .and_then(tessera_authn::lockout::network_of),
            device: None,
            browser,
            platform,
        };
        let here = match (info.latitude, info.longitude) {
            (Some(latitude), Some(longitude)) if latitude.is_finite() && longitude.is_finite() => {
                Some(Located {
                    sign_in: seen.sign_in.to_string(),
                    at: now,
                    place: Place {
                        latitude,
                        longitude,
                        accuracy_km: info.accuracy_km.unwrap_or(DEFAULT_ACCURACY_KM),
                        country: info.country.clone(),
                        city: info.city.clone(),
                    },
                })
            }
            _ => None,
        };
        let key = profile_key(user);
        let mut found = Vec::new();
        for attempt in 0..2 {
            let stored = self.store.session_get(tenant, &key).await?;
            // One past its end is forgotten (the purge may not have come yet).
            let mut profile = stored
                .as_ref()
                .filter(|row| row.expires > now)
                .and_then(|row| serde_json::from_str::<Profile>(&row.data).ok())
                .unwrap_or_else(|| Profile {
                    baseline: Baseline::new(now),
                    last: None,
                });
            profile.baseline.forget_old(now);
            if attempt == 0 {
                found.extend(profile.baseline.unfamiliar(&properties, now));
                if let (Some(previous), Some(current)) = (&profile.last, &here) {
                    found.extend(geo::impossible_travel(previous, current));
                }
            }
            let same_place = match (&profile.last, &here) {
                (_, None) => true,
                (Some(last), Some(now_at)) => {
                    last.place.latitude == now_at.place.latitude
                        && last.place.longitude == now_at.place.longitude
                }
                (None, Some(_)) => false,
            };
            let recent = stored.as_ref().is_some_and(|row| {
                row.expires > now
                    && now.unix_seconds() - row.last_seen.unix_seconds() < REWRITE_SECONDS
            });
            if recent && same_place && profile.baseline.knows_all(&properties) {
                break;
            }
            // A risky sign-in teaches nothing: an attacker's success must not
            // make their country and network the user's. Its place still
            // counts for the next sign-in's travel.
            if found.is_empty() && !seen.risky {
                profile.baseline.observe(&properties, now);
            }
            if here.is_some() {
                profile.last = here.clone();
            }
            match self.save_profile(tenant, &key, stored, &profile, now).await {
                Err(ServiceError::VersionMismatch { .. } | ServiceError::Conflict { .. })
                    if attempt == 0 => {}
                Err(error) => {
                    tracing::warn!(%tenant, %error, "cannot keep a sign-in profile");
                    break;
                }
                Ok(()) => break,
            }
        }
        Ok(found)
    }

    /// Writes a profile (a user's, a workload's baseline) in its row, made
    /// anew or changed from the version read (`stored`).
    pub(super) async fn save_profile<T: Serialize>(
        &self,
        tenant: TenantId,
        key: &str,
        stored: Option<SessionRow>,
        profile: &T,
        now: Timestamp,
    ) -> ServiceResult<()> {
        let data =
            serde_json::to_string(profile).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let expires = now.plus_seconds(baseline::FORGET_DAYS * 86_400);
        match stored {
            Some(mut row) => {
                row.version += 1;
                row.data = data;
                row.last_seen = now;
                row.expires = expires;
                self.store.session_update(tenant, &row).await?;
            }
            None => {
                let row = SessionRow {
                    id: key.to_string(),
                    user_id: None,
                    created: now,
                    last_seen: now,
                    expires,
                    revoked: None,
                    version: 1,
                    data,
                };
                self.store.session_insert(tenant, &row).await?;
            }
        }
        Ok(())
    }

    /// The daily recomputation (the `risk-baselines` job): every baseline of
    /// the tenant (users' profiles, workloads') forgets the values not seen
    /// for [`baseline::FORGET_DAYS`] even when its principal no longer signs
    /// in; one left with nothing learns again from its next sign-in. Only a
    /// baseline that lost values is written, and only over the version read:
    /// a row a sign-in changed meanwhile is left to it (it forgets the same
    /// way). Rows go when they expire (the purge). How many changed.
    pub async fn recompute_baselines(&self, tenant: TenantId) -> ServiceResult<usize> {
        let users = self
            .recompute::<Profile>(tenant, PROFILE_PREFIX, |p| &mut p.baseline)
            .await?;
        let workloads = self
            .recompute::<Baseline>(tenant, super::workloads::WORKLOAD_PREFIX, |b| b)
            .await?;
        Ok(users + workloads)
    }

    async fn recompute<T: Serialize + serde::de::DeserializeOwned>(
        &self,
        tenant: TenantId,
        prefix: &str,
        baseline_of: fn(&mut T) -> &mut Baseline,
    ) -> ServiceResult<usize> {
        const PAGE: u32 = 500;
        let now = self.now();
        let mut after: Option<String> = None;
        let mut changed = 0;
        loop {
            let rows = self
                .store
                .sessions_by_prefix(tenant, prefix, after.as_deref(), PAGE)
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id.clone());
            let full = rows.len() == PAGE as usize;
            for mut row in rows {
                let Ok(mut value) = serde_json::from_str::<T>(&row.data) else {
                    continue;
                };
                let baseline = baseline_of(&mut value);
                let count = |b: &Baseline| b.values.values().map(BTreeMap::len).sum::<usize>();
                let before = count(baseline);
                baseline.forget_old(now);
                if count(baseline) == before {
                    continue;
                }
                row.version += 1;
                row.data = serde_json::to_string(&value)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                match self.store.session_update(tenant, &row).await {
                    Ok(()) => changed += 1,
                    Err(error) => {
                        tracing::debug!(%tenant, %error, "a baseline changed meanwhile")
                    }
                }
            }
            if !full {
                break;
            }
        }
        Ok(changed)
    }
}

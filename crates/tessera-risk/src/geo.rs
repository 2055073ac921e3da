//! Travel between sign-ins: impossible travel (real time, against the last
//! successful sign-in) and unlikely travel (offline, over a day's sign-ins).
//!
//! Places come from the operator's city database with an accuracy radius; the
//! distance counted is the great-circle distance less both radii, so an
//! imprecise location never makes travel look faster than it was.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::Timestamp;

use crate::{Detection, EventType, RiskLevel};

/// The Earth's mean radius, in kilometres.
const EARTH_KM: f64 = 6371.0;
/// Faster than this (km/h) between two sign-ins is faster than a plane.
pub const IMPOSSIBLE_KMH: f64 = 1000.0;
/// Closer than this (km, after the accuracy radii) is never travel.
pub const MIN_KM: f64 = 500.0;
/// Offline: sign-ins this far apart within a day, faster than this, when
/// neither place is one the user signs in from.
pub const UNLIKELY_KM: f64 = 1500.0;
pub const UNLIKELY_KMH: f64 = 500.0;

/// Where a sign-in came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Place {
    pub latitude: f64,
    pub longitude: f64,
    /// How far off the position may be, in kilometres.
    pub accuracy_km: f64,
    /// ISO 3166-1 alpha-2, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
}

impl Place {
    fn valid(&self) -> bool {
        self.latitude.is_finite()
            && self.longitude.is_finite()
            && (-90.0..=90.0).contains(&self.latitude)
            && (-180.0..=180.0).contains(&self.longitude)
            && self.accuracy_km.is_finite()
            && self.accuracy_km >= 0.0
    }
}

/// A successful sign-in's place and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Located {
    /// The sign-in log entry's id.
    pub sign_in: String,
    pub at: Timestamp,
    pub place: Place,
}

/// Great-circle distance in kilometres (haversine).
pub fn distance_km(a: &Place, b: &Place) -> f64 {
    let (lat1, lat2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.longitude - a.longitude).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_KM * h.sqrt().min(1.0).asin()
}

/// The distance that certainly lies between two places, and the speed it
/// implies (km/h; at least a minute is assumed between them).
fn travel(from: &Located, to: &Located) -> Option<(f64, f64)> {
    if !from.place.valid() || !to.place.valid() {
        return None;
    }
    let km = (distance_km(&from.place, &to.place) - from.place.accuracy_km - to.place.accuracy_km)
        .max(0.0);
    let seconds = to.at.unix_micros().abs_diff(from.at.unix_micros()) as f64 / 1e6;
    let hours = seconds.max(60.0) / 3600.0;
    Some((km, km / hours))
}

fn evidence(from: &Located, to: &Located, km: f64, kmh: f64) -> serde_json::Value {
    json!({
        "from": from, "to": to,
        "distanceKm": km.round(), "speedKmh": kmh.round(),
    })
}

/// Impossible travel: `current` (a successful sign-in) is farther than
/// [`MIN_KM`] from `previous` (the user's last successful one) and would have
/// needed more than [`IMPOSSIBLE_KMH`]. High when it would have needed more
/// than three times that.
pub fn impossible_travel(previous: &Located, current: &Located) -> Option<Detection> {
    let (km, kmh) = travel(previous, current)?;
    if km <= MIN_KM || kmh <= IMPOSSIBLE_KMH {
        return None;
    }
    let level = if kmh > 3.0 * IMPOSSIBLE_KMH {
        RiskLevel::High
    } else {
        RiskLevel::Medium
    };
    Some(Detection::new(
        EventType::ImpossibleTravel,
        level,
        evidence(previous, current, km, kmh),
    ))
}

/// Unlikely travel, offline, over one user's successful sign-ins in time
/// order: each pair within a day that is farther apart than [`UNLIKELY_KM`]
/// at more than [`UNLIKELY_KMH`], unless both countries are among `familiar`
/// (a user who works from two countries is not travelling). Pairs already
/// impossible are left to the real-time detection.
pub fn unlikely_travel(sign_ins: &[Located], familiar: &[String]) -> Vec<Detection> {
    let mut found = Vec::new();
    for pair in sign_ins.windows(2) {
        let [from, to] = pair else { continue };
        let day: u64 = 24 * 3600 * 1_000_000;
        if to.at.unix_micros().abs_diff(from.at.unix_micros()) > day {
            continue;
        }
        let Some((km, kmh)) = travel(from, to) else {
            continue;
        };
        let known = |place: &Place| {
            place
                .country
                .as_ref()
                .is_some_and(|c| familiar.iter().any(|f| f.eq_ignore_ascii_case(c)))
        };
        if km > UNLIKELY_KM
            && kmh > UNLIKELY_KMH
            && !(km > MIN_KM && kmh > IMPOSSIBLE_KMH)
            && !(known(&from.place) && known(&to.place))
        {
            found.push(Detection::new(
                EventType::UnlikelyTravel,
                RiskLevel::Medium,
                evidence(from, to, km, kmh),
            ));
        }
    }
    found
}

/// A tenant learns where its users sign in from for this long before a new
/// country is a detection.
pub const TENANT_LEARNING_DAYS: i64 = 7;

/// New country for the tenant, offline (`newCountry`, low): a successful
/// sign-in from a country none of the tenant's users signed in from lately
/// (`known`), once the tenant has been learning since `learning_since` for
/// [`TENANT_LEARNING_DAYS`].
pub fn new_country(
    known: &[String],
    learning_since: Timestamp,
    now: Timestamp,
    sign_in: &Located,
) -> Option<Detection> {
    let country = sign_in.place.country.as_deref()?;
    let learnt =
        now.unix_seconds() - learning_since.unix_seconds() >= TENANT_LEARNING_DAYS * 86_400;
    if !learnt || known.iter().any(|k| k.eq_ignore_ascii_case(country)) {
        return None;
    }
    Some(Detection::new(
        EventType::NewCountry,
        RiskLevel::Low,
        json!({ "country": country, "signIn": sign_in.sign_in, "place": sign_in.place }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_country_new_to_the_tenant_after_it_learnt() {
        let sydney = at("Sydney", -33.87, 151.21, "AU", 0);
        let since = Timestamp::from_unix_micros(sydney.at.unix_micros() - 8 * 86_400_000_000);
        let known = vec!["FR".to_string(), "de".to_string()];
        let found = new_country(&known, since, sydney.at, &sydney).expect("new");
        assert_eq!(found.event_type, EventType::NewCountry);
        assert_eq!(found.level, RiskLevel::Low);
        assert_eq!(found.evidence["country"], "AU");
        let berlin = at("Berlin", 52.52, 13.40, "DE", 0);
        assert!(
            new_country(&known, since, berlin.at, &berlin).is_none(),
            "known, any case"
        );
        let learning = Timestamp::from_unix_micros(sydney.at.unix_micros() - 86_400_000_000);
        assert!(
            new_country(&known, learning, sydney.at, &sydney).is_none(),
            "still learning"
        );
    }

    fn at(city: &str, lat: f64, lon: f64, country: &str, minutes: i64) -> Located {
        Located {
            sign_in: city.into(),
            at: Timestamp::from_unix_micros(1_700_000_000_000_000 + minutes * 60_000_000),
            place: Place {
                latitude: lat,
                longitude: lon,
                accuracy_km: 20.0,
                country: Some(country.into()),
                city: Some(city.into()),
            },
        }
    }

    #[test]
    fn distances_are_great_circles() {
        let paris = at("Paris", 48.8566, 2.3522, "FR", 0);
        let new_york = at("New York", 40.7128, -74.0060, "US", 0);
        let km = distance_km(&paris.place, &new_york.place);
        assert!((5800.0..5900.0).contains(&km), "{km}");
        assert_eq!(distance_km(&paris.place, &paris.place), 0.0);
        let antipode = Place {
            latitude: -48.8566,
            longitude: -177.6478,
            ..paris.place.clone()
        };
        assert!((distance_km(&paris.place, &antipode) - 20015.0).abs() < 5.0);
    }

    #[test]
    fn faster_than_a_plane_is_impossible() {
        let paris = at("Paris", 48.8566, 2.3522, "FR", 0);
        // New York an hour later: about 5,800 km/h.
        let new_york = at("New York", 40.7128, -74.0060, "US", 60);
        let found = impossible_travel(&paris, &new_york).unwrap_or_else(|| panic!("none"));
        assert_eq!(found.event_type, EventType::ImpossibleTravel);
        assert_eq!(found.level, RiskLevel::High);
        // Eight hours later: a flight.
        let flown = at("New York", 40.7128, -74.0060, "US", 8 * 60);
        assert!(impossible_travel(&paris, &flown).is_none());
        // Lyon ten minutes later: near enough, whatever the speed.
        let lyon = at("Lyon", 45.7640, 4.8357, "FR", 10);
        assert!(impossible_travel(&paris, &lyon).is_none());
        // Berlin 40 minutes later: 880 km at 1,260 km/h, medium.
        let berlin = at("Berlin", 52.5200, 13.4050, "DE", 40);
        assert_eq!(
            impossible_travel(&paris, &berlin).map(|d| d.level),
            Some(RiskLevel::Medium)
        );
        // Nonsense coordinates are no evidence.
        let mut nowhere = berlin.clone();
        nowhere.place.latitude = f64::NAN;
        assert!(impossible_travel(&paris, &nowhere).is_none());
        // Wide accuracy radii shrink the distance.
        let mut vague = berlin.clone();
        vague.place.accuracy_km = 500.0;
        assert!(impossible_travel(&paris, &vague).is_none());
    }

    #[test]
    fn unlikely_travel_is_offline_and_spares_familiar_countries() {
        let paris = at("Paris", 48.8566, 2.3522, "FR", 0);
        // Moscow (2,480 km) four hours later: 600 km/h.
        let moscow = at("Moscow", 55.7558, 37.6173, "RU", 240);
        let found = unlikely_travel(&[paris.clone(), moscow.clone()], &["FR".into()]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].timing, crate::Timing::Offline);
        assert!(
            unlikely_travel(
                &[paris.clone(), moscow.clone()],
                &["FR".into(), "RU".into()]
            )
            .is_empty()
        );
        // Two days apart: no pair.
        let later = at("Moscow", 55.7558, 37.6173, "RU", 48 * 60);
        assert!(unlikely_travel(&[paris, later], &[]).is_empty());
    }
}

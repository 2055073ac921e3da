//! Time: one timestamp type with microsecond precision, always UTC.
//!
//! Stored as signed microseconds since the Unix epoch (the same integer on SQLite and
//! PostgreSQL), written on the wire as RFC 3339.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_unix_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    pub fn unix_micros(self) -> i64 {
        self.0
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, TimestampError> {
        let parsed =
            OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimestampError::Malformed)?;
        let nanos = parsed.unix_timestamp_nanos();
        let micros = i64::try_from(nanos / 1_000).map_err(|_| TimestampError::OutOfRange)?;
        Ok(Timestamp(micros))
    }

    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(dt) => dt.format(&Rfc3339).unwrap_or_else(|_| self.0.to_string()),
            Err(_) => self.0.to_string(),
        }
    }

    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds.saturating_mul(1_000_000)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("not an RFC 3339 date-time (expected e.g. 2026-01-31T09:00:00Z)")]
    Malformed,
    #[error("date-time out of the supported range")]
    OutOfRange,
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

/// Where "now" comes from. Domain code takes times as parameters; the services ask a
/// `Clock`, so tests can pin time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp(i64::try_from(nanos / 1_000).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_microseconds() {
        let ts = Timestamp::parse_rfc3339("2026-11-22T10:11:12.123456Z").unwrap();
        assert_eq!(ts.to_rfc3339(), "2026-11-22T10:11:12.123456Z");
        assert_eq!(Timestamp::parse_rfc3339(&ts.to_rfc3339()).unwrap(), ts);
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let ts = Timestamp::parse_rfc3339("2026-11-22T12:00:00+02:00").unwrap();
        assert_eq!(ts.to_rfc3339(), "2026-11-22T10:00:00Z");
    }

    #[test]
    fn malformed_is_refused() {
        assert_eq!(
            Timestamp::parse_rfc3339("yesterday"),
            Err(TimestampError::Malformed)
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-13-01T00:00:00Z"),
            Err(TimestampError::Malformed)
        );
    }
}

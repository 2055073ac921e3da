//! Identifiers.
//!
//! Directory objects are identified by random (v4) UUIDs, like Entra object ids.
//! Tenants get their own newtype so a tenant id can never be passed where an
//! object id is expected. So do applications' client ids ([`AppId`], Entra's
//! `appId`): an application and its service principal each have an object id
//! besides, and taking one for the other (a service principal's object id where a
//! policy names application ids, a client id where a grant names an object) is a
//! security bug the compiler now refuses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl TenantId {
    pub fn new_random() -> TenantId {
        TenantId(Uuid::new_v4())
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for TenantId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(TenantId)
    }
}

/// An application's client id (`appId`, OAuth `client_id`), distinct from the
/// object ids of the application and its service principals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppId(Uuid);

impl AppId {
    pub fn new_random() -> AppId {
        AppId(Uuid::new_v4())
    }

    /// Says that this UUID is an application's client id (not an object id): the
    /// one place a plain UUID becomes one, besides parsing.
    pub const fn from_uuid(id: Uuid) -> AppId {
        AppId(id)
    }

    /// The client id as a UUID (for storage keys and claims).
    pub fn uuid(self) -> Uuid {
        self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for AppId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(AppId)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for AppId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for AppId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_id_reads_and_writes_as_a_plain_uuid() {
        let id = AppId(Uuid::from_u128(42));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.uuid()));
        assert_eq!(serde_json::from_str::<AppId>(&json).unwrap(), id);
        assert_eq!(id.to_string().parse::<AppId>().unwrap(), id);
        assert!("not-a-uuid".parse::<AppId>().is_err());
    }
}

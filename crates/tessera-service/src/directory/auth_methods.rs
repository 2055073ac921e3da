//! A user's stored authentication methods: `Kind::AuthMethod` records, changed as
//! audited directory changes. Sign-in verifies and registers them; access reads
//! them (whether a user has a second factor); deleting a user deletes them.

use serde::{Deserialize, Serialize};
use tessera_authn::strength::Mode;
use tessera_authn::tap::StoredPass;
use tessera_authn::totp;
use tessera_core::{TenantId, Timestamp};
use tessera_store::{Kind, Reader, Record, WriteTx};
use uuid::Uuid;

use crate::codec::{self, Keys};
use crate::error::ServiceResult;

/// What is stored for one method. Secrets are hashed (password, pass) or sealed
/// (TOTP seed); the passkey holds only a public key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum MethodData {
    #[serde(rename_all = "camelCase")]
    Password { hash: String },
    #[serde(rename_all = "camelCase")]
    SoftwareOath {
        display_name: String,
        sealed_secret: String,
        algorithm: totp::Algorithm,
        digits: u32,
        period: u64,
    },
    #[serde(rename_all = "camelCase")]
    Fido2 {
        display_name: String,
        credential: String,
        credential_id: String,
        aaguid: Uuid,
        backup_eligible: bool,
    },
    #[serde(rename_all = "camelCase")]
    TemporaryAccessPass {
        #[serde(flatten)]
        pass: StoredPass,
        issued_by: Option<Uuid>,
    },
    /// A value a certificate field is matched against (`X509:<SKI>...`).
    #[serde(rename_all = "camelCase")]
    CertificateUserId { value: String },
}

impl MethodData {
    pub fn type_name(&self) -> &'static str {
        match self {
            MethodData::Password { .. } => "password",
            MethodData::SoftwareOath { .. } => "softwareOath",
            MethodData::Fido2 { .. } => "fido2",
            MethodData::TemporaryAccessPass { .. } => "temporaryAccessPass",
            MethodData::CertificateUserId { .. } => "certificateUserId",
        }
    }

    /// The mode this method counts as in strengths.
    pub fn mode(&self) -> Mode {
        match self {
            MethodData::Password { .. } => Mode::Password,
            MethodData::SoftwareOath { .. } => Mode::SoftwareOath,
            MethodData::Fido2 { .. } => Mode::Fido2,
            MethodData::TemporaryAccessPass { pass, .. } if pass.is_usable_once => {
                Mode::TemporaryAccessPassOneTime
            }
            MethodData::TemporaryAccessPass { .. } => Mode::TemporaryAccessPassMultiUse,
            MethodData::CertificateUserId { .. } => Mode::X509CertificateSingleFactor,
        }
    }

    /// The unique key: one password and one pass per user; passkeys by credential id.
    pub fn key1(&self, user: Uuid) -> Option<String> {
        match self {
            MethodData::Password { .. } => Some(format!("password:{user}")),
            MethodData::TemporaryAccessPass { .. } => Some(format!("tap:{user}")),
            MethodData::Fido2 { credential_id, .. } => Some(format!("fido2:{credential_id}")),
            MethodData::CertificateUserId { value } => Some(certificate_user_key(value)),
            MethodData::SoftwareOath { .. } => None,
        }
    }
}

/// A method as administrators and the user see it: never a secret or a hash.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuthMethodView {
    pub id: Uuid,
    /// `password`, `softwareOath`, `fido2` or `temporaryAccessPass`.
    #[serde(rename = "type")]
    pub method_type: String,
    pub display_name: String,
    pub created_date_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aaguid: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_usable_once: Option<bool>,
}

/// The unique key of a certificate user id (matched without case).
pub(crate) fn certificate_user_key(value: &str) -> String {
    format!("x509:{}", value.to_lowercase())
}

pub(crate) struct StoredMethod {
    pub record: Record,
    pub data: MethodData,
}

impl StoredMethod {
    pub fn view(&self) -> AuthMethodView {
        let (display_name, aaguid, start, end, once) = match &self.data {
            MethodData::Password { .. } => ("Password".to_string(), None, None, None, None),
            MethodData::SoftwareOath { display_name, .. } => {
                (display_name.clone(), None, None, None, None)
            }
            MethodData::Fido2 {
                display_name,
                aaguid,
                ..
            } => (display_name.clone(), Some(*aaguid), None, None, None),
            MethodData::TemporaryAccessPass { pass, .. } => (
                "Temporary Access Pass".to_string(),
                None,
                Some(pass.start),
                Some(pass.end),
                Some(pass.is_usable_once),
            ),
            MethodData::CertificateUserId { value } => (value.clone(), None, None, None, None),
        };
        AuthMethodView {
            id: self.record.id,
            method_type: self.data.type_name().to_string(),
            display_name,
            created_date_time: self.record.created,
            aaguid,
            start_date_time: start,
            end_date_time: end,
            is_usable_once: once,
        }
    }
}

pub(crate) fn method_record(
    id: Uuid,
    user: Uuid,
    now: Timestamp,
    data: &MethodData,
) -> ServiceResult<Record> {
    codec::new_record(
        Kind::AuthMethod,
        id,
        now,
        Keys {
            key1: data.key1(user),
            key2: Some(user.to_string()),
            sort_key: format!("{}:{}", data.type_name(), now.unix_micros()),
        },
        data,
    )
}

/// Every method a user has.
/// Whether a method proves a second factor at sign-in (an authenticator app or a
/// passkey): what multifactor registration asks a user to have.
pub(crate) fn proves_second_factor(method: &StoredMethod) -> bool {
    matches!(method.data.mode(), Mode::SoftwareOath | Mode::Fido2)
}

/// Whether a user has registered a method that proves a second factor.
pub(crate) async fn has_second_factor(
    reader: &mut dyn Reader,
    tenant: TenantId,
    user: Uuid,
) -> ServiceResult<bool> {
    Ok(methods_of(reader, tenant, user)
        .await?
        .iter()
        .any(proves_second_factor))
}

pub(crate) async fn methods_of(
    reader: &mut dyn Reader,
    tenant: TenantId,
    user: Uuid,
) -> ServiceResult<Vec<StoredMethod>> {
    let records = codec::list_all(reader, tenant, Kind::AuthMethod, Some(user.to_string())).await?;
    records
        .into_iter()
        .map(|record| {
            let data = codec::data(&record)?;
            Ok(StoredMethod { record, data })
        })
        .collect()
}

pub(crate) async fn method_by_key(
    reader: &mut dyn Reader,
    tenant: TenantId,
    key1: &str,
) -> ServiceResult<Option<StoredMethod>> {
    match reader.get_by_key1(tenant, Kind::AuthMethod, key1).await? {
        Some(record) => {
            let data = codec::data(&record)?;
            Ok(Some(StoredMethod { record, data }))
        }
        None => Ok(None),
    }
}

/// Deletes every method of a user (when the user is deleted).
pub(crate) async fn delete_methods_of(
    tx: &mut dyn WriteTx,
    tenant: tessera_core::TenantId,
    user: Uuid,
) -> ServiceResult<usize> {
    let records = codec::list_all(tx, tenant, Kind::AuthMethod, Some(user.to_string())).await?;
    for record in &records {
        tx.delete(tenant, Kind::AuthMethod, record.id, None).await?;
    }
    Ok(records.len())
}

//! The read side of the tenant's trust store for certificates: its certificate
//! authorities and revocation lists (the records; sign-in administers them), and
//! the validation of a certificate chain against them, with OCSP where no CRL
//! answers. It serves the directory (application keys), sign-in (certificate
//! sign-in) and OpenID Connect (client certificates).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tessera_authn::x509::{self, KnownCrl, TrustedCa};
use tessera_core::{TenantId, Timestamp};
use tessera_store::{Kind, Reader};

use crate::Directory;
use crate::codec;
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::SharedFetcher;

/// A trusted certificate authority as stored (`Kind::CertificateAuthority`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CaData {
    pub certificate: String,
    pub is_root_authority: bool,
    pub require_revocation_data: bool,
    pub crl_distribution_point: Option<String>,
    #[serde(default)]
    pub ocsp_responder: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub thumbprint: String,
    pub not_after: Timestamp,
}

/// A certificate authority's revocation list as stored (`Kind::RevocationList`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CrlData {
    pub crl: String,
    pub this_update: Timestamp,
    pub next_update: Option<Timestamp>,
    pub revoked_count: usize,
    pub source: String,
}

/// Asks the configured OCSP responders about the links no CRL answered; returns the
/// links still unanswered, or the refusal if a responder says revoked.
pub(crate) async fn check_with_ocsp(
    reader: &mut dyn Reader,
    tenant: TenantId,
    fetcher: Option<&SharedFetcher>,
    validated: &mut x509::Validated,
    now_unix: i64,
) -> ServiceResult<Result<(), x509::Refusal>> {
    let Some(fetcher) = fetcher else {
        return Ok(Ok(()));
    };
    let mut still = Vec::new();
    for link in std::mem::take(&mut validated.unchecked) {
        let thumbprint = tessera_core::crypto::sha256_hex(&link.issuer);
        let responder = match reader
            .get_by_key1(tenant, Kind::CertificateAuthority, &thumbprint)
            .await?
        {
            Some(record) => codec::data::<CaData>(&record)?.ocsp_responder,
            None => None,
        };
        let Some(url) = responder else {
            still.push(link);
            continue;
        };
        let answer = match tessera_authn::ocsp::request(&link.certificate, &link.issuer) {
            Ok(request) => fetcher.ocsp(&url, request).await,
            Err(error) => Err(error),
        };
        let status = answer.and_then(|response| {
            tessera_authn::ocsp::check(&response, &link.certificate, &link.issuer, now_unix)
        });
        match status {
            Ok(tessera_authn::ocsp::Status::Good) => {}
            Ok(tessera_authn::ocsp::Status::Revoked) => return Ok(Err(x509::Refusal::Revoked)),
            Ok(tessera_authn::ocsp::Status::Unknown) => still.push(link),
            Err(error) => {
                tracing::warn!(responder = %url, %error, "OCSP check failed");
                still.push(link);
            }
        }
    }
    validated.unchecked = still;
    Ok(Ok(()))
}

impl Directory {
    /// Validates a client certificate chain against the tenant's trust store, its
    /// CRLs and OCSP responders, failing closed where revocation data is required.
    pub(crate) async fn validate_client_chain(
        &self,
        tenant: TenantId,
        chain: &[Vec<u8>],
    ) -> ServiceResult<Result<x509::Validated, x509::Refusal>> {
        let mut reader = self.reader().await?;
        let trust = load_cas(reader.as_mut(), tenant).await?;
        let now = self.now().unix_seconds();
        if let Err(refusal) = x509::validate_path(chain, &trust, &[], now) {
            return Ok(Err(refusal));
        }
        let crls = load_crls(reader.as_mut(), tenant).await?;
        let mut validated = match x509::validate_path(chain, &trust, &crls, now) {
            Ok(validated) => validated,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let fetcher = self.settings.revocation_fetcher.as_ref();
        if let Err(refusal) =
            check_with_ocsp(reader.as_mut(), tenant, fetcher, &mut validated, now).await?
        {
            return Ok(Err(refusal));
        }
        Ok(x509::require_revocation(&validated).map(|()| validated))
    }
}

/// The tenant's trust store.
pub(crate) async fn load_cas(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<Vec<TrustedCa>> {
    let mut cas = Vec::new();
    for record in codec::list_all(reader, tenant, Kind::CertificateAuthority, None).await? {
        let data: CaData = codec::data(&record)?;
        cas.push(TrustedCa {
            der: STANDARD
                .decode(&data.certificate)
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            is_root: data.is_root_authority,
            require_revocation_data: data.require_revocation_data,
        });
    }
    Ok(cas)
}

/// The tenant's CRLs (loaded only once a path to a trusted root is known).
pub(crate) async fn load_crls(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<Vec<KnownCrl>> {
    let mut crls = Vec::new();
    for record in codec::list_all(reader, tenant, Kind::RevocationList, None).await? {
        let data: CrlData = codec::data(&record)?;
        crls.push(KnownCrl {
            der: STANDARD
                .decode(&data.crl)
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
        });
    }
    Ok(crls)
}

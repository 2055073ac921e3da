//! The IdP's signing certificates (`Kind::SamlKey`, key1 the thumbprint, key2
//! the owner): the tenant's, made on first use, and an application's own, with
//! rollover. A certificate added to an application is `next`: published in the
//! metadata the application reads beside the one that signs for it now (its own
//! or the tenant's), so its service provider learns it before it is used, until
//! it is activated, which removes the application's one it replaces. Removing an
//! application's last certificate returns it to the tenant's. Private keys are sealed under the installation's sealing key,
//! the thumbprint as associated data. Keys are cached per owner for a minute, so
//! a change made on another node is seen within it.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tessera_core::{AppId, TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::ApplicationData;
use tessera_directory::roles::action;
use tessera_saml::config::SignatureAlgorithm;
use tessera_saml::dsig::{Algorithm, SigningKey};
use tessera_store::{Kind, Reader, Record, WriteTx};
use uuid::Uuid;

use super::{KEY_CACHE_SECONDS, Saml, saml_record};
use crate::codec::{self, Keys};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

/// The owner key of the tenant's own certificates.
const TENANT_OWNER: &str = "tenant";
/// How long a new IdP certificate is valid (three years, as Entra's).
const CERTIFICATE_DAYS: i64 = 3 * 365;

/// Whose certificates: the tenant's, or one application's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Owner {
    Tenant,
    App(AppId),
}

impl Owner {
    fn key(self) -> String {
        match self {
            Owner::Tenant => TENANT_OWNER.to_string(),
            Owner::App(app) => app.to_string(),
        }
    }
}

/// The state of an IdP certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CertificateState {
    /// Published in metadata, not yet signing.
    Next,
    /// Signing.
    Active,
}

/// An IdP signing certificate as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertificateData {
    algorithm: SignatureAlgorithm,
    state: CertificateState,
    created: Timestamp,
    not_after: Timestamp,
    /// DER, base64.
    certificate: String,
    /// PKCS#8, sealed (the thumbprint as associated data).
    sealed_private_key: String,
}

/// A certificate made, not stored yet.
struct NewCertificate {
    thumbprint: String,
    algorithm: SignatureAlgorithm,
    not_after: Timestamp,
    certificate: String,
    sealed_private_key: String,
}

/// An IdP signing certificate, as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdpCertificate {
    /// SHA-256 of the DER, hex.
    pub thumbprint: String,
    pub state: CertificateState,
    pub algorithm: SignatureAlgorithm,
    pub created: Timestamp,
    pub not_after: Timestamp,
    /// DER, base64.
    pub certificate: String,
    /// The version to send back as If-Match (a removal of what was seen).
    pub version: i64,
}

impl IdpCertificate {
    /// The signature algorithm as people write it.
    pub fn algorithm_label(&self) -> &'static str {
        match self.algorithm {
            SignatureAlgorithm::RsaSha256 => "RSA-SHA256",
            SignatureAlgorithm::EcdsaSha256 => "ECDSA-SHA256",
        }
    }
}

fn view(record: &Record, data: &CertificateData) -> IdpCertificate {
    IdpCertificate {
        thumbprint: record.key1.clone().unwrap_or_default(),
        state: data.state,
        algorithm: data.algorithm,
        created: data.created,
        not_after: data.not_after,
        certificate: data.certificate.clone(),
        version: record.version,
    }
}

fn sealed_context(thumbprint: &str) -> String {
    format!("saml-certificate:{thumbprint}")
}

fn internal(error: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(error.to_string())
}

impl Saml {
    /// The key an application's messages are signed with: its own active
    /// certificate's, else the tenant's.
    pub(crate) async fn signing_key(
        &self,
        tenant: TenantId,
        app: AppId,
    ) -> ServiceResult<Arc<SigningKey>> {
        let owner = self.signer_of(tenant, app).await?;
        self.owner_key(tenant, owner).await
    }

    /// Whose certificate signs for an application.
    pub(super) async fn signer_of(&self, tenant: TenantId, app: AppId) -> ServiceResult<Owner> {
        Ok(match self.cached_key(tenant, Owner::App(app)).await? {
            Some(_) => Owner::App(app),
            None => Owner::Tenant,
        })
    }

    /// The active key of an owner (the tenant's is made on first use).
    pub(super) async fn owner_key(
        &self,
        tenant: TenantId,
        owner: Owner,
    ) -> ServiceResult<Arc<SigningKey>> {
        self.cached_key(tenant, owner)
            .await?
            .ok_or_else(|| internal("no active SAML certificate"))
    }

    /// The certificates (DER) an owner's metadata publishes, the one that signs
    /// first: an application's own, or, while it has none active, the tenant's
    /// and its own next one.
    pub(super) async fn published_certificates(
        &self,
        tenant: TenantId,
        owner: Owner,
    ) -> ServiceResult<Vec<Vec<u8>>> {
        let mut certificates = match owner {
            Owner::Tenant => self.tenant_certificate_records(tenant).await?,
            Owner::App(_) => self.read_certificates(tenant, owner).await?,
        };
        if !certificates
            .iter()
            .any(|(_, d)| d.state == CertificateState::Active)
        {
            let mut tenant_certificates = self.tenant_certificate_records(tenant).await?;
            tenant_certificates.retain(|(_, d)| d.state == CertificateState::Active);
            tenant_certificates.append(&mut certificates);
            certificates = tenant_certificates;
        }
        Ok(certificates
            .iter()
            .filter_map(|(_, data)| STANDARD.decode(&data.certificate).ok())
            .collect())
    }

    async fn cached_key(
        &self,
        tenant: TenantId,
        owner: Owner,
    ) -> ServiceResult<Option<Arc<SigningKey>>> {
        let now = self.now();
        if let Ok(cache) = self.keys.read()
            && let Some((loaded, key)) = cache.get(&(tenant, owner))
            && now.unix_seconds() - loaded.unix_seconds() < KEY_CACHE_SECONDS
        {
            return Ok(key.clone());
        }
        let certificates = match owner {
            Owner::Tenant => self.tenant_certificate_records(tenant).await?,
            Owner::App(_) => self.read_certificates(tenant, owner).await?,
        };
        let key = match certificates
            .into_iter()
            .find(|(_, d)| d.state == CertificateState::Active)
        {
            Some((record, data)) => Some(Arc::new(self.open_key(&record, &data)?)),
            None => None,
        };
        if let Ok(mut cache) = self.keys.write() {
            cache.insert((tenant, owner), (now, key.clone()));
        }
        Ok(key)
    }

    /// Forgets what this node cached for an owner (after a change made here).
    pub(super) fn forget(&self, tenant: TenantId, owner: Owner) {
        if let Ok(mut cache) = self.keys.write() {
            cache.remove(&(tenant, owner));
        }
        if let Ok(mut cache) = self.metadata.write() {
            cache.retain(|(t, o, _), _| !(*t == tenant && *o == owner));
        }
    }

    fn open_key(&self, record: &Record, data: &CertificateData) -> ServiceResult<SigningKey> {
        let thumbprint = record.key1.clone().unwrap_or_default();
        let pkcs8 = self
            .settings
            .sealing_key
            .open(&data.sealed_private_key, &sealed_context(&thumbprint))
            .map_err(internal)?;
        let der = STANDARD.decode(&data.certificate).map_err(internal)?;
        SigningKey::load(algorithm_of(data.algorithm), &pkcs8, der).map_err(internal)
    }

    /// The tenant's certificates, active first; one is made when there is none
    /// (in one audited transaction, so two nodes make one).
    async fn tenant_certificate_records(
        &self,
        tenant: TenantId,
    ) -> ServiceResult<Vec<(Record, CertificateData)>> {
        let found = self.read_certificates(tenant, Owner::Tenant).await?;
        if found
            .iter()
            .any(|(_, d)| d.state == CertificateState::Active)
        {
            return Ok(found);
        }
        let ctx = crate::kernel::system_context(tenant, "SAML signing certificate");
        let mut tx = self.write(&ctx).await?;
        let again = list_certificates(tx.as_mut(), tenant, Owner::Tenant).await?;
        if again
            .iter()
            .any(|(_, d)| d.state == CertificateState::Active)
        {
            drop(tx);
            return self.read_certificates(tenant, Owner::Tenant).await;
        }
        let made = self.new_certificate(SignatureAlgorithm::RsaSha256)?;
        let (record, data) = self
            .store_certificate(
                tx.as_mut(),
                tenant,
                Owner::Tenant,
                made,
                CertificateState::Active,
            )
            .await?;
        let event = add_event(&record, &data, Owner::Tenant);
        self.commit(tx, &ctx, event).await?;
        self.read_certificates(tenant, Owner::Tenant).await
    }

    async fn read_certificates(
        &self,
        tenant: TenantId,
        owner: Owner,
    ) -> ServiceResult<Vec<(Record, CertificateData)>> {
        let mut reader = self.reader().await?;
        list_certificates(reader.as_mut(), tenant, owner).await
    }

    /// Makes a certificate and its key, the key sealed.
    fn new_certificate(&self, algorithm: SignatureAlgorithm) -> ServiceResult<NewCertificate> {
        let now = self.now();
        let at = |t: Timestamp| {
            time::OffsetDateTime::from_unix_timestamp(t.unix_seconds())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        };
        let not_after = now.plus_seconds(CERTIFICATE_DAYS * 86_400);
        let (pkcs8, key) = SigningKey::generate(
            algorithm_of(algorithm),
            "Tessera SAML signing",
            at(now.plus_seconds(-3600)),
            at(not_after),
        )
        .map_err(internal)?;
        let thumbprint = tessera_core::crypto::sha256_hex(key.certificate());
        let sealed = self
            .settings
            .sealing_key
            .seal(&pkcs8, &sealed_context(&thumbprint))
            .map_err(internal)?;
        Ok(NewCertificate {
            thumbprint,
            algorithm,
            not_after,
            certificate: STANDARD.encode(key.certificate()),
            sealed_private_key: sealed,
        })
    }

    /// Stores a certificate made by `new_certificate`.
    async fn store_certificate(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        owner: Owner,
        made: NewCertificate,
        state: CertificateState,
    ) -> ServiceResult<(Record, CertificateData)> {
        let now = self.now();
        let data = CertificateData {
            algorithm: made.algorithm,
            state,
            created: now,
            not_after: made.not_after,
            certificate: made.certificate,
            sealed_private_key: made.sealed_private_key,
        };
        let record = codec::new_record(
            Kind::SamlKey,
            Uuid::new_v4(),
            now,
            Keys {
                key1: Some(made.thumbprint.clone()),
                key2: Some(owner.key()),
                sort_key: made.thumbprint,
            },
            &data,
        )?;
        tx.insert(tenant, &record).await?;
        Ok((record, data))
    }

    /// The tenant's IdP certificates (made on first use), the active one first.
    pub async fn tenant_certificates(
        &self,
        tenant: TenantId,
    ) -> ServiceResult<Vec<IdpCertificate>> {
        Ok(self
            .tenant_certificate_records(tenant)
            .await?
            .iter()
            .map(|(record, data)| view(record, data))
            .collect())
    }

    /// An application's own IdP certificates, the active one first (none: it is
    /// signed for with the tenant's).
    pub async fn application_certificates(
        &self,
        ctx: &Context,
        application: Uuid,
    ) -> ServiceResult<Vec<IdpCertificate>> {
        self.require(ctx, action::APPS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let record =
            codec::load(reader.as_mut(), ctx.tenant, Kind::Application, application).await?;
        let app: ApplicationData = codec::data(&record)?;
        Ok(
            list_certificates(reader.as_mut(), ctx.tenant, Owner::App(app.app_id))
                .await?
                .iter()
                .map(|(record, data)| view(record, data))
                .collect(),
        )
    }

    /// Adds an IdP certificate to an application (of its configured
    /// `signatureAlgorithm`) as `next`: published in the application's metadata
    /// beside the certificate that signs for it now (its own, or the tenant's),
    /// so its service provider can trust it before it is activated. One may wait
    /// at a time.
    pub async fn add_application_certificate(
        &self,
        ctx: &Context,
        application: Uuid,
    ) -> ServiceResult<IdpCertificate> {
        self.require(ctx, action::APPS_READ, &Target::Tenant)?;
        // The key is made before the write starts (RSA key generation takes a
        // while; the tenant's writes wait for none of it).
        let algorithm = {
            let mut reader = self.reader().await?;
            let record =
                codec::load(reader.as_mut(), ctx.tenant, Kind::Application, application).await?;
            let app: ApplicationData = codec::data(&record)?;
            match saml_record(reader.as_mut(), ctx.tenant, app.app_id).await? {
                Some(saml) => {
                    codec::data::<super::SamlAppData>(&saml)?
                        .settings
                        .signature_algorithm
                }
                None => {
                    return Err(ServiceError::NotFound {
                        kind: "samlConfiguration",
                        id: application.to_string(),
                    });
                }
            }
        };
        let made = self.new_certificate(algorithm)?;
        let (mut tx, owner, existing) = self.open_certificates(ctx, application).await?;
        let Owner::App(app_id) = owner else {
            return Err(internal("an application's certificates"));
        };
        if saml_record(tx.as_mut(), ctx.tenant, app_id)
            .await?
            .is_none()
        {
            return Err(ServiceError::NotFound {
                kind: "samlConfiguration",
                id: application.to_string(),
            });
        }
        if existing
            .iter()
            .any(|(_, d)| d.state == CertificateState::Next)
        {
            return Err(ServiceError::Conflict {
                message: "a next certificate is waiting already: activate or remove it first"
                    .into(),
            });
        }
        let (stored, data) = self
            .store_certificate(tx.as_mut(), ctx.tenant, owner, made, CertificateState::Next)
            .await?;
        let event = add_event(&stored, &data, owner);
        self.commit(tx, ctx, event).await?;
        self.forget(ctx.tenant, owner);
        Ok(view(&stored, &data))
    }

    /// Makes an application's next certificate the one that signs; the one it
    /// replaces is removed (and leaves the metadata).
    pub async fn activate_application_certificate(
        &self,
        ctx: &Context,
        application: Uuid,
        thumbprint: &str,
    ) -> ServiceResult<IdpCertificate> {
        let (mut tx, owner, existing) = self.open_certificates(ctx, application).await?;
        let (found, data) = existing
            .iter()
            .find(|(r, _)| r.key1.as_deref() == Some(thumbprint))
            .ok_or_else(|| not_found(thumbprint))?;
        if data.state == CertificateState::Active {
            return Err(ServiceError::Conflict {
                message: "this certificate signs already".into(),
            });
        }
        let mut replaced = Vec::new();
        for (old, old_data) in &existing {
            if old_data.state == CertificateState::Active {
                tx.delete(ctx.tenant, Kind::SamlKey, old.id, Some(old.version))
                    .await?;
                replaced.push(old.key1.clone().unwrap_or_default());
            }
        }
        let mut active = data.clone();
        active.state = CertificateState::Active;
        let keys = Keys {
            key1: found.key1.clone(),
            key2: found.key2.clone(),
            sort_key: found.sort_key.clone(),
        };
        let next = codec::next_version(found, self.now(), keys, &active)?;
        tx.update(ctx.tenant, &next).await?;
        let event = EventDraft::new(AuditAction::SamlKeyActivate)
            .on(Kind::SamlKey, next.id, thumbprint)
            .details(serde_json::json!({
                "owner": owner.key(),
                "application": application,
                "replaced": replaced,
            }));
        self.commit(tx, ctx, event).await?;
        self.forget(ctx.tenant, owner);
        Ok(view(&next, &active))
    }

    /// Removes one of an application's certificates: the next one, or the
    /// active one when no next one waits (the tenant's then signs for it).
    pub async fn remove_application_certificate(
        &self,
        ctx: &Context,
        application: Uuid,
        thumbprint: &str,
        if_match: Option<i64>,
    ) -> ServiceResult<()> {
        let (mut tx, owner, existing) = self.open_certificates(ctx, application).await?;
        let (found, data) = existing
            .iter()
            .find(|(r, _)| r.key1.as_deref() == Some(thumbprint))
            .ok_or_else(|| not_found(thumbprint))?;
        // Removed as it was seen: a next certificate activated since is not
        // removed on a stale page's word.
        codec::check_if_match(found, if_match)?;
        if data.state == CertificateState::Active
            && existing
                .iter()
                .any(|(_, d)| d.state == CertificateState::Next)
        {
            return Err(ServiceError::Conflict {
                message: "a next certificate waits: activate it (which removes this one) or remove it first".into(),
            });
        }
        tx.delete(ctx.tenant, Kind::SamlKey, found.id, Some(found.version))
            .await?;
        let event = EventDraft::new(AuditAction::SamlKeyRemove)
            .on(Kind::SamlKey, found.id, thumbprint)
            .details(serde_json::json!({
                "owner": owner.key(),
                "application": application,
                "state": data.state,
            }));
        self.commit(tx, ctx, event).await?;
        self.forget(ctx.tenant, owner);
        Ok(())
    }

    /// A write transaction on an application whose certificates the caller may
    /// change, with the owner and its certificates.
    async fn open_certificates(
        &self,
        ctx: &Context,
        application: Uuid,
    ) -> ServiceResult<(Box<dyn WriteTx>, Owner, Vec<(Record, CertificateData)>)> {
        self.require(ctx, action::APPS_READ, &Target::Tenant)?;
        let (mut tx, record) = self
            .open_application(ctx, application, action::APPS_AUTHENTICATION_UPDATE)
            .await?;
        let app: ApplicationData = codec::data(&record)?;
        let owner = Owner::App(app.app_id);
        let existing = list_certificates(tx.as_mut(), ctx.tenant, owner).await?;
        Ok((tx, owner, existing))
    }

    /// Deletes an application's certificates (with its SAML configuration), in
    /// the caller's transaction.
    pub(crate) async fn delete_application_certificates(
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        app: AppId,
    ) -> ServiceResult<Vec<String>> {
        let mut removed = Vec::new();
        for (record, _) in list_certificates(tx, tenant, Owner::App(app)).await? {
            tx.delete(tenant, Kind::SamlKey, record.id, None).await?;
            removed.push(record.key1.unwrap_or_default());
        }
        Ok(removed)
    }
}

fn algorithm_of(algorithm: SignatureAlgorithm) -> Algorithm {
    match algorithm {
        SignatureAlgorithm::RsaSha256 => Algorithm::RsaSha256,
        SignatureAlgorithm::EcdsaSha256 => Algorithm::EcdsaSha256,
    }
}

fn not_found(thumbprint: &str) -> ServiceError {
    ServiceError::NotFound {
        kind: "samlCertificate",
        id: thumbprint.chars().take(64).collect(),
    }
}

fn add_event(record: &Record, data: &CertificateData, owner: Owner) -> EventDraft {
    EventDraft::new(AuditAction::SamlKeyAdd)
        .on(
            Kind::SamlKey,
            record.id,
            record.key1.as_deref().unwrap_or(""),
        )
        .details(serde_json::json!({
            "owner": owner.key(),
            "state": data.state,
            "notAfter": data.not_after,
        }))
}

/// An owner's certificates, active first.
async fn list_certificates(
    reader: &mut dyn Reader,
    tenant: TenantId,
    owner: Owner,
) -> ServiceResult<Vec<(Record, CertificateData)>> {
    let mut out = Vec::new();
    for record in codec::list_all(reader, tenant, Kind::SamlKey, Some(owner.key())).await? {
        let data: CertificateData = codec::data(&record)?;
        out.push((record, data));
    }
    out.sort_by_key(|(_, d)| d.state != CertificateState::Active);
    Ok(out)
}

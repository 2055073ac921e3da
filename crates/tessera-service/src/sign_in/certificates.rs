//! The tenant's trust store for certificate sign-in (root and intermediate CAs),
//! their revocation lists (uploaded, or fetched from the distribution point and
//! cached), and certificate user ids bound to users.

use tessera_directory::audit_action::AuditAction;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_authn::x509::{self};
use tessera_core::Timestamp;
use tessera_directory::authz::Target;
use tessera_directory::roles::action;
use tessera_store::{Kind, Record};
use uuid::Uuid;

use crate::codec::{self, Keys};
use crate::directory::auth_methods::MethodData;
use crate::directory::trust::{CaData, CrlData};
use crate::error::{OrConflict, ServiceError, ServiceResult};
use crate::{Context, EventDraft, SignIn};

/// A CA as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CertificateAuthorityView {
    pub id: Uuid,
    pub subject: String,
    pub issuer: String,
    pub is_root_authority: bool,
    pub require_revocation_data: bool,
    pub crl_distribution_point: Option<String>,
    /// An OCSP responder asked about certificates this CA issued when no CRL answers.
    pub ocsp_responder: Option<String>,
    pub thumbprint: String,
    pub not_after: Timestamp,
    pub created_date_time: Timestamp,
    /// The CRL held for this CA, if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub revocation_list: Option<Value>,
}

/// A request to add a CA.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCa {
    /// PEM, or base64 DER.
    certificate: String,
    is_root_authority: bool,
    #[serde(default)]
    require_revocation_data: bool,
    /// Where to fetch the CRL; the certificate's own distribution point when absent.
    #[serde(default)]
    crl_distribution_point: Option<String>,
    /// An OCSP responder for certificates this CA issued.
    #[serde(default)]
    ocsp_responder: Option<String>,
}

fn http_url(value: Option<String>, field: &str) -> ServiceResult<Option<String>> {
    match value {
        None => Ok(None),
        Some(url) => {
            let parsed =
                url::Url::parse(&url).map_err(|_| ServiceError::invalid(field, "is not a URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ServiceError::invalid(field, "must be an http or https URL"));
            }
            Ok(Some(url))
        }
    }
}

fn decode(input: &str, label: &str, field: &str) -> ServiceResult<Vec<u8>> {
    let trimmed = input.trim();
    if trimmed.len() > 4 * 1024 * 1024 {
        return Err(ServiceError::invalid(field, "is too large"));
    }
    if trimmed.contains("-----BEGIN") {
        let mut blocks = x509::pem_or_der(trimmed.as_bytes(), label)
            .map_err(|e| ServiceError::invalid(field, e))?;
        if blocks.len() != 1 {
            return Err(ServiceError::invalid(
                field,
                format!("give exactly one {label}"),
            ));
        }
        return Ok(blocks.remove(0));
    }
    STANDARD
        .decode(trimmed)
        .map_err(|_| ServiceError::invalid(field, "must be PEM or base64 DER"))
}

fn timestamp(unix: i64) -> Timestamp {
    Timestamp::from_unix_micros(unix.saturating_mul(1_000_000))
}

fn crl_view(record: &Record) -> ServiceResult<Value> {
    let data: CrlData = codec::data(record)?;
    Ok(json!({
        "thisUpdate": data.this_update,
        "nextUpdate": data.next_update,
        "revokedCount": data.revoked_count,
        "source": data.source,
        "updatedDateTime": record.modified,
    }))
}

fn crl_key(ca: Uuid) -> String {
    format!("crl:{ca}")
}

impl SignIn {
    fn ca_view(
        &self,
        record: &Record,
        crl: Option<&Record>,
    ) -> ServiceResult<CertificateAuthorityView> {
        let data: CaData = codec::data(record)?;
        Ok(CertificateAuthorityView {
            id: record.id,
            subject: data.subject,
            issuer: data.issuer,
            is_root_authority: data.is_root_authority,
            require_revocation_data: data.require_revocation_data,
            crl_distribution_point: data.crl_distribution_point,
            ocsp_responder: data.ocsp_responder,
            thumbprint: data.thumbprint,
            not_after: data.not_after,
            created_date_time: record.created,
            revocation_list: crl.map(crl_view).transpose()?,
        })
    }

    pub async fn list_certificate_authorities(
        &self,
        ctx: &Context,
    ) -> ServiceResult<Vec<CertificateAuthorityView>> {
        self.require(ctx, action::POLICIES_READ, &Target::Tenant)?;
        self.certificate_authorities(ctx).await
    }

    async fn certificate_authorities(
        &self,
        ctx: &Context,
    ) -> ServiceResult<Vec<CertificateAuthorityView>> {
        let mut reader = self.reader().await?;
        let mut out = Vec::new();
        for record in codec::list_all(
            reader.as_mut(),
            ctx.tenant,
            Kind::CertificateAuthority,
            None,
        )
        .await?
        {
            let crl = reader
                .get_by_key1(ctx.tenant, Kind::RevocationList, &crl_key(record.id))
                .await?;
            out.push(self.ca_view(&record, crl.as_ref())?);
        }
        Ok(out)
    }

    /// Adds a CA certificate to the trust store.
    pub async fn add_certificate_authority(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<CertificateAuthorityView> {
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)?;
        let request: NewCa = serde_path_to_error::deserialize(body)
            .map_err(|e| ServiceError::invalid(e.path().to_string(), e.inner().to_string()))?;
        let der = decode(&request.certificate, "CERTIFICATE", "certificate")?;
        let facts = x509::ca_facts(&der).map_err(|e| ServiceError::invalid("certificate", e))?;
        if request.is_root_authority && !facts.self_signed {
            return Err(ServiceError::invalid(
                "isRootAuthority",
                "a root authority's certificate must be self-signed; add this one as an intermediate",
            ));
        }
        let crl_url = http_url(request.crl_distribution_point, "crlDistributionPoint")?
            .or_else(|| facts.crl_urls.first().cloned());
        let ocsp_responder = http_url(request.ocsp_responder, "ocspResponder")?;
        let data = CaData {
            certificate: STANDARD.encode(&der),
            is_root_authority: request.is_root_authority,
            require_revocation_data: request.require_revocation_data,
            crl_distribution_point: crl_url,
            ocsp_responder,
            subject: facts.subject.clone(),
            issuer: facts.issuer,
            thumbprint: facts.thumbprint.clone(),
            not_after: timestamp(facts.not_after_unix),
        };
        let mut tx = self.write(ctx).await?;
        let record = codec::new_record(
            Kind::CertificateAuthority,
            Uuid::new_v4(),
            self.now(),
            Keys {
                key1: Some(facts.thumbprint),
                key2: None,
                sort_key: facts.subject.to_lowercase(),
            },
            &data,
        )?;
        tx.insert(ctx.tenant, &record)
            .await
            .or_conflict("this certificate is already in the trust store")?;
        let view = self.ca_view(&record, None)?;
        let event = EventDraft::new(AuditAction::CertificateAuthorityAdd)
            .on(Kind::CertificateAuthority, record.id, &view.subject)
            .details(&view);
        self.commit(tx, ctx, event).await?;
        Ok(view)
    }

    pub async fn delete_certificate_authority(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        let (mut tx, record) = self
            .open_tenant_record(ctx, action::POLICIES_MANAGE, Kind::CertificateAuthority, id)
            .await?;
        let data: CaData = codec::data(&record)?;
        if let Some(crl) = tx
            .get_by_key1(ctx.tenant, Kind::RevocationList, &crl_key(id))
            .await?
        {
            tx.delete(ctx.tenant, Kind::RevocationList, crl.id, None)
                .await?;
        }
        tx.delete(ctx.tenant, Kind::CertificateAuthority, id, None)
            .await?;
        let event = EventDraft::new(AuditAction::CertificateAuthorityRemove).on(
            Kind::CertificateAuthority,
            id,
            &data.subject,
        );
        self.commit(tx, ctx, event).await?;
        Ok(())
    }

    /// Stores a CRL for a CA after checking that CA signed it.
    pub async fn upload_crl(
        &self,
        ctx: &Context,
        ca: Uuid,
        body: Value,
    ) -> ServiceResult<CertificateAuthorityView> {
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)?;
        let text = body
            .get("crl")
            .and_then(Value::as_str)
            .ok_or_else(|| ServiceError::invalid("crl", "give the CRL as PEM or base64 DER"))?;
        if body.as_object().is_some_and(|o| o.len() != 1) {
            return Err(ServiceError::invalid("", "only `crl` may be given"));
        }
        let der = decode(text, "X509 CRL", "crl")?;
        self.store_crl(ctx, ca, der, "upload").await
    }

    /// Fetches a CA's CRL from its distribution point now.
    pub async fn refresh_crl(
        &self,
        ctx: &Context,
        ca: Uuid,
    ) -> ServiceResult<CertificateAuthorityView> {
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)?;
        self.fetch_crl(ctx, ca).await
    }

    async fn fetch_crl(&self, ctx: &Context, ca: Uuid) -> ServiceResult<CertificateAuthorityView> {
        let mut reader = self.reader().await?;
        let record =
            codec::load(reader.as_mut(), ctx.tenant, Kind::CertificateAuthority, ca).await?;
        drop(reader);
        let data: CaData = codec::data(&record)?;
        let Some(url) = data.crl_distribution_point else {
            return Err(ServiceError::Conflict {
                message: "this CA has no CRL distribution point; upload its CRL instead"
                    .to_string(),
            });
        };
        let Some(fetcher) = self.settings.revocation_fetcher.clone() else {
            return Err(ServiceError::Unavailable(
                "CRL fetching is not configured".to_string(),
            ));
        };
        let der = fetcher.fetch(&url).await.map_err(|e| {
            ServiceError::Unavailable(format!("cannot fetch the CRL from {url}: {e}"))
        })?;
        self.store_crl(ctx, ca, der, &url).await
    }

    /// Fetches one tenant's due CRLs: run by the `crl-refresh` job. Every due CRL is
    /// tried; the first failure is returned after the others (so the job reports it
    /// and hands its lease to another node, which may reach the distribution point).
    pub async fn refresh_tenant_crls(&self, tenant: tessera_core::TenantId) -> ServiceResult<()> {
        let ctx = crate::kernel::system_context(tenant, "CRL refresh");
        self.refresh_due_crls(&ctx).await
    }

    /// Fetches every CA's CRL that is due (missing, or past half its validity).
    async fn refresh_due_crls(&self, ctx: &Context) -> ServiceResult<()> {
        let cas = self.certificate_authorities(ctx).await?;
        let now = self.now();
        let mut failed = None;
        for ca in cas
            .into_iter()
            .filter(|ca| ca.crl_distribution_point.is_some())
        {
            let due = match &ca.revocation_list {
                None => true,
                Some(crl) => {
                    let this = crl["thisUpdate"]
                        .as_str()
                        .and_then(|t| Timestamp::parse_rfc3339(t).ok());
                    let next = crl["nextUpdate"]
                        .as_str()
                        .and_then(|t| Timestamp::parse_rfc3339(t).ok());
                    match (this, next) {
                        (Some(this), Some(next)) => {
                            now.unix_micros()
                                >= this.unix_micros()
                                    + (next.unix_micros() - this.unix_micros()) / 2
                        }
                        _ => true,
                    }
                }
            };
            if due && let Err(error) = self.fetch_crl(ctx, ca.id).await {
                tracing::warn!(ca = %ca.id, %error, "CRL refresh failed");
                failed.get_or_insert(error);
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    async fn store_crl(
        &self,
        ctx: &Context,
        ca: Uuid,
        der: Vec<u8>,
        source: &str,
    ) -> ServiceResult<CertificateAuthorityView> {
        let mut tx = self.write(ctx).await?;
        let ca_record =
            codec::load(tx.as_mut(), ctx.tenant, Kind::CertificateAuthority, ca).await?;
        let ca_data: CaData = codec::data(&ca_record)?;
        let ca_der = STANDARD
            .decode(&ca_data.certificate)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let facts =
            x509::crl_facts(&der, &[ca_der]).map_err(|e| ServiceError::invalid("crl", e))?;
        let data = CrlData {
            crl: STANDARD.encode(&der),
            this_update: timestamp(facts.this_update_unix),
            next_update: facts.next_update_unix.map(timestamp),
            revoked_count: facts.revoked,
            source: source.to_string(),
        };
        let keys = || Keys {
            key1: Some(crl_key(ca)),
            key2: Some(ca.to_string()),
            sort_key: crl_key(ca),
        };
        let existing = tx
            .get_by_key1(ctx.tenant, Kind::RevocationList, &crl_key(ca))
            .await?;
        let record = match &existing {
            Some(old) => {
                let old_data: CrlData = codec::data(old)?;
                if old_data.this_update > data.this_update {
                    return Err(ServiceError::Conflict {
                        message: "this CRL is older than the one held".to_string(),
                    });
                }
                let updated = codec::next_version(old, self.now(), keys(), &data)?;
                tx.update(ctx.tenant, &updated).await?;
                updated
            }
            None => {
                let created = codec::new_record(
                    Kind::RevocationList,
                    Uuid::new_v4(),
                    self.now(),
                    keys(),
                    &data,
                )?;
                tx.insert(ctx.tenant, &created).await?;
                created
            }
        };
        let event = EventDraft::new(AuditAction::CertificateAuthorityCrlUpdate)
            .on(Kind::CertificateAuthority, ca, &ca_data.subject)
            .details(json!({
                "thisUpdate": data.this_update,
                "nextUpdate": data.next_update,
                "revokedCount": data.revoked_count,
                "source": source,
            }));
        self.commit(tx, ctx, event).await?;
        self.ca_view(&ca_record, Some(&record))
    }

    /// Binds a certificate user id (`X509:<SKI>...`) to a user.
    pub async fn add_certificate_user_id(
        &self,
        ctx: &Context,
        user: Uuid,
        body: Value,
    ) -> ServiceResult<super::AuthMethodView> {
        let mut reader = self.reader().await?;
        self.directory
            .load_authorized(
                reader.as_mut(),
                ctx,
                Kind::User,
                user,
                action::USERS_AUTH_METHODS_CREATE,
            )
            .await?;
        drop(reader);
        let value = body
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ServiceError::invalid(
                    "value",
                    "give the certificate user id, e.g. X509:<SKI>7F2A...",
                )
            })?
            .trim()
            .to_string();
        if body.as_object().is_some_and(|o| o.len() != 1) {
            return Err(ServiceError::invalid("", "only `value` may be given"));
        }
        if !tessera_authn::cba::valid_certificate_user_id(&value) {
            return Err(ServiceError::invalid(
                "value",
                "must be X509:<PN>, <RFC822>, <S>, <SKI> or <I> followed by a value",
            ));
        }
        self.add_method(
            ctx,
            user,
            Uuid::new_v4(),
            &MethodData::CertificateUserId { value },
        )
        .await
    }
}

//! The SAML context: Tessera as a SAML 2.0 identity provider. It keeps each
//! application's SAML configuration (`Kind::SamlApp`, found by the SP's entity id)
//! and the IdP's signing certificates (`Kind::SamlKey`, private keys sealed
//! under the installation's sealing key), and writes the IdP's signed metadata.
//! The Web Browser SSO profile (`sso`) goes through the app sign-in step, as
//! OpenID Connect does; Single Logout (`logout`) ends the same browser sessions
//! and passes the logout on to the session's other SAML applications.
//!
//! May call: the kernel and the directory's records; uses the `tessera_saml`
//! protocol crate for everything XML.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_core::{AppId, TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::ApplicationData;
use tessera_directory::roles::action;
use tessera_saml::config::SamlSettings;
use tessera_saml::dsig::{self, SigningKey};
use tessera_saml::{idp, response};
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use crate::codec::{self, Keys};
use crate::error::OrConflict as _;
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::Kernel;
use crate::{Access, AppSignIn, Context, EventDraft, SignIn};

mod certificates;
mod logout;
mod sso;

use certificates::Owner;
pub use certificates::{CertificateState, IdpCertificate};

pub use logout::{SloAnswer, SloOutcome};
pub use sso::{SamlPost, SsoContext, SsoOutcome};

/// A message from a service provider at an endpoint, by its binding.
pub enum SamlMessage<'a> {
    /// The redirect binding's query string.
    Redirect(&'a str),
    /// The POST binding's form: a `SAMLRequest`, or a `SAMLResponse` when
    /// `response`.
    Post {
        message: &'a str,
        response: bool,
        relay_state: Option<&'a str>,
    },
}

/// A message as read: which kind, the document, its RelayState, the detached
/// signature of the redirect binding, and whether it came by POST.
struct Received {
    kind: tessera_saml::binding::Kind,
    document: tessera_saml::xml::Document,
    relay_state: Option<String>,
    detached: Option<tessera_saml::binding::DetachedSignature>,
    via_post: bool,
}

/// Reads a message by its binding; the error says why it cannot be read.
fn read_message(message: SamlMessage<'_>) -> Result<Received, String> {
    use tessera_saml::binding::{self, Kind};
    let cannot = |error: binding::BindingError| format!("the message cannot be read: {error}");
    match message {
        SamlMessage::Redirect(query) => {
            let read = binding::read_redirect(query).map_err(cannot)?;
            Ok(Received {
                kind: read.kind,
                document: read.document,
                relay_state: read.relay_state,
                detached: read.signature,
                via_post: false,
            })
        }
        SamlMessage::Post {
            message,
            response,
            relay_state,
        } => {
            if let Some(relay) = relay_state {
                binding::check_relay_state(relay).map_err(|e| e.to_string())?;
            }
            Ok(Received {
                kind: if response {
                    Kind::Response
                } else {
                    Kind::Request
                },
                document: binding::read_post(message).map_err(cannot)?,
                relay_state: relay_state.map(str::to_string),
                detached: None,
                via_post: true,
            })
        }
    }
}

pub struct Saml {
    k: Arc<Kernel>,
    access: Arc<Access>,
    sign_in: Arc<SignIn>,
    app_sign_in: Arc<AppSignIn>,
    /// Signing keys by owner (the tenant's, an application's own: none when it
    /// has none), as loaded and when.
    keys: RwLock<KeyCache>,
    /// Per tenant: the pairwise secret, as loaded and when.
    pairwise: RwLock<HashMap<TenantId, Cached<Arc<Vec<u8>>>>>,
    /// Signed metadata per tenant, owner of the certificates it publishes, and
    /// `WantAuthnRequestsSigned`, as made and when (anyone may ask for it; it is
    /// signed once a minute at most).
    metadata: RwLock<HashMap<(TenantId, Owner, bool), SignedMetadata>>,
    /// Fetches service providers' metadata from their URL (the server's client).
    outbound: std::sync::OnceLock<Arc<dyn crate::oauth::OutboundHttp>>,
}

/// Signing keys per tenant and owner (none: the owner has no active one).
type KeyCache = HashMap<(TenantId, Owner), Cached<Option<Arc<SigningKey>>>>;
/// A value as loaded (or made), and when.
type Cached<T> = (Timestamp, T);
/// A signed metadata document and when it was made.
type SignedMetadata = Cached<Arc<String>>;

crate::kernel::on_kernel!(Saml);

/// How long a published metadata document may be cached.
const METADATA_SECONDS: i64 = 7 * 86_400;

/// An application's SAML configuration as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SamlAppData {
    app_id: AppId,
    settings: SamlSettings,
}

/// An application's SAML configuration, as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SamlApplication {
    pub app_id: AppId,
    #[serde(flatten)]
    pub settings: SamlSettings,
    /// The version to send back as If-Match.
    #[serde(skip)]
    pub version: i64,
}

/// What a metadata fetch asks for, and the most it reads.
const METADATA_ACCEPT: &str = "application/samlmetadata+xml, application/xml;q=0.9, */*;q=0.1";
const MAX_FETCHED_METADATA: usize = 256 * 1024;

/// The key1 (and associated data) of the pairwise secret.
const PAIRWISE: &str = "pairwise";
/// How long signed metadata is served again before it is signed anew.
const METADATA_CACHE_SECONDS: i64 = 60;
/// How long a loaded signing key is used before it is read again.
const KEY_CACHE_SECONDS: i64 = 60;

/// A sealed secret as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretData {
    sealed: String,
}

impl Saml {
    pub(crate) fn new(
        k: Arc<Kernel>,
        access: Arc<Access>,
        sign_in: Arc<SignIn>,
        app_sign_in: Arc<AppSignIn>,
    ) -> Saml {
        Saml {
            k,
            access,
            sign_in,
            app_sign_in,
            keys: RwLock::new(HashMap::new()),
            pairwise: RwLock::new(HashMap::new()),
            metadata: RwLock::new(HashMap::new()),
            outbound: std::sync::OnceLock::new(),
        }
    }

    /// Gives the context its HTTP client (service providers' metadata by URL).
    pub fn set_outbound_http(&self, fetcher: Arc<dyn crate::oauth::OutboundHttp>) {
        let _ = self.outbound.set(fetcher);
    }

    /// The application (appId) with this SP entity id, and its settings.
    pub(crate) async fn by_entity_id(
        &self,
        tenant: TenantId,
        entity_id: &str,
    ) -> ServiceResult<Option<(AppId, SamlSettings)>> {
        let mut reader = self.reader().await?;
        let Some(record) = reader.get_by_key1(tenant, Kind::SamlApp, entity_id).await? else {
            return Ok(None);
        };
        let data: SamlAppData = codec::data(&record)?;
        Ok(Some((data.app_id, data.settings)))
    }

    /// An application's SAML settings, by its appId.
    pub(crate) async fn settings_of(
        &self,
        tenant: TenantId,
        app_id: AppId,
    ) -> ServiceResult<Option<SamlSettings>> {
        let mut reader = self.reader().await?;
        Ok(match saml_record(reader.as_mut(), tenant, app_id).await? {
            Some(record) => Some(codec::data::<SamlAppData>(&record)?.settings),
            None => None,
        })
    }

    /// The IdP's entity id: the public URL with `/saml2`.
    pub fn entity_id(&self) -> String {
        format!("{}/saml2", self.public_url())
    }

    /// Sets an application's SAML configuration (replacing the one it had).
    /// `if_match` is the version read; 0 says there was none (so one made
    /// meanwhile is not overwritten).
    pub async fn configure(
        &self,
        ctx: &Context,
        application: Uuid,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<SamlApplication> {
        self.configure_with(ctx, application, body, if_match, None)
            .await
    }

    /// `configure`, with details for the audit event (where the settings came
    /// from).
    async fn configure_with(
        &self,
        ctx: &Context,
        application: Uuid,
        body: Value,
        if_match: Option<i64>,
        details: Option<Value>,
    ) -> ServiceResult<SamlApplication> {
        self.require(ctx, action::APPS_READ, &Target::Tenant)?;
        let settings: SamlSettings = serde_path_to_error::deserialize(body)
            .map_err(|e| ServiceError::invalid(e.path().to_string(), e.inner().to_string()))?;
        settings
            .validate()
            .map_err(|e| ServiceError::invalid("saml", e.0))?;
        // Mapping custom security attributes into assertions discloses them:
        // only those who may read them may.
        if settings
            .attributes
            .iter()
            .any(|a| a.source.reads_custom_security_attributes())
        {
            self.require(ctx, action::USERS_CSA_READ, &Target::Tenant)?;
        }
        let (mut tx, record) = self
            .open_application(ctx, application, action::APPS_AUTHENTICATION_UPDATE)
            .await?;
        let app: ApplicationData = codec::data(&record)?;
        let existing = saml_record(tx.as_mut(), ctx.tenant, app.app_id).await?;
        let data = SamlAppData {
            app_id: app.app_id,
            settings,
        };
        let keys = Keys {
            key1: Some(data.settings.entity_id.clone()),
            key2: Some(app.app_id.to_string()),
            sort_key: codec::sort_key(&data.settings.entity_id),
        };
        let (stored, before) = match existing {
            Some(current) => {
                if if_match == Some(0) {
                    return Err(ServiceError::VersionMismatch {
                        sent: 0,
                        current: current.version,
                    });
                }
                codec::check_if_match(&current, if_match)?;
                let before: SamlAppData = codec::data(&current)?;
                if before.settings == data.settings {
                    // Nothing changes: no new version, no event.
                    return Ok(SamlApplication {
                        app_id: data.app_id,
                        settings: data.settings,
                        version: current.version,
                    });
                }
                let next = codec::next_version(&current, self.now(), keys, &data)?;
                tx.update(ctx.tenant, &next)
                    .await
                    .or_conflict("another application has this entity id")?;
                (next, Some(before.settings))
            }
            None => {
                if let Some(sent) = if_match.filter(|v| *v != 0) {
                    return Err(ServiceError::VersionMismatch { sent, current: 0 });
                }
                let new =
                    codec::new_record(Kind::SamlApp, Uuid::new_v4(), self.now(), keys, &data)?;
                tx.insert(ctx.tenant, &new)
                    .await
                    .or_conflict("another application has this entity id")?;
                (new, None)
            }
        };
        let mut event = EventDraft::new(AuditAction::ApplicationSamlUpdate)
            .on(Kind::Application, application, &app.spec.display_name)
            .changes(tessera_directory::patch::changes(
                &serde_json::to_value(&before).unwrap_or(Value::Null),
                &serde_json::to_value(&data.settings).unwrap_or(Value::Null),
            ));
        if let Some(details) = details {
            event = event.details(details);
        }
        self.commit(tx, ctx, event).await?;
        Ok(SamlApplication {
            app_id: data.app_id,
            settings: data.settings,
            version: stored.version,
        })
    }

    /// Sets an application's SAML configuration from its service provider's
    /// metadata (`{"metadata": "<xml>" | "metadataUrl": "https://…",
    /// "signingCertificate": "<base64 DER>"}`; a URL is fetched once, now):
    /// the entity id, consumer and logout services, certificates and signing wish
    /// come from the metadata; what the metadata does not say (NameID source,
    /// attributes, signing and encryption choices) is kept from the configuration
    /// the application had. With a signing certificate, the metadata must carry
    /// a valid signature by it.
    pub async fn configure_from_metadata(
        &self,
        ctx: &Context,
        application: Uuid,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<SamlApplication> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Import {
            #[serde(default)]
            metadata: Option<String>,
            #[serde(default)]
            metadata_url: Option<String>,
            #[serde(default)]
            signing_certificate: Option<String>,
        }
        self.require(ctx, action::APPS_READ, &Target::Tenant)?;
        let import: Import = serde_path_to_error::deserialize(body)
            .map_err(|e| ServiceError::invalid(e.path().to_string(), e.inner().to_string()))?;
        let metadata = match (import.metadata, &import.metadata_url) {
            (Some(metadata), None) => metadata,
            (None, Some(url)) => {
                // The caller may change this application: checked before Tessera
                // fetches anything on their word.
                self.open_application(ctx, application, action::APPS_AUTHENTICATION_UPDATE)
                    .await?;
                self.fetch_metadata(url).await?
            }
            _ => {
                return Err(ServiceError::invalid(
                    "metadata",
                    "give either metadata or metadataUrl",
                ));
            }
        };
        // What a fetched document holds is not quoted back in errors either.
        let fetched = import.metadata_url.is_some();
        let unreadable = |error: String| {
            if fetched {
                not_fetched()
            } else {
                ServiceError::invalid("metadata", error)
            }
        };
        let document = tessera_saml::xml::parse(
            metadata.trim_start_matches('\u{feff}'),
            tessera_saml::xml::Limits::default(),
        )
        .map_err(|e| unreadable(e.to_string()))?;
        if let Some(signer) = &import.signing_certificate {
            let der = STANDARD
                .decode(signer.trim())
                .map_err(|_| ServiceError::invalid("signingCertificate", "not base64 DER"))?;
            let key = dsig::public_key_of(&der)
                .map_err(|e| ServiceError::invalid("signingCertificate", e.to_string()))?;
            dsig::verify_enveloped(&document, &[key])
                .map_err(|e| ServiceError::invalid("metadata", format!("signature: {e}")))?;
        }
        let provider = tessera_saml::metadata::ServiceProvider::from_document(&document)
            .map_err(|e| unreadable(e.to_string()))?;
        if provider
            .valid_until
            .is_some_and(|until| until <= self.now().unix_seconds())
        {
            return Err(ServiceError::invalid(
                "metadata",
                "the metadata's validUntil has passed: get current metadata from the service provider",
            ));
        }
        let mut settings = SamlSettings::from_metadata(&provider);
        let current = self.configuration(ctx, application).await?;
        // The write lands only on the state merged here.
        let if_match = if_match.or(Some(current.as_ref().map_or(0, |c| c.version)));
        if let Some(current) = current {
            let kept = current.settings;
            let recognised = provider
                .name_id_formats
                .iter()
                .any(|f| tessera_saml::config::NameIdFormat::from_uri(f).is_some());
            if !recognised {
                settings.name_id.format = kept.name_id.format;
            }
            if settings.name_id.format == kept.name_id.format {
                settings.name_id.source = kept.name_id.source;
            }
            settings.attributes = kept.attributes;
            settings.signing = kept.signing;
            settings.signature_algorithm = kept.signature_algorithm;
            settings.require_signed_requests =
                kept.require_signed_requests || provider.authn_requests_signed;
            if kept.encrypt_assertions && settings.encryption_certificate().is_none() {
                return Err(ServiceError::invalid(
                    "metadata",
                    "assertions are encrypted for this application, and the metadata has no encryption certificate",
                ));
            }
            settings.encrypt_assertions = kept.encrypt_assertions;
            settings.assertion_lifetime_seconds = kept.assertion_lifetime_seconds;
            settings.relay_state = kept.relay_state;
        }
        if provider.want_assertions_signed {
            settings.signing.assertion = true;
        }
        let body =
            serde_json::to_value(&settings).map_err(|e| ServiceError::Internal(e.to_string()))?;
        // The URL without its query (which may carry a token).
        let fetched_from = import
            .metadata_url
            .as_deref()
            .map(|url| url.split(['?', '#']).next().unwrap_or_default().to_string());
        let details = serde_json::json!({
            "source": "metadata",
            "metadataUrl": fetched_from,
            "signatureChecked": import.signing_certificate.is_some(),
        });
        self.configure_with(ctx, application, body, if_match, Some(details))
            .await
    }

    /// A service provider's metadata from its URL: https (http only to a
    /// loopback host), no redirect followed, bounded in size and time.
    async fn fetch_metadata(&self, url: &str) -> ServiceResult<String> {
        if !tessera_saml::metadata::location_allowed(url) {
            return Err(ServiceError::invalid(
                "metadataUrl",
                "must be an https URL (http only to a loopback host)",
            ));
        }
        let fetcher = self.outbound.get().ok_or_else(|| {
            ServiceError::Unavailable("fetching metadata is not configured".into())
        })?;
        // What went wrong is logged, not answered: the caller learns nothing of
        // what answers at an address beyond that no metadata came from it.
        let bytes = fetcher
            .get_public(url, METADATA_ACCEPT, MAX_FETCHED_METADATA)
            .await
            .map_err(|error| {
                tracing::info!(%error, "SAML metadata fetch failed");
                not_fetched()
            })?;
        String::from_utf8(bytes).map_err(|_| not_fetched())
    }

    /// An application's SAML configuration, if it has one.
    pub async fn configuration(
        &self,
        ctx: &Context,
        application: Uuid,
    ) -> ServiceResult<Option<SamlApplication>> {
        self.require(ctx, action::APPS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let record =
            codec::load(reader.as_mut(), ctx.tenant, Kind::Application, application).await?;
        let facts = crate::directory::target_facts(
            reader.as_mut(),
            ctx.tenant,
            Kind::Application,
            application,
        )
        .await?;
        self.require(ctx, action::APPS_READ, &facts)?;
        let app: ApplicationData = codec::data(&record)?;
        let Some(stored) = saml_record(reader.as_mut(), ctx.tenant, app.app_id).await? else {
            return Ok(None);
        };
        let data: SamlAppData = codec::data(&stored)?;
        Ok(Some(SamlApplication {
            app_id: data.app_id,
            settings: data.settings,
            version: stored.version,
        }))
    }

    /// Removes an application's SAML configuration (and its own certificates);
    /// with `if_match`, only the version read.
    pub async fn remove(
        &self,
        ctx: &Context,
        application: Uuid,
        if_match: Option<i64>,
    ) -> ServiceResult<()> {
        self.require(ctx, action::APPS_READ, &Target::Tenant)?;
        let (mut tx, record) = self
            .open_application(ctx, application, action::APPS_AUTHENTICATION_UPDATE)
            .await?;
        let app: ApplicationData = codec::data(&record)?;
        let stored = saml_record(tx.as_mut(), ctx.tenant, app.app_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                kind: "samlApplication",
                id: app.app_id.to_string(),
            })?;
        codec::check_if_match(&stored, if_match)?;
        tx.delete(ctx.tenant, Kind::SamlApp, stored.id, Some(stored.version))
            .await?;
        let certificates =
            Saml::delete_application_certificates(tx.as_mut(), ctx.tenant, app.app_id).await?;
        let event = EventDraft::new(AuditAction::ApplicationSamlRemove)
            .on(Kind::Application, application, &app.spec.display_name)
            .details(serde_json::json!({ "removedCertificates": certificates }));
        self.commit(tx, ctx, event).await?;
        self.forget(ctx.tenant, Owner::App(app.app_id));
        Ok(())
    }

    async fn open_application(
        &self,
        ctx: &Context,
        application: Uuid,
        permission: &str,
    ) -> ServiceResult<(Box<dyn tessera_store::WriteTx>, tessera_store::Record)> {
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, Kind::Application, application).await?;
        let facts =
            crate::directory::target_facts(tx.as_mut(), ctx.tenant, Kind::Application, application)
                .await?;
        self.require(ctx, permission, &facts)?;
        Ok((tx, record))
    }

    /// The secret persistent and transient NameIDs are derived from (cached per
    /// tenant).
    pub(crate) async fn pairwise_secret(&self, tenant: TenantId) -> ServiceResult<Arc<Vec<u8>>> {
        let now = self.now();
        if let Ok(cache) = self.pairwise.read()
            && let Some((loaded, secret)) = cache.get(&tenant)
            && now.unix_seconds() - loaded.unix_seconds() < KEY_CACHE_SECONDS
        {
            return Ok(secret.clone());
        }
        let secret = Arc::new(self.load_pairwise_secret(tenant).await?);
        if let Ok(mut cache) = self.pairwise.write() {
            cache.insert(tenant, (now, secret.clone()));
        }
        Ok(secret)
    }

    /// The tenant's pairwise secret: 32 random bytes, made once, sealed.
    async fn load_pairwise_secret(&self, tenant: TenantId) -> ServiceResult<Vec<u8>> {
        let open = |record: &tessera_store::Record| -> ServiceResult<Vec<u8>> {
            let data: SecretData = codec::data(record)?;
            self.settings
                .sealing_key
                .open(&data.sealed, PAIRWISE)
                .map_err(|e| ServiceError::Internal(e.to_string()))
        };
        {
            let mut reader = self.reader().await?;
            if let Some(record) = reader.get_by_key1(tenant, Kind::SamlKey, PAIRWISE).await? {
                return open(&record);
            }
        }
        let ctx = crate::kernel::system_context(tenant, "SAML pairwise secret");
        let mut tx = self.write(&ctx).await?;
        if let Some(record) = tx.get_by_key1(tenant, Kind::SamlKey, PAIRWISE).await? {
            drop(tx);
            return open(&record);
        }
        let mut secret = vec![0u8; 32];
        tessera_core::crypto::fill_random(&mut secret)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let sealed = self
            .settings
            .sealing_key
            .seal(&secret, PAIRWISE)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let record = codec::new_record(
            Kind::SamlKey,
            Uuid::new_v4(),
            self.now(),
            Keys {
                key1: Some(PAIRWISE.to_string()),
                key2: Some(PAIRWISE.to_string()),
                sort_key: PAIRWISE.to_string(),
            },
            &SecretData { sealed },
        )?;
        tx.insert(tenant, &record).await?;
        let event = EventDraft::new(AuditAction::SamlKeyAdd)
            .on(Kind::SamlKey, record.id, PAIRWISE)
            .details(serde_json::json!({ "owner": PAIRWISE }));
        self.commit(tx, &ctx, event).await?;
        Ok(secret)
    }

    /// The tenant's IdP metadata, signed: its entity id, the signing certificates
    /// (the next one published before it signs), and the SSO and SLO endpoints.
    pub async fn metadata(&self, tenant: TenantId) -> ServiceResult<String> {
        self.metadata_for(tenant, Owner::Tenant, false).await
    }

    /// The IdP metadata as one application sees it: the certificates it is
    /// signed with (its own or the tenant's) and its next one, and whether it
    /// wants requests signed. `None` when the application has no SAML
    /// configuration.
    pub async fn application_metadata(
        &self,
        tenant: TenantId,
        app_id: AppId,
    ) -> ServiceResult<Option<String>> {
        match self.settings_of(tenant, app_id).await? {
            Some(settings) => Ok(Some(
                self.metadata_for(tenant, Owner::App(app_id), settings.require_signed_requests)
                    .await?,
            )),
            None => Ok(None),
        }
    }

    async fn metadata_for(
        &self,
        tenant: TenantId,
        owner: Owner,
        want_requests_signed: bool,
    ) -> ServiceResult<String> {
        let now = self.now();
        let cached = (tenant, owner, want_requests_signed);
        if let Ok(cache) = self.metadata.read()
            && let Some((made, xml)) = cache.get(&cached)
            && now.unix_seconds() - made.unix_seconds() < METADATA_CACHE_SECONDS
        {
            return Ok(xml.as_ref().clone());
        }
        let xml = self
            .sign_metadata(tenant, owner, want_requests_signed)
            .await?;
        if let Ok(mut cache) = self.metadata.write() {
            cache.insert(cached, (now, Arc::new(xml.clone())));
        }
        Ok(xml)
    }

    async fn sign_metadata(
        &self,
        tenant: TenantId,
        owner: Owner,
        want_requests_signed: bool,
    ) -> ServiceResult<String> {
        let certificates = self.published_certificates(tenant, owner).await?;
        let key = match owner {
            Owner::Tenant => self.owner_key(tenant, owner).await?,
            Owner::App(app) => self.signing_key(tenant, app).await?,
        };
        let now = self.now().unix_seconds();
        let mut random = [0u8; 16];
        aws_lc_rs::rand::fill(&mut random).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let base = format!("{}/saml2", self.public_url());
        let mut document = idp::metadata(&idp::IdpMetadata {
            id: response::identifier(&random),
            entity_id: self.entity_id(),
            valid_until: now + METADATA_SECONDS,
            signing_certificates: certificates,
            sso_url: format!("{base}/sso"),
            slo_url: format!("{base}/slo"),
            want_requests_signed,
            name_id_formats: [
                idp::NAME_ID_PERSISTENT,
                idp::NAME_ID_EMAIL,
                idp::NAME_ID_UNSPECIFIED,
                idp::NAME_ID_TRANSIENT,
            ]
            .iter()
            .map(|f| f.to_string())
            .collect(),
        });
        dsig::sign_enveloped(&mut document, &key, idp::SIGNATURE_POSITION)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
            response::serialize(&document)
        ))
    }
}

/// The one answer to a metadata URL that gave no service provider metadata.
fn not_fetched() -> ServiceError {
    ServiceError::invalid(
        "metadataUrl",
        "no service provider metadata could be fetched from that URL",
    )
}

async fn saml_record(
    reader: &mut dyn Reader,
    tenant: TenantId,
    app_id: AppId,
) -> ServiceResult<Option<tessera_store::Record>> {
    Ok(
        codec::list_all(reader, tenant, Kind::SamlApp, Some(app_id.to_string()))
            .await?
            .into_iter()
            .next(),
    )
}

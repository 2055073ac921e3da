//! Applications (the registration: client id, redirect URIs, app roles) and service
//! principals (the application's identity in the tenant), with their credentials.
//! Generated client secrets are shown once and stored only as a SHA-256 hash in a
//! record of their own; certificates are stored as public material.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::crypto::generate_secret;
use tessera_core::{AppId, SecretString, TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::{
    Application, ApplicationData, ApplicationSpec, ClientSecretData, KeyCredential,
    PasswordCredential, ServicePrincipal, ServicePrincipalData, ServicePrincipalSpec,
};
use tessera_directory::patch::{self, Change};
use tessera_directory::roles::action;
use tessera_directory::{certificate, validate};
use tessera_store::{Kind, Reader, Record, WriteTx};
use uuid::Uuid;

use super::attributes;
use crate::codec::{self, Keys, Page, PageRequest};
use crate::codec::{Patch, Versioned};
use crate::error::{OrConflict, ServiceError, ServiceResult};
use crate::{Context, Directory, EventDraft, target_facts};

const READ_ONLY: &[&str] = &[
    "id",
    "appId",
    "createdDateTime",
    "modifiedDateTime",
    "version",
    "keyCredentials",
    "passwordCredentials",
];
const SECRET_PREFIX: &str = "tsr_cs_";
const DEFAULT_SECRET_DAYS: i64 = 180;
const MAX_CREDENTIAL_DAYS: i64 = 730;
const MAX_CREDENTIALS: usize = 32;

/// A request to generate a client secret.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddPassword {
    #[serde(default)]
    pub display_name: Option<String>,
    /// Defaults to 180 days from now; at most two years.
    #[serde(default)]
    pub end_date_time: Option<Timestamp>,
}

/// The generated secret, shown once.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreatedPassword {
    #[serde(flatten)]
    pub credential: PasswordCredential,
    /// The secret; shown this once.
    #[serde(serialize_with = "expose_secret")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub secret_text: SecretString,
}

fn expose_secret<S: serde::Serializer>(
    secret: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

/// A request to add a certificate credential.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddKey {
    #[serde(default)]
    pub display_name: Option<String>,
    /// The certificate, PEM or base64 DER.
    pub key: String,
}

fn application_from(
    record: &Record,
    secrets: Vec<PasswordCredential>,
) -> ServiceResult<Application> {
    let data: ApplicationData = codec::data(record)?;
    Ok(Application {
        id: record.id,
        app_id: data.app_id,
        spec: data.spec,
        key_credentials: data.key_credentials,
        password_credentials: secrets,
        created_date_time: record.created,
        modified_date_time: record.modified,
        version: record.version,
    })
}

fn service_principal_from(
    record: &Record,
    secrets: Vec<PasswordCredential>,
) -> ServiceResult<ServicePrincipal> {
    let data: ServicePrincipalData = codec::data(record)?;
    Ok(ServicePrincipal {
        id: record.id,
        spec: data.spec,
        key_credentials: data.key_credentials,
        password_credentials: secrets,
        created_date_time: record.created,
        modified_date_time: record.modified,
        version: record.version,
    })
}

impl Directory {
    /// A page of applications or service principals, each with its secrets' metadata.
    /// (One lookup per item: the store has no batch lookup by owner yet.)
    async fn page_with_secrets(
        &self,
        ctx: &Context,
        kind: Kind,
        request: &PageRequest,
    ) -> ServiceResult<(Vec<(Record, Vec<PasswordCredential>)>, Option<String>)> {
        let mut reader = self.reader().await?;
        let (records, next_cursor) =
            codec::list_page(reader.as_mut(), ctx.tenant, kind, request, None).await?;
        let mut items = Vec::with_capacity(records.len());
        for record in records {
            let secrets = secrets_of(reader.as_mut(), ctx.tenant, record.id).await?;
            items.push((record, secrets));
        }
        Ok((items, next_cursor))
    }

    /// The service principal as this caller may see it (see `user_view`).
    fn service_principal_view(&self, ctx: &Context, mut sp: ServicePrincipal) -> ServicePrincipal {
        if !sp.spec.custom_security_attributes.is_empty()
            && !self.may_read_attributes(ctx, action::SPS_CSA_READ)
        {
            sp.spec.custom_security_attributes.clear();
        }
        sp
    }
}

fn application_keys(data: &ApplicationData) -> Keys {
    Keys {
        key1: Some(data.app_id.to_string()),
        key2: None,
        sort_key: codec::sort_key(&data.spec.display_name),
    }
}

fn service_principal_keys(data: &ServicePrincipalData) -> Keys {
    let name = data.spec.display_name.clone().unwrap_or_default();
    Keys {
        key1: Some(data.spec.app_id.to_string()),
        key2: None,
        sort_key: codec::sort_key(&name),
    }
}

async fn secrets_of(
    reader: &mut dyn Reader,
    tenant: TenantId,
    owner: Uuid,
) -> ServiceResult<Vec<PasswordCredential>> {
    let mut out = Vec::new();
    for record in
        codec::list_all(reader, tenant, Kind::ClientSecret, Some(owner.to_string())).await?
    {
        let data: ClientSecretData = codec::data(&record)?;
        out.push(data.credential);
    }
    out.sort_by_key(|c| c.start_date_time);
    Ok(out)
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn application_action(change: &Change) -> &'static str {
    match change.attribute.as_str() {
        "web" | "spa" | "publicClient" => action::APPS_AUTHENTICATION_UPDATE,
        "appRoles" => action::APPS_APP_ROLES_UPDATE,
        _ => action::APPS_BASIC_UPDATE,
    }
}

/// An app role can be deleted only once it has been disabled, so that tokens and
/// assignments naming it are not silently orphaned (as in Entra).
fn check_app_role_removal(before: &ApplicationSpec, after: &ApplicationSpec) -> ServiceResult<()> {
    for role in &before.app_roles {
        let kept = after.app_roles.iter().any(|r| r.id == role.id);
        if !kept && role.is_enabled {
            return Err(ServiceError::invalid(
                "appRoles",
                format!(
                    "app role {} ({}) must be disabled (isEnabled: false) before it is removed",
                    role.value, role.id
                ),
            ));
        }
    }
    Ok(())
}

fn credential_window(
    now: Timestamp,
    end: Option<Timestamp>,
    default_days: i64,
) -> ServiceResult<(Timestamp, Timestamp)> {
    let end = end.unwrap_or_else(|| now.plus_seconds(default_days * 86_400));
    if end <= now {
        return Err(ServiceError::invalid(
            "endDateTime",
            "must be in the future",
        ));
    }
    if end > now.plus_seconds(MAX_CREDENTIAL_DAYS * 86_400) {
        return Err(ServiceError::invalid(
            "endDateTime",
            format!("must be at most {MAX_CREDENTIAL_DAYS} days from now"),
        ));
    }
    Ok((now, end))
}

/// Which kind owns credentials: applications or service principals.
#[derive(Clone, Copy)]
struct CredentialOwner {
    kind: Kind,
    update_action: &'static str,
    password_added: AuditAction,
    password_removed: AuditAction,
    key_added: AuditAction,
    key_removed: AuditAction,
}

const APPLICATION_OWNER: CredentialOwner = CredentialOwner {
    kind: Kind::Application,
    update_action: action::APPS_CREDENTIALS_UPDATE,
    password_added: AuditAction::ApplicationPasswordAdd,
    password_removed: AuditAction::ApplicationPasswordRemove,
    key_added: AuditAction::ApplicationKeyAdd,
    key_removed: AuditAction::ApplicationKeyRemove,
};
const SERVICE_PRINCIPAL_OWNER: CredentialOwner = CredentialOwner {
    kind: Kind::ServicePrincipal,
    update_action: action::SPS_CREDENTIALS_UPDATE,
    password_added: AuditAction::ServicePrincipalPasswordAdd,
    password_removed: AuditAction::ServicePrincipalPasswordRemove,
    key_added: AuditAction::ServicePrincipalKeyAdd,
    key_removed: AuditAction::ServicePrincipalKeyRemove,
};

impl Directory {
    /// A provisioning client's credentials act in the SCIM API with its rights:
    /// whoever adds one (a secret, a certificate, a federated credential) must hold
    /// them too, or an application administrator could borrow them.
    async fn require_provisioning_rights(
        &self,
        tx: &mut dyn WriteTx,
        ctx: &Context,
        app_id: AppId,
    ) -> ServiceResult<()> {
        let clients = crate::kernel::tenant_settings::provisioning_clients(tx, ctx.tenant).await?;
        if clients.contains(&app_id.to_string().to_ascii_lowercase()) {
            for needed in super::PROVISIONING_ACTIONS {
                self.require(ctx, needed, &Target::Tenant)?;
            }
        }
        Ok(())
    }
}

/// The appId of an application or service principal record.
/// Ends, on every node once `tx` commits, the tokens the workload `app_id`
/// got for itself, and what each node remembers of its grants: its
/// credential was removed, it was disabled or deleted, or a role of its
/// changed.
pub(crate) async fn end_workload_tokens(
    directory: &Directory,
    tx: &mut dyn WriteTx,
    tenant: TenantId,
    app_id: AppId,
) -> ServiceResult<()> {
    directory
        .revocations()
        .revoke_in(
            tx,
            tenant,
            &[tessera_cae::Target::Workload(app_id.to_string())],
            tessera_cae::Reason::WorkloadChanged,
        )
        .await
}

fn app_id_of(record: &Record) -> ServiceResult<AppId> {
    Ok(match record.kind {
        Kind::Application => codec::data::<ApplicationData>(record)?.app_id,
        _ => codec::data::<ServicePrincipalData>(record)?.spec.app_id,
    })
}

/// Which object holds a credential: an application or a service principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialHolder {
    Application,
    ServicePrincipal,
}

impl CredentialHolder {
    fn owner(self) -> CredentialOwner {
        match self {
            CredentialHolder::Application => APPLICATION_OWNER,
            CredentialHolder::ServicePrincipal => SERVICE_PRINCIPAL_OWNER,
        }
    }
}

impl Directory {
    pub async fn create_application(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<Application> {
        let spec: ApplicationSpec = patch::parse_spec(body)?;
        validate::application_spec(&spec)?;
        self.require(ctx, action::APPS_CREATE, &Target::Tenant)?;
        let id = Uuid::new_v4();
        let data = ApplicationData {
            app_id: AppId::new_random(),
            spec,
            key_credentials: Vec::new(),
        };
        let mut tx = self.write(ctx).await?;
        let record = codec::new_record(
            Kind::Application,
            id,
            self.now(),
            application_keys(&data),
            &data,
        )?;
        tx.insert(ctx.tenant, &record).await?;
        let event = EventDraft::new(AuditAction::ApplicationCreate)
            .on(Kind::Application, id, &data.spec.display_name)
            .changes(patch::changes(&Value::Null, &to_json(&data.spec)))
            .details(json!({ "appId": data.app_id }));
        self.commit(tx, ctx, event).await?;
        application_from(&record, Vec::new())
    }

    pub async fn get_application(&self, ctx: &Context, id: Uuid) -> ServiceResult<Application> {
        self.require(ctx, action::APPS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let record = codec::load(reader.as_mut(), ctx.tenant, Kind::Application, id).await?;
        let secrets = secrets_of(reader.as_mut(), ctx.tenant, id).await?;
        application_from(&record, secrets)
    }

    /// An application by its client id (appId), the key clients and tokens know it by.
    pub async fn get_application_by_app_id(
        &self,
        ctx: &Context,
        app_id: AppId,
    ) -> ServiceResult<Application> {
        self.require(ctx, action::APPS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let record = reader
            .get_by_key1(ctx.tenant, Kind::Application, &app_id.to_string())
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                kind: "application with appId",
                id: app_id.to_string(),
            })?;
        let secrets = secrets_of(reader.as_mut(), ctx.tenant, record.id).await?;
        application_from(&record, secrets)
    }

    pub async fn list_applications(
        &self,
        ctx: &Context,
        request: &PageRequest,
    ) -> ServiceResult<Page<Application>> {
        self.require(ctx, action::APPS_READ, &Target::Tenant)?;
        let (items, next_cursor) = self
            .page_with_secrets(ctx, Kind::Application, request)
            .await?;
        Page::of(&items, next_cursor, |(record, secrets)| {
            application_from(record, secrets.clone())
        })
    }

    pub async fn update_application(
        &self,
        ctx: &Context,
        patch: Patch,
    ) -> ServiceResult<Application> {
        let Patch { at, body } = patch;
        let id = at.id;
        let (mut tx, record) = self
            .open_tenant_record(ctx, action::APPS_READ, Kind::Application, id)
            .await?;
        let facts = target_facts(tx.as_mut(), ctx.tenant, Kind::Application, id).await?;
        at.check(&record)?;
        let mut data: ApplicationData = codec::data(&record)?;
        let after: ApplicationSpec = patch::merge_patch(&data.spec, &body, READ_ONLY)?;
        validate::application_spec(&after)?;
        check_app_role_removal(&data.spec, &after)?;
        let changes = patch::changes(&to_json(&data.spec), &to_json(&after));
        self.require_for_patch(ctx, &facts, &body, application_action)?;
        if data.spec.federated_identity_credentials != after.federated_identity_credentials {
            self.require_provisioning_rights(tx.as_mut(), ctx, data.app_id)
                .await?;
        }
        let secrets = secrets_of(tx.as_mut(), ctx.tenant, id).await?;
        if changes.is_empty() {
            return application_from(&record, secrets);
        }
        let federation_removed = data
            .spec
            .federated_identity_credentials
            .iter()
            .any(|credential| !after.federated_identity_credentials.contains(credential));
        data.spec = after;
        let updated = codec::next_version(&record, self.now(), application_keys(&data), &data)?;
        tx.update(ctx.tenant, &updated).await?;
        if federation_removed {
            end_workload_tokens(self, tx.as_mut(), ctx.tenant, data.app_id).await?;
        }
        let event = EventDraft::new(AuditAction::ApplicationUpdate)
            .on(Kind::Application, id, &data.spec.display_name)
            .changes(changes);
        self.commit(tx, ctx, event).await?;
        application_from(&updated, secrets)
    }

    /// Deletes an application, its service principal and all their secrets.
    pub async fn delete_application(&self, ctx: &Context, at: Versioned) -> ServiceResult<()> {
        let id = at.id;
        let (mut tx, record, facts) = self
            .open_authorized(ctx, Kind::Application, id, action::APPS_DELETE)
            .await?;
        at.check(&record)?;
        let data: ApplicationData = codec::data(&record)?;
        let mut removed_secrets =
            codec::delete_owned(tx.as_mut(), ctx.tenant, Kind::ClientSecret, id).await?;
        let mut service_principal = Value::Null;
        if let Some(sp) = tx
            .get_by_key1(ctx.tenant, Kind::ServicePrincipal, &data.app_id.to_string())
            .await?
        {
            self.require(ctx, action::SPS_DELETE, &facts)?;
            self.refuse_losing_last_global_administrator(tx.as_mut(), ctx, sp.id)
                .await?;
            removed_secrets.extend(
                codec::delete_owned(tx.as_mut(), ctx.tenant, Kind::ClientSecret, sp.id).await?,
            );
            let cleanup = self
                .remove_principal_everywhere(tx.as_mut(), ctx, sp.id)
                .await?;
            tx.delete(ctx.tenant, Kind::ServicePrincipal, sp.id, None)
                .await?;
            service_principal = json!({ "id": sp.id, "removedFrom": cleanup });
        }
        end_workload_tokens(self, tx.as_mut(), ctx.tenant, data.app_id).await?;
        // Its SAML configuration goes with it (and frees its entity id).
        for saml in codec::list_all(
            tx.as_mut(),
            ctx.tenant,
            Kind::SamlApp,
            Some(data.app_id.to_string()),
        )
        .await?
        {
            tx.delete(ctx.tenant, Kind::SamlApp, saml.id, None).await?;
        }
        let saml_certificates =
            crate::Saml::delete_application_certificates(tx.as_mut(), ctx.tenant, data.app_id)
                .await?;
        tx.delete(ctx.tenant, Kind::Application, id, Some(record.version))
            .await?;
        let event = EventDraft::new(AuditAction::ApplicationDelete)
            .on(Kind::Application, id, &data.spec.display_name)
            .changes(patch::changes(&to_json(&data.spec), &Value::Null))
            .details(json!({
                "appId": data.app_id,
                "servicePrincipal": service_principal,
                "secretsRemoved": removed_secrets,
                "samlCertificatesRemoved": saml_certificates,
            }));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }

    pub async fn create_service_principal(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<ServicePrincipal> {
        let mut spec: ServicePrincipalSpec = patch::parse_spec(body)?;
        validate::service_principal_spec(&spec)?;
        self.require(ctx, action::SPS_CREATE, &Target::Tenant)?;
        if !spec.custom_security_attributes.is_empty() {
            self.require(ctx, action::SPS_CSA_UPDATE, &Target::Tenant)?;
        }
        let id = Uuid::new_v4();
        let mut tx = self.write(ctx).await?;
        let Some(application) = tx
            .get_by_key1(ctx.tenant, Kind::Application, &spec.app_id.to_string())
            .await?
        else {
            return Err(ServiceError::invalid(
                "appId",
                format!("no application with appId {} exists", spec.app_id),
            ));
        };
        let app_data: ApplicationData = codec::data(&application)?;
        if spec.display_name.is_none() {
            spec.display_name = Some(app_data.spec.display_name.clone());
        }
        if !spec.custom_security_attributes.is_empty() {
            let definitions = attributes::definitions(tx.as_mut(), ctx.tenant).await?;
            validate::custom_security_attributes(
                &mut spec.custom_security_attributes,
                &definitions,
            )?;
        }
        let data = ServicePrincipalData {
            spec,
            key_credentials: Vec::new(),
        };
        let record = codec::new_record(
            Kind::ServicePrincipal,
            id,
            self.now(),
            service_principal_keys(&data),
            &data,
        )?;
        tx.insert(ctx.tenant, &record)
            .await
            .or_conflict("the application already has a service principal")?;
        let name = data.spec.display_name.clone().unwrap_or_default();
        let event = EventDraft::new(AuditAction::ServicePrincipalCreate)
            .on(Kind::ServicePrincipal, id, &name)
            .changes(patch::changes(&Value::Null, &to_json(&data.spec)));
        self.commit(tx, ctx, event).await?;
        Ok(self.service_principal_view(ctx, service_principal_from(&record, Vec::new())?))
    }

    pub async fn get_service_principal(
        &self,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<ServicePrincipal> {
        self.require(ctx, action::SPS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let record = codec::load(reader.as_mut(), ctx.tenant, Kind::ServicePrincipal, id).await?;
        let secrets = secrets_of(reader.as_mut(), ctx.tenant, id).await?;
        Ok(self.service_principal_view(ctx, service_principal_from(&record, secrets)?))
    }

    /// The service principal of the application with this client id (appId).
    pub async fn get_service_principal_by_app_id(
        &self,
        ctx: &Context,
        app_id: AppId,
    ) -> ServiceResult<ServicePrincipal> {
        self.require(ctx, action::SPS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let record = reader
            .get_by_key1(ctx.tenant, Kind::ServicePrincipal, &app_id.to_string())
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                kind: "service principal with appId",
                id: app_id.to_string(),
            })?;
        let secrets = secrets_of(reader.as_mut(), ctx.tenant, record.id).await?;
        Ok(self.service_principal_view(ctx, service_principal_from(&record, secrets)?))
    }

    pub async fn list_service_principals(
        &self,
        ctx: &Context,
        request: &PageRequest,
    ) -> ServiceResult<Page<ServicePrincipal>> {
        self.require(ctx, action::SPS_READ, &Target::Tenant)?;
        let (items, next_cursor) = self
            .page_with_secrets(ctx, Kind::ServicePrincipal, request)
            .await?;
        let mut value = Vec::with_capacity(items.len());
        for (record, secrets) in items {
            value.push(self.service_principal_view(ctx, service_principal_from(&record, secrets)?));
        }
        Ok(Page { value, next_cursor })
    }

    pub async fn update_service_principal(
        &self,
        ctx: &Context,
        patch: Patch,
    ) -> ServiceResult<ServicePrincipal> {
        let Patch { at, body } = patch;
        let id = at.id;
        let (mut tx, record) = self
            .open_tenant_record(ctx, action::SPS_READ, Kind::ServicePrincipal, id)
            .await?;
        let facts = target_facts(tx.as_mut(), ctx.tenant, Kind::ServicePrincipal, id).await?;
        at.check(&record)?;
        let mut data: ServicePrincipalData = codec::data(&record)?;
        let mut after: ServicePrincipalSpec = patch::merge_patch(&data.spec, &body, READ_ONLY)?;
        if after.app_id != data.spec.app_id {
            return Err(ServiceError::invalid(
                "appId",
                "is set when a service principal is created and cannot change",
            ));
        }
        validate::service_principal_spec(&after)?;
        let changes = patch::changes(&to_json(&data.spec), &to_json(&after));
        for change in &patch::named(&body) {
            let needed = if change.attribute == "customSecurityAttributes" {
                action::SPS_CSA_UPDATE
            } else {
                action::SPS_BASIC_UPDATE
            };
            self.require(ctx, needed, &facts)?;
        }
        let secrets = secrets_of(tx.as_mut(), ctx.tenant, id).await?;
        if changes.is_empty() {
            return Ok(self.service_principal_view(ctx, service_principal_from(&record, secrets)?));
        }
        if !after.custom_security_attributes.is_empty() {
            let definitions = attributes::definitions(tx.as_mut(), ctx.tenant).await?;
            validate::custom_security_attributes(
                &mut after.custom_security_attributes,
                &definitions,
            )?;
        }
        let disabled = data.spec.account_enabled && !after.account_enabled;
        data.spec = after;
        let updated =
            codec::next_version(&record, self.now(), service_principal_keys(&data), &data)?;
        tx.update(ctx.tenant, &updated).await?;
        if disabled {
            end_workload_tokens(self, tx.as_mut(), ctx.tenant, data.spec.app_id).await?;
        }
        let name = data.spec.display_name.clone().unwrap_or_default();
        let event = EventDraft::new(AuditAction::ServicePrincipalUpdate)
            .on(Kind::ServicePrincipal, id, &name)
            .changes(changes);
        self.commit(tx, ctx, event).await?;
        Ok(self.service_principal_view(ctx, service_principal_from(&updated, secrets)?))
    }

    pub async fn delete_service_principal(
        &self,
        ctx: &Context,
        at: Versioned,
    ) -> ServiceResult<()> {
        let id = at.id;
        let (mut tx, record, _) = self
            .open_authorized(ctx, Kind::ServicePrincipal, id, action::SPS_DELETE)
            .await?;
        at.check(&record)?;
        self.refuse_losing_last_global_administrator(tx.as_mut(), ctx, id)
            .await?;
        let data: ServicePrincipalData = codec::data(&record)?;
        let secrets = codec::delete_owned(tx.as_mut(), ctx.tenant, Kind::ClientSecret, id).await?;
        let cleanup = self
            .remove_principal_everywhere(tx.as_mut(), ctx, id)
            .await?;
        tx.delete(ctx.tenant, Kind::ServicePrincipal, id, Some(record.version))
            .await?;
        end_workload_tokens(self, tx.as_mut(), ctx.tenant, data.spec.app_id).await?;
        let name = data.spec.display_name.clone().unwrap_or_default();
        let event = EventDraft::new(AuditAction::ServicePrincipalDelete)
            .on(Kind::ServicePrincipal, id, &name)
            .changes(patch::changes(&to_json(&data.spec), &Value::Null))
            .details(json!({ "removedFrom": cleanup, "secretsRemoved": secrets }));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }

    // ---- credentials ---------------------------------------------------------

    pub async fn add_password(
        &self,
        ctx: &Context,
        holder: CredentialHolder,
        id: Uuid,
        body: Value,
    ) -> ServiceResult<CreatedPassword> {
        let owner = holder.owner();
        let request: AddPassword = patch::parse_spec(body)?;
        if let Some(name) = &request.display_name
            && (name.trim().is_empty() || name.chars().count() > 128)
        {
            return Err(ServiceError::invalid(
                "displayName",
                "must be 1 to 128 characters",
            ));
        }
        self.require(ctx, owner.update_action, &Target::Tenant)?;
        let now = self.now();
        let (start, end) = credential_window(now, request.end_date_time, DEFAULT_SECRET_DAYS)?;
        let mut tx = self.write(ctx).await?;
        if !super::consent::credential_policy(tx.as_mut(), ctx.tenant)
            .await?
            .allow_password_credentials
        {
            return Err(ServiceError::invalid(
                "passwordCredentials",
                "the tenant's application credential policy forbids client secrets: add a certificate",
            ));
        }
        let (record, _) = self
            .load_authorized(tx.as_mut(), ctx, owner.kind, id, owner.update_action)
            .await?;
        self.require_provisioning_rights(tx.as_mut(), ctx, app_id_of(&record)?)
            .await?;
        if secrets_of(tx.as_mut(), ctx.tenant, id).await?.len() >= MAX_CREDENTIALS {
            return Err(ServiceError::Conflict {
                message: format!("at most {MAX_CREDENTIALS} secrets; remove an old one first"),
            });
        }
        let generated =
            generate_secret(SECRET_PREFIX).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let credential = PasswordCredential {
            key_id: Uuid::new_v4(),
            display_name: request.display_name,
            hint: generated.hint.clone(),
            start_date_time: start,
            end_date_time: end,
        };
        let data = ClientSecretData {
            owner_id: id,
            credential: credential.clone(),
        };
        let keys = Keys {
            key1: Some(generated.hash.clone()),
            key2: Some(id.to_string()),
            sort_key: credential.key_id.to_string(),
        };
        let secret_record =
            codec::new_record(Kind::ClientSecret, credential.key_id, now, keys, &data)?;
        tx.insert(ctx.tenant, &secret_record).await?;
        let event = EventDraft::new(owner.password_added)
            .on(owner.kind, id, &super::groups::display_name_of(&record))
            .details(json!({
                "keyId": credential.key_id,
                "hint": credential.hint,
                "endDateTime": credential.end_date_time,
            }));
        self.commit(tx, ctx, event).await?;
        Ok(CreatedPassword {
            credential,
            secret_text: generated.secret,
        })
    }

    pub async fn remove_password(
        &self,
        ctx: &Context,
        holder: CredentialHolder,
        id: Uuid,
        key_id: Uuid,
    ) -> ServiceResult<()> {
        let owner = holder.owner();
        let (mut tx, record, _) = self
            .open_authorized(ctx, owner.kind, id, owner.update_action)
            .await?;
        let secret = tx.get(ctx.tenant, Kind::ClientSecret, key_id).await?;
        let Some(secret) = secret.filter(|s| s.key2.as_deref() == Some(id.to_string().as_str()))
        else {
            return Err(ServiceError::NotFound {
                kind: "passwordCredential",
                id: key_id.to_string(),
            });
        };
        tx.delete(ctx.tenant, Kind::ClientSecret, secret.id, None)
            .await?;
        end_workload_tokens(self, tx.as_mut(), ctx.tenant, app_id_of(&record)?).await?;
        let event = EventDraft::new(owner.password_removed)
            .on(owner.kind, id, &super::groups::display_name_of(&record))
            .details(json!({ "keyId": key_id }));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }

    pub async fn add_key(
        &self,
        ctx: &Context,
        holder: CredentialHolder,
        id: Uuid,
        body: Value,
    ) -> ServiceResult<KeyCredential> {
        let owner = holder.owner();
        let request: AddKey = patch::parse_spec(body)?;
        let info = certificate::parse(&request.key)
            .map_err(|message| ServiceError::invalid("key", message))?;
        let now = self.now();
        if info.not_after <= now {
            return Err(ServiceError::invalid("key", "the certificate has expired"));
        }
        self.require(ctx, owner.update_action, &Target::Tenant)?;
        {
            let mut reader = self.reader().await?;
            if super::consent::credential_policy(reader.as_mut(), ctx.tenant)
                .await?
                .require_trusted_certificates
            {
                drop(reader);
                if let Err(refusal) = self
                    .validate_client_chain(ctx.tenant, std::slice::from_ref(&info.der))
                    .await?
                {
                    return Err(ServiceError::invalid(
                        "key",
                        format!(
                            "the tenant's application credential policy requires a certificate from a trusted CA ({refusal:?})"
                        ),
                    ));
                }
            }
        }
        let credential = KeyCredential {
            key_id: Uuid::new_v4(),
            display_name: request.display_name.or_else(|| Some(info.subject.clone())),
            key_type: "AsymmetricX509Cert".to_string(),
            usage: "Verify".to_string(),
            key: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &info.der),
            thumbprint_sha256: info.thumbprint_sha256.clone(),
            start_date_time: info.not_before,
            end_date_time: info.not_after,
        };
        let mut tx = self.write(ctx).await?;
        let (record, _) = self
            .load_authorized(tx.as_mut(), ctx, owner.kind, id, owner.update_action)
            .await?;
        self.require_provisioning_rights(tx.as_mut(), ctx, app_id_of(&record)?)
            .await?;
        let updated =
            with_key_credentials(&record, now, |keys| push_key(keys, credential.clone()))?;
        tx.update(ctx.tenant, &updated).await?;
        let event = EventDraft::new(owner.key_added)
            .on(owner.kind, id, &super::groups::display_name_of(&record))
            .details(json!({
                "keyId": credential.key_id, "thumbprintSha256": credential.thumbprint_sha256,
                "subject": info.subject, "endDateTime": credential.end_date_time,
            }));
        self.commit(tx, ctx, event).await?;
        Ok(credential)
    }

    pub async fn remove_key(
        &self,
        ctx: &Context,
        holder: CredentialHolder,
        id: Uuid,
        key_id: Uuid,
    ) -> ServiceResult<()> {
        let owner = holder.owner();
        let (mut tx, record, _) = self
            .open_authorized(ctx, owner.kind, id, owner.update_action)
            .await?;
        let updated = with_key_credentials(&record, self.now(), |keys| {
            let before = keys.len();
            keys.retain(|k| k.key_id != key_id);
            if keys.len() == before {
                return Err(ServiceError::NotFound {
                    kind: "keyCredential",
                    id: key_id.to_string(),
                });
            }
            Ok(())
        })?;
        tx.update(ctx.tenant, &updated).await?;
        end_workload_tokens(self, tx.as_mut(), ctx.tenant, app_id_of(&record)?).await?;
        let event = EventDraft::new(owner.key_removed)
            .on(owner.kind, id, &super::groups::display_name_of(&record))
            .details(json!({ "keyId": key_id }));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }
}

/// The next version of an application or service principal record after `change`
/// to its certificate credentials.
fn with_key_credentials(
    record: &Record,
    now: Timestamp,
    change: impl FnOnce(&mut Vec<KeyCredential>) -> ServiceResult<()>,
) -> ServiceResult<Record> {
    if record.kind == Kind::Application {
        let mut data: ApplicationData = codec::data(record)?;
        change(&mut data.key_credentials)?;
        codec::next_version(record, now, application_keys(&data), &data)
    } else {
        let mut data: ServicePrincipalData = codec::data(record)?;
        change(&mut data.key_credentials)?;
        codec::next_version(record, now, service_principal_keys(&data), &data)
    }
}

fn push_key(keys: &mut Vec<KeyCredential>, credential: KeyCredential) -> ServiceResult<()> {
    if keys.len() >= MAX_CREDENTIALS {
        return Err(ServiceError::Conflict {
            message: format!("at most {MAX_CREDENTIALS} certificates; remove an old one first"),
        });
    }
    if keys
        .iter()
        .any(|k| k.thumbprint_sha256 == credential.thumbprint_sha256)
    {
        return Err(ServiceError::Conflict {
            message: "this certificate is already a credential".to_string(),
        });
    }
    keys.push(credential);
    Ok(())
}

//! The tenant's provisioning settings.

use serde::{Deserialize, Serialize};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::patch;

use super::Provisioning;
use crate::Context;
use crate::codec::Replacement;
use crate::error::{ServiceError, ServiceResult};
use crate::kernel::tenant_settings::{TenantSetting, sealed};

/// How provisioned users are made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvisioningSettings {
    /// The domain added to a SCIM userName without `@` to make the user principal
    /// name (`jdoe` becomes `jdoe@<defaultDomain>`); without it such a userName is
    /// refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_domain: Option<String>,
    /// Applications (by appId) that may provision with OAuth client credentials:
    /// their tokens for the SCIM API (`urn:tessera:scim/.default`) carry the app
    /// role `Provisioning.ReadWrite.All`, with the rights a provisioning token has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub clients: Vec<tessera_core::AppId>,
    /// How SCIM users map to the directory's users (without it, the default
    /// mapping: see `GET /provisioning/mapping`). Checked whole when saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub user_mapping: Option<tessera_provisioning::Mapping>,
    /// How the HR system's export files are read, mapped and matched to users
    /// (see `POST /provisioning/hr/preview` and `/provisioning/hr/runs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hr_import: Option<super::hr::HrImportSettings>,
}

/// Whether an application may provision with client credentials.
pub(crate) async fn allows_client(
    reader: &mut dyn tessera_store::Reader,
    tenant: tessera_core::TenantId,
    app_id: tessera_core::AppId,
) -> ServiceResult<bool> {
    let settings: ProvisioningSettings =
        crate::kernel::tenant_settings::read_setting(reader, tenant).await?;
    Ok(settings.clients.contains(&app_id))
}

impl sealed::Sealed for ProvisioningSettings {}

impl TenantSetting for ProvisioningSettings {
    const KEY: &'static str = "provisioning";
    const UPDATED: AuditAction = AuditAction::ProvisioningSettingsUpdate;
}

impl ProvisioningSettings {
    fn check(&self) -> ServiceResult<()> {
        if self.clients.len() > 100 {
            return Err(ServiceError::invalid("clients", "at most 100 applications"));
        }
        if let Some(domain) = &self.default_domain
            && tessera_directory::validate::user_principal_name(&format!("x@{domain}")).is_err()
        {
            return Err(ServiceError::invalid(
                "defaultDomain",
                "must be a DNS domain, e.g. example.com",
            ));
        }
        Ok(())
    }
}

impl Provisioning {
    /// Provisioning writes the custom security attributes the mapping maps: who
    /// saves such a mapping, or lets a token or client provision under it, must
    /// be allowed to assign them.
    pub(crate) fn may_hand_out_custom(
        &self,
        ctx: &Context,
        settings: &ProvisioningSettings,
    ) -> ServiceResult<()> {
        if settings
            .user_mapping
            .as_ref()
            .is_some_and(super::mapping::writes_custom)
        {
            self.require(
                ctx,
                tessera_directory::roles::action::USERS_CSA_UPDATE,
                &tessera_directory::authz::Target::Tenant,
            )?;
        }
        Ok(())
    }

    /// The settings with the version to send as `If-Match`.
    pub async fn settings(&self, ctx: &Context) -> ServiceResult<(ProvisioningSettings, i64)> {
        self.get_setting_versioned::<ProvisioningSettings>(ctx)
            .await
    }

    /// Replaces the settings (a manager of the tenant's policies).
    pub async fn set_settings(
        &self,
        ctx: &Context,
        change: Replacement,
    ) -> ServiceResult<ProvisioningSettings> {
        self.may_change_settings(ctx)?;
        let Replacement { body, if_match } = change;
        let settings: ProvisioningSettings = patch::parse_spec(body)?;
        settings.check()?;
        let (mut tx, before) = self
            .open_setting::<ProvisioningSettings>(ctx, if_match)
            .await?;
        // Giving an application the SCIM API's rights needs those rights (and,
        // where the mapping writes custom security attributes, the right to).
        if settings.clients != before.clients {
            self.may_manage_tokens(ctx)?;
            self.may_hand_out_custom(ctx, &settings)?;
        }
        if settings.user_mapping != before.user_mapping
            && let Some(mapping) = &settings.user_mapping
        {
            // Checked before the mapping is, so a refused caller learns nothing
            // of the tenant's attribute definitions.
            self.may_hand_out_custom(ctx, &settings)?;
            super::mapping::check_user_mapping(tx.as_mut(), ctx.tenant, mapping).await?;
        }
        if settings.hr_import != before.hr_import
            && let Some(hr) = &settings.hr_import
        {
            // The mapping decides what runs write (a schedule runs as the
            // provisioning service): whoever sets it must hold what they do.
            self.may_manage_tokens(ctx)?;
            // Runs write what the mapping maps.
            if super::mapping::writes_custom(&hr.mapping) {
                self.require(
                    ctx,
                    tessera_directory::roles::action::USERS_CSA_UPDATE,
                    &tessera_directory::authz::Target::Tenant,
                )?;
            }
            super::hr::check_settings(tx.as_mut(), ctx.tenant, hr).await?;
        }
        self.save_setting(ctx, tx, &before, &settings).await?;
        Ok(settings)
    }
}

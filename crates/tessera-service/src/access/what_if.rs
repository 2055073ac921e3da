//! What-If: a sign-in described instead of made, decided by the same policy set
//! and facts as a real one, with the explanation.

use std::net::IpAddr;

use serde::Deserialize;
use tessera_authn::strength::{self, Mode, UsedMethod};
use tessera_ca::engine::{self, ClientApp, Target};
use tessera_ca::explain::Explanation;
use tessera_ca::facts::{FactSubject, SignInFacts, platform_of};
use tessera_ca::model::{Platform, RiskLevel};
use tessera_ca::validate;
use tessera_core::{AppId, TenantId};
use tessera_directory::authz::Target as AuthzTarget;
use tessera_directory::model::{ApplicationData, DeviceSpec, ServicePrincipalData};
use tessera_directory::roles::action;
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use super::Access;
use crate::Context;
use crate::codec;
use crate::directory::{auth_policy, builtin};
use crate::error::{ServiceError, ServiceResult};

/// A What-If question: a sign-in described instead of made.
#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhatIf {
    #[serde(default)]
    pub user_id: Option<Uuid>,
    #[serde(default)]
    pub service_principal_id: Option<Uuid>,
    /// The application signed in to: its application (client) id, its object id,
    /// its service principal's id or its display name; or `MicrosoftAdminPortals`
    /// for management. An application that does not exist is refused.
    #[serde(default)]
    pub app_id: Option<String>,
    /// The resource's application (client) id or object id, when the client asks
    /// for another application's token.
    #[serde(default)]
    pub resource_app_id: Option<Uuid>,
    /// `registerSecurityInfo` or `registerOrJoinDevices`.
    #[serde(default)]
    pub user_action: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub ip_address: Option<IpAddr>,
    /// Overrides the country database.
    #[serde(default)]
    pub country: Option<String>,
    /// Overrides the platform the device or the User-Agent names.
    #[serde(default)]
    pub platform: Option<String>,
    /// The browser's or client's User-Agent: names the platform, as in a real
    /// sign-in from a device that is not registered.
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub device_id: Option<Uuid>,
    #[serde(default)]
    pub client_app_type: Option<String>,
    /// `none`, `low`, `medium` or `high`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub sign_in_risk_level: Option<RiskLevel>,
    /// The user's (or the workload's) risk: `none`, `low`, `medium` or `high`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub user_risk_level: Option<RiskLevel>,
    #[serde(default)]
    pub authentication_contexts: Vec<String>,
    #[serde(default)]
    pub device_code_flow: bool,
    /// Strengths the sign-in met (default: none), with every strength they imply
    /// (phishing-resistant MFA meets MFA too).
    #[serde(default)]
    pub satisfied_strengths: Vec<Uuid>,
    /// Methods the sign-in used (`password`, `softwareOath`, `fido2`...): the
    /// strengths they reach are met, as in a real sign-in.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub authentication_methods: Vec<Mode>,
}

impl Access {
    /// What-If: which policies would apply to a described sign-in, and why.
    pub async fn what_if(&self, ctx: &Context, question: WhatIf) -> ServiceResult<Explanation> {
        self.require(ctx, action::CA_POLICIES_READ, &AuthzTarget::Tenant)?;
        let target = match (&question.app_id, &question.user_action) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::invalid(
                    "userAction",
                    "ask about an application or a user action, not both",
                ));
            }
            (None, Some(a)) => Target::UserAction(match a.as_str() {
                "registerSecurityInfo" | validate::REGISTER_SECURITY_INFO => {
                    engine::UserAction::RegisterSecurityInfo
                }
                "registerOrJoinDevices" | validate::REGISTER_DEVICE => {
                    engine::UserAction::RegisterOrJoinDevices
                }
                _ => {
                    return Err(ServiceError::invalid(
                        "userAction",
                        "is registerSecurityInfo or registerOrJoinDevices",
                    ));
                }
            }),
            (Some(app), None) if app == validate::ADMIN_PORTALS => Target::App {
                resource: None,
                app_id: builtin::cli_client_id(),
                admin_portal: true,
            },
            (Some(app), None) => {
                let mut reader = self.reader().await?;
                let app_id = application_named(reader.as_mut(), ctx.tenant, "appId", app).await?;
                let resource = match question.resource_app_id {
                    Some(resource) => Some(
                        application_named(
                            reader.as_mut(),
                            ctx.tenant,
                            "resourceAppId",
                            &resource.to_string(),
                        )
                        .await?,
                    ),
                    None => None,
                };
                Target::App {
                    app_id,
                    resource: resource.filter(|r| *r != app_id),
                    admin_portal: builtin::is_management_client(app_id),
                }
            }
            (None, None) => {
                return Err(ServiceError::invalid(
                    "appId",
                    "name the application (or user action) signed in to",
                ));
            }
        };
        let (subject, stored_sign_in_risk, accepted) =
            match (question.user_id, question.service_principal_id) {
                (Some(user), None) => {
                    let mut reader = self.snapshot().await?;
                    codec::load(reader.as_mut(), ctx.tenant, Kind::User, user).await?;
                    let (mut subject, sign_in_risk, accepted) =
                        self.user_subject(reader.as_mut(), ctx.tenant, user).await?;
                    drop(reader);
                    if let (Some(level), FactSubject::User { risk, .. }) =
                        (question.user_risk_level, &mut subject)
                    {
                        *risk = level;
                    }
                    (subject, sign_in_risk, accepted)
                }
                (None, Some(sp)) => {
                    let mut reader = self.reader().await?;
                    codec::load(reader.as_mut(), ctx.tenant, Kind::ServicePrincipal, sp).await?;
                    drop(reader);
                    let mut subject = self.workload_subject(ctx.tenant, sp).await?;
                    if let (Some(level), FactSubject::Workload { risk, .. }) =
                        (question.user_risk_level, &mut subject)
                    {
                        *risk = level;
                    }
                    (subject, RiskLevel::None, Vec::new())
                }
                _ => {
                    return Err(ServiceError::invalid(
                        "userId",
                        "name a user (userId) or a workload (servicePrincipalId)",
                    ));
                }
            };
        let device = match question.device_id {
            Some(id) => {
                let mut reader = self.reader().await?;
                let record = codec::load(reader.as_mut(), ctx.tenant, Kind::Device, id).await?;
                let mut spec = codec::data::<DeviceSpec>(&record)?;
                spec.is_compliant = spec.compliant_at(self.now());
                Some((id, spec))
            }
            None => None,
        };
        let platform = match &question.platform {
            Some(p) => Some(
                Platform::parse(p)
                    .filter(|p| *p != Platform::All)
                    .ok_or_else(|| {
                        ServiceError::invalid(
                            "platform",
                            "is android, iOS, windows, windowsPhone, macOS or linux",
                        )
                    })?,
            ),
            None => platform_of(
                device.as_ref().map(|(_, d)| d),
                question.user_agent.as_deref(),
            ),
        };
        let client_app = match &question.client_app_type {
            Some(c) => ClientApp::parse(c).ok_or_else(|| {
                ServiceError::invalid(
                    "clientAppType",
                    "is browser, mobileAppsAndDesktopClients, exchangeActiveSync or other",
                )
            })?,
            None => ClientApp::Browser,
        };
        // As a sign-in sees it: an IPv4-mapped IPv6 address is IPv4.
        let ip = question.ip_address.map(|ip| ip.to_canonical());
        let country = match &question.country {
            Some(c) => Some(engine::parse_country(c).ok_or_else(|| {
                ServiceError::invalid("country", "is an ISO 3166-1 alpha-2 code")
            })?),
            None => self.country_of(ip),
        };
        let no_country_database = question.country.is_none() && self.ca.country.get().is_none();
        // What the sign-in met, derived as a real sign-in derives it.
        let strengths = {
            let mut reader = self.reader().await?;
            let all = auth_policy::all_strengths(reader.as_mut(), ctx.tenant).await?;
            let mut met = strength::implied(&all, &question.satisfied_strengths).map_err(|id| {
                let index = question
                    .satisfied_strengths
                    .iter()
                    .position(|s| *s == id)
                    .unwrap_or_default();
                ServiceError::invalid(
                    format!("satisfiedStrengths[{index}]"),
                    format!("no authentication strength has the id {id}"),
                )
            })?;
            let used: Vec<UsedMethod> = question
                .authentication_methods
                .iter()
                .map(|m| UsedMethod::plain(*m))
                .collect();
            for id in strength::reached(&all, &used) {
                if !met.contains(&id) {
                    met.push(id);
                }
            }
            met
        };
        for (index, context) in question.authentication_contexts.iter().enumerate() {
            if validate::auth_context_number(context).is_none() {
                return Err(ServiceError::invalid(
                    format!("authenticationContexts[{index}]"),
                    "is c1 to c99",
                ));
            }
        }
        let facts = SignInFacts {
            subject,
            target,
            auth_contexts: question.authentication_contexts.clone(),
            client_app,
            platform,
            ip,
            country,
            device,
            // Unless the question names one: what a sign-in from the address
            // would carry (an anonymizer, a malicious address).
            sign_in_risk: question.sign_in_risk_level.unwrap_or_else(|| {
                let address = ip.map(|ip| ip.to_string());
                stored_sign_in_risk.max(self.risk.address_risk(address.as_deref()))
            }),
            device_code_flow: question.device_code_flow,
            strengths,
            auth_age_seconds: Some(0),
            password_changed: false,
            accepted_terms: accepted,
        };
        let decided = self.decide(ctx.tenant, &facts).await?;
        let mut explanation = decided.explain();
        if no_country_database && decided.set.used_countries(&decided.decision) {
            explanation.warnings.push(NO_COUNTRY_DATABASE.to_string());
        }
        Ok(explanation)
    }
}

/// The What-If warning when country locations were evaluated without a database.
pub const NO_COUNTRY_DATABASE: &str = "no country database is configured (geoip_database): every address is in an unknown country, so a country location matches it only when it includes unknown countries, and a policy that allows only some countries blocks it; name the country in the question (country) to evaluate one";

/// The application a What-If question names, as its application (client) id: by
/// client id, application object id, service principal id or display name (the
/// same name in any case; two applications with that name are ambiguous). The
/// command line's own client needs no record.
async fn application_named(
    reader: &mut dyn Reader,
    tenant: TenantId,
    field: &str,
    text: &str,
) -> ServiceResult<AppId> {
    let text = text.trim();
    if let Ok(id) = Uuid::parse_str(text) {
        if builtin::is_management_client(AppId::from_uuid(id))
            || AppId::from_uuid(id) == builtin::provisioning_api_id()
            || reader
                .get_by_key1(tenant, Kind::Application, &id.to_string())
                .await?
                .is_some()
        {
            return Ok(AppId::from_uuid(id));
        }
        if let Some(record) = reader.get(tenant, Kind::Application, id).await? {
            let data: ApplicationData = codec::data(&record)?;
            return Ok(data.app_id);
        }
        if let Some(record) = reader.get(tenant, Kind::ServicePrincipal, id).await? {
            let data: ServicePrincipalData = codec::data(&record)?;
            return Ok(data.spec.app_id);
        }
    } else if !text.is_empty() {
        let name = codec::sort_key(text);
        let query = tessera_store::ListQuery {
            after: None,
            limit: 100,
            prefix: Some(name.clone()),
            key2: None,
        };
        let mut found = Vec::new();
        for record in reader.list(tenant, Kind::Application, &query).await? {
            if record.sort_key == name {
                let data: ApplicationData = codec::data(&record)?;
                found.push(data.app_id);
            }
        }
        match found.as_slice() {
            [only] => return Ok(*only),
            [] => {}
            many => {
                let ids: Vec<String> = many.iter().take(5).map(AppId::to_string).collect();
                return Err(ServiceError::invalid(
                    field,
                    format!(
                        "{} applications are named {text:?} (application ids {}{}): name one by its application id",
                        many.len(),
                        ids.join(", "),
                        if many.len() > ids.len() { ", ..." } else { "" }
                    ),
                ));
            }
        }
    }
    Err(ServiceError::invalid(
        field,
        format!(
            "application {text:?} was not found: no application here has that application (client) id, object id or display name"
        ),
    ))
}

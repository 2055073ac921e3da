//! Conditional Access policies, named locations and terms of use in Microsoft
//! Graph's JSON (`conditionalAccessPolicy`, `namedLocation`), the native exchange
//! format: what an administrator exports from Entra ID reads here unchanged once
//! [`crate::import::normalize_policy`] has taken off OData annotations and read-only fields.
//!
//! Identifiers stay as Graph spells them (`All`, `None`, `GuestsOrExternalUsers`,
//! `AllTrusted`, `MicrosoftAdminPortals`, GUIDs) so a policy round-trips; validation
//! says which values are understood and compilation turns them into sets.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum PolicyState {
    Enabled,
    Disabled,
    /// Report-only: evaluated and recorded, never enforced.
    EnabledForReportingButNotEnforced,
}

/// A Conditional Access policy, as written by a client (the record adds `id`,
/// `createdDateTime`, `modifiedDateTime`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub state: PolicyState,
    pub conditions: Conditions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_controls: Option<GrantControls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_controls: Option<SessionControls>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Conditions {
    /// Who the policy is for; absent for a policy on workload identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<UsersCondition>,
    pub applications: ApplicationsCondition,
    /// Workload identities (service principals) the policy is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_applications: Option<ClientApplicationsCondition>,
    /// Empty or `all`: any client.
    #[serde(default)]
    pub client_app_types: Vec<ClientAppType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<PlatformsCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<LocationsCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<DevicesCondition>,
    #[serde(default)]
    pub sign_in_risk_levels: Vec<RiskLevel>,
    #[serde(default)]
    pub user_risk_levels: Vec<RiskLevel>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_principal_risk_levels: Vec<RiskLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_flows: Option<AuthenticationFlows>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsersCondition {
    /// `All`, `None`, `GuestsOrExternalUsers` or user ids.
    #[serde(default)]
    pub include_users: Vec<String>,
    /// User ids or `GuestsOrExternalUsers`.
    #[serde(default)]
    pub exclude_users: Vec<String>,
    #[serde(default)]
    pub include_groups: Vec<String>,
    #[serde(default)]
    pub exclude_groups: Vec<String>,
    /// Directory role template ids.
    #[serde(default)]
    pub include_roles: Vec<String>,
    #[serde(default)]
    pub exclude_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_guests_or_external_users: Option<GuestsOrExternalUsers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_guests_or_external_users: Option<GuestsOrExternalUsers>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuestsOrExternalUsers {
    /// Comma-separated: `internalGuest`, `b2bCollaborationGuest`,
    /// `b2bCollaborationMember`, `b2bDirectConnectUser`, `otherExternalUser`,
    /// `serviceProvider`.
    pub guest_or_external_user_types: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_tenants: Option<ExternalTenants>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalTenants {
    /// `all` (only `all` is supported: Tessera has no cross-tenant guests yet).
    pub membership_kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationsCondition {
    /// `All`, `None`, `MicrosoftAdminPortals` (Tessera's management API and
    /// command line), `Office365`, or application (client) ids.
    #[serde(default)]
    pub include_applications: Vec<String>,
    #[serde(default)]
    pub exclude_applications: Vec<String>,
    /// `urn:user:registersecurityinfo`, `urn:user:registerdevice`.
    #[serde(default)]
    pub include_user_actions: Vec<String>,
    /// Authentication contexts `c1` .. `c99`.
    #[serde(default)]
    pub include_authentication_context_class_references: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientApplicationsCondition {
    /// `ServicePrincipalsInMyTenant` or service principal object ids.
    #[serde(default)]
    pub include_service_principals: Vec<String>,
    #[serde(default)]
    pub exclude_service_principals: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ClientAppType {
    All,
    /// Web browsers.
    Browser,
    /// Modern-authentication apps: native, desktop and command-line clients.
    MobileAppsAndDesktopClients,
    ExchangeActiveSync,
    EasSupported,
    /// Legacy protocols: the resource-owner password grant here.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum Platform {
    All,
    Android,
    #[serde(rename = "iOS")]
    IOs,
    Windows,
    WindowsPhone,
    #[serde(rename = "macOS")]
    MacOs,
    Linux,
}

impl Platform {
    pub const ALL_NAMED: [Platform; 6] = [
        Platform::Android,
        Platform::IOs,
        Platform::Windows,
        Platform::WindowsPhone,
        Platform::MacOs,
        Platform::Linux,
    ];

    pub fn parse(text: &str) -> Option<Platform> {
        serde_json::from_value(serde_json::Value::String(text.to_string()))
            .ok()
            .or_else(|| {
                Platform::ALL_NAMED
                    .into_iter()
                    .find(|p| p.as_str().eq_ignore_ascii_case(text))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::All => "all",
            Platform::Android => "android",
            Platform::IOs => "iOS",
            Platform::Windows => "windows",
            Platform::WindowsPhone => "windowsPhone",
            Platform::MacOs => "macOS",
            Platform::Linux => "linux",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformsCondition {
    #[serde(default)]
    pub include_platforms: Vec<Platform>,
    #[serde(default)]
    pub exclude_platforms: Vec<Platform>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocationsCondition {
    /// `All`, `AllTrusted` or named location ids.
    #[serde(default)]
    pub include_locations: Vec<String>,
    #[serde(default)]
    pub exclude_locations: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevicesCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_filter: Option<DeviceFilter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum FilterMode {
    /// The policy applies only to devices the rule matches.
    Include,
    /// The policy does not apply to devices the rule matches.
    Exclude,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceFilter {
    pub mode: FilterMode,
    /// Entra's rule syntax over device attributes.
    pub rule: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum RiskLevel {
    None,
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationFlows {
    /// Comma-separated: `deviceCodeFlow`, `authenticationTransfer`.
    pub transfer_methods: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Operator {
    #[default]
    #[serde(alias = "and")]
    AND,
    #[serde(alias = "or")]
    OR,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum BuiltInControl {
    Block,
    Mfa,
    CompliantDevice,
    DomainJoinedDevice,
    PasswordChange,
    /// Intune app protection: not available here (validation refuses it).
    ApprovedApplication,
    /// Intune app protection: not available here (validation refuses it).
    CompliantApplication,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantControls {
    #[serde(default)]
    pub operator: Operator,
    #[serde(default)]
    pub built_in_controls: Vec<BuiltInControl>,
    #[serde(default)]
    pub custom_authentication_factors: Vec<String>,
    /// Terms of use ids the user must have accepted.
    #[serde(default)]
    pub terms_of_use: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_strength: Option<StrengthRef>,
}

/// An authentication strength by id (Graph sends the whole policy; the id is what
/// counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StrengthRef {
    pub id: Uuid,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionControls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_enforced_restrictions: Option<Enabled>,
    /// Restricted sessions through the proxy (Graph's Defender for Cloud Apps
    /// control), passed to applications and the proxy as a claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_app_security: Option<CloudAppSecurity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_frequency: Option<SignInFrequency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_browser: Option<PersistentBrowser>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous_access_evaluation: Option<ContinuousAccessEvaluation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_resilience_defaults: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Enabled {
    pub is_enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum CloudAppSecurityType {
    MonitorOnly,
    McasConfigured,
    BlockDownloads,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudAppSecurity {
    pub is_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_app_security_type: Option<CloudAppSecurityType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum FrequencyUnit {
    Hours,
    Days,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum FrequencyInterval {
    TimeBased,
    EveryTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum FrequencyAuthenticationType {
    PrimaryAndSecondaryAuthentication,
    SecondaryAuthentication,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInFrequency {
    pub is_enabled: bool,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub unit: Option<FrequencyUnit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_interval: Option<FrequencyInterval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_type: Option<FrequencyAuthenticationType>,
}

impl SignInFrequency {
    /// The longest a sign-in may be reused, in seconds (`Some(0)`: every time).
    pub fn seconds(&self) -> Option<i64> {
        if !self.is_enabled {
            return None;
        }
        if self.frequency_interval == Some(FrequencyInterval::EveryTime) {
            return Some(0);
        }
        let value = i64::from(self.value?);
        match self.unit? {
            FrequencyUnit::Hours => Some(value * 3600),
            FrequencyUnit::Days => Some(value * 86_400),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum PersistentBrowserMode {
    Always,
    Never,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersistentBrowser {
    pub is_enabled: bool,
    pub mode: PersistentBrowserMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum CaeMode {
    Disabled,
    StrictEnforcement,
    StrictLocation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContinuousAccessEvaluation {
    pub mode: CaeMode,
}

// ---------------------------------------------------------------------------------
// Named locations

/// A named location, tagged by `@odata.type` as in Graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "@odata.type")]
pub enum NamedLocationSpec {
    #[serde(rename = "#microsoft.graph.ipNamedLocation")]
    Ip(IpNamedLocation),
    #[serde(rename = "#microsoft.graph.countryNamedLocation")]
    Country(CountryNamedLocation),
}

impl NamedLocationSpec {
    pub fn display_name(&self) -> &str {
        match self {
            NamedLocationSpec::Ip(l) => &l.display_name,
            NamedLocationSpec::Country(l) => &l.display_name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpNamedLocation {
    pub display_name: String,
    #[serde(default)]
    pub is_trusted: bool,
    pub ip_ranges: Vec<IpRange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpRange {
    /// IPv4 or IPv6 CIDR, e.g. `192.0.2.0/24`.
    pub cidr_address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CountryNamedLocation {
    pub display_name: String,
    /// ISO 3166-1 alpha-2 codes.
    pub countries_and_regions: Vec<String>,
    /// Addresses the country database does not place count as in the location.
    #[serde(default)]
    pub include_unknown_countries_and_regions: bool,
    /// Only `clientIpAddress` (GPS from an authenticator app is not available).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_lookup_method: Option<String>,
}

// ---------------------------------------------------------------------------------
// Terms of use

/// Terms of use a policy can require users to accept (Graph `agreement`, reduced to
/// what Tessera shows: a name and the text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TermsOfUseSpec {
    pub display_name: String,
    /// The text shown to the user (plain text).
    pub content: String,
}

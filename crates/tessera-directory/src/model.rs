//! The directory's objects.
//!
//! Each kind has a *spec*: the attributes a client writes, deserialized with
//! `deny_unknown_fields`, used both to create (POST) and, after a JSON merge patch
//! over the current spec, to update (PATCH). So create and update share one
//! validation path. The full object adds what the system owns: id, timestamps,
//! version and generated values such as an application's client id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tessera_core::{AppId, Timestamp};
use uuid::Uuid;

fn default_true() -> bool {
    true
}

fn is_false(value: &bool) -> bool {
    !*value
}

// ---------------------------------------------------------------------------------
// Users

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum UserType {
    #[default]
    #[serde(alias = "Member")]
    Member,
    #[serde(alias = "Guest")]
    Guest,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Member => "member",
            UserType::Guest => "guest",
        }
    }
}

/// A custom security attribute value: typed per its definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum AttributeValue {
    Boolean(bool),
    Integer(i64),
    String(String),
    IntegerList(Vec<i64>),
    StringList(Vec<String>),
}

/// Custom security attributes: attribute set -> attribute name -> value.
pub type CustomSecurityAttributes = BTreeMap<String, BTreeMap<String, AttributeValue>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSpec {
    /// Sign-in name, `local@domain`; unique in the tenant, case-insensitively.
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(default = "default_true")]
    pub account_enabled: bool,
    #[serde(default)]
    pub user_type: UserType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    /// The company the user works for (SCIM's enterprise `organization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// The kind of employment: `Employee`, `Contractor`... (SCIM's `userType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_type: Option<String>,
    /// The division and cost center the user belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_org_data: Option<EmployeeOrgData>,
    /// Object id of the user's manager (a user of the same tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_hire_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_leave_date_time: Option<Timestamp>,
    /// Two-letter ISO 3166 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_location: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub custom_security_attributes: CustomSecurityAttributes,
}

/// Graph's `employeeOrgData`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmployeeOrgData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_center: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: UserSpec,
    pub created_date_time: Timestamp,
    pub modified_date_time: Timestamp,
    pub version: i64,
}

// ---------------------------------------------------------------------------------
// Groups

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ProcessingState {
    #[default]
    On,
    Paused,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupSpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_nickname: Option<String>,
    /// A dynamic membership rule over user attributes, e.g.
    /// `user.department -eq "Finance" -and user.accountEnabled -eq true`. A group with a
    /// rule is dynamic: its members are computed, never added by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership_rule: Option<String>,
    #[serde(default)]
    pub membership_rule_processing_state: ProcessingState,
    /// Whether directory roles can be assigned to the group. Set at creation only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_assignable_to_role: bool,
}

impl GroupSpec {
    pub fn is_dynamic(&self) -> bool {
        self.membership_rule.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: GroupSpec,
    /// `["DynamicMembership"]` for a dynamic group, as in Microsoft Graph.
    pub group_types: Vec<String>,
    pub security_enabled: bool,
    pub created_date_time: Timestamp,
    pub modified_date_time: Timestamp,
    pub version: i64,
}

// ---------------------------------------------------------------------------------
// Devices

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum TrustType {
    /// Personal device registered by its user (Graph `Workplace`).
    #[serde(alias = "Workplace")]
    Registered,
    /// Joined to the directory (Graph `AzureAd`).
    #[serde(alias = "AzureAd", alias = "AzureAD")]
    Joined,
    /// Joined to an on-premises domain and registered (Graph `ServerAd`).
    #[serde(alias = "ServerAd", alias = "ServerAD")]
    Hybrid,
}

/// Who owns a device (Graph `deviceOwnership`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum DeviceOwnership {
    #[serde(alias = "Company")]
    Company,
    #[serde(alias = "Personal")]
    Personal,
}

impl DeviceOwnership {
    /// The value as Graph and device filters spell it.
    pub fn as_graph(self) -> &'static str {
        match self {
            DeviceOwnership::Company => "Company",
            DeviceOwnership::Personal => "Personal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceSpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_ownership: Option<DeviceOwnership>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_type: Option<TrustType>,
    #[serde(default)]
    pub is_compliant: bool,
    #[serde(default)]
    pub is_managed: bool,
    /// Until then a device that is not compliant counts as compliant (the
    /// device manager's grace period for a device to be brought back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub compliance_grace_period_expiration_date_time: Option<Timestamp>,
    /// Why the device manager says what it says (shown to administrators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance_reason: Option<String>,
    #[serde(default = "default_true")]
    pub account_enabled: bool,
    /// Object id of the user who owns the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<Uuid>,
    /// `extensionAttribute1` .. `extensionAttribute15`, free text set by the operator.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extension_attributes: BTreeMap<String, String>,
    /// SHA-256 (hex) of the device's client certificate: a sign-in over mutual TLS
    /// with it comes from this device (unique in the tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_thumbprint: Option<String>,
}

impl DeviceSpec {
    /// Whether Conditional Access counts the device compliant at `now`:
    /// compliant, or within its grace period.
    pub fn compliant_at(&self, now: Timestamp) -> bool {
        self.is_compliant
            || self
                .compliance_grace_period_expiration_date_time
                .is_some_and(|until| until > now)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: DeviceSpec,
    pub created_date_time: Timestamp,
    pub modified_date_time: Timestamp,
    pub version: i64,
}

// ---------------------------------------------------------------------------------
// Applications and service principals

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectUris {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

impl RedirectUris {
    fn is_empty(&self) -> bool {
        self.redirect_uris.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AllowedMemberType {
    User,
    Application,
}

/// Who a consent covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConsentType {
    /// Admin consent: every user of the tenant.
    AllPrincipals,
    /// One user's own consent.
    Principal,
}

/// A consent request (Entra's `oAuth2PermissionGrant`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionGrantSpec {
    /// The application's client id (appId).
    pub client_id: AppId,
    pub consent_type: ConsentType,
    /// The user, for `Principal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<Uuid>,
    /// Space-separated scopes, e.g. `openid profile api://<appId>/read`.
    pub scope: String,
}

/// A consent as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PermissionGrant {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: PermissionGrantSpec,
    pub created_date_time: Timestamp,
    pub modified_date_time: Timestamp,
}

/// The tenant's consent policy (DoD 1.7.1): what users may consent to themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentPolicy {
    /// `none` (administrators only), `lowRisk` (only `lowRiskScopes`) or `all`.
    pub user_consent: UserConsent,
    /// The scopes users may consent to under `lowRisk`.
    pub low_risk_scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum UserConsent {
    None,
    LowRisk,
    All,
}

impl Default for ConsentPolicy {
    fn default() -> ConsentPolicy {
        ConsentPolicy {
            user_consent: UserConsent::LowRisk,
            low_risk_scopes: ["openid", "profile", "email", "offline_access"]
                .map(str::to_string)
                .to_vec(),
        }
    }
}

impl ConsentPolicy {
    /// Whether a user may consent to all of `scopes` themselves.
    pub fn user_may_consent(&self, scopes: &[String]) -> bool {
        match self.user_consent {
            UserConsent::None => false,
            UserConsent::All => true,
            UserConsent::LowRisk => scopes.iter().all(|s| self.low_risk_scopes.contains(s)),
        }
    }
}

/// An authentication context (`c1` to `c99`): a name applications ask for with
/// `acr_values` (step-up), satisfied by a sign-in that reaches its strength.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationContext {
    pub id: String,
    pub display_name: String,
    /// The authentication strength (built-in or custom) that satisfies it.
    pub strength_id: Uuid,
}

/// The tenant's authentication contexts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationContexts {
    pub contexts: Vec<AuthenticationContext>,
}

/// The tenant's application credential policy (DoD 1.9.1): which credentials
/// applications and service principals may hold and use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppCredentialPolicy {
    /// Client secrets may be added and used.
    pub allow_password_credentials: bool,
    /// Certificates (for `private_key_jwt` and mutual TLS) must chain to a CA in the
    /// tenant's trust store, checked when added and at every use.
    pub require_trusted_certificates: bool,
    /// Anyone may register an application at `/oauth2/register` (RFC 7591). Off
    /// by default; such applications still need consent for every scope.
    #[serde(default)]
    pub allow_dynamic_client_registration: bool,
}

impl Default for AppCredentialPolicy {
    fn default() -> AppCredentialPolicy {
        AppCredentialPolicy {
            allow_password_credentials: true,
            require_trusted_certificates: false,
            allow_dynamic_client_registration: false,
        }
    }
}

/// An assignment request: a user, group or service principal, and the app role
/// (none: default access, for users and groups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRoleAssignmentSpec {
    pub principal_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role_id: Option<Uuid>,
    /// The resource, as Graph clients send it: when given, it must be the service
    /// principal the request is made on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<Uuid>,
}

/// A principal assigned to an application's service principal (the resource).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    pub id: Uuid,
    pub principal_id: Uuid,
    /// `User`, `Group` or `ServicePrincipal`.
    pub principal_type: String,
    pub principal_display_name: String,
    /// The service principal assigned to.
    pub resource_id: Uuid,
    pub resource_display_name: String,
    /// The app role; all zeros for default access.
    pub app_role_id: Uuid,
    pub created_date_time: Timestamp,
}

/// Workload identity federation: tokens that an external OpenID issuer gives this
/// subject (a Kubernetes service account, a CI pipeline) are exchanged for the
/// application's tokens with no secret stored anywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedIdentityCredential {
    /// Unique within the application.
    pub name: String,
    /// The external issuer (`iss`), exactly; its keys come from its discovery document.
    pub issuer: String,
    /// The external subject (`sub`), exactly.
    pub subject: String,
    /// Accepted `aud` values (usually `api://TesseraTokenExchange`).
    pub audiences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRole {
    pub id: Uuid,
    /// The value placed in the `roles` claim, e.g. `Invoices.Approve`.
    pub value: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub allowed_member_types: Vec<AllowedMemberType>,
    #[serde(default = "default_true")]
    pub is_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationSpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Redirect URIs of a confidential web client (https; http only for loopback).
    #[serde(default, skip_serializing_if = "RedirectUris::is_empty")]
    pub web: RedirectUris,
    /// Redirect URIs of a single-page application (public client, PKCE).
    #[serde(default, skip_serializing_if = "RedirectUris::is_empty")]
    pub spa: RedirectUris,
    /// Redirect URIs of a native application (loopback or private-use scheme, RFC 8252).
    #[serde(default, skip_serializing_if = "RedirectUris::is_empty")]
    pub public_client: RedirectUris,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_roles: Vec<AppRole>,
    /// `tls_client_auth` (RFC 8705 §2.1): the subject distinguished name (RFC 4514,
    /// as Tessera prints it) of the certificate, from a CA in the tenant's trust
    /// store, the application authenticates with over mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    /// The application may use the device flow as a public client (no secret),
    /// like Entra's `isFallbackPublicClient`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_fallback_public_client: bool,
    /// The legacy resource-owner password grant (RFC 6749 §4.3) is allowed for
    /// this application. Off by default (RFC 9700 §2.4): the password passes
    /// through the client and no second factor is possible; Conditional Access
    /// sees it as a legacy client (`other`), which security defaults block.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_password_grant: bool,
    /// Authorization requests must be pushed first (RFC 9126).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_pushed_authorization_requests: bool,
    /// Access tokens must be DPoP-bound (RFC 9449 §5.2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
    /// Where ID tokens' signatures come from: `ES256` (default), `RS256`, `PS256`, `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    /// OIDC back-channel logout: where logout tokens are posted when a session ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Where RP-initiated logout may send the browser afterwards (exact match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// External workloads allowed to act as this application (token exchange).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_identity_credentials: Vec<FederatedIdentityCredential>,
}

/// A public key an application or service principal authenticates with (an X.509
/// certificate). Only public material is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct KeyCredential {
    pub key_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `AsymmetricX509Cert`.
    #[serde(rename = "type")]
    pub key_type: String,
    /// `Verify`: the key verifies the application's signed assertions.
    pub usage: String,
    /// Base64 DER of the certificate.
    pub key: String,
    /// Base64url SHA-256 thumbprint of the DER certificate (`x5t#S256`).
    pub thumbprint_sha256: String,
    pub start_date_time: Timestamp,
    pub end_date_time: Timestamp,
}

/// The metadata of a generated client secret. The secret itself is shown once, at
/// creation, and stored only as a hash, outside the application object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    pub key_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The first characters of the secret, to tell secrets apart.
    pub hint: String,
    pub start_date_time: Timestamp,
    pub end_date_time: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: Uuid,
    /// The client id.
    pub app_id: AppId,
    #[serde(flatten)]
    pub spec: ApplicationSpec,
    pub key_credentials: Vec<KeyCredential>,
    pub password_credentials: Vec<PasswordCredential>,
    pub created_date_time: Timestamp,
    pub modified_date_time: Timestamp,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipalSpec {
    /// The client id of the application this service principal represents. Set at
    /// creation only.
    pub app_id: AppId,
    /// Defaults to the application's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default = "default_true")]
    pub account_enabled: bool,
    /// When true, only users, groups and workloads assigned to the application may
    /// sign in to it (deny by default).
    #[serde(default)]
    pub app_role_assignment_required: bool,
    /// Where My Apps sends a user who opens the application (its sign-in page),
    /// as Entra's `loginUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub custom_security_attributes: CustomSecurityAttributes,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: ServicePrincipalSpec,
    pub key_credentials: Vec<KeyCredential>,
    pub password_credentials: Vec<PasswordCredential>,
    pub created_date_time: Timestamp,
    pub modified_date_time: Timestamp,
    pub version: i64,
}

/// What the store keeps for an application: the spec plus system-owned fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationData {
    pub app_id: AppId,
    pub spec: ApplicationSpec,
    #[serde(default)]
    pub key_credentials: Vec<KeyCredential>,
}

/// What the store keeps for a service principal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipalData {
    pub spec: ServicePrincipalSpec,
    #[serde(default)]
    pub key_credentials: Vec<KeyCredential>,
}

/// What the store keeps for a generated client secret (key1 holds its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSecretData {
    pub owner_id: Uuid,
    pub credential: PasswordCredential,
}

// ---------------------------------------------------------------------------------
// Administrative units, role assignments, attribute definitions

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdministrativeUnitSpec {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AdministrativeUnit {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: AdministrativeUnitSpec,
    pub created_date_time: Timestamp,
    pub modified_date_time: Timestamp,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignmentSpec {
    /// A user, a role-assignable group or a service principal.
    pub principal_id: Uuid,
    /// The role's template id (built-in roles) or id (custom roles).
    pub role_definition_id: Uuid,
    /// `/` for the whole tenant or `/administrativeUnits/{id}`.
    #[serde(default = "default_scope")]
    pub directory_scope_id: String,
}

fn default_scope() -> String {
    "/".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: RoleAssignmentSpec,
    pub created_date_time: Timestamp,
    pub version: i64,
    /// Set for an assignment PIM gives at this moment (an activation, or an
    /// administrator's assignment for a time): it is changed through PIM, not
    /// removed here, and ends at `endDateTime`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub managed_by_pim: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub end_date_time: Option<Timestamp>,
}

/// Where a role assignment applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectoryScope {
    Tenant,
    AdministrativeUnit(Uuid),
}

impl DirectoryScope {
    pub fn parse(text: &str) -> Option<DirectoryScope> {
        if text == "/" {
            return Some(DirectoryScope::Tenant);
        }
        let id = text.strip_prefix("/administrativeUnits/")?;
        Uuid::parse_str(id)
            .ok()
            .map(DirectoryScope::AdministrativeUnit)
    }

    pub fn render(self) -> String {
        match self {
            DirectoryScope::Tenant => "/".to_string(),
            DirectoryScope::AdministrativeUnit(id) => format!("/administrativeUnits/{id}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AttributeType {
    String,
    Integer,
    Boolean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AttributeStatus {
    #[default]
    Available,
    Deprecated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributeDefinitionSpec {
    /// The namespace, e.g. `Engineering`. Set at creation only.
    pub attribute_set: String,
    /// The attribute's name within its set, e.g. `Project`. Set at creation only.
    pub name: String,
    #[serde(rename = "type")]
    pub attribute_type: AttributeType,
    #[serde(default)]
    pub is_collection: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub status: AttributeStatus,
    #[serde(default)]
    pub use_pre_defined_values_only: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_values: Vec<String>,
}

impl AttributeDefinitionSpec {
    /// `{attributeSet}_{name}`, the definition's id as in Microsoft Graph.
    pub fn qualified_name(&self) -> String {
        format!("{}_{}", self.attribute_set, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AttributeDefinition {
    /// `{attributeSet}_{name}`.
    pub id: String,
    #[serde(flatten)]
    pub spec: AttributeDefinitionSpec,
    pub created_date_time: Timestamp,
    pub modified_date_time: Timestamp,
    pub version: i64,
}

// ---------------------------------------------------------------------------------
// Personal access tokens

/// What the store keeps for a personal access token (key1 holds the token's hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AccessTokenData {
    pub owner_id: Uuid,
    pub display_name: String,
    pub hint: String,
    pub expires_date_time: Timestamp,
    /// The administrator who issued the token for its owner, if it was not the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AccessToken {
    pub id: Uuid,
    #[serde(flatten)]
    pub data: AccessTokenData,
    pub created_date_time: Timestamp,
}

/// Kinds of directory objects that can be members, owners or role holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ObjectType {
    User,
    Group,
    Device,
    ServicePrincipal,
}

/// A reference to a directory object, as returned by membership listings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObjectRef {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    pub display_name: String,
}

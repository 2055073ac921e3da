//! Command-line syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera: a self-hosted Zero Trust identity platform"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Server URL (default: from `tessera login`, else http://127.0.0.1:8080).
    #[arg(long, global = true, env = "TESSERA_SERVER")]
    pub server: Option<String>,
    /// Personal access token (default: from `tessera login`).
    #[arg(long, global = true, env = "TESSERA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table, env = "TESSERA_OUTPUT")]
    pub output: Output,
    /// A PEM CA certificate to trust for the server's TLS certificate.
    #[arg(long, global = true, env = "TESSERA_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Sign in for later commands: with --token (a personal access token; `--token -`
    /// reads standard input), or without it through the device flow: open the URL it
    /// prints, enter the code and approve; the session then renews itself.
    Login,
    /// Forget the saved token.
    Logout,
    /// Show who the token signs in as, and their roles.
    Whoami,
    /// Users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Groups: assigned, nested and dynamic.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Devices.
    #[command(subcommand)]
    Devices(DevicesCommand),
    /// Application registrations: APP is an object id, an appId (client id) or a
    /// display name.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Service principals (applications' identities in the tenant): SP is an object
    /// id, the application's appId or a display name.
    #[command(subcommand, name = "sps")]
    ServicePrincipals(SpsCommand),
    /// Directory roles and role assignments.
    #[command(subcommand)]
    Roles(RolesCommand),
    /// Privileged Identity Management: eligible and time-bound roles, activation,
    /// approval, role settings.
    #[command(subcommand)]
    Pim(PimCommand),
    /// Provisioning: the SCIM API's tokens and how provisioned users are made.
    #[command(subcommand)]
    Provisioning(ProvisioningCommand),
    /// Lifecycle workflows: what happens when people join, move and leave.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
    /// Administrative units.
    #[command(subcommand)]
    Units(UnitsCommand),
    /// Custom security attribute definitions.
    #[command(subcommand)]
    Attributes(AttributesCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Your personal access tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Authentication: users' methods and sessions, temporary access passes, password
    /// resets, the methods policy and authentication strengths.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Conditional Access: policies, named locations, terms of use, the import of
    /// Entra exports, What-If, security defaults and risk.
    #[command(subcommand)]
    Policy(CaCommand),
    /// The sign-in log (newest first).
    SignIns(SignInsArgs),
    /// Identity Protection: risk detections.
    #[command(subcommand)]
    Risk(RiskCommand),
    /// The SIEM export: sinks for the sign-in log, the audit trail and the risk
    /// detections (syslog over TLS, signed HTTPS batches, OTLP logs).
    #[command(subcommand)]
    Siem(crate::siem::SiemCommand),
    /// Shared Signals: the applications that receive CAEP and RISC events,
    /// the streams Tessera transmits on, the transmitters it receives from.
    #[command(subcommand)]
    Signals(crate::signals::SignalsCommand),
    /// Offline: copy the embedded SQLite database to a file while it is in use.
    Backup(BackupArgs),
    /// Offline: replace the embedded database with a backup (the server must be stopped).
    Restore(RestoreArgs),
    /// Offline: apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Offline: issue a one-hour token for an enabled Global Administrator.
    RecoveryToken(RecoveryArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The data directory (default ./tessera-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address and port to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

/// Where an offline command finds the database: like `serve`.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `postgres://...` (else TESSERA_DATABASE_URL, else the SQLite file in the data directory).
    #[arg(long)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// Only objects whose display name starts with this.
    #[arg(long)]
    pub search: Option<String>,
    /// Items per page.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue from a previous page's cursor.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Fetch every page.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct DataArg {
    /// Further attributes as a JSON object, merged with the flags.
    #[arg(long)]
    pub data: Option<String>,
}

#[derive(Debug, Args)]
pub struct IfMatchArg {
    /// Refuse if the object's version is no longer this one (see `get`).
    #[arg(long)]
    pub if_match: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    List(PageArgs),
    /// A user by id or user principal name.
    Get {
        user: String,
    },
    Create(UserCreate),
    Update(UserUpdate),
    Delete {
        user: String,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// Create many users from a file: a JSON array or one JSON object per line, each
    /// with the attributes of `users create --data`. Sent in atomic batches of 1000.
    Import {
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// The groups a user belongs to.
    MemberOf {
        user: String,
        /// Include groups reached through nesting.
        #[arg(long)]
        transitive: bool,
    },
    /// A user's personal access tokens.
    Tokens {
        user: String,
    },
    /// Issue a short-lived token (1 to 7 days) for a user, e.g. a new administrator's
    /// first credential. Shown once.
    IssueToken {
        user: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        days: Option<i64>,
    },
    /// Revoke one of a user's tokens.
    RevokeToken {
        user: String,
        token_id: String,
    },
}

#[derive(Debug, Args)]
pub struct UserFields {
    #[arg(long)]
    pub display_name: Option<String>,
    #[arg(long)]
    pub given_name: Option<String>,
    #[arg(long)]
    pub surname: Option<String>,
    #[arg(long)]
    pub mail: Option<String>,
    #[arg(long)]
    pub department: Option<String>,
    #[arg(long)]
    pub job_title: Option<String>,
    #[arg(long)]
    pub employee_id: Option<String>,
    /// The manager, by id or user principal name.
    #[arg(long)]
    pub manager: Option<String>,
    /// Two-letter country code.
    #[arg(long)]
    pub usage_location: Option<String>,
    #[command(flatten)]
    pub data: DataArg,
}

#[derive(Debug, Args)]
pub struct UserCreate {
    /// Sign-in name, name@domain.
    #[arg(long)]
    pub upn: String,
    #[command(flatten)]
    pub fields: UserFields,
    /// Create the account disabled.
    #[arg(long)]
    pub disabled: bool,
    /// Create a guest rather than a member.
    #[arg(long)]
    pub guest: bool,
}

#[derive(Debug, Args)]
pub struct UserUpdate {
    pub user: String,
    #[arg(long)]
    pub upn: Option<String>,
    #[command(flatten)]
    pub fields: UserFields,
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    #[arg(long)]
    pub disable: bool,
    #[command(flatten)]
    pub if_match: IfMatchArg,
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    List(PageArgs),
    /// A group by id or display name.
    Get {
        group: String,
    },
    Create(GroupCreate),
    Update(GroupUpdate),
    Delete {
        group: String,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// List members.
    Members {
        group: String,
        /// Include members of nested groups.
        #[arg(long)]
        transitive: bool,
    },
    /// Add a member: a user (id or UPN), a group (id or display name), a device (id) or
    /// a service principal (id, appId or display name).
    AddMember {
        group: String,
        member: String,
    },
    RemoveMember {
        group: String,
        member: String,
    },
    Owners {
        group: String,
    },
    AddOwner {
        group: String,
        owner: String,
    },
    RemoveOwner {
        group: String,
        owner: String,
    },
}

#[derive(Debug, Args)]
pub struct GroupCreate {
    #[arg(long)]
    pub display_name: String,
    #[arg(long)]
    pub description: Option<String>,
    /// A dynamic membership rule, e.g. 'user.department -eq "Finance"'.
    #[arg(long)]
    pub rule: Option<String>,
    /// Allow directory roles to be assigned to the group (cannot change later).
    #[arg(long)]
    pub role_assignable: bool,
    #[command(flatten)]
    pub data: DataArg,
}

#[derive(Debug, Args)]
pub struct GroupUpdate {
    pub group: String,
    #[arg(long)]
    pub display_name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub rule: Option<String>,
    /// Pause dynamic membership processing.
    #[arg(long, conflicts_with = "resume")]
    pub pause: bool,
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub data: DataArg,
    #[command(flatten)]
    pub if_match: IfMatchArg,
}

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    List(PageArgs),
    Get {
        device: String,
    },
    Create(DeviceFields),
    Update {
        device: String,
        #[command(flatten)]
        fields: DeviceUpdateFields,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    Delete {
        device: String,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// A device manager's compliance report: one device (id or name) with
    /// --compliant or --not-compliant, or many from --file (JSON: a list of
    /// {deviceId, isCompliant, isManaged, complianceGracePeriodExpirationDateTime,
    /// complianceReason}). All or nothing.
    Compliance {
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        device: Option<String>,
        #[arg(long, conflicts_with = "not_compliant")]
        compliant: bool,
        #[arg(long)]
        not_compliant: bool,
        /// Counts as compliant until then (RFC 3339).
        #[arg(long)]
        grace_until: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DeviceFields {
    #[arg(long)]
    pub display_name: String,
    #[command(flatten)]
    pub rest: DeviceUpdateFields,
}

#[derive(Debug, Args)]
pub struct DeviceUpdateFields {
    #[arg(long)]
    pub os: Option<String>,
    #[arg(long)]
    pub os_version: Option<String>,
    /// registered, joined or hybrid.
    #[arg(long)]
    pub trust_type: Option<String>,
    #[arg(long)]
    pub compliant: Option<bool>,
    #[arg(long)]
    pub managed: Option<bool>,
    /// The owner, by id or user principal name.
    #[arg(long)]
    pub owner: Option<String>,
    #[command(flatten)]
    pub data: DataArg,
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    List(PageArgs),
    Get {
        app: String,
    },
    Create(AppCreate),
    /// Change settings; a repeatable flag replaces that list.
    Update {
        app: String,
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        fields: AppFields,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    Delete {
        app: String,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// Generate a client secret (shown once).
    AddSecret(AddSecretArgs),
    RemoveSecret {
        app: String,
        key_id: String,
    },
    /// Add a certificate credential from a PEM file.
    AddCert(AddCertArgs),
    RemoveCert {
        app: String,
        key_id: String,
    },
    /// Consent for every user (admin consent) to delegated scopes, e.g.
    /// `--scope "openid api://<resource appId>/read"` (replaces an earlier one).
    Consent {
        app: String,
        #[arg(long)]
        scope: String,
    },
    /// The application's consents (admin and users').
    Consents {
        app: String,
    },
    /// Withdraw a consent: the application must ask again.
    RevokeConsent {
        grant_id: String,
    },
    Owners {
        app: String,
    },
    AddOwner {
        app: String,
        owner: String,
    },
    RemoveOwner {
        app: String,
        owner: String,
    },
    /// SAML single sign-on for the application (Tessera as the identity provider).
    #[command(subcommand)]
    Saml(SamlCommand),
}

#[derive(Debug, Subcommand)]
pub enum SamlCommand {
    /// The application's SAML configuration, as JSON `set --file` takes.
    Show { app: String },
    /// Set the configuration from a JSON file (`entityId`, `consumerServices`,
    /// `certificates`, `nameId`, `attributes`, `signing`, `encryptAssertions`...),
    /// replacing the one the application had.
    Set {
        app: String,
        #[arg(long)]
        file: std::path::PathBuf,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// Set the configuration from the service provider's metadata, a file or a
    /// URL Tessera fetches; with `--signer`, the metadata must be signed by that
    /// certificate (PEM or DER).
    FromMetadata {
        app: String,
        #[arg(long, required_unless_present = "url", conflicts_with = "url")]
        file: Option<std::path::PathBuf>,
        /// The metadata's URL (https), fetched by Tessera.
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        signer: Option<std::path::PathBuf>,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// Remove the SAML configuration.
    Remove { app: String },
    /// Tessera's IdP metadata, signed (to give the service provider): as the
    /// application sees it when one is named (whether requests must be signed).
    Metadata { app: Option<String> },
    /// The link that signs the current browser user in to the application
    /// (IdP-initiated), to test the configuration.
    TestLink { app: String },
    /// The application's own IdP signing certificates (rollover: `add` one as
    /// next, give the service provider the application's metadata, `activate`).
    #[command(subcommand)]
    Certificates(SamlCertificateCommand),
}

#[derive(Debug, Subcommand)]
pub enum SamlCertificateCommand {
    /// The application's certificates (none: the tenant's signs for it).
    List { app: String },
    /// Add a certificate (of the configuration's `signatureAlgorithm`) as the
    /// next one, published in the application's metadata beside the one that
    /// signs now; `activate` it once the service provider has it.
    Add { app: String },
    /// Make the next certificate the one that signs (the old one is removed).
    Activate { app: String, thumbprint: String },
    /// Remove a certificate: the next one, or the active one when none waits.
    Remove { app: String, thumbprint: String },
}

#[derive(Debug, Args)]
pub struct AppCreate {
    #[arg(long)]
    pub display_name: String,
    #[command(flatten)]
    pub fields: AppFields,
}

/// The application settings most often needed, as flags (the rest with --data). A
/// switch given alone means true; `--public-client false` turns one off.
#[derive(Debug, Args)]
pub struct AppFields {
    #[arg(long)]
    pub description: Option<String>,
    /// Web (confidential client) redirect URI (repeatable; `web.redirectUris`).
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Single-page application redirect URI (repeatable; `spa.redirectUris`).
    #[arg(long = "spa-redirect-uri", value_name = "URI")]
    pub spa_redirect_uris: Vec<String>,
    /// Native application redirect URI (repeatable; `publicClient.redirectUris`).
    #[arg(long = "public-redirect-uri", value_name = "URI")]
    pub public_redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser (repeatable;
    /// `postLogoutRedirectUris`).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client: the device flow without a secret (`isFallbackPublicClient`).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub public_client: Option<bool>,
    /// The ID token signing algorithm: ES256 (default), RS256, PS256 or EdDSA
    /// (`idTokenSignedResponseAlg`; RS256 for libraries that know only RS256).
    #[arg(long, value_name = "ALG")]
    pub id_token_alg: Option<String>,
    /// Allow the legacy resource-owner password grant (`allowPasswordGrant`).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_password_grant: Option<bool>,
    /// Require pushed authorization requests (`requirePushedAuthorizationRequests`).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub require_par: Option<bool>,
    /// Require DPoP-bound access tokens (`dpopBoundAccessTokens`).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub require_dpop: Option<bool>,
    /// Where back-channel logout tokens are posted (`backchannelLogoutUri`).
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    #[command(flatten)]
    pub data: DataArg,
}

#[derive(Debug, Args)]
pub struct AddSecretArgs {
    /// The application or service principal: object id, appId or display name.
    pub app: String,
    #[arg(long)]
    pub display_name: Option<String>,
    /// Lifetime in days (default 180, at most 730).
    #[arg(long)]
    pub days: Option<i64>,
}

#[derive(Debug, Args)]
pub struct AddCertArgs {
    /// The application or service principal: object id, appId or display name.
    pub app: String,
    /// PEM certificate file.
    #[arg(long)]
    pub file: PathBuf,
    #[arg(long)]
    pub display_name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SpsCommand {
    List(PageArgs),
    Get {
        sp: String,
    },
    /// Create the service principal of an application.
    Create {
        /// The application: its appId, object id or display name.
        #[arg(long, visible_alias = "app")]
        app_id: String,
        #[command(flatten)]
        data: DataArg,
    },
    Update {
        sp: String,
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    Delete {
        sp: String,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    AddSecret(AddSecretArgs),
    RemoveSecret {
        sp: String,
        key_id: String,
    },
    AddCert(AddCertArgs),
    RemoveCert {
        sp: String,
        key_id: String,
    },
    /// Assign a user, group or workload to the application (with an app role, or
    /// default access). Applications that require assignment admit only these.
    Assign {
        sp: String,
        /// A user (UPN or id), a group (id or display name) or a service principal
        /// (id, appId or display name).
        #[arg(long)]
        principal: String,
        /// The app role's id (default access when absent).
        #[arg(long)]
        role: Option<String>,
    },
    /// The users, groups and workloads assigned to the application.
    Assignments {
        sp: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Remove an assignment.
    Unassign {
        sp: String,
        assignment_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// The built-in roles.
    List,
    /// A role by template id or name.
    Get { role: String },
    /// Assign a role to a user (id or UPN), role-assignable group or service principal.
    Assign {
        /// Role name (e.g. "User Administrator") or template id.
        #[arg(long)]
        role: String,
        #[arg(long)]
        principal: String,
        /// Scope the assignment to an administrative unit (id or display name).
        #[arg(long)]
        unit: Option<String>,
    },
    /// List role assignments.
    Assignments {
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        role: Option<String>,
    },
    /// Remove a role assignment.
    Unassign { assignment_id: String },
}

#[derive(Debug, Subcommand)]
pub enum PimCommand {
    /// Eligible roles, or with --groups group memberships and ownerships (yours,
    /// or a principal's).
    Eligible {
        #[arg(long)]
        principal: Option<String>,
        #[command(flatten)]
        filter: PimFilterArg,
    },
    /// Roles (or with --groups, group memberships and ownerships) active now,
    /// yours or a principal's, activated or assigned.
    Active {
        #[arg(long)]
        principal: Option<String>,
        #[command(flatten)]
        filter: PimFilterArg,
    },
    /// Activate a role, or a group's membership or ownership, you are eligible
    /// for (it may wait for approval).
    Activate {
        #[command(flatten)]
        target: PimTargetArg,
        /// The administrative unit the eligibility is scoped to.
        #[arg(long, conflicts_with = "group")]
        unit: Option<String>,
        #[arg(long)]
        justification: Option<String>,
        /// Ticket number.
        #[arg(long)]
        ticket: Option<String>,
        #[arg(long)]
        ticket_system: Option<String>,
        /// ISO 8601, e.g. PT2H (default: the maximum the settings allow).
        #[arg(long)]
        duration: Option<String>,
    },
    /// End your activation now.
    Deactivate {
        #[command(flatten)]
        target: PimTargetArg,
        #[arg(long, conflicts_with = "group")]
        unit: Option<String>,
    },
    /// Make a principal eligible (--eligible) or assign for a time: a role, or a
    /// group's membership or ownership.
    Assign {
        #[command(flatten)]
        target: PimTargetArg,
        /// User (id or UPN); for a role also a role-assignable group or a service
        /// principal.
        #[arg(long)]
        principal: String,
        #[arg(long, conflicts_with = "group")]
        unit: Option<String>,
        #[arg(long)]
        eligible: bool,
        #[arg(long)]
        justification: Option<String>,
        /// ISO 8601, e.g. P90D.
        #[arg(long, conflicts_with_all = ["until", "permanent"])]
        duration: Option<String>,
        /// An end date and time (RFC 3339).
        #[arg(long, conflicts_with = "permanent")]
        until: Option<String>,
        /// No end (where the settings allow it).
        #[arg(long)]
        permanent: bool,
    },
    /// Remove a principal's eligibility (--eligible) or assignment.
    Remove {
        #[command(flatten)]
        target: PimTargetArg,
        #[arg(long)]
        principal: String,
        #[arg(long, conflicts_with = "group")]
        unit: Option<String>,
        #[arg(long)]
        eligible: bool,
    },
    /// Requests: yours, those waiting for your approval (--approver), or all (--all).
    Requests {
        #[arg(long)]
        approver: bool,
        #[arg(long, conflicts_with = "approver")]
        all: bool,
        /// Eligibility requests instead of assignment requests.
        #[arg(long)]
        eligible: bool,
        /// Groups' requests instead of roles'.
        #[arg(long)]
        groups: bool,
    },
    /// Approve a request waiting for you.
    Approve {
        request: String,
        #[arg(long)]
        justification: Option<String>,
        #[arg(long)]
        eligible: bool,
        /// A group's request.
        #[arg(long)]
        groups: bool,
    },
    /// Deny a request waiting for you.
    Deny {
        request: String,
        #[arg(long)]
        justification: Option<String>,
        #[arg(long)]
        eligible: bool,
        #[arg(long)]
        groups: bool,
    },
    /// Withdraw your request while it waits.
    Cancel {
        request: String,
        #[arg(long)]
        eligible: bool,
        #[arg(long)]
        groups: bool,
    },
    /// What PIM finds: standing and permanent privilege, roles assigned outside
    /// PIM, too many Global Administrators, unused eligibilities, activations
    /// without MFA.
    Alerts,
    /// The alerts' thresholds: show, or replace with a JSON document.
    AlertSettings {
        #[arg(long)]
        data: Option<String>,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// Management actions that need an authentication context (a step-up): show,
    /// or replace with a JSON document ({"rules": [{"action": ..., "authenticationContext": "c1"}]}).
    ProtectedActions {
        #[arg(long)]
        data: Option<String>,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// Where PIM's notifications go: show, or replace with a JSON document
    /// ({"webhookUrl", "webhookSecret", "mailEnabled", "administratorEmails"}).
    Notifications {
        #[arg(long)]
        data: Option<String>,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// Turn a standing role assignment (or a permanent one) into an eligibility.
    Convert {
        assignment_id: String,
        #[arg(long)]
        justification: Option<String>,
    },
    /// A role's or a group's settings (maximum activation, MFA or an
    /// authentication context, justification, ticket, approval and approvers,
    /// maximum eligibility and assignment).
    #[command(subcommand)]
    Settings(PimSettingsCommand),
}

/// What a PIM command is about: a role, or a group's membership or ownership.
#[derive(Debug, Args)]
pub struct PimTargetArg {
    /// Role name (e.g. "User Administrator") or template id.
    #[arg(long, required_unless_present = "group", conflicts_with = "group")]
    pub role: Option<String>,
    /// A group (display name or id): PIM for groups.
    #[arg(long)]
    pub group: Option<String>,
    /// With --group: membership (member, the default) or ownership (owner).
    #[arg(long, value_parser = ["member", "owner"], default_value = "member")]
    pub access: String,
}

/// Which schedules a listing shows.
#[derive(Debug, Args)]
pub struct PimFilterArg {
    /// One role's.
    #[arg(long, conflicts_with_all = ["group", "groups"])]
    pub role: Option<String>,
    /// One group's (name or id).
    #[arg(long)]
    pub group: Option<String>,
    /// Groups' schedules instead of roles'.
    #[arg(long)]
    pub groups: bool,
}

#[derive(Debug, Subcommand)]
pub enum PimSettingsCommand {
    Get {
        #[command(flatten)]
        target: PimTargetArg,
    },
    /// Replace the settings with a JSON document (members left out take their
    /// defaults).
    Set {
        #[command(flatten)]
        target: PimTargetArg,
        #[arg(long)]
        data: String,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum UnitsCommand {
    List(PageArgs),
    Get {
        unit: String,
    },
    Create {
        #[arg(long)]
        display_name: String,
        #[arg(long)]
        description: Option<String>,
    },
    Update {
        unit: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    Delete {
        unit: String,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    Members {
        unit: String,
    },
    /// Add a user (id or UPN), group or device (id).
    AddMember {
        unit: String,
        member: String,
    },
    RemoveMember {
        unit: String,
        member: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AttributesCommand {
    List(PageArgs),
    Get {
        id: String,
    },
    /// Define an attribute; the body is Graph's customSecurityAttributeDefinition.
    Create {
        #[arg(long)]
        attribute_set: String,
        #[arg(long)]
        name: String,
        /// String, Integer or Boolean.
        #[arg(long = "type")]
        attribute_type: String,
        #[arg(long)]
        collection: bool,
        #[arg(long)]
        description: Option<String>,
        /// Allowed value (repeatable); with --predefined-only, the only values accepted.
        #[arg(long = "allowed-value")]
        allowed_values: Vec<String>,
        #[arg(long)]
        predefined_only: bool,
    },
    Update {
        id: String,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Query the audit trail (newest first).
    List {
        /// Actor id or user principal name.
        #[arg(long)]
        actor: Option<String>,
        /// Target object id.
        #[arg(long)]
        target: Option<String>,
        /// Action, e.g. user.update.
        #[arg(long)]
        action: Option<String>,
        /// RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        all: bool,
    },
    /// Walk every tenant's hash chain in the database (offline) and report the first
    /// event that was altered, removed or reordered. With --checkpoint, also check the
    /// database against signed checkpoints of the chain heads: a wiped trail, a cut-off
    /// tail, or a rewritten and recomputed chain. Exits 1 if anything is wrong.
    Verify(VerifyArgs),
    /// Offline: sign every tenant's chain head now and send the checkpoints to the
    /// configured [audit_checkpoint] destinations, or append them to --out.
    Checkpoint(CheckpointArgs),
    /// Offline: print the public key that verifies this installation's checkpoints
    /// (pin it where `audit verify --checkpoint` runs).
    CheckpointKey(DatabaseArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// A file of checkpoints: the JSON lines the file destination writes, or a syslog
    /// file holding them among other messages.
    #[arg(long, requires = "public_key")]
    pub checkpoint: Option<PathBuf>,
    /// The pinned checkpoint public key (from `tessera audit checkpoint-key`): base64,
    /// or a file holding it. A checkpoint signed by any other key fails.
    #[arg(long, requires = "checkpoint")]
    pub public_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Append the checkpoints to this file instead of sending them to the configured
    /// destinations.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// A user's authentication methods (never their secrets).
    Methods { user: String },
    /// Remove one of a user's methods.
    RemoveMethod { user: String, method_id: String },
    /// Issue a Temporary Access Pass for a user (shown once).
    Tap {
        user: String,
        /// Minutes it stays usable (default: the policy's).
        #[arg(long)]
        minutes: Option<u32>,
        /// Usable for one sign-in only.
        #[arg(long)]
        once: bool,
        /// Characters (8 to 48; default: the policy's).
        #[arg(long)]
        length: Option<u32>,
    },
    /// Set a user's password; with --password-stdin, the first line of standard input,
    /// else a generated one (shown once). The user's sessions end.
    ResetPassword {
        user: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// A user's active sessions.
    Sessions { user: String },
    /// End every session of a user, on every node.
    RevokeSessions { user: String },
    /// The authentication methods policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Authentication strengths.
    #[command(subcommand)]
    Strengths(StrengthsCommand),
    /// The trust store for certificate (smart-card) sign-in.
    #[command(subcommand, name = "cas")]
    CertificateAuthorities(CasCommand),
    /// Bind a certificate user id (e.g. `X509:<PN>1234567890@mil`) to a user.
    BindCertificate { user: String, value: String },
}

#[derive(Debug, Subcommand)]
pub enum CasCommand {
    List,
    /// Add a CA certificate (PEM or DER file).
    Add {
        file: PathBuf,
        /// A trust anchor (self-signed root) rather than an intermediate.
        #[arg(long)]
        root: bool,
        /// Refuse its certificates unless a current CRL or OCSP answer is at hand.
        #[arg(long)]
        require_revocation_data: bool,
        /// Where to fetch its CRL (default: the certificate's distribution point).
        #[arg(long)]
        crl_url: Option<String>,
        /// An OCSP responder for certificates it issued.
        #[arg(long)]
        ocsp_url: Option<String>,
    },
    Remove {
        id: String,
    },
    /// Upload a CRL (PEM or DER file) for a CA.
    Crl {
        id: String,
        file: PathBuf,
    },
    /// Fetch a CA's CRL from its distribution point now.
    RefreshCrl {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the policy as JSON.
    Get,
    /// Replace the policy with a JSON file (as printed by `get`, edited).
    Set {
        file: PathBuf,
        #[arg(long)]
        if_match: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StrengthsCommand {
    List,
    /// Create a custom strength from a JSON file (`displayName`, `allowedCombinations`,
    /// optional `combinationConfigurations`).
    Create {
        file: PathBuf,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RiskCommand {
    /// Risk detections, newest first.
    Detections(RiskDetectionsArgs),
    /// Users (or, with --workloads, service principals) that have or had risk.
    Users(RiskyArgs),
    /// One risky user (or workload) and the history of its risk, newest first.
    Show {
        /// User (id or user principal name), or a service principal id with --workload.
        principal: String,
        #[arg(long)]
        workload: bool,
    },
    /// Dismiss every risk of the users (or workloads): none until the next detection.
    Dismiss {
        /// Users (ids or user principal names), or service principal ids with --workload.
        #[arg(required = true)]
        principals: Vec<String>,
        #[arg(long)]
        workload: bool,
    },
    /// Confirm users (or workloads) compromised: high risk until remediated or
    /// dismissed; a user's sessions and tokens end.
    Confirm {
        #[arg(required = true)]
        principals: Vec<String>,
        #[arg(long)]
        workload: bool,
    },
}

#[derive(Debug, Args)]
pub struct RiskyArgs {
    /// Service principals instead of users.
    #[arg(long)]
    pub workloads: bool,
    /// none, low, medium or high.
    #[arg(long)]
    pub level: Option<String>,
    /// none, atRisk, remediated, dismissed or confirmedCompromised.
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RiskDetectionsArgs {
    /// Only this user (id or user principal name).
    #[arg(long, conflicts_with_all = ["workloads", "workload"])]
    pub user: Option<String>,
    /// Workloads' detections (service principals) instead of users'.
    #[arg(long)]
    pub workloads: bool,
    /// Only this service principal (its id); implies --workloads.
    #[arg(long)]
    pub workload: Option<String>,
    /// Only this kind, e.g. anonymizedIPAddress.
    #[arg(long = "type")]
    pub risk_event_type: Option<String>,
    /// low, medium or high.
    #[arg(long)]
    pub level: Option<String>,
    /// RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct SignInsArgs {
    /// Only this user (id or user principal name as typed).
    #[arg(long)]
    pub user: Option<String>,
    /// success, failure or interrupted.
    #[arg(long)]
    pub result: Option<String>,
    /// Only this application (its name, as the log shows it).
    #[arg(long)]
    pub app: Option<String>,
    /// Only this error code, e.g. invalid_credentials.
    #[arg(long)]
    pub failure_code: Option<String>,
    /// The sign-in an error page named by its correlation id.
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProvisioningCommand {
    /// Tokens for the SCIM API (/scim/v2), for provisioning clients such as an HR
    /// system, Entra or Okta.
    #[command(subcommand)]
    Tokens(ProvisioningTokensCommand),
    /// Applications that may provision with OAuth client credentials: their
    /// tokens for `urn:tessera:scim/.default` carry `Provisioning.ReadWrite.All`.
    #[command(subcommand)]
    Clients(ProvisioningClientsCommand),
    /// The attribute mapping from SCIM users to the directory's users.
    #[command(subcommand)]
    Mapping(ProvisioningMappingCommand),
    /// HR-driven provisioning: how HR exports map to users, previews and runs.
    #[command(subcommand)]
    Hr(ProvisioningHrCommand),
    /// Outbound provisioning: the users and groups assigned to an application,
    /// kept in step on the application's own SCIM service.
    #[command(subcommand)]
    Outbound(ProvisioningOutboundCommand),
    /// Show the provisioning settings, or change them.
    Settings {
        /// The domain added to a SCIM userName without `@` (jdoe becomes
        /// jdoe@DOMAIN).
        #[arg(long)]
        default_domain: Option<String>,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum LifecycleCommand {
    /// The workflows.
    List,
    /// Create a workflow from FILE: {"displayName", "category":
    /// "joiner"|"mover"|"leaver", "trigger": {"kind": "timeBased", "attribute":
    /// "employeeHireDate", "offsetDays": 0} or {"kind": "attributeChange",
    /// "attributes": ["department"]}, "scope": "user.department -eq \"Sales\"",
    /// "tasks": [{"task": "enableUser"}, ...]}.
    Create {
        file: std::path::PathBuf,
    },
    Show {
        workflow_id: String,
    },
    /// Replace a workflow with FILE's.
    Replace {
        workflow_id: String,
        file: std::path::PathBuf,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    Delete {
        workflow_id: String,
    },
    /// A workflow's runs, newest first: each user, what fired it, each task's
    /// result.
    Runs {
        workflow_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvisioningHrCommand {
    /// Show the HR import settings, or replace them with --file's: {"format":
    /// "csv"|"json", "anchor": "employeeId", "maxChangedPercent": 10,
    /// "mapping": {"attributes": [{"target": "employeeId", "expression":
    /// "[Employee ID]"}, ...]}}.
    Settings {
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// What FILE (an HR export) would do, changing nothing: each row's action
    /// and the attributes it changes.
    Preview {
        file: std::path::PathBuf,
        /// csv or json (default: the settings').
        #[arg(long)]
        format: Option<String>,
    },
    /// Run FILE: applied row by row, or held for an administrator when it
    /// changes more users than the settings allow.
    Run {
        file: std::path::PathBuf,
        #[arg(long)]
        format: Option<String>,
    },
    /// The runs, newest first.
    Runs,
    /// One run, with each row's result.
    Show { run_id: String },
    /// Approve a held run (planned again against the directory as it is now).
    Approve { run_id: String },
    /// Reject a held run: nothing of it is applied, and its file is dropped.
    Reject { run_id: String },
}

/// APP is a service principal's object id, its appId or its display name.
#[derive(Debug, Subcommand)]
pub enum ProvisioningOutboundCommand {
    /// Show an application's outbound provisioning settings (the token is
    /// never shown, only whether there is one).
    Show { app: String },
    /// Set them whole from FILE: {"enabled": true, "endpoint":
    /// "https://app.example.com/scim/v2", "scope":
    /// "assignedUsersAndGroups"|"allUsers", "scopingRule": "user.department -eq
    /// \"Sales\"", "deprovision": "disable"|"delete", "provisionGroups": true,
    /// "userMapping": {"attributes": [{"target": "userName", "expression":
    /// "[userPrincipalName]"}, ...]}}. Without "userMapping", the default.
    Set {
        app: String,
        file: std::path::PathBuf,
        /// A file holding the application's bearer token (kept sealed, never
        /// shown again); without it the saved one stays.
        #[arg(long)]
        token_file: Option<std::path::PathBuf>,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// Stop provisioning the application (what it holds stays there).
    Delete { app: String },
    /// Active, paused or quarantined; what the application holds; the last cycle.
    Status { app: String },
    /// Run a cycle now (a quarantine is lifted first).
    Run {
        app: String,
        /// Every object, not only those changed since the last cycle.
        #[arg(long)]
        full: bool,
    },
    /// Provision one user (USER: object id or user principal name) now, and
    /// show each step.
    OnDemand { app: String, user: String },
    /// The provisioning log, newest first.
    Log {
        app: String,
        /// One user's or group's entries (object id).
        #[arg(long)]
        object: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvisioningMappingCommand {
    /// Show the mapping in effect (the default when the tenant has none), with
    /// the functions and attributes a mapping may use.
    Show,
    /// Replace the mapping with FILE's, checked whole: {"attributes": [{"target":
    /// "userPrincipalName", "expression": "Join(\".\", [name.givenName],
    /// [name.familyName])@example.com", "defaultValue": ..., "apply":
    /// "always"|"onCreate"}]}.
    Set {
        file: std::path::PathBuf,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// Go back to the default mapping.
    Reset {
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    /// Show what the mapping (or --mapping FILE's) makes of the SCIM user in
    /// USER_FILE, writing nothing.
    Preview {
        user_file: std::path::PathBuf,
        #[arg(long)]
        mapping: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvisioningClientsCommand {
    List,
    /// Let an application (APP: object id, appId or display name) provision.
    Add {
        app: String,
    },
    Remove {
        app: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvisioningTokensCommand {
    List,
    /// Create a token (shown once): it acts in the SCIM API with User Administrator
    /// and Groups Administrator rights.
    Create {
        #[arg(long)]
        name: String,
        /// Lifetime in days (default 365, at most 730).
        #[arg(long)]
        days: Option<i64>,
    },
    Delete {
        token_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    List,
    /// Create a token (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// Lifetime in days (default 30, at most 365).
        #[arg(long)]
        days: Option<i64>,
    },
    Revoke {
        token_id: String,
    },
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Replace an existing database.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RecoveryArgs {
    /// The Global Administrator's user principal name.
    #[arg(long)]
    pub user: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Conditional Access policies.
    List,
    Get {
        id: String,
    },
    /// Create a policy from Graph JSON (a file, `-` for standard input).
    Create {
        file: std::path::PathBuf,
    },
    /// Change a policy with a JSON merge patch (a file, `-` for standard input).
    Update {
        id: String,
        file: std::path::PathBuf,
        #[command(flatten)]
        if_match: IfMatchArg,
    },
    Delete {
        id: String,
    },
    /// Import an Entra export folder as administrators have it (ConditionalAccess/,
    /// NamedLocations/, Groups/, MigrationTable.json; UTF-16 or UTF-8): reports
    /// what maps and what does not, and imports nothing on error unless
    /// --skip-errors.
    Import {
        dir: std::path::PathBuf,
        /// Import what is ready, leave out what is not.
        #[arg(long)]
        skip_errors: bool,
        /// Only report.
        #[arg(long)]
        dry_run: bool,
        /// Import every policy as report-only, to watch before enforcing.
        #[arg(long)]
        report_only: bool,
    },
    /// Which policies would apply to a sign-in, and why (no sign-in is made).
    WhatIf(Box<WhatIfArgs>),
    /// Named locations.
    Locations,
    /// Create a named location from Graph JSON (`#microsoft.graph.ipNamedLocation`
    /// or `countryNamedLocation`; a file, `-` for standard input).
    CreateLocation {
        file: std::path::PathBuf,
    },
    DeleteLocation {
        id: String,
    },
    /// Terms of use policies can require.
    Terms,
    /// Create terms of use: `{"displayName": ..., "content": ...}` (a file or `-`).
    CreateTerms {
        file: std::path::PathBuf,
    },
    /// Turn security defaults on or off (shows them without a flag).
    SecurityDefaults {
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Set a user's or workload's risk (from an identity protection source).
    Risk {
        /// User (id or user principal name) or service principal id.
        principal: String,
        /// none, low, medium or high.
        #[arg(long)]
        level: Option<String>,
        /// The risk of the principal's sign-ins for the next hour.
        #[arg(long)]
        sign_in_risk: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct WhatIfArgs {
    /// The user (id or user principal name).
    #[arg(long, conflicts_with = "sp")]
    pub user: Option<String>,
    /// A workload: the service principal id.
    #[arg(long)]
    pub sp: Option<String>,
    /// The application: its application (client) id, object id or display name,
    /// or MicrosoftAdminPortals.
    #[arg(long, conflicts_with = "user_action")]
    pub app: Option<String>,
    /// registerSecurityInfo or registerOrJoinDevices.
    #[arg(long)]
    pub user_action: Option<String>,
    #[arg(long)]
    pub ip: Option<String>,
    /// The country (ISO code), instead of looking the address up.
    #[arg(long)]
    pub country: Option<String>,
    /// android, iOS, windows, windowsPhone, macOS or linux.
    #[arg(long)]
    pub platform: Option<String>,
    /// The User-Agent the sign-in sends: names the platform as in a real sign-in
    /// (unless --platform or a registered --device says otherwise).
    #[arg(long)]
    pub user_agent: Option<String>,
    /// The device's id in the directory.
    #[arg(long)]
    pub device: Option<String>,
    /// browser, mobileAppsAndDesktopClients, exchangeActiveSync or other.
    #[arg(long)]
    pub client_app: Option<String>,
    #[arg(long)]
    pub sign_in_risk: Option<String>,
    #[arg(long)]
    pub user_risk: Option<String>,
    /// An authentication context asked for (c1..c99); repeatable.
    #[arg(long)]
    pub auth_context: Vec<String>,
    /// The sign-in uses the device code flow.
    #[arg(long)]
    pub device_code: bool,
    /// A strength the sign-in met: mfa, passwordless, phishing-resistant or an id;
    /// repeatable. The strengths it implies are met too (phishing-resistant meets mfa).
    #[arg(long)]
    pub satisfied: Vec<String>,
    /// Methods the sign-in used, e.g. password,softwareOath or fido2: the strengths
    /// they reach are met, as in a real sign-in.
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
}

//! Applications and service principals, with their credentials and owners.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use tessera_directory::model::{
    AppCredentialPolicy, AppRoleAssignment, AppRoleAssignmentSpec, Application, ApplicationSpec,
    AuthenticationContexts, ConsentPolicy, KeyCredential, PermissionGrant, PermissionGrantSpec,
    ServicePrincipal, ServicePrincipalSpec,
};
use tessera_store::Kind;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, Path, Query};
use crate::routes::{PageOf, PageParams, created, no_content, ok};
use crate::state::AppState;
use crate::{crud_handlers, owner_handlers, setting_handlers};

crud_handlers! {
    tag: "applications", collection: "/api/v1/applications", item: "/api/v1/applications/{id}",
    spec: ApplicationSpec, object: Application,
    list: list_applications => list_applications, create: create_application => create_application,
    get: get_application => get_application, update: update_application => update_application,
    delete: delete_application => delete_application,
}

crud_handlers! {
    tag: "servicePrincipals", collection: "/api/v1/servicePrincipals", item: "/api/v1/servicePrincipals/{id}",
    spec: ServicePrincipalSpec, object: ServicePrincipal,
    list: list_service_principals => list_service_principals, create: create_service_principal => create_service_principal,
    get: get_service_principal => get_service_principal, update: update_service_principal => update_service_principal,
    delete: delete_service_principal => delete_service_principal,
}

/// An application by its client id, as Graph's `applications(appId='...')`.
#[utoipa::path(get, path = "/api/v1/applications/byAppId/{appId}", tag = "applications",
    params(("appId" = Uuid, Path)),
    responses((status = 200, body = Application)), security(("bearer" = [])))]
pub async fn get_application_by_app_id(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(app_id): Path<tessera_core::AppId>,
) -> ApiResult<Response> {
    let application = state
        .app
        .directory
        .get_application_by_app_id(&ctx, app_id)
        .await?;
    Ok(crate::routes::ok_versioned(
        &application,
        application.version,
    ))
}

/// The service principal of the application with this client id, as Graph's
/// `servicePrincipals(appId='...')`.
#[utoipa::path(get, path = "/api/v1/servicePrincipals/byAppId/{appId}", tag = "servicePrincipals",
    params(("appId" = Uuid, Path)),
    responses((status = 200, body = ServicePrincipal)), security(("bearer" = [])))]
pub async fn get_service_principal_by_app_id(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(app_id): Path<tessera_core::AppId>,
) -> ApiResult<Response> {
    let service_principal = state
        .app
        .directory
        .get_service_principal_by_app_id(&ctx, app_id)
        .await?;
    Ok(crate::routes::ok_versioned(
        &service_principal,
        service_principal.version,
    ))
}

owner_handlers! {
    tag: "applications", kind: Kind::Application, path: "/api/v1/applications/{id}/owners",
    item: "/api/v1/applications/{id}/owners/{ownerId}",
    list: list_application_owners, add: add_application_owner, remove: remove_application_owner,
}

owner_handlers! {
    tag: "servicePrincipals", kind: Kind::ServicePrincipal, path: "/api/v1/servicePrincipals/{id}/owners",
    item: "/api/v1/servicePrincipals/{id}/owners/{ownerId}",
    list: list_service_principal_owners, add: add_service_principal_owner, remove: remove_service_principal_owner,
}

/// Generates add/remove handlers for secrets and certificates of one owner kind.
macro_rules! credential_handlers {
    (tag: $tag:literal, base: $base:literal, holder: $holder:ident,
     add_password: $add_password:ident, remove_password: $remove_password:ident,
     add_key: $add_key:ident, remove_key: $remove_key:ident $(,)?) => {
        #[utoipa::path(post, path = concat!($base, "/passwordCredentials"), tag = $tag, params(("id" = Uuid, Path)),
            request_body = tessera_service::AddPassword,
            responses((status = 201, body = tessera_service::CreatedPassword, description = "the secret, shown this once")),
            security(("bearer" = [])))]
        pub async fn $add_password(State(state): State<AppState>, Caller(ctx): Caller, Path(id): Path<Uuid>, JsonBody(body): JsonBody) -> ApiResult<Response> {
            Ok(created(&state.app.directory.add_password(&ctx, tessera_service::CredentialHolder::$holder, id, body).await?))
        }

        #[utoipa::path(delete, path = concat!($base, "/passwordCredentials/{keyId}"), tag = $tag,
            params(("id" = Uuid, Path), ("keyId" = Uuid, Path)), responses((status = 204)),
            security(("bearer" = [])))]
        pub async fn $remove_password(State(state): State<AppState>, Caller(ctx): Caller, Path((id, key)): Path<(Uuid, Uuid)>) -> ApiResult<Response> {
            state.app.directory.remove_password(&ctx, tessera_service::CredentialHolder::$holder, id, key).await?;
            Ok(no_content())
        }

        #[utoipa::path(post, path = concat!($base, "/keyCredentials"), tag = $tag, params(("id" = Uuid, Path)),
            request_body = tessera_service::AddKey,
            responses((status = 201, body = KeyCredential)),
            security(("bearer" = [])))]
        pub async fn $add_key(State(state): State<AppState>, Caller(ctx): Caller, Path(id): Path<Uuid>, JsonBody(body): JsonBody) -> ApiResult<Response> {
            Ok(created(&state.app.directory.add_key(&ctx, tessera_service::CredentialHolder::$holder, id, body).await?))
        }

        #[utoipa::path(delete, path = concat!($base, "/keyCredentials/{keyId}"), tag = $tag,
            params(("id" = Uuid, Path), ("keyId" = Uuid, Path)), responses((status = 204)),
            security(("bearer" = [])))]
        pub async fn $remove_key(State(state): State<AppState>, Caller(ctx): Caller, Path((id, key)): Path<(Uuid, Uuid)>) -> ApiResult<Response> {
            state.app.directory.remove_key(&ctx, tessera_service::CredentialHolder::$holder, id, key).await?;
            Ok(no_content())
        }
    };
}

credential_handlers! {
    tag: "applications", base: "/api/v1/applications/{id}", holder: Application,
    add_password: add_application_password,
    remove_password: remove_application_password,
    add_key: add_application_key,
    remove_key: remove_application_key,
}

credential_handlers! {
    tag: "servicePrincipals", base: "/api/v1/servicePrincipals/{id}", holder: ServicePrincipal,
    add_password: add_service_principal_password,
    remove_password: remove_service_principal_password,
    add_key: add_service_principal_key,
    remove_key: remove_service_principal_key,
}

#[utoipa::path(get, path = "/api/v1/servicePrincipals/{id}/appRoleAssignedTo", tag = "servicePrincipals",
    params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = PageOf<AppRoleAssignment>)), security(("bearer" = [])))]
pub async fn list_app_role_assigned_to(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .directory
        .list_app_role_assigned_to(&ctx, id, &params.request())
        .await?))
}

/// Assigns a user, group or workload to the application (with an app role; none
/// means default access). Applications that require assignment admit only these.
#[utoipa::path(post, path = "/api/v1/servicePrincipals/{id}/appRoleAssignedTo", tag = "servicePrincipals",
    params(("id" = Uuid, Path)), request_body = AppRoleAssignmentSpec,
    responses((status = 201, body = AppRoleAssignment)), security(("bearer" = [])))]
pub async fn assign_app_role(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(created(
        &state.app.directory.assign_app_role(&ctx, id, body).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}", tag = "servicePrincipals",
    params(("id" = Uuid, Path), ("assignmentId" = Uuid, Path)),
    responses((status = 204)), security(("bearer" = [])))]
pub async fn remove_app_role_assignment(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((id, assignment_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    state
        .app
        .directory
        .remove_app_role_assignment(&ctx, id, assignment_id)
        .await?;
    Ok(no_content())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantParams {
    /// Only the consents of this application (client id).
    #[param(value_type = Option<Uuid>)]
    pub client_id: Option<tessera_core::AppId>,
}

#[utoipa::path(get, path = "/api/v1/oauth2PermissionGrants", tag = "consent", params(GrantParams),
    responses((status = 200, body = crate::routes::ValueList<PermissionGrant>)), security(("bearer" = [])))]
pub async fn list_permission_grants(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<GrantParams>,
) -> ApiResult<Response> {
    let grants = state
        .app
        .directory
        .list_permission_grants(&ctx, params.client_id)
        .await?;
    Ok(ok(&crate::routes::ValueList { value: grants }))
}

/// Admin consent (`AllPrincipals`), or consent on one user's behalf (`Principal`).
/// A grant for the same application and principal is replaced.
#[utoipa::path(post, path = "/api/v1/oauth2PermissionGrants", tag = "consent", request_body = PermissionGrantSpec,
    responses((status = 201, body = PermissionGrant)),
    security(("bearer" = [])))]
pub async fn create_permission_grant(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(created(
        &state
            .app
            .directory
            .create_permission_grant(&ctx, body)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/oauth2PermissionGrants/{id}", tag = "consent", params(("id" = Uuid, Path)),
    responses((status = 204)), security(("bearer" = [])))]
pub async fn delete_permission_grant(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    state
        .app
        .directory
        .delete_permission_grant(&ctx, id)
        .await?;
    Ok(no_content())
}

setting_handlers! {
    tag: "consent", path: "/api/v1/policies/consentPolicy", schema: ConsentPolicy, change: put,
    get: get_consent_policy => directory.get_setting_versioned::<ConsentPolicy>,
    set: /// What users may consent to themselves: `none`, `lowRisk` (the listed scopes) or `all`.
        set_consent_policy => directory.set_consent_policy,
}

setting_handlers! {
    tag: "applications", path: "/api/v1/policies/appCredentialPolicy", schema: AppCredentialPolicy, change: put,
    get: get_app_credential_policy => directory.get_setting_versioned::<AppCredentialPolicy>,
    set: /// Whether applications may hold client secrets, and whether their certificates
        /// must come from a CA in the tenant's trust store (checked when added and used).
        set_app_credential_policy => directory.set_app_credential_policy,
}

setting_handlers! {
    tag: "authentication", path: "/api/v1/policies/authenticationContexts", schema: AuthenticationContexts, change: put,
    get: get_authentication_contexts => directory.get_setting_versioned::<AuthenticationContexts>,
    set: /// The tenant's authentication contexts (`c1` to `c99`), each satisfied by an
        /// authentication strength; applications step up with `acr_values=c1`.
        set_authentication_contexts => directory.set_authentication_contexts,
}

/// An application's SAML configuration (as set; `404` when it has none).
#[utoipa::path(get, path = "/api/v1/applications/{id}/saml", tag = "applications",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_application_saml(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    match state.app.saml.configuration(&ctx, id).await? {
        Some(found) => Ok(crate::routes::ok_versioned(&found, found.version)),
        None => Err(tessera_service::ServiceError::NotFound {
            kind: "samlConfiguration",
            id: id.to_string(),
        }
        .into()),
    }
}

/// Sets an application's SAML configuration, whole (If-Match with the version
/// read replaces it only if nobody changed it since).
#[utoipa::path(put, path = "/api/v1/applications/{id}/saml", tag = "applications",
    params(("id" = Uuid, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn set_application_saml(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    crate::extract::IfMatch(if_match): crate::extract::IfMatch,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let stored = state.app.saml.configure(&ctx, id, body, if_match).await?;
    Ok(crate::routes::ok_versioned(&stored, stored.version))
}

/// Removes an application's SAML configuration and its own certificates
/// (If-Match with the version read removes it only if nobody changed it since).
#[utoipa::path(delete, path = "/api/v1/applications/{id}/saml", tag = "applications",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn delete_application_saml(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    crate::extract::IfMatch(if_match): crate::extract::IfMatch,
) -> ApiResult<Response> {
    state.app.saml.remove(&ctx, id, if_match).await?;
    Ok(no_content())
}

/// The application's own IdP signing certificates, the active one first (none:
/// the tenant's certificate signs for it).
#[utoipa::path(get, path = "/api/v1/applications/{id}/saml/certificates", tag = "applications",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_application_saml_certificates(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let certificates = state.app.saml.application_certificates(&ctx, id).await?;
    Ok(ok(&serde_json::json!({ "value": certificates })))
}

/// Adds an IdP signing certificate to the application as `next`: published in
/// the application's metadata beside the one that signs now, until it is
/// activated.
#[utoipa::path(post, path = "/api/v1/applications/{id}/saml/certificates", tag = "applications",
    params(("id" = Uuid, Path)),
    responses((status = 201, body = serde_json::Value), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn add_application_saml_certificate(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let certificate = state.app.saml.add_application_certificate(&ctx, id).await?;
    Ok(created(&certificate))
}

/// Makes the application's next certificate the one that signs (the one it
/// replaces is removed).
#[utoipa::path(post, path = "/api/v1/applications/{id}/saml/certificates/{thumbprint}/activate",
    tag = "applications",
    params(("id" = Uuid, Path), ("thumbprint" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn activate_application_saml_certificate(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((id, thumbprint)): Path<(Uuid, String)>,
) -> ApiResult<Response> {
    let certificate = state
        .app
        .saml
        .activate_application_certificate(&ctx, id, &thumbprint)
        .await?;
    Ok(ok(&certificate))
}

/// Removes one of the application's certificates: the next one, or the active
/// one when none waits (the tenant's then signs for the application); with
/// If-Match, only the version read (a certificate activated since is not removed
/// on a stale view).
#[utoipa::path(delete, path = "/api/v1/applications/{id}/saml/certificates/{thumbprint}",
    tag = "applications",
    params(("id" = Uuid, Path), ("thumbprint" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn remove_application_saml_certificate(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((id, thumbprint)): Path<(Uuid, String)>,
    crate::extract::IfMatch(if_match): crate::extract::IfMatch,
) -> ApiResult<Response> {
    state
        .app
        .saml
        .remove_application_certificate(&ctx, id, &thumbprint, if_match)
        .await?;
    Ok(no_content())
}

/// Sets an application's SAML configuration from its service provider's metadata
/// (`{"metadata": "<xml>", "signingCertificate": "<base64 DER>"}`; with a signing
/// certificate the metadata's signature must verify with it).
#[utoipa::path(post, path = "/api/v1/applications/{id}/saml/metadata", tag = "applications",
    params(("id" = Uuid, Path)), request_body = serde_json::Value,
    responses((status = 200, body = serde_json::Value), (status = 400, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn import_application_saml_metadata(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    crate::extract::IfMatch(if_match): crate::extract::IfMatch,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let stored = state
        .app
        .saml
        .configure_from_metadata(&ctx, id, body, if_match)
        .await?;
    Ok(crate::routes::ok_versioned(&stored, stored.version))
}

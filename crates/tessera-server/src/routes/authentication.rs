//! Authentication administration: a user's methods and sessions, temporary access
//! passes, password resets, the methods policy, authentication strengths and the
//! sign-in log.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_core::{SecretString, Timestamp};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Caller, IfMatch, JsonBody, Path, Query};
use crate::routes::{PageOf, ValueList, created, no_content, ok, ok_versioned};
use crate::setting_handlers;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/users/{id}/authentication/methods", tag = "authentication",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ValueList<tessera_service::authn::AuthMethodView>)),
    security(("bearer" = [])))]
pub async fn list_methods(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(ok(&ValueList {
        value: state.app.sign_in.list_user_methods(&ctx, id).await?,
    }))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/authentication/methods/{methodId}", tag = "authentication",
    params(("id" = Uuid, Path), ("methodId" = Uuid, Path)),
    responses((status = 204)),
    security(("bearer" = [])))]
pub async fn delete_method(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((id, method)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    state
        .app
        .sign_in
        .delete_user_method(&ctx, id, method)
        .await?;
    Ok(no_content())
}

#[utoipa::path(post, path = "/api/v1/users/{id}/authentication/temporaryAccessPassMethods", tag = "authentication",
    params(("id" = Uuid, Path)),
    request_body = tessera_service::authn::NewTemporaryAccessPass,
    responses((status = 201, body = tessera_service::authn::TemporaryAccessPassView, description = "the pass, shown only now")),
    security(("bearer" = [])))]
pub async fn issue_pass(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(created(
        &state
            .app
            .sign_in
            .issue_temporary_access_pass(&ctx, id, body)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetPassword {
    /// The new password; one is generated (and returned once) when absent.
    pub new_password: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetPasswordResult {
    /// The generated password, when none was given; shown only now.
    pub new_password: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/users/{id}/authentication/resetPassword", tag = "authentication",
    params(("id" = Uuid, Path)), request_body = ResetPassword,
    responses((status = 200, body = ResetPasswordResult)),
    security(("bearer" = [])))]
pub async fn reset_password(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let request: ResetPassword = crate::extract::parse_body(body)?;
    let generated = state
        .app
        .sign_in
        .reset_password(&ctx, id, request.new_password.map(SecretString::new))
        .await?;
    Ok(ok(&ResetPasswordResult {
        new_password: generated.map(|p| p.expose().to_string()),
    }))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/revokeSignInSessions", tag = "authentication",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "`{\"sessionsRevoked\": n}`")),
    security(("bearer" = [])))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let revoked = state.app.sign_in.revoke_user_sessions(&ctx, id).await?;
    Ok(ok(&json!({ "sessionsRevoked": revoked })))
}

#[utoipa::path(get, path = "/api/v1/users/{id}/sessions", tag = "authentication",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ValueList<tessera_service::authn::SessionView>)),
    security(("bearer" = [])))]
pub async fn list_sessions(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(ok(&ValueList {
        value: state.app.sign_in.list_user_sessions(&ctx, id).await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/policies/authenticationMethodsPolicy", tag = "authentication",
    responses((status = 200, body = Object, description = "the methods policy; its ETag goes in If-Match when replacing it")),
    security(("bearer" = [])))]
pub async fn get_policy(State(state): State<AppState>, Caller(ctx): Caller) -> ApiResult<Response> {
    let (policy, version) = state.app.sign_in.get_methods_policy(&ctx).await?;
    Ok(ok_versioned(&policy, version))
}

#[utoipa::path(put, path = "/api/v1/policies/authenticationMethodsPolicy", tag = "authentication",
    params(("If-Match" = Option<String>, Header, description = "the ETag read before")),
    request_body(content = Object, description = "the whole methods policy"),
    responses((status = 200, body = Object)),
    security(("bearer" = [])))]
pub async fn set_policy(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let (policy, version) = state
        .app
        .sign_in
        .set_methods_policy(&ctx, body, if_match)
        .await?;
    Ok(ok_versioned(&policy, version))
}

#[utoipa::path(get, path = "/api/v1/policies/authenticationStrengthPolicies", tag = "authentication",
    responses((status = 200, body = Object, description = "`{\"value\": [strength...]}`, built-in strengths first")),
    security(("bearer" = [])))]
pub async fn list_strengths(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    Ok(ok(
        &json!({ "value": state.app.sign_in.list_strengths(&ctx).await? }),
    ))
}

#[utoipa::path(post, path = "/api/v1/policies/authenticationStrengthPolicies", tag = "authentication",
    request_body(content = Object, description = "`displayName`, `description`, `allowedCombinations` (e.g. `[\"x509CertificateMultiFactor\"]`) and optional `combinationConfigurations`"),
    responses((status = 201, body = Object)),
    security(("bearer" = [])))]
pub async fn create_strength(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(created(
        &state.app.sign_in.create_strength(&ctx, body).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/policies/authenticationStrengthPolicies/{id}", tag = "authentication",
    params(("id" = Uuid, Path)),
    responses((status = 204)),
    security(("bearer" = [])))]
pub async fn delete_strength(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    state.app.sign_in.delete_strength(&ctx, id).await?;
    Ok(no_content())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInParams {
    pub user_id: Option<Uuid>,
    /// The name typed (case-insensitive).
    pub user_principal_name: Option<String>,
    /// `success`, `failure` or `interrupted`.
    pub result: Option<String>,
    /// The application's name, as the log shows it.
    pub app_display_name: Option<String>,
    /// An error code, e.g. `invalid_credentials`.
    pub failure_code: Option<String>,
    /// The correlation id an error page showed.
    pub correlation_id: Option<String>,
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/auditLogs/signIns", tag = "audit", params(SignInParams),
    responses((status = 200, body = PageOf<tessera_service::authn::SignInEntry>)),
    security(("bearer" = [])))]
pub async fn query_sign_ins(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<SignInParams>,
) -> ApiResult<Response> {
    let filter = tessera_service::authn::SignInFilter {
        user_id: params.user_id,
        user_principal_name: params.user_principal_name,
        result: params.result,
        app_display_name: params.app_display_name,
        failure_code: params.failure_code,
        correlation_id: params.correlation_id,
        since: params.since,
        until: params.until,
        cursor: params.cursor,
        limit: params.limit,
    };
    Ok(ok(&state.app.sign_in.query_log(&ctx, &filter).await?))
}

setting_handlers! {
    tag: "audit", path: "/api/v1/policies/signInLogRetentionPolicy", schema: Object, change: patch,
    get: /// How long the tenant keeps its sign-in log: `{"retentionDays": 30, "maxEntries": 1000000}`
        /// by default.
        get_sign_in_log_retention => sign_in.get_setting_versioned::<tessera_service::sign_in_storage::SignInLogRetention>,
    set: /// Changes the sign-in log's retention (a JSON merge patch): entries older than
        /// `retentionDays` (1 to 3650) and beyond the newest `maxEntries` (1,000 to
        /// 1,000,000,000) are removed within five minutes.
        set_sign_in_log_retention => sign_in.set_log_retention,
}

/// A certificate user id (documentation type; the service reads the body).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CertificateUserId {
    /// A value a certificate binding rule matches: `X509:<PN>`, `<RFC822>`, `<S>`,
    /// `<SKI>` or `<I>` followed by a value, e.g. `X509:<SKI>7F2A...`.
    value: String,
}

/// A certificate revocation list (documentation type; the service reads the body).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CrlUpload {
    /// The CRL, PEM or base64 DER, signed by this CA.
    crl: String,
}

#[utoipa::path(post, path = "/api/v1/users/{id}/authentication/certificateUserIds", tag = "authentication",
    params(("id" = Uuid, Path)),
    request_body = CertificateUserId,
    responses((status = 201, body = tessera_service::authn::AuthMethodView)),
    security(("bearer" = [])))]
pub async fn add_certificate_user_id(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(created(
        &state
            .app
            .sign_in
            .add_certificate_user_id(&ctx, id, body)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/certificateAuthorities", tag = "authentication",
    responses((status = 200, body = ValueList<tessera_service::authn::CertificateAuthorityView>)),
    security(("bearer" = [])))]
pub async fn list_cas(State(state): State<AppState>, Caller(ctx): Caller) -> ApiResult<Response> {
    Ok(ok(&ValueList {
        value: state.app.sign_in.list_certificate_authorities(&ctx).await?,
    }))
}

#[utoipa::path(post, path = "/api/v1/certificateAuthorities", tag = "authentication",
    request_body = tessera_service::authn::NewCa,
    responses((status = 201, body = tessera_service::authn::CertificateAuthorityView)),
    security(("bearer" = [])))]
pub async fn add_ca(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(created(
        &state
            .app
            .sign_in
            .add_certificate_authority(&ctx, body)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/certificateAuthorities/{id}", tag = "authentication",
    params(("id" = Uuid, Path)),
    responses((status = 204)),
    security(("bearer" = [])))]
pub async fn delete_ca(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    state
        .app
        .sign_in
        .delete_certificate_authority(&ctx, id)
        .await?;
    Ok(no_content())
}

#[utoipa::path(put, path = "/api/v1/certificateAuthorities/{id}/revocationList", tag = "authentication",
    params(("id" = Uuid, Path)),
    request_body = CrlUpload,
    responses((status = 200, body = tessera_service::authn::CertificateAuthorityView)),
    security(("bearer" = [])))]
pub async fn upload_crl(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(ok(&state.app.sign_in.upload_crl(&ctx, id, body).await?))
}

#[utoipa::path(post, path = "/api/v1/certificateAuthorities/{id}/revocationList/refresh", tag = "authentication",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = tessera_service::authn::CertificateAuthorityView)),
    security(("bearer" = [])))]
pub async fn refresh_crl(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(ok(&state.app.sign_in.refresh_crl(&ctx, id).await?))
}

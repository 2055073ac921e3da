//! The signed-in caller and personal access tokens.

use axum::extract::State;
use axum::response::Response;
use tessera_directory::model::AccessToken;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, Path, Query};
use crate::routes::{PageOf, PageParams, created, no_content, ok};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = Object, description = "the signed-in user and their role grants")),
    security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, Caller(ctx): Caller) -> ApiResult<Response> {
    Ok(ok(&state.app.directory.me(&ctx).await?))
}

fn caller_user(ctx: &tessera_service::Context) -> ApiResult<Uuid> {
    ctx.caller.user_id().ok_or_else(|| {
        ApiError::from(tessera_service::ServiceError::Forbidden {
            reason: "only users hold personal access tokens".into(),
        })
    })
}

#[utoipa::path(get, path = "/api/v1/me/accessTokens", tag = "me", params(PageParams),
    responses((status = 200, body = PageOf<AccessToken>)), security(("bearer" = [])))]
pub async fn list_own_tokens(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    let user = caller_user(&ctx)?;
    Ok(ok(&state
        .app
        .directory
        .list_tokens(&ctx, user, &params.request())
        .await?))
}

#[utoipa::path(post, path = "/api/v1/me/accessTokens", tag = "me",
    request_body = tessera_service::NewToken,
    responses((status = 201, body = tessera_service::CreatedToken, description = "the token, shown this once")),
    security(("bearer" = [])))]
pub async fn create_own_token(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(created(
        &state.app.directory.create_own_token(&ctx, body).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/me/accessTokens/{tokenId}", tag = "me", params(("tokenId" = Uuid, Path)),
    responses((status = 204)), security(("bearer" = [])))]
pub async fn revoke_own_token(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(token): Path<Uuid>,
) -> ApiResult<Response> {
    let user = caller_user(&ctx)?;
    state.app.directory.revoke_token(&ctx, user, token).await?;
    Ok(no_content())
}

#[utoipa::path(get, path = "/api/v1/users/{id}/accessTokens", tag = "users", params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = PageOf<AccessToken>)), security(("bearer" = [])))]
pub async fn list_user_tokens(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .directory
        .list_tokens(&ctx, id, &params.request())
        .await?))
}

/// A token an administrator issues for someone else (documentation type: the body is
/// read as a [`tessera_service::NewToken`], with a shorter lifetime).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct IssuedToken {
    /// What the token is for (1 to 128 characters, not only spaces).
    #[schema(min_length = 1, max_length = 128, pattern = r"\S")]
    display_name: String,
    /// Lifetime in days; 1 when absent, at most 7.
    #[schema(minimum = 1, maximum = 7)]
    expires_in_days: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/users/{id}/accessTokens", tag = "users", params(("id" = Uuid, Path)),
    request_body = IssuedToken,
    responses((status = 201, body = tessera_service::CreatedToken, description = "the token, shown this once")),
    security(("bearer" = [])))]
pub async fn issue_user_token(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(created(
        &state.app.directory.issue_token_for(&ctx, id, body).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/accessTokens/{tokenId}", tag = "users", params(("id" = Uuid, Path), ("tokenId" = Uuid, Path)),
    responses((status = 204)), security(("bearer" = [])))]
pub async fn revoke_user_token(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((id, token)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    state.app.directory.revoke_token(&ctx, id, token).await?;
    Ok(no_content())
}

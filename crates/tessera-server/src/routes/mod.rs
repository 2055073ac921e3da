//! The management API under `/api/v1`.

pub mod apps;
pub mod audit;
pub mod authentication;
pub mod conditional_access;
pub mod directory;
pub mod me;
pub mod oauth;
pub mod pim;
pub mod provisioning;
pub mod risk;
pub mod roles;
pub mod scim;
pub mod siem;
pub mod ssf;
pub mod wellknown;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Paging parameters of every list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only items whose display name starts with this, case-insensitively.
    pub search: Option<String>,
}

impl PageParams {
    pub fn request(self) -> tessera_service::PageRequest {
        tessera_service::PageRequest {
            cursor: self.cursor,
            limit: self.limit,
            search: self.search,
        }
    }
}

/// A page of results (documentation type).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageOf<T> {
    pub value: Vec<T>,
    /// Present when there are more items: pass it as `cursor`.
    pub next_cursor: Option<String>,
}

/// A whole list, not paged (`{"value": [...]}`).
#[derive(Serialize, ToSchema)]
pub struct ValueList<T> {
    pub value: Vec<T>,
}

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot serialize a response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub fn ok<T: Serialize>(value: &T) -> Response {
    json_response(StatusCode::OK, value)
}

/// 200 with the object's version as a weak ETag, for `If-Match` on the next write.
pub fn ok_versioned<T: Serialize>(value: &T, version: i64) -> Response {
    with_etag(json_response(StatusCode::OK, value), version)
}

pub fn created_versioned<T: Serialize>(location: String, value: &T, version: i64) -> Response {
    let mut response = with_etag(json_response(StatusCode::CREATED, value), version);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

pub fn created<T: Serialize>(value: &T) -> Response {
    json_response(StatusCode::CREATED, value)
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn with_etag(mut response: Response, version: i64) -> Response {
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// Generates list, create, get, update (merge patch) and delete handlers for one kind.
#[macro_export]
macro_rules! crud_handlers {
    (
        tag: $tag:literal,
        collection: $collection:literal,
        item: $item:literal,
        spec: $spec:ty,
        object: $object:ty,
        list: $list:ident => $list_method:ident $(::<$list_type:ty>)?,
        create: $create:ident => $create_method:ident,
        get: $get:ident => $get_method:ident $(::<$get_type:ty>)?,
        update: $update:ident => $update_method:ident,
        delete: $delete:ident => $delete_method:ident $(,)?
    ) => {
        // A generic read names the route's own spec type, or this does not compile.
        $(const _: fn($spec) -> $list_type = |spec| spec;)?
        $(const _: fn($spec) -> $get_type = |spec| spec;)?

        #[utoipa::path(get, path = $collection, tag = $tag, params($crate::routes::PageParams),
            responses((status = 200, body = $crate::routes::PageOf<$object>)),
            security(("bearer" = [])))]
        pub async fn $list(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            $crate::extract::Caller(ctx): $crate::extract::Caller,
            $crate::extract::Query(params): $crate::extract::Query<$crate::routes::PageParams>,
        ) -> $crate::error::ApiResult<axum::response::Response> {
            let page = state.app.directory.$list_method$(::<$list_type>)?(&ctx, &params.request()).await?;
            Ok($crate::routes::ok(&page))
        }

        #[utoipa::path(post, path = $collection, tag = $tag, request_body = $spec,
            responses((status = 201, body = $object)),
            security(("bearer" = [])))]
        pub async fn $create(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            $crate::extract::Caller(ctx): $crate::extract::Caller,
            $crate::extract::JsonBody(body): $crate::extract::JsonBody,
        ) -> $crate::error::ApiResult<axum::response::Response> {
            let object = state.app.directory.$create_method(&ctx, body).await?;
            let location = format!("{}/{}", $collection, object.id);
            Ok($crate::routes::created_versioned(location, &object, object.version))
        }

        #[utoipa::path(get, path = $item, tag = $tag, params(("id" = uuid::Uuid, Path, description = "object id")),
            responses((status = 200, body = $object)),
            security(("bearer" = [])))]
        pub async fn $get(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            $crate::extract::Caller(ctx): $crate::extract::Caller,
            $crate::extract::Path(id): $crate::extract::Path<uuid::Uuid>,
        ) -> $crate::error::ApiResult<axum::response::Response> {
            let object = state.app.directory.$get_method$(::<$get_type>)?(&ctx, id).await?;
            Ok($crate::routes::ok_versioned(&object, object.version))
        }

        #[utoipa::path(patch, path = $item, tag = $tag,
            params(("id" = uuid::Uuid, Path, description = "object id"),
                   ("If-Match" = Option<String>, Header, description = "the ETag read before; refused with 412 if the object changed since")),
            request_body(content = Object, description = "A JSON merge patch (RFC 7396): the attributes to change; null clears one"),
            responses((status = 200, body = $object)),
            security(("bearer" = [])))]
        pub async fn $update(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            $crate::extract::Caller(ctx): $crate::extract::Caller,
            $crate::extract::PathAt(at): $crate::extract::PathAt,
            $crate::extract::JsonBody(body): $crate::extract::JsonBody,
        ) -> $crate::error::ApiResult<axum::response::Response> {
            let object = state.app.directory.$update_method(&ctx, at.patch(body)).await?;
            Ok($crate::routes::ok_versioned(&object, object.version))
        }

        #[utoipa::path(delete, path = $item, tag = $tag,
            params(("id" = uuid::Uuid, Path, description = "object id"),
                   ("If-Match" = Option<String>, Header, description = "the ETag read before")),
            responses((status = 204)),
            security(("bearer" = [])))]
        pub async fn $delete(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            $crate::extract::Caller(ctx): $crate::extract::Caller,
            $crate::extract::PathAt(at): $crate::extract::PathAt,
        ) -> $crate::error::ApiResult<axum::response::Response> {
            state.app.directory.$delete_method(&ctx, at).await?;
            Ok($crate::routes::no_content())
        }
    };
}

/// Generates the GET and the PUT or PATCH handler of a tenant-wide setting, each a
/// call to `state.app.<context>.<method>`.
#[macro_export]
macro_rules! setting_handlers {
    (tag: $tag:literal, path: $path:literal, schema: $schema:ty, change: $change:ident,
     get: $(#[doc = $get_doc:literal])* $get:ident => $get_ctx:ident . $get_method:ident $(::<$get_type:ty>)?,
     set: $(#[doc = $set_doc:literal])* $set:ident => $set_ctx:ident . $set_method:ident $(,)?) => {
        $(#[doc = $get_doc])*
        #[utoipa::path(get, path = $path, tag = $tag,
            responses((status = 200, body = $schema)), security(("bearer" = [])))]
        pub async fn $get(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            $crate::extract::Caller(ctx): $crate::extract::Caller,
        ) -> $crate::error::ApiResult<axum::response::Response> {
            let (value, version) = state.app.$get_ctx.$get_method$(::<$get_type>)?(&ctx).await?;
            Ok($crate::routes::ok_versioned(&value, version))
        }

        $(#[doc = $set_doc])*
        #[utoipa::path($change, path = $path, tag = $tag, request_body = $schema,
            responses((status = 200, body = $schema), (status = 400, body = $crate::error::Problem)),
            security(("bearer" = [])))]
        pub async fn $set(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            $crate::extract::Caller(ctx): $crate::extract::Caller,
            $crate::extract::IfMatch(if_match): $crate::extract::IfMatch,
            $crate::extract::JsonBody(body): $crate::extract::JsonBody,
        ) -> $crate::error::ApiResult<axum::response::Response> {
            let change = tessera_service::Replacement::new(body, if_match);
            Ok($crate::routes::ok(&state.app.$set_ctx.$set_method(&ctx, change).await?))
        }
    };
}

/// Generates list, add and remove handlers for owners of one kind.
#[macro_export]
macro_rules! owner_handlers {
    (tag: $tag:literal, kind: $kind:expr, path: $path:literal, item: $item:literal,
     list: $list:ident, add: $add:ident, remove: $remove:ident $(,)?) => {
        #[utoipa::path(get, path = $path, tag = $tag, params(("id" = uuid::Uuid, Path)),
            responses((status = 200, body = $crate::routes::PageOf<tessera_directory::model::DirectoryObjectRef>)),
            security(("bearer" = [])))]
        pub async fn $list(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            $crate::extract::Caller(ctx): $crate::extract::Caller,
            $crate::extract::Path(id): $crate::extract::Path<uuid::Uuid>,
        ) -> $crate::error::ApiResult<axum::response::Response> {
            Ok($crate::routes::ok(&state.app.directory.list_owners(&ctx, $kind, id).await?))
        }

        #[utoipa::path(post, path = $path, tag = $tag, params(("id" = uuid::Uuid, Path)),
            request_body(content = $crate::routes::directory::Reference),
            responses((status = 204)),
            security(("bearer" = [])))]
        pub async fn $add(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            $crate::extract::Caller(ctx): $crate::extract::Caller,
            $crate::extract::Path(id): $crate::extract::Path<uuid::Uuid>,
            $crate::extract::JsonBody(body): $crate::extract::JsonBody,
        ) -> $crate::error::ApiResult<axum::response::Response> {
            state.app.directory.add_owner(&ctx, $kind, id, body).await?;
            Ok($crate::routes::no_content())
        }

        #[utoipa::path(delete, path = $item, tag = $tag, params(("id" = uuid::Uuid, Path), ("ownerId" = uuid::Uuid, Path)),
            responses((status = 204)),
            security(("bearer" = [])))]
        pub async fn $remove(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            $crate::extract::Caller(ctx): $crate::extract::Caller,
            $crate::extract::Path((id, owner)): $crate::extract::Path<(uuid::Uuid, uuid::Uuid)>,
        ) -> $crate::error::ApiResult<axum::response::Response> {
            state.app.directory.remove_owner(&ctx, $kind, id, owner).await?;
            Ok($crate::routes::no_content())
        }
    };
}

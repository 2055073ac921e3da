//! The SCIM 2.0 service provider at `/scim/v2` (RFC 7644): discovery, Users and
//! Groups (read, list, search, create, replace, patch, delete), `/Me`, and a
//! SCIM error for every failure, including unknown paths. Authenticated by a
//! provisioning token or a management access token; the discovery documents are
//! public. The protocol is `tessera-scim`'s; the resources the provisioning
//! context's.

// Handlers answer with a whole response on every path, as the console's do.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value};
use tessera_scim::list::{RawListRequest, list_response};
use tessera_scim::projection::Projection;
use tessera_scim::schema::{
    self, Capabilities, GROUP_TYPE, RESOURCE_TYPES, ResourceType, USER_TYPE,
};
use tessera_scim::{ScimError, ScimType};
use tessera_service::provisioning::{ListPage, ScimFailure};
use tessera_service::{Context, ServiceError};

use crate::extract::Caller;
use crate::state::AppState;
use crate::wire::scim::{self as wire, json};

/// Most operations and bytes of one bulk request, most results per page.
pub const CAPABILITIES: Capabilities = Capabilities {
    max_results: tessera_service::provisioning::scim::MAX_PAGE,
    bulk_max_operations: 1000,
    bulk_max_payload: crate::MAX_BODY_BYTES as u32,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/scim/v2/ServiceProviderConfig",
            get(service_provider_config),
        )
        .route("/scim/v2/ResourceTypes", get(resource_types))
        .route("/scim/v2/ResourceTypes/{id}", get(resource_type))
        .route("/scim/v2/Schemas", get(schemas))
        .route("/scim/v2/Schemas/{id}", get(schema_by_id))
        .route(
            "/scim/v2/Users",
            get(users::list_all).post(users::create_one),
        )
        .route("/scim/v2/Users/.search", post(users::search_all))
        .route(
            "/scim/v2/Users/{id}",
            get(users::get_one)
                .put(users::replace_one)
                .patch(users::patch_one)
                .delete(users::delete_one),
        )
        .route(
            "/scim/v2/Groups",
            get(groups::list_all).post(groups::create_one),
        )
        .route("/scim/v2/Groups/.search", post(groups::search_all))
        .route(
            "/scim/v2/Groups/{id}",
            get(groups::get_one)
                .put(groups::replace_one)
                .patch(groups::patch_one)
                .delete(groups::delete_one),
        )
        .route("/scim/v2/.search", post(search_all))
        .route("/scim/v2/Bulk", post(bulk))
        .route(
            "/scim/v2/Me",
            get(get_me)
                .put(replace_me)
                .patch(patch_me)
                .delete(delete_me),
        )
        .route("/scim/v2", get(not_found))
        .route(
            "/scim/v2/{*rest}",
            get(not_found)
                .post(not_found)
                .put(not_found)
                .patch(not_found)
                .delete(not_found),
        )
}

fn base(state: &AppState) -> String {
    format!(
        "{}/scim/v2",
        state.app.directory.public_url().trim_end_matches('/')
    )
}

/// The authenticated SCIM caller: a provisioning token, or what the management
/// API accepts. Failures are SCIM errors.
pub struct ScimCaller(pub Context);

impl FromRequestParts<AppState> for ScimCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let unauthenticated = || wire::error(ScimFailure::Service(ServiceError::Unauthenticated));
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(scheme, token)| (scheme.to_ascii_lowercase(), token.trim().to_string()));
        let correlation_id = crate::extract::correlation_of(parts);
        let client_address = crate::extract::client_address(state, parts);
        let context = |(tenant, caller)| {
            Ok(ScimCaller(Context {
                tenant,
                caller,
                correlation_id: correlation_id.clone(),
                client_address: client_address.clone(),
            }))
        };
        let outage = |e: ServiceError| match e {
            ServiceError::Unavailable(_) => wire::error(ScimFailure::Service(e)),
            _ => unauthenticated(),
        };
        match authorization
            .as_ref()
            .map(|(s, t)| (s.as_str(), t.as_str()))
        {
            // A provisioning token.
            Some(("bearer", token))
                if tessera_service::provisioning::is_provisioning_token(token) =>
            {
                return state
                    .app
                    .provisioning
                    .authenticate_token(token)
                    .await
                    .map_err(outage)
                    .and_then(context);
            }
            // A workload's access token for the SCIM API (client credentials),
            // bearer or DPoP-bound. Told apart by its audience before it is checked,
            // so a DPoP proof is verified (and spent) once, by the one path that owns it.
            Some((scheme @ ("bearer" | "dpop"), token))
                if crate::extract::audience_is(
                    token,
                    tessera_service::oauth::PROVISIONING_API_ID,
                ) =>
            {
                let issuer = state.app.directory.public_url().to_string();
                let url = format!("{issuer}{}", parts.uri.path());
                let chain = crate::pages::ClientChain::of(state, parts).0;
                let address = crate::extract::client_address(state, parts);
                let presented = tessera_service::oauth::Presented {
                    token,
                    dpop_scheme: scheme == "dpop",
                    proof: parts.headers.get("dpop").and_then(|v| v.to_str().ok()),
                    method: parts.method.as_str(),
                    url: &url,
                    client_certificate: chain.first().map(Vec::as_slice),
                    client_address: address.as_deref(),
                };
                return state
                    .app
                    .oidc
                    .authenticate_provisioning_client(&issuer, &presented)
                    .await
                    .map_err(outage)
                    .and_then(context);
            }
            _ => {}
        }
        match Caller::from_request_parts(parts, state).await {
            Ok(Caller(ctx)) => Ok(ScimCaller(ctx)),
            Err(error) if error.status == StatusCode::SERVICE_UNAVAILABLE => Err(wire::error(
                ScimFailure::Service(ServiceError::Unavailable(error.detail)),
            )),
            Err(_) => Err(unauthenticated()),
        }
    }
}

/// A SCIM request body: one JSON object, sent as `application/scim+json` or
/// `application/json`.
fn body_of(headers: &HeaderMap, bytes: &Bytes) -> Result<Value, Response> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media_type != wire::MEDIA_TYPE && media_type != "application/json" {
        return Err(wire::error(ScimFailure::Scim(ScimError::new(
            415,
            None,
            "send the body as application/scim+json",
        ))));
    }
    crate::extract::parse_json_object(bytes).map_err(|e| {
        wire::bad(
            ScimType::InvalidSyntax,
            format!("{}{}", e.detail, field_note(&e)),
        )
    })
}

fn field_note(e: &crate::error::ApiError) -> String {
    e.errors
        .first()
        .map(|f| format!(" ({}: {})", f.field, f.message))
        .unwrap_or_default()
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn query_pairs(query: &Option<String>) -> Vec<(String, String)> {
    query
        .as_deref()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn resource_response(
    status: StatusCode,
    mut body: Map<String, Value>,
    etag: &str,
    projection: Option<&Projection>,
    rt: &ResourceType,
) -> Response {
    if let Some(projection) = projection {
        projection.apply(rt, &mut body);
    }
    let location = body
        .get("meta")
        .and_then(|m| m.get("location"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut response = json(status, &Value::Object(body));
    if let Ok(value) = etag.parse() {
        response.headers_mut().insert(header::ETAG, value);
    }
    if status == StatusCode::CREATED
        && let Some(location) = location.and_then(|l| l.parse().ok())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `attributes` and `excludedAttributes` of a single-resource request.
fn projection_of(rt: &ResourceType, query: &Option<String>) -> Result<Projection, Response> {
    let mut attributes = None;
    let mut excluded = None;
    for (key, value) in query_pairs(query) {
        match key.to_ascii_lowercase().as_str() {
            "attributes" => attributes = Some(value),
            "excludedattributes" => excluded = Some(value),
            _ => {
                return Err(wire::bad(
                    ScimType::InvalidValue,
                    format!("{key} is not a query parameter here"),
                ));
            }
        }
    }
    Projection::parse(rt, attributes.as_deref(), excluded.as_deref())
        .map_err(|e| wire::error(ScimFailure::Scim(e)))
}

/// Whether a projection leaves memberships (`groups`, `members`) out, so they need
/// not be read.
fn wants_memberships(rt: &ResourceType, projection: &Projection) -> bool {
    let name = if rt.id == GROUP_TYPE.id {
        "members"
    } else {
        "groups"
    };
    let named = |list: &[tessera_scim::schema::Resolved]| {
        list.iter()
            .any(|r| r.attribute.name == name && r.extension.is_none())
    };
    if !projection.attributes.is_empty() {
        return named(&projection.attributes);
    }
    !projection
        .excluded
        .iter()
        .any(|r| r.attribute.name == name && r.sub.is_none() && r.extension.is_none())
}

async fn service_provider_config(State(state): State<AppState>) -> Response {
    let base = base(&state);
    json(
        StatusCode::OK,
        &schema::service_provider_config(
            &base,
            CAPABILITIES,
            "https://www.rfc-editor.org/rfc/rfc7644",
        ),
    )
}

async fn resource_types(State(state): State<AppState>) -> Response {
    let base = base(&state);
    let resources = RESOURCE_TYPES
        .iter()
        .filter_map(|t| t.document(&base).as_object().cloned())
        .collect();
    json(
        StatusCode::OK,
        &list_response(2, Some(1), resources, None, None),
    )
}

async fn resource_type(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match RESOURCE_TYPES
        .iter()
        .find(|t| t.id.eq_ignore_ascii_case(&id))
    {
        Some(t) => json(StatusCode::OK, &t.document(&base(&state))),
        None => not_found_response(),
    }
}

async fn schemas(State(state): State<AppState>) -> Response {
    let base = base(&state);
    let resources: Vec<Map<String, Value>> = schema::SCHEMAS
        .iter()
        .filter_map(|s| s.document(&base).as_object().cloned())
        .collect();
    json(
        StatusCode::OK,
        &list_response(resources.len() as u64, Some(1), resources, None, None),
    )
}

async fn schema_by_id(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match schema::schema(&id) {
        Some(s) => json(StatusCode::OK, &s.document(&base(&state))),
        None => not_found_response(),
    }
}

fn not_found_response() -> Response {
    wire::error(ScimFailure::Scim(ScimError::not_found("no such resource")))
}

async fn not_found() -> Response {
    not_found_response()
}

fn list_page_response(rt: &ResourceType, page: ListPage, projection: &Projection) -> Response {
    let resources = page
        .resources
        .into_iter()
        .map(|mut r| {
            projection.apply(rt, &mut r);
            r
        })
        .collect();
    json(
        StatusCode::OK,
        &list_response(
            page.total,
            page.start_index,
            resources,
            page.next_cursor,
            None,
        ),
    )
}

async fn list_of(
    state: &AppState,
    ctx: &Context,
    rt: &ResourceType,
    raw: RawListRequest,
) -> Response {
    let request = match raw.read(rt, CAPABILITIES.max_results) {
        Ok(request) => request,
        Err(e) => return wire::error(ScimFailure::Scim(e)),
    };
    let projection = match Projection::parse(
        rt,
        request.attributes.as_deref(),
        request.excluded_attributes.as_deref(),
    ) {
        Ok(p) => p,
        Err(e) => return wire::error(ScimFailure::Scim(e)),
    };
    let memberships = wants_memberships(rt, &projection);
    match state
        .app
        .provisioning
        .list(ctx, rt, &request, &base(state), memberships)
        .await
    {
        Ok(page) => list_page_response(rt, page, &projection),
        Err(e) => wire::error(e),
    }
}

async fn list(state: AppState, ctx: Context, rt: ResourceType, query: Option<String>) -> Response {
    match RawListRequest::from_query(&query_pairs(&query)) {
        Ok(raw) => list_of(&state, &ctx, &rt, raw).await,
        Err(e) => wire::error(ScimFailure::Scim(e)),
    }
}

async fn search(
    state: AppState,
    ctx: Context,
    rt: ResourceType,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = match body_of(&headers, &bytes) {
        Ok(body) => body,
        Err(response) => return response,
    };
    match RawListRequest::from_search(&body) {
        Ok(raw) => list_of(&state, &ctx, &rt, raw).await,
        Err(e) => wire::error(ScimFailure::Scim(e)),
    }
}

async fn get_one(
    state: AppState,
    ctx: Context,
    rt: ResourceType,
    id: String,
    query: Option<String>,
) -> Response {
    let projection = match projection_of(&rt, &query) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let memberships = wants_memberships(&rt, &projection);
    match state
        .app
        .provisioning
        .get(&ctx, &rt, &id, &base(&state), memberships)
        .await
    {
        Ok(r) => resource_response(StatusCode::OK, r.body, &r.etag, Some(&projection), &rt),
        Err(e) => wire::error(e),
    }
}

async fn create(
    state: AppState,
    ctx: Context,
    rt: ResourceType,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = match body_of(&headers, &bytes) {
        Ok(body) => body,
        Err(response) => return response,
    };
    match state
        .app
        .provisioning
        .create(&ctx, &rt, &body, &base(&state))
        .await
    {
        Ok(r) => resource_response(StatusCode::CREATED, r.body, &r.etag, None, &rt),
        Err(e) => wire::error(e),
    }
}

/// `PUT` (`patching` false) or `PATCH` of one resource.
#[allow(clippy::too_many_arguments)]
async fn update(
    state: AppState,
    ctx: Context,
    rt: ResourceType,
    id: String,
    headers: HeaderMap,
    bytes: Bytes,
    patching: bool,
) -> Response {
    let body = match body_of(&headers, &bytes) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let if_match = if_match(&headers);
    let provisioning = &state.app.provisioning;
    let base = base(&state);
    let updated = if patching {
        provisioning
            .patch(&ctx, &rt, &id, &body, if_match.as_deref(), &base)
            .await
    } else {
        provisioning
            .replace(&ctx, &rt, &id, &body, if_match.as_deref(), &base)
            .await
    };
    match updated {
        Ok(r) => resource_response(StatusCode::OK, r.body, &r.etag, None, &rt),
        Err(e) => wire::error(e),
    }
}

async fn delete(
    state: AppState,
    ctx: Context,
    rt: ResourceType,
    id: String,
    headers: HeaderMap,
) -> Response {
    let if_match = if_match(&headers);
    match state
        .app
        .provisioning
        .delete(&ctx, &rt, &id, if_match.as_deref())
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => wire::error(e),
    }
}

/// The handlers of one resource type's endpoints, in a module named for it.
macro_rules! resource_handlers {
    ($module:ident, $rt:expr) => {
        mod $module {
            use super::*;

            pub async fn list_all(
                State(state): State<AppState>,
                ScimCaller(ctx): ScimCaller,
                RawQuery(query): RawQuery,
            ) -> Response {
                list(state, ctx, $rt, query).await
            }

            pub async fn search_all(
                State(state): State<AppState>,
                ScimCaller(ctx): ScimCaller,
                headers: HeaderMap,
                bytes: Bytes,
            ) -> Response {
                search(state, ctx, $rt, headers, bytes).await
            }

            pub async fn get_one(
                State(state): State<AppState>,
                ScimCaller(ctx): ScimCaller,
                Path(id): Path<String>,
                RawQuery(query): RawQuery,
            ) -> Response {
                super::get_one(state, ctx, $rt, id, query).await
            }

            pub async fn create_one(
                State(state): State<AppState>,
                ScimCaller(ctx): ScimCaller,
                headers: HeaderMap,
                bytes: Bytes,
            ) -> Response {
                create(state, ctx, $rt, headers, bytes).await
            }

            pub async fn replace_one(
                State(state): State<AppState>,
                ScimCaller(ctx): ScimCaller,
                Path(id): Path<String>,
                headers: HeaderMap,
                bytes: Bytes,
            ) -> Response {
                update(state, ctx, $rt, id, headers, bytes, false).await
            }

            pub async fn patch_one(
                State(state): State<AppState>,
                ScimCaller(ctx): ScimCaller,
                Path(id): Path<String>,
                headers: HeaderMap,
                bytes: Bytes,
            ) -> Response {
                update(state, ctx, $rt, id, headers, bytes, true).await
            }

            pub async fn delete_one(
                State(state): State<AppState>,
                ScimCaller(ctx): ScimCaller,
                Path(id): Path<String>,
                headers: HeaderMap,
            ) -> Response {
                delete(state, ctx, $rt, id, headers).await
            }
        }
    };
}

resource_handlers!(users, USER_TYPE);
resource_handlers!(groups, GROUP_TYPE);

/// `POST /.search` at the root: users, then groups. The filter and attributes
/// must make sense for each (RFC 7644 §3.4.3); paging runs over both.
async fn search_all(
    State(state): State<AppState>,
    ScimCaller(ctx): ScimCaller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = match body_of(&headers, &bytes) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let raw = match RawListRequest::from_search(&body) {
        Ok(raw) => raw,
        Err(e) => return wire::error(ScimFailure::Scim(e)),
    };
    if raw.cursor.is_some() || raw.sort_by.is_some() {
        return wire::bad(
            ScimType::InvalidValue,
            "a search at the root is paged by startIndex, unsorted",
        );
    }
    // A filter must be sound; a type whose attributes it does not name has no match.
    let filter = match raw
        .filter
        .as_deref()
        .map(tessera_scim::filter::parse)
        .transpose()
    {
        Ok(filter) => filter,
        Err(e) => return wire::error(ScimFailure::Scim(e)),
    };
    let mut total = 0;
    let mut resources = Vec::new();
    let mut start = raw
        .start_index
        .as_deref()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(1)
        .max(1) as u64;
    let mut remaining = raw
        .count
        .as_deref()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(|c| c.clamp(0, i64::from(CAPABILITIES.max_results)) as u32);
    let first_start = start;
    for rt in [USER_TYPE, GROUP_TYPE] {
        if let Some(filter) = &filter
            && tessera_scim::eval::check(&rt, filter).is_err()
        {
            continue;
        }
        let mut per_type = raw.clone();
        per_type.start_index = Some(start.to_string());
        per_type.count = remaining.map(|c| c.to_string());
        per_type.attributes = None;
        per_type.excluded_attributes = None;
        let request = match per_type.read(&rt, CAPABILITIES.max_results) {
            Ok(request) => request,
            Err(e) => return wire::error(ScimFailure::Scim(e)),
        };
        let projection = match Projection::parse_lenient(
            &rt,
            raw.attributes.as_deref(),
            raw.excluded_attributes.as_deref(),
        ) {
            Ok(p) => p,
            Err(e) => return wire::error(ScimFailure::Scim(e)),
        };
        let memberships = wants_memberships(&rt, &projection);
        let page = match state
            .app
            .provisioning
            .list(&ctx, &rt, &request, &base(&state), memberships)
            .await
        {
            Ok(page) => page,
            Err(e) => return wire::error(e),
        };
        // The next type starts where this one's results end.
        start = start.saturating_sub(page.total).max(1);
        if let Some(r) = remaining.as_mut() {
            *r = r.saturating_sub(page.resources.len() as u32);
        }
        total += page.total;
        for mut resource in page.resources {
            projection.apply(&rt, &mut resource);
            resources.push(resource);
        }
    }
    json(
        StatusCode::OK,
        &list_response(total, Some(first_start), resources, None, None),
    )
}

/// `/Me` (RFC 7644 §3.11): the signed-in user's own resource; a workload is no user.
fn me(ctx: &Context) -> Result<String, Response> {
    ctx.caller
        .user_id()
        .map(|id| id.to_string())
        .ok_or_else(|| {
            wire::error(ScimFailure::Scim(ScimError::new(
                501,
                None,
                "/Me is the signed-in user's resource; this credential is not a user's",
            )))
        })
}

async fn get_me(
    State(state): State<AppState>,
    ScimCaller(ctx): ScimCaller,
    RawQuery(query): RawQuery,
) -> Response {
    match me(&ctx) {
        Ok(id) => get_one(state, ctx, USER_TYPE, id, query).await,
        Err(response) => response,
    }
}

async fn replace_me(
    State(state): State<AppState>,
    ScimCaller(ctx): ScimCaller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    match me(&ctx) {
        Ok(id) => update(state, ctx, USER_TYPE, id, headers, bytes, false).await,
        Err(response) => response,
    }
}

async fn patch_me(
    State(state): State<AppState>,
    ScimCaller(ctx): ScimCaller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    match me(&ctx) {
        Ok(id) => update(state, ctx, USER_TYPE, id, headers, bytes, true).await,
        Err(response) => response,
    }
}

async fn delete_me(
    State(state): State<AppState>,
    ScimCaller(ctx): ScimCaller,
    headers: HeaderMap,
) -> Response {
    match me(&ctx) {
        Ok(id) => delete(state, ctx, USER_TYPE, id, headers).await,
        Err(response) => response,
    }
}

/// `POST /Bulk` (RFC 7644 §3.7).
async fn bulk(
    State(state): State<AppState>,
    ScimCaller(ctx): ScimCaller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = match body_of(&headers, &bytes) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request = match tessera_scim::bulk::parse(&body, CAPABILITIES.bulk_max_operations as usize)
    {
        Ok(request) => request,
        Err(e) => return wire::error(ScimFailure::Scim(e)),
    };
    let response = state
        .app
        .provisioning
        .bulk(&ctx, request, &base(&state))
        .await;
    json(StatusCode::OK, &response)
}

//! Privileged Identity Management, Graph-shaped: for directory roles
//! `roleManagement/directory/role{Assignment,Eligibility}ScheduleRequests` (the
//! nine actions), their approval, denial and cancellation, the schedules and the
//! instances granting now, and each role's settings; for groups' membership and
//! ownership the same under `identityGovernance/privilegedAccess/group/`.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use tessera_service::pim::ScheduleKind as Kind;
use tessera_service::pim::{
    Family, GroupAccess, InstanceView, RequestFilter, RequestView, ScheduleView, SettingsView,
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, IfMatch, JsonBody, OptionalJsonBody, Path, Query};
use crate::routes::{PageOf, created, ok, ok_versioned};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestParams {
    /// `principal`: the caller's own requests; `approver`: those waiting for the
    /// caller's approval; absent: all (a reader of role assignments), or one
    /// principal's.
    pub on: Option<String>,
    pub principal_id: Option<Uuid>,
    /// One role's requests (its PIM history), in the roles' endpoints.
    pub role_definition_id: Option<Uuid>,
    /// One group's requests, in the groups' endpoints.
    pub group_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleParams {
    pub principal_id: Option<Uuid>,
    /// Directory roles' schedules: one role's.
    pub role_definition_id: Option<Uuid>,
    /// Groups' schedules: one group's.
    pub group_id: Option<Uuid>,
}

/// The role or group a schedule listing is narrowed to, in its family.
fn narrowed_to(family: Family, params: &ScheduleParams) -> ApiResult<Option<Uuid>> {
    match (family, params.role_definition_id, params.group_id) {
        (Family::Roles, role, None) => Ok(role),
        (Family::Groups, None, group) => Ok(group),
        (Family::Roles, _, Some(_)) => Err(ApiError::bad_request(
            "groupId",
            "groups' schedules are under identityGovernance/privilegedAccess/group/",
        )),
        (Family::Groups, Some(_), _) => Err(ApiError::bad_request(
            "roleDefinitionId",
            "roles' schedules are under roleManagement/directory/",
        )),
    }
}

/// An approver's answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnswerBody {
    pub justification: Option<String>,
}

fn filter_of(params: &RequestParams) -> ApiResult<RequestFilter> {
    match params.on.as_deref() {
        None => Ok(RequestFilter::All),
        Some("principal") => Ok(RequestFilter::MadeByMe),
        Some("approver") => Ok(RequestFilter::AwaitingMe),
        Some(_) => Err(ApiError::bad_request("on", "on is principal or approver")),
    }
}

fn answer_of(body: Option<Value>) -> ApiResult<Option<String>> {
    let Some(body) = body else { return Ok(None) };
    let answer: AnswerBody =
        tessera_directory::patch::parse_spec(body).map_err(tessera_service::ServiceError::from)?;
    Ok(answer.justification)
}

async fn create(
    state: &AppState,
    ctx: &tessera_service::Context,
    family: Family,
    kind: Kind,
    body: Value,
) -> ApiResult<Response> {
    Ok(created(
        &state
            .app
            .pim
            .create_request(ctx, family, kind, body)
            .await?,
    ))
}

async fn list(
    state: &AppState,
    ctx: &tessera_service::Context,
    family: Family,
    kind: Kind,
    params: &RequestParams,
) -> ApiResult<Response> {
    let filter = filter_of(params)?;
    let narrowed = narrowed_to(
        family,
        &ScheduleParams {
            principal_id: None,
            role_definition_id: params.role_definition_id,
            group_id: params.group_id,
        },
    )?;
    let mut page = state
        .app
        .pim
        .list_requests(ctx, family, kind, filter, params.principal_id)
        .await?;
    if let Some(target) = narrowed {
        page.value
            .retain(|q| q.role_definition_id == Some(target) || q.group_id == Some(target));
    }
    Ok(ok(&page))
}

macro_rules! request_routes {
    ($family:expr, $base:literal, $kind:expr, $collection:literal,
     $list:ident, $create:ident, $get:ident, $cancel:ident, $approve:ident, $deny:ident) => {
        #[utoipa::path(get, path = concat!("/api/v1/", $base, $collection), tag = "pim",
            params(RequestParams), responses((status = 200, body = PageOf<RequestView>)), security(("bearer" = [])))]
        pub async fn $list(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            Query(params): Query<RequestParams>,
        ) -> ApiResult<Response> {
            list(&state, &ctx, $family, $kind, &params).await
        }

        #[utoipa::path(post, path = concat!("/api/v1/", $base, $collection), tag = "pim",
            request_body = Object, responses((status = 201, body = RequestView)), security(("bearer" = [])))]
        pub async fn $create(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            JsonBody(body): JsonBody,
        ) -> ApiResult<Response> {
            create(&state, &ctx, $family, $kind, body).await
        }

        #[utoipa::path(get, path = concat!("/api/v1/", $base, $collection, "/{id}"), tag = "pim",
            params(("id" = Uuid, Path)), responses((status = 200, body = RequestView)), security(("bearer" = [])))]
        pub async fn $get(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            Path(id): Path<Uuid>,
        ) -> ApiResult<Response> {
            Ok(ok(&state.app.pim.get_request(&ctx, $family, $kind, id).await?))
        }

        #[utoipa::path(post, path = concat!("/api/v1/", $base, $collection, "/{id}/cancel"), tag = "pim",
            params(("id" = Uuid, Path)), responses((status = 200, body = RequestView)), security(("bearer" = [])))]
        pub async fn $cancel(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            Path(id): Path<Uuid>,
        ) -> ApiResult<Response> {
            Ok(ok(&state.app.pim.cancel_request(&ctx, $family, $kind, id).await?))
        }

        #[utoipa::path(post, path = concat!("/api/v1/", $base, $collection, "/{id}/approve"), tag = "pim",
            params(("id" = Uuid, Path)), request_body = AnswerBody,
            responses((status = 200, body = RequestView)), security(("bearer" = [])))]
        pub async fn $approve(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            Path(id): Path<Uuid>,
            OptionalJsonBody(body): OptionalJsonBody,
        ) -> ApiResult<Response> {
            let justification = answer_of(body)?;
            Ok(ok(&state
                .app
                .pim
                .answer_request(&ctx, $family, $kind, id, true, justification)
                .await?))
        }

        #[utoipa::path(post, path = concat!("/api/v1/", $base, $collection, "/{id}/deny"), tag = "pim",
            params(("id" = Uuid, Path)), request_body = AnswerBody,
            responses((status = 200, body = RequestView)), security(("bearer" = [])))]
        pub async fn $deny(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            Path(id): Path<Uuid>,
            OptionalJsonBody(body): OptionalJsonBody,
        ) -> ApiResult<Response> {
            let justification = answer_of(body)?;
            Ok(ok(&state
                .app
                .pim
                .answer_request(&ctx, $family, $kind, id, false, justification)
                .await?))
        }
    };
}

request_routes!(
    Family::Roles,
    "roleManagement/directory/",
    Kind::Assignment,
    "roleAssignmentScheduleRequests",
    list_assignment_requests,
    create_assignment_request,
    get_assignment_request,
    cancel_assignment_request,
    approve_assignment_request,
    deny_assignment_request
);

request_routes!(
    Family::Roles,
    "roleManagement/directory/",
    Kind::Eligibility,
    "roleEligibilityScheduleRequests",
    list_eligibility_requests,
    create_eligibility_request,
    get_eligibility_request,
    cancel_eligibility_request,
    approve_eligibility_request,
    deny_eligibility_request
);

request_routes!(
    Family::Groups,
    "identityGovernance/privilegedAccess/group/",
    Kind::Assignment,
    "assignmentScheduleRequests",
    list_group_assignment_requests,
    create_group_assignment_request,
    get_group_assignment_request,
    cancel_group_assignment_request,
    approve_group_assignment_request,
    deny_group_assignment_request
);

request_routes!(
    Family::Groups,
    "identityGovernance/privilegedAccess/group/",
    Kind::Eligibility,
    "eligibilityScheduleRequests",
    list_group_eligibility_requests,
    create_group_eligibility_request,
    get_group_eligibility_request,
    cancel_group_eligibility_request,
    approve_group_eligibility_request,
    deny_group_eligibility_request
);

macro_rules! schedule_routes {
    ($family:expr, $base:literal, $kind:expr, $collection:literal, $instances:literal, $schedules:ident, $instance_list:ident) => {
        #[utoipa::path(get, path = concat!("/api/v1/", $base, $collection), tag = "pim",
            params(ScheduleParams), responses((status = 200, body = PageOf<ScheduleView>)), security(("bearer" = [])))]
        pub async fn $schedules(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            Query(params): Query<ScheduleParams>,
        ) -> ApiResult<Response> {
            Ok(ok(&state
                .app
                .pim
                .list_schedules(
                    &ctx,
                    $family,
                    $kind,
                    params.principal_id,
                    narrowed_to($family, &params)?,
                )
                .await?))
        }

        #[utoipa::path(get, path = concat!("/api/v1/", $base, $instances), tag = "pim",
            params(ScheduleParams), responses((status = 200, body = PageOf<InstanceView>)), security(("bearer" = [])))]
        pub async fn $instance_list(
            State(state): State<AppState>,
            Caller(ctx): Caller,
            Query(params): Query<ScheduleParams>,
        ) -> ApiResult<Response> {
            Ok(ok(&state
                .app
                .pim
                .list_instances(
                    &ctx,
                    $family,
                    $kind,
                    params.principal_id,
                    narrowed_to($family, &params)?,
                )
                .await?))
        }
    };
}

schedule_routes!(
    Family::Roles,
    "roleManagement/directory/",
    Kind::Assignment,
    "roleAssignmentSchedules",
    "roleAssignmentScheduleInstances",
    list_assignment_schedules,
    list_assignment_instances
);

schedule_routes!(
    Family::Roles,
    "roleManagement/directory/",
    Kind::Eligibility,
    "roleEligibilitySchedules",
    "roleEligibilityScheduleInstances",
    list_eligibility_schedules,
    list_eligibility_instances
);

schedule_routes!(
    Family::Groups,
    "identityGovernance/privilegedAccess/group/",
    Kind::Assignment,
    "assignmentSchedules",
    "assignmentScheduleInstances",
    list_group_assignment_schedules,
    list_group_assignment_instances
);

schedule_routes!(
    Family::Groups,
    "identityGovernance/privilegedAccess/group/",
    Kind::Eligibility,
    "eligibilitySchedules",
    "eligibilityScheduleInstances",
    list_group_eligibility_schedules,
    list_group_eligibility_instances
);

#[utoipa::path(get, path = "/api/v1/roleManagement/directory/roleSettings/{roleDefinitionId}", tag = "pim",
    params(("roleDefinitionId" = Uuid, Path)), responses((status = 200, body = SettingsView)), security(("bearer" = [])))]
pub async fn get_role_settings(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(role): Path<Uuid>,
) -> ApiResult<Response> {
    let view = state.app.pim.role_settings(&ctx, role).await?;
    Ok(ok_versioned(&view, view.version))
}

#[utoipa::path(put, path = "/api/v1/roleManagement/directory/roleSettings/{roleDefinitionId}", tag = "pim",
    params(("roleDefinitionId" = Uuid, Path)), request_body = Object,
    responses((status = 200, body = SettingsView)), security(("bearer" = [])))]
pub async fn replace_role_settings(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(role): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let view = state
        .app
        .pim
        .replace_role_settings(&ctx, role, body, if_match)
        .await?;
    Ok(ok_versioned(&view, view.version))
}

fn access_of(text: &str) -> ApiResult<GroupAccess> {
    GroupAccess::parse(text)
        .ok_or_else(|| ApiError::bad_request("accessId", "accessId is member or owner"))
}

#[utoipa::path(get, path = "/api/v1/identityGovernance/privilegedAccess/group/settings/{groupId}/{accessId}", tag = "pim",
    params(("groupId" = Uuid, Path), ("accessId" = String, Path, description = "member or owner")),
    responses((status = 200, body = SettingsView)), security(("bearer" = [])))]
pub async fn get_group_settings(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((group, access)): Path<(Uuid, String)>,
) -> ApiResult<Response> {
    let view = state
        .app
        .pim
        .group_settings(&ctx, group, access_of(&access)?)
        .await?;
    Ok(ok_versioned(&view, view.version))
}

#[utoipa::path(put, path = "/api/v1/identityGovernance/privilegedAccess/group/settings/{groupId}/{accessId}", tag = "pim",
    params(("groupId" = Uuid, Path), ("accessId" = String, Path, description = "member or owner")),
    request_body = Object, responses((status = 200, body = SettingsView)), security(("bearer" = [])))]
pub async fn replace_group_settings(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((group, access)): Path<(Uuid, String)>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let view = state
        .app
        .pim
        .replace_group_settings(&ctx, group, access_of(&access)?, body, if_match)
        .await?;
    Ok(ok_versioned(&view, view.version))
}

/// Graph's query options of the policy listings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PolicyParams {
    /// `scopeId eq '/' and scopeType eq 'DirectoryRole'`, or a group's id and
    /// `'Group'` (assignments: also `and roleDefinitionId eq '...'`).
    #[serde(rename = "$filter")]
    #[param(rename = "$filter")]
    pub filter: Option<String>,
    /// `rules` to include each policy's rules.
    #[serde(rename = "$expand")]
    #[param(rename = "$expand")]
    pub expand: Option<String>,
}

fn expands_rules(params: &PolicyParams) -> ApiResult<bool> {
    match params.expand.as_deref() {
        None => Ok(false),
        Some("rules") => Ok(true),
        Some(_) => Err(ApiError::bad_request(
            "$expand",
            "only rules can be expanded",
        )),
    }
}

#[utoipa::path(get, path = "/api/v1/policies/roleManagementPolicies", tag = "pim",
    params(PolicyParams), responses((status = 200, body = crate::routes::ValueList<Object>)), security(("bearer" = [])))]
pub async fn list_role_management_policies(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<PolicyParams>,
) -> ApiResult<Response> {
    let expand = expands_rules(&params)?;
    Ok(ok(&state
        .app
        .pim
        .list_role_management_policies(&ctx, params.filter.as_deref(), expand)
        .await?))
}

#[utoipa::path(get, path = "/api/v1/policies/roleManagementPolicies/{id}", tag = "pim",
    params(("id" = String, Path), PolicyParams), responses((status = 200, body = Object)), security(("bearer" = [])))]
pub async fn get_role_management_policy(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
    Query(params): Query<PolicyParams>,
) -> ApiResult<Response> {
    if params.filter.is_some() {
        return Err(ApiError::bad_request(
            "$filter",
            "one policy is not filtered",
        ));
    }
    let expand = expands_rules(&params)?;
    Ok(ok(&state
        .app
        .pim
        .role_management_policy(&ctx, &id, expand)
        .await?))
}

#[utoipa::path(get, path = "/api/v1/policies/roleManagementPolicies/{id}/rules", tag = "pim",
    params(("id" = String, Path)), responses((status = 200, body = crate::routes::ValueList<Object>)), security(("bearer" = [])))]
pub async fn list_role_management_policy_rules(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .pim
        .role_management_policy_rules(&ctx, &id, None)
        .await?))
}

#[utoipa::path(get, path = "/api/v1/policies/roleManagementPolicies/{id}/rules/{ruleId}", tag = "pim",
    params(("id" = String, Path), ("ruleId" = String, Path)), responses((status = 200, body = Object)), security(("bearer" = [])))]
pub async fn get_role_management_policy_rule(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((id, rule)): Path<(String, String)>,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .pim
        .role_management_policy_rules(&ctx, &id, Some(&rule))
        .await?))
}

#[utoipa::path(patch, path = "/api/v1/policies/roleManagementPolicies/{id}/rules/{ruleId}", tag = "pim",
    params(("id" = String, Path), ("ruleId" = String, Path)), request_body = Object,
    responses((status = 200, body = Object)), security(("bearer" = [])))]
pub async fn update_role_management_policy_rule(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path((id, rule)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .pim
        .update_role_management_policy_rule(&ctx, &id, &rule, body, if_match)
        .await?))
}

#[utoipa::path(get, path = "/api/v1/policies/roleManagementPolicyAssignments", tag = "pim",
    params(PolicyParams), responses((status = 200, body = crate::routes::ValueList<Object>)), security(("bearer" = [])))]
pub async fn list_role_management_policy_assignments(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<PolicyParams>,
) -> ApiResult<Response> {
    if params.expand.is_some() {
        return Err(ApiError::bad_request(
            "$expand",
            "assignments expand nothing",
        ));
    }
    Ok(ok(&state
        .app
        .pim
        .list_role_management_policy_assignments(&ctx, params.filter.as_deref())
        .await?))
}

#[utoipa::path(get, path = "/api/v1/roleManagement/directory/alerts", tag = "pim",
    responses((status = 200, body = crate::routes::ValueList<tessera_service::pim::AlertView>)), security(("bearer" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    let value = state.app.pim.alerts(&ctx).await?;
    Ok(ok(&serde_json::json!({ "value": value })))
}

#[utoipa::path(get, path = "/api/v1/roleManagement/directory/alertSettings", tag = "pim",
    responses((status = 200, body = tessera_service::pim::AlertSettingsView)), security(("bearer" = [])))]
pub async fn get_alert_settings(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    let view = state.app.pim.alert_settings(&ctx).await?;
    Ok(ok_versioned(&view, view.version))
}

#[utoipa::path(put, path = "/api/v1/roleManagement/directory/alertSettings", tag = "pim",
    request_body = Object, responses((status = 200, body = tessera_service::pim::AlertSettingsView)), security(("bearer" = [])))]
pub async fn replace_alert_settings(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let view = state
        .app
        .pim
        .replace_alert_settings(&ctx, body, if_match)
        .await?;
    Ok(ok_versioned(&view, view.version))
}

#[utoipa::path(post, path = "/api/v1/roleManagement/directory/roleAssignments/{id}/convertToEligible", tag = "pim",
    params(("id" = Uuid, Path, description = "a standing role assignment, or a permanent assignment schedule")),
    request_body = Object, responses((status = 200, body = ScheduleView)), security(("bearer" = [])))]
pub async fn convert_to_eligible(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Path(id): Path<Uuid>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> ApiResult<Response> {
    Ok(ok(&state
        .app
        .pim
        .convert_to_eligible(&ctx, id, body)
        .await?))
}

crate::setting_handlers! {
    tag: "pim", path: "/api/v1/policies/protectedActions", schema: serde_json::Value, change: put,
    get: get_protected_actions => pim.protected_actions,
    set: /// Management actions that need an authentication context (`rules`: `action`,
        /// optionally `roleDefinitionId` for role assignments, `authenticationContext`).
        /// A call without it is answered `401` with an RFC 9470
        /// `insufficient_user_authentication` challenge naming the context.
        set_protected_actions => pim.set_protected_actions,
}

#[utoipa::path(get, path = "/api/v1/policies/notificationSettings", tag = "pim",
    responses((status = 200, body = tessera_service::kernel::outbox::NotificationSettingsView)), security(("bearer" = [])))]
pub async fn get_notification_settings(
    State(state): State<AppState>,
    Caller(ctx): Caller,
) -> ApiResult<Response> {
    let (view, version) = state.app.notification_settings(&ctx).await?;
    Ok(ok_versioned(&view, version))
}

/// Where notifications go: `webhookUrl` with `webhookSecret` (32 to 256
/// characters, write-only; each POST carries `Tessera-Signature: t=<unix>,v1=<hex
/// HMAC-SHA256 of "<t>.<body>">` and `Tessera-Event-Id`), `mailEnabled` (through the
/// deployment's `[smtp]` relay) and `administratorEmails`.
#[utoipa::path(put, path = "/api/v1/policies/notificationSettings", tag = "pim",
    request_body = Object, responses((status = 200, body = tessera_service::kernel::outbox::NotificationSettingsView)), security(("bearer" = [])))]
pub async fn set_notification_settings(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let change = tessera_service::Replacement::new(body, if_match);
    Ok(ok(&state
        .app
        .set_notification_settings(&ctx, change)
        .await?))
}

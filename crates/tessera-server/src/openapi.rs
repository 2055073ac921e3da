//! The OpenAPI 3.1 document, generated from the handlers' annotations, so it cannot
//! drift from the routes.

use std::collections::BTreeMap;

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{AdditionalProperties, Object, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, HeaderBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::{
    apps, audit, authentication, conditional_access, directory, me, pim, provisioning, risk, roles,
    siem, ssf,
};
use crate::state::AppState;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("Tessera personal access token (tsr_pat_...)")
                        .build(),
                ),
            );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera management API",
        version = "1",
        description = "Directory, roles and audit trail of a Tessera tenant. Errors are RFC 9457 problem details \
                       (application/problem+json) with a stable `code`. Updates are JSON merge patches; send the \
                       ETag you read as If-Match to be refused (412) instead of overwriting someone else's change."
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

/// The management API's routes and its finished document.
pub fn api() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = api_router().split_for_parts();
    finish(&mut document);
    (router, document)
}

/// The error responses, documented once as components and referenced by every
/// operation that can give them. Each is an RFC 9457 problem.
const ERROR_RESPONSES: &[(u16, &str, &str)] = &[
    (
        400,
        "BadRequest",
        "The request is invalid (`validation_failed`, with the offending fields): a malformed parameter, path id, `If-Match` or body, a duplicate key, or a value the rules refuse.",
    ),
    (
        401,
        "Unauthorized",
        "No valid credential (`unauthenticated`).",
    ),
    (
        403,
        "Forbidden",
        "The caller's roles do not allow this (`forbidden`).",
    ),
    (
        404,
        "NotFound",
        "The object named in the path, or one it needs, does not exist (`not_found`).",
    ),
    (
        409,
        "Conflict",
        "The change conflicts with the directory's state (`conflict`): a unique value taken, a reference still in use, a last administrator.",
    ),
    (
        412,
        "PreconditionFailed",
        "The object changed since the `If-Match` ETag was read (`version_mismatch`).",
    ),
    (
        413,
        "PayloadTooLarge",
        "The body is larger than the server accepts (`body_unreadable`).",
    ),
    (
        415,
        "UnsupportedMediaType",
        "The body is not sent as `application/json` (`unsupported_media_type`).",
    ),
    (
        500,
        "InternalError",
        "An unexpected error (`internal`); quote the correlation id.",
    ),
    (
        503,
        "Unavailable",
        "The database or a service this needs does not answer (`unavailable`); retry later.",
    ),
];

/// Completes the generated document so it says what the server does:
/// - every operation lists the problems it can answer with, as references to the
///   shared responses in `ERROR_RESPONSES` (whatever a handler's annotation said
///   about an error status is replaced by the shared one, so all are
///   `application/problem+json`);
/// - a schema that flattens a spec into an object (`allOf` of the spec, whose
///   unknown fields are refused, and the object's own fields) becomes one object with
///   all the fields, since `additionalProperties: false` on one part of an `allOf`
///   would refuse the other part's fields.
pub fn finish(document: &mut utoipa::openapi::OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);
    for (status, name, description) in ERROR_RESPONSES {
        let mut response = ResponseBuilder::new().description(*description).content(
            "application/problem+json",
            Content::new(Some(Ref::from_schema_name("Problem"))),
        );
        if *status == 401 {
            response = response.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::Type::String),
                    ))
                    .description(Some("`Bearer`"))
                    .build(),
            );
        }
        components
            .responses
            .insert((*name).to_string(), RefOr::T(response.build()));
    }
    flatten_all_of(&mut components.schemas);

    for item in document.paths.paths.values_mut() {
        let path_parameters = item.parameters.clone().unwrap_or_default();
        let operations = [
            (false, item.get.as_mut()),
            (true, item.put.as_mut()),
            (true, item.post.as_mut()),
            (true, item.delete.as_mut()),
            (true, item.patch.as_mut()),
        ];
        for (writes, operation) in operations {
            if let Some(operation) = operation {
                document_errors(operation, &path_parameters, writes);
            }
        }
    }
}

/// What `If-Match` accepts (anything else is a 400): `*`, or an ETag this API gave.
const IF_MATCH_PATTERN: &str = r#"^(\*|(W/)?"[0-9]{1,18}")$"#;

fn document_errors(
    operation: &mut Operation,
    path_item_parameters: &[RefOr<utoipa::openapi::path::Parameter>],
    writes: bool,
) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter
            && parameter.name.eq_ignore_ascii_case("if-match")
        {
            parameter.schema = Some(RefOr::T(Schema::Object(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .pattern(Some(IF_MATCH_PATTERN))
                    .build(),
            )));
        }
    }
    let parameters: Vec<&utoipa::openapi::path::Parameter> = path_item_parameters
        .iter()
        .chain(operation.parameters.iter().flatten())
        .filter_map(|parameter| match parameter {
            RefOr::T(parameter) => Some(parameter),
            RefOr::Ref(_) => None,
        })
        .collect();
    let has = |location: ParameterIn| {
        parameters
            .iter()
            .any(|parameter| parameter.parameter_in == location)
    };
    let has_body = operation.request_body.is_some();
    let has_if_match = parameters
        .iter()
        .any(|parameter| parameter.name.eq_ignore_ascii_case("if-match"));
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());

    let mut statuses: Vec<u16> = operation
        .responses
        .responses
        .keys()
        .filter_map(|status| status.parse::<u16>().ok())
        .filter(|status| *status >= 400)
        .collect();
    let mut add = |status: u16, applies: bool| {
        if applies && !statuses.contains(&status) {
            statuses.push(status);
        }
    };
    add(400, !parameters.is_empty() || has_body);
    add(401, secured);
    add(403, secured);
    add(404, has(ParameterIn::Path));
    add(409, writes);
    add(412, has_if_match);
    add(413, has_body);
    add(415, has_body);
    add(500, true);
    add(503, true);
    for status in statuses {
        let Some((_, name, _)) = ERROR_RESPONSES.iter().find(|(s, _, _)| *s == status) else {
            continue;
        };
        operation.responses.responses.insert(
            status.to_string(),
            RefOr::Ref(Ref::from_response_name(*name)),
        );
    }
}

/// Replaces each schema that is an `allOf` of objects (given or referenced) by the
/// one object they describe together: first the components themselves, then the
/// schemas inside them (a generic type's parameter is written in place).
fn flatten_all_of(schemas: &mut BTreeMap<String, RefOr<Schema>>) {
    loop {
        let names: Vec<String> = schemas.keys().cloned().collect();
        let mut changed = false;
        for name in names {
            let merged = match schemas.get(&name) {
                Some(RefOr::T(Schema::AllOf(all_of))) => merge_all_of(all_of, schemas),
                _ => None,
            };
            if let Some(merged) = merged {
                schemas.insert(name, RefOr::T(Schema::Object(merged)));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let components = schemas.clone();
    for schema in schemas.values_mut() {
        flatten_within(schema, &components);
    }
}

fn flatten_within(schema: &mut RefOr<Schema>, components: &BTreeMap<String, RefOr<Schema>>) {
    let RefOr::T(inner) = schema else {
        return;
    };
    if let Schema::AllOf(all_of) = inner
        && let Some(merged) = merge_all_of(all_of, components)
    {
        *inner = Schema::Object(merged);
    }
    match inner {
        Schema::Object(object) => {
            for property in object.properties.values_mut() {
                flatten_within(property, components);
            }
            if let Some(AdditionalProperties::RefOr(additional)) =
                object.additional_properties.as_deref_mut()
            {
                flatten_within(additional, components);
            }
        }
        Schema::Array(array) => {
            if let utoipa::openapi::schema::ArrayItems::RefOrSchema(items) = &mut array.items {
                flatten_within(items, components);
            }
        }
        Schema::OneOf(one_of) => one_of
            .items
            .iter_mut()
            .for_each(|item| flatten_within(item, components)),
        Schema::AnyOf(any_of) => any_of
            .items
            .iter_mut()
            .for_each(|item| flatten_within(item, components)),
        Schema::AllOf(all_of) => all_of
            .items
            .iter_mut()
            .for_each(|item| flatten_within(item, components)),
        _ => {}
    }
}

/// The object an `allOf` of objects describes, when every part is an object (or a
/// reference to a component object). It refuses unknown fields only if every part
/// does.
fn merge_all_of(
    all_of: &utoipa::openapi::schema::AllOf,
    components: &BTreeMap<String, RefOr<Schema>>,
) -> Option<Object> {
    let mut merged = Object::with_type(utoipa::openapi::Type::Object);
    merged.description = all_of.description.clone();
    let mut closed = true;
    for item in &all_of.items {
        let part = match item {
            RefOr::T(Schema::Object(object)) => object,
            RefOr::Ref(reference) => {
                let target = reference
                    .ref_location
                    .strip_prefix("#/components/schemas/")?;
                match components.get(target) {
                    Some(RefOr::T(Schema::Object(object))) => object,
                    _ => return None,
                }
            }
            _ => return None,
        };
        closed &= matches!(
            part.additional_properties.as_deref(),
            Some(AdditionalProperties::FreeForm(false))
        );
        for field in &part.required {
            if !merged.required.contains(field) {
                merged.required.push(field.clone());
            }
        }
        merged
            .properties
            .extend(part.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if closed {
        merged.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    }
    Some(merged)
}

pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(directory::list_users, directory::create_user))
        .routes(routes!(
            directory::get_user,
            directory::update_user,
            directory::delete_user
        ))
        .routes(routes!(directory::get_user_by_principal_name))
        .routes(routes!(authentication::list_methods))
        .routes(routes!(authentication::delete_method))
        .routes(routes!(authentication::issue_pass))
        .routes(routes!(authentication::reset_password))
        .routes(routes!(authentication::revoke_sessions))
        .routes(routes!(authentication::list_sessions))
        .routes(routes!(
            authentication::get_policy,
            authentication::set_policy
        ))
        .routes(routes!(
            authentication::list_strengths,
            authentication::create_strength
        ))
        .routes(routes!(authentication::delete_strength))
        .routes(routes!(authentication::query_sign_ins))
        .routes(routes!(risk::list_risk_detections))
        .routes(routes!(risk::list_service_principal_risk_detections))
        .routes(routes!(risk::list_risky_users))
        .routes(routes!(risk::get_risky_user))
        .routes(routes!(risk::risky_user_history))
        .routes(routes!(risk::confirm_users_compromised))
        .routes(routes!(risk::dismiss_risky_users))
        .routes(routes!(risk::list_risky_service_principals))
        .routes(routes!(risk::get_risky_service_principal))
        .routes(routes!(risk::risky_service_principal_history))
        .routes(routes!(risk::confirm_service_principals_compromised))
        .routes(routes!(risk::dismiss_risky_service_principals))
        .routes(routes!(siem::list_sinks, siem::create_sink))
        .routes(routes!(
            ssf::get_signals_settings,
            ssf::set_signals_settings
        ))
        .routes(routes!(ssf::list_signal_streams))
        .routes(routes!(ssf::verify_signal_stream))
        .routes(routes!(
            ssf::list_signal_receivers,
            ssf::create_signal_receiver
        ))
        .routes(routes!(ssf::delete_signal_receiver))
        .routes(routes!(ssf::user_revocation_timeline))
        .routes(routes!(
            siem::get_sink,
            siem::update_sink,
            siem::delete_sink
        ))
        .routes(routes!(
            authentication::get_sign_in_log_retention,
            authentication::set_sign_in_log_retention
        ))
        .routes(routes!(authentication::add_certificate_user_id))
        .routes(routes!(authentication::list_cas, authentication::add_ca))
        .routes(routes!(authentication::delete_ca))
        .routes(routes!(authentication::upload_crl))
        .routes(routes!(authentication::refresh_crl))
        .routes(routes!(directory::import_users))
        .routes(routes!(directory::user_member_of))
        .routes(routes!(directory::user_transitive_member_of))
        .routes(routes!(me::list_user_tokens, me::issue_user_token))
        .routes(routes!(me::revoke_user_token))
        .routes(routes!(directory::list_groups, directory::create_group))
        .routes(routes!(
            directory::get_group,
            directory::update_group,
            directory::delete_group
        ))
        .routes(routes!(
            directory::list_group_members,
            directory::add_group_member
        ))
        .routes(routes!(directory::remove_group_member))
        .routes(routes!(directory::list_group_transitive_members))
        .routes(routes!(
            directory::list_group_owners,
            directory::add_group_owner
        ))
        .routes(routes!(directory::remove_group_owner))
        .routes(routes!(directory::list_devices, directory::create_device))
        .routes(routes!(directory::report_device_compliance))
        .routes(routes!(
            directory::get_device,
            directory::update_device,
            directory::delete_device
        ))
        .routes(routes!(directory::list_units, directory::create_unit))
        .routes(routes!(
            directory::get_unit,
            directory::update_unit,
            directory::delete_unit
        ))
        .routes(routes!(
            directory::list_unit_members,
            directory::add_unit_member
        ))
        .routes(routes!(directory::remove_unit_member))
        .routes(routes!(apps::list_applications, apps::create_application))
        .routes(routes!(apps::get_application_by_app_id))
        .routes(routes!(
            apps::get_application,
            apps::update_application,
            apps::delete_application
        ))
        .routes(routes!(
            apps::list_application_owners,
            apps::add_application_owner
        ))
        .routes(routes!(apps::remove_application_owner))
        .routes(routes!(apps::add_application_password))
        .routes(routes!(apps::remove_application_password))
        .routes(routes!(apps::add_application_key))
        .routes(routes!(apps::remove_application_key))
        .routes(routes!(
            apps::list_service_principals,
            apps::create_service_principal
        ))
        .routes(routes!(apps::get_service_principal_by_app_id))
        .routes(routes!(
            apps::get_service_principal,
            apps::update_service_principal,
            apps::delete_service_principal
        ))
        .routes(routes!(
            apps::list_service_principal_owners,
            apps::add_service_principal_owner
        ))
        .routes(routes!(apps::remove_service_principal_owner))
        .routes(routes!(apps::add_service_principal_password))
        .routes(routes!(apps::remove_service_principal_password))
        .routes(routes!(apps::add_service_principal_key))
        .routes(routes!(apps::remove_service_principal_key))
        .routes(routes!(
            apps::list_app_role_assigned_to,
            apps::assign_app_role
        ))
        .routes(routes!(apps::remove_app_role_assignment))
        .routes(routes!(
            apps::get_application_saml,
            apps::set_application_saml,
            apps::delete_application_saml
        ))
        .routes(routes!(apps::import_application_saml_metadata))
        .routes(routes!(
            apps::list_application_saml_certificates,
            apps::add_application_saml_certificate
        ))
        .routes(routes!(apps::activate_application_saml_certificate))
        .routes(routes!(apps::remove_application_saml_certificate))
        .routes(routes!(
            apps::list_permission_grants,
            apps::create_permission_grant
        ))
        .routes(routes!(apps::delete_permission_grant))
        .routes(routes!(apps::get_consent_policy, apps::set_consent_policy))
        .routes(routes!(
            apps::get_app_credential_policy,
            apps::set_app_credential_policy
        ))
        .routes(routes!(
            apps::get_authentication_contexts,
            apps::set_authentication_contexts
        ))
        .routes(routes!(
            conditional_access::list_policies,
            conditional_access::create_policy
        ))
        .routes(routes!(
            conditional_access::get_policy,
            conditional_access::update_policy,
            conditional_access::delete_policy
        ))
        .routes(routes!(
            conditional_access::list_locations,
            conditional_access::create_location
        ))
        .routes(routes!(
            conditional_access::get_location,
            conditional_access::update_location,
            conditional_access::delete_location
        ))
        .routes(routes!(
            conditional_access::list_terms,
            conditional_access::create_terms
        ))
        .routes(routes!(
            conditional_access::update_terms,
            conditional_access::delete_terms
        ))
        .routes(routes!(conditional_access::import))
        .routes(routes!(conditional_access::evaluate))
        .routes(routes!(
            conditional_access::get_security_defaults,
            conditional_access::set_security_defaults
        ))
        .routes(routes!(
            conditional_access::get_risk,
            conditional_access::set_risk
        ))
        .routes(routes!(roles::list_role_definitions))
        .routes(routes!(roles::get_role_definition))
        .routes(routes!(
            roles::list_role_assignments,
            roles::create_role_assignment
        ))
        .routes(routes!(
            roles::get_role_assignment,
            roles::delete_role_assignment
        ))
        .routes(routes!(
            pim::list_assignment_requests,
            pim::create_assignment_request
        ))
        .routes(routes!(pim::get_assignment_request))
        .routes(routes!(pim::cancel_assignment_request))
        .routes(routes!(pim::approve_assignment_request))
        .routes(routes!(pim::deny_assignment_request))
        .routes(routes!(
            pim::list_eligibility_requests,
            pim::create_eligibility_request
        ))
        .routes(routes!(pim::get_eligibility_request))
        .routes(routes!(pim::cancel_eligibility_request))
        .routes(routes!(pim::approve_eligibility_request))
        .routes(routes!(pim::deny_eligibility_request))
        .routes(routes!(pim::list_assignment_schedules))
        .routes(routes!(pim::list_assignment_instances))
        .routes(routes!(pim::list_eligibility_schedules))
        .routes(routes!(pim::list_eligibility_instances))
        .routes(routes!(pim::get_role_settings, pim::replace_role_settings))
        .routes(routes!(
            pim::list_group_assignment_requests,
            pim::create_group_assignment_request
        ))
        .routes(routes!(pim::get_group_assignment_request))
        .routes(routes!(pim::cancel_group_assignment_request))
        .routes(routes!(pim::approve_group_assignment_request))
        .routes(routes!(pim::deny_group_assignment_request))
        .routes(routes!(
            pim::list_group_eligibility_requests,
            pim::create_group_eligibility_request
        ))
        .routes(routes!(pim::get_group_eligibility_request))
        .routes(routes!(pim::cancel_group_eligibility_request))
        .routes(routes!(pim::approve_group_eligibility_request))
        .routes(routes!(pim::deny_group_eligibility_request))
        .routes(routes!(pim::list_group_assignment_schedules))
        .routes(routes!(pim::list_group_assignment_instances))
        .routes(routes!(pim::list_group_eligibility_schedules))
        .routes(routes!(pim::list_group_eligibility_instances))
        .routes(routes!(
            pim::get_group_settings,
            pim::replace_group_settings
        ))
        .routes(routes!(pim::list_role_management_policies))
        .routes(routes!(pim::get_role_management_policy))
        .routes(routes!(pim::list_role_management_policy_rules))
        .routes(routes!(
            pim::get_role_management_policy_rule,
            pim::update_role_management_policy_rule
        ))
        .routes(routes!(pim::list_role_management_policy_assignments))
        .routes(routes!(pim::list_alerts))
        .routes(routes!(
            pim::get_alert_settings,
            pim::replace_alert_settings
        ))
        .routes(routes!(pim::convert_to_eligible))
        .routes(routes!(
            pim::get_protected_actions,
            pim::set_protected_actions
        ))
        .routes(routes!(
            pim::get_notification_settings,
            pim::set_notification_settings
        ))
        .routes(routes!(
            provisioning::get_provisioning_settings,
            provisioning::set_provisioning_settings
        ))
        .routes(routes!(
            provisioning::list_provisioning_tokens,
            provisioning::create_provisioning_token
        ))
        .routes(routes!(provisioning::delete_provisioning_token))
        .routes(routes!(provisioning::get_user_mapping))
        .routes(routes!(provisioning::preview_user_mapping))
        .routes(routes!(provisioning::preview_hr_import))
        .routes(routes!(
            provisioning::list_hr_runs,
            provisioning::run_hr_import
        ))
        .routes(routes!(provisioning::get_hr_run))
        .routes(routes!(provisioning::approve_hr_run))
        .routes(routes!(provisioning::reject_hr_run))
        .routes(routes!(
            provisioning::list_lifecycle_workflows,
            provisioning::create_lifecycle_workflow
        ))
        .routes(routes!(
            provisioning::get_lifecycle_workflow,
            provisioning::replace_lifecycle_workflow,
            provisioning::delete_lifecycle_workflow
        ))
        .routes(routes!(provisioning::list_lifecycle_runs))
        .routes(routes!(
            provisioning::get_outbound_provisioning,
            provisioning::set_outbound_provisioning,
            provisioning::delete_outbound_provisioning
        ))
        .routes(routes!(provisioning::outbound_provisioning_status))
        .routes(routes!(provisioning::run_outbound_provisioning))
        .routes(routes!(provisioning::provision_on_demand))
        .routes(routes!(provisioning::outbound_provisioning_log))
        .routes(routes!(
            roles::list_attribute_definitions,
            roles::create_attribute_definition
        ))
        .routes(routes!(
            roles::get_attribute_definition,
            roles::update_attribute_definition
        ))
        .routes(routes!(me::me))
        .routes(routes!(me::list_own_tokens, me::create_own_token))
        .routes(routes!(me::revoke_own_token))
        .routes(routes!(audit::query_audit))
        .routes(routes!(audit::verify_audit))
}

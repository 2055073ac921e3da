//! The OpenAPI 3.1 document, generated from the handlers' annotations, so it cannot
//! drift from the routes.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::{apps, audit, authentication, conditional_access, directory, me, roles};
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
    modifiers(&BearerScheme)
)]
struct ApiDoc;

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

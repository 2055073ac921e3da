//! Directory roles: the built-in catalog, with Entra ID's role template ids, and
//! permission matching.
//!
//! Permissions use Entra's resource action strings,
//! `microsoft.directory/<entity>/<propertySet>/<verb>` or `.../<entity>/<verb>`. A role
//! grants patterns in which `allEntities` stands for any entity, `allProperties/allTasks`
//! for any action on the entity and `allProperties/<verb>` for any action on the entity
//! ending in `<verb>`. As in Entra, the wildcards never reach custom security
//! attributes: even a Global Administrator needs an attribute role for those.

use uuid::{Uuid, uuid};

pub mod action {
    //! The actions Tessera checks.
    pub const USERS_CREATE: &str = "microsoft.directory/users/create";
    pub const USERS_DELETE: &str = "microsoft.directory/users/delete";
    pub const USERS_READ: &str = "microsoft.directory/users/standard/read";
    pub const USERS_BASIC_UPDATE: &str = "microsoft.directory/users/basic/update";
    pub const USERS_UPN_UPDATE: &str = "microsoft.directory/users/userPrincipalName/update";
    pub const USERS_MANAGER_UPDATE: &str = "microsoft.directory/users/manager/update";
    pub const USERS_ENABLE: &str = "microsoft.directory/users/enable";
    pub const USERS_DISABLE: &str = "microsoft.directory/users/disable";
    pub const USERS_INVALIDATE_TOKENS: &str =
        "microsoft.directory/users/invalidateAllRefreshTokens";
    pub const USERS_CSA_READ: &str = "microsoft.directory/users/customSecurityAttributes/read";
    pub const USERS_CSA_UPDATE: &str = "microsoft.directory/users/customSecurityAttributes/update";
    pub const USERS_MEMBER_OF_READ: &str = "microsoft.directory/users/memberOf/read";
    /// Issue a credential for another user (a temporary token, later a Temporary Access Pass).
    pub const USERS_AUTH_METHODS_CREATE: &str =
        "microsoft.directory/users/authenticationMethods/create";
    pub const USERS_AUTH_METHODS_READ: &str =
        "microsoft.directory/users/authenticationMethods/standard/read";
    pub const USERS_AUTH_METHODS_DELETE: &str =
        "microsoft.directory/users/authenticationMethods/delete";
    pub const USERS_PASSWORD_UPDATE: &str = "microsoft.directory/users/password/update";
    pub const SIGN_IN_REPORTS_READ: &str = "microsoft.directory/signInReports/allProperties/read";
    pub const POLICIES_MANAGE: &str = "microsoft.directory/policies/allProperties/allTasks";
    pub const POLICIES_READ: &str = "microsoft.directory/policies/standard/read";
    pub const CA_POLICIES_MANAGE: &str =
        "microsoft.directory/conditionalAccessPolicies/allProperties/allTasks";
    pub const CA_POLICIES_READ: &str =
        "microsoft.directory/conditionalAccessPolicies/standard/read";
    pub const NAMED_LOCATIONS_MANAGE: &str =
        "microsoft.directory/namedLocations/allProperties/allTasks";
    pub const NAMED_LOCATIONS_READ: &str = "microsoft.directory/namedLocations/standard/read";
    pub const RISK_MANAGE: &str = "microsoft.directory/identityProtection/allProperties/allTasks";
    pub const RISK_READ: &str = "microsoft.directory/identityProtection/standard/read";

    pub const GROUPS_CREATE: &str = "microsoft.directory/groups/create";
    pub const GROUPS_DELETE: &str = "microsoft.directory/groups/delete";
    pub const GROUPS_READ: &str = "microsoft.directory/groups/standard/read";
    pub const GROUPS_BASIC_UPDATE: &str = "microsoft.directory/groups/basic/update";
    pub const GROUPS_RULE_UPDATE: &str = "microsoft.directory/groups/dynamicMembershipRule/update";
    pub const GROUPS_MEMBERS_UPDATE: &str = "microsoft.directory/groups/members/update";
    pub const GROUPS_MEMBERS_READ: &str = "microsoft.directory/groups/members/read";
    pub const GROUPS_OWNERS_UPDATE: &str = "microsoft.directory/groups/owners/update";
    pub const GROUPS_OWNERS_READ: &str = "microsoft.directory/groups/owners/read";
    pub const ROLE_GROUPS_CREATE: &str = "microsoft.directory/groupsAssignableToRoles/create";
    pub const ROLE_GROUPS_DELETE: &str = "microsoft.directory/groupsAssignableToRoles/delete";
    pub const ROLE_GROUPS_UPDATE: &str =
        "microsoft.directory/groupsAssignableToRoles/allProperties/update";

    pub const DEVICES_CREATE: &str = "microsoft.directory/devices/create";
    pub const DEVICES_DELETE: &str = "microsoft.directory/devices/delete";
    pub const DEVICES_READ: &str = "microsoft.directory/devices/standard/read";
    pub const DEVICES_BASIC_UPDATE: &str = "microsoft.directory/devices/basic/update";
    pub const DEVICES_ENABLE: &str = "microsoft.directory/devices/enable";
    pub const DEVICES_DISABLE: &str = "microsoft.directory/devices/disable";
    pub const DEVICES_COMPLIANCE_UPDATE: &str = "microsoft.directory/devices/compliance/update";

    pub const APPS_CREATE: &str = "microsoft.directory/applications/create";
    pub const APPS_DELETE: &str = "microsoft.directory/applications/delete";
    pub const APPS_READ: &str = "microsoft.directory/applications/standard/read";
    pub const APPS_BASIC_UPDATE: &str = "microsoft.directory/applications/basic/update";
    pub const APPS_AUTHENTICATION_UPDATE: &str =
        "microsoft.directory/applications/authentication/update";
    pub const APPS_APP_ROLES_UPDATE: &str = "microsoft.directory/applications/appRoles/update";
    pub const APPS_CREDENTIALS_UPDATE: &str = "microsoft.directory/applications/credentials/update";
    pub const APPS_OWNERS_UPDATE: &str = "microsoft.directory/applications/owners/update";

    pub const SPS_CREATE: &str = "microsoft.directory/servicePrincipals/create";
    pub const SPS_DELETE: &str = "microsoft.directory/servicePrincipals/delete";
    pub const SPS_READ: &str = "microsoft.directory/servicePrincipals/standard/read";
    pub const SPS_BASIC_UPDATE: &str = "microsoft.directory/servicePrincipals/basic/update";
    pub const SPS_CREDENTIALS_UPDATE: &str =
        "microsoft.directory/servicePrincipals/credentials/update";
    pub const SPS_OWNERS_UPDATE: &str = "microsoft.directory/servicePrincipals/owners/update";
    /// Reading an application's outbound provisioning (settings, state, log).
    pub const SPS_SYNCHRONIZATION_READ: &str =
        "microsoft.directory/servicePrincipals/synchronization/standard/read";
    /// Setting an application's outbound provisioning up (its token included),
    /// running it, provisioning on demand.
    pub const SPS_SYNCHRONIZATION_MANAGE: &str =
        "microsoft.directory/servicePrincipals/synchronizationJobs/manage";
    pub const PERMISSION_GRANTS_MANAGE: &str =
        "microsoft.directory/oAuth2PermissionGrants/allProperties/allTasks";
    pub const SPS_APP_ROLE_ASSIGNED_TO_UPDATE: &str =
        "microsoft.directory/servicePrincipals/appRoleAssignedTo/update";
    pub const SPS_CSA_UPDATE: &str =
        "microsoft.directory/servicePrincipals/customSecurityAttributes/update";
    pub const SPS_CSA_READ: &str =
        "microsoft.directory/servicePrincipals/customSecurityAttributes/read";

    pub const AUS_CREATE: &str = "microsoft.directory/administrativeUnits/create";
    pub const AUS_DELETE: &str = "microsoft.directory/administrativeUnits/delete";
    pub const AUS_READ: &str = "microsoft.directory/administrativeUnits/standard/read";
    pub const AUS_BASIC_UPDATE: &str = "microsoft.directory/administrativeUnits/basic/update";
    pub const AUS_MEMBERS_UPDATE: &str = "microsoft.directory/administrativeUnits/members/update";
    pub const AUS_MEMBERS_READ: &str = "microsoft.directory/administrativeUnits/members/read";

    pub const ROLE_ASSIGNMENTS_MANAGE: &str =
        "microsoft.directory/roleAssignments/allProperties/allTasks";
    pub const ROLE_ASSIGNMENTS_READ: &str = "microsoft.directory/roleAssignments/standard/read";
    pub const ROLE_DEFINITIONS_READ: &str = "microsoft.directory/roleDefinitions/standard/read";

    pub const ATTRIBUTE_DEFINITIONS_MANAGE: &str =
        "microsoft.directory/customSecurityAttributeDefinitions/allProperties/allTasks";
    pub const ATTRIBUTE_DEFINITIONS_READ: &str =
        "microsoft.directory/customSecurityAttributeDefinitions/allProperties/read";

    pub const AUDIT_LOGS_READ: &str = "microsoft.directory/auditLogs/allProperties/read";
}

/// Entities and property sets that `allEntities` / `allProperties` never cover.
const OUTSIDE_WILDCARDS: &[&str] = &[
    "customSecurityAttributeDefinitions",
    "attributeSets",
    "customSecurityAttributes",
];

/// Whether a role's permission `pattern` grants `action`.
pub fn pattern_grants(pattern: &str, action: &str) -> bool {
    let pattern_parts: Vec<&str> = pattern.split('/').collect();
    let action_parts: Vec<&str> = action.split('/').collect();
    let (Some((pattern_ns, pattern_rest)), Some((action_ns, action_rest))) =
        (pattern_parts.split_first(), action_parts.split_first())
    else {
        return false;
    };
    if pattern_ns != action_ns {
        return false;
    }
    let (Some((pattern_entity, pattern_tail)), Some((action_entity, action_tail))) =
        (pattern_rest.split_first(), action_rest.split_first())
    else {
        return false;
    };
    let wildcard_reaches = |part: &str| !OUTSIDE_WILDCARDS.contains(&part);
    let entity_matches = pattern_entity == action_entity
        || (*pattern_entity == "allEntities" && wildcard_reaches(action_entity));
    if !entity_matches {
        return false;
    }
    // A property set such as `customSecurityAttributes` is out of reach of wildcards.
    let properties_reachable = action_tail
        .first()
        .is_none_or(|property| wildcard_reaches(property));
    match pattern_tail {
        ["allTasks"] | ["allProperties", "allTasks"] => properties_reachable,
        ["allProperties", verb] => properties_reachable && action_tail.last() == Some(verb),
        exact => exact == action_tail,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleDefinition {
    /// The role template id, the same as in Entra ID.
    pub id: Uuid,
    pub display_name: &'static str,
    pub description: &'static str,
    pub allowed_resource_actions: &'static [&'static str],
    /// Roles that can be used to gain or grant privilege (Entra's PRIVILEGED label).
    pub is_privileged: bool,
    /// Whether the role may be assigned at an administrative unit scope.
    pub is_au_scopable: bool,
    /// Whether a holder may manage users who themselves hold a directory role.
    pub manages_privileged_users: bool,
}

pub const GLOBAL_ADMINISTRATOR: Uuid = uuid!("62e90394-69f5-4237-9190-012177145e10");
pub const GLOBAL_READER: Uuid = uuid!("f2ef992c-3afb-46b9-b7cf-a126ee74c451");
pub const PRIVILEGED_ROLE_ADMINISTRATOR: Uuid = uuid!("e8611ab8-c189-46e8-94e1-60213ab1f814");
pub const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: Uuid =
    uuid!("7be44c8a-adaf-4e2a-84d6-ab2649e08a13");
pub const SECURITY_ADMINISTRATOR: Uuid = uuid!("194ae4cb-b126-40b2-bd5b-6091b380977d");
pub const SECURITY_READER: Uuid = uuid!("5d6b6bb7-de71-4623-b4af-96380a352509");
pub const SECURITY_OPERATOR: Uuid = uuid!("5f2222b1-57c3-48ba-8ad5-d4759f1fde6f");
pub const CONDITIONAL_ACCESS_ADMINISTRATOR: Uuid = uuid!("b1be1c3e-b65d-4f19-8427-f6fa0d97feb9");
pub const USER_ADMINISTRATOR: Uuid = uuid!("fe930be7-5e62-47db-91af-98c3a49a38b1");
pub const GROUPS_ADMINISTRATOR: Uuid = uuid!("fdd7a751-b60b-444a-984c-02652fe8fa1c");
pub const AUTHENTICATION_ADMINISTRATOR: Uuid = uuid!("c4e39bd9-1100-46d3-8c65-fb160da0071f");
pub const APPLICATION_ADMINISTRATOR: Uuid = uuid!("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3");
pub const CLOUD_APPLICATION_ADMINISTRATOR: Uuid = uuid!("158c047a-c907-4556-b7ef-446551a6b5f7");
pub const HELPDESK_ADMINISTRATOR: Uuid = uuid!("729827e3-9c14-49f7-bb1b-9608f156bbb8");
pub const PASSWORD_ADMINISTRATOR: Uuid = uuid!("966707d0-3269-4727-9be2-8c3a10f19b9d");
pub const DIRECTORY_READERS: Uuid = uuid!("88d8e3e3-8f55-4a1e-953a-9b9898b8876b");
pub const DIRECTORY_WRITERS: Uuid = uuid!("9360feb5-f418-4baa-8175-e2a00bac4301");
pub const CLOUD_DEVICE_ADMINISTRATOR: Uuid = uuid!("7698a772-787b-4ac8-901f-60d6b08affd2");
pub const INTUNE_ADMINISTRATOR: Uuid = uuid!("3a2c62db-5318-420d-8d74-23affee5d9d5");
pub const ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR: Uuid = uuid!("58a13ea3-c632-46ae-9ee0-9c0d43cd7f3d");
pub const ATTRIBUTE_ASSIGNMENT_READER: Uuid = uuid!("ffd52fa5-98dc-465c-991d-fc073eb59f8f");
pub const ATTRIBUTE_DEFINITION_ADMINISTRATOR: Uuid = uuid!("8424c6f0-a189-499e-bbd0-26c1753c96d4");
pub const ATTRIBUTE_DEFINITION_READER: Uuid = uuid!("1d336d2c-4ae8-42ef-9711-b3604ce3fc2c");
pub const REPORTS_READER: Uuid = uuid!("4a5d8f65-41da-4de4-8968-e035b65339cf");
pub const IDENTITY_GOVERNANCE_ADMINISTRATOR: Uuid = uuid!("45d8d3c5-c802-45c6-b32a-1d70b5e1e86e");

use action::*;

const DIRECTORY_READ: &[&str] = &[
    USERS_READ,
    USERS_MEMBER_OF_READ,
    GROUPS_READ,
    GROUPS_MEMBERS_READ,
    GROUPS_OWNERS_READ,
    DEVICES_READ,
    APPS_READ,
    SPS_READ,
    AUS_READ,
    AUS_MEMBERS_READ,
    ROLE_ASSIGNMENTS_READ,
    ROLE_DEFINITIONS_READ,
];

const USER_ADMINISTRATOR_ACTIONS: &[&str] = &[
    USERS_CREATE,
    USERS_DELETE,
    USERS_READ,
    USERS_MEMBER_OF_READ,
    USERS_BASIC_UPDATE,
    USERS_UPN_UPDATE,
    USERS_MANAGER_UPDATE,
    USERS_ENABLE,
    USERS_DISABLE,
    USERS_INVALIDATE_TOKENS,
    GROUPS_CREATE,
    GROUPS_DELETE,
    GROUPS_READ,
    GROUPS_BASIC_UPDATE,
    GROUPS_RULE_UPDATE,
    GROUPS_MEMBERS_UPDATE,
    GROUPS_MEMBERS_READ,
    GROUPS_OWNERS_UPDATE,
    GROUPS_OWNERS_READ,
    DEVICES_READ,
    AUS_READ,
    AUS_MEMBERS_READ,
    ROLE_DEFINITIONS_READ,
];

const GROUPS_ADMINISTRATOR_ACTIONS: &[&str] = &[
    GROUPS_CREATE,
    GROUPS_DELETE,
    GROUPS_READ,
    GROUPS_BASIC_UPDATE,
    GROUPS_RULE_UPDATE,
    GROUPS_MEMBERS_UPDATE,
    GROUPS_MEMBERS_READ,
    GROUPS_OWNERS_UPDATE,
    GROUPS_OWNERS_READ,
    USERS_READ,
    DEVICES_READ,
    AUS_READ,
    AUS_MEMBERS_READ,
    ROLE_DEFINITIONS_READ,
];

const AUTHENTICATION_ADMINISTRATOR_ACTIONS: &[&str] = &[
    USERS_AUTH_METHODS_CREATE,
    USERS_AUTH_METHODS_READ,
    USERS_AUTH_METHODS_DELETE,
    USERS_PASSWORD_UPDATE,
    USERS_READ,
    USERS_BASIC_UPDATE,
    USERS_DELETE,
    USERS_ENABLE,
    USERS_DISABLE,
    USERS_INVALIDATE_TOKENS,
    USERS_MANAGER_UPDATE,
    USERS_UPN_UPDATE,
    AUS_READ,
    AUS_MEMBERS_READ,
    ROLE_DEFINITIONS_READ,
];

const APPLICATION_ADMINISTRATOR_ACTIONS: &[&str] = &[
    APPS_CREATE,
    APPS_DELETE,
    APPS_READ,
    APPS_BASIC_UPDATE,
    APPS_AUTHENTICATION_UPDATE,
    APPS_APP_ROLES_UPDATE,
    APPS_CREDENTIALS_UPDATE,
    APPS_OWNERS_UPDATE,
    SPS_CREATE,
    SPS_DELETE,
    SPS_READ,
    SPS_BASIC_UPDATE,
    SPS_CREDENTIALS_UPDATE,
    SPS_OWNERS_UPDATE,
    SPS_APP_ROLE_ASSIGNED_TO_UPDATE,
    SPS_SYNCHRONIZATION_READ,
    SPS_SYNCHRONIZATION_MANAGE,
    PERMISSION_GRANTS_MANAGE,
    USERS_READ,
    GROUPS_READ,
    ROLE_DEFINITIONS_READ,
];

const HELPDESK_ACTIONS: &[&str] = &[
    USERS_READ,
    USERS_INVALIDATE_TOKENS,
    AUS_READ,
    AUS_MEMBERS_READ,
];

const DEVICE_ADMINISTRATOR_ACTIONS: &[&str] = &[
    DEVICES_CREATE,
    DEVICES_DELETE,
    DEVICES_READ,
    DEVICES_BASIC_UPDATE,
    DEVICES_ENABLE,
    DEVICES_DISABLE,
    USERS_READ,
    AUS_READ,
    AUS_MEMBERS_READ,
    AUDIT_LOGS_READ,
];

/// The built-in roles. Their ids are Entra's role template ids, so assignments
/// exported from Entra keep their meaning.
pub static BUILT_IN_ROLES: &[RoleDefinition] = &[
    RoleDefinition {
        id: GLOBAL_ADMINISTRATOR,
        display_name: "Global Administrator",
        description: "Can manage all aspects of the directory. Custom security attributes need an attribute role.",
        allowed_resource_actions: &["microsoft.directory/allEntities/allProperties/allTasks"],
        is_privileged: true,
        is_au_scopable: false,
        manages_privileged_users: true,
    },
    RoleDefinition {
        id: GLOBAL_READER,
        display_name: "Global Reader",
        description: "Can read everything that a Global Administrator can, but not update anything.",
        allowed_resource_actions: &["microsoft.directory/allEntities/allProperties/read"],
        is_privileged: true,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: PRIVILEGED_ROLE_ADMINISTRATOR,
        display_name: "Privileged Role Administrator",
        description: "Can manage role assignments, role-assignable groups and administrative units.",
        allowed_resource_actions: &[
            ROLE_ASSIGNMENTS_MANAGE,
            "microsoft.directory/roleDefinitions/allProperties/allTasks",
            "microsoft.directory/administrativeUnits/allProperties/allTasks",
            ROLE_GROUPS_CREATE,
            ROLE_GROUPS_DELETE,
            ROLE_GROUPS_UPDATE,
            USERS_READ,
            USERS_MEMBER_OF_READ,
            GROUPS_READ,
            GROUPS_MEMBERS_READ,
            GROUPS_OWNERS_READ,
            SPS_READ,
            AUDIT_LOGS_READ,
        ],
        is_privileged: true,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
        display_name: "Privileged Authentication Administrator",
        description: "Can manage authentication and sensitive attributes of any user, administrators included.",
        allowed_resource_actions: AUTHENTICATION_ADMINISTRATOR_ACTIONS,
        is_privileged: true,
        is_au_scopable: true,
        manages_privileged_users: true,
    },
    RoleDefinition {
        id: SECURITY_ADMINISTRATOR,
        display_name: "Security Administrator",
        description: "Can manage security policies and read security information and reports.",
        allowed_resource_actions: &[
            "microsoft.directory/conditionalAccessPolicies/allProperties/allTasks",
            "microsoft.directory/namedLocations/allProperties/allTasks",
            "microsoft.directory/identityProtection/allProperties/allTasks",
            "microsoft.directory/policies/allProperties/allTasks",
            AUDIT_LOGS_READ,
            "microsoft.directory/signInReports/allProperties/read",
            USERS_READ,
            GROUPS_READ,
            DEVICES_READ,
            APPS_READ,
            SPS_READ,
        ],
        is_privileged: true,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: SECURITY_READER,
        display_name: "Security Reader",
        description: "Can read security information and reports.",
        allowed_resource_actions: &[
            AUDIT_LOGS_READ,
            "microsoft.directory/signInReports/allProperties/read",
            "microsoft.directory/conditionalAccessPolicies/standard/read",
            "microsoft.directory/namedLocations/standard/read",
            "microsoft.directory/identityProtection/standard/read",
            "microsoft.directory/policies/standard/read",
            USERS_READ,
            GROUPS_READ,
            DEVICES_READ,
        ],
        is_privileged: true,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: SECURITY_OPERATOR,
        display_name: "Security Operator",
        description: "Can respond to security events: disable users and revoke their sessions.",
        allowed_resource_actions: &[
            AUDIT_LOGS_READ,
            "microsoft.directory/signInReports/allProperties/read",
            USERS_READ,
            USERS_ENABLE,
            USERS_DISABLE,
            USERS_INVALIDATE_TOKENS,
            "microsoft.directory/identityProtection/allProperties/allTasks",
        ],
        is_privileged: true,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: CONDITIONAL_ACCESS_ADMINISTRATOR,
        display_name: "Conditional Access Administrator",
        description: "Can manage Conditional Access policies and named locations.",
        allowed_resource_actions: &[
            "microsoft.directory/conditionalAccessPolicies/allProperties/allTasks",
            "microsoft.directory/namedLocations/allProperties/allTasks",
            USERS_READ,
            GROUPS_READ,
            APPS_READ,
            SPS_READ,
        ],
        is_privileged: true,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: USER_ADMINISTRATOR,
        display_name: "User Administrator",
        description: "Can manage users and groups, except users who hold administrator roles.",
        allowed_resource_actions: USER_ADMINISTRATOR_ACTIONS,
        is_privileged: true,
        is_au_scopable: true,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: GROUPS_ADMINISTRATOR,
        display_name: "Groups Administrator",
        description: "Can manage groups, except role-assignable groups.",
        allowed_resource_actions: GROUPS_ADMINISTRATOR_ACTIONS,
        is_privileged: false,
        is_au_scopable: true,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: AUTHENTICATION_ADMINISTRATOR,
        display_name: "Authentication Administrator",
        description: "Can manage authentication of users who hold no administrator role.",
        allowed_resource_actions: AUTHENTICATION_ADMINISTRATOR_ACTIONS,
        is_privileged: true,
        is_au_scopable: true,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: APPLICATION_ADMINISTRATOR,
        display_name: "Application Administrator",
        description: "Can manage applications, service principals and their credentials.",
        allowed_resource_actions: APPLICATION_ADMINISTRATOR_ACTIONS,
        is_privileged: true,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: CLOUD_APPLICATION_ADMINISTRATOR,
        display_name: "Cloud Application Administrator",
        description: "Can manage applications and service principals (no application proxy).",
        allowed_resource_actions: APPLICATION_ADMINISTRATOR_ACTIONS,
        is_privileged: true,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: HELPDESK_ADMINISTRATOR,
        display_name: "Helpdesk Administrator",
        description: "Can revoke sessions of users who hold no administrator role.",
        allowed_resource_actions: HELPDESK_ACTIONS,
        is_privileged: true,
        is_au_scopable: true,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: PASSWORD_ADMINISTRATOR,
        display_name: "Password Administrator",
        description: "Can reset passwords of users who hold no administrator role.",
        allowed_resource_actions: &[USERS_READ, AUS_READ, AUS_MEMBERS_READ],
        is_privileged: true,
        is_au_scopable: true,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: DIRECTORY_READERS,
        display_name: "Directory Readers",
        description: "Can read basic directory information.",
        allowed_resource_actions: DIRECTORY_READ,
        is_privileged: false,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: DIRECTORY_WRITERS,
        display_name: "Directory Writers",
        description: "Can read and write basic directory information (for applications).",
        allowed_resource_actions: &[
            USERS_CREATE,
            USERS_READ,
            USERS_BASIC_UPDATE,
            USERS_ENABLE,
            USERS_DISABLE,
            USERS_UPN_UPDATE,
            USERS_MANAGER_UPDATE,
            USERS_INVALIDATE_TOKENS,
            GROUPS_CREATE,
            GROUPS_READ,
            GROUPS_BASIC_UPDATE,
            GROUPS_RULE_UPDATE,
            GROUPS_MEMBERS_UPDATE,
            GROUPS_MEMBERS_READ,
            GROUPS_OWNERS_UPDATE,
        ],
        is_privileged: true,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: CLOUD_DEVICE_ADMINISTRATOR,
        display_name: "Cloud Device Administrator",
        description: "Can manage devices: register, enable, disable and delete them.",
        allowed_resource_actions: DEVICE_ADMINISTRATOR_ACTIONS,
        is_privileged: true,
        is_au_scopable: true,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: INTUNE_ADMINISTRATOR,
        display_name: "Intune Administrator",
        description: "Can manage devices and report their compliance (the MDM role).",
        allowed_resource_actions: &[
            DEVICES_CREATE,
            DEVICES_DELETE,
            DEVICES_READ,
            DEVICES_BASIC_UPDATE,
            DEVICES_ENABLE,
            DEVICES_DISABLE,
            DEVICES_COMPLIANCE_UPDATE,
            USERS_READ,
            GROUPS_READ,
            GROUPS_CREATE,
            GROUPS_MEMBERS_UPDATE,
            GROUPS_BASIC_UPDATE,
        ],
        is_privileged: true,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR,
        display_name: "Attribute Assignment Administrator",
        description: "Can assign custom security attribute values to users and service principals.",
        allowed_resource_actions: &[
            ATTRIBUTE_DEFINITIONS_READ,
            "microsoft.directory/attributeSets/allProperties/read",
            USERS_CSA_READ,
            USERS_CSA_UPDATE,
            SPS_CSA_READ,
            SPS_CSA_UPDATE,
            USERS_READ,
            SPS_READ,
        ],
        is_privileged: false,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: ATTRIBUTE_ASSIGNMENT_READER,
        display_name: "Attribute Assignment Reader",
        description: "Can read custom security attribute values of users and service principals.",
        allowed_resource_actions: &[
            ATTRIBUTE_DEFINITIONS_READ,
            "microsoft.directory/attributeSets/allProperties/read",
            USERS_CSA_READ,
            SPS_CSA_READ,
            USERS_READ,
            SPS_READ,
        ],
        is_privileged: false,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: ATTRIBUTE_DEFINITION_ADMINISTRATOR,
        display_name: "Attribute Definition Administrator",
        description: "Can define custom security attributes.",
        allowed_resource_actions: &[
            ATTRIBUTE_DEFINITIONS_MANAGE,
            "microsoft.directory/attributeSets/allProperties/allTasks",
        ],
        is_privileged: false,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: ATTRIBUTE_DEFINITION_READER,
        display_name: "Attribute Definition Reader",
        description: "Can read custom security attribute definitions.",
        allowed_resource_actions: &[
            ATTRIBUTE_DEFINITIONS_READ,
            "microsoft.directory/attributeSets/allProperties/read",
        ],
        is_privileged: false,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: REPORTS_READER,
        display_name: "Reports Reader",
        description: "Can read audit and sign-in reports.",
        allowed_resource_actions: &[
            AUDIT_LOGS_READ,
            "microsoft.directory/signInReports/allProperties/read",
        ],
        is_privileged: false,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
    RoleDefinition {
        id: IDENTITY_GOVERNANCE_ADMINISTRATOR,
        display_name: "Identity Governance Administrator",
        description: "Can manage access reviews and entitlement management.",
        allowed_resource_actions: &[
            "microsoft.directory/accessReviews/allProperties/allTasks",
            "microsoft.directory/entitlementManagement/allProperties/allTasks",
            GROUPS_MEMBERS_UPDATE,
            GROUPS_READ,
            GROUPS_MEMBERS_READ,
            USERS_READ,
        ],
        is_privileged: false,
        is_au_scopable: false,
        manages_privileged_users: false,
    },
];

pub fn built_in(id: Uuid) -> Option<&'static RoleDefinition> {
    BUILT_IN_ROLES.iter().find(|role| role.id == id)
}

/// Finds a built-in role by template id or display name (case-insensitive).
pub fn find(id_or_name: &str) -> Option<&'static RoleDefinition> {
    if let Ok(id) = Uuid::parse_str(id_or_name) {
        return built_in(id);
    }
    BUILT_IN_ROLES
        .iter()
        .find(|role| role.display_name.eq_ignore_ascii_case(id_or_name.trim()))
}

impl RoleDefinition {
    pub fn grants(&self, action: &str) -> bool {
        self.allowed_resource_actions
            .iter()
            .any(|pattern| pattern_grants(pattern, action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, action: &str, expected: bool) {
        assert_eq!(
            pattern_grants(pattern, action),
            expected,
            "{pattern} grants {action}"
        );
    }

    #[test]
    fn pattern_matching() {
        check(
            "microsoft.directory/users/create",
            "microsoft.directory/users/create",
            true,
        );
        check(
            "microsoft.directory/users/create",
            "microsoft.directory/users/delete",
            false,
        );
        check(
            "microsoft.directory/users/allProperties/allTasks",
            "microsoft.directory/users/create",
            true,
        );
        check(
            "microsoft.directory/users/allProperties/allTasks",
            "microsoft.directory/users/basic/update",
            true,
        );
        check(
            "microsoft.directory/users/allProperties/allTasks",
            "microsoft.directory/groups/create",
            false,
        );
        check(
            "microsoft.directory/allEntities/allProperties/allTasks",
            "microsoft.directory/groups/members/update",
            true,
        );
        check(
            "microsoft.directory/allEntities/allProperties/read",
            "microsoft.directory/groups/members/read",
            true,
        );
        check(
            "microsoft.directory/allEntities/allProperties/read",
            "microsoft.directory/groups/members/update",
            false,
        );
        check(
            "microsoft.directory/allEntities/allProperties/allTasks",
            "microsoft.other/users/create",
            false,
        );
        check(
            "microsoft.directory/groupsAssignableToRoles/allProperties/update",
            "microsoft.directory/groupsAssignableToRoles/members/update",
            true,
        );
    }

    #[test]
    fn wildcards_never_reach_custom_security_attributes() {
        let ga = built_in(GLOBAL_ADMINISTRATOR).unwrap();
        assert!(!ga.grants(action::USERS_CSA_UPDATE));
        assert!(!ga.grants(action::ATTRIBUTE_DEFINITIONS_MANAGE));
        assert!(ga.grants(action::USERS_CREATE));
        let reader = built_in(GLOBAL_READER).unwrap();
        assert!(!reader.grants(action::USERS_CSA_READ));
        let definer = built_in(ATTRIBUTE_DEFINITION_ADMINISTRATOR).unwrap();
        assert!(definer.grants(action::ATTRIBUTE_DEFINITIONS_MANAGE));
        assert!(definer.grants(action::ATTRIBUTE_DEFINITIONS_READ));
        let assigner = built_in(ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR).unwrap();
        assert!(assigner.grants(action::USERS_CSA_UPDATE));
    }

    #[test]
    fn catalog_is_consistent() {
        let mut ids: Vec<Uuid> = BUILT_IN_ROLES.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), BUILT_IN_ROLES.len(), "duplicate template id");
        assert_eq!(
            find("global administrator").unwrap().id,
            GLOBAL_ADMINISTRATOR
        );
        assert_eq!(
            find("fe930be7-5e62-47db-91af-98c3a49a38b1")
                .unwrap()
                .display_name,
            "User Administrator"
        );
        assert!(!built_in(GLOBAL_ADMINISTRATOR).unwrap().is_au_scopable);
        assert!(built_in(USER_ADMINISTRATOR).unwrap().is_au_scopable);
    }
}

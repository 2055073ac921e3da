//! Authorization of management operations: deny by default.
//!
//! A caller holds grants (role assignments, direct or through a role-assignable
//! group), each at the tenant scope or an administrative unit. An operation names an
//! action and a target; it is allowed only when some grant's role grants the action
//! and the grant's scope covers the target. Two Entra rules are enforced on top:
//! - a grant scoped to an administrative unit covers only that unit's members (and the
//!   unit itself), never tenant-wide operations such as creating or listing all users;
//! - a user who holds a directory role (a *privileged* user) can be changed only by a
//!   caller whose tenant-wide role may manage privileged users (Global Administrator,
//!   Privileged Authentication Administrator), so a User Administrator cannot take
//!   over a Global Administrator's account.

use uuid::Uuid;

use crate::model::DirectoryScope;
use crate::roles;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub assignment_id: Uuid,
    pub role_id: Uuid,
    pub scope: DirectoryScope,
}

/// What an operation acts on, with the facts authorization needs about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Tenant-wide: creating objects, listing everything, tenant settings.
    Tenant,
    /// One directory object.
    Object {
        /// The administrative units the object belongs to (for an administrative unit
        /// itself: its own id).
        administrative_units: Vec<Uuid>,
        /// Whether the object is a user who holds a directory role.
        privileged: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { assignment_id: Uuid },
    Deny { reason: String },
}

/// Decides whether a caller with `grants` may perform `action` on `target`.
pub fn authorize(grants: &[Grant], action: &str, target: &Target) -> Decision {
    let mut held_elsewhere = false;
    let mut held_without_privilege = false;
    for grant in grants {
        let Some(role) = roles::built_in(grant.role_id) else {
            continue;
        };
        if !role.grants(action) {
            continue;
        }
        let scope_covers = match (&grant.scope, target) {
            (DirectoryScope::Tenant, _) => true,
            (DirectoryScope::AdministrativeUnit(_), Target::Tenant) => false,
            (
                DirectoryScope::AdministrativeUnit(unit),
                Target::Object {
                    administrative_units,
                    ..
                },
            ) => administrative_units.contains(unit),
        };
        if !scope_covers {
            held_elsewhere = true;
            continue;
        }
        let privileged_target = matches!(
            target,
            Target::Object {
                privileged: true,
                ..
            }
        );
        let is_write = !action.ends_with("/read");
        if privileged_target && is_write {
            let may_manage = role.manages_privileged_users && grant.scope == DirectoryScope::Tenant;
            if !may_manage {
                held_without_privilege = true;
                continue;
            }
        }
        return Decision::Allow {
            assignment_id: grant.assignment_id,
        };
    }
    let reason = if held_without_privilege {
        format!(
            "the target holds a directory role; {action} on it needs Global Administrator or Privileged Authentication Administrator"
        )
    } else if held_elsewhere {
        format!(
            "your role grants {action} only within administrative units that do not contain the target"
        )
    } else {
        format!("none of your role assignments grants {action}")
    };
    Decision::Deny { reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::action;

    fn grant(role_id: Uuid, scope: DirectoryScope) -> Grant {
        Grant {
            assignment_id: Uuid::new_v4(),
            role_id,
            scope,
        }
    }

    fn object(units: &[Uuid], privileged: bool) -> Target {
        Target::Object {
            administrative_units: units.to_vec(),
            privileged,
        }
    }

    fn allowed(grants: &[Grant], action: &str, target: &Target) -> bool {
        matches!(authorize(grants, action, target), Decision::Allow { .. })
    }

    #[test]
    fn no_grants_means_no_access() {
        assert!(!allowed(&[], action::USERS_READ, &Target::Tenant));
        assert!(!allowed(&[], action::USERS_READ, &object(&[], false)));
    }

    #[test]
    fn scoped_user_administrator() {
        let unit = Uuid::new_v4();
        let other = Uuid::new_v4();
        let grants = [grant(
            roles::USER_ADMINISTRATOR,
            DirectoryScope::AdministrativeUnit(unit),
        )];
        assert!(allowed(
            &grants,
            action::USERS_BASIC_UPDATE,
            &object(&[unit], false)
        ));
        assert!(allowed(
            &grants,
            action::USERS_BASIC_UPDATE,
            &object(&[other, unit], false)
        ));
        assert!(!allowed(
            &grants,
            action::USERS_BASIC_UPDATE,
            &object(&[other], false)
        ));
        assert!(!allowed(
            &grants,
            action::USERS_BASIC_UPDATE,
            &object(&[], false)
        ));
        assert!(!allowed(&grants, action::USERS_CREATE, &Target::Tenant));
        assert!(!allowed(&grants, action::USERS_READ, &Target::Tenant));
        let Decision::Deny { reason } =
            authorize(&grants, action::USERS_DELETE, &object(&[other], false))
        else {
            panic!("allowed outside the unit");
        };
        assert!(reason.contains("administrative units"));
    }

    #[test]
    fn privileged_users_need_a_privileged_role() {
        let user_admin = [grant(roles::USER_ADMINISTRATOR, DirectoryScope::Tenant)];
        let global_admin = [grant(roles::GLOBAL_ADMINISTRATOR, DirectoryScope::Tenant)];
        let target = object(&[], true);
        assert!(!allowed(&user_admin, action::USERS_DISABLE, &target));
        assert!(allowed(&user_admin, action::USERS_READ, &target));
        assert!(allowed(&global_admin, action::USERS_DISABLE, &target));
        let scoped_pra = [grant(
            roles::PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            DirectoryScope::AdministrativeUnit(Uuid::nil()),
        )];
        assert!(!allowed(
            &scoped_pra,
            action::USERS_DISABLE,
            &object(&[Uuid::nil()], true)
        ));
    }

    #[test]
    fn global_administrator_everywhere_but_attributes() {
        let grants = [grant(roles::GLOBAL_ADMINISTRATOR, DirectoryScope::Tenant)];
        assert!(allowed(
            &grants,
            action::ROLE_ASSIGNMENTS_MANAGE,
            &Target::Tenant
        ));
        assert!(allowed(&grants, action::AUDIT_LOGS_READ, &Target::Tenant));
        assert!(!allowed(
            &grants,
            action::USERS_CSA_UPDATE,
            &object(&[], false)
        ));
    }

    #[test]
    fn unknown_roles_grant_nothing() {
        let grants = [grant(Uuid::new_v4(), DirectoryScope::Tenant)];
        assert!(!allowed(&grants, action::USERS_READ, &Target::Tenant));
    }
}

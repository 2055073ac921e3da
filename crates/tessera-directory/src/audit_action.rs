//! The audit actions: every change Tessera records is one of these, named in the
//! trail by its string (`user.create`, `conditionalAccessPolicy.update`...), which
//! is stable (stored events and their filters name it).
//!
//! An action also knows whether it can change what Conditional Access decides, so a
//! cache of compiled policies is invalidated by the actions it cares about, not by
//! matching strings.

use std::fmt;

/// Whether an action's events can change the compiled Conditional Access policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyImpact {
    /// Never (the policies do not read what it changes).
    None,
    /// Always (policies, named locations, security defaults, groups, a new tenant).
    Always,
    /// Only when the event says it moved dynamic group memberships (`dynamicGroupChanges`
    /// in its details): a user's attributes matter to policies only through groups.
    WhenDynamicMembershipsMoved,
}

macro_rules! audit_actions {
    ($($variant:ident = $name:literal => $impact:ident,)*) => {
        /// A recorded change's action.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($variant,)*
        }

        impl AuditAction {
            /// Every action, in the order they are declared.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];

            /// The action's name in the audit trail.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)*
                }
            }

            pub const fn policy_impact(self) -> PolicyImpact {
                match self {
                    $(AuditAction::$variant => PolicyImpact::$impact,)*
                }
            }
        }
    };
}

audit_actions! {
    AccessTokenCreate = "accessToken.create" => None,
    AccessTokenIssue = "accessToken.issue" => None,
    AccessTokenRefuse = "accessToken.refuse" => None,
    AccessTokenRevoke = "accessToken.revoke" => None,
    AdministrativeUnitCreate = "administrativeUnit.create" => None,
    AdministrativeUnitDelete = "administrativeUnit.delete" => None,
    AdministrativeUnitMemberAdd = "administrativeUnit.member.add" => None,
    AdministrativeUnitMemberRemove = "administrativeUnit.member.remove" => None,
    AdministrativeUnitUpdate = "administrativeUnit.update" => None,
    AgreementAccept = "agreement.accept" => None,
    AgreementCreate = "agreement.create" => None,
    AgreementDelete = "agreement.delete" => None,
    AgreementUpdate = "agreement.update" => None,
    AppCredentialPolicyUpdate = "appCredentialPolicy.update" => None,
    ApplicationCreate = "application.create" => None,
    ApplicationDelete = "application.delete" => None,
    ApplicationKeyAdd = "application.key.add" => None,
    ApplicationKeyRemove = "application.key.remove" => None,
    ApplicationOwnerAdd = "application.owner.add" => None,
    ApplicationOwnerRemove = "application.owner.remove" => None,
    ApplicationPasswordAdd = "application.password.add" => None,
    ApplicationPasswordRemove = "application.password.remove" => None,
    ApplicationSamlRemove = "application.saml.remove" => None,
    ApplicationSamlUpdate = "application.saml.update" => None,
    ApplicationUpdate = "application.update" => None,
    AttributeDefinitionCreate = "attributeDefinition.create" => None,
    AttributeDefinitionUpdate = "attributeDefinition.update" => None,
    AuthenticationContextsUpdate = "authenticationContexts.update" => None,
    AuthenticationMethodsPolicyUpdate = "authenticationMethodsPolicy.update" => None,
    AuthenticationStrengthCreate = "authenticationStrength.create" => None,
    AuthenticationStrengthDelete = "authenticationStrength.delete" => None,
    CertificateAuthorityAdd = "certificateAuthority.add" => None,
    CertificateAuthorityCrlUpdate = "certificateAuthority.crl.update" => None,
    CertificateAuthorityRemove = "certificateAuthority.remove" => None,
    ConditionalAccessImport = "conditionalAccess.import" => Always,
    ConditionalAccessPolicyCreate = "conditionalAccessPolicy.create" => Always,
    ConditionalAccessPolicyDelete = "conditionalAccessPolicy.delete" => Always,
    ConditionalAccessPolicyImport = "conditionalAccessPolicy.import" => Always,
    ConditionalAccessPolicyUpdate = "conditionalAccessPolicy.update" => Always,
    ConsentPolicyUpdate = "consentPolicy.update" => None,
    DeviceCreate = "device.create" => None,
    DeviceDelete = "device.delete" => None,
    DeviceOwnerAdd = "device.owner.add" => None,
    DeviceOwnerRemove = "device.owner.remove" => None,
    DeviceUpdate = "device.update" => None,
    GroupCreate = "group.create" => Always,
    GroupDelete = "group.delete" => Always,
    GroupMemberAdd = "group.member.add" => Always,
    GroupMemberRemove = "group.member.remove" => Always,
    GroupOwnerAdd = "group.owner.add" => Always,
    GroupOwnerRemove = "group.owner.remove" => Always,
    GroupUpdate = "group.update" => Always,
    LifecycleRunCreate = "lifecycleRun.create" => None,
    LifecycleRunUpdate = "lifecycleRun.update" => None,
    LifecycleWorkflowCreate = "lifecycleWorkflow.create" => None,
    LifecycleWorkflowDelete = "lifecycleWorkflow.delete" => None,
    LifecycleWorkflowUpdate = "lifecycleWorkflow.update" => None,
    NamedLocationCreate = "namedLocation.create" => Always,
    NamedLocationDelete = "namedLocation.delete" => Always,
    NamedLocationImport = "namedLocation.import" => Always,
    NamedLocationUpdate = "namedLocation.update" => Always,
    NotificationDeliver = "notification.deliver" => None,
    NotificationSettingsUpdate = "notificationSettings.update" => None,
    OAuth2PermissionGrantDelete = "oauth2PermissionGrant.delete" => None,
    OAuth2PermissionGrantUpdate = "oauth2PermissionGrant.update" => None,
    ProtectedActionsUpdate = "protectedActions.update" => None,
    ProvisioningCycle = "provisioning.cycle" => None,
    ProvisioningExport = "provisioning.export" => None,
    ProvisioningRunCreate = "provisioningRun.create" => None,
    ProvisioningRunUpdate = "provisioningRun.update" => None,
    ProvisioningSettingsUpdate = "provisioningSettings.update" => None,
    ProvisioningTokenCreate = "provisioningToken.create" => None,
    ProvisioningTokenDelete = "provisioningToken.delete" => None,
    RiskStateRemediate = "riskState.remediate" => None,
    RiskStateUpdate = "riskState.update" => None,
    RoleAssignmentCreate = "roleAssignment.create" => None,
    RoleAssignmentDelete = "roleAssignment.delete" => None,
    RoleManagementPolicyUpdate = "roleManagementPolicy.update" => None,
    RoleScheduleConvert = "roleSchedule.convert" => None,
    RoleScheduleExpire = "roleSchedule.expire" => None,
    RoleScheduleRemove = "roleSchedule.remove" => None,
    RoleScheduleRequestApprove = "roleScheduleRequest.approve" => None,
    RoleScheduleRequestCancel = "roleScheduleRequest.cancel" => None,
    RoleScheduleRequestCreate = "roleScheduleRequest.create" => None,
    RoleScheduleRequestDeny = "roleScheduleRequest.deny" => None,
    RoleScheduleRequestTimeOut = "roleScheduleRequest.timeOut" => None,
    SamlKeyActivate = "samlKey.activate" => None,
    SamlKeyAdd = "samlKey.add" => None,
    SamlKeyRemove = "samlKey.remove" => None,
    ScimObjectUpdate = "scimObject.update" => None,
    SecurityDefaultsUpdate = "securityDefaults.update" => Always,
    ServicePrincipalAppRoleAssignmentAdd = "servicePrincipal.appRoleAssignment.add" => None,
    ServicePrincipalAppRoleAssignmentRemove = "servicePrincipal.appRoleAssignment.remove" => None,
    ServicePrincipalCreate = "servicePrincipal.create" => None,
    ServicePrincipalDelete = "servicePrincipal.delete" => None,
    ServicePrincipalKeyAdd = "servicePrincipal.key.add" => None,
    ServicePrincipalKeyRemove = "servicePrincipal.key.remove" => None,
    ServicePrincipalOwnerAdd = "servicePrincipal.owner.add" => None,
    ServicePrincipalOwnerRemove = "servicePrincipal.owner.remove" => None,
    ServicePrincipalPasswordAdd = "servicePrincipal.password.add" => None,
    ServicePrincipalPasswordRemove = "servicePrincipal.password.remove" => None,
    ServicePrincipalProvisioningDelete = "servicePrincipal.provisioning.delete" => None,
    ServicePrincipalProvisioningRun = "servicePrincipal.provisioning.run" => None,
    ServicePrincipalProvisioningUpdate = "servicePrincipal.provisioning.update" => None,
    ServicePrincipalUpdate = "servicePrincipal.update" => None,
    SiemSinkCreate = "siemSink.create" => None,
    SiemSinkDelete = "siemSink.delete" => None,
    SiemSinkUpdate = "siemSink.update" => None,
    SignInLogRetentionUpdate = "signInLogRetention.update" => None,
    SignalReceive = "signal.receive" => None,
    SignalReceiverCreate = "signalReceiver.create" => None,
    SignalReceiverDelete = "signalReceiver.delete" => None,
    SignalReceiverUpdate = "signalReceiver.update" => None,
    SignalStreamCreate = "signalStream.create" => None,
    SignalStreamDelete = "signalStream.delete" => None,
    SignalStreamUpdate = "signalStream.update" => None,
    SignalsSettingsUpdate = "signalsSettings.update" => None,
    SigningKeyDelete = "signingKey.delete" => None,
    SigningKeyGenerate = "signingKey.generate" => None,
    SigningKeyState = "signingKey.state" => None,
    TenantCreate = "tenant.create" => Always,
    UserAuthMethodAdd = "user.authMethod.add" => WhenDynamicMembershipsMoved,
    UserAuthMethodRemove = "user.authMethod.remove" => WhenDynamicMembershipsMoved,
    UserCreate = "user.create" => WhenDynamicMembershipsMoved,
    UserDelete = "user.delete" => WhenDynamicMembershipsMoved,
    UserPasswordChange = "user.password.change" => WhenDynamicMembershipsMoved,
    UserPasswordSet = "user.password.set" => WhenDynamicMembershipsMoved,
    UserSessionsRevoke = "user.sessions.revoke" => WhenDynamicMembershipsMoved,
    UserSignInReport = "user.signIn.report" => None,
    UserTemporaryAccessPassIssue = "user.temporaryAccessPass.issue" => WhenDynamicMembershipsMoved,
    UserUpdate = "user.update" => WhenDynamicMembershipsMoved,
}

impl AuditAction {
    /// The action a trail entry names; `None` for a name this build does not know
    /// (an event written by a newer release).
    pub fn parse(name: &str) -> Option<AuditAction> {
        AuditAction::ALL
            .iter()
            .copied()
            .find(|action| action.as_str() == name)
    }

    /// Whether an event with this action (named `name` in the trail, with the body
    /// `body`) can change the compiled Conditional Access policies. A name this build
    /// does not know counts as a change: a rebuild costs little, a stale set does not.
    pub fn event_affects_policies(name: &str, body: &str) -> bool {
        match AuditAction::parse(name).map(AuditAction::policy_impact) {
            Some(PolicyImpact::None) => false,
            Some(PolicyImpact::Always) | None => true,
            Some(PolicyImpact::WhenDynamicMembershipsMoved) => body.contains("dynamicGroupChanges"),
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for action in AuditAction::ALL {
            assert!(seen.insert(action.as_str()), "{action} twice");
            assert_eq!(AuditAction::parse(action.as_str()), Some(*action));
        }
        assert_eq!(AuditAction::parse("user.frobnicate"), None);
    }

    #[test]
    fn policy_relevance() {
        assert!(AuditAction::event_affects_policies(
            "group.member.add",
            "{}"
        ));
        assert!(AuditAction::event_affects_policies(
            "conditionalAccessPolicy.update",
            "{}"
        ));
        assert!(AuditAction::event_affects_policies(
            "securityDefaults.update",
            "{}"
        ));
        assert!(AuditAction::event_affects_policies("tenant.create", "{}"));
        assert!(!AuditAction::event_affects_policies(
            "oauth2PermissionGrant.update",
            "{}"
        ));
        assert!(!AuditAction::event_affects_policies(
            "accessToken.create",
            "{}"
        ));
        assert!(!AuditAction::event_affects_policies(
            "user.update",
            r#"{"changes":[]}"#
        ));
        assert!(AuditAction::event_affects_policies(
            "user.update",
            r#"{"details":{"dynamicGroupChanges":[]}}"#
        ));
        // Unknown names (a newer release's) rebuild rather than risk a stale set.
        assert!(AuditAction::event_affects_policies(
            "futureThing.update",
            "{}"
        ));
    }
}

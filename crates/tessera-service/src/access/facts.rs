//! The facts of a sign-in (the user's roles, guest, risk and accepted terms; the
//! device by its certificate; the address's country; what the sign-in proved) and
//! the decision over them with the tenant's policy set.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use tessera_ca::engine::{self, ClientApp, Decision, PolicySet, Target};
use tessera_ca::explain::Explanation;
use tessera_ca::facts::{FactSubject, SignInFacts, platform_of};
use tessera_ca::model::RiskLevel;
use tessera_ca::validate;
use tessera_core::{AppId, TenantId, Timestamp};
use tessera_directory::model::{DeviceSpec, DirectoryScope, UserSpec, UserType};
use tessera_store::{Kind, Reader};
use uuid::Uuid;

use super::{Acceptance, Access, TermsOfUse};
use crate::codec;
use crate::directory::{auth_methods, builtin};
use crate::error::ServiceResult;

/// A user's sign-in to decide, as a flow describes it.
pub(crate) struct UserAccess<'a> {
    pub user: Uuid,
    pub target: Target,
    pub auth_contexts: Vec<String>,
    pub client_app: ClientApp,
    pub client_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// SHA-256 (hex) of the client certificate, naming a registered device.
    pub device_thumbprint: Option<&'a str>,
    pub strengths: &'a [Uuid],
    pub auth_time: Option<Timestamp>,
    pub password_changed: bool,
    pub device_code_flow: bool,
    /// The real-time risk of the request's sign-in (Identity Protection's, from
    /// where it comes); the higher of it and a risk set by hand is decided with.
    pub sign_in_risk: RiskLevel,
}

/// The applications a request is for: the client, and the resource when it names
/// one of this tenant's applications by id (a policy for either applies);
/// management for the command line and the management API.
pub(crate) fn app_target(client: AppId, resource_app: Option<AppId>, management: bool) -> Target {
    Target::App {
        app_id: client,
        resource: resource_app.filter(|r| *r != client),
        admin_portal: management || builtin::is_management_client(client),
    }
}

/// Authentication contexts (`c1`..) among requested `acr` values.
pub(crate) fn contexts_of(acr_values: &[String]) -> Vec<String> {
    acr_values
        .iter()
        .filter(|a| validate::auth_context_number(a).is_some())
        .cloned()
        .collect()
}

/// A decision with the set that made it (for explanations and remedies).
pub(crate) struct Decided {
    pub decision: Decision,
    pub set: Arc<PolicySet>,
    /// The registered device the sign-in came from, if one was known.
    pub device: Option<Uuid>,
    /// The policies whose locations a token of this sign-in must stay out
    /// of (continuous access evaluation, strict location enforcement).
    pub location_fence: Vec<Uuid>,
}

impl Decided {
    pub fn explain(&self) -> Explanation {
        self.decision.explain(&self.set)
    }

    /// Entra's `conditionalAccessStatus`: `failure` when blocked or unmet,
    /// `success` when an enforced policy applied and is met, else `notApplied`.
    pub fn status(&self) -> &'static str {
        match self.decision.outcome {
            engine::Outcome::Block | engine::Outcome::Interrupt => "failure",
            engine::Outcome::Allow if self.decision.enforced().next().is_some() => "success",
            engine::Outcome::Allow => "notApplied",
        }
    }

    /// The explanation as the sign-in log stores it: what repeats with every entry
    /// is left out. The policy set is named by its version (the audit sequence it
    /// was built after) and only the policies that applied, enforced or report-only,
    /// are listed; the others are counted (`notAppliedPolicies`). No session
    /// controls is no `sessionControls`.
    pub fn log_value(&self) -> Value {
        let mut explanation = self.explain();
        let all = explanation.policies.len();
        explanation.policies.retain(|p| {
            !matches!(
                p.result,
                engine::PolicyResultKind::NotApplied
                    | engine::PolicyResultKind::ReportOnlyNotApplied
            )
        });
        let not_applied = all - explanation.policies.len();
        let mut value = serde_json::to_value(explanation).unwrap_or(Value::Null);
        if let Some(fields) = value.as_object_mut() {
            if fields.get("sessionControls") == Some(&json!({})) {
                fields.remove("sessionControls");
            }
            fields.insert("policySetVersion".to_string(), self.set.version.into());
            fields.insert("notAppliedPolicies".to_string(), not_applied.into());
        }
        value
    }
}

impl Access {
    /// The country of an address, from the operator's database.
    pub(crate) fn country_of(&self, ip: Option<IpAddr>) -> Option<[u8; 2]> {
        let lookup = self.ca.country.get()?;
        lookup.country(ip?)
    }

    /// What the directory knows about a user for a decision.
    pub(crate) async fn user_subject(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        user: Uuid,
    ) -> ServiceResult<(FactSubject, RiskLevel, Vec<Uuid>)> {
        let guest = match reader.get(tenant, Kind::User, user).await? {
            Some(record) => {
                let spec: UserSpec = codec::data(&record)?;
                spec.user_type == UserType::Guest
            }
            None => false,
        };
        // As in Entra, only tenant-wide assignments count for includeRoles and
        // excludeRoles: a role held in an administrative unit does not.
        let mut roles: Vec<Uuid> =
            crate::directory::roles::grants_of(reader, tenant, user, self.now())
                .await?
                .into_iter()
                .filter(|g| g.scope == DirectoryScope::Tenant)
                .map(|g| g.role_id)
                .collect();
        roles.sort_unstable();
        roles.dedup();
        let has_mfa_method = auth_methods::has_second_factor(reader, tenant, user).await?;
        // Memberships PIM gives at this moment (the cached policy set expands
        // standing ones only), with the groups containing them.
        let now = self.now();
        let groups = if crate::directory::role_schedules::groups_at(
            reader,
            tenant,
            user,
            tessera_pim::GroupAccess::Member,
            now,
        )
        .await?
        .is_empty()
        {
            Vec::new()
        } else {
            crate::directory::groups::containing_groups(reader, tenant, user, true, now).await?
        };
        let (risk, sign_in_risk) = self.risk.levels_of(reader, tenant, user).await?;
        let accepted = self.accepted_terms(reader, tenant, user).await?;
        Ok((
            FactSubject::User {
                id: user,
                roles,
                guest,
                risk,
                has_mfa_method,
                groups,
            },
            sign_in_risk,
            accepted,
        ))
    }

    /// Terms of use the user accepted in their current version.
    async fn accepted_terms(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        user: Uuid,
    ) -> ServiceResult<Vec<Uuid>> {
        let acceptances = codec::list_all(
            reader,
            tenant,
            Kind::TermsAcceptance,
            Some(user.to_string()),
        )
        .await?;
        let mut accepted = Vec::new();
        for record in acceptances {
            let acceptance: Acceptance = codec::data(&record)?;
            if let Some(terms) = reader
                .get(tenant, Kind::TermsOfUse, acceptance.terms_id)
                .await?
            {
                let terms: TermsOfUse = codec::data(&terms)?;
                if terms.content_version == acceptance.content_version {
                    accepted.push(terms.id);
                }
            }
        }
        Ok(accepted)
    }

    /// The workload's facts: its risk (Identity Protection's, reused for a
    /// few seconds on this node).
    pub(crate) async fn workload_subject(
        &self,
        tenant: TenantId,
        service_principal: Uuid,
    ) -> ServiceResult<FactSubject> {
        let risk = self.risk.workload_risk(tenant, service_principal).await?;
        Ok(FactSubject::Workload {
            service_principal_id: service_principal,
            risk,
        })
    }

    /// The device a sign-in comes from, by its registered certificate.
    pub(crate) async fn device_by_certificate(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        thumbprint: Option<&str>,
    ) -> ServiceResult<Option<(Uuid, DeviceSpec)>> {
        let Some(thumbprint) = thumbprint else {
            return Ok(None);
        };
        let key = format!("cert:{}", thumbprint.to_ascii_lowercase());
        match reader.get_by_key1(tenant, Kind::Device, &key).await? {
            Some(record) => {
                let mut spec: DeviceSpec = codec::data(&record)?;
                // Within its grace period a device counts as compliant.
                spec.is_compliant = spec.compliant_at(self.now());
                Ok(spec.account_enabled.then_some((record.id, spec)))
            }
            None => Ok(None),
        }
    }

    /// The facts of a user's sign-in, from what the flow knows and the directory.
    pub(crate) async fn user_facts(
        &self,
        reader: &mut dyn Reader,
        tenant: TenantId,
        input: UserAccess<'_>,
    ) -> ServiceResult<SignInFacts> {
        let (subject, sign_in_risk, accepted_terms) =
            self.user_subject(reader, tenant, input.user).await?;
        let device = self
            .device_by_certificate(reader, tenant, input.device_thumbprint)
            .await?;
        let platform = platform_of(device.as_ref().map(|(_, d)| d), input.user_agent);
        let ip = input
            .client_address
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical());
        let now = self.now();
        Ok(SignInFacts {
            subject,
            target: input.target,
            auth_contexts: input.auth_contexts,
            client_app: input.client_app,
            platform,
            ip,
            country: self.country_of(ip),
            device,
            sign_in_risk: sign_in_risk.max(input.sign_in_risk),
            device_code_flow: input.device_code_flow,
            strengths: input.strengths.to_vec(),
            auth_age_seconds: input
                .auth_time
                .map(|t| (now.unix_micros() - t.unix_micros()).max(0) / 1_000_000),
            password_changed: input.password_changed,
            accepted_terms,
        })
    }

    /// The facts of a workload's token request.
    pub(crate) async fn workload_facts(
        &self,
        tenant: TenantId,
        service_principal: Uuid,
        target: Target,
        client_address: Option<&str>,
    ) -> ServiceResult<SignInFacts> {
        let subject = self.workload_subject(tenant, service_principal).await?;
        let ip = client_address
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical());
        Ok(SignInFacts {
            subject,
            target,
            auth_contexts: Vec::new(),
            client_app: ClientApp::MobileAppsAndDesktopClients,
            platform: None,
            ip,
            country: self.country_of(ip),
            device: None,
            sign_in_risk: RiskLevel::None,
            device_code_flow: false,
            strengths: Vec::new(),
            auth_age_seconds: None,
            password_changed: false,
            accepted_terms: Vec::new(),
        })
    }

    /// Decides a sign-in with a policy set already in hand (no I/O).
    pub(crate) fn decide_with(set: Arc<PolicySet>, facts: &SignInFacts) -> Decided {
        let sign_in = facts.sign_in();
        let decision = set.evaluate(&sign_in);
        let location_fence = set.location_fence(&sign_in);
        Decided {
            decision,
            set,
            device: facts.device.as_ref().map(|(id, _)| *id),
            location_fence,
        }
    }

    /// Decides a sign-in.
    pub(crate) async fn decide(
        &self,
        tenant: TenantId,
        facts: &SignInFacts,
    ) -> ServiceResult<Decided> {
        let set = self.policy_set(tenant).await?;
        Ok(Self::decide_with(set, facts))
    }
}

//! Conditional Access records as audited directory changes: policies, named
//! locations, terms of use (and their acceptances), security defaults, risk states.

use serde_json::{Value, json};
use tessera_ca::import;
use tessera_ca::model::{NamedLocationSpec, PolicySpec, TermsOfUseSpec};
use tessera_ca::validate;
use tessera_core::TenantId;
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target as AuthzTarget;
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_store::{Kind, Reader, Record};
use uuid::Uuid;

use super::{
    Acceptance, Access, ConditionalAccessPolicy, NamedLocation, READ_ONLY, SecurityDefaults,
    TermsOfUse, all_locations, all_policies, security_defaults,
};
use crate::Replacement;
use crate::codec::Patch;
use crate::codec::{self, Keys};
use crate::directory::{auth_methods, auth_policy};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

pub(super) fn policy_record(
    policy: &ConditionalAccessPolicy,
    version: Option<&Record>,
) -> ServiceResult<Record> {
    let keys = Keys::named(&policy.spec.display_name);
    match version {
        Some(record) => codec::next_version(record, policy.modified_date_time, keys, policy),
        None => codec::new_record(
            Kind::ConditionalAccessPolicy,
            policy.id,
            policy.created_date_time,
            keys,
            policy,
        ),
    }
}

pub(super) fn location_record(
    location: &NamedLocation,
    version: Option<&Record>,
) -> ServiceResult<Record> {
    let keys = Keys::named(location.spec.display_name());
    match version {
        Some(record) => codec::next_version(record, location.modified_date_time, keys, location),
        None => codec::new_record(
            Kind::NamedLocation,
            location.id,
            location.created_date_time,
            keys,
            location,
        ),
    }
}

fn validation(errors: tessera_directory::ValidationErrors) -> ServiceError {
    ServiceError::from(errors)
}

/// Reads a policy body as Graph clients send it.
fn parse_policy(body: Value) -> ServiceResult<PolicySpec> {
    let normalized = import::normalize_policy(body);
    if let Some(first) = normalized.unsupported.first() {
        return Err(ServiceError::invalid(
            first.field.clone(),
            first.message.clone(),
        ));
    }
    let spec: PolicySpec =
        import::read(&normalized.value).map_err(|f| ServiceError::invalid(f.field, f.message))?;
    validate::policy(&spec).map_err(validation)?;
    Ok(spec)
}

fn parse_location(body: Value) -> ServiceResult<NamedLocationSpec> {
    let normalized = import::normalize_location(body);
    if let Some(first) = normalized.unsupported.first() {
        return Err(ServiceError::invalid(
            first.field.clone(),
            first.message.clone(),
        ));
    }
    let spec: NamedLocationSpec =
        import::read(&normalized.value).map_err(|f| ServiceError::invalid(f.field, f.message))?;
    validate::named_location(&spec).map_err(validation)?;
    Ok(spec)
}

/// Refuses references to groups, users, locations, terms, strengths and workloads
/// that do not exist (applications and roles may: they match nothing).
async fn check_references(
    reader: &mut dyn Reader,
    tenant: TenantId,
    spec: &PolicySpec,
) -> ServiceResult<()> {
    let c = &spec.conditions;
    let ids = |list: &[String]| -> Vec<(usize, Uuid)> {
        list.iter()
            .enumerate()
            .filter_map(|(i, v)| Uuid::parse_str(v).ok().map(|id| (i, id)))
            .collect()
    };
    if let Some(users) = &c.users {
        for (field, list, kind) in [
            ("includeUsers", &users.include_users, Kind::User),
            ("excludeUsers", &users.exclude_users, Kind::User),
            ("includeGroups", &users.include_groups, Kind::Group),
            ("excludeGroups", &users.exclude_groups, Kind::Group),
        ] {
            for (index, id) in ids(list) {
                if reader.get(tenant, kind, id).await?.is_none() {
                    return Err(ServiceError::invalid(
                        format!("conditions.users.{field}[{index}]"),
                        format!("no {} has the id {id}", kind.as_str()),
                    ));
                }
            }
        }
    }
    if let Some(workloads) = &c.client_applications {
        for (field, list) in [
            (
                "includeServicePrincipals",
                &workloads.include_service_principals,
            ),
            (
                "excludeServicePrincipals",
                &workloads.exclude_service_principals,
            ),
        ] {
            for (index, id) in ids(list) {
                if reader
                    .get(tenant, Kind::ServicePrincipal, id)
                    .await?
                    .is_none()
                {
                    return Err(ServiceError::invalid(
                        format!("conditions.clientApplications.{field}[{index}]"),
                        format!("no service principal has the id {id}"),
                    ));
                }
            }
        }
    }
    if let Some(locations) = &c.locations {
        for (field, list) in [
            ("includeLocations", &locations.include_locations),
            ("excludeLocations", &locations.exclude_locations),
        ] {
            for (index, id) in ids(list) {
                if reader.get(tenant, Kind::NamedLocation, id).await?.is_none() {
                    return Err(ServiceError::invalid(
                        format!("conditions.locations.{field}[{index}]"),
                        format!("no named location has the id {id}"),
                    ));
                }
            }
        }
    }
    if let Some(grant) = &spec.grant_controls {
        if let Some(strength) = &grant.authentication_strength
            && auth_policy::load_strength(reader, tenant, strength.id)
                .await?
                .is_none()
        {
            return Err(ServiceError::invalid(
                "grantControls.authenticationStrength.id",
                "no authentication strength has this id",
            ));
        }
        for (index, id) in ids(&grant.terms_of_use) {
            if reader.get(tenant, Kind::TermsOfUse, id).await?.is_none() {
                return Err(ServiceError::invalid(
                    format!("grantControls.termsOfUse[{index}]"),
                    "no terms of use have this id",
                ));
            }
        }
    }
    Ok(())
}

/// Policies that name `id` (a location or terms of use).
fn referencing(policies: &[ConditionalAccessPolicy], id: Uuid) -> Vec<String> {
    let id = id.to_string();
    policies
        .iter()
        .filter(|p| {
            let c = &p.spec.conditions;
            let in_locations = c.locations.as_ref().is_some_and(|l| {
                l.include_locations.contains(&id) || l.exclude_locations.contains(&id)
            });
            let in_terms = p
                .spec
                .grant_controls
                .as_ref()
                .is_some_and(|g| g.terms_of_use.contains(&id));
            in_locations || in_terms
        })
        .map(|p| p.spec.display_name.clone())
        .collect()
}

impl Access {
    // -----------------------------------------------------------------------------
    // Policies

    pub async fn list_policies(
        &self,
        ctx: &Context,
    ) -> ServiceResult<Vec<ConditionalAccessPolicy>> {
        self.require(ctx, action::CA_POLICIES_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        all_policies(reader.as_mut(), ctx.tenant).await
    }

    pub async fn get_policy(
        &self,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<(ConditionalAccessPolicy, i64)> {
        self.require(ctx, action::CA_POLICIES_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        let record = codec::load(
            reader.as_mut(),
            ctx.tenant,
            Kind::ConditionalAccessPolicy,
            id,
        )
        .await?;
        Ok((codec::data(&record)?, record.version))
    }

    pub async fn create_policy(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<ConditionalAccessPolicy> {
        self.require(ctx, action::CA_POLICIES_MANAGE, &AuthzTarget::Tenant)?;
        self.protect(ctx, tessera_pim::protected::CA_POLICY_CREATE, None)?;
        let spec = parse_policy(body)?;
        let now = self.now();
        let policy = ConditionalAccessPolicy {
            id: Uuid::new_v4(),
            spec,
            created_date_time: now,
            modified_date_time: now,
        };
        let mut tx = self.write(ctx).await?;
        check_references(tx.as_mut(), ctx.tenant, &policy.spec).await?;
        tx.insert(ctx.tenant, &policy_record(&policy, None)?)
            .await?;
        let event = EventDraft::new(AuditAction::ConditionalAccessPolicyCreate)
            .on(
                Kind::ConditionalAccessPolicy,
                policy.id,
                &policy.spec.display_name,
            )
            .details(serde_json::to_value(&policy.spec).unwrap_or(Value::Null));
        self.commit(tx, ctx, event).await?;
        self.forget_policy_set(ctx.tenant);
        Ok(policy)
    }

    async fn open_policy(
        &self,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<(Box<dyn tessera_store::WriteTx>, tessera_store::Record)> {
        let kind = Kind::ConditionalAccessPolicy;
        self.open_tenant_record(ctx, action::CA_POLICIES_MANAGE, kind, id)
            .await
    }

    /// A JSON merge patch on a policy, validated like a create.
    pub async fn update_policy(
        &self,
        ctx: &Context,
        patch: Patch,
    ) -> ServiceResult<ConditionalAccessPolicy> {
        let Patch { at, body } = patch;
        let id = at.id;
        let (mut tx, record) = self.open_policy(ctx, id).await?;
        self.protect(ctx, tessera_pim::protected::CA_POLICY_UPDATE, None)?;
        at.check(&record)?;
        let mut policy: ConditionalAccessPolicy = codec::data(&record)?;
        let before = serde_json::to_value(&policy.spec).unwrap_or(Value::Null);
        let mut body = body;
        import::strip_annotations(&mut body);
        let merged = patch::merge_patch(&before, &body, READ_ONLY)?;
        let spec = parse_policy(merged)?;
        check_references(tx.as_mut(), ctx.tenant, &spec).await?;
        policy.spec = spec;
        policy.modified_date_time = self.now();
        tx.update(ctx.tenant, &policy_record(&policy, Some(&record))?)
            .await?;
        let after = serde_json::to_value(&policy.spec).unwrap_or(Value::Null);
        let event = EventDraft::new(AuditAction::ConditionalAccessPolicyUpdate)
            .on(Kind::ConditionalAccessPolicy, id, &policy.spec.display_name)
            .changes(patch::changes(&before, &after));
        self.commit(tx, ctx, event).await?;
        self.forget_policy_set(ctx.tenant);
        Ok(policy)
    }

    pub async fn delete_policy(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        let (mut tx, record) = self.open_policy(ctx, id).await?;
        self.protect(ctx, tessera_pim::protected::CA_POLICY_DELETE, None)?;
        let policy: ConditionalAccessPolicy = codec::data(&record)?;
        tx.delete(ctx.tenant, Kind::ConditionalAccessPolicy, id, None)
            .await?;
        let event = EventDraft::new(AuditAction::ConditionalAccessPolicyDelete)
            .on(Kind::ConditionalAccessPolicy, id, &policy.spec.display_name)
            .details(serde_json::to_value(&policy.spec).unwrap_or(Value::Null));
        self.commit(tx, ctx, event).await?;
        self.forget_policy_set(ctx.tenant);
        Ok(())
    }

    // -----------------------------------------------------------------------------
    // Named locations

    pub async fn list_named_locations(&self, ctx: &Context) -> ServiceResult<Vec<NamedLocation>> {
        self.require(ctx, action::NAMED_LOCATIONS_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        all_locations(reader.as_mut(), ctx.tenant).await
    }

    pub async fn get_named_location(
        &self,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<(NamedLocation, i64)> {
        self.require(ctx, action::NAMED_LOCATIONS_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        let record = codec::load(reader.as_mut(), ctx.tenant, Kind::NamedLocation, id).await?;
        Ok((codec::data(&record)?, record.version))
    }

    pub async fn create_named_location(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<NamedLocation> {
        self.require(ctx, action::NAMED_LOCATIONS_MANAGE, &AuthzTarget::Tenant)?;
        self.protect(ctx, tessera_pim::protected::NAMED_LOCATION_CREATE, None)?;
        let spec = parse_location(body)?;
        let now = self.now();
        let location = NamedLocation {
            id: Uuid::new_v4(),
            spec,
            created_date_time: now,
            modified_date_time: now,
        };
        let mut tx = self.write(ctx).await?;
        tx.insert(ctx.tenant, &location_record(&location, None)?)
            .await?;
        let event = EventDraft::new(AuditAction::NamedLocationCreate)
            .on(
                Kind::NamedLocation,
                location.id,
                location.spec.display_name(),
            )
            .details(serde_json::to_value(&location.spec).unwrap_or(Value::Null));
        self.commit(tx, ctx, event).await?;
        self.forget_policy_set(ctx.tenant);
        Ok(location)
    }

    pub async fn update_named_location(
        &self,
        ctx: &Context,
        patch: Patch,
    ) -> ServiceResult<NamedLocation> {
        let Patch { at, body } = patch;
        let id = at.id;
        let (mut tx, record) = self
            .open_tenant_record(ctx, action::NAMED_LOCATIONS_MANAGE, Kind::NamedLocation, id)
            .await?;
        self.protect(ctx, tessera_pim::protected::NAMED_LOCATION_UPDATE, None)?;
        at.check(&record)?;
        let mut location: NamedLocation = codec::data(&record)?;
        let before = serde_json::to_value(&location.spec).unwrap_or(Value::Null);
        let mut body = body;
        import::strip_annotations(&mut body);
        let mut merged = patch::merge_patch(&before, &body, READ_ONLY)?;
        if let (Some(kind), Some(map)) =
            (before.get("@odata.type").cloned(), merged.as_object_mut())
        {
            map.insert("@odata.type".to_string(), kind);
        }
        location.spec = parse_location(merged)?;
        location.modified_date_time = self.now();
        tx.update(ctx.tenant, &location_record(&location, Some(&record))?)
            .await?;
        let after = serde_json::to_value(&location.spec).unwrap_or(Value::Null);
        let event = EventDraft::new(AuditAction::NamedLocationUpdate)
            .on(Kind::NamedLocation, id, location.spec.display_name())
            .changes(patch::changes(&before, &after));
        self.commit(tx, ctx, event).await?;
        self.forget_policy_set(ctx.tenant);
        Ok(location)
    }

    /// Deletes a named location no policy names.
    pub async fn delete_named_location(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        self.require(ctx, action::NAMED_LOCATIONS_MANAGE, &AuthzTarget::Tenant)?;
        self.protect(ctx, tessera_pim::protected::NAMED_LOCATION_DELETE, None)?;
        self.delete_unused(
            ctx,
            action::NAMED_LOCATIONS_MANAGE,
            Kind::NamedLocation,
            id,
            AuditAction::NamedLocationDelete,
            "policies name this location",
        )
        .await
    }

    // -----------------------------------------------------------------------------
    // Terms of use

    pub async fn list_terms_of_use(&self, ctx: &Context) -> ServiceResult<Vec<TermsOfUse>> {
        self.require(ctx, action::CA_POLICIES_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        codec::list_all(reader.as_mut(), ctx.tenant, Kind::TermsOfUse, None)
            .await?
            .iter()
            .map(codec::data)
            .collect()
    }

    /// One terms of use, with the version a change is checked against.
    pub async fn get_terms_of_use(
        &self,
        ctx: &Context,
        id: Uuid,
    ) -> ServiceResult<(TermsOfUse, i64)> {
        self.require(ctx, action::CA_POLICIES_READ, &AuthzTarget::Tenant)?;
        let mut reader = self.reader().await?;
        let record = codec::load(reader.as_mut(), ctx.tenant, Kind::TermsOfUse, id).await?;
        Ok((codec::data(&record)?, record.version))
    }

    pub async fn create_terms_of_use(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<TermsOfUse> {
        self.require(ctx, action::CA_POLICIES_MANAGE, &AuthzTarget::Tenant)?;
        let spec: TermsOfUseSpec = patch::parse_spec(body)?;
        validate::terms_of_use(&spec).map_err(validation)?;
        let now = self.now();
        let terms = TermsOfUse {
            id: Uuid::new_v4(),
            spec,
            content_version: 1,
            created_date_time: now,
            modified_date_time: now,
        };
        let mut tx = self.write(ctx).await?;
        let record = codec::new_record(
            Kind::TermsOfUse,
            terms.id,
            now,
            Keys::named(&terms.spec.display_name),
            &terms,
        )?;
        tx.insert(ctx.tenant, &record).await?;
        let event = EventDraft::new(AuditAction::AgreementCreate).on(
            Kind::TermsOfUse,
            terms.id,
            &terms.spec.display_name,
        );
        self.commit(tx, ctx, event).await?;
        Ok(terms)
    }

    /// Changes terms of use; new text needs everyone's acceptance again.
    pub async fn update_terms_of_use(
        &self,
        ctx: &Context,
        patch: Patch,
    ) -> ServiceResult<TermsOfUse> {
        let Patch { at, body } = patch;
        let id = at.id;
        let (mut tx, record) = self
            .open_tenant_record(ctx, action::CA_POLICIES_MANAGE, Kind::TermsOfUse, id)
            .await?;
        at.check(&record)?;
        let mut terms: TermsOfUse = codec::data(&record)?;
        let spec: TermsOfUseSpec = patch::merge_patch(&terms.spec, &body, READ_ONLY)?;
        validate::terms_of_use(&spec).map_err(validation)?;
        if spec.content != terms.spec.content {
            terms.content_version += 1;
        }
        terms.spec = spec;
        terms.modified_date_time = self.now();
        let keys = Keys::named(&terms.spec.display_name);
        tx.update(
            ctx.tenant,
            &codec::next_version(&record, terms.modified_date_time, keys, &terms)?,
        )
        .await?;
        let event = EventDraft::new(AuditAction::AgreementUpdate)
            .on(Kind::TermsOfUse, id, &terms.spec.display_name)
            .details(json!({"contentVersion": terms.content_version}));
        self.commit(tx, ctx, event).await?;
        Ok(terms)
    }

    /// Deletes terms of use no policy requires.
    pub async fn delete_terms_of_use(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        self.delete_unused(
            ctx,
            action::CA_POLICIES_MANAGE,
            Kind::TermsOfUse,
            id,
            AuditAction::AgreementDelete,
            "policies require these terms",
        )
        .await
    }

    /// Deletes a named location or terms of use, refused while a policy names it.
    async fn delete_unused(
        &self,
        ctx: &Context,
        permission: &str,
        kind: Kind,
        id: Uuid,
        audit_action: AuditAction,
        in_use: &str,
    ) -> ServiceResult<()> {
        let (mut tx, record) = self.open_tenant_record(ctx, permission, kind, id).await?;
        let data: Value = codec::data(&record)?;
        let name = data["displayName"].as_str().unwrap_or_default().to_string();
        let users = referencing(&all_policies(tx.as_mut(), ctx.tenant).await?, id);
        if !users.is_empty() {
            return Err(ServiceError::Conflict {
                message: format!("{in_use}: {}", users.join(", ")),
            });
        }
        tx.delete(ctx.tenant, kind, id, None).await?;
        self.audit(
            tx.as_mut(),
            ctx,
            EventDraft::new(audit_action).on(kind, id, &name),
        )
        .await?;
        tx.commit().await?;
        self.forget_policy_set(ctx.tenant);
        Ok(())
    }

    /// Terms of use by id, for the acceptance page.
    pub(crate) async fn terms_by_id(
        &self,
        tenant: TenantId,
        ids: &[Uuid],
    ) -> ServiceResult<Vec<TermsOfUse>> {
        let mut reader = self.reader().await?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(record) = reader.get(tenant, Kind::TermsOfUse, *id).await? {
                out.push(codec::data(&record)?);
            }
        }
        Ok(out)
    }

    /// Records that a user accepted terms (their current version).
    pub(crate) async fn accept_terms(
        &self,
        ctx: &Context,
        user: Uuid,
        terms_id: Uuid,
    ) -> ServiceResult<()> {
        let mut tx = self.write(ctx).await?;
        let record = codec::load(tx.as_mut(), ctx.tenant, Kind::TermsOfUse, terms_id).await?;
        let terms: TermsOfUse = codec::data(&record)?;
        let now = self.now();
        let acceptance = Acceptance {
            terms_id,
            user_id: user,
            content_version: terms.content_version,
            accepted_date_time: now,
        };
        let key = format!("{terms_id}:{user}");
        let keys = || Keys {
            key1: Some(key.clone()),
            key2: Some(user.to_string()),
            sort_key: key.clone(),
        };
        let existing = tx
            .get_by_key1(ctx.tenant, Kind::TermsAcceptance, &key)
            .await?;
        codec::put(
            tx.as_mut(),
            ctx.tenant,
            Kind::TermsAcceptance,
            existing.as_ref(),
            Uuid::new_v4(),
            now,
            keys(),
            &acceptance,
        )
        .await?;
        let event = EventDraft::new(AuditAction::AgreementAccept)
            .on(Kind::TermsOfUse, terms_id, &terms.spec.display_name)
            .details(json!({"userId": user, "contentVersion": terms.content_version}));
        self.commit(tx, ctx, event).await?;
        Ok(())
    }

    /// Whether security defaults ask this user to register a second factor.
    pub async fn mfa_registration_requested(
        &self,
        tenant: TenantId,
        user: Uuid,
    ) -> ServiceResult<bool> {
        let mut reader = self.reader().await?;
        if !security_defaults(reader.as_mut(), tenant).await?.is_enabled {
            return Ok(false);
        }
        let registered = auth_methods::has_second_factor(reader.as_mut(), tenant, user).await?;
        Ok(!registered)
    }

    // -----------------------------------------------------------------------------
    // Security defaults and risk

    pub async fn set_security_defaults(
        &self,
        ctx: &Context,
        change: Replacement,
    ) -> ServiceResult<SecurityDefaults> {
        self.may_change_settings(ctx)?;
        let Replacement { mut body, if_match } = change;
        import::strip_annotations(&mut body);
        if let Some(map) = body.as_object_mut() {
            for field in ["id", "displayName", "description"] {
                map.remove(field);
            }
        }
        let policy: SecurityDefaults = patch::parse_spec(body)?;
        let (tx, before) = self.open_setting::<SecurityDefaults>(ctx, if_match).await?;
        self.save_setting(ctx, tx, &before, &policy).await?;
        self.forget_policy_set(ctx.tenant);
        Ok(policy)
    }
}

//! Administrator operations: a user's methods and sessions, temporary access passes,
//! password resets, the methods policy, authentication strengths and the sign-in log.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_authn::policy::{MethodsPolicy, TAP_MAX_LENGTH, TAP_MIN_LENGTH};
use tessera_authn::strength::Strength;
use tessera_authn::{hashing, tap};
use tessera_core::{SecretString, TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::model::UserSpec;
use tessera_directory::roles::action;
use tessera_store::{Kind, SignInQuery};
use uuid::Uuid;

use super::random_bytes;
use super::sessions::SessionView;
use super::{POLICY_KEY, SignInEntry, all_strengths, load_policy};
use crate::codec::{self, Keys, Page};
use crate::directory::auth_methods::{MethodData, method_record, methods_of};
use crate::error::{OrConflict, ServiceError, ServiceResult};
use crate::{Context, EventDraft, SignIn};

/// A request for a temporary access pass.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTemporaryAccessPass {
    /// When the pass becomes usable; now when absent.
    #[serde(default)]
    pub start_date_time: Option<Timestamp>,
    /// Minutes it stays usable; the policy's default when absent.
    #[serde(default)]
    pub lifetime_in_minutes: Option<u32>,
    /// One sign-in only; the policy's default when absent.
    #[serde(default)]
    pub is_usable_once: Option<bool>,
    /// Characters; the policy's default when absent.
    #[serde(default)]
    pub length: Option<u32>,
}

/// A new pass: shown this once.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPassView {
    pub id: Uuid,
    pub start_date_time: Timestamp,
    pub end_date_time: Timestamp,
    pub lifetime_in_minutes: u32,
    pub is_usable_once: bool,
    /// The pass itself, shown only in this response.
    pub temporary_access_pass: String,
}

/// Sign-in log filters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInFilter {
    pub user_id: Option<Uuid>,
    pub user_principal_name: Option<String>,
    /// `success`, `failure` or `interrupted`.
    pub result: Option<String>,
    /// The application's name, as the log shows it.
    pub app_display_name: Option<String>,
    /// An error code, e.g. `invalid_credentials`.
    pub failure_code: Option<String>,
    /// The correlation id an error page showed.
    pub correlation_id: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl SignIn {
    async fn authorized_user(
        &self,
        ctx: &Context,
        user: Uuid,
        action: &str,
    ) -> ServiceResult<UserSpec> {
        let mut reader = self.reader().await?;
        let (record, _) = self
            .directory
            .load_authorized(reader.as_mut(), ctx, Kind::User, user, action)
            .await?;
        codec::data(&record)
    }

    pub async fn list_user_methods(
        &self,
        ctx: &Context,
        user: Uuid,
    ) -> ServiceResult<Vec<super::AuthMethodView>> {
        self.authorized_user(ctx, user, action::USERS_AUTH_METHODS_READ)
            .await?;
        let mut reader = self.reader().await?;
        Ok(methods_of(reader.as_mut(), ctx.tenant, user)
            .await?
            .iter()
            .map(|m| m.view())
            .collect())
    }

    pub async fn delete_user_method(
        &self,
        ctx: &Context,
        user: Uuid,
        method: Uuid,
    ) -> ServiceResult<()> {
        self.authorized_user(ctx, user, action::USERS_AUTH_METHODS_DELETE)
            .await?;
        self.delete_method(ctx, user, method).await?;
        // Whoever signed in with the method keeps nothing it gave them.
        self.end_user_sessions(
            ctx.tenant,
            user,
            None,
            tessera_cae::Reason::CredentialChange,
        )
        .await?;
        Ok(())
    }

    /// Issues a temporary access pass for a user, replacing any pass they had.
    pub async fn issue_temporary_access_pass(
        &self,
        ctx: &Context,
        user: Uuid,
        body: Value,
    ) -> ServiceResult<TemporaryAccessPassView> {
        let request: NewTemporaryAccessPass =
            serde_json::from_value(body).map_err(|e| ServiceError::invalid("", e.to_string()))?;
        let spec = self
            .authorized_user(ctx, user, action::USERS_AUTH_METHODS_CREATE)
            .await?;
        if ctx.caller.user_id() == Some(user) {
            return Err(ServiceError::Conflict {
                message: "you cannot issue a temporary access pass for yourself".to_string(),
            });
        }
        self.new_pass(ctx, user, &spec.user_principal_name, request)
            .await
    }

    /// The first console sign-in of a new tenant's break-glass administrator: a
    /// one-hour, one-use pass, so that it registers a passkey. Made by the system at
    /// bootstrap, never through the API.
    pub async fn bootstrap_pass(
        &self,
        tenant: TenantId,
        user: Uuid,
        user_principal_name: &str,
    ) -> ServiceResult<TemporaryAccessPassView> {
        let ctx = crate::kernel::system_context(tenant, "bootstrap");
        let request = NewTemporaryAccessPass {
            lifetime_in_minutes: Some(60),
            is_usable_once: Some(true),
            ..NewTemporaryAccessPass::default()
        };
        self.new_pass(&ctx, user, user_principal_name, request)
            .await
    }

    /// Stores a new pass for `user` (replacing theirs) within the methods policy's
    /// bounds; the caller has been authorized.
    async fn new_pass(
        &self,
        ctx: &Context,
        user: Uuid,
        user_principal_name: &str,
        request: NewTemporaryAccessPass,
    ) -> ServiceResult<TemporaryAccessPassView> {
        let mut reader = self.reader().await?;
        let (policy, _) = load_policy(reader.as_mut(), ctx.tenant).await?;
        drop(reader);
        if policy.temporary_access_pass.state != tessera_authn::policy::State::Enabled {
            return Err(ServiceError::Conflict {
                message:
                    "temporary access passes are disabled in the authentication methods policy"
                        .to_string(),
            });
        }
        let settings = &policy.temporary_access_pass.settings;
        let lifetime = request
            .lifetime_in_minutes
            .unwrap_or(settings.default_lifetime_minutes);
        if !(settings.minimum_lifetime_minutes..=settings.maximum_lifetime_minutes)
            .contains(&lifetime)
        {
            return Err(ServiceError::invalid(
                "lifetimeInMinutes",
                format!(
                    "must be between {} and {} (the methods policy)",
                    settings.minimum_lifetime_minutes, settings.maximum_lifetime_minutes
                ),
            ));
        }
        let length = request.length.unwrap_or(settings.default_length);
        if !(TAP_MIN_LENGTH..=TAP_MAX_LENGTH).contains(&length) {
            return Err(ServiceError::invalid("length", "must be between 8 and 48"));
        }
        let now = self.now();
        let start = request.start_date_time.unwrap_or(now).max(now);
        if start.unix_micros() - now.unix_micros() > 30 * 86_400_000_000 {
            return Err(ServiceError::invalid(
                "startDateTime",
                "must be within 30 days",
            ));
        }
        let once = request.is_usable_once.unwrap_or(settings.is_usable_once);
        let random = random_bytes::<48>()?;
        let pass = tap::generate(&random[..length as usize]);
        let salt = random_bytes::<16>()?;
        let to_hash = pass.clone();
        let hash = self
            .authn
            .hash_work(move || hashing::hash(&to_hash, &salt))
            .await?
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let stored = tap::StoredPass {
            hash,
            start,
            end: start.plus_seconds(i64::from(lifetime) * 60),
            is_usable_once: once,
        };
        let method = MethodData::TemporaryAccessPass {
            pass: stored.clone(),
            issued_by: ctx.caller.user_id(),
        };
        let id = Uuid::new_v4();
        let mut tx = self.write(ctx).await?;
        if let Some(old) = tx
            .get_by_key1(ctx.tenant, Kind::AuthMethod, &format!("tap:{user}"))
            .await?
        {
            tx.delete(ctx.tenant, Kind::AuthMethod, old.id, None)
                .await?;
        }
        tx.insert(ctx.tenant, &method_record(id, user, now, &method)?)
            .await?;
        let event = EventDraft::new(AuditAction::UserTemporaryAccessPassIssue)
            .on(Kind::User, user, user_principal_name)
            .details(json!({
                "methodId": id,
                "startDateTime": stored.start,
                "endDateTime": stored.end,
                "isUsableOnce": once,
            }));
        self.commit(tx, ctx, event).await?;
        Ok(TemporaryAccessPassView {
            id,
            start_date_time: stored.start,
            end_date_time: stored.end,
            lifetime_in_minutes: lifetime,
            is_usable_once: once,
            temporary_access_pass: pass,
        })
    }

    /// Sets a user's password as an administrator; with no password given, generates
    /// one and returns it (once). The user's sessions are revoked.
    pub async fn reset_password(
        &self,
        ctx: &Context,
        user: Uuid,
        password: Option<SecretString>,
    ) -> ServiceResult<Option<SecretString>> {
        self.authorized_user(ctx, user, action::USERS_PASSWORD_UPDATE)
            .await?;
        let (password, generated) = match password {
            Some(password) => (password, false),
            None => {
                let random = random_bytes::<20>()?;
                // 20 characters of the pass alphabet: 100 bits.
                (SecretString::new(tap::generate(&random)), true)
            }
        };
        self.set_password(ctx, user, password.clone()).await?;
        self.end_user_sessions(
            ctx.tenant,
            user,
            None,
            tessera_cae::Reason::CredentialChange,
        )
        .await?;
        self.reset_remediates(ctx, user).await;
        Ok(generated.then_some(password))
    }

    /// Revokes every session of a user, on every node at once.
    pub async fn revoke_user_sessions(&self, ctx: &Context, user: Uuid) -> ServiceResult<u64> {
        let spec = self
            .authorized_user(ctx, user, action::USERS_INVALIDATE_TOKENS)
            .await?;
        let revoked = self
            .end_user_sessions(ctx.tenant, user, None, tessera_cae::Reason::SessionsRevoked)
            .await?;
        let tx = self.write(ctx).await?;
        let event = EventDraft::new(AuditAction::UserSessionsRevoke)
            .on(Kind::User, user, &spec.user_principal_name)
            .details(json!({ "sessionsRevoked": revoked }));
        self.commit(tx, ctx, event).await?;
        Ok(revoked)
    }

    pub async fn list_user_sessions(
        &self,
        ctx: &Context,
        user: Uuid,
    ) -> ServiceResult<Vec<SessionView>> {
        self.authorized_user(ctx, user, action::USERS_AUTH_METHODS_READ)
            .await?;
        self.session_views(ctx.tenant, user).await
    }

    pub async fn get_methods_policy(&self, ctx: &Context) -> ServiceResult<(MethodsPolicy, i64)> {
        self.require(ctx, action::POLICIES_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let (policy, record) = load_policy(reader.as_mut(), ctx.tenant).await?;
        Ok((policy, record.map(|r| r.version).unwrap_or(0)))
    }

    /// Replaces the methods policy as a whole.
    pub async fn set_methods_policy(
        &self,
        ctx: &Context,
        body: Value,
        if_match: Option<i64>,
    ) -> ServiceResult<(MethodsPolicy, i64)> {
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)?;
        let policy: MethodsPolicy = serde_path_to_error::deserialize(body)
            .map_err(|e| ServiceError::invalid(e.path().to_string(), e.inner().to_string()))?;
        policy
            .validate()
            .map_err(|(field, message)| ServiceError::invalid(field, message))?;
        let mut tx = self.write(ctx).await?;
        for group in policy.referenced_groups() {
            if tx.get(ctx.tenant, Kind::Group, group).await?.is_none() {
                return Err(ServiceError::invalid(
                    "includeGroups",
                    format!("group {group} does not exist"),
                ));
            }
        }
        if let Some(strength) = policy.registration_strength
            && super::load_strength(tx.as_mut(), ctx.tenant, strength)
                .await?
                .is_none()
        {
            return Err(ServiceError::invalid(
                "registrationStrength",
                format!("strength {strength} does not exist"),
            ));
        }
        let (before, record) = load_policy(tx.as_mut(), ctx.tenant).await?;
        let keys = || Keys {
            key1: Some(POLICY_KEY.to_string()),
            key2: None,
            sort_key: POLICY_KEY.to_string(),
        };
        let version = match &record {
            Some(record) => {
                codec::check_if_match(record, if_match)?;
                let updated = codec::next_version(record, self.now(), keys(), &policy)?;
                tx.update(ctx.tenant, &updated).await?;
                updated.version
            }
            None => {
                if let Some(sent) = if_match.filter(|v| *v != 0) {
                    return Err(ServiceError::VersionMismatch { sent, current: 0 });
                }
                let created = codec::new_record(
                    Kind::AuthPolicy,
                    Uuid::new_v4(),
                    self.now(),
                    keys(),
                    &policy,
                )?;
                tx.insert(ctx.tenant, &created).await?;
                1
            }
        };
        let changes = tessera_directory::patch::changes(
            &serde_json::to_value(&before).unwrap_or(Value::Null),
            &serde_json::to_value(&policy).unwrap_or(Value::Null),
        );
        let event =
            EventDraft::new(AuditAction::AuthenticationMethodsPolicyUpdate).changes(changes);
        self.commit(tx, ctx, event).await?;
        Ok((policy, version))
    }

    pub async fn list_strengths(&self, ctx: &Context) -> ServiceResult<Vec<Strength>> {
        self.require(ctx, action::POLICIES_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        all_strengths(reader.as_mut(), ctx.tenant).await
    }

    /// Creates a custom strength.
    pub async fn create_strength(&self, ctx: &Context, body: Value) -> ServiceResult<Strength> {
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct NewStrength {
            display_name: String,
            #[serde(default)]
            description: String,
            allowed_combinations: Vec<tessera_authn::strength::Combination>,
            #[serde(default)]
            combination_configurations: std::collections::BTreeMap<
                tessera_authn::strength::Mode,
                tessera_authn::strength::Restrictions,
            >,
        }
        let request: NewStrength = serde_path_to_error::deserialize(body)
            .map_err(|e| ServiceError::invalid(e.path().to_string(), e.inner().to_string()))?;
        let strength = Strength {
            id: Uuid::new_v4(),
            display_name: request.display_name.trim().to_string(),
            description: request.description,
            policy_type: "custom".to_string(),
            allowed_combinations: request.allowed_combinations,
            combination_configurations: request.combination_configurations,
        };
        strength
            .validate()
            .map_err(|m| ServiceError::invalid("", m))?;
        let mut tx = self.write(ctx).await?;
        let record = codec::new_record(
            Kind::AuthStrength,
            strength.id,
            self.now(),
            Keys {
                key1: Some(strength.display_name.to_lowercase()),
                key2: None,
                sort_key: strength.display_name.to_lowercase(),
            },
            &strength,
        )?;
        tx.insert(ctx.tenant, &record)
            .await
            .or_conflict("another strength has this display name")?;
        let event = EventDraft::new(AuditAction::AuthenticationStrengthCreate)
            .on(Kind::AuthStrength, strength.id, &strength.display_name)
            .details(&strength);
        self.commit(tx, ctx, event).await?;
        Ok(strength)
    }

    /// Deletes a custom strength that the methods policy does not use.
    pub async fn delete_strength(&self, ctx: &Context, id: Uuid) -> ServiceResult<()> {
        let (mut tx, record) = self
            .open_tenant_record(ctx, action::POLICIES_MANAGE, Kind::AuthStrength, id)
            .await?;
        let strength: Strength = codec::data(&record)?;
        let (policy, _) = load_policy(tx.as_mut(), ctx.tenant).await?;
        if policy.registration_strength == Some(id) {
            return Err(ServiceError::Conflict {
                message:
                    "the methods policy requires this strength for registration; change that first"
                        .to_string(),
            });
        }
        // An authentication context satisfied by it would be satisfied by nothing.
        let contexts = crate::directory::consent::auth_contexts(tx.as_mut(), ctx.tenant).await?;
        if let Some(context) = contexts.contexts.iter().find(|c| c.strength_id == id) {
            return Err(ServiceError::Conflict {
                message: format!(
                    "authentication context {} is satisfied by this strength; change that first",
                    context.id
                ),
            });
        }
        tx.delete(ctx.tenant, Kind::AuthStrength, id, None).await?;
        let event = EventDraft::new(AuditAction::AuthenticationStrengthDelete).on(
            Kind::AuthStrength,
            id,
            &strength.display_name,
        );
        self.commit(tx, ctx, event).await?;
        Ok(())
    }

    /// The sign-in log, newest first.
    pub async fn query_log(
        &self,
        ctx: &Context,
        filter: &SignInFilter,
    ) -> ServiceResult<Page<SignInEntry>> {
        self.require(ctx, action::SIGN_IN_REPORTS_READ, &Target::Tenant)?;
        let page = codec::LogPage::read(filter.limit, filter.cursor.as_deref())?;
        if let Some(result) = &filter.result
            && !["success", "failure", "interrupted"].contains(&result.as_str())
        {
            return Err(ServiceError::invalid(
                "result",
                "must be success, failure or interrupted",
            ));
        }
        let query = SignInQuery {
            user_id: filter.user_id,
            user_name: filter
                .user_principal_name
                .as_ref()
                .map(|n| n.to_lowercase()),
            result: filter.result.clone(),
            application: filter.app_display_name.clone(),
            failure_code: filter.failure_code.clone(),
            correlation_id: filter.correlation_id.clone(),
            since: filter.since,
            until: filter.until,
            before: page.before,
            limit: page.limit + 1,
        };
        let mut rows = self.store.sign_in_query(ctx.tenant, &query).await?;
        let next_cursor = page.finish(&mut rows, |r| (r.time, r.id));
        let value = rows
            .iter()
            .map(crate::sign_in::log_storage::entry_of)
            .collect::<ServiceResult<Vec<SignInEntry>>>()?;
        Ok(Page { value, next_cursor })
    }
}

/// How many users have registered which kind of sign-in method (the console's
/// report): counted from the methods themselves, so users with no method at all are
/// not in any count.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodsRegistered {
    pub passkey: usize,
    pub authenticator_app: usize,
    pub certificate: usize,
    pub password: usize,
    /// Users whose only way in is a password (no passkey, app or certificate).
    pub password_only: usize,
}

/// How long a methods report is reused.
const METHODS_REPORT_SECONDS: i64 = 60;

impl SignIn {
    /// The methods report: a read of every method record, by kind, counted at most
    /// once a minute (a node keeps the last count of each tenant for that long).
    pub async fn methods_registered(&self, ctx: &Context) -> ServiceResult<MethodsRegistered> {
        self.require(ctx, action::SIGN_IN_REPORTS_READ, &Target::Tenant)?;
        let tenant = ctx.tenant;
        let now = self.now();
        let fresh = |counted: &tessera_core::Timestamp| {
            (0..METHODS_REPORT_SECONDS * 1_000_000)
                .contains(&(now.unix_micros() - counted.unix_micros()))
        };
        if let Ok(reports) = self.methods_reports.lock()
            && let Some((counted, report)) = reports.get(&tenant)
            && fresh(counted)
        {
            return Ok(report.clone());
        }
        let report = self.count_methods(tenant).await?;
        if let Ok(mut reports) = self.methods_reports.lock() {
            reports.retain(|_, (counted, _)| fresh(counted));
            reports.insert(tenant, (now, report.clone()));
        }
        Ok(report)
    }

    async fn count_methods(&self, tenant: TenantId) -> ServiceResult<MethodsRegistered> {
        let mut reader = self.reader().await?;
        let passkey = users_with(reader.as_mut(), tenant, "fido2").await?;
        let app = users_with(reader.as_mut(), tenant, "softwareOath").await?;
        let certificate = users_with(reader.as_mut(), tenant, "certificateUserId").await?;
        let password = users_with(reader.as_mut(), tenant, "password").await?;
        let password_only = password
            .iter()
            .filter(|u| !passkey.contains(*u) && !app.contains(*u) && !certificate.contains(*u))
            .count();
        Ok(MethodsRegistered {
            passkey: passkey.len(),
            authenticator_app: app.len(),
            certificate: certificate.len(),
            password: password.len(),
            password_only,
        })
    }
}

/// The users with a method of `kind`: the method records sort by `<kind>:<time>`, so
/// one prefix scan; a record's `key2` is its user.
async fn users_with(
    reader: &mut dyn tessera_store::Reader,
    tenant: TenantId,
    kind: &str,
) -> ServiceResult<std::collections::HashSet<String>> {
    let mut users = std::collections::HashSet::new();
    let mut after = None;
    loop {
        let query = tessera_store::ListQuery {
            after: after.clone(),
            limit: 1000,
            prefix: Some(format!("{kind}:")),
            key2: None,
        };
        let page = reader.list(tenant, Kind::AuthMethod, &query).await?;
        let Some(last) = page.last() else { break };
        after = Some(tessera_store::Cursor {
            sort_key: last.sort_key.clone(),
            id: last.id,
        });
        let full = page.len() == 1000;
        users.extend(page.into_iter().filter_map(|record| record.key2));
        if !full {
            break;
        }
    }
    Ok(users)
}

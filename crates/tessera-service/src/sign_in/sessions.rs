//! Server-side sessions. The browser holds a 256-bit secret; the store holds its
//! SHA-256 as the session id, so a database reader cannot ride a session. Every
//! request looks the session up, so revocation takes effect on every node at once.

use serde::{Deserialize, Serialize};
use tessera_authn::policy::SessionSettings;
use tessera_authn::registration::MethodUse;
use tessera_core::crypto::{generate_secret, secret_hash};
use tessera_core::{SecretString, TenantId, Timestamp};
use tessera_directory::model::UserSpec;
use tessera_store::{Kind, SessionRow};
use uuid::Uuid;

use super::SignInContext;
use crate::codec;
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, SignIn};

/// Last-seen times are written at most this often per session.
const TOUCH_MICROS: i64 = 60_000_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionData {
    pub user_principal_name: String,
    pub methods: Vec<MethodUse>,
    pub auth_time: Timestamp,
    /// The authentication strengths the sign-in reached.
    #[serde(default)]
    pub strengths: Vec<Uuid>,
    pub idle_minutes: u32,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// A TOTP enrolment started but not confirmed: the sealed seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_totp: Option<String>,
    /// A passkey registration started but not finished: the ceremony state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_passkey: Option<String>,
    /// Anti-forgery token for this session's forms.
    pub csrf: String,
    /// When the user last changed their password in this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_changed: Option<Timestamp>,
    /// The applications (client ids) this session signed in to, for back-channel
    /// logout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
    /// When this session took over an earlier one of the same user in the same
    /// browser (a sign-in again: ForceAuthn, `prompt=login`, a step-up): the
    /// `sid` of the first session of that line, which stays the browser
    /// session's `sid` (none: this one's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
    /// The real-time risk Identity Protection found in the sign-in that
    /// started this session (its password step's and its address's):
    /// Conditional Access decides the session's requests with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_risk: Option<tessera_ca::model::RiskLevel>,
    /// The network (/24 or /64) the session was last used from, once it moved
    /// from the one it was made on, and the one before that (Identity
    /// Protection's token anomalies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_network: Option<String>,
}

/// The most applications a session remembers.
const MAX_APPS: usize = 100;

/// A valid session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub tenant: TenantId,
    pub id: String,
    pub user_id: Uuid,
    pub user_principal_name: String,
    pub methods: Vec<MethodUse>,
    pub auth_time: Timestamp,
    pub expires: Timestamp,
    pub csrf: String,
    pub(crate) row: SessionRow,
    pub(crate) data: SessionData,
}

impl SessionInfo {
    /// The real-time risk Conditional Access decides the session's requests
    /// with (its sign-in's, raised by a token anomaly), when it has any.
    pub fn sign_in_risk(&self) -> Option<tessera_ca::model::RiskLevel> {
        self.data.sign_in_risk
    }
}

/// A session as its user or an administrator sees it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// A handle for the session (not its secret, nor the key it is stored under).
    pub id: String,
    /// Whether this is the session the request came with.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub current: bool,
    pub created_date_time: Timestamp,
    pub last_seen_date_time: Timestamp,
    pub expires_date_time: Timestamp,
    pub auth_time: Timestamp,
    pub authentication_methods: Vec<String>,
    /// When each method was verified.
    pub authentication_method_times: Vec<Timestamp>,
    /// The authentication strengths the sign-in reached.
    pub satisfied_strengths: Vec<Uuid>,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// The handle a session is shown and ended by: derived from its store key, which
/// is itself a hash of the secret, so neither can be worked back from it.
fn handle_of(row: &SessionRow) -> String {
    tessera_core::crypto::sha256_hex(format!("session-handle:{}", row.id).as_bytes())[..32]
        .to_string()
}

fn view_of(row: &SessionRow, data: &SessionData) -> SessionView {
    SessionView {
        id: handle_of(row),
        current: false,
        created_date_time: row.created,
        last_seen_date_time: row.last_seen,
        expires_date_time: row.expires,
        auth_time: data.auth_time,
        authentication_methods: data
            .methods
            .iter()
            .map(|m| m.method.mode.to_string())
            .collect(),
        authentication_method_times: data.methods.iter().map(|m| m.time).collect(),
        satisfied_strengths: data.strengths.clone(),
        client_address: data.client_address.clone(),
        user_agent: data.user_agent.clone(),
    }
}

pub(crate) fn new_csrf() -> ServiceResult<String> {
    let generated = generate_secret("").map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(generated.secret.expose().to_string())
}

/// What a completed sign-in proved, and what it showed.
pub(crate) struct Proven {
    pub methods: Vec<MethodUse>,
    /// The authentication strengths the methods reach.
    pub strengths: Vec<Uuid>,
    /// The sign-in's real-time risk.
    pub sign_in_risk: tessera_ca::model::RiskLevel,
}

impl SignIn {
    /// Starts a session for a user who has just signed in.
    pub(crate) async fn create_session(
        &self,
        ctx: &SignInContext,
        user_id: Uuid,
        user_principal_name: &str,
        proven: Proven,
        settings: &SessionSettings,
    ) -> ServiceResult<SecretString> {
        let Proven {
            methods,
            strengths,
            sign_in_risk,
        } = proven;
        let generated = generate_secret("").map_err(|e| ServiceError::Internal(e.to_string()))?;
        let now = self.now();
        let data = SessionData {
            user_principal_name: user_principal_name.to_string(),
            auth_time: now,
            strengths,
            methods,
            idle_minutes: settings.idle_minutes,
            client_address: ctx.client_address.clone(),
            user_agent: ctx.user_agent.clone(),
            pending_totp: None,
            pending_passkey: None,
            csrf: new_csrf()?,
            apps: Vec::new(),
            lineage: None,
            password_changed: None,
            sign_in_risk: (sign_in_risk != tessera_ca::model::RiskLevel::None)
                .then_some(sign_in_risk),
            last_network: None,
            previous_network: None,
        };
        let mut data = data;
        self.take_over(ctx, user_id, &mut data).await?;
        let row = SessionRow {
            id: generated.hash,
            user_id: Some(user_id),
            created: now,
            last_seen: now,
            expires: now.plus_seconds(i64::from(settings.absolute_hours) * 3600),
            revoked: None,
            version: 1,
            data: serde_json::to_string(&data)
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
        };
        self.store.session_insert(ctx.tenant, &row).await?;
        Ok(generated.secret)
    }

    /// A new session replaces the one the browser held. The same user's (signed in
    /// again), if still valid: its applications and its `sid` (the lineage) pass
    /// to the new session, and it ends without telling them (the user is still
    /// signed in to them). Another user's: it ends, and its applications are
    /// told (the browser can no longer sign it out). One no longer valid (ended,
    /// revoked, past its end or idle) is deleted and passes nothing on.
    async fn take_over(
        &self,
        ctx: &SignInContext,
        user_id: Uuid,
        data: &mut SessionData,
    ) -> ServiceResult<()> {
        let Some(secret) = ctx
            .previous_session
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 128)
        else {
            return Ok(());
        };
        let id = secret_hash(secret);
        let Some(old) = self.store.session_get(ctx.tenant, &id).await? else {
            return Ok(());
        };
        let Ok(old_data) = serde_json::from_str::<SessionData>(&old.data) else {
            return Ok(()); // not a browser session
        };
        let now = self.now();
        let valid = old.revoked.is_none()
            && old.expires > now
            && now
                < old
                    .last_seen
                    .plus_seconds(i64::from(old_data.idle_minutes) * 60);
        if !valid {
            self.store.session_delete(ctx.tenant, &id).await?;
            return Ok(());
        }
        if old.user_id != Some(user_id) {
            if self.store.session_delete(ctx.tenant, &id).await? {
                self.sessions_ended(ctx.tenant, std::slice::from_ref(&old))
                    .await;
            }
            return Ok(());
        }
        // Only the sign-in that ended the old session takes it over (two
        // completing at once in one browser do not both inherit its sid).
        if !self.store.session_delete(ctx.tenant, &id).await? {
            return Ok(());
        }
        data.lineage = Some(row_sid(&old, &old_data));

        for app in old_data.apps {
            if !data.apps.contains(&app) && data.apps.len() < MAX_APPS {
                data.apps.push(app);
            }
        }
        Ok(())
    }

    /// The session a browser's secret names, if it is still valid: not revoked, not
    /// past its absolute or idle end, and its user still exists and is enabled.
    pub async fn session(
        &self,
        tenant: TenantId,
        secret: &str,
    ) -> ServiceResult<Option<SessionInfo>> {
        Ok(self
            .session_seen(tenant, secret)
            .await?
            .map(|(session, _)| session))
    }

    /// The session a secret names (see [`SignIn::session`]), with when it was
    /// last seen before this use (its row says now, once touched).
    async fn session_seen(
        &self,
        tenant: TenantId,
        secret: &str,
    ) -> ServiceResult<Option<(SessionInfo, Timestamp)>> {
        if secret.is_empty() || secret.len() > 128 {
            return Ok(None);
        }
        let id = secret_hash(secret);
        let Some(row) = self.store.session_get(tenant, &id).await? else {
            return Ok(None);
        };
        let Some(user_id) = row.user_id else {
            return Ok(None);
        };
        let data: SessionData = match serde_json::from_str(&row.data) {
            Ok(data) => data,
            Err(_) => return Ok(None),
        };
        let now = self.now();
        let idle_end = row
            .last_seen
            .plus_seconds(i64::from(data.idle_minutes) * 60);
        if row.revoked.is_some() || now >= row.expires || now >= idle_end {
            return Ok(None);
        }
        let mut reader = self.reader().await?;
        let Some(user) = reader.get(tenant, Kind::User, user_id).await? else {
            return Ok(None);
        };
        let spec: UserSpec = codec::data(&user)?;
        if !spec.account_enabled {
            return Ok(None);
        }
        let seen_before = row.last_seen;
        let mut row = row;
        if now.unix_micros() - row.last_seen.unix_micros() > TOUCH_MICROS {
            self.store.session_touch(tenant, &id, now).await?;
            // A save of this row must not set its last use back.
            row.last_seen = now;
        }
        Ok(Some((
            SessionInfo {
                tenant,
                id,
                user_id,
                user_principal_name: spec.user_principal_name,
                methods: data.methods.clone(),
                auth_time: data.auth_time,
                expires: row.expires,
                csrf: data.csrf.clone(),
                row,
                data,
            },
            seen_before,
        )))
    }

    /// The session a browser's secret names (see [`SignIn::session`]), used by
    /// a request from its client address with its `User-Agent`
    /// (`tessera_risk::token`):
    /// - from another browser than the one that signed in (a copied cookie):
    ///   the session ends here, for whoever holds it, and the anomaly is
    ///   recorded (the user's risk rises);
    /// - from another platform, or back on a network it left moments ago (two
    ///   places use it): the anomaly is recorded and the session's sign-in
    ///   risk rises to it, so Conditional Access decides this request and its
    ///   next ones with it.
    ///
    /// Each finding is recorded once a day per session. A session that moved
    /// to another network remembers it (and the one before).
    pub async fn session_used(
        &self,
        ctx: &super::SignInContext,
        secret: &str,
    ) -> ServiceResult<Option<SessionInfo>> {
        let tenant = ctx.tenant;
        let client_address = ctx.client_address.as_deref();
        let Some((mut session, seen_before)) = self.session_seen(tenant, secret).await? else {
            return Ok(None);
        };
        let (found, moved) = self.risk.session_use(
            (
                session.data.client_address.as_deref(),
                session.data.user_agent.as_deref(),
            ),
            (
                session.data.last_network.as_deref(),
                session.data.previous_network.as_deref(),
                seen_before,
            ),
            (client_address, ctx.user_agent.as_deref()),
        );
        if let Some(detection) = &found {
            let reason = detection.evidence["reason"].as_str().unwrap_or("anomaly");
            let key = format!(
                "{}anomaly:{}:{reason}",
                crate::risk::COUNTER_PREFIX,
                session.id
            );
            let now = self.now();
            let first = self
                .store
                .counter_increment(tenant, &key, now, now.plus_seconds(-86_400))
                .await
                .map(|count| count == 1)
                .unwrap_or(true);
            if first
                && let Err(error) = self
                    .risk
                    .record_for(
                        tenant,
                        session.user_id,
                        &session.user_principal_name,
                        (&ctx.correlation_id, client_address),
                        detection.clone(),
                    )
                    .await
            {
                tracing::warn!(%error, "cannot record a session's token anomaly");
            }
            if detection.level == tessera_ca::model::RiskLevel::High {
                self.end_session(tenant, secret).await?;
                return Ok(None);
            }
        }
        let raised = found.as_ref().map(|d| d.level);
        if moved.is_none()
            && raised.is_none_or(|level| {
                session
                    .data
                    .sign_in_risk
                    .is_some_and(|current| current >= level)
            })
        {
            return Ok(Some(session));
        }
        // This request is decided with the finding, whatever the save does.
        let change = |data: &mut SessionData| {
            if let Some(network) = &moved {
                // The network it left: its last, or the one it was made on.
                data.previous_network = data.last_network.take().or_else(|| {
                    data.client_address
                        .as_deref()
                        .and_then(tessera_authn::lockout::network_of)
                });
                data.last_network = Some(network.clone());
            }
            if let Some(level) = raised {
                data.sign_in_risk = data.sign_in_risk.max(Some(level));
            }
        };
        change(&mut session.data);
        // Saved optimistically; a request that changed it first is read again.
        for _ in 0..2 {
            match self.save_session(&session, &session.data).await {
                Ok(()) => {
                    session.row.version += 1;
                    break;
                }
                Err(error) => {
                    tracing::debug!(%error, "a session changed meanwhile; read again");
                    let Some((again, _)) = self.session_seen(tenant, secret).await? else {
                        return Ok(None);
                    };
                    let mut data = again.data.clone();
                    change(&mut data);
                    session = SessionInfo { data, ..again };
                }
            }
        }
        Ok(Some(session))
    }

    /// Records that a session signed in to an application (for logout: OpenID
    /// Connect back-channel, SAML single logout).
    pub(crate) async fn remember_app(&self, session: &SessionInfo, client_id: &str) {
        if session.data.apps.iter().any(|a| a == client_id) || session.data.apps.len() >= MAX_APPS {
            return;
        }
        let mut data = session.data.clone();
        data.apps.push(client_id.to_string());
        if let Err(error) = self.save_session(session, &data).await {
            tracing::warn!(%error, "cannot record the application a session signed in to");
        }
    }

    /// Saves changed session data (optimistically: a concurrent change wins and
    /// this one fails with a conflict).
    pub(crate) async fn save_session(
        &self,
        session: &SessionInfo,
        data: &SessionData,
    ) -> ServiceResult<()> {
        let mut row = session.row.clone();
        row.version += 1;
        row.data =
            serde_json::to_string(data).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store.session_update(session.tenant, &row).await?;
        Ok(())
    }

    /// Ends one session (sign out).
    pub async fn end_session(&self, tenant: TenantId, secret: &str) -> ServiceResult<()> {
        if !secret.is_empty() && secret.len() <= 128 {
            let id = secret_hash(secret);
            let row = self.store.session_get(tenant, &id).await?;
            if self.store.session_delete(tenant, &id).await?
                && let Some(row) = row
            {
                self.sessions_ended(tenant, &[row]).await;
            }
        }
        Ok(())
    }

    /// "Sign out everywhere": revokes every session of the session's user.
    pub async fn end_all_my_sessions(&self, session: &SessionInfo) -> ServiceResult<u64> {
        self.end_user_sessions(
            session.tenant,
            session.user_id,
            None,
            tessera_cae::Reason::SessionsRevoked,
        )
        .await
    }

    pub async fn my_sessions(&self, session: &SessionInfo) -> ServiceResult<Vec<SessionView>> {
        let current = handle_of(&session.row);
        let mut views = self.session_views(session.tenant, session.user_id).await?;
        for view in &mut views {
            view.current = view.id == current;
        }
        Ok(views)
    }

    /// Signs out one of the session user's own sessions, by its handle; answers
    /// whether it was the session the request came with.
    pub async fn end_my_session(&self, session: &SessionInfo, handle: &str) -> ServiceResult<bool> {
        let rows = self
            .store
            .sessions_of_user(session.tenant, session.user_id, self.now())
            .await?;
        let Some(row) = rows.into_iter().find(|row| handle_of(row) == handle) else {
            return Err(ServiceError::NotFound {
                kind: "session",
                id: handle.chars().take(64).collect(),
            });
        };
        if self.store.session_delete(session.tenant, &row.id).await? {
            self.sessions_ended(session.tenant, std::slice::from_ref(&row))
                .await;
        }
        Ok(row.id == session.row.id)
    }

    pub(crate) async fn session_views(
        &self,
        tenant: TenantId,
        user: Uuid,
    ) -> ServiceResult<Vec<SessionView>> {
        let rows = self
            .store
            .sessions_of_user(tenant, user, self.now())
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                serde_json::from_str::<SessionData>(&row.data)
                    .ok()
                    .map(|data| view_of(row, &data))
            })
            .collect())
    }

    /// A caller context for a session's user, to run directory operations as them.
    pub async fn session_context(
        &self,
        session: &SessionInfo,
        correlation_id: String,
        client_address: Option<String>,
    ) -> ServiceResult<Context> {
        let mut reader = self.reader().await?;
        let grants = crate::directory::roles::grants_of(
            reader.as_mut(),
            session.tenant,
            session.user_id,
            self.now(),
        )
        .await?;
        // What the browser sign-in proved: its strengths, and the tenant's
        // authentication contexts they satisfy.
        let strengths = &session.data.strengths;
        let contexts =
            crate::directory::consent::auth_contexts(reader.as_mut(), session.tenant).await?;
        // As a token's: what the sign-in proved counts for a while after it.
        let fresh = self
            .now()
            .unix_seconds()
            .saturating_sub(session.auth_time.unix_seconds())
            <= crate::oidc::STEP_UP_MAX_AGE_SECONDS;
        let proof = if fresh {
            crate::SignInProof {
                mfa: strengths.contains(&tessera_authn::strength::MFA),
                authentication_contexts: tessera_oauth::acr::issued_acrs(
                    strengths,
                    &contexts,
                    Vec::new(),
                ),
            }
        } else {
            crate::SignInProof::default()
        };
        Ok(Context {
            tenant: session.tenant,
            caller: crate::Caller {
                principal: crate::Principal::User {
                    id: session.user_id,
                    user_principal_name: session.user_principal_name.clone(),
                },
                grants,
                credential: Some("session".to_string()),
                issued_credential: None,
                proof: Some(proof),
                protected: crate::kernel::protected_actions(reader.as_mut(), session.tenant)
                    .await?,
            },
            correlation_id,
            client_address,
        })
    }
}

/// A browser session's `sid` (OpenID Connect's claim; SAML's SessionIndex and
/// transient NameIDs derive from it): what stays the same while a browser signs
/// in again and again as one user, the `sid` of the first session of that line.
/// So a logout, or a check that a token's session lives, still finds an
/// application signed in before the latest sign-in.
pub(crate) fn lineage_of(session: &SessionInfo) -> String {
    row_sid(&session.row, &session.data)
}

/// The `sid` of a stored browser session (see `lineage_of`).
pub(crate) fn row_sid(row: &SessionRow, data: &SessionData) -> String {
    data.lineage.clone().unwrap_or_else(|| sid_of(&row.id))
}

/// The `sid` of a session row by its id alone: derived from the id, so logout
/// can name the session without revealing the id.
fn sid_of(session_id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(&tessera_core::crypto::sha256(format!("sid:{session_id}").as_bytes())[..16])
}

impl crate::SignIn {
    /// The authentication strengths a step-up must reach to satisfy `acr` (one of
    /// Tessera's `acr` values, or one of the tenant's authentication contexts):
    /// what a page does when an action answers `insufficient_user_authentication`.
    pub async fn strengths_for_acr(
        &self,
        tenant: TenantId,
        acr: &str,
    ) -> ServiceResult<Option<Vec<Uuid>>> {
        let own = tessera_oauth::acr::strengths_of_acr(acr);
        if !own.is_empty() {
            return Ok(Some(own));
        }
        let mut reader = self.reader().await?;
        let contexts = crate::directory::consent::auth_contexts(reader.as_mut(), tenant).await?;
        Ok(contexts
            .contexts
            .iter()
            .find(|c| c.id == acr)
            .map(|c| vec![c.strength_id]))
    }
}

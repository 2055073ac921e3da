//! Logout: RP-initiated (OpenID Connect RP-Initiated Logout 1.0) and back-channel
//! (OpenID Connect Back-Channel Logout 1.0). A browser session remembers the
//! applications it signed in to; whenever sessions end (sign-out, logout requested
//! by an application, "sign out everywhere", an administrator's revocation, a
//! credential change, a deleted user) each of those applications that registered a
//! `backchannelLogoutUri` is sent a signed logout token naming the session (`sid`)
//! and the user (`sub`). Delivery runs in the background with one retry, so ending
//! a session never waits on an application.

use serde_json::{Value, json};
use tessera_core::TenantId;
use tessera_core::crypto::secret_hash;
use tessera_directory::model::ApplicationData;
use tessera_oauth::jws;
use tessera_oauth::keys::Algorithm;
use tessera_store::SessionRow;
use uuid::Uuid;

use super::application_by_app_id;
use crate::Oidc;
use crate::codec;
use crate::error::ServiceResult;
use crate::sign_in::SessionInfo;

pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Logout tokens are good for two minutes.
const LOGOUT_TOKEN_SECONDS: i64 = 120;

/// Where RP-initiated logout sends the browser afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// To the application's registered post-logout redirect URI.
    Redirect(String),
    /// To Tessera's own "signed out" page.
    SignedOut,
}

/// The application a logout request comes from, as far as it can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// The client the (verified) `id_token_hint` was issued to, or `client_id`.
    pub client_id: Option<String>,
    /// The hint's `sub` and `sid`, when a valid hint came.
    pub hinted_user: Option<Uuid>,
    pub hinted_sid: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

impl Oidc {
    /// Records that a session signed in to an application (for back-channel logout).
    pub(crate) async fn remember_app(&self, session: &SessionInfo, client_id: &str) {
        self.sign_in.remember_app(session, client_id).await;
    }

    /// Reads a logout request: the ID token hint is checked against this tenant's
    /// keys (an expired one is still a fine hint), and a post-logout redirect URI
    /// is kept only if that client registered it exactly.
    pub async fn logout_request(
        &self,
        tenant: TenantId,
        issuer: &str,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> ServiceResult<LogoutRequest> {
        let mut request = LogoutRequest {
            client_id: client_id.map(str::to_string),
            hinted_user: None,
            hinted_sid: None,
            post_logout_redirect_uri: None,
            state: state.map(|s| s.chars().take(512).collect()),
        };
        if let Some(hint) = id_token_hint
            && let Some(claims) = self.verify_own_jwt(tenant, hint).await
            && claims.get("iss").and_then(Value::as_str) == Some(issuer)
        {
            let aud = match claims.get("aud") {
                Some(Value::String(aud)) => Some(aud.clone()),
                Some(Value::Array(auds)) => {
                    auds.first().and_then(Value::as_str).map(str::to_string)
                }
                _ => None,
            };
            if client_id.is_none() || client_id == aud.as_deref() {
                request.client_id = aud;
                request.hinted_user = claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok());
                request.hinted_sid = claims
                    .get("sid")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
        }
        if let (Some(uri), Some(client_id)) = (post_logout_redirect_uri, &request.client_id) {
            let mut reader = self.reader().await?;
            if let Ok(Some(app)) = application_by_app_id(reader.as_mut(), tenant, client_id).await {
                let data: ApplicationData = codec::data(&app)?;
                if data.spec.post_logout_redirect_uris.iter().any(|u| u == uri) {
                    request.post_logout_redirect_uri = Some(uri.to_string());
                }
            }
        }
        Ok(request)
    }

    /// Whether a logout request may end `session` without asking the user: it
    /// carries a valid ID token hint for this very user.
    pub fn logout_is_confirmed(request: &LogoutRequest, session: &SessionInfo) -> bool {
        request.hinted_user == Some(session.user_id)
    }

    /// Ends the browser session and answers where to go. The session is the
    /// browser's (its cookie), else the one a valid ID token hint names by `sid`:
    /// an application's cross-site logout form arrives without the cookie, and
    /// its hint still says which session to end.
    pub async fn logout(
        &self,
        tenant: TenantId,
        session_secret: Option<&str>,
        request: &LogoutRequest,
    ) -> ServiceResult<LogoutOutcome> {
        match session_secret {
            Some(secret) => self.sign_in.end_session(tenant, secret).await?,
            None => {
                if let (Some(user), Some(sid)) = (request.hinted_user, &request.hinted_sid) {
                    self.end_session_by_sid(tenant, user, sid).await?;
                }
            }
        }
        Ok(match &request.post_logout_redirect_uri {
            Some(uri) => {
                let mut params = Vec::new();
                if let Some(state) = &request.state {
                    params.push(("state", state.clone()));
                }
                LogoutOutcome::Redirect(if params.is_empty() {
                    uri.clone()
                } else {
                    tessera_oauth::authorize::redirect_with(uri, &params)
                })
            }
            None => LogoutOutcome::SignedOut,
        })
    }

    /// Ends the user's browser session whose `sid` is given, and tells its
    /// applications; true if one ended.
    pub(crate) async fn end_session_by_sid(
        &self,
        tenant: TenantId,
        user: Uuid,
        sid: &str,
    ) -> ServiceResult<bool> {
        let rows = self
            .store
            .sessions_of_user(tenant, user, self.now())
            .await?;
        // The browser session with that sid (which stays when the user signs in
        // again in the same browser).
        let Some(row) = rows.into_iter().find(|row| {
            serde_json::from_str::<crate::sign_in::sessions::SessionData>(&row.data)
                .is_ok_and(|data| crate::sign_in::row_sid(row, &data) == sid)
        }) else {
            return Ok(false);
        };
        if self.store.session_delete(tenant, &row.id).await? {
            self.notify_ended(tenant, std::slice::from_ref(&row)).await;
            return Ok(true);
        }
        Ok(false)
    }

    /// An ID token this tenant signed, by its key; `None` if not ours.
    async fn verify_own_jwt(
        &self,
        tenant: TenantId,
        token: &str,
    ) -> Option<serde_json::Map<String, Value>> {
        let (header, _) = jws::peek(token).ok()?;
        // Only an ID token is a hint (not an access token or a logout token).
        if header.get("typ").and_then(Value::as_str) != Some("JWT") {
            return None;
        }
        let kid = header.get("kid").and_then(Value::as_str)?;
        let set = self.key_set(tenant).await.ok()?;
        let jwk = set
            .jwks
            .get("keys")?
            .as_array()?
            .iter()
            .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))?
            .clone();
        match jws::verify(token, &jwk, &Algorithm::ALL).ok()? {
            Value::Object(claims) => Some(claims),
            _ => None,
        }
    }

    /// Sends back-channel logout tokens for ended sessions, in the background.
    pub(crate) async fn notify_ended(&self, tenant: TenantId, rows: &[SessionRow]) {
        let Some(http) = self.external_keys.fetcher.get().cloned() else {
            return;
        };
        for row in rows {
            let Some(user) = row.user_id else { continue };
            let Ok(data) = serde_json::from_str::<crate::sign_in::sessions::SessionData>(&row.data)
            else {
                continue; // not a browser session (a refresh token family, a code)
            };
            for client_id in &data.apps {
                let Some(uri) = self.backchannel_uri(tenant, client_id).await else {
                    continue;
                };
                let issued = self.now().unix_seconds();
                let claims = json!({
                    "iss": self.public_url(),
                    "aud": client_id,
                    "iat": issued,
                    "exp": issued + LOGOUT_TOKEN_SECONDS,
                    "jti": Uuid::new_v4(),
                    "sub": user,
                    "sid": crate::sign_in::row_sid(row, &data),
                    "events": { BACKCHANNEL_EVENT: {} },
                });
                let token = match self.sign_token(tenant, "logout+jwt", &claims).await {
                    Ok(token) => token,
                    Err(error) => {
                        tracing::warn!(error = %error.description, "cannot sign a logout token");
                        continue;
                    }
                };
                let http = http.clone();
                let target = secret_hash(&uri)[..12].to_string();
                tokio::spawn(async move {
                    for attempt in 0..2 {
                        match http.post_form(&uri, &[("logout_token", &token)]).await {
                            Ok(status) if (200..300).contains(&status) => return,
                            Ok(status) => {
                                tracing::warn!(%target, status, attempt, "back-channel logout refused")
                            }
                            Err(error) => {
                                tracing::warn!(%target, %error, attempt, "back-channel logout failed")
                            }
                        }
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    }
                });
            }
        }
    }

    async fn backchannel_uri(&self, tenant: TenantId, client_id: &str) -> Option<String> {
        let mut reader = self.reader().await.ok()?;
        let app = application_by_app_id(reader.as_mut(), tenant, client_id)
            .await
            .ok()??;
        let data: ApplicationData = codec::data(&app).ok()?;
        data.spec.backchannel_logout_uri
    }
}

#[async_trait::async_trait]
impl crate::kernel::SessionsEnded for Oidc {
    async fn sessions_ended(&self, tenant: TenantId, sessions: &[SessionRow]) {
        self.notify_ended(tenant, sessions).await;
    }
}

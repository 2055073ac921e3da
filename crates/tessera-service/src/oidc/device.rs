//! The device authorization grant (RFC 8628) for the CLI and devices without a
//! browser: the device gets a device code and shows the user a short code; the user
//! signs in on another screen, enters the code at `/device`, sees which application
//! asks, and approves or denies; the device polls the token endpoint meanwhile.
//!
//! Two rows in the session store: the device code's (`dev:` + its hash) and the
//! user code's (`usr:` + its hash, pointing at the first). Every change of state is
//! a versioned update, so one approval and one token issuance happen, on any node.

use std::collections::BTreeMap;
use tessera_oauth::error::ErrorCode;

use serde::{Deserialize, Serialize};
use tessera_core::crypto::{fill_random, generate_secret, secret_hash};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::model::ApplicationData;
use tessera_oauth::authorize::parse_scopes;
use tessera_oauth::dpop::Proof;
use tessera_oauth::resource::{consent_scopes, requested_resource};
use tessera_oauth::token::OAuthError;
use tessera_oauth::{acr, device};
use tessera_store::SessionRow;

use super::authorize::UserSignIn;
use super::grants::{FamilyData, TokenClient};
use super::{CLI_CLIENT_ID, TokenContext, TokenResponse, application_by_app_id, server_error};
use crate::Oidc;
use crate::codec;
use crate::error::{ServiceError, ServiceResult};
use crate::sign_in::SessionInfo;

const DEVICE_PREFIX: &str = "dev:";
const USER_CODE_PREFIX: &str = "usr:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Status {
    Pending,
    Approved,
    Denied,
    Issued,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceData {
    client_id: String,
    client_name: String,
    confidential: bool,
    scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sign_in: Option<UserSignIn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_poll: Option<Timestamp>,
    /// What the device asked the sign-in to prove (`acr_values`, any one of
    /// them): an authentication context or one of Tessera's `acr` values, as a
    /// step-up after an RFC 9470 challenge asks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    acr_values: Vec<String>,
}

/// The answer to a device authorization request (RFC 8628 §3.2).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// What the user is asked to approve.
#[derive(Debug, Clone)]
pub struct DeviceRequestView {
    pub user_code: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    /// Whether the device asks for a stronger sign-in (a step-up, `acr_values`).
    pub steps_up: bool,
}

impl Oidc {
    /// `POST /devicecode` (RFC 8628 §3.1).
    pub async fn device_authorization(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
    ) -> Result<DeviceAuthorization, OAuthError> {
        let client = self.token_client(ctx, authorization, form).await?;
        let client_id = client.client_id();
        let scopes = parse_scopes(form.get("scope").map(String::as_str).unwrap_or(""))?;
        let resources: Vec<String> = form.get("resource").cloned().into_iter().collect();
        let resource = requested_resource(&scopes, &resources)?;
        let mut reader = self.reader().await.map_err(server_error)?;
        let client_name = if client_id == CLI_CLIENT_ID {
            super::check_builtin_request(
                crate::directory::builtin::cli_client_id(),
                &scopes,
                &resources,
            )?;
            "Tessera CLI".to_string()
        } else {
            let app = application_by_app_id(reader.as_mut(), ctx.tenant, &client_id)
                .await?
                .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient, "unknown client"))?;
            let app_data: ApplicationData = codec::data(&app).map_err(server_error)?;
            if matches!(client, TokenClient::Public(_)) && !app_data.spec.is_fallback_public_client
            {
                return Err(OAuthError::new(
                    ErrorCode::InvalidClient,
                    "this application must authenticate (client_secret or client_assertion): \
                     to use the device flow without a credential, set its isFallbackPublicClient \
                     to true",
                ));
            }
            self.check_app_access(reader.as_mut(), ctx.tenant, &app_data, &scopes, &resources)
                .await?;
            app_data.spec.display_name
        };
        self.check_resource(reader.as_mut(), ctx.tenant, &scopes, &resources)
            .await?;
        let acr_values = match form.get("acr_values") {
            Some(asked) => {
                let contexts =
                    crate::directory::consent::auth_contexts(reader.as_mut(), ctx.tenant)
                        .await
                        .map_err(server_error)?;
                requested_acrs(asked, &contexts)?
            }
            None => Vec::new(),
        };
        drop(reader);
        let device_code = generate_secret("").map_err(server_error)?;
        let mut random = [0u8; 32];
        fill_random(&mut random).map_err(server_error)?;
        let user_code = device::user_code(&random)
            .ok_or_else(|| server_error("the random generator gave too many high bytes"))?;
        let now = self.now();
        let expires = now.plus_seconds(device::EXPIRES_SECONDS);
        let device_id = format!("{DEVICE_PREFIX}{}", device_code.hash);
        let data = DeviceData {
            client_id,
            client_name,
            confidential: matches!(client, TokenClient::Confidential(_)),
            scopes,
            resource,
            status: Status::Pending,
            sign_in: None,
            last_poll: None,
            acr_values,
        };
        let row = |id: String, data: String| SessionRow {
            id,
            user_id: None,
            created: now,
            last_seen: now,
            expires,
            revoked: None,
            version: 1,
            data,
        };
        self.store
            .session_insert(
                ctx.tenant,
                &row(
                    device_id.clone(),
                    serde_json::to_string(&data).map_err(server_error)?,
                ),
            )
            .await
            .map_err(server_error)?;
        self.store
            .session_insert(
                ctx.tenant,
                &row(
                    format!("{USER_CODE_PREFIX}{}", secret_hash(&user_code)),
                    device_id,
                ),
            )
            .await
            .map_err(server_error)?;
        let verification_uri = format!("{}/device", ctx.issuer);
        Ok(DeviceAuthorization {
            device_code: device_code.secret.expose().to_string(),
            verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
            user_code,
            verification_uri,
            expires_in: device::EXPIRES_SECONDS,
            interval: device::INTERVAL_SECONDS,
        })
    }

    /// The pending request a user code names, for the signed-in user to confirm.
    /// Wrong codes count against the session (RFC 8628 §5.1).
    pub async fn device_request(
        &self,
        session: &SessionInfo,
        typed: &str,
    ) -> ServiceResult<Option<DeviceRequestView>> {
        let now = self.now();
        let attempts_key = format!("device-attempts:{}", session.id);
        if let Some(counter) = self
            .store
            .counter_get(session.tenant, &attempts_key)
            .await?
            && counter.value >= device::MAX_ATTEMPTS
            && counter.updated.plus_seconds(device::EXPIRES_SECONDS) > now
        {
            return Err(ServiceError::Conflict {
                message: "too many wrong codes: wait ten minutes and try again".to_string(),
            });
        }
        let found = match device::normalize(typed) {
            Some(code) => self.device_row(session.tenant, &code).await?,
            None => None,
        };
        let Some((_, data, code)) = found.filter(|(_, data, _)| data.status == Status::Pending)
        else {
            self.store
                .counter_increment(
                    session.tenant,
                    &attempts_key,
                    now,
                    now.plus_seconds(-device::EXPIRES_SECONDS),
                )
                .await?;
            return Ok(None);
        };
        let resources: Vec<String> = data.resource.clone().into_iter().collect();
        Ok(Some(DeviceRequestView {
            user_code: code,
            client_name: data.client_name,
            // What the user approves, resource included.
            scopes: consent_scopes(&data.scopes, &resources),
            steps_up: !data.acr_values.is_empty(),
        }))
    }

    async fn device_row(
        &self,
        tenant: TenantId,
        code: &str,
    ) -> ServiceResult<Option<(SessionRow, DeviceData, String)>> {
        let now = self.now();
        let Some(pointer) = self
            .store
            .session_get(tenant, &format!("{USER_CODE_PREFIX}{}", secret_hash(code)))
            .await?
            .filter(|row| row.expires > now)
        else {
            return Ok(None);
        };
        let Some(row) = self
            .store
            .session_get(tenant, &pointer.data)
            .await?
            .filter(|row| row.expires > now)
        else {
            return Ok(None);
        };
        let data: DeviceData =
            serde_json::from_str(&row.data).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(Some((row, data, code.to_string())))
    }

    /// The user approves (or denies) the device's request.
    pub async fn device_decide(
        &self,
        session: &SessionInfo,
        typed: &str,
        approve: bool,
        correlation_id: &str,
    ) -> ServiceResult<bool> {
        let Some(code) = device::normalize(typed) else {
            return Ok(false);
        };
        let Some((row, mut data, _)) = self.device_row(session.tenant, &code).await? else {
            return Ok(false);
        };
        if data.status != Status::Pending {
            return Ok(false);
        }
        // A device that asked for more than this sign-in proved is approved
        // only after a step-up (the page sends the user through one), and
        // nothing (consent included) is recorded before.
        if approve && !data.acr_values.is_empty() {
            let contexts = {
                let mut reader = self.reader().await?;
                crate::directory::consent::auth_contexts(reader.as_mut(), session.tenant).await?
            };
            // The step-up is for now: a session signed in longer ago than a
            // token's proof counts signs in again, even if strong enough.
            let fresh = self.now().unix_seconds() - session.auth_time.unix_seconds()
                <= super::inspect::STEP_UP_MAX_AGE_SECONDS;
            if !fresh
                || !data
                    .acr_values
                    .iter()
                    .any(|wanted| acr::acr_satisfied(wanted, &session.data.strengths, &contexts))
            {
                return Err(ServiceError::InsufficientAuthentication {
                    acr_values: data.acr_values.join(" "),
                    message: "the device asks for a stronger sign-in than this session's"
                        .to_string(),
                });
            }
        }
        // Approving is consenting, within the tenant's consent policy (Tessera's own
        // CLI needs none).
        if approve
            && data.client_id != CLI_CLIENT_ID
            && let Ok(client) = data.client_id.parse::<tessera_core::AppId>()
        {
            let resources: Vec<String> = data.resource.clone().into_iter().collect();
            let mut reader = self.reader().await?;
            let need = crate::app_sign_in::consent_needed(
                reader.as_mut(),
                session.tenant,
                client,
                session.user_id,
                &consent_scopes(&data.scopes, &resources),
                false,
            )
            .await?;
            drop(reader);
            let missing = need.missing;
            if !missing.is_empty() {
                if !need.user_may {
                    return Err(ServiceError::Conflict {
                        message: "an administrator must approve this application's access first"
                            .to_string(),
                    });
                }
                let context = self
                    .sign_in
                    .session_context(
                        session,
                        correlation_id.to_string(),
                        session.data.client_address.clone(),
                    )
                    .await?;
                self.directory
                    .record_user_consent(&context, client, session.user_id, &missing)
                    .await?;
            }
        }
        let strengths = session.data.strengths.clone();
        // The tenant's authentication contexts the sign-in's strengths satisfy
        // (what a protected action or a PIM activation asks of the token).
        let contexts = {
            let mut reader = self.reader().await?;
            crate::directory::consent::auth_contexts(reader.as_mut(), session.tenant).await?
        };
        let acrs = acr::issued_acrs(&strengths, &contexts, Vec::new());
        let sign_in = UserSignIn {
            user_id: session.user_id,
            sid: crate::sign_in::lineage_of(session),
            auth_time: session.auth_time,
            amr: acr::amr_of(&session.methods, &strengths),
            acr: acr::acr_of(&strengths).to_string(),
            acrs,
            methods: session
                .methods
                .iter()
                .map(|m| m.method.mode.to_string())
                .collect(),
            strengths,
            session_controls: None,
            location_fence: Vec::new(),
            user_agent: session.data.user_agent.clone(),
            device_thumbprint: None,
            sign_in_risk: session.data.sign_in_risk,
        };
        data.status = if approve {
            Status::Approved
        } else {
            Status::Denied
        };
        data.sign_in = approve.then(|| sign_in.clone());
        let mut updated = row;
        updated.version += 1;
        updated.user_id = Some(session.user_id);
        updated.data =
            serde_json::to_string(&data).map_err(|e| ServiceError::Internal(e.to_string()))?;
        if self
            .store
            .session_update(session.tenant, &updated)
            .await
            .is_err()
        {
            return Ok(false);
        }
        if approve {
            let entry = self.user_app_entry(
                &session.user_principal_name,
                &sign_in,
                &data.client_name,
                &data.client_id,
                correlation_id,
                session.data.client_address.clone(),
                session.data.user_agent.clone(),
                "interactiveUser",
            );
            self.sign_in.append_log(session.tenant, &entry).await?;
        }
        Ok(true)
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4).
    pub(crate) async fn device_grant(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
        proof: Option<&Proof>,
    ) -> Result<TokenResponse, OAuthError> {
        let device_code = form
            .get("device_code")
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidRequest, "device_code is required"))?;
        let client = self.token_client(ctx, authorization, form).await?;
        if device_code.len() > 128 {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "unknown device code",
            ));
        }
        let id = format!("{DEVICE_PREFIX}{}", secret_hash(device_code));
        let now = self.now();
        let row = self
            .store
            .session_get(ctx.tenant, &id)
            .await
            .map_err(server_error)?
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidGrant, "unknown device code"))?;
        let mut data: DeviceData = serde_json::from_str(&row.data).map_err(server_error)?;
        if data.client_id != client.client_id() {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "the device code was issued to another client",
            ));
        }
        if data.confidential && !matches!(client, TokenClient::Confidential(_)) {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "this client must authenticate",
            ));
        }
        if now >= row.expires {
            return Err(OAuthError::new(
                ErrorCode::ExpiredToken,
                "the device code has expired: start again",
            ));
        }
        match data.status {
            Status::Denied => {
                return Err(OAuthError::new(
                    ErrorCode::AccessDenied,
                    "the user denied the request",
                ));
            }
            Status::Issued => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidGrant,
                    "the device code was already used",
                ));
            }
            Status::Pending => {
                let too_fast = data.last_poll.is_some_and(|last| {
                    now.unix_micros() - last.unix_micros()
                        < (device::INTERVAL_SECONDS - 1) * 1_000_000
                });
                data.last_poll = Some(now);
                let mut polled = row.clone();
                polled.version += 1;
                polled.data = serde_json::to_string(&data).map_err(server_error)?;
                // A lost race here only loses a poll time.
                let _ = self.store.session_update(ctx.tenant, &polled).await;
                return Err(if too_fast {
                    OAuthError::new(ErrorCode::SlowDown, "poll less often")
                } else {
                    OAuthError::new(ErrorCode::AuthorizationPending, "waiting for the user")
                });
            }
            Status::Approved => {}
        }
        let sign_in = data
            .sign_in
            .clone()
            .ok_or_else(|| server_error("an approved device code without its sign-in"))?;
        data.status = Status::Issued;
        let mut issued = row.clone();
        issued.version += 1;
        issued.data = serde_json::to_string(&data).map_err(server_error)?;
        if self
            .store
            .session_update(ctx.tenant, &issued)
            .await
            .is_err()
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "the device code was already used",
            ));
        }
        let user = self.enabled_user(ctx.tenant, sign_in.user_id).await?;
        self.require_dpop_if_asked(ctx.tenant, &data.client_id, proof)
            .await?;
        let mut family = FamilyData {
            client_id: data.client_id.clone(),
            confidential: data.confidential,
            scopes: data.scopes.clone(),
            resource: data.resource.clone(),
            sign_in,
            current: String::new(),
            rotated: Vec::new(),
            jkt: if data.confidential {
                None
            } else {
                proof.map(|p| p.jkt.clone())
            },
            actor: None,
            requested_claims: Vec::new(),
            last_network: None,
            client_capabilities: Vec::new(),
        };
        // Conditional Access for the device code flow (a policy can block it, as
        // for device-code phishing).
        let decided = self
            .user_grant_allowed(
                ctx,
                &family,
                tessera_ca::engine::ClientApp::MobileAppsAndDesktopClients,
                true,
            )
            .await?;
        family.sign_in.location_fence = decided.location_fence;
        let refresh_token = if data.scopes.iter().any(|s| s == "offline_access") {
            let family_id = super::grants::family_of_code(&secret_hash(device_code));
            Some(
                self.start_family(ctx.tenant, &family_id, &family, now)
                    .await?,
            )
        } else {
            None
        };
        let openid = data.scopes.iter().any(|s| s == "openid");
        self.user_tokens(
            ctx,
            &family,
            &user,
            None,
            openid,
            refresh_token,
            proof,
            None,
        )
        .await
    }
}

/// A device authorization's `acr_values`: at most five, each the tenant's
/// authentication context or one of Tessera's `acr` values.
fn requested_acrs(
    asked: &str,
    contexts: &tessera_directory::model::AuthenticationContexts,
) -> Result<Vec<String>, OAuthError> {
    let values: Vec<String> = asked
        .split(' ')
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    if values.len() > 5 {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "acr_values names at most five values",
        ));
    }
    for value in &values {
        let known = contexts.contexts.iter().any(|c| &c.id == value)
            || acr::ACR_VALUES.iter().any(|(known, _)| known == value);
        if !known {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "acr_values names an authentication context or acr this tenant does not have",
            ));
        }
    }
    Ok(values)
}

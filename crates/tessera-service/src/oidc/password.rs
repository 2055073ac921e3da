//! The legacy resource-owner password grant (RFC 6749 §4.3), for applications that
//! opt in (`allowPasswordGrant`). It exists so that Conditional Access can govern
//! old clients: it is a legacy client type (`other`), security defaults block it,
//! and no policy requirement beyond a password can be met through it. No refresh
//! token is issued.

use std::collections::BTreeMap;
use tessera_oauth::error::ErrorCode;

use tessera_core::SecretString;
use tessera_directory::model::ApplicationData;
use tessera_oauth::authorize::parse_scopes;
use tessera_oauth::dpop::Proof;
use tessera_oauth::resource::{consent_scopes, requested_resource};
use tessera_oauth::token::OAuthError;

use super::authorize::UserSignIn;
use super::grants::{FamilyData, TokenClient};
use super::{TokenContext, TokenResponse, application_by_app_id, server_error};
use crate::Oidc;
use crate::codec;
use crate::sign_in::SignInContext;

impl Oidc {
    /// `grant_type=password`.
    pub(crate) async fn password_grant(
        &self,
        ctx: &TokenContext,
        authorization: Option<&str>,
        form: &BTreeMap<String, String>,
        proof: Option<&Proof>,
    ) -> Result<TokenResponse, OAuthError> {
        let client = self.token_client(ctx, authorization, form).await?;
        let client_id = client.client_id();
        let mut reader = self.reader().await.map_err(server_error)?;
        let app = application_by_app_id(reader.as_mut(), ctx.tenant, &client_id)
            .await?
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidClient, "unknown client"))?;
        let app: ApplicationData = codec::data(&app).map_err(server_error)?;
        if !app.spec.allow_password_grant {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this application may not use the password grant",
            ));
        }
        let (Some(username), Some(password)) = (form.get("username"), form.get("password")) else {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "username and password are required",
            ));
        };
        let scopes = parse_scopes(form.get("scope").map(String::as_str).unwrap_or("openid"))?;
        if scopes.iter().any(|s| s == "offline_access") {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "the password grant issues no refresh token",
            ));
        }
        let resources: Vec<String> = form.get("resource").cloned().into_iter().collect();
        let resource = requested_resource(&scopes, &resources)?;
        if resource.as_deref() == Some(super::MANAGEMENT_RESOURCE) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "the management API cannot be reached with the password grant",
            ));
        }
        self.check_resource(reader.as_mut(), ctx.tenant, &scopes, &resources)
            .await?;
        drop(reader);
        let sign_in_ctx = SignInContext {
            tenant: ctx.tenant,
            correlation_id: ctx.correlation_id.clone(),
            client_address: ctx.client_address.clone(),
            user_agent: None,
            previous_session: None,
        };
        let (user_id, _, method) = match self
            .sign_in
            .authenticate_password(&sign_in_ctx, username, SecretString::new(password.clone()))
            .await
            .map_err(server_error)?
        {
            Ok(found) => found,
            Err(_) => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidGrant,
                    "the user name or password is not right",
                ));
            }
        };
        let user = self.enabled_user(ctx.tenant, user_id).await?;
        // Consent must exist already: there is no page to ask on.
        let mut reader = self.reader().await.map_err(server_error)?;
        let granted = match client_id.parse() {
            Ok(client) => crate::directory::consent::granted_scopes(
                reader.as_mut(),
                ctx.tenant,
                client,
                user_id,
            )
            .await
            .map_err(server_error)?,
            // No grant can name a client id that is not an application id.
            Err(_) => Vec::new(),
        };
        drop(reader);
        if consent_scopes(&scopes, &resources)
            .iter()
            .any(|s| !granted.contains(s))
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidGrant,
                "consent_required: the user has not consented to this application",
            ));
        }
        self.app_roles_of_user(ctx.tenant, &client_id, user_id, true)
            .await
            .map_err(|e| OAuthError::new(ErrorCode::InvalidGrant, e.description))?;
        let strengths = self
            .sign_in
            .satisfied_strengths(ctx.tenant, std::slice::from_ref(&method))
            .await
            .map_err(server_error)?;
        let now = self.now();
        let mut family = FamilyData {
            client_id: client_id.clone(),
            confidential: matches!(client, TokenClient::Confidential(_)),
            scopes,
            resource,
            sign_in: UserSignIn {
                user_id,
                sid: String::new(),
                auth_time: now,
                amr: vec!["pwd".to_string()],
                acr: tessera_oauth::acr::acr_of(&strengths).to_string(),
                acrs: Vec::new(),
                methods: vec![method.method.mode.to_string()],
                strengths,
                session_controls: None,
                location_fence: Vec::new(),
                user_agent: None,
                device_thumbprint: None,
                sign_in_risk: None,
            },
            current: String::new(),
            rotated: Vec::new(),
            jkt: proof.map(|p| p.jkt.clone()),
            actor: None,
            requested_claims: Vec::new(),
            last_network: None,
            client_capabilities: Vec::new(),
        };
        // The request is the sign-in: what the failures before it and its
        // address say is its risk.
        // Never failing the grant: without the counters, it has no such risk.
        let (detections, remembered) = match self
            .sign_in
            .risk
            .failure_detections(
                ctx.tenant,
                Some(user_id),
                username,
                ctx.client_address.as_deref(),
            )
            .await
        {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(tenant = %ctx.tenant, %error, "cannot read the failures before a password grant");
                (Vec::new(), tessera_risk::RiskLevel::None)
            }
        };
        // The log entry adds the address's detections itself.
        let mut all = detections.clone();
        all.extend(
            self.sign_in
                .risk
                .address_detections(ctx.client_address.as_deref()),
        );
        let sign_in_risk = tessera_risk::aggregate::sign_in_risk(&all).max(remembered);
        let decided = match self
            .user_grant_allowed_at(
                ctx,
                &family,
                tessera_ca::engine::ClientApp::Other,
                false,
                sign_in_risk,
            )
            .await
        {
            Ok(decided) => decided,
            Err(refused) => {
                // Refused or not, what the failures said is recorded: a
                // blocked brute force is still one.
                let facts = crate::risk::SignInFacts {
                    sign_in: None,
                    at: now,
                    user_id: Some(user_id),
                    user_principal_name: &user.user_principal_name,
                    client_address: ctx.client_address.as_deref(),
                    correlation_id: &ctx.correlation_id,
                };
                if let Err(error) = self.sign_in.risk.record(ctx.tenant, &facts, &all).await {
                    tracing::warn!(tenant = %ctx.tenant, %error, "cannot record a password grant's risk detections");
                }
                return Err(refused);
            }
        };
        family.sign_in.location_fence = decided.location_fence.clone();
        let openid = family.scopes.iter().any(|s| s == "openid");
        let response = self
            .user_tokens(ctx, &family, &user, None, openid, None, proof, None)
            .await?;
        let mut entry = self.user_app_entry(
            &user.user_principal_name,
            &family.sign_in,
            &app.spec.display_name,
            &client_id,
            &ctx.correlation_id,
            ctx.client_address.clone(),
            None,
            "interactiveUser",
        );
        entry.conditional_access_status = Some(decided.status().to_string());
        entry.applied_conditional_access_policies = Some(decided.log_value());
        self.sign_in
            .append_log_with(ctx.tenant, &entry, detections)
            .await
            .map_err(server_error)?;
        Ok(response)
    }
}

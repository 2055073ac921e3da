//! Tessera as a receiver of shared signals: a transmitter an administrator
//! names (a device manager, an endpoint-detection tool, another identity
//! provider), push or poll, each SET verified against the transmitter's keys
//! and the audience, remembered by `jti` so a replay is refused, then acted
//! on:
//!
//! | event | action |
//! |---|---|
//! | CAEP device-compliance-change | the device's `isCompliant` |
//! | RISC credential-compromise | a high risk detection (`investigationsThreatIntelligence`) |
//! | RISC account-disabled (hijacking: high), account-credential-change-required | a medium risk detection |
//! | CAEP session-revoked, RISC sessions-revoked | the user's sessions and tokens end |
//! | anything else (assurance-level-change, credential-change...) | recorded |
//!
//! Every SET taken or refused is audited (`signal.receive`) with what was
//! done or why not. Users are found by `iss_sub` with Tessera's own issuer
//! (the object id) or by email (principal name, then mail); devices by
//! their object id (`opaque`, or a complex subject's `device`).
//!
//! Stored as `Kind::SignalReceiver` (key1: the transmitter's issuer).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_directory::authz::Target;
use tessera_directory::roles::action;
use tessera_oauth::keys::Algorithm;
use tessera_ssf::SsfError;
use tessera_ssf::events::EventType;
use tessera_ssf::set::Received;
use tessera_ssf::stream::Method;
use tessera_ssf::subject::SubjectId;
use tessera_store::{Kind, Record, SessionRow};
use uuid::Uuid;

use super::Signals;
use crate::codec::{self, Keys, Versioned};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

/// The context a transmitter credential is sealed for.
const CREDENTIAL_CONTEXT: &str = "ssf-transmitter-credential";
/// How long fetched transmitter keys are used before they are fetched again.
const JWKS_SECONDS: i64 = 300;
/// The event types Tessera asks a transmitter for.
const WANTED: [EventType; 7] = [
    EventType::DeviceComplianceChange,
    EventType::CredentialCompromise,
    EventType::SessionRevoked,
    EventType::SessionsRevoked,
    EventType::AccountDisabled,
    EventType::AssuranceLevelChange,
    EventType::CredentialChange,
];
/// The algorithms a transmitter may sign with.
const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256];
/// Most transmitters a tenant receives from.
const MAX_RECEIVERS: usize = 20;

/// A transmitter to receive from, as an administrator names it.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiverInput {
    pub display_name: String,
    /// The transmitter's issuer (its metadata is at
    /// `/.well-known/ssf-configuration` below it).
    pub issuer: String,
    /// `push` (it POSTs to Tessera) or `poll` (Tessera asks it).
    pub delivery: String,
    /// The `aud` its SETs carry; Tessera's issuer when not given.
    #[serde(default)]
    pub audience: Option<String>,
    /// A bearer token for its stream management and poll endpoints.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Or a client-credentials client at its token endpoint.
    #[serde(default)]
    pub client_credentials: Option<ClientCredentialsInput>,
    /// A stream it already made for Tessera: where to poll.
    #[serde(default)]
    pub poll_endpoint: Option<String>,
    /// Create the stream at the transmitter (needs a credential); on by
    /// default when one is given and no poll endpoint is.
    #[serde(default)]
    pub create_stream: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCredentialsInput {
    pub token_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredClient {
    token_endpoint: String,
    client_id: String,
    secret_sealed: String,
    scope: Option<String>,
}

/// A transmitter as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceivedData {
    display_name: String,
    issuer: String,
    audience: String,
    delivery: Method,
    jwks_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    configuration_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    poll_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stream_id: Option<String>,
    /// The hash of the bearer secret a push must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    push_secret_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bearer_sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client: Option<StoredClient>,
}

/// What changes as a transmitter's SETs come (a session-store row
/// `ssfr:<id>`, not the audited record): counts, errors, its keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceivedState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jwks: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jwks_fetched: Option<Timestamp>,
    #[serde(default)]
    received: u64,
    #[serde(default)]
    refused: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_received_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_verified_at: Option<Timestamp>,
}

fn received_key(id: Uuid) -> String {
    format!("ssfr:{id}")
}

/// A transmitter Tessera receives from, as administrators see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReceivedStreamView {
    pub id: Uuid,
    pub display_name: String,
    pub issuer: String,
    pub audience: String,
    /// `push` or `poll`.
    pub delivery: String,
    /// Where the transmitter pushes (push).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    pub received: u64,
    pub refused: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_received_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_error_date_time: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_verified_date_time: Option<Timestamp>,
    /// The bearer secret the transmitter must send with each push: shown
    /// once, when the receiver is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_secret: Option<String>,
    pub version: i64,
}

fn url_ok(signals: &Signals, text: &str) -> bool {
    tessera_ssf::stream::endpoint_allowed(text, signals.http_loopback())
}

fn bad(field: &str, message: &str) -> ServiceError {
    ServiceError::invalid(field, message)
}

impl Signals {
    fn received_view(
        &self,
        record: &Record,
        data: &ReceivedData,
        state: &ReceivedState,
        secret: Option<String>,
    ) -> ReceivedStreamView {
        ReceivedStreamView {
            id: record.id,
            display_name: data.display_name.clone(),
            issuer: data.issuer.clone(),
            audience: data.audience.clone(),
            delivery: match data.delivery {
                Method::Push => "push",
                Method::Poll => "poll",
            }
            .to_string(),
            push_endpoint: (data.delivery == Method::Push)
                .then(|| self.endpoint(&format!("receive/{}", record.id))),
            poll_endpoint: data.poll_endpoint.clone(),
            stream_id: data.stream_id.clone(),
            received: state.received,
            refused: state.refused,
            last_received_date_time: state.last_received_at,
            last_error: state.last_error.clone(),
            last_error_date_time: state.last_error_at,
            last_verified_date_time: state.last_verified_at,
            push_secret: secret,
            version: record.version,
        }
    }

    fn seal(&self, secret: &str) -> ServiceResult<String> {
        self.settings
            .sealing_key
            .seal(secret.as_bytes(), CREDENTIAL_CONTEXT)
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    fn open_sealed(&self, sealed: &str) -> ServiceResult<String> {
        let bytes = self
            .settings
            .sealing_key
            .open(sealed, CREDENTIAL_CONTEXT)
            .map_err(|_| {
                ServiceError::Internal("a transmitter credential cannot be opened".into())
            })?;
        String::from_utf8(bytes).map_err(|_| ServiceError::Internal("not text".into()))
    }

    /// GETs JSON from a transmitter (bounded; no redirects).
    async fn fetch_json(&self, url: &str, bearer: Option<&str>) -> ServiceResult<Value> {
        let mut headers = vec![("accept".to_string(), "application/json".to_string())];
        if let Some(token) = bearer {
            headers.push(("authorization".to_string(), format!("Bearer {token}")));
        }
        let (status, _, body) = self
            .transport()?
            .send("GET", url, &headers, None)
            .await
            .map_err(|e| ServiceError::Unavailable(format!("cannot reach the transmitter: {e}")))?;
        if status != 200 {
            return Err(ServiceError::Unavailable(format!(
                "the transmitter answered HTTP {status}"
            )));
        }
        serde_json::from_slice(&body)
            .map_err(|_| ServiceError::Unavailable("the transmitter's answer is not JSON".into()))
    }

    /// Sends a request with a JSON body to a transmitter's API (with its
    /// token, when there is one); the status and the body.
    async fn call_transmitter(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> ServiceResult<(u16, Vec<u8>)> {
        let mut headers = vec![("accept".to_string(), "application/json".to_string())];
        if body.is_some() {
            headers.push(("content-type".to_string(), "application/json".to_string()));
        }
        if let Some(token) = token {
            headers.push(("authorization".to_string(), format!("Bearer {token}")));
        }
        let (status, _, answer) = self
            .transport()?
            .send(
                method,
                url,
                &headers,
                body.map(|b| b.to_string().into_bytes()),
            )
            .await
            .map_err(|e| ServiceError::Unavailable(format!("cannot reach the transmitter: {e}")))?;
        Ok((status, answer))
    }

    /// The token Tessera calls a transmitter's API with.
    async fn transmitter_token(&self, data: &ReceivedData) -> ServiceResult<Option<String>> {
        if let Some(sealed) = &data.bearer_sealed {
            return Ok(Some(self.open_sealed(sealed)?));
        }
        let Some(client) = &data.client else {
            return Ok(None);
        };
        let secret = self.open_sealed(&client.secret_sealed)?;
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            form.append_pair("client_id", &client.client_id);
            form.append_pair("client_secret", &secret);
            if let Some(scope) = &client.scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let headers = vec![
            (
                "content-type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("accept".to_string(), "application/json".to_string()),
        ];
        let (status, _, body) = self
            .transport()?
            .send(
                "POST",
                &client.token_endpoint,
                &headers,
                Some(form.into_bytes()),
            )
            .await
            .map_err(|e| {
                ServiceError::Unavailable(format!("cannot reach the token endpoint: {e}"))
            })?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match (status, answer.get("access_token").and_then(Value::as_str)) {
            (200, Some(token)) => Ok(Some(token.to_string())),
            _ => Err(ServiceError::Unavailable(format!(
                "the transmitter's token endpoint refused the client (HTTP {status})"
            ))),
        }
    }

    /// Adds a transmitter to receive from: reads its metadata, and creates
    /// the stream there when asked. The push secret is shown once.
    pub async fn create_receiver(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<ReceivedStreamView> {
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)?;
        let input: ReceiverInput = tessera_directory::patch::parse_spec(body)?;
        let name = input.display_name.trim();
        if name.is_empty() || name.chars().count() > 128 {
            return Err(bad("displayName", "must be 1 to 128 characters"));
        }
        let issuer = input.issuer.trim_end_matches('/').to_string();
        if !url_ok(self, &issuer) {
            return Err(bad("issuer", "must be an absolute https URL"));
        }
        let delivery = match input.delivery.as_str() {
            "push" => Method::Push,
            "poll" => Method::Poll,
            _ => return Err(bad("delivery", "must be push or poll")),
        };
        if input.bearer_token.is_some() && input.client_credentials.is_some() {
            return Err(bad(
                "bearerToken",
                "give a bearer token or a client, not both",
            ));
        }
        if let Some(token) = &input.bearer_token
            && (token.is_empty()
                || token.len() > 4096
                || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(bad("bearerToken", "must be 1 to 4096 visible characters"));
        }
        if let Some(client) = &input.client_credentials
            && (!url_ok(self, &client.token_endpoint)
                || client.client_id.is_empty()
                || client.client_secret.is_empty()
                || client.client_id.len() > 256
                || client.client_secret.len() > 1024)
        {
            return Err(bad(
                "clientCredentials",
                "needs an https tokenEndpoint, a clientId and a clientSecret",
            ));
        }
        if let Some(endpoint) = &input.poll_endpoint
            && !url_ok(self, endpoint)
        {
            return Err(bad("pollEndpoint", "must be an absolute https URL"));
        }
        let audience = input.audience.clone().unwrap_or_else(|| self.issuer());
        if audience.is_empty() || audience.len() > 512 {
            return Err(bad("audience", "must be 1 to 512 characters"));
        }
        // The transmitter's metadata: its keys and endpoints.
        let (scheme_host, path) =
            split_issuer(&issuer).ok_or_else(|| bad("issuer", "must be an absolute https URL"))?;
        let metadata = self
            .fetch_json(
                &format!("{scheme_host}/.well-known/ssf-configuration{path}"),
                None,
            )
            .await?;
        if metadata
            .get("issuer")
            .and_then(Value::as_str)
            .map(|i| i.trim_end_matches('/'))
            != Some(issuer.as_str())
        {
            return Err(bad(
                "issuer",
                "the transmitter's metadata names another issuer",
            ));
        }
        let endpoint = |name: &str| -> Option<String> {
            metadata
                .get(name)
                .and_then(Value::as_str)
                .filter(|u| url_ok(self, u))
                .map(str::to_string)
        };
        let jwks_uri = endpoint("jwks_uri")
            .ok_or_else(|| bad("issuer", "the transmitter publishes no usable jwks_uri"))?;
        let id = Uuid::new_v4();
        let push_secret = match delivery {
            Method::Push => {
                use base64::Engine as _;
                let bytes = crate::sign_in::random_bytes::<32>()?;
                Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
            }
            Method::Poll => None,
        };
        let mut data = ReceivedData {
            display_name: name.to_string(),
            issuer: issuer.clone(),
            audience,
            delivery,
            jwks_uri,
            configuration_endpoint: endpoint("configuration_endpoint"),
            poll_endpoint: input.poll_endpoint.clone(),
            stream_id: None,
            push_secret_hash: push_secret
                .as_deref()
                .map(tessera_core::crypto::secret_hash),
            bearer_sealed: input
                .bearer_token
                .as_deref()
                .map(|t| self.seal(t))
                .transpose()?,
            client: input
                .client_credentials
                .as_ref()
                .map(|c| -> ServiceResult<StoredClient> {
                    Ok(StoredClient {
                        token_endpoint: c.token_endpoint.clone(),
                        client_id: c.client_id.clone(),
                        secret_sealed: self.seal(&c.client_secret)?,
                        scope: c.scope.clone(),
                    })
                })
                .transpose()?,
        };
        let has_credential = data.bearer_sealed.is_some() || data.client.is_some();
        let create = input
            .create_stream
            .unwrap_or(has_credential && input.poll_endpoint.is_none());
        if delivery == Method::Poll && !create && data.poll_endpoint.is_none() {
            return Err(bad(
                "pollEndpoint",
                "a poll receiver needs the transmitter's poll endpoint, or a credential to create the stream",
            ));
        }
        // What can be checked first is, so no stream is made at the
        // transmitter for a receiver that will not be stored.
        let mut reader = self.reader().await?;
        self.check_new_receiver(reader.as_mut(), ctx.tenant, &issuer)
            .await?;
        drop(reader);
        if create {
            self.create_remote_stream(id, &mut data, push_secret.as_deref())
                .await?;
        }
        let stored: ServiceResult<Record> = async {
            if data.delivery == Method::Poll && data.poll_endpoint.is_none() {
                return Err(ServiceError::Unavailable(
                    "the transmitter gave no poll endpoint for the stream".into(),
                ));
            }
            let mut tx = self.write(ctx).await?;
            self.check_new_receiver(tx.as_mut(), ctx.tenant, &issuer)
                .await?;
            let keys = Keys {
                key1: Some(issuer.clone()),
                key2: None,
                sort_key: data.display_name.to_lowercase(),
            };
            let record = codec::new_record(Kind::SignalReceiver, id, self.now(), keys, &data)?;
            tx.insert(ctx.tenant, &record).await?;
            let view = self.received_view(&record, &data, &ReceivedState::default(), None);
            let event = EventDraft::new(AuditAction::SignalReceiverCreate)
                .on(Kind::SignalReceiver, id, &data.display_name)
                .details(&view);
            self.commit(tx, ctx, event).await?;
            Ok(record)
        }
        .await;
        match stored {
            Ok(record) => {
                Ok(self.received_view(&record, &data, &ReceivedState::default(), push_secret))
            }
            Err(error) => {
                // The stream made at the transmitter goes too.
                self.delete_remote_stream(&data).await;
                Err(error)
            }
        }
    }

    /// Refuses a transmitter Tessera already receives from, or one past the
    /// limit.
    async fn check_new_receiver(
        &self,
        reader: &mut dyn tessera_store::Reader,
        tenant: TenantId,
        issuer: &str,
    ) -> ServiceResult<()> {
        if codec::list_all(reader, tenant, Kind::SignalReceiver, None)
            .await?
            .len()
            >= MAX_RECEIVERS
        {
            return Err(ServiceError::Conflict {
                message: format!("at most {MAX_RECEIVERS} transmitters"),
            });
        }
        if reader
            .get_by_key1(tenant, Kind::SignalReceiver, issuer)
            .await?
            .is_some()
        {
            return Err(ServiceError::Conflict {
                message: "Tessera already receives from this issuer".into(),
            });
        }
        Ok(())
    }

    /// Deletes the stream Tessera made at a transmitter, when it can (best
    /// effort: the transmitter may be gone).
    async fn delete_remote_stream(&self, data: &ReceivedData) {
        if let (Some(endpoint), Some(stream)) = (&data.configuration_endpoint, &data.stream_id)
            && let Ok(Some(token)) = self.transmitter_token(data).await
        {
            let url = format!("{endpoint}?stream_id={}", url_escape(stream));
            let _ = self
                .call_transmitter("DELETE", &url, Some(&token), None)
                .await;
        }
    }

    /// Creates Tessera's stream at the transmitter: push to this receiver's
    /// endpoint with its secret, or poll.
    async fn create_remote_stream(
        &self,
        id: Uuid,
        data: &mut ReceivedData,
        push_secret: Option<&str>,
    ) -> ServiceResult<()> {
        let endpoint = data.configuration_endpoint.clone().ok_or_else(|| {
            bad(
                "createStream",
                "the transmitter has no configuration endpoint",
            )
        })?;
        let token = self
            .transmitter_token(data)
            .await?
            .ok_or_else(|| bad("createStream", "creating a stream needs a credential"))?;
        let delivery = match data.delivery {
            Method::Push => json!({
                "method": tessera_ssf::PUSH,
                "endpoint_url": self.endpoint(&format!("receive/{id}")),
                "authorization_header": push_secret.map(|s| format!("Bearer {s}")),
            }),
            Method::Poll => json!({ "method": tessera_ssf::POLL }),
        };
        let body = json!({
            "events_requested": WANTED.iter().map(|t| t.uri()).collect::<Vec<_>>(),
            "delivery": delivery,
            "subject_format": "email",
            "description": "Tessera",
        });
        let (status, answer) = self
            .call_transmitter("POST", &endpoint, Some(&token), Some(&body))
            .await?;
        if status != 201 && status != 200 {
            return Err(ServiceError::Unavailable(format!(
                "the transmitter did not create the stream (HTTP {status})"
            )));
        }
        let config: Value = serde_json::from_slice(&answer).map_err(|_| {
            ServiceError::Unavailable("the transmitter's answer is not JSON".into())
        })?;
        if config
            .get("iss")
            .and_then(Value::as_str)
            .map(|i| i.trim_end_matches('/'))
            != Some(data.issuer.as_str())
        {
            return Err(ServiceError::Unavailable(
                "the transmitter's stream names another issuer".into(),
            ));
        }
        data.stream_id = config
            .get("stream_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        // The audience its SETs will carry (SSF allows an array).
        match config.get("aud") {
            Some(Value::String(aud)) => data.audience = aud.clone(),
            Some(Value::Array(list)) => {
                if let Some(aud) = list.iter().find_map(Value::as_str) {
                    data.audience = aud.to_string();
                }
            }
            _ => {}
        }
        if data.delivery == Method::Poll {
            data.poll_endpoint = config["delivery"]["endpoint_url"]
                .as_str()
                .filter(|u| url_ok(self, u))
                .map(str::to_string);
        }
        Ok(())
    }

    /// Every transmitter the tenant receives from.
    pub async fn list_receivers(&self, ctx: &Context) -> ServiceResult<Vec<ReceivedStreamView>> {
        self.require(ctx, action::POLICIES_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let mut views = Vec::new();
        for record in
            codec::list_all(reader.as_mut(), ctx.tenant, Kind::SignalReceiver, None).await?
        {
            let data: ReceivedData = codec::data(&record)?;
            let (_, state) = self
                .state_row::<ReceivedState>(ctx.tenant, &received_key(record.id))
                .await?;
            views.push(self.received_view(&record, &data, &state, None));
        }
        Ok(views)
    }

    /// Stops receiving from a transmitter (its stream there is deleted when
    /// Tessera made it and can still reach it).
    pub async fn delete_receiver(&self, ctx: &Context, at: Versioned) -> ServiceResult<()> {
        self.require(ctx, action::POLICIES_MANAGE, &Target::Tenant)?;
        let (mut tx, record) = self
            .open_tenant_record(ctx, action::POLICIES_MANAGE, Kind::SignalReceiver, at.id)
            .await?;
        at.check(&record)?;
        let data: ReceivedData = codec::data(&record)?;
        tx.delete(
            ctx.tenant,
            Kind::SignalReceiver,
            record.id,
            Some(record.version),
        )
        .await?;
        let event = EventDraft::new(AuditAction::SignalReceiverDelete).on(
            Kind::SignalReceiver,
            record.id,
            &data.display_name,
        );
        self.commit(tx, ctx, event).await?;
        self.delete_remote_stream(&data).await;
        Ok(())
    }

    /// A SET a transmitter pushed to `/ssf/receive/{id}` with `authorization`
    /// (RFC 8935): taken (202) or refused with RFC 8935's error.
    pub async fn receive_push(
        &self,
        receiver: Uuid,
        authorization: Option<&str>,
        token: &str,
    ) -> Result<(), SsfError> {
        let unknown = || {
            SsfError::new(
                "authentication_failed",
                "unknown receiver or wrong credential",
            )
        };
        let tenant = self
            .default_tenant()
            .await
            .ok()
            .flatten()
            .ok_or_else(unknown)?;
        let record = {
            let mut reader = self.reader().await.map_err(|_| unavailable())?;
            reader
                .get(tenant, Kind::SignalReceiver, receiver)
                .await
                .map_err(|_| unavailable())?
                .ok_or_else(unknown)?
        };
        let data: ReceivedData = codec::data(&record).map_err(|_| unavailable())?;
        let presented = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(tessera_core::crypto::secret_hash);
        let expected = data.push_secret_hash.as_deref();
        let matches = match (presented.as_deref(), expected) {
            (Some(given), Some(expected)) => {
                tessera_core::crypto::constant_time_eq(given.as_bytes(), expected.as_bytes())
            }
            _ => false,
        };
        if data.delivery != Method::Push || !matches {
            return Err(unknown());
        }
        self.take(tenant, &record, data, token).await
    }

    /// One round of polling each poll transmitter (the `signals` job).
    pub async fn receive_round(&self, tenant: TenantId) -> ServiceResult<()> {
        if self.default_tenant().await? != Some(tenant) {
            return Ok(());
        }
        let records = {
            let mut reader = self.reader().await?;
            codec::list_all(reader.as_mut(), tenant, Kind::SignalReceiver, None).await?
        };
        for record in records {
            let data: ReceivedData = codec::data(&record)?;
            if data.delivery != Method::Poll {
                continue;
            }
            if let Err(error) = self.poll_transmitter(tenant, &record, data).await {
                tracing::warn!(%tenant, receiver = %record.id, %error, "cannot poll a transmitter");
                let why: String = error.to_string().chars().take(300).collect();
                let now = self.now();
                self.note(tenant, record.id, |d| {
                    d.last_error = Some(why.clone());
                    d.last_error_at = Some(now);
                })
                .await;
            }
        }
        Ok(())
    }

    /// Polls one transmitter until it has no more, acknowledging what was
    /// taken and reporting what was refused.
    async fn poll_transmitter(
        &self,
        tenant: TenantId,
        record: &Record,
        data: ReceivedData,
    ) -> ServiceResult<()> {
        let Some(endpoint) = data.poll_endpoint.clone() else {
            return Ok(());
        };
        let token = self.transmitter_token(&data).await?;
        let mut acks: Vec<String> = Vec::new();
        let mut errors = serde_json::Map::new();
        for _ in 0..10 {
            let mut body = json!({ "returnImmediately": true, "maxEvents": 50, "ack": acks });
            if !errors.is_empty() {
                body["setErrs"] = Value::Object(std::mem::take(&mut errors));
            }
            let (status, answer) = self
                .call_transmitter("POST", &endpoint, token.as_deref(), Some(&body))
                .await?;
            if status != 200 {
                return Err(ServiceError::Unavailable(format!(
                    "the transmitter's poll answered HTTP {status}"
                )));
            }
            let answer: Value = serde_json::from_slice(&answer)
                .map_err(|_| ServiceError::Unavailable("the poll answer is not JSON".into()))?;
            let (sets, more) = tessera_ssf::poll::parse_response(&answer)
                .map_err(|e| ServiceError::Unavailable(e.description))?;
            acks = Vec::new();
            for (jti, set) in sets.into_iter().take(100) {
                let current = {
                    let mut reader = self.reader().await?;
                    match reader.get(tenant, Kind::SignalReceiver, record.id).await? {
                        Some(r) => r,
                        None => return Ok(()),
                    }
                };
                let data: ReceivedData = codec::data(&current)?;
                match self.take(tenant, &current, data, &set).await {
                    Ok(()) => acks.push(jti),
                    Err(error) if error.code == REPLAYED => acks.push(jti),
                    Err(error) if error.code == "temporarily_unavailable" => {
                        // Not acknowledged: it comes again.
                    }
                    Err(error) => {
                        errors.insert(
                            jti,
                            json!({ "err": error.code, "description": error.description }),
                        );
                    }
                }
            }
            if !more && errors.is_empty() {
                break;
            }
        }
        if !acks.is_empty() || !errors.is_empty() {
            let mut body = json!({ "returnImmediately": true, "maxEvents": 0, "ack": acks });
            if !errors.is_empty() {
                body["setErrs"] = Value::Object(errors);
            }
            let _ = self
                .call_transmitter("POST", &endpoint, token.as_deref(), Some(&body))
                .await;
        }
        Ok(())
    }

    /// The transmitter's keys, fetched again when old or when `kid` is not
    /// among them.
    async fn transmitter_keys(
        &self,
        tenant: TenantId,
        record: &Record,
        data: &ReceivedData,
        kid: Option<&str>,
    ) -> ServiceResult<(Value, bool)> {
        let now = self.now();
        let (_, state) = self
            .state_row::<ReceivedState>(tenant, &received_key(record.id))
            .await?;
        let fresh = state
            .jwks_fetched
            .is_some_and(|at| now.unix_seconds() - at.unix_seconds() < JWKS_SECONDS);
        let has_kid = |jwks: &Value| {
            kid.is_none_or(|kid| {
                jwks["keys"]
                    .as_array()
                    .is_some_and(|keys| keys.iter().any(|k| k["kid"].as_str() == Some(kid)))
            })
        };
        // An unknown kid fetches again, but not more than once a minute.
        let recently = state
            .jwks_fetched
            .is_some_and(|at| now.unix_seconds() - at.unix_seconds() < 60);
        if let Some(jwks) = &state.jwks
            && (fresh && has_kid(jwks) || recently)
        {
            return Ok((jwks.clone(), false));
        }
        let jwks = self.fetch_json(&data.jwks_uri, None).await?;
        self.note(tenant, record.id, |d| {
            d.jwks = Some(jwks.clone());
            d.jwks_fetched = Some(now);
        })
        .await;
        Ok((jwks, true))
    }

    /// Verifies, checks and acts on one SET from a transmitter.
    async fn take(
        &self,
        tenant: TenantId,
        record: &Record,
        data: ReceivedData,
        token: &str,
    ) -> Result<(), SsfError> {
        let outcome = self.verify_set(tenant, record, &data, token).await;
        let received = match outcome {
            Ok(received) => received,
            Err(error) => {
                let why = error.description.clone();
                let now = self.now();
                self.note(tenant, record.id, |d| {
                    d.refused += 1;
                    d.last_error = Some(why.clone());
                    d.last_error_at = Some(now);
                })
                .await;
                if error.code != "temporarily_unavailable" {
                    self.audit_received(
                        tenant,
                        &data,
                        None,
                        json!({ "refused": error.code, "reason": error.description }),
                    )
                    .await;
                }
                return Err(error);
            }
        };
        let done = match self.act(tenant, &data, &received).await {
            Ok(done) => done,
            Err(error) => {
                // Not taken: the transmitter sends it again (a push gets 503,
                // a poll no ack), and then it is not a replay.
                tracing::warn!(%tenant, receiver = %record.id, %error, "cannot act on a received signal");
                let _ = self
                    .store()
                    .session_delete(tenant, &replay_key(&data, &received.jti))
                    .await;
                return Err(unavailable());
            }
        };
        let now = self.now();
        let verified = received.event == Some(EventType::Verification);
        self.note(tenant, record.id, |d| {
            d.received += 1;
            d.last_received_at = Some(now);
            if verified {
                d.last_verified_at = Some(now);
            }
        })
        .await;
        self.audit_received(tenant, &data, Some(&received), done)
            .await;
        Ok(())
    }

    async fn verify_set(
        &self,
        tenant: TenantId,
        record: &Record,
        data: &ReceivedData,
        token: &str,
    ) -> Result<Received, SsfError> {
        let (header, _) = tessera_oauth::jws::peek(token)
            .map_err(|_| SsfError::invalid("the SET is not a signed JWT"))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let (jwks, fetched) = self
            .transmitter_keys(tenant, record, data, kid)
            .await
            .map_err(|_| unavailable())?;
        let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
        let candidates: Vec<&Value> = keys
            .iter()
            .filter(|k| kid.is_none_or(|kid| k["kid"].as_str() == Some(kid)))
            .collect();
        if candidates.is_empty() {
            // A key the transmitter may just have published: not final until
            // its key set was read again.
            if !fetched {
                return Err(unavailable());
            }
            return Err(SsfError::new(
                "invalid_key",
                "no key of the transmitter's signs it",
            ));
        }
        let claims = candidates
            .iter()
            .find_map(|jwk| tessera_oauth::jws::verify(token, jwk, &ALGORITHMS).ok())
            .ok_or_else(|| SsfError::new("invalid_key", "the SET's signature does not verify"))?;
        let received = tessera_ssf::set::check(
            &header,
            &claims,
            tessera_ssf::set::Expected {
                issuer: &data.issuer,
                audience: &data.audience,
                now: self.now(),
            },
        )?;
        // Replay: each jti once per transmitter, for as long as a SET is taken.
        let row = SessionRow::transient(
            replay_key(data, &received.jti),
            self.now(),
            tessera_ssf::set::MAX_AGE_SECONDS + tessera_ssf::set::SKEW_SECONDS,
            String::new(),
        );
        match self.store().session_insert(tenant, &row).await {
            Ok(()) => Ok(received),
            Err(tessera_store::StoreError::Duplicate { .. }) => Err(SsfError::new(
                REPLAYED,
                "the SET was received before (replayed jti)",
            )),
            Err(_) => Err(unavailable()),
        }
    }

    /// What a SET means for Tessera; what was done.
    async fn act(
        &self,
        tenant: TenantId,
        data: &ReceivedData,
        received: &Received,
    ) -> ServiceResult<Value> {
        let ctx = crate::kernel::system_context(
            tenant,
            &format!("shared signal from {}", data.display_name),
        );
        let result: ServiceResult<Value> = match received.event {
            Some(EventType::DeviceComplianceChange) => self.device_compliance(&ctx, received).await,
            Some(EventType::CredentialCompromise) => {
                self.threat_intelligence(&ctx, data, received, tessera_risk::RiskLevel::High)
                    .await
            }
            Some(EventType::AccountDisabled) => {
                let level = if received.members.get("reason").and_then(Value::as_str)
                    == Some("hijacking")
                {
                    tessera_risk::RiskLevel::High
                } else {
                    tessera_risk::RiskLevel::Medium
                };
                self.threat_intelligence(&ctx, data, received, level).await
            }
            Some(EventType::SessionRevoked | EventType::SessionsRevoked) => {
                match self.user_of(tenant, &received.subject).await {
                    Ok(Some(user)) => self
                        .end_user_sessions(tenant, user, None, tessera_cae::Reason::SessionsRevoked)
                        .await
                        .map(|n| json!({ "sessionsRevoked": n, "user": user })),
                    Ok(None) => Ok(json!({ "ignored": "no such user" })),
                    Err(error) => Err(error),
                }
            }
            _ if received.event_uri
                == "https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required" =>
            {
                self.threat_intelligence(&ctx, data, received, tessera_risk::RiskLevel::Medium)
                    .await
            }
            _ => Ok(json!({ "recorded": true })),
        };
        result
    }

    /// A device-compliance-change: the device's `isCompliant`.
    async fn device_compliance(&self, ctx: &Context, received: &Received) -> ServiceResult<Value> {
        let device = received
            .subject
            .member("device")
            .or(match &received.subject {
                SubjectId::Opaque(_) => Some(&received.subject),
                _ => None,
            })
            .and_then(|d| match d {
                SubjectId::Opaque(id) => Uuid::parse_str(id).ok(),
                _ => None,
            });
        let Some(device) = device else {
            return Ok(json!({ "ignored": "the subject names no device" }));
        };
        let compliant = match received
            .members
            .get("current_status")
            .and_then(Value::as_str)
        {
            Some("compliant") => true,
            Some("not-compliant") => false,
            _ => {
                return Ok(
                    json!({ "ignored": "current_status is not compliant or not-compliant" }),
                );
            }
        };
        let mut ctx = ctx.clone();
        ctx.caller.grants = vec![tessera_directory::authz::Grant {
            assignment_id: Uuid::nil(),
            role_id: tessera_directory::roles::INTUNE_ADMINISTRATOR,
            scope: tessera_directory::model::DirectoryScope::Tenant,
        }];
        match self
            .directory
            .update_device(
                &ctx,
                Versioned::any(device).patch(json!({ "isCompliant": compliant })),
            )
            .await
        {
            Ok(_) => Ok(json!({ "device": device, "isCompliant": compliant })),
            Err(ServiceError::NotFound { .. }) => Ok(json!({ "ignored": "no such device" })),
            Err(error) => Err(error),
        }
    }

    /// A risk detection of threat intelligence for the SET's user.
    async fn threat_intelligence(
        &self,
        ctx: &Context,
        data: &ReceivedData,
        received: &Received,
        level: tessera_risk::RiskLevel,
    ) -> ServiceResult<Value> {
        let Some(user) = self.user_of(ctx.tenant, &received.subject).await? else {
            return Ok(json!({ "ignored": "no such user" }));
        };
        let upn = {
            let mut reader = self.reader().await?;
            reader
                .get(ctx.tenant, Kind::User, user)
                .await?
                .and_then(|r| codec::data::<tessera_directory::model::UserSpec>(&r).ok())
                .map(|s| s.user_principal_name)
                .unwrap_or_default()
        };
        let detection = tessera_risk::Detection::new(
            tessera_risk::EventType::InvestigationsThreatIntelligence,
            level,
            json!({ "transmitter": data.issuer, "event": received.event_uri, "jti": received.jti }),
        );
        let facts = crate::risk::SignInFacts {
            sign_in: None,
            at: self.now(),
            user_id: Some(user),
            user_principal_name: &upn,
            client_address: None,
            correlation_id: &ctx.correlation_id,
        };
        self.risk.record(ctx.tenant, &facts, &[detection]).await?;
        Ok(json!({ "user": user, "detection": "investigationsThreatIntelligence" }))
    }

    /// The user a subject names: `iss_sub` of Tessera's own issuer, or an
    /// email (principal name, then mail).
    async fn user_of(&self, tenant: TenantId, subject: &SubjectId) -> ServiceResult<Option<Uuid>> {
        let issuer = self.issuer();
        let candidates: Vec<&SubjectId> = match subject {
            SubjectId::Aliases(list) => list.iter().collect(),
            SubjectId::Complex(_) => subject.member("user").into_iter().collect(),
            simple => vec![simple],
        };
        let mut reader = self.reader().await?;
        for candidate in candidates {
            match candidate {
                SubjectId::IssSub { iss, sub } if iss.trim_end_matches('/') == issuer => {
                    if let Ok(id) = Uuid::parse_str(sub)
                        && reader.get(tenant, Kind::User, id).await?.is_some()
                    {
                        return Ok(Some(id));
                    }
                }
                SubjectId::Email(email) => {
                    let lower = email.to_lowercase();
                    if let Some(record) = reader.get_by_key1(tenant, Kind::User, &lower).await? {
                        return Ok(Some(record.id));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Changes a transmitter's state (counts, errors, keys); a failure is
    /// only logged.
    async fn note(&self, tenant: TenantId, id: Uuid, change: impl Fn(&mut ReceivedState)) {
        if let Err(error) = self
            .change_state_row(tenant, &received_key(id), change)
            .await
        {
            tracing::warn!(%tenant, receiver = %id, %error, "cannot note a transmitter's state");
        }
    }

    async fn audit_received(
        &self,
        tenant: TenantId,
        data: &ReceivedData,
        received: Option<&Received>,
        outcome: Value,
    ) {
        let ctx = crate::kernel::system_context(
            tenant,
            &format!("shared signal from {}", data.display_name),
        );
        let details = json!({
            "transmitter": data.issuer,
            "jti": received.map(|r| r.jti.clone()),
            "event": received.map(|r| r.event_uri.clone()),
            "subject": received.map(|r| r.subject.to_json()),
            "outcome": outcome,
        });
        let result: ServiceResult<()> = async {
            let tx = self.write(&ctx).await?;
            let event = EventDraft::new(AuditAction::SignalReceive).details(details);
            self.commit(tx, &ctx, event).await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%tenant, %error, "cannot audit a received signal");
        }
    }
}

/// The code of a refusal for a jti taken before (`invalid_request` on the
/// wire; a poll acknowledges it, the first was taken).
pub const REPLAYED: &str = "replayed";

/// The session-store row that remembers a transmitter's jti.
fn replay_key(data: &ReceivedData, jti: &str) -> String {
    format!(
        "ssf-jti:{}",
        tessera_core::crypto::secret_hash(&format!("{}\n{}", data.issuer, jti))
    )
}

fn unavailable() -> SsfError {
    SsfError::new("temporarily_unavailable", "the receiver cannot take it now")
}

/// `https://host:port` and the path of an issuer (no trailing slash).
fn split_issuer(issuer: &str) -> Option<(String, String)> {
    let url = url::Url::parse(issuer).ok()?;
    let host = url.host_str()?;
    let origin = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    Some((origin, url.path().trim_end_matches('/').to_string()))
}

fn url_escape(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

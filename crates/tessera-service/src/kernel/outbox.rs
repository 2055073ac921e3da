//! The outbox: notifications written in the same transaction as the change they
//! tell of (so none is lost and none is sent for a change that did not happen),
//! delivered afterwards by a job, with retries, through the `Notifier` port (a
//! signed JSON webhook, mail over SMTP) the binary gives.
//!
//! Records are `Kind::OutboxMessage`: key2 `pending`, `sent` or `failed`; a
//! pending one's sort key is its next attempt's time, so the job reads the due
//! ones first. Delivery is at least once: a receiver tells a repeat by the
//! message id (`Tessera-Event-Id`). Each outcome is recorded in the audit trail
//! (topic, channel, attempt; not the content).
//!
//! The tenant's delivery settings (`NotificationSettings`): a webhook URL with
//! its signing secret (sealed at rest, never shown again), whether mail is sent,
//! and the administrators' addresses.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit_action::AuditAction;
use tessera_store::{Kind, ListQuery, Record, WriteTx};
use uuid::Uuid;

use super::Kernel;
use super::tenant_settings::{TenantSetting, sealed};
use crate::codec::{self, Keys};
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, EventDraft};

/// How many attempts a message gets before it is given up.
pub const MAX_ATTEMPTS: u32 = 8;
/// At most this many deliveries per tenant per round.
const PER_ROUND: u32 = 50;
/// No delivery starts later than this into a round (a delivery takes at most ten
/// seconds), so a round ends within the job's lease and no other node sends the
/// same message meanwhile.
const ROUND_SECONDS: u64 = 4;
/// Sent and given-up messages are kept this long (what was said, to whom).
const KEPT_SECONDS: i64 = 30 * 86_400;
/// The context sealing a webhook secret is bound to.
const SECRET_CONTEXT: &str = "outbox-webhook-secret";

/// Delivery, as the binary does it (reqwest, lettre).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// POSTs `body` (JSON) to `url` with `headers`; the HTTP status, or why not.
    async fn post_webhook(
        &self,
        url: &str,
        body: &[u8],
        headers: &[(String, String)],
    ) -> Result<u16, String>;
    /// Sends a plain-text mail; whether the relay took it, or why not.
    async fn send_mail(&self, to: &[String], subject: &str, text: &str) -> Result<(), String>;
    /// Whether mail can be sent at all (an SMTP relay is configured).
    fn mail_configured(&self) -> bool;
}

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// `pim.approvalRequested`, `pim.requestDecided`, `pim.privilegedRoleActivated`.
    pub topic: String,
    /// The mail's subject and text (also in the webhook's body).
    pub subject: String,
    pub text: String,
    /// Mail recipients (none: webhook only).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The webhook's `data`.
    pub data: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Channel {
    Webhook,
    Mail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    channel: Channel,
    notification: Notification,
    attempts: u32,
    next_attempt: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent: Option<Timestamp>,
}

fn keys(state: &str, data: &Stored, id: Uuid) -> Keys {
    Keys {
        key1: None,
        key2: Some(state.to_string()),
        sort_key: format!("{}|{id}", data.next_attempt.to_rfc3339()),
    }
}

/// The tenant's delivery settings as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationSettings {
    /// Where webhooks go (https; http only to a loopback address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The signing secret, sealed (never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_sealed: Option<String>,
    /// Whether mail is sent (where an SMTP relay is configured).
    #[serde(default)]
    pub mail_enabled: bool,
    /// Who hears of privileged activations, and approves where a role names no
    /// approvers.
    #[serde(default)]
    pub administrator_emails: Vec<String>,
}

impl sealed::Sealed for NotificationSettings {}
impl TenantSetting for NotificationSettings {
    const KEY: &'static str = "notifications";
    const UPDATED: AuditAction = AuditAction::NotificationSettingsUpdate;
}

/// What a client sends to change the settings (the secret only when setting it).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsBody {
    #[serde(default)]
    webhook_url: Option<String>,
    /// 32 to 256 characters; left out keeps the one set.
    #[serde(default)]
    webhook_secret: Option<String>,
    #[serde(default)]
    mail_enabled: bool,
    #[serde(default)]
    administrator_emails: Vec<String>,
}

/// The settings as the API shows them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NotificationSettingsView {
    pub webhook_url: Option<String>,
    pub has_webhook_secret: bool,
    pub mail_enabled: bool,
    pub administrator_emails: Vec<String>,
    /// Whether this deployment has an SMTP relay.
    pub mail_configured: bool,
}

fn webhook_url_ok(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let loopback = matches!(
        parsed.host(),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback()
    ) || matches!(parsed.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || parsed.host_str() == Some("localhost");
    parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.fragment().is_none()
        && (parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback))
        && url.len() <= 2048
}

fn email_ok(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && address.len() <= 254
        && address
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | ',' | ';' | '"' | '\\'))
}

/// HMAC-SHA256 signature of a webhook body: `t=<unix seconds>,v1=<hex>` over
/// `<t>.<body>`.
pub fn webhook_signature(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    let mut signed = format!("{unix_seconds}.").into_bytes();
    signed.extend_from_slice(body);
    let mac = tessera_core::crypto::hmac_sha256(secret, &signed);
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_seconds},v1={hex}")
}

impl Kernel {
    /// The tenant's notification settings.
    pub async fn notification_settings(
        &self,
        ctx: &Context,
    ) -> ServiceResult<(NotificationSettingsView, i64)> {
        let (stored, version) = self
            .get_setting_versioned::<NotificationSettings>(ctx)
            .await?;
        Ok((self.settings_view(&stored), version))
    }

    fn settings_view(&self, stored: &NotificationSettings) -> NotificationSettingsView {
        NotificationSettingsView {
            webhook_url: stored.webhook_url.clone(),
            has_webhook_secret: stored.webhook_secret_sealed.is_some(),
            mail_enabled: stored.mail_enabled,
            administrator_emails: stored.administrator_emails.clone(),
            mail_configured: self.notifier().is_some_and(|n| n.mail_configured()),
        }
    }

    /// Replaces the notification settings (a manager of the tenant's policies).
    pub async fn set_notification_settings(
        &self,
        ctx: &Context,
        change: crate::Replacement,
    ) -> ServiceResult<NotificationSettingsView> {
        self.may_change_settings(ctx)?;
        let crate::Replacement { body, if_match } = change;
        let body: SettingsBody = tessera_directory::patch::parse_spec(body)?;
        if let Some(url) = &body.webhook_url
            && !webhook_url_ok(url)
        {
            return Err(ServiceError::invalid(
                "webhookUrl",
                "must be an https URL (http only to a loopback address), without credentials",
            ));
        }
        if let Some(secret) = &body.webhook_secret
            && !(32..=256).contains(&secret.len())
        {
            return Err(ServiceError::invalid(
                "webhookSecret",
                "must be 32 to 256 characters",
            ));
        }
        if body.administrator_emails.len() > 50 {
            return Err(ServiceError::invalid(
                "administratorEmails",
                "at most 50 addresses",
            ));
        }
        for (i, address) in body.administrator_emails.iter().enumerate() {
            if !email_ok(address) {
                return Err(ServiceError::invalid(
                    format!("administratorEmails[{i}]"),
                    "is not a mail address",
                ));
            }
        }
        let (mut tx, before) = self
            .open_setting::<NotificationSettings>(ctx, if_match)
            .await?;
        let sealed = match &body.webhook_secret {
            Some(secret) => Some(
                self.settings
                    .sealing_key
                    .seal(secret.as_bytes(), SECRET_CONTEXT)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?,
            ),
            None => before.webhook_secret_sealed.clone(),
        };
        if body.webhook_url.is_some() && sealed.is_none() {
            return Err(ServiceError::invalid(
                "webhookSecret",
                "a webhook needs a signing secret",
            ));
        }
        let after = NotificationSettings {
            webhook_url: body.webhook_url,
            webhook_secret_sealed: sealed,
            mail_enabled: body.mail_enabled,
            administrator_emails: body.administrator_emails,
        };
        let existing = tx
            .get_by_key1(ctx.tenant, Kind::AuthPolicy, NotificationSettings::KEY)
            .await?;
        codec::put(
            tx.as_mut(),
            ctx.tenant,
            Kind::AuthPolicy,
            existing.as_ref(),
            Uuid::new_v4(),
            self.now(),
            Keys {
                key1: Some(NotificationSettings::KEY.to_string()),
                key2: None,
                sort_key: NotificationSettings::KEY.to_string(),
            },
            &after,
        )
        .await?;
        // The audit event says whether the secret changed, not what it is.
        let shown = |s: &NotificationSettings| {
            json!({
                "webhookUrl": s.webhook_url,
                "webhookSecret": s.webhook_secret_sealed.as_ref().map(|sealed| {
                    format!("set ({})", &tessera_core::crypto::sha256_hex(sealed.as_bytes())[..12])
                }),
                "mailEnabled": s.mail_enabled,
                "administratorEmails": s.administrator_emails,
            })
        };
        let event = EventDraft::new(NotificationSettings::UPDATED).changes(
            tessera_directory::patch::changes(&shown(&before), &shown(&after)),
        );
        self.commit(tx, ctx, event).await?;
        Ok(self.settings_view(&after))
    }

    /// Writes a notification into the outbox within `tx` (the change's own
    /// transaction): a webhook message where the tenant has one, a mail where
    /// mail is on and there are recipients.
    pub(crate) async fn notify(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        notification: Notification,
    ) -> ServiceResult<()> {
        let settings: NotificationSettings =
            super::tenant_settings::read_setting(tx, tenant).await?;
        let now = self.now();
        // One webhook message; one mail per recipient (a bad address fails
        // alone, and nobody sees the other recipients).
        let mut messages = Vec::new();
        if settings.webhook_url.is_some() {
            messages.push((Channel::Webhook, Vec::new()));
        }
        let mail_possible = self.notifier().is_some_and(|n| n.mail_configured());
        if settings.mail_enabled && mail_possible {
            for recipient in &notification.recipients {
                if email_ok(recipient) {
                    messages.push((Channel::Mail, vec![recipient.clone()]));
                }
            }
        }
        for (channel, recipients) in messages {
            let id = Uuid::new_v4();
            let data = Stored {
                channel,
                notification: Notification {
                    recipients,
                    ..notification.clone()
                },
                attempts: 0,
                next_attempt: now,
                last_error: None,
                sent: None,
            };
            let record = codec::new_record(
                Kind::OutboxMessage,
                id,
                now,
                keys("pending", &data, id),
                &data,
            )?;
            tx.insert(tenant, &record).await?;
        }
        Ok(())
    }

    /// One delivery round for a tenant: the due messages, oldest first. Returns
    /// how many were sent.
    pub async fn deliver_notifications(&self, tenant: TenantId) -> ServiceResult<usize> {
        let Some(notifier) = self.notifier() else {
            return Ok(0);
        };
        let now = self.now();
        let mut reader = self.reader().await?;
        let query = ListQuery {
            limit: PER_ROUND,
            key2: Some("pending".to_string()),
            ..Default::default()
        };
        let due: Vec<Record> = reader
            .list(tenant, Kind::OutboxMessage, &query)
            .await?
            .into_iter()
            .filter(|r| codec::data::<Stored>(r).is_ok_and(|d| d.next_attempt <= now))
            .collect();
        let settings: NotificationSettings =
            super::tenant_settings::read_setting(reader.as_mut(), tenant).await?;
        drop(reader);
        let mut sent = 0;
        let started = std::time::Instant::now();
        for record in due {
            if started.elapsed() > std::time::Duration::from_secs(ROUND_SECONDS) {
                break;
            }
            let mut data: Stored = codec::data(&record)?;
            let outcome = self
                .deliver_one(notifier.as_ref(), tenant, record.id, &data, &settings)
                .await;
            data.attempts += 1;
            let state = match &outcome {
                Ok(()) => {
                    data.sent = Some(self.now());
                    data.last_error = None;
                    sent += 1;
                    "sent"
                }
                Err(error) => {
                    data.last_error = Some(error.chars().take(300).collect());
                    if data.attempts >= MAX_ATTEMPTS {
                        "failed"
                    } else {
                        // 30 s, 1 min, 2 min ... 32 min: eight attempts in about an hour.
                        let wait = (30_i64 << (data.attempts - 1).min(7)).min(3600);
                        data.next_attempt = self.now().plus_seconds(wait);
                        "pending"
                    }
                }
            };
            let ctx = super::system_context(tenant, "notifications");
            let mut tx = self.write(&ctx).await?;
            let Some(current) = tx.get(tenant, Kind::OutboxMessage, record.id).await? else {
                continue;
            };
            if current.version != record.version {
                // Another node took it meanwhile.
                continue;
            }
            let next =
                codec::next_version(&current, self.now(), keys(state, &data, record.id), &data)?;
            tx.update(tenant, &next).await?;
            let event = EventDraft::new(AuditAction::NotificationDeliver)
                .on(Kind::OutboxMessage, record.id, &data.notification.topic)
                .details(json!({
                    "topic": data.notification.topic,
                    "channel": data.channel,
                    "attempt": data.attempts,
                    "outcome": state,
                    "recipients": data.notification.recipients.len(),
                    "error": data.last_error,
                }));
            self.commit(tx, &ctx, event).await?;
        }
        Ok(sent)
    }

    /// Forgets sent and given-up messages older than `KEPT_SECONDS` (one
    /// transaction, one audit event); how many.
    pub(crate) async fn purge_outbox(&self, tenant: TenantId) -> ServiceResult<usize> {
        let before = self.now().plus_seconds(-KEPT_SECONDS);
        let ctx = super::system_context(tenant, "notifications");
        let mut tx = self.write(&ctx).await?;
        let mut purged = 0;
        for state in ["sent", "failed"] {
            let query = ListQuery {
                limit: 500,
                key2: Some(state.to_string()),
                ..Default::default()
            };
            for record in tx.list(tenant, Kind::OutboxMessage, &query).await? {
                if record.modified < before {
                    tx.delete(tenant, Kind::OutboxMessage, record.id, Some(record.version))
                        .await?;
                    purged += 1;
                }
            }
        }
        if purged == 0 {
            return Ok(0);
        }
        let event = EventDraft::new(AuditAction::NotificationDeliver)
            .details(json!({ "purged": purged, "olderThan": before }));
        self.commit(tx, &ctx, event).await?;
        Ok(purged)
    }

    async fn deliver_one(
        &self,
        notifier: &dyn Notifier,
        tenant: TenantId,
        id: Uuid,
        data: &Stored,
        settings: &NotificationSettings,
    ) -> Result<(), String> {
        let notification = &data.notification;
        match data.channel {
            Channel::Mail => {
                if !settings.mail_enabled {
                    return Err("mail was turned off".to_string());
                }
                notifier
                    .send_mail(
                        &notification.recipients,
                        &notification.subject,
                        &notification.text,
                    )
                    .await
            }
            Channel::Webhook => {
                let (Some(url), Some(sealed)) =
                    (&settings.webhook_url, &settings.webhook_secret_sealed)
                else {
                    return Err("the webhook was removed".to_string());
                };
                let secret = self
                    .settings
                    .sealing_key
                    .open(sealed, SECRET_CONTEXT)
                    .map_err(|_| "the webhook secret cannot be opened".to_string())?;
                let body = serde_json::to_vec(&json!({
                    "id": id,
                    "type": notification.topic,
                    "time": self.now(),
                    "tenantId": tenant,
                    "subject": notification.subject,
                    "data": notification.data,
                }))
                .map_err(|e| e.to_string())?;
                let unix = self.now().unix_micros() / 1_000_000;
                let headers = vec![
                    ("Tessera-Event-Id".to_string(), id.to_string()),
                    (
                        "Tessera-Signature".to_string(),
                        webhook_signature(&secret, unix, &body),
                    ),
                ];
                let status = notifier.post_webhook(url, &body, &headers).await?;
                if (200..300).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("the webhook answered {status}"))
                }
            }
        }
    }

    fn notifier(&self) -> Option<Arc<dyn Notifier>> {
        self.notifier.get().cloned()
    }

    /// Gives the kernel its delivery adapter (once).
    pub fn set_notifier(&self, notifier: Arc<dyn Notifier>) {
        let _ = self.notifier.set(notifier);
    }
}

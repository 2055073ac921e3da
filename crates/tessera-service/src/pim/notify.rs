//! What PIM tells, through the outbox (`kernel::outbox`), in the transaction of
//! the change: approvers when a request waits, the requester when it is
//! answered, administrators when a privileged role is activated.

use serde_json::json;
use tessera_core::TenantId;
use tessera_directory::model::UserSpec;
use tessera_pim::Approver;
use tessera_store::{Kind, Reader, Rel, WriteTx};
use uuid::Uuid;

use super::Pim;
use crate::codec;
use crate::error::ServiceResult;
use crate::kernel::outbox::{Notification, NotificationSettings};

/// A user's mail address and name, when they have an address.
async fn mail_of(
    reader: &mut dyn Reader,
    tenant: TenantId,
    user: Uuid,
) -> ServiceResult<Option<(String, String)>> {
    let Some(record) = reader.get(tenant, Kind::User, user).await? else {
        return Ok(None);
    };
    let spec: UserSpec = codec::data(&record)?;
    Ok(spec.mail.map(|mail| (mail, spec.display_name)))
}

/// What the notifications name about a request.
pub(crate) struct About<'a> {
    pub request: Uuid,
    pub action: &'a str,
    pub role: &'a str,
    pub role_id: Uuid,
    pub privileged: bool,
    pub principal: Uuid,
    pub justification: Option<&'a str>,
}

impl Pim {
    async fn administrator_emails(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
    ) -> ServiceResult<Vec<String>> {
        let settings: NotificationSettings =
            crate::kernel::tenant_settings::read_setting(tx, tenant).await?;
        Ok(settings.administrator_emails)
    }

    async fn name_of(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        user: Uuid,
    ) -> ServiceResult<String> {
        let Some(record) = tx.get(tenant, Kind::User, user).await? else {
            return Ok(user.to_string());
        };
        let spec: UserSpec = codec::data(&record)?;
        Ok(format!(
            "{} ({})",
            spec.display_name, spec.user_principal_name
        ))
    }

    /// A request waits: its approvers (named users, members of named groups;
    /// else the administrators' addresses) are asked.
    pub(crate) async fn notify_waiting(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        about: &About<'_>,
        approvers: &[Approver],
        expires: tessera_core::Timestamp,
    ) -> ServiceResult<()> {
        let mut recipients = Vec::new();
        for approver in approvers {
            let users: Vec<Uuid> = match approver {
                Approver::User(id) => vec![*id],
                Approver::Group(group) => {
                    let mut users: Vec<Uuid> = tx
                        .links_from(tenant, Rel::Member, *group, None, 1000)
                        .await?
                        .into_iter()
                        .filter(|link| link.target_kind == Kind::User)
                        .map(|link| link.target)
                        .collect();
                    // Members through PIM at this moment approve too.
                    users.extend(
                        crate::directory::role_schedules::members_at(
                            tx,
                            tenant,
                            *group,
                            self.now(),
                        )
                        .await?,
                    );
                    users
                }
            };
            for user in users {
                if user == about.principal {
                    continue;
                }
                if let Some((mail, _)) = mail_of(tx, tenant, user).await?
                    && !recipients.contains(&mail)
                {
                    recipients.push(mail);
                }
            }
        }
        if approvers.is_empty() {
            recipients = self.administrator_emails(tx, tenant).await?;
        }
        let who = self.name_of(tx, tenant, about.principal).await?;
        let subject = format!("Approval needed: {who} asks for {}", about.role);
        let text = format!(
            "{who} asks to {} the role {}.\nJustification: {}\nAnswer before {} (request {}): \
             tessera pim approve {} (or deny), or the console's Approvals page.\n",
            about.action,
            about.role,
            about.justification.unwrap_or("(none)"),
            expires,
            about.request,
            about.request,
        );
        self.notify(
            tx,
            tenant,
            Notification {
                topic: "pim.approvalRequested".to_string(),
                subject,
                text,
                recipients,
                data: json!({
                    "requestId": about.request, "action": about.action,
                    "roleDefinitionId": about.role_id, "role": about.role,
                    "principalId": about.principal, "approvalExpiresDateTime": expires,
                }),
            },
        )
        .await
    }

    /// A request was answered (approved, denied or timed out): its requester is
    /// told.
    pub(crate) async fn notify_answered(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        about: &About<'_>,
        requester: Uuid,
        outcome: &str,
    ) -> ServiceResult<()> {
        let recipients: Vec<String> = mail_of(tx, tenant, requester)
            .await?
            .map(|(mail, _)| mail)
            .into_iter()
            .collect();
        self.notify(
            tx,
            tenant,
            Notification {
                topic: "pim.requestDecided".to_string(),
                subject: format!("Your request for {} was {outcome}", about.role),
                text: format!(
                    "Your request to {} the role {} (request {}) was {outcome}.\n",
                    about.action, about.role, about.request
                ),
                recipients,
                data: json!({
                    "requestId": about.request, "action": about.action,
                    "roleDefinitionId": about.role_id, "role": about.role,
                    "principalId": about.principal, "outcome": outcome,
                }),
            },
        )
        .await
    }

    /// A privileged role was activated: the administrators are told.
    pub(crate) async fn notify_activated(
        &self,
        tx: &mut dyn WriteTx,
        tenant: TenantId,
        about: &About<'_>,
        end: Option<tessera_core::Timestamp>,
    ) -> ServiceResult<()> {
        if !about.privileged {
            return Ok(());
        }
        let recipients = self.administrator_emails(tx, tenant).await?;
        let who = self.name_of(tx, tenant, about.principal).await?;
        let until = end
            .map(|e| e.to_string())
            .unwrap_or_else(|| "no end".to_string());
        self.notify(
            tx,
            tenant,
            Notification {
                topic: "pim.privilegedRoleActivated".to_string(),
                subject: format!("{who} activated {}", about.role),
                text: format!(
                    "{who} activated the privileged role {} until {until}.\nJustification: {}\n",
                    about.role,
                    about.justification.unwrap_or("(none)"),
                ),
                recipients,
                data: json!({
                    "requestId": about.request, "roleDefinitionId": about.role_id,
                    "role": about.role, "principalId": about.principal, "endDateTime": end,
                }),
            },
        )
        .await
    }
}

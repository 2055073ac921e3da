//! My Account: what a signed-in user sees and does about themselves, with their
//! browser session as the only credential (no administrator role): their profile,
//! their recent sign-ins and a "this wasn't me" report, and My Apps, the
//! applications they are assigned to.

use serde::Serialize;
use serde_json::json;
use tessera_directory::audit_action::AuditAction;
use tessera_directory::model::{ApplicationData, ServicePrincipalData, User};
use tessera_store::{Kind, ListQuery, SignInQuery};
use uuid::Uuid;

use super::SignInEntry;
use super::sessions::SessionInfo;
use crate::codec;
use crate::error::{ServiceError, ServiceResult};
use crate::{EventDraft, SignIn};

/// How far back My Account's sign-ins and a report may reach.
pub const MY_SIGN_INS: u32 = 50;

/// An application on My Apps.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MyApp {
    pub service_principal_id: Uuid,
    pub display_name: String,
    /// Where opening it goes: its sign-in page (`loginUrl`), or for a SAML
    /// application Tessera's IdP-initiated sign-on; `None` when there is neither
    /// (a redirect URI is no page to open: it may be a development address).
    pub launch_url: Option<String>,
}

impl SignIn {
    /// The signed-in user's own directory entry.
    pub async fn my_profile(&self, session: &SessionInfo) -> ServiceResult<User> {
        let mut reader = self.reader().await?;
        let record =
            codec::load(reader.as_mut(), session.tenant, Kind::User, session.user_id).await?;
        let mut user = crate::directory::users::user_from(&record)?;
        // Custom security attributes are for attribute administrators, not their subject.
        user.spec.custom_security_attributes.clear();
        Ok(user)
    }

    /// The user's own recent sign-ins, newest first.
    pub async fn my_sign_ins(&self, session: &SessionInfo) -> ServiceResult<Vec<SignInEntry>> {
        let query = SignInQuery {
            user_id: Some(session.user_id),
            limit: MY_SIGN_INS,
            ..SignInQuery::default()
        };
        self.store
            .sign_in_query(session.tenant, &query)
            .await?
            .iter()
            .map(super::log_storage::entry_of)
            .collect()
    }

    /// "This wasn't me": the user reports one of their own recent sign-ins. The
    /// report is an audit event (`user.signIn.report`) with what the entry said, for
    /// the administrators and the risk engine; reporting it again changes nothing.
    pub async fn report_sign_in(&self, session: &SessionInfo, entry: Uuid) -> ServiceResult<()> {
        let mine = self.my_sign_ins(session).await?;
        let Some(reported) = mine.iter().find(|e| e.id == entry) else {
            return Err(ServiceError::NotFound {
                kind: "signIn",
                id: entry.to_string(),
            });
        };
        // Once per sign-in: a second report of the same one writes nothing.
        let earlier = self
            .store
            .audit_query(
                session.tenant,
                &tessera_store::AuditQuery {
                    target_id: Some(session.user_id.to_string()),
                    action: Some(AuditAction::UserSignInReport.as_str().to_string()),
                    limit: 1000,
                    ..tessera_store::AuditQuery::default()
                },
            )
            .await?;
        let needle = format!("\"signInId\":\"{entry}\"");
        if earlier.iter().any(|row| row.body.contains(&needle)) {
            return Ok(());
        }
        let ctx = crate::kernel::system_context(session.tenant, "my account");
        let ctx = crate::Context {
            caller: crate::Caller {
                principal: crate::Principal::User {
                    id: session.user_id,
                    user_principal_name: session.user_principal_name.clone(),
                },
                grants: Vec::new(),
                credential: Some("session".to_string()),
                issued_credential: None,
                proof: None,
                protected: Default::default(),
            },
            ..ctx
        };
        // For Identity Protection, first (the audit event is what makes a
        // second report a repeat): a detection on the reported sign-in, which
        // makes the user's risk high until they remediate it.
        let facts = crate::risk::SignInFacts {
            sign_in: Some(reported.id),
            at: reported.created_date_time,
            user_id: Some(session.user_id),
            user_principal_name: &session.user_principal_name,
            client_address: reported.client_address.as_deref(),
            correlation_id: &reported.correlation_id,
        };
        let detection = tessera_risk::Detection::new(
            tessera_risk::EventType::UserReportedSuspiciousActivity,
            tessera_risk::RiskLevel::High,
            json!({"signInId": reported.id, "reportedBy": "user"}),
        );
        self.risk
            .record(session.tenant, &facts, &[detection])
            .await?;
        let tx = self.write(&ctx).await?;
        let event = EventDraft::new(AuditAction::UserSignInReport)
            .on(Kind::User, session.user_id, &session.user_principal_name)
            .details(json!({
                "signInId": reported.id,
                "signInTime": reported.created_date_time,
                "appDisplayName": reported.app_display_name,
                "clientAddress": reported.client_address,
                "userAgent": reported.user_agent,
                "result": reported.result,
                "correlationId": reported.correlation_id,
            }));
        self.commit(tx, &ctx, event).await
    }

    /// My Apps: the enabled applications the user is assigned to, directly or
    /// through a group (nested), by name.
    pub async fn my_apps(&self, session: &SessionInfo) -> ServiceResult<Vec<MyApp>> {
        let mut reader = self.reader().await?;
        let tenant = session.tenant;
        let mut principals = crate::directory::groups::containing_groups(
            reader.as_mut(),
            tenant,
            session.user_id,
            true,
            self.now(),
        )
        .await?;
        principals.push(session.user_id);
        let mut resources: Vec<Uuid> = Vec::new();
        for principal in principals {
            // Assignments sort by `<principal>:<role>`: one prefix query each.
            let query = ListQuery {
                after: None,
                limit: 1000,
                prefix: Some(format!("{principal}:")),
                key2: None,
            };
            for record in reader.list(tenant, Kind::AppRoleAssignment, &query).await? {
                if let Some(resource) = record.key2.as_deref().and_then(|k| Uuid::parse_str(k).ok())
                    && !resources.contains(&resource)
                {
                    resources.push(resource);
                }
            }
        }
        let mut apps = Vec::new();
        for resource in resources {
            let Some(record) = reader.get(tenant, Kind::ServicePrincipal, resource).await? else {
                continue;
            };
            let principal: ServicePrincipalData = codec::data(&record)?;
            if !principal.spec.account_enabled {
                continue;
            }
            let app = match reader
                .get_by_key1(
                    tenant,
                    Kind::Application,
                    &principal.spec.app_id.to_string(),
                )
                .await?
            {
                Some(record) => Some(codec::data::<ApplicationData>(&record)?),
                None => None,
            };
            let display_name = principal
                .spec
                .display_name
                .clone()
                .or_else(|| app.as_ref().map(|a| a.spec.display_name.clone()))
                .unwrap_or_else(|| principal.spec.app_id.to_string());
            // Its sign-in page when it names one; otherwise a SAML application
            // is opened by Tessera's IdP-initiated sign-on.
            let launch_url = match &principal.spec.login_url {
                Some(url) => Some(url.clone()),
                None => {
                    let saml = reader
                        .list(
                            tenant,
                            Kind::SamlApp,
                            &ListQuery {
                                after: None,
                                limit: 1,
                                prefix: None,
                                key2: Some(principal.spec.app_id.to_string()),
                            },
                        )
                        .await?;
                    (!saml.is_empty()).then(|| format!("/saml2/apps/{}/sso", principal.spec.app_id))
                }
            };
            apps.push(MyApp {
                service_principal_id: record.id,
                display_name,
                launch_url,
            });
        }
        apps.sort_by(|a, b| {
            a.display_name
                .to_lowercase()
                .cmp(&b.display_name.to_lowercase())
        });
        Ok(apps)
    }
}

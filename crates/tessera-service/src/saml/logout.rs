//! Single Logout (SAML profiles §4.4), over the front channel (the browser, by
//! the redirect or the POST binding).
//!
//! A service provider's `LogoutRequest` at `/saml2/slo` is checked as an
//! AuthnRequest is (a known issuer, its destination, fresh, seen once) and must
//! be signed (SAML profiles §4.4.4.1; an application without a signing
//! certificate cannot start a logout, only take part in one). It ends the
//! browser's Tessera session only when the application signed in through it and
//! the request names it: by the `SessionIndex` this application was given (one
//! per session and application), or by the NameID it was given when it names no
//! session. Ending the session tells the OpenID
//! Connect applications over the back channel, as any sign-out does. The other
//! SAML applications the session signed in to that have a logout service are
//! then sent a `LogoutRequest` each, one after the other through the browser
//! (their `RelayState` names the run, so a cross-site POST back needs no
//! cookie), and at the end the application that asked gets its
//! `LogoutResponse`: `Success`, or `Success/PartialLogout` when one of the
//! others did not confirm. Signing out at Tessera (or by OpenID Connect's
//! logout) runs the same chain with no one to answer, and ends where the
//! sign-out would have.
//!
//! Sessions that end without a browser (an administrator's revocation, a
//! credential change) cannot be carried to SAML applications this way; their
//! assertions' `SessionNotOnOrAfter` bounds them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tessera_core::crypto::{generate_secret, secret_hash};
use tessera_core::{AppId, SecretString, TenantId};
use tessera_saml::binding::{self, DetachedSignature, Kind as MessageKind};
use tessera_saml::config::{LogoutBinding, SamlSettings};
use tessera_saml::dsig;
use tessera_saml::logout::{
    LogoutRequest, LogoutRequestContent, LogoutResponse, LogoutResponseContent, logout_request,
    logout_response,
};
use tessera_saml::response::{self, PARTIAL_LOGOUT, Status};
use tessera_saml::xml::{Document, Element};
use tessera_store::SessionRow;
use uuid::Uuid;

use super::sso::{Admission, CLOCK_SKEW, NotAdmitted, SsoContext, checked_signature, random_id};
use super::{Received, Saml, SamlMessage, read_message};
use crate::error::{ServiceError, ServiceResult};
use crate::sign_in::{SessionInfo, lineage_of};

const RUN_PREFIX: &str = "saml-slo:";
/// A logout run waits this long for the browser to come back.
const RUN_SECONDS: i64 = 10 * 60;
/// How long a LogoutRequest Tessera sends may be acted on.
const REQUEST_SECONDS: i64 = 5 * 60;

/// Where the browser goes next.
#[derive(Debug)]
pub enum SloOutcome {
    /// Shown to the user: nothing can go on.
    Refused(String),
    /// To this URL: a redirect-binding message to an application, or the page
    /// a Tessera sign-out ends on.
    Redirect(String),
    /// An auto-submitted form (the POST binding).
    Post {
        url: String,
        fields: Vec<(&'static str, String)>,
    },
    /// A LogoutRequest that came by a cross-site POST (which brings no Lax session
    /// cookie) waits for the same-site `GET /saml2/slo/continue?run=…`.
    Recheck { run: SecretString },
    /// Signed out, and no application to go back to.
    SignedOut,
}

/// The outcome, and whether the browser's session ended (its cookie goes).
#[derive(Debug)]
pub struct SloAnswer {
    pub outcome: SloOutcome,
    pub session_ended: bool,
}

impl From<SloOutcome> for SloAnswer {
    fn from(outcome: SloOutcome) -> SloAnswer {
        SloAnswer {
            outcome,
            session_ended: false,
        }
    }
}

/// A logout in progress, kept under the secret its messages carry as RelayState.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    /// The user and browser session (its lineage) being logged out (none while a
    /// POST-bound request waits for the browser's session).
    user: Option<Uuid>,
    lineage: Option<String>,
    /// Applications still to be told.
    remaining: Vec<AppId>,
    /// The LogoutRequest sent and not yet answered: to which application, its ID.
    awaiting: Option<(AppId, String)>,
    /// An application did not confirm its logout.
    partial: bool,
    /// The application that asked, answered at the end.
    origin: Option<Origin>,
    /// A POST-bound request, matched against the session once it is seen.
    asked: Option<Asked>,
    /// Where a sign-out at Tessera ends (none: the "signed out" page).
    then: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Origin {
    app_id: AppId,
    request_id: String,
    relay_state: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Asked {
    name_id: String,
    session_indexes: Vec<String>,
}

impl Saml {
    fn slo_url(&self) -> String {
        format!("{}/saml2/slo", self.public_url())
    }

    /// `GET|POST /saml2/slo`: a service provider's LogoutRequest, or its
    /// LogoutResponse to one Tessera sent.
    pub async fn slo(
        &self,
        ctx: &SsoContext,
        message: SamlMessage<'_>,
        session: Option<&SessionInfo>,
    ) -> SloAnswer {
        let Received {
            kind,
            document,
            relay_state,
            detached,
            via_post,
        } = match read_message(message) {
            Ok(received) => received,
            Err(message) => return refused(&message),
        };
        match kind {
            MessageKind::Request => {
                self.logout_requested(ctx, &document, relay_state, detached, via_post, session)
                    .await
            }
            MessageKind::Response => self
                .logout_answered(ctx, &document, relay_state, detached.as_ref())
                .await
                .into(),
        }
    }

    async fn logout_requested(
        &self,
        ctx: &SsoContext,
        document: &Document,
        relay_state: Option<String>,
        detached: Option<DetachedSignature>,
        via_post: bool,
        session: Option<&SessionInfo>,
    ) -> SloAnswer {
        let request = match LogoutRequest::from_document(document) {
            Ok(request) => request,
            Err(error) => return refused(&format!("the logout request cannot be used: {error}")),
        };
        let (app_id, settings) = match self.by_entity_id(ctx.tenant, &request.issuer).await {
            Ok(Some(found)) => found,
            Ok(None) => return refused("the application that sent this request is not known here"),
            Err(error) => return failed(error).into(),
        };
        // A logout request is signed (SAML profiles §4.4.4.1): an unsigned one
        // could come from anyone who knows a user's NameID.
        match checked_signature(&settings, document, detached.as_ref()) {
            Ok(true) => {}
            Ok(false) if settings.signing_keys().is_empty() => {
                return refused(
                    "this application has no signing certificate, so its logout requests cannot be checked",
                );
            }
            Ok(false) => return refused("this application's logout requests must be signed"),
            Err(message) => return refused(&message),
        }
        let admission = Admission {
            endpoint: &self.slo_url(),
            signed: true,
            issuer: &request.issuer,
            id: &request.id,
            issue_instant: request.issue_instant_unix(),
            destination: request.destination.as_deref(),
        };
        if !request.in_time(self.now().unix_seconds(), CLOCK_SKEW) {
            return refused("the request's NotOnOrAfter has passed");
        }
        match self.admit(ctx.tenant, admission).await {
            Ok(()) => {}
            Err(NotAdmitted::Refused(message)) => return refused(message),
            Err(NotAdmitted::Failed(error)) => return failed(error).into(),
        }
        let origin = Origin {
            app_id,
            request_id: request.id,
            relay_state,
        };
        let asked = Asked {
            name_id: request.name_id,
            session_indexes: request.session_indexes,
        };
        if via_post && session.is_none() {
            let run = Run {
                origin: Some(origin),
                asked: Some(asked),
                ..Run::default()
            };
            return match self.save_run(ctx.tenant, &run).await {
                Ok(run) => SloOutcome::Recheck { run }.into(),
                Err(error) => failed(error).into(),
            };
        }
        self.act_on_request(ctx, origin, asked, &settings, session)
            .await
    }

    /// `GET /saml2/slo/continue?run=…`: a POST-bound LogoutRequest, now with the
    /// browser's session if it has one.
    pub async fn slo_continue(
        &self,
        ctx: &SsoContext,
        run: &str,
        session: Option<&SessionInfo>,
    ) -> SloAnswer {
        let run = match self.take_run(ctx.tenant, run).await {
            Ok(run) => run,
            Err(outcome) => return outcome.into(),
        };
        let (Some(origin), Some(asked), None) = (run.origin, run.asked, run.user) else {
            return refused("this sign-out is not waiting here");
        };
        let settings = match self.settings_of(ctx.tenant, origin.app_id).await {
            Ok(Some(settings)) => settings,
            Ok(None) => return refused("this application no longer uses SAML"),
            Err(error) => return failed(error).into(),
        };
        self.act_on_request(ctx, origin, asked, &settings, session)
            .await
    }

    /// Ends the session the request names, if it is this browser's, then tells
    /// the session's other applications and answers the one that asked.
    async fn act_on_request(
        &self,
        ctx: &SsoContext,
        origin: Origin,
        asked: Asked,
        settings: &SamlSettings,
        session: Option<&SessionInfo>,
    ) -> SloAnswer {
        let mut run = Run {
            origin: Some(origin.clone()),
            ..Run::default()
        };
        let mut ended = false;
        if let Some(session) = session {
            let lineage = lineage_of(session);
            // Only an application the session signed in to may end it.
            let took_part = session
                .data
                .apps
                .iter()
                .any(|app| *app == origin.app_id.to_string());
            let named = self
                .session_index(ctx.tenant, &lineage, origin.app_id)
                .await
                .is_ok_and(|index| asked.session_indexes.contains(&index));
            let name_matches = match self.name_facts(ctx.tenant, session.user_id).await {
                Ok(facts) => self
                    .issued_name_id(ctx.tenant, origin.app_id, settings, &facts, &lineage)
                    .await
                    .is_ok_and(|issued| issued.value == asked.name_id),
                Err(_) => false,
            };
            if !(took_part && names_session(&asked, named, name_matches)) && name_matches {
                // The user is still signed in here, by another session than the
                // one the application named: not a full logout.
                run.partial = true;
            }
            if took_part && names_session(&asked, named, name_matches) {
                match self.end_browser_session(ctx.tenant, session).await {
                    Ok(()) => ended = true,
                    Err(error) => return failed(error).into(),
                }
                run.user = Some(session.user_id);
                run.lineage = Some(lineage);
                run.remaining = other_apps(session, Some(origin.app_id));
            }
        }
        SloAnswer {
            outcome: self.advance(ctx, run).await,
            session_ended: ended,
        }
    }

    /// After a sign-out at Tessera (the session already ended): tells the SAML
    /// applications the session signed in to that have a logout service, then
    /// goes to `then` (none: the "signed out" page). `None` when there is no
    /// such application.
    pub async fn logout_applications(
        &self,
        ctx: &SsoContext,
        session: &SessionInfo,
        then: Option<String>,
    ) -> Option<SloOutcome> {
        let mut remaining = Vec::new();
        for app_id in other_apps(session, None) {
            if let Ok(Some(settings)) = self.settings_of(ctx.tenant, app_id).await
                && settings.logout_url.is_some()
            {
                remaining.push(app_id);
            }
        }
        if remaining.is_empty() {
            return None;
        }
        let run = Run {
            user: Some(session.user_id),
            lineage: Some(lineage_of(session)),
            remaining,
            then,
            ..Run::default()
        };
        Some(self.advance(ctx, run).await)
    }

    /// A service provider's LogoutResponse to the request Tessera sent it: the run
    /// its RelayState names goes on with the next application. A response that
    /// does not check out (another issuer, a bad signature, a failure status)
    /// only marks the logout partial: the user is signed out of Tessera already.
    async fn logout_answered(
        &self,
        ctx: &SsoContext,
        document: &Document,
        relay_state: Option<String>,
        detached: Option<&DetachedSignature>,
    ) -> SloOutcome {
        let Some(relay_state) = relay_state else {
            return SloOutcome::Refused("a logout response without its RelayState".into());
        };
        let mut run = match self.take_run(ctx.tenant, &relay_state).await {
            Ok(run) => run,
            Err(outcome) => return outcome,
        };
        let Some((app_id, request_id)) = run.awaiting.take() else {
            return SloOutcome::Refused("this sign-out awaits no logout response".into());
        };
        let confirmed = match (
            LogoutResponse::from_document(document),
            self.settings_of(ctx.tenant, app_id).await,
        ) {
            (Ok(response), Ok(Some(settings))) => {
                // Signed where the application has a key to sign with, and then
                // addressed here (SAML bindings §3.4.5.2, §3.5.5.2).
                let signed = checked_signature(&settings, document, detached).unwrap_or_default();
                let destination = match &response.destination {
                    Some(destination) => *destination == self.slo_url(),
                    None => !signed,
                };
                response.issuer == settings.entity_id
                    && response.in_response_to.as_deref() == Some(request_id.as_str())
                    && destination
                    && (signed || settings.signing_keys().is_empty())
                    && response.succeeded()
            }
            _ => false,
        };
        if !confirmed {
            tracing::info!(%app_id, "an application did not confirm its single logout");
            run.partial = true;
        }
        self.advance(ctx, run).await
    }

    /// Sends the next application its LogoutRequest, or, when none is left,
    /// answers the application that asked (or goes where the sign-out ends).
    async fn advance(&self, ctx: &SsoContext, mut run: Run) -> SloOutcome {
        while let (Some(user), Some(lineage), Some(app_id)) =
            (run.user, run.lineage.clone(), run.remaining.pop())
        {
            let settings = match self.settings_of(ctx.tenant, app_id).await {
                Ok(Some(settings)) if settings.logout_url.is_some() => settings,
                Ok(_) => continue,
                Err(error) => return failed(error),
            };
            match self
                .logout_request_to(ctx, &mut run, app_id, &settings, user, &lineage)
                .await
            {
                Ok(outcome) => return outcome,
                Err(error) => {
                    tracing::warn!(%error, %app_id, "cannot send a single logout request");
                    run.partial = true;
                }
            }
        }
        match run.origin {
            Some(origin) => match self.logout_response_to(ctx, &origin, run.partial).await {
                Ok(outcome) => outcome,
                Err(error) => failed(error),
            },
            None => match run.then {
                Some(then) => SloOutcome::Redirect(then),
                None => SloOutcome::SignedOut,
            },
        }
    }

    async fn logout_request_to(
        &self,
        ctx: &SsoContext,
        run: &mut Run,
        app_id: AppId,
        settings: &SamlSettings,
        user: Uuid,
        lineage: &str,
    ) -> ServiceResult<SloOutcome> {
        let facts = self.name_facts(ctx.tenant, user).await?;
        let name_id = self
            .issued_name_id(ctx.tenant, app_id, settings, &facts, lineage)
            .await?;
        let session_index = self.session_index(ctx.tenant, lineage, app_id).await?;
        let id = random_id()?;
        let now = self.now().unix_seconds();
        let url = settings
            .logout_url
            .clone()
            .ok_or_else(|| ServiceError::Internal("no logout service".into()))?;
        let request = logout_request(&LogoutRequestContent {
            id: id.clone(),
            issue_instant: now,
            destination: url.clone(),
            issuer: self.entity_id(),
            name_id,
            session_index,
            not_on_or_after: now + REQUEST_SECONDS,
        });
        run.awaiting = Some((app_id, id));
        let secret = self.save_run(ctx.tenant, run).await?;
        self.send(
            ctx.tenant,
            app_id,
            settings,
            "SAMLRequest",
            request,
            Some(secret.expose()),
        )
        .await
    }

    async fn logout_response_to(
        &self,
        ctx: &SsoContext,
        origin: &Origin,
        partial: bool,
    ) -> ServiceResult<SloOutcome> {
        let Some(settings) = self.settings_of(ctx.tenant, origin.app_id).await? else {
            return Ok(SloOutcome::SignedOut);
        };
        let Some(url) = settings.logout_url.clone() else {
            return Ok(SloOutcome::SignedOut);
        };
        let response = logout_response(&LogoutResponseContent {
            id: random_id()?,
            in_response_to: origin.request_id.clone(),
            issue_instant: self.now().unix_seconds(),
            destination: url,
            issuer: self.entity_id(),
            status: if partial {
                Status::SuccessWith(PARTIAL_LOGOUT)
            } else {
                Status::Success
            },
        });
        self.send(
            ctx.tenant,
            origin.app_id,
            &settings,
            "SAMLResponse",
            response,
            origin.relay_state.as_deref(),
        )
        .await
    }

    /// A logout message to the application's logout service, signed, by its
    /// binding.
    async fn send(
        &self,
        tenant: TenantId,
        app_id: AppId,
        settings: &SamlSettings,
        name: &'static str,
        mut message: Element,
        relay_state: Option<&str>,
    ) -> ServiceResult<SloOutcome> {
        let url = settings
            .logout_url
            .clone()
            .ok_or_else(|| ServiceError::Internal("no logout service".into()))?;
        let key = self.signing_key(tenant, app_id).await?;
        let internal = |e: dsig::SignatureError| ServiceError::Internal(e.to_string());
        Ok(match settings.logout_binding {
            LogoutBinding::Redirect => {
                let query = binding::write_redirect(
                    name,
                    &response::serialize(&message),
                    relay_state,
                    Some(&key),
                )
                .map_err(internal)?;
                let separator = if url.contains('?') { '&' } else { '?' };
                SloOutcome::Redirect(format!("{url}{separator}{query}"))
            }
            LogoutBinding::Post => {
                dsig::sign_enveloped(&mut message, &key, response::SIGNATURE_POSITION)
                    .map_err(internal)?;
                let mut fields = vec![(name, STANDARD.encode(response::serialize(&message)))];
                if let Some(relay) = relay_state {
                    fields.push(("RelayState", relay.to_string()));
                }
                SloOutcome::Post { url, fields }
            }
        })
    }

    /// Ends the browser's session and tells those that listen (OpenID Connect
    /// back-channel logout).
    async fn end_browser_session(
        &self,
        tenant: TenantId,
        session: &SessionInfo,
    ) -> ServiceResult<()> {
        if self.store().session_delete(tenant, &session.row.id).await? {
            self.sessions_ended(tenant, std::slice::from_ref(&session.row))
                .await;
        }
        Ok(())
    }

    /// Stores the run under a new secret.
    async fn save_run(&self, tenant: TenantId, run: &Run) -> ServiceResult<SecretString> {
        let generated = generate_secret("").map_err(|e| ServiceError::Internal(e.to_string()))?;
        let row = SessionRow::transient(
            format!("{RUN_PREFIX}{}", generated.hash),
            self.now(),
            RUN_SECONDS,
            serde_json::to_string(run).map_err(|e| ServiceError::Internal(e.to_string()))?,
        );
        self.store().session_insert(tenant, &row).await?;
        Ok(generated.secret)
    }

    /// The run a secret names, used up (each step of a run has its own secret).
    async fn take_run(&self, tenant: TenantId, secret: &str) -> Result<Run, SloOutcome> {
        let expired = || {
            SloOutcome::Refused(
                "this sign-out took too long or was already finished: sign out again".into(),
            )
        };
        if secret.is_empty() || secret.len() > 128 {
            return Err(expired());
        }
        let id = format!("{RUN_PREFIX}{}", secret_hash(secret));
        let row = match self.store().session_get(tenant, &id).await {
            Ok(Some(row)) if row.expires > self.now() && row.revoked.is_none() => row,
            Ok(_) => return Err(expired()),
            Err(error) => return Err(failed(error.into())),
        };
        match self.store().session_delete(tenant, &id).await {
            Ok(true) => {}
            Ok(false) => return Err(expired()),
            Err(error) => return Err(failed(error.into())),
        }
        serde_json::from_str::<Run>(&row.data).map_err(|_| expired())
    }
}

/// Whether a (signed) LogoutRequest names the browser's session: by the
/// SessionIndex the application was given for it (`named`), or, when it names no
/// session, by the NameID the application knows the user by (`name_matches`).
fn names_session(asked: &Asked, named: bool, name_matches: bool) -> bool {
    named || (asked.session_indexes.is_empty() && name_matches)
}

/// The applications a session signed in to, but `except`.
fn other_apps(session: &SessionInfo, except: Option<AppId>) -> Vec<AppId> {
    session
        .data
        .apps
        .iter()
        .filter_map(|app| app.parse::<AppId>().ok())
        .filter(|app| Some(*app) != except)
        .collect()
}

fn refused(message: &str) -> SloAnswer {
    SloOutcome::Refused(message.chars().take(300).collect()).into()
}

fn failed(error: ServiceError) -> SloOutcome {
    tracing::error!(%error, "SAML single logout failed");
    SloOutcome::Refused("Tessera could not finish signing out: try again later.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logout_request_names_a_session_by_its_index_or_user() {
        let asked = |indexes: &[&str]| Asked {
            name_id: "n".into(),
            session_indexes: indexes.iter().map(|s| s.to_string()).collect(),
        };
        assert!(names_session(&asked(&["s"]), true, false));
        assert!(names_session(&asked(&[]), false, true));
        assert!(!names_session(&asked(&[]), false, false));
        // Another session named: the user's NameID does not stand in for it.
        assert!(!names_session(&asked(&["t"]), false, true));
    }
}

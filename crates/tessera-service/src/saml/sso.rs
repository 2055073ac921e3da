//! The Web Browser SSO profile: an AuthnRequest (redirect or POST binding) or an
//! IdP-initiated sign-on is checked, waits server-side while the user signs in,
//! goes through the app sign-in step (session, Conditional Access, assignment),
//! and is answered with a Response posted to the application's consumer service.
//!
//! Nothing is sent to a consumer service the application did not register: a
//! request that cannot be trusted (unknown issuer, bad or missing signature where
//! one is required, an unregistered consumer URL) is answered on a page. A request
//! id is accepted once, and only while the request is fresh.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tessera_authn::strength;
use tessera_ca::engine::ClientApp;
use tessera_core::crypto::{generate_secret, secret_hash};
use tessera_core::{AppId, SecretString, TenantId, Timestamp};
use tessera_directory::model::{ApplicationData, UserSpec};
use tessera_saml::binding::{self, Kind as MessageKind};
use tessera_saml::config::{
    GroupFilter, GroupName, Pairwise, SamlSettings, Source, UserFacts, attributes, name_id,
};
use tessera_saml::dsig;
use tessera_saml::encrypt::{self, DataAlgorithm};
use tessera_saml::request::{AuthnRequest, Comparison, ConsumerService as Consumer};
use tessera_saml::response::{
    self, AssertionContent, INVALID_NAME_ID_POLICY, NO_AUTHN_CONTEXT, NO_PASSIVE, REQUEST_DENIED,
    REQUESTER, RESPONDER, ResponseContent, Status,
};
use tessera_store::{Kind, SessionRow};
use uuid::Uuid;

use super::{Received, Saml, SamlMessage, read_message};
use crate::app_sign_in::{AccessRequest, Demands, StepUp, TermsToAccept, Verdict};
use crate::codec;
use crate::error::{ServiceError, ServiceResult};
use crate::sign_in::interruptions::{AnswerRefused, InterruptionAnswer};
use crate::sign_in::{SessionInfo, SignInEntry};

/// A request waits this long for the user to sign in.
const PENDING_SECONDS: i64 = 15 * 60;
const PENDING_PREFIX: &str = "saml:";
const SEEN_PREFIX: &str = "saml-id:";
/// How old a request may be, and how far ahead of this clock.
const REQUEST_MAX_AGE: i64 = 10 * 60;
pub(super) const CLOCK_SKEW: i64 = 3 * 60;
/// How long the bearer confirmation of an assertion holds.
const CONFIRMATION_SECONDS: i64 = 5 * 60;

/// Where a request comes from.
#[derive(Debug, Clone)]
pub struct SsoContext {
    pub tenant: TenantId,
    pub correlation_id: String,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// SHA-256 (hex) of the TLS client certificate, which may name a device.
    pub device_thumbprint: Option<String>,
}

/// A request from a service provider, as `Saml::admit` checks it.
pub(super) struct Admission<'a> {
    /// This endpoint's URL.
    pub endpoint: &'a str,
    /// The request's signature was verified.
    pub signed: bool,
    pub issuer: &'a str,
    pub id: &'a str,
    pub issue_instant: Option<i64>,
    pub destination: Option<&'a str>,
}

/// Why a request is not admitted.
pub(super) enum NotAdmitted {
    Refused(&'static str),
    Failed(ServiceError),
}

/// A Response to post to a consumer service.
#[derive(Debug, Clone)]
pub struct SamlPost {
    pub url: String,
    /// The Response, base64.
    pub response: String,
    pub relay_state: Option<String>,
}

/// What the endpoint answers.
#[derive(Debug)]
pub enum SsoOutcome {
    /// Shown to the user: nothing may be sent to the application.
    Refused(String),
    /// Posted to the application: an assertion, or a status saying why not.
    Respond(SamlPost),
    /// The request waits under `pending` until the browser comes back with a
    /// same-site GET to `/saml2/sso/continue` (a cross-site POST brings no Lax
    /// session cookie).
    Recheck {
        pending: SecretString,
    },
    /// The user must sign in first (a stronger sign-in with `step_up`); the
    /// request waits under `pending`.
    SignIn {
        pending: SecretString,
        step_up: Option<StepUp>,
    },
    /// Conditional Access blocks this sign-in.
    Blocked {
        app_name: String,
        reason: String,
        correlation_id: String,
    },
    AcceptTerms {
        pending: SecretString,
        app_name: String,
        terms: Vec<TermsToAccept>,
        csrf: String,
    },
    ChangePassword {
        pending: SecretString,
        app_name: String,
        csrf: String,
    },
    PasswordRefused {
        message: String,
    },
}

/// A request waiting for the user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pending {
    app_id: AppId,
    /// The request answered (none for an IdP-initiated sign-on).
    request_id: Option<String>,
    consumer: String,
    relay_state: Option<String>,
    force_authn: bool,
    is_passive: bool,
    /// The strengths the requested authentication context needs.
    required: Vec<Uuid>,
    /// The classes the request named, and whether it asked for better than them.
    requested: Vec<String>,
    #[serde(default)]
    better: bool,
    /// The request came over the POST binding (a cross-site POST brings no Lax
    /// session cookie: the first answer goes through a same-site GET).
    #[serde(default)]
    via_post: bool,
    /// The session answering must have signed in at or after this (ForceAuthn, a
    /// step-up).
    signed_in_after: Option<Timestamp>,
    step_up: bool,
}

/// The SAML authentication context classes Tessera understands, with the
/// strength each needs (none: any sign-in).
const CLASSES: [(&str, Option<Uuid>); 10] = [
    ("urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified", None),
    ("urn:oasis:names:tc:SAML:2.0:ac:classes:Password", None),
    (
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        None,
    ),
    (
        "http://schemas.microsoft.com/claims/multipleauthn",
        Some(strength::MFA),
    ),
    ("urn:tessera:acr:mfa", Some(strength::MFA)),
    (
        "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
        Some(strength::MFA),
    ),
    (
        "urn:tessera:acr:passwordless-mfa",
        Some(strength::PASSWORDLESS_MFA),
    ),
    (
        "urn:tessera:acr:phishing-resistant-mfa",
        Some(strength::PHISHING_RESISTANT_MFA),
    ),
    (
        "urn:oasis:names:tc:SAML:2.0:ac:classes:X509",
        Some(strength::PHISHING_RESISTANT_MFA),
    ),
    (
        "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
        Some(strength::PHISHING_RESISTANT_MFA),
    ),
];

/// The strength a class needs, if Tessera knows the class.
fn class_strength(class: &str) -> Option<Option<Uuid>> {
    CLASSES
        .iter()
        .find(|(name, _)| *name == class)
        .map(|(_, strength)| *strength)
}

/// Strengths from weakest to strongest, for comparisons.
fn rank(strength: Option<Uuid>) -> u8 {
    match strength {
        None => 0,
        Some(s) if s == strength::MFA => 1,
        Some(s) if s == strength::PASSWORDLESS_MFA => 2,
        Some(_) => 3,
    }
}

/// What a requested authentication context needs: the strengths, or `None` when
/// Tessera cannot satisfy it (`NoAuthnContext`). `exact` and `minimum` are met by
/// any listed class (the weakest suffices for `minimum`); `better` needs the next
/// strength above the strongest listed; `maximum` asks for nothing more than the
/// weakest listed, so any sign-in meets it.
pub(crate) fn requirement(comparison: Comparison, classes: &[String]) -> Option<Vec<Uuid>> {
    let known: Vec<Option<Uuid>> = classes.iter().filter_map(|c| class_strength(c)).collect();
    if known.is_empty() {
        return None;
    }
    let weakest = known.iter().copied().min_by_key(|s| rank(*s)).flatten();
    Some(match comparison {
        Comparison::Exact | Comparison::Minimum => weakest.into_iter().collect(),
        Comparison::Maximum => Vec::new(),
        Comparison::Better => {
            let strongest = known.iter().map(|s| rank(*s)).max().unwrap_or(0);
            match strongest {
                0 => vec![strength::MFA],
                1 => vec![strength::PASSWORDLESS_MFA],
                2 => vec![strength::PHISHING_RESISTANT_MFA],
                _ => return None,
            }
        }
    })
}

/// The class stated in the assertion: a requested one that truly describes the
/// sign-in (never one listed under `better`, which the SP said is not enough),
/// else the strongest that Tessera's own names cover.
pub(crate) fn stated_class(
    requested: &[String],
    comparison: Comparison,
    strengths: &[Uuid],
    methods: &[String],
) -> String {
    let used = |mode: &str| methods.iter().any(|m| m == mode);
    let describes = |class: &str| match class {
        "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified" => true,
        "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
        | "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport" => used("password"),
        "http://schemas.microsoft.com/claims/multipleauthn" | "urn:tessera:acr:mfa" => {
            strengths.contains(&strength::MFA)
        }
        "urn:tessera:acr:passwordless-mfa" => strengths.contains(&strength::PASSWORDLESS_MFA),
        "urn:tessera:acr:phishing-resistant-mfa" => {
            strengths.contains(&strength::PHISHING_RESISTANT_MFA)
        }
        "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"
        | "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI" => {
            used("x509CertificateMultiFactor") || used("x509CertificateSingleFactor")
        }
        _ => false,
    };
    if comparison != Comparison::Better
        && let Some(class) = requested.iter().find(|c| describes(c))
    {
        return class.clone();
    }
    for (name, needed) in [
        (
            "urn:tessera:acr:phishing-resistant-mfa",
            strength::PHISHING_RESISTANT_MFA,
        ),
        (
            "urn:tessera:acr:passwordless-mfa",
            strength::PASSWORDLESS_MFA,
        ),
        (
            "http://schemas.microsoft.com/claims/multipleauthn",
            strength::MFA,
        ),
    ] {
        if strengths.contains(&needed) {
            return name.to_string();
        }
    }
    if used("password") {
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport".to_string()
    } else {
        "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified".to_string()
    }
}

impl Saml {
    fn sso_url(&self) -> String {
        format!("{}/saml2/sso", self.public_url())
    }

    /// `GET|POST /saml2/sso`: a service provider's AuthnRequest.
    pub async fn sso(
        &self,
        ctx: &SsoContext,
        message: SamlMessage<'_>,
        session: Option<&SessionInfo>,
    ) -> SsoOutcome {
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
        if kind != MessageKind::Request {
            return refused("a SAMLResponse is not accepted here");
        }
        let request = match AuthnRequest::from_document(&document) {
            Ok(request) => request,
            Err(error) => return refused(&format!("the request cannot be used: {error}")),
        };
        let (app_id, settings) = match self.by_entity_id(ctx.tenant, &request.issuer).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return refused("the application that sent this request is not known here");
            }
            Err(error) => return failed(error),
        };
        // The signature: required when the application says so, and checked
        // whenever there is one and a key to check it with.
        let verified = match checked_signature(&settings, &document, detached.as_ref()) {
            Ok(verified) => verified,
            Err(message) => return refused(&message),
        };
        if settings.require_signed_requests && !verified {
            return refused("this application's requests must be signed");
        }
        let admission = Admission {
            endpoint: &self.sso_url(),
            signed: verified,
            issuer: &request.issuer,
            id: &request.id,
            issue_instant: request.issue_instant_unix(),
            destination: request.destination.as_deref(),
        };
        match self.admit(ctx.tenant, admission).await {
            Ok(()) => {}
            Err(NotAdmitted::Refused(message)) => return refused(message),
            Err(NotAdmitted::Failed(error)) => return failed(error),
        }
        let consumer = match &request.consumer {
            Consumer::Url(url) => settings.consumer(Some(url), None),
            Consumer::Index(index) => settings.consumer(None, Some(*index)),
            Consumer::Default => settings.consumer(None, None),
        };
        let Some(consumer) = consumer.map(|c| c.url.clone()) else {
            return refused(
                "the request names a consumer service the application did not register",
            );
        };
        if let Some(binding) = &request.protocol_binding
            && binding != tessera_saml::metadata::HTTP_POST
        {
            return refused("only the HTTP-POST binding is answered");
        }
        let now = self.now();
        let comparison = request
            .requested_context
            .as_ref()
            .map_or(Comparison::Exact, |c| c.comparison);
        let requirement = request
            .requested_context
            .as_ref()
            .map(|c| requirement(c.comparison, &c.class_refs));
        let mut pending = Pending {
            app_id,
            request_id: Some(request.id.clone()),
            consumer,
            relay_state,
            force_authn: request.force_authn,
            is_passive: request.is_passive,
            required: Vec::new(),
            requested: request
                .requested_context
                .as_ref()
                .map(|c| c.class_refs.clone())
                .unwrap_or_default(),
            better: comparison == Comparison::Better,
            via_post,
            signed_in_after: request.force_authn.then_some(now),
            step_up: false,
        };
        let refusal = |second: &'static str, message: &str| Failure {
            top: REQUESTER,
            second,
            message: message.to_string(),
        };
        if let Some(format) = &request.name_id_policy.format
            && format != tessera_saml::idp::NAME_ID_UNSPECIFIED
            && *format != settings.name_id.format.uri()
        {
            let failure = refusal(
                INVALID_NAME_ID_POLICY,
                "this application receives another NameID format",
            );
            return self.finish(ctx, &pending, None, Err(failure)).await;
        }
        match requirement {
            Some(Some(required)) => pending.required = required,
            Some(None) => {
                let failure = refusal(
                    NO_AUTHN_CONTEXT,
                    "the requested authentication context is not offered",
                );
                return self.finish(ctx, &pending, None, Err(failure)).await;
            }
            None => {}
        }
        self.decide(ctx, pending, session, None).await
    }

    /// An IdP-initiated sign-on to `app_id` (from My Apps).
    pub async fn idp_initiated(
        &self,
        ctx: &SsoContext,
        app_id: AppId,
        session: Option<&SessionInfo>,
    ) -> SsoOutcome {
        let settings = match self.settings_of(ctx.tenant, app_id).await {
            Ok(Some(settings)) => settings,
            Ok(None) => return refused("this application does not use SAML"),
            Err(error) => return failed(error),
        };
        let Some(consumer) = settings.consumer(None, None) else {
            return refused("this application has no consumer service");
        };
        let pending = Pending {
            app_id,
            request_id: None,
            consumer: consumer.url.clone(),
            relay_state: settings.relay_state.clone(),
            force_authn: false,
            is_passive: false,
            required: Vec::new(),
            requested: Vec::new(),
            better: false,
            via_post: false,
            signed_in_after: None,
            step_up: false,
        };
        self.decide(ctx, pending, session, None).await
    }

    /// `GET /saml2/sso/continue`: the waiting request, after the user signed in
    /// (or, for a POST-bound request, once the browser's session is seen).
    pub async fn sso_continue(
        &self,
        ctx: &SsoContext,
        pending: &str,
        session: Option<&SessionInfo>,
    ) -> SsoOutcome {
        let (id, data) = match self.load_pending(ctx.tenant, pending).await {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        self.decide(
            ctx,
            data,
            session,
            Some(Waiting {
                secret: SecretString::new(pending.to_string()),
                id,
            }),
        )
        .await
    }

    /// `POST /saml2/sso/terms|password`: the answer to an interruption.
    pub async fn sso_interruption(
        &self,
        ctx: &SsoContext,
        pending: &str,
        session: &SessionInfo,
        answer: InterruptionAnswer,
    ) -> SsoOutcome {
        let (_, data) = match self.load_pending(ctx.tenant, pending).await {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let access = self.access_request(ctx, &data, Some(session));
        let asked = match self.app_sign_in.access_decision(&access).await {
            Ok(Some(decided)) if decided.decision.outcome == tessera_ca::Outcome::Interrupt => {
                decided.decision.remedy(&decided.set)
            }
            Ok(_) => Default::default(),
            Err(error) => return failed(error),
        };
        let session = match self
            .sign_in
            .answer_interruption(
                session,
                &asked,
                answer,
                &ctx.correlation_id,
                ctx.client_address.clone(),
            )
            .await
        {
            Ok(session) => session,
            Err(AnswerRefused::NotAsked) => {
                return refused(
                    "no password change is asked for this sign-in: go back to the application and start again",
                );
            }
            Err(AnswerRefused::Password(message)) => {
                return SsoOutcome::PasswordRefused { message };
            }
            Err(AnswerRefused::Failed(error)) => return failed(error),
        };
        self.sso_continue(ctx, pending, Some(&session)).await
    }

    fn access_request<'a>(
        &self,
        ctx: &'a SsoContext,
        data: &Pending,
        session: Option<&'a SessionInfo>,
    ) -> AccessRequest<'a> {
        AccessRequest {
            tenant: ctx.tenant,
            session,
            demands: Demands {
                signed_in_after: data.signed_in_after,
                login_hint: None,
                max_age: None,
                fresh: false,
                signed_in_since: None,
            },
            client_id: data.app_id,
            resource_app: None,
            management: false,
            client_app: ClientApp::Browser,
            wanted_acr: Vec::new(),
            essential_acr: Vec::new(),
            permissions: Vec::new(),
            reconsent: false,
            correlation_id: &ctx.correlation_id,
            client_address: ctx.client_address.as_deref(),
            user_agent: ctx.user_agent.as_deref(),
            device_thumbprint: ctx.device_thumbprint.as_deref(),
            made_for_this: data.step_up,
        }
    }

    /// Answers a checked request with what the session allows. `waiting` is the
    /// stored request this continues, if any: it is used up before an answer goes
    /// to the application, so it is answered once.
    async fn decide(
        &self,
        ctx: &SsoContext,
        mut data: Pending,
        session: Option<&SessionInfo>,
        waiting: Option<Waiting>,
    ) -> SsoOutcome {
        let now = self.now();
        // A POST-bound request is first seen without the browser's session (a
        // cross-site POST carries no Lax cookie): it waits, and a same-site GET
        // brings it back with the session, if there is one.
        if session.is_none() && data.via_post && waiting.is_none() {
            data.via_post = false;
            return match self.save_pending(ctx.tenant, &data, now).await {
                Ok(pending) => SsoOutcome::Recheck { pending },
                Err(error) => failed(error),
            };
        }
        let access = self.access_request(ctx, &data, session);
        let decision = match self.app_sign_in.decide(&access).await {
            Ok(decision) => decision,
            Err(error) => return failed(error),
        };
        let verdict = decision.verdict.clone();
        let session = match (session, &verdict) {
            (_, Verdict::Unavailable) => {
                return self
                    .status(
                        ctx,
                        &data,
                        waiting,
                        RESPONDER,
                        REQUEST_DENIED,
                        "the application is not available",
                    )
                    .await;
            }
            (Some(session), verdict) if *verdict != Verdict::SignIn => session,
            _ => {
                if data.is_passive {
                    return self
                        .status(
                            ctx,
                            &data,
                            waiting,
                            RESPONDER,
                            NO_PASSIVE,
                            "the user must sign in",
                        )
                        .await;
                }
                return self.wait(ctx, &data, waiting, None, now).await;
            }
        };
        // The requested authentication context and Conditional Access may each
        // ask for strengths: a step-up asks for both at once; one made for this
        // request that still falls short ends it.
        let mut needed: Vec<Uuid> = data.required.clone();
        if let Verdict::StepUp { strengths } = &verdict {
            for strength in strengths {
                if !needed.contains(strength) {
                    needed.push(*strength);
                }
            }
        }
        let short = data
            .required
            .iter()
            .any(|s| !session.data.strengths.contains(s));
        if short || matches!(verdict, Verdict::StepUp { .. }) {
            if data.is_passive {
                return self
                    .status(
                        ctx,
                        &data,
                        waiting,
                        RESPONDER,
                        NO_PASSIVE,
                        "a stronger sign-in is needed",
                    )
                    .await;
            }
            if data.step_up && short {
                return self
                    .status(
                        ctx,
                        &data,
                        waiting,
                        RESPONDER,
                        NO_AUTHN_CONTEXT,
                        "the sign-in did not reach the requested authentication context",
                    )
                    .await;
            }
            if !data.step_up {
                if verdict.is_conditional_access()
                    && let Some(entry) = &decision.entry
                    && let Err(error) = self.sign_in.append_log(ctx.tenant, entry).await
                {
                    tracing::warn!(%error, "cannot log a Conditional Access interruption");
                }
                data.step_up = true;
                data.signed_in_after = Some(now);
                let step_up = StepUp {
                    user_id: session.user_id,
                    user_principal_name: session.user_principal_name.clone(),
                    strengths: needed,
                };
                return self.wait(ctx, &data, waiting, Some(step_up), now).await;
            }
        }
        if verdict.is_conditional_access()
            && let Some(entry) = &decision.entry
            && let Err(error) = self.sign_in.append_log(ctx.tenant, entry).await
        {
            tracing::warn!(%error, "cannot log a Conditional Access interruption");
        }
        match verdict {
            Verdict::Allow => {
                let (Some(entry), Some(decided)) = (decision.entry, decision.decided) else {
                    return failed(ServiceError::Internal(
                        "an allow without its decision".into(),
                    ));
                };
                let frequency = decided.decision.session.sign_in_frequency_seconds;
                self.finish(ctx, &data, waiting, Ok((session, entry, frequency)))
                    .await
            }
            Verdict::SignIn | Verdict::Unavailable | Verdict::StepUp { .. } => {
                failed(ServiceError::Internal("a verdict answered above".into()))
            }
            Verdict::Block { reason } => {
                if data.is_passive {
                    return self
                        .status(
                            ctx,
                            &data,
                            waiting,
                            RESPONDER,
                            REQUEST_DENIED,
                            "Conditional Access blocks this sign-in",
                        )
                        .await;
                }
                if let Some(waiting) = waiting {
                    let _ = self.store().session_delete(ctx.tenant, &waiting.id).await;
                }
                SsoOutcome::Blocked {
                    app_name: decision.app_name,
                    reason,
                    correlation_id: ctx.correlation_id.clone(),
                }
            }
            Verdict::AcceptTerms { .. } | Verdict::ChangePassword if data.is_passive => {
                self.status(
                    ctx,
                    &data,
                    waiting,
                    RESPONDER,
                    NO_PASSIVE,
                    "Conditional Access needs the user",
                )
                .await
            }
            Verdict::AcceptTerms { terms } => {
                // Terms go on with this session, as OIDC's do.
                data.signed_in_after = Some(session.auth_time);
                let pending = match self.repend(ctx.tenant, &data, waiting, now).await {
                    Ok(pending) => pending,
                    Err(error) => return failed(error),
                };
                let terms = match self.access.terms_by_id(ctx.tenant, &terms).await {
                    Ok(terms) => terms
                        .into_iter()
                        .map(|t| TermsToAccept {
                            id: t.id,
                            display_name: t.spec.display_name,
                            content: t.spec.content,
                        })
                        .collect(),
                    Err(error) => return failed(error),
                };
                SsoOutcome::AcceptTerms {
                    pending,
                    app_name: decision.app_name,
                    terms,
                    csrf: session.csrf.clone(),
                }
            }
            Verdict::ChangePassword => {
                data.signed_in_after = Some(session.auth_time);
                match self.repend(ctx.tenant, &data, waiting, now).await {
                    Ok(pending) => SsoOutcome::ChangePassword {
                        pending,
                        app_name: decision.app_name,
                        csrf: session.csrf.clone(),
                    },
                    Err(error) => failed(error),
                }
            }
            Verdict::AuthenticationUnmet => {
                self.status(
                    ctx,
                    &data,
                    waiting,
                    RESPONDER,
                    NO_AUTHN_CONTEXT,
                    "the sign-in did not reach the required authentication level",
                )
                .await
            }
            Verdict::NotAssigned => {
                self.status(
                    ctx,
                    &data,
                    waiting,
                    RESPONDER,
                    REQUEST_DENIED,
                    "the application requires an assignment the user does not have",
                )
                .await
            }
            // A SAML application asks for no delegated permissions.
            Verdict::Consent { .. } | Verdict::NeedsAdminConsent => {
                self.status(
                    ctx,
                    &data,
                    waiting,
                    RESPONDER,
                    REQUEST_DENIED,
                    "an administrator must approve this application",
                )
                .await
            }
        }
    }

    /// The answer that goes to the application: the waiting request is used up
    /// first (a second answer to it is refused), the consumer service is checked
    /// against the configuration as it is now, then the Response (an assertion
    /// for `Ok`, a status for `Err`) is made, signed.
    async fn finish(
        &self,
        ctx: &SsoContext,
        data: &Pending,
        waiting: Option<Waiting>,
        outcome: Result<(&SessionInfo, SignInEntry, Option<i64>), Failure>,
    ) -> SsoOutcome {
        if let Some(waiting) = waiting {
            match self.store().session_delete(ctx.tenant, &waiting.id).await {
                Ok(true) => {}
                Ok(false) => return refused("this sign-in request was already answered"),
                Err(error) => return failed(error.into()),
            }
        }
        let settings = match self.settings_of(ctx.tenant, data.app_id).await {
            Ok(Some(settings)) => settings,
            Ok(None) => return refused("this application no longer uses SAML"),
            Err(error) => return failed(error),
        };
        if settings.consumer(Some(&data.consumer), None).is_none() {
            return refused("the consumer service is no longer registered");
        }
        let now = self.now();
        let built = match outcome {
            Ok((session, entry, frequency)) => {
                match self
                    .assertion_response(ctx, data, &settings, session, frequency, now)
                    .await
                {
                    Ok(post) => match self.sign_in.append_log(ctx.tenant, &entry).await {
                        Ok(()) => Ok(post),
                        Err(error) => Err(error),
                    },
                    Err(error) => Err(error),
                }
            }
            Err(failure) => self.status_response(ctx.tenant, data, failure, now).await,
        };
        match built {
            Ok(post) => SsoOutcome::Respond(post),
            Err(error) => failed(error),
        }
    }

    /// A SAML status for the application, once the waiting request is used up.
    #[allow(clippy::too_many_arguments)]
    async fn status(
        &self,
        ctx: &SsoContext,
        data: &Pending,
        waiting: Option<Waiting>,
        top: &'static str,
        second: &'static str,
        message: &str,
    ) -> SsoOutcome {
        let failure = Failure {
            top,
            second,
            message: message.to_string(),
        };
        self.finish(ctx, data, waiting, Err(failure)).await
    }

    /// The request waits for a sign-in (a stronger one with `step_up`).
    async fn wait(
        &self,
        ctx: &SsoContext,
        data: &Pending,
        waiting: Option<Waiting>,
        step_up: Option<StepUp>,
        now: Timestamp,
    ) -> SsoOutcome {
        let pending = match (waiting, &step_up) {
            (Some(waiting), None) => waiting.secret,
            (waiting, _) => match self.repend(ctx.tenant, data, waiting, now).await {
                Ok(pending) => pending,
                Err(error) => return failed(error),
            },
        };
        SsoOutcome::SignIn { pending, step_up }
    }

    /// Stores the request as it now is under a new secret, replacing the one it
    /// waited under.
    async fn repend(
        &self,
        tenant: TenantId,
        data: &Pending,
        waiting: Option<Waiting>,
        now: Timestamp,
    ) -> ServiceResult<SecretString> {
        if let Some(waiting) = waiting {
            self.store().session_delete(tenant, &waiting.id).await?;
        }
        self.save_pending(tenant, data, now).await
    }

    async fn save_pending(
        &self,
        tenant: TenantId,
        data: &Pending,
        now: Timestamp,
    ) -> ServiceResult<SecretString> {
        let generated = generate_secret("").map_err(|e| ServiceError::Internal(e.to_string()))?;
        let row = SessionRow::transient(
            format!("{PENDING_PREFIX}{}", generated.hash),
            now,
            PENDING_SECONDS,
            serde_json::to_string(data).map_err(|e| ServiceError::Internal(e.to_string()))?,
        );
        self.store().session_insert(tenant, &row).await?;
        Ok(generated.secret)
    }

    async fn load_pending(
        &self,
        tenant: TenantId,
        pending: &str,
    ) -> Result<(String, Pending), SsoOutcome> {
        let expired =
            || refused("this sign-in took too long: go back to the application and start again");
        if pending.is_empty() || pending.len() > 128 {
            return Err(expired());
        }
        let id = format!("{PENDING_PREFIX}{}", secret_hash(pending));
        let row = match self.store().session_get(tenant, &id).await {
            Ok(Some(row)) if row.expires > self.now() && row.revoked.is_none() => row,
            Ok(_) => return Err(expired()),
            Err(error) => return Err(failed(error.into())),
        };
        let data = serde_json::from_str::<Pending>(&row.data).map_err(|_| expired())?;
        Ok((id, data))
    }

    /// What every request from a service provider passes once its issuer and
    /// signature are known: addressed to this endpoint (a signed one must say
    /// where it goes), fresh, and seen once (its id is recorded).
    pub(super) async fn admit(
        &self,
        tenant: TenantId,
        request: Admission<'_>,
    ) -> Result<(), NotAdmitted> {
        match request.destination {
            Some(destination) if destination != request.endpoint => {
                return Err(NotAdmitted::Refused(
                    "the request is addressed to another endpoint",
                ));
            }
            None if request.signed => {
                return Err(NotAdmitted::Refused(
                    "a signed request must name its destination",
                ));
            }
            _ => {}
        }
        let now = self.now().unix_seconds();
        match request.issue_instant {
            Some(at) if at <= now + CLOCK_SKEW && at >= now - REQUEST_MAX_AGE => {}
            _ => {
                return Err(NotAdmitted::Refused(
                    "the request is too old, or from the future",
                ));
            }
        }
        match self.first_sight(tenant, request.issuer, request.id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(NotAdmitted::Refused("this request was already answered")),
            Err(error) => Err(NotAdmitted::Failed(error)),
        }
    }

    /// Records a request id as answered; false when it already was.
    async fn first_sight(&self, tenant: TenantId, issuer: &str, id: &str) -> ServiceResult<bool> {
        let now = self.now();
        let key = format!(
            "{SEEN_PREFIX}{}",
            tessera_core::crypto::sha256_hex(format!("{}:{issuer}{id}", issuer.len()).as_bytes())
        );
        let row = SessionRow::transient(key, now, REQUEST_MAX_AGE + CLOCK_SKEW, String::new());
        match self.store().session_insert(tenant, &row).await {
            Ok(()) => Ok(true),
            Err(tessera_store::StoreError::Duplicate { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// A Response with a failure status, signed, to the consumer service.
    async fn status_response(
        &self,
        tenant: TenantId,
        data: &Pending,
        failure: Failure,
        now: Timestamp,
    ) -> ServiceResult<SamlPost> {
        let content = ResponseContent {
            id: random_id()?,
            in_response_to: data.request_id.clone(),
            issue_instant: now.unix_seconds(),
            destination: data.consumer.clone(),
            issuer: self.entity_id(),
            status: Status::Failure {
                top: failure.top,
                second: failure.second,
                message: failure.message,
            },
        };
        let mut document = response::response(&content, None);
        let key = self.signing_key(tenant, data.app_id).await?;
        dsig::sign_enveloped(&mut document, &key, response::SIGNATURE_POSITION)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(SamlPost {
            url: data.consumer.clone(),
            response: STANDARD.encode(response::serialize(&document)),
            relay_state: data.relay_state.clone(),
        })
    }

    /// The Response with the user's assertion, signed (and encrypted) as the
    /// application is configured.
    async fn assertion_response(
        &self,
        ctx: &SsoContext,
        data: &Pending,
        settings: &SamlSettings,
        session: &SessionInfo,
        sign_in_frequency: Option<i64>,
        now: Timestamp,
    ) -> ServiceResult<SamlPost> {
        let tenant = ctx.tenant;
        let facts = self
            .user_facts(tenant, data.app_id, session.user_id, settings)
            .await?;
        let key = self.signing_key(tenant, data.app_id).await?;
        let idp = self.entity_id();
        let application = data.app_id.to_string();
        let lineage = crate::sign_in::lineage_of(session);
        let session_index = self.session_index(tenant, &lineage, data.app_id).await?;
        let name_id = self
            .issued_name_id(tenant, data.app_id, settings, &facts, &lineage)
            .await?;
        let link = format!(
            "{}/api/v1/users/{}/memberOf",
            self.public_url(),
            session.user_id
        );
        let statements = attributes(&settings.attributes, &facts, &link);
        let at = now.unix_seconds();
        let content = AssertionContent {
            id: random_id()?,
            issue_instant: at,
            issuer: idp.clone(),
            name_id,
            recipient: data.consumer.clone(),
            in_response_to: data.request_id.clone(),
            confirmation_not_on_or_after: at + CONFIRMATION_SECONDS,
            not_before: at - 60,
            not_on_or_after: at + i64::from(settings.assertion_lifetime_seconds),
            audience: settings.entity_id.clone(),
            authn_instant: session.auth_time.unix_seconds(),
            session_index,
            // The session ends with the browser's, or sooner when Conditional
            // Access sets a sign-in frequency for this application.
            session_not_on_or_after: Some(match sign_in_frequency {
                Some(seconds) => session
                    .expires
                    .unix_seconds()
                    .min(session.auth_time.unix_seconds() + seconds),
                None => session.expires.unix_seconds(),
            }),
            authn_context_class: stated_class(
                &data.requested,
                if data.better {
                    Comparison::Better
                } else {
                    Comparison::Exact
                },
                &session.data.strengths,
                &session
                    .methods
                    .iter()
                    .map(|m| m.method.mode.to_string())
                    .collect::<Vec<_>>(),
            ),
            attributes: statements,
        };
        let mut assertion = response::assertion(&content);
        if settings.signing.assertion {
            dsig::sign_enveloped(&mut assertion, &key, response::SIGNATURE_POSITION)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
        }
        let assertion = if settings.encrypt_assertions {
            let certificate = settings
                .encryption_certificate()
                .ok_or_else(|| ServiceError::Internal("no encryption certificate".into()))?;
            encrypt::encrypt_assertion(&assertion, &certificate, DataAlgorithm::Aes256Gcm)
                .map_err(|e| ServiceError::Internal(e.to_string()))?
        } else {
            assertion
        };
        let mut document = response::response(
            &ResponseContent {
                id: random_id()?,
                in_response_to: data.request_id.clone(),
                issue_instant: at,
                destination: data.consumer.clone(),
                issuer: idp,
                status: Status::Success,
            },
            Some(assertion),
        );
        if settings.signing.response {
            dsig::sign_enveloped(&mut document, &key, response::SIGNATURE_POSITION)
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
        }
        self.sign_in.remember_app(session, &application).await;
        Ok(SamlPost {
            url: data.consumer.clone(),
            response: STANDARD.encode(response::serialize(&document)),
            relay_state: data.relay_state.clone(),
        })
    }

    /// The SessionIndex an application is given for a browser session (its
    /// lineage, see `lineage_of`): one per session and application, so no two
    /// applications can correlate their users by it, and it is not the OIDC
    /// `sid` either, which relying parties see.
    pub(super) async fn session_index(
        &self,
        tenant: TenantId,
        lineage: &str,
        app_id: AppId,
    ) -> ServiceResult<String> {
        let secret = self.pairwise_secret(tenant).await?;
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        let tag = aws_lc_rs::hmac::sign(
            &key,
            format!("session-index:{}:{lineage}{app_id}", lineage.len()).as_bytes(),
        );
        Ok(format!(
            "_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..18])
        ))
    }

    /// The NameID this application is given for the user in the browser session
    /// `lineage`. A transient one is derived from the session and the
    /// application, so it differs per session and per application and single
    /// logout can name it again without storing it.
    pub(super) async fn issued_name_id(
        &self,
        tenant: TenantId,
        app_id: AppId,
        settings: &SamlSettings,
        facts: &UserFacts,
        lineage: &str,
    ) -> ServiceResult<tessera_saml::response::NameId> {
        let secret = self.pairwise_secret(tenant).await?;
        let idp = self.entity_id();
        let application = app_id.to_string();
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        let tag = aws_lc_rs::hmac::sign(
            &key,
            format!("transient:{}:{lineage}{application}", lineage.len()).as_bytes(),
        );
        let mut transient = [0u8; 16];
        transient.copy_from_slice(&tag.as_ref()[..16]);
        name_id(
            &settings.name_id,
            facts,
            Pairwise {
                application: &application,
                audience: &settings.entity_id,
                idp: &idp,
                secret: &secret,
            },
            &transient,
        )
        .map_err(|e| ServiceError::invalid("nameId", e.to_string()))
    }

    /// The user's own attributes, as a NameID may use them (no groups or roles).
    pub(super) async fn name_facts(
        &self,
        tenant: TenantId,
        user: Uuid,
    ) -> ServiceResult<UserFacts> {
        let mut reader = self.reader().await?;
        let record = codec::load(reader.as_mut(), tenant, Kind::User, user).await?;
        Ok(facts_of(user, &codec::data(&record)?))
    }

    /// What the assertion may say about the user.
    async fn user_facts(
        &self,
        tenant: TenantId,
        app_id: AppId,
        user: Uuid,
        settings: &SamlSettings,
    ) -> ServiceResult<UserFacts> {
        let mut reader = self.snapshot().await?;
        let record = codec::load(reader.as_mut(), tenant, Kind::User, user).await?;
        let spec: UserSpec = codec::data(&record)?;
        let wants =
            |check: &dyn Fn(&Source) -> bool| settings.attributes.iter().any(|a| check(&a.source));
        let mut facts = facts_of(user, &spec);
        // Only the custom security attributes the mapping reads.
        for rule in &settings.attributes {
            for (set, name) in rule.source.custom_security_attributes() {
                if facts.custom_values(&set, &name).is_some() {
                    continue;
                }
                if let Some(value) = spec
                    .custom_security_attributes
                    .get(&set)
                    .and_then(|attributes| attributes.get(&name))
                {
                    facts.custom.push(((set, name), custom_values(value)));
                }
            }
        }
        let app = reader
            .get_by_key1(tenant, Kind::Application, &app_id.to_string())
            .await?
            .map(|record| codec::data::<ApplicationData>(&record))
            .transpose()?;
        if wants(&|s| matches!(s, Source::Groups { .. })) {
            let groups = match crate::directory::groups::containing_groups(
                reader.as_mut(),
                tenant,
                user,
                true,
                self.now(),
            )
            .await
            {
                Ok(groups) => groups,
                // Past what can be listed: the overage rule names where to look.
                Err(ServiceError::Conflict { .. }) => Vec::new(),
                Err(error) => return Err(error),
            };
            let filtered = wants(&|s| {
                matches!(
                    s,
                    Source::Groups {
                        filter: GroupFilter::AssignedToApplication,
                        ..
                    }
                )
            });
            // Past the overage limit the groups are not listed by name (unless a
            // filter may bring them under it): no read per group.
            let names = wants(&|s| {
                matches!(
                    s,
                    Source::Groups {
                        name: GroupName::DisplayName,
                        ..
                    }
                )
            }) && (filtered || groups.len() <= tessera_saml::config::GROUP_LIMIT);
            for group in &groups {
                let name = if names {
                    match reader.get(tenant, Kind::Group, *group).await? {
                        Some(record) => {
                            crate::directory::groups::group_from(&record)?
                                .spec
                                .display_name
                        }
                        None => continue,
                    }
                } else {
                    String::new()
                };
                facts.groups.push((group.to_string(), name));
            }
            if filtered && let Some(app) = &app {
                facts.app_groups = crate::directory::app_roles::assigned_groups(
                    reader.as_mut(),
                    tenant,
                    app,
                    &groups,
                )
                .await?
                .into_iter()
                .map(|g| g.to_string())
                .collect();
            }
        }
        if wants(&|s| matches!(s, Source::Roles))
            && let Some(app) = &app
            && let Some(assignment) = crate::directory::app_roles::user_assignment(
                reader.as_mut(),
                tenant,
                app,
                user,
                self.now(),
            )
            .await?
        {
            facts.roles = crate::directory::app_roles::role_values(app, &assignment.roles);
        }
        Ok(facts)
    }
}

/// A custom security attribute's value as assertion values.
fn custom_values(value: &tessera_directory::model::AttributeValue) -> Vec<String> {
    use tessera_directory::model::AttributeValue;
    match value {
        AttributeValue::Boolean(b) => vec![b.to_string()],
        AttributeValue::Integer(i) => vec![i.to_string()],
        AttributeValue::String(s) => vec![s.clone()],
        AttributeValue::IntegerList(list) => list.iter().map(i64::to_string).collect(),
        AttributeValue::StringList(list) => list.clone(),
    }
}

/// The user's own attributes.
fn facts_of(user: Uuid, spec: &UserSpec) -> UserFacts {
    UserFacts {
        id: user.to_string(),
        user_principal_name: spec.user_principal_name.clone(),
        mail: spec.mail.clone(),
        display_name: spec.display_name.clone(),
        given_name: spec.given_name.clone(),
        surname: spec.surname.clone(),
        employee_id: spec.employee_id.clone(),
        department: spec.department.clone(),
        job_title: spec.job_title.clone(),
        ..UserFacts::default()
    }
}

/// Whether a message from a service provider is signed by one of its keys
/// (detached over the redirect binding's query, or enveloped on the root); a
/// signature that is there and does not verify is an error. Without a key to
/// check with, a message counts as unsigned.
pub(super) fn checked_signature(
    settings: &SamlSettings,
    document: &tessera_saml::xml::Document,
    detached: Option<&binding::DetachedSignature>,
) -> Result<bool, String> {
    let keys = settings.signing_keys();
    if keys.is_empty() {
        return Ok(false);
    }
    match detached {
        Some(signature) if keys.iter().any(|key| signature.verify(key).is_ok()) => Ok(true),
        Some(_) => Err("the message's signature does not verify".into()),
        None if dsig::is_signed(&document.root) => dsig::verify_enveloped(document, &keys)
            .map(|()| true)
            .map_err(|error| format!("the message's signature: {error}")),
        None => Ok(false),
    }
}

pub(super) fn random_id() -> ServiceResult<String> {
    let mut random = [0u8; 16];
    tessera_core::crypto::fill_random(&mut random)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(response::identifier(&random))
}

/// A stored request being continued: its secret and its row.
struct Waiting {
    secret: SecretString,
    id: String,
}

/// A SAML status to answer with.
struct Failure {
    top: &'static str,
    second: &'static str,
    message: String,
}

fn refused(message: &str) -> SsoOutcome {
    SsoOutcome::Refused(message.chars().take(300).collect())
}

fn failed(error: ServiceError) -> SsoOutcome {
    tracing::error!(%error, "SAML sign-on failed");
    SsoOutcome::Refused("Tessera could not answer this sign-in request: try again later.".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_contexts_map_to_strengths() {
        let mfa = vec!["http://schemas.microsoft.com/claims/multipleauthn".to_string()];
        assert_eq!(
            requirement(Comparison::Exact, &mfa),
            Some(vec![strength::MFA])
        );
        assert_eq!(requirement(Comparison::Maximum, &mfa), Some(Vec::new()));
        assert_eq!(
            requirement(Comparison::Better, &mfa),
            Some(vec![strength::PASSWORDLESS_MFA])
        );
        let unknown = vec!["urn:example:retina".to_string()];
        assert_eq!(requirement(Comparison::Exact, &unknown), None);
        let either = vec![
            "urn:oasis:names:tc:SAML:2.0:ac:classes:X509".to_string(),
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport".to_string(),
        ];
        assert_eq!(requirement(Comparison::Minimum, &either), Some(Vec::new()));
        let password = vec!["password".to_string()];
        let passkey = vec!["fido2".to_string()];
        assert_eq!(
            stated_class(&either, Comparison::Minimum, &[], &password),
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        );
        // A passkey is not a certificate, whatever strength it reaches.
        let strong = [strength::MFA, strength::PHISHING_RESISTANT_MFA];
        assert_eq!(
            stated_class(&either, Comparison::Exact, &strong, &passkey),
            "urn:tessera:acr:phishing-resistant-mfa"
        );
        // What `better` listed is never stated back.
        let ppt =
            vec!["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport".to_string()];
        assert_eq!(
            stated_class(&ppt, Comparison::Better, &[strength::MFA], &password),
            "http://schemas.microsoft.com/claims/multipleauthn"
        );
        assert_eq!(
            stated_class(&ppt, Comparison::Exact, &[], &passkey),
            "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
        );
    }
}

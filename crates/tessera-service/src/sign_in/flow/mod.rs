//! The sign-in flow: name first, then the methods that user has; a second factor
//! when the user has one; a session at the end. Its transitions are
//! `tessera_authn::flow`'s state machine; this module does the I/O around them
//! (the user, methods and policy, secrets checked against the store, lockout
//! counters, the sign-in log, the session). The flow's state is kept server-side
//! (in the session table, without a user) under the hash of a secret the browser
//! holds in a cookie.
//!
//! Answers never say whether an account exists: an unknown name is offered a password
//! like everyone else, its password check costs the same (a decoy hash), and every
//! wrong secret gets the same message.

mod certificate;
mod passkey;
mod secrets;

use serde::{Deserialize, Serialize};
use tessera_authn::flow::{Next, SignInFlow, StrengthCheck, same_kind, typed_name};
use tessera_authn::hashing;
use tessera_authn::lockout::{self, Side};
use tessera_authn::policy::MethodsPolicy;
use tessera_authn::registration::MethodUse;
use tessera_authn::strength::{Mode, UsedMethod};
use tessera_core::crypto::{generate_secret, secret_hash};
use tessera_core::{SecretString, Timestamp};
use tessera_directory::model::UserSpec;
use tessera_store::{Kind, SessionRow};
use uuid::Uuid;

use super::sessions::new_csrf;
use super::{Logged, SignInContext, failure, load_policy};
use crate::SignIn;
use crate::codec;
use crate::directory::auth_methods::{StoredMethod, methods_of};
use crate::directory::groups::containing_groups;
use crate::error::{ServiceError, ServiceResult};

pub use tessera_authn::flow::FlowStep;

/// A sign-in flow lives this long.
const FLOW_SECONDS: i64 = 15 * 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlowData {
    flow: bool,
    csrf: String,
    passkey_state: Option<String>,
    /// The highest real-time risk Identity Protection found in this sign-in's
    /// steps so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sign_in_risk: Option<tessera_ca::model::RiskLevel>,
    /// Where the sign-in is and what it has proven.
    #[serde(flatten)]
    state: SignInFlow,
}

/// What the sign-in page shows next.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowView {
    pub step: FlowStep,
    pub user_name: Option<String>,
    /// Methods to offer, in order.
    pub offers: Vec<Mode>,
    /// A message for the person, which never tells whether the account exists.
    pub error: Option<&'static str>,
    pub csrf: String,
    /// Certificate sign-in is enabled in the tenant.
    pub certificate: bool,
    /// Why this sign-in asks for more (a step-up).
    pub notice: Option<&'static str>,
}

pub enum SignInOutcome {
    Continue(FlowView),
    SignedIn { session: SecretString },
}

/// One message for every refused secret, locked accounts included, so the answer
/// never tells whether an account exists or is locked (the sign-in log does).
pub(crate) const WRONG: &str = "That did not work. Check what you entered and try again. \
After several failed attempts, sign-in pauses for a while.";
const EXPIRED: &str = "Your sign-in took too long. Please start again.";
const PASSKEY_WRONG: &str = "That passkey could not be used to sign in here.";
const NOT_ALLOWED: &str = "That method is not available to you. Choose another way to sign in.";
const STEP_UP: &str =
    "This application asks for a stronger sign-in. Use a method it accepts, such as a passkey.";
const NO_STRONG_METHOD: &str = "You have no sign-in method this application accepts. \
Add one (for example a passkey) in your security info, then try again.";

struct Flow {
    row: SessionRow,
    data: FlowData,
}

impl Flow {
    fn view(&self, error: Option<&'static str>, offers: Vec<Mode>) -> FlowView {
        FlowView {
            step: self.data.state.step(),
            user_name: self.data.state.typed_name().map(str::to_string),
            offers,
            error,
            csrf: self.data.csrf.clone(),
            certificate: false,
            notice: self.data.state.is_step_up().then_some(STEP_UP),
        }
    }
}

/// What the flow knows about the named user.
struct Subject {
    user_id: Uuid,
    spec: UserSpec,
    methods: Vec<StoredMethod>,
    groups: Vec<Uuid>,
    policy: MethodsPolicy,
}

impl Subject {
    fn allowed(&self, mode: Mode) -> bool {
        self.policy.allows(mode, &self.groups)
    }

    fn has(&self, mode: Mode) -> bool {
        self.allowed(mode) && self.methods.iter().any(|m| same_kind(m.data.mode(), mode))
    }

    fn second_factors(&self) -> Vec<Mode> {
        [Mode::SoftwareOath, Mode::Fido2]
            .into_iter()
            .filter(|m| self.has(*m))
            .collect()
    }
}

fn used(mode: Mode, method_id: Option<Uuid>, time: Timestamp) -> MethodUse {
    MethodUse {
        method: UsedMethod::plain(mode),
        method_id,
        time,
    }
}

/// How many times a light step tries again when another request of the same sign-in
/// saved the flow first.
const FLOW_SAVE_RETRIES: usize = 4;

impl SignIn {
    /// Starts a sign-in; returns the secret for the flow cookie.
    pub async fn start(&self, ctx: &SignInContext) -> ServiceResult<(SecretString, FlowView)> {
        let generated = generate_secret("").map_err(|e| ServiceError::Internal(e.to_string()))?;
        let now = self.now();
        let data = FlowData {
            flow: true,
            csrf: new_csrf()?,
            passkey_state: None,
            sign_in_risk: None,
            state: SignInFlow::new(),
        };
        let row = SessionRow {
            id: generated.hash,
            user_id: None,
            created: now,
            last_seen: now,
            expires: now.plus_seconds(FLOW_SECONDS),
            revoked: None,
            version: 1,
            data: encode(&data)?,
        };
        self.store.session_insert(ctx.tenant, &row).await?;
        let flow = Flow { row, data };
        let view = self.view_of(ctx, &flow, None, Vec::new()).await?;
        Ok((generated.secret, view))
    }

    /// Starts a step-up sign-in for a known user who must reach `required`
    /// strengths (Conditional Access asked for more than the session has); returns
    /// the flow cookie's secret.
    pub async fn start_step_up(
        &self,
        ctx: &SignInContext,
        user_id: Uuid,
        user_principal_name: &str,
        required: Vec<Uuid>,
    ) -> ServiceResult<SecretString> {
        let generated = generate_secret("").map_err(|e| ServiceError::Internal(e.to_string()))?;
        let now = self.now();
        let data = FlowData {
            flow: true,
            csrf: new_csrf()?,
            passkey_state: None,
            sign_in_risk: None,
            state: SignInFlow::step_up(user_id, user_principal_name, required),
        };
        let row = SessionRow {
            id: generated.hash,
            user_id: None,
            created: now,
            last_seen: now,
            expires: now.plus_seconds(FLOW_SECONDS),
            revoked: None,
            version: 1,
            data: encode(&data)?,
        };
        self.store.session_insert(ctx.tenant, &row).await?;
        Ok(generated.secret)
    }

    /// The modes that can count towards the flow's required strengths (all when
    /// there are none).
    async fn useful_modes(
        &self,
        ctx: &SignInContext,
        flow: &Flow,
    ) -> ServiceResult<Option<Vec<Mode>>> {
        if !flow.data.state.is_step_up() {
            return Ok(None);
        }
        let mut reader = self.reader().await?;
        let mut modes = Vec::new();
        for id in flow.data.state.required() {
            if let Some(strength) =
                crate::sign_in::load_strength(reader.as_mut(), ctx.tenant, *id).await?
            {
                for combination in &strength.allowed_combinations {
                    for mode in &combination.0 {
                        if !modes.contains(mode) {
                            modes.push(*mode);
                        }
                    }
                }
            }
        }
        Ok(Some(modes))
    }

    async fn load_flow(&self, ctx: &SignInContext, secret: &str) -> ServiceResult<Option<Flow>> {
        if secret.is_empty() || secret.len() > 128 {
            return Ok(None);
        }
        let Some(row) = self
            .store
            .session_get(ctx.tenant, &secret_hash(secret))
            .await?
        else {
            return Ok(None);
        };
        if row.user_id.is_some() || self.now() >= row.expires {
            return Ok(None);
        }
        match serde_json::from_str::<FlowData>(&row.data) {
            Ok(data) if data.flow => Ok(Some(Flow { row, data })),
            _ => Ok(None),
        }
    }

    async fn save_flow(&self, ctx: &SignInContext, flow: &mut Flow) -> ServiceResult<()> {
        flow.row.version += 1;
        flow.row.data = encode(&flow.data)?;
        self.store.session_update(ctx.tenant, &flow.row).await?;
        Ok(())
    }

    /// Loads the flow, applies `change` and saves it. When another request of the same
    /// sign-in saved the flow in between (the page asks for passkey options beside its
    /// form), loads it again and applies `change` to what that request left: as if
    /// this request had come second. `None` if the flow is gone.
    async fn change_flow(
        &self,
        ctx: &SignInContext,
        secret: &str,
        change: impl Fn(&mut Flow),
    ) -> ServiceResult<Option<Flow>> {
        let mut attempts = 0;
        loop {
            let Some(mut flow) = self.load_flow(ctx, secret).await? else {
                return Ok(None);
            };
            change(&mut flow);
            match self.save_flow(ctx, &mut flow).await {
                Ok(()) => return Ok(Some(flow)),
                Err(ServiceError::VersionMismatch { .. }) if attempts < FLOW_SAVE_RETRIES => {
                    attempts += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The current state of a flow, for rendering; `None` if it is gone or expired.
    pub async fn view(&self, ctx: &SignInContext, secret: &str) -> ServiceResult<Option<FlowView>> {
        let Some(flow) = self.load_flow(ctx, secret).await? else {
            return Ok(None);
        };
        let offers = self.offers(ctx, &flow).await?;
        Ok(Some(self.view_of(ctx, &flow, None, offers).await?))
    }

    async fn subject(&self, ctx: &SignInContext, user_id: Uuid) -> ServiceResult<Option<Subject>> {
        let mut reader = self.reader().await?;
        let Some(record) = reader.get(ctx.tenant, Kind::User, user_id).await? else {
            return Ok(None);
        };
        let spec: UserSpec = codec::data(&record)?;
        let methods = methods_of(reader.as_mut(), ctx.tenant, user_id).await?;
        let groups =
            containing_groups(reader.as_mut(), ctx.tenant, user_id, true, self.now()).await?;
        let (policy, _) = load_policy(reader.as_mut(), ctx.tenant).await?;
        Ok(Some(Subject {
            user_id,
            spec,
            methods,
            groups,
            policy,
        }))
    }

    /// The page's view of a flow, with whether certificate sign-in is on.
    async fn view_of(
        &self,
        ctx: &SignInContext,
        flow: &Flow,
        error: Option<&'static str>,
        offers: Vec<Mode>,
    ) -> ServiceResult<FlowView> {
        let mut reader = self.reader().await?;
        let (policy, _) = load_policy(reader.as_mut(), ctx.tenant).await?;
        let mut view = flow.view(error, offers);
        view.certificate = policy.x509_certificate.state == tessera_authn::policy::State::Enabled;
        Ok(view)
    }

    async fn offers(&self, ctx: &SignInContext, flow: &Flow) -> ServiceResult<Vec<Mode>> {
        let subject = match flow.data.state.user_id() {
            Some(user) => self.subject(ctx, user).await?,
            None => None,
        };
        let useful = self.useful_modes(ctx, flow).await?;
        // The same first factors for every name, so the page does not tell which
        // accounts exist or hold a pass: what the tenant has switched on.
        let mut reader = self.reader().await?;
        let (policy, _) = load_policy(reader.as_mut(), ctx.tenant).await?;
        let mut first_factors = Vec::new();
        if policy.password.state == tessera_authn::policy::State::Enabled {
            first_factors.push(Mode::Password);
        }
        if policy.temporary_access_pass.state == tessera_authn::policy::State::Enabled {
            first_factors.push(Mode::TemporaryAccessPassOneTime);
        }
        let second_factors = subject.map(|s| s.second_factors()).unwrap_or_default();
        Ok(flow
            .data
            .state
            .offers(&first_factors, &second_factors, useful.as_deref()))
    }

    /// Step 1: the name typed.
    pub async fn identify(
        &self,
        ctx: &SignInContext,
        secret: &str,
        name: &str,
    ) -> ServiceResult<Option<FlowView>> {
        let Some(flow) = self.load_flow(ctx, secret).await? else {
            return Ok(None);
        };
        let name = typed_name(name);
        if name.is_empty() {
            let offers = self.offers(ctx, &flow).await?;
            let view = self
                .view_of(ctx, &flow, Some("Enter your user name."), offers)
                .await?;
            return Ok(Some(view));
        }
        let mut reader = self.reader().await?;
        let user = reader
            .get_by_key1(ctx.tenant, Kind::User, &name.to_lowercase())
            .await?;
        drop(reader);
        let user = user.map(|u| u.id);
        let Some(flow) = self
            .change_flow(ctx, secret, |flow| {
                flow.data.state.name_typed(name.clone(), user)
            })
            .await?
        else {
            return Ok(None);
        };
        let offers = self.offers(ctx, &flow).await?;
        Ok(Some(self.view_of(ctx, &flow, None, offers).await?))
    }

    /// Goes back to the name step.
    pub async fn restart(&self, ctx: &SignInContext, secret: &str) -> ServiceResult<()> {
        if let Some(mut flow) = self.load_flow(ctx, secret).await? {
            flow.data.state.restart();
            self.save_flow(ctx, &mut flow).await?;
        }
        Ok(())
    }

    /// The lockout counter an attempt from this client uses: one per user for
    /// familiar networks, one for all others.
    async fn lockout_key(&self, ctx: &SignInContext, user: Uuid) -> ServiceResult<String> {
        let side = match ctx.client_address.as_deref().and_then(lockout::network_of) {
            Some(network) => {
                let familiar = self
                    .store
                    .counter_get(ctx.tenant, &format!("familiar:{user}:{network}"))
                    .await?;
                if lockout::is_familiar(familiar.map(|c| c.updated), self.now()) {
                    Side::Familiar
                } else {
                    Side::Unfamiliar
                }
            }
            None => Side::Unfamiliar,
        };
        Ok(format!("lockout:{user}:{}", side.as_str()))
    }

    /// Counts this attempt before any secret is checked, so parallel attempts on any
    /// node cannot exceed the threshold; `false` when the client's side is locked or
    /// this attempt is over the threshold. Once a lock has run out, exactly one
    /// attempt is let through (the one whose count follows the count that locked):
    /// the real user gets in, while a wrong guess locks again, for twice as long.
    /// Only a completed sign-in clears the count.
    async fn reserve_attempt(&self, ctx: &SignInContext, subject: &Subject) -> ServiceResult<bool> {
        let key = self.lockout_key(ctx, subject.user_id).await?;
        let now = self.now();
        let settings = &subject.policy.lockout;
        let before = self.store.counter_get(ctx.tenant, &key).await?;
        if let Some(counter) = &before
            && lockout::locked_for(settings, counter.value, counter.updated, now).is_some()
        {
            return Ok(false);
        }
        let attempts = self
            .store
            .counter_increment(ctx.tenant, &key, now, lockout::restart_before(now))
            .await?;
        Ok(lockout::attempt_allowed(
            settings,
            before.map(|c| c.value).unwrap_or(0),
            attempts,
        ))
    }

    /// Burns the time of one password check, so refusals without one take as long.
    async fn decoy_check(&self) -> ServiceResult<()> {
        self.authn
            .hash_work(|| hashing::verify("decoy", hashing::decoy()))
            .await?;
        Ok(())
    }

    async fn fail(
        &self,
        ctx: &SignInContext,
        flow: &Flow,
        code: &'static str,
        message: &'static str,
    ) -> ServiceResult<SignInOutcome> {
        let name = flow.data.state.typed_name().unwrap_or_default();
        self.log_attempt(
            ctx,
            flow.data.state.user_id(),
            name,
            flow.data.state.used(),
            Logged::Failure(code),
        )
        .await?;
        let offers = self.offers(ctx, flow).await?;
        Ok(SignInOutcome::Continue(
            self.view_of(ctx, flow, Some(message), offers).await?,
        ))
    }

    /// A method was verified for an enabled user: the flow says what comes next
    /// (a method it refuses here fails with `refused`, the code and the message).
    async fn verified(
        &self,
        ctx: &SignInContext,
        mut flow: Flow,
        subject: &Subject,
        method: MethodUse,
        refused: (&'static str, &'static str),
    ) -> ServiceResult<SignInOutcome> {
        let next = match flow.data.state.verified(method, &subject.second_factors()) {
            Ok(next) => next,
            Err(_) => return self.fail(ctx, &flow, refused.0, refused.1).await,
        };
        match next {
            Next::SecondFactor(offers) => {
                let logged = Logged::Interrupted(
                    failure::MFA_REQUIRED,
                    "the user must complete a second factor",
                );
                self.ask_again(ctx, flow, subject, logged, None, offers)
                    .await
            }
            Next::CheckStrengths => self.check_strengths(ctx, flow, subject).await,
            Next::Complete => self.complete(ctx, flow, subject).await,
        }
    }

    /// A step-up is complete when the methods used reach the required strengths;
    /// otherwise it goes on with the methods that can reach them.
    async fn check_strengths(
        &self,
        ctx: &SignInContext,
        mut flow: Flow,
        subject: &Subject,
    ) -> ServiceResult<SignInOutcome> {
        let reached = self
            .satisfied_strengths(ctx.tenant, flow.data.state.used())
            .await?;
        if flow.data.state.strengths_reached(&reached) == StrengthCheck::Reached {
            return self.complete(ctx, flow, subject).await;
        }
        let useful = self.useful_modes(ctx, &flow).await?.unwrap_or_default();
        let more = flow
            .data
            .state
            .offers(&[], &subject.second_factors(), Some(&useful));
        if more.is_empty() {
            let logged = Logged::Failure(failure::STRENGTH_NOT_MET);
            return self
                .ask_again(ctx, flow, subject, logged, Some(NO_STRONG_METHOD), more)
                .await;
        }
        let logged = Logged::Interrupted(
            failure::STRENGTH_NOT_MET,
            "the application asks for a stronger sign-in",
        );
        self.ask_again(ctx, flow, subject, logged, None, more).await
    }

    /// The sign-in goes on: the flow is kept, the sign-in log says where it
    /// stands, and the page asks for one of `offers`.
    async fn ask_again(
        &self,
        ctx: &SignInContext,
        mut flow: Flow,
        subject: &Subject,
        logged: Logged,
        error: Option<&'static str>,
        offers: Vec<Mode>,
    ) -> ServiceResult<SignInOutcome> {
        let risk = self
            .log_attempt(
                ctx,
                Some(subject.user_id),
                &subject.spec.user_principal_name,
                flow.data.state.used(),
                logged,
            )
            .await?;
        flow.data.sign_in_risk = flow.data.sign_in_risk.max(Some(risk));
        self.save_flow(ctx, &mut flow).await?;
        Ok(SignInOutcome::Continue(
            self.view_of(ctx, &flow, error, offers).await?,
        ))
    }

    /// The sign-in is complete: the flow becomes a session.
    async fn complete(
        &self,
        ctx: &SignInContext,
        flow: Flow,
        subject: &Subject,
    ) -> ServiceResult<SignInOutcome> {
        // The flow's secret must not become a session secret: a new one is made.
        self.store.session_delete(ctx.tenant, &flow.row.id).await?;
        let lockout_key = self.lockout_key(ctx, subject.user_id).await?;
        self.store.counter_delete(ctx.tenant, &lockout_key).await?;
        if let Some(network) = ctx.client_address.as_deref().and_then(lockout::network_of) {
            let now = self.now();
            self.store
                .counter_advance(
                    ctx.tenant,
                    &format!("familiar:{}:{network}", subject.user_id),
                    now.unix_micros(),
                    now,
                )
                .await?;
        }
        let strengths = self
            .satisfied_strengths(ctx.tenant, flow.data.state.used())
            .await?;
        // Logged first: what it finds is the session's sign-in risk.
        let risk = self
            .log_attempt(
                ctx,
                Some(subject.user_id),
                &subject.spec.user_principal_name,
                flow.data.state.used(),
                Logged::Success(strengths.clone()),
            )
            .await?;
        let risk = flow.data.sign_in_risk.unwrap_or(risk).max(risk);
        let session = self
            .create_session(
                ctx,
                subject.user_id,
                &subject.spec.user_principal_name,
                super::sessions::Proven {
                    methods: flow.data.state.used().to_vec(),
                    strengths,
                    sign_in_risk: risk,
                },
                &subject.policy.sessions,
            )
            .await?;
        Ok(SignInOutcome::SignedIn { session })
    }
}

fn encode<T: Serialize>(data: &T) -> ServiceResult<String> {
    serde_json::to_string(data).map_err(|e| ServiceError::Internal(e.to_string()))
}

//! The sign-in flow as a state machine: a name first, then a first factor, a
//! second factor when the user has one (or, in a step-up, until the required
//! strengths are reached), then a session.
//!
//! Each transition is a method named for what happened (a name was typed, a
//! passkey named its account, a method was verified...), and says what comes
//! next or why the attempt is refused. The caller does everything else: it
//! loads the flow and the user, checks the secrets (lockout, hashes, counters),
//! keeps the flow between requests, logs, and makes the session. No I/O, no
//! clock: a [`MethodUse`] carries the time it was verified at.
//!
//! A refusal leaves the flow as it was.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::registration::MethodUse;
use crate::strength::Mode;

/// The longest user name the flow keeps, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// What the sign-in page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FlowStep {
    /// Asking for the user name.
    Identify,
    /// Asking for a first factor.
    Credentials,
    /// Asking for a second factor.
    SecondFactor,
}

/// Why a method cannot be used at this point of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The method does not belong to this step: a password or pass before a name
    /// or after the first factor, a code before it, a pass for a name that names
    /// no account.
    OutOfOrder,
    /// The passkey or certificate is another account's than the one signing in.
    OtherAccount,
    /// Not a second factor: a single-factor certificate, or a second certificate.
    NotSecondFactor,
}

/// What comes after a verified method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ask for a second factor, offering these.
    SecondFactor(Vec<Mode>),
    /// A step-up: check what the methods used reach
    /// ([`SignInFlow::strengths_reached`]).
    CheckStrengths,
    /// Enough is proven: the sign-in is complete.
    Complete,
}

/// What a step-up's methods reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrengthCheck {
    /// Every required strength: the sign-in is complete.
    Reached,
    /// Not yet: the flow asks for a second factor among those that count
    /// ([`SignInFlow::offers`]); when none is left, it cannot be reached.
    Short,
}

/// A sign-in flow's state, kept by the caller between requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInFlow {
    step: FlowStep,
    typed_name: Option<String>,
    user_id: Option<Uuid>,
    used: Vec<MethodUse>,
    /// A step-up: the strengths this sign-in must reach (Conditional Access).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    required: Vec<Uuid>,
}

/// The name as the flow keeps it: trimmed, at most [`MAX_NAME_CHARS`].
pub fn typed_name(raw: &str) -> String {
    raw.trim().chars().take(MAX_NAME_CHARS).collect()
}

/// Whether two modes are the same kind of method (the two kinds of temporary
/// access pass are one).
pub fn same_kind(a: Mode, b: Mode) -> bool {
    a == b || (a.is_temporary_access_pass() && b.is_temporary_access_pass())
}

fn is_certificate(mode: Mode) -> bool {
    matches!(
        mode,
        Mode::X509CertificateSingleFactor | Mode::X509CertificateMultiFactor
    )
}

impl Default for SignInFlow {
    fn default() -> SignInFlow {
        SignInFlow::new()
    }
}

impl SignInFlow {
    /// A new sign-in: the page asks for a name.
    pub fn new() -> SignInFlow {
        SignInFlow {
            step: FlowStep::Identify,
            typed_name: None,
            user_id: None,
            used: Vec::new(),
            required: Vec::new(),
        }
    }

    /// A step-up for a known user who must reach the `required` strengths: the
    /// page asks for credentials straight away.
    pub fn step_up(user_id: Uuid, user_principal_name: &str, required: Vec<Uuid>) -> SignInFlow {
        SignInFlow {
            step: FlowStep::Credentials,
            typed_name: Some(user_principal_name.to_string()),
            user_id: Some(user_id),
            used: Vec::new(),
            required,
        }
    }

    pub fn step(&self) -> FlowStep {
        self.step
    }

    /// The name typed, or the account a passkey or certificate named.
    pub fn typed_name(&self) -> Option<&str> {
        self.typed_name.as_deref()
    }

    /// The account signing in, when the name names one.
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }

    /// The methods verified so far.
    pub fn used(&self) -> &[MethodUse] {
        &self.used
    }

    /// The strengths a step-up must reach (none for an ordinary sign-in).
    pub fn required(&self) -> &[Uuid] {
        &self.required
    }

    pub fn is_step_up(&self) -> bool {
        !self.required.is_empty()
    }

    /// A name was typed ([`typed_name`]): the page asks for credentials, whether
    /// or not an account has that name (`user_id`), and what was used before
    /// counts no more.
    pub fn name_typed(&mut self, name: String, user_id: Option<Uuid>) {
        self.typed_name = Some(name);
        self.user_id = user_id;
        self.used.clear();
        self.step = FlowStep::Credentials;
    }

    /// Back to the name (a step-up keeps what it requires).
    pub fn restart(&mut self) {
        self.step = FlowStep::Identify;
        self.typed_name = None;
        self.user_id = None;
        self.used.clear();
    }

    /// Whether a secret of this kind may be tried now: a password after the name,
    /// a pass after a name that names an account, a TOTP code as the second
    /// factor of a known account. Passkeys and certificates may come at any step:
    /// the account they name is checked ([`SignInFlow::passkey_user`],
    /// [`SignInFlow::certificate_user`]).
    pub fn admits(&self, mode: Mode) -> Result<(), Refusal> {
        let admitted = match mode {
            Mode::Password => self.step == FlowStep::Credentials,
            Mode::TemporaryAccessPassOneTime | Mode::TemporaryAccessPassMultiUse => {
                self.step == FlowStep::Credentials && self.user_id.is_some()
            }
            Mode::SoftwareOath => self.step == FlowStep::SecondFactor && self.user_id.is_some(),
            Mode::Fido2 | Mode::X509CertificateSingleFactor | Mode::X509CertificateMultiFactor => {
                true
            }
        };
        if admitted {
            Ok(())
        } else {
            Err(Refusal::OutOfOrder)
        }
    }

    /// Whether a passkey of `user_id` may be used: as a second factor or in a
    /// step-up it must be the signing-in account's; otherwise any account's
    /// passkey signs in on its own.
    pub fn admits_passkey_of(&self, user_id: Uuid) -> Result<(), Refusal> {
        if self.passkey_bound() && self.user_id != Some(user_id) {
            return Err(Refusal::OtherAccount);
        }
        Ok(())
    }

    fn passkey_bound(&self) -> bool {
        self.step == FlowStep::SecondFactor || self.is_step_up()
    }

    /// A passkey named its account (before its assertion is checked): unless the
    /// flow is bound to an account already, the flow becomes that account's and
    /// starts over.
    pub fn passkey_user(
        &mut self,
        user_id: Uuid,
        user_principal_name: &str,
    ) -> Result<(), Refusal> {
        self.admits_passkey_of(user_id)?;
        if !self.passkey_bound() {
            self.user_id = Some(user_id);
            self.typed_name = Some(user_principal_name.to_string());
            self.used.clear();
        }
        Ok(())
    }

    /// A client certificate was presented: until a name is known, the
    /// certificate's name stands for it.
    pub fn certificate_presented(&mut self, name: &str) {
        if self.typed_name.is_none() {
            self.typed_name = Some(name.to_string());
        }
    }

    /// Whether a certificate bound to `user_id` may be used: after a name that
    /// names an account, it must be that account's.
    pub fn admits_certificate_of(&self, user_id: Uuid) -> Result<(), Refusal> {
        if self.step != FlowStep::Identify
            && self.user_id.is_some()
            && self.user_id != Some(user_id)
        {
            return Err(Refusal::OtherAccount);
        }
        Ok(())
    }

    /// A certificate is bound to this account (before the account is checked):
    /// the flow is that account's.
    pub fn certificate_user(
        &mut self,
        user_id: Uuid,
        user_principal_name: &str,
    ) -> Result<(), Refusal> {
        self.admits_certificate_of(user_id)?;
        self.user_id = Some(user_id);
        self.typed_name = Some(user_principal_name.to_string());
        Ok(())
    }

    /// A method was verified for the flow's account, whose second factors are
    /// `second_factors`. As the second step it completes the sign-in (only a
    /// multi-factor certificate, and only one, is a second factor). As the first,
    /// a single-factor method asks for a second factor when the user has one
    /// (not in a step-up, which asks for what its strengths need); a certificate
    /// starts the methods over.
    pub fn verified(
        &mut self,
        method: MethodUse,
        second_factors: &[Mode],
    ) -> Result<Next, Refusal> {
        let mode = method.method.mode;
        if self.step == FlowStep::SecondFactor {
            match mode {
                Mode::Password
                | Mode::TemporaryAccessPassOneTime
                | Mode::TemporaryAccessPassMultiUse => return Err(Refusal::OutOfOrder),
                Mode::X509CertificateSingleFactor => return Err(Refusal::NotSecondFactor),
                Mode::X509CertificateMultiFactor
                    if self.used.iter().any(|u| is_certificate(u.method.mode)) =>
                {
                    return Err(Refusal::NotSecondFactor);
                }
                _ => {}
            }
            self.used.push(method);
            return Ok(self.finish());
        }
        if mode == Mode::SoftwareOath {
            return Err(Refusal::OutOfOrder);
        }
        if is_certificate(mode) {
            self.step = FlowStep::Credentials;
            self.used.clear();
        } else if mode != Mode::Fido2 && self.step != FlowStep::Credentials {
            return Err(Refusal::OutOfOrder);
        }
        self.used.push(method);
        if !mode.is_multi_factor() && !second_factors.is_empty() && !self.is_step_up() {
            self.step = FlowStep::SecondFactor;
            return Ok(Next::SecondFactor(second_factors.to_vec()));
        }
        Ok(self.finish())
    }

    fn finish(&self) -> Next {
        if self.is_step_up() {
            Next::CheckStrengths
        } else {
            Next::Complete
        }
    }

    /// A step-up's methods reach the strengths in `reached`: when that is every
    /// required one the sign-in is complete; otherwise the flow asks for a second
    /// factor.
    pub fn strengths_reached(&mut self, reached: &[Uuid]) -> StrengthCheck {
        if self.required.iter().all(|r| reached.contains(r)) {
            return StrengthCheck::Reached;
        }
        self.step = FlowStep::SecondFactor;
        StrengthCheck::Short
    }

    /// The methods the page offers: none for the name; the tenant's first factors
    /// (`first_factors`, the same for every name, so the page does not tell which
    /// accounts exist); the account's `second_factors`. In a step-up only those
    /// that count towards the required strengths (`useful`) and were not used yet.
    pub fn offers(
        &self,
        first_factors: &[Mode],
        second_factors: &[Mode],
        useful: Option<&[Mode]>,
    ) -> Vec<Mode> {
        let offers = match self.step {
            FlowStep::Identify => Vec::new(),
            FlowStep::Credentials => first_factors.to_vec(),
            FlowStep::SecondFactor => second_factors.to_vec(),
        };
        match useful {
            Some(modes) => offers
                .into_iter()
                .filter(|m| modes.iter().any(|u| same_kind(*u, *m)))
                .filter(|m| !self.used.iter().any(|u| same_kind(u.method.mode, *m)))
                .collect(),
            None => offers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strength::{self, UsedMethod};
    use tessera_core::Timestamp;

    const ADELE: Uuid = Uuid::from_u128(1);
    const BEN: Uuid = Uuid::from_u128(2);
    const UPN: &str = "adele@contoso.com";

    fn used(mode: Mode) -> MethodUse {
        MethodUse {
            method: UsedMethod::plain(mode),
            method_id: None,
            time: Timestamp::from_unix_micros(1_000_000),
        }
    }

    fn modes(flow: &SignInFlow) -> Vec<Mode> {
        flow.used().iter().map(|u| u.method.mode).collect()
    }

    /// A flow at the credentials step for Adele.
    fn named() -> SignInFlow {
        let mut flow = SignInFlow::new();
        flow.name_typed(UPN.to_string(), Some(ADELE));
        flow
    }

    /// A flow at the second factor step for Adele, after her password.
    fn after_password() -> SignInFlow {
        let mut flow = named();
        let next = flow.verified(used(Mode::Password), &[Mode::SoftwareOath]);
        assert_eq!(next, Ok(Next::SecondFactor(vec![Mode::SoftwareOath])));
        flow
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(typed_name("  adele@contoso.com \n"), UPN);
        assert_eq!(typed_name(&"a".repeat(300)).chars().count(), MAX_NAME_CHARS);
        assert_eq!(typed_name("   "), "");
    }

    #[test]
    fn a_name_asks_for_credentials_and_restart_goes_back() {
        let mut flow = SignInFlow::new();
        assert_eq!(flow.step(), FlowStep::Identify);
        flow.name_typed("nobody@contoso.com".to_string(), None);
        assert_eq!(flow.step(), FlowStep::Credentials);
        assert_eq!(flow.typed_name(), Some("nobody@contoso.com"));
        assert_eq!(flow.user_id(), None);
        // Another name starts over.
        let mut flow = after_password();
        flow.name_typed(UPN.to_string(), Some(ADELE));
        assert_eq!(flow.step(), FlowStep::Credentials);
        assert!(flow.used().is_empty());
        flow.restart();
        assert_eq!(flow, SignInFlow::new());
    }

    #[test]
    fn secrets_only_at_their_step() {
        let start = SignInFlow::new();
        for mode in [
            Mode::Password,
            Mode::TemporaryAccessPassOneTime,
            Mode::SoftwareOath,
        ] {
            assert_eq!(start.admits(mode), Err(Refusal::OutOfOrder), "{mode:?}");
        }
        let named = named();
        assert_eq!(named.admits(Mode::Password), Ok(()));
        assert_eq!(named.admits(Mode::TemporaryAccessPassMultiUse), Ok(()));
        assert_eq!(named.admits(Mode::SoftwareOath), Err(Refusal::OutOfOrder));
        // An unknown name is offered a password like any other, but no pass.
        let mut unknown = SignInFlow::new();
        unknown.name_typed("nobody@contoso.com".to_string(), None);
        assert_eq!(unknown.admits(Mode::Password), Ok(()));
        assert_eq!(
            unknown.admits(Mode::TemporaryAccessPassOneTime),
            Err(Refusal::OutOfOrder)
        );
        let second = after_password();
        assert_eq!(second.admits(Mode::SoftwareOath), Ok(()));
        assert_eq!(second.admits(Mode::Password), Err(Refusal::OutOfOrder));
        // Passkeys and certificates may come at any step.
        for flow in [&start, &named, &second] {
            assert_eq!(flow.admits(Mode::Fido2), Ok(()));
            assert_eq!(flow.admits(Mode::X509CertificateMultiFactor), Ok(()));
        }
    }

    #[test]
    fn a_single_factor_asks_for_the_second_the_user_has() {
        let flow = after_password();
        assert_eq!(flow.step(), FlowStep::SecondFactor);
        assert_eq!(modes(&flow), [Mode::Password]);
        // Without a second factor the password completes the sign-in.
        let mut without = named();
        assert_eq!(
            without.verified(used(Mode::Password), &[]),
            Ok(Next::Complete)
        );
        assert_eq!(without.step(), FlowStep::Credentials);
        // A multi-factor method completes it on its own.
        let mut pass = named();
        assert_eq!(
            pass.verified(used(Mode::TemporaryAccessPassOneTime), &[Mode::Fido2]),
            Ok(Next::Complete)
        );
    }

    #[test]
    fn a_second_factor_completes() {
        let mut flow = after_password();
        assert_eq!(
            flow.verified(used(Mode::SoftwareOath), &[Mode::SoftwareOath]),
            Ok(Next::Complete)
        );
        assert_eq!(modes(&flow), [Mode::Password, Mode::SoftwareOath]);
    }

    #[test]
    fn methods_out_of_order_are_refused_and_change_nothing() {
        // A code before the first factor, a password at the name.
        let mut start = SignInFlow::new();
        assert_eq!(
            start.verified(used(Mode::SoftwareOath), &[]),
            Err(Refusal::OutOfOrder)
        );
        assert_eq!(
            start.verified(used(Mode::Password), &[]),
            Err(Refusal::OutOfOrder)
        );
        assert_eq!(start, SignInFlow::new());
        // A password or pass as the second factor.
        let mut second = after_password();
        let before = second.clone();
        for mode in [Mode::Password, Mode::TemporaryAccessPassMultiUse] {
            assert_eq!(
                second.verified(used(mode), &[]),
                Err(Refusal::OutOfOrder),
                "{mode:?}"
            );
        }
        assert_eq!(second, before);
    }

    #[test]
    fn passkeys_sign_in_alone_or_as_the_users_second_factor() {
        // From the name step, any account's passkey: the flow becomes its own.
        let mut flow = named();
        assert_eq!(flow.passkey_user(BEN, "ben@contoso.com"), Ok(()));
        assert_eq!(flow.user_id(), Some(BEN));
        assert_eq!(flow.typed_name(), Some("ben@contoso.com"));
        assert_eq!(flow.verified(used(Mode::Fido2), &[]), Ok(Next::Complete));
        let mut autofill = SignInFlow::new();
        assert_eq!(autofill.passkey_user(ADELE, UPN), Ok(()));
        assert_eq!(
            autofill.verified(used(Mode::Fido2), &[Mode::SoftwareOath]),
            Ok(Next::Complete)
        );
        // As the second factor, only the account's own.
        let mut second = after_password();
        assert_eq!(second.admits_passkey_of(BEN), Err(Refusal::OtherAccount));
        assert_eq!(
            second.passkey_user(BEN, "ben@contoso.com"),
            Err(Refusal::OtherAccount)
        );
        assert_eq!(second.user_id(), Some(ADELE));
        assert_eq!(second.passkey_user(ADELE, UPN), Ok(()));
        assert_eq!(modes(&second), [Mode::Password]);
        assert_eq!(second.verified(used(Mode::Fido2), &[]), Ok(Next::Complete));
        assert_eq!(modes(&second), [Mode::Password, Mode::Fido2]);
    }

    #[test]
    fn certificates_name_their_account() {
        // Until a name is known, the certificate's stands for it.
        let mut flow = SignInFlow::new();
        flow.certificate_presented("CN=Adele");
        assert_eq!(flow.typed_name(), Some("CN=Adele"));
        flow.certificate_presented("CN=Other");
        assert_eq!(flow.typed_name(), Some("CN=Adele"));
        assert_eq!(flow.certificate_user(ADELE, UPN), Ok(()));
        assert_eq!(flow.typed_name(), Some(UPN));
        // A single-factor certificate is a first factor: a second one follows.
        assert_eq!(
            flow.verified(
                used(Mode::X509CertificateSingleFactor),
                &[Mode::SoftwareOath]
            ),
            Ok(Next::SecondFactor(vec![Mode::SoftwareOath]))
        );
        // After a name, only that account's certificate.
        let mut named = named();
        assert_eq!(named.admits_certificate_of(BEN), Err(Refusal::OtherAccount));
        assert_eq!(
            named.certificate_user(BEN, "ben@contoso.com"),
            Err(Refusal::OtherAccount)
        );
        assert_eq!(named.user_id(), Some(ADELE));
        // An unknown name binds nothing: the certificate's account signs in.
        let mut unknown = SignInFlow::new();
        unknown.name_typed("nobody@contoso.com".to_string(), None);
        assert_eq!(unknown.certificate_user(BEN, "ben@contoso.com"), Ok(()));
        assert_eq!(unknown.user_id(), Some(BEN));
    }

    #[test]
    fn a_certificate_after_the_first_factor_must_be_multi_factor_and_the_first() {
        let mut second = after_password();
        assert_eq!(
            second.verified(used(Mode::X509CertificateSingleFactor), &[]),
            Err(Refusal::NotSecondFactor)
        );
        assert_eq!(
            second.verified(used(Mode::X509CertificateMultiFactor), &[]),
            Ok(Next::Complete)
        );
        // A single-factor certificate first, then another certificate.
        let mut flow = named();
        flow.verified(
            used(Mode::X509CertificateSingleFactor),
            &[Mode::SoftwareOath],
        )
        .unwrap();
        let before = flow.clone();
        assert_eq!(
            flow.verified(used(Mode::X509CertificateMultiFactor), &[]),
            Err(Refusal::NotSecondFactor)
        );
        assert_eq!(flow, before);
        // As the first step, a certificate starts the methods over.
        let mut restarted = SignInFlow::new();
        restarted.passkey_user(ADELE, UPN).unwrap();
        restarted.used.push(used(Mode::Password));
        assert_eq!(
            restarted.verified(used(Mode::X509CertificateMultiFactor), &[]),
            Ok(Next::Complete)
        );
        assert_eq!(restarted.step(), FlowStep::Credentials);
        assert_eq!(modes(&restarted), [Mode::X509CertificateMultiFactor]);
    }

    #[test]
    fn a_step_up_goes_on_until_the_strengths_are_reached() {
        let mut flow = SignInFlow::step_up(ADELE, UPN, vec![strength::PHISHING_RESISTANT_MFA]);
        assert_eq!(flow.step(), FlowStep::Credentials);
        assert!(flow.is_step_up());
        // No second-factor step of its own: the strengths decide.
        assert_eq!(
            flow.verified(used(Mode::Password), &[Mode::SoftwareOath, Mode::Fido2]),
            Ok(Next::CheckStrengths)
        );
        assert_eq!(
            flow.strengths_reached(&[strength::MFA]),
            StrengthCheck::Short
        );
        assert_eq!(flow.step(), FlowStep::SecondFactor);
        // Only what counts and was not used yet is offered.
        let useful = [Mode::Fido2, Mode::Password];
        assert_eq!(
            flow.offers(&[], &[Mode::SoftwareOath, Mode::Fido2], Some(&useful)),
            [Mode::Fido2]
        );
        // A passkey of the account, then the strengths are reached.
        assert_eq!(flow.admits_passkey_of(BEN), Err(Refusal::OtherAccount));
        assert_eq!(
            flow.verified(used(Mode::Fido2), &[]),
            Ok(Next::CheckStrengths)
        );
        assert_eq!(
            flow.strengths_reached(&[strength::MFA, strength::PHISHING_RESISTANT_MFA]),
            StrengthCheck::Reached
        );
        // Nothing left that counts: the page has nothing to offer.
        assert!(
            flow.offers(&[], &[Mode::SoftwareOath, Mode::Fido2], Some(&useful))
                .is_empty()
        );
        // A step-up keeps what it requires when it starts over.
        flow.restart();
        assert_eq!(flow.required(), [strength::PHISHING_RESISTANT_MFA]);
    }

    #[test]
    fn offers_follow_the_step() {
        let first = [Mode::Password, Mode::TemporaryAccessPassOneTime];
        let second = [Mode::SoftwareOath];
        assert!(SignInFlow::new().offers(&first, &second, None).is_empty());
        assert_eq!(named().offers(&first, &second, None), first);
        assert_eq!(after_password().offers(&first, &second, None), second);
        // In a step-up, a pass counts as either kind of pass.
        let step_up = SignInFlow::step_up(ADELE, UPN, vec![strength::MFA]);
        assert_eq!(
            step_up.offers(&first, &second, Some(&[Mode::TemporaryAccessPassMultiUse])),
            [Mode::TemporaryAccessPassOneTime]
        );
    }

    #[test]
    fn the_state_keeps_its_stored_form() {
        let flow = after_password();
        let value = serde_json::to_value(&flow).unwrap();
        assert_eq!(value["step"], "secondFactor");
        assert_eq!(value["typedName"], UPN);
        assert!(value.get("required").is_none());
        assert_eq!(serde_json::from_value::<SignInFlow>(value).unwrap(), flow);
        let fresh = serde_json::to_value(SignInFlow::new()).unwrap();
        assert_eq!(
            fresh,
            serde_json::json!({ "step": "identify", "typedName": null, "userId": null, "used": [] })
        );
    }
}

//! The app sign-in's rules, without I/O: whether a session meets what a request
//! demands of it, and the verdict from what the decision found.

use tessera_ca::engine::Outcome;
use tessera_core::Timestamp;
use tessera_directory::model::AuthenticationContexts;
use tessera_oauth::acr;
use uuid::Uuid;

use crate::access::Decided;

/// What a request demands of the session that answers it.
#[derive(Debug, Clone, Default)]
pub struct Demands {
    /// A sign-in made for this very request answers it when it is at or after this
    /// time; nothing else is then asked of the session.
    pub signed_in_after: Option<Timestamp>,
    /// The person the application expects (OIDC `login_hint`), by user principal
    /// name, case-insensitively.
    pub login_hint: Option<String>,
    /// The oldest the sign-in may be, in seconds; 0 asks for a new one.
    pub max_age: Option<i64>,
    /// A new sign-in, however good the session (OIDC `prompt=login`, SAML
    /// `ForceAuthn`).
    pub fresh: bool,
    /// A claims challenge's time (continuous access evaluation): the session
    /// must have signed in at or after it, besides everything else asked.
    pub signed_in_since: Option<Timestamp>,
}

/// What a decision needs to know of a session.
pub(crate) struct SessionFacts<'a> {
    pub user_principal_name: &'a str,
    pub auth_time: Timestamp,
    pub strengths: &'a [Uuid],
}

/// Whether the session is good enough to answer the request, or a sign-in comes
/// first. Authentication contexts asked for are met by a strength configured for
/// them; one with no strength configured is Conditional Access's to decide.
pub(crate) fn session_meets(
    demands: &Demands,
    session: &SessionFacts<'_>,
    wanted_acr: &[String],
    contexts: &AuthenticationContexts,
    now: Timestamp,
) -> bool {
    // A claims challenge's time narrows what the session may be; it never
    // stands in for the other demands.
    if demands
        .signed_in_since
        .is_some_and(|since| session.auth_time < since)
    {
        return false;
    }
    if let Some(after) = demands.signed_in_after {
        return session.auth_time >= after;
    }
    let hint_ok = demands
        .login_hint
        .as_ref()
        .is_none_or(|hint| hint.eq_ignore_ascii_case(session.user_principal_name));
    // OIDC Core §3.1.2.1: `max_age=0` is `prompt=login`, however recent the sign-in
    // (a whole-second age would let one under a second pass).
    let age_micros = now.unix_micros() - session.auth_time.unix_micros();
    let max_age_ok = demands
        .max_age
        .is_none_or(|max| max > 0 && age_micros <= max.saturating_mul(1_000_000));
    let acr_ok = wanted_acr.is_empty()
        || wanted_acr.iter().any(|wanted| {
            acr::acr_satisfied(wanted, session.strengths, contexts)
                || (tessera_ca::validate::auth_context_number(wanted).is_some()
                    && !contexts.contexts.iter().any(|c| &c.id == wanted))
        });
    hint_ok && max_age_ok && acr_ok && !demands.fresh
}

/// What Conditional Access asked of a sign-in, reduced to what the verdict needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccessFinding {
    Allow,
    Block,
    /// A control no sign-in can meet here (a managed device).
    Impossible,
    /// What a new sign-in, terms of use or a password change would meet.
    Remedy {
        strengths: Vec<Uuid>,
        reauthenticate: bool,
        accept_terms: Vec<Uuid>,
    },
}

impl AccessFinding {
    pub fn of(decided: &Decided) -> AccessFinding {
        match decided.decision.outcome {
            Outcome::Allow => AccessFinding::Allow,
            Outcome::Block => AccessFinding::Block,
            Outcome::Interrupt => {
                let remedy = decided.decision.remedy(&decided.set);
                if !remedy.impossible.is_empty() {
                    return AccessFinding::Impossible;
                }
                AccessFinding::Remedy {
                    strengths: remedy.strengths,
                    reauthenticate: remedy.reauthenticate,
                    accept_terms: remedy.accept_terms,
                }
            }
        }
    }
}

/// What a decision found, past session sufficiency.
pub(crate) struct Findings {
    pub access: AccessFinding,
    /// The session comes from a sign-in made for this request.
    pub made_for_this: bool,
    /// Every essential authentication context is met (or none is asked for).
    pub essential_met: bool,
    /// Assignment admits the user.
    pub assigned: bool,
    /// The permissions the user has not consented to.
    pub missing_consent: Vec<String>,
    /// The tenant's consent policy lets the user consent to them.
    pub user_may_consent: bool,
}

/// What the person must do, if anything, before they enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// The application is not here, has no service principal, or is disabled:
    /// nobody enters, signed in or not.
    Unavailable,
    /// No session, or one that does not meet the request's demands: a sign-in.
    SignIn,
    /// Conditional Access asks for a new sign-in reaching these strengths (a fresh
    /// one when empty).
    StepUp {
        strengths: Vec<Uuid>,
    },
    /// Conditional Access asks to accept these terms of use (their ids) first.
    AcceptTerms {
        terms: Vec<Uuid>,
    },
    /// Conditional Access asks for a password change first.
    ChangePassword,
    /// The person may consent to these permissions, and is asked.
    Consent {
        scopes: Vec<String>,
    },
    /// Conditional Access refuses, with the reason the person is shown.
    Block {
        reason: String,
    },
    /// The application asked for an authentication context as essential, and the
    /// sign-in made for it still does not meet it.
    AuthenticationUnmet,
    /// The application requires assignment, and the person has none.
    NotAssigned,
    /// Permissions are missing that only an administrator may grant.
    NeedsAdminConsent,
}

impl Verdict {
    /// Conditional Access stopped the sign-in (the log records it as blocked or
    /// interrupted).
    pub fn is_conditional_access(&self) -> bool {
        matches!(
            self,
            Verdict::Block { .. }
                | Verdict::StepUp { .. }
                | Verdict::AcceptTerms { .. }
                | Verdict::ChangePassword
        )
    }
}

/// The verdict, in order: Conditional Access (a block, a control no sign-in can
/// meet, or a sign-in made for this request that still falls short refuses;
/// otherwise a new sign-in, then terms, then a password change), an essential
/// authentication context, assignment, consent.
pub(crate) fn verdict(findings: Findings) -> Verdict {
    match findings.access {
        AccessFinding::Allow => {}
        AccessFinding::Block => {
            return Verdict::Block {
                reason: "Your organization's access policies block this sign-in.".to_string(),
            };
        }
        AccessFinding::Impossible => {
            return Verdict::Block {
                reason: "Your organization's access policies allow this application only from a managed (compliant or domain-joined) device.".to_string(),
            };
        }
        AccessFinding::Remedy {
            strengths,
            reauthenticate,
            accept_terms,
        } => {
            let step_up = !strengths.is_empty() || reauthenticate;
            if step_up && findings.made_for_this {
                // A sign-in made for this request still falls short: no loop.
                return Verdict::Block {
                    reason: "The sign-in did not meet your organization's access policies for this application.".to_string(),
                };
            }
            if step_up {
                return Verdict::StepUp { strengths };
            }
            if !accept_terms.is_empty() {
                return Verdict::AcceptTerms {
                    terms: accept_terms,
                };
            }
            return Verdict::ChangePassword;
        }
    }
    if !findings.essential_met {
        return Verdict::AuthenticationUnmet;
    }
    if !findings.assigned {
        return Verdict::NotAssigned;
    }
    if !findings.missing_consent.is_empty() {
        if findings.user_may_consent {
            return Verdict::Consent {
                scopes: findings.missing_consent,
            };
        }
        return Verdict::NeedsAdminConsent;
    }
    Verdict::Allow
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_directory::model::AuthenticationContext;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_700_000_000_000_000 + seconds * 1_000_000)
    }

    const MFA: Uuid = tessera_authn::strength::MFA;

    fn session(strengths: &[Uuid]) -> SessionFacts<'_> {
        SessionFacts {
            user_principal_name: "Adele@Contoso.com",
            auth_time: at(0),
            strengths,
        }
    }

    fn contexts() -> AuthenticationContexts {
        AuthenticationContexts {
            contexts: vec![AuthenticationContext {
                id: "c1".to_string(),
                display_name: "Payroll".to_string(),
                strength_id: MFA,
            }],
        }
    }

    fn meets(demands: Demands, strengths: &[Uuid], wanted: &[&str], now: i64) -> bool {
        let wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
        session_meets(&demands, &session(strengths), &wanted, &contexts(), at(now))
    }

    #[test]
    fn a_plain_request_takes_any_session() {
        assert!(meets(Demands::default(), &[], &[], 3_600));
    }

    #[test]
    fn the_login_hint_names_the_person_case_insensitively() {
        let hint = |h: &str| Demands {
            login_hint: Some(h.to_string()),
            ..Demands::default()
        };
        assert!(meets(hint("adele@contoso.com"), &[], &[], 1));
        assert!(!meets(hint("megan@contoso.com"), &[], &[], 1));
    }

    #[test]
    fn max_age_counts_microseconds_and_zero_asks_for_a_new_sign_in() {
        let max_age = |m: i64| Demands {
            max_age: Some(m),
            ..Demands::default()
        };
        assert!(meets(max_age(60), &[], &[], 60));
        assert!(!meets(max_age(60), &[], &[], 61));
        assert!(!meets(max_age(0), &[], &[], 0), "max_age=0 is prompt=login");
        let fresh = Demands {
            fresh: true,
            ..Demands::default()
        };
        assert!(!meets(fresh, &[MFA], &[], 0));
    }

    #[test]
    fn a_context_is_met_by_its_strength_or_left_to_conditional_access() {
        assert!(!meets(Demands::default(), &[], &["c1"], 1));
        assert!(meets(Demands::default(), &[MFA], &["c1"], 1));
        // c2 has no strength configured: the policies that target it decide.
        assert!(meets(Demands::default(), &[], &["c2"], 1));
        // Any one of the values asked for is enough.
        assert!(meets(Demands::default(), &[], &["c1", "c2"], 1));
    }

    #[test]
    fn a_sign_in_made_for_the_request_answers_it_whatever_else_it_asked() {
        let made = |after: i64| Demands {
            signed_in_after: Some(at(after)),
            login_hint: Some("megan@contoso.com".to_string()),
            max_age: Some(0),
            fresh: true,
            signed_in_since: None,
        };
        assert!(meets(made(0), &[], &["c1"], 10));
        assert!(
            !meets(made(1), &[MFA], &[], 10),
            "an older sign-in does not"
        );
    }

    #[test]
    fn a_claims_challenge_adds_to_the_demands_never_replaces_them() {
        let challenged = |since: i64, fresh: bool| Demands {
            signed_in_since: Some(at(since)),
            fresh,
            ..Demands::default()
        };
        // An old challenge time does not wave prompt=login, acr or max_age.
        assert!(!meets(challenged(-100, true), &[MFA], &[], 1));
        assert!(!meets(challenged(-100, false), &[], &["c1"], 1));
        let old_and_aged = Demands {
            signed_in_since: Some(at(-100)),
            max_age: Some(5),
            ..Demands::default()
        };
        assert!(!meets(old_and_aged, &[MFA], &[], 10));
        // A session older than the challenge does not answer it.
        assert!(!meets(challenged(1, false), &[MFA], &[], 2));
        assert!(meets(challenged(0, false), &[MFA], &[], 2));
    }

    fn findings(access: AccessFinding) -> Findings {
        Findings {
            access,
            made_for_this: false,
            essential_met: true,
            assigned: true,
            missing_consent: Vec::new(),
            user_may_consent: false,
        }
    }

    fn remedy(strengths: &[Uuid], reauthenticate: bool, terms: &[Uuid]) -> AccessFinding {
        AccessFinding::Remedy {
            strengths: strengths.to_vec(),
            reauthenticate,
            accept_terms: terms.to_vec(),
        }
    }

    #[test]
    fn conditional_access_comes_first_and_picks_one_remedy() {
        assert_eq!(verdict(findings(AccessFinding::Allow)), Verdict::Allow);
        assert!(matches!(
            verdict(findings(AccessFinding::Block)),
            Verdict::Block { .. }
        ));
        assert!(matches!(
            verdict(findings(AccessFinding::Impossible)),
            Verdict::Block { reason } if reason.contains("managed")
        ));
        let terms = Uuid::from_u128(7);
        assert_eq!(
            verdict(findings(remedy(&[MFA], false, &[terms]))),
            Verdict::StepUp {
                strengths: vec![MFA]
            },
            "a new sign-in before terms"
        );
        assert_eq!(
            verdict(findings(remedy(&[], true, &[]))),
            Verdict::StepUp {
                strengths: Vec::new()
            },
            "sign-in frequency asks for a fresh sign-in"
        );
        assert_eq!(
            verdict(findings(remedy(&[], false, &[terms]))),
            Verdict::AcceptTerms { terms: vec![terms] }
        );
        assert_eq!(
            verdict(findings(remedy(&[], false, &[]))),
            Verdict::ChangePassword
        );
        // Blocked or interrupted by a policy, the rest is not looked at.
        let mut unassigned = findings(remedy(&[], false, &[]));
        unassigned.assigned = false;
        assert_eq!(verdict(unassigned), Verdict::ChangePassword);
    }

    #[test]
    fn a_sign_in_made_for_the_request_that_still_falls_short_is_final() {
        let mut again = findings(remedy(&[MFA], false, &[]));
        again.made_for_this = true;
        assert!(matches!(verdict(again), Verdict::Block { .. }), "no loop");
        // Terms and a password change go on with the same sign-in.
        let mut terms = findings(remedy(&[], false, &[Uuid::from_u128(1)]));
        terms.made_for_this = true;
        assert!(matches!(verdict(terms), Verdict::AcceptTerms { .. }));
    }

    #[test]
    fn then_essential_contexts_then_assignment_then_consent() {
        let mut all = findings(AccessFinding::Allow);
        all.essential_met = false;
        all.assigned = false;
        all.missing_consent = vec!["Files.Read".to_string()];
        assert_eq!(verdict(all), Verdict::AuthenticationUnmet);
        let mut unassigned = findings(AccessFinding::Allow);
        unassigned.assigned = false;
        unassigned.missing_consent = vec!["Files.Read".to_string()];
        unassigned.user_may_consent = true;
        assert_eq!(
            verdict(unassigned),
            Verdict::NotAssigned,
            "no consent is asked for an application the user may not enter"
        );
        let mut consent = findings(AccessFinding::Allow);
        consent.missing_consent = vec!["Files.Read".to_string()];
        consent.user_may_consent = true;
        assert_eq!(
            verdict(consent),
            Verdict::Consent {
                scopes: vec!["Files.Read".to_string()]
            }
        );
        let mut admin = findings(AccessFinding::Allow);
        admin.missing_consent = vec!["Directory.ReadWrite.All".to_string()];
        assert_eq!(verdict(admin), Verdict::NeedsAdminConsent);
    }
}

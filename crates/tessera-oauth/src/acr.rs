//! What a sign-in proved, as tokens say it: `acr` (Tessera's authentication
//! context class references, one per built-in authentication strength, or one of
//! the tenant's authentication contexts `c1`..), `acrs` (the contexts met) and
//! `amr` (RFC 8176 method references).

use tessera_authn::registration::MethodUse;
use tessera_authn::strength::{self, Mode};
use tessera_directory::model::AuthenticationContexts;
use uuid::Uuid;

/// The `acr` values Tessera issues, strongest first, with the built-in
/// authentication strength each stands for.
pub const ACR_VALUES: [(&str, Option<Uuid>); 4] = [
    (
        "urn:tessera:acr:phishing-resistant-mfa",
        Some(strength::PHISHING_RESISTANT_MFA),
    ),
    (
        "urn:tessera:acr:passwordless-mfa",
        Some(strength::PASSWORDLESS_MFA),
    ),
    ("urn:tessera:acr:mfa", Some(strength::MFA)),
    ("urn:tessera:acr:sfa", None),
];

/// The strengths an `acr` Tessera issued stands for (the strongest and the ones
/// below it that it implies), for decisions about a token's user without the
/// session (on-behalf-of).
pub fn strengths_of_acr(acr: &str) -> Vec<Uuid> {
    match ACR_VALUES.iter().find(|(value, _)| *value == acr) {
        Some((_, Some(id))) if *id == strength::MFA => vec![strength::MFA],
        Some((_, Some(id))) => vec![*id, strength::MFA],
        _ => Vec::new(),
    }
}

/// RFC 8176 method references for the methods used.
pub fn amr_of(methods: &[MethodUse], strengths: &[Uuid]) -> Vec<String> {
    let mut amr: Vec<String> = Vec::new();
    for used in methods {
        let value = match used.method.mode {
            Mode::Password => "pwd",
            Mode::SoftwareOath => "otp",
            Mode::Fido2 => "pop",
            Mode::TemporaryAccessPassOneTime | Mode::TemporaryAccessPassMultiUse => "otp",
            Mode::X509CertificateSingleFactor | Mode::X509CertificateMultiFactor => "sc",
        };
        if !amr.iter().any(|a| a == value) {
            amr.push(value.to_string());
        }
    }
    if strengths.contains(&strength::MFA) {
        amr.push("mfa".to_string());
    }
    amr
}

/// The strongest `acr` the strengths reach.
pub fn acr_of(strengths: &[Uuid]) -> &'static str {
    ACR_VALUES
        .iter()
        .find(|(_, id)| id.is_none_or(|id| strengths.contains(&id)))
        .map(|(acr, _)| *acr)
        .unwrap_or("urn:tessera:acr:sfa")
}

/// Whether a sign-in with `strengths` satisfies the `acr` value `wanted`: one of
/// Tessera's own, or one of the tenant's authentication contexts (`c1`...).
pub fn acr_satisfied(wanted: &str, strengths: &[Uuid], contexts: &AuthenticationContexts) -> bool {
    if let Some(context) = contexts.contexts.iter().find(|c| c.id == wanted) {
        return strengths.contains(&context.strength_id);
    }
    ACR_VALUES
        .iter()
        .find(|(acr, _)| *acr == wanted)
        .is_some_and(|(_, id)| id.is_none_or(|id| strengths.contains(&id)))
}

/// The authentication contexts a sign-in with `strengths` satisfies (`acrs`).
pub fn satisfied_contexts(strengths: &[Uuid], contexts: &AuthenticationContexts) -> Vec<String> {
    contexts
        .contexts
        .iter()
        .filter(|c| strengths.contains(&c.strength_id))
        .map(|c| c.id.clone())
        .collect()
}

/// The `acr` a sign-in's tokens carry: the first value the client asked for
/// (`wanted`) that the sign-in satisfies, by its strengths or as an authentication
/// context Conditional Access found met (`met_by_policies`); else the strongest of
/// Tessera's own.
pub fn issued_acr(
    wanted: &[String],
    strengths: &[Uuid],
    contexts: &AuthenticationContexts,
    met_by_policies: &[String],
) -> String {
    wanted
        .iter()
        .find(|acr| acr_satisfied(acr, strengths, contexts) || met_by_policies.contains(acr))
        .cloned()
        .unwrap_or_else(|| acr_of(strengths).to_string())
}

/// The `acrs` a sign-in's tokens carry: the contexts its strengths satisfy, then
/// those Conditional Access found met.
pub fn issued_acrs(
    strengths: &[Uuid],
    contexts: &AuthenticationContexts,
    met_by_policies: Vec<String>,
) -> Vec<String> {
    let mut acrs = satisfied_contexts(strengths, contexts);
    for context in met_by_policies {
        if !acrs.contains(&context) {
            acrs.push(context);
        }
    }
    acrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_authn::strength::UsedMethod;
    use tessera_core::Timestamp;
    use tessera_directory::model::AuthenticationContext;

    fn payroll() -> AuthenticationContexts {
        AuthenticationContexts {
            contexts: vec![AuthenticationContext {
                id: "c1".to_string(),
                display_name: "Payroll approvals".to_string(),
                strength_id: strength::PHISHING_RESISTANT_MFA,
            }],
        }
    }

    #[test]
    fn acr_follows_the_strongest_strength() {
        assert_eq!(acr_of(&[]), "urn:tessera:acr:sfa");
        assert_eq!(acr_of(&[strength::MFA]), "urn:tessera:acr:mfa");
        assert_eq!(
            acr_of(&[strength::MFA, strength::PHISHING_RESISTANT_MFA]),
            "urn:tessera:acr:phishing-resistant-mfa"
        );
        let none = AuthenticationContexts::default();
        assert!(acr_satisfied(
            "urn:tessera:acr:mfa",
            &[strength::MFA],
            &none
        ));
        assert!(!acr_satisfied(
            "urn:tessera:acr:phishing-resistant-mfa",
            &[strength::MFA],
            &none
        ));
        assert!(!acr_satisfied("c1", &[strength::MFA], &none));
        let contexts = payroll();
        assert!(!acr_satisfied("c1", &[strength::MFA], &contexts));
        assert!(acr_satisfied(
            "c1",
            &[strength::PHISHING_RESISTANT_MFA],
            &contexts
        ));
        assert_eq!(
            satisfied_contexts(&[strength::PHISHING_RESISTANT_MFA], &contexts),
            ["c1"]
        );
    }

    #[test]
    fn an_issued_acr_stands_for_its_strengths() {
        assert_eq!(strengths_of_acr("urn:tessera:acr:mfa"), vec![strength::MFA]);
        assert_eq!(
            strengths_of_acr("urn:tessera:acr:phishing-resistant-mfa"),
            vec![strength::PHISHING_RESISTANT_MFA, strength::MFA]
        );
        assert!(strengths_of_acr("urn:tessera:acr:sfa").is_empty());
    }

    #[test]
    fn the_acr_asked_for_is_issued_when_met() {
        let contexts = payroll();
        let wanted = ["c1".to_string(), "urn:tessera:acr:mfa".to_string()];
        // c1's strength is not reached, the second value is.
        assert_eq!(
            issued_acr(&wanted, &[strength::MFA], &contexts, &[]),
            "urn:tessera:acr:mfa"
        );
        // Conditional Access found c1 met.
        assert_eq!(
            issued_acr(&wanted, &[strength::MFA], &contexts, &["c1".to_string()]),
            "c1"
        );
        // Nothing asked for is met: the strongest of Tessera's own.
        assert_eq!(
            issued_acr(&wanted[..1], &[strength::MFA], &contexts, &[]),
            "urn:tessera:acr:mfa"
        );
        assert_eq!(
            issued_acrs(
                &[strength::PHISHING_RESISTANT_MFA],
                &contexts,
                vec!["c2".to_string(), "c1".to_string()]
            ),
            ["c1", "c2"]
        );
    }

    #[test]
    fn methods_become_rfc_8176_references() {
        let used = |mode| MethodUse {
            method: UsedMethod::plain(mode),
            method_id: None,
            time: Timestamp::from_unix_micros(0),
        };
        assert_eq!(
            amr_of(
                &[used(Mode::Password), used(Mode::SoftwareOath)],
                &[strength::MFA]
            ),
            ["pwd", "otp", "mfa"]
        );
        assert_eq!(
            amr_of(
                &[
                    used(Mode::TemporaryAccessPassOneTime),
                    used(Mode::SoftwareOath)
                ],
                &[]
            ),
            ["otp"]
        );
        assert_eq!(
            amr_of(
                &[used(Mode::Fido2), used(Mode::X509CertificateMultiFactor)],
                &[]
            ),
            ["pop", "sc"]
        );
    }
}

//! The user's answer to a Conditional Access interruption, whatever protocol the
//! sign-in is for: terms of use accepted, or the password changed (which, in a
//! sign-in that met multifactor authentication, remediates the user's risk, as in
//! Entra ID). Only what the policies ask now is answered: the caller decides
//! again and passes what was asked, not what a page said.

use tessera_ca::engine::Remedy;
use tessera_core::SecretString;

use super::{SessionInfo, SignIn};
use crate::error::ServiceError;

/// The user's answer on an interruption page.
pub enum InterruptionAnswer {
    AcceptTerms,
    ChangePassword {
        current: Option<SecretString>,
        new: SecretString,
    },
}

/// Why an answer changed nothing.
#[derive(Debug)]
pub enum AnswerRefused {
    /// No password change is asked of this sign-in.
    NotAsked,
    /// The new password was not accepted (the message says why).
    Password(String),
    Failed(ServiceError),
}

impl SignIn {
    /// Records `answer` for `session`, given what the policies ask now
    /// (`asked`); returns the session as it now is.
    pub(crate) async fn answer_interruption(
        &self,
        session: &SessionInfo,
        asked: &Remedy,
        answer: InterruptionAnswer,
        correlation_id: &str,
        client_address: Option<String>,
    ) -> Result<SessionInfo, AnswerRefused> {
        let mut session = session.clone();
        let only_this =
            asked.strengths.is_empty() && !asked.reauthenticate && asked.impossible.is_empty();
        match answer {
            InterruptionAnswer::AcceptTerms => {
                if only_this && !asked.accept_terms.is_empty() {
                    let context = self
                        .session_context(&session, correlation_id.to_string(), client_address)
                        .await
                        .map_err(AnswerRefused::Failed)?;
                    for terms in &asked.accept_terms {
                        self.access
                            .accept_terms(&context, session.user_id, *terms)
                            .await
                            .map_err(AnswerRefused::Failed)?;
                    }
                }
            }
            InterruptionAnswer::ChangePassword { current, new } => {
                if !(only_this && asked.change_password) {
                    return Err(AnswerRefused::NotAsked);
                }
                if let Err(error) = self
                    .change_my_password(&session, correlation_id, current, new)
                    .await
                {
                    let message = match error {
                        ServiceError::Validation(errors) => errors
                            .errors
                            .iter()
                            .map(|e| e.message.clone())
                            .collect::<Vec<_>>()
                            .join("; "),
                        ServiceError::Forbidden { reason } => reason,
                        _ => "the password could not be changed".to_string(),
                    };
                    return Err(AnswerRefused::Password(message));
                }

                let mut changed = session.data.clone();
                changed.password_changed = Some(self.now());
                self.save_session(&session, &changed)
                    .await
                    .map_err(AnswerRefused::Failed)?;
                session.row.version += 1;
                session.row.data = serde_json::to_string(&changed).unwrap_or_default();
                session.data = changed;
            }
        }
        Ok(session)
    }
}

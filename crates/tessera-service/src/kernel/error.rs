use tessera_directory::ValidationErrors;
use tessera_store::StoreError;

/// What can go wrong in a management operation. Each variant has one stable wire
/// code (see [`ServiceError::code`]); the server maps them to HTTP in one place.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the request is invalid: {0}")]
    Validation(ValidationErrors),
    #[error("{kind} {id} does not exist")]
    NotFound { kind: &'static str, id: String },
    #[error("{message}")]
    Conflict { message: String },
    #[error(
        "the object was changed since you read it (you sent version {sent}; it is now at version {current})"
    )]
    VersionMismatch { sent: i64, current: i64 },
    #[error("not allowed: {reason}")]
    Forbidden { reason: String },
    #[error("the credential is missing, invalid, expired or revoked")]
    Unauthenticated,
    /// A valid DPoP-bound access token sent as a bearer token (RFC 9449 §7.1).
    #[error(
        "the access token is DPoP-bound: send it as `Authorization: DPoP <token>` with a DPoP proof (RFC 9449)"
    )]
    DpopBoundSentAsBearer,
    /// The caller's sign-in is not strong enough for this (RFC 9470): signing in
    /// again to satisfy `acr_values` (an authentication context, or Tessera's MFA
    /// `acr`) would do.
    #[error("{message}")]
    InsufficientAuthentication { acr_values: String, message: String },
    /// A token of a client that handles claims challenges, ended by a
    /// change or refused where it was presented (continuous access
    /// evaluation): `claims` (base64) is what its authorization request
    /// carries to sign in again; `dpop`: the token came with the DPoP scheme,
    /// which the challenge names.
    #[error("the token is no longer accepted here: sign in again with the claims challenge")]
    ClaimsChallenge { claims: String, dpop: bool },
    #[error("the service is temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// The stable error code clients can match on.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Validation(_) => "validation_failed",
            ServiceError::NotFound { .. } => "not_found",
            ServiceError::Conflict { .. } => "conflict",
            ServiceError::VersionMismatch { .. } => "version_mismatch",
            ServiceError::Forbidden { .. } => "forbidden",
            ServiceError::Unauthenticated | ServiceError::DpopBoundSentAsBearer => {
                "unauthenticated"
            }
            ServiceError::InsufficientAuthentication { .. } => "insufficient_user_authentication",
            ServiceError::ClaimsChallenge { .. } => "insufficient_claims",
            ServiceError::Unavailable(_) => "unavailable",
            ServiceError::Internal(_) => "internal",
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ServiceError {
        ServiceError::Validation(ValidationErrors::single(field, message))
    }
}

impl From<ValidationErrors> for ServiceError {
    fn from(errors: ValidationErrors) -> ServiceError {
        ServiceError::Validation(errors)
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> ServiceError {
        match error {
            StoreError::NotFound { kind, id } => ServiceError::NotFound { kind, id },
            StoreError::VersionConflict { expected, .. } => ServiceError::VersionMismatch {
                sent: expected,
                current: -1,
            },
            StoreError::Duplicate { kind } => ServiceError::Conflict {
                message: format!("another {kind} already uses this unique value"),
            },
            StoreError::TenantExists => ServiceError::Conflict {
                message: "the tenant already exists".to_string(),
            },
            StoreError::MissingAuditEvent => ServiceError::Internal(error.to_string()),
            StoreError::UnstorableText => {
                ServiceError::invalid("", "a value holds a NUL character")
            }
            StoreError::Backend(message) => {
                tracing::error!(error = %message, "store error");
                ServiceError::Unavailable("the database did not answer as expected".to_string())
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// A write that a unique key refuses, said in the domain's words.
pub(crate) trait OrConflict<T> {
    /// A taken unique key becomes a conflict saying `message`; other errors as usual.
    fn or_conflict(self, message: impl Into<String>) -> ServiceResult<T>;
}

impl<T> OrConflict<T> for Result<T, StoreError> {
    fn or_conflict(self, message: impl Into<String>) -> ServiceResult<T> {
        self.map_err(|error| match error {
            StoreError::Duplicate { .. } => ServiceError::Conflict {
                message: message.into(),
            },
            other => ServiceError::from(other),
        })
    }
}

//! OpenID Shared Signals (SSF 1.0) with CAEP 1.0 and RISC 1.0: the protocol's
//! rules, for Tessera as a transmitter and as a receiver. No I/O, no clock,
//! no keys: times are passed in, and signing and verifying are the caller's.
//!
//! - [`subject`]: subject identifiers (RFC 9493 and SSF's complex subjects),
//!   parsed with bounds and matched as SSF says.
//! - [`events`]: the event types Tessera sends and takes.
//! - [`stream`]: stream configurations, what a receiver may set, statuses.
//! - [`set`]: Security Event Tokens (RFC 8417) as SSF profiles them: the
//!   claims Tessera signs, and the checks a received one passes.
//! - [`poll`]: poll delivery (RFC 8936) requests and answers.
//! - [`derive`]: which of Tessera's audited changes are which signals.

pub mod derive;
pub mod events;
pub mod poll;
pub mod set;
pub mod stream;
pub mod subject;

/// Push delivery (RFC 8935).
pub const PUSH: &str = "urn:ietf:rfc:8935";
/// Poll delivery (RFC 8936).
pub const POLL: &str = "urn:ietf:rfc:8936";

/// Why a request or a token is refused: an RFC 8935 / SSF error code and a
/// description fit for the caller (no secret, no internal detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsfError {
    pub code: &'static str,
    pub description: String,
}

impl SsfError {
    pub fn new(code: &'static str, description: impl Into<String>) -> SsfError {
        SsfError {
            code,
            description: description.into(),
        }
    }

    pub fn invalid(description: impl Into<String>) -> SsfError {
        SsfError::new("invalid_request", description)
    }
}

impl std::fmt::Display for SsfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for SsfError {}

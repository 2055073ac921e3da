//! The OAuth error codes Tessera answers with, as one enum: the registry of RFC 6749
//! (§4.1.2.1, §5.2), RFC 6750 (§3.1), RFC 7591 (§3.2.2), RFC 8628 (§3.5), RFC 8693
//! (§2.2.2 through RFC 8707's `invalid_target`), RFC 9449 (§7.1), OpenID Connect Core
//! (§3.1.2.6) and its `unmet_authentication_requirements`. No call site builds a code from a string.

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! error_codes {
    ($($variant:ident = $name:literal,)*) => {
        /// An OAuth `error` value.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as the protocol spells it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                }
            }
        }
    };
}

error_codes! {
    InvalidRequest = "invalid_request",
    InvalidClient = "invalid_client",
    InvalidGrant = "invalid_grant",
    UnauthorizedClient = "unauthorized_client",
    UnsupportedGrantType = "unsupported_grant_type",
    UnsupportedResponseType = "unsupported_response_type",
    UnsupportedTokenType = "unsupported_token_type",
    InvalidScope = "invalid_scope",
    InvalidTarget = "invalid_target",
    AccessDenied = "access_denied",
    ServerError = "server_error",
    TemporarilyUnavailable = "temporarily_unavailable",
    InteractionRequired = "interaction_required",
    LoginRequired = "login_required",
    ConsentRequired = "consent_required",
    AccountSelectionRequired = "account_selection_required",
    RequestNotSupported = "request_not_supported",
    RequestUriNotSupported = "request_uri_not_supported",
    RegistrationNotSupported = "registration_not_supported",
    InvalidRequestUri = "invalid_request_uri",
    InvalidRequestObject = "invalid_request_object",
    InvalidRedirectUri = "invalid_redirect_uri",
    InvalidClientMetadata = "invalid_client_metadata",
    AuthorizationPending = "authorization_pending",
    SlowDown = "slow_down",
    ExpiredToken = "expired_token",
    InvalidToken = "invalid_token",
    InsufficientScope = "insufficient_scope",
    InvalidDpopProof = "invalid_dpop_proof",
    UseDpopNonce = "use_dpop_nonce",
    UnmetAuthenticationRequirements = "unmet_authentication_requirements",
}

impl ErrorCode {
    /// The code a name spells, if it is one of these.
    pub fn parse(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == name)
    }

    /// The HTTP status of a JSON error response with this code: 401 for a client
    /// that failed to authenticate (RFC 6749 §5.2), 500 and 503 for the server's
    /// own failures (so a client does not take them for its mistake), else 400.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b == b'_' || b.is_ascii_lowercase())
            );
        }
        assert_eq!(ErrorCode::parse("invalid_code"), None);
    }

    #[test]
    fn statuses() {
        assert_eq!(ErrorCode::InvalidClient.status(), 401);
        assert_eq!(ErrorCode::InvalidGrant.status(), 400);
        assert_eq!(ErrorCode::ServerError.status(), 500);
        assert_eq!(ErrorCode::TemporarilyUnavailable.status(), 503);
        assert_eq!(
            serde_json::to_string(&ErrorCode::InvalidDpopProof).unwrap(),
            "\"invalid_dpop_proof\""
        );
    }
}

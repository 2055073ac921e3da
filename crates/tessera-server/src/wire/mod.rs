//! Errors to the wire, one map per protocol: OAuth JSON errors and bearer challenges
//! here (`oauth`); RFC 9457 problems for the management API in `crate::error`; HTML
//! error pages in `crate::pages`. Codes are enums; no handler writes one as a string.

pub mod oauth;
pub mod scim;

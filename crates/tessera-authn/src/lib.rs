//! Authentication methods, each as pure functions or a state machine: no I/O, no
//! clock, no randomness of their own (times and secrets are passed in).
//!
//! Architecture invariant: like `tessera-directory`, this crate is domain code; the
//! service layer loads and stores each method's state and supplies the time.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cba;
pub mod hashing;
pub mod lockout;
pub mod ocsp;
pub mod passkey;
pub mod password;
pub mod policy;
pub mod qr;
pub mod registration;
#[cfg(any(test, feature = "testing"))]
pub mod soft_authenticator;
pub mod strength;
pub mod tap;
pub mod totp;
pub mod x509;

//! Authentication methods, each as pure functions or a state machine: no I/O, no
//! clock, no randomness of their own (times and secrets are passed in). And the
//! sign-in flow that strings them together ([`flow`]): which step asks for what,
//! which method may come when, and what follows a verified one.
//!
//! Architecture invariant: like `tessera-directory`, this crate is domain code; the
//! service layer loads and stores each method's state and the flow's, checks
//! secrets against the store, and supplies the time.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cba;
pub mod flow;
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

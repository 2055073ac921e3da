//! Foundation types shared by every Tessera crate: identifiers, time, secrets and
//! the few cryptographic helpers the rest of the system builds on.
//!
//! Design decisions:
//! - No I/O and no async here. Everything is deterministic except the explicit
//!   randomness helpers in [`crypto`], which callers may replace in tests by passing
//!   values in.
//! - Secrets are wrapped in [`secret::SecretString`], whose `Debug` and `Display` never
//!   print the value, so a secret cannot leak through a log line or an error message.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod crypto;
pub mod id;
pub mod secret;
pub mod time;

pub use id::{AppId, TenantId};
pub use secret::SecretString;
pub use time::{Clock, SystemClock, Timestamp};

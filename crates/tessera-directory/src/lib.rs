//! The directory domain: what users, groups, devices, applications, roles and
//! administrative units are, which states are valid, who may do what, and how the
//! audit chain and its signed checkpoints are checked.
//!
//! Architecture invariant: this crate does no I/O. It has no database driver, no HTTP
//! types and no async runtime; time and identifiers are passed in. Everything here
//! can be tested with plain values.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod audit;
pub mod audit_action;
pub mod authz;
pub mod bulk;
pub mod certificate;
pub mod checkpoint;
pub mod error;
pub mod model;
pub mod patch;
pub mod roles;
pub mod rule;
pub mod validate;

pub use error::{FieldError, ValidationErrors};

//! Conditional Access: the policy decision point.
//!
//! - [`model`]: policies, named locations and terms of use in Microsoft Graph's
//!   JSON; [`validate`]: what they must be;
//! - [`import`]: reading Entra exports as administrators have them (UTF-16, OData
//!   annotations, ids from another tenant) into a report of what maps and what
//!   does not;
//! - [`facts`]: the facts of a sign-in as the flows gather them, and the platform
//!   it comes from (a registered device's operating system, else the
//!   User-Agent);
//! - [`engine`]: compiled policy sets and the decision, with its explanation;
//! - [`reference`](mod@reference): a slow evaluator written for clarity, which the fast one must
//!   agree with (property tests).
//!
//! **Architecture Invariant:** no I/O, no clock, no randomness. Country lookups,
//! devices, risk and group membership are given to the engine.

pub mod engine;
pub mod explain;
pub mod facts;
pub mod import;
pub mod model;
pub mod reference;
pub mod validate;

pub use engine::{Decision, Outcome, PolicySet, SignIn};

//! Provisioning's rules, as pure code (no storage, no protocol, no I/O).
//!
//! - [`expression`]: the attribute-mapping expression language (Entra's
//!   provisioning syntax: `Join(".", [givenName], [surname])`, `Switch`,
//!   `ToLower`...), parsed with bounds and evaluated over any source of attributes.
//! - [`mapping`]: an attribute mapping (target attribute ← expression, a default
//!   value, when it applies), validated against what the source and the target
//!   know, and applied to one object.
//! - [`hr`]: HR export files (CSV, JSON) read, mapped and matched to the
//!   directory by an anchor into a plan, held when it changes too much.
//! - [`lifecycle`]: lifecycle workflows (joiner, mover, leaver): triggers,
//!   scopes, tasks, checked when saved; when a date fires; event keys.
//! - [`outbound`]: outbound provisioning to an application's SCIM service:
//!   the directory user as a source, default mapping, what to do with one
//!   object, quarantine with backoff.
//! - [`targets`]: the directory's user attributes a mapping may write, with their
//!   types (custom security attributes typed by their definitions).

pub mod expression;
pub mod hr;
pub mod lifecycle;
pub mod mapping;
pub mod outbound;
pub mod targets;

pub use expression::{Env, Expression, ExpressionError, Function, Val};
pub use mapping::{Apply, AttributeMapping, Mapping, MappingError, Output};

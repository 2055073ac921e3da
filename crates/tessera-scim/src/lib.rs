//! SCIM 2.0 for Tessera, sans I/O (RFC 7643 core schema, RFC 7644 protocol).
//!
//! - [`filter`]: the filter language, parsed from untrusted text into a bounded tree,
//!   and a reference evaluator over a resource (the SQL compilation lives in the
//!   store; tests compare the two).
//! - [`path`]: attribute paths (`name.givenName`, `urn:...:User:manager.value`) and
//!   PATCH paths (`emails[type eq "work"].value`).
//! - [`schema`]: the schemas Tessera serves (User, the enterprise extension, Group),
//!   their attribute characteristics, and the discovery documents.
//! - [`resource`]: an incoming resource read against its schema into canonical form
//!   (attribute names as the schema spells them, read-only attributes dropped,
//!   types checked, the clients' known quirks accepted).
//! - [`patch`]: PATCH operations read and applied to a canonical resource.
//! - [`projection`]: `attributes` and `excludedAttributes` on what is returned.
//! - [`list`]: query parameters, paging and the ListResponse.
//! - [`outbound`]: SCIM as a client speaks it: resources built from attribute
//!   paths, and the PATCH that takes a target's copy to what is wanted.
//! - [`error`]: SCIM errors with `scimType`.
//!
//! **Architecture Invariant:** no I/O, no clock, no storage or HTTP types.

pub mod bulk;
pub mod error;
pub mod eval;
pub mod filter;
pub mod graph;
pub mod list;
pub mod outbound;
pub mod patch;
pub mod path;
pub mod projection;
pub mod resource;
pub mod schema;

pub use error::{ScimError, ScimType};
pub use filter::{CompareOp, Filter};
pub use path::{AttrPath, PatchPath};

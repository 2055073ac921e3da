//! The concrete adapters behind the application's ports. This package is the only
//! one that names them; the server and the application take them as traits.

pub mod checkpoints;
pub mod geoip;
pub mod hr_drop;
pub mod ip_lists;
pub mod notify;
pub mod outbound;
pub mod scim_target;
pub mod siem;
pub mod store;

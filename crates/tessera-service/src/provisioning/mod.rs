//! The provisioning context: people and groups arriving from other systems.
//!
//! - `scim/`: the SCIM 2.0 service provider (RFC 7643, 7644) over the directory.
//!   A client's resource is kept as it sent it (`Kind::ScimObject`, the same id as
//!   the user or group: the *source*); the directory's attributes are computed from
//!   it by the mapping of `tessera_scim::graph` and written through the directory's
//!   own use cases, in the same transaction, with their audit events. Filters run
//!   in the database (`query.rs` compiles them to a store search).
//! - `tokens.rs`: long-lived provisioning tokens for the SCIM API.
//! - `settings.rs`: the tenant's provisioning settings (the default domain).
//! - `outbound/`: outbound provisioning, Tessera as the SCIM client of an
//!   application (per service principal: settings, cycles, the log, on demand).
//!
//! May call: the kernel and the directory.

mod bulk;
pub mod hr;
pub mod mapping;
pub mod outbound;
pub(crate) mod query;
pub mod scim;
pub(crate) mod settings;
pub(crate) mod tokens;

use std::sync::Arc;

use crate::directory::Directory;
use crate::kernel::Kernel;

pub use hr::{HrImportSettings, HrRun};
pub use mapping::default_user_mapping;
pub use scim::{ListPage, ScimFailure};
pub use settings::ProvisioningSettings;
pub use tokens::{
    CreatedProvisioningToken, NewProvisioningToken, ProvisioningToken, is_provisioning_token,
};

/// The provisioning context (see the module documentation).
pub struct Provisioning {
    k: Arc<Kernel>,
    directory: Arc<Directory>,
    /// Where scheduled HR imports find their files (set by the binary).
    hr_drop: std::sync::OnceLock<Arc<dyn hr::HrDropFolder>>,
    /// Outbound provisioning's HTTP client (set by the binary).
    scim_target: std::sync::OnceLock<Arc<dyn outbound::ScimTarget>>,
}

crate::kernel::on_kernel!(Provisioning);

impl Provisioning {
    /// Gives scheduled HR imports their drop folder.
    pub fn set_hr_drop_folder(&self, folder: Arc<dyn hr::HrDropFolder>) {
        let _ = self.hr_drop.set(folder);
    }
}

impl Provisioning {
    pub(crate) fn new(k: Arc<Kernel>, directory: Arc<Directory>) -> Provisioning {
        Provisioning {
            k,
            directory,
            hr_drop: std::sync::OnceLock::new(),
            scim_target: std::sync::OnceLock::new(),
        }
    }
}

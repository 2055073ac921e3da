//! The facade the delivery crates hold: the contexts, built in their order over one
//! kernel, and the few questions about the installation itself.

use std::sync::Arc;

use tessera_core::{Clock, TenantId};
use tessera_store::Store;

use crate::error::ServiceResult;
use crate::kernel::{Kernel, SessionsEnded};
use crate::sign_in::AuthSettings;
use crate::{Access, Directory, Oidc, SignIn};

pub struct App {
    pub(crate) kernel: Arc<Kernel>,
    pub directory: Arc<Directory>,
    pub access: Arc<Access>,
    pub sign_in: Arc<SignIn>,
    pub oidc: Arc<Oidc>,
}

impl App {
    /// An application with authentication set up for local use: passkeys on
    /// `http://localhost:8080` and a sealing key that lives as long as the process.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> App {
        let sealing_key = match tessera_core::crypto::SealingKey::generate() {
            Ok((key, _)) => key,
            Err(error) => panic!("the system random number generator failed: {error}"),
        };
        App::with_auth(
            store,
            clock,
            AuthSettings {
                public_url: "http://localhost:8080".to_string(),
                issuer_name: "Tessera".to_string(),
                sealing_key,
                breached_passwords: None,
                max_concurrent_hashes: 2,
                revocation_fetcher: None,
            },
        )
    }

    pub fn with_auth(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: AuthSettings) -> App {
        let kernel = Arc::new(Kernel::new(store, clock, settings));
        let directory = Arc::new(Directory::new(kernel.clone()));
        let access = Arc::new(Access::new(kernel.clone()));
        let sign_in = Arc::new(SignIn::new(
            kernel.clone(),
            directory.clone(),
            access.clone(),
        ));
        let oidc = Arc::new(Oidc::new(
            kernel.clone(),
            directory.clone(),
            access.clone(),
            sign_in.clone(),
        ));
        let listener: Arc<dyn SessionsEnded> = oidc.clone();
        kernel.notify_sessions_ended_to(Arc::downgrade(&listener));
        App {
            kernel,
            directory,
            access,
            sign_in,
            oidc,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        self.kernel.store()
    }

    /// The default tenant (the issuer at the server's base URL), remembered once
    /// known: every sign-in page and token request needs it.
    pub async fn default_tenant(&self) -> ServiceResult<Option<TenantId>> {
        self.kernel.default_tenant().await
    }

    /// The public URL: the default tenant's issuer identifier.
    pub fn public_url(&self) -> &str {
        self.kernel.public_url()
    }
}

//! Cross-origin use of the OAuth endpoints by single-page applications: a browser
//! page on another origin may call the token, userinfo and revocation endpoints
//! only if that origin is the origin of a registered SPA redirect URI of the
//! tenant (the discovery document and the key set are public to every origin).
//!
//! The set of origins is read from the applications and reused for a few seconds
//! on each node, so a newly registered SPA works everywhere within that time.

use std::collections::BTreeSet;
use std::sync::Arc;

use tessera_core::{TenantId, Timestamp};
use tessera_directory::model::ApplicationData;
use tessera_store::{Cursor, Kind, ListQuery};

use crate::Oidc;
use crate::codec;
use crate::error::ServiceResult;

/// How long a node reuses the set of SPA origins.
pub const CORS_ORIGINS_SECONDS: i64 = 10;
const PAGE: u32 = 500;

/// A tenant's SPA origins and when they were read.
type ReadOrigins = (Timestamp, Arc<BTreeSet<String>>);

/// Each tenant's SPA origins, with when they were read; one reader at a time
/// refreshes them (the others keep answering from the last set).
#[derive(Default)]
pub(crate) struct CorsOrigins {
    read: std::sync::RwLock<std::collections::HashMap<TenantId, ReadOrigins>>,
    refreshing: tokio::sync::Mutex<()>,
}

/// The origin (RFC 6454) of a URL as browsers send it in `Origin`: scheme, host
/// and a port only when it is not the scheme's default.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

impl Oidc {
    /// Whether a browser page at `origin` may call the OAuth endpoints.
    pub async fn cors_origin_allowed(&self, tenant: TenantId, origin: &str) -> ServiceResult<bool> {
        if origin.len() > 2048 || origin == "null" {
            return Ok(false);
        }
        Ok(self.spa_origins(tenant).await?.contains(origin))
    }

    async fn spa_origins(&self, tenant: TenantId) -> ServiceResult<Arc<BTreeSet<String>>> {
        let now = self.now();
        let cached = self
            .cors
            .read
            .read()
            .ok()
            .and_then(|cache| cache.get(&tenant).cloned());
        if let Some((read_at, origins)) = &cached
            && now < read_at.plus_seconds(CORS_ORIGINS_SECONDS)
        {
            return Ok(origins.clone());
        }
        // One refresh at a time: while it runs, others answer from the last set
        // (or wait for the first one).
        let _refreshing = match (&cached, self.cors.refreshing.try_lock()) {
            (_, Ok(guard)) => guard,
            (Some((_, origins)), Err(_)) => return Ok(origins.clone()),
            (None, Err(_)) => self.cors.refreshing.lock().await,
        };
        if let Ok(cache) = self.cors.read.read()
            && let Some((read_at, origins)) = cache.get(&tenant)
            && now < read_at.plus_seconds(CORS_ORIGINS_SECONDS)
        {
            return Ok(origins.clone());
        }
        let mut origins = BTreeSet::new();
        let mut reader = self.reader().await?;
        let mut after: Option<Cursor> = None;
        loop {
            let page = reader
                .list(
                    tenant,
                    Kind::Application,
                    &ListQuery {
                        after: after.clone(),
                        limit: PAGE,
                        prefix: None,
                        key2: None,
                    },
                )
                .await?;
            for record in &page {
                let Ok(data) = codec::data::<ApplicationData>(record) else {
                    continue;
                };
                origins.extend(
                    data.spec
                        .spa
                        .redirect_uris
                        .iter()
                        .filter_map(|u| origin_of(u)),
                );
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => {
                    after = Some(Cursor {
                        sort_key: last.sort_key.clone(),
                        id: last.id,
                    });
                }
                _ => break,
            }
        }
        let origins = Arc::new(origins);
        if let Ok(mut cache) = self.cors.read.write() {
            cache.insert(tenant, (now, origins.clone()));
        }
        Ok(origins)
    }
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_are_what_browsers_send() {
        assert_eq!(
            origin_of("https://app.contoso.com/cb?x=1").unwrap(),
            "https://app.contoso.com"
        );
        assert_eq!(
            origin_of("https://App.Contoso.com:443/cb").unwrap(),
            "https://app.contoso.com"
        );
        assert_eq!(
            origin_of("http://localhost:9/spa").unwrap(),
            "http://localhost:9"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(origin_of("com.contoso.app:/callback"), None);
        assert_eq!(origin_of("not a url"), None);
    }
}

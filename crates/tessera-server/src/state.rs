use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tessera_service::App;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<App>,
    pub metrics: Option<PrometheusHandle>,
    /// Where client certificates may come from in a header.
    pub certificate_proxy: Option<Arc<crate::config::ProxyCertificateConfig>>,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
}

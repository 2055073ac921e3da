//! The composition root: the one place that names the concrete adapters (the SQL
//! store, the outbound HTTP client, the MaxMind country reader, the audit checkpoint
//! destinations) and hands them to the server as ports. The `tessera` binary
//! (`main.rs`) is the command line around it.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod adapters;

use std::sync::Arc;

use tessera_server::{Config, Ports};

/// Runs `tessera serve` with the real adapters until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    tessera_server::serve(config, |config| async move {
        let store = adapters::store::open(&config).await?;
        let countries: Option<Arc<dyn tessera_service::conditional_access::CountryLookup>> =
            match &config.geoip_database {
                Some(path) => {
                    let countries = adapters::geoip::MmdbCountries::open(path)
                        .map_err(|e| anyhow::anyhow!(e))?;
                    tracing::info!(path = %path.display(), "country database loaded");
                    Some(Arc::new(countries))
                }
                None => None,
            };
        if config.geoip_asn_database.is_some() && config.geoip_database.is_none() {
            anyhow::bail!("geoip_asn_database needs geoip_database (a City database) beside it");
        }
        let places: Option<Arc<dyn tessera_service::risk::GeoLookup>> = match &config.geoip_database
        {
            Some(path) => Some(Arc::new(
                adapters::geoip::MmdbPlaces::open(path, config.geoip_asn_database.as_deref())
                    .map_err(|e| anyhow::anyhow!(e))?,
            )),
            None => None,
        };
        let ip_lists: Option<Arc<dyn tessera_service::risk::IpLists>> =
            if config.risk_anonymous_ip_list.is_some() || config.risk_malicious_ip_list.is_some() {
                let lists = Arc::new(
                    adapters::ip_lists::FileLists::open(
                        config.risk_anonymous_ip_list.as_deref(),
                        config.risk_malicious_ip_list.as_deref(),
                    )
                    .map_err(|e| anyhow::anyhow!(e))?,
                );
                adapters::ip_lists::FileLists::watch(&lists);
                tracing::info!("Identity Protection IP lists loaded");
                Some(lists)
            } else {
                None
            };
        let jobs = adapters::checkpoints::job(&config, store.clone())?
            .into_iter()
            .collect();
        Ok(Ports {
            store,
            revocation: Arc::new(adapters::outbound::HttpFetcher::new()?),
            outbound: Arc::new(adapters::outbound::HttpFetcher::without_redirects()?),
            countries,
            jobs,
            notifier: Arc::new(adapters::notify::Delivery::new(config.smtp.as_ref())?),
            scim_target: Some(Arc::new(adapters::scim_target::ScimClient::new(
                config.provisioning_private_targets,
            )?)),
            ip_lists,
            places,
            siem: Some(Arc::new(adapters::siem::SiemDelivery::new(
                config.siem_private_receivers,
            ))),
            signals: Some((
                Arc::new(adapters::scim_target::ScimClient::new(
                    config.signals_private_endpoints,
                )?),
                config.signals_private_endpoints,
            )),
            hr_drop: Some(Arc::new(adapters::hr_drop::DropFolder::new(
                config
                    .hr_drop_dir
                    .clone()
                    .unwrap_or_else(|| config.data_dir.join("hr-drop")),
            ))),
        })
    })
    .await
}

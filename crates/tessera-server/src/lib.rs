//! The HTTP server: the management API, the OAuth and OpenID Connect endpoints, the
//! pages, health, readiness and metrics.
//!
//! Handlers are thin: they extract and authenticate, call one use case on a context
//! of the application (`state.app`: directory, access, sign-in, OpenID Connect) and
//! turn the result into the wire's form (errors once per protocol: RFC 9457 problems
//! in `error.rs`, OAuth errors and challenges in `wire/oauth.rs`, pages in `pages`).
//! It names no concrete adapter: `serve` takes them as [`Ports`].
//! The server holds no state that only one node knows; every node on the same
//! PostgreSQL database answers the same.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod connections;
pub mod console;
pub mod error;
pub mod extract;
mod middleware;
pub mod openapi;
pub mod pages;
pub mod routes;
pub mod state;
pub mod tls;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tessera_core::SystemClock;
use tessera_service::App;
use tessera_service::authn::RevocationFetcher;
use tessera_service::conditional_access::CountryLookup;
use tessera_service::jobs::{Job, Jobs, Schedule, Scope};
use tessera_service::oauth::OutboundHttp;
use tessera_store::Store;

pub use config::{Config, Overrides};
pub use state::AppState;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How the router treats requests beyond what the state holds.
#[derive(Debug, Clone, Copy)]
pub struct RouterOptions {
    pub input: middleware::InputLimits,
    /// Clients reach this server over HTTPS even where the connection here is plain
    /// (a TLS-terminating proxy in front): HSTS is sent on every response. Otherwise
    /// it is sent only on connections that are TLS here.
    pub https_public_url: bool,
}

impl Default for RouterOptions {
    fn default() -> RouterOptions {
        RouterOptions {
            input: middleware::InputLimits {
                body_timeout: Duration::from_secs(30),
                max_body_bytes: MAX_BODY_BYTES,
            },
            https_public_url: false,
        }
    }
}

/// The complete application router, ready to serve (or to drive with `oneshot`).
pub fn router(state: AppState) -> Router {
    router_with(state, RouterOptions::default())
}

/// [`router`] with explicit options.
pub fn router_with(state: AppState, options: RouterOptions) -> Router {
    let (api, document) = openapi::api();
    let document = Arc::new(
        document
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".to_string()),
    );
    Router::new()
        .merge(api)
        .merge(pages::router())
        .merge(console::router())
        .merge(routes::scim::router())
        .merge(routes::ssf::router())
        .route(
            "/api/v1/openapi.json",
            get(move || async move { openapi_response(document) }),
        )
        .route("/.well-known/jwks.json", get(routes::wellknown::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(routes::wellknown::metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(routes::wellknown::metadata),
        )
        .route("/oauth2/token", axum::routing::post(routes::oauth::token))
        .route(
            "/oauth2/introspect",
            axum::routing::post(routes::oauth::introspect),
        )
        .route("/oauth2/revoke", axum::routing::post(routes::oauth::revoke))
        .route("/oauth2/par", axum::routing::post(routes::oauth::par))
        .route(
            "/oauth2/register",
            axum::routing::post(routes::oauth::register),
        )
        .route(
            "/oauth2/devicecode",
            axum::routing::post(routes::oauth::device_authorization),
        )
        .route(
            "/oauth2/userinfo",
            get(routes::oauth::userinfo).post(routes::oauth::userinfo),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // CORS inside the input guard: its directory lookups and its answers count
        // as requests in flight (see `connections`).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::cors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            options.input,
            middleware::guard_input,
        ))
        .layer(axum::middleware::from_fn(middleware::observe))
        .layer(axum::middleware::from_fn_with_state(
            options.https_public_url,
            middleware::security_headers,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            middleware::on_panic,
        ))
        .layer(axum::middleware::from_fn(middleware::correlate))
        .with_state(state)
}

fn openapi_response(document: Arc<String>) -> Response {
    let mut response = (StatusCode::OK, document.as_ref().clone()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.app.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer",
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => {
            // The database's size as of this scrape (the sign-in log is most of it).
            match state.app.store().database_size().await {
                Ok(bytes) => ::metrics::gauge!("tessera_database_size_bytes").set(bytes as f64),
                Err(error) => tracing::warn!(%error, "cannot read the database size"),
            }
            siem_lag(&state).await;
            let mut response = (StatusCode::OK, handle.render()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

/// The SIEM export's lag as of this scrape (each node reads it at most every
/// 15 seconds): per sink and stream, the records waiting and how long the
/// oldest has waited.
async fn siem_lag(state: &AppState) {
    let tenants = match state.app.store().tenants().await {
        Ok(tenants) => tenants,
        Err(error) => {
            tracing::warn!(%error, "cannot list the tenants for the SIEM lag");
            return;
        }
    };
    for tenant in tenants {
        let lags = match state.app.siem.lag(tenant.id).await {
            Ok(lags) => lags,
            Err(error) => {
                tracing::warn!(%error, "cannot read the SIEM lag");
                continue;
            }
        };
        for lag in lags {
            // By the sink's id: no tenant or name on an endpoint anyone may read.
            let labels = [
                ("sink", lag.sink.to_string()),
                ("stream", lag.stream.name().to_string()),
            ];
            ::metrics::gauge!("tessera_siem_lag_records", &labels).set(lag.records as f64);
            ::metrics::gauge!("tessera_siem_lag_seconds", &labels).set(lag.seconds as f64);
        }
    }
}

async fn not_found() -> error::ApiError {
    error::ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /api/v1/openapi.json",
    )
}

/// A known path with another method: a problem (a SCIM error under `/scim`),
/// with the `Allow` header axum adds.
async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    const WHY: &str =
        "this endpoint does not answer this method; the Allow header lists those it does";
    if uri.path().starts_with("/scim/") {
        return wire::scim::refusal(StatusCode::METHOD_NOT_ALLOWED, WHY);
    }
    error::ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", WHY).into_response()
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if config.log.format == "text" {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    };
    if result.is_err() {
        // Already initialised (tests start several servers in one process).
    }
}

fn install_metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ])
        .ok()?
        // Gauges are set at each scrape, just before it renders: one not set
        // for a while belongs to something gone (a removed SIEM sink).
        .idle_timeout(
            metrics_util::MetricKindMask::GAUGE,
            Some(Duration::from_secs(GAUGE_IDLE_SECONDS)),
        )
        .install_recorder()
        .ok()
}

/// A gauge not set for this long leaves `/metrics`.
const GAUGE_IDLE_SECONDS: u64 = 60;

/// The metrics recorder's histogram upkeep, on every node.
fn metrics_upkeep(handle: metrics_exporter_prometheus::PrometheusHandle) -> Arc<dyn Job> {
    tessera_service::jobs::job(
        "metrics-upkeep",
        Scope::Node,
        Schedule::Every(Duration::from_secs(5)),
        move |_| {
            handle.run_upkeep();
            async { Ok(()) }
        },
    )
}

/// Registers for SIGINT and SIGTERM now (so a signal that arrives at any point after
/// start-up means a graceful stop) and returns a future that completes on either.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down: finishing requests in flight");
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Hyper's own deadlines: request headers (and an idle keep-alive connection) on
/// HTTP/1, keep-alive pings on HTTP/2.
fn http_deadlines(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
}

/// What the composition root (the `tessera` binary) plugs into the server: the
/// adapters only it names.
pub struct Ports {
    pub store: Arc<dyn Store>,
    /// Fetches CRLs and OCSP answers.
    pub revocation: Arc<dyn RevocationFetcher>,
    /// Fetches external issuers' documents and key sets, sends logout tokens.
    pub outbound: Arc<dyn OutboundHttp>,
    /// Countries of addresses, for named locations.
    pub countries: Option<Arc<dyn CountryLookup>>,
    /// Background work beyond the application's own (the audit checkpoint export).
    pub jobs: Vec<Arc<dyn Job>>,
    /// Delivers notifications (webhooks, mail).
    pub notifier: Arc<dyn tessera_service::kernel::outbox::Notifier>,
    /// Where HR systems drop their exports for scheduled imports.
    pub hr_drop: Option<Arc<dyn tessera_service::provisioning::hr::HrDropFolder>>,
    /// Outbound provisioning's HTTP client (applications' SCIM services).
    pub scim_target: Option<Arc<dyn tessera_service::provisioning::outbound::ScimTarget>>,
    /// Identity Protection's address lists (anonymizers, malicious).
    pub ip_lists: Option<Arc<dyn tessera_service::risk::IpLists>>,
    /// Places of addresses, for Identity Protection.
    pub places: Option<Arc<dyn tessera_service::risk::GeoLookup>>,
    /// Sends the SIEM export (syslog over TLS, HTTPS).
    pub siem: Option<Arc<dyn tessera_service::siem::SiemTransport>>,
    /// Shared Signals' HTTP client (push delivery, transmitters), and whether
    /// it may reach `http` endpoints at loopback and private addresses.
    pub signals: Option<(Arc<dyn tessera_service::signals::SignalsTransport>, bool)>,
}

/// Runs `tessera serve` until SIGINT or SIGTERM. `ports` is called once the
/// configuration is checked and the listener bound (so `config.listen` has the real
/// port), with that configuration.
pub async fn serve<F, Fut>(mut config: Config, ports: F) -> anyhow::Result<()>
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Ports>>,
{
    config.check_for_serve().map_err(|e| anyhow::anyhow!(e))?;
    init_logging(&config);
    // Bind first, so the public URL (the passkey origin) has the real port even when
    // the configuration asks for port 0.
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    config.listen = listener.local_addr()?;
    let shutdown = shutdown_signal()?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ports = ports(config.clone()).await?;
    let store = ports.store;
    tracing::info!(backend = store.backend(), "database ready");
    let auth = tessera_service::authn::AuthSettings {
        public_url: config.public_url(),
        issuer_name: config.bootstrap.tenant_name.clone(),
        sealing_key: config.sealing_key()?,
        breached_passwords: config.breached_passwords_dir.clone(),
        max_concurrent_hashes: std::thread::available_parallelism()
            .map(|n| n.get() * 2)
            .unwrap_or(4),
        revocation_fetcher: Some(ports.revocation),
    };
    let app = Arc::new(App::with_auth(store.clone(), Arc::new(SystemClock), auth));
    app.saml.set_outbound_http(ports.outbound.clone());
    app.oidc.set_outbound_http(ports.outbound);
    app.set_notifier(ports.notifier);
    if let Some(folder) = ports.hr_drop {
        app.provisioning.set_hr_drop_folder(folder);
    }
    if let Some(target) = ports.scim_target {
        app.provisioning.set_scim_target(target);
    }
    if let Some(countries) = ports.countries {
        app.access.set_country_lookup(countries);
    }
    if let Some(places) = ports.places {
        app.risk.set_geo(places);
    }
    if let Some(lists) = ports.ip_lists {
        app.risk.set_ip_lists(lists);
    }
    if let Some((transport, private)) = ports.signals {
        app.signals.set_transport(transport, private);
    }
    if let Some(transport) = ports.siem {
        app.siem.set_transport(transport);
    }
    if let Some(bootstrap) = app
        .directory
        .bootstrap_if_empty(&config.bootstrap.tenant_name, &config.bootstrap.domain)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap failed: {e}"))?
    {
        tracing::info!(tenant = %bootstrap.tenant, user = %bootstrap.user_principal_name, "bootstrapped a new tenant");
        // The credential goes to standard output once, never to the log.
        println!("Tessera bootstrapped tenant {}.", bootstrap.tenant);
        println!(
            "Break-glass Global Administrator: {}",
            bootstrap.user_principal_name
        );
        println!(
            "Bootstrap token, valid until {} and shown only now:",
            bootstrap.expires
        );
        println!("    {}", bootstrap.token.expose());
        println!(
            "Sign in with it (e.g. `tessera login --token ...`) and create your own administrators and tokens."
        );
        // The first console sign-in: a one-hour, one-use pass with which the
        // administrator registers a passkey. Shown once, like the token.
        match app
            .sign_in
            .bootstrap_pass(
                bootstrap.tenant,
                bootstrap.user_id,
                &bootstrap.user_principal_name,
            )
            .await
        {
            Ok(pass) => {
                println!(
                    "Temporary Access Pass for the console, valid until {} and shown only now:",
                    pass.end_date_time
                );
                println!("    {}", pass.temporary_access_pass);
                println!(
                    "Open {}/admin, sign in as {} with it, and register a passkey.",
                    app.directory.public_url(),
                    bootstrap.user_principal_name
                );
            }
            Err(error) => {
                tracing::warn!(%error, "no Temporary Access Pass for the first console sign-in")
            }
        }
    }
    let metrics = install_metrics();
    // Background work starts once the tenant exists (its first signing keys and
    // checkpoint are made at once).
    let mut jobs = Jobs::new(store.clone(), Arc::new(SystemClock));
    jobs.extend(tessera_service::jobs::application_jobs(&app));
    if let Some(handle) = metrics.clone() {
        jobs.add(metrics_upkeep(handle));
    }
    jobs.extend(ports.jobs);
    let jobs = if config.run_jobs {
        tracing::info!(jobs = ?jobs.names(), "background jobs");
        Some(jobs.start())
    } else {
        tracing::warn!("background jobs are off on this node (run_jobs = false)");
        None
    };
    let state = AppState {
        app,
        metrics,
        certificate_proxy: config.client_certificate_proxy.clone().map(Arc::new),
        trusted_proxies: Arc::new(config.trusted_proxies.clone()),
    };
    let options = RouterOptions {
        input: middleware::InputLimits {
            body_timeout: Duration::from_secs(config.body_read_timeout_seconds.max(1)),
            max_body_bytes: MAX_BODY_BYTES,
        },
        https_public_url: config.public_url().starts_with("https://"),
    };
    let app = router_with(state, options).into_make_service_with_connect_info::<SocketAddr>();
    // The issuer is what clients must be pointed at: tokens name it, and a client
    // that reached the server by another name (127.0.0.1 for localhost) refuses them.
    println!(
        "Issuer and public URL (point clients and browsers here): {}",
        config.public_url()
    );
    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    let header_timeout = Duration::from_secs(config.header_read_timeout_seconds.max(1));
    let limit = connections::ConnectionLimit::new(connections::connection_budget(
        config.max_connections,
        config.database_max_connections,
    ));
    // One server loop for plain HTTP and TLS, so both have the same deadlines, the
    // same connection bound, and a shutdown that ends after the grace period even
    // when a client holds a connection open.
    let handle = axum_server::Handle::new();
    let handle_for_signal = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        handle_for_signal.graceful_shutdown(Some(grace));
    });
    let address = listener.local_addr()?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%address, tls = config.tls.is_some(), "listening");
    println!("Listening on {scheme}://{address}");
    match &config.tls {
        None => {
            let acceptor = connections::LimitedAcceptor::new(
                axum_server::accept::DefaultAcceptor::new(),
                limit,
                header_timeout,
            );
            let mut server = axum_server::from_tcp(listener)?.acceptor(acceptor);
            http_deadlines(server.http_builder(), header_timeout);
            server.handle(handle).serve(app).await?;
        }
        Some(tls) => {
            let rustls_config = tls::server_config(&tls.cert, &tls.key, tls.client_certificates)?;
            let acceptor = connections::LimitedAcceptor::new(
                tls::PeerCertificateAcceptor::new(rustls_config),
                limit,
                header_timeout,
            );
            let mut server = axum_server::from_tcp(listener)?.acceptor(acceptor);
            http_deadlines(server.http_builder(), header_timeout);
            server.handle(handle).serve(app).await?;
        }
    }
    if let Some(jobs) = jobs {
        jobs.release_leases().await;
    }
    tracing::info!("shut down");
    Ok(())
}

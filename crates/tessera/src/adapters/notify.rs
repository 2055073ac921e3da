//! Delivery of notifications (the application's `Notifier` port): webhooks over
//! the outbound HTTP client (no redirects, a 10-second limit), mail over SMTP
//! with lettre (STARTTLS by default, implicit TLS, or plain text to a loopback
//! relay only).

use std::time::Duration;

use anyhow::Context as _;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tessera_server::config::SmtpConfig;
use tessera_service::kernel::outbox::Notifier;

pub struct Delivery {
    mail: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

/// A client for one webhook delivery, pinned to the addresses its host resolved
/// to now, each checked: public ones only (a loopback one only when the URL names
/// the loopback host), so an administrator's URL cannot reach an internal
/// service, not even through a name that resolves to one.
async fn pinned_client(url: &str) -> Result<reqwest::Client, String> {
    const REFUSED: &str = "the webhook's address is not a public one";
    let parsed = reqwest::Url::parse(url).map_err(|_| "not a URL".to_string())?;
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| "no port".to_string())?;
    let (loopback_url, addresses, name) = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => (
            ip.is_loopback(),
            vec![std::net::SocketAddr::new(ip.into(), port)],
            None,
        ),
        Some(url::Host::Ipv6(ip)) => (
            ip.is_loopback(),
            vec![std::net::SocketAddr::new(ip.into(), port)],
            None,
        ),
        Some(url::Host::Domain(name)) => {
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| "the webhook's host name does not resolve".to_string())?
                .collect();
            (
                name.eq_ignore_ascii_case("localhost"),
                found,
                Some(name.to_string()),
            )
        }
        None => return Err("no host".to_string()),
    };
    if addresses.is_empty()
        || !addresses
            .iter()
            .all(|a| super::outbound::address_allowed(a.ip(), loopback_url))
    {
        return Err(REFUSED.to_string());
    }
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(name) = name {
        builder = builder.resolve_to_addrs(&name, &addresses);
    }
    builder
        .build()
        .map_err(|_| "cannot build the HTTP client".to_string())
}

impl Delivery {
    pub fn new(smtp: Option<&SmtpConfig>) -> anyhow::Result<Delivery> {
        let mail = match smtp {
            Some(config) => Some(transport(config)?),
            None => None,
        };
        Ok(Delivery { mail })
    }
}

fn transport(config: &SmtpConfig) -> anyhow::Result<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)> {
    let from: Mailbox = config
        .from
        .parse()
        .with_context(|| format!("smtp.from {:?} is not a mail address", config.from))?;
    let tls = || TlsParameters::new(config.host.clone()).context("cannot set up TLS for SMTP");
    let security = match config.security.as_str() {
        "" | "starttls" => Tls::Required(tls()?),
        "tls" => Tls::Wrapper(tls()?),
        "none" => {
            let loopback = config.host == "localhost"
                || config
                    .host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            anyhow::ensure!(
                loopback,
                "smtp.security = \"none\" is only for a relay on this machine (localhost)"
            );
            Tls::None
        }
        other => anyhow::bail!("smtp.security {other:?} is not starttls, tls or none"),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
        .port(config.port)
        .tls(security)
        .timeout(Some(Duration::from_secs(10)));
    if let Some(username) = &config.username {
        let password = match &config.password_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read smtp.password_file {}", path.display()))?
                .trim_end()
                .to_string(),
            None => String::new(),
        };
        builder = builder.credentials(Credentials::new(username.clone(), password));
    }
    Ok((builder.build(), from))
}

#[async_trait::async_trait]
impl Notifier for Delivery {
    async fn post_webhook(
        &self,
        url: &str,
        body: &[u8],
        headers: &[(String, String)],
    ) -> Result<u16, String> {
        let client = pinned_client(url).await?;
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        // What went wrong is not told (the audit trail would map a network).
        let response = request
            .send()
            .await
            .map_err(|_| "the webhook could not be reached".to_string())?;
        Ok(response.status().as_u16())
    }

    async fn send_mail(&self, to: &[String], subject: &str, text: &str) -> Result<(), String> {
        let Some((transport, from)) = &self.mail else {
            return Err("no SMTP relay is configured".to_string());
        };
        let mut message = Message::builder()
            .from(from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for address in to {
            let mailbox: Mailbox = address
                .parse()
                .map_err(|_| format!("{address:?} is not a mail address"))?;
            message = message.to(mailbox);
        }
        let message = message.body(text.to_string()).map_err(|e| e.to_string())?;
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn mail_configured(&self) -> bool {
        self.mail.is_some()
    }
}

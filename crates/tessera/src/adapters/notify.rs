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
    http: reqwest::Client,
    mail: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

impl Delivery {
    pub fn new(smtp: Option<&SmtpConfig>) -> anyhow::Result<Delivery> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the HTTP client")?;
        let mail = match smtp {
            Some(config) => Some(transport(config)?),
            None => None,
        };
        Ok(Delivery { http, mail })
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
        .timeout(Some(Duration::from_secs(20)));
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
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
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

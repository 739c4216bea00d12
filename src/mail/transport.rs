//! Sending one email: over SMTP (lettre, pooled) or, without an SMTP URL, as an `.eml` file
//! under the mail directory. Every send has an outer timeout: lettre's own covers only the
//! connection (lettre#1027).

use crate::config::Config;
use crate::config::DkimSettings;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, header};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Emails the outbox worker has on the way at once; the SMTP pool keeps this many
/// connections open between sends.
pub const IN_FLIGHT: usize = 32;

/// Sends email over SMTP (DKIM-signed when configured), or writes it to files in a folder.
#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        dkim: Option<Arc<DkimConfig>>,
    },
    Files {
        dir: PathBuf,
        from: Mailbox,
        dkim: Option<Arc<DkimConfig>>,
    },
}

/// The headers each signature covers. A listed header a message lacks (the
/// List-Unsubscribe pair on a receipt) is signed as absent, so it cannot be added later.
/// Not Content-Type: lettre writes a multipart message's Content-Type with the body, after
/// signing the headers, so a verifier would hash a header lettre did not.
const DKIM_HEADERS: [&str; 8] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// Reads the DKIM key: an RSA key in PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), or an
/// Ed25519 key as the base64 of its 32 bytes.
pub fn dkim_config(settings: &DkimSettings) -> anyhow::Result<DkimConfig> {
    use anyhow::Context;
    let text = std::fs::read_to_string(&settings.private_key_file).with_context(|| {
        format!(
            "cannot read the DKIM key GROUPBUY_DKIM_PRIVATE_KEY_FILE {}",
            settings.private_key_file
        )
    })?;
    let algorithm = if text.contains("BEGIN RSA PRIVATE KEY") {
        DkimSigningAlgorithm::Rsa
    } else {
        DkimSigningAlgorithm::Ed25519
    };
    let key = DkimSigningKey::new(text.trim(), algorithm).map_err(|e| {
        anyhow::anyhow!(
            "GROUPBUY_DKIM_PRIVATE_KEY_FILE {} is not an RSA key in PKCS#1 PEM nor a base64 Ed25519 key: {e}",
            settings.private_key_file
        )
    })?;
    Ok(DkimConfig::new(
        settings.selector.clone(),
        settings.domain.clone(),
        key,
        DKIM_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}

/// Why an email was not sent, and so whether to try again.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The server refused for good (5xx) or the message cannot be built: do not retry.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The server was unreachable, timed out or answered 4xx: try again later.
    #[error("temporary: {0}")]
    Temporary(String),
}

/// One email to send.
pub struct Outgoing<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
    /// Stable per outbox row, so a retried send is recognisable as the same message.
    pub message_id: String,
    /// The one-click unsubscribe URL (https in production): adds `List-Unsubscribe` and
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
    pub unsubscribe: Option<String>,
}

const LIST_UNSUBSCRIBE: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe");
const LIST_UNSUBSCRIBE_POST: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");

impl Mailer {
    /// SMTP when `smtp_url` is set, files otherwise; the sender is `mail_from`.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        use anyhow::Context;
        let from: Mailbox = config
            .mail_from
            .parse()
            .context("GROUPBUY_MAIL_FROM is not an email address")?;
        let dkim = match &config.dkim {
            Some(settings) => Some(Arc::new(dkim_config(settings)?)),
            None => None,
        };
        Ok(match &config.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .context("GROUPBUY_SMTP_URL is not a valid SMTP URL")?
                    .timeout(Some(Duration::from_secs(20)))
                    .pool_config(
                        lettre::transport::smtp::PoolConfig::new().max_size(IN_FLIGHT as u32),
                    )
                    .build();
                Mailer::Smtp {
                    transport,
                    from,
                    dkim,
                }
            }
            None => Mailer::Files {
                dir: PathBuf::from(&config.mail_dir),
                from,
                dkim,
            },
        })
    }

    /// The domain used in Message-IDs.
    pub fn domain(&self) -> String {
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Files { from, .. } => from,
        };
        from.email.domain().to_string()
    }

    /// Whether every email is DKIM-signed.
    pub fn signs(&self) -> bool {
        matches!(
            self,
            Mailer::Smtp { dkim: Some(_), .. } | Mailer::Files { dkim: Some(_), .. }
        )
    }

    fn build(&self, m: &Outgoing<'_>) -> Result<Message, MailError> {
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Files { from, .. } => from.clone(),
        };
        let to: Mailbox =
            m.to.parse()
                .map_err(|e| MailError::Permanent(format!("bad recipient {:?}: {e}", m.to)))?;
        let mut builder = Message::builder()
            .from(from)
            .to(to)
            .subject(m.subject)
            .message_id(Some(m.message_id.clone()));
        if let Some(url) = &m.unsubscribe {
            // Our own URL: ASCII, no spaces, no angle brackets (a token of hex digits).
            if url.contains(|c: char| !c.is_ascii_graphic() || c == '<' || c == '>') {
                return Err(MailError::Permanent("bad unsubscribe URL".into()));
            }
            builder = builder
                .raw_header(HeaderValue::new(LIST_UNSUBSCRIBE, format!("<{url}>")))
                .raw_header(HeaderValue::new(
                    LIST_UNSUBSCRIBE_POST,
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        let built = match m.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                m.text.to_string(),
                html.to_string(),
            )),
            None => builder
                .header(header::ContentType::TEXT_PLAIN)
                .body(m.text.to_string()),
        };
        let mut message =
            built.map_err(|e| MailError::Permanent(format!("cannot build the message: {e}")))?;
        if let Mailer::Smtp { dkim: Some(d), .. } | Mailer::Files { dkim: Some(d), .. } = self {
            message.sign(d);
        }
        Ok(message)
    }

    /// Sends one email; a timed-out or 4xx SMTP send is a temporary failure.
    pub async fn send(&self, m: &Outgoing<'_>) -> Result<(), MailError> {
        let message = self.build(m)?;
        match self {
            Mailer::Smtp { transport, .. } => {
                match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
                    Err(_) => Err(MailError::Temporary("SMTP send timed out".into())),
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) if e.is_permanent() => Err(MailError::Permanent(e.to_string())),
                    Ok(Err(e)) => Err(MailError::Temporary(e.to_string())),
                }
            }
            Mailer::Files { dir, .. } => {
                let name: String = m
                    .message_id
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
                    .collect();
                let path = dir.join(format!("{name}.eml"));
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    MailError::Temporary(format!("creating {}: {e}", dir.display()))
                })?;
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|e| MailError::Temporary(format!("writing {}: {e}", path.display())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_smtp_each_mail_is_an_eml_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mailer = Mailer::Files {
            dir: dir.path().join("mail"),
            from: "shop <shop@example.com>".parse().expect("mailbox"),
            dkim: None,
        };
        let out = Outgoing {
            to: "carol@example.com",
            subject: "Hello",
            text: "plain words",
            html: Some("<p>html words</p>"),
            message_id: "<gb.1.invite.1@example.com>".into(),
            unsubscribe: Some("https://shop.example.com/unsubscribe/abc".into()),
        };
        mailer.send(&out).await.expect("written");
        let path = dir.path().join("mail").join("gb.1.invite.1example.com.eml");
        let raw = std::fs::read_to_string(&path).expect("the .eml file exists");
        assert!(
            raw.contains("Message-ID: <gb.1.invite.1@example.com>"),
            "{raw}"
        );
        assert!(raw.contains("To: carol@example.com"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("List-Unsubscribe: <https://shop.example.com/unsubscribe/abc>\r\n"));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert_eq!(mailer.domain(), "example.com");
        let bad = Outgoing {
            to: "not an address",
            ..out
        };
        assert!(matches!(
            mailer.send(&bad).await,
            Err(MailError::Permanent(_))
        ));
    }
}

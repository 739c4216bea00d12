//! Where the service listens and what it talks to: addresses, URLs, mail, DKIM, secrets.

use super::file::FileConfig;
use super::sources::{Sources, invalid};
use super::{ConfigError, DEFAULT_ADMIN_ADDR, DkimSettings, Secret, url_like};
use std::net::{IpAddr, SocketAddr};

/// Where the pages and the operators' endpoints listen, and how they are reached.
pub(super) struct Web {
    pub(super) http_addr: SocketAddr,
    pub(super) admin_addr: SocketAddr,
    pub(super) telegram_api_url: Option<url_like::Url>,
    pub(super) public_url: String,
}

/// Where data and mail go.
pub(super) struct MailSettings {
    pub(super) database_url: String,
    pub(super) smtp_url: Option<String>,
    pub(super) mail_from: String,
    pub(super) fulfilment_email: String,
}

impl Sources<'_> {
    /// The listening addresses, the Bot API's URL and the public URL (the pages' by default).
    pub(super) fn web(&self, file: &mut FileConfig) -> Result<Web, ConfigError> {
        let (http_addr, admin_addr) = self.addresses(file)?;
        let telegram_api_url = match self.pick("telegram_api_url", file.telegram_api_url.take()) {
            Some(u) => Some(url_like::Url::parse(&u).ok_or_else(|| {
                invalid("telegram_api_url", format!("{u:?} is not an http(s) URL"))
            })?),
            None => None,
        };
        let public_url_raw = self
            .pick("public_url", file.public_url.take())
            .unwrap_or_else(|| format!("http://{http_addr}"));
        let public_url = url_like::Url::parse(&public_url_raw)
            .ok_or_else(|| {
                invalid(
                    "public_url",
                    format!("{public_url_raw:?} is not an http(s) URL"),
                )
            })?
            .0;
        Ok(Web {
            http_addr,
            admin_addr,
            telegram_api_url,
            public_url,
        })
    }

    /// The public web side's address and the operators' (health, metrics).
    fn addresses(&self, file: &mut FileConfig) -> Result<(SocketAddr, SocketAddr), ConfigError> {
        let http_addr_raw = self
            .pick("http_addr", file.http_addr.take())
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let http_addr: SocketAddr = http_addr_raw.parse().map_err(|_| {
            invalid(
                "http_addr",
                format!("{http_addr_raw:?} is not an address like 127.0.0.1:8080"),
            )
        })?;
        let admin_addr_raw = self
            .pick("admin_addr", file.admin_addr.take())
            .unwrap_or_else(|| DEFAULT_ADMIN_ADDR.into());
        let admin_addr: SocketAddr = admin_addr_raw.parse().map_err(|_| {
            invalid(
                "admin_addr",
                format!("{admin_addr_raw:?} is not an address like {DEFAULT_ADMIN_ADDR}"),
            )
        })?;
        if admin_addr == http_addr && admin_addr.port() != 0 {
            return Err(invalid(
                "admin_addr",
                "it must differ from http_addr: metrics and health are kept off the public pages",
            ));
        }
        Ok((http_addr, admin_addr))
    }

    /// The database, the mail server and the addresses mail goes from and to.
    pub(super) fn mail(&self, file: &mut FileConfig) -> Result<MailSettings, ConfigError> {
        let smtp_url = self.pick("smtp_url", file.smtp_url.take());
        if let Some(u) = &smtp_url
            && !(u.starts_with("smtp://") || u.starts_with("smtps://"))
        {
            return Err(invalid(
                "smtp_url",
                "it must start with smtp:// or smtps://",
            ));
        }
        let database_url = self
            .pick("database_url", file.database_url.take())
            .unwrap_or_else(|| "sqlite://groupbuy.db".into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "it must start with sqlite:// or postgres://",
            ));
        }
        let mail_from = self.mailbox(
            "mail_from",
            file.mail_from.take(),
            "groupbuy <groupbuy@localhost>",
        )?;
        let fulfilment_email = self.mailbox(
            "fulfilment_email",
            file.fulfilment_email.take(),
            "fulfilment@localhost",
        )?;
        Ok(MailSettings {
            database_url,
            smtp_url,
            mail_from,
            fulfilment_email,
        })
    }

    /// An email address setting (`default` when unset).
    fn mailbox(
        &self,
        name: &'static str,
        file_value: Option<String>,
        default: &str,
    ) -> Result<String, ConfigError> {
        let address = self
            .pick(name, file_value)
            .unwrap_or_else(|| default.into());
        if address.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                name,
                format!("{address:?} is not an email address"),
            ));
        }
        Ok(address)
    }

    /// The webhook's secret, if set: checked against Telegram's rule.
    pub(super) fn webhook_secret(
        &self,
        file_value: Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        let secret = self.pick("webhook_secret", file_value).map(Secret::new);
        if let Some(s) = &secret {
            check_webhook_secret(s.expose())?;
        }
        Ok(secret)
    }

    /// The key of keyed hashes, if set: at least 32 characters.
    pub(super) fn server_secret(
        &self,
        file_value: Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        let secret = self.pick("server_secret", file_value).map(Secret::new);
        if secret.as_ref().is_some_and(|s| s.expose().len() < 32) {
            return Err(invalid(
                "server_secret",
                "it must be at least 32 characters (or unset: one is generated into data_dir)",
            ));
        }
        Ok(secret)
    }

    /// DKIM signing: all three settings or none.
    pub(super) fn dkim(&self, file: &mut FileConfig) -> Result<Option<DkimSettings>, ConfigError> {
        match (
            self.pick("dkim_selector", file.dkim_selector.take()),
            self.pick("dkim_domain", file.dkim_domain.take()),
            self.pick("dkim_private_key_file", file.dkim_private_key_file.take()),
        ) {
            (None, None, None) => Ok(None),
            (Some(selector), Some(domain), Some(private_key_file)) => checked_dkim(DkimSettings {
                selector,
                domain,
                private_key_file,
            })
            .map(Some),
            (selector, domain, _) => {
                let missing = if selector.is_none() {
                    "dkim_selector"
                } else if domain.is_none() {
                    "dkim_domain"
                } else {
                    "dkim_private_key_file"
                };
                Err(invalid(
                    missing,
                    "DKIM needs dkim_selector, dkim_domain and dkim_private_key_file together",
                ))
            }
        }
    }

    /// Reverse proxies whose forwarded-for headers are believed.
    pub(super) fn trusted_proxies(
        &self,
        file_value: Option<String>,
    ) -> Result<Vec<IpAddr>, ConfigError> {
        let mut trusted_proxies = Vec::new();
        for word in self
            .pick("trusted_proxies", file_value)
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|w| !w.is_empty())
        {
            trusted_proxies.push(word.parse().map_err(|_| {
                invalid(
                    "trusted_proxies",
                    format!("{word:?} is not an IP address (list them, comma-separated)"),
                )
            })?);
        }

        Ok(trusted_proxies)
    }
}

/// A complete DKIM setting whose selector and domain are DNS names.
fn checked_dkim(dkim: DkimSettings) -> Result<DkimSettings, ConfigError> {
    let label_ok = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    if !label_ok(&dkim.selector) {
        return Err(invalid(
            "dkim_selector",
            "it must be a DNS name such as mail2026",
        ));
    }
    if !label_ok(&dkim.domain) || !dkim.domain.contains('.') {
        return Err(invalid(
            "dkim_domain",
            "it must be a domain such as example.com",
        ));
    }
    Ok(dkim)
}

/// Telegram's own rule for a webhook secret is 1–256 of `A-Za-z0-9_-`; we also want it
/// long enough not to be guessed (16 characters of 64 symbols = 96 bits).
fn check_webhook_secret(s: &str) -> Result<(), ConfigError> {
    let allowed = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if (16..=256).contains(&s.len()) && allowed {
        Ok(())
    } else {
        Err(invalid(
            "webhook_secret",
            "it must be 16 to 256 characters of A-Z, a-z, 0-9, _ and -",
        ))
    }
}

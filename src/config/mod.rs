//! Configuration: a pure function of (TOML text, environment), environment winning.
//!
//! Every setting has one name in the TOML file (`database_url`) and one in the environment
//! (`GROUPBUY_DATABASE_URL`). A bad value stops start-up with one sentence naming the setting.

mod catalog;
mod endpoints;
mod file;
mod limits;
mod sources;
#[cfg(test)]
mod tests;

pub use catalog::{default_tiers, parse_products};
pub use file::{CatalogFile, FileProduct};

use crate::domain::Policy;
use crate::domain::catalog::{Product, ProductKind};
use crate::domain::money::{Currency, Money};
use crate::domain::region::RegionBonus;
use crate::domain::tiers::TierTable;
use catalog::Catalog;
use endpoints::{MailSettings, Web};
use file::FileConfig;
use limits::{Limits, Trade};
use sources::Sources;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the secret is the empty string (counts as unset).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// Where the DKIM key is and what it signs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSettings {
    pub selector: String,
    pub domain: String,
    pub private_key_file: String,
}

/// Every setting, checked: built once at start-up by [`Config::from_sources`].
#[derive(Debug, Clone)]
pub struct Config {
    pub telegram_token: Option<Secret>,
    pub telegram_api_url: Option<url_like::Url>,
    pub database_url: String,
    pub smtp_url: Option<Secret>,
    pub mail_dir: String,
    pub mail_from: String,
    pub fulfilment_email: String,
    pub public_url: String,
    pub http_addr: SocketAddr,
    /// Where `/healthz` and `/metrics` answer: apart from the pages, loopback by default.
    pub admin_addr: SocketAddr,
    pub payment_provider_token: Secret,
    pub webhook_secret: Option<Secret>,
    pub support_contact: String,
    pub currency: Currency,
    pub tiers: TierTable,
    /// The policy of a group whose organiser names none.
    pub policy: Policy,
    /// Whether organisers may name one (`all` or `partial` at `/newgroup`).
    pub policy_choice: bool,
    pub key_lifetime_secs: i64,
    pub max_head_count: u32,
    pub region_bonus: Option<RegionBonus>,
    /// A higher rate for buyers sharing a region within a window (¶0059).
    pub region_rate: Option<crate::domain::region::RegionRate>,
    pub shipping_fee: Money,
    pub sweep_interval_secs: u64,
    /// Bot messages a second this instance may send (Telegram allows about 30 per bot).
    pub telegram_rate_per_second: u32,
    /// Bulk notices may go above the free rate with `allow_paid_broadcast` (0.1 Star each).
    pub paid_broadcast: bool,
    /// The rate bulk notices may reach with paid broadcast (this instance's share of 1,000).
    pub paid_broadcast_rate_per_second: u32,
    /// Unknown or malformed keys a client may try per minute before being told to slow down.
    pub key_attempts_per_minute: u32,
    pub products: Vec<Product>,
    /// Where files the service makes for itself live (the generated server secret).
    pub data_dir: String,
    /// The key of keyed hashes (see `secrets`); `None` until [`crate::secrets::resolve`].
    pub server_secret: Option<Secret>,
    /// DKIM signing of every email: selector, domain and the private key file, all or none.
    pub dkim: Option<DkimSettings>,
    /// Reverse proxies whose `X-Forwarded-For` names the visitor (no one else's is read).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Invitation emails one organiser may have sent for one group.
    pub email_invites_per_group: u32,
    /// Invitation emails one organiser may have sent in any 24 hours.
    pub email_invites_per_day: u32,
}

/// A plain URL string checked for a scheme and host (we avoid another dependency for it).
pub mod url_like {
    /// An http(s) URL without a trailing slash.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Url(pub String);
    impl Url {
        /// The URL if `s` is `http(s)://` followed by a host, else `None`.
        pub fn parse(s: &str) -> Option<Self> {
            let s = s.trim().trim_end_matches('/');
            let rest = s
                .strip_prefix("https://")
                .or_else(|| s.strip_prefix("http://"))?;
            (!rest.is_empty() && !rest.contains(char::is_whitespace)).then(|| Self(s.to_string()))
        }
        /// Whether the scheme is https.
        pub fn is_https(&self) -> bool {
            self.0.starts_with("https://")
        }
    }
}

/// Why start-up refused the settings, naming the setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("the configuration file is not valid TOML: {0}")]
    Toml(String),
    #[error("setting `{name}` (environment {env}) is invalid: {reason}")]
    Invalid {
        name: &'static str,
        env: String,
        reason: String,
    },
    #[error(
        "setting `telegram_token` is missing: set GROUPBUY_TELEGRAM_TOKEN to the token @BotFather gave you"
    )]
    MissingToken,
}

/// The checked sections of the settings, in the order their errors are reported.
struct Parts {
    web: Web,
    mail: MailSettings,
    webhook_secret: Option<Secret>,
    trade: Trade,
    server_secret: Option<Secret>,
    dkim: Option<DkimSettings>,
    trusted_proxies: Vec<IpAddr>,
    catalog: Catalog,
    limits: Limits,
}

impl Config {
    /// Builds the configuration from the TOML file's text (if any) and the environment.
    /// The token is checked by [`Config::require_token`], so `migrate` works without one.
    pub fn from_sources(
        toml_text: Option<&str>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut file = FileConfig::parse(toml_text)?;
        let src = Sources { env };
        let parts = Parts {
            web: src.web(&mut file)?,
            mail: src.mail(&mut file)?,
            webhook_secret: src.webhook_secret(file.webhook_secret.take())?,
            trade: src.trade(&mut file)?,
            server_secret: src.server_secret(file.server_secret.take())?,
            dkim: src.dkim(&mut file)?,
            trusted_proxies: src.trusted_proxies(file.trusted_proxies.take())?,
            catalog: Catalog::parse(&mut file)?,
            limits: src.limits(&file)?,
        };
        Ok(Self::assemble(&src, file, parts))
    }

    /// The checked sections plus the free-text settings, which cannot be wrong.
    fn assemble(src: &Sources<'_>, mut file: FileConfig, p: Parts) -> Self {
        Self {
            telegram_token: src
                .pick("telegram_token", file.telegram_token.take())
                .map(Secret::new),
            telegram_api_url: p.web.telegram_api_url,
            database_url: p.mail.database_url,
            smtp_url: p.mail.smtp_url.map(Secret::new),
            mail_dir: src
                .pick("mail_dir", file.mail_dir.take())
                .unwrap_or_else(|| "mail".into()),
            mail_from: p.mail.mail_from,
            fulfilment_email: p.mail.fulfilment_email,
            public_url: p.web.public_url,
            http_addr: p.web.http_addr,
            admin_addr: p.web.admin_addr,
            payment_provider_token: Secret::new(
                src.pick("payment_provider_token", file.payment_provider_token.take())
                    .unwrap_or_default(),
            ),
            webhook_secret: p.webhook_secret,
            support_contact: src
                .pick("support_contact", file.support_contact.take())
                .unwrap_or_else(|| {
                    "Reply to this chat with your order number and we will help.".into()
                }),
            currency: p.trade.currency,
            tiers: p.catalog.tiers,
            policy: p.trade.policy,
            policy_choice: p.trade.policy_choice,
            key_lifetime_secs: p.trade.key_lifetime_secs,
            max_head_count: p.limits.max_head_count,
            region_bonus: p.catalog.region_bonus,
            region_rate: p.catalog.region_rate,
            shipping_fee: p.trade.shipping_fee,
            sweep_interval_secs: p.limits.sweep_interval_secs,
            telegram_rate_per_second: p.limits.telegram_rate_per_second,
            paid_broadcast: p.limits.paid_broadcast,
            paid_broadcast_rate_per_second: p.limits.paid_broadcast_rate_per_second,
            key_attempts_per_minute: p.limits.key_attempts_per_minute,
            products: p.catalog.products,
            data_dir: src
                .pick("data_dir", file.data_dir.take())
                .unwrap_or_else(|| ".".into()),
            server_secret: p.server_secret,
            dkim: p.dkim,
            trusted_proxies: p.trusted_proxies,
            email_invites_per_group: p.limits.email_invites_per_group,
            email_invites_per_day: p.limits.email_invites_per_day,
        }
    }

    /// The bot token, or the error telling how to get one.
    pub fn require_token(&self) -> Result<&Secret, ConfigError> {
        self.telegram_token
            .as_ref()
            .filter(|t| !t.is_empty())
            .ok_or(ConfigError::MissingToken)
    }

    /// Webhook mode: a public https URL and a secret. Otherwise long polling.
    pub fn webhook_secret_if_enabled(&self) -> Option<&Secret> {
        self.webhook_secret
            .as_ref()
            .filter(|s| !s.is_empty() && self.public_url.starts_with("https://"))
    }

    /// A payment provider is configured, so physical goods can be sold (in the catalog
    /// currency, with a shipping address). Digital goods are sold in Stars either way.
    pub fn has_provider(&self) -> bool {
        !self.payment_provider_token.is_empty()
    }

    /// What start-up says when physical goods cannot be sold, or None.
    pub fn sales_warning(&self) -> Option<&'static str> {
        let physical = self
            .products
            .iter()
            .any(|p| p.kind == ProductKind::Physical);
        (physical && !self.has_provider()).then_some(
            "no GROUPBUY_PAYMENT_PROVIDER_TOKEN is set, so physical products cannot be sold (Telegram allows Stars only for digital goods); buyers are told so instead of getting an invoice",
        )
    }
}

/// Invitation emails per organiser and group: a large real group is a few dozen people, and
/// the organiser can still share the link or the key with anyone beyond it.
pub const DEFAULT_EMAIL_INVITES_PER_GROUP: i64 = 20;
/// Invitation emails per organiser in any 24 hours: two or three full groups a day, while a
/// throwaway Telegram account cannot turn the service into a mailer of more than this.
pub const DEFAULT_EMAIL_INVITES_PER_DAY: i64 = 50;

/// `/healthz` and `/metrics` listen here unless `admin_addr` says otherwise.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:8081";

//! Configuration: a pure function of (TOML text, environment), environment winning.
//!
//! Every setting has one name in the TOML file (`database_url`) and one in the environment
//! (`GROUPBUY_DATABASE_URL`). A bad value stops start-up with one sentence naming the setting.

use crate::domain::Policy;
use crate::domain::catalog::{Product, ProductKind, Sku};
use crate::domain::money::{Currency, Money};
use crate::domain::region::RegionBonus;
use crate::domain::tiers::{Rate, Tier, TierTable};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
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
    pub policy: Policy,
    pub key_lifetime_secs: i64,
    pub max_head_count: u32,
    pub region_bonus: Option<RegionBonus>,
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
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Url(pub String);
    impl Url {
        pub fn parse(s: &str) -> Option<Self> {
            let s = s.trim().trim_end_matches('/');
            let rest = s
                .strip_prefix("https://")
                .or_else(|| s.strip_prefix("http://"))?;
            (!rest.is_empty() && !rest.contains(char::is_whitespace)).then(|| Self(s.to_string()))
        }
        pub fn is_https(&self) -> bool {
            self.0.starts_with("https://")
        }
    }
}

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    telegram_token: Option<String>,
    telegram_api_url: Option<String>,
    database_url: Option<String>,
    smtp_url: Option<String>,
    mail_dir: Option<String>,
    mail_from: Option<String>,
    fulfilment_email: Option<String>,
    public_url: Option<String>,
    http_addr: Option<String>,
    admin_addr: Option<String>,
    payment_provider_token: Option<String>,
    webhook_secret: Option<String>,
    support_contact: Option<String>,
    currency: Option<String>,
    policy: Option<String>,
    key_lifetime_hours: Option<i64>,
    max_head_count: Option<i64>,
    shipping_fee: Option<i64>,
    sweep_interval_secs: Option<i64>,
    telegram_rate_per_second: Option<i64>,
    paid_broadcast: Option<bool>,
    paid_broadcast_rate_per_second: Option<i64>,
    key_attempts_per_minute: Option<i64>,
    data_dir: Option<String>,
    server_secret: Option<String>,
    trusted_proxies: Option<String>,
    dkim_selector: Option<String>,
    dkim_domain: Option<String>,
    dkim_private_key_file: Option<String>,
    email_invites_per_group: Option<i64>,
    email_invites_per_day: Option<i64>,
    #[serde(default)]
    tiers: Vec<FileTier>,
    region_bonus: Option<FileRegionBonus>,
    #[serde(default)]
    products: Vec<FileProduct>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTier {
    members: i64,
    percent: toml::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRegionBonus {
    amount: i64,
    #[serde(default = "two")]
    min_buyers: i64,
    #[serde(default)]
    window_hours: i64,
}

fn two() -> i64 {
    2
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileProduct {
    pub sku: String,
    pub name: String,
    pub price: i64,
    /// `physical` (the default) or `digital`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The price in Telegram Stars (digital products only).
    #[serde(default)]
    pub stars: Option<i64>,
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        env: env_name(name),
        reason: reason.into(),
    }
}

fn env_name(name: &str) -> String {
    format!("GROUPBUY_{}", name.to_ascii_uppercase())
}

/// Percent as TOML integer (`5`) or decimal (`2.5`) into basis points, exactly.
fn percent_to_rate(v: &toml::Value) -> Option<Rate> {
    let bp = match v {
        toml::Value::Integer(i) => i.checked_mul(100)?,
        toml::Value::Float(f) => {
            let scaled = f * 100.0;
            if (scaled - scaled.round()).abs() > 1e-6 {
                return None;
            }
            scaled.round() as i64
        }
        toml::Value::String(s) => {
            return percent_to_rate(
                &s.trim()
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .ok()
                    .map(toml::Value::Float)?,
            );
        }
        _ => return None,
    };
    Rate::from_basis_points(u32::try_from(bp).ok()?)
}

/// Parses products from a catalog file (the same `[[products]]` tables as `groupbuy.toml`).
pub fn parse_products(raw: &[FileProduct]) -> Result<Vec<Product>, ConfigError> {
    let mut out: Vec<Product> = Vec::with_capacity(raw.len());
    for p in raw {
        let sku =
            Sku::parse(&p.sku).map_err(|e| invalid("products", format!("{:?}: {e}", p.sku)))?;
        let price =
            Money::from_minor(p.price).map_err(|e| invalid("products", format!("{sku}: {e}")))?;
        let name = p.name.trim();
        if name.is_empty() || name.chars().count() > 32 {
            return Err(invalid(
                "products",
                format!(
                    "{sku}: a product name is 1 to 32 characters (Telegram's invoice title limit)"
                ),
            ));
        }
        if price.minor() == 0 {
            return Err(invalid("products", format!("{sku}: price must be above 0")));
        }
        if out.iter().any(|o| o.sku == sku) {
            return Err(invalid("products", format!("{sku} appears twice")));
        }
        let kind = match p.kind.as_deref() {
            None => ProductKind::Physical,
            Some(k) => ProductKind::parse(k).ok_or_else(|| {
                invalid(
                    "products",
                    format!("{sku}: kind is \"physical\" or \"digital\", not {k:?}"),
                )
            })?,
        };
        let stars = match (kind, p.stars) {
            (ProductKind::Digital, Some(n)) => Some(
                u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=100_000).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            "products",
                            format!("{sku}: stars is a whole number from 1 to 100000"),
                        )
                    })?,
            ),
            (ProductKind::Digital, None) => {
                return Err(invalid(
                    "products",
                    format!(
                        "{sku}: a digital product is sold in Telegram Stars: give its price as stars = N"
                    ),
                ));
            }
            (ProductKind::Physical, Some(_)) => {
                return Err(invalid(
                    "products",
                    format!(
                        "{sku}: Telegram allows Stars only for digital goods: drop stars, or set kind = \"digital\""
                    ),
                ));
            }
            (ProductKind::Physical, None) => None,
        };
        out.push(Product {
            sku,
            name: name.to_string(),
            price,
            kind,
            stars,
        });
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
pub struct CatalogFile {
    #[serde(default)]
    pub products: Vec<FileProduct>,
}

impl Config {
    /// Builds the configuration from the TOML file's text (if any) and the environment.
    /// The token is checked by [`Config::require_token`], so `migrate` works without one.
    pub fn from_sources(
        toml_text: Option<&str>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut file: FileConfig = match toml_text {
            Some(t) => toml::from_str(t).map_err(|e| ConfigError::Toml(e.message().to_string()))?,
            None => FileConfig::default(),
        };
        let src = Sources { env };
        let (http_addr, admin_addr) = src.addresses(&mut file)?;
        let telegram_api_url = match src.pick("telegram_api_url", file.telegram_api_url.take()) {
            Some(u) => Some(url_like::Url::parse(&u).ok_or_else(|| {
                invalid("telegram_api_url", format!("{u:?} is not an http(s) URL"))
            })?),
            None => None,
        };
        let public_url_raw = src
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
        let mail = src.mail(&mut file)?;
        let webhook_secret = src
            .pick("webhook_secret", file.webhook_secret.take())
            .map(Secret::new);
        if let Some(s) = &webhook_secret {
            check_webhook_secret(s.expose())?;
        }
        let currency_raw = src
            .pick("currency", file.currency.take())
            .unwrap_or_else(|| "JPY".into());
        let currency =
            Currency::parse(&currency_raw).map_err(|e| invalid("currency", e.to_string()))?;
        let policy_raw = src
            .pick("policy", file.policy.take())
            .unwrap_or_else(|| "all_or_nothing".into());
        let policy = Policy::parse(&policy_raw)
            .ok_or_else(|| invalid("policy", "use all_or_nothing or partial"))?;
        let hours: i64 = src.bounded(
            "key_lifetime_hours",
            file.key_lifetime_hours,
            72,
            1,
            24 * 365,
        )?;
        let fee = src.int("shipping_fee", file.shipping_fee)?.unwrap_or(0);
        let shipping_fee =
            Money::from_minor(fee).map_err(|e| invalid("shipping_fee", e.to_string()))?;
        let server_secret = src
            .pick("server_secret", file.server_secret.take())
            .map(Secret::new);
        if server_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 32)
        {
            return Err(invalid(
                "server_secret",
                "it must be at least 32 characters (or unset: one is generated into data_dir)",
            ));
        }
        let dkim = src.dkim(&mut file)?;
        let trusted_proxies = src.trusted_proxies(file.trusted_proxies.take())?;
        let tiers = tiers(&file.tiers)?;
        let region_bonus = region_bonus(file.region_bonus.take())?;
        let products = parse_products(&file.products)?;
        Ok(Self {
            telegram_token: src
                .pick("telegram_token", file.telegram_token.take())
                .map(Secret::new),
            telegram_api_url,
            database_url: mail.database_url,
            smtp_url: mail.smtp_url.map(Secret::new),
            mail_dir: src
                .pick("mail_dir", file.mail_dir.take())
                .unwrap_or_else(|| "mail".into()),
            mail_from: mail.mail_from,
            fulfilment_email: mail.fulfilment_email,
            public_url,
            http_addr,
            admin_addr,
            payment_provider_token: Secret::new(
                src.pick("payment_provider_token", file.payment_provider_token.take())
                    .unwrap_or_default(),
            ),
            webhook_secret,
            support_contact: src
                .pick("support_contact", file.support_contact.take())
                .unwrap_or_else(|| {
                    "Reply to this chat with your order number and we will help.".into()
                }),
            currency,
            tiers,
            policy,
            key_lifetime_secs: hours * 3_600,
            max_head_count: src.bounded(
                "max_head_count",
                file.max_head_count,
                1_000,
                2,
                100_000,
            )?,
            region_bonus,
            shipping_fee,
            sweep_interval_secs: src.bounded(
                "sweep_interval_secs",
                file.sweep_interval_secs,
                60,
                1,
                i64::MAX,
            )?,
            telegram_rate_per_second: src.bounded(
                "telegram_rate_per_second",
                file.telegram_rate_per_second,
                30,
                1,
                1_000,
            )?,
            paid_broadcast: src.flag("paid_broadcast", file.paid_broadcast)?,
            paid_broadcast_rate_per_second: src.bounded(
                "paid_broadcast_rate_per_second",
                file.paid_broadcast_rate_per_second,
                1_000,
                1,
                1_000,
            )?,
            key_attempts_per_minute: src.bounded(
                "key_attempts_per_minute",
                file.key_attempts_per_minute,
                10,
                1,
                100_000,
            )?,
            products,
            data_dir: src
                .pick("data_dir", file.data_dir.take())
                .unwrap_or_else(|| ".".into()),
            server_secret,
            dkim,
            trusted_proxies,
            email_invites_per_group: src.bounded(
                "email_invites_per_group",
                file.email_invites_per_group,
                DEFAULT_EMAIL_INVITES_PER_GROUP,
                0,
                100_000,
            )?,
            email_invites_per_day: src.bounded(
                "email_invites_per_day",
                file.email_invites_per_day,
                DEFAULT_EMAIL_INVITES_PER_DAY,
                0,
                1_000_000,
            )?,
        })
    }

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

/// The patent's example table: 1→0 %, 2→3 %, 3→5 %, 4→10 %.
pub fn default_tiers() -> TierTable {
    let t = |members, bp| Tier {
        members,
        rate: Rate::from_basis_points(bp).unwrap_or(Rate::ZERO),
    };
    TierTable::new(vec![t(1, 0), t(2, 300), t(3, 500), t(4, 1_000)])
        .unwrap_or_else(|_| unreachable!("constant table is valid"))
}

/// Where settings come from: the environment (`GROUPBUY_<NAME>`) wins over the file.
struct Sources<'a> {
    env: &'a HashMap<String, String>,
}

/// Where data and mail go.
struct MailSettings {
    database_url: String,
    smtp_url: Option<String>,
    mail_from: String,
    fulfilment_email: String,
}

impl Sources<'_> {
    /// A text setting; empty counts as unset.
    fn pick(&self, name: &'static str, file_value: Option<String>) -> Option<String> {
        self.env
            .get(&env_name(name))
            .cloned()
            .or(file_value)
            .filter(|v| !v.trim().is_empty())
    }

    /// A whole-number setting.
    fn int(&self, name: &'static str, file_value: Option<i64>) -> Result<Option<i64>, ConfigError> {
        match self.env.get(&env_name(name)) {
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid(name, format!("{v:?} is not a whole number"))),
            None => Ok(file_value),
        }
    }

    /// A whole number from `min` to `max` (`default` when unset), in the type it is used as.
    fn bounded<T: TryFrom<i64>>(
        &self,
        name: &'static str,
        file_value: Option<i64>,
        default: impl Into<i64>,
        min: i64,
        max: i64,
    ) -> Result<T, ConfigError> {
        let v = self.int(name, file_value)?.unwrap_or(default.into());
        let range = if max == i64::MAX {
            format!("at least {min}")
        } else {
            format!("between {min} and {max}")
        };
        Some(v)
            .filter(|v| (min..=max).contains(v))
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| invalid(name, format!("it must be {range}")))
    }

    /// A true/false setting.
    fn flag(&self, name: &'static str, file_value: Option<bool>) -> Result<bool, ConfigError> {
        match self.env.get(&env_name(name)) {
            Some(v) => match v.trim() {
                "true" | "1" => Ok(true),
                "false" | "0" | "" => Ok(false),
                _ => Err(invalid(name, "use true or false")),
            },
            None => Ok(file_value.unwrap_or(false)),
        }
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
    fn mail(&self, file: &mut FileConfig) -> Result<MailSettings, ConfigError> {
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
        let mail_from = self
            .pick("mail_from", file.mail_from.take())
            .unwrap_or_else(|| "groupbuy <groupbuy@localhost>".into());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "mail_from",
                format!("{mail_from:?} is not an email address"),
            ));
        }
        let fulfilment_email = self
            .pick("fulfilment_email", file.fulfilment_email.take())
            .unwrap_or_else(|| "fulfilment@localhost".into());
        if fulfilment_email
            .parse::<lettre::message::Mailbox>()
            .is_err()
        {
            return Err(invalid(
                "fulfilment_email",
                format!("{fulfilment_email:?} is not an email address"),
            ));
        }
        Ok(MailSettings {
            database_url,
            smtp_url,
            mail_from,
            fulfilment_email,
        })
    }

    /// DKIM signing: all three settings or none.
    fn dkim(&self, file: &mut FileConfig) -> Result<Option<DkimSettings>, ConfigError> {
        Ok(
            match (
                self.pick("dkim_selector", file.dkim_selector.take()),
                self.pick("dkim_domain", file.dkim_domain.take()),
                self.pick("dkim_private_key_file", file.dkim_private_key_file.take()),
            ) {
                (None, None, None) => None,
                (Some(selector), Some(domain), Some(private_key_file)) => {
                    let label_ok = |s: &str| {
                        !s.is_empty()
                            && s.split('.').all(|l| {
                                !l.is_empty()
                                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            })
                    };
                    if !label_ok(&selector) {
                        return Err(invalid(
                            "dkim_selector",
                            "it must be a DNS name such as mail2026",
                        ));
                    }
                    if !label_ok(&domain) || !domain.contains('.') {
                        return Err(invalid(
                            "dkim_domain",
                            "it must be a domain such as example.com",
                        ));
                    }
                    Some(DkimSettings {
                        selector,
                        domain,
                        private_key_file,
                    })
                }
                (selector, domain, _) => {
                    let missing = if selector.is_none() {
                        "dkim_selector"
                    } else if domain.is_none() {
                        "dkim_domain"
                    } else {
                        "dkim_private_key_file"
                    };
                    return Err(invalid(
                        missing,
                        "DKIM needs dkim_selector, dkim_domain and dkim_private_key_file together",
                    ));
                }
            },
        )
    }

    /// Reverse proxies whose forwarded-for headers are believed.
    fn trusted_proxies(
        &self,
        file_value: Option<String>,
    ) -> Result<Vec<std::net::IpAddr>, ConfigError> {
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

/// The discount tiers (the patent's figures unless the file lists its own).
fn tiers(file_tiers: &[FileTier]) -> Result<TierTable, ConfigError> {
    Ok(if file_tiers.is_empty() {
        default_tiers()
    } else {
        let mut parsed = Vec::new();
        for t in file_tiers {
            let members = u32::try_from(t.members)
                .map_err(|_| invalid("tiers", "members must be positive"))?;
            let rate = percent_to_rate(&t.percent).ok_or_else(|| {
                invalid(
                    "tiers",
                    format!(
                        "percent {} must be 0 to 100 with at most two decimals",
                        t.percent
                    ),
                )
            })?;
            parsed.push(Tier { members, rate });
        }
        TierTable::new(parsed).map_err(|e| invalid("tiers", e.to_string()))?
    })
}

/// The shared-region bonus, if configured.
fn region_bonus(file_value: Option<FileRegionBonus>) -> Result<Option<RegionBonus>, ConfigError> {
    Ok(match file_value {
        None => None,
        Some(b) => Some(RegionBonus {
            amount: Money::from_minor(b.amount)
                .map_err(|e| invalid("region_bonus", e.to_string()))?,
            min_buyers: u32::try_from(b.min_buyers)
                .ok()
                .filter(|n| *n >= 2)
                .ok_or_else(|| invalid("region_bonus", "min_buyers must be at least 2"))?,
            window_secs: b
                .window_hours
                .checked_mul(3_600)
                .filter(|s| *s >= 0)
                .ok_or_else(|| {
                    invalid(
                        "region_bonus",
                        "window_hours must be 0 (whole group) or more",
                    )
                })?,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_example_file() {
        let text = include_str!("../groupbuy.example.toml");
        let c = Config::from_sources(Some(text), &env(&[])).expect("example parses");
        assert_eq!(c.database_url, "sqlite://groupbuy.db");
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.products.len(), 3);
        assert_eq!(c.products[0].price.minor(), 34_800);
        assert_eq!(c.tiers.rate_for(3).to_string(), "5%");
        assert!(!c.has_provider());
        assert!(c.sales_warning().is_some());
        assert_eq!(c.require_token(), Err(ConfigError::MissingToken));
    }

    #[test]
    fn environment_wins() {
        let c = Config::from_sources(
            Some("database_url = \"sqlite://file.db\"\ntelegram_token = \"1:a\""),
            &env(&[
                ("GROUPBUY_DATABASE_URL", "postgres://x/y"),
                ("GROUPBUY_TELEGRAM_TOKEN", "2:b"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.database_url, "postgres://x/y");
        assert_eq!(
            c.require_token().map(|t| t.expose().to_string()),
            Ok("2:b".into())
        );
        assert_eq!(format!("{:?}", c.telegram_token), "Some(\"***\")");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = |toml: &str, e: &[(&str, &str)]| {
            Config::from_sources(Some(toml), &env(e))
                .expect_err("invalid")
                .to_string()
        };
        assert!(
            err("", &[("GROUPBUY_HTTP_ADDR", "nowhere")])
                .contains("`http_addr` (environment GROUPBUY_HTTP_ADDR)")
        );
        assert!(err("policy = \"maybe\"", &[]).contains("`policy`"));
        assert!(
            err(
                "[[tiers]]\nmembers = 2\npercent = 5\n[[tiers]]\nmembers = 3\npercent = 3",
                &[]
            )
            .contains("smaller rate")
        );
        assert!(err("", &[("GROUPBUY_SMTP_URL", "http://x")]).contains("`smtp_url`"));
        assert!(err("unknown_key = 1", &[]).contains("not valid TOML"));
        assert!(
            err("", &[("GROUPBUY_KEY_LIFETIME_HOURS", "soon")]).contains("`key_lifetime_hours`")
        );
        assert!(err("telegram_rate_per_second = 0", &[]).contains("`telegram_rate_per_second`"));
    }

    #[test]
    fn products_say_how_they_are_paid_for() {
        let product = |extra: &str| {
            Config::from_sources(
                Some(&format!(
                    "[[products]]\nsku = \"guide\"\nname = \"Camera guide\"\nprice = 1200\n{extra}"
                )),
                &env(&[]),
            )
        };
        let digital = product("kind = \"digital\"\nstars = 120").expect("valid");
        assert_eq!(digital.products[0].kind, ProductKind::Digital);
        assert_eq!(digital.products[0].stars, Some(120));
        assert_eq!(
            digital.sales_warning(),
            None,
            "digital goods need no provider"
        );
        let physical = product("").expect("valid");
        assert_eq!(physical.products[0].kind, ProductKind::Physical);
        assert!(physical.sales_warning().is_some());
        let refused = |extra: &str| product(extra).expect_err("invalid").to_string();
        assert!(refused("kind = \"digital\"").contains("give its price as stars = N"));
        assert!(refused("stars = 120").contains("Stars only for digital goods"));
        assert!(refused("kind = \"vinyl\"").contains("kind is \"physical\" or \"digital\""));
        assert!(refused("kind = \"digital\"\nstars = 0").contains("stars is a whole number"));
    }

    #[test]
    fn key_attempts_per_minute_default_file_env_and_bounds() {
        let parse = |toml: &str, e: &[(&str, &str)]| Config::from_sources(Some(toml), &env(e));
        assert_eq!(parse("", &[]).map(|c| c.key_attempts_per_minute), Ok(10));
        assert_eq!(
            parse("key_attempts_per_minute = 3", &[]).map(|c| c.key_attempts_per_minute),
            Ok(3)
        );
        assert_eq!(
            parse(
                "key_attempts_per_minute = 3",
                &[("GROUPBUY_KEY_ATTEMPTS_PER_MINUTE", "25")]
            )
            .map(|c| c.key_attempts_per_minute),
            Ok(25)
        );
        for bad in ["0", "-1", "many", "100001"] {
            let e = parse("", &[("GROUPBUY_KEY_ATTEMPTS_PER_MINUTE", bad)])
                .expect_err("out of range")
                .to_string();
            assert!(e.contains("`key_attempts_per_minute`"), "{bad}: {e}");
        }
    }

    #[test]
    fn admin_addr_is_loopback_apart_from_the_pages() {
        let parse = |e: &[(&str, &str)]| Config::from_sources(None, &env(e));
        assert_eq!(
            parse(&[]).map(|c| c.admin_addr.to_string()),
            Ok("127.0.0.1:8081".into())
        );
        assert!(parse(&[]).is_ok_and(|c| c.admin_addr.ip().is_loopback()));
        assert_eq!(
            parse(&[("GROUPBUY_ADMIN_ADDR", "127.0.0.1:9100")]).map(|c| c.admin_addr.port()),
            Ok(9100)
        );
        for bad in [
            &[("GROUPBUY_ADMIN_ADDR", "metrics")][..],
            &[
                ("GROUPBUY_ADMIN_ADDR", "127.0.0.1:8080"),
                ("GROUPBUY_HTTP_ADDR", "127.0.0.1:8080"),
            ][..],
        ] {
            let e = parse(bad).expect_err("refused").to_string();
            assert!(
                e.contains("`admin_addr` (environment GROUPBUY_ADMIN_ADDR)"),
                "{e}"
            );
        }
    }

    #[test]
    fn webhook_secret_is_16_to_256_of_telegrams_characters() {
        let parse = |v: &str| Config::from_sources(None, &env(&[("GROUPBUY_WEBHOOK_SECRET", v)]));
        for good in ["a".repeat(16), "A-z_0".repeat(40), "x".repeat(256)] {
            assert!(parse(&good).is_ok(), "{good}");
        }
        for bad in [
            "a".to_string(),
            "a".repeat(15),
            "x".repeat(257),
            "sixteen chars ok".into(),
            "sixteen+chars+ok".into(),
            "ééééééééééééééééé".into(),
        ] {
            let e = parse(&bad).expect_err("refused").to_string();
            assert_eq!(
                e,
                "setting `webhook_secret` (environment GROUPBUY_WEBHOOK_SECRET) is invalid: it must be 16 to 256 characters of A-Z, a-z, 0-9, _ and -",
                "{bad}"
            );
        }
    }

    #[test]
    fn invitation_limits_and_server_secret() {
        let parse = |e: &[(&str, &str)]| Config::from_sources(None, &env(e));
        let c = parse(&[]).expect("defaults");
        assert_eq!(
            (c.email_invites_per_group, c.email_invites_per_day),
            (20, 50)
        );
        assert_eq!(c.data_dir, ".");
        assert!(c.server_secret.is_none());
        let c = parse(&[
            ("GROUPBUY_EMAIL_INVITES_PER_GROUP", "3"),
            ("GROUPBUY_EMAIL_INVITES_PER_DAY", "0"),
            ("GROUPBUY_SERVER_SECRET", "0123456789abcdef0123456789abcdef"),
        ])
        .expect("valid");
        assert_eq!((c.email_invites_per_group, c.email_invites_per_day), (3, 0));
        assert_eq!(format!("{:?}", c.server_secret), "Some(\"***\")");
        for (k, v) in [
            ("GROUPBUY_EMAIL_INVITES_PER_GROUP", "-1"),
            ("GROUPBUY_EMAIL_INVITES_PER_DAY", "lots"),
            ("GROUPBUY_SERVER_SECRET", "short"),
        ] {
            let e = parse(&[(k, v)]).expect_err("refused").to_string();
            assert!(e.contains(&format!("(environment {k})")), "{e}");
            assert!(!e.contains("short\""), "the secret is not repeated: {e}");
        }
    }

    #[test]
    fn paid_broadcast_is_off_by_default_and_set_by_file_or_env() {
        let parse = |toml: &str, e: &[(&str, &str)]| Config::from_sources(Some(toml), &env(e));
        let c = parse("", &[]).expect("valid");
        assert!(!c.paid_broadcast);
        assert_eq!(c.paid_broadcast_rate_per_second, 1_000);
        let c = parse(
            "paid_broadcast = true\npaid_broadcast_rate_per_second = 500",
            &[],
        )
        .expect("valid");
        assert!(c.paid_broadcast);
        assert_eq!(c.paid_broadcast_rate_per_second, 500);
        let c = parse(
            "paid_broadcast = true",
            &[
                ("GROUPBUY_PAID_BROADCAST", "false"),
                ("GROUPBUY_PAID_BROADCAST_RATE_PER_SECOND", "250"),
            ],
        )
        .expect("valid");
        assert!(!c.paid_broadcast);
        assert_eq!(c.paid_broadcast_rate_per_second, 250);
        for (k, bad) in [
            ("GROUPBUY_PAID_BROADCAST", "maybe"),
            ("GROUPBUY_PAID_BROADCAST_RATE_PER_SECOND", "0"),
            ("GROUPBUY_PAID_BROADCAST_RATE_PER_SECOND", "1001"),
        ] {
            let e = parse("", &[(k, bad)]).expect_err("invalid").to_string();
            assert!(e.contains("`paid_broadcast"), "{k}={bad}: {e}");
        }
    }

    #[test]
    fn trusted_proxies_are_a_list_of_addresses() {
        let parse = |v: &str| Config::from_sources(None, &env(&[("GROUPBUY_TRUSTED_PROXIES", v)]));
        assert_eq!(parse("").map(|c| c.trusted_proxies.len()), Ok(0));
        let c = parse("10.0.0.1, ::1").expect("valid");
        assert_eq!(c.trusted_proxies.len(), 2);
        let e = parse("10.0.0.0/8").expect_err("refused").to_string();
        assert!(e.contains("`trusted_proxies`"), "{e}");
    }

    #[test]
    fn dkim_settings_come_together() {
        let parse = |e: &[(&str, &str)]| Config::from_sources(None, &env(e));
        assert_eq!(parse(&[]).map(|c| c.dkim), Ok(None));
        let c = parse(&[
            ("GROUPBUY_DKIM_SELECTOR", "gb2026"),
            ("GROUPBUY_DKIM_DOMAIN", "shop.example.com"),
            ("GROUPBUY_DKIM_PRIVATE_KEY_FILE", "/etc/groupbuy/dkim.key"),
        ])
        .expect("valid");
        assert_eq!(c.dkim.map(|d| d.selector), Some("gb2026".into()));
        let e = parse(&[("GROUPBUY_DKIM_SELECTOR", "gb2026")])
            .expect_err("incomplete")
            .to_string();
        assert!(
            e.contains("`dkim_domain` (environment GROUPBUY_DKIM_DOMAIN)"),
            "{e}"
        );
        let e = parse(&[
            ("GROUPBUY_DKIM_SELECTOR", "bad selector"),
            ("GROUPBUY_DKIM_DOMAIN", "shop.example.com"),
            ("GROUPBUY_DKIM_PRIVATE_KEY_FILE", "k"),
        ])
        .expect_err("bad")
        .to_string();
        assert!(e.contains("`dkim_selector`"), "{e}");
    }

    #[test]
    fn percent_forms() {
        assert_eq!(
            percent_to_rate(&toml::Value::Integer(5)).map(Rate::basis_points),
            Some(500)
        );
        assert_eq!(
            percent_to_rate(&toml::Value::Float(2.5)).map(Rate::basis_points),
            Some(250)
        );
        assert_eq!(
            percent_to_rate(&toml::Value::String("12.25%".into())).map(Rate::basis_points),
            Some(1_225)
        );
        assert_eq!(percent_to_rate(&toml::Value::Float(2.555)), None);
        assert_eq!(percent_to_rate(&toml::Value::Integer(101)), None);
    }
}

//! The TOML file's shape: every key optional, unknown keys refused.

use super::ConfigError;
use serde::Deserialize;

/// `groupbuy.toml` as written, before any value is checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) telegram_token: Option<String>,
    pub(super) telegram_api_url: Option<String>,
    pub(super) database_url: Option<String>,
    pub(super) smtp_url: Option<String>,
    pub(super) mail_dir: Option<String>,
    pub(super) mail_from: Option<String>,
    pub(super) fulfilment_email: Option<String>,
    pub(super) public_url: Option<String>,
    pub(super) http_addr: Option<String>,
    pub(super) admin_addr: Option<String>,
    pub(super) payment_provider_token: Option<String>,
    pub(super) webhook_secret: Option<String>,
    pub(super) support_contact: Option<String>,
    pub(super) currency: Option<String>,
    pub(super) policy: Option<String>,
    pub(super) policy_choice: Option<bool>,
    pub(super) key_lifetime_hours: Option<i64>,
    pub(super) max_head_count: Option<i64>,
    pub(super) shipping_fee: Option<i64>,
    pub(super) sweep_interval_secs: Option<i64>,
    pub(super) telegram_rate_per_second: Option<i64>,
    pub(super) paid_broadcast: Option<bool>,
    pub(super) paid_broadcast_rate_per_second: Option<i64>,
    pub(super) key_attempts_per_minute: Option<i64>,
    pub(super) data_dir: Option<String>,
    pub(super) server_secret: Option<String>,
    pub(super) trusted_proxies: Option<String>,
    pub(super) dkim_selector: Option<String>,
    pub(super) dkim_domain: Option<String>,
    pub(super) dkim_private_key_file: Option<String>,
    pub(super) email_invites_per_group: Option<i64>,
    pub(super) email_invites_per_day: Option<i64>,
    #[serde(default)]
    pub(super) tiers: Vec<FileTier>,
    pub(super) region_bonus: Option<FileRegionBonus>,
    pub(super) region_rate: Option<FileRegionRate>,
    #[serde(default)]
    pub(super) products: Vec<FileProduct>,
}

impl FileConfig {
    /// Reads the file's text, or an empty file when there is none.
    pub(super) fn parse(toml_text: Option<&str>) -> Result<Self, ConfigError> {
        match toml_text {
            Some(t) => toml::from_str(t).map_err(|e| ConfigError::Toml(e.message().to_string())),
            None => Ok(Self::default()),
        }
    }
}

/// One `[[tiers]]` table: from how many members, what percent off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTier {
    pub(super) members: i64,
    pub(super) percent: toml::Value,
}

/// The `[region_bonus]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRegionBonus {
    pub(super) amount: i64,
    #[serde(default = "two")]
    pub(super) min_buyers: i64,
    #[serde(default)]
    pub(super) window_hours: i64,
}

/// The `[region_rate]` table (¶0059): a higher rate for buyers sharing a region in a window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRegionRate {
    pub(super) extra_percent: toml::Value,
    #[serde(default = "two")]
    pub(super) min_buyers: i64,
    #[serde(default)]
    pub(super) window_hours: i64,
}

fn two() -> i64 {
    2
}

/// One `[[products]]` table, as written in `groupbuy.toml` or a catalog file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileProduct {
    /// The product code buyers type.
    pub sku: String,
    /// The name shown on the invoice (1 to 32 characters).
    pub name: String,
    /// The price in minor units of the catalog currency.
    pub price: i64,
    /// `physical` (the default) or `digital`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The price in Telegram Stars (digital products only).
    #[serde(default)]
    pub stars: Option<i64>,
    /// `false` for goods sold without a group discount (¶0146); `true` by default.
    #[serde(default)]
    pub discount: Option<bool>,
}

/// A catalog file: just `[[products]]` tables.
#[derive(Debug, Deserialize)]
pub struct CatalogFile {
    /// The products it lists.
    #[serde(default)]
    pub products: Vec<FileProduct>,
}

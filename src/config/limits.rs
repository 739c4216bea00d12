//! The numbers: currency and policy, lifetimes, rates and per-organiser limits.

use super::file::FileConfig;
use super::sources::{Sources, invalid};
use super::{ConfigError, DEFAULT_EMAIL_INVITES_PER_DAY, DEFAULT_EMAIL_INVITES_PER_GROUP};
use crate::domain::Policy;
use crate::domain::money::{Currency, Money};

/// How groups trade: the currency, the settlement policy, key lifetime and shipping.
pub(super) struct Trade {
    pub(super) currency: Currency,
    pub(super) policy: Policy,
    pub(super) policy_choice: bool,
    pub(super) key_lifetime_secs: i64,
    pub(super) shipping_fee: Money,
}

/// The bounded whole numbers and the paid-broadcast switch.
pub(super) struct Limits {
    pub(super) max_head_count: u32,
    pub(super) sweep_interval_secs: u64,
    pub(super) telegram_rate_per_second: u32,
    pub(super) paid_broadcast: bool,
    pub(super) paid_broadcast_rate_per_second: u32,
    pub(super) key_attempts_per_minute: u32,
    pub(super) email_invites_per_group: u32,
    pub(super) email_invites_per_day: u32,
}

impl Sources<'_> {
    /// Currency (JPY), policy (all or nothing, organisers may choose), key lifetime (72 h) and shipping fee (0).
    pub(super) fn trade(&self, file: &mut FileConfig) -> Result<Trade, ConfigError> {
        let currency_raw = self
            .pick("currency", file.currency.take())
            .unwrap_or_else(|| "JPY".into());
        let currency =
            Currency::parse(&currency_raw).map_err(|e| invalid("currency", e.to_string()))?;
        let policy_raw = self
            .pick("policy", file.policy.take())
            .unwrap_or_else(|| "all_or_nothing".into());
        let policy = Policy::parse(&policy_raw)
            .ok_or_else(|| invalid("policy", "use all_or_nothing or partial"))?;
        // Organisers may choose (`all` or `partial` at /newgroup) unless the operator says no.
        let policy_choice = self.flag("policy_choice", Some(file.policy_choice.unwrap_or(true)))?;
        let hours: i64 = self.bounded(
            "key_lifetime_hours",
            file.key_lifetime_hours,
            72,
            1,
            24 * 365,
        )?;
        let fee = self.int("shipping_fee", file.shipping_fee)?.unwrap_or(0);
        let shipping_fee =
            Money::from_minor(fee).map_err(|e| invalid("shipping_fee", e.to_string()))?;
        Ok(Trade {
            currency,
            policy,
            policy_choice,
            key_lifetime_secs: hours * 3_600,
            shipping_fee,
        })
    }

    /// Every bounded number, in the order their errors are reported.
    pub(super) fn limits(&self, file: &FileConfig) -> Result<Limits, ConfigError> {
        Ok(Limits {
            max_head_count: self.bounded(
                "max_head_count",
                file.max_head_count,
                1_000,
                2,
                100_000,
            )?,
            sweep_interval_secs: self.bounded(
                "sweep_interval_secs",
                file.sweep_interval_secs,
                60,
                1,
                i64::MAX,
            )?,
            telegram_rate_per_second: self.bounded(
                "telegram_rate_per_second",
                file.telegram_rate_per_second,
                30,
                1,
                1_000,
            )?,
            paid_broadcast: self.flag("paid_broadcast", file.paid_broadcast)?,
            paid_broadcast_rate_per_second: self.bounded(
                "paid_broadcast_rate_per_second",
                file.paid_broadcast_rate_per_second,
                1_000,
                1,
                1_000,
            )?,
            key_attempts_per_minute: self.bounded(
                "key_attempts_per_minute",
                file.key_attempts_per_minute,
                10,
                1,
                100_000,
            )?,
            email_invites_per_group: self.bounded(
                "email_invites_per_group",
                file.email_invites_per_group,
                DEFAULT_EMAIL_INVITES_PER_GROUP,
                0,
                100_000,
            )?,
            email_invites_per_day: self.bounded(
                "email_invites_per_day",
                file.email_invites_per_day,
                DEFAULT_EMAIL_INVITES_PER_DAY,
                0,
                1_000_000,
            )?,
        })
    }
}

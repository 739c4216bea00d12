//! groupbuy: a Telegram bot plus email invitations for group purchasing. Members buy at
//! once at the normal price; when the group closes, the head-count discount comes back to
//! each of them as credit points.
//!
//! A map of the crate, in reading order:
//! - [`domain`]: pure business rules — money, keys, members, tiers, regions, settlement.
//! - [`config`]: settings from `groupbuy.toml` and `GROUPBUY_*` variables.
//! - [`clock`]: the one source of "now" (movable in tests).
//! - [`store`]: the only place with SQL (SQLite and PostgreSQL).
//! - [`replies`], [`keyboard`]: what the bot says and the buttons it shows.
//! - [`app`]: use cases — one transaction each, effects queued in the outbox.
//! - [`mail`]: email rendering (askama) and sending (lettre).
//! - [`telegram`]: the teloxide adapter — command menu, handler tree, handlers.
//! - [`web`]: the axum side — group pages, receipts, health, metrics.
//! - [`workers`]: outbox delivery within Telegram's limits, the settlement sweep.
//! - [`metrics`]: counters for `/metrics`.
//! - [`failpoint`]: named crash points for fault-injection tests.
//! - [`secrets`]: the server secret and keyed hashes of tokens at rest.
//! - [`export`]: the operator's streamed export of purchases (CSV or JSON).
//! - [`startup`], [`shutdown`], [`cli`], [`telemetry`]: running it.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod export;
pub(crate) mod failpoint;
#[cfg(test)]
mod fuzz;
pub(crate) mod keyboard;
pub mod mail;
pub(crate) mod metrics;
pub mod playground;
pub mod replies;
pub mod secrets;
pub mod shutdown;
pub mod startup;
pub mod store;
pub(crate) mod telegram;
pub(crate) mod telemetry;
pub(crate) mod web;
pub(crate) mod workers;

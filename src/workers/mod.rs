//! Background work: delivering the outbox, settling groups whose time has come, and paying
//! Telegram Stars refunds.

pub mod limiter;
pub mod outbox;
pub mod refunds;
pub mod sweep;

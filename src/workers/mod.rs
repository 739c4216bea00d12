//! Background work: delivering the outbox and settling groups whose time has come.

pub mod limiter;
pub mod outbox;
pub mod sweep;

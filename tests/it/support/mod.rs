//! Test infrastructure shared by the integration scenarios: a Bot API fake over HTTP and an
//! SMTP sink over TCP, both on loopback.
#![allow(dead_code, unused_imports)]

pub mod bot_api;
pub mod schema;
pub mod smtp;

pub use bot_api::{Call, FakeBotApi, Fault, OrderInfo, ShippingAddress, TgUser};
pub use smtp::{Mail, SmtpSink};

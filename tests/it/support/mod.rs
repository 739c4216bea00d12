//! Test infrastructure shared by the integration scenarios: the library's Bot API emulator
//! (`groupbuy::emulator`, the same code `groupbuy playground` runs) as the Bot API fake, and an
//! SMTP sink over TCP, both on loopback.
#![allow(dead_code, unused_imports)]

pub mod pg;
pub mod smtp;
pub mod webdriver;

pub use groupbuy::emulator as bot_api;
pub use groupbuy::emulator::schema;
pub use groupbuy::emulator::{
    BotApiEmulator as FakeBotApi, Call, Fault, OrderInfo, ShippingAddress, TgUser,
};
pub use smtp::{Mail, SmtpSink};

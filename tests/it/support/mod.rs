//! Test infrastructure shared by the integration scenarios: the library's Bot API emulator
//! (`bot_api_emulator`, the same code `groupbuy playground` runs) as the Bot API fake, and an
//! SMTP sink over TCP, both on loopback.
#![allow(dead_code, unused_imports)]

pub mod pg;
pub mod smtp;
pub mod webdriver;

pub use bot_api_emulator as bot_api;
pub use bot_api_emulator::schema;
pub use bot_api_emulator::{
    BotApiEmulator as FakeBotApi, Call, Fault, OrderInfo, ShippingAddress, TgUser,
};
pub use smtp::{Mail, SmtpSink};

//! Buying a seat (claims 1, 2, 5, 12, 13): the buy buttons and the invoice ([`press`]), the
//! pre-checkout check and the shipping query ([`checkout`]), and recording a successful
//! payment exactly once ([`record`]), which ships the goods ([`ship`]).

mod checkout;
mod payload;
mod press;
mod record;
mod ship;

pub use checkout::{Address, pre_checkout, shipping_options};
pub use payload::Payload;
pub use press::press;
pub use record::{Payment, Recorded, record};

use crate::keyboard::Keyboard;

/// An invoice to send, in the adapter's hands; queued in the outbox as JSON (a field added
/// later needs `#[serde(default)]` so rows queued before it still read).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InvoiceSpec {
    pub title: String,
    pub description: String,
    pub payload: String,
    pub currency: String,
    pub prices: Vec<(String, i64)>,
    /// Paid through the payment provider (its token, the buyer's name); else Telegram Stars.
    #[serde(default)]
    pub provider: bool,
    pub need_shipping: bool,
    /// Set, so that a forwarded copy of the invoice shows a deep link into the group instead
    /// of a Pay button: only the person it was made for can pay it.
    #[serde(default)]
    pub start_parameter: String,
}

/// What a button press leads to.
#[derive(Debug, Clone)]
pub enum Step {
    Message(String, Keyboard),
    Invoice(InvoiceSpec),
}

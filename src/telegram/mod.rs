//! The Telegram adapter (teloxide): the command menu, the update handler tree, and thin
//! handlers that turn updates into use-case calls and replies.

pub mod commands;
pub mod handlers;
pub mod ingest;
pub mod payments;

use crate::app::Person;
use crate::domain::UserId;
use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::User;

pub type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub fn person(u: &User) -> Person {
    Person {
        id: UserId::new(i64::try_from(u.id.0).unwrap_or(i64::MAX)),
        username: u.username.clone(),
        first_name: u.first_name.clone(),
    }
}

pub fn update_id(upd: &Update) -> i64 {
    i64::from(upd.id.0)
}

/// The whole handler tree, shared by long polling and the webhook.
pub fn schema() -> UpdateHandler<Box<dyn std::error::Error + Send + Sync + 'static>> {
    dptree::entry()
        .branch(Update::filter_pre_checkout_query().endpoint(payments::on_pre_checkout))
        .branch(Update::filter_shipping_query().endpoint(payments::on_shipping))
        .branch(Update::filter_callback_query().endpoint(payments::on_callback))
        .branch(
            Update::filter_message()
                .branch(
                    Message::filter_successful_payment().endpoint(payments::on_successful_payment),
                )
                .branch(
                    dptree::filter(|m: Message| {
                        matches!(m.kind, teloxide::types::MessageKind::RefundedPayment(_))
                    })
                    .endpoint(payments::on_refunded_payment),
                )
                .branch(handlers::commands())
                .endpoint(handlers::on_other_message),
        )
}

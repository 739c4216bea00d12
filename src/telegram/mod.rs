//! The Telegram adapter (teloxide): the command menu, the update handler tree, and thin
//! handlers that turn updates into use-case calls and replies.

pub mod commands;
pub mod handlers;
pub mod payments;

use crate::app::{Ctx, Person};
use crate::store::updates;
use commands::Command;
use teloxide::dispatching::{HandlerExt, UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::User;

pub type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub fn person(u: &User) -> Person {
    Person {
        id: i64::try_from(u.id.0).unwrap_or(i64::MAX),
        username: u.username.clone(),
        first_name: u.first_name.clone(),
    }
}

/// Messages carry links (group pages, receipts); previews of them would only add noise.
pub fn no_link_preview() -> teloxide::types::LinkPreviewOptions {
    teloxide::types::LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}

pub fn update_id(upd: &Update) -> i64 {
    i64::from(upd.id.0)
}

/// Drops updates already handled (Telegram redelivers; see `store::updates`).
async fn is_new(upd: Update, ctx: Ctx) -> bool {
    let id = update_id(&upd);
    let seen = match ctx.store.read().await {
        Ok(mut conn) => updates::seen(&mut conn, id).await.unwrap_or(false),
        Err(_) => false,
    };
    if seen {
        tracing::info!(update_id = id, "duplicate update ignored");
        crate::metrics::Metrics::inc(&ctx.metrics.updates_duplicate_total);
    }
    !seen
}

/// Marks an update handled once its effects are committed.
pub async fn done(ctx: &Ctx, upd: &Update) {
    let id = update_id(upd);
    crate::metrics::Metrics::inc(&ctx.metrics.updates_handled_total);
    let result = match ctx.store.read().await {
        Ok(mut conn) => updates::claim(&mut conn, id, ctx.now()).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(update_id = id, error = %e, "could not record a handled update");
    }
}

/// The whole handler tree, shared by long polling and the webhook.
pub fn schema() -> UpdateHandler<Box<dyn std::error::Error + Send + Sync + 'static>> {
    dptree::entry()
        .filter_async(is_new)
        .branch(Update::filter_pre_checkout_query().endpoint(payments::on_pre_checkout))
        .branch(Update::filter_shipping_query().endpoint(payments::on_shipping))
        .branch(Update::filter_callback_query().endpoint(payments::on_callback))
        .branch(
            Update::filter_message()
                .branch(
                    Message::filter_successful_payment().endpoint(payments::on_successful_payment),
                )
                .branch(
                    dptree::entry()
                        .filter_command::<Command>()
                        .endpoint(handlers::on_command),
                )
                .endpoint(handlers::on_other_message),
        )
}

//! Answers to a person's own update — a reply, an error, an invoice — queued in the outbox
//! as interactive rows: the worker serves them before bulk notices, within the one sending
//! budget, and waits out 429s for them. Handling an update never waits on Telegram: the
//! answer is committed here and the handler returns; the commit wakes the worker at once.
//!
//! One answer per update: the dedupe key names the chat and the update id, so an update
//! handled again (redelivered, or retried after a crash between a use case's commit and the
//! answer's) queues its answer once.

use super::purchase::InvoiceSpec;
use super::{AppError, AppResult, Ctx};
use crate::keyboard::Keyboard;
use crate::metrics::Metrics;
use crate::store::Conn;
use crate::store::outbox::{self, Channel, NewMessage, Priority};

/// The dedupe key of the answer to one update in one chat.
pub fn key(chat_id: i64, update_id: i64) -> String {
    format!("reply:{chat_id}:{update_id}")
}

/// A bot message (HTML) someone is waiting for.
pub fn message(dedupe_key: String, chat_id: i64, html: String, kb: Option<Keyboard>) -> NewMessage {
    NewMessage {
        dedupe_key,
        channel: Channel::Telegram {
            chat_id,
            keyboard: kb.map(|k| k.to_json()),
            fallback_email: None,
            invoice: None,
            document: None,
        },
        text: html,
        priority: Priority::Interactive,
    }
}

/// An invoice someone asked for; the worker sends it with `workers::outbox::telegram::invoice_request`.
pub fn invoice(dedupe_key: String, chat_id: i64, spec: &InvoiceSpec) -> AppResult<NewMessage> {
    let json = serde_json::to_string(spec)
        .map_err(|e| AppError::Other(format!("storing an invoice: {e}")))?;
    Ok(NewMessage {
        dedupe_key,
        channel: Channel::Telegram {
            chat_id,
            keyboard: None,
            fallback_email: None,
            invoice: Some(json),
            document: None,
        },
        text: spec.title.clone(),
        priority: Priority::Interactive,
    })
}

/// Queues an answer in the caller's transaction; call [`Ctx::answered`] after its commit.
pub async fn queue(conn: &mut Conn, now: i64, m: &NewMessage) -> Result<bool, sqlx::Error> {
    outbox::enqueue(conn, m, now).await
}

/// Queues an answer on its own (one statement, committed at once) and wakes the worker.
pub async fn send(ctx: &Ctx, m: &NewMessage) -> AppResult<()> {
    let mut conn = ctx.store.writer().await?;
    queue(&mut conn, ctx.now(), m).await?;
    drop(conn);
    ctx.answered();
    Ok(())
}

/// Queues the answer to `update_id` in `chat_id`.
pub async fn answer(
    ctx: &Ctx,
    update_id: i64,
    chat_id: i64,
    html: String,
    kb: Option<Keyboard>,
) -> AppResult<()> {
    send(ctx, &message(key(chat_id, update_id), chat_id, html, kb)).await
}

impl Ctx {
    /// Signals the outbox worker after a commit that queued an answer: it serves it before
    /// the bulk notices it holds.
    pub fn answered(&self) {
        Metrics::inc(&self.metrics.replies_queued_total);
        self.committed();
    }
}

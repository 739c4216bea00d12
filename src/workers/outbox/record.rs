//! Recording what an attempt came to: the row's next state in its own short transaction,
//! the follow-ups (an email fallback, "nothing was charged"), the counters and the log.

use super::{Delivery, MAX_ATTEMPTS, OutboxWorker, REPLY_GIVE_UP_SECS, REPLY_MAX_BACKOFF_SECS};
use crate::domain::UserId;
use crate::metrics::Metrics;
use crate::replies::{UserError, strip_tags};
use crate::store::outbox::{self, Channel, NewMessage, OutboxRow, Priority};
use crate::store::users;
use rand::RngExt;

impl OutboxWorker {
    /// Records what a delivery attempt came to, in its own short transaction, then counts and
    /// logs it. HTML Telegram cannot parse is sent again at once as plain text.
    pub(super) async fn record(
        &mut self,
        row: &OutboxRow,
        outcome: Delivery,
    ) -> Result<(), sqlx::Error> {
        let now = self.ctx.now();
        let outcome = give_up_late_answer(row, outcome, now);
        if let Delivery::Unparseable(e) = &outcome {
            tracing::error!(outbox_id = row.id, error = %e, "Telegram could not parse our HTML; resending as plain text");
            let plain = self.resend_plain(row).await;
            return Box::pin(self.record(row, plain)).await;
        }
        let dies = match &outcome {
            Delivery::Dead(_) => true,
            Delivery::Retry(_) => row.attempts + 1 >= MAX_ATTEMPTS,
            _ => false,
        };
        let mut tx = self.ctx.store.write().await?;
        if dies {
            tell_invoice_refused(&mut tx, row, now).await?;
        }
        self.apply(&mut tx, row, &outcome, now).await?;
        tx.commit().await?;
        if dies && is_invoice(row) {
            self.ctx.answered();
        }
        self.report(row, &outcome, dies);
        Ok(())
    }

    /// The row's next state for an attempt's outcome (not `Unparseable`, resent before).
    async fn apply(
        &mut self,
        tx: &mut crate::store::Conn,
        row: &OutboxRow,
        outcome: &Delivery,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        match outcome {
            Delivery::Sent(remote) => outbox::mark_sent(tx, row.id, remote.as_deref(), now).await,
            Delivery::Throttled { secs, whole_bot } => {
                let chat = match row.channel {
                    Channel::Telegram { chat_id, .. } if !whole_bot => Some(chat_id),
                    _ => None,
                };
                self.limiter.pause(chat, self.ms() + secs * 1_000);
                let secs = i64::try_from(*secs).unwrap_or(i64::MAX);
                outbox::retry_later(tx, row.id, now + secs, "429 Too Many Requests", false).await
            }
            Delivery::Retry(e) if row.attempts + 1 >= MAX_ATTEMPTS => {
                let why = format!("gave up after {MAX_ATTEMPTS} attempts: {e}");
                outbox::mark_dead(tx, row.id, &why).await
            }
            Delivery::Retry(e) => {
                let mut wait = backoff_secs(row.attempts + 1);
                if row.priority == Priority::Interactive {
                    wait = wait.min(REPLY_MAX_BACKOFF_SECS);
                }
                outbox::retry_later(tx, row.id, now + wait, e, true).await
            }
            Delivery::Dead(e) | Delivery::Unparseable(e) => outbox::mark_dead(tx, row.id, e).await,
            Delivery::Unreachable(e) => {
                outbox::mark_dead(tx, row.id, e).await?;
                unreachable(tx, row, now).await
            }
        }
    }

    /// Counts the outcome and logs it for the operator.
    fn report(&self, row: &OutboxRow, outcome: &Delivery, dies: bool) {
        let m = &self.ctx.metrics;
        if dies && row.priority == Priority::Interactive {
            Metrics::inc(&m.replies_given_up_total);
            tracing::error!(outbox_id = row.id, key = %row.dedupe_key, outcome = outcome.kind(), "an answer was given up");
        }
        Metrics::inc(match outcome {
            Delivery::Sent(_) => &m.outbox_sent_total,
            Delivery::Throttled { .. } => &m.telegram_429_total,
            Delivery::Retry(_) if row.attempts + 1 < MAX_ATTEMPTS => &m.outbox_retry_total,
            _ => &m.outbox_dead_total,
        });
        match outcome {
            Delivery::Sent(_) => {
                tracing::debug!(outbox_id = row.id, key = %row.dedupe_key, "delivered")
            }
            Delivery::Throttled { secs, .. } => {
                tracing::warn!(outbox_id = row.id, secs, "Telegram asked us to slow down")
            }
            other => {
                // The reason text (an SMTP reply may quote the address) stays on the row,
                // where `groupbuy outbox` shows it; the log names only its kind.
                tracing::warn!(outbox_id = row.id, key = %row.dedupe_key, outcome = other.kind(), "not delivered")
            }
        }
    }
}

/// The chat blocked the bot or is gone: it is marked unreachable, and the message goes by
/// email where there is an address for it.
async fn unreachable(
    tx: &mut crate::store::Conn,
    row: &OutboxRow,
    now: i64,
) -> Result<(), sqlx::Error> {
    let Channel::Telegram {
        chat_id,
        fallback_email,
        ..
    } = &row.channel
    else {
        return Ok(());
    };
    if *chat_id > 0 {
        users::mark_unreachable(tx, UserId::new(*chat_id)).await?;
    }
    if let Some(to) = fallback_email {
        let fallback = NewMessage {
            dedupe_key: format!("fallback:{}", row.id),
            channel: Channel::Email {
                to: to.clone(),
                subject: "A message from groupbuy".into(),
                html: None,
            },
            text: strip_tags(&row.text),
            priority: Priority::Bulk,
        };
        outbox::enqueue(tx, &fallback, now).await?;
    }
    Ok(())
}

/// Capped exponential backoff with jitter: 2 s, 4 s, … up to an hour.
pub fn backoff_secs(attempts: i64) -> i64 {
    let base = 2i64
        .saturating_pow(u32::try_from(attempts.clamp(1, 12)).unwrap_or(12))
        .min(3_600);
    base + rand::rng().random_range(0..=base / 4)
}

/// Whether the row is an invoice (a refused one answers its sender).
fn is_invoice(row: &OutboxRow) -> bool {
    matches!(
        row.channel,
        Channel::Telegram {
            invoice: Some(_),
            ..
        }
    )
}

/// An answer still throttled or failing [`REPLY_GIVE_UP_SECS`] after it was queued is given up.
fn give_up_late_answer(row: &OutboxRow, outcome: Delivery, now: i64) -> Delivery {
    let late = row.priority == Priority::Interactive && now - row.created_at >= REPLY_GIVE_UP_SECS;
    match outcome {
        Delivery::Throttled { .. } | Delivery::Retry(_) if late => Delivery::Dead(format!(
            "an answer not delivered within {REPLY_GIVE_UP_SECS} s: {outcome:?}"
        )),
        other => other,
    }
}

/// An invoice Telegram would not take: tell the person nothing was charged (as the handler
/// did when it sent invoices itself).
async fn tell_invoice_refused(
    conn: &mut crate::store::Conn,
    row: &OutboxRow,
    now: i64,
) -> Result<(), sqlx::Error> {
    let Channel::Telegram {
        chat_id,
        invoice: Some(_),
        ..
    } = &row.channel
    else {
        return Ok(());
    };
    tracing::warn!(
        outbox_id = row.id,
        chat = chat_id,
        "Telegram refused an invoice"
    );
    let m = crate::app::reply::message(
        format!("invoice-refused:{}", row.id),
        *chat_id,
        UserError::InvoiceRefused.html(),
        None,
    );
    crate::app::reply::queue(conn, now, &m).await.map(|_| ())
}

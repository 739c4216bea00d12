//! Email rows: suppressed addresses set aside, the rest sent side by side on pooled
//! connections, outcomes recorded as they come in.

use super::{Delivery, EMAIL_IN_FLIGHT, OutboxWorker};
use crate::mail::Mailer;
use crate::mail::transport::{MailError, Outgoing};
use crate::metrics::Metrics;
use crate::store::mailing;
use crate::store::outbox::{self, Channel, OutboxRow};
use std::collections::HashMap;
use tokio::task::{Id, JoinError, JoinSet};

/// Sends waiting for the server's answer, by task, with the row each one sends.
type InFlight = HashMap<Id, OutboxRow>;

impl OutboxWorker {
    /// Email rows go out side by side, up to [`EMAIL_IN_FLIGHT`] at a time, each on a pooled
    /// connection of its own: a send waits for the server's answer to the end of the message,
    /// which a server that delays its ACKs (lettre writes the body and the final dot
    /// separately, and does not set TCP_NODELAY) gives ~40 ms late, so one at a time is ~20
    /// emails a second. All are marked as being sent in one transaction first (a crash then
    /// sends them again, counted as ambiguous, as for any row marked); each outcome is
    /// recorded in its own transaction as it comes in, as for Telegram rows.
    pub(super) async fn deliver_emails(
        &mut self,
        rows: Vec<OutboxRow>,
    ) -> Result<usize, sqlx::Error> {
        if rows.is_empty() {
            return Ok(0);
        }
        let suppressed_before = rows.len();
        let rows = self.drop_suppressed(rows).await?;
        let handled = suppressed_before - rows.len();
        if rows.is_empty() {
            return Ok(handled);
        }
        self.mark_all_sending(&rows).await?;
        Ok(handled + self.send_side_by_side(rows).await?)
    }

    /// Marks every row as being sent, in one transaction.
    async fn mark_all_sending(&self, rows: &[OutboxRow]) -> Result<(), sqlx::Error> {
        let now = self.ctx.now();
        let mut tx = self.ctx.store.write().await?;
        for row in rows {
            outbox::mark_sending(&mut tx, row.id, now).await?;
        }
        tx.commit().await
    }

    /// Keeps [`EMAIL_IN_FLIGHT`] sends going until every row has an outcome.
    async fn send_side_by_side(&mut self, rows: Vec<OutboxRow>) -> Result<usize, sqlx::Error> {
        let mut waiting = rows.into_iter();
        let mut sends = JoinSet::new();
        let mut in_flight = InFlight::new();
        let mut handled = 0;
        loop {
            while sends.len() < EMAIL_IN_FLIGHT {
                let Some(row) = waiting.next() else { break };
                let unsubscribe = self.unsubscribe_url(&row);
                let (mailer, mine) = (self.mailer.clone(), row.clone());
                let task =
                    sends.spawn(async move { send_email(&mailer, &mine, unsubscribe).await });
                in_flight.insert(task.id(), row);
            }
            let Some(first) = sends.join_next_with_id().await else {
                break;
            };
            // Whatever else has finished meanwhile is recorded with it: the sent ones in one
            // transaction, the others each in their own.
            let mut finished = vec![first];
            while let Some(more) = sends.try_join_next_with_id() {
                finished.push(more);
            }
            handled += self.record_finished(finished, &mut in_flight).await?;
        }
        Ok(handled)
    }

    /// Records the finished sends: the sent ones together, the others each on its own.
    async fn record_finished(
        &mut self,
        finished: Vec<Result<(Id, Delivery), JoinError>>,
        in_flight: &mut InFlight,
    ) -> Result<usize, sqlx::Error> {
        let mut handled = 0;
        let mut sent = Vec::new();
        for done in finished {
            let (id, outcome) = match done {
                Ok((id, outcome)) => (id, outcome),
                Err(e) => (e.id(), Delivery::Retry(format!("the send failed: {e}"))),
            };
            let Some(row) = in_flight.remove(&id) else {
                continue;
            };
            handled += 1;
            if matches!(outcome, Delivery::Sent(_)) {
                crate::failpoint::hit("after_send_before_mark_sent");
                sent.push(row);
            } else {
                self.record(&row, outcome).await?;
            }
        }
        self.record_sent(&sent).await?;
        Ok(handled)
    }

    /// The one-click unsubscribe URL of an invitation, campaign or reminder; None for the
    /// mail a person's own action caused (receipts, notices) and the operator's.
    pub(super) fn unsubscribe_url(&self, row: &OutboxRow) -> Option<String> {
        match &row.channel {
            Channel::Email { to, .. } if outbox::is_bulk(&row.dedupe_key) => {
                Some(self.ctx.unsubscribe_url(to))
            }
            _ => None,
        }
    }

    /// Sets aside invitations, campaigns and reminders to addresses on the suppression list
    /// (checked again at sending: the address may have unsubscribed since it was queued);
    /// they go out never, and `groupbuy outbox` says why.
    async fn drop_suppressed(&self, rows: Vec<OutboxRow>) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let mut keep = Vec::with_capacity(rows.len());
        let mut tx = self.ctx.store.write().await?;
        for row in rows {
            let hash = match &row.channel {
                Channel::Email { to, .. } if outbox::is_bulk(&row.dedupe_key) => self
                    .ctx
                    .secrets
                    .hash(crate::secrets::Purpose::Unsubscribe, &to.to_lowercase()),
                _ => {
                    keep.push(row);
                    continue;
                }
            };
            if mailing::is_suppressed(&mut tx, &hash).await? {
                outbox::mark_dead(&mut tx, row.id, SUPPRESSED).await?;
                tracing::info!(outbox_id = row.id, "not emailed: the address unsubscribed");
            } else {
                keep.push(row);
            }
        }
        tx.commit().await?;
        Ok(keep)
    }

    /// Records emails as sent, in one transaction.
    async fn record_sent(&self, rows: &[OutboxRow]) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let now = self.ctx.now();
        let mut tx = self.ctx.store.write().await?;
        for row in rows {
            outbox::mark_sent(&mut tx, row.id, None, now).await?;
        }
        tx.commit().await?;
        for row in rows {
            Metrics::inc(&self.ctx.metrics.outbox_sent_total);
            tracing::debug!(outbox_id = row.id, key = %row.dedupe_key, "delivered");
        }
        Ok(())
    }
}

/// Why a row to a suppressed address never went out (shown by `groupbuy outbox`).
pub const SUPPRESSED: &str = "not sent: the address asked not to get these emails (unsubscribed)";

/// Sends one email row; `unsubscribe` adds RFC 8058's one-click headers.
pub(super) async fn send_email(
    mailer: &Mailer,
    row: &OutboxRow,
    unsubscribe: Option<String>,
) -> Delivery {
    let Channel::Email { to, subject, html } = &row.channel else {
        return Delivery::Dead("not an email row".into());
    };
    let out = Outgoing {
        to,
        subject,
        text: &row.text,
        html: html.as_deref(),
        message_id: message_id(row, &mailer.domain()),
        unsubscribe,
    };
    match mailer.send(&out).await {
        Ok(()) => Delivery::Sent(None),
        Err(MailError::Permanent(e)) => Delivery::Dead(e),
        Err(MailError::Temporary(e)) => Delivery::Retry(e),
    }
}

/// A Message-ID that is the same for every attempt at one outbox row.
pub fn message_id(row: &OutboxRow, domain: &str) -> String {
    let key: String = row
        .dedupe_key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
        .collect();
    format!("<gb.{}.{key}@{domain}>", row.id)
}

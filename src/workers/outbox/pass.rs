//! One pass over due rows: claim them, send the emails side by side, then each Telegram
//! row as its chat and the bot-wide pace allow, recording every outcome as it comes.

use super::{Delivery, OutboxWorker, PACE_WAIT_MS};
use crate::metrics::Metrics;
use crate::store::outbox::{self, Channel, OutboxRow, Priority};
use crate::workers::limiter::Lane;
use std::time::Duration;

/// Whether a Telegram row may go now, and in which lane, or in how many milliseconds.
enum Turn {
    Go(Lane),
    Wait(u64),
}

impl OutboxWorker {
    /// One pass over due rows. Returns how many were handled and, if some had to wait for
    /// the rate limiter, how long until the earliest may go.
    pub async fn deliver_due(&mut self) -> Result<(usize, Option<Duration>), sqlx::Error> {
        let answers_seen = self.answers_queued();
        let rows = self.claim_due().await?;
        let (emails, rows): (Vec<OutboxRow>, Vec<OutboxRow>) = rows
            .into_iter()
            .partition(|r| matches!(r.channel, Channel::Email { .. }));
        let mut handled = self.deliver_emails(emails).await?;
        let mut wait: Option<u64> = None;
        for row in rows {
            if row.priority == Priority::Bulk && self.answers_queued() != answers_seen {
                // Someone is waiting for an answer queued since this pass began: serve it
                // first (the rest of this pass stays claimed and is taken again at once).
                wait = Some(0);
                break;
            }
            match self.take_turn(&row).await {
                Turn::Go(lane) => {
                    self.deliver_one(&row, lane).await?;
                    handled += 1;
                }
                Turn::Wait(ms) => wait = Some(wait.map_or(ms, |w| w.min(ms))),
            }
        }
        self.limiter.trim(self.ms());
        Ok((handled, wait.map(Duration::from_millis)))
    }

    /// Claims up to 200 due rows for this instance, counting sends an instance died during.
    async fn claim_due(&mut self) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let mut tx = self.ctx.store.write().await?;
        let (rows, interrupted) = outbox::claim(
            &mut tx,
            self.ctx.store.backend(),
            &self.ctx.instance,
            self.ctx.now(),
            200,
        )
        .await?;
        tx.commit().await?;
        if interrupted > 0 {
            self.ctx
                .metrics
                .outbox_ambiguous_total
                .fetch_add(interrupted, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                sends = interrupted,
                "sends were in flight when an instance died; they go out again and may arrive twice"
            );
        }
        Ok(rows)
    }

    /// Takes the row's chat's turn from the limiter, or says how long until it comes.
    async fn take_turn(&mut self, row: &OutboxRow) -> Turn {
        let Channel::Telegram { chat_id, .. } = row.channel else {
            return Turn::Go(Lane::Free);
        };
        let mut now = self.ms();
        let (mut ready, mut lane) = self.ready_at(row, chat_id, now);
        if ready > now
            && ready - now <= PACE_WAIT_MS
            && self.limiter.chat_ready_at(chat_id, now) <= now
        {
            // Only the bot-wide pace holds this row, for a moment: wait for it here.
            // Ending the pass instead costs a new claim each time and lets time the
            // pace allowed go unused, so a fan-out ran ~10% slower than the limit.
            tokio::time::sleep(Duration::from_millis(ready - now)).await;
            now = self.ms();
            (ready, lane) = self.ready_at(row, chat_id, now);
        }
        if ready > now {
            return Turn::Wait(ready - now);
        }
        self.limiter.take_in(chat_id, now, lane);
        Turn::Go(lane)
    }

    /// Marks the row as being sent, sends it and records the outcome.
    async fn deliver_one(&mut self, row: &OutboxRow, lane: Lane) -> Result<(), sqlx::Error> {
        {
            let mut conn = self.ctx.store.writer().await?;
            outbox::mark_sending(&mut conn, row.id, self.ctx.now()).await?;
        }
        let outcome = self.attempt(row, lane).await;
        if let Channel::Telegram { chat_id, .. } = &row.channel {
            // Counted from its answer: whatever delayed it on the way (the write above on
            // a busy disk) cannot squeeze it into a window with later sends.
            let answered = self.ms();
            self.limiter.completed_in(*chat_id, answered, lane);
        }
        if lane == Lane::Paid && matches!(outcome, Delivery::Sent(_)) {
            Metrics::inc(&self.ctx.metrics.paid_broadcast_total);
        }
        if matches!(outcome, Delivery::Sent(_)) {
            // Sent but not yet recorded: a crash here sends this row again after restart.
            crate::failpoint::hit("after_send_before_mark_sent");
        }
        self.record(row, outcome).await
    }

    /// How many answers were queued so far (by this process): a change means someone waits.
    fn answers_queued(&self) -> u64 {
        self.ctx
            .metrics
            .replies_queued_total
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// When this row may go to its chat, and in which lane: answers within the free rate,
    /// bulk notices also above it when paid broadcast is on.
    fn ready_at(&mut self, row: &OutboxRow, chat_id: i64, now: u64) -> (u64, Lane) {
        match row.priority {
            Priority::Interactive => (self.limiter.ready_at(chat_id, now), Lane::Free),
            Priority::Bulk => self.limiter.bulk_ready_at(chat_id, now),
        }
    }
}

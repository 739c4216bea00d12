//! Delivers the outbox: at least once, never holding a database lock across a network call,
//! never dropping a row whose send failed, within Telegram's limits.
//!
//! Each pass reads due rows, sends those whose chat may receive now (see [`Limiter`]) and
//! records each outcome in its own short transaction. Failures are classified:
//! 429 → wait `retry_after` for that chat, not counted as an attempt; blocked/deactivated →
//! the user is marked unreachable and the message goes by email when we have one;
//! "can't parse entities" → resent as plain text; other errors → capped exponential backoff
//! with jitter, then a dead letter with the reason.
//!
//! Answers to a person's own update (replies, errors, invoices: `Priority::Interactive`) are
//! taken first, and a pass over bulk notices ends as soon as an answer is queued, so the
//! answer is served next. An answer keeps its place through 429s and failures for up to
//! [`REPLY_GIVE_UP_SECS`]; after that it is given up, logged and counted
//! (`replies_given_up_total`). With paid broadcast on, a bulk notice that the free rate
//! cannot take at once goes with `allow_paid_broadcast` (see [`Limiter::bulk_ready_at`]).

mod email;
mod pass;
mod record;
mod telegram;

use super::limiter::Limiter;
use crate::app::Ctx;
use crate::mail::Mailer;
use crate::shutdown::Shutdown;
use crate::store::outbox;
use std::time::{Duration, Instant};
use teloxide::prelude::*;

/// After this many failed attempts a row becomes a dead letter.
pub const MAX_ATTEMPTS: i64 = 12;
/// An answer not delivered this long after it was queued is given up (logged and counted):
/// the person has long stopped waiting, and a late answer would only confuse.
pub const REPLY_GIVE_UP_SECS: i64 = 600;
/// Longest backoff between attempts at an answer (bulk notices back off up to an hour).
const REPLY_MAX_BACKOFF_SECS: i64 = 30;
/// Longest wait for the bot-wide pace inside a pass (one gap at 30/s is 34 ms).
const PACE_WAIT_MS: u64 = 100;
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Emails sent side by side (the SMTP pool keeps as many connections).
pub use crate::mail::transport::IN_FLIGHT as EMAIL_IN_FLIGHT;

/// Delivers the outbox: one pass at a time ([`OutboxWorker::deliver_due`]) in a thin loop.
pub struct OutboxWorker {
    ctx: Ctx,
    bot: Bot,
    mailer: Mailer,
    limiter: Limiter,
    epoch: Instant,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered; Telegram's message id when there is one.
    Sent(Option<String>),
    /// Wait this long before trying this chat again; not the row's fault.
    Throttled { secs: u64, whole_bot: bool },
    /// Failed for now: try again after a backoff.
    Retry(String),
    /// Failed for good: the row becomes a dead letter with this reason.
    Dead(String),
    /// The recipient blocked the bot or is gone.
    Unreachable(String),
    /// Telegram could not parse our HTML: send the same words as plain text.
    Unparseable(String),
}

impl Delivery {
    /// The outcome's name, without the details (which may carry an address).
    pub fn kind(&self) -> &'static str {
        match self {
            Delivery::Sent(_) => "sent",
            Delivery::Throttled { .. } => "throttled",
            Delivery::Retry(_) => "retry",
            Delivery::Dead(_) => "dead",
            Delivery::Unreachable(_) => "unreachable",
            Delivery::Unparseable(_) => "unparseable",
        }
    }
}

impl OutboxWorker {
    /// A worker sending with `bot` and `mailer` at the configured rates.
    pub fn new(ctx: Ctx, bot: Bot, mailer: Mailer) -> Self {
        let mut limiter = Limiter::with_rate(0, ctx.config.telegram_rate_per_second);
        if ctx.config.paid_broadcast {
            limiter = limiter.with_paid_rate(ctx.config.paid_broadcast_rate_per_second);
        }
        Self {
            ctx,
            bot,
            mailer,
            limiter,
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the worker started: the limiter's clock.
    fn ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Delivers until shutdown, sleeping until the next row is due, the limiter allows the
    /// next send, or a commit pokes us.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        let wake = self.ctx.outbox_wake.clone();
        loop {
            if shutdown.is_triggered() {
                return;
            }
            let pause = match self.deliver_due().await {
                Ok((_, Some(wait))) => wait,
                Ok((handled, None)) if handled > 0 => Duration::ZERO,
                Ok(_) => self.until_next_due().await,
                Err(e) => {
                    tracing::error!(error = %e, "outbox pass failed; retrying shortly");
                    Duration::from_secs(1)
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = wake.notified() => {}
                _ = shutdown.wait() => return,
            }
        }
    }

    /// How long until the next pending row is due (at most a minute).
    async fn until_next_due(&self) -> Duration {
        let next = match self.ctx.store.read().await {
            Ok(mut conn) => outbox::next_due_at(&mut conn).await.ok().flatten(),
            Err(_) => None,
        };
        match next {
            Some(at) => Duration::from_secs(
                u64::try_from((at - self.ctx.now()).max(0))
                    .unwrap_or(60)
                    .clamp(0, 60),
            ),
            None => Duration::from_secs(60),
        }
    }
}

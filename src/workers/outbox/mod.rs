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

use super::limiter::{Lane, Limiter};
use crate::app::Ctx;
use crate::app::purchase::InvoiceSpec;
use crate::keyboard::{Action, Keyboard};
use crate::mail::Mailer;
use crate::mail::transport::{MailError, Outgoing};
use crate::metrics::Metrics;
use crate::replies::{UserError, strip_tags};
use crate::shutdown::Shutdown;
use crate::store::outbox::{self, Channel, NewMessage, OutboxRow, Priority};
use crate::store::{mailing, users};
use crate::telegram::payments::invoice_request;
use rand::RngExt;
use std::time::{Duration, Instant};
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, ParseMode};
use teloxide::{ApiError, RequestError};

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
    Sent(Option<String>),
    /// Wait this long before trying this chat again; not the row's fault.
    Throttled {
        secs: u64,
        whole_bot: bool,
    },
    Retry(String),
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

pub fn to_markup(kb: &Keyboard) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(kb.rows.iter().map(|row| {
        row.iter()
            .filter_map(|b| match &b.action {
                Action::Callback(data) => {
                    Some(InlineKeyboardButton::callback(b.text.clone(), data.clone()))
                }
                Action::Url(u) => u
                    .parse()
                    .ok()
                    .map(|u| InlineKeyboardButton::url(b.text.clone(), u)),
            })
            .collect::<Vec<_>>()
    }))
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
        users::mark_unreachable(tx, *chat_id).await?;
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

impl OutboxWorker {
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

    fn ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One pass over due rows. Returns how many were handled and, if some had to wait for
    /// the rate limiter, how long until the earliest may go.
    pub async fn deliver_due(&mut self) -> Result<(usize, Option<Duration>), sqlx::Error> {
        let answers_seen = self.answers_queued();
        let rows = {
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
            rows
        };
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
            let mut lane = Lane::Free;
            if let Channel::Telegram { chat_id, .. } = row.channel {
                let mut now = self.ms();
                let mut ready;
                (ready, lane) = self.ready_at(&row, chat_id, now);
                if ready > now
                    && ready - now <= PACE_WAIT_MS
                    && self.limiter.chat_ready_at(chat_id, now) <= now
                {
                    // Only the bot-wide pace holds this row, for a moment: wait for it here.
                    // Ending the pass instead costs a new claim each time and lets time the
                    // pace allowed go unused, so a fan-out ran ~10% slower than the limit.
                    tokio::time::sleep(Duration::from_millis(ready - now)).await;
                    now = self.ms();
                    (ready, lane) = self.ready_at(&row, chat_id, now);
                }
                if ready > now {
                    wait = Some(wait.map_or(ready - now, |w| w.min(ready - now)));
                    continue;
                }
                self.limiter.take_in(chat_id, now, lane);
            }
            {
                let mut conn = self.ctx.store.writer().await?;
                outbox::mark_sending(&mut conn, row.id, self.ctx.now()).await?;
            }
            let outcome = self.attempt(&row, lane).await;
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
            self.record(&row, outcome).await?;
            handled += 1;
        }
        self.limiter.trim(self.ms());
        Ok((handled, wait.map(Duration::from_millis)))
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

    /// Email rows go out side by side, up to [`EMAIL_IN_FLIGHT`] at a time, each on a pooled
    /// connection of its own: a send waits for the server's answer to the end of the message,
    /// which a server that delays its ACKs (lettre writes the body and the final dot
    /// separately, and does not set TCP_NODELAY) gives ~40 ms late, so one at a time is ~20
    /// emails a second. All are marked as being sent in one transaction first (a crash then
    /// sends them again, counted as ambiguous, as for any row marked); each outcome is
    /// recorded in its own transaction as it comes in, as for Telegram rows.
    async fn deliver_emails(&mut self, rows: Vec<OutboxRow>) -> Result<usize, sqlx::Error> {
        if rows.is_empty() {
            return Ok(0);
        }
        let suppressed_before = rows.len();
        let rows = self.drop_suppressed(rows).await?;
        let mut handled = suppressed_before - rows.len();
        if rows.is_empty() {
            return Ok(handled);
        }
        {
            let now = self.ctx.now();
            let mut tx = self.ctx.store.write().await?;
            for row in &rows {
                outbox::mark_sending(&mut tx, row.id, now).await?;
            }
            tx.commit().await?;
        }
        let mut waiting = rows.into_iter();
        let mut sends = tokio::task::JoinSet::new();
        let mut in_flight = std::collections::HashMap::new();
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
        }
        Ok(handled)
    }

    /// The one-click unsubscribe URL of an invitation, campaign or reminder; None for the
    /// mail a person's own action caused (receipts, notices) and the operator's.
    fn unsubscribe_url(&self, row: &OutboxRow) -> Option<String> {
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

    async fn attempt(&self, row: &OutboxRow, lane: Lane) -> Delivery {
        match &row.channel {
            Channel::Telegram {
                chat_id,
                invoice: Some(spec),
                ..
            } => self.send_invoice(*chat_id, spec).await,
            Channel::Telegram {
                chat_id, keyboard, ..
            } => {
                self.send_telegram(*chat_id, &row.text, keyboard.as_deref(), true, lane)
                    .await
            }
            Channel::Email { .. } => {
                let unsubscribe = self.unsubscribe_url(row);
                send_email(&self.mailer, row, unsubscribe).await
            }
        }
    }

    async fn send_telegram(
        &self,
        chat_id: i64,
        text: &str,
        keyboard: Option<&str>,
        html: bool,
        lane: Lane,
    ) -> Delivery {
        let mut req = self
            .bot
            .send_message(ChatId(chat_id), text)
            .link_preview_options(crate::telegram::no_link_preview());
        if html {
            req = req.parse_mode(ParseMode::Html);
        }
        if let Some(kb) = keyboard.and_then(Keyboard::from_json) {
            req = req.reply_markup(to_markup(&kb));
        }
        if lane == Lane::Paid {
            req = req.allow_paid_broadcast(true);
        }
        self.outcome(tokio::time::timeout(SEND_TIMEOUT, req.send()).await)
    }

    /// Sends an invoice row (its spec as queued by `app::reply::invoice`).
    async fn send_invoice(&self, chat_id: i64, spec: &str) -> Delivery {
        let spec: InvoiceSpec = match serde_json::from_str(spec) {
            Ok(s) => s,
            Err(e) => return Delivery::Dead(format!("an invoice this version cannot read: {e}")),
        };
        let req = invoice_request(&self.bot, &self.ctx, ChatId(chat_id), &spec);
        let outcome = self.outcome(tokio::time::timeout(SEND_TIMEOUT, req.send()).await);
        if matches!(outcome, Delivery::Sent(_)) {
            tracing::info!(chat = chat_id, "invoice sent");
        }
        match outcome {
            Delivery::Unparseable(e) => Delivery::Dead(e),
            other => other,
        }
    }

    fn outcome(
        &self,
        answer: Result<Result<teloxide::types::Message, RequestError>, tokio::time::error::Elapsed>,
    ) -> Delivery {
        match answer {
            Err(_) => {
                // It may have arrived: the retry can show it twice.
                Metrics::inc(&self.ctx.metrics.outbox_ambiguous_total);
                Delivery::Retry("Telegram did not answer within 30 s".into())
            }
            Ok(Ok(msg)) => Delivery::Sent(Some(msg.id.0.to_string())),
            Ok(Err(e)) => classify(e),
        }
    }

    /// Records what a delivery attempt came to, in its own short transaction, then counts and
    /// logs it. HTML Telegram cannot parse is sent again at once as plain text.
    async fn record(&mut self, row: &OutboxRow, outcome: Delivery) -> Result<(), sqlx::Error> {
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

    /// The same words as plain text, sent now.
    async fn resend_plain(&mut self, row: &OutboxRow) -> Delivery {
        let Channel::Telegram {
            chat_id, keyboard, ..
        } = &row.channel
        else {
            return Delivery::Dead("HTML in an email row".into());
        };
        let plain = strip_tags(&row.text);
        let sent = self
            .send_telegram(*chat_id, &plain, keyboard.as_deref(), false, Lane::Free)
            .await;
        match sent {
            Delivery::Unparseable(e) => Delivery::Dead(e),
            other => other,
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

/// Why a row to a suppressed address never went out (shown by `groupbuy outbox`).
pub const SUPPRESSED: &str = "not sent: the address asked not to get these emails (unsubscribed)";

/// Sends one email row; `unsubscribe` adds RFC 8058's one-click headers.
async fn send_email(mailer: &Mailer, row: &OutboxRow, unsubscribe: Option<String>) -> Delivery {
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

fn classify(e: RequestError) -> Delivery {
    match e {
        RequestError::RetryAfter(s) => Delivery::Throttled {
            secs: u64::from(s.seconds().max(1)),
            whole_bot: false,
        },
        RequestError::Api(
            ApiError::BotBlocked
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel,
        ) => Delivery::Unreachable(e.to_string()),
        RequestError::Api(
            ApiError::CantInitiateConversation
            | ApiError::ChatNotFound
            | ApiError::CantTalkWithBots,
        ) => Delivery::Unreachable(e.to_string()),
        RequestError::Api(ApiError::Unknown(ref s)) if s.contains("can't parse entities") => {
            Delivery::Unparseable(s.clone())
        }
        RequestError::Api(ApiError::Unknown(ref s))
            if s.starts_with("Forbidden: bot can't send messages") =>
        {
            // Seen to clear after minutes (RELIABILITY.md §1.5): retry, do not mark blocked.
            Delivery::Retry(s.clone())
        }
        RequestError::Api(ApiError::InvalidToken) => Delivery::Retry(e.to_string()),
        RequestError::Api(_) => Delivery::Dead(e.to_string()),
        RequestError::MigrateToChatId(_) => Delivery::Dead(e.to_string()),
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            Delivery::Retry(e.to_string())
        }
    }
}

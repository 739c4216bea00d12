//! How updates get in: long polling or the webhook store each update in the inbox *before*
//! acknowledging it, and the processor handles inbox rows through the handler tree.
//!
//! - Nothing is lost: the polling offset moves past an update (confirming it to Telegram)
//!   only after the update is committed to the inbox; the webhook answers 200 only then.
//!   A crash after that leaves the row pending and it is handled on the next start.
//! - Nothing is doubled: the inbox's primary key drops a redelivered update id, and use
//!   cases that change state claim the update id inside their own transaction, so an update
//!   handled again after a crash changes nothing twice.
//! - Order: updates of one chat are handled one at a time, in id order; chats run side by
//!   side on [`SHARDS`] tasks. Pre-checkout queries skip the queue: Telegram wants the answer
//!   within 10 s.

mod poll;

pub use poll::poll_when_leader;

use crate::app::Ctx;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::inbox;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use teloxide::prelude::*;
use teloxide::types::{Me, UpdateKind};

/// Chats handled side by side.
pub const SHARDS: usize = 8;
/// Seconds a `getUpdates` call waits for news.
pub const POLL_TIMEOUT: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the body is not a Telegram update: {0}")]
    NotAnUpdate(#[from] serde_json::Error),
    #[error("the database refused the update: {0}")]
    Db(#[from] sqlx::Error),
}

/// What receives updates (the poller or the webhook): answers pre-checkout queries on the
/// spot and stores every update in the inbox.
#[derive(Clone)]
pub struct Intake {
    pub bot: Bot,
    pub me: Me,
    pub ctx: Ctx,
    handler: Arc<Handler>,
}

impl Intake {
    pub fn new(bot: Bot, me: Me, ctx: Ctx) -> Self {
        Self {
            bot,
            me,
            ctx,
            handler: Arc::new(super::schema()),
        }
    }

    /// Takes one update as received. A pre-checkout query is answered at once, even while a
    /// long write holds the database (the answer only reads); it has no lasting effect, so it
    /// is stored only to recognise a redelivery.
    pub async fn take(&self, update: Update, body: &str) -> Result<bool, sqlx::Error> {
        let id = i64::from(update.id.0);
        if matches!(update.kind, UpdateKind::PreCheckoutQuery(_)) {
            let this = self.clone();
            tokio::spawn(async move {
                handle(&this.bot, &this.me, &this.ctx, &this.handler, update).await
            });
        }
        accept(&self.ctx, id, body).await
    }

    /// Parses and takes a webhook body.
    pub async fn take_raw(&self, body: &str) -> Result<bool, IngestError> {
        let update: Update = serde_json::from_str(body)?;
        Ok(self.take(update, body).await?)
    }
}

/// Stores one update (as received) in the inbox. Returns false for a redelivery.
pub async fn accept(ctx: &Ctx, update_id: i64, body: &str) -> Result<bool, sqlx::Error> {
    let mut conn = ctx.store.writer().await?;
    let fresh = inbox::accept(&mut conn, update_id, body, ctx.now()).await?;
    drop(conn);
    accepted(ctx, update_id, fresh);
    Ok(fresh)
}

fn accepted(ctx: &Ctx, update_id: i64, fresh: bool) {
    if fresh {
        ctx.inbox_wake.notify_one();
    } else {
        Metrics::inc(&ctx.metrics.updates_duplicate_total);
        tracing::info!(update_id, "duplicate update ignored");
    }
}

/// Which queue an update belongs to: its chat, or its sender.
fn shard_of(u: &Update) -> usize {
    let key = u
        .chat()
        .map(|c| c.id.0)
        .or_else(|| u.from().map(|f| i64::try_from(f.id.0).unwrap_or(0)))
        .unwrap_or(0);
    usize::try_from(key.unsigned_abs() % SHARDS as u64).unwrap_or(0)
}

/// Takes the next unhandled updates for this instance.
async fn claim(ctx: &Ctx) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let mut tx = ctx.store.write().await?;
    let rows = inbox::claim(&mut tx, ctx.store.backend(), &ctx.instance, ctx.now(), 500).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Handles pending inbox rows until shutdown; finishes the update in hand before stopping.
pub async fn process(bot: Bot, me: Me, ctx: Ctx, shutdown: Shutdown) {
    let dispatch = Dispatch {
        bot,
        me,
        ctx: ctx.clone(),
        handler: Arc::new(super::schema()),
    };
    let in_flight: Mutex<HashSet<i64>> = Mutex::default();
    let (done, handled) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let marker = tokio::spawn(mark_handled(ctx.clone(), handled));
    let (queues, workers) = start_shards(&dispatch, &shutdown, &done);
    drop(done);
    let mut stop = shutdown.clone();
    loop {
        if stop.is_triggered() {
            break;
        }
        let rows = claim(&ctx).await;
        let rows = rows.unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading the inbox failed");
            Vec::new()
        });
        forget_finished(&in_flight, &rows);
        route(&ctx, &in_flight, &queues, rows).await;
        tokio::select! {
            _ = ctx.inbox_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.wait() => {}
        }
    }
    drop(queues);
    for w in workers {
        let _ = w.await;
    }
    let _ = marker.await;
}

/// A shard's queue: an update id and the update.
type Queue = tokio::sync::mpsc::Sender<(i64, Update)>;

/// Starts [`SHARDS`] tasks, each handling its chats' updates in order; returns their queues.
fn start_shards(
    dispatch: &Dispatch,
    shutdown: &Shutdown,
    done: &tokio::sync::mpsc::UnboundedSender<i64>,
) -> (Vec<Queue>, Vec<tokio::task::JoinHandle<()>>) {
    let mut queues = Vec::with_capacity(SHARDS);
    let mut workers = Vec::with_capacity(SHARDS);
    for _ in 0..SHARDS {
        let (tx, rx) = tokio::sync::mpsc::channel::<(i64, Update)>(1_024);
        let shard = Shard {
            rx,
            again: tx.clone(),
            dispatch: dispatch.clone(),
            shutdown: shutdown.clone(),
            done: done.clone(),
        };
        queues.push(tx);
        workers.push(tokio::spawn(shard.run()));
    }
    (queues, workers)
}

/// Ids stay marked until a read no longer shows them pending: a row read just before a
/// worker marked it handled is then still recognised as taken.
fn forget_finished(in_flight: &Mutex<HashSet<i64>>, rows: &[(i64, String)]) {
    if let Ok(mut taken) = in_flight.lock() {
        let pending: HashSet<i64> = rows.iter().map(|(id, _)| *id).collect();
        taken.retain(|id| pending.contains(id));
    }
}

/// Sends each row not already taken to its chat's shard. Rows that are not updates, and
/// pre-checkout queries (answered on arrival), are marked handled here.
async fn route(
    ctx: &Ctx,
    in_flight: &Mutex<HashSet<i64>>,
    queues: &[Queue],
    rows: Vec<(i64, String)>,
) {
    for (id, body) in rows {
        if !in_flight.lock().map(|mut s| s.insert(id)).unwrap_or(false) {
            continue;
        }
        let update: Update = match serde_json::from_str(&body) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(update_id = id, error = %e, "an inbox row is not an update; skipping it");
                finish(ctx, id).await;
                continue;
            }
        };
        if matches!(update.kind, UpdateKind::PreCheckoutQuery(_)) {
            // Answered on arrival by the intake (Telegram waits at most 10 s).
            finish(ctx, id).await;
            continue;
        }
        if queues[shard_of(&update)].send((id, update)).await.is_err() {
            break;
        }
    }
}

/// Marks handled updates in batches: whatever the shards finished while the last batch was
/// being written goes in the next transaction (one commit for many updates). An update
/// handled but not yet marked when the process dies is handled again on the next start,
/// where the use case's own claim of its update id makes that a no-op.
async fn mark_handled(ctx: Ctx, mut handled: tokio::sync::mpsc::UnboundedReceiver<i64>) {
    let mut ids = Vec::new();
    while handled.recv_many(&mut ids, 1_000).await > 0 {
        let now = ctx.now();
        let marked = async {
            let mut tx = ctx.store.write().await?;
            for id in &ids {
                inbox::mark_handled(&mut tx, *id, now).await?;
            }
            tx.commit().await
        };
        if let Err(e) = marked.await {
            tracing::error!(updates = ids.len(), error = %e, "could not mark updates handled; they will be handled again");
        }
        ids.clear();
    }
}

type Handler =
    teloxide::dispatching::UpdateHandler<Box<dyn std::error::Error + Send + Sync + 'static>>;

/// What handling an update needs: the bot, who it is, the use cases and the handler tree.
#[derive(Clone)]
struct Dispatch {
    bot: Bot,
    me: Me,
    ctx: Ctx,
    handler: Arc<Handler>,
}

impl Dispatch {
    /// Handles one update in a task of its own, so a panic in one handler fails that
    /// update, not the shard.
    async fn isolated(&self, id: i64, update: Update) -> bool {
        let d = self.clone();
        let task =
            tokio::spawn(async move { handle(&d.bot, &d.me, &d.ctx, &d.handler, update).await });
        task.await.unwrap_or_else(|e| {
            tracing::error!(update_id = id, error = %e, "a handler panicked");
            false
        })
    }
}

/// One shard: its queue, the way back into it for retries, and where handled ids go.
struct Shard {
    rx: tokio::sync::mpsc::Receiver<(i64, Update)>,
    again: Queue,
    dispatch: Dispatch,
    shutdown: Shutdown,
    done: tokio::sync::mpsc::UnboundedSender<i64>,
}

impl Shard {
    /// Handles the shard's updates one at a time until shutdown or the queue closes.
    async fn run(mut self) {
        // Failed attempts per update still being retried.
        let mut failures: std::collections::HashMap<i64, u32> = std::collections::HashMap::new();
        loop {
            let next = tokio::select! {
                n = self.rx.recv() => n,
                _ = self.shutdown.wait() => None,
            };
            let Some((id, update)) = next else { return };
            let payment = is_payment(&update);
            let ok = self.dispatch.isolated(id, update.clone()).await;
            let tries = if ok {
                0
            } else {
                failures.get(&id).copied().unwrap_or(0) + 1
            };
            // A payment is never given up (the money was taken); anything else after 3 tries.
            if ok || (!payment && tries >= 3) {
                failures.remove(&id);
                self.done_with(id, ok, tries).await;
                continue;
            }
            failures.insert(id, tries);
            self.retry_later(id, update, tries, payment);
        }
    }

    /// Hands a handled (or given up) update to the marker, or marks it here if that is gone.
    async fn done_with(&self, id: i64, ok: bool, tries: u32) {
        let ctx = &self.dispatch.ctx;
        if !ok {
            Metrics::inc(&ctx.metrics.updates_given_up_total);
            tracing::error!(
                update_id = id,
                tries,
                "giving up on an update that keeps failing"
            );
        }
        if self.done.send(id).is_err() {
            finish(ctx, id).await;
        }
    }

    /// Puts a failed update back in the queue after a backoff (2 s, 4 s, … up to 64 s).
    fn retry_later(&self, id: i64, update: Update, tries: u32, payment: bool) {
        let wait = Duration::from_secs(2u64.saturating_pow(tries.min(6)));
        tracing::warn!(
            update_id = id,
            tries,
            wait_secs = wait.as_secs(),
            payment,
            "update failed; trying again later"
        );
        let again = self.again.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            // Closed at shutdown: the update then stays pending for the next start.
            let _ = again.send((id, update)).await;
        });
    }
}

fn is_payment(u: &Update) -> bool {
    matches!(&u.kind, UpdateKind::Message(m) if m.successful_payment().is_some())
}

/// Runs one update through the handler tree; false when a handler failed.
async fn handle(bot: &Bot, me: &Me, ctx: &Ctx, handler: &Handler, update: Update) -> bool {
    let id = update.id.0;
    if let UpdateKind::Error(raw) = &update.kind {
        Metrics::inc(&ctx.metrics.errors_total);
        // Not the raw text: it may carry names, addresses and payloads (the inbox keeps it).
        tracing::error!(
            update_id = id,
            bytes = raw.to_string().len(),
            "an update this version of the bot cannot read; skipped"
        );
    }
    let deps = dptree::deps![bot.clone(), me.clone(), ctx.clone(), update];
    let ok = match handler.dispatch(deps).await {
        std::ops::ControlFlow::Break(Ok(())) | std::ops::ControlFlow::Continue(_) => true,
        std::ops::ControlFlow::Break(Err(e)) => {
            Metrics::inc(&ctx.metrics.errors_total);
            tracing::error!(update_id = id, error = %e, "handling an update failed");
            false
        }
    };
    Metrics::inc(&ctx.metrics.updates_handled_total);
    ok
}

async fn finish(ctx: &Ctx, id: i64) {
    let marked = match ctx.store.writer().await {
        Ok(mut conn) => inbox::mark_handled(&mut conn, id, ctx.now()).await,
        Err(e) => Err(e),
    };
    if let Err(e) = marked {
        tracing::error!(update_id = id, error = %e, "could not mark an update handled; it will be handled again");
    }
}

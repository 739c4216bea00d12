//! Long polling: fetch, store in the inbox, then confirm by asking from the next offset.
//! One instance polls at a time (the polling lock); the others wait to take over.

use super::{Intake, POLL_TIMEOUT, accepted, handle};
use crate::shutdown::Shutdown;
use crate::store::{inbox, locks};
use std::time::Duration;
use teloxide::prelude::*;
use teloxide::types::UpdateKind;

/// Long polling on one instance at a time: the instance holding the polling lock polls; the
/// others try again every few seconds and take over when the holder dies.
pub async fn poll_when_leader(intake: Intake, mut shutdown: Shutdown) {
    loop {
        match locks::try_take(&intake.ctx.store, locks::POLLING).await {
            Ok(Some(mut held)) => {
                tracing::info!(instance = %intake.ctx.instance, "this instance polls Telegram");
                poll(intake.clone(), shutdown.clone(), &mut held).await;
                held.release().await;
            }
            Ok(None) => tracing::debug!("another instance polls Telegram"),
            Err(e) => tracing::warn!(error = %e, "could not ask for the polling lock"),
        }
        if shutdown.is_triggered() {
            return;
        }
        pause(&mut shutdown, Duration::from_secs(5)).await;
        if shutdown.is_triggered() {
            return;
        }
    }
}

/// Long polling: fetch, store, then confirm by asking from the next offset. Returns at
/// shutdown, or when the polling lock was lost.
pub async fn poll(intake: Intake, mut shutdown: Shutdown, held: &mut locks::Held) {
    let bot = intake.bot.clone();
    let mut offset: Option<i32> = None;
    let mut failures: u32 = 0;
    loop {
        let mut req = bot.get_updates().timeout(POLL_TIMEOUT);
        if let Some(o) = offset {
            req = req.offset(o);
        }
        // A silent stall of the connection must not stop the bot (RELIABILITY T-TG-14).
        let watchdog = Duration::from_secs(u64::from(POLL_TIMEOUT) + 30);
        let batch = tokio::select! {
            r = tokio::time::timeout(watchdog, req.send()) => r,
            _ = shutdown.wait() => break,
        };
        match batch {
            Ok(Ok(updates)) => {
                failures = 0;
                match store_batch(&intake, updates).await {
                    Ok(next) => offset = next.or(offset),
                    Err(e) => {
                        // Not stored: do not confirm; the same batch comes again.
                        tracing::error!(error = %e, "could not store updates; asking again");
                        pause(&mut shutdown, Duration::from_secs(1)).await;
                    }
                }
            }
            Ok(Err(e)) => {
                failures += 1;
                let wait = match &e {
                    teloxide::RequestError::RetryAfter(s) => s.duration(),
                    _ => Duration::from_secs(u64::from(failures.min(5)) * 2),
                };
                tracing::warn!(error = %e, wait_secs = wait.as_secs(), "getUpdates failed");
                pause(&mut shutdown, wait).await;
            }
            Err(_) => tracing::warn!("getUpdates stalled past its timeout; polling again"),
        }
        if shutdown.is_triggered() {
            break;
        }
        if !held.still_held().await {
            tracing::warn!("lost the polling lock; stopping polling here");
            break;
        }
    }
    // Confirm what was stored, so a restart is not served the same updates again.
    if let Some(o) = offset {
        let confirm = bot.get_updates().offset(o).timeout(0).limit(1);
        if let Err(e) = tokio::time::timeout(Duration::from_secs(5), confirm.send()).await {
            tracing::warn!(error = %e, "final offset confirmation timed out");
        }
    }
}

async fn pause(shutdown: &mut Shutdown, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.wait() => {}
    }
}

/// Stores every update of a batch in one transaction (one commit, not one per update);
/// returns the offset that confirms them. Pre-checkout queries are answered on arrival.
async fn store_batch(intake: &Intake, updates: Vec<Update>) -> Result<Option<i32>, sqlx::Error> {
    let mut next = None;
    let mut rows = Vec::with_capacity(updates.len());
    for u in updates {
        let body = serde_json::to_string(&u).unwrap_or_default();
        let after = i32::try_from(u.id.0).unwrap_or(i32::MAX).saturating_add(1);
        next = Some(next.map_or(after, |n: i32| n.max(after)));
        let id = i64::from(u.id.0);
        if matches!(u.kind, UpdateKind::PreCheckoutQuery(_)) {
            let this = intake.clone();
            tokio::spawn(async move {
                handle(&this.bot, &this.me, &this.ctx, &this.handler, u).await;
            });
        }
        rows.push((id, body));
    }
    let ctx = &intake.ctx;
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let mut fresh = Vec::with_capacity(rows.len());
    for (id, body) in &rows {
        fresh.push(inbox::accept(&mut tx, *id, body, now).await?);
    }
    tx.commit().await?;
    for ((id, _), f) in rows.iter().zip(fresh) {
        accepted(ctx, *id, f);
    }
    Ok(next)
}

//! Settles groups whose key expired (and any filled group a crash left open): sleeps until
//! the next expiry, the configured interval, or a poke.

use crate::app::Ctx;
use crate::app::settle::sweep;
use crate::shutdown::Shutdown;
use crate::store::groups;
use std::time::Duration;

pub async fn run(ctx: Ctx, mut shutdown: Shutdown) {
    let wake = ctx.sweep_wake.clone();
    let interval = ctx.config.sweep_interval_secs;
    loop {
        // One instance sweeps at a time (settlement itself is safe anyway: each group's
        // status moves from open once, under its row lock).
        match crate::store::locks::try_take(&ctx.store, crate::store::locks::SWEEP).await {
            Ok(Some(held)) => {
                match sweep(&ctx).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(settled = n, "sweep settled expired groups"),
                    Err(e) => tracing::error!(error = %e, "settlement sweep failed"),
                }
                held.release().await;
            }
            Ok(None) => tracing::debug!("another instance is sweeping"),
            Err(e) => tracing::warn!(error = %e, "could not ask for the sweep lock"),
        }
        prune_inbox(&ctx).await;
        let next = match ctx.store.read().await {
            Ok(mut conn) => groups::next_expiry(&mut conn, ctx.now())
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        let secs = next.map_or(interval, |at| {
            u64::try_from((at - ctx.now()).max(1))
                .unwrap_or(interval)
                .min(interval)
        });
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
            _ = wake.notified() => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Handled updates (and the update ids use cases claimed) are kept a week, long enough to
/// recognise any redelivery and short enough that ids Telegram starts afresh after a week
/// of silence cannot collide; their raw bodies (names, shipping addresses, payloads) are
/// emptied when handled, and any a crash left behind a day later. Lapsed seat and point
/// holds go too.
async fn prune_inbox(ctx: &Ctx) {
    const WEEK: i64 = 7 * 86_400;
    const BODY_RETENTION: i64 = 86_400;

    let now = ctx.now();
    let result = match ctx.store.read().await {
        Ok(mut conn) => {
            async {
                crate::store::inbox::prune(&mut conn, now - WEEK).await?;
                crate::store::forget::blank_handled_updates(&mut conn, now - BODY_RETENTION)
                    .await?;
                crate::store::updates::prune(&mut conn, now - WEEK).await?;
                crate::store::ledger::prune_holds(&mut conn, now).await?;
                crate::store::holds::prune(&mut conn, now).await
            }
            .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not prune old updates and holds");
    }
}

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
            Ok(mut conn) => groups::next_expiry(&mut conn).await.ok().flatten(),
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

/// Handled updates are kept a week, long enough to recognise any redelivery.
async fn prune_inbox(ctx: &Ctx) {
    const WEEK: i64 = 7 * 86_400;
    let result = match ctx.store.read().await {
        Ok(mut conn) => crate::store::inbox::prune(&mut conn, ctx.now() - WEEK).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not prune the inbox");
    }
}

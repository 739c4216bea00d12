//! Pays Telegram Stars refunds: `refundStarPayment` for each due refund, until Telegram says
//! it is done. Exactly once per charge: the refund row closes (with its ledger payout) in one
//! conditional update after the call, and Telegram answers `CHARGE_ALREADY_REFUNDED` to a
//! second call for a charge (a retry after a lost answer, or another instance), which counts
//! as done. Failures are tried again with capped backoff; nothing is given up.

use crate::app::{AppError, Ctx, refund};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::refunds::{self, RefundRow};
use std::time::Duration;
use teloxide::prelude::*;
use teloxide::types::TelegramTransactionId;
use teloxide::{ApiError, RequestError};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait between tries of one refund.
const MAX_BACKOFF_SECS: i64 = 3_600;
/// How often the worker looks even when nothing woke it (a refund queued by the CLI).
const IDLE_SECS: u64 = 30;

pub async fn run(ctx: Ctx, bot: Bot, mut shutdown: Shutdown) {
    let wake = ctx.refund_wake.clone();
    loop {
        if let Err(e) = pay_due(&ctx, &bot).await {
            tracing::warn!(error = %e, "could not go through the due Stars refunds");
        }
        let next = match ctx.store.read().await {
            Ok(mut conn) => refunds::next_stars_at(&mut conn).await.ok().flatten(),
            Err(_) => None,
        };
        let secs = next.map_or(IDLE_SECS, |at| {
            u64::try_from((at - ctx.now()).max(1))
                .unwrap_or(IDLE_SECS)
                .min(IDLE_SECS)
        });
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
            _ = wake.notified() => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// What one `refundStarPayment` call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Refunded,
    /// Try again later, with the reason.
    Failed(String),
}

pub fn classify(result: Result<Result<(), RequestError>, tokio::time::error::Elapsed>) -> Outcome {
    match result {
        Ok(Ok(())) => Outcome::Refunded,
        Ok(Err(RequestError::Api(ApiError::Unknown(s))))
            if s.contains("CHARGE_ALREADY_REFUNDED") =>
        {
            Outcome::Refunded
        }
        Ok(Err(e)) => Outcome::Failed(e.to_string()),
        Err(_) => Outcome::Failed("refundStarPayment timed out".into()),
    }
}

/// Capped exponential backoff: 5 s, 10 s, 20 s … up to an hour.
pub fn backoff_secs(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    5i64.saturating_mul(2i64.saturating_pow(exp))
        .min(MAX_BACKOFF_SECS)
}

/// Tries every Stars refund that is due now. Returns how many went back.
pub async fn pay_due(ctx: &Ctx, bot: &Bot) -> Result<usize, AppError> {
    let due = {
        let mut conn = ctx.store.read().await?;
        refunds::due_stars(&mut conn, ctx.now(), 50).await?
    };
    let mut paid = 0;
    for r in due {
        paid += usize::from(pay_one(ctx, bot, &r).await?);
    }
    Ok(paid)
}

async fn pay_one(ctx: &Ctx, bot: &Bot, r: &RefundRow) -> Result<bool, AppError> {
    let Ok(user) = u64::try_from(r.user_id.get()) else {
        return Err(AppError::Other(format!(
            "refund {} names user {}",
            r.charge_id, r.user_id
        )));
    };
    let call = bot.refund_star_payment(UserId(user), TelegramTransactionId(r.charge_id.clone()));
    let outcome =
        classify(tokio::time::timeout(CALL_TIMEOUT, async { call.await.map(|_| ()) }).await);
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let done = match &outcome {
        Outcome::Refunded => {
            let done = refund::paid_out(&mut tx, r, now).await?;
            Metrics::inc(&ctx.metrics.refunds_paid_total);
            done
        }
        Outcome::Failed(error) => {
            let at = now + backoff_secs(r.attempts);
            refunds::retry_later(&mut tx, &r.charge_id, error, at).await?;
            Metrics::inc(&ctx.metrics.refund_errors_total);
            tracing::warn!(charge = %r.charge_id, attempts = r.attempts + 1, %error, retry_at = at, "refundStarPayment failed; will try again");
            false
        }
    };
    tx.commit().await?;
    if done {
        ctx.committed();
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_secs(0), 5);
        assert_eq!(backoff_secs(1), 10);
        assert_eq!(backoff_secs(3), 40);
        assert_eq!(backoff_secs(30), MAX_BACKOFF_SECS);
    }

    #[test]
    fn an_already_refunded_charge_counts_as_refunded() {
        let already = Ok(Err(RequestError::Api(ApiError::Unknown(
            "Bad Request: CHARGE_ALREADY_REFUNDED".into(),
        ))));
        assert_eq!(classify(already), Outcome::Refunded);
        let other = Ok(Err(RequestError::Api(ApiError::Unknown(
            "Bad Request: something else".into(),
        ))));
        assert!(matches!(classify(other), Outcome::Failed(_)));
    }
}

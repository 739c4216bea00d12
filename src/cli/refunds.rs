//! `groupbuy refund`, `groupbuy refunds` and `groupbuy refunds done`: money going back.

/// `groupbuy refund CHARGE_ID`.
pub(super) async fn reverse(ctx: &crate::app::Ctx, charge_id: &str) -> anyhow::Result<()> {
    use crate::domain::payment::RefundMethod;
    let r = crate::app::refund::reverse(ctx, charge_id)
        .await?
        .map_err(|refusal| anyhow::anyhow!("{refusal}"))?;
    match r.method {
        RefundMethod::Stars => println!(
            "purchase {} reversed: {} go back through refundStarPayment (`groupbuy serve` makes the call)",
            r.charge_id, r.amount
        ),
        RefundMethod::Provider => println!(
            "purchase {} reversed: refund {} through your payment provider, then run `groupbuy refunds done {}`",
            r.charge_id, r.amount, r.charge_id
        ),
    }
    if r.clawed_back > 0 {
        println!(
            "{} points of its settled discount were taken back",
            r.clawed_back
        );
    }
    Ok(())
}

/// `groupbuy refunds done CHARGE_ID`.
pub(super) async fn refund_paid_out(ctx: &crate::app::Ctx, charge_id: &str) -> anyhow::Result<()> {
    let r = crate::app::refund::mark_paid(ctx, charge_id)
        .await?
        .map_err(|refusal| anyhow::anyhow!("{refusal}"))?;
    println!(
        "refund of {} closed: the buyer is told (`groupbuy serve` delivers the message)",
        r.charge_id
    );
    Ok(())
}

/// `groupbuy refunds [--all]`: one line per charge.
pub(super) async fn print_refunds(ctx: &crate::app::Ctx, all: bool) -> anyhow::Result<()> {
    let mut conn = ctx.store.read().await?;
    let rows = crate::store::refunds::list(&mut conn, all, 10_000).await?;
    if rows.is_empty() {
        println!(
            "{}",
            if all {
                "no refunds"
            } else {
                "no refunds are owed"
            }
        );
    }
    for r in rows {
        let status = if r.done { "done" } else { "due" };
        let how = match (r.done, r.method) {
            (true, _) => format!(
                "refunded {}",
                r.done_at.map(crate::replies::when).unwrap_or_default()
            ),
            (false, crate::domain::payment::RefundMethod::Stars) => format!(
                "refundStarPayment, attempts={}{}",
                r.attempts,
                r.last_error
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            ),
            (false, crate::domain::payment::RefundMethod::Provider) => {
                format!(
                    "refund through the provider, then `groupbuy refunds done {}`",
                    r.charge_id
                )
            }
        };
        println!(
            "{}\t{}\t{}\t{}\tuser={}\tpurchase=GB-{}\treason={}\t{}",
            r.charge_id,
            status,
            crate::app::refund::amount_text(&r.currency, r.amount),
            r.method.as_str(),
            r.user_id,
            r.purchase_id,
            r.reason.as_str(),
            how
        );
    }
    Ok(())
}

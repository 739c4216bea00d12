//! Counters for the operator, rendered in Prometheus' text format at `GET /metrics`.
//! One instance lives in [`crate::app::Ctx`]; every counter only grows.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident => $help:literal),* $(,)?) => {
        /// Process-lifetime counters (reset on restart, as Prometheus expects).
        #[derive(Debug, Default)]
        pub struct Metrics {
            $(pub $name: AtomicU64,)*
        }

        impl Metrics {
            /// The Prometheus text exposition of every counter.
            pub fn render(&self) -> String {
                let mut out = String::new();
                $(
                    let _ = writeln!(out, "# HELP groupbuy_{} {}", stringify!($name), $help);
                    let _ = writeln!(out, "# TYPE groupbuy_{} counter", stringify!($name));
                    let _ = writeln!(out, "groupbuy_{} {}", stringify!($name), self.$name.load(Ordering::Relaxed));
                )*
                out
            }
        }
    };
}

counters! {
    updates_handled_total => "Telegram updates handled.",
    updates_given_up_total => "Telegram updates given up after failing three times (payments are never given up).",
    updates_duplicate_total => "Telegram updates dropped because they were already handled.",
    purchases_total => "Payments recorded (each charge once).",
    settlements_total => "Groups settled.",
    errors_total => "Requests that failed on our side (not bad input).",
    bad_input_total => "Requests refused with a reply explaining the bad input.",
    outbox_sent_total => "Bot messages and emails delivered.",
    outbox_retry_total => "Deliveries that failed and were scheduled again.",
    outbox_dead_total => "Deliveries given up (dead letters).",
    telegram_429_total => "Too Many Requests answers from Telegram.",
    replies_queued_total => "Answers to a person's own update (replies, errors, invoices) queued; they are served before bulk notices.",
    replies_given_up_total => "Answers not delivered within the bound for answers (REPLY_GIVE_UP_SECS, 10 minutes) and given up.",
    paid_broadcast_total => "Bulk notices sent with allow_paid_broadcast (each costs 0.1 Telegram Star).",
    refunds_total => "Refunds opened (payments that could not count, or were reversed).",
    refunds_paid_total => "Stars refunds Telegram confirmed through refundStarPayment.",
    refund_errors_total => "refundStarPayment calls that failed and will be tried again.",
    settle_set_aside_total => "Groups whose settlement failed and was set aside to be retried later.",
    outbox_ambiguous_total => "Sends whose outcome was unknown (in flight at a crash, or timed out after sending): they may have arrived twice.",
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::inc(&m.purchases_total);
        Metrics::inc(&m.purchases_total);
        let text = m.render();
        assert!(
            text.contains("# TYPE groupbuy_purchases_total counter\ngroupbuy_purchases_total 2\n")
        );
        assert!(text.contains("groupbuy_settlements_total 0"));
    }
}

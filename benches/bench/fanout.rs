//! Scenario 2, fan-out at Telegram's limit, with the fake enforcing Telegram's limits and counting
//! 429s: (a) one 1,000-member group settles (the 1,000th payment comes in as an update) and
//! every member gets the notice in their private chat; (b) 21 groups of 20 members opened in
//! one group chat settle together: 420 private notices and 21 summaries into that one chat,
//! one more than its 20-a-minute allows.

use crate::Row;
use crate::common::*;
use crate::support::bot_api::{self, ShippingAddress, TgUser};
use crate::support::{Call, FakeBotApi, SmtpSink};
use groupbuy::domain::Policy;
use std::time::{Duration, Instant};

const MEMBERS: i64 = 1_000;
const CHAT_GROUPS: usize = 21;
const CHAT_MEMBERS: i64 = 20;
const GROUP_CHAT: i64 = -1_001_234_567_890;

pub fn delivered<'a>(calls: &'a [Call], pred: impl Fn(&Call) -> bool + 'a) -> Vec<&'a Call> {
    calls
        .iter()
        .filter(|c| c.method == "sendMessage" && !c.failed && pred(c))
        .collect()
}

/// Most successful sends in any window of `window` (sliding over the sends themselves).
pub fn max_in_window(calls: &[&Call], window: Duration) -> usize {
    let mut at: Vec<Instant> = calls.iter().map(|c| c.at).collect();
    at.sort();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..at.len() {
        while at[hi].duration_since(at[lo]) >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

pub async fn run() -> Vec<Row> {
    let (a, b) = tokio::join!(thousand_members(), group_chat());
    let mut rows = a;
    rows.extend(b);
    rows
}

/// A 1,000-member group with 999 seats bought and their receipts out, the service not yet
/// running: [`Settling::pay_last`] brings the 1,000th payment, which settles it.
pub struct Settling {
    /// Kept for the service's lifetime.
    _db: Db,
    pub fake: FakeBotApi,
    _smtp: SmtpSink,
    pub config: groupbuy::config::Config,
    group: i64,
}

impl Settling {
    pub async fn seed(extra: &[(&str, &str)]) -> Settling {
        let db = Db::fresh(Kind::Sqlite).await;
        let fake = FakeBotApi::start().await;
        let smtp = SmtpSink::start().await;
        let config = config_for(&fake, &smtp, &db.url, extra);
        let ctx = library(config.clone()).await;
        let group = open_groups(
            &ctx,
            1,
            MEMBERS as u32,
            Policy::AllOrNothing,
            7 * 86_400,
            None,
        )
        .await[0];
        // 999 members have bought (each in their private chat with the bot); their receipts are out.
        for i in 0..MEMBERS - 1 {
            let buyer = 5_000_000 + i;
            groupbuy::app::purchase::record(
                &ctx,
                60_000_000 + i,
                &person(buyer),
                &payment(group, buyer, &format!("fan-{i}")),
            )
            .await
            .expect("seeded purchase");
        }
        mark_outbox_sent(&ctx, &[]).await;
        ctx.store.pool().close().await;
        Settling {
            _db: db,
            fake,
            _smtp: smtp,
            config,
            group,
        }
    }

    /// The 1,000th payment comes in as an update; the group settles.
    pub fn pay_last(&self) {
        let last = TgUser::new(5_000_000 + MEMBERS - 1, "Last");
        let payload = groupbuy::app::purchase::Payload {
            group_id: groupbuy::domain::GroupId::new(self.group),
            buyer_id: groupbuy::domain::UserId::new(last.id),
            price: groupbuy::domain::Money::from_minor(PRICE).expect("price"),
            redeem: groupbuy::domain::Points::new(0),
            sku: groupbuy::domain::Sku::parse("camera").expect("sku"),
            nonce: String::new(),
        }
        .encode();
        self.fake.inject(bot_api::successful_payment(
            &last,
            "JPY",
            PRICE,
            &payload,
            "fan-last",
            "prov-fan-last",
            Some(ShippingAddress {
                country_code: "JP".into(),
                state: "Tokyo".into(),
                city: "Chiyoda".into(),
                street_line1: "1-1".into(),
                street_line2: String::new(),
                post_code: "100-0001".into(),
            }),
        ));
    }
}

/// The settlement notice of the 1,000-member group.
pub fn is_notice(c: &Call) -> bool {
    c.text().is_some_and(|t| t.contains("points are yours"))
}

/// When the last of the 1,000 notices was delivered, after `t0`, waiting up to `within`.
pub async fn last_notice(fake: &FakeBotApi, t0: Instant, within: Duration) -> Duration {
    let all = fake
        .wait_until(
            |calls| delivered(calls, is_notice).len() >= MEMBERS as usize,
            within,
        )
        .await;
    let calls = fake.calls();
    let notices = delivered(&calls, is_notice);
    let chats: std::collections::HashSet<i64> =
        notices.iter().filter_map(|c| c.chat_id()).collect();
    assert!(all, "only {} of {MEMBERS} notices arrived", notices.len());
    assert_eq!(chats.len(), MEMBERS as usize, "one notice per member");
    notices
        .iter()
        .map(|c| c.at.duration_since(t0))
        .max()
        .unwrap_or_default()
}

async fn thousand_members() -> Vec<Row> {
    let s = Settling::seed(&[]).await;
    let fake = &s.fake;
    fake.enforce_limits();
    let mut service = Service::start(s.config.clone()).await;
    let t0 = Instant::now();
    s.pay_last();
    let took = last_notice(fake, t0, Duration::from_secs(180)).await;
    let calls = fake.calls();
    let sends = delivered(&calls, |_| true);
    let peak = max_in_window(&sends, Duration::from_secs(1));
    let refused = fake.too_many_requests();
    service.stop().await;

    let minimum = Duration::from_secs_f64(MEMBERS as f64 / 30.0);
    let ratio = took.as_secs_f64() / minimum.as_secs_f64();
    vec![
        Row::new(
            format!(
                "2. settle a 1,000-member group: last notice delivered (update in → 1,000th private notice; busiest second {peak} sends)"
            ),
            "≤ 1.05 × minimum",
            secs(took),
            format!("{} = 1,000 ÷ 30/s", secs(minimum)),
            ratio,
            ratio <= 1.05,
        ),
        Row::new(
            "2. 429s from the fake during the 1,000-member fan-out".into(),
            "0",
            refused.to_string(),
            "0".into(),
            f64::NAN,
            refused == 0,
        ),
    ]
}

async fn group_chat() -> Vec<Row> {
    let db = Db::fresh(Kind::Sqlite).await;
    let fake = FakeBotApi::start().await;
    let smtp = SmtpSink::start().await;
    let config = config_for(&fake, &smtp, &db.url, &[]);
    let ctx = library(config.clone()).await;
    let groups = open_groups(
        &ctx,
        CHAT_GROUPS,
        CHAT_MEMBERS as u32,
        Policy::AllOrNothing,
        7 * 86_400,
        Some(GROUP_CHAT),
    )
    .await;
    // Every seat bought: each group settled with its 20th purchase; notices and summaries wait.
    for (g, gid) in groups.iter().enumerate() {
        for k in 0..CHAT_MEMBERS {
            let buyer = 7_000_000 + g as i64 * CHAT_MEMBERS + k;
            groupbuy::app::purchase::record(
                &ctx,
                70_000_000 + buyer,
                &person(buyer),
                &payment(*gid, buyer, &format!("chat-{buyer}")),
            )
            .await
            .expect("seeded purchase");
        }
    }
    mark_outbox_sent(&ctx, &["notice:%", "summary:%"]).await;
    ctx.store.pool().close().await;

    fake.enforce_limits();
    let t0 = Instant::now();
    let mut service = Service::start(config).await;
    let summary = |c: &Call| {
        c.chat_id() == Some(GROUP_CHAT) && c.text().is_some_and(|t| t.contains("is settled"))
    };
    let notices = (CHAT_GROUPS as i64 * CHAT_MEMBERS) as usize;
    let all = fake
        .wait_until(
            |calls| {
                delivered(calls, summary).len() >= CHAT_GROUPS
                    && delivered(calls, |c| c.chat_id().is_some_and(|id| id > 0)).len() >= notices
            },
            Duration::from_secs(180),
        )
        .await;
    let calls = fake.calls();
    let summaries = delivered(&calls, summary);
    assert!(
        all,
        "only {} of {CHAT_GROUPS} summaries arrived",
        summaries.len()
    );
    let last = summaries
        .iter()
        .map(|c| c.at.duration_since(t0))
        .max()
        .unwrap_or_default();
    let per_minute = max_in_window(&summaries, Duration::from_secs(60));
    let refused = fake.too_many_requests();
    service.stop().await;
    // 20 may go at once; the 21st not before a minute after the first.
    let minimum = Duration::from_secs(60);
    let ratio = last.as_secs_f64() / minimum.as_secs_f64();
    vec![Row::new(
        format!(
            "2. group chat: 21 groups × 20 members settle, 21 summaries into one group chat (most in any 60 s: {per_minute}; 429s: {refused})"
        ),
        "≤ 20 a minute, 0 × 429",
        format!("{} to the 21st", secs(last)),
        format!("{} = 21st summary at 20/min", secs(minimum)),
        ratio,
        per_minute <= 20 && refused == 0,
    )]
}

//! Issue [flood] 18, with the fake enforcing Telegram's limits: (a) at idle, a reply's time
//! from update to `sendMessage`, against a bare getUpdates → sendMessage loop on the same fake;
//! (b) 1,000 people send `/start` within one second; (c) the same crowd while a 1,000-member
//! group settles; (d) that settlement with paid broadcast on at 1,000/s.

use crate::Row;
use crate::common::*;
use crate::fanout::{Settling, delivered, is_notice, last_notice};
use crate::support::bot_api::{self, TgUser};
use crate::support::{Call, FakeBotApi, SmtpSink};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use teloxide::prelude::*;

const CROWD: i64 = 1_000;
const IDLE_SAMPLES: i64 = 200;
const HELLO: &str = "Hello, ";
const OOPS: &str = "Something went wrong";

pub async fn run() -> Vec<Row> {
    let mut rows = idle().await;
    rows.extend(crowd().await);
    rows.extend(crowd_while_settling().await);
    rows.extend(paid_settlement().await);
    rows
}

fn guest(i: i64) -> TgUser {
    TgUser::new(9_000_000 + i, &format!("Guest{i}"))
}

fn is_hello(c: &Call) -> bool {
    c.text().is_some_and(|t| t.starts_with(HELLO))
}

/// Each person's first answer: when it arrived after their `/start` was injected.
fn answer_times(calls: &[Call], sent_at: &HashMap<i64, Instant>) -> Vec<Duration> {
    let mut first: HashMap<i64, Instant> = HashMap::new();
    for c in delivered(calls, is_hello) {
        if let Some(chat) = c.chat_id() {
            first.entry(chat).or_insert(c.at);
        }
    }
    let mut times: Vec<Duration> = first
        .iter()
        .filter_map(|(chat, at)| Some(at.duration_since(*sent_at.get(chat)?)))
        .collect();
    times.sort();
    times
}

/// The service on an empty database, the fake enforcing Telegram's limits.
async fn fresh_service() -> (Db, FakeBotApi, SmtpSink, Service) {
    let db = Db::fresh(Kind::Sqlite).await;
    let fake = FakeBotApi::start().await;
    let smtp = SmtpSink::start().await;
    fake.enforce_limits();
    let service = Service::start(config_for(&fake, &smtp, &db.url, &[])).await;
    (db, fake, smtp, service)
}

/// A reply at idle, one person at a time, each after the last was answered and the limiter rested.
async fn idle() -> Vec<Row> {
    let (_db, fake, _smtp, mut service) = fresh_service().await;
    let service_times = one_at_a_time(&fake, 0).await;
    service.stop().await;

    // The floor: teloxide polling the same fake and answering at once, no database.
    let fake = FakeBotApi::start().await;
    fake.enforce_limits();
    let bot = Bot::new(fake.token()).set_api_url(fake.api_url());
    let echo = tokio::spawn(async move {
        let mut offset = 0;
        loop {
            let Ok(updates) = bot.get_updates().offset(offset).timeout(10).await else {
                continue;
            };
            for u in updates {
                offset = i32::try_from(u.id.0).unwrap_or(i32::MAX).saturating_add(1);
                if let Some(chat) = u.chat() {
                    let _ = bot.send_message(chat.id, "Hello, bare").await;
                }
            }
        }
    });
    let bare = one_at_a_time(&fake, 100_000).await;
    echo.abort();

    let (p50, p99) = (
        percentile(&service_times, 50.0),
        percentile(&service_times, 99.0),
    );
    let (b50, b99) = (percentile(&bare, 50.0), percentile(&bare, 99.0));
    vec![
        Row::new(
            format!(
                "6. idle: update → reply `sendMessage`, p50 ({IDLE_SAMPLES} replies, one at a time)"
            ),
            "≤ 30 ms",
            ms(p50),
            format!("{} bare getUpdates → sendMessage, p50", ms(b50)),
            p50.as_secs_f64() / b50.as_secs_f64(),
            p50 <= Duration::from_millis(30),
        ),
        Row::new(
            format!(
                "6. idle: update → reply `sendMessage`, p99 (max {})",
                ms(service_times[service_times.len() - 1])
            ),
            "≤ 100 ms",
            ms(p99),
            format!("{} bare getUpdates → sendMessage, p99", ms(b99)),
            p99.as_secs_f64() / b99.as_secs_f64(),
            p99 <= Duration::from_millis(100),
        ),
    ]
}

/// Injects `/start` from one person at a time, waiting for each answer; returns the times.
async fn one_at_a_time(fake: &FakeBotApi, first: i64) -> Vec<Duration> {
    // One to warm up (connections, the first statements).
    let mut times = Vec::new();
    for i in first..=first + IDLE_SAMPLES {
        let p = guest(i);
        let t0 = Instant::now();
        fake.inject(bot_api::text_message(&p, "/start"));
        let answer = fake
            .wait_for_call(
                move |c| c.method == "sendMessage" && !c.failed && c.chat_id() == Some(p.id),
                Duration::from_secs(10),
            )
            .await
            .expect("an answer");
        if i > first {
            times.push(answer.at.duration_since(t0));
        }
        // Well within the bot's 30 a second: the limiter never holds these.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    times.sort();
    times
}

/// Injects `/start` from `CROWD` people spread evenly over one second; returns when each went.
async fn inject_crowd(fake: &FakeBotApi) -> HashMap<i64, Instant> {
    let t0 = tokio::time::Instant::now();
    let mut sent_at = HashMap::new();
    for i in 0..CROWD {
        tokio::time::sleep_until(t0 + Duration::from_micros(u64::try_from(i).unwrap_or(0) * 1_000))
            .await;
        let p = guest(i);
        sent_at.insert(p.id, Instant::now());
        fake.inject(bot_api::text_message(&p, "/start"));
    }
    sent_at
}

struct CrowdOutcome {
    times: Vec<Duration>,
    last: Duration,
    oops: usize,
    given_up: u64,
    twice: usize,
}

async fn crowd_answered(
    fake: &FakeBotApi,
    service: &Service,
    sent_at: &HashMap<i64, Instant>,
    t0: Instant,
) -> CrowdOutcome {
    let all = fake
        .wait_until(
            |calls| delivered(calls, is_hello).len() >= CROWD as usize,
            Duration::from_secs(240),
        )
        .await;
    let calls = fake.calls();
    let hellos = delivered(&calls, is_hello);
    assert!(all, "only {} of {CROWD} answered", hellos.len());
    let mut per_chat: HashMap<i64, usize> = HashMap::new();
    for c in &hellos {
        *per_chat.entry(c.chat_id().unwrap_or(0)).or_default() += 1;
    }
    let metrics = &service.ctx.metrics;
    CrowdOutcome {
        times: answer_times(&calls, sent_at),
        last: hellos
            .iter()
            .map(|c| c.at.duration_since(t0))
            .max()
            .unwrap_or_default(),
        oops: calls
            .iter()
            .filter(|c| c.text().is_some_and(|t| t.contains(OOPS)))
            .count(),
        given_up: metrics
            .updates_given_up_total
            .load(std::sync::atomic::Ordering::Relaxed)
            + metrics
                .replies_given_up_total
                .load(std::sync::atomic::Ordering::Relaxed),
        twice: per_chat.values().filter(|n| **n > 1).count(),
    }
}

async fn crowd() -> Vec<Row> {
    let (_db, fake, _smtp, mut service) = fresh_service().await;
    let t0 = Instant::now();
    let sent_at = inject_crowd(&fake).await;
    let out = crowd_answered(&fake, &service, &sent_at, t0).await;
    let refused = fake.too_many_requests();
    service.stop().await;
    let minimum = Duration::from_secs_f64(CROWD as f64 / 30.0);
    let ratio = out.last.as_secs_f64() / minimum.as_secs_f64();
    vec![Row::new(
        format!(
            "6. 1,000 people send /start within one second: time to the last answer (all {CROWD} answered, {} twice; errors shown: {}; given up: {}; 429s: {refused}; answer p50 {}, p99 {})",
            out.twice,
            out.oops,
            out.given_up,
            secs(percentile(&out.times, 50.0)),
            secs(percentile(&out.times, 99.0))
        ),
        "≤ 1.1 × minimum, 0 errors, 0 given up",
        secs(out.last),
        format!("{} = 1,000 ÷ 30/s", secs(minimum)),
        ratio,
        ratio <= 1.1 && out.oops == 0 && out.given_up == 0 && out.twice == 0,
    )]
}

async fn crowd_while_settling() -> Vec<Row> {
    let s = Settling::seed(&[]).await;
    s.fake.enforce_limits();
    let mut service = Service::start(s.config.clone()).await;
    let t0 = Instant::now();
    s.pay_last();
    // The settlement's notices are queued and going out when the crowd arrives.
    s.fake
        .wait_until(
            |calls| !delivered(calls, is_notice).is_empty(),
            Duration::from_secs(30),
        )
        .await;
    let crowd_t0 = Instant::now();
    let sent_at = inject_crowd(&s.fake).await;
    let out = crowd_answered(&s.fake, &service, &sent_at, crowd_t0).await;
    let notices = last_notice(&s.fake, t0, Duration::from_secs(300)).await;
    let calls = s.fake.calls();
    let sends = delivered(&calls, |_| true).len();
    let notices_before_last_answer = delivered(&calls, |c| {
        is_notice(c) && c.at.duration_since(crowd_t0) < out.last
    })
    .len();
    let refused = s.fake.too_many_requests();
    service.stop().await;
    let minimum = Duration::from_secs_f64(sends as f64 / 30.0);
    let ratio = notices.as_secs_f64() / minimum.as_secs_f64();
    let (p50, p99) = (percentile(&out.times, 50.0), percentile(&out.times, 99.0));
    vec![
        Row::info(
            format!(
                "6. the crowd while a 1,000-member group settles: time to answer, p99 (p50 {}; last {}; {} notices went out in between; errors shown: {}; given up: {}; twice: {})",
                secs(p50),
                secs(out.last),
                notices_before_last_answer,
                out.oops,
                out.given_up,
                out.twice
            ),
            secs(p99),
            format!(
                "{} = 1,000 answers ÷ 30/s",
                secs(Duration::from_secs_f64(CROWD as f64 / 30.0))
            ),
        ),
        Row::new(
            format!(
                "6. …and the settlement's 1,000 notices: update in → last notice ({sends} messages sent in all; 429s: {refused})"
            ),
            "≤ 1.1 × minimum",
            secs(notices),
            format!("{} = {sends} ÷ 30/s", secs(minimum)),
            ratio,
            ratio <= 1.1,
        ),
    ]
}

async fn paid_settlement() -> Vec<Row> {
    let s = Settling::seed(&[("GROUPBUY_PAID_BROADCAST", "true")]).await;
    s.fake.enforce_limits();
    let mut service = Service::start(s.config.clone()).await;
    let t0 = Instant::now();
    s.pay_last();
    let took = last_notice(&s.fake, t0, Duration::from_secs(120)).await;
    let calls = s.fake.calls();
    let paid = delivered(&calls, |c| {
        c.params
            .get("allow_paid_broadcast")
            .and_then(|v| v.as_bool())
            == Some(true)
    })
    .len();
    let refused = s.fake.too_many_requests();
    service.stop().await;
    let free = Duration::from_secs_f64(1_000.0 / 30.0);
    vec![Row::new(
        format!(
            "6. paid broadcast on at 1,000/s: settle a 1,000-member group, update in → 1,000th notice ({paid} sent paid, {:.1} Stars; 429s: {refused})",
            paid as f64 * 0.1
        ),
        "< 3 s",
        secs(took),
        format!("{} = the same at the free 30/s", secs(free)),
        took.as_secs_f64() / free.as_secs_f64(),
        took < Duration::from_secs(3),
    )]
}

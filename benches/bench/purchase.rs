//! Scenario 1, the purchase path: `successful_payment` updates end to end (the update is in the Bot API
//! fake → the service polls it, stores it in the inbox, handles it → the purchase, its ledger
//! rows and its outbox rows are committed), many concurrent buyers over many groups, against
//! the raw rate of the same database transaction (`purchase::record`) in a tight loop.

use crate::Row;
use crate::commits;
use crate::common::*;
use crate::support::bot_api::{self, ShippingAddress, TgUser};
use crate::support::{FakeBotApi, SmtpSink};
use groupbuy::domain::Policy;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Groups the buyers spread over; none fills during the run (head count 1,000).
const GROUPS: usize = 1_000;
/// Buyers in flight at once (each waits for its commit before paying again as a new buyer).
pub const CONCURRENCY: usize = 64;
const RAW_SECS: u64 = 5;
const E2E_SECS: u64 = 10;

/// Fewer buyers in flight: what a payment costs when it hardly queues.
pub const LIGHT: usize = 8;
const LIGHT_SECS: u64 = 5;

pub struct E2e {
    pub rate: f64,
    pub done: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub cpu: Cpu,
}

pub async fn run(kind: Kind) -> Vec<Row> {
    if std::env::var("BENCH_PROFILE").as_deref() == Ok("raw") {
        // Profiling aid: only the raw transaction loop.
        let (rate, _, _) = raw_loop(kind, true).await;
        eprintln!("[bench] profile: raw tx loop {rate:.0}/s");
        return Vec::new();
    }
    if std::env::var("BENCH_PROFILE").as_deref() == Ok("e2e") {
        // Profiling aid: only the end-to-end phase (run it under strace or perf).
        let o = end_to_end(kind, CONCURRENCY, E2E_SECS).await;
        eprintln!(
            "[bench] profile: {} payments in {:.1} s",
            o.done,
            o.done as f64 / o.rate
        );
        return Vec::new();
    }
    let (raw_rate, raw_p99, round_trip) = raw_loop(kind, true).await;
    let (unsynced_rate, _, _) = raw_loop(kind, false).await;
    let o = end_to_end(kind, CONCURRENCY, E2E_SECS).await;
    let light = end_to_end(kind, LIGHT, LIGHT_SECS).await;
    let name = kind.name();
    let ratio = o.rate / raw_rate;
    let cpu = o.cpu.per_op(o.done, kind == Kind::Postgres);
    vec![
        Row::new(
            format!(
                "1. purchases/s end to end, {name} ({CONCURRENCY} buyers in flight, {GROUPS} groups, {} payments; {cpu})",
                o.done
            ),
            "≥ 3,000/s",
            format!("{:.0}/s", o.rate),
            format!("{raw_rate:.0}/s raw tx loop"),
            ratio,
            o.rate >= 3_000.0,
        ),
        Row::new(
            format!("1. end to end ÷ raw transaction rate, {name}"),
            "≥ 0.50",
            format!("{ratio:.2}"),
            format!("{raw_rate:.0}/s raw tx loop"),
            ratio,
            ratio >= 0.5,
        ),
        Row::new(
            format!(
                "1. p99 update in → committed, {name}, {CONCURRENCY} in flight (p50 {}, max {})",
                ms(o.p50),
                ms(o.max)
            ),
            "≤ 25 ms",
            ms(o.p99),
            format!("{} raw tx p99", ms(raw_p99)),
            o.p99.as_secs_f64() / raw_p99.as_secs_f64().max(1e-9),
            o.p99 <= Duration::from_millis(25),
        ),
        Row::info(
            format!(
                "1. (bound) raw tx loop without waiting for the disk ({}), {name}",
                if kind == Kind::Sqlite {
                    "synchronous = OFF"
                } else {
                    "synchronous_commit = off"
                }
            ),
            format!("{unsynced_rate:.0}/s"),
            format!("{raw_rate:.0}/s raw tx loop"),
        ),
        Row::info(
            format!(
                "1. (bound) one statement round trip on the connection purchases write on (`SELECT 1`, median of 2,000), {name}; a purchase is {STATEMENTS} of them, BEGIN to COMMIT"
            ),
            format!("{:.0} µs", round_trip.as_secs_f64() * 1e6),
            format!("{:.0} µs a purchase in the raw tx loop", 1e6 / raw_rate),
        ),
        Row::info(
            format!(
                "1. (light load) p99 with {LIGHT} buyers in flight, {name}: {:.0}/s, p50 {}",
                light.rate,
                ms(light.p50)
            ),
            ms(light.p99),
            format!("{} raw tx p99", ms(raw_p99)),
        ),
    ]
}

async fn seeded(kind: Kind) -> (Db, FakeBotApi, SmtpSink, Vec<i64>) {
    let db = Db::fresh(kind).await;
    let fake = FakeBotApi::start().await;
    let smtp = SmtpSink::start().await;
    let ctx = library(config_for(&fake, &smtp, &db.url, &[])).await;
    let groups = open_groups(&ctx, GROUPS, 1_000, Policy::AllOrNothing, 86_400, None).await;
    ctx.store.pool().close().await;
    (db, fake, smtp, groups)
}

/// Statements of one `purchase::record` transaction, BEGIN and COMMIT included (counted in
/// sqlx's statement log: `RUST_LOG=sqlx::query=debug`, 19 between them).
const STATEMENTS: usize = 21;

/// The same transaction (`purchase::record`), one after another, on one connection's worth
/// of work: what the database does when nothing else is in the way. Returns the rate, the
/// p99 and the median round trip of a trivial statement on the connection writes use.
async fn raw_loop(kind: Kind, durable: bool) -> (f64, Duration, Duration) {
    let (db, fake, smtp, groups) = seeded(kind).await;
    if !durable && kind == Kind::Postgres {
        let name = db.url.rsplit('/').next().unwrap_or_default().to_string();
        let mut admin = <sqlx::postgres::PgConnection as sqlx::Connection>::connect(&pg_base_url())
            .await
            .expect("admin connection");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE \"{name}\" SET synchronous_commit = off"
        )))
        .execute(&mut admin)
        .await
        .expect("synchronous_commit off");
    }
    let ctx = library(config_for(&fake, &smtp, &db.url, &[])).await;
    if !durable && kind == Kind::Sqlite {
        // The one writer connection (see `Store::writer`) is the one every write uses.
        let mut w = ctx.store.writer().await.expect("writer");
        sqlx::query("PRAGMA synchronous = OFF")
            .execute(&mut *w)
            .await
            .expect("synchronous off");
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(if durable { RAW_SECS } else { 3 });
    let mut lat = Vec::new();
    let mut n: i64 = 0;
    while Instant::now() < deadline {
        let buyer = 2_000_000 + n;
        let t = Instant::now();
        groupbuy::app::purchase::record(
            &ctx,
            50_000_000 + n,
            &person(buyer),
            &payment(groups[n as usize % GROUPS], buyer, &format!("raw-{n}")),
        )
        .await
        .expect("recorded");
        lat.push(t.elapsed());
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    let mut trips = Vec::with_capacity(2_000);
    {
        let mut w = ctx.store.writer().await.expect("writer");
        for _ in 0..2_000 {
            let t = Instant::now();
            sqlx::query("SELECT 1")
                .execute(&mut *w)
                .await
                .expect("SELECT 1");
            trips.push(t.elapsed());
        }
    }
    trips.sort();
    ctx.store.pool().close().await;
    db.drop_pg().await;
    (rate, percentile(&lat, 99.0), percentile(&trips, 50.0))
}

fn tokyo() -> ShippingAddress {
    ShippingAddress {
        country_code: "JP".into(),
        state: "Tokyo".into(),
        city: "Chiyoda".into(),
        street_line1: "1-1 Marunouchi".into(),
        street_line2: String::new(),
        post_code: "100-0001".into(),
    }
}

/// The service (long polling, as `groupbuy serve` runs by default) takes `successful_payment`
/// updates from the fake; `CONCURRENCY` buyers each wait for their commit and pay again.
async fn end_to_end(kind: Kind, concurrency: usize, secs: u64) -> E2e {
    let (db, fake, smtp, groups) = seeded(kind).await;
    let mut service = Service::start(config_for(&fake, &smtp, &db.url, &[])).await;
    let fake = Arc::new(fake);
    let groups = Arc::new(groups);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let cpu_before = cpu_now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (fake, groups, next) = (fake.clone(), groups.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut last = start;
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let buyer = TgUser::new(3_000_000 + n as i64, &format!("B{n}"));
                let gid = groups[n as usize % groups.len()];
                let charge = format!("e2e-{n}");
                let payload = groupbuy::app::purchase::Payload {
                    group_id: groupbuy::domain::GroupId::new(gid),
                    buyer_id: groupbuy::domain::UserId::new(buyer.id),
                    price: groupbuy::domain::Money::from_minor(PRICE).expect("price"),
                    redeem: groupbuy::domain::Points::new(0),
                    sku: groupbuy::domain::Sku::parse("camera").expect("sku"),
                    nonce: String::new(),
                }
                .encode();
                let update = bot_api::successful_payment(
                    &buyer,
                    "JPY",
                    PRICE,
                    &payload,
                    &charge,
                    &format!("prov-{n}"),
                    Some(tokyo()),
                );
                let committed = commits::expect(&charge);
                let t = Instant::now();
                fake.inject(update);
                let at = tokio::time::timeout(Duration::from_secs(60), committed)
                    .await
                    .unwrap_or_else(|_| panic!("payment {charge} not committed within 60 s"))
                    .expect("commit observed");
                lat.push(at.duration_since(t));
                last = last.max(at);
            }
            (lat, last)
        }));
    }
    let mut lat = Vec::new();
    let mut last = start;
    for t in tasks {
        let (l, at) = t.await.expect("buyer task");
        lat.extend(l);
        last = last.max(at);
    }
    let cpu = cpu_now().since(&cpu_before);
    let done = lat.len() as u64;
    let rate = done as f64 / last.duration_since(start).as_secs_f64();
    lat.sort();
    // Everything the path promises is there: purchase, ledger and outbox rows.
    let ctx = &service.ctx;
    let purchases = count(ctx, "SELECT COUNT(*) FROM purchases").await as u64;
    let ledger = count(
        ctx,
        "SELECT COUNT(*) FROM ledger WHERE txn LIKE 'purchase:%'",
    )
    .await as u64;
    let outbox = count(
        ctx,
        "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'receipt:%' OR dedupe_key LIKE 'ship:%'",
    )
    .await as u64;
    assert_eq!(purchases, done, "every observed commit is a purchase row");
    assert_eq!(ledger, 2 * done, "cash and sales rows for every purchase");
    assert_eq!(
        outbox,
        2 * done,
        "receipt and shipping request for every purchase"
    );
    service.stop().await;
    db.drop_pg().await;
    E2e {
        rate,
        done,
        p50: percentile(&lat, 50.0),
        p99: percentile(&lat, 99.0),
        max: *lat.last().unwrap_or(&Duration::ZERO),
        cpu,
    }
}

//! Scenarios 3 and 5, the settlement sweep and the footprint, on one seeded SQLite database of 100,000
//! groups of 5 buyers (500,000 buyers, half with an email address, 500,000 purchases with
//! their ledger rows), written with set-based SQL.
//!
//! First the groups are open and unexpired: an idle `groupbuy serve` on them is measured
//! (start-up to ready, resident memory). Then they are made to expire and `groupbuy settle`
//! (a subprocess) settles them all: wall time and peak memory (VmHWM).

use crate::Row;
use crate::common::*;
use crate::support::{FakeBotApi, SmtpSink};
use std::time::{Duration, Instant};

pub const BUYERS: i64 = 5;
/// 100,000; `BENCH_SWEEP_GROUPS` changes it for profiling runs.
static GROUPS_N: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| {
    std::env::var("BENCH_SWEEP_GROUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
});

/// Rows of the seeded database, written in one transaction per table.
async fn seed(db: &Db, fake: &FakeBotApi, smtp: &SmtpSink) -> Duration {
    let started = Instant::now();
    let groups = *GROUPS_N;
    let ctx = library(config_for(fake, smtp, &db.url, &[])).await;
    let now = ctx.now();
    let buyers = groups * BUYERS;
    let statements = [
        // 1,000 organisers, then the buyers (every other one with an email address).
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
             INSERT INTO users (id, username, first_name, started, unreachable, email, created_at, updated_at)
             SELECT 9000000 + i, NULL, 'Org' || i, 1, 0, NULL, {now}, {now} FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {buyers} - 1)
             INSERT INTO users (id, username, first_name, started, unreachable, email, created_at, updated_at)
             SELECT 10000000 + i, NULL, 'Buyer' || i, 1, 0,
                    CASE WHEN i % 2 = 0 THEN 'buyer' || i || '@example.com' END, {now}, {now} FROM n"
        ),
        // Partial policy: each group of 5 (of 10 seats) reaches the 4-buyer tier, so every
        // buyer is credited; all share a region, so the region bonus applies too.
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {groups} - 1)
             -- Keys drawn from the key alphabet (no 0 or 1): the store refuses a key it could not have
             -- issued. Receipt tokens are 64 characters, as stored (hashed): a shorter one would be
             -- taken for a plain token of before the hashing, and hashed at start-up.
             INSERT INTO group_buys (id, group_key, sku, head_count, organiser_id, chat_id, policy, status, created_at, expires_at)
             SELECT i + 1, 'B' || replace(replace(printf('%017d', i), '0', 'Z'), '1', 'Y'), 'camera', 10, 9000000 + i % 1000, 9000000 + i % 1000,
                    'partial', 'open', {now} - 86400, {now} + 7 * 86400 FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {buyers} - 1)
             INSERT INTO purchases (id, group_id, buyer_id, sku, price, points_redeemed, amount_paid, currency,
                 charge_id, provider_charge_id, counted, flag, region, receipt_token, created_at)
             SELECT i + 1, i / {BUYERS} + 1, 10000000 + i, 'camera', {PRICE}, 0, {PRICE}, 'JPY',
                    'seed-' || i, 'prov-' || i, 1, NULL, 'JP-TOKYO', printf('%064d', i), {now} - 3600 FROM n"
        ),
        "INSERT INTO ledger (txn, account, amount, user_id, group_id, purchase_id, memo, created_at)
             SELECT 'purchase:' || charge_id, 'cash', amount_paid, NULL, group_id, id, 'Purchase of camera', created_at
             FROM purchases".to_string(),
        "INSERT INTO ledger (txn, account, amount, user_id, group_id, purchase_id, memo, created_at)
             SELECT 'purchase:' || charge_id, 'sales', -amount_paid, NULL, group_id, id, 'Purchase of camera', created_at
             FROM purchases".to_string(),
    ];
    for sql in statements {
        let mut tx = ctx.store.write().await.expect("write");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .expect("seed statement");
        tx.commit().await.expect("commit");
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(ctx.store.pool())
        .await
        .expect("checkpoint");
    ctx.store.pool().close().await;
    started.elapsed()
}

/// The floor for the sweep: the rows a settlement of every group writes (group status,
/// settlement row, two ledger rows per buyer, a notice by bot to every buyer and by email to
/// those with an address, a summary per group), written set-based (`INSERT … SELECT`, one
/// transaction) into a copy of the same database, with bodies of the lengths the real sweep
/// wrote. Returns the time it took.
async fn set_based_floor(
    copy: &str,
    fake: &FakeBotApi,
    smtp: &SmtpSink,
    lengths: [i64; 4],
) -> Duration {
    let ctx = library(config_for(fake, smtp, copy, &[])).await;
    let now = ctx.now();
    let [tg, text, html, summary] = lengths;
    let body = |n: i64| format!("substr(hex(zeroblob({})), 1, {n})", n / 2 + 1);
    let statements = [
        format!("UPDATE group_buys SET status = 'settled', closed_at = {now}"),
        format!(
            "INSERT INTO settlements (group_id, buyers, filled, rate_bp, total_points, created_at)
             SELECT id, 5, 0, 1000, 5 * 3980, {now} FROM group_buys"
        ),
        format!(
            "INSERT INTO ledger (txn, account, amount, user_id, group_id, purchase_id, memo, created_at)
             SELECT 'settle:' || group_id || ':' || id, 'discounts', 3980, NULL, group_id, id,
                    'Group discount 10% for group B', {now} FROM purchases"
        ),
        format!(
            "INSERT INTO ledger (txn, account, amount, user_id, group_id, purchase_id, memo, created_at)
             SELECT 'settle:' || group_id || ':' || id, 'points:' || buyer_id, -3980, buyer_id, group_id, id,
                    'Group discount 10% for group B', {now} FROM purchases"
        ),
        format!(
            "INSERT INTO outbox (dedupe_key, channel, chat_id, subject, body_text, status, attempts, next_attempt_at, created_at)
             SELECT 'notice:' || group_id || ':' || id || ':tg', 'telegram', buyer_id, '', {}, 'pending', 0, {now}, {now}
             FROM purchases",
            body(tg)
        ),
        format!(
            "INSERT INTO outbox (dedupe_key, channel, email_to, subject, body_text, body_html, status, attempts, next_attempt_at, created_at)
             SELECT 'notice:' || p.group_id || ':' || p.id || ':email', 'email', u.email, 'Your group discount: points back',
                    {}, {}, 'pending', 0, {now}, {now}
             FROM purchases p JOIN users u ON u.id = p.buyer_id WHERE u.email IS NOT NULL",
            body(text),
            body(html)
        ),
        format!(
            "INSERT INTO outbox (dedupe_key, channel, chat_id, subject, body_text, status, attempts, next_attempt_at, created_at)
             SELECT 'summary:' || id, 'telegram', chat_id, '', {}, 'pending', 0, {now}, {now} FROM group_buys",
            body(summary)
        ),
    ];
    let t0 = Instant::now();
    let mut tx = ctx.store.write().await.expect("write");
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .expect("set-based statement");
    }
    tx.commit().await.expect("commit");
    let took = t0.elapsed();
    ctx.store.pool().close().await;
    took
}

/// Average lengths of what the sweep queued: bot notice, email text, email HTML, summary.
async fn body_lengths(ctx: &groupbuy::app::Ctx) -> [i64; 4] {
    [
        count(ctx, "SELECT CAST(AVG(LENGTH(body_text)) AS BIGINT) FROM outbox WHERE dedupe_key LIKE 'notice:%:tg'").await,
        count(ctx, "SELECT CAST(AVG(LENGTH(body_text)) AS BIGINT) FROM outbox WHERE dedupe_key LIKE 'notice:%:email'").await,
        count(ctx, "SELECT CAST(AVG(LENGTH(body_html)) AS BIGINT) FROM outbox WHERE dedupe_key LIKE 'notice:%:email'").await,
        count(ctx, "SELECT CAST(AVG(LENGTH(body_text)) AS BIGINT) FROM outbox WHERE dedupe_key LIKE 'summary:%'").await,
    ]
}

/// Starts `groupbuy serve`, waits for `/healthz` to answer 200, lets it idle, and returns
/// (start-up to ready, VmRSS after idling, VmHWM) in KiB.
async fn serve_idle(
    db: &Db,
    fake: &FakeBotApi,
    smtp: &SmtpSink,
    tag: &str,
) -> (Duration, u64, u64) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let log = db.dir.path().join(format!("serve-{tag}.log"));
    let mut cmd = groupbuy(&["serve"], fake, smtp, &db.url, &log);
    cmd.env("GROUPBUY_HTTP_ADDR", "127.0.0.1:0");
    cmd.env("GROUPBUY_ADMIN_ADDR", format!("127.0.0.1:{port}"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("groupbuy serve starts");
    let ready = loop {
        if let Ok(r) = client.get(&url).send().await
            && r.status() == 200
        {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "serve never became ready"
        );
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("groupbuy serve exited: {status}; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    // Idle: the start-up sweep has looked at every open group; nothing else to do.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss, hwm) = rss_kib(child.id()).expect("/proc status");
    let _ = child.kill();
    let _ = child.wait();
    (ready, rss, hwm)
}

/// `groupbuy settle` as a subprocess under `/usr/bin/time -v`: (wall time, peak RSS KiB,
/// stdout).
fn settle(db: &Db, fake: &FakeBotApi, smtp: &SmtpSink, tag: &str) -> (Duration, u64, String) {
    let log = db.dir.path().join(format!("settle-{tag}.log"));
    let time_out = db.dir.path().join(format!("settle-{tag}.time"));
    let timed = std::path::Path::new("/usr/bin/time").exists();
    let mut cmd = groupbuy(&["settle"], fake, smtp, &db.url, &log);
    if timed {
        let inner = cmd;
        let mut outer = std::process::Command::new("/usr/bin/time");
        outer
            .arg("-v")
            .arg("-o")
            .arg(&time_out)
            .arg(inner.get_program())
            .args(inner.get_args())
            .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .env_remove("RUST_LOG")
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::create(log.with_extension("err")).expect("log"));
        cmd = outer;
    }
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("groupbuy settle starts");
    let (status, sampled) = wait_sampling(&mut child, Duration::from_secs(420));
    let took = t0.elapsed();
    assert!(
        status.success(),
        "groupbuy settle failed: see {}",
        log.display()
    );
    let from_time = std::fs::read_to_string(&time_out).ok().and_then(|t| {
        t.lines()
            .find(|l| l.contains("Maximum resident set size"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    (took, from_time.unwrap_or(sampled), out)
}

pub async fn run() -> Vec<Row> {
    let fake = FakeBotApi::start().await;
    let smtp = SmtpSink::start().await;
    let groups = *GROUPS_N;

    // References: the same commands on an empty database.
    let empty = Db::fresh(Kind::Sqlite).await;
    let (ready_empty, rss_empty, _) = serve_idle(&empty, &fake, &smtp, "empty").await;
    let (_, hwm_settle_empty, _) =
        tokio::task::block_in_place(|| settle(&empty, &fake, &smtp, "empty"));

    let db = Db::fresh(Kind::Sqlite).await;
    let seeding = seed(&db, &fake, &smtp).await;
    eprintln!(
        "[bench] seeded {groups} groups × {BUYERS} buyers in {:.1} s",
        seeding.as_secs_f64()
    );
    let (ready, rss, hwm) = serve_idle(&db, &fake, &smtp, "seeded").await;

    // Now every group expires; `groupbuy settle` settles them. A copy of the database is
    // kept for the set-based reference.
    let ctx = library(config_for(&fake, &smtp, &db.url, &[])).await;
    let now = ctx.now();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE group_buys SET expires_at = {now} - 60"
    )))
    .execute(ctx.store.pool())
    .await
    .expect("expire");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(ctx.store.pool())
        .await
        .expect("checkpoint");
    let file = db.dir.path().join("groupbuy.db");
    let copy = db.dir.path().join("reference.db");
    std::fs::copy(&file, &copy).expect("copy of the database");
    if std::env::var_os("BENCH_KEEP_DB").is_some() {
        // Profiling aid: keep a copy of the database as it was before the sweep.
        let keep = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-sweep.db");
        std::fs::copy(&copy, &keep).expect("copy kept");
        eprintln!("[bench] kept the unsettled database at {}", keep.display());
    }
    let (took, peak, out) = tokio::task::block_in_place(|| settle(&db, &fake, &smtp, "seeded"));
    let settled = count(&ctx, "SELECT COUNT(*) FROM settlements").await;
    let credits = count(
        &ctx,
        "SELECT COUNT(*) FROM ledger WHERE txn LIKE 'settle:%' AND amount < 0",
    )
    .await;
    let queued = count(&ctx, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'").await;
    let lengths = body_lengths(&ctx).await;
    ctx.store.pool().close().await;
    let floor = set_based_floor(
        &format!("sqlite://{}", copy.display()),
        &fake,
        &smtp,
        lengths,
    )
    .await;
    assert_eq!(settled, groups, "every group settled: {out}");
    assert_eq!(credits, groups * BUYERS, "every buyer credited once");

    let mb = |kib: u64| kib as f64 / 1024.0;
    vec![
        Row::new(
            format!(
                "3. `groupbuy settle`: 100,000 expired groups × 5 buyers, SQLite ({credits} credits, {queued} notices queued)"
            ),
            "≤ 10 s",
            secs(took),
            format!("{} the same rows written set-based", secs(floor)),
            took.as_secs_f64() / floor.as_secs_f64(),
            took <= Duration::from_secs(10),
        ),
        Row::new(
            "3. peak memory of that `groupbuy settle` (VmHWM)".into(),
            "≤ 200 MB",
            format!("{:.1} MB", mb(peak)),
            format!("{:.1} MB on an empty database", mb(hwm_settle_empty)),
            peak as f64 / hwm_settle_empty.max(1) as f64,
            mb(peak) <= 200.0,
        ),
        Row::new(
            format!(
                "5. idle `groupbuy serve`, 100,000 groups: resident memory (VmRSS after 5 s idle; VmHWM {:.1} MB)",
                mb(hwm)
            ),
            "≤ 60 MB",
            format!("{:.1} MB", mb(rss)),
            format!("{:.1} MB on an empty database", mb(rss_empty)),
            rss as f64 / rss_empty.max(1) as f64,
            mb(rss) <= 60.0,
        ),
        Row::new(
            "5. `groupbuy serve` start-up to ready (spawn → /healthz 200), 100,000 groups".into(),
            "≤ 300 ms",
            ms(ready),
            format!("{} on an empty database", ms(ready_empty)),
            ready.as_secs_f64() / ready_empty.as_secs_f64().max(1e-9),
            ready <= Duration::from_millis(300),
        ),
    ]
}

//! Issue [postgres] 4: three `groupbuy serve` instances in webhook mode on one PostgreSQL
//! database; 100 groups × 5 members pay through random instances, with duplicated updates,
//! and one instance is killed midway. Runs in the PostgreSQL suite.

use crate::db::fresh_postgres;
use crate::helpers::{library_ctx, tokyo};
use crate::support::bot_api::{self, TgUser};
use crate::support::{FakeBotApi, SmtpSink};
use groupbuy::app::Person;
use groupbuy::app::purchase::Payload;
use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

const GROUPS: i64 = 100;
const SEATS: i64 = 5;
const SECRET: &str = "multi-instance-secret";

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn start(fake: &FakeBotApi, smtp: &SmtpSink, db: &str, port: u16, admin: u16) -> Child {
    crate::helpers::serve_command(fake, smtp, db)
        .env("GROUPBUY_WEBHOOK_SECRET", SECRET)
        .env("GROUPBUY_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("GROUPBUY_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
        .spawn()
        .expect("groupbuy serve starts")
}

/// A small deterministic generator, so a failing order can be replayed.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn count(pool: &sqlx::AnyPool, sql: &'static str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .expect("query")
        .try_get(0)
        .expect("int")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_database_settle_every_group_once() {
    if !crate::db::postgres_or_skip("three_instances_on_one_database_settle_every_group_once") {
        return;
    }
    let fake = FakeBotApi::start().await;
    let smtp = SmtpSink::start().await;
    let db = fresh_postgres().await;
    let ctx = library_ctx(&fake, &smtp, &db).await;
    let pool = ctx.store.pool().clone();

    // 100 groups by 10 organisers; 500 buyers who have started the bot.
    for g in 0..GROUPS {
        let org = Person {
            id: groupbuy::domain::UserId::new(70_000 + g % 10),
            username: None,
            first_name: format!("Org{}", g % 10),
        };
        groupbuy::app::new_group::create(&ctx, 3_000_000 + g, &org, org.id.get(), "camera 5 7d")
            .await
            .expect("group");
    }
    let group_ids: Vec<i64> = {
        use sqlx::Row;
        sqlx::query("SELECT id FROM group_buys ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("ids")
            .iter()
            .map(|r| r.try_get(0).expect("id"))
            .collect()
    };
    let buyers: Vec<TgUser> = (0..GROUPS * SEATS)
        .map(|i| TgUser::new(80_000 + i, &format!("B{i}")))
        .collect();
    for b in &buyers {
        let p = Person {
            id: groupbuy::domain::UserId::new(b.id),
            username: None,
            first_name: b.first_name.clone(),
        };
        groupbuy::app::access::touch(&ctx, &p, true)
            .await
            .expect("touch");
    }

    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let admins: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut children: Vec<Option<Child>> = ports
        .iter()
        .zip(&admins)
        .map(|(p, a)| Some(start(&fake, &smtp, &db, *p, *a)))
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    for p in &admins {
        let deadline = Instant::now() + Duration::from_secs(60);
        while client
            .get(format!("http://127.0.0.1:{p}/healthz"))
            .send()
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "instance on {p} did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Every member's payment, in a shuffled order.
    let mut updates: Vec<serde_json::Value> = Vec::new();
    for (g, gid) in group_ids.iter().enumerate() {
        for k in 0..SEATS as usize {
            let b = &buyers[g * SEATS as usize + k];
            let payload = Payload {
                group_id: groupbuy::domain::GroupId::new(*gid),
                buyer_id: groupbuy::domain::UserId::new(b.id),
                price: groupbuy::domain::Money::from_minor(34_800).expect("price"),
                redeem: groupbuy::domain::Points::new(0),
                sku: groupbuy::domain::Sku::parse("camera").expect("sku"),
                nonce: String::new(),
            }
            .encode();
            let mut u = bot_api::successful_payment(
                b,
                "JPY",
                34_800,
                &payload,
                &format!("mi-{}", b.id),
                "prov",
                Some(tokyo()),
            );
            u["update_id"] = serde_json::json!(5_000_000 + updates.len() as i64);
            updates.push(u);
        }
    }
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for i in (1..updates.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        updates.swap(i, j);
    }
    let mut live: Vec<usize> = vec![0, 1, 2];
    let mut duplicates = 0;
    for (n, u) in updates.iter().enumerate() {
        if n == updates.len() / 2 {
            // Kill one instance midway, mid-flight.
            if let Some(mut c) = children[0].take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            live = vec![1, 2];
        }
        let first = live[(rng.next() % live.len() as u64) as usize];
        let mut targets = vec![first];
        if rng.next().is_multiple_of(5) {
            targets
                .push(live[(live.iter().position(|x| *x == first).unwrap_or(0) + 1) % live.len()]);
            duplicates += 1;
        }
        for t in targets {
            let status = client
                .post(format!("http://127.0.0.1:{}/telegram/webhook", ports[t]))
                .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                .json(u)
                .send()
                .await
                .expect("webhook post")
                .status();
            assert_eq!(status, 200);
        }
    }

    let notices = |fake: &FakeBotApi| {
        let mut m: HashMap<i64, usize> = HashMap::new();
        for c in fake.calls_to("sendMessage") {
            if !c.failed && c.text().is_some_and(|t| t.contains("points are yours")) {
                *m.entry(c.chat_id().unwrap_or_default()).or_default() += 1;
            }
        }
        m
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let settled = count(&pool, "SELECT COUNT(*) FROM settlements").await;
        if settled == GROUPS && notices(&fake).len() == buyers.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{settled} settlements, {} of {} notices delivered",
            notices(&fake).len(),
            buyers.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM settlements").await,
        GROUPS
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM purchases").await,
        GROUPS * SEATS
    );
    assert_eq!(
        count(&pool, "SELECT COUNT(*) FROM purchases WHERE counted = 1").await,
        GROUPS * SEATS
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM ledger WHERE txn LIKE 'settle:%' AND amount < 0"
        )
        .await,
        GROUPS * SEATS
    );
    assert_eq!(
        count(&pool, "SELECT CAST(SUM(amount) AS BIGINT) FROM ledger").await,
        0
    );
    let per_buyer = notices(&fake);
    let dup: usize = per_buyer.values().map(|n| n - 1).sum();
    let flagged = count(
        &pool,
        "SELECT COUNT(*) FROM outbox WHERE last_error LIKE 'in flight at a crash%'",
    )
    .await;
    assert!(
        dup as i64 <= flagged,
        "{dup} duplicate notices, {flagged} sends counted as in flight at the kill"
    );
    eprintln!(
        "multi-instance test: 3 instances (1 killed midway), {} payments posted ({duplicates} posted twice), {} settlements, {} credits, {} notices ({dup} duplicate; {flagged} sends in flight at the kill)",
        updates.len(),
        count(&pool, "SELECT COUNT(*) FROM settlements").await,
        count(
            &pool,
            "SELECT COUNT(*) FROM ledger WHERE txn LIKE 'settle:%' AND amount < 0"
        )
        .await,
        per_buyer.values().sum::<usize>()
    );
    for c in children.iter_mut().flatten() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

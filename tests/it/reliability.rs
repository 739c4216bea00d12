//! Fault injection: nothing lost, nothing doubled (issue [reliability]; RELIABILITY.md test
//! ids in each test's doc). Bounded in time; every server is on loopback.

use crate::helpers::*;
use crate::support::bot_api::{self, TgUser};
use crate::support::{FakeBotApi, Fault, SmtpSink};
use groupbuy::app::purchase::{self, Payload, Payment, Recorded};
use groupbuy::app::{Ctx, Person};
use serde_json::json;
use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn organiser() -> TgUser {
    TgUser::new(3001, "Olga").with_username("olga_org")
}

fn buyer(i: i64) -> Person {
    Person {
        id: groupbuy::domain::UserId::new(40_000 + i),
        username: None,
        first_name: format!("Buyer{i}"),
    }
}

/// Records a paid purchase for `p` straight through the use case (no chat round trip).
async fn pay(ctx: &Ctx, update_id: i64, p: &Person, group_id: i64, charge: &str) -> Recorded {
    let payload = Payload {
        group_id: groupbuy::domain::GroupId::new(group_id),
        buyer_id: p.id,
        price: groupbuy::domain::Money::from_minor(34_800).expect("price"),
        redeem: groupbuy::domain::Points::new(0),
        sku: groupbuy::domain::Sku::parse("camera").expect("sku"),
        nonce: String::new(),
    }
    .encode();
    let payment = Payment {
        currency: "JPY".into(),
        total: 34_800,
        payload,
        charge_id: charge.into(),
        provider_charge_id: format!("prov-{charge}"),
        recipient: Some(p.first_name.clone()),
        address: Some(purchase::Address {
            country_code: "JP".into(),
            state: format!("S{}", p.id),
            city: "Chiyoda".into(),
            street_line1: "1-1".into(),
            street_line2: String::new(),
            post_code: "100".into(),
        }),
    };
    purchase::record(ctx, update_id, p, &payment)
        .await
        .expect("payment recorded")
}

/// Makes `p` known to the bot (started it in private) with an email address.
async fn known_with_email(ctx: &Ctx, p: &Person) {
    groupbuy::app::access::touch(ctx, p, true)
        .await
        .expect("touch");
    let mut conn = ctx.store.read().await.expect("conn");
    groupbuy::store::users::set_email(&mut conn, p.id, &format!("buyer{}@example.com", p.id))
        .await
        .expect("email");
}

/// T-TG-11/12: webhook mode takes updates only with the right secret, answers fast, and a
/// redelivered update changes nothing.
#[tokio::test]
async fn webhook_mode_checks_the_secret_and_ignores_redeliveries() {
    let app = spawn_app_with(Options {
        extra_env: vec![("GROUPBUY_WEBHOOK_SECRET", "s3cret-Token_1-16".into())],
        ..Default::default()
    })
    .await;
    let set = app.fake.calls_to("setWebhook");
    assert_eq!(set.len(), 1, "setWebhook called once");
    assert_eq!(
        set[0].params["url"],
        json!("https://shop.example.com/telegram/webhook")
    );
    assert_eq!(set[0].params["secret_token"], json!("s3cret-Token_1-16"));
    let url = format!("http://{}/telegram/webhook", app.http);
    let alice = TgUser::new(3002, "Alice").with_username("alice");

    let update = bot_api::text_message(&alice, "/help");
    for secret in [None, Some("wrong"), Some(""), Some("S3CRET-TOKEN_1-16")] {
        let status = app
            .fake
            .post_to_webhook(&url, secret, update.clone())
            .await
            .expect("post");
        assert_eq!(status, 401, "secret {secret:?}");
    }
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM inbox").await,
        0,
        "nothing stored without the secret"
    );

    let mut with_id = update.clone();
    with_id["update_id"] = json!(777_001);
    let started = Instant::now();
    assert_eq!(
        app.fake
            .post_to_webhook(&url, Some("s3cret-Token_1-16"), with_id.clone())
            .await
            .expect("post"),
        200
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered without waiting for the handler"
    );
    app.message_to(alice.id, "<b>groupbuy</b>").await;
    assert_eq!(
        app.fake
            .post_to_webhook(&url, Some("s3cret-Token_1-16"), with_id)
            .await
            .expect("post"),
        200
    );

    let client = reqwest::Client::new();
    let bad = client
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", "s3cret-Token_1-16")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 400);
    let huge = client
        .post(&url)
        .header("X-Telegram-Bot-Api-Secret-Token", "s3cret-Token_1-16")
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .expect("post");
    assert_eq!(huge.status(), 413);

    app.say(&alice, "/points"); // not delivered in webhook mode: getUpdates is never called
    app.outbox_drained().await;
    assert_eq!(app.fake.calls_to("getUpdates").len(), 0);
    assert_eq!(
        app.messages_to(alice.id, "<b>groupbuy</b>"),
        1,
        "the redelivered update had no second effect"
    );
}

/// The same update delivered three times (T-PAY-02 for commands): one effect.
#[tokio::test]
async fn the_same_update_three_times_has_one_effect() {
    let app = spawn_app().await;
    let o = organiser();
    let id = app.say(&o, "/newgroup camera 3");
    app.message_to(o.id, "Your group purchase is open").await;
    let again = bot_api::text_message(&o, "/newgroup camera 3");
    app.fake.inject_raw_with_id(id, again.clone());
    app.fake.inject_raw_with_id(id, again);
    assert!(app.fake.wait_updates_drained(WAIT).await);
    app.say(&o, "/mygroups");
    app.message_to(o.id, "Your group purchases").await;
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM group_buys").await, 1);
    assert_eq!(app.messages_to(o.id, "Your group purchase is open"), 1);
    let metrics = app.ctx.metrics.render();
    assert!(
        metrics.contains("groupbuy_updates_duplicate_total 2"),
        "{metrics}"
    );
}

/// T-PAY-05: 20 payments race for the last 10 seats of a 20-seat group. One settlement; the
/// ten who were late are told their purchase does not count (and it still ships).
#[tokio::test]
async fn twenty_concurrent_payments_for_the_last_seats_settle_once() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    let key = app.new_group(&organiser(), "camera 20 7d").await;
    let group_id = app.sql_i64("SELECT id FROM group_buys").await;
    for i in 0..10 {
        let p = buyer(i);
        groupbuy::app::access::touch(&app.ctx, &p, true)
            .await
            .expect("touch");
        pay(&app.ctx, 500_000 + i, &p, group_id, &format!("early-{i}")).await;
    }
    let racers: Vec<TgUser> = (100..120)
        .map(|i| TgUser::new(40_000 + i, &format!("Racer{i}")))
        .collect();
    for r in &racers {
        let payload = Payload {
            group_id: groupbuy::domain::GroupId::new(group_id),
            buyer_id: groupbuy::domain::UserId::new(r.id),
            price: groupbuy::domain::Money::from_minor(34_800).expect("price"),
            redeem: groupbuy::domain::Points::new(0),
            sku: groupbuy::domain::Sku::parse("camera").expect("sku"),
            nonce: String::new(),
        }
        .encode();
        app.fake.inject(bot_api::successful_payment(
            r,
            "JPY",
            34_800,
            &payload,
            &format!("race-{}", r.id),
            "prov",
            Some(tokyo()),
        ));
    }
    assert!(
        app.fake
            .wait_until(
                |calls| racers
                    .iter()
                    .all(|r| count_texts(calls, r.id, "payment received") == 1),
                WAIT
            )
            .await,
        "every racer got one receipt"
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM purchases").await,
        30,
        "every payment recorded"
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM purchases WHERE counted = 1")
            .await,
        20
    );
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM settlements").await, 1);
    assert_eq!(app.sql_i64("SELECT buyers FROM settlements").await, 20);
    let late = racers
        .iter()
        .filter(|r| app.messages_to(r.id, "cannot count toward group") == 1)
        .count();
    assert_eq!(
        late, 10,
        "the ten late payers were told their money comes back"
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM shipping_requests").await,
        20,
        "every counted order ships, no refunded one does"
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM refunds WHERE reason IN ('full', 'late') AND status = 'due' AND method = 'provider'")
            .await,
        10,
        "every overflow payment is owed back"
    );
    app.message_to(
        organiser().id,
        &format!("Group <code>{key}</code> is settled"),
    )
    .await;
}

/// T-TG-01: a burst of notices meets 429 retry_after=2: each is delivered exactly once, and
/// the retry to each chat waits the two seconds.
#[tokio::test]
async fn a_429_burst_is_waited_out_and_every_notice_arrives_once() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    app.new_group(&organiser(), "camera 4 7d").await;
    let group_id = app.sql_i64("SELECT id FROM group_buys").await;
    let buyers: Vec<Person> = (200..204).map(buyer).collect();
    for (i, p) in buyers.iter().enumerate().take(3) {
        groupbuy::app::access::touch(&app.ctx, p, true)
            .await
            .expect("touch");
        pay(&app.ctx, 600_000 + i as i64, p, group_id, &format!("c{i}")).await;
    }
    app.outbox_drained().await;
    groupbuy::app::access::touch(&app.ctx, &buyers[3], true)
        .await
        .expect("touch");
    app.fake
        .fail_next("sendMessage", 5, Fault::TooManyRequests { retry_after: 2 });
    pay(&app.ctx, 600_010, &buyers[3], group_id, "c3").await; // fills the group: settles
    app.outbox_drained().await;
    let calls = app.fake.calls_to("sendMessage");
    let refused: Vec<_> = calls.iter().filter(|c| c.failed).collect();
    assert_eq!(refused.len(), 5, "the fake refused five sends");
    for p in &buyers {
        let ok: Vec<_> = calls
            .iter()
            .filter(|c| {
                !c.failed
                    && c.chat_id() == Some(p.id.get())
                    && c.text().is_some_and(|t| t.contains("points are yours"))
            })
            .collect();
        assert_eq!(ok.len(), 1, "buyer {} got one notice", p.id);
        if let Some(first_429) = refused.iter().find(|c| c.chat_id() == Some(p.id.get())) {
            let retry = calls
                .iter()
                .find(|c| !c.failed && c.chat_id() == Some(p.id.get()) && c.at > first_429.at)
                .expect("retried");
            assert!(
                retry.at.duration_since(first_429.at) >= Duration::from_millis(1_950),
                "retry_after honoured"
            );
        }
    }
    let metrics = app.ctx.metrics.render();
    assert!(
        metrics.contains("groupbuy_telegram_429_total 5"),
        "{metrics}"
    );
}

/// T-MAIL-01 (scaled): the SMTP server is down while a 50-buyer group settles, then comes
/// back: all 50 notices and 50 shipping requests arrive, once each.
#[tokio::test]
async fn smtp_down_during_settlement_then_every_email_arrives_once() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    app.new_group(&organiser(), "camera 50 7d").await;
    let group_id = app.sql_i64("SELECT id FROM group_buys").await;
    app.smtp.set_down(true);
    for i in 0..50 {
        let p = buyer(300 + i);
        known_with_email(&app.ctx, &p).await;
        pay(&app.ctx, 700_000 + i, &p, group_id, &format!("m{i}")).await;
    }
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM settlements").await, 1);
    // Let the worker fail on the mail at least once while the server is down.
    let deadline = Instant::now() + WAIT;
    while app
        .sql_i64("SELECT COUNT(*) FROM outbox WHERE channel = 'email' AND attempts > 0")
        .await
        == 0
    {
        assert!(Instant::now() < deadline, "mail was never attempted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(app.smtp.messages().is_empty());
    app.smtp.set_down(false);
    app.advance(3_700);
    assert!(
        app.smtp.wait_for_count(100, Duration::from_secs(60)).await,
        "100 emails after the server returned"
    );
    app.outbox_drained().await;
    let mails = app.smtp.messages();
    assert_eq!(mails.len(), 100);
    let ids: std::collections::HashSet<String> =
        mails.iter().filter_map(|m| m.message_id()).collect();
    assert_eq!(ids.len(), 100, "no duplicate Message-ID");
    for i in 0..50 {
        let to = format!("buyer{}@example.com", buyer(300 + i).id);
        assert_eq!(app.smtp.mails_to(&to).len(), 1, "{to} got one notice");
    }
    assert_eq!(app.smtp.mails_to("warehouse@example.com").len(), 50);
}

// ---- crash tests against the real binary ------------------------------------------------

struct Serve {
    child: Child,
}

impl Serve {
    fn start(fake: &FakeBotApi, smtp: &SmtpSink, db_url: &str, failpoint: Option<&str>) -> Self {
        let mut cmd = serve_command(fake, smtp, db_url);
        match failpoint {
            Some(f) => cmd.env("GROUPBUY_FAILPOINT", f),
            None => cmd.env_remove("GROUPBUY_FAILPOINT"),
        };
        Serve {
            child: cmd.spawn().expect("groupbuy serve starts"),
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to end by itself (an abort at a failpoint).
    async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the process did not end");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Notices (`points are yours`) successfully sent, per chat.
fn notices_per_chat(fake: &FakeBotApi) -> HashMap<i64, usize> {
    let mut m = HashMap::new();
    for c in fake.calls_to("sendMessage") {
        if !c.failed && c.text().is_some_and(|t| t.contains("points are yours")) {
            *m.entry(c.chat_id().unwrap_or_default()).or_default() += 1;
        }
    }
    m
}

/// T-PAY-06 and issue [reliability] 7: `groupbuy serve` dies inside the settlement
/// transaction of a 200-member group (failpoint), and again with `kill -9` while the 200
/// notices and emails go out. After restarts: one settlement, each member credited once,
/// every notice delivered; duplicates only for a send in flight at the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_settlement_of_200_members_then_restart() {
    const N: i64 = 200;
    let fake = FakeBotApi::start().await;
    let smtp = SmtpSink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = database_url(crate::db::Db::from_env(), dir.path()).await;

    // Seed 199 paid members through the library on the same database.
    let ctx = library_ctx(&fake, &smtp, &db).await;
    let org = Person {
        id: groupbuy::domain::UserId::new(3001),
        username: Some("olga_org".into()),
        first_name: "Olga".into(),
    };
    groupbuy::app::new_group::create(&ctx, 900_000, &org, org.id.get(), &format!("camera {N} 7d"))
        .await
        .expect("group");
    let group_id = 1;
    for i in 0..N - 1 {
        let p = buyer(1_000 + i);
        if i % 2 == 0 {
            known_with_email(&ctx, &p).await;
        } else {
            groupbuy::app::access::touch(&ctx, &p, true)
                .await
                .expect("touch");
        }
        pay(&ctx, 900_001 + i, &p, group_id, &format!("k{i}")).await;
    }
    sqlx::query("UPDATE outbox SET status = 'sent'")
        .execute(ctx.store.pool())
        .await
        .expect("receipts count as sent");
    let last = TgUser::new(buyer(1_000 + N - 1).id.get(), "Last");
    let payload = Payload {
        group_id: groupbuy::domain::GroupId::new(group_id),
        buyer_id: groupbuy::domain::UserId::new(last.id),
        price: groupbuy::domain::Money::from_minor(34_800).expect("price"),
        redeem: groupbuy::domain::Points::new(0),
        sku: groupbuy::domain::Sku::parse("camera").expect("sku"),
        nonce: String::new(),
    }
    .encode();

    // 1. Killed inside the settlement transaction.
    let mut serve = Serve::start(&fake, &smtp, &db, Some("settle_before_commit"));
    fake.inject(bot_api::successful_payment(
        &last,
        "JPY",
        34_800,
        &payload,
        "k-last",
        "prov",
        Some(tokyo()),
    ));
    let status = serve.wait_exit(Duration::from_secs(60)).await;
    assert!(!status.success(), "aborted at the failpoint: {status:?}");
    let count = |sql: &'static str| {
        let pool = ctx.store.pool().clone();
        async move {
            use sqlx::Row;
            sqlx::query(sql)
                .fetch_one(&pool)
                .await
                .expect("query")
                .try_get::<i64, _>(0)
                .expect("int")
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM settlements").await,
        0,
        "the aborted transaction left nothing"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM purchases").await,
        N,
        "the payment was committed before settling began"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM inbox WHERE handled_at IS NULL").await,
        1,
        "the update waits in the inbox"
    );

    // 2. Restarted: the pending update is handled, the group settles; killed mid-delivery.
    let mut serve = Serve::start(&fake, &smtp, &db, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while notices_per_chat(&fake).len() < 40 {
        assert!(
            Instant::now() < deadline,
            "notices did not start: {:?}",
            fake.sent_texts_to(last.id)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serve.kill9();
    let delivered_before_kill = notices_per_chat(&fake).len();
    assert!(
        delivered_before_kill < N as usize,
        "killed before all notices went out"
    );

    // 3. Restarted again: the rest goes out.
    let _serve = Serve::start(&fake, &smtp, &db, None);
    let deadline = Instant::now() + Duration::from_secs(90);
    let all_out = loop {
        let mails = smtp
            .messages()
            .iter()
            .filter(|m| m.subject().is_some_and(|s| s.contains("points back")))
            .count();
        if notices_per_chat(&fake).len() == N as usize && mails >= (N / 2) as usize {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        all_out,
        "every notice delivered: {} of {N}",
        notices_per_chat(&fake).len()
    );
    assert_eq!(count("SELECT COUNT(*) FROM settlements").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM purchases").await, N);
    assert_eq!(
        count(
            "SELECT COUNT(DISTINCT user_id) FROM ledger WHERE txn LIKE 'settle:%' AND amount < 0"
        )
        .await,
        N
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM ledger WHERE txn LIKE 'settle:%' AND amount < 0").await,
        N,
        "one credit each"
    );
    assert_eq!(
        count("SELECT CAST(SUM(amount) AS BIGINT) FROM ledger").await,
        0
    );
    let dup_tg: usize = notices_per_chat(&fake).values().map(|n| n - 1).sum();
    let notice_mails: Vec<_> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.subject().is_some_and(|s| s.contains("points back")))
        .collect();
    let unique_mails: std::collections::HashSet<String> =
        notice_mails.iter().filter_map(|m| m.message_id()).collect();
    assert_eq!(
        unique_mails.len(),
        (N / 2) as usize,
        "every email buyer got the notice"
    );
    let dup_mail = notice_mails.len() - unique_mails.len();
    // The worker sends one row at a time: at most one send was in flight at the kill.
    assert!(
        dup_tg + dup_mail <= 1,
        "duplicates: {dup_tg} by bot, {dup_mail} by email"
    );
    let flagged =
        count("SELECT COUNT(*) FROM outbox WHERE last_error LIKE 'in flight at a crash%'").await;
    assert!(
        flagged as usize >= dup_tg + dup_mail,
        "every duplicate was counted: {flagged} flagged"
    );
    assert!(flagged <= 1, "one send in flight at most: {flagged}");
    eprintln!(
        "kill test: {N} members, 1 settlement, {N} credits, {} bot notices ({dup_tg} duplicate), {} notice emails ({dup_mail} duplicate), {flagged} send(s) counted as in flight at the kill, {delivered_before_kill} notices out before the kill",
        notices_per_chat(&fake).values().sum::<usize>(),
        notice_mails.len()
    );
}

/// Issue [reliability] 5: the sweep and the filling purchase race, many times over; every
/// group settles exactly once and each buyer is credited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_and_final_purchase_race_settles_once() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    const ROUNDS: i64 = 30;
    for r in 0..ROUNDS {
        let org = Person {
            id: groupbuy::domain::UserId::new(3001),
            username: Some("olga_org".into()),
            first_name: "Olga".into(),
        };
        groupbuy::app::new_group::create(
            &app.ctx,
            800_000 + r * 10,
            &org,
            org.id.get(),
            "camera 2 7d",
        )
        .await
        .expect("group");
        let group_id = app.sql_i64("SELECT MAX(id) FROM group_buys").await;
        let (a, b) = (buyer(5_000 + r * 2), buyer(5_001 + r * 2));
        pay(&app.ctx, 800_001 + r * 10, &a, group_id, &format!("r{r}a")).await;
        let ctx = app.ctx.clone();
        let sweeper = tokio::spawn(async move { groupbuy::app::settle::sweep(&ctx).await });
        let recorded = pay(&app.ctx, 800_002 + r * 10, &b, group_id, &format!("r{r}b")).await;
        let swept = sweeper.await.expect("join").expect("sweep");
        assert!(
            matches!(recorded, Recorded::New { flag: None, .. }),
            "round {r}: {recorded:?}"
        );
        assert!(swept <= 1);
    }
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM settlements").await,
        ROUNDS
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM ledger WHERE txn LIKE 'settle:%' AND amount < 0")
            .await,
        ROUNDS * 2
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'summary:%'")
            .await,
        ROUNDS
    );
}

/// T-TG-10 and issue [reliability] 6: SIGTERM stops taking updates, finishes the work in
/// hand, confirms the polling offset, and exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_cleanly_and_confirms_the_offset() {
    let fake = FakeBotApi::start().await;
    let smtp = SmtpSink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = database_url(crate::db::Db::from_env(), dir.path()).await;
    let mut serve = Serve::start(&fake, &smtp, &db, None);
    let alice = TgUser::new(3100, "Alice");
    let id = fake.inject(bot_api::text_message(&alice, "/help"));
    assert!(
        fake.wait_for_call(
            |c| c.method == "sendMessage" && c.chat_id() == Some(alice.id),
            Duration::from_secs(60)
        )
        .await
        .is_some(),
        "the bot answered"
    );
    let pid = serve.child.id().to_string();
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exit = serve.wait_exit(Duration::from_secs(15)).await;
    assert!(exit.success(), "clean exit: {exit:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let confirmed = fake
        .calls_to("getUpdates")
        .iter()
        .filter_map(|c| c.params["offset"].as_i64())
        .max()
        .unwrap_or(0);
    assert!(
        confirmed > id,
        "the final getUpdates confirmed update {id} (offset {confirmed})"
    );
    assert_eq!(fake.pending_updates(), 0);
}

/// T-MAIL-04: a permanent SMTP refusal becomes a dead letter with the server's reason, listed
/// by `groupbuy outbox`, and `groupbuy outbox retry ID` puts it back in line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_smtp_refusal_is_a_dead_letter_the_operator_can_retry() {
    let app = spawn_app().await;
    app.smtp.reject_rcpt_next(1, 550, "5.1.1 no such user");
    app.new_group(&organiser(), "camera 3 nobody@example.com")
        .await;
    let deadline = Instant::now() + WAIT;
    while app
        .sql_i64("SELECT COUNT(*) FROM outbox WHERE status = 'dead'")
        .await
        == 0
    {
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = app
        .sql_i64("SELECT id FROM outbox WHERE status = 'dead'")
        .await;
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_groupbuy"))
            .args(args)
            .env("GROUPBUY_DATABASE_URL", &app.db_url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("groupbuy runs")
    };
    let listed = cli(&["outbox"]);
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.status.success());
    assert!(
        text.contains(&format!("{id}\tdead\temail:nobody@example.com"))
            && text.contains("no such user"),
        "{text}"
    );
    let retried = cli(&["outbox", "retry", &id.to_string()]);
    assert!(
        retried.status.success(),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    app.ctx.outbox_wake.notify_one();
    assert!(
        app.smtp.wait_for_count(1, WAIT).await,
        "sent again after the retry"
    );
    let missing = cli(&["outbox", "retry", "999999"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no unsent outbox row with id 999999")
    );
}

/// Update ids are not always increasing (Bot API: random after a week of silence): an
/// update with a lower id than the last one is still handled.
#[tokio::test]
async fn a_lower_update_id_is_still_handled() {
    let app = spawn_app().await;
    let alice = TgUser::new(3200, "Alice");
    app.fake
        .inject_raw_with_id(50_000, bot_api::text_message(&alice, "/help"));
    app.message_to(alice.id, "<b>groupbuy</b>").await;
    app.fake
        .inject_raw_with_id(17, bot_api::text_message(&alice, "/points"));
    app.message_to(alice.id, "Your points").await;
}

/// T-PAY-01: a pre-checkout query is answered quickly while another transaction holds the
/// database's write lock (reads do not wait for writers in WAL mode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_checkout_is_answered_while_the_write_lock_is_held() {
    let app = spawn_app().await;
    let alice = TgUser::new(3300, "Alice");
    let dave = TgUser::new(3301, "Dave");
    let key = app.new_group(&organiser(), "camera 3").await;
    let invoice = app.invoice_after(&alice, &format!("s:{key}:camera")).await;
    let payload = invoice.str_param("payload").expect("payload").to_string();
    // Approving holds the seat, a write under the group's lock (SQLite: the one writer;
    // PostgreSQL: the group's row): held for 2 s, the answer waits for it and approves.
    let lock = lock_group(&app).await;
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(lock);
    });
    let started = Instant::now();
    app.pre_checkout(&alice, "JPY", 34_800, &payload, true)
        .await;
    let took = started.elapsed();
    release.await.expect("released");
    assert!(took < Duration::from_secs(8), "answered in {took:?}");

    // Held past Telegram's 10 s (T-PAY-01): answered no at 8 s, with words the buyer can act
    // on, and nothing held.
    let invoice = app.invoice_after(&dave, &format!("s:{key}:camera")).await;
    let payload = invoice.str_param("payload").expect("payload").to_string();
    let lock = lock_group(&app).await;
    let started = Instant::now();
    let answer = app
        .pre_checkout(&dave, "JPY", 34_800, &payload, false)
        .await;
    let took = started.elapsed();
    drop(lock);
    assert!(
        took >= Duration::from_millis(7_500) && took < Duration::from_millis(9_500),
        "answered in {took:?}"
    );
    assert_eq!(
        answer.params["error_message"],
        serde_json::json!(groupbuy::replies::UserError::CheckoutBusy.plain())
    );
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM seat_holds").await, 1);
}

/// A write transaction holding the (only) group's lock, as a long settlement would.
async fn lock_group(app: &TestApp) -> groupbuy::store::Tx {
    let id = app.sql_i64("SELECT id FROM group_buys").await;
    let mut tx = app.ctx.store.write().await.expect("write lock");
    groupbuy::store::groups::lock(
        &mut tx,
        app.ctx.store.backend(),
        groupbuy::domain::GroupId::new(id),
    )
    .await
    .expect("group row lock")
    .expect("the group");
    tx
}

/// Review finding: a payment that cannot be recorded for a while (here: its database table
/// locked by another transaction for a few seconds) is not dropped; the update stays in the
/// inbox and is tried again until it is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_that_fails_to_record_is_retried_until_it_is() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    let key = app.new_group(&organiser(), "camera 3 7d").await;
    let buyer = TgUser::new(3400, "Alice");
    let invoice = app.invoice_after(&buyer, &format!("s:{key}:camera")).await;
    let payload = invoice.str_param("payload").expect("payload").to_string();
    // Make recording fail: the purchases table is renamed away until the handler has failed.
    sqlx::query("ALTER TABLE purchases RENAME TO purchases_away")
        .execute(app.ctx.store.pool())
        .await
        .expect("rename");
    let failed_before = app.ctx.metrics.errors_total.load(Ordering::Relaxed);
    let update_id = app.fake.inject(bot_api::successful_payment(
        &buyer,
        "JPY",
        34_800,
        &payload,
        "retry-charge",
        "prov",
        Some(tokyo()),
    ));
    // The handler has run and failed (each failed handling counts one error) ...
    let deadline = Instant::now() + WAIT;
    while app.ctx.metrics.errors_total.load(Ordering::Relaxed) == failed_before {
        assert!(Instant::now() < deadline, "the payment was never handled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ... and the update is still pending, with nothing recorded or told.
    let pending: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM inbox WHERE update_id = $1 AND handled_at IS NULL",
    )
    .bind(update_id)
    .fetch_one(app.ctx.store.pool())
    .await
    .expect("inbox");
    assert_eq!(pending, 1, "a payment that failed stays in the inbox");
    assert_eq!(app.messages_to(buyer.id, "payment received"), 0);
    // Only a retry can record it now.
    sqlx::query("ALTER TABLE purchases_away RENAME TO purchases")
        .execute(app.ctx.store.pool())
        .await
        .expect("rename back");
    app.message_to(buyer.id, "payment received").await;
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM purchases WHERE charge_id = 'retry-charge'")
            .await,
        1
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM inbox WHERE handled_at IS NULL")
            .await,
        0
    );
}

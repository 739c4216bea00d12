//! Issue [flood] 18: a crowd at once. Replies go through the outbox and its limiter like every
//! other message: with Telegram's limits enforced by the fake, and through a storm of 429s,
//! every person is answered exactly once and nobody is shown an error.

use crate::helpers::*;
use crate::support::bot_api::{self, Fault, TgUser};
use std::collections::HashMap;
use std::time::Duration;

const HELLO: &str = "Hello, ";
const OOPS: &str = "Something went wrong";

fn crowd(n: i64) -> Vec<TgUser> {
    (0..n)
        .map(|i| TgUser::new(8_000_000 + i, &format!("Guest{i}")))
        .collect()
}

/// Successful greetings per chat, and whether any message at all said something went wrong.
fn greetings(app: &TestApp) -> (HashMap<i64, usize>, usize) {
    let mut per_chat = HashMap::new();
    let mut oops = 0;
    for c in app.fake.calls_to("sendMessage") {
        let text = c.text().unwrap_or_default();
        oops += usize::from(text.contains(OOPS));
        if !c.failed
            && text.starts_with(HELLO)
            && let Some(chat) = c.chat_id()
        {
            *per_chat.entry(chat).or_insert(0) += 1;
        }
    }
    (per_chat, oops)
}

async fn wait_greeted(app: &TestApp, n: usize, within: Duration) -> bool {
    app.fake
        .wait_until(
            |calls| {
                calls
                    .iter()
                    .filter(|c| {
                        c.method == "sendMessage"
                            && !c.failed
                            && c.text().is_some_and(|t| t.starts_with(HELLO))
                    })
                    .count()
                    >= n
            },
            within,
        )
        .await
}

fn assert_each_answered_once(app: &TestApp, people: &[TgUser]) {
    let (per_chat, oops) = greetings(app);
    for p in people {
        assert_eq!(per_chat.get(&p.id), Some(&1), "{} answered once", p.id);
    }
    assert_eq!(oops, 0, "nobody is told something went wrong");
    let metrics = app.ctx.metrics.render();
    assert!(
        metrics.contains("groupbuy_replies_given_up_total 0"),
        "{metrics}"
    );
    assert!(metrics.contains("groupbuy_errors_total 0"), "{metrics}");
}

#[tokio::test]
async fn a_burst_of_100_starts_within_telegrams_limits_is_answered_once_each() {
    let app = spawn_app().await;
    app.fake.enforce_limits();
    let people = crowd(100);
    for p in &people {
        app.fake.inject(bot_api::text_message(p, "/start"));
    }
    // 100 answers at 30 a second take 3.4 s; far less than this.
    assert!(
        wait_greeted(&app, people.len(), Duration::from_secs(60)).await,
        "not everyone was answered: {:?}",
        greetings(&app).0.len()
    );
    app.outbox_drained().await;
    assert_each_answered_once(&app, &people);
    assert_eq!(
        app.fake.too_many_requests(),
        0,
        "the limiter kept to Telegram's limits"
    );
}

#[tokio::test]
async fn a_429_storm_on_replies_is_waited_out_and_each_is_answered_once() {
    let app = spawn_app().await;
    let people = crowd(10);
    app.fake
        .fail_next("sendMessage", 25, Fault::TooManyRequests { retry_after: 1 });
    let started = std::time::Instant::now();
    for p in &people {
        app.fake.inject(bot_api::text_message(p, "/start"));
    }
    assert!(
        wait_greeted(&app, people.len(), WAIT).await,
        "not everyone was answered: {:?}",
        greetings(&app).0
    );
    app.outbox_drained().await;
    assert_each_answered_once(&app, &people);
    let refused = app
        .fake
        .calls_to("sendMessage")
        .iter()
        .filter(|c| c.failed)
        .count();
    assert_eq!(refused, 25, "the storm happened");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "retry_after was waited out"
    );
    let metrics = app.ctx.metrics.render();
    assert!(
        metrics.contains("groupbuy_telegram_429_total 25"),
        "{metrics}"
    );
}

/// Invoices go through the outbox too: a 429 on one is waited out and it arrives once; one
/// that Telegram refuses is explained to the buyer once (nothing was charged).
#[tokio::test]
async fn invoices_wait_out_a_429_and_a_refused_one_is_explained_once() {
    let app = spawn_app().await;
    let organiser = TgUser::new(2_101, "Olga").with_username("olga_org");
    let buyer = TgUser::new(2_102, "Alice");
    let key = app.new_group(&organiser, "camera 3").await;
    let invoices = |ok: bool| {
        app.fake
            .calls_to("sendInvoice")
            .iter()
            .filter(|c| c.failed != ok && c.chat_id() == Some(buyer.id))
            .count()
    };

    app.fake
        .fail_next("sendInvoice", 1, Fault::TooManyRequests { retry_after: 1 });
    app.press(&buyer, &format!("s:{key}:camera"));
    let uid = buyer.id;
    app.fake
        .wait_for_call(
            move |c| c.method == "sendInvoice" && !c.failed && c.chat_id() == Some(uid),
            WAIT,
        )
        .await
        .expect("the invoice, after the 429");
    assert_eq!((invoices(true), invoices(false)), (1, 1));

    app.fake.fail_next(
        "sendInvoice",
        1,
        Fault::BadRequest("Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID".into()),
    );
    app.press(&buyer, &format!("s:{key}:camera"));
    app.message_to(buyer.id, "did not accept the invoice").await;
    app.outbox_drained().await;
    assert_eq!(app.messages_to(buyer.id, "did not accept the invoice"), 1);
    assert_eq!(app.messages_to(buyer.id, OOPS), 0);
    assert_eq!((invoices(true), invoices(false)), (1, 2));
}

/// An answer goes before bulk notices already queued: with 150 notices waiting (5 s at 30 a
/// second), a `/start` is answered at once, not after them.
#[tokio::test]
async fn an_answer_goes_before_queued_bulk_notices() {
    let app = spawn_app().await;
    app.fake.enforce_limits();
    let notices: Vec<_> = (0..150)
        .map(|i| {
            groupbuy::app::telegram_message(
                format!("bulk-test:{i}"),
                7_000_000 + i,
                "A notice".into(),
            )
        })
        .collect();
    {
        let mut tx = app.ctx.store.write().await.expect("write");
        groupbuy::store::outbox::enqueue_many(&mut tx, &notices, app.ctx.now())
            .await
            .expect("queued");
        tx.commit().await.expect("commit");
    }
    app.ctx.committed();
    // The worker is busy with the notices when the person writes.
    app.fake
        .wait_until(
            |calls| calls.iter().any(|c| c.text() == Some("A notice")),
            WAIT,
        )
        .await;
    let person = TgUser::new(8_500_000, "Eager");
    let asked = std::time::Instant::now();
    app.say(&person, "/start");
    let answer = app.message_to(person.id, HELLO).await;
    let notices_before = app
        .fake
        .calls_to("sendMessage")
        .iter()
        .filter(|c| !c.failed && c.text() == Some("A notice") && c.at < answer.at)
        .count();
    assert!(
        answer.at.duration_since(asked) < Duration::from_secs(1),
        "answered in {:?}",
        answer.at.duration_since(asked)
    );
    assert!(notices_before < 100, "{notices_before} notices went first");
    app.outbox_drained().await;
    assert_eq!(app.fake.too_many_requests(), 0);
}

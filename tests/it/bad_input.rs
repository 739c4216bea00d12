//! SPEC.md "Bad input": every case gets a precise reply to the person who caused it, and
//! nothing is lost or applied twice. Replies are compared with the catalogue's exact text.

use crate::helpers::*;
use crate::support::{Fault, TgUser};
use groupbuy::domain::member::MemberError;
use groupbuy::replies::UserError;
use serde_json::json;

fn org() -> TgUser {
    TgUser::new(2001, "Olga").with_username("olga_org")
}
fn alice() -> TgUser {
    TgUser::new(2002, "Alice").with_username("alice")
}
fn dave() -> TgUser {
    TgUser::new(2003, "Dave")
}
fn stranger() -> TgUser {
    TgUser::new(2004, "Sam").with_username("sam_stranger")
}

#[tokio::test]
async fn newgroup_mistakes_get_precise_replies() {
    let app = spawn_app().await;
    let o = org();
    let cases: Vec<(&str, UserError)> = vec![
        (
            "/newgroup telescope 3",
            UserError::UnknownProduct("telescope".into()),
        ),
        (
            "/newgroup camera 1",
            UserError::HeadCount {
                raw: "1".into(),
                min: 2,
                max: 1000,
            },
        ),
        (
            "/newgroup camera 5000",
            UserError::HeadCount {
                raw: "5000".into(),
                min: 2,
                max: 1000,
            },
        ),
        (
            "/newgroup camera 2 @alice @bobby_b 123",
            UserError::TooManyMembers {
                members: 3,
                seats: 2,
            },
        ),
        (
            "/newgroup camera 3 @alice @Alice",
            UserError::DuplicateMember("@alice".into()),
        ),
        (
            "/newgroup camera 3 carol@example",
            UserError::BadMember(MemberError::BadEmail("carol@example".into())),
        ),
        (
            "/newgroup camera 3 @al",
            UserError::BadMember(MemberError::BadUsername("@al".into())),
        ),
        (
            "/newgroup camera 3 @alice 9x",
            UserError::BadExpiry("9x".into()),
        ),
        ("/newgroup", UserError::NewGroupUsage),
        (
            "/newgroup a 3",
            UserError::AmbiguousProduct {
                query: "a".into(),
                candidates: vec!["camera".into(), "memory".into(), "scanner".into()],
            },
        ),
    ];
    for (command, expected) in cases {
        app.say(&o, command);
        app.exact_message_to(o.id, &expected.html()).await;
    }
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM group_buys").await,
        0,
        "no group was created by bad input"
    );
}

#[tokio::test]
async fn keys_unknown_malformed_expired_and_settled() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    let s = stranger();
    app.say(&s, "/join 23456789ABCDEFGHJK");
    app.exact_message_to(s.id, &UserError::UnknownKey.html())
        .await;
    app.say(&s, "/join hello");
    app.exact_message_to(s.id, &UserError::MalformedKey("hello".into()).html())
        .await;
    app.say(&s, "/join");
    app.exact_message_to(s.id, &UserError::KeyUsage("join").html())
        .await;
    app.say(&s, "/start NOT-A-KEY!");
    app.exact_message_to(s.id, &UserError::MalformedKey("NOT-A-KEY!".into()).html())
        .await;

    // Expired but not yet swept: the clock moves without poking the sweep.
    let key = app.new_group(&org(), "camera 2 1h").await;
    let expires = app.sql_i64("SELECT expires_at FROM group_buys").await;
    app.clock.advance(3_601);
    app.say(&s, &format!("/join {key}"));
    app.exact_message_to(
        s.id,
        &UserError::Expired {
            key: gk(&key),
            at: expires,
        }
        .html(),
    )
    .await;

    // Settled: the key is invalidated.
    app.advance(0);
    app.message_to(org().id, "is settled").await;
    app.say(&s, &format!("/buy {key}"));
    app.exact_message_to(s.id, &UserError::Settled { key: gk(&key) }.html())
        .await;
}

#[tokio::test]
async fn seats_full_members_only_and_second_purchases() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    app.say(&alice(), "/start");
    app.say(&dave(), "/start");

    // Members-only: both seats were named.
    let reserved = app.new_group(&org(), "camera 2 @alice 2003").await;
    app.say(&stranger(), &format!("/join {reserved}"));
    app.exact_message_to(
        stranger().id,
        &UserError::NotInvited { key: gk(&reserved) }.html(),
    )
    .await;

    // A second purchase by the same member is refused at the button and at pre-checkout.
    let open = app.new_group(&org(), "camera 3").await;
    let first = app
        .invoice_after(&alice(), &format!("s:{open}:camera"))
        .await;
    let second = app
        .invoice_after(&alice(), &format!("s:{open}:camera"))
        .await;
    app.checkout(&alice(), &first, tokyo()).await;
    app.press(&alice(), &format!("s:{open}:camera"));
    app.exact_message_to(
        alice().id,
        &UserError::AlreadyBought { key: gk(&open) }.html(),
    )
    .await;
    let answer = app
        .pre_checkout(
            &alice(),
            "JPY",
            34_800,
            second.str_param("payload").expect("payload"),
            false,
        )
        .await;
    assert_eq!(
        answer.params["error_message"],
        json!(UserError::AlreadyBought { key: gk(&open) }.plain())
    );

    // Full: the last seat goes to Dave; the stranger is too late.
    let late_invoice = app
        .invoice_after(&stranger(), &format!("s:{open}:camera"))
        .await;
    app.buy(&dave(), &open, "camera", tokyo()).await;
    app.buy(&TgUser::new(2005, "Erin"), &open, "memory", tokyo())
        .await;
    app.message_to(org().id, "is settled").await;
    app.say(&stranger(), &format!("/join {open}"));
    app.exact_message_to(stranger().id, &UserError::Settled { key: gk(&open) }.html())
        .await;

    // A payment that arrives anyway (Telegram took the money) is recorded, flagged, and owed
    // back; nothing ships.
    let payload = late_invoice
        .str_param("payload")
        .expect("payload")
        .to_string();
    let update = crate::support::bot_api::successful_payment(
        &stranger(),
        "JPY",
        34_800,
        &payload,
        "late-charge",
        "prov-late",
        Some(tokyo()),
    );
    app.fake.inject(update);
    app.message_to(stranger().id, "cannot count toward group")
        .await;
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM purchases WHERE flag = 'late' AND counted = 0")
            .await,
        1
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM shipping_requests").await,
        3
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM refunds WHERE charge_id = 'late-charge' AND reason = 'late' AND status = 'due'")
            .await,
        1
    );
    assert_eq!(
        app.sql_i64("SELECT buyers FROM settlements ORDER BY group_id DESC LIMIT 1")
            .await,
        3
    );
}

#[tokio::test]
async fn a_full_group_refuses_the_next_buyer_before_payment() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    let key = app.new_group(&org(), "camera 2 7d").await;
    let a = app
        .invoice_after(&alice(), &format!("s:{key}:camera"))
        .await;
    let d = app.invoice_after(&dave(), &format!("s:{key}:camera")).await;
    let s = app
        .invoice_after(&stranger(), &format!("s:{key}:camera"))
        .await;
    app.checkout(&alice(), &a, tokyo()).await;
    let payload = |c: &crate::support::Call| c.str_param("payload").expect("payload").to_string();
    // Dave's approved pre-checkout holds the last seat: the stranger is told no before paying.
    app.pre_checkout(&dave(), "JPY", 34_800, &payload(&d), true)
        .await;
    let answer = app
        .pre_checkout(&stranger(), "JPY", 34_800, &payload(&s), false)
        .await;
    assert_eq!(
        answer.params["error_message"],
        json!(UserError::SeatBeingPaid { key: gk(&key) }.plain())
    );
    app.checkout(&dave(), &d, tokyo()).await;
    // After it, the group is settled, and Telegram is told no with the reason.
    let answer = app
        .pre_checkout(&stranger(), "JPY", 34_800, &payload(&s), false)
        .await;
    assert_eq!(
        answer.params["error_message"],
        json!(UserError::Settled { key: gk(&key) }.plain())
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM purchases WHERE counted = 1")
            .await,
        2
    );
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM refunds").await, 0);
}

#[tokio::test]
async fn tampered_invoices_and_addresses_are_refused() {
    let app = spawn_app().await;
    let key = app.new_group(&org(), "camera 3").await;
    let inv = app
        .invoice_after(&alice(), &format!("s:{key}:camera"))
        .await;
    let payload = inv.str_param("payload").expect("payload").to_string();
    // Someone else presents Alice's invoice.
    let answer = app
        .pre_checkout(&dave(), "JPY", 34_800, &payload, false)
        .await;
    assert_eq!(
        answer.params["error_message"],
        json!(UserError::WrongBuyer.plain())
    );
    // A changed amount.
    let answer = app
        .pre_checkout(&alice(), "JPY", 100, &payload, false)
        .await;
    assert_eq!(
        answer.params["error_message"],
        json!(UserError::PriceChanged.plain())
    );
    // An address without a street or city.
    let mut nowhere = address("JP", "", "");
    nowhere.street_line1.clear();
    nowhere.city.clear();
    app.fake.inject(crate::support::bot_api::shipping_query(
        &alice(),
        "sq-bad",
        &payload,
        nowhere,
    ));
    let ans = app
        .fake
        .wait_for_call(
            |c| {
                c.method == "answerShippingQuery"
                    && c.str_param("shipping_query_id") == Some("sq-bad")
            },
            WAIT,
        )
        .await
        .expect("shipping answer");
    assert_eq!(ans.params["ok"], json!(false));
    assert_eq!(
        ans.params["error_message"],
        json!(UserError::BadAddress.plain())
    );
    // An old or forged button.
    app.press(&alice(), "zz:nothing");
    app.exact_message_to(alice().id, &UserError::StaleButton.html())
        .await;
}

#[tokio::test]
async fn user_supplied_strings_are_escaped() {
    let app = spawn_app().await;
    let evil = TgUser::new(2010, "<b>Eve</b> & co");
    app.say(&alice(), "/start");
    app.new_group(&evil, "camera 2 @alice").await;
    let prompt = app
        .message_to(alice().id, "invited you to buy together")
        .await;
    let text = prompt.text().expect("text");
    assert!(
        text.starts_with("&lt;b&gt;Eve&lt;/b&gt; &amp; co invited you"),
        "{text}"
    );
    app.say(&alice(), "/newgroup <script>alert(1)</script> 3");
    app.exact_message_to(
        alice().id,
        &UserError::UnknownProduct("<script>alert(1)</script>".into()).html(),
    )
    .await;
    assert!(
        app.fake
            .sent_texts_to(alice().id)
            .iter()
            .all(|t| !t.contains("<script>"))
    );
}

#[tokio::test]
async fn organiser_only_commands() {
    let app = spawn_app().await;
    let key = app.new_group(&org(), "camera 3 @alice").await;
    app.say(&alice(), &format!("/cancel {key}"));
    app.exact_message_to(alice().id, &UserError::NotOrganiser.html())
        .await;
    app.say(&org(), &format!("/cancel {key}"));
    app.message_to(org().id, "is cancelled").await;
    app.say(&alice(), &format!("/join {key}"));
    app.exact_message_to(alice().id, &UserError::Cancelled { key: gk(&key) }.html())
        .await;
}

#[tokio::test]
async fn smtp_down_means_queued_mail_delivered_when_it_returns() {
    let app = spawn_app().await;
    app.smtp.set_down(true);
    app.new_group(&org(), "camera 3 carol@example.com").await;
    // The worker tried and failed; the row waits with its reason.
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.sql_i64("SELECT COUNT(*) FROM outbox WHERE channel = 'email' AND attempts > 0 AND status = 'pending'").await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the email was never attempted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(app.smtp.messages().is_empty());
    app.smtp.set_down(false);
    app.advance(3_700);
    assert!(
        app.smtp.wait_for_count(1, WAIT).await,
        "the invitation arrives once the server is back"
    );
    app.outbox_drained().await;
    assert_eq!(app.smtp.mails_to("carol@example.com").len(), 1);
}

#[tokio::test]
async fn telegram_429_is_waited_out_and_the_message_arrives_once() {
    let app = spawn_app().await;
    app.say(&alice(), "/start");
    app.message_to(alice().id, "Hello, Alice").await;
    app.fake.fail_next_for_chat(
        "sendMessage",
        alice().id,
        1,
        Fault::TooManyRequests { retry_after: 1 },
    );
    let started = std::time::Instant::now();
    let key = app.new_group(&org(), "camera 3 @alice").await;
    let prompt = app
        .message_to(alice().id, "invited you to buy together")
        .await;
    let refused = app
        .fake
        .calls_to("sendMessage")
        .into_iter()
        .find(|c| c.failed && c.chat_id() == Some(alice().id))
        .expect("the 429");
    assert!(
        prompt.at.duration_since(refused.at) >= std::time::Duration::from_millis(950),
        "retry_after honoured"
    );
    app.outbox_drained().await;
    assert_eq!(
        app.messages_to(alice().id, "invited you to buy together"),
        1
    );
    assert!(started.elapsed() < WAIT);
    assert!(key.len() == 18);
}

#[tokio::test]
async fn a_user_who_blocked_the_bot_gets_email_instead() {
    let app = spawn_app().await;
    // Carol joins through her invitation, so her email is known.
    let key = app.new_group(&org(), "camera 3 carol@example.com").await;
    assert!(app.smtp.wait_for_count(1, WAIT).await);
    let payload = deep_link_payload(
        &app.smtp.mails_to("carol@example.com")[0]
            .text_body()
            .expect("text"),
    );
    let carol = TgUser::new(2020, "Carol");
    app.say(&carol, &format!("/start {payload}"));
    app.message_to(carol.id, "invited by email").await;
    let paid_before = app.smtp.messages().len();
    app.fake.fail_next_for_chat(
        "sendMessage",
        carol.id,
        1,
        Fault::Forbidden("Forbidden: bot was blocked by the user"),
    );
    app.buy_without_receipt_check(&carol, &key).await;
    assert!(
        app.smtp.wait_for_count(paid_before + 2, WAIT).await,
        "shipping request + receipt by email"
    );
    let fallback = app
        .smtp
        .mails_to("carol@example.com")
        .into_iter()
        .find(|m| {
            m.text_body()
                .is_some_and(|t| t.contains("payment received"))
        });
    assert!(fallback.is_some(), "the receipt went by email");
    assert_eq!(
        app.sql_i64("SELECT unreachable FROM users WHERE id = 2020")
            .await,
        1
    );
}

#[tokio::test]
async fn unknown_commands_and_chatter_get_help() {
    let app = spawn_app().await;
    app.say(&stranger(), "/frobnicate");
    app.message_to(stranger().id, "I don't know the command /frobnicate")
        .await;
    app.say(&stranger(), "hi there");
    app.message_to(stranger().id, "Hello, Sam! Here is what I can do.")
        .await;
    app.say(&stranger(), "/paysupport");
    app.message_to(stranger().id, "<b>Payment support</b>")
        .await;
}

#[tokio::test]
async fn status_and_cancel_key_guessing_is_slowed_too() {
    let app = spawn_app().await;
    let s = stranger();
    for i in 0..10 {
        app.say(&s, &format!("/status 23456789ABCDEFGH{:02}", i + 22));
    }
    app.say(&s, "/cancel 23456789ABCDEFGHJK");
    app.exact_message_to(s.id, &UserError::SlowDown.html())
        .await;
    let refused = app.messages_to(s.id, "I can't find a group purchase with that key")
        + app.messages_to(s.id, "is not a group key");
    assert_eq!(refused, 10, "ten misses answered before the slow-down");
}

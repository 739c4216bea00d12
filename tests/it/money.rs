//! Issue [money]: every payment counts toward its group or comes back, and the buyer is told
//! which. Seat holds at pre-checkout, refunds (Stars automatically, provider payments listed
//! for the operator), reversals before and after settlement, points never spent twice, the
//! right way to pay for each product, and a product taken off sale.

use crate::helpers::*;
use crate::support::{Call, TgUser, bot_api};
use groupbuy::app::refund::{self, Refusal};
use groupbuy::domain::payment::RefundMethod;
use groupbuy::domain::{Money, Product, ProductKind, Sku};
use groupbuy::replies::UserError;
use groupbuy::store::{ledger, products};
use serde_json::json;
use std::time::Duration;

fn bob() -> TgUser {
    TgUser::new(7001, "Bob").with_username("bob_organiser")
}
fn alice() -> TgUser {
    TgUser::new(7002, "Alice").with_username("alice")
}
fn dave() -> TgUser {
    TgUser::new(7003, "Dave")
}
fn erin() -> TgUser {
    TgUser::new(7004, "Erin")
}

fn payload(invoice: &Call) -> String {
    invoice.str_param("payload").expect("payload").to_string()
}

async fn app() -> TestApp {
    spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await
}

/// Without a payment provider: only digital goods (in Stars) can be sold.
async fn stars_only_app() -> TestApp {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        extra_env: vec![("GROUPBUY_PAYMENT_PROVIDER_TOKEN", String::new())],
        ..Default::default()
    })
    .await;
    let guide = Product {
        sku: Sku::parse("guide").expect("sku"),
        name: "Camera guide".into(),
        price: Money::from_minor(1_200).expect("price"),
        kind: ProductKind::Digital,
        stars: Some(120),
        discount: true,
    };
    let mut tx = app.ctx.store.write().await.expect("tx");
    products::upsert(&mut tx, &[guide], 0)
        .await
        .expect("upsert");
    tx.commit().await.expect("commit");
    app
}

async fn sum_of(app: &TestApp, account: &str, currency: &str) -> i64 {
    let mut conn = app.ctx.store.read().await.expect("connection");
    ledger::account_sum_in(&mut conn, account, currency)
        .await
        .expect("sum")
}

/// Waits until `sql` counts `n`.
async fn wait_count(app: &TestApp, sql: &'static str, n: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = app.sql_i64(sql).await;
        if got == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sql}: {got}, wanted {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Alice and Dave (both started) fill a two-camera group: each holds 1,044 points (3 %).
/// Returns the app and Dave's payment.
async fn alice_and_dave_filled_a_camera_group() -> (TestApp, Paid) {
    let app = app().await;
    app.say(&alice(), "/start");
    app.say(&dave(), "/start");
    let key = app.new_group(&bob(), "camera 2 @alice 7003").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    let dave_paid = app.buy(&dave(), &key, "camera", tokyo()).await;
    for who in [alice(), dave()] {
        app.message_to(who.id, "<b>1,044 points are yours.</b>")
            .await;
    }
    (app, dave_paid)
}

/// Alice's invoice for `sku` in `group` that redeems all 1,044 of her points.
async fn invoice_using_points(app: &TestApp, group: &str, sku: &str, name: &str) -> Call {
    app.press(&alice(), &format!("s:{group}:{sku}"));
    let ask = app
        .message_to(alice().id, &format!("Use them on {name}"))
        .await;
    let use_points = ask
        .callback_data()
        .into_iter()
        .find(|d| d.starts_with(&format!("p:{group}:1044:")))
        .expect("use-points button");
    app.invoice_after(&alice(), &use_points).await
}

fn provider_payment(user: &TgUser, payload: &str, charge: &str) -> serde_json::Value {
    bot_api::successful_payment(user, "JPY", 34_800, payload, charge, "prov", Some(tokyo()))
}

/// Bullet 1: a pre-checkout approved a few seconds before expiry holds the last seat; the
/// sweep does not settle the group while the hold is unlapsed, and the payment handled after
/// the expiry counts and fills the group.
#[tokio::test]
async fn a_payment_approved_in_time_counts_however_late_it_is_handled() {
    let app = app().await;
    let key = app.new_group(&bob(), "camera 2 30m").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    let invoice = app.invoice_after(&dave(), &format!("s:{key}:camera")).await;
    app.advance(30 * 60 - 10);
    app.pre_checkout(&dave(), "JPY", 34_800, &payload(&invoice), true)
        .await;
    // Past the expiry: a sweep runs (this one, and the worker's), but the held seat keeps
    // the group open.
    app.advance(60);
    let settled = groupbuy::app::settle::sweep(&app.ctx).await.expect("sweep");
    assert_eq!(settled, 0, "the held seat keeps the group open");
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM settlements").await, 0);
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM seat_holds").await, 1);
    // The payment is handled late (a backlog, a restart): it counts.
    app.fake
        .inject(provider_payment(&dave(), &payload(&invoice), "in-time"));
    app.message_to(dave().id, "<b>1,044 points are yours.</b>")
        .await;
    app.message_to(alice().id, "<b>1,044 points are yours.</b>")
        .await;
    assert_eq!(app.sql_i64("SELECT buyers FROM settlements").await, 2);
    assert_eq!(app.sql_i64("SELECT filled FROM settlements").await, 1);
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM refunds").await, 0);
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM seat_holds").await, 0);
    assert_ledger_balances(&app).await;
}

/// Bullets 1 and 2: a hold lapses after its time; the seat goes to the next payer, and the
/// first payer's payment, arriving after the group filled, is recorded and owed back (a
/// provider payment: refund-due, emailed to fulfilment, listed for the operator).
#[tokio::test]
async fn a_lapsed_hold_frees_the_seat_and_the_late_payment_comes_back() {
    let app = app().await;
    let key = app.new_group(&bob(), "camera 2 7d").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    let slow = app.invoice_after(&dave(), &format!("s:{key}:camera")).await;
    let next = app.invoice_after(&erin(), &format!("s:{key}:camera")).await;
    app.pre_checkout(&dave(), "JPY", 34_800, &payload(&slow), true)
        .await;
    // While Dave pays, the Buy button tells Erin so, and so does her payment sheet.
    app.press(&erin(), &format!("s:{key}:camera"));
    app.exact_message_to(
        erin().id,
        &UserError::SeatBeingPaid { key: gk(&key) }.html(),
    )
    .await;
    let refused = app
        .pre_checkout(&erin(), "JPY", 34_800, &payload(&next), false)
        .await;
    assert_eq!(
        refused.params["error_message"],
        json!(UserError::SeatBeingPaid { key: gk(&key) }.plain())
    );
    app.advance(groupbuy::domain::payment::SEAT_HOLD_SECS + 1);
    app.checkout(&erin(), &next, tokyo()).await;
    app.message_to(bob().id, "is settled").await;
    app.fake
        .inject(provider_payment(&dave(), &payload(&slow), "too-late"));
    let receipt = app.message_to(dave().id, "cannot count toward group").await;
    let text = receipt.text().expect("text");
    assert!(text.contains("the group had already closed"), "{text}");
    assert!(text.contains("The shop refunds 34,800 JPY"), "{text}");
    assert!(text.contains("too-late"), "the reference: {text}");
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM refunds WHERE charge_id = 'too-late' AND status = 'due' AND method = 'provider' AND reason = 'late'")
            .await,
        1
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM purchases WHERE counted = 1")
            .await,
        2
    );
    assert!(
        app.smtp.wait_for_count(3, WAIT).await,
        "2 shipping requests + the refund"
    );
    let mail = app
        .smtp
        .mails_to("warehouse@example.com")
        .into_iter()
        .find(|m| m.subject().is_some_and(|s| s.starts_with("Refund due")))
        .expect("refund-due email to fulfilment");
    let body = mail.text_body().expect("text part");
    assert!(body.contains("groupbuy refunds done too-late"), "{body}");
    assert_eq!(sum_of(&app, "refunds_due", "JPY").await, -34_800);
    assert_ledger_balances(&app).await;
}

/// Bullet 4: physical goods are never sold in Stars (without a provider the buyer is told and
/// nothing is charged); digital goods go in Stars at their own Stars price, with a
/// start_parameter; a Stars payment that cannot count is refunded automatically, exactly once,
/// through refundStarPayment, and Telegram's refunded_payment confirms it.
#[tokio::test]
async fn stars_are_for_digital_goods_and_come_back_automatically() {
    let app = stars_only_app().await;
    let physical = app.new_group(&bob(), "memory 2").await;
    app.press(&alice(), &format!("s:{physical}:memory"));
    app.exact_message_to(
        alice().id,
        &UserError::NotForSale {
            product: "Memory card".into(),
        }
        .html(),
    )
    .await;
    assert_eq!(
        app.fake
            .calls()
            .iter()
            .filter(|c| c.method == "sendInvoice")
            .count(),
        0
    );

    let key = app.new_group(&bob(), "guide 2").await;
    let first = app.invoice_after(&alice(), &format!("s:{key}:guide")).await;
    assert_eq!(first.params["currency"], json!("XTR"));
    assert_eq!(
        first.params["prices"],
        json!([{"label": "Camera guide", "amount": 120}])
    );
    assert_eq!(first.params["start_parameter"], json!(key));
    assert!(first.params.get("provider_token").is_none());
    assert!(first.params.get("need_shipping_address").is_none());
    let second = app.invoice_after(&alice(), &format!("s:{key}:guide")).await;
    app.pre_checkout(&alice(), "XTR", 120, &payload(&first), true)
        .await;
    app.fake.inject(bot_api::successful_payment(
        &alice(),
        "XTR",
        120,
        &payload(&first),
        "stars-1",
        "",
        None,
    ));
    let receipt = app.message_to(alice().id, "payment received").await;
    assert!(
        receipt
            .text()
            .is_some_and(|t| t.contains("Paid: 120 Stars")),
        "{:?}",
        receipt.text()
    );
    // A second payment by the same buyer (a repeat) cannot count: its Stars go back.
    app.fake.inject(bot_api::successful_payment(
        &alice(),
        "XTR",
        120,
        &payload(&second),
        "stars-2",
        "",
        None,
    ));
    let refunded = app
        .message_to(alice().id, "cannot count toward group")
        .await;
    assert!(
        refunded
            .text()
            .is_some_and(|t| t.contains("Your 120 Stars are being refunded")),
        "{:?}",
        refunded.text()
    );
    app.message_to(alice().id, "Refund complete").await;
    assert!(app.fake.star_refunded("stars-2"));
    assert!(!app.fake.star_refunded("stars-1"));
    wait_count(
        &app,
        "SELECT COUNT(*) FROM refunds WHERE charge_id = 'stars-2' AND status = 'done' AND reason = 'repeat'",
        1,
    )
    .await;
    app.outbox_drained().await;
    let calls = app.fake.calls();
    let refund_calls: Vec<_> = calls
        .iter()
        .filter(|c| c.method == "refundStarPayment")
        .collect();
    assert_eq!(refund_calls.len(), 1, "exactly one refund call per charge");
    assert_eq!(
        refund_calls[0].params,
        json!({"user_id": alice().id, "telegram_payment_charge_id": "stars-2"})
    );
    assert_eq!(app.messages_to(alice().id, "Refund complete"), 1);
    assert_eq!(sum_of(&app, "cash", "XTR").await, 120);
    assert_eq!(sum_of(&app, "refunds_due", "XTR").await, 0);
    assert_ledger_balances(&app).await;
}

/// Bullet 4, with a provider: invoices for physical goods are in the catalog currency, ask for
/// the address and carry a start_parameter (a forwarded copy has no Pay button).
#[tokio::test]
async fn physical_goods_go_through_the_provider_with_a_start_parameter() {
    let app = app().await;
    let key = app.new_group(&bob(), "camera 2").await;
    let invoice = app
        .invoice_after(&alice(), &format!("s:{key}:camera"))
        .await;
    assert_eq!(invoice.params["currency"], json!("JPY"));
    assert_eq!(invoice.params["start_parameter"], json!(key));
    assert_eq!(invoice.params["need_shipping_address"], json!(true));
    assert_eq!(
        invoice.params["provider_token"],
        json!("TEST-PROVIDER-TOKEN")
    );
    // A forwarded copy paid by someone else is refused at pre-checkout, charging nothing.
    let refused = app
        .pre_checkout(&dave(), "JPY", 34_800, &payload(&invoice), false)
        .await;
    assert_eq!(
        refused.params["error_message"],
        json!(UserError::WrongBuyer.plain())
    );
}

/// Bullet 2: the operator reverses a purchase while its group is open: the seat is released,
/// the points it used come back, the money is owed back until `refunds done`; a second
/// reversal or an unknown charge changes nothing.
#[tokio::test]
async fn an_operator_refund_releases_the_seat_and_returns_the_points() {
    let (app, _) = alice_and_dave_filled_a_camera_group().await;
    let key = app.new_group(&bob(), "memory 3").await;
    let invoice = invoice_using_points(&app, &key, "memory", "Memory card").await;
    app.pre_checkout(&alice(), "JPY", 6_780 - 1_044, &payload(&invoice), true)
        .await;
    app.fake.inject(bot_api::successful_payment(
        &alice(),
        "JPY",
        6_780 - 1_044,
        &payload(&invoice),
        "with-points",
        "prov",
        Some(tokyo()),
    ));
    app.message_to(alice().id, "Points used: 1044").await;
    assert_eq!(balance(&app, alice().id).await, 0);

    let reversed = refund::reverse(&app.ctx, "with-points")
        .await
        .expect("reverse")
        .expect("reversed");
    assert_eq!(reversed.method, RefundMethod::Provider);
    assert_eq!(reversed.clawed_back, 0);
    assert_eq!(balance(&app, alice().id).await, 1_044, "points came back");
    assert_eq!(
        app.sql_i64(
            "SELECT COUNT(*) FROM purchases WHERE charge_id = 'with-points' AND counted = 1"
        )
        .await,
        0,
        "the seat is released"
    );
    let told = app.message_to(alice().id, "was refunded").await;
    assert!(
        told.text()
            .is_some_and(|t| t.contains("The 1044 points it used are back")),
        "{:?}",
        told.text()
    );
    assert_eq!(
        refund::reverse(&app.ctx, "with-points").await.expect("db"),
        Err(Refusal::AlreadyDue("with-points".into()))
    );
    assert_eq!(
        refund::reverse(&app.ctx, "no-such-charge")
            .await
            .expect("db"),
        Err(Refusal::UnknownCharge("no-such-charge".into()))
    );
    assert_eq!(sum_of(&app, "refunds_due", "JPY").await, -(6_780 - 1_044));
    refund::mark_paid(&app.ctx, "with-points")
        .await
        .expect("db")
        .expect("closed");
    app.message_to(alice().id, "Refund complete").await;
    assert!(matches!(
        refund::mark_paid(&app.ctx, "with-points")
            .await
            .expect("db"),
        Err(Refusal::AlreadyRefunded { .. })
    ));
    assert_eq!(sum_of(&app, "refunds_due", "JPY").await, 0);
    // The released seat can be bought again.
    app.buy(&erin(), &key, "memory", tokyo()).await;
    assert_ledger_balances(&app).await;
}

/// Bullet 2, after settlement: the reversed buyer's own credit is taken back (never below a
/// zero balance); the other buyers keep theirs, and the settlement stands.
#[tokio::test]
async fn a_refund_after_settlement_takes_back_only_that_buyers_credit() {
    let (app, dave_paid) = alice_and_dave_filled_a_camera_group().await;
    let reversed = refund::reverse(&app.ctx, &dave_paid.charge_id)
        .await
        .expect("reverse")
        .expect("reversed");
    assert_eq!(reversed.clawed_back, 1_044);
    assert_eq!(balance(&app, dave().id).await, 0);
    assert_eq!(balance(&app, alice().id).await, 1_044, "Alice keeps hers");
    assert_eq!(app.sql_i64("SELECT buyers FROM settlements").await, 2);
    let told = app.message_to(dave().id, "was refunded").await;
    assert!(
        told.text()
            .is_some_and(|t| t.contains("1044 points this purchase earned")),
        "{:?}",
        told.text()
    );
    assert_ledger_balances(&app).await;
}

/// Bullet 2: Telegram's `refunded_payment` for a Stars payment we did not refund reverses the
/// purchase once; a report with a wrong amount, or the same report again, changes nothing.
#[tokio::test]
async fn a_refunded_payment_from_telegram_reverses_the_purchase_once() {
    let app = stars_only_app().await;
    let key = app.new_group(&bob(), "guide 3").await;
    let invoice = app.invoice_after(&alice(), &format!("s:{key}:guide")).await;
    app.pre_checkout(&alice(), "XTR", 120, &payload(&invoice), true)
        .await;
    app.fake.inject(bot_api::successful_payment(
        &alice(),
        "XTR",
        120,
        &payload(&invoice),
        "stars-9",
        "",
        None,
    ));
    app.message_to(alice().id, "payment received").await;
    let report = |total: i64| {
        bot_api::refunded_payment(&alice().json(), "XTR", total, &payload(&invoice), "stars-9")
    };
    let wrong = app.fake.inject(report(119));
    app.handled(wrong).await;
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM refunds").await, 0);
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM purchases WHERE counted = 1")
            .await,
        1
    );
    app.fake.inject(report(120));
    app.message_to(alice().id, "was refunded").await;
    wait_count(
        &app,
        "SELECT COUNT(*) FROM refunds WHERE charge_id = 'stars-9' AND status = 'done' AND reason = 'reversed'",
        1,
    )
    .await;
    let again = app.fake.inject(report(120));
    app.handled(again).await;
    app.outbox_drained().await;
    assert_eq!(app.messages_to(alice().id, "was refunded"), 1);
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM purchases WHERE counted = 1")
            .await,
        0
    );
    assert_eq!(
        app.fake
            .calls()
            .iter()
            .filter(|c| c.method == "refundStarPayment")
            .count(),
        0,
        "Telegram refunded it already: no call"
    );
    assert_eq!(sum_of(&app, "cash", "XTR").await, 0);
    assert_ledger_balances(&app).await;
}

/// Bullet 3: points spent meanwhile (the first invoice's hold lapsed and a second invoice
/// spent them) make the first payment a refund, never a negative balance.
#[tokio::test]
async fn points_spent_meanwhile_are_refunded_never_overdrawn() {
    let (app, _) = alice_and_dave_filled_a_camera_group().await;
    let (one, two) = (
        app.new_group(&bob(), "memory 3").await,
        app.new_group(&bob(), "scanner 3").await,
    );
    let invoices = [
        invoice_using_points(&app, &one, "memory", "Memory card").await,
        invoice_using_points(&app, &two, "scanner", "Photo scanner").await,
    ];
    app.pre_checkout(&alice(), "JPY", 6_780 - 1_044, &payload(&invoices[0]), true)
        .await;
    app.advance(groupbuy::domain::payment::SEAT_HOLD_SECS + 1);
    app.pre_checkout(
        &alice(),
        "JPY",
        29_800 - 1_044,
        &payload(&invoices[1]),
        true,
    )
    .await;
    app.fake.inject(bot_api::successful_payment(
        &alice(),
        "JPY",
        29_800 - 1_044,
        &payload(&invoices[1]),
        "spends-them",
        "prov",
        Some(tokyo()),
    ));
    app.message_to(alice().id, "Photo scanner: 29,800 JPY")
        .await;
    assert_eq!(balance(&app, alice().id).await, 0);
    app.fake.inject(bot_api::successful_payment(
        &alice(),
        "JPY",
        6_780 - 1_044,
        &payload(&invoices[0]),
        "too-few-points",
        "prov",
        Some(tokyo()),
    ));
    let told = app
        .message_to(alice().id, "cannot count toward group")
        .await;
    assert!(
        told.text()
            .is_some_and(|t| t.contains("were spent on another purchase")),
        "{:?}",
        told.text()
    );
    assert_eq!(balance(&app, alice().id).await, 0, "never below zero");
    assert_eq!(
        app.sql_i64(
            "SELECT COUNT(*) FROM refunds WHERE charge_id = 'too-few-points' AND reason = 'points'"
        )
        .await,
        1
    );
    assert_ledger_balances(&app).await;
}

/// Bullet 5: a product taken out of the catalog still settles its groups, named as before.
#[tokio::test]
async fn a_product_taken_off_sale_still_settles() {
    let app = app().await;
    let key = app.new_group(&bob(), "camera 2 2h").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    {
        let mut tx = app.ctx.store.write().await.expect("tx");
        assert!(
            products::take_off_sale(&mut tx, &Sku::parse("camera").expect("sku"), 0)
                .await
                .expect("off sale")
        );
        tx.commit().await.expect("commit");
    }
    app.advance(2 * 3_600 + 1);
    let summary = app.message_to(bob().id, "is settled").await;
    assert!(
        summary.text().is_some_and(|t| t.contains("Digital camera")),
        "{:?}",
        summary.text()
    );
    app.message_to(alice().id, "Group <code>").await;
}

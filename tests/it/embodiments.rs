//! Issue [embodiments]: the patent's other embodiments, chosen per group at `/newgroup` and
//! per product in the catalog — the policy word (¶0060/¶0086), no expiry with `/close`
//! (¶0145), products without discount (¶0146). Each settles, notifies and shows its page.

use crate::helpers::*;
use crate::scenarios::{alice, bob, carol, dave};
use groupbuy::domain::{Money, Policy, Product, ProductKind, Sku};
use groupbuy::replies::UserError;
use groupbuy::store::products;

/// The page of a group, as a browser gets it.
async fn page(app: &TestApp, key: &str) -> String {
    reqwest::get(format!("http://{}/g/{key}", app.http))
        .await
        .expect("the web side answers")
        .text()
        .await
        .expect("body")
}

/// Waits for a message to `chat` saying `needle`, and asserts it also says `also`.
async fn says(app: &TestApp, chat: i64, needle: &str, also: &str) {
    let call = app.message_to(chat, needle).await;
    let text = call.text().unwrap_or_default();
    assert!(text.contains(also), "{also:?} not in {text:?}");
}

/// A camera buyer's notice at the two-person tier: 3 % of 34,800.
const THREE_PERCENT: &str = "<b>1,044 points are yours.</b>";

/// Alice and Dave, who bought a camera each, are told they got the two-person tier.
async fn both_get_three_percent(app: &TestApp) {
    app.message_to(alice().id, THREE_PERCENT).await;
    app.message_to(dave().id, THREE_PERCENT).await;
}

/// The service under `policy` (and more settings), no region bonus, Alice and Dave started.
async fn started(policy: &'static str, extra_env: Vec<(&'static str, String)>) -> TestApp {
    let app = spawn_app_with(Options {
        policy,
        no_region_bonus: true,
        extra_env,
        ..Default::default()
    })
    .await;
    app.say(&alice(), "/start");
    app.say(&dave(), "/start");
    app.message_to(dave().id, "Hello").await;
    app
}

#[tokio::test]
async fn embodiments_policy_word_partial_overrides_an_all_or_nothing_default() {
    let app = started("all_or_nothing", vec![]).await;
    let key = app
        .new_group(&bob(), "camera 3 @alice 1234567 2h partial")
        .await;
    says(
        &app,
        bob().id,
        "Your group purchase is open",
        "Policy: partial, an unfilled group gets the tier of the buyers it has.",
    )
    .await;
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM group_buys WHERE policy = 'partial'")
            .await,
        1
    );
    let html = page(&app, &key).await;
    assert!(
        html.contains(
            "If the group has not filled when it expires, everyone gets the tier reached by then."
        ),
        "{html}"
    );
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.buy(&dave(), &key, "camera", tokyo()).await;
    app.advance(2 * 3_600 + 1);
    // 3 % of 34,800 = 1,044: the two-person tier although the default is all or nothing.
    both_get_three_percent(&app).await;
    app.message_to(bob().id, "is settled").await;
    assert_eq!(balance(&app, alice().id).await, 1_044);
    assert_ledger_balances(&app).await;
}

#[tokio::test]
async fn embodiments_policy_word_all_overrides_a_partial_default() {
    let app = started("partial", vec![]).await;
    let key = app
        .new_group(&bob(), "camera 3 ALL @alice 1234567 2h")
        .await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.buy(&dave(), &key, "camera", tokyo()).await;
    app.advance(2 * 3_600 + 1);
    says(
        &app,
        alice().id,
        "Your group purchase has closed",
        "did not fill before it expired (2 of 3 bought), so under its all-or-nothing rule",
    )
    .await;
    assert_eq!(balance(&app, alice().id).await, 0);
    assert_eq!(app.sql_i64("SELECT total_points FROM settlements").await, 0);
    assert_ledger_balances(&app).await;
}

#[tokio::test]
async fn embodiments_policy_words_refused_precisely() {
    let app = started(
        "all_or_nothing",
        vec![("GROUPBUY_POLICY_CHOICE", "false".into())],
    )
    .await;
    app.say(&bob(), "/newgroup camera 3 Partial");
    app.exact_message_to(
        bob().id,
        &UserError::PolicyFixed {
            word: "Partial".into(),
            policy: Policy::AllOrNothing,
        }
        .html(),
    )
    .await;
    app.say(&bob(), "/newgroup camera 3 all partial");
    app.exact_message_to(bob().id, &UserError::PolicyTwice("partial".into()).html())
        .await;
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM group_buys").await, 0);
    // Without a word the operator's policy applies, as before.
    app.new_group(&bob(), "camera 3").await;
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM group_buys WHERE policy = 'all_or_nothing'")
            .await,
        1
    );
}

#[tokio::test]
async fn embodiments_never_expiring_group_waits_then_settles_when_full() {
    let app = started("all_or_nothing", vec![]).await;
    let key = app.new_group(&bob(), "camera 2 @alice 1234567 never").await;
    let settles = format!(
        "No expiry: it settles when every seat is bought, or when you send <code>/close {key}</code>."
    );
    says(&app, bob().id, "Your group purchase is open", &settles).await;
    let no_expiry = "No expiry: open until every seat is bought";
    says(&app, alice().id, "invited you", no_expiry).await;
    // Nothing to extend: the organiser is told why, and the group keeps no expiry.
    app.say(&bob(), &format!("/extend {key} 24h"));
    app.message_to(bob().id, "has no expiry, so there is nothing to extend")
        .await;
    assert_eq!(
        app.sql_i64("SELECT expires_at FROM group_buys").await,
        253_402_300_799
    );
    app.buy(&alice(), &key, "camera", tokyo()).await;
    // A year and more later: still open, still buyable, not settled.
    app.advance(400 * 86_400);
    app.say(&alice(), &format!("/status {key}"));
    app.message_to(alice().id, "No expiry: open until every seat is bought")
        .await;
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM settlements").await, 0);
    let html = page(&app, &key).await;
    assert!(html.contains("id=\"no-expiry\""), "{html}");
    assert!(!html.contains("9999"), "{html}");
    app.buy(&dave(), &key, "camera", tokyo()).await;
    app.message_to(alice().id, THREE_PERCENT).await;
    app.message_to(bob().id, "is settled").await;
    assert_ledger_balances(&app).await;
}

#[tokio::test]
async fn embodiments_close_settles_now_under_the_group_policy_and_refuses_precisely() {
    let app = started("all_or_nothing", vec![]).await;
    let key = app
        .new_group(&bob(), "camera 3 @alice 1234567 never partial")
        .await;
    app.buy(&alice(), &key, "camera", tokyo()).await;

    // Dave's payment is approved, not yet made: his seat is held, so /close waits for it.
    let invoice = app.invoice_after(&dave(), &format!("s:{key}:camera")).await;
    let approved = app.approve(&dave(), &invoice, tokyo()).await;
    app.say(&bob(), &format!("/close {key}"));
    app.exact_message_to(
        bob().id,
        &UserError::CloseWhilePaying { key: gk(&key) }.html(),
    )
    .await;
    app.pay(&dave(), &approved, tokyo()).await;

    // Not the organiser, no key, an unknown key: refused, nothing changes.
    app.say(&alice(), &format!("/close {key}"));
    app.exact_message_to(alice().id, &UserError::NotOrganiser.html())
        .await;
    app.say(&bob(), "/close");
    app.exact_message_to(bob().id, &UserError::KeyUsage("close").html())
        .await;
    app.say(&bob(), "/close 23456789ABCDEFGHJN");
    app.exact_message_to(bob().id, &UserError::UnknownKey.html())
        .await;
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM settlements").await, 0);

    // The organiser closes it: two of three under partial get the two-person tier now.
    app.say(&bob(), &format!("/close {key}"));
    app.message_to(bob().id, "is closed and settled now with its 2 buyer(s)")
        .await;
    both_get_three_percent(&app).await;
    says(&app, bob().id, "is settled", "2 of 3 bought").await;
    app.say(&bob(), &format!("/close {key}"));
    app.exact_message_to(bob().id, &UserError::Settled { key: gk(&key) }.html())
        .await;
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM settlements").await, 1);
    assert_ledger_balances(&app).await;
}

#[tokio::test]
async fn embodiments_close_under_all_or_nothing_says_why_there_is_no_discount() {
    let app = started("all_or_nothing", vec![]).await;
    let key = app.new_group(&bob(), "camera 3 @alice 7d").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.say(&bob(), &format!("/close {key}"));
    let why = "did not fill before its organiser closed it (1 of 3 bought), so under its all-or-nothing rule there is no discount.";
    says(&app, alice().id, "Your group purchase has closed", why).await;
    assert_eq!(balance(&app, alice().id).await, 0);
    assert_ledger_balances(&app).await;
}

#[tokio::test]
async fn embodiments_product_without_discount_sells_ships_and_credits_nothing() {
    // With the region bonus on: two Tokyo buyers would earn it on a discounted product.
    let app = spawn_app().await;
    app.say(&alice(), "/start");
    app.say(&dave(), "/start");
    app.message_to(dave().id, "Hello").await;
    let rare = Product {
        sku: Sku::parse("rare").expect("sku"),
        name: "Rare lens".into(),
        price: Money::from_minor(50_000).expect("price"),
        kind: ProductKind::Physical,
        stars: None,
        discount: false,
    };
    {
        let mut tx = app.ctx.store.write().await.expect("tx");
        products::upsert(&mut tx, &[rare], 0).await.expect("upsert");
        tx.commit().await.expect("commit");
    }
    let no_discount = "This product is sold without a group discount";
    let key = app.new_group(&bob(), "rare 2 @alice 1234567").await;
    let created = app
        .message_to(bob().id, "Your group purchase is open")
        .await;
    let text = created.text().expect("text");
    assert!(
        text.contains(no_discount) && !text.contains("Discount tiers"),
        "{text}"
    );
    let prompt = app.message_to(alice().id, "invited you").await;
    let card = prompt.text().expect("text");
    assert!(
        card.contains(no_discount) && !card.contains("back as points"),
        "{card}"
    );
    let html = page(&app, &key).await;
    assert!(html.contains("id=\"no-discount\""), "{html}");
    assert!(!html.contains("tiers-heading"), "{html}");

    app.buy(&alice(), &key, "rare", tokyo()).await;
    app.buy(&dave(), &key, "rare", tokyo()).await;
    says(
        &app,
        alice().id,
        "Your group purchase has closed",
        no_discount,
    )
    .await;
    says(&app, bob().id, "is settled", no_discount).await;
    assert_eq!(balance(&app, alice().id).await, 0);
    assert_eq!(balance(&app, dave().id).await, 0);
    assert_eq!(app.sql_i64("SELECT total_points FROM settlements").await, 0);
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM shipping_requests").await,
        2,
        "both orders ship"
    );
    assert_ledger_balances(&app).await;
}

#[tokio::test]
async fn embodiments_open_head_count_takes_the_tier_of_its_buyers_at_expiry() {
    let app = started("all_or_nothing", vec![]).await;
    let key = app.new_group(&bob(), "camera any 2h").await;
    let created = app
        .message_to(bob().id, "Your group purchase is open")
        .await;
    assert!(
        created
            .text()
            .is_some_and(|t| t.contains("open head count, at most 1000")
                && t.contains("Anyone with the key or link may join.")),
        "{:?}",
        created.text()
    );
    assert_eq!(app.sql_i64("SELECT open_count FROM group_buys").await, 1);
    app.say(&alice(), &format!("/join {key}"));
    says(
        &app,
        alice().id,
        "Buyers so far: 0",
        "Next tier: 2 buyers → 3% back (2 more buyers).",
    )
    .await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.buy(&dave(), &key, "camera", tokyo()).await;
    app.say(&alice(), &format!("/status {key}"));
    app.message_to(alice().id, "Next tier: 3 buyers → 5% back (1 more buyer).")
        .await;
    let html = page(&app, &key).await;
    assert!(html.contains("id=\"open-count\""), "{html}");
    assert!(
        html.contains("Next tier: 3 buyers → 5% back (1 more buyer)."),
        "{html}"
    );
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM settlements").await, 0);
    app.advance(2 * 3_600 + 1);
    // Two buyers under all or nothing would get nothing: an open count has no N to miss.
    says(&app, alice().id, THREE_PERCENT, "closed with 2 buyers").await;
    app.message_to(dave().id, THREE_PERCENT).await;
    says(&app, bob().id, "is settled", ": 2 bought.").await;
    assert_ledger_balances(&app).await;
}

#[tokio::test]
async fn embodiments_open_head_count_without_expiry_ends_at_close() {
    let app = started("all_or_nothing", vec![]).await;
    let key = app.new_group(&bob(), "camera any never").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.advance(400 * 86_400);
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM settlements").await, 0);
    app.say(&bob(), &format!("/close {key}"));
    app.message_to(bob().id, "is closed and settled now with its 1 buyer(s)")
        .await;
    // One buyer reaches no tier.
    let notice = app
        .message_to(alice().id, "Your group purchase has closed")
        .await;
    assert!(
        notice.text().is_some_and(
            |t| t.contains("closed with 1 buyers. Its 1 buyer(s) reach no discount tier.")
        ),
        "{:?}",
        notice.text()
    );
    assert_eq!(balance(&app, alice().id).await, 0);
    assert_ledger_balances(&app).await;
}

#[tokio::test]
async fn embodiments_region_rate_raises_the_rate_of_buyers_sharing_a_region_in_the_window() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        extra_toml: "\n[region_rate]\nextra_percent = 2\nmin_buyers = 2\nwindow_hours = 1\n",
        ..Default::default()
    })
    .await;
    app.say(&alice(), "/start");
    app.say(&dave(), "/start");
    app.say(&carol(), "/start");
    app.message_to(carol().id, "Hello").await;
    let key = app.new_group(&bob(), "camera 3 @alice 1234567 1004").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.buy(&dave(), &key, "camera", tokyo()).await;
    app.buy(&carol(), &key, "camera", address("JP", "Osaka", "530-0001"))
        .await;
    // 5 % of 34,800 = 1,740; the two Tokyo buyers within the hour get 2 % (696) more.
    says(
        &app,
        alice().id,
        "<b>2,436 points are yours.</b>",
        "Shared-region rate included: 696 JPY",
    )
    .await;
    app.message_to(dave().id, "<b>2,436 points are yours.</b>")
        .await;
    app.message_to(carol().id, "<b>1,740 points are yours.</b>")
        .await;
    assert_eq!(balance(&app, alice().id).await, 2_436);
    assert_eq!(balance(&app, carol().id).await, 1_740);
    assert_eq!(
        app.sql_i64("SELECT total_points FROM settlements").await,
        2 * 2_436 + 1_740
    );
    assert_ledger_balances(&app).await;
}

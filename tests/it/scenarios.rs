//! The product's story, end to end: SPEC.md flow steps 1–6 against the Bot API fake and a
//! real SMTP server on loopback.

use crate::helpers::*;
use crate::support::TgUser;
use groupbuy::store::purchases;
use serde_json::json;

pub fn bob() -> TgUser {
    TgUser::new(1001, "Bob").with_username("bob_organiser")
}
pub fn alice() -> TgUser {
    TgUser::new(1002, "Alice").with_username("alice")
}
pub fn dave() -> TgUser {
    TgUser::new(1_234_567, "Dave")
}
pub fn carol() -> TgUser {
    TgUser::new(1004, "Carol")
}

/// Scenario (a): invited three ways, three buy (one a different product), settlement pays
/// the 3-person tier, notices go by bot and email, fulfilment gets three shipping requests.
#[tokio::test]
async fn scenario_a_three_members_fill_the_group_and_get_the_tier_back() {
    let app = spawn_app().await;
    play_scenario_a(&app).await;
}

/// Scenario (a)'s steps and checks on a running app; returns the group key (the log test
/// replays it under `trace` logging).
pub async fn play_scenario_a(app: &TestApp) -> String {
    // Alice has started the bot before; 1234567 (Dave) has not; Carol is known only by email.
    app.say(&alice(), "/start");
    app.message_to(alice().id, "Hello, Alice").await;

    let key = app
        .new_group(&bob(), "camera 3 @alice 1234567 carol@example.com")
        .await;
    assert_eq!(key.len(), 18);
    let confirmation = app
        .message_to(bob().id, "Your group purchase is open")
        .await;
    let text = confirmation.text().expect("text");
    assert!(
        text.contains(&format!("https://shop.example.com/g/{key}")),
        "page URL: {text}"
    );
    assert!(
        text.contains(&format!("https://t.me/groupbuy_test_bot?start={key}")),
        "deep link: {text}"
    );
    assert!(text.contains("Open until"), "expiry: {text}");

    // Alice is prompted at once, with a Buy button.
    let prompt = app
        .message_to(alice().id, "invited you to buy together")
        .await;
    assert!(
        prompt.callback_data().contains(&format!("s:{key}:camera")),
        "{:?}",
        prompt.callback_data()
    );

    // Dave has never talked to the bot: no prompt until he does (claim 11, "upon access").
    assert_eq!(app.messages_to(dave().id, "invited you"), 0);
    app.say(&dave(), "/start");
    app.message_to(dave().id, "Bob invited you to buy together")
        .await;

    // Carol's invitation email: both links, text and HTML.
    assert!(app.smtp.wait_for_count(1, WAIT).await, "invitation email");
    let invite = app
        .smtp
        .mails_to("carol@example.com")
        .pop()
        .expect("invitation to Carol");
    let body = invite.text_body().expect("text part");
    let html = invite.html_body().expect("html part");
    assert!(
        body.contains(&format!("https://shop.example.com/g/{key}")),
        "{body}"
    );
    assert!(
        html.contains(&format!("https://shop.example.com/g/{key}")),
        "{html}"
    );
    let payload = deep_link_payload(&body);
    assert!(payload.starts_with(&format!("{key}-")), "{payload}");
    assert!(html.contains(&format!("https://t.me/groupbuy_test_bot?start={payload}")));

    // Carol follows the deep link and is recognised as the invited Carol.
    app.say(&carol(), &format!("/start {payload}"));
    app.message_to(carol().id, "You were invited by email as carol@example.com")
        .await;

    // Three purchases; Dave picks another catalog product (claim 2).
    app.buy(&alice(), &key, "camera", address("JP", "Tokyo", "100-0001"))
        .await;
    app.press(&dave(), &format!("o:{key}"));
    let menu = app.message_to(dave().id, "Which one would you like?").await;
    assert!(menu.callback_data().contains(&format!("s:{key}:scanner")));
    app.buy(&dave(), &key, "scanner", address("JP", "Osaka", "530-0001"))
        .await;
    app.buy(
        &carol(),
        &key,
        "camera",
        address("JP", "Hokkaido", "060-0001"),
    )
    .await;

    // Settlement: 5 % of each price back as points, by bot message to each buyer.
    app.message_to(alice().id, "<b>1,740 points are yours.</b>")
        .await;
    app.message_to(dave().id, "<b>1,490 points are yours.</b>")
        .await;
    app.message_to(carol().id, "<b>1,740 points are yours.</b>")
        .await;
    let summary = app.message_to(bob().id, "is settled").await;
    assert!(summary.text().is_some_and(|t| t.contains("3 of 3 bought")
        && t.contains("5%")
        && t.contains("4,970 points")));
    assert_eq!(balance(app, alice().id).await, 1_740);
    assert_eq!(balance(app, dave().id).await, 1_490);
    assert_eq!(balance(app, carol().id).await, 1_740);

    // Carol also gets the notice by email; fulfilment got three shipping requests.
    assert!(
        app.smtp.wait_for_count(5, WAIT).await,
        "invitation + 3 shipping requests + Carol's notice"
    );
    let notice = app
        .smtp
        .mails_to("carol@example.com")
        .into_iter()
        .find(|m| m.subject().is_some_and(|s| s.contains("points back")));
    let notice = notice.expect("Carol's discount notice email");
    assert!(
        notice
            .text_body()
            .is_some_and(|t| t.contains("1,740 points"))
    );
    let shipping = app.smtp.mails_to("warehouse@example.com");
    assert_eq!(shipping.len(), 3, "three shipping requests");
    assert!(shipping.iter().any(|m| {
        m.text_body()
            .is_some_and(|t| t.contains("Photo scanner") && t.contains("JP-OSAKA"))
    }));
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM shipping_requests").await,
        3
    );

    // The key is invalidated: the group page key now says settled.
    app.say(&alice(), &format!("/join {key}"));
    app.message_to(alice().id, "has closed and its discount was paid out")
        .await;
    // /points shows the credit.
    app.say(&alice(), "/points");
    app.message_to(alice().id, "<b>Your points: 1,740</b>")
        .await;
    assert_ledger_balances(app).await;
    app.outbox_drained().await;
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM settlements").await, 1);
    key
}

/// Scenario (b): two of three buy before expiry; the sweep settles by policy.
/// The service under `policy`, without the region bonus, where Alice and Dave have started
/// the bot.
async fn alice_and_dave_started(policy: &'static str) -> TestApp {
    let app = spawn_app_with(Options {
        policy,
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    app.say(&alice(), "/start");
    app.say(&dave(), "/start");
    app
}

/// Alice and Dave filled a two-camera group: Alice holds 1,044 points (3 % of 34,800).
async fn alice_with_1044_points() -> TestApp {
    let app = alice_and_dave_started("all_or_nothing").await;
    let key = app.new_group(&bob(), "camera 2 @alice 1234567").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.buy(&dave(), &key, "camera", tokyo()).await;
    app.message_to(alice().id, "<b>1,044 points are yours.</b>")
        .await;
    app
}

async fn two_of_three_then_expiry(policy: &'static str) -> (TestApp, String) {
    let app = alice_and_dave_started(policy).await;
    let key = app
        .new_group(&bob(), "camera 3 @alice 1234567 carol@example.com 2h")
        .await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.buy(&dave(), &key, "camera", tokyo()).await;
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM settlements").await,
        0,
        "not settled before expiry"
    );
    app.advance(2 * 3_600 + 1);
    app.message_to(bob().id, "is settled").await;
    (app, key)
}

#[tokio::test]
async fn scenario_b_unfilled_group_gets_nothing_under_all_or_nothing() {
    let (app, _key) = two_of_three_then_expiry("all_or_nothing").await;
    let notice = app
        .message_to(alice().id, "Your group purchase has closed")
        .await;
    assert!(
        notice
            .text()
            .is_some_and(|t| t.contains("2 of 3 buyers") && t.contains("no discount"))
    );
    app.message_to(dave().id, "Your group purchase has closed")
        .await;
    assert_eq!(balance(&app, alice().id).await, 0);
    assert_eq!(balance(&app, dave().id).await, 0);
    assert_eq!(app.sql_i64("SELECT total_points FROM settlements").await, 0);
    assert_ledger_balances(&app).await;
}

#[tokio::test]
async fn scenario_b_unfilled_group_gets_the_two_person_tier_under_partial() {
    let (app, _key) = two_of_three_then_expiry("partial").await;
    // 3 % of 34,800 = 1,044.
    app.message_to(alice().id, "<b>1,044 points are yours.</b>")
        .await;
    app.message_to(dave().id, "<b>1,044 points are yours.</b>")
        .await;
    assert_eq!(balance(&app, alice().id).await, 1_044);
    assert_eq!(
        app.sql_i64("SELECT total_points FROM settlements").await,
        2_088
    );
    assert_ledger_balances(&app).await;
}

/// Scenario (c): the same successful_payment update twice, and the same charge under a new
/// update id: one purchase, one ledger entry, one receipt.
#[tokio::test]
async fn scenario_c_a_duplicated_payment_is_recorded_once() {
    let app = spawn_app().await;
    app.say(&alice(), "/start");
    let key = app.new_group(&bob(), "camera 3 @alice").await;
    let paid = app.buy(&alice(), &key, "camera", tokyo()).await;

    app.fake
        .inject_raw_with_id(paid.update_id, paid.update.clone());
    let again = app.fake.inject(paid.update.clone());
    assert_ne!(again, paid.update_id);
    assert!(app.fake.wait_updates_drained(WAIT).await);
    // A marker message after the duplicates: once it is answered, they were handled.
    app.say(&alice(), "/points");
    app.message_to(alice().id, "Your points").await;

    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM purchases").await, 1);
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM ledger WHERE txn LIKE 'purchase:%' AND account = 'cash'")
            .await,
        1
    );
    let mut conn = app.ctx.store.read().await.expect("connection");
    assert!(
        purchases::by_charge(&mut conn, &paid.charge_id)
            .await
            .expect("query")
            .is_some()
    );
    drop(conn);
    app.outbox_drained().await;
    assert_eq!(
        app.messages_to(alice().id, "payment received"),
        1,
        "one receipt"
    );
    assert_eq!(
        app.smtp.mails_to("warehouse@example.com").len(),
        1,
        "one shipping request"
    );
    assert_ledger_balances(&app).await;
}

/// The region bonus (claim 8): buyers shipping to the same region get the bonus on top.
#[tokio::test]
async fn buyers_sharing_a_region_get_the_region_bonus() {
    let app = spawn_app().await;
    app.say(&alice(), "/start");
    app.say(&dave(), "/start");
    let key = app.new_group(&bob(), "camera 2 @alice 1234567").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.buy(&dave(), &key, "camera", tokyo()).await;
    // 3 % of 34,800 = 1,044, plus the example file's 500 region bonus.
    app.message_to(alice().id, "<b>1,544 points are yours.</b>")
        .await;
    app.message_to(dave().id, "Shared-region bonus included: 500 JPY")
        .await;
    assert_ledger_balances(&app).await;
}

/// Points are redeemable on a later purchase: a discount on the invoice, taken from the ledger.
#[tokio::test]
async fn points_are_spent_on_the_next_invoice() {
    let app = alice_with_1044_points().await;

    let next = app.new_group(&bob(), "memory 2 @alice").await;
    app.press(&alice(), &format!("s:{next}:memory"));
    let ask = app
        .message_to(alice().id, "You have <b>1044</b> points")
        .await;
    let use_points = ask
        .callback_data()
        .into_iter()
        .find(|d| d.starts_with(&format!("p:{next}:1044:")))
        .expect("use-points button");
    let invoice = app.invoice_after(&alice(), &use_points).await;
    assert_eq!(
        invoice.params["prices"],
        json!([{"label": "Memory card (1044 points applied)", "amount": 6_780 - 1_044}])
    );
    app.checkout(&alice(), &invoice, tokyo()).await;
    assert_eq!(balance(&app, alice().id).await, 0);
    assert_ledger_balances(&app).await;
}

/// A restart between expiry and settlement: the sweep on the next start settles once, and
/// settling again changes nothing.
#[tokio::test]
async fn a_restart_settles_an_expired_group_exactly_once() {
    let mut app = spawn_app_with(Options {
        policy: "partial",
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    app.say(&alice(), "/start");
    let key = app.new_group(&bob(), "camera 3 @alice 1h").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.stop().await;
    app.clock.advance(3_601);
    app.restart(Options {
        policy: "partial",
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    app.message_to(bob().id, "is settled").await;
    // 1 buyer: the 1-person tier is 0 %.
    app.message_to(alice().id, "Your group purchase has closed")
        .await;
    assert_eq!(
        groupbuy::app::settle::sweep(&app.ctx).await.expect("sweep"),
        0
    );
    let group_id = app.sql_i64("SELECT id FROM group_buys").await;
    assert!(
        !groupbuy::app::settle::settle_group(&app.ctx, groupbuy::domain::GroupId::new(group_id))
            .await
            .expect("settle")
    );
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM settlements").await, 1);
    app.outbox_drained().await;
    assert_eq!(app.messages_to(bob().id, "is settled"), 1);
}

/// The command menu is registered with setMyCommands at start-up.
#[tokio::test]
async fn the_command_menu_is_registered() {
    let app = spawn_app().await;
    let calls = app.fake.calls_to("setMyCommands");
    assert_eq!(calls.len(), 1);
    let names: Vec<String> = calls[0].params["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|c| c["command"].as_str().unwrap_or("").to_string())
        .collect();
    for expected in [
        "start",
        "help",
        "newgroup",
        "join",
        "buy",
        "status",
        "mygroups",
        "points",
        "cancel",
        "paysupport",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?} in {:?}",
            calls[0].params
        );
    }
}

/// `/status` and `/mygroups` tell people where their groups stand.
#[tokio::test]
async fn status_and_my_groups_show_progress() {
    let app = spawn_app().await;
    app.say(&alice(), "/start");
    let key = app.new_group(&bob(), "camera 3 @alice").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.say(&bob(), &format!("/status {key}"));
    let status = app.message_to(bob().id, "Seats: 1 of 3 bought").await;
    let text = status.text().expect("text");
    assert!(
        text.contains("Discount reached so far: 0% (when full: 5%)"),
        "{text}"
    );
    assert!(
        text.contains("• Alice"),
        "the organiser sees who bought: {text}"
    );
    app.say(&alice(), "/mygroups");
    app.message_to(
        alice().id,
        &format!("<code>{key}</code> camera — 1/3 bought, open"),
    )
    .await;
    app.say(&dave(), "/status");
    app.exact_message_to(dave().id, &groupbuy::replies::UserError::NoOpenGroup.html())
        .await;
}

/// The operator's endpoints answer on the admin address, not beside the pages.
#[tokio::test]
async fn health_and_metrics_answer() {
    let app = spawn_app().await;
    app.say(&alice(), "/start");
    app.message_to(alice().id, "Hello, Alice").await;
    for path in ["/healthz", "/metrics"] {
        let public = reqwest::get(format!("http://{}{path}", app.http))
            .await
            .expect("public side");
        assert_eq!(public.status(), 404, "{path} is not on the public side");
    }
    let base = format!("http://{}", app.admin);
    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("groupbuy_updates_handled_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE groupbuy_purchases_total counter"));
}

/// A large group's messages stay within Telegram's 4,096 characters.
#[tokio::test]
async fn long_member_lists_are_shortened() {
    // Above the default invitation limits (20 a group, 50 a day), so all 60 are mailed.
    let app = spawn_app_with(Options {
        extra_env: vec![
            ("GROUPBUY_EMAIL_INVITES_PER_GROUP", "100".into()),
            ("GROUPBUY_EMAIL_INVITES_PER_DAY", "100".into()),
        ],
        ..Default::default()
    })
    .await;
    let members: Vec<String> = (0..60).map(|i| format!("member{i}@example.com")).collect();
    let key = app
        .new_group(&bob(), &format!("camera 100 {}", members.join(" ")))
        .await;
    let confirmation = app
        .message_to(bob().id, "Your group purchase is open")
        .await;
    let text = confirmation.text().expect("text");
    assert!(text.contains("… and 30 more"), "{text}");
    assert!(text.chars().count() < 4_096);
    let open = app.new_group(&bob(), "memory 50").await;
    for i in 0..42 {
        let b = TgUser::new(9_000 + i, &format!("Buyer{i}"));
        app.buy(&b, &open, "memory", tokyo()).await;
    }
    app.say(&bob(), &format!("/status {open}"));
    let status = app.message_to(bob().id, "Seats: 42 of 50 bought").await;
    let text = status.text().expect("text");
    assert!(
        text.contains("… and 2 more") && text.chars().count() < 4_096,
        "{text}"
    );
    assert!(!key.is_empty());
}

/// The same points cannot pay for two invoices: the first pre-checkout holds them.
#[tokio::test]
async fn points_cannot_be_spent_twice() {
    let app = alice_with_1044_points().await;

    let (one, two) = (
        app.new_group(&bob(), "memory 3").await,
        app.new_group(&bob(), "scanner 3").await,
    );
    let mut payloads = Vec::new();
    for (group, sku) in [(&one, "memory"), (&two, "scanner")] {
        app.press(&alice(), &format!("s:{group}:{sku}"));
        let ask = app
            .message_to(
                alice().id,
                &format!(
                    "Use them on {}",
                    if sku == "memory" {
                        "Memory card"
                    } else {
                        "Photo scanner"
                    }
                ),
            )
            .await;
        let use_points = ask
            .callback_data()
            .into_iter()
            .find(|d| d.starts_with(&format!("p:{group}:1044:")))
            .expect("use-points button");
        let invoice = app.invoice_after(&alice(), &use_points).await;
        let total: i64 = invoice.params["prices"][0]["amount"]
            .as_i64()
            .expect("amount");
        payloads.push((
            invoice.str_param("payload").expect("payload").to_string(),
            total,
        ));
    }
    app.pre_checkout(&alice(), "JPY", payloads[0].1, &payloads[0].0, true)
        .await;
    let refused = app
        .pre_checkout(&alice(), "JPY", payloads[1].1, &payloads[1].0, false)
        .await;
    assert_eq!(
        refused.params["error_message"],
        json!(groupbuy::replies::UserError::NotEnoughPoints { balance: 0 }.plain())
    );
    // The same invoice asked again still passes: its own hold is not counted against it.
    app.pre_checkout(&alice(), "JPY", payloads[0].1, &payloads[0].0, true)
        .await;
}

/// The sweep settles a batch of expired groups together; one group that cannot be settled
/// (here: a settlement row already exists for it though it is open) must not hold up the
/// others. The batch falls back to one group at a time and the bad one stays open.
#[tokio::test]
async fn a_group_that_cannot_settle_does_not_hold_up_the_others() {
    let app = spawn_app().await;
    let keys = [
        app.new_group(&bob(), "camera 3").await,
        app.new_group(&bob(), "camera 3").await,
        app.new_group(&bob(), "camera 3").await,
    ];
    sqlx::query(
        "INSERT INTO settlements (group_id, buyers, filled, rate_bp, total_points, created_at)
         SELECT id, 0, 0, 0, 0, 0 FROM group_buys WHERE group_key = $1",
    )
    .bind(&keys[1])
    .execute(app.ctx.store.pool())
    .await
    .expect("a stray settlement row");
    app.advance(73 * 3600);
    let deadline = tokio::time::Instant::now() + WAIT;
    while app
        .sql_i64("SELECT COUNT(*) FROM group_buys WHERE status = 'settled'")
        .await
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the good groups were not settled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status: String = sqlx::query_scalar("SELECT status FROM group_buys WHERE group_key = $1")
        .bind(&keys[1])
        .fetch_one(app.ctx.store.pool())
        .await
        .expect("status");
    assert_eq!(status, "open", "the bad group is left for the next sweep");
    let aside: String =
        sqlx::query_scalar("SELECT settle_error FROM group_buys WHERE group_key = $1")
            .bind(&keys[1])
            .fetch_one(app.ctx.store.pool())
            .await
            .expect("set aside with its reason");
    assert!(aside.contains("already had a settlement row"), "{aside}");
    // Both good groups' summaries reached the organiser, once each.
    for key in [&keys[0], &keys[2]] {
        let wanted = format!("<b>Group <code>{key}</code> is settled.</b>");
        app.message_to(bob().id, &wanted).await;
        assert_eq!(app.messages_to(bob().id, &wanted), 1);
    }
    assert_eq!(
        app.messages_to(bob().id, &keys[1]),
        1,
        "only its confirmation"
    );
}

/// Two groups Alice bought in expire together and the sweep settles them in one batch: each
/// notice shows her balance after that group's credit, as if they were settled one by one.
#[tokio::test]
async fn a_buyer_in_two_groups_of_one_sweep_sees_each_balance_in_turn() {
    let app = alice_and_dave_started("partial").await;
    let first = app.new_group(&bob(), "camera 3 @alice 1234567 2h").await;
    let second = app.new_group(&bob(), "camera 3 @alice 1234567 2h").await;
    for key in [&first, &second] {
        app.buy(&alice(), key, "camera", tokyo()).await;
        app.buy(&dave(), key, "camera", tokyo()).await;
    }
    app.advance(2 * 3_600 + 1);
    // 3 % of 34,800 = 1,044 per group.
    for (key, balance) in [(&first, "1,044"), (&second, "2,088")] {
        let notice = app
            .message_to(alice().id, &format!("Group <code>{key}</code> for"))
            .await;
        let text = notice.text().expect("text");
        assert!(
            text.contains(&format!("Your points balance: {balance} ")),
            "{text}"
        );
    }
    assert_eq!(balance(&app, alice().id).await, 2_088);
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM settlements").await,
        2,
        "both settled"
    );
}

//! Issue [history]: the organiser's tools on an open group (`/extend`, `/invite`, `/remove`,
//! a notice per purchase), each with its refusals that change nothing.

use crate::helpers::*;
use crate::support::TgUser;

fn bob() -> TgUser {
    TgUser::new(1001, "Bob").with_username("bob_organiser")
}
fn alice() -> TgUser {
    TgUser::new(1002, "Alice").with_username("alice")
}
fn dave() -> TgUser {
    TgUser::new(1_234_567, "Dave")
}
fn carol() -> TgUser {
    TgUser::new(1004, "Carol")
}

async fn expires_at(app: &TestApp) -> i64 {
    app.sql_i64("SELECT expires_at FROM group_buys").await
}

async fn member_count(app: &TestApp) -> i64 {
    app.sql_i64("SELECT COUNT(*) FROM members").await
}

/// Says `text` as `who` and waits for the reply containing `needle`; returns once handled.
async fn said(app: &TestApp, who: &TgUser, text: &str, needle: &str) {
    let update = app.say(who, text);
    app.message_to(who.id, needle).await;
    app.handled(update).await;
}

#[tokio::test]
async fn extend_moves_the_expiry_and_tells_members_who_were_told() {
    let app = spawn_app().await;
    app.say(&alice(), "/start");
    app.message_to(alice().id, "Hello, Alice").await;
    let key = app.new_group(&bob(), "camera 3 @alice 1234567 24h").await;
    app.message_to(alice().id, "invited you to buy together")
        .await;
    let before = expires_at(&app).await;

    said(
        &app,
        &bob(),
        &format!("/extend {key} 48h"),
        "is now open until",
    )
    .await;
    assert_eq!(expires_at(&app).await, before + 172_800);
    let reply = app.message_to(bob().id, "is now open until").await;
    assert!(
        reply
            .text()
            .is_some_and(|t| t.contains("1 invited member(s)")),
        "{:?}",
        reply.text()
    );
    // Alice was prompted, so she hears of it; Dave was never reached, so he does not.
    app.message_to(alice().id, "More time: group").await;
    assert_eq!(app.messages_to(dave().id, "More time"), 0);

    // Bad input: a clear reply each, and the expiry stays where it is.
    let moved = expires_at(&app).await;
    said(
        &app,
        &bob(),
        &format!("/extend {key} 365d"),
        "at the latest (a year after it opened)",
    )
    .await;
    said(
        &app,
        &alice(),
        &format!("/extend {key} 24h"),
        "Only the organiser",
    )
    .await;
    said(&app, &bob(), &format!("/extend {key}"), "/extend KEY 24h").await;
    said(
        &app,
        &bob(),
        &format!("/extend {key} 5x"),
        "is not an expiry I understand",
    )
    .await;
    said(
        &app,
        &bob(),
        "/extend 7KQ2XM9PD4HB6TRWZC 24h",
        "can't find a group purchase",
    )
    .await;
    assert_eq!(expires_at(&app).await, moved);
    assert_eq!(app.messages_to(alice().id, "More time"), 1);
}

#[tokio::test]
async fn extend_refuses_cancelled_and_settled_groups() {
    let app = spawn_app().await;
    let cancelled = app.new_group(&bob(), "camera 2").await;
    said(
        &app,
        &bob(),
        &format!("/cancel {cancelled}"),
        "is cancelled",
    )
    .await;
    said(
        &app,
        &bob(),
        &format!("/extend {cancelled} 24h"),
        "was cancelled by its organiser",
    )
    .await;

    let settled = app.new_group(&bob(), "memory 2").await;
    app.buy(&alice(), &settled, "memory", tokyo()).await;
    app.buy(&carol(), &settled, "memory", tokyo()).await;
    app.message_to(bob().id, "is settled").await;
    let before = app
        .sql_i64("SELECT expires_at FROM group_buys WHERE status = 'settled'")
        .await;
    said(
        &app,
        &bob(),
        &format!("/extend {settled} 24h"),
        "has closed and its discount was paid out",
    )
    .await;
    assert_eq!(
        app.sql_i64("SELECT expires_at FROM group_buys WHERE status = 'settled'")
            .await,
        before
    );
}

#[tokio::test]
async fn invite_names_more_members_for_unreserved_seats() {
    let app = spawn_app().await;
    app.say(&dave(), "/start");
    app.message_to(dave().id, "Hello, Dave").await;
    let key = app.new_group(&bob(), "camera 3 @alice").await;
    assert_eq!(member_count(&app).await, 1);

    said(
        &app,
        &bob(),
        &format!("/invite {key} 1234567 carol@example.com"),
        "More members for group",
    )
    .await;
    assert_eq!(member_count(&app).await, 3);
    // Dave talks to the bot: prompted at once, as /newgroup would; Carol gets the email.
    let prompt = app
        .message_to(dave().id, "Bob invited you to buy together")
        .await;
    assert!(prompt.callback_data().contains(&format!("s:{key}:camera")));
    assert!(app.smtp.wait_for_count(1, WAIT).await, "invitation email");
    let mail = app
        .smtp
        .mails_to("carol@example.com")
        .pop()
        .expect("invitation to Carol");
    let body = mail.text_body().expect("text part");
    assert!(
        deep_link_payload(&body).starts_with(&format!("{key}-")),
        "{body}"
    );

    // Refusals change nothing.
    said(
        &app,
        &bob(),
        &format!("/invite {key} @alice"),
        "is already invited to group",
    )
    .await;
    said(
        &app,
        &bob(),
        &format!("/invite {key} @erin_b"),
        "has 0 seat(s) nobody is invited to",
    )
    .await;
    said(
        &app,
        &alice(),
        &format!("/invite {key} @erin_b"),
        "Only the organiser",
    )
    .await;
    said(
        &app,
        &bob(),
        &format!("/invite {key}"),
        "/invite KEY MEMBER…",
    )
    .await;
    said(
        &app,
        &bob(),
        &format!("/invite {key} not-a-member"),
        "not-a-member",
    )
    .await;
    assert_eq!(member_count(&app).await, 3);
}

#[tokio::test]
async fn remove_takes_back_an_invitation_before_the_member_bought() {
    let app = spawn_app().await;
    app.say(&alice(), "/start");
    app.message_to(alice().id, "Hello, Alice").await;
    app.say(&dave(), "/start");
    app.message_to(dave().id, "Hello, Dave").await;
    let key = app.new_group(&bob(), "camera 3 @alice 1234567").await;
    app.message_to(dave().id, "invited you to buy together")
        .await;
    app.buy(&alice(), &key, "camera", tokyo()).await;

    said(
        &app,
        &bob(),
        &format!("/remove {key} @alice"),
        "has already bought in group",
    )
    .await;
    said(
        &app,
        &bob(),
        &format!("/remove {key} @erin_b"),
        "is not among the invited members",
    )
    .await;
    said(
        &app,
        &dave(),
        &format!("/remove {key} @alice"),
        "Only the organiser",
    )
    .await;
    assert_eq!(member_count(&app).await, 2);

    said(
        &app,
        &bob(),
        &format!("/remove {key} 1234567"),
        "is no longer invited to group",
    )
    .await;
    assert_eq!(member_count(&app).await, 1);
    app.message_to(dave().id, "took back your invitation").await;
    // His seat is open again: the group now has two seats nobody is invited to.
    said(
        &app,
        &bob(),
        &format!("/invite {key} @xavier1 @xavier2 @xavier3"),
        "has 2 seat(s) nobody is invited to",
    )
    .await;
}

#[tokio::test]
async fn the_organiser_hears_of_each_purchase() {
    let app = spawn_app().await;
    let key = app.new_group(&bob(), "camera 3").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.message_to(bob().id, "Alice bought — 1 of 3, 0% reached; one more → 3%")
        .await;
    app.buy(&dave(), &key, "camera", tokyo()).await;
    app.message_to(bob().id, "Dave bought — 2 of 3, 3% reached; one more → 5%")
        .await;
    app.buy(&carol(), &key, "camera", tokyo()).await;
    app.message_to(
        bob().id,
        "Carol bought — 3 of 3, 5% reached; the group is full",
    )
    .await;
    app.message_to(bob().id, "is settled").await;
    // The organiser's own purchase is no news to them.
    let own = app.new_group(&bob(), "memory 2").await;
    app.buy(&bob(), &own, "memory", tokyo()).await;
    app.outbox_drained().await;
    assert_eq!(app.messages_to(bob().id, "Bob bought"), 0);
}

/// Waits until `chat` has had `n` messages containing `needle`.
async fn nth_message(app: &TestApp, chat: i64, needle: &str, n: usize) -> String {
    let found = app
        .fake
        .wait_until(|calls| count_texts(calls, chat, needle) >= n, WAIT)
        .await;
    assert!(
        found,
        "fewer than {n} “{needle}” to {chat}: {:#?}",
        app.fake.sent_texts_to(chat)
    );
    app.fake
        .sent_texts_to(chat)
        .into_iter()
        .rev()
        .find(|t| t.contains(needle))
        .expect("the message")
}

#[tokio::test]
async fn buy_together_again_opens_the_same_group_with_the_same_people() {
    let app = spawn_app().await;
    app.say(&alice(), "/start");
    app.message_to(alice().id, "Hello, Alice").await;
    let key = app.new_group(&bob(), "memory 2 @alice").await;
    app.buy(&alice(), &key, "memory", tokyo()).await;
    // Dave comes with the key, unnamed: he is one of the people who bought together.
    app.buy(&dave(), &key, "memory", tokyo()).await;
    let summary = app.message_to(bob().id, "is settled").await;
    assert!(
        summary.callback_data().contains(&format!("r:{key}")),
        "{:?}",
        summary.callback_data()
    );

    // Bob presses "Buy together again": a new group, a new key, everyone prompted again.
    let pressed = app.press(&bob(), &format!("r:{key}"));
    let confirmation = nth_message(&app, bob().id, "Your group purchase is open", 2).await;
    let again = key_in(&confirmation);
    assert_ne!(again, key);
    assert!(confirmation.contains("2 × Memory card"), "{confirmation}");
    nth_message(&app, alice().id, "Bob invited you to buy together", 2).await;
    let prompt = app
        .message_to(dave().id, "Bob invited you to buy together")
        .await;
    assert!(
        prompt
            .callback_data()
            .contains(&format!("s:{again}:memory"))
    );
    app.handled(pressed).await;
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM group_buys WHERE regroup_of IS NOT NULL")
            .await,
        1
    );

    // A second press, another person, the still-open repeat: refused, nothing opened.
    let twice = app.press(&bob(), &format!("r:{key}"));
    app.message_to(bob().id, "is already being bought again as group")
        .await;
    app.handled(twice).await;
    said(
        &app,
        &alice(),
        &format!("/regroup {key}"),
        "Only the organiser",
    )
    .await;
    said(&app, &bob(), &format!("/regroup {again}"), "is still open").await;
    said(
        &app,
        &bob(),
        "/regroup",
        "/regroup KEY [PRODUCT] [N] [EXPIRY]",
    )
    .await;
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM group_buys").await, 2);
}

#[tokio::test]
async fn regroup_of_an_expired_group_takes_newgroup_words() {
    let app = spawn_app().await;
    app.say(&alice(), "/start");
    app.message_to(alice().id, "Hello, Alice").await;
    let key = app
        .new_group(&bob(), "camera 3 @alice carol@example.com 1h")
        .await;
    assert!(app.smtp.wait_for_count(1, WAIT).await, "first invitation");
    app.advance(7_200);

    // Bad overrides: a clear reply, and no group is opened.
    said(
        &app,
        &bob(),
        &format!("/regroup {key} telescope"),
        "I don't know a product called",
    )
    .await;
    said(
        &app,
        &bob(),
        &format!("/regroup {key} 5x"),
        "is not an expiry I understand",
    )
    .await;
    said(
        &app,
        &bob(),
        &format!("/regroup {key} 1"),
        "The head count must be",
    )
    .await;
    said(
        &app,
        &bob(),
        &format!("/regroup {key} Photo scanner 1"),
        "The head count must be",
    )
    .await;
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM group_buys").await, 1);

    let now = app.clock.now();
    app.say(&bob(), &format!("/regroup {key} Photo scanner 4 48h"));
    let confirmation = nth_message(&app, bob().id, "Your group purchase is open", 2).await;
    assert!(confirmation.contains("4 × Photo scanner"), "{confirmation}");
    let again = key_in(&confirmation);
    let expires = app
        .sql_i64("SELECT expires_at FROM group_buys WHERE regroup_of IS NOT NULL")
        .await;
    assert!(
        (now + 172_800..now + 172_900).contains(&expires),
        "{expires}"
    );
    nth_message(&app, alice().id, "Bob invited you to buy together", 2).await;
    // Carol, known by email only, gets a new invitation with the new key.
    assert!(app.smtp.wait_for_count(2, WAIT).await, "second invitation");
    let mails = app.smtp.mails_to("carol@example.com");
    let body = mails.last().and_then(|m| m.text_body()).expect("text part");
    assert!(
        deep_link_payload(&body).starts_with(&format!("{again}-")),
        "{body}"
    );
}

#[tokio::test]
async fn circles_are_counted_at_settlement_and_shown_in_mygroups() {
    let app = spawn_app().await;
    let key = app.new_group(&bob(), "memory 2").await;
    app.buy(&alice(), &key, "memory", tokyo()).await;
    app.buy(&dave(), &key, "memory", tokyo()).await;
    app.message_to(bob().id, "is settled").await;
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM circles").await, 1);

    // The same two people again, in another group, however they came: one circle, twice.
    let again = app.new_group(&bob(), "camera 2").await;
    // They have points now: each pays in full (the invoice without redeeming any).
    for who in [dave(), alice()] {
        let invoice = app
            .invoice_after(&who, &format!("p:{again}:0:camera"))
            .await;
        app.checkout(&who, &invoice, tokyo()).await;
    }
    nth_message(&app, bob().id, "is settled", 2).await;
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM circles").await, 1);
    assert_eq!(app.sql_i64("SELECT times_bought FROM circles").await, 2);
    assert_eq!(
        app.sql_i64("SELECT total_spent FROM circles").await,
        2 * 6_780 + 2 * 34_800
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM group_buys WHERE circle_id IS NOT NULL")
            .await,
        2
    );

    said(&app, &alice(), "/mygroups", "Your buying circles").await;
    let text = nth_message(&app, alice().id, "Your buying circles", 1).await;
    assert!(
        text.contains("2 people — bought together 2 time(s), 83,160 JPY in all"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "<code>{again}</code> camera — 2/2 bought, settled, 3% reached"
        )),
        "{text}"
    );
    // Bob organised but bought nothing: no circle of his, only his groups.
    said(&app, &bob(), "/mygroups", "Your group purchases").await;
    assert_eq!(app.messages_to(bob().id, "Your buying circles"), 0);
}

#[tokio::test]
async fn mygroups_pages_past_ten_groups() {
    let app = spawn_app().await;
    let mut keys = Vec::new();
    for _ in 0..12 {
        keys.push(app.new_group(&bob(), "memory 2").await);
    }
    let first = app.say(&bob(), "/mygroups");
    let page = app
        .message_to(bob().id, "Your group purchases</b> (page 1)")
        .await;
    app.handled(first).await;
    assert_eq!(page.callback_data(), vec!["m:1".to_string()]);
    let text = page.text().expect("text");
    assert_eq!(text.matches("• ").count(), 10, "{text}");
    // Newest first: the two oldest are on the next page.
    assert!(
        !text.contains(&keys[0]) && text.contains(&keys[11]),
        "{text}"
    );

    let pressed = app.press(&bob(), "m:1");
    let older = app.message_to(bob().id, "(page 2)").await;
    app.handled(pressed).await;
    assert_eq!(older.callback_data(), vec!["m:0".to_string()]);
    let text = older.text().expect("text");
    assert!(text.contains(&keys[0]) && text.contains(&keys[1]), "{text}");
    assert_eq!(text.matches("• ").count(), 2, "{text}");
}

/// `groupbuy export` (the real binary) on the test database.
fn export_cli(db: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_groupbuy"))
        .arg("export")
        .args(args)
        .env("GROUPBUY_DATABASE_URL", db)
        .env("GROUPBUY_SERVER_SECRET", TEST_SECRET)
        .env("RUST_LOG", "warn")
        .env_remove("GROUPBUY_TELEGRAM_TOKEN")
        .output()
        .expect("groupbuy runs")
}

#[tokio::test]
async fn the_operator_exports_purchases_as_csv_and_json() {
    let app = spawn_app().await;
    let key = app.new_group(&bob(), "memory 2").await;
    app.buy(&alice(), &key, "memory", tokyo()).await;
    app.buy(&dave(), &key, "memory", tokyo()).await;
    app.message_to(bob().id, "is settled").await;
    let other = app.new_group(&bob(), "camera 3").await;
    app.buy(&carol(), &other, "camera", tokyo()).await;

    let out = export_cli(&app.db_url, &["--group", &key]);
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{csv}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "header, two purchases, one total: {csv}");
    assert!(lines[0].starts_with("group_key,group_status,purchase_id,buyer_id,buyer,product"));
    assert!(lines[1].starts_with(&format!("{key},settled,")), "{csv}");
    // Each got 3% of 6,780 (203) plus the shared-region bonus (500) back.
    assert!(
        lines[1].contains(",1002,Alice,memory,6780,JPY,6780,0,703,1,requested,"),
        "{csv}"
    );
    assert!(
        lines[2].contains(",1234567,Dave,memory,6780,JPY,6780,0,703,1,requested,"),
        "{csv}"
    );
    assert_eq!(lines[3], "TOTAL,,2,,,,13560,JPY,13560,0,1406,,,,");

    let out = export_cli(&app.db_url, &["--since", "30d", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        json["purchases"].as_array().map(Vec::len),
        Some(3),
        "{json}"
    );
    assert_eq!(json["purchases"][2]["buyer"], "Carol");
    assert_eq!(json["purchases"][2]["group_status"], "open");
    assert_eq!(json["totals"][0]["purchases"], 3);
    assert_eq!(json["totals"][0]["paid"], 13_560 + 34_800);

    // Bad input: a clear sentence and a failing exit, nothing written.
    for (args, says) in [
        (vec!["--group", "nonsense"], "not a group key"),
        (
            vec!["--group", "7KQ2XM9PD4HB6TRWZC"],
            "no group has that key",
        ),
        (vec!["--since", "5x"], "use minutes, hours or days"),
        (
            vec!["--group", &key, "--since", "1d"],
            "cannot be used with",
        ),
    ] {
        let out = export_cli(&app.db_url, &args);
        let said = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !out.status.success() && out.stdout.is_empty(),
            "{args:?}: {said}"
        );
        assert!(said.contains(says), "{args:?}: {said}");
    }
}

#[tokio::test]
async fn export_sends_the_organiser_a_csv_document() {
    let app = spawn_app().await;
    let key = app.new_group(&bob(), "memory 3").await;
    app.buy(&alice(), &key, "memory", tokyo()).await;
    app.buy(&dave(), &key, "memory", tokyo()).await;

    let asked = app.say(&bob(), &format!("/export {key}"));
    let bob_id = bob().id;
    let sent = app
        .fake
        .wait_for_call(
            move |c| c.method == "sendDocument" && !c.failed && c.chat_id() == Some(bob_id),
            WAIT,
        )
        .await
        .expect("a CSV document for Bob");
    app.handled(asked).await;
    let file = sent.file("document").expect("the uploaded CSV");
    assert_eq!(file.file_name, format!("group-{key}.csv"));
    let csv = String::from_utf8(file.bytes.clone()).expect("UTF-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines[1].contains(",1002,Alice,memory,6780,JPY,6780,0,0,1,requested,"),
        "{csv}"
    );
    assert!(
        lines[2].contains(",1234567,Dave,memory,6780,JPY,6780,0,0,1,requested,"),
        "{csv}"
    );
    assert_eq!(lines[3], "TOTAL,,2,,,,13560,JPY,13560,0,0,,,,");
    assert!(
        sent.str_param("caption")
            .is_some_and(|c| c.contains("2 purchase(s)")),
        "{:?}",
        sent.params
    );

    // Not the organiser, an unknown key, no key: a clear reply, no file.
    said(
        &app,
        &alice(),
        &format!("/export {key}"),
        "Only the organiser",
    )
    .await;
    said(
        &app,
        &bob(),
        "/export 7KQ2XM9PD4HB6TRWZC",
        "can't find a group purchase",
    )
    .await;
    said(&app, &bob(), "/export", "/export KEY").await;
    assert_eq!(app.fake.calls_to("sendDocument").len(), 1);
}

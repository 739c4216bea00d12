//! Issue #14: what an attacker, a spammer or a curious log reader can get out of the service.
//! Secrets stay out of logs; operators' endpoints are apart; guessing costs only the guesser;
//! invitations have limits and a one-click way out; people can leave.

use crate::helpers::*;
use crate::scenarios::{alice, bob, carol, dave, play_scenario_a};

/// The marker before the list of secrets the inner run prints for the outer one.
const SECRETS: &str = "SECRETS-OF-THIS-RUN ";

/// Scenario (a) with `RUST_LOG=trace`: no key, token, invite code, payload, address, email
/// address, username or name in any line of the output; user ids are there. The scenario
/// runs in a child process of this test binary (the next test), so the logger is the one the
/// service gets from `RUST_LOG` and nothing else in this process logs into it.
#[test]
fn scenario_a_at_trace_logs_no_secret() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "security::scenario_a_logged_at_trace",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RUST_LOG", "trace")
        .env("GROUPBUY_LOG_CHECK", "1")
        .output()
        .expect("the test binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the scenario failed:\n{}",
        tail(&text)
    );
    let listed = text
        .lines()
        .find_map(|l| l.strip_prefix(SECRETS))
        .expect("the run lists its secrets");
    let secrets: Vec<String> = serde_json::from_str(listed).expect("json");
    assert!(secrets.len() >= 22, "{secrets:?}");
    let logs: Vec<&str> = text.lines().filter(|l| !l.starts_with(SECRETS)).collect();
    assert!(
        logs.len() > 300 && logs.iter().any(|l| l.contains("TRACE")),
        "trace logging captured the run ({} lines)",
        logs.len()
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("create") && l.contains(&bob().id.to_string())),
        "user ids are logged"
    );
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("emails go out without a DKIM signature"))
            .count(),
        1,
        "start-up says once that mail is unsigned"
    );
    for s in &secrets {
        assert!(!s.is_empty());
        let hits: Vec<&&str> = logs
            .iter()
            .filter(|l| l.contains(s.as_str()))
            .take(3)
            .collect();
        assert!(hits.is_empty(), "{s:?} appears in the log: {hits:#?}");
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

/// The child's part of the test above; does nothing unless that test started it.
#[tokio::test]
async fn scenario_a_logged_at_trace() {
    if std::env::var_os("GROUPBUY_LOG_CHECK").is_none() {
        return;
    }
    let app = spawn_app().await;
    let key = play_scenario_a(&app).await;

    let mut secrets: Vec<String> = vec![
        key.clone(),
        app.fake.token().to_string(),
        "TEST-PROVIDER-TOKEN".into(),
        "carol@example.com".into(),
        "warehouse@example.com".into(),
        "Marunouchi".into(),
        "100-0001".into(),
        "530-0001".into(),
        "bob_organiser".into(),
        "@alice".into(),
        "\"Alice\"".into(),
        "\"Carol\"".into(),
        "\"Dave\"".into(),
        "\"Bob\"".into(),
    ];
    // The invitation's deep-link payload (key + invite code) and the code alone.
    let invite = app.smtp.mails_to("carol@example.com").remove(0);
    let payload = deep_link_payload(&invite.text_body().expect("text"));
    secrets.push(payload.clone());
    secrets.push(payload[key.len() + 1..].to_string());
    // Receipt tokens, from the receipts the buyers got.
    for user in [alice(), dave(), carol()] {
        for text in app.fake.sent_texts_to(user.id) {
            if let Some(at) = text.find("/receipt/") {
                let token: String = text[at + 9..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                secrets.push(token);
            }
        }
    }
    // Invoice payloads.
    for call in app.fake.calls_to("sendInvoice") {
        secrets.push(call.str_param("payload").expect("payload").to_string());
    }
    println!("{SECRETS}{}", serde_json::json!(secrets));
}

/// A short or foreign-character webhook secret stops start-up with one sentence.
#[test]
fn a_weak_webhook_secret_stops_start_up() {
    for secret in ["x", "fifteen-chars-x", "sixteen chars ok"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_groupbuy"))
            .args(["serve"])
            .env("GROUPBUY_TELEGRAM_TOKEN", "1:test")
            .env("GROUPBUY_DATABASE_URL", "sqlite://unused-weak-secret.db")
            .env("GROUPBUY_WEBHOOK_SECRET", secret)
            .env("RUST_LOG", "warn")
            .output()
            .expect("groupbuy runs");
        assert!(!out.status.success());
        let text = String::from_utf8_lossy(&out.stderr);
        let said: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(said.len(), 1, "{text}");
        assert!(
            said[0].contains("setting `webhook_secret` (environment GROUPBUY_WEBHOOK_SECRET) is invalid: it must be 16 to 256 characters"),
            "{text}"
        );
        assert!(
            !text.contains(secret),
            "the refusal does not repeat the secret: {text}"
        );
    }
}

fn with_env(pairs: &[(&'static str, &str)]) -> Options {
    Options {
        extra_env: pairs.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        ..Default::default()
    }
}

/// Over the organiser's invitation budget (per group, then per day) addresses are not
/// mailed, and the confirmation says which.
#[tokio::test]
async fn invitation_emails_are_limited_per_group_and_per_day() {
    let app = spawn_app_with(with_env(&[
        ("GROUPBUY_EMAIL_INVITES_PER_GROUP", "2"),
        ("GROUPBUY_EMAIL_INVITES_PER_DAY", "3"),
    ]))
    .await;
    app.new_group(&bob(), "camera 5 a@example.com b@example.com c@example.com")
        .await;
    let first = app
        .message_to(bob().id, "Your group purchase is open")
        .await;
    let text = first.text().expect("text");
    let over =
        text.find("Not emailed: you may have 2 invitation emails sent per group and 3 a day");
    let over = over.unwrap_or_else(|| panic!("over-limit note: {text}"));
    assert!(text[over..].contains("c@example.com"), "{text}");
    assert!(!text[over..].contains("a@example.com"), "{text}");

    app.new_group(&bob(), "scanner 5 d@example.com e@example.com")
        .await;
    let second = app
        .fake
        .sent_texts_to(bob().id)
        .into_iter()
        .rev()
        .find(|t| t.contains("Your group purchase is open"))
        .expect("second confirmation");
    let over = second.find("Not emailed:").expect("over the daily limit");
    assert!(second[over..].contains("e@example.com") && !second[over..].contains("d@example.com"));

    app.outbox_drained().await;
    assert!(app.smtp.wait_for_count(3, WAIT).await);
    // Nothing more can go: the outbox holds just the three (sent) invitations, the addresses
    // over the limit were never queued, and the sink keeps a mail before it acknowledges it.
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM outbox WHERE channel = 'email'")
            .await,
        3
    );
    let mailed: Vec<String> = app
        .smtp
        .messages()
        .iter()
        .flat_map(|m| m.envelope_to.clone())
        .collect();
    assert_eq!(mailed.len(), 3, "{mailed:?}");
    for a in ["a@", "b@", "d@"] {
        assert!(
            mailed.iter().any(|m| m.starts_with(a)),
            "{a} mailed: {mailed:?}"
        );
    }
    assert_eq!(app.sql_i64("SELECT COUNT(*) FROM email_invites").await, 3);
    // The next day the budget is back.
    app.clock.advance(86_401);
    app.new_group(&bob(), "memory 3 f@example.com").await;
    assert!(
        app.smtp.wait_for_count(4, WAIT).await,
        "mailed the next day"
    );
}

/// The List-Unsubscribe URL of a mail as the SMTP server received it, pointed at the test's
/// web side instead of the public URL.
fn unsubscribe_target(app: &TestApp, mail: &crate::support::smtp::Mail) -> (String, String) {
    let header = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    let url = header
        .trim()
        .strip_prefix('<')
        .and_then(|u| u.strip_suffix('>'))
        .expect("<url>")
        .to_string();
    let path = url
        .strip_prefix("https://shop.example.com")
        .expect("an https URL on the public side");
    (url.clone(), format!("http://{}{path}", app.http))
}

/// T-MAIL-07/09: the invitation carries RFC 8058's headers and a visible link; a GET changes
/// nothing, the one-click POST from the SMTP server's copy (no cookies) suppresses the
/// address; later invitations skip it and the organiser is told.
#[tokio::test]
async fn one_click_unsubscribe_from_the_received_mail() {
    let app = spawn_app().await;
    app.new_group(&bob(), "camera 3 carol@example.com").await;
    assert!(app.smtp.wait_for_count(1, WAIT).await);
    let mail = app.smtp.mails_to("carol@example.com").remove(0);
    assert_eq!(
        mail.header("List-Unsubscribe-Post")
            .as_deref()
            .map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    let (public, local) = unsubscribe_target(&app, &mail);
    assert!(
        !public.contains("carol"),
        "the link names no address: {public}"
    );
    let text = mail.text_body().expect("text");
    assert!(
        text.contains(&format!("Don't email me again: {public}")),
        "{text}"
    );
    assert!(mail.html_body().expect("html").contains(&public));
    // The organiser's name is a quoted name, not a sender.
    assert_eq!(
        mail.subject().as_deref(),
        Some("Telegram user \u{201c}Bob\u{201d} invites you to buy Digital camera together")
    );
    assert!(
        mail.header("From")
            .is_some_and(|f| f.contains("shop@example.com"))
    );

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = client.get(&local).send().await.expect("GET");
    assert_eq!(page.status(), 200);
    let body = page.text().await.expect("body");
    assert!(body.contains("<form method=\"post\""), "{body}");
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM email_suppressions").await,
        0,
        "a GET (a mail scanner following the link) changes nothing"
    );
    let done = client
        .post(&local)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("POST");
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .expect("body")
            .contains("will not get invitations")
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM email_suppressions").await,
        1
    );
    // A second POST is harmless; a malformed token is the plain 404.
    let again = client.post(&local).send().await.expect("POST again");
    assert_eq!(again.status(), 200);
    let bogus = format!("http://{}/unsubscribe/carol@example.com", app.http);
    assert_eq!(
        client.post(&bogus).send().await.expect("bogus").status(),
        404
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM email_suppressions").await,
        1
    );

    // Later invitations skip the address (any spelling of it), and Bob is told.
    app.new_group(&bob(), "scanner 3 Carol@Example.com dave@example.com")
        .await;
    let said = app
        .fake
        .sent_texts_to(bob().id)
        .into_iter()
        .rev()
        .find(|t| t.contains("Your group purchase is open"))
        .expect("confirmation");
    let note = said
        .find("asked not to get invitations")
        .unwrap_or_else(|| panic!("{said}"));
    assert!(said[note..].contains("carol@example.com"), "{said}");
    assert!(app.smtp.wait_for_count(2, WAIT).await);
    app.outbox_drained().await;
    // Nothing pending: every queued mail has reached the sink (it keeps a mail before it
    // acknowledges it), and the second invitation to Carol was never queued.
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM outbox WHERE LOWER(email_to) = 'carol@example.com'")
            .await,
        1
    );
    assert_eq!(
        app.smtp.mails_to("carol@example.com").len(),
        1,
        "no second invitation"
    );
    assert_eq!(app.smtp.mails_to("dave@example.com").len(), 1);
}

/// An invitation queued before its address unsubscribed does not go out.
#[tokio::test]
async fn a_queued_invitation_to_an_address_that_left_is_not_sent() {
    let app = spawn_app().await;
    let hash = app
        .ctx
        .secrets
        .hash(groupbuy::secrets::Purpose::Unsubscribe, "erin@example.com");
    app.smtp.set_down(true);
    app.new_group(&bob(), "camera 3 erin@example.com").await;
    {
        let mut tx = app.ctx.store.write().await.expect("tx");
        groupbuy::store::mailing::suppress(&mut tx, &hash, 0)
            .await
            .expect("suppress");
        tx.commit().await.expect("commit");
    }
    app.smtp.set_down(false);
    app.advance(3_600);
    app.outbox_drained().await;
    assert_eq!(
        app.sql_i64(
            "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'invite:%' AND status = 'dead'"
        )
        .await,
        1
    );
    assert!(app.smtp.mails_to("erin@example.com").is_empty());
}

/// A page fetched as the visitor `forwarded_for` behind the test's proxy (loopback).
async fn page_as(app: &TestApp, path: &str, forwarded_for: &str) -> (u16, std::time::Duration) {
    let t0 = std::time::Instant::now();
    let r = reqwest::Client::new()
        .get(format!("http://{}{path}", app.http))
        .header("X-Forwarded-For", forwarded_for)
        .send()
        .await
        .expect("answer");
    (r.status().as_u16(), t0.elapsed())
}

/// Behind a trusted proxy, a hostile client flooding wrong keys is slowed and then refused;
/// another visitor's group page and receipt answer at once, and so does the hostile client's
/// own valid key (slowed, not refused).
#[tokio::test]
async fn a_hostile_client_cannot_lock_out_another() {
    let app = spawn_app_with(with_env(&[
        ("GROUPBUY_TRUSTED_PROXIES", "127.0.0.1"),
        ("GROUPBUY_KEY_ATTEMPTS_PER_MINUTE", "5"),
    ]))
    .await;
    let key = app.new_group(&bob(), "camera 3").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    let receipt = app.message_to(alice().id, "Receipt: ").await;
    let text = receipt.text().expect("text");
    let at = text.find("/g/").expect("receipt link");
    let receipt_path: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '<' && *c != '"')
        .collect();

    const HOSTILE: &str = "203.0.113.66";
    const OTHER: &str = "198.51.100.7, 127.0.0.1";
    for i in 0..5 {
        let (status, _) = page_as(&app, &format!("/g/23456789ABCDEFGH{i}K"), HOSTILE).await;
        assert_eq!(status, 404);
    }
    // The hostile client floods; meanwhile the other visitor is answered at once.
    let flood: Vec<_> = (0..10)
        .map(|i| {
            let url = format!("http://{}/g/23456789ABCDEFGJ{i}K", app.http);
            tokio::spawn(async move {
                reqwest::Client::new()
                    .get(url)
                    .header("X-Forwarded-For", HOSTILE)
                    .send()
                    .await
                    .expect("answer")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for path in [format!("/g/{key}"), receipt_path.clone()] {
        let (status, took) = page_as(&app, &path, OTHER).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            took < std::time::Duration::from_secs(1),
            "{path} took {took:?}"
        );
    }
    let mut statuses = Vec::new();
    for f in flood {
        statuses.push(f.await.expect("joined"));
    }
    assert!(
        statuses.contains(&429),
        "the flood is refused beyond the queue: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 429 || *s == 404),
        "{statuses:?}"
    );
    // The hostile client's own valid key: slowed, not refused.
    let (status, took) = page_as(&app, &format!("/g/{key}"), HOSTILE).await;
    assert_eq!(status, 200);
    assert!(took >= std::time::Duration::from_secs(2), "{took:?}");
}

/// Without a trusted proxy, X-Forwarded-For is ignored: a guesser cannot escape its bucket by
/// writing another address into it.
#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app_with(with_env(&[("GROUPBUY_KEY_ATTEMPTS_PER_MINUTE", "3")])).await;
    let key = app.new_group(&bob(), "camera 3").await;
    for i in 0..3 {
        let (status, _) = page_as(
            &app,
            &format!("/g/23456789ABCDEFGH{i}K"),
            &format!("192.0.2.{i}"),
        )
        .await;
        assert_eq!(status, 404);
    }
    let (status, took) = page_as(&app, &format!("/g/{key}"), "192.0.2.99").await;
    assert_eq!(status, 200, "slowed, not refused");
    assert!(
        took >= std::time::Duration::from_secs(2),
        "still the same bucket: {took:?}"
    );
}

/// Rows of `table` whose text columns contain `needle` (case-insensitive).
async fn rows_mentioning(app: &TestApp, sql_prefix: &str, needle: &str) -> i64 {
    use sqlx::Row;
    let sql = format!("{sql_prefix} LIKE '%{}%'", needle.to_lowercase());
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(app.ctx.store.pool())
        .await
        .expect("query")
        .try_get(0)
        .expect("count")
}

/// `/forgetme` erases a buyer's name, username and addresses from users, invitations,
/// shipping requests, outbox and inbox; the amounts stay, against the bare id.
#[tokio::test]
async fn forgetme_erases_a_buyer_everywhere() {
    let app = spawn_app().await;
    app.say(&alice(), "/start");
    app.message_to(alice().id, "Hello, Alice").await;
    let key = app.new_group(&bob(), "camera 3 @alice").await;
    app.message_to(alice().id, "invited you to buy together")
        .await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    assert!(app.smtp.wait_for_count(1, WAIT).await, "shipping request");
    app.outbox_drained().await;
    assert!(
        rows_mentioning(
            &app,
            "SELECT COUNT(*) FROM shipping_requests WHERE LOWER(address)",
            "Marunouchi"
        )
        .await
            > 0
    );

    let forgetme = app.say(&alice(), "/forgetme");
    app.message_to(alice().id, "I have forgotten you").await;
    app.outbox_drained().await;
    // Marking the /forgetme update handled empties its body (which names Alice).
    app.handled(forgetme).await;

    for (what, sql) in [
        (
            "users",
            "SELECT COUNT(*) FROM users WHERE LOWER(COALESCE(username, '') || ' ' || first_name)",
        ),
        ("members", "SELECT COUNT(*) FROM members WHERE LOWER(value)"),
        (
            "shipping",
            "SELECT COUNT(*) FROM shipping_requests WHERE LOWER(recipient || ' ' || address)",
        ),
        (
            "outbox",
            "SELECT COUNT(*) FROM outbox WHERE LOWER(body_text || ' ' || COALESCE(body_html, '') || ' ' || subject)",
        ),
        ("inbox", "SELECT COUNT(*) FROM inbox WHERE LOWER(body)"),
    ] {
        for needle in ["alice", "Marunouchi", "100-0001"] {
            assert_eq!(
                rows_mentioning(&app, sql, needle).await,
                0,
                "{what} still has {needle}"
            );
        }
    }
    // The amounts stay: one counted purchase, and the ledger balances.
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM purchases WHERE buyer_id = 1002 AND counted = 1")
            .await,
        1
    );
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM users WHERE id = 1002")
            .await,
        1
    );
    // Bob's records of others are untouched.
    assert_eq!(
        rows_mentioning(
            &app,
            "SELECT COUNT(*) FROM users WHERE LOWER(COALESCE(username, ''))",
            "bob_organiser"
        )
        .await,
        1
    );
}

/// `groupbuy forget EMAIL` erases an invitee's address and suppresses it; raw updates lose
/// their bodies a day after handling.
#[tokio::test]
async fn forget_by_email_from_the_command_line_and_inbox_retention() {
    let app = spawn_app().await;
    app.new_group(&bob(), "camera 3 carol@example.com").await;
    assert!(app.smtp.wait_for_count(1, WAIT).await);
    app.outbox_drained().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_groupbuy"))
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/groupbuy.example.toml"),
        ])
        .args(["forget", "Carol@Example.com"])
        .env("GROUPBUY_DATABASE_URL", &app.db_url)
        .env("GROUPBUY_SERVER_SECRET", TEST_SECRET)
        .env("RUST_LOG", "warn")
        .output()
        .expect("groupbuy forget runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("forgotten: 0 user record(s), 1 invitation(s)"),
        "{said}"
    );
    for sql in [
        "SELECT COUNT(*) FROM members WHERE LOWER(value)",
        "SELECT COUNT(*) FROM outbox WHERE LOWER(COALESCE(email_to, '') || ' ' || body_text || ' ' || subject)",
        "SELECT COUNT(*) FROM inbox WHERE LOWER(body)",
    ] {
        assert_eq!(
            rows_mentioning(&app, sql, "carol@example.com").await,
            0,
            "{sql}"
        );
    }
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM email_suppressions").await,
        1
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_groupbuy"))
        .args(["forget", "carol"])
        .env("GROUPBUY_DATABASE_URL", &app.db_url)
        .env("GROUPBUY_SERVER_SECRET", TEST_SECRET)
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("neither a Telegram user id"));

    // Retention: handled updates keep their id and lose their body at once; a body left
    // behind (a crash between handling and emptying) goes a day later.
    let start = app.say(&dave(), "/start");
    app.message_to(dave().id, "Hello, Dave").await;
    app.handled(start).await;
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM inbox WHERE handled_at IS NOT NULL AND body <> ''")
            .await,
        0
    );
    assert!(
        app.sql_i64("SELECT COUNT(*) FROM inbox WHERE handled_at IS NOT NULL")
            .await
            > 0
    );
    sqlx::query("UPDATE inbox SET body = '{\"left\":\"behind\"}'")
        .execute(app.ctx.store.pool())
        .await
        .expect("update");
    app.advance(86_401);
    let deadline = std::time::Instant::now() + WAIT;
    while app
        .sql_i64("SELECT COUNT(*) FROM inbox WHERE handled_at IS NOT NULL AND body <> ''")
        .await
        > 0
    {
        assert!(std::time::Instant::now() < deadline, "bodies not emptied");
        app.ctx.sweep_wake.notify_one();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        app.sql_i64("SELECT COUNT(*) FROM inbox").await > 0,
        "the ids stay a week"
    );
}

async fn sql_text(app: &TestApp, sql: &'static str) -> String {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(app.ctx.store.pool())
        .await
        .expect("query")
        .try_get(0)
        .expect("text")
}

async fn status_of(app: &TestApp, path: &str) -> u16 {
    reqwest::get(format!("http://{}{path}", app.http))
        .await
        .expect("answer")
        .status()
        .as_u16()
}

/// Receipt tokens and invite codes are stored as keyed hashes: the links work, the stored
/// values open nothing, and plain values from before are hashed at start-up.
#[tokio::test]
async fn tokens_are_stored_as_keyed_hashes() {
    let mut app = spawn_app().await;
    let key = app.new_group(&bob(), "camera 3 carol@example.com").await;
    assert!(app.smtp.wait_for_count(1, WAIT).await);
    let invite = app.smtp.mails_to("carol@example.com").remove(0);
    let payload = deep_link_payload(&invite.text_body().expect("text"));
    let code = payload[key.len() + 1..].to_string();
    app.say(&carol(), &format!("/start {payload}"));
    app.message_to(carol().id, "You were invited by email as carol@example.com")
        .await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    let receipt = app.message_to(alice().id, "Receipt: ").await;
    let text = receipt.text().expect("text");
    let path: String = text[text.find("/g/").expect("link")..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '<')
        .collect();
    let token = path.rsplit('/').next().expect("token").to_string();

    let stored_code = sql_text(&app, "SELECT invite_code FROM members WHERE kind = 'email'").await;
    let stored_token = sql_text(&app, "SELECT receipt_token FROM purchases").await;
    for (plain, stored) in [(&code, &stored_code), (&token, &stored_token)] {
        assert_eq!(stored.len(), 64, "{stored}");
        assert!(!stored.contains(plain.as_str()) && !plain.contains(stored.as_str()));
    }
    assert_eq!(status_of(&app, &path).await, 200);
    assert_eq!(
        status_of(&app, &format!("/g/{key}/receipt/{stored_token}")).await,
        404,
        "the stored value is no token"
    );
    // The whole database holds neither value in plain.
    if app.db_url.starts_with("sqlite://") {
        app.outbox_drained().await;
        app.stop().await;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(app.ctx.store.pool())
            .await
            .expect("checkpoint");
        let file = app.db_url.trim_start_matches("sqlite://").to_string();
        let mut bytes = std::fs::read(&file).expect("db file");
        bytes.extend(std::fs::read(format!("{file}-wal")).unwrap_or_default());
        let dump = String::from_utf8_lossy(&bytes);
        if let Some(at) = dump.find(&token) {
            panic!(
                "receipt token in the database file: {:?}",
                &dump[at.saturating_sub(300)..at + 100]
            );
        }
        assert!(!dump.contains(&code), "invite code in the database file");
        app.restart(Options::default()).await;
    }

    // A plain token from before hashing is hashed at start-up, and its link still works. A
    // database from before hashing has no record of the upgrade either (it is done once).
    sqlx::query("UPDATE purchases SET receipt_token = 'legacyPlainToken2345'")
        .execute(app.ctx.store.pool())
        .await
        .expect("update");
    sqlx::query("DELETE FROM upgrades WHERE name = 'hash_plain_tokens'")
        .execute(app.ctx.store.pool())
        .await
        .expect("forget the upgrade");
    app.restart(Options::default()).await;
    assert_eq!(
        sql_text(&app, "SELECT receipt_token FROM purchases")
            .await
            .len(),
        64
    );
    assert_eq!(
        status_of(&app, &format!("/g/{key}/receipt/legacyPlainToken2345")).await,
        200
    );
    // Each start-up upgrade is recorded, so later starts skip its whole-table scan.
    assert_eq!(
        app.sql_i64(
            "SELECT COUNT(*) FROM upgrades WHERE name IN ('hash_plain_tokens', 'ledger_currency')"
        )
        .await,
        2
    );
    assert_eq!(
        status_of(&app, &path).await,
        200,
        "the derived link still works"
    );
}

/// RFC 6376 "relaxed" header canonicalization of one field (`Name: value`, maybe folded).
fn relaxed_header(field: &str) -> String {
    let (name, value) = field.split_once(':').expect("a header field");
    let unfolded = value.replace("\r\n", "");
    let value = unfolded
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    format!("{}:{}\r\n", name.trim().to_ascii_lowercase(), value)
}

/// RFC 6376 "relaxed" body canonicalization.
fn relaxed_body(body: &str) -> String {
    let mut lines: Vec<String> = body
        .split("\r\n")
        .map(|l| {
            let mut out = String::new();
            let mut space = false;
            for c in l.chars() {
                if c == ' ' || c == '\t' {
                    space = true;
                } else {
                    if space {
                        out.push(' ');
                    }
                    space = false;
                    out.push(c);
                }
            }
            out
        })
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

/// Checks the DKIM-Signature of a message as received (ed25519-sha256, relaxed/relaxed)
/// against `public`; returns its tags.
fn verify_dkim(
    raw: &str,
    public: &ed25519_dalek::VerifyingKey,
) -> std::collections::HashMap<String, String> {
    use base64::Engine;
    use sha2::Digest;
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers and body");
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = fields.last_mut().expect("a field to continue");
            last.push_str("\r\n");
            last.push_str(line);
        } else {
            fields.push(line.to_string());
        }
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| {
                f.split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            })
            .cloned()
    };
    let sig = field("DKIM-Signature").expect("DKIM-Signature");
    let value = sig.split_once(':').expect("field").1.replace("\r\n", "");
    let tags: std::collections::HashMap<String, String> = value
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                v.split_whitespace().collect::<String>(),
            )
        })
        .collect();
    assert_eq!(tags["a"], "ed25519-sha256");
    assert_eq!(tags["c"], "relaxed/relaxed");
    let bh =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(relaxed_body(body)));
    assert_eq!(tags["bh"], bh, "body hash");
    let mut data = String::new();
    for name in tags["h"].split(':') {
        if let Some(f) = field(name) {
            data.push_str(&relaxed_header(&f));
        }
    }
    let unsigned: Vec<String> = sig
        .split(';')
        .map(|part| match part.trim_start().strip_prefix("b=") {
            Some(_) => part[..part.find("b=").expect("b=") + 2].to_string(),
            None => part.to_string(),
        })
        .collect();
    data.push_str(relaxed_header(&unsigned.join(";")).trim_end_matches("\r\n"));
    if std::env::var_os("DKIM_DEBUG").is_some() {
        eprintln!("DATA<<{data}>>\nRAW<<{head}>>");
    }
    let hash = sha2::Sha256::digest(data.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD
        .decode(&tags["b"])
        .expect("base64 signature");
    let signature = ed25519_dalek::Signature::from_slice(&signature).expect("64 bytes");
    public
        .verify_strict(&hash, &signature)
        .expect("the DKIM signature verifies");
    tags
}

/// With the three DKIM settings every email is signed (invitation and shipping request alike),
/// the signature covers the List-Unsubscribe pair and verifies against the public key; a
/// tampered copy does not verify.
#[tokio::test]
async fn every_email_is_dkim_signed_and_verifies() {
    use base64::Engine;
    let dir = tempfile::tempdir().expect("dir");
    let seed = [7u8; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let key_file = dir.path().join("dkim.key");
    std::fs::write(
        &key_file,
        base64::engine::general_purpose::STANDARD.encode(seed),
    )
    .expect("key");
    let key_path = key_file.display().to_string();
    let app = spawn_app_with(with_env(&[
        ("GROUPBUY_DKIM_SELECTOR", "gb2026"),
        ("GROUPBUY_DKIM_DOMAIN", "example.com"),
        ("GROUPBUY_DKIM_PRIVATE_KEY_FILE", &key_path),
    ]))
    .await;
    let key = app.new_group(&bob(), "camera 3 carol@example.com").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    assert!(app.smtp.wait_for_count(2, WAIT).await);
    let invite = app.smtp.mails_to("carol@example.com").remove(0);
    let tags = verify_dkim(&invite.raw, &public);
    assert_eq!(
        (tags["d"].as_str(), tags["s"].as_str()),
        ("example.com", "gb2026")
    );
    for h in [
        "from",
        "subject",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            tags["h"].split(':').any(|x| x == h),
            "h= covers {h}: {}",
            tags["h"]
        );
    }
    let shipping = app.smtp.mails_to("warehouse@example.com").remove(0);
    verify_dkim(&shipping.raw, &public);
    // A changed subject breaks the signature.
    let tampered = invite.raw.replacen("Subject: ", "Subject: Re: ", 1);
    let broke = std::panic::catch_unwind(|| verify_dkim(&tampered, &public));
    assert!(broke.is_err(), "a tampered message must not verify");
}

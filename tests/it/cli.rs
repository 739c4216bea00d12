//! The `groupbuy` command line as an operator uses it: help, migrate, catalog import,
//! settle, and start-up refusals that name the setting at fault.

use crate::db::Db;
use crate::helpers::database_url;
use groupbuy::app::{Ctx, Person};
use std::process::{Command, Output};

fn groupbuy(db: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_groupbuy"));
    cmd.args(args)
        .env("GROUPBUY_DATABASE_URL", db)
        .env("GROUPBUY_SERVER_SECRET", crate::helpers::TEST_SECRET)
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in ["GROUPBUY_TELEGRAM_TOKEN", "GROUPBUY_HTTP_ADDR"] {
        if !env.iter().any(|(e, _)| e == &k) {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("groupbuy runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["playground", "--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["catalog", "import", "--help"],
        vec!["settle", "--help"],
        vec!["outbox", "--help"],
        vec!["outbox", "retry", "--help"],
        vec!["catalog", "remove", "--help"],
        vec!["refunds", "--help"],
        vec!["refunds", "done", "--help"],
        vec!["refund", "--help"],
        vec!["export", "--help"],
    ] {
        let out = groupbuy("sqlite://unused.db", &args, &[]);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("Usage: groupbuy"), "{args:?}");
    }
}

#[tokio::test]
async fn migrate_import_and_settle_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = database_url(Db::from_env(), dir.path()).await;
    let out = groupbuy(&db, &["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("database is up to date"));

    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        "[[products]]\nsku = \"tripod\"\nname = \"Tripod\"\nprice = 4200\n",
    )
    .expect("write");
    let out = groupbuy(
        &db,
        &["catalog", "import", catalog.to_str().expect("path")],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("imported 1 products"), "{}", text(&out));
    std::fs::write(
        &catalog,
        "[[products]]\nsku = \"bad sku\"\nname = \"X\"\nprice = 1\n",
    )
    .expect("write");
    let out = groupbuy(
        &db,
        &["catalog", "import", catalog.to_str().expect("path")],
        &[],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("setting `products`"), "{}", text(&out));

    // A group that expired with one buyer of three: `settle` settles it, once.
    let config = groupbuy::config::Config::from_sources(
        Some(crate::helpers::EXAMPLE_TOML),
        &[
            ("GROUPBUY_DATABASE_URL".to_string(), db.clone()),
            (
                "GROUPBUY_SERVER_SECRET".to_string(),
                crate::helpers::TEST_SECRET.to_string(),
            ),
        ]
        .into_iter()
        .collect(),
    )
    .expect("config");
    let clock = groupbuy::clock::Clock::system();
    let store = groupbuy::startup::open_store(&config, &clock)
        .await
        .expect("store");
    let ctx = Ctx::new(store, std::sync::Arc::new(config), clock.clone(), "bot");
    let org = Person {
        id: groupbuy::domain::UserId::new(1),
        username: None,
        first_name: "Olga".into(),
    };
    groupbuy::app::new_group::create(&ctx, 1, &org, 1, "tripod 3 1h")
        .await
        .expect("group");
    sqlx::query("UPDATE group_buys SET expires_at = expires_at - 7200")
        .execute(ctx.store.pool())
        .await
        .expect("expire");
    let out = groupbuy(&db, &["settle"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("settled 1 groups"), "{}", text(&out));
    let again = groupbuy(&db, &["settle"], &[]);
    assert!(
        text(&again).contains("settled 0 groups"),
        "{}",
        text(&again)
    );
}

#[tokio::test]
async fn start_up_refusals_name_the_setting() {
    let out = groupbuy("sqlite://unused.db", &["serve"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("GROUPBUY_TELEGRAM_TOKEN"),
        "{}",
        text(&out)
    );
    let out = groupbuy(
        "sqlite://unused.db",
        &["migrate"],
        &[("GROUPBUY_HTTP_ADDR", "nowhere")],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("setting `http_addr` (environment GROUPBUY_HTTP_ADDR) is invalid"),
        "{}",
        text(&out)
    );
    let out = groupbuy("mysql://x", &["migrate"], &[]);
    assert!(
        text(&out).contains("setting `database_url`"),
        "{}",
        text(&out)
    );
    let out = groupbuy(
        "sqlite://unused.db",
        &["--config", "/nonexistent/groupbuy.toml", "migrate"],
        &[],
    );
    assert!(
        text(&out).contains("cannot read the configuration file /nonexistent/groupbuy.toml"),
        "{}",
        text(&out)
    );
}

/// Issue [money]: the operator's refunds, from the command line, against a running service's
/// database: list what is owed, reverse a purchase, close a provider refund once paid out, and
/// be told plainly what cannot be done.
#[tokio::test]
async fn refunds_from_the_command_line() {
    use crate::helpers::{spawn_app, tokyo};
    use crate::support::TgUser;
    let app = spawn_app().await;
    let bob = TgUser::new(8101, "Bob");
    let alice = TgUser::new(8102, "Alice");
    let key = app.new_group(&bob, "camera 3").await;
    let paid = app.buy(&alice, &key, "camera", tokyo()).await;
    let charge = paid.charge_id.as_str();
    let run = |args: &[&str]| groupbuy(&app.db_url, args, &[]);

    let out = run(&["refunds"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no refunds are owed"), "{}", text(&out));

    // Taking a product off sale: an unknown or malformed code is refused and changes nothing.
    let out = run(&["catalog", "remove", "telescope"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no product on sale has the code telescope"),
        "{}",
        text(&out)
    );
    let out = run(&["catalog", "remove", "bad sku"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is not a product code"),
        "{}",
        text(&out)
    );

    let out = run(&["refund", "no-such-charge"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no payment has the charge id \"no-such-charge\""),
        "{}",
        text(&out)
    );

    let out = run(&["refund", charge]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "refund 34,800 JPY through your payment provider, then run `groupbuy refunds done {charge}`"
        )),
        "{}",
        text(&out)
    );
    let out = run(&["refund", charge]);
    assert!(!out.status.success());
    assert!(text(&out).contains("is already due"), "{}", text(&out));

    let out = run(&["refunds"]);
    let listed = text(&out);
    let line = listed
        .lines()
        .find(|l| l.starts_with(charge))
        .unwrap_or_else(|| panic!("no line for {charge}: {listed}"));
    for part in [
        "\tdue\t",
        "34,800 JPY",
        "provider",
        "reason=reversed",
        "groupbuy refunds done",
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }

    let out = run(&["refunds", "done", charge]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["refunds", "done", charge]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("was already refunded"),
        "{}",
        text(&out)
    );
    let out = run(&["refunds"]);
    assert!(text(&out).contains("no refunds are owed"), "{}", text(&out));
    let out = run(&["refunds", "--all"]);
    assert!(
        text(&out)
            .lines()
            .any(|l| l.starts_with(charge) && l.contains("\tdone\t")),
        "{}",
        text(&out)
    );
    // The running service tells Alice (its outbox delivers what the command queued).
    app.ctx.outbox_wake.notify_one();
    app.message_to(alice.id, "was refunded").await;
    app.message_to(alice.id, "Refund complete").await;
    assert_eq!(
        app.sql_i64("SELECT COUNT(*) FROM purchases WHERE counted = 1")
            .await,
        0
    );
}

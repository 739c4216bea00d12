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
        &[("GROUPBUY_DATABASE_URL".to_string(), db.clone())]
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
        id: 1,
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

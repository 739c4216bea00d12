//! `spawn_app`: the unchanged service against the Bot API fake and the SMTP sink, on a fresh
//! SQLite file, plus the steps people take (write to the bot, press a button, pay).

use crate::support::bot_api::{self, ShippingAddress, TgUser};
use crate::support::{Call, FakeBotApi, SmtpSink};
use groupbuy::app::Ctx;
use groupbuy::clock::Clock;
use groupbuy::config::Config;
use groupbuy::shutdown::{self, Trigger};
use groupbuy::startup::App;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;

pub const WAIT: Duration = Duration::from_secs(30);

/// The server secret every test service and CLI run shares (so tokens one makes, another
/// recognises).
pub const TEST_SECRET: &str = "test-server-secret-0123456789-abcdefghijkl";

/// Logs at `warn` (or `RUST_LOG`) into the test's captured output: shown only when a test
/// fails, which is when the operator's view of what happened is wanted.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
pub const EXAMPLE_TOML: &str = include_str!("../../groupbuy.example.toml");

pub struct TestApp {
    pub fake: FakeBotApi,
    pub smtp: SmtpSink,
    pub ctx: Ctx,
    pub clock: Clock,
    /// The database this app uses (an SQLite file in the temp dir, or a fresh PostgreSQL one).
    pub db_url: String,
    /// Where the web side listens.
    pub http: std::net::SocketAddr,
    /// Where `/healthz` and `/metrics` answer.
    pub admin: std::net::SocketAddr,
    trigger: Option<Trigger>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

#[derive(Clone)]
pub struct Options {
    pub db: crate::db::Db,
    pub policy: &'static str,
    pub extra_env: Vec<(&'static str, String)>,
    /// Leave out the example file's region bonus.
    pub no_region_bonus: bool,
    /// TOML appended to the example file (e.g. a `[region_rate]` table).
    pub extra_toml: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            db: crate::db::Db::from_env(),
            policy: "all_or_nothing",
            extra_env: vec![],
            no_region_bonus: false,
            extra_toml: "",
        }
    }
}

pub fn config_for(fake: &FakeBotApi, smtp: &SmtpSink, db_url: &str, opts: &Options) -> Config {
    let mut env: HashMap<String, String> = [
        ("GROUPBUY_TELEGRAM_TOKEN", fake.token().to_string()),
        ("GROUPBUY_TELEGRAM_API_URL", fake.api_url().to_string()),
        ("GROUPBUY_DATABASE_URL", db_url.to_string()),
        ("GROUPBUY_SMTP_URL", smtp.url()),
        (
            "GROUPBUY_MAIL_FROM",
            "groupbuy <shop@example.com>".to_string(),
        ),
        (
            "GROUPBUY_FULFILMENT_EMAIL",
            "warehouse@example.com".to_string(),
        ),
        (
            "GROUPBUY_PUBLIC_URL",
            "https://shop.example.com".to_string(),
        ),
        (
            "GROUPBUY_PAYMENT_PROVIDER_TOKEN",
            "TEST-PROVIDER-TOKEN".to_string(),
        ),
        ("GROUPBUY_POLICY", opts.policy.to_string()),
        ("GROUPBUY_HTTP_ADDR", "127.0.0.1:0".to_string()),
        ("GROUPBUY_ADMIN_ADDR", "127.0.0.1:0".to_string()),
        ("GROUPBUY_SERVER_SECRET", TEST_SECRET.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in &opts.extra_env {
        env.insert((*k).to_string(), v.clone());
    }
    let mut toml = if opts.no_region_bonus {
        EXAMPLE_TOML.replace(
            "[region_bonus]\namount = 500\nmin_buyers = 2\nwindow_hours = 0\n",
            "",
        )
    } else {
        EXAMPLE_TOML.to_string()
    };
    toml.push_str(opts.extra_toml);
    Config::from_sources(Some(&toml), &env).expect("test configuration is valid")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    init_logs();
    let fake = FakeBotApi::start().await;
    let smtp = SmtpSink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = database_url(opts.db, dir.path()).await;
    let clock = Clock::system();
    let config = config_for(&fake, &smtp, &db_url, &opts);
    let app = App::build(config, clock.clone()).await.expect("app builds");
    let ctx = app.ctx().clone();
    let http = app.http_addr().expect("bound");
    let admin = app.admin_addr().expect("bound");
    let (trigger, shutdown) = shutdown::channel();
    let handle = tokio::spawn(app.run(shutdown));
    TestApp {
        fake,
        smtp,
        ctx,
        clock,
        db_url,
        http,
        admin,
        trigger: Some(trigger),
        handle: Some(handle),
        _dir: dir,
    }
}

/// The library on a test database, without the bot running: for seeding data quickly and
/// for tests that run the real binary beside it.
pub async fn library_ctx(fake: &FakeBotApi, smtp: &SmtpSink, db_url: &str) -> Ctx {
    let config = config_for(
        fake,
        smtp,
        db_url,
        &Options {
            no_region_bonus: true,
            ..Default::default()
        },
    );
    let clock = Clock::system();
    let store = groupbuy::startup::open_store(&config, &clock)
        .await
        .expect("store");
    Ctx::new(
        store,
        std::sync::Arc::new(config),
        clock,
        "groupbuy_test_bot",
    )
}

/// `groupbuy serve` as a subprocess (the real binary) against the fake, the SMTP sink and a
/// test database; callers add what differs (failpoint, webhook mode, address).
pub fn serve_command(fake: &FakeBotApi, smtp: &SmtpSink, db_url: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_groupbuy"));
    cmd.arg("--config")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/groupbuy.example.toml"
        ))
        .arg("serve")
        .env("GROUPBUY_TELEGRAM_TOKEN", fake.token())
        .env("GROUPBUY_TELEGRAM_API_URL", fake.api_url().to_string())
        .env("GROUPBUY_DATABASE_URL", db_url)
        .env("GROUPBUY_SMTP_URL", smtp.url())
        .env("GROUPBUY_MAIL_FROM", "groupbuy <shop@example.com>")
        .env("GROUPBUY_FULFILMENT_EMAIL", "warehouse@example.com")
        .env("GROUPBUY_PUBLIC_URL", "https://shop.example.com")
        .env("GROUPBUY_PAYMENT_PROVIDER_TOKEN", "TEST-PROVIDER-TOKEN")
        .env("GROUPBUY_HTTP_ADDR", "127.0.0.1:0")
        .env("GROUPBUY_ADMIN_ADDR", "127.0.0.1:0")
        .env("GROUPBUY_SERVER_SECRET", TEST_SECRET)
        .env("RUST_LOG", "warn")
        .env_remove("GROUPBUY_FAILPOINT")
        .env_remove("GROUPBUY_WEBHOOK_SECRET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// A fresh database of the kind asked for.
pub async fn database_url(db: crate::db::Db, dir: &std::path::Path) -> String {
    match db {
        crate::db::Db::Sqlite => {
            crate::db::report_sqlite_only();
            format!("sqlite://{}", dir.join("groupbuy.db").display())
        }
        crate::db::Db::Postgres => crate::db::fresh_postgres().await,
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

pub fn tokyo() -> ShippingAddress {
    address("JP", "Tokyo", "100-0001")
}

pub fn address(country: &str, state: &str, post_code: &str) -> ShippingAddress {
    ShippingAddress {
        country_code: country.into(),
        state: state.into(),
        city: "Chiyoda".into(),
        street_line1: "1-1 Marunouchi".into(),
        street_line2: String::new(),
        post_code: post_code.into(),
    }
}

/// What a completed checkout left behind.
pub struct Paid {
    pub charge_id: String,
    pub update: Value,
    pub update_id: i64,
}

impl TestApp {
    /// Stops the service at a commit boundary and waits for it.
    pub async fn stop(&mut self) {
        if let Some(t) = self.trigger.take() {
            t.trigger();
        }
        if let Some(h) = self.handle.take() {
            let result = tokio::time::timeout(Duration::from_secs(30), h).await;
            assert!(result.is_ok(), "the service did not stop within 30 s");
        }
    }

    /// Starts the service again on the same database, fake and SMTP sink (a restart).
    pub async fn restart(&mut self, opts: Options) {
        self.stop().await;
        let config = config_for(&self.fake, &self.smtp, &self.db_url, &opts);
        let app = App::build(config, self.clock.clone())
            .await
            .expect("app builds again");
        self.ctx = app.ctx().clone();
        self.http = app.http_addr().expect("bound");
        self.admin = app.admin_addr().expect("bound");
        let (trigger, shutdown) = shutdown::channel();
        self.handle = Some(tokio::spawn(app.run(shutdown)));
        self.trigger = Some(trigger);
    }

    pub fn say(&self, user: &TgUser, text: &str) -> i64 {
        self.fake.inject(bot_api::text_message(user, text))
    }

    pub fn press(&self, user: &TgUser, data: &str) -> i64 {
        self.fake.inject(bot_api::callback_query(user, 1, data))
    }

    /// Waits for a message to `chat` whose text contains `needle`.
    pub async fn message_to(&self, chat: i64, needle: &str) -> Call {
        let needle = needle.to_string();
        self.fake
            .wait_for_call(
                move |c| {
                    c.method == "sendMessage"
                        && !c.failed
                        && c.chat_id() == Some(chat)
                        && c.text().is_some_and(|t| t.contains(&needle))
                },
                WAIT,
            )
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no message to {chat} containing the expected text; got {:#?}",
                    self.fake.sent_texts_to(chat)
                )
            })
    }

    /// Waits for the exact message `text` to `chat`.
    pub async fn exact_message_to(&self, chat: i64, text: &str) -> Call {
        let text = text.to_string();
        self.fake
            .wait_for_call(
                move |c| {
                    c.method == "sendMessage"
                        && c.chat_id() == Some(chat)
                        && c.text() == Some(text.as_str())
                },
                WAIT,
            )
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no such message to {chat}; got {:#?}",
                    self.fake.sent_texts_to(chat)
                )
            })
    }

    pub fn messages_to(&self, chat: i64, needle: &str) -> usize {
        self.fake
            .sent_texts_to(chat)
            .iter()
            .filter(|t| t.contains(needle))
            .count()
    }

    /// Presses a buy button and returns the invoice call.
    pub async fn invoice_after(&self, user: &TgUser, data: &str) -> Call {
        let before = self.fake.calls().len();
        self.press(user, data);
        let uid = user.id;
        self.fake
            .wait_for_call(
                move |c| c.method == "sendInvoice" && c.chat_id() == Some(uid) && c.index >= before,
                WAIT,
            )
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no invoice for {uid}; messages: {:#?}",
                    self.fake.sent_texts_to(uid)
                )
            })
    }

    /// The whole checkout for an invoice: shipping query, pre-checkout, successful payment.
    pub async fn checkout(&self, user: &TgUser, invoice: &Call, ship_to: ShippingAddress) -> Paid {
        let approved = self.approve(user, invoice, ship_to.clone()).await;
        self.pay(user, &approved, ship_to).await
    }

    /// The successful payment of an approved invoice ([`Self::approve`]), up to its receipt.
    pub async fn pay(
        &self,
        user: &TgUser,
        (payload, currency, total): &(String, String, i64),
        ship_to: ShippingAddress,
    ) -> Paid {
        let (payload, currency, total) = (payload.as_str(), currency.as_str(), *total);
        let charge_id = unique("tg-charge");
        let update = bot_api::successful_payment(
            user,
            currency,
            total,
            payload,
            &charge_id,
            &unique("provider"),
            Some(ship_to),
        );
        let before = self.messages_to(user.id, "payment received");
        let update_id = self.fake.inject(update.clone());
        let uid = user.id;
        let received = self
            .fake
            .wait_until(
                |calls| count_texts(calls, uid, "payment received") > before,
                WAIT,
            )
            .await;
        assert!(
            received,
            "no receipt for {uid}: {:#?}",
            self.fake.sent_texts_to(uid)
        );
        Paid {
            charge_id,
            update,
            update_id,
        }
    }

    /// The buyer's payment approved but not yet made: shipping answered and pre-checkout
    /// approved, so a seat is held. Returns the invoice's payload, currency and total.
    pub async fn approve(
        &self,
        user: &TgUser,
        invoice: &Call,
        ship_to: ShippingAddress,
    ) -> (String, String, i64) {
        let payload = invoice
            .str_param("payload")
            .expect("invoice payload")
            .to_string();
        let currency = invoice.str_param("currency").expect("currency").to_string();
        let price: i64 = invoice.params["prices"]
            .as_array()
            .expect("prices")
            .iter()
            .map(|p| p["amount"].as_i64().unwrap_or(0))
            .sum();

        let sq = unique("sq");
        self.fake.inject(bot_api::shipping_query(
            user,
            &sq,
            &payload,
            ship_to.clone(),
        ));
        let answer = self
            .answer("answerShippingQuery", "shipping_query_id", &sq)
            .await;
        assert_eq!(
            answer.params["ok"],
            json!(true),
            "shipping refused: {:?}",
            answer.params
        );
        let fee = answer.params["shipping_options"][0]["prices"][0]["amount"]
            .as_i64()
            .unwrap_or(0);
        let total = price + fee;

        self.pre_checkout(user, &currency, total, &payload, true)
            .await;
        (payload, currency, total)
    }

    /// Sends a pre-checkout query and asserts Telegram is told `ok`; returns the answer.
    pub async fn pre_checkout(
        &self,
        user: &TgUser,
        currency: &str,
        total: i64,
        payload: &str,
        expect_ok: bool,
    ) -> Call {
        let id = unique("pcq");
        self.fake.inject(bot_api::pre_checkout_query(
            user, &id, currency, total, payload, None,
        ));
        let answer = self
            .answer("answerPreCheckoutQuery", "pre_checkout_query_id", &id)
            .await;
        assert_eq!(
            answer.params["ok"],
            json!(expect_ok),
            "pre-checkout answer: {:?}",
            answer.params
        );
        answer
    }

    async fn answer(&self, method: &'static str, field: &'static str, id: &str) -> Call {
        let id = id.to_string();
        self.fake
            .wait_for_call(
                move |c| c.method == method && c.str_param(field) == Some(id.as_str()),
                WAIT,
            )
            .await
            .unwrap_or_else(|| panic!("no {method} for {field}"))
    }

    /// Buys `sku` in the group `key` as `user`, shipping to `ship_to`.
    pub async fn buy(&self, user: &TgUser, key: &str, sku: &str, ship_to: ShippingAddress) -> Paid {
        let invoice = self.invoice_after(user, &format!("s:{key}:{sku}")).await;
        self.checkout(user, &invoice, ship_to).await
    }

    /// Buys the group's camera; the receipt may go elsewhere than the chat (e.g. email).
    pub async fn buy_without_receipt_check(&self, user: &TgUser, key: &str) {
        let invoice = self.invoice_after(user, &format!("s:{key}:camera")).await;
        let payload = invoice.str_param("payload").expect("payload").to_string();
        self.pre_checkout(user, "JPY", 34_800, &payload, true).await;
        let update = bot_api::successful_payment(
            user,
            "JPY",
            34_800,
            &payload,
            &unique("tg-charge"),
            &unique("provider"),
            Some(tokyo()),
        );
        self.fake.inject(update);
    }

    /// The organiser creates a group; returns its key from the confirmation.
    pub async fn new_group(&self, organiser: &TgUser, args: &str) -> String {
        let before = self.messages_to(organiser.id, "Your group purchase is open");
        self.say(organiser, &format!("/newgroup {args}"));
        let oid = organiser.id;
        assert!(
            self.fake
                .wait_until(
                    |calls| count_texts(calls, oid, "Your group purchase is open") > before,
                    WAIT
                )
                .await,
            "no confirmation for /newgroup {args}: {:#?}",
            self.fake.sent_texts_to(oid)
        );
        let text = self
            .fake
            .sent_texts_to(oid)
            .into_iter()
            .rev()
            .find(|t| t.contains("Your group purchase is open"))
            .expect("confirmation");
        key_in(&text)
    }

    /// Moves the clock and lets the sweep run.
    pub fn advance(&self, secs: i64) {
        self.clock.advance(secs);
        self.ctx.sweep_wake.notify_one();
        self.ctx.outbox_wake.notify_one();
    }

    pub async fn sql_i64(&self, sql: &'static str) -> i64 {
        use sqlx::Row;
        sqlx::query(sql)
            .fetch_one(self.ctx.store.pool())
            .await
            .expect("query")
            .try_get(0)
            .expect("integer")
    }

    /// Waits until the processor has handled the update `update_id` (its inbox row marked
    /// handled): whatever its handler did is committed by then, and nothing more will come
    /// of it. Use this, not a sleep, before asserting that an update changed nothing.
    pub async fn handled(&self, update_id: i64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let handled: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM inbox WHERE update_id = $1 AND handled_at IS NOT NULL",
            )
            .bind(update_id)
            .fetch_one(self.ctx.store.pool())
            .await
            .expect("query");
            if handled == 1 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "update {update_id} was not handled in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the outbox has nothing pending.
    pub async fn outbox_drained(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if self
                .sql_i64("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                .await
                == 0
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "outbox not drained in time"
            );
            self.ctx.outbox_wake.notify_one();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(t) = self.trigger.take() {
            t.trigger();
        }
    }
}

/// Successful messages to `chat` containing `needle`, counted over a slice of calls (for
/// predicates that run while the fake holds its lock).
pub fn count_texts(calls: &[Call], chat: i64, needle: &str) -> usize {
    calls
        .iter()
        .filter(|c| {
            c.method == "sendMessage"
                && !c.failed
                && c.chat_id() == Some(chat)
                && c.text().is_some_and(|t| t.contains(needle))
        })
        .count()
}

/// The group key in a confirmation ("Key: <code>KEY</code>").
pub fn key_in(text: &str) -> String {
    let start = text.find("Key: <code>").expect("key in confirmation") + "Key: <code>".len();
    text[start..start + 18].to_string()
}

/// The `start=` payload of the deep link in an invitation email.
pub fn deep_link_payload(text: &str) -> String {
    let start = text.find("?start=").expect("deep link") + "?start=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// A person's points balance.
pub async fn balance(app: &TestApp, user: i64) -> i64 {
    let mut conn = app.ctx.store.read().await.expect("connection");
    groupbuy::store::ledger::balance(&mut conn, groupbuy::domain::UserId::new(user))
        .await
        .expect("balance")
        .value()
}

/// Every ledger transaction sums to zero, in one currency.
pub async fn assert_ledger_balances(app: &TestApp) {
    let mut conn = app.ctx.store.read().await.expect("connection");
    assert_eq!(
        groupbuy::store::ledger::audit(&mut conn)
            .await
            .expect("audit"),
        (0, 0),
        "every ledger transaction sums to zero, in one currency"
    );
}

/// A group key as the bot printed it, typed.
pub fn gk(key: &str) -> groupbuy::domain::GroupKey {
    groupbuy::domain::GroupKey::parse(key).expect("a key the bot issued")
}

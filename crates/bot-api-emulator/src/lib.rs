//! `BotApiEmulator`: a Telegram Bot API emulator speaking real HTTP + JSON on loopback. The
//! integration suite uses it as its Bot API fake and `groupbuy playground` as the Telegram the
//! browser chat panes talk to; it is the same code in both.
//!
//! Point the unchanged bot at it with `Bot::new(emulator.token()).set_api_url(emulator.api_url())`.
//! Every request is parsed (JSON, urlencoded form, multipart form or query string), checked
//! against the Bot API schema (`schema`, the vendored `../shared/telegram/bot-api.json`),
//! recorded, and answered with Telegram-shaped JSON.
//!
//! Answers to invalid requests: unknown method → HTTP 400 "Not Found: method not found";
//! missing required field or wrong type → HTTP 400 "Bad Request: <violation>" (like Telegram,
//! which also rejects them); unknown fields are recorded as violations but the call succeeds
//! (Telegram ignores them). Never a 5xx unless a `Fault::ServerError` was asked for: teloxide
//! sleeps 10 s after any 5xx.
//!
//! In a test (the default), dropping the emulator fails the test when any call violated the
//! schema (unless `allow_violations()` was called) or an `expect_calls(method, n)` count is
//! not met; the playground switches that off with `set_strict(false)` and shows violations.
//!
//! Layout: this file holds the public handle; `http` parses, validates, applies faults and
//! records; `answers` builds results and long-polls `getUpdates`; `updates` builds the update
//! JSON that Telegram would send; `chat` is the user's side (what a person sees and does).
mod answers;
mod call;
mod chat;
mod http;
mod limits;
mod queue;
pub mod schema;
mod stars;
mod updates;

pub use call::{Call, Upload};
pub use chat::{ChatEntry, PayError, Payment};
use limits::Limits;
use queue::{assign_update_id, queue_update, remember_users};
pub use updates::*;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use serde_json::{Value, json};
use tokio::sync::Notify;

use http::as_i64;
use schema::schema;

/// The emulated bot's Telegram user id.
pub const BOT_ID: i64 = 123456;
/// The emulated bot's username, without the `@`.
pub const BOT_USERNAME: &str = "groupbuy_test_bot";
/// The emulated bot's display name.
pub const BOT_FIRST_NAME: &str = "GroupBuy Test";
/// The emulated bot's token.
pub const TOKEN: &str = "123456:TEST-TOKEN";

/// An error the fake returns instead of the normal answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// HTTP 429 with `parameters.retry_after` (teloxide: `RequestError::RetryAfter`).
    TooManyRequests { retry_after: u32 },
    /// HTTP 502 "Bad Gateway". teloxide sleeps 10 s before returning the error!
    ServerError,
    /// HTTP 403, e.g. "Forbidden: bot was blocked by the user".
    Forbidden(&'static str),
    /// HTTP 400 with this description, e.g. "Bad Request: chat not found".
    BadRequest(String),
    /// Answer normally, but only after this delay (a timeout when longer than the client's).
    Delay(Duration),
}

struct FaultRule {
    method_lc: String,
    chat_id: Option<i64>,
    remaining: u32,
    fault: Fault,
}

struct Pending {
    id: i64,
    update: Value,
    /// Injected with `inject_raw_with_id`: delivered once even if its id is below the offset.
    forced: bool,
    delivered: bool,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<Call>,
    violations: Vec<String>,
    pending: Vec<Pending>,
    next_update_id: i64,
    next_message_id: i64,
    /// Messages the bot sent (as returned, edits applied) and the private-chat messages users
    /// sent, by (chat_id, message_id).
    messages: HashMap<(i64, i64), Value>,
    /// Every message of every chat in the order it happened: (chat_id, message_id, from_bot).
    transcript: Vec<(i64, i64, bool)>,
    /// The parameters of each `sendInvoice`, by the (chat_id, message_id) of its message.
    invoices: HashMap<(i64, i64), Value>,
    /// Invoices paid through [`BotApiEmulator::pay`], by (chat_id, message_id).
    paid: std::collections::HashSet<(i64, i64)>,
    /// Invoices whose payment is under way.
    paying: std::collections::HashSet<(i64, i64)>,
    /// The `parse_mode` each bot message was sent or last edited with.
    parse_modes: HashMap<(i64, i64), String>,
    /// `false` in the playground: dropping the emulator checks nothing.
    lax: bool,
    /// Users seen in injected updates: id → user JSON (for realistic private chats).
    users: HashMap<i64, Value>,
    faults: Vec<FaultRule>,
    webhook: Option<Value>,
    commands: Value,
    lenient: bool,
    allow_violations: bool,
    /// (method, exact number of successful calls) checked on drop.
    expectations: Vec<(String, usize)>,
    /// Telegram's sending limits, when switched on with [`BotApiEmulator::enforce_limits`].
    limits: Option<Limits>,
    /// Sends refused with 429 because they broke [`Limits`].
    too_many: u64,
    /// Telegram Stars charges seen paid, by charge id (see [`stars`]).
    star_charges: HashMap<String, stars::StarCharge>,
}

struct Shared {
    state: Mutex<FakeState>,
    /// Poked on every recorded call and on every confirmation of updates.
    changed: Notify,
    /// Poked on every injected update.
    updates: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running emulator: its loopback server and everything it recorded.
pub struct BotApiEmulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

/// On drop (unless the test is already panicking): fails the test when a call violated the
/// schema (opt out with [`BotApiEmulator::allow_violations`]) or an [`BotApiEmulator::expect_calls`]
/// count is not met.
impl Drop for BotApiEmulator {
    fn drop(&mut self) {
        self.server.abort();
        if !std::thread::panicking() && !self.shared.lock().lax {
            if !self.shared.lock().allow_violations {
                self.assert_no_violations();
            }
            self.verify();
        }
    }
}

impl BotApiEmulator {
    /// Starts the emulator on a free loopback port (tests: a failure to bind fails the test).
    pub async fn start() -> BotApiEmulator {
        match Self::try_start().await {
            Ok(emulator) => emulator,
            Err(e) => panic!("cannot start the Bot API emulator on 127.0.0.1: {e}"),
        }
    }

    /// Starts the emulator on a free loopback port, or says why it could not.
    pub async fn try_start() -> std::io::Result<BotApiEmulator> {
        let shared = Arc::new(Shared {
            state: Mutex::new(FakeState {
                next_update_id: 1,
                next_message_id: 1,
                commands: json!([]),
                ..Default::default()
            }),
            changed: Notify::new(),
            updates: Notify::new(),
        });
        let app = Router::new()
            .route("/{bot}/{method}", axum::routing::any(http::handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the Bot API emulator stopped");
            }
        });
        Ok(BotApiEmulator {
            shared,
            addr,
            server,
        })
    }

    /// For `teloxide::Bot::set_api_url`; teloxide appends `bot{token}/{Method}`.
    pub fn api_url(&self) -> url::Url {
        // An IP address and a port always make a valid http URL.
        url::Url::parse(&format!("http://{}/", self.addr)).expect("http://<socket address>/")
    }

    /// The loopback address the emulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bot token to give `Bot::new` (always [`TOKEN`]).
    pub fn token(&self) -> &'static str {
        TOKEN
    }

    /// The bot's `User` object, as `getMe` answers it.
    pub fn bot_user_json() -> Value {
        answers::bot_user()
    }

    // ---- recorded calls -------------------------------------------------------------------

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// Calls to a method (case-insensitive name, e.g. "sendMessage").
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method))
            .cloned()
            .collect()
    }

    /// Texts the user in `chat_id` got: `text` of successful sendMessage/editMessageText,
    /// `caption` of other sends/editMessageCaption and `title` of sendInvoice, in order.
    pub fn sent_texts_to(&self, chat_id: i64) -> Vec<String> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| !c.failed && c.chat_id() == Some(chat_id))
            .filter_map(|c| match c.method.as_str() {
                "sendMessage" | "editMessageText" => c.text().map(str::to_owned),
                "sendInvoice" => c.str_param("title").map(str::to_owned),
                m if m.starts_with("send") || m == "editMessageCaption" => {
                    c.str_param("caption").map(str::to_owned)
                }
                _ => None,
            })
            .collect()
    }

    /// Every schema violation recorded so far.
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    /// Panics listing the schema violations, if any call made one.
    #[track_caller]
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(
            v.is_empty(),
            "the bot made {} invalid Bot API call(s):\n  {}",
            v.len(),
            v.join("\n  ")
        );
    }

    /// The test expects exactly `n` successful calls to `method` by the time the fake is
    /// dropped (or [`BotApiEmulator::verify`] is called). Wait for them first.
    pub fn expect_calls(&self, method: &str, n: usize) {
        self.shared.lock().expectations.push((method.to_owned(), n));
    }

    /// Panics when an [`BotApiEmulator::expect_calls`] count is not met.
    #[track_caller]
    pub fn verify(&self) {
        let st = self.shared.lock();
        let unmet: Vec<String> = st
            .expectations
            .iter()
            .filter_map(|(m, n)| {
                let got = st
                    .calls
                    .iter()
                    .filter(|c| !c.failed && c.method.eq_ignore_ascii_case(m))
                    .count();
                (got != *n).then(|| format!("expected {n} successful {m} call(s), got {got}"))
            })
            .collect();
        drop(st);
        assert!(
            unmet.is_empty(),
            "BotApiEmulator expectations not met:\n  {}",
            unmet.join("\n  ")
        );
    }

    /// From now on, enforce Telegram's sending limits (see [`Limits`]): a send that breaks
    /// one gets 429 with `retry_after`. Off by default.
    pub fn enforce_limits(&self) {
        self.shared.lock().limits = Some(Limits::default());
    }

    /// Sends refused with 429 because they broke Telegram's limits (not injected faults).
    pub fn too_many_requests(&self) -> u64 {
        self.shared.lock().too_many
    }

    /// The test makes invalid calls on purpose: do not fail on drop because of violations.
    pub fn allow_violations(&self) {
        self.shared.lock().allow_violations = true;
    }

    /// Forget recorded calls and violations (pending updates, faults and messages stay).
    pub fn clear_calls(&self) {
        let mut st = self.shared.lock();
        st.calls.clear();
        st.violations.clear();
    }

    /// When `true`, calls with missing/mistyped fields are still answered as successful
    /// (violations are recorded either way). Default `false`: HTTP 400 like Telegram.
    pub fn set_lenient(&self, lenient: bool) {
        self.shared.lock().lenient = lenient;
    }

    /// The last `setWebhook` parameters, `None` after `deleteWebhook`.
    pub fn webhook(&self) -> Option<Value> {
        self.shared.lock().webhook.clone()
    }

    /// The commands of the last `setMyCommands`.
    pub fn commands(&self) -> Value {
        self.shared.lock().commands.clone()
    }

    /// The current state of a message the bot sent (after edits).
    pub fn message(&self, chat_id: i64, message_id: i64) -> Option<Value> {
        self.shared
            .lock()
            .messages
            .get(&(chat_id, message_id))
            .cloned()
    }

    // ---- waiting --------------------------------------------------------------------------

    /// Waits for a recorded call (already recorded or future) matching `pred`.
    pub async fn wait_for_call(
        &self,
        pred: impl Fn(&Call) -> bool,
        timeout: Duration,
    ) -> Option<Call> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut notified = pin!(self.shared.changed.notified());
            notified.as_mut().enable();
            if let Some(c) = self.shared.lock().calls.iter().find(|c| pred(c)) {
                return Some(c.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Waits until `pred` holds over all recorded calls. Returns `false` on timeout.
    pub async fn wait_until(&self, pred: impl Fn(&[Call]) -> bool, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut notified = pin!(self.shared.changed.notified());
            notified.as_mut().enable();
            if pred(&self.shared.lock().calls) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Waits until at least `n` successful calls to `method` were recorded; returns them
    /// (possibly fewer on timeout).
    pub async fn wait_for_calls_to(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let m = method.to_owned();
        self.wait_until(
            |calls| {
                calls
                    .iter()
                    .filter(|c| !c.failed && c.method.eq_ignore_ascii_case(&m))
                    .count()
                    >= n
            },
            timeout,
        )
        .await;
        self.calls_to(method)
            .into_iter()
            .filter(|c| !c.failed)
            .collect()
    }

    /// Waits until every injected update was confirmed by a `getUpdates` offset.
    pub async fn wait_updates_drained(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut notified = pin!(self.shared.changed.notified());
            notified.as_mut().enable();
            if self.shared.lock().pending.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Injected updates the bot has not fetched yet.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().pending.len()
    }

    /// Whether `refundStarPayment` refunded this Stars charge.
    pub fn star_refunded(&self, charge_id: &str) -> bool {
        stars::is_refunded(&self.shared.lock(), charge_id)
    }

    // ---- injection ------------------------------------------------------------------------

    /// Queues an update for `getUpdates`. Assigns `update_id` when absent; returns it.
    pub fn inject(&self, update: Value) -> i64 {
        let id = queue_update(&mut self.shared.lock(), update);
        self.shared.updates.notify_waiters();
        id
    }

    /// Queues exactly this update with this `update_id`, delivered even if that id was already
    /// confirmed (duplicate delivery, as after a Telegram-side retry).
    pub fn inject_raw_with_id(&self, id: i64, mut update: Value) {
        update["update_id"] = json!(id);
        let mut st = self.shared.lock();
        st.next_update_id = st.next_update_id.max(id + 1);
        remember_users(&mut st, &update);
        st.pending.push(Pending {
            id,
            update,
            forced: true,
            delivered: false,
        });
        drop(st);
        self.shared.updates.notify_waiters();
    }

    /// POSTs an update to the bot's webhook like Telegram does (with
    /// `X-Telegram-Bot-Api-Secret-Token` when `secret` is given). Assigns `update_id` when
    /// absent.
    pub async fn post_to_webhook(
        &self,
        url: &str,
        secret: Option<&str>,
        mut update: Value,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        {
            let mut st = self.shared.lock();
            assign_update_id(&mut st, &mut update);
            remember_users(&mut st, &update);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let mut req = client.post(url).json(&update);
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        Ok(req.send().await?.status())
    }

    // ---- faults ---------------------------------------------------------------------------

    /// The next `n` calls of `method` (any chat) get `fault`.
    pub fn fail_next(&self, method: &str, n: u32, fault: Fault) {
        self.add_fault(method, None, n, fault);
    }

    /// The next `n` calls of `method` with this `chat_id` get `fault`.
    pub fn fail_next_for_chat(&self, method: &str, chat_id: i64, n: u32, fault: Fault) {
        self.add_fault(method, Some(chat_id), n, fault);
    }

    /// Drops every fault not yet applied.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    fn add_fault(&self, method: &str, chat_id: Option<i64>, n: u32, fault: Fault) {
        let method_lc = method.to_ascii_lowercase();
        assert!(
            schema().method(&method_lc).is_some(),
            "fail_next: `{method}` is not a Bot API method"
        );
        if n > 0 {
            self.shared.lock().faults.push(FaultRule {
                method_lc,
                chat_id,
                remaining: n,
                fault,
            });
        }
    }
}

//! Use cases: each one reads and changes state in one transaction and queues the messages
//! and emails it causes in the outbox of that same transaction. No network calls here; the
//! adapters (telegram, web, workers) call these and deliver what they return.

pub mod access;
pub(crate) mod close;
pub(crate) mod forget;
pub(crate) mod guard;
pub mod new_group;
pub mod organiser;
pub mod purchase;
pub(crate) mod queries;
pub mod refund;
pub mod regroup;
pub(crate) mod reply;
pub(crate) mod seats;
pub mod settle;
pub(crate) mod views;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{Amount, GroupKey, Money, UserId};
use crate::keyboard::Keyboard;
use crate::mail::Rendered;
use crate::replies::UserError;
use crate::store::outbox::{self, Channel, NewMessage, Priority};
use crate::store::{Conn, Store};
use std::sync::Arc;
use tokio::sync::Notify;

/// A Telegram user as an update names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: UserId,
    pub username: Option<String>,
    pub first_name: String,
}

/// What every use case needs. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Clock,
    /// The bot's @username, for `t.me` deep links.
    pub bot_username: Arc<str>,
    /// Wakes the outbox worker after a commit that queued something.
    pub outbox_wake: Arc<Notify>,
    /// Wakes the settlement sweep (a group filled, or the clock moved).
    pub sweep_wake: Arc<Notify>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Unknown-key attempts per client (web address or Telegram user), to slow guessing.
    pub key_guard: Arc<guard::KeyGuard>,
    /// This process's id among the instances sharing the database (claims carry it).
    pub instance: Arc<str>,
    /// Wakes the update processor after an update was stored in the inbox.
    pub inbox_wake: Arc<Notify>,
    /// Wakes the refund worker after a commit.
    pub refund_wake: Arc<Notify>,
    /// The server secret's keyed hashes (tokens at rest, unsubscribe links).
    pub secrets: Arc<crate::secrets::Keyed>,
}

/// Why a request failed: the user's mistake, the database, or anything else.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    User(#[from] UserError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Other(String),
}

impl From<crate::store::ledger::LedgerError> for AppError {
    fn from(e: crate::store::ledger::LedgerError) -> Self {
        match e {
            crate::store::ledger::LedgerError::Db(d) => AppError::Db(d),
            other => AppError::Other(other.to_string()),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Other(format!("rendering a template: {e}"))
    }
}

impl From<crate::domain::group_key::KeyError> for AppError {
    fn from(e: crate::domain::group_key::KeyError) -> Self {
        AppError::Other(e.to_string())
    }
}

impl AppError {
    /// What the person who caused it is told.
    pub fn user_error(&self) -> UserError {
        match self {
            AppError::User(u) => u.clone(),
            _ => UserError::Internal,
        }
    }
}

/// A result whose error is an [`AppError`].
pub type AppResult<T> = Result<T, AppError>;

impl Ctx {
    /// The shared context, with a key guard and keyed hashes set up from `config`.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        clock: Clock,
        bot_username: impl Into<Arc<str>>,
    ) -> Self {
        let key_guard = Arc::new(guard::KeyGuard::new(config.key_attempts_per_minute));
        let secrets = Arc::new(crate::secrets::Keyed::from_config(&config));
        Self {
            store,
            config,
            clock,
            bot_username: bot_username.into(),
            outbox_wake: Arc::new(Notify::new()),
            sweep_wake: Arc::new(Notify::new()),
            metrics: Arc::default(),
            key_guard,
            inbox_wake: Arc::new(Notify::new()),
            refund_wake: Arc::new(Notify::new()),
            secrets,
            instance: crate::domain::group_key::random_token(12)
                .unwrap_or_else(|_| format!("pid{}", std::process::id()))
                .into(),
        }
    }

    /// The context clock's time, in Unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// An amount of minor units in the catalog currency, as text.
    pub fn money(&self, minor: i64) -> String {
        self.config.currency.format(minor)
    }

    /// An amount in the catalog currency, for a message to render.
    pub fn amount(&self, money: Money) -> Amount {
        Amount {
            money,
            currency: self.config.currency,
        }
    }

    /// A `t.me` link that opens the bot with `/start <payload>`.
    pub fn deep_link(&self, payload: &str) -> String {
        format!("https://t.me/{}?start={payload}", self.bot_username)
    }

    /// The group's web page.
    pub fn page_url(&self, key: &GroupKey) -> String {
        format!("{}/g/{key}", self.config.public_url)
    }

    /// A purchase's receipt page.
    pub fn receipt_url(&self, key: &GroupKey, token: &str) -> String {
        format!("{}/g/{key}/receipt/{token}", self.config.public_url)
    }

    /// The "don't email me again" page of an address (its POST is RFC 8058's one-click
    /// unsubscribe); the token is the address's keyed hash, so the link names no address.
    pub fn unsubscribe_url(&self, email: &str) -> String {
        let token = self
            .secrets
            .hash(crate::secrets::Purpose::Unsubscribe, &email.to_lowercase());
        format!("{}/unsubscribe/{token}", self.config.public_url)
    }

    /// Signals the workers after a commit.
    pub fn committed(&self) {
        self.outbox_wake.notify_one();
        self.refund_wake.notify_one();
    }
}

/// Queues a bot message (HTML) to a chat.
pub async fn queue_message(
    conn: &mut Conn,
    now: i64,
    dedupe_key: String,
    chat_id: i64,
    html: String,
    keyboard: Option<Keyboard>,
    fallback_email: Option<String>,
) -> Result<bool, sqlx::Error> {
    let m = NewMessage {
        dedupe_key,
        channel: Channel::Telegram {
            chat_id,
            keyboard: keyboard.map(|k| k.to_json()),
            fallback_email,
            invoice: None,
            document: None,
        },
        text: html,
        priority: Priority::Bulk,
    };
    outbox::enqueue(conn, &m, now).await
}

/// Queues an email with text and HTML parts.
pub async fn queue_email(
    conn: &mut Conn,
    now: i64,
    dedupe_key: String,
    to: &str,
    mail: Rendered,
) -> Result<bool, sqlx::Error> {
    outbox::enqueue(conn, &email_message(dedupe_key, to, mail), now).await
}

/// A bot message (HTML) to a chat, without buttons, to queue with others.
pub fn telegram_message(dedupe_key: String, chat_id: i64, html: String) -> NewMessage {
    NewMessage {
        dedupe_key,
        channel: Channel::Telegram {
            chat_id,
            keyboard: None,
            fallback_email: None,
            invoice: None,
            document: None,
        },
        text: html,
        priority: Priority::Bulk,
    }
}

/// An email with text and HTML parts, to queue with others.
pub fn email_message(dedupe_key: String, to: &str, mail: Rendered) -> NewMessage {
    NewMessage {
        dedupe_key,
        channel: Channel::Email {
            to: to.to_string(),
            subject: mail.subject,
            html: Some(mail.html),
        },
        text: mail.text,
        priority: Priority::Bulk,
    }
}

//! The outbox: messages and emails owed to people, enqueued in the same transaction as the
//! change that causes them, delivered (at least once) by `workers::outbox`.

use super::{Backend, Conn, instances};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Who waits for a row: a person who wrote to the bot and waits for the answer, or nobody
/// in particular (a notice). The worker serves interactive rows first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Interactive,
    Bulk,
}

impl Priority {
    fn as_i64(self) -> i64 {
        match self {
            Priority::Interactive => 0,
            Priority::Bulk => 1,
        }
    }

    fn from_i64(n: i64) -> Self {
        if n == 0 {
            Priority::Interactive
        } else {
            Priority::Bulk
        }
    }
}

/// Where an outbox message goes: a Telegram chat or an email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// A bot message to a chat, HTML parse mode, optional inline keyboard (JSON); or, when
    /// `invoice` is set (JSON of `app::purchase::InvoiceSpec`), an invoice; when `document`
    /// is set (JSON of [`DocumentSpec`]), the text is sent as a file with `sendDocument`.
    Telegram {
        chat_id: i64,
        keyboard: Option<String>,
        fallback_email: Option<String>,
        invoice: Option<String>,
        document: Option<String>,
    },
    Email {
        to: String,
        subject: String,
        html: Option<String>,
    },
}

/// A file the outbox sends (`sendDocument`): the row's text is its content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DocumentSpec {
    pub file_name: String,
    /// HTML caption.
    pub caption: String,
}

/// A message to queue in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// What this message is, unique: enqueuing the same key twice queues it once.
    pub dedupe_key: String,
    pub channel: Channel,
    pub text: String,
    pub priority: Priority,
}

/// A queued message as stored, with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub dedupe_key: String,
    pub channel: Channel,
    pub text: String,
    pub attempts: i64,
    pub status: String,
    pub last_error: Option<String>,
    pub priority: Priority,
    pub created_at: i64,
}

/// Invitations, campaigns and reminders (by their dedupe key's first word): mail a person did
/// not cause by their own action. They carry `List-Unsubscribe` (RFC 8058 one-click) and are
/// never sent to an address on the suppression list. Receipts, notices and the operator's
/// mail are not bulk.
pub fn is_bulk(dedupe_key: &str) -> bool {
    ["invite:", "campaign:", "reminder:"]
        .iter()
        .any(|p| dedupe_key.starts_with(p))
}

const COLUMNS: &str = "id, dedupe_key, channel, chat_id, email_to, subject, body_text, body_html, keyboard, fallback_email, status, attempts, last_error, priority, invoice, document, created_at";

fn from_row(r: &AnyRow) -> Result<OutboxRow, sqlx::Error> {
    let channel: String = r.try_get("channel")?;
    let channel = match channel.as_str() {
        "telegram" => Channel::Telegram {
            chat_id: r.try_get::<Option<i64>, _>("chat_id")?.unwrap_or_default(),
            keyboard: r.try_get("keyboard")?,
            fallback_email: r.try_get("fallback_email")?,
            invoice: r.try_get("invoice")?,
            document: r.try_get("document")?,
        },
        _ => Channel::Email {
            to: r
                .try_get::<Option<String>, _>("email_to")?
                .unwrap_or_default(),
            subject: r.try_get("subject")?,
            html: r.try_get("body_html")?,
        },
    };
    Ok(OutboxRow {
        id: r.try_get("id")?,
        dedupe_key: r.try_get("dedupe_key")?,
        channel,
        text: r.try_get("body_text")?,
        attempts: r.try_get("attempts")?,
        status: r.try_get("status")?,
        last_error: r.try_get("last_error")?,
        priority: Priority::from_i64(r.try_get("priority")?),
        created_at: r.try_get("created_at")?,
    })
}

/// Queues a message; false if one with the same dedupe key was already queued.
pub async fn enqueue(conn: &mut Conn, m: &NewMessage, now: i64) -> Result<bool, sqlx::Error> {
    Ok(enqueue_many(conn, std::slice::from_ref(m), now).await? == 1)
}

/// Rows per INSERT (13 parameters each); kept small for the reason in `ledger`.
const ROWS_PER_STATEMENT: usize = 20;

/// Queues several messages in as few statements as possible, in order (they are sent in the
/// order of their ids); a dedupe key already queued is skipped. Returns how many were queued.
pub async fn enqueue_many(
    conn: &mut Conn,
    messages: &[NewMessage],
    now: i64,
) -> Result<u64, sqlx::Error> {
    let mut queued = 0;
    for chunk in messages.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO outbox (dedupe_key, channel, chat_id, email_to, subject, body_text, body_html, keyboard,
                 fallback_email, priority, invoice, document, status, attempts, next_attempt_at, created_at)
             VALUES {} ON CONFLICT (dedupe_key) DO NOTHING",
            values_list(chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for m in chunk {
            let c = Columns::of(m);
            query = query
                .bind(m.dedupe_key.clone())
                .bind(c.channel)
                .bind(c.chat_id)
                .bind(c.to)
                .bind(c.subject)
                .bind(m.text.clone())
                .bind(c.html)
                .bind(c.keyboard)
                .bind(c.fallback)
                .bind(m.priority.as_i64())
                .bind(c.invoice)
                .bind(c.document)
                .bind(now);
        }
        queued += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(queued)
}

/// `($1, …, $12, 'pending', 0, $13, $13), (…)` for `rows` rows of 13 parameters.
fn values_list(rows: usize) -> String {
    let row = |i: usize| {
        let p: Vec<String> = (1..=13).map(|k| format!("${}", i * 13 + k)).collect();
        format!(
            "({}, 'pending', 0, {}, {})",
            p[..12].join(", "),
            p[12],
            p[12]
        )
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// The channel-specific columns of one outbox row.
struct Columns {
    channel: &'static str,
    chat_id: Option<i64>,
    keyboard: Option<String>,
    fallback: Option<String>,
    invoice: Option<String>,
    document: Option<String>,
    to: Option<String>,
    subject: String,
    html: Option<String>,
}

impl Columns {
    fn of(m: &NewMessage) -> Self {
        match &m.channel {
            Channel::Telegram {
                chat_id,
                keyboard,
                fallback_email,
                invoice,
                document,
            } => Self {
                channel: "telegram",
                chat_id: Some(*chat_id),
                keyboard: keyboard.clone(),
                fallback: fallback_email.clone(),
                invoice: invoice.clone(),
                document: document.clone(),
                to: None,
                subject: String::new(),
                html: None,
            },
            Channel::Email { to, subject, html } => Self {
                channel: "email",
                chat_id: None,
                keyboard: None,
                fallback: None,
                invoice: None,
                document: None,
                to: Some(to.clone()),
                subject: subject.clone(),
                html: html.clone(),
            },
        }
    }
}

/// When the next pending message is due (Unix seconds); `None` when none is pending.
pub async fn next_due_at(conn: &mut Conn) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query("SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)
}

/// Records a delivery and erases the message's words; the row stays as the record.
pub async fn mark_sent(
    conn: &mut Conn,
    id: i64,
    remote_id: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    // The words go once delivered: they carry receipt links, invitation codes and addresses
    // that the database need not keep; the row stays as the record of the delivery.
    sqlx::query("UPDATE outbox SET status = 'sent', sent_at = $2, remote_id = $3, attempts = attempts + 1, sending_since = NULL, claimed_by = NULL,
             body_text = '', body_html = NULL, keyboard = NULL, invoice = NULL, document = NULL WHERE id = $1")
        .bind(id)
        .bind(now)
        .bind(remote_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Puts a pending message off until `at` (Unix seconds), noting the error.
pub async fn retry_later(
    conn: &mut Conn,
    id: i64,
    at: i64,
    error: &str,
    count_attempt: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox SET next_attempt_at = $2, last_error = $3, attempts = attempts + $4, sending_since = NULL, claimed_by = NULL
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(at)
    .bind(error)
    .bind(i64::from(count_attempt))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Gives a message up for good, noting the error.
pub async fn mark_dead(conn: &mut Conn, id: i64, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox SET status = 'dead', last_error = $2, attempts = attempts + 1, sending_since = NULL, claimed_by = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Rows that did not go out: dead letters and pending rows that failed at least once.
pub async fn stuck(conn: &mut Conn, limit: i64) -> Result<Vec<OutboxRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox WHERE status = 'dead' OR (status = 'pending' AND attempts > 0) ORDER BY id LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Puts a dead or waiting row back in line for an immediate attempt; false if no such row
/// or it was already sent.
pub async fn retry_now(conn: &mut Conn, id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'pending', next_attempt_at = $2, attempts = 0, claimed_by = NULL, sending_since = NULL
         WHERE id = $1 AND status <> 'sent'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes that a send is about to start (cleared by every outcome).
pub async fn mark_sending(conn: &mut Conn, id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET sending_since = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Takes due rows for this instance (free ones, its own, and those of dead instances),
/// interactive ones first, then oldest first; run inside a write transaction. Rows a dead instance was sending are
/// noted in `last_error` and counted: they may arrive twice. Returns (rows, that count).
pub async fn claim(
    conn: &mut Conn,
    backend: Backend,
    me: &str,
    now: i64,
    limit: i64,
) -> Result<(Vec<OutboxRow>, u64), sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, claimed_by, sending_since FROM outbox
         WHERE status = 'pending' AND next_attempt_at <= $3 AND {claimable}
         ORDER BY priority, next_attempt_at, id LIMIT $4{skip}",
        claimable = instances::CLAIMABLE,
        skip = instances::skip_locked(backend),
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(me)
        .bind(instances::live_since(now))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut interrupted = 0;
    for r in &rows {
        let row = from_row(r)?;
        let holder: Option<String> = r.try_get("claimed_by")?;
        let sending: Option<i64> = r.try_get("sending_since")?;
        if holder.as_deref() != Some(me) || sending.is_some() {
            let crashed = sending.is_some();
            interrupted += u64::from(crashed);
            sqlx::query(
                "UPDATE outbox SET claimed_by = $2, sending_since = NULL,
                     last_error = CASE WHEN $3 = 1 THEN 'in flight at a crash: sent again, may have arrived twice' ELSE last_error END
                 WHERE id = $1",
            )
            .bind(row.id)
            .bind(me)
            .bind(i64::from(crashed))
            .execute(&mut *conn)
            .await?;
        }
        out.push(row);
    }
    Ok((out, interrupted))
}

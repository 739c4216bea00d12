//! Erasing a person (`/forgetme`, `groupbuy forget`): their name, username, email and
//! addresses, everywhere they are stored. Amounts stay (purchases, ledger, refunds), against
//! the numeric Telegram id only.

use super::Conn;
use sqlx::Row;

/// What an erasure touched, for the operator.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Erased {
    pub users: u64,
    pub members: u64,
    pub shipping_requests: u64,
    pub outbox_deleted: u64,
    pub outbox_scrubbed: u64,
    pub inbox_deleted: u64,
}

impl Erased {
    pub fn add(&mut self, o: &Erased) {
        self.users += o.users;
        self.members += o.members;
        self.shipping_requests += o.shipping_requests;
        self.outbox_deleted += o.outbox_deleted;
        self.outbox_scrubbed += o.outbox_scrubbed;
        self.inbox_deleted += o.inbox_deleted;
    }
}

/// The user ids that have `email` on record.
pub async fn users_with_email(conn: &mut Conn, email: &str) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

/// Erases Telegram user `id`: returns what was erased and the email they had on record.
pub async fn user(
    conn: &mut Conn,
    id: i64,
    now: i64,
) -> Result<(Erased, Option<String>), sqlx::Error> {
    let (username, email) = on_record(conn, id).await?;
    let mut e = Erased {
        users: blank_user(conn, id, now).await?,
        ..Default::default()
    };
    e.members = forget_memberships(conn, id, username.as_deref()).await?;
    e.shipping_requests = blank_shipping(conn, id).await?;
    // An empty username names no one in messages or updates.
    let named = username.as_deref().filter(|u| !u.is_empty());
    (e.outbox_deleted, e.outbox_scrubbed) = scrub_outbox(conn, id, named).await?;
    e.inbox_deleted = delete_updates_of(conn, id, named).await?;
    Ok((e, email))
}

/// The username and email on record for user `id`, if any.
async fn on_record(
    conn: &mut Conn,
    id: i64,
) -> Result<(Option<String>, Option<String>), sqlx::Error> {
    let known = sqlx::query("SELECT username, email FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match &known {
        Some(r) => Ok((r.try_get(0)?, r.try_get(1)?)),
        None => Ok((None, None)),
    }
}

/// Blanks the user's own row: name, username and email.
async fn blank_user(conn: &mut Conn, id: i64, now: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE users SET username = NULL, first_name = '', email = NULL, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Replaces every member entry naming them (by id, numeric id or username).
async fn forget_memberships(
    conn: &mut Conn,
    id: i64,
    username: Option<&str>,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE members SET value = 'forgotten-' || CAST(id AS TEXT), invite_code = NULL
         WHERE user_id = $1 OR (kind = 'user_id' AND value = $2) OR (kind = 'username' AND value = $3)",
    )
    .bind(id)
    .bind(id.to_string())
    .bind(username)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Blanks the recipient and address of their purchases' shipping requests.
async fn blank_shipping(conn: &mut Conn, id: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE shipping_requests SET recipient = '', address = ''
         WHERE purchase_id IN (SELECT id FROM purchases WHERE buyer_id = $1)",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Messages to them not yet sent are dropped; what was sent to them, or to the warehouse
/// about their purchases, keeps its row (the delivery record) without the words.
/// Returns (deleted, scrubbed).
async fn scrub_outbox(
    conn: &mut Conn,
    id: i64,
    username: Option<&str>,
) -> Result<(u64, u64), sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM outbox WHERE status = 'pending' AND chat_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let mut scrubbed = sqlx::query(
        "UPDATE outbox SET body_text = '', body_html = NULL, subject = '', keyboard = NULL, fallback_email = NULL
         WHERE status <> 'pending' AND (chat_id = $1
             OR dedupe_key IN (SELECT 'ship:' || CAST(id AS TEXT) FROM purchases WHERE buyer_id = $1))",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if let Some(u) = username {
        scrubbed += scrub_mentions(conn, &format!("@{u}")).await?;
    }
    Ok((deleted, scrubbed))
}

/// Deletes stored updates from them, and others' commands that named them.
async fn delete_updates_of(
    conn: &mut Conn,
    id: i64,
    username: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let mut deleted = delete_updates_mentioning(conn, &format!("\"id\":{id},")).await?
        + delete_updates_mentioning(conn, &format!("\"id\":{id}}}")).await?;
    if let Some(u) = username {
        deleted += delete_updates_mentioning(conn, &format!("\"username\":\"{u}\"")).await?;
        // Others' commands that named them (`/newgroup camera 3 @alice`).
        deleted += delete_updates_mentioning(conn, &format!("@{u}")).await?;
    }
    Ok(deleted)
}

/// Erases an email address wherever it is stored (members, outbox, inbox).
pub async fn email(conn: &mut Conn, email: &str) -> Result<Erased, sqlx::Error> {
    let mut e = Erased {
        members: sqlx::query(
            "UPDATE members SET value = 'forgotten-' || CAST(id AS TEXT), invite_code = NULL
             WHERE kind = 'email' AND value = $1",
        )
        .bind(email)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
        ..Default::default()
    };
    e.outbox_deleted = sqlx::query(
        "DELETE FROM outbox WHERE status = 'pending' AND (email_to = $1 OR fallback_email = $1)",
    )
    .bind(email)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    e.outbox_scrubbed = sqlx::query(
        "UPDATE outbox SET body_text = '', body_html = NULL, subject = '', keyboard = NULL, fallback_email = NULL,
             email_to = CASE WHEN email_to = $1 THEN NULL ELSE email_to END
         WHERE email_to = $1 OR fallback_email = $1",
    )
    .bind(email)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    e.outbox_scrubbed += scrub_mentions(conn, email).await?;
    e.inbox_deleted = delete_updates_mentioning(conn, email).await?;
    Ok(e)
}

/// `needle` as a LIKE pattern matching it literally anywhere (lower-cased).
fn contains_pattern(needle: &str) -> String {
    let mut p = String::from("%");
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Sent messages to others that name the person (an organiser's list of members, say)
/// lose their words.
async fn scrub_mentions(conn: &mut Conn, needle: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE outbox SET body_text = '', body_html = NULL, subject = '', keyboard = NULL
         WHERE status <> 'pending' AND (LOWER(body_text) LIKE $1 ESCAPE '\\' OR LOWER(subject) LIKE $1 ESCAPE '\\')",
    )
    .bind(contains_pattern(needle))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Handled raw updates that carry `needle` are deleted (pending ones are handled first).
async fn delete_updates_mentioning(conn: &mut Conn, needle: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM inbox WHERE handled_at IS NOT NULL AND LOWER(body) LIKE $1 ESCAPE '\\'",
    )
    .bind(contains_pattern(needle))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Empties the raw body of one update (the `/forgetme` being handled, which carries the
/// name and username it erases).
pub async fn blank_update(conn: &mut Conn, update_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE inbox SET body = '' WHERE update_id = $1")
        .bind(update_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Raw bodies of updates handled before `before` are emptied: the id stays (a week, to
/// recognise redeliveries), the names, addresses and payloads in the body do not.
pub async fn blank_handled_updates(conn: &mut Conn, before: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE inbox SET body = '' WHERE handled_at IS NOT NULL AND handled_at < $1 AND body <> ''",
    )
    .bind(before)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

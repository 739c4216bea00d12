//! People who have talked to the bot.

use super::Conn;
use crate::domain::UserId;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A Telegram user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: UserId,
    pub username: Option<String>,
    pub first_name: String,
    pub started: bool,
    pub unreachable: bool,
    pub email: Option<String>,
}

fn from_row(r: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: UserId::new(r.try_get("id")?),
        username: r.try_get("username")?,
        first_name: r.try_get("first_name")?,
        started: r.try_get::<i64, _>("started")? != 0,
        unreachable: r.try_get::<i64, _>("unreachable")? != 0,
        email: r.try_get("email")?,
    })
}

const COLUMNS: &str = "id, username, first_name, started, unreachable, email";

/// Records that a user wrote to the bot; `private` marks that they can now be messaged.
/// Returns the row as it was before (None for a newcomer).
pub async fn seen(
    conn: &mut Conn,
    id: UserId,
    username: Option<&str>,
    first_name: &str,
    private: bool,
    now: i64,
) -> Result<Option<UserRow>, sqlx::Error> {
    let before = get(conn, id).await?;
    let username = username.map(str::to_ascii_lowercase);
    sqlx::query(
        "INSERT INTO users (id, username, first_name, started, unreachable, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 0, $5, $5)
         ON CONFLICT (id) DO UPDATE SET username = excluded.username, first_name = excluded.first_name,
             started = CASE WHEN excluded.started = 1 THEN 1 ELSE users.started END,
             unreachable = CASE WHEN excluded.started = 1 THEN 0 ELSE users.unreachable END,
             updated_at = excluded.updated_at",
    )
    .bind(id.get())
    .bind(username)
    .bind(first_name)
    .bind(i64::from(private))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(before)
}

/// The user with this Telegram id.
pub async fn get(conn: &mut Conn, id: UserId) -> Result<Option<UserRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1"
    )))
    .bind(id.get())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Several users at once, by id (those unknown are absent).
pub async fn get_many(
    conn: &mut Conn,
    ids: &[UserId],
) -> Result<std::collections::HashMap<UserId, UserRow>, sqlx::Error> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(super::IN_LIST) {
        let list: Vec<String> = (1..=chunk.len()).map(|k| format!("${k}")).collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE id IN ({})",
            list.join(", ")
        )));
        for id in chunk {
            query = query.bind(id.get());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let user = from_row(&row)?;
            out.insert(user.id, user);
        }
    }
    Ok(out)
}

/// The most recently updated user with this username.
pub async fn by_username(conn: &mut Conn, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE username = $1 ORDER BY updated_at DESC LIMIT 1"
    )))
    .bind(username)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Stores the email address the user gave.
pub async fn set_email(conn: &mut Conn, id: UserId, email: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET email = $2 WHERE id = $1")
        .bind(id.get())
        .bind(email)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Notes that the bot can no longer message this user.
pub async fn mark_unreachable(conn: &mut Conn, id: UserId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET unreachable = 1 WHERE id = $1")
        .bind(id.get())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

//! The people a group was opened for: invited by Telegram id, username or email, each with
//! an invite code, bound to a Telegram user once they turn up.

use super::{Conn, decode_err};
use crate::domain::{GroupId, MemberRef, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One invited member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub id: i64,
    pub group_id: GroupId,
    pub member: MemberRef,
    pub invite_code: Option<String>,
    pub user_id: Option<UserId>,
    pub prompted_at: Option<i64>,
}

const MEMBER_COLUMNS: &str = "id, group_id, kind, value, invite_code, user_id, prompted_at";

fn member_from_row(r: &AnyRow) -> Result<MemberRow, sqlx::Error> {
    let id: i64 = r.try_get("id")?;
    let kind: String = r.try_get("kind")?;
    let value: String = r.try_get("value")?;
    let user_id: Option<i64> = r.try_get("user_id")?;
    Ok(MemberRow {
        id,
        group_id: GroupId::new(r.try_get("group_id")?),
        member: MemberRef::from_row(&kind, &value)
            .ok_or_else(|| decode_err("member", id, "reference", &format!("{kind}:{value}")))?,
        invite_code: r.try_get("invite_code")?,
        user_id: user_id.map(UserId::new),
        prompted_at: r.try_get("prompted_at")?,
    })
}

/// Invites one member; returns the member row's id.
pub async fn insert(
    conn: &mut Conn,
    group_id: GroupId,
    member: &MemberRef,
    invite_code: Option<&str>,
    user_id: Option<UserId>,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO members (group_id, kind, value, invite_code, user_id) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(group_id.get())
    .bind(member.kind())
    .bind(member.value())
    .bind(invite_code)
    .bind(user_id.map(UserId::get))
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)
}

/// A group's members, in the order they were named.
pub async fn of(conn: &mut Conn, group_id: GroupId) -> Result<Vec<MemberRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE group_id = $1 ORDER BY id"
    )))
    .bind(group_id.get())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(member_from_row).collect()
}

/// Members of open, unexpired groups who are this Telegram user (by id or username) and have
/// not been prompted yet: the claim-11 "upon access" prompts.
pub async fn unprompted_for(
    conn: &mut Conn,
    user_id: UserId,
    username: Option<&str>,
    now: i64,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM members m WHERE m.prompted_at IS NULL
            AND (m.user_id = $3 OR (m.user_id IS NULL AND ((m.kind = 'user_id' AND m.value = $1) OR (m.kind = 'username' AND m.value = $2))))
            AND m.group_id IN (SELECT id FROM group_buys WHERE status = 'open' AND expires_at > $4)
         ORDER BY m.id"
    )))
    .bind(user_id.to_string())
    .bind(username.map(str::to_ascii_lowercase).unwrap_or_default())
    .bind(user_id.get())
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(member_from_row).collect()
}

/// The member an invite code was issued to.
pub async fn by_invite(conn: &mut Conn, code: &str) -> Result<Option<MemberRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE invite_code = $1"
    )))
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(member_from_row).transpose()
}

/// The member row of a group that is this Telegram user, if they were invited.
pub async fn for_user(
    conn: &mut Conn,
    group_id: GroupId,
    user_id: UserId,
    username: Option<&str>,
) -> Result<Option<MemberRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE group_id = $1
            AND (user_id = $2 OR (user_id IS NULL AND ((kind = 'user_id' AND value = $3) OR (kind = 'username' AND value = $4))))
         ORDER BY id LIMIT 1"
    )))
    .bind(group_id.get())
    .bind(user_id.get())
    .bind(user_id.to_string())
    .bind(username.map(str::to_ascii_lowercase).unwrap_or_default())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(member_from_row).transpose()
}

/// Binds a member row to the Telegram user it turned out to be.
pub async fn bind(conn: &mut Conn, member_id: i64, user_id: UserId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE members SET user_id = $2 WHERE id = $1")
        .bind(member_id)
        .bind(user_id.get())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records that a member has been prompted (once: a second call changes nothing).
pub async fn mark_prompted(conn: &mut Conn, member_id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE members SET prompted_at = $2 WHERE id = $1 AND prompted_at IS NULL")
        .bind(member_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The member row of a group the organiser named as `member` (a numeric id also finds the
/// member it was bound to when they were invited by username).
pub async fn find(
    conn: &mut Conn,
    group_id: GroupId,
    member: &MemberRef,
) -> Result<Option<MemberRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE group_id = $1
            AND ((kind = $2 AND value = $3) OR ($2 = 'user_id' AND user_id = $4))
         ORDER BY id LIMIT 1"
    )))
    .bind(group_id.get())
    .bind(member.kind())
    .bind(member.value())
    .bind(match member {
        MemberRef::UserId(id) => id.get(),
        _ => 0,
    })
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(member_from_row).transpose()
}

/// Takes a member off a group (`/remove`); their invite code stops working with the row.
pub async fn delete(conn: &mut Conn, member_id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM members WHERE id = $1")
        .bind(member_id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

//! The one ledger of money and points: double entry, each transaction sums to zero.
//!
//! Accounts and signs (debits positive):
//! - `cash`: money received from Telegram payments (+ on purchase).
//! - `sales`: revenue at the normal price (− on purchase).
//! - `discounts`: points granted by settlements (+ when granted).
//! - `points:<user>`: what we owe a user in points; their balance is minus its sum
//!   (− when credited, + when redeemed).
//! - `refunds_due`: money we owe back (− when a refund is decided, + when it is paid out,
//!   against `cash`).
//!
//! Every entry carries its currency: a purchase in Telegram Stars is booked in `XTR`, points
//! and everything else in the catalog currency. A transaction is in one currency and sums to
//! zero in it.

use super::Conn;
use crate::domain::{GroupId, Points, PurchaseId, UserId};
use sqlx::Row;

/// One line of a ledger transaction: an account and a signed amount (debits positive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub account: String,
    pub amount: i64,
    pub user_id: Option<UserId>,
}

impl Entry {
    /// An amount in the `cash` account, in minor currency units.
    pub fn cash(amount: i64) -> Self {
        Self {
            account: "cash".into(),
            amount,
            user_id: None,
        }
    }
    /// An amount in the `sales` account, in minor currency units.
    pub fn sales(amount: i64) -> Self {
        Self {
            account: "sales".into(),
            amount,
            user_id: None,
        }
    }
    /// An amount in the `discounts` account, in minor currency units.
    pub fn discounts(amount: i64) -> Self {
        Self {
            account: "discounts".into(),
            amount,
            user_id: None,
        }
    }
    /// An amount in the `refunds_due` account, in minor currency units.
    pub fn refunds_due(amount: i64) -> Self {
        Self {
            account: "refunds_due".into(),
            amount,
            user_id: None,
        }
    }
    /// What we owe `user_id` in points (their balance is minus the account's sum).
    pub fn points(user_id: UserId, amount: i64) -> Self {
        Self {
            account: format!("points:{user_id}"),
            amount,
            user_id: Some(user_id),
        }
    }
}

/// Why a ledger transaction was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger transaction {0} does not balance")]
    Unbalanced(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What a ledger transaction is about: its id, currency, group, purchase, memo and time.
pub struct Refs<'a> {
    pub txn: &'a str,
    /// The currency of every entry of the transaction.
    pub currency: &'a str,
    pub group_id: Option<GroupId>,
    pub purchase_id: Option<PurchaseId>,
    pub memo: &'a str,
    pub now: i64,
}

/// Posts a balanced transaction. Posting the same `txn` again is a no-op (returns false).
pub async fn post(
    conn: &mut Conn,
    refs: &Refs<'_>,
    entries: &[Entry],
) -> Result<bool, LedgerError> {
    Ok(post_many(conn, &[(refs, entries)]).await? > 0)
}

/// Rows per INSERT (9 parameters each). Not more: sqlx-sqlite looks up every parameter's name,
/// and SQLite finds a name by a linear scan, so a statement's binding cost grows with the
/// square of its parameters (500 rows spent 68% of a sweep there; see BENCHMARKS.md).
const ROWS_PER_STATEMENT: usize = 24;

/// Posts several balanced transactions in as few statements as their rows allow (a statement
/// costs a round trip). Each is checked to balance before anything is written; a `txn`
/// already posted is skipped. Returns the rows written.
pub async fn post_many(
    conn: &mut Conn,
    txns: &[(&Refs<'_>, &[Entry])],
) -> Result<u64, LedgerError> {
    for (refs, entries) in txns {
        if entries.iter().map(|e| e.amount).sum::<i64>() != 0 {
            return Err(LedgerError::Unbalanced(refs.txn.to_string()));
        }
    }
    let rows: Vec<(&Refs<'_>, &Entry)> = txns
        .iter()
        .flat_map(|(refs, entries)| entries.iter().map(move |e| (*refs, e)))
        .filter(|(_, e)| e.amount != 0)
        .collect();
    let mut inserted = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p: Vec<String> = (1..=9).map(|k| format!("${}", i * 9 + k)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO ledger (txn, account, amount, user_id, group_id, purchase_id, memo, created_at, currency)
             VALUES {} ON CONFLICT (txn, account) DO NOTHING",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (refs, e) in chunk {
            query = query
                .bind(refs.txn)
                .bind(&e.account)
                .bind(e.amount)
                .bind(e.user_id.map(UserId::get))
                .bind(refs.group_id.map(GroupId::get))
                .bind(refs.purchase_id.map(PurchaseId::get))
                .bind(refs.memo)
                .bind(refs.now)
                .bind(refs.currency);
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// The points balances of several users at once (0 for a user with no entries).
pub async fn balances(
    conn: &mut Conn,
    user_ids: &[UserId],
) -> Result<std::collections::HashMap<UserId, Points>, sqlx::Error> {
    let mut out: std::collections::HashMap<UserId, Points> =
        user_ids.iter().map(|id| (*id, Points::new(0))).collect();
    for chunk in user_ids.chunks(super::IN_LIST) {
        let list: Vec<String> = (1..=chunk.len()).map(|k| format!("${k}")).collect();
        let sql = format!(
            "SELECT user_id, CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS owed FROM ledger
             WHERE user_id IN ({}) AND account = 'points:' || CAST(user_id AS TEXT)
             GROUP BY user_id",
            list.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.get());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let id: i64 = row.try_get("user_id")?;
            let owed: i64 = row.try_get("owed")?;
            out.insert(UserId::new(id), Points::new(-owed));
        }
    }
    Ok(out)
}

/// A user's points balance.
pub async fn balance(conn: &mut Conn, user_id: UserId) -> Result<Points, sqlx::Error> {
    // `user_id` (indexed, and set on every points entry) keeps this off a ledger scan.
    let sum: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger WHERE user_id = $2 AND account = $1",
    )
    .bind(format!("points:{user_id}"))
    .bind(user_id.get())
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    Ok(Points::new(-sum))
}

/// One change to a user's points: the amount, its memo and when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsLine {
    pub change: i64,
    pub memo: String,
    pub at: i64,
}

/// The latest changes to a user's points, newest first.
pub async fn history(
    conn: &mut Conn,
    user_id: UserId,
    limit: i64,
) -> Result<Vec<PointsLine>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT amount, memo, created_at FROM ledger WHERE user_id = $3 AND account = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(format!("points:{user_id}"))
    .bind(limit)
    .bind(user_id.get())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PointsLine {
                change: -r.try_get::<i64, _>(0)?,
                memo: r.try_get(1)?,
                at: r.try_get(2)?,
            })
        })
        .collect()
}

/// Sum of every entry (always 0) and the number of transactions that do not sum to 0 in
/// each of their currencies (or mix currencies).
pub async fn audit(conn: &mut Conn) -> Result<(i64, i64), sqlx::Error> {
    let total: i64 = sqlx::query("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let unbalanced: i64 = sqlx::query(
        "SELECT COUNT(*) FROM (SELECT txn FROM ledger GROUP BY txn
            HAVING SUM(amount) <> 0 OR COUNT(DISTINCT currency) <> 1) AS t",
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    Ok((total, unbalanced))
}

/// The sum of every entry of an account, in minor currency units.
pub async fn account_sum(conn: &mut Conn, account: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger WHERE account = $1")
        .bind(account)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)
}

/// The sum of an account in one currency.
pub async fn account_sum_in(
    conn: &mut Conn,
    account: &str,
    currency: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger WHERE account = $1 AND currency = $2",
    )
    .bind(account)
    .bind(currency)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)
}

/// Entries written before entries carried a currency are in the catalog currency.
pub async fn backfill_currency(conn: &mut Conn, catalog: &str) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE ledger SET currency = $1 WHERE currency = ''")
            .bind(catalog)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

/// Points the settlement of `group_id` credited for one purchase (0 if none).
pub async fn settled_points(
    conn: &mut Conn,
    group_id: GroupId,
    purchase_id: PurchaseId,
    user_id: UserId,
) -> Result<i64, sqlx::Error> {
    let sum: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger WHERE txn = $1 AND account = $2",
    )
    .bind(format!("settle:{group_id}:{purchase_id}"))
    .bind(format!("points:{user_id}"))
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    Ok(-sum)
}

/// Points of a user held for invoices other than `payload` that may still be paid.
pub async fn held_for_others(
    conn: &mut Conn,
    user_id: UserId,
    payload: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM point_holds
         WHERE user_id = $1 AND payload <> $2 AND expires_at > $3",
    )
    .bind(user_id.get())
    .bind(payload)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)
}

/// Holds `amount` points of a user for the invoice `payload` until `expires_at`.
pub async fn hold(
    conn: &mut Conn,
    payload: &str,
    user_id: UserId,
    amount: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO point_holds (payload, user_id, amount, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (payload) DO UPDATE SET amount = excluded.amount, expires_at = excluded.expires_at",
    )
    .bind(payload)
    .bind(user_id.get())
    .bind(amount)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The payment of `payload` consumed its hold (if any).
pub async fn release_hold(conn: &mut Conn, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM point_holds WHERE payload = $1")
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forgets holds that lapsed.
pub async fn prune_holds(conn: &mut Conn, now: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM point_holds WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

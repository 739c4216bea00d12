//! Which database the suite runs on: `GROUPBUY_TEST_DB=postgres` runs every integration test
//! on PostgreSQL (a fresh database each, on the server at `GROUPBUY_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, so tests run in parallel without seeing each
//! other); otherwise on SQLite (a fresh file each). `.ci/run` runs both.

use sqlx::Connection;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    /// The suite's database, from `GROUPBUY_TEST_DB`.
    pub fn from_env() -> Self {
        match std::env::var("GROUPBUY_TEST_DB").as_deref() {
            Ok("postgres") => Db::Postgres,
            _ => Db::Sqlite,
        }
    }
}

pub fn pg_base_url() -> String {
    std::env::var("GROUPBUY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

static NEXT: AtomicU64 = AtomicU64::new(0);
static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
static REPORTED: OnceLock<()> = OnceLock::new();

/// Says once, plainly and straight to the terminal (libtest captures `print!`, not direct
/// writes), that this run is SQLite only.
pub fn report_sqlite_only() {
    REPORTED.get_or_init(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\nNOTE: this run is the SQLite suite; the PostgreSQL suite did not run.\n      \
             Run it with GROUPBUY_TEST_DB=postgres cargo test --test it (PostgreSQL at {}); .ci/run does both.\n",
            pg_base_url()
        );
    });
}

/// For a test that needs PostgreSQL: true on the PostgreSQL run; on the SQLite run it says,
/// straight to the terminal, that `test` was skipped (libtest has no runtime skip, and a
/// silent pass would read as a pass).
pub fn postgres_or_skip(test: &str) -> bool {
    if Db::from_env() == Db::Postgres {
        return true;
    }
    report_sqlite_only();
    let _ = writeln!(
        std::io::stderr(),
        "*** SKIPPED in the SQLite run: {test} needs PostgreSQL (GROUPBUY_TEST_DB=postgres) ***"
    );
    false
}

/// Creates an empty PostgreSQL database and returns its URL. The PostgreSQL suite fails,
/// loudly, when the server cannot be reached.
pub async fn fresh_postgres() -> String {
    let base = pg_base_url();
    let mut admin = sqlx::postgres::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("the PostgreSQL suite needs a server at {base}: {e}"));
    CLEANED
        .get_or_init(|| crate::support::pg::drop_stale(&mut admin, "gb_t"))
        .await;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let (_, url) = crate::support::pg::create(&mut admin, &base, "gb_t", n).await;
    url
}

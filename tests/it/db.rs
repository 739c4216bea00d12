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

/// Creates an empty PostgreSQL database and returns its URL. The PostgreSQL suite fails,
/// loudly, when the server cannot be reached.
pub async fn fresh_postgres() -> String {
    let base = pg_base_url();
    let mut admin = sqlx::postgres::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("the PostgreSQL suite needs a server at {base}: {e}"));
    // Names carry their creation time: gb_t_<unix seconds>_<pid>_<n>.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CLEANED
        .get_or_init(|| async {
            // Databases of runs that ended long ago; a run in progress elsewhere is spared.
            let old: Vec<(String,)> =
                sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'gb\\_t\\_%'")
                    .fetch_all(&mut admin)
                    .await
                    .unwrap_or_default();
            for (name,) in old {
                let born: u64 = name
                    .split('_')
                    .nth(2)
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                if born + 3 * 3_600 < now {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            }
        })
        .await;
    let name = format!(
        "gb_t_{now}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE");
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("a database URL ends with /name");
    format!("{prefix}/{name}")
}

//! The only place with SQL. One code base for SQLite (embedded default) and PostgreSQL via
//! `sqlx::Any`: `$n` placeholders, integers for money, times and flags, and the few
//! PostgreSQL-only statements behind [`Backend`] checks.
//!
//! Write transactions go through [`Store::write`], which on SQLite starts with
//! `BEGIN IMMEDIATE`: a deferred transaction that later wants to write fails with "database is
//! locked" without waiting for the busy timeout (RELIABILITY.md §4.2).

pub mod circles;
pub mod export;
pub(crate) mod forget;
pub mod groups;
pub mod holds;
pub(crate) mod inbox;
pub(crate) mod instances;
pub mod ledger;
pub(crate) mod locks;
pub mod mailing;
pub(crate) mod members;
pub mod outbox;
pub mod products;
pub mod purchases;
pub(crate) mod refunds;
pub(crate) mod settlements;
pub(crate) mod tokens;
pub mod updates;
pub(crate) mod upgrades;
pub mod users;

/// Ids per `IN (…)` list: one parameter each, few enough that binding stays cheap (sqlx-sqlite
/// looks each parameter's name up, and SQLite's lookup is a linear scan).
pub const IN_LIST: usize = 100;

/// A stored value that does not decode into its domain type: an error naming the row and the
/// value, never a default.
pub(crate) fn decode_err(
    table: &str,
    id: impl std::fmt::Display,
    what: &str,
    value: &dyn std::fmt::Display,
) -> sqlx::Error {
    sqlx::Error::Decode(
        format!(
            "{table} {id}: unreadable {what} {value:?}",
            value = value.to_string()
        )
        .into(),
    )
}

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use std::str::FromStr;
use std::time::Duration;

/// A database transaction, SQLite or PostgreSQL.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;
/// A database connection, SQLite or PostgreSQL.
pub type Conn = AnyConnection;

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database: a pool for reads and one for writes, SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Where writes go. SQLite: a pool of one connection, so this process's writers queue
    /// here in order instead of in SQLite's busy handler (which sleeps up to 100 ms between
    /// tries and is not fair). PostgreSQL: the same pool as reads.
    writer: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// `sqlite://groupbuy.db` creates the file when missing.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// WAL is a property of the file; switching needs an exclusive lock that the busy timeout
/// does not cover, so it is done once on a lone connection before the pool opens.
async fn enable_wal(options: &AnyConnectOptions) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut conn = AnyConnection::connect_with(options)
        .await
        .context("opening the SQLite database")?;
    conn.execute("PRAGMA journal_mode = WAL")
        .await
        .context("enabling WAL")?;
    conn.close().await.ok();
    Ok(())
}

/// A pool of `size` connections, each set up for the backend.
fn pool_options(backend: Backend, size: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // FULL: a payment acknowledged to Telegram survives a power cut.
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 30000").await?;
                    // Deleted and overwritten content is zeroed, so an emptied message
                    // body or an erased person does not linger in free space.
                    conn.execute("PRAGMA secure_delete = ON").await?;
                }
                Ok(())
            })
        })
}

impl Store {
    /// Connects to `url` (`sqlite:…` or `postgres://…`): a read pool, and on SQLite a
    /// one-connection writer pool (SQLite has one writer at a time).
    #[tracing::instrument(skip_all, fields(backend))]
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        tracing::Span::current().record("backend", format!("{backend:?}"));
        let url = match backend {
            Backend::Sqlite => sqlite_url(url),
            Backend::Postgres => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url).context("parsing the database URL")?;
        if backend == Backend::Sqlite {
            enable_wal(&options).await?;
        }
        let pool_of = |size: u32| pool_options(backend, size);
        let pool = pool_of(if backend == Backend::Sqlite { 8 } else { 10 })
            .connect_with(options.clone())
            .await
            .context("connecting to the database")?;
        let writer = match backend {
            Backend::Sqlite => pool_of(1)
                .connect_with(options)
                .await
                .context("connecting to the database")?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Self {
            pool,
            writer,
            backend,
        })
    }

    /// Applies the backend's pending migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await,
        }
        .context("running database migrations")
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The read pool (on PostgreSQL, writes use it too).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A write transaction: `BEGIN IMMEDIATE` on SQLite, a plain `BEGIN` on PostgreSQL.
    /// SQLite: at most one at a time in this process (see [`Store::writer`]); never ask for
    /// a second one while holding one.
    pub async fn write(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }

    /// A connection for single writing statements outside a transaction (autocommit): on
    /// SQLite the one writer connection, so it queues behind [`Store::write`] transactions
    /// in order. Never ask for it while holding a write transaction.
    pub async fn writer(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
        self.writer.acquire().await
    }

    /// A connection for reads outside any transaction.
    pub async fn read(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
        self.pool.acquire().await
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// Whether an error is the violation of a unique constraint (a duplicate we can name).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

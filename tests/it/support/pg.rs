//! Throwaway PostgreSQL databases for the integration suite and the benchmarks. Each name
//! carries its creation time (`<prefix>_<unix seconds>_<pid>_<n>`), so a run can drop what
//! runs that ended long ago left behind without touching one in progress elsewhere.

use sqlx::postgres::PgConnection;

/// Databases older than this with our prefix are leftovers of runs that died midway.
const STALE_SECS: u64 = 3 * 3_600;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Drops the `<prefix>_…` databases born more than three hours ago.
pub async fn drop_stale(admin: &mut PgConnection, prefix: &str) {
    let now = unix_now();
    let pattern = format!("{}\\_%", prefix.replace('_', "\\_"));
    let old: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(pattern)
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for (name,) in old {
        let born: u64 = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('_').nth(1))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if born + STALE_SECS < now {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut *admin)
            .await;
        }
    }
}

/// Creates `<prefix>_<now>_<pid>_<n>` on the server of `base` (a URL ending in `/dbname`);
/// returns its name and URL.
pub async fn create(
    admin: &mut PgConnection,
    base: &str,
    prefix: &str,
    n: u64,
) -> (String, String) {
    let name = format!("{prefix}_{}_{}_{n}", unix_now(), std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut *admin)
        .await
        .expect("CREATE DATABASE");
    let (server, _) = base
        .rsplit_once('/')
        .expect("a database URL ends with /name");
    let url = format!("{server}/{name}");
    (name, url)
}

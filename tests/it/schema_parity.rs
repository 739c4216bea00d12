//! Issue [postgres] 1: the SQLite and PostgreSQL migrations describe the same tables with
//! the same columns. Runs in the PostgreSQL suite (it needs both databases).

use crate::db::fresh_postgres;
use groupbuy::store::Store;
use sqlx::Row;
use std::collections::BTreeMap;

type Schema = BTreeMap<String, Vec<String>>;

async fn sqlite_schema(store: &Store) -> Schema {
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(store.pool())
    .await
    .expect("tables")
    .iter()
    .map(|r| r.try_get::<String, _>(0).expect("name"))
    .collect();
    let mut out = Schema::new();
    for t in tables {
        let cols = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{t}') ORDER BY name"
        )))
        .fetch_all(store.pool())
        .await
        .expect("columns");
        out.insert(
            t,
            cols.iter()
                .map(|r| r.try_get::<String, _>(0).expect("column"))
                .collect(),
        );
    }
    out
}

async fn postgres_schema(store: &Store) -> Schema {
    let rows = sqlx::query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%' ORDER BY table_name, column_name",
    )
    .fetch_all(store.pool())
    .await
    .expect("columns");
    let mut out = Schema::new();
    for r in rows {
        out.entry(r.try_get::<String, _>(0).expect("table"))
            .or_default()
            .push(r.try_get::<String, _>(1).expect("column"));
    }
    out
}

#[tokio::test]
async fn both_databases_have_the_same_tables_and_columns() {
    if !crate::db::postgres_or_skip("both_databases_have_the_same_tables_and_columns") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let lite = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("parity.db").display()
    ))
    .await
    .expect("sqlite");
    lite.migrate().await.expect("sqlite migrations");
    let pg = Store::connect(&fresh_postgres().await)
        .await
        .expect("postgres");
    pg.migrate().await.expect("postgres migrations");
    let (a, b) = (sqlite_schema(&lite).await, postgres_schema(&pg).await);
    assert!(a.len() >= 10, "tables found: {:?}", a.keys());
    assert_eq!(a, b, "SQLite and PostgreSQL schemas differ");
}

//! The operator's commands on the catalog, the outbox, people's data and the orders.

use crate::clock::Clock;
use crate::config::{CatalogFile, Config, parse_products};
use crate::startup::open_store;
use crate::store::outbox::{self, Channel};
use crate::store::products;
use anyhow::Context;
use std::path::PathBuf;

/// `groupbuy export [--group KEY | --since AGE] [--format csv|json]`.
pub(super) async fn export(
    config: &Config,
    clock: &Clock,
    group: Option<&str>,
    since: Option<&str>,
    format: crate::export::Format,
) -> anyhow::Result<()> {
    // Keys are not repeated in errors (they would reach the operator's logs).
    let key = group
        .map(|k| {
            crate::domain::GroupKey::parse(k).map_err(|_| {
                anyhow::anyhow!("--group: that is not a group key (18 letters and digits)")
            })
        })
        .transpose()?;
    let opened_since = match since {
        Some(s) => {
            let age = crate::export::parse_age(s).ok_or_else(|| {
                anyhow::anyhow!("--since {s:?}: use minutes, hours or days, like 30m, 48h or 30d")
            })?;
            clock.now() - age
        }
        None => i64::MIN,
    };
    let store = open_store(config, clock).await?;
    if let Some(k) = &key {
        let mut conn = store.read().await?;
        if crate::store::groups::by_key(&mut conn, k).await?.is_none() {
            anyhow::bail!("--group: no group has that key");
        }
    }
    let filter = crate::store::export::Filter { key, opened_since };
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let n = crate::export::write(&store, &filter, format, &mut out).await?;
    tracing::info!(purchases = n, "export written");
    Ok(())
}

/// `groupbuy catalog import FILE`.
pub(super) async fn catalog_import(
    config: &Config,
    clock: &Clock,
    file: &PathBuf,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let parsed: CatalogFile = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid catalog file", file.display()))?;
    let list = parse_products(&parsed.products)?;
    let store = open_store(config, clock).await?;
    let mut tx = store.write().await?;
    let n = products::upsert(&mut tx, &list, clock.now()).await?;
    tx.commit().await?;
    println!("imported {n} products from {}", file.display());
    Ok(())
}

/// `groupbuy outbox`: groups whose settlement was set aside, then what did not go out.
pub(super) async fn print_stuck(config: &Config, clock: &Clock) -> anyhow::Result<()> {
    let store = open_store(config, clock).await?;
    let mut conn = store.read().await?;
    for g in crate::store::groups::set_aside_list(&mut conn, 200).await? {
        println!(
            "group {}\t{}\tsettlement failed, retried at {}\t{}",
            g.id,
            g.key,
            crate::replies::when(g.retry_at),
            g.error
        );
    }
    let rows = outbox::stuck(&mut conn, 200).await?;
    if rows.is_empty() {
        println!("nothing stuck: every message and email went out or is on its first try");
    }
    for r in rows {
        let to = match &r.channel {
            Channel::Telegram { chat_id, .. } => format!("telegram:{chat_id}"),
            Channel::Email { to, .. } => format!("email:{to}"),
        };
        println!(
            "{}\t{}\t{}\tattempts={}\t{}\t{}",
            r.id,
            r.status,
            to,
            r.attempts,
            r.dedupe_key,
            r.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

/// `groupbuy forget USER_ID|EMAIL`.
pub(super) async fn forget(ctx: &crate::app::Ctx, who: &str) -> anyhow::Result<()> {
    let Some(whom) = crate::app::forget::Whom::parse(who) else {
        anyhow::bail!(
            "{who:?} is neither a Telegram user id (a positive number) nor an email address"
        );
    };
    let e = crate::app::forget::forget(ctx, &whom).await?;
    println!(
        "forgotten: {} user record(s), {} invitation(s), {} shipping request(s), {} queued and {} sent message(s), {} raw update(s)",
        e.users,
        e.members,
        e.shipping_requests,
        e.outbox_deleted,
        e.outbox_scrubbed,
        e.inbox_deleted
    );
    Ok(())
}

pub(super) async fn catalog_remove(
    config: &Config,
    clock: &Clock,
    sku: &str,
) -> anyhow::Result<()> {
    let parsed = crate::domain::Sku::parse(sku)
        .map_err(|e| anyhow::anyhow!("{sku:?} is not a product code: {e}"))?;
    let store = open_store(config, clock).await?;
    let mut tx = store.write().await?;
    if !products::take_off_sale(&mut tx, &parsed, clock.now()).await? {
        anyhow::bail!("no product on sale has the code {parsed}");
    }
    tx.commit().await?;
    println!("{parsed} is off sale; its groups still settle");
    Ok(())
}

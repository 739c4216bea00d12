//! The `groupbuy` command line: `playground`, `serve`, `migrate`, `catalog import FILE`,
//! `catalog remove SKU`, `refunds`, `refunds done CHARGE_ID`, `refund CHARGE_ID`,
//! `settle`, `outbox`, `forget USER_ID|EMAIL`, `export`.

use crate::clock::Clock;
use crate::config::{CatalogFile, Config, parse_products};
use crate::startup::{App, open_store};
use crate::store::outbox::{self, Channel};
use crate::store::products;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "groupbuy",
    version,
    about = "Group purchasing in Telegram: buy now at the normal price, get the head-count discount back as points."
)]
pub struct Cli {
    /// The configuration file (default: ./groupbuy.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Try groupbuy without Telegram: the real bot, a built-in Telegram emulator and a browser
    /// page of chat panes, a mailbox and a clock you can fast-forward. Stays on this machine.
    Playground {
        /// Where the playground page listens (loopback unless you say otherwise).
        #[arg(long, default_value = "127.0.0.1:8088", value_name = "HOST:PORT")]
        addr: std::net::SocketAddr,
        /// Keep the database and mail in this folder (default: a temporary one, removed at exit).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
    /// Run the bot and its workers (message and email delivery, the settlement sweep).
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Manage the product catalog.
    Catalog {
        #[command(subcommand)]
        action: CatalogCmd,
    },
    /// Settle every group whose key has expired (or that filled), then exit.
    Settle,
    /// List messages and emails that did not go out (dead letters and failing retries), and
    /// groups whose settlement failed and was set aside.
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxCmd>,
    },
    /// List the refunds still owed (one line per charge), or close one that you paid out.
    Refunds {
        /// List the refunds already made too.
        #[arg(long)]
        all: bool,
        #[command(subcommand)]
        action: Option<RefundsCmd>,
    },
    /// Refund a purchase: Telegram Stars go back automatically (`groupbuy serve` calls
    /// refundStarPayment); a provider payment becomes refund-due. Its seat is released, the
    /// points it used come back, and a settled discount of it is taken back.
    Refund {
        /// The Telegram payment charge id (shown in receipts and by `groupbuy refunds --all`).
        charge_id: String,
    },
    /// Export purchases (for accounting or fulfilment) to standard output, streamed: one
    /// group's, or those of the groups opened lately (default: all). CSV has a line per
    /// purchase and a totals line per currency; JSON the same as an object.
    Export {
        /// One group, by its key.
        #[arg(long, value_name = "KEY", conflicts_with = "since")]
        group: Option<String>,
        /// Only groups opened this recently: 30m, 48h, 30d.
        #[arg(long, value_name = "AGE")]
        since: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: crate::export::Format,
    },
    /// Erase a person: name, username, email and addresses everywhere (users, invitations,
    /// shipping requests, outbox, inbox); amounts stay against the bare user id. An email
    /// address is also never mailed again.
    Forget {
        /// A numeric Telegram user id, or an email address.
        who: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RefundsCmd {
    /// You refunded this provider payment through the provider's dashboard: close it and tell
    /// the buyer.
    Done {
        /// The Telegram payment charge id.
        charge_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum OutboxCmd {
    /// Send one stuck message or email again now (`groupbuy serve` delivers it).
    Retry {
        /// The id shown by `groupbuy outbox`.
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum CatalogCmd {
    /// Add or update products from a TOML file of [[products]] tables (sku, name, price,
    /// and optionally kind = "digital" with stars = N).
    Import {
        /// The catalog file.
        file: PathBuf,
    },
    /// Take a product off sale (take it out of groupbuy.toml too: its products are loaded at
    /// every start). Every group of it still settles and still names it.
    Remove {
        /// The product code.
        sku: String,
    },
}

/// The example configuration shipped with the repo: the embedded defaults.
pub const EXAMPLE: &str = include_str!("../groupbuy.example.toml");

/// Reads the configuration: the file (if any) and the process environment.
pub fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let text = match path {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the configuration file {}", p.display()))?,
        ),
        None => match std::fs::read_to_string("groupbuy.toml") {
            Ok(text) => Some(text),
            Err(_) => {
                tracing::info!(
                    "no groupbuy.toml here: using the built-in example settings and catalog"
                );
                Some(EXAMPLE.to_string())
            }
        },
    };
    let env: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("GROUPBUY_"))
        .collect();
    Ok(Config::from_sources(text.as_deref(), &env)?)
}

pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Playground { .. } => crate::telemetry::init_with_default("warn"),
        _ => crate::telemetry::init(),
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("groupbuy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = load_config(cli.config.as_ref())?;
    if !matches!(cli.command, Cmd::Playground { .. }) {
        // The playground keeps its data (and so its secret) in a folder of its own.
        config = crate::secrets::resolve(config)?;
    }
    let clock = Clock::system();
    match cli.command {
        Cmd::Playground { addr, data } => playground(config, addr, data).await,
        Cmd::Serve => serve(config, clock).await,
        Cmd::Migrate => {
            open_store(&config, &clock).await?;
            println!("database is up to date: {}", redact(&config.database_url));
            Ok(())
        }
        Cmd::Catalog {
            action: CatalogCmd::Import { file },
        } => catalog_import(&config, &clock, &file).await,
        Cmd::Catalog {
            action: CatalogCmd::Remove { sku },
        } => catalog_remove(&config, &clock, &sku).await,
        Cmd::Refunds { all, action } => {
            let ctx = library(config, clock).await?;
            match action {
                None => print_refunds(&ctx, all).await,
                Some(RefundsCmd::Done { charge_id }) => refund_paid_out(&ctx, &charge_id).await,
            }
        }
        Cmd::Refund { charge_id } => reverse(&library(config, clock).await?, &charge_id).await,
        Cmd::Forget { who } => forget(&library(config, clock).await?, &who).await,
        Cmd::Export {
            group,
            since,
            format,
        } => export(&config, &clock, group.as_deref(), since.as_deref(), format).await,
        Cmd::Outbox { action: None } => print_stuck(&config, &clock).await,
        Cmd::Outbox {
            action: Some(OutboxCmd::Retry { id }),
        } => {
            let store = open_store(&config, &clock).await?;
            let mut conn = store.read().await?;
            if !outbox::retry_now(&mut conn, id, clock.now()).await? {
                anyhow::bail!("no unsent outbox row with id {id}");
            }
            println!("outbox row {id} will be sent again by `groupbuy serve`");
            Ok(())
        }
        Cmd::Settle => {
            let ctx = library(config, clock).await?;
            let n = crate::app::settle::sweep(&ctx).await?;
            println!(
                "settled {n} groups; their notices are queued and `groupbuy serve` delivers them"
            );
            Ok(())
        }
    }
}

/// `groupbuy playground`: until Ctrl-C.
async fn playground(
    config: Config,
    addr: std::net::SocketAddr,
    data: Option<PathBuf>,
) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the playground listens beyond this machine: anyone who reaches it can play");
    }
    let options = crate::playground::Options {
        addr,
        data_dir: data,
    };
    let playground = crate::playground::Playground::start(config, options).await?;
    println!("{}", playground.banner());
    wait_for_signal().await;
    println!("stopping the playground");
    playground.stop().await
}

/// `groupbuy serve`: until SIGTERM or Ctrl-C, then the work in flight is finished.
async fn serve(config: Config, clock: Clock) -> anyhow::Result<()> {
    let app = App::build(config, clock).await?;
    let (trigger, shutdown) = crate::shutdown::channel();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing the work in flight");
        trigger.trigger();
    });
    app.run(shutdown).await
}

/// `groupbuy export [--group KEY | --since AGE] [--format csv|json]`.
async fn export(
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
async fn catalog_import(config: &Config, clock: &Clock, file: &PathBuf) -> anyhow::Result<()> {
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
async fn print_stuck(config: &Config, clock: &Clock) -> anyhow::Result<()> {
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
async fn forget(ctx: &crate::app::Ctx, who: &str) -> anyhow::Result<()> {
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

/// The use cases on the configured database, for a command that runs one and exits.
async fn library(config: Config, clock: Clock) -> anyhow::Result<crate::app::Ctx> {
    let store = open_store(&config, &clock).await?;
    Ok(crate::app::Ctx::new(
        store,
        std::sync::Arc::new(config),
        clock,
        "",
    ))
}

async fn catalog_remove(config: &Config, clock: &Clock, sku: &str) -> anyhow::Result<()> {
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

/// `groupbuy refund CHARGE_ID`.
async fn reverse(ctx: &crate::app::Ctx, charge_id: &str) -> anyhow::Result<()> {
    use crate::domain::payment::RefundMethod;
    let r = crate::app::refund::reverse(ctx, charge_id)
        .await?
        .map_err(|refusal| anyhow::anyhow!("{refusal}"))?;
    match r.method {
        RefundMethod::Stars => println!(
            "purchase {} reversed: {} go back through refundStarPayment (`groupbuy serve` makes the call)",
            r.charge_id, r.amount
        ),
        RefundMethod::Provider => println!(
            "purchase {} reversed: refund {} through your payment provider, then run `groupbuy refunds done {}`",
            r.charge_id, r.amount, r.charge_id
        ),
    }
    if r.clawed_back > 0 {
        println!(
            "{} points of its settled discount were taken back",
            r.clawed_back
        );
    }
    Ok(())
}

/// `groupbuy refunds done CHARGE_ID`.
async fn refund_paid_out(ctx: &crate::app::Ctx, charge_id: &str) -> anyhow::Result<()> {
    let r = crate::app::refund::mark_paid(ctx, charge_id)
        .await?
        .map_err(|refusal| anyhow::anyhow!("{refusal}"))?;
    println!(
        "refund of {} closed: the buyer is told (`groupbuy serve` delivers the message)",
        r.charge_id
    );
    Ok(())
}

/// `groupbuy refunds [--all]`: one line per charge.
async fn print_refunds(ctx: &crate::app::Ctx, all: bool) -> anyhow::Result<()> {
    let mut conn = ctx.store.read().await?;
    let rows = crate::store::refunds::list(&mut conn, all, 10_000).await?;
    if rows.is_empty() {
        println!(
            "{}",
            if all {
                "no refunds"
            } else {
                "no refunds are owed"
            }
        );
    }
    for r in rows {
        let status = if r.done { "done" } else { "due" };
        let how = match (r.done, r.method) {
            (true, _) => format!(
                "refunded {}",
                r.done_at.map(crate::replies::when).unwrap_or_default()
            ),
            (false, crate::domain::payment::RefundMethod::Stars) => format!(
                "refundStarPayment, attempts={}{}",
                r.attempts,
                r.last_error
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            ),
            (false, crate::domain::payment::RefundMethod::Provider) => {
                format!(
                    "refund through the provider, then `groupbuy refunds done {}`",
                    r.charge_id
                )
            }
        };
        println!(
            "{}\t{}\t{}\t{}\tuser={}\tpurchase=GB-{}\treason={}\t{}",
            r.charge_id,
            status,
            crate::app::refund::amount_text(&r.currency, r.amount),
            r.method.as_str(),
            r.user_id,
            r.purchase_id,
            r.reason.as_str(),
            how
        );
    }
    Ok(())
}

/// Hides a password in a database URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

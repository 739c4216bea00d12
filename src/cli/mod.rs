//! The `groupbuy` command line: `playground`, `serve`, `migrate`, `catalog import FILE`,
//! `catalog remove SKU`, `refunds`, `refunds done CHARGE_ID`, `refund CHARGE_ID`,
//! `settle`, `outbox`, `forget USER_ID|EMAIL`, `export`.

use crate::clock::Clock;
use crate::config::Config;
use crate::startup::{App, open_store};
use crate::store::outbox;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

mod operator;
mod refunds;

use operator::{catalog_import, catalog_remove, export, forget, print_stuck};
use refunds::{print_refunds, refund_paid_out, reverse};

/// The `groupbuy` command line.
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

/// What `groupbuy` is asked to do.
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

/// `groupbuy refunds` actions.
#[derive(Subcommand, Debug)]
pub enum RefundsCmd {
    /// You refunded this provider payment through the provider's dashboard: close it and tell
    /// the buyer.
    Done {
        /// The Telegram payment charge id.
        charge_id: String,
    },
}

/// `groupbuy outbox` actions.
#[derive(Subcommand, Debug)]
pub enum OutboxCmd {
    /// Send one stuck message or email again now (`groupbuy serve` delivers it).
    Retry {
        /// The id shown by `groupbuy outbox`.
        id: i64,
    },
}

/// `groupbuy catalog` actions.
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
pub const EXAMPLE: &str = include_str!("../../groupbuy.example.toml");

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

/// Parses the command line, starts logging and runs the command; exits 1 with the error on failure.
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

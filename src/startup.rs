//! Wiring: from a [`Config`] to a running service (bot dispatcher + workers), with the
//! shutdown signal injected so tests can stop it.

use crate::app::Ctx;
use crate::clock::Clock;
use crate::config::Config;
use crate::mail::Mailer;
use crate::shutdown::Shutdown;
use crate::store::{Store, products};
use crate::telegram::commands::Command;
use crate::workers::outbox::OutboxWorker;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::*;
use teloxide::update_listeners::Polling;
use teloxide::utils::command::BotCommands;

/// Opens the database, runs migrations and loads the configured catalog.
pub async fn open_store(config: &Config, clock: &Clock) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    if !config.products.is_empty() {
        let mut tx = store.write().await?;
        products::upsert(&mut tx, &config.products, clock.now()).await?;
        tx.commit().await?;
    }
    Ok(store)
}

pub fn make_bot(config: &Config) -> anyhow::Result<Bot> {
    let token = config.require_token()?;
    let mut bot = Bot::new(token.expose());
    if let Some(url) = &config.telegram_api_url {
        let parsed = url::Url::parse(&url.0).context("GROUPBUY_TELEGRAM_API_URL is not a URL")?;
        bot = bot.set_api_url(parsed);
    }
    Ok(bot)
}

pub struct App {
    ctx: Ctx,
    bot: Bot,
    mailer: Mailer,
    /// Bound at build time so a port of 0 (tests) is known before `run`.
    http: tokio::net::TcpListener,
}

impl App {
    /// Everything that can fail at start-up fails here, with a sentence naming the cause.
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<Self> {
        let bot = make_bot(&config)?;
        let mailer = Mailer::from_config(&config)?;
        let store = open_store(&config, &clock).await?;
        let me = bot
            .get_me()
            .await
            .context("cannot reach the Telegram Bot API with this token (check GROUPBUY_TELEGRAM_TOKEN and GROUPBUY_TELEGRAM_API_URL)")?;
        let username = me.username.clone().unwrap_or_default();
        bot.set_my_commands(menu())
            .await
            .context("registering the command menu")?;
        tracing::info!(bot = %username, database = %store_kind(&config), "groupbuy is starting");
        let http = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on GROUPBUY_HTTP_ADDR {}", config.http_addr))?;
        let ctx = Ctx::new(store, Arc::new(config), clock, username);
        Ok(Self {
            ctx,
            bot,
            mailer,
            http,
        })
    }

    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// Where the web side listens (the real port when the configured one was 0).
    pub fn http_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.http.local_addr()
    }

    /// Runs the bot (long polling) and the workers until `shutdown` fires.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let outbox = tokio::spawn(
            OutboxWorker::new(self.ctx.clone(), self.bot.clone(), self.mailer.clone())
                .run(shutdown.clone()),
        );
        let sweep = tokio::spawn(crate::workers::sweep::run(
            self.ctx.clone(),
            shutdown.clone(),
        ));
        let mut web_stop = shutdown.clone();
        let web = tokio::spawn(
            axum::serve(self.http, crate::web::router(self.ctx.clone()))
                .with_graceful_shutdown(async move { web_stop.wait().await })
                .into_future(),
        );

        let mut dispatcher = Dispatcher::builder(self.bot.clone(), crate::telegram::schema())
            .dependencies(dptree::deps![self.ctx.clone()])
            .default_handler(|_| async {})
            .build();
        let token = dispatcher.shutdown_token();
        let mut stop = shutdown.clone();
        let stopper = tokio::spawn(async move {
            stop.wait().await;
            // The dispatcher may not have started yet; ask until it takes the request.
            loop {
                match token.shutdown() {
                    Ok(done) => {
                        done.await;
                        return;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        let listener = Polling::builder(self.bot.clone())
            .timeout(Duration::from_secs(10))
            .delete_webhook()
            .await
            .build();
        dispatcher
            .dispatch_with_listener(
                listener,
                LoggingErrorHandler::with_custom_text("update listener"),
            )
            .await;
        let _ = stopper.await;
        let _ = outbox.await;
        let _ = sweep.await;
        if let Ok(Err(e)) = web.await {
            tracing::error!(error = %e, "the web server stopped with an error");
        }
        tracing::info!("groupbuy stopped");
        Ok(())
    }
}

/// The command menu. Telegram wants names without the slash (1–32 of `a-z0-9_`); teloxide's
/// list carries the slash for `/help` texts, so strip it.
pub fn menu() -> Vec<teloxide::types::BotCommand> {
    Command::bot_commands()
        .into_iter()
        .map(|mut c| {
            c.command = c.command.trim_start_matches('/').to_string();
            c
        })
        .collect()
}

fn store_kind(config: &Config) -> &'static str {
    if config.database_url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    }
}

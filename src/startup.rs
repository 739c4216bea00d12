//! Wiring: from a [`Config`] to a running service — update ingestion (long polling or the
//! webhook), the update processor, the outbox worker, the settlement sweep and the web side —
//! with the shutdown signal injected so tests can stop it.

use crate::app::Ctx;
use crate::clock::Clock;
use crate::config::Config;
use crate::mail::Mailer;
use crate::shutdown::Shutdown;
use crate::store::{Store, instances, products};
use crate::telegram::ingest;
use crate::workers::outbox::OutboxWorker;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use teloxide::prelude::*;
use teloxide::types::Me;

/// Opens the database, runs migrations and loads the configured catalog.
pub async fn open_store(config: &Config, clock: &Clock) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let mut tx = store.write().await?;
    if !config.products.is_empty() {
        products::upsert(&mut tx, &config.products, clock.now()).await?;
    }
    upgrade_once(&mut tx, config, clock.now()).await?;
    tx.commit().await?;
    Ok(store)
}

/// Rows written by earlier versions, upgraded on the first start that knows how (each
/// upgrade scans a whole table, so it is recorded and not repeated).
async fn upgrade_once(
    tx: &mut crate::store::Conn,
    config: &Config,
    now: i64,
) -> anyhow::Result<()> {
    use crate::store::upgrades;
    // Receipt tokens and invite codes written before they were hashed are hashed now.
    if !upgrades::done(tx, "hash_plain_tokens").await? {
        let keyed = crate::secrets::Keyed::from_config(config);
        crate::store::tokens::hash_plain(tx, &keyed).await?;
        upgrades::mark_done(tx, "hash_plain_tokens", now).await?;
    }
    // Entries written before entries carried a currency are in the catalog currency.
    if !upgrades::done(tx, "ledger_currency").await? {
        crate::store::ledger::backfill_currency(tx, config.currency.code()).await?;
        upgrades::mark_done(tx, "ledger_currency", now).await?;
    }
    Ok(())
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

pub use crate::telegram::commands::menu;

pub struct App {
    ctx: Ctx,
    bot: Bot,
    me: Me,
    mailer: Mailer,
    /// Bound at build time so a port of 0 (tests) is known before `run`.
    http: tokio::net::TcpListener,
    /// `/healthz` and `/metrics`, apart from the pages.
    admin: tokio::net::TcpListener,
}

impl App {
    /// Everything that can fail at start-up fails here, with a sentence naming the cause.
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<Self> {
        let bot = make_bot(&config)?;
        if let Some(warning) = config.sales_warning() {
            tracing::warn!("{warning}");
        }
        let mailer = Mailer::from_config(&config)?;
        if !mailer.signs() {
            tracing::warn!(
                "emails go out without a DKIM signature: set GROUPBUY_DKIM_SELECTOR, GROUPBUY_DKIM_DOMAIN and GROUPBUY_DKIM_PRIVATE_KEY_FILE to sign them"
            );
        }
        let store = open_store(&config, &clock).await?;
        let me = bot.get_me().await.context(
            "cannot reach the Telegram Bot API with this token (check GROUPBUY_TELEGRAM_TOKEN and GROUPBUY_TELEGRAM_API_URL)",
        )?;
        bot.set_my_commands(menu())
            .await
            .context("registering the command menu")?;
        match config.webhook_secret_if_enabled() {
            Some(secret) => {
                let url = format!("{}{}", config.public_url, crate::web::webhook::PATH);
                let parsed = url::Url::parse(&url)
                    .context("GROUPBUY_PUBLIC_URL does not make a webhook URL")?;
                bot.set_webhook(parsed)
                    .secret_token(secret.expose())
                    .await
                    .context("registering the webhook")?;
                tracing::info!(%url, "webhook mode");
            }
            None => {
                // getUpdates refuses to work while a webhook is set.
                bot.delete_webhook()
                    .await
                    .context("switching to long polling")?;
                tracing::info!("long polling mode");
            }
        }
        let http = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on GROUPBUY_HTTP_ADDR {}", config.http_addr))?;
        let admin = tokio::net::TcpListener::bind(config.admin_addr)
            .await
            .with_context(|| {
                format!("cannot listen on GROUPBUY_ADMIN_ADDR {}", config.admin_addr)
            })?;
        if !config.admin_addr.ip().is_loopback() {
            tracing::warn!(addr = %config.admin_addr, "metrics and health answer beyond this machine (GROUPBUY_ADMIN_ADDR)");
        }
        let username = me.username.clone().unwrap_or_default();
        tracing::info!(bot = %username, database = %store_kind(&config), "groupbuy is starting");
        let ctx = Ctx::new(store, Arc::new(config), clock, username);
        Ok(Self {
            ctx,
            bot,
            me,
            mailer,
            http,
            admin,
        })
    }

    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// Where the web side listens (the real port when the configured one was 0).
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// Where `/healthz` and `/metrics` answer.
    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    /// The background workers: heartbeat, outbox delivery, settlement sweep, Stars refunds
    /// and the update inbox.
    fn spawn_workers(&self, shutdown: &Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
        let ctx = &self.ctx;
        vec![
            tokio::spawn(heartbeat(ctx.clone(), shutdown.clone())),
            tokio::spawn(
                OutboxWorker::new(ctx.clone(), self.bot.clone(), self.mailer.clone())
                    .run(shutdown.clone()),
            ),
            tokio::spawn(crate::workers::sweep::run(ctx.clone(), shutdown.clone())),
            tokio::spawn(crate::workers::refunds::run(
                ctx.clone(),
                self.bot.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(ingest::process(
                self.bot.clone(),
                self.me.clone(),
                ctx.clone(),
                shutdown.clone(),
            )),
        ]
    }

    /// Runs everything until `shutdown` fires, then lets each part finish the work in hand.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let ctx = self.ctx.clone();
        {
            let mut conn = ctx.store.read().await?;
            instances::register(&mut conn, ctx.store.backend(), &ctx.instance, ctx.now()).await?;
        }
        let mut tasks = self.spawn_workers(&shutdown);
        let intake = ingest::Intake::new(self.bot.clone(), self.me.clone(), ctx.clone());
        let mut router = crate::web::router(ctx.clone());
        match ctx.config.webhook_secret_if_enabled() {
            Some(secret) => {
                router = router.merge(crate::web::webhook::router(intake, secret.clone()))
            }
            None => tasks.push(tokio::spawn(ingest::poll_when_leader(
                intake,
                shutdown.clone(),
            ))),
        }
        let mut admin_stop = shutdown.clone();
        let admin = axum::serve(self.admin, crate::web::admin_router(ctx.clone()))
            .with_graceful_shutdown(async move { admin_stop.wait().await });
        tasks.push(tokio::spawn(async move {
            if let Err(e) = admin.await {
                tracing::error!(error = %e, "the admin server stopped with an error");
            }
        }));
        let mut web_stop = shutdown.clone();
        let web = axum::serve(
            self.http,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { web_stop.wait().await });
        if let Err(e) = web.await {
            tracing::error!(error = %e, "the web server stopped with an error");
        }
        for t in tasks {
            let _ = t.await;
        }
        if let Ok(mut conn) = ctx.store.read().await
            && let Err(e) = instances::retire(&mut conn, &ctx.instance).await
        {
            tracing::warn!(error = %e, "could not release this instance's claims");
        }
        tracing::info!("groupbuy stopped");
        Ok(())
    }
}

/// Tells the other instances this one is alive (see `store::instances`).
async fn heartbeat(ctx: Ctx, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(instances::HEARTBEAT_SECS)) => {}
            _ = shutdown.wait() => return,
        }
        let beat = match ctx.store.read().await {
            Ok(mut conn) => {
                let now = ctx.now();
                let r = instances::heartbeat(&mut conn, &ctx.instance, now).await;
                let _ = instances::forget_dead(&mut conn, now).await;
                r
            }
            Err(e) => Err(e),
        };
        if let Err(e) = beat {
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }
}

fn store_kind(config: &Config) -> &'static str {
    if config.database_url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    }
}

//! `groupbuy playground`: the unchanged service on its embedded defaults (SQLite, mail kept as
//! `.eml` files) talking to the built-in Bot API emulator instead of Telegram, and a web page
//! on loopback where one person plays several: a chat pane per person, a mailbox, and a
//! fast-forward control for the clock.
//!
//! The service is told only the emulator's URL (and a throwaway token, data folder and
//! payment provider token); nothing in the bot knows it is in the playground.
//!
//! Layout: `cast` is who plays, `mailbox` reads the mail the service wrote, `api` is the page
//! and its JSON API.

mod api;
mod cast;
mod mailbox;

use crate::clock::Clock;
use crate::config::{Config, Secret, url_like};
use crate::startup::App;
use anyhow::Context;
use bot_api_emulator::BotApiEmulator;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cast::Person;

/// How to run it (the command line's flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the playground page listens. Loopback unless told otherwise.
    pub addr: SocketAddr,
    /// Where the database and the mail go; a fresh temporary folder when `None`.
    pub data_dir: Option<PathBuf>,
}

/// A running playground: the emulator, the service and the page.
pub struct Playground {
    /// The page to open; the service's group pages and receipts are served under it too.
    pub url: String,
    pub data_dir: PathBuf,
    service: tokio::task::JoinHandle<anyhow::Result<()>>,
    page: tokio::task::JoinHandle<()>,
    trigger: crate::shutdown::Trigger,
    temporary: bool,
}

impl Playground {
    /// Starts everything; `config` is the embedded (or given) configuration, of which the
    /// playground overrides only what would reach the outside world.
    pub async fn start(config: Config, options: Options) -> anyhow::Result<Playground> {
        // The page's address first: the service's links (public_url) point at it.
        let listener = tokio::net::TcpListener::bind(options.addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (is another playground running? try --addr 127.0.0.1:0)",
                    options.addr
                )
            })?;
        let addr = listener.local_addr()?;
        let (data_dir, temporary) = match options.data_dir {
            Some(dir) => (dir, false),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "groupbuy-playground-{}-{}",
                    std::process::id(),
                    chrono::Utc::now().timestamp()
                ));
                (dir, true)
            }
        };
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
        match Self::start_in(config, listener, addr, &data_dir).await {
            Ok(parts) => Ok(Playground {
                url: parts.url,
                data_dir,
                service: parts.service,
                page: parts.page,
                trigger: parts.trigger,
                temporary,
            }),
            Err(e) => {
                if temporary {
                    remove_quietly(&data_dir);
                }
                Err(e)
            }
        }
    }

    /// The settings that point the service at the emulator, a mail folder and its own data.
    fn against(
        mut config: Config,
        emulator: &BotApiEmulator,
        url: &str,
        service_addr: SocketAddr,
        data_dir: &Path,
    ) -> anyhow::Result<Config> {
        config.telegram_token = Some(Secret::new(emulator.token()));
        config.telegram_api_url = Some(url_like::Url(emulator.api_url().to_string()));
        config.database_url = format!("sqlite://{}", data_dir.join("groupbuy.db").display());
        config.smtp_url = None;
        config.mail_dir = data_dir.join("mail").display().to_string();
        config.http_addr = service_addr;
        config.admin_addr = SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), 0);
        config.public_url = url.trim_end_matches('/').to_string();
        config.webhook_secret = None;
        config.data_dir = data_dir.display().to_string();
        config.server_secret = None;
        let mut config = crate::secrets::resolve(config)?;
        // Invoices in the shop's currency with a shipping address, as with a real provider.
        // A test provider token in BotFather's form: physical goods are sold as in production.
        config.payment_provider_token = Secret::new("284685063:TEST:playground-emulated-provider");
        Ok(config)
    }

    async fn start_in(
        config: Config,
        listener: tokio::net::TcpListener,
        addr: SocketAddr,
        data_dir: &Path,
    ) -> anyhow::Result<Parts> {
        let emulator = BotApiEmulator::try_start()
            .await
            .context("cannot start the built-in Telegram emulator on 127.0.0.1")?;
        emulator.set_strict(false);
        let mail_dir = data_dir.join("mail");
        let page_host = if addr.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
        } else {
            addr
        };
        let url = format!("http://{page_host}/");

        // The service's own web side listens on another loopback port; the page serves it
        // (group pages, receipts) under its own address, so its links work in the browser.
        let service_addr = free_loopback_port()?;
        let config = Self::against(config, &emulator, &url, service_addr, data_dir)?;
        let clock = Clock::system();
        let app = App::build(config, clock.clone())
            .await
            .context("starting the service against the emulator")?;
        let ctx = app.ctx().clone();
        let (trigger, shutdown) = crate::shutdown::channel();
        let service = tokio::spawn(app.run(shutdown.clone()));

        let state = api::State::new(
            Arc::new(emulator),
            ctx,
            clock,
            mail_dir,
            format!("http://{service_addr}"),
        );
        let router = api::router(state, api::Guard::for_address(addr));
        let page = tokio::spawn(serve_page(listener, router, shutdown.clone()));
        Ok(Parts {
            service,
            page,
            trigger,
            url,
        })
    }

    /// What the command prints first.
    pub fn banner(&self) -> String {
        format!(
            "groupbuy playground — the real bot, a built-in Telegram emulator, no internet needed.\n\
             Nothing is sent to Telegram and no email leaves this machine.\n\n\
             \x20 open   {url}\n\
             \x20 data   {data}{temp}\n\n\
             Press Ctrl-C to stop.",
            url = self.url,
            data = self.data_dir.display(),
            temp = if self.temporary {
                " (removed when you stop)"
            } else {
                ""
            },
        )
    }

    /// Stops the page and the service, then removes a temporary data folder.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.trigger.trigger();
        let _ = self.page.await;
        let result = match self.service.await {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!("the service task failed: {e}")),
        };
        if self.temporary {
            remove_quietly(&self.data_dir);
        }
        result
    }
}

/// What `start_in` started.
struct Parts {
    service: tokio::task::JoinHandle<anyhow::Result<()>>,
    page: tokio::task::JoinHandle<()>,
    trigger: crate::shutdown::Trigger,
    url: String,
}

fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free loopback port for the service")?;
    Ok(probe.local_addr()?)
}

fn remove_quietly(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(error = %e, dir = %dir.display(), "could not remove the playground's data");
    }
}

/// Serves the playground page until `shutdown` fires.
async fn serve_page(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    mut shutdown: crate::shutdown::Shutdown,
) {
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the playground page stopped with an error");
    }
}

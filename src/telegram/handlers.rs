//! Command and message handlers: parse, call the use case, reply (errors included).

use super::commands::Command;
use super::{HandlerResult, person, update_id};
use crate::app::{self, AppError, Ctx, Person};
use crate::keyboard::{Keyboard, Press, callback};
use crate::metrics::Metrics;
use crate::replies::{HELP, UserError, esc};
use crate::workers::outbox::to_markup;
use teloxide::prelude::*;
use teloxide::types::ParseMode;

/// Sends a reply now (replies to the person who wrote are not bulk messages).
pub async fn reply(
    bot: &Bot,
    chat_id: ChatId,
    html: String,
    kb: Option<Keyboard>,
) -> HandlerResult {
    let mut req = bot
        .send_message(chat_id, html)
        .parse_mode(ParseMode::Html)
        .link_preview_options(crate::telegram::no_link_preview());
    if let Some(kb) = kb {
        req = req.reply_markup(to_markup(&kb));
    }
    req.await?;
    Ok(())
}

/// Tells the person what went wrong, and the operator in the log.
/// The operator's log line and counter for a refused or failed request.
pub fn note_failure(ctx: &Ctx, who: &Person, what: &str, e: &AppError) {
    match e {
        AppError::User(u) => {
            Metrics::inc(&ctx.metrics.bad_input_total);
            tracing::info!(user = who.id, what, code = u.code(), "bad input");
        }
        other => {
            Metrics::inc(&ctx.metrics.errors_total);
            tracing::error!(user = who.id, what, error = %other, "request failed");
        }
    }
}

pub async fn reply_error(
    bot: &Bot,
    ctx: &Ctx,
    chat_id: ChatId,
    who: &Person,
    what: &str,
    e: &AppError,
) -> HandlerResult {
    let user_error = e.user_error();
    note_failure(ctx, who, what, e);
    reply(bot, chat_id, user_error.html(), None).await
}

pub async fn on_command(
    bot: Bot,
    msg: Message,
    cmd: Command,
    ctx: Ctx,
    upd: Update,
) -> HandlerResult {
    let Some(from) = msg.from.as_ref() else {
        return Ok(());
    };
    let who = person(from);
    let chat = msg.chat.id;
    let private = msg.chat.is_private();
    if let Err(e) = app::access::touch(&ctx, &who, private).await {
        tracing::error!(user = who.id, error = %e, "could not record the contact");
    }
    let result = run(&bot, &ctx, &who, chat, private, &cmd, update_id(&upd)).await;
    if let Err(e) = result {
        reply_error(&bot, &ctx, chat, &who, command_name(&cmd), &e).await?;
    }
    Ok(())
}

fn command_name(cmd: &Command) -> &'static str {
    match cmd {
        Command::Start(_) => "start",
        Command::Help => "help",
        Command::NewGroup(_) => "newgroup",
        Command::Join(_) => "join",
        Command::Buy(_) => "buy",
        Command::Status(_) => "status",
        Command::MyGroups => "mygroups",
        Command::Points => "points",
        Command::Cancel(_) => "cancel",
        Command::PaySupport => "paysupport",
        Command::ForgetMe => "forgetme",
    }
}

fn arg(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

async fn run(
    bot: &Bot,
    ctx: &Ctx,
    who: &Person,
    chat: ChatId,
    private: bool,
    cmd: &Command,
    update_id: i64,
) -> Result<(), AppError> {
    let send = |html: String, kb: Option<Keyboard>| async move {
        reply(bot, chat, html, kb)
            .await
            .map_err(|e| AppError::Other(format!("sending a reply: {e}")))
    };
    match cmd {
        Command::Start(payload) => match arg(payload) {
            Some(p) => {
                let (html, kb) = app::access::start(ctx, who, p).await?;
                send(html, Some(kb)).await
            }
            None => send(format!("Hello, {}!\n\n{HELP}", esc(&who.first_name)), None).await,
        },
        Command::Help => send(HELP.to_string(), None).await,
        Command::NewGroup(args) => {
            // The confirmation goes out through the outbox with the rest of the effects.
            app::new_group::create(ctx, update_id, who, chat.0, args).await.map(|_| ())
        }
        Command::Join(key) => {
            let key = arg(key).ok_or(UserError::KeyUsage("join"))?;
            let (html, kb) = app::access::card(ctx, who, key).await?;
            send(html, Some(kb)).await
        }
        Command::Buy(key) => {
            if !private {
                return Err(UserError::PrivateOnly.into());
            }
            match arg(key) {
                Some(key) => {
                    let (html, kb) = app::access::card(ctx, who, key).await?;
                    send(html, Some(kb)).await
                }
                None => {
                    let open = app::queries::buyable_groups(ctx, who).await?;
                    match open.as_slice() {
                        [] => Err(UserError::NoOpenGroup.into()),
                        [only] => {
                            let (html, kb) = app::access::card(ctx, who, only).await?;
                            send(html, Some(kb)).await
                        }
                        many => {
                            let mut kb = Keyboard::default();
                            for key in many {
                                kb = kb.row(vec![callback(format!("Group {key}"), Press::Buy { key: key.clone() }.encode())]);
                            }
                            send("Which group would you like to buy in?".into(), Some(kb)).await
                        }
                    }
                }
            }
        }
        Command::Status(key) => send(app::queries::status(ctx, who, arg(key)).await?, None).await,
        Command::MyGroups => send(app::queries::my_groups(ctx, who).await?, None).await,
        Command::Points => send(app::queries::points(ctx, who).await?, None).await,
        Command::Cancel(key) => {
            let key = arg(key).ok_or(UserError::KeyUsage("cancel"))?;
            send(app::queries::cancel(ctx, update_id, who, key).await?, None).await
        }
        Command::ForgetMe => {
            app::forget::forget_me(ctx, who.id, update_id).await?;
            send(crate::replies::FORGOTTEN.to_string(), None).await
        }
        Command::PaySupport => send(
            format!(
                "<b>Payment support</b>\n{}\n\nEvery payment is recorded once with its Telegram charge id; your receipts are in this chat.",
                esc(&ctx.config.support_contact)
            ),
            None,
        )
        .await,
    }
}

/// Any other message: counts as "contact" for waiting prompts (claim 11).
pub async fn on_other_message(bot: Bot, msg: Message, ctx: Ctx) -> HandlerResult {
    let Some(from) = msg.from.as_ref() else {
        return Ok(());
    };
    let who = person(from);
    let private = msg.chat.is_private();
    let queued = match app::access::touch(&ctx, &who, private).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(user = who.id, error = %e, "could not record the contact");
            0
        }
    };
    if private && queued == 0 {
        let text = msg.text().unwrap_or_default();
        let hint = if text.starts_with('/') {
            format!(
                "I don't know the command {}.\n\n{HELP}",
                esc(text.split_whitespace().next().unwrap_or(text))
            )
        } else {
            format!(
                "Hello, {}! Here is what I can do.\n\n{HELP}",
                esc(&who.first_name)
            )
        };
        reply(&bot, msg.chat.id, hint, None).await?;
    }
    Ok(())
}

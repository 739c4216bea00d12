//! Command and message handlers: parse, call the use case, queue the answer (errors
//! included) in the outbox. Nothing here waits on Telegram's sending budget.

use super::commands::Command;
use super::{HandlerResult, person, update_id};
use crate::app::{self, AppError, Ctx, Person};
use crate::keyboard::{Keyboard, Press, callback};
use crate::metrics::Metrics;
use crate::replies::UserError;
use crate::replies::messages::Chat;
use crate::telegram::commands::help;
use teloxide::prelude::*;

/// An answer: HTML and an optional keyboard.
type Answer = (String, Option<Keyboard>);

/// Queues the answer to this update (see `app::reply`). Fails only when the database
/// refused it: the update then stays in the inbox and is handled again.
pub async fn reply(
    ctx: &Ctx,
    update_id: i64,
    chat_id: ChatId,
    html: String,
    kb: Option<Keyboard>,
) -> HandlerResult {
    app::reply::answer(ctx, update_id, chat_id.0, html, kb).await?;
    Ok(())
}

/// The operator's log line and counter for a refused or failed request.
pub fn note_failure(ctx: &Ctx, who: &Person, what: &str, e: &AppError) {
    match e {
        AppError::User(u) => {
            Metrics::inc(&ctx.metrics.bad_input_total);
            tracing::info!(user = %who.id, what, code = u.code(), "bad input");
        }
        other => {
            Metrics::inc(&ctx.metrics.errors_total);
            tracing::error!(user = %who.id, what, error = %other, "request failed");
        }
    }
}

/// Tells the person what went wrong (queued like any answer), and the operator in the log.
pub async fn reply_error(
    ctx: &Ctx,
    update_id: i64,
    chat_id: ChatId,
    who: &Person,
    what: &str,
    e: &AppError,
) -> HandlerResult {
    note_failure(ctx, who, what, e);
    reply(ctx, update_id, chat_id, e.user_error().html(), None).await
}

pub async fn on_command(msg: Message, cmd: Command, ctx: Ctx, upd: Update) -> HandlerResult {
    let Some(from) = msg.from.as_ref() else {
        return Ok(());
    };
    let who = person(from);
    let chat = msg.chat.id;
    let private = msg.chat.is_private();
    if let Err(e) = app::access::touch(&ctx, &who, private).await {
        tracing::error!(user = %who.id, error = %e, "could not record the contact");
    }
    let id = update_id(&upd);
    match run(&ctx, &who, chat, private, &cmd, id).await {
        Ok(Some((html, kb))) => reply(&ctx, id, chat, html, kb).await,
        Ok(None) => Ok(()),
        Err(e) => reply_error(&ctx, id, chat, &who, command_name(&cmd), &e).await,
    }
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

/// Runs the command; returns the answer to queue (None when the use case queued its own).
async fn run(
    ctx: &Ctx,
    who: &Person,
    chat: ChatId,
    private: bool,
    cmd: &Command,
    update_id: i64,
) -> Result<Option<Answer>, AppError> {
    let card = |key: String| async move {
        let (html, kb) = app::access::card(ctx, who, &key).await?;
        Ok::<_, AppError>(Some((html, Some(kb))))
    };
    let text = |html: String| Ok(Some((html, None)));
    match cmd {
        Command::Start(payload) => match arg(payload) {
            Some(p) => {
                let (html, kb) = app::access::start(ctx, who, p).await?;
                Ok(Some((html, Some(kb))))
            }
            None => text(
                Chat::Hello {
                    first_name: who.first_name.clone(),
                    help: help(),
                }
                .html(),
            ),
        },
        Command::Help => text(help()),
        Command::NewGroup(args) => {
            // The confirmation goes out through the outbox with the rest of the effects.
            app::new_group::create(ctx, update_id, who, chat.0, args).await?;
            Ok(None)
        }
        Command::Join(key) => card(arg(key).ok_or(UserError::KeyUsage("join"))?.to_string()).await,
        Command::Buy(key) => {
            if !private {
                return Err(UserError::PrivateOnly.into());
            }
            match arg(key) {
                Some(key) => card(key.to_string()).await,
                None => {
                    let open = app::queries::buyable_groups(ctx, who).await?;
                    match open.as_slice() {
                        [] => Err(UserError::NoOpenGroup.into()),
                        [only] => card(only.to_string()).await,
                        many => {
                            let mut kb = Keyboard::default();
                            for key in many {
                                kb = kb.row(vec![callback(
                                    format!("Group {key}"),
                                    Press::Buy {
                                        key: key.to_string(),
                                    }
                                    .encode(),
                                )]);
                            }
                            Ok(Some((Chat::WhichGroup.html(), Some(kb))))
                        }
                    }
                }
            }
        }
        Command::Status(key) => text(app::queries::status(ctx, who, arg(key)).await?.html()),
        Command::MyGroups => text(app::queries::my_groups(ctx, who).await?.html()),
        Command::Points => text(app::queries::points(ctx, who).await?.html()),
        Command::Cancel(key) => {
            let key = arg(key).ok_or(UserError::KeyUsage("cancel"))?;
            text(app::queries::cancel(ctx, update_id, who, key).await?.html())
        }
        Command::ForgetMe => {
            app::forget::forget_me(ctx, who.id, update_id).await?;
            text(crate::replies::FORGOTTEN.to_string())
        }
        Command::PaySupport => text(
            Chat::PaySupport {
                contact: ctx.config.support_contact.clone(),
            }
            .html(),
        ),
    }
}

/// Any other message: counts as "contact" for waiting prompts (claim 11).
pub async fn on_other_message(msg: Message, ctx: Ctx, upd: Update) -> HandlerResult {
    let Some(from) = msg.from.as_ref() else {
        return Ok(());
    };
    let who = person(from);
    let private = msg.chat.is_private();
    let queued = match app::access::touch(&ctx, &who, private).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(user = %who.id, error = %e, "could not record the contact");
            0
        }
    };
    if private && queued == 0 {
        let text = msg.text().unwrap_or_default();
        let hint = if text.starts_with('/') {
            Chat::UnknownCommand {
                command: text.split_whitespace().next().unwrap_or(text).to_string(),
                help: help(),
            }
        } else {
            Chat::WhatICanDo {
                first_name: who.first_name.clone(),
                help: help(),
            }
        }
        .html();
        reply(&ctx, update_id(&upd), msg.chat.id, hint, None).await?;
    }
    Ok(())
}

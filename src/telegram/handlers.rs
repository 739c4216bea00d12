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
use teloxide::dispatching::{HandlerExt, UpdateHandler};
use teloxide::dptree::case;
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

/// Who sent a command, where, and in which update: what every command endpoint needs.
#[derive(Clone)]
struct Asker {
    ctx: Ctx,
    who: Person,
    chat: ChatId,
    private: bool,
    update_id: i64,
}

impl Asker {
    /// Records the contact (every command counts as one) and says who asked; None for a
    /// message without a sender, which gets no answer.
    async fn from_message(msg: Message, ctx: Ctx, upd: Update) -> Option<Asker> {
        let who = person(msg.from.as_ref()?);
        let private = msg.chat.is_private();
        if let Err(e) = app::access::touch(&ctx, &who, private).await {
            tracing::error!(user = %who.id, error = %e, "could not record the contact");
        }
        Some(Asker {
            ctx,
            who,
            chat: msg.chat.id,
            private,
            update_id: update_id(&upd),
        })
    }

    /// Queues the answer to command `what` (none when the use case queued its own), or
    /// tells the person what went wrong.
    async fn answer(&self, what: &str, answer: Result<Option<Answer>, AppError>) -> HandlerResult {
        let (ctx, id, chat) = (&self.ctx, self.update_id, self.chat);
        match answer {
            Ok(Some((html, kb))) => reply(ctx, id, chat, html, kb).await,
            Ok(None) => Ok(()),
            Err(e) => reply_error(ctx, id, chat, &self.who, what, &e).await,
        }
    }

    /// A group's card: what it is, where it stands, and its Buy button.
    async fn card(&self, key: &str) -> Result<Option<Answer>, AppError> {
        let (html, kb) = app::access::card(&self.ctx, &self.who, key).await?;
        Ok(Some((html, Some(kb))))
    }
}

/// The commands' branch of the handler tree: who asked, then one endpoint per command.
pub fn commands() -> UpdateHandler<Box<dyn std::error::Error + Send + Sync + 'static>> {
    dptree::entry()
        .filter_command::<Command>()
        .filter_map_async(Asker::from_message)
        .branch(case![Command::Start(payload)].endpoint(start))
        .branch(case![Command::Help].endpoint(help_command))
        .branch(case![Command::NewGroup(args)].endpoint(new_group))
        .branch(case![Command::Join(key)].endpoint(join))
        .branch(case![Command::Buy(key)].endpoint(buy))
        .branch(case![Command::Status(key)].endpoint(status))
        .branch(case![Command::MyGroups].endpoint(my_groups))
        .branch(case![Command::Points].endpoint(points))
        .branch(case![Command::Cancel(key)].endpoint(cancel))
        .branch(case![Command::Close(key)].endpoint(close))
        .branch(case![Command::Extend(args)].endpoint(extend))
        .branch(case![Command::Invite(args)].endpoint(invite))
        .branch(case![Command::Remove(args)].endpoint(remove))
        .branch(case![Command::Regroup(args)].endpoint(regroup))
        .branch(case![Command::Export(args)].endpoint(export))
        .branch(case![Command::PaySupport].endpoint(pay_support))
        .branch(case![Command::ForgetMe].endpoint(forget_me))
}

fn arg(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// A text answer without buttons.
fn text(html: String) -> Result<Option<Answer>, AppError> {
    Ok(Some((html, None)))
}

/// `/start`: a greeting, or an invitation link's group.
async fn start(a: Asker, payload: String) -> HandlerResult {
    let answer = match arg(&payload) {
        Some(p) => app::access::start(&a.ctx, &a.who, p)
            .await
            .map(|(html, kb)| Some((html, Some(kb)))),
        None => text(
            Chat::Hello {
                first_name: a.who.first_name.clone(),
                help: help(),
            }
            .html(),
        ),
    };
    a.answer("start", answer).await
}

/// `/help`: the command list.
async fn help_command(a: Asker) -> HandlerResult {
    a.answer("help", text(help())).await
}

/// `/newgroup`: the confirmation goes out through the outbox with the rest of the effects.
async fn new_group(a: Asker, args: String) -> HandlerResult {
    let created = app::new_group::create(&a.ctx, a.update_id, &a.who, a.chat.0, &args).await;
    a.answer("newgroup", created.map(|_| None)).await
}

/// `/join KEY`: the group's card.
async fn join(a: Asker, key: String) -> HandlerResult {
    let answer = match arg(&key) {
        Some(key) => a.card(key).await,
        None => Err(UserError::KeyUsage("join").into()),
    };
    a.answer("join", answer).await
}

/// `/buy [KEY]`: in private only; without a key, the one open group or a choice of them.
async fn buy(a: Asker, key: String) -> HandlerResult {
    let answer = if !a.private {
        Err(UserError::PrivateOnly.into())
    } else if let Some(key) = arg(&key) {
        a.card(key).await
    } else {
        which_group(&a).await
    };
    a.answer("buy", answer).await
}

/// The group `/buy` without a key means: the only open one, or a button for each.
async fn which_group(a: &Asker) -> Result<Option<Answer>, AppError> {
    let open = app::queries::buyable_groups(&a.ctx, &a.who).await?;
    match open.as_slice() {
        [] => Err(UserError::NoOpenGroup.into()),
        [only] => a.card(only.as_str()).await,
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

/// `/status [KEY]`: seats, time left and discount.
async fn status(a: Asker, key: String) -> HandlerResult {
    let status = app::queries::status(&a.ctx, &a.who, arg(&key)).await;
    a.answer("status", status.and_then(|s| text(s.html())))
        .await
}

/// `/mygroups`: the person's group purchases.
async fn my_groups(a: Asker) -> HandlerResult {
    let groups = app::queries::my_groups(&a.ctx, &a.who, 0).await;
    let answer = groups.map(|g| Some((g.html(), app::views::my_groups_keyboard(&g))));
    a.answer("mygroups", answer).await
}

/// `/points`: the balance and how it was earned.
async fn points(a: Asker) -> HandlerResult {
    let points = app::queries::points(&a.ctx, &a.who).await;
    a.answer("points", points.and_then(|p| text(p.html())))
        .await
}

/// `/cancel KEY`: the organiser cancels a group nobody bought in yet.
async fn cancel(a: Asker, key: String) -> HandlerResult {
    let answer = match arg(&key) {
        Some(key) => app::queries::cancel(&a.ctx, a.update_id, &a.who, key)
            .await
            .and_then(|c| text(c.html())),
        None => Err(UserError::KeyUsage("cancel").into()),
    };
    a.answer("cancel", answer).await
}

/// `/close KEY`: the organiser settles a group now, with the buyers it has.
async fn close(a: Asker, key: String) -> HandlerResult {
    let answer = match arg(&key) {
        Some(key) => app::close::close(&a.ctx, a.update_id, &a.who, key)
            .await
            .and_then(|c| c.map_or(Ok(None), |c| text(c.html()))),
        None => Err(UserError::KeyUsage("close").into()),
    };
    a.answer("close", answer).await
}

/// `/extend KEY 24h`: the organiser keeps an open group open longer.
async fn extend(a: Asker, args: String) -> HandlerResult {
    let extended = app::organiser::extend(&a.ctx, a.update_id, &a.who, &args).await;
    a.answer("extend", extended.and_then(|e| text(e.html())))
        .await
}

/// `/invite KEY MEMBER…`: the organiser names more members.
async fn invite(a: Asker, args: String) -> HandlerResult {
    let invited = app::organiser::invite(&a.ctx, a.update_id, &a.who, &args).await;
    a.answer("invite", invited.and_then(|i| text(i.html())))
        .await
}

/// `/remove KEY MEMBER`: the organiser takes back an invitation.
async fn remove(a: Asker, args: String) -> HandlerResult {
    let removed = app::organiser::remove(&a.ctx, a.update_id, &a.who, &args).await;
    a.answer("remove", removed.and_then(|r| text(r.html())))
        .await
}

/// `/regroup KEY …`: the confirmation goes out through the outbox, as `/newgroup`'s does.
async fn regroup(a: Asker, args: String) -> HandlerResult {
    let created = app::regroup::regroup(&a.ctx, a.update_id, &a.who, Some(a.chat.0), &args).await;
    a.answer("regroup", created.map(|_| None)).await
}

/// `/export KEY`: the CSV file goes out through the outbox as this update's answer.
async fn export(a: Asker, args: String) -> HandlerResult {
    let sent = app::organiser::export(&a.ctx, a.update_id, &a.who, a.chat.0, &args).await;
    a.answer("export", sent.map(|()| None)).await
}

/// `/paysupport`: whom to write about a payment.
async fn pay_support(a: Asker) -> HandlerResult {
    let contact = a.ctx.config.support_contact.clone();
    a.answer("paysupport", text(Chat::PaySupport { contact }.html()))
        .await
}

/// `/forgetme`: erases the person's name, username, email and addresses.
async fn forget_me(a: Asker) -> HandlerResult {
    let forgotten = app::forget::forget_me(&a.ctx, a.who.id, a.update_id).await;
    let answer = forgotten.and_then(|_| text(crate::replies::FORGOTTEN.to_string()));
    a.answer("forgetme", answer).await
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

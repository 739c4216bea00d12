//! The bot's commands; the descriptions become the `setMyCommands` menu and `/help`.

use teloxide::utils::command::BotCommands;

#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    #[command(description = "start, or open an invitation link")]
    Start(String),
    #[command(description = "how groupbuy works")]
    Help,
    #[command(description = "start a group purchase: PRODUCT N [MEMBERS…] [EXPIRY] [all|partial]")]
    NewGroup(String),
    #[command(description = "join a group purchase with its key")]
    Join(String),
    #[command(description = "buy your seat in a group")]
    Buy(String),
    #[command(description = "seats filled, time left, discount reached")]
    Status(String),
    #[command(description = "your group purchases")]
    MyGroups,
    #[command(description = "your points and how you earned them")]
    Points,
    #[command(description = "cancel a group you organised, before anyone buys")]
    Cancel(String),
    #[command(description = "settle a group you organised now, with the buyers it has")]
    Close(String),
    #[command(description = "keep your open group open longer: KEY 24h")]
    Extend(String),
    #[command(description = "invite more members to your open group: KEY MEMBER…")]
    Invite(String),
    #[command(description = "take back a member's invitation before they buy: KEY MEMBER")]
    Remove(String),
    #[command(
        description = "buy together again: a new group with the same people, KEY [PRODUCT] [N] [EXPIRY]"
    )]
    Regroup(String),
    #[command(description = "your group's purchases as a CSV file: KEY")]
    Export(String),
    #[command(description = "help with a payment")]
    PaySupport,
    #[command(description = "erase your name, username, email and addresses")]
    ForgetMe,
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

/// `/help`, from the same list as the menu (without /start and /help themselves).
pub fn help() -> String {
    let listed: Vec<(String, String)> = menu()
        .into_iter()
        .filter(|c| c.command != "start" && c.command != "help")
        .map(|c| (c.command, c.description))
        .collect();
    crate::replies::help(&listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_command_of_the_menu() {
        let help = help();
        for c in menu() {
            if c.command != "start" && c.command != "help" {
                assert!(
                    help.contains(&format!("/{} — ", c.command)),
                    "{} in {help}",
                    c.command
                );
            }
        }
        assert!(help.contains(
            "/newgroup — start a group purchase: PRODUCT N [MEMBERS…] [EXPIRY] [all|partial]"
        ));
    }
}

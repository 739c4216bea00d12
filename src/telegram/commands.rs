//! The bot's commands; the descriptions become the `setMyCommands` menu and `/help`.

use teloxide::utils::command::BotCommands;

#[derive(BotCommands, Clone, Debug, PartialEq, Eq)]
#[command(rename_rule = "lowercase")]
pub enum Command {
    #[command(description = "start, or open an invitation link")]
    Start(String),
    #[command(description = "how groupbuy works")]
    Help,
    #[command(description = "start a group purchase: PRODUCT N [MEMBERS…] [EXPIRY]")]
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
    #[command(description = "help with a payment")]
    PaySupport,
    #[command(description = "erase your name, username, email and addresses")]
    ForgetMe,
}

//! The replies to bad input, by family; [`UserError::html`] tries each in turn. Every text
//! is exactly as it was when they were one match.

use super::{UserError, capitalise, duration, esc, short, when};

impl UserError {
    /// Replies to malformed input: a command's words, a product, members, an expiry, a key.
    pub(super) fn input_html(&self) -> Option<String> {
        match self {
            UserError::NewGroupUsage => Some("To start a group purchase, write\n<code>/newgroup PRODUCT HEADCOUNT [MEMBER ...] [EXPIRY]</code>\n\
                for example <code>/newgroup camera 3 @alice 123456 carol@example.com 48h</code>.\n\
                Members are @usernames, numeric Telegram ids or email addresses. The expiry is like 30m, 48h or 7d.\n\
                Also possible: <code>any</code> as the head count (anyone with the key joins; the tier of the buyers when it closes), <code>never</code> as the expiry (it settles when full, or at /close), and <code>all</code> or <code>partial</code> for what an unfilled group gets.".into()),
            UserError::UnknownProduct(q) => Some(format!(
                "I don't know a product called “{}”. Tap /help to see how to list the catalog, or use a product code such as <code>camera</code>.",
                esc(&short(q))
            )),
            UserError::AmbiguousProduct { query, candidates } => Some(format!(
                "“{}” matches several products: {}. Please use the product code.",
                esc(&short(query)),
                candidates.iter().map(|c| format!("<code>{}</code>", esc(c))).collect::<Vec<_>>().join(", ")
            )),
            UserError::HeadCount { raw, min, max } => Some(format!(
                "The head count must be a whole number from {min} to {max}; “{}” is not.",
                esc(&short(raw))
            )),
            UserError::TooManyMembers { members, seats } => Some(format!(
                "You named {members} members for {seats} seats. Name at most {seats}, or raise the head count."
            )),
            UserError::DuplicateMember(m) => Some(format!("{} is named twice. Name each member once.", esc(&short(m)))),
            UserError::BadMember(e) => Some(format!("{}.", esc(&short(&capitalise(&e.to_string()))))),
            UserError::BadExpiry(raw) => Some(format!(
                "“{}” is not an expiry I understand. Use minutes, hours or days, like 30m, 48h or 7d (at most 365d).",
                esc(&short(raw))
            )),
            UserError::PolicyTwice(word) => Some(format!(
                "Name the policy once: <code>all</code> (no discount unless the group fills) or <code>partial</code> (the tier of the buyers it has); “{}” names it again.",
                esc(&short(word))
            )),
            UserError::PolicyFixed { word, policy } => Some(format!(
                "This shop sets the policy of every group itself ({}), so “{}” cannot be chosen. Leave the word out.",
                policy_words(*policy),
                esc(&short(word))
            )),
            UserError::KeyUsage(cmd) => Some(format!("Please add the group key: <code>/{cmd} KEY</code>.")),
            UserError::MalformedKey(raw) => Some(format!(
                "“{}” is not a group key. Keys are 18 letters and digits, like <code>7KQ2XM9PD4HB6TRWZC</code>.",
                esc(&short(raw))
            )),
            _ => None,
        }
    }

    /// Replies about the group a key names: unknown, closed, full, or not theirs.
    pub(super) fn group_html(&self) -> Option<String> {
        match self {
            UserError::UnknownKey => Some("I can't find a group purchase with that key. Please check it with the person who invited you.".into()),
            UserError::Expired { key, at } => Some(format!(
                "Group <code>{}</code> expired on {}: it no longer takes purchases.",
                key,
                when(*at)
            )),
            UserError::Settled { key } => Some(format!(
                "Group <code>{}</code> has closed and its discount was paid out: the key is no longer valid.",
                key
            )),
            UserError::Cancelled { key } => Some(format!("Group <code>{}</code> was cancelled by its organiser.", key)),
            UserError::GroupFull { key, seats } => Some(format!(
                "Sorry, all {seats} seats of group <code>{}</code> are taken. Ask the organiser to start another round.",
                key
            )),
            UserError::NotInvited { key } => Some(format!(
                "The seats of group <code>{}</code> are reserved for the people its organiser invited.",
                key
            )),
            UserError::AlreadyBought { key } => Some(format!(
                "You have already bought in group <code>{}</code>: one purchase per member counts.",
                key
            )),
            UserError::NoOpenGroup => Some("You have no open group purchase to buy in. Ask the organiser for the key, then send <code>/buy KEY</code>.".into()),
            UserError::InvitationTaken => Some("This invitation link was already used by another Telegram account. Ask the organiser to invite you again.".into()),
            UserError::NotOrganiser => Some("Only the organiser of this group can do that.".into()),
            UserError::CloseWhilePaying { key } => Some(format!(
                "Someone is paying for a seat in group <code>{}</code> right now, so it was not closed: their purchase must count. Send /close again in {}.",
                key,
                duration(crate::domain::payment::SEAT_HOLD_SECS)
            )),
            UserError::HasPurchases { key } => Some(format!(
                "Group <code>{}</code> already has purchases, so it can no longer be cancelled.",
                key
            )),
            _ => None,
        }
    }

    /// Replies about paying: invoices, points, addresses and seats being paid for.
    pub(super) fn payment_html(&self) -> Option<String> {
        match self {
            UserError::PriceChanged => Some("The price of this product changed since the invoice was made. Please tap Buy again for a fresh invoice.".into()),
            UserError::WrongBuyer => Some("This invoice was made for someone else. Tap Buy in your own chat with the bot.".into()),
            UserError::NotEnoughPoints { balance } => Some(format!(
                "You now have only {balance} points, fewer than this invoice redeems. Please tap Buy again."
            )),
            UserError::BadAddress => Some("Please give a full shipping address with its country.".into()),
            UserError::InvoiceRefused => Some("Telegram did not accept the invoice for this purchase, so nothing was charged. Please try again in a minute, or write /paysupport.".into()),
            UserError::SeatBeingPaid { key } => Some(format!(
                "The last seat of group <code>{}</code> is being paid for by someone else right now, so you were not charged. If their payment does not go through, the seat frees up within {}: try again then.",
                key,
                duration(crate::domain::payment::SEAT_HOLD_SECS)
            )),
            UserError::AlreadyPaying { key } => Some(format!(
                "You are already paying for a seat in group <code>{}</code> with another invoice, so this one was not charged. One seat per member.",
                key
            )),
            UserError::CheckoutBusy => Some("We could not confirm your seat in time, so nothing was charged. Please press Pay again in a moment.".into()),
            UserError::NotForSale { product } => Some(format!(
                "{} ships to you, and this shop cannot take payments for goods that ship yet (no payment provider is set up), so no invoice was sent and nothing was charged. Please write /paysupport.",
                esc(product)
            )),
            _ => None,
        }
    }

    /// Replies about the chat itself, and the one for anything that went wrong on our side.
    pub(super) fn chat_html(&self) -> String {
        match self {
            UserError::StaleButton => "That button belongs to an old message. Please use /buy again.".into(),
            UserError::PrivateOnly => "Let's do that in private: open a chat with me and send the command there.".into(),
            UserError::SlowDown => "That's a lot of keys I don't know in one minute. Please wait a minute, then check the key with the person who invited you.".into(),
            _ => "Something went wrong on our side. Nothing was charged or lost; please try again in a minute.".into(),
        }
    }

    /// Replies to the organiser's tools on an open group: `/extend`, `/invite`, `/remove`.
    pub(super) fn organiser_html(&self) -> Option<String> {
        match self {
            UserError::Usage(usage) => {
                Some(format!("Please write it as <code>{}</code>.", esc(usage)))
            }
            UserError::ExtendNoExpiry { key } => Some(format!(
                "Group <code>{key}</code> has no expiry, so there is nothing to extend: it stays open until every seat is bought or you send <code>/close {key}</code>."
            )),
            UserError::ExtendPastMaximum { key, latest } => Some(format!(
                "Group <code>{}</code> can stay open until {} at the latest (a year after it opened). Nothing was changed: pick a shorter extension.",
                key,
                when(*latest)
            )),
            UserError::NoSeatsToInvite { key, free, asked } => Some(format!(
                "Group <code>{}</code> has {free} seat(s) nobody is invited to or has bought, and you named {asked}. Nobody was invited: name at most {free}.",
                key
            )),
            UserError::AlreadyInvited { key, member } => Some(format!(
                "{} is already invited to group <code>{}</code>. Nobody was invited: name each new member once.",
                esc(&short(member)),
                key
            )),
            UserError::NotAMember { key, member } => Some(format!(
                "{} is not among the invited members of group <code>{}</code>. Nothing was changed.",
                esc(&short(member)),
                key
            )),
            UserError::MemberBought { key, member } => Some(format!(
                "{} has already bought in group <code>{}</code>, so they stay. Nothing was changed.",
                esc(&short(member)),
                key
            )),
            UserError::StillOpen { key } => Some(format!(
                "Group <code>{}</code> is still open: it can be bought again once it has settled or expired. To give it more time or people, use /extend or /invite.",
                key
            )),
            UserError::AlreadyRegrouped { key, again } => Some(format!(
                "Group <code>{}</code> is already being bought again as group <code>{}</code>, which is still open. Nothing new was opened.",
                key, again
            )),
            UserError::MemberPaying { key, member } => Some(format!(
                "{} is paying for a seat in group <code>{}</code> right now, so they cannot be removed. Nothing was changed.",
                esc(&short(member)),
                key
            )),
            _ => None,
        }
    }
}

/// A policy in the organiser's words.
pub(crate) fn policy_words(p: crate::domain::Policy) -> &'static str {
    match p {
        crate::domain::Policy::AllOrNothing => "all or nothing, no discount unless the group fills",
        crate::domain::Policy::Partial => {
            "partial, an unfilled group gets the tier of the buyers it has"
        }
    }
}

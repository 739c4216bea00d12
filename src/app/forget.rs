//! People can leave: `/forgetme` and `groupbuy forget USER_ID|EMAIL` erase a person's name,
//! username, email and addresses everywhere (users, invitations, shipping requests, outbox,
//! inbox) in one transaction. Purchases, the ledger and refunds keep their amounts against
//! the bare numeric Telegram id, so the books still balance and points still owed stay owed.
//! A forgotten email address goes on the suppression list (as its keyed hash), so no
//! invitation recreates what was erased.

use super::{AppResult, Ctx};
use crate::domain::UserId;
use crate::domain::email::EmailAddress;
use crate::secrets::Purpose;
use crate::store::forget::{self, Erased};
use crate::store::{Conn, mailing};

/// Who is to be forgotten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whom {
    User(i64),
    Email(EmailAddress),
}

impl Whom {
    /// A numeric Telegram user id, or an email address.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if let Ok(id) = raw.parse::<i64>() {
            return (id > 0).then_some(Whom::User(id));
        }
        EmailAddress::parse(raw).ok().map(Whom::Email)
    }
}

/// `/forgetme`: erases the sender, and the raw update that asked (it carries their name).
pub async fn forget_me(ctx: &Ctx, user_id: UserId, update_id: i64) -> AppResult<Erased> {
    let erased = forget(ctx, &Whom::User(user_id.get())).await?;
    let mut tx = ctx.store.write().await?;
    forget::blank_update(&mut tx, update_id).await?;
    tx.commit().await?;
    Ok(erased)
}

/// Erases `whom` everywhere; what was touched, for the operator.
pub async fn forget(ctx: &Ctx, whom: &Whom) -> AppResult<Erased> {
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let mut total = Erased::default();
    let mut emails = Vec::new();
    let users = match whom {
        Whom::User(id) => vec![*id],
        Whom::Email(e) => {
            emails.push(e.as_str().to_string());
            forget::users_with_email(&mut tx, e.as_str()).await?
        }
    };
    for id in users {
        let (erased, email) = forget::user(&mut tx, id, now).await?;
        total.add(&erased);
        emails.extend(email);
    }
    for email in &emails {
        total.add(&forget::email(&mut tx, email).await?);
        suppress(&mut tx, ctx, email, now).await?;
    }
    tx.commit().await?;
    let user = match whom {
        Whom::User(id) => Some(*id),
        Whom::Email(_) => None,
    };
    tracing::info!(user, ?total, "a person was forgotten");
    Ok(total)
}

async fn suppress(conn: &mut Conn, ctx: &Ctx, email: &str, now: i64) -> AppResult<()> {
    let hash = ctx
        .secrets
        .hash(Purpose::Unsubscribe, &email.to_lowercase());
    mailing::suppress(conn, &hash, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whom_is_an_id_or_an_address() {
        assert_eq!(Whom::parse(" 1002 "), Some(Whom::User(1002)));
        assert_eq!(Whom::parse("0"), None);
        assert_eq!(Whom::parse("-5"), None);
        assert!(
            matches!(Whom::parse("Carol@Example.com"), Some(Whom::Email(e)) if e.as_str() == "carol@example.com")
        );
        assert_eq!(Whom::parse("carol"), None);
        assert_eq!(Whom::parse(""), None);
    }
}

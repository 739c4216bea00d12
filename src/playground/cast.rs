//! Who plays: the organiser and members of scenario (a) of the README, each a Telegram user
//! with a private chat with the bot, and anyone added with "add a person".

use bot_api_emulator::TgUser;
use serde::Serialize;

/// One person at the table: a Telegram account and, for those invited by email, an address.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub id: i64,
    pub name: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub role: &'static str,
    /// What their payment form is filled in with.
    pub address: Address,
}

#[derive(Debug, Clone, Serialize)]
pub struct Address {
    pub country_code: String,
    pub state: String,
    pub city: String,
    pub street_line1: String,
    pub post_code: String,
}

impl Person {
    /// The person as the emulator's Telegram user, with their username if they have one.
    pub fn user(&self) -> TgUser {
        let user = TgUser::new(self.id, &self.name);
        match &self.username {
            Some(u) => user.with_username(u),
            None => user,
        }
    }
}

impl Address {}

fn address(state: &str, city: &str, street: &str, post_code: &str) -> Address {
    Address {
        country_code: "JP".into(),
        state: state.into(),
        city: city.into(),
        street_line1: street.into(),
        post_code: post_code.into(),
    }
}

/// Bob organises; Alice has a username, Dave is known by his numeric id, Carol only by email.
pub fn starting_cast() -> Vec<Person> {
    vec![
        Person {
            id: 1001,
            name: "Bob".into(),
            username: Some("bob".into()),
            email: None,
            role: "organiser",
            address: address("Tokyo", "Chiyoda", "1-1 Marunouchi", "100-0005"),
        },
        Person {
            id: 1002,
            name: "Alice".into(),
            username: Some("alice".into()),
            email: None,
            role: "member",
            address: address("Tokyo", "Tokyo", "2-3 Shibuya", "100-0001"),
        },
        Person {
            id: 1_234_567,
            name: "Dave".into(),
            username: None,
            email: None,
            role: "member",
            address: address("Osaka", "Osaka", "4-5 Umeda", "530-0001"),
        },
        Person {
            id: 1004,
            name: "Carol".into(),
            username: Some("carol_k".into()),
            email: Some("carol@example.com".into()),
            role: "member",
            address: address("Hokkaido", "Sapporo", "6-7 Odori", "060-0001"),
        },
    ]
}

/// Someone new at the table: the next free id; a username from the name when it makes one.
pub fn newcomer(cast: &[Person], name: &str) -> Person {
    let id = cast
        .iter()
        .map(|p| p.id)
        .filter(|id| *id < 1_000_000)
        .max()
        .unwrap_or(1000)
        + 1;
    let username: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    let taken = cast
        .iter()
        .any(|p| p.username.as_deref() == Some(&username));
    Person {
        id,
        name: name.to_string(),
        username: (username.len() >= 5 && !taken).then_some(username),
        email: None,
        role: "member",
        address: address("Kanagawa", "Yokohama", "8-9 Minatomirai", "220-0012"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newcomers_get_fresh_ids_and_only_valid_usernames() {
        let cast = starting_cast();
        let erin = newcomer(&cast, "Erin");
        assert_eq!(erin.id, 1005);
        assert_eq!(
            erin.username, None,
            "Telegram usernames have at least 5 characters"
        );
        let frank = newcomer(&cast, "Frankie <b>");
        assert_eq!(frank.username.as_deref(), Some("frankieb"));
        let alice2 = newcomer(&cast, "carol_k");
        assert_eq!(alice2.username, None, "usernames are unique");
    }
}

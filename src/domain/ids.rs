//! Identifiers of stored things, one type each, so a buyer's id can never be passed where a
//! group's is expected. They carry no rules: the store hands them out and takes them back.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize,
            serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// Wraps a raw id as read from the store or from Telegram.
            pub const fn new(raw: i64) -> Self {
                Self(raw)
            }

            /// The raw id, for binding into SQL or a Bot API call.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// One group purchase's row id (its public identity is the [`super::GroupKey`]).
    GroupId
);
id_type!(
    /// A person, by their Telegram user id.
    UserId
);
id_type!(
    /// One purchase's row id.
    PurchaseId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_print_as_numbers() {
        assert_eq!(GroupId::new(42).get(), 42);
        assert_eq!(UserId::new(-7).to_string(), "-7");
        assert_eq!(
            serde_json::to_string(&PurchaseId::new(9)).ok().as_deref(),
            Some("9")
        );
    }
}

//! Pure business rules of group purchasing: no I/O, no async, no clocks read here.
//!
//! Every value that arrives from outside (a chat, an email, the config file) is parsed once
//! into one of these types, so code further in never re-validates it. Errors are small enums,
//! each mapped to one precise reply by the adapters.

pub mod catalog;
pub mod circle;
pub mod email;
pub mod group;
pub mod group_key;
pub mod ids;
pub mod member;
pub mod money;
pub mod payment;
pub mod region;
pub mod settlement;
pub mod tiers;

pub use catalog::{Product, ProductKind, Sku};
pub use email::EmailAddress;
pub use group::{Expiry, GroupStatus, HeadCount, Policy};
pub use group_key::{GroupKey, InviteCode};
pub use ids::{GroupId, PurchaseId, UserId};
pub use member::MemberRef;
pub use money::{Amount, Currency, Money, Points};
pub use region::RegionCode;
pub use tiers::{Rate, TierTable};

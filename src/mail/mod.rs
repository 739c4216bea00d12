//! Email: askama rendering (pure) and the lettre transport (SMTP, or `.eml` files when no
//! SMTP server is configured).

pub mod render;
pub mod transport;

pub use render::Rendered;
pub use transport::{MailError, Mailer};

//! Who is asking, for the key guard: the peer address the server accepted the connection
//! from (axum's `ConnectInfo`, present when the server was started with
//! `into_make_service_with_connect_info::<SocketAddr>()`).
//!
//! Forwarded-for headers are not read: anyone can write them. Behind a reverse proxy every
//! visitor shares the proxy's address, and so its allowance of unknown keys.

use super::error::WebError;
use crate::app::Ctx;
use crate::app::guard::Client;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::SocketAddr;

/// The key-guard bucket of the request's peer; [`Client::Unknown`] without `ConnectInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Client);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(ClientAddr(
            peer.map_or(Client::Unknown, |ConnectInfo(addr)| Client::ip(addr.ip())),
        ))
    }
}

/// Runs a page's lookup under the key guard: a client with too many misses in the last
/// minute gets 429 before any lookup; a [`WebError::NotFound`] counts as a miss.
pub async fn guarded<T>(
    ctx: &Ctx,
    client: Client,
    lookup: impl Future<Output = Result<T, WebError>>,
) -> Result<T, WebError> {
    let is_miss = |e: &WebError| matches!(e, WebError::NotFound);
    ctx.key_guard
        .check(client, ctx.now(), lookup, is_miss)
        .await?
}

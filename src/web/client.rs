//! Who is asking, for the key guard: the peer address the server accepted the connection
//! from (axum's `ConnectInfo`, present when the server was started with
//! `into_make_service_with_connect_info::<SocketAddr>()`).
//!
//! `X-Forwarded-For` is read only when the peer is one of `trusted_proxies`: anyone can write
//! the header, so from anyone else it is ignored. From a trusted proxy, the visitor is the
//! right-most address in it that is not itself a trusted proxy (what the proxy saw).

use super::error::WebError;
use crate::app::Ctx;
use crate::app::guard::Client;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The key-guard bucket of the request's visitor; [`Client::Unknown`] without `ConnectInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Client);

impl FromRequestParts<Ctx> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientAddr(visitor(
            peer,
            &parts.headers,
            &ctx.config.trusted_proxies,
        )))
    }
}

/// The visitor behind `peer`, trusting `X-Forwarded-For` only from `trusted` proxies.
pub fn visitor(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> Client {
    let Some(peer) = peer else {
        return Client::Unknown;
    };
    let is_trusted = |a: &IpAddr| trusted.iter().any(|t| t.to_canonical() == a.to_canonical());
    if !is_trusted(&peer) {
        return Client::ip(peer);
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(a) if is_trusted(&a) => continue,
            Ok(a) => return Client::ip(a),
            // A hop the proxy did not write sensibly: the chain cannot be followed further.
            Err(_) => return Client::Unknown,
        }
    }
    Client::ip(peer)
}

/// Runs a page's lookup under the key guard: a client over its limit of misses is slowed
/// (answered after a pause, one request at a time) and gets 429 only when it floods; a
/// [`WebError::NotFound`] counts as a miss. Without an address, the key's prefix is the bucket.
pub async fn guarded<T>(
    ctx: &Ctx,
    client: Client,
    key: &str,
    lookup: impl Future<Output = Result<T, WebError>>,
) -> Result<T, WebError> {
    let is_miss = |e: &WebError| matches!(e, WebError::NotFound);
    ctx.key_guard
        .slowed(client.or_key_prefix(key), || ctx.now(), lookup, is_miss)
        .await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).expect("header"));
        h
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        let visitor_ip = ip("203.0.113.9");
        // Not trusted: the header is anyone's to write and is ignored.
        assert_eq!(
            visitor(Some(proxy), &xff("203.0.113.9"), &[]),
            Client::ip(proxy)
        );
        // Trusted: the right-most address that is not a proxy of ours.
        assert_eq!(
            visitor(
                Some(proxy),
                &xff("1.2.3.4, 203.0.113.9, 10.0.0.1"),
                &[proxy]
            ),
            Client::ip(visitor_ip)
        );
        assert_eq!(
            visitor(Some(proxy), &HeaderMap::new(), &[proxy]),
            Client::ip(proxy)
        );
        assert_eq!(
            visitor(Some(proxy), &xff("garbage"), &[proxy]),
            Client::Unknown
        );
        assert_eq!(
            visitor(None, &xff("203.0.113.9"), &[proxy]),
            Client::Unknown
        );
        let mapped = ip("::ffff:10.0.0.1");
        assert_eq!(
            visitor(Some(mapped), &xff("203.0.113.9"), &[proxy]),
            Client::ip(visitor_ip)
        );
    }
}

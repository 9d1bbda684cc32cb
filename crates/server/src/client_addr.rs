//! The client address of a request, as the API's handlers take it (the rules are in
//! [`latchkey_proto::forwarded`]).

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
pub use latchkey_proto::forwarded::{TrustedProxies, UNKNOWN_CLIENT};
use std::net::{IpAddr, SocketAddr};

/// The client address of a request; `None` only where there is no connection (router tests).
pub fn client_ip(parts: &Parts, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(trusted.client(peer, &parts.headers))
}

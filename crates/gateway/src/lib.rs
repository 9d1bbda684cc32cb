//! `latchkey gateway` as a library (SPEC §10.4): a reverse proxy in front of an existing HTTP
//! API. Every request is asked of a [`latchkey_tower::Gate`] (the route table and the
//! verification every front door shares); a request let through goes on to the upstream with
//! the §10.1 identity headers, without the client's credential (unless its route says
//! `keep_credentials`) and without anything a client forged under `X-Latchkey-*`.
//!
//! Bodies are streams both ways (an upload or a download of any size goes through in constant
//! memory), upstream connections are pooled (hyper-util's client), WebSocket and other
//! upgrades are joined byte for byte, CORS preflights are answered here, and an upstream that
//! refuses or does not answer in time is a 502 or 504 problem+json. An `https://` upstream is
//! spoken to over rustls (HTTP/2 when it offers it), its certificate checked against the
//! system's roots and an optional private CA ([`UpstreamTrust`]).

mod cors;
mod hop;
mod problem;
mod proxy;
mod server;
mod tls;
mod upstream;

pub use proxy::{Gateway, GatewayOptions};
pub use server::serve;
pub use tls::{TrustError, UpstreamTrust};
pub use upstream::{UpstreamError, UpstreamUrl};

/// The body of every answer: the upstream's stream, or a problem of our own.
pub type Body = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;

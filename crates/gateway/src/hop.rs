//! Headers meant for one connection, not for the next hop (RFC 9110 §7.6.1), and the
//! `X-Forwarded-*` headers that tell the upstream where a request came from.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

/// Always connection-specific; `Proxy-Authorization` is a credential for this proxy, never for
/// the upstream.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes the hop-by-hop headers, and those the `Connection` header names. Returns the
/// `Upgrade` protocol when the message asks to switch protocols (`Connection: upgrade` with an
/// `Upgrade` header), so a pass-through upgrade can put it back with [`keep_upgrade`].
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> Option<HeaderValue> {
    let mut upgrade = false;
    let mut named = vec![];
    for value in headers.get_all(header::CONNECTION) {
        for token in value.to_str().unwrap_or_default().split(',') {
            let token = token.trim();
            if token.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
            } else if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    let protocol = if upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    protocol
}

/// Whether an `Upgrade` offers HTTP/2 in clear (`h2c`). Such an upgrade is never passed on:
/// the joined connection would carry further HTTP requests straight to the upstream, past the
/// Gate ("h2c smuggling"). The request goes on without it, as an ordinary one.
pub fn is_h2c(protocol: &HeaderValue) -> bool {
    protocol
        .to_str()
        .unwrap_or_default()
        .split(',')
        .any(|p| p.trim().eq_ignore_ascii_case("h2c"))
}

/// `Connection: upgrade` and `Upgrade: protocol`, the two hop-by-hop headers an upgrade that
/// passes through must carry on.
pub fn keep_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Where the request came from. From a trusted proxy (`[proxy] trusted`), its
/// `X-Forwarded-*` are kept and the proxy's own address is appended to `X-Forwarded-For`;
/// from anyone else they are replaced, so what a client claims never reaches the upstream as
/// if the gateway had said it. `host` is the `Host` the client asked for.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    peer_is_trusted: bool,
    host: Option<HeaderValue>,
) {
    let peer_text = peer.to_string();
    let chain = if peer_is_trusted {
        let before: Vec<&[u8]> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        let mut line = before.join(&b", "[..]);
        if !line.is_empty() {
            line.extend_from_slice(b", ");
        }
        line.extend_from_slice(peer_text.as_bytes());
        HeaderValue::from_bytes(&line).ok()
    } else {
        None
    };
    let chain = chain.unwrap_or_else(|| HeaderValue::from_str(&peer_text).expect("an address"));
    headers.insert(X_FORWARDED_FOR, chain);
    if !(peer_is_trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
        // The gateway itself serves plain HTTP; a TLS terminator in front says `https`.
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if !(peer_is_trusted && headers.contains_key(&X_FORWARDED_HOST)) {
        match host {
            Some(h) => headers.insert(X_FORWARDED_HOST, h),
            None => headers.remove(X_FORWARDED_HOST),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_go() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic eA=="),
            ("upgrade", "websocket"),
            ("accept", "*/*"),
        ]);
        assert_eq!(strip_hop_by_hop(&mut h), None, "no `upgrade` token");
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn an_upgrade_is_reported_so_it_can_pass_through() {
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        let protocol = strip_hop_by_hop(&mut h).expect("an upgrade");
        assert!(h.is_empty());
        keep_upgrade(&mut h, protocol);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
    }

    #[test]
    fn an_h2c_upgrade_is_told_apart() {
        for p in ["h2c", "H2C", "websocket, h2c"] {
            assert!(is_h2c(&HeaderValue::from_static(p)), "{p}");
        }
        assert!(!is_h2c(&HeaderValue::from_static("websocket")));
    }

    #[test]
    fn forwarded_headers_from_a_client_are_replaced_from_a_proxy_extended() {
        let peer: IpAddr = "203.0.113.7".parse().unwrap();
        let mut h = map(&[
            ("x-forwarded-for", "10.9.9.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "forged.example"),
        ]);
        set_forwarded(
            &mut h,
            peer,
            false,
            Some(HeaderValue::from_static("api.example")),
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example");

        let mut h = map(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "192.0.2.1"),
            ("x-forwarded-proto", "https"),
        ]);
        set_forwarded(
            &mut h,
            "127.0.0.1".parse().unwrap(),
            true,
            Some(HeaderValue::from_static("api.example")),
        );
        assert_eq!(h["x-forwarded-for"], "198.51.100.1, 192.0.2.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "api.example");
    }
}

//! Who the client of a request is, behind proxies: the one answer that authentication
//! (`allowed_ips`), the audit log, the throttles, forward auth and the gateway all use, so a
//! proxy in front changes all of them alike.

use http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The proxies whose `X-Forwarded-For` is believed (`[proxy] trusted`).
#[derive(Debug, Clone)]
pub struct TrustedProxies(Vec<IpNet>);

/// A header longer than this many hops is a client's invention, not a chain of proxies; the
/// walk stops there rather than parse whatever fits in the header limit.
const MAX_HOPS: usize = 32;

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    /// Whether `ip` is one of the trusted proxies (a front door appending to their
    /// `X-Forwarded-For` keeps their chain).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The peer itself unless it is a trusted proxy; then the right-most `X-Forwarded-For`
    /// entry that is not a trusted proxy. Each proxy appends the address it received the
    /// request from, so entries to the left of the first untrusted one are whatever the client
    /// chose to send and are never believed. Each entry is read on its own, so bytes a client
    /// put in its part of the header (nginx's `$proxy_add_x_forwarded_for` keeps them on the
    /// same line) cannot spoil the entries the proxies added. An entry that is not an address,
    /// where a trusted proxy should have written one, makes the client unknown
    /// ([`UNKNOWN_CLIENT`]), never the proxy itself: a proxy's address may be allow-listed and
    /// is shared by everyone behind it.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|v| v.as_bytes().rsplit(|&b| b == b','))
            .take(MAX_HOPS);
        for hop in hops {
            match std::str::from_utf8(hop).ok().and_then(parse_hop) {
                Some(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                None => return UNKNOWN_CLIENT,
            }
        }
        client
    }
}

/// The client of a request whose trusted proxies forwarded something that is not an address:
/// matches no allow-list entry but `0.0.0.0/0`, and has a throttle allowance of its own.
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// `192.0.2.1`, `2001:db8::1`, or with a port as some proxies write it (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// nginx's `$proxy_add_x_forwarded_for` appends the real address to whatever the client
    /// sent, on one line; bytes that are not visible ASCII there must not hide it.
    #[test]
    fn a_clients_non_ascii_bytes_cannot_hide_the_address_its_proxy_added() {
        let t = trusted(&["10.0.0.0/8"]);
        for junk in [&b"\xc3\xa9"[..], b"\xff\xfe", b"caf\xc3\xa9, 192.0.2.66"] {
            let mut line = junk.to_vec();
            line.extend_from_slice(b", 203.0.113.9");
            let mut h = HeaderMap::new();
            h.append("x-forwarded-for", HeaderValue::from_bytes(&line).unwrap());
            assert_eq!(t.client(ip("10.0.0.2"), &h), ip("203.0.113.9"), "{line:?}");
        }
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"203.0.113.9, \xff").unwrap(),
        );
        assert_eq!(t.client(ip("10.0.0.2"), &h), UNKNOWN_CLIENT);
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let t = trusted(&["10.0.0.0/8"]);
        assert_eq!(
            t.client(ip("203.0.113.1"), &xff(&["198.51.100.1"])),
            ip("203.0.113.1")
        );
        assert_eq!(
            trusted(&[]).client(ip("127.0.0.1"), &xff(&["198.51.100.1"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_entry_is_the_client() {
        let t = trusted(&["10.0.0.0/8", "127.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        assert_eq!(t.client(peer, &HeaderMap::new()), peer, "no header");
        assert_eq!(t.client(peer, &xff(&["198.51.100.1"])), ip("198.51.100.1"));
        assert_eq!(
            t.client(peer, &xff(&["192.0.2.66, 198.51.100.1, 10.0.0.9"])),
            ip("198.51.100.1"),
            "the spoofed left-most entry is ignored"
        );
        assert_eq!(
            t.client(peer, &xff(&["192.0.2.66", "198.51.100.1,10.0.0.9"])),
            ip("198.51.100.1"),
            "several header lines are one list, in order"
        );
        assert_eq!(
            t.client(peer, &xff(&["10.0.0.7, 10.0.0.8"])),
            ip("10.0.0.7"),
            "all trusted: the farthest one"
        );
        assert_eq!(
            t.client(peer, &xff(&["198.51.100.1, garbage, 10.0.0.9"])),
            UNKNOWN_CLIENT,
            "a non-address where a trusted proxy should have written one: unknown, not the proxy"
        );
        assert_eq!(
            t.client(peer, &xff(&["garbage, 198.51.100.1, 10.0.0.9"])),
            ip("198.51.100.1"),
            "the client's own garbage, left of the real address, changes nothing"
        );
        assert_eq!(
            t.client(peer, &xff(&["[2001:db8::1]:4711", "198.51.100.1:80"])),
            ip("198.51.100.1")
        );
        assert_eq!(
            t.client(ip("::ffff:10.0.0.2"), &xff(&["::ffff:198.51.100.1"])),
            ip("198.51.100.1"),
            "IPv4-mapped addresses are IPv4"
        );
    }
}

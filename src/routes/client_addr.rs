//! The client's address. Behind a load balancer every connection comes from the balancer, and
//! the client is the address the balancer appended to `X-Forwarded-For`. That header is believed
//! only from peers in `LATCHKEY_TRUSTED_PROXIES`: anyone else can write anything there.
//!
//! The audit log, the sign-in throttle and the OAuth token endpoint's IP allowlist check all
//! read the address from here.

use std::net::{IpAddr, SocketAddr};

use actix_web::{HttpRequest, web};

use crate::domain::inputs::IpAllowlist;
use crate::routes::state::AppState;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Networks whose connections are proxies that append the address they saw to
/// `X-Forwarded-For` (nginx: `proxy_add_x_forwarded_for`). Empty: no one is trusted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(IpAllowlist);

impl TrustedProxies {
    /// From a comma-separated list of addresses and CIDRs (`10.0.0.0/8, 192.0.2.7`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let entries: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        IpAllowlist::parse(&entries).map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        !self.0.is_empty() && self.0.allows(ip)
    }

    /// The client behind `peer`, given the raw `X-Forwarded-For` headers in the order
    /// received. The chain is read from the right, the hop nearest to us: each trusted proxy
    /// vouches for the entry to its left, and the first address that is not a trusted proxy is
    /// the client. An entry that is not an address ends the walk at the last trusted hop.
    /// Entries are read one by one from the raw bytes, so whatever a client puts to the left
    /// (even bytes that are not text) cannot hide the address its proxy appended. IPv4 clients
    /// seen as IPv4-mapped IPv6 addresses are answered as IPv4.
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a [u8]>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let entries: Vec<&[u8]> = forwarded_for
            .flat_map(|value| value.split(|b| *b == b','))
            .collect();
        let mut client = peer;
        for entry in entries.into_iter().rev() {
            let Some(ip) = parse_entry(entry) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, perhaps with a port (`192.0.2.7:5123`, `[2001:db8::1]:80`).
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry).ok()?.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The address of the client that made `req` (see [`TrustedProxies::client`]).
pub fn of(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Some(peer);
    };
    let forwarded_for = req
        .headers()
        .get_all(X_FORWARDED_FOR)
        .map(|value| value.as_bytes());
    Some(state.trusted_proxies.client(peer, forwarded_for))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(trusted: &str, peer: &str, headers: &[&str]) -> IpAddr {
        TrustedProxies::parse(trusted)
            .unwrap()
            .client(ip(peer), headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn the_header_of_an_untrusted_peer_is_ignored() {
        assert_eq!(
            client("", "198.51.100.1", &["203.0.113.7"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client("10.0.0.0/8", "198.51.100.1", &["203.0.113.7"]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        assert_eq!(
            client("10.0.0.5", "10.0.0.5", &["203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Whatever the client wrote itself stays to the left of what the proxy appended.
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.5", &["1.2.3.4, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Two proxies, and the header split over two lines.
        assert_eq!(
            client(
                "10.0.0.0/8",
                "10.0.0.5",
                &["1.2.3.4, 203.0.113.7", "10.0.0.9"]
            ),
            ip("203.0.113.7")
        );
        assert_eq!(
            client(
                "10.0.0.0/8",
                "10.0.0.5",
                &["[2001:db8::1]:443, 10.0.0.9:80"]
            ),
            ip("2001:db8::1")
        );
        // IPv4 peers seen through an IPv6 socket.
        assert_eq!(
            client("10.0.0.0/8", "::ffff:10.0.0.5", &["203.0.113.7"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn a_chain_of_trusted_hops_or_garbage_stops_at_the_last_address_vouched_for() {
        assert_eq!(client("10.0.0.0/8", "10.0.0.5", &[]), ip("10.0.0.5"));
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.5", &["10.0.0.9"]),
            ip("10.0.0.9")
        );
        assert_eq!(
            client(
                "10.0.0.0/8",
                "10.0.0.5",
                &["203.0.113.7, unknown, 10.0.0.9"]
            ),
            ip("10.0.0.9")
        );
        assert_eq!(client("10.0.0.0/8", "10.0.0.5", &[""]), ip("10.0.0.5"));
    }

    #[test]
    fn bytes_a_client_adds_cannot_hide_the_address_its_proxy_appended() {
        // nginx appends to the client's own header line: `<what the client sent>, <its address>`.
        let line: &[u8] = b"\xff\xfe, 203.0.113.7";
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            trusted.client(ip("10.0.0.5"), [line].into_iter()),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_answered_as_ipv4() {
        assert_eq!(client("", "::ffff:198.51.100.1", &[]), ip("198.51.100.1"));
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.5", &["::ffff:203.0.113.7"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn parse_names_the_bad_entry() {
        assert_eq!(
            TrustedProxies::parse(" , ").unwrap(),
            TrustedProxies::default()
        );
        let err = TrustedProxies::parse("10.0.0.0/8, nginx").unwrap_err();
        assert!(err.contains("entry 1"), "{err}");
    }
}

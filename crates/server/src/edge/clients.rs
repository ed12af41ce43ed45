//! Who a client is: the address a connection comes from, counted against
//! the per-client cap, and, behind a trusted proxy, the address the proxy
//! says it forwarded for. A forwarding header is believed only as far as
//! the chain of trusted proxies reaches: anyone can send one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client's address, as a request extension for handlers and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Which header a trusted proxy names the client in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, ...` (nginx, HAProxy, most
    /// load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239's `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// The proxies in front of the server whose forwarding header is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// From addresses or CIDR ranges (`10.0.0.0/8`, `127.0.0.1`, `::1`).
    pub fn parse(list: &[String], header: ForwardedHeader) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.iter().flat_map(|s| s.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let net = IpNet::from_str(item)
                .or_else(|_| IpAddr::from_str(item).map(IpNet::from))
                .map_err(|_| {
                    format!("`{item}` is not an IP address or CIDR range (e.g. 10.0.0.0/8)")
                })?;
            nets.push(net);
        }
        Ok(Self { nets, header })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        // IPv4 seen through an IPv6 socket (`::ffff:1.2.3.4`) as IPv4.
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer`: `peer` itself
    /// unless it is a trusted proxy; then, reading the forwarding header
    /// from the nearest hop back, the first address that is not a trusted
    /// proxy. An entry that is not an address (`unknown`, an obfuscated
    /// name, garbage) ends the walk at the hop that wrote it.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => header_list(headers, "x-forwarded-for"),
            ForwardedHeader::Forwarded => header_list(headers, "forwarded")
                .into_iter()
                .filter_map(|element| forwarded_for(&element))
                .collect(),
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_node(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// The comma-separated entries of every `name` header, in order.
fn header_list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .collect()
}

/// The `for=` of one `Forwarded` element (`for=1.2.3.4;proto=https`).
fn forwarded_for(element: &str) -> Option<String> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `::1`,
/// `[::1]` or `[::1]:5678`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(node) {
        return Some(ip.to_canonical());
    }
    let host = match node.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => node.rsplit_once(':')?.0,
    };
    IpAddr::from_str(host).ok().map(|ip| ip.to_canonical())
}

/// Open connections per client address, for the per-client cap.
#[derive(Clone, Default)]
pub struct ClientCounts(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl ClientCounts {
    /// One of `ip`'s connections, or `None` if it holds `max` already.
    pub fn take(&self, ip: IpAddr, max: usize) -> Option<ClientSeat> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ClientSeat {
            counts: self.clone(),
            ip,
        })
    }
}

/// One of a client address's connections, given back when dropped.
pub struct ClientSeat {
    counts: ClientCounts,
    ip: IpAddr,
}

impl Drop for ClientSeat {
    fn drop(&mut self) {
        let mut open = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_forwarding_header_from_an_untrusted_peer_is_ignored() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into()], Default::default()).unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            proxies.client_addr(ip("198.51.100.1"), &h),
            ip("198.51.100.1")
        );
        let none = TrustedProxies::default();
        assert_eq!(none.client_addr(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let proxies =
            TrustedProxies::parse(&["10.0.0.0/8, 127.0.0.1".into()], Default::default()).unwrap();
        // The client forged the first entry; the proxy appended the real one.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.7")]);
        assert_eq!(proxies.client_addr(ip("127.0.0.1"), &h), ip("203.0.113.9"));
        // Two header lines read as one list.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9:4321"),
        ]);
        assert_eq!(proxies.client_addr(ip("10.1.2.3"), &h), ip("203.0.113.9"));
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_addr(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        // Garbage stops the walk at the hop that wrote it.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, nonsense, 10.0.0.7")]);
        assert_eq!(proxies.client_addr(ip("127.0.0.1"), &h), ip("10.0.0.7"));
        // Only trusted hops: the farthest one.
        let h = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.7")]);
        assert_eq!(proxies.client_addr(ip("127.0.0.1"), &h), ip("10.0.0.9"));
    }

    #[test]
    fn forwarded_header_when_chosen() {
        let proxies = TrustedProxies::parse(&["::1".into()], ForwardedHeader::Forwarded).unwrap();
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            (
                "forwarded",
                "for=192.0.2.60;proto=http, For=\"[2001:db8:cafe::17]:4711\"",
            ),
        ]);
        assert_eq!(proxies.client_addr(ip("::1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(proxies.client_addr(ip("::1"), &h), ip("::1"));
    }

    #[test]
    fn mapped_ipv4_is_ipv4_and_bad_lists_are_refused() {
        let proxies = TrustedProxies::parse(&["127.0.0.1".into()], Default::default()).unwrap();
        assert!(proxies.trusts(ip("::ffff:127.0.0.1")));
        let err = TrustedProxies::parse(&["10.0.0.0/33".into()], Default::default()).unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
    }

    #[test]
    fn per_client_seats_are_given_back() {
        let counts = ClientCounts::default();
        let a = counts.take(ip("10.0.0.1"), 1).unwrap();
        assert!(counts.take(ip("10.0.0.1"), 1).is_none());
        assert!(counts.take(ip("10.0.0.2"), 1).is_some());
        drop(a);
        assert!(counts.take(ip("10.0.0.1"), 1).is_some());
        assert!(counts.0.lock().unwrap().is_empty());
    }
}

//! Which addresses a val may reach. After DNS resolution, and again at
//! every redirect, anything that is not a public unicast address is
//! refused: loopback, private, link-local (cloud metadata lives there),
//! unique-local, multicast, unspecified, reserved, and the IPv6 forms that
//! embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by
//! that address. An operator may allow ranges explicitly.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Ranges the operator allows even though they are not public.
    pub allow: Vec<IpNet>,
    /// Names resolved to fixed addresses instead of asking DNS.
    pub resolve: HashMap<String, IpAddr>,
}

impl Policy {
    /// `Err` names why `ip` may not be reached.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match forbidden(ip) {
            Some(why) => Err(format!("{ip} is {why}")),
            None => Ok(()),
        }
    }
}

/// Why `ip` is not a public unicast address, or `None` when it is.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "an unspecified (\"this network\") address"),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([10, 0, 0, 0], 8, "a private address"),
        ([172, 16, 0, 0], 12, "a private address"),
        ([192, 168, 0, 0], 16, "a private address"),
        (
            [169, 254, 0, 0],
            16,
            "a link-local address (cloud metadata lives there)",
        ),
        ([100, 64, 0, 0], 10, "a shared (carrier-grade NAT) address"),
        ([192, 0, 0, 0], 24, "an IETF protocol address"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([192, 88, 99, 0], 24, "a 6to4 relay anycast address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([240, 0, 0, 0], 4, "a reserved or broadcast address"),
    ];
    RANGES
        .iter()
        .find(|(net, bits, _)| in_v4(ip, *net, *bits))
        .map(|(_, _, why)| *why)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // Forms that carry an IPv4 address are judged by it.
    let embedded = match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some((hi, lo)), // IPv4-mapped
        [0, 0, 0, 0, 0, 0, hi, lo] => Some((hi, lo)),      // IPv4-compatible
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some((hi, lo)), // NAT64
        [0x2002, hi, lo, ..] => Some((hi, lo)),            // 6to4
        _ => None,
    };
    if let Some((hi, lo)) = embedded {
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return forbidden_v4(v4);
    }
    const RANGES: &[(Ipv6Addr, u32, &str)] = &[
        (v6(0xfe80, 0, 0), 10, "a link-local address"),
        (v6(0xfec0, 0, 0), 10, "a site-local address"),
        (v6(0xfc00, 0, 0), 7, "a unique-local address"),
        (v6(0xff00, 0, 0), 8, "a multicast address"),
        (v6(0x2001, 0, 0), 32, "a Teredo address"),
        (v6(0x2001, 0x0db8, 0), 32, "a documentation address"),
        (v6(0x2001, 0x0002, 0), 48, "a benchmarking address"),
        (v6(0x2001, 0x0010, 0), 28, "an ORCHID address"),
        (v6(0x2001, 0x0020, 0), 28, "an ORCHIDv2 address"),
        (v6(0x0064, 0xff9b, 1), 48, "a local-use NAT64 address"),
        (v6(0x0100, 0, 0), 64, "a discard-only address"),
    ];
    let bits = u128::from(ip);
    RANGES
        .iter()
        .find(|(net, len, _)| {
            let mask = u128::MAX << (128 - len);
            bits & mask == u128::from(*net) & mask
        })
        .map(|(_, _, why)| *why)
}

/// A prefix from its first three segments.
const fn v6(a: u16, b: u16, c: u16) -> Ipv6Addr {
    Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0)
}

/// Resolves names for the fetch client, refusing forbidden addresses.
pub struct PolicyResolver(pub Arc<Policy>);

/// Why a name gave no address to connect to; found again in the error
/// chain so the val is told which.
#[derive(Debug)]
pub enum ResolveError {
    /// It resolves only to addresses the policy forbids.
    Refused(String),
    /// DNS has no address for it (or could not be asked).
    Unresolved(String),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Refused(why) | ResolveError::Unresolved(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ResolveError {}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Not boxed here: `?` boxes it once, so it can be downcast.
            let unresolved = |why: String| {
                ResolveError::Unresolved(format!("`{host}` could not be resolved: {why}"))
            };
            let addrs: Vec<SocketAddr> = match policy.resolve.get(&host) {
                Some(ip) => vec![SocketAddr::new(*ip, 0)],
                None => tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map_err(|e| unresolved(e.to_string()))?
                    .collect(),
            };
            if addrs.is_empty() {
                return Err(unresolved("no address".into()).into());
            }
            let mut refusals = Vec::new();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refusals.push(why);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refusals.join(", ");
                return Err(
                    Box::new(ResolveError::Refused(format!("`{host}` resolves to {why}"))) as _,
                );
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        forbidden(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn refuses_every_non_public_form() {
        for ip in [
            "127.0.0.1",
            "127.0.0.2",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "198.18.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::",
            "2001::1",
            "2001:db8::1",
            "192.88.99.1",
            "198.19.255.255",
            "::ffff:192.88.99.1",
            "2002:c058:6301::",
            "64:ff9b:1::8.8.8.8",
            "64:ff9b:1:ffff::1",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
            "2001:10::1",
            "2001:1f:ffff::1",
            "2001:20::1",
            "2001:2f:ffff::1",
            "2001:2::1",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::",
            "192.88.100.1",
            "198.20.0.1",
            "64:ff9b:2::1",
            "100:0:0:1::1",
            "2001:30::1",
            "2001:3::1",
        ] {
            assert!(!refused(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn the_operator_can_allow_a_range() {
        let policy = Policy {
            allow: vec!["127.0.0.1/32".parse().unwrap()],
            ..Policy::default()
        };
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        let err = policy.check("127.0.0.2".parse().unwrap()).unwrap_err();
        assert!(err.contains("loopback"));
    }
}

//! Who the client is: the socket peer, or, when that peer is a trusted
//! proxy, the address it names in `X-Forwarded-For` or `Forwarded` (RFC
//! 7239), read from the right through at most `trusted_depth` hops. Trust is
//! decided on the socket peer only; a hop that does not parse ends the walk
//! and is reported (a finding), never believed.

use std::net::IpAddr;

use hyper::HeaderMap;
use ipnet::IpNet;

use super::config::ClientHeader;

/// The client as the proxy resolved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The address strikes and limits count against.
    pub addr: IpAddr,
    /// Whether the socket peer is a trusted proxy.
    pub peer_trusted: bool,
    /// A forwarding header from a trusted peer held a hop that does not
    /// parse.
    pub malformed: bool,
}

/// One `for=` value of a `Forwarded` element: `192.0.2.1`, `"[2001:db8::1]:80"`,
/// `192.0.2.1:8080`; `unknown` and obfuscated names are not addresses.
fn forwarded_for(element: &str) -> Option<Option<IpAddr>> {
    let v = element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })?;
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    let addr = if let Some(rest) = v.strip_prefix('[') {
        rest.split_once(']').and_then(|(a, _)| a.parse().ok())
    } else if let Ok(a) = v.parse::<IpAddr>() {
        Some(a)
    } else {
        v.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(a, _)| a.parse::<std::net::Ipv4Addr>().ok())
            .map(IpAddr::V4)
    };
    Some(addr)
}

/// The hops a header names, left to right; `None` for a hop that is not an
/// address.
fn hops(headers: &HeaderMap, which: ClientHeader) -> Vec<Option<IpAddr>> {
    let name = match which {
        ClientHeader::XForwardedFor => "x-forwarded-for",
        ClientHeader::Forwarded => "forwarded",
    };
    let mut out = Vec::new();
    for v in headers.get_all(name) {
        let Ok(v) = v.to_str() else {
            out.push(None);
            continue;
        };
        for part in v.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match which {
                ClientHeader::XForwardedFor => out.push(part.parse().ok()),
                ClientHeader::Forwarded => match forwarded_for(part) {
                    Some(a) => out.push(a),
                    // An element without for= says nothing of the client.
                    None => out.push(None),
                },
            }
            if out.len() > 64 {
                return out;
            }
        }
    }
    out
}

/// Resolves the client of a request that came from socket peer `peer`.
pub fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    depth: usize,
    which: ClientHeader,
) -> Client {
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    let peer_trusted = is_trusted(&peer);
    let mut c = Client {
        addr: peer,
        peer_trusted,
        malformed: false,
    };
    if !peer_trusted {
        return c;
    }
    let hops = hops(headers, which);
    for (i, hop) in hops.iter().rev().enumerate() {
        let Some(a) = hop else {
            c.malformed = true;
            break;
        };
        c.addr = *a;
        if i + 1 >= depth || !is_trusted(a) {
            break;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const LB: &str = "198.51.100.1";

    fn trusted() -> Vec<IpNet> {
        vec!["198.51.100.0/28".parse().unwrap()]
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let c = resolve(
            ip("203.0.113.9"),
            &h(&[("x-forwarded-for", "192.0.2.1")]),
            &trusted(),
            1,
            ClientHeader::XForwardedFor,
        );
        assert_eq!(c.addr, ip("203.0.113.9"));
        assert!(!c.peer_trusted && !c.malformed);
    }

    #[test]
    fn a_trusted_balancer_names_the_client_on_the_right() {
        // The client forged a first hop; the balancer appended the real one.
        let c = resolve(
            ip(LB),
            &h(&[("x-forwarded-for", "10.9.9.9, 203.0.113.7")]),
            &trusted(),
            1,
            ClientHeader::XForwardedFor,
        );
        assert_eq!(c.addr, ip("203.0.113.7"));
        assert!(c.peer_trusted);
        // Two trusted hops.
        let c = resolve(
            ip(LB),
            &h(&[("x-forwarded-for", "10.9.9.9, 203.0.113.7, 198.51.100.2")]),
            &trusted(),
            2,
            ClientHeader::XForwardedFor,
        );
        assert_eq!(c.addr, ip("203.0.113.7"));
    }

    #[test]
    fn malformed_hops_are_reported_and_not_believed() {
        for bad in [
            "not-an-ip",
            "203.0.113.7, not-an-ip",
            "unknown",
            "1.2.3.4.5",
        ] {
            let c = resolve(
                ip(LB),
                &h(&[("x-forwarded-for", bad)]),
                &trusted(),
                1,
                ClientHeader::XForwardedFor,
            );
            assert_eq!(c.addr, ip(LB), "{bad}");
            assert!(c.malformed, "{bad}");
        }
    }

    #[test]
    fn forwarded_rfc7239() {
        let f = |v: &str| {
            resolve(
                ip(LB),
                &h(&[("forwarded", v)]),
                &trusted(),
                1,
                ClientHeader::Forwarded,
            )
        };
        assert_eq!(
            f("for=192.0.2.60;proto=http;by=203.0.113.43").addr,
            ip("192.0.2.60")
        );
        assert_eq!(
            f("for=192.0.2.1, for=\"[2001:db8:cafe::17]:4711\"").addr,
            ip("2001:db8:cafe::17")
        );
        assert_eq!(f("for=203.0.113.5:8080").addr, ip("203.0.113.5"));
        let c = f("for=unknown");
        assert!(c.malformed && c.addr == ip(LB));
        let c = f("for=_hidden");
        assert!(c.malformed);
    }
}

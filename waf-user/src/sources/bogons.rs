//! Bogons: source addresses that cannot legitimately arrive from the
//! Internet, so a packet from one is spoofed or leaked. Built from the IANA
//! IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and its
//! updates: RFC 8190 and the RFCs named per entry below), keeping the
//! entries whose "Globally Reachable" is False, plus multicast (never a
//! valid source) and, for IPv6, all space outside 2000::/3 (the only block
//! IANA allocates global unicast from).
//!
//! Decisions where the registry is not a plain False:
//! - Globally reachable sub-ranges of a non-global block are **not** bogons
//!   (192.0.0.9/32 and 192.0.0.10/32 in 192.0.0.0/24; the anycast, AMT,
//!   AS112, ORCHIDv2 and DET blocks in 2001::/23).
//! - 64:ff9b::/96, the NAT64 well-known prefix (RFC 6052), is globally
//!   reachable per the registry and is **not** a bogon: a server behind a
//!   stateless translator (SIIT-DC, RFC 7755) sees IPv4 clients from it.
//!   64:ff9b:1::/48 (RFC 8215, local use) is a bogon.
//! - The tunnel prefixes whose reachability the registry gives as N/A are
//!   **not** bogons: 2002::/16 (6to4, RFC 3056), 2001::/32 (Teredo,
//!   RFC 4380) and 192.88.99.0/24 (6to4 relay anycast, deprecated by
//!   RFC 7526 but still in use by remaining relays) carry real if rare
//!   traffic; a CIDR list blocks them where wanted.
//! - 2001:10::/28 (ORCHID, RFC 4843), N/A because deprecated and unused
//!   since RFC 7343 replaced it, is a bogon.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::ranges::Compiler;

/// Whether a registry line adds bogon space or carves a public exception
/// out of a larger bogon block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Bogon,
    Public,
}

use Kind::{Bogon, Public};

/// An IPv4 line of the table: `a.b.c.d/len` and what it is.
const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, kind: Kind) -> (IpNet, Kind) {
    (
        IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)),
        kind,
    )
}

/// An IPv6 line of the table: the eight 16-bit groups, the length and what
/// it is.
const fn v6(segments: [u16; 8], len: u8, kind: Kind) -> (IpNet, Kind) {
    let [a, b, c, d, e, f, g, h] = segments;
    (
        IpNet::V6(Ipv6Net::new_assert(
            Ipv6Addr::new(a, b, c, d, e, f, g, h),
            len,
        )),
        kind,
    )
}

/// The table: each line a network, what it is and (in the comment beside
/// it) its source. Later lines override earlier ones where they overlap. A
/// bad prefix length fails the build (the constructors are `const`).
const TABLE: &[(IpNet, Kind)] = &[
    // ---- IPv4: IANA IPv4 Special-Purpose Address Registry ----
    v4(0, 0, 0, 0, 8, Bogon), // "this network", RFC 791 §3.2 / RFC 1122 §3.2.1.3
    v4(10, 0, 0, 0, 8, Bogon), // private use, RFC 1918
    v4(100, 64, 0, 0, 10, Bogon), // shared address space (CGN), RFC 6598
    v4(127, 0, 0, 0, 8, Bogon), // loopback, RFC 1122 §3.2.1.3
    v4(169, 254, 0, 0, 16, Bogon), // link local, RFC 3927
    v4(172, 16, 0, 0, 12, Bogon), // private use, RFC 1918
    v4(192, 0, 0, 0, 24, Bogon), // IETF protocol assignments, RFC 6890 §2.1
    v4(192, 0, 0, 9, 32, Public), // - Port Control Protocol anycast, RFC 7723: global
    v4(192, 0, 0, 10, 32, Public), // - TURN anycast, RFC 8155: global
    v4(192, 0, 2, 0, 24, Bogon), // documentation TEST-NET-1, RFC 5737
    v4(192, 168, 0, 0, 16, Bogon), // private use, RFC 1918
    v4(198, 18, 0, 0, 15, Bogon), // benchmarking, RFC 2544
    v4(198, 51, 100, 0, 24, Bogon), // documentation TEST-NET-2, RFC 5737
    v4(203, 0, 113, 0, 24, Bogon), // documentation TEST-NET-3, RFC 5737
    v4(224, 0, 0, 0, 4, Bogon), // multicast, RFC 5771: never a source (RFC 1122 §3.2.1.3)
    v4(240, 0, 0, 0, 4, Bogon), // reserved, RFC 1112 §4; with 255.255.255.255 (RFC 919)
    // ---- IPv6: outside 2000::/3 (RFC 4291 §2.4; IANA IPv6 Address Space) ----
    // That takes in ::/128 and ::1/128 (RFC 4291), ::ffff:0:0/96
    // (IPv4-mapped, RFC 4291), 64:ff9b:1::/48 (RFC 8215), 100::/64 (discard,
    // RFC 6666), 100:0:0:1::/64 (dummy, RFC 9780), 5f00::/16 (SRv6 SIDs,
    // RFC 9602), fc00::/7 (unique local, RFC 4193), fe80::/10 (link local,
    // RFC 4291) and ff00::/8 (multicast, RFC 4291), and unallocated space.
    v6([0, 0, 0, 0, 0, 0, 0, 0], 0, Bogon),
    v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, Public), // global unicast
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, Public), // NAT64 well-known prefix, RFC 6052: global
    // ---- IPv6: IANA IPv6 Special-Purpose Address Registry, in 2000::/3 ----
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, Bogon), // IETF protocol assignments, RFC 2928
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, Public), // - Teredo, RFC 4380 (N/A: tunnel, see above)
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, Public), // - PCP anycast, RFC 7723: global
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, Public), // - TURN anycast, RFC 8155: global
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, Public), // - DNS-SD SRP anycast, RFC 9665: global
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, Public), // - AMT, RFC 7450: global
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, Public), // - AS112-v6, RFC 7535: global
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, Public), // - ORCHIDv2, RFC 7343: global
    v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28, Public), // - drone DETs, RFC 9374: global
    // (2001:2::/48 benchmarking, RFC 5180, and 2001:10::/28 ORCHID,
    // RFC 4843, stay bogons.)
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Bogon), // documentation, RFC 3849
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Bogon),     // documentation, RFC 9637
];

/// The bogon prefixes, disjoint and aggregated, IPv4 then IPv6 in address
/// order: what a "drop bogon sources" policy loads.
pub fn bogons() -> Vec<IpNet> {
    let mut c = Compiler::new();
    for &(net, kind) in TABLE {
        // Equal priority: the later line wins (the compiler's tie rule).
        c.add_net(net, 0, kind);
    }
    c.compile()
        .into_iter()
        .filter(|&(_, kind)| kind == Bogon)
        .map(|(net, _)| net)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn is_bogon(list: &[IpNet], ip: &str) -> bool {
        let ip: IpAddr = ip.parse().unwrap();
        list.iter().any(|n| n.contains(&ip))
    }

    #[test]
    fn known_bogons_are_in() {
        let list = bogons();
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.20.30.40",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.0.170",
            "192.0.2.1",
            "192.168.1.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.200",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b:1::1",
            "100::1",
            "100:0:0:1::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "4000::1",
            "2001:2::1",
            "2001:10::1",
            "2001:1::4",
            "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db8::1",
            "3fff::1",
            "3fff:fff::1",
        ] {
            assert!(is_bogon(&list, ip), "{ip} should be a bogon");
        }
    }

    #[test]
    fn public_addresses_and_exceptions_are_out() {
        let list = bogons();
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.0",
            "192.0.0.9",
            "192.0.0.10",
            "192.0.1.1",
            "192.88.99.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2001:4860::8888",
            "2001:4860:4860::8888",
            "64:ff9b::808:808",
            "2001::1",
            "2001:0:ffff::1",
            "2001:1::1",
            "2001:1::2",
            "2001:1::3",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "2001:2f::1",
            "2001:30::1",
            "2001:200::1",
            "2001:db9::1",
            "2002:c000:0204::1",
            "2620:4f:8000::1",
            "3fff:1000::1",
            "2000::",
            "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(!is_bogon(&list, ip), "{ip} should not be a bogon");
        }
    }

    #[test]
    fn the_list_is_disjoint_aggregated_and_ordered() {
        let list = bogons();
        for w in list.windows(2) {
            let same_family = w[0].addr().is_ipv4() == w[1].addr().is_ipv4();
            assert!(
                !same_family || w[0].broadcast() < w[1].network(),
                "{} {}",
                w[0],
                w[1]
            );
            assert!(w[0].supernet() != w[1].supernet() || w[0].prefix_len() != w[1].prefix_len());
        }
        let v4: Vec<String> = list
            .iter()
            .filter(|n| n.addr().is_ipv4())
            .map(ToString::to_string)
            .collect();
        // 224/4 and 240/4 aggregate into 224/3.
        assert!(v4.contains(&"224.0.0.0/3".to_string()), "{v4:?}");
        assert!(v4.contains(&"192.0.0.11/32".to_string()), "{v4:?}");
        // Most of them carve 64:ff9b::/96 and 2001:1::1-3 out of their blocks.
        assert!(list.len() < 250, "{}", list.len());
    }
}

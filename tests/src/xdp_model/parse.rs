//! The frame parser of `waf-ebpf/src/xdp/parse.rs`, on a byte slice: what
//! the program sees of a frame (family, source, the facts its checks use).
//!
//! Written from reading the program, limits and all: two VLAN tags (a third
//! makes the frame unparsable), IPv4 options that must lie inside the frame,
//! a walk of at most eight IPv6 extension headers and a layer-4 offset of at
//! most 1024, a truncated layer-4 header marked `malformed`, IPv6 neighbour
//! discovery (ICMPv6 133-137 with hop limit 255).

use std::net::{Ipv4Addr, Ipv6Addr};

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
/// The VLAN tag protocol identifiers the parser steps over (802.1Q,
/// 802.1ad and the pre-standard 0x9100).
pub const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// VLAN tags the parser steps over.
pub const MAX_VLAN_TAGS: usize = 2;
/// IPv6 extension headers the parser walks.
pub const MAX_EXT_HEADERS: usize = 8;
/// Layer-4 offsets beyond this are not looked at.
pub const MAX_L4_OFFSET: usize = 1024;
/// The IPv6 extension headers whose length is in 8-octet units (not counting
/// the first 8): hop-by-hop, routing, destination options, mobility, HIP,
/// shim6.
pub const EXT_8OCTET: [u8; 6] = [0, 43, 60, 135, 139, 140];
/// IPv6 authentication header (length in 4-octet units, minus 2).
pub const EXT_AH: u8 = 51;
/// IPv6 fragment header (8 octets).
pub const EXT_FRAGMENT: u8 = 44;

/// What the program's parser makes of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// IPv4, with its source.
    V4(Ipv4Addr, Meta),
    /// IPv6, with its source.
    V6(Ipv6Addr, Meta),
    /// Not IP: passed.
    NotIp,
    /// Layer 2 or the IP header could not be parsed: passed.
    Unparsable,
}

/// The facts about an IP packet that the checks after the source lookups
/// use (the program's `parse::Meta`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// TCP SYN without ACK.
    pub syn: bool,
    /// IPv6 neighbour discovery with hop limit 255.
    pub neighbour_discovery: bool,
    /// A layer-4 (or IPv6 extension) header was truncated.
    pub malformed: bool,
    /// A non-first fragment (IPv4, or an IPv6 fragment header).
    pub fragment: bool,
    /// The IPv6 extension header chain was longer than the walk.
    pub too_many_ext_headers: bool,
    /// Offset of the IP header.
    pub l3_off: u16,
    /// For TCP: offset of the TCP header.
    pub l4_off: u16,
    /// For TCP: offset of the payload (by the data offset field).
    pub payload_off: u16,
    /// For TCP: payload bytes by the IP length.
    pub payload_len: u16,
    /// For TCP: destination port.
    pub dport: u16,
    /// For TCP: source port.
    pub sport: u16,
    /// For TCP: sequence number.
    pub seq: u32,
    /// For TCP: the flags byte.
    pub tcp_flags: u8,
}

fn be16(f: &[u8], off: usize) -> Option<u16> {
    f.get(off..off + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn bytes<const N: usize>(f: &[u8], off: usize) -> Option<[u8; N]> {
    f.get(off..off + N).map(|b| b.try_into().expect("N bytes"))
}

/// Parses `frame` as the program does.
pub fn parse(frame: &[u8]) -> Parsed {
    let Some(mut proto) = be16(frame, 12) else {
        return Parsed::Unparsable;
    };
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if !VLAN_TPIDS.contains(&proto) {
            break;
        }
        let Some(inner) = be16(frame, off + 2) else {
            return Parsed::Unparsable;
        };
        proto = inner;
        off += 4;
    }
    match proto {
        ETH_P_IP => parse_v4(frame, off),
        ETH_P_IPV6 => parse_v6(frame, off),
        p if VLAN_TPIDS.contains(&p) => Parsed::Unparsable,
        _ => Parsed::NotIp,
    }
}

fn meta_at(l3_off: usize) -> Meta {
    Meta {
        l3_off: l3_off as u16,
        ..Meta::default()
    }
}

fn parse_v4(f: &[u8], off: usize) -> Parsed {
    let Some(h) = bytes::<20>(f, off) else {
        return Parsed::Unparsable;
    };
    if h[0] >> 4 != 4 {
        return Parsed::Unparsable;
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 || f.len() < off + ihl {
        return Parsed::Unparsable;
    }
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let mut meta = meta_at(off);
    if u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0 {
        meta.fragment = true;
        return Parsed::V4(src, meta);
    }
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    l4(f, off + ihl, h[9], off + total_len, &mut meta);
    Parsed::V4(src, meta)
}

fn parse_v6(f: &[u8], off: usize) -> Parsed {
    let Some(h) = bytes::<40>(f, off) else {
        return Parsed::Unparsable;
    };
    if h[0] >> 4 != 6 {
        return Parsed::Unparsable;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&h[8..24]).expect("16 bytes"));
    let hop_limit = h[7];
    let mut next = h[6];
    let mut l4_off = off + 40;
    let l3_end = l4_off + usize::from(u16::from_be_bytes([h[4], h[5]]));
    let mut meta = meta_at(off);
    let mut found = false;
    for _ in 0..MAX_EXT_HEADERS {
        let len = if EXT_8OCTET.contains(&next) || next == EXT_AH {
            let Some([nh, hlen]) = bytes::<2>(f, l4_off) else {
                meta.malformed = true;
                return Parsed::V6(src, meta);
            };
            let units = if next == EXT_AH {
                (usize::from(hlen) + 2) * 4
            } else {
                (usize::from(hlen) + 1) * 8
            };
            next = nh;
            units
        } else if next == EXT_FRAGMENT {
            let Some(fh) = bytes::<4>(f, l4_off) else {
                meta.malformed = true;
                return Parsed::V6(src, meta);
            };
            next = fh[0];
            if u16::from_be_bytes([fh[2], fh[3]]) & 0xfff8 != 0 {
                meta.fragment = true;
                return Parsed::V6(src, meta);
            }
            8
        } else {
            found = true;
            break;
        };
        l4_off += len;
        if l4_off > MAX_L4_OFFSET {
            meta.too_many_ext_headers = true;
            return Parsed::V6(src, meta);
        }
    }
    if !found {
        meta.too_many_ext_headers = true;
        return Parsed::V6(src, meta);
    }
    if next == 58 {
        match bytes::<4>(f, l4_off) {
            Some([t, ..]) => {
                meta.neighbour_discovery = (133..=137).contains(&t) && hop_limit == 255
            }
            None => meta.malformed = true,
        }
        return Parsed::V6(src, meta);
    }
    l4(f, l4_off, next, l3_end, &mut meta);
    Parsed::V6(src, meta)
}

fn l4(f: &[u8], off: usize, proto: u8, l3_end: usize, meta: &mut Meta) {
    if off > MAX_L4_OFFSET {
        return;
    }
    match proto {
        6 => match bytes::<20>(f, off) {
            Some(t) => {
                meta.tcp_flags = t[13];
                meta.syn = t[13] & 0x02 != 0 && t[13] & 0x10 == 0;
                let payload_off = off + usize::from(t[12] >> 4) * 4;
                meta.l4_off = off as u16;
                meta.sport = u16::from_be_bytes([t[0], t[1]]);
                meta.dport = u16::from_be_bytes([t[2], t[3]]);
                meta.seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
                meta.payload_off = payload_off as u16;
                meta.payload_len = l3_end.saturating_sub(payload_off) as u16;
            }
            None => meta.malformed = true,
        },
        17 => meta.malformed = f.len() < off + 8,
        1 => meta.malformed = f.len() < off + 4,
        _ => {}
    }
}

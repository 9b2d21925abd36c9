//! Bounded, verifier-friendly frame parsing: Ethernet, up to two VLAN tags
//! (802.1Q, 802.1ad/QinQ), IPv4 with options and fragments, IPv6 with a
//! bounded walk over extension headers, and the first bytes of TCP, UDP and
//! ICMP.
//!
//! The parser never decides to drop: it only says what it saw. Once the IP
//! header is known the source address is known, so a malformed or truncated
//! layer-4 header still goes through the source checks (a banned source
//! cannot slip through by truncating its TCP header); it is only marked
//! `malformed` so that, if it passes, it is counted as unparsable.

use aya_ebpf::programs::XdpContext;
use waf_ebpf::ptr_at;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
/// Pre-standard QinQ outer tag still seen on some switches.
const ETH_P_QINQ_9100: u16 = 0x9100;
/// Most VLAN tags walked (QinQ).
const MAX_VLAN_TAGS: usize = 2;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_ICMPV6: u8 = 58;

/// Most IPv6 extension headers walked before giving up on finding layer 4.
const MAX_EXT_HEADERS: usize = 8;
/// Layer-4 offsets beyond this are not followed (source checks still apply).
const MAX_L4_OFFSET: usize = 1024;

/// What the parser found in a frame.
pub enum Frame {
    /// An IPv4 packet with its source address (network byte order).
    V4(u32, Meta),
    /// An IPv6 packet with its source address (the 16 bytes as two `u64`
    /// in memory order, so it is compared and hashed with wide loads).
    V6([u64; 2], Meta),
    /// Not IP (ARP, LLDP, ...): always passed.
    NotIp,
    /// Layer 2 or the IP header could not be parsed: always passed.
    Unparsable,
}

/// Facts about a packet that the checks after the source lookups use.
#[derive(Clone, Copy)]
pub struct Meta {
    /// TCP SYN without ACK (a connection attempt).
    pub syn: bool,
    /// IPv6 neighbour discovery (ICMPv6 133-137 with hop limit 255): never
    /// dropped for being non-allowlisted, so emergency mode cannot cut a host
    /// off its on-link neighbours.
    pub neighbour_discovery: bool,
    /// A layer-4 header was truncated.
    pub malformed: bool,
    /// IPv4 non-first fragment (no layer-4 header).
    pub fragment: bool,
    /// The IPv6 extension header chain was longer than the walk.
    pub too_many_ext_headers: bool,
    /// Offset of the IP header in the frame.
    pub l3_off: u16,
    /// For TCP: offset of the TCP header.
    pub l4_off: u16,
    /// For TCP: offset of the payload.
    pub payload_off: u16,
    /// For TCP: payload bytes (by the IP length, not counting padding).
    pub payload_len: u16,
    /// For TCP: destination port (0 otherwise).
    pub dport: u16,
}

impl Meta {
    /// The three packet offsets, packed (see `maps::park`).
    #[inline(always)]
    pub fn offsets(&self) -> u64 {
        self.l3_off as u64 | (self.l4_off as u64) << 16 | (self.payload_off as u64) << 32
    }

    /// This meta with the offsets of [`Meta::offsets`] `v`.
    #[inline(always)]
    pub fn with_offsets(&self, v: u64) -> Self {
        Self {
            l3_off: v as u16,
            l4_off: (v >> 16) as u16,
            payload_off: (v >> 32) as u16,
            ..*self
        }
    }

    const fn empty(l3_off: usize) -> Self {
        Self {
            syn: false,
            neighbour_discovery: false,
            malformed: false,
            fragment: false,
            too_many_ext_headers: false,
            l3_off: l3_off as u16,
            l4_off: 0,
            payload_off: 0,
            payload_len: 0,
            dport: 0,
        }
    }
}

/// Reads `N` bytes at `offset`.
#[inline(always)]
fn bytes<const N: usize>(ctx: &XdpContext, offset: usize) -> Option<[u8; N]> {
    // SAFETY: ptr_at checked that the N bytes lie within the frame.
    ptr_at::<[u8; N]>(ctx, offset).map(|p| unsafe { core::ptr::read_unaligned(p) })
}

#[inline(always)]
fn be16(ctx: &XdpContext, offset: usize) -> Option<u16> {
    // SAFETY: ptr_at checked the bounds; packet loads may be unaligned.
    ptr_at::<u16>(ctx, offset).map(|p| u16::from_be(unsafe { *p }))
}

/// The fixed IPv4 header (read with natural-width loads).
#[repr(C)]
#[allow(dead_code, reason = "fields document the layout")]
struct Ipv4Hdr {
    version_ihl: u8,
    tos: u8,
    total_len: u16,
    id: u16,
    frag: u16,
    ttl: u8,
    proto: u8,
    check: u16,
    src: u32,
    dst: u32,
}

/// The fixed IPv6 header.
#[repr(C)]
#[allow(dead_code, reason = "fields document the layout")]
struct Ipv6Hdr {
    version_class_flow: u32,
    payload_len: u16,
    next: u8,
    hop_limit: u8,
    src: [u64; 2],
    dst: [u64; 2],
}

/// Parses the frame in `ctx`.
#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Frame {
    let Some(mut proto) = be16(ctx, 12) else {
        return Frame::Unparsable;
    };
    let mut off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD && proto != ETH_P_QINQ_9100 {
            break;
        }
        let Some(inner) = be16(ctx, off + 2) else {
            return Frame::Unparsable;
        };
        proto = inner;
        off += 4;
    }
    match proto {
        ETH_P_IP => parse_v4(ctx, off),
        ETH_P_IPV6 => parse_v6(ctx, off),
        ETH_P_8021Q | ETH_P_8021AD | ETH_P_QINQ_9100 => Frame::Unparsable,
        _ => Frame::NotIp,
    }
}

#[inline(always)]
fn parse_v4(ctx: &XdpContext, off: usize) -> Frame {
    let Some(hdr) = ptr_at::<Ipv4Hdr>(ctx, off) else {
        return Frame::Unparsable;
    };
    // SAFETY: the whole fixed header is inside the frame.
    let (version_ihl, frag, proto, src, total_len) = unsafe {
        (
            (*hdr).version_ihl,
            (*hdr).frag,
            (*hdr).proto,
            (*hdr).src,
            (*hdr).total_len,
        )
    };
    if version_ihl >> 4 != 4 {
        return Frame::Unparsable;
    }
    let ihl = ((version_ihl & 0x0f) as usize) * 4;
    if ihl < 20 {
        return Frame::Unparsable;
    }
    // The options, if any, must be inside the frame.
    if ptr_at::<u8>(ctx, off + ihl - 1).is_none() {
        return Frame::Unparsable;
    }
    let mut meta = Meta::empty(off);
    if u16::from_be(frag) & 0x1fff != 0 {
        meta.fragment = true;
        return Frame::V4(src, meta);
    }
    l4(
        ctx,
        off + ihl,
        proto,
        off + u16::from_be(total_len) as usize,
        &mut meta,
    );
    Frame::V4(src, meta)
}

#[inline(always)]
fn parse_v6(ctx: &XdpContext, off: usize) -> Frame {
    let Some(hdr) = ptr_at::<Ipv6Hdr>(ctx, off) else {
        return Frame::Unparsable;
    };
    // SAFETY: the whole fixed header is inside the frame.
    let (vcf, next, hop_limit, src, payload_len) = unsafe {
        (
            (*hdr).version_class_flow,
            (*hdr).next,
            (*hdr).hop_limit,
            (*hdr).src,
            (*hdr).payload_len,
        )
    };
    if u32::from_be(vcf) >> 28 != 6 {
        return Frame::Unparsable;
    }
    let mut next = next;
    let mut l4_off = off + 40;
    let l3_end = l4_off + u16::from_be(payload_len) as usize;
    let mut meta = Meta::empty(off);
    let mut found = false;
    for _ in 0..MAX_EXT_HEADERS {
        let len = match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6:
            // length in 8-octet units, not counting the first 8.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let Some(h) = bytes::<2>(ctx, l4_off) else {
                    meta.malformed = true;
                    return Frame::V6(src, meta);
                };
                next = h[0];
                (h[1] as usize + 1) * 8
            }
            // Authentication header: length in 4-octet units, minus 2.
            51 => {
                let Some(h) = bytes::<2>(ctx, l4_off) else {
                    meta.malformed = true;
                    return Frame::V6(src, meta);
                };
                next = h[0];
                (h[1] as usize + 2) * 4
            }
            // Fragment header: fixed 8 octets; a non-first fragment has no
            // layer-4 header.
            44 => {
                let Some(h) = bytes::<4>(ctx, l4_off) else {
                    meta.malformed = true;
                    return Frame::V6(src, meta);
                };
                next = h[0];
                if u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0 {
                    meta.fragment = true;
                    return Frame::V6(src, meta);
                }
                8
            }
            _ => {
                found = true;
                break;
            }
        };
        l4_off += len;
        if l4_off > MAX_L4_OFFSET {
            meta.too_many_ext_headers = true;
            return Frame::V6(src, meta);
        }
    }
    if !found {
        meta.too_many_ext_headers = true;
        return Frame::V6(src, meta);
    }
    if next == IPPROTO_ICMPV6 {
        // Type, code and checksum: the fixed part of every ICMPv6 message.
        // (Reading a single byte would let LLVM turn the bounds check into a
        // form the verifier cannot follow.)
        match bytes::<4>(ctx, l4_off) {
            Some([t, ..]) => {
                meta.neighbour_discovery = (133..=137).contains(&t) && hop_limit == 255
            }
            None => meta.malformed = true,
        }
        return Frame::V6(src, meta);
    }
    l4(ctx, l4_off, next, l3_end, &mut meta);
    Frame::V6(src, meta)
}

/// Looks at the layer-4 header at `off` (the IP packet ends at `l3_end`):
/// TCP flags for the SYN limit and where the payload is for the mirror, and a
/// length check for TCP (20), UDP (8) and ICMP (4).
#[inline(always)]
fn l4(ctx: &XdpContext, off: usize, proto: u8, l3_end: usize, meta: &mut Meta) {
    if off > MAX_L4_OFFSET {
        return;
    }
    match proto {
        IPPROTO_TCP => match bytes::<20>(ctx, off) {
            Some(tcp) => {
                let flags = tcp[13];
                meta.syn = flags & 0x02 != 0 && flags & 0x10 == 0;
                let payload_off = off + ((tcp[12] >> 4) as usize) * 4;
                meta.l4_off = off as u16;
                meta.dport = u16::from_be_bytes([tcp[2], tcp[3]]);
                meta.payload_off = payload_off as u16;
                meta.payload_len = l3_end.saturating_sub(payload_off) as u16;
            }
            None => meta.malformed = true,
        },
        // UDP
        17 => meta.malformed = ptr_at::<[u8; 8]>(ctx, off).is_none(),
        // ICMP
        1 => meta.malformed = ptr_at::<[u8; 4]>(ctx, off).is_none(),
        _ => {}
    }
}

//! Building Ethernet frames: IPv4 (with options and fragments) and IPv6 (with
//! extension headers) carrying TCP, UDP or ICMP, inside zero, one or two VLAN
//! tags, with valid checksums. Used by the packet generator and by the tests
//! that feed crafted frames to the XDP program.

use std::net::IpAddr;

/// 802.1Q VLAN tag protocol identifier.
pub const TPID_8021Q: u16 = 0x8100;
/// 802.1ad (QinQ outer) tag protocol identifier.
pub const TPID_8021AD: u16 = 0x88a8;
/// Ethertype of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// Ethertype of ARP.
pub const ETH_P_ARP: u16 = 0x0806;

/// TCP flag bits.
pub mod tcp {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// The layer-4 part of a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L4 {
    /// TCP with these flags and ports.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Flag bits ([`tcp`]).
        flags: u8,
    },
    /// UDP with these ports.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// ICMP echo request (ICMPv6 for IPv6 frames), or any ICMPv6 type.
    Icmp {
        /// ICMP type (8 = echo request; ICMPv6: 128 echo, 135 neighbour solicitation).
        kind: u8,
    },
    /// Another protocol number, payload only.
    Other(u8),
}

/// IPv6 extension header kinds [`FrameSpec::ext_headers`] can add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtHeader {
    /// Hop-by-hop options (8 octets of padding).
    HopByHop,
    /// Routing header, type 0 with no addresses (8 octets).
    Routing,
    /// Destination options (8 octets of padding).
    DestOpts,
    /// Fragment header with this fragment offset (in 8-octet units).
    Fragment(u16),
}

/// Description of one frame.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// VLAN tags, outermost first: (TPID, VLAN id).
    pub vlans: Vec<(u16, u16)>,
    /// Source address (the family of src and dst must match).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Layer 4.
    pub l4: L4,
    /// IPv4 option bytes (a multiple of 4, at most 40; filled with NOPs).
    pub ip_options: usize,
    /// IPv4 fragment offset in 8-octet units (non-zero: a non-first fragment,
    /// which carries no layer-4 header).
    pub frag_offset: u16,
    /// IPv6 extension headers, in order.
    pub ext_headers: Vec<ExtHeader>,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
    /// Payload bytes after the layer-4 header.
    pub payload: Vec<u8>,
}

impl FrameSpec {
    /// A TCP SYN from `src` to `dst` port 80.
    pub fn new(src: IpAddr, dst: IpAddr) -> Self {
        Self {
            dst_mac: [0x02, 0, 0, 0, 0, 0x02],
            src_mac: [0x02, 0, 0, 0, 0, 0x01],
            vlans: Vec::new(),
            src,
            dst,
            l4: L4::Tcp {
                sport: 40000,
                dport: 80,
                flags: tcp::SYN,
            },
            ip_options: 0,
            frag_offset: 0,
            ext_headers: Vec::new(),
            ttl: 64,
            payload: Vec::new(),
        }
    }

    /// Same frame with another layer 4.
    pub fn with_l4(mut self, l4: L4) -> Self {
        self.l4 = l4;
        self
    }

    /// Same frame inside these VLAN tags (outermost first).
    pub fn with_vlans(mut self, vlans: &[(u16, u16)]) -> Self {
        self.vlans = vlans.to_vec();
        self
    }

    /// Same frame with this payload.
    pub fn with_payload(mut self, payload: &[u8]) -> Self {
        self.payload = payload.to_vec();
        self
    }

    /// Same frame with a payload of `n` bytes.
    pub fn with_payload_len(mut self, n: usize) -> Self {
        self.payload = (0..n).map(|i| (i % 251) as u8).collect();
        self
    }

    /// Offsets where each header ends, with its name: the boundaries a
    /// truncated frame can be cut at.
    pub fn boundaries(&self) -> Vec<(usize, &'static str)> {
        let mut v = vec![(14, "ethernet")];
        let mut off = 14;
        for _ in &self.vlans {
            off += 4;
            v.push((off, "vlan"));
        }
        match self.src {
            IpAddr::V4(_) => {
                off += 20 + self.ip_options;
                v.push((off, "ipv4"));
            }
            IpAddr::V6(_) => {
                off += 40;
                v.push((off, "ipv6"));
                for _ in &self.ext_headers {
                    off += 8;
                    v.push((off, "ipv6-ext"));
                }
            }
        }
        if self.has_l4() {
            off += self.l4_len();
            v.push((off, "l4"));
        }
        v
    }

    fn has_l4(&self) -> bool {
        let v6_frag = self
            .ext_headers
            .iter()
            .any(|h| matches!(h, ExtHeader::Fragment(o) if *o != 0));
        self.frag_offset == 0 && !v6_frag
    }

    fn l4_len(&self) -> usize {
        match self.l4 {
            L4::Tcp { .. } => 20,
            L4::Udp { .. } | L4::Icmp { .. } => 8,
            L4::Other(_) => 0,
        }
    }

    fn proto(&self) -> u8 {
        match (&self.l4, self.src) {
            (L4::Tcp { .. }, _) => 6,
            (L4::Udp { .. }, _) => 17,
            (L4::Icmp { .. }, IpAddr::V4(_)) => 1,
            (L4::Icmp { .. }, IpAddr::V6(_)) => 58,
            (L4::Other(p), _) => *p,
        }
    }

    /// The layer-4 header and payload, checksummed.
    fn l4_bytes(&self) -> Vec<u8> {
        let mut seg = Vec::with_capacity(self.l4_len() + self.payload.len());
        if self.has_l4() {
            match self.l4 {
                L4::Tcp {
                    sport,
                    dport,
                    flags,
                } => {
                    seg.extend_from_slice(&sport.to_be_bytes());
                    seg.extend_from_slice(&dport.to_be_bytes());
                    seg.extend_from_slice(&1u32.to_be_bytes()); // seq
                    let ack = if flags & tcp::ACK != 0 { 1u32 } else { 0 };
                    seg.extend_from_slice(&ack.to_be_bytes());
                    seg.push(5 << 4); // data offset
                    seg.push(flags);
                    seg.extend_from_slice(&64240u16.to_be_bytes()); // window
                    seg.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
                }
                L4::Udp { sport, dport } => {
                    seg.extend_from_slice(&sport.to_be_bytes());
                    seg.extend_from_slice(&dport.to_be_bytes());
                    let len = (8 + self.payload.len()) as u16;
                    seg.extend_from_slice(&len.to_be_bytes());
                    seg.extend_from_slice(&[0, 0]);
                }
                L4::Icmp { kind } => {
                    seg.extend_from_slice(&[kind, 0, 0, 0, 0x12, 0x34, 0, 1]);
                }
                L4::Other(_) => {}
            }
        }
        seg.extend_from_slice(&self.payload);
        if self.has_l4() {
            let csum_at = match self.l4 {
                L4::Tcp { .. } => Some(16),
                L4::Udp { .. } => Some(6),
                L4::Icmp { .. } => Some(2),
                L4::Other(_) => None,
            };
            if let Some(at) = csum_at {
                let pseudo = match (self.src, self.dst, &self.l4) {
                    // ICMPv4 has no pseudo-header.
                    (IpAddr::V4(_), _, L4::Icmp { .. }) => Vec::new(),
                    (IpAddr::V4(s), IpAddr::V4(d), _) => {
                        let mut p = Vec::with_capacity(12);
                        p.extend_from_slice(&s.octets());
                        p.extend_from_slice(&d.octets());
                        p.extend_from_slice(&[0, self.proto()]);
                        p.extend_from_slice(&(seg.len() as u16).to_be_bytes());
                        p
                    }
                    (IpAddr::V6(s), IpAddr::V6(d), _) => {
                        let mut p = Vec::with_capacity(40);
                        p.extend_from_slice(&s.octets());
                        p.extend_from_slice(&d.octets());
                        p.extend_from_slice(&(seg.len() as u32).to_be_bytes());
                        p.extend_from_slice(&[0, 0, 0, self.proto()]);
                        p
                    }
                    _ => Vec::new(),
                };
                let mut c = checksum(&[&pseudo, &seg]);
                if c == 0 && matches!(self.l4, L4::Udp { .. }) {
                    c = 0xffff;
                }
                seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
            }
        }
        seg
    }

    /// The frame's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(128 + self.payload.len());
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        for (tpid, vid) in &self.vlans {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
        }
        let seg = self.l4_bytes();
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&ETH_P_IP.to_be_bytes());
                let hlen = 20 + self.ip_options;
                let total = (hlen + seg.len()) as u16;
                let start = f.len();
                f.push(0x40 | (hlen / 4) as u8);
                f.push(0);
                f.extend_from_slice(&total.to_be_bytes());
                f.extend_from_slice(&0x1234u16.to_be_bytes()); // id
                let frag = self.frag_offset & 0x1fff;
                f.extend_from_slice(&frag.to_be_bytes());
                f.push(self.ttl);
                f.push(self.proto());
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
                f.extend(std::iter::repeat_n(1u8, self.ip_options)); // NOP options
                let c = checksum(&[&f[start..start + hlen]]);
                f[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
                let ext_len = 8 * self.ext_headers.len();
                let plen = (ext_len + seg.len()) as u16;
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&plen.to_be_bytes());
                let first = self
                    .ext_headers
                    .first()
                    .map(ext_proto)
                    .unwrap_or(self.proto());
                f.push(first);
                f.push(self.ttl);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
                for (i, h) in self.ext_headers.iter().enumerate() {
                    let next = self
                        .ext_headers
                        .get(i + 1)
                        .map(ext_proto)
                        .unwrap_or(self.proto());
                    match h {
                        ExtHeader::HopByHop | ExtHeader::DestOpts => {
                            // PadN option filling the 6 remaining octets.
                            f.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
                        }
                        ExtHeader::Routing => f.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]),
                        ExtHeader::Fragment(off) => {
                            let fo = (off << 3).to_be_bytes();
                            f.extend_from_slice(&[next, 0, fo[0], fo[1], 0, 0, 0, 1]);
                        }
                    }
                }
            }
            _ => panic!("source and destination of a frame must be of the same family"),
        }
        f.extend_from_slice(&seg);
        f
    }
}

fn ext_proto(h: &ExtHeader) -> u8 {
    match h {
        ExtHeader::HopByHop => 0,
        ExtHeader::Routing => 43,
        ExtHeader::DestOpts => 60,
        ExtHeader::Fragment(_) => 44,
    }
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A non-IP frame (e.g. ARP) of 60 bytes with the given ethertype.
pub fn non_ip_frame(ethertype: u16) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.resize(60, 0);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let f = FrameSpec::new("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
            .with_payload_len(11)
            .build();
        // A correct header sums to zero.
        assert_eq!(checksum(&[&f[14..34]]), 0);
        // TCP checksum over pseudo-header and segment also verifies.
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&f[26..34]);
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&((f.len() - 34) as u16).to_be_bytes());
        assert_eq!(checksum(&[&pseudo, &f[34..]]), 0);
    }

    #[test]
    fn udp_v6_checksum_verifies() {
        let f = FrameSpec::new(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
        .with_l4(L4::Udp {
            sport: 1,
            dport: 53,
        })
        .with_payload_len(7)
        .build();
        let seg = &f[54..];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&f[22..54]);
        pseudo.extend_from_slice(&(seg.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 17]);
        assert_eq!(checksum(&[&pseudo, seg]), 0);
    }

    #[test]
    fn boundaries_follow_the_headers() {
        let spec = FrameSpec::new(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
        .with_vlans(&[(TPID_8021AD, 10), (TPID_8021Q, 20)]);
        let mut spec = spec;
        spec.ext_headers = vec![ExtHeader::HopByHop, ExtHeader::Fragment(0)];
        let b = spec.boundaries();
        assert_eq!(
            b.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![14, 18, 22, 62, 70, 78, 98]
        );
        assert_eq!(spec.build().len(), 98);
    }
}

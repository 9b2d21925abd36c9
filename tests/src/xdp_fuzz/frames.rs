//! Random frames over the parser's space: Ethernet with zero to four VLAN
//! tags (the parser steps over two), non-IP ethertypes, IPv4 with options,
//! bad versions, IHLs and lengths, first and later fragments, IPv6 with
//! chains of extension headers (hop-by-hop, routing, fragment, destination
//! options, AH, mobility, HIP, shim6; shorter and longer than the walk,
//! lengths that run past the frame or past the offset limit), TCP (with odd
//! data offsets), UDP, ICMP, ICMPv6 (neighbour discovery with and without
//! hop limit 255) and other protocols. Each frame also comes truncated.

use std::net::IpAddr;

use super::{rng::Rng, universe::Universe};
use crate::xdp_model::{EXT_8OCTET, EXT_AH, EXT_FRAGMENT, MapState, VLAN_TPIDS};

/// BPF_PROG_TEST_RUN refuses XDP frames shorter than an Ethernet header.
pub const MIN_FRAME: usize = 14;
/// Longest frame generated (BPF_PROG_TEST_RUN takes up to a page less the
/// XDP headroom and the shared info).
pub const MAX_FRAME: usize = 3400;

/// One generated frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The source address written into its IP header, if it has one: the
    /// program's source whenever it parses the frame as IP.
    pub src: Option<IpAddr>,
}

/// Builds random frames with sources from a [`Universe`] and the current
/// [`MapState`].
pub struct FrameGen<'a> {
    /// The run's addresses.
    pub universe: &'a Universe,
    /// The map state the frames are sent against.
    pub state: &'a MapState,
}

impl FrameGen<'_> {
    /// A random frame; `source` may replace the drawn source (the limiter
    /// case keeps sources out of full rate sets this way).
    pub fn frame(&self, rng: &mut Rng, source: impl Fn(&mut Rng, IpAddr) -> IpAddr) -> Frame {
        let mut f = rng.bytes(12);
        let tags = rng.weighted(&[60, 20, 12, 5, 3]);
        for _ in 0..tags {
            // Now and then an unknown tag type (never an IP ethertype: the
            // frame's source would not be the one written below).
            let tpid = if rng.one_in(20) {
                not_ip(rng.u32() as u16)
            } else {
                *rng.pick(&VLAN_TPIDS)
            };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(rng.u32() as u16).to_be_bytes());
        }
        let kind = rng.weighted(&[45, 45, 10]);
        let mut src = None;
        match kind {
            0 | 1 => {
                let v6 = kind == 1;
                // Now and then the other family's ethertype (then the
                // version is always right, so the parser never reads one
                // family's header as the other's).
                let swapped = rng.one_in(40);
                let ethertype: u16 = if v6 != swapped { 0x86dd } else { 0x0800 };
                f.extend_from_slice(&ethertype.to_be_bytes());
                let a = self.universe.source(rng, v6, self.state);
                let a = source(rng, a);
                src = Some(a);
                let version = |rng: &mut Rng, right: u8| {
                    if !swapped && rng.one_in(50) {
                        rng.u8() >> 4
                    } else {
                        right
                    }
                };
                match a {
                    IpAddr::V4(a) => {
                        let v = version(rng, 4);
                        self.ipv4(rng, &mut f, a.octets(), v)
                    }
                    IpAddr::V6(a) => {
                        let v = version(rng, 6);
                        self.ipv6(rng, &mut f, a.octets(), v)
                    }
                }
            }
            _ => {
                let ethertype = match rng.below(8) {
                    0 => 0x0806, // ARP
                    1 => 0x88cc, // LLDP
                    2 => 0x8847, // MPLS
                    3 => 0x8864, // PPPoE session
                    4 => 0,
                    5 => 0xffff,
                    6 => *rng.pick(&VLAN_TPIDS),
                    _ => not_ip(rng.u32() as u16),
                };
                f.extend_from_slice(&ethertype.to_be_bytes());
                let n = rng.range(0, 100);
                f.extend(rng.bytes(n));
            }
        }
        f.truncate(MAX_FRAME);
        Frame { bytes: f, src }
    }

    fn ipv4(&self, rng: &mut Rng, f: &mut Vec<u8>, src: [u8; 4], version: u8) {
        let start = f.len();
        let opt_words = if rng.percent(20) { rng.range(1, 10) } else { 0 };
        let proto = match rng.weighted(&[40, 20, 12, 13]) {
            0 => 6,
            1 => 17,
            2 => 1,
            _ if rng.one_in(2) => *rng.pick(&[0, 4, 41, 47, 50, 58, 132, 255]),
            _ => rng.u8(),
        };
        let frag: u16 = match rng.weighted(&[65, 10, 10, 15]) {
            0 => 0,
            1 => 0x4000, // DF
            2 => 0x2000, // MF, offset 0: a first fragment
            _ => (rng.u32() as u16 & 0xe000) | (rng.u32() as u16 & 0x1fff).max(1),
        };
        let l4 = self.l4(rng, proto, false);
        let ihl = 20 + 4 * opt_words;
        let correct = (ihl + l4.len()) as u16;
        let total = if rng.percent(8) {
            let any = rng.u32() as u16;
            *rng.pick(&[0, 20, correct.wrapping_sub(1), correct + 1, 0xffff, any])
        } else {
            correct
        };
        let ihl_field = if rng.one_in(30) {
            rng.u8() & 0x0f
        } else {
            (ihl / 4) as u8
        };
        f.push(version << 4 | ihl_field);
        f.push(rng.u8());
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&(rng.u32() as u16).to_be_bytes());
        f.extend_from_slice(&frag.to_be_bytes());
        f.push(rng.u8());
        f.push(proto);
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&src);
        f.extend(rng.bytes(4));
        f.extend(rng.bytes(4 * opt_words));
        let c = waf_user::packet::checksum(&[&f[start..start + ihl]]);
        f[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
        f.extend(l4);
    }

    fn ipv6(&self, rng: &mut Rng, f: &mut Vec<u8>, src: [u8; 16], version: u8) {
        let hop_limit = match rng.weighted(&[35, 30, 10, 25]) {
            0 => 255,
            1 => 64,
            2 => 254,
            _ => rng.u8(),
        };
        let upper = match rng.weighted(&[35, 20, 30, 15]) {
            0 => 6,
            1 => 17,
            2 => 58,
            _ if rng.one_in(2) => *rng.pick(&[59, 1, 4, 41, 50, 132, 255]),
            _ => rng.u8(),
        };
        let count = match rng.weighted(&[50, 15, 10, 8, 8, 3, 6]) {
            0 => 0,
            1 => 1,
            2 => 2,
            3 => 3,
            4 => rng.range(4, 7),
            5 => 8,
            _ => rng.range(9, 12),
        };
        let kinds: Vec<u8> = (0..count)
            .map(|_| match rng.below(10) {
                0..=5 => *rng.pick(&EXT_8OCTET),
                6 | 7 => EXT_FRAGMENT,
                _ => EXT_AH,
            })
            .collect();
        let mut chain = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let next = kinds.get(i + 1).copied().unwrap_or(upper);
            chain.extend(ext_header(rng, *kind, next));
        }
        let l4 = self.l4(rng, upper, true);
        let correct = (chain.len() + l4.len()).min(0xffff) as u16;
        let plen = if rng.percent(8) {
            rng.u32() as u16
        } else {
            correct
        };
        f.extend_from_slice(&[
            version << 4 | (rng.u8() & 0x0f),
            rng.u8(),
            rng.u8(),
            rng.u8(),
        ]);
        f.extend_from_slice(&plen.to_be_bytes());
        f.push(kinds.first().copied().unwrap_or(upper));
        f.push(hop_limit);
        f.extend_from_slice(&src);
        f.extend(rng.bytes(16));
        f.extend(chain);
        f.extend(l4);
    }

    /// The layer-4 header of `proto` and a payload.
    fn l4(&self, rng: &mut Rng, proto: u8, v6: bool) -> Vec<u8> {
        let mut h = Vec::new();
        match proto {
            6 => {
                let doff: u8 = match rng.weighted(&[70, 20, 10]) {
                    0 => 5,
                    1 => rng.range(6, 15) as u8,
                    _ => rng.range(0, 4) as u8,
                };
                let flags = match rng.weighted(&[30, 10, 25, 20, 15]) {
                    0 => 0x02,
                    1 => 0x12,
                    2 => 0x10,
                    3 => 0x18,
                    _ => rng.u8(),
                };
                h.extend_from_slice(&(rng.u32() as u16).to_be_bytes());
                h.extend_from_slice(&self.dport(rng).to_be_bytes());
                h.extend(rng.bytes(8)); // seq, ack
                h.push(doff << 4 | (rng.u8() & 0x0f));
                h.push(flags);
                h.extend(rng.bytes(6)); // window, checksum, urgent
                h.extend(rng.bytes(4 * usize::from(doff.saturating_sub(5))));
            }
            17 => h.extend(rng.bytes(8)),
            58 if v6 => {
                let t = if rng.percent(55) {
                    rng.range(133, 137) as u8
                } else {
                    let any = rng.u8();
                    *rng.pick(&[1, 2, 3, 4, 128, 129, 130, 132, 138, 143, any])
                };
                h.extend_from_slice(&[t, 0]);
                h.extend(rng.bytes(22));
            }
            1 => {
                let any = rng.u8();
                h.push(*rng.pick(&[0, 3, 8, 11, any]));
                h.extend(rng.bytes(7));
            }
            _ => {}
        }
        let payload = match rng.weighted(&[30, 40, 25, 5]) {
            0 => 0,
            1 => rng.range(1, 64),
            2 => rng.range(65, 600),
            _ => rng.range(601, 1400),
        };
        h.extend(rng.bytes(payload));
        h
    }

    /// A destination port: often one the state samples.
    fn dport(&self, rng: &mut Rng) -> u16 {
        let sampled: Vec<u16> = self
            .state
            .sample_ports
            .iter()
            .copied()
            .filter(|p| *p != 0)
            .collect();
        match rng.weighted(&[50, 20, 30]) {
            0 if !sampled.is_empty() => *rng.pick(&sampled),
            0 | 1 => *rng.pick(&[80, 443, 8080, 0]),
            _ => rng.u32() as u16,
        }
    }
}

/// `t`, or ARP if `t` is an IP ethertype.
fn not_ip(t: u16) -> u16 {
    if t == 0x0800 || t == 0x86dd {
        0x0806
    } else {
        t
    }
}

/// One IPv6 extension header of `kind` announcing `next`.
fn ext_header(rng: &mut Rng, kind: u8, next: u8) -> Vec<u8> {
    let len_field = match rng.weighted(&[60, 30, 10]) {
        0 => 0,
        1 => rng.range(1, 3) as u8,
        _ => rng.u8(),
    };
    let size = match kind {
        EXT_FRAGMENT => 8,
        EXT_AH => (usize::from(len_field) + 2) * 4,
        _ => (usize::from(len_field) + 1) * 8,
    };
    let mut h = vec![next, len_field];
    if kind == EXT_FRAGMENT {
        h[1] = 0;
        let offset: u16 = if rng.percent(60) {
            0
        } else {
            (rng.u32() as u16 & 0x1fff).max(1)
        };
        h.extend_from_slice(&((offset << 3) | u16::from(rng.one_in(2))).to_be_bytes());
    }
    let body = size - h.len();
    h.extend(rng.bytes(body));
    h
}

/// The frames a generated frame is sent as: whole, cut at two random
/// offsets, and for one in `every_offset` frames cut at every offset.
pub fn variants(rng: &mut Rng, frame: &[u8], every_offset: usize) -> Vec<Vec<u8>> {
    let mut out = vec![frame.to_vec()];
    if frame.len() <= MIN_FRAME {
        return out;
    }
    if rng.one_in(every_offset) {
        out.extend((MIN_FRAME..frame.len()).map(|n| frame[..n].to_vec()));
    } else {
        for _ in 0..2 {
            let n = rng.range(MIN_FRAME, frame.len() - 1);
            out.push(frame[..n].to_vec());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdp_model::{Parsed, parse};

    #[test]
    fn generated_ip_frames_parse_to_their_source_and_cover_every_outcome() {
        let mut rng = Rng::new(11);
        let universe = Universe::new(&mut rng);
        let state = MapState::default();
        let g = FrameGen {
            universe: &universe,
            state: &state,
        };
        let mut seen = [0usize; 4];
        for _ in 0..5000 {
            let f = g.frame(&mut rng, |_, a| a);
            assert!(f.bytes.len() >= MIN_FRAME && f.bytes.len() <= MAX_FRAME);
            for v in variants(&mut rng, &f.bytes, 50) {
                let (i, parsed_src) = match parse(&v) {
                    Parsed::V4(a, _) => (0, Some(IpAddr::V4(a))),
                    Parsed::V6(a, _) => (1, Some(IpAddr::V6(a))),
                    Parsed::NotIp => (2, None),
                    Parsed::Unparsable => (3, None),
                };
                seen[i] += 1;
                if parsed_src.is_some() {
                    assert_eq!(parsed_src, f.src, "frame {v:02x?}");
                }
            }
        }
        assert!(seen.iter().all(|n| *n > 500), "outcomes {seen:?}");
    }
}

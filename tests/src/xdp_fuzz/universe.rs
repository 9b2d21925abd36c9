//! The addresses of one run: anchors that list entries and sources cluster
//! around (so nested prefixes, shared /16s and prefix boundaries are
//! common), addresses that share an exact-ban bucket (so bans spill into the
//! overflow hash), and the draws of sources and prefixes from them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use waf_common::{BAN_BUCKET_BITS, BAN_SLOTS, ban_bucket_v4, ban_bucket_v6};

use super::rng::Rng;
use crate::xdp_model::MapState;

/// The anchors and bucket-sharing addresses of a run.
#[derive(Clone, Debug)]
pub struct Universe {
    /// IPv4 anchors (host order).
    pub v4: Vec<u32>,
    /// IPv6 anchors.
    pub v6: Vec<u128>,
    /// IPv4 addresses that all fall in one exact-ban bucket (more than it
    /// has slots).
    pub bucket_v4: Vec<Ipv4Addr>,
    /// IPv6 addresses that all fall in one exact-ban bucket.
    pub bucket_v6: Vec<Ipv6Addr>,
}

/// Prefix lengths with extra weight at the boundaries of the program's
/// bitmaps (/16, /24) and of bytes.
const V4_LENS: [u8; 14] = [8, 12, 15, 16, 17, 20, 23, 24, 25, 28, 30, 31, 32, 32];
/// IPv6 prefix lengths at the boundaries of the prefilters (/16, /32, /48)
/// and of the halves.
const V6_LENS: [u8; 17] = [
    8, 15, 16, 17, 24, 31, 32, 33, 40, 47, 48, 49, 56, 63, 64, 96, 128,
];

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl Universe {
    /// Draws the anchors of a run and searches the bucket-sharing addresses.
    pub fn new(rng: &mut Rng) -> Self {
        let mut v4: Vec<u32> = ["192.0.2.66", "198.51.100.7", "203.0.113.200"]
            .iter()
            .map(|s| u32::from(s.parse::<Ipv4Addr>().expect("address")))
            .collect();
        for _ in 0..5 {
            v4.push(rng.u32());
        }
        // Neighbours of an anchor: the next /16 (same flag word), the next
        // /24, the other half of a /25.
        let a = v4[0];
        v4.extend([a ^ 0x0001_0000, a ^ 0x0000_0100, a ^ 0x80]);
        let mut v6: Vec<u128> = ["2001:db8::66", "2001:db8:1:2::7"]
            .iter()
            .map(|s| u128::from(s.parse::<Ipv6Addr>().expect("address")))
            .collect();
        for _ in 0..5 {
            v6.push(rng.u128());
        }
        let b = v6[0];
        v6.extend([b ^ (1 << 112), b ^ (1 << 80), b ^ (1 << 64), b ^ 1]);
        let bucket_v4 = same_bucket(
            rng,
            12,
            |r| (r.u32() & 0x00ff_ffff) | 0xc600_0000,
            |k| {
                ban_bucket_v4(
                    u32::from_ne_bytes(Ipv4Addr::from(k).octets()),
                    BAN_BUCKET_BITS,
                )
            },
        )
        .into_iter()
        .map(Ipv4Addr::from)
        .collect();
        let hi = 0x2001_0db8_00ff_0000_u64;
        let bucket_v6 = same_bucket(
            rng,
            12,
            |r| r.u64(),
            |lo| ban_bucket_v6(hi, lo, BAN_BUCKET_BITS),
        )
        .into_iter()
        .map(|lo| Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo)))
        .collect();
        Self {
            v4,
            v6,
            bucket_v4,
            bucket_v6,
        }
    }

    /// A prefix length for a list entry: mostly the boundary lengths,
    /// sometimes any, rarely very short (`min` and up).
    fn len(rng: &mut Rng, v6: bool, min: u8) -> u8 {
        let max = if v6 { 128 } else { 32 };
        let len = match rng.weighted(&[70, 28, 2]) {
            0 if v6 => *rng.pick(&V6_LENS),
            0 => *rng.pick(&V4_LENS),
            1 => rng.range(1, max) as u8,
            _ => rng.range(0, 7) as u8,
        };
        len.max(min)
    }

    /// A prefix around an anchor, at least `min` long.
    pub fn prefix(&self, rng: &mut Rng, v6: bool, min: u8) -> IpNet {
        let len = Self::len(rng, v6, min);
        if v6 {
            let a = *rng.pick(&self.v6);
            // Sometimes off the anchor's own path: other bits below a
            // shorter shared prefix.
            let a = if rng.one_in(4) {
                let keep = rng.range(0, usize::from(len)) as u8;
                (a & mask6(keep)) | (rng.u128() & !mask6(keep))
            } else {
                a
            };
            let net = Ipv6Net::new(Ipv6Addr::from(a & mask6(len)), len).expect("length");
            IpNet::V6(net)
        } else {
            let a = *rng.pick(&self.v4);
            let a = if rng.one_in(4) {
                let keep = rng.range(0, usize::from(len)) as u8;
                (a & mask4(keep)) | (rng.u32() & !mask4(keep))
            } else {
                a
            };
            let net = Ipv4Net::new(Ipv4Addr::from(a & mask4(len)), len).expect("length");
            IpNet::V4(net)
        }
    }

    /// A source address of the family: mostly near the anchors, inside or
    /// at the edges of the state's entries, or an address it bans, the rest
    /// random.
    pub fn source(&self, rng: &mut Rng, v6: bool, state: &MapState) -> IpAddr {
        match rng.weighted(&[35, 25, 12, 8, 20]) {
            0 => self.near_anchor(rng, v6),
            1 => match edge_of_entry(rng, v6, state) {
                Some(a) => a,
                None => self.near_anchor(rng, v6),
            },
            2 => {
                let bans: Vec<IpAddr> = state
                    .bans
                    .iter()
                    .map(|(a, _)| *a)
                    .filter(|a| a.is_ipv6() == v6)
                    .collect();
                if bans.is_empty() {
                    self.near_anchor(rng, v6)
                } else {
                    match *rng.pick(&bans) {
                        // Another address of the banned IPv6 prefix.
                        IpAddr::V6(a) if rng.one_in(2) && (1..128).contains(&state.v6_prefix) => {
                            let host = u128::MAX >> state.v6_prefix;
                            IpAddr::V6((u128::from(a) | (rng.u128() & host)).into())
                        }
                        a => a,
                    }
                }
            }
            3 if v6 => IpAddr::V6(*rng.pick(&self.bucket_v6)),
            3 => IpAddr::V4(*rng.pick(&self.bucket_v4)),
            _ if v6 => IpAddr::V6(Ipv6Addr::from(rng.u128())),
            _ => IpAddr::V4(Ipv4Addr::from(rng.u32())),
        }
    }

    /// An anchor with its bits below a random length redrawn.
    fn near_anchor(&self, rng: &mut Rng, v6: bool) -> IpAddr {
        if v6 {
            let a = *rng.pick(&self.v6);
            let keep = rng.range(0, 128) as u8;
            IpAddr::V6(Ipv6Addr::from(
                (a & mask6(keep)) | (rng.u128() & !mask6(keep)),
            ))
        } else {
            let a = *rng.pick(&self.v4);
            let keep = rng.range(0, 32) as u8;
            IpAddr::V4(Ipv4Addr::from(
                (a & mask4(keep)) | (rng.u32() & !mask4(keep)),
            ))
        }
    }
}

/// An address at an edge of one of the state's CIDR entries of the family:
/// its first or last address, one outside either end, or one inside.
fn edge_of_entry(rng: &mut Rng, v6: bool, state: &MapState) -> Option<IpAddr> {
    let nets: Vec<IpNet> = state
        .allow
        .iter()
        .chain(&state.block)
        .chain(state.prefix_bans.iter().map(|(n, _)| n))
        .copied()
        .filter(|n| matches!(n, IpNet::V6(_)) == v6)
        .collect();
    if nets.is_empty() {
        return None;
    }
    let net = *rng.pick(&nets);
    let which = rng.below(5);
    Some(match net {
        IpNet::V4(n) => {
            let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
            IpAddr::V4(Ipv4Addr::from(match which {
                0 => lo,
                1 => hi,
                2 => lo.wrapping_sub(1),
                3 => hi.wrapping_add(1),
                _ => lo | (rng.u32() & !mask4(n.prefix_len())),
            }))
        }
        IpNet::V6(n) => {
            let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
            IpAddr::V6(Ipv6Addr::from(match which {
                0 => lo,
                1 => hi,
                2 => lo.wrapping_sub(1),
                3 => hi.wrapping_add(1),
                _ => lo | (rng.u128() & !mask6(n.prefix_len())),
            }))
        }
    })
}

/// `n` distinct values from `draw` that `bucket` maps to one bucket (the
/// first value's).
fn same_bucket<T: Copy + PartialEq>(
    rng: &mut Rng,
    n: usize,
    draw: impl Fn(&mut Rng) -> T,
    bucket: impl Fn(T) -> u32,
) -> Vec<T> {
    assert!(n > BAN_SLOTS, "more than a bucket holds");
    let first = draw(rng);
    let target = bucket(first);
    let mut out = vec![first];
    while out.len() < n {
        let x = draw(rng);
        if bucket(x) == target && !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_addresses_share_a_bucket_and_prefixes_are_networks() {
        let mut rng = Rng::new(3);
        let u = Universe::new(&mut rng);
        let b4: Vec<u32> = u
            .bucket_v4
            .iter()
            .map(|a| ban_bucket_v4(u32::from_ne_bytes(a.octets()), BAN_BUCKET_BITS))
            .collect();
        assert!(b4.len() > BAN_SLOTS && b4.iter().all(|b| *b == b4[0]));
        let b6: Vec<u32> = u
            .bucket_v6
            .iter()
            .map(|a| {
                let x = u128::from(*a);
                ban_bucket_v6((x >> 64) as u64, x as u64, BAN_BUCKET_BITS)
            })
            .collect();
        assert!(b6.len() > BAN_SLOTS && b6.iter().all(|b| *b == b6[0]));
        for _ in 0..200 {
            let v6 = rng.one_in(2);
            let n = u.prefix(&mut rng, v6, 0);
            assert_eq!(n, n.trunc(), "{n} has host bits");
        }
    }
}

//! The frames `waf gen` sends: the template frame it repeats (built with
//! [`crate::packet`]), the source pools and pool selector in the form of
//! the `waf_gen` program's configuration, and [`Rewriter`], the program's
//! per-frame rewrite of the source done in userspace (the AF_PACKET engine
//! sends with it; tests compare it with the kernel's).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use waf_common::r#gen::{
    ADDR_MUL, ADDR_MUL_HI, GenConfig, GenPool, GenState, MAX_POOLS, SELECT_SLOTS,
};

use super::args::{GenOptions, Proto};
use crate::packet::{FrameSpec, L4, tcp};

/// The smallest frame sent (an Ethernet minimum frame without its FCS).
pub const MIN_FRAME: usize = 60;
/// The largest frame sent (a 1500-byte MTU frame without its FCS).
pub const MAX_FRAME: usize = 1514;

/// The HTTP request `--proto http` carries (without padding).
fn http_request(dst: IpAddr) -> String {
    let host = match dst {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: waf-gen\r\n\r\n")
}

fn headers_len(dst: IpAddr, proto: Proto) -> usize {
    14 + if dst.is_ipv4() { 20 } else { 40 } + if proto == Proto::Udp { 8 } else { 20 }
}

/// The smallest `--size` for a family and protocol.
pub fn min_frame(dst: IpAddr, proto: Proto) -> usize {
    let mut n = headers_len(dst, proto);
    if proto == Proto::Http {
        n += http_request(dst).len();
    }
    n.max(MIN_FRAME)
}

/// The frame the generator repeats: from the first address of the first
/// pool, to `dst`, padded to `size` with payload (HTTP: a padding header).
pub fn template_frame(opts: &GenOptions, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Vec<u8> {
    let src = opts
        .src
        .first()
        .map(|n| n.network())
        .unwrap_or(match opts.dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
    let sport = opts.sport.unwrap_or(1024);
    let room = opts.size - headers_len(opts.dst, opts.proto);
    let (flags, payload) = match opts.proto {
        Proto::Udp => (None, vec![0u8; room]),
        Proto::Syn => (Some(tcp::SYN), vec![0u8; room]),
        Proto::Http => (Some(tcp::PSH | tcp::ACK), http_payload(opts.dst, room)),
    };
    let l4 = match flags {
        None => L4::Udp {
            sport,
            dport: opts.dport,
        },
        Some(flags) => L4::Tcp {
            sport,
            dport: opts.dport,
            flags,
        },
    };
    let mut spec = FrameSpec::new(src, opts.dst).with_l4(l4);
    spec.payload = payload;
    spec.src_mac = src_mac;
    spec.dst_mac = dst_mac;
    let mut f = spec.build();
    f.resize(opts.size.max(f.len()), 0);
    f
}

/// The HTTP GET to `dst`, grown to `room` bytes with a padding header so
/// the bytes stay HTTP.
fn http_payload(dst: IpAddr, room: usize) -> Vec<u8> {
    let mut p = http_request(dst).into_bytes();
    let pad = room.saturating_sub(p.len());
    if pad > 0 {
        let fill = pad.saturating_sub("X-Pad: \r\n".len());
        let mut h = format!("X-Pad: {}\r\n", "a".repeat(fill)).into_bytes();
        h.truncate(pad);
        let at = p.len() - 2;
        p.splice(at..at, h);
    }
    p
}

/// A pool in the program's form (host order base and varying bits).
pub fn pool_of(net: &IpNet) -> GenPool {
    match net {
        IpNet::V4(n) => GenPool {
            base_hi: 0,
            base_lo: u64::from(u32::from(n.network())),
            mask_hi: 0,
            mask_lo: u64::from(u32::from(n.hostmask())),
        },
        IpNet::V6(n) => {
            let b = u128::from(n.network());
            let m = u128::from(n.hostmask());
            GenPool {
                base_hi: (b >> 64) as u64,
                base_lo: b as u64,
                mask_hi: (m >> 64) as u64,
                mask_lo: m as u64,
            }
        }
    }
}

/// The program's configuration for `opts`: the pools (attacking first,
/// then legitimate) and a selector that interleaves them by weight
/// (smooth weighted round robin over 256 slots).
pub fn gen_config(opts: &GenOptions) -> GenConfig {
    let mut cfg = GenConfig {
        family: if opts.dst.is_ipv4() { 4 } else { 6 },
        proto: if opts.proto == Proto::Udp { 17 } else { 6 },
        ..Default::default()
    };
    if opts.sport.is_none() {
        cfg.sport_base = 1024;
        cfg.sport_mask = 0x7fff;
    }
    let mut weights = Vec::new();
    let attack_share = if opts.legit.is_empty() {
        1.0
    } else {
        1.0 - opts.legit_share
    };
    for (i, net) in opts.src.iter().chain(&opts.legit).enumerate() {
        cfg.pools[i] = pool_of(net);
        weights.push(if i < opts.src.len() {
            attack_share / opts.src.len() as f64
        } else {
            opts.legit_share / opts.legit.len() as f64
        });
    }
    let total: f64 = weights.iter().sum();
    let mut current = vec![0.0f64; weights.len()];
    for slot in cfg.select.iter_mut() {
        let mut best = 0;
        for i in 0..weights.len() {
            current[i] += weights[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        *slot = best as u8;
    }
    cfg
}

/// The generator's per-frame rewrite done in userspace, exactly as the
/// `waf_gen` program does it (the AF_PACKET engine uses it, and tests
/// compare the two).
#[derive(Clone, Debug)]
pub struct Rewriter {
    /// The configuration.
    pub cfg: GenConfig,
    /// Frames and per-pool sequence numbers so far.
    pub state: GenState,
}

fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn word(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

fn set_word(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

impl Rewriter {
    /// A rewriter starting at frame 0.
    pub fn new(cfg: GenConfig) -> Self {
        Self {
            cfg,
            state: GenState::default(),
        }
    }

    /// Rewrites the source of `f` (an untagged frame of the configured
    /// family and protocol) for the next frame of the sequence.
    pub fn apply(&mut self, f: &mut [u8]) {
        let cfg = &self.cfg;
        if cfg.family == 0 {
            return;
        }
        let slot = (self.state.frames as usize) % SELECT_SLOTS;
        self.state.frames += 1;
        let idx = cfg.select[slot] as usize % MAX_POOLS;
        let n = self.state.per_pool[idx];
        self.state.per_pool[idx] = n + 1;
        let pool = cfg.pools[idx];
        let lo = n.wrapping_mul(ADDR_MUL);
        let hi = n.wrapping_mul(ADDR_MUL_HI);
        let (saddr, l4, ip_csum) = if cfg.family == 4 {
            (26, 34, Some(24))
        } else {
            (22, 54, None)
        };
        let udp = cfg.proto == 17;
        let l4_csum = l4 + if udp { 6 } else { 16 };
        if f.len() < l4_csum + 2 {
            return;
        }
        let new: Vec<u8> = if cfg.family == 4 {
            ((pool.base_lo | (lo & pool.mask_lo)) as u32)
                .to_be_bytes()
                .to_vec()
        } else {
            let a = (u128::from(pool.base_hi | (hi & pool.mask_hi)) << 64)
                | u128::from(pool.base_lo | (lo & pool.mask_lo));
            a.to_be_bytes().to_vec()
        };
        let mut delta = 0u64;
        for (i, pair) in new.chunks(2).enumerate() {
            let at = saddr + 2 * i;
            let w = u16::from_be_bytes([pair[0], pair[1]]);
            delta += u64::from(!word(f, at)) + u64::from(w);
            set_word(f, at, w);
        }
        if let Some(at) = ip_csum {
            let c = !fold(u64::from(!word(f, at)) + delta);
            set_word(f, at, c);
        }
        if cfg.sport_mask != 0 {
            let p = (cfg.sport_base + (((lo >> 32) as u32) & cfg.sport_mask)) as u16;
            delta += u64::from(!word(f, l4)) + u64::from(p);
            set_word(f, l4, p);
        }
        let old = word(f, l4_csum);
        if udp && old == 0 {
            return;
        }
        let mut c = !fold(u64::from(!old) + delta);
        if udp && c == 0 {
            c = 0xffff;
        }
        set_word(f, l4_csum, c);
    }
}

#[cfg(test)]
mod tests {
    use super::{super::args::test_args, *};
    use crate::packet::checksum;

    fn verify(f: &[u8], v4: bool, udp: bool) {
        let (l3, l4) = if v4 { (14, 34) } else { (14, 54) };
        if v4 {
            assert_eq!(checksum(&[&f[l3..l4]]), 0, "IPv4 header checksum");
        }
        let seg_len = if v4 {
            u16::from_be_bytes([f[16], f[17]]) as usize - 20
        } else {
            u16::from_be_bytes([f[18], f[19]]) as usize
        };
        let seg = &f[l4..l4 + seg_len];
        let proto = if udp { 17u8 } else { 6 };
        let pseudo: Vec<u8> = if v4 {
            let mut p = f[26..34].to_vec();
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(seg_len as u16).to_be_bytes());
            p
        } else {
            let mut p = f[22..54].to_vec();
            p.extend_from_slice(&(seg_len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
            p
        };
        assert_eq!(checksum(&[&pseudo, seg]), 0, "L4 checksum");
    }

    #[test]
    fn rewrites_keep_checksums_valid_and_cover_the_pool() {
        for (dst, src, proto) in [
            ("192.0.2.1", "198.51.100.0/24", "udp"),
            ("192.0.2.1", "198.51.100.0/24", "syn"),
            ("192.0.2.1", "198.51.100.0/24", "http"),
            ("2001:db8::1", "2001:db8:bad::/120", "udp"),
            ("2001:db8::1", "2001:db8:bad::/120", "http"),
        ] {
            let o = test_args(&[
                ("dst", dst),
                ("src", src),
                ("proto", proto),
                ("size", "200"),
            ])
            .resolve()
            .unwrap();
            let mut f = template_frame(&o, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            assert_eq!(f.len(), 200);
            let v4 = dst.contains('.');
            verify(&f, v4, proto == "udp");
            let mut rw = Rewriter::new(gen_config(&o));
            let mut seen = std::collections::HashSet::new();
            for _ in 0..256 {
                rw.apply(&mut f);
                verify(&f, v4, proto == "udp");
                let src = if v4 {
                    f[26..30].to_vec()
                } else {
                    f[22..38].to_vec()
                };
                let net: IpNet = src_parse(&src);
                assert!(o.src[0].contains(&net.addr()), "{net} in {}", o.src[0]);
                seen.insert(src);
            }
            assert_eq!(seen.len(), 256, "256 frames cover the 256 addresses");
        }
    }

    fn src_parse(b: &[u8]) -> IpNet {
        if b.len() == 4 {
            IpNet::from(IpAddr::from(<[u8; 4]>::try_from(b).unwrap()))
        } else {
            IpNet::from(IpAddr::from(<[u8; 16]>::try_from(b).unwrap()))
        }
    }

    #[test]
    fn selector_mixes_by_weight() {
        let o = test_args(&[
            ("src", "198.51.100.0/24"),
            ("src", "203.0.113.0/24"),
            ("legit", "192.0.2.0/28"),
            ("legit-share", "25"),
        ])
        .resolve()
        .unwrap();
        let cfg = gen_config(&o);
        let mut n = [0usize; 3];
        for s in cfg.select {
            n[s as usize] += 1;
        }
        assert_eq!(n, [96, 96, 64]);
        // Interleaved, not in runs.
        assert!(cfg.select[..8].contains(&2));
    }

    #[test]
    fn http_frames_carry_a_get() {
        let o = test_args(&[("proto", "http"), ("size", "300")])
            .resolve()
            .unwrap();
        let f = template_frame(&o, [0; 6], [0; 6]);
        assert_eq!(f.len(), 300);
        let payload = String::from_utf8_lossy(&f[54..]);
        assert!(payload.starts_with("GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n"));
        assert!(payload.ends_with("\r\n\r\n"), "{payload:?}");
        assert_eq!(f[47], tcp::PSH | tcp::ACK);
    }
}

//! A model of the firewall's XDP program (`waf-ebpf/src/xdp/`) in plain
//! Rust: the verdict (XDP action and verdict counter) and the auxiliary
//! counters it gives a frame under a map state, written from reading the
//! program and the policy it states, without its data structures (no
//! bitmaps, buckets or tries: lists are scanned, bans looked up by address).
//! `tests/tests/xdp_diff.rs` compares it with the real program under
//! BPF_PROG_TEST_RUN on random frames and map states.
//!
//! The policy, in the program's order: a frame that cannot be parsed, or is
//! not IP, is passed; an allowlisted source is passed; IPv6 neighbour
//! discovery is passed; emergency mode drops the rest; then a ban in force
//! on the address or on any prefix covering it drops, then the blocklist;
//! monitor mode counts what would be dropped and passes it. Rate limits are
//! modelled only where no source can reach its burst ([`MapState::rate`]):
//! then the limiter's only visible effect is counting new sources
//! ([`RateTable`]).

mod parse;
mod rate;
mod sample;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use ipnet::IpNet;
use waf_common::{Counter, SAMPLE_PORTS, counter};

pub use self::{
    parse::{
        EXT_8OCTET, EXT_AH, EXT_FRAGMENT, MAX_EXT_HEADERS, MAX_L4_OFFSET, MAX_VLAN_TAGS, Meta,
        Parsed, VLAN_TPIDS, parse,
    },
    rate::{RateKey, RateTable},
    sample::Sample,
};
use crate::{XDP_DROP, XDP_PASS};

/// Everything the program's verdict depends on: the lists, the bans, the
/// settings and the program's clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapState {
    /// Allowlist entries.
    pub allow: Vec<IpNet>,
    /// Blocklist entries.
    pub block: Vec<IpNet>,
    /// Prefix bans with their expiry (program clock, ns; 0 = permanent).
    pub prefix_bans: Vec<(IpNet, u64)>,
    /// Exact bans with their expiry (0 = permanent), keyed as the program
    /// keys them: an IPv4 address, an IPv6 address masked to `v6_prefix`
    /// (a key with bits set past it matches no source).
    pub bans: Vec<(IpAddr, u64)>,
    /// The IPv6 prefix the program masks sources to for exact bans and
    /// rate limits (0 or 128: the whole address).
    pub v6_prefix: u8,
    /// Monitor mode.
    pub monitor: bool,
    /// Emergency mode.
    pub emergency: bool,
    /// Rate limits on, with bursts no source reaches: the IPv6 prefix
    /// sources are counted by. None: rate limits off.
    pub rate: Option<u8>,
    /// TCP ports sampled for the mirror (0: unused).
    pub sample_ports: [u16; SAMPLE_PORTS],
    /// Payload bytes copied per sample (at most `waf_common::SAMPLE_MAX`).
    pub sample_bytes: u32,
    /// The program's clock while the frames run (ns). Expiries must not lie
    /// between this and the end of the run: every instant of it then gives
    /// the same answers.
    pub now: u64,
}

/// What the program does with one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// XDP_PASS or XDP_DROP.
    pub action: u32,
    /// The verdict counter (`waf_common::counter`, below `VERDICTS`).
    pub counter: u32,
    /// Counted as a fragment.
    pub fragment: bool,
    /// Counted as an IPv6 chain longer than the walk.
    pub too_many_ext_headers: bool,
    /// Ban entries that matched but had expired (exact, prefix: 0 to 2).
    pub bans_expired: u8,
    /// The rate key charged, when rate limits are on and the frame got to
    /// the limiter.
    pub rate_key: Option<RateKey>,
    /// Sampled for the mirror (counted as sent or lost).
    pub sampled: bool,
}

impl Verdict {
    fn pass(counter: u32) -> Self {
        Self {
            action: XDP_PASS,
            counter,
            fragment: false,
            too_many_ext_headers: false,
            bans_expired: 0,
            rate_key: None,
            sampled: false,
        }
    }
}

/// The key the program looks `src` up by in the exact bans: an IPv6
/// source masked to `v6_prefix` bits (0 or 128: all of them).
pub fn source_key(src: IpAddr, v6_prefix: u8) -> IpAddr {
    match RateKey::of(src, v6_prefix) {
        RateKey::V6(k) => IpAddr::V6(k.into()),
        RateKey::V4(_) => src,
    }
}

/// A ban is in force while it is permanent (0) or not yet expired.
pub fn in_force(expires: u64, now: u64) -> bool {
    expires == 0 || now < expires
}

impl MapState {
    /// Is `src` on the allowlist?
    pub fn allowed(&self, src: IpAddr) -> bool {
        self.allow.iter().any(|n| n.contains(&src))
    }

    /// Is `src` on the blocklist?
    pub fn blocked(&self, src: IpAddr) -> bool {
        self.block.iter().any(|n| n.contains(&src))
    }

    /// The expiry of the exact ban of `src`, if any.
    pub fn ban(&self, src: IpAddr) -> Option<u64> {
        let key = source_key(src, self.v6_prefix);
        self.bans.iter().find(|(a, _)| *a == key).map(|(_, e)| *e)
    }

    /// The prefix bans covering `src`.
    pub fn prefix_bans_of(&self, src: IpAddr) -> impl Iterator<Item = &(IpNet, u64)> {
        self.prefix_bans
            .iter()
            .filter(move |(n, _)| n.contains(&src))
    }

    /// The verdict of the program on `frame`.
    pub fn verdict(&self, frame: &[u8]) -> Verdict {
        match parse(frame) {
            Parsed::NotIp => Verdict::pass(counter::NOT_IP),
            Parsed::Unparsable => Verdict::pass(counter::UNPARSABLE),
            Parsed::V4(src, meta) => self.check(IpAddr::V4(src), &meta),
            Parsed::V6(src, meta) => self.check(IpAddr::V6(src), &meta),
        }
    }

    fn check(&self, src: IpAddr, meta: &Meta) -> Verdict {
        let mut v = self.decide(src, meta);
        v.fragment = meta.fragment;
        v.too_many_ext_headers = meta.too_many_ext_headers;
        v.sampled = v.action == XDP_PASS && self.samples(meta);
        v
    }

    /// The source checks of an IP packet.
    fn decide(&self, src: IpAddr, meta: &Meta) -> Verdict {
        if self.allowed(src) {
            return Verdict::pass(counter::ALLOWLISTED);
        }
        let passed = if meta.malformed {
            counter::UNPARSABLE
        } else {
            counter::PASS
        };
        if meta.neighbour_discovery {
            return Verdict::pass(passed);
        }
        let mut v = Verdict::pass(passed);
        let deny = |mut v: Verdict, reason: u32, monitor_reason: u32| {
            if self.monitor {
                v.counter = monitor_reason;
            } else {
                v.action = XDP_DROP;
                v.counter = reason;
            }
            v
        };
        if self.emergency {
            return deny(v, counter::EMERGENCY, counter::MONITOR_EMERGENCY);
        }
        if let Some(expires) = self.ban(src) {
            if in_force(expires, self.now) {
                return deny(v, counter::BANNED, counter::MONITOR_BANNED);
            }
            v.bans_expired += 1;
        }
        let mut covered = false;
        for (_, expires) in self.prefix_bans_of(src) {
            if in_force(*expires, self.now) {
                return deny(v, counter::BANNED, counter::MONITOR_BANNED);
            }
            covered = true;
        }
        if covered {
            v.bans_expired += 1;
        }
        if self.blocked(src) {
            return deny(v, counter::BLOCKLISTED, counter::MONITOR_BLOCKLISTED);
        }
        if let Some(prefix) = self.rate {
            v.rate_key = Some(RateKey::of(src, prefix));
        }
        v
    }

    /// Does the sampler copy this passed segment for the mirror?
    fn samples(&self, meta: &Meta) -> bool {
        meta.dport != 0
            && (meta.payload_len != 0 || meta.syn)
            && self.sample_ports.contains(&meta.dport)
    }
}

/// Counter deltas as the program's per-CPU counters would show them, summed
/// over CPUs, indexed like `waf_common::counter`. Samples are counted at
/// `SAMPLES_SENT` whether the program could send them or lost them (the
/// ring buffer may be full): compare that index with sent + lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts(pub Vec<Counter>);

impl Default for Counts {
    fn default() -> Self {
        Self(vec![Counter::default(); counter::COUNT as usize])
    }
}

impl Counts {
    fn add(&mut self, index: u32, len: u64) {
        let c = &mut self.0[index as usize];
        c.packets += 1;
        c.bytes += len;
    }

    /// Counts one frame of `len` bytes with its verdict; `new_source`: the
    /// limiter saw its source for the first time.
    pub fn count(&mut self, v: &Verdict, len: u64, new_source: bool) {
        if v.fragment {
            self.add(counter::FRAGMENTS, len);
        }
        if v.too_many_ext_headers {
            self.add(counter::EXT_HEADERS_TOO_MANY, len);
        }
        for _ in 0..v.bans_expired {
            self.add(counter::BAN_EXPIRED, len);
        }
        if new_source {
            self.add(counter::RATE_NEW_SOURCES, len);
        }
        if v.sampled {
            self.add(counter::SAMPLES_SENT, len);
        }
        self.add(v.counter, len);
    }

    /// Kernel counter deltas in the model's terms: samples lost added to
    /// samples sent.
    pub fn from_kernel(delta: &[Counter]) -> Self {
        let mut c = delta.to_vec();
        let lost = c[counter::SAMPLES_LOST as usize];
        let sent = &mut c[counter::SAMPLES_SENT as usize];
        sent.packets += lost.packets;
        sent.bytes += lost.bytes;
        c[counter::SAMPLES_LOST as usize] = Counter::default();
        Self(c)
    }

    /// The indexes where `self` and `other` differ, with both values, as
    /// `name: model packets/bytes, kernel packets/bytes` lines.
    pub fn differences(&self, kernel: &Self) -> Vec<String> {
        self.0
            .iter()
            .zip(&kernel.0)
            .enumerate()
            .filter(|(_, (m, k))| m != k)
            .map(|(i, (m, k))| {
                format!(
                    "{}: model {}/{} B, kernel {}/{} B",
                    counter::NAMES[i],
                    m.packets,
                    m.bytes,
                    k.packets,
                    k.bytes
                )
            })
            .collect()
    }
}

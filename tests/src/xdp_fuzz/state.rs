//! Random map states: each state is the previous one changed by a few
//! random operations (entries added, updated and removed, now and then all
//! cleared), written to the kernel through `waf_user::dataplane` (the
//! daemon's writers: tries, bitmaps, ban buckets and their overflow hash)
//! and to the model, plus random settings.

use std::{net::IpAddr, time::Duration};

use ipnet::IpNet;
use waf_common::{BanEntry, ListEntry, SAMPLE_MAX, SAMPLE_PORTS, ban_reason};
use waf_user::dataplane::{DataplaneError, Maps, RateLimits, Settings};

use super::{rng::Rng, universe::Universe};
use crate::xdp_model::MapState;

/// Most entries of each list kept at once.
const MAX_ALLOW: usize = 10;
const MAX_BLOCK: usize = 24;
const MAX_PREFIX_BANS: usize = 24;
const MAX_BANS: usize = 48;

/// How far from the state's start an expiry "in force" lies: more than a
/// run takes, so no ban expires while frames run.
pub const IN_FORCE_FOR: Duration = Duration::from_secs(6 * 3600);

/// One change to the map state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Add (true) or remove an allowlist entry.
    Allow(IpNet, bool),
    /// Add (true) or remove a blocklist entry.
    Block(IpNet, bool),
    /// Add or update (with its expiry) or remove (None) a prefix ban.
    PrefixBan(IpNet, Option<u64>),
    /// Add or update or remove an exact ban.
    Ban(IpAddr, Option<u64>),
}

/// An expiry on the program's clock relative to `now` (the kernel's clock
/// at the state's start): permanent, in force for hours, expired long ago,
/// expired exactly now or a tick ago, the extremes.
pub fn expiry(rng: &mut Rng, now: u64, tick: u64) -> u64 {
    let hour = 3_600_000_000_000u64;
    let past = |d: u64| now.saturating_sub(d).max(1);
    match rng.weighted(&[25, 25, 20, 8, 7, 5, 5, 5]) {
        0 => 0,
        1 => now + IN_FORCE_FOR.as_nanos() as u64,
        2 => past(hour),
        3 => past(0),
        4 => past(tick),
        5 => 1,
        6 => u64::MAX,
        _ => now + IN_FORCE_FOR.as_nanos() as u64 + rng.u64() % hour,
    }
}

/// The operations that turn `state` into the next state, whose expiries
/// are relative to `now` (the program's clock at its start).
pub fn ops(rng: &mut Rng, u: &Universe, state: &MapState, now: u64, tick: u64) -> Vec<Op> {
    let mut ops = Vec::new();
    if rng.one_in(25) {
        ops.extend(state.allow.iter().map(|n| Op::Allow(*n, false)));
        ops.extend(state.block.iter().map(|n| Op::Block(*n, false)));
        ops.extend(
            state
                .prefix_bans
                .iter()
                .map(|(n, _)| Op::PrefixBan(*n, None)),
        );
        ops.extend(state.bans.iter().map(|(a, _)| Op::Ban(*a, None)));
        return ops;
    }
    let mut next = state.clone();
    for _ in 0..rng.range(0, 12) {
        let v6 = rng.one_in(2);
        let op = match rng.weighted(&[8, 5, 12, 7, 14, 7, 18, 9]) {
            0 if next.allow.len() < MAX_ALLOW => Op::Allow(u.prefix(rng, v6, 12), true),
            0 | 1 if !next.allow.is_empty() => Op::Allow(*rng.pick(&next.allow), false),
            2 if next.block.len() < MAX_BLOCK => Op::Block(u.prefix(rng, v6, 0), true),
            2 | 3 if !next.block.is_empty() => Op::Block(*rng.pick(&next.block), false),
            4 if next.prefix_bans.len() < MAX_PREFIX_BANS => {
                // Updates of an existing one too.
                let net = if !next.prefix_bans.is_empty() && rng.one_in(4) {
                    rng.pick(&next.prefix_bans).0
                } else {
                    u.prefix(rng, v6, 0)
                };
                Op::PrefixBan(net, Some(expiry(rng, now, tick)))
            }
            4 | 5 if !next.prefix_bans.is_empty() => {
                Op::PrefixBan(rng.pick(&next.prefix_bans).0, None)
            }
            6 if next.bans.len() < MAX_BANS => {
                let a = match rng.weighted(&[50, 30, 20]) {
                    0 => u.source(rng, v6, &next),
                    1 if v6 => IpAddr::V6(*rng.pick(&u.bucket_v6)),
                    1 => IpAddr::V4(*rng.pick(&u.bucket_v4)),
                    _ if !next.bans.is_empty() => rng.pick(&next.bans).0,
                    _ => u.source(rng, v6, &next),
                };
                // Keyed as the daemon keys an IPv6 ban (its prefix), but
                // now and then with host bits set: a key no source matches.
                let a = if rng.one_in(8) {
                    a
                } else {
                    crate::xdp_model::source_key(a, next.v6_prefix)
                };
                Op::Ban(a, Some(expiry(rng, now, tick)))
            }
            6 | 7 if !next.bans.is_empty() => Op::Ban(rng.pick(&next.bans).0, None),
            _ => continue,
        };
        apply(&mut next, &op);
        ops.push(op);
    }
    ops
}

/// Applies `op` to the model.
pub fn apply(state: &mut MapState, op: &Op) {
    fn set<K: PartialEq + Copy, V>(v: &mut Vec<(K, V)>, k: K, value: Option<V>) {
        v.retain(|(x, _)| *x != k);
        if let Some(value) = value {
            v.push((k, value));
        }
    }
    match op {
        Op::Allow(n, add) => {
            state.allow.retain(|x| x != n);
            if *add {
                state.allow.push(*n);
            }
        }
        Op::Block(n, add) => {
            state.block.retain(|x| x != n);
            if *add {
                state.block.push(*n);
            }
        }
        Op::PrefixBan(n, e) => set(&mut state.prefix_bans, *n, *e),
        Op::Ban(a, e) => set(&mut state.bans, *a, *e),
    }
}

fn ban_entry(expires_ns: u64) -> BanEntry {
    BanEntry {
        expires_ns,
        reason: ban_reason::MANUAL,
        _reserved: 0,
    }
}

/// Writes `op` to the kernel through the data plane's writers.
pub fn write(maps: &mut Maps, op: &Op) -> Result<(), DataplaneError> {
    match op {
        Op::Allow(n, true) => maps.allow.insert(*n, ListEntry::default()),
        Op::Allow(n, false) => maps.allow.remove(*n).map(drop),
        Op::Block(n, true) => maps.block.insert(*n, ListEntry::default()),
        Op::Block(n, false) => maps.block.remove(*n).map(drop),
        Op::PrefixBan(n, Some(e)) => maps.prefix_bans.insert(*n, ban_entry(*e)),
        Op::PrefixBan(n, None) => maps.prefix_bans.remove(*n).map(drop),
        Op::Ban(a, Some(e)) => maps.bans.insert(*a, ban_entry(*e)),
        Op::Ban(a, None) => maps.bans.remove(*a).map(drop),
    }
}

/// Rate limits that no source of a run can reach: a rate of 10^9 per second
/// (1 ns of credit per packet, per byte, per SYN) with bursts of 10^12
/// packets and SYNs and 10^13 bytes (windows of 1000 s and about 3 hours),
/// more than a run of any length sends from one source.
pub fn unreachable_limits(rng: &mut Rng, v6_prefix: u8) -> RateLimits {
    let on = rng.range(1, 7);
    RateLimits {
        pps: (on & 1 != 0).then_some(1_000_000_000),
        burst: 1_000_000_000_000,
        bps: (on & 2 != 0).then_some(1_000_000_000),
        burst_bytes: 10_000_000_000_000,
        syn_pps: (on & 4 != 0).then_some(1_000_000_000),
        syn_burst: 1_000_000_000_000,
        v6_prefix,
        event_interval: Duration::from_secs(1),
    }
}

/// Random settings (monitor, emergency, sampled ports); with `limiter`,
/// rate limits no source reaches, IPv6 sources counted per `/limiter`.
pub fn settings(rng: &mut Rng, limiter: Option<u8>) -> Settings {
    let mut sample_ports = [0u16; SAMPLE_PORTS];
    if rng.one_in(2) {
        for p in sample_ports.iter_mut().take(rng.range(1, 3)) {
            let any = rng.u32() as u16 | 1;
            *p = *rng.pick(&[80, 443, 8080, any]);
        }
    }
    let any = rng.below(SAMPLE_MAX) as u32;
    Settings {
        monitor: rng.percent(20),
        emergency: rng.percent(10),
        rate: match limiter {
            Some(prefix) => unreachable_limits(rng, prefix),
            None => RateLimits::default(),
        },
        sample_ports,
        sample_bytes: *rng.pick(&[0, 1, 64, 512, SAMPLE_MAX as u32, any]),
    }
}

//! The per-CPU counter array: its slot ([`Counter`]) and the index of every
//! counter in it.
//!
//! Every packet is counted in exactly one *verdict* counter (the first
//! [`VERDICTS`] entries). The entries after them are auxiliary counters that
//! do not partition traffic.

/// One counter slot: packets and bytes (per CPU; userspace sums them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted (frame length as seen by XDP).
    pub bytes: u64,
}

/// Passed: nothing matched.
pub const PASS: u32 = 0;
/// Passed because the source is on the allowlist.
pub const ALLOWLISTED: u32 = 1;
/// Dropped: the source (or its prefix) is banned.
pub const BANNED: u32 = 2;
/// Dropped: the source is on the blocklist.
pub const BLOCKLISTED: u32 = 3;
/// Dropped: the source exceeded its packet or byte rate.
pub const RATE_LIMITED: u32 = 4;
/// Dropped: the source exceeded its TCP SYN rate.
pub const SYN_LIMITED: u32 = 5;
/// Dropped: emergency mode and the source is not allowlisted.
pub const EMERGENCY: u32 = 6;
/// Passed: a header could not be parsed (truncated, bad IHL, bad version).
pub const UNPARSABLE: u32 = 7;
/// Passed: not IPv4 or IPv6 (ARP, LLDP, ...).
pub const NOT_IP: u32 = 8;
/// Monitor mode: would have been dropped as banned.
pub const MONITOR_BANNED: u32 = 9;
/// Monitor mode: would have been dropped as blocklisted.
pub const MONITOR_BLOCKLISTED: u32 = 10;
/// Monitor mode: would have been dropped by the rate limit.
pub const MONITOR_RATE_LIMITED: u32 = 11;
/// Monitor mode: would have been dropped by the SYN rate limit.
pub const MONITOR_SYN_LIMITED: u32 = 12;
/// Monitor mode: would have been dropped by emergency mode.
pub const MONITOR_EMERGENCY: u32 = 13;
/// Dropped: a source policy (country, network, cloud range, bogon) matched.
pub const SOURCE_POLICY: u32 = 14;
/// Monitor mode: would have been dropped by a source policy.
pub const MONITOR_SOURCE_POLICY: u32 = 15;
/// Number of verdict counters: every packet lands in exactly one of them.
pub const VERDICTS: u32 = 16;

/// Auxiliary: a ban entry matched but had expired (the packet went on).
pub const BAN_EXPIRED: u32 = 16;
/// Auxiliary: a rate event could not be written (ring buffer full).
pub const EVENTS_LOST: u32 = 17;
/// Auxiliary: rate events written to the ring buffer.
pub const EVENTS_SENT: u32 = 18;
/// Auxiliary: IPv4 non-first fragments (no L4 header) seen.
pub const FRAGMENTS: u32 = 19;
/// Auxiliary: IPv6 packets whose extension header chain was longer than
/// the program walks (source checks still applied).
pub const EXT_HEADERS_TOO_MANY: u32 = 20;
/// Auxiliary: new sources entered into the rate table.
pub const RATE_NEW_SOURCES: u32 = 21;
/// Auxiliary: TCP payloads sampled for the HTTP mirror.
pub const SAMPLES_SENT: u32 = 22;
/// Auxiliary: samples lost because the ring buffer was full.
pub const SAMPLES_LOST: u32 = 23;
/// Auxiliary: a source policy in monitor mode matched (would have dropped;
/// the packet went on to the checks after it).
pub const SOURCE_POLICY_MONITORED: u32 = 24;
/// Total number of counters.
pub const COUNT: u32 = 25;

/// Stable, Prometheus-friendly names, indexed like the counters.
pub const NAMES: [&str; COUNT as usize] = [
    "pass",
    "allowlisted",
    "banned",
    "blocklisted",
    "rate_limited",
    "syn_limited",
    "emergency",
    "unparsable",
    "not_ip",
    "monitor_banned",
    "monitor_blocklisted",
    "monitor_rate_limited",
    "monitor_syn_limited",
    "monitor_emergency",
    "source_policy",
    "monitor_source_policy",
    "ban_expired",
    "events_lost",
    "events_sent",
    "fragments",
    "ext_headers_too_many",
    "rate_new_sources",
    "samples_sent",
    "samples_lost",
    "source_policy_monitored",
];

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)], integers only, no padding (checked below).
    unsafe impl aya::Pod for super::Counter {}
}

// Layout checks: a size that is not the sum of the fields means padding.
const _: () = assert!(core::mem::size_of::<Counter>() == 16);
const _: () = assert!(VERDICTS as usize <= NAMES.len());

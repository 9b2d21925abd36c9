//! Types shared by the XDP program (`waf-ebpf`) and the daemon (`waf-user`).
//!
//! Everything here is `#[repr(C)]` and free of padding: the same bytes are
//! written by one side and read by the other through BPF maps and the ring
//! buffer. Changing a layout changes the ABI between the two halves; the
//! [`ABI_VERSION`] constant is stored in the config map so a daemon never
//! adopts pinned maps of an incompatible layout.
#![no_std]

/// Bumped whenever a map layout or meaning below changes.
pub const ABI_VERSION: u32 = 2;

/// Names of the maps in the object file (and of their pins in the bpffs
/// directory). Kept within the kernel's 15-character object name limit.
pub mod map_names {
    /// [`crate::XdpConfig`] in an array of one entry.
    pub const CONFIG: &str = "WAF_CONFIG";
    /// Per-CPU [`crate::Counter`] array indexed by [`crate::counter`].
    pub const COUNTERS: &str = "WAF_COUNTERS";
    /// Ring buffer of [`crate::RateEvent`] records.
    pub const EVENTS: &str = "WAF_EVENTS";
    /// One `u64`: the jiffies `waf_clock` read (not pinned: scratch).
    pub const CLOCK: &str = "WAF_CLOCK";

    /// IPv4 allowlist: LPM trie of `u32` (network order) -> [`crate::ListEntry`].
    pub const ALLOW_V4: &str = "WAF_ALLOW_V4";
    /// IPv6 allowlist: LPM trie of `[u8; 16]` -> [`crate::ListEntry`].
    pub const ALLOW_V6: &str = "WAF_ALLOW_V6";
    /// IPv4 allowlist bitmap of fully covered /24s.
    pub const ALLOW_F24: &str = "WAF_ALLOW_F24";
    /// IPv6 allowlist prefilter bitmaps.
    pub const ALLOW_F6: &str = "WAF_ALLOW_F6";

    /// IPv4 blocklist: LPM trie -> [`crate::ListEntry`].
    pub const BLOCK_V4: &str = "WAF_BLOCK_V4";
    /// IPv6 blocklist: LPM trie -> [`crate::ListEntry`].
    pub const BLOCK_V6: &str = "WAF_BLOCK_V6";
    /// IPv4 blocklist bitmap of fully covered /24s.
    pub const BLOCK_F24: &str = "WAF_BLOCK_F24";
    /// IPv6 blocklist prefilter bitmaps.
    pub const BLOCK_F6: &str = "WAF_BLOCK_F6";

    /// IPv4 prefix bans: LPM trie -> [`crate::BanEntry`].
    pub const PBAN_V4: &str = "WAF_PBAN_V4";
    /// IPv6 prefix bans: LPM trie -> [`crate::BanEntry`].
    pub const PBAN_V6: &str = "WAF_PBAN_V6";
    /// The IPv4 /16 flags of the allowlist, the blocklist and the prefix
    /// bans, side by side (see [`crate::filter`]): one load per packet
    /// answers for all three.
    pub const LISTS_F16: &str = "WAF_LISTS_F16";
    /// IPv6 prefix-ban prefilter bitmaps.
    pub const PBAN_F6: &str = "WAF_PBAN_F6";

    /// Exact IPv4 bans: array of [`crate::BanBucketV4`] (8-way buckets).
    pub const BANS_V4: &str = "WAF_BANS_V4";
    /// Exact IPv6 bans: array of [`crate::BanBucketV6`].
    pub const BANS_V6: &str = "WAF_BANS_V6";
    /// IPv4 bans whose bucket is full: hash of `u32` -> [`crate::BanEntry`].
    pub const BANX_V4: &str = "WAF_BANX_V4";
    /// IPv6 bans whose bucket is full: hash of `[u8; 16]` -> [`crate::BanEntry`].
    pub const BANX_V6: &str = "WAF_BANX_V6";

    /// Per-source rate state for IPv4: array of [`crate::RateSlotV4`].
    pub const RATE_V4: &str = "WAF_RATE_V4";
    /// Per-source rate state for IPv6 prefixes: array of [`crate::RateSlotV6`].
    pub const RATE_V6: &str = "WAF_RATE_V6";

    /// Every map, in a stable order (for pinning, adopting and detaching).
    pub const ALL: [&str; 21] = [
        CONFIG, COUNTERS, EVENTS, ALLOW_V4, ALLOW_V6, ALLOW_F24, ALLOW_F6, BLOCK_V4, BLOCK_V6,
        BLOCK_F24, BLOCK_F6, PBAN_V4, PBAN_V6, LISTS_F16, PBAN_F6, BANS_V4, BANS_V6, BANX_V4,
        BANX_V6, RATE_V4, RATE_V6,
    ];

    /// Maps of earlier layouts that `waf detach` also unpins.
    pub const RETIRED: [&str; 3] = ["WAF_ALLOW_F16", "WAF_BLOCK_F16", "WAF_PBAN_F16"];
}

/// Name of the firewall's XDP program function in its object (`waf-xdp`,
/// the object the daemon loads: this program, [`CLOCK_PROGRAM_NAME`] and the
/// maps of [`map_names`], nothing else).
pub const PROGRAM_NAME: &str = "waf_xdp";
/// Name of the program that publishes the kernel's jiffies in
/// [`map_names::CLOCK`] when run with BPF_PROG_TEST_RUN.
pub const CLOCK_PROGRAM_NAME: &str = "waf_clock";

/// The tools object (`waf-tools`): programs the daemon never attaches, so
/// that a daemon start creates none of their maps and `waf gen` none of the
/// firewall's. It holds the generator's program and maps ([`crate::r#gen`])
/// and the benchmarks' floor and reference filter (below).
pub mod tools {
    /// Name of a trivial program that only returns `XDP_DROP`: the floor
    /// the benchmarks compare against.
    pub const FLOOR_PROGRAM_NAME: &str = "waf_floor";
    /// Name of the benchmarks' reference filter: the textbook XDP ban
    /// filter, one hash lookup of the IPv4 source per packet.
    pub const REFERENCE_PROGRAM_NAME: &str = "waf_reference";
    /// The reference filter's map: `u32` IPv4 source (network order) ->
    /// `u64`. Only benchmarks fill it; it is never pinned.
    pub const REFERENCE_MAP_NAME: &str = "WAF_REF_BANS";
    /// Capacity of the reference filter's map.
    pub const REFERENCE_CAPACITY: u32 = 1 << 18;
}

/// log2 of the number of exact-ban buckets per family.
pub const BAN_BUCKET_BITS: u32 = 16;
/// Exact-ban buckets per family (8 slots each).
pub const BAN_BUCKETS: u32 = 1 << BAN_BUCKET_BITS;
/// Slots per exact-ban bucket.
pub const BAN_SLOTS: usize = 8;
/// Capacity of each overflow ban hash (bans whose bucket is full). With the
/// buckets this gives each family room for more than a million bans.
pub const BANX_CAPACITY: u32 = 1 << 20;
/// Capacity of each prefix-ban trie.
pub const PBAN_CAPACITY: u32 = 1 << 16;
/// Capacity of each blocklist trie.
pub const BLOCK_CAPACITY: u32 = 1 << 18;
/// Capacity of each allowlist trie.
pub const ALLOW_CAPACITY: u32 = 1 << 16;
/// log2 of the number of rate-state slots per family.
pub const RATE_SLOT_BITS: u32 = 17;
/// Rate-state slots per family (2-way set associative).
pub const RATE_SLOTS: u32 = 1 << RATE_SLOT_BITS;
/// Entries of each rate array: sets of two slots (one load per packet).
pub const RATE_SETS: u32 = RATE_SLOTS / 2;
/// Ring buffer size in bytes (a power of two and a multiple of the page size).
pub const EVENTS_BYTES: u32 = 1 << 22;

/// Flag for array maps userspace maps into memory (`BPF_F_MMAPABLE`).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// A fast 64-bit mixer (multiply by the golden ratio, fold): the hash both
/// sides use to place bans and rate state.
#[inline(always)]
pub const fn mix64(x: u64) -> u64 {
    let x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// Folds an IPv6 address (two big-endian halves) to 64 bits.
#[inline(always)]
pub const fn fold_v6(hi: u64, lo: u64) -> u64 {
    hi ^ lo.rotate_left(32).wrapping_mul(0xff51_afd7_ed55_8ccd)
}

/// The ban bucket of an IPv4 address (`u32` from its octets in memory order).
#[inline(always)]
pub const fn ban_bucket_v4(addr: u32) -> u32 {
    (mix64(addr as u64) >> (64 - BAN_BUCKET_BITS)) as u32
}

/// The ban bucket of an IPv6 address given as two big-endian halves.
#[inline(always)]
pub const fn ban_bucket_v6(hi: u64, lo: u64) -> u32 {
    (mix64(fold_v6(hi, lo)) >> (64 - BAN_BUCKET_BITS)) as u32
}

/// The rate set (two slots) of an IPv4 source.
#[inline(always)]
pub const fn rate_set_v4(addr: u32) -> u32 {
    (mix64(addr as u64 ^ 0x5bd1_e995) >> (65 - RATE_SLOT_BITS)) as u32
}

/// The rate set of an IPv6 source (masked to its prefix).
#[inline(always)]
pub const fn rate_set_v6(hi: u64, lo: u64) -> u32 {
    (mix64(fold_v6(hi, lo) ^ 0x5bd1_e995) >> (65 - RATE_SLOT_BITS)) as u32
}

/// Layout of the bitmaps that let the XDP program answer most allowlist,
/// blocklist and prefix-ban questions with one or two array loads instead of
/// an LPM trie walk (a trie lookup costs tens of nanoseconds of calls).
///
/// IPv4: a nibble of flags per /16 and list, the lists' nibbles of one /16
/// side by side in 16 bits ([`SET_BITS`](filter::SET_BITS) apart, four /16s
/// a `u64` word), so one load answers for every list:
/// - [`FULL`](filter::FULL): the whole /16 is covered by an entry of length
///   <= 16;
/// - [`MID`](filter::MID): some entry of length 17..=24 lies in this /16
///   (then the /24 bitmap, 2^24 bits, tells whether this /24 is covered);
/// - [`DEEP`](filter::DEEP): some entry longer than /24 lies in this /16
///   (then the trie).
///
/// IPv6, per list, three 65,536-bit prefilters: entries shorter than /32 set
/// the bits of the top 16 bits they cover, entries of /32../47 set the bit
/// of a hash of their top 32 bits, longer ones a hash of their top 48 bits.
/// A set bit only means "ask the trie".
///
/// Prefix bans use the same bitmaps as prefilters only (their value carries
/// an expiry the trie must give).
pub mod filter {
    /// Words in one 65,536-bit bitmap.
    pub const WORDS: u32 = 1024;
    /// /16 flag: whole /16 covered.
    pub const FULL: u64 = 1;
    /// /16 flag: entries of /17../24 inside.
    pub const MID: u64 = 2;
    /// /16 flag: entries longer than /24 inside.
    pub const DEEP: u64 = 4;
    /// Bits per list in the flags of one /16.
    pub const SET_BITS: u32 = 4;
    /// The allowlist's nibble in the flags of a /16.
    pub const SET_ALLOW: u32 = 0;
    /// The blocklist's nibble.
    pub const SET_BLOCK: u32 = 1;
    /// The prefix bans' nibble.
    pub const SET_PBAN: u32 = 2;
    /// Bits per /16 in the flag array (room for four lists).
    pub const F16_BITS_PER: u32 = 16;
    /// The flags of one list in the 16 bits of a /16.
    #[inline(always)]
    pub const fn set_flags(flags16: u64, set: u32) -> u64 {
        (flags16 >> (set * SET_BITS)) & 0xf
    }
    /// Words of the IPv4 /16 flag array (65,536 x 16 bits).
    pub const F16_WORDS: u32 = 65536 * F16_BITS_PER / 64;
    /// Words of the IPv4 /24 bitmap (2^24 bits).
    pub const F24_WORDS: u32 = 1 << 18;
    /// IPv6 prefilter level: top 16 bits, direct.
    pub const V6_16: u32 = 0;
    /// IPv6 prefilter level: hash of the top 32 bits.
    pub const V6_32: u32 = 1;
    /// IPv6 prefilter level: hash of the top 48 bits.
    pub const V6_48: u32 = 2;
    /// Words of an IPv6 prefilter array.
    pub const F6_WORDS: u32 = 3 * WORDS;

    /// The 16-bit index of a hashed IPv6 prefilter level.
    #[inline(always)]
    pub const fn v6_hash(x: u64) -> u32 {
        (crate::mix64(x) >> 48) as u32
    }
}

/// Indexes into the per-CPU counter array.
///
/// Every packet is counted in exactly one *verdict* counter (the first
/// [`VERDICTS`](counter::VERDICTS) entries). The entries after them are
/// auxiliary counters that do not partition traffic.
pub mod counter {
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
    /// Number of verdict counters: every packet lands in exactly one of them.
    pub const VERDICTS: u32 = 14;

    /// Auxiliary: a ban entry matched but had expired (the packet went on).
    pub const BAN_EXPIRED: u32 = 14;
    /// Auxiliary: a rate event could not be written (ring buffer full).
    pub const EVENTS_LOST: u32 = 15;
    /// Auxiliary: rate events written to the ring buffer.
    pub const EVENTS_SENT: u32 = 16;
    /// Auxiliary: IPv4 non-first fragments (no L4 header) seen.
    pub const FRAGMENTS: u32 = 17;
    /// Auxiliary: IPv6 packets whose extension header chain was longer than
    /// the program walks (source checks still applied).
    pub const EXT_HEADERS_TOO_MANY: u32 = 18;
    /// Auxiliary: new sources entered into the rate table.
    pub const RATE_NEW_SOURCES: u32 = 19;
    /// Auxiliary: TCP payloads sampled for the HTTP mirror.
    pub const SAMPLES_SENT: u32 = 20;
    /// Auxiliary: samples lost because the ring buffer was full.
    pub const SAMPLES_LOST: u32 = 21;
    /// Total number of counters.
    pub const COUNT: u32 = 22;

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
        "ban_expired",
        "events_lost",
        "events_sent",
        "fragments",
        "ext_headers_too_many",
        "rate_new_sources",
        "samples_sent",
        "samples_lost",
    ];
}

/// One counter slot: packets and bytes (per CPU; userspace sums them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted (frame length as seen by XDP).
    pub bytes: u64,
}

/// Bits of [`XdpConfig::flags`].
pub mod flags {
    /// Count "would drop" per reason and pass everything.
    pub const MONITOR: u32 = 1 << 0;
    /// Drop everything that is not allowlisted.
    pub const EMERGENCY: u32 = 1 << 1;
    /// Per-source packet rate limit active.
    pub const RATE_PPS: u32 = 1 << 2;
    /// Per-source byte rate limit active.
    pub const RATE_BPS: u32 = 1 << 3;
    /// Per-source TCP SYN rate limit active.
    pub const RATE_SYN: u32 = 1 << 4;
    /// Any rate limit active.
    pub const RATE_ANY: u32 = RATE_PPS | RATE_BPS | RATE_SYN;
}

/// Runtime configuration of the XDP program: one entry of the config array.
///
/// Rates are expressed for a GCRA (virtual scheduling) token bucket: each
/// packet costs `*_cost` nanoseconds of "credit" and a source may be at most
/// `*_window_ns` ahead of real time, which is the burst.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpConfig {
    /// [`ABI_VERSION`] of the writer.
    pub abi: u32,
    /// [`flags`] bits.
    pub flags: u32,
    /// Nanoseconds of credit per packet (1e9 / pps).
    pub pkt_cost_ns: u64,
    /// Burst window for packets (burst * pkt_cost_ns).
    pub pkt_window_ns: u64,
    /// Nanoseconds of credit per byte, fixed point with 16 fractional bits.
    pub byte_cost_fp16: u64,
    /// Burst window for bytes (burst_bytes * ns per byte).
    pub byte_window_ns: u64,
    /// Nanoseconds of credit per TCP SYN.
    pub syn_cost_ns: u64,
    /// Burst window for SYNs.
    pub syn_window_ns: u64,
    /// Minimum time between two rate events for one source.
    pub event_interval_ns: u64,
    /// IPv6 sources are rate limited per prefix of this length (1..=128).
    pub rate_v6_prefix: u32,
    /// Reserved, zero.
    pub _reserved: u32,
    /// Length of a jiffy in nanoseconds: the program's clock is jiffies
    /// times this (0 until userspace writes the config: bans never expire
    /// then, and no rate limit is on).
    pub tick_ns: u64,
    /// TCP destination ports whose payloads are sampled to the ring buffer
    /// for the passive HTTP mirror (0 = unused slot; all 0: no sampling).
    pub sample_ports: [u16; SAMPLE_PORTS],
    /// Payload bytes copied per sampled segment (at most [`SAMPLE_MAX`]).
    pub sample_bytes: u32,
    /// Reserved, zero.
    pub _reserved2: u32,
}

/// Ports the mirror can sample.
pub const SAMPLE_PORTS: usize = 8;
/// Most payload bytes one sample carries (a full 1500-byte MTU segment's
/// payload fits).
pub const SAMPLE_MAX: usize = 1536;

/// Ring buffer record: the head of a TCP segment's payload to a sampled
/// port (passive HTTP mirror). Only segments the program passes are sampled.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HttpSample {
    /// [`event_kind::HTTP_SAMPLE`].
    pub kind: u32,
    /// 4 or 6.
    pub family: u32,
    /// Source address (IPv4 in the first four bytes).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP sequence number of the first payload byte.
    pub seq: u32,
    /// TCP flags.
    pub tcp_flags: u32,
    /// Payload bytes in the segment.
    pub payload_len: u32,
    /// Payload bytes copied into `data`.
    pub captured: u32,
    /// Reserved, zero.
    pub _reserved: u32,
    /// The payload head.
    pub data: [u8; SAMPLE_MAX],
}

/// Value of the ban maps (exact and prefix).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BanEntry {
    /// Expiry on the program's clock (jiffies x tick, in ns; see
    /// [`XdpConfig::tick_ns`]); 0 means permanent.
    pub expires_ns: u64,
    /// Reason code (see [`ban_reason`]).
    pub reason: u32,
    /// Reserved, zero.
    pub _reserved: u32,
}

/// Reason codes stored with a ban (what made it).
pub mod ban_reason {
    /// Added by an operator.
    pub const MANUAL: u32 = 1;
    /// Made by the detection engine.
    pub const DETECTION: u32 = 2;
    /// Made from rate-limit strikes.
    pub const RATE_LIMIT: u32 = 3;
    /// Imported from a file.
    pub const IMPORT: u32 = 4;
}

/// Value of the allow and block list tries.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListEntry {
    /// Where the entry came from (0 = API / inline config, n = nth list file).
    pub origin: u32,
    /// Reserved, zero.
    pub _reserved: u32,
}

/// Per-source rate state (one per source address or IPv6 prefix).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateState {
    /// Theoretical arrival time of the next packet (GCRA), program clock ns.
    pub pkt_tat: u64,
    /// Theoretical arrival time for bytes.
    pub byte_tat: u64,
    /// Theoretical arrival time for TCP SYNs.
    pub syn_tat: u64,
    /// Start of the current one-second observation window.
    pub win_start_ns: u64,
    /// When the last rate event was emitted for this source.
    pub last_event_ns: u64,
    /// When the source was last seen (picks the slot to reuse).
    pub seen_ns: u64,
    /// Packets seen in the current window.
    pub win_packets: u32,
    /// Packets dropped since the last event.
    pub dropped: u32,
    /// Bytes seen in the current window.
    pub win_bytes: u64,
    /// Packets seen in the previous window.
    pub prev_packets: u32,
    /// Reserved, zero.
    pub _reserved: u32,
    /// Bytes seen in the previous window.
    pub prev_bytes: u64,
}

/// A set of the IPv4 rate table: a source lives in one of its two slots.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateSetV4 {
    /// The slots.
    pub slots: [RateSlotV4; 2],
}

/// A set of the IPv6 rate table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateSetV6 {
    /// The slots.
    pub slots: [RateSlotV6; 2],
}

/// One slot of the IPv4 rate table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateSlotV4 {
    /// The source (`u32` from its octets in memory order).
    pub key: u32,
    /// Non-zero when the slot holds a source.
    pub used: u32,
    /// Its buckets.
    pub state: RateState,
}

/// One slot of the IPv6 rate table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateSlotV6 {
    /// The source prefix (masked address).
    pub key: [u8; 16],
    /// Non-zero when the slot holds a source.
    pub used: u32,
    /// Reserved, zero.
    pub _reserved: u32,
    /// Its buckets.
    pub state: RateState,
}

/// An 8-way bucket of exact IPv4 bans. The XDP program scans the slots
/// whose bit is set in `used`; if none matches and `overflow` is non-zero it
/// asks the overflow hash. Userspace writes a slot's key, expiry and reason
/// before setting its `used` bit, and clears the bit before reusing it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BanBucketV4 {
    /// Bit i set: slot i holds a ban.
    pub used: u32,
    /// Non-zero: more bans hash to this bucket, in the overflow hash.
    pub overflow: u32,
    /// Banned addresses (`u32` from octets in memory order).
    pub keys: [u32; BAN_SLOTS],
    /// Expiry per slot on the program's clock (ns); 0 = permanent.
    pub expires: [u64; BAN_SLOTS],
    /// Reason code per slot ([`ban_reason`]).
    pub reasons: [u8; BAN_SLOTS],
}

/// An 8-way bucket of exact IPv6 bans (see [`BanBucketV4`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BanBucketV6 {
    /// Bit i set: slot i holds a ban.
    pub used: u32,
    /// Non-zero: more bans hash to this bucket, in the overflow hash.
    pub overflow: u32,
    /// Banned addresses.
    pub keys: [[u8; 16]; BAN_SLOTS],
    /// Expiry per slot on the program's clock (ns); 0 = permanent.
    pub expires: [u64; BAN_SLOTS],
    /// Reason code per slot.
    pub reasons: [u8; BAN_SLOTS],
}

/// Event kinds written to the ring buffer (first `u32` of every record).
pub mod event_kind {
    /// A source exceeded its packet rate.
    pub const RATE_PPS: u32 = 1;
    /// A source exceeded its byte rate.
    pub const RATE_BPS: u32 = 2;
    /// A source exceeded its TCP SYN rate.
    pub const RATE_SYN: u32 = 3;
    /// An [`crate::HttpSample`].
    pub const HTTP_SAMPLE: u32 = 16;
}

/// Ring buffer record: a source tripped a rate limit (sampled: at most one
/// per source per `event_interval_ns`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateEvent {
    /// One of [`event_kind`].
    pub kind: u32,
    /// 4 or 6.
    pub family: u32,
    /// Source address (IPv4 in the first four bytes); IPv6 masked to the
    /// rate-limit prefix.
    pub addr: [u8; 16],
    /// Packets per second observed from this source in the current window.
    pub observed_pps: u64,
    /// Bytes per second observed in the current window.
    pub observed_bps: u64,
    /// Packets dropped since the previous event for this source.
    pub dropped: u64,
    /// When the event was written, on the program's clock (ns).
    pub ts_ns: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)], made only of integers and byte
    // arrays, and have no padding (checked by the size assertions below).
    unsafe impl aya::Pod for super::Counter {}
    unsafe impl aya::Pod for super::XdpConfig {}
    unsafe impl aya::Pod for super::BanEntry {}
    unsafe impl aya::Pod for super::ListEntry {}
    unsafe impl aya::Pod for super::RateState {}
    unsafe impl aya::Pod for super::RateSlotV4 {}
    unsafe impl aya::Pod for super::RateSetV4 {}
    unsafe impl aya::Pod for super::RateSetV6 {}
    unsafe impl aya::Pod for super::RateSlotV6 {}
    unsafe impl aya::Pod for super::RateEvent {}
    unsafe impl aya::Pod for super::BanBucketV4 {}
    unsafe impl aya::Pod for super::BanBucketV6 {}
    unsafe impl aya::Pod for super::HttpSample {}
}

// Layout checks: a size that is not the sum of the fields means padding.
const _: () = assert!(core::mem::size_of::<Counter>() == 16);
const _: () = assert!(core::mem::size_of::<XdpConfig>() == 8 + 8 * 7 + 8 + 8 + 24);
const _: () = assert!(core::mem::size_of::<BanEntry>() == 16);
const _: () = assert!(core::mem::size_of::<ListEntry>() == 8);
const _: () = assert!(core::mem::size_of::<RateState>() == 80);
const _: () = assert!(core::mem::size_of::<RateSlotV4>() == 88);
const _: () = assert!(core::mem::size_of::<RateSlotV6>() == 104);
const _: () = assert!(core::mem::size_of::<RateEvent>() == 8 + 16 + 32);
const _: () = assert!(core::mem::size_of::<HttpSample>() == 8 + 32 + 8 + 16 + SAMPLE_MAX);
const _: () = assert!(core::mem::size_of::<BanBucketV4>() == 8 + 32 + 64 + 8);
const _: () = assert!(core::mem::size_of::<BanBucketV6>() == 8 + 128 + 64 + 8);
const _: () = assert!(counter::VERDICTS as usize <= counter::NAMES.len());

/// The packet generator's XDP program (`waf_gen`, run by `waf gen` with
/// BPF_PROG_TEST_RUN in live-frames mode) and its maps, in the tools object
/// ([`crate::tools`]).
///
/// Per frame the program takes the next slot of [`GenConfig::select`] to
/// pick a source pool, rewrites the frame's source address (and, if asked,
/// its source port) from that pool's per-CPU counter, fixes the IPv4 header
/// and TCP/UDP checksums incrementally (RFC 1624) and returns `XDP_TX`,
/// which live-frames mode transmits out of the interface named in `ctx_in`.
pub mod r#gen {
    /// Name of the generator program in the object file.
    pub const PROGRAM_NAME: &str = "waf_gen";
    /// [`GenConfig`] in an array of one entry.
    pub const CONFIG_MAP: &str = "WAF_GEN_CONFIG";
    /// Per-CPU [`GenState`] in an array of one entry.
    pub const STATE_MAP: &str = "WAF_GEN_STATE";
    /// Most source pools one run can spread over.
    pub const MAX_POOLS: usize = 16;
    /// Slots of the pool selector: frame `n` of a CPU takes its source from
    /// pool `select[n % SELECT_SLOTS]`, so weights have 1/256 resolution.
    pub const SELECT_SLOTS: usize = 256;
    /// Multiplier of the address sequence: odd, so the low `k` bits of
    /// `n * ADDR_MUL` visit every value once per `2^k` frames (an exact,
    /// scattered cover of a pool of `2^k` addresses).
    pub const ADDR_MUL: u64 = 0x9e37_79b9_7f4a_7c15;
    /// Multiplier for the upper half of IPv6 pools shorter than /64.
    pub const ADDR_MUL_HI: u64 = 0xc2b2_ae3d_27d4_eb4f;

    /// One pool of source addresses: `base | (sequence & mask)`, in host
    /// byte order. IPv4 uses the low 32 bits of `base_lo`/`mask_lo` only;
    /// IPv6 the two 64-bit halves of the address.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GenPool {
        /// Upper half of the network address (IPv6).
        pub base_hi: u64,
        /// Lower half of the network address (IPv4: the address).
        pub base_lo: u64,
        /// Host bits of the upper half that vary (IPv6 prefixes below /64).
        pub mask_hi: u64,
        /// Host bits of the lower half that vary.
        pub mask_lo: u64,
    }

    /// Configuration of `waf_gen` (one array entry). All zero: frames are
    /// sent unchanged.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct GenConfig {
        /// 4 or 6 (IP version of the frame); 0: send the frame unchanged.
        pub family: u32,
        /// IP protocol of the frame: 6 (TCP) or 17 (UDP).
        pub proto: u32,
        /// Lowest source port when ports vary.
        pub sport_base: u32,
        /// Bits of the source port that vary above `sport_base` (0: the
        /// frame's port is kept).
        pub sport_mask: u32,
        /// The source pools (entries past the last used are ignored).
        pub pools: [GenPool; MAX_POOLS],
        /// Which pool each slot of the frame sequence takes its source
        /// from (values below [`MAX_POOLS`]).
        pub select: [u8; SELECT_SLOTS],
    }

    impl Default for GenConfig {
        fn default() -> Self {
            Self {
                family: 0,
                proto: 0,
                sport_base: 0,
                sport_mask: 0,
                pools: [GenPool::default(); MAX_POOLS],
                select: [0; SELECT_SLOTS],
            }
        }
    }

    /// Per-CPU state of `waf_gen`: frames sent and the next sequence
    /// number of each pool (which is also the frames that took a source
    /// from it).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct GenState {
        /// Frames the program ran on (and rewrote, if configured).
        pub frames: u64,
        /// Frames per pool.
        pub per_pool: [u64; MAX_POOLS],
    }

    #[cfg(feature = "user")]
    mod pod {
        // SAFETY: #[repr(C)], integers and byte arrays only, no padding
        // (checked below).
        unsafe impl aya::Pod for super::GenConfig {}
        unsafe impl aya::Pod for super::GenState {}
    }

    const _: () = assert!(core::mem::size_of::<GenPool>() == 32);
    const _: () = assert!(core::mem::size_of::<GenConfig>() == 16 + 32 * MAX_POOLS + SELECT_SLOTS);
    const _: () = assert!(core::mem::size_of::<GenState>() == 8 + 8 * MAX_POOLS);
}

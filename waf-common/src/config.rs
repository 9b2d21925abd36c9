//! The runtime configuration of the XDP program: one entry of the config
//! array ([`XdpConfig`]) and its [`flags`].

/// Ports the mirror can sample.
pub const SAMPLE_PORTS: usize = 8;

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
    /// [`ABI_VERSION`](crate::ABI_VERSION) of the writer.
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
    /// IPv6 sources are rate limited, and banned by exact bans, per prefix
    /// of this length (`[ban_policy] ipv6_prefix`, 1..=128): the program
    /// masks an IPv6 source to it before the exact-ban and rate lookups, so
    /// the exact-ban store holds IPv6 bans of exactly this length, keyed by
    /// their network address.
    pub v6_prefix: u32,
    /// log2 of the exact-ban buckets per family (the loader's, from
    /// `[capacity] bans`; see [`ban_bucket_bits`](crate::ban_bucket_bits)).
    pub ban_bucket_bits: u32,
    /// Length of a jiffy in nanoseconds: the program's clock is jiffies
    /// times this (0 until userspace writes the config: bans never expire
    /// then, and no rate limit is on).
    pub tick_ns: u64,
    /// TCP destination ports whose payloads are sampled to the ring buffer
    /// for the passive HTTP mirror (0 = unused slot; all 0: no sampling).
    pub sample_ports: [u16; SAMPLE_PORTS],
    /// Payload bytes copied per sampled segment (at most
    /// [`SAMPLE_MAX`](crate::SAMPLE_MAX)).
    pub sample_bytes: u32,
    /// log2 of the rate sets per family (the loader's, from `[capacity]
    /// rate_sources`; see [`rate_set_bits`](crate::rate_set_bits)).
    pub rate_set_bits: u32,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)], integers only, no padding (checked below).
    unsafe impl aya::Pod for super::XdpConfig {}
}

// Layout check: a size that is not the sum of the fields means padding.
const _: () = assert!(core::mem::size_of::<XdpConfig>() == 8 + 8 * 7 + 8 + 8 + 24);

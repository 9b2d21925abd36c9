//! Types shared by the XDP program (`waf-ebpf`) and the daemon (`waf-user`).
//!
//! Everything here is `#[repr(C)]` and free of padding: the same bytes are
//! written by one side and read by the other through BPF maps and the ring
//! buffer. Changing a layout changes the ABI between the two halves; the
//! [`ABI_VERSION`] constant is stored in the config map so a daemon never
//! adopts pinned maps of an incompatible layout.
//!
//! One module per concern, every item re-exported here: [`map_names`] and
//! the map sizes, the hash, bans, rate state, the IPv4 list bitmaps
//! ([`filter`]) and the IPv6 prefix tables ([`prefix6`]), [`counter`]s, ring buffer events, the config entry, and
//! the tools object ([`tools`], `r#gen`). Each type module keeps its
//! layout checks and, with the `user` feature, its `aya::Pod` impls.
#![no_std]

mod bans;
mod capacity;
mod config;
pub mod counter;
mod events;
pub mod filter;
pub mod r#gen;
mod hash;
mod lists;
pub mod map_names;
pub mod prefix6;
mod rate;
pub mod tools;

pub use self::{
    bans::{
        BanBucketV4, BanBucketV6, BanEntry, ban_bucket_bits, ban_bucket_v4, ban_bucket_v6,
        ban_fp_v4, ban_fp_v6, ban_reason,
    },
    capacity::{
        ALLOW_CAPACITY, BAN_BUCKET_BITS, BAN_BUCKET_BITS_MAX, BAN_BUCKET_BITS_MIN, BAN_BUCKETS,
        BAN_SLOTS, BANS_CAPACITY, BANX_CAPACITY, BLOCK_CAPACITY, BPF_F_MMAPABLE, EVENTS_BYTES,
        PBAN_CAPACITY, RATE_SET_BITS, RATE_SET_BITS_MAX, RATE_SET_BITS_MIN, RATE_SETS,
        RATE_SOURCES, SOURCE_CAPACITY, SOURCE_V6_CAPACITY, V6_LIST_CAPACITY,
    },
    config::{SAMPLE_PORTS, XdpConfig, flags},
    counter::Counter,
    events::{HttpSample, RateEvent, SAMPLE_MAX, event_kind},
    hash::{fold_v6, mix64},
    lists::{ListEntry, SOURCE_TAGS, SourceEntry, TAG16_NONE, source_flags},
    rate::{
        RateSetV4, RateSetV6, RateSlotV4, RateSlotV6, RateState, rate_set_bits, rate_set_v4,
        rate_set_v6,
    },
};

/// Bumped whenever a map layout or meaning in this crate changes.
pub const ABI_VERSION: u32 = 8;

/// Name of the firewall's XDP program function in its object (`waf-xdp`,
/// the object the daemon loads: this program, [`CLOCK_PROGRAM_NAME`] and the
/// maps of [`map_names`], nothing else).
pub const PROGRAM_NAME: &str = "waf_xdp";
/// Name of the program that publishes the kernel's jiffies in
/// [`map_names::CLOCK`] when run with BPF_PROG_TEST_RUN.
pub const CLOCK_PROGRAM_NAME: &str = "waf_clock";

//! Per-source rate state as both sides keep it: the GCRA buckets of one
//! source, the two-slot sets of the rate tables and the set a source hashes
//! to.

use crate::{
    capacity::{RATE_SET_BITS_MAX, RATE_SET_BITS_MIN},
    hash::{fold_v6, mix64},
};

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

/// The rate set (two slots) of an IPv4 source in an array of `2^bits`
/// sets.
#[inline(always)]
pub const fn rate_set_v4(addr: u32, bits: u32) -> u32 {
    (mix64(addr as u64 ^ 0x5bd1_e995) >> (64 - bits)) as u32
}

/// The rate set of an IPv6 source (masked to its prefix).
#[inline(always)]
pub const fn rate_set_v6(hi: u64, lo: u64, bits: u32) -> u32 {
    (mix64(fold_v6(hi, lo) ^ 0x5bd1_e995) >> (64 - bits)) as u32
}

/// log2 of the rate sets for `sources` sources of a family (two slots a
/// set), within [`RATE_SET_BITS_MIN`]..=[`RATE_SET_BITS_MAX`].
pub const fn rate_set_bits(sources: u32) -> u32 {
    let want = (sources as u64).div_ceil(2);
    let mut bits = RATE_SET_BITS_MIN;
    while (1u64 << bits) < want && bits < RATE_SET_BITS_MAX {
        bits += 1;
    }
    bits
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)], made only of integers and byte
    // arrays, and have no padding (checked by the size assertions below).
    unsafe impl aya::Pod for super::RateState {}
    unsafe impl aya::Pod for super::RateSlotV4 {}
    unsafe impl aya::Pod for super::RateSetV4 {}
    unsafe impl aya::Pod for super::RateSetV6 {}
    unsafe impl aya::Pod for super::RateSlotV6 {}
}

const _: () = assert!(rate_set_bits(crate::RATE_SOURCES) == crate::RATE_SET_BITS);
const _: () = assert!(rate_set_bits(0) == RATE_SET_BITS_MIN);
const _: () = assert!(rate_set_bits(u32::MAX) == RATE_SET_BITS_MAX);

// Layout checks: a size that is not the sum of the fields means padding.
const _: () = assert!(core::mem::size_of::<RateState>() == 80);
const _: () = assert!(core::mem::size_of::<RateSlotV4>() == 88);
const _: () = assert!(core::mem::size_of::<RateSlotV6>() == 104);

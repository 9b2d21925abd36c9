//! Bans as both sides keep them: the ban value, its reason codes, the 8-way
//! buckets of exact bans and the bucket an address hashes to.

use crate::{
    capacity::{BAN_BUCKET_BITS_MAX, BAN_BUCKET_BITS_MIN, BAN_SLOTS},
    hash::{fold_v6, mix64},
};

/// Value of the ban maps (exact and prefix).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BanEntry {
    /// Expiry on the program's clock (jiffies x tick, in ns; see
    /// [`XdpConfig::tick_ns`](crate::XdpConfig::tick_ns)); 0 means permanent.
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
    /// Applied from the fleet's shared bans (made on another host).
    pub const FLEET: u32 = 5;
}

/// An 8-way bucket of exact IPv4 bans. The XDP program scans the slots
/// whose bit is set in `used`; if none matches and the key's fingerprint
/// bit ([`ban_fp_v4`]) is set in `overflow` it asks the overflow hash. Userspace writes a slot's key, expiry and reason
/// before setting its `used` bit, and clears the bit before reusing it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BanBucketV4 {
    /// Bit i set: slot i holds a ban.
    pub used: u32,
    /// The fingerprint bits of the bans of this bucket in the overflow
    /// hash, ORed: a key whose bit is clear is not there (so a source
    /// whose full bucket holds other bans rarely pays the hash lookup).
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
    /// Fingerprint bits of this bucket's overflowed bans ([`ban_fp_v6`]).
    pub overflow: u32,
    /// Banned addresses.
    pub keys: [[u8; 16]; BAN_SLOTS],
    /// Expiry per slot on the program's clock (ns); 0 = permanent.
    pub expires: [u64; BAN_SLOTS],
    /// Reason code per slot.
    pub reasons: [u8; BAN_SLOTS],
}

/// The ban bucket of an IPv4 address (`u32` from its octets in memory order)
/// in an array of `2^bits` buckets.
#[inline(always)]
pub const fn ban_bucket_v4(addr: u32, bits: u32) -> u32 {
    (mix64(addr as u64) >> (64 - bits)) as u32
}

/// The ban bucket of an IPv6 address given as two big-endian halves.
#[inline(always)]
pub const fn ban_bucket_v6(hi: u64, lo: u64, bits: u32) -> u32 {
    (mix64(fold_v6(hi, lo)) >> (64 - bits)) as u32
}

/// The fingerprint bit of an IPv4 ban key in its bucket's `overflow` word:
/// from the low bits of the hash, which the bucket index (its top bits)
/// does not use.
#[inline(always)]
pub const fn ban_fp_v4(addr: u32) -> u32 {
    1 << (mix64(addr as u64) & 31)
}

/// The fingerprint bit of an IPv6 ban key given as two big-endian halves.
#[inline(always)]
pub const fn ban_fp_v6(hi: u64, lo: u64) -> u32 {
    1 << (mix64(fold_v6(hi, lo)) & 31)
}

/// log2 of the buckets for `bans` exact bans of a family: twice as many
/// slots as bans, within [`BAN_BUCKET_BITS_MIN`]..=[`BAN_BUCKET_BITS_MAX`].
pub const fn ban_bucket_bits(bans: u32) -> u32 {
    let want = (bans as u64 * 2).div_ceil(BAN_SLOTS as u64);
    let mut bits = BAN_BUCKET_BITS_MIN;
    while (1u64 << bits) < want && bits < BAN_BUCKET_BITS_MAX {
        bits += 1;
    }
    bits
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)], made only of integers and byte
    // arrays, and have no padding (checked by the size assertions below).
    unsafe impl aya::Pod for super::BanEntry {}
    unsafe impl aya::Pod for super::BanBucketV4 {}
    unsafe impl aya::Pod for super::BanBucketV6 {}
}

// Layout checks: a size that is not the sum of the fields means padding.
const _: () = assert!(core::mem::size_of::<BanEntry>() == 16);
const _: () = assert!(core::mem::size_of::<BanBucketV4>() == 8 + 32 + 64 + 8);
const _: () = assert!(core::mem::size_of::<BanBucketV6>() == 8 + 128 + 64 + 8);
const _: () = assert!(ban_bucket_bits(crate::BANS_CAPACITY) == crate::BAN_BUCKET_BITS);
const _: () = assert!(ban_bucket_bits(0) == BAN_BUCKET_BITS_MIN);
const _: () = assert!(ban_bucket_bits(u32::MAX) == BAN_BUCKET_BITS_MAX);

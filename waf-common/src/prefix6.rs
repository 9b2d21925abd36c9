//! IPv6 CIDR sets without an LPM walk: per-prefix-length hash tables in
//! array maps, after controlled prefix expansion.
//!
//! Each IPv6 set (allowlist, blocklist, prefix bans) plans up to
//! [`TARGETS`] *target lengths* ([`V6Plan::lens`], longest first); an entry of
//! length `l` is written as the `2^(t - l)` prefixes of length `t`, the
//! shortest target at or above `l` (userspace picks the targets that make
//! the fewest of them, and never expands one entry into more than
//! [`EXPAND_MAX`]). Every expanded prefix is a slot of the set's table of
//! 8-way [`PrefixBucketV6`]s, keyed by (length, masked address).
//!
//! Which targets may hold an address is answered first, for all three sets
//! at once, by three levels of 32-bit masks ([`MASK_INDEXES`] of them, two
//! a word, in [`crate::map_names::V6_MASKS`]): level 0 indexed by the top
//! 16 bits (targets shorter than /32), level 1 by a hash of the top 32 bits
//! (targets /32../47), level 2 by a hash of the top 48 bits (/48 and
//! longer). Each `u32` holds a byte per set ([`crate::filter::SET_ALLOW`],
//! `SET_BLOCK`, `SET_PBAN`): bit `i` says "target `i` has a prefix under
//! this index" (bit 0 is the longest target), bit [`TRIE_BIT`] says "an
//! entry that is only in the trie lies under it". The program ORs the
//! set's bytes of the three levels and looks in the table at the targets
//! named, longest first; the first slot found is the longest match (a
//! prefix ban's value carries the latest expiry of the bans covering it, as
//! in the tries).
//!
//! The LPM trie of each set still holds every entry: it is the truth the
//! daemon rebuilds from, and the program asks it only when the table cannot
//! answer: an entry that could not be expanded ([`TRIE_BIT`]), a bucket
//! that overflowed ([`PrefixBucketV6::overflow`]), or a set being rebuilt
//! ([`V6Plan::mode`] [`PLAN_REBUILDING`]).

use crate::hash::{fold_v6, mix64};

/// Target lengths a set may plan (bits 0..7 of its mask byte).
pub const TARGETS: usize = 7;
/// Bit of a set's mask byte: an entry that is only in the trie lies under
/// this index.
pub const TRIE_BIT: u32 = 7;
/// The most prefixes one entry is expanded into; longer expansions stay in
/// the trie.
pub const EXPAND_MAX: u32 = 1 << 12;
/// The shortest target length (shorter entries are expanded to it).
pub const MIN_TARGET: u8 = 16;
/// Slots per bucket.
pub const SLOTS: usize = 8;
/// Entries of mask level 0 (indexed by the top 16 bits).
pub const MASK_L0: u32 = 1 << 16;
/// log2 of the entries of each hashed mask level.
pub const MASK_HASH_BITS: u32 = 18;
/// Entries of each hashed mask level (1 and 2).
pub const MASK_HASHED: u32 = 1 << MASK_HASH_BITS;
/// Mask indexes: level 0, then levels 1 and 2.
pub const MASK_INDEXES: u32 = MASK_L0 + 2 * MASK_HASHED;
/// `u64` words of the mask array: two indexes a word (an array map's
/// elements are 8 bytes apart in memory), a byte per set in each half.
pub const MASK_WORDS: u32 = MASK_INDEXES / 2;

/// The bit of the mask array (as one bitmap of `u64` words) for target
/// bit `bit` of set `set` at mask index `index`.
#[inline(always)]
pub const fn mask_bit(index: u32, set: u32, bit: u32) -> u32 {
    index * 32 + set * 8 + bit
}
/// Entries of the plan array (one per set, room for four).
pub const PLANS: u32 = 4;
/// [`V6Plan::mode`]: the table answers.
pub const PLAN_READY: u32 = 0;
/// [`V6Plan::mode`]: the table is being rebuilt; ask the trie.
pub const PLAN_REBUILDING: u32 = 1;

/// The plan of one set (entry `set` of [`crate::map_names::V6_PLAN`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V6Plan {
    /// Target lengths, longest first; index `i` is bit `i` of the mask
    /// byte. Unused targets are 0 (their bit is never set).
    pub lens: [u8; 8],
    /// [`PLAN_READY`] or [`PLAN_REBUILDING`]; written last by userspace.
    pub mode: u32,
    /// Buckets of the set's table, minus one (a power of two minus one).
    pub bucket_mask: u32,
    /// Bit i set: target i is planned (the program reads it once per
    /// target, so that the verifier learns nothing it carries over from
    /// one target to the next and the paths through the loop stay few).
    pub active: u32,
    /// The source set's IPv6 directory ([`DIR_ENTRIES`]): 1 while it
    /// answers, 0 while it is rewritten (or for a set without one): then
    /// the program reads the level-1 masks as before. Written last by
    /// userspace.
    pub dir_ready: u32,
    /// The mask of each target's length over the top 64 bits (big-endian
    /// numbers), so that the program computes no mask: fewer branches for
    /// the verifier to follow.
    pub mask_hi: [u64; 8],
    /// The mask of each target's length over the low 64 bits.
    pub mask_lo: [u64; 8],
}

/// An 8-way bucket of expanded IPv6 prefixes. As for the ban buckets,
/// userspace writes a slot's key, length and value before setting its
/// `used` bit, and clears the bit before reusing it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixBucketV6 {
    /// Bit i set: slot i holds a prefix.
    pub used: u32,
    /// Non-zero: a prefix that hashes here did not fit; ask the trie.
    pub overflow: u32,
    /// Prefix length per slot.
    pub lens: [u8; SLOTS],
    /// A byte of each slot's hash ([`prefix_fp`]), read as one word: a
    /// probe that finds its byte nowhere is a miss without comparing keys
    /// (most probes of an address no prefix covers). A free slot's byte
    /// may be stale: it only costs a comparison.
    pub fps: [u8; SLOTS],
    /// The masked address per slot, as the 16 bytes in memory order.
    pub keys: [[u8; 16]; SLOTS],
    /// Value per slot: a prefix ban's expiry (as its trie value), 0 for the
    /// lists.
    pub values: [u64; SLOTS],
}

/// Keeps the first `len` bits of an address given as two big-endian
/// halves (`len` above 128 keeps all).
#[inline(always)]
pub const fn mask_v6(hi: u64, lo: u64, len: u32) -> (u64, u64) {
    if len == 0 {
        (0, 0)
    } else if len < 64 {
        (hi & (u64::MAX << (64 - len)), 0)
    } else if len == 64 {
        (hi, 0)
    } else if len < 128 {
        (hi, lo & (u64::MAX << (128 - len)))
    } else {
        (hi, lo)
    }
}

/// The hash of a prefix (already masked to `len`): its bucket
/// ([`prefix_bucket`]) and its fingerprint ([`prefix_fp`]).
#[inline(always)]
pub const fn prefix_hash(hi: u64, lo: u64, len: u32) -> u64 {
    mix64(fold_v6(hi, lo) ^ ((len as u64) << 56 | len as u64))
}

/// The bucket of a prefix (already masked to `len`) in a table of
/// `bucket_mask + 1` buckets.
#[inline(always)]
pub const fn prefix_bucket(hi: u64, lo: u64, len: u32, bucket_mask: u32) -> u32 {
    bucket_of(prefix_hash(hi, lo, len), bucket_mask)
}

/// The bucket of hash `h` ([`prefix_hash`]): bits 32 and up, below the
/// fingerprint's byte ([`table_buckets`] makes at most 2^24 buckets).
#[inline(always)]
pub const fn bucket_of(h: u64, bucket_mask: u32) -> u32 {
    (h >> 32) as u32 & bucket_mask
}

/// The fingerprint of hash `h` ([`prefix_hash`]): its top byte, apart
/// from the bits that pick the bucket (at most 2^24 buckets).
#[inline(always)]
pub const fn prefix_fp(h: u64) -> u8 {
    (h >> 56) as u8
}

/// Whether the fingerprints `fps` (a bucket's [`PrefixBucketV6::fps`] read
/// as a little-endian word) hold byte `fp` anywhere: exact, by the
/// zero-byte test on their XOR with `fp` in every byte.
#[inline(always)]
pub const fn fps_hold(fps: u64, fp: u8) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = fps ^ (fp as u64).wrapping_mul(ONES);
    x.wrapping_sub(ONES) & !x & (ONES << 7) != 0
}

/// The mask level of a target length.
#[inline(always)]
pub const fn level_of(len: u32) -> u32 {
    if len < 32 {
        0
    } else if len < 48 {
        1
    } else {
        2
    }
}

/// The index in the mask array of level `level` for an address whose top
/// 64 bits are `hi` (big-endian).
#[inline(always)]
pub const fn mask_index(level: u32, hi: u64) -> u32 {
    match level {
        0 => (hi >> 48) as u32,
        1 => MASK_L0 + (mix64(hi >> 32) >> (64 - MASK_HASH_BITS)) as u32,
        _ => MASK_L0 + MASK_HASHED + (mix64(hi >> 16) >> (64 - MASK_HASH_BITS)) as u32,
    }
}

/// Buckets of a set's table for a set of `capacity` entries: twice as
/// many slots as entries (a full set of unexpanded entries fills half of
/// them), a power of two, at least 1,024. 27 bytes a slot, preallocated.
pub const fn table_buckets(capacity: u32) -> u32 {
    let want = (capacity as u64 * 2).div_ceil(SLOTS as u64);
    let mut b: u64 = 1024;
    // At most 2^24: the bucket bits stay below the fingerprint's byte.
    while b < want && b < (1 << 24) {
        b <<= 1;
    }
    b as u32
}

/// The /40s of a /32: the directory keeps a mask byte for each.
pub const DIR_SUBS: usize = 256;

/// The IPv6 directory of the source set: the /32s under which the set has
/// targets of /32 to /47 (mask level 1), each with the slot of its per-/40
/// mask bytes ([`DirSlotV6`]). The level-1 mask is indexed by a hash of the
/// top 32 bits and names every target present anywhere under the /32 (and
/// under the /32s that share its index); the directory names, per /40,
/// only the targets whose prefixes cover that /40 or lie inside it, so a
/// source outside every prefix of a /32 that other prefixes split is
/// probed at the few targets of its own /40, most often none.
///
/// One `u64` per level-1 index ([`dir_index`], [`MASK_HASHED`] of them),
/// written whole: the /32 in the top 32 bits, the slot plus one in the low
/// 32 (0: no split /32 has this index), or [`DIR_SHARED`] there when the
/// directory could not take a split /32 of this index (two share it, or
/// the slots ran out): the program then reads the level-1 mask.
pub const DIR_ENTRIES: u32 = MASK_HASHED;

/// The low half of a directory entry whose index the directory cannot
/// answer for.
pub const DIR_SHARED: u32 = u32::MAX;

/// One /32 of the directory: entry `i` for its `i`th /40, bits 0..7 the
/// source set's level-1 mask byte there (the targets of /32 to /47 with a
/// prefix covering the /40 or inside it, and [`TRIE_BIT`] for the entries
/// of those lengths kept in the trie only), bits 8..30 zero or one more
/// than the index of the /40's cover bitmap ([`DirCoverV6`]), bit 31
/// [`DIR_LEVEL2`].
pub type DirSlotV6 = [u32; DIR_SUBS];

/// The /48s of one /40 that a prefix of the set covers or holds (bit `i`
/// of word `i >> 6`: the `i`th /48): for the /40s that level-1 targets
/// name but no prefix covers whole. A source whose /48 bit is clear is
/// covered by no prefix of any length: no table probe at all.
pub type DirCoverV6 = [u64; 4];

/// What the program reads for a source whose /48 bit is clear (above any
/// mask byte).
pub const DIR_CLEAR: u32 = 1 << 8;

/// Bit of a [`DirSlotV6`] entry: a prefix longer than /40 lies in this
/// /40, so the level-2 mask's targets (/48 and longer) may hold a source
/// of it. Without it only the /40's own byte and the level-0 mask's
/// targets (shorter than /32) can: the level-2 mask is hashed, and its
/// bits there are another /48's. A /32 the directory holds no entry for
/// holds no prefix longer than /32 (every such /32 gets one, or its index
/// is marked shared), so the same holds for all of it.
pub const DIR_LEVEL2: u32 = 1 << 31;

/// The cover index bits of a [`DirSlotV6`] entry (after shifting out the
/// mask byte): one more than an index below [`dir_covers`], at most 2^22.
pub const DIR_COVER_MASK: u32 = (1 << 23) - 1;

/// The directory entry word of /32 `top` at slot `slot`.
#[inline(always)]
pub const fn dir_entry(top: u32, slot: u32) -> u64 {
    (top as u64) << 32 | (slot as u64 + 1)
}

/// The directory entry of an address whose top 64 bits are `hi`
/// (big-endian): its level-1 mask index, less the level-0 indexes.
#[inline(always)]
pub const fn dir_index(hi: u64) -> u32 {
    mask_index(1, hi) - MASK_L0
}

/// The least power of two at least `want`, clamped to `[min, max]`
/// (both powers of two).
const fn pow2_within(want: u64, min: u64, max: u64) -> u32 {
    let mut s = min;
    while s < want && s < max {
        s <<= 1;
    }
    s as u32
}

/// Slots of the directory of a set of `capacity` IPv6 entries: one per
/// 32 entries (1 KiB each: 32 bytes an entry), a power of two, at least
/// 512 and at most 2^16.
pub const fn dir_slots(capacity: u32) -> u32 {
    pow2_within(capacity as u64 / 32, 512, 1 << 16)
}

/// Cover bitmaps of the directory ([`DirCoverV6`], 32 bytes each): one per
/// two entries (16 bytes an entry), a power of two, at least 1,024 and at
/// most 2^22.
pub const fn dir_covers(capacity: u32) -> u32 {
    pow2_within(capacity as u64 / 2, 1024, 1 << 22)
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)], integers and byte arrays only, no padding
    // (checked below).
    unsafe impl aya::Pod for super::V6Plan {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PrefixBucketV6 {}
}

const _: () = assert!(core::mem::size_of::<V6Plan>() == 24 + 128);
const _: () = assert!(core::mem::size_of::<PrefixBucketV6>() == 8 + 16 + 128 + 64);
const _: () = assert!(TARGETS < 8);
const _: () = assert!(dir_covers(u32::MAX) <= DIR_COVER_MASK);
const _: () = assert!(DIR_LEVEL2 >> 8 > DIR_COVER_MASK);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_sizes_are_powers_of_two_within_their_bounds() {
        assert_eq!(dir_slots(0), 512);
        assert_eq!(dir_slots(65_536), 2048);
        assert_eq!(dir_slots(65_537 * 32), 1 << 16);
        assert_eq!(dir_slots(u32::MAX), 1 << 16);
        assert_eq!(dir_covers(0), 1024);
        assert_eq!(dir_covers(65_536), 32_768);
        assert_eq!(dir_covers(3000), 2048);
        assert_eq!(dir_covers(u32::MAX), 1 << 22);
    }

    #[test]
    fn masks_keep_the_prefix_bits() {
        let (hi, lo) = (u64::MAX, u64::MAX);
        assert_eq!(mask_v6(hi, lo, 0), (0, 0));
        assert_eq!(mask_v6(hi, lo, 1), (1 << 63, 0));
        assert_eq!(mask_v6(hi, lo, 64), (u64::MAX, 0));
        assert_eq!(mask_v6(hi, lo, 65), (u64::MAX, 1 << 63));
        assert_eq!(mask_v6(hi, lo, 128), (u64::MAX, u64::MAX));
        assert_eq!(mask_v6(hi, lo, 200), (u64::MAX, u64::MAX));
    }

    #[test]
    fn levels_and_indexes_stay_in_their_ranges() {
        assert_eq!(level_of(16), 0);
        assert_eq!(level_of(31), 0);
        assert_eq!(level_of(32), 1);
        assert_eq!(level_of(48), 2);
        assert_eq!(level_of(128), 2);
        for hi in [0, 1, u64::MAX, 0x2001_0db8 << 32] {
            assert!(mask_index(0, hi) < MASK_L0);
            assert!((MASK_L0..MASK_L0 + MASK_HASHED).contains(&mask_index(1, hi)));
            assert!((MASK_L0 + MASK_HASHED..MASK_INDEXES).contains(&mask_index(2, hi)));
        }
        assert_eq!(table_buckets(0), 1024);
        assert_eq!(table_buckets(65_536), 16_384);
        assert_eq!(table_buckets(1 << 24), 1 << 22);
    }

    /// The zero-byte test is exact: a word of fingerprints holds `fp`
    /// exactly when one of its bytes is `fp` (a miss never compares keys,
    /// a hit is never skipped). Every byte value against words that hold
    /// it at each position, next to it, or nowhere.
    #[test]
    fn fingerprint_test_is_exact() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for fp in 0..=255u8 {
            for round in 0..64 {
                x = crate::hash::mix64(x ^ round);
                let mut bytes = x.to_le_bytes();
                match round % 4 {
                    0 => bytes[(round / 4) as usize % 8] = fp,
                    1 => bytes[(round / 4) as usize % 8] = fp.wrapping_add(1),
                    2 => bytes[(round / 4) as usize % 8] = fp ^ 0x80,
                    _ => {}
                }
                let word = u64::from_le_bytes(bytes);
                assert_eq!(fps_hold(word, fp), bytes.contains(&fp), "{word:#x} {fp:#x}");
            }
            let none = u64::from_le_bytes([fp.wrapping_add(1); 8]);
            assert!(!fps_hold(none, fp));
            assert!(fps_hold(none & !0xff | u64::from(fp), fp));
            assert!(fps_hold(u64::from(fp) << 56 | (none & ((1 << 56) - 1)), fp));
        }
        // The bucket and the fingerprint come from different bits.
        let h = prefix_hash(0x2001_0db8 << 32, 0, 32);
        assert_eq!(bucket_of(h, (1 << 24) - 1), (h >> 32) as u32 & 0xff_ffff);
        assert_eq!(u64::from(prefix_fp(h)), h >> 56);
    }
}

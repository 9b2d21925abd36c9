//! Layout of the bitmaps that let the XDP program answer most allowlist,
//! blocklist and prefix-ban questions with one or two array loads instead of
//! an LPM trie walk (a trie lookup costs tens of nanoseconds of calls).
//!
//! IPv4: a nibble of flags per /16 and list, the lists' nibbles of one /16
//! side by side in 16 bits ([`SET_BITS`] apart, four /16s a `u64` word), so
//! one load answers for every list:
//! - [`FULL`]: the whole /16 is covered by an entry of length <= 16;
//! - [`MID`]: some entry of length 17..=24 lies in this /16 (then the /24
//!   bitmap, 2^24 bits, tells whether this /24 is covered);
//! - [`DEEP`]: some entry longer than /24 lies in this /16 (then the trie).
//!
//! Prefix bans use the /16 flags as a prefilter only (their value carries
//! an expiry the trie must give).
//!
//! IPv6 sets have no LPM walk at all: see [`crate::prefix6`].

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
/// The source policies' nibble (countries, networks, cloud ranges, bogons).
pub const SET_SOURCE: u32 = 3;
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

/// Slots of the source-policy set's deep /24 table: for each /24 that holds
/// prefixes longer than /24 (up to this many, in address order), which of
/// its 256 addresses they cover, so that the program answers without the
/// trie. /24s past it are answered by the trie.
pub const DEEP24_SLOTS: u32 = 1 << 16;
/// Slots of the source-policy set's tag table of covered /24s (the /24s
/// its /24 bitmap holds, in address order; past them the trie gives the
/// tag). Four 16-bit tags a word.
pub const COVER24_SLOTS: u32 = 1 << 21;
/// Words of the tag table of /16s covered by a source-policy entry of /16
/// or shorter (four 16-bit tags a word).
pub const T16_WORDS: u32 = 65536 / 4;

/// The deep /24 table answers.
pub const DEEP_READY: u64 = 0;
/// The deep /24 table is being rewritten: ask the trie.
pub const DEEP_REBUILDING: u64 = 1;

/// Set bits of `x` (the program has no popcount instruction).
#[inline(always)]
pub const fn popcount(x: u64) -> u64 {
    let x = x - ((x >> 1) & 0x5555_5555_5555_5555);
    let x = (x & 0x3333_3333_3333_3333) + ((x >> 2) & 0x3333_3333_3333_3333);
    let x = (x + (x >> 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    x.wrapping_mul(0x0101_0101_0101_0101) >> 56
}

#[cfg(test)]
mod tests {
    #[test]
    fn popcount_counts_bits() {
        for x in [
            0u64,
            1,
            3,
            u64::MAX,
            0x8000_0000_0000_0001,
            0xdead_beef_1234_5678,
        ] {
            assert_eq!(super::popcount(x), u64::from(x.count_ones()), "{x:#x}");
        }
    }
}

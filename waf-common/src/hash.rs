//! The hash both sides use to place bans and rate state, and to index the
//! hashed IPv6 prefilters.

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

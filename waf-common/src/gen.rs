//! The packet generator's XDP program (`waf_gen`, run by `waf gen` with
//! BPF_PROG_TEST_RUN in live-frames mode) and its maps, in the tools object
//! ([`crate::tools`]).
//!
//! Per frame the program takes the next slot of [`GenConfig::select`] to
//! pick a source pool, rewrites the frame's source address (and, if asked,
//! its source port) from that pool's per-CPU counter, fixes the IPv4 header
//! and TCP/UDP checksums incrementally (RFC 1624) and returns `XDP_TX`,
//! which live-frames mode transmits out of the interface named in `ctx_in`.

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

//! `waf_gen`: the packet generator's XDP program.
//!
//! `waf gen` runs it with BPF_PROG_TEST_RUN in live-frames mode
//! (BPF_F_TEST_XDP_LIVE_FRAMES): the kernel hands it one frame after the
//! other from a page pool initialised with the frame `waf gen` built, and
//! transmits every frame it returns `XDP_TX` for out of the interface given
//! in `ctx_in` (the egress interface).
//!
//! Per frame it picks a source pool from the configured selector, rewrites
//! the source address (and optionally the source port) from that pool's
//! per-CPU sequence, and fixes the IPv4 header checksum and the TCP/UDP
//! checksum incrementally (RFC 1624: `HC' = ~(~HC + ~m + m')`). The page
//! pool recycles pages without re-initialising them, so the program always
//! reads the old values from the frame itself: the update is exact whatever
//! the page last carried. Everything is array loads (inlined by the
//! verifier) and ALU work: no kernel function calls.

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{Array, PerCpuArray},
    programs::XdpContext,
};
use waf_common::r#gen::{
    ADDR_MUL, ADDR_MUL_HI, GenConfig, GenPool, GenState, MAX_POOLS, SELECT_SLOTS,
};
use waf_ebpf::ptr_at;

#[map]
static WAF_GEN_CONFIG: Array<GenConfig> = Array::with_max_entries(1, 0);
#[map]
static WAF_GEN_STATE: PerCpuArray<GenState> = PerCpuArray::with_max_entries(1, 0);

const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;

/// Offsets in an untagged Ethernet frame.
const V4_CSUM: usize = 14 + 10;
const V4_SADDR: usize = 14 + 12;
const V4_L4: usize = 14 + 20;
const V6_SADDR: usize = 14 + 8;
const V6_L4: usize = 14 + 40;
/// Checksum offset inside the layer-4 header.
const TCP_CSUM: usize = 16;
const UDP_CSUM: usize = 6;
/// Where the rewrite ends: just past the layer-4 checksum. The frame must
/// hold that much (one bounds check covers every word the rewrite touches).
const V4_TCP_END: usize = V4_L4 + TCP_CSUM + 2;
const V4_UDP_END: usize = V4_L4 + UDP_CSUM + 2;
const V6_TCP_END: usize = V6_L4 + TCP_CSUM + 2;
const V6_UDP_END: usize = V6_L4 + UDP_CSUM + 2;

/// The generator: rewrites the source (see the module documentation) and
/// sends the frame.
#[xdp]
pub fn waf_gen(ctx: XdpContext) -> u32 {
    let _ = rewrite(&ctx);
    xdp_action::XDP_TX
}

/// Where the next frame's source comes from.
struct Next {
    /// Host-order sequence value for the lower half / IPv4 address.
    lo: u64,
    /// Host-order sequence value for the upper half (IPv6).
    hi: u64,
}

#[inline(always)]
fn rewrite(ctx: &XdpContext) -> Option<()> {
    let cfg = WAF_GEN_CONFIG.get(0)?;
    if cfg.family == 0 {
        return None;
    }
    let st = WAF_GEN_STATE.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot; only this CPU touches it while we run.
    let st = unsafe { &mut *st };
    let slot = (st.frames as usize) & (SELECT_SLOTS - 1);
    st.frames += 1;
    let idx = (cfg.select[slot] as usize) & (MAX_POOLS - 1);
    let n = st.per_pool[idx];
    st.per_pool[idx] = n + 1;
    let next = Next {
        lo: n.wrapping_mul(ADDR_MUL),
        hi: n.wrapping_mul(ADDR_MUL_HI),
    };
    let pool = &cfg.pools[idx];
    match (cfg.family, cfg.proto) {
        (4, IPPROTO_TCP) => v4::<V4_TCP_END>(ctx, cfg, pool, &next),
        (4, IPPROTO_UDP) => v4::<V4_UDP_END>(ctx, cfg, pool, &next),
        (6, IPPROTO_TCP) => v6::<V6_TCP_END>(ctx, cfg, pool, &next),
        (6, IPPROTO_UDP) => v6::<V6_UDP_END>(ctx, cfg, pool, &next),
        _ => None,
    }
}

/// The start of the frame, if it holds at least `END` bytes.
#[inline(always)]
fn frame<const END: usize>(ctx: &XdpContext) -> Option<usize> {
    ptr_at::<[u8; END]>(ctx, 0).map(|p| p as usize)
}

/// The 16-bit word at `off` (memory order).
#[inline(always)]
fn load(data: usize, off: usize) -> u16 {
    // SAFETY: callers got `data` from `frame::<END>` with `off + 2 <= END`;
    // the frame starts 2-byte aligned and every offset used here is even.
    unsafe { *((data + off) as *const u16) }
}

#[inline(always)]
fn store(data: usize, off: usize, v: u16) {
    // SAFETY: as in `load`.
    unsafe { *((data + off) as *mut u16) = v }
}

/// Adds `~old + new` (one 16-bit word changing) to a one's-complement sum.
/// The sum is byte-order independent (RFC 1071), so words stay in memory
/// order throughout.
#[inline(always)]
fn diff(sum: u64, old: u16, new: u16) -> u64 {
    sum + u64::from(!old) + u64::from(new)
}

/// Folds a 64-bit one's-complement sum to 16 bits.
#[inline(always)]
fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// RFC 1624 eqn. 3: the checksum after words changed by `delta`.
#[inline(always)]
fn updated(old_csum: u16, delta: u64) -> u16 {
    !fold(u64::from(!old_csum) + delta)
}

/// The new source port (memory order), or None to keep the frame's.
#[inline(always)]
fn sport(cfg: &GenConfig, next: &Next) -> Option<u16> {
    if cfg.sport_mask == 0 {
        return None;
    }
    let p = cfg.sport_base + (((next.lo >> 32) as u32) & cfg.sport_mask);
    Some((p as u16).to_be())
}

/// Writes the new source port at `l4` and adds its change to `delta`.
#[inline(always)]
fn rewrite_sport(data: usize, l4: usize, cfg: &GenConfig, next: &Next, delta: u64) -> u64 {
    match sport(cfg, next) {
        Some(p) => {
            let old = load(data, l4);
            store(data, l4, p);
            diff(delta, old, p)
        }
        None => delta,
    }
}

/// Writes the layer-4 checksum at `at` after a change of `delta`; a UDP
/// checksum of 0 (none) stays 0 and a computed 0 is sent as 0xffff.
#[inline(always)]
fn fix_l4(data: usize, at: usize, udp: bool, delta: u64) {
    let old = load(data, at);
    if udp && old == 0 {
        return;
    }
    let mut c = updated(old, delta);
    if udp && c == 0 {
        c = 0xffff;
    }
    store(data, at, c);
}

/// IPv4: `END` is the offset just past the layer-4 checksum (which sits at
/// `END - 2`); the frame must hold that much.
#[inline(always)]
fn v4<const END: usize>(
    ctx: &XdpContext,
    cfg: &GenConfig,
    pool: &GenPool,
    next: &Next,
) -> Option<()> {
    let data = frame::<END>(ctx)?;
    let addr = (pool.base_lo | (next.lo & pool.mask_lo)) as u32;
    let w0 = ((addr >> 16) as u16).to_be();
    let w1 = (addr as u16).to_be();
    let o0 = load(data, V4_SADDR);
    let o1 = load(data, V4_SADDR + 2);
    store(data, V4_SADDR, w0);
    store(data, V4_SADDR + 2, w1);
    let delta = diff(diff(0, o0, w0), o1, w1);
    // The IPv4 header checksum covers the address; the TCP/UDP checksum
    // covers it through the pseudo-header, and the port directly.
    store(data, V4_CSUM, updated(load(data, V4_CSUM), delta));
    let l4_delta = rewrite_sport(data, V4_L4, cfg, next, delta);
    fix_l4(data, END - 2, cfg.proto == IPPROTO_UDP, l4_delta);
    Some(())
}

/// IPv6: as [`v4`], over the 128-bit source (no IP header checksum).
#[inline(always)]
fn v6<const END: usize>(
    ctx: &XdpContext,
    cfg: &GenConfig,
    pool: &GenPool,
    next: &Next,
) -> Option<()> {
    let data = frame::<END>(ctx)?;
    let hi = pool.base_hi | (next.hi & pool.mask_hi);
    let lo = pool.base_lo | (next.lo & pool.mask_lo);
    let mut delta = 0u64;
    let mut i = 0;
    while i < 4 {
        let shift = 48 - 16 * i;
        let at = V6_SADDR + 2 * i;
        let w = ((hi >> shift) as u16).to_be();
        delta = diff(delta, load(data, at), w);
        store(data, at, w);
        let at = V6_SADDR + 8 + 2 * i;
        let w = ((lo >> shift) as u16).to_be();
        delta = diff(delta, load(data, at), w);
        store(data, at, w);
        i += 1;
    }
    let l4_delta = rewrite_sport(data, V6_L4, cfg, next, delta);
    fix_l4(data, END - 2, cfg.proto == IPPROTO_UDP, l4_delta);
    Some(())
}

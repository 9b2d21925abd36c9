//! The benchmarks' reference filter: the textbook XDP ban filter, which
//! reads the IPv4 source and drops it if a hash map holds it. `cargo xtask
//! bench xdp` measures it in the same run as waf's program and its floor,
//! so the ratios of a machine can be read against the design the goals were
//! set with ("a one-hash-lookup program"). The daemon never attaches it.
//! `waf_reference_lpm` is the textbook CIDR filter beside it: one LPM trie
//! lookup per packet, as a filter of country or cloud ranges is written
//! without this project's tables (`bench xdp`'s source-policy case).

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, xdp_action},
    macros::{map, xdp},
    maps::{HashMap, LpmTrie, lpm_trie::Key},
    programs::XdpContext,
};
use waf_common::tools::REFERENCE_CAPACITY;
use waf_ebpf::ptr_at;

#[map]
static WAF_REF_BANS: HashMap<u32, u64> =
    HashMap::with_max_entries(REFERENCE_CAPACITY, BPF_F_NO_PREALLOC);

/// Ethernet + IPv4 up to the source address.
const SRC_END: usize = 14 + 16;

/// One hash lookup of the IPv4 source: drop if present, else pass.
#[xdp]
pub fn waf_reference(ctx: XdpContext) -> u32 {
    let Some(head) = ptr_at::<[u8; SRC_END]>(&ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    let start = head as usize;
    // SAFETY: ptr_at checked the SRC_END bytes both reads lie in.
    let (proto, src) = unsafe {
        (
            core::ptr::read_unaligned((start + 12) as *const u16),
            core::ptr::read_unaligned((start + 26) as *const u32),
        )
    };
    if proto != u16::to_be(0x0800) {
        return xdp_action::XDP_PASS;
    }
    // SAFETY: the value is not kept.
    if unsafe { WAF_REF_BANS.get(&src) }.is_some() {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}

#[map]
static WAF_REF_LPM4: LpmTrie<u32, u8> =
    LpmTrie::with_max_entries(REFERENCE_CAPACITY, BPF_F_NO_PREALLOC);
#[map]
static WAF_REF_LPM6: LpmTrie<[u8; 16], u8> =
    LpmTrie::with_max_entries(REFERENCE_CAPACITY, BPF_F_NO_PREALLOC);

/// Ethernet + IPv6 up to the source address.
const SRC6_END: usize = 14 + 8 + 16;

/// The textbook CIDR filter: one LPM trie lookup of the source, drop on a
/// hit, else pass.
#[xdp]
pub fn waf_reference_lpm(ctx: XdpContext) -> u32 {
    let Some(head) = ptr_at::<[u8; SRC_END]>(&ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    let start = head as usize;
    // SAFETY: ptr_at checked the bytes read.
    let proto = unsafe { core::ptr::read_unaligned((start + 12) as *const u16) };
    let hit = if proto == u16::to_be(0x0800) {
        // SAFETY: as above.
        let src = unsafe { core::ptr::read_unaligned((start + 26) as *const u32) };
        WAF_REF_LPM4.get(&Key::new(32, src)).is_some()
    } else if proto == u16::to_be(0x86dd) {
        let Some(src) = ptr_at::<[u8; 16]>(&ctx, SRC6_END - 16) else {
            return xdp_action::XDP_PASS;
        };
        // SAFETY: ptr_at checked the 16 bytes.
        let src = unsafe { core::ptr::read_unaligned(src) };
        WAF_REF_LPM6.get(&Key::new(128, src)).is_some()
    } else {
        false
    };
    if hit {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_PASS
    }
}

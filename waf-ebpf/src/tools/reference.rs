//! The benchmarks' reference filter: the textbook XDP ban filter, which
//! reads the IPv4 source and drops it if a hash map holds it. `cargo xtask
//! bench xdp` measures it in the same run as waf's program and its floor,
//! so the ratios of a machine can be read against the design the goals were
//! set with ("a one-hash-lookup program"). The daemon never attaches it.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, xdp_action},
    macros::{map, xdp},
    maps::HashMap,
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

//! The tools object (`waf-tools`): XDP programs that the daemon never
//! attaches, kept out of its object so that a daemon start creates only the
//! firewall's maps and `waf gen` creates none of them.
//!
//! - `waf_gen` (gen.rs): the packet generator's live-frames program;
//! - `waf_floor`: the benchmarks' floor, a program that only drops;
//! - `waf_reference` (reference.rs): the benchmarks' reference filter, the
//!   textbook one-hash-lookup XDP ban filter, and `waf_reference_lpm`, the
//!   textbook one-LPM-lookup CIDR filter.
#![no_std]
#![no_main]

mod r#gen;
mod reference;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

/// A program that drops everything and does nothing else: the floor that
/// benchmarks measure the harness cost with.
#[xdp]
pub fn waf_floor(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_DROP
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // As in the firewall's object: a reachable panic path fails the load
    // (the verifier rejects the loop) instead of hanging the kernel.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

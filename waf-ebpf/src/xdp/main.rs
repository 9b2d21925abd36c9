//! The firewall's object (`waf-xdp`), the one the daemon loads: the XDP
//! program of waf (`waf_xdp`) and its clock probe (`waf_clock`), with the
//! firewall's maps only. Programs it never attaches (the generator, the
//! benchmarks' floor and reference filter) are in the tools object
//! (`src/tools/`).
//!
//! Per frame, in this order (README "Architecture"):
//! 1. parse (parse.rs): a frame that cannot be parsed is passed and counted;
//! 2. allowlist -> pass, skipping everything below;
//! 3. emergency mode -> drop all that is not allowlisted;
//! 4. exact bans (buckets) and prefix bans -> drop until expiry;
//! 5. blocklist -> drop;
//! 6. source policies (countries, networks, cloud ranges, bogons on the
//!    interfaces named) -> drop, or count and go on for a policy in
//!    monitor mode;
//! 7. per-source GCRA token buckets (packets, bytes, TCP SYN) -> drop on
//!    overflow, with a sampled event to the ring buffer (rate.rs);
//! 8. for passed TCP segments to configured ports, the payload head goes to
//!    the ring buffer for the passive HTTP mirror (sample.rs).
//!
//! The CIDR sets of steps 2, 4, 5 and 6 are bitmaps in front of LPM tries for
//! IPv4 and per-length tables for IPv6 (maps.rs).
//!
//! In monitor mode steps 3-6 count "would drop" per reason and pass.
//! Every packet is counted in exactly one per-CPU verdict counter.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod maps;
mod parse;
mod rate;
mod sample;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use waf_common::{XdpConfig, counter, flags, source_flags};

use crate::{
    maps::{Family, V4, V6, count, now_ns},
    parse::{Frame, Meta},
};

/// The firewall: see the module documentation.
#[xdp]
pub fn waf_xdp(ctx: XdpContext) -> u32 {
    let len = (ctx.data_end() - ctx.data()) as u64;
    // SAFETY: the context the kernel passed, valid for this call.
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    let (action, reason) = match parse::parse(&ctx) {
        Frame::V4(src, meta) => {
            if meta.dport != 0 {
                maps::park(meta.offsets());
            }
            let (action, reason, cfg) = check::<V4>(src, &meta, len, ifindex);
            if action == xdp_action::XDP_PASS
                && let Some(cfg) = cfg
            {
                let meta = meta.with_offsets(maps::unpark());
                sample::maybe_sample(&ctx, 4, &meta, cfg, len);
            }
            (action, reason)
        }
        Frame::V6(src, meta) => {
            if meta.dport != 0 {
                maps::park(meta.offsets());
            }
            let (action, reason, cfg) = check::<V6>(src, &meta, len, ifindex);
            if action == xdp_action::XDP_PASS
                && let Some(cfg) = cfg
            {
                let meta = meta.with_offsets(maps::unpark());
                sample::maybe_sample(&ctx, 6, &meta, cfg, len);
            }
            (action, reason)
        }
        Frame::NotIp => (xdp_action::XDP_PASS, counter::NOT_IP),
        Frame::Unparsable => (xdp_action::XDP_PASS, counter::UNPARSABLE),
    };
    count(reason, len);
    action
}

/// Writes the kernel's jiffies to a map and passes: userspace runs it with
/// BPF_PROG_TEST_RUN to learn the program's clock (ban expiries are written
/// in it).
#[xdp]
pub fn waf_clock(_ctx: XdpContext) -> u32 {
    maps::publish_jiffies();
    xdp_action::XDP_PASS
}

/// Runs the source checks for one packet and returns the XDP action, the
/// verdict counter to bump and the config (for the sampler), when it was
/// read. `ifindex`: the interface the packet came in on.
#[inline(always)]
fn check<F: Family>(
    src: F::Addr,
    meta: &Meta,
    len: u64,
    ifindex: u32,
) -> (u32, u32, Option<&'static XdpConfig>) {
    if meta.fragment {
        count(counter::FRAGMENTS, len);
    }
    if meta.too_many_ext_headers {
        count(counter::EXT_HEADERS_TOO_MANY, len);
    }
    // Which CIDR sets may cover the source: one load (IPv4), three (IPv6).
    let lists = F::lists(&src);
    if F::allowed(&src, lists) {
        // Allowlisted traffic is still sampled for the mirror.
        return (xdp_action::XDP_PASS, counter::ALLOWLISTED, maps::config());
    }
    let passed = if meta.malformed {
        counter::UNPARSABLE
    } else {
        counter::PASS
    };
    if meta.neighbour_discovery {
        return (xdp_action::XDP_PASS, passed, maps::config());
    }
    let cfg = match maps::config() {
        Some(cfg) => cfg,
        None => return (xdp_action::XDP_PASS, passed, None),
    };
    let deny = |reason: u32, monitor_reason: u32| {
        if cfg.flags & flags::MONITOR != 0 {
            (xdp_action::XDP_PASS, monitor_reason, Some(cfg))
        } else {
            (xdp_action::XDP_DROP, reason, Some(cfg))
        }
    };
    if cfg.flags & flags::EMERGENCY != 0 {
        return deny(counter::EMERGENCY, counter::MONITOR_EMERGENCY);
    }
    // One inlined load (see maps::now_ns).
    let now = now_ns(cfg);
    // Within the range userspace writes (a shift by 64 would be undefined).
    let bits = cfg.ban_bucket_bits.clamp(
        waf_common::BAN_BUCKET_BITS_MIN,
        waf_common::BAN_BUCKET_BITS_MAX,
    );
    // The exact-ban and rate key: an IPv6 source's prefix.
    let key = F::source_key(&src, cfg);
    if let Some(expires) = F::ban_expiry(&key, bits) {
        if in_force(expires, now) {
            return deny(counter::BANNED, counter::MONITOR_BANNED);
        }
        count(counter::BAN_EXPIRED, len);
    }
    if let Some(expires) = F::prefix_ban_expiry(&src, lists) {
        if in_force(expires, now) {
            return deny(counter::BANNED, counter::MONITOR_BANNED);
        }
        count(counter::BAN_EXPIRED, len);
    }
    if F::blocked(&src, lists) {
        return deny(counter::BLOCKLISTED, counter::MONITOR_BLOCKLISTED);
    }
    if let Some(e) = F::source_entry(&src, lists)
        && (e.flags & source_flags::BOGON == 0 || maps::bogons_dropped_on(ifindex))
    {
        maps::count_source(e.tag, len);
        if e.flags & source_flags::MONITOR == 0 {
            return deny(counter::SOURCE_POLICY, counter::MONITOR_SOURCE_POLICY);
        }
        count(counter::SOURCE_POLICY_MONITORED, len);
    }
    if cfg.flags & flags::RATE_ANY != 0 {
        match rate::check::<F>(&key, cfg, meta.syn, len, now) {
            rate::Verdict::Conform => {}
            rate::Verdict::Exceeded => {
                return deny(counter::RATE_LIMITED, counter::MONITOR_RATE_LIMITED);
            }
            rate::Verdict::SynExceeded => {
                return deny(counter::SYN_LIMITED, counter::MONITOR_SYN_LIMITED);
            }
        }
    }
    (xdp_action::XDP_PASS, passed, Some(cfg))
}

/// A ban is in force while it is permanent (expiry 0) or not yet expired.
#[inline(always)]
fn in_force(expires: u64, now: u64) -> bool {
    expires == 0 || now < expires
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects a program with a reachable infinite loop, so a
    // panic path that survived optimisation shows up as a load failure in
    // the tests instead of as a hang in the kernel.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

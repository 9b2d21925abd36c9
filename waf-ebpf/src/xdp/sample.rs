//! HTTP sampling for the passive mirror: the head of the payload of TCP
//! segments to configured ports is copied into the ring buffer, with the
//! flow and sequence number the daemon needs to reassemble requests. Only
//! segments the firewall passes are sampled (dropped ones reach no server).

use aya_ebpf::{helpers::bpf_xdp_load_bytes, programs::XdpContext};
use waf_common::{HttpSample, SAMPLE_MAX, SAMPLE_PORTS, XdpConfig, counter, event_kind};
use waf_ebpf::ptr_at;

use crate::{
    maps::{count, events},
    parse::Meta,
};

/// Offsets are masked to this (the parser never goes beyond 1024 + headers)
/// so the verifier can bound packet pointer arithmetic.
const OFF_MASK: usize = 0x7ff;

/// Samples the segment described by `meta` if its port is configured.
#[inline(always)]
pub fn maybe_sample(ctx: &XdpContext, family: u32, meta: &Meta, cfg: &XdpConfig, len: u64) {
    // Payload, or a SYN (its sequence number starts the flow's reassembly).
    if cfg.sample_ports[0] == 0 || (meta.payload_len == 0 && !meta.syn) || meta.dport == 0 {
        return;
    }
    let mut hit = false;
    for i in 0..SAMPLE_PORTS {
        let p = cfg.sample_ports[i];
        if p == 0 {
            break;
        }
        if p == meta.dport {
            hit = true;
            break;
        }
    }
    if !hit {
        return;
    }
    let Some(mut entry) = events().reserve::<HttpSample>(0) else {
        count(counter::SAMPLES_LOST, len);
        return;
    };
    let s = entry.as_mut_ptr();
    let l3 = meta.l3_off as usize & OFF_MASK;
    let l4 = meta.l4_off as usize & OFF_MASK;
    // SAFETY: `s` points to a reserved record of HttpSample size; packet
    // reads go through bounds checks.
    unsafe {
        (*s).kind = event_kind::HTTP_SAMPLE;
        (*s).family = family;
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        if family == 4 {
            if let Some(a) = ptr_at::<[u32; 2]>(ctx, l3 + 12) {
                let a = *a;
                src[..4].copy_from_slice(&a[0].to_ne_bytes());
                dst[..4].copy_from_slice(&a[1].to_ne_bytes());
            }
        } else if let Some(a) = ptr_at::<[u64; 4]>(ctx, l3 + 8) {
            let a = *a;
            src[..8].copy_from_slice(&a[0].to_ne_bytes());
            src[8..].copy_from_slice(&a[1].to_ne_bytes());
            dst[..8].copy_from_slice(&a[2].to_ne_bytes());
            dst[8..].copy_from_slice(&a[3].to_ne_bytes());
        }
        (*s).src = src;
        (*s).dst = dst;
        let (sport, seq, flags) = match ptr_at::<[u8; 14]>(ctx, l4) {
            Some(t) => {
                let t = *t;
                (
                    u16::from_be_bytes([t[0], t[1]]),
                    u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                    t[13] as u32,
                )
            }
            None => (0, 0, 0),
        };
        (*s).sport = sport;
        (*s).dport = meta.dport;
        (*s).seq = seq;
        (*s).tcp_flags = flags;
        (*s).payload_len = meta.payload_len as u32;
        (*s)._reserved = 0;
        let want = (meta.payload_len as u32).min(cfg.sample_bytes) as usize;
        let n = want & (2 * SAMPLE_MAX - 1);
        let mut captured = 0;
        if n > 0 && n <= SAMPLE_MAX {
            let rc = bpf_xdp_load_bytes(
                ctx.ctx,
                (meta.payload_off as usize & OFF_MASK) as u32,
                (&raw mut (*s).data).cast(),
                n as u32,
            );
            if rc == 0 {
                captured = n as u32;
            }
        }
        (*s).captured = captured;
    }
    entry.submit(0);
    count(counter::SAMPLES_SENT, len);
}

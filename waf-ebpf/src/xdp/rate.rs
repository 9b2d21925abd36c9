//! Per-source rate limits as GCRA (virtual scheduling) token buckets.
//!
//! Each bucket keeps one "theoretical arrival time" (TAT). A packet of cost
//! `c` conforms if `max(TAT, now) + c - now <= window`, where `window` is
//! burst x cost: a source may run at most one burst ahead of its rate. A
//! conforming packet moves TAT forward by `c`; a dropped one does not, so a
//! source that floods keeps getting exactly its configured rate through.
//!
//! The state of a source is updated in place without a lock, but a packet
//! credit is taken with an atomic compare-and-exchange of the TAT (the BPF
//! ISA's `cmpxchg`, kernel 5.12+, through `core::intrinsics`, allowed for
//! this crate by `RUSTC_BOOTSTRAP`), so a source flooding from several CPUs
//! (receive queues, RSS) gets its rate once, not once per CPU
//! (`tests/tests/xdp.rs`, two CPUs). The window counters and the byte and
//! SYN buckets are plain updates: a race there costs a count or a credit.

use waf_common::{RateEvent, RateState, XdpConfig, counter, event_kind, flags};

use crate::maps::{Family, count, events};

const NS_PER_SEC: u64 = 1_000_000_000;
/// The shortest span a rate is extrapolated over.
const MIN_OBSERVATION_NS: u64 = 10_000_000;

/// The outcome of the rate check for one packet.
pub enum Verdict {
    /// Within every limit.
    Conform,
    /// Over the packet or byte rate.
    Exceeded,
    /// A TCP SYN over the SYN rate.
    SynExceeded,
}

/// Charges one packet of `len` bytes from source key `key` (see
/// `Family::source_key`) against its buckets.
#[inline(always)]
pub fn check<F: Family>(key: &F::Addr, cfg: &XdpConfig, syn: bool, len: u64, now: u64) -> Verdict {
    // Within the range userspace writes (a shift by 64 would be undefined).
    let bits = cfg
        .rate_set_bits
        .clamp(waf_common::RATE_SET_BITS_MIN, waf_common::RATE_SET_BITS_MAX);
    let Some((st, fresh)) = F::rate_state(key, bits) else {
        return Verdict::Conform;
    };
    // SAFETY: a pointer into the rate array; see the module documentation
    // on concurrent updates.
    let st = unsafe { &mut *st };
    if fresh {
        // First packet of this source (or the first since its slot was
        // reused): it conforms (a burst is at least one packet) and starts
        // its buckets.
        *st = fresh_state(cfg, syn, len, now);
        count(counter::RATE_NEW_SOURCES, len);
        return Verdict::Conform;
    }
    roll_window(st, len, now);

    // The common configuration, a packet rate alone: one bucket, no
    // temporaries to carry.
    if cfg.flags & (flags::RATE_BPS | flags::RATE_SYN) == 0 {
        let old = st.pkt_tat;
        let tat = charge(old, now, cfg.pkt_window_ns, cfg.pkt_cost_ns, cfg.tick_ns);
        if tat - now <= cfg.pkt_window_ns && take(&raw mut st.pkt_tat, old, tat) {
            return Verdict::Conform;
        }
        return over_limit::<F>(key, st, cfg, event_kind::RATE_PPS, now, len);
    }

    // Charge only the buckets that are on; commit only if all conform, so a
    // dropped packet costs its source nothing.
    let old_pkt_tat = st.pkt_tat;
    let mut pkt_tat = 0;
    let mut byte_tat = 0;
    let mut syn_tat = 0;
    let mut over = 0;
    if cfg.flags & flags::RATE_PPS != 0 {
        pkt_tat = charge(
            old_pkt_tat,
            now,
            cfg.pkt_window_ns,
            cfg.pkt_cost_ns,
            cfg.tick_ns,
        );
        if pkt_tat - now > cfg.pkt_window_ns {
            over = event_kind::RATE_PPS;
        }
    }
    if over == 0 && cfg.flags & flags::RATE_BPS != 0 {
        byte_tat = charge(
            st.byte_tat,
            now,
            cfg.byte_window_ns,
            byte_cost(cfg, len),
            cfg.tick_ns,
        );
        if byte_tat - now > cfg.byte_window_ns {
            over = event_kind::RATE_BPS;
        }
    }
    let syn = syn && cfg.flags & flags::RATE_SYN != 0;
    if over == 0 && syn {
        syn_tat = charge(
            st.syn_tat,
            now,
            cfg.syn_window_ns,
            cfg.syn_cost_ns,
            cfg.tick_ns,
        );
        if syn_tat - now > cfg.syn_window_ns {
            over = event_kind::RATE_SYN;
        }
    }
    // The packet bucket, when on, is taken atomically (the others follow
    // it; a lost race over them is a byte or SYN credit, never a packet).
    if over == 0
        && cfg.flags & flags::RATE_PPS != 0
        && !take(&raw mut st.pkt_tat, old_pkt_tat, pkt_tat)
    {
        over = event_kind::RATE_PPS;
    }
    if over == 0 {
        if cfg.flags & flags::RATE_BPS != 0 {
            st.byte_tat = byte_tat;
        }
        if syn {
            st.syn_tat = syn_tat;
        }
        return Verdict::Conform;
    }
    over_limit::<F>(key, st, cfg, over, now, len)
}

/// Moves a bucket's TAT from `old` to `new` unless another CPU moved it
/// since it was read (then this packet lost the credit to that CPU's):
/// one atomic compare-and-exchange, so that a source whose packets arrive
/// on several CPUs (several receive queues, RSS) gets its rate, not up to
/// once per CPU.
#[inline(always)]
fn take(tat: *mut u64, old: u64, new: u64) -> bool {
    use core::intrinsics::{AtomicOrdering::Relaxed, atomic_cxchg};
    // SAFETY: `tat` points into a map value (8-byte aligned u64).
    unsafe { atomic_cxchg::<u64, { Relaxed }, { Relaxed }>(tat, old, new) }.1
}

/// The buckets of a source's first packet: it conforms (a burst is at
/// least one packet) and starts them.
#[inline(always)]
fn fresh_state(cfg: &XdpConfig, syn: bool, len: u64, now: u64) -> RateState {
    RateState {
        pkt_tat: now + cfg.pkt_cost_ns,
        byte_tat: now + byte_cost(cfg, len),
        syn_tat: if syn { now + cfg.syn_cost_ns } else { 0 },
        win_start_ns: now,
        last_event_ns: 0,
        seen_ns: now,
        win_packets: 1,
        dropped: 0,
        win_bytes: len,
        prev_packets: 0,
        _reserved: 0,
        prev_bytes: 0,
    }
}

/// Counts a packet of `len` bytes in its source's one-second window
/// (starting a new window once a second has passed).
#[inline(always)]
fn roll_window(st: &mut RateState, len: u64, now: u64) {
    st.seen_ns = now;
    if now.wrapping_sub(st.win_start_ns) >= NS_PER_SEC {
        st.prev_packets = st.win_packets;
        st.prev_bytes = st.win_bytes;
        st.win_start_ns = now;
        st.win_packets = 0;
        st.win_bytes = 0;
    }
    st.win_packets = st.win_packets.saturating_add(1);
    st.win_bytes += len;
}

/// Counts a packet over limit `kind` against its source and sends a rate
/// event if none went out for it within the event interval.
#[inline(always)]
fn over_limit<F: Family>(
    key: &F::Addr,
    st: &mut RateState,
    cfg: &XdpConfig,
    kind: u32,
    now: u64,
    len: u64,
) -> Verdict {
    st.dropped = st.dropped.saturating_add(1);
    if now.wrapping_sub(st.last_event_ns) >= cfg.event_interval_ns {
        st.last_event_ns = now;
        emit::<F>(key, st, kind, now, len);
        st.dropped = 0;
    }
    if kind == event_kind::RATE_SYN {
        Verdict::SynExceeded
    } else {
        Verdict::Exceeded
    }
}

/// The TAT after charging `cost` to a bucket: the charge starts from the TAT,
/// but not in the past (an idle source has a full bucket). A TAT more than a
/// window ahead can only be left by other limits than the current ones (a
/// conforming packet never moves it further), so the bucket starts afresh:
/// new limits apply from the moment they are written. "More than a window"
/// allows two ticks of the clock besides: another CPU may have charged the
/// bucket at the next tick while this packet still holds the previous one,
/// and resetting the bucket then would hand out a second burst.
#[inline(always)]
fn charge(tat: u64, now: u64, window: u64, cost: u64, tick: u64) -> u64 {
    let start = if tat > now + window + 2 * tick {
        now
    } else {
        tat.max(now)
    };
    start + cost
}

/// Nanoseconds of credit `len` bytes cost.
#[inline(always)]
fn byte_cost(cfg: &XdpConfig, len: u64) -> u64 {
    (len * cfg.byte_cost_fp16) >> 16
}

/// Writes a rate event for `key` to the ring buffer.
#[inline(always)]
fn emit<F: Family>(key: &F::Addr, st: &RateState, kind: u32, now: u64, len: u64) {
    // Over a window shorter than MIN_OBSERVATION_NS the extrapolation is a
    // lower bound; the previous full window may know better.
    let elapsed = now.wrapping_sub(st.win_start_ns).max(MIN_OBSERVATION_NS);
    let observed_pps = (st.win_packets as u64 * NS_PER_SEC / elapsed).max(st.prev_packets as u64);
    let observed_bps = (st.win_bytes * NS_PER_SEC / elapsed).max(st.prev_bytes);
    let ev = RateEvent {
        kind,
        family: F::FAMILY,
        addr: F::event_addr(key),
        observed_pps,
        observed_bps,
        dropped: st.dropped as u64,
        ts_ns: now,
    };
    if events().output::<RateEvent>(&ev, 0).is_ok() {
        count(counter::EVENTS_SENT, len);
    } else {
        count(counter::EVENTS_LOST, len);
    }
}

//! Ring buffer records: rate events and the payload samples of the passive
//! HTTP mirror, told apart by their first `u32` ([`event_kind`]).

/// Most payload bytes one sample carries (a full 1500-byte MTU segment's
/// payload fits).
pub const SAMPLE_MAX: usize = 1536;

/// Event kinds written to the ring buffer (first `u32` of every record).
pub mod event_kind {
    /// A source exceeded its packet rate.
    pub const RATE_PPS: u32 = 1;
    /// A source exceeded its byte rate.
    pub const RATE_BPS: u32 = 2;
    /// A source exceeded its TCP SYN rate.
    pub const RATE_SYN: u32 = 3;
    /// An [`crate::HttpSample`].
    pub const HTTP_SAMPLE: u32 = 16;
}

/// Ring buffer record: a source tripped a rate limit (sampled: at most one
/// per source per `event_interval_ns`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateEvent {
    /// One of [`event_kind`].
    pub kind: u32,
    /// 4 or 6.
    pub family: u32,
    /// Source address (IPv4 in the first four bytes); IPv6 masked to the
    /// rate-limit prefix.
    pub addr: [u8; 16],
    /// Packets per second observed from this source in the current window.
    pub observed_pps: u64,
    /// Bytes per second observed in the current window.
    pub observed_bps: u64,
    /// Packets dropped since the previous event for this source.
    pub dropped: u64,
    /// When the event was written, on the program's clock (ns).
    pub ts_ns: u64,
}

/// Ring buffer record: the head of a TCP segment's payload to a sampled
/// port (passive HTTP mirror). Only segments the program passes are sampled.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HttpSample {
    /// [`event_kind::HTTP_SAMPLE`].
    pub kind: u32,
    /// 4 or 6.
    pub family: u32,
    /// Source address (IPv4 in the first four bytes).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP sequence number of the first payload byte.
    pub seq: u32,
    /// TCP flags.
    pub tcp_flags: u32,
    /// Payload bytes in the segment.
    pub payload_len: u32,
    /// Payload bytes copied into `data`.
    pub captured: u32,
    /// Reserved, zero.
    pub _reserved: u32,
    /// The payload head.
    pub data: [u8; SAMPLE_MAX],
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: both are #[repr(C)], made only of integers and byte arrays,
    // and have no padding (checked by the size assertions below).
    unsafe impl aya::Pod for super::RateEvent {}
    unsafe impl aya::Pod for super::HttpSample {}
}

// Layout checks: a size that is not the sum of the fields means padding.
const _: () = assert!(core::mem::size_of::<RateEvent>() == 8 + 16 + 32);
const _: () = assert!(core::mem::size_of::<HttpSample>() == 8 + 32 + 8 + 16 + SAMPLE_MAX);

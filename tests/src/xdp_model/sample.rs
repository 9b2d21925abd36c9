//! The record the sampler (`waf-ebpf/src/xdp/sample.rs`) writes for a
//! passed TCP segment to a sampled port: addresses, ports, sequence number,
//! flags, the payload length by the IP header and the payload head that
//! lies inside the frame.

use waf_common::{HttpSample, SAMPLE_MAX};

use super::parse::{Meta, Parsed, parse};

/// Offsets the sampler masks to (as the program does, for the verifier).
const OFF_MASK: usize = 0x7ff;

/// The fields of one [`HttpSample`] that the program fills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
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
    /// Sequence number.
    pub seq: u32,
    /// TCP flags.
    pub tcp_flags: u32,
    /// Payload bytes by the IP length.
    pub payload_len: u32,
    /// The payload bytes copied.
    pub data: Vec<u8>,
}

impl Sample {
    /// The record the program writes for `frame` (which it sampled), with
    /// `sample_bytes` configured. None if the frame is not a TCP segment.
    pub fn expected(frame: &[u8], sample_bytes: u32) -> Option<Self> {
        let (family, meta) = match parse(frame) {
            Parsed::V4(_, m) => (4, m),
            Parsed::V6(_, m) => (6, m),
            _ => return None,
        };
        let l3 = usize::from(meta.l3_off) & OFF_MASK;
        let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
        if family == 4 {
            src[..4].copy_from_slice(frame.get(l3 + 12..l3 + 16)?);
            dst[..4].copy_from_slice(frame.get(l3 + 16..l3 + 20)?);
        } else {
            src.copy_from_slice(frame.get(l3 + 8..l3 + 24)?);
            dst.copy_from_slice(frame.get(l3 + 24..l3 + 40)?);
        }
        Some(Self {
            family,
            src,
            dst,
            sport: meta.sport,
            dport: meta.dport,
            seq: meta.seq,
            tcp_flags: u32::from(meta.tcp_flags),
            payload_len: u32::from(meta.payload_len),
            data: captured(frame, &meta, sample_bytes),
        })
    }

    /// The fields of a record the program wrote.
    pub fn from_record(r: &HttpSample) -> Self {
        let n = (r.captured as usize).min(SAMPLE_MAX);
        Self {
            family: r.family,
            src: r.src,
            dst: r.dst,
            sport: r.sport,
            dport: r.dport,
            seq: r.seq,
            tcp_flags: r.tcp_flags,
            payload_len: r.payload_len,
            data: r.data[..n].to_vec(),
        }
    }
}

/// The payload head the program copies: `min(payload, sample_bytes)` bytes
/// from the payload offset if they all lie inside the frame, else none.
fn captured(frame: &[u8], meta: &Meta, sample_bytes: u32) -> Vec<u8> {
    let want = u32::from(meta.payload_len).min(sample_bytes) as usize;
    let n = want & (2 * SAMPLE_MAX - 1);
    let off = usize::from(meta.payload_off) & OFF_MASK;
    if n == 0 || n > SAMPLE_MAX {
        return Vec::new();
    }
    frame
        .get(off..off + n)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

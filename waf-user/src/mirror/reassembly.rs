//! TCP reassembly of one flow: segments put in sequence order (out of order
//! ones kept within a byte bound, retransmissions and overlaps trimmed,
//! sequence numbers wrapping), handed on as in-order bytes or gaps.

use std::collections::BTreeMap;

/// What a segment releases, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes that follow the previous ones.
    Data(Vec<u8>),
    /// Bytes that will never be seen (a truncated sample, a hole given up
    /// on): the next piece does not follow the previous one.
    Gap(u64),
}

/// The in-order state of one direction of a flow.
#[derive(Debug)]
pub struct Reassembly {
    /// The sequence number of the next byte expected.
    next_seq: u32,
    /// Stream offset of that byte.
    next_off: u64,
    /// Out-of-order segments by stream offset.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
}

impl Reassembly {
    /// A flow whose next byte has this sequence number.
    pub fn new(next_seq: u32) -> Reassembly {
        Reassembly {
            next_seq,
            next_off: 0,
            pending: BTreeMap::new(),
            pending_bytes: 0,
        }
    }

    /// Whether segments wait for a hole to be filled.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Accepts a segment of `payload_len` bytes at `seq`, of which `data`
    /// was captured. Out-of-order data waits within `max_pending` bytes;
    /// past that bound the hole is given up on (a gap) rather than let
    /// the flow stall. Returns the pieces released, in order.
    pub fn accept(
        &mut self,
        seq: u32,
        data: &[u8],
        payload_len: u32,
        max_pending: usize,
    ) -> Vec<Piece> {
        let mut out = Vec::new();
        let delta = i64::from(seq.wrapping_sub(self.next_seq) as i32);
        let off = match self.next_off.checked_add_signed(delta) {
            Some(off) => off,
            None => {
                // Before the start of the flow: no retransmission of ours
                // (a forged or missed SYN). Restart the order here rather
                // than ignore the flow from now on.
                self.pending.clear();
                self.pending_bytes = 0;
                self.next_seq = seq;
                out.push(Piece::Gap(0));
                self.next_off
            }
        };
        let truncated = (data.len() as u64) < u64::from(payload_len);
        if off + u64::from(payload_len) <= self.next_off {
            return out; // A retransmission of what we have.
        }
        if off > self.next_off {
            if !truncated && self.pending_bytes + data.len() <= max_pending {
                let slot = self.pending.entry(off).or_default();
                if slot.len() < data.len() {
                    self.pending_bytes = self.pending_bytes - slot.len() + data.len();
                    *slot = data.to_vec();
                }
                return out;
            }
            // Give the hole up: skip to the first byte held, release what
            // follows it, and skip again up to this segment if need be.
            let to = self.pending.keys().next().map_or(off, |&k| k.min(off));
            self.gap_to(to, &mut out);
            self.drain(&mut out);
            self.gap_to(off, &mut out);
        }
        self.take(off, data, &mut out);
        if truncated {
            self.gap_to(off + u64::from(payload_len), &mut out);
        }
        self.drain(&mut out);
        out
    }

    /// Appends the part of `data` (at `off` <= next) that is new.
    fn take(&mut self, off: u64, data: &[u8], out: &mut Vec<Piece>) {
        let skip = usize::try_from(self.next_off - off).unwrap_or(usize::MAX);
        if skip < data.len() {
            let new = &data[skip..];
            self.next_off += new.len() as u64;
            self.next_seq = self.next_seq.wrapping_add(new.len() as u32);
            match out.last_mut() {
                Some(Piece::Data(d)) => d.extend_from_slice(new),
                _ => out.push(Piece::Data(new.to_vec())),
            }
        }
    }

    /// Releases pending segments that now follow.
    fn drain(&mut self, out: &mut Vec<Piece>) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > self.next_off {
                break;
            }
            let (off, seg) = entry.remove_entry();
            self.pending_bytes -= seg.len();
            self.take(off, &seg, out);
        }
    }

    /// Moves the expected offset forward to `to`, reporting the bytes
    /// skipped as a gap.
    fn gap_to(&mut self, to: u64, out: &mut Vec<Piece>) {
        if to > self.next_off {
            let n = to - self.next_off;
            self.next_seq = self.next_seq.wrapping_add(n as u32);
            self.next_off = to;
            out.push(Piece::Gap(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pieces: Vec<Piece>) -> Vec<u8> {
        pieces
            .into_iter()
            .flat_map(|p| match p {
                Piece::Data(d) => d,
                Piece::Gap(_) => panic!("unexpected gap"),
            })
            .collect()
    }

    #[test]
    fn orders_overlapping_segments_across_the_wrap() {
        let base = u32::MAX - 5;
        let mut r = Reassembly::new(base);
        let msg = b"0123456789abcdef";
        let mut got = Vec::new();
        got.extend(data(r.accept(
            base.wrapping_add(10),
            &msg[10..],
            6,
            1 << 16,
        )));
        got.extend(data(r.accept(
            base.wrapping_add(4),
            &msg[4..12],
            8,
            1 << 16,
        )));
        got.extend(data(r.accept(base, &msg[..6], 6, 1 << 16)));
        got.extend(data(r.accept(base, &msg[..6], 6, 1 << 16)));
        assert_eq!(got, msg);
        assert!(!r.has_pending());
    }

    #[test]
    fn data_before_the_flow_start_restarts_it() {
        let mut r = Reassembly::new(1000);
        let out = r.accept(10, b"GET / HTTP/1.1\r\n", 16, 1 << 16);
        assert_eq!(out[0], Piece::Gap(0));
        assert_eq!(out[1], Piece::Data(b"GET / HTTP/1.1\r\n".to_vec()));
        assert_eq!(data(r.accept(26, b"x", 1, 1 << 16)), b"x");
    }

    #[test]
    fn gives_up_holes_instead_of_stalling() {
        let mut r = Reassembly::new(0);
        assert!(r.accept(100, &[b'x'; 50], 50, 64).is_empty());
        let out = r.accept(150, &[b'y'; 50], 50, 64);
        assert_eq!(out[0], Piece::Gap(100));
        assert_eq!(out[1], Piece::Data([[b'x'; 50], [b'y'; 50]].concat()));
        let out = r.accept(200, b"ab", 10, 64);
        assert_eq!(out, [Piece::Data(b"ab".to_vec()), Piece::Gap(8)]);
    }
}

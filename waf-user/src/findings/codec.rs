//! The store's frames: `[0xF1][len: u32 LE][crc32: u32 LE][JSON record]`.
//! A reader takes the valid frames of a file in order and stops at the
//! first that is not: a short tail (a frame being written, or cut by a
//! crash) is `torn`; a bad magic byte, length, checksum or record is
//! `corrupt`, and the rest of that file is skipped. Never a panic, whatever
//! the bytes.

use super::record::FindingRecord;

/// The first byte of every frame.
pub const MAGIC: u8 = 0xF1;
/// The frame header: magic, length, checksum.
pub const HEADER: usize = 9;
/// Longest record accepted (every field of a record is bounded well below).
pub const MAX_RECORD: usize = 16 * 1024;

/// One record as a frame.
pub fn encode(r: &FindingRecord) -> Vec<u8> {
    let body = serde_json::to_vec(r).unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.push(MAGIC);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// How a file's bytes ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Every byte was a valid frame.
    Clean,
    /// The last frame was cut short (being written, or a crash).
    Torn,
    /// A frame was damaged; the rest of the file was skipped.
    Corrupt,
}

/// What a file held: its records in order, how many bytes of it were
/// valid frames, and how it ended.
#[derive(Debug)]
pub struct Decoded {
    /// The records, in file order.
    pub records: Vec<FindingRecord>,
    /// Bytes of valid frames from the start.
    pub valid_len: usize,
    /// How the bytes ended.
    pub end: End,
}

/// Decodes the frames of a file.
pub fn decode(buf: &[u8]) -> Decoded {
    let mut records = Vec::new();
    let mut at = 0;
    let end = loop {
        let rest = &buf[at..];
        if rest.is_empty() {
            break End::Clean;
        }
        if rest[0] != MAGIC {
            break End::Corrupt;
        }
        if rest.len() < HEADER {
            break End::Torn;
        }
        let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let crc = u32::from_le_bytes([rest[5], rest[6], rest[7], rest[8]]);
        if len == 0 || len > MAX_RECORD {
            break End::Corrupt;
        }
        let Some(body) = rest.get(HEADER..HEADER + len) else {
            break End::Torn;
        };
        if crc32fast::hash(body) != crc {
            break End::Corrupt;
        }
        match serde_json::from_slice::<FindingRecord>(body) {
            Ok(r) => records.push(r),
            Err(_) => break End::Corrupt,
        }
        at += HEADER + len;
    };
    Decoded {
        records,
        valid_len: at,
        end,
    }
}

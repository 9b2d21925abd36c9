//! A summary of each segment file, so that readers skip what cannot match
//! and never decode a whole segment to find where a page starts.
//!
//! The frames of a segment are taken in blocks of [`BLOCK`]: for each, where
//! it starts and ends in the file, its id and time ranges, and a Bloom
//! filter of its records' sources, rules, kinds and verdicts. A page asked
//! `before` an id reads only the blocks below it, newest first; a filter
//! skips a block whose Bloom filter says no record can match; a `since`
//! stops at a block wholly older. Every block read is checked (its frames'
//! checksums and count) as the whole file was, so a page holds exactly what
//! a scan of the decoded files would give.
//!
//! The index is built from the files themselves, by readers, never by the
//! writer: at first from each file's start, then from where it stopped (the
//! newest segment grows; a torn frame being written is taken next time).
//! A damaged frame ends a segment's index, as it ends a scan of the file;
//! a file shorter than its index (replaced) is indexed again. Bytes changed
//! in place after they were indexed (the store never does; a disk might)
//! are met when their block is read: counted, the rest of that segment
//! skipped, the segment indexed again on the next page. Memory: about
//! 200 bytes a block of 64 records (some 0.2 MB for the default 32 MiB
//! store).

use super::super::{
    codec::{self, End, HEADER},
    record::{Filter, FindingRecord},
};

/// Frames a block summarises.
pub const BLOCK: usize = 64;
/// Bits of a block's Bloom filter.
const BLOOM_BITS: usize = 1024;
/// Positions a key sets.
const BLOOM_K: u64 = 3;

/// The fields a Bloom filter holds.
#[derive(Clone, Copy)]
enum Field {
    Source = 1,
    Rule = 2,
    Kind = 3,
    Verdict = 4,
}

/// A Bloom filter of a block's field values: never a false "no".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bloom([u64; BLOOM_BITS / 64]);

impl Default for Bloom {
    fn default() -> Self {
        Bloom([0; BLOOM_BITS / 64])
    }
}

/// FNV-1a of the field and the value: two independent halves for double
/// hashing. Not keyed: a sender who crafts values can at worst fill a
/// block's filter, and a full filter only reads the block, as without it.
fn hashes(field: Field, value: &str) -> (u64, u64) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(field as u8).chain(value.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // A final mix so that the low bits depend on every byte.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h, (h >> 32) | 1)
}

impl Bloom {
    fn positions(field: Field, value: &str) -> impl Iterator<Item = usize> {
        let (a, b) = hashes(field, value);
        (0..BLOOM_K).map(move |i| (a.wrapping_add(i.wrapping_mul(b)) % BLOOM_BITS as u64) as usize)
    }

    fn insert(&mut self, field: Field, value: &str) {
        for p in Self::positions(field, value) {
            self.0[p / 64] |= 1 << (p % 64);
        }
    }

    /// False only when no value inserted was `value`.
    fn may_hold(&self, field: Field, value: &str) -> bool {
        Self::positions(field, value).all(|p| self.0[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// A run of up to [`BLOCK`] frames of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Where its first frame starts in the file.
    pub start: u64,
    /// Where its last frame ends.
    pub end: u64,
    /// Frames in it.
    pub count: u32,
    /// Its lowest and highest record id.
    pub min_id: u64,
    pub max_id: u64,
    /// Its earliest and latest record time (Unix ms).
    pub min_time: u64,
    pub max_time: u64,
    bloom: Bloom,
}

impl Block {
    fn new(start: u64, r: &FindingRecord) -> Block {
        Block {
            start,
            end: start,
            count: 0,
            min_id: r.id,
            max_id: r.id,
            min_time: r.time_ms,
            max_time: r.time_ms,
            bloom: Bloom::default(),
        }
    }

    fn add(&mut self, len: u64, r: &FindingRecord) {
        self.end += len;
        self.count += 1;
        self.min_id = self.min_id.min(r.id);
        self.max_id = self.max_id.max(r.id);
        self.min_time = self.min_time.min(r.time_ms);
        self.max_time = self.max_time.max(r.time_ms);
        self.bloom.insert(Field::Source, &r.source);
        self.bloom.insert(Field::Rule, &r.rule);
        self.bloom.insert(Field::Kind, &r.kind);
        self.bloom.insert(Field::Verdict, &r.verdict);
    }

    /// Whether a record of this block may pass `filter`'s exact fields
    /// (false: none can).
    pub fn may_match(&self, filter: &Filter) -> bool {
        let ok =
            |field, v: &Option<String>| v.as_ref().is_none_or(|v| self.bloom.may_hold(field, v));
        ok(Field::Source, &filter.source)
            && ok(Field::Rule, &filter.rule)
            && ok(Field::Kind, &filter.kind)
            && ok(Field::Verdict, &filter.verdict)
    }
}

/// What a walk does with a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Decode it and hand its records on.
    Read,
    /// No record of it is wanted: go on with the next.
    Skip,
    /// The walk ends here.
    Stop,
}

/// How a page's walk treats a block: a `since` wholly after it ends the
/// walk (a scan stops at its first older record, and that is one of this
/// block's); a block none of whose records can pass is skipped, unless it
/// holds a record older than `since` (the scan would stop inside it).
pub fn page_step(filter: &Filter, b: &Block) -> Step {
    match filter.since_ms {
        Some(t) if b.max_time < t => Step::Stop,
        Some(t) if b.min_time < t => Step::Read,
        _ if b.may_match(filter) => Step::Read,
        _ => Step::Skip,
    }
}

/// One segment's summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentIndex {
    /// Its blocks in file order.
    pub blocks: Vec<Block>,
    /// Bytes of the file summarised: valid frames from its start.
    pub indexed: u64,
    /// A damaged frame starts at `indexed`: the rest of the file is not read.
    pub damaged: bool,
}

impl SegmentIndex {
    /// Summarises `tail`, the file's bytes from [`SegmentIndex::indexed`]
    /// on; answers whether it met a damaged frame. A torn last frame is left
    /// for the next call.
    pub fn extend(&mut self, tail: &[u8]) -> bool {
        if self.damaged {
            return false;
        }
        let d = codec::decode(tail);
        let mut at = 0usize;
        for r in &d.records {
            // decode() checked every frame up to valid_len: each header's
            // length is that of a valid frame.
            let len = tail
                .get(at + 1..at + 5)
                .map_or(0, |l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
                + HEADER;
            let start = self.indexed + at as u64;
            match self.blocks.last_mut() {
                Some(b) if (b.count as usize) < BLOCK && b.end == start => b.add(len as u64, r),
                _ => {
                    let mut b = Block::new(start, r);
                    b.add(len as u64, r);
                    self.blocks.push(b);
                }
            }
            at += len;
        }
        self.indexed += d.valid_len as u64;
        self.damaged = d.end == End::Corrupt;
        self.damaged
    }
}

//! The IPv4 tables of the source-policy set that spare the program the
//! trie: exact membership for the /24s that hold entries longer than /24
//! (the deep /24 table), and the tags of the /16s and /24s entries cover
//! whole (see `waf_common::filter::DEEP24_SLOTS`, `COVER24_SLOTS` and
//! README "How the per-packet path stays cheap").

use std::collections::BTreeMap;

use ipnet::IpNet;
use waf_common::{SourceEntry, TAG16_NONE, filter};

use super::mmap::MmapArray;

/// The deep /24 table of a set (the source policies', whose country
/// ranges are often longer than /24): which /24s hold entries longer than
/// /24 and, for the first [`filter::DEEP24_SLOTS`] of them in address
/// order, which of their addresses those cover, so that the program finds
/// an address outside every entry without walking the trie. Rewritten whole
/// from the entries after each change; the program asks the trie meanwhile.
pub struct Deep24 {
    /// The /24s holding entries longer than /24 (2^24 bits).
    pub d24: MmapArray<u64>,
    /// Per word of `d24`: the bits set in the words before it.
    pub rank: MmapArray<u64>,
    /// Per slot: the 256 addresses of its /24, covered or not.
    pub deep: MmapArray<[u64; 4]>,
    /// `filter::DEEP_READY` or `DEEP_REBUILDING` (the tag tables' too).
    pub mode: MmapArray<u64>,
    /// The tag of each /16 an entry of /16 or shorter covers, four a word.
    pub t16: MmapArray<u64>,
    /// Per word of the set's /24 bitmap: the bits set in the words before.
    pub r24: MmapArray<u64>,
    /// The tag of each /24 of the /24 bitmap, in address order, four a word.
    pub tag24: MmapArray<u64>,
}

/// Writes 16-bit entry `v` at `index` of a table of four a word, in `words`.
fn put16(words: &mut [u64], index: usize, v: u64) {
    let shift = (index & 3) * 16;
    let w = &mut words[index >> 2];
    *w = (*w & !(0xffff << shift)) | (v << shift);
}

/// Per word of a bitmap: the bits set in the words before it (the slot of
/// the word's first set bit, as the program counts).
fn ranks(words: &[u64]) -> Vec<u64> {
    let mut before = 0u64;
    words
        .iter()
        .map(|w| {
            let r = before;
            before += u64::from(w.count_ones());
            r
        })
        .collect()
}

impl Deep24 {
    /// Rewrites the tables for the set's entries (each with its IPv6 table
    /// slot value, a `SourceEntry` in `to_slot` form) and its /24 bitmap
    /// `f24`, which must be up to date.
    pub(super) fn rebuild<'a>(
        &self,
        entries: impl Iterator<Item = (&'a IpNet, u64)>,
        f24: &MmapArray<u64>,
    ) {
        let mut per24: BTreeMap<u32, [u64; 4]> = BTreeMap::new();
        let mut t16 = vec![u64::MAX; filter::T16_WORDS as usize];
        let mut covered24: BTreeMap<u32, u64> = BTreeMap::new();
        for (net, slot) in entries {
            let IpNet::V4(n) = net else { continue };
            let len = u32::from(n.prefix_len());
            let tag = SourceEntry::from_slot(slot).to_tag16();
            if len <= 16 {
                let first = u32::from(n.network()) >> 16;
                for x in first..first + (1 << (16 - len)) {
                    put16(&mut t16, x as usize, tag);
                }
                continue;
            }
            if len <= 24 {
                let first = u32::from(n.network()) >> 8;
                for x in first..first + (1 << (24 - len)) {
                    covered24.insert(x, tag);
                }
                continue;
            }
            let host = u32::from(n.network());
            let bits = per24.entry(host >> 8).or_default();
            let first = host & 255;
            for o in first..first + (1 << (32 - u32::from(n.prefix_len()))) {
                bits[(o >> 6) as usize] |= 1 << (o & 63);
            }
        }
        self.mode.store(0, filter::DEEP_REBUILDING);
        let mut words = vec![0u64; filter::F24_WORDS as usize];
        for t24 in per24.keys() {
            words[(t24 >> 6) as usize] |= 1 << (t24 & 63);
        }
        self.d24.store_all(&words);
        self.rank.store_all(&ranks(&words));
        for (slot, bits) in per24
            .values()
            .take(filter::DEEP24_SLOTS as usize)
            .enumerate()
        {
            // SAFETY: a slot of the mapping (below its length); the program
            // reads it only once the mode says ready.
            unsafe { std::ptr::write_volatile(self.deep.ptr(slot), *bits) };
        }
        self.t16.store_all(&t16);
        // The covered /24s' tags in the order of the bitmap's bits, as the
        // program ranks them (a bit the entries do not explain: the trie).
        let words: Vec<u64> = (0..filter::F24_WORDS as usize)
            .map(|i| f24.load(i))
            .collect();
        let mut tags = vec![u64::MAX; (filter::COVER24_SLOTS / 4) as usize];
        let mut slot = 0usize;
        for (i, w) in words.iter().enumerate() {
            let mut w = *w;
            while w != 0 && slot < filter::COVER24_SLOTS as usize {
                let t24 = (i as u32) << 6 | w.trailing_zeros();
                w &= w - 1;
                put16(&mut tags, slot, *covered24.get(&t24).unwrap_or(&TAG16_NONE));
                slot += 1;
            }
        }
        self.r24.store_all(&ranks(&words));
        self.tag24.store_all(&tags);
        self.mode.store(0, filter::DEEP_READY);
    }
}

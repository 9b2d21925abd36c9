//! The deep /24 table of the source-policy set: exact IPv4 membership for
//! the /24s that hold entries longer than /24, without the trie (see
//! `waf_common::filter::DEEP24_SLOTS` and README "How the per-packet path
//! stays cheap").

use std::collections::BTreeMap;

use ipnet::IpNet;
use waf_common::filter;

use super::mmap::MmapArray;

/// An IPv4 entry longer than /24 (the deep /24 table's).
pub(super) fn is_deep(net: &IpNet) -> bool {
    matches!(net, IpNet::V4(n) if n.prefix_len() > 24)
}

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
    /// `filter::DEEP_READY` or `DEEP_REBUILDING`.
    pub mode: MmapArray<u64>,
}

impl Deep24 {
    /// Rewrites the table for the set's entries `nets`.
    pub(super) fn rebuild<'a>(&self, nets: impl Iterator<Item = &'a IpNet>) {
        let mut per24: BTreeMap<u32, [u64; 4]> = BTreeMap::new();
        for net in nets {
            let IpNet::V4(n) = net else { continue };
            if n.prefix_len() <= 24 {
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
        let mut before = 0u64;
        for (i, w) in words.iter().enumerate() {
            if self.d24.load(i) != *w {
                self.d24.store(i, *w);
            }
            if self.rank.load(i) != before {
                self.rank.store(i, before);
            }
            before += u64::from(w.count_ones());
        }
        for (slot, bits) in per24
            .values()
            .take(filter::DEEP24_SLOTS as usize)
            .enumerate()
        {
            // SAFETY: a slot of the mapping (below its length); the program
            // reads it only once the mode says ready.
            unsafe { std::ptr::write_volatile(self.deep.ptr(slot), *bits) };
        }
        self.mode.store(0, filter::DEEP_READY);
    }
}

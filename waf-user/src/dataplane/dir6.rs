//! The source set's IPv6 directory (`waf_common::prefix6::DirBucketV6`):
//! per /32 that the set's level-1 targets (/32 to /47) split, the set's
//! mask byte of each of its /40s, so that a source outside every policy
//! probes the targets of its own /40 (most often none) instead of every
//! target the hashed level-1 mask names for its /32.
//!
//! It is derived from the set's table ([`Table6`]) and rewritten whole
//! after each change to it: [`Dir6::suspend`] before the table is touched
//! (the plan's `dir_buckets` goes to 0, and the program reads the level-1
//! masks, as before the directory), [`Dir6::rebuild`] once the table is
//! whole again. The program never reads a directory of another table.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use waf_common::prefix6::{
    DIR_SUBS, DIR_WAYS, DirBucketV6, DirSlotV6, SLOTS, TRIE_BIT, V6Plan, dir_bucket, dir_entry,
};

use super::{mmap::MmapArray, table6::Table6};

/// A set's IPv6 directory: its buckets and slots (the maps' mappings).
pub struct Dir6 {
    /// The buckets (a power of two of them).
    pub buckets: MmapArray<DirBucketV6>,
    /// The slots: per /32, a mask byte per /40.
    pub slots: MmapArray<DirSlotV6>,
    usage: DirUsage,
}

/// What the directory holds ([`super::table6::Usage::dir`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirUsage {
    /// The /32s split by level-1 targets.
    pub split: usize,
    /// Those in the directory (the others read the level-1 mask).
    pub kept: usize,
}

/// A mark of the level-1 mask: a prefix's network (as a number), its
/// length (32 to 47) and the mask bit it sets.
type Mark = (u128, u8, u32);

/// The level-1 marks of `t`: every slot of its table at a target of /32
/// to /47, every such prefix whose bucket was full, and every entry of
/// those lengths kept in the trie only ([`TRIE_BIT`]); what the program's
/// level-1 mask names, without the hash.
fn marks(t: &Table6) -> Vec<Mark> {
    let level1 = |len: u8| (32..48).contains(&len);
    let mut out = Vec::new();
    for b in 0..t.table.len() {
        let p = t.table.ptr(b);
        // SAFETY: fields of a valid bucket of the mapping; only this
        // writer changes them.
        let (used, lens) = unsafe { ((*p).used, (*p).lens) };
        for s in (0..SLOTS).filter(|&s| used & (1 << s) != 0 && level1(lens[s])) {
            // SAFETY: as above.
            let net = u128::from_be_bytes(unsafe { (*p).keys[s] });
            out.push((net, lens[s], t.target_bit(lens[s])));
        }
    }
    for &(net, len) in &t.overflowed {
        if level1(len) {
            out.push((net, len, t.target_bit(len)));
        }
    }
    for net in &t.trie_only {
        if level1(net.prefix_len()) {
            out.push((u128::from(net.network()), net.prefix_len(), TRIE_BIT));
        }
    }
    out
}

/// The mask bytes of each /32 the marks split.
fn bytes_of(marks: &[Mark]) -> BTreeMap<u32, [u8; DIR_SUBS]> {
    let mut per32: BTreeMap<u32, [u8; DIR_SUBS]> = BTreeMap::new();
    for &(net, len, bit) in marks {
        let bytes = per32.entry((net >> 96) as u32).or_insert([0; DIR_SUBS]);
        let first = ((net >> 88) & 0xff) as usize;
        // A prefix of /40 or shorter covers its /40s whole; a longer one
        // lies inside one.
        let count = 1usize << 40u8.saturating_sub(len);
        for b in &mut bytes[first..first + count] {
            *b |= 1 << bit;
        }
    }
    per32
}

/// The directory's words for `per32`: the buckets (each /32 in its bucket,
/// or the bucket marked overflowed) and the slots, in slot order.
fn layout(
    per32: &BTreeMap<u32, [u8; DIR_SUBS]>,
    buckets: usize,
    slots: usize,
) -> (Vec<DirBucketV6>, Vec<DirSlotV6>) {
    let mut bs = vec![DirBucketV6::default(); buckets];
    let mut ss: Vec<DirSlotV6> = Vec::new();
    for (&top, bytes) in per32 {
        let b = &mut bs[dir_bucket(top, buckets as u32) as usize];
        match b.entries.iter().position(|&e| e == 0) {
            Some(way) if ss.len() < slots => {
                b.entries[way] = dir_entry(top, ss.len() as u32);
                let mut words = [0u64; DIR_SUBS / 8];
                for (i, w) in words.iter_mut().enumerate() {
                    *w = u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
                }
                ss.push(words);
            }
            _ => b.overflow = 1,
        }
    }
    debug_assert!(bs.iter().all(|b| b.entries.len() == DIR_WAYS));
    (bs, ss)
}

impl Dir6 {
    /// A directory over the given maps (written at the first rebuild).
    pub fn new(buckets: MmapArray<DirBucketV6>, slots: MmapArray<DirSlotV6>) -> Self {
        Self {
            buckets,
            slots,
            usage: DirUsage::default(),
        }
    }

    /// What the directory holds.
    pub fn usage(&self) -> DirUsage {
        self.usage
    }

    /// Sends the program to the level-1 masks (before the table changes).
    pub fn suspend(plan: *mut V6Plan) {
        // SAFETY: a valid, 4-byte aligned field of the mapped plan.
        unsafe { AtomicU32::from_ptr(&raw mut (*plan).dir_buckets) }.store(0, Ordering::SeqCst);
    }

    /// Rewrites the directory from table `t` (whole, its plan written) and
    /// lets the program read it.
    pub fn rebuild(&mut self, t: &Table6, plan: *mut V6Plan) {
        let per32 = bytes_of(&marks(t));
        let (bs, ss) = layout(&per32, self.buckets.len(), self.slots.len());
        Self::suspend(plan);
        // A packet that read the old count before the store above is done
        // within microseconds; none reads the words below until the new
        // count is stored.
        std::thread::sleep(Duration::from_micros(200));
        for (i, s) in ss.iter().enumerate() {
            // SAFETY: a slot of the mapping (below its length, as `layout`
            // keeps); the program reads none now.
            unsafe { std::ptr::write_volatile(self.slots.ptr(i), *s) };
        }
        for (i, b) in bs.iter().enumerate() {
            // SAFETY: a bucket of the mapping; the program reads none now.
            unsafe { std::ptr::write_volatile(self.buckets.ptr(i), *b) };
        }
        self.usage = DirUsage {
            split: per32.len(),
            kept: ss.len(),
        };
        // SAFETY: as in `suspend`; written last.
        unsafe { AtomicU32::from_ptr(&raw mut (*plan).dir_buckets) }
            .store(self.buckets.len() as u32, Ordering::SeqCst);
    }
}

impl Table6 {
    /// Keeps `dir` as the table's directory (rewritten after each change).
    pub fn with_dir(mut self, dir: Dir6) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Sends the program to the level-1 masks while the table changes.
    pub(super) fn dir_suspend(&self) {
        if self.dir.is_some() {
            Dir6::suspend(self.plan_ptr());
        }
    }

    /// Rewrites the directory from the table, now whole.
    pub(super) fn dir_rebuild(&mut self) {
        if let Some(mut dir) = self.dir.take() {
            dir.rebuild(self, self.plan_ptr());
            self.dir = Some(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: u128 = 0x2001_0db8u128 << 96;

    #[test]
    fn a_short_prefix_marks_its_forties_and_a_long_one_its_own() {
        // A /36 at the /32's second /36, a /44 inside /40 number 0x40.
        let marks = [
            (NET | (1u128 << 92), 36, 3),
            (NET | (0x40u128 << 88), 44, 1),
            (NET | (0x40u128 << 88) | (1 << 84), 46, TRIE_BIT),
        ];
        let per32 = bytes_of(&marks);
        let bytes = per32[&0x2001_0db8];
        assert_eq!(per32.len(), 1);
        for (i, &b) in bytes.iter().enumerate() {
            let want = match i {
                16..=31 => 1 << 3,
                0x40 => (1 << 1) | (1 << TRIE_BIT),
                _ => 0,
            };
            assert_eq!(b, want, "/40 {i:#x}");
        }
    }

    #[test]
    fn a_full_bucket_overflows_and_slots_run_out() {
        let mut per32 = BTreeMap::new();
        for top in 0..64u32 {
            per32.insert(top, [top as u8; DIR_SUBS]);
        }
        // One bucket: seven /32s fit, the bucket overflows.
        let (bs, ss) = layout(&per32, 1, 1024);
        assert_eq!(ss.len(), DIR_WAYS);
        assert_eq!(bs[0].overflow, 1);
        // Enough buckets but four slots: four kept, their buckets intact.
        let (bs, ss) = layout(&per32, 1024, 4);
        assert_eq!(ss.len(), 4);
        let kept: Vec<u64> = bs
            .iter()
            .flat_map(|b| b.entries)
            .filter(|&e| e != 0)
            .collect();
        assert_eq!(kept.len(), 4);
        for e in kept {
            let (top, slot) = ((e >> 32) as u32, (e as u32 - 1) as usize);
            assert!(top < 4, "the first /32s in address order are kept");
            assert_eq!(ss[slot][0], u64::from_le_bytes([top as u8; 8]));
            assert!(bs[dir_bucket(top, 1024) as usize].entries.contains(&e));
        }
        for top in 4..64 {
            assert_ne!(bs[dir_bucket(top, 1024) as usize].overflow, 0, "/32 {top}");
        }
    }
}

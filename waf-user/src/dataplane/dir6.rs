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
    DIR_SUBS, DirBucketV6, DirCoverV6, DirSlotV6, SLOTS, TRIE_BIT, V6Plan, dir_bucket, dir_entry,
};

use super::{mmap::MmapArray, table6::Table6};

/// A set's IPv6 directory: its buckets, slots and cover bitmaps (the
/// maps' mappings).
pub struct Dir6 {
    /// The buckets (a power of two of them).
    pub buckets: MmapArray<DirBucketV6>,
    /// The slots: per /32, a mask byte and a cover bitmap per /40.
    pub slots: MmapArray<DirSlotV6>,
    /// The cover bitmaps: per /40, its /48s covered or holding a prefix.
    pub covers: MmapArray<DirCoverV6>,
    usage: DirUsage,
}

/// What the directory holds ([`super::table6::Usage::dir`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirUsage {
    /// The /32s split by level-1 targets.
    pub split: usize,
    /// Those in the directory (the others read the level-1 mask).
    pub kept: usize,
    /// Cover bitmaps in use (their /40s' sources outside every prefix
    /// probe nothing).
    pub covers: usize,
}

/// A prefix of the table: its network (as a number), its length, and the
/// level-1 mask bit it sets (None: a target of another level).
type Mark = (u128, u8, Option<u32>);

/// The prefixes of `t`: every slot of its table, every prefix whose
/// bucket was full, and every entry kept in the trie only (those of /32
/// to /47 setting [`TRIE_BIT`]); what the program's masks name, without
/// their hashes.
fn marks(t: &Table6) -> Vec<Mark> {
    let level1 = |len: u8| (32..48).contains(&len);
    let bit = |len: u8| level1(len).then(|| t.target_bit(len));
    let mut out = Vec::new();
    for b in 0..t.table.len() {
        let p = t.table.ptr(b);
        // SAFETY: fields of a valid bucket of the mapping; only this
        // writer changes them.
        let (used, lens) = unsafe { ((*p).used, (*p).lens) };
        for s in (0..SLOTS).filter(|&s| used & (1 << s) != 0) {
            // SAFETY: as above.
            let net = u128::from_be_bytes(unsafe { (*p).keys[s] });
            out.push((net, lens[s], bit(lens[s])));
        }
    }
    for &(net, len) in &t.overflowed {
        out.push((net, len, bit(len)));
    }
    for net in &t.trie_only {
        let len = net.prefix_len();
        out.push((
            u128::from(net.network()),
            len,
            level1(len).then_some(TRIE_BIT),
        ));
    }
    out
}

/// What the directory keeps of one /32 its level-1 targets split.
#[derive(Default)]
struct Split {
    /// The level-1 mask byte of each /40.
    bytes: Vec<u8>,
    /// The /40s a prefix covers whole.
    whole: Vec<bool>,
    /// The /48s covered or holding a prefix, per /40 with any.
    covers: BTreeMap<usize, DirCoverV6>,
}

/// The /32s the level-1 marks split, with their bytes and covers.
fn splits(marks: &[Mark]) -> BTreeMap<u32, Split> {
    let mut per32: BTreeMap<u32, Split> = BTreeMap::new();
    let sub40 = |net: u128| ((net >> 88) & 0xff) as usize;
    for &(net, len, bit) in marks {
        let Some(bit) = bit else { continue };
        let s = per32.entry((net >> 96) as u32).or_insert_with(|| Split {
            bytes: vec![0; DIR_SUBS],
            whole: vec![false; DIR_SUBS],
            covers: BTreeMap::new(),
        });
        // A prefix of /40 or shorter covers its /40s whole; a longer one
        // lies inside one.
        let first = sub40(net);
        for b in &mut s.bytes[first..first + (1usize << 40u8.saturating_sub(len))] {
            *b |= 1 << bit;
        }
    }
    for &(net, len, _) in marks {
        let top = (net >> 96) as u32;
        if len <= 32 {
            let last = u64::from(top) + (1u64 << (32 - len)) - 1;
            let last = u32::try_from(last).unwrap_or(u32::MAX);
            for (_, s) in per32.range_mut(top..=last) {
                s.whole.fill(true);
            }
            continue;
        }
        let Some(s) = per32.get_mut(&top) else {
            continue;
        };
        let first = sub40(net);
        if len <= 40 {
            s.whole[first..first + (1 << (40 - len))].fill(true);
            continue;
        }
        let bits = s.covers.entry(first).or_default();
        let x = ((net >> 80) & 0xff) as usize;
        for x in x..x + (1usize << 48u8.saturating_sub(len)) {
            bits[x >> 6] |= 1 << (x & 63);
        }
    }
    per32
}

/// The directory's words for `per32`: the buckets (each /32 in its bucket,
/// or the bucket marked overflowed), the slots and the cover bitmaps, in
/// order, within `slots` and `covers` of them.
fn layout(
    per32: &BTreeMap<u32, Split>,
    buckets: usize,
    slots: usize,
    covers: usize,
) -> (Vec<DirBucketV6>, Vec<DirSlotV6>, Vec<DirCoverV6>) {
    let mut bs = vec![DirBucketV6::default(); buckets];
    let (mut ss, mut cs): (Vec<DirSlotV6>, Vec<DirCoverV6>) = (Vec::new(), Vec::new());
    for (&top, s) in per32 {
        let b = &mut bs[dir_bucket(top, buckets as u32) as usize];
        let Some(way) = b
            .entries
            .iter()
            .position(|&e| e == 0)
            .filter(|_| ss.len() < slots)
        else {
            b.overflow = 1;
            continue;
        };
        b.entries[way] = dir_entry(top, ss.len() as u32);
        let mut slot = [0u32; DIR_SUBS];
        for (i, v) in slot.iter_mut().enumerate() {
            *v = u32::from(s.bytes[i]);
            // A /40 the table would be probed for, not covered whole: its
            // cover bitmap spares the probes to the sources beside.
            if *v != 0 && !s.whole[i] && cs.len() < covers {
                cs.push(s.covers.get(&i).copied().unwrap_or_default());
                *v |= (cs.len() as u32) << 8;
            }
        }
        ss.push(slot);
    }
    (bs, ss, cs)
}

impl Dir6 {
    /// A directory over the given maps (written at the first rebuild).
    pub fn new(
        buckets: MmapArray<DirBucketV6>,
        slots: MmapArray<DirSlotV6>,
        covers: MmapArray<DirCoverV6>,
    ) -> Self {
        Self {
            buckets,
            slots,
            covers,
            usage: DirUsage::default(),
        }
    }

    /// What the directory holds.
    pub fn usage(&self) -> DirUsage {
        self.usage
    }

    /// Sends the program to the level-1 masks (before the table changes).
    pub(super) fn suspend(plan: *mut V6Plan) {
        // SAFETY: a valid, 4-byte aligned field of the mapped plan.
        unsafe { AtomicU32::from_ptr(&raw mut (*plan).dir_buckets) }.store(0, Ordering::SeqCst);
    }

    /// Rewrites the directory from table `t` (whole, its plan written) and
    /// lets the program read it.
    pub(super) fn rebuild(&mut self, t: &Table6, plan: *mut V6Plan) {
        let per32 = splits(&marks(t));
        let (bs, ss, cs) = layout(
            &per32,
            self.buckets.len(),
            self.slots.len(),
            self.covers.len(),
        );
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
        for (i, c) in cs.iter().enumerate() {
            // SAFETY: as above.
            unsafe { std::ptr::write_volatile(self.covers.ptr(i), *c) };
        }
        for (i, b) in bs.iter().enumerate() {
            // SAFETY: a bucket of the mapping; the program reads none now.
            unsafe { std::ptr::write_volatile(self.buckets.ptr(i), *b) };
        }
        self.usage = DirUsage {
            split: per32.len(),
            kept: ss.len(),
            covers: cs.len(),
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
    use waf_common::prefix6::DIR_WAYS;

    use super::*;

    const NET: u128 = 0x2001_0db8u128 << 96;

    #[test]
    fn bytes_covers_and_whole_forties_follow_the_prefixes() {
        let marks = [
            // A /36 at the /32's second /36: /40s 16..=31 whole.
            (NET | (1u128 << 92), 36, Some(3)),
            // In /40 0x40: a /44 (level 1), a /46 in the trie only, a /56.
            (NET | (0x40u128 << 88), 44, Some(1)),
            (NET | (0x40u128 << 88) | (1 << 84), 46, Some(TRIE_BIT)),
            (NET | (0x40u128 << 88) | (0x33u128 << 80), 56, None),
            // Outside the split /32s: ignored; a /31 around it: all whole.
            (0x3fff_0000u128 << 96, 60, None),
        ];
        let per32 = splits(&marks);
        assert_eq!(per32.keys().copied().collect::<Vec<_>>(), [0x2001_0db8]);
        let s = &per32[&0x2001_0db8];
        for i in 0..DIR_SUBS {
            let want = match i {
                16..=31 => 1 << 3,
                0x40 => (1 << 1) | (1 << TRIE_BIT),
                _ => 0,
            };
            assert_eq!(s.bytes[i], want, "/40 {i:#x}");
            assert_eq!(s.whole[i], (16..=31).contains(&i), "/40 {i:#x}");
        }
        // The /44 covers /48s 0..16, the /46 16..20, the /56 lies in 0x33.
        let bits = s.covers[&0x40];
        let want = [((1u64 << 20) - 1) | (1 << 0x33), 0, 0, 0];
        assert_eq!(bits, want);
        let (bs, ss, cs) = layout(&per32, 4, 4, 4);
        assert_eq!((ss.len(), cs.len()), (1, 1));
        assert!(
            bs.iter()
                .any(|b| b.entries.contains(&dir_entry(0x2001_0db8, 0)))
        );
        assert_eq!(ss[0][0x40], 0b1000_0010 | 1 << 8);
        assert_eq!(ss[0][16], 1 << 3, "covered whole: probed, no bitmap");
        assert_eq!(cs[0], want);
        let mut with_short = marks.to_vec();
        with_short.push((0x2001_0db8u128 << 96, 31, None));
        assert!(splits(&with_short)[&0x2001_0db8].whole.iter().all(|&w| w));
    }

    #[test]
    fn a_full_bucket_overflows_and_slots_and_covers_run_out() {
        let marks: Vec<Mark> = (0..64u128)
            .map(|top| (top << 96 | 5 << 88 | 7 << 84, 44, Some(2)))
            .collect();
        let per32 = splits(&marks);
        // One bucket: seven /32s fit, the bucket overflows.
        let (bs, ss, _) = layout(&per32, 1, 1024, 1024);
        assert_eq!(ss.len(), DIR_WAYS);
        assert_eq!(bs[0].overflow, 1);
        // Enough buckets but four slots and two covers: four kept, the
        // first two with covers.
        let (bs, ss, cs) = layout(&per32, 1024, 4, 2);
        assert_eq!((ss.len(), cs.len()), (4, 2));
        let kept: Vec<u64> = bs
            .iter()
            .flat_map(|b| b.entries)
            .filter(|&e| e != 0)
            .collect();
        assert_eq!(kept.len(), 4);
        for e in kept {
            let (top, slot) = ((e >> 32) as u32, (e as u32 - 1) as usize);
            assert!(top < 4, "the first /32s in address order are kept");
            let cover = if slot < 2 { (slot as u32 + 1) << 8 } else { 0 };
            assert_eq!(ss[slot][5], 1 << 2 | cover);
            assert!(bs[dir_bucket(top, 1024) as usize].entries.contains(&e));
        }
        for top in 4..64 {
            assert_ne!(bs[dir_bucket(top, 1024) as usize].overflow, 0, "/32 {top}");
        }
    }
}

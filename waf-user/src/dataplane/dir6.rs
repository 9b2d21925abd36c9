//! The source set's IPv6 directory (`waf_common::prefix6::DIR_ENTRIES`):
//! per /32 that the set's level-1 targets (/32 to /47) split, the set's
//! mask byte of each of its /40s, so that a source outside every policy
//! probes the targets of its own /40 (most often none) instead of every
//! target the hashed level-1 mask names for its /32.
//!
//! It is derived from the set's table ([`Table6`]) and rewritten whole
//! after each change to it: [`Dir6::suspend`] before the table is touched
//! (the plan's `dir_ready` goes to 0, and the program reads the level-1
//! masks, as before the directory), [`Dir6::rebuild`] once the table is
//! whole again. The program never reads a directory of another table.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use waf_common::prefix6::{
    DIR_LEVEL2, DIR_SHARED, DIR_SUBS, DirCoverV6, DirSlotV6, SLOTS, TRIE_BIT, V6Plan, dir_entry,
    dir_index,
};

use super::{mmap::MmapArray, table6::Table6};

/// A set's IPv6 directory: its entries, slots and cover bitmaps (the
/// maps' mappings).
pub struct Dir6 {
    /// An entry per level-1 mask index (`waf_common::prefix6::DIR_ENTRIES`).
    pub entries: MmapArray<u64>,
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

/// What the directory keeps of one /32 the set's prefixes split.
#[derive(Default)]
struct Split {
    /// The level-1 mask byte of each /40.
    bytes: Vec<u8>,
    /// The /40s a prefix covers whole.
    whole: Vec<bool>,
    /// The /48s covered or holding a prefix, per /40 with any.
    covers: BTreeMap<usize, DirCoverV6>,
}

/// The /32s the marks split (hold prefixes longer than /32 of), with
/// their bytes and covers.
fn splits(marks: &[Mark]) -> BTreeMap<u32, Split> {
    let mut per32: BTreeMap<u32, Split> = BTreeMap::new();
    let sub40 = |net: u128| ((net >> 88) & 0xff) as usize;
    // Every /32 with a level-1 mark (a /32 target's too), and every /32
    // holding a prefix longer than /32 (those of the level-2 targets too:
    // their /48 mask is hashed, and a cover bitmap spares its collisions
    // to the sources beside).
    for &(net, len, bit) in marks.iter().filter(|m| m.1 > 32 || m.2.is_some()) {
        let s = per32.entry((net >> 96) as u32).or_insert_with(|| Split {
            bytes: vec![0; DIR_SUBS],
            whole: vec![false; DIR_SUBS],
            covers: BTreeMap::new(),
        });
        let Some(bit) = bit else { continue };
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

/// The index of /32 `top` in the directory.
fn index_of(top: u32) -> usize {
    dir_index(u64::from(top) << 32) as usize
}

/// The directory's words for `per32`: `entries` entries (each split /32
/// at its index, or the index marked [`DIR_SHARED`] when two share it or
/// the slots ran out), the slots and the cover bitmaps, in order, within
/// `slots` and `covers` of them.
fn layout(
    per32: &BTreeMap<u32, Split>,
    entries: usize,
    slots: usize,
    covers: usize,
) -> (Vec<u64>, Vec<DirSlotV6>, Vec<DirCoverV6>) {
    let mut es = vec![0u64; entries];
    let mut shared = vec![false; entries];
    for &top in per32.keys() {
        let i = index_of(top);
        shared[i] = es[i] != 0;
        es[i] = 1;
    }
    let (mut ss, mut cs): (Vec<DirSlotV6>, Vec<DirCoverV6>) = (Vec::new(), Vec::new());
    for (&top, s) in per32 {
        let i = index_of(top);
        if shared[i] || ss.len() >= slots {
            es[i] = u64::from(DIR_SHARED);
            continue;
        }
        es[i] = dir_entry(top, ss.len() as u32);
        let mut slot = [0u32; DIR_SUBS];
        for (i, v) in slot.iter_mut().enumerate() {
            *v = u32::from(s.bytes[i]);
            // A /40 the table would be probed for, not covered whole: its
            // cover bitmap spares the probes to the sources beside.
            if (*v != 0 || s.covers.contains_key(&i)) && !s.whole[i] && cs.len() < covers {
                cs.push(s.covers.get(&i).copied().unwrap_or_default());
                *v |= (cs.len() as u32) << 8;
            }
            // Only a /40 holding a prefix longer than /40 needs the level-2
            // mask's targets (elsewhere its bits are other /48s').
            if s.covers.contains_key(&i) {
                *v |= DIR_LEVEL2;
            }
        }
        ss.push(slot);
    }
    (es, ss, cs)
}

impl Dir6 {
    /// A directory over the given maps (written at the first rebuild).
    pub fn new(
        entries: MmapArray<u64>,
        slots: MmapArray<DirSlotV6>,
        covers: MmapArray<DirCoverV6>,
    ) -> Self {
        Self {
            entries,
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
        unsafe { AtomicU32::from_ptr(&raw mut (*plan).dir_ready) }.store(0, Ordering::SeqCst);
    }

    /// Rewrites the directory from table `t` (whole, its plan written) and
    /// lets the program read it.
    pub(super) fn rebuild(&mut self, t: &Table6, plan: *mut V6Plan) {
        let per32 = splits(&marks(t));
        let (es, ss, cs) = layout(
            &per32,
            self.entries.len(),
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
        for (i, e) in es.iter().enumerate() {
            if self.entries.load(i) != *e {
                self.entries.store(i, *e);
            }
        }
        self.usage = DirUsage {
            split: per32.len(),
            kept: ss.len(),
            covers: cs.len(),
        };
        // SAFETY: as in `suspend`; written last.
        unsafe { AtomicU32::from_ptr(&raw mut (*plan).dir_ready) }.store(1, Ordering::SeqCst);
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
    use waf_common::prefix6::DIR_ENTRIES;

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
            // Alone in its /32: a /60 (level 2).
            (0x3fff_0000u128 << 96, 60, None),
            // Inside the /36, in /40 20: a /52 (level 2).
            (NET | (20u128 << 88) | (5u128 << 76), 52, None),
        ];
        let per32 = splits(&marks);
        let tops = [0x2001_0db8, 0x3fff_0000];
        assert_eq!(per32.keys().copied().collect::<Vec<_>>(), tops);
        let alone = &per32[&0x3fff_0000];
        assert!(alone.bytes.iter().all(|&b| b == 0));
        assert_eq!(alone.covers.keys().copied().collect::<Vec<_>>(), [0]);
        assert_eq!(alone.covers[&0], [1, 0, 0, 0]);
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
        let (es, ss, cs) = layout(&per32, DIR_ENTRIES as usize, 4, 4);
        assert_eq!((ss.len(), cs.len()), (2, 2));
        assert_eq!(es[index_of(tops[0])], dir_entry(tops[0], 0));
        assert_eq!(es[index_of(tops[1])], dir_entry(tops[1], 1));
        assert_eq!(es.iter().filter(|&&e| e != 0).count(), 2);
        assert_eq!(
            ss[1][0],
            2 << 8 | DIR_LEVEL2,
            "no level-1 target, a cover, a prefix longer than /40"
        );
        assert_eq!(ss[1][1], 0, "nothing in it: only level 0 may hold it");
        assert_eq!(cs[1], [1, 0, 0, 0]);
        assert_eq!(ss[0][0x40], 0b1000_0010 | 1 << 8 | DIR_LEVEL2);
        assert_eq!(ss[0][16], 1 << 3, "covered whole: probed, no bitmap");
        assert_eq!(ss[0][20], 1 << 3 | DIR_LEVEL2, "whole, with a /52 inside");
        assert_eq!(cs[0], want);
        // A /32 target (level 1) is a /32 of the directory, covered whole.
        let mut with32 = marks.to_vec();
        with32.push((0x3fff_0002u128 << 96, 32, Some(6)));
        let at32 = &splits(&with32)[&0x3fff_0002];
        assert!(at32.bytes.iter().all(|&b| b == 1 << 6));
        assert!(at32.whole.iter().all(|&w| w));
        let mut with_short = marks.to_vec();
        with_short.push((0x2001_0db8u128 << 96, 31, None));
        assert!(splits(&with_short)[&0x2001_0db8].whole.iter().all(|&w| w));
    }

    #[test]
    fn shared_indexes_and_slots_and_covers_running_out_send_to_the_mask() {
        let n = DIR_ENTRIES as usize;
        // Two /32s of one index: the index is shared.
        let mut i = 1u32;
        while index_of(i) != index_of(0) {
            i += 1;
        }
        let marks: Vec<Mark> = [0, i]
            .iter()
            .chain(&[100, 200, 300, 400])
            .map(|&top| (u128::from(top) << 96 | 5 << 88 | 7 << 84, 44, Some(2)))
            .collect();
        let per32 = splits(&marks);
        let (es, ss, _) = layout(&per32, n, 1024, 1024);
        assert_eq!(es[index_of(0)], u64::from(DIR_SHARED));
        assert_eq!(ss.len(), 4);
        // Three slots and two covers: three kept, the first two with covers.
        let (es, ss, cs) = layout(&per32, n, 3, 2);
        assert_eq!((ss.len(), cs.len()), (3, 2));
        for (k, top) in [100u32, 200, 300].into_iter().enumerate() {
            assert_eq!(es[index_of(top)], dir_entry(top, k as u32));
            let cover = if k < 2 { (k as u32 + 1) << 8 } else { 0 };
            assert_eq!(ss[k][5], 1 << 2 | cover | DIR_LEVEL2);
        }
        assert_eq!(es[index_of(400)], u64::from(DIR_SHARED), "past the slots");
    }
}

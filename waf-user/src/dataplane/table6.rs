//! The IPv6 half of a CIDR set as the XDP program reads it: targets
//! planned from the lengths in use, entries expanded into the set's table
//! of 8-way buckets, and the target masks (`waf_common::prefix6`).
//!
//! The LPM trie keeps every entry (the caller writes it); this table is
//! what the program reads instead of walking it. Each expanded prefix is
//! a slot whose value is that of its *owner*, the longest entry covering it
//! among those expanded to the same target (its trie value, which for a
//! prefix ban carries the latest expiry of the bans covering it). An entry
//! that cannot be expanded within [`EXPAND_MAX`] prefixes, or that would
//! take the table past half its slots, stays in the trie only and marks
//! the masks under it with [`TRIE_BIT`]; a full bucket marks itself
//! overflowed. Either way the program asks the trie there, so the table
//! never answers wrong, only slower.
//!
//! Every write keeps the program's view safe: a slot is written before its
//! `used` bit and its mask bit are set, and cleared after they are; a
//! rebuild marks the plan [`PLAN_REBUILDING`] (the program asks the trie)
//! until the new table, masks and plan are all in place.

use std::{
    collections::{HashMap, HashSet},
    net::Ipv6Addr,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
};

use ipnet::Ipv6Net;
use waf_common::prefix6::{
    EXPAND_MAX, MASK_INDEXES, MIN_TARGET, PLAN_READY, PLAN_REBUILDING, PrefixBucketV6, SLOTS,
    TARGETS, TRIE_BIT, V6Plan, level_of, mask_bit, mask_index, mask_v6, prefix_bucket, prefix_fp,
    prefix_hash,
};

use super::{
    dir6::{Dir6, DirUsage},
    mmap::MmapArray,
};

/// What the table asks of its set: the slot value of an entry (its trie
/// value), or None when the prefix is not an entry.
pub type Values<'a> = &'a dyn Fn(Ipv6Net) -> Option<u64>;

/// The maps the three sets' tables share.
#[derive(Clone)]
pub struct Shared {
    /// The target masks, a byte per set.
    pub masks: Arc<MmapArray<u64>>,
    /// The plans, one per set.
    pub plans: Arc<MmapArray<V6Plan>>,
}

/// What a set's IPv6 table holds ([`Table6::usage`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The planned target lengths, ascending.
    pub targets: Vec<u8>,
    /// Slots in use.
    pub slots: u64,
    /// Entries kept in the trie only.
    pub trie_only: usize,
    /// Expanded prefixes whose bucket was full (the program asks the trie
    /// for them).
    pub overflowed: Vec<Ipv6Net>,
    /// The directory, for a set that keeps one (the source policies').
    pub dir: Option<DirUsage>,
}

/// One set's IPv6 table.
pub struct Table6 {
    set: u32,
    shared: Shared,
    pub(super) table: MmapArray<PrefixBucketV6>,
    /// Target lengths, ascending.
    targets: Vec<u8>,
    /// References on each mask bit (by its bit number in the mask array).
    refs: HashMap<u32, u32>,
    /// Entries kept in the trie only.
    pub(super) trie_only: HashSet<Ipv6Net>,
    /// Prefixes whose bucket was full (their mask bit is held all the
    /// same, so that the program reaches the bucket and its overflow flag).
    pub(super) overflowed: HashSet<(u128, u8)>,
    /// Slots in use.
    used: u64,
    /// The directory of the set's level-1 targets per /32, if it keeps one.
    pub(super) dir: Option<Dir6>,
}

/// The slots' budget: half the table (beyond it entries stay in the trie).
fn budget(buckets: usize) -> u64 {
    (buckets * SLOTS / 2) as u64
}

/// The prefix as two big-endian halves.
fn halves(net: Ipv6Net) -> (u64, u64) {
    let v = u128::from(net.network());
    ((v >> 64) as u64, v as u64)
}

/// The 16 bytes of a prefix given as two big-endian halves.
fn key_bytes(hi: u64, lo: u64) -> [u8; 16] {
    ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes()
}

/// Whether an entry of length `len` may be expanded to target `t` (into
/// at most [`EXPAND_MAX`] prefixes).
fn expandable(len: u8, t: u8) -> bool {
    u32::from(t - len) <= EXPAND_MAX.trailing_zeros()
}

/// The cost of a plan's choice for `count` entries of length `len` at
/// target `t`: the prefixes they expand into, or a penalty per entry that
/// would stay in the trie.
fn cost(count: u64, len: u8, t: u8) -> u64 {
    const TRIE_PENALTY: u64 = 1 << 20;
    if expandable(len, t) {
        count << (t - len)
    } else {
        count.saturating_mul(TRIE_PENALTY)
    }
}

/// The targets (at most [`TARGETS`], ascending) that expand entries of the
/// given lengths (`counts[len]` entries of each) into the fewest prefixes:
/// controlled prefix expansion, by dynamic programming over the lengths in
/// use.
pub fn plan(counts: &[u32; 129]) -> Vec<u8> {
    // Candidate targets: the lengths in use, shorter ones lifted to the
    // shortest target (an optimal target is always one of them).
    let mut cand: Vec<u8> = (0..=128u8)
        .filter(|&l| counts[usize::from(l)] > 0)
        .map(|l| l.max(MIN_TARGET))
        .collect();
    cand.dedup();
    if cand.is_empty() {
        return Vec::new();
    }
    let m = cand.len();
    // seg(i, j): cost of the lengths in (cand[i-1], cand[j]] at cand[j]
    // (i = 0: every length up to cand[j]).
    let seg = |i: usize, j: usize| -> u64 {
        let lo = if i == 0 { 0 } else { cand[i - 1] + 1 };
        (lo..=cand[j])
            .map(|l| cost(u64::from(counts[usize::from(l)]), l, cand[j]))
            .fold(0u64, u64::saturating_add)
    };
    // Lengths above cand[j] left in the trie.
    let tail = |j: usize| -> u64 {
        (cand[j] + 1..=128)
            .map(|l| cost(u64::from(counts[usize::from(l)]), 0, 128))
            .fold(0u64, u64::saturating_add)
    };
    const INF: u64 = u64::MAX;
    // best[k][j]: least cost with k+1 targets, the last at cand[j];
    // from[k][j]: the previous target's index.
    let mut best = vec![vec![INF; m]; TARGETS];
    let mut from = vec![vec![usize::MAX; m]; TARGETS];
    for (j, b) in best[0].iter_mut().enumerate() {
        *b = seg(0, j);
    }
    for k in 1..TARGETS {
        for j in k..m {
            for i in k - 1..j {
                if best[k - 1][i] == INF {
                    continue;
                }
                let c = best[k - 1][i].saturating_add(seg(i + 1, j));
                if c < best[k][j] {
                    best[k][j] = c;
                    from[k][j] = i;
                }
            }
        }
    }
    let mut pick = (INF, 0, 0);
    for (k, row) in best.iter().enumerate() {
        for (j, &c) in row.iter().enumerate() {
            if c == INF {
                continue;
            }
            let total = c.saturating_add(tail(j));
            if total < pick.0 {
                pick = (total, k, j);
            }
        }
    }
    let (_, mut k, mut j) = pick;
    let mut out = vec![cand[j]];
    while k > 0 {
        j = from[k][j];
        k -= 1;
        out.push(cand[j]);
    }
    out.reverse();
    out
}

/// The target of entries of length `len` under `targets`, if they can be
/// expanded to one within [`EXPAND_MAX`] prefixes.
pub fn target_of(targets: &[u8], len: u8) -> Option<u8> {
    let t = *targets.iter().find(|&&t| t >= len.max(MIN_TARGET))?;
    expandable(len, t).then_some(t)
}

/// The prefixes of length `t` that `net` expands into.
fn expansion(net: Ipv6Net, t: u8) -> impl Iterator<Item = Ipv6Net> {
    let base = u128::from(net.network());
    let n = 1u128 << (t - net.prefix_len());
    (0..n).map(move |i| {
        let shifted = if t == 0 { 0 } else { i << (128 - u32::from(t)) };
        Ipv6Net::new(Ipv6Addr::from(base | shifted), t).expect("length <= 128")
    })
}

impl Table6 {
    /// A table for set `set` (`filter::SET_*`), empty until
    /// [`Table6::rebuild`].
    pub fn new(set: u32, shared: Shared, table: MmapArray<PrefixBucketV6>) -> Self {
        Self {
            set,
            shared,
            table,
            targets: Vec::new(),
            refs: HashMap::new(),
            trie_only: HashSet::new(),
            overflowed: HashSet::new(),
            used: 0,
            dir: None,
        }
    }

    /// What the table holds.
    pub fn usage(&self) -> Usage {
        Usage {
            targets: self.targets.clone(),
            slots: self.used,
            trie_only: self.trie_only.len(),
            overflowed: self
                .overflowed
                .iter()
                .map(|&(a, t)| Ipv6Net::new(Ipv6Addr::from(a), t).expect("t <= 128"))
                .collect(),
            dir: self.dir.as_ref().map(Dir6::usage),
        }
    }

    /// The planned target lengths, ascending.
    pub fn targets(&self) -> &[u8] {
        &self.targets
    }

    pub(super) fn plan_ptr(&self) -> *mut V6Plan {
        self.shared.plans.ptr(self.set as usize)
    }

    fn set_mode(&self, mode: u32) {
        // SAFETY: a valid, 4-byte aligned field of the mapped plan.
        unsafe { AtomicU32::from_ptr(&raw mut (*self.plan_ptr()).mode) }
            .store(mode, Ordering::SeqCst);
    }

    fn mask_hold(&mut self, index: u32, bit: u32) {
        let b = mask_bit(index, self.set, bit);
        let r = self.refs.entry(b).or_insert(0);
        *r += 1;
        if *r == 1 {
            self.shared.masks.set_bit(0, b);
        }
    }

    fn mask_release(&mut self, index: u32, bit: u32) {
        let b = mask_bit(index, self.set, bit);
        if let Some(r) = self.refs.get_mut(&b) {
            *r -= 1;
            if *r == 0 {
                self.refs.remove(&b);
                self.shared.masks.clear_bit(0, b);
            }
        }
    }

    /// The mask indexes an entry kept in the trie only marks.
    fn trie_indexes(net: Ipv6Net) -> Vec<u32> {
        let (hi, _) = halves(net);
        let len = net.prefix_len();
        if len < MIN_TARGET {
            let first = (hi >> 48) as u32;
            (first..first + (1 << (MIN_TARGET - len))).collect()
        } else {
            vec![mask_index(level_of(u32::from(len)), hi)]
        }
    }

    /// The bucket a prefix of length `t` lives in, and its slot there.
    fn find(&self, hi: u64, lo: u64, t: u8) -> (usize, Option<usize>) {
        let mask = (self.table.len() - 1) as u32;
        let b = prefix_bucket(hi, lo, u32::from(t), mask) as usize;
        let p = self.table.ptr(b);
        let key = key_bytes(hi, lo);
        // SAFETY: a valid bucket of the mapping; only this writer changes it.
        let slot = unsafe {
            let used = (*p).used;
            (0..SLOTS).find(|&s| used & (1 << s) != 0 && (*p).lens[s] == t && (*p).keys[s] == key)
        };
        (b, slot)
    }

    /// The mask bit of target `t`: the longest target is bit 0.
    pub(super) fn target_bit(&self, t: u8) -> u32 {
        let pos = self.targets.iter().position(|&x| x == t);
        (self.targets.len() - 1 - pos.expect("a planned target")) as u32
    }

    /// Writes `value` for the prefix (hi, lo)/t; false when its bucket is
    /// full (then marked overflowed).
    fn write_slot(&mut self, hi: u64, lo: u64, t: u8, value: u64) -> bool {
        let (b, slot) = self.find(hi, lo, t);
        let bit = self.target_bit(t);
        let index = mask_index(level_of(u32::from(t)), hi);
        let p = self.table.ptr(b);
        // SAFETY: fields of a valid bucket; the program reads a slot only
        // once its used bit is set, which is set last.
        unsafe {
            if let Some(s) = slot {
                AtomicU64::from_ptr(&raw mut (*p).values[s]).store(value, Ordering::SeqCst);
                return true;
            }
            let used = AtomicU32::from_ptr(&raw mut (*p).used);
            let Some(s) = (0..SLOTS).find(|&s| used.load(Ordering::SeqCst) & (1 << s) == 0) else {
                AtomicU32::from_ptr(&raw mut (*p).overflow).store(1, Ordering::SeqCst);
                let k = (((u128::from(hi)) << 64) | u128::from(lo), t);
                if self.overflowed.insert(k) {
                    self.mask_hold(index, bit);
                }
                return false;
            };
            std::ptr::write_volatile(&raw mut (*p).keys[s], key_bytes(hi, lo));
            std::ptr::write_volatile(&raw mut (*p).lens[s], t);
            std::ptr::write_volatile(
                &raw mut (*p).fps[s],
                prefix_fp(prefix_hash(hi, lo, u32::from(t))),
            );
            AtomicU64::from_ptr(&raw mut (*p).values[s]).store(value, Ordering::SeqCst);
            used.fetch_or(1 << s, Ordering::SeqCst);
        }
        self.used += 1;
        self.mask_hold(index, bit);
        true
    }

    fn clear_slot(&mut self, hi: u64, lo: u64, t: u8) {
        let bit = self.target_bit(t);
        let index = mask_index(level_of(u32::from(t)), hi);
        let (b, slot) = self.find(hi, lo, t);
        let Some(s) = slot else {
            // Its bucket was full: the bucket stays marked (until a
            // rebuild), the mask bit goes with the prefix.
            if self
                .overflowed
                .remove(&((u128::from(hi) << 64) | u128::from(lo), t))
            {
                self.mask_release(index, bit);
            }
            return;
        };
        self.mask_release(index, bit);
        let p = self.table.ptr(b);
        // SAFETY: a valid bucket; the used bit goes first.
        unsafe { AtomicU32::from_ptr(&raw mut (*p).used) }.fetch_and(!(1 << s), Ordering::SeqCst);
        self.used -= 1;
    }

    /// The value of the longest entry in the table (not kept in the trie
    /// only: the table knows nothing of those but their mask bits) covering
    /// prefix `p` with a length in `range`.
    fn owner(
        &self,
        p: Ipv6Net,
        range: impl DoubleEndedIterator<Item = u8>,
        lens: &[u32; 129],
        values: Values,
    ) -> Option<u64> {
        range
            .rev()
            .filter(|&l| lens[usize::from(l)] > 0)
            .find_map(|l| {
                let n = Ipv6Net::new(p.network(), l).expect("l <= 128").trunc();
                if self.trie_only.contains(&n) {
                    return None;
                }
                values(n)
            })
    }

    /// Writes (or rewrites, `new` false) the slots `net` owns with
    /// `value`; `lens` and `values` describe the set with `net` in it.
    /// Returns false when `net` is kept in the trie only (marked): a plan
    /// with other targets might place it.
    pub fn place(
        &mut self,
        net: Ipv6Net,
        value: u64,
        new: bool,
        lens: &[u32; 129],
        values: Values,
    ) -> bool {
        self.dir_suspend();
        let placed = self.place_slots(net, value, new, lens, values);
        self.dir_rebuild();
        placed
    }

    /// [`Table6::place`] without the directory.
    fn place_slots(
        &mut self,
        net: Ipv6Net,
        value: u64,
        new: bool,
        lens: &[u32; 129],
        values: Values,
    ) -> bool {
        let len = net.prefix_len();
        if !new && self.trie_only.contains(&net) {
            return false;
        }
        let fits = target_of(&self.targets, len)
            .filter(|&t| !new || self.used + (1u64 << (t - len)) <= budget(self.table.len()));
        let Some(t) = fits else {
            if self.trie_only.insert(net) {
                for i in Self::trie_indexes(net) {
                    self.mask_hold(i, TRIE_BIT);
                }
            }
            return false;
        };
        for p in expansion(net, t) {
            if self.owner(p, len + 1..=t, lens, values).is_some() {
                continue;
            }
            let (hi, lo) = halves(p);
            self.write_slot(hi, lo, t, value);
        }
        true
    }

    /// Takes `net` out of the table; `lens` and `values` describe the set
    /// without it (the slots it owned pass to the next longest entry).
    pub fn unplace(&mut self, net: Ipv6Net, lens: &[u32; 129], values: Values) {
        self.dir_suspend();
        self.unplace_slots(net, lens, values);
        self.dir_rebuild();
    }

    /// [`Table6::unplace`] without the directory.
    fn unplace_slots(&mut self, net: Ipv6Net, lens: &[u32; 129], values: Values) {
        if self.trie_only.remove(&net) {
            for i in Self::trie_indexes(net) {
                self.mask_release(i, TRIE_BIT);
            }
            return;
        }
        let len = net.prefix_len();
        let Some(t) = target_of(&self.targets, len) else {
            return;
        };
        let first = self
            .targets
            .iter()
            .rev()
            .find(|&&x| x < t)
            .map_or(0, |x| x + 1);
        for p in expansion(net, t) {
            if self.owner(p, len + 1..=t, lens, values).is_some() {
                continue;
            }
            let (hi, lo) = halves(p);
            match self.owner(p, first..len, lens, values) {
                Some(v) => {
                    self.write_slot(hi, lo, t, v);
                }
                None => self.clear_slot(hi, lo, t),
            }
        }
    }

    /// Plans the targets for `entries` (the set's IPv6 entries with their
    /// slot values) and rewrites the table, the set's masks and its plan.
    /// The program asks the trie while this runs.
    pub fn rebuild(&mut self, entries: &[(Ipv6Net, u64)], lens: &[u32; 129], values: Values) {
        self.dir_suspend();
        self.set_mode(PLAN_REBUILDING);
        for b in 0..self.table.len() {
            let p = self.table.ptr(b);
            // SAFETY: a valid bucket; the program ignores the table now.
            unsafe {
                AtomicU32::from_ptr(&raw mut (*p).used).store(0, Ordering::SeqCst);
                AtomicU32::from_ptr(&raw mut (*p).overflow).store(0, Ordering::SeqCst);
            }
        }
        // The old mask bits stay until the new ones are all set: a byte of
        // zero sends the program nowhere near the plan, so clearing them
        // first would hide the set's entries for the length of the rebuild.
        self.refs.clear();
        self.trie_only.clear();
        self.overflowed.clear();
        self.used = 0;
        self.targets = plan(lens);
        // Longest first, as the mask bits.
        let mut lens8 = [0u8; 8];
        for (i, &t) in self.targets.iter().rev().enumerate() {
            lens8[i] = t;
        }
        // SAFETY: the plan's fields; mode is written last, below.
        unsafe {
            let p = self.plan_ptr();
            std::ptr::write_volatile(&raw mut (*p).lens, lens8);
            std::ptr::write_volatile(&raw mut (*p).bucket_mask, (self.table.len() - 1) as u32);
            std::ptr::write_volatile(&raw mut (*p).active, (1u32 << self.targets.len()) - 1);
            let (mut mhi, mut mlo) = ([0u64; 8], [0u64; 8]);
            for (i, &t) in self.targets.iter().rev().enumerate() {
                (mhi[i], mlo[i]) = mask_v6(u64::MAX, u64::MAX, u32::from(t));
            }
            std::ptr::write_volatile(&raw mut (*p).mask_hi, mhi);
            std::ptr::write_volatile(&raw mut (*p).mask_lo, mlo);
        }
        // Longest first: whether a longer entry is in the table is known
        // before the shorter ones around it leave it the slots it owns.
        let mut sorted: Vec<&(Ipv6Net, u64)> = entries.iter().collect();
        sorted.sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        for (net, value) in sorted {
            self.place_slots(*net, *value, true, lens, values);
        }
        // Now the masks exactly as the new table needs them.
        let mut want = vec![0u64; (MASK_INDEXES / 2) as usize];
        for &b in self.refs.keys() {
            want[(b >> 6) as usize] |= 1 << (b & 63);
        }
        let mine: u64 = (0xff << (self.set * 8)) | (0xff << (32 + self.set * 8));
        for (w, v) in want.iter().enumerate() {
            if self.shared.masks.load(w) & mine != *v {
                self.shared.masks.replace_bits(w, mine, *v);
            }
        }
        self.set_mode(PLAN_READY);
        self.dir_rebuild();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counts(pairs: &[(u8, u32)]) -> [u32; 129] {
        let mut c = [0; 129];
        for (l, n) in pairs {
            c[usize::from(*l)] += n;
        }
        c
    }

    fn total(c: &[u32; 129], targets: &[u8]) -> u64 {
        (0..=128u8)
            .filter(|l| c[usize::from(*l)] > 0)
            .map(|l| {
                let n = u64::from(c[usize::from(l)]);
                match targets.iter().find(|&&t| t >= l.max(MIN_TARGET)) {
                    Some(&t) => cost(n, l, t),
                    None => cost(n, 0, 128),
                }
            })
            .sum()
    }

    #[test]
    fn few_lengths_are_their_own_targets() {
        assert_eq!(
            plan(&counts(&[(48, 10), (64, 5), (128, 1)])),
            vec![48, 64, 128]
        );
        assert_eq!(plan(&counts(&[])), Vec::<u8>::new());
        assert_eq!(plan(&counts(&[(5, 1), (20, 1)])), vec![16, 20]);
        assert_eq!(
            plan(&counts(&[(3, 1), (20, 1)])),
            vec![20],
            "a /3 stays in the trie"
        );
    }

    #[test]
    fn many_lengths_are_expanded_into_seven_targets() {
        let c = counts(&(48..=64).map(|l| (l, 100)).collect::<Vec<_>>());
        let t = plan(&c);
        assert_eq!(t.len(), TARGETS);
        assert_eq!(*t.last().unwrap(), 64);
        for l in 48..=64u8 {
            let to = target_of(&t, l).expect("placed");
            assert!(to - l <= 2, "{l} -> {to} in {t:?}");
        }
    }

    #[test]
    fn an_entry_too_short_to_expand_stays_in_the_trie() {
        assert_eq!(target_of(&[16, 64], 0), None, "2^16 prefixes");
        assert_eq!(target_of(&[16, 64], 4), Some(16), "4,096 prefixes");
        assert_eq!(target_of(&[16, 64], 40), None, "2^24 prefixes at /64");
        assert_eq!(target_of(&[16, 64], 65), None, "longer than every target");
        let n: Ipv6Net = "2001:db8::/30".parse().unwrap();
        let e: Vec<_> = expansion(n, 32).collect();
        assert_eq!(e.len(), 4);
        assert!(e.iter().all(|p| n.contains(p) && p.prefix_len() == 32));
        assert_eq!(e[3], "2001:dbb::/32".parse::<Ipv6Net>().unwrap());
    }

    proptest! {
        /// The plan is ascending, within TARGETS, and no other choice of
        /// targets among the candidates expands into fewer prefixes (brute
        /// force over every subset of at most three targets of at most
        /// eight lengths).
        #[test]
        fn plans_are_optimal(pairs in proptest::collection::vec((0u8..=128, 1u32..1000), 0..8)) {
            let c = counts(&pairs);
            let t = plan(&c);
            prop_assert!(t.len() <= TARGETS);
            prop_assert!(t.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(t.iter().all(|&x| x >= MIN_TARGET));
            let mut cand: Vec<u8> = (0..=128u8).filter(|l| c[usize::from(*l)] > 0).map(|l| l.max(MIN_TARGET)).collect();
            cand.dedup();
            let got = total(&c, &t);
            for mask in 0u32..(1 << cand.len()) {
                let pick: Vec<u8> = cand.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, &x)| x).collect();
                if pick.len() <= TARGETS {
                    prop_assert!(got <= total(&c, &pick), "{t:?} costs {got}, {pick:?} less");
                }
            }
        }
    }
}

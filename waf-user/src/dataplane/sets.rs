//! CIDR sets in the kernel: the allowlist, the blocklist and the prefix bans.
//!
//! Each set is an IPv4 and an IPv6 LPM trie holding every entry (the source
//! of truth, and what the XDP program walks when it must), plus for IPv4 the
//! bitmaps of `waf_common::filter` that let it skip the walk in the common
//! case, and for IPv6 a table of expanded prefixes it reads instead
//! ([`Table6`], `waf_common::prefix6`). This module keeps the bitmaps
//! exact: a reference count per bit, set before an entry enters the trie
//! and cleared after it leaves, so the kernel never misses an entry. The
//! IPv4 /16 flag array is shared by the three sets, each owning one nibble
//! of every /16; a set only ever writes its own bits.
//!
//! An LPM lookup answers with the longest entry alone, so the value a trie
//! holds for an entry is its [`TrieValue`] under the entries covering it
//! (for prefix bans, the latest expiry among them: an expired /24 must not
//! hide a permanent /12 around it). The set keeps those values as entries
//! come and go; callers read back the values they wrote.

use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use aya::maps::{
    MapData,
    lpm_trie::{Key, LpmTrie},
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use waf_common::filter;

use super::{
    DataplaneError, deep24::Deep24, is_not_found, mmap::MmapArray, table6::Table6,
    trie_value::TrieValue, write_err,
};

/// The bitmaps a bit can live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Bitmap {
    Full16,
    Mid16,
    Deep16,
    Full24,
}

/// What the kernel decides from the bitmaps of a set.
pub enum Kind {
    /// Membership (allowlist, blocklist): full /16 and /24 bits answer
    /// directly; only IPv4 entries longer than /24 need the trie.
    Membership {
        /// The /24 bitmap.
        f24: MmapArray<u64>,
        /// The deep /24 table, if the set keeps one (then the trie is only
        /// walked for addresses that an entry longer than /24 covers).
        deep: Option<Box<Deep24>>,
    },
    /// Prefilter only (prefix bans: the trie's value carries the expiry).
    Prefilter,
}

/// What [`CidrSet::replace`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replaced {
    /// Entries written (new or changed).
    pub written: usize,
    /// Entries removed.
    pub removed: usize,
    /// The stale entries left before the new ones came (the tries could
    /// not hold both).
    pub gap: bool,
}

/// One CIDR set: tries, bitmaps, and a mirror of the entries.
pub struct CidrSet<V: TrieValue> {
    /// The trie of each family (IPv4, IPv6): names and sizes.
    names: [&'static str; 2],
    capacity: [u32; 2],
    v4: LpmTrie<MapData, u32, V>,
    v6: LpmTrie<MapData, [u8; 16], V>,
    /// The shared /16 flag array and this set's nibble in it.
    f16: Arc<MmapArray<u64>>,
    slot: u32,
    t6: Table6,
    kind: Kind,
    refs: HashMap<(Bitmap, u32), u32>,
    /// Each entry's own value (what the caller wrote).
    entries: BTreeMap<IpNet, V>,
    /// Entries by family (0: IPv4, 1: IPv6) and prefix length, so the walk
    /// over the entries covering a prefix asks only the lengths in use.
    lens: [[u32; 129]; 2],
    /// Inside [`CidrSet::replace`]: the IPv6 table is rebuilt once at the
    /// end instead of placed entry by entry.
    bulk: bool,
}

/// The index of `net`'s family in [`CidrSet::lens`].
fn family(net: &IpNet) -> usize {
    usize::from(matches!(net, IpNet::V6(_)))
}

fn key_v4(net: Ipv4Net) -> Key<u32> {
    Key::new(
        net.prefix_len() as u32,
        u32::from_ne_bytes(net.network().octets()),
    )
}

fn key_v6(net: Ipv6Net) -> Key<[u8; 16]> {
    Key::new(net.prefix_len() as u32, net.network().octets())
}

/// The bits `net` needs, as (bitmap, first bit, count).
fn bits_of(net: IpNet, membership: bool) -> Vec<(Bitmap, u32, u32)> {
    match net {
        IpNet::V4(n) => {
            let host = u32::from(n.network());
            let p = n.prefix_len() as u32;
            if p <= 16 {
                vec![(Bitmap::Full16, host >> 16, 1 << (16 - p))]
            } else if p <= 24 && membership {
                vec![
                    (Bitmap::Mid16, host >> 16, 1),
                    (Bitmap::Full24, host >> 8, 1 << (24 - p)),
                ]
            } else {
                vec![(Bitmap::Deep16, host >> 16, 1)]
            }
        }
        IpNet::V6(_) => Vec::new(),
    }
}

/// The trie value of `net` holding `own`: `own` under the entries of
/// `entries` covering it, the shortest first (`lens`: entries per family
/// and length).
fn trie_value<V: TrieValue>(
    entries: &BTreeMap<IpNet, V>,
    lens: &[[u32; 129]; 2],
    net: IpNet,
    own: V,
) -> V {
    if !V::INHERITS {
        return own;
    }
    let mut outer: Option<V> = None;
    let lens = &lens[family(&net)];
    for len in 0..net.prefix_len() {
        if lens[usize::from(len)] == 0 {
            continue;
        }
        let Ok(cover) = IpNet::new(net.addr(), len) else {
            continue;
        };
        if let Some(v) = entries.get(&cover.trunc()) {
            outer = Some(match outer {
                None => *v,
                Some(o) => v.under(&o),
            });
        }
    }
    match outer {
        None => own,
        Some(o) => own.under(&o),
    }
}

/// The slot value of IPv6 entry `n` in the table, if it is an entry.
fn slot_of<V: TrieValue>(
    entries: &BTreeMap<IpNet, V>,
    lens: &[[u32; 129]; 2],
    n: Ipv6Net,
) -> Option<u64> {
    let net = IpNet::V6(n);
    let own = entries.get(&net)?;
    Some(trie_value(entries, lens, net, *own).slot())
}

impl<V: TrieValue> CidrSet<V> {
    /// Wraps the maps of one set and makes its bitmaps agree with its tries
    /// (fresh maps: all empty; adopted maps: rebuilt from the tries).
    pub(super) fn new(
        names: [&'static str; 2],
        capacity: [u32; 2],
        v4: LpmTrie<MapData, u32, V>,
        v6: LpmTrie<MapData, [u8; 16], V>,
        (f16, slot): (Arc<MmapArray<u64>>, u32),
        t6: Table6,
        kind: Kind,
    ) -> Result<Self, DataplaneError> {
        let mut set = Self {
            names,
            capacity,
            v4,
            v6,
            f16,
            slot,
            t6,
            kind,
            refs: HashMap::new(),
            entries: BTreeMap::new(),
            lens: [[0; 129]; 2],
            bulk: false,
        };
        set.rebuild()?;
        Ok(set)
    }

    fn membership(&self) -> bool {
        matches!(self.kind, Kind::Membership { .. })
    }

    fn bits(&self, net: IpNet) -> Vec<(Bitmap, u32, u32)> {
        bits_of(net, self.membership())
    }

    /// Rewrites the deep /24 table from the entries, if the set keeps one
    /// (the program asks the trie while it runs).
    fn rebuild_deep(&self) {
        if let Kind::Membership {
            deep: Some(deep),
            f24,
        } = &self.kind
        {
            deep.rebuild(self.entries.iter().map(|(n, v)| (n, v.slot())), f24);
        }
    }

    /// The array a bit lives in, and its bit index there.
    fn place(&self, b: Bitmap, bit: u32) -> (&MmapArray<u64>, u32) {
        let nibble = bit * filter::F16_BITS_PER + self.slot * filter::SET_BITS;
        match (b, &self.kind) {
            (Bitmap::Full16, _) => (&self.f16, nibble),
            (Bitmap::Mid16, _) => (&self.f16, nibble + 1),
            (Bitmap::Deep16, _) => (&self.f16, nibble + 2),
            (Bitmap::Full24, Kind::Membership { f24, .. }) => (f24, bit),
            (Bitmap::Full24, Kind::Prefilter) => unreachable!("prefilter sets have no /24 bitmap"),
        }
    }

    fn hold(&mut self, net: IpNet) {
        for (b, first, n) in self.bits(net) {
            for bit in first..first + n {
                let r = self.refs.entry((b, bit)).or_insert(0);
                *r += 1;
                if *r == 1 {
                    let (w, at) = self.place(b, bit);
                    w.set_bit(0, at);
                }
            }
        }
    }

    fn release(&mut self, net: IpNet) {
        for (b, first, n) in self.bits(net) {
            for bit in first..first + n {
                let gone = match self.refs.get_mut(&(b, bit)) {
                    Some(r) => {
                        *r -= 1;
                        *r == 0
                    }
                    None => false,
                };
                if gone {
                    self.refs.remove(&(b, bit));
                    let (w, at) = self.place(b, bit);
                    w.clear_bit(0, at);
                }
            }
        }
    }

    /// Reads the tries and rewrites every bitmap word to what they need.
    fn rebuild(&mut self) -> Result<(), DataplaneError> {
        self.entries = self.read_tries()?.into_iter().collect();
        self.lens = [[0; 129]; 2];
        for net in self.entries.keys() {
            self.lens[family(net)][usize::from(net.prefix_len())] += 1;
        }
        self.refs.clear();
        let membership = self.membership();
        let mut want16 = vec![0u64; filter::F16_WORDS as usize];
        let mut want24 = vec![
            0u64;
            if membership {
                filter::F24_WORDS as usize
            } else {
                0
            }
        ];
        let nets: Vec<IpNet> = self.entries.keys().copied().collect();
        for net in nets {
            for (b, first, n) in self.bits(net) {
                for bit in first..first + n {
                    *self.refs.entry((b, bit)).or_insert(0) += 1;
                    let (_, at) = self.place(b, bit);
                    let want = match b {
                        Bitmap::Full24 => &mut want24,
                        _ => &mut want16,
                    };
                    want[(at >> 6) as usize] |= 1 << (at & 63);
                }
            }
        }
        // Only this set's nibbles of the shared /16 array are its own.
        let mine = 0x000f_000f_000f_000f_u64 << (self.slot * filter::SET_BITS);
        for (i, v) in want16.iter().enumerate() {
            if self.f16.load(i) & mine != *v {
                self.f16.replace_bits(i, mine, *v);
            }
        }
        if let Kind::Membership { f24, .. } = &self.kind {
            f24.store_all(&want24);
        }
        self.rebuild_deep();
        self.rebuild_v6();
        Ok(())
    }

    /// Re-plans the IPv6 table and rewrites it from the entries.
    fn rebuild_v6(&mut self) {
        let Self {
            entries, lens, t6, ..
        } = self;
        let v6: Vec<(Ipv6Net, u64)> = entries
            .keys()
            .filter_map(|n| match n {
                IpNet::V6(n) => Some((*n, slot_of(entries, lens, *n)?)),
                IpNet::V4(_) => None,
            })
            .collect();
        t6.rebuild(&v6, &lens[1], &|n| slot_of(entries, lens, n));
    }

    /// Writes (or rewrites) IPv6 entry `n` into the table; a new entry the
    /// plan cannot place re-plans the table when that places it better.
    fn place_v6(&mut self, n: Ipv6Net, new: bool) {
        if self.bulk {
            return;
        }
        let Self {
            entries, lens, t6, ..
        } = self;
        let Some(value) = slot_of(entries, lens, n) else {
            return;
        };
        if !t6.place(n, value, new, &lens[1], &|p| slot_of(entries, lens, p))
            && new
            && super::table6::plan(&lens[1]) != t6.targets()
        {
            self.rebuild_v6();
        }
    }

    fn read_tries(&self) -> Result<Vec<(IpNet, V)>, DataplaneError> {
        let err = |i: usize| {
            move |e| DataplaneError::Map {
                name: self.names[i],
                source: e,
            }
        };
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item.map_err(err(0))?;
            let addr = Ipv4Addr::from(k.data().to_ne_bytes());
            if let Ok(n) = Ipv4Net::new(addr, k.prefix_len() as u8) {
                out.push((IpNet::V4(n), v));
            }
        }
        for item in self.v6.iter() {
            let (k, v) = item.map_err(err(1))?;
            if let Ok(n) = Ipv6Net::new(Ipv6Addr::from(k.data()), k.prefix_len() as u8) {
                out.push((IpNet::V6(n), v));
            }
        }
        Ok(out)
    }

    /// Writes `value` for `net` (host bits are cleared).
    pub fn insert(&mut self, net: IpNet, value: V) -> Result<(), DataplaneError> {
        let net = net.trunc();
        let new = !self.entries.contains_key(&net);
        if new {
            self.hold(net);
        }
        if let Err(e) = self.write_trie(net, self.trie_value(net, value)) {
            if new {
                self.release(net);
            }
            return Err(e);
        }
        if self.entries.insert(net, value).is_none() {
            self.lens[family(&net)][usize::from(net.prefix_len())] += 1;
        }
        if let IpNet::V6(n) = net {
            self.place_v6(n, new);
        }
        if matches!(net, IpNet::V4(_)) && !self.bulk {
            self.rebuild_deep();
        }
        self.refresh_inside(net)
    }

    fn write_trie(&mut self, net: IpNet, value: V) -> Result<(), DataplaneError> {
        let r = match net {
            IpNet::V4(n) => self.v4.insert(&key_v4(n), value, 0),
            IpNet::V6(n) => self.v6.insert(&key_v6(n), value, 0),
        };
        let f = family(&net);
        r.map_err(|e| write_err(self.names[f], self.capacity[f], e))
    }

    fn trie_value(&self, net: IpNet, own: V) -> V {
        trie_value(&self.entries, &self.lens, net, own)
    }

    /// Rewrites the trie values of the entries strictly inside `net`
    /// (after `net` came, changed or went). Nested prefix bans are few;
    /// each costs one update.
    fn refresh_inside(&mut self, net: IpNet) -> Result<(), DataplaneError> {
        if !V::INHERITS || net.prefix_len() == net.max_prefix_len() {
            return Ok(());
        }
        let (first, last) = match net {
            IpNet::V4(n) => (
                IpNet::V4(Ipv4Net::new(n.network(), 0).expect("prefix 0")),
                IpNet::V4(Ipv4Net::new(n.broadcast(), 32).expect("prefix 32")),
            ),
            IpNet::V6(n) => (
                IpNet::V6(Ipv6Net::new(n.network(), 0).expect("prefix 0")),
                IpNet::V6(Ipv6Net::new(n.broadcast(), 128).expect("prefix 128")),
            ),
        };
        let inside: Vec<(IpNet, V)> = self
            .entries
            .range(first..=last)
            .filter(|(n, _)| **n != net && net.contains(*n))
            .map(|(n, v)| (*n, *v))
            .collect();
        for (n, own) in inside {
            self.write_trie(n, self.trie_value(n, own))?;
            if let IpNet::V6(n) = n {
                self.place_v6(n, false);
            }
        }
        Ok(())
    }

    /// Removes `net`; false when it was not there.
    pub fn remove(&mut self, net: IpNet) -> Result<bool, DataplaneError> {
        let net = net.trunc();
        let r = match net {
            IpNet::V4(n) => self.v4.remove(&key_v4(n)),
            IpNet::V6(n) => self.v6.remove(&key_v6(n)),
        };
        let existed = match r {
            Ok(()) => true,
            Err(e) if is_not_found(&e) => false,
            Err(e) => {
                return Err(DataplaneError::Map {
                    name: self.names[family(&net)],
                    source: e,
                });
            }
        };
        if self.entries.remove(&net).is_some() {
            self.lens[family(&net)][usize::from(net.prefix_len())] -= 1;
            self.release(net);
            if let IpNet::V6(n) = net
                && !self.bulk
            {
                let Self {
                    entries, lens, t6, ..
                } = self;
                t6.unplace(n, &lens[1], &|p| slot_of(entries, lens, p));
            }
            if matches!(net, IpNet::V4(_)) && !self.bulk {
                self.rebuild_deep();
            }
        }
        self.refresh_inside(net)?;
        Ok(existed)
    }

    /// The value stored for exactly `net`.
    pub fn get_exact(&self, net: IpNet) -> Option<V> {
        self.entries.get(&net.trunc()).copied()
    }

    /// The longest entry that contains `addr`, with its value.
    pub fn lookup(&self, addr: IpAddr) -> Option<(IpNet, V)> {
        let host = IpNet::from(addr);
        let (net, v) = self
            .entries
            .iter()
            .filter(|(n, _)| n.contains(&host))
            .max_by_key(|(n, _)| n.prefix_len())?;
        Some((*net, *v))
    }

    /// Every entry, IPv4 first, in address order.
    pub fn entries(&self) -> Vec<(IpNet, V)> {
        self.entries.iter().map(|(n, v)| (*n, *v)).collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries each family's trie can hold: IPv4, IPv6.
    pub fn capacity(&self) -> (u32, u32) {
        (self.capacity[0], self.capacity[1])
    }

    /// What the IPv6 table holds.
    pub fn v6_table(&self) -> super::table6::Usage {
        self.t6.usage()
    }

    /// Makes the set hold exactly `want` (later duplicates win), writing
    /// only what differs: the new and changed entries go in before the
    /// stale ones leave, so at every moment an address has its old value
    /// or its new one, never neither; only when the tries cannot hold both
    /// at once do the stale entries leave first ([`Replaced::gap`]).
    /// Refused, with nothing changed, when `want` alone does not fit.
    pub fn replace(&mut self, want: &[(IpNet, V)]) -> Result<Replaced, DataplaneError> {
        let want: BTreeMap<IpNet, V> = want.iter().map(|(n, v)| (n.trunc(), *v)).collect();
        let count = |it: &mut dyn Iterator<Item = &IpNet>| {
            it.fold([0usize; 2], |mut c, n| {
                c[family(n)] += 1;
                c
            })
        };
        let new = count(&mut want.keys());
        for ((n, name), cap) in new.iter().zip(self.names).zip(self.capacity) {
            if *n > cap as usize {
                return Err(DataplaneError::Invalid(format!(
                    "{n} entries for {name}, which holds {cap}"
                )));
            }
        }
        let stale: Vec<IpNet> = self
            .entries
            .keys()
            .filter(|n| !want.contains_key(n))
            .copied()
            .collect();
        let added = count(&mut want.keys().filter(|n| !self.entries.contains_key(n)));
        let old = count(&mut self.entries.keys());
        let gap = (0..2).any(|f| old[f] + added[f] > self.capacity[f] as usize);
        // The families with something to write or remove: only their
        // tables are rebuilt (a reload that changes nothing costs none).
        let mut changed = [false; 2];
        for n in want
            .iter()
            .filter(|(n, v)| self.entries.get(n) != Some(v))
            .map(|(n, _)| n)
            .chain(&stale)
        {
            changed[family(n)] = true;
        }
        // The IPv6 table is rebuilt once at the end (placing entries one by
        // one re-plans it as the lengths in use change): meanwhile it
        // answers with the old entries, the tries with old and new, and
        // while it is rebuilt the program asks the tries.
        self.bulk = true;
        let r = self.replace_entries(&want, &stale, gap);
        self.bulk = false;
        if changed[1] {
            self.rebuild_v6();
        }
        if changed[0] {
            self.rebuild_deep();
        }
        let written = r?;
        Ok(Replaced {
            written,
            removed: stale.len(),
            gap,
        })
    }

    /// [`CidrSet::replace`]'s writes: the entries that differ, and the
    /// stale ones out (first when `gap`); the number written.
    fn replace_entries(
        &mut self,
        want: &BTreeMap<IpNet, V>,
        stale: &[IpNet],
        gap: bool,
    ) -> Result<usize, DataplaneError> {
        if gap {
            for n in stale {
                self.remove(*n)?;
            }
        }
        let mut written = 0;
        for (n, v) in want {
            if self.entries.get(n) != Some(v) {
                self.insert(*n, *v)?;
                written += 1;
            }
        }
        if !gap {
            for n in stale {
                self.remove(*n)?;
            }
        }
        Ok(written)
    }

    /// Rereads the tries (another writer changed them) and rebuilds the
    /// bitmaps.
    pub fn resync(&mut self) -> Result<(), DataplaneError> {
        self.rebuild()
    }
}

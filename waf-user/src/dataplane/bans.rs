//! Exact-address bans in the kernel: 8-way bucket arrays written through
//! mmap, with an overflow hash for buckets that are full.
//!
//! Writing a ban is a handful of stores: key, expiry and reason into a free
//! slot, then the slot's bit in `used` (an atomic OR, so the XDP program
//! never sees a used slot with a half-written key). Lifting one clears the
//! bit first. When a bucket is full the ban goes to the overflow hash and the
//! ban's fingerprint bit in the bucket's `overflow` word tells the XDP
//! program to look there (other sources of the bucket mostly need not); when a slot
//! frees up, an overflow ban of that bucket moves into it.

use std::{
    collections::HashMap as StdHashMap,
    hash::Hash,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};

use aya::maps::{HashMap, MapData};
use waf_common::{
    BAN_SLOTS, BanBucketV4, BanBucketV6, BanEntry, ban_bucket_v4, ban_bucket_v6, ban_fp_v4,
    ban_fp_v6, map_names,
};

use super::{DataplaneError, is_not_found, mmap::MmapArray, write_err};

/// How one family's bucket type is laid out.
pub trait BucketLayout {
    /// The address as the maps key it.
    type Key: Copy + Eq + Hash + aya::Pod;
    /// The bucket struct.
    type Bucket;
    /// Name of the bucket array (for errors).
    const NAME: &'static str;
    /// Name of the overflow hash (for errors).
    const OVERFLOW: &'static str;
    /// The bucket of `k` among `2^bits`.
    fn bucket_of(k: &Self::Key, bits: u32) -> u32;
    /// The fingerprint bit of `k` in its bucket's `overflow` word.
    fn fp(k: &Self::Key) -> u32;
    /// # Safety
    /// `b` points into the mapped bucket array.
    unsafe fn used<'a>(b: *mut Self::Bucket) -> &'a AtomicU32;
    /// # Safety
    /// As for `used`.
    unsafe fn overflow<'a>(b: *mut Self::Bucket) -> &'a AtomicU32;
    /// # Safety
    /// As for `used`; `i < BAN_SLOTS`.
    unsafe fn expires<'a>(b: *mut Self::Bucket, i: usize) -> &'a AtomicU64;
    /// # Safety
    /// As for `expires`.
    unsafe fn key(b: *mut Self::Bucket, i: usize) -> *mut Self::Key;
    /// # Safety
    /// As for `expires`.
    unsafe fn reason(b: *mut Self::Bucket, i: usize) -> *mut u8;
}

/// An IPv6 key as two big-endian halves.
fn halves(k: &[u8; 16]) -> (u64, u64) {
    let v = u128::from_be_bytes(*k);
    ((v >> 64) as u64, v as u64)
}

/// IPv4 buckets.
pub struct V4Layout;
/// IPv6 buckets.
pub struct V6Layout;

impl BucketLayout for V4Layout {
    type Key = u32;
    type Bucket = BanBucketV4;
    const NAME: &'static str = map_names::BANS_V4;
    const OVERFLOW: &'static str = map_names::BANX_V4;
    fn bucket_of(k: &u32, bits: u32) -> u32 {
        ban_bucket_v4(*k, bits)
    }
    fn fp(k: &u32) -> u32 {
        ban_fp_v4(*k)
    }
    unsafe fn used<'a>(b: *mut BanBucketV4) -> &'a AtomicU32 {
        // SAFETY: caller guarantees b is valid; the field is 4-byte aligned.
        unsafe { AtomicU32::from_ptr(&raw mut (*b).used) }
    }
    unsafe fn overflow<'a>(b: *mut BanBucketV4) -> &'a AtomicU32 {
        // SAFETY: as above.
        unsafe { AtomicU32::from_ptr(&raw mut (*b).overflow) }
    }
    unsafe fn expires<'a>(b: *mut BanBucketV4, i: usize) -> &'a AtomicU64 {
        // SAFETY: as above; 8-byte aligned field.
        unsafe { AtomicU64::from_ptr(&raw mut (*b).expires[i]) }
    }
    unsafe fn key(b: *mut BanBucketV4, i: usize) -> *mut u32 {
        // SAFETY: as above.
        unsafe { &raw mut (*b).keys[i] }
    }
    unsafe fn reason(b: *mut BanBucketV4, i: usize) -> *mut u8 {
        // SAFETY: as above.
        unsafe { &raw mut (*b).reasons[i] }
    }
}

impl BucketLayout for V6Layout {
    type Key = [u8; 16];
    type Bucket = BanBucketV6;
    const NAME: &'static str = map_names::BANS_V6;
    const OVERFLOW: &'static str = map_names::BANX_V6;
    fn bucket_of(k: &[u8; 16], bits: u32) -> u32 {
        let (hi, lo) = halves(k);
        ban_bucket_v6(hi, lo, bits)
    }
    fn fp(k: &[u8; 16]) -> u32 {
        let (hi, lo) = halves(k);
        ban_fp_v6(hi, lo)
    }
    unsafe fn used<'a>(b: *mut BanBucketV6) -> &'a AtomicU32 {
        // SAFETY: caller guarantees b is valid; the field is 4-byte aligned.
        unsafe { AtomicU32::from_ptr(&raw mut (*b).used) }
    }
    unsafe fn overflow<'a>(b: *mut BanBucketV6) -> &'a AtomicU32 {
        // SAFETY: as above.
        unsafe { AtomicU32::from_ptr(&raw mut (*b).overflow) }
    }
    unsafe fn expires<'a>(b: *mut BanBucketV6, i: usize) -> &'a AtomicU64 {
        // SAFETY: as above; 8-byte aligned field.
        unsafe { AtomicU64::from_ptr(&raw mut (*b).expires[i]) }
    }
    unsafe fn key(b: *mut BanBucketV6, i: usize) -> *mut [u8; 16] {
        // SAFETY: as above.
        unsafe { &raw mut (*b).keys[i] }
    }
    unsafe fn reason(b: *mut BanBucketV6, i: usize) -> *mut u8 {
        // SAFETY: as above.
        unsafe { &raw mut (*b).reasons[i] }
    }
}

/// One family's bans. Userspace keeps no index of its own (a million bans
/// would cost tens of megabytes): a key's slot is found by reading its
/// bucket's eight slots through the mapping, and only the bans that
/// overflowed into the hash are listed, per bucket.
pub struct BanTable<L: BucketLayout> {
    buckets: MmapArray<L::Bucket>,
    /// log2 of the buckets.
    bits: u32,
    overflow: HashMap<MapData, L::Key, BanEntry>,
    /// Entries the overflow hash holds (`[capacity] bans`).
    overflow_capacity: u32,
    /// Overflow bans per bucket.
    spilled: StdHashMap<u32, Vec<L::Key>>,
    /// Bans held (slots and overflow).
    count: usize,
}

impl<L: BucketLayout> BanTable<L> {
    /// Wraps the maps and reads what they hold (adopted pins keep their bans).
    pub(super) fn new(
        buckets: MmapArray<L::Bucket>,
        overflow: HashMap<MapData, L::Key, BanEntry>,
    ) -> Result<Self, DataplaneError> {
        let len = buckets.len() as u32;
        if !len.is_power_of_two() {
            return Err(DataplaneError::Invalid(format!(
                "map {}: {len} buckets, not a power of two",
                L::NAME
            )));
        }
        use aya::maps::IterableMap as _;
        let overflow_capacity = overflow
            .map()
            .info()
            .map_err(|source| DataplaneError::Map {
                name: L::OVERFLOW,
                source,
            })?
            .max_entries();
        let mut t = Self {
            buckets,
            bits: len.trailing_zeros(),
            overflow,
            overflow_capacity,
            spilled: StdHashMap::new(),
            count: 0,
        };
        t.rebuild()?;
        Ok(t)
    }

    fn bucket(&self, b: u32) -> *mut L::Bucket {
        self.buckets.ptr(b as usize)
    }

    fn used(&self, b: u32) -> u32 {
        // SAFETY: b < the buckets: in the mapping.
        unsafe { L::used(self.bucket(b)) }.load(Ordering::SeqCst)
    }

    /// The slot of `k` in its bucket, if it has one.
    fn slot_of(&self, b: u32, k: &L::Key) -> Option<usize> {
        let used = self.used(b);
        let p = self.bucket(b);
        (0..BAN_SLOTS).find(|&i| {
            // SAFETY: in the mapping, i < BAN_SLOTS.
            used & (1 << i) != 0 && unsafe { std::ptr::read_volatile(L::key(p, i)) } == *k
        })
    }

    fn is_spilled(&self, b: u32, k: &L::Key) -> bool {
        self.spilled.get(&b).is_some_and(|v| v.contains(k))
    }

    fn rebuild(&mut self) -> Result<(), DataplaneError> {
        self.spilled.clear();
        self.count = (0..self.buckets.len() as u32)
            .map(|b| self.used(b).count_ones() as usize)
            .sum();
        let mut spilled = Vec::new();
        for item in self.overflow.keys() {
            let k = item.map_err(|source| DataplaneError::Map {
                name: L::OVERFLOW,
                source,
            })?;
            spilled.push(k);
        }
        self.count += spilled.len();
        for k in spilled {
            self.spilled
                .entry(L::bucket_of(&k, self.bits))
                .or_default()
                .push(k);
        }
        // Fingerprints must agree with what overflowed.
        for b in 0..self.buckets.len() as u32 {
            self.store_fps(b);
        }
        Ok(())
    }

    /// The fingerprint bits of the bans of bucket `b` in the hash.
    fn fps(&self, b: u32) -> u32 {
        self.spilled
            .get(&b)
            .map_or(0, |v| v.iter().fold(0, |m, k| m | L::fp(k)))
    }

    /// Makes bucket `b`'s overflow word the fingerprints of the bans it
    /// has in the hash (after some left or failed to get there).
    fn store_fps(&self, b: u32) {
        // SAFETY: in the mapping.
        unsafe { L::overflow(self.bucket(b)) }.store(self.fps(b), Ordering::SeqCst);
    }

    /// Sets `k`'s fingerprint bit in its bucket: before `k` goes into the
    /// hash, so the program looks there by the time it is.
    fn add_fp(&self, b: u32, k: &L::Key) {
        // SAFETY: in the mapping.
        unsafe { L::overflow(self.bucket(b)) }.fetch_or(L::fp(k), Ordering::SeqCst);
    }

    fn write_slot(&self, b: u32, i: usize, k: L::Key, ban: &BanEntry) {
        let p = self.bucket(b);
        // SAFETY: p is in the mapping and i < BAN_SLOTS; the slot's bit is
        // clear, so the XDP program ignores it until the OR below.
        unsafe {
            std::ptr::write_volatile(L::key(p, i), k);
            std::ptr::write_volatile(L::reason(p, i), ban.reason.min(255) as u8);
            L::expires(p, i).store(ban.expires_ns, Ordering::SeqCst);
            L::used(p).fetch_or(1 << i, Ordering::SeqCst);
        }
    }

    fn free_slot(&self, b: u32) -> Option<usize> {
        let used = self.used(b);
        (0..BAN_SLOTS).find(|i| used & (1 << i) == 0)
    }

    /// Writes (or updates) the ban of `k`.
    pub fn insert(&mut self, k: L::Key, ban: BanEntry) -> Result<(), DataplaneError> {
        let b = L::bucket_of(&k, self.bits);
        if let Some(i) = self.slot_of(b, &k) {
            let p = self.bucket(b);
            // SAFETY: an occupied slot of ours; expiry is one atomic store.
            unsafe {
                std::ptr::write_volatile(L::reason(p, i), ban.reason.min(255) as u8);
                L::expires(p, i).store(ban.expires_ns, Ordering::SeqCst);
            }
            return Ok(());
        }
        if self.is_spilled(b, &k) {
            return self
                .overflow
                .insert(k, ban, 0)
                .map_err(|e| write_err(L::OVERFLOW, self.overflow_capacity, e));
        }
        if let Some(i) = self.free_slot(b) {
            self.write_slot(b, i, k, &ban);
            self.count += 1;
            return Ok(());
        }
        // Fingerprint first: the program then looks in the hash, where the
        // ban appears a moment later.
        self.add_fp(b, &k);
        if let Err(e) = self.overflow.insert(k, ban, 0) {
            self.store_fps(b);
            return Err(write_err(L::OVERFLOW, self.overflow_capacity, e));
        }
        self.spilled.entry(b).or_default().push(k);
        self.count += 1;
        Ok(())
    }

    /// Writes many new bans at once (a restore): bucket slots through the
    /// mapping, and what overflows into the hash in batches of one
    /// `BPF_MAP_UPDATE_BATCH` call each, instead of a syscall per ban.
    /// Keys already held are updated one by one.
    pub fn insert_many(&mut self, items: &[(L::Key, BanEntry)]) -> Result<(), DataplaneError> {
        let mut spill: Vec<(L::Key, BanEntry)> = Vec::new();
        for (k, ban) in items {
            let b = L::bucket_of(k, self.bits);
            if self.slot_of(b, k).is_some() || self.is_spilled(b, k) {
                self.insert(*k, *ban)?;
                continue;
            }
            match self.free_slot(b) {
                Some(i) => {
                    self.write_slot(b, i, *k, ban);
                    self.count += 1;
                }
                None => spill.push((*k, *ban)),
            }
        }
        for chunk in spill.chunks(16_384) {
            for (k, _) in chunk {
                // Fingerprints first, as in `insert`.
                self.add_fp(L::bucket_of(k, self.bits), k);
            }
            let keys: Vec<L::Key> = chunk.iter().map(|(k, _)| *k).collect();
            let values: Vec<BanEntry> = chunk.iter().map(|(_, v)| *v).collect();
            let written = super::batch::update(&self.overflow, &keys, &values);
            let n = match &written {
                Ok(()) => chunk.len(),
                Err((n, _)) => *n,
            };
            for (k, _) in &chunk[..n] {
                self.spilled
                    .entry(L::bucket_of(k, self.bits))
                    .or_default()
                    .push(*k);
            }
            self.count += n;
            if let Err((_, e)) = written {
                // Fingerprints of bans that did not make it: cleared.
                for (k, _) in &chunk[n..] {
                    self.store_fps(L::bucket_of(k, self.bits));
                }
                return Err(match e.raw_os_error() {
                    Some(libc::E2BIG) | Some(libc::ENOSPC) => DataplaneError::MapFull {
                        name: L::OVERFLOW,
                        capacity: self.overflow_capacity,
                    },
                    _ => DataplaneError::Io {
                        path: L::OVERFLOW.into(),
                        source: e,
                    },
                });
            }
        }
        Ok(())
    }

    /// Lifts the ban of `k`; false when there was none.
    pub fn remove(&mut self, k: &L::Key) -> Result<bool, DataplaneError> {
        let b = L::bucket_of(k, self.bits);
        if let Some(i) = self.slot_of(b, k) {
            // SAFETY: in the mapping.
            unsafe { L::used(self.bucket(b)) }.fetch_and(!(1 << i), Ordering::SeqCst);
            self.count -= 1;
            self.refill(b, i)?;
            return Ok(true);
        }
        if self.is_spilled(b, k) {
            self.drop_overflow(b, k)?;
            self.count -= 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Removes `k` from the overflow hash, then the fingerprint bits no
    /// ban left there needs.
    fn drop_overflow(&mut self, b: u32, k: &L::Key) -> Result<(), DataplaneError> {
        match self.overflow.remove(k) {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(source) => {
                return Err(DataplaneError::Map {
                    name: L::OVERFLOW,
                    source,
                });
            }
        }
        if let Some(v) = self.spilled.get_mut(&b) {
            v.retain(|x| x != k);
            if v.is_empty() {
                self.spilled.remove(&b);
            }
            self.store_fps(b);
        }
        Ok(())
    }

    /// Moves one overflow ban of bucket `b` into its free slot `i`.
    fn refill(&mut self, b: u32, i: usize) -> Result<(), DataplaneError> {
        let Some(k) = self.spilled.get(&b).and_then(|v| v.last().copied()) else {
            return Ok(());
        };
        let Ok(ban) = self.overflow.get(&k, 0) else {
            return Ok(());
        };
        // Into the slot first (never a moment without the ban), then out of
        // the hash.
        self.write_slot(b, i, k, &ban);
        self.drop_overflow(b, &k)
    }

    /// The ban of `k`, if any.
    pub fn get(&self, k: &L::Key) -> Option<BanEntry> {
        let b = L::bucket_of(k, self.bits);
        if let Some(i) = self.slot_of(b, k) {
            let p = self.bucket(b);
            // SAFETY: an occupied slot in the mapping.
            return unsafe {
                Some(BanEntry {
                    expires_ns: L::expires(p, i).load(Ordering::SeqCst),
                    reason: u32::from(std::ptr::read_volatile(L::reason(p, i))),
                    _reserved: 0,
                })
            };
        }
        if self.is_spilled(b, k) {
            return self.overflow.get(k, 0).ok();
        }
        None
    }

    /// Every ban.
    pub fn entries(&self) -> Vec<(L::Key, BanEntry)> {
        let mut out = Vec::with_capacity(self.count);
        for b in 0..self.buckets.len() as u32 {
            let used = self.used(b);
            let p = self.bucket(b);
            for i in (0..BAN_SLOTS).filter(|i| used & (1 << i) != 0) {
                // SAFETY: an occupied slot in the mapping.
                let (k, e) = unsafe {
                    (
                        std::ptr::read_volatile(L::key(p, i)),
                        BanEntry {
                            expires_ns: L::expires(p, i).load(Ordering::SeqCst),
                            reason: u32::from(std::ptr::read_volatile(L::reason(p, i))),
                            _reserved: 0,
                        },
                    )
                };
                out.push((k, e));
            }
        }
        for k in self.spilled.values().flatten() {
            if let Ok(e) = self.overflow.get(k, 0) {
                out.push((*k, e));
            }
        }
        out
    }

    /// Number of bans.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no bans.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The overflow hash itself (a typed handle; writing to it directly
    /// bypasses the bucket bookkeeping, so it is for inspection and
    /// benchmarks).
    pub fn overflow_map(&mut self) -> &mut HashMap<MapData, L::Key, BanEntry> {
        &mut self.overflow
    }

    /// Number of bans that live in the overflow hash.
    pub fn overflowed(&self) -> usize {
        self.spilled.values().map(Vec::len).sum()
    }
}

/// Exact bans of both families.
pub struct HostBans {
    /// IPv4.
    pub v4: BanTable<V4Layout>,
    /// IPv6.
    pub v6: BanTable<V6Layout>,
}

fn k4(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

impl HostBans {
    /// Writes (or updates) the ban of `addr`.
    pub fn insert(&mut self, addr: IpAddr, ban: BanEntry) -> Result<(), DataplaneError> {
        match addr {
            IpAddr::V4(a) => self.v4.insert(k4(a), ban),
            IpAddr::V6(a) => self.v6.insert(a.octets(), ban),
        }
    }

    /// Writes many bans at once (a restore): the two families on two
    /// threads, each with [`BanTable::insert_many`].
    pub fn insert_many(&mut self, items: &[(IpAddr, BanEntry)]) -> Result<(), DataplaneError> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (a, b) in items {
            match a {
                IpAddr::V4(a) => v4.push((k4(*a), *b)),
                IpAddr::V6(a) => v6.push((a.octets(), *b)),
            }
        }
        let (t4, t6) = (&mut self.v4, &mut self.v6);
        std::thread::scope(|s| {
            let h = s.spawn(move || t6.insert_many(&v6));
            let r4 = t4.insert_many(&v4);
            let r6 = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            r4.and(r6)
        })
    }

    /// Lifts the ban of `addr`; false when there was none.
    pub fn remove(&mut self, addr: IpAddr) -> Result<bool, DataplaneError> {
        match addr {
            IpAddr::V4(a) => self.v4.remove(&k4(a)),
            IpAddr::V6(a) => self.v6.remove(&a.octets()),
        }
    }

    /// The ban of `addr`, if any.
    pub fn get(&self, addr: IpAddr) -> Option<BanEntry> {
        match addr {
            IpAddr::V4(a) => self.v4.get(&k4(a)),
            IpAddr::V6(a) => self.v6.get(&a.octets()),
        }
    }

    /// Every ban, IPv4 first.
    pub fn entries(&self) -> Vec<(IpAddr, BanEntry)> {
        let mut out: Vec<(IpAddr, BanEntry)> = self
            .v4
            .entries()
            .into_iter()
            .map(|(k, b)| (IpAddr::V4(Ipv4Addr::from(k.to_ne_bytes())), b))
            .collect();
        out.extend(
            self.v6
                .entries()
                .into_iter()
                .map(|(k, b)| (IpAddr::V6(Ipv6Addr::from(k)), b)),
        );
        out
    }

    /// Number of bans.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// True when there are no bans.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bans each family can hold: the bucket slots plus the overflow hash.
    pub fn capacity_per_family(&self) -> u64 {
        self.v4.buckets.len() as u64 * BAN_SLOTS as u64 + u64::from(self.v4.overflow_capacity)
    }
}

//! The maps of the XDP program and the lookups on them, per address family.
//!
//! Names match `waf_common::map_names`; the daemon pins them by those names.
//!
//! The per-packet path is built from array loads, which the verifier inlines
//! into plain memory accesses: exact bans live in 8-way bucket arrays, rate
//! state in a 2-way set-associative array (one load fetches both slots of a
//! set), and allowlist/blocklist/prefix-ban membership is answered from
//! bitmaps (`waf_common::filter`) in the common case, for IPv4 with one load
//! of the /16 flags of all three lists. IPv6 lists and prefix bans are
//! per-length tables of expanded prefixes (`waf_common::prefix6`): three
//! loads of target masks for all three sets, then one bucket per target
//! named, longest first. LPM tries and the overflow hash are only walked
//! when a bitmap or a bucket says they may hold the answer: on this kind
//! of machine each such call costs tens of nanoseconds.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    helpers::bpf_jiffies64,
    macros::map,
    maps::{Array, HashMap, LpmTrie, PerCpuArray, RingBuf, lpm_trie::Key},
};
use waf_common::{
    ALLOW_CAPACITY, BAN_BUCKETS, BANX_CAPACITY, BLOCK_CAPACITY, BPF_F_MMAPABLE, BanBucketV4,
    BanBucketV6, BanEntry, Counter, EVENTS_BYTES, ListEntry, PBAN_CAPACITY, RATE_SETS, RateSetV4,
    RateSetV6, RateSlotV4, RateSlotV6, RateState, SOURCE_CAPACITY, SOURCE_TAGS, SOURCE_V6_CAPACITY,
    SourceEntry, TAG16_NONE, XdpConfig, ban_bucket_v4, ban_bucket_v6, ban_fp_v4, ban_fp_v6,
    counter, filter,
    prefix6::{
        self, DIR_CLEAR, DIR_COVER_MASK, DIR_ENTRIES, DIR_LEVEL2, DIR_SHARED, DirCoverV6,
        DirSlotV6, MASK_WORDS, PLAN_READY, PrefixBucketV6, SLOTS, TARGETS, TRIE_BIT, V6Plan,
        bucket_of, dir_index, fps_hold, mask_index, prefix_fp, prefix_hash,
    },
    rate_set_v4, rate_set_v6,
};

#[map]
static WAF_CONFIG: Array<XdpConfig> = Array::with_max_entries(1, 0);
#[map]
static WAF_COUNTERS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(counter::COUNT, 0);
#[map]
static WAF_EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);
/// Where `waf_clock` leaves the kernel's jiffies for userspace.
#[map]
static WAF_CLOCK: Array<u64> = Array::with_max_entries(1, 0);
/// Per CPU: the sampler's packet offsets, parked across the checks (not
/// pinned; see [`park`]).
#[map]
static WAF_SCRATCH: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[map]
static WAF_ALLOW_V4: LpmTrie<u32, ListEntry> = LpmTrie::with_max_entries(ALLOW_CAPACITY, 0);
#[map]
static WAF_ALLOW_V6: LpmTrie<[u8; 16], ListEntry> = LpmTrie::with_max_entries(ALLOW_CAPACITY, 0);
/// The /16 flags of the allowlist, blocklist and prefix bans, side by side.
#[map]
static WAF_LISTS_F16: Array<u64> = Array::with_max_entries(filter::F16_WORDS, BPF_F_MMAPABLE);

#[map]
static WAF_ALLOW_F24: Array<u64> = Array::with_max_entries(filter::F24_WORDS, BPF_F_MMAPABLE);
/// Placeholder size: the loader sizes the tables from `[capacity]`.
#[map]
static WAF_ALLOW_T6: Array<PrefixBucketV6> =
    Array::with_max_entries(prefix6::table_buckets(ALLOW_CAPACITY), BPF_F_MMAPABLE);

#[map]
static WAF_BLOCK_V4: LpmTrie<u32, ListEntry> = LpmTrie::with_max_entries(BLOCK_CAPACITY, 0);
#[map]
static WAF_BLOCK_V6: LpmTrie<[u8; 16], ListEntry> = LpmTrie::with_max_entries(BLOCK_CAPACITY, 0);
#[map]
static WAF_BLOCK_F24: Array<u64> = Array::with_max_entries(filter::F24_WORDS, BPF_F_MMAPABLE);
#[map]
static WAF_BLOCK_T6: Array<PrefixBucketV6> =
    Array::with_max_entries(prefix6::table_buckets(BLOCK_CAPACITY), BPF_F_MMAPABLE);

#[map]
static WAF_PBAN_V4: LpmTrie<u32, BanEntry> = LpmTrie::with_max_entries(PBAN_CAPACITY, 0);
#[map]
static WAF_PBAN_V6: LpmTrie<[u8; 16], BanEntry> = LpmTrie::with_max_entries(PBAN_CAPACITY, 0);
#[map]
static WAF_PBAN_T6: Array<PrefixBucketV6> =
    Array::with_max_entries(prefix6::table_buckets(PBAN_CAPACITY), BPF_F_MMAPABLE);
/// Source policies (countries, networks, cloud ranges, bogons): not
/// preallocated, sized by the loader from `[capacity] sources`.
#[map]
static WAF_SRC_V4: LpmTrie<u32, SourceEntry> =
    LpmTrie::with_max_entries(SOURCE_CAPACITY, BPF_F_NO_PREALLOC);
#[map]
static WAF_SRC_V6: LpmTrie<[u8; 16], SourceEntry> =
    LpmTrie::with_max_entries(SOURCE_V6_CAPACITY, BPF_F_NO_PREALLOC);
#[map]
static WAF_SRC_F24: Array<u64> = Array::with_max_entries(filter::F24_WORDS, BPF_F_MMAPABLE);
/// The /24s holding source-policy prefixes longer than /24, the slots of
/// their words, the addresses they cover, and whether all that is whole.
#[map]
static WAF_SRC_D24: Array<u64> = Array::with_max_entries(filter::F24_WORDS, BPF_F_MMAPABLE);
#[map]
static WAF_SRC_RANK: Array<u64> = Array::with_max_entries(filter::F24_WORDS, BPF_F_MMAPABLE);
#[map]
static WAF_SRC_DEEP: Array<[u64; 4]> =
    Array::with_max_entries(filter::DEEP24_SLOTS, BPF_F_MMAPABLE);
#[map]
static WAF_SRC_DMODE: Array<u64> = Array::with_max_entries(1, BPF_F_MMAPABLE);
/// The tags of the /16s and /24s the source policies cover whole, so that
/// a drop finds its tag without the trie.
#[map]
static WAF_SRC_T16: Array<u64> = Array::with_max_entries(filter::T16_WORDS, BPF_F_MMAPABLE);
#[map]
static WAF_SRC_R24: Array<u64> = Array::with_max_entries(filter::F24_WORDS, BPF_F_MMAPABLE);
#[map]
static WAF_SRC_TAG24: Array<u64> =
    Array::with_max_entries(filter::COVER24_SLOTS / 4, BPF_F_MMAPABLE);
#[map]
static WAF_SRC_T6: Array<PrefixBucketV6> =
    Array::with_max_entries(prefix6::table_buckets(SOURCE_V6_CAPACITY), BPF_F_MMAPABLE);
/// The source set's IPv6 directory: the /32s its level-1 targets split,
/// and per such /32 the mask byte of each /40 (placeholder sizes: the
/// loader sizes them from `[capacity] sources_v6`).
#[map]
static WAF_SRC_DIR6: Array<u64> = Array::with_max_entries(DIR_ENTRIES, BPF_F_MMAPABLE);
#[map]
static WAF_SRC_SUB6: Array<DirSlotV6> =
    Array::with_max_entries(prefix6::dir_slots(SOURCE_V6_CAPACITY), BPF_F_MMAPABLE);
#[map]
static WAF_SRC_COV6: Array<DirCoverV6> =
    Array::with_max_entries(prefix6::dir_covers(SOURCE_V6_CAPACITY), BPF_F_MMAPABLE);
/// Per CPU, per source-policy tag: what each country, network, provider
/// dropped (or would have).
#[map]
static WAF_SRC_COUNTS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(SOURCE_TAGS, 0);
/// The interfaces (ifindex) on which bogons are dropped.
#[map]
static WAF_SRC_IFACES: HashMap<u32, u32> = HashMap::with_max_entries(64, 0);
/// The target masks of the four IPv6 sets, a byte each.
#[map]
static WAF_V6_MASKS: Array<u64> = Array::with_max_entries(MASK_WORDS, BPF_F_MMAPABLE);
/// The plan of each IPv6 set (indexed by `filter::SET_*`).
#[map]
static WAF_V6_PLAN: Array<V6Plan> = Array::with_max_entries(prefix6::PLANS, BPF_F_MMAPABLE);

// Exact bans: buckets written by userspace through mmap, keyed by the
// source key (an IPv6 source masked to `XdpConfig::v6_prefix`). A plain hash takes
// the bans whose bucket is full; it is not preallocated (memory only when
// used) and never evicts: a full map fails the insert in userspace, which
// raises an alarm there instead of losing a ban.
/// Placeholder sizes: the loader sizes them from `[capacity] bans`.
#[map]
static WAF_BANS_V4: Array<BanBucketV4> = Array::with_max_entries(BAN_BUCKETS, BPF_F_MMAPABLE);
#[map]
static WAF_BANS_V6: Array<BanBucketV6> = Array::with_max_entries(BAN_BUCKETS, BPF_F_MMAPABLE);
#[map]
static WAF_BANX_V4: HashMap<u32, BanEntry> =
    HashMap::with_max_entries(BANX_CAPACITY, BPF_F_NO_PREALLOC);
#[map]
static WAF_BANX_V6: HashMap<[u8; 16], BanEntry> =
    HashMap::with_max_entries(BANX_CAPACITY, BPF_F_NO_PREALLOC);

/// Placeholder sizes: the loader sizes them from `[capacity] rate_sources`.
#[map]
static WAF_RATE_V4: Array<RateSetV4> = Array::with_max_entries(RATE_SETS, 0);
#[map]
static WAF_RATE_V6: Array<RateSetV6> = Array::with_max_entries(RATE_SETS, 0);

/// The runtime configuration (one array entry, always present).
#[inline(always)]
pub fn config() -> Option<&'static XdpConfig> {
    WAF_CONFIG.get(0)
}

/// The kernel's jiffies (the verifier inlines this helper into one load).
#[inline(always)]
pub fn jiffies() -> u64 {
    // SAFETY: a helper without arguments.
    unsafe { bpf_jiffies64() }
}

/// Now, on the program's clock: jiffies times the tick length userspace
/// wrote into the config. Tick resolution, and all the precision a rate
/// limiter and ban expiry need, for the cost of one memory load instead of
/// a clock-reading call (tens of nanoseconds here). Userspace converts ban
/// expiries to this clock (see `waf_clock` and `dataplane::KernelClock`).
#[inline(always)]
pub fn now_ns(cfg: &XdpConfig) -> u64 {
    jiffies() * cfg.tick_ns
}

/// Leaves the current jiffies where userspace can read them.
#[inline(always)]
pub fn publish_jiffies() {
    if let Some(slot) = WAF_CLOCK.get_ptr_mut(0) {
        // SAFETY: a valid array slot.
        unsafe { *slot = jiffies() };
    }
}

/// Parks `v` in this CPU's scratch slot. The parser's packet offsets are
/// parked there across the source checks and read back for the sampler:
/// the verifier then knows nothing of them during the checks, so the paths
/// from every header layout merge at the checks instead of each being
/// verified through them on its own (what kept the program within the
/// verifier's budget once the IPv6 tables came).
#[inline(always)]
pub fn park(v: u64) {
    if let Some(p) = WAF_SCRATCH.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, only this CPU uses it while we run.
        unsafe { *p = v };
    }
}

/// What [`park`] left in this CPU's scratch slot.
#[inline(always)]
pub fn unpark() -> u64 {
    WAF_SCRATCH.get(0).copied().unwrap_or(0)
}

/// Adds one packet of `len` bytes to counter `index` of this CPU.
#[inline(always)]
pub fn count(index: u32, len: u64) {
    if let Some(c) = WAF_COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, only this CPU writes it while we run.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len;
        }
    }
}

/// Adds one packet of `len` bytes to source-policy tag `tag` of this CPU
/// (tags past the array count as tag 0, "other").
#[inline(always)]
pub fn count_source(tag: u32, len: u64) {
    let tag = if tag < SOURCE_TAGS { tag } else { 0 };
    if let Some(c) = WAF_SRC_COUNTS.get_ptr_mut(tag) {
        // SAFETY: per-CPU slot, only this CPU writes it while we run.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len;
        }
    }
}

/// Are bogons dropped on interface `ifindex`?
#[inline(always)]
pub fn bogons_dropped_on(ifindex: u32) -> bool {
    // SAFETY: the value is not kept.
    unsafe { WAF_SRC_IFACES.get(&ifindex) }.is_some()
}

/// The ring buffer of rate events.
#[inline(always)]
pub fn events() -> &'static RingBuf {
    &WAF_EVENTS
}

/// Bit `idx` of the bitmap starting at word `base` of `map`.
#[inline(always)]
fn bit(map: &Array<u64>, base: u32, idx: u32) -> bool {
    match map.get(base + (idx >> 6)) {
        Some(w) => (*w >> (idx & 63)) & 1 != 0,
        None => false,
    }
}

/// Is the IPv4 address in the set whose /16 flags (its nibble), /24 bitmap
/// and trie are given?
#[inline(always)]
fn in_set_v4(addr: u32, flags: u64, f24: &Array<u64>, trie: &LpmTrie<u32, ListEntry>) -> bool {
    if flags == 0 {
        return false;
    }
    if flags & filter::FULL != 0 {
        return true;
    }
    if flags & filter::MID != 0 && bit(f24, 0, u32::from_be(addr) >> 8) {
        return true;
    }
    flags & filter::DEEP != 0 && trie.get(Key::new(32, addr)).is_some()
}

/// Whether the source set's deep and tag tables are whole (not being
/// rewritten).
#[inline(always)]
fn src_tables_ready() -> bool {
    match WAF_SRC_DMODE.get(0) {
        // SAFETY: a plain read of a word userspace writes first and last.
        Some(m) => (unsafe { core::ptr::read_volatile(m) }) == filter::DEEP_READY,
        None => false,
    }
}

/// A 16-bit entry of a tag table (None: ask the trie).
#[inline(always)]
fn tag_in(word: u64, index: u64) -> Option<SourceEntry> {
    let v = (word >> ((index & 3) * 16)) & 0xffff;
    if v == TAG16_NONE {
        None
    } else {
        Some(SourceEntry::from_tag16(v))
    }
}

/// The entry of /16 `t16`, covered whole by an entry of /16 or shorter.
#[inline(always)]
fn tag16(t16: u32) -> Option<SourceEntry> {
    if !src_tables_ready() {
        return None;
    }
    let w = WAF_SRC_T16.get(t16 >> 2)?;
    tag_in(*w, u64::from(t16))
}

/// The entry of /24 `t24`, covered whole (its bit set in `word`, its word
/// of the /24 bitmap).
#[inline(always)]
fn tag24(t24: u32, word: u64) -> Option<SourceEntry> {
    if !src_tables_ready() {
        return None;
    }
    let rank = WAF_SRC_R24.get(t24 >> 6)?;
    let slot = *rank + filter::popcount(word & ((1u64 << (t24 & 63)) - 1));
    if slot >= u64::from(filter::COVER24_SLOTS) {
        return None;
    }
    let w = WAF_SRC_TAG24.get((slot >> 2) as u32)?;
    tag_in(*w, slot)
}

/// True when the deep /24 table says no prefix longer than /24 covers
/// address `low` of /24 `t24`; false when one does or only the trie can
/// tell (the table is being rewritten, or the /24 is past its slots).
#[inline(always)]
fn deep_misses(t24: u32, low: u32) -> bool {
    let (w, b) = (t24 >> 6, t24 & 63);
    let Some(word) = WAF_SRC_D24.get(w) else {
        return false;
    };
    let word = *word;
    // A clear bit holds even mid-rewrite: each word is stored whole, so it
    // is the old policy's or the new one's, and neither has a longer range
    // in this /24. The rank and the slot need the tables whole.
    if (word >> b) & 1 == 0 {
        return true;
    }
    if !src_tables_ready() {
        return false;
    }
    let Some(rank) = WAF_SRC_RANK.get(w) else {
        return false;
    };
    let slot = *rank + filter::popcount(word & ((1u64 << b) - 1));
    if slot >= filter::DEEP24_SLOTS as u64 {
        return false;
    }
    let Some(bits) = WAF_SRC_DEEP.get(slot as u32) else {
        return false;
    };
    (bits[((low >> 6) & 3) as usize] >> (low & 63)) & 1 == 0
}

/// What an IPv6 set's table says of an address.
enum Table {
    /// The longest prefix covering it, with its slot value.
    Found(u64),
    /// Nothing covers it.
    Missing,
    /// Only the trie can tell.
    AskTrie,
}

/// Looks the address (big-endian halves) up in the table of set `set`,
/// given the set's byte of the target masks: each target it names, longest
/// first (see `waf_common::prefix6`).
#[inline(always)]
fn table_v6(hi: u64, lo: u64, byte: u32, set: u32, table: &Array<PrefixBucketV6>) -> Table {
    if byte == 0 {
        return Table::Missing;
    }
    let Some(plan) = WAF_V6_PLAN.get(set) else {
        return Table::AskTrie;
    };
    // SAFETY: a plain read of a field userspace writes last.
    if unsafe { core::ptr::read_volatile(&plan.mode) } != PLAN_READY {
        return Table::AskTrie;
    }
    // Targets longest first (bit 0 is the longest), until no bit is left.
    let mut i = 0;
    while i < TARGETS {
        // A fresh load to test the bits on (see V6Plan::active): a branch
        // on `byte` itself would teach the verifier each bit, doubling the
        // states it keeps at every target.
        // SAFETY: a plain read of the mapped plan.
        let left = (byte & unsafe { core::ptr::read_volatile(&plan.active) }) >> i;
        if left == 0 {
            break;
        }
        i += 1;
        if left & 1 == 0 {
            continue;
        }
        let i = i - 1;
        let len = plan.lens[i] as u32;
        let (kh, kl) = (hi & plan.mask_hi[i], lo & plan.mask_lo[i]);
        let h = prefix_hash(kh, kl, len);
        let Some(b) = table.get(bucket_of(h, plan.bucket_mask)) else {
            return Table::AskTrie;
        };
        // SAFETY: the fingerprints sit at an 8-byte aligned offset.
        let fps = u64::from_le(unsafe { core::ptr::read_volatile(b.fps.as_ptr().cast::<u64>()) });
        if fps_hold(fps, prefix_fp(h)) {
            let key = [u64::to_be(kh), u64::to_be(kl)];
            for s in 0..SLOTS {
                // SAFETY: bucket keys sit at 8-byte aligned offsets.
                let k = unsafe { wide(&b.keys[s]) };
                // One branch per slot (bitwise, not short-circuit): every
                // branch doubles what the verifier follows.
                let diff = (k[0] ^ key[0]) | (k[1] ^ key[1]) | (b.lens[s] as u64 ^ len as u64);
                // SAFETY: `used` is read afresh per slot, as `active` is.
                if diff == 0 && unsafe { core::ptr::read_volatile(&b.used) } & (1 << s) != 0 {
                    return Table::Found(b.values[s]);
                }
            }
        }
        if b.overflow != 0 {
            return Table::AskTrie;
        }
    }
    if byte & (1 << TRIE_BIT) != 0 {
        Table::AskTrie
    } else {
        Table::Missing
    }
}

/// The source set's level-1 mask byte for the /40 of an address whose top
/// 64 bits are `hi` (big-endian), from the directory: None when only the
/// level-1 mask can tell (the directory is being rewritten, or could not
/// take every split /32 of this index), 0 when the /32 holds no prefix
/// longer than /32 and no level-1 target, [`DIR_CLEAR`] when no prefix
/// covers the address's /48 or lies in it, else the /40's level-1 byte
/// with [`DIR_LEVEL2`] when a prefix longer than /40 lies in the /40.
#[inline(always)]
fn dir_byte(hi: u64) -> Option<u32> {
    let plan = WAF_V6_PLAN.get(filter::SET_SOURCE)?;
    // SAFETY: a plain read of a field userspace writes first and last.
    if unsafe { core::ptr::read_volatile(&plan.dir_ready) } == 0 {
        return None;
    }
    // SAFETY: each entry is one aligned word, written whole.
    let e = unsafe { core::ptr::read_volatile(WAF_SRC_DIR6.get(dir_index(hi))?) };
    if e as u32 == DIR_SHARED {
        return None;
    }
    // Empty, or another /32's: this one holds no level-1 target.
    if e >> 32 != hi >> 32 || e as u32 == 0 {
        return Some(0);
    }
    let slot = WAF_SRC_SUB6.get(e as u32 - 1)?;
    let v = slot[(hi >> 24) as usize & 0xff];
    let cover = (v >> 8) & DIR_COVER_MASK;
    if cover != 0 {
        let bits = WAF_SRC_COV6.get(cover - 1)?;
        let x = (hi >> 16) as u32 & 0xff;
        if (bits[(x >> 6) as usize & 3] >> (x & 63)) & 1 == 0 {
            return Some(DIR_CLEAR);
        }
    }
    Some(v & (0xff | DIR_LEVEL2))
}

/// Is the IPv6 address in membership set `set` (the allowlist or the
/// blocklist), whose table and trie are given?
#[inline(always)]
fn member_v6(
    a: &[u64; 2],
    lists: u64,
    set: u32,
    table: &Array<PrefixBucketV6>,
    trie: &LpmTrie<[u8; 16], ListEntry>,
) -> bool {
    let (hi, lo) = be(a);
    match table_v6(hi, lo, set_byte(lists, set), set, table) {
        Table::Found(_) => true,
        Table::Missing => false,
        Table::AskTrie => trie.get(Key::new(128, bytes(a))).is_some(),
    }
}

/// The byte of set `set` in the target masks `lists` (see [`Family::lists`]).
#[inline(always)]
fn set_byte(lists: u64, set: u32) -> u32 {
    ((lists >> (set * 8)) & 0xff) as u32
}

/// The address (two `u64` in memory order) as two big-endian numbers.
#[inline(always)]
fn be(a: &[u64; 2]) -> (u64, u64) {
    (u64::from_be(a[0]), u64::from_be(a[1]))
}

/// The address as the 16 bytes the tries and the overflow hash key.
#[inline(always)]
fn bytes(a: &[u64; 2]) -> [u8; 16] {
    // SAFETY: same size, any bit pattern is valid.
    unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(*a) }
}

/// A 16-byte key stored in a map value, read as two `u64` (the keys are at
/// 8-byte aligned offsets).
///
/// # Safety
/// `k` must be valid and 8-byte aligned.
#[inline(always)]
unsafe fn wide(k: *const [u8; 16]) -> [u64; 2] {
    // SAFETY: caller guarantees validity and alignment; same size.
    unsafe { *(k as *const [u64; 2]) }
}

/// The lookups of one address family.
pub trait Family {
    /// The address as the program carries it: `u32` in network order, or
    /// the 16 bytes as two `u64` in memory order.
    type Addr: Copy;
    /// 4 or 6.
    const FAMILY: u32;
    /// What one load (IPv4: the /16 flags) or three (IPv6: the target
    /// masks) say of the address for every CIDR set. A set whose nibble
    /// (IPv4) or byte (IPv6) is zero holds nothing covering the address.
    fn lists(a: &Self::Addr) -> u64;
    /// Is the address on the allowlist? (`lists`: what [`Family::lists`] said)
    fn allowed(a: &Self::Addr, lists: u64) -> bool;
    /// The key exact bans and rate state are kept under: the address
    /// (IPv4), or its prefix of `XdpConfig::v6_prefix` bits (IPv6).
    fn source_key(a: &Self::Addr, cfg: &XdpConfig) -> Self::Addr;
    /// Expiry of the exact ban of source key `k` ([`Family::source_key`]),
    /// if any (0 = permanent), in bucket arrays of `2^bits` buckets.
    fn ban_expiry(k: &Self::Addr, bits: u32) -> Option<u64>;
    /// Expiry of the longest prefix ban covering this address, if any.
    fn prefix_ban_expiry(a: &Self::Addr, lists: u64) -> Option<u64>;
    /// Is the address on the blocklist?
    fn blocked(a: &Self::Addr, lists: u64) -> bool;
    /// The source-policy entry covering the address, if any.
    fn source_entry(a: &Self::Addr, lists: u64) -> Option<SourceEntry>;
    /// The rate state of source key `k` in an array of `2^bits` sets, and
    /// whether it was just claimed for it (a slot of another, least
    /// recently seen source is reused).
    fn rate_state(k: &Self::Addr, bits: u32) -> Option<(*mut RateState, bool)>;
    /// The address as 16 bytes for events (IPv4 in the first four).
    fn event_addr(k: &Self::Addr) -> [u8; 16];
}

/// IPv4 lookups.
pub struct V4;
/// IPv6 lookups.
pub struct V6;

/// Picks the slot of a source among the two of its set, or claims one: a
/// free one, else the one whose source was seen least recently.
///
/// # Safety
/// `s0` and `s1` must be valid pointers into the rate array.
#[inline(always)]
unsafe fn claim<S>(
    s0: *mut S,
    s1: *mut S,
    matches: impl Fn(*mut S) -> bool,
    used: impl Fn(*mut S) -> bool,
    seen: impl Fn(*mut S) -> u64,
    take: impl Fn(*mut S),
    state: impl Fn(*mut S) -> *mut RateState,
) -> (*mut RateState, bool) {
    if matches(s0) {
        return (state(s0), false);
    }
    if matches(s1) {
        return (state(s1), false);
    }
    let victim = if !used(s0) {
        s0
    } else if !used(s1) || seen(s1) < seen(s0) {
        s1
    } else {
        s0
    };
    take(victim);
    (state(victim), true)
}

impl Family for V4 {
    type Addr = u32;
    const FAMILY: u32 = 4;

    /// The 16 bits of /16 flags of every list (see `waf_common::filter`).
    #[inline(always)]
    fn lists(a: &u32) -> u64 {
        let t16 = u32::from_be(*a) >> 16;
        match WAF_LISTS_F16.get(t16 >> 2) {
            Some(w) => (*w >> ((t16 & 3) * filter::F16_BITS_PER)) & 0xffff,
            None => 0,
        }
    }

    #[inline(always)]
    fn allowed(a: &u32, lists: u64) -> bool {
        let flags = filter::set_flags(lists, filter::SET_ALLOW);
        in_set_v4(*a, flags, &WAF_ALLOW_F24, &WAF_ALLOW_V4)
    }

    #[inline(always)]
    fn source_key(a: &u32, _cfg: &XdpConfig) -> u32 {
        *a
    }

    #[inline(always)]
    fn ban_expiry(a: &u32, bits: u32) -> Option<u64> {
        let b = WAF_BANS_V4.get(ban_bucket_v4(*a, bits))?;
        // SAFETY: a plain read of a field userspace updates atomically.
        let used = unsafe { core::ptr::read_volatile(&b.used) };
        if used != 0 {
            // The key first: a stale key in a free slot fails the used bit
            // after it, and a miss (the common case) costs one compare.
            for i in 0..waf_common::BAN_SLOTS {
                if b.keys[i] == *a && used & (1 << i) != 0 {
                    return Some(b.expires[i]);
                }
            }
        }
        if b.overflow & ban_fp_v4(*a) == 0 {
            return None;
        }
        // SAFETY: the value is copied out at once.
        unsafe { WAF_BANX_V4.get(a) }.map(|e| e.expires_ns)
    }

    #[inline(always)]
    fn prefix_ban_expiry(a: &u32, lists: u64) -> Option<u64> {
        if filter::set_flags(lists, filter::SET_PBAN) == 0 {
            return None;
        }
        WAF_PBAN_V4.get(Key::new(32, *a)).map(|e| e.expires_ns)
    }

    #[inline(always)]
    fn blocked(a: &u32, lists: u64) -> bool {
        let flags = filter::set_flags(lists, filter::SET_BLOCK);
        in_set_v4(*a, flags, &WAF_BLOCK_F24, &WAF_BLOCK_V4)
    }

    /// The bitmaps say whether a policy covers the address (the deep /24
    /// table, for the /24s that hold longer prefixes); the tag tables give
    /// the entry of a /16 or /24 covered whole, the trie the others'.
    #[inline(always)]
    fn source_entry(a: &u32, lists: u64) -> Option<SourceEntry> {
        let flags = filter::set_flags(lists, filter::SET_SOURCE);
        if flags == 0 {
            return None;
        }
        let host = u32::from_be(*a);
        let t24 = host >> 8;
        let trie = || WAF_SRC_V4.get(Key::new(32, *a)).copied();
        if flags & filter::FULL != 0 {
            return tag16(host >> 16).or_else(trie);
        }
        if flags & filter::MID != 0 {
            let word = WAF_SRC_F24.get(t24 >> 6).copied().unwrap_or(0);
            if (word >> (t24 & 63)) & 1 != 0 {
                return tag24(t24, word).or_else(trie);
            }
        }
        if flags & filter::DEEP != 0 && !deep_misses(t24, host & 255) {
            return trie();
        }
        None
    }

    #[inline(always)]
    fn rate_state(k: &u32, bits: u32) -> Option<(*mut RateState, bool)> {
        let set = WAF_RATE_V4.get_ptr_mut(rate_set_v4(*k, bits))?;
        // SAFETY: a valid map value; the slots are fields of it.
        let (s0, s1) = unsafe { (&raw mut (*set).slots[0], &raw mut (*set).slots[1]) };
        let key = *k;
        // SAFETY: both pointers come from the map; see rate.rs on races.
        Some(unsafe {
            claim(
                s0,
                s1,
                |s: *mut RateSlotV4| (*s).used != 0 && (*s).key == key,
                |s| (*s).used != 0,
                |s| (*s).state.seen_ns,
                |s| {
                    (*s).key = key;
                    (*s).used = 1;
                },
                |s| &raw mut (*s).state,
            )
        })
    }

    #[inline(always)]
    fn event_addr(k: &u32) -> [u8; 16] {
        let b = k.to_ne_bytes();
        [b[0], b[1], b[2], b[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    }
}

impl Family for V6 {
    type Addr = [u64; 2];
    const FAMILY: u32 = 6;

    /// The target masks of every set, ORed over the three levels (a byte
    /// per set), and above them the source set's byte of level 0 (bits 32
    /// to 39) and of level 2 (bits 40 to 47) alone (what the directory's
    /// level-1 byte is ORed with).
    #[inline(always)]
    fn lists(a: &[u64; 2]) -> u64 {
        let hi = u64::from_be(a[0]);
        let m = |level| {
            let i = mask_index(level, hi);
            match WAF_V6_MASKS.get(i >> 1) {
                Some(w) => *w >> ((i & 1) * 32),
                None => 0,
            }
        };
        let (l0, l2) = (m(0), m(2));
        let src = |m: u64| (m >> (filter::SET_SOURCE * 8)) & 0xff;
        ((l0 | l2 | m(1)) & 0xffff_ffff) | src(l0) << 32 | src(l2) << 40
    }

    #[inline(always)]
    fn allowed(a: &[u64; 2], lists: u64) -> bool {
        member_v6(a, lists, filter::SET_ALLOW, &WAF_ALLOW_T6, &WAF_ALLOW_V6)
    }

    #[inline(always)]
    fn source_key(a: &[u64; 2], cfg: &XdpConfig) -> [u64; 2] {
        mask_v6(a, cfg.v6_prefix)
    }

    #[inline(always)]
    fn ban_expiry(a: &[u64; 2], bits: u32) -> Option<u64> {
        let (hi, lo) = be(a);
        let b = WAF_BANS_V6.get(ban_bucket_v6(hi, lo, bits))?;
        // SAFETY: as for V4.
        let used = unsafe { core::ptr::read_volatile(&b.used) };
        if used != 0 {
            for i in 0..waf_common::BAN_SLOTS {
                // SAFETY: bucket keys sit at 8-byte aligned offsets.
                if unsafe { wide(&b.keys[i]) } == *a && used & (1 << i) != 0 {
                    return Some(b.expires[i]);
                }
            }
        }
        if b.overflow & ban_fp_v6(hi, lo) == 0 {
            return None;
        }
        // SAFETY: the value is copied out at once.
        unsafe { WAF_BANX_V6.get(bytes(a)) }.map(|e| e.expires_ns)
    }

    #[inline(always)]
    fn prefix_ban_expiry(a: &[u64; 2], lists: u64) -> Option<u64> {
        let (hi, lo) = be(a);
        let byte = set_byte(lists, filter::SET_PBAN);
        match table_v6(hi, lo, byte, filter::SET_PBAN, &WAF_PBAN_T6) {
            Table::Missing => return None,
            // A ban in force is the answer whatever is longer (a longer ban
            // carries its expiry); an expired one is, unless a longer ban
            // only the trie holds may still be in force.
            Table::Found(e) if e == 0 || byte & (1 << TRIE_BIT) == 0 => return Some(e),
            Table::Found(_) | Table::AskTrie => {}
        }
        WAF_PBAN_V6
            .get(Key::new(128, bytes(a)))
            .map(|e| e.expires_ns)
    }

    #[inline(always)]
    fn blocked(a: &[u64; 2], lists: u64) -> bool {
        member_v6(a, lists, filter::SET_BLOCK, &WAF_BLOCK_T6, &WAF_BLOCK_V6)
    }

    #[inline(always)]
    fn source_entry(a: &[u64; 2], lists: u64) -> Option<SourceEntry> {
        let (hi, lo) = be(a);
        let mut byte = set_byte(lists, filter::SET_SOURCE);
        if byte == 0 {
            return None;
        }
        // The directory's byte of the source's /40 in place of the level-1
        // mask's, which names the targets of the whole /32 (and of the /32s
        // sharing its hash): a source beside prefixes of other /40s, or of
        // other /48s of its /40, probes nothing. The level-2 mask's byte
        // only where a prefix longer than /40 lies in the /40: elsewhere
        // its bits are another /48's that shares the hash.
        if let Some(d) = dir_byte(hi) {
            if d == DIR_CLEAR {
                return None;
            }
            let l2 = if d & DIR_LEVEL2 != 0 { lists >> 40 } else { 0 };
            byte = (d & 0xff) | ((lists >> 32) as u32 & 0xff) | (l2 as u32 & 0xff);
        }
        match table_v6(hi, lo, byte, filter::SET_SOURCE, &WAF_SRC_T6) {
            Table::Found(v) => Some(SourceEntry::from_slot(v)),
            Table::Missing => None,
            Table::AskTrie => WAF_SRC_V6.get(Key::new(128, bytes(a))).copied(),
        }
    }

    #[inline(always)]
    fn rate_state(k: &[u64; 2], bits: u32) -> Option<(*mut RateState, bool)> {
        let (hi, lo) = be(k);
        let set = WAF_RATE_V6.get_ptr_mut(rate_set_v6(hi, lo, bits))?;
        // SAFETY: a valid map value; the slots are fields of it.
        let (s0, s1) = unsafe { (&raw mut (*set).slots[0], &raw mut (*set).slots[1]) };
        let key = *k;
        // SAFETY: both pointers come from the map; see rate.rs on races.
        Some(unsafe {
            claim(
                s0,
                s1,
                |s: *mut RateSlotV6| (*s).used != 0 && wide(&raw const (*s).key) == key,
                |s| (*s).used != 0,
                |s| (*s).state.seen_ns,
                |s| {
                    (*s).key = bytes(&key);
                    (*s).used = 1;
                },
                |s| &raw mut (*s).state,
            )
        })
    }

    #[inline(always)]
    fn event_addr(k: &[u64; 2]) -> [u8; 16] {
        bytes(k)
    }
}

/// Keeps the first `prefix` bits of `a` (0 or more than 128 keep all).
#[inline(always)]
fn mask_v6(a: &[u64; 2], prefix: u32) -> [u64; 2] {
    let (mhi, mlo) = if prefix == 0 || prefix >= 128 {
        (u64::MAX, u64::MAX)
    } else if prefix > 64 {
        (u64::MAX, u64::MAX << (128 - prefix))
    } else if prefix == 64 {
        (u64::MAX, 0)
    } else {
        (u64::MAX << (64 - prefix), 0)
    };
    // Masks are big-endian numbers; the address halves are in memory order.
    [a[0] & u64::to_be(mhi), a[1] & u64::to_be(mlo)]
}

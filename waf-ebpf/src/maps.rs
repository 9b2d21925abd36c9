//! The maps of the XDP program and the lookups on them, per address family.
//!
//! Names match `waf_common::map_names`; the daemon pins them by those names.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    helpers::bpf_ktime_get_boot_ns,
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf, lpm_trie::Key},
};
use waf_common::{
    ALLOW_CAPACITY, BAN_CAPACITY, BLOCK_CAPACITY, BanEntry, Counter, EVENTS_BYTES, ListEntry,
    PBAN_CAPACITY, RATE_CAPACITY, RateState, XdpConfig, counter,
};

#[map]
static WAF_CONFIG: Array<XdpConfig> = Array::with_max_entries(1, 0);
#[map]
static WAF_COUNTERS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(counter::COUNT, 0);

#[map]
static WAF_ALLOW_V4: LpmTrie<u32, ListEntry> = LpmTrie::with_max_entries(ALLOW_CAPACITY, 0);
#[map]
static WAF_ALLOW_V6: LpmTrie<[u8; 16], ListEntry> = LpmTrie::with_max_entries(ALLOW_CAPACITY, 0);

// Exact bans are not preallocated: a million slots cost memory only when used.
// A plain hash never evicts: a full map fails the insert in userspace, which
// raises an alarm there instead of losing a ban.
#[map]
static WAF_BAN_V4: HashMap<u32, BanEntry> =
    HashMap::with_max_entries(BAN_CAPACITY, BPF_F_NO_PREALLOC);
#[map]
static WAF_BAN_V6: HashMap<[u8; 16], BanEntry> =
    HashMap::with_max_entries(BAN_CAPACITY, BPF_F_NO_PREALLOC);

#[map]
static WAF_PBAN_V4: LpmTrie<u32, BanEntry> = LpmTrie::with_max_entries(PBAN_CAPACITY, 0);
#[map]
static WAF_PBAN_V6: LpmTrie<[u8; 16], BanEntry> = LpmTrie::with_max_entries(PBAN_CAPACITY, 0);

#[map]
static WAF_BLOCK_V4: LpmTrie<u32, ListEntry> = LpmTrie::with_max_entries(BLOCK_CAPACITY, 0);
#[map]
static WAF_BLOCK_V6: LpmTrie<[u8; 16], ListEntry> = LpmTrie::with_max_entries(BLOCK_CAPACITY, 0);

#[map]
static WAF_RATE_V4: LruHashMap<u32, RateState> = LruHashMap::with_max_entries(RATE_CAPACITY, 0);
#[map]
static WAF_RATE_V6: LruHashMap<[u8; 16], RateState> =
    LruHashMap::with_max_entries(RATE_CAPACITY, 0);

#[map]
static WAF_EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// The runtime configuration (one array entry, always present).
#[inline(always)]
pub fn config() -> Option<&'static XdpConfig> {
    WAF_CONFIG.get(0)
}

/// `CLOCK_BOOTTIME` in nanoseconds: the clock ban expiries are written in.
#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: a helper without arguments.
    unsafe { bpf_ktime_get_boot_ns() }
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

/// The ring buffer of rate events.
#[inline(always)]
pub fn events() -> &'static RingBuf {
    &WAF_EVENTS
}

/// The lookups of one address family.
pub trait Family {
    /// The address as the maps key it: `u32` in network order, or 16 bytes.
    type Addr: Copy;
    /// 4 or 6.
    const FAMILY: u32;
    /// Is the address on the allowlist?
    fn allowed(a: &Self::Addr) -> bool;
    /// The exact ban of this address, if any.
    fn ban(a: &Self::Addr) -> Option<BanEntry>;
    /// The longest prefix ban covering this address, if any.
    fn prefix_ban(a: &Self::Addr) -> Option<BanEntry>;
    /// Is the address on the blocklist?
    fn blocked(a: &Self::Addr) -> bool;
    /// The key rate state is kept under (IPv6 is masked to a prefix).
    fn rate_key(a: &Self::Addr, cfg: &XdpConfig) -> Self::Addr;
    /// The rate state of a source, updated in place.
    fn rate_state(k: &Self::Addr) -> Option<*mut RateState>;
    /// Starts tracking a source (no-op if another CPU just did).
    fn rate_insert(k: &Self::Addr, st: &RateState);
    /// The address as 16 bytes for events (IPv4 in the first four).
    fn event_addr(k: &Self::Addr) -> [u8; 16];
}

/// IPv4 lookups.
pub struct V4;
/// IPv6 lookups.
pub struct V6;

impl Family for V4 {
    type Addr = u32;
    const FAMILY: u32 = 4;

    #[inline(always)]
    fn allowed(a: &u32) -> bool {
        WAF_ALLOW_V4.get(Key::new(32, *a)).is_some()
    }

    #[inline(always)]
    fn ban(a: &u32) -> Option<BanEntry> {
        // SAFETY: the entry is copied out at once; a concurrent delete by
        // userspace can at worst give a stale copy of a ban being lifted.
        unsafe { WAF_BAN_V4.get(a) }.copied()
    }

    #[inline(always)]
    fn prefix_ban(a: &u32) -> Option<BanEntry> {
        WAF_PBAN_V4.get(Key::new(32, *a)).copied()
    }

    #[inline(always)]
    fn blocked(a: &u32) -> bool {
        WAF_BLOCK_V4.get(Key::new(32, *a)).is_some()
    }

    #[inline(always)]
    fn rate_key(a: &u32, _cfg: &XdpConfig) -> u32 {
        *a
    }

    #[inline(always)]
    fn rate_state(k: &u32) -> Option<*mut RateState> {
        WAF_RATE_V4.get_ptr_mut(k)
    }

    #[inline(always)]
    fn rate_insert(k: &u32, st: &RateState) {
        // BPF_NOEXIST: if another CPU raced us, keep its state.
        let _ = WAF_RATE_V4.insert(k, st, aya_ebpf::bindings::BPF_NOEXIST.into());
    }

    #[inline(always)]
    fn event_addr(k: &u32) -> [u8; 16] {
        let b = k.to_ne_bytes();
        [b[0], b[1], b[2], b[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    }
}

impl Family for V6 {
    type Addr = [u8; 16];
    const FAMILY: u32 = 6;

    #[inline(always)]
    fn allowed(a: &[u8; 16]) -> bool {
        WAF_ALLOW_V6.get(Key::new(128, *a)).is_some()
    }

    #[inline(always)]
    fn ban(a: &[u8; 16]) -> Option<BanEntry> {
        // SAFETY: as for V4::ban.
        unsafe { WAF_BAN_V6.get(a) }.copied()
    }

    #[inline(always)]
    fn prefix_ban(a: &[u8; 16]) -> Option<BanEntry> {
        WAF_PBAN_V6.get(Key::new(128, *a)).copied()
    }

    #[inline(always)]
    fn blocked(a: &[u8; 16]) -> bool {
        WAF_BLOCK_V6.get(Key::new(128, *a)).is_some()
    }

    #[inline(always)]
    fn rate_key(a: &[u8; 16], cfg: &XdpConfig) -> [u8; 16] {
        mask_v6(a, cfg.rate_v6_prefix)
    }

    #[inline(always)]
    fn rate_state(k: &[u8; 16]) -> Option<*mut RateState> {
        WAF_RATE_V6.get_ptr_mut(k)
    }

    #[inline(always)]
    fn rate_insert(k: &[u8; 16], st: &RateState) {
        let _ = WAF_RATE_V6.insert(k, st, aya_ebpf::bindings::BPF_NOEXIST.into());
    }

    #[inline(always)]
    fn event_addr(k: &[u8; 16]) -> [u8; 16] {
        *k
    }
}

/// Keeps the first `prefix` bits of `a` (0 or more than 128 keep all).
#[inline(always)]
fn mask_v6(a: &[u8; 16], prefix: u32) -> [u8; 16] {
    let hi = u64::from_be_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]);
    let lo = u64::from_be_bytes([a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]]);
    let (mhi, mlo) = if prefix == 0 || prefix >= 128 {
        (u64::MAX, u64::MAX)
    } else if prefix > 64 {
        (u64::MAX, u64::MAX << (128 - prefix))
    } else if prefix == 64 {
        (u64::MAX, 0)
    } else {
        (u64::MAX << (64 - prefix), 0)
    };
    let h = (hi & mhi).to_be_bytes();
    let l = (lo & mlo).to_be_bytes();
    [
        h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], l[0], l[1], l[2], l[3], l[4], l[5], l[6],
        l[7],
    ]
}

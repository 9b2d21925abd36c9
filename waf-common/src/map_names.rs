//! Names of the maps in the object file (and of their pins in the bpffs
//! directory). Kept within the kernel's 15-character object name limit.

/// [`crate::XdpConfig`] in an array of one entry.
pub const CONFIG: &str = "WAF_CONFIG";
/// Per-CPU [`crate::Counter`] array indexed by [`crate::counter`].
pub const COUNTERS: &str = "WAF_COUNTERS";
/// Ring buffer of [`crate::RateEvent`] records.
pub const EVENTS: &str = "WAF_EVENTS";
/// One `u64`: the jiffies `waf_clock` read (not pinned: scratch).
pub const CLOCK: &str = "WAF_CLOCK";

/// IPv4 allowlist: LPM trie of `u32` (network order) -> [`crate::ListEntry`].
pub const ALLOW_V4: &str = "WAF_ALLOW_V4";
/// IPv6 allowlist: LPM trie of `[u8; 16]` -> [`crate::ListEntry`].
pub const ALLOW_V6: &str = "WAF_ALLOW_V6";
/// IPv4 allowlist bitmap of fully covered /24s.
pub const ALLOW_F24: &str = "WAF_ALLOW_F24";
/// IPv6 allowlist table: array of [`crate::prefix6::PrefixBucketV6`].
pub const ALLOW_T6: &str = "WAF_ALLOW_T6";

/// IPv4 blocklist: LPM trie -> [`crate::ListEntry`].
pub const BLOCK_V4: &str = "WAF_BLOCK_V4";
/// IPv6 blocklist: LPM trie -> [`crate::ListEntry`].
pub const BLOCK_V6: &str = "WAF_BLOCK_V6";
/// IPv4 blocklist bitmap of fully covered /24s.
pub const BLOCK_F24: &str = "WAF_BLOCK_F24";
/// IPv6 blocklist table: array of [`crate::prefix6::PrefixBucketV6`].
pub const BLOCK_T6: &str = "WAF_BLOCK_T6";

/// IPv4 prefix bans: LPM trie -> [`crate::BanEntry`].
pub const PBAN_V4: &str = "WAF_PBAN_V4";
/// IPv6 prefix bans: LPM trie -> [`crate::BanEntry`].
pub const PBAN_V6: &str = "WAF_PBAN_V6";
/// The IPv4 /16 flags of the allowlist, the blocklist and the prefix
/// bans, side by side (see [`crate::filter`]): one load per packet
/// answers for all three.
pub const LISTS_F16: &str = "WAF_LISTS_F16";
/// IPv6 prefix-ban table: array of [`crate::prefix6::PrefixBucketV6`].
pub const PBAN_T6: &str = "WAF_PBAN_T6";

/// Source policies, IPv4: LPM trie -> [`crate::SourceEntry`].
pub const SRC_V4: &str = "WAF_SRC_V4";
/// Source policies, IPv6: LPM trie -> [`crate::SourceEntry`].
pub const SRC_V6: &str = "WAF_SRC_V6";
/// Source policies, IPv4 bitmap of fully covered /24s.
pub const SRC_F24: &str = "WAF_SRC_F24";
/// Source policies, IPv4 bitmap of the /24s that hold prefixes longer
/// than /24 ([`crate::filter::DEEP24_SLOTS`]).
pub const SRC_D24: &str = "WAF_SRC_D24";
/// Per word of [`SRC_D24`]: the bits set in the words before it (the deep
/// table's slot of the word's first /24).
pub const SRC_RANK: &str = "WAF_SRC_RANK";
/// The deep /24 table: per slot, the 256 addresses covered (`[u64; 4]`).
pub const SRC_DEEP: &str = "WAF_SRC_DEEP";
/// One `u64`: [`crate::filter::DEEP_READY`] or `DEEP_REBUILDING` (for
/// the tag tables too).
pub const SRC_DMODE: &str = "WAF_SRC_DMODE";
/// The tag of each /16 a source-policy entry of /16 or shorter covers
/// ([`crate::SourceEntry::to_tag16`], four a word).
pub const SRC_T16: &str = "WAF_SRC_T16";
/// Per word of [`SRC_F24`]: the bits set in the words before it.
pub const SRC_R24: &str = "WAF_SRC_R24";
/// The tag of each covered /24, in address order (four a word).
pub const SRC_TAG24: &str = "WAF_SRC_TAG24";
/// Source policies, IPv6 table: array of [`crate::prefix6::PrefixBucketV6`]
/// (slot values: [`crate::SourceEntry::to_slot`]).
pub const SRC_T6: &str = "WAF_SRC_T6";
/// Source policies, IPv6 directory: `u64` per level-1 mask index
/// ([`crate::prefix6::DIR_ENTRIES`]: the /32s the set's level-1 targets
/// split, and their slots in [`SRC_SUB6`]).
pub const SRC_DIR6: &str = "WAF_SRC_DIR6";
/// Source policies, IPv6 directory slots: per /32, the set's mask byte of
/// each of its /40s and its cover bitmap ([`crate::prefix6::DirSlotV6`]).
pub const SRC_SUB6: &str = "WAF_SRC_SUB6";
/// Source policies, IPv6 directory cover bitmaps: per /40, the /48s a
/// prefix covers or holds ([`crate::prefix6::DirCoverV6`]).
pub const SRC_COV6: &str = "WAF_SRC_COV6";
/// Per-CPU [`crate::Counter`] per source-policy tag ([`crate::SOURCE_TAGS`]).
pub const SRC_COUNTS: &str = "WAF_SRC_COUNTS";
/// Interfaces (ifindex -> 1) on which bogon sources are dropped.
pub const SRC_IFACES: &str = "WAF_SRC_IFACES";

/// The IPv6 target masks of the four sets ([`crate::prefix6`]).
pub const V6_MASKS: &str = "WAF_V6_MASKS";
/// The IPv6 plans of the three sets: array of [`crate::prefix6::V6Plan`]
/// indexed by [`crate::filter::SET_ALLOW`] and the others.
pub const V6_PLAN: &str = "WAF_V6_PLAN";

/// Exact IPv4 bans: array of [`crate::BanBucketV4`] (8-way buckets).
pub const BANS_V4: &str = "WAF_BANS_V4";
/// Exact IPv6 bans: array of [`crate::BanBucketV6`].
pub const BANS_V6: &str = "WAF_BANS_V6";
/// IPv4 bans whose bucket is full: hash of `u32` -> [`crate::BanEntry`].
pub const BANX_V4: &str = "WAF_BANX_V4";
/// IPv6 bans whose bucket is full: hash of `[u8; 16]` -> [`crate::BanEntry`].
pub const BANX_V6: &str = "WAF_BANX_V6";

/// Per-source rate state for IPv4: array of [`crate::RateSlotV4`].
pub const RATE_V4: &str = "WAF_RATE_V4";
/// Per-source rate state for IPv6 prefixes: array of [`crate::RateSlotV6`].
pub const RATE_V6: &str = "WAF_RATE_V6";

/// Every map, in a stable order (for pinning, adopting and detaching).
pub const ALL: [&str; 39] = [
    CONFIG, COUNTERS, EVENTS, ALLOW_V4, ALLOW_V6, ALLOW_F24, ALLOW_T6, BLOCK_V4, BLOCK_V6,
    BLOCK_F24, BLOCK_T6, PBAN_V4, PBAN_V6, LISTS_F16, PBAN_T6, SRC_V4, SRC_V6, SRC_F24, SRC_D24,
    SRC_RANK, SRC_DEEP, SRC_DMODE, SRC_T16, SRC_R24, SRC_TAG24, SRC_T6, SRC_DIR6, SRC_SUB6,
    SRC_COV6, SRC_COUNTS, SRC_IFACES, V6_MASKS, V6_PLAN, BANS_V4, BANS_V6, BANX_V4, BANX_V6,
    RATE_V4, RATE_V6,
];

/// Maps of earlier layouts that `waf detach` also unpins.
pub const RETIRED: [&str; 6] = [
    "WAF_ALLOW_F16",
    "WAF_BLOCK_F16",
    "WAF_PBAN_F16",
    "WAF_ALLOW_F6",
    "WAF_BLOCK_F6",
    "WAF_PBAN_F6",
];

//! Sizes of the maps both sides agree on: ban buckets and overflow hashes,
//! list and prefix-ban tries, rate sets, the ring buffer.

/// Exact bans per family the bucket arrays are sized for by default
/// (`[capacity] bans`; more go to the overflow hash).
pub const BANS_CAPACITY: u32 = 1 << 18;
/// log2 of the default number of exact-ban buckets per family.
pub const BAN_BUCKET_BITS: u32 = 16;
/// The fewest bucket bits (1,024 buckets).
pub const BAN_BUCKET_BITS_MIN: u32 = 10;
/// The most bucket bits (4,194,304 buckets: room for 16,777,216 bans at
/// half the slots).
pub const BAN_BUCKET_BITS_MAX: u32 = 22;
/// Exact-ban buckets per family by default (8 slots each).
pub const BAN_BUCKETS: u32 = 1 << BAN_BUCKET_BITS;
/// Slots per exact-ban bucket.
pub const BAN_SLOTS: usize = 8;
/// Placeholder capacity of each overflow ban hash (bans whose bucket is
/// full): the loader sizes them from `[capacity] bans`.
pub const BANX_CAPACITY: u32 = 1 << 20;
/// Capacity of the IPv4 prefix-ban trie by default.
pub const PBAN_CAPACITY: u32 = 1 << 16;
/// Capacity of the IPv4 blocklist trie by default.
pub const BLOCK_CAPACITY: u32 = 1 << 18;
/// Capacity of each IPv6 CIDR set by default (allowlist, blocklist,
/// prefix bans: `[capacity] *_v6`).
pub const V6_LIST_CAPACITY: u32 = 1 << 16;
/// Capacity of the IPv4 source-policy trie by default (a whole country
/// database compiles into a few hundred thousand prefixes; the trie is not
/// preallocated).
pub const SOURCE_CAPACITY: u32 = 1 << 20;
/// Capacity of the IPv6 source-policy set by default (its table is
/// preallocated, 52 bytes a prefix: a whole IPv6 country database wants
/// `[capacity] sources_v6` of 262,144 or more).
pub const SOURCE_V6_CAPACITY: u32 = 1 << 16;
/// Capacity of the IPv4 allowlist trie by default.
pub const ALLOW_CAPACITY: u32 = 1 << 16;
/// Sources per family the rate tables hold by default (`[capacity]
/// rate_sources`; 2-way set associative: a new source takes the slot of
/// its set seen least recently).
pub const RATE_SOURCES: u32 = 1 << 16;
/// log2 of the default number of rate sets per family (two slots each).
pub const RATE_SET_BITS: u32 = 15;
/// The fewest rate-set bits (2,048 sources).
pub const RATE_SET_BITS_MIN: u32 = 10;
/// The most rate-set bits (8,388,608 sources).
pub const RATE_SET_BITS_MAX: u32 = 22;
/// Entries of each rate array by default: sets of two slots (one load per
/// packet).
pub const RATE_SETS: u32 = 1 << RATE_SET_BITS;
/// Ring buffer size in bytes (a power of two and a multiple of the page size).
pub const EVENTS_BYTES: u32 = 1 << 22;

/// Flag for array maps userspace maps into memory (`BPF_F_MMAPABLE`).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

//! Sizes of the maps both sides agree on: ban buckets and overflow hashes,
//! list and prefix-ban tries, rate sets, the ring buffer.

/// log2 of the number of exact-ban buckets per family.
pub const BAN_BUCKET_BITS: u32 = 16;
/// Exact-ban buckets per family (8 slots each).
pub const BAN_BUCKETS: u32 = 1 << BAN_BUCKET_BITS;
/// Slots per exact-ban bucket.
pub const BAN_SLOTS: usize = 8;
/// Capacity of each overflow ban hash (bans whose bucket is full). With the
/// buckets this gives each family room for more than a million bans.
pub const BANX_CAPACITY: u32 = 1 << 20;
/// Capacity of each prefix-ban trie.
pub const PBAN_CAPACITY: u32 = 1 << 16;
/// Capacity of each blocklist trie.
pub const BLOCK_CAPACITY: u32 = 1 << 18;
/// Capacity of each allowlist trie.
pub const ALLOW_CAPACITY: u32 = 1 << 16;
/// log2 of the number of rate-state slots per family.
pub const RATE_SLOT_BITS: u32 = 17;
/// Rate-state slots per family (2-way set associative).
pub const RATE_SLOTS: u32 = 1 << RATE_SLOT_BITS;
/// Entries of each rate array: sets of two slots (one load per packet).
pub const RATE_SETS: u32 = RATE_SLOTS / 2;
/// Ring buffer size in bytes (a power of two and a multiple of the page size).
pub const EVENTS_BYTES: u32 = 1 << 22;

/// Flag for array maps userspace maps into memory (`BPF_F_MMAPABLE`).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

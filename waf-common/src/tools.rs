//! The tools object (`waf-tools`): programs the daemon never attaches, so
//! that a daemon start creates none of their maps and `waf gen` none of the
//! firewall's. It holds the generator's program and maps (`r#gen`)
//! and the benchmarks' floor and reference filter (below).

/// Name of a trivial program that only returns `XDP_DROP`: the floor
/// the benchmarks compare against.
pub const FLOOR_PROGRAM_NAME: &str = "waf_floor";
/// Name of the benchmarks' reference filter: the textbook XDP ban
/// filter, one hash lookup of the IPv4 source per packet.
pub const REFERENCE_PROGRAM_NAME: &str = "waf_reference";
/// The reference filter's map: `u32` IPv4 source (network order) ->
/// `u64`. Only benchmarks fill it; it is never pinned.
pub const REFERENCE_MAP_NAME: &str = "WAF_REF_BANS";
/// Capacity of the reference filter's map (room for the benchmarks' large
/// scale; not preallocated).
pub const REFERENCE_CAPACITY: u32 = 1 << 20;
/// Name of the benchmarks' textbook CIDR filter: one LPM trie lookup of
/// the source (IPv4 or IPv6), drop on a hit, what a filter of country or
/// cloud ranges is without this project's tables.
pub const REFERENCE_LPM_PROGRAM_NAME: &str = "waf_reference_lpm";
/// Its IPv4 trie: `u32` prefix (network order) -> `u8`.
pub const REFERENCE_LPM4_MAP_NAME: &str = "WAF_REF_LPM4";
/// Its IPv6 trie: 16-byte prefix -> `u8`.
pub const REFERENCE_LPM6_MAP_NAME: &str = "WAF_REF_LPM6";

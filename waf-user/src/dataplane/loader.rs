//! Loading the embedded XDP object: maps pinned in (and adopted from) a
//! bpffs directory, the layout of pinned maps checked against this build
//! before anything is loaded against them, and their removal.

use std::{
    io,
    path::{Path, PathBuf},
};

use aya::{Ebpf, EbpfLoader, maps::MapData, programs::Xdp};
use waf_common::{
    ABI_VERSION, BanBucketV4, BanBucketV6, BanEntry, Counter, ListEntry, PROGRAM_NAME, RateSetV4,
    RateSetV6, SourceEntry, XdpConfig, counter, filter, map_names, prefix6,
};

use super::{
    Dataplane, DataplaneError, Result, bpffs::ensure_bpffs, maps::Maps, maps::take,
    settings::Settings,
};

/// The firewall's XDP object (`waf-xdp`) built by build.rs from the waf-ebpf
/// crate: `waf_xdp`, `waf_clock` and the firewall's maps. The programs the
/// daemon never attaches are in the tools object (`gen::Tools`).
pub static XDP_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/waf-xdp"));

/// Where and how to load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Pin maps and links here (a bpffs directory, mounted if needed) and
    /// adopt what is pinned there. None: private maps, links detached when
    /// the [`Dataplane`] is dropped (tests, benchmarks).
    pub pin_dir: Option<PathBuf>,
    /// Sizes of the maps that take them from the config.
    pub capacity: Capacity,
}

/// Sizes of the maps, per address family: the config's `[capacity]`
/// (validated there). The CIDR tries are not preallocated: a large
/// capacity costs kernel memory only as entries are added (about 36 bytes
/// an IPv4 CIDR, `cargo xtask bench bans`). What is preallocated: each
/// set's IPv6 table (twice as many slots as its IPv6 capacity, 54 bytes a
/// CIDR), the ban buckets (twice as many slots as `bans`: 28 bytes a ban
/// for IPv4, 52 for IPv6), the overflow hashes' heads (room for `bans`
/// more: 16 bytes each, rounded up to a power of two) and the rate tables (88 bytes a source for
/// IPv4, 104 for IPv6). Pinned maps of another size are refused at load
/// ([`DataplaneError::Incompatible`]: `waf detach`, then start again; the
/// journal and the config restore what they held).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Capacity {
    /// IPv4 allowlist CIDRs.
    pub allowlist: u32,
    /// IPv6 allowlist CIDRs.
    pub allowlist_v6: u32,
    /// IPv4 blocklist CIDRs.
    pub blocklist: u32,
    /// IPv6 blocklist CIDRs.
    pub blocklist_v6: u32,
    /// IPv4 prefix bans (bans of a range rather than one address).
    pub prefix_bans: u32,
    /// IPv6 prefix bans (of another length than `[ban_policy]
    /// ipv6_prefix`; bans of that length are exact bans).
    pub prefix_bans_v6: u32,
    /// IPv4 source-policy prefixes (`[sources]`: countries, networks,
    /// cloud ranges, bogons, compiled into disjoint prefixes).
    pub sources: u32,
    /// IPv6 source-policy prefixes.
    pub sources_v6: u32,
    /// Exact bans per family the bucket arrays are sized for (twice as many
    /// slots); the bans of a full bucket go to the overflow hash (room for
    /// as many again), which costs a lookup for every packet whose bucket
    /// overflowed.
    pub bans: u32,
    /// Sources per family whose rate state the rate tables hold (2-way
    /// set associative: past it, a new source takes the slot of the
    /// source of its set seen least recently, which starts afresh).
    pub rate_sources: u32,
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            allowlist: waf_common::ALLOW_CAPACITY,
            allowlist_v6: waf_common::V6_LIST_CAPACITY,
            blocklist: waf_common::BLOCK_CAPACITY,
            blocklist_v6: waf_common::V6_LIST_CAPACITY,
            prefix_bans: waf_common::PBAN_CAPACITY,
            prefix_bans_v6: waf_common::V6_LIST_CAPACITY,
            sources: waf_common::SOURCE_CAPACITY,
            sources_v6: waf_common::SOURCE_V6_CAPACITY,
            bans: waf_common::BANS_CAPACITY,
            rate_sources: waf_common::RATE_SOURCES,
        }
    }
}

impl Capacity {
    /// The most entries one trie may be given.
    pub const MAX: u32 = 1 << 24;

    /// The configured size of trie `name`, if it is one of them.
    pub(super) fn of(&self, name: &str) -> Option<u32> {
        use map_names as n;
        Some(match name {
            n::ALLOW_V4 => self.allowlist,
            n::ALLOW_V6 => self.allowlist_v6,
            n::BLOCK_V4 => self.blocklist,
            n::BLOCK_V6 => self.blocklist_v6,
            n::PBAN_V4 => self.prefix_bans,
            n::PBAN_V6 => self.prefix_bans_v6,
            n::SRC_V4 => self.sources,
            n::SRC_V6 => self.sources_v6,
            _ => return None,
        })
    }

    /// log2 of the exact-ban buckets per family.
    pub fn ban_bucket_bits(&self) -> u32 {
        waf_common::ban_bucket_bits(self.bans)
    }

    /// The exact-ban buckets per family.
    pub fn ban_buckets(&self) -> u32 {
        1 << self.ban_bucket_bits()
    }

    /// log2 of the rate sets per family.
    pub fn rate_set_bits(&self) -> u32 {
        waf_common::rate_set_bits(self.rate_sources)
    }

    /// The entries of bucket array, IPv6 table or rate array `name`, if it
    /// is one of them.
    fn table_of(&self, name: &str) -> Option<u32> {
        use map_names as n;
        if name == n::BANS_V4 || name == n::BANS_V6 {
            return Some(self.ban_buckets());
        }
        // The overflow hashes are not preallocated, but their bucket heads
        // are (16 bytes each, a power of two at least `bans`).
        if name == n::BANX_V4 || name == n::BANX_V6 {
            return Some(self.bans);
        }
        if name == n::RATE_V4 || name == n::RATE_V6 {
            return Some(1 << self.rate_set_bits());
        }
        if name == n::SRC_SUB6 {
            return Some(prefix6::dir_slots(self.sources_v6));
        }
        if name == n::SRC_COV6 {
            return Some(prefix6::dir_covers(self.sources_v6));
        }
        let capacity = match name {
            n::ALLOW_T6 => self.allowlist_v6,
            n::BLOCK_T6 => self.blocklist_v6,
            n::PBAN_T6 => self.prefix_bans_v6,
            n::SRC_T6 => self.sources_v6,
            _ => return None,
        };
        Some(prefix6::table_buckets(capacity))
    }
}

impl Dataplane {
    /// Loads the embedded XDP object (see [`LoadOptions`]).
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        raise_memlock();
        let mut loader = EbpfLoader::new();
        for name in map_names::ALL {
            if let Some(n) = opts.capacity.of(name) {
                loader.map_max_entries(name, n);
            }
            if let Some(n) = opts.capacity.table_of(name) {
                loader.map_max_entries(name, n);
            }
        }
        if let Some(dir) = &opts.pin_dir {
            ensure_bpffs(dir)?;
            check_pinned_layout(dir, &opts.capacity)?;
            for name in map_names::ALL {
                loader.map_pin_path(name, dir.join(name));
            }
        }
        let mut ebpf = loader.load(XDP_OBJECT)?;
        let prog: &mut Xdp = program(&mut ebpf, PROGRAM_NAME)?;
        prog.load()?;
        let mut maps = Maps::from_ebpf(&mut ebpf, &opts.capacity)?;
        let clock = take(&mut ebpf, map_names::CLOCK)?;
        let cfg = maps.xdp_config()?;
        if cfg.abi == 0 {
            // Fresh maps: an all-pass configuration until told otherwise.
            maps.set_xdp_config(&Settings::default().to_config()?)?;
        } else if cfg.abi != ABI_VERSION {
            return Err(DataplaneError::Incompatible {
                dir: opts.pin_dir.clone().unwrap_or_default(),
                what: format!("ABI {} pinned, {} built", cfg.abi, ABI_VERSION),
            });
        }
        Ok(Self {
            ebpf,
            maps,
            clock,
            pin_dir: opts.pin_dir.clone(),
            attachments: Vec::new(),
        })
    }

    /// The XDP program (for `BPF_PROG_TEST_RUN`).
    pub fn program(&mut self) -> Result<&mut Xdp> {
        program(&mut self.ebpf, PROGRAM_NAME)
    }
}

/// Program `name` of the loaded object, as an XDP program.
pub(super) fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| DataplaneError::Invalid(format!("program {name} missing from object")))?;
    Ok(prog.try_into()?)
}

/// Removes every pinned map of ours from `dir`, and `dir` if then empty.
pub fn remove_pinned_maps(dir: &Path) -> Result<()> {
    for name in map_names::ALL.iter().chain(map_names::RETIRED.iter()) {
        let p = dir.join(name);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(DataplaneError::Io { path: p, source }),
        }
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// Expected (key size, value size, max entries) of each map, to refuse
/// pinned maps of another layout before loading against them. `None` for
/// the ring buffer, which has neither.
fn expected_layout(name: &str, capacity: &Capacity) -> Option<(u32, u32, u32)> {
    use std::mem::size_of;
    let sz = |n: usize| n as u32;
    let lpm = |data: usize| (4 + data) as u32;
    let cap = |name: &str| capacity.of(name).unwrap_or(0);
    let rate_sets = 1 << capacity.rate_set_bits();
    Some(match name {
        map_names::CONFIG => (4, sz(size_of::<XdpConfig>()), 1),
        map_names::COUNTERS => (4, sz(size_of::<Counter>()), counter::COUNT),
        map_names::ALLOW_V4 => (lpm(4), sz(size_of::<ListEntry>()), cap(name)),
        map_names::ALLOW_V6 => (lpm(16), sz(size_of::<ListEntry>()), cap(name)),
        map_names::BLOCK_V4 => (lpm(4), sz(size_of::<ListEntry>()), cap(name)),
        map_names::BLOCK_V6 => (lpm(16), sz(size_of::<ListEntry>()), cap(name)),
        map_names::PBAN_V4 => (lpm(4), sz(size_of::<BanEntry>()), cap(name)),
        map_names::PBAN_V6 => (lpm(16), sz(size_of::<BanEntry>()), cap(name)),
        map_names::LISTS_F16 => (4, 8, filter::F16_WORDS),
        map_names::SRC_V4 => (lpm(4), sz(size_of::<SourceEntry>()), cap(name)),
        map_names::SRC_V6 => (lpm(16), sz(size_of::<SourceEntry>()), cap(name)),
        map_names::SRC_COUNTS => (4, sz(size_of::<Counter>()), waf_common::SOURCE_TAGS),
        map_names::SRC_IFACES => (4, 4, 64),
        map_names::ALLOW_F24
        | map_names::BLOCK_F24
        | map_names::SRC_F24
        | map_names::SRC_D24
        | map_names::SRC_RANK
        | map_names::SRC_R24 => (4, 8, filter::F24_WORDS),
        map_names::SRC_T16 => (4, 8, filter::T16_WORDS),
        map_names::SRC_TAG24 => (4, 8, filter::COVER24_SLOTS / 4),
        map_names::SRC_DEEP => (4, 32, filter::DEEP24_SLOTS),
        map_names::SRC_DMODE => (4, 8, 1),
        map_names::ALLOW_T6 | map_names::BLOCK_T6 | map_names::PBAN_T6 | map_names::SRC_T6 => (
            4,
            sz(size_of::<prefix6::PrefixBucketV6>()),
            capacity.table_of(name).unwrap_or(0),
        ),
        map_names::SRC_DIR6 => (4, 8, prefix6::DIR_ENTRIES),
        map_names::SRC_SUB6 => (
            4,
            sz(size_of::<prefix6::DirSlotV6>()),
            prefix6::dir_slots(capacity.sources_v6),
        ),
        map_names::SRC_COV6 => (
            4,
            sz(size_of::<prefix6::DirCoverV6>()),
            prefix6::dir_covers(capacity.sources_v6),
        ),
        map_names::V6_MASKS => (4, 8, prefix6::MASK_WORDS),
        map_names::V6_PLAN => (4, sz(size_of::<prefix6::V6Plan>()), prefix6::PLANS),
        map_names::BANS_V4 => (4, sz(size_of::<BanBucketV4>()), capacity.ban_buckets()),
        map_names::BANS_V6 => (4, sz(size_of::<BanBucketV6>()), capacity.ban_buckets()),
        map_names::BANX_V4 => (4, sz(size_of::<BanEntry>()), capacity.bans),
        map_names::BANX_V6 => (16, sz(size_of::<BanEntry>()), capacity.bans),
        map_names::RATE_V4 => (4, sz(size_of::<RateSetV4>()), rate_sets),
        map_names::RATE_V6 => (4, sz(size_of::<RateSetV6>()), rate_sets),
        _ => return None,
    })
}

fn check_pinned_layout(dir: &Path, capacity: &Capacity) -> Result<()> {
    if let Some(old) = map_names::RETIRED.iter().find(|n| dir.join(n).exists()) {
        return Err(DataplaneError::Incompatible {
            dir: dir.into(),
            what: format!("{old} is a map of an earlier layout"),
        });
    }
    for name in map_names::ALL {
        let p = dir.join(name);
        if !p.exists() {
            continue;
        }
        let data = MapData::from_pin(&p).map_err(|source| DataplaneError::Map { name, source })?;
        let info = data
            .info()
            .map_err(|source| DataplaneError::Map { name, source })?;
        let Some((k, v, n)) = expected_layout(name, capacity) else {
            continue;
        };
        let got = (info.key_size(), info.value_size(), info.max_entries());
        if got != (k, v, n) {
            return Err(DataplaneError::Incompatible {
                dir: dir.into(),
                what: format!(
                    "{name} has key/value size {}/{} and {} entries, expected {k}/{v} and {n}",
                    got.0, got.1, got.2
                ),
            });
        }
    }
    Ok(())
}

/// Raises RLIMIT_MEMLOCK where allowed; kernels since 5.11 account BPF memory
/// to the cgroup instead, so failure is not fatal.
fn raise_memlock() {
    use nix::sys::resource::{RLIM_INFINITY, Resource, setrlimit};
    let _ = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY);
}

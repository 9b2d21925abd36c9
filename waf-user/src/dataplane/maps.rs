//! Typed handles for every map of the XDP program ([`Maps`]), taken from the
//! loaded object, and a read-only view of the counters ([`CountersReader`])
//! for readers outside the firewall's owner.

use std::{net::IpAddr, path::PathBuf};

use aya::{
    Ebpf,
    maps::{Array, Map, MapData, MapError, PerCpuArray, RingBuf},
};
use ipnet::{IpNet, Ipv6Net};
use waf_common::{
    BanBucketV4, BanBucketV6, BanEntry, Counter, ListEntry, RateSetV4, RateSetV6, RateState,
    SourceEntry, XdpConfig, counter, filter, map_names, prefix6,
};

use super::{
    DataplaneError, Result,
    bans::{BanTable, HostBans},
    deep24::Deep24,
    dir6::Dir6,
    mmap::MmapArray,
    sets::{CidrSet, Kind},
    settings::Settings,
    table6::{Shared, Table6},
};

/// Typed handles for every map of the XDP program.
pub struct Maps {
    /// The runtime configuration (index 0).
    pub config: Array<MapData, XdpConfig>,
    /// Per-CPU verdict and auxiliary counters.
    pub counters: PerCpuArray<MapData, Counter>,
    /// Allowlist (checked first; always passes).
    pub allow: CidrSet<ListEntry>,
    /// Blocklist.
    pub block: CidrSet<ListEntry>,
    /// Prefix bans (expiry in the value).
    pub prefix_bans: CidrSet<BanEntry>,
    /// Source policies (disjoint prefixes; tag and flags in the value).
    pub sources: CidrSet<SourceEntry>,
    /// Per-CPU counters per source-policy tag.
    pub source_counts: PerCpuArray<MapData, Counter>,
    /// The interfaces (ifindex) on which bogons are dropped.
    pub bogon_ifaces: aya::maps::HashMap<MapData, u32, u32>,
    /// Exact-address bans.
    pub bans: HostBans,
    /// Per-source rate state, IPv4.
    pub rate_v4: Array<MapData, RateSetV4>,
    /// Per-source rate state, IPv6 (masked to the configured prefix).
    pub rate_v6: Array<MapData, RateSetV6>,
    /// The ring buffer of rate events, until someone takes it.
    pub events: Option<RingBuf<MapData>>,
    /// log2 of the exact-ban buckets (written into every config entry).
    ban_bucket_bits: u32,
    /// log2 of the rate sets (written into every config entry).
    rate_set_bits: u32,
    /// The IPv6 prefix the program masks sources to for exact bans: IPv6
    /// bans of this length are exact bans, keyed by their network address.
    v6_exact: u8,
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<Map> {
    ebpf.take_map(name).ok_or(DataplaneError::Map {
        name,
        source: MapError::InvalidName { name: name.into() },
    })
}

/// Takes map `name` out of the loaded object as a `T`.
pub(super) fn take<T: TryFrom<Map, Error = MapError>>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<T> {
    T::try_from(take_map(ebpf, name)?).map_err(|source| DataplaneError::Map { name, source })
}

fn mapped<T>(ebpf: &mut Ebpf, name: &'static str, len: u32) -> Result<MmapArray<T>> {
    MmapArray::new(name, take_map(ebpf, name)?, len)
}

impl Maps {
    /// Takes every map of the firewall out of the loaded object.
    pub(super) fn from_ebpf(ebpf: &mut Ebpf, capacity: &super::Capacity) -> Result<Self> {
        use map_names as n;
        // The four sets share the /16 flag array, a nibble each.
        let f16 = std::sync::Arc::new(mapped(ebpf, n::LISTS_F16, filter::F16_WORDS)?);
        // And the IPv6 tables their masks and plans.
        let shared = Shared {
            masks: std::sync::Arc::new(mapped(ebpf, n::V6_MASKS, prefix6::MASK_WORDS)?),
            plans: std::sync::Arc::new(mapped(ebpf, n::V6_PLAN, prefix6::PLANS)?),
        };
        let mut table = |set: u32, name: &'static str, capacity: u32| -> Result<Table6> {
            let buckets = prefix6::table_buckets(capacity);
            Ok(Table6::new(
                set,
                shared.clone(),
                mapped(ebpf, name, buckets)?,
            ))
        };
        let t_allow = table(filter::SET_ALLOW, n::ALLOW_T6, capacity.allowlist_v6)?;
        let t_block = table(filter::SET_BLOCK, n::BLOCK_T6, capacity.blocklist_v6)?;
        let t_pban = table(filter::SET_PBAN, n::PBAN_T6, capacity.prefix_bans_v6)?;
        // The source set's IPv6 table keeps a directory of the /32s its
        // level-1 targets split (country databases split many).
        let t_src = table(filter::SET_SOURCE, n::SRC_T6, capacity.sources_v6)?.with_dir(Dir6::new(
            mapped(ebpf, n::SRC_DIR6, prefix6::DIR_ENTRIES)?,
            mapped(ebpf, n::SRC_SUB6, prefix6::dir_slots(capacity.sources_v6))?,
            mapped(ebpf, n::SRC_COV6, prefix6::dir_covers(capacity.sources_v6))?,
        ));
        let allow = CidrSet::new(
            [n::ALLOW_V4, n::ALLOW_V6],
            [capacity.allowlist, capacity.allowlist_v6],
            take(ebpf, n::ALLOW_V4)?,
            take(ebpf, n::ALLOW_V6)?,
            (f16.clone(), filter::SET_ALLOW),
            t_allow,
            Kind::Membership {
                f24: mapped(ebpf, n::ALLOW_F24, filter::F24_WORDS)?,
                deep: None,
            },
        )?;
        let block = CidrSet::new(
            [n::BLOCK_V4, n::BLOCK_V6],
            [capacity.blocklist, capacity.blocklist_v6],
            take(ebpf, n::BLOCK_V4)?,
            take(ebpf, n::BLOCK_V6)?,
            (f16.clone(), filter::SET_BLOCK),
            t_block,
            Kind::Membership {
                f24: mapped(ebpf, n::BLOCK_F24, filter::F24_WORDS)?,
                deep: None,
            },
        )?;
        let prefix_bans = CidrSet::new(
            [n::PBAN_V4, n::PBAN_V6],
            [capacity.prefix_bans, capacity.prefix_bans_v6],
            take(ebpf, n::PBAN_V4)?,
            take(ebpf, n::PBAN_V6)?,
            (f16.clone(), filter::SET_PBAN),
            t_pban,
            Kind::Prefilter,
        )?;
        let sources = CidrSet::new(
            [n::SRC_V4, n::SRC_V6],
            [capacity.sources, capacity.sources_v6],
            take(ebpf, n::SRC_V4)?,
            take(ebpf, n::SRC_V6)?,
            (f16, filter::SET_SOURCE),
            t_src,
            // A country database has many ranges longer than /24: the deep
            // /24 table answers for them without the trie.
            Kind::Membership {
                f24: mapped(ebpf, n::SRC_F24, filter::F24_WORDS)?,
                deep: Some(Box::new(Deep24 {
                    d24: mapped(ebpf, n::SRC_D24, filter::F24_WORDS)?,
                    rank: mapped(ebpf, n::SRC_RANK, filter::F24_WORDS)?,
                    deep: mapped(ebpf, n::SRC_DEEP, filter::DEEP24_SLOTS)?,
                    mode: mapped(ebpf, n::SRC_DMODE, 1)?,
                    t16: mapped(ebpf, n::SRC_T16, filter::T16_WORDS)?,
                    r24: mapped(ebpf, n::SRC_R24, filter::F24_WORDS)?,
                    tag24: mapped(ebpf, n::SRC_TAG24, filter::COVER24_SLOTS / 4)?,
                })),
            },
        )?;
        let bans = HostBans {
            v4: BanTable::new(
                mapped::<BanBucketV4>(ebpf, n::BANS_V4, capacity.ban_buckets())?,
                take(ebpf, n::BANX_V4)?,
            )?,
            v6: BanTable::new(
                mapped::<BanBucketV6>(ebpf, n::BANS_V6, capacity.ban_buckets())?,
                take(ebpf, n::BANX_V6)?,
            )?,
        };
        let config: Array<MapData, XdpConfig> = take(ebpf, n::CONFIG)?;
        // What the program masks IPv6 sources to now (pinned maps keep
        // their config; fresh maps have none yet, and no bans).
        let v6_exact = config
            .get(&0, 0)
            .ok()
            .map(|c| c.v6_prefix)
            .filter(|p| (1..=128).contains(p))
            .unwrap_or(128) as u8;
        Ok(Self {
            config,
            counters: take(ebpf, n::COUNTERS)?,
            allow,
            block,
            prefix_bans,
            sources,
            source_counts: take(ebpf, n::SRC_COUNTS)?,
            bogon_ifaces: take(ebpf, n::SRC_IFACES)?,
            bans,
            rate_v4: take(ebpf, n::RATE_V4)?,
            rate_v6: take(ebpf, n::RATE_V6)?,
            events: Some(take(ebpf, n::EVENTS)?),
            ban_bucket_bits: capacity.ban_bucket_bits(),
            rate_set_bits: capacity.rate_set_bits(),
            v6_exact,
        })
    }

    /// The current config map entry.
    pub fn xdp_config(&self) -> Result<XdpConfig> {
        self.config
            .get(&0, 0)
            .map_err(|source| DataplaneError::Map {
                name: map_names::CONFIG,
                source,
            })
    }

    /// Writes the config map entry (takes effect with the next packet),
    /// with the sizes of the maps loaded. A new IPv6 prefix moves the IPv6
    /// bans between the exact and the prefix store ([`Maps::rekey_v6`]).
    pub fn set_xdp_config(&mut self, cfg: &XdpConfig) -> Result<()> {
        let cfg = XdpConfig {
            ban_bucket_bits: self.ban_bucket_bits,
            rate_set_bits: self.rate_set_bits,
            ..*cfg
        };
        let prefix = u8::try_from(cfg.v6_prefix)
            .ok()
            .filter(|p| (1..=128).contains(p))
            .ok_or_else(|| DataplaneError::Invalid(format!("IPv6 prefix {}", cfg.v6_prefix)))?;
        if prefix != self.v6_exact {
            return self.rekey_v6(prefix, cfg);
        }
        self.write_config(&cfg)
    }

    fn write_config(&mut self, cfg: &XdpConfig) -> Result<()> {
        self.config
            .set(0, cfg, 0)
            .map_err(|source| DataplaneError::Map {
                name: map_names::CONFIG,
                source,
            })
    }

    /// Writes `settings` to the config map.
    pub fn apply(&mut self, settings: &Settings) -> Result<()> {
        self.set_xdp_config(&settings.to_config()?)
    }

    /// The IPv6 prefix length of exact bans (`[ban_policy] ipv6_prefix`).
    pub fn v6_exact(&self) -> u8 {
        self.v6_exact
    }

    /// True when a ban of `net` is an exact ban (IPv4 /32, IPv6 of the
    /// configured prefix), false when it is a prefix ban.
    pub fn is_exact(&self, net: &IpNet) -> bool {
        match net {
            IpNet::V4(n) => n.prefix_len() == 32,
            IpNet::V6(n) => n.prefix_len() == self.v6_exact,
        }
    }

    /// The exact ban `addr` keys (an IPv6 key is its prefix's address).
    fn exact_net(&self, addr: IpAddr) -> IpNet {
        match addr {
            IpAddr::V4(a) => IpNet::from(IpAddr::V4(a)),
            IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, self.v6_exact).unwrap_or(a.into())),
        }
    }

    /// Switches the program to IPv6 prefix `prefix` (config `cfg`) and
    /// moves the IPv6 bans to the store that holds their length then,
    /// without a moment in which a ban is not in force and without a
    /// moment in which an exact entry is keyed at a length shorter than
    /// the program's mask (which would drop addresses outside the ban):
    /// the exact IPv6 bans go into the prefix store first, leave the exact
    /// store, then the config is written, then the prefix bans of the new
    /// length move into the exact store. Refused, with nothing changed,
    /// when the prefix store cannot hold the bans on the way.
    fn rekey_v6(&mut self, prefix: u8, cfg: XdpConfig) -> Result<()> {
        let exact: Vec<(IpAddr, BanEntry)> = self
            .bans
            .v6
            .entries()
            .into_iter()
            .map(|(k, e)| (IpAddr::from(k), e))
            .collect();
        let in_prefix = self
            .prefix_bans
            .entries()
            .into_iter()
            .filter(|(n, _)| matches!(n, IpNet::V6(_)))
            .count();
        let room = self.prefix_bans.capacity().1 as usize;
        if in_prefix + exact.len() > room {
            return Err(DataplaneError::Invalid(format!(
                "changing the IPv6 ban prefix from /{} to /{prefix} passes {} IPv6 bans \
                 through the prefix-ban store, which holds {room} ([capacity] prefix_bans_v6); \
                 raise it, or lift bans first",
                self.v6_exact,
                in_prefix + exact.len()
            )));
        }
        for &(a, e) in &exact {
            self.prefix_bans.insert(self.exact_net(a), e)?;
        }
        for &(a, _) in &exact {
            self.bans.remove(a)?;
        }
        self.write_config(&cfg)?;
        self.v6_exact = prefix;
        let moving: Vec<(IpNet, BanEntry)> = self
            .prefix_bans
            .entries()
            .into_iter()
            .filter(|(n, _)| matches!(n, IpNet::V6(_)) && self.is_exact(n))
            .collect();
        for (n, e) in moving {
            self.bans.insert(n.network(), e)?;
            self.prefix_bans.remove(n)?;
        }
        Ok(())
    }

    /// Every counter summed over CPUs, indexed like [`waf_common::counter`].
    pub fn counters(&self) -> Result<Vec<Counter>> {
        sum_counters(&self.counters)
    }

    /// A read-only handle on the counters (verdicts and source-policy
    /// tags) for readers outside the owner (second descriptors of the same
    /// maps; it offers no write).
    pub fn counters_reader(&self) -> Result<CountersReader> {
        Ok(CountersReader {
            map: reopen(&self.counters, map_names::COUNTERS)?,
            sources: reopen(&self.source_counts, map_names::SRC_COUNTS)?,
        })
    }

    /// Adds a ban on `net`: an exact ban ([`Maps::is_exact`]) or a prefix
    /// ban.
    pub fn ban(&mut self, net: IpNet, ban: BanEntry) -> Result<()> {
        if self.is_exact(&net) {
            self.bans.insert(net.network(), ban)
        } else {
            self.prefix_bans.insert(net, ban)
        }
    }

    /// Lifts a ban on `net`; false when there was none.
    pub fn unban(&mut self, net: IpNet) -> Result<bool> {
        if self.is_exact(&net) {
            self.bans.remove(net.network())
        } else {
            self.prefix_bans.remove(net)
        }
    }

    /// Every ban, exact ones first (IPv6 exact bans as their prefix).
    pub fn all_bans(&self) -> Result<Vec<(IpNet, BanEntry)>> {
        let mut out: Vec<(IpNet, BanEntry)> = self
            .bans
            .entries()
            .into_iter()
            .map(|(a, b)| (self.exact_net(a), b))
            .collect();
        out.extend(self.prefix_bans.entries());
        Ok(out)
    }

    /// The rate state kept for `addr`'s source key (an IPv6 address is
    /// masked to the exact-ban prefix, as the program keys it).
    pub fn rate_state(&self, addr: IpAddr) -> Option<RateState> {
        match self.exact_net(addr).network() {
            IpAddr::V4(a) => {
                let k = u32::from_ne_bytes(a.octets());
                let i = waf_common::rate_set_v4(k, self.rate_set_bits);
                let set = self.rate_v4.get(&i, 0).ok()?;
                set.slots
                    .into_iter()
                    .find(|s| s.used != 0 && s.key == k)
                    .map(|s| s.state)
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let i =
                    waf_common::rate_set_v6((bits >> 64) as u64, bits as u64, self.rate_set_bits);
                let set = self.rate_v6.get(&i, 0).ok()?;
                set.slots
                    .into_iter()
                    .find(|s| s.used != 0 && s.key == a.octets())
                    .map(|s| s.state)
            }
        }
    }
}

impl Maps {
    /// The counters of every source-policy tag summed over CPUs, indexed by
    /// tag (`waf_common::SOURCE_TAGS` of them).
    pub fn source_counters(&self) -> Result<Vec<Counter>> {
        sum_per_cpu(
            &self.source_counts,
            waf_common::SOURCE_TAGS,
            map_names::SRC_COUNTS,
        )
    }
}

fn sum_counters(map: &PerCpuArray<MapData, Counter>) -> Result<Vec<Counter>> {
    sum_per_cpu(map, counter::COUNT, map_names::COUNTERS)
}

fn sum_per_cpu(
    map: &PerCpuArray<MapData, Counter>,
    len: u32,
    name: &'static str,
) -> Result<Vec<Counter>> {
    let mut out = vec![Counter::default(); len as usize];
    for (i, slot) in out.iter_mut().enumerate() {
        let per_cpu = map
            .get(&(i as u32), 0)
            .map_err(|source| DataplaneError::Map { name, source })?;
        for c in per_cpu.iter() {
            slot.packets += c.packets;
            slot.bytes += c.bytes;
        }
    }
    Ok(out)
}

/// A second descriptor of per-CPU counter array `name`.
fn reopen(
    map: &PerCpuArray<MapData, Counter>,
    name: &'static str,
) -> Result<PerCpuArray<MapData, Counter>> {
    use aya::maps::IterableMap as _;
    use std::os::fd::AsFd as _;
    let err = |source| DataplaneError::Map { name, source };
    let fd = map
        .map()
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| DataplaneError::Io {
            path: PathBuf::from(name),
            source: e,
        })?;
    let data = MapData::from_fd(fd).map_err(err)?;
    PerCpuArray::try_from(Map::PerCpuArray(data)).map_err(err)
}

/// The kernel's verdict and source-policy counters, read-only: what the
/// API and metrics read without going through the firewall's owner.
pub struct CountersReader {
    map: PerCpuArray<MapData, Counter>,
    sources: PerCpuArray<MapData, Counter>,
}

impl CountersReader {
    /// Every counter summed over CPUs, indexed like [`waf_common::counter`].
    pub fn read(&self) -> Result<Vec<Counter>> {
        sum_counters(&self.map)
    }

    /// The first `n` source-policy tags' counters summed over CPUs.
    pub fn read_sources(&self, n: usize) -> Result<Vec<Counter>> {
        let n = n.min(waf_common::SOURCE_TAGS as usize) as u32;
        sum_per_cpu(&self.sources, n, map_names::SRC_COUNTS)
    }
}

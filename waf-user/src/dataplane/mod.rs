//! The kernel half, seen from userspace: loads the embedded XDP object,
//! attaches it to interfaces, pins maps and links in a bpffs directory so
//! enforcement outlives the process, adopts that pinned state when started
//! again, and offers typed handles for every map.
//!
//! This module does not decide anything (who is banned, for how long): the
//! ban manager does, and writes through these handles.

pub mod bans;
mod batch;
pub mod mmap;
pub mod sets;

use std::{
    ffi::CString,
    io,
    net::IpAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, Map, MapData, MapError, PerCpuArray, RingBuf},
    programs::{
        ProgramError, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use ipnet::IpNet;
use waf_common::{
    ABI_VERSION, BAN_BUCKETS, BanBucketV4, BanBucketV6, BanEntry, CLOCK_PROGRAM_NAME, Counter,
    ListEntry, PROGRAM_NAME, RATE_SETS, RateSetV4, RateSetV6, RateState, XdpConfig, counter,
    filter, flags, map_names,
};

use self::{
    bans::{BanTable, HostBans},
    mmap::MmapArray,
    sets::{CidrSet, Kind},
};

/// The firewall's XDP object (`waf-xdp`) built by build.rs from the waf-ebpf
/// crate: `waf_xdp`, `waf_clock` and the firewall's maps. The programs the
/// daemon never attaches are in the tools object (`gen::Tools`).
pub static XDP_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/waf-xdp"));

/// Default bpffs directory for pins.
pub const DEFAULT_BPF_DIR: &str = "/sys/fs/bpf/waf";

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Errors of the data plane, each saying what failed and, where it helps,
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The object could not be loaded.
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    /// A program operation failed (load, attach, test run).
    #[error("XDP program: {0}")]
    Program(#[from] ProgramError),
    /// A map operation failed.
    #[error("map {name}: {source}")]
    Map {
        /// The map.
        name: &'static str,
        /// What the kernel or aya said.
        source: MapError,
    },
    /// A map is full: the entry was not written.
    #[error("map {name} is full ({capacity} entries): the entry was not written")]
    MapFull {
        /// The map.
        name: &'static str,
        /// Its capacity.
        capacity: u32,
    },
    /// The pinned maps were written by an incompatible build.
    #[error(
        "the pinned maps in {dir} do not match this build ({what}); \
         run `waf detach` (or remove {dir}) to start from fresh maps"
    )]
    Incompatible {
        /// The pin directory.
        dir: PathBuf,
        /// What differs.
        what: String,
    },
    /// Problems with the bpf filesystem or the pin directory.
    #[error("bpf filesystem at {path}: {message}")]
    Bpffs {
        /// The path involved.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An interface problem.
    #[error("interface {interface}: {message}")]
    Interface {
        /// The interface name.
        interface: String,
        /// What went wrong.
        message: String,
    },
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

type Result<T, E = DataplaneError> = std::result::Result<T, E>;

/// How to attach: let the kernel choose, or force driver or generic mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// Native (driver) mode where the driver supports it, else generic.
    #[default]
    Auto,
    /// Native (driver) mode; fails where the driver has no XDP support.
    Native,
    /// Generic (skb) mode: works everywhere, slower.
    Skb,
}

impl AttachMode {
    fn xdp_mode(self) -> XdpMode {
        match self {
            Self::Auto => XdpMode::Default,
            Self::Native => XdpMode::Driver,
            Self::Skb => XdpMode::Skb,
        }
    }
}

impl FromStr for AttachMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "native" | "driver" => Ok(Self::Native),
            "skb" | "generic" => Ok(Self::Skb),
            _ => Err(format!(
                "unknown XDP mode `{s}`: expected auto, native or skb"
            )),
        }
    }
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Skb => "skb",
        })
    }
}

/// Per-source rate limits as operators state them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Packets per second per source (None: no packet limit).
    pub pps: Option<u64>,
    /// Packets a source may send at once above its rate.
    pub burst: u64,
    /// Bytes per second per source (None: no byte limit).
    pub bps: Option<u64>,
    /// Bytes a source may send at once above its byte rate.
    pub burst_bytes: u64,
    /// TCP SYNs per second per source (None: no SYN limit).
    pub syn_pps: Option<u64>,
    /// SYN burst.
    pub syn_burst: u64,
    /// IPv6 sources are limited per prefix of this length.
    pub v6_prefix: u8,
    /// At most one rate event per source per this interval.
    pub event_interval: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            pps: None,
            burst: 0,
            bps: None,
            burst_bytes: 0,
            syn_pps: None,
            syn_burst: 0,
            v6_prefix: 64,
            event_interval: Duration::from_secs(1),
        }
    }
}

/// Everything the XDP program reads from its config map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Count what would be dropped, drop nothing.
    pub monitor: bool,
    /// Drop all that is not allowlisted.
    pub emergency: bool,
    /// Per-source rate limits.
    pub rate: RateLimits,
    /// TCP ports whose payloads are sampled for the passive mirror (0:
    /// unused slot).
    pub sample_ports: [u16; waf_common::SAMPLE_PORTS],
    /// Payload bytes sampled per segment (at most `waf_common::SAMPLE_MAX`).
    pub sample_bytes: u32,
}

impl Settings {
    /// The config map entry for these settings; errors on values the kernel
    /// side cannot represent.
    pub fn to_config(&self) -> Result<XdpConfig> {
        let mut cfg = XdpConfig {
            abi: ABI_VERSION,
            ..Default::default()
        };
        if self.monitor {
            cfg.flags |= flags::MONITOR;
        }
        if self.emergency {
            cfg.flags |= flags::EMERGENCY;
        }
        let r = &self.rate;
        // The kernel reads a coarse clock (one tick of resolution): a bucket
        // must hold at least two ticks' worth of credit, or a source sending
        // steadily below its limit could see a tick's packets as one burst.
        let min_window = 2 * coarse_resolution_ns();
        let per = |rate: u64, burst: u64, what: &str| -> Result<(u64, u64)> {
            if rate == 0 || rate > 1_000_000_000 {
                return Err(DataplaneError::Invalid(format!(
                    "{what} rate {rate}: must be between 1 and 1000000000 per second"
                )));
            }
            if burst == 0 {
                return Err(DataplaneError::Invalid(format!(
                    "{what} burst 0: must be at least 1"
                )));
            }
            let cost = (1_000_000_000 + rate / 2) / rate;
            Ok((cost, cost.saturating_mul(burst).max(min_window + cost)))
        };
        if let Some(pps) = r.pps {
            (cfg.pkt_cost_ns, cfg.pkt_window_ns) = per(pps, r.burst, "packet")?;
            cfg.flags |= flags::RATE_PPS;
        }
        if let Some(bps) = r.bps {
            if bps == 0 || r.burst_bytes < 1514 {
                return Err(DataplaneError::Invalid(format!(
                    "byte rate {bps}/s with burst {} bytes: the rate must be positive and the \
                     burst at least one full frame (1514 bytes)",
                    r.burst_bytes
                )));
            }
            let fp = ((1_000_000_000u128 << 16) / bps as u128).max(1) as u64;
            cfg.byte_cost_fp16 = fp;
            let frame = ((1514 * fp as u128) >> 16) as u64;
            cfg.byte_window_ns =
                (((r.burst_bytes as u128 * fp as u128) >> 16) as u64).max(min_window + frame);
            cfg.flags |= flags::RATE_BPS;
        }
        if let Some(syn) = r.syn_pps {
            (cfg.syn_cost_ns, cfg.syn_window_ns) = per(syn, r.syn_burst, "SYN")?;
            cfg.flags |= flags::RATE_SYN;
        }
        if !(1..=128).contains(&r.v6_prefix) {
            return Err(DataplaneError::Invalid(format!(
                "IPv6 rate-limit prefix /{}: must be between /1 and /128",
                r.v6_prefix
            )));
        }
        cfg.rate_v6_prefix = r.v6_prefix as u32;
        cfg.tick_ns = coarse_resolution_ns();
        // Used slots first: the program stops at the first 0.
        let mut ports: Vec<u16> = self
            .sample_ports
            .iter()
            .copied()
            .filter(|p| *p != 0)
            .collect();
        ports.dedup();
        for (slot, p) in cfg.sample_ports.iter_mut().zip(ports) {
            *slot = p;
        }
        cfg.sample_bytes = self.sample_bytes.min(waf_common::SAMPLE_MAX as u32);
        cfg.event_interval_ns = r.event_interval.as_nanos().min(u64::MAX as u128) as u64;
        Ok(cfg)
    }
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock ban expiries are written
/// in (the XDP program reads its coarse variant).
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Converts times to the XDP program's clock (jiffies x tick), by an offset
/// to `CLOCK_MONOTONIC` measured with [`Dataplane::calibrate_clock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelClock {
    /// Kernel clock minus `CLOCK_MONOTONIC`, in ns.
    pub offset_ns: i128,
}

impl KernelClock {
    /// Now on the program's clock.
    pub fn now(&self) -> u64 {
        (monotonic_ns() as i128 + self.offset_ns).max(0) as u64
    }

    /// `d` from now on the program's clock (never 0, which means
    /// "permanent" to the program).
    pub fn after(&self, d: Duration) -> u64 {
        self.now()
            .saturating_add(d.as_nanos().min(u64::MAX as u128) as u64)
            .max(1)
    }
}

/// Resolution of the kernel's coarse monotonic clock (one scheduler tick).
pub fn coarse_resolution_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_getres writes the timespec we pass.
    let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 {
        return 10_000_000; // HZ=100, the coarsest kernels build with
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Maps "the map is full" errors (E2BIG from hashes, ENOSPC from tries) to
/// [`DataplaneError::MapFull`].
pub(crate) fn write_err(name: &'static str, capacity: u32, e: MapError) -> DataplaneError {
    if let MapError::SyscallError(s) = &e
        && matches!(
            s.io_error.raw_os_error(),
            Some(libc::E2BIG) | Some(libc::ENOSPC)
        )
    {
        return DataplaneError::MapFull { name, capacity };
    }
    DataplaneError::Map { name, source: e }
}

pub(crate) fn is_not_found(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

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
    /// Exact-address bans.
    pub bans: HostBans,
    /// Per-source rate state, IPv4.
    pub rate_v4: Array<MapData, RateSetV4>,
    /// Per-source rate state, IPv6 (masked to the configured prefix).
    pub rate_v6: Array<MapData, RateSetV6>,
    /// The ring buffer of rate events, until someone takes it.
    pub events: Option<RingBuf<MapData>>,
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<Map> {
    ebpf.take_map(name).ok_or(DataplaneError::Map {
        name,
        source: MapError::InvalidName { name: name.into() },
    })
}

fn take<T: TryFrom<Map, Error = MapError>>(ebpf: &mut Ebpf, name: &'static str) -> Result<T> {
    T::try_from(take_map(ebpf, name)?).map_err(|source| DataplaneError::Map { name, source })
}

fn mapped<T>(ebpf: &mut Ebpf, name: &'static str, len: u32) -> Result<MmapArray<T>> {
    MmapArray::new(name, take_map(ebpf, name)?, len)
}

impl Maps {
    fn from_ebpf(ebpf: &mut Ebpf) -> Result<Self> {
        use map_names as n;
        // The three sets share the /16 flag array, a nibble each.
        let f16 = std::sync::Arc::new(mapped(ebpf, n::LISTS_F16, filter::F16_WORDS)?);
        let allow = CidrSet::new(
            n::ALLOW_V4,
            waf_common::ALLOW_CAPACITY,
            take(ebpf, n::ALLOW_V4)?,
            take(ebpf, n::ALLOW_V6)?,
            (f16.clone(), filter::SET_ALLOW),
            mapped(ebpf, n::ALLOW_F6, filter::F6_WORDS)?,
            Kind::Membership {
                f24: mapped(ebpf, n::ALLOW_F24, filter::F24_WORDS)?,
            },
        )?;
        let block = CidrSet::new(
            n::BLOCK_V4,
            waf_common::BLOCK_CAPACITY,
            take(ebpf, n::BLOCK_V4)?,
            take(ebpf, n::BLOCK_V6)?,
            (f16.clone(), filter::SET_BLOCK),
            mapped(ebpf, n::BLOCK_F6, filter::F6_WORDS)?,
            Kind::Membership {
                f24: mapped(ebpf, n::BLOCK_F24, filter::F24_WORDS)?,
            },
        )?;
        let prefix_bans = CidrSet::new(
            n::PBAN_V4,
            waf_common::PBAN_CAPACITY,
            take(ebpf, n::PBAN_V4)?,
            take(ebpf, n::PBAN_V6)?,
            (f16, filter::SET_PBAN),
            mapped(ebpf, n::PBAN_F6, filter::F6_WORDS)?,
            Kind::Prefilter,
        )?;
        let bans = HostBans {
            v4: BanTable::new(
                mapped::<BanBucketV4>(ebpf, n::BANS_V4, BAN_BUCKETS)?,
                take(ebpf, n::BANX_V4)?,
            )?,
            v6: BanTable::new(
                mapped::<BanBucketV6>(ebpf, n::BANS_V6, BAN_BUCKETS)?,
                take(ebpf, n::BANX_V6)?,
            )?,
        };
        Ok(Self {
            config: take(ebpf, n::CONFIG)?,
            counters: take(ebpf, n::COUNTERS)?,
            allow,
            block,
            prefix_bans,
            bans,
            rate_v4: take(ebpf, n::RATE_V4)?,
            rate_v6: take(ebpf, n::RATE_V6)?,
            events: Some(take(ebpf, n::EVENTS)?),
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

    /// Writes the config map entry (takes effect with the next packet).
    pub fn set_xdp_config(&mut self, cfg: &XdpConfig) -> Result<()> {
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

    /// Every counter summed over CPUs, indexed like [`waf_common::counter`].
    pub fn counters(&self) -> Result<Vec<Counter>> {
        sum_counters(&self.counters)
    }

    /// A read-only handle on the counters for readers outside the owner (a
    /// second descriptor of the same map; it offers no write).
    pub fn counters_reader(&self) -> Result<CountersReader> {
        use aya::maps::IterableMap as _;
        use std::os::fd::AsFd as _;
        let err = |source| DataplaneError::Map {
            name: map_names::COUNTERS,
            source,
        };
        let fd = self
            .counters
            .map()
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| DataplaneError::Io {
                path: PathBuf::from(map_names::COUNTERS),
                source: e,
            })?;
        let data = MapData::from_fd(fd).map_err(err)?;
        let map = PerCpuArray::try_from(Map::PerCpuArray(data)).map_err(err)?;
        Ok(CountersReader { map })
    }

    /// Adds a ban on an address (host prefix) or a prefix.
    pub fn ban(&mut self, net: IpNet, ban: BanEntry) -> Result<()> {
        if net.prefix_len() == net.max_prefix_len() {
            self.bans.insert(net.addr(), ban)
        } else {
            self.prefix_bans.insert(net, ban)
        }
    }

    /// Lifts a ban on an address or prefix; false when there was none.
    pub fn unban(&mut self, net: IpNet) -> Result<bool> {
        if net.prefix_len() == net.max_prefix_len() {
            self.bans.remove(net.addr())
        } else {
            self.prefix_bans.remove(net)
        }
    }

    /// Every ban, exact ones first.
    pub fn all_bans(&self) -> Result<Vec<(IpNet, BanEntry)>> {
        let mut out: Vec<(IpNet, BanEntry)> = self
            .bans
            .entries()
            .into_iter()
            .map(|(a, b)| (IpNet::from(a), b))
            .collect();
        out.extend(self.prefix_bans.entries());
        Ok(out)
    }

    /// The rate state kept for `addr` (IPv6: pass the masked prefix address).
    pub fn rate_state(&self, addr: IpAddr) -> Option<RateState> {
        match addr {
            IpAddr::V4(a) => {
                let k = u32::from_ne_bytes(a.octets());
                let set = self.rate_v4.get(&waf_common::rate_set_v4(k), 0).ok()?;
                set.slots
                    .into_iter()
                    .find(|s| s.used != 0 && s.key == k)
                    .map(|s| s.state)
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let i = waf_common::rate_set_v6((bits >> 64) as u64, bits as u64);
                let set = self.rate_v6.get(&i, 0).ok()?;
                set.slots
                    .into_iter()
                    .find(|s| s.used != 0 && s.key == a.octets())
                    .map(|s| s.state)
            }
        }
    }
}

fn sum_counters(map: &PerCpuArray<MapData, Counter>) -> Result<Vec<Counter>> {
    let mut out = vec![Counter::default(); counter::COUNT as usize];
    for (i, slot) in out.iter_mut().enumerate() {
        let per_cpu = map
            .get(&(i as u32), 0)
            .map_err(|source| DataplaneError::Map {
                name: map_names::COUNTERS,
                source,
            })?;
        for c in per_cpu.iter() {
            slot.packets += c.packets;
            slot.bytes += c.bytes;
        }
    }
    Ok(out)
}

/// The kernel's verdict counters, read-only: what the API and metrics read
/// without going through the firewall's owner.
pub struct CountersReader {
    map: PerCpuArray<MapData, Counter>,
}

impl CountersReader {
    /// Every counter summed over CPUs, indexed like [`waf_common::counter`].
    pub fn read(&self) -> Result<Vec<Counter>> {
        sum_counters(&self.map)
    }
}

/// Where and how to load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Pin maps and links here (a bpffs directory, mounted if needed) and
    /// adopt what is pinned there. None: private maps, links detached when
    /// the [`Dataplane`] is dropped (tests, benchmarks).
    pub pin_dir: Option<PathBuf>,
}

/// One attachment of the program to an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Interface name.
    pub interface: String,
    /// The requested mode.
    pub mode: AttachMode,
    /// True when an existing pinned link was taken over (program replaced
    /// atomically, no gap in enforcement).
    pub adopted: bool,
}

/// The loaded XDP program and its maps.
pub struct Dataplane {
    ebpf: Ebpf,
    /// Typed map handles.
    pub maps: Maps,
    clock: Array<MapData, u64>,
    pin_dir: Option<PathBuf>,
    attachments: Vec<Attachment>,
}

/// Expected (key size, value size, max entries) of each map, to refuse
/// pinned maps of another layout before loading against them. `None` for
/// the ring buffer, which has neither.
fn expected_layout(name: &str) -> Option<(u32, u32, u32)> {
    use std::mem::size_of;
    use waf_common as c;
    let sz = |n: usize| n as u32;
    let lpm = |data: usize| (4 + data) as u32;
    Some(match name {
        map_names::CONFIG => (4, sz(size_of::<XdpConfig>()), 1),
        map_names::COUNTERS => (4, sz(size_of::<Counter>()), counter::COUNT),
        map_names::ALLOW_V4 => (lpm(4), sz(size_of::<ListEntry>()), c::ALLOW_CAPACITY),
        map_names::ALLOW_V6 => (lpm(16), sz(size_of::<ListEntry>()), c::ALLOW_CAPACITY),
        map_names::BLOCK_V4 => (lpm(4), sz(size_of::<ListEntry>()), c::BLOCK_CAPACITY),
        map_names::BLOCK_V6 => (lpm(16), sz(size_of::<ListEntry>()), c::BLOCK_CAPACITY),
        map_names::PBAN_V4 => (lpm(4), sz(size_of::<BanEntry>()), c::PBAN_CAPACITY),
        map_names::PBAN_V6 => (lpm(16), sz(size_of::<BanEntry>()), c::PBAN_CAPACITY),
        map_names::LISTS_F16 => (4, 8, filter::F16_WORDS),
        map_names::ALLOW_F24 | map_names::BLOCK_F24 => (4, 8, filter::F24_WORDS),
        map_names::ALLOW_F6 | map_names::BLOCK_F6 | map_names::PBAN_F6 => (4, 8, filter::F6_WORDS),
        map_names::BANS_V4 => (4, sz(size_of::<BanBucketV4>()), BAN_BUCKETS),
        map_names::BANS_V6 => (4, sz(size_of::<BanBucketV6>()), BAN_BUCKETS),
        map_names::BANX_V4 => (4, sz(size_of::<BanEntry>()), c::BANX_CAPACITY),
        map_names::BANX_V6 => (16, sz(size_of::<BanEntry>()), c::BANX_CAPACITY),
        map_names::RATE_V4 => (4, sz(size_of::<RateSetV4>()), RATE_SETS),
        map_names::RATE_V6 => (4, sz(size_of::<RateSetV6>()), RATE_SETS),
        _ => return None,
    })
}

impl Dataplane {
    /// Loads the embedded XDP object (see [`LoadOptions`]).
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        raise_memlock();
        let mut loader = EbpfLoader::new();
        if let Some(dir) = &opts.pin_dir {
            ensure_bpffs(dir)?;
            check_pinned_layout(dir)?;
            for name in map_names::ALL {
                loader.map_pin_path(name, dir.join(name));
            }
        }
        let mut ebpf = loader.load(XDP_OBJECT)?;
        let prog: &mut Xdp = program(&mut ebpf, PROGRAM_NAME)?;
        prog.load()?;
        let mut maps = Maps::from_ebpf(&mut ebpf)?;
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

    /// Now on the XDP program's clock (jiffies x tick, ns): the clock ban
    /// expiries are written in. Asks the kernel (a BPF_PROG_TEST_RUN of a
    /// two-instruction program), so it is exact to the tick.
    pub fn kernel_now_ns(&mut self) -> Result<u64> {
        use aya::programs::{TestRun as _, TestRunOptions};
        let prog: &mut Xdp = program(&mut self.ebpf, CLOCK_PROGRAM_NAME)?;
        if prog.fd().is_err() {
            prog.load()?;
        }
        let frame = [0u8; 64];
        prog.test_run(TestRunOptions {
            data_in: Some(&frame),
            ..Default::default()
        })?;
        let jiffies = self
            .clock
            .get(&0, 0)
            .map_err(|source| DataplaneError::Map {
                name: map_names::CLOCK,
                source,
            })?;
        let tick = match self.maps.xdp_config()?.tick_ns {
            0 => coarse_resolution_ns(),
            t => t,
        };
        Ok(jiffies * tick)
    }

    /// Measures the offset between `CLOCK_MONOTONIC` and the program's clock.
    pub fn calibrate_clock(&mut self) -> Result<KernelClock> {
        let before = monotonic_ns();
        let k = self.kernel_now_ns()?;
        let after = monotonic_ns();
        let mid = before / 2 + after / 2;
        Ok(KernelClock {
            offset_ns: k as i128 - mid as i128,
        })
    }

    /// The pin directory, if pinning.
    pub fn pin_dir(&self) -> Option<&Path> {
        self.pin_dir.as_deref()
    }

    /// What this process attached.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// Attaches to `interface`. With a pin directory the link is pinned (it
    /// stays attached after this process exits) and a link pinned there by a
    /// previous run is taken over by atomically replacing its program.
    pub fn attach(&mut self, interface: &str, mode: AttachMode) -> Result<Attachment> {
        let ifname = CString::new(interface).map_err(|_| DataplaneError::Interface {
            interface: interface.into(),
            message: "name contains a NUL byte".into(),
        })?;
        // SAFETY: a valid C string.
        if unsafe { libc::if_nametoindex(ifname.as_ptr()) } == 0 {
            return Err(DataplaneError::Interface {
                interface: interface.into(),
                message: "no such interface in this network namespace".into(),
            });
        }
        let pin_dir = self.pin_dir.clone();
        let prog = self.program()?;
        let mut adopted = false;
        match &pin_dir {
            Some(dir) => {
                let pin = link_pin_path(dir, interface);
                if pin.exists() {
                    let pinned = PinnedLink::from_pin(&pin).map_err(|e| DataplaneError::Bpffs {
                        path: pin.clone(),
                        message: format!("cannot open pinned link: {e}"),
                    })?;
                    let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|e| {
                        DataplaneError::Bpffs {
                            path: pin.clone(),
                            message: format!("pinned object is not an XDP link: {e}"),
                        }
                    })?;
                    let id = prog.attach_to_link(link)?;
                    // The pin keeps the link; our handle may go.
                    drop(prog.take_link(id)?);
                    adopted = true;
                } else {
                    let id = prog
                        .attach(interface, mode.xdp_mode())
                        .map_err(|e| attach_err(interface, mode, e))?;
                    let link = prog.take_link(id)?;
                    let fd_link =
                        FdLink::try_from(link).map_err(|e| DataplaneError::Interface {
                            interface: interface.into(),
                            message: format!(
                                "the kernel attached through netlink, not a BPF link, so the \
                             attachment cannot be pinned: {e}"
                            ),
                        })?;
                    fd_link.pin(&pin).map_err(|e| DataplaneError::Bpffs {
                        path: pin.clone(),
                        message: format!("cannot pin the link: {e}"),
                    })?;
                }
            }
            None => {
                prog.attach(interface, mode.xdp_mode())
                    .map_err(|e| attach_err(interface, mode, e))?;
            }
        }
        let a = Attachment {
            interface: interface.into(),
            mode,
            adopted,
        };
        self.attachments.push(a.clone());
        Ok(a)
    }
}

fn attach_err(interface: &str, mode: AttachMode, e: ProgramError) -> DataplaneError {
    let hint = match mode {
        AttachMode::Native => {
            " (the driver may lack native XDP: try --xdp-mode auto or skb; another XDP program \
             may already be attached)"
        }
        _ => " (another XDP program may already be attached: see `ip link show`)",
    };
    DataplaneError::Interface {
        interface: interface.into(),
        message: format!("attach in {mode} mode failed: {e}{hint}"),
    }
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| DataplaneError::Invalid(format!("program {name} missing from object")))?;
    Ok(prog.try_into()?)
}

/// Where the link of `interface` is pinned.
pub fn link_pin_path(dir: &Path, interface: &str) -> PathBuf {
    dir.join(format!("link_{interface}"))
}

/// Interfaces with a link pinned in `dir`.
pub fn pinned_interfaces(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("link_"))
                .map(str::to_string)
        })
        .collect();
    v.sort();
    v
}

/// Removes the pinned link of `interface` from `dir` (which detaches the
/// program from it once no process holds the link), and, when no other
/// interface remains, every pinned map and the directory itself. Returns
/// whether a link was pinned for that interface.
pub fn detach(dir: &Path, interface: &str) -> Result<bool> {
    let pin = link_pin_path(dir, interface);
    let had = pin.exists();
    if had {
        std::fs::remove_file(&pin).map_err(|source| DataplaneError::Io {
            path: pin.clone(),
            source,
        })?;
    }
    if pinned_interfaces(dir).is_empty() {
        remove_pinned_maps(dir)?;
    }
    Ok(had)
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

fn check_pinned_layout(dir: &Path) -> Result<()> {
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
        let Some((k, v, n)) = expected_layout(name) else {
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

fn statfs_type(path: &Path) -> Option<i64> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: zeroed statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out-pointer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    Some(st.f_type as i64)
}

/// Makes sure `dir` exists on a bpf filesystem, mounting one if none is:
/// at /sys/fs/bpf for paths below it, else at `dir` itself.
pub fn ensure_bpffs(dir: &Path) -> Result<()> {
    let mut probe = dir.to_path_buf();
    while !probe.exists() {
        if !probe.pop() {
            break;
        }
    }
    if statfs_type(&probe) != Some(BPF_FS_MAGIC) {
        let target = if dir.starts_with("/sys/fs/bpf") {
            PathBuf::from("/sys/fs/bpf")
        } else {
            dir.to_path_buf()
        };
        std::fs::create_dir_all(&target).map_err(|source| DataplaneError::Io {
            path: target.clone(),
            source,
        })?;
        if statfs_type(&target) != Some(BPF_FS_MAGIC) {
            let t = CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| {
                DataplaneError::Bpffs {
                    path: target.clone(),
                    message: "path contains a NUL byte".into(),
                }
            })?;
            // SAFETY: valid C strings; no data argument.
            let rc = unsafe {
                libc::mount(
                    c"bpf".as_ptr(),
                    t.as_ptr(),
                    c"bpf".as_ptr(),
                    0,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                return Err(DataplaneError::Bpffs {
                    path: target,
                    message: format!(
                        "not a bpf filesystem and mounting one failed: {} \
                         (mount it by hand: mount -t bpf bpf <dir>)",
                        io::Error::last_os_error()
                    ),
                });
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| DataplaneError::Io {
        path: dir.into(),
        source,
    })?;
    if statfs_type(dir) != Some(BPF_FS_MAGIC) {
        return Err(DataplaneError::Bpffs {
            path: dir.into(),
            message: "not on a bpf filesystem".into(),
        });
    }
    Ok(())
}

/// Raises RLIMIT_MEMLOCK where allowed; kernels since 5.11 account BPF memory
/// to the cgroup instead, so failure is not fatal.
fn raise_memlock() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
}

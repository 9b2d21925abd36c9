//! The kernel half, seen from userspace: loads the embedded XDP object,
//! attaches it to interfaces, pins maps and links in a bpffs directory so
//! enforcement outlives the process, adopts that pinned state when started
//! again, and offers typed handles for every map.
//!
//! This module does not decide anything (who is banned, for how long): the
//! ban manager does, and writes through these handles.

use std::{
    ffi::CString,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{
        Array, HashMap, Map, MapData, MapError, PerCpuArray, RingBuf,
        lpm_trie::{Key, LpmTrie},
    },
    programs::{
        ProgramError, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use waf_common::{
    ABI_VERSION, BanEntry, Counter, FLOOR_PROGRAM_NAME, ListEntry, PROGRAM_NAME, RateState,
    XdpConfig, counter, flags, map_names,
};

/// The XDP object built by build.rs from the waf-ebpf crate.
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
            Ok((cost, cost.saturating_mul(burst)))
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
            cfg.byte_window_ns = ((r.burst_bytes as u128 * fp as u128) >> 16) as u64;
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
        cfg.event_interval_ns = r.event_interval.as_nanos().min(u64::MAX as u128) as u64;
        Ok(cfg)
    }
}

/// `CLOCK_BOOTTIME` now, in nanoseconds: the clock ban expiries use (it
/// keeps counting across suspend, unlike the monotonic clock).
pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// An IPv4 or IPv6 trie pair with one value type: the allowlist, the
/// blocklist and the prefix bans.
pub struct NetTrie<V: aya::Pod> {
    name: &'static str,
    v4: LpmTrie<MapData, u32, V>,
    v6: LpmTrie<MapData, [u8; 16], V>,
    capacity: u32,
}

fn key_v4(net: Ipv4Net) -> Key<u32> {
    Key::new(
        net.prefix_len() as u32,
        u32::from_ne_bytes(net.network().octets()),
    )
}

fn key_v6(net: Ipv6Net) -> Key<[u8; 16]> {
    Key::new(net.prefix_len() as u32, net.network().octets())
}

/// Maps "the map is full" errors (E2BIG from hashes, ENOSPC from tries) to
/// [`DataplaneError::MapFull`].
fn write_err(name: &'static str, capacity: u32, e: MapError) -> DataplaneError {
    if let MapError::SyscallError(s) = &e
        && matches!(s.io_error.raw_os_error(), Some(libc::E2BIG) | Some(libc::ENOSPC))
    {
        return DataplaneError::MapFull { name, capacity };
    }
    DataplaneError::Map { name, source: e }
}

fn is_not_found(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

impl<V: aya::Pod> NetTrie<V> {
    /// Writes `value` for `net` (host bits are cleared).
    pub fn insert(&mut self, net: IpNet, value: V) -> Result<()> {
        let r = match net.trunc() {
            IpNet::V4(n) => self.v4.insert(&key_v4(n), value, 0),
            IpNet::V6(n) => self.v6.insert(&key_v6(n), value, 0),
        };
        r.map_err(|e| write_err(self.name, self.capacity, e))
    }

    /// Removes `net`; false when it was not there.
    pub fn remove(&mut self, net: IpNet) -> Result<bool> {
        let r = match net.trunc() {
            IpNet::V4(n) => self.v4.remove(&key_v4(n)),
            IpNet::V6(n) => self.v6.remove(&key_v6(n)),
        };
        match r {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(DataplaneError::Map {
                name: self.name,
                source: e,
            }),
        }
    }

    /// The value stored for exactly `net`.
    pub fn get_exact(&self, net: IpNet) -> Option<V> {
        // An LPM lookup with the prefix's own length finds the longest match
        // within it; only an entry of exactly that length is "exact".
        let net = net.trunc();
        self.entries()
            .ok()?
            .into_iter()
            .find(|(n, _)| *n == net)
            .map(|(_, v)| v)
    }

    /// The value of the longest prefix that contains `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<V> {
        match addr {
            IpAddr::V4(a) => self
                .v4
                .get(&Key::new(32, u32::from_ne_bytes(a.octets())), 0)
                .ok(),
            IpAddr::V6(a) => self.v6.get(&Key::new(128, a.octets()), 0).ok(),
        }
    }

    /// Every entry, IPv4 first.
    pub fn entries(&self) -> Result<Vec<(IpNet, V)>> {
        let err = |e| DataplaneError::Map {
            name: self.name,
            source: e,
        };
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item.map_err(err)?;
            let addr = Ipv4Addr::from(k.data().to_ne_bytes());
            if let Ok(n) = Ipv4Net::new(addr, k.prefix_len() as u8) {
                out.push((IpNet::V4(n), v));
            }
        }
        for item in self.v6.iter() {
            let (k, v) = item.map_err(err)?;
            if let Ok(n) = Ipv6Net::new(Ipv6Addr::from(k.data()), k.prefix_len() as u8) {
                out.push((IpNet::V6(n), v));
            }
        }
        Ok(out)
    }
}

/// The exact-address ban hashes.
pub struct HostBans {
    v4: HashMap<MapData, u32, BanEntry>,
    v6: HashMap<MapData, [u8; 16], BanEntry>,
}

impl HostBans {
    /// Writes a ban for `addr`.
    pub fn insert(&mut self, addr: IpAddr, ban: BanEntry) -> Result<()> {
        let (name, r) = match addr {
            IpAddr::V4(a) => (
                map_names::BAN_V4,
                self.v4.insert(u32::from_ne_bytes(a.octets()), ban, 0),
            ),
            IpAddr::V6(a) => (map_names::BAN_V6, self.v6.insert(a.octets(), ban, 0)),
        };
        r.map_err(|e| write_err(name, waf_common::BAN_CAPACITY, e))
    }

    /// Removes the ban of `addr`; false when there was none.
    pub fn remove(&mut self, addr: IpAddr) -> Result<bool> {
        let (name, r) = match addr {
            IpAddr::V4(a) => (
                map_names::BAN_V4,
                self.v4.remove(&u32::from_ne_bytes(a.octets())),
            ),
            IpAddr::V6(a) => (map_names::BAN_V6, self.v6.remove(&a.octets())),
        };
        match r {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(DataplaneError::Map { name, source: e }),
        }
    }

    /// The ban of `addr`, if any.
    pub fn get(&self, addr: IpAddr) -> Option<BanEntry> {
        match addr {
            IpAddr::V4(a) => self.v4.get(&u32::from_ne_bytes(a.octets()), 0).ok(),
            IpAddr::V6(a) => self.v6.get(&a.octets(), 0).ok(),
        }
    }

    /// Every ban, IPv4 first.
    pub fn entries(&self) -> Result<Vec<(IpAddr, BanEntry)>> {
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item.map_err(|e| DataplaneError::Map {
                name: map_names::BAN_V4,
                source: e,
            })?;
            out.push((IpAddr::V4(Ipv4Addr::from(k.to_ne_bytes())), v));
        }
        for item in self.v6.iter() {
            let (k, v) = item.map_err(|e| DataplaneError::Map {
                name: map_names::BAN_V6,
                source: e,
            })?;
            out.push((IpAddr::V6(Ipv6Addr::from(k)), v));
        }
        Ok(out)
    }

    /// Raw fd-level handles (for batch updates).
    pub fn raw(&self) -> (&HashMap<MapData, u32, BanEntry>, &HashMap<MapData, [u8; 16], BanEntry>) {
        (&self.v4, &self.v6)
    }
}

/// Typed handles for every map of the XDP program.
pub struct Maps {
    /// The runtime configuration (index 0).
    pub config: Array<MapData, XdpConfig>,
    /// Per-CPU verdict and auxiliary counters.
    pub counters: PerCpuArray<MapData, Counter>,
    /// Allowlist (checked first; always passes).
    pub allow: NetTrie<ListEntry>,
    /// Blocklist.
    pub block: NetTrie<ListEntry>,
    /// Prefix bans (expiry in the value).
    pub prefix_bans: NetTrie<BanEntry>,
    /// Exact-address bans.
    pub bans: HostBans,
    /// Per-source rate state, IPv4.
    pub rate_v4: HashMap<MapData, u32, RateState>,
    /// Per-source rate state, IPv6 (masked to the configured prefix).
    pub rate_v6: HashMap<MapData, [u8; 16], RateState>,
    /// The ring buffer of rate events, until someone takes it.
    pub events: Option<RingBuf<MapData>>,
}

fn take<T: TryFrom<Map, Error = MapError>>(ebpf: &mut Ebpf, name: &'static str) -> Result<T> {
    let map = ebpf
        .take_map(name)
        .ok_or(DataplaneError::Map {
            name,
            source: MapError::InvalidName { name: name.into() },
        })?;
    T::try_from(map).map_err(|source| DataplaneError::Map { name, source })
}

impl Maps {
    fn from_ebpf(ebpf: &mut Ebpf) -> Result<Self> {
        Ok(Self {
            config: take(ebpf, map_names::CONFIG)?,
            counters: take(ebpf, map_names::COUNTERS)?,
            allow: NetTrie {
                name: map_names::ALLOW_V4,
                v4: take(ebpf, map_names::ALLOW_V4)?,
                v6: take(ebpf, map_names::ALLOW_V6)?,
                capacity: waf_common::ALLOW_CAPACITY,
            },
            block: NetTrie {
                name: map_names::BLOCK_V4,
                v4: take(ebpf, map_names::BLOCK_V4)?,
                v6: take(ebpf, map_names::BLOCK_V6)?,
                capacity: waf_common::BLOCK_CAPACITY,
            },
            prefix_bans: NetTrie {
                name: map_names::PBAN_V4,
                v4: take(ebpf, map_names::PBAN_V4)?,
                v6: take(ebpf, map_names::PBAN_V6)?,
                capacity: waf_common::PBAN_CAPACITY,
            },
            bans: HostBans {
                v4: take(ebpf, map_names::BAN_V4)?,
                v6: take(ebpf, map_names::BAN_V6)?,
            },
            rate_v4: take(ebpf, map_names::RATE_V4)?,
            rate_v6: take(ebpf, map_names::RATE_V6)?,
            events: Some(take(ebpf, map_names::EVENTS)?),
        })
    }

    /// The current config map entry.
    pub fn xdp_config(&self) -> Result<XdpConfig> {
        self.config.get(&0, 0).map_err(|source| DataplaneError::Map {
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
        let mut out = vec![Counter::default(); counter::COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            let per_cpu =
                self.counters
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
            .entries()?
            .into_iter()
            .map(|(a, b)| (IpNet::from(a), b))
            .collect();
        out.extend(self.prefix_bans.entries()?);
        Ok(out)
    }

    /// The rate state kept for `addr` (IPv6: pass the masked prefix address).
    pub fn rate_state(&self, addr: IpAddr) -> Option<RateState> {
        match addr {
            IpAddr::V4(a) => self.rate_v4.get(&u32::from_ne_bytes(a.octets()), 0).ok(),
            IpAddr::V6(a) => self.rate_v6.get(&a.octets(), 0).ok(),
        }
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
    pin_dir: Option<PathBuf>,
    attachments: Vec<Attachment>,
}

/// Expected (key size, value size) of each map, to refuse pinned maps of
/// another layout before loading against them.
fn expected_layout(name: &str) -> (u32, u32) {
    use std::mem::size_of;
    let lpm = |data: usize| (4 + data) as u32;
    match name {
        map_names::CONFIG => (4, size_of::<XdpConfig>() as u32),
        map_names::COUNTERS => (4, size_of::<Counter>() as u32),
        map_names::ALLOW_V4 | map_names::BLOCK_V4 => (lpm(4), size_of::<ListEntry>() as u32),
        map_names::ALLOW_V6 | map_names::BLOCK_V6 => (lpm(16), size_of::<ListEntry>() as u32),
        map_names::PBAN_V4 => (lpm(4), size_of::<BanEntry>() as u32),
        map_names::PBAN_V6 => (lpm(16), size_of::<BanEntry>() as u32),
        map_names::BAN_V4 => (4, size_of::<BanEntry>() as u32),
        map_names::BAN_V6 => (16, size_of::<BanEntry>() as u32),
        map_names::RATE_V4 => (4, size_of::<RateState>() as u32),
        map_names::RATE_V6 => (16, size_of::<RateState>() as u32),
        _ => (0, 0), // ring buffer: no key or value
    }
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
            pin_dir: opts.pin_dir.clone(),
            attachments: Vec::new(),
        })
    }

    /// The XDP program (for `BPF_PROG_TEST_RUN`).
    pub fn program(&mut self) -> Result<&mut Xdp> {
        program(&mut self.ebpf, PROGRAM_NAME)
    }

    /// Loads and returns the trivial XDP_DROP program benchmarks measure the
    /// harness floor with.
    pub fn floor_program(&mut self) -> Result<&mut Xdp> {
        let prog: &mut Xdp = program(&mut self.ebpf, FLOOR_PROGRAM_NAME)?;
        if prog.fd().is_err() {
            prog.load()?;
        }
        Ok(prog)
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
                    let fd_link = FdLink::try_from(link).map_err(|e| DataplaneError::Interface {
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
    for name in map_names::ALL {
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
    for name in map_names::ALL {
        let p = dir.join(name);
        if !p.exists() {
            continue;
        }
        let data = MapData::from_pin(&p).map_err(|source| DataplaneError::Map { name, source })?;
        let info = data
            .info()
            .map_err(|source| DataplaneError::Map { name, source })?;
        let (k, v) = expected_layout(name);
        if (k, v) != (0, 0) && (info.key_size(), info.value_size()) != (k, v) {
            return Err(DataplaneError::Incompatible {
                dir: dir.into(),
                what: format!(
                    "{name} has key/value size {}/{}, expected {k}/{v}",
                    info.key_size(),
                    info.value_size()
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

//! `waf gen`: a packet generator for load-testing the filter.
//!
//! It builds one Ethernet frame (UDP, TCP SYN, or a TCP segment carrying an
//! HTTP GET; IPv4 or IPv6; valid checksums) and sends it over and over with
//! the source address spread over CIDR pools (spoofed floods, as attacks
//! are), optionally mixed with a share of "legitimate" sources, for a
//! bounded duration or count, at a given rate or as fast as it can.
//!
//! Two engines:
//! - **live** (fast path): the `waf_gen` XDP program run with
//!   BPF_PROG_TEST_RUN in live-frames mode. The kernel recycles the frame in
//!   a page pool, the program rewrites the source in place (incremental
//!   checksums) and returns `XDP_TX`, which transmits the frame out of the
//!   interface named in `ctx_in`: no copy, no skb, no syscall per frame.
//! - **packet** (portable fallback): an AF_PACKET socket that bypasses the
//!   qdisc and sends batches with `sendmmsg`, the same rewrite done in
//!   userspace ([`Rewriter`]).

use std::{
    ffi::CString,
    fmt,
    io::{self, IsTerminal as _, Write as _},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aya::{
    maps::{Array, MapData, PerCpuArray},
    programs::{ProgramError, TestRun as _, TestRunAttrs, TestRunOptions, Xdp},
};
use ipnet::IpNet;
use waf_common::r#gen::{
    ADDR_MUL, ADDR_MUL_HI, CONFIG_MAP, GenConfig, GenPool, GenState, MAX_POOLS, PROGRAM_NAME,
    SELECT_SLOTS, STATE_MAP,
};

mod hold;
mod tools;

pub use self::{
    hold::DispatcherHold,
    tools::{TOOLS_OBJECT, Tools, ToolsError},
};
use crate::packet::{FrameSpec, L4, tcp};

/// The smallest frame sent (an Ethernet minimum frame without its FCS).
pub const MIN_FRAME: usize = 60;
/// The largest frame sent (a 1500-byte MTU frame without its FCS).
pub const MAX_FRAME: usize = 1514;
/// Largest live-frames batch the kernel accepts.
pub const MAX_BATCH: u32 = 256;

/// What `waf gen` accepts on the command line. Values are taken as text and
/// checked by [`GenArgs::resolve`], so every bad value gets one clear line.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(
    about = "Send a bounded flood of frames out of an interface (load-testing the filter)",
    long_about = "Send a bounded flood of frames out of an interface, with source addresses \
                  spread over CIDR pools (spoofed, as attacks are) and valid checksums. \
                  --proto http sends TCP segments carrying an HTTP GET without any handshake: \
                  it is a flood tool, not an HTTP client. Only send to hosts you own."
)]
pub struct GenArgs {
    /// Interface to send from.
    #[arg(long, short)]
    pub interface: String,
    /// Destination address (IPv4 or IPv6; sets the family).
    #[arg(long)]
    pub dst: String,
    /// Destination MAC (default: the neighbour entry of --dst on the interface).
    #[arg(long)]
    pub dst_mac: Option<String>,
    /// Source pool, a CIDR or an address (repeat for several; default
    /// 203.0.113.0/24 or 2001:db8:ffff::/64).
    #[arg(long)]
    pub src: Vec<String>,
    /// Legitimate source pool mixed into the flood (repeat for several).
    #[arg(long)]
    pub legit: Vec<String>,
    /// Percent of frames from the --legit pools (default 10 when given).
    #[arg(long)]
    pub legit_share: Option<String>,
    /// udp, syn (TCP SYN) or http (TCP segment with an HTTP GET, no handshake).
    #[arg(long, default_value = "udp")]
    pub proto: String,
    /// Destination port (default 9 for udp, 80 for syn and http).
    #[arg(long)]
    pub dport: Option<String>,
    /// Fixed source port (default: spread over 1024-33791).
    #[arg(long)]
    pub sport: Option<String>,
    /// Frame size in bytes without the FCS (60-1514; default 64, or the
    /// smallest frame that holds the headers).
    #[arg(long)]
    pub size: Option<String>,
    /// Frames per second, or `max`.
    #[arg(long, default_value = "max")]
    pub rate: String,
    /// Stop after sending for this long (e.g. 10s, 500ms, 2m), counted from
    /// the first frame.
    #[arg(long)]
    pub duration: Option<String>,
    /// Stop after this many frames.
    #[arg(long)]
    pub count: Option<String>,
    /// live (XDP live frames), packet (AF_PACKET) or auto (live, else packet).
    #[arg(long, default_value = "auto")]
    pub engine: String,
    /// Sending threads (each on its own CPU; default 1).
    #[arg(long, default_value = "1")]
    pub threads: String,
    /// Pin the sending threads to these CPUs (comma separated).
    #[arg(long)]
    pub cpus: Option<String>,
    /// Live-frames batch size (1-256).
    #[arg(long, default_value = "64")]
    pub batch: String,
    /// No progress line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Layer 4 of the generated frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// TCP SYNs.
    Syn,
    /// TCP segments (PSH|ACK) carrying an HTTP GET, without a handshake.
    Http,
}

/// Send rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// As fast as the engine goes.
    Max,
    /// Frames per second (all threads together).
    Pps(u64),
}

/// Which sending engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Live frames if the kernel can, else AF_PACKET.
    Auto,
    /// BPF_PROG_TEST_RUN with XDP live frames.
    Live,
    /// AF_PACKET with `sendmmsg`.
    Packet,
}

/// A checked generator configuration.
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Interface to send from.
    pub interface: String,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination MAC (None: resolve the neighbour).
    pub dst_mac: Option<[u8; 6]>,
    /// Attacking source pools.
    pub src: Vec<IpNet>,
    /// Legitimate source pools.
    pub legit: Vec<IpNet>,
    /// Share of frames from `legit`, 0.0..=1.0.
    pub legit_share: f64,
    /// Layer 4.
    pub proto: Proto,
    /// Destination port.
    pub dport: u16,
    /// Fixed source port (None: spread).
    pub sport: Option<u16>,
    /// Frame size without FCS.
    pub size: usize,
    /// Rate.
    pub rate: Rate,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many frames.
    pub count: Option<u64>,
    /// Engine.
    pub engine: Engine,
    /// Sending threads.
    pub threads: usize,
    /// CPUs to pin the threads to (empty: no pinning).
    pub cpus: Vec<usize>,
    /// Live-frames batch size.
    pub batch: u32,
    /// Print a progress line every second.
    pub progress: bool,
}

/// A bad argument or a failure to send, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// An argument is invalid.
    #[error("{0}")]
    Arg(String),
    /// The interface is missing or unusable.
    #[error("interface {interface}: {message}")]
    Interface {
        /// Its name.
        interface: String,
        /// What is wrong.
        message: String,
    },
    /// The live-frames engine failed.
    #[error("live frames: {0}")]
    Live(String),
    /// The tools object (the generator's program) could not be used.
    #[error("live frames: {0}")]
    Tools(#[from] ToolsError),
    /// The AF_PACKET engine failed.
    #[error("AF_PACKET: {0}")]
    Packet(String),
}

type Result<T, E = GenError> = std::result::Result<T, E>;

fn arg_err(flag: &str, value: &str, what: &str) -> GenError {
    GenError::Arg(format!("--{flag} {value}: {what}"))
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff` (or with dashes).
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || {
        arg_err(
            "dst-mac",
            s,
            "expected a MAC address like 02:00:00:00:00:01",
        )
    };
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

/// Parses `--rate`: a positive number of frames per second (`k`/`m`
/// suffixes allowed: `500k`, `2m`) or `max`.
pub fn parse_rate(s: &str) -> Result<Rate> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    let n = parse_count_like(s).ok_or_else(|| {
        arg_err(
            "rate",
            s,
            "expected frames per second (e.g. 100000, 500k, 2m) or `max`",
        )
    })?;
    if n == 0 {
        return Err(arg_err(
            "rate",
            s,
            "must be at least 1 frame per second (or `max`)",
        ));
    }
    Ok(Rate::Pps(n))
}

fn parse_count_like(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1_000),
        'm' | 'M' => (&s[..s.len() - 1], 1_000_000),
        'g' | 'G' => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    let num = num.replace('_', "");
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mul);
    }
    let f: f64 = num.parse().ok()?;
    if !f.is_finite() || f < 0.0 || f * mul as f64 > u64::MAX as f64 / 2.0 {
        return None;
    }
    Some((f * mul as f64).round() as u64)
}

/// Parses a duration: `10s`, `500ms`, `2m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && (0.0..1e9).contains(&secs) => Duration::from_secs_f64(secs),
        Ok(_) => return Err(arg_err("duration", s, "out of range")),
        Err(_) => humantime::parse_duration(s.trim())
            .map_err(|e| arg_err("duration", s, &format!("{e} (e.g. 10s, 500ms, 2m)")))?,
    };
    if d.is_zero() {
        return Err(arg_err("duration", s, "must be longer than zero"));
    }
    Ok(d)
}

/// Parses a source pool: a CIDR or a bare address (one source).
pub fn parse_pool(flag: &str, s: &str) -> Result<IpNet> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        arg_err(
            flag,
            s,
            "expected a CIDR (198.51.100.0/24, 2001:db8::/64) or an address",
        )
    })
}

fn parse_num<T: std::str::FromStr>(flag: &str, s: &str, what: &str) -> Result<T> {
    s.trim().parse().map_err(|_| arg_err(flag, s, what))
}

impl GenArgs {
    /// Checks every value and returns the configuration, or one line saying
    /// what is wrong.
    pub fn resolve(&self) -> Result<GenOptions> {
        if self.interface.is_empty() || self.interface.len() > 15 || self.interface.contains('/') {
            return Err(arg_err(
                "interface",
                &self.interface,
                "not an interface name",
            ));
        }
        let dst: IpAddr = self.dst.trim().parse().map_err(|_| {
            arg_err(
                "dst",
                &self.dst,
                "expected an IPv4 or IPv6 address (e.g. 192.0.2.1, 2001:db8::1)",
            )
        })?;
        let dst_mac = self.dst_mac.as_deref().map(parse_mac).transpose()?;
        let proto = match self.proto.as_str() {
            "udp" => Proto::Udp,
            "syn" => Proto::Syn,
            "http" => Proto::Http,
            other => return Err(arg_err("proto", other, "expected udp, syn or http")),
        };
        let mut src = self
            .src
            .iter()
            .map(|s| parse_pool("src", s))
            .collect::<Result<Vec<_>>>()?;
        if src.is_empty() {
            src.push(match dst {
                IpAddr::V4(_) => "203.0.113.0/24".parse().expect("valid"),
                IpAddr::V6(_) => "2001:db8:ffff::/64".parse().expect("valid"),
            });
        }
        let legit = self
            .legit
            .iter()
            .map(|s| parse_pool("legit", s))
            .collect::<Result<Vec<_>>>()?;
        for (flag, net) in src
            .iter()
            .map(|n| ("src", n))
            .chain(legit.iter().map(|n| ("legit", n)))
        {
            if net.addr().is_ipv4() != dst.is_ipv4() {
                return Err(arg_err(
                    flag,
                    &net.to_string(),
                    &format!("not of the family of --dst {dst}"),
                ));
            }
        }
        if src.len() + legit.len() > MAX_POOLS {
            return Err(GenError::Arg(format!(
                "{} source pools: at most {MAX_POOLS} (--src and --legit together)",
                src.len() + legit.len()
            )));
        }
        let legit_share = match &self.legit_share {
            None => {
                if legit.is_empty() {
                    0.0
                } else {
                    0.1
                }
            }
            Some(s) => {
                let p: f64 = parse_num("legit-share", s, "expected a percentage (0-100)")?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(arg_err("legit-share", s, "must be between 0 and 100"));
                }
                if legit.is_empty() && p > 0.0 {
                    return Err(arg_err("legit-share", s, "needs at least one --legit pool"));
                }
                p / 100.0
            }
        };
        let dport = match &self.dport {
            Some(s) => parse_num("dport", s, "expected a port number (0-65535)")?,
            None => match proto {
                Proto::Udp => 9,
                Proto::Syn | Proto::Http => 80,
            },
        };
        let sport = self
            .sport
            .as_deref()
            .map(|s| parse_num::<u16>("sport", s, "expected a port number (0-65535)"))
            .transpose()?;
        let min = min_frame(dst, proto);
        let size: usize = match &self.size {
            Some(s) => parse_num("size", s, "expected a frame size in bytes")?,
            None => min.max(64),
        };
        if size < min || size > MAX_FRAME {
            return Err(arg_err(
                "size",
                &size.to_string(),
                &format!(
                    "must be between {min} and {MAX_FRAME} bytes for {} over {}",
                    proto_name(proto),
                    if dst.is_ipv4() { "IPv4" } else { "IPv6" }
                ),
            ));
        }
        let rate = parse_rate(&self.rate)?;
        let duration = self.duration.as_deref().map(parse_duration).transpose()?;
        let count = match &self.count {
            Some(s) => {
                let n = parse_count_like(s)
                    .ok_or_else(|| arg_err("count", s, "expected a number of frames"))?;
                if n == 0 {
                    return Err(arg_err("count", s, "must be at least 1"));
                }
                Some(n)
            }
            None => None,
        };
        if duration.is_none() && count.is_none() {
            return Err(GenError::Arg(
                "give --duration or --count (or both): the generator always stops by itself".into(),
            ));
        }
        let engine = match self.engine.as_str() {
            "auto" => Engine::Auto,
            "live" | "xdp" => Engine::Live,
            "packet" | "af_packet" => Engine::Packet,
            other => return Err(arg_err("engine", other, "expected auto, live or packet")),
        };
        let threads: usize = parse_num("threads", &self.threads, "expected a number of threads")?;
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads == 0 || threads > 4 * ncpu.max(1) {
            return Err(arg_err(
                "threads",
                &self.threads,
                &format!("must be between 1 and {}", 4 * ncpu.max(1)),
            ));
        }
        let cpus = match &self.cpus {
            None => Vec::new(),
            Some(s) => s
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n < 1024)
                        .ok_or_else(|| arg_err("cpus", s, "expected CPU numbers like 0,1"))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let batch: u32 = parse_num("batch", &self.batch, "expected a batch size (1-256)")?;
        if batch == 0 || batch > MAX_BATCH {
            return Err(arg_err("batch", &self.batch, "must be between 1 and 256"));
        }
        Ok(GenOptions {
            interface: self.interface.clone(),
            dst,
            dst_mac,
            src,
            legit,
            legit_share,
            proto,
            dport,
            sport,
            size,
            rate,
            duration,
            count,
            engine,
            threads,
            cpus,
            batch,
            progress: !self.quiet,
        })
    }
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Udp => "udp",
        Proto::Syn => "syn",
        Proto::Http => "http",
    }
}

/// The HTTP request `--proto http` carries (without padding).
fn http_request(dst: IpAddr) -> String {
    let host = match dst {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: waf-gen\r\n\r\n")
}

fn headers_len(dst: IpAddr, proto: Proto) -> usize {
    14 + if dst.is_ipv4() { 20 } else { 40 } + if proto == Proto::Udp { 8 } else { 20 }
}

/// The smallest `--size` for a family and protocol.
pub fn min_frame(dst: IpAddr, proto: Proto) -> usize {
    let mut n = headers_len(dst, proto);
    if proto == Proto::Http {
        n += http_request(dst).len();
    }
    n.max(MIN_FRAME)
}

/// The frame the generator repeats: from the first address of the first
/// pool, to `dst`, padded to `size` with payload (HTTP: a padding header).
pub fn template_frame(opts: &GenOptions, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Vec<u8> {
    let src = opts
        .src
        .first()
        .map(|n| n.network())
        .unwrap_or(match opts.dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
    let sport = opts.sport.unwrap_or(1024);
    let room = opts.size - headers_len(opts.dst, opts.proto);
    let (l4, payload) = match opts.proto {
        Proto::Udp => (
            L4::Udp {
                sport,
                dport: opts.dport,
            },
            vec![0u8; room],
        ),
        Proto::Syn => (
            L4::Tcp {
                sport,
                dport: opts.dport,
                flags: tcp::SYN,
            },
            vec![0u8; room],
        ),
        Proto::Http => {
            let req = http_request(opts.dst);
            let mut p = req.into_bytes();
            let pad = room.saturating_sub(p.len());
            if pad > 0 {
                // Grow the request with a header so the bytes stay HTTP.
                let fill = pad.saturating_sub("X-Pad: \r\n".len());
                let mut h = format!("X-Pad: {}\r\n", "a".repeat(fill)).into_bytes();
                h.truncate(pad);
                let at = p.len() - 2;
                p.splice(at..at, h);
            }
            (
                L4::Tcp {
                    sport,
                    dport: opts.dport,
                    flags: tcp::PSH | tcp::ACK,
                },
                p,
            )
        }
    };
    let mut spec = FrameSpec::new(src, opts.dst).with_l4(l4);
    spec.payload = payload;
    spec.src_mac = src_mac;
    spec.dst_mac = dst_mac;
    let mut f = spec.build();
    f.resize(opts.size.max(f.len()), 0);
    f
}

/// A pool in the program's form (host order base and varying bits).
pub fn pool_of(net: &IpNet) -> GenPool {
    match net {
        IpNet::V4(n) => GenPool {
            base_hi: 0,
            base_lo: u64::from(u32::from(n.network())),
            mask_hi: 0,
            mask_lo: u64::from(u32::from(n.hostmask())),
        },
        IpNet::V6(n) => {
            let b = u128::from(n.network());
            let m = u128::from(n.hostmask());
            GenPool {
                base_hi: (b >> 64) as u64,
                base_lo: b as u64,
                mask_hi: (m >> 64) as u64,
                mask_lo: m as u64,
            }
        }
    }
}

/// The program's configuration for `opts`: the pools (attacking first,
/// then legitimate) and a selector that interleaves them by weight
/// (smooth weighted round robin over 256 slots).
pub fn gen_config(opts: &GenOptions) -> GenConfig {
    let mut cfg = GenConfig {
        family: if opts.dst.is_ipv4() { 4 } else { 6 },
        proto: if opts.proto == Proto::Udp { 17 } else { 6 },
        ..Default::default()
    };
    if opts.sport.is_none() {
        cfg.sport_base = 1024;
        cfg.sport_mask = 0x7fff;
    }
    let mut weights = Vec::new();
    let attack_share = if opts.legit.is_empty() {
        1.0
    } else {
        1.0 - opts.legit_share
    };
    for (i, net) in opts.src.iter().chain(&opts.legit).enumerate() {
        cfg.pools[i] = pool_of(net);
        weights.push(if i < opts.src.len() {
            attack_share / opts.src.len() as f64
        } else {
            opts.legit_share / opts.legit.len() as f64
        });
    }
    let total: f64 = weights.iter().sum();
    let mut current = vec![0.0f64; weights.len()];
    for slot in cfg.select.iter_mut() {
        let mut best = 0;
        for i in 0..weights.len() {
            current[i] += weights[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        *slot = best as u8;
    }
    cfg
}

/// The generator's per-frame rewrite done in userspace, exactly as the
/// `waf_gen` program does it (the AF_PACKET engine uses it, and tests
/// compare the two).
#[derive(Clone, Debug)]
pub struct Rewriter {
    /// The configuration.
    pub cfg: GenConfig,
    /// Frames and per-pool sequence numbers so far.
    pub state: GenState,
}

fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn word(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

fn set_word(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

impl Rewriter {
    /// A rewriter starting at frame 0.
    pub fn new(cfg: GenConfig) -> Self {
        Self {
            cfg,
            state: GenState::default(),
        }
    }

    /// Rewrites the source of `f` (an untagged frame of the configured
    /// family and protocol) for the next frame of the sequence.
    pub fn apply(&mut self, f: &mut [u8]) {
        let cfg = &self.cfg;
        if cfg.family == 0 {
            return;
        }
        let slot = (self.state.frames as usize) % SELECT_SLOTS;
        self.state.frames += 1;
        let idx = cfg.select[slot] as usize % MAX_POOLS;
        let n = self.state.per_pool[idx];
        self.state.per_pool[idx] = n + 1;
        let pool = cfg.pools[idx];
        let lo = n.wrapping_mul(ADDR_MUL);
        let hi = n.wrapping_mul(ADDR_MUL_HI);
        let (saddr, l4, ip_csum) = if cfg.family == 4 {
            (26, 34, Some(24))
        } else {
            (22, 54, None)
        };
        let udp = cfg.proto == 17;
        let l4_csum = l4 + if udp { 6 } else { 16 };
        if f.len() < l4_csum + 2 {
            return;
        }
        let new: Vec<u8> = if cfg.family == 4 {
            ((pool.base_lo | (lo & pool.mask_lo)) as u32)
                .to_be_bytes()
                .to_vec()
        } else {
            let a = (u128::from(pool.base_hi | (hi & pool.mask_hi)) << 64)
                | u128::from(pool.base_lo | (lo & pool.mask_lo));
            a.to_be_bytes().to_vec()
        };
        let mut delta = 0u64;
        for (i, pair) in new.chunks(2).enumerate() {
            let at = saddr + 2 * i;
            let w = u16::from_be_bytes([pair[0], pair[1]]);
            delta += u64::from(!word(f, at)) + u64::from(w);
            set_word(f, at, w);
        }
        if let Some(at) = ip_csum {
            let c = !fold(u64::from(!word(f, at)) + delta);
            set_word(f, at, c);
        }
        if cfg.sport_mask != 0 {
            let p = (cfg.sport_base + (((lo >> 32) as u32) & cfg.sport_mask)) as u16;
            delta += u64::from(!word(f, l4)) + u64::from(p);
            set_word(f, l4, p);
        }
        let old = word(f, l4_csum);
        if udp && old == 0 {
            return;
        }
        let mut c = !fold(u64::from(!old) + delta);
        if udp && c == 0 {
            c = 0xffff;
        }
        set_word(f, l4_csum, c);
    }
}

/// The outcome of a run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GenSummary {
    /// The engine that sent.
    pub engine: Engine,
    /// Frames sent (handed to the interface).
    pub frames: u64,
    /// Frame size in bytes (without FCS).
    pub frame_bytes: usize,
    /// Seconds from the first to the last frame (the sending time, without
    /// loading and setting up the engine).
    pub seconds: f64,
    /// Frames per second.
    pub pps: f64,
    /// Bits per second of frame data.
    pub bits_per_second: f64,
    /// Frames per source pool, attacking pools first.
    pub per_pool: Vec<(String, u64)>,
    /// Frames from the legitimate pools.
    pub legit_frames: u64,
    /// Frames the interface reported as transmitted to its peer
    /// (`*xdp_xmit` ethtool counters of the live engine; None: not known).
    pub xmit_ok: Option<u64>,
    /// Frames the interface reported it could not transmit (a full peer
    /// ring, or a peer that cannot take XDP frames).
    pub xmit_errors: Option<u64>,
    /// True when stopped early by a signal.
    pub interrupted: bool,
}

impl fmt::Display for GenSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sent {} frames of {} bytes in {:.3} s ({} engine): {} pps, {}",
            self.frames,
            self.frame_bytes,
            self.seconds,
            match self.engine {
                Engine::Live => "live-frames",
                Engine::Packet => "AF_PACKET",
                Engine::Auto => "auto",
            },
            human(self.pps, ""),
            human(self.bits_per_second, "bit/s"),
        )?;
        if let (Some(ok), Some(err)) = (self.xmit_ok, self.xmit_errors) {
            writeln!(
                f,
                "interface: {ok} frames accepted by the peer, {err} not transmitted"
            )?;
        }
        if self.legit_frames > 0 {
            writeln!(
                f,
                "legitimate sources: {} frames ({:.1}%)",
                self.legit_frames,
                100.0 * self.legit_frames as f64 / self.frames.max(1) as f64
            )?;
        }
        for (pool, n) in &self.per_pool {
            writeln!(f, "  {pool:<24} {n} frames")?;
        }
        if self.interrupted {
            writeln!(f, "interrupted")?;
        }
        Ok(())
    }
}

/// `1234567.0` -> `1.23 M` + unit.
pub fn human(v: f64, unit: &str) -> String {
    let (d, p) = if v >= 1e9 {
        (1e9, "G")
    } else if v >= 1e6 {
        (1e6, "M")
    } else if v >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    format!("{:.2} {p}{unit}", v / d).trim_end().to_string()
}

// ---------------------------------------------------------------------------
// Interfaces: index, MAC, neighbour, ethtool counters (all through sockets
// of the calling thread's network namespace, never /sys).

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    data: [u8; 24],
}

impl IfReq {
    fn new(ifname: &str) -> Self {
        let mut r = Self {
            name: [0; 16],
            data: [0; 24],
        };
        let n = ifname.len().min(15);
        r.name[..n].copy_from_slice(&ifname.as_bytes()[..n]);
        r
    }
}

fn dgram_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The index of `ifname` in the calling thread's network namespace.
pub fn ifindex(ifname: &str) -> Result<u32> {
    let c = CString::new(ifname).map_err(|_| GenError::Interface {
        interface: ifname.into(),
        message: "name contains a NUL byte".into(),
    })?;
    // SAFETY: a valid C string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(GenError::Interface {
            interface: ifname.into(),
            message: "no such interface in this network namespace".into(),
        }),
        i => Ok(i),
    }
}

/// The MAC address of `ifname`.
pub fn interface_mac(ifname: &str) -> Result<[u8; 6]> {
    let err = |e: io::Error| GenError::Interface {
        interface: ifname.into(),
        message: format!("reading its MAC address: {e}"),
    };
    let sock = dgram_socket().map_err(err)?;
    let mut req = IfReq::new(ifname);
    // SAFETY: SIOCGIFHWADDR fills the ifreq we pass.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) };
    if rc != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&req.data[2..8]);
    Ok(mac)
}

fn arp_lookup(ifname: &str, dst: Ipv4Addr) -> Option<[u8; 6]> {
    let sock = dgram_socket().ok()?;
    // SAFETY: an all-zero arpreq is valid.
    let mut req: libc::arpreq = unsafe { std::mem::zeroed() };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(dst.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in fits in sockaddr (both 16 bytes).
    unsafe {
        std::ptr::copy_nonoverlapping(
            &sin as *const _ as *const u8,
            &mut req.arp_pa as *mut _ as *mut u8,
            std::mem::size_of::<libc::sockaddr_in>(),
        )
    };
    for (d, s) in req.arp_dev.iter_mut().zip(ifname.bytes().take(15)) {
        *d = s as libc::c_char;
    }
    // SAFETY: SIOCGARP reads and fills the arpreq we pass.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGARP, &mut req) };
    if rc != 0 || req.arp_flags & libc::ATF_COM == 0 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(req.arp_ha.sa_data.iter()) {
        *m = *b as u8;
    }
    Some(mac)
}

fn ndisc_lookup(ifname: &str, dst: Ipv6Addr) -> Option<[u8; 6]> {
    let out = std::process::Command::new("ip")
        .args(["-6", "neigh", "show", &dst.to_string(), "dev", ifname])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "lladdr" {
            return parse_mac(words.next()?).ok();
        }
    }
    None
}

/// The MAC of `dst` on `ifname`: the neighbour entry, after prompting the
/// kernel to resolve it (one UDP datagram to port 9) if there is none.
pub fn resolve_mac(ifname: &str, dst: IpAddr) -> Result<[u8; 6]> {
    let lookup = || match dst {
        IpAddr::V4(a) => arp_lookup(ifname, a),
        IpAddr::V6(a) => ndisc_lookup(ifname, a),
    };
    if let Some(m) = lookup() {
        return Ok(m);
    }
    let bind: std::net::SocketAddr = match dst {
        IpAddr::V4(_) => "0.0.0.0:0".parse().expect("valid"),
        IpAddr::V6(_) => "[::]:0".parse().expect("valid"),
    };
    if let Ok(s) = std::net::UdpSocket::bind(bind) {
        let _ = s.send_to(b"waf gen: neighbour probe", (dst, 9));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(m) = lookup() {
            return Ok(m);
        }
    }
    Err(GenError::Interface {
        interface: ifname.into(),
        message: format!("no neighbour entry for {dst}: pass --dst-mac"),
    })
}

/// The driver counters of `ifname` (what `ethtool -S` shows), by name.
pub fn ethtool_stats(ifname: &str) -> Option<Vec<(String, u64)>> {
    const ETHTOOL_GSTRINGS: u32 = 0x1b;
    const ETHTOOL_GSTATS: u32 = 0x1d;
    const ETHTOOL_GSSET_INFO: u32 = 0x37;
    const ETH_SS_STATS: u32 = 1;
    const ETH_GSTRING_LEN: usize = 32;
    let sock = dgram_socket().ok()?;
    let call = |buf: *mut u8| -> bool {
        let mut req = IfReq::new(ifname);
        req.data[..8].copy_from_slice(&(buf as usize as u64).to_ne_bytes());
        // SAFETY: SIOCETHTOOL with a command buffer we own and sized.
        unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) == 0 }
    };
    // struct ethtool_sset_info { cmd, reserved, u64 sset_mask, u32 data[] }
    let mut info = [0u64; 3];
    info[0] = u64::from(ETHTOOL_GSSET_INFO);
    info[1] = 1 << ETH_SS_STATS;
    if !call(info.as_mut_ptr() as *mut u8) || info[1] & (1 << ETH_SS_STATS) == 0 {
        return None;
    }
    let n = (info[2] & 0xffff_ffff) as usize;
    if n == 0 || n > 4096 {
        return None;
    }
    // struct ethtool_gstrings { cmd, string_set, len, u8 data[] }
    let mut strings = vec![0u8; 12 + n * ETH_GSTRING_LEN];
    strings[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
    strings[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
    strings[8..12].copy_from_slice(&(n as u32).to_ne_bytes());
    if !call(strings.as_mut_ptr()) {
        return None;
    }
    // struct ethtool_stats { cmd, n_stats, u64 data[] }
    let mut stats = vec![0u64; 1 + n];
    stats[0] = u64::from(ETHTOOL_GSTATS) | ((n as u64) << 32);
    if !call(stats.as_mut_ptr() as *mut u8) {
        return None;
    }
    Some(
        (0..n)
            .map(|i| {
                let raw = &strings[12 + i * ETH_GSTRING_LEN..12 + (i + 1) * ETH_GSTRING_LEN];
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                (
                    String::from_utf8_lossy(&raw[..end]).into_owned(),
                    stats[1 + i],
                )
            })
            .collect(),
    )
}

/// Sum of the driver counters of `ifname` whose name ends with `suffix`.
pub fn ethtool_sum(ifname: &str, suffix: &str) -> Option<u64> {
    let s = ethtool_stats(ifname)?;
    let v: Vec<u64> = s
        .iter()
        .filter(|(n, _)| n.ends_with(suffix))
        .map(|(_, v)| *v)
        .collect();
    (!v.is_empty()).then(|| v.iter().sum())
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays within it (cpu < 1024).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let _ = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Pins sending thread `t`: to the CPUs given, else (several threads) to
/// CPU `t`, else to the CPU it runs on. A thread that stays on one CPU keeps
/// the program's per-CPU sequence whole, so a pool is covered evenly.
fn pin_thread(opts: &GenOptions, t: usize) {
    if !opts.cpus.is_empty() {
        pin_to_cpu(opts.cpus[t % opts.cpus.len()]);
    } else if opts.threads > 1 {
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        pin_to_cpu(t % ncpu);
    } else {
        // SAFETY: no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu >= 0 {
            pin_to_cpu(cpu as usize);
        }
    }
}

// ---------------------------------------------------------------------------
// Pacing and the shared frame budget.

/// The frames left to send, shared by the sending threads, and the run's
/// clock.
///
/// The clock starts when the first frame is about to be sent, not when the
/// run is set up: loading the eBPF object and making the dispatcher hold can
/// take hundreds of milliseconds on a busy machine, and `--duration` is the
/// time spent sending.
struct Budget {
    left: AtomicU64,
    sent: AtomicU64,
    stop: Arc<AtomicBool>,
    /// An engine failed: the other threads stop too.
    abort: AtomicBool,
    /// How long to send, counted from the first frame.
    duration: Option<Duration>,
    /// The fixed point `started_ns` and `last_ns` count from.
    origin: Instant,
    /// When sending started, in ns after `origin` plus one (0: not yet).
    started_ns: AtomicU64,
    /// When the last frames were handed over, in ns after `origin`.
    last_ns: AtomicU64,
}

impl Budget {
    fn new(count: Option<u64>, duration: Option<Duration>, stop: Arc<AtomicBool>) -> Self {
        Self {
            left: AtomicU64::new(count.unwrap_or(u64::MAX)),
            sent: AtomicU64::new(0),
            stop,
            abort: AtomicBool::new(false),
            duration,
            origin: Instant::now(),
            started_ns: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
        }
    }

    fn since_origin(&self) -> u64 {
        self.origin
            .elapsed()
            .as_nanos()
            .min(u128::from(u64::MAX - 1)) as u64
    }

    /// When sending started; the first call starts the clock.
    fn start(&self) -> Instant {
        let now = self.since_origin() + 1;
        let t = match self
            .started_ns
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => now,
            Err(earlier) => earlier,
        };
        self.origin + Duration::from_nanos(t - 1)
    }

    /// When sending started, if it has.
    fn started(&self) -> Option<Instant> {
        match self.started_ns.load(Ordering::Relaxed) {
            0 => None,
            t => Some(self.origin + Duration::from_nanos(t - 1)),
        }
    }

    /// Takes up to `want` frames from the budget (0: done). The first take
    /// starts the clock: the caller sends right after it.
    fn take(&self, want: u64) -> u64 {
        self.start();
        if self.stop.load(Ordering::Relaxed) || self.time_left().is_some_and(|l| l.is_zero()) {
            return 0;
        }
        let mut got = 0;
        let _ = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                got = l.min(want);
                Some(l - got)
            });
        got
    }

    /// Counts `n` frames as sent (now).
    fn record_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
        self.last_ns
            .fetch_max(self.since_origin(), Ordering::Relaxed);
    }

    /// Gives back `n` frames taken but not sent.
    fn give_back(&self, n: u64) {
        self.left.fetch_add(n, Ordering::Relaxed);
    }

    /// Back to the state before the first frame, after an engine failed
    /// without sending any (the fallback engine gets the whole duration).
    fn restart(&self) {
        self.abort.store(false, Ordering::Relaxed);
        self.started_ns.store(0, Ordering::Relaxed);
        self.last_ns.store(0, Ordering::Relaxed);
    }

    /// The time spent sending: from the first frame to the last one.
    fn sending_time(&self) -> Duration {
        match self.started_ns.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            t => Duration::from_nanos(self.last_ns.load(Ordering::Relaxed).saturating_sub(t - 1)),
        }
    }

    fn halted(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed)
    }

    /// The sending time left (all of it before the first frame).
    fn time_left(&self) -> Option<Duration> {
        let d = self.duration?;
        Some(match self.started() {
            Some(s) => d.saturating_sub(s.elapsed()),
            None => d,
        })
    }
}

/// Per-thread pacing: how many frames to send next, sleeping as needed.
struct Pacer {
    /// When the run's sending started (the budget's clock), from the first
    /// paced call on.
    start: Option<Instant>,
    pps: Option<f64>,
    sent: u64,
    /// Frames per call at max rate, adapted to about 20 ms per call.
    chunk: u64,
    quantum: u64,
    /// Seconds per frame over all calls so far (max rate).
    per_frame: Option<f64>,
    /// Time spent in calls.
    busy: Duration,
}

impl Pacer {
    /// `cheap_calls`: the program is held in the XDP dispatcher (see
    /// [`DispatcherHold`]), so a call costs tens of microseconds instead of
    /// milliseconds and a paced rate can be sent in small, even bursts.
    fn new(rate: Rate, threads: usize, batch: u32, cheap_calls: bool) -> Self {
        let pps = match rate {
            Rate::Max => None,
            Rate::Pps(r) => Some((r as f64 / threads as f64).max(1e-3)),
        };
        let quantum = match pps {
            // Cheap calls: one batch, or 50 us of frames when that is more
            // (a receiver's ring, 256 frames on a veth, absorbs such a
            // burst; a long burst at full speed would overflow it and make
            // the flood look lighter than its rate to the receiver).
            Some(p) if cheap_calls => ((p / 20_000.0) as u64).clamp(u64::from(batch), 4096),
            // Otherwise about 5 ms of frames per call (calls have a fixed
            // cost), at least 1, at most 64 batches.
            Some(p) => ((p / 200.0) as u64).clamp(1, 64 * u64::from(batch)),
            None => 0,
        };
        Self {
            start: None,
            pps,
            sent: 0,
            chunk: 65_536,
            quantum,
            per_frame: None,
            busy: Duration::ZERO,
        }
    }

    /// Frames to send now (after sleeping until they are due).
    fn next(&mut self, budget: &Budget) -> u64 {
        match self.pps {
            None => {
                let mut n = self.chunk;
                // Do not run far past the deadline: at most the frames the
                // speed so far sends in the time left.
                if let (Some(left), Some(per)) = (budget.time_left(), self.per_frame) {
                    n = n.min((left.as_secs_f64() / per) as u64 + 1);
                }
                n.max(1)
            }
            Some(pps) => loop {
                let start = *self.start.get_or_insert_with(|| budget.start());
                let due = (start.elapsed().as_secs_f64() * pps) as u64;
                if due >= self.sent + self.quantum {
                    // Catch up after a slow call, but by at most 50 ms of frames.
                    return (due - self.sent).min(self.quantum.max((pps / 20.0) as u64));
                }
                let at = start + Duration::from_secs_f64((self.sent + self.quantum) as f64 / pps);
                let wait = at.saturating_duration_since(Instant::now());
                if let Some(left) = budget.time_left()
                    && left < wait
                {
                    std::thread::sleep(left);
                    return 0;
                }
                if budget.halted() {
                    return 0;
                }
                std::thread::sleep(wait.min(Duration::from_millis(100)));
            },
        }
    }

    fn sent(&mut self, n: u64, took: Duration) {
        self.sent += n;
        self.busy += took;
        if self.pps.is_none() && self.sent > 0 {
            // Every BPF_PROG_TEST_RUN call of an XDP program swaps it into
            // the XDP dispatcher and back (two RCU grace periods, often
            // milliseconds): calls must be long. Aim at about 200 ms each,
            // from the speed over all calls so far (overhead included).
            let per = self.busy.as_secs_f64() / self.sent as f64;
            if per > 0.0 {
                self.chunk = ((0.2 / per) as u64).clamp(4096, 1 << 24);
                self.per_frame = Some(per);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The live-frames engine.

/// The `waf_gen` program, loaded from the tools object (not the firewall's),
/// and its maps.
pub struct LiveGen {
    tools: Tools,
    config: Array<MapData, GenConfig>,
    state: PerCpuArray<MapData, GenState>,
}

impl LiveGen {
    /// Loads the tools object and its generator program.
    pub fn load() -> Result<Self> {
        let mut tools = Tools::load()?;
        tools.program(PROGRAM_NAME)?;
        let config = tools.take_map(CONFIG_MAP)?;
        let state = tools.take_map(STATE_MAP)?;
        Ok(Self {
            tools,
            config,
            state,
        })
    }

    /// The program (for tests that run it on single frames).
    pub fn program(&self) -> &Xdp {
        self.tools
            .loaded(PROGRAM_NAME)
            .expect("LiveGen::load loaded the generator program")
    }

    /// The program, mutable (to attach it).
    pub fn program_mut(&mut self) -> Result<&mut Xdp> {
        Ok(self.tools.program(PROGRAM_NAME)?)
    }

    /// Writes the configuration and clears the per-CPU state.
    pub fn configure(&mut self, cfg: &GenConfig) -> Result<()> {
        self.config
            .set(0, cfg, 0)
            .map_err(|e| GenError::Live(format!("{CONFIG_MAP}: {e}")))?;
        let ncpu = aya::util::nr_cpus().map_err(|(_, e)| GenError::Live(e.to_string()))?;
        let zero = vec![GenState::default(); ncpu];
        self.state
            .set(
                0,
                aya::maps::PerCpuValues::try_from(zero)
                    .map_err(|e| GenError::Live(e.to_string()))?,
                0,
            )
            .map_err(|e| GenError::Live(format!("{STATE_MAP}: {e}")))
    }

    /// The per-CPU state summed over CPUs.
    pub fn state(&self) -> Result<GenState> {
        let v = self
            .state
            .get(&0, 0)
            .map_err(|e| GenError::Live(format!("{STATE_MAP}: {e}")))?;
        let mut s = GenState::default();
        for c in v.iter() {
            s.frames += c.frames;
            for (a, b) in s.per_pool.iter_mut().zip(c.per_pool) {
                *a += b;
            }
        }
        Ok(s)
    }

    /// Sends `repeat` copies of `frame` (rewritten by the program) out of
    /// the interface with index `ifindex`.
    pub fn send(&self, frame: &[u8], ifindex: u32, repeat: u32, batch: u32) -> io::Result<()> {
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        self.program()
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ctx_in: Some(&ctx),
                repeat,
                attrs: TestRunAttrs::new().xdp_live_frames(batch),
                ..Default::default()
            })
            .map(|_| ())
            .map_err(|e| match e {
                ProgramError::SyscallError(s) => s.io_error,
                other => io::Error::other(other.to_string()),
            })
    }
}

fn run_live(
    opts: &GenOptions,
    frame: &[u8],
    ifindex: u32,
    budget: &Budget,
    probe: bool,
) -> Result<GenState> {
    let mut live = LiveGen::load()?;
    live.configure(&gen_config(opts))?;
    let hold = DispatcherHold::new(&mut [live.program_mut()?])
        .inspect_err(|e| {
            tracing::debug!(error = %e, "generator: long calls (program not held in the XDP dispatcher)")
        })
        .ok();
    let cheap_calls = hold.is_some();
    let errors: Vec<io::Error> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.threads)
            .map(|t| {
                let live = &live;
                s.spawn(move || -> Option<io::Error> {
                    pin_thread(opts, t);
                    let mut pacer = Pacer::new(opts.rate, opts.threads, opts.batch, cheap_calls);
                    fine_timer_slack();
                    if probe && t == 0 && budget.take(1) == 1 {
                        // One frame first: an old kernel or an interface
                        // that cannot send fails here.
                        if let Err(e) = live.send(frame, ifindex, 1, 1) {
                            budget.give_back(1);
                            budget.abort.store(true, Ordering::Relaxed);
                            return Some(e);
                        }
                        budget.record_sent(1);
                        pacer.sent += 1;
                    }
                    loop {
                        let want = pacer.next(budget);
                        if want == 0
                            && (budget.halted() || budget.time_left().is_some_and(|l| l.is_zero()))
                        {
                            return None;
                        }
                        if want == 0 {
                            continue;
                        }
                        let n = budget.take(want.min(u64::from(u32::MAX)));
                        if n == 0 {
                            return None;
                        }
                        let t0 = Instant::now();
                        match live.send(frame, ifindex, n as u32, opts.batch) {
                            Ok(()) => {}
                            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                                budget.stop.store(true, Ordering::Relaxed);
                                return None;
                            }
                            Err(e) => {
                                budget.abort.store(true, Ordering::Relaxed);
                                return Some(e);
                            }
                        }
                        budget.record_sent(n);
                        pacer.sent(n, t0.elapsed());
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect()
    });
    drop(hold);
    if let Some(e) = errors.into_iter().next() {
        return Err(GenError::Live(format!("BPF_PROG_TEST_RUN: {e}")));
    }
    live.state()
}

/// Sleeps of the pacing threads wake within microseconds of their deadline
/// (the default timer slack is 50 us, as long as a whole paced burst).
fn fine_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes a number of nanoseconds.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
    }
}

// ---------------------------------------------------------------------------
// The AF_PACKET engine.

fn packet_socket(ifindex: u32) -> io::Result<OwnedFd> {
    // Protocol 0: send only, receive nothing.
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: a zeroed sockaddr_ll is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: bind with a sockaddr_ll of the right size.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let one: libc::c_int = 1;
    // SAFETY: an int option. Bypassing the qdisc is an optimisation only.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    Ok(sock)
}

fn run_packet(opts: &GenOptions, frame: &[u8], ifindex: u32, budget: &Budget) -> Result<GenState> {
    let cfg = gen_config(opts);
    let results: Vec<Result<GenState, io::Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.threads)
            .map(|t| {
                s.spawn(move || -> Result<GenState, io::Error> {
                    pin_thread(opts, t);
                    let sock = packet_socket(ifindex)?;
                    let mut rw = Rewriter::new(cfg);
                    // Threads start at different points of the sequence.
                    rw.state.frames = t as u64 * 7;
                    const B: usize = 64;
                    let mut bufs: Vec<Vec<u8>> = vec![frame.to_vec(); B];
                    let mut pacer = Pacer::new(opts.rate, opts.threads, B as u32, false);
                    loop {
                        let want = pacer.next(budget);
                        if want == 0 {
                            if budget.halted() || budget.time_left().is_some_and(|l| l.is_zero()) {
                                break;
                            }
                            continue;
                        }
                        let n = budget.take(want.min(B as u64)) as usize;
                        if n == 0 {
                            break;
                        }
                        for b in bufs.iter_mut().take(n) {
                            rw.apply(b);
                        }
                        let mut iov: Vec<libc::iovec> = bufs
                            .iter_mut()
                            .take(n)
                            .map(|b| libc::iovec {
                                iov_base: b.as_mut_ptr() as *mut libc::c_void,
                                iov_len: b.len(),
                            })
                            .collect();
                        // SAFETY: zeroed mmsghdr is valid; we fill iov pointers.
                        let mut msgs: Vec<libc::mmsghdr> =
                            (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
                        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
                            m.msg_hdr.msg_iov = v;
                            m.msg_hdr.msg_iovlen = 1;
                        }
                        let t0 = Instant::now();
                        let mut done = 0usize;
                        let mut spins = 0;
                        while done < n {
                            // SAFETY: msgs points at n valid headers.
                            let rc = unsafe {
                                libc::sendmmsg(
                                    sock.as_raw_fd(),
                                    msgs[done..].as_mut_ptr(),
                                    (n - done) as u32,
                                    0,
                                )
                            };
                            if rc < 0 {
                                let e = io::Error::last_os_error();
                                match e.raw_os_error() {
                                    Some(libc::ENOBUFS) | Some(libc::EAGAIN) if spins < 1000 => {
                                        spins += 1;
                                        std::thread::yield_now();
                                        continue;
                                    }
                                    Some(libc::EINTR) => {
                                        budget.stop.store(true, Ordering::Relaxed);
                                        break;
                                    }
                                    _ => {
                                        budget.abort.store(true, Ordering::Relaxed);
                                        return Err(e);
                                    }
                                }
                            }
                            done += rc.max(0) as usize;
                        }
                        // Frames not sent go back to the budget.
                        budget.give_back((n - done) as u64);
                        budget.record_sent(done as u64);
                        pacer.sent(done as u64, t0.elapsed());
                        if done < n && budget.halted() {
                            break;
                        }
                    }
                    Ok(rw.state)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("sending thread panicked")))
            })
            .collect()
    });
    let mut total = GenState::default();
    for r in results {
        let st = r.map_err(|e| GenError::Packet(e.to_string()))?;
        total.frames += st.frames;
        for (a, b) in total.per_pool.iter_mut().zip(st.per_pool) {
            *a += b;
        }
    }
    Ok(total)
}

// ---------------------------------------------------------------------------

/// Runs the generator until its count or duration is reached or `stop` is
/// set. Prints a progress line on stderr when `opts.progress`.
pub fn run(opts: &GenOptions, stop: Arc<AtomicBool>) -> Result<GenSummary> {
    let ifindex = ifindex(&opts.interface)?;
    let src_mac = interface_mac(&opts.interface)?;
    let dst_mac = match opts.dst_mac {
        Some(m) => m,
        None => resolve_mac(&opts.interface, opts.dst)?,
    };
    let frame = template_frame(opts, src_mac, dst_mac);
    let budget = Budget::new(opts.count, opts.duration, stop.clone());
    let xmit = |s: &str| ethtool_sum(&opts.interface, s);
    let before = (xmit("xdp_xmit"), xmit("xdp_xmit_errors"));

    let done = AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        if opts.progress {
            let budget = &budget;
            let done = &done;
            s.spawn(move || progress(budget, done, opts.size));
        }
        let r = match opts.engine {
            Engine::Live => {
                run_live(opts, &frame, ifindex, &budget, true).map(|r| (Engine::Live, r))
            }
            Engine::Packet => {
                run_packet(opts, &frame, ifindex, &budget).map(|r| (Engine::Packet, r))
            }
            Engine::Auto => match run_live(opts, &frame, ifindex, &budget, true) {
                Ok(r) => Ok((Engine::Live, r)),
                Err(e) if budget.sent.load(Ordering::Relaxed) == 0 => {
                    budget.restart();
                    eprintln!("waf gen: live frames unavailable ({e}); using AF_PACKET");
                    run_packet(opts, &frame, ifindex, &budget).map(|r| (Engine::Packet, r))
                }
                Err(e) => Err(e),
            },
        };
        done.store(true, Ordering::Relaxed);
        r
    });
    let (engine, state) = result?;
    let frames = match engine {
        // The program's own count: exact even for a call cut short.
        Engine::Live => state.frames,
        _ => budget.sent.load(Ordering::Relaxed),
    };
    // The time spent sending (not loading and setting up).
    let secs = budget.sending_time().as_secs_f64().max(1e-9);
    let pools: Vec<&IpNet> = opts.src.iter().chain(&opts.legit).collect();
    let per_pool: Vec<(String, u64)> = pools
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let tag = if i >= opts.src.len() { " (legit)" } else { "" };
            (format!("{n}{tag}"), state.per_pool[i])
        })
        .collect();
    let legit_frames = state.per_pool[opts.src.len()..pools.len()].iter().sum();
    let (xmit_ok, xmit_errors) = if engine == Engine::Live {
        let after = (xmit("xdp_xmit"), xmit("xdp_xmit_errors"));
        (
            before.0.zip(after.0).map(|(b, a)| a.saturating_sub(b)),
            before.1.zip(after.1).map(|(b, a)| a.saturating_sub(b)),
        )
    } else {
        (None, None)
    };
    Ok(GenSummary {
        engine,
        frames,
        frame_bytes: opts.size,
        seconds: secs,
        pps: frames as f64 / secs,
        bits_per_second: frames as f64 * opts.size as f64 * 8.0 / secs,
        per_pool,
        legit_frames,
        xmit_ok,
        xmit_errors,
        interrupted: stop.load(Ordering::Relaxed),
    })
}

fn progress(budget: &Budget, done: &AtomicBool, size: usize) {
    let tty = io::stderr().is_terminal();
    let mut last = (Instant::now(), 0u64);
    let mut printed = false;
    while !done.load(Ordering::Relaxed) {
        for _ in 0..20 {
            if done.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if done.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        let sent = budget.sent.load(Ordering::Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64().max(1e-6);
        let pps = (sent - last.1) as f64 / dt;
        last = (now, sent);
        let line = format!(
            "{:6.1} s  {:>12} frames  {:>12}  {:>14}",
            // Sending time: the clock starts with the first frame.
            budget.started().map_or(0.0, |s| s.elapsed().as_secs_f64()),
            sent,
            human(pps, "pps"),
            human(pps * size as f64 * 8.0, "bit/s")
        );
        let mut err = io::stderr().lock();
        if tty {
            let _ = write!(err, "\r{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        printed = true;
    }
    if printed && tty {
        let _ = writeln!(io::stderr());
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// `waf gen`: checks the arguments, runs, prints the summary. Ctrl-C stops
/// early and still prints it.
pub fn main(args: &GenArgs) -> anyhow::Result<()> {
    let opts = args.resolve()?;
    let stop = Arc::new(AtomicBool::new(false));
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_sigint as *const () as libc::sighandler_t);
    }
    let watcher_stop = stop.clone();
    let finished = Arc::new(AtomicBool::new(false));
    let watcher_done = finished.clone();
    let watcher = std::thread::spawn(move || {
        while !watcher_done.load(Ordering::Relaxed) {
            if INTERRUPTED.load(Ordering::Relaxed) {
                watcher_stop.store(true, Ordering::Relaxed);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let r = run(&opts, stop);
    finished.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let summary = r?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
    }
    if let (Some(0), Some(err)) = (summary.xmit_ok, summary.xmit_errors)
        && summary.frames > 0
        && err > 0
    {
        eprintln!(
            "waf gen: warning: the interface transmitted none of the frames; a veth peer needs \
             an XDP program or GRO on (ethtool -K PEER gro on) to take XDP frames"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::checksum;

    fn args(extra: &[(&str, &str)]) -> GenArgs {
        let mut a = GenArgs {
            interface: "veth0".into(),
            dst: "192.0.2.1".into(),
            proto: "udp".into(),
            rate: "max".into(),
            engine: "auto".into(),
            threads: "1".into(),
            batch: "64".into(),
            count: Some("10".into()),
            ..Default::default()
        };
        for (k, v) in extra {
            let v = v.to_string();
            match *k {
                "dst" => a.dst = v,
                "src" => a.src.push(v),
                "legit" => a.legit.push(v),
                "legit-share" => a.legit_share = Some(v),
                "proto" => a.proto = v,
                "size" => a.size = Some(v),
                "rate" => a.rate = v,
                "count" => a.count = Some(v),
                "nocount" => a.count = None,
                "duration" => a.duration = Some(v),
                "dst-mac" => a.dst_mac = Some(v),
                "batch" => a.batch = v,
                "cpus" => a.cpus = Some(v),
                "sport" => a.sport = Some(v),
                _ => panic!("{k}"),
            }
        }
        a
    }

    fn err(extra: &[(&str, &str)]) -> String {
        let e = args(extra)
            .resolve()
            .expect_err("must be refused")
            .to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    #[test]
    fn bad_arguments_get_one_line_errors() {
        assert!(err(&[("rate", "fast")]).contains("--rate fast"));
        assert!(err(&[("rate", "0")]).contains("at least 1"));
        assert!(err(&[("size", "20")]).contains("between 60 and 1514"));
        assert!(err(&[("size", "9000")]).contains("between"));
        assert!(err(&[("dst", "2001:db8::1"), ("size", "60")]).contains("between 62"));
        assert!(err(&[("proto", "icmp")]).contains("udp, syn or http"));
        assert!(err(&[("src", "2001:db8::/64")]).contains("family"));
        assert!(err(&[("src", "300.1.1.0/24")]).contains("CIDR"));
        assert!(err(&[("nocount", "")]).contains("--duration or --count"));
        assert!(err(&[("duration", "soon")]).contains("--duration soon"));
        assert!(err(&[("dst-mac", "02:00:00")]).contains("MAC"));
        assert!(err(&[("batch", "1000")]).contains("between 1 and 256"));
        assert!(err(&[("legit-share", "50")]).contains("--legit"));
        assert!(err(&[("cpus", "a,b")]).contains("--cpus"));
        assert!(err(&[("count", "0")]).contains("at least 1"));
    }

    #[test]
    fn good_arguments_resolve() {
        let o = args(&[
            ("rate", "2.5m"),
            ("duration", "1500ms"),
            ("legit", "192.0.2.0/28"),
            ("dst-mac", "02:00:00:00:00:0a"),
            ("cpus", "0,1"),
        ])
        .resolve()
        .unwrap();
        assert_eq!(o.rate, Rate::Pps(2_500_000));
        assert_eq!(o.duration, Some(Duration::from_millis(1500)));
        assert_eq!(o.count, Some(10));
        assert_eq!(o.src, vec!["203.0.113.0/24".parse::<IpNet>().unwrap()]);
        assert!((o.legit_share - 0.1).abs() < 1e-9);
        assert_eq!(o.dst_mac, Some([2, 0, 0, 0, 0, 10]));
        assert_eq!(o.cpus, vec![0, 1]);
        assert_eq!(o.dport, 9);
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
    }

    fn verify(f: &[u8], v4: bool, udp: bool) {
        let (l3, l4) = if v4 { (14, 34) } else { (14, 54) };
        if v4 {
            assert_eq!(checksum(&[&f[l3..l4]]), 0, "IPv4 header checksum");
        }
        let seg_len = if v4 {
            u16::from_be_bytes([f[16], f[17]]) as usize - 20
        } else {
            u16::from_be_bytes([f[18], f[19]]) as usize
        };
        let seg = &f[l4..l4 + seg_len];
        let proto = if udp { 17u8 } else { 6 };
        let pseudo: Vec<u8> = if v4 {
            let mut p = f[26..34].to_vec();
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(seg_len as u16).to_be_bytes());
            p
        } else {
            let mut p = f[22..54].to_vec();
            p.extend_from_slice(&(seg_len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
            p
        };
        assert_eq!(checksum(&[&pseudo, seg]), 0, "L4 checksum");
    }

    #[test]
    fn rewrites_keep_checksums_valid_and_cover_the_pool() {
        for (dst, src, proto) in [
            ("192.0.2.1", "198.51.100.0/24", "udp"),
            ("192.0.2.1", "198.51.100.0/24", "syn"),
            ("192.0.2.1", "198.51.100.0/24", "http"),
            ("2001:db8::1", "2001:db8:bad::/120", "udp"),
            ("2001:db8::1", "2001:db8:bad::/120", "http"),
        ] {
            let o = args(&[
                ("dst", dst),
                ("src", src),
                ("proto", proto),
                ("size", "200"),
            ])
            .resolve()
            .unwrap();
            let mut f = template_frame(&o, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            assert_eq!(f.len(), 200);
            let v4 = dst.contains('.');
            verify(&f, v4, proto == "udp");
            let mut rw = Rewriter::new(gen_config(&o));
            let mut seen = std::collections::HashSet::new();
            for _ in 0..256 {
                rw.apply(&mut f);
                verify(&f, v4, proto == "udp");
                let src = if v4 {
                    f[26..30].to_vec()
                } else {
                    f[22..38].to_vec()
                };
                let net: IpNet = src_parse(&src);
                assert!(o.src[0].contains(&net.addr()), "{net} in {}", o.src[0]);
                seen.insert(src);
            }
            assert_eq!(seen.len(), 256, "256 frames cover the 256 addresses");
        }
    }

    fn src_parse(b: &[u8]) -> IpNet {
        if b.len() == 4 {
            IpNet::from(IpAddr::from(<[u8; 4]>::try_from(b).unwrap()))
        } else {
            IpNet::from(IpAddr::from(<[u8; 16]>::try_from(b).unwrap()))
        }
    }

    #[test]
    fn selector_mixes_by_weight() {
        let o = args(&[
            ("src", "198.51.100.0/24"),
            ("src", "203.0.113.0/24"),
            ("legit", "192.0.2.0/28"),
            ("legit-share", "25"),
        ])
        .resolve()
        .unwrap();
        let cfg = gen_config(&o);
        let mut n = [0usize; 3];
        for s in cfg.select {
            n[s as usize] += 1;
        }
        assert_eq!(n, [96, 96, 64]);
        // Interleaved, not in runs.
        assert!(cfg.select[..8].contains(&2));
    }

    #[test]
    fn http_frames_carry_a_get() {
        let o = args(&[("proto", "http"), ("size", "300")])
            .resolve()
            .unwrap();
        let f = template_frame(&o, [0; 6], [0; 6]);
        assert_eq!(f.len(), 300);
        let payload = String::from_utf8_lossy(&f[54..]);
        assert!(payload.starts_with("GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n"));
        assert!(payload.ends_with("\r\n\r\n"), "{payload:?}");
        assert_eq!(f[47], tcp::PSH | tcp::ACK);
    }
}

//! `cargo xtask bench xdp`: the XDP program's cost per packet on each path,
//! under BPF_PROG_TEST_RUN with maps filled to scale, against the filter a
//! user would write instead, measured in the same run: the textbook XDP
//! ban filter (one hash lookup of the IPv4 source), its drop beside each
//! drop path and its pass beside each pass path, in every round. The
//! goals are ratios to it (medians of the per-round pairs); each IPv6 path
//! is also compared with its IPv4 counterpart measured just before it.
//! A trivial XDP_DROP program (the harness floor) is measured beside each
//! path too, for information. Two scales: 100,000 exact bans, 10,000
//! blocklist CIDRs and 1,000 allowlist entries; then topped up to
//! 1,000,000 bans and 100,000 CIDRs (`--base-only` skips it). Last, the
//! case "full country database + cloud ranges loaded" (`bench::sources`;
//! `--no-sources` skips it): the base's pass paths with a policy of half a
//! million ranges in the source-policy set. The floor
//! and the reference come from the tools object, the firewall from the
//! daemon's. Writes target/bench/xdp.json.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::json;
use waf_common::{
    BanEntry, ListEntry, ban_reason,
    tools::{FLOOR_PROGRAM_NAME, REFERENCE_PROGRAM_NAME},
};
use waf_user::{
    dataplane::{Capacity, Dataplane, LoadOptions, RateLimits, Settings},
    r#gen::{DispatcherHold, Tools},
    packet::{FrameSpec, L4},
};

use super::met;

/// How full the maps are: exact bans, blocklist CIDRs and allowlist
/// entries, each half IPv4 and half IPv6.
#[derive(Clone, Copy)]
pub(super) struct Scale {
    name: &'static str,
    bans: usize,
    cidrs: usize,
    allow: usize,
}

pub(super) const BASE: Scale = Scale {
    name: "base",
    bans: 100_000,
    cidrs: 10_000,
    allow: 1_000,
};
const LARGE: Scale = Scale {
    name: "large",
    bans: 1_000_000,
    cidrs: 100_000,
    allow: 1_000,
};

/// A small deterministic generator (xorshift64*), so every run fills the maps
/// the same way.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    /// The next number.
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

struct Options {
    repeat: u32,
    rounds: usize,
    large: bool,
    sources: bool,
    sources_dense: bool,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        repeat: 1_000_000,
        rounds: 5,
        large: true,
        sources: true,
        sources_dense: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| -> Result<u64> {
            it.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()
                .with_context(|| format!("{name} takes a number"))
        };
        match a.as_str() {
            "--repeat" => o.repeat = val("--repeat")? as u32,
            "--rounds" => o.rounds = val("--rounds")?.max(5) as usize,
            "--base-only" => o.large = false,
            "--no-sources" => o.sources = false,
            "--sources-dense" => o.sources_dense = true,
            other => bail!(
                "unknown argument {other}; known: --repeat N, --rounds N (at least 5), --base-only, --no-sources, --sources-dense"
            ),
        }
    }
    if o.repeat < 1000 {
        bail!("--repeat must be at least 1000");
    }
    Ok(o)
}

/// A 64-byte UDP frame from `src`.
pub(super) fn frame(src: IpAddr) -> Vec<u8> {
    let dst: IpAddr = match src {
        IpAddr::V4(_) => "203.0.113.1".parse().unwrap(),
        IpAddr::V6(_) => "2001:db8:ffff::1".parse().unwrap(),
    };
    let payload = match src {
        IpAddr::V4(_) => 64 - 42,
        IpAddr::V6(_) => 6,
    };
    FrameSpec::new(src, dst)
        .with_l4(L4::Udp {
            sport: 1234,
            dport: 53,
        })
        .with_payload_len(payload)
        .build()
}

/// One measurement: average ns per run, and the program's action.
pub(super) struct Sample {
    /// By the wall clock around the call when the programs are held in the
    /// dispatcher (sub-nanosecond), else the kernel's figure.
    pub(super) ns: f64,
    /// The kernel's own figure: its timer over the loop divided by the
    /// count, in whole nanoseconds (truncated).
    pub(super) kernel_ns: f64,
    pub(super) action: u32,
}

/// Runs `prog` on `data` `repeat` times. With `wall` (the programs are held
/// in the XDP dispatcher, so a call has microseconds of fixed cost) the
/// wall-clock time of the call gives the figure; otherwise the kernel's.
pub(super) fn measure(prog: &Xdp, data: &[u8], repeat: u32, wall: bool) -> Result<Sample> {
    let mut out = vec![0u8; data.len() + 256];
    let start = Instant::now();
    let r = prog
        .test_run(TestRunOptions {
            data_in: Some(data),
            data_out: Some(&mut out),
            repeat,
            ..Default::default()
        })
        .context("BPF_PROG_TEST_RUN")?;
    let elapsed = start.elapsed();
    // The kernel reports the average duration of one run.
    let kernel_ns = r.duration.as_nanos() as f64;
    let ns = if wall {
        elapsed.as_nanos() as f64 / repeat as f64
    } else {
        kernel_ns
    };
    Ok(Sample {
        ns,
        kernel_ns,
        action: r.return_value,
    })
}

fn v4(x: u64) -> Ipv4Addr {
    Ipv4Addr::from(x as u32)
}

fn v6(hi: u64, lo: u64) -> Ipv6Addr {
    // Inside 2001:db8::/32.
    let hi = (0x2001_0db8u64 << 32) | (hi & 0xffff_ffff);
    Ipv6Addr::from(((hi as u128) << 64) | lo as u128)
}

/// Fills the maps from scale `from` up to scale `to` with random entries
/// (the reference filter's with the IPv4 bans). The addresses the measured
/// paths use come from the 10/8 and 2001:db8:1::/48 ranges, which the
/// random fill never touches.
pub(super) fn fill(
    dp: &mut Dataplane,
    tools: &mut Tools,
    rng: &mut Rng,
    from: Scale,
    to: Scale,
) -> Result<()> {
    let ban = BanEntry {
        expires_ns: 0,
        reason: ban_reason::DETECTION,
        _reserved: 0,
    };
    let entry = ListEntry::default();
    for i in from.bans..to.bans {
        let addr = if i % 2 == 0 {
            let a = v4(rng.next());
            if a.octets()[0] == 10 {
                continue;
            }
            IpAddr::V4(a)
        } else {
            // The automatic IPv6 ban: a /64, an exact ban at the default
            // `ipv6_prefix`.
            let a = v6(rng.next() | 0x1_0000_0000 | 0x2_0000, 0);
            IpAddr::V6(a)
        };
        let net = match addr {
            IpAddr::V4(a) => IpNet::V4(Ipv4Net::from(a)),
            IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, 64)?),
        };
        dp.maps.ban(net, ban)?;
        if let IpAddr::V4(a) = addr {
            tools.reference_ban(a)?;
        }
    }
    for i in from.cidrs..to.cidrs {
        let net = if i % 2 == 0 {
            let len = 16 + (rng.next() % 17) as u8;
            let a = v4(rng.next());
            if a.octets()[0] == 10 {
                continue;
            }
            IpNet::V4(Ipv4Net::new(a, len)?.trunc())
        } else {
            let len = 48 + (rng.next() % 17) as u8;
            IpNet::V6(Ipv6Net::new(v6(rng.next() | 0x2_0000, rng.next()), len)?.trunc())
        };
        dp.maps.block.insert(net, entry)?;
    }
    for i in from.allow..to.allow {
        let net = if i % 2 == 0 {
            IpNet::V4(Ipv4Net::new(v4(rng.next()), 24 + (rng.next() % 9) as u8)?.trunc())
        } else {
            IpNet::V6(Ipv6Net::new(v6(rng.next() | 0x2_0000, rng.next()), 64)?.trunc())
        };
        if net.contains(&"10.0.0.0".parse::<IpAddr>()?) {
            continue;
        }
        dp.maps.allow.insert(net, entry)?;
    }
    Ok(())
}

/// Puts the measured members in place.
pub(super) fn members(dp: &mut Dataplane, tools: &mut Tools) -> Result<Members> {
    let ban = BanEntry {
        expires_ns: 0,
        reason: ban_reason::DETECTION,
        _reserved: 0,
    };
    let entry = ListEntry::default();
    let m = Members {
        clean4: "10.1.2.3".parse()?,
        clean6: "2001:db8:1::3".parse()?,
        allowed4: "10.9.9.9".parse()?,
        allowed6: "2001:db8:9::9".parse()?,
        banned4: "10.6.6.6".parse()?,
        banned6: "2001:db8:6::6".parse()?,
        blocked4: "10.7.7.7".parse()?,
        blocked6: "2001:db8:7::7".parse()?,
        limited4: "10.5.5.5".parse()?,
        limited6: "2001:db8:5::5".parse()?,
    };
    dp.maps.allow.insert("10.9.9.0/24".parse()?, entry)?;
    dp.maps.allow.insert("2001:db8:9::/64".parse()?, entry)?;
    dp.maps.ban("10.6.6.6/32".parse()?, ban)?;
    dp.maps.ban("2001:db8:6::/64".parse()?, ban)?;
    if let IpAddr::V4(a) = m.banned4 {
        tools.reference_ban(a)?;
    }
    dp.maps.block.insert("10.7.0.0/16".parse()?, entry)?;
    dp.maps.block.insert("2001:db8:7::/64".parse()?, entry)?;
    Ok(m)
}

pub(super) struct Members {
    pub(super) clean4: IpAddr,
    pub(super) clean6: IpAddr,
    allowed4: IpAddr,
    allowed6: IpAddr,
    pub(super) banned4: IpAddr,
    banned6: IpAddr,
    blocked4: IpAddr,
    blocked6: IpAddr,
    limited4: IpAddr,
    limited6: IpAddr,
}

impl Members {
    /// Every member address.
    pub(super) fn all(&self) -> Vec<IpAddr> {
        vec![
            self.clean4,
            self.clean6,
            self.allowed4,
            self.allowed6,
            self.banned4,
            self.banned6,
            self.blocked4,
            self.blocked6,
            self.limited4,
            self.limited6,
        ]
    }
}

impl Scale {
    /// No entries.
    pub(super) fn empty() -> Self {
        Scale {
            name: "empty",
            bans: 0,
            cidrs: 0,
            allow: 0,
        }
    }
}

/// Rate limiting on (as it would be in production), with a limit the
/// measured sources never reach: the settings of every path but rate_drop.
pub(super) fn generous() -> Settings {
    Settings {
        rate: RateLimits {
            pps: Some(1_000_000_000),
            burst: 1_000_000_000,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The random stream every setup fills its maps from.
pub(super) const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// The maps' sizes: as an operator expecting the large scale would size
/// them (the exact-ban buckets for its bans, half of them per family).
pub(super) fn capacity() -> Capacity {
    Capacity {
        bans: (LARGE.bans / 2) as u32,
        blocklist_v6: (LARGE.cidrs / 2).next_power_of_two() as u32 * 4,
        ..Capacity::default()
    }
}

/// One measured path.
struct Path<'a> {
    name: &'static str,
    src: IpAddr,
    /// The action it must end in (1 drop, 2 pass).
    want: u32,
    settings: &'a Settings,
    /// Goal for its ratio to the reference filter (drop paths to its drop,
    /// pass paths to its pass), if the issue states one.
    ref_goal: Option<f64>,
    /// The IPv4 path an IPv6 path is compared with (measured just before).
    twin: Option<usize>,
}

/// A path's figures at one scale (medians over the rounds).
struct Figures {
    ns: f64,
    kernel_ns: f64,
    floor_ratio: f64,
    ref_ratio: f64,
    v6_over_v4: Option<f64>,
    /// The large scale over the base (ns over ns, per round pair):
    /// median, lowest, highest.
    over_base: Option<(f64, f64, f64)>,
}

/// Every path's figures at one scale, and the reference's.
struct ScaleRun {
    floor_ns: f64,
    floor_kernel_ns: f64,
    ref_drop_ns: f64,
    ref_pass_ns: f64,
    paths: Vec<Figures>,
}

/// Goal for an IPv6 path over its IPv4 counterpart.
const V6_GOAL: f64 = 1.3;
/// Goal for the large scale over the base one.
const LARGE_GOAL: f64 = 1.10;

/// One scale's samples, a list per path, one entry per round.
struct Acc {
    ns: Vec<Vec<f64>>,
    kernel: Vec<Vec<f64>>,
    floor_r: Vec<Vec<f64>>,
    ref_r: Vec<Vec<f64>>,
    v6_r: Vec<Vec<f64>>,
    /// Per round, over the base scale's same round.
    over_base: Vec<Vec<f64>>,
    floors: Vec<f64>,
    floors_k: Vec<f64>,
    refs: [Vec<f64>; 2],
}

impl Acc {
    fn new(n: usize) -> Self {
        Self {
            ns: vec![Vec::new(); n],
            kernel: vec![Vec::new(); n],
            floor_r: vec![Vec::new(); n],
            ref_r: vec![Vec::new(); n],
            v6_r: vec![Vec::new(); n],
            over_base: vec![Vec::new(); n],
            floors: Vec::new(),
            floors_k: Vec::new(),
            refs: [Vec::new(), Vec::new()],
        }
    }

    /// Medians over the rounds.
    fn finish(mut self) -> ScaleRun {
        let paths = (0..self.ns.len())
            .map(|i| Figures {
                ns: median(&mut self.ns[i]),
                kernel_ns: median(&mut self.kernel[i]),
                floor_ratio: median(&mut self.floor_r[i]),
                ref_ratio: median(&mut self.ref_r[i]),
                v6_over_v4: (!self.v6_r[i].is_empty()).then(|| median(&mut self.v6_r[i])),
                over_base: (!self.over_base[i].is_empty()).then(|| spread(&mut self.over_base[i])),
            })
            .collect();
        ScaleRun {
            floor_ns: median(&mut self.floors),
            floor_kernel_ns: median(&mut self.floors_k),
            ref_drop_ns: median(&mut self.refs[0]),
            ref_pass_ns: median(&mut self.refs[1]),
            paths,
        }
    }
}

/// One scale's maps and reference filter.
pub(super) struct Setup {
    pub(super) dp: Dataplane,
    pub(super) tools: Tools,
}

/// Checks that the reference filter drops the banned member and passes the
/// clean one.
fn check_reference(tools: &mut Tools, m: &Members, wall: bool) -> Result<()> {
    let ref_frames = [frame(m.banned4), frame(m.clean4)];
    for (f, want) in ref_frames.iter().zip([1, 2]) {
        let action = measure(tools.reference()?, f, 1000, wall)?.action;
        if action != want {
            bail!("reference filter: action {action}, expected {want}");
        }
    }
    Ok(())
}

/// Measures every path once at each scale: per path, the scales back to
/// back (their order alternating by round), each followed by the floor
/// and the reference's drop or pass, so that a path's figures at the two
/// scales are taken within milliseconds of each other.
fn measure_round(
    scales: &mut [(&mut Setup, &mut Acc)],
    paths: &[Path],
    m: &Members,
    opts: &Options,
    wall: bool,
    round: usize,
) -> Result<()> {
    let floor_frame = frame(m.clean4);
    let ref_frames = [frame(m.banned4), frame(m.clean4)];
    let n = scales.len();
    let mut last = vec![vec![f64::NAN; paths.len()]; n];
    for (i, p) in paths.iter().enumerate() {
        let f = frame(p.src);
        for k in 0..n {
            let k = if round.is_multiple_of(2) {
                k
            } else {
                n - 1 - k
            };
            let (s, acc) = &mut scales[k];
            s.dp.maps.apply(p.settings)?;
            // Warm up (and, for rate_drop, spend the burst).
            let action = measure(s.dp.program()?, &f, 1000, wall)?.action;
            if action != p.want {
                bail!("path {}: action {action}, expected {}", p.name, p.want);
            }
            let run = measure(s.dp.program()?, &f, opts.repeat, wall)?;
            let floor = measure(s.tools.floor()?, &floor_frame, opts.repeat, wall)?;
            let which = usize::from(p.want != 1);
            let reference = measure(s.tools.reference()?, &ref_frames[which], opts.repeat, wall)?;
            acc.ns[i].push(run.ns);
            acc.kernel[i].push(run.kernel_ns);
            acc.floor_r[i].push(run.ns / floor.ns);
            acc.ref_r[i].push(run.ns / reference.ns);
            acc.floors.push(floor.ns);
            acc.floors_k.push(floor.kernel_ns);
            acc.refs[which].push(reference.ns);
            if let Some(t) = p.twin {
                acc.v6_r[i].push(run.ns / last[k][t]);
            }
            last[k][i] = run.ns;
        }
    }
    Ok(())
}

fn mark(ok: bool, goal: f64) -> String {
    format!("{}{goal}", if ok { "<=" } else { "> " })
}

/// Prints one scale's table; its JSON and whether its goals were met.
fn report_scale(scale: Scale, paths: &[Path], r: &ScaleRun) -> (serde_json::Value, bool) {
    println!(
        "\n{} scale: {} exact bans, {} blocklist CIDRs, {} allowlist entries (half IPv4, half IPv6)",
        scale.name, scale.bans, scale.cidrs, scale.allow
    );
    println!(
        "reference (the textbook filter): drop {:.2} ns, pass {:.2} ns; floor (XDP_DROP) {:.2} ns (kernel {} ns)",
        r.ref_drop_ns, r.ref_pass_ns, r.floor_ns, r.floor_kernel_ns
    );
    println!(
        "{:<15} {:>8} {:>7} {:>6} {:>6} {:>6} {:>8} {:>8} {:>7}",
        "path", "ns/pkt", "vs ref", "goal", "v6/v4", "goal", "vs floor", "kernel", "vs base"
    );
    let mut all = true;
    let mut out = serde_json::Map::new();
    for (p, f) in paths.iter().zip(&r.paths) {
        let ref_met = p.ref_goal.map(|g| f.ref_ratio <= g);
        let v6_met = f.v6_over_v4.map(|v| v <= V6_GOAL);
        let over_base = f.over_base.map(|o| o.0);
        let base_met = over_base.map(|o| o <= LARGE_GOAL);
        all &= ref_met.unwrap_or(true) && v6_met.unwrap_or(true) && base_met.unwrap_or(true);
        let goal_text = match (p.ref_goal, ref_met) {
            (Some(g), Some(ok)) => mark(ok, g),
            _ => "-".into(),
        };
        let v6_text = f.v6_over_v4.map_or("-".into(), |v| format!("{v:.2}"));
        let v6_goal = v6_met.map_or("-".into(), |ok| mark(ok, V6_GOAL));
        let base_text = match (over_base, base_met) {
            (Some(o), Some(ok)) => format!("{o:.2}{}", if ok { "" } else { "!" }),
            _ => "-".into(),
        };
        println!(
            "{:<15} {:>8.2} {:>7.2} {:>6} {:>6} {:>6} {:>8.2} {:>8} {:>7}",
            p.name,
            f.ns,
            f.ref_ratio,
            goal_text,
            v6_text,
            v6_goal,
            f.floor_ratio,
            f.kernel_ns,
            base_text
        );
        let mut j = json!({
            "ns": round2(f.ns), "kernel_ns": f.kernel_ns,
            "ratio": round2(f.floor_ratio),
            "reference_ratio": round2(f.ref_ratio),
        });
        if let Some(g) = p.ref_goal {
            j["reference_goal"] = json!(g);
            j["met"] = json!(ref_met);
        }
        if let Some(v) = f.v6_over_v4 {
            j["v6_over_v4"] = json!(round2(v));
            j["v6_goal"] = json!(V6_GOAL);
            j["v6_met"] = json!(v6_met);
        }
        if let Some((o, lo, hi)) = f.over_base {
            j["over_base"] = json!(round2(o));
            j["over_base_spread"] = json!([round2(lo), round2(hi)]);
            j["over_base_goal"] = json!(LARGE_GOAL);
        }
        out.insert(p.name.to_string(), j);
    }
    let j = json!({
        "maps": {"bans": scale.bans, "blocklist_cidrs": scale.cidrs, "allowlist": scale.allow},
        "floor_ns": round2(r.floor_ns), "floor_kernel_ns": r.floor_kernel_ns,
        "reference": {"drop_ns": round2(r.ref_drop_ns), "pass_ns": round2(r.ref_pass_ns)},
        "paths": out,
        "goals_met": all,
    });
    (j, all)
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> Result<()> {
    let opts = parse_args(args)?;
    let capacity = capacity();
    println!(
        "[capacity] bans = {} per family: {} buckets of 8 slots; blocklist_v6 = {}",
        capacity.bans,
        capacity.ban_buckets(),
        capacity.blocklist_v6
    );
    // Both scales loaded at once, in maps of their own, so that their
    // rounds interleave (this machine's speed drifts between minutes).
    let load = || -> Result<Setup> {
        Ok(Setup {
            dp: Dataplane::load(&LoadOptions {
                capacity,
                ..Default::default()
            })
            .context("load the XDP program")?,
            tools: Tools::load().context("load the floor and reference programs")?,
        })
    };
    let empty = Scale::empty();
    let seed = SEED;
    let mut base_s = load()?;
    fill(
        &mut base_s.dp,
        &mut base_s.tools,
        &mut Rng(seed),
        empty,
        BASE,
    )?;
    let m = members(&mut base_s.dp, &mut base_s.tools)?;
    let mut large_s = None;
    if opts.large {
        // The base's entries (the same random stream), its members, then
        // the rest.
        let mut s = load()?;
        let mut rng = Rng(seed);
        let t = Instant::now();
        fill(&mut s.dp, &mut s.tools, &mut rng, empty, BASE)?;
        members(&mut s.dp, &mut s.tools)?;
        fill(&mut s.dp, &mut s.tools, &mut rng, BASE, LARGE)?;
        println!(
            "large scale's maps filled with {} bans and {} CIDRs in {:.1} s",
            LARGE.bans,
            LARGE.cidrs,
            t.elapsed().as_secs_f64()
        );
        large_s = Some(s);
    }
    // The measured programs in the XDP dispatcher, in one hold.
    let mut held = base_s
        .tools
        .programs(&[FLOOR_PROGRAM_NAME, REFERENCE_PROGRAM_NAME])?;
    held.push(base_s.dp.program()?);
    if let Some(s) = &mut large_s {
        held.extend(
            s.tools
                .programs(&[FLOOR_PROGRAM_NAME, REFERENCE_PROGRAM_NAME])?,
        );
        held.push(s.dp.program()?);
    }
    let hold = DispatcherHold::new(&mut held);
    let wall = match &hold {
        Ok(_) => {
            println!("programs held in the XDP dispatcher: figures by the wall clock");
            true
        }
        Err(e) => {
            println!(
                "programs not held in the XDP dispatcher ({e}): the kernel's figures, in whole ns"
            );
            false
        }
    };
    check_reference(&mut base_s.tools, &m, wall)?;
    if let Some(s) = &mut large_s {
        check_reference(&mut s.tools, &m, wall)?;
    }

    let generous = generous();
    let strict = Settings {
        rate: RateLimits {
            pps: Some(1),
            burst: 1,
            event_interval: Duration::from_secs(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let no_limits = Settings::default();
    let path = |name, src, want, settings, ref_goal, twin| Path {
        name,
        src,
        want,
        settings,
        ref_goal,
        twin,
    };
    // Each IPv6 path right after its IPv4 counterpart.
    let paths = vec![
        path("pass", m.clean4, 2, &generous, Some(1.5), None),
        path("pass_v6", m.clean6, 2, &generous, None, Some(0)),
        path("pass_norate", m.clean4, 2, &no_limits, None, None),
        path("pass_norate_v6", m.clean6, 2, &no_limits, None, Some(2)),
        path("allow", m.allowed4, 2, &generous, None, None),
        path("allow_v6", m.allowed6, 2, &generous, None, Some(4)),
        path("ban_drop", m.banned4, 1, &generous, Some(1.0), None),
        path("ban_drop_v6", m.banned6, 1, &generous, None, Some(6)),
        path("block_drop", m.blocked4, 1, &generous, Some(1.0), None),
        path("block_drop_v6", m.blocked6, 1, &generous, None, Some(8)),
        path("rate_drop", m.limited4, 1, &strict, Some(1.5), None),
        path("rate_drop_v6", m.limited6, 1, &strict, None, Some(10)),
    ];
    println!(
        "BPF_PROG_TEST_RUN, 64-byte frames, repeat {} x {} rounds; per path the scales back to \
         back, each with the floor and the reference; figures are medians, ratios medians of \
         per-round pairs",
        opts.repeat, opts.rounds
    );
    let mut base_acc = Acc::new(paths.len());
    let mut large_acc = Acc::new(paths.len());
    for round in 0..opts.rounds {
        let mut scales = vec![(&mut base_s, &mut base_acc)];
        if let Some(l) = &mut large_s {
            scales.push((l, &mut large_acc));
        }
        measure_round(&mut scales, &paths, &m, &opts, wall, round)?;
        if large_s.is_some() {
            for i in 0..paths.len() {
                let (b, l) = (&base_acc.ns[i], &large_acc.ns[i]);
                let pair = l[l.len() - 1] / b[b.len() - 1];
                large_acc.over_base[i].push(pair);
            }
        }
    }
    drop(hold);
    let (base_j, base_met) = report_scale(BASE, &paths, &base_acc.finish());
    let mut large_j = serde_json::Value::Null;
    let mut large_met = None;
    if large_s.is_some() {
        let (j, ok) = report_scale(LARGE, &paths, &large_acc.finish());
        large_j = j;
        large_met = Some(ok);
    }
    println!(
        "\ngoals: IPv4 ban and block drops <= 1.0x the reference's drop, rate drop <= 1.5x, \
         pass <= 1.5x its pass; every IPv6 path <= {V6_GOAL}x its IPv4 counterpart; at the \
         large scale within {:.0}% of the base (per-round pairs of ns): base {}{}",
        (LARGE_GOAL - 1.0) * 100.0,
        met(base_met),
        large_met.map_or(String::new(), |m| format!(", large {}", met(m)))
    );
    let (sources_j, sources_met) = if opts.sources {
        let (j, ok) = super::sources::xdp_case(
            &mut base_s,
            &m,
            opts.rounds,
            opts.repeat,
            opts.sources_dense,
        )?;
        (j, Some(ok))
    } else {
        (serde_json::Value::Null, None)
    };
    super::write_json(
        "xdp.json",
        &json!({
            "timing": if wall { "wall clock, programs held in the XDP dispatcher" } else { "kernel, whole ns" },
            "repeat": opts.repeat,
            "rounds": opts.rounds,
            // The base scale at the top level, as before.
            "floor_ns": base_j["floor_ns"],
            "floor_kernel_ns": base_j["floor_kernel_ns"],
            "maps": base_j["maps"],
            "reference": base_j["reference"],
            "paths": base_j["paths"],
            "goals_met": base_met,
            "large": large_j,
            "goals_met_large": large_met,
            "sources": sources_j,
            "goals_met_sources": sources_met,
        }),
    );
    Ok(())
}

pub(super) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median, lowest and highest.
fn spread(v: &mut [f64]) -> (f64, f64, f64) {
    let m = median(v);
    (m, v[0], v[v.len() - 1])
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

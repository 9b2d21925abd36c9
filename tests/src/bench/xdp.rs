//! `cargo xtask bench xdp`: the XDP program's cost per packet on each path,
//! under BPF_PROG_TEST_RUN with maps filled to scale, against a trivial
//! program that only returns XDP_DROP measured in the same run (the harness
//! floor). The floor and the reference filter come from the tools object,
//! the firewall from the daemon's. Writes target/bench/xdp.json.

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
    dataplane::{Dataplane, LoadOptions, RateLimits, Settings},
    r#gen::{DispatcherHold, Tools},
    packet::{FrameSpec, L4},
};

const BANS: usize = 100_000;
const BLOCK_CIDRS: usize = 10_000;
const ALLOW: usize = 1_000;

/// A small deterministic generator (xorshift64*), so every run fills the maps
/// the same way.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

struct Options {
    repeat: u32,
    rounds: usize,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        repeat: 1_000_000,
        rounds: 5,
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
            "--rounds" => o.rounds = val("--rounds")?.max(1) as usize,
            other => bail!("unknown argument {other}; known: --repeat N, --rounds N"),
        }
    }
    if o.repeat < 1000 {
        bail!("--repeat must be at least 1000");
    }
    Ok(o)
}

/// A 64-byte UDP frame from `src`.
fn frame(src: IpAddr) -> Vec<u8> {
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
struct Sample {
    /// By the wall clock around the call when the programs are held in the
    /// dispatcher (sub-nanosecond), else the kernel's figure.
    ns: f64,
    /// The kernel's own figure: its timer over the loop divided by the
    /// count, in whole nanoseconds (truncated).
    kernel_ns: f64,
    action: u32,
}

/// Runs `prog` on `data` `repeat` times. With `wall` (the programs are held
/// in the XDP dispatcher, so a call has microseconds of fixed cost) the
/// wall-clock time of the call gives the figure; otherwise the kernel's.
fn measure(prog: &Xdp, data: &[u8], repeat: u32, wall: bool) -> Result<Sample> {
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

/// Fills the maps to scale (the reference filter's with the IPv4 bans);
/// returns representative members of each list.
fn fill(dp: &mut Dataplane, tools: &mut Tools) -> Result<Members> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let ban = BanEntry {
        expires_ns: 0,
        reason: ban_reason::DETECTION,
        _reserved: 0,
    };
    let entry = ListEntry::default();
    // The addresses the measured paths use come from the 10/8 and
    // 2001:db8:1::/48 ranges, which the random fill below never touches.
    let mut banned = Vec::new();
    for i in 0..BANS {
        let addr = if i % 2 == 0 {
            let a = v4(rng.next());
            if a.octets()[0] == 10 {
                continue;
            }
            IpAddr::V4(a)
        } else {
            let a = v6(rng.next() | 0x1_0000_0000 | 0x2_0000, rng.next());
            IpAddr::V6(a)
        };
        dp.maps.bans.insert(addr, ban)?;
        if let IpAddr::V4(a) = addr {
            tools.reference_ban(a)?;
        }
        banned.push(addr);
    }
    for i in 0..BLOCK_CIDRS {
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
    for i in 0..ALLOW {
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
    // The measured members.
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
    };
    dp.maps.allow.insert("10.9.9.0/24".parse()?, entry)?;
    dp.maps.allow.insert("2001:db8:9::/64".parse()?, entry)?;
    dp.maps.bans.insert(m.banned4, ban)?;
    dp.maps.bans.insert(m.banned6, ban)?;
    if let IpAddr::V4(a) = m.banned4 {
        tools.reference_ban(a)?;
    }
    dp.maps.block.insert("10.7.0.0/16".parse()?, entry)?;
    dp.maps.block.insert("2001:db8:7::/64".parse()?, entry)?;
    Ok(m)
}

struct Members {
    clean4: IpAddr,
    clean6: IpAddr,
    allowed4: IpAddr,
    allowed6: IpAddr,
    banned4: IpAddr,
    banned6: IpAddr,
    blocked4: IpAddr,
    blocked6: IpAddr,
    limited4: IpAddr,
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> Result<()> {
    let opts = parse_args(args)?;
    let mut dp = Dataplane::load(&LoadOptions::default()).context("load the XDP program")?;
    let mut tools = Tools::load().context("load the floor and reference programs")?;
    println!(
        "filling maps: {BANS} bans, {BLOCK_CIDRS} blocklist CIDRs, {ALLOW} allowlist entries (v4 and v6)"
    );
    let m = fill(&mut dp, &mut tools)?;
    // The three measured programs in the XDP dispatcher, in one hold.
    let mut held = tools.programs(&[FLOOR_PROGRAM_NAME, REFERENCE_PROGRAM_NAME])?;
    held.push(dp.program()?);
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

    // Rate limiting is on for every path (as it would be in production),
    // with a limit the measured sources never reach, except on rate_drop.
    let generous = Settings {
        rate: RateLimits {
            pps: Some(1_000_000_000),
            burst: 1_000_000_000,
            ..Default::default()
        },
        ..Default::default()
    };
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
    // (name, source, expected action, settings)
    let paths: Vec<(&str, IpAddr, u32, &Settings)> = vec![
        ("pass", m.clean4, 2, &generous),
        ("pass_norate", m.clean4, 2, &no_limits),
        ("allow", m.allowed4, 2, &generous),
        ("ban_drop", m.banned4, 1, &generous),
        ("block_drop", m.blocked4, 1, &generous),
        ("rate_drop", m.limited4, 1, &strict),
        ("pass_v6", m.clean6, 2, &generous),
        ("allow_v6", m.allowed6, 2, &generous),
        ("ban_drop_v6", m.banned6, 1, &generous),
        ("block_drop_v6", m.blocked6, 1, &generous),
    ];
    let floor_frame = frame(m.clean4);
    let mut floor_samples = Vec::new();
    let mut floor_kernel = Vec::new();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut kernel: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    // Each path is measured right next to a floor run; the ratio of the pair
    // is what is reported (robust against the machine's drift).
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    // The textbook filter (one hash lookup of the source): drop and pass.
    let mut ref_samples: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut ref_ratios: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _round in 0..opts.rounds {
        for (i, (name, src, want, settings)) in paths.iter().enumerate() {
            dp.maps.apply(settings)?;
            let f = frame(*src);
            // Warm up (and, for rate_drop, spend the burst).
            let action = measure(dp.program()?, &f, 1000, wall)?.action;
            if action != *want {
                bail!("path {name}: action {action}, expected {want}");
            }
            let run = measure(dp.program()?, &f, opts.repeat, wall)?;
            samples[i].push(run.ns);
            kernel[i].push(run.kernel_ns);
            let floor = measure(tools.floor()?, &floor_frame, opts.repeat, wall)?;
            floor_samples.push(floor.ns);
            floor_kernel.push(floor.kernel_ns);
            ratios[i].push(run.ns / floor.ns);
        }
        // (source, expected action): a hit drops, a miss passes.
        for (j, (src, want)) in [(m.banned4, 1), (m.clean4, 2)].into_iter().enumerate() {
            let f = frame(src);
            let action = measure(tools.reference()?, &f, 1000, wall)?.action;
            if action != want {
                bail!("reference filter: action {action}, expected {want}");
            }
            let ns = measure(tools.reference()?, &f, opts.repeat, wall)?.ns;
            let floor = measure(tools.floor()?, &floor_frame, opts.repeat, wall)?.ns;
            ref_samples[j].push(ns);
            ref_ratios[j].push(ns / floor);
        }
    }
    let floor = median(&mut floor_samples);
    println!(
        "\nBPF_PROG_TEST_RUN, 64-byte frames, repeat {} x {} rounds (medians; ratio = median \
         of per-round path/floor pairs)",
        opts.repeat, opts.rounds
    );
    let floor_k = median(&mut floor_kernel);
    println!(
        "{:<14} {:>9} {:>7} {:>6} {:>10}",
        "path", "ns/pkt", "ratio", "goal", "kernel ns"
    );
    println!(
        "{:<14} {:>9.2} {:>7.2} {:>6} {:>10}",
        "floor", floor, 1.0, "", floor_k
    );
    let mut json_paths = serde_json::Map::new();
    // The goals are stated for the IPv4 paths; the IPv6 rows are
    // reported against the same bars for information.
    let mut met_v4 = true;
    let mut met_v6 = true;
    for (i, (name, ..)) in paths.iter().enumerate() {
        let ns = median(&mut samples[i]);
        let kernel_ns = median(&mut kernel[i]);
        let ratio = median(&mut ratios[i]);
        let goal = if name.starts_with("pass") { 2.5 } else { 2.0 };
        let met = ratio <= goal;
        if name.ends_with("_v6") {
            met_v6 &= met;
        } else {
            met_v4 &= met;
        }
        println!(
            "{name:<14} {ns:>9.2} {ratio:>7.2} {:>6} {kernel_ns:>10}",
            format!("{}{goal}", if met { "<=" } else { "> " })
        );
        json_paths.insert(
            name.to_string(),
            json!({"ns": round2(ns), "ratio": round2(ratio), "goal_ratio": goal, "met": met,
                   "kernel_ns": kernel_ns}),
        );
    }
    let ref_drop = median(&mut ref_samples[0]);
    let ref_pass = median(&mut ref_samples[1]);
    let ref_drop_ratio = median(&mut ref_ratios[0]);
    let ref_pass_ratio = median(&mut ref_ratios[1]);
    let ns_of = |name: &str| json_paths[name]["ns"].as_f64().unwrap_or(f64::NAN);
    println!(
        "\nreference, the textbook XDP ban filter (one hash lookup of the IPv4 source, \
         50,000 entries):"
    );
    println!("{:<14} {ref_drop:>9.2} {ref_drop_ratio:>7.2}", "ref_drop");
    println!("{:<14} {ref_pass:>9.2} {ref_pass_ratio:>7.2}", "ref_pass");
    println!(
        "waf against it: ban_drop {:.2}x, block_drop {:.2}x, pass (every check and the rate \
         limit) {:.2}x",
        ns_of("ban_drop") / ref_drop,
        ns_of("block_drop") / ref_drop,
        ns_of("pass") / ref_pass
    );
    let word = |m: bool| if m { "met" } else { "NOT met" };
    println!(
        "\ngoals (pass <= 2.5x floor, drops <= 2x): IPv4 paths {}; IPv6 paths {}",
        word(met_v4),
        word(met_v6)
    );
    println!(
        "(IPv6 allowlist and blocklist hits walk the LPM trie: the bitmaps only prefilter IPv6)"
    );
    super::write_json(
        "xdp.json",
        &json!({
            "floor_ns": round2(floor),
            "floor_kernel_ns": floor_k,
            "timing": if wall { "wall clock, programs held in the XDP dispatcher" } else { "kernel, whole ns" },
            "paths": json_paths,
            "repeat": opts.repeat,
            "rounds": opts.rounds,
            "maps": {"bans": BANS, "blocklist_cidrs": BLOCK_CIDRS, "allowlist": ALLOW},
            "reference": {
                "drop": {"ns": round2(ref_drop), "ratio": round2(ref_drop_ratio)},
                "pass": {"ns": round2(ref_pass), "ratio": round2(ref_pass_ratio)},
            },
            "goals_met": met_v4,
            "goals_met_v6": met_v6,
        }),
    );
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

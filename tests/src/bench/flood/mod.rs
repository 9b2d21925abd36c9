//! `cargo xtask bench flood`: floods in a namespace lab, in one run.
//!
//! The lab: a sender (the "internet", which also routes), a server and a
//! legitimate client:
//!
//! ```text
//!  client 198.51.100.10 ─veth─ sender (router, flood source) ─veth─ server 192.0.2.1
//!                                                            flood link
//! ```
//!
//! The flood and the client's traffic share the server's flood link, so
//! they share its receive ring and its receive CPU, as on a real NIC. The
//! server's veth runs its NAPI poll in a kernel thread (threaded NAPI)
//! pinned to CPU 1 (with the HTTP server), the sender and the client run
//! on CPU 0: the receive side's CPU time is the NAPI thread's run time.
//!
//! 0. Generator: `waf gen` (XDP live frames) against trafgen (netsniff-ng),
//!    one core each, same frame, packets per second counted at the receiver.
//! 1. Drop capacity (`drop.rs`): a max-rate flood from banned IPv4 and
//!    IPv6 sources against each filter of `filters.rs` (none, nftables,
//!    XDP_DROP, the textbook filter, xdp-filter, waf XDP alone and among a
//!    million bans), interleaved over rounds: the receiver's CPU per packet
//!    and the packets it handled.
//! 2. Flood survival (`survival.rs`): a fixed HTTP load served while a
//!    spoofed flood of rising rate hits the server, per filter, over rounds.
//! 3. Rate-limit accuracy under flood: admitted against configured rate.
//! 4. Per-packet cost of each program from the kernel's own accounting
//!    (kernel.bpf_stats_enabled).
//!
//! Prints tables, writes target/bench/flood.json and PNG charts
//! target/bench/flood_*.png.

use std::{
    fs::File,
    os::fd::AsRawFd as _,
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use waf_common::counter;
use waf_user::{
    dataplane::{AttachMode, Dataplane, LoadOptions, RateLimits, Settings},
    r#gen::{self as wgen, GenArgs, GenOptions, GenSummary, LiveGen},
};

use crate::{Netns, unique, veth};

mod charts;
mod drop;
mod filters;
mod survival;

use filters::attach_waf;

const SRV: &str = "192.0.2.1";
/// The server's IPv6 address on the flood link (IPv6 floods only).
const SRV6: &str = "2001:db8:f::1";
const HTTP_PORT: u16 = 8080;
/// The spoofed flood: every address of this /24 (banned where a filter is).
const FLOOD_POOL: &str = "203.0.113.0/24";
/// The spoofed IPv6 flood: 256 addresses of one /64.
const FLOOD_POOL6: &str = "2001:db8:bad::/120";
/// CPU of the sender, the client and wrk.
const CPU_SENDER: usize = 0;
/// CPU of the server: its NAPI thread and the HTTP server.
const CPU_SERVER: usize = 1;

struct Options {
    /// Seconds per measurement step.
    step: f64,
    /// Skip the survival sweep's highest rates (quick runs).
    quick: bool,
    /// Rounds of the drop and survival steps (filters interleaved).
    rounds: usize,
    /// The survival step's fixed HTTP load, requests per second.
    http_rate: f64,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut o = Options {
        step: 3.0,
        quick: false,
        rounds: 5,
        http_rate: 5_000.0,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--step" => {
                o.step = it
                    .next()
                    .context("--step needs seconds")?
                    .parse()
                    .context("--step takes seconds")?;
                if !(1.0..=30.0).contains(&o.step) {
                    bail!("--step must be between 1 and 30 seconds");
                }
            }
            "--quick" => o.quick = true,
            "--rounds" => {
                o.rounds = it
                    .next()
                    .context("--rounds needs a number")?
                    .parse()
                    .context("--rounds takes a number")?;
                if !(1..=50).contains(&o.rounds) {
                    bail!("--rounds must be between 1 and 50");
                }
            }
            "--http-rate" => {
                o.http_rate = it
                    .next()
                    .context("--http-rate needs requests per second")?
                    .parse()
                    .context("--http-rate takes requests per second")?;
                if !(100.0..=200_000.0).contains(&o.http_rate) {
                    bail!("--http-rate must be between 100 and 200000 requests per second");
                }
            }
            other => bail!(
                "unknown argument {other}; known: --step SECONDS, --quick, --rounds N, \
                 --http-rate REQUESTS_PER_SECOND"
            ),
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------
// The lab.

/// Puts the calling thread into a namespace (threads it spawns inherit it).
fn enter(ns: &str) -> Result<()> {
    let path = Path::new("/var/run/netns").join(ns);
    let f = File::open(&path).with_context(|| format!("{}", path.display()))?;
    // SAFETY: a namespace fd; affects only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns {ns}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn pin(pid: i32, cpu: usize) {
    // SAFETY: zeroed cpu_set_t is valid; cpu < 1024.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Gives a thread a real-time priority (SCHED_FIFO 50), above every task of
/// the normal class. On a real host receive processing runs in softirq
/// context, which preempts applications: a flood the stack cannot drop
/// cheaply starves the server's own threads ("receive livelock"). A
/// threaded NAPI poll of the normal class would instead get a fair share
/// next to the HTTP server's 32 threads, leave the rest of the flood to the
/// veth ring (whose drops cost the receiver nothing), and hide exactly the
/// cost the survival test is about. The kernel's RT throttling
/// (sched_rt_runtime_us, 95% by default) still leaves normal tasks a slice.
fn realtime(pid: i32) {
    let param = libc::sched_param { sched_priority: 50 };
    // SAFETY: a valid sched_param; a failure only leaves the default class.
    unsafe {
        libc::sched_setscheduler(pid, libc::SCHED_FIFO, &param);
    }
}

struct FloodLab {
    snd: Netns,
    srv: Netns,
    cli: Netns,
    /// Sender's end of the flood link.
    snd_if: String,
    /// Server's end of the flood link.
    srv_if: String,
    srv_mac: String,
}

impl FloodLab {
    fn new() -> Result<Self> {
        crate::require_root();
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            bail!("bench flood needs two CPUs (sender and server on their own)");
        }
        let snd = Netns::new("fs");
        let srv = Netns::new("fv");
        let cli = Netns::new("fc");
        let snd_if = unique("a");
        let srv_if = unique("s");
        let cli_if = unique("c");
        let rtr_if = unique("r");
        // Quiet links: nothing but the traffic measured.
        for ns in [&snd, &srv, &cli] {
            ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        }
        veth(&snd_if, &snd, &srv_if, &srv);
        veth(&cli_if, &cli, &rtr_if, &snd);
        snd.exec(&["ip", "addr", "add", "192.0.2.254/24", "dev", &snd_if]);
        srv.exec(&["ip", "addr", "add", &format!("{SRV}/24"), "dev", &srv_if]);
        srv.exec(&["ip", "route", "add", "default", "via", "192.0.2.254"]);
        // IPv6 on the server's flood link only (the IPv6 floods' target).
        srv.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{srv_if}.disable_ipv6=0"),
        ]);
        srv.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{SRV6}/64"),
            "dev",
            &srv_if,
            "nodad",
        ]);
        snd.exec(&["ip", "addr", "add", "198.51.100.1/24", "dev", &rtr_if]);
        cli.exec(&["ip", "addr", "add", "198.51.100.10/24", "dev", &cli_if]);
        cli.exec(&["ip", "route", "add", "default", "via", "198.51.100.1"]);
        snd.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        // The server's link gets a NAPI context without an XDP program too
        // (GRO on), polled in a kernel thread we can pin and account.
        srv.exec(&["ethtool", "-K", &srv_if, "gro", "on"]);
        // Without TSO on the sending side veth queues every skb (the
        // client's TCP, trafgen's frames) to the same NAPI ring as the XDP
        // frames, with or without an XDP program on the server: otherwise
        // skbs bypass the ring (netif_rx on the sender's CPU) unless an XDP
        // program is attached, and the filters would not be compared alike.
        snd.exec(&["ethtool", "-K", &snd_if, "tso", "off", "gso", "off"]);
        let out = srv.exec(&["cat", &format!("/sys/class/net/{srv_if}/address")]);
        let srv_mac = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let lab = Self {
            snd,
            srv,
            cli,
            snd_if,
            srv_if,
            srv_mac,
        };
        lab.set_threaded(true);
        if !lab.cli.ping(SRV, None, 2) {
            bail!("the lab does not route: the client cannot ping the server");
        }
        Ok(lab)
    }

    /// Turns threaded NAPI of the server's link on or off.
    fn set_threaded(&self, on: bool) {
        self.srv.exec(&[
            "sh",
            "-c",
            &format!(
                "echo {} > /sys/class/net/{}/threaded",
                u8::from(on),
                self.srv_if
            ),
        ]);
    }

    /// The NAPI thread of the server's link, pinned to the server CPU
    /// (looked up again after every filter change: NAPI is re-created when
    /// an XDP program comes or goes).
    fn napi_thread(&self) -> Result<i32> {
        let want: String = format!("napi/{}-", self.srv_if).chars().take(15).collect();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let mut found = Vec::new();
            for e in std::fs::read_dir("/proc")?.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                if comm.trim_end().starts_with(&want) {
                    found.push(pid);
                }
            }
            if let Some(&pid) = found.iter().max() {
                pin(pid, CPU_SERVER);
                realtime(pid);
                return Ok(pid);
            }
            if Instant::now() > deadline {
                bail!("no NAPI thread for {} (threaded NAPI off?)", self.srv_if);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Frames the server's link polled (with or without XDP program).
    fn rx_polled(&self) -> u64 {
        let ifname = self.srv_if.clone();
        self.srv
            .run(move || wgen::ethtool_sum(&ifname, "rx_queue_0_xdp_packets"))
            .unwrap_or(0)
    }

    /// Generator options from the sender's flood link to the server.
    fn gen_opts(&self, src: &[&str], dst: &str, rate: &str, secs: f64) -> Result<GenOptions> {
        GenArgs {
            interface: self.snd_if.clone(),
            dst: dst.into(),
            dst_mac: Some(self.srv_mac.clone()),
            src: src.iter().map(|s| s.to_string()).collect(),
            proto: "udp".into(),
            rate: rate.into(),
            duration: Some(format!("{}ms", (secs * 1000.0) as u64)),
            engine: "live".into(),
            threads: "1".into(),
            cpus: Some(CPU_SENDER.to_string()),
            batch: "64".into(),
            quiet: true,
            ..Default::default()
        }
        .resolve()
        .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Runs the generator in the sender namespace on its own thread.
    fn spawn_gen(&self, opts: GenOptions) -> JoinHandle<Result<GenSummary>> {
        let ns = self.snd.name.clone();
        std::thread::spawn(move || {
            enter(&ns)?;
            Ok(wgen::run(&opts, Arc::new(AtomicBool::new(false)))?)
        })
    }
}

fn join_gen(h: JoinHandle<Result<GenSummary>>) -> Result<GenSummary> {
    h.join()
        .map_err(|_| anyhow::anyhow!("generator thread panicked"))?
}

/// CPU time a thread has run, in ns.
fn run_ns(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// 0. Generator against trafgen.

/// Packets per second a counter rose at while it was rising (sampled every
/// 50 ms while `running` holds).
fn rx_rate(mut read: impl FnMut() -> u64, running: &AtomicBool, timeout: Duration) -> (u64, f64) {
    let start = Instant::now();
    let mut samples = vec![(Instant::now(), read())];
    while running.load(Ordering::Relaxed) && start.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(50));
        samples.push((Instant::now(), read()));
    }
    std::thread::sleep(Duration::from_millis(200));
    samples.push((Instant::now(), read()));
    let base = samples[0].1;
    let total = samples.last().map_or(0, |s| s.1) - base;
    // The active span: from the last sample before it rose to the first
    // sample at its final value.
    let first = samples
        .iter()
        .position(|s| s.1 > base)
        .map_or(0, |i| i.saturating_sub(1));
    let last = samples
        .iter()
        .position(|s| s.1 - base == total)
        .unwrap_or(samples.len() - 1);
    let secs = samples[last]
        .0
        .duration_since(samples[first].0)
        .as_secs_f64()
        .max(0.05);
    (total, total as f64 / secs)
}

fn bench_generator(lab: &FloodLab, o: &Options) -> Result<Value> {
    let dp = attach_waf(lab)?;
    // Both generators meet the receiver as in the classic setup: its NAPI
    // poll in softirq context, on the CPU that sends. With the poll in a
    // thread on the other CPU, the wake-up latency lets the 256-slot ring
    // fill, the driver stops the queue, and trafgen 0.6.8 gives up on the
    // EAGAIN ("Flushing TX_RING failed") after a few thousand frames. The
    // drop program then costs each generator the same share of its core.
    lab.set_threaded(false);
    let banned = || {
        dp.maps
            .counters()
            .map(|c| c[counter::BANNED as usize].packets)
            .unwrap_or(0)
    };

    // waf gen, one core, the same flood the other steps use.
    let opts = lab.gen_opts(&[FLOOD_POOL], SRV, "max", o.step)?;
    let running = Arc::new(AtomicBool::new(true));
    let h = {
        let r = running.clone();
        let g = lab.spawn_gen(opts.clone());
        std::thread::spawn(move || {
            let out = join_gen(g);
            r.store(false, Ordering::Relaxed);
            out
        })
    };
    let (ours_rx, ours_pps) = rx_rate(banned, &running, Duration::from_secs_f64(o.step + 10.0));
    let ours = h
        .join()
        .map_err(|_| anyhow::anyhow!("generator thread panicked"))??;

    // trafgen, one core, the same frame (its fastest case: no per-frame
    // field changes), through its TX ring with the qdisc bypassed.
    let frame = lab.snd.run(|| -> Result<Vec<u8>> {
        let mac = wgen::interface_mac(&lab.snd_if)?;
        let dst = wgen::parse_mac(&lab.srv_mac)?;
        Ok(wgen::template_frame(&opts, mac, dst))
    })?;
    let cfg = std::env::temp_dir().join(format!("{}.trafgen", unique("wafbench")));
    let bytes: Vec<String> = frame.iter().map(|b| format!("0x{b:02x}")).collect();
    std::fs::write(&cfg, format!("{{ {} }}\n", bytes.join(", ")))?;
    let count = (o.step * 2_000_000.0) as u64;
    // With TSO on the sending veth, trafgen's skbs take the peer's backlog
    // path instead of its NAPI ring; on the ring (TSO off) kernel 6.18 stops
    // the queue when the ring is full and trafgen 0.6.8 gives up on the
    // EAGAIN ("Flushing TX_RING failed") after a few thousand frames.
    lab.snd
        .exec(&["ethtool", "-K", &lab.snd_if, "tso", "on", "gso", "on"]);
    let running = Arc::new(AtomicBool::new(true));
    let child = {
        let r = running.clone();
        let ns = lab.snd.name.clone();
        let dev = lab.snd_if.clone();
        let cfg = cfg.clone();
        let limit = format!("{}", o.step as u64 + 5);
        std::thread::spawn(move || {
            let out = Command::new("ip")
                .args(["netns", "exec", &ns, "timeout", "-s", "INT", &limit])
                .args(["taskset", "-c", &CPU_SENDER.to_string()])
                .args(["trafgen", "-o", &dev, "-i"])
                .arg(&cfg)
                .args(["-P", "1", "-n", &count.to_string(), "-Q", "-C"])
                .output();
            r.store(false, Ordering::Relaxed);
            out
        })
    };
    let (tg_rx, tg_pps) = rx_rate(banned, &running, Duration::from_secs_f64(o.step + 10.0));
    let out = child
        .join()
        .map_err(|_| anyhow::anyhow!("trafgen thread panicked"))?
        .context("run trafgen (cargo xtask setup installs netsniff-ng)")?;
    let _ = std::fs::remove_file(&cfg);
    lab.snd
        .exec(&["ethtool", "-K", &lab.snd_if, "tso", "off", "gso", "off"]);
    let tg_text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let tg_sent: u64 = tg_text
        .lines()
        .find(|l| l.contains("packets outgoing"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    if tg_rx == 0 {
        bail!(
            "trafgen delivered nothing: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::mem::drop(dp);
    lab.set_threaded(true);
    let ratio = ours_pps / tg_pps.max(1.0);
    println!(
        "\n## 0. Generator, one core (shared with the receiver's softirq), 64-byte UDP frames, \
         counted by XDP at the receiver\n"
    );
    println!("| generator | frames received | Mpps at receiver |");
    println!("|---|---|---|");
    println!(
        "| waf gen (XDP live frames) | {ours_rx} | {:.2} |",
        ours_pps / 1e6
    );
    println!(
        "| trafgen -P 1 (netsniff-ng) | {tg_rx} | {:.2} |",
        tg_pps / 1e6
    );
    let tg_failed = tg_text.lines().find(|l| l.contains("failed"));
    if let Some(l) = tg_failed {
        println!("(trafgen stopped early: {})", l.trim());
    }
    println!(
        "ratio {ratio:.1}x (goal >= 5x: {}); waf gen's own count {} frames, {:.2} Mpps",
        if ratio >= 5.0 { "met" } else { "NOT met" },
        ours.frames,
        ours.pps / 1e6
    );
    Ok(json!({
        "waf_gen_rx_pps": ours_pps,
        "waf_gen_rx_frames": ours_rx,
        "waf_gen_sent_frames": ours.frames,
        "waf_gen_sent_pps": ours.pps,
        "trafgen_rx_pps": tg_pps,
        "trafgen_rx_frames": tg_rx,
        "trafgen_reported_sent": tg_sent,
        "trafgen_stopped_early": tg_failed.is_some(),
        "ratio": ratio,
        "goal_ratio": 5.0,
    }))
}

// ---------------------------------------------------------------------------
// 3. Rate-limit accuracy.

fn bench_rate_limit(lab: &FloodLab, o: &Options) -> Result<Vec<Value>> {
    println!("\n## 3. Rate-limit accuracy under flood (XDP per-source packet limit)\n");
    println!(
        "| sources | offered per source pps | configured pps | admitted per source pps | admitted / configured |"
    );
    println!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (pool, nsrc, total, limit) in [
        ("203.0.113.0/29", 8u64, 400_000u64, 1_000u64),
        ("203.0.113.0/29", 8, 400_000, 10_000),
        ("203.0.113.0/29", 8, 400_000, 20_000),
        ("203.0.113.0/24", 256, 400_000, 100),
    ] {
        let mut dp = Dataplane::load(&LoadOptions::default())?;
        let ifname = lab.srv_if.clone();
        lab.srv
            .run(|| dp.attach(&ifname, AttachMode::Native))
            .context("attach")?;
        dp.maps.apply(&Settings {
            rate: RateLimits {
                pps: Some(limit),
                burst: (limit / 10).max(1),
                ..Default::default()
            },
            ..Default::default()
        })?;
        lab.napi_thread()?;
        let secs = o.step + 1.5;
        let _ = total;
        let g = lab.spawn_gen(lab.gen_opts(&[pool], SRV, "max", secs)?);
        std::thread::sleep(Duration::from_millis(1000));
        let read = |dp: &Dataplane| {
            let c = dp.maps.counters().unwrap_or_default();
            (
                c.get(counter::PASS as usize).map_or(0, |c| c.packets),
                c.get(counter::RATE_LIMITED as usize)
                    .map_or(0, |c| c.packets),
            )
        };
        let (t0, (p0, l0)) = (Instant::now(), read(&dp));
        std::thread::sleep(Duration::from_secs_f64(o.step));
        let (p1, l1) = read(&dp);
        let dt = t0.elapsed().as_secs_f64();
        let sent = join_gen(g)?;
        let admitted = (p1 - p0) as f64 / dt / nsrc as f64;
        let offered = (p1 - p0 + l1 - l0) as f64 / dt / nsrc as f64;
        let ratio = admitted / limit as f64;
        println!("| {nsrc} | {offered:.0} | {limit} | {admitted:.1} | {ratio:.3} |");
        rows.push(json!({
            "sources": nsrc,
            "offered_total_pps": sent.pps,
            "offered_per_source_pps": offered,
            "configured_pps": limit,
            "admitted_per_source_pps": admitted,
            "ratio": ratio,
        }));
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// 4. Per-program cost from bpf_stats.

/// kernel.bpf_stats_enabled on for the guard's life, then as it was.
struct BpfStats {
    old: String,
}

impl BpfStats {
    fn enable() -> Result<Self> {
        let path = "/proc/sys/kernel/bpf_stats_enabled";
        let old = std::fs::read_to_string(path)?.trim().to_string();
        std::fs::write(path, "1").context("enable kernel.bpf_stats_enabled")?;
        Ok(Self { old })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/kernel/bpf_stats_enabled", &self.old);
    }
}

fn prog_stats(p: &aya::programs::Xdp) -> Result<(Duration, u64)> {
    let i = p.info()?;
    Ok((i.run_time(), i.run_count()))
}

fn bench_bpf_stats(lab: &FloodLab, o: &Options) -> Result<Vec<Value>> {
    let _stats = BpfStats::enable()?;
    println!("\n## 4. Per-packet cost of each program under traffic (kernel.bpf_stats_enabled)\n");
    println!("| program / path | runs | ns per run |");
    println!("|---|---|---|");
    let mut rows = Vec::new();
    let mut report = |name: &str, before: (Duration, u64), after: (Duration, u64)| {
        let runs = after.1 - before.1;
        let ns = (after.0 - before.0).as_nanos() as f64 / runs.max(1) as f64;
        println!("| {name} | {runs} | {ns:.1} |");
        rows.push(json!({"program": name, "runs": runs, "ns_per_run": ns}));
    };
    let secs = (o.step * 0.7).max(1.0);
    // The firewall on three paths.
    for (name, pool, rate, limit) in [
        ("waf_xdp: banned source, dropped", FLOOD_POOL, "1m", None),
        (
            "waf_xdp: clean source, every check, passed",
            "198.51.100.128/25",
            "200k",
            None,
        ),
        (
            "waf_xdp: rate-limited source, dropped",
            "198.51.100.128/29",
            "1m",
            Some(1000u64),
        ),
    ] {
        let mut dp = attach_waf(lab)?;
        if let Some(l) = limit {
            dp.maps.apply(&Settings {
                rate: RateLimits {
                    pps: Some(l),
                    burst: 100,
                    ..Default::default()
                },
                ..Default::default()
            })?;
        }
        lab.napi_thread()?;
        let before = prog_stats(dp.program()?)?;
        join_gen(lab.spawn_gen(lab.gen_opts(&[pool], SRV, rate, secs)?))?;
        std::thread::sleep(Duration::from_millis(200));
        let after = prog_stats(dp.program()?)?;
        report(name, before, after);
    }
    // The generator's own program: rewriting the source of each frame.
    let opts = lab.gen_opts(&[FLOOD_POOL], SRV, "max", 1.0)?;
    let _rx = attach_waf(lab)?;
    let (before, after) = lab.snd.run(|| -> Result<_> {
        let mut live = LiveGen::load()?;
        live.configure(&wgen::gen_config(&opts))?;
        let frame = wgen::template_frame(
            &opts,
            wgen::interface_mac(&lab.snd_if)?,
            wgen::parse_mac(&lab.srv_mac)?,
        );
        let ifindex = wgen::ifindex(&lab.snd_if)?;
        let before = prog_stats(live.program())?;
        live.send(&frame, ifindex, 2_000_000, 64)?;
        Ok((before, prog_stats(live.program())?))
    })?;
    report("waf_gen: rewrite source + checksums, XDP_TX", before, after);
    println!("(nftables runs no BPF program: its cost is in step 1's CPU per Mpkt)");
    Ok(rows)
}

/// Runs the benchmark: `flood [--step SECONDS] [--quick]`.
pub fn run(args: &[String]) -> Result<()> {
    let o = parse_args(args)?;
    let t = Instant::now();
    let lab = FloodLab::new()?;
    println!(
        "bench flood: lab {} (sender, CPU {CPU_SENDER}) -> {} (server, CPU {CPU_SERVER}) <- {} (client via the sender); {} s steps",
        lab.snd.name, lab.srv.name, lab.cli.name, o.step
    );
    let generator = bench_generator(&lab, &o)?;
    let mut kit = filters::Kit::load()?;
    let drop = drop::bench_drop(&lab, &mut kit, &o)?;
    let survival = survival::bench_survival(&lab, &mut kit, &o)?;
    std::mem::drop(kit);
    let rate_limit = bench_rate_limit(&lab, &o)?;
    let bpf_stats = bench_bpf_stats(&lab, &o)?;
    let result = json!({
        "machine": {
            "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        },
        "step_seconds": o.step,
        "generator": generator,
        "drop_capacity": drop,
        "survival": survival,
        "rate_limit": rate_limit,
        "bpf_stats": bpf_stats,
        "seconds": t.elapsed().as_secs_f64(),
    });
    println!();
    super::write_json("flood.json", &result);
    for p in charts::draw(&result)? {
        println!("wrote {p}");
    }
    Ok(())
}

/// Median, lowest and highest (NaN last).
fn spread(v: &mut [f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let finite = v.iter().filter(|x| !x.is_nan()).count().max(1);
    (v[finite / 2], v[0], v[finite - 1])
}

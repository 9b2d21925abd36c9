//! `cargo xtask bench bans [--count N]`: what N bans cost.
//!
//! - Restore at start: a journal of N bans (half IPv4, half IPv6), read and
//!   written into the kernel maps, in this process, against a reference
//!   measured in the same run: the same bans written one `bpf()` syscall
//!   each into a kernel hash map, the way a plain implementation would.
//! - Disk: the journal's bytes per ban, as the log wrote them and after
//!   compaction into a snapshot.
//! - Memory: the real daemon (`target/release/waf run`, the shipped
//!   waf.toml) in a namespace lab, started on that journal and on an empty
//!   one: its anonymous RSS (RssAnon) and the kernel maps it holds
//!   (memlock of its map file descriptors).
//! - One ban through the firewall's owner, durable (group commit): p50/p99.
//!
//! Writes target/bench/bans.json.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use ipnet::IpNet;
use serde_json::json;
use waf_user::{
    config::Config,
    dataplane::{Dataplane, LoadOptions},
    firewall::{
        BanDuration, BanMeta, BanOrder, BanSource,
        journal::{Journal, Record},
        types::Ban,
    },
    values::unix_now,
};

use super::met;
use crate::{Lab, TEST_TOKEN, api};

/// Ban `i`'s address: an IPv4 address, or the address of an IPv6 /64 (the
/// automatic IPv6 ban, an exact ban at the default `ipv6_prefix`).
fn addr(i: u32) -> IpAddr {
    if i.is_multiple_of(2) {
        // 100.64.0.0/10 and up: never the documentation ranges the tests use.
        IpAddr::V4(Ipv4Addr::from(0x6440_0000u32 + i))
    } else {
        // A distinct /64 in 2001:db8::/32 for each i (an odd multiplier).
        IpAddr::V6(Ipv6Addr::from(
            (0x2001_0db8u128 << 96) | (u128::from(i.wrapping_mul(0x9e37_79b9)) << 64),
        ))
    }
}

/// Ban `i`: an IPv4 address or an IPv6 /64.
pub(crate) fn ban_net(i: u32) -> IpNet {
    match addr(i) {
        IpAddr::V4(a) => IpNet::from(IpAddr::V4(a)),
        IpAddr::V6(a) => IpNet::V6(ipnet::Ipv6Net::new(a, 64).expect("a /64")),
    }
}

/// Writes a journal of `count` bans (`ban_net(i)`, made now for `ttl`
/// seconds, for `reason(i)`) into `dir`, compacted into a snapshot;
/// returns (log bytes, snapshot bytes).
pub(crate) fn write_journal(
    dir: &Path,
    count: u32,
    ttl: u32,
    reason: impl Fn(u32) -> Arc<str>,
) -> Result<(u64, u64)> {
    let now = unix_now() as u32;
    let (mut j, mut state, _) = Journal::open(dir)?;
    for i in 0..count {
        let r = Record::Ban(Ban {
            net: ban_net(i),
            meta: BanMeta {
                created: now,
                expires: now + ttl,
                offence: 1,
                source: BanSource::Detection,
                reason: reason(i),
                origin: waf_user::firewall::Origin::NONE,
            },
        });
        j.append(&r);
        state.apply(r);
        if i % 65_536 == 65_535 {
            j.commit(Vec::new());
        }
    }
    j.flush();
    let log = j.disk_bytes();
    j.compact(state);
    j.wait_compaction();
    let snap = j.disk_bytes();
    Ok((log, snap))
}

fn status_kb(pid: u32, key: &str) -> Result<u64> {
    super::status_kb(pid, key).with_context(|| format!("{key} in /proc/{pid}/status"))
}

/// The memlock of every BPF map the process holds a descriptor of.
fn maps_bytes(pid: u32) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))? {
        let Ok(text) = std::fs::read_to_string(e?.path()) else {
            continue;
        };
        if !text.contains("map_type:") {
            continue;
        }
        if let Some(v) = text
            .lines()
            .find_map(|l| l.strip_prefix("memlock:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            total += v;
        }
    }
    Ok(total)
}

/// Starts the release daemon with the shipped config on `state_dir` in a
/// lab; returns (RssAnon bytes, map bytes, restore log line).
fn daemon_memory(state_dir: &Path, count: u32) -> Result<(u64, u64)> {
    let lab = Lab::new();
    let pins = crate::PinDir::new();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../waf-user/dist/waf.toml");
    let mut cfg: toml::Table = toml::from_str(&std::fs::read_to_string(&shipped)?)?;
    cfg.insert("interface".into(), lab.srv_if.clone().into());
    cfg.insert("bpf_dir".into(), pins.path.display().to_string().into());
    cfg.insert("state_dir".into(), state_dir.display().to_string().into());
    let mut api_t = toml::Table::new();
    api_t.insert("listen".into(), "127.0.0.1:9876".into());
    api_t.insert("token".into(), TEST_TOKEN.into());
    cfg.insert("api".into(), api_t.into());
    let file = state_dir.join("bench.toml");
    std::fs::write(&file, toml::to_string(&cfg)?)?;
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/waf");
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.srv.name])
        .arg(&bin)
        .args(["run", "--config"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(state_dir.join("bench.log"))?)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        if let Ok(Some(st)) = child.try_wait() {
            let log = std::fs::read_to_string(state_dir.join("bench.log")).unwrap_or_default();
            bail!("the daemon exited: {st}\n{log}");
        }
        let (code, v) = api(&lab, "GET", "/v1/health", None);
        if code == 200 && v["bans"].as_u64() == Some(u64::from(count)) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The ip-netns-exec child execs the daemon: same pid.
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(500));
    let rss = status_kb(pid, "RssAnon:").map(|k| k * 1024);
    let maps = maps_bytes(pid);
    let _ = child.kill();
    let _ = child.wait();
    let _ = waf_user::dataplane::detach(&pins.path, &lab.srv_if);
    if !ready {
        bail!("the daemon did not report {count} bans within 60 s");
    }
    Ok((rss?, maps?))
}

/// Runs the benchmark: `bans [--count N]`.
pub fn run(args: &[String]) -> Result<()> {
    let mut count: u32 = 100_000;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--count" => {
                count = it
                    .next()
                    .context("--count needs a number")?
                    .parse()
                    .context("--count takes a number")?;
            }
            other => bail!("unknown argument {other}; known: --count N"),
        }
    }
    let dir = std::env::temp_dir().join(format!("waf-bench-bans-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let reason: Arc<str> = Arc::from("bench");
    let (log_bytes, snap_bytes) = write_journal(&dir, count, 3600, |_| reason.clone())?;
    let cfg = Config {
        state_dir: dir.clone(),
        ..Default::default()
    };

    // The daemon's restore: read the journal, write every ban into the
    // kernel.
    let dp = Dataplane::load(&LoadOptions::default())?;
    let t = Instant::now();
    let (journal, state, _) = Journal::open(&dir)?;
    let read = t.elapsed();
    let (fw, report) = waf_user::firewall::Firewall::start(cfg.firewall()?, dp, state)?;
    let restore = t.elapsed();
    println!(
        "restore phases: journal read {:.0} ms, kernel and firewall {:.0} ms ({} overflowed into the hash)",
        read.as_secs_f64() * 1000.0,
        (restore - read).as_secs_f64() * 1000.0,
        fw.dataplane().maps.bans.v4.overflowed() + fw.dataplane().maps.bans.v6.overflowed()
    );
    let in_kernel = fw.dataplane().maps.bans.len();
    if report.restored != count as usize || in_kernel != count as usize {
        bail!(
            "restored {} bans, {in_kernel} in the kernel, expected {count}",
            report.restored
        );
    }

    // One ban through the owner, acknowledged once durable.
    let (handle, owner) = waf_user::firewall::owner::spawn(fw, journal)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut lat = Vec::new();
    rt.block_on(async {
        for i in 0..1000u32 {
            let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + i));
            let t = Instant::now();
            handle
                .ban(BanOrder {
                    net: IpNet::from(a),
                    duration: BanDuration::For(Duration::from_secs(60)),
                    reason: "bench".into(),
                    source: BanSource::Manual,
                    origin: None,
                    force: false,
                })
                .await?;
            lat.push(t.elapsed());
        }
        handle.stop().await;
        anyhow::Ok(())
    })?;
    let _ = owner.join();
    lat.sort();
    let p50 = lat[lat.len() / 2];
    let p99 = lat[lat.len() * 99 / 100];

    let reference = reference_syscalls(count)?;
    let ratio = restore.as_secs_f64() / reference.as_secs_f64();

    // The daemon's memory, with the bans and without.
    let empty = std::env::temp_dir().join(format!("waf-bench-bans-empty-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&empty);
    std::fs::create_dir_all(&empty)?;
    let (rss0, maps0) = daemon_memory(&empty, 0)?;
    let (rss, maps) = daemon_memory(&dir, count)?;
    let per_ban = (rss.saturating_sub(rss0)) as f64 / f64::from(count.max(1));
    let cidrs = blocklist_cidrs(CIDRS)?;
    report_and_write(Figures {
        cidrs,
        count,
        restore,
        reference,
        ratio,
        log_bytes,
        snap_bytes,
        rss,
        rss0,
        per_ban,
        maps,
        maps0,
        p50,
        p99,
    });
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
    Ok(())
}

/// IPv4 CIDRs loaded into a blocklist sized for them.
const CIDRS: u32 = 1_000_000;

/// A blocklist of `n` CIDRs: what `[capacity]` makes room for.
struct Cidrs {
    count: u32,
    capacity: u32,
    load: Duration,
    /// Kernel memory of this process's maps, filled less empty.
    bytes: u64,
}

/// Loads a data plane whose blocklist holds `n` CIDRs, and fills it with
/// `n` distinct IPv4 CIDRs of /8 to /32.
fn blocklist_cidrs(n: u32) -> Result<Cidrs> {
    let capacity = waf_user::dataplane::Capacity {
        blocklist: n.next_power_of_two(),
        ..Default::default()
    };
    let mut dp = Dataplane::load(&LoadOptions {
        pin_dir: None,
        capacity,
    })?;
    let before = maps_bytes(std::process::id())?;
    let mut seen = std::collections::HashSet::new();
    let mut rng = crate::xdp_fuzz::rng::Rng::new(0x2545_f491_4f6c_dd1d);
    let t = Instant::now();
    while seen.len() < n as usize {
        let x = rng.u64();
        let len = 8 + (x >> 40) as u8 % 25;
        let net = ipnet::Ipv4Net::new(Ipv4Addr::from(x as u32), len)?.trunc();
        if seen.insert(net) {
            dp.maps
                .block
                .insert(IpNet::V4(net), waf_common::ListEntry::default())?;
        }
    }
    let load = t.elapsed();
    let bytes = maps_bytes(std::process::id())?.saturating_sub(before);
    Ok(Cidrs {
        count: n,
        capacity: capacity.blocklist,
        load,
        bytes,
    })
}

/// The same bans, one bpf() syscall each, into a kernel hash (the overflow
/// hash of a fresh data plane).
fn reference_syscalls(count: u32) -> Result<Duration> {
    let mut dp2 = Dataplane::load(&LoadOptions::default())?;
    let entry = waf_common::BanEntry {
        expires_ns: 1,
        reason: 2,
        _reserved: 0,
    };
    let t = Instant::now();
    for i in 0..count {
        match addr(i) {
            IpAddr::V4(a) => {
                dp2.maps
                    .bans
                    .v4
                    .overflow_map()
                    .insert(u32::from_ne_bytes(a.octets()), entry, 0)?
            }
            IpAddr::V6(a) => dp2
                .maps
                .bans
                .v6
                .overflow_map()
                .insert(a.octets(), entry, 0)?,
        }
    }
    Ok(t.elapsed())
}

struct Figures {
    cidrs: Cidrs,
    count: u32,
    restore: Duration,
    reference: Duration,
    ratio: f64,
    log_bytes: u64,
    snap_bytes: u64,
    rss: u64,
    rss0: u64,
    per_ban: f64,
    maps: u64,
    maps0: u64,
    p50: Duration,
    p99: Duration,
}

fn report_and_write(f: Figures) {
    let n = f64::from(f.count.max(1));
    let mb = |b: u64| b as f64 / 1e6;
    println!("{} bans (half IPv4, half IPv6)", f.count);
    println!(
        "restore at start (journal + kernel maps): {:>8.1} ms   goal < 1000 ms: {}",
        f.restore.as_secs_f64() * 1000.0,
        met(f.restore < Duration::from_secs(1))
    );
    println!(
        "reference, one bpf() update per ban:      {:>8.1} ms   ratio {:.2}",
        f.reference.as_secs_f64() * 1000.0,
        f.ratio
    );
    println!(
        "disk: log {:.1} B a ban, snapshot {:.1} B a ban   goal <= 64: {}",
        f.log_bytes as f64 / n,
        f.snap_bytes as f64 / n,
        met(f.snap_bytes as f64 / n <= 64.0)
    );
    println!(
        "daemon RssAnon (shipped waf.toml): {:.1} MB with the bans, {:.1} MB without: {:.1} B a ban   goal <= 150: {}",
        mb(f.rss),
        mb(f.rss0),
        f.per_ban,
        met(f.per_ban <= 150.0)
    );
    println!(
        "kernel maps: {:.1} MB ({:.1} MB without the bans)",
        mb(f.maps),
        mb(f.maps0)
    );
    let c = &f.cidrs;
    println!(
        "blocklist ([capacity] blocklist = {}): {} IPv4 CIDRs (/8 to /32) loaded in {:.1} s; \
         the tries' kernel memory {:.1} MB ({:.0} B a CIDR)",
        c.capacity,
        c.count,
        c.load.as_secs_f64(),
        mb(c.bytes),
        c.bytes as f64 / f64::from(c.count.max(1))
    );
    println!(
        "one ban through the owner, durable: p50 {:.1} us, p99 {:.1} us",
        f.p50.as_secs_f64() * 1e6,
        f.p99.as_secs_f64() * 1e6
    );
    super::write_json(
        "bans.json",
        &json!({
            "bans": f.count,
            "restore_ms": f.restore.as_secs_f64() * 1000.0,
            "reference_syscall_per_ban_ms": f.reference.as_secs_f64() * 1000.0,
            "ratio": f.ratio,
            "disk_bytes_per_ban": f.snap_bytes as f64 / n,
            "log_bytes_per_ban": f.log_bytes as f64 / n,
            "rss_mb": mb(f.rss),
            "rss_mb_empty": mb(f.rss0),
            "rss_bytes_per_ban": f.per_ban,
            "maps_mb": mb(f.maps),
            "maps_mb_empty": mb(f.maps0),
            "single_ban_us": {"p50": f.p50.as_secs_f64() * 1e6, "p99": f.p99.as_secs_f64() * 1e6},
            "blocklist_cidrs": {
                "count": f.cidrs.count, "capacity": f.cidrs.capacity,
                "load_s": f.cidrs.load.as_secs_f64(),
                "kernel_mb": mb(f.cidrs.bytes),
                "bytes_per_cidr": f.cidrs.bytes as f64 / f64::from(f.cidrs.count.max(1)),
            },
            "goals": {"restore_ms": 1000, "disk_bytes_per_ban": 64, "rss_bytes_per_ban": 150},
        }),
    );
}

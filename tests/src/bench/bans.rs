//! `cargo xtask bench bans`: how fast the daemon restores its bans at start
//! (journal replay into the kernel maps), and how long one ban takes to
//! reach the kernel, against a reference measured in the same run: the same
//! bans written one `bpf()` syscall each into a kernel hash map, the way a
//! plain implementation would. Writes target/bench/bans.json.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use ipnet::IpNet;
use serde_json::json;
use waf_user::{
    config::Config,
    dataplane::{Dataplane, LoadOptions},
    firewall::{BanDuration, Firewall, unix_now},
    journal::{Ban, BanSource, Journal, Record},
};

fn addr(i: u32) -> IpAddr {
    if i.is_multiple_of(2) {
        // 100.64.0.0/10 and up: never the documentation ranges the tests use.
        IpAddr::V4(Ipv4Addr::from(0x6440_0000u32 + i))
    } else {
        IpAddr::V6(Ipv6Addr::from(
            (0x2001_0db8_0bad_0000u128 << 64) | u128::from(i).wrapping_mul(0x9e37_79b9),
        ))
    }
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
    let now = unix_now();
    {
        let (mut j, _, _) = Journal::open(&dir)?;
        let records: Vec<Record> = (0..count)
            .map(|i| {
                Record::Ban(Ban {
                    net: IpNet::from(addr(i)),
                    reason: "bench".into(),
                    source: BanSource::Detection,
                    created: now,
                    expires: Some(now + 3600),
                    offence: 1,
                })
            })
            .collect();
        j.append_all(&records)?;
        j.sync()?;
    }
    let journal_bytes = std::fs::metadata(Journal::path_in(&dir))?.len();
    let cfg = Config {
        state_dir: dir.clone(),
        ..Default::default()
    };

    // The daemon's restore: replay + write every ban into the kernel.
    let dp = Dataplane::load(&LoadOptions::default())?;
    let t = Instant::now();
    let (mut fw, report) = Firewall::start(&cfg, dp)?;
    let restore = t.elapsed();
    let in_kernel = fw.dataplane().maps.bans.len();
    if report.restored != count as usize || in_kernel != count as usize {
        bail!(
            "restored {} bans, {in_kernel} in the kernel, expected {count}",
            report.restored
        );
    }

    // One ban, API call to kernel map: the firewall's write path.
    let mut lat = Vec::new();
    for i in 0..1000u32 {
        let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + i));
        let t = Instant::now();
        fw.ban(
            IpNet::from(a),
            BanDuration::For(Duration::from_secs(60)),
            "bench".into(),
            BanSource::Manual,
        )?;
        lat.push(t.elapsed());
    }
    lat.sort();
    let p50 = lat[lat.len() / 2];
    let p99 = lat[lat.len() * 99 / 100];

    // Reference: the same bans, one bpf() syscall each, into a kernel hash
    // (the overflow hash of a fresh data plane).
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
    let reference = t.elapsed();

    let ratio = restore.as_secs_f64() / reference.as_secs_f64();
    println!("{count} bans ({} MB journal)", journal_bytes / 1_000_000);
    println!(
        "restore at start (journal replay + kernel maps): {:>8.1} ms   goal < 1000 ms: {}",
        restore.as_secs_f64() * 1000.0,
        if restore < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "reference, one bpf() update per ban:            {:>8.1} ms   ratio {ratio:.2}",
        reference.as_secs_f64() * 1000.0
    );
    println!(
        "one ban, firewall call to kernel map + journal: p50 {:.1} us, p99 {:.1} us",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    super::write_json(
        "bans.json",
        &json!({
            "bans": count,
            "journal_bytes": journal_bytes,
            "restore_ms": restore.as_secs_f64() * 1000.0,
            "reference_syscall_per_ban_ms": reference.as_secs_f64() * 1000.0,
            "ratio": ratio,
            "goal_ms": 1000,
            "goal_met": restore < Duration::from_secs(1),
            "single_ban_us": {"p50": p50.as_secs_f64() * 1e6, "p99": p99.as_secs_f64() * 1e6},
        }),
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

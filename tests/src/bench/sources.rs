//! `cargo xtask bench sources`: loading and swapping source policies of
//! 500,000 ranges (a synthetic country database in MaxMind format, and a
//! cloud provider's range file): reading and compiling, writing into the
//! kernel's source-policy set, and a swap to another policy, with the
//! verdicts checked on sampled addresses through the real program. The
//! reference, measured in the same run: the same prefixes loaded as an
//! nftables interval set (`nft -f`) in a network namespace of its own, what
//! a user would reach for instead. Writes target/bench/sources.json.
//!
//! The synthetic database also serves `bench xdp`'s case "full country
//! database + cloud ranges loaded".

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::json;
use waf_user::{
    dataplane::{Capacity, Dataplane, LoadOptions},
    sources::{SourcePolicy, SourcesConfig, config::CloudRanges},
};

use super::{met, xdp::Rng};
use crate::mmdb::{self, Record};

/// Countries the synthetic database spreads its networks over.
const CODES: [&str; 40] = [
    "US", "CN", "DE", "GB", "FR", "JP", "KR", "BR", "IN", "RU", "NL", "IT", "CA", "AU", "ES", "SE",
    "PL", "TW", "VN", "ID", "MX", "TR", "UA", "AR", "ZA", "CH", "BE", "AT", "SG", "HK", "NO", "DK",
    "FI", "IR", "TH", "EG", "CZ", "RO", "IL", "CL",
];

/// A country, skewed toward the first codes as real databases are.
fn country(rng: &mut Rng) -> String {
    let r = (rng.next() % 1000) as f64 / 1000.0;
    let i = ((r * r) * CODES.len() as f64) as usize;
    CODES[i.min(CODES.len() - 1)].to_string()
}

/// `n` adjacent IPv4 networks from 1.0.0.0 (lengths /16 to /29, mostly
/// /20 to /24, a few gaps the database does not know), each with a country
/// of its own; then `n6` IPv6 networks from 2001:d00:: (/32 to /48), in
/// allocation blocks of /29 to /32 mostly of one country, or with
/// `dense_v6` each network its own; the networks holding `keep`
/// (addresses that must stay in an allowed country) are `DE`.
pub fn synthetic_db(
    n4: usize,
    n6: usize,
    keep: &[IpAddr],
    seed: u64,
    dense_v6: bool,
) -> Vec<(IpNet, Record)> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(n4 + n6);
    let mut at: u64 = 1 << 24;
    while out.len() < n4 && at < (224 << 24) {
        let want = match rng.next() % 100 {
            0..=4 => 16,
            5..=14 => 18,
            15..=29 => 20,
            30..=49 => 22,
            50..=69 => 23,
            70..=89 => 24,
            _ => 25 + (rng.next() % 5) as u32,
        };
        // Aligned: no longer than the address's alignment allows.
        let align = 32 - (at as u32).trailing_zeros().min(32);
        let len = want.max(align);
        let net = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(at as u32), len as u8).expect("len"));
        at += 1u64 << (32 - len);
        if rng.next().is_multiple_of(50) {
            continue; // unknown to the database
        }
        out.push((net, Record::Country(country(&mut rng))));
    }
    let mut at6: u128 = 0x2001_0d00u128 << 96;
    let start = out.len();
    let size = |len: u32| 1u128 << (128 - len);
    let align = |a: u128| 128 - a.trailing_zeros().min(128);
    while out.len() - start < n6 {
        if dense_v6 {
            // Each network its own country: every target length under
            // every /32 (the worst case for the IPv6 table's masks).
            let want = [32u32, 36, 40, 44, 48][(rng.next() % 5) as usize];
            let len = want.max(align(at6));
            let net = IpNet::V6(Ipv6Net::new(Ipv6Addr::from(at6), len as u8).expect("len"));
            at6 += size(len);
            out.push((net, Record::Country(country(&mut rng))));
            continue;
        }
        // As registries allocate: a /29 to /32 block to one holder, listed
        // as networks of /32 to /48, one in ten geolocated elsewhere.
        let blen = 29 + (rng.next() % 4) as u32;
        at6 = at6.div_ceil(size(blen)) * size(blen);
        let (end, home) = (at6 + size(blen), country(&mut rng));
        while at6 < end && out.len() - start < n6 {
            let want = [32u32, 36, 40, 44, 48][(rng.next() % 5) as usize];
            let len = want.max(align(at6)).max(blen);
            let net = IpNet::V6(Ipv6Net::new(Ipv6Addr::from(at6), len as u8).expect("len"));
            at6 += size(len);
            let c = if rng.next().is_multiple_of(10) {
                country(&mut rng)
            } else {
                home.clone()
            };
            out.push((net, Record::Country(c)));
        }
        at6 = at6.max(end);
    }
    for (n, r) in &mut out {
        if keep.iter().any(|a| n.contains(a)) {
            *r = Record::Country("DE".into());
        }
    }
    out
}

/// An AWS `ip-ranges.json` of `n` IPv4 and `n / 4` IPv6 prefixes scattered
/// over the space (they overlap the database's countries).
pub fn synthetic_aws(n: usize, avoid: &[IpAddr], seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut v4 = Vec::new();
    while v4.len() < n {
        let len = 16 + (rng.next() % 13) as u8;
        let a = Ipv4Addr::from(((rng.next() % 222) as u32 + 1) << 24 | rng.next() as u32 >> 8);
        let net = Ipv4Net::new(a, len).expect("len").trunc();
        if avoid.iter().any(|x| IpNet::V4(net).contains(x)) {
            continue;
        }
        v4.push(json!({"ip_prefix": net.to_string(), "region": "eu-west-1",
            "service": "EC2", "network_border_group": "eu-west-1"}));
    }
    let v6: Vec<_> = (0..n / 4)
        .map(|_| {
            let a = Ipv6Addr::from((0x2a05_d000u128 << 96) | u128::from(rng.next()) << 40);
            let net = Ipv6Net::new(a, 56).expect("len").trunc();
            json!({"ipv6_prefix": net.to_string(), "region": "eu-west-1",
                "service": "EC2", "network_border_group": "eu-west-1"})
        })
        .collect();
    json!({"syncToken": "1", "createDate": "2026-12-01-00-00-00",
        "prefixes": v4, "ipv6_prefixes": v6})
    .to_string()
}

/// The files of a synthetic full policy in `dir`: a country database of
/// `n4` + `n6` networks and an AWS file; returns the config that blocks
/// every country but DE and US, and AWS, and the database's networks.
pub fn write_policy(
    dir: &Path,
    n4: usize,
    n6: usize,
    keep: &[IpAddr],
    dense_v6: bool,
) -> Result<(SourcesConfig, Vec<(IpNet, Record)>)> {
    let db = synthetic_db(n4, n6, keep, 0x5eed, dense_v6);
    let path = dir.join("country.mmdb");
    mmdb::write(&path, "GeoLite2-Country", &db).context("write the country database")?;
    let aws = dir.join("ip-ranges.json");
    std::fs::write(&aws, synthetic_aws(8_000, keep, 7))?;
    let cfg = SourcesConfig {
        country_db: Some(path),
        allow_countries: vec!["DE".into(), "US".into()],
        cloud_ranges: vec![CloudRanges {
            file: aws,
            provider: "aws".into(),
            format: None,
            regions: None,
            services: None,
        }],
        block_cloud: vec!["aws".into()],
        ..Default::default()
    };
    Ok((cfg, db))
}

/// Sources per family the xdp case measures the pass path with.
const CLEAN: usize = 24;

/// Capacity for a full policy.
pub fn capacity() -> Capacity {
    Capacity {
        sources: 1 << 21,
        sources_v6: 1 << 20,
        ..Capacity::default()
    }
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(crate::unique("waf-bench-sources-"));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Loads `cfg` (read and compile), then puts it in the set; the times.
fn load_and_apply(dp: &mut Dataplane, cfg: &SourcesConfig) -> Result<(SourcePolicy, f64, f64)> {
    let t = Instant::now();
    let p = SourcePolicy::load(cfg)?;
    let load = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let r = dp.maps.sources.replace(p.entries())?;
    let apply = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "  {} prefixes ({} written, {} removed{}): read and compiled in {load:.0} ms, in the kernel in {apply:.0} ms",
        p.entries().len(),
        r.written,
        r.removed,
        if r.gap { ", with a gap" } else { "" }
    );
    Ok((p, load, apply))
}

/// Checks the program's verdict on `n` sampled addresses against the
/// policy's own answer; the number checked.
fn check_verdicts(dp: &mut Dataplane, p: &SourcePolicy, n: usize) -> Result<usize> {
    let mut rng = Rng(99);
    let prog = dp.program()?;
    for i in 0..n {
        let a: IpAddr = if i % 2 == 0 {
            IpAddr::V4(Ipv4Addr::from(
                ((rng.next() % 222) as u32 + 1) << 24 | rng.next() as u32 >> 8,
            ))
        } else {
            IpAddr::V6(Ipv6Addr::from(
                (0x2001_0d00u128 << 96) | u128::from(rng.next()) << 60,
            ))
        };
        let want = if p.entry_of(a).is_some() { 1 } else { 2 };
        let got = crate::run_xdp(prog, &super::xdp::frame(a));
        if got != want {
            bail!("{a}: the program says {got}, the policy {want}");
        }
    }
    Ok(n)
}

/// The same prefixes as an nftables interval set, loaded with `nft -f`
/// in a namespace of its own: the load time in ms, None without nft.
fn nft_reference(p: &SourcePolicy, dir: &Path) -> Option<f64> {
    let (v4, v6): (Vec<_>, Vec<_>) = p
        .entries()
        .iter()
        .map(|(n, _)| *n)
        .partition(|n| matches!(n, IpNet::V4(_)));
    let list = |v: &[IpNet]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        "table inet wafbench {{\n set s4 {{ type ipv4_addr; flags interval; elements = {{ {} }} }}\n set s6 {{ type ipv6_addr; flags interval; elements = {{ {} }} }}\n chain input {{ type filter hook input priority 0; ip saddr @s4 drop; ip6 saddr @s6 drop; }}\n}}\n",
        list(&v4),
        list(&v6)
    );
    let file = dir.join("sources.nft");
    std::fs::write(&file, text).ok()?;
    let ns = crate::Netns::new("wbs");
    let t = Instant::now();
    let ok = ns.try_exec(&["nft", "-f", &file.display().to_string()]);
    let ms = t.elapsed().as_secs_f64() * 1e3;
    ok.then_some(ms)
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> Result<()> {
    let (mut n4, mut n6) = (300_000, 200_000);
    if let Some(a) = args.first() {
        if a == "--small" {
            (n4, n6) = (30_000, 20_000);
        } else {
            bail!("unknown argument {a}; known: --small");
        }
    }
    let dir = temp_dir();
    let t = Instant::now();
    let keep: Vec<IpAddr> = vec!["10.1.2.3".parse()?, "2001:db8:1::3".parse()?];
    let (cfg, _) = write_policy(&dir, n4, n6, &keep, false)?;
    println!(
        "synthetic country database of {} ranges ({n4} IPv4, {n6} IPv6) and 8,000 AWS prefixes \
         written in {:.1} s; policy: every country but DE and US, and AWS",
        n4 + n6,
        t.elapsed().as_secs_f64()
    );
    let mut dp = Dataplane::load(&LoadOptions {
        capacity: capacity(),
        ..Default::default()
    })?;
    println!("load into an empty set:");
    let (p, load_ms, apply_ms) = load_and_apply(&mut dp, &cfg)?;
    let checked = check_verdicts(&mut dp, &p, 400)?;
    // The swap: FR allowed too.
    let mut cfg2 = cfg.clone();
    cfg2.allow_countries.push("FR".into());
    println!("swap to another policy (FR allowed too):");
    let (p2, swap_load_ms, swap_apply_ms) = load_and_apply(&mut dp, &cfg2)?;
    check_verdicts(&mut dp, &p2, 400)?;
    println!(
        "verdicts of the program on {checked} sampled addresses agree with the policy's, after each"
    );
    let nft = nft_reference(&p, &dir);
    let total = load_ms + apply_ms;
    let swap = swap_load_ms + swap_apply_ms;
    match nft {
        Some(ms) => println!(
            "reference: the same {} prefixes as an nftables interval set: nft -f in {ms:.0} ms \
             (ours {:.2}x of it, load; {:.2}x, swap)",
            p.entries().len(),
            total / ms,
            swap / ms
        ),
        None => println!("reference: nft unavailable (cargo xtask setup installs nftables)"),
    }
    let ok = total < 2000.0 && swap < 2000.0;
    println!(
        "goal: a full database loads and swaps in under 2 s: load {total:.0} ms, swap {swap:.0} ms: {}",
        met(ok)
    );
    super::write_json(
        "sources.json",
        &json!({
            "ranges": n4 + n6,
            "prefixes": p.entries().len(),
            "load_ms": load_ms,
            "apply_ms": apply_ms,
            "total_ms": total,
            "swap_load_ms": swap_load_ms,
            "swap_apply_ms": swap_apply_ms,
            "swap_ms": swap,
            "nft_load_ms": nft,
            "verdicts_checked": checked * 2,
            "goal_met": ok,
        }),
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `bench xdp`'s case "full country database + cloud ranges loaded": the
/// base scale's maps plus the synthetic full policy in a second program,
/// its pass paths (sources in allowed countries, beside dropped prefixes)
/// against the base's, round by round, and its source-policy drops against
/// the reference filter's drop. JSON for xdp.json; whether the goal (pass
/// within 10% of the base) was met.
pub(super) fn xdp_case(
    base: &mut super::xdp::Setup,
    m: &super::xdp::Members,
    rounds: usize,
    repeat: u32,
    dense_v6: bool,
) -> Result<(serde_json::Value, bool)> {
    use super::xdp::{BASE, Setup, fill, measure, members};
    let dir = temp_dir();
    let keep = m.all();
    let (cfg, db) = write_policy(&dir, 300_000, 200_000, &keep, dense_v6)?;
    let mut s = Setup {
        dp: Dataplane::load(&LoadOptions {
            capacity: Capacity {
                sources: capacity().sources,
                sources_v6: capacity().sources_v6,
                ..super::xdp::capacity()
            },
            ..Default::default()
        })?,
        tools: waf_user::r#gen::Tools::load()?,
    };
    let empty = super::xdp::Scale::empty();
    fill(
        &mut s.dp,
        &mut s.tools,
        &mut super::xdp::Rng(super::xdp::SEED),
        empty,
        BASE,
    )?;
    members(&mut s.dp, &mut s.tools)?;
    let p = SourcePolicy::load(&cfg)?;
    s.dp.maps.sources.replace(p.entries())?;
    let t6 = s.dp.maps.sources.v6_table();
    println!(
        "IPv6 table: targets {:?}, {} slots, {} entries in the trie only, {} overflowed; \
         directory: {}",
        t6.targets,
        t6.slots,
        t6.trie_only,
        t6.overflowed.len(),
        t6.dir.map_or("none".into(), |d| format!(
            "{} of {} split /32s kept, {} cover bitmaps",
            d.kept, d.split, d.covers
        ))
    );
    // The textbook CIDR filter with the same prefixes: one LPM lookup.
    for (n, _) in p.entries() {
        s.tools.reference_lpm_insert(*n)?;
    }
    let drop_at = |v6: bool| -> Option<IpAddr> {
        p.entries().iter().find_map(|(n, e)| {
            (matches!(n, IpNet::V6(_)) == v6 && e.flags == 0 && n.prefix_len() < n.max_prefix_len())
                .then(|| n.hosts().nth(1))
                .flatten()
        })
    };
    let (Some(drop4), Some(drop6)) = (drop_at(false), drop_at(true)) else {
        bail!("the synthetic policy has no dropped prefix");
    };
    println!(
        "\nfull country database + cloud ranges: {} prefixes in the source-policy set ({} ranges \
         read; IPv6 {}), beside the base scale's maps",
        p.entries().len(),
        500_000 + 10_000,
        if dense_v6 {
            "each network its own country (--sources-dense)"
        } else {
            "in allocation blocks"
        }
    );
    let settings = super::xdp::generous();
    base.dp.maps.apply(&settings)?;
    s.dp.maps.apply(&settings)?;
    let mut held = base
        .tools
        .programs(&[waf_common::tools::REFERENCE_PROGRAM_NAME])?;
    held.push(base.dp.program()?);
    held.push(s.dp.program()?);
    held.extend(
        s.tools
            .programs(&[waf_common::tools::REFERENCE_LPM_PROGRAM_NAME])?,
    );
    let wall = waf_user::r#gen::DispatcherHold::new(&mut held).ok();
    let w = wall.is_some();
    // Sources that match no policy: addresses of the allowed countries'
    // networks (some in /24s that hold longer prefixes of other countries,
    // as in a real database), each measured in both programs in turn.
    let mut rng = Rng(3);
    let mut clean: [Vec<IpAddr>; 2] = [Vec::new(), Vec::new()];
    for (n, r) in db {
        let allowed = matches!(&r, Record::Country(c) if c == "DE" || c == "US");
        let fam = usize::from(matches!(n, IpNet::V6(_)));
        if !allowed || clean[fam].len() >= CLEAN || !rng.next().is_multiple_of(97) {
            continue;
        }
        let a = match n {
            IpNet::V4(v) => IpAddr::V4(Ipv4Addr::from(
                u32::from(v.network()) | (rng.next() as u32 & !u32::from(v.netmask())),
            )),
            IpNet::V6(v) => IpAddr::V6(Ipv6Addr::from(
                u128::from(v.network()) | (u128::from(rng.next()) & !u128::from(v.netmask())),
            )),
        };
        let pass = |dp: &mut Dataplane| -> Result<bool> {
            Ok(measure(dp.program()?, &super::xdp::frame(a), 1, w)?.action == 2)
        };
        if p.entry_of(a).is_none() && pass(&mut base.dp)? && pass(&mut s.dp)? {
            clean[fam].push(a);
        }
    }
    let ref_drop = super::xdp::frame(m.banned4);
    // Per family: per address, the median over rounds of ours over base.
    let mut per_addr: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut lpm_fam: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut ns_fam: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut base_fam: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for (fam, addrs) in clean.iter().enumerate() {
        for &a in addrs {
            let f = super::xdp::frame(a);
            let (mut ratios, mut xs, mut bs) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                let one = |dp: &mut Dataplane| -> Result<f64> {
                    let r = measure(dp.program()?, &f, repeat / 4, w)?;
                    if r.action != 2 {
                        bail!("{a}: action {}, expected pass", r.action);
                    }
                    Ok(r.ns)
                };
                let (b, x) = if round.is_multiple_of(2) {
                    let b = one(&mut base.dp)?;
                    (b, one(&mut s.dp)?)
                } else {
                    let x = one(&mut s.dp)?;
                    (one(&mut base.dp)?, x)
                };
                ratios.push(x / b);
                xs.push(x);
                bs.push(b);
            }
            let mut lpm = Vec::new();
            for _ in 0..rounds {
                let r = measure(s.tools.reference_lpm()?, &f, repeat / 4, w)?;
                if r.action != 2 {
                    bail!(
                        "{a}: the LPM filter gave action {}, expected pass",
                        r.action
                    );
                }
                lpm.push(r.ns);
            }
            lpm_fam[fam].push(super::xdp::median(&mut lpm));
            per_addr[fam].push(super::xdp::median(&mut ratios));
            ns_fam[fam].push(super::xdp::median(&mut xs));
            base_fam[fam].push(super::xdp::median(&mut bs));
        }
    }
    let mut drop_ratio = [Vec::new(), Vec::new()];
    let mut drop_ns = [Vec::new(), Vec::new()];
    let mut drop_lpm = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (i, a) in [drop4, drop6].iter().enumerate() {
            let r = measure(s.dp.program()?, &super::xdp::frame(*a), repeat, w)?;
            if r.action != 1 {
                bail!("source-policy drop {a}: action {}", r.action);
            }
            let lpm = measure(s.tools.reference_lpm()?, &super::xdp::frame(*a), repeat, w)?;
            if lpm.action != 1 {
                bail!("the LPM filter's drop {a}: action {}", lpm.action);
            }
            drop_lpm[i].push(lpm.ns);
            let reference = measure(base.tools.reference()?, &ref_drop, repeat, w)?;
            drop_ns[i].push(r.ns);
            drop_ratio[i].push(r.ns / reference.ns);
        }
    }
    drop(wall);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let goal = 1.10;
    let mut ok = true;
    let mut paths = serde_json::Map::new();
    for (fam, name) in ["pass", "pass_v6"].iter().enumerate() {
        let r = mean(&per_addr[fam]);
        let worst = per_addr[fam].iter().copied().fold(0.0, f64::max);
        ok &= r <= goal;
        let lpm = mean(&lpm_fam[fam]);
        println!(
            "  {name:<16} {:>7.2} ns  (base {:>7.2} ns)  {r:.3}x the base on average over {} \
             addresses (goal <= {goal}x: {}), worst {worst:.2}x; the textbook LPM filter \
             {lpm:.2} ns",
            mean(&ns_fam[fam]),
            mean(&base_fam[fam]),
            per_addr[fam].len(),
            met(r <= goal)
        );
        paths.insert(
            name.to_string(),
            json!({"ns": mean(&ns_fam[fam]), "base_ns": mean(&base_fam[fam]),
                   "over_base": r, "over_base_worst": worst,
                   "addresses": per_addr[fam].len(), "lpm_ns": lpm}),
        );
    }
    for (i, name) in ["source_drop", "source_drop_v6"].iter().enumerate() {
        let r = super::xdp::median(&mut drop_ratio[i]);
        let ns = super::xdp::median(&mut drop_ns[i]);
        let lpm = super::xdp::median(&mut drop_lpm[i]);
        println!(
            "  {name:<16} {ns:>7.2} ns  {r:.2}x the reference's drop; the textbook LPM filter \
             {lpm:.2} ns"
        );
        paths.insert(
            name.to_string(),
            json!({"ns": ns, "ref_ratio": r, "lpm_ns": lpm}),
        );
    }
    println!(
        "goal: a packet that matches no policy costs within 10% of the base's pass with a full \
         database loaded (mean over its sources): {}",
        met(ok)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok((
        json!({"prefixes": p.entries().len(), "timing": if w { "wall clock" } else { "kernel" },
               "dense_v6": dense_v6,
               "paths": paths, "goal_met": ok}),
        ok,
    ))
}

//! `cargo xtask bench leaks`: the response rules (`detect/leak.rs`) over
//! ordinary web content, for their false positives and their speed.
//!
//! `waf-bench leaks [DIR...]` reads every `.html`, `.htm`, `.json`,
//! `.xml` and `.txt` file under the directories (default: the Rust
//! toolchain's HTML documentation and `/usr/share/doc`), each cut to its
//! first 64 kB as the proxy reads a response, runs the rules at paranoia 1
//! and 2, and prints the files each rule matched (the first few by name)
//! and the scan's speed in MB/s beside a plain `memchr` pass for one byte
//! over the same bytes (the floor of any scan). Writes
//! target/bench/leaks.json.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use waf_user::detect::leak::{Leaks, RULES};

/// The bytes of a response the proxy reads by default.
const READ: usize = waf_user::detect::leak::DEFAULT_READ;
/// Most bytes of content read in all.
const MAX_TOTAL: usize = 2 << 30;

fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(out) = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
    {
        let root = String::from_utf8_lossy(&out.stdout).trim().to_string();
        dirs.push(PathBuf::from(root).join("share/doc/rust/html"));
    }
    dirs.push(PathBuf::from("/usr/share/doc"));
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out),
            Ok(t) if t.is_file() => {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                if ["html", "htm", "json", "xml", "txt"].contains(&ext) {
                    out.push(p);
                }
            }
            _ => {}
        }
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let dirs: Vec<PathBuf> = if args.is_empty() {
        default_dirs()
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    anyhow::ensure!(!dirs.is_empty(), "no directory of web content to read");
    let mut files = Vec::new();
    for d in &dirs {
        walk(d, &mut files);
    }
    files.sort();
    let mut bodies = Vec::new();
    let mut total = 0usize;
    for f in &files {
        let Ok(mut b) = std::fs::read(f) else {
            continue;
        };
        b.truncate(READ);
        total += b.len();
        bodies.push((f, b));
        if total > MAX_TOTAL {
            break;
        }
    }
    let leaks = Leaks::new()?;
    let mut per_rule: Vec<(usize, Vec<String>)> = vec![(0, Vec::new()); RULES.len()];
    let mut per_level = [0usize; 2];
    let t = Instant::now();
    for (f, b) in &bodies {
        for (i, level) in [1u8, 2].into_iter().enumerate() {
            let hits = leaks.scan(b, level);
            if !hits.is_empty() {
                per_level[i] += 1;
            }
            if level == 2 {
                for h in hits {
                    let k = RULES.iter().position(|r| r.id == h.rule.id).unwrap_or(0);
                    per_rule[k].0 += 1;
                    if per_rule[k].1.len() < 5 {
                        per_rule[k]
                            .1
                            .push(format!("{}: {}", f.display(), h.matched));
                    }
                }
            }
        }
    }
    let scan_s = t.elapsed().as_secs_f64() / 2.0;
    let t = Instant::now();
    let mut found = 0usize;
    for (_, b) in &bodies {
        found += memchr::memchr_iter(b'\x07', b).count();
    }
    let floor_s = t.elapsed().as_secs_f64().max(1e-9);
    std::hint::black_box(found);
    let mb = total as f64 / 1e6;
    println!(
        "read {} files ({:.1} MB, first {} kB of each) under {}",
        bodies.len(),
        mb,
        READ / 1024,
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let pct = |n: usize| 100.0 * n as f64 / bodies.len().max(1) as f64;
    println!(
        "files with a finding: PL1 {} ({:.3}%), PL2 {} ({:.3}%)",
        per_level[0],
        pct(per_level[0]),
        per_level[1],
        pct(per_level[1])
    );
    let mut rules = serde_json::Map::new();
    for (r, (n, first)) in RULES.iter().zip(&per_rule) {
        println!("  {:<24} PL{} {:>6} files", r.id, r.paranoia, n);
        for f in first {
            println!("      {}", f.chars().take(160).collect::<String>());
        }
        rules.insert(r.id.into(), json!({"files": n, "first": first}));
    }
    let rate = mb / scan_s.max(1e-9);
    let floor = mb / floor_s;
    println!(
        "scan: {rate:.0} MB/s ({:.1} µs per 64 kB response); one-byte memchr over the same bytes: {floor:.0} MB/s ({:.2}x the scan)",
        0.065536 / rate * 1e6,
        floor / rate
    );
    super::write_json(
        "leaks.json",
        &json!({
            "files": bodies.len(),
            "bytes": total,
            "files_with_finding_pl1": per_level[0],
            "files_with_finding_pl2": per_level[1],
            "files_with_finding_pl1_pct": pct(per_level[0]),
            "files_with_finding_pl2_pct": pct(per_level[1]),
            "mb_per_s": rate,
            "memchr_mb_per_s": floor,
            "rules": rules,
        }),
    );
    Ok(())
}

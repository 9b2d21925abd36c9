//! `cargo xtask bench api`: the control API with 100,000 bans present (add,
//! list, remove: rate, p50, p99), and the proxy's p99 idle and while the API
//! adds 2,000 bans a second. The real owner, API, proxy and engine run in
//! this process on a 2-worker runtime, as in the daemon; clients use
//! keep-alive connections on loopback; wrk loads the proxy. Writes
//! target/bench/api.json.

use std::{
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use waf_user::{
    config::{Dur, ProxyConfig},
    proxy::AccessLog,
};

use super::{InProcessProxy, met};
use crate::TEST_TOKEN;

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

fn call(a: &ureq::Agent, method: &str, url: &str, body: Option<serde_json::Value>) -> Result<u16> {
    let req = a
        .request(method, url)
        .set("Authorization", &format!("Bearer {TEST_TOKEN}"));
    let r = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match r {
        Ok(r) => {
            let s = r.status();
            let _ = r.into_string();
            Ok(s)
        }
        Err(ureq::Error::Status(c, _)) => Ok(c),
        Err(e) => bail!("{method} {url}: {e}"),
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

fn addr(i: u32) -> String {
    Ipv4Addr::from(0x6440_0000u32 + i).to_string()
}

/// Runs `work(i)` for i in 0..n over `threads` threads; returns each
/// call's time and the wall time.
fn parallel(
    n: u32,
    threads: u32,
    work: impl Fn(&ureq::Agent, u32) -> Result<()> + Sync,
) -> Result<(Vec<Duration>, Duration)> {
    let t0 = Instant::now();
    let lat = std::thread::scope(|s| -> Result<Vec<Duration>> {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let work = &work;
                s.spawn(move || -> Result<Vec<Duration>> {
                    let a = agent();
                    let mut out = Vec::new();
                    for i in (t..n).step_by(threads as usize) {
                        let t = Instant::now();
                        work(&a, i)?;
                        out.push(t.elapsed());
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in hs {
            all.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("a client panicked"))??,
            );
        }
        Ok(all)
    })?;
    Ok((lat, t0.elapsed()))
}

/// Runs the benchmark: `api [--present N] [--ops N] [--seconds S]`.
pub fn run(args: &[String]) -> Result<()> {
    let (mut present, mut ops, mut secs) = (100_000u32, 20_000u32, 8u64);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || -> Result<u64> { Ok(it.next().context("a number")?.parse()?) };
        match a.as_str() {
            "--present" => present = num()? as u32,
            "--ops" => ops = num()? as u32,
            "--seconds" => secs = num()?,
            other => bail!("unknown argument {other}; known: --present N, --ops N, --seconds S"),
        }
    }
    let up = 19_000 + (std::process::id() % 1000) as u16;
    super::proxy::upstream(up)?;
    let pcfg = ProxyConfig {
        upstream: Some(
            format!("http://127.0.0.1:{up}")
                .parse()
                .map_err(anyhow::Error::msg)?,
        ),
        access_log: AccessLog::Off,
        inspect_budget: Dur(Duration::from_secs(1)),
        ..Default::default()
    };
    let server = InProcessProxy::start(&pcfg, None, None, 2)?;
    let base = format!("http://127.0.0.1:{}", server.api_port);

    // 100k bans present, imported in one document.
    let doc = json!({"version": 2, "bans": (0..present).map(|i| json!({
        "addr": Ipv4Addr::from(0x0b00_0000u32 + i).to_string(), "reason": "present"
    })).collect::<Vec<_>>()});
    let t = Instant::now();
    let code = call(&agent(), "POST", &format!("{base}/v1/import"), Some(doc))?;
    if code != 200 {
        bail!("import of {present} bans answered {code}");
    }
    println!(
        "{present} bans imported in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );

    let (mut add, add_wall) = parallel(ops, 8, |a, i| {
        let body = json!({"addr": addr(i), "duration": "1h", "reason": "bench"});
        match call(a, "POST", &format!("{base}/v1/bans"), Some(body))? {
            201 => Ok(()),
            c => bail!("add answered {c}"),
        }
    })?;
    let cursors: Vec<String> = (0..1000u32).map(|i| addr(i * 19 % ops)).collect();
    let (mut list, _) = parallel(1000, 4, |a, i| {
        let url = format!("{base}/v1/bans?limit=100&after={}", cursors[i as usize]);
        match call(a, "GET", &url, None)? {
            200 => Ok(()),
            c => bail!("list answered {c}"),
        }
    })?;
    let (mut remove, remove_wall) = parallel(ops, 8, |a, i| {
        match call(a, "DELETE", &format!("{base}/v1/bans/{}", addr(i)), None)? {
            200 => Ok(()),
            c => bail!("remove answered {c}"),
        }
    })?;
    let add_per_s = f64::from(ops) / add_wall.as_secs_f64();
    let remove_per_s = f64::from(ops) / remove_wall.as_secs_f64();
    let (a50, a99) = (pct(&mut add, 0.5), pct(&mut add, 0.99));
    let (l50, l99) = (pct(&mut list, 0.5), pct(&mut list, 0.99));
    let (r50, r99) = (pct(&mut remove, 0.5), pct(&mut remove, 0.99));

    // The proxy, idle and while the API adds 2,000 bans a second.
    let dir = std::env::temp_dir().join(format!("waf-bench-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("get.lua");
    std::fs::write(
        &script,
        "request = function() return wrk.format(\"GET\", \"/item?id=7&q=shoes\", {[\"Host\"] = \"bench\"}) end\n",
    )?;
    let proxy_url = format!("http://127.0.0.1:{}", server.port);
    let idle = super::proxy::wrk(&proxy_url, &script, secs, 32)?;
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU32::new(0));
    // 16 clients at 125 a second each: every add waits for its batch's
    // fsync, so one client cannot go much faster.
    let loaders: Vec<_> = (0..16u32)
        .map(|t| {
            let (stop, made, base) = (stop.clone(), made.clone(), base.clone());
            std::thread::spawn(move || {
                let a = agent();
                let start = Instant::now();
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    // 125 a second per client, paced.
                    let due = start + Duration::from_micros(u64::from(n) * 8000);
                    if let Some(w) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(w);
                    }
                    let i = 1_000_000 + t * 1_000_000 + n;
                    let body = json!({"addr": addr(i), "duration": "1h"});
                    if let Ok(201) = call(&a, "POST", &format!("{base}/v1/bans"), Some(body)) {
                        made.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    let t = Instant::now();
    let loaded = super::proxy::wrk(&proxy_url, &script, secs, 32)?;
    let api_rate = f64::from(made.load(Ordering::Relaxed)) / t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        let _ = l.join();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let ratio = loaded.p99_ms / idle.p99_ms.max(1e-6);
    println!("with {present} bans present, 8 clients, keep-alive:");
    println!(
        "  add:    {add_per_s:>8.0}/s   p50 {a50:.2} ms   p99 {a99:.2} ms (durable: group commit)"
    );
    println!("  list:   (100 a page)  p50 {l50:.2} ms   p99 {l99:.2} ms");
    println!("  remove: {remove_per_s:>8.0}/s   p50 {r50:.2} ms   p99 {r99:.2} ms");
    println!(
        "  goal API p99 <= 50 ms: {}",
        met(a99.max(l99).max(r99) <= 50.0)
    );
    println!(
        "proxy (wrk, 32 connections, {secs} s): p99 idle {:.2} ms ({:.0} req/s); while the API adds {api_rate:.0} bans/s: {:.2} ms ({:.0} req/s); ratio {ratio:.2} (goal <= 1.5: {})",
        idle.p99_ms,
        idle.rps,
        loaded.p99_ms,
        loaded.rps,
        met(ratio <= 1.5)
    );
    super::write_json(
        "api.json",
        &json!({
            "bans_present": present,
            "add_per_s": add_per_s,
            "add_p50_ms": a50,
            "add_p99_ms": a99,
            "list_p50_ms": l50,
            "list_p99_ms": l99,
            "remove_per_s": remove_per_s,
            "remove_p50_ms": r50,
            "remove_p99_ms": r99,
            "proxy_p99_ms": {"idle": idle.p99_ms, "under_api_load": loaded.p99_ms},
            "proxy_rps": {"idle": idle.rps, "under_api_load": loaded.rps},
            "api_load_bans_per_s": api_rate,
            "proxy_p99_ratio": ratio,
            "goals": {"api_p99_ms": 50, "proxy_p99_ratio": 1.5},
        }),
    );
    drop(server);
    Ok(())
}

//! `cargo xtask bench ban-latency`: how long after an attack request
//! reaches the proxy its source's ban is in the XDP map. The real proxy and
//! firewall run in this process (`ban_policy.immediate_score` = 1, so the
//! first blocked request bans); a client sends attacks, each from a fresh
//! address (X-Forwarded-For from a trusted loopback peer). The proxy hands
//! each verdict to the firewall's owner as a strike, and the owner times it
//! to the end of its ban's write into the kernel map; the client times its
//! round trip, then watches, through its own handle on the pinned map, for
//! the ban to appear. Reference, same run: a benign request's round trip
//! through the same proxy. Writes target/bench/ban_latency.json.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, TcpStream},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{Array, MapData};
use serde_json::json;
use waf_common::{BanBucketV4, ban_bucket_v4, map_names};
use waf_user::{
    config::{Dur, ProxyConfig},
    proxy::{AccessLog, config::Cidr},
};

use super::InProcessProxy;
use crate::PinDir;

fn in_kernel(map: &Array<MapData, BanBucketV4>, addr: Ipv4Addr) -> bool {
    let key = u32::from_ne_bytes(addr.octets());
    match map.get(&ban_bucket_v4(key, waf_common::BAN_BUCKET_BITS), 0) {
        Ok(b) => (0..waf_common::BAN_SLOTS).any(|i| b.used & (1 << i) != 0 && b.keys[i] == key),
        Err(_) => false,
    }
}

fn send(port: u16, raw: &[u8]) -> Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(raw)?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf)?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status")
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e6
}

/// Runs the benchmark: `ban-latency [--count N]`.
pub fn run(args: &[String]) -> Result<()> {
    let mut count = 300u32;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--count" => count = it.next().context("--count N")?.parse()?,
            other => bail!("unknown argument {other}; known: --count N"),
        }
    }
    let pins = PinDir::new();
    let pcfg = ProxyConfig {
        upstream: Some("http://127.0.0.1:9".parse().map_err(anyhow::Error::msg)?),
        trusted_proxies: vec![Cidr("127.0.0.1/32".parse()?)],
        access_log: AccessLog::Off,
        inspect_budget: Dur(Duration::from_secs(5)),
        ..Default::default()
    };
    let server = InProcessProxy::start(&pcfg, Some(pins.path.clone()), Some(1), 1)?;
    let port = server.port;
    let buckets: Array<MapData, BanBucketV4> = Array::try_from(aya::maps::Map::Array(
        MapData::from_pin(pins.path.join(map_names::BANS_V4))?,
    ))?;

    let mut to_map: Vec<Duration>;
    let mut to_403 = Vec::new();
    let mut reference = Vec::new();
    for i in 0..count {
        let addr = Ipv4Addr::from(0xc633_6400u32 + 1 + (i % 250) + 256 * (i / 250));
        let raw = format!(
            "GET /search?q=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\n\
             Host: bench\r\nX-Forwarded-For: {addr}\r\nConnection: close\r\n\r\n"
        );
        let t0 = Instant::now();
        let code = send(port, raw.as_bytes())?;
        to_403.push(t0.elapsed());
        if code != 403 {
            bail!("attack {i} was not blocked");
        }
        // The owner writes the ban a few microseconds after the verdict:
        // wait for it (bounded).
        let deadline = Instant::now() + Duration::from_secs(2);
        while !in_kernel(&buckets, addr) {
            if Instant::now() > deadline {
                bail!("the ban of {addr} is not in the kernel map 2 s after the 403");
            }
            std::hint::spin_loop();
        }
        // Reference: a benign request's round trip (upstream down:
        // answered 502 by the proxy after inspection).
        let t = Instant::now();
        let _ = send(
            port,
            b"GET /benign HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
        );
        reference.push(t.elapsed());
    }
    to_map = server.fw.latencies().snapshot();
    if to_map.len() != count as usize {
        bail!("{} immediate bans recorded, expected {count}", to_map.len());
    }
    let (m50, m99) = (pct(&mut to_map, 0.5), pct(&mut to_map, 0.99));
    let (r50, r99) = (pct(&mut to_403, 0.5), pct(&mut to_403, 0.99));
    let (b50, _) = (pct(&mut reference, 0.5), 0.0);
    println!("{count} attacks, each from a new source, immediate ban");
    println!(
        "verdict -> ban in the XDP map:             p50 {m50:>8.1} us   p99 {m99:>8.1} us   (goal < 1000 us)"
    );
    println!("request sent -> 403 received (ban before): p50 {r50:>8.1} us   p99 {r99:>8.1} us");
    println!(
        "reference, round trip of a benign request through the proxy: p50 {b50:.1} us (ratio {:.2})",
        m50 / b50
    );
    crate::bench::write_json(
        "ban_latency.json",
        &json!({
            "attacks": count,
            "to_map_us": {"p50": m50, "p99": m99},
            "to_403_us": {"p50": r50, "p99": r99},
            "reference_roundtrip_us_p50": b50,
            "goal_us": 1000,
            "goal_met": m99 < 1000.0,
        }),
    );
    drop(server);
    Ok(())
}

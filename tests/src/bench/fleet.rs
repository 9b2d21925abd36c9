//! `cargo xtask bench fleet`: bans shared across hosts, measured on the
//! fleet lab ([`crate::fleet_lab`]): a real nats-server with JetStream and
//! three real daemons (`target/release/waf`, XDP attached, maps pinned),
//! each in its own namespace.
//!
//! - Propagation (`--count`, default 1,000): bans made on host a through its
//!   control API (`POST /v1/bans`, one at a time, on a keep-alive
//!   connection), each timed from the moment a's API answered (the ban is
//!   in a's kernel then: checked) to the moment it is in b's and c's XDP
//!   ban maps, which this process polls through their pins (bucket array
//!   and overflow hash) every ~50 us. p50/p99 over every (ban, host) pair.
//! - Throughput (`--burst`, default 100,000 bans a round): three rounds.
//!   Bans made one at a time through the API (`POST /v1/bans`, each its
//!   own request and durable commit; `--clients`, default 64 keep-alive
//!   clients) on a alone, then on a, b and c at once; then a wave of bans
//!   made on a, b and c at once, `--batch` (default 1,000) a request
//!   (`POST /v1/import`), as detection makes them in an attack, without
//!   an HTTP request each. Each round is timed from the first request
//!   until every host holds every ban (its ban count, `GET /v1/health`;
//!   then a sample checked in the kernel maps); its bans per second, the
//!   CPU each process spent on it, and each host's writes into the bucket
//!   (and changes its link lost on the way and found again) are printed.
//!   bans_per_s is the wave's.
//! - Join (`--join`, default 1,000,000): the keys put straight into a
//!   bucket of their own (core NATS publishes to `$KV.<bucket>.<key>`,
//!   pipelined, then the stream's count checked); two reference watches of
//!   it from this process, values only counted (how fast the bucket can be
//!   read): the last value per key, as the daemon watches, and the stream
//!   from its first message; then a first host on it, which reads it
//!   entry by entry (timed too) and writes the bucket's snapshot; then a
//!   fresh host started on it, which joins from the snapshot: the time
//!   from its process start until its ban count reaches them all
//!   (`--join-deadline`, default 120 s; if not reached, the count reached
//!   and the time). Its progress (`GET /v1/fleet` applied and lag) and the
//!   CPU time of its threads and of nats-server say where the time goes.
//! - Reference (a constant, not measured): CrowdSec's bouncers poll the
//!   local API every 10 s by default, so a ban reaches a bouncer in up to
//!   10 s; propagation p99 is compared with that. Goals: p99 <= 50 ms,
//!   >= 10,000 bans/s, a 1M-ban join < 5 s.
//!
//! Writes target/bench/fleet.json.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::{IpAddr, Ipv4Addr, TcpStream},
    path::Path,
    sync::{
        Arc, Barrier,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{Array, HashMap, MapData};
use ipnet::IpNet;
use serde_json::{Value, json};
use waf_common::{BanBucketV4, BanEntry, ban_bucket_v4, map_names};
use waf_user::{
    firewall::BanSource,
    fleet::codec::{SharedBan, key_of},
    values::{show_net, unix_now},
};

use super::met;
use crate::{
    TEST_TOKEN,
    fleet_lab::{BROKER4, Fleet},
};

/// CrowdSec's bouncers poll the local API every 10 s by default: the
/// reference figure for how long a ban takes to reach an enforcer.
const CROWDSEC_POLL_MS: f64 = 10_000.0;
/// Goals.
const GOAL_P99_MS: f64 = 50.0;
const GOAL_BANS_PER_S: f64 = 10_000.0;
const GOAL_JOIN_S: f64 = 5.0;
/// How long one ban may take to reach a host before it counts as lost.
const PROPAGATION_DEADLINE: Duration = Duration::from_secs(5);
/// The address the join host takes on the lab's bridge.
const JOIN_ADDR: &str = "192.0.2.9";
/// The address of the host that reads the join bucket first (entry by
/// entry) and writes the snapshot the join host reads.
const SEED_ADDR: &str = "192.0.2.8";

struct Args {
    count: u32,
    burst: u32,
    clients: u32,
    batch: u32,
    join: u32,
    burst_deadline: Duration,
    join_deadline: Duration,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut a = Args {
        count: 1000,
        burst: 100_000,
        clients: 64,
        batch: 1000,
        join: 1_000_000,
        burst_deadline: Duration::from_secs(120),
        join_deadline: Duration::from_secs(120),
    };
    let known = "--count N, --burst N, --clients N, --batch N, --join N, --burst-deadline S, --join-deadline S";
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let mut num = |what: &str| -> Result<u32> {
            it.next()
                .with_context(|| format!("{what} needs a number"))?
                .parse()
                .with_context(|| format!("{what} takes a number"))
        };
        match k.as_str() {
            "--count" => a.count = num("--count")?.max(1),
            "--burst" => a.burst = num("--burst")?,
            "--clients" => a.clients = num("--clients")?.clamp(1, 64),
            "--batch" => a.batch = num("--batch")?.clamp(1, 100_000),
            "--join" => a.join = num("--join")?,
            "--burst-deadline" => {
                a.burst_deadline = Duration::from_secs(num("--burst-deadline")?.into())
            }
            "--join-deadline" => {
                a.join_deadline = Duration::from_secs(num("--join-deadline")?.into())
            }
            other => bail!("unknown argument {other}; known: {known}"),
        }
    }
    if a.count > 100_000 || a.burst > 1_000_000 || a.join > 4_000_000 {
        bail!("at most --count 100000, --burst 1000000, --join 4000000");
    }
    Ok(a)
}

/// Propagation ban `i`: the documentation ranges first, then 10.32.0.0/16.
fn propagation_addr(i: u32) -> Ipv4Addr {
    match i {
        0..254 => Ipv4Addr::new(198, 51, 100, (i + 1) as u8),
        254..508 => Ipv4Addr::new(203, 0, 113, (i - 254 + 1) as u8),
        _ => Ipv4Addr::from(0x0a20_0000 + (i - 508) + 1),
    }
}

/// Burst ban `i`: 10.64.0.0/10 (only map entries, never traffic).
fn burst_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a40_0000 + i + 1)
}

/// Join ban `i`: 10.128.0.0/9.
fn join_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a80_0000 + i)
}

/// A daemon's IPv4 exact-ban maps, through their pins.
struct BanMap {
    buckets: Array<MapData, BanBucketV4>,
    overflow: HashMap<MapData, u32, BanEntry>,
}

impl BanMap {
    fn open(pins: &Path) -> Result<Self> {
        let pin = |name: &str| {
            MapData::from_pin(pins.join(name))
                .with_context(|| format!("opening {}", pins.join(name).display()))
        };
        Ok(Self {
            buckets: Array::try_from(aya::maps::Map::Array(pin(map_names::BANS_V4)?))?,
            overflow: HashMap::try_from(aya::maps::Map::HashMap(pin(map_names::BANX_V4)?))?,
        })
    }

    /// Whether the XDP program would find a ban of `addr`.
    fn has(&self, addr: Ipv4Addr) -> bool {
        let key = u32::from_ne_bytes(addr.octets());
        let Ok(b) = self
            .buckets
            .get(&ban_bucket_v4(key, waf_common::BAN_BUCKET_BITS), 0)
        else {
            return false;
        };
        (0..waf_common::BAN_SLOTS).any(|i| b.used & (1 << i) != 0 && b.keys[i] == key)
            || (b.overflow != 0 && self.overflow.get(&key, 0).is_ok())
    }
}

/// A keep-alive HTTP/1.1 connection to a daemon's API (127.0.0.1:9876 of
/// the calling thread's namespace).
struct Api {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Api {
    fn connect() -> Result<Self> {
        let s = TcpStream::connect(("127.0.0.1", 9876)).context("connecting to the API")?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self {
            s,
            buf: Vec::with_capacity(4096),
        })
    }

    /// A `POST` of the JSON `body` to `path`.
    fn post(path: &str, body: &str) -> String {
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TEST_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// The request that bans `addr` for an hour.
    fn ban_request(addr: Ipv4Addr) -> String {
        let body = format!(r#"{{"addr":"{addr}","duration":"1h","reason":"bench fleet"}}"#);
        Self::post("/v1/bans", &body)
    }

    /// The next whole response, waiting for it.
    fn answer(&mut self) -> Result<(u16, String)> {
        loop {
            if let Some(r) = self.response()? {
                return Ok(r);
            }
            self.read_some()?;
        }
    }

    /// Bans `addr` for an hour; Ok once the API answered 201.
    fn ban(&mut self, addr: Ipv4Addr) -> Result<()> {
        self.s.write_all(Self::ban_request(addr).as_bytes())?;
        let r = self.answer()?;
        Self::created(addr, r)
    }

    /// Sends the ban of `addr`; its answer is read with
    /// [`Api::try_answer`].
    fn send_ban(&mut self, addr: Ipv4Addr) -> Result<()> {
        self.s.set_nonblocking(false)?;
        self.s.write_all(Self::ban_request(addr).as_bytes())?;
        self.s.set_nonblocking(true)?;
        Ok(())
    }

    /// The answer to [`Api::send_ban`] if it is there (never waits).
    fn try_answer(&mut self, addr: Ipv4Addr) -> Result<bool> {
        loop {
            if let Some(r) = self.response()? {
                Self::created(addr, r)?;
                return Ok(true);
            }
            match self.read_some() {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Imports bans of `addrs` (an hour each) in one `POST /v1/import`;
    /// Ok once the API answered that it made them all.
    fn import(&mut self, addrs: &[Ipv4Addr], expires: &str) -> Result<()> {
        let bans: Vec<Value> = addrs
            .iter()
            .map(|a| json!({"addr": a.to_string(), "reason": "bench fleet", "expires": expires}))
            .collect();
        let body = json!({"version": 2, "bans": bans}).to_string();
        self.s
            .write_all(Self::post("/v1/import", &body).as_bytes())?;
        let (code, text) = self.answer()?;
        let made = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["bans"].as_u64());
        if code != 200 || made != Some(addrs.len() as u64) {
            bail!("POST /v1/import of {} bans: {code} {text}", addrs.len());
        }
        Ok(())
    }

    fn created(addr: Ipv4Addr, (code, text): (u16, String)) -> Result<()> {
        if code != 201 {
            bail!("POST /v1/bans {addr}: {code} {text}");
        }
        Ok(())
    }

    fn read_some(&mut self) -> std::io::Result<()> {
        let mut tmp = [0u8; 4096];
        let n = self.s.read(&mut tmp)?;
        if n == 0 {
            return Err(std::io::Error::other("the API closed the connection"));
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    /// A whole response from what was read, taken out of the buffer.
    fn response(&mut self) -> Result<Option<(u16, String)>> {
        let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .context("a response without content-length")?;
        if self.buf.len() < end + 4 + len {
            return Ok(None);
        }
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("no status")?;
        let text = String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]).into();
        self.buf.drain(..end + 4 + len);
        Ok(Some((code, text)))
    }
}

/// The nearest-rank percentile `p` of `v` (sorted here), in ms.
fn pct_ms(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Default)]
struct Propagation {
    /// Per other host: in a's kernel map -> in this host's.
    from_kernel: Vec<Vec<Duration>>,
    /// Per other host: a's API answered -> in this host's map (zero when it
    /// was there before the answer).
    from_answer: Vec<Vec<Duration>>,
    /// Per other host: the request sent -> in this host's map.
    from_request: Vec<Vec<Duration>>,
    /// Per other host: bans there before a's API answered.
    before_answer: Vec<u32>,
    /// Per other host: bans that did not arrive within the deadline.
    lost: Vec<u32>,
    /// Request sent -> a's answer.
    api: Vec<Duration>,
    /// Request sent -> in a's kernel map.
    to_kernel: Vec<Duration>,
}

/// Bans `count` addresses on host 0, one at a time. While each request is
/// in flight, one loop polls the kernel maps of every host (every ~50 us)
/// and the connection for the answer, and notes when each saw it.
fn propagation(f: &Fleet, count: u32) -> Result<Propagation> {
    let pins: Vec<_> = f.daemons.iter().map(|d| d.pins.path.clone()).collect();
    crate::run_in(f.daemons[0].netns(), move || {
        let maps = pins
            .iter()
            .map(|p| BanMap::open(p))
            .collect::<Result<Vec<_>>>()?;
        let others = maps.len() - 1;
        let mut api = Api::connect()?;
        let mut p = Propagation {
            from_kernel: vec![Vec::with_capacity(count as usize); others],
            from_answer: vec![Vec::with_capacity(count as usize); others],
            from_request: vec![Vec::with_capacity(count as usize); others],
            before_answer: vec![0; others],
            lost: vec![0; others],
            ..Default::default()
        };
        for i in 0..count {
            let addr = propagation_addr(i);
            let sent = Instant::now();
            api.send_ban(addr)?;
            let (mut in_a, mut answered) = (None, None);
            let mut seen: Vec<Option<Instant>> = vec![None; others];
            loop {
                std::thread::sleep(Duration::from_micros(50));
                let now = Instant::now();
                if in_a.is_none() && maps[0].has(addr) {
                    in_a = Some(now);
                }
                for (h, t) in seen.iter_mut().enumerate() {
                    if t.is_none() && maps[h + 1].has(addr) {
                        *t = Some(now);
                    }
                }
                if answered.is_none() && api.try_answer(addr)? {
                    answered = Some(Instant::now());
                }
                if answered.is_some() && in_a.is_some() && seen.iter().all(Option::is_some) {
                    break;
                }
                if now - sent > PROPAGATION_DEADLINE {
                    break;
                }
            }
            let Some(answered) = answered else {
                bail!("a's API did not answer the ban of {addr} in {PROPAGATION_DEADLINE:?}");
            };
            let in_a = in_a.with_context(|| {
                format!(
                    "{addr} is not in a's kernel map {PROPAGATION_DEADLINE:?} after the request"
                )
            })?;
            p.api.push(answered - sent);
            p.to_kernel.push(in_a - sent);
            for (h, t) in seen.into_iter().enumerate() {
                let Some(t) = t else {
                    p.lost[h] += 1;
                    continue;
                };
                p.from_kernel[h].push(t.saturating_duration_since(in_a));
                p.from_answer[h].push(t.saturating_duration_since(answered));
                p.from_request[h].push(t - sent);
                if t < answered {
                    p.before_answer[h] += 1;
                }
            }
        }
        Ok(p)
    })
}

/// GET `path` of host `h`'s API; the JSON (Null when it did not answer).
fn get(f: &Fleet, h: usize, path: &str) -> Value {
    f.daemons[h].api("GET", path, None).1
}

fn bans(f: &Fleet, h: usize) -> u64 {
    get(f, h, "/v1/health")["bans"].as_u64().unwrap_or(0)
}

struct Burst {
    /// Hosts the bans were made on (1: a only; 3: a, b and c at once).
    origins: usize,
    /// API clients in all.
    clients: usize,
    /// Bans a request (None: one, `POST /v1/bans`; Some: `POST /v1/import`).
    batch: Option<u32>,
    /// First request to the last answer from the origins' APIs.
    api: Duration,
    /// First request to each host holding them all (None: not by the
    /// deadline).
    held: Vec<Option<Duration>>,
    /// Bans each host held at the end (of the burst's).
    got: Vec<u64>,
    /// Sampled burst bans missing from each host's kernel map.
    missing: Vec<u32>,
    sampled: u32,
    errors: u32,
    /// CPU seconds over the burst: each daemon, nats-server, this process
    /// (the API clients and the polling).
    cpu_daemons: Vec<f64>,
    cpu_nats: f64,
    cpu_bench: f64,
    /// Each host's writes into the bucket over the burst, and changes its
    /// link lost on the way (found again by comparing with the bucket).
    published: Vec<u64>,
    dropped: Vec<u64>,
}

impl Burst {
    /// First request to every host holding every ban (the deadline if not).
    fn held_s(&self, deadline: Duration) -> f64 {
        self.held
            .iter()
            .map(|h| h.unwrap_or(deadline))
            .max()
            .unwrap_or_default()
            .as_secs_f64()
    }
}

/// `n` bans made on the first `origins` hosts at once (ban `i` on host
/// `i % origins`), from `clients` keep-alive clients in all; the time until
/// every host holds them all.
fn burst(
    f: &Fleet,
    first: u32,
    n: u32,
    origins: usize,
    clients: u32,
    batch: Option<u32>,
    deadline: Duration,
) -> Result<Burst> {
    let hosts = f.daemons.len();
    let origins = origins.clamp(1, hosts);
    let clients = (clients as usize).max(origins);
    let base: Vec<u64> = (0..hosts).map(|h| bans(f, h)).collect();
    let counter = |h: usize, k: &str| get(f, h, "/v1/fleet")[k].as_u64().unwrap_or(0);
    let published0: Vec<u64> = (0..hosts).map(|h| counter(h, "published")).collect();
    let dropped0: Vec<u64> = (0..hosts).map(|h| counter(h, "dropped")).collect();
    // Per origin, the next of its bans to make.
    let next: Arc<Vec<AtomicU32>> = Arc::new((0..origins).map(|_| AtomicU32::new(0)).collect());
    let errors = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(Barrier::new(clients + 1));
    let expires = waf_user::values::rfc3339(waf_user::values::unix_now() + 3600);
    let mut threads = Vec::new();
    for c in 0..clients {
        let (next, errors, done, go) = (next.clone(), errors.clone(), done.clone(), go.clone());
        let expires = expires.clone();
        let o = c % origins;
        threads.push(crate::spawn_in_netns(f.daemons[o].netns(), move || {
            let api = Api::connect();
            go.wait();
            let deadline = Instant::now() + Duration::from_secs(600);
            if let Ok(mut api) = api {
                let step = batch.unwrap_or(1).max(1);
                loop {
                    // The origin's k-th ban is ban o + k * origins.
                    let k = next[o].fetch_add(step, Ordering::Relaxed);
                    let nets: Vec<Ipv4Addr> = (k..k.saturating_add(step))
                        .map(|k| u64::from(k) * origins as u64 + o as u64)
                        .take_while(|i| *i < u64::from(n))
                        .map(|i| burst_addr(first + i as u32))
                        .collect();
                    if nets.is_empty() || Instant::now() > deadline {
                        break;
                    }
                    let r = match batch {
                        Some(_) => api.import(&nets, &expires),
                        None => api.ban(nets[0]),
                    };
                    if let Err(e) = r {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            println!("  burst: {e:#}");
                        }
                        match Api::connect() {
                            Ok(a) => api = a,
                            Err(_) => break,
                        }
                    }
                }
            }
            done.fetch_add(1, Ordering::Relaxed);
        }));
    }
    let pids: Vec<Option<u32>> = f.daemons.iter().map(|d| d.pid()).collect();
    let nats_pid = f.brokers[0].pid();
    let cpu = |pid: Option<u32>| pid.map_or(0.0, process_cpu);
    let cpu0: Vec<f64> = pids.iter().map(|p| cpu(*p)).collect();
    let (nats0, bench0) = (cpu(nats_pid), cpu(Some(std::process::id())));
    go.wait();
    let t0 = Instant::now();
    let mut api_done = None;
    let mut held = vec![None; hosts];
    let mut last_print = t0;
    loop {
        let t = t0.elapsed();
        if api_done.is_none() && done.load(Ordering::Relaxed) == clients {
            api_done = Some(t);
        }
        for h in 0..hosts {
            if held[h].is_none() && bans(f, h) >= base[h] + u64::from(n) {
                held[h] = Some(t0.elapsed());
            }
        }
        if api_done.is_some() && held.iter().all(Option::is_some) {
            break;
        }
        if t > deadline {
            println!("burst: not all held {deadline:?} after the first request");
            break;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            let made: u64 = next
                .iter()
                .map(|k| u64::from(k.load(Ordering::Relaxed)))
                .sum();
            let holds: Vec<String> = (0..hosts)
                .map(|h| format!("{} holds {}", f.name(h), bans(f, h).saturating_sub(base[h])))
                .collect();
            println!(
                "  burst at {:.1} s: {} requests sent, {}",
                t.as_secs_f64(),
                made.min(u64::from(n)),
                holds.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let cpu_daemons = pids.iter().zip(&cpu0).map(|(p, c0)| cpu(*p) - c0).collect();
    let (cpu_nats, cpu_bench) = (
        cpu(nats_pid) - nats0,
        cpu(Some(std::process::id())) - bench0,
    );
    for t in threads {
        let _ = t.join();
    }
    let api = api_done.unwrap_or_else(|| t0.elapsed());
    let got = (0..hosts)
        .map(|h| bans(f, h).saturating_sub(base[h]))
        .collect();
    // A sample checked in the kernel maps themselves.
    let sample: Vec<Ipv4Addr> = (0..n).step_by(97).map(|i| burst_addr(first + i)).collect();
    let mut missing = vec![0; hosts];
    for (h, m) in missing.iter_mut().enumerate() {
        let map = BanMap::open(&f.daemons[h].pins.path)?;
        *m = sample.iter().filter(|a| !map.has(**a)).count() as u32;
    }
    let published = (0..hosts)
        .map(|h| counter(h, "published") - published0[h])
        .collect();
    let dropped = (0..hosts)
        .map(|h| counter(h, "dropped") - dropped0[h])
        .collect();
    Ok(Burst {
        published,
        dropped,
        origins,
        clients,
        batch,
        api,
        held,
        got,
        missing,
        sampled: sample.len() as u32,
        errors: errors.load(Ordering::Relaxed),
        cpu_daemons,
        cpu_nats,
        cpu_bench,
    })
}

struct Fill {
    publish: Duration,
    stored: Duration,
    messages: u64,
    /// Watching the bucket from here as the daemon does (last value per
    /// key).
    last_per_key: Watched,
    /// Watching the bucket's stream from its first message.
    from_start: Watched,
}

/// Puts `n` join bans into a new bucket `bucket` (core publishes,
/// pipelined), waits until the stream holds them, then watches the bucket
/// from here as a daemon does (last value per key), counting only.
async fn fill(url: &str, bucket: &str, n: u32, deadline: Duration) -> Result<Fill> {
    let client = async_nats::ConnectOptions::new()
        .name("waf bench fleet")
        .connect(url)
        .await?;
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(waf_user::fleet::bucket_stream(bucket, 1))
        .await
        .map_err(|e| anyhow::anyhow!("making the join bucket: {e}"))?;
    let now = unix_now();
    let t = Instant::now();
    for i in 0..n {
        let net = IpNet::from(IpAddr::V4(join_addr(i)));
        let v = SharedBan {
            addr: show_net(&net),
            reason: "bench fleet join".into(),
            source: BanSource::Manual,
            origin: "z".into(),
            created: now,
            expires: now + 3600,
            offence: 1,
        };
        client
            .publish(format!("$KV.{bucket}.{}", key_of(&net)), v.encode())
            .await?;
        if i % 20_000 == 19_999 {
            client.flush().await?;
        }
        if t.elapsed() > deadline {
            bail!("publishing {n} keys took more than {deadline:?}");
        }
    }
    client.flush().await?;
    let publish = t.elapsed();
    let mut stream = js
        .get_stream(format!("KV_{bucket}"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let messages = loop {
        let m = stream
            .info()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .state
            .messages;
        if m >= u64::from(n) || t.elapsed() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stored = t.elapsed();
    // The reference watches: as the daemon watches (the last value of
    // every key), and the whole stream from its start (the same values
    // here: the stream keeps one message per key).
    let kv = js
        .get_key_value(bucket)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let last_per_key = {
        let t = Instant::now();
        let w = kv
            .watch_with_history(">")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        count_watch(w, t, messages, deadline).await?
    };
    let from_start = {
        let t = Instant::now();
        let w = kv
            .watch_all_from_revision(1)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        count_watch(w, t, messages, deadline).await?
    };
    Ok(Fill {
        publish,
        stored,
        messages,
        last_per_key,
        from_start,
    })
}

/// A reference watch: values only counted.
#[derive(Clone, Copy, Default)]
struct Watched {
    /// The first value, after `t`.
    first: Option<Duration>,
    /// `want` values, after `t` (None: not by the deadline).
    all: Option<Duration>,
    count: u64,
}

impl Watched {
    fn json(&self) -> Value {
        json!({"first_s": self.first.map(|d| d.as_secs_f64()),
               "all_s": self.all.map(|d| d.as_secs_f64()), "values": self.count})
    }

    fn show(&self) -> String {
        match (self.first, self.all) {
            (Some(f), Some(a)) => format!(
                "first value {:.2} s, all {:.2} s ({:.0} values/s after the first)",
                f.as_secs_f64(),
                a.as_secs_f64(),
                self.count as f64 / (a - f).as_secs_f64().max(1e-9)
            ),
            _ => format!("{} values by the deadline", self.count),
        }
    }
}

async fn count_watch(
    mut w: async_nats::jetstream::kv::Watch,
    t: Instant,
    want: u64,
    deadline: Duration,
) -> Result<Watched> {
    use futures_util::StreamExt as _;
    let mut r = Watched::default();
    while r.count < want {
        let left = deadline.saturating_sub(t.elapsed());
        match tokio::time::timeout(left, w.next()).await {
            Ok(Some(Ok(_))) => {
                r.count += 1;
                if r.first.is_none() {
                    r.first = Some(t.elapsed());
                }
            }
            Ok(Some(Err(e))) => bail!("a reference watch failed: {e}"),
            Ok(None) | Err(_) => break,
        }
    }
    if r.count >= want {
        r.all = Some(t.elapsed());
    }
    Ok(r)
}

/// User plus system CPU time (s) of each thread of `pid`, summed by thread
/// name (tokio's workers are one name).
fn thread_cpu(pid: u32) -> BTreeMap<String, f64> {
    let tick = 100.0; // USER_HZ
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // Fields 14 and 15 (utime, stime), counted from after the name.
        let cpu: f64 = [11, 12]
            .iter()
            .filter_map(|&i| rest.get(i)?.parse::<f64>().ok())
            .sum();
        *out.entry(name).or_default() += cpu / tick;
    }
    out
}

/// User plus system CPU time (s) of process `pid`, threads that have
/// exited included.
fn process_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    [11, 12]
        .iter()
        .filter_map(|&i| rest.get(i)?.parse::<f64>().ok())
        .sum::<f64>()
        / 100.0
}

struct Join {
    fill: Fill,
    /// The first host on the bucket, which reads it entry by entry: from
    /// process start to every ban in force, and to its snapshot written.
    seed_done: Option<Duration>,
    seed_snapshot: Option<Duration>,
    /// From process start: API up, connected, first ban, all bans.
    api_up: Duration,
    connected: Option<Duration>,
    first_ban: Option<Duration>,
    done: Option<Duration>,
    elapsed: Duration,
    bans: u64,
    applied: u64,
    lag: u64,
    timeline: Vec<Value>,
    daemon_cpu: BTreeMap<String, f64>,
    nats_cpu: f64,
    rss_mb: Option<f64>,
}

/// Fills a bucket with `n` bans and times a fresh host joining it.
fn join(f: &mut Fleet, n: u32, deadline: Duration) -> Result<Join> {
    let bucket = crate::unique("waf-join-");
    let (ns, url) = (f.brokers[0].netns().to_string(), f.brokers[0].url());
    let b2 = bucket.clone();
    let fill = crate::run_in(&ns, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(fill(&url, &b2, n, deadline))
    })?;
    println!(
        "join: {} keys published into a new bucket in {:.1} s, stored in {:.1} s ({} in the stream)",
        n,
        fill.publish.as_secs_f64(),
        fill.stored.as_secs_f64(),
        fill.messages,
    );
    println!(
        "  reference, the bucket watched from the bench, values only counted:\n    \
         last value per key (as the daemon watches): {}\n    \
         the stream from its first message:          {}",
        fill.last_per_key.show(),
        fill.from_start.show()
    );
    // The first host on the bucket reads it entry by entry (no snapshot
    // yet), then writes the snapshot later hosts join from.
    let want = fill.messages.min(u64::from(n));
    let (seed, seed_started) = f.add_host("s", SEED_ADDR, "", &bucket);
    let (mut seed_done, mut seed_snapshot) = (None, None);
    while seed_started.elapsed() < deadline + Duration::from_secs(90) {
        if seed_done.is_none() && bans(f, seed) >= want {
            seed_done = Some(seed_started.elapsed());
        }
        if get(f, seed, "/v1/fleet")["snapshots_written"].as_u64() >= Some(1) {
            seed_snapshot = Some(seed_started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let secs = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    println!(
        "  the first host on it (entry by entry, no snapshot yet): every ban in force after {}, its snapshot written after {}",
        secs(seed_done),
        secs(seed_snapshot)
    );
    let nats_pid = f.brokers[0].pid().context("the broker is running")?;
    let nats_cpu0 = process_cpu(nats_pid);
    let (h, started) = f.add_host("j", JOIN_ADDR, "", &bucket);
    let api_up = started.elapsed();
    let pid = f.daemons[h].pid().context("the join host runs")?;
    println!("  the joining host runs as pid {pid}");
    let (mut connected, mut first_ban, mut done) = (None, None, None);
    let mut count;
    let (mut applied, mut lag) = (0, 0);
    let mut timeline = Vec::new();
    let mut last_sample = None::<Instant>;
    loop {
        let t = started.elapsed();
        let fl = get(f, h, "/v1/fleet");
        count = bans(f, h);
        applied = fl["applied"].as_u64().unwrap_or(applied);
        lag = fl["lag"].as_u64().unwrap_or(lag);
        if connected.is_none() && fl["connected"] == true {
            connected = Some(t);
        }
        if first_ban.is_none() && count > 0 {
            first_ban = Some(t);
        }
        if last_sample.is_none_or(|s| s.elapsed() >= Duration::from_secs(1)) {
            last_sample = Some(Instant::now());
            timeline.push(
                json!({"t_s": t.as_secs_f64(), "bans": count, "applied": applied, "lag": lag}),
            );
            if timeline.len() % 10 == 1 {
                println!(
                    "  join at {:>5.1} s: {count} bans, applied {applied}, lag {lag}",
                    t.as_secs_f64()
                );
            }
        }
        if count >= want {
            done = Some(t);
            break;
        }
        if t > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = started.elapsed();
    timeline
        .push(json!({"t_s": elapsed.as_secs_f64(), "bans": count, "applied": applied, "lag": lag}));
    Ok(Join {
        fill,
        seed_done,
        seed_snapshot,
        api_up,
        connected,
        first_ban,
        done,
        elapsed,
        bans: count,
        applied,
        lag,
        timeline,
        daemon_cpu: thread_cpu(pid),
        nats_cpu: process_cpu(nats_pid) - nats_cpu0,
        rss_mb: super::status_kb(pid, "RssAnon:").map(|k| k as f64 / 1024.0),
    })
}

/// Percentiles of every (ban, host) pair of `per_host`: (p50, p99, max).
fn pcts(per_host: &[Vec<Duration>]) -> (f64, f64, f64) {
    let mut all: Vec<Duration> = per_host.iter().flatten().copied().collect();
    let (p50, p99) = (pct_ms(&mut all, 0.5), pct_ms(&mut all, 0.99));
    (p50, p99, all.last().map_or(f64::NAN, |d| ms(*d)))
}

/// Prints the propagation figures; returns (p50, p99, lost, their JSON).
fn report_propagation(f: &Fleet, count: u32, p: &mut Propagation) -> (f64, f64, u32, Value) {
    let (p50, p99, max) = pcts(&p.from_kernel);
    let (a50, a99, amax) = pcts(&p.from_answer);
    let (r50, r99, rmax) = pcts(&p.from_request);
    let lost: u32 = p.lost.iter().sum();
    let pairs: usize = p.from_kernel.iter().map(Vec::len).sum();
    let before: u32 = p.before_answer.iter().sum();
    let per_host: Vec<Value> = (0..p.from_kernel.len())
        .map(|h| {
            let k = &mut p.from_kernel[h];
            json!({"host": f.name(h + 1), "p50": pct_ms(k, 0.5), "p99": pct_ms(k, 0.99),
                   "arrived": k.len(), "lost": p.lost[h],
                   "before_answer": p.before_answer[h]})
        })
        .collect();
    let (api50, api99) = (pct_ms(&mut p.api, 0.5), pct_ms(&mut p.api, 0.99));
    let (k50, k99) = (
        pct_ms(&mut p.to_kernel, 0.5),
        pct_ms(&mut p.to_kernel, 0.99),
    );
    println!(
        "propagation: {count} bans made on a (POST /v1/bans, one at a time), {pairs} (ban, host) pairs arrived, {lost} lost"
    );
    println!(
        "  in a's XDP map -> in b's/c's XDP map:  p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  max {max:>7.2} ms   goal p99 <= {GOAL_P99_MS} ms: {}",
        met(p99 <= GOAL_P99_MS && lost == 0)
    );
    for v in &per_host {
        println!(
            "    host {}: p50 {:.2} ms, p99 {:.2} ms",
            v["host"].as_str().unwrap_or("?"),
            v["p50"].as_f64().unwrap_or(f64::NAN),
            v["p99"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!(
        "  a's API answered -> in b's/c's map:    p50 {a50:>7.2} ms  p99 {a99:>7.2} ms  max {amax:>7.2} ms   ({before} of {pairs} were there before the answer: counted 0)"
    );
    println!(
        "  request sent to a -> in b's/c's map:   p50 {r50:>7.2} ms  p99 {r99:>7.2} ms  max {rmax:>7.2} ms"
    );
    println!(
        "  request sent to a -> in a's map: p50 {k50:.2} ms, p99 {k99:.2} ms; -> a's answer (durable): p50 {api50:.2} ms, p99 {api99:.2} ms"
    );
    println!(
        "  reference (a constant, not measured): CrowdSec bouncers poll every {CROWDSEC_POLL_MS:.0} ms: p99 is {:.5} of it ({:.0}x sooner)",
        p99 / CROWDSEC_POLL_MS,
        CROWDSEC_POLL_MS / p99
    );
    let j = json!({
        "bans": count, "pairs": pairs, "lost": lost, "max_ms": max,
        "per_host": per_host,
        "from_answer_ms": {"p50": a50, "p99": a99, "max": amax, "before_answer": before},
        "from_request_ms": {"p50": r50, "p99": r99, "max": rmax},
        "origin_kernel_ms": {"p50": k50, "p99": k99},
        "origin_api_ms": {"p50": api50, "p99": api99},
        "reference_crowdsec_poll_ms": CROWDSEC_POLL_MS,
        "ratio_p99_to_reference": p99 / CROWDSEC_POLL_MS,
    });
    (p50, p99, lost, j)
}

/// Prints a burst's figures; its JSON.
fn report_burst(f: &Fleet, b: &Burst, n: u32, deadline: Duration) -> Value {
    let names: Vec<&str> = (0..b.origins).map(|h| f.name(h)).collect();
    let held_s = b.held_s(deadline);
    let complete = b.held.iter().all(Option::is_some);
    let how = match b.batch {
        None => "one a request (POST /v1/bans)".to_string(),
        Some(k) => format!("{k} a request (POST /v1/import)"),
    };
    println!(
        "throughput: {n} bans made on {} at once, {how}, by {} keep-alive API clients in all",
        names.join(", "),
        b.clients
    );
    println!(
        "  the APIs took them in {:.2} s ({:.0}/s; {} errors)",
        b.api.as_secs_f64(),
        f64::from(n) / b.api.as_secs_f64(),
        b.errors,
    );
    for (h, held) in b.held.iter().enumerate() {
        println!(
            "  host {} held {} of them {}; {} of {} sampled missing from its kernel map",
            f.name(h),
            b.got[h],
            held.map_or("by the deadline".into(), |d| format!(
                "{:.2} s after the first request",
                d.as_secs_f64()
            )),
            b.missing[h],
            b.sampled
        );
    }
    let per_ban_us = |s: f64| s * 1e6 / f64::from(n.max(1));
    let writes: Vec<String> = (0..b.published.len())
        .map(|h| {
            format!(
                "{} {} ({} lost on the way)",
                f.name(h),
                b.published[h],
                b.dropped[h]
            )
        })
        .collect();
    println!("  writes into the bucket: {}", writes.join(", "));
    let daemons: Vec<String> = b
        .cpu_daemons
        .iter()
        .enumerate()
        .map(|(h, s)| format!("{} {s:.2} s", f.name(h)))
        .collect();
    let total = b.cpu_daemons.iter().sum::<f64>() + b.cpu_nats + b.cpu_bench;
    println!(
        "  CPU over it: daemons {}, nats-server {:.2} s, the bench's clients {:.2} s; {:.0} us of CPU a ban in all, on {} cores",
        daemons.join(", "),
        b.cpu_nats,
        b.cpu_bench,
        per_ban_us(total),
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    println!(
        "  {:.0} bans/s (first request -> every ban in every host's map)",
        f64::from(n) / held_s
    );
    json!({
        "origins": names, "bans": n, "clients": b.clients, "complete": complete,
        "bans_a_request": b.batch.unwrap_or(1),
        "bans_per_s": f64::from(n) / held_s,
        "api_s": b.api.as_secs_f64(),
        "api_per_s": f64::from(n) / b.api.as_secs_f64(),
        "api_errors": b.errors,
        "held_s": b.held.iter().map(|h| h.map(|d| d.as_secs_f64())).collect::<Vec<_>>(),
        "held": b.got,
        "sampled": b.sampled, "sample_missing": b.missing,
        "cpu_s": {"daemons": b.cpu_daemons, "nats": b.cpu_nats, "bench": b.cpu_bench},
        "cpu_us_per_ban": per_ban_us(total),
        "published": b.published, "dropped": b.dropped,
    })
}

/// Runs the benchmark: `fleet [--count N] [--burst N] [--clients N]
/// [--join N] [--burst-deadline S] [--join-deadline S]`.
pub fn run(args: &[String]) -> Result<()> {
    let a = parse(args)?;
    let bin = crate::waf_release_bin();
    println!(
        "fleet lab: nats-server (JetStream), hosts a, b, c running {}",
        bin.display()
    );
    let mut f = Fleet::build(&["", "", ""], &[BROKER4], "", Some(&bin));

    // Propagation.
    let mut p = propagation(&f, a.count)?;
    let (p50, p99, lost, pj) = report_propagation(&f, a.count, &mut p);

    // Throughput: bans made one at a time through the API on a alone and
    // on a, b and c at once; then imported in batches on a, b and c at
    // once (a wave of bans, as detection makes them in an attack).
    let dl = a.burst_deadline;
    let one = burst(&f, 0, a.burst, 1, a.clients, None, dl)?;
    let one_j = report_burst(&f, &one, a.burst, dl);
    let all = burst(&f, a.burst, a.burst, 3, a.clients, None, dl)?;
    let all_j = report_burst(&f, &all, a.burst, dl);
    let wave = burst(&f, 2 * a.burst, a.burst, 3, 6, Some(a.batch), dl)?;
    let wave_j = report_burst(&f, &wave, a.burst, dl);
    let all_held = wave.held.iter().all(Option::is_some);
    let bans_per_s = f64::from(a.burst) / wave.held_s(dl);
    println!(
        "  bans_per_s (made on a, b and c at once, {} a request: first request -> every ban in every host's map): {bans_per_s:.0}   goal >= {GOAL_BANS_PER_S:.0}: {}",
        a.batch,
        met(all_held && bans_per_s >= GOAL_BANS_PER_S)
    );

    // Join.
    let j = join(&mut f, a.join, a.join_deadline)?;
    let join_s = j.done.map(|d| d.as_secs_f64());
    let rate = j.bans as f64 / j.elapsed.as_secs_f64();
    let secs = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    println!(
        "join: a fresh host on a bucket of {} bans (from the snapshot): API up {:.2} s, connected {}, first ban {}, all {}",
        j.fill.messages,
        j.api_up.as_secs_f64(),
        secs(j.connected),
        secs(j.first_ban),
        secs(j.done)
    );
    match join_s {
        Some(s) => println!(
            "  join_1m_s {s:.2} s (process start -> every ban in force)   goal < {GOAL_JOIN_S} s: {}",
            met(s < GOAL_JOIN_S)
        ),
        None => println!(
            "  NOT complete: {} of {} bans after {:.1} s ({rate:.0} bans/s; all would take ~{:.0} s)   goal < {GOAL_JOIN_S} s: NOT met",
            j.bans,
            j.fill.messages,
            j.elapsed.as_secs_f64(),
            j.fill.messages as f64 / rate.max(1e-9)
        ),
    }
    println!(
        "  at the end: applied {}, lag {}; daemon RssAnon {:.0} MB",
        j.applied,
        j.lag,
        j.rss_mb.unwrap_or(f64::NAN)
    );
    let busy: Vec<String> = j
        .daemon_cpu
        .iter()
        .filter(|(_, s)| **s >= 0.05)
        .map(|(n, s)| format!("{n} {s:.1} s"))
        .collect();
    println!(
        "  CPU over the join: daemon {:.1} s ({}), nats-server {:.1} s, in {:.1} s of wall time",
        j.daemon_cpu.values().sum::<f64>(),
        busy.join(", "),
        j.nats_cpu,
        j.elapsed.as_secs_f64()
    );

    super::write_json(
        "fleet.json",
        &json!({
            "propagation_ms": {"p50": p50, "p99": p99},
            "bans_per_s": bans_per_s,
            "join_1m_s": join_s,
            "propagation": pj,
            "throughput": {"one_origin": one_j, "all_origins": all_j, "all_origins_batched": wave_j},
            "join": {
                "bans": j.fill.messages, "complete": j.done.is_some(),
                "reached": j.bans, "elapsed_s": j.elapsed.as_secs_f64(),
                "bans_per_s": rate,
                "entry_by_entry_s": j.seed_done.map(|d| d.as_secs_f64()),
                "snapshot_written_s": j.seed_snapshot.map(|d| d.as_secs_f64()),
                "publish_s": j.fill.publish.as_secs_f64(),
                "stored_s": j.fill.stored.as_secs_f64(),
                "reference_watch_last_per_key": j.fill.last_per_key.json(),
                "reference_watch_from_start": j.fill.from_start.json(),
                "api_up_s": j.api_up.as_secs_f64(),
                "connected_s": j.connected.map(|d| d.as_secs_f64()),
                "first_ban_s": j.first_ban.map(|d| d.as_secs_f64()),
                "applied": j.applied, "lag": j.lag,
                "daemon_cpu_s": j.daemon_cpu, "nats_cpu_s": j.nats_cpu,
                "rss_mb": j.rss_mb,
                "timeline": j.timeline,
            },
            "goals": {
                "propagation_p99_ms": GOAL_P99_MS, "bans_per_s": GOAL_BANS_PER_S,
                "join_1m_s": GOAL_JOIN_S,
                "met": {
                    "propagation": p99 <= GOAL_P99_MS && lost == 0,
                    "bans_per_s": all_held && bans_per_s >= GOAL_BANS_PER_S,
                    "join": join_s.is_some_and(|s| s < GOAL_JOIN_S),
                },
            },
        }),
    );
    drop(f);
    Ok(())
}

//! `cargo xtask bench ui`: the dashboard's pages with a million bans and
//! ten thousand findings a minute (issue 21, "the page stays responsive").
//!
//! The real release daemon runs in the server namespace of a [`Lab`]: XDP on
//! its veth, the proxy in front of the tests' small upstream, the API and
//! the dashboard on loopback. Before it starts, its journal is written with
//! N bans (half IPv4, half IPv6 /64s, as `bench bans` does) and its findings
//! store (`max_size_mb = 128`, see [`STORE_MB`]) is filled to seven of its
//! eight segments with records of the last day, among them one of a rare
//! rule and a rare source (a filtered page must read the whole store to
//! find them and to know there is no other). While a bounded load generator in the attacker namespace
//! sends attacks through the proxy (about 170 a second, each blocked and
//! stored: some 10,000 findings a minute, from 32 addresses), one logged-in
//! client asks each page in turn, sequentially on one keep-alive
//! connection, as a person's browser would, up to `--requests` times or
//! `--page-seconds` each: the overview, its one-second poll, the bans pages
//! and searches, the detections page with and without filters, a finding's
//! draft; and, in the same run, the `/v1` endpoints that serve the same
//! data (the reference). Prints a table and writes target/bench/ui.json.
//! Everything it creates (namespaces, links, pins, the daemon, its state)
//! is removed on return, also on failure.

use std::{
    net::Ipv4Addr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use ipnet::IpNet;
use serde_json::{Value, json};
use waf_user::values::unix_now;

use super::{
    bans::{ban_net, write_journal},
    met,
};
use crate::{Lab, TEST_TOKEN, TestDaemon, Upstream, run_in, spawn_in_netns};

const BASE: &str = "http://127.0.0.1:9876";
/// The goals: every page's p99, and the live poll's.
const GOAL_PAGE_MS: f64 = 100.0;
const GOAL_LIVE_MS: f64 = 50.0;
/// Sources of the load generator (extra addresses of the attacker).
const LOAD_SOURCES: u32 = 32;
/// The store's cap in MiB: at 170 attacks a second (some 30,000 findings
/// a minute, 18 MB) the default 32 MiB holds under two minutes of them; a
/// store sized for such a load holds a quarter of an hour.
const STORE_MB: u64 = 128;
/// The prefilled segment holding the rare records and the drafted ones:
/// the load of one run pushes the two oldest out of the cap.
const RARE_SEGMENT: u32 = 3;
/// The rare rule and source: one record each, in [`RARE_SEGMENT`].
const RARE_RULE: &str = "bench-rare-rule";
const RARE_SOURCE: &str = "198.18.0.77";
/// A source that sent nothing at all (the filter matches nothing).
const NO_SOURCE: &str = "198.18.0.78";
/// What the prefill spreads its records over.
const RULES: [&str; 12] = [
    "sqli-union-select",
    "sqli-tautology",
    "sqli-comment",
    "xss-script-tag",
    "xss-event-handler",
    "lfi-dot-dot-slash",
    "rce-unix-shell",
    "rce-backtick",
    "scanner-user-agent",
    "protocol-bad-header",
    "php-injection",
    "ssrf-metadata",
];
/// Attacks the load generator sends (each blocked by the engine).
const ATTACKS: [&str; 4] = [
    "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
    "/search?name=%3Cscript%3Ealert(1)%3C/script%3E",
    "/download?file=../../../../etc/passwd",
    "/ping?host=127.0.0.1%3Bcat%20/etc/shadow",
];

/// Fills `dir` with segment files of findings over the last day, up to
/// about `bytes` (the store's cap less one segment); returns the records
/// written and the ids of some of them (for draft pages).
fn prefill(dir: &Path, bytes: u64, segment: u64) -> Result<(u64, Vec<u64>)> {
    std::fs::create_dir_all(dir)?;
    let now_ms = unix_now() * 1000;
    let (mut id, mut total) = (1u64, 0u64);
    let mut sample = Vec::new();
    let mut rng = crate::xdp_fuzz::rng::Rng::new(0x5eed_0021);
    let mut seg = 0;
    while total + segment <= bytes {
        let mut buf = Vec::with_capacity(segment as usize);
        let first = id;
        while (buf.len() as u64) < segment - 2048 {
            let x = rng.u64();
            let rare = seg == RARE_SEGMENT && id == first;
            let rule = if rare {
                RARE_RULE
            } else {
                RULES[(x % RULES.len() as u64) as usize]
            };
            let source = if rare {
                RARE_SOURCE.to_string()
            } else {
                Ipv4Addr::from(0xcb00_7100u32 + ((x >> 8) % 4000) as u32).to_string()
            };
            // One in ten passed (low-severity findings), one in a hundred
            // would_block; the rest blocked.
            let verdict = match (x >> 20) % 100 {
                0 => "would_block",
                1..=10 => "pass",
                _ => "block",
            };
            let r: waf_user::findings::FindingRecord = serde_json::from_value(json!({
                "id": id,
                "time_ms": now_ms - 86_400_000 + (id * 250).min(86_000_000),
                "source": source, "method": "GET", "host": "shop.test",
                "path": format!("/catalog/item{}", x % 500),
                "kind": rule.split('-').next().unwrap_or("sqli"),
                "location": "query:q", "part": "query", "param": "q", "rule": rule,
                "snippet": "union select password from users where id = 1 or 1=1 --",
                "raw": "1%27%20UNION%20SELECT%20password%20FROM%20users%20WHERE%20id%3D1%20OR%201%3D1--",
                "score": 15, "verdict": verdict,
                "request_id": format!("{:016x}", x),
            }))?;
            buf.extend_from_slice(&waf_user::findings::codec::encode(&r));
            if seg >= RARE_SEGMENT && x.is_multiple_of(97) {
                sample.push(id);
            }
            id += 1;
        }
        std::fs::write(dir.join(format!("{first:020}.seg")), &buf)?;
        total += buf.len() as u64;
        seg += 1;
    }
    Ok((id - 1, sample))
}

/// The name of the interface holding `addr` in a namespace.
fn iface_of(ns: &crate::Netns, addr: &str) -> Result<String> {
    let out = ns.exec(&["ip", "-o", "-4", "addr", "show"]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.contains(&format!(" {addr}/")))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_string)
        .with_context(|| format!("no interface with {addr}: {text}"))
}

/// One attack through the proxy from `src`; its status.
fn attack(src: Ipv4Addr, target: &str) -> std::io::Result<u16> {
    use std::io::{Read as _, Write as _};
    let mut s = socket_from(src)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: Mozilla/5.0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    Ok(text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// A TCP connection to the proxy from source address `src`.
fn socket_from(src: Ipv4Addr) -> std::io::Result<std::net::TcpStream> {
    use std::os::fd::FromRawFd as _;
    // SAFETY: plain socket syscalls on a fresh fd this function owns.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = std::net::TcpStream::from_raw_fd(fd);
        let sin = |a: Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(a.octets()),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let local = sin(src, 0);
        if libc::bind(fd, (&raw const local).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let dst = sin(Lab::SRV4.parse().expect("address"), 8080);
        if libc::connect(fd, (&raw const dst).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// The load generator: `rate` attacks a second over four threads, until
/// `stop` or `max` is reached; counts what was sent and what was blocked.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    blocked: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
    started: Instant,
}

impl Load {
    fn start(ns: &str, rate: u32, max: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, blocked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let started = Instant::now();
        let per = 4u32;
        let threads = (0..per)
            .map(|t| {
                let (stop, sent, blocked) = (stop.clone(), sent.clone(), blocked.clone());
                spawn_in_netns(ns, move || {
                    let gap = Duration::from_secs_f64(f64::from(per) / f64::from(rate.max(1)));
                    let mut n = 0u32;
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < max {
                        let due = started + gap * n + gap * t / per;
                        match due.checked_duration_since(Instant::now()) {
                            Some(w) => std::thread::sleep(w),
                            // More than a second behind: skip, stay bounded.
                            None if Instant::now() - due > Duration::from_secs(1) => {
                                n += 1;
                                continue;
                            }
                            None => {}
                        }
                        let k = n * per + t;
                        let src = Ipv4Addr::from(0xc000_0264u32 + k % LOAD_SOURCES);
                        if let Ok(code) = attack(src, ATTACKS[(k % 4) as usize]) {
                            sent.fetch_add(1, Ordering::Relaxed);
                            if code == 403 {
                                blocked.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        Load {
            stop,
            sent,
            blocked,
            threads,
            started,
        }
    }

    /// Stops it; (sent, blocked, seconds).
    fn finish(mut self) -> (u64, u64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
        (
            self.sent.load(Ordering::Relaxed),
            self.blocked.load(Ordering::Relaxed),
            self.started.elapsed().as_secs_f64(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A logged-in dashboard client (one keep-alive connection).
struct Client {
    agent: ureq::Agent,
    cookie: String,
}

impl Client {
    /// Logs in through the form, as a browser does.
    fn login() -> Result<Client> {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(Duration::from_secs(30))
            .build();
        let r = agent.get(&format!("{BASE}/ui/login")).call()?;
        let set = r.header("set-cookie").unwrap_or_default().to_string();
        let token = set
            .split(';')
            .next()
            .and_then(|c| c.strip_prefix("waf_ui_login="))
            .context("the login form's cookie")?
            .to_string();
        let r = agent
            .post(&format!("{BASE}/ui/login"))
            .set("Cookie", &format!("waf_ui_login={token}"))
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&format!("csrf={token}&token={TEST_TOKEN}"));
        let r = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => bail!("login: {e}"),
        };
        let cookie = r
            .all("set-cookie")
            .into_iter()
            .find_map(|c| c.split(';').next().filter(|c| c.starts_with("waf_ui=")))
            .with_context(|| format!("no session after login ({})", r.status()))?
            .to_string();
        Ok(Client { agent, cookie })
    }

    /// One request: its status and body.
    fn get(&self, path: &str) -> Result<(u16, String)> {
        let url = format!("{BASE}{path}");
        let req = if path.starts_with("/v1") {
            self.agent
                .get(&url)
                .set("Authorization", &format!("Bearer {TEST_TOKEN}"))
        } else {
            self.agent.get(&url).set("Cookie", &self.cookie)
        };
        match req.call() {
            Ok(r) => Ok((r.status(), r.into_string()?)),
            Err(ureq::Error::Status(c, r)) => Ok((c, r.into_string().unwrap_or_default())),
            Err(e) => bail!("GET {path}: {e}"),
        }
    }
}

/// One page's latencies.
struct Measured {
    page: String,
    path: String,
    ms: Vec<f64>,
}

impl Measured {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    }
}

/// Asks `paths(i)` up to `n` times or for `secs`; fails on a status other
/// than 200 (a page that redirects or errs measures nothing useful).
fn measure(
    c: &Client,
    page: &str,
    n: usize,
    secs: f64,
    mut path: impl FnMut(usize) -> String,
) -> Result<Measured> {
    let t0 = Instant::now();
    let mut ms = Vec::new();
    let mut last = String::new();
    while ms.len() < n && (ms.len() < 5 || t0.elapsed().as_secs_f64() < secs) {
        last = path(ms.len());
        let t = Instant::now();
        let (code, body) = c.get(&last)?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if code != 200 {
            bail!(
                "{page}: GET {last} answered {code}: {}",
                body.chars().take(300).collect::<String>()
            );
        }
    }
    Ok(Measured {
        page: page.into(),
        path: last,
        ms,
    })
}

/// Records in the store's segment files now.
fn stored(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            waf_user::findings::codec::decode(&bytes).records.len() as u64
        })
        .sum()
}

/// Runs the benchmark: `ui [--bans N] [--requests N] [--page-seconds S]
/// [--rate R] [--settle S]` (defaults 1,000,000, 300, 12, 170, 30: some
/// 100 s in all).
pub fn run(args: &[String]) -> Result<()> {
    let (mut bans, mut requests, mut page_secs, mut rate, mut settle) =
        (1_000_000u32, 300usize, 12.0, 170, 30);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || -> Result<f64> { Ok(it.next().context("a number")?.parse()?) };
        match a.as_str() {
            "--bans" => bans = num()? as u32,
            "--requests" => requests = num()? as usize,
            "--page-seconds" => page_secs = num()?,
            "--rate" => rate = num()? as u32,
            "--settle" => settle = num()? as u64,
            other => bail!(
                "unknown argument {other}; known: --bans N, --requests N, --page-seconds S, \
                 --rate R, --settle S"
            ),
        }
    }
    let t_all = Instant::now();
    let lab = Lab::new();
    let _app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let mut d = TestDaemon::configure(
        &lab,
        &format!(
            "[capacity]\nbans = {}\n\n[ban_policy]\nstrikes = 1000\nwindow = \"1s\"\n\n\
             [proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
             access_log = \"off\"\n\n[findings]\nmax_size_mb = {STORE_MB}\n\n\
             [log]\nlevel = \"warn\"\n",
            (bans / 2).next_power_of_two().max(262_144)
        ),
    );
    d.bin = Some(crate::waf_release_bin());
    let t = Instant::now();
    let reasons: Vec<Arc<str>> = ["detection: sqli", "rate limit", "manual", "scanner"]
        .iter()
        .map(|r| Arc::from(*r))
        .collect();
    write_journal(&d.state_dir, bans, 86_400, |i| {
        reasons[(i % 4) as usize].clone()
    })?;
    let cap: u64 = STORE_MB << 20;
    let (prefilled, ids) = prefill(&d.state_dir.join("findings"), cap - cap / 8, cap / 8)?;
    println!(
        "{bans} bans journaled, {prefilled} findings prefilled in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    d.try_spawn_here().map_err(anyhow::Error::msg)?;
    loop {
        let (code, v) = d.api("GET", "/v1/health", None);
        if code == 200 && v["bans"].as_u64() == Some(u64::from(bans)) {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("the daemon did not report {bans} bans within 60 s: {v}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "daemon up with the bans in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let iface = iface_of(&lab.attacker, Lab::ATTACKER4)?;
    for k in 0..LOAD_SOURCES {
        let a = Ipv4Addr::from(0xc000_0264u32 + k);
        lab.attacker
            .exec(&["ip", "addr", "add", &format!("{a}/24"), "dev", &iface]);
    }
    let written0 = d.api("GET", "/v1/stats", None).1["findings"]["written"]
        .as_u64()
        .unwrap_or(0);
    let load = Load::start(&lab.attacker.name, rate, Duration::from_secs(240));
    // Let the load run a while before measuring: the newest segment fills
    // with its findings (some 15,000 in 30 s).
    std::thread::sleep(Duration::from_secs(settle));

    let deep = ban_net(bans / 4 * 3);
    let one = ban_net(bans / 3 * 2);
    let unbanned = "100.127.255.254";
    let measured = run_in(&lab.srv.name, || -> Result<Vec<Measured>> {
        let c = Client::login()?;
        let (_, live) = c.get("/ui/live?since=0&seq=0")?;
        let live: Value = serde_json::from_str(&live)?;
        let since = live["now"].as_u64().unwrap_or(0);
        let (n, s) = (requests, page_secs);
        let enc = |n: &IpNet| n.to_string().replace('/', "%2F").replace(':', "%3A");
        let mut out = Vec::new();
        out.push(measure(&c, "overview /ui", n, s, |_| "/ui".into())?);
        out.push(measure(&c, "live poll /ui/live", n, s, |i| {
            format!("/ui/live?since={}&seq=0", since + i as u64 / 2)
        })?);
        out.push(measure(&c, "bans: first page", n, s, |_| {
            "/ui/bans".into()
        })?);
        out.push(measure(&c, "bans: search, one address", n, s, |_| {
            format!("/ui/bans?q={}", one.addr())
        })?);
        out.push(measure(&c, "bans: search, no match", n, s, |_| {
            format!("/ui/bans?q={unbanned}")
        })?);
        out.push(measure(&c, "bans: reason search, no match", n, s, |_| {
            "/ui/bans?q=no-such-reason".into()
        })?);
        out.push(measure(&c, "bans: deep page", n, s, |_| {
            format!("/ui/bans?after={}", enc(&deep))
        })?);
        out.push(measure(&c, "detections: all", n, s, |_| {
            "/ui/findings".into()
        })?);
        out.push(measure(&c, "detections: rare rule", n, s, |_| {
            format!("/ui/findings?rule={RARE_RULE}")
        })?);
        out.push(measure(&c, "detections: rare source", n, s, |_| {
            format!("/ui/findings?source={RARE_SOURCE}")
        })?);
        out.push(measure(&c, "detections: source, none", n, s, |_| {
            format!("/ui/findings?source={NO_SOURCE}")
        })?);
        out.push(measure(&c, "detections: verdict pass", n, s, |_| {
            "/ui/findings?verdict=pass".into()
        })?);
        out.push(measure(&c, "finding draft", n, s, |i| {
            format!("/ui/findings/{}/draft", ids[i * 7 % ids.len()])
        })?);
        out.push(measure(&c, "reference: /v1/health", n, s, |_| {
            "/v1/health".into()
        })?);
        out.push(measure(&c, "reference: /v1/bans page", n, s, |_| {
            format!("/v1/bans?limit=50&after={}", enc(&deep))
        })?);
        out.push(measure(&c, "reference: /v1/findings", n, s, |_| {
            "/v1/findings?limit=50".into()
        })?);
        out.push(measure(
            &c,
            "reference: /v1/findings rare rule",
            n,
            s,
            |_| format!("/v1/findings?limit=50&rule={RARE_RULE}"),
        )?);
        Ok(out)
    })?;
    let (sent, blocked, secs) = load.finish();
    let written = d.api("GET", "/v1/stats", None).1["findings"]["written"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(written0);
    let rss_mb = d
        .pid()
        .and_then(|p| super::status_kb(p, "VmRSS:"))
        .map_or(0.0, |k| k as f64 / 1024.0);
    let findings_stored = stored(&d.state_dir.join("findings"));
    let per_min = blocked as f64 / secs * 60.0;
    report(
        &measured,
        Summary {
            bans,
            sent,
            blocked,
            per_min,
            written_per_min: written as f64 / secs * 60.0,
            findings_stored,
            rss_mb,
            secs,
        },
    );
    drop(d);
    println!("bench ui took {:.0} s", t_all.elapsed().as_secs_f64());
    Ok(())
}

struct Summary {
    bans: u32,
    sent: u64,
    blocked: u64,
    per_min: f64,
    written_per_min: f64,
    findings_stored: u64,
    rss_mb: f64,
    secs: f64,
}

fn report(measured: &[Measured], s: Summary) {
    println!(
        "{} bans; load: {} attacks sent in {:.0} s, {} blocked ({:.0} flagged requests a minute, \
         {:.0} findings written a minute); {} findings in the store; daemon RSS {:.1} MB",
        s.bans,
        s.sent,
        s.secs,
        s.blocked,
        s.per_min,
        s.written_per_min,
        s.findings_stored,
        s.rss_mb
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>5}  goal",
        "page", "p50 ms", "p99 ms", "max ms", "n"
    );
    let mut pages = Vec::new();
    let mut all_met = true;
    for m in measured {
        let (p50, p99, max) = (m.pct(0.5), m.pct(0.99), m.pct(1.0));
        let goal = if m.page.starts_with("reference") {
            None
        } else if m.page.starts_with("live") {
            Some(GOAL_LIVE_MS)
        } else {
            Some(GOAL_PAGE_MS)
        };
        let verdict = goal.map_or(String::new(), |g| {
            all_met &= p99 < g;
            format!("p99 < {g:.0}: {}", met(p99 < g))
        });
        println!(
            "{:<36} {p50:>9.2} {p99:>9.2} {max:>9.2} {:>5}  {verdict}",
            m.page,
            m.ms.len()
        );
        pages.push(json!({
            "page": m.page, "path": m.path, "p50_ms": p50, "p99_ms": p99, "max_ms": max,
            "n": m.ms.len(),
        }));
    }
    println!("every goal: {}", met(all_met));
    super::write_json(
        "ui.json",
        &json!({
            "bans": s.bans,
            "findings_per_min_sent": s.per_min,
            "findings_written_per_min": s.written_per_min,
            "attacks_sent": s.sent,
            "findings_stored": s.findings_stored,
            "daemon_rss_mb": s.rss_mb,
            "pages": pages,
            "goals": {"page_p99_ms": GOAL_PAGE_MS, "live_p99_ms": GOAL_LIVE_MS},
        }),
    );
}

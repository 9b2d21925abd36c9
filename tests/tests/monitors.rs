//! `[monitors.*]` end to end, in network namespaces: a client and an
//! attacker talk to the daemon's proxy in front of a real application (which
//! answers `/status/NNN` with that status). Each monitor, set to
//! `action = "ban"`, bans the attacker for what it does (too many calls to a
//! route, distinct not-found paths, auth failures, server errors, a trap
//! path, a filled hidden field, a form posted too fast, impossible headers),
//! and the attacker's next handshake is dropped at XDP; the ban is lifted
//! before the next monitor. The client does the same things below each
//! threshold (or as a browser does them) and is never refused.

use std::time::{Duration, Instant};

use waf_tests::{Lab, TestDaemon, Upstream, http_full};

const BROWSER: &str = "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
    Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
    Accept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\n";

fn server() -> String {
    format!("{}:8080", Lab::SRV4)
}

fn req(method: &str, path: &str, extra: &str, body: &str) -> Vec<u8> {
    let len = if body.is_empty() && method == "GET" {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    format!("{method} {path} HTTP/1.1\r\nHost: shop\r\n{extra}{len}Connection: close\r\n\r\n{body}")
        .into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    req("GET", path, BROWSER, "")
}

fn form(path: &str, referer: &str, body: &str) -> Vec<u8> {
    req(
        "POST",
        path,
        &format!(
            "{BROWSER}Referer: http://shop{referer}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n"
        ),
        body,
    )
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Site {
    lab: Lab,
    d: TestDaemon,
    _app: Upstream,
}

impl Site {
    fn client(&self, raw: Vec<u8>) -> u16 {
        http_full(&self.lab.client, &server(), &raw)
            .expect("the client is never dropped")
            .0
    }

    /// The attacker's status, None once XDP drops it.
    fn attacker(&self, raw: Vec<u8>) -> Option<u16> {
        http_full(&self.lab.attacker, &server(), &raw)
            .ok()
            .map(|r| r.0)
    }

    fn ban_of(&self, addr: &str) -> Option<serde_json::Value> {
        self.d.api("GET", "/v1/bans", None).1["bans"]
            .as_array()?
            .iter()
            .find(|b| b["addr"] == addr)
            .cloned()
    }

    /// Waits for the attacker's ban by `monitor`, checks that XDP drops
    /// its handshake and that the client is untouched, then lifts it.
    fn expect_ban(&self, monitor: &str) {
        wait_until(
            &format!("the {monitor} ban"),
            Duration::from_secs(10),
            || self.ban_of(Lab::ATTACKER4).is_some(),
        );
        let ban = self.ban_of(Lab::ATTACKER4).unwrap();
        let reason = ban["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with("behavior:") && reason.contains(monitor),
            "{monitor}: {ban}"
        );
        assert_eq!(
            self.attacker(get("/")),
            None,
            "{monitor}: the banned attacker's handshake is dropped at XDP"
        );
        assert!(self.ban_of(Lab::CLIENT4).is_none(), "{monitor}");
        assert_eq!(self.client(get("/")), 200, "{monitor}");
        let path = format!("/v1/bans/{}", Lab::ATTACKER4);
        assert_eq!(self.d.api("DELETE", &path, None).0, 200);
        wait_until("the lifted ban", Duration::from_secs(10), || {
            self.attacker(get("/")).is_some()
        });
    }

    fn not_banned(&self, what: &str) {
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            self.ban_of(Lab::ATTACKER4).is_none(),
            "{what}: {:?}",
            self.ban_of(Lab::ATTACKER4)
        );
    }
}

fn site() -> Site {
    let lab = Lab::new();
    let app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let d = TestDaemon::start(
        &lab,
        "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
         access_log = \"off\"\n\n[ban_policy]\nstrikes = 1000\n\n\
         [monitors.usage]\nroutes = [\"/api/search*\"]\ncount = 5\nwindow = \"1m\"\naction = \"ban\"\n\n\
         [monitors.not_found]\ncount = 5\nwindow = \"1m\"\naction = \"ban\"\n\n\
         [monitors.auth_failures]\ncount = 3\nwindow = \"1m\"\naction = \"ban\"\n\n\
         [monitors.server_errors]\ncount = 3\nwindow = \"1m\"\naction = \"ban\"\n\n\
         [monitors.honeypot]\nmin_form_seconds = 1.5\nfields = [\"website\"]\n\
         paths = [\"/wp-admin*\", \"/.env\"]\n\n\
         [monitors.headers]\ncount = 2\nwindow = \"1m\"\naction = \"ban\"\n",
    );
    Site { lab, d, _app: app }
}

#[test]
fn each_monitor_bans_the_offender_at_xdp_and_spares_the_client() {
    let s = site();

    // Usage: five searches a minute are fine, the sixth is one too many.
    for _ in 0..5 {
        assert_eq!(s.client(get("/api/search?q=shoes")), 200);
        assert_eq!(s.attacker(get("/api/search?q=shoes")), Some(200));
    }
    s.not_banned("five searches");
    let _ = s.attacker(get("/api/search?q=socks"));
    s.expect_ban("usage");

    // Not found: a missing favicon fetched again and again counts once;
    // five distinct missing paths are a walk.
    for _ in 0..8 {
        assert_eq!(s.client(get("/status/404/favicon.ico")), 404);
        assert_eq!(s.attacker(get("/status/404/favicon.ico")), Some(404));
    }
    s.not_banned("one missing path, eight times");
    for i in 0..6 {
        let _ = s.attacker(get(&format!("/status/404/item/{i}")));
    }
    s.expect_ban("not_found");

    // Auth failures and server errors from the application.
    for _ in 0..2 {
        assert_eq!(
            s.client(form("/status/401/login", "/login", "u=a&p=b")),
            401
        );
    }
    for _ in 0..4 {
        let _ = s.attacker(form("/status/401/login", "/login", "u=a&p=b"));
    }
    s.expect_ban("auth_failures");
    for _ in 0..4 {
        let _ = s.attacker(get("/status/500/report"));
    }
    s.expect_ban("server_errors");

    // Honeypot: a trap path, a filled hidden field, a form posted faster
    // than a person types. The client's form, after a human pause, passes.
    let _ = s.attacker(get("/wp-admin/setup-config.php"));
    s.expect_ban("honeypot");
    let _ = s.attacker(form(
        "/contact",
        "/contact",
        "name=a&website=http%3A%2F%2Fspam",
    ));
    s.expect_ban("honeypot");
    assert_eq!(s.attacker(get("/contact")), Some(200));
    let _ = s.attacker(form("/contact", "/contact", "name=a&website="));
    s.expect_ban("honeypot");
    assert_eq!(s.client(get("/contact")), 200);
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(
        s.client(form("/contact", "/contact", "name=a&website=")),
        200
    );

    // Headers: Firefox does not send client hints; twice is a ban.
    let forged = format!("{BROWSER}Sec-CH-UA: \"Chromium\";v=\"130\"\r\n");
    for _ in 0..2 {
        let _ = s.attacker(req("GET", "/", &forged, ""));
    }
    s.expect_ban("headers");

    // The client went through every step untouched.
    assert!(s.ban_of(Lab::CLIENT4).is_none());
    let (_, stats) = s.d.api("GET", "/v1/stats", None);
    assert!(
        stats["proxy"]["monitor_hits"].as_u64().unwrap_or(0) >= 8,
        "{stats}"
    );
}

/// A site's hour of clean traffic, in the proxy's JSON access log format:
/// browsers reading pages with their assets, API clients, a health probe.
fn clean_log(sources: u32) -> String {
    let mut rng = 0x5eed_u64;
    let mut next = move |n: u64| {
        rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    };
    let t0 = 1_780_000_000u64;
    let mut lines: Vec<(u64, String)> = Vec::new();
    let mut push = |t: u64, ip: &str, method: &str, target: String, status: u16, ua: &str| {
        let line = serde_json::json!({
            "time": waf_user::values::rfc3339(t), "remote": ip, "method": method,
            "target": target, "status": status, "user_agent": ua,
        });
        lines.push((t, line.to_string()));
    };
    for i in 0..sources {
        let ip = format!("198.51.{}.{}", 1 + i / 200, 1 + i % 200);
        let start = t0 + next(3000);
        match i % 10 {
            6 | 7 => {
                // A slow reader: a page every few minutes, read by the
                // long window only.
                let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15";
                let mut t = t0 + next(600);
                while t < t0 + 3600 {
                    let path = match next(3) {
                        0 => format!("/blog/post-{}", next(40)),
                        1 => format!("/docs/page-{}", next(30)),
                        _ => format!("/products/{}", next(60)),
                    };
                    push(t, &ip, "GET", path, 200, ua);
                    t += 120 + next(420);
                }
            }
            0..=5 => {
                let ua = [
                    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
                ][(i % 2) as usize];
                let mut t = start;
                for page in 0..2 + next(6) {
                    let path = match next(3) {
                        0 => format!("/blog/post-{}", next(40)),
                        1 => format!("/products/{}", next(60)),
                        _ => "/".to_string(),
                    };
                    push(t, &ip, "GET", path, 200, ua);
                    if page == 0 {
                        for a in [
                            "/static/app.css",
                            "/static/app.js",
                            "/static/logo.svg",
                            "/favicon.ico",
                        ] {
                            push(t, &ip, "GET", a.into(), 200, ua);
                        }
                    }
                    for _ in 0..next(4) {
                        push(
                            t + 1,
                            &ip,
                            "GET",
                            format!("/img/{}.webp", next(200)),
                            200,
                            ua,
                        );
                    }
                    t += 5 + next(85);
                }
            }
            8 => {
                let every = 10 + next(30);
                for k in 0..(3600 - (start - t0)) / every {
                    push(
                        start + k * every,
                        &ip,
                        "GET",
                        format!("/api/items/{}", next(500)),
                        200,
                        "python-requests/2.31",
                    );
                }
            }
            _ => {
                for k in 0..120 {
                    push(
                        t0 + k * 30,
                        &ip,
                        "GET",
                        "/health".into(),
                        200,
                        "kube-probe/1.29",
                    );
                }
            }
        }
    }
    lines.sort_by_key(|l| l.0);
    lines.into_iter().map(|l| l.1 + "\n").collect()
}

#[test]
fn the_anomaly_model_bans_a_scanner_at_xdp_and_spares_the_client() {
    let lab = Lab::new();
    let app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    // A baseline learned with `waf learn` from the site's clean hour.
    let dir = std::env::temp_dir().join(waf_tests::unique("waf-anomaly-lab-"));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, baseline) = (dir.join("access.log"), dir.join("baseline.json"));
    std::fs::write(&log, clean_log(300)).unwrap();
    let out = std::process::Command::new(waf_tests::waf_bin())
        .args(["--json", "learn"])
        .arg(&log)
        .arg("--out")
        .arg(&baseline)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let learned: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hint = learned["threshold_hint"]
        .as_f64()
        .expect("a threshold hint");
    assert!(
        (0.5..=0.99).contains(&hint) && learned["long"]["threshold_hint"].as_f64().is_some(),
        "{learned}"
    );
    // The hint is the highest score a training source reached. This log
    // has no 4xx at all, so the hint sits at the top of the forest's
    // narrow scale (0.67-0.69 from one training to the next: the forest
    // takes no seed) and the scanner scores 0.66-0.69: with the hint,
    // one run in eight missed it. The test names a threshold between the
    // client (a browser of the log) and any window beyond the training
    // data instead, as an operator does after reading `waf learn`.
    let d = TestDaemon::start(
        &lab,
        &format!(
            "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
             access_log = \"off\"\n\n[ban_policy]\nstrikes = 2\n\n\
             [anomaly]\nmode = \"enforce\"\nbaseline = \"{}\"\nthreshold = 0.62\n",
            baseline.display()
        ),
    );
    let s = Site { lab, d, _app: app };

    // The client reads a few pages as the site's browsers do.
    for path in [
        "/",
        "/static/app.css",
        "/static/app.js",
        "/static/logo.svg",
        "/favicon.ico",
        "/img/12.webp",
        "/products/7",
        "/img/40.webp",
        "/blog/post-3",
        "/img/41.webp",
        "/products/21",
        "/",
    ] {
        assert_eq!(s.client(get(path)), 200, "{path}");
    }
    // The attacker walks probe paths the application does not have.
    let mut dropped = false;
    for i in 0..80 {
        // Paths no rule of the detection engine knows: only how the
        // source behaves gives it away.
        let probe = ["archive", "old", "beta", "v2", "misc"][i % 5];
        if s.attacker(get(&format!("/status/404/{probe}/{i}")))
            .is_none()
        {
            dropped = true;
            break;
        }
    }
    wait_until("the anomaly ban", Duration::from_secs(10), || {
        s.ban_of(Lab::ATTACKER4).is_some()
    });
    let ban = s.ban_of(Lab::ATTACKER4).unwrap();
    let reason = ban["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("anomaly"), "{ban}");
    assert!(
        dropped || s.attacker(get("/")).is_none(),
        "XDP drops the banned scanner"
    );
    assert_eq!(s.attacker(get("/")), None);
    assert!(s.ban_of(Lab::CLIENT4).is_none());
    assert_eq!(s.client(get("/products/8")), 200);
    let (_, stats) = s.d.api("GET", "/v1/stats", None);
    assert!(
        stats["proxy"]["anomaly_flagged"].as_u64().unwrap_or(0) >= 2,
        "{stats}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

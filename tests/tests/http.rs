//! End to end, in network namespaces: a clean client, an attacker, and a
//! server running the daemon in front of (proxy) or beside (mirror) a real
//! application. Detections become strikes, strikes become XDP bans, and the
//! banned attacker's TCP handshake is dropped while the client carries on.

use std::time::{Duration, Instant};

use serde_json::Value;
use waf_tests::{
    Lab, TestDaemon, Upstream, api, http_raw,
    mmdb::{self, Record},
};

const SQLI: &[u8] = b"GET /search?q=1%27%20UNION%20SELECT%20username,password%20FROM%20users-- HTTP/1.1\r\nHost: shop\r\nUser-Agent: Mozilla/5.0\r\n\r\n";
const BENIGN: &[u8] =
    b"GET /search?q=select+specialty+hospital HTTP/1.1\r\nHost: shop\r\nUser-Agent: Mozilla/5.0\r\n\r\n";

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn banned(lab: &Lab) -> Vec<String> {
    api(lab, "GET", "/v1/bans", None).1["bans"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| b["addr"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn xdp_banned_packets(lab: &Lab) -> u64 {
    api(lab, "GET", "/v1/stats", None).1["counters"]["banned"]["packets"]
        .as_u64()
        .unwrap_or(0)
}

fn server(port: u16) -> String {
    format!("{}:{port}", Lab::SRV4)
}

#[test]
fn proxy_blocks_attacks_and_strikes_become_xdp_bans() {
    let lab = Lab::new();
    let app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    let log = std::env::temp_dir().join(format!("waf-access-{}.log", std::process::id()));
    // Databases without a policy: the log names countries and networks.
    let (cdb, adb) = (
        log.with_extension("country.mmdb"),
        log.with_extension("asn.mmdb"),
    );
    let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
    mmdb::write(
        &cdb,
        "GeoLite2-Country",
        &[
            (net("192.0.2.0/26"), Record::Country("DE".into())),
            (net("192.0.2.64/26"), Record::Country("CN".into())),
        ],
    )
    .unwrap();
    mmdb::write(
        &adb,
        "GeoLite2-ASN",
        &[(net("192.0.2.64/26"), Record::Asn(64500, "Example".into()))],
    )
    .unwrap();
    let d = TestDaemon::start(
        &lab,
        &format!(
            "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
             access_log = \"{}\"\naccess_log_format = \"json\"\nsecurity_headers = true\n\
             inspect_budget = \"10s\"\n\n\
             [ban_policy]\nstrikes = 3\nwindow = \"1m\"\n\n\
             [sources]\ncountry_db = \"{}\"\nasn_db = \"{}\"\n",
            log.display(),
            cdb.display(),
            adb.display()
        ),
    );
    let (code, body) = http_raw(&lab.client, &server(8080), None, BENIGN, 1).unwrap();
    assert_eq!((code, body.as_str()), (200, "hello"));

    for i in 0..3 {
        let (code, body) = http_raw(&lab.attacker, &server(8080), None, SQLI, 1).unwrap();
        assert_eq!(code, 403, "attack {i} blocked");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "blocked by waf");
        assert_eq!(v["request_id"].as_str().unwrap().len(), 16);
    }
    assert_eq!(
        app.served.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "attacks never reached the app"
    );
    wait_until("the ban", Duration::from_secs(5), || {
        banned(&lab) == [Lab::ATTACKER4]
    });
    let before = xdp_banned_packets(&lab);
    let err = http_raw(&lab.attacker, &server(8080), None, BENIGN, 1).unwrap_err();
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::TimedOut,
        "handshake dropped at XDP: {err}"
    );
    assert!(
        xdp_banned_packets(&lab) > before,
        "the XDP ban counter rose"
    );
    assert_eq!(
        http_raw(&lab.client, &server(8080), None, BENIGN, 1)
            .unwrap()
            .0,
        200
    );

    let out = d.cli(&["bans", "rm", Lab::ATTACKER4]);
    assert!(out.status.success());
    assert_eq!(
        http_raw(&lab.attacker, &server(8080), None, BENIGN, 1)
            .unwrap()
            .0,
        200
    );

    // The access log has every request with its verdict (a line is
    // written after its response is sent: wait for the last one).
    wait_until("the sixth access log line", Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() >= 6)
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(lines.iter().filter(|l| l["verdict"] == "block").count(), 3);
    let blocked = lines.iter().find(|l| l["verdict"] == "block").unwrap();
    assert_eq!(blocked["status"], 403);
    assert_eq!(blocked["remote"], Lab::ATTACKER4);
    assert_eq!(blocked["country"], "CN", "{blocked}");
    assert_eq!(blocked["asn"], 64500, "{blocked}");
    let passed = lines.iter().find(|l| l["remote"] == Lab::CLIENT4).unwrap();
    assert_eq!(passed["country"], "DE", "{passed}");
    assert!(passed.get("asn").is_none(), "no network known: {passed}");
    assert!(
        blocked["reason"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("sql"),
        "{blocked}"
    );
    let (_, st) = api(&lab, "GET", "/v1/stats", None);
    assert_eq!(st["proxy"]["blocked"], 3);
    // The path, Host, User-Agent and the parameter name `q` were the same
    // in the six requests: scanned (and found clean) in the first, skipped
    // in the five others. Neither value of `q` is ever clean (the benign
    // one offers a finding of a higher paranoia level), so both are
    // scanned every time.
    assert_eq!(
        st["proxy"]["clean_cache"],
        serde_json::json!({"hits": 20, "misses": 10}),
        "{st}"
    );
    let (_, m) = api(&lab, "GET", "/metrics", None);
    let text = m.as_str().unwrap();
    assert!(
        text.contains("waf_detect_clean_cache_lookups_total{outcome=\"hit\"} 20"),
        "{text}"
    );
    for f in [&log, &cdb, &adb] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn mirror_detects_split_requests_and_bans_without_a_proxy() {
    let lab = Lab::new();
    // The application listens directly; waf only watches.
    let app = Upstream::start(&lab.srv, "0.0.0.0:8080");
    let _d = TestDaemon::start(
        &lab,
        "[mirror]\nenabled = true\nports = [8080]\n\n[ban_policy]\nstrikes = 2\nwindow = \"1m\"\n",
    );
    assert_eq!(
        http_raw(&lab.client, &server(8080), None, BENIGN, 1)
            .unwrap()
            .0,
        200
    );
    // The mirror cannot block: the attack reaches the application. Each one
    // is split over several TCP segments.
    for _ in 0..2 {
        let (code, _) = http_raw(&lab.attacker, &server(8080), None, SQLI, 4).unwrap();
        assert_eq!(code, 200);
    }
    wait_until("the mirror's ban", Duration::from_secs(5), || {
        banned(&lab) == [Lab::ATTACKER4]
    });
    let (_, bans) = api(&lab, "GET", "/v1/bans", None);
    assert_eq!(bans["bans"][0]["source"], "detection");
    assert!(
        bans["bans"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("mirror"),
        "{bans}"
    );
    let err = http_raw(&lab.attacker, &server(8080), None, BENIGN, 1).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(
        http_raw(&lab.client, &server(8080), None, BENIGN, 1)
            .unwrap()
            .0,
        200
    );
    // The mirror's detections are in the findings store, told apart from
    // the proxy's by their origin (and would_block: the mirror blocks nothing).
    let mut found = Value::Null;
    wait_until("the mirror's findings", Duration::from_secs(5), || {
        let q = format!("/v1/findings?source={}", Lab::ATTACKER4);
        found = api(&lab, "GET", &q, None).1;
        found["findings"].as_array().is_some_and(|f| f.len() >= 2)
    });
    let list = found["findings"].as_array().unwrap();
    for f in list {
        assert_eq!(f["origin"], "mirror", "{found}");
        assert_eq!(f["verdict"], "would_block", "{found}");
        assert_eq!(f["path"], "/search", "{found}");
        assert_eq!(f["host"], "shop", "{found}");
    }
    assert!(
        list.iter()
            .any(|f| f["param"] == "q" && f["rule"].as_str().unwrap().starts_with("sqli")),
        "{found}"
    );
    let all = api(&lab, "GET", "/v1/findings?limit=1000", None).1;
    assert!(
        all["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["origin"] == "mirror"),
        "{all}"
    );
    // The origin filter: the mirror's, and none of the proxy's.
    let mirror = api(&lab, "GET", "/v1/findings?origin=mirror&limit=1000", None).1;
    assert_eq!(
        mirror["findings"].as_array().map(Vec::len),
        all["findings"].as_array().map(Vec::len),
        "{mirror}"
    );
    let proxy = api(&lab, "GET", "/v1/findings?origin=proxy", None).1;
    assert_eq!(
        proxy["findings"].as_array().map(Vec::len),
        Some(0),
        "{proxy}"
    );
    assert_eq!(api(&lab, "GET", "/v1/findings?origin=nic", None).0, 400);
    let (_, st) = api(&lab, "GET", "/v1/stats", None);
    assert!(st["mirror"]["detections"].as_u64().unwrap() >= 2, "{st}");
    assert!(
        st["findings"]["inspected"]["mirror"].as_u64().unwrap() >= 3,
        "{st}"
    );
    assert!(st["counters"]["samples_sent"]["packets"].as_u64().unwrap() > 0);
    assert_eq!(app.served.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[test]
fn a_burst_of_ten_thousand_requests_loses_no_ban_and_no_log_line() {
    let lab = Lab::new();
    let _app = Upstream::start(&lab.srv, "127.0.0.1:8000");
    // Five attacker addresses.
    let attackers: Vec<String> = (70..75).map(|i| format!("192.0.2.{i}")).collect();
    let atk_if = lab
        .attacker
        .exec(&["ip", "-o", "link", "show"])
        .stdout
        .split(|b| *b == b'\n')
        .filter_map(|l| {
            let l = String::from_utf8_lossy(l).to_string();
            let name = l.split(": ").nth(1)?.split('@').next()?.to_string();
            (name != "lo").then_some(name)
        })
        .next()
        .unwrap();
    for a in &attackers {
        lab.attacker
            .exec(&["ip", "addr", "add", &format!("{a}/24"), "dev", &atk_if]);
    }
    let log = std::env::temp_dir().join(format!("waf-burst-{}.log", std::process::id()));
    let _d = TestDaemon::start(
        &lab,
        &format!(
            "[proxy]\nlisten = \"0.0.0.0:8080\"\nupstream = \"http://127.0.0.1:8000\"\n\
             access_log = \"{}\"\naccess_log_format = \"json\"\ninspect_budget = \"10s\"\n\n\
             [ban_policy]\nstrikes = 3\nwindow = \"5m\"\n",
            log.display()
        ),
    );
    // 10,000 benign requests over keep-alive connections from the client, in
    // four threads, with the attackers' requests in the middle.
    let total = 10_000usize;
    let per = total / 4;
    let mut sent_attacks = 0;
    std::thread::scope(|s| {
        let lab = &lab;
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(move || {
                    let mut batch = Vec::new();
                    for _ in 0..per {
                        batch.extend_from_slice(BENIGN);
                    }
                    // One connection, all requests pipelined, in pieces.
                    lab.client.run(move || pipeline(&server(8080), &batch, per))
                })
            })
            .collect();
        for _ in 0..3 {
            for a in &attackers {
                let (code, _) = http_raw(&lab.attacker, &server(8080), Some(a), SQLI, 1).unwrap();
                assert_eq!(code, 403);
                sent_attacks += 1;
            }
        }
        for w in workers {
            assert_eq!(w.join().unwrap(), per, "every benign request answered 200");
        }
    });
    wait_until("five bans", Duration::from_secs(10), || {
        banned(&lab).len() == 5
    });
    let mut got = banned(&lab);
    got.sort();
    assert_eq!(got, attackers);
    let lines = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(
        lines,
        total + sent_attacks,
        "one access log line per request"
    );
    let _ = std::fs::remove_file(&log);
}

/// Sends `n` pipelined requests on one connection; returns how many 200s came back.
fn pipeline(dst: &str, batch: &[u8], n: usize) -> usize {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(dst).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = s.try_clone().unwrap();
    let batch = batch.to_vec();
    let writer = std::thread::spawn(move || {
        for chunk in batch.chunks(64 * 1024) {
            w.write_all(chunk).unwrap();
        }
    });
    let mut buf = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    let needle = b"HTTP/1.1 200";
    let mut count = 0;
    while count < n {
        let k = s.read(&mut tmp).expect("read");
        if k == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..k]);
        count = buf.windows(needle.len()).filter(|w| *w == needle).count();
    }
    writer.join().unwrap();
    count
}

/// One keep-alive request on `c`: the status line's code, the connection
/// left open.
fn get_on(c: &mut std::net::TcpStream, path: &str) -> String {
    let head = format!("GET {path} HTTP/1.1\r\nHost: shop\r\nUser-Agent: t\r\n\r\n");
    request_on(c, head.as_bytes())
}

/// Sends a request on a kept-alive connection; the status of its answer.
fn request_on(c: &mut std::net::TcpStream, raw: &[u8]) -> String {
    use std::io::{Read as _, Write as _};
    c.write_all(raw).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The upstream answers `Content-Length: 5`; the proxy's 403 is JSON.
    while !(got.ends_with(b"hello") || got.ends_with(b"}")) {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got[9..12]).into_owned()
}

/// The body of a GET on the loopback API (bearer token, connection closed).
fn local_get(port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        waf_tests::TEST_TOKEN
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n")
        .map_or(out.clone(), |(_, b)| b.to_owned())
}

/// The in-process proxy on `workers` workers in front of an upstream that
/// answers `200 hello`.
fn proxy_on_workers(workers: usize) -> waf_tests::bench::InProcessProxy {
    proxy_with(workers, |_| {})
}

/// The proxy's configuration in front of the application listening on
/// `up`, the access log off.
fn config_for(up: &std::net::TcpListener) -> waf_user::config::ProxyConfig {
    waf_user::config::ProxyConfig {
        upstream: Some(
            format!("http://{}", up.local_addr().unwrap())
                .parse()
                .unwrap(),
        ),
        access_log: waf_user::proxy::AccessLog::Off,
        ..Default::default()
    }
}

/// The same, its configuration changed by `change` first.
fn proxy_with(
    workers: usize,
    change: impl FnOnce(&mut waf_user::config::ProxyConfig),
) -> waf_tests::bench::InProcessProxy {
    use waf_tests::bench::{InProcessProxy, proxy::upstream_on};
    waf_tests::require_root();
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut pcfg = config_for(&up);
    change(&mut pcfg);
    upstream_on(up);
    InProcessProxy::start(&pcfg, None, None, workers).unwrap()
}

/// A request whose inspection runs over `inspect_budget` is never
/// forwarded uninspected: under `on_error = "open"` (the default) its
/// verdict is awaited (the attack at the end of a 540 kB form blocked, the
/// same form without it forwarded); under "closed" both get 503. A 1 ms
/// budget is far below what 540 kB take to inspect (several ms).
#[test]
fn a_request_over_the_inspection_budget_is_never_forwarded_uninspected() {
    use waf_user::proxy::OnError;
    let form = |tail: &str| {
        let body = format!("q={}{tail}", "lorem+ipsum+dolor+sit+amet+".repeat(20_000));
        format!(
            "POST /f HTTP/1.1\r\nHost: shop\r\nUser-Agent: t\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let attack = form("%27+union+select+password+from+users--");
    let benign = form("end");
    for (on_error, want) in [
        (OnError::Open, ["403", "200"]),
        (OnError::Closed, ["503", "503"]),
    ] {
        let p = proxy_with(1, |c| {
            c.inspect_budget = waf_user::config::Dur(Duration::from_millis(1));
            c.on_error = on_error;
        });
        let mut c = std::net::TcpStream::connect(("127.0.0.1", p.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let got = [
            request_on(&mut c, attack.as_bytes()),
            request_on(&mut c, benign.as_bytes()),
        ];
        assert_eq!(got, want, "{on_error:?}");
        let st = &p.proxy.stats;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(n(&st.inspect_over_budget), 2, "{on_error:?}");
        let forwarded = usize::from(on_error == OnError::Open);
        assert_eq!(n(&st.forwarded), forwarded as u64, "{on_error:?}");
    }
}

/// `n` keep-alive connections opened one after another, each served a
/// request before the next opens (as a load balancer opens its pool).
fn served_connections(port: u16, n: usize) -> Vec<std::net::TcpStream> {
    (0..n)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            assert_eq!(get_on(&mut c, "/"), "200");
            c
        })
        .collect()
}

#[test]
fn proxy_workers_share_connections_and_close_them_when_stopped() {
    use std::io::Read as _;
    let mut server = proxy_on_workers(2);
    assert_eq!(server.serving(), [0, 0]);
    // Whichever worker accepts, each connection goes to the one serving
    // fewer.
    let mut conns = served_connections(server.port, 8);
    assert_eq!(server.serving(), [4, 4]);
    // Operators see the same counts.
    let stats: Value = serde_json::from_str(&local_get(server.api_port, "/v1/stats")).unwrap();
    assert_eq!(
        stats["proxy"]["workers"],
        serde_json::json!([4, 4]),
        "{stats}"
    );
    let metrics = local_get(server.api_port, "/metrics");
    assert!(metrics.contains("\nwaf_http_connections 8\n"), "{metrics}");
    // A burst, all connected before either worker accepts: one would take
    // it whole.
    let burst: Vec<_> = (0..16)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    wait_until("the burst to be taken", Duration::from_secs(10), || {
        server.serving().iter().sum::<usize>() == 24
    });
    let s = server.serving();
    assert!(s.iter().all(|&n| (10..=14).contains(&n)), "{s:?}");
    drop(burst);
    wait_until("the burst to close", Duration::from_secs(10), || {
        server.serving().iter().sum::<usize>() == 8
    });
    // Every worker inspects: an attack on each connection is blocked, a
    // clean request after it on the same connection forwarded.
    for c in &mut conns {
        assert_eq!(
            get_on(
                c,
                "/search?q=1'%20UNION%20SELECT%20password%20FROM%20users--"
            ),
            "403"
        );
        assert_eq!(get_on(c, "/search?q=shoes"), "200");
    }
    conns.truncate(3);
    wait_until(
        "closed connections to count down",
        Duration::from_secs(10),
        || server.serving().iter().sum::<usize>() == 3,
    );
    // Stopping the workers closes the connections still open.
    server.stop_proxy();
    for mut c in conns {
        let mut b = [0u8; 16];
        assert!(matches!(c.read(&mut b), Ok(0) | Err(_)), "still open");
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}

#[test]
fn proxy_workers_that_do_not_accept_are_handed_their_share() {
    // Six workers, of which four accept: the other two serve only what
    // they are handed, as many as the rest.
    let server = proxy_on_workers(6);
    let _conns = served_connections(server.port, 12);
    assert_eq!(server.serving(), [2; 6]);
}

/// A page with a database error.
const LEAKY: &str = "<html><body><b>Warning</b>: mysqli_query(): You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version</body></html>";

/// An application that answers by path: a database error, the same
/// gzipped, a clean page, a script naming a Java exception, an error past
/// the first 64 kB, a page flushed in two parts with the error 400 ms after
/// the first, and the `Accept-Encoding` it was sent. One request per connection.
fn leaky_upstream(l: std::net::TcpListener) {
    use std::io::{BufRead as _, BufReader, Write as _};
    const SQL: &str = LEAKY;
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = c.try_clone().unwrap();
                let mut r = BufReader::new(c);
                let (mut first, mut line, mut ae) = (String::new(), String::new(), String::new());
                r.read_line(&mut first).unwrap();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((n, v)) = line.split_once(':')
                        && n.eq_ignore_ascii_case("accept-encoding")
                    {
                        ae = v.trim().to_string();
                    }
                }
                let path = first.split(' ').nth(1).unwrap_or("/").to_string();
                let send = |w: &mut std::net::TcpStream, ctype: &str, extra: &str, body: &[u8]| {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = w.write_all(head.as_bytes());
                    let _ = w.write_all(body);
                };
                match path.as_str() {
                    "/sql" => send(&mut w, "text/html", "", SQL.as_bytes()),
                    "/sql-gz" => {
                        let mut e = flate2::write::GzEncoder::new(
                            Vec::new(),
                            flate2::Compression::default(),
                        );
                        e.write_all(SQL.as_bytes()).unwrap();
                        send(
                            &mut w,
                            "text/html",
                            "Content-Encoding: gzip\r\n",
                            &e.finish().unwrap(),
                        )
                    }
                    "/clean" => send(
                        &mut w,
                        "text/html; charset=utf-8",
                        "",
                        b"<html><title>Orders</title>SQL syntax guide: select * from t</html>",
                    ),
                    "/script" => send(
                        &mut w,
                        "application/javascript",
                        "",
                        b"throw new Error('java.lang.NullPointerException')",
                    ),
                    "/late" => {
                        let mut body = "<p>lorem ipsum</p>\n".repeat(4000).into_bytes();
                        body.extend_from_slice(SQL.as_bytes());
                        send(&mut w, "text/html", "", &body)
                    }
                    "/stream" => {
                        let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\n<html>\r\n");
                        let _ = w.flush();
                        std::thread::sleep(Duration::from_millis(400));
                        let _ = write!(w, "{:x}\r\n{SQL}\r\n0\r\n\r\n", SQL.len());
                    }
                    _ => send(&mut w, "text/plain", "", ae.as_bytes()),
                }
            });
        }
    });
}

/// Status, headers and body of a GET through the proxy (connection closed).
fn fetch(port: u16, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: shop\r\nUser-Agent: t\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let status = head[9..12].parse().unwrap();
    (status, head, out[end + 4..].to_vec())
}

/// The application's answers are read for data leaks: a database error
/// (plain, gzipped, or flushed late in a streamed page) becomes a 502 and a
/// strike (here an immediate ban); clean pages, scripts and an error past
/// the first 64 kB go through byte for byte; `Accept-Encoding` reaches the
/// application cut to the codings the scan reads; with
/// `response_inspect_bytes = 0` nothing is read.
#[test]
fn leaks_in_responses_are_withheld_and_the_rest_goes_through_intact() {
    use waf_tests::bench::InProcessProxy;
    waf_tests::require_root();
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let pcfg = config_for(&up);
    leaky_upstream(up);
    let p = InProcessProxy::start(&pcfg, None, Some(1), 1).unwrap();
    let (st, _, body) = fetch(p.port, "/clean", "");
    assert_eq!(
        (st, &body[..]),
        (
            200,
            &b"<html><title>Orders</title>SQL syntax guide: select * from t</html>"[..]
        )
    );
    let (st, _, body) = fetch(p.port, "/script", "");
    assert_eq!((st, body.len()), (200, 49));
    let (st, _, body) = fetch(p.port, "/late", "");
    assert_eq!(st, 200);
    assert_eq!(body.len(), 19 * 4000 + LEAKY.len());
    let (st, _, body) = fetch(
        p.port,
        "/",
        "Accept-Encoding: br, gzip;q=0.8, zstd, deflate\r\n",
    );
    assert_eq!(
        (st, String::from_utf8_lossy(&body).as_ref()),
        (200, "gzip;q=0.8, deflate")
    );
    let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(n(&p.proxy.stats.response_blocked), 0);
    for path in ["/sql", "/sql-gz", "/stream"] {
        let (st, _, body) = fetch(p.port, path, "Accept-Encoding: gzip\r\n");
        assert_eq!(st, 502, "{path}");
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("response withheld by waf") && !body.contains("SQL"),
            "{body}"
        );
    }
    assert_eq!(n(&p.proxy.stats.response_blocked), 3);
    assert!(n(&p.proxy.stats.responses_inspected) >= 5);
    wait_until("the leak's ban", Duration::from_secs(10), || {
        local_get(p.api_port, "/v1/bans").contains("127.0.0.1")
    });
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let off = waf_user::config::ProxyConfig {
        response_inspect_bytes: 0,
        ..config_for(&up)
    };
    leaky_upstream(up);
    let q = InProcessProxy::start(&off, None, None, 1).unwrap();
    assert_eq!(fetch(q.port, "/sql", "").0, 200);
    let (_, _, body) = fetch(q.port, "/", "Accept-Encoding: br\r\n");
    assert_eq!(body, b"br");
    assert_eq!(n(&q.proxy.stats.responses_inspected), 0);
}
